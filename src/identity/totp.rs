//! The professionals' second factor: time-based one-time passwords (RFC 6238,
//! HMAC-SHA1, 30-second steps, 6 digits), as every authenticator app computes
//! them. A professional's software gets an API bearer token only with the
//! password and a current code; failures count in the login throttle.

use std::net::IpAddr;

use rand::Rng;
use subtle::ConstantTimeEq;
use totp_rs::{Algorithm, TOTP};

use super::auth::{Authenticator, LoginResult};
use super::sasl::Credentials;
use super::throttle::Throttle;

/// Seconds per step.
const STEP: u64 = 30;

/// A new secret (160 bits), base32 as authenticator apps take it.
pub fn generate_secret() -> String {
    let bytes: [u8; 20] = rand::rng().random();
    data_encoding::BASE32_NOPAD.encode(&bytes)
}

/// The `otpauth://` URI an authenticator app reads (as a QR code or typed);
/// label and issuer URL-encoded. Empty when `secret` is not base32.
pub fn provisioning_uri(secret: &str, account: &str, issuer: &str) -> String {
    totp(secret, Some(issuer.to_owned()), account.to_owned())
        .map(|t| t.get_url())
        .unwrap_or_default()
}

/// The generator of `secret` (base32, any case, without padding) with our
/// parameters. Unchecked: a stored secret shorter than RFC 4226's 128 bits
/// still works as it always has.
fn totp(secret: &str, issuer: Option<String>, account: String) -> Option<TOTP> {
    let key = data_encoding::BASE32_NOPAD
        .decode(secret.trim().to_ascii_uppercase().as_bytes())
        .ok()?;
    Some(TOTP::new_unchecked(
        Algorithm::SHA1,
        6,
        1,
        STEP,
        key,
        issuer,
        account,
    ))
}

/// Encrypts the TOTP secrets still stored in clear (from before encryption);
/// returns how many. Run at every start, so that login only ever opens
/// encrypted values.
pub async fn encrypt_clear_secrets(
    store: &crate::store::Store,
    secrets: &super::secret_box::SecretBox,
) -> anyhow::Result<usize> {
    let mut done = 0;
    for (address, value) in store.totp_secrets().await? {
        if super::secret_box::SecretBox::is_sealed(&value) {
            continue;
        }
        let sealed = secrets.seal(&address, &value)?;
        store.set_totp_secret(&address, Some(&sealed)).await?;
        done += 1;
    }
    if done > 0 {
        tracing::info!(accounts = done, "TOTP secrets encrypted");
    }
    Ok(done)
}

/// The code of `secret` at Unix time `unix`.
pub fn code_at(secret: &str, unix: u64) -> Option<String> {
    totp(secret, None, String::new()).map(|t| t.generate(unix))
}

/// Accepts the current code and the ones just before and after (clock drift);
/// returns the time step it belongs to (so that it is never accepted twice).
/// totp-rs's own `check` says whether, not which step, hence the loop.
pub fn matching_step(secret: &str, code: &str, unix: u64) -> Option<u64> {
    let code = code.trim();
    if code.len() != 6 {
        return None;
    }
    let totp = totp(secret, None, String::new())?;
    [unix.saturating_sub(STEP), unix, unix + STEP]
        .into_iter()
        .find(|t| bool::from(totp.generate(*t).as_bytes().ct_eq(code.as_bytes())))
        .map(|t| t / STEP)
}

/// True when `code` is valid at `unix` (see [`matching_step`]).
pub fn verify(secret: &str, code: &str, unix: u64) -> bool {
    matching_step(secret, code, unix).is_some()
}

impl Authenticator {
    /// Password then one-time code. Only accounts with a second factor pass;
    /// a wrong or reused code counts as a failed login, and the account's
    /// failures are forgiven only when both factors are right.
    pub async fn login_with_totp(
        &self,
        ip: IpAddr,
        credentials: Credentials,
        code: &str,
    ) -> LoginResult {
        let account = match self.check_password(ip, credentials, false).await {
            LoginResult::Success(a) => a,
            other => return other,
        };
        let keys = Throttle::keys("login", &account.address, ip);
        let now = self.store.now().max(0) as u64;
        // Stored encrypted for this account: a value in clear, copied from
        // another account or altered does not open, and no code matches.
        let secret = account
            .totp_secret
            .as_deref()
            .and_then(|s| self.secrets.open(&account.address, s).ok());
        let step = secret.and_then(|s| matching_step(&s, code, now));
        if let Some(step) = step {
            match self
                .store
                .take_totp_step(&account.address, step as i64)
                .await
            {
                Ok(true) => {
                    self.throttle.success(&keys).await;
                    return LoginResult::Success(account);
                }
                Ok(false) => tracing::warn!(%ip, "one-time code used twice"),
                Err(_) => return LoginResult::Unavailable,
            }
        }
        tracing::warn!(%ip, "second factor refused");
        self.throttle.failure(&keys).await;
        tokio::time::sleep(self.failure_delay).await;
        LoginResult::Invalid
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6238 appendix B, SHA-1 seed "12345678901234567890" (8 digits there;
    /// the last 6 are ours).
    #[test]
    fn rfc_6238_vectors() {
        let secret = data_encoding::BASE32_NOPAD.encode(b"12345678901234567890");
        for (t, eight) in [
            (59u64, "94287082"),
            (1_111_111_109, "07081804"),
            (1_234_567_890, "89005924"),
            (2_000_000_000, "69279037"),
        ] {
            assert_eq!(code_at(&secret, t).unwrap(), eight[2..], "t={t}");
        }
    }

    #[test]
    fn drift_of_one_step_is_accepted_two_are_not() {
        let s = generate_secret();
        let now = 1_800_000_000;
        let code = code_at(&s, now).unwrap();
        assert!(verify(&s, &code, now + 30));
        assert!(!verify(&s, &code, now + 90));
        assert!(!verify(&s, "12345", now));
    }

    #[test]
    fn provisioning_uri_names_issuer_and_account() {
        let uri = provisioning_uri("JBSWY3DPEHPK3PXP", "jean dupont@a.test", "MES");
        assert_eq!(
            uri,
            "otpauth://totp/MES:jean%20dupont%40a.test?secret=JBSWY3DPEHPK3PXP&issuer=MES"
        );
        assert_eq!(provisioning_uri("not base32!", "a@b", "MES"), "");
    }
}
