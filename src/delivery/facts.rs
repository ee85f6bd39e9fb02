//! What the delivery path needs to know of a message's content, read in one parse.

use mail_parser::MessageParser;

/// Header facts used by policy (sender checks) and by trace header assembly.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MessageFacts {
    /// Addresses of the From header, lower-cased.
    pub from: Vec<String>,
    /// The Message-ID header, without angle brackets.
    pub message_id: Option<String>,
    /// A Date header is present.
    pub has_date: bool,
    /// Headers could be read at all (otherwise the message is stored as received).
    pub parsed: bool,
}

impl MessageFacts {
    /// Parses `raw` once; malformed MIME gives empty facts, never an error (it is mail).
    pub fn read(raw: &[u8]) -> MessageFacts {
        let Some(msg) = MessageParser::default().parse_headers(raw) else {
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
        MessageFacts {
            from,
            message_id: msg.message_id().map(str::to_string),
            has_date: msg.date().is_some(),
            parsed: true,
        }
    }
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
    }

    #[test]
    fn garbage_gives_empty_facts() {
        let f = MessageFacts::read(b"\x00\xff\xfe not a message");
        assert!(f.from.is_empty());
        assert!(f.message_id.is_none());
    }
}
