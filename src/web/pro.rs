//! The professionals' API (`/api/pro/v1/`, the "DMP-compatible" side): a
//! patient's documents and profile by INS, and deposit of an XDM package, for
//! practice software authenticated either by its client certificate (mutual
//! TLS on the HTTPS listener; the subject is mapped to one professional with
//! `mes user add … --certificate-subject`) or by a bearer token from
//! `POST /api/pro/v1/token` (password + TOTP code, `mes user totp`). Every
//! call goes through the access gate, which audits it with the professional's
//! profession and RPPS.
//!
//! The way of asking is a query parameter: `?mode=regulation` for a SAMU /
//! Centre 15 regulating physician, `?mode=break_glass` to read under a
//! break-glass access opened before with `POST /api/pro/v1/patients/{ins}/break-glass`
//! (`{"reason": "…"}`; only professionals whose profession may, at most
//! `access.break_glass_per_hour` an hour; a GET never breaks the glass).
//!
//! A patient that does not exist and a patient whose record is refused get
//! the same answer, byte for byte ([`refused`]), so the API cannot be used to
//! learn which INS numbers have a record; the reason stays in the audit trail.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{FromRequestParts, Path, Query, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Deserialize;
use serde_json::json;

use super::{ClientAddr, ClientCert, FORM_LIMIT, UPLOAD_LIMIT, WebServices, security};
use crate::access::{Denial, Mode};
use crate::dossier::filing::{self, PatientRecipient};
use crate::dossier::limits::Limits;
use crate::identity::AccountKind;
use crate::identity::ins::Ins;
use crate::store::accounts::Account;
use axum::extract::DefaultBodyLimit;

type Shared = Arc<WebServices>;

/// The routes of `/api/pro/v1/`.
pub fn routes() -> axum::Router<Shared> {
    axum::Router::new()
        .route(
            "/api/pro/v1/patients/{ins}/documents",
            get(documents)
                .post(deposit)
                .layer(DefaultBodyLimit::max(UPLOAD_LIMIT)),
        )
        .route(
            "/api/pro/v1/patients/{ins}/documents/{id}/content",
            get(content),
        )
        .route("/api/pro/v1/patients/{ins}/profile", get(profile))
        .route(
            "/api/pro/v1/patients/{ins}/break-glass",
            axum::routing::post(break_glass),
        )
        .route("/api/pro/v1/token", axum::routing::post(token))
        .route("/api/pro/v1/directory", get(directory))
        .route("/api/pro/v1/directory.vcf", get(directory_vcf))
        .layer(DefaultBodyLimit::max(FORM_LIMIT))
}

/// An error of the professionals' API (English: it is read by software).
#[derive(Debug)]
pub struct ProError(StatusCode, String);

impl IntoResponse for ProError {
    fn into_response(self) -> Response {
        (self.0, Json(json!({ "error": self.1 }))).into_response()
    }
}

/// Seconds a professional's token lives without use.
const TOKEN_IDLE_SECS: i64 = 3600;
/// Seconds a professional's token lives at most, however used.
const TOKEN_MAX_SECS: i64 = 12 * 3600;

fn unavailable(e: impl std::fmt::Display) -> ProError {
    tracing::error!(error = %e, "professional API failure");
    ProError(
        StatusCode::SERVICE_UNAVAILABLE,
        "temporarily unavailable".into(),
    )
}

/// The one answer for a refused access and for a patient without a record
/// (whatever the denial: it is in the audit trail, not in the answer).
fn refused(_: Denial) -> ProError {
    no_access()
}

fn no_access() -> ProError {
    ProError(
        StatusCode::FORBIDDEN,
        "no access to this patient's record".into(),
    )
}

/// The professional behind the client certificate of the connection.
#[derive(Debug, Clone)]
pub struct Professional(pub Account);

impl FromRequestParts<Shared> for Professional {
    type Rejection = ProError;

    async fn from_request_parts(parts: &mut Parts, s: &Shared) -> Result<Self, Self::Rejection> {
        let unauthorized = || {
            ProError(
                StatusCode::UNAUTHORIZED,
                "a professional client certificate is required".into(),
            )
        };
        let is_professional = |a: &Account| {
            matches!(
                a.kind,
                AccountKind::Professional | AccountKind::Organisation | AccountKind::Application
            ) && !a.disabled
        };
        if let Some(token) = security::bearer_token(&parts.headers) {
            let account =
                security::token_account(&s.store, &token, TOKEN_IDLE_SECS, TOKEN_MAX_SECS)
                    .await
                    .map_err(unavailable)?
                    .map(|(a, _)| a)
                    .filter(is_professional)
                    .ok_or_else(unauthorized)?;
            return Ok(Professional(account));
        }
        let subject = parts
            .extensions
            .get::<ClientCert>()
            .and_then(|c| c.0.clone())
            .ok_or_else(unauthorized)?;
        let accounts = s
            .store
            .accounts_by_cert_subject(&subject)
            .await
            .map_err(unavailable)?;
        let account = accounts
            .into_iter()
            .find(is_professional)
            .ok_or_else(unauthorized)?;
        Ok(Professional(account))
    }
}

/// `?mode=…` (a `reason` parameter is ignored: the reason is given when
/// breaking the glass, with a POST).
#[derive(Debug, Deserialize, Default)]
pub struct How {
    mode: Option<String>,
}

impl How {
    fn mode(&self) -> Result<Mode<'_>, ProError> {
        match self.mode.as_deref() {
            None | Some("normal") => Ok(Mode::Normal),
            Some("regulation") => Ok(Mode::Regulation),
            // The reason comes from the open break-glass access (the gate).
            Some("break_glass") => Ok(Mode::BreakGlass("")),
            Some(other) => Err(ProError(
                StatusCode::BAD_REQUEST,
                format!("unknown mode {other}"),
            )),
        }
    }
}

/// The patient of `ins`, if the record exists (None for a malformed INS
/// too). A closed space's account is disabled: the gate refuses it.
async fn find_patient(s: &Shared, ins: &str) -> Result<Option<Account>, ProError> {
    let Ok(ins) = Ins::parse(ins) else {
        return Ok(None);
    };
    s.store
        .account_by_ins(ins.as_str())
        .await
        .map_err(unavailable)
}

/// The patient of `ins`, or the answer of a refused access.
async fn patient_by_ins(s: &Shared, ins: &str) -> Result<Account, ProError> {
    find_patient(s, ins).await?.ok_or_else(no_access)
}

#[derive(Debug, Deserialize)]
struct BreakGlassBody {
    reason: String,
}

/// `POST …/break-glass {"reason": "…"}`: opens a break-glass access to the
/// record for `access.break_glass_valid_secs`. A profession that may not, or
/// a professional over the hourly limit, is told so whatever the INS; every
/// other refusal, and a patient without a record, get [`refused`]'s answer.
async fn break_glass(
    State(s): State<Shared>,
    Professional(pro): Professional,
    Path(ins): Path<String>,
    Json(body): Json<BreakGlassBody>,
) -> Result<Response, ProError> {
    if body.reason.trim().is_empty() {
        return Err(ProError(
            StatusCode::UNPROCESSABLE_ENTITY,
            "break-glass access needs a written reason".into(),
        ));
    }
    let patient = find_patient(&s, &ins).await?;
    match s
        .gate
        .break_glass(&pro, patient.as_ref(), &body.reason)
        .await
        .map_err(unavailable)?
    {
        Ok(expires_at) => Ok((
            StatusCode::CREATED,
            Json(json!({
                "expires_at": expires_at,
                "valid_secs": s.gate.settings.break_glass_valid_secs,
            })),
        )
            .into_response()),
        Err(d @ Denial::NotEligible) => Err(ProError(StatusCode::FORBIDDEN, d.to_string())),
        Err(d @ Denial::TooManyBreakGlass) => Err(ProError(
            StatusCode::TOO_MANY_REQUESTS,
            format!(
                "{d} (at most {} an hour)",
                s.gate.settings.break_glass_per_hour
            ),
        )),
        Err(d) => Err(refused(d)),
    }
}

async fn documents(
    State(s): State<Shared>,
    Professional(pro): Professional,
    Path(ins): Path<String>,
    Query(how): Query<How>,
) -> Result<Json<serde_json::Value>, ProError> {
    let patient = patient_by_ins(&s, &ins).await?;
    let access = s
        .gate
        .check(&pro, &patient, how.mode()?, "documents", false)
        .await
        .map_err(unavailable)?
        .map_err(refused)?;
    // Hidden documents only where the rules allow them.
    let list: Vec<_> = s
        .store
        .documents_of(patient.id)
        .await
        .map_err(unavailable)?
        .into_iter()
        .filter(|d| access.shows(d.hidden))
        .collect();
    Ok(Json(json!({ "documents": list })))
}

async fn content(
    State(s): State<Shared>,
    Professional(pro): Professional,
    Path((ins, id)): Path<(String, i64)>,
    Query(how): Query<How>,
) -> Result<Response, ProError> {
    let patient = patient_by_ins(&s, &ins).await?;
    let d = s
        .store
        .document_of(patient.id, id)
        .await
        .map_err(unavailable)?;
    // The gate first (audited): whether the document exists is itself record data.
    let hidden = d.as_ref().is_some_and(|d| d.hidden);
    s.gate
        .check(
            &pro,
            &patient,
            how.mode()?,
            &format!("document {id}"),
            hidden,
        )
        .await
        .map_err(unavailable)?
        .map_err(refused)?;
    let d = d.ok_or_else(|| ProError(StatusCode::NOT_FOUND, "no such document".into()))?;
    let raw = super::patient::document_bytes(&s.store, &d)
        .await
        .map_err(unavailable)?;
    Ok(super::patient::file_download(
        &super::dossier_view::file_name(&d),
        raw,
    ))
}

async fn profile(
    State(s): State<Shared>,
    Professional(pro): Professional,
    Path(ins): Path<String>,
    Query(how): Query<How>,
) -> Result<Json<serde_json::Value>, ProError> {
    let patient = patient_by_ins(&s, &ins).await?;
    let access = s
        .gate
        .check(&pro, &patient, how.mode()?, "profile", false)
        .await
        .map_err(unavailable)?
        .map_err(refused)?;
    // Items read from a hidden document are as hidden as the document.
    let items: Vec<_> = s
        .store
        .profile_of(patient.id)
        .await
        .map_err(unavailable)?
        .into_iter()
        .filter(|i| access.shows(i.source_hidden))
        .collect();
    Ok(Json(json!({ "items": items })))
}

/// POST an XDM zip (body): indexed exactly as by mail.
async fn deposit(
    State(s): State<Shared>,
    Professional(pro): Professional,
    Path(ins): Path<String>,
    body: Bytes,
) -> Result<Response, ProError> {
    let patient = patient_by_ins(&s, &ins).await?;
    s.gate
        .check(&pro, &patient, Mode::Normal, "deposit", false)
        .await
        .map_err(unavailable)?
        .map_err(refused)?;
    let recipient = PatientRecipient {
        account_id: patient.id,
        address: patient.address.clone(),
        ins: patient.ins.clone().unwrap_or_default(),
    };
    let zip = body.to_vec();
    let mut filing =
        tokio::task::spawn_blocking(move || filing::deposit(&zip, &recipient, &Limits::default()))
            .await
            .map_err(unavailable)?
            .map_err(|r| ProError(StatusCode::UNPROCESSABLE_ENTITY, r.smtp_text()))?;
    // The professional is the author: only they (or their establishment's
    // system's documents) may be replaced this way.
    let depositor =
        filing::Depositor::new(&pro.address, Some(pro.kind), pro.establishment.as_deref());
    crate::dossier::authorship::sign_and_check(&s.store, &mut filing, &depositor)
        .await
        .map_err(unavailable)?
        .map_err(|r| ProError(StatusCode::FORBIDDEN, r.smtp_text()))?;
    let documents = filing.documents.len();
    let withdrawn = filing.withdrawals.len();
    s.store.file(&filing.into()).await.map_err(unavailable)?;
    Ok((
        StatusCode::CREATED,
        Json(json!({ "documents": documents, "withdrawn": withdrawn })),
    )
        .into_response())
}

#[derive(Debug, Deserialize)]
struct TokenBody {
    address: String,
    password: String,
    code: String,
}

/// Password + TOTP code → a bearer token for this API (stored hashed).
async fn token(
    State(s): State<Shared>,
    axum::Extension(ClientAddr(peer)): axum::Extension<ClientAddr>,
    Json(body): Json<TokenBody>,
) -> Result<Response, ProError> {
    let credentials = crate::identity::sasl::Credentials {
        username: body.address.trim().to_string(),
        password: body.password,
    };
    match s
        .auth
        .login_with_totp(peer.ip(), credentials, &body.code)
        .await
    {
        crate::identity::auth::LoginResult::Success(account)
            if account.kind != AccountKind::Patient =>
        {
            let token = security::random_token();
            s.store
                .create_session(&security::token_hash(&token), account.id)
                .await
                .map_err(unavailable)?;
            Ok(
                Json(json!({ "token": token, "idle_timeout_secs": TOKEN_IDLE_SECS }))
                    .into_response(),
            )
        }
        crate::identity::auth::LoginResult::Throttled => Err(ProError(
            StatusCode::TOO_MANY_REQUESTS,
            "too many failures, try again later".into(),
        )),
        crate::identity::auth::LoginResult::Unavailable => Err(unavailable("login")),
        _ => Err(ProError(
            StatusCode::UNAUTHORIZED,
            "wrong address, password or code".into(),
        )),
    }
}

/// `?q=` of the directory search.
#[derive(Debug, Deserialize)]
pub struct DirectoryQuery {
    q: Option<String>,
}

/// Most entries one search returns.
const DIRECTORY_LIMIT: i64 = 50;

async fn directory_rows(
    s: &Shared,
    query: &DirectoryQuery,
) -> Result<Vec<crate::store::directory::DirectoryRow>, ProError> {
    let terms = crate::directory::terms(query.q.as_deref().unwrap_or_default());
    if terms.is_empty() {
        return Err(ProError(
            StatusCode::BAD_REQUEST,
            "q needs a term of at least two characters".into(),
        ));
    }
    s.store
        .directory_search(&terms, DIRECTORY_LIMIT)
        .await
        .map_err(unavailable)
}

/// `GET /api/pro/v1/directory?q=`: mailboxes of the trust space's directory
/// whose name, address, profession, structure or city hold every term.
async fn directory(
    State(s): State<Shared>,
    _pro: Professional,
    Query(query): Query<DirectoryQuery>,
) -> Result<Response, ProError> {
    let rows = directory_rows(&s, &query).await?;
    let entries: Vec<serde_json::Value> = rows
        .iter()
        .map(|r| {
            json!({
                "address": r.address,
                "kind": r.kind,
                "rpps": r.rpps,
                "civility": r.civility,
                "last_name": r.last_name,
                "first_name": r.first_name,
                "profession": r.profession,
                "specialty": r.specialty,
                "organization": r.organization,
                "city": r.city,
            })
        })
        .collect();
    Ok(Json(json!({ "entries": entries })).into_response())
}

/// `GET /api/pro/v1/directory.vcf?q=`: the same search as vCards.
async fn directory_vcf(
    State(s): State<Shared>,
    _pro: Professional,
    Query(query): Query<DirectoryQuery>,
) -> Result<Response, ProError> {
    let rows = directory_rows(&s, &query).await?;
    Ok((
        [(
            axum::http::header::CONTENT_TYPE,
            "text/vcard; charset=utf-8",
        )],
        crate::directory::vcard::render(&rows),
    )
        .into_response())
}
