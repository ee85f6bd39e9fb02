//! Services pages: the catalogue (by category, search), a service's page
//! (what it asks for, in plain French, and "Connecter"), the consent screen
//! of the OAuth authorization request, and "Services connectés" (scopes
//! granted, last access, "Déconnecter" revokes every token).

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::{Extension, Form};
use serde::Deserialize;

use super::{Etat, Layout, PageError, Session, Shared, date_fr, render};
use crate::audit::{self, AuditEntry};
use crate::services::scope::{Scope, Scopes};
use crate::services::{CODE_SECS, pkce};
use crate::store::services::{Binding, ServiceRow};
use crate::web::oauth::authorize::{self, AuthorizeError, AuthorizeParams};
use crate::web::security::{CSP, Csrf};

/// A service as the pages list it.
struct ServiceCard {
    id: String,
    name: String,
    publisher: String,
    description: String,
    has_logo: bool,
}

impl ServiceCard {
    fn of(r: &ServiceRow) -> ServiceCard {
        ServiceCard {
            id: r.id.clone(),
            name: r.name.clone(),
            publisher: r.publisher.clone(),
            description: r.description.clone(),
            has_logo: r.logo_type.is_some(),
        }
    }
}

struct CategoryBlock {
    name: String,
    services: Vec<ServiceCard>,
}

#[derive(Template)]
#[template(path = "catalogue.html")]
struct CataloguePage {
    l: Layout,
    q: String,
    categories: Vec<(String, bool)>,
    blocks: Vec<CategoryBlock>,
}

#[derive(Debug, Deserialize, Default)]
pub(super) struct CatalogueQuery {
    q: Option<String>,
    categorie: Option<String>,
}

fn folded(s: &str) -> String {
    s.to_lowercase()
}

/// GET /services: referenced services by category, with a search.
pub(super) async fn catalogue(
    State(s): State<Shared>,
    Extension(csrf): Extension<Csrf>,
    session: Session,
    Query(q): Query<CatalogueQuery>,
) -> Result<Response, PageError> {
    let all: Vec<ServiceRow> = s
        .store
        .services()
        .await?
        .into_iter()
        .filter(|r| r.status == "referenced")
        .collect();
    let text = q.q.unwrap_or_default().trim().to_string();
    let category = q.categorie.unwrap_or_default();
    let mut categories: Vec<(String, bool)> = Vec::new();
    for r in &all {
        if !categories.iter().any(|(c, _)| *c == r.category) {
            categories.push((r.category.clone(), r.category == category));
        }
    }
    let needle = folded(&text);
    let mut blocks: Vec<CategoryBlock> = Vec::new();
    for r in all.iter().filter(|r| {
        (category.is_empty() || r.category == category)
            && (needle.is_empty()
                || folded(&r.name).contains(&needle)
                || folded(&r.description).contains(&needle)
                || folded(&r.publisher).contains(&needle))
    }) {
        match blocks.iter_mut().find(|b| b.name == r.category) {
            Some(b) => b.services.push(ServiceCard::of(r)),
            None => blocks.push(CategoryBlock {
                name: r.category.clone(),
                services: vec![ServiceCard::of(r)],
            }),
        }
    }
    let page = CataloguePage {
        l: Layout::patient("Catalogue de services", &csrf, &session, "services"),
        q: text,
        categories,
        blocks,
    };
    Ok(render(StatusCode::OK, &page))
}

#[derive(Template)]
#[template(path = "service.html")]
struct ServicePage {
    l: Layout,
    s: ServiceCard,
    category: String,
    home_url: String,
    referenced: String,
    scopes: Vec<&'static str>,
    connect: String,
    connected: bool,
}

/// GET /services/{id}
pub(super) async fn service(
    State(s): State<Shared>,
    Extension(csrf): Extension<Csrf>,
    session: Session,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    let r = s
        .store
        .service(&id)
        .await?
        .filter(|r| r.status == "referenced")
        .ok_or(PageError::NotFound)?;
    let connected = s.store.grant(session.account.id, &r.id).await?.is_some();
    let page = ServicePage {
        l: Layout::patient(&r.name, &csrf, &session, "services"),
        s: ServiceCard::of(&r),
        category: r.category.clone(),
        home_url: r.home_url.clone(),
        referenced: date_fr(r.referenced_at),
        scopes: Scopes::stored(&r.scopes)
            .0
            .iter()
            .map(|s| s.french())
            .collect(),
        connect: format!("/services/{}/connecter", r.id),
        connected,
    };
    Ok(render(StatusCode::OK, &page))
}

/// GET /services/{id}/logo
pub(super) async fn logo(
    State(s): State<Shared>,
    _session: Session,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    let (kind, data) = s
        .store
        .service_logo(&id)
        .await?
        .ok_or(PageError::NotFound)?;
    let kind = match kind.as_str() {
        "image/png" => "image/png",
        _ => "image/jpeg",
    };
    Ok(([(header::CONTENT_TYPE, kind)], data).into_response())
}

/// GET /services/{id}/connecter: starts the flow as if the service had sent
/// the patient: its home page, told our issuer (as OpenID's third-party
/// initiated login does), sends the patient to `/oauth/authorize` with its
/// own PKCE challenge, so the code can only be exchanged by the service.
pub(super) async fn connect(
    State(s): State<Shared>,
    headers: HeaderMap,
    _session: Session,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    let r = s
        .store
        .service(&id)
        .await?
        .filter(|r| r.status == "referenced")
        .ok_or(PageError::NotFound)?;
    let iss = crate::web::oauth::issuer(&s, &headers);
    let url = authorize::redirect_to(&r.home_url, &[("iss", &iss)]);
    Ok(Redirect::to(&url).into_response())
}

struct GrantLine {
    id: String,
    name: String,
    scopes: Vec<&'static str>,
    since: String,
    last_access: String,
}

#[derive(Template)]
#[template(path = "services-connectes.html")]
struct ConnectedPage {
    l: Layout,
    notice: Option<&'static str>,
    grants: Vec<GrantLine>,
}

/// GET /services/connectes
pub(super) async fn connected(
    State(s): State<Shared>,
    Extension(csrf): Extension<Csrf>,
    session: Session,
    q: Query<Etat>,
) -> Result<Response, PageError> {
    let mut grants = Vec::new();
    for g in s.store.grants_of(session.account.id).await? {
        let name = s
            .store
            .service(&g.service_id)
            .await?
            .map_or_else(|| g.service_id.clone(), |r| r.name);
        grants.push(GrantLine {
            id: g.service_id,
            name,
            scopes: Scopes::stored(&g.scopes)
                .0
                .iter()
                .map(|s| s.french())
                .collect(),
            since: date_fr(g.granted_at),
            last_access: g.last_access.map_or_else(|| "jamais".to_string(), date_fr),
        });
    }
    let page = ConnectedPage {
        l: Layout::patient("Services connectés", &csrf, &session, "services-connectes"),
        notice: Etat::notice(&q),
        grants,
    };
    Ok(render(StatusCode::OK, &page))
}

#[derive(Debug, Deserialize)]
pub(super) struct CsrfForm {
    csrf: Option<String>,
}

/// POST /services/{id}/deconnecter: the grant goes and every token of the
/// service for the patient is revoked.
pub(super) async fn disconnect(
    State(s): State<Shared>,
    Extension(csrf): Extension<Csrf>,
    session: Session,
    Path(id): Path<String>,
    Form(f): Form<CsrfForm>,
) -> Result<Response, PageError> {
    // Services are connected by the patient, not by a representative.
    session.own_space_only()?;
    if !csrf.accepts(f.csrf.as_deref()) {
        return Err(PageError::Forbidden);
    }
    let p = &session.account;
    if !s.store.disconnect(p.id, &id).await? {
        return Err(PageError::NotFound);
    }
    audit::append(
        &s.store,
        &AuditEntry::new(&p.address, "service.disconnect", &p.address, &id),
    )
    .await?;
    Ok(Redirect::to("/services/connectes?etat=service-deconnecte").into_response())
}

#[derive(Template)]
#[template(path = "consentement.html")]
struct ConsentPage {
    l: Layout,
    s: ServiceCard,
    scopes: Vec<&'static str>,
    new_scopes: bool,
    p: AuthorizeParams,
    scope_list: String,
}

fn refused_page(e: AuthorizeError) -> Response {
    match e {
        AuthorizeError::NoRedirect => PageError::Bad(
            "Cette demande de connexion n'est pas valable : le service ou son adresse de retour n'est pas référencé. Vous n'avez pas été redirigé."
                .into(),
        )
        .into_response(),
        AuthorizeError::Suspended => PageError::Bad(
            "Ce service est suspendu du catalogue : il ne peut pas être connecté pour le moment."
                .into(),
        )
        .into_response(),
        AuthorizeError::Store(e) => PageError::from(e).into_response(),
        AuthorizeError::Redirect(_) => PageError::NotFound.into_response(),
    }
}

/// The consent page may post to the service's origin (its redirect).
fn with_form_action(mut res: Response, redirect_uri: &str) -> Response {
    if let Some(origin) = authorize::origin(redirect_uri) {
        let csp = CSP.replace(
            "form-action 'self'",
            &format!("form-action 'self' {origin}"),
        );
        if let Ok(v) = HeaderValue::from_str(&csp) {
            res.headers_mut().insert(header::CONTENT_SECURITY_POLICY, v);
        }
    }
    res
}

/// GET /oauth/authorize: checks the request; a patient not logged in logs
/// in first and comes back; then the consent screen.
pub(super) async fn authorize_page(
    State(s): State<Shared>,
    Extension(csrf): Extension<Csrf>,
    headers: HeaderMap,
    session: Result<Session, Response>,
    uri: axum::http::Uri,
    Query(p): Query<AuthorizeParams>,
) -> Response {
    let checked = match authorize::check(&s.store, &p).await {
        Ok(c) => c,
        Err(AuthorizeError::Redirect(code)) => {
            let iss = crate::web::oauth::issuer(&s, &headers);
            return Redirect::to(&authorize::error_redirect(&p, code, &iss)).into_response();
        }
        Err(e) => return refused_page(e),
    };
    let Ok(session) = session else {
        let back = uri
            .path_and_query()
            .map_or("/oauth/authorize", |pq| pq.as_str());
        let url = authorize::redirect_to("/connexion", &[("retour", back)]);
        return Redirect::to(&url).into_response();
    };
    let granted = match s.store.grant(session.account.id, &checked.service.id).await {
        Ok(g) => g.map(|g| Scopes::stored(&g.scopes)).unwrap_or_default(),
        Err(e) => return PageError::from(e).into_response(),
    };
    let page = ConsentPage {
        l: Layout::patient("Autoriser un service", &csrf, &session, "services"),
        s: ServiceCard::of(&checked.service),
        scopes: checked.scopes.0.iter().map(|s| s.french()).collect(),
        new_scopes: !granted.is_empty() && !checked.scopes.within(&granted),
        scope_list: checked.scopes.to_list(),
        p: p.clone(),
    };
    with_form_action(render(StatusCode::OK, &page), &p.redirect_uri)
}

/// The consent form: the request again, and the patient's answer.
#[derive(Debug, Deserialize)]
pub(super) struct ConsentForm {
    csrf: Option<String>,
    decision: String,
    #[serde(flatten)]
    p: AuthorizeParams,
}

/// POST /oauth/authorize: the patient's answer. Approval records the grant
/// (audited) and sends a single-use code, valid 60 s, to the redirect URI.
pub(super) async fn authorize_answer(
    State(s): State<Shared>,
    Extension(csrf): Extension<Csrf>,
    headers: HeaderMap,
    session: Session,
    Form(f): Form<ConsentForm>,
) -> Result<Response, PageError> {
    // Services are connected by the patient, not by a representative.
    session.own_space_only()?;
    if !csrf.accepts(f.csrf.as_deref()) {
        return Err(PageError::Forbidden);
    }
    let iss = crate::web::oauth::issuer(&s, &headers);
    let p = f.p;
    let checked = match authorize::check(&s.store, &p).await {
        Ok(c) => c,
        Err(AuthorizeError::Redirect(code)) => {
            return Ok(Redirect::to(&authorize::error_redirect(&p, code, &iss)).into_response());
        }
        Err(e) => return Ok(refused_page(e)),
    };
    if f.decision != "autoriser" {
        return Ok(
            Redirect::to(&authorize::error_redirect(&p, "access_denied", &iss)).into_response(),
        );
    }
    let patient = &session.account;
    let service = &checked.service;
    // Earlier approvals stay, within what the service asks for now.
    let before = s
        .store
        .grant(patient.id, &service.id)
        .await?
        .map(|g| Scopes::stored(&g.scopes))
        .unwrap_or_default();
    let mut all: Vec<Scope> = before.0.clone();
    all.extend(checked.scopes.0.iter().copied());
    let granted =
        Scopes::stored(&Scopes(all).to_list()).intersect(&Scopes::stored(&service.scopes));
    s.store
        .set_grant(patient.id, &service.id, &granted.to_list())
        .await?;
    audit::append(
        &s.store,
        &AuditEntry::new(
            &patient.address,
            "service.connect",
            &patient.address,
            &format!("{} {}", service.id, checked.scopes.to_list()),
        ),
    )
    .await?;
    let code = pkce::random();
    let binding = Binding {
        service_id: service.id.clone(),
        patient_id: patient.id,
        scopes: checked.scopes.to_list(),
    };
    s.store
        .add_code(
            &pkce::hash(&code),
            &binding,
            &p.redirect_uri,
            &p.code_challenge,
            s.store.now() + CODE_SECS,
        )
        .await?;
    let mut params = vec![("code", code.as_str()), ("iss", iss.as_str())];
    if let Some(state) = &p.state {
        params.push(("state", state));
    }
    Ok(Redirect::to(&authorize::redirect_to(&p.redirect_uri, &params)).into_response())
}
