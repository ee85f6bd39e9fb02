//! What SORT and THREAD compare of one message, read from its ENVELOPE (stored
//! at delivery, so SORT reads no content) and, for THREAD=REFERENCES, from the
//! References field of its header.

use imap_codec::imap_types::core::NString;
use imap_codec::imap_types::envelope::{Address, Envelope};

use super::casemap;
use crate::mime::structure::{first_field, message_ids};
use crate::mime::subject::{base_subject, decode_text};

/// References kept per message: the nearest ancestors are the last ones, and
/// a hostile header of thousands of ids would make linking them quadratic.
pub const MAX_REFERENCES: usize = 1000;

/// What SORT compares of one message (strings already through [`casemap`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Facts {
    /// INTERNALDATE, Unix seconds (ARRIVAL).
    pub arrival: i64,
    /// RFC822.SIZE (SIZE).
    pub size: i64,
    /// The Date field in UTC, else the INTERNALDATE (DATE, RFC 5256 §2.2).
    pub date: i64,
    /// Base subject (SUBJECT, RFC 5256 §2.1).
    pub subject: String,
    /// The subject was a reply or forward (THREAD=REFERENCES step 5).
    pub reply: bool,
    /// Mailbox of the first From address (FROM).
    pub from: String,
    /// Mailbox of the first To address (TO).
    pub to: String,
    /// Mailbox of the first Cc address (CC).
    pub cc: String,
    /// Display name of the first From address, else its address (DISPLAYFROM).
    pub display_from: String,
    /// Display name of the first To address, else its address (DISPLAYTO).
    pub display_to: String,
}

fn bytes<'a>(s: &'a NString<'_>) -> Option<&'a [u8]> {
    s.0.as_ref().map(|s| s.as_ref())
}

fn text(s: &NString<'_>) -> String {
    bytes(s).map(decode_text).unwrap_or_default()
}

fn mailbox(list: &[Address<'_>]) -> String {
    list.first()
        .and_then(|a| bytes(&a.mailbox))
        .map(|m| casemap(&String::from_utf8_lossy(m)))
        .unwrap_or_default()
}

/// RFC 5957 §3: the display name, decoded; without one, the address.
fn display(list: &[Address<'_>]) -> String {
    let Some(a) = list.first() else {
        return String::new();
    };
    let name = text(&a.name);
    let name = name.trim();
    if !name.is_empty() {
        return casemap(name);
    }
    let mut out = String::from_utf8_lossy(bytes(&a.mailbox).unwrap_or_default()).into_owned();
    if let Some(host) = bytes(&a.host) {
        out.push('@');
        out.push_str(&String::from_utf8_lossy(host));
    }
    casemap(&out)
}

impl Facts {
    /// The facts of a message from its ENVELOPE (None: a message without
    /// one, compared as having no date, subject or addresses).
    pub fn new(envelope: Option<&Envelope<'_>>, internal_date: i64, size: i64) -> Facts {
        let mut facts = Facts {
            arrival: internal_date,
            size,
            date: internal_date,
            ..Facts::default()
        };
        let Some(e) = envelope else {
            return facts;
        };
        if let Some(date) = bytes(&e.date).and_then(crate::mime::parse_date) {
            facts.date = date;
        }
        let base = base_subject(&text(&e.subject));
        facts.subject = casemap(&base.text);
        facts.reply = base.reply_or_forward;
        facts.from = mailbox(&e.from);
        facts.to = mailbox(&e.to);
        facts.cc = mailbox(&e.cc);
        facts.display_from = display(&e.from);
        facts.display_to = display(&e.to);
        facts
    }
}

/// The message IDs threading needs of one message: its own, and its
/// references (the References field, or the first id of In-Reply-To when it
/// has none; RFC 5256 §4 step 1).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Ids {
    /// The first id of the Message-ID field.
    pub message_id: Option<Vec<u8>>,
    /// Parents first, the direct parent last (at most [`MAX_REFERENCES`]).
    pub references: Vec<Vec<u8>>,
}

impl Ids {
    /// The ids in a header block.
    pub fn read(header: &[u8]) -> Ids {
        let ids = |name: &str| {
            first_field(header, name)
                .map(message_ids)
                .unwrap_or_default()
        };
        let mut references = ids("References");
        if references.is_empty() {
            references = ids("In-Reply-To").into_iter().take(1).collect();
        }
        if references.len() > MAX_REFERENCES {
            references.drain(..references.len() - MAX_REFERENCES);
        }
        Ids {
            message_id: ids("Message-ID").into_iter().next(),
            references,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts_of(header: &str) -> Facts {
        let env = crate::mime::structure::envelope(header.as_bytes());
        Facts::new(Some(&env), 1_000, 42)
    }

    #[test]
    fn facts_from_the_envelope() {
        let f = facts_of(
            "From: =?UTF-8?Q?C=C3=A9line_Roux?= <Celine.Roux@cabinet.test>\r\n\
             To: <dave@labo.test>, alice@x\r\nCc: \"Zed\" <aaron@x>\r\n\
             Subject: Re: [Cardio] =?UTF-8?Q?r=C3=A9sum=C3=A9?=\r\n\
             Date: Mon, 1 Jan 2024 11:00:00 +0100\r\n\r\n",
        );
        assert_eq!(f.arrival, 1_000);
        assert_eq!(f.size, 42);
        assert_eq!(f.date, 1_704_103_200);
        assert_eq!(f.subject, casemap("résumé"));
        assert!(f.reply);
        assert_eq!(f.from, "CELINE.ROUX");
        assert_eq!(f.display_from, casemap("Céline Roux"));
        assert_eq!(f.to, "DAVE");
        assert_eq!(f.display_to, "DAVE@LABO.TEST");
        assert_eq!(f.cc, "AARON");
    }

    #[test]
    fn missing_fields_are_empty_and_a_bad_date_is_the_arrival() {
        let f = facts_of("Date: not a date\r\n\r\n");
        assert_eq!(f.date, 1_000);
        assert_eq!(
            (f.subject.as_str(), f.from.as_str(), f.display_to.as_str()),
            ("", "", "")
        );
        assert!(!f.reply);
        let none = Facts::new(None, 7, 8);
        assert_eq!((none.date, none.arrival, none.size), (7, 7, 8));
    }

    #[test]
    fn ids_from_references_else_in_reply_to() {
        let ids = Ids::read(
            b"Message-ID: <m7@c>\r\nIn-Reply-To: <x@y>\r\nReferences: <m5@c>\r\n <gone@n> <m6@h>\r\n\r\n",
        );
        assert_eq!(ids.message_id.as_deref(), Some(&b"m7@c"[..]));
        assert_eq!(
            ids.references,
            [b"m5@c".to_vec(), b"gone@n".to_vec(), b"m6@h".to_vec()]
        );
        let ids = Ids::read(b"In-Reply-To: <m10@c> (sent by C) <other@c>\r\nReferences: x\r\n\r\n");
        assert_eq!(ids.message_id, None);
        assert_eq!(ids.references, [b"m10@c".to_vec()]);
        let many: String = (0..MAX_REFERENCES + 5)
            .map(|i| format!("<{i}@x> "))
            .collect();
        let ids = Ids::read(format!("References: {many}\r\n\r\n").as_bytes());
        assert_eq!(ids.references.len(), MAX_REFERENCES);
        assert_eq!(ids.references[0], b"5@x");
    }
}
