//! Messages as entries of a folder: what IMAP lists, flags, copies, moves and expunges.
//! Every change takes a new MODSEQ from the folder row, inside one transaction.

use sqlx::AnyConnection;

use super::{Store, StoreError};

/// What IMAP knows of a message in a folder without reading its content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// UID in the folder.
    pub uid: i64,
    /// The message row.
    pub message_id: i64,
    /// Flags and keywords, space-separated (never `\Recent`).
    pub flags: String,
    /// RFC 3501 \Recent.
    pub recent: bool,
    /// MODSEQ of the last change.
    pub modseq: i64,
    /// INTERNALDATE, Unix seconds.
    pub internal_date: i64,
    /// RFC822.SIZE.
    pub size: i64,
    /// Content hash (to read the blob).
    pub blob_hash: String,
    /// ENVELOPE as stored at delivery before the wire form existed (JSON).
    pub envelope: Option<String>,
    /// ENVELOPE in IMAP wire form, as stored at delivery (`mime::structure::wire`).
    pub imap_envelope: Option<Vec<u8>>,
    /// BODYSTRUCTURE as stored at delivery (JSON).
    pub bodystructure: Option<String>,
    /// What SEARCH matches for SUBJECT/FROM/TO/CC/BCC, as stored at delivery
    /// (read by [`Store::entries`] only: SEARCH then skips the content).
    pub search: super::messages::SearchHeaders,
}

/// How STORE changes flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlagOp {
    /// Replace the flags.
    Replace,
    /// Add these flags.
    Add,
    /// Remove these flags.
    Remove,
}

/// The outcome of a STORE.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FlagChange {
    /// Entries whose flags were written: (uid, new flags, modseq).
    pub changed: Vec<(i64, String, i64)>,
    /// UIDs not changed because they were modified after UNCHANGEDSINCE (RFC 7162).
    pub conflicts: Vec<i64>,
}

const ENTRY_COLUMNS: &str = "mm.uid, mm.message_id, mm.flags, mm.recent, mm.modseq, mm.internal_date, \
     m.size, m.blob_hash, m.envelope, m.imap_envelope, m.bodystructure, \
     m.search_subject, m.search_from, m.search_to, m.search_cc, m.search_bcc";

/// The search columns of [`ENTRY_COLUMNS`], and what replaces them where only
/// SEARCH needs them.
const SEARCH_COLUMNS: &str =
    "m.search_subject, m.search_from, m.search_to, m.search_cc, m.search_bcc";
const NO_SEARCH_COLUMNS: &str = "CAST(NULL AS TEXT) AS search_subject, \
     CAST(NULL AS TEXT) AS search_from, CAST(NULL AS TEXT) AS search_to, \
     CAST(NULL AS TEXT) AS search_cc, CAST(NULL AS TEXT) AS search_bcc";

/// An entry as read ([`ENTRY_COLUMNS`]), \Recent as an integer.
#[derive(sqlx::FromRow)]
struct EntryRow {
    uid: i64,
    message_id: i64,
    flags: String,
    recent: i64,
    modseq: i64,
    internal_date: i64,
    size: i64,
    blob_hash: String,
    envelope: Option<String>,
    imap_envelope: Option<Vec<u8>>,
    bodystructure: Option<String>,
    #[sqlx(flatten)]
    search: super::messages::SearchHeaders,
}

impl From<EntryRow> for Entry {
    fn from(r: EntryRow) -> Entry {
        Entry {
            uid: r.uid,
            message_id: r.message_id,
            flags: r.flags,
            recent: r.recent != 0,
            modseq: r.modseq,
            internal_date: r.internal_date,
            size: r.size,
            blob_hash: r.blob_hash,
            envelope: r.envelope,
            imap_envelope: r.imap_envelope,
            bodystructure: r.bodystructure,
            search: r.search,
        }
    }
}

/// Normalises a flag list: one of each (case-insensitive), in a stable order.
pub fn normalize_flags<'a>(flags: impl IntoIterator<Item = &'a str>) -> String {
    let mut out: Vec<&str> = Vec::new();
    for f in flags {
        if !f.is_empty() && !out.iter().any(|o| o.eq_ignore_ascii_case(f)) {
            out.push(f);
        }
    }
    out.sort_by_key(|f| (!f.starts_with('\\'), f.to_ascii_lowercase()));
    out.join(" ")
}

/// [`Store::store_flags`] on the writers' connection, in one transaction.
async fn store_flags_on(
    conn: &mut AnyConnection,
    folder_id: i64,
    uids: &[i64],
    op: FlagOp,
    flags: &[String],
    unchanged_since: Option<i64>,
) -> Result<FlagChange, StoreError> {
    let mut tx = sqlx::Connection::begin(conn).await?;
    let modseq = next_modseq(&mut tx, folder_id).await?;
    let mut change = FlagChange::default();
    // Only the rows between the lowest and highest UID asked for.
    let (lo, hi) = (
        uids.iter().min().copied().unwrap_or(0),
        uids.iter().max().copied().unwrap_or(-1),
    );
    let current: Vec<(i64, String, i64)> = sqlx::query_as(
        "SELECT uid, flags, modseq FROM mailbox_messages WHERE mailbox_id = $1 AND uid >= $2 AND uid <= $3 ORDER BY uid",
    )
    .bind(folder_id)
    .bind(lo)
    .bind(hi)
    .fetch_all(&mut *tx)
    .await?;
    let wanted: std::collections::HashSet<i64> = uids.iter().copied().collect();
    for (uid, old, old_modseq) in current {
        if !wanted.contains(&uid) {
            continue;
        }
        if unchanged_since.is_some_and(|u| old_modseq > u) {
            change.conflicts.push(uid);
            continue;
        }
        let new = match op {
            FlagOp::Replace => normalize_flags(flags.iter().map(String::as_str)),
            FlagOp::Add => normalize_flags(old.split(' ').chain(flags.iter().map(String::as_str))),
            FlagOp::Remove => normalize_flags(
                old.split(' ')
                    .filter(|f| !flags.iter().any(|x| x.eq_ignore_ascii_case(f))),
            ),
        };
        if new == old && unchanged_since.is_none() {
            continue;
        }
        sqlx::query(
            "UPDATE mailbox_messages SET flags = $1, modseq = $2 WHERE mailbox_id = $3 AND uid = $4",
        )
        .bind(&new)
        .bind(modseq)
        .bind(folder_id)
        .bind(uid)
        .execute(&mut *tx)
        .await?;
        change.changed.push((uid, new, modseq));
    }
    tx.commit().await?;
    Ok(change)
}

async fn next_modseq(conn: &mut AnyConnection, folder_id: i64) -> Result<i64, StoreError> {
    sqlx::query_scalar("UPDATE mailboxes SET highestmodseq = highestmodseq + 1 WHERE id = $1 RETURNING highestmodseq")
        .bind(folder_id)
        .fetch_optional(&mut *conn)
        .await?
        .ok_or_else(|| StoreError::NotFound(format!("mailbox {folder_id}")))
}

/// Takes the row locks of these folders (in id order, so that two
/// transactions over the same folders never wait for each other in a cycle)
/// before anything is read: what the transaction then reads of them is what it
/// changes. On SQLite this takes the database's write lock up front. Returns
/// each existing folder's account, in the order given (quota usage).
pub(super) async fn lock_folders(
    conn: &mut AnyConnection,
    folders: &[i64],
) -> Result<Vec<Option<i64>>, StoreError> {
    let mut ids = folders.to_vec();
    ids.sort_unstable();
    ids.dedup();
    let mut owners = std::collections::HashMap::with_capacity(ids.len());
    for id in ids {
        let owner: Option<i64> = sqlx::query_scalar(
            "UPDATE mailboxes SET highestmodseq = highestmodseq WHERE id = $1 RETURNING account_id",
        )
        .bind(id)
        .fetch_optional(&mut *conn)
        .await?;
        owners.insert(id, owner);
    }
    Ok(folders
        .iter()
        .map(|f| owners.get(f).copied().flatten())
        .collect())
}

/// A stored search field (`messages.search_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SearchField {
    /// `search_subject`.
    Subject,
    /// `search_from`.
    From,
    /// `search_to`.
    To,
    /// `search_cc`.
    Cc,
    /// `search_bcc`.
    Bcc,
}

impl SearchField {
    fn column(self) -> &'static str {
        match self {
            SearchField::Subject => "m.search_subject",
            SearchField::From => "m.search_from",
            SearchField::To => "m.search_to",
            SearchField::Cc => "m.search_cc",
            SearchField::Bcc => "m.search_bcc",
        }
    }
}

/// A condition every wanted entry meets (a SEARCH key in the top-level
/// conjunction): its stored text of `field` holds `needle` (lower-cased)
/// on one line, as `imap::op::search` matches it. Entries without the
/// stored text are kept: SEARCH reads their content instead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredNeedle {
    /// The field.
    pub field: SearchField,
    /// The lower-cased text to find.
    pub needle: String,
}

impl Store {
    /// Every entry of a folder that may meet `needles`, by UID, with the
    /// stored search text (SEARCH): the database leaves out the rows whose
    /// stored text cannot match, so a SEARCH SUBJECT reads only its hits.
    /// No BODYSTRUCTURE (SEARCH and SORT have no use for it), and the JSON
    /// ENVELOPE only for rows without the wire form: most of a row's size.
    pub async fn entries(
        &self,
        folder_id: i64,
        needles: &[StoredNeedle],
    ) -> Result<Vec<Entry>, StoreError> {
        let columns = ENTRY_COLUMNS
            .replace(
                "m.envelope,",
                "CASE WHEN m.imap_envelope IS NULL THEN m.envelope END AS envelope,",
            )
            .replace("m.bodystructure", "CAST(NULL AS TEXT) AS bodystructure");
        let find = match self.backend() {
            super::Backend::Sqlite => "instr",
            super::Backend::Postgres => "strpos",
        };
        let mut conditions = String::new();
        let mut texts: Vec<&str> = Vec::new();
        for n in needles {
            let column = n.field.column();
            let condition = if n.needle.is_empty() {
                // There is such a header.
                format!("({column} IS NULL OR {column} <> '')")
            } else if n.needle.contains('\n') {
                // No stored line holds a newline.
                format!("{column} IS NULL")
            } else {
                texts.push(&n.needle);
                format!(
                    "({column} IS NULL OR {find}({column}, ${}) > 0)",
                    texts.len() + 1
                )
            };
            conditions.push_str(" AND ");
            conditions.push_str(&condition);
        }
        let sql = format!(
            "SELECT {columns} FROM mailbox_messages mm JOIN messages m ON m.id = mm.message_id \
             WHERE mm.mailbox_id = $1{conditions} ORDER BY mm.uid"
        );
        let mut query = sqlx::query_as::<_, EntryRow>(&sql).bind(folder_id);
        for text in texts {
            query = query.bind(text);
        }
        let rows = query.fetch_all(self.pool()).await?;
        Ok(rows.into_iter().map(Entry::from).collect())
    }

    /// Entries with UID in `[first, last]`.
    /// The stored ENVELOPE and BODYSTRUCTURE are read only when asked for: they are
    /// most of a row's size.
    pub async fn entries_in_range(
        &self,
        folder_id: i64,
        first: i64,
        last: i64,
        envelope: bool,
        bodystructure: bool,
    ) -> Result<Vec<Entry>, StoreError> {
        let null_blob = match self.backend() {
            super::Backend::Sqlite => "CAST(NULL AS BLOB)",
            super::Backend::Postgres => "CAST(NULL AS BYTEA)",
        };
        let columns = ENTRY_COLUMNS
            .replace(SEARCH_COLUMNS, NO_SEARCH_COLUMNS)
            .replace(
                "m.envelope, m.imap_envelope",
                &if envelope {
                    // The JSON only matters for rows without the wire form.
                    "CASE WHEN m.imap_envelope IS NULL THEN m.envelope END AS envelope, \
                     m.imap_envelope"
                        .to_string()
                } else {
                    format!("CAST(NULL AS TEXT) AS envelope, {null_blob} AS imap_envelope")
                },
            )
            .replace(
                "m.bodystructure",
                if bodystructure {
                    "m.bodystructure"
                } else {
                    "CAST(NULL AS TEXT) AS bodystructure"
                },
            );
        let rows: Vec<EntryRow> = sqlx::query_as(&format!(
            "SELECT {columns} FROM mailbox_messages mm JOIN messages m ON m.id = mm.message_id \
             WHERE mm.mailbox_id = $1 AND mm.uid >= $2 AND mm.uid <= $3 ORDER BY mm.uid"
        ))
        .bind(folder_id)
        .bind(first)
        .bind(last)
        .fetch_all(self.pool())
        .await?;
        Ok(rows.into_iter().map(Entry::from).collect())
    }

    /// (uid, flags, recent) of every entry: what SELECT needs, without content metadata.
    pub async fn entry_flags(
        &self,
        folder_id: i64,
    ) -> Result<Vec<(i64, String, bool)>, StoreError> {
        let rows: Vec<(i64, String, i64)> = sqlx::query_as(
            "SELECT uid, flags, recent FROM mailbox_messages WHERE mailbox_id = $1 ORDER BY uid",
        )
        .bind(folder_id)
        .fetch_all(self.pool())
        .await?;
        Ok(rows
            .into_iter()
            .map(|(uid, flags, recent)| (uid, flags, recent != 0))
            .collect())
    }

    /// The Message-ID headers of these entries.
    pub async fn header_message_ids(
        &self,
        folder_id: i64,
        uids: &[i64],
    ) -> Result<Vec<String>, StoreError> {
        let mut out = Vec::new();
        for uid in uids {
            let id: Option<Option<String>> = sqlx::query_scalar(
                "SELECT m.header_message_id FROM mailbox_messages mm JOIN messages m ON m.id = mm.message_id \
                 WHERE mm.mailbox_id = $1 AND mm.uid = $2",
            )
            .bind(folder_id)
            .bind(uid)
            .fetch_optional(self.pool())
            .await?;
            if let Some(Some(id)) = id {
                out.push(id);
            }
        }
        Ok(out)
    }

    /// The UIDs of a folder above `after`, ascending (a session's view of
    /// sequence numbers: all of them at SELECT, then what arrived since).
    pub async fn folder_uids(&self, folder_id: i64, after: i64) -> Result<Vec<i64>, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT uid FROM mailbox_messages WHERE mailbox_id = $1 AND uid > $2 ORDER BY uid",
        )
        .bind(folder_id)
        .bind(after)
        .fetch_all(&mut *self.hot_reader().await?)
        .await?)
    }

    /// (uid, flags, modseq) of entries changed after `modseq`.
    pub async fn changed_since(
        &self,
        folder_id: i64,
        modseq: i64,
    ) -> Result<Vec<(i64, String, i64)>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT uid, flags, modseq FROM mailbox_messages WHERE mailbox_id = $1 AND modseq > $2 ORDER BY uid",
        )
        .bind(folder_id)
        .bind(modseq)
        .fetch_all(&mut *self.hot_reader().await?)
        .await?)
    }

    /// UIDs expunged from a folder after `modseq` (QRESYNC tombstones), ascending.
    pub async fn vanished_since(
        &self,
        folder_id: i64,
        modseq: i64,
    ) -> Result<Vec<i64>, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT uid FROM imap_vanished WHERE mailbox_id = $1 AND modseq > $2 ORDER BY uid",
        )
        .bind(folder_id)
        .bind(modseq)
        .fetch_all(&mut *self.hot_reader().await?)
        .await?)
    }

    /// (uid, content) of every entry, streamed in UID order: one query instead of
    /// one per message, without holding the folder in memory.
    pub fn stream_contents(
        &self,
        folder_id: i64,
    ) -> impl futures_core::Stream<Item = Result<(i64, Vec<u8>), StoreError>> + '_ {
        use futures_util::StreamExt;
        sqlx::query_as(
            "SELECT mm.uid, b.data FROM mailbox_messages mm JOIN messages m ON m.id = mm.message_id \
             JOIN blobs b ON b.hash = m.blob_hash WHERE mm.mailbox_id = $1 ORDER BY mm.uid",
        )
        .bind(folder_id)
        .fetch(self.pool())
        .map(|row| row.map_err(StoreError::from))
    }

    /// The content of a message.
    pub async fn blob(&self, hash: &str) -> Result<Vec<u8>, StoreError> {
        sqlx::query_scalar("SELECT data FROM blobs WHERE hash = $1")
            .bind(hash)
            .fetch_optional(self.pool())
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("blob {hash}")))
    }

    /// Takes \Recent off every entry of the folder; returns the UIDs that had it
    /// (they are recent for the session that selected the folder, RFC 3501 §2.3.2).
    /// Committed as [`Store::relax_commits`] says.
    pub async fn claim_recent(&self, folder_id: i64) -> Result<Vec<i64>, StoreError> {
        let mut conn = self.writer_connection().await?;
        self.relax_commits(&mut conn, true).await?;
        let claimed: Result<Vec<i64>, sqlx::Error> = sqlx::query_scalar(
            "UPDATE mailbox_messages SET recent = 0 WHERE mailbox_id = $1 AND recent = 1 RETURNING uid",
        )
        .bind(folder_id)
        .fetch_all(&mut *conn)
        .await;
        self.relax_commits(&mut conn, false).await?;
        let mut uids = claimed?;
        uids.sort_unstable();
        Ok(uids)
    }

    /// Changes flags of `uids`; with `unchanged_since`, entries modified later are left alone.
    /// Committed as [`Store::relax_commits`] says: a flag change is not worth a disk flush.
    pub async fn store_flags(
        &self,
        folder_id: i64,
        uids: &[i64],
        op: FlagOp,
        flags: &[String],
        unchanged_since: Option<i64>,
    ) -> Result<FlagChange, StoreError> {
        let mut conn = self.writer_connection().await?;
        self.relax_commits(&mut conn, true).await?;
        let change = store_flags_on(&mut conn, folder_id, uids, op, flags, unchanged_since).await;
        self.relax_commits(&mut conn, false).await?;
        drop(conn);
        let change = change?;
        self.announce_folder(folder_id).await;
        Ok(change)
    }

    /// Copies entries into `to` (same message rows, new UIDs); returns (source uid, new uid) pairs.
    pub async fn copy_messages(
        &self,
        from: i64,
        uids: &[i64],
        to: i64,
    ) -> Result<Vec<(i64, i64)>, StoreError> {
        let mut conn = self.writer_connection().await?;
        let mut tx = sqlx::Connection::begin(&mut *conn).await?;
        let owners = lock_folders(&mut tx, &[from, to]).await?;
        let (pairs, bytes) = copy_on(&mut tx, from, uids, to).await?;
        if let Some(account) = owners[1] {
            let usage = [(account, bytes, pairs.len() as i64)];
            super::quota::change_usage_on(&mut tx, &usage).await?;
        }
        tx.commit().await?;
        drop(conn);
        self.announce_folder(to).await;
        Ok(pairs)
    }

    /// Moves entries into `to` (RFC 6851): copy and expunge in one transaction.
    pub async fn move_messages(
        &self,
        from: i64,
        uids: &[i64],
        to: i64,
    ) -> Result<Vec<(i64, i64)>, StoreError> {
        let mut conn = self.writer_connection().await?;
        let mut tx = sqlx::Connection::begin(&mut *conn).await?;
        let owners = lock_folders(&mut tx, &[from, to]).await?;
        let (pairs, bytes) = copy_on(&mut tx, from, uids, to).await?;
        // Within one account (always, from IMAP) the usage does not change.
        if owners[0] != owners[1] {
            let n = pairs.len() as i64;
            let usage: Vec<super::quota::UsageChange> =
                [(owners[1], bytes, n), (owners[0], -bytes, -n)]
                    .into_iter()
                    .filter_map(|(account, b, n)| account.map(|a| (a, b, n)))
                    .collect();
            super::quota::change_usage_on(&mut tx, &usage).await?;
        }
        if !pairs.is_empty() {
            let modseq = next_modseq(&mut tx, from).await?;
            for (uid, _) in &pairs {
                sqlx::query("DELETE FROM mailbox_messages WHERE mailbox_id = $1 AND uid = $2")
                    .bind(from)
                    .bind(uid)
                    .execute(&mut *tx)
                    .await?;
                remember_vanished(&mut tx, from, *uid, modseq).await?;
            }
        }
        tx.commit().await?;
        drop(conn);
        self.announce_folder(from).await;
        self.announce_folder(to).await;
        Ok(pairs)
    }

    /// Removes entries flagged \Deleted (only among `uids` when given); returns the removed UIDs.
    pub async fn expunge(
        &self,
        folder_id: i64,
        uids: Option<&[i64]>,
    ) -> Result<Vec<i64>, StoreError> {
        let mut conn = self.writer_connection().await?;
        let mut tx = sqlx::Connection::begin(&mut *conn).await?;
        // Under the folder's lock: a concurrent STORE -FLAGS \Deleted or
        // EXPUNGE has committed before these flags are read.
        let owner = lock_folders(&mut tx, &[folder_id]).await?[0];
        // The database leaves out the entries without \Deleted (the check
        // below is the exact one), and UID EXPUNGE the UIDs out of its range:
        // the write lock is held while this reads.
        let (lo, hi) = match uids {
            Some(u) => (
                u.iter().min().copied().unwrap_or(0),
                u.iter().max().copied().unwrap_or(-1),
            ),
            None => (0, i64::MAX),
        };
        let find = match self.backend() {
            super::Backend::Sqlite => "instr",
            super::Backend::Postgres => "strpos",
        };
        let rows: Vec<(i64, String, i64)> = sqlx::query_as(&format!(
            "SELECT mm.uid, mm.flags, m.size FROM mailbox_messages mm \
             JOIN messages m ON m.id = mm.message_id WHERE mm.mailbox_id = $1 \
             AND mm.uid >= $2 AND mm.uid <= $3 AND {find}(LOWER(mm.flags), $4) > 0 ORDER BY mm.uid"
        ))
        .bind(folder_id)
        .bind(lo)
        .bind(hi)
        .bind("\\deleted")
        .fetch_all(&mut *tx)
        .await?;
        let only: Option<std::collections::HashSet<i64>> =
            uids.map(|u| u.iter().copied().collect());
        let mut removed = Vec::new();
        let mut bytes = 0;
        for (uid, flags, size) in rows {
            if !flags
                .split(' ')
                .any(|f| f.eq_ignore_ascii_case("\\Deleted"))
            {
                continue;
            }
            if only.as_ref().is_some_and(|set| !set.contains(&uid)) {
                continue;
            }
            sqlx::query("DELETE FROM mailbox_messages WHERE mailbox_id = $1 AND uid = $2")
                .bind(folder_id)
                .bind(uid)
                .execute(&mut *tx)
                .await?;
            removed.push(uid);
            bytes += size;
        }
        if !removed.is_empty() {
            if let Some(account) = owner {
                let usage = [(account, -bytes, -(removed.len() as i64))];
                super::quota::change_usage_on(&mut tx, &usage).await?;
            }
            let modseq = next_modseq(&mut tx, folder_id).await?;
            for &uid in &removed {
                remember_vanished(&mut tx, folder_id, uid, modseq).await?;
            }
        }
        tx.commit().await?;
        drop(conn);
        if !removed.is_empty() {
            self.announce_folder(folder_id).await;
        }
        Ok(removed)
    }
}

/// Records that `uid` left `folder_id` at `modseq` (QRESYNC VANISHED).
async fn remember_vanished(
    conn: &mut AnyConnection,
    folder_id: i64,
    uid: i64,
    modseq: i64,
) -> Result<(), StoreError> {
    sqlx::query("INSERT INTO imap_vanished (mailbox_id, uid, modseq) VALUES ($1, $2, $3)")
        .bind(folder_id)
        .bind(uid)
        .bind(modseq)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Copies the entries `uids` of `from` into `to`: (source UID, new UID)
/// pairs, and the octets copied (quota usage).
async fn copy_on(
    conn: &mut AnyConnection,
    from: i64,
    uids: &[i64],
    to: i64,
) -> Result<(Vec<(i64, i64)>, i64), StoreError> {
    let (lo, hi) = (
        uids.iter().min().copied().unwrap_or(0),
        uids.iter().max().copied().unwrap_or(-1),
    );
    let rows: Vec<(i64, i64, String, i64, i64)> = sqlx::query_as(
        "SELECT mm.uid, mm.message_id, mm.flags, mm.internal_date, m.size FROM mailbox_messages mm \
         JOIN messages m ON m.id = mm.message_id \
         WHERE mm.mailbox_id = $1 AND mm.uid >= $2 AND mm.uid <= $3 ORDER BY mm.uid",
    )
    .bind(from)
    .bind(lo)
    .bind(hi)
    .fetch_all(&mut *conn)
    .await?;
    let wanted: std::collections::HashSet<i64> = uids.iter().copied().collect();
    let mut pairs = Vec::new();
    let mut bytes = 0;
    for (uid, message_id, flags, internal_date, size) in rows {
        if !wanted.contains(&uid) {
            continue;
        }
        let (new_uid, modseq): (i64, i64) = sqlx::query_as(
            "UPDATE mailboxes SET uidnext = uidnext + 1, highestmodseq = highestmodseq + 1 \
             WHERE id = $1 RETURNING uidnext - 1 AS uid, highestmodseq",
        )
        .bind(to)
        .fetch_optional(&mut *conn)
        .await?
        .ok_or_else(|| StoreError::NotFound(format!("mailbox {to}")))?;
        sqlx::query(
            "INSERT INTO mailbox_messages (mailbox_id, uid, message_id, flags, recent, modseq, internal_date) \
             VALUES ($1, $2, $3, $4, 1, $5, $6)",
        )
        .bind(to)
        .bind(new_uid)
        .bind(message_id)
        .bind(&flags)
        .bind(modseq)
        .bind(internal_date)
        .execute(&mut *conn)
        .await?;
        pairs.push((uid, new_uid));
        bytes += size;
    }
    Ok((pairs, bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn synchronous(store: &Store) -> i64 {
        let mut conn = store.writer_connection().await.expect("writer");
        sqlx::query_scalar("PRAGMA synchronous")
            .fetch_one(&mut *conn)
            .await
            .expect("pragma")
    }

    /// Flag and \Recent changes commit without a flush, and whatever happens
    /// to them the writers' connection is durable again for the next write.
    #[tokio::test]
    async fn relaxed_commits_leave_the_writer_durable() {
        let dir = tempfile::tempdir().expect("tempdir");
        let url = format!("sqlite://{}/t.db", dir.path().display());
        let store = Store::open(&url, 2).await.expect("store");
        assert_eq!(synchronous(&store).await, 2, "FULL by default");
        {
            let mut conn = store.writer_connection().await.expect("writer");
            store.relax_commits(&mut conn, true).await.expect("relax");
            let now: i64 = sqlx::query_scalar("PRAGMA synchronous")
                .fetch_one(&mut *conn)
                .await
                .expect("pragma");
            assert_eq!(now, 1, "NORMAL while relaxed");
            store
                .relax_commits(&mut conn, false)
                .await
                .expect("restore");
        }
        assert_eq!(synchronous(&store).await, 2);
        // A flag change that fails (no such folder) and a claim that succeeds.
        let failed = store
            .store_flags(999, &[1], FlagOp::Add, &["\\Seen".into()], None)
            .await;
        assert!(failed.is_err(), "{failed:?}");
        assert_eq!(synchronous(&store).await, 2);
        assert_eq!(
            store.claim_recent(999).await.expect("claim"),
            Vec::<i64>::new()
        );
        assert_eq!(synchronous(&store).await, 2);
    }
}
