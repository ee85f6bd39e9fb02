//! "Professionnels autorisés" (authorise, block, unblock; emergency consents)
//! and "Historique des accès" pages.

use askama::Template;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::{Extension, Form};
use serde::Deserialize;

use super::{Etat, Layout, PageError, Session, Shared, date_fr, render};
use crate::store::access::Consents;
use crate::web::history::{self, ACTOR_TYPES, HistoryLine, ProfessionalLine};
use crate::web::security::Csrf;

#[derive(Template)]
#[template(path = "professionnels.html")]
struct ProfessionalsPage {
    l: Layout,
    notice: Option<&'static str>,
    error: Option<&'static str>,
    professionals: Vec<ProfessionalLine>,
    consents: Consents,
}

async fn professionals_page(
    s: &Shared,
    csrf: &Csrf,
    session: &Session,
    notice: Option<&'static str>,
    error: Option<&'static str>,
) -> Result<ProfessionalsPage, PageError> {
    Ok(ProfessionalsPage {
        l: Layout::patient("Professionnels autorisés", csrf, session, "professionnels"),
        notice,
        error,
        professionals: history::professionals(s, &session.account).await?,
        consents: s.store.consents(session.account.id).await?,
    })
}

/// GET /professionnels
pub(super) async fn professionals(
    State(s): State<Shared>,
    Extension(csrf): Extension<Csrf>,
    session: Session,
    q: Query<Etat>,
) -> Result<Response, PageError> {
    let page = professionals_page(&s, &csrf, &session, Etat::notice(&q), None).await?;
    Ok(render(StatusCode::OK, &page))
}

#[derive(Debug, Deserialize)]
pub(super) struct ProfessionalForm {
    csrf: Option<String>,
    address: String,
    status: String,
}

/// POST /professionnels: authorise, block, or unblock (remove) a professional.
pub(super) async fn set_professional(
    State(s): State<Shared>,
    Extension(csrf): Extension<Csrf>,
    session: Session,
    Form(f): Form<ProfessionalForm>,
) -> Result<Response, PageError> {
    if !csrf.accepts(f.csrf.as_deref()) {
        return Err(PageError::Forbidden);
    }
    if history::set_professional(&s, &session.account, &f.address, &f.status).await? {
        let etat = match f.status.as_str() {
            "blocked" => "bloque",
            "removed" => "debloque",
            _ => "autorise",
        };
        return Ok(Redirect::to(&format!("/professionnels?etat={etat}")).into_response());
    }
    let page = professionals_page(
        &s,
        &csrf,
        &session,
        None,
        Some("Cette adresse de messagerie santé n'est pas valide."),
    )
    .await?;
    Ok(render(StatusCode::UNPROCESSABLE_ENTITY, &page))
}

#[derive(Debug, Deserialize)]
pub(super) struct ConsentsForm {
    csrf: Option<String>,
    regulator: String,
    break_glass: String,
    masked: String,
}

/// POST /professionnels/consentements
pub(super) async fn set_consents(
    State(s): State<Shared>,
    Extension(csrf): Extension<Csrf>,
    session: Session,
    Form(f): Form<ConsentsForm>,
) -> Result<Response, PageError> {
    if !csrf.accepts(f.csrf.as_deref()) {
        return Err(PageError::Forbidden);
    }
    let c = Consents {
        regulator: f.regulator == "allow",
        break_glass: f.break_glass == "allow",
        masked: f.masked == "allow",
    };
    history::set_consents(&s, &session.account, c).await?;
    Ok(Redirect::to("/professionnels?etat=consentements").into_response())
}

struct HistoryRow {
    date: String,
    actor_type: &'static str,
    actor: String,
    actor_details: Option<String>,
    action: String,
    reason: Option<String>,
    refused: bool,
}

struct TypeOption {
    code: &'static str,
    label: &'static str,
    selected: bool,
}

#[derive(Template)]
#[template(path = "historique.html")]
struct HistoryPage {
    l: Layout,
    rows: Vec<HistoryRow>,
    types: Vec<TypeOption>,
}

#[derive(Debug, Deserialize)]
pub(super) struct HistoryQuery {
    #[serde(rename = "type")]
    actor_type: Option<String>,
}

fn type_label(code: &str) -> &'static str {
    ACTOR_TYPES
        .iter()
        .find(|(c, _)| *c == code)
        .map_or("Système", |(_, l)| l)
}

/// GET /historique?type=…
pub(super) async fn history_page(
    State(s): State<Shared>,
    Extension(csrf): Extension<Csrf>,
    session: Session,
    Query(q): Query<HistoryQuery>,
) -> Result<Response, PageError> {
    let only = q.actor_type.as_deref().filter(|t| !t.is_empty());
    let lines: Vec<HistoryLine> = history::history(&s, &session.account, only).await?;
    let page = HistoryPage {
        l: Layout::patient("Historique des accès", &csrf, &session, "historique"),
        rows: lines
            .into_iter()
            .map(|h| HistoryRow {
                date: date_fr(h.at),
                actor_type: type_label(h.actor_type),
                actor: h.actor,
                actor_details: h.actor_details,
                action: h.action,
                reason: h.reason,
                refused: h.refused,
            })
            .collect(),
        types: ACTOR_TYPES
            .iter()
            .map(|(code, label)| TypeOption {
                code,
                label,
                selected: only == Some(*code),
            })
            .collect(),
    };
    Ok(render(StatusCode::OK, &page))
}
