//! The SMTP session as a state machine: bytes in, replies out.
//!
//! The tokio task around it (see `listener`) only reads bytes, calls
//! [`Session::feed`], writes [`Session::take_output`] and performs the TLS
//! upgrade when asked. Everything the session needs to decide (who may log in,
//! send as whom, to whom, and storing the message) it asks of a [`Backend`],
//! so the state machine can be driven from tests without a network.
//!
//! Commands are parsed by smtp-proto; DATA and BDAT payloads are received with
//! its receivers, with the size limit enforced while streaming: past the limit
//! the content is discarded, never buffered.

use std::future::Future;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use smtp_proto::request::receiver::{BdatReceiver, DataReceiver, DummyDataReceiver};
use smtp_proto::{Error as ProtoError, Request};

use super::Mode;
use super::reply::{self, Reply};
pub use crate::delivery::{Recipient, Target};
use crate::identity::AccountKind;
use crate::identity::auth::CredentialStamp;
use crate::identity::author::SenderCheck;
use crate::identity::sasl::{self, Credentials};
use crate::tls::TlsInfo;

/// Longest command line (RFC 5321 §4.5.3.1.4), CRLF included.
pub const MAX_COMMAND_LINE: usize = 512;
/// Longest AUTH command or SASL response line (RFC 4954 §4).
pub const MAX_AUTH_LINE: usize = 12288;
/// Longest text line of message data (RFC 5321 §4.5.3.1.6), CRLF included.
pub const MAX_TEXT_LINE: usize = 1000;

/// Settings shared by all sessions of one listener.
#[derive(Debug, Clone)]
pub struct SessionConfig {
    /// Our host name (greeting, EHLO, Received).
    pub hostname: String,
    /// MX or submission.
    pub mode: Mode,
    /// Largest message in octets.
    pub max_message_size: usize,
    /// Most recipients per message.
    pub max_recipients: usize,
    /// Silence allowed while a command is expected.
    pub command_timeout: Duration,
    /// Silence allowed while message data is expected.
    pub data_timeout: Duration,
}

/// A logged-in account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authenticated {
    /// Account row id.
    pub account_id: i64,
    /// Its address.
    pub address: String,
    /// Its kind.
    pub kind: AccountKind,
    /// The credentials it logged in with, to end the session when the
    /// operator changes them or disables the account (`None`: not rechecked).
    pub stamp: Option<CredentialStamp>,
}

/// Outcome of an authentication attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthOutcome {
    /// Logged in.
    Success(Authenticated),
    /// Wrong credentials (the backend already applied its delay).
    Invalid,
    /// Too many failures from this IP or for this account: the session ends.
    Throttled,
    /// Valid, but this account may not use SMTP (the reply says why).
    Refused(Reply),
}

/// The envelope of the transaction in progress.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Envelope {
    /// Reverse path, normalised ("" for the null sender).
    pub mail_from: String,
    /// RFC 3461 ENVID.
    pub env_id: Option<String>,
    /// RFC 3461 RET: `FULL` or `HDRS`.
    pub ret: Option<&'static str>,
    /// BODY=8BITMIME was given.
    pub body_8bit: bool,
    /// SMTPUTF8 was given.
    pub smtputf8: bool,
    /// The size the client declared (RFC 1870 SIZE; 0 when not given): a
    /// recipient whose quota cannot take it is refused at RCPT.
    pub size: usize,
    /// Accepted recipients.
    pub recipients: Vec<Recipient>,
    /// What the check of the reverse path proved at MAIL FROM (none for the null sender).
    pub sender: Option<SenderCheck>,
}

/// What the policy and storage side sees of a session.
#[derive(Debug, Clone)]
pub struct SessionView {
    /// Listener mode.
    pub mode: Mode,
    /// Client IP address.
    pub peer_ip: IpAddr,
    /// EHLO/HELO argument.
    pub helo: String,
    /// TLS parameters and verified client certificate.
    pub tls: Option<TlsInfo>,
    /// Logged-in account, on submission.
    pub auth: Option<Authenticated>,
}

/// Everything the session asks of the rest of the server.
pub trait Backend: Send + Sync {
    /// Verifies PLAIN/LOGIN credentials (with throttling).
    fn authenticate(
        &self,
        view: &SessionView,
        credentials: Credentials,
    ) -> impl Future<Output = AuthOutcome> + Send;

    /// Maps the verified client certificate to an account (SASL EXTERNAL).
    fn authenticate_external(
        &self,
        view: &SessionView,
        authzid: Option<String>,
    ) -> impl Future<Output = AuthOutcome> + Send;

    /// May this session use this reverse path? (Normalised address, "" for
    /// null.) Returns what the check proved, kept with the transaction.
    fn check_sender(
        &self,
        view: &SessionView,
        mail_from: &str,
    ) -> impl Future<Output = Result<Option<SenderCheck>, Reply>> + Send;

    /// May this session send to this address? Returns where it goes.
    fn check_recipient(
        &self,
        view: &SessionView,
        envelope: &Envelope,
        rcpt: &str,
    ) -> impl Future<Output = Result<Target, Reply>> + Send;

    /// Checks the content and stores the message durably; the reply is sent as is.
    fn deliver(
        &self,
        view: &SessionView,
        envelope: &Envelope,
        data: Vec<u8>,
    ) -> impl Future<Output = Reply> + Send;
}

/// What the I/O loop must do after [`Session::feed`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Write the output, then read more input.
    Continue,
    /// Write the output, then perform the TLS handshake and call [`Session::tls_started`].
    StartTls,
    /// Write the output, then close the connection.
    Close,
}

enum Phase {
    Command,
    AuthPlain,
    AuthLoginUser,
    AuthLoginPassword(String),
    Data(DataState),
    Bdat(BdatState),
    Closed,
}

struct DataState {
    receiver: DataReceiver,
    discard: Option<DummyDataReceiver>,
    line_len: usize,
    long_line: bool,
}

struct BdatState {
    receiver: Result<BdatReceiver, DummyDataReceiver>,
    is_last: bool,
    /// Why the chunk is being discarded, to answer once it is consumed.
    error: Option<Reply>,
}

/// One SMTP session.
pub struct Session<B> {
    backend: B,
    config: Arc<SessionConfig>,
    view: SessionView,
    phase: Phase,
    line: Vec<u8>,
    line_overflow: bool,
    envelope: Option<Envelope>,
    data: Vec<u8>,
    out: Vec<u8>,
}

impl<B: Backend> Session<B> {
    /// A new session; `tls` is set for implicit TLS (port 465).
    pub fn new(
        backend: B,
        config: Arc<SessionConfig>,
        peer_ip: IpAddr,
        tls: Option<TlsInfo>,
    ) -> Self {
        let mut s = Session {
            backend,
            view: SessionView {
                mode: config.mode,
                peer_ip,
                helo: String::new(),
                tls,
                auth: None,
            },
            config,
            phase: Phase::Command,
            line: Vec::new(),
            line_overflow: false,
            envelope: None,
            data: Vec::new(),
            out: Vec::new(),
        };
        let greeting = Reply::plain(220, vec![format!("{} ESMTP MES ready", s.config.hostname)]);
        s.reply(greeting);
        s
    }

    /// Bytes to send to the client.
    pub fn take_output(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.out)
    }

    /// What the policy side sees (for logs).
    pub fn view(&self) -> &SessionView {
        &self.view
    }

    /// True between transactions: closing now loses nothing.
    pub fn is_idle(&self) -> bool {
        matches!(self.phase, Phase::Command) && self.envelope.is_none()
    }

    /// How long the client may stay silent now.
    pub fn timeout(&self) -> Duration {
        match self.phase {
            Phase::Data(_) | Phase::Bdat(_) => self.config.data_timeout,
            _ => self.config.command_timeout,
        }
    }

    /// The TLS handshake after STARTTLS succeeded: the session starts afresh (RFC 3207 §4.2).
    pub fn tls_started(&mut self, info: TlsInfo) {
        self.view.tls = Some(info);
        self.view.helo.clear();
        self.view.auth = None;
        self.envelope = None;
        self.phase = Phase::Command;
        self.line.clear();
    }

    /// Tells the client the server is going away (shutdown or timeout).
    pub fn shutdown(&mut self, reason: &str) {
        self.reply(Reply::new(
            421,
            "4.4.2",
            format!("{} {reason}", self.config.hostname),
        ));
        self.phase = Phase::Closed;
    }

    fn reply(&mut self, r: Reply) {
        r.encode(&mut self.out);
    }

    /// Processes `input`; replies accumulate in the output buffer.
    pub async fn feed(&mut self, mut input: &[u8]) -> Action {
        while !input.is_empty() {
            match &mut self.phase {
                Phase::Closed => return Action::Close,
                Phase::Data(_) => {
                    input = self.feed_data(input).await;
                }
                Phase::Bdat(_) => {
                    input = self.feed_bdat(input).await;
                }
                _ => {
                    let Some(line) = self.take_line(&mut input) else {
                        continue;
                    };
                    match self.handle_line(line).await {
                        Action::Continue => {}
                        Action::StartTls => {
                            // Anything pipelined after STARTTLS is discarded (CVE-2011-0411).
                            return Action::StartTls;
                        }
                        Action::Close => return Action::Close,
                    }
                }
            }
        }
        if matches!(self.phase, Phase::Closed) {
            Action::Close
        } else {
            Action::Continue
        }
    }

    /// Cuts one complete line (with its LF) out of `input`, enforcing the line limits.
    fn take_line(&mut self, input: &mut &[u8]) -> Option<Vec<u8>> {
        let limit = MAX_AUTH_LINE;
        match input.iter().position(|&b| b == b'\n') {
            Some(pos) => {
                let (head, tail) = input.split_at(pos + 1);
                *input = tail;
                if self.line_overflow {
                    self.line_overflow = false;
                    self.line.clear();
                    self.reply(Reply::new(500, "5.5.2", "Line too long"));
                    return None;
                }
                if self.line.len() + head.len() > limit {
                    self.line.clear();
                    self.reply(Reply::new(500, "5.5.2", "Line too long"));
                    return None;
                }
                self.line.extend_from_slice(head);
                Some(std::mem::take(&mut self.line))
            }
            None => {
                if self.line.len() + input.len() > limit {
                    self.line.clear();
                    self.line_overflow = true;
                } else if !self.line_overflow {
                    self.line.extend_from_slice(input);
                }
                *input = &[];
                None
            }
        }
    }

    async fn handle_line(&mut self, line: Vec<u8>) -> Action {
        match std::mem::replace(&mut self.phase, Phase::Command) {
            Phase::AuthPlain => {
                self.auth_plain_response(&line).await;
                self.after_auth()
            }
            Phase::AuthLoginUser => {
                if is_cancel(&line) {
                    self.reply(Reply::new(501, "5.7.0", "Authentication cancelled"));
                    return Action::Continue;
                }
                match sasl::decode_b64(&line).map(String::from_utf8) {
                    Ok(Ok(user)) => {
                        self.phase = Phase::AuthLoginPassword(user);
                        self.reply(Reply::plain(334, vec![sasl::encode_b64(b"Password:")]));
                    }
                    _ => self.reply(Reply::new(501, "5.5.2", "Invalid base64 in response")),
                }
                Action::Continue
            }
            Phase::AuthLoginPassword(user) => {
                if is_cancel(&line) {
                    self.reply(Reply::new(501, "5.7.0", "Authentication cancelled"));
                    return Action::Continue;
                }
                match sasl::decode_b64(&line).map(String::from_utf8) {
                    Ok(Ok(password)) => {
                        self.authenticate(Credentials {
                            username: user,
                            password,
                        })
                        .await;
                    }
                    _ => self.reply(Reply::new(501, "5.5.2", "Invalid base64 in response")),
                }
                self.after_auth()
            }
            _ => self.handle_command(line).await,
        }
    }

    fn after_auth(&mut self) -> Action {
        if matches!(self.phase, Phase::Closed) {
            Action::Close
        } else {
            Action::Continue
        }
    }

    async fn handle_command(&mut self, line: Vec<u8>) -> Action {
        let is_auth = line.len() >= 4 && line[..4].eq_ignore_ascii_case(b"AUTH");
        if !is_auth && line.len() > MAX_COMMAND_LINE {
            self.reply(Reply::new(
                500,
                "5.5.2",
                "Line too long (512 octets at most)",
            ));
            return Action::Continue;
        }
        let request = match Request::parse(&mut line.iter()) {
            Ok(r) => r.into_owned(),
            Err(e) => {
                let r = parse_error_reply(&e);
                self.reply(r);
                return Action::Continue;
            }
        };
        let tls = self.view.tls.is_some();
        match request {
            Request::Ehlo { host } => {
                self.view.helo = host;
                self.envelope = None;
                let r = self.ehlo_reply();
                self.reply(r);
            }
            Request::Helo { host } => {
                self.view.helo = host;
                self.envelope = None;
                self.reply(Reply::plain(250, vec![self.config.hostname.clone()]));
            }
            Request::Lhlo { .. } => self.reply(Reply::new(500, "5.5.1", "LHLO is for LMTP")),
            Request::Noop { .. } => self.reply(reply::ok()),
            Request::Quit => {
                self.reply(Reply::new(221, "2.0.0", "Bye"));
                self.phase = Phase::Closed;
                return Action::Close;
            }
            Request::StartTls => {
                if tls {
                    self.reply(bad_tls_again());
                } else {
                    self.reply(Reply::new(220, "2.0.0", "Ready to start TLS"));
                    self.line.clear();
                    return Action::StartTls;
                }
            }
            _ if !tls => self.reply(reply::tls_required()),
            Request::Rset => {
                self.envelope = None;
                self.reply(reply::ok());
            }
            Request::Vrfy { .. } | Request::Expn { .. } => self.reply(Reply::new(
                252,
                "2.5.0",
                "Cannot VRFY user, but will accept message",
            )),
            Request::Help { .. } => self.reply(Reply::new(214, "2.0.0", "See RFC 5321")),
            Request::Auth {
                mechanism,
                initial_response,
            } => self.auth_command(mechanism, initial_response).await,
            Request::Mail { from } => self.mail(from).await,
            Request::Rcpt { to } => self.rcpt(to).await,
            Request::Data => {
                if self
                    .envelope
                    .as_ref()
                    .is_none_or(|e| e.recipients.is_empty())
                {
                    self.reply(reply::bad_sequence("need RCPT before DATA"));
                } else {
                    self.data.clear();
                    self.phase = Phase::Data(DataState {
                        receiver: DataReceiver::new(),
                        discard: None,
                        line_len: 0,
                        long_line: false,
                    });
                    self.reply(Reply::new(
                        354,
                        "2.0.0",
                        "Start mail input; end with <CRLF>.<CRLF>",
                    ));
                }
            }
            Request::Bdat {
                chunk_size,
                is_last,
            } => self.bdat(chunk_size, is_last).await,
            Request::Etrn { .. } | Request::Atrn { .. } | Request::Burl { .. } => {
                self.reply(Reply::new(502, "5.5.1", "Command not implemented"))
            }
        }
        Action::Continue
    }

    fn ehlo_reply(&self) -> Reply {
        let mut lines = vec![format!(
            "{} greets {}",
            self.config.hostname, self.view.helo
        )];
        lines.push("PIPELINING".into());
        lines.push("ENHANCEDSTATUSCODES".into());
        if self.view.tls.is_none() {
            lines.push("STARTTLS".into());
        } else {
            lines.push(format!("SIZE {}", self.config.max_message_size));
            lines.push("8BITMIME".into());
            lines.push("SMTPUTF8".into());
            lines.push("DSN".into());
            lines.push("CHUNKING".into());
            if self.config.mode == Mode::Submission && self.view.auth.is_none() {
                let mut auth = "AUTH PLAIN LOGIN".to_string();
                if self
                    .view
                    .tls
                    .as_ref()
                    .is_some_and(|t| t.peer_subject.is_some())
                {
                    auth.push_str(" EXTERNAL");
                }
                lines.push(auth);
            }
        }
        Reply::plain(250, lines)
    }

    async fn auth_command(&mut self, mechanism: u64, initial: String) {
        if self.config.mode != Mode::Submission {
            self.reply(Reply::new(
                503,
                "5.5.1",
                "AUTH is not offered here (client certificates identify peers)",
            ));
            return;
        }
        if self.view.auth.is_some() {
            self.reply(reply::bad_sequence("already authenticated"));
            return;
        }
        if self.envelope.is_some() {
            self.reply(reply::bad_sequence(
                "AUTH not allowed during a mail transaction",
            ));
            return;
        }
        match mechanism {
            smtp_proto::AUTH_PLAIN => {
                if initial.is_empty() {
                    self.phase = Phase::AuthPlain;
                    self.reply(Reply::plain(334, vec![String::new()]));
                } else {
                    self.auth_plain_response(initial.as_bytes()).await;
                }
            }
            smtp_proto::AUTH_LOGIN => {
                if initial.is_empty() {
                    self.phase = Phase::AuthLoginUser;
                    self.reply(Reply::plain(334, vec![sasl::encode_b64(b"Username:")]));
                } else {
                    match sasl::decode_b64(initial.as_bytes()).map(String::from_utf8) {
                        Ok(Ok(user)) => {
                            self.phase = Phase::AuthLoginPassword(user);
                            self.reply(Reply::plain(334, vec![sasl::encode_b64(b"Password:")]));
                        }
                        _ => self.reply(Reply::new(501, "5.5.2", "Invalid base64 in response")),
                    }
                }
            }
            smtp_proto::AUTH_EXTERNAL => {
                if self
                    .view
                    .tls
                    .as_ref()
                    .and_then(|t| t.peer_subject.as_ref())
                    .is_none()
                {
                    self.reply(Reply::new(
                        535,
                        "5.7.8",
                        "No client certificate was presented",
                    ));
                    return;
                }
                let authzid = match sasl::decode_b64(initial.as_bytes()) {
                    Ok(v) if v.is_empty() => None,
                    Ok(v) => match String::from_utf8(v) {
                        Ok(s) => Some(s),
                        Err(_) => {
                            self.reply(Reply::new(501, "5.5.2", "Invalid authorization identity"));
                            return;
                        }
                    },
                    Err(_) => {
                        self.reply(Reply::new(501, "5.5.2", "Invalid base64 in response"));
                        return;
                    }
                };
                let outcome = self
                    .backend
                    .authenticate_external(&self.view, authzid)
                    .await;
                self.auth_outcome(outcome);
            }
            _ => self.reply(Reply::new(504, "5.5.4", "Mechanism not supported")),
        }
    }

    async fn auth_plain_response(&mut self, line: &[u8]) {
        if is_cancel(line) {
            self.reply(Reply::new(501, "5.7.0", "Authentication cancelled"));
            return;
        }
        match sasl::decode_b64(line)
            .map_err(|_| ())
            .and_then(|d| sasl::parse_plain(&d).map_err(|_| ()))
        {
            Ok(credentials) => self.authenticate(credentials).await,
            Err(()) => self.reply(Reply::new(501, "5.5.2", "Malformed PLAIN response")),
        }
    }

    async fn authenticate(&mut self, credentials: Credentials) {
        let outcome = self.backend.authenticate(&self.view, credentials).await;
        self.auth_outcome(outcome);
    }

    fn auth_outcome(&mut self, outcome: AuthOutcome) {
        match outcome {
            AuthOutcome::Success(account) => {
                self.view.auth = Some(account);
                self.reply(Reply::new(235, "2.7.0", "Authentication successful"));
            }
            AuthOutcome::Invalid => self.reply(Reply::new(
                535,
                "5.7.8",
                "Authentication credentials invalid",
            )),
            AuthOutcome::Refused(r) => self.reply(r),
            AuthOutcome::Throttled => {
                self.reply(Reply::new(
                    421,
                    "4.7.0",
                    "Too many failed authentications, try again later",
                ));
                self.phase = Phase::Closed;
            }
        }
    }

    async fn mail(&mut self, from: smtp_proto::MailFrom<String>) {
        if self.view.helo.is_empty() {
            self.reply(reply::bad_sequence("send EHLO first"));
            return;
        }
        if self.envelope.is_some() {
            self.reply(reply::bad_sequence("nested MAIL command"));
            return;
        }
        if self.config.mode == Mode::Submission && self.view.auth.is_none() {
            self.reply(Reply::new(530, "5.7.0", "Authentication required"));
            return;
        }
        if from.size > self.config.max_message_size {
            self.reply(Reply::new(
                552,
                "5.3.4",
                "Message size exceeds fixed maximum message size",
            ));
            return;
        }
        if from.flags & smtp_proto::MAIL_BODY_BINARYMIME != 0 {
            self.reply(Reply::new(555, "5.5.4", "BODY=BINARYMIME is not supported"));
            return;
        }
        let mail_from = if from.address.is_empty() {
            String::new()
        } else {
            match crate::address::Address::parse(&from.address) {
                Ok(a) => a.to_string(),
                Err(e) => {
                    self.reply(Reply::new(553, "5.1.7", format!("Bad sender address: {e}")));
                    return;
                }
            }
        };
        let sender = match self.backend.check_sender(&self.view, &mail_from).await {
            Ok(sender) => sender,
            Err(r) => {
                // 421: the server closes the session (RFC 5321 §3.8).
                if r.code == 421 {
                    self.phase = Phase::Closed;
                }
                self.reply(r);
                return;
            }
        };
        let ret = if from.flags & smtp_proto::MAIL_RET_FULL != 0 {
            Some("FULL")
        } else if from.flags & smtp_proto::MAIL_RET_HDRS != 0 {
            Some("HDRS")
        } else {
            None
        };
        self.envelope = Some(Envelope {
            mail_from,
            env_id: from.env_id,
            ret,
            body_8bit: from.flags & smtp_proto::MAIL_BODY_8BITMIME != 0,
            smtputf8: from.flags & smtp_proto::MAIL_SMTPUTF8 != 0,
            size: from.size,
            recipients: Vec::new(),
            sender,
        });
        self.reply(Reply::new(250, "2.1.0", "Sender OK"));
    }

    async fn rcpt(&mut self, to: smtp_proto::RcptTo<String>) {
        let Some(envelope) = &self.envelope else {
            self.reply(reply::bad_sequence("need MAIL before RCPT"));
            return;
        };
        if envelope.recipients.len() >= self.config.max_recipients {
            self.reply(Reply::new(452, "4.5.3", "Too many recipients"));
            return;
        }
        let address = match crate::address::Address::parse(&to.address) {
            Ok(a) => a.to_string(),
            Err(e) => {
                self.reply(Reply::new(
                    553,
                    "5.1.3",
                    format!("Bad recipient address: {e}"),
                ));
                return;
            }
        };
        if envelope.recipients.iter().any(|r| r.address == address) {
            self.reply(Reply::new(250, "2.1.5", "Recipient OK (duplicate)"));
            return;
        }
        match self
            .backend
            .check_recipient(&self.view, envelope, &address)
            .await
        {
            Ok(target) => {
                if let Some(e) = self.envelope.as_mut() {
                    e.recipients.push(Recipient {
                        address,
                        // smtp-proto strips the address type; only rfc822 is accepted (RFC 3461 §4.2).
                        orcpt: to.orcpt.map(|o| format!("rfc822;{o}")),
                        notify: to.flags,
                        target,
                    });
                }
                self.reply(Reply::new(250, "2.1.5", "Recipient OK"));
            }
            Err(r) => self.reply(r),
        }
    }

    async fn bdat(&mut self, chunk_size: usize, is_last: bool) {
        // The chunk is read in full even when refused, to stay in step with the client.
        let error = if self
            .envelope
            .as_ref()
            .is_none_or(|e| e.recipients.is_empty())
        {
            Some(reply::bad_sequence("need RCPT before BDAT"))
        } else if self.data.len().saturating_add(chunk_size) > self.config.max_message_size {
            Some(Reply::new(
                552,
                "5.3.4",
                "Message size exceeds fixed maximum message size",
            ))
        } else {
            None
        };
        let receiver = if error.is_some() {
            Err(DummyDataReceiver::new_bdat(chunk_size))
        } else {
            Ok(BdatReceiver::new(chunk_size, is_last))
        };
        self.phase = Phase::Bdat(BdatState {
            receiver,
            is_last,
            error,
        });
        if chunk_size == 0 {
            self.finish_bdat().await;
        }
    }

    async fn feed_bdat<'a>(&mut self, input: &'a [u8]) -> &'a [u8] {
        let Phase::Bdat(state) = &mut self.phase else {
            return input;
        };
        let mut iter = input.iter();
        let done = match &mut state.receiver {
            Ok(r) => r.ingest(&mut iter, &mut self.data),
            Err(d) => d.ingest(&mut iter),
        };
        let rest = iter.as_slice();
        if done {
            self.finish_bdat().await;
        }
        rest
    }

    async fn finish_bdat(&mut self) {
        let Phase::Bdat(state) = std::mem::replace(&mut self.phase, Phase::Command) else {
            return;
        };
        if let Some(r) = state.error {
            // RFC 3030 §4.2: a refused chunk fails the whole transaction.
            self.reply(r);
            self.reset_transaction();
            return;
        }
        if !state.is_last {
            self.reply(Reply::new(
                250,
                "2.0.0",
                format!("{} octets received", self.data.len()),
            ));
            return;
        }
        self.finish_message().await;
    }

    async fn feed_data<'a>(&mut self, input: &'a [u8]) -> &'a [u8] {
        let max = self.config.max_message_size;
        let Phase::Data(state) = &mut self.phase else {
            return input;
        };
        let mut iter = input.iter();
        let done = match &mut state.discard {
            Some(d) => d.ingest(&mut iter),
            None => {
                let done = state.receiver.ingest(&mut iter, &mut self.data);
                if self.data.len() > max {
                    state.discard = Some(DummyDataReceiver::new_data(&state.receiver));
                    self.data = Vec::new();
                }
                done
            }
        };
        let rest = iter.as_slice();
        let consumed = &input[..input.len() - rest.len()];
        // Line lengths, a line at a time (memchr: messages carry large base64 parts).
        let mut tail = consumed;
        loop {
            let (line, next) = match memchr::memchr(b'\n', tail) {
                Some(at) => (&tail[..at], Some(&tail[at + 1..])),
                None => (tail, None),
            };
            state.line_len += line.len();
            if state.line_len + 2 > MAX_TEXT_LINE {
                state.long_line = true;
            }
            match next {
                Some(rest) => {
                    state.line_len = 0;
                    tail = rest;
                }
                None => break,
            }
        }
        if done {
            let Phase::Data(state) = std::mem::replace(&mut self.phase, Phase::Command) else {
                return rest;
            };
            if state.discard.is_some() {
                self.reply(Reply::new(
                    552,
                    "5.3.4",
                    "Message size exceeds fixed maximum message size",
                ));
                self.reset_transaction();
            } else if state.long_line {
                self.reply(Reply::new(
                    500,
                    "5.5.2",
                    "Message has lines longer than 1000 octets",
                ));
                self.reset_transaction();
            } else {
                self.finish_message().await;
            }
        }
        rest
    }

    async fn finish_message(&mut self) {
        let data = std::mem::take(&mut self.data);
        let Some(envelope) = self.envelope.take() else {
            self.reply(reply::bad_sequence("no transaction"));
            return;
        };
        let r = self.backend.deliver(&self.view, &envelope, data).await;
        self.reply(r);
        self.reset_transaction();
    }

    fn reset_transaction(&mut self) {
        self.envelope = None;
        self.data = Vec::new();
    }
}

fn is_cancel(line: &[u8]) -> bool {
    line.trim_ascii() == b"*"
}

fn bad_tls_again() -> Reply {
    Reply::new(503, "5.5.1", "TLS already active")
}

fn parse_error_reply(e: &ProtoError) -> Reply {
    match e {
        ProtoError::UnknownCommand => Reply::new(500, "5.5.1", "Command unrecognized"),
        ProtoError::InvalidSenderAddress => Reply::new(501, "5.1.7", "Bad sender address syntax"),
        ProtoError::InvalidRecipientAddress => {
            Reply::new(501, "5.1.3", "Bad recipient address syntax")
        }
        ProtoError::SyntaxError { syntax } => Reply::new(501, "5.5.2", format!("Syntax: {syntax}")),
        ProtoError::InvalidParameter { param } => {
            Reply::new(501, "5.5.4", format!("Invalid parameter {param}"))
        }
        ProtoError::UnsupportedParameter { param } => {
            Reply::new(555, "5.5.4", format!("Unsupported parameter {param}"))
        }
        ProtoError::ResponseTooLong => Reply::new(500, "5.5.2", "Line too long"),
        ProtoError::NeedsMoreData { .. } | ProtoError::InvalidResponse { .. } => {
            Reply::new(500, "5.5.2", "Syntax error")
        }
    }
}

#[cfg(test)]
mod tests;
