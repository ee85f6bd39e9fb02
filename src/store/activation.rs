//! Activation codes of patient spaces and the end of patient sessions, as stored.
//! The rules (code format, expiry, password rules) are in `crate::identity::activation`.

use super::{Store, StoreError};

/// A pending activation code.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct PendingActivation {
    /// Argon2id hash of the code.
    pub code_hash: String,
    /// Unix time after which the code is refused.
    pub expires_at: i64,
}

impl Store {
    /// Replaces the activation code of `account_id` (a new code voids the old one).
    pub async fn set_activation_code(
        &self,
        account_id: i64,
        code_hash: &str,
        expires_at: i64,
    ) -> Result<(), StoreError> {
        let mut tx = self.pool().begin().await?;
        sqlx::query("DELETE FROM activation_codes WHERE account_id = $1")
            .bind(account_id)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT INTO activation_codes (account_id, code_hash, expires_at, created_at) VALUES ($1, $2, $3, $4)",
        )
        .bind(account_id)
        .bind(code_hash)
        .bind(expires_at)
        .bind(self.now())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// The pending activation code of `account_id`, if any.
    pub async fn activation_code(
        &self,
        account_id: i64,
    ) -> Result<Option<PendingActivation>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT code_hash, expires_at FROM activation_codes WHERE account_id = $1",
        )
        .bind(account_id)
        .fetch_optional(self.pool())
        .await?)
    }

    /// Sets the first password and consumes the code, in one transaction; false
    /// if the code was consumed meanwhile (two tabs, two devices).
    pub async fn complete_activation(
        &self,
        account_id: i64,
        password_hash: &str,
    ) -> Result<bool, StoreError> {
        let mut tx = self.pool().begin().await?;
        let consumed = sqlx::query("DELETE FROM activation_codes WHERE account_id = $1")
            .bind(account_id)
            .execute(&mut *tx)
            .await?;
        if consumed.rows_affected() != 1 {
            return Ok(false);
        }
        sqlx::query("UPDATE accounts SET password_hash = $1 WHERE id = $2")
            .bind(password_hash)
            .bind(account_id)
            .execute(&mut *tx)
            .await?;
        // A new first password ends whatever sessions existed (a reissued code
        // after a takeover must lock the intruder out).
        sqlx::query("DELETE FROM api_sessions WHERE account_id = $1")
            .bind(account_id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Ends every session of `account_id` but `keep` (after a password change).
    pub async fn delete_other_sessions(
        &self,
        account_id: i64,
        keep: &str,
    ) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM api_sessions WHERE account_id = $1 AND token_hash <> $2")
            .bind(account_id)
            .bind(keep)
            .execute(self.pool())
            .await?;
        Ok(())
    }
}
