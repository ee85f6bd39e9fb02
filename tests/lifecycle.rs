//! Patient spaces created by opt-out (issue 20, first part): `mes provision`,
//! opposition (CLI and page), the opening at the end of the window (store
//! clock moved, no sleeping), and mail refused to spaces that are not open.

#[path = "common/browser.rs"]
mod browser;
mod common;

use std::sync::Arc;

use browser::{Browser, Viewport};

use common::{Db, Instance, client_tls, connect_starttls, mes, open_store, plain};

const HEAD: &str =
    "ins,birth_name,first_names,birth_date,sex,birth_place,email,postal,representatives\n";
/// A (e-mail), B (postal only, a minor with A as representative), C (opposes).
const A: &str = "279035121518989";
const B: &str = "184127645108946";
const PRO: &str = "jean.dupont@hopital-a.mes.test";
const PW: &str = "correct horse battery staple";

/// A valid INS built from a 13-digit NIR.
fn ins(nir: &str) -> String {
    let v: u64 = nir.parse().unwrap();
    format!("{nir}{:02}", 97 - v % 97)
}

fn file(c: &str, a_email: &str) -> String {
    format!(
        "{HEAD}\
         {A},DUPONT,Marie Anne,1979-03-12,F,51215,{a_email},,\n\
         {B},MARTIN,Jean,2015-01-01,M,76451,,\"1 rue de la Paix, 75002 Paris\",{A}\n\
         {A},DUPONT,Marie,1979-03-12,F,51215,autre@example.test,,\n\
         279035121518988,DURAND,Paul,1979-03-12,M,51215,p@example.test,,\n\
         {c},PETIT,Lea,1985-05-01,F,75056,lea@example.test,,\n"
    )
}

fn provision(instance: &Instance, path: &std::path::Path) -> String {
    instance.run(&["provision", path.to_str().unwrap()], None)
}

fn line<'a>(out: &'a str, key: &str) -> &'a str {
    out.lines()
        .find(|l| l.starts_with(&format!("{key}:")))
        .unwrap_or_else(|| panic!("no {key} in {out}"))
}

async fn rcpt(instance: &Instance, server: &common::Server, to: &str) -> common::SmtpReply {
    let config = client_tls(&instance.cert("ca.pem"), None);
    let mut s = connect_starttls(server.addr("submission"), config)
        .await
        .unwrap();
    s.expect(&format!("AUTH PLAIN {}", plain(PRO, PW)), 235)
        .await;
    s.expect(&format!("MAIL FROM:<{PRO}>"), 250).await;
    s.cmd(&format!("RCPT TO:<{to}>")).await
}

async fn provision_oppose_open(db: Db) {
    let instance = Instance::new(db).await;
    instance.add_professional(PRO, "Jean Dupont", "Médecin", PW);
    let c = ins("2850575056123");
    let dir = instance.root();
    let path = dir.join("beneficiaires.csv");
    std::fs::write(&path, file(&c, "marie@example.test")).unwrap();

    // First run: three spaces, one duplicate, one bad key.
    let out = provision(&instance, &path);
    for (k, v) in [
        ("lines", "5"),
        ("created", "3"),
        ("updated", "0"),
        ("unchanged", "0"),
        ("opposed", "0"),
        ("duplicate", "1"),
        ("invalid", "1"),
    ] {
        assert_eq!(line(&out, k), format!("{k}: {v}"), "{out}");
    }
    let report = std::fs::read_to_string(dir.join("beneficiaires.csv.report.csv")).unwrap();
    assert_eq!(
        report,
        "line,outcome,reason\n4,duplicate,same INS as line 2\n5,invalid,INS: the INS key is wrong\n"
    );
    // The postal-only beneficiary is a letter for the print provider, with a code.
    let export = std::fs::read_to_string(dir.join("beneficiaires.csv.print.csv")).unwrap();
    let letters: Vec<&str> = export.lines().skip(1).collect();
    assert_eq!(letters.len(), 1, "{export}");
    assert!(
        letters[0].starts_with("MARTIN,Jean,\"1 rue de la Paix, 75002 Paris\","),
        "{export}"
    );
    assert!(!export.contains(B), "no INS in the letter file");

    // Opposition by the operator before the window ends.
    let out = instance.run(&["oppose", &c], None);
    assert!(out.contains("opposition recorded"), "{out}");
    let out = instance.run(&["oppose", &c], None);
    assert!(out.contains("already opposed"), "{out}");
    let cfg = instance.config.to_str().unwrap();
    let (ok, _, err) = mes(&["--config", cfg, "oppose", &ins("1990175056001")], None);
    assert!(!ok && err.contains("no patient space"), "{err}");

    // Re-run: A's e-mail changed; C stays opposed, nothing recreated.
    std::fs::write(&path, file(&c, "marie.nouvelle@example.test")).unwrap();
    let out = provision(&instance, &path);
    for (k, v) in [
        ("created", "0"),
        ("updated", "1"),
        ("unchanged", "1"),
        ("opposed", "1"),
        ("duplicate", "1"),
        ("invalid", "1"),
    ] {
        assert_eq!(line(&out, k), format!("{k}: {v}"), "{out}");
    }
    let report = std::fs::read_to_string(dir.join("beneficiaires.csv.report.csv")).unwrap();
    assert_eq!(
        report,
        "line,outcome,reason\n4,duplicate,same INS as line 2\n5,invalid,INS: the INS key is wrong\n\
         6,opposed,the beneficiary opposed: not recreated\n"
    );
    // Same file again: nothing changes.
    let out = provision(&instance, &path);
    assert_eq!(line(&out, "created"), "created: 0");
    assert_eq!(line(&out, "updated"), "updated: 0");
    assert_eq!(line(&out, "unchanged"), "unchanged: 2");

    // Only the hash of the opposed INS is kept.
    let store = open_store(&instance).await;
    let kept: Vec<(String, Option<String>, Option<String>)> =
        sqlx::query_as("SELECT state, ins, email FROM patient_spaces WHERE state = 'opposed'")
            .fetch_all(store.pool())
            .await
            .unwrap();
    assert_eq!(kept, vec![("opposed".to_string(), None, None)]);
    let email: Option<String> =
        sqlx::query_scalar("SELECT email FROM patient_spaces WHERE ins = $1")
            .bind(A)
            .fetch_one(store.pool())
            .await
            .unwrap();
    assert_eq!(email.as_deref(), Some("marie.nouvelle@example.test"));

    // Mail to an informed or an opposed space: 550 5.1.1, said clearly.
    let mut server = instance.start();
    let pd = &instance.patient_domain;
    let r = rcpt(&instance, &server, &format!("{A}@{pd}")).await;
    assert_eq!(r.code, 550, "{r:?}");
    assert!(
        r.text().contains("5.1.1") && r.text().contains("not open yet"),
        "{r:?}"
    );
    let r = rcpt(&instance, &server, &format!("{c}@{pd}")).await;
    assert_eq!(r.code, 550, "{r:?}");
    assert!(
        r.text().contains("5.1.1") && r.text().contains("opposed"),
        "{r:?}"
    );

    // The window ends: the store's clock is moved, the opening pass runs.
    let now = store.now();
    let clock = Arc::new(mes::clock::ManualClock::new(now + 41 * 86_400));
    let timed = store.clone().with_clock(clock.clone());
    assert_eq!(mes::lifecycle::open::open_due(&timed).await.unwrap(), 0);
    clock.advance(2 * 86_400);
    assert_eq!(mes::lifecycle::open::open_due(&timed).await.unwrap(), 2);
    assert_eq!(mes::lifecycle::open::open_due(&timed).await.unwrap(), 0);
    let account = store
        .account_with_inbox(&format!("{A}@{pd}"))
        .await
        .unwrap()
        .expect("opened");
    assert!(account.inbox.is_some());
    assert_eq!(account.account.display_name, "Marie Anne DUPONT");
    let notify: Option<String> =
        sqlx::query_scalar("SELECT notify_email FROM patient_settings WHERE account_id = $1")
            .bind(account.account.id)
            .fetch_one(store.pool())
            .await
            .unwrap();
    assert_eq!(notify.as_deref(), Some("marie.nouvelle@example.test"));
    let r = rcpt(&instance, &server, &format!("{A}@{pd}")).await;
    assert_eq!(r.code, 250, "{r:?}");
    let r = rcpt(&instance, &server, &format!("{c}@{pd}")).await;
    assert_eq!(r.code, 550, "{r:?}");

    // Activation works as for any patient account.
    instance.run(&["user", "activation", &format!("{A}@{pd}")], None);
    // After opening, opposing closes the space (archived): mail is refused.
    let out = instance.run(&["oppose", A], None);
    assert!(out.contains("opposing closed it"), "{out}");
    let r = rcpt(&instance, &server, &format!("{A}@{pd}")).await;
    assert_eq!(r.code, 550, "{r:?}");
    assert!(
        r.text().contains("5.1.1") && r.text().contains("closed"),
        "{r:?}"
    );
    let (ok, _, err) = mes(&["--config", cfg, "oppose", A], None);
    assert!(!ok && err.contains("already closed"), "{err}");
    server.terminate(std::time::Duration::from_secs(10));
    store.close().await;
}

async fn oppose_after_window_before_opening(db: Db) {
    let instance = Instance::new(db).await;
    let path = instance.root().join("b.ndjson");
    std::fs::write(
        &path,
        format!(
            "{{\"ins\":\"{A}\",\"birth_name\":\"DUPONT\",\"first_names\":\"Marie\",\
             \"birth_date\":\"1979-03-12\",\"sex\":\"F\",\"birth_place\":\"51215\",\
             \"email\":\"marie@example.test\"}}\n"
        ),
    )
    .unwrap();
    let out = provision(&instance, &path);
    assert_eq!(line(&out, "created"), "created: 1", "{out}");
    let store = open_store(&instance).await;
    let clock = Arc::new(mes::clock::ManualClock::new(store.now() + 42 * 86_400));
    let timed = store.clone().with_clock(clock);
    let err = mes::lifecycle::oppose(&timed, A, None, mes::lifecycle::Opponent::Operator, 10)
        .await
        .unwrap_err();
    assert!(matches!(err, mes::lifecycle::OpposeError::Open), "{err}");
    store.close().await;
}

/// GET or POST (form fields) on the HTTPS listener with curl and a cookie
/// jar; returns (status, body).
fn web(
    instance: &Instance,
    server: &common::Server,
    jar: &std::path::Path,
    path: &str,
    form: Option<&[(&str, &str)]>,
) -> (u16, String) {
    let mut cmd = std::process::Command::new("curl");
    cmd.args(["-sS", "--cacert"])
        .arg(instance.cert("ca.pem"))
        .arg("-b")
        .arg(jar)
        .arg("-c")
        .arg(jar)
        .args(["-w", "\n%{http_code}"])
        .arg(format!(
            "https://localhost:{}{path}",
            server.addr("https").port()
        ));
    for (k, v) in form.unwrap_or_default() {
        cmd.arg("--data-urlencode").arg(format!("{k}={v}"));
    }
    let out = cmd.output().expect("curl");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", &text));
    (code.trim().parse().expect("status"), body.to_string())
}

fn is_code(l: &str) -> bool {
    let l = l.trim();
    l.len() == 11
        && l.char_indices().all(|(i, c)| {
            if i == 5 {
                c == '-'
            } else {
                c.is_ascii_uppercase() || c.is_ascii_digit()
            }
        })
}

async fn opposition_by_page_and_notices(db: Db) {
    let (port, got) = common::smtp_sink().await;
    let instance = Instance::new(db).await;
    instance.edit_config(|t| {
        t.replacen(
            "[notify]\n",
            &format!("[notify]\nsmarthost = \"127.0.0.1:{port}\"\nstarttls = false\n"),
            1,
        )
    });
    let c = ins("2850575056123");
    let path = instance.root().join("b.csv");
    std::fs::write(&path, file(&c, "marie@example.test")).unwrap();
    let (config, p) = (instance.config.clone(), path.clone());
    let out = tokio::task::spawn_blocking(move || {
        common::mes_ok(
            &[
                "--config",
                config.to_str().unwrap(),
                "provision",
                p.to_str().unwrap(),
            ],
            None,
        )
    })
    .await
    .unwrap();
    assert!(
        out.contains("notices: 2 e-mails sent, 0 failed, 1 letters to print"),
        "{out}"
    );
    // Content-free e-mails with a personal code, no INS.
    let mails = got.lock().unwrap().clone();
    assert_eq!(mails.len(), 2);
    for m in &mails {
        assert!(m.lines().any(is_code), "{m}");
        assert!(!m.contains(A) && !m.contains(&c), "{m}");
    }
    let export = std::fs::read_to_string(instance.root().join("b.csv.print.csv")).unwrap();
    let code = export
        .lines()
        .nth(1)
        .and_then(|l| l.split(',').find(|f| is_code(f)))
        .expect("a code in the letter")
        .to_string();

    let server = instance.start();
    let jar = tempfile::NamedTempFile::new().unwrap();
    let (status, body) = web(&instance, &server, jar.path(), "/opposition", None);
    assert_eq!(status, 200);
    assert!(body.contains("Opposition à la création") && !body.contains("<script"));
    let at = body.find("name=\"csrf\" value=\"").expect("csrf field") + 19;
    let csrf = body[at..at + 43].to_string();
    // Without the token: refused.
    let (status, _) = web(
        &instance,
        &server,
        jar.path(),
        "/opposition",
        Some(&[("ins", B), ("code", &code)]),
    );
    assert_eq!(status, 403);
    // A wrong code, then an unknown INS: the same answer.
    let (status, wrong) = web(
        &instance,
        &server,
        jar.path(),
        "/opposition",
        Some(&[("csrf", &csrf), ("ins", B), ("code", "AAAAA-AAAAA")]),
    );
    assert_eq!(status, 422);
    assert!(
        wrong.contains("code d&#39;opposition incorrect")
            || wrong.contains("code d'opposition incorrect"),
        "{wrong}"
    );
    let (status, _) = web(
        &instance,
        &server,
        jar.path(),
        "/opposition",
        Some(&[
            ("csrf", &csrf),
            ("ins", &ins("1990175056001")),
            ("code", &code),
        ]),
    );
    assert_eq!(status, 422);
    // The right code, as typed by a person (lower case, spaces).
    let typed = code.to_lowercase().replace('-', " ");
    let (status, body) = web(
        &instance,
        &server,
        jar.path(),
        "/opposition",
        Some(&[("csrf", &csrf), ("ins", B), ("code", &typed)]),
    );
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("Votre opposition est enregistrée"), "{body}");
    let store = open_store(&instance).await;
    let state: String = sqlx::query_scalar("SELECT state FROM patient_spaces WHERE ins_hash = $1")
        .bind(mes::lifecycle::ins_hash(B))
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert_eq!(state, "opposed");
    let trail: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM audit_log WHERE action = 'space.oppose' AND actor = 'patient'",
    )
    .fetch_one(store.pool())
    .await
    .unwrap();
    assert_eq!(trail, 1);

    // Once A's space is open, opposing with the code of the notice closes it.
    let a_code = mails
        .iter()
        .find(|m| m.contains("marie@example.test"))
        .and_then(|m| m.lines().find(|l| is_code(l)))
        .expect("A's code")
        .trim()
        .to_string();
    let clock = Arc::new(mes::clock::ManualClock::new(store.now() + 43 * 86_400));
    let timed = store.clone().with_clock(clock);
    assert_eq!(mes::lifecycle::open::open_due(&timed).await.unwrap(), 2);
    let (status, body) = web(
        &instance,
        &server,
        jar.path(),
        "/opposition",
        Some(&[("csrf", &csrf), ("ins", A), ("code", &a_code)]),
    );
    assert_eq!(status, 200, "{body}");
    assert!(
        body.contains("votre opposition l&#39;a fermé")
            || body.contains("votre opposition l'a fermé"),
        "{body}"
    );
    let state: String = sqlx::query_scalar("SELECT state FROM patient_spaces WHERE ins_hash = $1")
        .bind(mes::lifecycle::ins_hash(A))
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert_eq!(state, "closed");
    let (status, body) = web(
        &instance,
        &server,
        jar.path(),
        "/opposition",
        Some(&[("csrf", &csrf), ("ins", A), ("code", &a_code)]),
    );
    assert_eq!(status, 409, "{body}");
    assert!(body.contains("déjà fermé"), "{body}");
    store.close().await;
}

both_backends!(
    provision_oppose_open,
    oppose_after_window_before_opening,
    opposition_by_page_and_notices
);

/// The opposition page in Chromium at 1280 and 360 px: accessible (axe: no
/// serious or critical violation), no horizontal scroll, in French, and
/// the same after a refused attempt (its error shown on the page).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn opposition_page_in_a_browser() {
    let instance = Instance::new(Db::Sqlite).await;
    let server = instance.start();
    let ca = instance.cert("ca.pem");
    let url = format!("https://localhost:{}", server.addr("https").port());
    for viewport in [Viewport::Desktop, Viewport::Phone] {
        let b = Browser::start(&ca, viewport).await;
        b.goto(&format!("{url}/opposition")).await;
        let text = b.main_text().await;
        assert!(text.contains("opposition"), "{text}");
        b.check_accessibility("opposition").await;
        b.check_no_horizontal_scroll("opposition").await;
        // An unknown INS with a made-up code: refused, said on the page.
        b.fill("#ins", A).await;
        b.fill("#code", "ABCDE12345").await;
        b.navigate_by("main button[type=submit]").await;
        let text = b.main_text().await;
        assert!(text.contains("incorrect"), "{text}");
        b.check_accessibility("opposition-refused").await;
        b.check_no_horizontal_scroll("opposition-refused").await;
    }
}

// ---- Closure, archive, purge, reopening (issue 20, second part) ----

const PATIENT_PW: &str = "jardin des plantes 7";

/// Rows left for a patient account id in the tables a purge empties.
async fn rows_of(store: &mes::store::Store, id: i64) -> Vec<(String, i64)> {
    let mut left = Vec::new();
    for (table, col) in [
        ("accounts", "id"),
        ("mailboxes", "account_id"),
        ("threads", "patient_id"),
        ("documents", "patient_id"),
        ("patient_settings", "account_id"),
        ("api_sessions", "account_id"),
        ("quotas", "account_id"),
        ("patient_professionals", "patient_id"),
    ] {
        let n: i64 = sqlx::query_scalar(&format!("SELECT COUNT(*) FROM {table} WHERE {col} = $1"))
            .bind(id)
            .fetch_one(store.pool())
            .await
            .unwrap();
        if n > 0 {
            left.push((table.to_string(), n));
        }
    }
    left
}

/// The messages in a patient's folders and the blobs of those messages
/// and of their documents.
async fn content_of(store: &mes::store::Store, id: i64) -> (Vec<i64>, Vec<String>) {
    let messages: Vec<i64> = sqlx::query_scalar(
        "SELECT e.message_id FROM mailbox_messages e JOIN mailboxes f ON f.id = e.mailbox_id \
         WHERE f.account_id = $1",
    )
    .bind(id)
    .fetch_all(store.pool())
    .await
    .unwrap();
    let blobs: Vec<String> = sqlx::query_scalar(
        "SELECT blob_hash FROM documents WHERE patient_id = $1 UNION \
         SELECT m.blob_hash FROM messages m JOIN mailbox_messages e ON e.message_id = m.id \
         JOIN mailboxes f ON f.id = e.mailbox_id WHERE f.account_id = $1",
    )
    .bind(id)
    .fetch_all(store.pool())
    .await
    .unwrap();
    (messages, blobs)
}

async fn count(store: &mes::store::Store, sql: &str, bind: &str) -> i64 {
    sqlx::query_scalar(sql)
        .bind(bind)
        .fetch_one(store.pool())
        .await
        .unwrap()
}

async fn close_archive_purge_reopen(db: Db) {
    let instance = Instance::new(db).await;
    let pd = instance.patient_domain.clone();
    let patient = format!("{A}@{pd}");
    instance.add_user(&patient, "patient", PATIENT_PW);
    instance.add_professional(PRO, "Jean Dupont", "Médecin", PW);
    let doctor = common::professional(&instance, "traitant", "Dr Traitant");
    let cfg = instance.config.to_str().unwrap().to_string();
    let mut server = instance.start();
    let ca = instance.cert("ca.pem");
    // A message with a document, and an authorised professional.
    let code = common::send_xdm(
        &instance,
        &server,
        (&doctor.address, PW),
        &patient,
        &common::xdm_sample("VSM_1.4_2022.01"),
        "",
    )
    .await;
    assert_eq!(code, 250);
    let token = common::api_login(&server, &ca, A, PATIENT_PW);
    let (code, body) = common::api(
        &server,
        &ca,
        "PUT",
        "/api/v1/professionals",
        Some(&token),
        Some(&serde_json::json!({"address": doctor.address, "status": "authorised"}).to_string()),
    );
    assert_eq!(code, 204, "{body}");
    let documents = format!("/api/pro/v1/patients/{A}/documents");
    let (code, _) = common::pro_get(&server, &instance, &doctor, &documents);
    assert_eq!(code, 200);

    // Closed by the operator: archived.
    let out = instance.run(&["close", A], None);
    assert!(
        out.contains("space closed") && out.contains("archived until"),
        "{out}"
    );
    let (ok, _, err) = mes(&["--config", &cfg, "close", A], None);
    assert!(!ok && err.contains("already closed"), "{err}");
    // Login: the right password is told the space is closed; a wrong one
    // gets the usual answer (no oracle).
    let login = |password: &str| {
        common::api(
            &server,
            &ca,
            "POST",
            "/api/v1/login",
            None,
            Some(&serde_json::json!({"login": A, "password": password}).to_string()),
        )
    };
    let (code, body) = login(PATIENT_PW);
    assert_eq!(code, 403, "{body}");
    assert!(
        body.to_string().contains("espace santé est fermé"),
        "{body}"
    );
    let (code, body) = login("not the password at all");
    assert_eq!(code, 401, "{body}");
    assert!(!body.to_string().contains("fermé"), "{body}");
    // The session opened before the closure ended with it.
    let (code, _) = common::api(&server, &ca, "GET", "/api/v1/threads", Some(&token), None);
    assert_eq!(code, 401);
    // IMAP: refused, said clearly.
    let mut imap = common::imap_tls(server.addr("imaps"), &ca).await;
    let r = imap.cmd(&format!("LOGIN {patient} \"{PATIENT_PW}\"")).await;
    assert!(!r.ok() && r.all().contains("closed"), "{}", r.all());
    // SMTP AUTH: refused too.
    let mut smtp = connect_starttls(server.addr("submission"), client_tls(&ca, None))
        .await
        .unwrap();
    let r = smtp
        .cmd(&format!("AUTH PLAIN {}", plain(&patient, PATIENT_PW)))
        .await;
    assert_eq!(r.code, 535, "{r:?}");
    assert!(r.text().contains("closed"), "{r:?}");
    // Mail to it: 550 5.1.1 with the reason.
    let r = rcpt(&instance, &server, &patient).await;
    assert_eq!(r.code, 550, "{r:?}");
    assert!(
        r.text().contains("5.1.1") && r.text().contains("closed"),
        "{r:?}"
    );
    // The professional is refused by the gate, and the refusal is on the trail.
    let (code, _) = common::pro_get(&server, &instance, &doctor, &documents);
    assert_eq!(code, 403);
    let store = open_store(&instance).await;
    let refused = count(
        &store,
        "SELECT COUNT(*) FROM audit_log WHERE action = 'record.refused' AND target = $1 \
         AND detail LIKE '%Closed%'",
        &patient,
    )
    .await;
    assert_eq!(refused, 1);

    // Reopened within the archive period: everything works again.
    let out = instance.run(&["reopen", A], None);
    assert!(out.contains("reopened"), "{out}");
    let (code, _) = login(PATIENT_PW);
    assert_eq!(code, 200);
    let r = rcpt(&instance, &server, &patient).await;
    assert_eq!(r.code, 250, "{r:?}");
    let (code, _) = common::pro_get(&server, &instance, &doctor, &documents);
    assert_eq!(code, 200);
    let (ok, _, err) = mes(&["--config", &cfg, "reopen", A], None);
    assert!(!ok && err.contains("not closed"), "{err}");

    // Closed again, then purged by the task when the archive period ends.
    instance.run(&["close", A], None);
    let account = store.account_by_ins(A).await.unwrap().expect("archived");
    let (messages, blobs) = content_of(&store, account.id).await;
    assert!(!messages.is_empty() && !blobs.is_empty());
    assert!(rows_of(&store, account.id).await.len() >= 3);
    let now = store.now();
    let clock = Arc::new(mes::clock::ManualClock::new(now + 10 * 31_557_600 - 86_400));
    let timed = store.clone().with_clock(clock.clone());
    assert_eq!(mes::lifecycle::close::purge_due(&timed).await.unwrap(), 0);
    clock.advance(2 * 86_400);
    assert_eq!(mes::lifecycle::close::purge_due(&timed).await.unwrap(), 1);
    assert_eq!(mes::lifecycle::close::purge_due(&timed).await.unwrap(), 0);
    assert_eq!(rows_of(&store, account.id).await, vec![]);
    // Messages and blobs are gone unless another row still uses them.
    for m in &messages {
        let left = count(
            &store,
            "SELECT COUNT(*) FROM messages WHERE CAST(id AS TEXT) = $1",
            &m.to_string(),
        )
        .await;
        let used = count(
            &store,
            "SELECT COUNT(*) FROM mailbox_messages WHERE CAST(message_id AS TEXT) = $1",
            &m.to_string(),
        )
        .await;
        assert_eq!(left, used.min(1), "message {m}");
    }
    for b in &blobs {
        let left = count(&store, "SELECT COUNT(*) FROM blobs WHERE hash = $1", b).await;
        let used = count(
            &store,
            "SELECT COUNT(*) FROM messages WHERE blob_hash = $1",
            b,
        )
        .await;
        assert_eq!(left, used.min(1), "blob {b}");
    }
    // Only the INS hash is kept, and the trail.
    let kept: Vec<(String, Option<String>, Option<String>)> =
        sqlx::query_as("SELECT state, ins, domain FROM patient_spaces WHERE ins_hash = $1")
            .bind(mes::lifecycle::ins_hash(A))
            .fetch_all(store.pool())
            .await
            .unwrap();
    assert_eq!(kept, vec![("purged".to_string(), None, None)]);
    let trail: Vec<String> =
        sqlx::query_scalar("SELECT action FROM audit_log WHERE action LIKE 'space.%' ORDER BY id")
            .fetch_all(store.pool())
            .await
            .unwrap();
    assert_eq!(
        trail,
        ["space.close", "space.reopen", "space.close", "space.purge"]
    );
    // After the purge: nothing to reopen, mail still refused clearly.
    let (ok, _, err) = mes(&["--config", &cfg, "reopen", A], None);
    assert!(!ok && err.contains("purged"), "{err}");
    let r = rcpt(&instance, &server, &patient).await;
    assert_eq!(r.code, 550, "{r:?}");
    assert!(r.text().contains("no longer exists"), "{r:?}");
    server.terminate(std::time::Duration::from_secs(10));
    store.close().await;
}

async fn destroy_at_once(db: Db) {
    let instance = Instance::new(db).await;
    let patient = format!("{A}@{}", instance.patient_domain);
    instance.add_user(&patient, "patient", PATIENT_PW);
    let doctor = common::professional(&instance, "traitant", "Dr Traitant");
    let mut server = instance.start();
    let code = common::send_xdm(
        &instance,
        &server,
        (&doctor.address, PW),
        &patient,
        &common::xdm_sample("VSM_1.4_2022.01"),
        "",
    )
    .await;
    assert_eq!(code, 250);
    let store = open_store(&instance).await;
    let id = store.account_by_ins(A).await.unwrap().unwrap().id;
    assert!(!rows_of(&store, id).await.is_empty());
    let out = instance.run(&["close", A, "--destroy"], None);
    assert!(out.contains("destroyed"), "{out}");
    assert_eq!(rows_of(&store, id).await, vec![]);
    let state: String = sqlx::query_scalar("SELECT state FROM patient_spaces WHERE ins_hash = $1")
        .bind(mes::lifecycle::ins_hash(A))
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert_eq!(state, "purged");
    let destroyed = count(
        &store,
        "SELECT COUNT(*) FROM audit_log WHERE action = 'space.destroy' AND target = $1",
        &patient,
    )
    .await;
    assert_eq!(destroyed, 1);
    let cfg = instance.config.to_str().unwrap();
    let (ok, _, err) = mes(&["--config", cfg, "reopen", A], None);
    assert!(!ok && err.contains("purged"), "{err}");
    server.terminate(std::time::Duration::from_secs(10));
    store.close().await;
}

both_backends!(close_archive_purge_reopen, destroy_at_once);

/// Logs `login` in on the browser's connexion page.
async fn browser_login(b: &Browser, url: &str, login: &str, password: &str) {
    b.goto(&format!("{url}/connexion")).await;
    b.fill("#login", login).await;
    b.fill("#password", password).await;
    b.navigate_by("main button[type=submit]").await;
}

async fn check_page(b: &Browser, name: &str) {
    b.check_accessibility(name).await;
    b.check_no_horizontal_scroll(name).await;
}

/// The patient closes their space from the settings page in Chromium at
/// 1280 and 360 px: password entered again and confirmation, then the
/// login is refused with the French explanation.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closure_from_the_settings_page_in_a_browser() {
    let instance = Instance::new(Db::Sqlite).await;
    let pd = instance.patient_domain.clone();
    for ins in [A, B] {
        instance.add_user(&format!("{ins}@{pd}"), "patient", PATIENT_PW);
    }
    let server = instance.start();
    let ca = instance.cert("ca.pem");
    let url = format!("https://localhost:{}", server.addr("https").port());
    for (viewport, ins) in [(Viewport::Desktop, A), (Viewport::Phone, B)] {
        let b = Browser::start(&ca, viewport).await;
        browser_login(&b, &url, ins, PATIENT_PW).await;
        b.goto(&format!("{url}/parametres")).await;
        let text = b.main_text().await;
        assert!(text.contains("Fermer mon espace santé"), "{text}");
        check_page(&b, "fermeture").await;
        // A wrong password: nothing closed, said on the page.
        b.fill("#fermer-mdp", "pas le bon mot de passe").await;
        b.click("#fermer-confirmer").await;
        b.navigate_by("form[action='/parametres/fermer'] button[type=submit]")
            .await;
        let text = b.main_text().await;
        assert!(text.contains("mot de passe est incorrect"), "{text}");
        check_page(&b, "fermeture-refusee").await;
        // The right one, confirmed: closed, archived by default.
        b.fill("#fermer-mdp", PATIENT_PW).await;
        b.click("#fermer-confirmer").await;
        b.navigate_by("form[action='/parametres/fermer'] button[type=submit]")
            .await;
        assert_eq!(b.path().await, "/connexion?etat=ferme");
        let text = b.main_text().await;
        assert!(text.contains("Votre espace santé est fermé"), "{text}");
        check_page(&b, "fermee").await;
        // Logging in again: refused with the explanation.
        browser_login(&b, &url, ins, PATIENT_PW).await;
        let text = b.main_text().await;
        assert!(
            text.contains("il n'est plus possible de s'y connecter"),
            "{text}"
        );
        check_page(&b, "connexion-fermee").await;
        b.close().await;
    }
    let store = open_store(&instance).await;
    for ins in [A, B] {
        let address = format!("{ins}@{pd}");
        let closed = count(
            &store,
            "SELECT COUNT(*) FROM audit_log WHERE action = 'space.close' AND actor = $1",
            &address,
        )
        .await;
        assert_eq!(closed, 1, "{address}");
        let state: String =
            sqlx::query_scalar("SELECT state FROM patient_spaces WHERE ins_hash = $1")
                .bind(mes::lifecycle::ins_hash(ins))
                .fetch_one(store.pool())
                .await
                .unwrap();
        assert_eq!(state, "closed");
    }
    store.close().await;
}

// ---- Legal representatives ----

/// `name`'s XDM sample with its document's confidentiality code set to
/// INVISIBLE_REPRESENTANTS_LEGAUX (the document itself unchanged).
fn xdm_invisible_to_representatives(name: &str) -> Vec<u8> {
    use std::io::{Read, Write};
    const SCHEME: &str = "classificationScheme=\"urn:uuid:f4f85eac-e6cb-4883-b524-f2705394840f\"";
    let zip = common::xdm_sample(name);
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(&zip[..])).unwrap();
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    for i in 0..archive.len() {
        let mut f = archive.by_index(i).unwrap();
        if f.is_dir() {
            continue;
        }
        let mut data = Vec::new();
        f.read_to_end(&mut data).unwrap();
        if f.name().ends_with("METADATA.XML") {
            let text = String::from_utf8(data).unwrap();
            let at = text.find(SCHEME).expect("a confidentiality code");
            let node = at + text[at..].find("nodeRepresentation=\"N\"").unwrap();
            let text = format!(
                "{}nodeRepresentation=\"INVISIBLE_REPRESENTANTS_LEGAUX\"{}",
                &text[..node],
                &text[node + "nodeRepresentation=\"N\"".len()..]
            );
            data = text.into_bytes();
        }
        w.start_file(f.name(), zip::write::SimpleFileOptions::default())
            .unwrap();
        w.write_all(&data).unwrap();
    }
    w.finish().unwrap().into_inner()
}

/// Links from the provisioning file and `mes representative`, then the end
/// of the representation at 18 (store clock moved) with a content-free notice.
async fn representatives_and_coming_of_age(db: Db) {
    let (port, got) = common::smtp_sink().await;
    let instance = Instance::new(db).await;
    instance.edit_config(|t| {
        t.replacen(
            "[notify]\n",
            &format!("[notify]\nsmarthost = \"127.0.0.1:{port}\"\nstarttls = false\n"),
            1,
        )
    });
    let pd = instance.patient_domain.clone();
    let path = instance.root().join("mineurs.csv");
    std::fs::write(
        &path,
        format!(
            "{HEAD}\
             {A},DUPONT,Marie,1979-03-12,F,51215,marie@example.test,,\n\
             {B},MARTIN,Jean,2015-01-01,M,76451,jean.martin@example.test,,{A}\n"
        ),
    )
    .unwrap();
    let (config, p) = (instance.config.clone(), path.clone());
    tokio::task::spawn_blocking(move || {
        common::mes_ok(
            &[
                "--config",
                config.to_str().unwrap(),
                "provision",
                p.to_str().unwrap(),
            ],
            None,
        )
    })
    .await
    .unwrap();
    let store = open_store(&instance).await;
    let clock = Arc::new(mes::clock::ManualClock::new(store.now() + 43 * 86_400));
    let timed = store.clone().with_clock(clock.clone());
    assert_eq!(mes::lifecycle::open::open_due(&timed).await.unwrap(), 2);
    let child = store.account_by_ins(B).await.unwrap().unwrap();
    let seen = store.represented_by(A).await.unwrap();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].account_id, child.id);
    assert!(store.represented_by(B).await.unwrap().is_empty());

    // The operator removes and adds the link.
    let parent = format!("{A}@{pd}");
    let out = instance.run(&["representative", "remove", B, &parent], None);
    assert!(out.contains("removed"), "{out}");
    assert!(store.represented_by(A).await.unwrap().is_empty());
    let out = instance.run(&["representative", "add", B, &parent], None);
    assert!(out.contains("representative added"), "{out}");
    let out = instance.run(&["representative", "add", B, &parent], None);
    assert!(out.contains("already"), "{out}");
    let cfg = instance.config.to_str().unwrap();
    let (ok, _, err) = mes(
        &[
            "--config",
            cfg,
            "representative",
            "add",
            B,
            "nobody@example.test",
        ],
        None,
    );
    assert!(!ok && err.contains("existing patient account"), "{err}");
    let (ok, _, err) = mes(
        &["--config", cfg, "representative", "add", A, &parent],
        None,
    );
    assert!(!ok && err.contains("own representative"), "{err}");
    assert_eq!(store.represented_by(A).await.unwrap().len(), 1);

    // The day before the 18th birthday nothing ends; on it, the link ends.
    let notify = mes::config::Config::load(&instance.config).unwrap().notify;
    let sender = mes::threads::notify::NoticeSender::new(&notify)
        .unwrap()
        .expect("a smarthost");
    let sent_before = got.lock().unwrap().len();
    let eve = 1_988_064_000; // 2032-12-31T00:00:00Z
    let timed = store
        .clone()
        .with_clock(Arc::new(mes::clock::ManualClock::new(eve)));
    let ended = mes::lifecycle::representation::end_due(&timed, Some(&sender));
    assert_eq!(ended.await.unwrap(), 0);
    assert_eq!(store.represented_by(A).await.unwrap().len(), 1);
    let timed = store
        .clone()
        .with_clock(Arc::new(mes::clock::ManualClock::new(eve + 86_400)));
    let ended = mes::lifecycle::representation::end_due(&timed, Some(&sender));
    assert_eq!(ended.await.unwrap(), 1);
    assert!(store.represented_by(A).await.unwrap().is_empty());
    let ended = mes::lifecycle::representation::end_due(&timed, Some(&sender));
    assert_eq!(ended.await.unwrap(), 0);
    // One content-free notice to the young adult.
    let mails = got.lock().unwrap().clone();
    assert_eq!(mails.len(), sent_before + 1);
    let notice = &mails[sent_before];
    assert!(notice.contains("jean.martin@example.test"), "{notice}");
    assert!(notice.contains("majeur"), "{notice}");
    assert!(
        !notice.contains(B) && !notice.contains("MARTIN"),
        "{notice}"
    );
    let trail: Vec<String> = sqlx::query_scalar(
        "SELECT action FROM audit_log WHERE action LIKE 'representative.%' ORDER BY id",
    )
    .fetch_all(store.pool())
    .await
    .unwrap();
    assert_eq!(
        trail,
        [
            "representative.remove",
            "representative.add",
            "representative.end"
        ]
    );
    store.close().await;
}

both_backends!(representatives_and_coming_of_age);

/// A representative switches to the child's space in Chromium at 1280 and
/// 360 px: the child's messages and dossier, without the document marked
/// INVISIBLE_REPRESENTANTS_LEGAUX; every request on the trail as the
/// representative on the child's behalf.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn representative_sees_the_child_space_in_a_browser() {
    let instance = Instance::new(Db::Sqlite).await;
    let pd = instance.patient_domain.clone();
    let (child, parent) = (format!("{A}@{pd}"), format!("{B}@{pd}"));
    instance.add_named_user(&child, "patient", "Léa Dupont", PATIENT_PW);
    instance.add_named_user(&parent, "patient", "Paul Dupont", PATIENT_PW);
    instance.run(&["representative", "add", A, &parent], None);
    let doctor = common::professional(&instance, "traitant", "Dr Traitant");
    let server = instance.start();
    for zip in [
        common::xdm_sample("BIO-CR-BIO_2024.01_TSH_1"),
        xdm_invisible_to_representatives("VSM_1.4_2022.01"),
    ] {
        let code =
            common::send_xdm(&instance, &server, (&doctor.address, PW), &child, &zip, "").await;
        assert_eq!(code, 250);
    }
    let store = open_store(&instance).await;
    let child_id = store.account_by_ins(A).await.unwrap().unwrap().id;
    let docs: Vec<(i64, String, Option<String>)> = sqlx::query_as(
        "SELECT id, title, confidentiality FROM documents WHERE patient_id = $1 ORDER BY id",
    )
    .bind(child_id)
    .fetch_all(store.pool())
    .await
    .unwrap();
    assert_eq!(docs.len(), 2, "{docs:?}");
    let (shown, hidden) = (&docs[0], &docs[1]);
    assert_eq!(hidden.2.as_deref(), Some("INVISIBLE_REPRESENTANTS_LEGAUX"));
    assert_ne!(shown.1, hidden.1);

    // Profile items that only the hidden document gave.
    let items: Vec<(String, Option<i64>)> =
        sqlx::query_as("SELECT label, document_id FROM profile_items WHERE patient_id = $1")
            .bind(child_id)
            .fetch_all(store.pool())
            .await
            .unwrap();
    let hidden_only_items: Vec<String> = items
        .iter()
        .filter(|(l, d)| {
            *d == Some(hidden.0) && !items.iter().any(|(o, e)| o == l && *e != Some(hidden.0))
        })
        .map(|(l, _)| l.clone())
        .collect();
    assert!(!hidden_only_items.is_empty(), "{items:?}");
    let threads: Vec<i64> = sqlx::query_scalar("SELECT id FROM threads WHERE patient_id = $1")
        .bind(child_id)
        .fetch_all(store.pool())
        .await
        .unwrap();
    let ca = instance.cert("ca.pem");
    let url = format!("https://localhost:{}", server.addr("https").port());
    // The child sees both messages.
    let b = Browser::start(&ca, Viewport::Desktop).await;
    browser_login(&b, &url, A, PATIENT_PW).await;
    let mut own_messages = 0;
    for t in &threads {
        b.goto(&format!("{url}/messagerie/{t}")).await;
        own_messages += b.count("li.message").await;
    }
    assert_eq!(own_messages, 2);
    b.close().await;
    for viewport in [Viewport::Desktop, Viewport::Phone] {
        let b = Browser::start(&ca, viewport).await;
        browser_login(&b, &url, B, PATIENT_PW).await;
        // Their own space first, with the switcher.
        let text = b.main_text().await;
        assert!(!text.contains("Dr Traitant"), "{text}");
        assert_eq!(b.count("form.espaces select option").await, 2);
        check_page(&b, "representant-moi").await;
        b.js(&format!(
            "document.querySelector('#espace').value = '{child_id}';"
        ))
        .await;
        b.navigate_by("form.espaces button[type=submit]").await;
        let text = b.main_text().await;
        assert!(
            text.contains("Vous consultez l'espace de Léa Dupont"),
            "{text}"
        );
        assert!(text.contains("Dr Traitant"), "{text}");
        check_page(&b, "representant-messagerie").await;
        // The message that carried the hidden document is left out.
        let mut shown_messages = 0;
        for t in &threads {
            b.goto(&format!("{url}/messagerie/{t}")).await;
            shown_messages += b.count("li.message").await;
        }
        assert_eq!(shown_messages, 1);
        b.goto(&format!("{url}/dossier")).await;
        let text = b.main_text().await;
        assert!(text.contains(&shown.1), "{text}");
        assert!(!text.contains(&hidden.1), "{text}");
        check_page(&b, "representant-dossier").await;
        // The hidden document is not found, even by its address.
        b.goto(&format!("{url}/dossier/{}", hidden.0)).await;
        let text = b.main_text().await;
        assert!(text.contains("Page introuvable"), "{text}");
        b.goto(&format!("{url}/dossier/{}", shown.0)).await;
        let text = b.main_text().await;
        assert!(!text.contains("Page introuvable"), "{text}");
        // Nor in the profile: nothing that came from the hidden document.
        b.goto(&format!("{url}/profil")).await;
        let text = b.main_text().await;
        for label in &hidden_only_items {
            assert!(!text.contains(label.as_str()), "{label} in {text}");
        }
        check_page(&b, "representant-profil").await;
        // The child's settings stay theirs.
        b.goto(&format!("{url}/parametres")).await;
        assert!(!b.main_text().await.contains("Fermer mon espace"));
        // Nor the child's whole-space export: it holds the hidden documents too.
        b.goto(&format!("{url}/parametres/export")).await;
        let text = b.main_text().await;
        assert!(text.contains("Revenez à votre propre espace"), "{text}");
        // Back to their own space.
        b.goto(&format!("{url}/messagerie")).await;
        b.js("document.querySelector('#espace').value = 'moi';")
            .await;
        b.navigate_by("form.espaces button[type=submit]").await;
        let text = b.main_text().await;
        assert!(!text.contains("Dr Traitant"), "{text}");
        b.close().await;
    }
    // The trail: requests in the child's space by the representative.
    let acts: Vec<(String, String)> = sqlx::query_as(
        "SELECT actor, detail FROM audit_log WHERE action = 'representative.act' AND target = $1",
    )
    .bind(&child)
    .fetch_all(store.pool())
    .await
    .unwrap();
    assert!(acts.iter().all(|(actor, _)| *actor == parent), "{acts:?}");
    for path in [
        "GET /messagerie",
        "GET /dossier",
        &format!("GET /dossier/{}", hidden.0),
    ] {
        assert!(
            acts.iter().any(|(_, d)| d == path),
            "{path} not in {acts:?}"
        );
    }
    store.close().await;
}
