//! One IMAP session: imap-next's server state machine fed with bytes (the
//! pump), protocol errors, responses enqueued back. The commands themselves
//! are in `op/`, dispatched by state from [`ImapSession::command`]. No sockets
//! here, and no store: whatever the session reads or changes, it asks of its
//! [`Mailstore`] (`storage.rs`), so `session/tests.rs` drives it over an
//! in-memory fake.

use std::collections::{HashSet, VecDeque};
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Arc;

use imap_codec::imap_types::IntoStatic;
use imap_codec::imap_types::core::Tag;
use imap_codec::imap_types::flag::{Flag, FlagFetch};
use imap_codec::imap_types::response::{
    Code, CommandContinuationRequest, Data, Greeting, GreetingKind, Status,
};
use imap_next::server::{Error as NextError, Event, Options, ResponseHandle, Server};
use imap_next::{Interrupt, Io, State};

use super::ImapConfig;
use super::line::{LineGuard, Piece};
use super::storage::Mailstore;
use crate::store::StoreError;
use crate::tls::TlsInfo;

/// What the I/O loop must do after [`ImapSession::feed`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Write the output, read more.
    Continue,
    /// Write the output, then do the TLS handshake and call [`ImapSession::tls_started`].
    StartTls,
    /// Write the output as it is, then compress both directions (RFC 4978):
    /// the input the session had not read yet ([`ImapSession::take_unread`])
    /// is already compressed.
    Compress,
    /// Write the output and close.
    Close,
}

/// The logged-in account.
#[derive(Debug, Clone)]
pub struct User {
    /// Account id.
    pub account_id: i64,
    /// Address.
    pub address: String,
    /// The credentials it logged in with: the session ends when they change.
    pub stamp: crate::identity::auth::CredentialStamp,
    /// When the account was last found unchanged (rechecked every
    /// `imap.recheck_secs`, not at every command: a query per command would
    /// double the cost of the cheap ones).
    pub checked: std::time::Instant,
}

/// The selected folder as this session sees it.
#[derive(Debug, Clone)]
pub struct Selected {
    /// Folder id.
    pub id: i64,
    /// UTF-8 name.
    pub name: String,
    /// EXAMINE, or SELECT of a read-only folder.
    pub read_only: bool,
    /// UIDVALIDITY.
    pub uidvalidity: i64,
    /// UIDs in sequence order (compact while idle).
    pub uids: super::sequence::UidMap,
    /// UIDs that are \Recent for this session.
    pub recent: HashSet<i64>,
    /// Highest MODSEQ already reported to the client.
    pub modseq: i64,
    /// The folder's (HIGHESTMODSEQ, UIDNEXT) at the last full check: unchanged means
    /// nothing to report, without reading the folder's rows.
    pub checked: (i64, i64),
    /// UIDs of the last `SEARCH RETURN (SAVE)` result, what `$` stands for
    /// (RFC 5182); empty after SELECT. Expunged UIDs are skipped when used.
    pub saved: Vec<i64>,
    /// Results of `RETURN (UPDATE)` kept up to date (RFC 5267 §4, `op/context.rs`).
    pub(in crate::imap) contexts: Vec<super::op::context::UpdateContext>,
    /// The keywords the client was told of in FLAGS: one used in a FETCH
    /// response must be announced first (RFC 3501 §7.2.6).
    pub keywords: Vec<String>,
}

impl Selected {
    /// Sequence number of `uid`.
    pub fn seq_of(&self, uid: i64) -> Option<NonZeroU32> {
        self.uids
            .seq_of(uid)
            .and_then(|n| NonZeroU32::new(n as u32))
    }
}

/// One IMAP session over the storage `S`.
pub struct ImapSession<S> {
    pub(super) server: Server,
    /// Folders, entries, APPEND and login.
    pub(super) mailstore: Arc<S>,
    /// The settings of the server.
    pub(super) config: Arc<ImapConfig>,
    pub(super) peer_ip: IpAddr,
    pub(super) tls: Option<TlsInfo>,
    pub(super) user: Option<User>,
    pub(super) selected: Option<Selected>,
    pub(super) condstore: bool,
    /// The client enabled IMAP4rev2 (RFC 9051): no \Recent, ESEARCH replies to
    /// SEARCH, CLOSED and LIST in SELECT.
    pub(super) rev2: bool,
    /// The client enabled QRESYNC (RFC 7162): VANISHED instead of EXPUNGE.
    pub(super) qresync: bool,
    /// The client enabled UTF8=ACCEPT (RFC 6855): UTF-8 mailbox names, APPEND's UTF8 item.
    pub(super) utf8: bool,
    /// COMPRESS DEFLATE was accepted (RFC 4978): a second one is refused.
    pub(super) compressed: bool,
    /// The COMPRESS OK: compression starts once it is written.
    pub(super) compress_handle: Option<ResponseHandle>,
    /// An AUTHENTICATE exchange waiting for the client's response.
    pub(super) auth_flow: Option<super::op::auth::AuthFlow>,
    idle_tag: Option<Tag<'static>>,
    /// The STARTTLS OK: the handshake starts once it is written.
    pub(super) starttls_handle: Option<ResponseHandle>,
    /// Close once the output is written (LOGOUT, too many failed logins).
    pub(super) closing: bool,
    out: Vec<u8>,
    /// Cuts the input into lines and literals and bounds the lines (see `line.rs`).
    pub(super) guard: LineGuard,
    /// imap-next refused the literal of the line just handed to it.
    literal_refused: bool,
    /// The command imap-next is about to report as malformed is one we made
    /// malformed on purpose (its line was too long).
    line_dropped: bool,
    /// RETURN options of the SEARCH or SORT being answered (see `extend.rs`, `op/returns.rs`).
    pub(super) esearch: Option<Vec<String>>,
    /// LIST-EXTENDED options of a LIST being answered.
    pub(super) list_options: Option<super::extend::ListOptions>,
    /// Responses imap-types cannot express, written in place of placeholders (see [`ImapSession::raw`]).
    raw_queue: VecDeque<Vec<u8>>,
}

/// Largest literal before login: enough for LOGIN and AUTHENTICATE, so
/// that an unauthenticated client cannot make the server buffer megabytes.
pub const PRE_LOGIN_LITERAL: u32 = 8 * 1024;

/// The text of the placeholder response [`ImapSession::raw`] enqueues.
const RAW_PLACEHOLDER: &[u8] = b"* OK [X-MES-RAW] placeholder\r\n";

/// A line imap-next is handed in place of one dropped for its length, after a
/// literal: no IMAP syntax allows NUL there, so the command fails to parse and
/// imap-next drops it whole.
const POISON_LINE: &[u8] = b"\x00\r\n";

fn options(max_literal: usize, max_line: usize) -> Options {
    let mut o = Options::default();
    let max_line = u32::try_from(max_line)
        .unwrap_or(u32::MAX / 2)
        .min(u32::MAX / 2);
    o.max_literal_size = u32::try_from(max_literal)
        .unwrap_or(u32::MAX)
        .min(u32::MAX - max_line);
    o.max_command_size = o.max_literal_size + max_line;
    let _ = o.set_literal_accept_text("Ready for literal data".into());
    let _ = o.set_literal_reject_text("Literal too large".into());
    o
}

impl<S: Mailstore> ImapSession<S> {
    /// A new session; `tls` is set for implicit TLS (port 993).
    pub fn new(
        mailstore: Arc<S>,
        config: Arc<ImapConfig>,
        peer_ip: IpAddr,
        tls: Option<TlsInfo>,
    ) -> Self {
        let caps = super::capabilities(
            tls.is_some(),
            false,
            has_cert(&tls),
            config.max_message_size,
        );
        let text = format!("{} IMAP4rev1 MES ready", config.hostname);
        let greeting = Greeting::new(
            GreetingKind::Ok,
            Some(Code::Capability(caps)),
            text.as_str(),
        )
        .map(IntoStatic::into_static)
        .unwrap_or_else(|_| Greeting::ok(None, "MES ready").expect("static greeting"));
        ImapSession {
            server: Server::new(
                options(config.max_message_size, config.max_command_line),
                greeting,
            ),
            guard: {
                let mut guard = LineGuard::new(config.max_command_line);
                guard.set_max_literal(Some(PRE_LOGIN_LITERAL));
                guard
            },
            literal_refused: false,
            line_dropped: false,
            mailstore,
            config,
            peer_ip,
            tls,
            user: None,
            selected: None,
            condstore: false,
            rev2: false,
            qresync: false,
            utf8: false,
            compressed: false,
            compress_handle: None,
            auth_flow: None,
            idle_tag: None,
            starttls_handle: None,
            closing: false,
            out: Vec::new(),
            esearch: None,
            list_options: None,
            raw_queue: VecDeque::new(),
        }
    }

    /// After a STARTTLS handshake: a fresh protocol state, no second greeting (RFC 3501 §6.2.1).
    pub fn tls_started(&mut self, info: TlsInfo) {
        let mut server = Server::new(
            options(self.config.max_message_size, self.config.max_command_line),
            Greeting::ok(None, "unused").expect("static greeting"),
        );
        // Consume the greeting the new state machine wants to send: the client already had one.
        while let Err(Interrupt::Io(Io::Output(_))) | Ok(Event::GreetingSent { .. }) = server.next()
        {
        }
        self.server = server;
        self.guard.reset();
        self.raw_queue.clear();
        self.tls = Some(info);
        self.starttls_handle = None;
    }

    /// Bytes to send to the client.
    pub fn take_output(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.out)
    }

    /// After [`Action::Compress`]: the input the session was given and did not
    /// read yet (sent after the COMPRESS command, so compressed), for the
    /// listener to inflate and feed again.
    pub fn take_unread(&mut self) -> Vec<u8> {
        self.guard.take_unread()
    }

    /// True while an IDLE command is running.
    pub fn is_idling(&self) -> bool {
        self.idle_tag.is_some()
    }

    /// True after LOGIN or AUTHENTICATE.
    pub fn is_authenticated(&self) -> bool {
        self.user.is_some()
    }

    /// The selected folder, if any.
    pub fn selected_folder(&self) -> Option<i64> {
        self.selected.as_ref().map(|s| s.id)
    }

    /// Processes input bytes (or none, to flush pending output).
    ///
    /// The input goes through the line guard and reaches imap-next one line or
    /// literal at a time, so that the guard knows, before it reads on, whether
    /// imap-next took the literal a line announced. Input after a STARTTLS or a
    /// closing command is dropped.
    pub async fn feed(&mut self, input: &[u8]) -> Action {
        self.guard.push(input);
        while let Some(piece) = self.guard.next_piece() {
            match piece {
                Piece::Line { bytes, literal } => {
                    self.literal_refused = false;
                    self.server.enqueue_input(&bytes);
                    let action = self.pump().await;
                    if action == Action::Compress && !self.closing {
                        // The rest of the input is compressed: the listener takes it back.
                        return action;
                    }
                    if action != Action::Continue || self.closing {
                        self.guard.reset();
                        return action;
                    }
                    if literal.is_some() && self.literal_refused {
                        self.guard.literal_refused();
                    }
                }
                Piece::Literal(bytes) => {
                    self.server.enqueue_input(&bytes);
                    let action = self.pump().await;
                    if action != Action::Continue || self.closing {
                        self.guard.reset();
                        return action;
                    }
                }
                Piece::LiteralTooLarge {
                    tag,
                    continuation,
                    limit,
                } => {
                    let text = format!("Literal larger than {limit} octets before login");
                    match tag {
                        Some(tag) if !continuation && self.auth_flow.is_none() => {
                            if let Ok(s) = Status::bad(Some(tag), Some(code("TOOBIG")), text) {
                                self.server.enqueue_status(s);
                            }
                        }
                        // imap-next holds part of the command, or an AUTHENTICATE
                        // exchange is going on: end the session.
                        _ => {
                            self.bye_too_long(&text);
                            self.guard.reset();
                            break;
                        }
                    }
                }
                Piece::TooLong { tag, continuation } => {
                    Box::pin(self.line_too_long(tag, continuation)).await;
                    if self.closing {
                        // BYE sent: nothing after it is read.
                        self.guard.reset();
                        break;
                    }
                }
            }
        }
        self.pump().await
    }

    /// A command line passed `imap.max_command_line`: tagged BAD [TOOBIG] when
    /// the command's tag is known, else (and during IDLE) BYE.
    async fn line_too_long(&mut self, tag: Option<Tag<'static>>, continuation: bool) {
        let limit = self.guard.max_line();
        tracing::debug!(limit, "IMAP command line too long");
        let text = format!("Command line longer than {limit} octets");
        if self.idle_tag.is_some() {
            // Only DONE is expected: there is no command to answer.
            self.bye_too_long(&text);
        } else if let Some(flow) = self.auth_flow.take() {
            if continuation {
                self.bye_too_long(&text);
            } else if let Ok(s) = Status::bad(Some(flow.tag), Some(code("TOOBIG")), text) {
                let _ = self.server.authenticate_finish(s);
            }
        } else if continuation {
            // imap-next holds the command's start (tag, literals): make it drop it;
            // `protocol_error` answers with the tag it finds there.
            self.line_dropped = true;
            self.server.enqueue_input(POISON_LINE);
            self.pump().await;
            self.line_dropped = false;
        } else if let Some(tag) = tag {
            if let Ok(s) = Status::bad(Some(tag), Some(code("TOOBIG")), text) {
                self.server.enqueue_status(s);
            }
        } else {
            self.bye_too_long(&text);
        }
    }

    fn bye_too_long(&mut self, text: &str) {
        if let Ok(s) = Status::bye(Some(code("TOOBIG")), text.to_string()) {
            self.server.enqueue_status(s);
        }
        self.closing = true;
    }

    /// Sends `bytes` (whole responses, CRLF included) at this point of the
    /// response stream: for responses imap-types has no form for (ESEARCH,
    /// BINARY partial origins). A placeholder keeps the order.
    pub(super) fn raw(&mut self, bytes: Vec<u8>) {
        self.raw_queue.push_back(bytes);
        if let Ok(s) = Status::ok(None, Some(code("X-MES-RAW")), "placeholder") {
            self.server.enqueue_status(s);
        }
    }

    /// While idling: report changes of the selected folder now.
    pub async fn idle_changes(&mut self) -> Action {
        if !self.account_still_valid().await {
            return self.pump().await;
        }
        Box::pin(self.sync_selected(true)).await;
        self.pump().await
    }

    /// Tells the client the server is going away.
    pub async fn shutdown(&mut self, text: &str) -> Action {
        if let Ok(s) = Status::bye(None, text.to_string()) {
            self.server.enqueue_status(s);
        }
        self.closing = true;
        self.pump().await
    }

    async fn pump(&mut self) -> Action {
        loop {
            match self.server.next() {
                Ok(Event::GreetingSent { .. }) => {}
                Ok(Event::ResponseSent { handle, .. }) => {
                    if self.starttls_handle == Some(handle) {
                        return Action::StartTls;
                    }
                    if self.compress_handle == Some(handle) {
                        self.compress_handle = None;
                        return Action::Compress;
                    }
                }
                Ok(Event::CommandReceived { command }) => {
                    // Boxed: the session's own future stays small while it idles.
                    Box::pin(self.command(command)).await;
                }
                Ok(Event::CommandAuthenticateReceived {
                    command_authenticate,
                }) => {
                    let tag = command_authenticate.tag.clone();
                    let mechanism = command_authenticate.mechanism.clone();
                    let initial = command_authenticate
                        .initial_response
                        .map(|r| r.declassify().to_vec());
                    Box::pin(self.authenticate_start(tag, mechanism, initial)).await;
                }
                Ok(Event::AuthenticateDataReceived { authenticate_data }) => {
                    Box::pin(self.authenticate_data(authenticate_data)).await;
                }
                Ok(Event::IdleCommandReceived { tag }) => {
                    if self.selected.is_some() || self.user.is_some() {
                        let cont = CommandContinuationRequest::basic(None, "idling")
                            .unwrap_or_else(|_| {
                                CommandContinuationRequest::basic(None, "+").expect("static")
                            });
                        if self.server.idle_accept(cont).is_ok() {
                            self.idle_tag = Some(tag);
                        }
                    } else if let Ok(status) = Status::bad(Some(tag), None, "Log in first") {
                        let _ = self.server.idle_reject(status);
                    }
                }
                Ok(Event::IdleDoneReceived) => {
                    if let Some(tag) = self.idle_tag.take() {
                        Box::pin(self.sync_selected(true)).await;
                        self.ok(tag, None, "IDLE terminated");
                    }
                }
                Err(Interrupt::Io(Io::Output(bytes))) => {
                    // Responses imap-types cannot express replace their placeholders here.
                    if bytes == RAW_PLACEHOLDER
                        && let Some(raw) = self.raw_queue.pop_front()
                    {
                        self.out.extend_from_slice(&raw);
                    } else {
                        self.out.extend_from_slice(&bytes);
                    }
                }
                Err(Interrupt::Io(Io::NeedMoreInput)) => {
                    return if self.closing {
                        Action::Close
                    } else {
                        Action::Continue
                    };
                }
                Err(Interrupt::Error(e)) => Box::pin(self.protocol_error(e)).await,
            }
        }
    }

    /// After login, before a command and while idling, once per
    /// `imap.recheck_secs`: whether the
    /// account is still enabled with the credentials the session logged in
    /// with. If not, BYE and close. A store failure lets the session go on
    /// (the command itself reports it).
    pub(super) async fn account_still_valid(&mut self) -> bool {
        let Some(user) = &self.user else {
            return true;
        };
        if user.checked.elapsed() < self.config.recheck {
            return true;
        }
        match self
            .mailstore
            .still_valid(user.account_id, &user.stamp)
            .await
        {
            Ok(true) => {
                if let Some(user) = &mut self.user {
                    user.checked = std::time::Instant::now();
                }
                true
            }
            Ok(false) => {
                tracing::info!(account = %user.address, "IMAP session ended: account disabled or credentials changed");
                self.user = None;
                self.selected = None;
                self.idle_tag = None;
                if let Ok(s) = Status::bye(
                    Some(code("UNAVAILABLE")),
                    "Session ended: the account was disabled or its credentials changed",
                ) {
                    self.server.enqueue_status(s);
                }
                self.closing = true;
                false
            }
            Err(e) => {
                tracing::warn!(error = %e, "account recheck failed");
                true
            }
        }
    }

    async fn protocol_error(&mut self, e: NextError) {
        let (bytes, text) = match &e {
            NextError::ExpectedCrlfGotLf { discarded_bytes } => {
                (Some(discarded_bytes), "Expected CRLF")
            }
            NextError::MalformedMessage { discarded_bytes } => {
                (Some(discarded_bytes), "Syntax error")
            }
            NextError::LiteralTooLong { .. } => {
                self.literal_refused = true;
                (None, "")
            }
            NextError::CommandTooLong { discarded_bytes } => {
                (Some(discarded_bytes), "Command too long")
            }
        };
        let Some(bytes) = bytes else {
            // imap-next already answered (literal too large).
            return;
        };
        let raw = bytes.declassify().to_vec();
        // Extensions imap-codec does not parse (ESEARCH, LIST-EXTENDED, `$`) are rewritten and retried.
        if !self.line_dropped {
            match super::extend::rewrite(self, &raw) {
                Some(super::extend::Rewrite::Command(command)) => {
                    self.command(command).await;
                    // Options the command did not take (refused before it
                    // ran, e.g. before login) must not reach a later one.
                    self.esearch = None;
                    self.list_options = None;
                    return;
                }
                Some(super::extend::Rewrite::Answered) => return,
                Some(super::extend::Rewrite::Append(append)) => {
                    if self.user.is_some() {
                        self.append(append).await;
                    } else {
                        self.bad(append.tag, "Log in first");
                    }
                    return;
                }
                None => {}
            }
        }
        let tag = raw
            .split(|&b| b == b' ')
            .next()
            .and_then(|t| std::str::from_utf8(t).ok())
            .and_then(|t| Tag::try_from(t.to_string()).ok());
        if self.line_dropped {
            let text = format!("Command line longer than {} octets", self.guard.max_line());
            match tag {
                Some(tag) => {
                    if let Ok(s) = Status::bad(Some(tag), Some(code("TOOBIG")), text) {
                        self.server.enqueue_status(s);
                    }
                }
                None => self.bye_too_long(&text),
            }
            return;
        }
        tracing::debug!(reason = text, "IMAP command refused");
        if let Ok(status) = Status::bad(tag, None, text.to_string()) {
            self.server.enqueue_status(status);
        }
    }

    pub(super) fn ok(&mut self, tag: Tag<'static>, code: Option<Code<'static>>, text: &str) {
        if let Ok(s) = Status::ok(Some(tag), code, text.to_string()) {
            self.server.enqueue_status(s);
        }
    }

    pub(super) fn no(&mut self, tag: Tag<'static>, code: Option<Code<'static>>, text: &str) {
        if let Ok(s) = Status::no(Some(tag), code, text.to_string()) {
            self.server.enqueue_status(s);
        }
    }

    pub(super) fn bad(&mut self, tag: Tag<'static>, text: &str) {
        if let Ok(s) = Status::bad(Some(tag), None, text.to_string()) {
            self.server.enqueue_status(s);
        }
    }

    pub(super) fn untagged_ok(&mut self, code: Code<'static>, text: &str) {
        if let Ok(s) = Status::ok(None, Some(code), text.to_string()) {
            self.server.enqueue_status(s);
        }
    }

    pub(super) fn data(&mut self, data: Data<'static>) {
        self.server.enqueue_data(data);
    }

    /// Answers a store failure: NO with a generic reason, details only in the log.
    pub(super) fn store_failed(&mut self, tag: Tag<'static>, e: StoreError) {
        tracing::error!(error = %e, "IMAP store operation failed");
        self.no(
            tag,
            Some(code("SERVERBUG")),
            "Internal error, try again later",
        );
    }
}

/// An RFC 5530 response code imap-types has no variant for.
pub(super) fn code(name: &'static str) -> Code<'static> {
    Code::Other(imap_codec::imap_types::response::CodeOther::unvalidated(
        name.as_bytes(),
    ))
}
pub(super) fn has_cert(tls: &Option<TlsInfo>) -> bool {
    tls.as_ref().is_some_and(|t| t.peer_subject.is_some())
}

/// The FETCH FLAGS list of a stored flag string.
pub fn flag_fetch(flags: &str, recent: bool) -> Vec<FlagFetch<'static>> {
    let mut out: Vec<FlagFetch<'static>> = flags
        .split(' ')
        .filter(|f| !f.is_empty())
        .filter_map(|f| Flag::try_from(f).ok().map(IntoStatic::into_static))
        .map(FlagFetch::Flag)
        .collect();
    if recent {
        out.push(FlagFetch::Recent);
    }
    out
}

/// The stored form of a flag (`\Seen`, keyword as given).
pub fn flag_text(flag: &Flag<'_>) -> String {
    flag.to_string()
}

#[cfg(test)]
mod tests;
