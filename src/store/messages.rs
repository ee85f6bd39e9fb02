//! Messages: content blobs (stored once by hash), message rows, recipients, and
//! per-folder entries with UID and MODSEQ allocated from the folder's counters.

use sqlx::Acquire;
use sqlx::AnyConnection;

use super::group_commit::Admit;
use super::quota::AccountQuota;
use super::{Store, StoreError};

/// One envelope recipient of a message being stored.
#[derive(Debug, Clone)]
pub struct NewRecipient {
    /// Normalised recipient address.
    pub address: String,
    /// RFC 3461 ORCPT, as received.
    pub orcpt: Option<String>,
    /// RFC 3461 NOTIFY flags (smtp-proto bits).
    pub notify: i64,
    /// Folder to file the message in (None: recipient kept for DSN only).
    pub mailbox_id: Option<i64>,
    /// Another operator's recipient: queued for the relay in the same transaction.
    pub remote: bool,
    /// The recipient is this patient account: the message joins its threads.
    pub patient_id: Option<i64>,
}

/// A message ready to be written (content final, trace headers included).
#[derive(Debug, Clone)]
pub struct NewMessage {
    /// The bytes as stored and later served by IMAP.
    pub data: Vec<u8>,
    /// Lower-case hex SHA-256 of `data`.
    pub hash: String,
    /// Reverse path ("" for the null sender).
    pub mail_from: String,
    /// The Message-ID header, for threading.
    pub header_message_id: Option<String>,
    /// RFC 3461 ENVID.
    pub dsn_envid: Option<String>,
    /// RFC 3461 RET (FULL / HDRS).
    pub dsn_ret: Option<String>,
    /// `mx`, `submission`, …: how it reached us.
    pub origin: &'static str,
    /// Unix seconds of acceptance (INTERNALDATE).
    pub received_at: i64,
    /// Envelope recipients.
    pub recipients: Vec<NewRecipient>,
    /// IMAP ENVELOPE as JSON: only for rows written before the wire form
    /// existed; new messages carry `imap_envelope` instead.
    pub envelope: Option<String>,
    /// IMAP ENVELOPE in wire form (computed once, at delivery: `mime::structure::wire`).
    pub imap_envelope: Option<Vec<u8>>,
    /// IMAP BODYSTRUCTURE as JSON.
    pub bodystructure: Option<String>,
    /// What SEARCH matches for SUBJECT/FROM/TO/CC/BCC (computed once, at
    /// delivery: `delivery::prepare::search_headers`), so SEARCH need not read the content.
    pub search: SearchHeaders,
    /// Flags every filed copy starts with (APPEND), space-separated.
    pub flags: String,
    /// How the message relates to patient threads.
    pub thread: Option<super::threads::ThreadLink>,
    /// Documents and profile items it files in patients' records.
    pub dossier: Option<Box<super::dossier::DossierFiling>>,
    /// Appointments it files in patients' agendas.
    pub agenda: Option<Box<super::agenda::AgendaFiling>>,
}

/// The text IMAP SEARCH matches for SUBJECT, FROM, TO, CC and BCC, stored
/// with the message so that SEARCH on those keys reads neither the content nor
/// parses it (issue 17). Each header of that name is one line, decoded and
/// lower-cased, every line starting with `\n` (`""`: no such header). None:
/// not stored (rows written before, or a value a line cannot hold): SEARCH
/// reads the content instead.
/// Read from the `search_*` columns of a row (`#[sqlx(flatten)]`).
#[derive(Debug, Clone, Default, PartialEq, Eq, sqlx::FromRow)]
pub struct SearchHeaders {
    /// The Subject fields.
    #[sqlx(rename = "search_subject")]
    pub subject: Option<String>,
    /// The From fields (address lists written as Dovecot searches them).
    #[sqlx(rename = "search_from")]
    pub from: Option<String>,
    /// The To fields.
    #[sqlx(rename = "search_to")]
    pub to: Option<String>,
    /// The Cc fields.
    #[sqlx(rename = "search_cc")]
    pub cc: Option<String>,
    /// The Bcc fields.
    #[sqlx(rename = "search_bcc")]
    pub bcc: Option<String>,
}

impl NewMessage {
    /// The folders it is filed in, each once, in recipient order.
    pub fn folders(&self) -> Vec<i64> {
        folders_of(&self.recipients)
    }
}

/// The folders a message to `recipients` is filed in, each once, in recipient order.
pub fn folders_of(recipients: &[NewRecipient]) -> Vec<i64> {
    let mut folders: Vec<i64> = Vec::new();
    for r in recipients.iter().filter(|r| !r.remote) {
        if let Some(f) = r.mailbox_id
            && !folders.contains(&f)
        {
            folders.push(f);
        }
    }
    folders
}

/// Where a stored message landed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    /// Message row id.
    pub message_id: i64,
    /// (folder id, UID) for every filed copy.
    pub placements: Vec<(i64, i64)>,
}

/// A message as filed in a folder.
#[derive(Debug, Clone)]
pub struct FiledMessage {
    /// UID in the folder.
    pub uid: i64,
    /// Content.
    pub data: Vec<u8>,
    /// Flags, space-separated.
    pub flags: String,
    /// Not yet seen by any session (RFC 3501 \\Recent).
    pub recent: bool,
}

/// Joins a stored message to its patient threads and files its documents in
/// patients' records (same transaction as the message).
pub(super) async fn link_on(
    conn: &mut AnyConnection,
    m: &NewMessage,
    message_id: i64,
) -> Result<(), StoreError> {
    match &m.thread {
        Some(super::threads::ThreadLink::ToPatient(incoming)) => {
            for r in &m.recipients {
                if let Some(patient_id) = r.patient_id {
                    super::threads::on_delivery(
                        &mut *conn,
                        patient_id,
                        message_id,
                        incoming,
                        m.received_at,
                    )
                    .await?;
                }
            }
        }
        Some(super::threads::ThreadLink::FromPatient { thread_id }) => {
            super::threads::on_patient_message(
                &mut *conn,
                *thread_id,
                message_id,
                m.header_message_id.as_deref(),
                m.received_at,
            )
            .await?;
        }
        None => {}
    }
    if let Some(filing) = &m.dossier {
        super::dossier::file_on(
            &mut *conn,
            Some((message_id, m.hash.as_str())),
            filing,
            m.received_at,
        )
        .await?;
    }
    if let Some(filing) = &m.agenda {
        super::agenda::file_on(&mut *conn, Some(message_id), filing, m.received_at).await?;
    }
    Ok(())
}

/// Why one group of a batch was not stored.
#[derive(Debug)]
pub enum GroupError<R> {
    /// The caller's quota rule refused it; nothing of it was written.
    Refused(R),
    /// The store failed on it.
    Store(StoreError),
}

impl Store {
    /// Writes a batch of messages in one transaction (one fsync for all: group commit).
    ///
    /// Each message gets its own savepoint, so one failing message does not
    /// fail the others. The outer `Err` means the commit itself failed and
    /// nothing was stored.
    pub async fn insert_batch(
        &self,
        batch: &[&NewMessage],
    ) -> Result<Vec<Result<Stored, StoreError>>, StoreError> {
        let groups: Vec<&[NewMessage]> = batch.iter().map(|m| std::slice::from_ref(*m)).collect();
        let results = self.insert_groups(&groups).await?;
        Ok(results
            .into_iter()
            .map(|r| {
                r.and_then(|stored| {
                    stored
                        .into_iter()
                        .next()
                        .ok_or_else(|| StoreError::NotFound("stored message".into()))
                })
            })
            .collect())
    }

    /// Writes groups of messages in one transaction (group commit), each
    /// group whole or not at all (MULTIAPPEND), with no quota rule (tools
    /// and tests; deliveries go through [`Store::insert_groups_within`]).
    pub async fn insert_groups(
        &self,
        groups: &[&[NewMessage]],
    ) -> Result<Vec<Result<Vec<Stored>, StoreError>>, StoreError> {
        let any = |_: &AccountQuota, _: u64, _: u64| Ok::<(), std::convert::Infallible>(());
        Ok(self
            .insert_groups_within(groups, &any)
            .await?
            .into_iter()
            .map(|r| {
                r.map_err(|e| match e {
                    GroupError::Store(e) => e,
                    GroupError::Refused(never) => match never {},
                })
            })
            .collect())
    }

    /// Writes groups of messages in one transaction (group commit), each
    /// group whole or not at all (MULTIAPPEND), each only if `admit` lets
    /// its accounts' quotas take it, judged under the write lock so that
    /// concurrent deliveries cannot overshoot a quota: the batch is written
    /// with one statement per table; when that fails, group by group, each
    /// under its own savepoint, so that one failing group does not fail the
    /// others. The outer `Err` means the commit itself failed and nothing
    /// was stored.
    pub async fn insert_groups_within<R>(
        &self,
        groups: &[&[NewMessage]],
        admit: &Admit<'_, R>,
    ) -> Result<Vec<Result<Vec<Stored>, GroupError<R>>>, StoreError> {
        let mut conn = self.writer_connection().await?;
        let mut tx = sqlx::Connection::begin(&mut *conn).await?;
        let results = match super::group_commit::write(&mut tx, self.backend(), groups, admit).await
        {
            Ok(results) => results
                .into_iter()
                .map(|r| r.map_err(GroupError::Refused))
                .collect(),
            Err(e) => {
                tracing::debug!(error = %e, groups = groups.len(), "batch write failed, storing group by group");
                tx.rollback().await?;
                tx = sqlx::Connection::begin(&mut *conn).await?;
                let mut results = Vec::with_capacity(groups.len());
                for group in groups {
                    let mut sp = tx.begin().await?;
                    match super::group_commit::write(&mut sp, self.backend(), &[*group], admit)
                        .await
                    {
                        Ok(mut written) => {
                            sp.commit().await?;
                            results.push(
                                written
                                    .pop()
                                    .ok_or_else(|| {
                                        GroupError::Store(StoreError::NotFound(
                                            "written group".into(),
                                        ))
                                    })
                                    .and_then(|r| r.map_err(GroupError::Refused)),
                            );
                        }
                        Err(e) => {
                            sp.rollback().await?;
                            results.push(Err(GroupError::Store(e)));
                        }
                    }
                }
                results
            }
        };
        tx.commit().await?;
        self.wrote();
        for (stored, group) in results.iter().zip(groups) {
            let Ok(stored) = stored else { continue };
            for (stored, m) in stored.iter().zip(group.iter()) {
                for (folder, _) in &stored.placements {
                    self.announce_folder(*folder).await;
                }
                if m.recipients.iter().any(|r| r.remote) {
                    self.announce_queue().await;
                }
            }
        }
        Ok(results)
    }

    /// The messages of one folder, by UID (tests and tools; IMAP has its own queries).
    pub async fn folder_messages(&self, mailbox_id: i64) -> Result<Vec<FiledMessage>, StoreError> {
        let rows: Vec<(i64, String, i64, Vec<u8>)> = sqlx::query_as(
            "SELECT mm.uid, mm.flags, mm.recent, b.data FROM mailbox_messages mm \
             JOIN messages m ON m.id = mm.message_id JOIN blobs b ON b.hash = m.blob_hash \
             WHERE mm.mailbox_id = $1 ORDER BY mm.uid",
        )
        .bind(mailbox_id)
        .fetch_all(self.pool())
        .await?;
        Ok(rows
            .into_iter()
            .map(|(uid, flags, recent, data)| FiledMessage {
                uid,
                data,
                flags,
                recent: recent != 0,
            })
            .collect())
    }

    /// The DSN parameters stored with a message's recipients: (recipient, orcpt, notify).
    pub async fn message_recipients(
        &self,
        message_id: i64,
    ) -> Result<Vec<(String, Option<String>, i64)>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT recipient, orcpt, notify FROM message_recipients WHERE message_id = $1 ORDER BY recipient",
        )
        .bind(message_id)
        .fetch_all(self.pool())
        .await?)
    }
}
