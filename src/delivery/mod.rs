//! The one path every accepted message takes: parse once, add trace headers,
//! write blob and rows in one transaction (group commit), then acknowledge.
//!
//! Protocol sessions never write messages themselves: they hand a [`NewMessage`]
//! to the [`Deliverer`] and answer the client only when it reports the commit.

pub mod facts;
pub mod prepare;
pub mod report;
pub mod trace;
mod writer;

use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

pub use crate::store::messages::{NewMessage, NewRecipient, Stored};
use crate::store::{Backend, Store};

/// Why a delivery did not happen.
#[derive(Debug, Clone, thiserror::Error)]
pub enum DeliveryError {
    /// The store failed: the client should retry later.
    #[error("store: {0}")]
    Store(String),
    /// The server is shutting down.
    #[error("delivery service stopped")]
    Stopped,
}

struct Job {
    message: NewMessage,
    reply: oneshot::Sender<Result<Stored, DeliveryError>>,
}

/// Handle to the group-commit writers; cheap to clone.
#[derive(Debug, Clone)]
pub struct Deliverer {
    tx: mpsc::Sender<Job>,
}

impl std::fmt::Debug for Job {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Job").finish_non_exhaustive()
    }
}

impl Deliverer {
    /// Starts the writers: one on SQLite (a single writer is all it allows), a few on PostgreSQL.
    /// They stop when every `Deliverer` clone is dropped and the queue is drained.
    pub fn start(
        store: Store,
        notifier: Option<crate::threads::notify::Notifier>,
    ) -> (Deliverer, JoinHandle<()>) {
        let (tx, rx) = mpsc::channel(1024);
        let writers = match store.backend() {
            Backend::Sqlite => 1,
            Backend::Postgres => 4,
        };
        let handle = tokio::spawn(writer::run(store, rx, writers, notifier));
        (Deliverer { tx }, handle)
    }

    /// Stores `message`; returns once it is committed durably.
    pub async fn deliver(&self, message: NewMessage) -> Result<Stored, DeliveryError> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Job { message, reply })
            .await
            .map_err(|_| DeliveryError::Stopped)?;
        rx.await.map_err(|_| DeliveryError::Stopped)?
    }
}
