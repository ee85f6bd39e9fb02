//! Closing a patient space, its archive, its purge and its reopening.
//!
//! The patient (settings page, after entering their password again) or the
//! operator (`mes close`, also what `mes oppose` does once a space is open)
//! closes a space: its account is disabled at once (no login, no mail, no
//! professional access) and its content is kept `lifecycle.archive_years`,
//! during which `mes reopen` restores it as it was; then `purge_due` (the
//! background task of `mes serve`) deletes everything but the INS hash and
//! the audit trail. "Destroy at once" purges in the same call. Time is the
//! store's clock; a pass is idempotent and safe on several nodes
//! (`Store::purge_space` claims each row).

use std::time::Duration;

use crate::identity::ins::{Ins, InsError};
use crate::store::audit::AuditEntry;
use crate::store::{Store, StoreError};

use super::ins_hash;

/// Spaces purged per pass before looking again.
pub const PURGE_BATCH: i64 = 100;

/// Seconds in a year of the archive period (365.25 days).
const YEAR_SECS: i64 = 31_557_600;

/// Who closes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Closer {
    /// The operator (`mes close`, `mes oppose`).
    Operator,
    /// The patient, from their settings page (their address, for the trail).
    Patient(String),
}

impl Closer {
    fn actor(&self) -> &str {
        match self {
            Closer::Operator => "operator",
            Closer::Patient(address) => address,
        }
    }
}

/// What happens to the content.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Disposal {
    /// Kept `lifecycle.archive_years`, then purged (the default).
    Archive,
    /// Purged now.
    Destroy,
}

/// What a closure did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Closed {
    /// Closed; the content is purged at this time (Unix seconds).
    Archived(i64),
    /// Closed and purged.
    Destroyed,
}

/// Why a closure or a reopening was refused.
#[derive(Debug, thiserror::Error)]
pub enum CloseError {
    /// Not an INS.
    #[error("not an INS: {0}")]
    Ins(#[from] InsError),
    /// No patient account has this INS (never opened, or opposed).
    #[error("no open patient space has this INS")]
    Unknown,
    /// Closing a space already closed.
    #[error("this patient space is already closed")]
    AlreadyClosed,
    /// Reopening a space that is not closed.
    #[error("this patient space is not closed")]
    NotClosed,
    /// The archive period ended: nothing is left to reopen.
    #[error(
        "this patient space was closed and its archive purged: it can no longer be reopened \
         (only the INS hash and the audit trail remain)"
    )]
    Purged,
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Closes the space of `ins`, archived for `archive_years` or destroyed now.
pub async fn close(
    store: &Store,
    ins: &str,
    disposal: Disposal,
    by: &Closer,
    archive_years: u32,
) -> Result<Closed, CloseError> {
    let ins = Ins::parse(ins)?;
    let key = ins_hash(ins.as_str());
    let Some(account) = store.account_by_ins(ins.as_str()).await? else {
        return Err(match store.space_state(&key).await?.map(|s| s.state) {
            Some(s) if s == "purged" => CloseError::Purged,
            _ => CloseError::Unknown,
        });
    };
    let now = store.now();
    let purge_at = match disposal {
        Disposal::Archive => now + i64::from(archive_years) * YEAR_SECS,
        Disposal::Destroy => now,
    };
    let detail = match disposal {
        Disposal::Archive => format!("closed, archived until {purge_at}"),
        Disposal::Destroy => "closed, destroyed at once".to_string(),
    };
    let entry = AuditEntry::new(by.actor(), "space.close", &account.address, &detail);
    if !store
        .close_space(account.id, ins.as_str(), &account.domain, purge_at, &entry)
        .await?
    {
        return Err(CloseError::AlreadyClosed);
    }
    match disposal {
        Disposal::Archive => Ok(Closed::Archived(purge_at)),
        Disposal::Destroy => {
            let entry = AuditEntry::new(
                by.actor(),
                "space.destroy",
                &account.address,
                "content destroyed at closure",
            );
            store.purge_space(&key, &entry).await?;
            Ok(Closed::Destroyed)
        }
    }
}

/// Reopens the closed space of `ins` within its archive period.
pub async fn reopen(store: &Store, ins: &str) -> Result<(), CloseError> {
    let ins = Ins::parse(ins)?;
    let key = ins_hash(ins.as_str());
    let state = store.space_state(&key).await?.map(|s| s.state);
    match state.as_deref() {
        Some("closed") => {}
        Some("purged") => return Err(CloseError::Purged),
        None if store.account_by_ins(ins.as_str()).await?.is_none() => {
            return Err(CloseError::Unknown);
        }
        _ => return Err(CloseError::NotClosed),
    }
    let address = store
        .account_by_ins(ins.as_str())
        .await?
        .map(|a| a.address)
        .unwrap_or_else(|| key.clone());
    let entry = AuditEntry::new("operator", "space.reopen", &address, "reopened");
    if store.reopen_space(ins.as_str(), &entry).await? {
        Ok(())
    } else {
        Err(CloseError::NotClosed)
    }
}

/// Purges every closed space whose archive period ended; returns how many
/// this call purged.
pub async fn purge_due(store: &Store) -> Result<u64, StoreError> {
    let mut purged = 0;
    loop {
        let due = store.due_purges(PURGE_BATCH).await?;
        if due.is_empty() {
            return Ok(purged);
        }
        let mut n = 0;
        for d in &due {
            let entry = AuditEntry::new(
                "system",
                "space.purge",
                &d.ins_hash,
                "archive period ended: content deleted",
            );
            if store.purge_space(&d.ins_hash, &entry).await? {
                n += 1;
            }
        }
        purged += n;
        if n == 0 {
            // Another node took them between our read and our writes.
            return Ok(purged);
        }
    }
}

/// The background task: a pass now, then one every `every`.
pub async fn run(store: Store, every: Duration) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        match purge_due(&store).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(purged = n, "closed patient spaces purged"),
            Err(e) => tracing::error!(error = %e, "purging closed patient spaces failed"),
        }
    }
}
