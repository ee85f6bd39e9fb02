//! FETCH responses written straight into bytes for the items a folder listing
//! asks for (UID, FLAGS, INTERNALDATE, RFC822.SIZE, ENVELOPE, MODSEQ).
//!
//! A client opening a folder fetches these for every message, so the work per
//! message must be small: the ENVELOPE is encoded by imap-codec once, at
//! delivery (`mime::structure::wire::envelope`), stored, and copied here as it is; the other items
//! are numbers and flags. Everything else goes through imap-types and
//! imap-codec in `fetch.rs`. The output is byte for byte what imap-codec
//! writes for the same items (the tests check it).

use std::io::Write;
use std::num::NonZeroU32;

use imap_codec::imap_types::core::{IString, NString};
use imap_codec::imap_types::fetch::{MessageDataItem, MessageDataItemName};

use super::listing::Listed;

/// An IMAP string as imap-codec writes it (a literal is sent without waiting),
/// for the responses imap-types cannot express (`OLDNAME`).
pub fn string(value: &IString<'_>) -> Vec<u8> {
    crate::mime::structure::wire::fetch_item_value(
        "RFC822",
        MessageDataItem::Rfc822(NString(Some(value.clone()))),
    )
}

/// True when every item asked for can be written by [`metadata_response`].
pub fn is_metadata_only(names: &[MessageDataItemName<'_>]) -> bool {
    names.iter().all(|n| {
        matches!(
            n,
            MessageDataItemName::Uid
                | MessageDataItemName::Flags
                | MessageDataItemName::InternalDate
                | MessageDataItemName::Rfc822Size
                | MessageDataItemName::Envelope
                | MessageDataItemName::ModSeq
        )
    })
}

/// A stored flag is written as it is when it is one of the system flags as
/// imap-codec spells them, or a keyword atom: what imap-types accepted when it
/// was set. Anything else (a row written by hand) sends the message down the
/// general path.
fn plain_flag(flag: &str) -> bool {
    if flag.starts_with('\\') {
        return matches!(
            flag,
            "\\Seen" | "\\Answered" | "\\Flagged" | "\\Deleted" | "\\Draft"
        );
    }
    !flag.is_empty()
        && flag.bytes().all(|b| {
            b.is_ascii_graphic()
                && !matches!(b, b'(' | b')' | b'{' | b'%' | b'*' | b'"' | b'\\' | b']')
        })
}

/// Appends `* seq FETCH (…)` for message `uid` to `out`, items in the order
/// of `names` (which [`is_metadata_only`] accepted). Returns false, leaving
/// `out` as it was, when the message cannot be written here: no stored
/// ENVELOPE, a flag that is not an atom, a date out of range.
pub fn metadata_response(
    out: &mut Vec<u8>,
    seq: NonZeroU32,
    uid: i64,
    entry: &Listed,
    names: &[MessageDataItemName<'_>],
    recent: bool,
) -> bool {
    let start = out.len();
    let written = write_metadata(out, seq, uid, entry, names, recent);
    if written.is_none() {
        out.truncate(start);
    }
    written.is_some()
}

fn write_metadata(
    out: &mut Vec<u8>,
    seq: NonZeroU32,
    uid: i64,
    entry: &Listed,
    names: &[MessageDataItemName<'_>],
    recent: bool,
) -> Option<()> {
    write!(out, "* {seq} FETCH (").ok()?;
    for (i, name) in names.iter().enumerate() {
        if i > 0 {
            out.push(b' ');
        }
        match name {
            MessageDataItemName::Uid => {
                let uid = NonZeroU32::new(u32::try_from(uid).ok()?)?;
                write!(out, "UID {uid}").ok()?;
            }
            MessageDataItemName::Flags => {
                out.extend_from_slice(b"FLAGS (");
                let mut first = true;
                for flag in entry.flags.split(' ').filter(|f| !f.is_empty()) {
                    if !plain_flag(flag) {
                        return None;
                    }
                    if !first {
                        out.push(b' ');
                    }
                    out.extend_from_slice(flag.as_bytes());
                    first = false;
                }
                if recent {
                    if !first {
                        out.push(b' ');
                    }
                    out.extend_from_slice(b"\\Recent");
                }
                out.push(b')');
            }
            MessageDataItemName::InternalDate => {
                // Four-digit years only, as imap-types accepts (else the general path).
                let date = chrono::DateTime::from_timestamp(entry.internal_date, 0)
                    .filter(|d| (0..=9999).contains(&chrono::Datelike::year(d)))?;
                write!(
                    out,
                    "INTERNALDATE \"{}\"",
                    date.format("%d-%b-%Y %H:%M:%S +0000")
                )
                .ok()?;
            }
            MessageDataItemName::Rfc822Size => {
                write!(out, "RFC822.SIZE {}", u32::try_from(entry.size).ok()?).ok()?;
            }
            MessageDataItemName::Envelope => {
                let wire = entry.envelope.as_deref().filter(|w| !w.is_empty())?;
                out.extend_from_slice(b"ENVELOPE ");
                out.extend_from_slice(wire);
            }
            MessageDataItemName::ModSeq => {
                write!(out, "MODSEQ ({})", entry.modseq.max(1)).ok()?;
            }
            _ => return None,
        }
    }
    out.extend_from_slice(b")\r\n");
    Some(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::imap::session::flag_fetch;
    use crate::mime::structure;
    use crate::mime::structure::wire::{envelope, parse_envelope};
    use imap_codec::ResponseCodec;
    use imap_codec::encode::Encoder;
    use imap_codec::imap_types::core::Vec1;
    use imap_codec::imap_types::response::{Data, Response};
    use std::num::NonZeroU64;

    const UID: i64 = 4_000_000_001;

    fn entry(raw: &[u8], flags: &str) -> Listed {
        Listed {
            flags: flags.into(),
            modseq: 123_456,
            internal_date: 1_764_140_400,
            size: raw.len() as i64,
            envelope: Some(envelope(&structure::envelope(raw)).into_boxed_slice()),
            message_id: 1,
            blob_hash: "00".repeat(32).into(),
            search: Default::default(),
        }
    }

    /// What imap-codec writes for the same items, built the general way.
    fn reference(seq: NonZeroU32, e: &Listed, raw: &[u8], recent: bool) -> Vec<u8> {
        let date = chrono::DateTime::from_timestamp(e.internal_date, 0)
            .map(|d| d.with_timezone(&chrono::FixedOffset::east_opt(0).expect("UTC")))
            .and_then(|d| imap_codec::imap_types::datetime::DateTime::try_from(d).ok())
            .expect("date");
        let items = vec![
            MessageDataItem::Uid(NonZeroU32::new(UID as u32).expect("uid")),
            MessageDataItem::Flags(flag_fetch(&e.flags, recent)),
            MessageDataItem::InternalDate(date),
            MessageDataItem::Rfc822Size(e.size as u32),
            MessageDataItem::Envelope(structure::envelope(raw)),
            MessageDataItem::ModSeq(NonZeroU64::new(e.modseq as u64).expect("modseq")),
        ];
        let response = Response::Data(Data::Fetch {
            seq,
            items: Vec1::try_from(items).expect("items"),
        });
        ResponseCodec::default().encode(&response).dump()
    }

    const NAMES: [MessageDataItemName<'static>; 6] = [
        MessageDataItemName::Uid,
        MessageDataItemName::Flags,
        MessageDataItemName::InternalDate,
        MessageDataItemName::Rfc822Size,
        MessageDataItemName::Envelope,
        MessageDataItemName::ModSeq,
    ];

    #[test]
    fn matches_imap_codec_for_plain_and_hostile_headers() {
        let messages: [&[u8]; 5] = [
            b"From: Dr Marie Curie <marie.curie@hopital-a.mes.test>\r\nTo: a@b.test, \"Group\": c@d.test;\r\nSubject: Compte rendu\r\nDate: Tue, 24 Nov 2026 10:00:00 +0100\r\nMessage-ID: <x@y>\r\n\r\nbody\r\n",
            "Subject: =?utf-8?q?R=C3=A9sultats?= \"quoted\" \\ back\r\nFrom: \"Éloïse\" <e@x.test>\r\n\r\n".as_bytes(),
            b"Subject: line\r\n folded {5}\r\nIn-Reply-To: <a@b>\r\nSender: \r\n\r\n",
            b"Subject: \x00\x01\xff raw\r\n\r\n",
            b"",
        ];
        for (i, raw) in messages.iter().enumerate() {
            for (flags, recent) in [
                ("", false),
                ("\\Seen $Label1", true),
                ("\\Answered \\Flagged", false),
            ] {
                let e = entry(raw, flags);
                let seq = NonZeroU32::new(i as u32 + 1).expect("seq");
                let mut out = b"before".to_vec();
                assert!(metadata_response(&mut out, seq, UID, &e, &NAMES, recent));
                let wire = e.envelope.as_deref().expect("wire");
                assert_eq!(parse_envelope(wire), Some(structure::envelope(raw)));
                assert_eq!(
                    String::from_utf8_lossy(&out[6..]),
                    String::from_utf8_lossy(&reference(seq, &e, raw, recent)),
                    "message {i}, flags {flags:?}"
                );
            }
        }
    }

    #[test]
    fn falls_back_without_wire_envelope_or_with_odd_flags() {
        let raw = b"Subject: x\r\n\r\n";
        // Refused, and the output left as it was.
        let refused = |e: &Listed| {
            let mut out = b"kept".to_vec();
            !metadata_response(&mut out, NonZeroU32::MIN, UID, e, &NAMES, false) && out == b"kept"
        };
        let mut no_envelope = entry(raw, "\\Seen");
        no_envelope.envelope = None;
        let mut year_minus_one = entry(raw, "\\Seen");
        year_minus_one.internal_date = -62_167_222_800; // 31-Dec--0001 in UTC
        assert!(refused(&no_envelope));
        assert!(refused(&year_minus_one));
        assert!(refused(&entry(raw, "bad\"flag")));
        assert!(refused(&entry(raw, "\\seen")));
        assert!(!refused(&entry(raw, "\\Seen $Suivi")));
        assert!(!is_metadata_only(&[MessageDataItemName::BodyStructure]));
        assert!(is_metadata_only(&NAMES));
    }
}
