//! The IMAP input path without a store: `mes::imap::line::LineGuard` cutting
//! arbitrary bytes into lines and literals, and imap-next's `Server` fed the
//! pieces the way `src/imap/session.rs` feeds them (literal limit before and
//! after login, refused literals, over-long lines). Commands are answered OK
//! without doing anything, except that mailbox names and LIST patterns go
//! through `mes::imap::names` as the real session decodes them.
//!
//! Input: byte 0 picks the chunk size, byte 1 the line limit; the rest is
//! what the client sends. Whatever the guard hands over fits its limits.
#![no_main]

use imap_codec::imap_types::command::CommandBody;
use imap_codec::imap_types::core::Tag;
use imap_codec::imap_types::response::{CommandContinuationRequest, Greeting, Status};
use imap_next::server::{Error as NextError, Event, Options, Server};
use imap_next::{Interrupt, Io, State};
use libfuzzer_sys::fuzz_target;
use mes::imap::line::{LineGuard, Piece};
use mes::imap::names::{self, Wire};
use mes::imap::session::PRE_LOGIN_LITERAL;

/// The message size limit after login (small, to reach it).
const MAX_LITERAL: u32 = 64 * 1024;

/// As `options` in src/imap/session.rs.
fn options(max_line: u32) -> Options {
    let mut o = Options::default();
    o.max_literal_size = MAX_LITERAL;
    o.max_command_size = MAX_LITERAL + max_line;
    let _ = o.set_literal_accept_text("Ready for literal data".into());
    let _ = o.set_literal_reject_text("Literal too large".into());
    o
}

struct Fake {
    server: Server,
    guard: LineGuard,
    logged_in: bool,
    literal_refused: bool,
}

fn ok(tag: Tag<'static>) -> Status<'static> {
    Status::ok(Some(tag), None, "done").expect("static text")
}

impl Fake {
    fn command(&mut self, tag: Tag<'static>, body: CommandBody<'static>) {
        let wire = Wire::Utf7;
        match &body {
            CommandBody::Login { .. } => {
                self.logged_in = true;
                self.guard.set_max_literal(None);
            }
            CommandBody::Select { mailbox, .. }
            | CommandBody::Examine { mailbox, .. }
            | CommandBody::Create { mailbox }
            | CommandBody::Status { mailbox, .. } => {
                let _ = names::decode(mailbox, wire);
            }
            CommandBody::List {
                reference,
                mailbox_wildcard,
            } => {
                let _ = names::supplied(reference, wire);
                let _ = names::pattern_text(mailbox_wildcard, wire);
            }
            _ => {}
        }
        self.server.enqueue_status(ok(tag));
    }

    fn pump(&mut self) {
        loop {
            match self.server.next() {
                Ok(Event::CommandReceived { command }) => self.command(command.tag, command.body),
                Ok(Event::CommandAuthenticateReceived {
                    command_authenticate,
                }) => {
                    let tag = command_authenticate.tag;
                    let status = Status::no(Some(tag), None, "no").expect("static text");
                    let _ = self.server.authenticate_finish(status);
                }
                Ok(Event::AuthenticateDataReceived { .. }) => {
                    let _ = self
                        .server
                        .authenticate_finish(Status::no(None, None, "no").expect("static text"));
                }
                Ok(Event::IdleCommandReceived { .. }) => {
                    let cont = CommandContinuationRequest::basic(None, "idling").expect("static");
                    let _ = self.server.idle_accept(cont);
                }
                Ok(_) => {}
                Err(Interrupt::Io(Io::Output(_))) => {}
                Err(Interrupt::Io(Io::NeedMoreInput)) => return,
                Err(Interrupt::Error(NextError::LiteralTooLong { .. })) => {
                    self.literal_refused = true;
                }
                Err(Interrupt::Error(_)) => {}
            }
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let [chunk, line, input @ ..] = data else {
        return;
    };
    let max_line = 64 + usize::from(*line) * 4;
    let greeting = Greeting::ok(None, "MES ready").expect("static text");
    let mut s = Fake {
        server: Server::new(options(max_line as u32), greeting),
        guard: LineGuard::new(max_line),
        logged_in: false,
        literal_refused: false,
    };
    s.guard.set_max_literal(Some(PRE_LOGIN_LITERAL));
    s.pump();
    for piece in input.chunks(usize::from(*chunk).max(1)) {
        s.guard.push(piece);
        while let Some(piece) = s.guard.next_piece() {
            match piece {
                Piece::Line { bytes, literal } => {
                    assert!(bytes.len() <= max_line && bytes.ends_with(b"\n"));
                    if let Some(announced) = literal {
                        assert!(s.logged_in || announced.length <= PRE_LOGIN_LITERAL);
                    }
                    s.literal_refused = false;
                    s.server.enqueue_input(&bytes);
                    s.pump();
                    if literal.is_some() && s.literal_refused {
                        s.guard.literal_refused();
                    }
                }
                Piece::Literal(bytes) => {
                    assert!(bytes.len() <= input.len());
                    s.server.enqueue_input(&bytes);
                    s.pump();
                }
                Piece::TooLong {
                    continuation: true, ..
                } => {
                    // imap-next holds the start of the command: make it drop it.
                    s.server.enqueue_input(b"\x00\r\n");
                    s.pump();
                }
                Piece::LiteralTooLarge {
                    tag: Some(tag),
                    continuation: false,
                    ..
                }
                | Piece::TooLong {
                    tag: Some(tag),
                    continuation: false,
                } => {
                    let bad = Status::bad(Some(tag), None, "too big").expect("static text");
                    s.server.enqueue_status(bad);
                    s.pump();
                }
                // The real session says BYE and closes.
                Piece::LiteralTooLarge { .. } | Piece::TooLong { .. } => return,
            }
        }
    }
});
