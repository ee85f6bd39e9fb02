//! IMAP folders of an account: list, create, delete, rename, subscribe, status.

use super::{Store, StoreError, is_unique_violation};

/// A folder with its IMAP counters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Folder {
    /// Row id.
    pub id: i64,
    /// Owner.
    pub account_id: i64,
    /// Full name, `/` as hierarchy delimiter, UTF-8.
    pub name: String,
    /// RFC 6154 attribute, e.g. `\Sent`.
    pub special_use: Option<String>,
    /// In the LSUB list.
    pub subscribed: bool,
    /// UIDVALIDITY.
    pub uidvalidity: i64,
    /// UIDNEXT.
    pub uidnext: i64,
    /// HIGHESTMODSEQ.
    pub highestmodseq: i64,
}

/// Counts for STATUS and SELECT.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FolderCounts {
    /// Messages.
    pub messages: i64,
    /// Messages with \Recent.
    pub recent: i64,
    /// Messages without \Seen.
    pub unseen: i64,
    /// Octets in all.
    pub size: i64,
    /// Messages with \Deleted.
    pub deleted: i64,
    /// Octets of the messages with \Deleted.
    pub deleted_size: i64,
}

const COLUMNS: &str =
    "id, account_id, name, special_use, subscribed, uidvalidity, uidnext, highestmodseq";

/// A `mailboxes` row as read ([`COLUMNS`]), the subscription as an integer.
#[derive(sqlx::FromRow)]
struct FolderRow {
    id: i64,
    account_id: i64,
    name: String,
    special_use: Option<String>,
    subscribed: i64,
    uidvalidity: i64,
    uidnext: i64,
    highestmodseq: i64,
}

impl From<FolderRow> for Folder {
    fn from(r: FolderRow) -> Folder {
        Folder {
            id: r.id,
            account_id: r.account_id,
            name: r.name,
            special_use: r.special_use,
            subscribed: r.subscribed != 0,
            uidvalidity: r.uidvalidity,
            uidnext: r.uidnext,
            highestmodseq: r.highestmodseq,
        }
    }
}

impl Store {
    /// Every folder of the account, by name.
    pub async fn folders(&self, account_id: i64) -> Result<Vec<Folder>, StoreError> {
        let rows: Vec<FolderRow> = sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM mailboxes WHERE account_id = $1 ORDER BY name"
        ))
        .bind(account_id)
        .fetch_all(self.pool())
        .await?;
        Ok(rows.into_iter().map(Folder::from).collect())
    }

    /// One folder by name.
    pub async fn folder(&self, account_id: i64, name: &str) -> Result<Option<Folder>, StoreError> {
        let row: Option<FolderRow> = sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM mailboxes WHERE account_id = $1 AND name = $2"
        ))
        .bind(account_id)
        .bind(name)
        .fetch_optional(self.pool())
        .await?;
        Ok(row.map(Folder::from))
    }

    /// One folder by id.
    pub async fn folder_by_id(&self, id: i64) -> Result<Option<Folder>, StoreError> {
        let row: Option<FolderRow> =
            sqlx::query_as(&format!("SELECT {COLUMNS} FROM mailboxes WHERE id = $1"))
                .bind(id)
                .fetch_optional(&mut *self.hot_reader().await?)
                .await?;
        Ok(row.map(Folder::from))
    }

    /// Creates `name` (and missing parents, RFC 3501 §6.3.3).
    pub async fn create_folder(&self, account_id: i64, name: &str) -> Result<(), StoreError> {
        let mut tx = self.pool().begin().await?;
        let parts: Vec<&str> = name.split('/').collect();
        for i in 1..=parts.len() {
            let path = parts[..i].join("/");
            let exists =
                sqlx::query("SELECT id FROM mailboxes WHERE account_id = $1 AND name = $2")
                    .bind(account_id)
                    .bind(&path)
                    .fetch_optional(&mut *tx)
                    .await?
                    .is_some();
            if exists {
                if i == parts.len() {
                    return Err(StoreError::Conflict(format!("mailbox {name}")));
                }
                continue;
            }
            sqlx::query("INSERT INTO mailboxes (account_id, name, uidvalidity, subscribed) VALUES ($1, $2, $3, 1)")
                .bind(account_id)
                .bind(&path)
                .bind(new_uidvalidity())
                .execute(&mut *tx)
                .await
                .map_err(|e| {
                    if is_unique_violation(&e) {
                        StoreError::Conflict(format!("mailbox {path}"))
                    } else {
                        e.into()
                    }
                })?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Deletes a folder and its message entries (its children stay, RFC 3501 §6.3.4);
    /// they leave the account's quota usage.
    pub async fn delete_folder(&self, folder_id: i64) -> Result<(), StoreError> {
        let mut tx = self.pool().begin().await?;
        // The folder's lock first, as every writer takes it before the quota row.
        if let Some(account) = super::entries::lock_folders(&mut tx, &[folder_id]).await?[0] {
            let (bytes, count): (i64, i64) = sqlx::query_as(
                "SELECT CAST(COALESCE(SUM(m.size), 0) AS BIGINT), COUNT(mm.uid) \
                 FROM mailbox_messages mm JOIN messages m ON m.id = mm.message_id \
                 WHERE mm.mailbox_id = $1",
            )
            .bind(folder_id)
            .fetch_one(&mut *tx)
            .await?;
            super::quota::change_usage_on(&mut tx, &[(account, -bytes, -count)]).await?;
        }
        sqlx::query("DELETE FROM mailbox_messages WHERE mailbox_id = $1")
            .bind(folder_id)
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM imap_vanished WHERE mailbox_id = $1")
            .bind(folder_id)
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM mailboxes WHERE id = $1")
            .bind(folder_id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Renames `from` and its children to `to` (creating missing parents of `to`).
    /// Renamed folders get a new UIDVALIDITY so clients resynchronise.
    pub async fn rename_folder(
        &self,
        account_id: i64,
        from: &str,
        to: &str,
    ) -> Result<(), StoreError> {
        let mut tx = self.pool().begin().await?;
        if sqlx::query("SELECT id FROM mailboxes WHERE account_id = $1 AND name = $2")
            .bind(account_id)
            .bind(to)
            .fetch_optional(&mut *tx)
            .await?
            .is_some()
        {
            return Err(StoreError::Conflict(format!("mailbox {to}")));
        }
        let rows: Vec<(i64, String)> = sqlx::query_as(
            "SELECT id, name FROM mailboxes WHERE account_id = $1 AND (name = $2 OR name LIKE $3)",
        )
        .bind(account_id)
        .bind(from)
        .bind(format!("{from}/%"))
        .fetch_all(&mut *tx)
        .await?;
        if rows.is_empty() {
            return Err(StoreError::NotFound(format!("mailbox {from}")));
        }
        for (id, name) in rows {
            // LIKE treats `%` and `_` in `from` as wildcards: keep exact matches only.
            if name != from && !name.starts_with(&format!("{from}/")) {
                continue;
            }
            let new_name = format!("{to}{}", &name[from.len()..]);
            sqlx::query("UPDATE mailboxes SET name = $1, uidvalidity = $2 WHERE id = $3")
                .bind(&new_name)
                .bind(new_uidvalidity())
                .bind(id)
                .execute(&mut *tx)
                .await?;
        }
        let parts: Vec<&str> = to.split('/').collect();
        for i in 1..parts.len() {
            let path = parts[..i].join("/");
            sqlx::query(
                "INSERT INTO mailboxes (account_id, name, uidvalidity) VALUES ($1, $2, $3) \
                 ON CONFLICT (account_id, name) DO NOTHING",
            )
            .bind(account_id)
            .bind(&path)
            .bind(new_uidvalidity())
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Moves every message of INBOX into a new folder `to` (RENAME INBOX, RFC 3501 §6.3.5).
    pub async fn rename_inbox(
        &self,
        account_id: i64,
        inbox_id: i64,
        to: &str,
    ) -> Result<(), StoreError> {
        self.create_folder(account_id, to).await?;
        let target = self
            .folder(account_id, to)
            .await?
            .ok_or_else(|| StoreError::NotFound(to.to_string()))?;
        let uids: Vec<i64> = self.folder_uids(inbox_id, 0).await?;
        self.move_messages(inbox_id, &uids, target.id).await?;
        Ok(())
    }

    /// Subscribes or unsubscribes.
    pub async fn set_subscribed(&self, folder_id: i64, subscribed: bool) -> Result<(), StoreError> {
        sqlx::query("UPDATE mailboxes SET subscribed = $1 WHERE id = $2")
            .bind(i64::from(subscribed))
            .bind(folder_id)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// Message, recent, unseen counts and total size of a folder.
    pub async fn folder_counts(&self, folder_id: i64) -> Result<FolderCounts, StoreError> {
        // Counted by the database: one row comes back, not one per message.
        // A flag is a whole word of the space-separated list, in any case;
        // `!` is the LIKE escape so that the backslash stays literal.
        let (messages, recent, unseen, size, deleted, deleted_size): (
            i64,
            i64,
            i64,
            i64,
            i64,
            i64,
        ) = sqlx::query_as(
            "SELECT COUNT(*), \
                 CAST(COALESCE(SUM(CASE WHEN mm.recent <> 0 THEN 1 ELSE 0 END), 0) AS BIGINT), \
                 CAST(COALESCE(SUM(CASE WHEN (' ' || lower(mm.flags) || ' ') LIKE $2 ESCAPE '!' \
                      THEN 0 ELSE 1 END), 0) AS BIGINT), \
                 CAST(COALESCE(SUM(m.size), 0) AS BIGINT), \
                 CAST(COALESCE(SUM(CASE WHEN (' ' || lower(mm.flags) || ' ') LIKE $3 ESCAPE '!' \
                      THEN 1 ELSE 0 END), 0) AS BIGINT), \
                 CAST(COALESCE(SUM(CASE WHEN (' ' || lower(mm.flags) || ' ') LIKE $3 ESCAPE '!' \
                      THEN m.size ELSE 0 END), 0) AS BIGINT) \
                 FROM mailbox_messages mm JOIN messages m ON m.id = mm.message_id \
                 WHERE mm.mailbox_id = $1",
        )
        .bind(folder_id)
        .bind("% \\seen %")
        .bind("% \\deleted %")
        .fetch_one(self.pool())
        .await?;
        let c = FolderCounts {
            messages,
            recent,
            unseen,
            size,
            deleted,
            deleted_size,
        };
        Ok(c)
    }
}

/// A UIDVALIDITY for a new or renamed folder: the current time, which only grows.
fn new_uidvalidity() -> i64 {
    static LAST: std::sync::atomic::AtomicI64 = std::sync::atomic::AtomicI64::new(0);
    let t = crate::clock::system_now() & 0xffff_ffff;
    let prev = LAST.fetch_max(t, std::sync::atomic::Ordering::SeqCst);
    if prev >= t {
        LAST.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1
    } else {
        t
    }
}
