//! Group commit: writers take every job waiting in the queue and store them in
//! one transaction, so that concurrent deliveries share one fsync. A job's
//! messages (several for a MULTIAPPEND) are stored together or not at all.

use std::sync::Arc;

use tokio::sync::{Mutex, mpsc};

use super::quota::Quota;
use super::{DeliveryError, Job};
use crate::config::QuotaSettings;
use crate::store::Store;
use crate::store::messages::GroupError;
use crate::store::quota::AccountQuota;

/// Most messages in one transaction.
const MAX_BATCH: usize = 128;
/// Most content bytes in one transaction.
const MAX_BATCH_BYTES: usize = 64 * 1024 * 1024;

pub(super) async fn run(
    store: Store,
    quota: QuotaSettings,
    rx: mpsc::Receiver<Job>,
    writers: usize,
) {
    let rx = Arc::new(Mutex::new(rx));
    let mut tasks = Vec::with_capacity(writers);
    for _ in 0..writers {
        tasks.push(tokio::spawn(writer(store.clone(), quota, rx.clone())));
    }
    for t in tasks {
        let _ = t.await;
    }
}

async fn writer(store: Store, quota: QuotaSettings, rx: Arc<Mutex<mpsc::Receiver<Job>>>) {
    // The quota rule, judged by the store under the write lock.
    let admit = move |row: &AccountQuota, octets: u64, messages: u64| {
        Quota::of(row, &quota).admit(octets, messages)
    };
    loop {
        let batch = {
            let mut rx = rx.lock().await;
            let Some(first) = rx.recv().await else {
                return;
            };
            let mut bytes = job_bytes(&first);
            let mut batch = vec![first];
            while batch.len() < MAX_BATCH && bytes < MAX_BATCH_BYTES {
                match rx.try_recv() {
                    Ok(job) => {
                        bytes += job_bytes(&job);
                        batch.push(job);
                    }
                    Err(_) => break,
                }
            }
            batch
        };
        let groups: Vec<&[crate::store::messages::NewMessage]> =
            batch.iter().map(|j| j.messages.as_slice()).collect();
        let outcome = store.insert_groups_within(&groups, &admit).await;
        tracing::debug!(messages = batch.len(), "delivery batch written");
        match outcome {
            Ok(results) => {
                for (job, result) in batch.into_iter().zip(results) {
                    let result = result.map_err(|e| match e {
                        GroupError::Refused(refusal) => {
                            tracing::info!(reason = %refusal, "message refused: quota");
                            DeliveryError::Quota(refusal)
                        }
                        GroupError::Store(e) => DeliveryError::Store(Arc::new(e)),
                    });
                    let _ = job.reply.send(result);
                }
            }
            Err(e) => {
                tracing::error!(error = %e, messages = batch.len(), "delivery batch failed");
                let e = Arc::new(e);
                for job in batch {
                    let _ = job.reply.send(Err(DeliveryError::Store(e.clone())));
                }
            }
        }
    }
}

fn job_bytes(job: &Job) -> usize {
    job.messages.iter().map(|m| m.data.len()).sum()
}
