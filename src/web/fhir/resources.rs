//! The agenda as FHIR `Appointment`, for `agenda.read`.

use axum::extract::State;
use axum::response::Response;
use serde_json::json;

use super::{Caller, FhirError, Shared, bundle, instant, patient_ref};
use crate::services::scope::Scope;

/// GET /fhir/r4/Appointment
pub(super) async fn appointments(
    State(s): State<Shared>,
    c: Caller,
) -> Result<Response, FhirError> {
    c.allow(&s, Scope::AgendaRead, "Appointment search").await?;
    let rows = s
        .store
        .all_appointments_of(c.patient.id)
        .await
        .map_err(FhirError::unavailable)?;
    Ok(bundle(
        rows.iter()
            .map(|a| {
                json!({
                    "resourceType": "Appointment",
                    "id": a.id.to_string(),
                    "status": match a.status.as_str() {
                        "CANCELLED" => "cancelled",
                        "TENTATIVE" => "pending",
                        _ => "booked",
                    },
                    "description": a.title,
                    "comment": a.location,
                    "start": instant(a.starts_at),
                    "end": instant(a.ends_at),
                    "participant": [
                        { "actor": patient_ref(&c.patient), "status": "accepted" },
                        {
                            "actor": { "display": a.organizer_name.clone().unwrap_or_else(|| a.organizer.clone()) },
                            "status": "accepted",
                        },
                    ],
                })
            })
            .collect(),
    ))
}
