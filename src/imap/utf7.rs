//! Modified UTF-7 (RFC 3501 §5.1.3), strict: every malformed name is an
//! error, never a panic. The base64 runs use the `base64` crate with the
//! modified alphabet (`,` for `/`, no padding); only the framing is here.

use base64::Engine;
use base64::alphabet::Alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};

/// Modified base64: the standard alphabet with `,` in place of `/`, unpadded.
fn engine() -> GeneralPurpose {
    // The alphabet is a constant of the RFC: building it cannot fail.
    #[allow(clippy::expect_used)]
    let alphabet =
        Alphabet::new("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,")
            .expect("the modified base64 alphabet is valid");
    GeneralPurpose::new(
        &alphabet,
        GeneralPurposeConfig::new()
            .with_encode_padding(false)
            .with_decode_padding_mode(DecodePaddingMode::RequireNone)
            .with_decode_allow_trailing_bits(false),
    )
}

/// Why a name is not valid modified UTF-7.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("invalid modified UTF-7")]
pub struct Utf7Error;

/// Encodes a UTF-8 name in modified UTF-7.
pub fn encode(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut pending: Vec<u16> = Vec::new();
    let flush = |pending: &mut Vec<u16>, out: &mut String| {
        if pending.is_empty() {
            return;
        }
        let bytes: Vec<u8> = pending.iter().flat_map(|u| u.to_be_bytes()).collect();
        out.push('&');
        out.push_str(&engine().encode(bytes));
        out.push('-');
        pending.clear();
    };
    for c in name.chars() {
        if (' '..='~').contains(&c) {
            flush(&mut pending, &mut out);
            if c == '&' {
                out.push_str("&-");
            } else {
                out.push(c);
            }
        } else {
            let mut units = [0u16; 2];
            pending.extend_from_slice(c.encode_utf16(&mut units));
        }
    }
    flush(&mut pending, &mut out);
    out
}

/// Decodes a modified UTF-7 name, refusing anything that is not the one
/// canonical encoding of its text (bytes outside printable ASCII, an
/// unterminated or empty shift, bad base64, odd or unpaired UTF-16, a shift
/// that encodes printable ASCII, two shifts in a row).
pub fn decode(text: &[u8]) -> Result<String, Utf7Error> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some((&b, tail)) = rest.split_first() {
        rest = tail;
        match b {
            b'&' => {
                let end = rest.iter().position(|&c| c == b'-').ok_or(Utf7Error)?;
                let (run, after) = rest.split_at(end);
                rest = &after[1..];
                if run.is_empty() {
                    out.push('&');
                    continue;
                }
                let bytes = engine().decode(run).map_err(|_| Utf7Error)?;
                if bytes.len() % 2 != 0 {
                    return Err(Utf7Error);
                }
                let units: Vec<u16> = bytes
                    .chunks_exact(2)
                    .map(|p| u16::from_be_bytes([p[0], p[1]]))
                    .collect();
                let decoded = String::from_utf16(&units).map_err(|_| Utf7Error)?;
                if decoded.chars().any(|c| (' '..='~').contains(&c)) {
                    return Err(Utf7Error);
                }
                // Two shifts in a row are one shift in the canonical form.
                if rest.first() == Some(&b'&') && rest.get(1) != Some(&b'-') {
                    return Err(Utf7Error);
                }
                out.push_str(&decoded);
            }
            0x20..=0x7e => out.push(char::from(b)),
            _ => return Err(Utf7Error),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        for name in [
            "Résultats",
            "Отправленные",
            "a&b",
            "日本語/メール",
            "💊 Ordonnances",
            "",
        ] {
            let e = encode(name);
            assert_eq!(decode(e.as_bytes()).unwrap(), name, "{e}");
        }
        assert_eq!(encode("Отправленные"), "&BB4EQgQ,BEAEMAQyBDsENQQ9BD0ESwQ1-");
        assert_eq!(encode("a&b"), "a&-b");
    }

    #[test]
    fn refuses_what_it_cannot_decode() {
        for bad in [
            &b"!#$$&'+,-.0123456789:;<=>?@^_`|[}"[..],
            b"&",
            b"R&AOk",
            b"&Zm9v-",
            b"&AGE-",
            b"&AOk-&AOk-",
            b"&2D0-",
            b"&AO-",
            b"&A===-",
            b"caf\xc3\xa9",
            b"tab\there",
        ] {
            assert_eq!(
                decode(bad),
                Err(Utf7Error),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }
}
