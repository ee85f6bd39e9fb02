//! The one entry to mail-parser for reading messages anyone can send, and
//! the one rule for where a raw header block ends ([`blank_line`]).
//!
//! mail-parser checks its own state with `debug_assert!`, which some malformed
//! nestings trip (found by fuzzing, `fuzz/` `mime_prepare`): debug builds and
//! tests panicked where release builds carry on. Every caller goes through
//! these functions, which turn such a panic into "not parsed", so that a
//! hostile message is read as unparsable everywhere, never as a crash.

pub mod facts;
pub mod search;
pub mod structure;
pub mod subject;

use std::ops::Range;
use std::panic::{AssertUnwindSafe, catch_unwind};

use mail_parser::{Message, MessageParser};

/// The whole message (headers and MIME tree), or `None` if it cannot be read.
pub fn parse(raw: &[u8]) -> Option<Message<'_>> {
    catch_unwind(AssertUnwindSafe(|| MessageParser::default().parse(raw)))
        .ok()
        .flatten()
}

/// The top-level header fields only, or `None` if they cannot be read.
pub fn parse_headers(raw: &[u8]) -> Option<Message<'_>> {
    catch_unwind(AssertUnwindSafe(|| {
        MessageParser::default().parse_headers(raw)
    }))
    .ok()
    .flatten()
}

/// A Date header value as Unix seconds (UTC), `None` when it does not parse
/// as a valid RFC 5322 date (what SORT and THREAD then replace by the
/// INTERNALDATE, RFC 5256 §2.2).
pub fn parse_date(value: &[u8]) -> Option<i64> {
    let text = String::from_utf8_lossy(value);
    catch_unwind(AssertUnwindSafe(|| {
        mail_parser::DateTime::parse_rfc822(&text)
    }))
    .ok()
    .flatten()
    .filter(mail_parser::DateTime::is_valid)
    .map(|d| d.to_timestamp())
}

/// The blank line that ends the header block of `raw` (CRLF, or a bare LF as
/// Dovecot also takes it), or `None` when `raw` is all header. The one rule
/// for where the header ends when we read raw bytes ourselves.
pub fn blank_line(raw: &[u8]) -> Option<Range<usize>> {
    let mut start = 0;
    for nl in memchr::memchr_iter(b'\n', raw) {
        if matches!(&raw[start..nl], b"" | b"\r") {
            return Some(start..nl + 1);
        }
        start = nl + 1;
    }
    None
}

/// Index just after the blank line that ends the header block of `raw`
/// (where the body starts), or its length when it is all header.
pub fn header_end(raw: &[u8]) -> usize {
    blank_line(raw).map_or(raw.len(), |r| r.end)
}

/// The header fields of `raw`, without the blank line that ends them (what
/// `text/rfc822-headers` carries in DSNs and MDNs).
pub fn header_fields(raw: &[u8]) -> &[u8] {
    &raw[..blank_line(raw).map_or(raw.len(), |r| r.start)]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_message_and_its_headers() {
        let raw = b"Subject: hi\r\nContent-Type: text/plain\r\n\r\nbody\r\n";
        assert_eq!(
            parse(raw)
                .and_then(|m| m.subject().map(str::to_owned))
                .as_deref(),
            Some("hi")
        );
        assert_eq!(
            parse_headers(raw)
                .and_then(|m| m.subject().map(str::to_owned))
                .as_deref(),
            Some("hi")
        );
    }

    #[test]
    fn dates_parse_to_utc_or_not_at_all() {
        assert_eq!(
            parse_date(b"Mon, 1 Jan 2024 10:00:00 +0000"),
            Some(1_704_103_200)
        );
        assert_eq!(
            parse_date(b"Mon, 1 Jan 2024 11:00:00 +0100"),
            Some(1_704_103_200)
        );
        assert_eq!(
            parse_date(b"Sun, 31 Dec 2023 23:30:00 -0200"),
            Some(1_704_072_600)
        );
        assert_eq!(parse_date(b"not a date"), None);
        assert_eq!(parse_date(b""), None);
    }

    #[test]
    fn header_block_ends_at_the_first_blank_line() {
        let raw = b"A: 1\r\n b\r\nC: 2\r\n\r\nbody\r\n\r\nmore";
        assert_eq!(blank_line(raw), Some(16..18));
        assert_eq!(header_end(raw), 18);
        assert_eq!(header_fields(raw), b"A: 1\r\n b\r\nC: 2\r\n");
        // Bare LF, as Dovecot reads it.
        assert_eq!(header_end(b"A: 1\n\nbody"), 6);
        assert_eq!(header_fields(b"A: 1\n\r\nbody"), b"A: 1\n");
        // No blank line: all header. A body right away: no field.
        assert_eq!(blank_line(b"A: 1\r\nB: 2"), None);
        assert_eq!(header_end(b"A: 1\r\nB: 2\r\n"), 12);
        assert_eq!(header_fields(b"A: 1\r\n"), b"A: 1\r\n");
        assert_eq!(header_end(b"\r\nbody"), 2);
        assert_eq!(header_fields(b"\r\nbody"), b"");
        // A line holding only CR and more is not blank.
        assert_eq!(blank_line(b"A: 1\r\n\r\r\nB"), None);
        assert_eq!(header_end(b""), 0);
    }

    /// The input fuzzing found (`FUZZING.md`, finding 1): mail-parser's
    /// `debug_assert!` trips on it. Every reader of whole messages must take
    /// it as an ordinary (unparsable or plain) message.
    #[test]
    fn fuzz_input_is_not_a_panic_anywhere() {
        let raw: &[u8] = b"Content-Type:multipart/digest;boundary====digest-inner==\n\n\
            --===digest-inner==\n\nContent-Type:message/rfc822\n\n\n--===digest-inner==--";
        let _ = parse(raw);
        let _ = parse_headers(raw);
        let _ = crate::web::render::render(raw);
        let _ = crate::web::render::attachment(raw, 0);
        let _ = crate::mime::facts::MessageFacts::read(raw);
        let limits = crate::dossier::limits::Limits::default();
        let _ = crate::dossier::filing::examine(raw, &[], &[], &limits);
    }
}
