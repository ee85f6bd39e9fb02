//! The patient's agenda end to end: the real iMIP invitations of
//! tests/fixtures/agenda (copied from ../shared/corpus/ical, see SOURCES.md)
//! sent over submission by a professional to a patient are indexed (title,
//! times in UTC and in their zone, organiser = the authenticated author);
//! updates by SEQUENCE, a CANCEL before its REQUEST, a recurrence with an
//! override and an EXDATE, a Windows zone name, a malformed calendar that is
//! delivered with its outcome recorded.

mod common;

use base64::Engine;
use common::{Db, Instance, Server, open_store};
use mes::store::agenda::Appointment;

const PW: &str = "correct horse battery staple";
const JEAN: &str = "jean.dupont@hopital-a.mes.test";
const PATIENT: &str = "279035121518989@patient.mes.test";
const PATIENT_PW: &str = "jardin des plantes 7";

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
    // calcard compares UTC UNTIL (10:00Z) with the local start (11:00) of the
    // 26th, so it stops after the first; RFC 5545 would also give the 26th.
    assert_eq!(occurrences.first().map(|o| o.start), Some(1_606_212_000));
    assert!(occurrences.len() <= 2, "{occurrences:?}");

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

both_backends!(
    corpus_invitations_are_indexed,
    updates_by_sequence_and_cancel,
    cancel_before_request_wins,
    recurrence_with_override_and_exdate,
    malformed_calendar_is_delivered_with_outcome,
);
