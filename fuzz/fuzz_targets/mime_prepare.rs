//! MIME delivery preparation over arbitrary bytes, as a message body received
//! by SMTP DATA or IMAP APPEND goes through it: `MessageFacts::read`,
//! `ParsedMessage::parse` and `parse_sharing` (ENVELOPE, BODYSTRUCTURE,
//! sections, BINARY), `Analysis` (what the store keeps), and the ENVELOPE's
//! wire form, which must parse back to the same bytes (it is stored and
//! sent as is).
//!
//! mail-parser's `debug_assert!`s (on with `--debug-assertions`) panic on some
//! nestings; MES catches them (`mime::structure`), so such a panic is let
//! unwind. Any other panic, or one from mail-parser that MES does not catch,
//! still aborts.
#![no_main]

use std::num::NonZeroU32;
use std::sync::Once;

use imap_codec::imap_types::core::Vec1;
use imap_codec::imap_types::fetch::{Part, Section};
use libfuzzer_sys::fuzz_target;
use mes::delivery::prepare::Analysis;
use mes::mime::facts::MessageFacts;
use mes::mime::structure::ParsedMessage;
use mes::mime::structure::wire;

/// Lets panics raised inside mail-parser unwind (to MES's `catch_unwind`);
/// libFuzzer's hook aborts on every other one.
fn let_mail_parser_unwind() {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        let abort = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !info
                .location()
                .is_some_and(|l| l.file().contains("/mail-parser-"))
            {
                abort(info);
            }
        }));
    });
}

fuzz_target!(|data: &[u8]| {
    let_mail_parser_unwind();
    let _ = MessageFacts::read(data);

    let parsed = ParsedMessage::parse(data);
    let _ = parsed.body();
    let one = NonZeroU32::MIN;
    let two = NonZeroU32::new(2).unwrap_or(one);
    let part = |p: &[NonZeroU32]| Part(Vec1::try_from(p.to_vec()).unwrap_or(Vec1::from(one)));
    for section in [
        Section::Header(None),
        Section::Text(None),
        Section::Part(part(&[one])),
        Section::Part(part(&[one, two])),
        Section::Text(Some(part(&[two]))),
        Section::Mime(part(&[one])),
    ] {
        let _ = parsed.section(Some(&section));
    }
    let _ = parsed.binary(&[one]);
    let _ = parsed.binary(&[two, one]);

    let analysis = Analysis::of_parsed(data, &parsed);
    let envelope = analysis.imap_envelope;
    let back = wire::parse_envelope(&envelope).expect("the stored ENVELOPE parses back");
    assert_eq!(wire::envelope(&back), envelope, "ENVELOPE round trip");

    // SMTP's path: one mail-parser parse shared with the dossier's indexing.
    let (shared, parts) = ParsedMessage::parse_sharing(data, |m| m.map(|m| m.parts.len()));
    let _ = parts;
    let again = Analysis::of_parsed(data, &shared);
    assert_eq!(
        again.imap_envelope, envelope,
        "parse and parse_sharing agree"
    );
});
