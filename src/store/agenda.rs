//! The patient's agenda as stored: appointments (one row per organiser, UID
//! and recurrence instance) and the private ICS feed tokens. Rows that come
//! with a message are written inside that message's transaction
//! (`messages::link_on`), so an invitation is indexed with its message or not
//! at all. Which version of an appointment wins is the agenda's rule
//! (`crate::agenda`), handed in with the rows as [`AgendaFiling::supersedes`].

use sqlx::AnyConnection;

use super::dossier::IndexingOutcome;
use super::{Store, StoreError};

/// The version of an appointment, as the rule that orders updates sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Version {
    /// iCalendar SEQUENCE.
    pub sequence: i64,
    /// DTSTAMP (Unix seconds).
    pub dtstamp: i64,
    /// The row says cancelled.
    pub cancelled: bool,
}

/// An appointment to create or update.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NewAppointment {
    /// The proven author of the invitation (the organiser for us).
    pub organizer: String,
    /// The author's name as shown to the patient.
    pub organizer_name: Option<String>,
    /// iCalendar UID.
    pub uid: String,
    /// RECURRENCE-ID in UTC seconds as text, '' for the event itself.
    pub recurrence_id: String,
    /// SEQUENCE.
    pub sequence: i64,
    /// DTSTAMP (Unix seconds).
    pub dtstamp: i64,
    /// `CONFIRMED`, `TENTATIVE` or `CANCELLED`.
    pub status: String,
    /// SUMMARY.
    pub title: String,
    /// DESCRIPTION as plain text.
    pub description: Option<String>,
    /// LOCATION.
    pub location: Option<String>,
    /// Start (Unix seconds, first occurrence).
    pub starts_at: i64,
    /// End (Unix seconds).
    pub ends_at: i64,
    /// IANA name of the event's zone (None: UTC or floating).
    pub tzid: Option<String>,
    /// A whole-day event.
    pub all_day: bool,
    /// Has an RRULE (expanded at display).
    pub recurring: bool,
    /// The VCALENDAR of this UID (time zones included).
    pub ics: String,
}

impl NewAppointment {
    /// Its version.
    pub fn version(&self) -> Version {
        Version {
            sequence: self.sequence,
            dtstamp: self.dtstamp,
            cancelled: self.status == "CANCELLED",
        }
    }
}

/// Everything a delivery files in patients' agendas, written with the message.
#[derive(Debug, Clone)]
pub struct AgendaFiling {
    /// (patient account id, appointment).
    pub appointments: Vec<(i64, NewAppointment)>,
    /// Calendar parts that could not be indexed, per patient recipient.
    pub outcomes: Vec<IndexingOutcome>,
    /// Whether an incoming version replaces the stored one (`agenda::supersedes`).
    pub supersedes: fn(incoming: Version, stored: Version) -> bool,
}

/// An appointment as read.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Appointment {
    /// Row id.
    pub id: i64,
    /// The patient.
    pub patient_id: i64,
    /// The organiser's address (the proven author).
    pub organizer: String,
    /// The organiser's name.
    pub organizer_name: Option<String>,
    /// iCalendar UID.
    pub uid: String,
    /// '' or the RECURRENCE-ID (UTC seconds).
    pub recurrence_id: String,
    /// SEQUENCE.
    pub sequence: i64,
    /// DTSTAMP.
    pub dtstamp: i64,
    /// `CONFIRMED`, `TENTATIVE` or `CANCELLED`.
    pub status: String,
    /// Title.
    pub title: String,
    /// Description.
    pub description: Option<String>,
    /// Location.
    pub location: Option<String>,
    /// Start (Unix seconds).
    pub starts_at: i64,
    /// End (Unix seconds).
    pub ends_at: i64,
    /// IANA zone of the event.
    pub tzid: Option<String>,
    /// Whole day (0/1).
    pub all_day: i64,
    /// Recurring (0/1).
    pub recurring: i64,
    /// The VCALENDAR kept.
    pub ics: String,
    /// The patient's answer: `NEEDS-ACTION`, `ACCEPTED`, `DECLINED`.
    pub partstat: String,
    /// The message that brought the last version.
    pub message_id: Option<i64>,
    /// First filed.
    pub created_at: i64,
    /// Last changed.
    pub updated_at: i64,
}

const COLUMNS: &str = "id, patient_id, organizer, organizer_name, uid, recurrence_id, sequence, dtstamp, \
     status, title, description, location, starts_at, ends_at, tzid, all_day, recurring, ics, partstat, \
     message_id, created_at, updated_at";

/// Writes the appointments and outcomes of one message, on the delivery's connection.
pub(super) async fn file_on(
    conn: &mut AnyConnection,
    message_id: Option<i64>,
    filing: &AgendaFiling,
    t: i64,
) -> Result<(), StoreError> {
    for (patient_id, a) in &filing.appointments {
        let stored: Option<(i64, i64, i64, String)> = sqlx::query_as(
            "SELECT id, sequence, dtstamp, status FROM appointments \
             WHERE patient_id = $1 AND organizer = $2 AND uid = $3 AND recurrence_id = $4",
        )
        .bind(patient_id)
        .bind(&a.organizer)
        .bind(&a.uid)
        .bind(&a.recurrence_id)
        .fetch_optional(&mut *conn)
        .await?;
        match stored {
            None => {
                sqlx::query(
                    "INSERT INTO appointments (patient_id, organizer, organizer_name, uid, recurrence_id, \
                     sequence, dtstamp, status, title, description, location, starts_at, ends_at, tzid, \
                     all_day, recurring, ics, message_id, created_at, updated_at) VALUES \
                     ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $19)",
                )
                .bind(patient_id)
                .bind(&a.organizer)
                .bind(&a.organizer_name)
                .bind(&a.uid)
                .bind(&a.recurrence_id)
                .bind(a.sequence)
                .bind(a.dtstamp)
                .bind(&a.status)
                .bind(&a.title)
                .bind(&a.description)
                .bind(&a.location)
                .bind(a.starts_at)
                .bind(a.ends_at)
                .bind(&a.tzid)
                .bind(i64::from(a.all_day))
                .bind(i64::from(a.recurring))
                .bind(&a.ics)
                .bind(message_id)
                .bind(t)
                .execute(&mut *conn)
                .await?;
            }
            Some((id, sequence, dtstamp, status)) => {
                let old = Version {
                    sequence,
                    dtstamp,
                    cancelled: status == "CANCELLED",
                };
                if !(filing.supersedes)(a.version(), old) {
                    continue;
                }
                // A new SEQUENCE asks the attendee again (RFC 5546 §2.1.4).
                sqlx::query(
                    "UPDATE appointments SET organizer_name = $1, sequence = $2, dtstamp = $3, status = $4, \
                     title = $5, description = $6, location = $7, starts_at = $8, ends_at = $9, tzid = $10, \
                     all_day = $11, recurring = $12, ics = $13, message_id = $14, updated_at = $15, \
                     partstat = CASE WHEN $2 > sequence THEN 'NEEDS-ACTION' ELSE partstat END \
                     WHERE id = $16",
                )
                .bind(&a.organizer_name)
                .bind(a.sequence)
                .bind(a.dtstamp)
                .bind(&a.status)
                .bind(&a.title)
                .bind(&a.description)
                .bind(&a.location)
                .bind(a.starts_at)
                .bind(a.ends_at)
                .bind(&a.tzid)
                .bind(i64::from(a.all_day))
                .bind(i64::from(a.recurring))
                .bind(&a.ics)
                .bind(message_id)
                .bind(t)
                .bind(id)
                .execute(&mut *conn)
                .await?;
            }
        }
    }
    for o in &filing.outcomes {
        sqlx::query(
            "INSERT INTO indexing_outcomes (message_id, recipient, outcome, detail, created_at) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(message_id)
        .bind(&o.recipient)
        .bind(&o.outcome)
        .bind(&o.detail)
        .bind(t)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

impl Store {
    /// Files appointments that come with no message (a connected service's
    /// booking or cancellation, `agenda::booking`) under the same rule as
    /// a delivery's, with their audit row, in one transaction. Returns the
    /// row id of the first appointment.
    pub async fn file_appointments(
        &self,
        filing: &AgendaFiling,
        audit: &super::audit::AuditEntry,
    ) -> Result<Option<i64>, StoreError> {
        let t = self.now();
        let mut tx = self.pool().begin().await?;
        file_on(&mut tx, None, filing, t).await?;
        super::audit::append_on(&mut tx, audit, t).await?;
        let id = match filing.appointments.first() {
            Some((patient_id, a)) => {
                sqlx::query_scalar(
                    "SELECT id FROM appointments WHERE patient_id = $1 AND organizer = $2 \
                     AND uid = $3 AND recurrence_id = $4",
                )
                .bind(patient_id)
                .bind(&a.organizer)
                .bind(&a.uid)
                .bind(&a.recurrence_id)
                .fetch_optional(&mut *tx)
                .await?
            }
            None => None,
        };
        tx.commit().await?;
        self.wrote();
        Ok(id)
    }

    /// The id of the patient owning appointment `id`.
    pub async fn appointment_patient(&self, id: i64) -> Result<Option<i64>, StoreError> {
        Ok(
            sqlx::query_scalar("SELECT patient_id FROM appointments WHERE id = $1")
                .bind(id)
                .fetch_optional(self.pool())
                .await?,
        )
    }

    /// The patient's appointments that may have an occurrence in
    /// [`from`, `to`) (recurring ones always: they are expanded by the
    /// caller), by start.
    pub async fn appointments_of(
        &self,
        patient_id: i64,
        from: i64,
        to: i64,
    ) -> Result<Vec<Appointment>, StoreError> {
        Ok(sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM appointments WHERE patient_id = $1 \
             AND (recurring = 1 OR recurrence_id <> '' OR (ends_at >= $2 AND starts_at < $3)) \
             ORDER BY starts_at, id"
        ))
        .bind(patient_id)
        .bind(from)
        .bind(to)
        .fetch_all(self.pool())
        .await?)
    }

    /// Every appointment of the patient (the ICS feed).
    pub async fn all_appointments_of(
        &self,
        patient_id: i64,
    ) -> Result<Vec<Appointment>, StoreError> {
        Ok(sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM appointments WHERE patient_id = $1 ORDER BY starts_at, id"
        ))
        .bind(patient_id)
        .fetch_all(self.pool())
        .await?)
    }

    /// Appointment `id` when it is the patient's.
    pub async fn appointment(
        &self,
        patient_id: i64,
        id: i64,
    ) -> Result<Option<Appointment>, StoreError> {
        Ok(sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM appointments WHERE id = $1 AND patient_id = $2"
        ))
        .bind(id)
        .bind(patient_id)
        .fetch_optional(self.pool())
        .await?)
    }

    /// The address of the patient appointment `id` belongs to.
    pub async fn appointment_owner(&self, id: i64) -> Result<Option<String>, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT a.address FROM appointments p JOIN accounts a ON a.id = p.patient_id WHERE p.id = $1",
        )
        .bind(id)
        .fetch_optional(self.pool())
        .await?)
    }

    /// Records the patient's answer to appointment `id`.
    pub async fn set_partstat(
        &self,
        patient_id: i64,
        id: i64,
        partstat: &str,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE appointments SET partstat = $1, updated_at = $2 WHERE id = $3 AND patient_id = $4",
        )
        .bind(partstat)
        .bind(self.now())
        .bind(id)
        .bind(patient_id)
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Sets the patient's feed token (its hash), replacing any previous one.
    pub async fn set_feed_token(
        &self,
        patient_id: i64,
        token_hash: &str,
    ) -> Result<(), StoreError> {
        let mut tx = self.pool().begin().await?;
        sqlx::query("DELETE FROM agenda_feeds WHERE patient_id = $1")
            .bind(patient_id)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT INTO agenda_feeds (patient_id, token_hash, created_at) VALUES ($1, $2, $3)",
        )
        .bind(patient_id)
        .bind(token_hash)
        .bind(self.now())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Revokes the patient's feed token.
    pub async fn revoke_feed_token(&self, patient_id: i64) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM agenda_feeds WHERE patient_id = $1")
            .bind(patient_id)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// Whether the patient has a feed, and since when.
    pub async fn feed_created(&self, patient_id: i64) -> Result<Option<i64>, StoreError> {
        Ok(
            sqlx::query_scalar("SELECT created_at FROM agenda_feeds WHERE patient_id = $1")
                .bind(patient_id)
                .fetch_optional(self.pool())
                .await?,
        )
    }

    /// The patient whose feed token has this hash.
    pub async fn feed_patient(&self, token_hash: &str) -> Result<Option<i64>, StoreError> {
        Ok(
            sqlx::query_scalar("SELECT patient_id FROM agenda_feeds WHERE token_hash = $1")
                .bind(token_hash)
                .fetch_optional(self.pool())
                .await?,
        )
    }

    /// The patient's marks of recommendations: (code, status, done_on).
    pub async fn recommendation_marks(
        &self,
        patient_id: i64,
    ) -> Result<Vec<(String, String, String)>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT code, status, done_on FROM recommendation_marks WHERE patient_id = $1 ORDER BY code",
        )
        .bind(patient_id)
        .fetch_all(self.pool())
        .await?)
    }

    /// Records the patient's mark of recommendation `code`.
    pub async fn set_recommendation_mark(
        &self,
        patient_id: i64,
        code: &str,
        status: &str,
        done_on: &str,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO recommendation_marks (patient_id, code, status, done_on, updated_at) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (patient_id, code) DO UPDATE SET \
             status = excluded.status, done_on = excluded.done_on, updated_at = excluded.updated_at",
        )
        .bind(patient_id)
        .bind(code)
        .bind(status)
        .bind(done_on)
        .bind(self.now())
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Patients who gave a notice address and want some agenda reminder:
    /// (patient id, INS, address, appointments, prevention).
    pub async fn reminder_targets(
        &self,
    ) -> Result<Vec<(i64, Option<String>, String, bool, bool)>, StoreError> {
        let rows: Vec<(i64, Option<String>, String, i64, i64)> = sqlx::query_as(
            "SELECT a.id, a.ins, s.notify_email, s.notify_appointment, s.notify_screening \
             FROM patient_settings s JOIN accounts a ON a.id = s.account_id \
             WHERE s.notify_email IS NOT NULL AND a.disabled = 0 \
             AND (s.notify_appointment = 1 OR s.notify_screening = 1) ORDER BY a.id",
        )
        .fetch_all(self.pool())
        .await?;
        Ok(rows
            .into_iter()
            .map(|(id, ins, email, a, s)| (id, ins, email, a != 0, s != 0))
            .collect())
    }

    /// Takes the slot of one reminder: true (and recorded) only the first
    /// time, on any node.
    pub async fn take_reminder_slot(
        &self,
        patient_id: i64,
        kind: &str,
        subject: &str,
        due_day: &str,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "INSERT INTO agenda_reminders (patient_id, kind, subject, due_day, sent_at) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
        )
        .bind(patient_id)
        .bind(kind)
        .bind(subject)
        .bind(due_day)
        .bind(self.now())
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// The patient's agenda reminder switches: (appointments, prevention).
    pub async fn agenda_notice_settings(
        &self,
        patient_id: i64,
    ) -> Result<(bool, bool), StoreError> {
        let row: Option<(i64, i64)> = sqlx::query_as(
            "SELECT notify_appointment, notify_screening FROM patient_settings WHERE account_id = $1",
        )
        .bind(patient_id)
        .fetch_optional(self.pool())
        .await?;
        Ok(row.map_or((true, true), |(a, s)| (a != 0, s != 0)))
    }

    /// Sets the agenda reminder switches (after the notice settings exist).
    pub async fn set_agenda_notice_settings(
        &self,
        patient_id: i64,
        appointments: bool,
        prevention: bool,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO patient_settings (account_id, notify_appointment, notify_screening) VALUES ($1, $2, $3) \
             ON CONFLICT (account_id) DO UPDATE SET notify_appointment = excluded.notify_appointment, \
             notify_screening = excluded.notify_screening",
        )
        .bind(patient_id)
        .bind(i64::from(appointments))
        .bind(i64::from(prevention))
        .execute(self.pool())
        .await?;
        Ok(())
    }
}
