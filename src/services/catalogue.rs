//! What a catalogue entry must be: an id usable as `client_id`, French
//! texts, HTTPS redirect URIs matched exactly later, known scopes, a small
//! PNG or JPEG logo, and the client's way of authenticating.

use super::scope::Scopes;
use crate::store::services::{NewService, ServiceRow};

/// Largest logo accepted (octets).
pub const LOGO_MAX: usize = 256 * 1024;

/// Why an entry cannot be referenced (shown to the operator).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EntryError {
    /// The id is not 3 to 64 of `a-z 0-9 - .`.
    #[error("the id must be 3 to 64 characters among a-z, 0-9, '-' and '.'")]
    Id,
    /// A required text is empty or too long.
    #[error("{0} must be 1 to 2000 characters")]
    Text(&'static str),
    /// A URL that is not https (or a fragment in a redirect URI).
    #[error("{0} is not an https URL without fragment")]
    Url(String),
    /// No redirect URI.
    #[error("at least one redirect URI is required")]
    NoRedirect,
    /// An unknown scope, or none.
    #[error("scopes must be a non-empty list among: {0}")]
    Scopes(String),
    /// Not a PNG or JPEG, or too large.
    #[error("the logo must be a PNG or JPEG file of at most 256 KiB")]
    Logo,
    /// A JWKS that is not a JSON object with keys.
    #[error("the JWKS must be a JSON object with a non-empty \"keys\" array")]
    Jwks,
}

/// How the client authenticates at the token endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientAuth {
    /// A public client (PKCE only).
    Public,
    /// A confidential client with a secret (the Argon2 hash is stored).
    SecretHash(String),
    /// A confidential client signing assertions with the keys of this JWKS.
    Jwks(String),
}

/// An entry as the operator gives it.
#[derive(Debug, Clone)]
pub struct Entry {
    /// `client_id`.
    pub id: String,
    /// Name.
    pub name: String,
    /// Publisher.
    pub publisher: String,
    /// Category.
    pub category: String,
    /// Description in French.
    pub description: String,
    /// Home page.
    pub home_url: String,
    /// Redirect URIs.
    pub redirect_uris: Vec<String>,
    /// Requested scopes (space separated).
    pub scopes: String,
    /// Logo bytes.
    pub logo: Option<Vec<u8>>,
    /// Client authentication.
    pub auth: ClientAuth,
}

/// The MIME type of a PNG or JPEG image, by content.
pub fn image_type(data: &[u8]) -> Option<&'static str> {
    if data.starts_with(b"\x89PNG\r\n\x1a\n") {
        Some("image/png")
    } else if data.starts_with(&[0xFF, 0xD8, 0xFF]) {
        Some("image/jpeg")
    } else {
        None
    }
}

fn https(url: &str) -> Result<(), EntryError> {
    let rest = url
        .strip_prefix("https://")
        .filter(|r| !r.is_empty() && !r.starts_with('/'))
        .ok_or_else(|| EntryError::Url(url.to_string()))?;
    if rest.contains('#') || rest.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(EntryError::Url(url.to_string()));
    }
    Ok(())
}

fn text(what: &'static str, value: &str) -> Result<String, EntryError> {
    let v = value.trim();
    if v.is_empty() || v.chars().count() > 2000 {
        return Err(EntryError::Text(what));
    }
    Ok(v.to_string())
}

/// Checks an entry and makes its row.
pub fn check(e: Entry) -> Result<NewService, EntryError> {
    if !(3..=64).contains(&e.id.len())
        || !e
            .id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
    {
        return Err(EntryError::Id);
    }
    https(&e.home_url)?;
    if e.redirect_uris.is_empty() {
        return Err(EntryError::NoRedirect);
    }
    for u in &e.redirect_uris {
        https(u)?;
    }
    let all = || {
        super::scope::Scope::ALL
            .iter()
            .map(|s| s.name())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let scopes = Scopes::parse(&e.scopes)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| EntryError::Scopes(all()))?;
    let logo_type = match &e.logo {
        Some(l) if l.len() > LOGO_MAX => return Err(EntryError::Logo),
        Some(l) => Some(image_type(l).ok_or(EntryError::Logo)?.to_string()),
        None => None,
    };
    let (client_type, secret_hash, jwks) = match e.auth {
        ClientAuth::Public => ("public", None, None),
        ClientAuth::SecretHash(h) => ("confidential", Some(h), None),
        ClientAuth::Jwks(j) => {
            let v: serde_json::Value = serde_json::from_str(&j).map_err(|_| EntryError::Jwks)?;
            if v["keys"].as_array().is_none_or(|k| k.is_empty()) {
                return Err(EntryError::Jwks);
            }
            ("confidential", None, Some(j))
        }
    };
    Ok(NewService {
        row: ServiceRow {
            id: e.id,
            name: text("the name", &e.name)?,
            publisher: text("the publisher", &e.publisher)?,
            category: text("the category", &e.category)?,
            description: text("the description", &e.description)?,
            logo_type,
            home_url: e.home_url,
            redirect_uris: e.redirect_uris.join(" "),
            scopes: scopes.to_list(),
            status: "referenced".into(),
            referenced_at: 0,
            client_type: client_type.into(),
            secret_hash,
            jwks,
        },
        logo: e.logo,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry() -> Entry {
        Entry {
            id: "suivi-tension".into(),
            name: "Suivi Tension".into(),
            publisher: "Éditeur".into(),
            category: "Suivi".into(),
            description: "Suivez votre tension.".into(),
            home_url: "https://tension.example".into(),
            redirect_uris: vec!["https://tension.example/cb".into()],
            scopes: "documents.read".into(),
            logo: Some(b"\x89PNG\r\n\x1a\nrest".to_vec()),
            auth: ClientAuth::Public,
        }
    }

    #[test]
    fn entries_are_checked() {
        assert!(check(entry()).is_ok());
        let mut e = entry();
        e.redirect_uris = vec!["http://tension.example/cb".into()];
        assert!(matches!(check(e), Err(EntryError::Url(_))));
        let mut e = entry();
        e.scopes = "documents.read admin".into();
        assert!(matches!(check(e), Err(EntryError::Scopes(_))));
        let mut e = entry();
        e.logo = Some(b"<svg/>".to_vec());
        assert_eq!(check(e).unwrap_err(), EntryError::Logo);
        let mut e = entry();
        e.id = "A b".into();
        assert_eq!(check(e).unwrap_err(), EntryError::Id);
    }
}
