//! FHIR JSON (`application/fhir+json`) following the French Core profiles:
//! patient INS and the resources that feed the profil médical.
//!
//! serde_json bounds recursion (128 levels) and the input size is bounded by
//! `max_entry_size` before parsing.

use serde::Serialize;
use serde_json::Value;

use crate::dossier::identity::INS_OIDS;
use crate::dossier::limits::Limits;
use crate::dossier::metadata::Code;
use crate::dossier::profile::{ProfileCategory, ProfileItem};

const BLOOD_GROUP_CODES: [&str; 3] = ["882-1", "883-9", "10331-7"];

/// Why a FHIR attachment was refused.
#[derive(Debug, thiserror::Error)]
pub enum FhirError {
    /// Larger than `max_entry_size`.
    #[error("FHIR attachment is larger than allowed")]
    TooLarge,
    /// Not JSON (or nested beyond serde_json's recursion limit).
    #[error("FHIR attachment is not valid JSON: {0}")]
    Json(#[from] serde_json::Error),
    /// JSON without a resourceType.
    #[error("FHIR attachment has no resourceType")]
    NotFhir,
}

/// What MES keeps from a FHIR attachment.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct FhirBundle {
    /// INS of the first Patient with an INS identifier.
    pub patient_ins: Option<String>,
    /// Its identifier system (`urn:oid:1.2.250.1.213.1.4.8`…).
    pub patient_ins_system: Option<String>,
    /// Profile items, in bundle order.
    pub items: Vec<ProfileItem>,
}

/// Parses a Bundle (or a lone resource, taken as a one-entry bundle).
pub fn parse_bundle(json: &[u8], limits: &Limits) -> Result<FhirBundle, FhirError> {
    if json.len() as u64 > limits.max_entry_size {
        return Err(FhirError::TooLarge);
    }
    let json = json.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(json);
    let root: Value = serde_json::from_slice(json)?;
    let rt = root
        .get("resourceType")
        .and_then(Value::as_str)
        .ok_or(FhirError::NotFhir)?;
    let resources: Vec<&Value> = if rt == "Bundle" {
        root.get("entry")
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(|e| e.get("resource")).collect())
            .unwrap_or_default()
    } else {
        vec![&root]
    };
    let mut out = FhirBundle::default();
    for r in resources {
        resource(r, &mut out);
    }
    Ok(out)
}

fn s<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key)
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|x| !x.is_empty())
}

fn codings(cc: Option<&Value>) -> impl Iterator<Item = &Value> {
    cc.and_then(|c| c.get("coding"))
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
}

/// First coding of a CodeableConcept as a [`Code`].
fn code_of(cc: Option<&Value>) -> Option<Code> {
    codings(cc).find_map(|c| {
        Some(Code {
            code: s(c, "code")?.to_owned(),
            scheme: s(c, "system").map(str::to_owned),
            display: s(c, "display").map(str::to_owned),
        })
    })
}

/// text, else the first coding display, else the first code.
fn label_of(cc: Option<&Value>) -> Option<String> {
    let cc = cc?;
    s(cc, "text")
        .map(str::to_owned)
        .or_else(|| codings(Some(cc)).find_map(|c| s(c, "display").map(str::to_owned)))
        .or_else(|| codings(Some(cc)).find_map(|c| s(c, "code").map(str::to_owned)))
}

fn date_of(r: &Value, keys: &[&str]) -> Option<String> {
    keys.iter().find_map(|k| {
        let v = r.get(*k)?;
        v.as_str()
            .map(str::to_owned)
            .or_else(|| s(v, "start").map(str::to_owned))
    })
}

fn quantity(v: &Value) -> Option<String> {
    let n = v.get("value")?;
    let n = n.as_f64().map(|f| {
        if f.fract() == 0.0 && f.abs() < 1e15 {
            format!("{}", f as i64)
        } else {
            f.to_string()
        }
    })?;
    Some(match s(v, "unit").or_else(|| s(v, "code")) {
        Some(u) => format!("{n} {u}"),
        None => n,
    })
}

fn push(
    out: &mut FhirBundle,
    category: ProfileCategory,
    label: Option<String>,
    code: Option<Code>,
    date: Option<String>,
    value: Option<String>,
) {
    if let Some(label) = label {
        out.items.push(ProfileItem {
            category,
            label,
            code,
            date,
            value,
        });
    }
}

fn resource(r: &Value, out: &mut FhirBundle) {
    match s(r, "resourceType").unwrap_or_default() {
        "Patient" => {
            if out.patient_ins.is_some() {
                return;
            }
            let ids = r
                .get("identifier")
                .and_then(Value::as_array)
                .into_iter()
                .flatten();
            for id in ids {
                let Some(system) = s(id, "system") else {
                    continue;
                };
                let oid = system.strip_prefix("urn:oid:").unwrap_or(system);
                if INS_OIDS.contains(&oid)
                    && let Some(v) = s(id, "value")
                {
                    out.patient_ins = Some(v.to_owned());
                    out.patient_ins_system = Some(system.to_owned());
                    return;
                }
            }
        }
        "AllergyIntolerance" => push(
            out,
            ProfileCategory::Allergies,
            label_of(r.get("code")),
            code_of(r.get("code")),
            date_of(r, &["onsetDateTime", "onsetPeriod", "recordedDate"]),
            r.get("category")
                .and_then(Value::as_array)
                .and_then(|a| a.first())
                .and_then(Value::as_str)
                .map(str::to_owned),
        ),
        "Condition" => push(
            out,
            ProfileCategory::Maladies,
            label_of(r.get("code")),
            code_of(r.get("code")),
            date_of(r, &["onsetDateTime", "onsetPeriod", "recordedDate"]),
            None,
        ),
        "MedicationStatement" => {
            let med = r.get("medicationCodeableConcept");
            let label = label_of(med).or_else(|| {
                r.get("medicationReference")
                    .and_then(|m| s(m, "display"))
                    .map(str::to_owned)
            });
            push(
                out,
                ProfileCategory::Traitements,
                label,
                code_of(med),
                date_of(r, &["effectiveDateTime", "effectivePeriod", "dateAsserted"]),
                r.get("dosage")
                    .and_then(Value::as_array)
                    .and_then(|a| a.first())
                    .and_then(|d| s(d, "text"))
                    .map(str::to_owned),
            );
        }
        "Immunization" => push(
            out,
            ProfileCategory::Vaccinations,
            label_of(r.get("vaccineCode")),
            code_of(r.get("vaccineCode")),
            date_of(r, &["occurrenceDateTime", "recorded"]),
            s(r, "lotNumber").map(|l| format!("lot {l}")),
        ),
        "FamilyMemberHistory" => {
            let relation = label_of(r.get("relationship"));
            for c in r
                .get("condition")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                push(
                    out,
                    ProfileCategory::AntecedentsFamiliaux,
                    label_of(c.get("code")),
                    code_of(c.get("code")),
                    date_of(r, &["date"]),
                    relation.clone(),
                );
            }
        }
        "RelatedPerson" => {
            let name = r
                .get("name")
                .and_then(Value::as_array)
                .and_then(|a| a.first())
                .and_then(|n| {
                    s(n, "text").map(str::to_owned).or_else(|| {
                        let given: Vec<&str> = n
                            .get("given")
                            .and_then(Value::as_array)
                            .into_iter()
                            .flatten()
                            .filter_map(Value::as_str)
                            .collect();
                        let mut parts = given.join(" ");
                        if let Some(f) = s(n, "family") {
                            if !parts.is_empty() {
                                parts.push(' ');
                            }
                            parts.push_str(f);
                        }
                        (!parts.is_empty()).then_some(parts)
                    })
                });
            let rel = r
                .get("relationship")
                .and_then(Value::as_array)
                .and_then(|a| a.first());
            push(
                out,
                ProfileCategory::Entourage,
                name,
                code_of(rel),
                None,
                label_of(rel),
            );
        }
        "Observation" => observation(r, out),
        _ => {}
    }
}

fn observation(r: &Value, out: &mut FhirBundle) {
    let code = r.get("code");
    let is_blood_group =
        codings(code).any(|c| s(c, "code").is_some_and(|k| BLOOD_GROUP_CODES.contains(&k)));
    let date = date_of(
        r,
        &[
            "effectiveDateTime",
            "effectivePeriod",
            "effectiveInstant",
            "issued",
        ],
    );
    if is_blood_group {
        let value = r.get("valueCodeableConcept");
        push(
            out,
            ProfileCategory::GroupeSanguin,
            label_of(value).or_else(|| s(r, "valueString").map(str::to_owned)),
            code_of(value),
            date,
            None,
        );
        return;
    }
    let vital = r
        .get("category")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .flat_map(|c| codings(Some(c)))
        .any(|c| s(c, "code") == Some("vital-signs"));
    if vital {
        let value = r
            .get("valueQuantity")
            .and_then(quantity)
            .or_else(|| s(r, "valueString").map(str::to_owned));
        push(
            out,
            ProfileCategory::Mesures,
            label_of(code),
            code_of(code),
            date,
            value,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn corpus(rel: &str) -> Vec<u8> {
        let p = format!("{}/tests/fixtures/corpus/{rel}", env!("CARGO_MANIFEST_DIR"));
        std::fs::read(&p).unwrap_or_else(|e| panic!("{p}: {e}"))
    }

    #[test]
    fn mesures_bundle_body_weight() {
        let b = parse_bundle(
            &corpus("fhir/Bundle-bundle-example.json"),
            &Limits::default(),
        )
        .unwrap();
        assert_eq!(b.patient_ins, None);
        assert_eq!(b.items.len(), 1);
        let i = &b.items[0];
        assert_eq!(i.category, ProfileCategory::Mesures);
        assert_eq!(i.label, "Body weight");
        assert_eq!(i.code.as_ref().unwrap().code, "29463-7");
        assert_eq!(i.value.as_deref(), Some("71 kg"));
        assert_eq!(i.date.as_deref(), Some("2022-08-22T01:56:16+01:00"));
    }

    #[test]
    fn fr_core_patient_ins() {
        let b = parse_bundle(
            &corpus("fhir/Patient-FRCorePatientINSExample.json"),
            &Limits::default(),
        )
        .unwrap();
        assert_eq!(b.patient_ins.as_deref(), Some("123456789012244"));
        assert_eq!(
            b.patient_ins_system.as_deref(),
            Some("urn:oid:1.2.250.1.213.1.4.8")
        );
        // The sample's NIR key is documented as invalid.
        assert!(!crate::dossier::identity::nir_key_is_valid(
            "123456789012244"
        ));
    }

    #[test]
    fn french_core_resources() {
        let json = r#"{"resourceType":"Bundle","entry":[
 {"resource":{"resourceType":"AllergyIntolerance","code":{"coding":[{"system":"http://snomed.info/sct","code":"387517004","display":"Paracetamol"}]},"category":["medication"],"onsetDateTime":"2018-06-03"}},
 {"resource":{"resourceType":"Condition","code":{"text":"Diabète de type 2","coding":[{"code":"E11"}]}}},
 {"resource":{"resourceType":"MedicationStatement","medicationCodeableConcept":{"coding":[{"code":"63564053","display":"PLAVIX 75 mg"}]},"effectiveDateTime":"2019-08-11"}},
 {"resource":{"resourceType":"Immunization","vaccineCode":{"coding":[{"code":"68747507","display":"VACCIN TETANIQUE"}]},"occurrenceDateTime":"2009-09-28","lotNumber":"A1"}},
 {"resource":{"resourceType":"Observation","code":{"coding":[{"system":"http://loinc.org","code":"882-1"}]},"valueCodeableConcept":{"coding":[{"code":"LA21321-7","display":"A Rh+"}]}}},
 {"resource":{"resourceType":"Observation","code":{"coding":[{"code":"718-7"}]},"valueQuantity":{"value":13.5,"unit":"g/dL"}}},
 {"resource":{"resourceType":"FamilyMemberHistory","relationship":{"coding":[{"code":"MTH","display":"Mère"}]},"condition":[{"code":{"coding":[{"code":"D57.1","display":"Drépanocytose"}]}}]}},
 {"resource":{"resourceType":"RelatedPerson","name":[{"family":"NESSI","given":["Jeanne"]}],"relationship":[{"coding":[{"code":"GUARD","display":"Tuteur"}]}]}}
]}"#;
        let b = parse_bundle(json.as_bytes(), &Limits::default()).unwrap();
        let got: Vec<(ProfileCategory, &str, Option<&str>)> = b
            .items
            .iter()
            .map(|i| (i.category, i.label.as_str(), i.value.as_deref()))
            .collect();
        assert_eq!(
            got,
            [
                (
                    ProfileCategory::Allergies,
                    "Paracetamol",
                    Some("medication")
                ),
                (ProfileCategory::Maladies, "Diabète de type 2", None),
                (ProfileCategory::Traitements, "PLAVIX 75 mg", None),
                (
                    ProfileCategory::Vaccinations,
                    "VACCIN TETANIQUE",
                    Some("lot A1")
                ),
                (ProfileCategory::GroupeSanguin, "A Rh+", None),
                (
                    ProfileCategory::AntecedentsFamiliaux,
                    "Drépanocytose",
                    Some("Mère")
                ),
                (ProfileCategory::Entourage, "Jeanne NESSI", Some("Tuteur")),
            ]
        );
    }

    #[test]
    fn hostile_json() {
        let l = Limits::default();
        assert!(matches!(parse_bundle(b"{", &l), Err(FhirError::Json(_))));
        assert!(matches!(parse_bundle(b"{}", &l), Err(FhirError::NotFhir)));
        let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
        assert!(matches!(
            parse_bundle(deep.as_bytes(), &l),
            Err(FhirError::Json(_))
        ));
        let small = Limits {
            max_entry_size: 4,
            ..l
        };
        assert!(matches!(
            parse_bundle(b"{\"a\":1}", &small),
            Err(FhirError::TooLarge)
        ));
    }
}
