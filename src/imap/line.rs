//! The limit on command lines, in front of imap-next.
//!
//! imap-next bounds a whole command (`max_command_size`: lines and literals
//! together), which must leave room for the largest APPEND literal: alone, it
//! would let a client send megabytes of command line before the server says
//! anything. [`LineGuard`] sits between the socket bytes and imap-next and
//! bounds each *line* outside literals (RFC 7162 §4 asks servers to take at
//! least 8192 octets; the default is 64 KiB, as in Dovecot).
//!
//! It cuts the input the way imap-codec's fragmentizer does (a line ends at LF;
//! a line ending in `{N}` or `{N+}` announces N octets of literal), holds at
//! most one line (never more than the limit), and hands imap-next whole lines
//! and literal data. A line that passes the limit is never handed over: the
//! guard reports it once ([`Piece::TooLong`]) and then drops the rest of the
//! command without keeping it: the rest of the line, the data of a
//! non-synchronising literal it announces and the lines after that literal.
//! A synchronising literal announced by a dropped line is never asked for, so
//! the client never sends it. Dropping keeps a constant amount of memory, and
//! the next command is read from where the client starts it, so the session
//! goes on.
//!
//! Whether imap-next accepted a literal its line announced is only known once
//! imap-next has seen that line (it refuses synchronising literals over its own
//! limit); the session tells the guard with [`LineGuard::literal_refused`]
//! before asking for the next piece.

use imap_codec::imap_types::core::Tag;

/// Bytes of a dropped line remembered to find a literal announcement at its end.
const TAIL: usize = 24;

/// A literal announced at the end of a line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Announcement {
    /// Octets of literal data that follow.
    pub length: u32,
    /// `{N+}` (LITERAL+): the client sends the data without waiting.
    pub non_sync: bool,
}

/// What the session does next with the input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Piece {
    /// A complete line, line ending included, for imap-next.
    Line {
        /// The line.
        bytes: Vec<u8>,
        /// The literal it announces.
        literal: Option<Announcement>,
    },
    /// Literal data for imap-next.
    Literal(Vec<u8>),
    /// The line announces a literal over the literal limit in force (before
    /// login, [`LineGuard::set_max_literal`]): nothing of it was or will be
    /// handed over; the rest of its command is dropped (a synchronising
    /// literal is never asked for, a non-synchronising one is read and dropped).
    LiteralTooLarge {
        /// The tag the line starts with, when it is the first line of a command.
        tag: Option<Tag<'static>>,
        /// The line follows a literal: imap-next holds the command's first part.
        continuation: bool,
        /// The limit, in octets.
        limit: u32,
    },
    /// The current line is longer than the limit. Nothing of it was or will be
    /// handed over; the rest of its command is dropped.
    TooLong {
        /// The tag the line starts with, when it is the first line of a command.
        tag: Option<Tag<'static>>,
        /// The line follows a literal: imap-next holds the command's first
        /// part (and tag) and must be told to drop it.
        continuation: bool,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum State {
    /// Reading a line into `line`.
    Line,
    /// Passing literal data through.
    Literal { remaining: u64 },
    /// Dropping an over-long line (or a line of a command being dropped) up to its LF.
    DropLine { tail: Vec<u8> },
    /// Dropping the data of a non-synchronising literal of a command being dropped.
    DropLiteral { remaining: u64 },
}

/// Cuts input into lines and literal data, and enforces the line limit.
#[derive(Debug, Clone)]
pub struct LineGuard {
    max_line: usize,
    max_literal: Option<u32>,
    pending: Vec<u8>,
    pos: usize,
    state: State,
    line: Vec<u8>,
    continuation: bool,
}

impl LineGuard {
    /// A guard for lines of at most `max_line` octets, CRLF included.
    pub fn new(max_line: usize) -> Self {
        LineGuard {
            max_line: max_line.max(3),
            max_literal: None,
            pending: Vec::new(),
            pos: 0,
            state: State::Line,
            line: Vec::new(),
            continuation: false,
        }
    }

    /// The limit, in octets per line, CRLF included.
    pub fn max_line(&self) -> usize {
        self.max_line
    }

    /// Adds input from the client.
    pub fn push(&mut self, input: &[u8]) {
        if self.pos == self.pending.len() {
            self.pending.clear();
            self.pos = 0;
        }
        self.pending.extend_from_slice(input);
    }

    /// Bounds literals (`None`: only imap-next's own limit applies). Before
    /// login a few KiB are enough for LOGIN and AUTHENTICATE; the message
    /// size limit is for APPEND after login.
    pub fn set_max_literal(&mut self, limit: Option<u32>) {
        self.max_literal = limit;
    }

    /// Forgets everything (input pipelined before a TLS handshake, or after LOGOUT).
    pub fn reset(&mut self) {
        let max_literal = self.max_literal;
        *self = LineGuard::new(self.max_line);
        self.max_literal = max_literal;
    }

    /// Takes the input not cut into pieces yet, and forgets any partial line:
    /// after COMPRESS (RFC 4978) what follows the command is compressed, so
    /// the listener inflates it and pushes it again.
    pub fn take_unread(&mut self) -> Vec<u8> {
        let rest = self.pending.get(self.pos..).unwrap_or_default().to_vec();
        self.reset();
        rest
    }

    /// imap-next refused the literal the last line announced: it dropped the
    /// command, and the client will not send the data.
    pub fn literal_refused(&mut self) {
        if matches!(self.state, State::Literal { .. }) {
            self.state = State::Line;
            self.continuation = false;
        }
    }

    /// The next piece of input, or `None` when more input is needed.
    pub fn next_piece(&mut self) -> Option<Piece> {
        loop {
            // A zero-length literal needs no input to end.
            if let State::Literal { remaining: 0 } = self.state {
                self.state = State::Line;
            }
            if self.pos >= self.pending.len() {
                return None;
            }
            let rest = &self.pending[self.pos..];
            match &mut self.state {
                State::Line => {
                    let room = self.max_line.saturating_sub(self.line.len());
                    let take = rest.len().min(room);
                    if let Some(i) = rest[..take].iter().position(|&b| b == b'\n') {
                        self.line.extend_from_slice(&rest[..=i]);
                        self.pos += i + 1;
                        let bytes = std::mem::take(&mut self.line);
                        let literal = announcement(&bytes);
                        if let (Some(a), Some(limit)) = (literal, self.max_literal)
                            && a.length > limit
                        {
                            let continuation = self.continuation;
                            let tag = if continuation {
                                None
                            } else {
                                parse_tag(&bytes)
                            };
                            self.state = if a.non_sync {
                                State::DropLiteral {
                                    remaining: u64::from(a.length),
                                }
                            } else {
                                self.continuation = false;
                                State::Line
                            };
                            return Some(Piece::LiteralTooLarge {
                                tag,
                                continuation,
                                limit,
                            });
                        }
                        match literal {
                            Some(a) => {
                                self.state = State::Literal {
                                    remaining: u64::from(a.length),
                                };
                                self.continuation = true;
                            }
                            None => self.continuation = false,
                        }
                        return Some(Piece::Line { bytes, literal });
                    }
                    self.line.extend_from_slice(&rest[..take]);
                    self.pos += take;
                    if self.line.len() >= self.max_line {
                        // No LF within the limit: this line is too long.
                        let tag = if self.continuation {
                            None
                        } else {
                            parse_tag(&self.line)
                        };
                        let continuation = self.continuation;
                        let tail = self.line[self.line.len().saturating_sub(TAIL)..].to_vec();
                        self.line = Vec::new();
                        self.state = State::DropLine { tail };
                        return Some(Piece::TooLong { tag, continuation });
                    }
                }
                State::Literal { remaining } => {
                    let take = rest
                        .len()
                        .min(usize::try_from(*remaining).unwrap_or(usize::MAX));
                    let data = rest[..take].to_vec();
                    *remaining -= take as u64;
                    self.pos += take;
                    if *remaining == 0 {
                        self.state = State::Line;
                    }
                    return Some(Piece::Literal(data));
                }
                State::DropLine { tail } => {
                    let end = rest.iter().position(|&b| b == b'\n');
                    let upto = end.map_or(rest.len(), |i| i + 1);
                    let chunk = &rest[..upto];
                    let keep = chunk.len().min(TAIL);
                    tail.extend_from_slice(&chunk[chunk.len() - keep..]);
                    if tail.len() > TAIL {
                        tail.drain(..tail.len() - TAIL);
                    }
                    self.pos += upto;
                    if end.is_some() {
                        self.state = match announcement(tail) {
                            // The client sends this data unasked: drop it too.
                            Some(a) if a.non_sync => State::DropLiteral {
                                remaining: u64::from(a.length),
                            },
                            // Never asked for (no continuation request): not sent.
                            _ => {
                                self.continuation = false;
                                State::Line
                            }
                        };
                    }
                }
                State::DropLiteral { remaining } => {
                    let take = rest
                        .len()
                        .min(usize::try_from(*remaining).unwrap_or(usize::MAX));
                    *remaining -= take as u64;
                    self.pos += take;
                    if *remaining == 0 {
                        self.state = State::DropLine { tail: Vec::new() };
                    }
                }
            }
        }
    }
}

/// The literal a complete line (or the end of one) announces, the way
/// imap-codec's fragmentizer reads it: `{N}` or `{N+}` right before the line
/// ending (CRLF or a bare LF), N a 32-bit number.
pub fn announcement(line: &[u8]) -> Option<Announcement> {
    let line = line.strip_suffix(b"\n")?;
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let line = line.strip_suffix(b"}")?;
    let (line, non_sync) = match line.strip_suffix(b"+") {
        Some(l) => (l, true),
        None => (line, false),
    };
    let digits = line.iter().rev().take_while(|b| b.is_ascii_digit()).count();
    if digits == 0 {
        return None;
    }
    let (head, number) = line.split_at(line.len() - digits);
    if !head.ends_with(b"{") {
        return None;
    }
    let mut length: u32 = 0;
    for &d in number {
        length = length.checked_mul(10)?.checked_add(u32::from(d - b'0'))?;
    }
    Some(Announcement { length, non_sync })
}

/// The tag at the start of a command line, if it is a valid one.
fn parse_tag(line: &[u8]) -> Option<Tag<'static>> {
    let end = line.iter().position(|&b| b == b' ')?;
    let text = std::str::from_utf8(&line[..end]).ok()?;
    Tag::try_from(text.to_string()).ok()
}

#[cfg(test)]
mod literal_limit_tests {
    use super::*;

    #[test]
    fn large_literals_refused_when_bounded() {
        let mut g = LineGuard::new(1024);
        g.set_max_literal(Some(16));
        g.push(b"a LOGIN {52428800}\r\nb NOOP\r\n");
        assert!(matches!(
            g.next_piece(),
            Some(Piece::LiteralTooLarge {
                tag: Some(_),
                continuation: false,
                limit: 16
            })
        ));
        // The client was never asked for the data: the next command is read.
        assert!(
            matches!(g.next_piece(), Some(Piece::Line { bytes, .. }) if bytes == b"b NOOP\r\n")
        );
        // A non-synchronising literal is read and dropped with its command.
        g.push(b"c LOGIN {20+}\r\n01234567890123456789 x\r\nd NOOP\r\n");
        assert!(matches!(
            g.next_piece(),
            Some(Piece::LiteralTooLarge { .. })
        ));
        assert!(
            matches!(g.next_piece(), Some(Piece::Line { bytes, .. }) if bytes == b"d NOOP\r\n")
        );
        // Small literals pass, and lifting the bound lets large ones through.
        g.push(b"e LOGIN {3}\r\n");
        assert!(matches!(
            g.next_piece(),
            Some(Piece::Line {
                literal: Some(_),
                ..
            })
        ));
        g.push(b"abc x\r\n");
        assert!(matches!(g.next_piece(), Some(Piece::Literal(d)) if d == b"abc"));
        assert!(matches!(g.next_piece(), Some(Piece::Line { .. })));
        g.set_max_literal(None);
        g.push(b"f APPEND INBOX {100000}\r\n");
        assert!(matches!(
            g.next_piece(),
            Some(Piece::Line {
                literal: Some(_),
                ..
            })
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pieces(g: &mut LineGuard) -> Vec<Piece> {
        std::iter::from_fn(|| g.next_piece()).collect()
    }

    fn line(s: &str) -> Piece {
        Piece::Line {
            bytes: s.as_bytes().to_vec(),
            literal: announcement(s.as_bytes()),
        }
    }

    #[test]
    fn announcements_as_the_fragmentizer_reads_them() {
        let a = |s: &str| announcement(s.as_bytes());
        assert_eq!(
            a("a APPEND INBOX {12}\r\n"),
            Some(Announcement {
                length: 12,
                non_sync: false
            })
        );
        assert_eq!(
            a("x {0+}\n"),
            Some(Announcement {
                length: 0,
                non_sync: true
            })
        );
        assert_eq!(a("a {12}x\r\n"), None);
        assert_eq!(a("a {}\r\n"), None);
        assert_eq!(a("a {+5}\r\n"), None);
        assert_eq!(a("a {99999999999}\r\n"), None);
        assert_eq!(a("a {5}\r\r\n"), None);
        assert_eq!(a("a {5}"), None);
        assert!(a("a ~{1{5}\r\n").is_some());
    }

    #[test]
    fn lines_and_literals_in_any_chunking() {
        let input = b"a1 NOOP\r\na2 APPEND INBOX {5}\r\nhello\r\na3 LOGIN {1+}\r\nx {2+}\r\nyz\r\n";
        for chunk in 1..input.len() {
            let mut g = LineGuard::new(100);
            let mut out = Vec::new();
            for c in input.chunks(chunk) {
                g.push(c);
                out.extend(pieces(&mut g));
            }
            // Rejoin literal data split over chunks.
            let mut joined: Vec<Piece> = Vec::new();
            for p in out {
                match (joined.last_mut(), p) {
                    (Some(Piece::Literal(a)), Piece::Literal(b)) => a.extend(b),
                    (_, p) => joined.push(p),
                }
            }
            assert_eq!(
                joined,
                vec![
                    line("a1 NOOP\r\n"),
                    line("a2 APPEND INBOX {5}\r\n"),
                    Piece::Literal(b"hello".to_vec()),
                    line("\r\n"),
                    line("a3 LOGIN {1+}\r\n"),
                    Piece::Literal(b"x".to_vec()),
                    line(" {2+}\r\n"),
                    Piece::Literal(b"yz".to_vec()),
                    line("\r\n"),
                ],
                "chunk {chunk}"
            );
        }
    }

    #[test]
    fn a_line_at_the_limit_passes_one_over_is_dropped_whole() {
        let mut g = LineGuard::new(16);
        g.push(b"a1 NOOP 345678\r\n");
        assert_eq!(pieces(&mut g), vec![line("a1 NOOP 345678\r\n")]);
        g.push(b"a2 NOOP 34567890");
        assert_eq!(
            pieces(&mut g),
            vec![Piece::TooLong {
                tag: Tag::try_from("a2").ok(),
                continuation: false
            }]
        );
        // The rest of the line, however long, is dropped without being kept.
        for _ in 0..1000 {
            g.push(&[b'x'; 1000]);
            assert_eq!(pieces(&mut g), vec![]);
            assert!(g.line.is_empty() && g.pending.len() <= 1000);
        }
        g.push(b"\r\na3 NOOP\r\n");
        assert_eq!(pieces(&mut g), vec![line("a3 NOOP\r\n")]);
    }

    #[test]
    fn a_dropped_line_drops_its_non_synchronising_literal_and_what_follows() {
        let mut g = LineGuard::new(16);
        g.push(b"a1 APPEND INBOX (\\Seen) {10+}\r\nA1 NOOP\r\n\r\na2 NOOP\r\n");
        assert_eq!(
            pieces(&mut g),
            vec![
                Piece::TooLong {
                    tag: Tag::try_from("a1").ok(),
                    continuation: false
                },
                line("a2 NOOP\r\n")
            ]
        );
        // A synchronising literal is not asked for: the next line is a command.
        let mut g = LineGuard::new(16);
        g.push(b"a1 APPEND INBOX (\\Seen) {10}\r\na2 NOOP\r\n");
        assert_eq!(
            pieces(&mut g),
            vec![
                Piece::TooLong {
                    tag: Tag::try_from("a1").ok(),
                    continuation: false
                },
                line("a2 NOOP\r\n")
            ]
        );
    }

    #[test]
    fn a_long_line_after_a_literal_is_a_continuation() {
        let mut g = LineGuard::new(16);
        g.push(b"a1 LOGIN {1+}\r\nx yyyyyyyyyyyyyyyyyyy\r\na2 NOOP\r\n");
        assert_eq!(
            pieces(&mut g),
            vec![
                line("a1 LOGIN {1+}\r\n"),
                Piece::Literal(b"x".to_vec()),
                Piece::TooLong {
                    tag: None,
                    continuation: true
                },
                line("a2 NOOP\r\n")
            ]
        );
    }

    #[test]
    fn a_refused_literal_is_not_read_as_data() {
        let mut g = LineGuard::new(64);
        g.push(b"a1 APPEND INBOX {999999}\r\na2 NOOP\r\n");
        assert_eq!(g.next_piece(), Some(line("a1 APPEND INBOX {999999}\r\n")));
        g.literal_refused();
        assert_eq!(pieces(&mut g), vec![line("a2 NOOP\r\n")]);
    }

    #[test]
    fn no_tag_no_guess() {
        let mut g = LineGuard::new(8);
        g.push(b"(((((((((((\r\n");
        assert_eq!(
            pieces(&mut g),
            vec![Piece::TooLong {
                tag: None,
                continuation: false
            }]
        );
    }
}
