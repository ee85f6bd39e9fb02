//! What the API and the webmail pages share: a patient's own threads (with the
//! ownership check and its audit), messages as shown, attachments, and messages
//! typed by the patient. Each front end maps [`PatientError`] to its own replies.

use axum::extract::{FromRequest, Multipart, Request};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use super::WebServices;
use super::render::{self, Rendered};
use crate::audit::{self, AuditEntry};
use crate::store::accounts::Account;
use crate::store::threads::Thread;
use crate::web::send::{SendError, Upload};

/// Why a patient request failed.
#[derive(Debug, thiserror::Error)]
pub enum PatientError {
    /// No such object for this patient (also: another patient's).
    #[error("not found")]
    NotFound,
    /// The request is malformed; the text is French, for the patient.
    #[error("{0}")]
    Bad(String),
    /// An upload is over the size limit (French text).
    #[error("{0}")]
    TooLarge(String),
    /// Sending refused by the rules or the attachment checks (French text).
    #[error(transparent)]
    Send(SendError),
    /// The store failed (the source is kept for the log, never shown).
    #[error("unavailable: {0}")]
    Unavailable(#[source] super::Failure),
}

impl From<crate::store::StoreError> for PatientError {
    fn from(e: crate::store::StoreError) -> Self {
        PatientError::Unavailable(Box::new(e))
    }
}

/// Loads a thread of the patient. Anything else is [`PatientError::NotFound`];
/// an attempt on another patient's thread is audited on that patient's trail.
pub async fn own_thread(s: &WebServices, p: &Account, id: i64) -> Result<Thread, PatientError> {
    if let Some(t) = s.store.thread_of(p.id, id).await? {
        return Ok(t);
    }
    if let Some(owner) = s.store.thread_owner(id).await? {
        tracing::warn!(
            thread = id,
            "patient session used on another patient's thread"
        );
        let entry = AuditEntry::new(
            &p.address,
            "thread.access_denied",
            &owner,
            &format!("thread {id}"),
        );
        audit::append(&s.store, &entry).await?;
    }
    Err(PatientError::NotFound)
}

/// Loads a document of the patient's record. Another patient's document is
/// [`PatientError::NotFound`], and the attempt goes through the access gate,
/// which refuses it and writes it on the owner's trail.
pub async fn own_document(
    s: &WebServices,
    p: &Account,
    id: i64,
) -> Result<crate::store::dossier::Document, PatientError> {
    if let Some(d) = s.store.document_of(p.id, id).await? {
        return Ok(d);
    }
    // The patient's own withdrawn document is simply not there any more.
    if let Some(owner) = s.store.document_owner(id).await?
        && owner != p.id
        && let Some(owner) = s.store.account_by_id(owner).await?
    {
        let _refused = s
            .gate
            .check(
                p,
                &owner,
                crate::access::Mode::Normal,
                &format!("document {id}"),
                false,
            )
            .await?;
    }
    Err(PatientError::NotFound)
}

/// A message of a thread as the patient sees it.
#[derive(Debug, Serialize)]
pub struct MessageView {
    /// Message row id (used in attachment links).
    pub id: i64,
    /// `in` (to the patient) or `out` (from the patient).
    pub direction: String,
    /// Unix seconds.
    pub date: i64,
    /// Read by the patient.
    pub read: bool,
    /// Sender name, subject, text, sanitised HTML, attachments.
    #[serde(flatten)]
    pub content: Rendered,
}

/// The messages of `t`, oldest first, named for the patient.
pub async fn messages(
    s: &WebServices,
    p: &Account,
    t: &Thread,
) -> Result<Vec<MessageView>, PatientError> {
    let mut out = Vec::new();
    for m in s.store.thread_messages(t.id).await? {
        let raw = s.store.blob(&m.blob_hash).await?;
        let mut content = render::render(&raw);
        // The patient sees names, never a bare address as the only label.
        content.from_name = if m.direction == "in" {
            t.correspondent_name.clone()
        } else {
            p.display_name.clone()
        };
        out.push(MessageView {
            id: m.message_id,
            direction: m.direction,
            date: m.created_at,
            read: m.is_read,
            content,
        });
    }
    Ok(out)
}

/// Attachment `index` of message `message` in the patient's thread `id`, as a
/// download (never rendered by the browser).
pub async fn download(
    s: &WebServices,
    p: &Account,
    id: i64,
    message: i64,
    index: usize,
) -> Result<Response, PatientError> {
    let t = own_thread(s, p, id).await?;
    let m = s
        .store
        .thread_messages(t.id)
        .await?
        .into_iter()
        .find(|m| m.message_id == message)
        .ok_or(PatientError::NotFound)?;
    let raw = s.store.blob(&m.blob_hash).await?;
    let (info, data) = render::attachment(&raw, index).ok_or(PatientError::NotFound)?;
    Ok(file_download(&info.filename, data))
}

/// A file as a download: never rendered by the browser, under a safe name.
pub fn file_download(name: &str, data: Vec<u8>) -> Response {
    let mut headers = HeaderMap::new();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    let safe: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') {
                c
            } else {
                '_'
            }
        })
        .collect();
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{safe}\"")) {
        headers.insert(header::CONTENT_DISPOSITION, v);
    }
    (headers, data).into_response()
}

/// Correspondents the patient may write to: those of an open thread (the rule
/// itself is enforced again by the sending path).
pub async fn writable_correspondents(
    s: &WebServices,
    p: &Account,
) -> Result<Vec<Thread>, PatientError> {
    let mut seen = std::collections::HashSet::new();
    Ok(s.store
        .threads_of(p.id)
        .await?
        .into_iter()
        .filter(|t| crate::threads::may_reply(t).is_ok())
        .filter(|t| seen.insert(t.correspondent.clone()))
        .collect())
}

/// A message typed by the patient.
#[derive(Debug, Default)]
pub struct Compose {
    /// Recipient (new messages only).
    pub to: Option<String>,
    /// Text.
    pub text: String,
    /// Files.
    pub uploads: Vec<Upload>,
    /// The form's anti-forgery token (webmail forms).
    pub csrf: Option<String>,
}

/// Reads a multipart form: fields `to`, `text`, `csrf`; any other field is a file
/// (an empty file field, as browsers send when nothing is chosen, is skipped).
pub async fn read_multipart(
    req: Request,
    max_attachment_size: usize,
) -> Result<Compose, PatientError> {
    let bad = |m: &str| PatientError::Bad(m.to_string());
    let mut mp = Multipart::from_request(req, &())
        .await
        .map_err(|_| bad("Requête invalide."))?;
    let mut c = Compose::default();
    while let Some(field) = mp
        .next_field()
        .await
        .map_err(|_| bad("Envoi interrompu."))?
    {
        let name = field.name().unwrap_or_default().to_string();
        match name.as_str() {
            "text" => c.text = field.text().await.map_err(|_| bad("Texte invalide."))?,
            "to" => {
                c.to = Some(
                    field
                        .text()
                        .await
                        .map_err(|_| bad("Destinataire invalide."))?,
                )
            }
            "csrf" => c.csrf = Some(field.text().await.map_err(|_| bad("Requête invalide."))?),
            _ => {
                let file = field.file_name().unwrap_or_default().to_string();
                let data = field.bytes().await.map_err(|_| bad("Envoi interrompu."))?;
                if file.is_empty() && data.is_empty() {
                    continue;
                }
                if data.len() > max_attachment_size {
                    return Err(PatientError::TooLarge(format!(
                        "La pièce jointe « {file} » dépasse la taille maximale de {} Mo.",
                        max_attachment_size / (1024 * 1024)
                    )));
                }
                let name = if file.is_empty() {
                    "piece-jointe".to_string()
                } else {
                    file
                };
                c.uploads.push(Upload {
                    name,
                    data: data.to_vec(),
                });
            }
        }
    }
    Ok(c)
}

/// A document the patient adds to their record (multipart form).
#[derive(Debug, Default)]
pub struct DocumentUpload {
    /// Anti-forgery token.
    pub csrf: Option<String>,
    /// Chosen category.
    pub category: String,
    /// Title typed by the patient.
    pub title: String,
    /// File name as given.
    pub file_name: String,
    /// Content.
    pub data: Vec<u8>,
}

/// Reads a document upload: fields `csrf`, `category`, `title`, one file.
pub async fn read_document_upload(
    req: Request,
    max_size: usize,
) -> Result<DocumentUpload, PatientError> {
    let bad = |m: &str| PatientError::Bad(m.to_string());
    let mut mp = Multipart::from_request(req, &())
        .await
        .map_err(|_| bad("Requête invalide."))?;
    let mut u = DocumentUpload::default();
    while let Some(field) = mp
        .next_field()
        .await
        .map_err(|_| bad("Envoi interrompu."))?
    {
        let name = field.name().unwrap_or_default().to_string();
        match name.as_str() {
            "csrf" => u.csrf = Some(field.text().await.map_err(|_| bad("Requête invalide."))?),
            "category" => u.category = field.text().await.map_err(|_| bad("Requête invalide."))?,
            "title" => u.title = field.text().await.map_err(|_| bad("Requête invalide."))?,
            _ => {
                u.file_name = field.file_name().unwrap_or_default().to_string();
                let data = field.bytes().await.map_err(|_| bad("Envoi interrompu."))?;
                if data.len() > max_size {
                    return Err(PatientError::TooLarge(format!(
                        "Le document dépasse la taille maximale de {} Mo.",
                        max_size / (1024 * 1024)
                    )));
                }
                u.data = data.to_vec();
            }
        }
    }
    Ok(u)
}

/// A document's bytes: its own blob, or read back from the message that
/// brought it (`DocumentRef`), through the checks of delivery.
pub(super) async fn document_bytes(
    store: &crate::store::Store,
    d: &crate::store::dossier::Document,
) -> Result<Vec<u8>, crate::store::StoreError> {
    let raw = store.blob(&d.blob_hash).await?;
    let Some(at) = d
        .reference
        .clone()
        .map(crate::dossier::filing::DocumentRef::from)
    else {
        return Ok(raw);
    };
    let unique_id = d.unique_id.clone();
    tokio::task::spawn_blocking(move || {
        let limits = crate::dossier::limits::Limits::default();
        crate::dossier::filing::extract(&raw, &at, &unique_id, &limits)
    })
    .await
    .ok()
    .flatten()
    .ok_or_else(|| crate::store::StoreError::NotFound(format!("document {} in its message", d.id)))
}
