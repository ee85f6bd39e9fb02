//! Password hashing with Argon2id, and generated passwords.

use argon2::Argon2;
use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use rand::Rng;

use crate::cpu_pool::CpuPool;

/// Why a password could not be hashed.
#[derive(Debug, thiserror::Error)]
pub enum PasswordError {
    /// Shorter than the minimum.
    #[error("a password needs at least {0} characters")]
    TooShort(usize),
    /// The hasher failed.
    #[error("password hashing failed: {0}")]
    Hash(#[source] argon2::password_hash::Error),
    /// The hashing job did not complete (it panicked, or the runtime is stopping).
    #[error("password hashing did not complete")]
    Interrupted,
}

/// The shortest password an account may have.
pub const MIN_LENGTH: usize = 12;

/// Hashes `password` into a PHC string (Argon2id, default OWASP parameters).
pub fn hash(password: &str) -> Result<String, PasswordError> {
    if password.chars().count() < MIN_LENGTH {
        return Err(PasswordError::TooShort(MIN_LENGTH));
    }
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(PasswordError::Hash)
}

/// Checks `password` against a stored PHC hash; a malformed hash never matches.
pub fn verify(password: &str, phc: &str) -> bool {
    PasswordHash::new(phc)
        .map(|parsed| {
            Argon2::default()
                .verify_password(password.as_bytes(), &parsed)
                .is_ok()
        })
        .unwrap_or(false)
}

/// The process's pool for Argon2id work, one slot per core. Each hash or
/// verification takes 19 MiB and a core for tens of milliseconds: a burst of
/// logins (or of wrong passwords) queues here, at a lower priority, so that
/// it slows logins, not the sessions already logged in (`cpu_pool`).
fn pool() -> &'static CpuPool {
    static POOL: std::sync::LazyLock<CpuPool> = std::sync::LazyLock::new(|| {
        CpuPool::new(
            "argon2",
            std::thread::available_parallelism().map_or(2, usize::from),
        )
    });
    &POOL
}

/// [`verify`] on the bounded pool (logins, activation codes).
pub async fn verify_pooled(password: String, phc: String) -> bool {
    pool()
        .run(move || verify(&password, &phc))
        .await
        .unwrap_or(false)
}

/// [`hash`] on the bounded pool (password changes, activation codes).
pub async fn hash_pooled(password: String) -> Result<String, PasswordError> {
    pool()
        .run(move || hash(&password))
        .await
        .unwrap_or(Err(PasswordError::Interrupted))
}

/// A rule a patient's new password breaks; the text is shown to the patient.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PasswordRule {
    /// Fewer than [`MIN_LENGTH`] characters.
    #[error("Le mot de passe doit contenir au moins 12 caractères.")]
    TooShort,
    /// Longer than anyone types (and than Argon2 should hash per request).
    #[error("Le mot de passe doit contenir au plus 128 caractères.")]
    TooLong,
    /// Letters only, or digits and symbols only.
    #[error(
        "Le mot de passe doit contenir au moins une lettre et au moins un chiffre ou un caractère spécial."
    )]
    Classes,
    /// Contains the login (INS or address).
    #[error("Le mot de passe ne doit pas contenir votre identifiant.")]
    ContainsLogin,
}

/// The rules as shown next to a password field (kept beside [`check_rules`]).
pub const RULES_FR: [&str; 3] = [
    "au moins 12 caractères ;",
    "au moins une lettre et au moins un chiffre ou un caractère spécial ;",
    "sans votre identifiant (matricule INS).",
];

/// Checks a password a patient chooses, against the rules in [`RULES_FR`].
pub fn check_rules(password: &str, login: &str) -> Result<(), PasswordRule> {
    let count = password.chars().count();
    if count < MIN_LENGTH {
        return Err(PasswordRule::TooShort);
    }
    if count > 128 {
        return Err(PasswordRule::TooLong);
    }
    let letters = password.chars().any(char::is_alphabetic);
    let others = password.chars().any(|c| !c.is_alphabetic());
    if !(letters && others) {
        return Err(PasswordRule::Classes);
    }
    let local = login.split('@').next().unwrap_or(login);
    if local.len() >= 4 && password.to_lowercase().contains(&local.to_lowercase()) {
        return Err(PasswordRule::ContainsLogin);
    }
    Ok(())
}

/// A random password of 20 characters from an unambiguous alphabet, printed once to the operator.
pub fn generate() -> String {
    const ALPHABET: &[u8] = b"abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut rng = rand::rng();
    (0..20)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn patient_password_rules() {
        use super::{PasswordRule, check_rules};
        let ins = "279035121518989";
        assert_eq!(check_rules("court1", ins), Err(PasswordRule::TooShort));
        assert_eq!(
            check_rules("seulementdeslettres", ins),
            Err(PasswordRule::Classes)
        );
        assert_eq!(
            check_rules("123456789012345", ins),
            Err(PasswordRule::Classes)
        );
        assert_eq!(
            check_rules("moi279035121518989", &format!("{ins}@patient.mes.test")),
            Err(PasswordRule::ContainsLogin)
        );
        assert_eq!(
            check_rules(&"a1".repeat(65), ins),
            Err(PasswordRule::TooLong)
        );
        assert_eq!(check_rules("jardin des plantes 7", ins), Ok(()));
    }

    use super::*;

    #[test]
    fn hash_then_verify() {
        let h = hash("correct horse battery").unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(verify("correct horse battery", &h));
        assert!(!verify("wrong horse battery", &h));
        assert!(!verify("x", "not a hash"));
    }

    #[test]
    fn short_passwords_are_refused() {
        assert!(matches!(hash("short"), Err(PasswordError::TooShort(_))));
        assert_eq!(generate().len(), 20);
    }

    #[tokio::test]
    async fn pooled_verification_matches_the_direct_one() {
        let h = hash("correct horse battery").unwrap();
        assert!(verify_pooled("correct horse battery".into(), h.clone()).await);
        assert!(!verify_pooled("wrong horse battery".into(), h).await);
        assert!(matches!(
            hash_pooled("short".into()).await,
            Err(PasswordError::TooShort(_))
        ));
    }
}
