//! Modified UTF-7 mailbox names (`mes::imap::utf7`, `mes::imap::names`).
//!
//! Any bytes: `utf7::decode` and `names::decode_bytes` (both wires) never
//! panic; whatever decodes re-encodes to the same bytes (one name, one
//! spelling). Any text: `decode(encode(s)) == s`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mes::imap::names::{self, Wire};
use mes::imap::utf7;

fuzz_target!(|data: &[u8]| {
    // Bytes from the wire.
    if let Ok(name) = utf7::decode(data) {
        assert_eq!(
            utf7::encode(&name).as_bytes(),
            data,
            "decoded but not canonical"
        );
    }
    let _ = names::decode_bytes(data, Wire::Utf7);
    let _ = names::decode_bytes(data, Wire::Utf8);

    // Text from a user: the round trip property.
    let text = String::from_utf8_lossy(data);
    let encoded = utf7::encode(&text);
    assert!(
        encoded.bytes().all(|b| (0x20..=0x7e).contains(&b)),
        "{encoded:?}"
    );
    assert_eq!(utf7::decode(encoded.as_bytes()).as_deref(), Ok(&*text));
    assert_eq!(names::encode(&text), encoded);
    for wire in [Wire::Utf7, Wire::Utf8] {
        if let Some(mailbox) = names::wire(&text, wire) {
            let _ = names::decode(&mailbox, wire);
        }
    }
});
