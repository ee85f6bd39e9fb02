//! The dossier médical end to end: the ANS XDM samples sent over SMTP to their
//! patient are indexed (category, title, author, profile items, as in
//! tests/fixtures/dossier); hostile or foreign packages are refused at the end
//! of DATA with their own reason and leave nothing behind; MDNs (RFC 8098)
//! report success and failure; the patient reads and hides documents via the API.

mod common;

use std::io::{Cursor, Read, Write};

use base64::Engine;
use common::{Db, Instance, Server, api, api_login, inbox, open_store};
use mail_parser::{MessageParser, MimeHeaders};
use serde_json::Value;
use sha1::Digest;

const PW: &str = "correct horse battery staple";
const JEAN: &str = "jean.dupont@hopital-a.mes.test";
const PATIENT: &str = "279035121518989@patient.mes.test";
const OTHER: &str = "184127645108946@patient.mes.test";
const PATIENT_PW: &str = "jardin des plantes 7";
const SAMPLES: [&str; 4] = [
    "VSM_1.4_2022.01",
    "LDL-SES_2022.01",
    "BIO-CR-BIO_2024.01_TSH_1",
    "DOC_NON_STRUCTURE_CDA-R2-N1",
];

fn sample(name: &str) -> Vec<u8> {
    common::xdm_sample(name)
}

fn fixture(name: &str) -> Value {
    let p = format!(
        "{}/tests/fixtures/dossier/{name}.json",
        env!("CARGO_MANIFEST_DIR")
    );
    serde_json::from_slice(&std::fs::read(&p).unwrap()).unwrap()
}

/// Validates `value` against a JSON Schema of `schemas/api/`.
fn validate(value: &Value, schema: &str) {
    common::assert_json_schema(value, &format!("schemas/api/{schema}"));
}

async fn setup(db: Db) -> (Instance, Server) {
    let instance = Instance::new(db).await;
    instance.add_named_user(JEAN, "professional", "Dr Jean Dupont", PW);
    instance.add_user(PATIENT, "patient", PATIENT_PW);
    instance.add_user(OTHER, "patient", PATIENT_PW);
    let server = instance.start();
    (instance, server)
}

/// Dr Dupont sends `zip` as IHE_XDM.ZIP to `to`; returns the SMTP code.
async fn send_package(
    instance: &Instance,
    server: &Server,
    to: &str,
    zip: &[u8],
    extra_headers: &str,
) -> u16 {
    common::send_xdm(instance, server, (JEAN, PW), to, zip, extra_headers).await
}

/// Rewrites a package: `edit` changes entries by name; METADATA.XML's hash and
/// size of DOC0001.XML are recomputed unless `keep_metadata` is set.
fn rewrite(zip: &[u8], edit: impl Fn(&str, Vec<u8>) -> Vec<u8>, keep_metadata: bool) -> Vec<u8> {
    let mut archive = zip::ZipArchive::new(Cursor::new(zip)).unwrap();
    let mut files: Vec<(String, Vec<u8>)> = Vec::new();
    for i in 0..archive.len() {
        let mut f = archive.by_index(i).unwrap();
        if f.is_dir() {
            continue;
        }
        let mut data = Vec::new();
        f.read_to_end(&mut data).unwrap();
        let name = f.name().to_string();
        files.push((name.clone(), edit(&name, data)));
    }
    if !keep_metadata {
        let doc = files
            .iter()
            .find(|(n, _)| n.ends_with("DOC0001.XML"))
            .map(|(_, d)| d.clone())
            .unwrap();
        let hash = hex::encode_upper(sha1::Sha1::digest(&doc));
        for (name, data) in &mut files {
            if name.ends_with("METADATA.XML") {
                let text = String::from_utf8(data.clone()).unwrap();
                let text = replace_slot(&text, "hash", &hash);
                let text = replace_slot(&text, "size", &doc.len().to_string());
                *data = text.into_bytes();
            }
        }
    }
    let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
    for (name, data) in files {
        w.start_file(name, zip::write::SimpleFileOptions::default())
            .unwrap();
        w.write_all(&data).unwrap();
    }
    w.finish().unwrap().into_inner()
}

fn replace_slot(text: &str, slot: &str, value: &str) -> String {
    let start = text.find(&format!("Slot name=\"{slot}\"")).unwrap();
    let v = start + text[start..].find("Value>").unwrap() + 6;
    let end = v + text[v..].find('<').unwrap();
    format!("{}{value}{}", &text[..v], &text[end..])
}

async fn indexed_as_the_fixtures(db: Db) {
    let (instance, server) = setup(db).await;
    let ca = instance.cert("ca.pem");
    for name in SAMPLES {
        assert_eq!(
            send_package(&instance, &server, PATIENT, &sample(name), "").await,
            250,
            "{name}"
        );
    }
    let token = api_login(&server, &ca, "279035121518989", PATIENT_PW);
    let (status, body) = api(&server, &ca, "GET", "/api/v1/documents", Some(&token), None);
    assert_eq!(status, 200);
    let docs = body["documents"].as_array().unwrap();
    assert_eq!(docs.len(), SAMPLES.len(), "{body}");
    validate(&body, "documents.schema.json");
    assert_eq!(body["next"], serde_json::Value::Null, "{body}");
    // Pages of two, newest first, until `next` is null: every document once.
    let mut all: Vec<i64> = docs.iter().map(|d| d["id"].as_i64().unwrap()).collect();
    all.sort_unstable_by(|a, b| b.cmp(a));
    let mut paged = Vec::new();
    let mut path = "/api/v1/documents?limit=2".to_string();
    loop {
        let (status, page) = api(&server, &ca, "GET", &path, Some(&token), None);
        assert_eq!(status, 200, "{page}");
        validate(&page, "documents.schema.json");
        let ids: Vec<i64> = page["documents"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["id"].as_i64().unwrap())
            .collect();
        assert!(ids.len() <= 2, "{page}");
        paged.extend(ids);
        match page["next"].as_i64() {
            Some(before) => path = format!("/api/v1/documents?limit=2&before={before}"),
            None => break,
        }
    }
    assert_eq!(paged, all);
    let category = docs[0]["category"].as_str().unwrap();
    let (_, one) = api(
        &server,
        &ca,
        "GET",
        &format!("/api/v1/documents?category={category}"),
        Some(&token),
        None,
    );
    let in_category = one["documents"].as_array().unwrap();
    assert!(
        !in_category.is_empty() && in_category.iter().all(|d| d["category"] == category),
        "{one}"
    );
    assert_eq!(
        in_category.len(),
        docs.iter().filter(|d| d["category"] == category).count()
    );
    // Empty parameters count as absent; a malformed number is refused.
    let (status, empty) = api(
        &server,
        &ca,
        "GET",
        "/api/v1/documents?category=&limit=&before=",
        Some(&token),
        None,
    );
    assert_eq!(
        (status, empty["documents"].as_array().map(Vec::len)),
        (200, Some(docs.len())),
        "{empty}"
    );
    let (status, _) = api(
        &server,
        &ca,
        "GET",
        "/api/v1/documents?limit=beaucoup",
        Some(&token),
        None,
    );
    assert_eq!(status, 400);
    for name in SAMPLES {
        let want = fixture(name);
        let d = docs
            .iter()
            .find(|d| d["title"] == want["title"] && d["author"] == want["author"])
            .unwrap_or_else(|| {
                panic!(
                    "{name}: no document titled {} by {}: {body}",
                    want["title"], want["author"]
                )
            });
        assert_eq!(d["category"], want["category"], "{name}");
        assert!(
            d["type_code"]
                .as_str()
                .unwrap()
                .starts_with(want["type_code"].as_str().unwrap()),
            "{name}: {d}"
        );
        assert_eq!(d["hidden"], false);
        assert_eq!(d["version"], 1);
    }
    // The profile holds every item of the fixtures, with its provenance, and
    // what the patient declares.
    let (status, _) = api(
        &server,
        &ca,
        "POST",
        "/api/v1/profile",
        Some(&token),
        Some(r#"{"category": "allergies", "label": "Pollen de bouleau"}"#),
    );
    assert_eq!(status, 201);
    let (_, profile) = api(&server, &ca, "GET", "/api/v1/profile", Some(&token), None);
    validate(&profile, "profile.schema.json");
    assert!(
        profile["entries"][5]["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|i| i["label"] == "Pollen de bouleau" && i["document_id"].is_null())
    );
    let entries = profile["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 13, "12 entries plus Vaccinations");
    let items: Vec<&Value> = entries
        .iter()
        .flat_map(|e| e["items"].as_array().unwrap())
        .collect();
    for name in SAMPLES {
        let want = fixture(name);
        for item in want["items"].as_array().unwrap() {
            let found = items.iter().find(|i| {
                i["label"] == item["label"]
                    && i["code"] == item["code"]
                    && i["value"] == item["value"]
            });
            let found = found.unwrap_or_else(|| panic!("{name}: {item} missing from {profile}"));
            assert_eq!(found["date"], item["date"]);
            assert!(found["document_title"].is_string(), "provenance: {found}");
        }
    }
    // Document content comes back byte for byte; another patient sees none of it.
    let vsm = docs.iter().find(|d| d["category"] == "SYNTHESE").unwrap();
    let id = vsm["id"].as_i64().unwrap();
    let store = open_store(&instance).await;
    let patient = store.account_by_address(PATIENT).await.unwrap().unwrap();
    let row = store.document_of(patient.id, id).await.unwrap().unwrap();
    // Not stored a second time: read back from the message that brought it.
    let at: mes::dossier::filing::DocumentRef = row
        .reference
        .clone()
        .expect("filed as a reference into its message")
        .into();
    let message = store.blob(&row.blob_hash).await.unwrap();
    let limits = mes::dossier::limits::Limits::default();
    let want = mes::dossier::filing::extract(&message, &at, &row.unique_id, &limits)
        .expect("in its message");
    // Another uniqueId at the same place is not this document.
    assert!(mes::dossier::filing::extract(&message, &at, "1.2.3.4", &limits).is_none());
    assert_eq!(want.len(), 63805);
    let package = mes::dossier::xdm::read_package(
        &sample("VSM_1.4_2022.01"),
        &mes::dossier::limits::Limits::default(),
    )
    .unwrap();
    assert!(package.documents.iter().any(|d| d.data == want));
    let url = format!(
        "https://localhost:{}/api/v1/documents/{id}/content",
        server.addr("https").port()
    );
    let got = std::process::Command::new("curl")
        .args(["-sSf", "--cacert", ca.to_str().unwrap(), "-H"])
        .arg(format!("authorization: Bearer {token}"))
        .arg(&url)
        .output()
        .unwrap();
    assert!(
        got.status.success(),
        "{}",
        String::from_utf8_lossy(&got.stderr)
    );
    assert_eq!(got.stdout, want, "content comes back byte for byte");
    let other = api_login(&server, &ca, "184127645108946", PATIENT_PW);
    let (status, _) = api(
        &server,
        &ca,
        "GET",
        &format!("/api/v1/documents/{id}"),
        Some(&other),
        None,
    );
    assert_eq!(status, 404);
    let refusals = mes::audit::entries_for(&store, PATIENT)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.action == "record.refused" && e.actor == OTHER)
        .count();
    assert_eq!(
        refusals, 1,
        "another patient's attempt is on the owner's trail"
    );
    // Hide from professionals, then show again; both audited.
    let (status, d) = api(
        &server,
        &ca,
        "PUT",
        &format!("/api/v1/documents/{id}/hidden"),
        Some(&token),
        Some(r#"{"hidden": true}"#),
    );
    assert_eq!((status, &d["hidden"]), (200, &Value::Bool(true)));
    let (_, d) = api(
        &server,
        &ca,
        "PUT",
        &format!("/api/v1/documents/{id}/hidden"),
        Some(&token),
        Some(r#"{"hidden": false}"#),
    );
    assert_eq!(d["hidden"], false);
    let trail = mes::audit::entries_for(&store, PATIENT).await.unwrap();
    assert!(trail.iter().any(|e| e.action == "document.hide"));
    assert!(trail.iter().any(|e| e.action == "document.show"));
}

/// An MDN in `address`'s INBOX, as (disposition, error) fields of its report.
async fn mdn_fields(store: &mes::store::Store, address: &str) -> Vec<String> {
    let mut out = Vec::new();
    for m in inbox(store, address).await {
        let msg = MessageParser::default().parse(&m.data).unwrap();
        let is_mdn = msg.content_type().is_some_and(|ct| {
            ct.ctype() == "multipart"
                && ct.subtype() == Some("report")
                && ct.attribute("report-type") == Some("disposition-notification")
        });
        if !is_mdn {
            continue;
        }
        let part = msg
            .parts
            .iter()
            .find(|p| {
                p.content_type()
                    .is_some_and(|ct| ct.subtype() == Some("disposition-notification"))
            })
            .expect("report part");
        out.push(String::from_utf8_lossy(part.contents()).into_owned());
    }
    out
}

async fn mdn_reports_success_and_failure(db: Db) {
    let (instance, server) = setup(db).await;
    let dnt = format!("Disposition-Notification-To: <{JEAN}>\r\n");
    assert_eq!(
        send_package(
            &instance,
            &server,
            PATIENT,
            &sample("VSM_1.4_2022.01"),
            &dnt
        )
        .await,
        250
    );
    // Wrong patient: refused, and an error MDN.
    assert_eq!(
        send_package(&instance, &server, OTHER, &sample("LDL-SES_2022.01"), &dnt).await,
        550
    );
    let store = open_store(&instance).await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let fields = loop {
        let f = mdn_fields(&store, JEAN).await;
        if f.len() >= 2 || std::time::Instant::now() > deadline {
            break f;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    assert_eq!(fields.len(), 2, "{fields:?}");
    let ok = fields
        .iter()
        .find(|f| f.contains(PATIENT))
        .expect("MDN for the patient");
    assert!(
        ok.contains("Disposition: automatic-action/MDN-sent-automatically; processed\r\n"),
        "{ok}"
    );
    assert!(ok.contains("Original-Message-ID: <xdm-"), "{ok}");
    let err = fields
        .iter()
        .find(|f| f.contains(OTHER))
        .expect("MDN for the other");
    assert!(err.contains("; processed/error"), "{err}");
    assert!(err.contains("Error: 902"), "{err}");
}

/// A minimal package around one document, with its metadata.
fn package(doc_name: &str, doc: &[u8], metadata: &str) -> Vec<u8> {
    let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let opts = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    w.start_file("IHE_XDM/SUBSET01/METADATA.XML", opts).unwrap();
    w.write_all(metadata.as_bytes()).unwrap();
    w.start_file(doc_name, opts).unwrap();
    w.write_all(doc).unwrap();
    w.finish().unwrap().into_inner()
}

/// A package whose document inflates to `mib` MiB of zeros (written in 1 MiB
/// steps: the test never holds it whole).
fn bomb(mib: usize) -> Vec<u8> {
    let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let opts = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated)
        .large_file(true);
    let vsm = sample("VSM_1.4_2022.01");
    let mut archive = zip::ZipArchive::new(Cursor::new(&vsm[..])).unwrap();
    let mut meta = Vec::new();
    archive
        .by_name("IHE_XDM/SUBSET01/METADATA.XML")
        .unwrap()
        .read_to_end(&mut meta)
        .unwrap();
    w.start_file("IHE_XDM/SUBSET01/METADATA.XML", opts).unwrap();
    w.write_all(&meta).unwrap();
    w.start_file("IHE_XDM/SUBSET01/DOC0001.XML", opts).unwrap();
    let chunk = vec![0u8; 1024 * 1024];
    for _ in 0..mib {
        w.write_all(&chunk).unwrap();
    }
    w.finish().unwrap().into_inner()
}

fn peak_rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap()
}

async fn hostile_packages_are_refused(db: Db) {
    let (instance, server) = setup(db).await;
    let vsm = sample("VSM_1.4_2022.01");
    let no_ins = rewrite(
        &vsm,
        |name, data| {
            let text = String::from_utf8(data).unwrap();
            if name.ends_with("METADATA.XML") {
                text.replace(
                    "&amp;1.2.250.1.213.1.4.10&amp;ISO^NH",
                    "&amp;1.2.250.1.71.4.2.1&amp;ISO^PI",
                )
                .into_bytes()
            } else if name.ends_with("DOC0001.XML") {
                text.replace(
                    "root=\"1.2.250.1.213.1.4.10\"",
                    "root=\"1.2.250.1.71.4.2.1\"",
                )
                .into_bytes()
            } else {
                text.into_bytes()
            }
        },
        false,
    );
    let incomplete = rewrite(
        &vsm,
        |name, data| {
            let text = String::from_utf8(data).unwrap();
            if name.ends_with("DOC0001.XML") {
                let start = text.find("<birthTime").unwrap();
                let end = start + text[start..].find("/>").unwrap() + 2;
                format!("{}{}", &text[..start], &text[end..]).into_bytes()
            } else {
                text.into_bytes()
            }
        },
        false,
    );
    let wrong_hash = rewrite(
        &vsm,
        |name, data| {
            if name.ends_with("DOC0001.XML") {
                // Same size, one letter changed.
                String::from_utf8(data)
                    .unwrap()
                    .replacen("INS-NIR de test", "INS-NIR de TEST", 1)
                    .into_bytes()
            } else {
                data
            }
        },
        true,
    );
    let disagreeing = rewrite(
        &vsm,
        |name, data| {
            if name.ends_with("DOC0001.XML") {
                String::from_utf8(data)
                    .unwrap()
                    .replacen("<code code=\"SYNTH\"", "<code code=\"11488-4\"", 1)
                    .into_bytes()
            } else {
                data
            }
        },
        false,
    );
    let truncated = vsm[..vsm.len() / 2].to_vec();
    let traversal = package("IHE_XDM/SUBSET01/../../evil.txt", b"x", "<x/>");
    let laughs = package(
        "IHE_XDM/SUBSET01/DOC0001.XML",
        b"<x/>",
        "<?xml version=\"1.0\"?><!DOCTYPE lolz [<!ENTITY lol \"lol\"><!ENTITY lol2 \"&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;\">]>\
         <SubmitObjectsRequest>&lol2;</SubmitObjectsRequest>",
    );
    let external = package(
        "IHE_XDM/SUBSET01/DOC0001.XML",
        b"<x/>",
        "<?xml version=\"1.0\"?><!DOCTYPE r [<!ENTITY xxe SYSTEM \"file:///etc/passwd\">]><SubmitObjectsRequest>&xxe;</SubmitObjectsRequest>",
    );
    let bomb = bomb(200);
    assert!(bomb.len() < 2 * 1024 * 1024, "a small zip: {}", bomb.len());
    let cases: [(&str, &str, &[u8], &str); 10] = [
        (
            "header disagrees with metadata",
            PATIENT,
            &disagreeing,
            "disagrees",
        ),
        ("another patient", OTHER, &vsm, "[902]"),
        ("no INS", PATIENT, &no_ins, "[903]"),
        ("incomplete INS", PATIENT, &incomplete, "[905]"),
        ("wrong hash", PATIENT, &wrong_hash, "SHA-1"),
        ("truncated", PATIENT, &truncated, "[900]"),
        ("path traversal", PATIENT, &traversal, "unsafe path"),
        ("billion laughs", PATIENT, &laughs, "DOCTYPE"),
        ("external entity", PATIENT, &external, "DOCTYPE"),
        ("zip bomb", PATIENT, &bomb, "[900]"),
    ];
    let store = open_store(&instance).await;
    for (what, to, zip, reason) in cases {
        // The refusal text, read on a scripted session.
        let mut s = common::connect_tls(
            server.addr("submissions"),
            common::client_tls(&instance.cert("ca.pem"), None),
        )
        .await
        .unwrap();
        s.expect("EHLO client.test", 250).await;
        s.expect(&format!("AUTH PLAIN {}", common::plain(JEAN, PW)), 235)
            .await;
        s.expect(&format!("MAIL FROM:<{JEAN}>"), 250).await;
        s.expect(&format!("RCPT TO:<{to}>"), 250).await;
        s.expect("DATA", 354).await;
        let b64 = base64::engine::general_purpose::STANDARD.encode(zip);
        let body: String = b64
            .as_bytes()
            .chunks(76)
            .map(|c| format!("{}\r\n", std::str::from_utf8(c).unwrap()))
            .collect();
        s.send(&format!(
            "From: <{JEAN}>\r\nTo: <{to}>\r\nSubject: XDM/1.0/DDM\r\nMIME-Version: 1.0\r\n\
             Content-Type: multipart/mixed; boundary=\"b\"\r\n\r\n--b\r\n\
             Content-Type: application/zip\r\nContent-Disposition: attachment; filename=\"IHE_XDM.ZIP\"\r\n\
             Content-Transfer-Encoding: base64\r\n\r\n{body}--b--\r\n.\r\n"
        ))
        .await;
        let reply = s.read_reply().await;
        assert_eq!(reply.code, 550, "{what}: {}", reply.text());
        assert!(reply.text().contains("5.7.1"), "{what}: {}", reply.text());
        assert!(
            reply.text().to_lowercase().contains(&reason.to_lowercase()),
            "{what}: expected {reason} in {}",
            reply.text()
        );
        // The session goes on.
        s.expect("RSET", 250).await;
        s.expect("QUIT", 221).await;
    }
    // Nothing half-indexed, nothing delivered.
    for address in [PATIENT, OTHER] {
        let account = store.account_by_address(address).await.unwrap().unwrap();
        assert!(store.documents_of(account.id).await.unwrap().is_empty());
        assert!(store.profile_of(account.id).await.unwrap().is_empty());
        assert!(inbox(&store, address).await.is_empty(), "{address}");
    }
    // Memory stayed bounded through the 200 MiB bomb, and the server still serves.
    let peak = peak_rss_kib(server.pid());
    assert!(peak < 400 * 1024, "peak RSS {peak} KiB");
    assert_eq!(
        send_package(&instance, &server, PATIENT, &vsm, "").await,
        250
    );
    let account = store.account_by_address(PATIENT).await.unwrap().unwrap();
    assert_eq!(store.documents_of(account.id).await.unwrap().len(), 1);
}

async fn professionals_get_the_package_and_an_outcome(db: Db) {
    let (instance, server) = setup(db).await;
    instance.add_user("marie.curie@hopital-a.mes.test", "professional", PW);
    let truncated = sample("VSM_1.4_2022.01")[..5000].to_vec();
    assert_eq!(
        send_package(
            &instance,
            &server,
            "marie.curie@hopital-a.mes.test",
            &truncated,
            ""
        )
        .await,
        250,
        "a professional receives the mail whatever its attachments"
    );
    let store = open_store(&instance).await;
    let mail = inbox(&store, "marie.curie@hopital-a.mes.test").await;
    assert_eq!(mail.len(), 1);
    let outcomes: Vec<(String, String)> = sqlx::query_as(
        "SELECT outcome, detail FROM indexing_outcomes WHERE recipient = 'marie.curie@hopital-a.mes.test'",
    )
    .fetch_all(store.pool())
    .await
    .unwrap();
    assert_eq!(outcomes.len(), 1);
    assert_eq!(outcomes[0].0, "invalid", "{outcomes:?}");
}

/// A new version of the VSM that replaces the first (RPLC association): the old
/// one is superseded and stays in the history; the profile follows the new one.
async fn replacement_supersedes(db: Db) {
    let (instance, server) = setup(db).await;
    let vsm = sample("VSM_1.4_2022.01");
    assert_eq!(
        send_package(&instance, &server, PATIENT, &vsm, "").await,
        250
    );
    const OLD: &str = "urn:uuid:2496b350-4390-4fda-b90f-83fd576b5032";
    const NEW: &str = "urn:uuid:2496b350-4390-4fda-b90f-83fd576b9999";
    let v2 = rewrite(
        &vsm,
        |name, data| {
            if !name.ends_with("METADATA.XML") {
                return data;
            }
            let text = String::from_utf8(data).unwrap();
            let rplc = format!(
                "<rim:Association xmlns:rim=\"urn:oasis:names:tc:ebxml-regrep:xsd:rim:3.0\" \
                 id=\"urn:uuid:0b6e3d5c-0000-4000-8000-000000000001\" \
                 associationType=\"urn:ihe:iti:2007:AssociationType:RPLC\" \
                 sourceObject=\"{NEW}\" targetObject=\"{OLD}\"/></RegistryObjectList>"
            );
            text.replace(OLD, NEW)
                .replace(
                    "value=\"1.2.250.1.213.1.1.1.13.2022.1.1\"",
                    "value=\"1.2.250.1.213.1.1.1.13.2022.1.2\"",
                )
                .replace("</RegistryObjectList>", &rplc)
                .into_bytes()
        },
        false,
    );
    // Another professional may not replace Dr Dupont's document: 550 and an
    // error MDN (906), the first version unchanged.
    const PIERRE: &str = "pierre.martin@hopital-a.mes.test";
    instance.add_named_user(PIERRE, "professional", "Dr Pierre Martin", PW);
    let dnt = format!("Disposition-Notification-To: <{PIERRE}>\r\n");
    assert_eq!(
        common::send_xdm(&instance, &server, (PIERRE, PW), PATIENT, &v2, &dnt).await,
        550
    );
    let store = open_store(&instance).await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let fields = loop {
        let f = mdn_fields(&store, PIERRE).await;
        if !f.is_empty() || std::time::Instant::now() > deadline {
            break f;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    assert_eq!(fields.len(), 1, "{fields:?}");
    assert!(fields[0].contains("Error: 906 "), "{}", fields[0]);
    let patient = store.account_by_address(PATIENT).await.unwrap().unwrap();
    let docs = store.documents_of(patient.id).await.unwrap();
    assert_eq!(docs.len(), 1, "{docs:?}");
    assert_eq!((docs[0].version, docs[0].status.as_str()), (1, "current"));
    assert!(
        server.log().contains("Replacement refused") || server.log().contains("code=906"),
        "the refusal is logged"
    );

    // The patient hid the first version; the replacement stays hidden.
    let patient = store.account_by_address(PATIENT).await.unwrap().unwrap();
    let first = store.documents_of(patient.id).await.unwrap()[0].id;
    assert!(
        store
            .set_document_hidden(patient.id, first, true)
            .await
            .unwrap()
    );
    assert_eq!(
        send_package(&instance, &server, PATIENT, &v2, "").await,
        250
    );
    let docs = store.documents_of(patient.id).await.unwrap();
    assert_eq!(docs.len(), 2, "{docs:?}");
    let old = docs.iter().find(|d| d.version == 1).expect("version 1");
    let new = docs.iter().find(|d| d.version == 2).expect("version 2");
    assert_eq!(old.status, "superseded");
    assert_eq!(new.status, "current");
    assert!(
        new.hidden,
        "what the patient hid stays hidden in its new version"
    );
    assert_eq!(new.unique_id, "1.2.250.1.213.1.1.1.13.2022.1.2");
    // The profile holds one copy of the items, from the current version.
    let profile = store.profile_of(patient.id).await.unwrap();
    let plavix: Vec<_> = profile
        .iter()
        .filter(|i| i.label.starts_with("PLAVIX"))
        .collect();
    assert_eq!(plavix.len(), 1, "{plavix:?}");
    assert_eq!(plavix[0].document_id, Some(new.id));
}

/// A FHIR R4 bundle (application/fhir+json) for the patient feeds the profile.
async fn fhir_bundle_feeds_the_profile(db: Db) {
    let (instance, server) = setup(db).await;
    let bundle = serde_json::json!({
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [
            {"resource": {"resourceType": "Patient", "identifier": [
                {"system": "urn:oid:1.2.250.1.213.1.4.10", "value": "279035121518989"}]}},
            {"resource": {"resourceType": "AllergyIntolerance",
                "code": {"coding": [{"system": "http://snomed.info/sct", "code": "91936005", "display": "Allergie à la pénicilline"}]}}},
            {"resource": {"resourceType": "Immunization", "occurrenceDateTime": "2024-10-02",
                "vaccineCode": {"coding": [{"code": "J07BB02", "display": "Vaccin grippal"}]}}}
        ]
    })
    .to_string();
    let data = format!(
        "From: <{JEAN}>\r\nTo: <{PATIENT}>\r\nSubject: Profil\r\nMIME-Version: 1.0\r\n\
         Content-Type: multipart/mixed; boundary=\"b\"\r\n\r\n--b\r\n\
         Content-Type: text/plain\r\n\r\nDonnees de sante.\r\n--b\r\n\
         Content-Type: application/fhir+json\r\nContent-Disposition: attachment; filename=\"bundle.json\"\r\n\r\n\
         {bundle}\r\n--b--\r\n"
    );
    let code = common::submit(
        server.addr("submissions"),
        &instance.cert("ca.pem"),
        JEAN,
        PW,
        "",
        PATIENT,
        &data,
    )
    .await;
    assert_eq!(code, 250);
    let store = open_store(&instance).await;
    let patient = store.account_by_address(PATIENT).await.unwrap().unwrap();
    let profile = store.profile_of(patient.id).await.unwrap();
    assert!(
        profile
            .iter()
            .any(|i| i.category == "allergies" && i.label.contains("pénicilline")),
        "{profile:?}"
    );
    assert!(
        profile
            .iter()
            .any(|i| i.category == "vaccinations" && i.label.contains("grippal")),
        "{profile:?}"
    );
    // A bundle about someone else is refused like an XDM package.
    let other = data.replace("279035121518989", "184127645108946");
    let code = common::submit(
        server.addr("submissions"),
        &instance.cert("ca.pem"),
        JEAN,
        PW,
        "",
        PATIENT,
        &other,
    )
    .await;
    assert_eq!(code, 550);
}

/// The entries of a package, folders left out, in order.
fn entries(zip: &[u8]) -> Vec<(String, Vec<u8>)> {
    let mut archive = zip::ZipArchive::new(Cursor::new(zip)).unwrap();
    let mut out = Vec::new();
    for i in 0..archive.len() {
        let mut f = archive.by_index(i).unwrap();
        if f.is_dir() {
            continue;
        }
        let mut data = Vec::new();
        f.read_to_end(&mut data).unwrap();
        out.push((f.name().to_string(), data));
    }
    out
}

/// A zip of `files`, as an archiver would write them.
fn pack(files: &[(String, Vec<u8>)]) -> Vec<u8> {
    let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
    for (name, data) in files {
        w.start_file(name.as_str(), zip::write::SimpleFileOptions::default())
            .unwrap();
        w.write_all(data).unwrap();
    }
    w.finish().unwrap().into_inner()
}

/// The VSM sample asking for the withdrawal of its document (its ANS
/// action slot turned from C to D); `unique_id` replaces the document's
/// uniqueId when given.
fn deletion_of_vsm(unique_id: Option<&str>) -> Vec<u8> {
    const VSM_ID: &str = "value=\"1.2.250.1.213.1.1.1.13.2022.1.1\"";
    rewrite(
        &sample("VSM_1.4_2022.01"),
        |name, data| {
            if !name.ends_with("METADATA.XML") {
                return data;
            }
            let text = String::from_utf8(data).unwrap();
            assert!(text.contains(VSM_ID), "the sample's uniqueId");
            let text = replace_slot(&text, "urn:action:extraMetadataSlot", "D");
            match unique_id {
                Some(id) => text.replace(VSM_ID, &format!("value=\"{id}\"")),
                None => text,
            }
            .into_bytes()
        },
        true,
    )
}

/// The MDNs in `address`'s INBOX, whole, once `count` of them arrived.
async fn mdns(store: &mes::store::Store, address: &str, count: usize) -> Vec<Vec<u8>> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let found: Vec<Vec<u8>> = inbox(store, address)
            .await
            .into_iter()
            .map(|m| m.data)
            .filter(|d| {
                MessageParser::default().parse(d).is_some_and(|m| {
                    m.content_type().is_some_and(|ct| {
                        ct.attribute("report-type") == Some("disposition-notification")
                    })
                })
            })
            .collect();
        if found.len() >= count || std::time::Instant::now() > deadline {
            return found;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

/// The latest indexing outcome recorded for `recipient`: (outcome, detail,
/// X-MSS-CODECDA, X-MSS-INS, remarks).
async fn last_outcome(
    store: &mes::store::Store,
    recipient: &str,
) -> (String, String, Option<String>, Option<String>, String) {
    sqlx::query_as(
        "SELECT outcome, detail, header_codecda, header_ins, remarks FROM indexing_outcomes \
         WHERE recipient = $1 ORDER BY id DESC LIMIT 1",
    )
    .bind(recipient)
    .fetch_one(store.pool())
    .await
    .unwrap()
}

/// A C package then its D package from the same author: the document is
/// withdrawn (kept as `deleted` for the audit and the archive, nowhere
/// else), its profile items go, the MDN says processed with the MSSanté
/// headers, the audit trail names the author; asking again is a 904.
async fn withdrawal_by_its_author(db: Db) {
    let (instance, server) = setup(db).await;
    let ca = instance.cert("ca.pem");
    let dnt = format!("Disposition-Notification-To: <{JEAN}>\r\n");
    let headers = format!("{dnt}X-MSS-CODECDA: SYNTH\r\nX-MSS-INS: O\r\n");
    let create = sample("VSM_1.4_2022.01");
    assert_eq!(
        send_package(&instance, &server, PATIENT, &create, &headers).await,
        250
    );
    let store = open_store(&instance).await;
    let patient = store.account_by_address(PATIENT).await.unwrap().unwrap();
    let docs = store.documents_of(patient.id).await.unwrap();
    assert_eq!(docs.len(), 1);
    let id = docs[0].id;
    assert!(
        store
            .profile_of(patient.id)
            .await
            .unwrap()
            .iter()
            .any(|i| i.document_id == Some(id)),
        "the VSM feeds the profile"
    );
    let declared = r#"{"category": "allergies", "label": "Pollen de bouleau"}"#;
    let token = api_login(&server, &ca, "279035121518989", PATIENT_PW);
    let (status, _) = api(
        &server,
        &ca,
        "POST",
        "/api/v1/profile",
        Some(&token),
        Some(declared),
    );
    assert_eq!(status, 201);
    let outcome = last_outcome(&store, PATIENT).await;
    assert_eq!(
        (
            outcome.2.as_deref(),
            outcome.3.as_deref(),
            outcome.4.as_str()
        ),
        (Some("SYNTH"), Some("O"), ""),
        "headers recorded, in agreement: {outcome:?}"
    );

    let delete = deletion_of_vsm(None);
    assert_eq!(
        entries(&delete),
        entries(&common::xdm_withdrawal("VSM_1.4_2022.01")),
        "one way to build a withdrawal"
    );
    assert_eq!(
        send_package(&instance, &server, PATIENT, &delete, &dnt).await,
        250
    );
    // Nowhere in the dossier or the profile …
    assert!(store.documents_of(patient.id).await.unwrap().is_empty());
    assert_eq!(store.document_of(patient.id, id).await.unwrap(), None);
    let profile = store.profile_of(patient.id).await.unwrap();
    assert_eq!(
        profile.len(),
        1,
        "only what the patient declared: {profile:?}"
    );
    assert_eq!(profile[0].document_id, None);
    let (status, body) = api(&server, &ca, "GET", "/api/v1/documents", Some(&token), None);
    assert_eq!(status, 200);
    assert_eq!(
        body["documents"].as_array().map(Vec::len),
        Some(0),
        "{body}"
    );
    let (status, _) = api(
        &server,
        &ca,
        "GET",
        &format!("/api/v1/documents/{id}"),
        Some(&token),
        None,
    );
    assert_eq!(status, 404);
    // … but kept for the archive, marked deleted, and no second copy filed.
    let archive = store.documents_archive(patient.id).await.unwrap();
    assert_eq!(archive.len(), 1, "{archive:?}");
    assert_eq!((archive[0].id, archive[0].status.as_str()), (id, "deleted"));
    let outcome = last_outcome(&store, PATIENT).await;
    assert_eq!(outcome.0, "indexed");
    assert_eq!(outcome.1, "0 document(s), 1 withdrawn");
    assert!(
        outcome.4.contains("X-MSS-CODECDA disagrees"),
        "a CDA came without its header: {outcome:?}"
    );
    // The audit trail says who withdrew what.
    let trail = mes::audit::entries_for(&store, PATIENT).await.unwrap();
    let deleted: Vec<_> = trail
        .iter()
        .filter(|e| e.action == "document.delete")
        .collect();
    assert_eq!(deleted.len(), 1, "{trail:?}");
    assert_eq!(deleted[0].actor, JEAN);
    assert!(deleted[0].detail.contains(&format!("document {id}")));
    // Both MDNs say processed, with the MSSanté headers of what was read.
    let reports = mdns(&store, JEAN, 2).await;
    assert_eq!(reports.len(), 2);
    for raw in &reports {
        let msg = MessageParser::default().parse(raw).unwrap();
        assert_eq!(
            msg.header_raw("X-MSS-CODECDA").map(str::trim),
            Some("SYNTH")
        );
        assert_eq!(msg.header_raw("X-MSS-INS").map(str::trim), Some("O"));
        let text = String::from_utf8_lossy(raw);
        assert!(
            text.contains("MDN-sent-automatically; processed\r\n"),
            "{text}"
        );
    }
    // Withdrawn already: a second request names an unknown document.
    assert_eq!(
        send_package(&instance, &server, PATIENT, &delete, &dnt).await,
        550
    );
    let reports = mdns(&store, JEAN, 3).await;
    assert!(
        reports
            .iter()
            .any(|r| String::from_utf8_lossy(r).contains("Error: 904 ")),
        "an error MDN 904"
    );
    assert_eq!(
        store.documents_archive(patient.id).await.unwrap().len(),
        1,
        "nothing changed"
    );
}

/// A withdrawal by another author than the document's (906) or of a
/// document the record does not hold (904) is refused at the end of DATA
/// with an error MDN, and nothing changes.
async fn withdrawal_refused(db: Db) {
    let (instance, server) = setup(db).await;
    const PIERRE: &str = "pierre.martin@hopital-a.mes.test";
    instance.add_named_user(PIERRE, "professional", "Dr Pierre Martin", PW);
    assert_eq!(
        send_package(&instance, &server, PATIENT, &sample("VSM_1.4_2022.01"), "").await,
        250
    );
    let store = open_store(&instance).await;
    let patient = store.account_by_address(PATIENT).await.unwrap().unwrap();
    let before_docs = store.documents_of(patient.id).await.unwrap();
    let before_profile = store.profile_of(patient.id).await.unwrap();
    assert_eq!(before_docs.len(), 1);
    assert!(!before_profile.is_empty());

    let dnt = format!("Disposition-Notification-To: <{PIERRE}>\r\n");
    let code = common::send_xdm(
        &instance,
        &server,
        (PIERRE, PW),
        PATIENT,
        &deletion_of_vsm(None),
        &dnt,
    )
    .await;
    assert_eq!(code, 550, "another author");
    let dnt = format!("Disposition-Notification-To: <{JEAN}>\r\n");
    let unknown = deletion_of_vsm(Some("1.2.250.1.213.1.1.1.13.2022.1.99"));
    assert_eq!(
        send_package(&instance, &server, PATIENT, &unknown, &dnt).await,
        550,
        "unknown uniqueId"
    );
    // The reply text names the code too.
    let log = server.log();
    assert!(
        log.contains("code=906") && log.contains("code=904"),
        "{log}"
    );

    let pierre = mdns(&store, PIERRE, 1).await;
    assert_eq!(pierre.len(), 1);
    let text = String::from_utf8_lossy(&pierre[0]);
    assert!(text.contains("; processed/error\r\n"), "{text}");
    assert!(text.contains("Error: 906 "), "{text}");
    let jean = mdns(&store, JEAN, 1).await;
    assert_eq!(jean.len(), 1);
    let text = String::from_utf8_lossy(&jean[0]);
    assert!(text.contains("Error: 904 "), "{text}");
    // An error MDN about a CDA still carries its headers.
    let msg = MessageParser::default().parse(&jean[0]).unwrap();
    assert_eq!(
        msg.header_raw("X-MSS-CODECDA").map(str::trim),
        Some("SYNTH")
    );

    // Nothing changed: the document, the profile, the trail; the patient
    // received neither message.
    assert_eq!(store.documents_of(patient.id).await.unwrap(), before_docs);
    assert_eq!(store.profile_of(patient.id).await.unwrap(), before_profile);
    assert_eq!(store.documents_archive(patient.id).await.unwrap().len(), 1);
    let trail = mes::audit::entries_for(&store, PATIENT).await.unwrap();
    assert!(
        !trail.iter().any(|e| e.action == "document.delete"),
        "{trail:?}"
    );
    assert_eq!(inbox(&store, PATIENT).await.len(), 1);

    // The same uniqueId filed by two authors: a withdrawal takes every
    // current copy, so neither author alone may ask for it.
    let vsm = sample("VSM_1.4_2022.01");
    assert_eq!(
        common::send_xdm(&instance, &server, (PIERRE, PW), PATIENT, &vsm, "").await,
        250
    );
    let delete = deletion_of_vsm(None);
    assert_eq!(
        send_package(&instance, &server, PATIENT, &delete, "").await,
        550
    );
    assert_eq!(
        common::send_xdm(&instance, &server, (PIERRE, PW), PATIENT, &delete, "").await,
        550
    );
    assert_eq!(store.documents_of(patient.id).await.unwrap().len(), 2);
}

/// What everyday zip tools do to a package is accepted, with the reason in
/// the indexing outcome: a URI differing from its entry by case, a BOM
/// before METADATA.XML, `__MACOSX/` and other junk, one top folder. A
/// disagreeing X-MSS-CODECDA is recorded too.
async fn tolerated_packages_are_indexed(db: Db) {
    let (instance, server) = setup(db).await;
    let ldl = entries(&sample("LDL-SES_2022.01"));
    let renamed = |f: &dyn Fn(&str) -> String| -> Vec<(String, Vec<u8>)> {
        ldl.iter().map(|(n, d)| (f(n), d.clone())).collect()
    };
    let case = pack(&renamed(&|n: &str| n.replace("DOC0001.XML", "doc0001.xml")));
    let bom = pack(
        &ldl.iter()
            .map(|(n, d)| {
                let mut d = d.clone();
                if n.ends_with("METADATA.XML") {
                    d.splice(0..0, [0xEF, 0xBB, 0xBF]);
                }
                (n.clone(), d)
            })
            .collect::<Vec<_>>(),
    );
    let mut junk_files = ldl.clone();
    for name in [
        "__MACOSX/IHE_XDM/SUBSET01/._DOC0001.XML",
        "__MACOSX/IHE_XDM/SUBSET01/._METADATA.XML",
        "IHE_XDM/SUBSET01/.DS_Store",
        "Thumbs.db",
    ] {
        junk_files.push((name.to_string(), b"\x00\x05\x16\x07junk".to_vec()));
    }
    let junk = pack(&junk_files);
    let top = pack(&renamed(&|n: &str| format!("Envoi du 3 mai/{n}")));
    let cases: [(&str, &[u8], &str); 4] = [
        ("case-different URI", &case, "ignoring case"),
        ("BOM", &bom, "byte-order mark"),
        ("junk entries", &junk, "4 junk zip entries ignored"),
        ("top folder", &top, "one top folder"),
    ];
    let store = open_store(&instance).await;
    let patient = store.account_by_address(PATIENT).await.unwrap().unwrap();
    let dnt = format!("Disposition-Notification-To: <{JEAN}>\r\n");
    for (n, (what, zip, reason)) in cases.into_iter().enumerate() {
        assert_eq!(
            send_package(&instance, &server, PATIENT, zip, &dnt).await,
            250,
            "{what}"
        );
        let (outcome, detail, _, _, remarks) = last_outcome(&store, PATIENT).await;
        assert_eq!(
            (outcome.as_str(), detail.as_str()),
            ("indexed", "1 document(s)"),
            "{what}"
        );
        assert!(
            remarks.contains("tolerated: ") && remarks.contains(reason),
            "{what}: {remarks}"
        );
        assert_eq!(
            store.documents_of(patient.id).await.unwrap().len(),
            n + 1,
            "{what}"
        );
    }
    // Each filed document reads back byte for byte from its message.
    let want = &ldl
        .iter()
        .find(|(n, _)| n.ends_with("DOC0001.XML"))
        .unwrap()
        .1;
    let limits = mes::dossier::limits::Limits::default();
    for d in store.documents_of(patient.id).await.unwrap() {
        let message = store.blob(&d.blob_hash).await.unwrap();
        let at = d.reference.clone().expect("a reference").into();
        let got = mes::dossier::filing::extract(&message, &at, &d.unique_id, &limits);
        assert_eq!(got.as_ref(), Some(want), "{}", d.id);
    }
    assert!(
        !store.profile_of(patient.id).await.unwrap().is_empty(),
        "the profile is fed"
    );
    let processed = mdns(&store, JEAN, 4).await;
    assert_eq!(processed.len(), 4);
    assert!(processed.iter().all(|r| {
        let m = MessageParser::default().parse(r).unwrap();
        m.header_raw("X-MSS-CODECDA").map(str::trim) == Some("11490-0")
    }));

    // Headers that disagree with the package are recorded with the outcome.
    let said = "X-MSS-CODECDA: SYNTH\r\nX-MSS-INS: N\r\n";
    assert_eq!(
        send_package(
            &instance,
            &server,
            PATIENT,
            &sample("LDL-SES_2022.01"),
            said
        )
        .await,
        250
    );
    let (_, _, codecda, ins, remarks) = last_outcome(&store, PATIENT).await;
    assert_eq!(
        (codecda.as_deref(), ins.as_deref()),
        (Some("SYNTH"), Some("N"))
    );
    assert!(remarks.contains("X-MSS-CODECDA disagrees"), "{remarks}");
    assert!(remarks.contains("X-MSS-INS disagrees"), "{remarks}");

    // Integrity and identity stay strict inside a tolerated layout.
    let wrong_hash = pack(
        &renamed(&|n: &str| format!("Envoi/{n}"))
            .into_iter()
            .map(|(n, mut d)| {
                if n.ends_with("DOC0001.XML") {
                    let last = d.len() - 2;
                    d[last] ^= 0x20;
                }
                (n, d)
            })
            .collect::<Vec<_>>(),
    );
    assert_eq!(
        send_package(&instance, &server, PATIENT, &wrong_hash, "").await,
        550
    );
    assert_eq!(
        send_package(&instance, &server, OTHER, &junk, "").await,
        550
    );
    assert_eq!(store.documents_of(patient.id).await.unwrap().len(), 5);
}

both_backends!(
    withdrawal_by_its_author,
    withdrawal_refused,
    tolerated_packages_are_indexed,
    replacement_supersedes,
    fhir_bundle_feeds_the_profile,
    indexed_as_the_fixtures,
    mdn_reports_success_and_failure,
    hostile_packages_are_refused,
    professionals_get_the_package_and_an_outcome,
);
