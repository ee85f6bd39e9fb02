//! Opening the spaces whose opposition window ended, in batches: the
//! background task of `mes serve` (every `lifecycle.open_check_secs`).
//! Time is the store's clock, so tests move it instead of sleeping; a pass
//! is idempotent and safe on several nodes (`Store::open_spaces` skips what
//! another opened).

use std::time::Duration;

use crate::store::{Store, StoreError};

/// Spaces opened per transaction.
pub const OPEN_BATCH: i64 = 1000;

/// Opens every space due now, `OPEN_BATCH` at a time; returns how many this
/// call opened.
pub async fn open_due(store: &Store) -> Result<u64, StoreError> {
    let mut opened = 0;
    loop {
        let due = store.due_spaces(OPEN_BATCH).await?;
        if due.is_empty() {
            return Ok(opened);
        }
        let n = store.open_spaces(&due).await?;
        opened += n;
        if n == 0 && (due.len() as i64) < OPEN_BATCH {
            // Another node took them all between our read and our write.
            return Ok(opened);
        }
    }
}

/// The background task: a pass now, then one every `every`.
pub async fn run(store: Store, every: Duration) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        match open_due(&store).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(
                opened = n,
                "patient spaces opened at the end of their window"
            ),
            Err(e) => tracing::error!(error = %e, "opening patient spaces failed"),
        }
    }
}
