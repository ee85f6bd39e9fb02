//! The rows behind the access rules: the patient's authorised and blocked
//! professionals, care teams, emergency consents, regulators. The rules are in
//! `crate::access`.

use super::{Store, StoreError};

/// A professional in the patient's list.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, sqlx::FromRow)]
pub struct PatientProfessional {
    /// The professional's address.
    pub professional: String,
    /// `authorised` or `blocked`.
    pub status: String,
    /// When it last changed.
    pub updated_at: i64,
}

/// The patient's emergency consents.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Consents {
    /// ETREAT: a regulating physician may read.
    pub regulator: bool,
    /// BTG: a professional may break the glass with a reason.
    pub break_glass: bool,
    /// MASKED: hidden documents are shown in an emergency.
    pub masked: bool,
}

impl Default for Consents {
    /// Until the patient says otherwise: emergencies allowed, hidden stays hidden.
    fn default() -> Self {
        Consents {
            regulator: true,
            break_glass: true,
            masked: false,
        }
    }
}

impl Store {
    /// The patient's list of professionals.
    pub async fn patient_professionals(
        &self,
        patient_id: i64,
    ) -> Result<Vec<PatientProfessional>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT professional, status, updated_at FROM patient_professionals \
             WHERE patient_id = $1 ORDER BY professional",
        )
        .bind(patient_id)
        .fetch_all(self.pool())
        .await?)
    }

    /// `authorised`, `blocked`, or None for a professional the patient never listed.
    pub async fn professional_status(
        &self,
        patient_id: i64,
        professional: &str,
    ) -> Result<Option<String>, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT status FROM patient_professionals WHERE patient_id = $1 AND professional = $2",
        )
        .bind(patient_id)
        .bind(professional)
        .fetch_optional(self.pool())
        .await?)
    }

    /// Authorises or blocks a professional.
    pub async fn set_professional_status(
        &self,
        patient_id: i64,
        professional: &str,
        status: &str,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO patient_professionals (patient_id, professional, status, updated_at) \
             VALUES ($1, $2, $3, $4) ON CONFLICT (patient_id, professional) \
             DO UPDATE SET status = excluded.status, updated_at = excluded.updated_at",
        )
        .bind(patient_id)
        .bind(professional)
        .bind(status)
        .bind(self.now())
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Removes a professional from the list (unblocking restores nothing by itself).
    pub async fn remove_professional(
        &self,
        patient_id: i64,
        professional: &str,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "DELETE FROM patient_professionals WHERE patient_id = $1 AND professional = $2",
        )
        .bind(patient_id)
        .bind(professional)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Is `professional` in the care team of an establishment caring for the patient?
    pub async fn in_care_team(
        &self,
        patient_id: i64,
        professional: &str,
    ) -> Result<bool, StoreError> {
        let n: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM care_team_members m JOIN care_team_patients p \
             ON p.establishment = m.establishment WHERE p.patient_id = $1 AND m.professional = $2",
        )
        .bind(patient_id)
        .bind(professional)
        .fetch_one(self.pool())
        .await?;
        Ok(n > 0)
    }

    /// Adds a professional to an establishment's care team.
    pub async fn add_care_team_member(
        &self,
        establishment: &str,
        professional: &str,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO care_team_members (establishment, professional) VALUES ($1, $2) \
             ON CONFLICT (establishment, professional) DO NOTHING",
        )
        .bind(establishment)
        .bind(professional)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Puts a patient in an establishment's care.
    pub async fn add_care_team_patient(
        &self,
        establishment: &str,
        patient_id: i64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO care_team_patients (establishment, patient_id) VALUES ($1, $2) \
             ON CONFLICT (establishment, patient_id) DO NOTHING",
        )
        .bind(establishment)
        .bind(patient_id)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// The patient's emergency consents (defaults until set).
    pub async fn consents(&self, patient_id: i64) -> Result<Consents, StoreError> {
        let row: Option<(i64, i64, i64)> = sqlx::query_as(
            "SELECT regulator, break_glass, masked FROM patient_consents WHERE patient_id = $1",
        )
        .bind(patient_id)
        .fetch_optional(self.pool())
        .await?;
        Ok(match row {
            Some((regulator, break_glass, masked)) => Consents {
                regulator: regulator != 0,
                break_glass: break_glass != 0,
                masked: masked != 0,
            },
            None => Consents::default(),
        })
    }

    /// Sets the patient's emergency consents.
    pub async fn set_consents(&self, patient_id: i64, c: Consents) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO patient_consents (patient_id, regulator, break_glass, masked, updated_at) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (patient_id) DO UPDATE SET \
             regulator = excluded.regulator, break_glass = excluded.break_glass, \
             masked = excluded.masked, updated_at = excluded.updated_at",
        )
        .bind(patient_id)
        .bind(i64::from(c.regulator))
        .bind(i64::from(c.break_glass))
        .bind(i64::from(c.masked))
        .bind(self.now())
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Marks an account as a SAMU / Centre 15 regulating physician.
    pub async fn set_emergency_regulator(
        &self,
        address: &str,
        regulator: bool,
    ) -> Result<(), StoreError> {
        sqlx::query("UPDATE accounts SET emergency_regulator = $1 WHERE address = $2")
            .bind(i64::from(regulator))
            .bind(address)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// Break-glass accesses `actor_id` opened since `since` (the rate limit).
    pub async fn break_glass_count_since(
        &self,
        actor_id: i64,
        since: i64,
    ) -> Result<i64, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT COUNT(*) AS n FROM break_glass WHERE actor_id = $1 AND opened_at > $2",
        )
        .bind(actor_id)
        .bind(since)
        .fetch_one(self.pool())
        .await?)
    }

    /// Records a break-glass access until `expires_at` unless `actor_id`
    /// already opened `per_hour` in the hour before `opened_at` (false then,
    /// nothing written). Exact with several nodes: the row is written before
    /// counting (SQLite: one writer at a time) and, on PostgreSQL, under a
    /// lock on the actor's account row. Rows that neither count for the limit
    /// nor are open any more are deleted.
    pub async fn open_break_glass(
        &self,
        actor_id: i64,
        patient_id: i64,
        reason: &str,
        opened_at: i64,
        expires_at: i64,
        per_hour: i64,
    ) -> Result<bool, StoreError> {
        let mut tx = self.pool().begin().await?;
        if self.backend() == super::Backend::Postgres {
            sqlx::query("SELECT id FROM accounts WHERE id = $1 FOR UPDATE")
                .bind(actor_id)
                .fetch_optional(&mut *tx)
                .await?;
        }
        sqlx::query(
            "INSERT INTO break_glass (actor_id, patient_id, reason, opened_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(actor_id)
        .bind(patient_id)
        .bind(reason)
        .bind(opened_at)
        .bind(expires_at)
        .execute(&mut *tx)
        .await?;
        let n: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) AS n FROM break_glass WHERE actor_id = $1 AND opened_at > $2",
        )
        .bind(actor_id)
        .bind(opened_at - 3600)
        .fetch_one(&mut *tx)
        .await?;
        if n > per_hour {
            tx.rollback().await?;
            return Ok(false);
        }
        sqlx::query("DELETE FROM break_glass WHERE opened_at < $1 AND expires_at < $2")
            .bind(opened_at - 3600)
            .bind(opened_at)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(true)
    }

    /// The reason of `actor_id`'s latest break-glass access to `patient_id`
    /// still open, if any.
    pub async fn open_break_glass_reason(
        &self,
        actor_id: i64,
        patient_id: i64,
    ) -> Result<Option<String>, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT reason FROM break_glass WHERE actor_id = $1 AND patient_id = $2 \
             AND expires_at > $3 ORDER BY opened_at DESC LIMIT 1",
        )
        .bind(actor_id)
        .bind(patient_id)
        .bind(self.now())
        .fetch_optional(self.pool())
        .await?)
    }
}
