//! The one path every accepted message takes ([`accept`]): who wrote it, where
//! it goes, trace headers, patient threads, documents for patients' records,
//! one transaction (group commit), then acknowledge and the after-commit work.
//!
//! Protocol sessions and the other senders (the patient space, the relay's
//! reports) never write messages themselves: they describe the message's
//! [`Source`] to the [`Acceptor`] and answer only once it reports the commit.

pub mod accept;
pub mod prepare;
pub mod quota;
pub mod trace;
mod writer;

use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use crate::config::QuotaSettings;
pub use crate::store::messages::{NewMessage, NewRecipient, Stored};
use crate::store::{Backend, Store, StoreError};
pub use accept::{
    AcceptError, Accepted, Acceptor, Append, CalendarReply, FromPatient, Recipient, Report,
    ReportKind, ServiceNotice, Services, Smtp, Source, Target,
};

/// Why a delivery did not happen.
#[derive(Debug, Clone, thiserror::Error)]
pub enum DeliveryError {
    /// The store failed: the client should retry later. Shared: one failed
    /// commit fails every message of its batch.
    #[error("store: {0}")]
    Store(#[source] Arc<StoreError>),
    /// An account's quota has no room for it: judged by the writer, under
    /// the write lock, so that concurrent deliveries cannot overshoot it.
    #[error(transparent)]
    Quota(#[from] quota::QuotaRefusal),
    /// The server is shutting down.
    #[error("delivery service stopped")]
    Stopped,
}

/// Messages stored together or not at all (one, or a MULTIAPPEND's).
struct Job {
    messages: Vec<NewMessage>,
    reply: oneshot::Sender<Result<Vec<Stored>, DeliveryError>>,
}

/// Handle to the group-commit writers under [`Acceptor`]; cheap to clone.
/// Only the accept path (and the store's own tests) writes through it.
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
    /// `quota` is the limit of accounts that have none of their own.
    pub fn start(store: Store, quota: QuotaSettings) -> (Deliverer, JoinHandle<()>) {
        let (tx, rx) = mpsc::channel(1024);
        let writers = match store.backend() {
            Backend::Sqlite => 1,
            Backend::Postgres => 4,
        };
        let handle = tokio::spawn(writer::run(store, quota, rx, writers));
        (Deliverer { tx }, handle)
    }

    /// Stores `message`; returns once it is committed durably.
    pub async fn deliver(&self, message: NewMessage) -> Result<Stored, DeliveryError> {
        self.deliver_all(vec![message])
            .await?
            .pop()
            .ok_or(DeliveryError::Stopped)
    }

    /// Stores `messages` together, all or none (MULTIAPPEND); returns once
    /// they are committed durably, in order.
    pub async fn deliver_all(
        &self,
        messages: Vec<NewMessage>,
    ) -> Result<Vec<Stored>, DeliveryError> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Job { messages, reply })
            .await
            .map_err(|_| DeliveryError::Stopped)?;
        rx.await.map_err(|_| DeliveryError::Stopped)?
    }
}
