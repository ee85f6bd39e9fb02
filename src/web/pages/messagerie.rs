//! Messagerie pages: the list of threads, a thread with its reply box, a new
//! message, attachment downloads. The rules are those of `crate::threads`,
//! applied again by the sending path whatever the page shows.

use askama::Template;
use axum::Extension;
use axum::extract::{Path, Query, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};

use super::{
    ACCEPT, Etat, Layout, PageError, Session, Shared, attachment_rules, date_fr, render,
    send_refusal, size_fr,
};
use crate::store::threads::Thread;
use crate::web::patient::{self, PatientError};
use crate::web::security::Csrf;

struct ThreadRow {
    id: i64,
    name: String,
    profession: Option<String>,
    provenance: Option<String>,
    subject: String,
    date: String,
    unread: i64,
    ended: bool,
}

#[derive(Template)]
#[template(path = "messagerie.html")]
struct ListPage {
    l: Layout,
    notice: Option<&'static str>,
    threads: Vec<ThreadRow>,
}

fn subject_or_default(subject: &str) -> String {
    if subject.trim().is_empty() {
        "(sans objet)".to_string()
    } else {
        subject.to_string()
    }
}

/// What the patient must know of where the correspondent's messages come
/// from: the system that writes for them, and whether their name was given
/// by another operator rather than checked here.
fn provenance(t: &crate::store::threads::Thread) -> Option<String> {
    let via = t.correspondent_via.as_ref().map(|v| format!("via {v}"));
    let other = t
        .correspondent_other_operator
        .then(|| "messagerie d'un autre opérateur de santé".to_string());
    match (via, other) {
        (Some(v), Some(o)) => Some(format!("{v} — {o}")),
        (v, o) => v.or(o),
    }
}

/// The correspondent's name and profession as the patient sees them: for a
/// professional of another operator listed in the directory, the directory's
/// (marked "(annuaire)": checked by the ANS, not by us), else the thread's.
async fn correspondent(s: &Shared, t: &crate::store::threads::Thread) -> (String, Option<String>) {
    let own = (
        t.correspondent_name.clone(),
        t.correspondent_profession.clone(),
    );
    if !t.correspondent_other_operator {
        return own;
    }
    let row = match s
        .store
        .directory_entry(&t.correspondent.to_lowercase())
        .await
    {
        Ok(Some(row)) => row,
        Ok(None) => return own,
        Err(e) => {
            tracing::warn!(error = %e, "directory lookup failed");
            return own;
        }
    };
    let name = [row.first_name.as_deref(), row.last_name.as_deref()]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join(" ");
    let name = if name.is_empty() {
        row.organization.clone().unwrap_or_default()
    } else {
        name
    };
    if name.is_empty() {
        return own;
    }
    (format!("{name} (annuaire)"), row.profession.or(own.1))
}

/// GET /messagerie
pub(super) async fn list(
    State(s): State<Shared>,
    Extension(csrf): Extension<Csrf>,
    session: Session,
    q: Query<Etat>,
) -> Result<Response, PageError> {
    let mut threads = Vec::new();
    for t in s.store.threads_of(session.account.id).await? {
        let (name, profession) = correspondent(&s, &t).await;
        threads.push(ThreadRow {
            id: t.id,
            name,
            profession,
            provenance: provenance(&t),
            subject: subject_or_default(&t.subject),
            date: date_fr(t.last_message_at),
            unread: t.unread,
            ended: crate::threads::may_reply(&t).is_err(),
        });
    }
    let page = ListPage {
        l: Layout::patient("Messagerie", &csrf, &session, "messagerie"),
        notice: Etat::notice(&q),
        threads,
    };
    Ok(render(StatusCode::OK, &page))
}

struct AttachmentRow {
    index: usize,
    name: String,
    kind: String,
    size: String,
}

struct MessageRow {
    id: i64,
    mine: bool,
    from: String,
    date: String,
    text: String,
    html: Option<String>,
    attachments: Vec<AttachmentRow>,
}

struct ThreadHead {
    id: i64,
    name: String,
    profession: Option<String>,
    provenance: Option<String>,
    subject: String,
    ended_notice: Option<String>,
}

#[derive(Template)]
#[template(path = "fil.html")]
struct ThreadPage {
    l: Layout,
    t: ThreadHead,
    messages: Vec<MessageRow>,
    notice: Option<&'static str>,
    error: Option<String>,
    text: String,
    rules: String,
    accept: &'static str,
}

fn kind_fr(content_type: &str) -> String {
    match content_type {
        "application/pdf" => "document PDF".into(),
        "image/jpeg" | "image/png" | "image/tiff" => "image".into(),
        "text/plain" => "texte".into(),
        other => other.to_string(),
    }
}

async fn thread_page(
    s: &Shared,
    csrf: &Csrf,
    session: &Session,
    t: &Thread,
    notice: Option<&'static str>,
    error: Option<String>,
    text: String,
) -> Result<ThreadPage, PageError> {
    let p = &session.account;
    let hidden = hidden_messages(s, session).await?;
    let messages = patient::messages(s, p, t)
        .await?
        .into_iter()
        .filter(|m| !hidden.contains(&m.id))
        .map(|m| MessageRow {
            id: m.id,
            mine: m.direction == "out",
            from: m.content.from_name,
            date: date_fr(m.date),
            text: m.content.text,
            html: m.content.html,
            attachments: m
                .content
                .attachments
                .into_iter()
                .map(|a| AttachmentRow {
                    index: a.index,
                    name: a.filename,
                    kind: kind_fr(&a.content_type),
                    size: size_fr(a.size),
                })
                .collect(),
        })
        .collect();
    let (name, profession) = correspondent(s, t).await;
    Ok(ThreadPage {
        l: Layout::patient(&subject_or_default(&t.subject), csrf, session, "messagerie"),
        t: ThreadHead {
            id: t.id,
            name,
            profession,
            provenance: provenance(t),
            subject: subject_or_default(&t.subject),
            ended_notice: crate::threads::may_reply(t).err().map(|e| e.to_string()),
        },
        messages,
        notice,
        error,
        text,
        rules: attachment_rules(s.settings.max_attachment_size),
        accept: ACCEPT,
    })
}

/// GET /messagerie/{id}: the thread, marked read once shown.
pub(super) async fn thread(
    State(s): State<Shared>,
    Extension(csrf): Extension<Csrf>,
    session: Session,
    Path(id): Path<i64>,
    q: Query<Etat>,
) -> Result<Response, PageError> {
    let p = &session.account;
    let t = patient::own_thread(&s, p, id).await?;
    let page = thread_page(
        &s,
        &csrf,
        &session,
        &t,
        Etat::notice(&q),
        None,
        String::new(),
    )
    .await?;
    s.store.mark_thread_read(t.id).await?;
    Ok(render(StatusCode::OK, &page))
}

/// POST /messagerie/{id}/repondre (multipart: csrf, text, a file).
pub(super) async fn reply(
    State(s): State<Shared>,
    Extension(csrf): Extension<Csrf>,
    session: Session,
    Path(id): Path<i64>,
    req: Request,
) -> Result<Response, PageError> {
    let p = &session.account;
    let t = patient::own_thread(&s, p, id).await?;
    let c = match patient::read_multipart(req, s.settings.max_attachment_size).await {
        Ok(c) => c,
        Err(PatientError::TooLarge(m)) => {
            let page = thread_page(&s, &csrf, &session, &t, None, Some(m), String::new()).await?;
            return Ok(render(StatusCode::PAYLOAD_TOO_LARGE, &page));
        }
        Err(e) => return Err(e.into()),
    };
    if !csrf.accepts(c.csrf.as_deref()) {
        return Err(PageError::Forbidden);
    }
    match s.sender.reply(p, &t, &c.text, c.uploads).await {
        Ok(_) => Ok(Redirect::to(&format!("/messagerie/{}?etat=envoye", t.id)).into_response()),
        Err(e) => {
            let (status, message) = send_refusal(&e);
            let page = thread_page(&s, &csrf, &session, &t, None, Some(message), c.text).await?;
            Ok(render(status, &page))
        }
    }
}

/// GET /messagerie/{id}/messages/{message}/pieces-jointes/{index}
pub(super) async fn download(
    State(s): State<Shared>,
    session: Session,
    Path((id, message, index)): Path<(i64, i64, usize)>,
) -> Result<Response, PageError> {
    if hidden_messages(&s, &session).await?.contains(&message) {
        return Err(PageError::NotFound);
    }
    Ok(patient::download(&s, &session.account, id, message, index).await?)
}

/// While a legal representative acts for a child: the messages that
/// carried a document hidden from representatives (left out of the thread,
/// attachments included). Empty for the patient themself.
async fn hidden_messages(
    s: &Shared,
    session: &Session,
) -> Result<std::collections::HashSet<i64>, PageError> {
    if session.representative.is_none() {
        return Ok(Default::default());
    }
    Ok(s.store
        .message_document_codes(session.account.id)
        .await?
        .into_iter()
        .filter(|(_, codes)| crate::dossier::hidden_from_representatives(codes.as_deref()))
        .map(|(id, _)| id)
        .collect())
}

struct CorrespondentOption {
    address: String,
    label: String,
    selected: bool,
}

#[derive(Template)]
#[template(path = "nouveau.html")]
struct NewPage {
    l: Layout,
    correspondents: Vec<CorrespondentOption>,
    error: Option<String>,
    text: String,
    rules: String,
    accept: &'static str,
}

async fn new_page_for(
    s: &Shared,
    csrf: &Csrf,
    session: &Session,
    selected: Option<&str>,
    error: Option<String>,
    text: String,
) -> Result<NewPage, PageError> {
    let p = &session.account;
    let correspondents = patient::writable_correspondents(s, p)
        .await?
        .into_iter()
        .map(|t| CorrespondentOption {
            selected: selected == Some(t.correspondent.as_str()),
            label: match &t.correspondent_profession {
                Some(prof) => format!("{} — {prof}", t.correspondent_name),
                None => t.correspondent_name.clone(),
            },
            address: t.correspondent,
        })
        .collect();
    Ok(NewPage {
        l: Layout::patient("Nouveau message", csrf, session, "messagerie"),
        correspondents,
        error,
        text,
        rules: attachment_rules(s.settings.max_attachment_size),
        accept: ACCEPT,
    })
}

/// GET /messagerie/nouveau
pub(super) async fn new_page(
    State(s): State<Shared>,
    Extension(csrf): Extension<Csrf>,
    session: Session,
) -> Result<Response, PageError> {
    let page = new_page_for(&s, &csrf, &session, None, None, String::new()).await?;
    Ok(render(StatusCode::OK, &page))
}

/// POST /messagerie/nouveau (multipart: csrf, to, text, a file).
pub(super) async fn new_message(
    State(s): State<Shared>,
    Extension(csrf): Extension<Csrf>,
    session: Session,
    req: Request,
) -> Result<Response, PageError> {
    let p = &session.account;
    let c = match patient::read_multipart(req, s.settings.max_attachment_size).await {
        Ok(c) => c,
        Err(PatientError::TooLarge(m)) => {
            let page = new_page_for(&s, &csrf, &session, None, Some(m), String::new()).await?;
            return Ok(render(StatusCode::PAYLOAD_TOO_LARGE, &page));
        }
        Err(e) => return Err(e.into()),
    };
    if !csrf.accepts(c.csrf.as_deref()) {
        return Err(PageError::Forbidden);
    }
    let to = c.to.as_deref().unwrap_or_default().trim().to_string();
    match s.sender.new_message(p, &to, &c.text, c.uploads).await {
        Ok((thread, _)) => {
            Ok(Redirect::to(&format!("/messagerie/{thread}?etat=envoye")).into_response())
        }
        Err(e) => {
            let (status, message) = send_refusal(&e);
            let page = new_page_for(&s, &csrf, &session, Some(&to), Some(message), c.text).await?;
            Ok(render(status, &page))
        }
    }
}
