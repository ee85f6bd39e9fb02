//! What the delivery path needs to know of a message's content, read in one parse.

use mail_parser::{HeaderName, MimeHeaders};

/// Header facts used by policy (sender checks) and by trace header assembly.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MessageFacts {
    /// Addresses of the From header, lower-cased.
    pub from: Vec<String>,
    /// How many From header fields the message has (RFC 5322 allows one).
    pub from_fields: usize,
    /// Addresses of the Sender header(s), lower-cased.
    pub sender: Vec<String>,
    /// How many Sender header fields the message has (RFC 5322 allows at most one).
    pub sender_fields: usize,
    /// A delivery or disposition report (`multipart/report` with
    /// `report-type=delivery-status` or `disposition-notification`): what the
    /// null sender may carry.
    pub report: bool,
    /// The Message-ID header, without angle brackets.
    pub message_id: Option<String>,
    /// A Date header is present.
    pub has_date: bool,
    /// Display name of the first From address.
    pub from_name: Option<String>,
    /// Decoded Subject.
    pub subject: Option<String>,
    /// In-Reply-To and References message ids, without brackets.
    pub references: Vec<String>,
    /// The professional ends the patient thread (`X-MSS-MES: FIN` or subject `[FIN]`).
    pub ends_thread: bool,
    /// Address of `Disposition-Notification-To` (an MDN is wanted, RFC 8098).
    pub notify_to: Option<String>,
    /// Headers could be read at all (otherwise the message is stored as received).
    pub parsed: bool,
}

impl MessageFacts {
    /// Parses `raw` once; malformed MIME gives empty facts, never an error (it is mail).
    pub fn read(raw: &[u8]) -> MessageFacts {
        let Some(msg) = crate::mime::parse_headers(raw) else {
            return MessageFacts::default();
        };
        let from = msg
            .from()
            .map(|a| {
                a.iter()
                    .filter_map(|addr| addr.address())
                    .map(|s| s.trim().to_lowercase())
                    .collect()
            })
            .unwrap_or_default();
        let mut references: Vec<String> = Vec::new();
        for h in [msg.in_reply_to(), msg.references()] {
            if let Some(list) = h.as_text_list() {
                references.extend(list.iter().map(|s| s.to_string()));
            } else if let Some(t) = h.as_text() {
                references.push(t.to_string());
            }
        }
        let subject = msg.subject().map(|s| clean_text(s.trim()));
        let count = |name: HeaderName<'_>| msg.headers().iter().filter(|h| h.name == name).count();
        let addresses = |name: HeaderName<'_>| -> Vec<String> {
            msg.headers()
                .iter()
                .filter(|h| h.name == name)
                .filter_map(|h| h.value.as_address())
                .flat_map(|a| {
                    a.iter()
                        .filter_map(|addr| addr.address())
                        .map(|s| s.trim().to_lowercase())
                        .collect::<Vec<_>>()
                })
                .collect()
        };
        let report = msg.content_type().is_some_and(|ct| {
            ct.ctype().eq_ignore_ascii_case("multipart")
                && ct
                    .subtype()
                    .is_some_and(|s| s.eq_ignore_ascii_case("report"))
                && ct.attribute("report-type").is_some_and(|t| {
                    t.eq_ignore_ascii_case("delivery-status")
                        || t.eq_ignore_ascii_case("disposition-notification")
                })
        });
        let fin_header = msg
            .header_raw("X-MSS-MES")
            .is_some_and(|v| v.trim().eq_ignore_ascii_case("FIN"));
        MessageFacts {
            from,
            from_fields: count(HeaderName::From),
            sender: addresses(HeaderName::Sender),
            sender_fields: count(HeaderName::Sender),
            report,
            from_name: msg
                .from()
                .and_then(|a| a.first())
                .and_then(|a| a.name())
                .map(|n| clean_text(n.trim()))
                .filter(|n| !n.is_empty()),
            ends_thread: fin_header || subject.as_deref() == Some("[FIN]"),
            subject,
            references,
            message_id: msg.message_id().map(str::to_string),
            has_date: msg.date().is_some(),
            notify_to: msg
                .header_raw("Disposition-Notification-To")
                .and_then(notify_address),
            parsed: true,
        }
    }
}

/// Text taken from a header for reuse (a subject, a display name, a file
/// name): control characters (CR and LF among them) become spaces, so that
/// nothing read from incoming mail can start a header or a body part in a
/// message we build from it.
pub fn clean_text(text: &str) -> String {
    if !text.chars().any(char::is_control) {
        return text.to_string();
    }
    let spaced: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    spaced.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The address of a `Disposition-Notification-To` value (`Name <a@b>` or `a@b`).
fn notify_address(raw: &str) -> Option<String> {
    let inner = match (raw.rfind('<'), raw.rfind('>')) {
        (Some(start), Some(end)) if start < end => &raw[start + 1..end],
        _ => raw,
    };
    crate::address::Address::parse(inner.trim())
        .ok()
        .map(|a| a.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_from_message_id_and_date() {
        let f = MessageFacts::read(
            b"From: Jean <Jean.Dupont@a.test>\r\nMessage-ID: <x@y>\r\nDate: Thu, 26 Nov 2026 10:00:00 +0000\r\n\r\nbody\r\n",
        );
        assert_eq!(f.from, vec!["jean.dupont@a.test".to_string()]);
        assert_eq!(f.message_id.as_deref(), Some("x@y"));
        assert!(f.has_date);
        assert!(!f.ends_thread);
        let f = MessageFacts::read(b"From: a@b\r\nX-MSS-MES: fin\r\nIn-Reply-To: <p@q>\r\nReferences: <o@q> <p@q>\r\n\r\nx");
        assert!(f.ends_thread);
        assert_eq!(f.references, vec!["p@q", "o@q", "p@q"]);
        assert!(MessageFacts::read(b"From: a@b\r\nSubject: [FIN]\r\n\r\nx").ends_thread);
        let f = MessageFacts::read(
            b"From: a@b.test\r\nDisposition-Notification-To: \"Dr A\" <A@B.test>\r\n\r\nx",
        );
        assert_eq!(f.notify_to.as_deref(), Some("a@b.test"));
    }

    #[test]
    fn counts_from_and_sender_fields_and_knows_reports() {
        let f = MessageFacts::read(
            b"From: a@b.test\r\nFrom: c@d.test\r\nSender: S <s@b.test>\r\n\r\nx",
        );
        assert_eq!(f.from_fields, 2);
        assert_eq!(f.sender, vec!["s@b.test".to_string()]);
        assert_eq!(f.sender_fields, 1);
        assert!(!f.report);
        let f = MessageFacts::read(
            b"From: MAILER-DAEMON@b.test\r\nContent-Type: multipart/report; report-type=delivery-status; boundary=x\r\n\r\n--x--\r\n",
        );
        assert!(f.report);
        let f = MessageFacts::read(
            b"From: a@b.test\r\nContent-Type: multipart/report; report-type=other; boundary=x\r\n\r\n--x--\r\n",
        );
        assert!(!f.report);
    }

    #[test]
    fn header_text_loses_control_characters() {
        let f = MessageFacts::read(
            b"From: =?utf-8?B?RHIgQQ0KQmNjOiB4QHk=?= <a@b.test>\r\nSubject: =?utf-8?B?Qm9uam91cg0KDQpmb3JnZWQ=?=\r\n\r\nx",
        );
        assert_eq!(f.subject.as_deref(), Some("Bonjour forged"));
        assert_eq!(f.from_name.as_deref(), Some("Dr A Bcc: x@y"));
        assert_eq!(clean_text("plain"), "plain");
    }

    #[test]
    fn garbage_gives_empty_facts() {
        let f = MessageFacts::read(b"\x00\xff\xfe not a message");
        assert!(f.from.is_empty());
        assert!(f.message_id.is_none());
    }
}
