//! The metrics listener (`listen.metrics`, plain HTTP, loopback unless
//! `listen.metrics_public`): `/metrics` in the OpenMetrics text format,
//! `/healthz` (the process answers) and `/readyz` (the database answers,
//! its migrations are applied, every listener is bound). Nothing here reads
//! or shows a patient's data: the queue gauges count rows by domain.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::store::Store;

/// How long `/readyz` and a scrape wait for the database.
const DATABASE_WAIT: Duration = Duration::from_secs(3);

/// What the metrics listener reads.
#[derive(Debug, Clone)]
pub struct OpsState {
    /// The store, for readiness and the queue gauges.
    pub store: Store,
    /// Set once every configured listener is bound.
    pub listening: Arc<AtomicBool>,
}

/// The routes of the metrics listener.
pub fn router(state: OpsState) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .with_state(state)
}

/// Serves `router` on `listener` until `shutdown` turns true.
pub async fn serve(listener: TcpListener, state: OpsState, mut shutdown: watch::Receiver<bool>) {
    let app = router(state);
    let stopped = async move {
        let _ = shutdown.wait_for(|stop| *stop).await;
    };
    if let Err(e) = axum::serve(listener, app)
        .with_graceful_shutdown(stopped)
        .await
    {
        tracing::error!(error = %e, "metrics listener failed");
    }
}

async fn metrics(State(state): State<OpsState>) -> Response {
    match tokio::time::timeout(DATABASE_WAIT, state.store.queue_depth_by_domain()).await {
        Ok(Ok(rows)) => crate::metrics::set_queue(&rows),
        Ok(Err(e)) => tracing::warn!(error = %e, "queue gauges not read"),
        Err(_) => tracing::warn!("queue gauges not read: the database did not answer"),
    }
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        crate::metrics::render(),
    )
        .into_response()
}

async fn readyz(State(state): State<OpsState>) -> Response {
    if !state.listening.load(Ordering::Acquire) {
        return (StatusCode::SERVICE_UNAVAILABLE, "listeners not bound\n").into_response();
    }
    match tokio::time::timeout(DATABASE_WAIT, state.store.readiness()).await {
        Ok(Ok(())) => (StatusCode::OK, "ready\n").into_response(),
        Ok(Err(reason)) => (StatusCode::SERVICE_UNAVAILABLE, format!("{reason}\n")).into_response(),
        Err(_) => (StatusCode::SERVICE_UNAVAILABLE, "database unreachable\n").into_response(),
    }
}
