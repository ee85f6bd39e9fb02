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
use axum::response::{IntoResponse, Response};
use axum_extra::extract::cookie::{Cookie, CookieJar, SameSite};
use axum_extra::headers::authorization::Bearer;
use axum_extra::headers::{Authorization, HeaderMapExt};
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
    // A page may widen `form-action` (the consent page, to the service).
    if !h.contains_key(header::CONTENT_SECURITY_POLICY) {
        set(h, "content-security-policy", CSP);
    }
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
    let jar = CookieJar::from_headers(req.headers());
    let existing = jar.get(CSRF_COOKIE).map(Cookie::value).filter(|t| {
        t.len() == 43
            && t.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    });
    let csrf = match existing {
        Some(token) => Csrf {
            token: token.to_owned(),
            from_cookie: true,
        },
        None => Csrf {
            token: random_token(),
            from_cookie: false,
        },
    };
    let set = (!csrf.from_cookie).then(|| protected_cookie(CSRF_COOKIE, csrf.token.clone()));
    req.extensions_mut().insert(csrf);
    let res = next.run(req).await;
    match set {
        Some(cookie) => (CookieJar::new().add(cookie), res).into_response(),
        None => res,
    }
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

/// The token of an `Authorization: Bearer` header. The scheme is matched in
/// any case (RFC 9110 §11.1), as the headers crate decodes it.
pub fn bearer_token(headers: &HeaderMap) -> Option<String> {
    headers
        .typed_get::<Authorization<Bearer>>()
        .map(|a| a.token().to_owned())
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

/// A session-long cookie with every protection: `__Host-` needs Secure and
/// `Path=/`; HttpOnly and SameSite=Strict keep it from scripts and other sites.
/// Also what a jar's `remove` takes, so the removal carries the same flags.
pub fn protected_cookie(name: &'static str, value: String) -> Cookie<'static> {
    Cookie::build((name, value))
        .path("/")
        .secure(true)
        .http_only(true)
        .same_site(SameSite::Strict)
        .build()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_are_found_among_others_and_set_with_every_flag() {
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; __Host-mes_csrf=tok; b=2"),
        );
        let jar = CookieJar::from_headers(&h);
        assert_eq!(jar.get(CSRF_COOKIE).map(Cookie::value), Some("tok"));
        assert!(jar.get(SESSION_COOKIE).is_none());
        let set = protected_cookie(SESSION_COOKIE, "v".into()).to_string();
        for part in [
            "__Host-mes_session=v",
            "Path=/",
            "Secure",
            "HttpOnly",
            "SameSite=Strict",
        ] {
            assert!(set.contains(part), "{part} missing: {set}");
        }
    }

    #[test]
    fn bearer_scheme_in_any_case() {
        let token = |value: &'static str| {
            let mut h = HeaderMap::new();
            h.insert(header::AUTHORIZATION, HeaderValue::from_static(value));
            bearer_token(&h)
        };
        for value in ["Bearer xyz", "bearer xyz", "BEARER xyz", "bEaReR  xyz"] {
            assert_eq!(token(value).as_deref(), Some("xyz"), "{value}");
        }
        for value in ["Basic eHl6", "Bearerxyz", "Bearer", "xyz"] {
            assert_eq!(token(value), None, "{value}");
        }
        assert_eq!(bearer_token(&HeaderMap::new()), None);
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
