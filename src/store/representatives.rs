//! Legal representatives of minors (`representatives`, migration 0018):
//! rows only; the rules (who may be added, the end at 18) are
//! `lifecycle/representation.rs`.

use super::audit::{AuditEntry, append_on};
use super::{Store, StoreError};

/// A child's space a representative may act in.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Represented {
    /// The child's account.
    pub account_id: i64,
    /// Its address.
    pub address: String,
    /// The name shown in the space switcher.
    pub display_name: String,
}

/// A representation that ends because the child came of age.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct ComingOfAge {
    /// The child's INS.
    pub child_ins: String,
    /// Their notice address (settings of the account, else the provisioned one).
    pub email: Option<String>,
}

impl Store {
    /// Links `parent_ins` as a representative of `child_ins`, with `audit`;
    /// false when the link existed.
    pub async fn add_representative(
        &self,
        child_ins: &str,
        parent_ins: &str,
        audit: &AuditEntry,
    ) -> Result<bool, StoreError> {
        let now = self.now();
        let insert = sqlx::query(
            "INSERT INTO representatives (child_ins, parent_ins, created_at) VALUES ($1, $2, $3) \
             ON CONFLICT (child_ins, parent_ins) DO NOTHING",
        )
        .bind(child_ins)
        .bind(parent_ins)
        .bind(now);
        self.execute_audited(insert, audit, now).await
    }

    /// Removes the link, with `audit`; false when there was none.
    pub async fn remove_representative(
        &self,
        child_ins: &str,
        parent_ins: &str,
        audit: &AuditEntry,
    ) -> Result<bool, StoreError> {
        let delete =
            sqlx::query("DELETE FROM representatives WHERE child_ins = $1 AND parent_ins = $2")
                .bind(child_ins)
                .bind(parent_ins);
        self.execute_audited(delete, audit, self.now()).await
    }

    /// The open children's spaces `parent_ins` represents, by name.
    pub async fn represented_by(&self, parent_ins: &str) -> Result<Vec<Represented>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT a.id AS account_id, a.address, a.display_name FROM representatives r \
             JOIN accounts a ON a.ins = r.child_ins AND a.kind = 'patient' AND a.disabled = 0 \
             WHERE r.parent_ins = $1 ORDER BY a.display_name, a.id",
        )
        .bind(parent_ins)
        .fetch_all(self.pool())
        .await?)
    }

    /// Children with a representative whose birth date (provisioned) is on
    /// or before `born_by` (`YYYY-MM-DD`): they are adults now.
    pub async fn coming_of_age(
        &self,
        born_by: &str,
        limit: i64,
    ) -> Result<Vec<ComingOfAge>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT DISTINCT r.child_ins, COALESCE(p.notify_email, s.email) AS email \
             FROM representatives r JOIN patient_spaces s ON s.ins = r.child_ins \
             LEFT JOIN accounts a ON a.ins = r.child_ins AND a.kind = 'patient' \
             LEFT JOIN patient_settings p ON p.account_id = a.id \
             WHERE s.birth_date IS NOT NULL AND s.birth_date <= $1 ORDER BY r.child_ins LIMIT $2",
        )
        .bind(born_by)
        .bind(limit)
        .fetch_all(self.pool())
        .await?)
    }

    /// The messages of `patient_id` that filed documents, with each
    /// document's confidentiality codes (what a representative may not see
    /// is decided by `dossier::hidden_from_representatives`).
    pub async fn message_document_codes(
        &self,
        patient_id: i64,
    ) -> Result<Vec<(i64, Option<String>)>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT message_id, confidentiality FROM documents \
             WHERE patient_id = $1 AND message_id IS NOT NULL",
        )
        .bind(patient_id)
        .fetch_all(self.pool())
        .await?)
    }

    /// Ends every representation of `child_ins`, with `audit`; false when
    /// there was none left (another node ended it).
    pub async fn end_representation(
        &self,
        child_ins: &str,
        audit: &AuditEntry,
    ) -> Result<bool, StoreError> {
        let now = self.now();
        let mut tx = self.pool().begin().await?;
        let done = sqlx::query("DELETE FROM representatives WHERE child_ins = $1")
            .bind(child_ins)
            .execute(&mut *tx)
            .await?;
        if done.rows_affected() == 0 {
            return Ok(false);
        }
        append_on(&mut tx, audit, now).await?;
        tx.commit().await?;
        self.wrote();
        Ok(true)
    }
}
