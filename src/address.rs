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

/// `text` with the local part of every address in it replaced by `***`
/// (`<279035121518989@patient.b.test> unknown` becomes `<***@patient.b.test>
/// unknown`), for logging text that comes from elsewhere, such as a remote
/// server's reply: a patient's local part is their INS.
pub fn redact_local_parts(text: &str) -> String {
    let delimiter = |c: char| c.is_whitespace() || "<>()[]{}\",;:'`=".contains(c);
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find('@') {
        let before = &rest[..at];
        let start = before
            .char_indices()
            .rev()
            .find(|(_, c)| delimiter(*c))
            .map_or(0, |(i, c)| i + c.len_utf8());
        out.push_str(&before[..start]);
        if start < at {
            out.push_str("***");
        }
        out.push('@');
        rest = &rest[at + 1..];
    }
    out.push_str(rest);
    out
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
    fn local_parts_are_redacted_from_foreign_text() {
        assert_eq!(
            redact_local_parts("550 5.1.1 <279035121518989@patient.b.test>: unknown, a.b@c x@"),
            "550 5.1.1 <***@patient.b.test>: unknown, ***@c ***@"
        );
        assert_eq!(redact_local_parts("no address"), "no address");
        assert_eq!(redact_local_parts("@lead"), "@lead");
    }

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
