//! The one entry to mail-parser for reading messages anyone can send.
//!
//! mail-parser checks its own state with `debug_assert!`, which some malformed
//! nestings trip (found by fuzzing, `fuzz/` `mime_prepare`): debug builds and
//! tests panicked where release builds carry on. Every caller goes through
//! these functions, which turn such a panic into "not parsed", so that a
//! hostile message is read as unparsable everywhere, never as a crash.

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
        let _ = crate::delivery::facts::MessageFacts::read(raw);
        let limits = crate::dossier::limits::Limits::default();
        let _ = crate::dossier::filing::examine(raw, &[], &[], &limits);
    }
}
