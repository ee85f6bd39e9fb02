//! IMAP strings chosen as Dovecot chooses them: quoted or literal, and the
//! "string for humans" of Subject and display names.

use imap_codec::imap_types::core::{IString, Literal, NString, Quoted};

use super::headers::unfold;

pub(super) fn quoted_ascii(s: &'static str) -> IString<'static> {
    IString::Quoted(Quoted::unvalidated(s))
}

/// A string as Dovecot writes one: quoted, unless it holds CR, LF, 8-bit
/// bytes or more than four `"`/`\` (then a literal). A NUL ends it (C string).
pub(super) fn istring(bytes: &[u8]) -> IString<'static> {
    let bytes = match bytes.iter().position(|&b| b == 0) {
        Some(nul) => &bytes[..nul],
        None => bytes,
    };
    let specials = bytes.iter().filter(|&&b| b == b'"' || b == b'\\').count();
    let needs_literal =
        specials > 4 || bytes.iter().any(|&b| b == b'\r' || b == b'\n' || b >= 0x80);
    if !needs_literal
        && let Ok(quoted) = Quoted::try_from(String::from_utf8_lossy(bytes).into_owned())
    {
        return IString::Quoted(quoted);
    }
    match Literal::try_from(bytes.to_vec()) {
        Ok(literal) => IString::Literal(literal),
        // Unreachable (NULs were cut above), but never panic.
        Err(_) => quoted_ascii(""),
    }
}

pub(super) fn nstring(bytes: Option<&[u8]>) -> NString<'static> {
    NString(bytes.map(istring))
}

/// A header value with CR and LF removed, as an nstring.
pub(super) fn nstring_nolf(bytes: Option<&[u8]>) -> NString<'static> {
    NString(bytes.map(|b| istring(&unfold(b))))
}

/// Subject and display names: CR/LF removed, runs of white space collapsed to
/// one space, leading and trailing white space removed, NUL shown as 0x80.
/// Sent quoted when nothing had to change and nothing needs escaping,
/// otherwise as a literal (Dovecot's `imap_append_string_for_humans`).
pub(super) fn human_string(src: &[u8]) -> IString<'static> {
    let plain = src.iter().all(|&b| {
        b != 0 && b != b'\t' && b != b'\r' && b != b'\n' && b != b'"' && b != b'\\' && b < 0x80
    }) && !src.windows(2).any(|w| w == b"  ")
        && src.first() != Some(&b' ')
        && src.last() != Some(&b' ');
    if src.is_empty() || plain {
        return match Quoted::try_from(String::from_utf8_lossy(src).into_owned()) {
            Ok(q) => IString::Quoted(q),
            Err(_) => quoted_ascii(""),
        };
    }
    let mut out = Vec::with_capacity(src.len());
    let mut last_lwsp = true;
    for &b in src {
        match b {
            0 => {
                out.push(0x80);
                last_lwsp = false;
            }
            b' ' | b'\t' => {
                if !last_lwsp {
                    out.push(b' ');
                }
                last_lwsp = true;
            }
            b'\r' | b'\n' => {}
            _ => {
                out.push(b);
                last_lwsp = false;
            }
        }
    }
    if out.last() == Some(&b' ') {
        out.pop();
    }
    if out.is_empty() {
        return quoted_ascii("");
    }
    match Literal::try_from(out) {
        Ok(literal) => IString::Literal(literal),
        Err(_) => quoted_ascii(""),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_are_quoted_or_literal_like_dovecot() {
        assert!(matches!(istring(b"plain"), IString::Quoted(_)));
        assert!(matches!(istring(br#"a"b\c"d"e"#), IString::Quoted(_)));
        assert!(matches!(istring(br#"a"b\c"d"e""#), IString::Literal(_)));
        assert!(matches!(istring("é".as_bytes()), IString::Literal(_)));
        assert!(matches!(istring(b"a\r\nb"), IString::Literal(_)));
        assert_eq!(istring(b"a\0b").as_ref(), b"a");
        assert!(matches!(human_string(b"a b"), IString::Quoted(_)));
        assert_eq!(human_string(b"  a \t b \r\n c ").as_ref(), b"a b c");
        assert!(matches!(human_string(b" a"), IString::Literal(_)));
        assert_eq!(human_string(b" \t ").as_ref(), b"");
        assert_eq!(human_string(b"").as_ref(), b"");
        assert_eq!(human_string(b"a\0").as_ref(), b"a\x80");
    }
}
