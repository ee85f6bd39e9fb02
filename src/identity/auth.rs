//! Login: password (SASL PLAIN/LOGIN) and client certificate (SASL EXTERNAL)
//! checks for every protocol, with throttling and constant work for unknown users.

use std::net::IpAddr;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use subtle::ConstantTimeEq;

use super::sasl::Credentials;
use super::throttle::Throttle;
use super::{AccountKind, password};
use crate::address::Address;

use crate::store::Store;
use crate::store::accounts::Account;

/// What a logged-in mail session keeps of its account's credentials, to
/// notice that the operator changed them or disabled the account (`mes user
/// passwd|totp|certificate|disable`) and end the session: a digest, so that
/// no secret stays in the session's memory.
#[derive(Clone)]
pub struct CredentialStamp([u8; 32]);

/// Compared in constant time: the digest covers the password hash and the
/// TOTP secret.
impl PartialEq for CredentialStamp {
    fn eq(&self, other: &Self) -> bool {
        self.0.ct_eq(&other.0).into()
    }
}

impl Eq for CredentialStamp {}

impl CredentialStamp {
    /// The stamp of the account as it is now.
    pub fn of(account: &Account) -> CredentialStamp {
        use sha2::{Digest, Sha256};
        let mut digest = Sha256::new();
        for field in [
            account.password_hash.as_deref(),
            account.totp_secret.as_deref(),
            account.cert_subject.as_deref(),
        ] {
            // Length-prefixed, so that fields cannot run into each other.
            let bytes = field.unwrap_or("").as_bytes();
            digest.update((bytes.len() as u64).to_be_bytes());
            digest.update(bytes);
            digest.update([u8::from(field.is_some())]);
        }
        digest.update([u8::from(account.disabled)]);
        CredentialStamp(digest.finalize().into())
    }
}

impl std::fmt::Debug for CredentialStamp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CredentialStamp(..)")
    }
}

/// Result of a login attempt.
#[derive(Debug, Clone)]
pub enum LoginResult {
    /// Credentials valid, account enabled.
    Success(Box<Account>),
    /// Unknown account, wrong password or disabled account (indistinguishable to the client).
    Invalid,
    /// Too many failures for this IP or account.
    Throttled,
    /// Valid, and a patient: mail protocols refuse it; the patient space accepts it.
    Patient(Box<Account>),
    /// Valid, but the patient's space is closed (`lifecycle/close.rs`): told
    /// only after the password is verified, so closure is no oracle.
    Closed,
    /// The store failed.
    Unavailable,
}

/// Checks credentials for SMTP and IMAP.
#[derive(Debug, Clone)]
pub struct Authenticator {
    pub(super) store: Store,
    pub(super) throttle: Arc<Throttle>,
    pub(super) failure_delay: Duration,
    /// Opens the TOTP secrets the store keeps encrypted.
    pub(super) secrets: Arc<super::secret_box::SecretBox>,
    /// The protocol its failures are counted under in the metrics.
    protocol: &'static str,
}

pub(super) fn dummy_hash() -> &'static str {
    static HASH: OnceLock<String> = OnceLock::new();
    HASH.get_or_init(|| password::hash("dummy password for timing").unwrap_or_default())
}

impl Authenticator {
    /// An authenticator over `store` with a shared throttle; `secrets`
    /// opens the stored TOTP secrets.
    pub fn new(
        store: Store,
        throttle: Arc<Throttle>,
        failure_delay: Duration,
        secrets: Arc<super::secret_box::SecretBox>,
    ) -> Authenticator {
        Authenticator {
            secrets,
            store,
            throttle,
            failure_delay,
            protocol: "smtp",
        }
    }

    /// The same authenticator (same throttle), its failures counted under
    /// `protocol` (`smtp`, `imap`, `https`) in the metrics.
    pub fn for_protocol(&self, protocol: &'static str) -> Authenticator {
        Authenticator {
            protocol,
            ..self.clone()
        }
    }

    /// The shared failure throttle, for other guessable secrets checked on
    /// the web (the opposition code of `/opposition`).
    pub fn throttle(&self) -> &Throttle {
        &self.throttle
    }

    /// Whether a session that logged in to `account_id` with `stamp` may go
    /// on: the account still exists, is enabled, and its credentials are
    /// those it logged in with.
    pub async fn still_valid(
        &self,
        account_id: i64,
        stamp: &CredentialStamp,
    ) -> Result<bool, crate::store::StoreError> {
        Ok(self
            .store
            .account_by_id(account_id)
            .await?
            .is_some_and(|a| !a.disabled && CredentialStamp::of(&a) == *stamp))
    }

    /// Verifies a password login from `ip`. Failures are delayed and counted.
    pub async fn login(&self, ip: IpAddr, credentials: Credentials) -> LoginResult {
        self.check_password(ip, credentials, true).await
    }

    /// The password check; `forgive` clears the account's failure count on
    /// success (not when a second factor is still to come).
    pub(super) async fn check_password(
        &self,
        ip: IpAddr,
        credentials: Credentials,
        forgive: bool,
    ) -> LoginResult {
        let address = Address::parse(&credentials.username)
            .map(|a| a.to_string())
            .ok();
        let account_key = address.as_deref().unwrap_or(&credentials.username);
        let keys = Throttle::keys("login", account_key, ip);
        match self.throttle.is_locked(&keys).await {
            Ok(false) => {}
            Ok(true) => {
                crate::metrics::auth_failure(self.protocol);
                return LoginResult::Throttled;
            }
            Err(e) => {
                tracing::error!(error = %e, "login throttle lookup failed");
                return LoginResult::Unavailable;
            }
        }
        let account = match &address {
            Some(a) => match self.store.account_by_address(a).await {
                Ok(acc) => acc,
                Err(e) => {
                    tracing::error!(error = %e, "account lookup failed during login");
                    return LoginResult::Unavailable;
                }
            },
            None => None,
        };
        let hash = account
            .as_ref()
            .and_then(|a| a.password_hash.clone())
            .unwrap_or_else(|| dummy_hash().to_string());
        let pw = credentials.password;
        let valid = password::verify_pooled(pw, hash).await;
        match account {
            Some(acc) if valid && !acc.disabled => {
                if forgive {
                    self.throttle.success(&keys).await;
                }
                if acc.kind == AccountKind::Patient {
                    return LoginResult::Patient(Box::new(acc));
                }
                LoginResult::Success(Box::new(acc))
            }
            Some(acc) if valid && acc.kind == AccountKind::Patient => {
                // Disabled: closed space, or disabled by the operator.
                match self
                    .store
                    .space_closed(acc.ins.as_deref().unwrap_or(""))
                    .await
                {
                    Ok(true) => {
                        if forgive {
                            self.throttle.success(&keys).await;
                        }
                        tracing::info!(%ip, "login to a closed patient space refused");
                        LoginResult::Closed
                    }
                    Ok(false) => self.failed(ip, &keys, true, account_key).await,
                    Err(e) => {
                        tracing::error!(error = %e, "space lookup failed during login");
                        LoginResult::Unavailable
                    }
                }
            }
            _ => {
                // A patient's address carries their INS: never in the logs,
                // nor an unknown name (a mistyped patient address, an INS).
                let named = account
                    .as_ref()
                    .is_some_and(|a| a.kind != AccountKind::Patient);
                self.failed(ip, &keys, !named, account_key).await
            }
        }
    }

    /// A failed login: logged (without a patient's address), counted, delayed.
    async fn failed(
        &self,
        ip: IpAddr,
        keys: &super::throttle::Keys,
        patient: bool,
        account_key: &str,
    ) -> LoginResult {
        if patient {
            tracing::warn!(%ip, "authentication failed");
        } else {
            tracing::warn!(%ip, user = %account_key, "authentication failed");
        }
        crate::metrics::auth_failure(self.protocol);
        let locked = self.throttle.failure(keys).await;
        tokio::time::sleep(self.failure_delay).await;
        if locked {
            LoginResult::Throttled
        } else {
            LoginResult::Invalid
        }
    }

    /// Verifies a patient-space login: an address or an INS matricule and a password.
    /// Same throttling as every login; only patient accounts succeed here.
    pub async fn login_patient(&self, ip: IpAddr, login: &str, password: String) -> LoginResult {
        let username = if login.contains('@') {
            login.to_string()
        } else {
            match super::ins::Ins::parse(login) {
                Ok(ins) => match self.store.account_by_ins(ins.as_str()).await {
                    Ok(Some(acc)) => acc.address,
                    Ok(None) => login.to_string(),
                    Err(_) => return LoginResult::Unavailable,
                },
                Err(_) => login.to_string(),
            }
        };
        match self.login(ip, Credentials { username, password }).await {
            LoginResult::Success(_) => LoginResult::Invalid,
            other => other,
        }
    }

    /// Maps a verified client certificate subject to an account; with `authzid`,
    /// that account must be one the certificate is mapped to.
    pub async fn login_certificate(&self, subject: &str, authzid: Option<&str>) -> LoginResult {
        let accounts = match self.store.accounts_by_cert_subject(subject).await {
            Ok(a) => a,
            Err(e) => {
                tracing::error!(error = %e, "account lookup failed during certificate login");
                return LoginResult::Unavailable;
            }
        };
        let wanted = authzid
            .and_then(|z| Address::parse(z).ok())
            .map(|a| a.to_string());
        let chosen = match (&wanted, accounts.len()) {
            (Some(w), _) => accounts.into_iter().find(|a| &a.address == w),
            (None, 1) => accounts.into_iter().next(),
            _ => None,
        };
        match chosen {
            Some(acc) if acc.kind == AccountKind::Patient => LoginResult::Patient(Box::new(acc)),
            Some(acc) => LoginResult::Success(Box::new(acc)),
            None => {
                tracing::warn!(subject, "client certificate is not mapped to one account");
                crate::metrics::auth_failure(self.protocol);
                LoginResult::Invalid
            }
        }
    }
}
