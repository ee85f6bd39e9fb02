//! Storage quotas per account (RFC 9208 resources STORAGE and MESSAGE): the
//! usage counters and the operator's limits, one `quotas` row per account.
//!
//! The counters change in the transactions that file or remove folder
//! entries (the group-commit batch, one message, COPY, MOVE, EXPUNGE, DELETE),
//! always after the folders' row locks and in account order, so that two
//! writers never wait for each other in a cycle. Every entry counts, copies
//! included. What the limits mean (the configured defaults, what is refused)
//! is the delivery path's rule (`delivery::quota`): here are rows only.

use std::collections::BTreeMap;

use sqlx::AnyConnection;

use super::group_commit::{ROWS_PER_STATEMENT, values};
use super::{Store, StoreError};

/// An operator's limit of one resource for one account, as stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    /// The configured default applies (NULL).
    Default,
    /// No limit (-1).
    Unlimited,
    /// At most this many (KiB for storage, messages for the message count).
    Max(u64),
}

impl Limit {
    fn from_column(value: Option<i64>) -> Limit {
        match value {
            None => Limit::Default,
            Some(v) if v < 0 => Limit::Unlimited,
            Some(v) => Limit::Max(v.unsigned_abs()),
        }
    }

    fn to_column(self) -> Option<i64> {
        match self {
            Limit::Default => None,
            Limit::Unlimited => Some(-1),
            Limit::Max(n) => Some(i64::try_from(n).unwrap_or(i64::MAX)),
        }
    }
}

/// An account's usage and its own limits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountQuota {
    /// The account.
    pub account_id: i64,
    /// Its address (for refusals and logs).
    pub address: String,
    /// Octets of every entry of its folders.
    pub storage_used: u64,
    /// Entries in its folders.
    pub messages_used: u64,
    /// Its storage limit, in KiB.
    pub storage_limit: Limit,
    /// Its message count limit.
    pub messages_limit: Limit,
}

/// The columns of [`QuotaRow`], for a query joining `accounts a` and `quotas q`.
pub(super) const QUOTA_COLUMNS: &str = "a.id AS quota_account, a.address AS quota_address, \
     COALESCE(q.storage_used, 0) AS storage_used, COALESCE(q.messages_used, 0) AS messages_used, \
     q.storage_limit, q.messages_limit";

/// An account's quota as read ([`QUOTA_COLUMNS`]).
#[derive(sqlx::FromRow)]
pub(super) struct QuotaRow {
    quota_account: i64,
    quota_address: String,
    storage_used: i64,
    messages_used: i64,
    storage_limit: Option<i64>,
    messages_limit: Option<i64>,
}

impl From<QuotaRow> for AccountQuota {
    fn from(r: QuotaRow) -> AccountQuota {
        AccountQuota {
            account_id: r.quota_account,
            address: r.quota_address,
            // A counter never goes below zero unless a row was changed by hand.
            storage_used: u64::try_from(r.storage_used).unwrap_or(0),
            messages_used: u64::try_from(r.messages_used).unwrap_or(0),
            storage_limit: Limit::from_column(r.storage_limit),
            messages_limit: Limit::from_column(r.messages_limit),
        }
    }
}

/// A change of one account's usage: (account id, octets, entries), negative
/// for removals.
pub(super) type UsageChange = (i64, i64, i64);

/// PostgreSQL only: takes the transaction's advisory locks on the accounts
/// owning `folders`, in account order (no deadlock between writers), so
/// that writers judge and change one account's usage one at a time.
pub(super) async fn lock_accounts_on(
    conn: &mut AnyConnection,
    folders: &[i64],
) -> Result<(), StoreError> {
    for chunk in folders.chunks(ROWS_PER_STATEMENT) {
        let list: Vec<String> = (1..=chunk.len()).map(|i| format!("${i}")).collect();
        let sql = format!(
            "SELECT pg_advisory_xact_lock({QUOTA_LOCK_SPACE}, (a.account_id % 2147483647)::int) \
             FROM (SELECT DISTINCT account_id FROM mailboxes WHERE id IN ({}) \
             ORDER BY account_id) a",
            list.join(", ")
        );
        let mut query = sqlx::query(&sql).persistent(false);
        for folder in chunk {
            query = query.bind(*folder);
        }
        // Only waits: the rows (void) are not decoded.
        query.execute(&mut *conn).await?;
    }
    Ok(())
}

/// The first key of the quota advisory locks (the second is the account id).
const QUOTA_LOCK_SPACE: i32 = 0x5155_4f54; // "QUOT"

/// The quotas of the accounts owning `folders`, read inside the caller's
/// transaction (the group-commit writer's admission): (folder id, its
/// account's quota) for every folder that exists, in one query per chunk.
pub(super) async fn of_folders_on(
    conn: &mut AnyConnection,
    folders: &[i64],
) -> Result<Vec<(i64, AccountQuota)>, StoreError> {
    #[derive(sqlx::FromRow)]
    struct Row {
        folder: i64,
        #[sqlx(flatten)]
        quota: QuotaRow,
    }
    let mut out = Vec::with_capacity(folders.len());
    for chunk in folders.chunks(ROWS_PER_STATEMENT) {
        let list: Vec<String> = (1..=chunk.len()).map(|i| format!("${i}")).collect();
        let sql = format!(
            "SELECT f.id AS folder, {QUOTA_COLUMNS} FROM mailboxes f \
             JOIN accounts a ON a.id = f.account_id \
             LEFT JOIN quotas q ON q.account_id = a.id WHERE f.id IN ({})",
            list.join(", ")
        );
        let mut query = sqlx::query_as::<_, Row>(&sql).persistent(false);
        for folder in chunk {
            query = query.bind(*folder);
        }
        for row in query.fetch_all(&mut *conn).await? {
            out.push((row.folder, AccountQuota::from(row.quota)));
        }
    }
    Ok(out)
}

/// Adds `changes` to the accounts' counters inside the caller's transaction:
/// one statement per [`ROWS_PER_STATEMENT`] accounts, in account order (the
/// order every writer takes these rows in), a missing row created.
pub(super) async fn change_usage_on(
    conn: &mut AnyConnection,
    changes: &[UsageChange],
) -> Result<(), StoreError> {
    let mut by_account: BTreeMap<i64, (i64, i64)> = BTreeMap::new();
    for &(account, bytes, messages) in changes {
        let total = by_account.entry(account).or_default();
        total.0 += bytes;
        total.1 += messages;
    }
    let rows: Vec<(i64, (i64, i64))> = by_account
        .into_iter()
        .filter(|(_, change)| *change != (0, 0))
        .collect();
    for chunk in rows.chunks(ROWS_PER_STATEMENT) {
        let sql = format!(
            "INSERT INTO quotas (account_id, storage_used, messages_used) VALUES {} \
             ON CONFLICT (account_id) DO UPDATE SET \
             storage_used = quotas.storage_used + excluded.storage_used, \
             messages_used = quotas.messages_used + excluded.messages_used",
            values(chunk.len(), 3)
        );
        let mut query = sqlx::query(&sql).persistent(false);
        for (account, (bytes, messages)) in chunk {
            query = query.bind(*account).bind(*bytes).bind(*messages);
        }
        query.execute(&mut *conn).await?;
    }
    Ok(())
}

impl Store {
    /// An account's usage and limits (None: no such account).
    pub async fn quota_of(&self, account_id: i64) -> Result<Option<AccountQuota>, StoreError> {
        let row: Option<QuotaRow> = sqlx::query_as(&format!(
            "SELECT {QUOTA_COLUMNS} FROM accounts a LEFT JOIN quotas q ON q.account_id = a.id \
             WHERE a.id = $1"
        ))
        .bind(account_id)
        .fetch_optional(self.pool())
        .await?;
        Ok(row.map(AccountQuota::from))
    }

    /// Sets the limits of the account at `address` (None: left as they
    /// are); returns its quota afterwards.
    pub async fn set_quota_limits(
        &self,
        address: &str,
        storage: Option<Limit>,
        messages: Option<Limit>,
    ) -> Result<AccountQuota, StoreError> {
        let mut tx = self.pool().begin().await?;
        let id: i64 = sqlx::query_scalar("SELECT id FROM accounts WHERE address = $1")
            .bind(address)
            .fetch_optional(&mut *tx)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("account {address}")))?;
        sqlx::query(
            "INSERT INTO quotas (account_id) VALUES ($1) ON CONFLICT (account_id) DO NOTHING",
        )
        .bind(id)
        .execute(&mut *tx)
        .await?;
        if let Some(limit) = storage {
            sqlx::query("UPDATE quotas SET storage_limit = $1 WHERE account_id = $2")
                .bind(limit.to_column())
                .bind(id)
                .execute(&mut *tx)
                .await?;
        }
        if let Some(limit) = messages {
            sqlx::query("UPDATE quotas SET messages_limit = $1 WHERE account_id = $2")
                .bind(limit.to_column())
                .bind(id)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        self.quota_of(id)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("account {address}")))
    }

    /// What the account's counters would be if computed from its entries now
    /// (octets, entries): what the counters must always equal (tests, checks).
    pub async fn recount_usage(&self, account_id: i64) -> Result<(u64, u64), StoreError> {
        let (bytes, count): (i64, i64) = sqlx::query_as(
            "SELECT CAST(COALESCE(SUM(m.size), 0) AS BIGINT), COUNT(mm.uid) FROM mailboxes f \
             JOIN mailbox_messages mm ON mm.mailbox_id = f.id \
             JOIN messages m ON m.id = mm.message_id WHERE f.account_id = $1",
        )
        .bind(account_id)
        .fetch_one(self.pool())
        .await?;
        Ok((
            u64::try_from(bytes).unwrap_or(0),
            u64::try_from(count).unwrap_or(0),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::Limit;

    #[test]
    fn limits_round_trip_their_column() {
        for limit in [
            Limit::Default,
            Limit::Unlimited,
            Limit::Max(0),
            Limit::Max(512),
        ] {
            assert_eq!(Limit::from_column(limit.to_column()), limit);
        }
        assert_eq!(Limit::from_column(Some(-7)), Limit::Unlimited);
    }
}
