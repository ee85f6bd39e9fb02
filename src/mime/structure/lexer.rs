//! RFC 822 tokens: the lexical rules Dovecot applies to header values
//! (atoms, quoted strings, comments, domain literals, MIME tokens), as a
//! cursor the parameter and address parsers drive.

/// atext (RFC 5322) and MIME token characters: 1 = atext, 2 = alphanumeric or
/// 8-bit, 4 = atext that is a MIME tspecial (`/`, `=`, `?`).
const ATEXT: [u8; 256] = {
    let mut table = [0u8; 256];
    let mut c = 0;
    while c < 256 {
        let b = c as u8;
        table[c] = if b.is_ascii_alphanumeric() || b >= 0x80 {
            2
        } else if matches!(b, b'/' | b'=' | b'?') {
            4
        } else if matches!(
            b,
            b'!' | b'#'
                | b'$'
                | b'%'
                | b'&'
                | b'\''
                | b'*'
                | b'+'
                | b'-'
                | b'^'
                | b'_'
                | b'`'
                | b'{'
                | b'|'
                | b'}'
                | b'~'
        ) {
            1
        } else {
            0
        };
        c += 1;
    }
    table
};

pub(super) fn is_atext(b: u8) -> bool {
    ATEXT[usize::from(b)] != 0
}

fn is_token_char(b: u8) -> bool {
    ATEXT[usize::from(b)] & 3 != 0 || b == b'.'
}

/// A cursor over a header value. Methods return, like Dovecot's parser,
/// -1 on a syntax error, 0 at the end of the input, 1 when more input follows.
pub(super) struct Rfc822<'v> {
    pub(super) data: &'v [u8],
    pub(super) pos: usize,
    /// Text of the last comment skipped (display name of `addr (Name)`).
    pub(super) last_comment: Vec<u8>,
}

impl<'v> Rfc822<'v> {
    pub(super) fn new(data: &'v [u8]) -> Self {
        Rfc822 {
            data,
            pos: 0,
            last_comment: Vec::new(),
        }
    }

    pub(super) fn at_end(&self) -> bool {
        self.pos >= self.data.len()
    }

    pub(super) fn peek(&self) -> Option<u8> {
        self.data.get(self.pos).copied()
    }

    pub(super) fn more(&self) -> i32 {
        i32::from(!self.at_end())
    }

    pub(super) fn extend(&self, out: &mut Vec<u8>, start: usize, end: usize) {
        if let Some(bytes) = self.data.get(start..end) {
            out.extend_from_slice(bytes);
        }
    }

    pub(super) fn skip_comment(&mut self) -> i32 {
        self.last_comment.clear();
        let mut level = 1u32;
        self.pos += 1;
        let mut start = self.pos;
        while let Some(b) = self.peek() {
            match b {
                b'(' => level += 1,
                b')' => {
                    level -= 1;
                    if level == 0 {
                        let (s, e) = (start, self.pos);
                        if let Some(bytes) = self.data.get(s..e) {
                            self.last_comment.extend_from_slice(bytes);
                        }
                        self.pos += 1;
                        return self.more();
                    }
                }
                b'\\' => {
                    if let Some(bytes) = self.data.get(start..self.pos) {
                        self.last_comment.extend_from_slice(bytes);
                    }
                    start = self.pos + 1;
                    self.pos += 1;
                    if self.at_end() {
                        return -1;
                    }
                }
                _ => {}
            }
            self.pos += 1;
        }
        -1
    }

    pub(super) fn skip_lwsp(&mut self) -> i32 {
        while let Some(b) = self.peek() {
            match b {
                b' ' | b'\t' | b'\r' | b'\n' => self.pos += 1,
                b'(' => {
                    if self.skip_comment() < 0 {
                        return -1;
                    }
                }
                _ => break,
            }
        }
        self.more()
    }

    pub(super) fn parse_atom(&mut self, out: &mut Vec<u8>) -> i32 {
        if !self.peek().is_some_and(is_atext) {
            return -1;
        }
        let start = self.pos;
        self.pos += 1;
        while self.peek().is_some_and(is_atext) {
            self.pos += 1;
        }
        self.extend(out, start, self.pos);
        if self.at_end() { 0 } else { self.skip_lwsp() }
    }

    pub(super) fn parse_dot_atom(&mut self, out: &mut Vec<u8>) -> i32 {
        if !self.peek().is_some_and(is_atext) {
            return -1;
        }
        let mut start = self.pos;
        self.pos += 1;
        loop {
            while self.peek().is_some_and(is_atext) {
                self.pos += 1;
            }
            self.extend(out, start, self.pos);
            if self.at_end() {
                return 0;
            }
            let ret = self.skip_lwsp();
            if ret <= 0 {
                return ret;
            }
            if self.peek() != Some(b'.') {
                return 1;
            }
            self.pos += 1;
            out.push(b'.');
            let ret = self.skip_lwsp();
            if ret <= 0 {
                return ret;
            }
            start = self.pos;
        }
    }

    pub(super) fn parse_mime_token(&mut self, out: &mut Vec<u8>) -> i32 {
        let start = self.pos;
        while self.peek().is_some_and(is_token_char) {
            self.pos += 1;
        }
        self.extend(out, start, self.pos);
        if self.at_end() { 0 } else { self.skip_lwsp() }
    }

    pub(super) fn parse_quoted_string(&mut self, out: &mut Vec<u8>) -> i32 {
        self.pos += 1;
        let mut start = self.pos;
        while let Some(b) = self.peek() {
            match b {
                b'"' => {
                    self.extend(out, start, self.pos);
                    self.pos += 1;
                    return self.skip_lwsp();
                }
                b'\n' => {
                    // Folding inside a quoted string: drop the (CR)LF.
                    let mut end = self.pos;
                    if end > start && self.data.get(end - 1) == Some(&b'\r') {
                        end -= 1;
                    }
                    self.extend(out, start, end);
                    start = self.pos + 1;
                }
                b'\\' => {
                    self.pos += 1;
                    if self.at_end() {
                        return -1;
                    }
                    self.extend(out, start, self.pos - 1);
                    start = self.pos;
                }
                _ => {}
            }
            self.pos += 1;
        }
        -1
    }

    pub(super) fn parse_atom_or_dot(&mut self, out: &mut Vec<u8>) -> i32 {
        let start = self.pos;
        while self.peek().is_some_and(|b| is_atext(b) || b == b'.') {
            self.pos += 1;
        }
        self.extend(out, start, self.pos);
        if self.at_end() { 0 } else { self.skip_lwsp() }
    }

    pub(super) fn parse_phrase(&mut self, out: &mut Vec<u8>) -> i32 {
        match self.peek() {
            None => return 0,
            Some(b'.') => return -1,
            Some(_) => {}
        }
        loop {
            let ret = if self.peek() == Some(b'"') {
                self.parse_quoted_string(out)
            } else {
                self.parse_atom_or_dot(out)
            };
            if ret <= 0 {
                return ret;
            }
            match self.peek() {
                Some(b) if is_atext(b) || b == b'"' || b == b'.' => out.push(b' '),
                _ => break,
            }
        }
        self.skip_lwsp()
    }

    pub(super) fn parse_domain_literal(&mut self, out: &mut Vec<u8>) -> i32 {
        let start = self.pos;
        while let Some(b) = self.peek() {
            if b == b'\\' {
                self.pos += 1;
                if self.at_end() {
                    break;
                }
            } else if b == b']' {
                self.pos += 1;
                self.extend(out, start, self.pos);
                return self.skip_lwsp();
            }
            self.pos += 1;
        }
        -1
    }

    pub(super) fn parse_domain(&mut self, out: &mut Vec<u8>) -> i32 {
        self.pos += 1; // '@'
        if self.skip_lwsp() <= 0 {
            return -1;
        }
        if self.peek() == Some(b'[') {
            self.parse_domain_literal(out)
        } else {
            self.parse_dot_atom(out)
        }
    }

    pub(super) fn parse_content_type(&mut self, out: &mut Vec<u8>) -> i32 {
        if self.skip_lwsp() <= 0 {
            return -1;
        }
        if self.parse_mime_token(out) <= 0 {
            return -1;
        }
        if self.peek() != Some(b'/') {
            return -1;
        }
        self.pos += 1;
        if self.skip_lwsp() <= 0 {
            return -1;
        }
        out.push(b'/');
        self.parse_mime_token(out)
    }

    pub(super) fn parse_content_param(&mut self, key: &mut Vec<u8>, value: &mut Vec<u8>) -> i32 {
        match self.peek() {
            None => return 0,
            Some(b';') => {}
            Some(_) => return -1,
        }
        self.pos += 1;
        if self.skip_lwsp() <= 0 {
            return -1;
        }
        if self.parse_mime_token(key) <= 0 {
            return -1;
        }
        if self.peek() != Some(b'=') {
            return -1;
        }
        self.pos += 1;
        let mut ret = self.skip_lwsp();
        if ret > 0 {
            if self.peek() == Some(b'"') {
                ret = self.parse_quoted_string(value);
            } else if self.peek() == Some(b'=') {
                // Broken but common: name==?utf-8?b?…?=
                while let Some(b) = self.peek() {
                    if matches!(b, b';' | b' ' | b'\t' | b'\r' | b'\n') {
                        break;
                    }
                    value.push(b);
                    self.pos += 1;
                }
            } else {
                ret = self.parse_mime_token(value);
            }
        }
        if ret < 0 { -1 } else { 1 }
    }
}
