//! The patient's agenda as both front ends show it: occurrences in a window
//! (expanded by `agenda::expand`), the answer to an invitation (an iTIP
//! REPLY through the delivery path, then the answer recorded and audited),
//! and the private ICS feed (token stored hashed, revocable). An id that is
//! not the patient's is a 404 and an audit entry on the owner's trail.

use chrono::TimeZone;
use serde::Serialize;

use super::WebServices;
use super::patient::PatientError;
use crate::agenda::{self, PartStat};
use crate::audit::{self, AuditEntry};
use crate::delivery::{AcceptError, CalendarReply, Source};
use crate::store::accounts::Account;
use crate::store::agenda::Appointment;

/// One occurrence of an appointment, as the API and the pages show it.
#[derive(Debug, Clone, Serialize)]
pub struct AppointmentView {
    /// Appointment id (what a reply names).
    pub id: i64,
    /// iCalendar UID.
    pub uid: String,
    /// Title.
    pub title: String,
    /// Description, plain text.
    pub description: Option<String>,
    /// Location.
    pub location: Option<String>,
    /// Start, RFC 3339 in UTC.
    pub start: String,
    /// End, RFC 3339 in UTC.
    pub end: String,
    /// Start in the event's zone, RFC 3339 with its offset.
    pub start_local: String,
    /// End in the event's zone.
    pub end_local: String,
    /// IANA zone the local times are in.
    pub timezone: String,
    /// A whole-day appointment.
    pub all_day: bool,
    /// `CONFIRMED`, `TENTATIVE` or `CANCELLED` (this occurrence).
    pub status: String,
    /// Part of a recurring series.
    pub recurring: bool,
    /// The patient's answer: `NEEDS-ACTION`, `ACCEPTED`, `DECLINED`.
    pub partstat: String,
    /// The organiser (the professional who sent the invitation).
    pub organizer: Organizer,
    /// Unix seconds of the start (sorting, pages).
    #[serde(skip)]
    pub starts_at: i64,
    /// Unix seconds of the end.
    #[serde(skip)]
    pub ends_at: i64,
}

/// The organiser as shown.
#[derive(Debug, Clone, Serialize)]
pub struct Organizer {
    /// Address.
    pub address: String,
    /// Name, when known.
    pub name: Option<String>,
}

impl AppointmentView {
    /// The zone its times are shown in.
    pub fn zone(&self) -> chrono_tz::Tz {
        self.timezone.parse().unwrap_or(agenda::ical::DEFAULT_ZONE)
    }

    /// Whether it is cancelled.
    pub fn cancelled(&self) -> bool {
        self.status == "CANCELLED"
    }
}

fn rfc3339(unix: i64, zone: chrono_tz::Tz) -> String {
    match zone.timestamp_opt(unix, 0).single() {
        Some(d) if zone == chrono_tz::UTC => d.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
        Some(d) => d.to_rfc3339(),
        None => String::new(),
    }
}

fn view(a: &Appointment, start: i64, end: i64, cancelled: bool) -> AppointmentView {
    let zone: chrono_tz::Tz = a
        .tzid
        .as_deref()
        .and_then(|z| z.parse().ok())
        .unwrap_or(agenda::ical::DEFAULT_ZONE);
    AppointmentView {
        id: a.id,
        uid: a.uid.clone(),
        title: a.title.clone(),
        description: a.description.clone(),
        location: a.location.clone(),
        start: rfc3339(start, chrono_tz::UTC),
        end: rfc3339(end, chrono_tz::UTC),
        start_local: rfc3339(start, zone),
        end_local: rfc3339(end, zone),
        timezone: zone.name().to_string(),
        all_day: a.all_day != 0,
        status: if cancelled {
            "CANCELLED".to_string()
        } else {
            a.status.clone()
        },
        recurring: a.recurring != 0 || !a.recurrence_id.is_empty(),
        partstat: a.partstat.clone(),
        organizer: Organizer {
            address: a.organizer.clone(),
            name: a.organizer_name.clone(),
        },
        starts_at: start,
        ends_at: end,
    }
}

/// The patient's occurrences meeting [`from`, `to`), by start.
pub async fn list(
    s: &WebServices,
    p: &Account,
    from: i64,
    to: i64,
) -> Result<Vec<AppointmentView>, PatientError> {
    let limits = agenda::Limits::default();
    if to <= from || to - from > limits.max_window_secs {
        return Err(PatientError::Bad(
            "La période demandée est trop longue ou incorrecte.".into(),
        ));
    }
    let rows = s.store.appointments_of(p.id, from, to).await?;
    let occurrences = agenda::expand::occurrences(&rows, from, to, &limits);
    Ok(occurrences
        .iter()
        .filter_map(|o| {
            rows.iter()
                .find(|r| r.id == o.id)
                .map(|r| view(r, o.start, o.end, o.cancelled))
        })
        .collect())
}

/// Loads an appointment of the patient; another patient's is NotFound and
/// the attempt is audited on the owner's trail.
pub async fn own(s: &WebServices, p: &Account, id: i64) -> Result<Appointment, PatientError> {
    if let Some(a) = s.store.appointment(p.id, id).await? {
        return Ok(a);
    }
    if let Some(owner) = s.store.appointment_owner(id).await? {
        tracing::warn!(
            appointment = id,
            "patient session used on another patient's appointment"
        );
        let entry = AuditEntry::new(
            &p.address,
            "agenda.access_denied",
            &owner,
            &format!("appointment {id}"),
        );
        audit::append(&s.store, &entry).await?;
    }
    Err(PatientError::NotFound)
}

/// The appointment as one view (its first occurrence).
pub fn first_view(a: &Appointment) -> AppointmentView {
    view(a, a.starts_at, a.ends_at, a.status == "CANCELLED")
}

/// Answers appointment `id`: the REPLY goes to the organiser through the
/// delivery path (here or at another operator), then the answer is recorded.
pub async fn reply(
    s: &WebServices,
    p: &Account,
    id: i64,
    partstat: PartStat,
) -> Result<Appointment, PatientError> {
    let a = own(s, p, id).await?;
    if crate::access::check::service_of_actor(&a.organizer).is_some() {
        return Err(PatientError::Bad(
            "Ce rendez-vous a été ajouté par un service connecté : il n'attend pas de réponse."
                .into(),
        ));
    }
    if a.status == "CANCELLED" {
        return Err(PatientError::Bad(
            "Ce rendez-vous a été annulé : il n'y a plus de réponse à donner.".into(),
        ));
    }
    let now = s.store.now();
    let message_id = format!(
        "{:016x}.agenda@{}",
        rand::random::<u64>(),
        s.sender.hostname
    );
    let name = p.shown_name();
    let content = agenda::reply::message(&a, (&p.address, &name), partstat, now, message_id)
        .map_err(|e| PatientError::Unavailable(Box::new(e)))?;
    let source = Source::CalendarReply(CalendarReply {
        patient: p,
        to: &a.organizer,
    });
    match s.sender.delivery.accept(source, content).await {
        Ok(_) => {}
        Err(AcceptError::Unroutable) => {
            return Err(PatientError::Bad(
                "L'organisateur de ce rendez-vous ne peut pas être joint par la messagerie.".into(),
            ));
        }
        Err(e) => return Err(PatientError::Unavailable(Box::new(e))),
    }
    s.store.set_partstat(p.id, id, partstat.as_str()).await?;
    audit::append(
        &s.store,
        &AuditEntry::new(
            &p.address,
            "agenda.reply",
            &p.address,
            &format!("appointment {id} {}", partstat.as_str()),
        ),
    )
    .await?;
    Ok(s.store.appointment(p.id, id).await?.unwrap_or(a))
}

/// A new feed address for the patient (the previous one stops working):
/// returns the token, shown once; only its hash is kept.
pub async fn new_feed(s: &WebServices, p: &Account) -> Result<String, PatientError> {
    let token = data_encoding::BASE32_NOPAD
        .encode(&rand::random::<[u8; 20]>())
        .to_ascii_lowercase();
    s.store
        .set_feed_token(p.id, &super::security::token_hash(&token))
        .await?;
    audit::append(
        &s.store,
        &AuditEntry::new(&p.address, "agenda.feed_created", &p.address, "patient"),
    )
    .await?;
    Ok(token)
}

/// Revokes the patient's feed address.
pub async fn revoke_feed(s: &WebServices, p: &Account) -> Result<(), PatientError> {
    s.store.revoke_feed_token(p.id).await?;
    audit::append(
        &s.store,
        &AuditEntry::new(&p.address, "agenda.feed_revoked", &p.address, "patient"),
    )
    .await?;
    Ok(())
}

/// The feed of the token `token`, or None (unknown or revoked: 404). Every
/// read is audited on the patient's trail (the address is a credential).
pub async fn feed(s: &WebServices, token: &str) -> Result<Option<String>, PatientError> {
    let Some(patient_id) = s
        .store
        .feed_patient(&super::security::token_hash(token))
        .await?
    else {
        return Ok(None);
    };
    let Some(p) = s.store.account_by_id(patient_id).await? else {
        return Ok(None);
    };
    if p.disabled {
        return Ok(None);
    }
    let rows = s.store.all_appointments_of(p.id).await?;
    audit::append(
        &s.store,
        &AuditEntry::new("agenda-feed", "agenda.feed_read", &p.address, "ics"),
    )
    .await?;
    Ok(Some(agenda::feed::calendar(&rows)))
}

/// The patient's recommendations today (`agenda::recommend::of_patient`).
pub async fn recommendations(
    s: &WebServices,
    p: &Account,
) -> Result<Vec<agenda::recommend::Computed>, PatientError> {
    let today = chrono::DateTime::from_timestamp(s.store.now(), 0)
        .map(|d| d.date_naive())
        .unwrap_or_default();
    Ok(agenda::recommend::of_patient(&s.store, p.id, p.ins.as_deref(), today).await?)
}

/// The patient marks recommendation `code` done (on `date`, default today)
/// or not done; audited.
pub async fn mark_recommendation(
    s: &WebServices,
    p: &Account,
    code: &str,
    done: bool,
    date: Option<chrono::NaiveDate>,
) -> Result<(), PatientError> {
    if agenda::recommend::by_code(code).is_none() {
        return Err(PatientError::NotFound);
    }
    let today = chrono::DateTime::from_timestamp(s.store.now(), 0)
        .map(|d| d.date_naive())
        .unwrap_or_default();
    let date = date.unwrap_or(today);
    if date > today {
        return Err(PatientError::Bad(
            "La date ne peut pas être dans le futur.".into(),
        ));
    }
    let status = if done { "DONE" } else { "NOT_DONE" };
    s.store
        .set_recommendation_mark(p.id, code, status, &date.format("%Y-%m-%d").to_string())
        .await?;
    audit::append(
        &s.store,
        &AuditEntry::new(
            &p.address,
            "agenda.recommendation",
            &p.address,
            &format!("{code} {status}"),
        ),
    )
    .await?;
    Ok(())
}
