//! `agenda.write`: a service books an appointment in its patient's agenda
//! (`POST /fhir/r4/Appointment`) and cancels one it booked itself
//! (`PUT` of the resource with status `cancelled`, or a JSON Patch
//! replacing `/status` with `cancelled`). The FHIR reading is here; the
//! rules are `agenda::booking`, the write (with its audit row) is
//! `Store::file_appointments`.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::{Value, json};

use super::{Caller, FhirError, Shared, instant, resource};
use crate::access::check::service_actor;
use crate::agenda::booking::{self, Booking, BookingError, Organiser};
use crate::audit::AuditEntry;
use crate::services::scope::Scope;
use crate::store::agenda::AgendaFiling;

/// Largest Appointment body read (octets).
pub(super) const BODY_LIMIT: usize = 16 * 1024;

/// Most participants read from one Appointment.
const MAX_PARTICIPANTS: usize = 16;

fn invalid(m: &'static str) -> FhirError {
    FhirError(StatusCode::UNPROCESSABLE_ENTITY, "invalid", m)
}

fn too_large() -> FhirError {
    FhirError(
        StatusCode::PAYLOAD_TOO_LARGE,
        "too-costly",
        "the resource is larger than 16 KiB",
    )
}

/// The body as JSON: 413 over [`BODY_LIMIT`], 400 when not JSON.
fn read_json(body: &[u8]) -> Result<Value, FhirError> {
    if body.len() > BODY_LIMIT {
        return Err(too_large());
    }
    serde_json::from_slice(body)
        .map_err(|_| FhirError(StatusCode::BAD_REQUEST, "structure", "not a JSON resource"))
}

/// The body as a JSON resource of `kind` (400 for another).
pub(super) fn read_resource(body: &[u8], kind: &str) -> Result<Value, FhirError> {
    let v = read_json(body)?;
    if v["resourceType"] != kind {
        return Err(FhirError(
            StatusCode::BAD_REQUEST,
            "structure",
            "wrong resourceType for this endpoint",
        ));
    }
    Ok(v)
}

/// A FHIR instant (RFC 3339 with a zone) as Unix seconds.
fn instant_of(v: &Value) -> Option<i64> {
    chrono::DateTime::parse_from_rfc3339(v.as_str()?)
        .ok()
        .map(|d| d.timestamp())
}

/// Reads a posted Appointment into a booking.
fn booking_of(v: &Value) -> Result<Booking, FhirError> {
    let confirmed = match v["status"].as_str() {
        Some("booked") => true,
        Some("pending" | "proposed") => false,
        _ => {
            return Err(FhirError(
                StatusCode::UNPROCESSABLE_ENTITY,
                "code-invalid",
                "status must be booked, pending or proposed",
            ));
        }
    };
    let (Some(start), Some(end)) = (instant_of(&v["start"]), instant_of(&v["end"])) else {
        return Err(FhirError(
            StatusCode::UNPROCESSABLE_ENTITY,
            "value",
            "start and end must be FHIR instants with a time zone",
        ));
    };
    let text = |x: &Value| x.as_str().map(str::to_string);
    let title = text(&v["description"])
        .or_else(|| text(&v["serviceType"][0]["text"]))
        .or_else(|| text(&v["serviceType"][0]["coding"][0]["display"]))
        .unwrap_or_default();
    let participants = v["participant"].as_array().map_or(&[][..], Vec::as_slice);
    if participants.len() > MAX_PARTICIPANTS {
        return Err(invalid("too many participants"));
    }
    let display_of = |prefixes: &[&str]| {
        participants.iter().find_map(|p| {
            let actor = &p["actor"];
            let reference = actor["reference"].as_str().unwrap_or_default();
            prefixes
                .iter()
                .any(|pre| reference.starts_with(pre))
                .then(|| text(&actor["display"]))
                .flatten()
        })
    };
    let location = display_of(&["Location/"]);
    let practitioner = display_of(&["Practitioner/", "PractitionerRole/"]);
    let description = match (practitioner, text(&v["comment"])) {
        (Some(p), Some(c)) => Some(format!("Avec {p}\n{c}")),
        (Some(p), None) => Some(format!("Avec {p}")),
        (None, c) => c,
    };
    Ok(Booking {
        confirmed,
        start,
        end,
        title,
        description,
        location,
    })
}

fn refused(e: BookingError) -> FhirError {
    invalid(match e {
        BookingError::Times => "end must be after start, at most 31 days later",
        BookingError::Window => "start is too far from today",
        BookingError::Title(_) => {
            "a description (or serviceType text) of 1 to 300 characters is required"
        }
        BookingError::Text("comment") => "comment too long or with control characters",
        BookingError::Text(_) => "location too long or with control characters",
    })
}

fn filing(patient_id: i64, a: crate::store::agenda::NewAppointment) -> AgendaFiling {
    AgendaFiling {
        appointments: vec![(patient_id, a)],
        outcomes: Vec::new(),
        supersedes: crate::agenda::supersedes,
    }
}

/// POST /fhir/r4/Appointment (`agenda.write`): 201 with the resource's id.
pub(super) async fn create(
    State(s): State<Shared>,
    c: Caller,
    body: axum::body::Bytes,
) -> Result<Response, FhirError> {
    c.allow(&s, Scope::AgendaWrite, "Appointment create")
        .await?;
    let v = read_resource(&body, "Appointment")?;
    let b = booking_of(&v)?;
    let actor = service_actor(&c.service.id);
    let uid = format!("{}@{}", crate::services::pkce::random(), c.service.id);
    let now = s.store.now();
    let a = booking::book(
        &b,
        Organiser {
            actor: &actor,
            name: &c.service.name,
        },
        &uid,
        now,
        &crate::agenda::Limits::default(),
    )
    .map_err(refused)?;
    let audit = AuditEntry::new(
        &actor,
        "agenda.service_book",
        &c.patient.address,
        &format!("appointment {uid}"),
    );
    let id = s
        .store
        .file_appointments(&filing(c.patient.id, a.clone()), &audit)
        .await
        .map_err(FhirError::unavailable)?
        .ok_or_else(|| FhirError::unavailable("booked appointment not found"))?;
    let mut res = resource(json!({
        "resourceType": "Appointment",
        "id": id.to_string(),
        "status": v["status"],
        "description": a.title,
        "start": instant(a.starts_at),
        "end": instant(a.ends_at),
    }));
    *res.status_mut() = StatusCode::CREATED;
    if let Ok(loc) = axum::http::HeaderValue::from_str(&format!("Appointment/{id}")) {
        res.headers_mut().insert(axum::http::header::LOCATION, loc);
    }
    Ok(res)
}

/// Whether a PUT body or a JSON Patch asks for the cancellation (the only
/// change a service may make); 422 for any other.
fn asks_cancel(body: &[u8]) -> Result<(), FhirError> {
    let only = || invalid("only a change of status to cancelled is accepted");
    let v = read_json(body)?;
    let cancels = match &v {
        Value::Array(ops) => {
            ops.len() == 1
                && ops[0]["op"] == "replace"
                && ops[0]["path"] == "/status"
                && ops[0]["value"] == "cancelled"
        }
        Value::Object(_) => v["resourceType"] == "Appointment" && v["status"] == "cancelled",
        _ => false,
    };
    if cancels { Ok(()) } else { Err(only()) }
}

/// PUT or PATCH /fhir/r4/Appointment/{id}: cancels an appointment the
/// service booked itself; another's is 403, another patient's 404.
pub(super) async fn cancel(
    State(s): State<Shared>,
    c: Caller,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Result<Response, FhirError> {
    let what = format!("Appointment cancel {id}");
    c.allow(&s, Scope::AgendaWrite, &what).await?;
    asks_cancel(&body)?;
    let Ok(id) = id.parse::<i64>() else {
        return Err(FhirError::not_found());
    };
    let Some(a) = s
        .store
        .appointment(c.patient.id, id)
        .await
        .map_err(FhirError::unavailable)?
    else {
        let owner = s
            .store
            .appointment_patient(id)
            .await
            .map_err(FhirError::unavailable)?;
        return Err(c.stranger(&s, owner, &what).await);
    };
    let actor = service_actor(&c.service.id);
    if a.organizer != actor {
        return Err(FhirError(
            StatusCode::FORBIDDEN,
            "forbidden",
            "only appointments this service booked can be cancelled",
        ));
    }
    if a.status != "CANCELLED" {
        let audit = AuditEntry::new(
            &actor,
            "agenda.service_cancel",
            &c.patient.address,
            &format!("appointment {}", a.uid),
        );
        s.store
            .file_appointments(
                &filing(c.patient.id, booking::cancel(&a, s.store.now())),
                &audit,
            )
            .await
            .map_err(FhirError::unavailable)?;
    }
    Ok(resource(json!({
        "resourceType": "Appointment",
        "id": id.to_string(),
        "status": "cancelled",
        "description": a.title,
        "start": instant(a.starts_at),
        "end": instant(a.ends_at),
    })))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn appointments_are_read_strictly() {
        let v = json!({
            "resourceType": "Appointment", "status": "booked",
            "start": "2027-01-10T09:00:00+01:00", "end": "2027-01-10T09:30:00+01:00",
            "serviceType": [{ "text": "Téléconsultation" }],
            "comment": "Prévoir la carte Vitale",
            "participant": [
                { "actor": { "reference": "Location/1", "display": "Cabinet Pasteur" } },
                { "actor": { "reference": "Practitioner/2", "display": "Dr Martin" } },
            ],
        });
        let b = booking_of(&v).unwrap();
        assert_eq!(b.start, 1_799_568_000);
        assert_eq!(b.title, "Téléconsultation");
        assert_eq!(b.location.as_deref(), Some("Cabinet Pasteur"));
        assert_eq!(
            b.description.as_deref(),
            Some("Avec Dr Martin\nPrévoir la carte Vitale")
        );
        let mut bad = v.clone();
        bad["status"] = json!("arrived");
        assert_eq!(
            booking_of(&bad).unwrap_err().0,
            StatusCode::UNPROCESSABLE_ENTITY
        );
        let mut bad = v.clone();
        bad["start"] = json!("2027-01-10T09:00:00");
        assert_eq!(booking_of(&bad).unwrap_err().1, "value");
        assert!(asks_cancel(br#"[{"op":"replace","path":"/status","value":"cancelled"}]"#).is_ok());
        assert!(asks_cancel(br#"{"resourceType":"Appointment","status":"cancelled"}"#).is_ok());
        assert!(asks_cancel(br#"{"resourceType":"Appointment","status":"booked"}"#).is_err());
        assert_eq!(
            read_resource(b"{", "Appointment").unwrap_err().0,
            StatusCode::BAD_REQUEST
        );
    }
}
