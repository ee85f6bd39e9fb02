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

    // After opening, opposing means closing: refused with that explanation.
    let (ok, _, err) = mes(&["--config", cfg, "oppose", A], None);
    assert!(!ok && err.contains("closing the space"), "{err}");
    // Activation works as for any patient account.
    instance.run(&["user", "activation", &format!("{A}@{pd}")], None);
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
    let err = mes::lifecycle::oppose(&timed, A, None, mes::lifecycle::Opponent::Operator)
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
