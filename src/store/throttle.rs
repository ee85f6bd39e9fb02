//! Login failure counters (`login_throttle`), for `identity::throttle`: one
//! row per key hash, shared by every node on the database.

use super::{Store, StoreError};

impl Store {
    /// True when one of `key_hashes` is locked out now.
    pub async fn throttle_locked(&self, key_hashes: &[&str]) -> Result<bool, StoreError> {
        let t = self.now();
        for key in key_hashes {
            let row = sqlx::query(
                "SELECT locked_until FROM login_throttle WHERE key_hash = $1 AND locked_until > $2",
            )
            .bind(*key)
            .bind(t)
            .fetch_optional(self.pool())
            .await?;
            if row.is_some() {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Counts one failure for `key_hash` (the count restarts when the last
    /// failure is older than `window` seconds); from `max_failures` on, the key
    /// is locked for `window` seconds. Returns true when it is now locked.
    pub async fn throttle_failure(
        &self,
        key_hash: &str,
        max_failures: i64,
        window: i64,
    ) -> Result<bool, StoreError> {
        let t = self.now();
        // One statement: concurrent failures on several nodes all count.
        let locked_until: i64 = sqlx::query_scalar(
            "INSERT INTO login_throttle (key_hash, failures, last_at, locked_until) \
             VALUES ($1, 1, $2, CASE WHEN 1 >= $3 THEN $2 + $4 ELSE 0 END) \
             ON CONFLICT (key_hash) DO UPDATE SET \
               failures = CASE WHEN login_throttle.last_at < $2 - $4 THEN 1 \
                               ELSE login_throttle.failures + 1 END, \
               locked_until = CASE WHEN (CASE WHEN login_throttle.last_at < $2 - $4 THEN 1 \
                                              ELSE login_throttle.failures + 1 END) >= $3 \
                                   THEN $2 + $4 ELSE login_throttle.locked_until END, \
               last_at = $2 \
             RETURNING locked_until",
        )
        .bind(key_hash)
        .bind(t)
        .bind(max_failures)
        .bind(window)
        .fetch_one(self.pool())
        .await?;
        Ok(locked_until > t)
    }

    /// Forgets the failures of `key_hash` (after a successful login). Most
    /// logins have none: the row is looked for first, so that they do not
    /// wait for SQLite's single writer.
    pub async fn throttle_forget(&self, key_hash: &str) -> Result<(), StoreError> {
        let row = sqlx::query("SELECT failures FROM login_throttle WHERE key_hash = $1")
            .bind(key_hash)
            .fetch_optional(self.pool())
            .await?;
        if row.is_none() {
            return Ok(());
        }
        sqlx::query("DELETE FROM login_throttle WHERE key_hash = $1")
            .bind(key_hash)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// Deletes the rows whose last failure is older than `window` seconds and
    /// whose lockout is over; returns how many.
    pub async fn throttle_purge(&self, window: i64) -> Result<u64, StoreError> {
        let t = self.now();
        let done =
            sqlx::query("DELETE FROM login_throttle WHERE last_at < $1 AND locked_until <= $2")
                .bind(t - window)
                .bind(t)
                .execute(self.pool())
                .await?;
        Ok(done.rows_affected())
    }
}
