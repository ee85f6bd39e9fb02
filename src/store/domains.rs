//! The mail domains we host, each for professionals or for patients.

use super::kinds::{self, DomainKind};
use super::{Store, StoreError, is_unique_violation};

/// A hosted domain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Domain {
    /// ASCII, lower-case name.
    pub name: String,
    /// Who has addresses in it.
    pub kind: DomainKind,
}

/// A `domains` row as read; the kind is checked into [`Domain`].
#[derive(sqlx::FromRow)]
struct DomainRow {
    name: String,
    kind: String,
}

impl TryFrom<DomainRow> for Domain {
    type Error = StoreError;
    fn try_from(r: DomainRow) -> Result<Domain, StoreError> {
        Ok(Domain {
            name: r.name,
            kind: kinds::parse(r.kind)?,
        })
    }
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
        let rows: Vec<DomainRow> = sqlx::query_as("SELECT name, kind FROM domains ORDER BY name")
            .fetch_all(self.pool())
            .await?;
        rows.into_iter().map(Domain::try_from).collect()
    }

    /// The kind of `name` if we host it.
    pub async fn domain_kind(&self, name: &str) -> Result<Option<DomainKind>, StoreError> {
        let kind: Option<String> = sqlx::query_scalar("SELECT kind FROM domains WHERE name = $1")
            .bind(name)
            .fetch_optional(self.pool())
            .await?;
        kind.map(kinds::parse).transpose()
    }

    /// What a sender check needs in one round trip: the kind of `domain` if
    /// we host it, and whether enabled accounts are mapped to the certificate
    /// whose canonical subject key is `cert_key` (see
    /// `accounts_by_cert_subject`, read only when some are).
    pub async fn sender_facts(
        &self,
        domain: &str,
        cert_key: Option<&str>,
    ) -> Result<(Option<DomainKind>, bool), StoreError> {
        let (kind, mapped): (Option<String>, i64) = sqlx::query_as(
            "SELECT (SELECT kind FROM domains WHERE name = $1) AS kind, \
             (SELECT COUNT(*) FROM accounts WHERE cert_subject = $2 AND disabled = 0) AS mapped",
        )
        .bind(domain)
        .bind(cert_key)
        .fetch_one(&mut *self.hot_reader().await?)
        .await?;
        Ok((kind.map(kinds::parse).transpose()?, mapped > 0))
    }
}
