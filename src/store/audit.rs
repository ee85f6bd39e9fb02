//! The rows of the audit trail: an entry and its append under the head lock,
//! chained by hash so that a transaction of any aggregate can record its fact.
//! Reading, verifying and sealing the trail are in `crate::audit`.

use sha2::{Digest, Sha256};
use sqlx::AnyConnection;

use super::StoreError;

/// One audited fact.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct AuditEntry {
    /// Who acted: an address, `operator` for the command line, `system`.
    pub actor: String,
    /// What was done, e.g. `account.create`.
    pub action: String,
    /// On what: an address or object name.
    pub target: String,
    /// Why or how, free text without health data.
    pub detail: String,
}

impl AuditEntry {
    /// Builds an entry.
    pub fn new(actor: &str, action: &str, target: &str, detail: &str) -> AuditEntry {
        AuditEntry {
            actor: actor.into(),
            action: action.into(),
            target: target.into(),
            detail: detail.into(),
        }
    }
}

/// The hash of an entry appended at `at` after the entry hashed `prev`.
pub(crate) fn chain_hash(prev: &str, at: i64, e: &AuditEntry) -> String {
    let mut h = Sha256::new();
    for part in [
        prev,
        &at.to_string(),
        &e.actor,
        &e.action,
        &e.target,
        &e.detail,
    ] {
        h.update((part.len() as u64).to_be_bytes());
        h.update(part.as_bytes());
    }
    hex::encode(h.finalize())
}

impl super::Store {
    /// Runs `statement` and, when it changed a row, appends `audit` (at
    /// `now`) in the same transaction: a state change and its trail land
    /// together or not at all. False, with nothing written, when no row changed.
    pub(super) async fn execute_audited<'q>(
        &self,
        statement: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>,
        audit: &AuditEntry,
        now: i64,
    ) -> Result<bool, StoreError> {
        let mut tx = self.pool().begin().await?;
        if statement.execute(&mut *tx).await?.rows_affected() == 0 {
            return Ok(false);
        }
        append_on(&mut tx, audit, now).await?;
        tx.commit().await?;
        self.wrote();
        Ok(true)
    }
}

/// Appends `entry` at time `at` on `conn`, inside the caller's transaction
/// when there is one.
pub async fn append_on(
    conn: &mut AnyConnection,
    entry: &AuditEntry,
    at: i64,
) -> Result<(), StoreError> {
    // Lock the head first (a no-op update), then read it: concurrent appenders queue here.
    let prev: String =
        sqlx::query_scalar("UPDATE audit_head SET hash = hash WHERE id = 1 RETURNING hash")
            .fetch_one(&mut *conn)
            .await?;
    let hash = chain_hash(&prev, at, entry);
    sqlx::query(
        "INSERT INTO audit_log (at, actor, action, target, detail, prev_hash, hash) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(at)
    .bind(&entry.actor)
    .bind(&entry.action)
    .bind(&entry.target)
    .bind(&entry.detail)
    .bind(&prev)
    .bind(&hash)
    .execute(&mut *conn)
    .await?;
    sqlx::query("UPDATE audit_head SET hash = $1 WHERE id = 1")
        .bind(&hash)
        .execute(&mut *conn)
        .await?;
    crate::metrics::audit_entry();
    Ok(())
}
