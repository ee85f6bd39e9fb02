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
