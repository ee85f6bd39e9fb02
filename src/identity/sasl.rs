//! Decoding of SASL PLAIN (RFC 4616) and LOGIN responses, shared by SMTP and IMAP.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

/// Why a SASL response could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SaslError {
    /// Not valid base64.
    #[error("invalid base64")]
    Base64,
    /// Not `authzid NUL authcid NUL password` in UTF-8.
    #[error("malformed PLAIN response")]
    Malformed,
    /// The client asked to act as another identity.
    #[error("authorization identity differs from authentication identity")]
    Authzid,
}

/// Credentials carried by PLAIN or LOGIN.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// The login (an address).
    pub username: String,
    /// The password: never logged.
    pub password: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .finish()
    }
}

/// Decodes one base64 line (LOGIN steps, PLAIN initial response).
pub fn decode_b64(line: &[u8]) -> Result<Vec<u8>, SaslError> {
    let trimmed = line.trim_ascii();
    if trimmed == b"=" {
        return Ok(Vec::new());
    }
    STANDARD.decode(trimmed).map_err(|_| SaslError::Base64)
}

/// Parses a decoded PLAIN message; a non-empty authzid must equal the authcid.
pub fn parse_plain(decoded: &[u8]) -> Result<Credentials, SaslError> {
    let mut parts = decoded.split(|&b| b == 0);
    let (Some(authz), Some(user), Some(pass), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(SaslError::Malformed);
    };
    let authz = std::str::from_utf8(authz).map_err(|_| SaslError::Malformed)?;
    let user = std::str::from_utf8(user).map_err(|_| SaslError::Malformed)?;
    let pass = std::str::from_utf8(pass).map_err(|_| SaslError::Malformed)?;
    if user.is_empty() {
        return Err(SaslError::Malformed);
    }
    if !authz.is_empty() && !authz.eq_ignore_ascii_case(user) {
        return Err(SaslError::Authzid);
    }
    Ok(Credentials {
        username: user.to_string(),
        password: pass.to_string(),
    })
}

/// Encodes a server challenge (LOGIN's "Username:" / "Password:").
pub fn encode_b64(data: &[u8]) -> String {
    STANDARD.encode(data)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_round_trip() {
        let d = decode_b64(encode_b64(b"\0jean@a.test\0secret").as_bytes()).unwrap();
        let c = parse_plain(&d).unwrap();
        assert_eq!(c.username, "jean@a.test");
        assert_eq!(c.password, "secret");
        assert!(!format!("{c:?}").contains("secret"));
    }

    #[test]
    fn plain_rejects_other_authzid_and_garbage() {
        assert_eq!(
            parse_plain(b"boss@a.test\0jean@a.test\0pw"),
            Err(SaslError::Authzid)
        );
        assert_eq!(parse_plain(b"only one part"), Err(SaslError::Malformed));
        assert_eq!(decode_b64(b"!!!"), Err(SaslError::Base64));
    }
}
