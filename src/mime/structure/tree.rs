//! The MIME tree of a stored message: where each part's header and body are
//! in the raw bytes, from mail-parser's offsets, bounded in depth, parts and
//! work (see the module documentation of `structure`).

use std::borrow::Cow;
use std::ops::Range;

use mail_parser::{Encoding, Message, PartType};

use super::MAX_DEPTH;
use super::headers::{is_message_rfc822, is_mime_message};

/// One MIME part: where its header and body are in the raw message.
#[derive(Debug, Clone)]
pub(super) struct Node {
    /// The part's header block, including the blank line that ends it (when
    /// there is one). For the top part of a message it is the message header.
    pub(super) header: Range<usize>,
    /// The part's body, as stored (still transfer-encoded).
    pub(super) body: Range<usize>,
    /// Whether Content-* headers count (Dovecot ignores them in a message
    /// that has neither MIME-Version nor Content-Type).
    pub(super) mime: bool,
    pub(super) kind: Kind,
}

#[derive(Debug, Clone)]
pub(super) enum Kind {
    Leaf,
    Multipart(Vec<Node>),
    /// message/rfc822: the encapsulated message's top part.
    Message(Box<Node>),
}

/// What one parse may still spend: bytes handed to mail-parser (encapsulated
/// messages it did not parse in place are parsed again from their bytes) and
/// parts listed.
pub(super) struct Limits {
    pub(super) bytes: usize,
    pub(super) parts: usize,
}

/// Builds the tree of the message stored at `raw[range]` (the whole message,
/// or the body of a message/rfc822 part).
pub(super) fn build_message(
    raw: &[u8],
    range: Range<usize>,
    depth: usize,
    limits: &mut Limits,
) -> Node {
    let range = clamp(raw, range);
    let len = range.len();
    if depth < MAX_DEPTH && limits.bytes >= len {
        limits.bytes -= len;
        let input = parser_input(raw.get(range.clone()).unwrap_or_default());
        let parsed = parse_mime(input.as_ref());
        return build_from(raw, range, depth, limits, parsed.as_ref());
    }
    build_from(raw, range, depth, limits, None)
}

/// The tree of `raw[range]` from mail-parser's parse of those bytes (None:
/// not parsed, because of the depth or the byte budget).
pub(super) fn build_from(
    raw: &[u8],
    range: Range<usize>,
    depth: usize,
    limits: &mut Limits,
    parsed: Option<&Message<'_>>,
) -> Node {
    let range = clamp(raw, range);
    if let Some(message) = parsed.filter(|m| !m.parts.is_empty()) {
        let mut ctx = BuildCtx {
            raw,
            base: range.start,
            end: range.end,
            limits,
        };
        let mut root = ctx.part(message, 0, depth, true);
        // The top part always spans to the end of the message.
        root.body.end = range.end;
        root.header.start = range.start;
        return root;
    }
    // Not parseable as a message (no header at all, or limits reached): the
    // header runs to the first blank line, as Dovecot would read it.
    let bytes = raw.get(range.clone()).unwrap_or_default();
    let header_end = crate::mime::header_end(bytes) + range.start;
    let header = range.start..header_end;
    let mime = is_mime_message(raw.get(header.clone()).unwrap_or_default());
    Node {
        header,
        body: header_end..range.end,
        mime,
        kind: Kind::Leaf,
    }
}

/// How many times each of "rfc822", "global" and "digest" may appear in what
/// we hand to mail-parser.
const MAX_TYPE_WORDS: usize = 256;

/// mail-parser builds each encapsulated message as a value nested in its
/// parent and drops them recursively: a message nesting tens of thousands of
/// message/rfc822 parts (a few MB) would overflow the stack. Every level of
/// nesting needs its own `message/rfc822`, `message/global` or
/// `multipart/digest` somewhere, so past the first [`MAX_TYPE_WORDS`]
/// occurrences of each word we give mail-parser a copy where they are spelt
/// differently. The copy has the same length, so every offset mail-parser
/// returns still points into the real message; the parts beyond the limit
/// are then read by us (depth-bounded) or shown as leaves.
///
/// mail-parser's parse of `input` ([`crate::mime::parse`]): a message it
/// cannot read is described as text/plain, never a panic.
pub(super) fn parse_mime(input: &[u8]) -> Option<Message<'_>> {
    crate::mime::parse(input)
}

pub(super) fn parser_input(bytes: &[u8]) -> Cow<'_, [u8]> {
    const WORDS: [&[u8; 6]; 3] = [b"rfc822", b"global", b"digest"];
    // Case-insensitive search as an exact search in a lower-cased copy: memmem
    // scans a large message (a base64 attachment) in microseconds, where a
    // byte-by-byte comparison took milliseconds.
    let lower = bytes.to_ascii_lowercase();
    let mut spoil: Vec<usize> = Vec::new();
    for word in WORDS {
        spoil.extend(
            memchr::memmem::find_iter(&lower, word)
                .skip(MAX_TYPE_WORDS)
                .map(|at| at + 5),
        );
    }
    if spoil.is_empty() {
        return Cow::Borrowed(bytes);
    }
    let mut copy = bytes.to_vec();
    for at in spoil {
        if let Some(b) = copy.get_mut(at) {
            *b = b'_';
        }
    }
    Cow::Owned(copy)
}

struct BuildCtx<'r, 'l> {
    raw: &'r [u8],
    /// Where the bytes given to mail-parser start in `raw`.
    base: usize,
    /// Where they end.
    end: usize,
    limits: &'l mut Limits,
}

impl BuildCtx<'_, '_> {
    fn range(&self, start: u32, end: u32) -> Range<usize> {
        let start = self.base.saturating_add(start as usize).min(self.end);
        let end = self
            .base
            .saturating_add(end as usize)
            .clamp(start, self.end);
        start..end
    }

    fn part(&mut self, message: &Message<'_>, id: usize, depth: usize, msg_root: bool) -> Node {
        let Some(part) = message.parts.get(id) else {
            return Node {
                header: self.end..self.end,
                body: self.end..self.end,
                mime: true,
                kind: Kind::Leaf,
            };
        };
        self.limits.parts = self.limits.parts.saturating_sub(1);
        let header = self.range(part.offset_header, part.offset_body);
        let body = self.range(part.offset_body, part.offset_end);
        let header_bytes = self.raw.get(header.clone()).unwrap_or_default();
        let mime = !msg_root || is_mime_message(header_bytes);
        let kind = if depth >= MAX_DEPTH {
            Kind::Leaf
        } else {
            match &part.body {
                PartType::Multipart(ids) => {
                    let mut children = Vec::new();
                    // Children come after their parent: this also rules out loops.
                    for &child in ids.iter().filter(|&&child| child as usize > id) {
                        if self.limits.parts == 0 {
                            break;
                        }
                        children.push(self.part(message, child as usize, depth + 1, false));
                    }
                    Kind::Multipart(children)
                }
                // Parsed in place by mail-parser: same offsets as ours.
                PartType::Message(inner) if part.encoding == Encoding::None => {
                    let mut root = self.part(inner, 0, depth + 1, true);
                    root.header.start = body.start;
                    root.header.end = root.header.end.max(body.start);
                    root.body.start = root.body.start.max(root.header.end);
                    root.body.end = body.end;
                    if root.body.start > root.body.end {
                        root.body.start = root.body.end;
                    }
                    Kind::Message(Box::new(root))
                }
                // A message/rfc822 part mail-parser decoded (base64 / QP) or did
                // not parse: read the raw bytes as a message, as Dovecot does.
                PartType::Message(_) => Kind::Message(Box::new(build_message(
                    self.raw,
                    body.clone(),
                    depth + 1,
                    self.limits,
                ))),
                _ if mime && is_message_rfc822(header_bytes) => Kind::Message(Box::new(
                    build_message(self.raw, body.clone(), depth + 1, self.limits),
                )),
                _ => Kind::Leaf,
            }
        };
        Node {
            header,
            body,
            mime,
            kind,
        }
    }
}

fn clamp(raw: &[u8], range: Range<usize>) -> Range<usize> {
    let end = range.end.min(raw.len());
    range.start.min(end)..end
}
