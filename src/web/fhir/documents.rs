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
