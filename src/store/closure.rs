//! Closed patient spaces (`patient_spaces` states `closed` and `purged`,
//! migration 0018): rows only; the rules (who closes, how long the archive
//! is kept, reopening) are `lifecycle/close.rs`.
//!
//! A closed space keeps its account disabled (so every path that already
//! refuses a disabled account refuses it: logins, delivery, sessions) and
//! all its content until `purge_at`; a purged one keeps only its key.

use super::audit::{AuditEntry, append_on};
use super::spaces::ins_hash;
use super::{Store, StoreError};

/// A closed space whose archive is due for purge.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct DuePurge {
    /// The key.
    pub ins_hash: String,
}

/// Message and blob ids handled per statement while purging.
const PURGE_CHUNK: usize = 500;

/// `$start, …` for `n` values (PostgreSQL and SQLite both read `$n` through sqlx's Any driver).
fn list(n: usize, start: usize) -> String {
    (0..n)
        .map(|i| format!("${}", start + i))
        .collect::<Vec<_>>()
        .join(", ")
}

impl Store {
    /// Closes the open space of the patient account `account_id` (INS
    /// `ins`, domain `domain`): its row (made now for an account of `mes
    /// user add`) becomes `closed` until `purge_at`, the account is
    /// disabled and its sessions end, with `audit`, in one transaction.
    /// False when the space was not open (already closed or purged).
    pub async fn close_space(
        &self,
        account_id: i64,
        ins: &str,
        domain: &str,
        purge_at: i64,
        audit: &AuditEntry,
    ) -> Result<bool, StoreError> {
        let now = self.now();
        let key = ins_hash(ins);
        let mut tx = self.pool().begin().await?;
        sqlx::query(
            "INSERT INTO patient_spaces (ins_hash, state, ins, domain, informed_at, opens_at, \
             changed_at) VALUES ($1, 'open', $2, $3, $4, $4, $4) ON CONFLICT (ins_hash) DO NOTHING",
        )
        .bind(&key)
        .bind(ins)
        .bind(domain)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        let done = sqlx::query(
            "UPDATE patient_spaces SET state = 'closed', closed_at = $2, purge_at = $3, \
             changed_at = $2 WHERE ins_hash = $1 AND state = 'open'",
        )
        .bind(&key)
        .bind(now)
        .bind(purge_at)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            return Ok(false);
        }
        sqlx::query("UPDATE accounts SET disabled = 1 WHERE id = $1")
            .bind(account_id)
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM api_sessions WHERE account_id = $1")
            .bind(account_id)
            .execute(&mut *tx)
            .await?;
        append_on(&mut tx, audit, now).await?;
        tx.commit().await?;
        self.wrote();
        Ok(true)
    }

    /// Reopens the closed space of `ins`: open again, its account enabled,
    /// with `audit`. False when it was not closed (open, purged or unknown).
    pub async fn reopen_space(&self, ins: &str, audit: &AuditEntry) -> Result<bool, StoreError> {
        let now = self.now();
        let mut tx = self.pool().begin().await?;
        let done = sqlx::query(
            "UPDATE patient_spaces SET state = 'open', closed_at = NULL, purge_at = NULL, \
             changed_at = $2 WHERE ins_hash = $1 AND state = 'closed'",
        )
        .bind(ins_hash(ins))
        .bind(now)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            return Ok(false);
        }
        sqlx::query("UPDATE accounts SET disabled = 0 WHERE ins = $1 AND kind = 'patient'")
            .bind(ins)
            .execute(&mut *tx)
            .await?;
        append_on(&mut tx, audit, now).await?;
        tx.commit().await?;
        self.wrote();
        Ok(true)
    }

    /// Up to `limit` closed spaces whose archive period ended.
    pub async fn due_purges(&self, limit: i64) -> Result<Vec<DuePurge>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT ins_hash FROM patient_spaces WHERE state = 'closed' AND purge_at <= $1 \
             ORDER BY purge_at LIMIT $2",
        )
        .bind(self.now())
        .bind(limit)
        .fetch_all(self.pool())
        .await?)
    }

    /// Purges the closed space `key` whose archive period ended: its row
    /// keeps only the key (state `purged`); the account, folders, messages
    /// and blobs no other row uses, threads, dossier, agenda, consents,
    /// settings, sessions, connected services and their tokens, and
    /// representation links are deleted, with `audit`, in one transaction. False when it was not closed and due
    /// (another node purged it, or it was reopened meanwhile).
    pub async fn purge_space(&self, key: &str, audit: &AuditEntry) -> Result<bool, StoreError> {
        let now = self.now();
        let mut tx = self.pool().begin().await?;
        // Claim the row first: a concurrent purger waits here, then skips.
        let ins: Option<Option<String>> = sqlx::query_scalar(
            "UPDATE patient_spaces SET changed_at = $2 \
             WHERE ins_hash = $1 AND state = 'closed' AND purge_at <= $2 RETURNING ins",
        )
        .bind(key)
        .bind(now)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(ins) = ins else {
            return Ok(false);
        };
        sqlx::query(
            "UPDATE patient_spaces SET state = 'purged', ins = NULL, domain = NULL, \
             birth_name = NULL, first_names = NULL, birth_date = NULL, sex = NULL, \
             birth_place = NULL, email = NULL, postal = NULL, representatives = NULL, \
             opposition_code_hash = NULL, closed_at = NULL, purge_at = NULL, changed_at = $2 \
             WHERE ins_hash = $1",
        )
        .bind(key)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        if let Some(ins) = ins {
            sqlx::query("DELETE FROM representatives WHERE child_ins = $1 OR parent_ins = $1")
                .bind(&ins)
                .execute(&mut *tx)
                .await?;
            let account: Option<(i64, String)> = sqlx::query_as(
                "SELECT id, address FROM accounts WHERE ins = $1 AND kind = 'patient'",
            )
            .bind(&ins)
            .fetch_optional(&mut *tx)
            .await?;
            if let Some((id, address)) = account {
                delete_account(&mut tx, id, &address).await?;
            }
        }
        append_on(&mut tx, audit, now).await?;
        tx.commit().await?;
        self.wrote();
        Ok(true)
    }
}

/// Deletes patient account `id` and everything that hangs on it, then the
/// messages and blobs that nothing else uses any more.
async fn delete_account(
    tx: &mut sqlx::AnyConnection,
    id: i64,
    address: &str,
) -> Result<(), StoreError> {
    let messages: Vec<i64> = sqlx::query_scalar(
        "SELECT message_id FROM mailbox_messages WHERE mailbox_id IN \
         (SELECT id FROM mailboxes WHERE account_id = $1) \
         UNION SELECT message_id FROM thread_messages WHERE thread_id IN \
         (SELECT id FROM threads WHERE patient_id = $1) \
         UNION SELECT message_id FROM documents WHERE patient_id = $1 AND message_id IS NOT NULL",
    )
    .bind(id)
    .fetch_all(&mut *tx)
    .await?;
    let mut blobs: Vec<String> = sqlx::query_scalar(
        "SELECT blob_hash FROM documents WHERE patient_id = $1 \
         UNION SELECT m.blob_hash FROM messages m JOIN mailbox_messages e ON e.message_id = m.id \
         JOIN mailboxes f ON f.id = e.mailbox_id WHERE f.account_id = $1",
    )
    .bind(id)
    .fetch_all(&mut *tx)
    .await?;
    for chunk in messages.chunks(PURGE_CHUNK) {
        let sql = format!(
            "SELECT blob_hash FROM messages WHERE id IN ({})",
            list(chunk.len(), 1)
        );
        let mut q = sqlx::query_scalar::<_, String>(&sql);
        for m in chunk {
            q = q.bind(*m);
        }
        blobs.extend(q.fetch_all(&mut *tx).await?);
    }
    blobs.sort();
    blobs.dedup();
    for sql in [
        "DELETE FROM imap_vanished WHERE mailbox_id IN (SELECT id FROM mailboxes WHERE account_id = $1)",
        "DELETE FROM mailbox_messages WHERE mailbox_id IN (SELECT id FROM mailboxes WHERE account_id = $1)",
        "DELETE FROM mailboxes WHERE account_id = $1",
        "DELETE FROM thread_messages WHERE thread_id IN (SELECT id FROM threads WHERE patient_id = $1)",
        "DELETE FROM threads WHERE patient_id = $1",
        "DELETE FROM profile_items WHERE patient_id = $1",
        "DELETE FROM documents WHERE patient_id = $1",
        "DELETE FROM patient_professionals WHERE patient_id = $1",
        "DELETE FROM care_team_patients WHERE patient_id = $1",
        "DELETE FROM patient_consents WHERE patient_id = $1",
        "DELETE FROM break_glass WHERE patient_id = $1 OR actor_id = $1",
        "DELETE FROM appointments WHERE patient_id = $1",
        "DELETE FROM agenda_feeds WHERE patient_id = $1",
        "DELETE FROM recommendation_marks WHERE patient_id = $1",
        "DELETE FROM agenda_reminders WHERE patient_id = $1",
        "DELETE FROM service_grants WHERE patient_id = $1",
        "DELETE FROM oauth_codes WHERE patient_id = $1",
        "DELETE FROM oauth_tokens WHERE patient_id = $1",
        "DELETE FROM service_notices WHERE patient_id = $1",
        "DELETE FROM service_notifications WHERE patient_id = $1",
        "DELETE FROM quotas WHERE account_id = $1",
        "DELETE FROM patient_settings WHERE account_id = $1",
        "DELETE FROM api_sessions WHERE account_id = $1",
        "DELETE FROM activation_codes WHERE account_id = $1",
        "DELETE FROM accounts WHERE id = $1",
    ] {
        sqlx::query(sql).bind(id).execute(&mut *tx).await?;
    }
    sqlx::query("DELETE FROM indexing_outcomes WHERE recipient = $1")
        .bind(address)
        .execute(&mut *tx)
        .await?;
    // Messages no folder, thread, document or queue row uses any more.
    const UNUSED: &str = "NOT EXISTS (SELECT 1 FROM mailbox_messages x WHERE x.message_id = {c}) \
         AND NOT EXISTS (SELECT 1 FROM thread_messages x WHERE x.message_id = {c}) \
         AND NOT EXISTS (SELECT 1 FROM documents x WHERE x.message_id = {c}) \
         AND NOT EXISTS (SELECT 1 FROM queue x WHERE x.message_id = {c})";
    for chunk in messages.chunks(PURGE_CHUNK) {
        let ids = list(chunk.len(), 1);
        for sql in [
            format!(
                "DELETE FROM message_recipients WHERE message_id IN ({ids}) AND {}",
                UNUSED.replace("{c}", "message_recipients.message_id")
            ),
            format!(
                "DELETE FROM messages WHERE id IN ({ids}) AND {}",
                UNUSED.replace("{c}", "messages.id")
            ),
        ] {
            let mut q = sqlx::query(&sql);
            for m in chunk {
                q = q.bind(*m);
            }
            q.execute(&mut *tx).await?;
        }
    }
    for chunk in blobs.chunks(PURGE_CHUNK) {
        let sql = format!(
            "DELETE FROM blobs WHERE hash IN ({}) \
             AND NOT EXISTS (SELECT 1 FROM messages x WHERE x.blob_hash = blobs.hash) \
             AND NOT EXISTS (SELECT 1 FROM documents x WHERE x.blob_hash = blobs.hash)",
            list(chunk.len(), 1)
        );
        let mut q = sqlx::query(&sql);
        for b in chunk {
            q = q.bind(b);
        }
        q.execute(&mut *tx).await?;
    }
    Ok(())
}

impl Store {
    /// Whether the space of `ins` is closed (archived, not purged): the
    /// logins tell its patient so, once their password is verified.
    pub async fn space_closed(&self, ins: &str) -> Result<bool, StoreError> {
        Ok(self.space_state_by_ins(ins).await?.as_deref() == Some("closed"))
    }
}
