//! The append-only, hash-chained audit trail.
//!
//! Each entry's hash covers the previous entry's hash and the entry's fields,
//! so that removing or editing a row breaks the chain ([`verify_chain`]).
//! Appends take the single `audit_head` row lock, which orders writers across
//! nodes sharing one PostgreSQL. Entries name people and actions, never health
//! content.

use sqlx::Row;

pub mod seal;

use crate::store::audit::chain_hash;
pub use crate::store::audit::{AuditEntry, append_on};
use crate::store::{Store, StoreError};

/// Appends `entry` in its own transaction.
pub async fn append(store: &Store, entry: &AuditEntry) -> Result<(), StoreError> {
    let mut tx = store.pool().begin().await?;
    append_on(&mut tx, entry).await?;
    tx.commit().await?;
    Ok(())
}

/// Entries about `target`, newest first.
pub async fn entries_for(store: &Store, target: &str) -> Result<Vec<AuditEntry>, StoreError> {
    let rows = sqlx::query(
        "SELECT actor, action, target, detail FROM audit_log WHERE target = $1 ORDER BY id DESC",
    )
    .bind(target)
    .fetch_all(store.pool())
    .await?;
    rows.iter()
        .map(|r| {
            Ok(AuditEntry {
                actor: r.try_get("actor")?,
                action: r.try_get("action")?,
                target: r.try_get("target")?,
                detail: r.try_get("detail")?,
            })
        })
        .collect()
}

/// One entry with its place and time in the trail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recorded {
    /// Row id (chain order).
    pub id: i64,
    /// Unix seconds.
    pub at: i64,
    /// The entry.
    pub entry: AuditEntry,
}

/// Entries about `target` written by anyone but `target` itself, newest first
/// (a patient's access history).
pub async fn by_others(store: &Store, target: &str) -> Result<Vec<Recorded>, StoreError> {
    let rows = sqlx::query(
        "SELECT id, at, actor, action, target, detail FROM audit_log \
         WHERE target = $1 AND actor <> $1 ORDER BY id DESC",
    )
    .bind(target)
    .fetch_all(store.pool())
    .await?;
    rows.iter()
        .map(|r| {
            Ok(Recorded {
                id: r.try_get("id")?,
                at: r.try_get("at")?,
                entry: AuditEntry {
                    actor: r.try_get("actor")?,
                    action: r.try_get("action")?,
                    target: r.try_get("target")?,
                    detail: r.try_get("detail")?,
                },
            })
        })
        .collect()
}

/// Recomputes the chain; returns the id of the first broken entry, if any.
pub async fn verify_chain(store: &Store) -> Result<Option<i64>, StoreError> {
    let rows = sqlx::query(
        "SELECT id, at, actor, action, target, detail, prev_hash, hash FROM audit_log ORDER BY id",
    )
    .fetch_all(store.pool())
    .await?;
    let mut prev = "0".repeat(64);
    for r in &rows {
        let id: i64 = r.try_get("id")?;
        let entry = AuditEntry {
            actor: r.try_get("actor")?,
            action: r.try_get("action")?,
            target: r.try_get("target")?,
            detail: r.try_get("detail")?,
        };
        let stored_prev: String = r.try_get("prev_hash")?;
        let stored: String = r.try_get("hash")?;
        if stored_prev != prev || chain_hash(&prev, r.try_get("at")?, &entry) != stored {
            return Ok(Some(id));
        }
        prev = stored;
    }
    Ok(None)
}
