//! APPEND forms imap-codec 2.0-alpha does not parse: several messages in one
//! command (RFC 3502 MULTIAPPEND) and messages assembled from parts (RFC 4469
//! CATENATE: `CATENATE (TEXT {n}… URL "…")`).
//!
//! The raw command (literals included, as imap-next hands over a command it
//! could not decode) is cut into its messages here; each message's flags and
//! date are then read by imap-codec itself, from a plain APPEND rebuilt with
//! an empty literal, so that flags and dates mean exactly what they mean in
//! a plain APPEND.

use imap_codec::CommandCodec;
use imap_codec::decode::Decoder;
use imap_codec::imap_types::IntoStatic;
use imap_codec::imap_types::command::CommandBody;
use imap_codec::imap_types::core::Tag;
use imap_codec::imap_types::datetime::DateTime;
use imap_codec::imap_types::flag::Flag;
use imap_codec::imap_types::mailbox::Mailbox;

/// One APPEND command, whatever its form.
#[derive(Debug, Clone, PartialEq)]
pub struct AppendCommand {
    /// The command's tag.
    pub tag: Tag<'static>,
    /// The target mailbox.
    pub mailbox: Mailbox<'static>,
    /// Its messages, in order (one for a plain APPEND).
    pub messages: Vec<AppendMessage>,
}

/// One message of an APPEND.
#[derive(Debug, Clone, PartialEq)]
pub struct AppendMessage {
    /// Its flags.
    pub flags: Vec<Flag<'static>>,
    /// Its INTERNALDATE.
    pub date: Option<DateTime>,
    /// Its content, or the parts to assemble it from.
    pub data: AppendData,
}

/// What a message is made of.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AppendData {
    /// The message, as sent in a literal.
    Literal(Vec<u8>),
    /// CATENATE parts, to be put together in order.
    Catenate(Vec<CatPart>),
}

/// One CATENATE part (RFC 4469 `cat-part`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CatPart {
    /// `TEXT` literal: these octets.
    Text(Vec<u8>),
    /// `URL`: a message or part of one, by IMAP URL (RFC 5092).
    Url(String),
}

/// A cursor over the raw command.
struct Cursor<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    fn rest(&self) -> &'a [u8] {
        &self.bytes[self.pos.min(self.bytes.len())..]
    }

    /// Consumes `word` (ASCII, any case).
    fn word(&mut self, word: &str) -> bool {
        let rest = self.rest();
        if rest.len() >= word.len() && rest[..word.len()].eq_ignore_ascii_case(word.as_bytes()) {
            self.pos += word.len();
            true
        } else {
            false
        }
    }

    fn sp(&mut self) -> Option<()> {
        (self.peek() == Some(b' ')).then(|| self.pos += 1)
    }

    /// A literal (`{n}`, `{n+}`, `~{n}`, `~{n+}`, CRLF, n octets): its data.
    fn literal(&mut self) -> Option<&'a [u8]> {
        let start = self.pos;
        if self.peek() == Some(b'~') {
            self.pos += 1;
        }
        let parsed = (|| {
            if self.peek() != Some(b'{') {
                return None;
            }
            let close = self.rest().iter().position(|&b| b == b'}')?;
            let inner = std::str::from_utf8(&self.rest()[1..close]).ok()?;
            let digits = inner.strip_suffix('+').unwrap_or(inner);
            if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            let n: usize = digits.parse().ok()?;
            self.pos += close + 1;
            if !self.word("\r\n") {
                return None;
            }
            let data = self.rest().get(..n)?;
            self.pos += n;
            Some(data)
        })();
        if parsed.is_none() {
            self.pos = start;
        }
        parsed
    }

    /// A quoted string, as written (quotes included), and its value.
    fn quoted(&mut self) -> Option<(&'a [u8], Vec<u8>)> {
        if self.peek() != Some(b'"') {
            return None;
        }
        let start = self.pos;
        let mut value = Vec::new();
        let mut i = self.pos + 1;
        loop {
            match *self.bytes.get(i)? {
                b'"' => break,
                b'\\' => {
                    value.push(*self.bytes.get(i + 1)?);
                    i += 2;
                }
                b'\r' | b'\n' => return None,
                b => {
                    value.push(b);
                    i += 1;
                }
            }
        }
        self.pos = i + 1;
        Some((&self.bytes[start..self.pos], value))
    }

    /// An atom (ASTRING-CHAR run), as written.
    fn atom(&mut self) -> Option<&'a [u8]> {
        let n = self
            .rest()
            .iter()
            .take_while(|&&b| {
                b > b' ' && b < 0x7f && !matches!(b, b'(' | b')' | b'{' | b'"' | b'%' | b'*')
            })
            .count();
        if n == 0 {
            return None;
        }
        let atom = &self.rest()[..n];
        self.pos += n;
        Some(atom)
    }

    /// An astring, as written (a literal with its announcement), and its value.
    fn astring(&mut self) -> Option<(&'a [u8], Vec<u8>)> {
        let start = self.pos;
        if let Some(data) = self.literal() {
            return Some((&self.bytes[start..self.pos], data.to_vec()));
        }
        if let Some(q) = self.quoted() {
            return Some(q);
        }
        self.atom().map(|a| (a, a.to_vec()))
    }

    /// A flag list `( … )`, as written (flags hold no parentheses or literals).
    fn flag_list(&mut self) -> Option<&'a [u8]> {
        if self.peek() != Some(b'(') {
            return None;
        }
        let close = self
            .rest()
            .iter()
            .position(|&b| matches!(b, b')' | b'\r' | b'\n' | b'{'))?;
        if self.rest()[close] != b')' {
            return None;
        }
        let list = &self.rest()[..=close];
        self.pos += close + 1;
        Some(list)
    }
}

/// Parses an APPEND with several messages or CATENATE data; None when `raw`
/// is not such a command (the session then answers BAD).
pub fn parse(raw: &[u8]) -> Option<AppendCommand> {
    let mut c = Cursor { bytes: raw, pos: 0 };
    let tag_end = raw.iter().position(|&b| b == b' ')?;
    let tag_text = std::str::from_utf8(&raw[..tag_end]).ok()?;
    let tag = Tag::try_from(tag_text.to_string()).ok()?;
    c.pos = tag_end + 1;
    if !c.word("APPEND") {
        return None;
    }
    c.sp()?;
    let (mailbox_raw, _) = c.astring()?;
    let mut mailbox = None;
    let mut messages = Vec::new();
    while c.sp().is_some() {
        let flags_raw = c.flag_list();
        if flags_raw.is_some() {
            c.sp()?;
        }
        let date_raw = match c.quoted() {
            Some((raw, _)) => {
                c.sp()?;
                Some(raw)
            }
            None => None,
        };
        let data = if c.word("CATENATE") {
            c.sp()?;
            AppendData::Catenate(cat_parts(&mut c)?)
        } else {
            AppendData::Literal(c.literal()?.to_vec())
        };
        // Flags and date as imap-codec reads them in a plain APPEND.
        let mut plain = Vec::with_capacity(64 + mailbox_raw.len());
        plain.extend_from_slice(tag_text.as_bytes());
        plain.extend_from_slice(b" APPEND ");
        plain.extend_from_slice(mailbox_raw);
        for part in [flags_raw, date_raw].into_iter().flatten() {
            plain.push(b' ');
            plain.extend_from_slice(part);
        }
        plain.extend_from_slice(b" {0}\r\n\r\n");
        let (_, command) = CommandCodec::default().decode(&plain).ok()?;
        let CommandBody::Append {
            mailbox: m,
            flags,
            date,
            ..
        } = command.body
        else {
            return None;
        };
        mailbox = Some(m.into_static());
        messages.push(AppendMessage {
            flags: flags.into_iter().map(IntoStatic::into_static).collect(),
            date,
            data,
        });
    }
    if c.rest() != b"\r\n" {
        return None;
    }
    Some(AppendCommand {
        tag,
        mailbox: mailbox?,
        messages,
    })
}

/// `( cat-part *(SP cat-part) )`.
fn cat_parts(c: &mut Cursor<'_>) -> Option<Vec<CatPart>> {
    if c.peek() != Some(b'(') {
        return None;
    }
    c.pos += 1;
    let mut parts = Vec::new();
    loop {
        if c.word("TEXT ") {
            parts.push(CatPart::Text(c.literal()?.to_vec()));
        } else if c.word("URL ") {
            let (_, value) = c.astring()?;
            parts.push(CatPart::Url(String::from_utf8(value).ok()?));
        } else {
            return None;
        }
        match c.peek()? {
            b' ' => c.pos += 1,
            b')' => {
                c.pos += 1;
                return Some(parts);
            }
            _ => return None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn several_messages_with_their_flags_and_dates() {
        let raw = b"a1 APPEND Drafts (\\Seen) \"05-Dec-2026 10:00:00 +0100\" {3}\r\none {3+}\r\ntwo (\\Draft $X) ~{5}\r\nth\0ee\r\n";
        let cmd = parse(raw).unwrap();
        assert_eq!(cmd.tag.as_ref(), "a1");
        assert_eq!(cmd.mailbox, Mailbox::try_from("Drafts").unwrap());
        assert_eq!(cmd.messages.len(), 3);
        assert_eq!(cmd.messages[0].flags, vec![Flag::Seen]);
        assert_eq!(
            cmd.messages[0]
                .date
                .as_ref()
                .map(|d| d.as_ref().timestamp()),
            Some(1_796_461_200)
        );
        assert_eq!(cmd.messages[0].data, AppendData::Literal(b"one".to_vec()));
        assert!(cmd.messages[1].flags.is_empty() && cmd.messages[1].date.is_none());
        assert_eq!(cmd.messages[1].data, AppendData::Literal(b"two".to_vec()));
        assert_eq!(cmd.messages[2].flags.len(), 2);
        assert_eq!(
            cmd.messages[2].data,
            AppendData::Literal(b"th\0ee".to_vec())
        );
    }

    #[test]
    fn catenate_parts() {
        let raw = b"A003 APPEND {6}\r\nDrafts (\\Seen \\Draft $MDNSent) CATENATE (URL \"/Drafts;UIDVALIDITY=385759045/;UID=20/;section=HEADER\" TEXT {4}\r\n\r\nab URL /Drafts/;UID=30) CATENATE (TEXT {2+}\r\nhi)\r\n";
        let cmd = parse(raw).unwrap();
        let name = crate::imap::names::decode(&cmd.mailbox, crate::imap::names::Wire::Utf7);
        assert_eq!(name.unwrap(), "Drafts");
        assert_eq!(cmd.messages.len(), 2);
        assert_eq!(cmd.messages[0].flags.len(), 3);
        assert_eq!(
            cmd.messages[0].data,
            AppendData::Catenate(vec![
                CatPart::Url("/Drafts;UIDVALIDITY=385759045/;UID=20/;section=HEADER".into()),
                CatPart::Text(b"\r\nab".to_vec()),
                CatPart::Url("/Drafts/;UID=30".into()),
            ])
        );
        assert_eq!(
            cmd.messages[1].data,
            AppendData::Catenate(vec![CatPart::Text(b"hi".to_vec())])
        );
    }

    #[test]
    fn malformed_commands_are_not_appends() {
        for raw in [
            &b"a1 APPEND INBOX\r\n"[..],
            b"a1 APPEND INBOX {3}\r\none {3}\r\ntw\r\n",
            b"a1 APPEND INBOX {3}\r\none junk\r\n",
            b"a1 APPEND INBOX CATENATE ()\r\n",
            b"a1 APPEND INBOX CATENATE (TEXT \"x\")\r\n",
            b"a1 APPEND INBOX CATENATE (URL \"/INBOX/;UID=1\"\r\n",
            b"a1 APPEND INBOX (\\Seen {3}\r\none\r\n",
            b"a1 APPEND INBOX \"not a date\" {3}\r\none\r\n",
            b"a1 SEARCH ALL\r\n",
        ] {
            assert!(parse(raw).is_none(), "{}", String::from_utf8_lossy(raw));
        }
    }
}
