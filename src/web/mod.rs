//! HTTPS: the patient API (JSON under `/api/v1/`) on axum, served over the same
//! rustls configuration as every listener. The webmail pages join here later.

pub mod api;
pub mod render;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;
use tracing::Instrument;

use crate::config::PatientSettings;
use crate::identity::auth::Authenticator;
use crate::store::Store;
use crate::threads::send::Sender;

/// What every HTTP request shares.
#[derive(Debug)]
pub struct WebServices {
    /// The store.
    pub store: Store,
    /// Logins (patients).
    pub auth: Authenticator,
    /// The patient sending path.
    pub sender: Sender,
    /// Patient space settings.
    pub settings: PatientSettings,
}

/// The application: every route.
pub fn router(services: Arc<WebServices>) -> Router {
    api::routes().with_state(services)
}

/// Serves `app` over TLS on `listener` until `shutdown`.
pub async fn serve(
    listener: TcpListener,
    acceptor: TlsAcceptor,
    app: Router,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((tcp, peer)) = accepted else {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                };
                let acceptor = acceptor.clone();
                let app = app.clone();
                let span = tracing::info_span!("https", peer = %peer);
                tokio::spawn(async move { connection(tcp, peer, acceptor, app).await }.instrument(span));
            }
            _ = shutdown.changed() => break,
        }
    }
}

async fn connection(
    tcp: tokio::net::TcpStream,
    peer: SocketAddr,
    acceptor: TlsAcceptor,
    app: Router,
) {
    let _ = tcp.set_nodelay(true);
    let tls = match tokio::time::timeout(Duration::from_secs(30), acceptor.accept(tcp)).await {
        Ok(Ok(tls)) => tls,
        Ok(Err(e)) => {
            tracing::debug!(reason = %e, "TLS handshake refused");
            return;
        }
        Err(_) => return,
    };
    let app = app.layer(axum::Extension(ClientAddr(peer)));
    let service = TowerToHyperService::new(app);
    if let Err(e) = auto::Builder::new(TokioExecutor::new())
        .serve_connection(TokioIo::new(tls), service)
        .await
    {
        tracing::debug!(error = %e, "HTTP connection ended");
    }
}

/// The client's address, for throttling.
#[derive(Debug, Clone, Copy)]
pub struct ClientAddr(pub SocketAddr);
