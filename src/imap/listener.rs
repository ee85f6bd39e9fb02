//! The IMAP listeners: accept, limits, TLS (implicit or STARTTLS), COMPRESS=DEFLATE
//! once the session accepted it (`compress.rs`), timeouts, and
//! IDLE wake-ups from the store's change bus. Only bytes move here.

use std::future::Future;
use std::net::SocketAddr;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

use futures_util::FutureExt;
use tokio::time::Instant;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{broadcast, watch};
use tokio_rustls::TlsAcceptor;

use super::compress::Deflate;
use super::session::{Action, ImapSession};
use super::{ImapConfig, ImapServices};
use crate::listen::accept;
use crate::listen::limits::ConnectionLimits;
use crate::tls;

/// Silence allowed after login, and the longest IDLE (RFC 3501 §5.4: at least 30 minutes).
const AUTO_LOGOUT: Duration = Duration::from_secs(31 * 60);

/// Octets read from the socket at a time, and inflated at a time.
const READ_CHUNK: usize = 8 * 1024;

/// One IMAP listener.
#[derive(Clone)]
pub struct ImapListener {
    /// TLS from the first byte (993) rather than STARTTLS (143).
    pub implicit_tls: bool,
    /// TLS acceptor (client certificates optional, for AUTH=EXTERNAL).
    pub acceptor: TlsAcceptor,
    /// The sessions' settings.
    pub config: Arc<ImapConfig>,
    /// The sessions' storage and logins (the real [`super::storage::Mailstore`]).
    pub services: Arc<ImapServices>,
    /// Connection limits.
    pub limits: Arc<ConnectionLimits>,
    /// The load balancers whose PROXY headers name the client, if behind one.
    pub proxy: Option<Arc<crate::listen::proxy::Proxied>>,
}

impl std::fmt::Debug for ImapListener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ImapListener")
            .field("implicit_tls", &self.implicit_tls)
            .finish_non_exhaustive()
    }
}

impl ImapListener {
    /// Accepts connections until `shutdown` turns true.
    pub async fn run(self, listener: TcpListener, shutdown: watch::Receiver<bool>) {
        let this = Arc::new(self);
        let span =
            |peer: &SocketAddr, session: u64| tracing::info_span!("imap", session, peer = %peer);
        let proxy = this.proxy.clone();
        accept::accept_loop(
            listener,
            shutdown,
            span,
            proxy,
            move |stream, peer, shutdown| {
                let this = this.clone();
                async move { this.connection(stream, peer, shutdown).await }
            },
        )
        .await;
    }

    async fn connection(
        self: Arc<Self>,
        mut stream: TcpStream,
        peer: SocketAddr,
        shutdown: watch::Receiver<bool>,
    ) {
        let Some(_guard) = self.limits.acquire(peer.ip()) else {
            let _ = stream.write_all(b"* BYE Too many connections\r\n").await;
            return;
        };
        if let Err(e) = self.session(stream, peer, shutdown).await {
            tracing::debug!(error = %e, "IMAP session ended");
        }
    }

    async fn session(
        &self,
        stream: TcpStream,
        peer: SocketAddr,
        mut shutdown: watch::Receiver<bool>,
    ) -> std::io::Result<()> {
        // From connection to login, however the client trickles its bytes: a
        // slow client cannot hold a connection slot before authenticating.
        let deadline = Instant::now() + self.config.login_timeout;
        let new_session =
            |tls| ImapSession::new(self.services.clone(), self.config.clone(), peer.ip(), tls);
        if self.implicit_tls {
            let mut tls = accept::handshake(&self.acceptor, stream).await?;
            let info = tls::session_info(tls.get_ref().1);
            let mut session = new_session(Some(info));
            drive(&mut tls, &mut session, self, &mut shutdown, deadline).await?;
            return Ok(());
        }
        let mut session = new_session(None);
        let mut plain = stream;
        if drive(&mut plain, &mut session, self, &mut shutdown, deadline).await? != Action::StartTls
        {
            return Ok(());
        }
        let mut tls = accept::handshake(&self.acceptor, plain).await?;
        session.tls_started(tls::session_info(tls.get_ref().1));
        drive(&mut tls, &mut session, self, &mut shutdown, deadline).await?;
        Ok(())
    }
}

/// Runs one step of the session; a panic inside it (a bug, whatever the
/// input) ends this session only, with `* BYE [SERVERBUG]`, and is logged.
async fn step(session_output: &mut Vec<u8>, fut: impl Future<Output = Action>) -> Action {
    match AssertUnwindSafe(fut).catch_unwind().await {
        Ok(action) => action,
        Err(panic) => {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| (*s).to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_default();
            tracing::error!(panic = %what, "IMAP session failed: closing it");
            session_output.extend_from_slice(b"* BYE [SERVERBUG] Internal server error\r\n");
            Action::Close
        }
    }
}

async fn drive<S>(
    stream: &mut S,
    session: &mut ImapSession<ImapServices>,
    listener: &ImapListener,
    shutdown: &mut watch::Receiver<bool>,
    login_deadline: Instant,
) -> std::io::Result<Action>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut changes = listener.services.store.changes().subscribe();
    let mut buf = vec![0u8; READ_CHUNK];
    let mut raw = vec![0u8; READ_CHUNK];
    // COMPRESS=DEFLATE, once the session accepted it (RFC 4978).
    let mut deflate: Option<Deflate> = None;
    let mut failed = Vec::new();
    let mut action = step(&mut failed, session.feed(&[])).await;
    loop {
        // After a panic the session's state is not trusted: only the BYE goes out.
        let out = if failed.is_empty() {
            session.take_output()
        } else {
            std::mem::take(&mut failed)
        };
        if !out.is_empty() {
            // One burst, one sync flush: the client can decode every reply it got.
            let out = match &mut deflate {
                Some(d) => d.compress(&out)?,
                None => out,
            };
            stream.write_all(&out).await?;
            stream.flush().await?;
        }
        match action {
            Action::Continue => {}
            Action::Compress => {
                // Whatever the client sent after the command is compressed
                // already: `read_input` inflates it before reading on.
                let mut d = Deflate::new();
                d.push(&session.take_unread())?;
                deflate = Some(d);
                tracing::info!("IMAP compression started");
            }
            Action::StartTls | Action::Close => return Ok(action),
        }
        let deadline = if session.is_authenticated() {
            Instant::now() + AUTO_LOGOUT
        } else {
            login_deadline
        };
        tokio::select! {
            read = tokio::time::timeout_at(deadline, read_input(stream, deflate.as_mut(), &mut raw, &mut buf)) => {
                action = match read {
                    Ok(Ok(0)) => return Ok(Action::Close),
                    Ok(Ok(n)) => step(&mut failed, session.feed(&buf[..n])).await,
                    Ok(Err(e)) => return Err(e),
                    Err(_) if session.is_authenticated() => {
                        step(&mut failed, session.shutdown("Autologout; idle for too long")).await
                    }
                    Err(_) => step(&mut failed, session.shutdown("Login timed out")).await,
                };
            }
            _ = tokio::time::sleep(listener.config.recheck), if session.is_idling() => {
                action = step(&mut failed, session.idle_changes()).await;
            }
            changed = changes.recv(), if session.is_idling() => {
                let relevant = match changed {
                    Ok(folder) => Some(folder) == session.selected_folder(),
                    Err(broadcast::error::RecvError::Lagged(_)) => true,
                    Err(broadcast::error::RecvError::Closed) => false,
                };
                action = if relevant {
                    step(&mut failed, session.idle_changes()).await
                } else {
                    Action::Continue
                };
            }
            _ = shutdown.changed() => {
                action = step(&mut failed, session.shutdown("Server shutting down")).await;
            }
        }
    }
}

/// The client's next bytes, inflated when compression is on: at most
/// `buf.len()` at a time, however much the compressed input expands. Reads
/// the socket only when the pending compressed input gives nothing more;
/// the read is its only await point, so it is cancel-safe in `select!`.
async fn read_input<S>(
    stream: &mut S,
    deflate: Option<&mut Deflate>,
    raw: &mut [u8],
    buf: &mut [u8],
) -> std::io::Result<usize>
where
    S: AsyncRead + Unpin,
{
    let Some(d) = deflate else {
        return stream.read(buf).await;
    };
    loop {
        let n = d.inflate(buf)?;
        if n > 0 {
            return Ok(n);
        }
        let read = stream.read(raw).await?;
        if read == 0 {
            return Ok(0);
        }
        d.push(&raw[..read])?;
    }
}
