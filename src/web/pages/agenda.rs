//! Agenda: the patient's appointments by month (next ones first, then the
//! recent past), the answer to an invitation (accept or decline: an iTIP
//! REPLY to the organiser), and the private ICS feed served by token.

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::{Extension, Form};
use chrono::{Datelike, TimeZone};
use serde::Deserialize;

use super::{Etat, Layout, PageError, Session, Shared, render};
use crate::agenda::PartStat;
use crate::web::agenda::{self, AppointmentView};
use crate::web::patient::PatientError;
use crate::web::security::Csrf;

const MONTHS: [&str; 12] = [
    "janvier",
    "février",
    "mars",
    "avril",
    "mai",
    "juin",
    "juillet",
    "août",
    "septembre",
    "octobre",
    "novembre",
    "décembre",
];
const DAYS: [&str; 7] = [
    "lundi", "mardi", "mercredi", "jeudi", "vendredi", "samedi", "dimanche",
];

/// An appointment as the page lists it.
struct Item {
    id: i64,
    title: String,
    when: String,
    location: Option<String>,
    organizer: String,
    description: Option<String>,
    cancelled: bool,
    answer: &'static str,
    can_answer: bool,
}

/// A month of upcoming appointments.
struct Month {
    key: String,
    label: String,
    items: Vec<Item>,
}

#[derive(Template)]
#[template(path = "agenda.html")]
struct AgendaPage {
    l: Layout,
    notice: Option<&'static str>,
    error: Option<String>,
    months: Vec<Month>,
    past: Vec<Item>,
    recommendations: Vec<Reco>,
}

/// A recommendation as the page lists it.
struct Reco {
    code: String,
    label: String,
    status: &'static str,
    due: Option<String>,
    last: Option<String>,
}

/// `15/01/2027`.
fn day_fr(d: chrono::NaiveDate) -> String {
    d.format("%d/%m/%Y").to_string()
}

/// `lundi 10 mars 2025, 14:00 – 15:00` in the appointment's zone (named when
/// it is not the patient's own).
fn when(v: &AppointmentView) -> String {
    let zone = v.zone();
    let (Some(start), Some(end)) = (
        zone.timestamp_opt(v.starts_at, 0).single(),
        zone.timestamp_opt(v.ends_at, 0).single(),
    ) else {
        return String::new();
    };
    let day = format!(
        "{} {} {} {}",
        DAYS[start.weekday().num_days_from_monday() as usize],
        start.day(),
        MONTHS[start.month0() as usize],
        start.year()
    );
    if v.all_day {
        return format!("{day}, toute la journée");
    }
    let mut text = if start.date_naive() == end.date_naive() {
        format!("{day}, {} – {}", start.format("%H:%M"), end.format("%H:%M"))
    } else {
        format!("{day}, {}", start.format("%H:%M"))
    };
    if zone != crate::agenda::ical::DEFAULT_ZONE {
        text.push_str(&format!(" (heure locale {})", zone.name()));
    }
    text
}

fn item(v: &AppointmentView, now: i64) -> Item {
    // A service's booking has no organiser to answer by mail.
    let by_service = crate::access::check::service_of_actor(&v.organizer.address).is_some();
    Item {
        id: v.id,
        title: v.title.clone(),
        when: when(v),
        location: v.location.clone(),
        organizer: v
            .organizer
            .name
            .clone()
            .unwrap_or_else(|| v.organizer.address.clone()),
        description: v.description.clone(),
        cancelled: v.cancelled(),
        answer: match v.partstat.as_str() {
            _ if by_service => "Ajouté par un service connecté",
            "ACCEPTED" => "Vous avez accepté",
            "DECLINED" => "Vous avez refusé",
            _ => "En attente de votre réponse",
        },
        can_answer: !by_service && !v.cancelled() && v.ends_at >= now,
    }
}

async fn agenda_page(
    s: &Shared,
    csrf: &Csrf,
    session: &Session,
    notice: Option<&'static str>,
) -> Result<AgendaPage, PageError> {
    let p = &session.account;
    let now = s.store.now();
    let upcoming = agenda::list(s, p, now, now + 365 * 86_400).await?;
    let mut months: Vec<Month> = Vec::new();
    for v in &upcoming {
        let Some(start) = v.zone().timestamp_opt(v.starts_at, 0).single() else {
            continue;
        };
        let key = format!("{}-{:02}", start.year(), start.month());
        if months.last().is_none_or(|m| m.key != key) {
            months.push(Month {
                label: format!("{} {}", MONTHS[start.month0() as usize], start.year()),
                key,
                items: Vec::new(),
            });
        }
        if let Some(m) = months.last_mut() {
            m.items.push(item(v, now));
        }
    }
    let mut past: Vec<Item> = agenda::list(s, p, now - 180 * 86_400, now)
        .await?
        .iter()
        .filter(|v| v.ends_at < now)
        .map(|v| item(v, now))
        .collect();
    past.reverse();
    past.truncate(20);
    let today = chrono::DateTime::from_timestamp(now, 0)
        .map(|d| d.date_naive())
        .unwrap_or_default();
    let recommendations = agenda::recommendations(s, p)
        .await?
        .into_iter()
        .map(|r| Reco {
            due: r.due_date.map(|d| {
                if d < today {
                    format!("Recommandé depuis le {}", day_fr(d))
                } else {
                    format!("À faire avant le {}", day_fr(d))
                }
            }),
            last: r
                .last_done
                .map(|d| format!("Dernière fois : {}", day_fr(d))),
            status: r.status.label_fr(),
            code: r.code,
            label: r.label,
        })
        .collect();
    Ok(AgendaPage {
        l: Layout::patient("Agenda", csrf, session, "agenda"),
        notice,
        error: None,
        months,
        past,
        recommendations,
    })
}

/// GET /agenda
pub(super) async fn page(
    State(s): State<Shared>,
    Extension(csrf): Extension<Csrf>,
    session: Session,
    q: Query<Etat>,
) -> Result<Response, PageError> {
    let page = agenda_page(&s, &csrf, &session, Etat::notice(&q)).await?;
    Ok(render(StatusCode::OK, &page))
}

#[derive(Debug, Deserialize)]
pub(super) struct ReplyForm {
    csrf: Option<String>,
    partstat: String,
}

/// POST /agenda/{id}/repondre
pub(super) async fn reply(
    State(s): State<Shared>,
    Extension(csrf): Extension<Csrf>,
    session: Session,
    Path(id): Path<i64>,
    Form(f): Form<ReplyForm>,
) -> Result<Response, PageError> {
    if !csrf.accepts(f.csrf.as_deref()) {
        return Err(PageError::Forbidden);
    }
    let partstat =
        PartStat::parse(&f.partstat).ok_or_else(|| PageError::Bad("Réponse inconnue.".into()))?;
    match agenda::reply(&s, &session.account, id, partstat).await {
        Ok(_) => Ok(Redirect::to(match partstat {
            PartStat::Accepted => "/agenda?etat=rdv-accepte",
            PartStat::Declined => "/agenda?etat=rdv-refuse",
        })
        .into_response()),
        Err(PatientError::Bad(message)) => {
            let mut page = agenda_page(&s, &csrf, &session, None).await?;
            page.error = Some(message);
            Ok(render(StatusCode::CONFLICT, &page))
        }
        Err(e) => Err(e.into()),
    }
}

/// GET /agenda/{token}.ics: the private feed (no session: the address is
/// the credential; unknown or revoked: 404).
pub(in crate::web) async fn feed(
    State(s): State<Shared>,
    Path(file): Path<String>,
) -> Result<Response, PageError> {
    let Some(token) = file
        .strip_suffix(".ics")
        .filter(|t| !t.is_empty() && t.len() <= 64 && t.bytes().all(|b| b.is_ascii_alphanumeric()))
    else {
        return Err(PageError::NotFound);
    };
    match agenda::feed(&s, token).await? {
        Some(ics) => Ok((
            [(header::CONTENT_TYPE, "text/calendar; charset=utf-8")],
            ics,
        )
            .into_response()),
        None => Err(PageError::NotFound),
    }
}

#[derive(Debug, Deserialize)]
pub(super) struct MarkForm {
    csrf: Option<String>,
    status: String,
}

/// POST /agenda/recommandations/{code}: done or not done (today).
pub(super) async fn mark(
    State(s): State<Shared>,
    Extension(csrf): Extension<Csrf>,
    session: Session,
    Path(code): Path<String>,
    Form(f): Form<MarkForm>,
) -> Result<Response, PageError> {
    if !csrf.accepts(f.csrf.as_deref()) {
        return Err(PageError::Forbidden);
    }
    let done = match f.status.as_str() {
        "DONE" => true,
        "NOT_DONE" => false,
        _ => return Err(PageError::Bad("Statut inconnu.".into())),
    };
    agenda::mark_recommendation(&s, &session.account, &code, done, None).await?;
    Ok(Redirect::to("/agenda?etat=recommandation#reco-titre").into_response())
}
