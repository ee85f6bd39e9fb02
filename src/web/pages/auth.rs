//! Connexion, activation and déconnexion pages.

use askama::Template;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::{Extension, Form};
use axum_extra::extract::CookieJar;
use serde::Deserialize;

use super::{Etat, Layout, PageError, Session, Shared, render};
use crate::audit::{self, AuditEntry};
use crate::identity::activation::Activation;
use crate::identity::auth::LoginResult;
use crate::identity::password::RULES_FR;
use crate::web::ClientAddr;
use crate::web::security::{self, CSRF_COOKIE, Csrf, SESSION_COOKIE};

/// What a patient whose space is closed is told once their password is
/// verified (web and API).
pub(crate) const CLOSED_FR: &str = "Votre espace santé est fermé : il n'est plus possible de \
     s'y connecter. Pendant la durée de conservation de ses données, vous pouvez demander sa \
     réouverture au support du service.";

#[derive(Template)]
#[template(path = "connexion.html")]
struct LoginPage {
    l: Layout,
    notice: Option<&'static str>,
    error: Option<&'static str>,
    login: String,
    /// Where to go after logging in (an OAuth authorization request only).
    retour: String,
}

/// `?retour=…`: an authorization request to come back to after logging in.
#[derive(Debug, Deserialize, Default)]
pub(super) struct Retour {
    retour: Option<String>,
}

/// Only an authorization request of ours is a place to come back to (no
/// open redirect).
fn retour(r: Option<&str>) -> String {
    r.filter(|r| r.starts_with("/oauth/authorize?") && !r.contains(['\\', '\r', '\n']))
        .unwrap_or("")
        .to_string()
}

/// GET /connexion
pub(super) async fn login_page(
    Extension(csrf): Extension<Csrf>,
    q: Query<Etat>,
    Query(r): Query<Retour>,
) -> Response {
    let page = LoginPage {
        l: Layout::public("Connexion", &csrf),
        notice: Etat::notice(&q),
        error: None,
        login: String::new(),
        retour: retour(r.retour.as_deref()),
    };
    render(StatusCode::OK, &page)
}

#[derive(Debug, Deserialize)]
pub(super) struct LoginForm {
    csrf: Option<String>,
    login: String,
    password: String,
    retour: Option<String>,
}

/// POST /connexion: a new session and a new anti-forgery token on success.
pub(super) async fn login(
    State(s): State<Shared>,
    Extension(csrf): Extension<Csrf>,
    Extension(ClientAddr(peer)): Extension<ClientAddr>,
    Form(f): Form<LoginForm>,
) -> Result<Response, PageError> {
    if !csrf.accepts(f.csrf.as_deref()) {
        return Err(PageError::Forbidden);
    }
    let login = f.login.trim().to_string();
    let (status, error) = match s.auth.login_patient(peer.ip(), &login, f.password).await {
        LoginResult::Patient(account) => {
            let token = security::random_token();
            s.store
                .create_session(&security::token_hash(&token), account.id)
                .await?;
            let jar = CookieJar::new()
                .add(security::protected_cookie(SESSION_COOKIE, token))
                .add(security::protected_cookie(
                    CSRF_COOKIE,
                    security::random_token(),
                ));
            let back = retour(f.retour.as_deref());
            let to = if back.is_empty() {
                "/messagerie"
            } else {
                &back
            };
            return Ok((jar, Redirect::to(to)).into_response());
        }
        LoginResult::Throttled => (
            StatusCode::TOO_MANY_REQUESTS,
            "Trop de tentatives de connexion. Par sécurité, attendez quelques minutes avant de réessayer.",
        ),
        LoginResult::Unavailable => return Err(PageError::Unavailable("login".into())),
        LoginResult::Closed => (StatusCode::FORBIDDEN, CLOSED_FR),
        _ => (
            StatusCode::UNAUTHORIZED,
            "Identifiant ou mot de passe incorrect. Vérifiez votre saisie et réessayez.",
        ),
    };
    let page = LoginPage {
        l: Layout::public("Connexion", &csrf),
        notice: None,
        error: Some(error),
        login,
        retour: retour(f.retour.as_deref()),
    };
    Ok(render(status, &page))
}

#[derive(Template)]
#[template(path = "activation.html")]
struct ActivationPage {
    l: Layout,
    error: Option<String>,
    login: String,
    rules: &'static [&'static str],
}

/// GET /activation
pub(super) async fn activation_page(Extension(csrf): Extension<Csrf>) -> Response {
    let page = ActivationPage {
        l: Layout::public("Activer mon espace", &csrf),
        error: None,
        login: String::new(),
        rules: &RULES_FR,
    };
    render(StatusCode::OK, &page)
}

#[derive(Debug, Deserialize)]
pub(super) struct ActivationForm {
    csrf: Option<String>,
    login: String,
    code: String,
    password: String,
    confirm: String,
}

/// POST /activation: checks the code, sets the first password.
pub(super) async fn activate(
    State(s): State<Shared>,
    Extension(csrf): Extension<Csrf>,
    Extension(ClientAddr(peer)): Extension<ClientAddr>,
    Form(f): Form<ActivationForm>,
) -> Result<Response, PageError> {
    if !csrf.accepts(f.csrf.as_deref()) {
        return Err(PageError::Forbidden);
    }
    let login = f.login.trim().to_string();
    let (status, error) = if f.password != f.confirm {
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            "Les deux mots de passe saisis ne sont pas identiques.".to_string(),
        )
    } else {
        match s.auth.activate(peer.ip(), &login, &f.code, f.password).await {
            Activation::Done(account) => {
                audit::append(
                    &s.store,
                    &AuditEntry::new(&account.address, "account.activated", &account.address, ""),
                )
                .await?;
                return Ok(Redirect::to("/connexion?etat=active").into_response());
            }
            Activation::Weak(rule) => (StatusCode::UNPROCESSABLE_ENTITY, rule.to_string()),
            Activation::Throttled => (
                StatusCode::TOO_MANY_REQUESTS,
                "Trop de tentatives. Par sécurité, attendez quelques minutes avant de réessayer.".into(),
            ),
            Activation::Invalid => (
                StatusCode::UNAUTHORIZED,
                "Identifiant ou code d'activation incorrect, ou code expiré. Vérifiez le courrier qui vous a été remis ; si le code a expiré, demandez-en un nouveau.".into(),
            ),
            Activation::Unavailable => return Err(PageError::Unavailable("activation".into())),
        }
    };
    let page = ActivationPage {
        l: Layout::public("Activer mon espace", &csrf),
        error: Some(error),
        login,
        rules: &RULES_FR,
    };
    Ok(render(status, &page))
}

#[derive(Debug, Deserialize)]
pub(super) struct CsrfForm {
    csrf: Option<String>,
}

/// POST /deconnexion: ends the session.
pub(super) async fn logout(
    State(s): State<Shared>,
    Extension(csrf): Extension<Csrf>,
    session: Session,
    jar: CookieJar,
    Form(f): Form<CsrfForm>,
) -> Result<Response, PageError> {
    if !csrf.accepts(f.csrf.as_deref()) {
        return Err(PageError::Forbidden);
    }
    s.store.delete_session(&session.token_hash).await?;
    let gone = security::protected_cookie(SESSION_COOKIE, String::new());
    Ok((jar.remove(gone), Redirect::to("/connexion?etat=deconnecte")).into_response())
}
