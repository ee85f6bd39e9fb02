//! What every listener does the same way: the accept loop (until shutdown, one
//! task per connection in its own tracing span) and the TLS handshake with a
//! deadline and its refusal reason logged.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;
use tracing::Instrument;

use super::proxy::Proxied;

/// Session numbers of this process, shared by every listener.
static SESSIONS: AtomicU64 = AtomicU64::new(1);

/// How long a TLS handshake may take.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(30);

/// Accepts connections until `shutdown` turns true; `handle` runs in its own
/// task per connection, in the span `span` makes from the client's address
/// and a session number (unique in this process, for the logs). Behind a
/// load balancer (`proxy`), the client's address is the one its PROXY
/// header names; a balancer's connection without a valid header is closed.
pub async fn accept_loop<F, Fut>(
    listener: TcpListener,
    mut shutdown: watch::Receiver<bool>,
    span: fn(&SocketAddr, u64) -> tracing::Span,
    proxy: Option<Arc<Proxied>>,
    handle: F,
) where
    F: Fn(TcpStream, SocketAddr, watch::Receiver<bool>) -> Fut + Clone + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, peer) = match accepted {
                    Ok(x) => x,
                    Err(e) => {
                        // Out of file descriptors and the like: back off a little.
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let _ = stream.set_nodelay(true);
                let session = SESSIONS.fetch_add(1, Ordering::Relaxed);
                let Some(proxy) = proxy.clone() else {
                    tokio::spawn(handle(stream, peer, shutdown.clone()).instrument(span(&peer, session)));
                    continue;
                };
                let (handle, shutdown) = (handle.clone(), shutdown.clone());
                tokio::spawn(async move {
                    let mut stream = stream;
                    match proxy.client(&mut stream, peer).await {
                        Ok(client) => {
                            let span = span(&client, session);
                            if client != peer {
                                span.in_scope(|| tracing::debug!(balancer = %peer, "PROXY header read"));
                            }
                            handle(stream, client, shutdown).instrument(span).await;
                        }
                        // A bare connect-and-close is a balancer's plain health check.
                        Err(super::proxy::ProxyError::Io(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => span(&peer, session)
                            .in_scope(|| tracing::debug!("load balancer connection closed before its PROXY header")),
                        Err(e) => span(&peer, session)
                            .in_scope(|| tracing::warn!(error = %e, "connection from the load balancer refused")),
                    }
                });
            }
            _ = shutdown.changed() => break,
        }
    }
}

/// The server side of a TLS handshake; the reason of a refusal (unknown CA,
/// expired certificate, no certificate, old protocol) is logged here.
pub async fn handshake(
    acceptor: &TlsAcceptor,
    stream: TcpStream,
) -> std::io::Result<TlsStream<TcpStream>> {
    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
        Ok(Ok(tls)) => Ok(tls),
        Ok(Err(e)) => {
            tracing::warn!(reason = %e, "TLS handshake refused");
            Err(e)
        }
        Err(_) => {
            tracing::warn!("TLS handshake timed out");
            Err(std::io::ErrorKind::TimedOut.into())
        }
    }
}
