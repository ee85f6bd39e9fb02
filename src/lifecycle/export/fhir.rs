//! The profil médical and the agenda as one FHIR R4 Bundle of type
//! `collection`: the Patient (INS), then one resource per profile item as
//! stored (Condition, AllergyIntolerance, Immunization, MedicationStatement,
//! or Observation for the entries FHIR has no closer resource for), then one
//! Appointment per agenda row. Ids are made from row ids, so the same state
//! gives the same bytes. Both parts are small (a patient's profile and
//! agenda), so the bundle is built whole.

use serde_json::{Value, json};

use crate::store::agenda::Appointment;
use crate::store::dossier::ProfileItem;

/// OID of the INS-NIR (the patient's identifier).
const INS_SYSTEM: &str = "urn:oid:1.2.250.1.213.1.4.8";

/// A stable `urn:uuid:` for a resource kind and row id (name-based, from SHA-256).
fn urn(kind: &str, id: i64) -> String {
    use sha2::{Digest, Sha256};
    let h = Sha256::digest(format!("mes-export:{kind}:{id}").as_bytes());
    let mut b = [0u8; 16];
    b.copy_from_slice(&h[..16]);
    b[6] = (b[6] & 0x0f) | 0x50;
    b[8] = (b[8] & 0x3f) | 0x80;
    let x = hex::encode(b);
    format!(
        "urn:uuid:{}-{}-{}-{}-{}",
        &x[..8],
        &x[8..12],
        &x[12..16],
        &x[16..20],
        &x[20..]
    )
}

/// An HL7 TS (`YYYYMMDD[HHMM[SS]]`, with an optional zone) or an ISO date
/// as a FHIR `dateTime`; None when it is neither.
pub fn date_time(raw: &str) -> Option<String> {
    let raw = raw.trim();
    let digits: String = raw.chars().take_while(char::is_ascii_digit).collect();
    let iso = raw.len() >= 10 && raw.as_bytes().get(4) == Some(&b'-');
    if iso {
        return chrono::NaiveDate::parse_from_str(&raw[..10], "%Y-%m-%d")
            .ok()
            .map(|d| d.format("%Y-%m-%d").to_string());
    }
    let date = |d: &str| chrono::NaiveDate::parse_from_str(d, "%Y%m%d").ok();
    match digits.len() {
        4 => Some(digits),
        6 => Some(format!("{}-{}", &digits[..4], &digits[4..])),
        8.. => {
            let d = date(&digits[..8])?;
            Some(d.format("%Y-%m-%d").to_string())
        }
        _ => None,
    }
}

/// A CodeableConcept: the label as text, the stored code (`code^system`
/// or a bare code) as a coding.
fn concept(label: &str, code: Option<&str>) -> Value {
    let mut c = json!({ "text": label });
    if let Some(code) = code.map(str::trim).filter(|c| !c.is_empty()) {
        let (code, system) = match code.split_once('^') {
            Some((c, s)) if !s.trim().is_empty() => (c.trim(), Some(s.trim())),
            Some((c, _)) => (c.trim(), None),
            None => (code, None),
        };
        let mut coding = json!({ "code": code, "display": label });
        if let Some(s) = system {
            let system = if s.chars().all(|c| c.is_ascii_digit() || c == '.') {
                format!("urn:oid:{s}")
            } else {
                s.to_string()
            };
            coding["system"] = json!(system);
        }
        c["coding"] = json!([coding]);
    }
    c
}

/// The notes of an item: its value, its source and who recorded it.
fn notes(item: &ProfileItem) -> Value {
    let mut out = Vec::new();
    if let Some(v) = item.value.as_deref().filter(|v| !v.is_empty()) {
        out.push(json!({ "text": format!("Valeur : {v}") }));
    }
    match &item.document_title {
        Some(t) => out.push(json!({ "text": format!("Source : {t}") })),
        None => out.push(json!({ "text": "Déclaré par le patient" })),
    }
    json!(out)
}

/// The resource for one profile item, as stored.
pub fn profile_resource(item: &ProfileItem, patient: &str) -> Value {
    let subject = json!({ "reference": patient });
    let when = item.date.as_deref().and_then(date_time);
    let code = concept(&item.label, item.code.as_deref());
    let category = json!([{ "text": item.category }]);
    let mut r = match item.category.as_str() {
        "allergies" => {
            let mut r = json!({
                "resourceType": "AllergyIntolerance",
                "code": code,
                "patient": subject,
            });
            if let Some(w) = &when {
                r["recordedDate"] = json!(w);
            }
            r
        }
        "vaccinations" => json!({
            "resourceType": "Immunization",
            "status": "completed",
            "vaccineCode": code,
            "patient": subject,
            "occurrenceString": item.date.clone().unwrap_or_else(|| "date inconnue".into()),
        }),
        "traitements" => {
            let mut r = json!({
                "resourceType": "MedicationStatement",
                "status": "unknown",
                "medicationCodeableConcept": code,
                "subject": subject,
            });
            if let Some(w) = &when {
                r["effectiveDateTime"] = json!(w);
            }
            r
        }
        "maladies" | "hospitalisations" | "handicaps" | "antecedents_familiaux" => {
            let mut r = json!({
                "resourceType": "Condition",
                "category": category,
                "code": code,
                "subject": subject,
            });
            if let Some(w) = &when {
                r["recordedDate"] = json!(w);
            }
            r
        }
        _ => {
            let mut r = json!({
                "resourceType": "Observation",
                "status": "final",
                "category": category,
                "code": code,
                "subject": subject,
            });
            if let Some(v) = item.value.as_deref().filter(|v| !v.is_empty()) {
                r["valueString"] = json!(v);
            }
            if let Some(w) = &when {
                r["effectiveDateTime"] = json!(w);
            }
            r
        }
    };
    r["id"] = json!(format!("profil-{}", item.id));
    r["note"] = notes(item);
    r
}

fn instant(at: i64) -> String {
    chrono::DateTime::from_timestamp(at, 0)
        .unwrap_or_default()
        .format("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

/// The Appointment for one agenda row: status from the iCalendar STATUS,
/// the organiser and the patient (with their answer) as participants.
pub fn appointment(a: &Appointment, patient: &str) -> Value {
    let status = match a.status.as_str() {
        "CANCELLED" => "cancelled",
        "TENTATIVE" => "proposed",
        _ => "booked",
    };
    let answer = match a.partstat.as_str() {
        "ACCEPTED" => "accepted",
        "DECLINED" => "declined",
        "TENTATIVE" => "tentative",
        _ => "needs-action",
    };
    let mut comment = Vec::new();
    if let Some(l) = a.location.as_deref().filter(|l| !l.is_empty()) {
        comment.push(format!("Lieu : {l}"));
    }
    if let Some(d) = a.description.as_deref().filter(|d| !d.is_empty()) {
        comment.push(d.to_string());
    }
    let organizer = a
        .organizer_name
        .clone()
        .unwrap_or_else(|| a.organizer.clone());
    let mut r = json!({
        "resourceType": "Appointment",
        "id": format!("rdv-{}", a.id),
        "identifier": [{ "system": "urn:ietf:rfc:5545", "value": a.uid }],
        "status": status,
        "description": a.title,
        "start": instant(a.starts_at),
        "end": instant(a.ends_at),
        "participant": [
            { "actor": { "display": organizer }, "required": "required", "status": "accepted" },
            { "actor": { "reference": patient }, "required": "required", "status": answer },
        ],
    });
    if !comment.is_empty() {
        r["comment"] = json!(comment.join("\n"));
    }
    r
}

/// The whole Bundle: the patient, the profile, the agenda.
pub fn bundle(
    patient_id: i64,
    ins: Option<&str>,
    profile: &[ProfileItem],
    agenda: &[Appointment],
) -> Value {
    let patient_urn = urn("patient", patient_id);
    let mut patient = json!({ "resourceType": "Patient", "id": "patient" });
    if let Some(ins) = ins {
        patient["identifier"] = json!([{ "system": INS_SYSTEM, "value": ins }]);
    }
    let mut entries = vec![json!({ "fullUrl": patient_urn, "resource": patient })];
    for item in profile {
        entries.push(json!({
            "fullUrl": urn("profile", item.id),
            "resource": profile_resource(item, &patient_urn),
        }));
    }
    for a in agenda {
        entries.push(json!({
            "fullUrl": urn("appointment", a.id),
            "resource": appointment(a, &patient_urn),
        }));
    }
    json!({
        "resourceType": "Bundle",
        "id": "espace-patient",
        "type": "collection",
        "entry": entries,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_and_urns() {
        assert_eq!(
            date_time("20220115103000+0100").as_deref(),
            Some("2022-01-15")
        );
        assert_eq!(date_time("2022-01-15").as_deref(), Some("2022-01-15"));
        assert_eq!(date_time("202201").as_deref(), Some("2022-01"));
        assert_eq!(date_time("hier"), None);
        assert_eq!(urn("x", 1), urn("x", 1));
        assert_ne!(urn("x", 1), urn("x", 2));
        assert_eq!(urn("x", 1).len(), "urn:uuid:".len() + 36);
    }
}
