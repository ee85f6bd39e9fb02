//! HTTPS: the patient webmail (French pages, `pages/`) and the patient API
//! (JSON under `/api/v1/`) on axum, served over the same rustls configuration as
//! every listener. Both go through `patient.rs` for the patient's own data and
//! get the security headers of `security.rs`.

pub mod agenda;
pub mod api;
pub mod autoconfig;
pub mod dossier_view;
pub mod export;
pub mod fhir;
pub mod history;
mod idle;
pub mod oauth;
pub mod ops;
mod pages;
pub mod patient;
pub mod pro;
pub mod render;
pub mod security;
pub mod send;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::response::IntoResponse;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;

use crate::config::{HttpsSettings, PatientSettings};
use crate::identity::auth::Authenticator;
use crate::listen::accept;
use crate::listen::limits::ConnectionLimits;
use crate::store::Store;
use crate::web::send::Sender;

/// Why the web layer could not answer (the store, the renderer, a blocking
/// task): kept whole with its sources for the log, never shown to the user.
pub type Failure = Box<dyn std::error::Error + Send + Sync>;

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
    /// `lifecycle.archive_years`: how long a closed space is kept.
    pub archive_years: u32,
    /// The operator's name (mail-client autoconfiguration).
    pub operator: String,
    /// What mail clients are told to connect to (`autoconfig.rs`).
    pub clients: crate::config::ClientEndpoints,
    /// `clients.web_url`: the OAuth issuer (`oauth::issuer`).
    pub web_url: Option<String>,
}

/// The application: every route.
pub fn router(services: Arc<WebServices>) -> Router {
    api::routes()
        .merge(pro::routes())
        .merge(oauth::routes())
        .merge(fhir::routes())
        .merge(pages::routes())
        .merge(pages::feed_routes())
        .merge(autoconfig::routes())
        .layer(axum::middleware::from_fn(security::headers))
        .with_state(services)
}

/// What bounds the HTTPS listener before and after authentication: the same
/// connection limits as SMTP and IMAP (`listen::limits`), the TLS handshake
/// deadline (`listen::accept`), and hyper's header-read timer, which also
/// ends idle keep-alive connections; a whole request has its own deadline.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Connections in all and per client address.
    pub connections: Arc<ConnectionLimits>,
    /// To receive a request's headers, and the longest idle keep-alive.
    pub header_read: Duration,
    /// A whole request (body included) and its answer.
    pub request: Duration,
}

impl Limits {
    /// The limits of `[https]`.
    pub fn of(settings: &HttpsSettings) -> Limits {
        Limits {
            connections: ConnectionLimits::new(
                "https",
                settings.max_connections,
                settings.max_connections_per_ip,
            ),
            header_read: Duration::from_secs(settings.header_read_timeout_secs),
            request: Duration::from_secs(settings.request_timeout_secs),
        }
    }
}

/// Serves `app` over TLS on `listener` until `shutdown`, then lets requests
/// in flight finish and closes idle keep-alive connections.
pub async fn serve(
    listener: TcpListener,
    acceptor: TlsAcceptor,
    app: Router,
    limits: Limits,
    proxy: Option<Arc<crate::listen::proxy::Proxied>>,
    shutdown: watch::Receiver<bool>,
) {
    let span =
        |peer: &SocketAddr, session: u64| tracing::info_span!("https", session, peer = %peer);
    let request = limits.request;
    let app = app.layer(axum::middleware::from_fn(
        move |req: axum::extract::Request, next: axum::middleware::Next| async move {
            match tokio::time::timeout(request, next.run(req)).await {
                Ok(response) => response,
                Err(_) => {
                    tracing::info!("HTTP request timed out");
                    axum::http::StatusCode::REQUEST_TIMEOUT.into_response()
                }
            }
        },
    ));
    accept::accept_loop(
        listener,
        shutdown,
        span,
        proxy,
        move |tcp, peer, mut shutdown| {
            let acceptor = acceptor.clone();
            let app = app.clone();
            let limits = limits.clone();
            async move {
                // Over the limits the connection is closed before any TLS work.
                let Some(_slot) = limits.connections.acquire(peer.ip()) else {
                    tracing::debug!("HTTPS connection refused: too many connections");
                    return;
                };
                let Ok(tls) = accept::handshake(&acceptor, tcp).await else {
                    return;
                };
                let subject = crate::tls::session_info(tls.get_ref().1).peer_subject;
                let app = app
                    .layer(axum::Extension(ClientAddr(peer)))
                    .layer(axum::Extension(ClientCert(subject)));
                let service = TowerToHyperService::new(app);
                let mut builder = auto::Builder::new(TokioExecutor::new());
                builder
                    .http1()
                    .timer(TokioTimer::new())
                    .header_read_timeout(limits.header_read);
                let activity = idle::Activity::new();
                let io = TokioIo::new(idle::Watched::new(tls, activity.clone()));
                let connection = builder.serve_connection(io, service);
                tokio::pin!(connection);
                let mut tick =
                    tokio::time::interval((limits.header_read / 4).max(Duration::from_millis(250)));
                let ended = loop {
                    tokio::select! {
                        ended = connection.as_mut() => break ended,
                        _ = shutdown.changed() => {
                            connection.as_mut().graceful_shutdown();
                            break connection.await;
                        }
                        _ = tick.tick() => {
                            // Silent since the handshake or since the last answer:
                            // closed (a request in progress still finishes).
                            if activity.idle_for() >= limits.header_read {
                                connection.as_mut().graceful_shutdown();
                                break connection.await;
                            }
                        }
                    }
                };
                if let Err(e) = ended {
                    tracing::debug!(error = %e, "HTTP connection ended");
                }
            }
        },
    )
    .await;
}

/// The subject DN of the client certificate verified on this connection, if any.
#[derive(Debug, Clone)]
pub struct ClientCert(pub Option<String>);

/// The client's address, for throttling.
#[derive(Debug, Clone, Copy)]
pub struct ClientAddr(pub SocketAddr);
