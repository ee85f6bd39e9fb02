//! The profil médical as FHIR resources, for `profile.read`: maladies as
//! `Condition`, allergies as `AllergyIntolerance`, vaccinations as
//! `Immunization`, traitements as `MedicationStatement`, mesures and the
//! blood group as `Observation`.

use axum::extract::{Path, State};
use axum::response::Response;
use serde_json::{Value, json};

use super::{Caller, FhirError, Shared, bundle, patient_ref};
use crate::services::scope::Scope;
use crate::store::accounts::Account;
use crate::store::dossier::ProfileItem;

/// The profile entries each resource type shows.
fn categories(resource: &str) -> Option<&'static [&'static str]> {
    Some(match resource {
        "Condition" => &["maladies", "hospitalisations", "handicaps"],
        "AllergyIntolerance" => &["allergies"],
        "Immunization" => &["vaccinations"],
        "MedicationStatement" => &["traitements"],
        "Observation" => &["mesures", "groupe_sanguin"],
        _ => return None,
    })
}

fn item(resource: &str, i: &ProfileItem, p: &Account) -> Value {
    let code = json!({
        "text": i.label,
        "coding": i.code.as_ref().map(|c| vec![json!({ "code": c })]),
    });
    let subject = patient_ref(p);
    let mut r = match resource {
        "Condition" => json!({ "code": code, "subject": subject, "onsetDateTime": i.date }),
        "AllergyIntolerance" => json!({ "code": code, "patient": subject, "recordedDate": i.date }),
        "Immunization" => json!({
            "status": "completed", "vaccineCode": code, "patient": subject,
            "occurrenceString": i.date.clone().unwrap_or_else(|| "inconnue".into()),
        }),
        "MedicationStatement" => json!({
            "status": "active", "medicationCodeableConcept": code, "subject": subject,
            "effectiveDateTime": i.date,
        }),
        _ => json!({
            "status": "final", "code": code, "subject": subject,
            "valueString": i.value, "effectiveDateTime": i.date,
        }),
    };
    r["resourceType"] = json!(resource);
    r["id"] = json!(i.id.to_string());
    r["recorder"] = match &i.author {
        Some(a) => json!({ "display": a }),
        None => json!({ "display": "déclaré par le patient" }),
    };
    r
}

/// GET /fhir/r4/{Condition|AllergyIntolerance|Immunization|MedicationStatement|Observation}
pub(super) async fn search(
    State(s): State<Shared>,
    c: Caller,
    Path(resource): Path<String>,
) -> Result<Response, FhirError> {
    let Some(wanted) = categories(&resource) else {
        return Err(FhirError::not_found());
    };
    c.allow(&s, Scope::ProfileRead, &format!("{resource} search"))
        .await?;
    let items = s
        .store
        .profile_of(c.patient.id)
        .await
        .map_err(FhirError::unavailable)?;
    Ok(bundle(
        items
            .iter()
            .filter(|i| wanted.contains(&i.category.as_str()))
            .map(|i| item(&resource, i, &c.patient))
            .collect(),
    ))
}
