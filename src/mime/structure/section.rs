//! `BODY[section]` and `BINARY[part]`: finding a part by its number and
//! taking its bytes, or undoing its Content-Transfer-Encoding.

use std::borrow::Cow;

use imap_codec::imap_types::fetch::{Part, Section};

use super::ParsedMessage;
use super::headers::header_fields;
use super::params::PartData;
use super::tree::{Kind, Node};

impl<'a> ParsedMessage<'a> {
    /// The bytes of `BODY[section]` (`None` is `BODY[]`, the whole message).
    /// A section that does not exist gives an empty slice: Dovecot answers
    /// `""` there, and so should we. `<partial>` is up to the caller.
    pub fn section(&self, section: Option<&Section<'_>>) -> Cow<'a, [u8]> {
        let Some(section) = section else {
            return Cow::Borrowed(self.raw);
        };
        match section {
            Section::Part(part) => match resolve(&self.root, part_numbers(part)) {
                Some(node) => Cow::Borrowed(self.slice(&node.body)),
                None => Cow::Borrowed(&[]),
            },
            Section::Mime(part) => match resolve(&self.root, part_numbers(part)) {
                Some(node) => Cow::Borrowed(self.slice(&node.header)),
                None => Cow::Borrowed(&[]),
            },
            Section::Header(part) => match self.message_at(part.as_ref()) {
                Some(msg) => Cow::Borrowed(self.slice(&msg.header)),
                None => Cow::Borrowed(&[]),
            },
            Section::Text(part) => match self.message_at(part.as_ref()) {
                Some(msg) => Cow::Borrowed(self.slice(&msg.body)),
                None => Cow::Borrowed(&[]),
            },
            Section::HeaderFields(part, names) => match self.message_at(part.as_ref()) {
                Some(msg) => {
                    let names: Vec<&[u8]> = names.as_ref().iter().map(|n| n.as_ref()).collect();
                    Cow::Owned(header_fields(self.slice(&msg.header), &names, true))
                }
                None => Cow::Borrowed(&[]),
            },
            Section::HeaderFieldsNot(part, names) => match self.message_at(part.as_ref()) {
                Some(msg) => {
                    let names: Vec<&[u8]> = names.as_ref().iter().map(|n| n.as_ref()).collect();
                    Cow::Owned(header_fields(self.slice(&msg.header), &names, false))
                }
                None => Cow::Borrowed(&[]),
            },
        }
    }

    /// The content of `BINARY[part]` (RFC 3516): the part's body with its
    /// Content-Transfer-Encoding undone. An empty `part` is the whole message
    /// as stored; a part that does not exist is empty, as for `BODY[part]`.
    /// `<partial>` is up to the caller and counts decoded octets.
    pub fn binary(&self, part: &[std::num::NonZeroU32]) -> Result<Cow<'a, [u8]>, BinaryError> {
        if part.is_empty() {
            return Ok(Cow::Borrowed(self.raw));
        }
        let Some(node) = resolve(&self.root, part.iter().map(|n| n.get()).collect()) else {
            return Ok(Cow::Borrowed(&[]));
        };
        let encoding = if node.mime {
            PartData::from_header(self.slice(&node.header)).encoding
        } else {
            // Content-* headers do not count here (see `Node::mime`): 7bit.
            None
        };
        decode_transfer(self.slice(&node.body), encoding.as_deref())
    }

    /// The (encapsulated) message whose HEADER/TEXT a section refers to: the
    /// top-level message without a part number, else the message/rfc822 part
    /// the number designates.
    fn message_at(&self, part: Option<&Part>) -> Option<&Node> {
        match part {
            None => Some(&self.root),
            Some(part) => match &resolve(&self.root, part_numbers(part))?.kind {
                Kind::Message(inner) => Some(inner),
                _ => None,
            },
        }
    }
}

/// Why `BINARY[part]` cannot be given (RFC 3516 §4.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum BinaryError {
    /// A Content-Transfer-Encoding we cannot undo (`NO [UNKNOWN-CTE]`).
    #[error("unknown Content-Transfer-Encoding")]
    UnknownCte,
    /// Content that is not valid in its encoding.
    #[error("content not valid in its Content-Transfer-Encoding")]
    Corrupt,
}

/// Undoes a Content-Transfer-Encoding (RFC 2045 §6): 7bit, 8bit and binary
/// (or none) are the bytes as they are; base64 ignores characters outside its
/// alphabet, as §6.8 says; quoted-printable leaves a `=` that starts no escape
/// as it is (§6.7, note 1). Decoding is mail-parser's.
pub fn decode_transfer<'b>(
    body: &'b [u8],
    encoding: Option<&[u8]>,
) -> Result<Cow<'b, [u8]>, BinaryError> {
    let Some(encoding) = encoding else {
        return Ok(Cow::Borrowed(body));
    };
    let is = |name: &str| encoding.eq_ignore_ascii_case(name.as_bytes());
    if is("7bit") || is("8bit") || is("binary") {
        Ok(Cow::Borrowed(body))
    } else if is("base64") {
        let alphabet: Vec<u8> = body
            .iter()
            .copied()
            .filter(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'='))
            .collect();
        mail_parser::decoders::base64::base64_decode(&alphabet)
            .map(Cow::Owned)
            .ok_or(BinaryError::Corrupt)
    } else if is("quoted-printable") {
        let mut stream = mail_parser::parsers::MessageStream::new(body);
        match stream.decode_quoted_printable_mime(b"") {
            (usize::MAX, _) => Err(BinaryError::Corrupt),
            (_, decoded) => Ok(Cow::Owned(decoded.into_owned())),
        }
    } else {
        Err(BinaryError::UnknownCte)
    }
}

/// Part numbers of a section as plain integers.
fn part_numbers(part: &Part) -> Vec<u32> {
    part.0.as_ref().iter().map(|n| n.get()).collect()
}

/// The part designated by `path` in the message whose top part is `root`
/// (RFC 3501 §6.4.5): in a multipart message part N is its Nth child; in a
/// non-multipart message part 1 is the message body itself; inside a
/// message/rfc822 part numbering starts again in the encapsulated message.
fn resolve(root: &Node, path: Vec<u32>) -> Option<&Node> {
    let mut message = root;
    let mut rest = path.as_slice();
    loop {
        // First number: a part of the current (possibly encapsulated) message.
        let (first, tail) = rest.split_first()?;
        let index = usize::try_from(*first).ok()?.checked_sub(1)?;
        let mut node = match &message.kind {
            Kind::Multipart(children) => children.get(index)?,
            _ if index == 0 => message,
            _ => return None,
        };
        rest = tail;
        // Following numbers: down through multiparts, or into a message/rfc822.
        loop {
            let Some((next, tail)) = rest.split_first() else {
                return Some(node);
            };
            match &node.kind {
                Kind::Multipart(children) => {
                    let index = usize::try_from(*next).ok()?.checked_sub(1)?;
                    node = children.get(index)?;
                    rest = tail;
                }
                Kind::Message(inner) => {
                    message = inner;
                    break;
                }
                Kind::Leaf => return None,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::ParsedMessage;
    use super::super::tests::{bs_wire, sec, wire};
    use super::super::{body_structure, section, strip_extensions};
    use super::*;
    use imap_codec::imap_types::fetch::MessageDataItem;
    use std::num::NonZeroU32;

    #[test]
    fn single_part_message_sections() {
        let raw = b"From: a@b.example\r\nSubject: s\r\n\r\nhello\r\n";
        assert_eq!(section(raw, None), raw.to_vec());
        assert_eq!(section(raw, sec("1").as_ref()), b"hello\r\n");
        assert_eq!(section(raw, sec("TEXT").as_ref()), b"hello\r\n");
        assert_eq!(
            section(raw, sec("1.MIME").as_ref()),
            b"From: a@b.example\r\nSubject: s\r\n\r\n"
        );
        assert_eq!(
            section(raw, sec("HEADER").as_ref()),
            section(raw, sec("1.MIME").as_ref())
        );
        assert_eq!(section(raw, sec("2").as_ref()), b"");
        assert_eq!(section(raw, sec("1.1").as_ref()), b"");
        assert_eq!(section(raw, sec("1.HEADER").as_ref()), b"");
        assert_eq!(
            section(raw, sec("HEADER.FIELDS (subject)").as_ref()),
            b"Subject: s\r\n\r\n"
        );
        assert_eq!(
            section(raw, sec("HEADER.FIELDS.NOT (SUBJECT)").as_ref()),
            b"From: a@b.example\r\n\r\n"
        );
        assert_eq!(
            bs_wire(raw),
            r#"("TEXT" "plain" ("charset" "us-ascii") NIL NIL "7bit" 7 1 NIL NIL NIL NIL)"#
        );
        assert_eq!(
            String::from_utf8_lossy(&wire(
                MessageDataItem::Body(strip_extensions(body_structure(raw))),
                "BODY"
            )),
            r#"("TEXT" "plain" ("charset" "us-ascii") NIL NIL "7bit" 7 1)"#
        );
    }

    #[test]
    fn top_level_message_rfc822() {
        let raw = b"Subject: outer\r\nMIME-Version: 1.0\r\nContent-Type: message/rfc822\r\n\r\n\
Subject: inner\r\n\r\nbody\r\n";
        assert_eq!(
            section(raw, sec("1").as_ref()),
            b"Subject: inner\r\n\r\nbody\r\n"
        );
        assert_eq!(
            section(raw, sec("1.HEADER").as_ref()),
            b"Subject: inner\r\n\r\n"
        );
        assert_eq!(section(raw, sec("1.TEXT").as_ref()), b"body\r\n");
        assert_eq!(section(raw, sec("1.1").as_ref()), b"body\r\n");
        assert_eq!(
            section(raw, sec("1.1.MIME").as_ref()),
            b"Subject: inner\r\n\r\n"
        );
        assert!(
            bs_wire(raw).starts_with(r#"("MESSAGE" "RFC822" NIL NIL NIL "7bit" 24 (NIL "inner" "#)
        );
    }

    #[test]
    fn binary_undoes_the_transfer_encoding() {
        let raw = b"MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n\
--b\r\nContent-Type: text/plain\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n\
caf=C3=A9 soft=\r\nbreak =ZZ\r\n\
--b\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: BASE64\r\n\r\n\
AAEC/w\r\n==\r\n\
--b\r\nContent-Type: application/x-thing\r\nContent-Transfer-Encoding: x-uuencode\r\n\r\nbegin\r\n\
--b\r\nContent-Type: text/plain\r\n\r\nplain\r\n\
--b--\r\n";
        let m = ParsedMessage::parse(raw);
        let part = |n: &[u32]| -> Vec<NonZeroU32> {
            n.iter().map(|&x| NonZeroU32::new(x).unwrap()).collect()
        };
        assert_eq!(
            m.binary(&part(&[1])).unwrap().as_ref(),
            "café softbreak =ZZ".as_bytes()
        );
        assert_eq!(m.binary(&part(&[2])).unwrap().as_ref(), &[0, 1, 2, 255]);
        assert_eq!(m.binary(&part(&[3])), Err(BinaryError::UnknownCte));
        assert_eq!(m.binary(&part(&[4])).unwrap().as_ref(), b"plain");
        assert_eq!(m.binary(&part(&[9])).unwrap().as_ref(), b"");
        assert_eq!(m.binary(&[]).unwrap().as_ref(), &raw[..]);
        // Without MIME-Version and Content-Type, Content-Transfer-Encoding does not count.
        let plain = b"Subject: x\r\nContent-Transfer-Encoding: base64\r\n\r\nAAAA\r\n";
        let m = ParsedMessage::parse(plain);
        assert_eq!(m.binary(&part(&[1])).unwrap().as_ref(), b"AAAA\r\n");
        assert_eq!(
            decode_transfer(b"a==b", Some(b"quoted-printable")),
            Err(BinaryError::Corrupt)
        );
    }
}
