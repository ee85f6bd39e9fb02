//! Address lists (RFC 5322 §3.4 with the obsolete forms), with missing
//! parts filled the way Dovecot fills them for ENVELOPE.

use super::lexer::Rfc822;

/// One element of an address list. A group start has only `mailbox` (the
/// group name), a group end has nothing.
#[derive(Debug, Default, Clone)]
pub(super) struct Addr {
    pub(super) name: Option<Vec<u8>>,
    pub(super) route: Option<Vec<u8>>,
    pub(super) mailbox: Option<Vec<u8>>,
    pub(super) domain: Option<Vec<u8>>,
}

/// Appends `text`, quoted (with `"`, `\\` and `'` escaped) unless it is all
/// atext (and dots, unless `escape_dot`): Dovecot's `str_append_maybe_escape`.
fn append_maybe_escape(out: &mut Vec<u8>, text: &[u8], escape_dot: bool) {
    if text
        .iter()
        .all(|&b| super::lexer::is_atext(b) || (!escape_dot && b == b'.'))
    {
        out.extend_from_slice(text);
        return;
    }
    out.push(b'"');
    for &b in text {
        if matches!(b, b'"' | b'\\' | b'\'') {
            out.push(b'\\');
        }
        out.push(b);
    }
    out.push(b'"');
}

/// A phrase (display or group name) as Dovecot writes it: encoded-words
/// as they are (they cannot be quoted), anything else maybe quoted.
fn append_phrase(out: &mut Vec<u8>, phrase: &[u8]) {
    if phrase.windows(2).any(|w| w == b"=?") {
        out.extend_from_slice(phrase);
    } else {
        append_maybe_escape(out, phrase, true);
    }
}

/// The address list `value` written the way Dovecot 2.3 searches address
/// headers (`message_address_write` over `message_address_parse`):
/// `name <mailbox@domain>`, `<mailbox@domain>`, `group: <a@b>, <c@d>;`, names
/// quoted when they are not atoms; encoded-words are left for the caller
/// to decode. SEARCH FROM/TO/CC/BCC match in this text, so a group's
/// name is found as well as its members.
pub(super) fn search_form(value: &[u8]) -> Vec<u8> {
    let addrs = parse_addresses(value);
    let mut out = Vec::with_capacity(value.len() + 8);
    let Some(head) = addrs.first() else {
        return out;
    };
    if head.mailbox.is_none() && head.domain.is_none() {
        out.extend_from_slice(b"<>");
        return out;
    }
    let (mut first, mut in_group) = (true, false);
    for a in &addrs {
        if first {
            first = false;
        } else {
            out.extend_from_slice(b", ");
        }
        let Some(domain) = &a.domain else {
            if in_group {
                // End of group: `, ` or the `: ` of an empty group gives way to `;`.
                if out.ends_with(b", ") {
                    out.truncate(out.len() - 2);
                } else if out.ends_with(b": ") {
                    out.truncate(out.len() - 1);
                }
                out.push(b';');
            } else {
                match a.mailbox.as_deref() {
                    Some(name) if !name.is_empty() => append_phrase(&mut out, name),
                    _ => out.extend_from_slice(b"\"\""),
                }
                out.extend_from_slice(b": ");
                first = true;
            }
            in_group = !in_group;
            continue;
        };
        let mailbox = a.mailbox.as_deref().unwrap_or_default();
        if let Some(name) = &a.name {
            append_phrase(&mut out, name);
        }
        if a.route.is_some() || !mailbox.is_empty() || !domain.is_empty() {
            if a.name.as_ref().is_some_and(|n| !n.is_empty()) {
                out.push(b' ');
            }
            out.push(b'<');
            if let Some(route) = &a.route {
                out.extend_from_slice(route);
                out.push(b':');
            }
            if mailbox.is_empty() {
                out.extend_from_slice(b"\"\"");
            } else {
                append_maybe_escape(&mut out, mailbox, false);
            }
            if !domain.is_empty() {
                out.push(b'@');
                out.extend_from_slice(domain);
            }
            out.push(b'>');
        }
    }
    out
}

struct AddrParser<'v> {
    p: Rfc822<'v>,
    current: Addr,
    out: Vec<Addr>,
}

/// Parses an address-list header value (RFC 5322 §3.4, with the obsolete
/// forms), filling missing parts the way Dovecot does for ENVELOPE.
pub(super) fn parse_addresses(value: &[u8]) -> Vec<Addr> {
    let mut ap = AddrParser {
        p: Rfc822::new(value),
        current: Addr::default(),
        out: Vec::new(),
    };
    if ap.p.skip_lwsp() <= 0 {
        return Vec::new();
    }
    ap.address_list();
    ap.out
}

impl AddrParser<'_> {
    fn add(&mut self) {
        self.out.push(std::mem::take(&mut self.current));
    }

    fn add_fixed(&mut self) {
        if self.current.mailbox.is_none() {
            self.current.mailbox = Some(b"MISSING_MAILBOX".to_vec());
        }
        if self.current.domain.is_none() {
            self.current.domain = Some(b"MISSING_DOMAIN".to_vec());
        }
        self.add();
    }

    fn local_part(&mut self) -> i32 {
        let mut s = Vec::new();
        let ret = match self.p.peek() {
            None => -1,
            Some(b'"') => self.p.parse_quoted_string(&mut s),
            Some(_) => self.p.parse_dot_atom(&mut s),
        };
        if ret < 0 {
            return -1;
        }
        self.current.mailbox = Some(s);
        ret
    }

    fn domain(&mut self) -> i32 {
        let mut s = Vec::new();
        let ret = self.p.parse_domain(&mut s);
        if ret < 0 {
            return -1;
        }
        self.current.domain = Some(s);
        ret
    }

    fn domain_list(&mut self) -> i32 {
        let mut s = Vec::new();
        loop {
            match self.p.peek() {
                None => return 0,
                Some(b'@') => {}
                Some(_) => break,
            }
            if !s.is_empty() {
                s.push(b',');
            }
            s.push(b'@');
            let ret = self.p.parse_domain(&mut s);
            if ret <= 0 {
                return ret;
            }
            while self.p.skip_lwsp() > 0 && self.p.peek() == Some(b',') {
                self.p.pos += 1;
            }
        }
        self.current.route = Some(s);
        1
    }

    fn angle_addr(&mut self) -> i32 {
        self.p.pos += 1; // '<'
        let ret = self.p.skip_lwsp();
        if ret <= 0 {
            return ret;
        }
        if self.p.peek() == Some(b'@') {
            if self.domain_list() <= 0 || self.p.peek() != Some(b':') {
                self.current.route = Some(b"INVALID_ROUTE".to_vec());
                return -1;
            }
            self.p.pos += 1;
            let ret = self.p.skip_lwsp();
            if ret <= 0 {
                return ret;
            }
        }
        let ret = self.local_part();
        if ret <= 0 {
            return ret;
        }
        if self.p.peek() == Some(b'@') {
            let ret = self.domain();
            if ret <= 0 {
                return ret;
            }
        }
        if self.p.peek() != Some(b'>') {
            return -1;
        }
        self.p.pos += 1;
        self.p.skip_lwsp()
    }

    fn name_addr(&mut self) -> i32 {
        let mut s = Vec::new();
        if self.p.parse_phrase(&mut s) <= 0 || self.p.peek() != Some(b'<') {
            return -1;
        }
        self.current.name = (!s.is_empty()).then_some(s);
        if self.angle_addr() < 0 {
            self.current.domain = Some(b"SYNTAX_ERROR".to_vec());
        }
        self.p.more()
    }

    fn addr_spec(&mut self) -> i32 {
        self.p.last_comment.clear();
        let mut ret = self.local_part();
        if ret != 0 && self.p.peek() == Some(b'@') {
            let ret2 = self.domain();
            if ret2 <= 0 {
                ret = ret2;
            }
        }
        if !self.p.last_comment.is_empty() {
            self.current.name = Some(self.p.last_comment.clone());
        }
        ret
    }

    fn mailbox(&mut self) -> i32 {
        let start = self.p.pos;
        let mut ret = self.name_addr();
        if ret < 0 {
            self.p.pos = start;
            ret = self.addr_spec();
        }
        self.add_fixed();
        ret
    }

    fn group(&mut self) -> i32 {
        let mut s = Vec::new();
        if self.p.parse_phrase(&mut s) <= 0 || self.p.peek() != Some(b':') {
            return -1;
        }
        self.p.pos += 1;
        let mut ret = self.p.skip_lwsp();
        self.current.mailbox = Some(s);
        self.add();
        if ret > 0 && self.p.peek() != Some(b';') {
            loop {
                if self.mailbox() <= 0 {
                    ret = -1;
                    break;
                }
                if self.p.peek() != Some(b',') {
                    break;
                }
                self.p.pos += 1;
                if self.p.skip_lwsp() <= 0 {
                    ret = -1;
                    break;
                }
            }
        }
        if ret >= 0 {
            if self.p.peek() != Some(b';') {
                ret = -1;
            } else {
                self.p.pos += 1;
                ret = self.p.skip_lwsp();
            }
        }
        self.add(); // end of group
        if ret == 0 { 0 } else { 1 }
    }

    fn address(&mut self) -> i32 {
        let start = self.p.pos;
        let ret = self.group();
        if ret >= 0 {
            return ret;
        }
        self.p.pos = start;
        self.mailbox()
    }

    fn address_list(&mut self) {
        loop {
            if self.address() == 0 {
                break;
            }
            if self.p.peek() != Some(b',') {
                break;
            }
            self.p.pos += 1;
            let ret = self.p.skip_lwsp();
            if ret <= 0 {
                if ret < 0 {
                    self.add_fixed();
                }
                break;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::search_form;

    #[test]
    fn search_form_is_dovecots() {
        let w = |v: &str| String::from_utf8(search_form(v.as_bytes())).unwrap();
        assert_eq!(
            w("groupname: x@y.example, z@w.example;"),
            "groupname: <x@y.example>, <z@w.example>;"
        );
        assert_eq!(w("Team Name:;"), "\"Team Name\":;");
        assert_eq!(w("undisclosed-recipients:;"), "undisclosed-recipients:;");
        assert_eq!(w("plain@y.example"), "<plain@y.example>");
        assert_eq!(
            w("\"Quoted, Group\": q@y.example;"),
            "\"Quoted, Group\": <q@y.example>;"
        );
        assert_eq!(
            w("Marie Curie <marie@a.example>, b@c.example (Bob)"),
            "\"Marie Curie\" <marie@a.example>, Bob <b@c.example>"
        );
        assert_eq!(
            w("=?utf-8?q?Ren=C3=A9?= <r@a.example>"),
            "=?utf-8?q?Ren=C3=A9?= <r@a.example>"
        );
        assert_eq!(w("a@b, g: c@d;, e@f"), "<a@b>, g: <c@d>;, <e@f>");
    }
}
