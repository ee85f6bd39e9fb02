//! Who calls the token and revocation endpoints: a public client names
//! itself (`client_id`, PKCE protects its codes); a confidential one proves
//! it with its secret (`client_secret_basic` or `client_secret_post`,
//! checked against the Argon2 hash) or with a signed assertion
//! (`private_key_jwt`, RFC 7523: signature by a key of its JWKS, `iss` and
//! `sub` its id, `aud` our token endpoint or issuer, `exp` within five
//! minutes, `jti` never seen before). A suspended service is refused.

use axum::http::{HeaderMap, header};
use base64::Engine;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;

use super::OAuthError;
use crate::store::Store;
use crate::store::services::ServiceRow;

/// `client_assertion_type` of `private_key_jwt`.
const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
/// Longest lifetime accepted for an assertion (seconds).
const ASSERTION_MAX_SECS: i64 = 300;

/// The client fields of a token or revocation request.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ClientFields {
    /// `client_id` (public clients, `client_secret_post`).
    pub client_id: Option<String>,
    /// `client_secret_post`.
    pub client_secret: Option<String>,
    /// `private_key_jwt`.
    pub client_assertion_type: Option<String>,
    /// `private_key_jwt`.
    pub client_assertion: Option<String>,
}

#[derive(Debug, Deserialize)]
struct AssertionClaims {
    jti: String,
    exp: i64,
}

fn basic(headers: &HeaderMap) -> Option<(String, String)> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, rest) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let raw = base64::engine::general_purpose::STANDARD
        .decode(rest.trim())
        .ok()?;
    let text = String::from_utf8(raw).ok()?;
    let (id, secret) = text.split_once(':')?;
    Some((form_decode(id)?, form_decode(secret)?))
}

/// RFC 6749 §2.3.1: the id and secret are form-encoded before Basic.
fn form_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = s.get(i + 1..i + 3)?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).ok()
}

/// The authenticated client of a request at `endpoint` (the token
/// endpoint's URL, an accepted `aud`), with the server's `issuer`.
pub async fn authenticate(
    store: &Store,
    headers: &HeaderMap,
    f: &ClientFields,
    issuer: &str,
    endpoint: &str,
) -> Result<ServiceRow, OAuthError> {
    let basic = basic(headers);
    let id = match (&basic, &f.client_id) {
        (Some((b, _)), Some(c)) if b != c => return Err(OAuthError::client()),
        (Some((b, _)), _) => b.clone(),
        (None, Some(c)) => c.clone(),
        (None, None) => return Err(OAuthError::client()),
    };
    let service = store
        .service(&id)
        .await
        .map_err(OAuthError::unavailable)?
        .ok_or_else(OAuthError::client)?;
    if service.status != "referenced" {
        return Err(OAuthError::bad(
            "unauthorized_client",
            "the service is suspended from the catalogue",
        ));
    }
    let secret = basic.map(|(_, s)| s).or_else(|| f.client_secret.clone());
    let assertion = match (&f.client_assertion_type, &f.client_assertion) {
        (Some(t), Some(a)) if t == JWT_BEARER => Some(a.clone()),
        (None, None) => None,
        _ => return Err(OAuthError::client()),
    };
    let proven = match (&service.secret_hash, &service.jwks, secret, assertion) {
        (None, None, None, None) => service.client_type == "public",
        (Some(hash), None, Some(secret), None) => {
            crate::identity::password::verify_pooled(secret, hash.clone()).await
        }
        (None, Some(jwks), None, Some(jwt)) => {
            check_assertion(store, &service.id, jwks, &jwt, issuer, endpoint).await?
        }
        _ => false,
    };
    if !proven {
        return Err(OAuthError::client());
    }
    Ok(service)
}

async fn check_assertion(
    store: &Store,
    id: &str,
    jwks: &str,
    jwt: &str,
    issuer: &str,
    endpoint: &str,
) -> Result<bool, OAuthError> {
    let Ok(set) = serde_json::from_str::<JwkSet>(jwks) else {
        return Ok(false);
    };
    let Ok(header) = jsonwebtoken::decode_header(jwt) else {
        return Ok(false);
    };
    if matches!(
        header.alg,
        Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512
    ) {
        return Ok(false);
    }
    let jwk = match &header.kid {
        Some(kid) => set.find(kid),
        None if set.keys.len() == 1 => set.keys.first(),
        None => None,
    };
    let Some(key) = jwk.and_then(|k| DecodingKey::from_jwk(k).ok()) else {
        return Ok(false);
    };
    let mut v = Validation::new(header.alg);
    v.set_audience(&[endpoint, issuer]);
    v.set_issuer(&[id]);
    v.sub = Some(id.to_string());
    v.set_required_spec_claims(&["exp", "iss", "sub", "aud"]);
    // Expiry is checked below against the store's clock.
    v.validate_exp = false;
    let Ok(data) = jsonwebtoken::decode::<AssertionClaims>(jwt, &key, &v) else {
        return Ok(false);
    };
    let now = store.now();
    let exp = data.claims.exp;
    if exp <= now || exp > now + ASSERTION_MAX_SECS || data.claims.jti.is_empty() {
        return Ok(false);
    }
    let jti = format!("{id} {}", data.claims.jti);
    store
        .take_jti(&crate::services::pkce::hash(&jti), exp)
        .await
        .map_err(OAuthError::unavailable)
}
