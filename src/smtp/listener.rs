//! The SMTP listeners: accept, enforce connection limits, move bytes between the
//! socket and the [`Session`], perform TLS (implicit or STARTTLS).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;

use super::policy::{ServerBackend, SmtpServices};
use super::session::{Action, Session, SessionConfig};
use crate::listen::accept;
use crate::listen::limits::ConnectionLimits;
use crate::tls;

/// One SMTP listener's fixed parts.
#[derive(Clone)]
pub struct SmtpListener {
    /// Session settings (mode, limits).
    pub config: Arc<SessionConfig>,
    /// TLS from the first byte (port 465) rather than STARTTLS.
    pub implicit_tls: bool,
    /// The TLS acceptor (client certificate policy per listener).
    pub acceptor: TlsAcceptor,
    /// Shared services.
    pub services: Arc<SmtpServices>,
    /// Connection limits shared by all SMTP listeners.
    pub limits: Arc<ConnectionLimits>,
    /// Longest session.
    pub session_timeout: Duration,
    /// The load balancers whose PROXY headers name the client, if behind one.
    pub proxy: Option<Arc<crate::listen::proxy::Proxied>>,
}

impl std::fmt::Debug for SmtpListener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmtpListener")
            .field("mode", &self.config.mode)
            .field("implicit_tls", &self.implicit_tls)
            .finish_non_exhaustive()
    }
}

impl SmtpListener {
    /// Accepts connections until `shutdown` turns true.
    pub async fn run(self, listener: TcpListener, shutdown: watch::Receiver<bool>) {
        let this = Arc::new(self);
        let mode = this.config.mode;
        let span = match mode {
            super::Mode::Mx => {
                |peer: &SocketAddr, session: u64| tracing::info_span!("smtp", listener = "mx", session, peer = %peer)
            }
            super::Mode::Submission => {
                |peer: &SocketAddr, session: u64| tracing::info_span!("smtp", listener = "submission", session, peer = %peer)
            }
        };
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
            tracing::warn!("connection refused: too many connections");
            let _ = stream
                .write_all(b"421 4.7.0 Too many connections, try again later\r\n")
                .await;
            return;
        };
        let deadline = self.session_timeout;
        match tokio::time::timeout(deadline, self.session(stream, peer, shutdown)).await {
            Ok(Ok(())) => tracing::debug!("session closed"),
            Ok(Err(e)) => tracing::debug!(error = %e, "session ended"),
            Err(_) => tracing::info!("session timed out"),
        }
    }

    async fn session(
        &self,
        stream: TcpStream,
        peer: SocketAddr,
        mut shutdown: watch::Receiver<bool>,
    ) -> std::io::Result<()> {
        let backend = ServerBackend(self.services.clone());
        if self.implicit_tls {
            let tls = accept::handshake(&self.acceptor, stream).await?;
            let info = tls::session_info(tls.get_ref().1);
            let mut session = Session::new(backend, self.config.clone(), peer.ip(), Some(info));
            let mut tls = tls;
            drive(&mut tls, &mut session, &mut shutdown).await?;
            return Ok(());
        }
        let mut session = Session::new(backend, self.config.clone(), peer.ip(), None);
        let mut plain = stream;
        if drive(&mut plain, &mut session, &mut shutdown).await? != Action::StartTls {
            return Ok(());
        }
        let mut tls = accept::handshake(&self.acceptor, plain).await?;
        session.tls_started(tls::session_info(tls.get_ref().1));
        drive(&mut tls, &mut session, &mut shutdown).await?;
        Ok(())
    }
}

/// Moves bytes until the session closes or asks for STARTTLS.
async fn drive<S, B>(
    stream: &mut S,
    session: &mut Session<B>,
    shutdown: &mut watch::Receiver<bool>,
) -> std::io::Result<Action>
where
    S: AsyncRead + AsyncWrite + Unpin,
    B: super::session::Backend,
{
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let out = session.take_output();
        if !out.is_empty() {
            stream.write_all(&out).await?;
            stream.flush().await?;
        }
        let read = tokio::select! {
            r = tokio::time::timeout(session.timeout(), stream.read(&mut buf)) => r,
            _ = wait_shutdown(shutdown), if session.is_idle() => {
                session.shutdown("Service shutting down");
                stream.write_all(&session.take_output()).await?;
                let _ = stream.shutdown().await;
                return Ok(Action::Close);
            }
        };
        let n = match read {
            Ok(Ok(0)) => return Ok(Action::Close),
            Ok(Ok(n)) => n,
            Ok(Err(e)) => return Err(e),
            Err(_) => {
                session.shutdown("Timeout, closing connection");
                stream.write_all(&session.take_output()).await?;
                return Ok(Action::Close);
            }
        };
        match session.feed(&buf[..n]).await {
            Action::Continue => {}
            Action::StartTls => {
                stream.write_all(&session.take_output()).await?;
                stream.flush().await?;
                return Ok(Action::StartTls);
            }
            Action::Close => {
                stream.write_all(&session.take_output()).await?;
                let _ = stream.shutdown().await;
                return Ok(Action::Close);
            }
        }
    }
}

async fn wait_shutdown(rx: &mut watch::Receiver<bool>) {
    while !*rx.borrow() {
        if rx.changed().await.is_err() {
            // The server is gone: behave as if shutting down.
            return;
        }
    }
}
