//! Paramètres: the personal address for notices, notices on/off, password
//! change, closing the space (password entered again, explicit confirmation,
//! archived or destroyed at once: `lifecycle/close.rs`).

use askama::Template;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::{Extension, Form};
use serde::Deserialize;

use super::{Etat, Layout, PageError, Session, Shared, render};
use crate::address::Address;
use crate::audit::{self, AuditEntry};
use crate::identity::auth::LoginResult;
use crate::identity::password::{self, RULES_FR};
use crate::lifecycle::close::{self, CloseError, Closer, Disposal};
use crate::web::ClientAddr;
use crate::web::security::Csrf;

#[derive(Template)]
#[template(path = "parametres.html")]
struct SettingsPage {
    l: Layout,
    notice: Option<&'static str>,
    notice_error: Option<String>,
    password_error: Option<String>,
    email: String,
    enabled: bool,
    /// Reminders of appointments (NOTIF_APPOINTMENT).
    notif_appointment: bool,
    /// Reminders of screenings and vaccinations (NOTIF_DEPISTAGE).
    notif_depistage: bool,
    /// The periodic notice of connected services (NOTIF_SYNCHRONIZED_SERVICE).
    notif_services: bool,
    rules: &'static [&'static str],
    /// The patient has a feed address.
    feed_active: bool,
    /// The new feed address, shown once right after it is made.
    feed_url: Option<String>,
    /// Why closing the space was refused.
    close_error: Option<String>,
    /// Years a closed space is kept.
    archive_years: u32,
}

async fn settings_page(
    s: &Shared,
    csrf: &Csrf,
    session: &Session,
    notice: Option<&'static str>,
) -> Result<SettingsPage, PageError> {
    let (email, enabled, _) = s.store.patient_settings(session.account.id).await?;
    let feed_active = s.store.feed_created(session.account.id).await?.is_some();
    let (notif_appointment, notif_depistage) =
        s.store.agenda_notice_settings(session.account.id).await?;
    Ok(SettingsPage {
        l: Layout::patient("Paramètres", csrf, session, "parametres"),
        notice,
        notice_error: None,
        password_error: None,
        email: email.unwrap_or_default(),
        enabled,
        notif_appointment,
        notif_depistage,
        notif_services: s.store.services_notice_setting(session.account.id).await?,
        rules: &RULES_FR,
        feed_active,
        feed_url: None,
        close_error: None,
        archive_years: s.archive_years,
    })
}

/// GET /parametres
pub(super) async fn page(
    State(s): State<Shared>,
    Extension(csrf): Extension<Csrf>,
    session: Session,
    q: Query<Etat>,
) -> Result<Response, PageError> {
    session.own_space_only()?;
    let page = settings_page(&s, &csrf, &session, Etat::notice(&q)).await?;
    Ok(render(StatusCode::OK, &page))
}

#[derive(Debug, Deserialize)]
pub(super) struct NoticeForm {
    csrf: Option<String>,
    #[serde(default)]
    email: String,
    enabled: Option<String>,
    #[serde(rename = "NOTIF_APPOINTMENT")]
    notif_appointment: Option<String>,
    #[serde(rename = "NOTIF_DEPISTAGE")]
    notif_depistage: Option<String>,
    #[serde(rename = "NOTIF_SYNCHRONIZED_SERVICE")]
    notif_services: Option<String>,
}

/// POST /parametres/notifications
pub(super) async fn notifications(
    State(s): State<Shared>,
    Extension(csrf): Extension<Csrf>,
    session: Session,
    Form(f): Form<NoticeForm>,
) -> Result<Response, PageError> {
    session.own_space_only()?;
    if !csrf.accepts(f.csrf.as_deref()) {
        return Err(PageError::Forbidden);
    }
    let enabled = f.enabled.is_some();
    let typed = f.email.trim();
    let email = if typed.is_empty() {
        None
    } else {
        match Address::parse(typed) {
            Ok(a) => Some(a.to_string()),
            Err(_) => {
                let mut page = settings_page(&s, &csrf, &session, None).await?;
                page.email = typed.to_string();
                page.enabled = enabled;
                page.notice_error = Some(
                    "Cette adresse électronique n'est pas valide (exemple : prenom.nom@exemple.fr)."
                        .into(),
                );
                return Ok(render(StatusCode::UNPROCESSABLE_ENTITY, &page));
            }
        }
    };
    s.store
        .set_patient_settings(session.account.id, email.as_deref(), enabled)
        .await?;
    s.store
        .set_agenda_notice_settings(
            session.account.id,
            f.notif_appointment.is_some(),
            f.notif_depistage.is_some(),
        )
        .await?;
    s.store
        .set_services_notice_setting(session.account.id, f.notif_services.is_some())
        .await?;
    Ok(Redirect::to("/parametres?etat=notifications").into_response())
}

#[derive(Debug, Deserialize)]
pub(super) struct PasswordForm {
    csrf: Option<String>,
    current: String,
    password: String,
    confirm: String,
}

/// POST /parametres/mot-de-passe: the current password is asked again; other
/// sessions of the patient end.
pub(super) async fn password(
    State(s): State<Shared>,
    Extension(csrf): Extension<Csrf>,
    Extension(ClientAddr(peer)): Extension<ClientAddr>,
    session: Session,
    Form(f): Form<PasswordForm>,
) -> Result<Response, PageError> {
    session.own_space_only()?;
    if !csrf.accepts(f.csrf.as_deref()) {
        return Err(PageError::Forbidden);
    }
    let p = &session.account;
    let refuse = |status: StatusCode, message: String| {
        let (s, csrf, session) = (&s, &csrf, &session);
        async move {
            let mut page = settings_page(s, csrf, session, None).await?;
            page.password_error = Some(message);
            Ok::<_, PageError>(render(status, &page))
        }
    };
    if f.password != f.confirm {
        return refuse(
            StatusCode::UNPROCESSABLE_ENTITY,
            "Les deux nouveaux mots de passe ne sont pas identiques.".into(),
        )
        .await;
    }
    if let Err(rule) = password::check_rules(&f.password, &p.address) {
        return refuse(StatusCode::UNPROCESSABLE_ENTITY, rule.to_string()).await;
    }
    match s.auth.login_patient(peer.ip(), &p.address, f.current).await {
        LoginResult::Patient(a) if a.id == p.id => {}
        LoginResult::Throttled => {
            return refuse(
                StatusCode::TOO_MANY_REQUESTS,
                "Trop de tentatives. Par sécurité, attendez quelques minutes avant de réessayer."
                    .into(),
            )
            .await;
        }
        LoginResult::Unavailable => return Err(PageError::Unavailable("login".into())),
        _ => {
            return refuse(
                StatusCode::UNPROCESSABLE_ENTITY,
                "Votre mot de passe actuel est incorrect.".into(),
            )
            .await;
        }
    }
    let new = f.password;
    let phc = password::hash_pooled(new)
        .await
        .map_err(|e| PageError::Unavailable(Box::new(e)))?;
    s.store
        .set_password(&p.address, &phc, Some(&session.token_hash))
        .await?;
    audit::append(
        &s.store,
        &AuditEntry::new(&p.address, "account.password", &p.address, "patient"),
    )
    .await?;
    Ok(Redirect::to("/parametres?etat=mot-de-passe").into_response())
}

#[derive(Debug, Deserialize)]
pub(super) struct CsrfForm {
    csrf: Option<String>,
}

/// POST /parametres/agenda/lien: a new private feed address (the previous
/// one stops working), shown once on the page.
pub(super) async fn new_feed(
    State(s): State<Shared>,
    Extension(csrf): Extension<Csrf>,
    session: Session,
    headers: axum::http::HeaderMap,
    Form(f): Form<CsrfForm>,
) -> Result<Response, PageError> {
    session.own_space_only()?;
    if !csrf.accepts(f.csrf.as_deref()) {
        return Err(PageError::Forbidden);
    }
    let token = crate::web::agenda::new_feed(&s, &session.account).await?;
    let host = headers
        .get(axum::http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .filter(|h| {
            h.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b".-:[]".contains(&b))
        })
        .map(str::to_string)
        .unwrap_or_else(|| s.sender.hostname.clone());
    let mut page = settings_page(&s, &csrf, &session, None).await?;
    page.feed_url = Some(format!("https://{host}/agenda/{token}.ics"));
    Ok(render(StatusCode::OK, &page))
}

/// POST /parametres/agenda/revoquer
pub(super) async fn revoke_feed(
    State(s): State<Shared>,
    Extension(csrf): Extension<Csrf>,
    session: Session,
    Form(f): Form<CsrfForm>,
) -> Result<Response, PageError> {
    session.own_space_only()?;
    if !csrf.accepts(f.csrf.as_deref()) {
        return Err(PageError::Forbidden);
    }
    crate::web::agenda::revoke_feed(&s, &session.account).await?;
    Ok(Redirect::to("/parametres?etat=flux-revoque").into_response())
}

#[derive(Debug, Deserialize)]
pub(super) struct CloseForm {
    csrf: Option<String>,
    #[serde(default)]
    password: String,
    /// `archiver` (the default) or `detruire`.
    #[serde(default)]
    sort: String,
    /// The confirmation box.
    confirm: Option<String>,
}

/// POST /parametres/fermer: closes the space once the password is entered
/// again and the closure confirmed; the session ends with it.
pub(super) async fn close(
    State(s): State<Shared>,
    Extension(csrf): Extension<Csrf>,
    Extension(ClientAddr(peer)): Extension<ClientAddr>,
    session: Session,
    jar: axum_extra::extract::CookieJar,
    Form(f): Form<CloseForm>,
) -> Result<Response, PageError> {
    session.own_space_only()?;
    if !csrf.accepts(f.csrf.as_deref()) {
        return Err(PageError::Forbidden);
    }
    let p = &session.account;
    let refuse = |status: StatusCode, message: &str| {
        let (s, csrf, session) = (&s, &csrf, &session);
        let message = message.to_string();
        async move {
            let mut page = settings_page(s, csrf, session, None).await?;
            page.close_error = Some(message);
            Ok::<_, PageError>(render(status, &page))
        }
    };
    if f.confirm.is_none() {
        return refuse(
            StatusCode::UNPROCESSABLE_ENTITY,
            "Cochez la case de confirmation pour fermer votre espace.",
        )
        .await;
    }
    let disposal = match f.sort.as_str() {
        "" | "archiver" => Disposal::Archive,
        "detruire" => Disposal::Destroy,
        _ => return Err(PageError::Bad("Choix de fermeture inconnu.".into())),
    };
    match s
        .auth
        .login_patient(peer.ip(), &p.address, f.password)
        .await
    {
        LoginResult::Patient(a) if a.id == p.id => {}
        LoginResult::Throttled => {
            return refuse(
                StatusCode::TOO_MANY_REQUESTS,
                "Trop de tentatives. Par sécurité, attendez quelques minutes avant de réessayer.",
            )
            .await;
        }
        LoginResult::Unavailable => return Err(PageError::Unavailable("login".into())),
        _ => {
            return refuse(
                StatusCode::UNPROCESSABLE_ENTITY,
                "Votre mot de passe est incorrect : votre espace n'a pas été fermé.",
            )
            .await;
        }
    }
    let Some(ins) = p.ins.as_deref() else {
        return Err(PageError::NotFound);
    };
    match close::close(
        &s.store,
        ins,
        disposal,
        &Closer::Patient(p.address.clone()),
        s.archive_years,
    )
    .await
    {
        Ok(_) | Err(CloseError::AlreadyClosed) => {}
        Err(CloseError::Store(e)) => return Err(e.into()),
        Err(e) => return Err(PageError::Unavailable(Box::new(e))),
    }
    let gone =
        crate::web::security::protected_cookie(crate::web::security::SESSION_COOKIE, String::new());
    let to = match disposal {
        Disposal::Archive => "/connexion?etat=ferme",
        Disposal::Destroy => "/connexion?etat=detruit",
    };
    Ok((jar.remove(gone), Redirect::to(to)).into_response())
}

/// GET /parametres/export: the whole space as a zip, by the same path as
/// the app's (ranges, ETag, audit).
pub(super) async fn export(
    State(s): State<Shared>,
    session: Session,
    method: axum::http::Method,
    headers: axum::http::HeaderMap,
) -> Response {
    // A representative acting in a child's space does not export it: the
    // archive holds every document, those hidden from representatives too.
    if let Err(e) = session.own_space_only() {
        return e.into_response();
    }
    crate::web::export::download(&s, &session.account, &method, &headers).await
}
