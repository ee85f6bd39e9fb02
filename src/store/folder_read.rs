//! What changed in a folder since some marks, read in one statement (one
//! snapshot, one round trip): what an IMAP session reports at each command
//! and what a folder listing (`imap/listing.rs`) catches up with. The
//! statement is a UNION of several kinds of rows, built once per shape.

use super::{Store, StoreError};

/// One change of a folder, as [`Store::listing_since`] reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListingChange {
    /// UID in the folder.
    pub uid: i64,
    /// MODSEQ of the change.
    pub modseq: i64,
    /// Flags and keywords, space-separated (empty when gone).
    pub flags: String,
    /// INTERNALDATE, Unix seconds.
    pub internal_date: i64,
    /// RFC822.SIZE.
    pub size: i64,
    /// ENVELOPE in IMAP wire form.
    pub imap_envelope: Option<Vec<u8>>,
    /// ENVELOPE as JSON, for rows stored before the wire form.
    pub envelope: Option<String>,
    /// The message row.
    pub message_id: i64,
    /// Content hash (to read the blob).
    pub blob_hash: String,
    /// What SEARCH matches for SUBJECT/FROM/TO/CC/BCC, as stored at delivery.
    pub search: super::messages::SearchHeaders,
    /// The entry was expunged (or moved away).
    pub gone: bool,
}

/// The marks a session's check of its folder reads changes after.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChangesSince {
    /// Expunges after this MODSEQ (the last check's HIGHESTMODSEQ).
    pub expunged_after: i64,
    /// New entries above this UID (the highest the session knows).
    pub uid_above: i64,
    /// Flag changes after this MODSEQ (the highest the client was told of).
    pub changed_after: i64,
}

/// What changed in a folder since [`ChangesSince`]'s marks, read in one snapshot.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FolderChanges {
    /// The folder's (HIGHESTMODSEQ, UIDNEXT) now.
    pub counters: (i64, i64),
    /// UIDs expunged (or moved away), ascending.
    pub expunged: Vec<i64>,
    /// UIDs of the new entries, ascending.
    pub new: Vec<i64>,
    /// (UID, flags, MODSEQ) of the entries changed, by UID.
    pub changed: Vec<(i64, String, i64)>,
    /// Some entry still carries \Recent, unclaimed: only then is a claim
    /// (a write) worth making. Under load most checks find none, as the
    /// session that stored a message usually claims it first.
    pub unclaimed: bool,
}

/// One row as [`Store::listing_since`] reads it: a UNION of several kinds
/// of rows, which `gone` tells apart (`ROW_*`), the columns a kind does not
/// use left empty.
#[derive(sqlx::FromRow)]
struct ListingRow {
    uid: i64,
    modseq: i64,
    flags: String,
    internal_date: i64,
    size: i64,
    imap_envelope: Option<Vec<u8>>,
    envelope: Option<String>,
    message_id: i64,
    blob_hash: String,
    #[sqlx(flatten)]
    search: super::messages::SearchHeaders,
    gone: i64,
}

impl From<ListingRow> for ListingChange {
    fn from(r: ListingRow) -> ListingChange {
        ListingChange {
            uid: r.uid,
            modseq: r.modseq,
            flags: r.flags,
            internal_date: r.internal_date,
            size: r.size,
            imap_envelope: r.imap_envelope,
            envelope: r.envelope,
            message_id: r.message_id,
            blob_hash: r.blob_hash,
            search: r.search,
            gone: r.gone != 0,
        }
    }
}

/// What [`ListingRow::gone`] says a row is.
const ROW_ENTRY: i64 = 0;
const ROW_VANISHED: i64 = 1;
/// The folder: UIDVALIDITY in `uid`, HIGHESTMODSEQ in `modseq`, UIDNEXT
/// in `internal_date`, 1 in `size` when some entry has \Recent unclaimed.
const ROW_FOLDER: i64 = 2;
const ROW_EXPUNGED: i64 = 3;
const ROW_NEW: i64 = 4;
const ROW_CHANGED: i64 = 5;

/// The statement of `Store::read_folder`: $1 the folder; then, when asked
/// for, $2 the listing's mark; then the session's three marks. The first
/// branch names the columns (`ListingRow` reads them by name).
fn folder_statement(listing: bool, changes: bool) -> &'static str {
    static STATEMENTS: std::sync::LazyLock<[String; 4]> = std::sync::LazyLock::new(|| {
        let empty = "NULL, NULL, 0, '', NULL, NULL, NULL, NULL, NULL";
        let build = |listing: bool, changes: bool| {
            let mut sql = format!(
                "SELECT uidvalidity AS uid, highestmodseq AS modseq, '' AS flags, \
                 uidnext AS internal_date, \
                 CASE WHEN EXISTS (SELECT 1 FROM mailbox_messages \
                 WHERE mailbox_id = $1 AND recent = 1) THEN 1 ELSE 0 END AS size, \
                 NULL AS imap_envelope, NULL AS envelope, 0 AS message_id, '' AS blob_hash, \
                 NULL AS search_subject, NULL AS search_from, NULL AS search_to, \
                 NULL AS search_cc, NULL AS search_bcc, {ROW_FOLDER} AS gone \
                 FROM mailboxes WHERE id = $1"
            );
            let mut n = 2;
            if listing {
                sql += &format!(
                    " UNION ALL \
                     SELECT mm.uid, mm.modseq, mm.flags, mm.internal_date, m.size, m.imap_envelope, \
                     CASE WHEN m.imap_envelope IS NULL THEN m.envelope END, \
                     mm.message_id, m.blob_hash, m.search_subject, m.search_from, m.search_to, \
                     m.search_cc, m.search_bcc, {ROW_ENTRY} \
                     FROM mailbox_messages mm JOIN messages m ON m.id = mm.message_id \
                     WHERE mm.mailbox_id = $1 AND mm.modseq > ${n} \
                     UNION ALL \
                     SELECT uid, modseq, '', 0, 0, {empty}, {ROW_VANISHED} \
                     FROM imap_vanished WHERE mailbox_id = $1 AND modseq > ${n}"
                );
                n += 1;
            }
            if changes {
                let (e, u, c) = (n, n + 1, n + 2);
                sql += &format!(
                    " UNION ALL \
                     SELECT uid, modseq, '', 0, 0, {empty}, {ROW_EXPUNGED} \
                     FROM imap_vanished WHERE mailbox_id = $1 AND modseq > ${e} \
                     UNION ALL \
                     SELECT uid, modseq, '', 0, 0, {empty}, {ROW_NEW} \
                     FROM mailbox_messages WHERE mailbox_id = $1 AND uid > ${u} \
                     UNION ALL \
                     SELECT uid, modseq, flags, 0, 0, {empty}, {ROW_CHANGED} \
                     FROM mailbox_messages WHERE mailbox_id = $1 AND modseq > ${c}"
                );
            }
            sql
        };
        [
            build(false, false),
            build(false, true),
            build(true, false),
            build(true, true),
        ]
    });
    &STATEMENTS[usize::from(listing) * 2 + usize::from(changes)]
}

/// One read of a folder ([`Store::listing_since`]).
#[derive(Debug)]
pub struct FolderRead {
    /// The folder's UIDVALIDITY.
    pub uidvalidity: i64,
    /// The listing's changes after its mark.
    pub listing: Vec<ListingChange>,
    /// The session's changes, when asked for.
    pub changes: Option<FolderChanges>,
}

impl Store {
    /// [`FolderChanges`] since `since`, in one statement: the folder's
    /// counters, its expunges, new UIDs and changed flags (None once the
    /// folder is gone). A selected session reads this at every command.
    pub async fn folder_changes(
        &self,
        folder_id: i64,
        since: ChangesSince,
    ) -> Result<Option<FolderChanges>, StoreError> {
        Ok(self
            .read_folder(folder_id, None, Some(since))
            .await?
            .and_then(|r| r.changes))
    }

    /// Every change of a folder after `modseq`, entries and expunges alike, in
    /// one statement (one snapshot): what an in-memory folder listing needs to
    /// catch up, with the folder's UIDVALIDITY, to tell a folder deleted (None)
    /// or recreated without another round trip, and with `since`, the
    /// session's [`FolderChanges`] from the same snapshot (a FETCH answered
    /// from the listing then makes one round trip, not two). Per folder,
    /// MODSEQs are taken under the folder row's lock and committed in that
    /// order, so everything up to the highest MODSEQ returned has been seen.
    pub async fn listing_since(
        &self,
        folder_id: i64,
        modseq: i64,
        since: Option<ChangesSince>,
    ) -> Result<Option<FolderRead>, StoreError> {
        self.read_folder(folder_id, Some(modseq), since).await
    }

    /// The statement of [`Store::listing_since`] and [`Store::folder_changes`]:
    /// the folder's row, then the listing's rows after `mark` and the
    /// session's changes since `since`, each when asked for.
    async fn read_folder(
        &self,
        folder_id: i64,
        mark: Option<i64>,
        since: Option<ChangesSince>,
    ) -> Result<Option<FolderRead>, StoreError> {
        let sql = folder_statement(mark.is_some(), since.is_some());
        let mut query = sqlx::query_as::<_, ListingRow>(sql).bind(folder_id);
        if let Some(mark) = mark {
            query = query.bind(mark);
        }
        if let Some(since) = since {
            query = query
                .bind(since.expunged_after)
                .bind(since.uid_above)
                .bind(since.changed_after);
        }
        let rows = query.fetch_all(&mut *self.hot_reader().await?).await?;
        let mut read: Option<FolderRead> = None;
        let mut listing = Vec::new();
        let mut changes = FolderChanges::default();
        for row in rows {
            match row.gone {
                ROW_ENTRY | ROW_VANISHED => listing.push(ListingChange::from(row)),
                ROW_FOLDER => {
                    changes.counters = (row.modseq, row.internal_date);
                    changes.unclaimed = row.size != 0;
                    read = Some(FolderRead {
                        uidvalidity: row.uid,
                        listing: Vec::new(),
                        changes: None,
                    });
                }
                ROW_EXPUNGED => changes.expunged.push(row.uid),
                ROW_NEW => changes.new.push(row.uid),
                ROW_CHANGED => changes.changed.push((row.uid, row.flags, row.modseq)),
                _ => {}
            }
        }
        let Some(mut read) = read else {
            return Ok(None);
        };
        changes.expunged.sort_unstable();
        changes.new.sort_unstable();
        changes.changed.sort_unstable_by_key(|c| c.0);
        read.listing = listing;
        read.changes = since.map(|_| changes);
        Ok(Some(read))
    }
}
