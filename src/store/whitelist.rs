//! The imported whitelist of the trust space (see `trust::whitelist` for the XML).

use super::{Store, StoreError};

/// One imported domain as stored (`trust::whitelist::WhitelistEntry` maps to it).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct WhitelistRow {
    /// The normalised domain.
    pub domain: String,
    /// Subject DNs of the operator certificates.
    pub operator_dns: Vec<String>,
    /// Human description.
    pub description: Option<String>,
    /// `ResponsableContact`.
    pub responsable_contact: Option<String>,
    /// `SupportContact`.
    pub support_contact: Option<String>,
    /// `DateMAJ`, as published.
    pub updated_at: Option<String>,
}

impl Store {
    /// Replaces the imported whitelist with `entries`, atomically.
    pub async fn replace_whitelist(&self, entries: &[WhitelistRow]) -> Result<(), StoreError> {
        let mut tx = self.pool().begin().await?;
        sqlx::query("DELETE FROM whitelist")
            .execute(&mut *tx)
            .await?;
        let at = self.now();
        // A domain listed twice keeps every operator DN it was given.
        let mut merged: std::collections::BTreeMap<&str, WhitelistRow> = Default::default();
        for e in entries {
            merged
                .entry(&e.domain)
                .and_modify(|m| m.operator_dns.extend(e.operator_dns.iter().cloned()))
                .or_insert_with(|| e.clone());
        }
        for e in merged.values() {
            sqlx::query(
                "INSERT INTO whitelist (domain, operator_dns, description, responsable_contact, \
                 support_contact, updated_at, imported_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
            )
            .bind(&e.domain)
            .bind(e.operator_dns.join("\n"))
            .bind(&e.description)
            .bind(&e.responsable_contact)
            .bind(&e.support_contact)
            .bind(&e.updated_at)
            .bind(at)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// The imported whitelist: (domain, operator DNs).
    pub async fn whitelist(&self) -> Result<Vec<(String, Vec<String>)>, StoreError> {
        let rows: Vec<(String, String)> =
            sqlx::query_as("SELECT domain, operator_dns FROM whitelist ORDER BY domain")
                .fetch_all(self.pool())
                .await?;
        Ok(rows
            .into_iter()
            .map(|(domain, dns)| {
                let dns = dns
                    .lines()
                    .map(str::to_string)
                    .filter(|s| !s.is_empty())
                    .collect();
                (domain, dns)
            })
            .collect())
    }
}
