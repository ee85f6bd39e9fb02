//! The opposition page (`/opposition`): a beneficiary informed of the
//! creation of their space refuses it before the window ends, with their INS
//! and the personal code of their notice. Public (no session), protected
//! like the other forms (anti-forgery token) and throttled like activation
//! codes, since the code is a secret that could be guessed.

use askama::Template;
use axum::Extension;
use axum::Form;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;

use super::{Layout, PageError, Shared, render};
use crate::identity::throttle::Throttle;
use crate::lifecycle::{self, Opponent, OpposeError};
use crate::web::ClientAddr;
use crate::web::security::Csrf;

#[derive(Template)]
#[template(path = "opposition.html")]
struct OppositionPage {
    l: Layout,
    error: Option<&'static str>,
    ins: String,
    done: bool,
    /// The space was open: the opposition closed it.
    closed: bool,
}

const TITLE: &str = "Opposition à la création de l'espace santé";

/// GET /opposition
pub(super) async fn page(Extension(csrf): Extension<Csrf>) -> Response {
    let page = OppositionPage {
        l: Layout::public(TITLE, &csrf),
        error: None,
        ins: String::new(),
        done: false,
        closed: false,
    };
    render(StatusCode::OK, &page)
}

#[derive(Debug, Deserialize)]
pub(super) struct OppositionForm {
    csrf: Option<String>,
    ins: String,
    code: String,
}

/// POST /opposition: records the opposition when INS and code match and
/// the window is still running.
pub(super) async fn oppose(
    State(s): State<Shared>,
    Extension(csrf): Extension<Csrf>,
    Extension(ClientAddr(peer)): Extension<ClientAddr>,
    Form(f): Form<OppositionForm>,
) -> Result<Response, PageError> {
    if !csrf.accepts(f.csrf.as_deref()) {
        return Err(PageError::Forbidden);
    }
    let ins = f.ins.trim().to_string();
    let throttle = s.auth.throttle();
    let keys = Throttle::keys("opposition", &ins, peer.ip());
    let locked = throttle.is_locked(&keys).await?;
    let outcome = if locked {
        None
    } else {
        Some(
            lifecycle::oppose(
                &s.store,
                &ins,
                Some(&f.code),
                Opponent::Patient,
                s.archive_years,
            )
            .await,
        )
    };
    let (status, error) = match outcome {
        None => (
            StatusCode::TOO_MANY_REQUESTS,
            "Trop de tentatives. Par sécurité, attendez quelques minutes avant de réessayer.",
        ),
        Some(Ok(outcome)) => {
            throttle.success(&keys).await;
            let page = OppositionPage {
                l: Layout::public(TITLE, &csrf),
                error: None,
                ins: String::new(),
                done: true,
                closed: matches!(outcome, lifecycle::Opposed::Closed(_)),
            };
            return Ok(render(StatusCode::OK, &page));
        }
        Some(Err(OpposeError::Store(e))) => return Err(e.into()),
        Some(Err(OpposeError::Open)) => (
            StatusCode::CONFLICT,
            "La période d'opposition est terminée et votre espace santé est en cours d'ouverture. \
             Réessayez dans quelques minutes : votre opposition fermera alors l'espace.",
        ),
        Some(Err(OpposeError::Closed)) => {
            (StatusCode::CONFLICT, "Votre espace santé est déjà fermé.")
        }
        // Unknown INS, wrong INS or wrong code: one answer (no INS enumeration).
        Some(Err(OpposeError::Ins(_) | OpposeError::Unknown | OpposeError::Code)) => {
            throttle.failure(&keys).await;
            (
                StatusCode::UNPROCESSABLE_ENTITY,
                "Matricule INS ou code d'opposition incorrect. Vérifiez le courrier ou le message \
                 qui vous a été adressé.",
            )
        }
    };
    let page = OppositionPage {
        l: Layout::public(TITLE, &csrf),
        error: Some(error),
        ins,
        done: false,
        closed: false,
    };
    Ok(render(status, &page))
}
