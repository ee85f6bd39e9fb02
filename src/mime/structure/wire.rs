//! The ENVELOPE in wire form, as imap-codec writes it: computed once at
//! delivery and stored, copied as it is into FETCH responses (`imap::wire`).

use std::num::NonZeroU32;

use imap_codec::ResponseCodec;
use imap_codec::decode::Decoder;
use imap_codec::encode::Encoder;
use imap_codec::imap_types::IntoStatic;
use imap_codec::imap_types::core::Vec1;
use imap_codec::imap_types::envelope::Envelope;
use imap_codec::imap_types::fetch::MessageDataItem;
use imap_codec::imap_types::response::{Data, Response};

/// The wire form of an ENVELOPE: what imap-codec writes after `ENVELOPE `.
/// Strings that need it are literals, which a server sends without waiting.
pub fn envelope(envelope: &Envelope<'static>) -> Vec<u8> {
    fetch_item_value("ENVELOPE", MessageDataItem::Envelope(envelope.clone()))
}

/// The value of one FETCH item (`name` is what imap-codec writes before it),
/// as imap-codec encodes it: the one way responses imap-types cannot express
/// borrow its choice of quoted string or literal.
pub fn fetch_item_value(name: &str, item: MessageDataItem<'_>) -> Vec<u8> {
    let response = Response::Data(Data::Fetch {
        seq: NonZeroU32::MIN,
        items: Vec1::from(item),
    });
    let encoded = ResponseCodec::default().encode(&response).dump();
    let prefix = format!("* 1 FETCH ({name} ");
    encoded
        .strip_prefix(prefix.as_bytes())
        .and_then(|rest| rest.strip_suffix(b")\r\n"))
        .map(<[u8]>::to_vec)
        .unwrap_or_default()
}

/// The ENVELOPE back from its wire form, for FETCHes that go through
/// imap-types (with BODYSTRUCTURE, content, …). None if it does not parse.
pub fn parse_envelope(wire: &[u8]) -> Option<Envelope<'static>> {
    let mut response = Vec::with_capacity(wire.len() + 24);
    response.extend_from_slice(b"* 1 FETCH (ENVELOPE ");
    response.extend_from_slice(wire);
    response.extend_from_slice(b")\r\n");
    let (_, decoded) = ResponseCodec::default().decode(&response).ok()?;
    match decoded {
        Response::Data(Data::Fetch { items, .. }) => {
            items.into_iter().find_map(|item| match item {
                MessageDataItem::Envelope(e) => Some(e.into_static()),
                _ => None,
            })
        }
        _ => None,
    }
}
