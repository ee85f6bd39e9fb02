//! The patient's agenda end to end: the real iMIP invitations of
//! tests/fixtures/agenda (copied from ../shared/corpus/ical, see SOURCES.md)
//! sent over submission by a professional to a patient are indexed (title,
//! times in UTC and in their zone, organiser = the authenticated author);
//! updates by SEQUENCE, a CANCEL before its REQUEST, a recurrence with an
//! override and an EXDATE, a Windows zone name, a malformed calendar that is
//! delivered with its outcome recorded.

#[path = "common/browser.rs"]
mod browser;
mod common;

use base64::Engine;
use browser::{Browser, Viewport};
use calcard::icalendar::{
    ICalendarComponentType, ICalendarParameterName, ICalendarParameterValue,
    ICalendarParticipationStatus, ICalendarProperty, ICalendarValue,
};
use common::{Db, Instance, Server, api, api_login, open_store};
use mes::store::agenda::Appointment;

const PW: &str = "correct horse battery staple";
const JEAN: &str = "jean.dupont@hopital-a.mes.test";
const PATIENT: &str = "279035121518989@patient.mes.test";
const PATIENT_PW: &str = "jardin des plantes 7";
const INS: &str = "279035121518989";
const OTHER: &str = "184127645108946@patient.mes.test";

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(format!(
        "{}/tests/fixtures/agenda/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

/// CRLF line ends and dot-stuffing, for DATA.
fn smtp_text(text: &str) -> String {
    let mut out = String::new();
    for line in text.split('\n') {
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.starts_with('.') {
            out.push('.');
        }
        out.push_str(line);
        out.push_str("\r\n");
    }
    out
}

/// A corpus mail as Dr Dupont's to the patient: only its MIME and Subject
/// header fields are kept, From/To are ours.
fn from_jean(eml: &[u8]) -> String {
    let text = String::from_utf8_lossy(eml).replace("\r\n", "\n");
    let (head, body) = text.split_once("\n\n").unwrap();
    let mut kept = String::new();
    let mut keep = false;
    for line in head.lines() {
        if line.starts_with([' ', '\t']) {
            if keep {
                kept.push_str(line);
                kept.push('\n');
            }
            continue;
        }
        let name = line.split(':').next().unwrap_or("").to_ascii_lowercase();
        keep = name.starts_with("content-") || name == "mime-version" || name == "subject";
        if keep {
            kept.push_str(line);
            kept.push('\n');
        }
    }
    let id = common::random_hex(8);
    smtp_text(&format!(
        "From: Dr Jean Dupont <{JEAN}>\nTo: <{PATIENT}>\nMessage-ID: <agenda-{id}@hopital-a.mes.test>\n{kept}\n{body}"
    ))
}

/// A calendar as a mail from Dr Dupont: attached in base64, or inline as is.
fn calendar_mail(ics: &str, attached: bool) -> String {
    let part = if attached {
        let b64 = base64::engine::general_purpose::STANDARD.encode(ics.as_bytes());
        let body: String = b64
            .as_bytes()
            .chunks(76)
            .map(|c| format!("{}\n", String::from_utf8_lossy(c)))
            .collect();
        format!(
            "Content-Type: application/ics; name=\"invite.ics\"\nContent-Disposition: attachment; filename=\"invite.ics\"\n\
             Content-Transfer-Encoding: base64\n\n{body}"
        )
    } else {
        format!("Content-Type: text/calendar; charset=utf-8; method=REQUEST\n\n{ics}\n")
    };
    let id = common::random_hex(8);
    smtp_text(&format!(
        "From: Dr Jean Dupont <{JEAN}>\nTo: <{PATIENT}>\nSubject: Rendez-vous\nMessage-ID: <agenda-{id}@hopital-a.mes.test>\n\
         MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=\"sep\"\n\n--sep\n\
         Content-Type: text/plain; charset=utf-8\n\nVotre rendez-vous.\n--sep\n{part}--sep--\n"
    ))
}

async fn setup(db: Db) -> (Instance, Server) {
    let instance = Instance::new(db).await;
    instance.add_named_user(JEAN, "professional", "Dr Jean Dupont", PW);
    instance.add_user(PATIENT, "patient", PATIENT_PW);
    let server = instance.start();
    (instance, server)
}

async fn send(instance: &Instance, server: &Server, data: &str) -> u16 {
    common::submit(
        server.addr("submissions"),
        &instance.cert("ca.pem"),
        JEAN,
        PW,
        "",
        PATIENT,
        data,
    )
    .await
}

async fn agenda(instance: &Instance) -> Vec<Appointment> {
    let store = open_store(instance).await;
    let id = store
        .account_by_address(PATIENT)
        .await
        .unwrap()
        .expect("patient")
        .id;
    let rows = store.all_appointments_of(id).await.unwrap();
    store.close().await;
    rows
}

fn by_title<'a>(rows: &'a [Appointment], title: &str) -> &'a Appointment {
    rows.iter()
        .find(|a| a.title.contains(title))
        .unwrap_or_else(|| panic!("{title} in {rows:?}"))
}

/// Local wall-clock time of `a`'s start in its zone, `YYYY-MM-DD HH:MM`.
fn local(a: &Appointment) -> String {
    let tz: chrono_tz::Tz = a.tzid.as_deref().unwrap_or("UTC").parse().unwrap();
    chrono::DateTime::from_timestamp(a.starts_at, 0)
        .unwrap()
        .with_timezone(&tz)
        .format("%Y-%m-%d %H:%M")
        .to_string()
}

async fn corpus_invitations_are_indexed(db: Db) {
    let (instance, server) = setup(db).await;
    assert_eq!(
        send(&instance, &server, &from_jean(&fixture("test-01-1.eml"))).await,
        250
    );
    let ics047 = String::from_utf8(fixture("047.ics")).unwrap();
    assert_eq!(
        send(&instance, &server, &calendar_mail(&ics047, true)).await,
        250
    );
    let ics116 = String::from_utf8(fixture("116.ics")).unwrap();
    assert_eq!(
        send(&instance, &server, &calendar_mail(&ics116, false)).await,
        250
    );
    let rows = agenda(&instance).await;
    assert_eq!(rows.len(), 3, "{rows:?}");

    // Exchange, Windows zone "(UTC+01:00) Amsterdam, Berlin, …": 14:00 in Berlin.
    let a = by_title(&rows, "Test Event 1");
    assert_eq!(a.starts_at, 1_741_611_600, "2025-03-10T13:00:00Z");
    assert_eq!(a.ends_at, 1_741_611_600 + 3600);
    assert_eq!(a.tzid.as_deref(), Some("Europe/Berlin"));
    assert_eq!(local(a), "2025-03-10 14:00");
    assert_eq!(a.status, "CONFIRMED");
    assert_eq!(a.organizer, JEAN, "the author, not the ORGANIZER property");
    assert_eq!(a.organizer_name.as_deref(), Some("Dr Jean Dupont"));
    assert_eq!(a.partstat, "NEEDS-ACTION");

    // W. Europe Standard Time, daily every other day: 11:00 local.
    let b = by_title(&rows, "Testmeeting ➡ ignore it!");
    assert_eq!(b.starts_at, 1_606_212_000, "2020-11-24T10:00:00Z");
    assert_eq!(b.recurring, 1);
    assert_eq!(local(b), "2020-11-24 11:00");
    let occurrences =
        mes::agenda::expand::occurrences(std::slice::from_ref(b), 0, i64::MAX, &Default::default());
    // UNTIL=20201126T100000Z is the instant of the 26th's 11:00 in Berlin:
    // included (RFC 5545 §3.3.10), though calcard alone compares it with
    // the local time and drops it (`expand::relax_utc_until`).
    let starts: Vec<i64> = occurrences.iter().map(|o| o.start).collect();
    assert_eq!(
        starts,
        [1_606_212_000, 1_606_212_000 + 2 * 86_400],
        "{occurrences:?}"
    );

    // BlackBerry, all-day, no zone.
    let c = by_title(&rows, "Test meeting from BB");
    assert_eq!(c.all_day, 1);
    assert_eq!(c.sequence, 2);
    assert_eq!(local(c), "2012-08-14 00:00");
    assert_eq!(c.ends_at - c.starts_at, 86_400);
}

async fn updates_by_sequence_and_cancel(db: Db) {
    let (instance, server) = setup(db).await;
    // REQUEST then its CANCEL (SEQUENCE 1): cancelled, not deleted.
    assert_eq!(
        send(&instance, &server, &from_jean(&fixture("test-01-1.eml"))).await,
        250
    );
    assert_eq!(
        send(&instance, &server, &from_jean(&fixture("test-01-2.eml"))).await,
        250
    );
    let rows = agenda(&instance).await;
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0].status, "CANCELLED");
    assert_eq!(rows[0].sequence, 1);
    // The older REQUEST again does not bring it back.
    assert_eq!(
        send(&instance, &server, &from_jean(&fixture("test-01-1.eml"))).await,
        250
    );
    let rows = agenda(&instance).await;
    assert_eq!(rows[0].status, "CANCELLED");

    // An update with a higher SEQUENCE moves it; an older one does not.
    let event = |seq: u32, start: &str, summary: &str| {
        format!(
            "BEGIN:VCALENDAR\nVERSION:2.0\nMETHOD:REQUEST\nPRODID:-//test//EN\nBEGIN:VEVENT\nUID:seq-test-1\n\
             SEQUENCE:{seq}\nDTSTAMP:2026010{}T100000Z\nDTSTART;TZID=Europe/Paris:{start}\nDURATION:PT30M\n\
             SUMMARY:{summary}\nLOCATION:Cabinet\\, 2e étage\nDESCRIPTION:Apportez vos\\nrésultats\nEND:VEVENT\nEND:VCALENDAR",
            seq + 1
        )
    };
    for (seq, start, summary) in [
        (0, "20260310T090000", "Consultation"),
        (2, "20260312T160000", "Consultation déplacée"),
        (1, "20260311T090000", "Ancienne version"),
    ] {
        let mail = calendar_mail(&event(seq, start, summary), false);
        assert_eq!(send(&instance, &server, &mail).await, 250);
    }
    let rows = agenda(&instance).await;
    let a = rows.iter().find(|a| a.uid == "seq-test-1").unwrap();
    assert_eq!(a.title, "Consultation déplacée");
    assert_eq!(a.sequence, 2);
    assert_eq!(local(a), "2026-03-12 16:00");
    assert_eq!(a.ends_at - a.starts_at, 1800);
    assert_eq!(a.location.as_deref(), Some("Cabinet, 2e étage"));
    assert_eq!(a.description.as_deref(), Some("Apportez vos\nrésultats"));
}

async fn cancel_before_request_wins(db: Db) {
    let (instance, server) = setup(db).await;
    // Outlook's CANCEL without SEQUENCE arrives first …
    assert_eq!(
        send(&instance, &server, &from_jean(&fixture("test-11-1.eml"))).await,
        250
    );
    let rows = agenda(&instance).await;
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0].status, "CANCELLED");
    // … then its REQUEST (same UID, SEQUENCE 0): the cancellation stays.
    let cancel = String::from_utf8(fixture("test-11-1.eml")).unwrap();
    let start = cancel.find("BEGIN:VCALENDAR").unwrap();
    let end = cancel.find("END:VCALENDAR").unwrap() + "END:VCALENDAR".len();
    let request = cancel[start..end]
        .replace("METHOD:CANCEL", "METHOD:REQUEST")
        .replace("STATUS:CANCELLED", "STATUS:CONFIRMED")
        .replace("Canceled: Test 11", "Test 11");
    assert_eq!(
        send(&instance, &server, &calendar_mail(&request, false)).await,
        250
    );
    let rows = agenda(&instance).await;
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0].status, "CANCELLED");
    // Windows zone "W. Europe Standard Time": 08:00 local.
    assert_eq!(rows[0].tzid.as_deref(), Some("Europe/Berlin"));
    assert_eq!(local(&rows[0]), "2025-04-18 08:00");
}

async fn recurrence_with_override_and_exdate(db: Db) {
    let (instance, server) = setup(db).await;
    // Weekly on Mondays 09:00 Paris, 5 times; the 2nd moved to 14:00, the 3rd removed.
    let ics = "BEGIN:VCALENDAR\nVERSION:2.0\nMETHOD:REQUEST\nPRODID:-//test//EN\n\
        BEGIN:VEVENT\nUID:kine-1\nSEQUENCE:0\nDTSTAMP:20260101T100000Z\n\
        DTSTART;TZID=Europe/Paris:20260105T090000\nDTEND;TZID=Europe/Paris:20260105T093000\n\
        RRULE:FREQ=WEEKLY;COUNT=5\nEXDATE;TZID=Europe/Paris:20260119T090000\nSUMMARY:Kinésithérapie\nEND:VEVENT\n\
        BEGIN:VEVENT\nUID:kine-1\nSEQUENCE:0\nDTSTAMP:20260101T100000Z\n\
        RECURRENCE-ID;TZID=Europe/Paris:20260112T090000\n\
        DTSTART;TZID=Europe/Paris:20260112T140000\nDTEND;TZID=Europe/Paris:20260112T143000\n\
        SUMMARY:Kinésithérapie (après-midi)\nEND:VEVENT\nEND:VCALENDAR";
    assert_eq!(
        send(&instance, &server, &calendar_mail(ics, true)).await,
        250
    );
    let rows = agenda(&instance).await;
    assert_eq!(rows.len(), 1, "{rows:?}");
    let paris = |d: &str| {
        chrono::NaiveDateTime::parse_from_str(d, "%Y-%m-%d %H:%M")
            .unwrap()
            .and_local_timezone(chrono_tz::Europe::Paris)
            .unwrap()
            .timestamp()
    };
    let starts: Vec<i64> =
        mes::agenda::expand::occurrences(&rows, 0, i64::MAX, &Default::default())
            .iter()
            .map(|o| o.start)
            .collect();
    assert_eq!(
        starts,
        vec![
            paris("2026-01-05 09:00"),
            paris("2026-01-12 14:00"),
            paris("2026-01-26 09:00"),
            paris("2026-02-02 09:00"),
        ]
    );
    // A later CANCEL of one instance only: that occurrence shows cancelled.
    let cancel = "BEGIN:VCALENDAR\nVERSION:2.0\nMETHOD:CANCEL\nPRODID:-//test//EN\n\
        BEGIN:VEVENT\nUID:kine-1\nSEQUENCE:1\nDTSTAMP:20260102T100000Z\n\
        RECURRENCE-ID;TZID=Europe/Paris:20260126T090000\n\
        DTSTART;TZID=Europe/Paris:20260126T090000\nDTEND;TZID=Europe/Paris:20260126T093000\n\
        SUMMARY:Kinésithérapie\nSTATUS:CANCELLED\nEND:VEVENT\nEND:VCALENDAR";
    assert_eq!(
        send(&instance, &server, &calendar_mail(cancel, false)).await,
        250
    );
    let rows = agenda(&instance).await;
    let occ = mes::agenda::expand::occurrences(&rows, 0, i64::MAX, &Default::default());
    assert_eq!(occ.len(), 4, "{occ:?}");
    let cancelled: Vec<i64> = occ
        .iter()
        .filter(|o| o.cancelled)
        .map(|o| o.start)
        .collect();
    assert_eq!(cancelled, vec![paris("2026-01-26 09:00")]);
    // Bounded: a daily event without end expands to at most the limit.
    let endless = "BEGIN:VCALENDAR\nVERSION:2.0\nMETHOD:REQUEST\nPRODID:-//test//EN\nBEGIN:VEVENT\n\
        UID:daily-1\nDTSTAMP:20260101T100000Z\nDTSTART:20260101T080000Z\nRRULE:FREQ=DAILY\n\
        SUMMARY:Pansement\nEND:VEVENT\nEND:VCALENDAR";
    assert_eq!(
        send(&instance, &server, &calendar_mail(endless, false)).await,
        250
    );
    let rows = agenda(&instance).await;
    let limits = mes::agenda::Limits::default();
    let daily: Vec<_> = rows
        .iter()
        .filter(|r| r.uid == "daily-1")
        .cloned()
        .collect();
    let occ = mes::agenda::expand::occurrences(&daily, 0, i64::MAX, &limits);
    assert_eq!(occ.len(), limits.max_occurrences);
}

async fn malformed_calendar_is_delivered_with_outcome(db: Db) {
    let (instance, server) = setup(db).await;
    let bad = "BEGIN:VCALENDAR\nMETHOD:REQUEST\nBEGIN:VEVENT\nSUMMARY:no uid nor start\nEND:VEVENT\nEND:VCALENDAR";
    assert_eq!(
        send(&instance, &server, &calendar_mail(bad, false)).await,
        250
    );
    // A REPLY addressed to a patient is not an appointment either.
    assert_eq!(
        send(&instance, &server, &from_jean(&fixture("test-05-2.eml"))).await,
        250
    );
    assert!(agenda(&instance).await.is_empty());
    let store = open_store(&instance).await;
    let inbox = common::inbox(&store, PATIENT).await;
    assert_eq!(inbox.len(), 2, "both messages delivered");
    let outcomes: Vec<(String, String, String)> =
        sqlx::query_as("SELECT recipient, outcome, detail FROM indexing_outcomes ORDER BY id")
            .fetch_all(store.pool())
            .await
            .unwrap();
    assert_eq!(
        outcomes,
        vec![
            (
                PATIENT.to_string(),
                "not_indexed".to_string(),
                "calendar: no usable event".to_string()
            ),
            (
                PATIENT.to_string(),
                "not_indexed".to_string(),
                "calendar: method REPLY not for a patient's agenda".to_string()
            ),
        ]
    );
    store.close().await;
}

/// Validates `value` against a JSON Schema of `schemas/api/`.
fn validate(value: &serde_json::Value, schema: &str) {
    common::assert_json_schema(value, &format!("schemas/api/{schema}"));
}

/// An invitation of Dr Dupont on `day` (AAAAMMJJ) at 09:30 Paris, 30 minutes.
fn invitation(uid: &str, day: &str, title: &str) -> String {
    format!(
        "BEGIN:VCALENDAR\nVERSION:2.0\nMETHOD:REQUEST\nPRODID:-//test//EN\nBEGIN:VEVENT\nUID:{uid}\n\
         SEQUENCE:0\nDTSTAMP:20261201T100000Z\nDTSTART;TZID=Europe/Paris:{day}T093000\n\
         DTEND;TZID=Europe/Paris:{day}T100000\nSUMMARY:{title}\nLOCATION:Cabinet du Dr Dupont\n\
         ORGANIZER;CN=Dr Jean Dupont:mailto:{JEAN}\n\
         ATTENDEE;PARTSTAT=NEEDS-ACTION;RSVP=TRUE:mailto:{PATIENT}\nEND:VEVENT\nEND:VCALENDAR"
    )
}

/// The body of an IMAP `FETCH n BODY.PEEK[]` answer.
fn fetched(reply: &common::ImapReply) -> String {
    let line = &reply.untagged[0];
    let start = line.find("}\n").unwrap() + 2;
    line[start..line.len() - 1].to_string()
}

async fn api_lists_and_replies(db: Db) {
    let (instance, server) = setup(db).await;
    instance.add_user(OTHER, "patient", PATIENT_PW);
    let ca = instance.cert("ca.pem");
    let mail = calendar_mail(&invitation("api-1", "20270115", "Bilan sanguin"), false);
    assert_eq!(send(&instance, &server, &mail).await, 250);
    let token = api_login(&server, &ca, PATIENT, PATIENT_PW);
    let (status, body) = api(
        &server,
        &ca,
        "GET",
        "/api/v1/agenda?from=2027-01-01&to=2027-02-01",
        Some(&token),
        None,
    );
    assert_eq!(status, 200, "{body}");
    validate(&body, "agenda.schema.json");
    let items = body["appointments"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{body}");
    let a = &items[0];
    assert_eq!(a["title"], "Bilan sanguin");
    assert_eq!(a["start"], "2027-01-15T08:30:00Z");
    assert_eq!(a["start_local"], "2027-01-15T09:30:00+01:00");
    assert_eq!(a["timezone"], "Europe/Paris");
    assert_eq!(a["organizer"]["address"], JEAN);
    assert_eq!(a["partstat"], "NEEDS-ACTION");
    let id = a["id"].as_i64().unwrap();
    // Out of the window: nothing; a bad date: 400.
    let (_, none) = api(
        &server,
        &ca,
        "GET",
        "/api/v1/agenda?from=2027-02-01&to=2027-03-01",
        Some(&token),
        None,
    );
    assert_eq!(none["appointments"].as_array().unwrap().len(), 0);
    let (status, _) = api(
        &server,
        &ca,
        "GET",
        "/api/v1/agenda?from=demain",
        Some(&token),
        None,
    );
    assert_eq!(status, 400);

    // Another patient cannot answer it: 404, and the attempt is audited.
    let other = api_login(&server, &ca, OTHER, PATIENT_PW);
    let accept = serde_json::json!({"partstat": "ACCEPTED"}).to_string();
    let (status, _) = api(
        &server,
        &ca,
        "POST",
        &format!("/api/v1/agenda/{id}/reply"),
        Some(&other),
        Some(&accept),
    );
    assert_eq!(status, 404);
    let (status, _) = api(
        &server,
        &ca,
        "POST",
        &format!("/api/v1/agenda/{id}/reply"),
        Some(&token),
        Some("{\"partstat\": \"MAYBE\"}"),
    );
    assert_eq!(status, 422);
    validate(
        &serde_json::json!({"partstat": "ACCEPTED"}),
        "agenda-reply.schema.json",
    );

    // The patient accepts: the organiser receives an iTIP REPLY over IMAP.
    let (status, answer) = api(
        &server,
        &ca,
        "POST",
        &format!("/api/v1/agenda/{id}/reply"),
        Some(&token),
        Some(&accept),
    );
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["partstat"], "ACCEPTED");
    validate(
        &serde_json::json!({ "appointments": [answer] }),
        "agenda.schema.json",
    );
    let mut imap = common::imap_login(server.addr("imaps"), &ca, JEAN, PW).await;
    let r = imap.expect("SELECT INBOX", "OK").await;
    assert!(r.all().contains("* 1 EXISTS"), "{r:?}");
    let r = imap.expect("FETCH 1 BODY.PEEK[]", "OK").await;
    let raw = fetched(&r);
    let message = mail_parser::MessageParser::default()
        .parse(raw.as_bytes())
        .unwrap();
    assert_eq!(
        message.from().unwrap().first().unwrap().address().unwrap(),
        PATIENT
    );
    let part = message
        .parts
        .iter()
        .find(|p| {
            mail_parser::MimeHeaders::content_type(*p)
                .is_some_and(|ct| ct.subtype() == Some("calendar"))
        })
        .expect("text/calendar part");
    let ct = mail_parser::MimeHeaders::content_type(part).unwrap();
    assert_eq!(ct.attribute("method"), Some("REPLY"));
    let text = String::from_utf8_lossy(part.contents()).to_string();
    let calcard::Entry::ICalendar(ical) = calcard::Parser::new(&text).entry() else {
        panic!("not iCalendar: {text}");
    };
    let root = &ical.components[0];
    assert!(matches!(
        root.property(&ICalendarProperty::Method)
            .and_then(|e| e.values.first()),
        Some(ICalendarValue::Method(
            calcard::icalendar::ICalendarMethod::Reply
        ))
    ));
    let event = ical
        .components
        .iter()
        .find(|c| c.component_type == ICalendarComponentType::VEvent)
        .unwrap();
    assert_eq!(event.uid(), Some("api-1"));
    let attendee = event.property(&ICalendarProperty::Attendee).unwrap();
    assert_eq!(
        attendee.values.first().and_then(|v| v.as_text()),
        Some(format!("mailto:{PATIENT}").as_str())
    );
    assert_eq!(
        attendee.parameter(&ICalendarParameterName::Partstat),
        Some(&ICalendarParameterValue::Partstat(
            ICalendarParticipationStatus::Accepted
        ))
    );
    assert!(event.property(&ICalendarProperty::Dtstamp).is_some());
    assert!(event.property(&ICalendarProperty::Organizer).is_some());
    imap.expect("LOGOUT", "OK").await;

    // Once cancelled by the professional, no answer: 409; it shows cancelled.
    let cancel = invitation("api-1", "20270115", "Bilan sanguin")
        .replace("METHOD:REQUEST", "METHOD:CANCEL")
        .replace("SEQUENCE:0", "SEQUENCE:1\nSTATUS:CANCELLED");
    assert_eq!(
        send(&instance, &server, &calendar_mail(&cancel, false)).await,
        250
    );
    let (status, _) = api(
        &server,
        &ca,
        "POST",
        &format!("/api/v1/agenda/{id}/reply"),
        Some(&token),
        Some(&accept),
    );
    assert_eq!(status, 409);
    let (_, body) = api(
        &server,
        &ca,
        "GET",
        "/api/v1/agenda?from=2027-01-01&to=2027-02-01",
        Some(&token),
        None,
    );
    assert_eq!(body["appointments"][0]["status"], "CANCELLED");

    let store = open_store(&instance).await;
    let denied: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM audit_log WHERE action = 'agenda.access_denied'")
            .fetch_one(store.pool())
            .await
            .unwrap();
    assert_eq!(denied, 1);
    store.close().await;
}

/// GET over HTTPS with curl: (status, body).
fn fetch(server: &Server, ca: &std::path::Path, path: &str) -> (u16, String) {
    let url = format!("https://localhost:{}{path}", server.addr("https").port());
    let out = std::process::Command::new("curl")
        .args([
            "-sS",
            "--cacert",
            ca.to_str().unwrap(),
            "-w",
            "\n%{http_code}",
            &url,
        ])
        .output()
        .expect("curl");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').unwrap();
    (code.trim().parse().unwrap(), body.to_string())
}

async fn check_page(b: &Browser, name: &str) {
    b.screenshot(name).await;
    b.check_accessibility(name).await;
    b.check_no_horizontal_scroll(name).await;
}

/// The Agenda page in Chromium at 1280 and 360 px (axe), accepting from the
/// page, and the ICS feed: made on the settings page, parsed back with
/// calcard, 404 once revoked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agenda_page_and_feed_in_a_browser() {
    let (instance, server) = setup(Db::Sqlite).await;
    let ca = instance.cert("ca.pem");
    for (uid, day, title) in [
        ("page-1", "20270115", "Consultation de suivi"),
        ("page-2", "20270203", "Échographie abdominale"),
    ] {
        let mail = calendar_mail(&invitation(uid, day, title), true);
        assert_eq!(send(&instance, &server, &mail).await, 250);
    }
    let cancel = invitation("page-2", "20270203", "Échographie abdominale")
        .replace("METHOD:REQUEST", "METHOD:CANCEL")
        .replace("SEQUENCE:0", "SEQUENCE:1");
    assert_eq!(
        send(&instance, &server, &calendar_mail(&cancel, false)).await,
        250
    );
    let url = format!("https://localhost:{}", server.addr("https").port());
    for viewport in [Viewport::Desktop, Viewport::Phone] {
        let b = Browser::start(&ca, viewport).await;
        b.goto(&format!("{url}/connexion")).await;
        b.fill("#login", INS).await;
        b.fill("#password", PATIENT_PW).await;
        b.navigate_by("main button[type=submit]").await;
        b.navigate_by("nav a[href='/agenda']").await;
        assert_eq!(b.path().await, "/agenda");
        let text = b.main_text().await;
        assert!(text.contains("Prochains rendez-vous"), "{text}");
        assert!(
            text.contains("janvier 2027") || text.contains("Janvier 2027"),
            "{text}"
        );
        assert!(text.contains("Consultation de suivi"), "{text}");
        assert!(
            text.contains("vendredi 15 janvier 2027, 09:30 – 10:00"),
            "{text}"
        );
        assert!(text.contains("Annulé"), "{text}");
        check_page(&b, "agenda").await;
        if viewport == Viewport::Desktop {
            // Only the appointment still on offers an answer.
            assert_eq!(b.count("form[action$='/repondre']").await, 2);
            b.navigate_by("form[action$='/repondre'] button").await;
            assert_eq!(b.path().await, "/agenda?etat=rdv-accepte");
            assert!(b.main_text().await.contains("Vous avez accepté"));
            assert_eq!(
                b.count("form[action$='/repondre']").await,
                2,
                "may change their mind"
            );

            // Recommended exams: a woman born in 1979 has HPV screening to plan.
            let text = b.main_text().await;
            assert!(
                text.contains("Examens et vaccinations recommandés"),
                "{text}"
            );
            assert!(text.contains("test HPV"), "{text}");
            b.navigate_by("form[action='/agenda/recommandations/DEPISTAGE_COL_HPV'] button")
                .await;
            assert!(b.path().await.starts_with("/agenda?etat=recommandation"));
            assert!(b.main_text().await.contains("Dernière fois"));

            // The feed: made on the settings page, shown once.
            b.goto(&format!("{url}/parametres")).await;
            b.navigate_by("form[action='/parametres/agenda/lien'] button")
                .await;
            check_page(&b, "parametres-agenda").await;
            let feed = b
                .js("return document.getElementById('lien-flux').textContent;")
                .await;
            let feed = feed.as_str().unwrap().trim().to_string();
            let path = &feed[feed.find("/agenda/").unwrap()..];
            let (status, ics) = fetch(&server, &ca, path);
            assert_eq!(status, 200, "{ics}");
            let calcard::Entry::ICalendar(ical) = calcard::Parser::new(&ics).entry() else {
                panic!("feed is not iCalendar: {ics}");
            };
            let events: Vec<_> = ical
                .components
                .iter()
                .filter(|c| c.component_type == ICalendarComponentType::VEvent)
                .collect();
            assert_eq!(events.len(), 2, "{ics}");
            let summaries: Vec<&str> = events
                .iter()
                .filter_map(|e| e.property(&ICalendarProperty::Summary))
                .filter_map(|p| p.values.first().and_then(|v| v.as_text()))
                .collect();
            assert!(
                summaries.contains(&"Consultation de suivi"),
                "{summaries:?}"
            );
            assert!(!ics.contains("ATTENDEE"), "no other attendee in the feed");
            assert!(ics.contains("STATUS:CANCELLED"), "{ics}");
            // Revoked: the address answers 404.
            b.navigate_by("form[action='/parametres/agenda/revoquer'] button")
                .await;
            assert_eq!(b.path().await, "/parametres?etat=flux-revoque");
            assert_eq!(fetch(&server, &ca, path).0, 404);
            assert_eq!(fetch(&server, &ca, "/agenda/inconnu.ics").0, 404);
        }
        b.close().await;
    }
}

/// A matricule INS (NIR + key) for `nir` (13 digits).
fn ins(nir: &str) -> String {
    let n: u64 = nir.parse().unwrap();
    format!("{nir}{:02}", 97 - n % 97)
}

/// Born `years` ago this month (the INS gives year and month), as YYMM.
fn born(years: i32) -> String {
    use chrono::Datelike;
    let today = chrono::Utc::now().date_naive();
    // The month before this one: `years` birthdays are behind for sure.
    let (y, m) = if today.month() == 1 {
        (today.year() - years - 1, 12)
    } else {
        (today.year() - years, today.month() - 1)
    };
    format!("{:02}{:02}", y % 100, m)
}

fn statuses(body: &serde_json::Value) -> Vec<(String, String)> {
    body["recommendations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["code"].as_str().unwrap().to_string(),
                r["status"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

async fn recommendations_for_a_woman_of_52_and_a_man_of_66(db: Db) {
    let instance = Instance::new(db).await;
    let woman = format!(
        "{}@patient.mes.test",
        ins(&format!("2{}75123456", born(52)))
    );
    let man = format!(
        "{}@patient.mes.test",
        ins(&format!("1{}75123457", born(66)))
    );
    instance.add_user(&woman, "patient", PATIENT_PW);
    instance.add_user(&man, "patient", PATIENT_PW);
    let server = instance.start();
    let ca = instance.cert("ca.pem");
    let s = |v: &[(&str, &str)]| -> Vec<(String, String)> {
        v.iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    };

    // The woman of 52, nothing in her profile.
    let w = api_login(&server, &ca, &woman, PATIENT_PW);
    let (status, body) = api(
        &server,
        &ca,
        "GET",
        "/api/v1/recommendations",
        Some(&w),
        None,
    );
    assert_eq!(status, 200, "{body}");
    validate(&body, "recommendations.schema.json");
    assert_eq!(
        statuses(&body),
        s(&[
            ("DEPISTAGE_CANCER_SEIN", "TO_PLAN"),
            ("DEPISTAGE_CANCER_COLORECTAL", "TO_PLAN"),
            ("DEPISTAGE_COL_HPV", "TO_PLAN"),
            ("VACCIN_DTCAPOLIO", "TO_PLAN"),
        ])
    );
    // Her booster in the profile: dTcaPolio done, next at 65.
    let declare =
        serde_json::json!({"category": "vaccinations", "label": "Rappel dTcaPolio (Repevax)"})
            .to_string();
    let (status, _) = api(
        &server,
        &ca,
        "POST",
        "/api/v1/profile",
        Some(&w),
        Some(&declare),
    );
    assert_eq!(status, 201);
    let (_, one) = api(
        &server,
        &ca,
        "GET",
        "/api/v1/recommendations/VACCIN_DTCAPOLIO",
        Some(&w),
        None,
    );
    assert_eq!(one["status"], "DONE", "{one}");
    assert_eq!(one["source"], "profil");
    let due = one["due_date"].as_str().unwrap();
    assert_eq!(
        &due[..4],
        (chrono::Utc::now()
            .date_naive()
            .format("%Y")
            .to_string()
            .parse::<i32>()
            .unwrap()
            - 52
            + 65)
            .to_string()
    );
    // She marks her mammography done two months ago, the colorectal test not done.
    let two_months_ago = (chrono::Utc::now().date_naive() - chrono::Duration::days(60))
        .format("%Y-%m-%d")
        .to_string();
    let mark = serde_json::json!({"status": "DONE", "date": two_months_ago});
    validate(&mark, "recommendation-mark.schema.json");
    let (status, one) = api(
        &server,
        &ca,
        "PUT",
        "/api/v1/recommendations/DEPISTAGE_CANCER_SEIN",
        Some(&w),
        Some(&mark.to_string()),
    );
    assert_eq!(status, 200, "{one}");
    assert_eq!(one["status"], "DONE");
    assert_eq!(one["last_done"], two_months_ago.as_str());
    let (status, one) = api(
        &server,
        &ca,
        "PUT",
        "/api/v1/recommendations/DEPISTAGE_CANCER_COLORECTAL",
        Some(&w),
        Some("{\"status\": \"NOT_DONE\"}"),
    );
    assert_eq!(status, 200, "{one}");
    assert_eq!(one["status"], "NOT_DONE");
    // What does not concern her: 404.
    let (status, _) = api(
        &server,
        &ca,
        "GET",
        "/api/v1/recommendations/VACCIN_GRIPPE",
        Some(&w),
        None,
    );
    assert_eq!(status, 404);
    let (status, _) = api(
        &server,
        &ca,
        "PUT",
        "/api/v1/recommendations/INCONNU",
        Some(&w),
        Some("{\"status\": \"DONE\"}"),
    );
    assert_eq!(status, 404);
    let (_, body) = api(
        &server,
        &ca,
        "GET",
        "/api/v1/recommendations",
        Some(&w),
        None,
    );
    validate(&body, "recommendations.schema.json");

    // The man of 66: colorectal, dTcaPolio at 65, influenza every year.
    let m = api_login(&server, &ca, &man, PATIENT_PW);
    let (_, body) = api(
        &server,
        &ca,
        "GET",
        "/api/v1/recommendations",
        Some(&m),
        None,
    );
    assert_eq!(
        statuses(&body),
        s(&[
            ("DEPISTAGE_CANCER_COLORECTAL", "TO_PLAN"),
            ("VACCIN_DTCAPOLIO", "TO_PLAN"),
            ("VACCIN_GRIPPE", "TO_PLAN"),
        ])
    );
    let declare =
        serde_json::json!({"category": "vaccinations", "label": "Vaccin grippal saisonnier"})
            .to_string();
    let (status, _) = api(
        &server,
        &ca,
        "POST",
        "/api/v1/profile",
        Some(&m),
        Some(&declare),
    );
    assert_eq!(status, 201);
    let (_, body) = api(
        &server,
        &ca,
        "GET",
        "/api/v1/recommendations",
        Some(&m),
        None,
    );
    validate(&body, "recommendations.schema.json");
    assert_eq!(
        statuses(&body),
        s(&[
            ("DEPISTAGE_CANCER_COLORECTAL", "TO_PLAN"),
            ("VACCIN_DTCAPOLIO", "TO_PLAN"),
            ("VACCIN_GRIPPE", "DONE"),
        ])
    );
    let flu = &body["recommendations"][2];
    let next_year = (chrono::Utc::now().date_naive() + chrono::Duration::days(366))
        .format("%Y")
        .to_string();
    assert!(
        flu["due_date"]
            .as_str()
            .unwrap()
            .starts_with(&next_year[..3]),
        "{flu}"
    );
}

/// The reminders the sink received, by subject.
fn reminders(got: &std::sync::Mutex<Vec<String>>, subject: &str) -> Vec<String> {
    got.lock()
        .unwrap()
        .iter()
        .filter(|m| {
            mail_parser::MessageParser::default()
                .parse(m.as_bytes())
                .and_then(|p| p.subject().map(|s| s == subject))
                .unwrap_or(false)
        })
        .cloned()
        .collect()
}

async fn reminders_are_sent_once_across_a_restart(db: Db) {
    use std::time::{Duration, Instant};
    let (port, got) = common::smtp_sink().await;
    let instance = Instance::new(db).await;
    instance.edit_config(|t| {
        t.replacen(
            "[notify]\n",
            &format!("[notify]\nsmarthost = \"127.0.0.1:{port}\"\nstarttls = false\nreminder_interval_secs = 1\n"),
            1,
        )
    });
    instance.add_named_user(JEAN, "professional", "Dr Jean Dupont", PW);
    // A man of 66 whose influenza vaccination is due again tomorrow.
    let man = format!(
        "{}@patient.mes.test",
        ins(&format!("1{}75123457", born(66)))
    );
    instance.add_user(&man, "patient", PATIENT_PW);
    let mut server = instance.start();
    let ca = instance.cert("ca.pem");
    let token = api_login(&server, &ca, &man, PATIENT_PW);
    let settings =
        serde_json::json!({"email": "dominique@perso.example", "enabled": true}).to_string();
    let (status, _) = api(
        &server,
        &ca,
        "PUT",
        "/api/v1/settings/notifications",
        Some(&token),
        Some(&settings),
    );
    assert_eq!(status, 200);
    let paris = chrono::Utc::now()
        .with_timezone(&chrono_tz::Europe::Paris)
        .date_naive();
    let tomorrow = paris + chrono::Duration::days(1);
    let last_year = tomorrow - chrono::Months::new(12);
    let mark =
        serde_json::json!({"status": "DONE", "date": last_year.format("%Y-%m-%d").to_string()})
            .to_string();
    let (status, one) = api(
        &server,
        &ca,
        "PUT",
        "/api/v1/recommendations/VACCIN_GRIPPE",
        Some(&token),
        Some(&mark),
    );
    assert_eq!(status, 200, "{one}");
    assert_eq!(one["due_date"], tomorrow.format("%Y-%m-%d").to_string());
    assert_eq!(one["status"], "TO_PLAN");
    // An appointment tomorrow at 10:00, and one next month (no reminder yet).
    let mail = calendar_mail(
        &invitation(
            "rappel-1",
            &tomorrow.format("%Y%m%d").to_string(),
            "Consultation confidentielle",
        ),
        false,
    )
    .replace(PATIENT, &man);
    let code = common::submit(server.addr("submissions"), &ca, JEAN, PW, "", &man, &mail).await;
    assert_eq!(code, 250);
    let later = (paris + chrono::Duration::days(40))
        .format("%Y%m%d")
        .to_string();
    let mail =
        calendar_mail(&invitation("rappel-2", &later, "Plus tard"), false).replace(PATIENT, &man);
    assert_eq!(
        common::submit(server.addr("submissions"), &ca, JEAN, PW, "", &man, &mail).await,
        250
    );

    let end = Instant::now() + Duration::from_secs(15);
    while (reminders(&got, "Rappel de rendez-vous").is_empty()
        || reminders(&got, "Rappel de prévention").is_empty())
        && Instant::now() < end
    {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Restarted, and a few more rounds: nothing sent twice.
    server.terminate(Duration::from_secs(10));
    let server = instance.start();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let appointment = reminders(&got, "Rappel de rendez-vous");
    let prevention = reminders(&got, "Rappel de prévention");
    assert_eq!(appointment.len(), 1, "{:?}", got.lock().unwrap());
    assert_eq!(prevention.len(), 1, "{:?}", got.lock().unwrap());
    for m in appointment.iter().chain(&prevention) {
        assert!(m.contains("dominique@perso.example"));
        assert!(
            !m.contains("Consultation") && !m.contains("Dupont") && !m.contains("grippe"),
            "content-free: {m}"
        );
    }
    drop(server);
}

/// The load tool's invitations (`mes bench smtp --invitation`, the benchmark
/// of delivery with agenda indexing) are indexed, one appointment each.
async fn bench_invitations_are_indexed(db: Db) {
    let (instance, server) = setup(db).await;
    let out = std::process::Command::new(common::MES)
        .args([
            "bench",
            "smtp",
            "--server",
            &server.addr("submissions").to_string(),
            "--implicit-tls",
            "--ca",
            instance.cert("ca.pem").to_str().unwrap(),
            "--user",
            JEAN,
            "--from",
            JEAN,
            "--to",
            PATIENT,
            "--connections",
            "2",
            "--messages",
            "20",
            "--invitation",
        ])
        .env("MES_BENCH_PASSWORD", PW)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rows = agenda(&instance).await;
    assert_eq!(rows.len(), 20, "{}", String::from_utf8_lossy(&out.stdout));
    assert!(rows.iter().all(|r| r.recurring == 1 && r.organizer == JEAN));
}

both_backends!(
    bench_invitations_are_indexed,
    reminders_are_sent_once_across_a_restart,
    recommendations_for_a_woman_of_52_and_a_man_of_66,
    api_lists_and_replies,
    corpus_invitations_are_indexed,
    updates_by_sequence_and_cancel,
    cancel_before_request_wins,
    recurrence_with_override_and_exdate,
    malformed_calendar_is_delivered_with_outcome,
);
