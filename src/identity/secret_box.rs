//! Secrets the database keeps but must not show in clear (the professionals'
//! TOTP secrets): encrypted with ChaCha20-Poly1305 (ring) under a key kept
//! outside the database (`[secrets] key_file`), bound to the account they
//! belong to, so that a copied or swapped value does not open.
//!
//! A sealed value reads `v1:` then base64 of the 12-byte nonce and the
//! ciphertext with its tag.

use std::path::Path;

use base64::Engine;
use ring::aead::{Aad, CHACHA20_POLY1305, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::rand::{SecureRandom, SystemRandom};

use crate::keyfile::{self, KeyError};

const PREFIX: &str = "v1:";

/// Why a sealed value could not be opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SecretError {
    /// Not a sealed value (or a clear one from before encryption).
    #[error("not a sealed secret")]
    NotSealed,
    /// Altered, sealed for another account, or under another key.
    #[error("the secret does not open under this key")]
    Open,
    /// The system's random source failed.
    #[error("no randomness for a nonce")]
    Random,
}

/// The key that seals and opens secrets.
pub struct SecretBox {
    key: LessSafeKey,
    rng: SystemRandom,
}

impl std::fmt::Debug for SecretBox {
    /// Never shows the key.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretBox(..)")
    }
}

impl SecretBox {
    /// A box over a 32-byte key.
    pub fn new(key: [u8; 32]) -> SecretBox {
        // A 32-byte key is what ChaCha20-Poly1305 takes: this cannot fail.
        let unbound = UnboundKey::new(&CHACHA20_POLY1305, &key)
            .unwrap_or_else(|_| unreachable!("32-byte ChaCha20-Poly1305 key"));
        SecretBox {
            key: LessSafeKey::new(unbound),
            rng: SystemRandom::new(),
        }
    }

    /// The key of `path`, made (0600) when missing.
    pub fn load_or_create(path: &Path) -> Result<SecretBox, KeyError> {
        keyfile::load_or_create(path).map(SecretBox::new)
    }

    /// True when `value` is sealed (not a clear value from before encryption).
    pub fn is_sealed(value: &str) -> bool {
        value.starts_with(PREFIX)
    }

    /// Seals `secret` for `owner` (e.g. the account's address).
    pub fn seal(&self, owner: &str, secret: &str) -> Result<String, SecretError> {
        let mut nonce = [0u8; NONCE_LEN];
        self.rng.fill(&mut nonce).map_err(|_| SecretError::Random)?;
        let mut data = secret.as_bytes().to_vec();
        self.key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(owner.as_bytes()),
                &mut data,
            )
            .map_err(|_| SecretError::Open)?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&data);
        Ok(format!(
            "{PREFIX}{}",
            base64::engine::general_purpose::STANDARD.encode(out)
        ))
    }

    /// Opens a value [`SecretBox::seal`] made for `owner`.
    pub fn open(&self, owner: &str, sealed: &str) -> Result<String, SecretError> {
        let b64 = sealed.strip_prefix(PREFIX).ok_or(SecretError::NotSealed)?;
        let raw = base64::engine::general_purpose::STANDARD
            .decode(b64)
            .map_err(|_| SecretError::Open)?;
        if raw.len() < NONCE_LEN {
            return Err(SecretError::Open);
        }
        let (nonce, body) = raw.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| SecretError::Open)?;
        let mut body = body.to_vec();
        let clear = self
            .key
            .open_in_place(nonce, Aad::from(owner.as_bytes()), &mut body)
            .map_err(|_| SecretError::Open)?;
        String::from_utf8(clear.to_vec()).map_err(|_| SecretError::Open)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seals_for_one_owner_under_one_key() {
        let b = SecretBox::new([1; 32]);
        let sealed = b.seal("jean@a.test", "JBSWY3DPEHPK3PXP").unwrap();
        assert!(SecretBox::is_sealed(&sealed));
        assert!(!sealed.contains("JBSWY3DPEHPK3PXP"));
        assert_eq!(b.open("jean@a.test", &sealed).unwrap(), "JBSWY3DPEHPK3PXP");
        // Two seals of one secret differ (fresh nonce).
        assert_ne!(sealed, b.seal("jean@a.test", "JBSWY3DPEHPK3PXP").unwrap());
        assert_eq!(b.open("pierre@a.test", &sealed), Err(SecretError::Open));
        assert_eq!(
            SecretBox::new([2; 32]).open("jean@a.test", &sealed),
            Err(SecretError::Open)
        );
        assert_eq!(
            b.open("jean@a.test", "JBSWY3DPEHPK3PXP"),
            Err(SecretError::NotSealed)
        );
        let mut tampered = sealed.clone();
        tampered.pop();
        tampered.push('A');
        assert!(b.open("jean@a.test", &tampered).is_err());
        assert_eq!(format!("{b:?}"), "SecretBox(..)");
    }
}
