//! Export of a whole patient space (issue 20), end to end on both backends:
//! a space with messages in two folders (one with a line starting "From "),
//! a dossier document received as an XDM package, a profile entry and an
//! appointment, downloaded through `/api/v1/export` and written by
//! `mes export`; the archive read back (mbox by mail-parser, XDM by our own
//! reader, FHIR against a JSON Schema subset of R4, the history CSV), the
//! ranges (ETag, If-Range, 206, 416), the audit entries; a space of 2,000
//! messages; the settings page's button in Chromium with axe.

#[path = "common/browser.rs"]
mod browser;
mod common;

use std::collections::HashMap;
use std::io::{Cursor, Read, Write};
use std::path::Path;
use std::process::Command;

use browser::{Browser, Viewport};
use common::{Db, Instance, Server, api, api_login, open_store};
use serde_json::{Value, json};

const PW: &str = "correct horse battery staple";
const JEAN: &str = "jean.dupont@hopital-a.mes.test";
const PATIENT: &str = "279035121518989@patient.mes.test";
const INS: &str = "279035121518989";
const PATIENT_PW: &str = "jardin des plantes 7";
const SAMPLE: &str = "VSM_1.4_2022.01";

/// CRLF lines, dot-stuffed, for DATA.
fn smtp_text(text: &str) -> String {
    let mut out = String::new();
    for line in text.split('\n') {
        if line.starts_with('.') {
            out.push('.');
        }
        out.push_str(line);
        out.push_str("\r\n");
    }
    out
}

async fn jean_sends(instance: &Instance, server: &Server, data: &str) {
    let code = common::submit(
        server.addr("submissions"),
        &instance.cert("ca.pem"),
        JEAN,
        PW,
        "",
        PATIENT,
        &smtp_text(data),
    )
    .await;
    assert_eq!(code, 250);
}

fn letter(subject: &str, body: &str) -> String {
    format!(
        "From: Dr Jean Dupont <{JEAN}>\nTo: <{PATIENT}>\nSubject: {subject}\n\
         Date: Tue, 1 Dec 2026 10:00:00 +0100\nMessage-ID: <{}@hopital-a.mes.test>\n\n{body}",
        common::random_hex(8)
    )
}

fn invitation() -> String {
    let ics = format!(
        "BEGIN:VCALENDAR\nVERSION:2.0\nMETHOD:REQUEST\nPRODID:-//test//EN\nBEGIN:VEVENT\nUID:export-rdv-1\n\
         SEQUENCE:0\nDTSTAMP:20261201T100000Z\nDTSTART;TZID=Europe/Paris:20270115T093000\n\
         DTEND;TZID=Europe/Paris:20270115T100000\nSUMMARY:Consultation de suivi\nLOCATION:Cabinet du Dr Dupont\n\
         ORGANIZER;CN=Dr Jean Dupont:mailto:{JEAN}\n\
         ATTENDEE;PARTSTAT=NEEDS-ACTION;RSVP=TRUE:mailto:{PATIENT}\nEND:VEVENT\nEND:VCALENDAR"
    );
    format!(
        "From: Dr Jean Dupont <{JEAN}>\nTo: <{PATIENT}>\nSubject: Rendez-vous\n\
         Message-ID: <rdv-{}@hopital-a.mes.test>\nMIME-Version: 1.0\n\
         Content-Type: multipart/mixed; boundary=\"sep\"\n\n--sep\nContent-Type: text/plain; charset=utf-8\n\n\
         Votre rendez-vous.\n--sep\nContent-Type: text/calendar; charset=utf-8; method=REQUEST\n\n{ics}\n--sep--",
        common::random_hex(8)
    )
}

/// The space of the brief: INBOX (a letter with a "From " line, the XDM
/// package, the invitation), Sent (the patient's answer), a declared
/// allergy. Returns the patient's API token.
async fn populate(instance: &Instance, server: &Server) -> String {
    let ca = instance.cert("ca.pem");
    jean_sends(
        instance,
        server,
        &letter(
            "Résultats",
            "Bonjour,\nFrom the lab: all normal.\n>From a quoted line\nFrom\nCordialement",
        ),
    )
    .await;
    let code = common::send_xdm(
        instance,
        server,
        (JEAN, PW),
        PATIENT,
        &common::xdm_sample(SAMPLE),
        "",
    )
    .await;
    assert_eq!(code, 250);
    jean_sends(instance, server, &invitation()).await;
    let token = api_login(server, &ca, INS, PATIENT_PW);
    let (status, body) = api(
        server,
        &ca,
        "POST",
        "/api/v1/messages",
        Some(&token),
        Some(&json!({"to": JEAN, "text": "Merci.\nFrom now on I will check."}).to_string()),
    );
    assert_eq!(status, 201, "{body}");
    let (status, _) = api(
        server,
        &ca,
        "POST",
        "/api/v1/profile",
        Some(&token),
        Some(r#"{"category": "allergies", "label": "Pollen de bouleau"}"#),
    );
    assert_eq!(status, 201);
    token
}

/// A GET of the export with curl: (status, headers lower-cased, body).
fn download(
    server: &Server,
    ca: &Path,
    token: &str,
    extra: &[(&str, &str)],
) -> (u16, HashMap<String, String>, Vec<u8>) {
    let dir = tempfile::tempdir().unwrap();
    let (head, body) = (dir.path().join("head"), dir.path().join("body"));
    let url = format!(
        "https://localhost:{}/api/v1/export",
        server.addr("https").port()
    );
    let mut cmd = Command::new("curl");
    cmd.args(["-sS", "--cacert", ca.to_str().unwrap(), "-D"])
        .arg(&head)
        .arg("-o")
        .arg(&body)
        .args(["-H", &format!("authorization: Bearer {token}")]);
    for (k, v) in extra {
        cmd.args(["-H", &format!("{k}: {v}")]);
    }
    let out = cmd.arg(&url).output().expect("curl");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let head = std::fs::read_to_string(&head).unwrap();
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("{head}"));
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    (status, headers, std::fs::read(&body).unwrap_or_default())
}

/// Every entry of the archive: name -> bytes.
fn entries(zip: &[u8]) -> Vec<(String, Vec<u8>)> {
    let mut archive = zip::ZipArchive::new(Cursor::new(zip)).expect("a zip");
    (0..archive.len())
        .map(|i| {
            let mut f = archive.by_index(i).unwrap();
            let mut data = Vec::new();
            f.read_to_end(&mut data).unwrap();
            (f.name().to_string(), data)
        })
        .collect()
}

fn entry<'a>(all: &'a [(String, Vec<u8>)], name: &str) -> &'a [u8] {
    all.iter()
        .find(|(n, _)| n == name)
        .map(|(_, d)| &d[..])
        .unwrap_or_else(|| {
            panic!(
                "no {name} in {:?}",
                all.iter().map(|e| &e.0).collect::<Vec<_>>()
            )
        })
}

/// The messages of an mbox as mail-parser reads them, the separator's empty
/// line taken off: the stored bytes.
fn mbox_messages(mbox: &[u8]) -> Vec<Vec<u8>> {
    mail_parser::mailbox::mbox::MessageIterator::new(mbox)
        .map(|m| {
            let m = m.expect("mbox");
            let c = m.contents();
            assert!(c.ends_with(b"\n"), "separator line");
            c[..c.len() - 1].to_vec()
        })
        .collect()
}

/// Checks an export's FHIR bundle against the subset schema of the fixtures.
fn validate_fhir(value: &Value) {
    common::assert_json_schema(value, "tests/fixtures/export/fhir-r4-subset.schema.json");
}

/// Checks every part of an archive against the store.
async fn check_archive(instance: &Instance, zip: &[u8]) {
    let store = open_store(instance).await;
    let account = store.account_by_address(PATIENT).await.unwrap().unwrap();
    let all = entries(zip);
    let readme = String::from_utf8(entry(&all, "README.TXT").to_vec()).unwrap();
    assert!(
        readme.contains("Vos messages") && readme.contains("IHE XDM"),
        "{readme}"
    );

    // Messages: one mbox per folder, the stored bytes back after un-quoting.
    let mut quoted_seen = false;
    for folder in ["INBOX", "Sent"] {
        let id = store.mailbox_id(account.id, folder).await.unwrap().unwrap();
        let stored: Vec<Vec<u8>> = store
            .folder_messages(id)
            .await
            .unwrap()
            .into_iter()
            .map(|m| m.data)
            .collect();
        assert!(!stored.is_empty(), "{folder} has messages");
        let mbox = entry(&all, &format!("messages/{folder}.mbox"));
        assert_eq!(mbox_messages(mbox), stored, "{folder}");
        quoted_seen |= mbox.windows(17).any(|w| w == b"\n>From the lab: a");
        for raw in &stored {
            let text = String::from_utf8_lossy(raw);
            assert!(!text.contains("\n>>From a quoted") || folder != "INBOX");
        }
    }
    assert!(quoted_seen, "the \"From \" line is quoted in the mbox");
    let inbox = String::from_utf8_lossy(entry(&all, "messages/INBOX.mbox")).to_string();
    assert!(inbox.contains("\n>>From a quoted line"), "mboxrd quoting");

    // Dossier: our own XDM reader on the package part of the archive.
    let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
    for (name, data) in &all {
        if name.starts_with("IHE_XDM/") || name == "INDEX.HTM" || name == "README.TXT" {
            w.start_file(name.as_str(), zip::write::SimpleFileOptions::default())
                .unwrap();
            w.write_all(data).unwrap();
        }
    }
    let package = w.finish().unwrap().into_inner();
    let limits = mes::dossier::limits::Limits::default();
    let read = mes::dossier::xdm::read_package(&package, &limits).expect("our XDM reader");
    let original = mes::dossier::xdm::read_package(&common::xdm_sample(SAMPLE), &limits).unwrap();
    let stored = store.documents_archive(account.id).await.unwrap();
    assert_eq!(read.documents.len(), stored.len());
    assert_eq!(read.documents.len(), original.documents.len());
    for (doc, row) in read.documents.iter().zip(&stored) {
        assert_eq!(doc.entry.unique_id, row.unique_id);
        assert_eq!(doc.entry.title.as_deref(), Some(row.title.as_str()));
        assert_eq!(doc.entry.mime_type.as_deref(), Some(row.mime_type.as_str()));
        assert_eq!(
            doc.entry.patient_id.as_ref().map(|p| p.id.as_str()),
            Some(INS)
        );
        let sent = original
            .documents
            .iter()
            .find(|d| d.entry.unique_id == row.unique_id)
            .expect("the document sent");
        assert_eq!(doc.data, sent.data, "the document as received");
        assert_eq!(
            doc.entry.type_code,
            sent.entry.type_code.clone().map(|mut c| {
                c.display = None;
                c
            })
        );
        assert_eq!(doc.entry.creation_time, sent.entry.creation_time);
    }
    let index = String::from_utf8_lossy(entry(&all, "INDEX.HTM")).to_string();
    assert!(index.contains(&stored[0].title), "{index}");

    // Profile and agenda: FHIR R4.
    let fhir: Value =
        serde_json::from_slice(entry(&all, "profil-et-agenda.fhir.json")).expect("JSON");
    validate_fhir(&fhir);
    assert_eq!(fhir["type"], "collection");
    let resources: Vec<&Value> = fhir["entry"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| &e["resource"])
        .collect();
    let of = |t: &str| resources.iter().filter(|r| r["resourceType"] == t).count();
    let profile = store.profile_of(account.id).await.unwrap();
    assert_eq!(resources.len(), 1 + profile.len() + 1, "{fhir}");
    assert_eq!(of("Patient"), 1);
    assert_eq!(of("Appointment"), 1);
    assert!(
        resources
            .iter()
            .any(|r| r["resourceType"] == "AllergyIntolerance"
                && r["code"]["text"] == "Pollen de bouleau"),
        "{fhir}"
    );
    let rdv = resources
        .iter()
        .find(|r| r["resourceType"] == "Appointment")
        .unwrap();
    assert_eq!(rdv["description"], "Consultation de suivi");
    assert_eq!(rdv["start"], "2027-01-15T08:30:00Z");

    // History: the lines the page shows, exports left out.
    let csv = entry(&all, "historique-des-acces.csv");
    let mut reader = csv::Reader::from_reader(csv);
    let header: Vec<String> = reader.headers().unwrap().iter().map(String::from).collect();
    assert_eq!(header[..4], ["date", "acteur", "type_acteur", "action"]);
    let rows: Vec<csv::StringRecord> = reader.records().map(|r| r.unwrap()).collect();
    let lines: Vec<_> = mes::access::history::history(&store, &account, None)
        .await
        .unwrap()
        .into_iter()
        .filter(|l| !l.exported)
        .collect();
    assert!(!lines.is_empty());
    assert_eq!(rows.len(), lines.len());
    for (row, line) in rows.iter().zip(&lines) {
        assert_eq!(&row[3], line.action.as_str());
        assert!(row[1].starts_with(&line.actor), "{row:?}");
    }
    assert!(
        rows.iter()
            .any(|r| &r[3] == "Nouvel échange ouvert" && &r[2] == "professionnel"),
        "{rows:?}"
    );
    store.close().await;
}

async fn export_of_a_space(db: Db) {
    let instance = Instance::new(db).await;
    instance.add_named_user(JEAN, "professional", "Dr Jean Dupont", PW);
    instance.add_user(PATIENT, "patient", PATIENT_PW);
    let server = instance.start();
    let ca = instance.cert("ca.pem");
    let token = populate(&instance, &server).await;

    // A full download, twice: the same bytes under the same strong ETag.
    let (status, headers, full) = download(&server, &ca, &token, &[]);
    assert_eq!(status, 200);
    assert_eq!(headers["content-type"], "application/zip");
    assert_eq!(headers["accept-ranges"], "bytes");
    let etag = headers["etag"].clone();
    assert!(etag.starts_with('"') && !etag.starts_with("W/"), "{etag}");
    check_archive(&instance, &full).await;
    let (_, again_headers, again) = download(&server, &ca, &token, &[]);
    assert_eq!(again_headers["etag"], etag, "downloading changes nothing");
    assert!(again == full, "deterministic");

    // HEAD: the same headers, nothing made, nothing audited.
    let store = open_store(&instance).await;
    let exports = |trail: Vec<mes::store::audit::AuditEntry>| {
        trail.iter().filter(|e| e.action == "space.export").count()
    };
    let before = exports(mes::audit::entries_for(&store, PATIENT).await.unwrap());
    let out = Command::new("curl")
        .args(["-sS", "-I", "--cacert", ca.to_str().unwrap()])
        .args(["-H", &format!("authorization: Bearer {token}")])
        .arg(format!(
            "https://localhost:{}/api/v1/export",
            server.addr("https").port()
        ))
        .output()
        .expect("curl");
    let head = String::from_utf8_lossy(&out.stdout).to_lowercase();
    assert!(head.starts_with("http/1.1 200"), "{head}");
    assert!(head.contains(&format!("etag: {etag}")), "{head}");
    let after = exports(mes::audit::entries_for(&store, PATIENT).await.unwrap());
    assert_eq!(before, after);
    store.close().await;

    // Resuming: the exact suffix, whatever N.
    let len = full.len() as u64;
    for n in [1, len / 3, len - 1] {
        let (status, h, part) = download(
            &server,
            &ca,
            &token,
            &[("range", &format!("bytes={n}-")), ("if-range", &etag)],
        );
        assert_eq!(status, 206, "bytes={n}-");
        assert_eq!(h["content-range"], format!("bytes {n}-{}/{len}", len - 1));
        assert!(part == full[n as usize..], "suffix from {n}");
    }
    let (status, h, part) = download(&server, &ca, &token, &[("range", "bytes=10-19")]);
    assert_eq!(status, 206);
    assert_eq!(h["content-range"], format!("bytes 10-19/{len}"));
    assert_eq!(part, full[10..20]);
    let (status, h, _) = download(
        &server,
        &ca,
        &token,
        &[("range", &format!("bytes={len}-")), ("if-range", &etag)],
    );
    assert_eq!(status, 416);
    assert_eq!(h["content-range"], format!("bytes */{len}"));
    // A stale validator: the whole archive again.
    let (status, _, whole) = download(
        &server,
        &ca,
        &token,
        &[("range", "bytes=5-"), ("if-range", "\"0123\"")],
    );
    assert_eq!(status, 200);
    assert!(whole == full);

    // The operator's copy is the same archive.
    let file = instance.root().join("space.zip");
    let said = instance.run(&["export", INS, file.to_str().unwrap()], None);
    assert!(said.contains("exported"), "{said}");
    assert!(
        std::fs::read(&file).unwrap() == full,
        "mes export writes the same zip"
    );
    let (_, h, _) = download(&server, &ca, &token, &[]);
    assert_eq!(h["etag"], etag, "exports are not part of the state");

    // A change of the space changes the ETag; the old one no longer resumes.
    jean_sends(&instance, &server, &letter("Suite", "Un nouveau message.")).await;
    let (status, h, newer) = download(
        &server,
        &ca,
        &token,
        &[("range", "bytes=100-"), ("if-range", &etag)],
    );
    assert_eq!(status, 200);
    assert_ne!(h["etag"], etag);
    check_archive(&instance, &newer).await;

    // Audited: the patient's downloads and the operator's, shown in the history.
    let store = open_store(&instance).await;
    let trail = mes::audit::entries_for(&store, PATIENT).await.unwrap();
    let exports: Vec<&str> = trail
        .iter()
        .filter(|e| e.action == "space.export")
        .map(|e| e.actor.as_str())
        .collect();
    assert!(exports.contains(&PATIENT), "{exports:?}");
    assert!(exports.contains(&"operator"), "{exports:?}");
    let (_, history) = api(
        &server,
        &ca,
        "GET",
        "/api/v1/access-history",
        Some(&token),
        None,
    );
    let text = history.to_string();
    assert!(
        text.contains("Téléchargement de l'espace complet"),
        "{text}"
    );
    store.close().await;

    // Without a token: nothing.
    let (status, _) = api(&server, &ca, "GET", "/api/v1/export", None, None);
    assert_eq!(status, 401);
}

/// A space of 2,000 messages exports through the CLI and the API alike;
/// every message is in the mbox.
async fn export_of_a_large_space(db: Db) {
    let instance = Instance::new(db).await;
    instance.add_named_user(JEAN, "professional", "Dr Jean Dupont", PW);
    instance.add_user(PATIENT, "patient", PATIENT_PW);
    let server = instance.start();
    let ca = instance.cert("ca.pem");
    let mut s = common::connect_tls(server.addr("submissions"), common::client_tls(&ca, None))
        .await
        .unwrap();
    s.expect("EHLO client.test", 250).await;
    s.expect(&format!("AUTH PLAIN {}", common::plain(JEAN, PW)), 235)
        .await;
    for i in 0..2000 {
        s.expect(&format!("MAIL FROM:<{JEAN}>"), 250).await;
        s.expect(&format!("RCPT TO:<{PATIENT}>"), 250).await;
        s.expect("DATA", 354).await;
        let body = format!(
            "Message {i}\nFrom line {i}\n{}",
            format!("{}\n", "x".repeat(100)).repeat(20)
        );
        s.send(&format!(
            "{}.\r\n",
            smtp_text(&letter(&format!("n°{i}"), &body))
        ))
        .await;
        assert_eq!(s.read_reply().await.code, 250);
    }
    let file = instance.root().join("large.zip");
    instance.run(&["export", INS, file.to_str().unwrap()], None);
    let zip = std::fs::read(&file).unwrap();
    let mut archive = zip::ZipArchive::new(Cursor::new(&zip[..])).unwrap();
    let mut mbox = Vec::new();
    archive
        .by_name("messages/INBOX.mbox")
        .unwrap()
        .read_to_end(&mut mbox)
        .unwrap();
    assert_eq!(mbox_messages(&mbox).len(), 2000);
    let token = api_login(&server, &ca, INS, PATIENT_PW);
    let (status, _, body) = download(&server, &ca, &token, &[]);
    assert_eq!(status, 200);
    assert!(body == zip, "API and CLI give the same archive");
}

both_backends!(export_of_a_space, export_of_a_large_space);

/// The settings page with its download button in Chromium at 1280 and 360
/// px: accessible (axe), no horizontal scroll; the button downloads the zip.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn settings_button_in_a_browser() {
    let instance = Instance::new(Db::Sqlite).await;
    instance.add_named_user(JEAN, "professional", "Dr Jean Dupont", PW);
    instance.add_user(PATIENT, "patient", PATIENT_PW);
    let server = instance.start();
    let ca = instance.cert("ca.pem");
    jean_sends(&instance, &server, &letter("Bonjour", "From the lab.")).await;
    let url = format!("https://localhost:{}", server.addr("https").port());
    for viewport in [Viewport::Desktop, Viewport::Phone] {
        let b = Browser::start(&ca, viewport).await;
        b.goto(&format!("{url}/connexion")).await;
        b.fill("#login", INS).await;
        b.fill("#password", PATIENT_PW).await;
        b.navigate_by("main button[type=submit]").await;
        b.goto(&format!("{url}/parametres")).await;
        let text = b.main_text().await;
        assert!(text.contains("Télécharger mon espace"), "{text}");
        b.check_accessibility("parametres-export").await;
        b.check_no_horizontal_scroll("parametres-export").await;
        b.click("#export").await;
        let zip = b.downloaded("espace-sante.zip").await;
        let all = entries(&zip);
        assert!(all.iter().any(|(n, _)| n == "messages/INBOX.mbox"));
        b.close().await;
    }
}
