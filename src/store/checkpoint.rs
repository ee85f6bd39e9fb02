//! SQLite: WAL checkpoints in the background.
//!
//! With SQLite's default, the transaction whose commit takes the WAL past 1000
//! pages copies the WAL back into the database file and syncs it before its
//! commit returns; with the one writer SQLite allows, every delivery waits
//! behind that copy (with 500 KB messages, once every eight messages). Here a
//! task runs `PRAGMA wal_checkpoint(PASSIVE)` on its own connection shortly
//! after writes, concurrently with the writer (a passive checkpoint never
//! blocks it); the connections' automatic checkpoint stays on, at
//! [`BACKSTOP_PAGES`], for when the task falls behind. Durability does not
//! change: a commit is durable once its WAL frames are synced
//! (`synchronous = FULL`).

use std::sync::Arc;
use std::time::Duration;

use sqlx::AnyPool;
use tokio::sync::Notify;

/// WAL pages after which a committing connection checkpoints itself (64 MiB
/// with 4 KiB pages).
pub const BACKSTOP_PAGES: u32 = 16_384;

/// Shortest time between two background checkpoints.
const SPACING: Duration = Duration::from_millis(200);

/// Longest time between two background checkpoints (writes that did not call
/// [`Checkpointer::wrote`]: flags, queue updates, …).
const IDLE: Duration = Duration::from_secs(5);

/// Wakes the background checkpoint task.
#[derive(Debug, Clone, Default)]
pub struct Checkpointer {
    wake: Arc<Notify>,
}

impl Checkpointer {
    /// Starts the task for `pool`; it ends when the pool is closed or every
    /// `Checkpointer` (every `Store` clone) is gone.
    pub fn start(pool: AnyPool) -> Checkpointer {
        let wake = Arc::new(Notify::new());
        let task_wake = Arc::downgrade(&wake);
        tokio::spawn(async move {
            loop {
                let Some(wake) = task_wake.upgrade() else {
                    return;
                };
                tokio::select! {
                    _ = wake.notified() => {}
                    _ = tokio::time::sleep(IDLE) => {}
                }
                drop(wake);
                if pool.is_closed() {
                    return;
                }
                match sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
                    .execute(&pool)
                    .await
                {
                    Ok(_) => {}
                    Err(e) if pool.is_closed() => {
                        tracing::debug!(error = %e, "checkpoint task stopping");
                        return;
                    }
                    Err(e) => tracing::warn!(error = %e, "background WAL checkpoint failed"),
                }
                tokio::time::sleep(SPACING).await;
            }
        });
        Checkpointer { wake }
    }

    /// Tells the task that a large write was committed.
    pub fn wrote(&self) {
        self.wake.notify_one();
    }
}
