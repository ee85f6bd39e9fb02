//! The append-only, hash-chained audit trail.
//!
//! Each entry's hash covers the previous entry's hash and the entry's fields,
//! so that removing or editing a row breaks the chain ([`verify_chain`]).
//! Appends take the single `audit_head` row lock, which orders writers across
//! nodes sharing one PostgreSQL (the entry row and its append are
//! `store::audit`, so any transaction can record its fact). Entries name people
//! and actions, never health content.

pub mod seal;

use crate::store::audit::chain_hash;
pub use crate::store::audit::{AuditEntry, append_on};
use crate::store::{Store, StoreError};

/// Appends `entry` in its own transaction.
pub async fn append(store: &Store, entry: &AuditEntry) -> Result<(), StoreError> {
    let mut tx = store.pool().begin().await?;
    append_on(&mut tx, entry, store.now()).await?;
    tx.commit().await?;
    Ok(())
}

/// Entries about `target`, newest first.
pub async fn entries_for(store: &Store, target: &str) -> Result<Vec<AuditEntry>, StoreError> {
    Ok(sqlx::query_as(
        "SELECT actor, action, target, detail FROM audit_log WHERE target = $1 ORDER BY id DESC",
    )
    .bind(target)
    .fetch_all(store.pool())
    .await?)
}

/// One entry with its place and time in the trail.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Recorded {
    /// Row id (chain order).
    pub id: i64,
    /// Unix seconds.
    pub at: i64,
    /// The entry.
    #[sqlx(flatten)]
    pub entry: AuditEntry,
}

/// A row of the trail with its chain hashes.
#[derive(sqlx::FromRow)]
struct Chained {
    #[sqlx(flatten)]
    recorded: Recorded,
    prev_hash: String,
    hash: String,
}

/// Entries about `target` written by anyone but `target` itself, newest first
/// (a patient's access history).
pub async fn by_others(store: &Store, target: &str) -> Result<Vec<Recorded>, StoreError> {
    Ok(sqlx::query_as(
        "SELECT id, at, actor, action, target, detail FROM audit_log \
         WHERE target = $1 AND actor <> $1 ORDER BY id DESC",
    )
    .bind(target)
    .fetch_all(store.pool())
    .await?)
}

/// A patient's access history: entries about `target` written by anyone
/// else, and the patient's own exports of their space, newest first.
pub async fn history_of(store: &Store, target: &str) -> Result<Vec<Recorded>, StoreError> {
    Ok(sqlx::query_as(
        "SELECT id, at, actor, action, target, detail FROM audit_log \
         WHERE target = $1 AND (actor <> $1 OR action = $2) ORDER BY id DESC",
    )
    .bind(target)
    .bind(crate::store::export::EXPORT_ACTION)
    .fetch_all(store.pool())
    .await?)
}

/// Recomputes the chain; returns the id of the first broken entry, if any.
pub async fn verify_chain(store: &Store) -> Result<Option<i64>, StoreError> {
    let rows: Vec<Chained> = sqlx::query_as(
        "SELECT id, at, actor, action, target, detail, prev_hash, hash FROM audit_log ORDER BY id",
    )
    .fetch_all(store.pool())
    .await?;
    let mut prev = "0".repeat(64);
    for Chained {
        recorded,
        prev_hash,
        hash,
    } in rows
    {
        if prev_hash != prev || chain_hash(&prev, recorded.at, &recorded.entry) != hash {
            return Ok(Some(recorded.id));
        }
        prev = hash;
    }
    Ok(None)
}
