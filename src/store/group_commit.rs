//! Group commit's fast path: a whole batch of messages written with one
//! statement per table.
//!
//! Every statement is a round trip to the database, and on SQLite a round trip
//! is two thread hops (sqlx runs each connection on its own thread): writing
//! message by message cost several hops per message and made the single
//! writer the bottleneck of SMTP acceptance (BENCHMARKS.md). Here a batch
//! costs a fixed handful of statements whatever its size. Any failure fails
//! the attempt; the caller rolls it back and stores the batch message by
//! message instead, so that one bad message still fails alone.

use std::collections::{BTreeMap, HashMap};

use sqlx::AnyConnection;

use super::messages::{NewMessage, NewRecipient, Stored};
use super::quota::AccountQuota;
use super::{Backend, StoreError};

/// Most rows in one multi-row INSERT: keeps every statement far below the
/// bound-parameter limits (32,766 on SQLite, 65,535 on PostgreSQL).
pub(super) const ROWS_PER_STATEMENT: usize = 256;

/// Writes `groups` inside the caller's transaction, each group whole or
/// not at all: a group that `admit` refuses for an account's quota is left
/// out with its refusal. The result is in group order.
pub(super) async fn write<R>(
    conn: &mut AnyConnection,
    backend: Backend,
    groups: &[&[NewMessage]],
    admit: &Admit<'_, R>,
) -> Result<Vec<Result<Vec<Stored>, R>>, StoreError> {
    let all: Vec<&NewMessage> = groups.iter().flat_map(|g| g.iter()).collect();
    // First a write, so that on SQLite this transaction holds the write lock
    // before it reads the quotas and counters below. (A refused message's
    // blob stays, like any blob: content is shared by hash.)
    insert_blobs(conn, &all).await?;
    let admitted = admit_groups(conn, backend, groups, admit).await?;
    let batch: Vec<&NewMessage> = groups
        .iter()
        .zip(&admitted)
        .filter(|(_, a)| a.is_ok())
        .flat_map(|(g, _)| g.iter())
        .collect();
    let mut stored = if batch.is_empty() {
        Vec::new()
    } else {
        write_admitted(conn, backend, &batch).await?
    }
    .into_iter();
    Ok(groups
        .iter()
        .zip(admitted)
        .map(|(g, a)| a.map(|()| stored.by_ref().take(g.len()).collect()))
        .collect())
}

/// The caller's quota rule: may the account with this quota (usage
/// including what the batch already took) take these octets in this many
/// more copies? The store reads; the rule (`delivery::quota`) decides.
pub(super) type Admit<'a, R> = dyn Fn(&AccountQuota, u64, u64) -> Result<(), R> + Send + Sync + 'a;

/// Reads the quotas of every folder the groups file into (one statement,
/// under the write lock on SQLite and the accounts' locks on PostgreSQL, so
/// that concurrent batches cannot both take the last room) and asks
/// `admit` for each group in turn.
async fn admit_groups<R>(
    conn: &mut AnyConnection,
    backend: Backend,
    groups: &[&[NewMessage]],
    admit: &Admit<'_, R>,
) -> Result<Vec<Result<(), R>>, StoreError> {
    let mut folders: Vec<i64> = groups
        .iter()
        .flat_map(|g| g.iter())
        .flat_map(|m| m.folders())
        .collect();
    folders.sort_unstable();
    folders.dedup();
    if folders.is_empty() {
        return Ok(groups.iter().map(|_| Ok(())).collect());
    }
    if backend == Backend::Postgres {
        // Several writers there: one at a time per account from here to the
        // commit, and the read below (a new statement, so a new snapshot)
        // sees what the one before committed.
        super::quota::lock_accounts_on(conn, &folders).await?;
    }
    let quotas: HashMap<i64, AccountQuota> = super::quota::of_folders_on(conn, &folders)
        .await?
        .into_iter()
        .collect();
    // What the groups admitted so far take, per account.
    let mut taken: HashMap<i64, (u64, u64)> = HashMap::new();
    let mut out = Vec::with_capacity(groups.len());
    for group in groups {
        let mut wanted: BTreeMap<i64, (&AccountQuota, u64, u64)> = BTreeMap::new();
        for m in group.iter() {
            for folder in m.folders() {
                if let Some(quota) = quotas.get(&folder) {
                    let entry = wanted.entry(quota.account_id).or_insert((quota, 0, 0));
                    entry.1 += m.data.len() as u64;
                    entry.2 += 1;
                }
            }
        }
        let verdict = wanted.values().try_for_each(|(quota, octets, messages)| {
            let (more_octets, more_messages) =
                taken.get(&quota.account_id).copied().unwrap_or_default();
            let now = AccountQuota {
                storage_used: quota.storage_used.saturating_add(more_octets),
                messages_used: quota.messages_used.saturating_add(more_messages),
                ..(*quota).clone()
            };
            admit(&now, *octets, *messages)
        });
        if verdict.is_ok() {
            for (account, (_, octets, messages)) in &wanted {
                let t = taken.entry(*account).or_default();
                t.0 += octets;
                t.1 += messages;
            }
        }
        out.push(verdict);
    }
    Ok(out)
}

/// Writes admitted messages (their blobs are in) with one statement per table.
async fn write_admitted(
    conn: &mut AnyConnection,
    backend: Backend,
    batch: &[&NewMessage],
) -> Result<Vec<Stored>, StoreError> {
    let ids = reserve_message_ids(conn, backend, batch.len()).await?;
    insert_messages(conn, batch, &ids).await?;
    insert_recipients(conn, batch, &ids).await?;
    let queued: Vec<(i64, &NewRecipient, i64)> = batch
        .iter()
        .zip(&ids)
        .flat_map(|(m, id)| {
            m.recipients
                .iter()
                .filter(|r| r.remote)
                .map(move |r| (*id, r, m.received_at))
        })
        .collect();
    super::queue::enqueue_on(conn, &queued).await?;
    let placements = place(conn, batch, &ids).await?;
    for (m, id) in batch.iter().zip(&ids) {
        super::messages::link_on(conn, m, *id).await?;
    }
    Ok(ids
        .into_iter()
        .zip(placements)
        .map(|(message_id, placements)| Stored {
            message_id,
            placements,
        })
        .collect())
}

/// `($1, $2), ($3, $4)`: `rows` groups of `columns` numbered parameters.
pub(super) fn values(rows: usize, columns: usize) -> String {
    let mut sql = String::with_capacity(rows * columns * 5);
    for row in 0..rows {
        if row > 0 {
            sql.push_str(", ");
        }
        sql.push('(');
        for column in 0..columns {
            if column > 0 {
                sql.push_str(", ");
            }
            sql.push('$');
            sql.push_str(&(row * columns + column + 1).to_string());
        }
        sql.push(')');
    }
    sql
}

async fn insert_blobs(conn: &mut AnyConnection, batch: &[&NewMessage]) -> Result<(), StoreError> {
    let mut seen = std::collections::HashSet::new();
    let unique: Vec<&NewMessage> = batch
        .iter()
        .copied()
        .filter(|m| seen.insert(m.hash.as_str()))
        .collect();
    for chunk in unique.chunks(ROWS_PER_STATEMENT) {
        let sql = format!(
            "INSERT INTO blobs (hash, size, data) VALUES {} ON CONFLICT (hash) DO NOTHING",
            values(chunk.len(), 3)
        );
        let mut query = sqlx::query(&sql).persistent(false);
        for m in chunk {
            query = query.bind(&m.hash).bind(m.data.len() as i64).bind(&m.data);
        }
        query.execute(&mut *conn).await?;
    }
    Ok(())
}

/// Takes `n` fresh message ids, so that the rows of one multi-row INSERT are
/// known without relying on the order of RETURNING (unspecified on both backends).
async fn reserve_message_ids(
    conn: &mut AnyConnection,
    backend: Backend,
    n: usize,
) -> Result<Vec<i64>, StoreError> {
    let n = i64::try_from(n).map_err(|_| StoreError::Corrupt("batch size".into()))?;
    match backend {
        Backend::Sqlite => {
            // AUTOINCREMENT's high-water mark: ids are never reused. Safe to
            // read and extend here because this transaction holds the write lock.
            let last: i64 = sqlx::query_scalar(
                "SELECT COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 'messages'), 0) AS seq",
            )
            .fetch_one(&mut *conn)
            .await?;
            Ok((last + 1..=last + n).collect())
        }
        Backend::Postgres => Ok(sqlx::query_scalar(
            "SELECT nextval(pg_get_serial_sequence('messages', 'id')) AS id \
                 FROM generate_series(1, $1)",
        )
        .bind(n)
        .fetch_all(&mut *conn)
        .await?),
    }
}

async fn insert_messages(
    conn: &mut AnyConnection,
    batch: &[&NewMessage],
    ids: &[i64],
) -> Result<(), StoreError> {
    let rows: Vec<(&NewMessage, i64)> = batch.iter().copied().zip(ids.iter().copied()).collect();
    for chunk in rows.chunks(ROWS_PER_STATEMENT) {
        let sql = format!(
            "INSERT INTO messages (id, blob_hash, size, received_at, mail_from, header_message_id, \
             dsn_envid, dsn_ret, origin, envelope, imap_envelope, bodystructure, search_subject, \
             search_from, search_to, search_cc, search_bcc) VALUES {}",
            values(chunk.len(), 17)
        );
        let mut query = sqlx::query(&sql).persistent(false);
        for (m, id) in chunk {
            query = query
                .bind(*id)
                .bind(&m.hash)
                .bind(m.data.len() as i64)
                .bind(m.received_at)
                .bind(&m.mail_from)
                .bind(&m.header_message_id)
                .bind(&m.dsn_envid)
                .bind(&m.dsn_ret)
                .bind(m.origin)
                .bind(&m.envelope)
                .bind(&m.imap_envelope)
                .bind(&m.bodystructure)
                .bind(&m.search.subject)
                .bind(&m.search.from)
                .bind(&m.search.to)
                .bind(&m.search.cc)
                .bind(&m.search.bcc);
        }
        query.execute(&mut *conn).await?;
    }
    Ok(())
}

async fn insert_recipients(
    conn: &mut AnyConnection,
    batch: &[&NewMessage],
    ids: &[i64],
) -> Result<(), StoreError> {
    let rows: Vec<(i64, &NewRecipient)> = batch
        .iter()
        .zip(ids)
        .flat_map(|(m, id)| m.recipients.iter().map(move |r| (*id, r)))
        .collect();
    for chunk in rows.chunks(ROWS_PER_STATEMENT) {
        let sql = format!(
            "INSERT INTO message_recipients (message_id, recipient, orcpt, notify) VALUES {} \
             ON CONFLICT (message_id, recipient) DO NOTHING",
            values(chunk.len(), 4)
        );
        let mut query = sqlx::query(&sql).persistent(false);
        for (id, r) in chunk {
            query = query
                .bind(*id)
                .bind(&r.address)
                .bind(&r.orcpt)
                .bind(r.notify);
        }
        query.execute(&mut *conn).await?;
    }
    Ok(())
}

/// Files every message in its recipients' folders: one UPDATE takes the UIDs
/// and MODSEQs of all the batch's folders (its row locks order concurrent
/// writers), one INSERT files the copies, one more adds them to their
/// accounts' quota usage. Returns each message's placements.
async fn place(
    conn: &mut AnyConnection,
    batch: &[&NewMessage],
    ids: &[i64],
) -> Result<Vec<Vec<(i64, i64)>>, StoreError> {
    let folders: Vec<Vec<i64>> = batch.iter().map(|m| m.folders()).collect();
    let mut wanted: Vec<(i64, i64)> = Vec::new();
    for folder in folders.iter().flatten() {
        match wanted.iter_mut().find(|(f, _)| f == folder) {
            Some((_, n)) => *n += 1,
            None => wanted.push((*folder, 1)),
        }
    }
    if wanted.is_empty() {
        return Ok(vec![Vec::new(); batch.len()]);
    }
    wanted.sort_unstable();
    let mut uidnext = String::new();
    let mut modseq = String::new();
    let mut list = String::new();
    for i in 0..wanted.len() {
        let (id, n) = (2 * i + 1, 2 * i + 2);
        uidnext.push_str(&format!(" WHEN ${id} THEN ${n}"));
        if i > 0 {
            list.push_str(", ");
        }
        list.push_str(&format!("${id}"));
    }
    modseq.push_str(&uidnext);
    let sql = format!(
        "UPDATE mailboxes SET uidnext = uidnext + CASE id{uidnext} END, \
         highestmodseq = highestmodseq + CASE id{modseq} END \
         WHERE id IN ({list}) RETURNING id, account_id, uidnext, highestmodseq"
    );
    let mut query = sqlx::query_as::<_, (i64, i64, i64, i64)>(&sql).persistent(false);
    for (folder, n) in &wanted {
        query = query.bind(*folder).bind(*n);
    }
    let rows = query.fetch_all(&mut *conn).await?;
    // Next UID and MODSEQ to hand out in each folder, and its account.
    let mut next: HashMap<i64, (i64, i64)> = HashMap::with_capacity(rows.len());
    let mut owner: HashMap<i64, i64> = HashMap::with_capacity(rows.len());
    for &(folder, account, uidnext, highest) in &rows {
        owner.insert(folder, account);
        let n = wanted
            .iter()
            .find(|(f, _)| *f == folder)
            .map_or(0, |(_, n)| *n);
        next.insert(folder, (uidnext - n, highest - n + 1));
    }
    let mut placements = Vec::with_capacity(batch.len());
    let mut copies: Vec<(i64, i64, i64, &str, i64, i64)> = Vec::new();
    let mut usage: Vec<super::quota::UsageChange> = Vec::new();
    for ((m, id), folders) in batch.iter().zip(ids).zip(&folders) {
        let mut placed = Vec::with_capacity(folders.len());
        for folder in folders {
            let (uid, modseq) = next
                .get_mut(folder)
                .ok_or_else(|| StoreError::NotFound(format!("mailbox {folder}")))?;
            copies.push((*folder, *uid, *id, &m.flags, *modseq, m.received_at));
            placed.push((*folder, *uid));
            if let Some(account) = owner.get(folder) {
                usage.push((*account, m.data.len() as i64, 1));
            }
            *uid += 1;
            *modseq += 1;
        }
        placements.push(placed);
    }
    for chunk in copies.chunks(ROWS_PER_STATEMENT) {
        let sql = format!(
            "INSERT INTO mailbox_messages (mailbox_id, uid, message_id, flags, modseq, internal_date) \
             VALUES {}",
            values(chunk.len(), 6)
        );
        let mut query = sqlx::query(&sql).persistent(false);
        for (folder, uid, id, flags, modseq, at) in chunk {
            query = query
                .bind(*folder)
                .bind(*uid)
                .bind(*id)
                .bind(*flags)
                .bind(*modseq)
                .bind(*at);
        }
        query.execute(&mut *conn).await?;
    }
    super::quota::change_usage_on(conn, &usage).await?;
    Ok(placements)
}

#[cfg(test)]
mod tests {
    use super::values;

    #[test]
    fn values_number_every_parameter_once() {
        assert_eq!(values(1, 1), "($1)");
        assert_eq!(values(2, 3), "($1, $2, $3), ($4, $5, $6)");
    }
}
