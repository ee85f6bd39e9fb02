//! Mailbox names on the wire and LIST patterns. Names are stored in UTF-8; an
//! IMAP4rev1 session sees them in modified UTF-7 (RFC 3501 §5.1.3), a session
//! that enabled IMAP4rev2 or UTF8=ACCEPT in UTF-8 (RFC 9051 §5.1, Appendix E;
//! RFC 6855 §3).

use imap_codec::imap_types::core::{AString, IString};
use imap_codec::imap_types::extensions::utf8::QuotedUtf8;
use imap_codec::imap_types::mailbox::{ListMailbox, Mailbox, MailboxOther};

/// The hierarchy delimiter.
pub const DELIMITER: char = '/';

/// How a session's mailbox names travel on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wire {
    /// Modified UTF-7 (IMAP4rev1).
    Utf7,
    /// UTF-8 (after `ENABLE IMAP4rev2` or `ENABLE UTF8=ACCEPT`).
    Utf8,
}

/// Why a mailbox name is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    /// Not valid modified UTF-7.
    #[error("invalid modified UTF-7 mailbox name")]
    Utf7,
    /// Not valid UTF-8, or holds control characters (RFC 9051 §5.1).
    #[error("invalid UTF-8 mailbox name")]
    Utf8,
    /// Empty, or empty hierarchy level.
    #[error("invalid mailbox name")]
    Shape,
}

/// The UTF-8 name of a mailbox argument (INBOX in any case is `INBOX`).
pub fn decode(mailbox: &Mailbox<'_>, wire: Wire) -> Result<String, NameError> {
    match mailbox {
        Mailbox::Inbox => Ok("INBOX".to_string()),
        Mailbox::Other(other) => decode_bytes(other.as_ref(), wire),
    }
}

/// The name as the client wrote it, in UTF-8: what `OLDNAME` reports when
/// [`decode`] normalised it (RFC 9051 §6.3.4). `None` for INBOX or an
/// undecodable name.
pub fn supplied(mailbox: &Mailbox<'_>, wire: Wire) -> Option<String> {
    let Mailbox::Other(other) = mailbox else {
        return None;
    };
    let text = std::str::from_utf8(other.as_ref()).ok()?;
    Some(match wire {
        Wire::Utf8 => text.to_string(),
        Wire::Utf7 => super::utf7::decode(text.as_bytes()).ok()?,
    })
}

/// Decodes a name's bytes: modified UTF-7, refusing anything that does not
/// encode back identically, or UTF-8 without control characters.
pub fn decode_bytes(raw: &[u8], wire: Wire) -> Result<String, NameError> {
    let decoded = match wire {
        Wire::Utf7 => {
            let decoded = super::utf7::decode(raw).map_err(|_| NameError::Utf7)?;
            // Whatever decodes must encode back to the same bytes (one name,
            // one spelling), and hold no control character: `&AAA-` (NUL) or
            // `&AA0ACg-` (CR LF) would make a name no IMAP4rev2 session could
            // be shown, nor PostgreSQL store.
            if super::utf7::encode(&decoded).as_bytes() != raw
                || decoded.chars().any(char::is_control)
            {
                return Err(NameError::Utf7);
            }
            decoded
        }
        Wire::Utf8 => {
            let text = std::str::from_utf8(raw).map_err(|_| NameError::Utf8)?;
            if text.chars().any(char::is_control) {
                return Err(NameError::Utf8);
            }
            text.to_string()
        }
    };
    let decoded = decoded.trim_end_matches(DELIMITER).to_string();
    if decoded.is_empty() || decoded.split(DELIMITER).any(str::is_empty) {
        return Err(NameError::Shape);
    }
    if decoded
        .split(DELIMITER)
        .next()
        .is_some_and(|first| first.eq_ignore_ascii_case("INBOX"))
    {
        // INBOX is case-insensitive, also as a parent.
        let rest = &decoded[5..];
        return Ok(format!("INBOX{rest}"));
    }
    Ok(decoded)
}

/// The modified UTF-7 form of a UTF-8 name.
pub fn encode(name: &str) -> String {
    super::utf7::encode(name)
}

/// The wire form of a stored (UTF-8) name: modified UTF-7, or UTF-8 as a
/// quoted string when it is not an atom (a literal if it holds CR, LF or NUL).
pub fn wire(name: &str, wire: Wire) -> Option<Mailbox<'static>> {
    if name == "INBOX" {
        return Some(Mailbox::Inbox);
    }
    match wire {
        Wire::Utf7 => Mailbox::try_from(encode(name)).ok(),
        Wire::Utf8 if name.is_ascii() => Mailbox::try_from(name.to_string()).ok(),
        Wire::Utf8 => {
            let astring = match QuotedUtf8::try_from(name.to_string()) {
                Ok(quoted) => AString::String(IString::QuotedUtf8(quoted)),
                Err(_) => AString::try_from(name.to_string()).ok()?,
            };
            MailboxOther::try_from(astring).ok().map(Mailbox::Other)
        }
    }
}

/// The UTF-8 text of a LIST pattern argument.
pub fn pattern_text(pattern: &ListMailbox<'_>, wire: Wire) -> Result<String, NameError> {
    let raw: &[u8] = match pattern {
        ListMailbox::Token(t) => t.as_ref(),
        ListMailbox::String(s) => s.as_ref(),
    };
    pattern_bytes(raw, wire)
}

/// The UTF-8 text of a LIST reference or pattern's bytes (no shape rules:
/// `a/` and `%` are fine there).
pub fn pattern_bytes(raw: &[u8], wire: Wire) -> Result<String, NameError> {
    match wire {
        Wire::Utf7 => super::utf7::decode(raw).map_err(|_| NameError::Utf7),
        Wire::Utf8 => std::str::from_utf8(raw)
            .map(str::to_string)
            .map_err(|_| NameError::Utf8),
    }
}

/// Does `name` match the LIST `pattern` (`*` anything, `%` anything but the delimiter)?
pub fn matches(pattern: &str, name: &str) -> bool {
    fn go(p: &[char], n: &[char]) -> bool {
        match p.first() {
            None => n.is_empty(),
            Some('*') => (0..=n.len()).any(|i| go(&p[1..], &n[i..])),
            Some('%') => {
                let mut i = 0;
                loop {
                    if go(&p[1..], &n[i..]) {
                        return true;
                    }
                    if i >= n.len() || n[i] == DELIMITER {
                        return false;
                    }
                    i += 1;
                }
            }
            Some(c) => n.first() == Some(c) && go(&p[1..], &n[1..]),
        }
    }
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    // INBOX matches case-insensitively.
    if name == "INBOX" || name.starts_with("INBOX/") {
        let upper: Vec<char> = pattern.chars().collect();
        let pi: String = upper.iter().take(5).collect();
        if pi.eq_ignore_ascii_case("inbox") {
            let mut fixed: Vec<char> = "INBOX".chars().collect();
            fixed.extend(upper.iter().skip(5));
            return go(&fixed, &n);
        }
    }
    go(&p, &n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utf7_round_trip_and_refusals() {
        let d = |raw: &[u8]| decode_bytes(raw, Wire::Utf7);
        assert_eq!(d(b"R&AOk-sultats").unwrap(), "Résultats");
        assert_eq!(encode("Résultats"), "R&AOk-sultats");
        assert_eq!(d(b"inbox/Sub").unwrap(), "INBOX/Sub");
        assert_eq!(d(b"R&AOk").unwrap_err(), NameError::Utf7);
        assert_eq!(d(b"a&-b&Zm9v-").unwrap_err(), NameError::Utf7);
        assert_eq!(d("Résultats".as_bytes()).unwrap_err(), NameError::Utf7);
        assert_eq!(d(b"a//b").unwrap_err(), NameError::Shape);
        // Control characters, however well encoded, are refused.
        for raw in [&b"&AAA-"[..], b"&AH8-", b"&AA0ACg-", b"a&AAk-b", b"&AIU-"] {
            assert_eq!(d(raw).unwrap_err(), NameError::Utf7, "{raw:?}");
        }
        // Every printable ASCII character but `&` (the shift) is itself.
        let printable: String = (0x20u8..0x7f)
            .map(char::from)
            .filter(|&c| c != '&' && c != '/')
            .collect();
        assert_eq!(d(printable.as_bytes()).unwrap(), printable);
        assert_eq!(d(b"a&-b").unwrap(), "a&b");
    }

    #[test]
    fn utf8_names() {
        let d = |raw: &[u8]| decode_bytes(raw, Wire::Utf8);
        assert_eq!(
            d("Résultats/Été 2026".as_bytes()).unwrap(),
            "Résultats/Été 2026"
        );
        // `&` is an ordinary character in UTF-8 names.
        assert_eq!(d(b"R&AOk-sultats").unwrap(), "R&AOk-sultats");
        assert_eq!(d("inbox/Été/".as_bytes()).unwrap(), "INBOX/Été");
        assert_eq!(d(&[0x52, 0xff]).unwrap_err(), NameError::Utf8);
        assert_eq!(d(b"a\tb").unwrap_err(), NameError::Utf8);
        assert_eq!(d("a\u{85}b".as_bytes()).unwrap_err(), NameError::Utf8);
        assert_eq!(d("a//b".as_bytes()).unwrap_err(), NameError::Shape);
    }

    #[test]
    fn wire_forms() {
        use imap_codec::ResponseCodec;
        use imap_codec::encode::Encoder;
        use imap_codec::imap_types::response::{Data, Response};
        let encoded = |name: &str, w: Wire| {
            let data = Data::List {
                items: Vec::new(),
                delimiter: None,
                mailbox: wire(name, w).unwrap(),
            };
            String::from_utf8(
                ResponseCodec::default()
                    .encode(&Response::Data(data))
                    .dump(),
            )
            .unwrap()
        };
        assert_eq!(
            encoded("Résultats/Été 2026", Wire::Utf8),
            "* LIST () NIL \"Résultats/Été 2026\"\r\n"
        );
        assert_eq!(
            encoded("Résultats/Été 2026", Wire::Utf7),
            "* LIST () NIL \"R&AOk-sultats/&AMk-t&AOk- 2026\"\r\n"
        );
        assert_eq!(encoded("Sent", Wire::Utf8), "* LIST () NIL Sent\r\n");
        assert_eq!(encoded("INBOX", Wire::Utf8), "* LIST () NIL INBOX\r\n");
        assert_eq!(encoded("a\"b", Wire::Utf8), "* LIST () NIL \"a\\\"b\"\r\n");
    }

    #[test]
    fn list_patterns() {
        assert!(matches("*", "a/b/c"));
        assert!(matches("%", "a"));
        assert!(!matches("%", "a/b"));
        assert!(matches("a/%", "a/b"));
        assert!(!matches("a/%", "a/b/c"));
        assert!(matches("a/*", "a/b/c"));
        assert!(matches("inbox", "INBOX"));
        assert!(matches("Inbox/%", "INBOX/x"));
        assert!(!matches("Sent", "sent"));
    }
}
