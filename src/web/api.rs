//! The patient API, JSON under `/api/v1/`: login, threads, messages, attachments,
//! replies, notice settings. Every route that takes an id checks that the object
//! belongs to the logged-in patient; a refused attempt is audited.

use std::sync::Arc;

use axum::Json;
use axum::extract::{DefaultBodyLimit, FromRequest, FromRequestParts, Path, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::patient::{self, Compose, PatientError};
use super::{ClientAddr, WebServices, security};
use crate::identity::AccountKind;
use crate::identity::auth::LoginResult;
use crate::store::accounts::Account;
use crate::web::send::SendError;

type Shared = Arc<WebServices>;

/// The routes of `/api/v1/`.
pub fn routes() -> axum::Router<Shared> {
    axum::Router::new()
        .route("/api/v1/login", post(login))
        .route("/api/v1/logout", post(logout))
        .route("/api/v1/threads", get(threads))
        .route("/api/v1/threads/{id}", get(thread))
        .route("/api/v1/threads/{id}/read", post(mark_read))
        .route(
            "/api/v1/threads/{id}/reply",
            post(reply).layer(DefaultBodyLimit::max(super::UPLOAD_LIMIT)),
        )
        .route(
            "/api/v1/threads/{id}/messages/{message}/attachments/{index}",
            get(download),
        )
        .route(
            "/api/v1/messages",
            post(new_message).layer(DefaultBodyLimit::max(super::UPLOAD_LIMIT)),
        )
        .route(
            "/api/v1/documents",
            get(documents)
                .post(add_document)
                .layer(DefaultBodyLimit::max(super::UPLOAD_LIMIT)),
        )
        .route("/api/v1/documents/{id}", get(document))
        .route("/api/v1/documents/{id}/content", get(document_content))
        .route("/api/v1/documents/{id}/hidden", put(document_hidden))
        .route("/api/v1/profile", get(profile).post(declare))
        .route("/api/v1/access-history", get(access_history))
        .route("/api/v1/export", get(export_space))
        .route(
            "/api/v1/professionals",
            get(professionals).put(set_professional),
        )
        .route("/api/v1/consents", get(get_consents).put(put_consents))
        .route("/api/v1/agenda", get(agenda_list))
        .route("/api/v1/agenda/{id}/reply", post(agenda_reply))
        .route("/api/v1/recommendations", get(recommendations))
        .route(
            "/api/v1/recommendations/{code}",
            get(recommendation).put(mark_recommendation),
        )
        .route(
            "/api/v1/settings/notifications",
            get(get_settings).put(put_settings),
        )
        .layer(DefaultBodyLimit::max(super::FORM_LIMIT))
}

/// An API error: status and a French message for the patient.
#[derive(Debug)]
pub struct ApiError(StatusCode, String);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.0, Json(json!({ "error": self.1 }))).into_response()
    }
}

fn unavailable(e: impl std::fmt::Display) -> ApiError {
    tracing::error!(error = %e, "patient API failure");
    ApiError(
        StatusCode::SERVICE_UNAVAILABLE,
        "Le service est momentanément indisponible. Réessayez plus tard.".into(),
    )
}

fn not_found() -> ApiError {
    ApiError(StatusCode::NOT_FOUND, "Cet échange n'existe pas.".into())
}

impl From<PatientError> for ApiError {
    fn from(e: PatientError) -> Self {
        match e {
            PatientError::NotFound => not_found(),
            PatientError::Bad(m) => ApiError(StatusCode::BAD_REQUEST, m),
            PatientError::TooLarge(m) => ApiError(StatusCode::UNPROCESSABLE_ENTITY, m),
            PatientError::Send(e) => send_error(e),
            PatientError::Unavailable(e) => unavailable(e),
        }
    }
}

/// The logged-in patient of a request (Authorization: Bearer).
#[derive(Debug, Clone)]
pub struct Patient(pub Account, String);

impl FromRequestParts<Shared> for Patient {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Shared,
    ) -> Result<Self, Self::Rejection> {
        let unauthorized = || ApiError(StatusCode::UNAUTHORIZED, "Veuillez vous connecter.".into());
        let token = security::bearer_token(&parts.headers).ok_or_else(unauthorized)?;
        let idle = state.settings.session_idle_secs as i64;
        let max = state.settings.session_max_secs as i64;
        let (account, hash) = security::token_account(&state.store, &token, idle, max)
            .await
            .map_err(unavailable)?
            .filter(|(a, _)| a.kind == AccountKind::Patient && !a.disabled)
            .ok_or_else(unauthorized)?;
        Ok(Patient(account, hash))
    }
}

#[derive(Debug, Deserialize)]
struct LoginBody {
    login: String,
    password: String,
}

async fn login(
    State(s): State<Shared>,
    axum::Extension(ClientAddr(peer)): axum::Extension<ClientAddr>,
    Json(body): Json<LoginBody>,
) -> Result<Response, ApiError> {
    match s
        .auth
        .login_patient(peer.ip(), body.login.trim(), body.password)
        .await
    {
        LoginResult::Patient(account) => {
            let token = security::random_token();
            s.store
                .create_session(&security::token_hash(&token), account.id)
                .await
                .map_err(unavailable)?;
            Ok(Json(json!({
                "token": token,
                "patient": { "address": account.address, "name": account.display_name },
            }))
            .into_response())
        }
        LoginResult::Throttled => Err(ApiError(
            StatusCode::TOO_MANY_REQUESTS,
            "Trop de tentatives de connexion. Réessayez dans quelques minutes.".into(),
        )),
        LoginResult::Unavailable => Err(unavailable("store")),
        LoginResult::Closed => Err(ApiError(
            StatusCode::FORBIDDEN,
            crate::web::pages::CLOSED_FR.into(),
        )),
        _ => Err(ApiError(
            StatusCode::UNAUTHORIZED,
            "Identifiant ou mot de passe incorrect.".into(),
        )),
    }
}

async fn logout(
    State(s): State<Shared>,
    Patient(_, hash): Patient,
) -> Result<StatusCode, ApiError> {
    s.store.delete_session(&hash).await.map_err(unavailable)?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Serialize)]
struct ThreadSummary {
    id: i64,
    correspondent: Correspondent,
    subject: String,
    last_message_at: i64,
    unread: i64,
    status: String,
    ended_by: Option<String>,
    ended_at: Option<i64>,
    /// What the page shows when the thread is closed.
    notice: Option<String>,
}

#[derive(Debug, Serialize)]
struct Correspondent {
    name: String,
    profession: Option<String>,
    address: String,
    /// Who wrote on the correspondent's behalf (a hospital system), by name.
    via: Option<String>,
    /// The correspondent belongs to another operator of the trust space.
    other_operator: bool,
}

fn summary(t: &crate::store::threads::Thread) -> ThreadSummary {
    ThreadSummary {
        id: t.id,
        correspondent: Correspondent {
            name: t.correspondent_name.clone(),
            profession: t.correspondent_profession.clone(),
            address: t.correspondent.clone(),
            via: t.correspondent_via.clone(),
            other_operator: t.correspondent_other_operator,
        },
        subject: t.subject.clone(),
        last_message_at: t.last_message_at,
        unread: t.unread,
        status: t.status.clone(),
        ended_by: t.ended_by.clone(),
        ended_at: t.ended_at,
        notice: crate::threads::may_reply(t).err().map(|e| e.to_string()),
    }
}

async fn threads(
    State(s): State<Shared>,
    Patient(p, _): Patient,
) -> Result<Json<serde_json::Value>, ApiError> {
    let list = s.store.threads_of(p.id).await.map_err(unavailable)?;
    Ok(Json(
        json!({ "threads": list.iter().map(summary).collect::<Vec<_>>() }),
    ))
}

async fn thread(
    State(s): State<Shared>,
    Patient(p, _): Patient,
    Path(id): Path<i64>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let t = patient::own_thread(&s, &p, id).await?;
    let messages = patient::messages(&s, &p, &t).await?;
    Ok(Json(json!({ "thread": summary(&t), "messages": messages })))
}

async fn mark_read(
    State(s): State<Shared>,
    Patient(p, _): Patient,
    Path(id): Path<i64>,
) -> Result<StatusCode, ApiError> {
    let t = patient::own_thread(&s, &p, id).await?;
    s.store.mark_thread_read(t.id).await.map_err(unavailable)?;
    Ok(StatusCode::NO_CONTENT)
}

async fn download(
    State(s): State<Shared>,
    Patient(p, _): Patient,
    Path((id, message, index)): Path<(i64, i64, usize)>,
) -> Result<Response, ApiError> {
    let mut response = patient::download(&s, &p, id, message, index).await?;
    response.headers_mut().insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    Ok(response)
}

/// A message typed by the patient: JSON (`{"text": …}`) or multipart (`text`, files).
async fn read_compose(req: Request, s: &Shared) -> Result<Compose, ApiError> {
    let is_multipart = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("multipart/form-data"));
    if is_multipart {
        return Ok(patient::read_multipart(req, s.settings.max_attachment_size).await?);
    }
    #[derive(Deserialize)]
    struct Body {
        to: Option<String>,
        text: String,
    }
    let Json(b) = Json::<Body>::from_request(req, s)
        .await
        .map_err(|_| ApiError(StatusCode::BAD_REQUEST, "Requête invalide.".into()))?;
    Ok(Compose {
        to: b.to,
        text: b.text,
        ..Compose::default()
    })
}

fn send_error(e: SendError) -> ApiError {
    match e {
        SendError::Refused(r) => ApiError(StatusCode::FORBIDDEN, r.to_string()),
        SendError::Attachment(a) => ApiError(StatusCode::UNPROCESSABLE_ENTITY, a.to_string()),
        SendError::Empty => ApiError(StatusCode::BAD_REQUEST, SendError::Empty.to_string()),
        e @ SendError::Quota(..) => ApiError(StatusCode::INSUFFICIENT_STORAGE, e.to_string()),
        SendError::Unavailable(e) => unavailable(e),
    }
}

async fn reply(
    State(s): State<Shared>,
    Patient(p, _): Patient,
    Path(id): Path<i64>,
    req: Request,
) -> Result<Response, ApiError> {
    let t = patient::own_thread(&s, &p, id).await?;
    let c = read_compose(req, &s).await?;
    let message = s
        .sender
        .reply(&p, &t, &c.text, c.uploads)
        .await
        .map_err(send_error)?;
    Ok((
        StatusCode::CREATED,
        Json(json!({ "thread": t.id, "message": message })),
    )
        .into_response())
}

async fn new_message(
    State(s): State<Shared>,
    Patient(p, _): Patient,
    req: Request,
) -> Result<Response, ApiError> {
    let c = read_compose(req, &s).await?;
    let to =
        c.to.as_deref()
            .and_then(|t| crate::address::Address::parse(t).ok())
            .ok_or_else(|| ApiError(StatusCode::BAD_REQUEST, "Destinataire invalide.".into()))?;
    let (thread, message) = s
        .sender
        .new_message(&p, &to.to_string(), &c.text, c.uploads)
        .await
        .map_err(send_error)?;
    Ok((
        StatusCode::CREATED,
        Json(json!({ "thread": thread, "message": message })),
    )
        .into_response())
}

#[derive(Debug, Serialize, Deserialize)]
struct NoticeSettings {
    email: Option<String>,
    enabled: bool,
}

async fn get_settings(
    State(s): State<Shared>,
    Patient(p, _): Patient,
) -> Result<Json<NoticeSettings>, ApiError> {
    let (email, enabled, _) = s.store.patient_settings(p.id).await.map_err(unavailable)?;
    Ok(Json(NoticeSettings { email, enabled }))
}

async fn put_settings(
    State(s): State<Shared>,
    Patient(p, _): Patient,
    Json(body): Json<NoticeSettings>,
) -> Result<Json<NoticeSettings>, ApiError> {
    let email = match body
        .email
        .as_deref()
        .map(str::trim)
        .filter(|e| !e.is_empty())
    {
        Some(e) => Some(
            crate::address::Address::parse(e)
                .map_err(|_| {
                    ApiError(
                        StatusCode::BAD_REQUEST,
                        "Adresse électronique invalide.".into(),
                    )
                })?
                .to_string(),
        ),
        None => None,
    };
    s.store
        .set_patient_settings(p.id, email.as_deref(), body.enabled)
        .await
        .map_err(unavailable)?;
    Ok(Json(NoticeSettings {
        email,
        enabled: body.enabled,
    }))
}

#[derive(Debug, Serialize)]
struct DocumentJson {
    #[serde(flatten)]
    document: crate::store::dossier::Document,
    category_label: &'static str,
}

fn document_json(d: crate::store::dossier::Document) -> DocumentJson {
    DocumentJson {
        category_label: crate::dossier::category::label_fr(&d.category),
        document: d,
    }
}

/// Default and largest page of `GET /api/v1/documents`.
const DOCUMENTS_PAGE: (i64, i64) = (100, 500);

/// Query of `GET /api/v1/documents`; empty values count as absent.
#[derive(Debug, Deserialize)]
struct DocumentsQuery {
    category: Option<String>,
    before: Option<String>,
    limit: Option<String>,
}

/// A number from the query: absent or empty gives None, anything else must parse.
fn query_number(value: Option<&str>) -> Result<Option<i64>, ApiError> {
    match value.map(str::trim).filter(|v| !v.is_empty()) {
        None => Ok(None),
        Some(v) => v
            .parse()
            .map(Some)
            .map_err(|_| ApiError(StatusCode::BAD_REQUEST, "Paramètre invalide.".into())),
    }
}

/// The patient's documents, newest first, a page at a time: `next` is the
/// `before` of the following page, null on the last one (schema:
/// `schemas/api/documents.schema.json`).
async fn documents(
    State(s): State<Shared>,
    Patient(p, _): Patient,
    axum::extract::Query(q): axum::extract::Query<DocumentsQuery>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let limit = query_number(q.limit.as_deref())?
        .unwrap_or(DOCUMENTS_PAGE.0)
        .clamp(1, DOCUMENTS_PAGE.1);
    let before = query_number(q.before.as_deref())?;
    let category = q
        .category
        .as_deref()
        .map(str::trim)
        .filter(|c| !c.is_empty());
    // One more than asked, to know whether another page follows.
    let mut page = s
        .store
        .documents_page(p.id, category, before, limit + 1)
        .await
        .map_err(unavailable)?;
    let next = (page.len() as i64 > limit)
        .then(|| {
            page.truncate(limit as usize);
            page.last().map(|d| d.id)
        })
        .flatten();
    let list: Vec<DocumentJson> = page.into_iter().map(document_json).collect();
    Ok(Json(json!({ "documents": list, "next": next })))
}

async fn own_document(
    s: &Shared,
    p: &Account,
    id: i64,
) -> Result<crate::store::dossier::Document, ApiError> {
    patient::own_document(s, p, id).await.map_err(|e| match e {
        PatientError::NotFound => {
            ApiError(StatusCode::NOT_FOUND, "Ce document n'existe pas.".into())
        }
        other => other.into(),
    })
}

async fn document(
    State(s): State<Shared>,
    Patient(p, _): Patient,
    Path(id): Path<i64>,
) -> Result<Json<DocumentJson>, ApiError> {
    Ok(Json(document_json(own_document(&s, &p, id).await?)))
}

async fn document_content(
    State(s): State<Shared>,
    Patient(p, _): Patient,
    Path(id): Path<i64>,
) -> Result<Response, ApiError> {
    let d = own_document(&s, &p, id).await?;
    let raw = super::patient::document_bytes(&s.store, &d)
        .await
        .map_err(unavailable)?;
    Ok(patient::file_download(
        &super::dossier_view::file_name(&d),
        raw,
    ))
}

#[derive(Debug, Deserialize)]
struct HiddenBody {
    hidden: bool,
}

/// Hides a document from professionals (MASQUE_PS) or shows it again.
async fn document_hidden(
    State(s): State<Shared>,
    Patient(p, _): Patient,
    Path(id): Path<i64>,
    Json(body): Json<HiddenBody>,
) -> Result<Json<DocumentJson>, ApiError> {
    own_document(&s, &p, id).await?;
    s.store
        .set_document_hidden(p.id, id, body.hidden)
        .await
        .map_err(unavailable)?;
    crate::audit::append(
        &s.store,
        &crate::audit::AuditEntry::new(
            &p.address,
            if body.hidden {
                "document.hide"
            } else {
                "document.show"
            },
            &p.address,
            &format!("document {id}"),
        ),
    )
    .await
    .map_err(unavailable)?;
    Ok(Json(document_json(own_document(&s, &p, id).await?)))
}

/// The patient adds a document (multipart: category, title, file).
async fn add_document(
    State(s): State<Shared>,
    Patient(p, _): Patient,
    req: Request,
) -> Result<Response, ApiError> {
    let u = patient::read_document_upload(req, crate::dossier::PATIENT_DOCUMENT_MAX).await?;
    let doc = crate::dossier::patient_document(&u.category, &u.title, &u.file_name, u.data)
        .map_err(|e| ApiError(StatusCode::UNPROCESSABLE_ENTITY, e.to_string()))?;
    s.store
        .add_document(p.id, doc.into())
        .await
        .map_err(unavailable)?;
    crate::audit::append(
        &s.store,
        &crate::audit::AuditEntry::new(&p.address, "document.add", &p.address, "patient"),
    )
    .await
    .map_err(unavailable)?;
    Ok(StatusCode::CREATED.into_response())
}

/// The profil médical (schema: `schemas/api/profile.schema.json`).
async fn profile(
    State(s): State<Shared>,
    Patient(p, _): Patient,
) -> Result<Json<serde_json::Value>, ApiError> {
    let items = s.store.profile_of(p.id).await.map_err(unavailable)?;
    let entries: Vec<serde_json::Value> = crate::dossier::ProfileCategory::ALL
        .iter()
        .map(|c| {
            json!({
                "id": c.as_str(),
                "label": c.label_fr(),
                "items": items.iter().filter(|i| i.category == c.as_str()).collect::<Vec<_>>(),
            })
        })
        .collect();
    Ok(Json(json!({ "entries": entries })))
}

#[derive(Debug, Deserialize)]
struct DeclareBody {
    category: String,
    label: String,
    #[serde(default)]
    value: String,
}

/// An item the patient declares.
async fn declare(
    State(s): State<Shared>,
    Patient(p, _): Patient,
    Json(body): Json<DeclareBody>,
) -> Result<StatusCode, ApiError> {
    let item = crate::dossier::declared_item(&body.category, &body.label, &body.value).ok_or_else(
        || {
            ApiError(
                StatusCode::BAD_REQUEST,
                "Rubrique ou information invalide.".into(),
            )
        },
    )?;
    s.store
        .declare_profile_item(p.id, &item.into())
        .await
        .map_err(unavailable)?;
    Ok(StatusCode::CREATED)
}

#[derive(Debug, Deserialize)]
struct HistoryQuery {
    #[serde(rename = "type")]
    actor_type: Option<String>,
}

/// Every access to the patient's record and messages by someone else, newest first.
async fn access_history(
    State(s): State<Shared>,
    Patient(p, _): Patient,
    axum::extract::Query(q): axum::extract::Query<HistoryQuery>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let lines = super::history::history(&s, &p, q.actor_type.as_deref())
        .await
        .map_err(unavailable)?;
    Ok(Json(json!({ "entries": lines })))
}

async fn professionals(
    State(s): State<Shared>,
    Patient(p, _): Patient,
) -> Result<Json<serde_json::Value>, ApiError> {
    let list = super::history::professionals(&s, &p)
        .await
        .map_err(unavailable)?;
    Ok(Json(json!({ "professionals": list })))
}

#[derive(Debug, Deserialize)]
struct ProfessionalBody {
    address: String,
    /// `authorised`, `blocked` or `removed`.
    status: String,
}

async fn set_professional(
    State(s): State<Shared>,
    Patient(p, _): Patient,
    Json(body): Json<ProfessionalBody>,
) -> Result<StatusCode, ApiError> {
    if super::history::set_professional(&s, &p, &body.address, &body.status)
        .await
        .map_err(unavailable)?
    {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError(
            StatusCode::BAD_REQUEST,
            "Adresse ou choix invalide.".into(),
        ))
    }
}

async fn get_consents(
    State(s): State<Shared>,
    Patient(p, _): Patient,
) -> Result<Json<crate::store::access::Consents>, ApiError> {
    Ok(Json(s.store.consents(p.id).await.map_err(unavailable)?))
}

async fn put_consents(
    State(s): State<Shared>,
    Patient(p, _): Patient,
    Json(c): Json<crate::store::access::Consents>,
) -> Result<Json<crate::store::access::Consents>, ApiError> {
    super::history::set_consents(&s, &p, c)
        .await
        .map_err(unavailable)?;
    Ok(Json(c))
}

#[derive(Debug, Deserialize)]
struct AgendaQuery {
    from: Option<String>,
    to: Option<String>,
}

/// `2026-03-10` (midnight UTC) or an RFC 3339 date-time, in Unix seconds.
fn api_time(value: &str) -> Option<i64> {
    if let Ok(d) = chrono::DateTime::parse_from_rfc3339(value) {
        return Some(d.timestamp());
    }
    chrono::NaiveDate::parse_from_str(value, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|d| d.and_utc().timestamp())
}

/// The patient's appointments between `from` (default: now) and `to`
/// (default: a year later), one item per occurrence (schema:
/// `schemas/api/agenda.schema.json`).
async fn agenda_list(
    State(s): State<Shared>,
    Patient(p, _): Patient,
    axum::extract::Query(q): axum::extract::Query<AgendaQuery>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let bad = || {
        ApiError(
            StatusCode::BAD_REQUEST,
            "Date incorrecte (AAAA-MM-JJ ou RFC 3339).".into(),
        )
    };
    let from = match q.from.as_deref() {
        Some(v) => api_time(v).ok_or_else(bad)?,
        None => s.store.now(),
    };
    let to = match q.to.as_deref() {
        Some(v) => api_time(v).ok_or_else(bad)?,
        None => from + 365 * 86_400,
    };
    let items = super::agenda::list(&s, &p, from, to).await?;
    Ok(Json(json!({ "appointments": items })))
}

#[derive(Debug, Deserialize)]
struct ReplyBody {
    partstat: String,
}

/// Accepts or declines an invitation: the organiser gets an iTIP REPLY
/// (schema: `schemas/api/agenda-reply.schema.json` for the body, the answer
/// is one appointment of `agenda.schema.json`).
async fn agenda_reply(
    State(s): State<Shared>,
    Patient(p, _): Patient,
    Path(id): Path<i64>,
    Json(body): Json<ReplyBody>,
) -> Result<Json<super::agenda::AppointmentView>, ApiError> {
    let partstat = crate::agenda::PartStat::parse(&body.partstat).ok_or_else(|| {
        ApiError(
            StatusCode::UNPROCESSABLE_ENTITY,
            "Réponse attendue : ACCEPTED ou DECLINED.".into(),
        )
    })?;
    let a = super::agenda::reply(&s, &p, id, partstat)
        .await
        .map_err(|e| match e {
            PatientError::NotFound => {
                ApiError(StatusCode::NOT_FOUND, "Ce rendez-vous n'existe pas.".into())
            }
            PatientError::Bad(m) => ApiError(StatusCode::CONFLICT, m),
            other => other.into(),
        })?;
    Ok(Json(super::agenda::first_view(&a)))
}

/// The recommended screenings, vaccinations and examinations that concern
/// the patient now (schema: `schemas/api/recommendations.schema.json`).
async fn recommendations(
    State(s): State<Shared>,
    Patient(p, _): Patient,
) -> Result<Json<serde_json::Value>, ApiError> {
    let items = super::agenda::recommendations(&s, &p).await?;
    Ok(Json(json!({ "recommendations": items })))
}

fn one_recommendation(
    items: Vec<crate::agenda::recommend::Computed>,
    code: &str,
) -> Result<Json<crate::agenda::recommend::Computed>, ApiError> {
    items
        .into_iter()
        .find(|r| r.code == code)
        .map(Json)
        .ok_or_else(|| {
            ApiError(
                StatusCode::NOT_FOUND,
                "Cette recommandation ne vous concerne pas.".into(),
            )
        })
}

/// One recommendation (`recommendations.schema.json#/$defs/recommendation`).
async fn recommendation(
    State(s): State<Shared>,
    Patient(p, _): Patient,
    Path(code): Path<String>,
) -> Result<Json<crate::agenda::recommend::Computed>, ApiError> {
    one_recommendation(super::agenda::recommendations(&s, &p).await?, &code)
}

#[derive(Debug, Deserialize)]
struct MarkBody {
    status: String,
    date: Option<String>,
}

/// The patient marks a recommendation done or not done
/// (`recommendation-mark.schema.json`); answers the recommendation.
async fn mark_recommendation(
    State(s): State<Shared>,
    Patient(p, _): Patient,
    Path(code): Path<String>,
    Json(body): Json<MarkBody>,
) -> Result<Json<crate::agenda::recommend::Computed>, ApiError> {
    let done = match body.status.as_str() {
        "DONE" => true,
        "NOT_DONE" => false,
        _ => {
            return Err(ApiError(
                StatusCode::UNPROCESSABLE_ENTITY,
                "Statut attendu : DONE ou NOT_DONE.".into(),
            ));
        }
    };
    let date = match body.date.as_deref() {
        Some(d) => Some(
            chrono::NaiveDate::parse_from_str(d, "%Y-%m-%d").map_err(|_| {
                ApiError(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "Date attendue : AAAA-MM-JJ.".into(),
                )
            })?,
        ),
        None => None,
    };
    let items = super::agenda::recommendations(&s, &p).await?;
    if !items.iter().any(|r| r.code == code) {
        return Err(ApiError(
            StatusCode::NOT_FOUND,
            "Cette recommandation ne vous concerne pas.".into(),
        ));
    }
    super::agenda::mark_recommendation(&s, &p, &code, done, date).await?;
    one_recommendation(super::agenda::recommendations(&s, &p).await?, &code)
}

/// GET /api/v1/export: the whole space as a zip (ranges, ETag: `web/export.rs`).
async fn export_space(
    State(s): State<Shared>,
    Patient(p, _): Patient,
    method: axum::http::Method,
    headers: axum::http::HeaderMap,
) -> Response {
    super::export::download(&s, &p, &method, &headers).await
}
