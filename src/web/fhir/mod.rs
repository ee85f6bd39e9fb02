//! The data API for connected services (`/fhir/r4/`): FHIR R4 JSON shaped
//! on the French Core profiles for what the space holds. A call carries an
//! access token (`Authorization: Bearer`) bound to one patient, one service
//! and the scopes the patient granted; every call goes through the access
//! gate (`access::check::Gate::check_service`), which audits it on the
//! patient's trail with actor type SERVICE_TIERS and the service's name.
//! A scope not granted is 403; another patient's resource is 404 (and the
//! attempt is on that patient's trail); a closed space is 403 at the gate.
//! Writes: documents (`documents.rs`), appointments (`booking.rs`) and
//! notifications (`communication.rs`).

mod booking;
mod communication;
mod documents;
mod profile;
mod resources;

use std::sync::Arc;

use axum::Json;
use axum::extract::FromRequestParts;
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use serde_json::{Value, json};

use super::{FORM_LIMIT, WebServices, security};
use crate::services::pkce;
use crate::services::scope::{Scope, Scopes};
use crate::store::accounts::Account;
use crate::store::services::ServiceRow;

type Shared = Arc<WebServices>;

/// The routes of `/fhir/r4/`.
pub fn routes() -> axum::Router<Shared> {
    axum::Router::new()
        .route(
            "/fhir/r4/DocumentReference",
            get(documents::search).post(documents::create).layer(
                axum::extract::DefaultBodyLimit::max(documents::CREATE_LIMIT),
            ),
        )
        .route("/fhir/r4/DocumentReference/{id}", get(documents::read))
        .route("/fhir/r4/Binary/{id}", get(documents::binary))
        .route("/fhir/r4/Communication", post(communication::create))
        .route("/fhir/r4/{resource}", get(profile::search))
        .route(
            "/fhir/r4/Appointment",
            get(resources::appointments).post(booking::create),
        )
        .route(
            "/fhir/r4/Appointment/{id}",
            put(booking::cancel).patch(booking::cancel),
        )
        .layer(axum::extract::DefaultBodyLimit::max(FORM_LIMIT))
}

/// An error of the data API, as a FHIR OperationOutcome.
#[derive(Debug)]
pub struct FhirError(StatusCode, &'static str, &'static str);

impl FhirError {
    fn unavailable(e: impl std::fmt::Display) -> FhirError {
        tracing::error!(error = %e, "FHIR API failure");
        FhirError(
            StatusCode::SERVICE_UNAVAILABLE,
            "transient",
            "temporarily unavailable",
        )
    }

    fn not_found() -> FhirError {
        FhirError(StatusCode::NOT_FOUND, "not-found", "no such resource")
    }

    fn forbidden() -> FhirError {
        FhirError(
            StatusCode::FORBIDDEN,
            "forbidden",
            "scope not granted by the patient",
        )
    }
}

impl IntoResponse for FhirError {
    fn into_response(self) -> Response {
        let mut res = (
            self.0,
            Json(json!({
                "resourceType": "OperationOutcome",
                "issue": [{ "severity": "error", "code": self.1, "diagnostics": self.2 }],
            })),
        )
            .into_response();
        if self.0 == StatusCode::UNAUTHORIZED {
            res.headers_mut().insert(
                axum::http::header::WWW_AUTHENTICATE,
                axum::http::HeaderValue::from_static("Bearer error=\"invalid_token\""),
            );
        }
        fhir_json(&mut res);
        res
    }
}

fn fhir_json(res: &mut Response) {
    res.headers_mut().insert(
        axum::http::header::CONTENT_TYPE,
        axum::http::HeaderValue::from_static("application/fhir+json"),
    );
}

/// A FHIR JSON answer.
fn resource(v: Value) -> Response {
    let mut res = Json(v).into_response();
    fhir_json(&mut res);
    res
}

/// A searchset Bundle of `entries`.
fn bundle(entries: Vec<Value>) -> Response {
    resource(json!({
        "resourceType": "Bundle",
        "type": "searchset",
        "total": entries.len(),
        "entry": entries.into_iter().map(|r| json!({ "resource": r })).collect::<Vec<_>>(),
    }))
}

/// The caller: a live access token of a referenced service, its patient,
/// and the scopes in force (granted, still approved, still requested).
#[derive(Debug, Clone)]
pub struct Caller {
    /// The service.
    pub service: ServiceRow,
    /// The patient the token is bound to.
    pub patient: Account,
    scopes: Scopes,
}

impl FromRequestParts<Shared> for Caller {
    type Rejection = FhirError;

    async fn from_request_parts(parts: &mut Parts, s: &Shared) -> Result<Self, Self::Rejection> {
        let unauthorized = || {
            FhirError(
                StatusCode::UNAUTHORIZED,
                "login",
                "a valid access token is required",
            )
        };
        let token = security::bearer_token(&parts.headers).ok_or_else(unauthorized)?;
        let binding = s
            .store
            .access_token(&pkce::hash(&token))
            .await
            .map_err(FhirError::unavailable)?
            .ok_or_else(unauthorized)?;
        let service = s
            .store
            .service(&binding.service_id)
            .await
            .map_err(FhirError::unavailable)?
            .filter(|sv| sv.status == "referenced")
            .ok_or_else(unauthorized)?;
        let grant = s
            .store
            .grant(binding.patient_id, &service.id)
            .await
            .map_err(FhirError::unavailable)?
            .ok_or_else(unauthorized)?;
        let patient = s
            .store
            .account_by_id(binding.patient_id)
            .await
            .map_err(FhirError::unavailable)?
            // A closed (disabled) space still reaches the gate, which
            // refuses it (Denial::Closed) on the patient's trail.
            .ok_or_else(unauthorized)?;
        let scopes = Scopes::stored(&binding.scopes)
            .intersect(&Scopes::stored(&grant.scopes))
            .intersect(&Scopes::stored(&service.scopes));
        Ok(Caller {
            service,
            patient,
            scopes,
        })
    }
}

impl Caller {
    /// Asks the gate for a call needing `scope` on the caller's patient's
    /// `what`: 403 when not granted (audited either way).
    async fn allow(&self, s: &Shared, scope: Scope, what: &str) -> Result<(), FhirError> {
        self.allow_for(s, &self.patient, self.scopes.has(scope), what)
            .await
    }

    /// The gate for `patient` (the caller's own, or the owner of a resource
    /// the caller tried: then `consented` is false).
    async fn allow_for(
        &self,
        s: &Shared,
        patient: &Account,
        consented: bool,
        what: &str,
    ) -> Result<(), FhirError> {
        let decision = s
            .gate
            .check_service(
                &self.service.id,
                &self.service.name,
                patient,
                what,
                consented,
            )
            .await
            .map_err(FhirError::unavailable)?;
        match decision {
            Ok(_) => {}
            Err(crate::access::Denial::Closed) => {
                return Err(FhirError(
                    StatusCode::FORBIDDEN,
                    "forbidden",
                    "the patient's space is closed",
                ));
            }
            Err(_) => return Err(FhirError::forbidden()),
        }
        s.store
            .touch_grant(patient.id, &self.service.id)
            .await
            .map_err(FhirError::unavailable)?;
        Ok(())
    }

    /// A resource id that is not the caller's patient's: the attempt goes on
    /// its owner's trail (refused) and the answer is 404.
    async fn stranger(&self, s: &Shared, owner: Option<i64>, what: &str) -> FhirError {
        if let Some(owner) = owner
            && owner != self.patient.id
            && let Ok(Some(owner)) = s.store.account_by_id(owner).await
            && let Err(e) = s
                .gate
                .check_service(&self.service.id, &self.service.name, &owner, what, false)
                .await
        {
            return FhirError::unavailable(e);
        }
        FhirError::not_found()
    }
}

/// The FHIR Patient reference of an account (INS when it has one).
fn patient_ref(p: &Account) -> Value {
    match &p.ins {
        Some(ins) => json!({
            "identifier": { "system": "urn:oid:1.2.250.1.213.1.4.8", "value": ins },
        }),
        None => json!({ "display": p.address }),
    }
}

/// A Unix time as a FHIR instant (UTC).
fn instant(unix: i64) -> String {
    chrono::DateTime::from_timestamp(unix, 0)
        .map(|d| d.format("%Y-%m-%dT%H:%M:%SZ").to_string())
        .unwrap_or_default()
}
