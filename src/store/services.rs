//! The catalogue of referenced services and their OAuth rows (migration
//! 0019): services, what each patient granted, authorization codes, access
//! and refresh tokens (all stored as SHA-256), seen assertion ids, and the
//! connected-services notices. Rows only; the rules are `crate::services`.

use super::{Store, StoreError, is_unique_violation};

/// A service of the catalogue as stored (the logo apart: [`Store::service_logo`]).
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct ServiceRow {
    /// The OAuth `client_id`.
    pub id: String,
    /// Name shown to patients.
    pub name: String,
    /// Who publishes it.
    pub publisher: String,
    /// Catalogue category.
    pub category: String,
    /// Description, in French.
    pub description: String,
    /// MIME type of the logo, when there is one.
    pub logo_type: Option<String>,
    /// Home page.
    pub home_url: String,
    /// Registered redirect URIs, space separated.
    pub redirect_uris: String,
    /// Requested scopes, space separated.
    pub scopes: String,
    /// `referenced` or `suspended`.
    pub status: String,
    /// When it was referenced (Unix seconds).
    pub referenced_at: i64,
    /// `public` or `confidential`.
    pub client_type: String,
    /// Argon2 PHC string of the client secret: never shown or logged.
    pub secret_hash: Option<String>,
    /// JWKS (JSON) for `private_key_jwt`.
    pub jwks: Option<String>,
}

const SERVICE_COLUMNS: &str = "id, name, publisher, category, description, logo_type, home_url, \
     redirect_uris, scopes, status, referenced_at, client_type, secret_hash, jwks";

/// A new service with its logo.
#[derive(Debug, Clone)]
pub struct NewService {
    /// The row (referenced_at is set by the store).
    pub row: ServiceRow,
    /// The logo bytes.
    pub logo: Option<Vec<u8>>,
}

/// What a patient granted a service.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct GrantRow {
    /// The service.
    pub service_id: String,
    /// Approved scopes, space separated.
    pub scopes: String,
    /// When last approved.
    pub granted_at: i64,
    /// Last API call with one of its tokens.
    pub last_access: Option<i64>,
}

/// A code or token's binding: who, for which service, with which scopes.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Binding {
    /// The service.
    pub service_id: String,
    /// The patient.
    pub patient_id: i64,
    /// Granted scopes, space separated.
    pub scopes: String,
}

/// An authorization code taken (once) for exchange.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct CodeRow {
    /// The service.
    pub service_id: String,
    /// The patient.
    pub patient_id: i64,
    /// Granted scopes.
    pub scopes: String,
    /// The redirect URI of the authorization request.
    pub redirect_uri: String,
    /// PKCE S256 challenge.
    pub challenge: String,
    /// Expiry (Unix seconds).
    pub expires_at: i64,
}

/// What happened to a refresh token presented for rotation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rotation {
    /// Live and now used: its binding and family.
    Taken(Binding, String),
    /// Already used or revoked: its family was revoked whole.
    Reused,
    /// Unknown or expired.
    Unknown,
}

/// A token to store.
#[derive(Debug, Clone)]
pub struct NewToken<'a> {
    /// SHA-256 of the token.
    pub hash: &'a str,
    /// `access` or `refresh`.
    pub kind: &'static str,
    /// Family id.
    pub family: &'a str,
    /// Binding.
    pub binding: &'a Binding,
    /// Expiry (Unix seconds).
    pub expires_at: i64,
}

impl Store {
    /// Adds a service; Conflict when the id exists.
    pub async fn add_service(&self, s: &NewService) -> Result<(), StoreError> {
        let r = &s.row;
        let done = sqlx::query(
            "INSERT INTO services (id, name, publisher, category, description, logo_type, logo, \
             home_url, redirect_uris, scopes, status, referenced_at, client_type, secret_hash, jwks) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)",
        )
        .bind(&r.id)
        .bind(&r.name)
        .bind(&r.publisher)
        .bind(&r.category)
        .bind(&r.description)
        .bind(&r.logo_type)
        .bind(&s.logo)
        .bind(&r.home_url)
        .bind(&r.redirect_uris)
        .bind(&r.scopes)
        .bind(&r.status)
        .bind(self.now())
        .bind(&r.client_type)
        .bind(&r.secret_hash)
        .bind(&r.jwks)
        .execute(self.pool())
        .await;
        match done {
            Err(e) if is_unique_violation(&e) => {
                Err(StoreError::Conflict(format!("service {}", r.id)))
            }
            Err(e) => Err(e.into()),
            Ok(_) => Ok(()),
        }
    }

    /// Every service, by category then name.
    pub async fn services(&self) -> Result<Vec<ServiceRow>, StoreError> {
        Ok(sqlx::query_as(&format!(
            "SELECT {SERVICE_COLUMNS} FROM services ORDER BY category, name"
        ))
        .fetch_all(self.pool())
        .await?)
    }

    /// One service.
    pub async fn service(&self, id: &str) -> Result<Option<ServiceRow>, StoreError> {
        Ok(sqlx::query_as(&format!(
            "SELECT {SERVICE_COLUMNS} FROM services WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(self.pool())
        .await?)
    }

    /// A service's logo: (MIME type, bytes).
    pub async fn service_logo(&self, id: &str) -> Result<Option<(String, Vec<u8>)>, StoreError> {
        let row: Option<(Option<String>, Option<Vec<u8>>)> =
            sqlx::query_as("SELECT logo_type, logo FROM services WHERE id = $1")
                .bind(id)
                .fetch_optional(self.pool())
                .await?;
        Ok(row.and_then(|(t, l)| Some((t?, l?))))
    }

    /// Sets a service's status (`referenced`, `suspended`); false when unknown.
    pub async fn set_service_status(&self, id: &str, status: &str) -> Result<bool, StoreError> {
        let done = sqlx::query("UPDATE services SET status = $1 WHERE id = $2")
            .bind(status)
            .bind(id)
            .execute(self.pool())
            .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Changes the scopes a service requests; grants keep only what was
    /// approved and still requested (new scopes need a new approval).
    pub async fn set_service_scopes(&self, id: &str, scopes: &str) -> Result<bool, StoreError> {
        let done = sqlx::query("UPDATE services SET scopes = $1 WHERE id = $2")
            .bind(scopes)
            .bind(id)
            .execute(self.pool())
            .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Removes a service with its grants, codes and tokens.
    pub async fn remove_service(&self, id: &str) -> Result<bool, StoreError> {
        let mut tx = self.pool().begin().await?;
        for table in ["oauth_tokens", "oauth_codes", "service_grants"] {
            sqlx::query(&format!("DELETE FROM {table} WHERE service_id = $1"))
                .bind(id)
                .execute(&mut *tx)
                .await?;
        }
        let done = sqlx::query("DELETE FROM services WHERE id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(done.rows_affected() == 1)
    }

    /// Records (or widens/narrows to) what the patient approved.
    pub async fn set_grant(
        &self,
        patient_id: i64,
        service_id: &str,
        scopes: &str,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO service_grants (patient_id, service_id, scopes, granted_at) \
             VALUES ($1, $2, $3, $4) ON CONFLICT (patient_id, service_id) \
             DO UPDATE SET scopes = excluded.scopes, granted_at = excluded.granted_at",
        )
        .bind(patient_id)
        .bind(service_id)
        .bind(scopes)
        .bind(self.now())
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// The patient's grants, oldest first.
    pub async fn grants_of(&self, patient_id: i64) -> Result<Vec<GrantRow>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT service_id, scopes, granted_at, last_access FROM service_grants \
             WHERE patient_id = $1 ORDER BY granted_at, service_id",
        )
        .bind(patient_id)
        .fetch_all(self.pool())
        .await?)
    }

    /// One grant.
    pub async fn grant(
        &self,
        patient_id: i64,
        service_id: &str,
    ) -> Result<Option<GrantRow>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT service_id, scopes, granted_at, last_access FROM service_grants \
             WHERE patient_id = $1 AND service_id = $2",
        )
        .bind(patient_id)
        .bind(service_id)
        .fetch_optional(self.pool())
        .await?)
    }

    /// Disconnects: the grant goes, every token of the service for the
    /// patient is revoked, unused codes too. False when there was no grant.
    pub async fn disconnect(&self, patient_id: i64, service_id: &str) -> Result<bool, StoreError> {
        let mut tx = self.pool().begin().await?;
        sqlx::query(
            "UPDATE oauth_tokens SET revoked = 1 WHERE patient_id = $1 AND service_id = $2",
        )
        .bind(patient_id)
        .bind(service_id)
        .execute(&mut *tx)
        .await?;
        sqlx::query("UPDATE oauth_codes SET used = 1 WHERE patient_id = $1 AND service_id = $2")
            .bind(patient_id)
            .bind(service_id)
            .execute(&mut *tx)
            .await?;
        let done =
            sqlx::query("DELETE FROM service_grants WHERE patient_id = $1 AND service_id = $2")
                .bind(patient_id)
                .bind(service_id)
                .execute(&mut *tx)
                .await?;
        tx.commit().await?;
        Ok(done.rows_affected() == 1)
    }

    /// Stores an authorization code.
    pub async fn add_code(
        &self,
        code_hash: &str,
        binding: &Binding,
        redirect_uri: &str,
        challenge: &str,
        expires_at: i64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO oauth_codes (code_hash, service_id, patient_id, scopes, redirect_uri, \
             challenge, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(code_hash)
        .bind(&binding.service_id)
        .bind(binding.patient_id)
        .bind(&binding.scopes)
        .bind(redirect_uri)
        .bind(challenge)
        .bind(expires_at)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Takes a code once: the row when it was unused (expired ones too: the
    /// caller checks the time, the code is spent either way).
    pub async fn take_code(&self, code_hash: &str) -> Result<Option<CodeRow>, StoreError> {
        Ok(sqlx::query_as(
            "UPDATE oauth_codes SET used = 1 WHERE code_hash = $1 AND used = 0 \
             RETURNING service_id, patient_id, scopes, redirect_uri, challenge, expires_at",
        )
        .bind(code_hash)
        .fetch_optional(self.pool())
        .await?)
    }

    /// Stores a token.
    pub async fn add_token(&self, t: &NewToken<'_>) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO oauth_tokens (token_hash, kind, family, service_id, patient_id, scopes, \
             expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(t.hash)
        .bind(t.kind)
        .bind(t.family)
        .bind(&t.binding.service_id)
        .bind(t.binding.patient_id)
        .bind(&t.binding.scopes)
        .bind(t.expires_at)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// The binding of a live access token.
    pub async fn access_token(&self, hash: &str) -> Result<Option<Binding>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT service_id, patient_id, scopes FROM oauth_tokens WHERE token_hash = $1 \
             AND kind = 'access' AND revoked = 0 AND expires_at > $2",
        )
        .bind(hash)
        .bind(self.now())
        .fetch_optional(self.pool())
        .await?)
    }

    /// The scopes of a live, unused refresh token of `service_id` (checked
    /// before it is spent, so a refused narrowing costs the client nothing).
    pub async fn refresh_scopes(
        &self,
        hash: &str,
        service_id: &str,
    ) -> Result<Option<String>, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT scopes FROM oauth_tokens WHERE token_hash = $1 AND kind = 'refresh' \
             AND service_id = $2 AND used = 0 AND revoked = 0 AND expires_at > $3",
        )
        .bind(hash)
        .bind(service_id)
        .bind(self.now())
        .fetch_optional(self.pool())
        .await?)
    }

    /// Uses a refresh token of `service_id` once; a token used before
    /// revokes its whole family.
    pub async fn rotate_refresh(
        &self,
        hash: &str,
        service_id: &str,
    ) -> Result<Rotation, StoreError> {
        let taken: Option<(String, i64, String, String)> = sqlx::query_as(
            "UPDATE oauth_tokens SET used = 1 WHERE token_hash = $1 AND kind = 'refresh' \
             AND service_id = $2 AND used = 0 AND revoked = 0 AND expires_at > $3 \
             RETURNING service_id, patient_id, scopes, family",
        )
        .bind(hash)
        .bind(service_id)
        .bind(self.now())
        .fetch_optional(self.pool())
        .await?;
        if let Some((service_id, patient_id, scopes, family)) = taken {
            let binding = Binding {
                service_id,
                patient_id,
                scopes,
            };
            return Ok(Rotation::Taken(binding, family));
        }
        let spent: Option<String> = sqlx::query_scalar(
            "SELECT family FROM oauth_tokens WHERE token_hash = $1 AND kind = 'refresh' \
             AND service_id = $2 AND (used = 1 OR revoked = 1)",
        )
        .bind(hash)
        .bind(service_id)
        .fetch_optional(self.pool())
        .await?;
        let Some(family) = spent else {
            return Ok(Rotation::Unknown);
        };
        self.revoke_family(&family).await?;
        Ok(Rotation::Reused)
    }

    /// Revokes every token of a family.
    pub async fn revoke_family(&self, family: &str) -> Result<(), StoreError> {
        sqlx::query("UPDATE oauth_tokens SET revoked = 1 WHERE family = $1")
            .bind(family)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// RFC 7009: revokes the token's family when it belongs to `service_id`.
    pub async fn revoke_token(&self, hash: &str, service_id: &str) -> Result<bool, StoreError> {
        let family: Option<String> = sqlx::query_scalar(
            "SELECT family FROM oauth_tokens WHERE token_hash = $1 AND service_id = $2",
        )
        .bind(hash)
        .bind(service_id)
        .fetch_optional(self.pool())
        .await?;
        match family {
            Some(f) => {
                self.revoke_family(&f).await?;
                Ok(true)
            }
            None => Ok(false),
        }
    }

    /// Counts one notification of `service_id` to `patient_id` today (UTC
    /// day of the store clock) unless `limit` were counted already: false
    /// then. Counters before yesterday are purged on the way.
    pub async fn take_notification(
        &self,
        service_id: &str,
        patient_id: i64,
        limit: u32,
    ) -> Result<bool, StoreError> {
        let day = self.now().div_euclid(86_400);
        let mut tx = self.pool().begin().await?;
        sqlx::query("DELETE FROM service_notifications WHERE day < $1")
            .bind(day - 1)
            .execute(&mut *tx)
            .await?;
        let taken = sqlx::query(
            "INSERT INTO service_notifications (service_id, patient_id, day, sent) \
             VALUES ($1, $2, $3, 1) ON CONFLICT (service_id, patient_id, day) \
             DO UPDATE SET sent = service_notifications.sent + 1 \
             WHERE service_notifications.sent < $4",
        )
        .bind(service_id)
        .bind(patient_id)
        .bind(day)
        .bind(i64::from(limit))
        .execute(&mut *tx)
        .await?
        .rows_affected()
            == 1
            && limit > 0;
        if taken {
            tx.commit().await?;
            self.wrote();
        }
        Ok(taken)
    }

    /// Notes an API call of the service for the patient.
    pub async fn touch_grant(&self, patient_id: i64, service_id: &str) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE service_grants SET last_access = $1 WHERE patient_id = $2 AND service_id = $3",
        )
        .bind(self.now())
        .bind(patient_id)
        .bind(service_id)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Records a client assertion's `jti` until `expires_at`; false when it
    /// was seen before (a replay). Expired ids are purged.
    pub async fn take_jti(&self, jti: &str, expires_at: i64) -> Result<bool, StoreError> {
        sqlx::query("DELETE FROM oauth_jti WHERE expires_at < $1")
            .bind(self.now())
            .execute(self.pool())
            .await?;
        let done = sqlx::query("INSERT INTO oauth_jti (jti, expires_at) VALUES ($1, $2)")
            .bind(jti)
            .bind(expires_at)
            .execute(self.pool())
            .await;
        match done {
            Ok(_) => Ok(true),
            Err(e) if is_unique_violation(&e) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    /// Patients due for the connected-services notice: a notice address,
    /// NOTIF_SYNCHRONIZED_SERVICE on, a service connected before `before`,
    /// and no such notice since `before`: (id, notice address).
    pub async fn service_notice_due(&self, before: i64) -> Result<Vec<(i64, String)>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT a.id, s.notify_email FROM accounts a \
             JOIN patient_settings s ON s.account_id = a.id \
             WHERE s.notify_email IS NOT NULL AND s.notify_services = 1 AND a.disabled = 0 \
             AND EXISTS (SELECT 1 FROM service_grants g WHERE g.patient_id = a.id \
                         AND g.granted_at <= $1) \
             AND NOT EXISTS (SELECT 1 FROM service_notices n WHERE n.patient_id = a.id \
                             AND n.sent_at > $1) \
             ORDER BY a.id",
        )
        .bind(before)
        .fetch_all(self.pool())
        .await?)
    }

    /// NOTIF_SYNCHRONIZED_SERVICE of a patient (on unless turned off).
    pub async fn services_notice_setting(&self, patient_id: i64) -> Result<bool, StoreError> {
        let v: Option<i64> = sqlx::query_scalar(
            "SELECT notify_services FROM patient_settings WHERE account_id = $1",
        )
        .bind(patient_id)
        .fetch_optional(self.pool())
        .await?;
        Ok(v.is_none_or(|v| v != 0))
    }

    /// Sets NOTIF_SYNCHRONIZED_SERVICE.
    pub async fn set_services_notice_setting(
        &self,
        patient_id: i64,
        on: bool,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO patient_settings (account_id, notify_services) VALUES ($1, $2) \
             ON CONFLICT (account_id) DO UPDATE SET notify_services = excluded.notify_services",
        )
        .bind(patient_id)
        .bind(i64::from(on))
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Takes the notice slot of a patient: false when another node (or an
    /// earlier run) took it after `before`.
    pub async fn take_service_notice(
        &self,
        patient_id: i64,
        before: i64,
    ) -> Result<bool, StoreError> {
        let now = self.now();
        let done = sqlx::query(
            "INSERT INTO service_notices (patient_id, sent_at) VALUES ($1, $2) \
             ON CONFLICT (patient_id) DO UPDATE SET sent_at = excluded.sent_at \
             WHERE service_notices.sent_at < $3",
        )
        .bind(patient_id)
        .bind(now)
        .bind(before)
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected() == 1)
    }
}
