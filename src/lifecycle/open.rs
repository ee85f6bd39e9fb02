//! Opening the spaces whose opposition window ended, in batches: the
//! background task of `mes serve` (every `lifecycle.open_check_secs`).
//! Time is the store's clock, so tests move it instead of sleeping; a pass
//! is idempotent and safe on several nodes (`Store::open_spaces` skips what
//! another opened).

use std::time::Duration;

use crate::store::{Backend, Store, StoreError};

/// Spaces opened per transaction: large for the same reason as
/// provisioning's batches (each new address dirties its own index page).
pub const OPEN_BATCH: i64 = 20_000;

/// Opens every space due now, `OPEN_BATCH` at a time; returns how many this
/// call opened. On PostgreSQL two passes run side by side on disjoint
/// batches (the database uses a core for each); SQLite has one writer.
pub async fn open_due(store: &Store) -> Result<u64, StoreError> {
    if store.backend() == Backend::Postgres {
        let (a, b) = tokio::try_join!(pass(store), pass(store))?;
        return Ok(a + b);
    }
    pass(store).await
}

/// Opens batches until none is due.
async fn pass(store: &Store) -> Result<u64, StoreError> {
    let mut opened = 0;
    loop {
        let (due, n) = store.open_due_batch(OPEN_BATCH).await?;
        opened += n;
        if due == 0 || (n == 0 && (due as i64) < OPEN_BATCH) {
            // Nothing left, or another node took them all between our
            // read and our write.
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
