//! Sealing the audit trail with a key kept outside the database.
//!
//! The hash chain alone shows that a row was edited or removed in the middle,
//! but someone who can write the database can recompute it after any change.
//! Every `audit.checkpoint_secs` the server writes a checkpoint: the last
//! entry's id and hash, with an HMAC-SHA-256 under the key of
//! `audit.key_file`. Without the key nobody can forge a checkpoint, so the
//! entries up to the latest checkpoint can be neither rewritten nor cut off
//! unnoticed (`mes audit verify`); the head printed by `mes audit head` and
//! published by the operator anchors the trail outside the machine.

use std::path::Path;

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::keyfile::{self, KeyError};
use crate::store::{Store, StoreError};

/// The sealing key.
#[derive(Clone)]
pub struct SealKey([u8; 32]);

impl std::fmt::Debug for SealKey {
    /// Never shows the key.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SealKey(..)")
    }
}

impl SealKey {
    /// Reads the key from `path`.
    pub fn load(path: &Path) -> Result<SealKey, KeyError> {
        keyfile::load(path).map(SealKey)
    }

    /// Reads the key, or makes a new one (file mode 0600) when there is none.
    pub fn load_or_create(path: &Path) -> Result<SealKey, KeyError> {
        keyfile::load_or_create(path).map(SealKey)
    }

    /// The HMAC of a checkpoint's fields, each length-prefixed.
    fn engine(&self, at: i64, entry_id: i64, entry_hash: &str) -> Hmac<Sha256> {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.0)
            .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
        for part in [
            "mes-audit-checkpoint",
            &at.to_string(),
            &entry_id.to_string(),
            entry_hash,
        ] {
            mac.update(&(part.len() as u64).to_be_bytes());
            mac.update(part.as_bytes());
        }
        mac
    }

    fn mac(&self, at: i64, entry_id: i64, entry_hash: &str) -> String {
        hex::encode(
            self.engine(at, entry_id, entry_hash)
                .finalize()
                .into_bytes(),
        )
    }

    /// Checks a seal, in constant time.
    fn verify(&self, at: i64, entry_id: i64, entry_hash: &str, mac: &str) -> bool {
        hex::decode(mac).is_ok_and(|given| {
            self.engine(at, entry_id, entry_hash)
                .verify_slice(&given)
                .is_ok()
        })
    }
}

/// The last entry of the trail: (id, hash), None when it is empty.
pub async fn head(store: &Store) -> Result<Option<(i64, String)>, StoreError> {
    Ok(
        sqlx::query_as("SELECT id, hash FROM audit_log ORDER BY id DESC LIMIT 1")
            .fetch_optional(store.pool())
            .await?,
    )
}

/// Seals the current head, unless the latest checkpoint already covers it.
/// Returns the entry id sealed.
pub async fn checkpoint(store: &Store, key: &SealKey) -> Result<Option<i64>, StoreError> {
    let Some((entry_id, entry_hash)) = head(store).await? else {
        return Ok(None);
    };
    let last: Option<i64> = sqlx::query_scalar("SELECT MAX(entry_id) FROM audit_checkpoints")
        .fetch_one(store.pool())
        .await?;
    if last.is_some_and(|l| l >= entry_id) {
        return Ok(None);
    }
    let at = store.now();
    // Conditional: several nodes checkpoint the same head at about the same time.
    sqlx::query(
        "INSERT INTO audit_checkpoints (at, entry_id, entry_hash, mac) SELECT $1, $2, $3, $4 \
         WHERE NOT EXISTS (SELECT 1 FROM audit_checkpoints WHERE entry_id >= $2)",
    )
    .bind(at)
    .bind(entry_id)
    .bind(&entry_hash)
    .bind(key.mac(at, entry_id, &entry_hash))
    .execute(store.pool())
    .await?;
    Ok(Some(entry_id))
}

/// A stored checkpoint: the entry it seals and its MAC.
#[derive(sqlx::FromRow)]
struct Checkpoint {
    id: i64,
    at: i64,
    entry_id: i64,
    entry_hash: String,
    mac: String,
}

/// What [`verify`] found wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SealProblem {
    /// The chain is broken at this entry.
    #[error("the hash chain is broken at entry {0}: altered, inserted or removed")]
    Chain(i64),
    /// The stored head is not the last entry's hash.
    #[error("the stored head does not match the last entry: entries were cut off the end")]
    Head,
    /// A checkpoint's seal does not verify under the key.
    #[error("checkpoint {0} has an invalid seal: forged, or another key")]
    Seal(i64),
    /// A sealed entry is missing or differs.
    #[error("entry {0}, sealed by a checkpoint, is missing or altered")]
    Sealed(i64),
    /// An anchor given by the operator is not in the trail.
    #[error("anchored entry {0} is missing or altered")]
    Anchor(i64),
}

/// What [`verify`] checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// Entries in the trail.
    pub entries: i64,
    /// Checkpoints whose seal was checked.
    pub checkpoints: i64,
    /// Entries after the latest checkpoint (not sealed yet).
    pub unsealed: i64,
}

/// Checks the chain, the stored head, every checkpoint (when the key is
/// given) and the operator's anchors `(entry id, hash)`.
pub async fn verify(
    store: &Store,
    key: Option<&SealKey>,
    anchors: &[(i64, String)],
) -> Result<Result<Verified, SealProblem>, StoreError> {
    if let Some(id) = super::verify_chain(store).await? {
        return Ok(Err(SealProblem::Chain(id)));
    }
    let last = head(store).await?;
    let stored: String = sqlx::query_scalar("SELECT hash FROM audit_head WHERE id = 1")
        .fetch_one(store.pool())
        .await?;
    let expected = last
        .as_ref()
        .map_or_else(|| "0".repeat(64), |(_, h)| h.clone());
    if stored != expected {
        return Ok(Err(SealProblem::Head));
    }
    let hash_of = |id: i64| async move {
        sqlx::query_scalar::<_, String>("SELECT hash FROM audit_log WHERE id = $1")
            .bind(id)
            .fetch_optional(store.pool())
            .await
    };
    for (id, hash) in anchors {
        if hash_of(*id).await?.as_deref() != Some(hash.as_str()) {
            return Ok(Err(SealProblem::Anchor(*id)));
        }
    }
    let entries: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM audit_log")
        .fetch_one(store.pool())
        .await?;
    let mut checked = 0;
    let mut sealed_up_to = 0;
    if let Some(key) = key {
        let rows: Vec<Checkpoint> = sqlx::query_as(
            "SELECT id, at, entry_id, entry_hash, mac FROM audit_checkpoints ORDER BY id",
        )
        .fetch_all(store.pool())
        .await?;
        for Checkpoint {
            id,
            at,
            entry_id,
            entry_hash,
            mac,
        } in rows
        {
            if !key.verify(at, entry_id, &entry_hash, &mac) {
                return Ok(Err(SealProblem::Seal(id)));
            }
            if hash_of(entry_id).await?.as_deref() != Some(entry_hash.as_str()) {
                return Ok(Err(SealProblem::Sealed(entry_id)));
            }
            checked += 1;
            sealed_up_to = sealed_up_to.max(entry_id);
        }
    }
    let unsealed: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM audit_log WHERE id > $1")
        .bind(sealed_up_to)
        .fetch_one(store.pool())
        .await?;
    Ok(Ok(Verified {
        entries,
        checkpoints: checked,
        unsealed,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seals_verify_only_under_their_key() {
        let a = SealKey([7; 32]);
        let b = SealKey([8; 32]);
        let mac = a.mac(100, 5, "abc");
        assert!(a.verify(100, 5, "abc", &mac));
        assert!(!a.verify(100, 6, "abc", &mac));
        assert!(!a.verify(101, 5, "abc", &mac));
        assert!(!a.verify(100, 5, "abd", &mac));
        assert!(!b.verify(100, 5, "abc", &mac));
        assert!(!a.verify(100, 5, "abc", "not hex"));
        assert_eq!(format!("{a:?}"), "SealKey(..)");
    }
}
