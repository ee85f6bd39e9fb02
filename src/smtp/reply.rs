//! SMTP replies (RFC 5321 §4.2) with enhanced status codes (RFC 3463).

use std::fmt::Write;

/// One SMTP reply, possibly multi-line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// Three-digit code.
    pub code: u16,
    /// Enhanced status code, e.g. `5.7.1` (absent in greetings and EHLO).
    pub status: Option<&'static str>,
    /// Text lines (no CR/LF inside).
    pub lines: Vec<String>,
}

impl Reply {
    /// A one-line reply with an enhanced status code.
    pub fn new(code: u16, status: &'static str, text: impl Into<String>) -> Reply {
        Reply {
            code,
            status: Some(status),
            lines: vec![text.into()],
        }
    }

    /// A reply without enhanced status code (greeting, EHLO).
    pub fn plain(code: u16, lines: Vec<String>) -> Reply {
        Reply {
            code,
            status: None,
            lines,
        }
    }

    /// True for 2xx and 3xx.
    pub fn is_positive(&self) -> bool {
        self.code < 400
    }

    /// Appends the wire form to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        let mut s = String::new();
        let last = self.lines.len().saturating_sub(1);
        for (i, line) in self.lines.iter().enumerate() {
            let sep = if i == last { ' ' } else { '-' };
            let clean: String = line.chars().filter(|c| *c != '\r' && *c != '\n').collect();
            match self.status {
                Some(status) => {
                    let _ = write!(s, "{}{sep}{status} {clean}\r\n", self.code);
                }
                None => {
                    let _ = write!(s, "{}{sep}{clean}\r\n", self.code);
                }
            }
        }
        if self.lines.is_empty() {
            let _ = write!(s, "{} {}\r\n", self.code, self.status.unwrap_or(""));
        }
        out.extend_from_slice(s.as_bytes());
    }
}

/// 250 2.0.0 OK.
pub fn ok() -> Reply {
    Reply::new(250, "2.0.0", "OK")
}

/// 530 5.7.0: nothing but EHLO/STARTTLS/NOOP/QUIT before TLS.
pub fn tls_required() -> Reply {
    Reply::new(530, "5.7.0", "Must issue a STARTTLS command first")
}

/// 503 5.5.1: command out of sequence.
pub fn bad_sequence(what: &str) -> Reply {
    Reply::new(503, "5.5.1", format!("Bad sequence of commands: {what}"))
}

/// 451 4.3.0: a local failure the client should retry.
pub fn temporary_failure() -> Reply {
    Reply::new(451, "4.3.0", "Local error in processing, try again later")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multi_line_encoding() {
        let mut out = Vec::new();
        Reply::plain(250, vec!["a".into(), "b".into(), "c".into()]).encode(&mut out);
        assert_eq!(out, b"250-a\r\n250-b\r\n250 c\r\n");
        out.clear();
        Reply::new(550, "5.1.1", "no\r\nsuch").encode(&mut out);
        assert_eq!(out, b"550 5.1.1 nosuch\r\n");
    }
}
