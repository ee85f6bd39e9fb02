//! The ENVELOPE of a message header (RFC 3501 §7.4.2), as Dovecot builds it:
//! the last Date/Subject/From/… field wins, Sender and Reply-To default to
//! From.

use imap_codec::imap_types::core::NString;
use imap_codec::imap_types::envelope::{Address, Envelope};

use super::address::{Addr, parse_addresses};
use super::headers::split_fields;
use super::strings::{human_string, nstring, nstring_nolf};

pub(super) fn envelope_of(header: &[u8]) -> Envelope<'static> {
    let (fields, _) = split_fields(header);
    // The last occurrence of a field wins, as in Dovecot.
    let last = |name: &str| {
        fields
            .iter()
            .rev()
            .find(|f| f.name.eq_ignore_ascii_case(name.as_bytes()))
            .map(|f| f.value)
    };
    let addresses = |name: &str| last(name).map(parse_addresses).unwrap_or_default();
    let from = addresses("From");
    let sender = addresses("Sender");
    let reply_to = addresses("Reply-To");
    let to_imap = |list: &[Addr]| list.iter().map(imap_address).collect::<Vec<_>>();
    let from_imap = to_imap(&from);
    Envelope {
        date: nstring_nolf(last("Date")),
        subject: NString(last("Subject").map(human_string)),
        sender: if sender.is_empty() {
            from_imap.clone()
        } else {
            to_imap(&sender)
        },
        reply_to: if reply_to.is_empty() {
            from_imap.clone()
        } else {
            to_imap(&reply_to)
        },
        from: from_imap,
        to: to_imap(&addresses("To")),
        cc: to_imap(&addresses("Cc")),
        bcc: to_imap(&addresses("Bcc")),
        in_reply_to: nstring_nolf(last("In-Reply-To")),
        message_id: nstring_nolf(last("Message-ID")),
    }
}

fn imap_address(addr: &Addr) -> Address<'static> {
    Address {
        name: NString(addr.name.as_deref().map(human_string)),
        adl: nstring(addr.route.as_deref()),
        mailbox: nstring(addr.mailbox.as_deref()),
        host: nstring(addr.domain.as_deref()),
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::env_wire;

    #[test]
    fn envelope_details() {
        let raw = b"From: \"Doe, J.\" <j@d.example>, (c) x@y.example (Real Name)\r\n\
Subject:   =?utf-8?q?a?=\t  b  \r\n\
To: g: ;, h <@r1,@r2:m@d>\r\nCc: <bad\r\nMessage-ID: <id@x>\r\n\r\n";
        let env = env_wire(raw);
        assert!(env.starts_with("(NIL {15}\r\n=?utf-8?q?a?= b (("), "{env}");
        assert!(
            env.contains(r#"(("Doe, J." NIL "j" "d.example")("Real Name" NIL "x" "y.example"))"#),
            "{env}"
        );
        assert!(
            env.contains(r#"((NIL NIL "g" NIL)(NIL NIL NIL NIL)("h" "@r1,@r2" "m" "d"))"#),
            "{env}"
        );
        // "<bad" ends before its ">": Dovecot keeps what it read.
        assert!(
            env.contains(r#"((NIL NIL "bad" "MISSING_DOMAIN"))"#),
            "{env}"
        );
        assert!(env.ends_with(r#" NIL "<id@x>")"#), "{env}");
        // Sender and Reply-To default to From; empty ones too.
        let raw = b"From: a@b\r\nSender:\r\n\r\n";
        assert_eq!(
            env_wire(raw),
            r#"(NIL NIL ((NIL NIL "a" "b")) ((NIL NIL "a" "b")) ((NIL NIL "a" "b")) NIL NIL NIL NIL NIL)"#
        );
    }
}
