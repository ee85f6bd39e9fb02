//! Patient space activation: the operator hands the patient a one-time code
//! (`mes user add --kind patient`, `mes user activation`); the patient proves it
//! with their login and chooses a first password. Attempts are throttled like logins.

use std::net::IpAddr;

use rand::Rng;

use super::auth::{Authenticator, dummy_hash};
use super::password::{self, PasswordRule};
use super::throttle::Throttle;
use super::{AccountKind, ins::Ins};
use crate::store::accounts::Account;
use crate::store::{Store, StoreError};

/// Unambiguous characters (no 0/O, 1/I/L) for codes read aloud or copied from paper.
const ALPHABET: &[u8] = b"ABCDEFGHJKMNPQRSTUVWXYZ23456789";

/// A new code of 12 characters in three groups (`ABCD-EFGH-JKMN`, about 59 bits).
pub fn generate_code() -> String {
    let mut rng = rand::rng();
    let chars: Vec<char> = (0..12)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect();
    chars
        .chunks(4)
        .map(|c| c.iter().collect::<String>())
        .collect::<Vec<_>>()
        .join("-")
}

/// The code as typed, made canonical: upper case, without spaces or dashes.
pub fn normalize_code(typed: &str) -> String {
    typed
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .flat_map(char::to_uppercase)
        .collect()
}

/// Issues a new code for a patient account, valid `valid_days`; returns it (shown once).
pub async fn issue(
    store: &Store,
    account: &Account,
    valid_days: u32,
) -> Result<String, IssueError> {
    if account.kind != AccountKind::Patient {
        return Err(IssueError::NotPatient);
    }
    let code = generate_code();
    let hash = password::hash_pooled(format!("activation:{}", normalize_code(&code))).await?;
    store
        .set_activation_code(
            account.id,
            &hash,
            store.now() + i64::from(valid_days) * 86_400,
        )
        .await?;
    Ok(code)
}

/// Why a code could not be issued.
#[derive(Debug, thiserror::Error)]
pub enum IssueError {
    /// Only patient spaces are activated with a code.
    #[error("activation codes are for patient accounts only")]
    NotPatient,
    /// Hashing failed.
    #[error("{0}")]
    Hash(#[from] super::password::PasswordError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Outcome of an activation attempt.
#[derive(Debug)]
pub enum Activation {
    /// Password set; the code is consumed.
    Done(Box<Account>),
    /// Unknown login, wrong, expired or used code (one answer for all).
    Invalid,
    /// The chosen password breaks a rule (checked before the code is tried).
    Weak(PasswordRule),
    /// Too many failures from this address or for this account.
    Throttled,
    /// The store failed.
    Unavailable,
}

impl Authenticator {
    /// Activates a patient space: `login` is an INS matricule or a patient address.
    pub async fn activate(
        &self,
        ip: IpAddr,
        login: &str,
        code: &str,
        new_password: String,
    ) -> Activation {
        let login = login.trim();
        let account = match Ins::parse(login) {
            Ok(ins) => self.store.account_by_ins(ins.as_str()).await,
            Err(_) => match crate::address::Address::parse(login) {
                Ok(a) => self.store.account_by_address(&a.to_string()).await,
                Err(_) => Ok(None),
            },
        };
        let account = match account {
            Ok(a) => a.filter(|a| a.kind == AccountKind::Patient && !a.disabled),
            Err(e) => {
                tracing::error!(error = %e, "account lookup failed during activation");
                return Activation::Unavailable;
            }
        };
        let keys = Throttle::keys(
            "activation",
            account.as_ref().map_or(login, |a| a.address.as_str()),
            ip,
        );
        match self.throttle.is_locked(&keys).await {
            Ok(false) => {}
            Ok(true) => return Activation::Throttled,
            Err(e) => {
                tracing::error!(error = %e, "activation throttle lookup failed");
                return Activation::Unavailable;
            }
        }
        if let Err(rule) = password::check_rules(&new_password, login) {
            return Activation::Weak(rule);
        }
        let pending = match &account {
            Some(a) => match self.store.activation_code(a.id).await {
                Ok(p) => p,
                Err(e) => {
                    tracing::error!(error = %e, "activation code lookup failed");
                    return Activation::Unavailable;
                }
            },
            None => None,
        };
        let live = pending.filter(|p| p.expires_at > self.store.now());
        let hash = live
            .as_ref()
            .map_or_else(|| dummy_hash().to_string(), |p| p.code_hash.clone());
        let typed = format!("activation:{}", normalize_code(code));
        let valid = password::verify_pooled(typed, hash).await;
        match account {
            Some(acc) if valid && live.is_some() => {
                let phc = match password::hash_pooled(new_password).await {
                    Ok(phc) => phc,
                    _ => return Activation::Unavailable,
                };
                match self.store.complete_activation(acc.id, &phc).await {
                    Ok(true) => {
                        self.throttle.success(&keys).await;
                        Activation::Done(Box::new(acc))
                    }
                    Ok(false) => Activation::Invalid,
                    Err(e) => {
                        tracing::error!(error = %e, "activation failed");
                        Activation::Unavailable
                    }
                }
            }
            _ => {
                tracing::warn!(%ip, "activation refused");
                let locked = self.throttle.failure(&keys).await;
                tokio::time::sleep(self.failure_delay).await;
                if locked {
                    Activation::Throttled
                } else {
                    Activation::Invalid
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_grouped_and_unambiguous() {
        let code = generate_code();
        assert_eq!(code.len(), 14, "{code}");
        assert_eq!(code.matches('-').count(), 2, "{code}");
        assert!(normalize_code(&code).bytes().all(|b| ALPHABET.contains(&b)));
        assert_ne!(generate_code(), code);
    }

    #[test]
    fn typed_codes_are_normalized() {
        assert_eq!(normalize_code(" abcd-efgh jkmn "), "ABCDEFGHJKMN");
    }
}
