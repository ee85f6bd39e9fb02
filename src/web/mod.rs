//! HTTPS: the patient webmail (French pages, `pages/`) and the patient API
//! (JSON under `/api/v1/`) on axum, served over the same rustls configuration as
//! every listener. Both go through `patient.rs` for the patient's own data and
//! get the security headers of `security.rs`.

pub mod api;
pub mod dossier_view;
pub mod history;
mod pages;
pub mod patient;
pub mod pro;
pub mod render;
pub mod security;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;

use crate::config::PatientSettings;
use crate::identity::auth::Authenticator;
use crate::server::accept;
use crate::store::Store;
use crate::threads::send::Sender;

/// Largest body of a form or JSON request (logins, settings…).
const FORM_LIMIT: usize = 64 * 1024;
/// Largest body of a request that carries files (replies, documents, deposits).
const UPLOAD_LIMIT: usize = 64 * 1024 * 1024;

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
    /// The access rules, for every read of a record by someone else.
    pub gate: crate::access::check::Gate,
}

/// The application: every route.
pub fn router(services: Arc<WebServices>) -> Router {
    api::routes()
        .merge(pro::routes())
        .merge(pages::routes())
        .layer(axum::middleware::from_fn(security::headers))
        .with_state(services)
}

/// Serves `app` over TLS on `listener` until `shutdown`.
pub async fn serve(
    listener: TcpListener,
    acceptor: TlsAcceptor,
    app: Router,
    shutdown: watch::Receiver<bool>,
) {
    let span = |peer: &SocketAddr| tracing::info_span!("https", peer = %peer);
    accept::accept_loop(listener, shutdown, span, move |tcp, peer, _| {
        let acceptor = acceptor.clone();
        let app = app.clone();
        async move {
            let Ok(tls) = accept::handshake(&acceptor, tcp).await else {
                return;
            };
            let subject = crate::tls::session_info(tls.get_ref().1).peer_subject;
            let app = app
                .layer(axum::Extension(ClientAddr(peer)))
                .layer(axum::Extension(ClientCert(subject)));
            let service = TowerToHyperService::new(app);
            if let Err(e) = auto::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(tls), service)
                .await
            {
                tracing::debug!(error = %e, "HTTP connection ended");
            }
        }
    })
    .await;
}

/// The subject DN of the client certificate verified on this connection, if any.
#[derive(Debug, Clone)]
pub struct ClientCert(pub Option<String>);

/// The client's address, for throttling.
#[derive(Debug, Clone, Copy)]
pub struct ClientAddr(pub SocketAddr);
