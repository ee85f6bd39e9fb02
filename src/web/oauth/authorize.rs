//! The checks of an authorization request (GET shows the consent screen,
//! POST records the patient's answer; both in `pages/services.rs`). A client
//! or redirect URI that does not match exactly is never redirected to: the
//! patient sees an error page. Once the redirect URI is known good, other
//! errors go back to the service with `error` and the `state`.

use serde::Deserialize;

use crate::services::pkce;
use crate::services::scope::Scopes;
use crate::store::services::ServiceRow;
use crate::store::{Store, StoreError};

/// The parameters of an authorization request (query of the GET, hidden
/// fields of the consent form).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct AuthorizeParams {
    /// Must be `code`.
    #[serde(default)]
    pub response_type: String,
    /// The service.
    #[serde(default)]
    pub client_id: String,
    /// Must be one of the service's, exactly.
    #[serde(default)]
    pub redirect_uri: String,
    /// Asked scopes (the service's own list when absent).
    pub scope: Option<String>,
    /// Echoed back.
    pub state: Option<String>,
    /// PKCE challenge.
    #[serde(default)]
    pub code_challenge: String,
    /// Must be `S256`.
    #[serde(default)]
    pub code_challenge_method: String,
}

/// Why a request cannot go on.
#[derive(Debug)]
pub enum AuthorizeError {
    /// Unknown client or redirect URI: shown to the patient, no redirect.
    NoRedirect,
    /// The service is suspended from the catalogue: shown, no redirect.
    Suspended,
    /// Back to the service with this OAuth error code.
    Redirect(&'static str),
    /// The store failed.
    Store(StoreError),
}

impl From<StoreError> for AuthorizeError {
    fn from(e: StoreError) -> Self {
        AuthorizeError::Store(e)
    }
}

/// A request that passed the checks.
#[derive(Debug, Clone)]
pub struct Checked {
    /// The service.
    pub service: ServiceRow,
    /// The scopes asked (within the service's).
    pub scopes: Scopes,
}

/// Checks a request against the catalogue.
pub async fn check(store: &Store, p: &AuthorizeParams) -> Result<Checked, AuthorizeError> {
    let service = store
        .service(&p.client_id)
        .await?
        .ok_or(AuthorizeError::NoRedirect)?;
    if !service
        .redirect_uris
        .split_ascii_whitespace()
        .any(|u| u == p.redirect_uri)
    {
        return Err(AuthorizeError::NoRedirect);
    }
    if service.status != "referenced" {
        return Err(AuthorizeError::Suspended);
    }
    if p.response_type != "code" {
        return Err(AuthorizeError::Redirect("unsupported_response_type"));
    }
    if p.code_challenge_method != "S256" || !pkce::is_challenge(&p.code_challenge) {
        return Err(AuthorizeError::Redirect("invalid_request"));
    }
    let offered = Scopes::stored(&service.scopes);
    let scopes = match p.scope.as_deref().filter(|s| !s.trim().is_empty()) {
        None => offered.clone(),
        Some(list) => Scopes::parse(list).ok_or(AuthorizeError::Redirect("invalid_scope"))?,
    };
    if scopes.is_empty() || !scopes.within(&offered) {
        return Err(AuthorizeError::Redirect("invalid_scope"));
    }
    Ok(Checked { service, scopes })
}

/// The redirect URI with `params` added to its query.
pub fn redirect_to(uri: &str, params: &[(&str, &str)]) -> String {
    let mut out = uri.to_string();
    let mut sep = if uri.contains('?') { '&' } else { '?' };
    for (k, v) in params {
        out.push(sep);
        out.push_str(k);
        out.push('=');
        out.push_str(&percent(v));
        sep = '&';
    }
    out
}

/// Form-style percent-encoding of a query value.
fn percent(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for b in v.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The error redirect for `code`, with the state.
pub fn error_redirect(p: &AuthorizeParams, code: &str, iss: &str) -> String {
    let mut params = vec![("error", code), ("iss", iss)];
    if let Some(s) = &p.state {
        params.push(("state", s));
    }
    redirect_to(&p.redirect_uri, &params)
}

/// The origin (`https://host[:port]`) of an https URI, for the consent
/// page's `form-action`.
pub fn origin(uri: &str) -> Option<&str> {
    let rest = uri.strip_prefix("https://")?;
    let end = rest.find(['/', '?']).unwrap_or(rest.len());
    Some(&uri[..8 + end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redirects_are_built() {
        assert_eq!(
            redirect_to("https://a.example/cb", &[("code", "x y"), ("state", "s&t")]),
            "https://a.example/cb?code=x%20y&state=s%26t"
        );
        assert_eq!(
            redirect_to("https://a.example/cb?k=1", &[("code", "c")]),
            "https://a.example/cb?k=1&code=c"
        );
        assert_eq!(
            origin("https://a.example:8443/cb?x"),
            Some("https://a.example:8443")
        );
    }
}
