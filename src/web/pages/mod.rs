//! The patient webmail: server-rendered French pages (askama templates under
//! `templates/`, the stylesheet under `static/`), no script. Each page module
//! holds its handlers; this file holds what they share: the layout, the logged-in
//! session, page errors and the French formatting of dates and sizes.

mod acces;
mod agenda;
mod auth;
pub(crate) use auth::CLOSED_FR;
mod dossier;
mod messagerie;
mod opposition;
mod parametres;
mod services;

use std::sync::Arc;

use askama::Template;
use axum::extract::{DefaultBodyLimit, FromRequestParts, Query};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum_extra::extract::CookieJar;
use serde::Deserialize;

use super::WebServices;
use super::patient::PatientError;
use super::security::{self, Csrf, SESSION_COOKIE};
use crate::identity::AccountKind;
use crate::store::accounts::Account;
use crate::web::send::SendError;

type Shared = Arc<WebServices>;

/// The stylesheet, compiled in so the binary is the whole application.
const STYLESHEET: &str = include_str!("../../../static/mes.css");

/// The private ICS feed: outside the pages' session and anti-forgery layers.
pub(super) fn feed_routes() -> axum::Router<Shared> {
    axum::Router::new().route("/agenda/{file}", get(agenda::feed))
}

/// The webmail routes.
pub(super) fn routes() -> axum::Router<Shared> {
    axum::Router::new()
        .route("/", get(|| async { Redirect::to("/messagerie") }))
        .route("/connexion", get(auth::login_page).post(auth::login))
        .route(
            "/activation",
            get(auth::activation_page).post(auth::activate),
        )
        .route(
            "/opposition",
            get(opposition::page).post(opposition::oppose),
        )
        .route("/deconnexion", post(auth::logout))
        .route("/messagerie", get(messagerie::list))
        .route(
            "/messagerie/nouveau",
            get(messagerie::new_page)
                .post(messagerie::new_message)
                .layer(DefaultBodyLimit::max(super::UPLOAD_LIMIT)),
        )
        .route("/messagerie/{id}", get(messagerie::thread))
        .route(
            "/messagerie/{id}/repondre",
            post(messagerie::reply).layer(DefaultBodyLimit::max(super::UPLOAD_LIMIT)),
        )
        .route(
            "/messagerie/{id}/messages/{message}/pieces-jointes/{index}",
            get(messagerie::download),
        )
        .route("/dossier", get(dossier::list))
        .route(
            "/dossier/ajouter",
            get(dossier::add_form).post(dossier::add),
        )
        .route("/dossier/{id}", get(dossier::show))
        .route("/dossier/{id}/contenu", get(dossier::content))
        .route("/dossier/{id}/masquer", post(dossier::hide))
        .route("/dossier/{id}/afficher", post(dossier::unhide))
        .route("/profil", get(dossier::profile).post(dossier::declare))
        .route(
            "/professionnels",
            get(acces::professionals).post(acces::set_professional),
        )
        .route("/professionnels/consentements", post(acces::set_consents))
        .route("/historique", get(acces::history_page))
        .route("/agenda", get(agenda::page))
        .route("/agenda/{id}/repondre", post(agenda::reply))
        .route("/agenda/recommandations/{code}", post(agenda::mark))
        .route("/parametres", get(parametres::page))
        .route("/parametres/export", get(parametres::export))
        .route("/parametres/agenda/lien", post(parametres::new_feed))
        .route("/parametres/agenda/revoquer", post(parametres::revoke_feed))
        .route("/parametres/notifications", post(parametres::notifications))
        .route("/parametres/mot-de-passe", post(parametres::password))
        .route("/parametres/fermer", post(parametres::close))
        .route("/espace", post(switch_space))
        .route("/services", get(services::catalogue))
        .route("/services/connectes", get(services::connected))
        .route("/services/{id}", get(services::service))
        .route("/services/{id}/logo", get(services::logo))
        .route("/services/{id}/connecter", get(services::connect))
        .route("/services/{id}/deconnecter", post(services::disconnect))
        .route(
            "/oauth/authorize",
            get(services::authorize_page).post(services::authorize_answer),
        )
        .route("/static/mes.css", get(stylesheet))
        .layer(DefaultBodyLimit::max(super::FORM_LIMIT))
        .layer(axum::middleware::from_fn(security::csrf_cookie))
}

#[derive(Debug, Deserialize)]
struct SpaceForm {
    csrf: Option<String>,
    espace: String,
}

/// POST /espace: the space switcher (`moi` or a represented child's
/// account id); the choice is checked again at every request.
async fn switch_space(
    axum::Extension(csrf): axum::Extension<Csrf>,
    session: Session,
    jar: CookieJar,
    axum::Form(f): axum::Form<SpaceForm>,
) -> Result<Response, PageError> {
    if !csrf.accepts(f.csrf.as_deref()) {
        return Err(PageError::Forbidden);
    }
    let chosen = f
        .espace
        .parse::<i64>()
        .ok()
        .filter(|id| session.represented.iter().any(|r| r.account_id == *id));
    let jar = match chosen {
        Some(id) => jar.add(security::protected_cookie(SPACE_COOKIE, id.to_string())),
        None if f.espace == "moi" => {
            jar.remove(security::protected_cookie(SPACE_COOKIE, String::new()))
        }
        None => return Err(PageError::NotFound),
    };
    Ok((jar, Redirect::to("/messagerie")).into_response())
}

async fn stylesheet() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        STYLESHEET,
    )
        .into_response()
}

/// What the layout of every page needs.
#[derive(Debug, Clone)]
pub(crate) struct Layout {
    /// Page title (also in `<title>`).
    pub(crate) title: String,
    /// Anti-forgery token for the page's forms.
    pub(crate) csrf: String,
    /// The logged-in patient's name, when logged in (shows the menu).
    pub(crate) patient: Option<String>,
    /// Which menu entry is current.
    pub(crate) nav: &'static str,
    /// The spaces the logged-in patient may show (their own, then the
    /// children they represent); empty without representation.
    pub(crate) spaces: Vec<SpaceChoice>,
    /// The represented child's name, while acting for them.
    pub(crate) acting_for: Option<String>,
}

/// One entry of the space switcher.
#[derive(Debug, Clone)]
pub(crate) struct SpaceChoice {
    /// `moi` or the child's account id.
    pub(crate) value: String,
    /// What the patient reads.
    pub(crate) label: String,
    /// The space shown now.
    pub(crate) current: bool,
}

impl Layout {
    fn public(title: &str, csrf: &Csrf) -> Layout {
        Layout {
            title: title.to_string(),
            csrf: csrf.token.clone(),
            patient: None,
            nav: "",
            spaces: Vec::new(),
            acting_for: None,
        }
    }

    fn patient(title: &str, csrf: &Csrf, session: &Session, nav: &'static str) -> Layout {
        let me = session.representative.as_ref().unwrap_or(&session.account);
        let mut spaces = Vec::new();
        if !session.represented.is_empty() {
            spaces.push(SpaceChoice {
                value: "moi".into(),
                label: "Moi".into(),
                current: session.representative.is_none(),
            });
            for c in &session.represented {
                spaces.push(SpaceChoice {
                    value: c.account_id.to_string(),
                    label: c.display_name.clone(),
                    current: session.representative.is_some() && c.account_id == session.account.id,
                });
            }
        }
        Layout {
            title: title.to_string(),
            csrf: csrf.token.clone(),
            patient: Some(me.shown_name()),
            nav,
            spaces,
            acting_for: session
                .representative
                .as_ref()
                .map(|_| session.account.shown_name()),
        }
    }
}

/// Renders a template with a status.
fn render(status: StatusCode, page: &impl Template) -> Response {
    match page.render() {
        Ok(html) => (status, Html(html)).into_response(),
        Err(e) => PageError::Unavailable(Box::new(e)).into_response(),
    }
}

#[derive(Template)]
#[template(path = "erreur.html")]
struct ErrorPage {
    l: Layout,
    heading: &'static str,
    message: String,
}

/// A page that cannot be shown; rendered as a short French page.
#[derive(Debug)]
pub(crate) enum PageError {
    /// Nothing here for this patient.
    NotFound,
    /// A form without a valid anti-forgery token.
    Forbidden,
    /// Bad request (French text).
    Bad(String),
    /// The store or the renderer failed (the source is kept for the log).
    Unavailable(crate::web::Failure),
}

impl From<PatientError> for PageError {
    fn from(e: PatientError) -> Self {
        match e {
            PatientError::NotFound => PageError::NotFound,
            PatientError::Bad(m) | PatientError::TooLarge(m) => PageError::Bad(m),
            PatientError::Send(e) => PageError::Bad(e.to_string()),
            PatientError::Unavailable(e) => PageError::Unavailable(e),
        }
    }
}

impl From<crate::store::StoreError> for PageError {
    fn from(e: crate::store::StoreError) -> Self {
        PageError::Unavailable(Box::new(e))
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let (status, heading, message) = match self {
            PageError::NotFound => (
                StatusCode::NOT_FOUND,
                "Page introuvable",
                "Cette page n'existe pas ou ne vous est pas destinée.".to_string(),
            ),
            PageError::Forbidden => (
                StatusCode::FORBIDDEN,
                "Formulaire expiré",
                "Ce formulaire n'est plus valable. Revenez à la page précédente, rechargez-la et recommencez.".to_string(),
            ),
            PageError::Bad(m) => (StatusCode::BAD_REQUEST, "Demande incorrecte", m),
            PageError::Unavailable(e) => {
                tracing::error!(error = %e, "webmail page failure");
                (
                    StatusCode::SERVICE_UNAVAILABLE,
                    "Service momentanément indisponible",
                    "Le service est momentanément indisponible. Réessayez dans quelques minutes.".to_string(),
                )
            }
        };
        let page = ErrorPage {
            l: Layout {
                title: heading.to_string(),
                csrf: String::new(),
                patient: None,
                nav: "",
                spaces: Vec::new(),
                acting_for: None,
            },
            heading,
            message,
        };
        match page.render() {
            Ok(html) => (status, Html(html)).into_response(),
            Err(_) => (status, heading).into_response(),
        }
    }
}

/// The logged-in patient of a page request (session cookie). Without a live
/// session the visitor is sent to the login page, told when it has expired.
#[derive(Debug, Clone)]
pub(crate) struct Session {
    /// The patient whose space is shown: the logged-in patient, or the
    /// child they represent when they chose the child's space.
    pub(crate) account: Account,
    /// SHA-256 of the session token.
    pub(crate) token_hash: String,
    /// While acting for a child: the logged-in legal representative (the
    /// actor of every audit row).
    pub(crate) representative: Option<Account>,
    /// The children the logged-in patient represents.
    pub(crate) represented: Vec<crate::store::representatives::Represented>,
}

impl Session {
    /// Who acts: the representative while acting for a child, else the patient.
    pub(crate) fn actor(&self) -> &Account {
        self.representative.as_ref().unwrap_or(&self.account)
    }

    /// Refuses what only the space's own patient may do (settings,
    /// closing the space, password) while a representative acts for a child.
    pub(crate) fn own_space_only(&self) -> Result<(), PageError> {
        match self.representative {
            None => Ok(()),
            Some(_) => Err(PageError::Bad(
                "Les paramètres de l'espace d'un enfant ne sont modifiables que par lui. \
                 Revenez à votre propre espace pour modifier les vôtres."
                    .into(),
            )),
        }
    }
}

/// The cookie naming the child's space a representative chose (an account
/// id, checked against the representations at every request).
pub(crate) const SPACE_COOKIE: &str = "__Host-mes_espace";

impl FromRequestParts<Shared> for Session {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, s: &Shared) -> Result<Self, Self::Rejection> {
        let jar = CookieJar::from_headers(&parts.headers);
        let Some(token) = jar.get(SESSION_COOKIE) else {
            return Err(Redirect::to("/connexion").into_response());
        };
        let token_hash = security::token_hash(token.value());
        let expired = || {
            let gone = security::protected_cookie(SESSION_COOKIE, String::new());
            (
                jar.clone().remove(gone),
                Redirect::to("/connexion?etat=expiree"),
            )
                .into_response()
        };
        let account_id = s
            .store
            .session_account(
                &token_hash,
                s.settings.session_idle_secs as i64,
                s.settings.session_max_secs as i64,
            )
            .await
            .map_err(|e| PageError::from(e).into_response())?
            .ok_or_else(expired)?;
        let account = s
            .store
            .account_by_id(account_id)
            .await
            .map_err(|e| PageError::from(e).into_response())?
            .filter(|a| a.kind == AccountKind::Patient && !a.disabled)
            .ok_or_else(expired)?;
        let unavailable = |e: crate::store::StoreError| PageError::from(e).into_response();
        let represented = match account.ins.as_deref() {
            Some(ins) => s.store.represented_by(ins).await.map_err(unavailable)?,
            None => Vec::new(),
        };
        let chosen = jar
            .get(SPACE_COOKIE)
            .and_then(|c| c.value().parse::<i64>().ok())
            .filter(|id| represented.iter().any(|r| r.account_id == *id));
        let child = match chosen {
            Some(id) => s
                .store
                .account_by_id(id)
                .await
                .map_err(unavailable)?
                .filter(|a| a.kind == AccountKind::Patient && !a.disabled),
            None => None,
        };
        let Some(child) = child else {
            return Ok(Session {
                account,
                token_hash,
                representative: None,
                represented,
            });
        };
        // Every request while acting for the child is on the trail, as the
        // representative, on the child's behalf (no query string: ids only).
        let entry = crate::audit::AuditEntry::new(
            &account.address,
            "representative.act",
            &child.address,
            &format!("{} {}", parts.method, parts.uri.path()),
        );
        crate::audit::append(&s.store, &entry)
            .await
            .map_err(unavailable)?;
        Ok(Session {
            account: child,
            token_hash,
            representative: Some(account),
            represented,
        })
    }
}

/// `?etat=…` after a redirect: which fixed notice to show (never reflected text).
#[derive(Debug, Deserialize, Default)]
pub(crate) struct Etat {
    etat: Option<String>,
}

impl Etat {
    fn notice(q: &Query<Etat>) -> Option<&'static str> {
        Some(match q.etat.as_deref()? {
            "expiree" => {
                "Votre session a expiré (inactivité ou durée maximale atteinte). Reconnectez-vous."
            }
            "deconnecte" => "Vous êtes déconnecté. À bientôt.",
            "active" => "Votre espace est activé. Connectez-vous avec votre nouveau mot de passe.",
            "envoye" => "Votre message a été envoyé.",
            "notifications" => "Vos préférences de notification sont enregistrées.",
            "mot-de-passe" => "Votre mot de passe a été changé.",
            "masque" => "Le document est maintenant masqué aux professionnels de santé.",
            "visible" => "Le document est de nouveau visible par les professionnels de santé.",
            "ajoute" => "Votre document a été ajouté à votre dossier.",
            "declare" => "L'information a été ajoutée à votre profil.",
            "autorise" => "Le professionnel est autorisé à consulter votre dossier.",
            "bloque" => "Le professionnel est bloqué : il ne peut plus consulter votre dossier.",
            "debloque" => {
                "Le professionnel est débloqué. Il devra être autorisé de nouveau pour consulter votre dossier."
            }
            "consentements" => "Vos choix pour les situations d'urgence sont enregistrés.",
            "recommandation" => "C'est noté. Votre calendrier de prévention est à jour.",
            "rdv-accepte" => "Vous avez accepté le rendez-vous. L'organisateur en est informé.",
            "rdv-refuse" => "Vous avez refusé le rendez-vous. L'organisateur en est informé.",
            "ferme" => {
                "Votre espace santé est fermé. Son contenu est conservé pendant la durée légale, \
                 puis supprimé ; d'ici là, vous pouvez demander sa réouverture au support du service."
            }
            "detruit" => "Votre espace santé est fermé et son contenu a été supprimé.",
            "service-deconnecte" => "Le service est déconnecté : il n'a plus accès à vos données.",
            "flux-revoque" => {
                "L'adresse d'abonnement à votre agenda est révoquée : elle ne fonctionne plus."
            }
            _ => return None,
        })
    }
}

/// The French text of a sending refusal.
fn send_refusal(e: &SendError) -> (StatusCode, String) {
    match e {
        SendError::Refused(r) => (StatusCode::FORBIDDEN, r.to_string()),
        SendError::Attachment(a) => (StatusCode::UNPROCESSABLE_ENTITY, a.to_string()),
        SendError::Empty => (StatusCode::BAD_REQUEST, SendError::Empty.to_string()),
        SendError::Quota(..) => (StatusCode::INSUFFICIENT_STORAGE, e.to_string()),
        SendError::Unavailable(_) => (
            StatusCode::SERVICE_UNAVAILABLE,
            "Le service est momentanément indisponible. Réessayez dans quelques minutes.".into(),
        ),
    }
}

/// A date as patients read it: `26/11/2026 à 14:05` (server's local time).
pub(crate) fn date_fr(unix: i64) -> String {
    use chrono::{Local, TimeZone};
    match Local.timestamp_opt(unix, 0).single() {
        Some(d) => d.format("%d/%m/%Y à %H:%M").to_string(),
        None => String::new(),
    }
}

/// A size as patients read it: `820 octets`, `12 Ko`, `1,4 Mo`.
pub(crate) fn size_fr(octets: usize) -> String {
    if octets < 1024 {
        format!("{octets} octets")
    } else if octets < 1024 * 1024 {
        format!("{} Ko", octets.div_ceil(1024))
    } else {
        let tenths = (octets * 10).div_ceil(1024 * 1024);
        format!("{},{} Mo", tenths / 10, tenths % 10)
    }
}

/// What the attachment fields say before anything is uploaded.
fn attachment_rules(max: usize) -> String {
    format!(
        "Formats acceptés : PDF, JPEG, PNG, TIFF, TXT, RTF. Taille maximale : {} Mo par fichier.",
        max / (1024 * 1024)
    )
}

/// The `accept` attribute of file fields (the server checks again, by content).
const ACCEPT: &str = ".pdf,.jpg,.jpeg,.png,.tif,.tiff,.txt,.rtf,application/pdf,image/jpeg,image/png,image/tiff,text/plain,application/rtf";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_naturally() {
        assert_eq!(size_fr(820), "820 octets");
        assert_eq!(size_fr(12 * 1024), "12 Ko");
        assert_eq!(size_fr(1024 * 1024 + 400 * 1024), "1,4 Mo");
    }
}
