//! `DocumentReference` (search, read) and `Binary` (content) from the
//! dossier médical, for `documents.read`.

use axum::extract::{Path, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::{Caller, FhirError, Shared, bundle, instant, patient_ref, resource};
use crate::services::scope::Scope;
use crate::store::accounts::Account;
use crate::store::dossier::Document;

/// The FR Core shape of a document of the dossier.
fn document_reference(d: &Document, p: &Account) -> Value {
    let type_code = d.type_code.as_deref().map(|t| {
        let (code, system) = t.split_once('^').unwrap_or((t, ""));
        json!({ "coding": [{ "system": system, "code": code }] })
    });
    json!({
        "resourceType": "DocumentReference",
        "id": d.id.to_string(),
        "meta": { "profile": ["https://hl7.fr/ig/fhir/core/StructureDefinition/fr-core-document-reference"] },
        "masterIdentifier": { "value": d.unique_id },
        "status": if d.status == "current" { "current" } else { "superseded" },
        "type": type_code,
        "category": [{ "text": d.category }],
        "subject": patient_ref(p),
        "date": instant(d.created_at),
        "author": d.author.as_ref().map(|a| vec![json!({ "display": a })]),
        "custodian": d.author_institution.as_ref().map(|i| json!({ "display": i })),
        "description": d.title,
        "content": [{
            "attachment": {
                "contentType": d.mime_type,
                "url": format!("Binary/{}", d.id),
                "size": d.size,
                "title": d.title,
            }
        }],
    })
}

/// GET /fhir/r4/DocumentReference
pub(super) async fn search(State(s): State<Shared>, c: Caller) -> Result<Response, FhirError> {
    c.allow(&s, Scope::DocumentsRead, "DocumentReference search")
        .await?;
    let docs = s
        .store
        .documents_of(c.patient.id)
        .await
        .map_err(FhirError::unavailable)?;
    Ok(bundle(
        docs.iter()
            .map(|d| document_reference(d, &c.patient))
            .collect(),
    ))
}

/// The caller's patient's document `id`, or 404 (another patient's: audited).
async fn own(s: &Shared, c: &Caller, id: &str, what: &str) -> Result<Document, FhirError> {
    let Ok(id) = id.parse::<i64>() else {
        return Err(FhirError::not_found());
    };
    if let Some(d) = s
        .store
        .document_of(c.patient.id, id)
        .await
        .map_err(FhirError::unavailable)?
    {
        c.allow(s, Scope::DocumentsRead, &format!("{what} {id}"))
            .await?;
        return Ok(d);
    }
    let owner = s
        .store
        .document_owner(id)
        .await
        .map_err(FhirError::unavailable)?;
    Err(c.stranger(s, owner, &format!("{what} {id}")).await)
}

/// GET /fhir/r4/DocumentReference/{id}
pub(super) async fn read(
    State(s): State<Shared>,
    c: Caller,
    Path(id): Path<String>,
) -> Result<Response, FhirError> {
    let d = own(&s, &c, &id, "DocumentReference").await?;
    Ok(resource(document_reference(&d, &c.patient)))
}

/// GET /fhir/r4/Binary/{id}: the content, with its type.
pub(super) async fn binary(
    State(s): State<Shared>,
    c: Caller,
    Path(id): Path<String>,
) -> Result<Response, FhirError> {
    let d = own(&s, &c, &id, "Binary").await?;
    let raw = crate::web::patient::document_bytes(&s.store, &d)
        .await
        .map_err(FhirError::unavailable)?;
    let mut res = raw.into_response();
    let kind = HeaderValue::from_str(&d.mime_type)
        .unwrap_or(HeaderValue::from_static("application/octet-stream"));
    res.headers_mut().insert(header::CONTENT_TYPE, kind);
    res.headers_mut().insert(
        header::CONTENT_DISPOSITION,
        HeaderValue::from_static("attachment"),
    );
    Ok(res)
}

/// Largest `DocumentReference` a service may post (base64 included).
pub(super) const CREATE_LIMIT: usize = 16 * 1024 * 1024;

/// The attachment of a posted `DocumentReference`: (content type, bytes,
/// title, category).
fn attachment(v: &Value) -> Option<(String, Vec<u8>, String, String)> {
    use base64::Engine;
    if v["resourceType"] != "DocumentReference" {
        return None;
    }
    let a = &v["content"][0]["attachment"];
    let kind = a["contentType"].as_str()?.to_string();
    let data = base64::engine::general_purpose::STANDARD
        .decode(a["data"].as_str()?)
        .ok()?;
    let title = a["title"]
        .as_str()
        .or(v["description"].as_str())
        .unwrap_or_default()
        .to_string();
    let category = v["category"][0]["text"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    Some((kind, data, title, category))
}

/// POST /fhir/r4/DocumentReference (`documents.write`): an IHE XDM package
/// (`application/zip`) goes through the dossier's deposit path, the one mail
/// and the professionals' API use (identity checks, indexing, authorship);
/// a PDF, JPEG or PNG through the rules of the patient's own documents. The
/// service is recorded as the depositor.
pub(super) async fn create(
    State(s): State<Shared>,
    c: Caller,
    body: axum::body::Bytes,
) -> Result<Response, FhirError> {
    use crate::dossier::filing;
    c.allow(&s, Scope::DocumentsWrite, "DocumentReference create")
        .await?;
    let bad =
        |m: &'static str| FhirError(axum::http::StatusCode::UNPROCESSABLE_ENTITY, "invalid", m);
    let v: Value = serde_json::from_slice(&body).map_err(|_| bad("not a JSON resource"))?;
    let (kind, data, title, category) =
        attachment(&v).ok_or_else(|| bad("a DocumentReference with content[0].attachment data"))?;
    let depositor = filing::Depositor::new(
        &crate::access::check::service_actor(&c.service.id),
        None,
        None,
    );
    let mut filed = if kind == "application/zip" {
        let recipient = filing::PatientRecipient {
            account_id: c.patient.id,
            address: c.patient.address.clone(),
            ins: c.patient.ins.clone().unwrap_or_default(),
        };
        tokio::task::spawn_blocking(move || {
            filing::deposit(
                &data,
                &recipient,
                &crate::dossier::limits::Limits::default(),
            )
        })
        .await
        .map_err(FhirError::unavailable)?
        .map_err(|_| bad("the package was refused by the dossier's checks"))?
    } else {
        let name = match kind.as_str() {
            "application/pdf" => "document.pdf",
            "image/jpeg" => "document.jpg",
            "image/png" => "document.png",
            _ => return Err(bad("PDF, JPEG, PNG or an IHE XDM package only")),
        };
        let doc = filing::patient_document(&category, &title, name, data)
            .map_err(|_| bad("category, title, type or size refused"))?;
        filing::Filing {
            documents: vec![(c.patient.id, doc)],
            ..Default::default()
        }
    };
    crate::dossier::authorship::sign_and_check(&s.store, &mut filed, &depositor)
        .await
        .map_err(FhirError::unavailable)?
        .map_err(|_| {
            FhirError(
                axum::http::StatusCode::FORBIDDEN,
                "forbidden",
                "only a document's depositor replaces it",
            )
        })?;
    let count = filed.documents.len();
    s.store
        .file(&filed.into())
        .await
        .map_err(FhirError::unavailable)?;
    let mut res = resource(json!({
        "resourceType": "OperationOutcome",
        "issue": [{ "severity": "information", "code": "informational",
                    "diagnostics": format!("{count} document(s) filed") }],
    }));
    *res.status_mut() = axum::http::StatusCode::CREATED;
    Ok(res)
}
