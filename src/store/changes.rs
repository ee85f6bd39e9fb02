//! Folder change notifications: after a commit that touches a folder (delivery,
//! flags, copy, move, expunge), its id is published so that IMAP sessions
//! (IDLE, NOOP) report the change at once. One bus per process; several nodes
//! on one PostgreSQL also poll, and can bridge LISTEN/NOTIFY into this bus.

use tokio::sync::broadcast;

/// Publishes folder ids after commits.
#[derive(Debug, Clone)]
pub struct ChangeBus {
    tx: broadcast::Sender<i64>,
    queue: std::sync::Arc<tokio::sync::Notify>,
}

impl Default for ChangeBus {
    fn default() -> Self {
        // A lagging receiver only learns that it missed something, which makes it rescan.
        let (tx, _) = broadcast::channel(4096);
        ChangeBus {
            tx,
            queue: std::sync::Arc::new(tokio::sync::Notify::new()),
        }
    }
}

impl ChangeBus {
    /// Announces that `folder_id` changed (after the commit).
    pub fn publish(&self, folder_id: i64) {
        let _ = self.tx.send(folder_id);
    }

    /// Wakes the relay: something was queued.
    pub fn publish_queue(&self) {
        self.queue.notify_one();
    }

    /// Resolves at the next [`ChangeBus::publish_queue`] (or at once if one is pending).
    pub async fn queued(&self) {
        self.queue.notified().await;
    }

    /// A receiver of every later announcement.
    pub fn subscribe(&self) -> broadcast::Receiver<i64> {
        self.tx.subscribe()
    }
}

/// Listens for the NOTIFYs of other nodes on the same PostgreSQL and republishes
/// them on this process's bus (IDLE sessions here then hear about deliveries there).
pub(super) async fn bridge_postgres(url: &str, bus: ChangeBus) -> Result<(), sqlx::Error> {
    let mut listener = sqlx::postgres::PgListener::connect(url).await?;
    listener.listen("mes_changes").await?;
    tokio::spawn(async move {
        loop {
            // recv() reconnects by itself after a lost connection.
            match listener.recv().await {
                Ok(n) => {
                    let payload = n.payload();
                    if payload == "q" {
                        bus.publish_queue();
                    } else if let Some(id) = payload.strip_prefix('f').and_then(|i| i.parse().ok())
                    {
                        bus.publish(id);
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "change listener");
                    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                }
            }
        }
    });
    Ok(())
}
