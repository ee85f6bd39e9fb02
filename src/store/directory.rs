//! The directory of the trust space (`directory_entries`, migration 0020):
//! rows only; reading the ANS extract is `directory/`.
//!
//! An import writes a new generation beside the one in force (batches of
//! multi-row inserts, invisible to readers), then [`Store::directory_switch`]
//! makes it current and drops the old one in one transaction.

use super::{Store, StoreError};

/// Rows per multi-row insert.
pub const BATCH_ROWS: usize = 1000;

/// One mailbox of the directory, as stored.
#[derive(Debug, Clone, PartialEq, Eq, Default, sqlx::FromRow)]
pub struct DirectoryRow {
    /// The mailbox address (lower case).
    pub address: String,
    /// `PER` (a person), `ORG` (an organisation's mailbox), `APP`…
    pub kind: String,
    /// National identifier of the professional (RPPS/ADELI), if any.
    pub rpps: Option<String>,
    /// Civility of practice (`Dr`, `M`, `MME`…).
    pub civility: Option<String>,
    /// Last name of practice.
    pub last_name: Option<String>,
    /// First name of practice.
    pub first_name: Option<String>,
    /// Profession label (`Médecin`, `Infirmier`…).
    pub profession: Option<String>,
    /// Speciality label.
    pub specialty: Option<String>,
    /// The structure's name.
    pub organization: Option<String>,
    /// The delivery line (postcode and city).
    pub city: Option<String>,
}

const COLUMNS: &str = "address, kind, rpps, civility, last_name, first_name, profession, specialty, organization, city";

impl Store {
    /// A generation number no reader uses: leftovers of an interrupted import
    /// (above the one in force) are deleted first.
    pub async fn directory_begin(&self) -> Result<i64, StoreError> {
        let current: i64 =
            sqlx::query_scalar("SELECT generation FROM directory_state WHERE id = 1")
                .fetch_one(self.pool())
                .await?;
        sqlx::query("DELETE FROM directory_entries WHERE generation > $1")
            .bind(current)
            .execute(self.pool())
            .await?;
        Ok(current + 1)
    }

    /// Writes `rows` (at most [`BATCH_ROWS`]) into `generation`; an address
    /// already in it keeps its first row. Returns the rows written.
    pub async fn directory_insert(
        &self,
        generation: i64,
        rows: &[(DirectoryRow, String)],
    ) -> Result<u64, StoreError> {
        if rows.is_empty() {
            return Ok(0);
        }
        let sql = format!(
            "INSERT INTO directory_entries (generation, {COLUMNS}, search) VALUES {} \
             ON CONFLICT (generation, address) DO NOTHING",
            // Bare `?` on SQLite: see `spaces::param` (numbered ones are quadratic there).
            super::spaces::placeholders(self.numbered(), rows.len(), 12, 1)
        );
        let mut query = sqlx::query(&sql);
        for (r, search) in rows {
            query = query
                .bind(generation)
                .bind(&r.address)
                .bind(&r.kind)
                .bind(&r.rpps)
                .bind(&r.civility)
                .bind(&r.last_name)
                .bind(&r.first_name)
                .bind(&r.profession)
                .bind(&r.specialty)
                .bind(&r.organization)
                .bind(&r.city)
                .bind(search);
        }
        Ok(query.execute(self.pool()).await?.rows_affected())
    }

    /// Puts `generation` in force and deletes every other, in one transaction.
    pub async fn directory_switch(&self, generation: i64) -> Result<i64, StoreError> {
        let mut tx = self.pool().begin().await?;
        let entries: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM directory_entries WHERE generation = $1")
                .bind(generation)
                .fetch_one(&mut *tx)
                .await?;
        sqlx::query(
            "UPDATE directory_state SET generation = $1, entries = $2, imported_at = $3 WHERE id = 1",
        )
        .bind(generation)
        .bind(entries)
        .bind(self.now())
        .execute(&mut *tx)
        .await?;
        sqlx::query("DELETE FROM directory_entries WHERE generation <> $1")
            .bind(generation)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(entries)
    }

    /// Entries in force whose search text holds every one of `terms`
    /// (already lower case), by name, at most `limit`.
    pub async fn directory_search(
        &self,
        terms: &[String],
        limit: i64,
    ) -> Result<Vec<DirectoryRow>, StoreError> {
        let mut sql = format!(
            "SELECT {COLUMNS} FROM directory_entries \
             WHERE generation = (SELECT generation FROM directory_state WHERE id = 1)"
        );
        for i in 0..terms.len() {
            sql.push_str(&format!(" AND search LIKE ${} ESCAPE '\\'", i + 2));
        }
        sql.push_str(" ORDER BY last_name, first_name, address LIMIT $1");
        let mut query = sqlx::query_as::<_, DirectoryRow>(&sql).bind(limit);
        for t in terms {
            let escaped = t
                .replace('\\', "\\\\")
                .replace('%', "\\%")
                .replace('_', "\\_");
            query = query.bind(format!("%{escaped}%"));
        }
        Ok(query.fetch_all(self.pool()).await?)
    }

    /// The entry in force for `address` (lower case), if any.
    pub async fn directory_entry(&self, address: &str) -> Result<Option<DirectoryRow>, StoreError> {
        Ok(sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM directory_entries \
             WHERE generation = (SELECT generation FROM directory_state WHERE id = 1) AND address = $1"
        ))
        .bind(address)
        .fetch_optional(self.pool())
        .await?)
    }
}
