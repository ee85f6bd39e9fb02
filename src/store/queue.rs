//! The outbound queue: one row per remote recipient, leased by the relay worker
//! of one node at a time, with its attempts, next retry and outcome.

use sqlx::AnyConnection;

use super::messages::NewRecipient;
use super::{Store, StoreError};

/// A queued recipient as the relay works on it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueItem {
    /// Row id.
    pub id: i64,
    /// The message.
    pub message_id: i64,
    /// Recipient address.
    pub recipient: String,
    /// Its domain.
    pub domain: String,
    /// RFC 3461 ORCPT.
    pub orcpt: Option<String>,
    /// RFC 3461 NOTIFY bits.
    pub notify: i64,
    /// `pending`, `sent` or `failed`.
    pub status: String,
    /// Attempts so far.
    pub attempts: i64,
    /// Unix seconds of the next attempt.
    pub next_attempt: i64,
    /// Unix seconds of acceptance.
    pub created_at: i64,
    /// A delay DSN was sent.
    pub delay_notified: bool,
    /// The last error, as the remote or the network said it.
    pub last_error: Option<String>,
    /// The remote server of the last attempt.
    pub remote_mta: Option<String>,
    /// Unix seconds DATA was last started (0: never).
    pub attempt_started: i64,
}

/// What the relay needs of the message itself.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct QueuedMessage {
    /// Reverse path ("" for null).
    pub mail_from: String,
    /// RFC 3461 ENVID.
    pub dsn_envid: Option<String>,
    /// RFC 3461 RET.
    pub dsn_ret: Option<String>,
    /// Unix seconds of acceptance.
    pub received_at: i64,
    /// Content hash.
    pub blob_hash: String,
}

const COLUMNS: &str = "id, message_id, recipient, domain, orcpt, notify, status, attempts, next_attempt, \
     created_at, delay_notified, last_error, remote_mta, attempt_started";

/// A `queue` row as read ([`COLUMNS`]), the delay notice as an integer.
#[derive(sqlx::FromRow)]
struct QueueRow {
    id: i64,
    message_id: i64,
    recipient: String,
    domain: String,
    orcpt: Option<String>,
    notify: i64,
    status: String,
    attempts: i64,
    next_attempt: i64,
    created_at: i64,
    delay_notified: i64,
    last_error: Option<String>,
    remote_mta: Option<String>,
    attempt_started: i64,
}

impl From<QueueRow> for QueueItem {
    fn from(r: QueueRow) -> QueueItem {
        QueueItem {
            id: r.id,
            message_id: r.message_id,
            recipient: r.recipient,
            domain: r.domain,
            orcpt: r.orcpt,
            notify: r.notify,
            status: r.status,
            attempts: r.attempts,
            next_attempt: r.next_attempt,
            created_at: r.created_at,
            delay_notified: r.delay_notified != 0,
            last_error: r.last_error,
            remote_mta: r.remote_mta,
            attempt_started: r.attempt_started,
        }
    }
}

/// Queues remote recipients (message id, recipient, time of acceptance)
/// inside the delivery transaction, with one statement for all.
pub(super) async fn enqueue_on(
    conn: &mut AnyConnection,
    rows: &[(i64, &NewRecipient, i64)],
) -> Result<(), StoreError> {
    for chunk in rows.chunks(super::group_commit::ROWS_PER_STATEMENT) {
        let sql = format!(
            "INSERT INTO queue (message_id, recipient, domain, orcpt, notify, next_attempt, created_at) \
             VALUES {} ON CONFLICT (message_id, recipient) DO NOTHING",
            super::group_commit::values(chunk.len(), 7)
        );
        let mut query = sqlx::query(&sql).persistent(false);
        for (message_id, r, at) in chunk {
            let domain = r
                .address
                .rsplit_once('@')
                .map(|(_, d)| d)
                .unwrap_or_default();
            query = query
                .bind(*message_id)
                .bind(&r.address)
                .bind(domain)
                .bind(&r.orcpt)
                .bind(r.notify)
                .bind(*at)
                .bind(*at);
        }
        query.execute(&mut *conn).await?;
    }
    Ok(())
}

impl Store {
    /// Leases up to `limit` due rows to `owner` for `lease_secs`; rows leased by a
    /// node that died become due again when their lease runs out.
    pub async fn claim_due(
        &self,
        owner: &str,
        limit: i64,
        lease_secs: i64,
    ) -> Result<Vec<QueueItem>, StoreError> {
        let t = self.now();
        // PostgreSQL: nodes claiming at once skip each other's locked rows
        // instead of waiting for them (and then finding them taken).
        let lock = match self.backend() {
            super::Backend::Postgres => "FOR UPDATE SKIP LOCKED",
            super::Backend::Sqlite => "",
        };
        let rows: Vec<QueueRow> = sqlx::query_as(&format!(
            "UPDATE queue SET lease_owner = $1, lease_until = $2 \
             WHERE id IN (SELECT id FROM queue WHERE status = 'pending' AND next_attempt <= $3 AND lease_until < $3 \
                          ORDER BY next_attempt, id LIMIT $4 {lock}) \
             AND status = 'pending' AND lease_until < $3 RETURNING {COLUMNS}"
        ))
        .bind(owner)
        .bind(t + lease_secs)
        .bind(t)
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        Ok(rows.into_iter().map(QueueItem::from).collect())
    }

    /// Extends `owner`'s lease on `ids` by `lease_secs` from now; returns the
    /// ids it still held (a row whose lease ran out may be another node's).
    pub async fn renew_leases(
        &self,
        ids: &[i64],
        owner: &str,
        lease_secs: i64,
    ) -> Result<Vec<i64>, StoreError> {
        let t = self.now();
        let mut held = Vec::with_capacity(ids.len());
        let mut tx = self.pool().begin().await?;
        for id in ids {
            let done = sqlx::query(
                "UPDATE queue SET lease_until = $1 WHERE id = $2 AND lease_owner = $3 \
                 AND status = 'pending' AND lease_until >= $4",
            )
            .bind(t + lease_secs)
            .bind(id)
            .bind(owner)
            .bind(t)
            .execute(&mut *tx)
            .await?;
            if done.rows_affected() == 1 {
                held.push(*id);
            }
        }
        tx.commit().await?;
        Ok(held)
    }

    /// Frees the rows `owner` had leased: a node that restarts works on nothing yet.
    pub async fn release_leases(&self, owner: &str) -> Result<u64, StoreError> {
        let done = sqlx::query("UPDATE queue SET lease_owner = NULL, lease_until = 0 WHERE lease_owner = $1 AND status = 'pending'")
            .bind(owner)
            .execute(self.pool())
            .await?;
        Ok(done.rows_affected())
    }

    /// The message behind a queue row.
    pub async fn queued_message(&self, message_id: i64) -> Result<QueuedMessage, StoreError> {
        sqlx::query_as(
            "SELECT mail_from, dsn_envid, dsn_ret, received_at, blob_hash FROM messages WHERE id = $1",
        )
        .bind(message_id)
        .fetch_optional(self.pool())
        .await?
        .ok_or_else(|| StoreError::NotFound(format!("message {message_id}")))
    }

    /// Records that DATA is about to be sent for these rows (before sending, so a
    /// crash in between is visible as a possible duplicate).
    pub async fn queue_attempt_started(&self, ids: &[i64], remote: &str) -> Result<(), StoreError> {
        // One transaction (one fsync) for the whole message.
        let mut tx = self.pool().begin().await?;
        let t = self.now();
        for id in ids {
            sqlx::query("UPDATE queue SET attempt_started = $1, remote_mta = $2 WHERE id = $3")
                .bind(t)
                .bind(remote)
                .bind(id)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// The remote accepted these recipients (one transaction).
    pub async fn queue_sent(&self, ids: &[i64], remote: &str) -> Result<(), StoreError> {
        let mut tx = self.pool().begin().await?;
        for id in ids {
            sqlx::query(
                "UPDATE queue SET status = 'sent', attempts = attempts + 1, remote_mta = $1, lease_owner = NULL, \
                 lease_until = 0, last_error = NULL WHERE id = $2",
            )
            .bind(remote)
            .bind(id)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// A permanent failure (or expiry): no more attempts.
    pub async fn queue_failed(
        &self,
        id: i64,
        error: &str,
        remote: Option<&str>,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE queue SET status = 'failed', attempts = attempts + 1, last_error = $1, remote_mta = COALESCE($2, remote_mta), \
             lease_owner = NULL, lease_until = 0 WHERE id = $3",
        )
        .bind(error)
        .bind(remote.map(str::to_string))
        .bind(id)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// A temporary failure: try again at `next_attempt`.
    pub async fn queue_retry(
        &self,
        id: i64,
        error: &str,
        remote: Option<&str>,
        next_attempt: i64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE queue SET attempts = attempts + 1, last_error = $1, remote_mta = COALESCE($2, remote_mta), \
             next_attempt = $3, lease_owner = NULL, lease_until = 0 WHERE id = $4",
        )
        .bind(error)
        .bind(remote.map(str::to_string))
        .bind(next_attempt)
        .bind(id)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Marks that a delay DSN was sent for these rows.
    pub async fn queue_delay_notified(&self, id: i64) -> Result<(), StoreError> {
        sqlx::query("UPDATE queue SET delay_notified = 1 WHERE id = $1")
            .bind(id)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// Queue rows, newest first (`pending` only unless `all`).
    pub async fn queue_list(&self, all: bool) -> Result<Vec<QueueItem>, StoreError> {
        let filter = if all { "" } else { "WHERE status = 'pending'" };
        let rows: Vec<QueueRow> = sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM queue {filter} ORDER BY id DESC"
        ))
        .fetch_all(self.pool())
        .await?;
        Ok(rows.into_iter().map(QueueItem::from).collect())
    }

    /// One queue row.
    pub async fn queue_item(&self, id: i64) -> Result<Option<QueueItem>, StoreError> {
        let row: Option<QueueRow> =
            sqlx::query_as(&format!("SELECT {COLUMNS} FROM queue WHERE id = $1"))
                .bind(id)
                .fetch_optional(self.pool())
                .await?;
        Ok(row.map(QueueItem::from))
    }

    /// Makes a pending row due now.
    pub async fn queue_retry_now(&self, id: i64) -> Result<bool, StoreError> {
        let done =
            sqlx::query("UPDATE queue SET next_attempt = $1 WHERE id = $2 AND status = 'pending'")
                .bind(self.now())
                .bind(id)
                .execute(self.pool())
                .await?;
        self.announce_queue().await;
        Ok(done.rows_affected() == 1)
    }

    /// Removes a row (the operator gives up on it; no DSN).
    pub async fn queue_delete(&self, id: i64) -> Result<bool, StoreError> {
        let done = sqlx::query("DELETE FROM queue WHERE id = $1")
            .bind(id)
            .execute(self.pool())
            .await?;
        Ok(done.rows_affected() == 1)
    }

    /// (pending rows, age in seconds of the oldest) for logs and metrics.
    pub async fn queue_depth(&self) -> Result<(i64, i64), StoreError> {
        let (n, oldest): (i64, Option<i64>) = sqlx::query_as(
            "SELECT COUNT(*) AS n, MIN(created_at) AS oldest FROM queue WHERE status = 'pending'",
        )
        .fetch_one(self.pool())
        .await?;
        Ok((n, oldest.map(|o| self.now() - o).unwrap_or(0)))
    }

    /// Per destination domain: (domain, pending rows, age in seconds of the
    /// oldest), for the metrics read at each scrape.
    pub async fn queue_depth_by_domain(&self) -> Result<Vec<(String, i64, i64)>, StoreError> {
        let rows: Vec<(String, i64, i64)> = sqlx::query_as(
            "SELECT domain, COUNT(*) AS n, MIN(created_at) AS oldest FROM queue \
             WHERE status = 'pending' GROUP BY domain ORDER BY domain",
        )
        .fetch_all(self.pool())
        .await?;
        let now = self.now();
        Ok(rows
            .into_iter()
            .map(|(domain, n, oldest)| (domain, n, (now - oldest).max(0)))
            .collect())
    }
}
