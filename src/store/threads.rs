//! Patient threads, patient settings and API sessions as stored. The rules are in
//! `crate::threads`; this file only reads and writes rows.

use sqlx::AnyConnection;

use super::audit::{self, AuditEntry};
use super::{Store, StoreError};

/// How a stored message relates to patient threads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ThreadLink {
    /// To patients (the recipients flagged `patient_id`): file it in their threads.
    ToPatient(Incoming),
    /// From a patient, inside this thread.
    FromPatient {
        /// The thread.
        thread_id: i64,
    },
}

/// The facts of a message to a patient that decide its thread. The sender is
/// the proven author (`identity::author`), never a header alone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Incoming {
    /// Normalised sender address (the correspondent).
    pub sender: String,
    /// The name the patient sees.
    pub sender_name: String,
    /// The sender's profession, when known.
    pub sender_profession: Option<String>,
    /// Who wrote for the sender (a hospital system, a delegate), by name.
    pub via: Option<String>,
    /// The sender belongs to another operator of the trust space.
    pub other_operator: bool,
    /// Subject.
    pub subject: String,
    /// In-Reply-To and References ids.
    pub references: Vec<String>,
    /// The sender ends the thread with this message.
    pub ends: bool,
    /// This message's Message-ID.
    pub message_id: Option<String>,
}

/// A thread as the patient sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Thread {
    /// Row id.
    pub id: i64,
    /// The patient's account.
    pub patient_id: i64,
    /// The correspondent's address.
    pub correspondent: String,
    /// The correspondent's name.
    pub correspondent_name: String,
    /// The correspondent's profession.
    pub correspondent_profession: Option<String>,
    /// Who wrote for the correspondent (a hospital system, a delegate), by name.
    pub correspondent_via: Option<String>,
    /// The correspondent belongs to another operator of the trust space.
    pub correspondent_other_operator: bool,
    /// Subject of the first message.
    pub subject: String,
    /// `open` or `ended`.
    pub status: String,
    /// Who ended it.
    pub ended_by: Option<String>,
    /// When (Unix seconds).
    pub ended_at: Option<i64>,
    /// When it was opened.
    pub created_at: i64,
    /// Last message.
    pub last_message_at: i64,
    /// Unread messages to the patient.
    pub unread: i64,
}

/// A message of a thread.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThreadMessage {
    /// The message row.
    pub message_id: i64,
    /// `in` (to the patient) or `out` (from the patient).
    pub direction: String,
    /// Read by the patient.
    pub is_read: bool,
    /// Unix seconds.
    pub created_at: i64,
    /// Content hash.
    pub blob_hash: String,
    /// Message-ID header.
    pub header_message_id: Option<String>,
}

const THREAD_COLUMNS: &str = "t.id, t.patient_id, t.correspondent, t.correspondent_name, t.correspondent_profession, \
     t.correspondent_via, t.correspondent_other_operator, t.subject, t.status, t.ended_by, t.ended_at, t.created_at, t.last_message_at, \
     (SELECT COUNT(*) FROM thread_messages u WHERE u.thread_id = t.id AND u.direction = 'in' AND u.is_read = 0) AS unread";

/// A thread as read ([`THREAD_COLUMNS`]), the operator switch as an integer.
#[derive(sqlx::FromRow)]
struct ThreadRow {
    id: i64,
    patient_id: i64,
    correspondent: String,
    correspondent_name: String,
    correspondent_profession: Option<String>,
    correspondent_via: Option<String>,
    correspondent_other_operator: i64,
    subject: String,
    status: String,
    ended_by: Option<String>,
    ended_at: Option<i64>,
    created_at: i64,
    last_message_at: i64,
    unread: i64,
}

impl From<ThreadRow> for Thread {
    fn from(r: ThreadRow) -> Thread {
        Thread {
            id: r.id,
            patient_id: r.patient_id,
            correspondent: r.correspondent,
            correspondent_name: r.correspondent_name,
            correspondent_profession: r.correspondent_profession,
            correspondent_via: r.correspondent_via,
            correspondent_other_operator: r.correspondent_other_operator != 0,
            subject: r.subject,
            status: r.status,
            ended_by: r.ended_by,
            ended_at: r.ended_at,
            created_at: r.created_at,
            last_message_at: r.last_message_at,
            unread: r.unread,
        }
    }
}

/// A message of a thread as read, the read mark as an integer.
#[derive(sqlx::FromRow)]
struct ThreadMessageRow {
    message_id: i64,
    direction: String,
    is_read: i64,
    created_at: i64,
    blob_hash: String,
    header_message_id: Option<String>,
}

impl From<ThreadMessageRow> for ThreadMessage {
    fn from(r: ThreadMessageRow) -> ThreadMessage {
        ThreadMessage {
            message_id: r.message_id,
            direction: r.direction,
            is_read: r.is_read != 0,
            created_at: r.created_at,
            blob_hash: r.blob_hash,
            header_message_id: r.header_message_id,
        }
    }
}

async fn patient_address(conn: &mut AnyConnection, patient_id: i64) -> Result<String, StoreError> {
    Ok(
        sqlx::query_scalar("SELECT address FROM accounts WHERE id = $1")
            .bind(patient_id)
            .fetch_one(&mut *conn)
            .await?,
    )
}

/// Files a message to a patient in the right thread, inside the delivery transaction.
pub(super) async fn on_delivery(
    conn: &mut AnyConnection,
    patient_id: i64,
    message_id: i64,
    m: &Incoming,
    at: i64,
) -> Result<(), StoreError> {
    let patient = patient_address(conn, patient_id).await?;
    let mut found: Option<i64> = None;
    for reference in &m.references {
        let id: Option<i64> = sqlx::query_scalar(
            "SELECT t.id FROM threads t JOIN thread_messages tm ON tm.thread_id = t.id \
             WHERE t.patient_id = $1 AND t.correspondent = $2 AND t.status = 'open' AND tm.header_message_id = $3 \
             ORDER BY t.id DESC LIMIT 1",
        )
        .bind(patient_id)
        .bind(&m.sender)
        .bind(reference)
        .fetch_optional(&mut *conn)
        .await?;
        if id.is_some() {
            found = id;
            break;
        }
    }
    if found.is_none() && m.ends {
        // A closing message that replies to nothing known ends the latest open thread with that sender.
        found = sqlx::query_scalar(
            "SELECT id FROM threads WHERE patient_id = $1 AND correspondent = $2 AND status = 'open' ORDER BY id DESC LIMIT 1",
        )
        .bind(patient_id)
        .bind(&m.sender)
        .fetch_optional(&mut *conn)
        .await?;
    }
    let thread_id = match found {
        Some(id) => {
            audit::append_on(
                conn,
                &AuditEntry::new(
                    &m.sender,
                    "thread.message",
                    &patient,
                    &format!("thread {id}"),
                ),
                at,
            )
            .await?;
            id
        }
        None => {
            let id: i64 = sqlx::query_scalar(
                "INSERT INTO threads (patient_id, correspondent, correspondent_name, correspondent_profession, subject, \
                 status, created_at, last_message_at, correspondent_via, correspondent_other_operator) \
                 VALUES ($1, $2, $3, $4, $5, 'open', $6, $6, $7, $8) RETURNING id",
            )
            .bind(patient_id)
            .bind(&m.sender)
            .bind(&m.sender_name)
            .bind(&m.sender_profession)
            .bind(&m.subject)
            .bind(at)
            .bind(&m.via)
            .bind(i64::from(m.other_operator))
            .fetch_one(&mut *conn)
            .await?;
            audit::append_on(
                conn,
                &AuditEntry::new(&m.sender, "thread.open", &patient, &format!("thread {id}")),
                at,
            )
            .await?;
            id
        }
    };
    sqlx::query(
        "INSERT INTO thread_messages (thread_id, message_id, direction, header_message_id, is_read, created_at) \
         VALUES ($1, $2, 'in', $3, 0, $4) ON CONFLICT (thread_id, message_id) DO NOTHING",
    )
    .bind(thread_id)
    .bind(message_id)
    .bind(&m.message_id)
    .bind(at)
    .execute(&mut *conn)
    .await?;
    sqlx::query("UPDATE threads SET last_message_at = $1 WHERE id = $2")
        .bind(at)
        .bind(thread_id)
        .execute(&mut *conn)
        .await?;
    if m.ends {
        end_on(conn, thread_id, &m.sender_name, &m.sender, &patient, at).await?;
    }
    Ok(())
}

async fn end_on(
    conn: &mut AnyConnection,
    thread_id: i64,
    by_name: &str,
    by: &str,
    patient: &str,
    at: i64,
) -> Result<(), StoreError> {
    sqlx::query("UPDATE threads SET status = 'ended', ended_by = $1, ended_at = $2 WHERE id = $3 AND status = 'open'")
        .bind(by_name)
        .bind(at)
        .bind(thread_id)
        .execute(&mut *conn)
        .await?;
    audit::append_on(
        conn,
        &AuditEntry::new(by, "thread.end", patient, &format!("thread {thread_id}")),
        at,
    )
    .await
}

/// Records a patient's message in its thread, inside the delivery transaction.
pub(super) async fn on_patient_message(
    conn: &mut AnyConnection,
    thread_id: i64,
    message_id: i64,
    header_message_id: Option<&str>,
    at: i64,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO thread_messages (thread_id, message_id, direction, header_message_id, is_read, created_at) \
         VALUES ($1, $2, 'out', $3, 1, $4)",
    )
    .bind(thread_id)
    .bind(message_id)
    .bind(header_message_id.map(str::to_string))
    .bind(at)
    .execute(&mut *conn)
    .await?;
    sqlx::query("UPDATE threads SET last_message_at = $1 WHERE id = $2")
        .bind(at)
        .bind(thread_id)
        .execute(&mut *conn)
        .await?;
    let patient: String = sqlx::query_scalar(
        "SELECT a.address FROM threads t JOIN accounts a ON a.id = t.patient_id WHERE t.id = $1",
    )
    .bind(thread_id)
    .fetch_one(&mut *conn)
    .await?;
    audit::append_on(
        conn,
        &AuditEntry::new(
            &patient,
            "thread.reply",
            &patient,
            &format!("thread {thread_id}"),
        ),
        at,
    )
    .await
}

impl Store {
    /// The patient's threads, most recent first.
    pub async fn threads_of(&self, patient_id: i64) -> Result<Vec<Thread>, StoreError> {
        let rows: Vec<ThreadRow> = sqlx::query_as(&format!(
            "SELECT {THREAD_COLUMNS} FROM threads t WHERE t.patient_id = $1 ORDER BY t.last_message_at DESC, t.id DESC"
        ))
        .bind(patient_id)
        .fetch_all(self.pool())
        .await?;
        Ok(rows.into_iter().map(Thread::from).collect())
    }

    /// The address of the patient a thread belongs to (to audit an attempt
    /// on it by someone else).
    pub async fn thread_owner(&self, thread_id: i64) -> Result<Option<String>, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT a.address FROM threads t JOIN accounts a ON a.id = t.patient_id WHERE t.id = $1",
        )
        .bind(thread_id)
        .fetch_optional(self.pool())
        .await?)
    }

    /// One thread, only if it belongs to `patient_id`.
    pub async fn thread_of(
        &self,
        patient_id: i64,
        thread_id: i64,
    ) -> Result<Option<Thread>, StoreError> {
        let row: Option<ThreadRow> = sqlx::query_as(&format!(
            "SELECT {THREAD_COLUMNS} FROM threads t WHERE t.id = $1 AND t.patient_id = $2"
        ))
        .bind(thread_id)
        .bind(patient_id)
        .fetch_optional(self.pool())
        .await?;
        Ok(row.map(Thread::from))
    }

    /// The latest open thread between the patient and `correspondent`.
    pub async fn open_thread_with(
        &self,
        patient_id: i64,
        correspondent: &str,
    ) -> Result<Option<Thread>, StoreError> {
        let row: Option<ThreadRow> = sqlx::query_as(&format!(
            "SELECT {THREAD_COLUMNS} FROM threads t WHERE t.patient_id = $1 AND t.correspondent = $2 AND t.status = 'open' \
             ORDER BY t.id DESC LIMIT 1"
        ))
        .bind(patient_id)
        .bind(correspondent)
        .fetch_optional(self.pool())
        .await?;
        Ok(row.map(Thread::from))
    }

    /// The messages of a thread, oldest first.
    pub async fn thread_messages(&self, thread_id: i64) -> Result<Vec<ThreadMessage>, StoreError> {
        let rows: Vec<ThreadMessageRow> = sqlx::query_as(
            "SELECT tm.message_id, tm.direction, tm.is_read, tm.created_at, tm.header_message_id, m.blob_hash \
             FROM thread_messages tm JOIN messages m ON m.id = tm.message_id WHERE tm.thread_id = $1 \
             ORDER BY tm.created_at, tm.message_id",
        )
        .bind(thread_id)
        .fetch_all(self.pool())
        .await?;
        Ok(rows.into_iter().map(ThreadMessage::from).collect())
    }

    /// Marks every message of the thread read.
    pub async fn mark_thread_read(&self, thread_id: i64) -> Result<(), StoreError> {
        sqlx::query("UPDATE thread_messages SET is_read = 1 WHERE thread_id = $1")
            .bind(thread_id)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// Ends the open threads of correspondent `by` that contain one of these messages
    /// (the IMAP keyword path); returns how many were ended.
    pub async fn end_threads_with_messages(
        &self,
        by: &str,
        by_name: &str,
        header_ids: &[String],
    ) -> Result<usize, StoreError> {
        let mut tx = self.pool().begin().await?;
        let mut ended = 0;
        for id in header_ids {
            let rows: Vec<(i64, String)> = sqlx::query_as(
                "SELECT DISTINCT t.id, a.address FROM threads t JOIN thread_messages tm ON tm.thread_id = t.id \
                 JOIN accounts a ON a.id = t.patient_id \
                 WHERE t.correspondent = $1 AND t.status = 'open' AND tm.header_message_id = $2",
            )
            .bind(by)
            .bind(id)
            .fetch_all(&mut *tx)
            .await?;
            for (thread_id, patient) in rows {
                end_on(&mut tx, thread_id, by_name, by, &patient, self.now()).await?;
                ended += 1;
            }
        }
        tx.commit().await?;
        Ok(ended)
    }

    /// (notice address, notices on, last notice) of a patient.
    pub async fn patient_settings(
        &self,
        account_id: i64,
    ) -> Result<(Option<String>, bool, i64), StoreError> {
        let row: Option<(Option<String>, i64, i64)> = sqlx::query_as("SELECT notify_email, notify_enabled, last_notice_at FROM patient_settings WHERE account_id = $1")
            .bind(account_id)
            .fetch_optional(self.pool())
            .await?;
        Ok(match row {
            Some((email, enabled, last_notice_at)) => (email, enabled != 0, last_notice_at),
            None => (None, true, 0),
        })
    }

    /// Sets the notice address and switch.
    pub async fn set_patient_settings(
        &self,
        account_id: i64,
        email: Option<&str>,
        enabled: bool,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO patient_settings (account_id, notify_email, notify_enabled) VALUES ($1, $2, $3) \
             ON CONFLICT (account_id) DO UPDATE SET notify_email = excluded.notify_email, notify_enabled = excluded.notify_enabled",
        )
        .bind(account_id)
        .bind(email.map(str::to_string))
        .bind(i64::from(enabled))
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Takes the right to send a notice now: true (and records it) when the last one is older than `window` seconds.
    pub async fn take_notice_slot(&self, account_id: i64, window: i64) -> Result<bool, StoreError> {
        let t = self.now();
        let done = sqlx::query(
            "UPDATE patient_settings SET last_notice_at = $1 WHERE account_id = $2 AND last_notice_at <= $3",
        )
        .bind(t)
        .bind(account_id)
        .bind(t - window)
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Takes the right to send an emergency-access notice now: true (and
    /// records it) when the last one is older than `window` seconds.
    pub async fn take_emergency_notice_slot(
        &self,
        account_id: i64,
        window: i64,
    ) -> Result<bool, StoreError> {
        let t = self.now();
        let done = sqlx::query(
            "UPDATE patient_settings SET last_emergency_notice_at = $1 \
             WHERE account_id = $2 AND last_emergency_notice_at <= $3",
        )
        .bind(t)
        .bind(account_id)
        .bind(t - window)
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Records a new API session token (its SHA-256).
    pub async fn create_session(
        &self,
        token_hash: &str,
        account_id: i64,
    ) -> Result<(), StoreError> {
        let t = self.now();
        sqlx::query("INSERT INTO api_sessions (token_hash, account_id, created_at, last_seen) VALUES ($1, $2, $3, $3)")
            .bind(token_hash)
            .bind(account_id)
            .bind(t)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// The account of a live session (idle less than `idle_secs`, opened less
    /// than `max_secs` ago), refreshing it.
    ///
    /// The refresh is a write, and on SQLite a write waits for the single
    /// writer, behind whole batches of deliveries: it is written only when the
    /// recorded time is older than a tenth of the idle time (at most a
    /// minute), so reading the dossier does not queue behind the deliveries
    /// that feed it. A session may thus end up to that much before `idle_secs`.
    pub async fn session_account(
        &self,
        token_hash: &str,
        idle_secs: i64,
        max_secs: i64,
    ) -> Result<Option<i64>, StoreError> {
        let t = self.now();
        let row: Option<(i64, i64)> = sqlx::query_as(
            "SELECT account_id, last_seen FROM api_sessions \
             WHERE token_hash = $1 AND last_seen > $2 AND created_at > $3",
        )
        .bind(token_hash)
        .bind(t - idle_secs)
        .bind(t - max_secs)
        .fetch_optional(self.pool())
        .await?;
        let Some((account_id, last_seen)) = row else {
            return Ok(None);
        };
        if t - last_seen >= (idle_secs / 10).clamp(0, 60) {
            // A refresh that fails (a busy database) does not fail the request.
            if let Err(e) = sqlx::query(
                "UPDATE api_sessions SET last_seen = $1 WHERE token_hash = $2 AND last_seen < $1",
            )
            .bind(t)
            .bind(token_hash)
            .execute(self.pool())
            .await
            {
                tracing::debug!(error = %e, "session refresh not written");
            }
        }
        Ok(Some(account_id))
    }

    /// Ends a session.
    pub async fn delete_session(&self, token_hash: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM api_sessions WHERE token_hash = $1")
            .bind(token_hash)
            .execute(self.pool())
            .await?;
        Ok(())
    }
}
