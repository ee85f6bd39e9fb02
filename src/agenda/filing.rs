//! What a delivered message files in its patient recipients' agendas: every
//! calendar part (text/calendar or application/ics, inline or attached, any
//! transfer encoding: mail-parser decodes it) read by [`super::ical`], as
//! store rows. A part that cannot be read never refuses the message: it is
//! delivered and the outcome recorded, like an unindexed document.

use mail_parser::{Message, MimeHeaders, PartType};

use super::ical::{self, Method};
use super::{Limits, supersedes};
use crate::store::agenda::{AgendaFiling, NewAppointment};
use crate::store::dossier::IndexingOutcome;

/// A patient recipient of the message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Patient {
    /// Account id.
    pub account_id: i64,
    /// Address (the outcome's recipient).
    pub address: String,
}

/// The proven author, who organises for the patient.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Organiser {
    /// Address.
    pub address: String,
    /// Name as shown.
    pub name: Option<String>,
}

/// Whether a part is a calendar.
fn is_calendar(part: &mail_parser::MessagePart<'_>) -> bool {
    if matches!(part.body, PartType::Multipart(_) | PartType::Message(_)) {
        return false;
    }
    let by_type = part.content_type().is_some_and(|ct| {
        let sub = ct.subtype().unwrap_or_default();
        (ct.ctype().eq_ignore_ascii_case("text") && sub.eq_ignore_ascii_case("calendar"))
            || (ct.ctype().eq_ignore_ascii_case("application")
                && (sub.eq_ignore_ascii_case("ics") || sub.eq_ignore_ascii_case("calendar")))
    });
    by_type
        || part
            .attachment_name()
            .is_some_and(|n| n.to_ascii_lowercase().ends_with(".ics"))
}

/// The appointments and outcomes of `message` for `patients`; None when it
/// has no calendar part (or no patient recipient).
pub fn examine(
    message: &Message<'_>,
    patients: &[Patient],
    organiser: &Organiser,
    limits: &Limits,
) -> Option<AgendaFiling> {
    if patients.is_empty() {
        return None;
    }
    let mut seen: Vec<&[u8]> = Vec::new();
    let mut found = Vec::new();
    let mut errors = Vec::new();
    for part in message.parts.iter().filter(|p| is_calendar(p)) {
        let data = part.contents();
        // Outlook sends the same calendar inline and attached.
        if seen.contains(&data) {
            continue;
        }
        seen.push(data);
        if seen.len() > limits.max_parts {
            errors.push("too many calendar parts".to_string());
            break;
        }
        match ical::parse(&String::from_utf8_lossy(data), limits) {
            Ok(inv) => found.push(inv),
            Err(e) => errors.push(e.to_string()),
        }
    }
    if found.is_empty() && errors.is_empty() {
        return None;
    }
    let mut filing = AgendaFiling {
        appointments: Vec::new(),
        outcomes: Vec::new(),
        supersedes,
    };
    for p in patients {
        for inv in &found {
            for e in &inv.events {
                filing.appointments.push((
                    p.account_id,
                    NewAppointment {
                        organizer: organiser.address.clone(),
                        organizer_name: organiser.name.clone(),
                        uid: e.uid.clone(),
                        recurrence_id: e.recurrence_id.map(|r| r.to_string()).unwrap_or_default(),
                        sequence: e.sequence,
                        dtstamp: e.dtstamp,
                        status: if e.cancelled || inv.method == Method::Cancel {
                            "CANCELLED"
                        } else if e.tentative {
                            "TENTATIVE"
                        } else {
                            "CONFIRMED"
                        }
                        .to_string(),
                        title: e.title.clone(),
                        description: e.description.clone(),
                        location: e.location.clone(),
                        starts_at: e.start,
                        ends_at: e.end,
                        tzid: e.tzid.clone(),
                        all_day: e.all_day,
                        recurring: e.recurring,
                        ics: e.ics.clone(),
                    },
                ));
            }
        }
        for error in &errors {
            // The kind of error only: no health data in the outcome.
            filing.outcomes.push(IndexingOutcome {
                recipient: p.address.clone(),
                outcome: "not_indexed".into(),
                detail: format!("calendar: {error}"),
                header_codecda: None,
                header_ins: None,
                remarks: String::new(),
            });
        }
    }
    Some(filing)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ORG: &str = "jean.dupont@hopital-a.mes.test";

    fn mail(calendar: &str) -> Vec<u8> {
        format!(
            "From: <{ORG}>\r\nTo: <p@patient.mes.test>\r\nSubject: RDV\r\nMIME-Version: 1.0\r\n\
             Content-Type: multipart/mixed; boundary=\"b\"\r\n\r\n--b\r\n\
             Content-Type: text/plain\r\n\r\nBonjour\r\n--b\r\n\
             Content-Type: text/calendar; method=REQUEST; charset=utf-8\r\n\r\n{calendar}\r\n--b--\r\n"
        )
        .into_bytes()
    }

    fn examine_mail(raw: &[u8]) -> Option<AgendaFiling> {
        let m = crate::mime::parse(raw).expect("parsed");
        examine(
            &m,
            &[Patient {
                account_id: 7,
                address: "p@patient.mes.test".into(),
            }],
            &Organiser {
                address: ORG.into(),
                name: Some("Dr Jean Dupont".into()),
            },
            &Limits::default(),
        )
    }

    #[test]
    fn a_windows_zone_is_resolved() {
        let cal = "BEGIN:VCALENDAR\r\nMETHOD:REQUEST\r\nVERSION:2.0\r\nBEGIN:VEVENT\r\nUID:a1\r\n\
                   DTSTAMP:20250101T000000Z\r\nSUMMARY:Consultation\r\n\
                   DTSTART;TZID=Romance Standard Time:20250310T090000\r\n\
                   DTEND;TZID=Romance Standard Time:20250310T093000\r\nEND:VEVENT\r\nEND:VCALENDAR";
        let f = examine_mail(&mail(cal)).expect("filing");
        let (_, a) = &f.appointments[0];
        assert_eq!(a.title, "Consultation");
        // 09:00 in Paris in March (UTC+1) is 08:00 UTC.
        assert_eq!(a.starts_at, 1_741_593_600);
        assert_eq!(a.ends_at, 1_741_593_600 + 1800);
        assert_eq!(a.tzid.as_deref(), Some("Europe/Paris"));
        assert_eq!(a.organizer, ORG);
    }

    #[test]
    fn garbage_is_an_outcome() {
        let f = examine_mail(&mail("BEGIN:VCALENDAR\r\nthis is not")).expect("filing");
        assert!(f.appointments.is_empty());
        assert_eq!(f.outcomes.len(), 1);
        assert!(f.outcomes[0].detail.starts_with("calendar: "));
    }

    #[test]
    fn no_calendar_no_filing() {
        let raw = b"From: <a@b.test>\r\nSubject: x\r\n\r\nhello\r\n";
        assert!(examine_mail(raw).is_none());
    }
}
