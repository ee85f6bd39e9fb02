//! ENVELOPE, BODYSTRUCTURE and `BODY[section]` of a stored message.
//!
//! IMAP clients never parse MIME themselves: they ask the server for the
//! ENVELOPE (RFC 3501 §7.4.2), the BODYSTRUCTURE, and then fetch the one part
//! they want to show (`BODY[1.2]`, `BODY[2.MIME]`, …, RFC 3501 §6.4.5). This
//! module computes all three from the raw bytes of a stored message, so the
//! IMAP session never touches MIME.
//!
//! # Reference behaviour
//!
//! Where RFC 3501 leaves room for choice, this module does what Dovecot 2.3
//! does, because that is what the mail clients our users run (Thunderbird,
//! Outlook, mutt, mobile apps) are tested against. The reference fixtures in
//! `tests/fixtures/imap/` were recorded from a real Dovecot 2.3.19 and the
//! tests in this module compare our output with them byte for byte (see
//! `tests/fixtures/imap/README.md`). In short:
//!
//! * strings are sent as found in the header, never decoded: type, subtype,
//!   parameter names and values keep their case (`"APPLICATION" "PDF"`,
//!   `("CHARSET" "ISO-8859-1")`, `"Base64"` stay as sent; defaults are lower
//!   case: `"plain" ("charset" "us-ascii")`, `"7bit"`); encoded-words in
//!   Subject and display names are left encoded;
//! * RFC 2231 continuations are merged (`filename*0*`, `filename*1*` become one
//!   `filename*` parameter) but the value stays percent-encoded with its
//!   `charset'lang'` prefix, as Dovecot presents it;
//! * a `text/*` part without `charset` gets `("charset" "us-ascii")` appended;
//! * sizes are octets of the body as stored (still transfer-encoded), line
//!   counts are the number of LF in it;
//! * Subject and display names are unfolded with runs of white space collapsed
//!   (Dovecot's "string for humans"); Date, Message-ID, In-Reply-To, Content-ID,
//!   Content-Description, Content-Location and Content-MD5 are the raw header
//!   value without CR/LF; the MD5 field is the Content-MD5 header if present,
//!   else NIL;
//! * the last Date/Subject/From/… header wins (Dovecot), the first Content-*
//!   header wins;
//! * a message without `MIME-Version` and without `Content-Type` is plain
//!   `text/plain; charset=us-ascii` 7bit whatever other Content-* headers say;
//! * missing addresses parts are filled as Dovecot does (`MISSING_DOMAIN`,
//!   `MISSING_MAILBOX`, `SYNTAX_ERROR`), groups are `(NIL NIL "name" NIL)` …
//!   `(NIL NIL NIL NIL)` as RFC 3501 says;
//! * a section that does not exist is the empty string (Dovecot answers `""`,
//!   not NIL, for `BODY[99]`, `BODY[1.HEADER]` on a text part, …).
//!
//! One thing is not in our hands: imap-codec writes the type of every text
//! part as `"TEXT"` and of every message/rfc822 part as `"MESSAGE" "RFC822"`
//! (its `SpecificFields::Text` / `Message` carry no type string), where
//! Dovecot writes them as in the header. These tokens are case-insensitive
//! (RFC 2045 §5.1) and clients compare them so.
//!
//! Two imap-codec details to keep in mind: `MessageDataItem::Body`
//! writes whatever extension data it is given, so give it [`strip_extensions`]
//! (or [`ParsedMessage::body`]); and imap-codec's own *decoder* (what a client
//! built on it, such as a test client, uses) refuses BODYSTRUCTUREs nested
//! more than 7 levels deep, which real clients accept and we send.
//!
//! The MIME tree itself (where parts start and end) comes from `mail-parser`,
//! which gives offsets into the raw bytes; content is never re-encoded. Header
//! fields are re-read from those raw bytes so that values are exactly as sent.
//! For well-formed MIME this gives the same tree as Dovecot; for broken MIME
//! (boundaries that are prefixes of each other, unterminated parts, …) the two
//! parsers may cut parts differently. Both are "sensible"; the differences are
//! listed in the fixtures README.
//!
//! # Layout
//!
//! One job per file: `tree.rs` cuts the message into parts (mail-parser's
//! offsets, bounded); `headers.rs` splits a header block into raw fields;
//! `lexer.rs` is the RFC 822 tokenizer Dovecot's rules need (also for the
//! message IDs of `msgid.rs`, which threading reads); `params.rs`
//! reads a part's Content-* headers and parameters; `address.rs` parses
//! address lists; `envelope.rs` builds the ENVELOPE; `strings.rs` chooses
//! quoted or literal IMAP strings as Dovecot does; `body.rs` builds
//! BODYSTRUCTURE and BODY; `section.rs` takes `BODY[section]` and
//! `BINARY[part]`. The Dovecot comparisons and the hostile-input tests of
//! the whole are in `tests.rs`; each file tests its own details.
//!
//! # Robustness
//!
//! Every function here accepts arbitrary bytes and never panics. Nesting is
//! bounded ([`MAX_DEPTH`]), and so are the number of parts listed
//! ([`MAX_PARTS`]), the nesting mail-parser is allowed to build, and the work
//! spent re-parsing encapsulated messages, so a hostile message can exhaust
//! neither the stack nor the CPU. The tests feed it broken, deeply nested and
//! randomly mutated messages and check that every answer encodes to IMAP that
//! imap-codec parses back.

mod address;
mod body;
mod envelope;
mod headers;
mod lexer;
mod msgid;
mod params;
mod section;
mod strings;
#[cfg(test)]
mod tests;
mod tree;
pub mod wire;

use std::borrow::Cow;
use std::ops::Range;

use imap_codec::imap_types::body::BodyStructure;
use imap_codec::imap_types::envelope::Envelope;
use imap_codec::imap_types::fetch::Section;
use mail_parser::Message;

pub use body::strip_extensions;
pub use msgid::message_ids;
pub use section::{BinaryError, decode_transfer};

use envelope::envelope_of;
use tree::{Limits, Node, build_from, build_message, parser_input};

/// Deepest MIME nesting we describe. Deeper parts are shown as opaque leaves:
/// the encoders and the clients' parsers are recursive too, and no real
/// message comes close.
pub const MAX_DEPTH: usize = 50;

/// Most MIME parts we describe in one message (Dovecot's default limit too).
/// Parts past it are not listed (their bytes stay in their parent's body), so
/// a message of a million empty parts cannot make a 100 MB BODYSTRUCTURE.
pub const MAX_PARTS: usize = 10_000;

/// A message parsed once, from which ENVELOPE, BODYSTRUCTURE and any
/// `BODY[section]` can be taken. Use this when a FETCH asks for several items
/// of the same message, so that the MIME tree is built only once.
#[derive(Debug, Clone)]
pub struct ParsedMessage<'a> {
    raw: &'a [u8],
    root: Node,
}

impl<'a> ParsedMessage<'a> {
    /// Parses `raw` (the message as stored, CRLF line endings). Never fails:
    /// anything that is not MIME is described as a text/plain message.
    pub fn parse(raw: &'a [u8]) -> Self {
        let mut limits = Limits {
            bytes: raw.len().saturating_mul(4).saturating_add(1 << 20),
            parts: MAX_PARTS,
        };
        let root = build_message(raw, 0..raw.len(), 0, &mut limits);
        ParsedMessage { raw, root }
    }

    /// Parses `raw` as [`ParsedMessage::parse`] does and lends mail-parser's
    /// parse of the whole message to `with`, so that a caller who also needs
    /// its decoded parts (the dossier's attachments) does not decode them a
    /// second time. `with` gets None when that parse is not the message as
    /// stored (hostile nesting made us respell it, or limits were reached).
    pub fn parse_sharing<T>(
        raw: &'a [u8],
        with: impl FnOnce(Option<&Message<'_>>) -> T,
    ) -> (Self, T) {
        let mut limits = Limits {
            // What `parse` allows, less the whole message parsed here.
            bytes: raw.len().saturating_mul(3).saturating_add(1 << 20),
            parts: MAX_PARTS,
        };
        let input = parser_input(raw);
        let parsed = tree::parse_mime(input.as_ref());
        let out = with(match input {
            Cow::Borrowed(_) => parsed.as_ref(),
            Cow::Owned(_) => None,
        });
        let root = build_from(raw, 0..raw.len(), 0, &mut limits, parsed.as_ref());
        (ParsedMessage { raw, root }, out)
    }

    /// The ENVELOPE of the message (RFC 3501 §7.4.2).
    pub fn envelope(&self) -> Envelope<'static> {
        envelope_of(self.slice(&self.root.header))
    }

    /// The BODYSTRUCTURE, with extension data (what `FETCH BODYSTRUCTURE`
    /// returns). For `FETCH BODY` pass it through [`strip_extensions`] or use
    /// [`ParsedMessage::body`].
    pub fn body_structure(&self) -> BodyStructure<'static> {
        self.structure_of(&self.root, true, 0)
    }

    /// The non-extensible BODYSTRUCTURE (what `FETCH BODY` returns).
    pub fn body(&self) -> BodyStructure<'static> {
        self.structure_of(&self.root, false, 0)
    }

    fn slice(&self, range: &Range<usize>) -> &'a [u8] {
        self.raw.get(range.clone()).unwrap_or_default()
    }
}

/// The value of the first `name` field of a header block (folded lines
/// included, as sent), for the fields threading reads that the ENVELOPE has
/// not (References).
pub fn first_field<'h>(header: &'h [u8], name: &str) -> Option<&'h [u8]> {
    headers::split_fields(header)
        .0
        .into_iter()
        .find(|f| f.name.eq_ignore_ascii_case(name.as_bytes()))
        .map(|f| f.value)
}

/// The ENVELOPE of a stored message (RFC 3501 §7.4.2).
pub fn envelope(raw: &[u8]) -> Envelope<'static> {
    ParsedMessage::parse(raw).envelope()
}

/// The BODYSTRUCTURE of a stored message, with extension data (what
/// `FETCH BODYSTRUCTURE` returns). [`strip_extensions`] turns it into what
/// `FETCH BODY` returns.
pub fn body_structure(raw: &[u8]) -> BodyStructure<'static> {
    ParsedMessage::parse(raw).body_structure()
}

/// An address header's value the way Dovecot searches it (FROM, TO, CC,
/// BCC and HEADER of an address field): `name <mailbox@domain>`, groups as
/// `group: <a@b>;`, encoded-words still encoded (see `address.rs`).
pub fn address_search_form(value: &[u8]) -> Vec<u8> {
    address::search_form(value)
}

/// The bytes of `BODY[section]` of a stored message (`None` is `BODY[]`).
/// A section that does not exist gives an empty Vec (Dovecot answers `""`).
pub fn section(raw: &[u8], section: Option<&Section<'_>>) -> Vec<u8> {
    ParsedMessage::parse(raw).section(section).into_owned()
}
