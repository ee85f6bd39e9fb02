//! Mail addresses: parsing and normalisation (lower case, IDN domains to ASCII).

use std::fmt;

/// Why a string is not a usable mail address.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AddressError {
    /// No `@`, or an empty side.
    #[error("`{0}` is not of the form local@domain")]
    Shape(String),
    /// The domain is not a valid (internationalised) domain name.
    #[error("`{0}` is not a valid domain name")]
    Domain(String),
    /// The local part has characters we do not host.
    #[error("`{0}` has characters not allowed in a local part")]
    Local(String),
}

/// A normalised address: lower-case local part, ASCII (punycode) lower-case domain.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Address {
    local: String,
    domain: String,
}

impl Address {
    /// Parses and normalises `s` (surrounding `<>` and spaces are ignored).
    pub fn parse(s: &str) -> Result<Address, AddressError> {
        let s = s.trim().trim_start_matches('<').trim_end_matches('>');
        let (local, domain) = s
            .rsplit_once('@')
            .ok_or_else(|| AddressError::Shape(s.to_string()))?;
        if local.is_empty() || domain.is_empty() || local.len() > 64 {
            return Err(AddressError::Shape(s.to_string()));
        }
        if local.chars().any(|c| {
            c.is_whitespace() || c.is_control() || matches!(c, '<' | '>' | '@' | ',' | '"')
        }) {
            return Err(AddressError::Local(s.to_string()));
        }
        Ok(Address {
            local: local.to_lowercase(),
            domain: normalize_domain(domain)?,
        })
    }

    /// The local part.
    pub fn local(&self) -> &str {
        &self.local
    }

    /// The ASCII domain.
    pub fn domain(&self) -> &str {
        &self.domain
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{}", self.local, self.domain)
    }
}

/// Lower-cases a domain, converts an IDN to ASCII and checks its shape.
pub fn normalize_domain(domain: &str) -> Result<String, AddressError> {
    let d = domain.trim().trim_end_matches('.');
    let ascii = idna::domain_to_ascii(d).map_err(|_| AddressError::Domain(domain.to_string()))?;
    let ok = !ascii.is_empty()
        && ascii.len() <= 253
        && ascii.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        });
    if ok {
        Ok(ascii)
    } else {
        Err(AddressError::Domain(domain.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises_case_and_idn() {
        let a = Address::parse("<Jean.Dupont@Hôpital-A.MES.test>").unwrap();
        assert_eq!(a.local(), "jean.dupont");
        assert_eq!(a.domain(), "xn--hpital-a-43a.mes.test");
        assert_eq!(a.to_string(), "jean.dupont@xn--hpital-a-43a.mes.test");
    }

    #[test]
    fn rejects_bad_shapes() {
        assert!(Address::parse("nobody").is_err());
        assert!(Address::parse("@x.test").is_err());
        assert!(Address::parse("a@").is_err());
        assert!(Address::parse("a b@x.test").is_err());
        assert!(Address::parse("a@x..test").is_err());
        assert!(Address::parse("a@-x.test").is_err());
    }
}
