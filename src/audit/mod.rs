//! The append-only, hash-chained audit trail.
//!
//! Each entry's hash covers the previous entry's hash and the entry's fields,
//! so that removing or editing a row breaks the chain ([`verify_chain`]).
//! Appends take the single `audit_head` row lock, which orders writers across
//! nodes sharing one PostgreSQL. Entries name people and actions, never health
//! content.

use sha2::{Digest, Sha256};
use sqlx::AnyConnection;
use sqlx::Row;

pub mod seal;

use crate::store::{Store, StoreError};

/// One audited fact.
#[derive(Debug, Clone, PartialEq, Eq)]
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

fn chain_hash(prev: &str, at: i64, e: &AuditEntry) -> String {
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

/// Appends `entry` at time `at` on `conn`, inside the caller's transaction
/// when there is one.
pub async fn append_on(
    conn: &mut AnyConnection,
    entry: &AuditEntry,
    at: i64,
) -> Result<(), StoreError> {
    // Lock the head first (a no-op update), then read it: concurrent appenders queue here.
    let head = sqlx::query("UPDATE audit_head SET hash = hash WHERE id = 1 RETURNING hash")
        .fetch_one(&mut *conn)
        .await?;
    let prev: String = head.try_get("hash")?;
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
    Ok(())
}

/// Appends `entry` in its own transaction.
pub async fn append(store: &Store, entry: &AuditEntry) -> Result<(), StoreError> {
    let mut tx = store.pool().begin().await?;
    append_on(&mut tx, entry, store.now()).await?;
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
