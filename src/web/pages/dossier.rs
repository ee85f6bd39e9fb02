//! Dossier médical and profil médical pages: documents by category, a document
//! (a CDA shown as readable text, a PDF or image downloaded), hiding a document
//! from professionals and showing it again, the patient's own documents, and
//! the profile with each item's provenance.

use askama::Template;
use axum::extract::{Path, Query, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::{Extension, Form};
use serde::Deserialize;

use super::{Etat, Layout, PageError, Session, Shared, render, size_fr};
use crate::dossier::{self, category};
use crate::web::dossier_view as view;
use crate::web::patient;
use crate::web::security::Csrf;

struct DocumentRow {
    id: i64,
    title: String,
    date: String,
    author: String,
    hidden: bool,
    superseded: bool,
    version: i64,
}

struct CategoryBlock {
    label: &'static str,
    documents: Vec<DocumentRow>,
}

#[derive(Template)]
#[template(path = "dossier.html")]
struct DossierPage {
    l: Layout,
    notice: Option<&'static str>,
    categories: Vec<CategoryBlock>,
}

/// GET /dossier
pub(super) async fn list(
    State(s): State<Shared>,
    Extension(csrf): Extension<Csrf>,
    session: Session,
    q: Query<Etat>,
) -> Result<Response, PageError> {
    let acting = session.representative.is_some();
    let docs: Vec<_> = s
        .store
        .documents_of(session.account.id)
        .await?
        .into_iter()
        .filter(|d| !(acting && dossier::hidden_from_representatives(d.confidentiality.as_deref())))
        .collect();
    let mut categories: Vec<CategoryBlock> = Vec::new();
    for code in category::CATEGORIES {
        let documents: Vec<DocumentRow> = docs
            .iter()
            .filter(|d| d.category == *code)
            .map(|d| DocumentRow {
                id: d.id,
                title: d.title.clone(),
                date: view::document_date(d),
                author: view::document_author(d),
                hidden: d.hidden,
                superseded: d.status == "superseded",
                version: d.version,
            })
            .collect();
        if !documents.is_empty() {
            categories.push(CategoryBlock {
                label: category::label_fr(code),
                documents,
            });
        }
    }
    let page = DossierPage {
        l: Layout::patient("Mon dossier médical", &csrf, &session, "dossier"),
        notice: Etat::notice(&q),
        categories,
    };
    Ok(render(StatusCode::OK, &page))
}

/// The space's document `id`, unless a legal representative acts and the
/// document is hidden from them (then, as for any other id: not found).
async fn document_for(
    s: &Shared,
    session: &Session,
    id: i64,
) -> Result<crate::store::dossier::Document, PageError> {
    let d = patient::own_document(s, &session.account, id).await?;
    if session.representative.is_some()
        && dossier::hidden_from_representatives(d.confidentiality.as_deref())
    {
        return Err(PageError::NotFound);
    }
    Ok(d)
}

#[derive(Template)]
#[template(path = "document.html")]
struct DocumentPage {
    l: Layout,
    notice: Option<&'static str>,
    d: view::DocumentView,
    size: String,
}

/// GET /dossier/{id}
pub(super) async fn show(
    State(s): State<Shared>,
    Extension(csrf): Extension<Csrf>,
    session: Session,
    Path(id): Path<i64>,
    q: Query<Etat>,
) -> Result<Response, PageError> {
    let d = document_for(&s, &session, id).await?;
    let raw = crate::web::patient::document_bytes(&s.store, &d).await?;
    let size = size_fr(raw.len());
    let v = view::document_view(&d, &raw);
    let page = DocumentPage {
        l: Layout::patient(&d.title, &csrf, &session, "dossier"),
        notice: Etat::notice(&q),
        d: v,
        size,
    };
    Ok(render(StatusCode::OK, &page))
}

/// GET /dossier/{id}/contenu: the document itself, always as a download.
pub(super) async fn content(
    State(s): State<Shared>,
    session: Session,
    Path(id): Path<i64>,
) -> Result<Response, PageError> {
    let d = document_for(&s, &session, id).await?;
    let raw = crate::web::patient::document_bytes(&s.store, &d).await?;
    Ok(patient::file_download(&view::file_name(&d), raw))
}

#[derive(Debug, Deserialize)]
pub(super) struct CsrfForm {
    csrf: Option<String>,
}

async fn set_hidden(
    s: &Shared,
    csrf: &Csrf,
    session: &Session,
    id: i64,
    form: &CsrfForm,
    hidden: bool,
) -> Result<Response, PageError> {
    if !csrf.accepts(form.csrf.as_deref()) {
        return Err(PageError::Forbidden);
    }
    let p = &session.account;
    document_for(s, session, id).await?;
    if !s.store.set_document_hidden(p.id, id, hidden).await? {
        return Err(PageError::NotFound);
    }
    crate::audit::append(
        &s.store,
        &crate::audit::AuditEntry::new(
            &session.actor().address,
            if hidden {
                "document.hide"
            } else {
                "document.show"
            },
            &p.address,
            &format!("document {id}"),
        ),
    )
    .await?;
    let etat = if hidden { "masque" } else { "visible" };
    Ok(Redirect::to(&format!("/dossier/{id}?etat={etat}")).into_response())
}

/// POST /dossier/{id}/masquer
pub(super) async fn hide(
    State(s): State<Shared>,
    Extension(csrf): Extension<Csrf>,
    session: Session,
    Path(id): Path<i64>,
    Form(f): Form<CsrfForm>,
) -> Result<Response, PageError> {
    set_hidden(&s, &csrf, &session, id, &f, true).await
}

/// POST /dossier/{id}/afficher
pub(super) async fn unhide(
    State(s): State<Shared>,
    Extension(csrf): Extension<Csrf>,
    session: Session,
    Path(id): Path<i64>,
    Form(f): Form<CsrfForm>,
) -> Result<Response, PageError> {
    set_hidden(&s, &csrf, &session, id, &f, false).await
}

struct CategoryOption {
    code: &'static str,
    label: &'static str,
}

#[derive(Template)]
#[template(path = "ajouter-document.html")]
struct AddPage {
    l: Layout,
    error: Option<String>,
    categories: Vec<CategoryOption>,
    title: String,
}

fn add_page(csrf: &Csrf, session: &Session, error: Option<String>, title: String) -> AddPage {
    AddPage {
        l: Layout::patient("Ajouter un document", csrf, session, "dossier"),
        error,
        categories: category::PATIENT_CATEGORIES
            .iter()
            .map(|c| CategoryOption {
                code: c,
                label: category::label_fr(c),
            })
            .collect(),
        title,
    }
}

/// GET /dossier/ajouter
pub(super) async fn add_form(
    Extension(csrf): Extension<Csrf>,
    session: Session,
) -> Result<Response, PageError> {
    Ok(render(
        StatusCode::OK,
        &add_page(&csrf, &session, None, String::new()),
    ))
}

/// POST /dossier/ajouter (multipart: csrf, category, title, file)
pub(super) async fn add(
    State(s): State<Shared>,
    Extension(csrf): Extension<Csrf>,
    session: Session,
    req: Request,
) -> Result<Response, PageError> {
    let upload = match patient::read_document_upload(req, dossier::PATIENT_DOCUMENT_MAX).await {
        Ok(u) => u,
        Err(patient::PatientError::TooLarge(m)) => {
            return Ok(render(
                StatusCode::PAYLOAD_TOO_LARGE,
                &add_page(&csrf, &session, Some(m), String::new()),
            ));
        }
        Err(e) => return Err(e.into()),
    };
    if !csrf.accepts(upload.csrf.as_deref()) {
        return Err(PageError::Forbidden);
    }
    match dossier::patient_document(
        &upload.category,
        &upload.title,
        &upload.file_name,
        upload.data,
    ) {
        Ok(doc) => {
            let p = &session.account;
            s.store.add_document(p.id, doc.into()).await?;
            crate::audit::append(
                &s.store,
                &crate::audit::AuditEntry::new(
                    &session.actor().address,
                    "document.add",
                    &p.address,
                    if session.representative.is_some() {
                        "legal representative"
                    } else {
                        "patient"
                    },
                ),
            )
            .await?;
            Ok(Redirect::to("/dossier?etat=ajoute").into_response())
        }
        Err(refusal) => Ok(render(
            StatusCode::UNPROCESSABLE_ENTITY,
            &add_page(&csrf, &session, Some(refusal.to_string()), upload.title),
        )),
    }
}

struct ItemRow {
    label: String,
    value: Option<String>,
    date: Option<String>,
    source: String,
}

struct ProfileBlock {
    label: &'static str,
    items: Vec<ItemRow>,
}

struct EntryOption {
    code: &'static str,
    label: &'static str,
}

#[derive(Template)]
#[template(path = "profil.html")]
struct ProfilePage {
    l: Layout,
    notice: Option<&'static str>,
    error: Option<&'static str>,
    blocks: Vec<ProfileBlock>,
    entries: Vec<EntryOption>,
}

async fn profile_page(
    s: &Shared,
    csrf: &Csrf,
    session: &Session,
    notice: Option<&'static str>,
    error: Option<&'static str>,
) -> Result<ProfilePage, PageError> {
    let mut items = s.store.profile_of(session.account.id).await?;
    if session.representative.is_some() {
        // Nothing that came from a document hidden from representatives.
        let hidden: std::collections::HashSet<i64> = s
            .store
            .documents_of(session.account.id)
            .await?
            .into_iter()
            .filter(|d| dossier::hidden_from_representatives(d.confidentiality.as_deref()))
            .map(|d| d.id)
            .collect();
        items.retain(|i| i.document_id.is_none_or(|d| !hidden.contains(&d)));
    }
    let blocks = dossier::ProfileCategory::ALL
        .iter()
        .map(|c| ProfileBlock {
            label: c.label_fr(),
            items: items
                .iter()
                .filter(|i| i.category == c.as_str())
                .map(|i| ItemRow {
                    label: i.label.clone(),
                    value: i.value.clone(),
                    date: i.date.as_deref().map(view::hl7_date_fr),
                    source: view::provenance(i),
                })
                .collect(),
        })
        .collect();
    Ok(ProfilePage {
        l: Layout::patient("Mon profil médical", csrf, session, "profil"),
        notice,
        error,
        blocks,
        entries: dossier::ProfileCategory::ALL
            .iter()
            .map(|c| EntryOption {
                code: c.as_str(),
                label: c.label_fr(),
            })
            .collect(),
    })
}

/// GET /profil
pub(super) async fn profile(
    State(s): State<Shared>,
    Extension(csrf): Extension<Csrf>,
    session: Session,
    q: Query<Etat>,
) -> Result<Response, PageError> {
    let page = profile_page(&s, &csrf, &session, Etat::notice(&q), None).await?;
    Ok(render(StatusCode::OK, &page))
}

#[derive(Debug, Deserialize)]
pub(super) struct DeclareForm {
    csrf: Option<String>,
    category: String,
    label: String,
    #[serde(default)]
    value: String,
}

/// POST /profil: an item the patient declares.
pub(super) async fn declare(
    State(s): State<Shared>,
    Extension(csrf): Extension<Csrf>,
    session: Session,
    Form(f): Form<DeclareForm>,
) -> Result<Response, PageError> {
    if !csrf.accepts(f.csrf.as_deref()) {
        return Err(PageError::Forbidden);
    }
    match dossier::declared_item(&f.category, &f.label, &f.value) {
        Some(item) => {
            s.store
                .declare_profile_item(session.account.id, &item.into())
                .await?;
            Ok(Redirect::to("/profil?etat=declare").into_response())
        }
        None => {
            let page = profile_page(
                &s,
                &csrf,
                &session,
                None,
                Some("Choisissez une rubrique et décrivez l'information (200 caractères au plus)."),
            )
            .await?;
            Ok(render(StatusCode::UNPROCESSABLE_ENTITY, &page))
        }
    }
}
