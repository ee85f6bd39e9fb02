//! Mailbox names on the wire (modified UTF-7, RFC 3501 §5.1.3) and LIST patterns.

use imap_codec::imap_types::mailbox::{ListMailbox, Mailbox};

/// The hierarchy delimiter.
pub const DELIMITER: char = '/';

/// Why a mailbox name is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    /// Not valid modified UTF-7.
    #[error("invalid modified UTF-7 mailbox name")]
    Utf7,
    /// Empty, or empty hierarchy level.
    #[error("invalid mailbox name")]
    Shape,
}

/// The UTF-8 name of a mailbox argument (INBOX in any case is `INBOX`).
pub fn decode(mailbox: &Mailbox<'_>) -> Result<String, NameError> {
    match mailbox {
        Mailbox::Inbox => Ok("INBOX".to_string()),
        Mailbox::Other(other) => decode_bytes(other.as_ref()),
    }
}

/// Decodes modified UTF-7 bytes, refusing anything that does not encode back identically.
pub fn decode_bytes(raw: &[u8]) -> Result<String, NameError> {
    let text = std::str::from_utf8(raw).map_err(|_| NameError::Utf7)?;
    if !text.is_ascii() {
        return Err(NameError::Utf7);
    }
    let decoded = utf7_imap::decode_utf7_imap(text.to_string());
    if utf7_imap::encode_utf7_imap(decoded.clone()) != text {
        return Err(NameError::Utf7);
    }
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

/// The wire form of a UTF-8 name.
pub fn encode(name: &str) -> String {
    utf7_imap::encode_utf7_imap(name.to_string())
}

/// The UTF-8 text of a LIST pattern argument.
pub fn pattern_text(pattern: &ListMailbox<'_>) -> Result<String, NameError> {
    let raw: &[u8] = match pattern {
        ListMailbox::Token(t) => t.as_ref(),
        ListMailbox::String(s) => s.as_ref(),
    };
    let text = std::str::from_utf8(raw).map_err(|_| NameError::Utf7)?;
    Ok(utf7_imap::decode_utf7_imap(text.to_string()))
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
        assert_eq!(decode_bytes(b"R&AOk-sultats").unwrap(), "Résultats");
        assert_eq!(encode("Résultats"), "R&AOk-sultats");
        assert_eq!(decode_bytes(b"inbox/Sub").unwrap(), "INBOX/Sub");
        assert_eq!(decode_bytes(b"R&AOk").unwrap_err(), NameError::Utf7);
        assert_eq!(decode_bytes(b"a&-b&Zm9v-").unwrap_err(), NameError::Utf7);
        assert_eq!(
            decode_bytes("Résultats".as_bytes()).unwrap_err(),
            NameError::Utf7
        );
        assert_eq!(decode_bytes(b"a//b").unwrap_err(), NameError::Shape);
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
