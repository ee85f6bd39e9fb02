//! The mail domains we host, each for professionals or for patients.

use sqlx::Row;

use super::kinds::DomainKind;
use super::{Store, StoreError, is_unique_violation};

/// A hosted domain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Domain {
    /// ASCII, lower-case name.
    pub name: String,
    /// Who has addresses in it.
    pub kind: DomainKind,
}

impl Store {
    /// Adds a hosted domain (`name` already normalised).
    pub async fn add_domain(&self, name: &str, kind: DomainKind) -> Result<(), StoreError> {
        sqlx::query("INSERT INTO domains (name, kind, created_at) VALUES ($1, $2, $3)")
            .bind(name)
            .bind(kind.as_str())
            .bind(self.now())
            .execute(self.pool())
            .await
            .map_err(|e| {
                if is_unique_violation(&e) {
                    StoreError::Conflict(format!("domain {name}"))
                } else {
                    e.into()
                }
            })?;
        Ok(())
    }

    /// Every hosted domain, by name.
    pub async fn list_domains(&self) -> Result<Vec<Domain>, StoreError> {
        let rows = sqlx::query("SELECT name, kind FROM domains ORDER BY name")
            .fetch_all(self.pool())
            .await?;
        rows.iter()
            .map(|r| {
                let kind: String = r.try_get("kind")?;
                Ok(Domain {
                    name: r.try_get("name")?,
                    kind: kind
                        .parse()
                        .map_err(|_| StoreError::Corrupt(kind.clone()))?,
                })
            })
            .collect()
    }

    /// The kind of `name` if we host it.
    pub async fn domain_kind(&self, name: &str) -> Result<Option<DomainKind>, StoreError> {
        let row = sqlx::query("SELECT kind FROM domains WHERE name = $1")
            .bind(name)
            .fetch_optional(self.pool())
            .await?;
        match row {
            None => Ok(None),
            Some(r) => {
                let kind: String = r.try_get("kind")?;
                Ok(Some(kind.parse().map_err(|_| StoreError::Corrupt(kind))?))
            }
        }
    }
}
