//! The token endpoint (authorization code with PKCE, refresh with rotation
//! and reuse detection) and revocation (RFC 7009).

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::{Form, Json};
use serde::Deserialize;
use serde_json::json;

use super::client::{self, ClientFields};
use super::{OAuthError, Shared, issuer};
use crate::services::scope::Scopes;
use crate::services::{ACCESS_SECS, CODE_SECS, REFRESH_SECS, pkce};
use crate::store::services::{Binding, NewToken, Rotation};

/// The fields of a token request.
#[derive(Debug, Deserialize)]
pub(super) struct TokenForm {
    grant_type: String,
    code: Option<String>,
    redirect_uri: Option<String>,
    code_verifier: Option<String>,
    refresh_token: Option<String>,
    scope: Option<String>,
    #[serde(flatten)]
    client: ClientFields,
}

/// POST /oauth/token
pub(super) async fn token(
    State(s): State<Shared>,
    headers: HeaderMap,
    Form(f): Form<TokenForm>,
) -> Result<Response, OAuthError> {
    let iss = issuer(&s, &headers);
    let endpoint = format!("{iss}/oauth/token");
    let service = client::authenticate(&s.store, &headers, &f.client, &iss, &endpoint).await?;
    let invalid_grant = || OAuthError::bad("invalid_grant", "invalid or expired grant");
    let (binding, family) = match f.grant_type.as_str() {
        "authorization_code" => {
            let code = f.code.as_deref().ok_or_else(invalid_grant)?;
            let row = s
                .store
                .take_code(&pkce::hash(code))
                .await
                .map_err(OAuthError::unavailable)?
                .ok_or_else(invalid_grant)?;
            let verifier = f.code_verifier.as_deref().unwrap_or("");
            if row.service_id != service.id
                || row.expires_at <= s.store.now()
                || row.expires_at > s.store.now() + CODE_SECS
                || f.redirect_uri.as_deref() != Some(row.redirect_uri.as_str())
                || !pkce::verify(verifier, &row.challenge)
            {
                return Err(invalid_grant());
            }
            let binding = Binding {
                service_id: row.service_id,
                patient_id: row.patient_id,
                scopes: row.scopes,
            };
            (binding, pkce::random())
        }
        "refresh_token" => {
            let presented = f.refresh_token.as_deref().ok_or_else(invalid_grant)?;
            if let Some(asked) = f.scope.as_deref().filter(|s| !s.trim().is_empty())
                && let Some(held) = s
                    .store
                    .refresh_scopes(&pkce::hash(presented), &service.id)
                    .await
                    .map_err(OAuthError::unavailable)?
                && !Scopes::parse(asked).is_some_and(|a| a.within(&Scopes::stored(&held)))
            {
                return Err(OAuthError::bad(
                    "invalid_scope",
                    "scope beyond what the patient granted",
                ));
            }
            match s
                .store
                .rotate_refresh(&pkce::hash(presented), &service.id)
                .await
                .map_err(OAuthError::unavailable)?
            {
                Rotation::Taken(b, family) => (b, family),
                Rotation::Reused => {
                    tracing::warn!(
                        service = %service.id,
                        "refresh token reused: its family is revoked"
                    );
                    return Err(invalid_grant());
                }
                Rotation::Unknown => return Err(invalid_grant()),
            }
        }
        _ => {
            return Err(OAuthError::bad(
                "unsupported_grant_type",
                "authorization_code or refresh_token",
            ));
        }
    };
    // A closed (disabled) space gets no new token, by code or by refresh.
    if s.store
        .account_by_id(binding.patient_id)
        .await
        .map_err(OAuthError::unavailable)?
        .is_none_or(|p| p.disabled)
    {
        return Err(invalid_grant());
    }
    // Only what the patient approved, and what the service still asks for.
    let mut scopes = Scopes::stored(&binding.scopes).intersect(&Scopes::stored(&service.scopes));
    if let Some(asked) = f.scope.as_deref().filter(|s| !s.trim().is_empty()) {
        let asked = Scopes::parse(asked)
            .ok_or_else(|| OAuthError::bad("invalid_scope", "unknown scope"))?;
        if !asked.within(&scopes) {
            return Err(OAuthError::bad(
                "invalid_scope",
                "scope beyond what the patient granted",
            ));
        }
        scopes = asked;
    }
    if scopes.is_empty() {
        return Err(invalid_grant());
    }
    let binding = Binding {
        scopes: scopes.to_list(),
        ..binding
    };
    let now = s.store.now();
    let access = pkce::random();
    let refresh = pkce::random();
    for (value, kind, ttl) in [
        (&access, "access", ACCESS_SECS),
        (&refresh, "refresh", REFRESH_SECS),
    ] {
        s.store
            .add_token(&NewToken {
                hash: &pkce::hash(value),
                kind,
                family: &family,
                binding: &binding,
                expires_at: now + ttl,
            })
            .await
            .map_err(OAuthError::unavailable)?;
    }
    Ok(Json(json!({
        "access_token": access,
        "token_type": "Bearer",
        "expires_in": ACCESS_SECS,
        "refresh_token": refresh,
        "scope": binding.scopes,
    }))
    .into_response())
}

/// The fields of a revocation request.
#[derive(Debug, Deserialize)]
pub(super) struct RevokeForm {
    token: String,
    #[serde(flatten)]
    client: ClientFields,
}

/// POST /oauth/revoke: revokes the token's whole family (its access and
/// refresh tokens). Unknown tokens are answered 200 too (RFC 7009 §2.2).
pub(super) async fn revoke(
    State(s): State<Shared>,
    headers: HeaderMap,
    Form(f): Form<RevokeForm>,
) -> Result<Response, OAuthError> {
    let iss = issuer(&s, &headers);
    let endpoint = format!("{iss}/oauth/token");
    let service = client::authenticate(&s.store, &headers, &f.client, &iss, &endpoint).await?;
    s.store
        .revoke_token(&pkce::hash(&f.token), &service.id)
        .await
        .map_err(OAuthError::unavailable)?;
    Ok(Json(json!({})).into_response())
}
