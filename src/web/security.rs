//! HTTP security for every response and the webmail's cookies: security headers
//! (strict CSP, no framing, no sniffing, HSTS, no caching of personal pages),
//! the session and anti-forgery (CSRF) cookies, and the CSRF check.
//!
//! CSRF: a random token lives in its own `__Host-` cookie (Secure, HttpOnly,
//! SameSite=Strict) and in a hidden field of every form; a POST is accepted only
//! when both are present and equal (double submit). With `__Host-` no other site
//! or subdomain can plant the cookie, and SameSite=Strict keeps it off cross-site
//! requests altogether.

use axum::extract::Request;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::middleware::Next;
use axum::response::Response;
use base64::Engine;
use subtle::ConstantTimeEq;

/// The session cookie (a random token; the store keeps its SHA-256).
pub const SESSION_COOKIE: &str = "__Host-mes_session";
/// The anti-forgery cookie.
pub const CSRF_COOKIE: &str = "__Host-mes_csrf";

/// Content-Security-Policy of every response: nothing but our own stylesheet,
/// our own images and forms posted to ourselves; no script at all.
pub const CSP: &str = "default-src 'none'; style-src 'self'; img-src 'self'; \
     form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// Adds the security headers to every response.
pub async fn headers(req: Request, next: Next) -> Response {
    let mut res = next.run(req).await;
    let h = res.headers_mut();
    let set = |h: &mut HeaderMap, name: &'static str, value: &'static str| {
        h.insert(name, HeaderValue::from_static(value));
    };
    set(h, "content-security-policy", CSP);
    set(h, "x-frame-options", "DENY");
    set(h, "x-content-type-options", "nosniff");
    set(h, "referrer-policy", "no-referrer");
    set(h, "strict-transport-security", "max-age=31536000");
    set(h, "cross-origin-opener-policy", "same-origin");
    set(h, "cross-origin-resource-policy", "same-origin");
    set(
        h,
        "permissions-policy",
        "camera=(), microphone=(), geolocation=()",
    );
    if !h.contains_key(header::CACHE_CONTROL) {
        set(h, "cache-control", "no-store");
    }
    res
}

/// The anti-forgery token of a request (from its cookie, or a new one).
#[derive(Debug, Clone)]
pub struct Csrf {
    /// The token to put in forms.
    pub token: String,
    /// Whether the request came with it (a POST without it cannot be valid).
    pub from_cookie: bool,
}

impl Csrf {
    /// True when `submitted` (the form field) matches the cookie.
    pub fn accepts(&self, submitted: Option<&str>) -> bool {
        let Some(submitted) = submitted else {
            return false;
        };
        self.from_cookie && bool::from(self.token.as_bytes().ct_eq(submitted.as_bytes()))
    }
}

/// Makes sure every visitor has a CSRF cookie; handlers read it as an extension.
pub async fn csrf_cookie(mut req: Request, next: Next) -> Response {
    let existing = cookie(req.headers(), CSRF_COOKIE).filter(|t| {
        t.len() == 43
            && t.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    });
    let csrf = match existing {
        Some(token) => Csrf {
            token: token.to_string(),
            from_cookie: true,
        },
        None => Csrf {
            token: random_token(),
            from_cookie: false,
        },
    };
    let set = (!csrf.from_cookie).then(|| set_cookie(CSRF_COOKIE, &csrf.token));
    req.extensions_mut().insert(csrf);
    let mut res = next.run(req).await;
    if let Some(v) = set {
        res.headers_mut().append(header::SET_COOKIE, v);
    }
    res
}

/// A new random token (32 bytes, URL-safe base64: 43 characters).
pub fn random_token() -> String {
    let mut raw = [0u8; 32];
    rand::Rng::fill(&mut rand::rng(), &mut raw);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw)
}

/// How session tokens are stored: SHA-256, hex (a leaked table opens no session).
pub fn token_hash(token: &str) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(token.trim().as_bytes()))
}

/// The token of an `Authorization: Bearer` header.
pub fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
}

/// The account of the live API session of `token` (idle less than
/// `idle_secs`, opened less than `max_secs` ago), with the token's hash;
/// None when no session is live. Callers check the account's kind.
pub async fn token_account(
    store: &crate::store::Store,
    token: &str,
    idle_secs: i64,
    max_secs: i64,
) -> Result<Option<(crate::store::accounts::Account, String)>, crate::store::StoreError> {
    let hash = token_hash(token);
    let Some(id) = store.session_account(&hash, idle_secs, max_secs).await? else {
        return Ok(None);
    };
    Ok(store.account_by_id(id).await?.map(|a| (a, hash)))
}

/// The value of cookie `name` in a request's headers.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// A `Set-Cookie` for a session-long cookie with every protection.
pub fn set_cookie(name: &str, value: &str) -> HeaderValue {
    HeaderValue::from_str(&format!(
        "{name}={value}; Path=/; Secure; HttpOnly; SameSite=Strict"
    ))
    .unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// A `Set-Cookie` that removes cookie `name`.
pub fn clear_cookie(name: &str) -> HeaderValue {
    HeaderValue::from_str(&format!(
        "{name}=; Path=/; Secure; HttpOnly; SameSite=Strict; Max-Age=0"
    ))
    .unwrap_or_else(|_| HeaderValue::from_static(""))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_are_found_among_others() {
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; __Host-mes_csrf=tok; b=2"),
        );
        assert_eq!(cookie(&h, CSRF_COOKIE), Some("tok"));
        assert_eq!(cookie(&h, SESSION_COOKIE), None);
    }

    #[test]
    fn csrf_needs_the_cookie_and_the_same_field() {
        let c = Csrf {
            token: "abc".into(),
            from_cookie: true,
        };
        assert!(c.accepts(Some("abc")));
        assert!(!c.accepts(Some("abd")));
        assert!(!c.accepts(None));
        let fresh = Csrf {
            token: "abc".into(),
            from_cookie: false,
        };
        assert!(!fresh.accepts(Some("abc")));
    }
}
