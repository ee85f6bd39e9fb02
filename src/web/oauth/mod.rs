//! OAuth 2.1 for referenced services (issue 22): the authorization request
//! checks (`authorize.rs`; the consent screen itself is a webmail page,
//! `pages/services.rs`), the token endpoint with PKCE and refresh-token
//! rotation (`token.rs`), client authentication (`client.rs`: none for public
//! clients, `client_secret_basic`/`client_secret_post`, `private_key_jwt`),
//! revocation (RFC 7009) and metadata (RFC 8414). Tokens are random, stored
//! as SHA-256, bound to one patient, one service and the scopes granted.

pub mod authorize;
pub mod client;
pub mod token;

use std::sync::Arc;

use axum::Json;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::json;

use super::{FORM_LIMIT, WebServices};
use crate::services::scope::Scope;

type Shared = Arc<WebServices>;

/// The token, revocation and metadata routes (the authorization endpoint is
/// a webmail page, under its session and anti-forgery layers).
pub fn routes() -> axum::Router<Shared> {
    axum::Router::new()
        .route("/oauth/token", post(token::token))
        .route("/oauth/revoke", post(token::revoke))
        .route("/.well-known/oauth-authorization-server", get(metadata))
        .layer(DefaultBodyLimit::max(FORM_LIMIT))
}

/// An OAuth error answer (RFC 6749 §5.2), read by software.
#[derive(Debug)]
pub struct OAuthError {
    status: StatusCode,
    code: &'static str,
    description: &'static str,
}

impl OAuthError {
    /// A 400 with `code`.
    pub fn bad(code: &'static str, description: &'static str) -> OAuthError {
        OAuthError {
            status: StatusCode::BAD_REQUEST,
            code,
            description,
        }
    }

    /// The client did not authenticate (401).
    pub fn client() -> OAuthError {
        OAuthError {
            status: StatusCode::UNAUTHORIZED,
            code: "invalid_client",
            description: "client authentication failed",
        }
    }

    /// The store failed (logged, not shown).
    pub fn unavailable(e: impl std::fmt::Display) -> OAuthError {
        tracing::error!(error = %e, "OAuth endpoint failure");
        OAuthError {
            status: StatusCode::SERVICE_UNAVAILABLE,
            code: "temporarily_unavailable",
            description: "try again later",
        }
    }
}

impl IntoResponse for OAuthError {
    fn into_response(self) -> Response {
        let mut res = (
            self.status,
            Json(json!({ "error": self.code, "error_description": self.description })),
        )
            .into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            res.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static("Basic realm=\"oauth\""),
            );
        }
        res
    }
}

/// The issuer: the configured public URL (`clients.web_url`), else (in
/// development only: production requires it) `https://` and the Host the
/// client used.
pub fn issuer(s: &WebServices, headers: &HeaderMap) -> String {
    if let Some(url) = &s.web_url {
        return url.clone();
    }
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .filter(|h| {
            h.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'[' | b']'))
        })
        .unwrap_or("localhost");
    format!("https://{host}")
}

/// GET /.well-known/oauth-authorization-server (RFC 8414).
async fn metadata(State(s): State<Shared>, headers: HeaderMap) -> Response {
    let iss = issuer(&s, &headers);
    Json(json!({
        "issuer": iss,
        "authorization_endpoint": format!("{iss}/oauth/authorize"),
        "token_endpoint": format!("{iss}/oauth/token"),
        "revocation_endpoint": format!("{iss}/oauth/revoke"),
        "response_types_supported": ["code"],
        "grant_types_supported": ["authorization_code", "refresh_token"],
        "code_challenge_methods_supported": ["S256"],
        "token_endpoint_auth_methods_supported":
            ["none", "client_secret_basic", "client_secret_post", "private_key_jwt"],
        "token_endpoint_auth_signing_alg_values_supported": ["RS256", "ES256", "PS256", "EdDSA"],
        "revocation_endpoint_auth_methods_supported":
            ["none", "client_secret_basic", "client_secret_post", "private_key_jwt"],
        "scopes_supported": Scope::ALL.iter().map(|s| s.name()).collect::<Vec<_>>(),
        "authorization_response_iss_parameter_supported": true,
        "service_documentation": format!("{iss}/services"),
    }))
    .into_response()
}
