//! Placeholder until the full RFC 3501 structure module lands.

use imap_codec::imap_types::body::{BasicFields, Body, BodyStructure, SpecificFields};
use imap_codec::imap_types::core::{IString, NString};
use imap_codec::imap_types::envelope::Envelope;

/// ENVELOPE of `raw`.
pub fn envelope(_raw: &[u8]) -> Envelope<'static> {
    Envelope {
        date: NString(None),
        subject: NString(None),
        from: vec![],
        sender: vec![],
        reply_to: vec![],
        to: vec![],
        cc: vec![],
        bcc: vec![],
        in_reply_to: NString(None),
        message_id: NString(None),
    }
}

/// BODYSTRUCTURE of `raw`.
pub fn body_structure(raw: &[u8]) -> BodyStructure<'static> {
    BodyStructure::Single {
        body: Body {
            basic: BasicFields {
                parameter_list: vec![],
                id: NString(None),
                description: NString(None),
                content_transfer_encoding: IString::try_from("7BIT")
                    .unwrap_or_else(|_| IString::try_from("7BIT").expect("static")),
                size: raw.len() as u32,
            },
            specific: SpecificFields::Text {
                subtype: IString::try_from("PLAIN").expect("static"),
                number_of_lines: 0,
            },
        },
        extension_data: None,
    }
}

/// BODY without extension data.
pub fn strip_extensions(bs: BodyStructure<'static>) -> BodyStructure<'static> {
    bs
}

/// Bytes of a BODY[section].
pub fn section(
    raw: &[u8],
    section: Option<&imap_codec::imap_types::fetch::Section<'_>>,
) -> Vec<u8> {
    use imap_codec::imap_types::fetch::Section;
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|p| p + 4)
        .unwrap_or(raw.len());
    match section {
        None => raw.to_vec(),
        Some(Section::Header(None)) => raw[..split].to_vec(),
        Some(Section::Text(None)) => raw[split..].to_vec(),
        _ => Vec::new(),
    }
}
