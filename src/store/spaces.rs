//! Patient spaces created by opt-out (`patient_spaces`, migration 0017):
//! rows only; the rules (window, opposition, opening) are `lifecycle/`.
//!
//! Written in batches, as `group_commit.rs` writes deliveries: one
//! multi-row statement per table for a whole batch, so provisioning a
//! million beneficiaries costs a few statements per thousand rows.

use sqlx::pool::PoolConnection;
use sqlx::{Acquire, Any};

use super::accounts::DEFAULT_MAILBOXES;
use super::{Store, StoreError};

/// A beneficiary as provisioning writes it (values already checked).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpaceRow {
    /// SHA-256 of the INS (the key that outlives an opposition).
    pub ins_hash: String,
    /// The INS matricule.
    pub ins: String,
    /// The patient domain the space's address will be in.
    pub domain: String,
    /// Birth name.
    pub birth_name: String,
    /// First names, space separated.
    pub first_names: String,
    /// Birth date, `YYYY-MM-DD`.
    pub birth_date: String,
    /// `M`, `F` or `I`.
    pub sex: String,
    /// INSEE code of the birth place.
    pub birth_place: String,
    /// Personal e-mail address for notices.
    pub email: Option<String>,
    /// Postal address, one line.
    pub postal: Option<String>,
    /// INS of legal representatives, space separated.
    pub representatives: String,
    /// SHA-256 of the opposition code (used only when the row is new).
    pub opposition_code_hash: String,
}

/// What the store holds of a beneficiary already known.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct KnownSpace {
    /// The key.
    pub ins_hash: String,
    /// `informed`, `open` or `opposed`.
    pub state: String,
    /// Stored e-mail ('' when none).
    pub email: String,
    /// Stored postal address ('' when none).
    pub postal: String,
}

/// A space whose state decides something (opposition, RCPT).
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct SpaceState {
    /// `informed`, `open` or `opposed`.
    pub state: String,
    /// End of the opposition window.
    pub opens_at: i64,
    /// SHA-256 of the opposition code (None once opposed).
    pub opposition_code_hash: Option<String>,
}

/// A space due to open.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct DueSpace {
    /// The key.
    pub ins_hash: String,
    /// The INS (the local part of the address).
    pub ins: String,
    /// The patient domain.
    pub domain: String,
    /// First names then birth name, shown to professionals.
    pub display_name: String,
    /// Notice address.
    pub email: Option<String>,
}

/// Columns bound per row by [`Store::upsert_spaces`] (with informed_at,
/// opens_at and changed_at).
const SPACE_COLUMNS: usize = 15;

/// Rows per statement: 15,000 values, within both backends' bind limits
/// (SQLite 32,766, PostgreSQL 65,535). A transaction may hold many.
const STATEMENT_ROWS: usize = 1000;

/// SQLite page cache (KiB) of the connection writing a provisioning
/// transaction: the primary key is a hash, so every row dirties its own
/// index page; pages that stay in the cache are written to the WAL once per
/// transaction instead of being spilled and read back. Reset after the commit.
const BULK_CACHE_KIB: i64 = 128 * 1024;

/// One placeholder: `$n` on PostgreSQL, a bare `?` on SQLite, where sqlx
/// looks every numbered parameter up by name (`sqlite3_bind_parameter_name`
/// walks the list: quadratic in a statement of thousands of values, most of
/// the run's time), while unnamed ones bind in order.
fn param(numbered: bool, n: usize) -> String {
    if numbered {
        format!("${n}")
    } else {
        "?".to_string()
    }
}

/// `($1, $2, …), (…)` for `rows` rows of `cols` placeholders from `$start`.
pub(super) fn placeholders(numbered: bool, rows: usize, cols: usize, start: usize) -> String {
    let mut s = String::with_capacity(rows * cols * 5);
    for r in 0..rows {
        if r > 0 {
            s.push_str(", ");
        }
        s.push('(');
        for c in 0..cols {
            if c > 0 {
                s.push_str(", ");
            }
            s.push_str(&param(numbered, start + r * cols + c));
        }
        s.push(')');
    }
    s
}

/// `$start, $start+1, …` for an `IN (…)` list of `n` values.
fn list(numbered: bool, n: usize, start: usize) -> String {
    (0..n)
        .map(|i| param(numbered, start + i))
        .collect::<Vec<_>>()
        .join(", ")
}

impl Store {
    /// Numbered placeholders (PostgreSQL) or bare `?` (SQLite): see [`param`].
    pub(super) fn numbered(&self) -> bool {
        self.backend() == super::Backend::Postgres
    }

    /// The stored state and contact of each of `hashes` that is known (one
    /// statement per [`STATEMENT_ROWS`] hashes).
    pub async fn known_spaces(&self, hashes: &[String]) -> Result<Vec<KnownSpace>, StoreError> {
        let mut known = Vec::new();
        for chunk in hashes.chunks(STATEMENT_ROWS) {
            let sql = format!(
                "SELECT ins_hash, state, COALESCE(email, '') AS email, COALESCE(postal, '') AS postal \
                 FROM patient_spaces WHERE ins_hash IN ({})",
                list(self.numbered(), chunk.len(), 1)
            );
            let mut q = sqlx::query_as::<_, KnownSpace>(&sql);
            for h in chunk {
                q = q.bind(h);
            }
            known.extend(q.fetch_all(self.pool()).await?);
        }
        Ok(known)
    }

    /// Writes a batch in one transaction: `new` rows are inserted informed
    /// (window ending at `opens_at`), `changed` rows get their contact and
    /// traits updated; an opposed row is never touched (the upsert's
    /// condition), whatever the caller asked. One statement per kind and
    /// [`STATEMENT_ROWS`] rows; on SQLite the connection's page cache is
    /// raised to [`BULK_CACHE_KIB`] for the transaction.
    pub async fn upsert_spaces(
        &self,
        new: &[SpaceRow],
        changed: &[SpaceRow],
        opens_at: i64,
    ) -> Result<(), StoreError> {
        let now = self.now();
        let mut conn = self.bulk_connection().await?;
        let written = self
            .upsert_spaces_on(&mut conn, new, changed, opens_at, now)
            .await;
        self.end_bulk(&mut conn).await?;
        written?;
        self.wrote();
        Ok(())
    }

    /// A pooled connection for one bulk transaction: on SQLite its page
    /// cache is raised to [`BULK_CACHE_KIB`] (see there); give it back to
    /// [`Store::end_bulk`].
    async fn bulk_connection(&self) -> Result<PoolConnection<Any>, StoreError> {
        let mut conn = self.pool().acquire().await?;
        if !self.numbered() {
            sqlx::query(&format!("PRAGMA cache_size = -{BULK_CACHE_KIB}"))
                .execute(&mut *conn)
                .await?;
        }
        Ok(conn)
    }

    /// Back to SQLite's default page cache (2 MiB): the pool keeps the connection.
    async fn end_bulk(&self, conn: &mut PoolConnection<Any>) -> Result<(), StoreError> {
        if !self.numbered() {
            sqlx::query("PRAGMA cache_size = -2000")
                .execute(&mut **conn)
                .await?;
        }
        Ok(())
    }

    /// [`Store::upsert_spaces`]'s transaction on `conn`.
    async fn upsert_spaces_on(
        &self,
        conn: &mut PoolConnection<Any>,
        new: &[SpaceRow],
        changed: &[SpaceRow],
        opens_at: i64,
        now: i64,
    ) -> Result<(), StoreError> {
        let mut tx = conn.begin().await?;
        for (all, informed) in [(new, true), (changed, false)] {
            for rows in all.chunks(STATEMENT_ROWS) {
                let sql = format!(
                    "INSERT INTO patient_spaces (ins_hash, state, ins, domain, birth_name, first_names, \
                 birth_date, sex, birth_place, email, postal, representatives, opposition_code_hash, \
                 informed_at, opens_at, changed_at) VALUES {} \
                 ON CONFLICT (ins_hash) DO UPDATE SET email = excluded.email, postal = excluded.postal, \
                 birth_name = excluded.birth_name, first_names = excluded.first_names, \
                 birth_date = excluded.birth_date, sex = excluded.sex, birth_place = excluded.birth_place, \
                 representatives = excluded.representatives, changed_at = excluded.changed_at \
                 WHERE patient_spaces.state NOT IN ('opposed', 'purged')",
                    placeholders_with_state(self.numbered(), rows.len())
                );
                let mut q = sqlx::query(&sql);
                for r in rows {
                    q = q
                        .bind(&r.ins_hash)
                        .bind(&r.ins)
                        .bind(&r.domain)
                        .bind(&r.birth_name)
                        .bind(&r.first_names)
                        .bind(&r.birth_date)
                        .bind(&r.sex)
                        .bind(&r.birth_place)
                        .bind(&r.email)
                        .bind(&r.postal)
                        .bind(&r.representatives)
                        .bind(informed.then(|| r.opposition_code_hash.clone()))
                        .bind(now)
                        .bind(opens_at)
                        .bind(now);
                }
                q.execute(&mut *tx).await?;
                // The legal representatives named in the file (a minor's row).
                let links: Vec<(&str, &str)> = rows
                    .iter()
                    .flat_map(|r| {
                        r.representatives
                            .split_whitespace()
                            .map(move |p| (r.ins.as_str(), p))
                    })
                    .collect();
                for chunk in links.chunks(STATEMENT_ROWS) {
                    let sql = format!(
                        "INSERT INTO representatives (child_ins, parent_ins, created_at) VALUES {} \
                         ON CONFLICT (child_ins, parent_ins) DO NOTHING",
                        placeholders(self.numbered(), chunk.len(), 3, 1)
                    );
                    let mut q = sqlx::query(&sql);
                    for (child, parent) in chunk {
                        q = q.bind(*child).bind(*parent).bind(now);
                    }
                    q.execute(&mut *tx).await?;
                }
                if !informed {
                    // An open space's notices follow its new e-mail address
                    // (no account yet: nothing to do). Changes are rare: a
                    // statement each.
                    for r in rows {
                        sqlx::query(
                            "UPDATE patient_settings SET notify_email = $1 WHERE account_id = \
                         (SELECT id FROM accounts WHERE address = $2)",
                        )
                        .bind(&r.email)
                        .bind(format!("{}@{}", r.ins, r.domain))
                        .execute(&mut *tx)
                        .await?;
                    }
                }
            }
        }
        tx.commit().await?;
        Ok(())
    }

    /// The state of the space of `ins_hash`, if provisioned.
    pub async fn space_state(&self, ins_hash: &str) -> Result<Option<SpaceState>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT state, opens_at, opposition_code_hash FROM patient_spaces WHERE ins_hash = $1",
        )
        .bind(ins_hash)
        .fetch_optional(self.pool())
        .await?)
    }

    /// The state of the space whose INS is `ins` (the RCPT path: one indexed read).
    pub async fn space_state_by_ins(&self, ins: &str) -> Result<Option<String>, StoreError> {
        let mut conn = self.hot_reader().await?;
        Ok(
            sqlx::query_scalar("SELECT state FROM patient_spaces WHERE ins_hash = $1")
                .bind(ins_hash(ins))
                .fetch_optional(&mut *conn)
                .await?,
        )
    }

    /// Marks an informed space opposed and deletes everything but its key,
    /// with `audit` in the same transaction; false when it was not informed
    /// before `deadline` (another node opened or opposed it meanwhile).
    pub async fn oppose_space(
        &self,
        ins_hash: &str,
        audit: &super::audit::AuditEntry,
    ) -> Result<bool, StoreError> {
        let now = self.now();
        let oppose = sqlx::query(
            "UPDATE patient_spaces SET state = 'opposed', ins = NULL, domain = NULL, \
             birth_name = NULL, first_names = NULL, birth_date = NULL, sex = NULL, \
             birth_place = NULL, email = NULL, postal = NULL, representatives = NULL, \
             opposition_code_hash = NULL, changed_at = $2 \
             WHERE ins_hash = $1 AND state = 'informed' AND opens_at > $2",
        )
        .bind(ins_hash)
        .bind(now);
        self.execute_audited(oppose, audit, now).await
    }

    /// Up to `limit` informed spaces whose window ended.
    pub async fn due_spaces(&self, limit: i64) -> Result<Vec<DueSpace>, StoreError> {
        Ok(sqlx::query_as(DUE_SQL)
            .bind(self.now())
            .bind(limit)
            .fetch_all(self.pool())
            .await?)
    }

    /// Opens up to `limit` spaces whose window ended, in one transaction;
    /// returns how many were due and how many this call opened. On
    /// PostgreSQL the due rows are claimed with `FOR UPDATE SKIP LOCKED`,
    /// so several callers (the passes of [`crate::lifecycle::open`], other
    /// nodes) open disjoint batches side by side; SQLite has one writer,
    /// and a space another opened meanwhile is skipped.
    pub async fn open_due_batch(&self, limit: i64) -> Result<(usize, u64), StoreError> {
        if !self.numbered() {
            let due = self.due_spaces(limit).await?;
            let opened = self.open_spaces(&due).await?;
            return Ok((due.len(), opened));
        }
        let now = self.now();
        let mut tx = self.pool().begin().await?;
        let due: Vec<DueSpace> = sqlx::query_as(&format!("{DUE_SQL} FOR UPDATE SKIP LOCKED"))
            .bind(now)
            .bind(limit)
            .fetch_all(&mut *tx)
            .await?;
        let opened = self.open_spaces_on(&mut tx, &due, now).await?;
        tx.commit().await?;
        if opened > 0 {
            self.wrote();
        }
        Ok((due.len(), opened))
    }

    /// Opens `due` in one transaction: accounts (multi-row, an address that
    /// already exists is kept as it is), their folders and notice settings
    /// for the accounts created, the spaces marked open, one audit entry for
    /// the batch; [`STATEMENT_ROWS`] spaces per statement, on a bulk
    /// connection. Safe to run on several nodes at once: a space opened by
    /// another is skipped. Returns how many spaces this call opened.
    pub async fn open_spaces(&self, due: &[DueSpace]) -> Result<u64, StoreError> {
        if due.is_empty() {
            return Ok(0);
        }
        let now = self.now();
        let mut conn = self.bulk_connection().await?;
        let opened = async {
            let mut tx = conn.begin().await?;
            let opened = self.open_spaces_on(&mut tx, due, now).await?;
            tx.commit().await?;
            Ok::<_, StoreError>(opened)
        }
        .await;
        self.end_bulk(&mut conn).await?;
        let opened = opened?;
        if opened > 0 {
            self.wrote();
        }
        Ok(opened)
    }

    /// [`Store::open_spaces`]'s statements in `tx` (committed by the caller).
    async fn open_spaces_on(
        &self,
        tx: &mut sqlx::Transaction<'_, Any>,
        due: &[DueSpace],
        now: i64,
    ) -> Result<u64, StoreError> {
        if due.is_empty() {
            return Ok(0);
        }
        // Mark first: the row lock (PostgreSQL) or the write lock (SQLite)
        // makes a concurrent opener of the same rows wait, then skip them.
        // `state || ''` keeps SQLite's planner off the (state, opens_at)
        // index, which would scan every informed space for each statement
        // (a million-space opening took 275 s instead of seconds).
        let mut marked = std::collections::HashSet::new();
        for chunk in due.chunks(STATEMENT_ROWS) {
            let sql = format!(
                "UPDATE patient_spaces SET state = 'open', changed_at = {} \
                 WHERE ins_hash IN ({}) AND state || '' = 'informed' RETURNING ins_hash",
                param(self.numbered(), 1),
                list(self.numbered(), chunk.len(), 2)
            );
            let mut q = sqlx::query_scalar::<_, String>(&sql).bind(now);
            for d in chunk {
                q = q.bind(&d.ins_hash);
            }
            marked.extend(q.fetch_all(&mut **tx).await?);
        }
        let todo: Vec<&DueSpace> = due
            .iter()
            .filter(|d| marked.contains(&d.ins_hash))
            .collect();
        if todo.is_empty() {
            return Ok(0);
        }
        let email: std::collections::HashMap<&str, &str> = todo
            .iter()
            .filter_map(|d| d.email.as_deref().map(|e| (d.ins.as_str(), e)))
            .collect();
        for chunk in todo.chunks(STATEMENT_ROWS) {
            let sql = format!(
                "INSERT INTO accounts (address, domain, kind, display_name, ins, created_at, disabled) \
                 VALUES {} ON CONFLICT (address) DO NOTHING RETURNING id, ins",
                placeholders(self.numbered(), chunk.len(), 6, 1).replace(')', ", 0)")
            );
            let mut q = sqlx::query_as::<_, (i64, String)>(&sql);
            for d in chunk {
                q = q
                    .bind(format!("{}@{}", d.ins, d.domain))
                    .bind(&d.domain)
                    .bind(super::kinds::AccountKind::Patient.as_str())
                    .bind(&d.display_name)
                    .bind(&d.ins)
                    .bind(now);
            }
            let created = q.fetch_all(&mut **tx).await?;
            if created.is_empty() {
                continue;
            }
            let per = DEFAULT_MAILBOXES.len();
            let sql = format!(
                "INSERT INTO mailboxes (account_id, name, special_use, uidvalidity) VALUES {}",
                placeholders(self.numbered(), created.len() * per, 4, 1)
            );
            let mut q = sqlx::query(&sql);
            for (id, _) in &created {
                for (i, (name, special)) in DEFAULT_MAILBOXES.iter().enumerate() {
                    q = q
                        .bind(*id)
                        .bind(*name)
                        .bind(special.map(str::to_string))
                        .bind(super::accounts::uidvalidity_seed(now, i));
                }
            }
            q.execute(&mut **tx).await?;
            let settings: Vec<(i64, &str)> = created
                .iter()
                .filter_map(|(id, ins)| email.get(ins.as_str()).map(|e| (*id, *e)))
                .collect();
            if !settings.is_empty() {
                let sql = format!(
                    "INSERT INTO patient_settings (account_id, notify_email) VALUES {}",
                    placeholders(self.numbered(), settings.len(), 2, 1)
                );
                let mut q = sqlx::query(&sql);
                for (id, e) in &settings {
                    q = q.bind(*id).bind(*e);
                }
                q.execute(&mut **tx).await?;
            }
        }
        super::audit::append_on(
            tx,
            &super::audit::AuditEntry::new(
                "system",
                "space.open",
                "patient_spaces",
                &format!(
                    "{} spaces opened at the end of their opposition window",
                    todo.len()
                ),
            ),
            now,
        )
        .await?;
        Ok(todo.len() as u64)
    }
}

/// Informed spaces whose window ended (`$1`: now; `$2`: limit), oldest first.
const DUE_SQL: &str = "SELECT ins_hash, ins, domain, \
     TRIM(COALESCE(first_names, '') || ' ' || COALESCE(birth_name, '')) AS display_name, email \
     FROM patient_spaces WHERE state = 'informed' AND opens_at <= $1 \
     AND ins IS NOT NULL AND domain IS NOT NULL ORDER BY opens_at LIMIT $2";

/// `placeholders` for the upsert: the state is the literal `'informed'`.
fn placeholders_with_state(numbered: bool, rows: usize) -> String {
    let cols = SPACE_COLUMNS;
    let mut s = String::with_capacity(rows * cols * 6);
    for r in 0..rows {
        if r > 0 {
            s.push_str(", ");
        }
        let base = 1 + r * cols;
        s.push_str(&format!("({}, 'informed'", param(numbered, base)));
        for c in 1..cols {
            s.push_str(&format!(", {}", param(numbered, base + c)));
        }
        s.push(')');
    }
    s
}

/// The key of a space: SHA-256 of the INS as provisioned (upper case),
/// hex. The one hashing rule, so the RCPT path and provisioning agree.
pub fn ins_hash(ins: &str) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    h.update(b"mes-space:");
    h.update(ins.trim().to_ascii_uppercase().as_bytes());
    hex::encode(h.finalize())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_number_rows_and_columns() {
        assert_eq!(placeholders(true, 2, 2, 1), "($1, $2), ($3, $4)");
        assert_eq!(placeholders(false, 2, 2, 1), "(?, ?), (?, ?)");
        assert_eq!(list(true, 3, 2), "$2, $3, $4");
        assert!(placeholders_with_state(true, 2).starts_with("($1, 'informed', $2,"));
        assert!(placeholders_with_state(true, 2).contains("($16, 'informed', $17,"));
        assert!(placeholders_with_state(false, 1).starts_with("(?, 'informed', ?,"));
    }
}
