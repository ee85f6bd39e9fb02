//! Who may read a patient's record, end to end: practice software calls the
//! professionals' API over mutual TLS (one client certificate per professional,
//! issued by the dev CA), the access rules decide, every attempt lands in the
//! audit trail; the trail is append-only and `mes audit verify` finds tampering.

mod common;

use std::process::Command;

use common::{Db, Instance, Pro, api, api_login, mes, pro_get, professional};

const PW: &str = "correct horse battery staple";
const JEAN: &str = "jean.dupont@hopital-a.mes.test";
const INS: &str = "279035121518989";
const PATIENT: &str = "279035121518989@patient.mes.test";
const PATIENT_PW: &str = "jardin des plantes 7";

fn audit_rows(instance: &Instance) -> usize {
    // Through the binary's own store, as the operator would.
    let out = mes(
        &[
            "--config",
            instance.config.to_str().unwrap(),
            "audit",
            "verify",
        ],
        None,
    );
    assert!(out.0, "{}", out.2);
    out.1
        .split("audit log intact: ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap()
}

/// (what, who, consents all allowed?, path, JSON body of a POST (None: GET),
/// expected status, documents listed when 200)
type Case<'a> = (
    &'a str,
    &'a Pro,
    bool,
    String,
    Option<&'a str>,
    u16,
    Option<usize>,
);

async fn rules_hold_on_the_professionals_api(db: Db) {
    let instance = Instance::new(db).await;
    instance.add_named_user(JEAN, "professional", "Dr Jean Dupont", PW);
    instance.add_user(PATIENT, "patient", PATIENT_PW);
    let authorised = professional(&instance, "traitant", "Dr Médecin Traitant");
    let stranger = professional(&instance, "inconnu", "Dr Inconnu");
    let blocked = professional(&instance, "bloque", "Dr Bloqué");
    let care = professional(&instance, "equipe", "Dr Équipe");
    let regulator = professional(&instance, "samu", "Dr Régulateur");
    instance.run(&["user", "regulator", &regulator.address], None);
    instance.run(&["careteam", "member", "CHU-TEST", &care.address], None);
    instance.run(&["careteam", "patient", "CHU-TEST", PATIENT], None);
    let server = instance.start();
    let ca = instance.cert("ca.pem");
    for name in ["VSM_1.4_2022.01", "BIO-CR-BIO_2024.01_TSH_1"] {
        let code = common::send_xdm(
            &instance,
            &server,
            (JEAN, PW),
            PATIENT,
            &common::xdm_sample(name),
            "",
        )
        .await;
        assert_eq!(code, 250);
    }
    let token = api_login(&server, &ca, INS, PATIENT_PW);
    let set = |address: &str, status: &str| {
        let (code, body) = api(
            &server,
            &ca,
            "PUT",
            "/api/v1/professionals",
            Some(&token),
            Some(&serde_json::json!({"address": address, "status": status}).to_string()),
        );
        assert_eq!(code, 204, "{body}");
    };
    set(&authorised.address, "authorised");
    set(&blocked.address, "authorised");
    set(&blocked.address, "blocked");
    // Hide the biology report from professionals.
    let (_, docs) = api(&server, &ca, "GET", "/api/v1/documents", Some(&token), None);
    let bio = docs["documents"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["category"] == "BIOLOGIE")
        .unwrap()["id"]
        .as_i64()
        .unwrap();
    let (code, _) = api(
        &server,
        &ca,
        "PUT",
        &format!("/api/v1/documents/{bio}/hidden"),
        Some(&token),
        Some(r#"{"hidden": true}"#),
    );
    assert_eq!(code, 200);

    let list = format!("/api/pro/v1/patients/{INS}/documents");
    let bio_content = format!("/api/pro/v1/patients/{INS}/documents/{bio}/content");
    let consents = |regulator: bool, break_glass: bool, masked: bool| {
        let (code, _) = api(
            &server,
            &ca,
            "PUT",
            "/api/v1/consents",
            Some(&token),
            Some(&serde_json::json!({"regulator": regulator, "break_glass": break_glass, "masked": masked}).to_string()),
        );
        assert_eq!(code, 200);
    };
    // Breaking the glass is a POST; reads then say `?mode=break_glass`.
    let open = format!("/api/pro/v1/patients/{INS}/break-glass");
    let reason = Some(r#"{"reason": "patient inconscient aux urgences"}"#);
    let btg = "?mode=break_glass";
    let cases: Vec<Case> = vec![
        (
            "authorised",
            &authorised,
            true,
            list.clone(),
            None,
            200,
            Some(1),
        ),
        (
            "authorised, hidden document",
            &authorised,
            true,
            bio_content.clone(),
            None,
            403,
            None,
        ),
        (
            "unauthorised",
            &stranger,
            true,
            list.clone(),
            None,
            403,
            None,
        ),
        ("blocked", &blocked, true, list.clone(), None, 403, None),
        (
            "blocked breaking the glass",
            &blocked,
            true,
            open.clone(),
            reason,
            403,
            None,
        ),
        ("care team", &care, true, list.clone(), None, 200, Some(1)),
        (
            "regulator",
            &regulator,
            true,
            format!("{list}?mode=regulation"),
            None,
            200,
            Some(2),
        ),
        (
            "regulator refused",
            &regulator,
            false,
            format!("{list}?mode=regulation"),
            None,
            403,
            None,
        ),
        (
            "non-regulator regulating",
            &stranger,
            true,
            format!("{list}?mode=regulation"),
            None,
            403,
            None,
        ),
        (
            "break-glass read before breaking the glass",
            &stranger,
            true,
            format!("{list}{btg}"),
            None,
            403,
            None,
        ),
        (
            "a GET with a reason does not break the glass",
            &stranger,
            true,
            format!("{list}{btg}&reason=patient%20inconscient"),
            None,
            403,
            None,
        ),
        (
            "break glass refused",
            &stranger,
            false,
            open.clone(),
            reason,
            403,
            None,
        ),
        (
            "break glass",
            &stranger,
            true,
            open.clone(),
            reason,
            201,
            None,
        ),
        (
            "break-glass read",
            &stranger,
            true,
            format!("{list}{btg}"),
            None,
            200,
            Some(2),
        ),
        (
            "break glass, hidden document",
            &stranger,
            true,
            format!("{bio_content}{btg}"),
            None,
            200,
            None,
        ),
        (
            "break-glass read, refused since",
            &stranger,
            false,
            format!("{list}{btg}"),
            None,
            403,
            None,
        ),
        (
            "break glass, hidden, masked refused",
            &stranger,
            false,
            format!("{bio_content}{btg}"),
            None,
            403,
            None,
        ),
    ];
    for (what, pro, allowed, path, json, status, listed) in cases {
        // "allowed" sets every consent; otherwise every consent is refused.
        consents(allowed, allowed, allowed);
        let before = audit_rows(&instance);
        let (code, body) = match json {
            Some(j) => {
                let (code, text) =
                    common::pro_request(&server, &instance, pro, "POST", &path, Some(j));
                (
                    code,
                    serde_json::from_str(&text).unwrap_or(serde_json::Value::Null),
                )
            }
            None => pro_get(&server, &instance, pro, &path),
        };
        assert_eq!(code, status, "{what}: {body}");
        if let Some(n) = listed {
            assert_eq!(
                body["documents"].as_array().unwrap().len(),
                n,
                "{what}: {body}"
            );
        }
        assert_eq!(
            audit_rows(&instance),
            before + 1,
            "{what}: one audit row per attempt"
        );
    }
    // Breaking the glass needs a written reason (asked before anything else).
    let (code, _) = common::pro_request(
        &server,
        &instance,
        &stranger,
        "POST",
        &open,
        Some(r#"{"reason": "  "}"#),
    );
    assert_eq!(code, 422);
    // Profile items read from a hidden document are hidden with it.
    let profile = format!("/api/pro/v1/patients/{INS}/profile");
    let has_plavix = |body: &serde_json::Value| {
        body["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|i| i["label"].as_str().unwrap_or("").starts_with("PLAVIX"))
    };
    let (code, body) = pro_get(&server, &instance, &authorised, &profile);
    assert_eq!(code, 200);
    assert!(has_plavix(&body), "{body}");
    let vsm = docs["documents"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["category"] == "SYNTHESE")
        .unwrap()["id"]
        .as_i64()
        .unwrap();
    let hide = |id: i64, hidden: bool| {
        let (code, _) = api(
            &server,
            &ca,
            "PUT",
            &format!("/api/v1/documents/{id}/hidden"),
            Some(&token),
            Some(&serde_json::json!({ "hidden": hidden }).to_string()),
        );
        assert_eq!(code, 200);
    };
    hide(vsm, true);
    let (_, body) = pro_get(&server, &instance, &authorised, &profile);
    assert!(!has_plavix(&body), "hidden with its document: {body}");
    hide(vsm, false);

    // Unblocking restores nothing by itself.
    set(&blocked.address, "removed");
    consents(true, true, false);
    assert_eq!(pro_get(&server, &instance, &blocked, &list).0, 403);
    // Without a certificate, no access at all.
    let (code, _) = api(&server, &ca, "GET", &list, None, None);
    assert_eq!(code, 401);

    // The patient sees all of it, with the break-glass reason.
    let (_, history) = api(
        &server,
        &ca,
        "GET",
        "/api/v1/access-history",
        Some(&token),
        None,
    );
    let entries = history["entries"].as_array().unwrap();
    assert!(
        entries
            .iter()
            .any(|e| e["action"] == "Accès en urgence (bris de glace)"
                && e["reason"] == "patient inconscient aux urgences"
                && e["actor"] == "Dr Inconnu")
    );
    assert!(
        entries
            .iter()
            .any(|e| e["refused"] == true && e["actor"] == "Dr Bloqué")
    );
    let (_, only) = api(
        &server,
        &ca,
        "GET",
        "/api/v1/access-history?type=systeme",
        Some(&token),
        None,
    );
    assert!(
        only["entries"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["actor_type"] == "systeme")
    );

    // Deposit through the API: same indexing as by mail, same rules.
    let deposit = |pro: &Pro, zip: &[u8]| {
        let file = instance.root().join("deposit.zip");
        std::fs::write(&file, zip).unwrap();
        let out = Command::new("curl")
            .args([
                "-sS",
                "-o",
                "/dev/null",
                "-w",
                "%{http_code}",
                "--cacert",
                ca.to_str().unwrap(),
                "--cert",
                pro.cert.to_str().unwrap(),
                "--key",
                pro.key.to_str().unwrap(),
                "-H",
                "content-type: application/zip",
                "--data-binary",
                &format!("@{}", file.display()),
                &format!("https://localhost:{}{list}", server.addr("https").port()),
            ])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).parse::<u16>().unwrap()
    };
    assert_eq!(
        deposit(&authorised, &common::xdm_sample("LDL-SES_2022.01")),
        201
    );
    assert_eq!(
        deposit(&stranger, &common::xdm_sample("LDL-SES_2022.01")),
        403
    );
    let (_, docs) = api(&server, &ca, "GET", "/api/v1/documents", Some(&token), None);
    assert_eq!(docs["documents"].as_array().unwrap().len(), 3);
    // Its author withdraws it the same way (ANS action D); once gone, a
    // second withdrawal names an unknown document.
    let withdrawal = common::xdm_withdrawal("LDL-SES_2022.01");
    assert_eq!(deposit(&authorised, &withdrawal), 201);
    let (_, docs) = api(&server, &ca, "GET", "/api/v1/documents", Some(&token), None);
    assert_eq!(docs["documents"].as_array().unwrap().len(), 2, "{docs}");
    assert_eq!(deposit(&authorised, &withdrawal), 403);
}

async fn audit_log_is_append_only_and_verified(db: Db) {
    let instance = Instance::new(db).await;
    instance.add_user(PATIENT, "patient", PATIENT_PW);
    instance.add_user(JEAN, "professional", PW);
    let config = instance.config.to_str().unwrap().to_string();
    let (ok, out, err) = mes(&["--config", &config, "audit", "verify"], None);
    assert!(ok, "{err}");
    assert!(out.contains("audit log intact: 2 entries"), "{out}");

    let store = common::open_store(&instance).await;
    for sql in [
        "UPDATE audit_log SET detail = 'x' WHERE id = 1",
        "DELETE FROM audit_log WHERE id = 1",
    ] {
        let refused = sqlx::query(sql).execute(store.pool()).await;
        let e = refused.expect_err(sql).to_string();
        assert!(e.contains("append-only"), "{sql}: {e}");
    }
    // Someone with the database's owner rights gets past the trigger...
    let disable = match db {
        Db::Sqlite => "DROP TRIGGER audit_log_no_update",
        Db::Postgres => "ALTER TABLE audit_log DISABLE TRIGGER audit_log_no_update",
    };
    sqlx::query(disable).execute(store.pool()).await.unwrap();
    sqlx::query("UPDATE audit_log SET actor = 'quelqu''un' WHERE id = 2")
        .execute(store.pool())
        .await
        .unwrap();
    // ...and the chain names the row.
    let (ok, _, err) = mes(&["--config", &config, "audit", "verify"], None);
    assert!(!ok);
    assert!(err.contains("broken at entry 2"), "{err}");
}

/// The server seals the trail's head with a key outside the database: cutting
/// entries off the end, even with the head row rewritten, or forging a
/// checkpoint without the key, is found by `mes audit verify`, as is a
/// published head that is no longer in the trail.
async fn audit_trail_is_sealed(db: Db) {
    let instance = Instance::new(db).await;
    instance.edit_config(|t| t.replacen("[audit]\n", "[audit]\ncheckpoint_secs = 1\n", 1));
    instance.add_user(PATIENT, "patient", PATIENT_PW);
    instance.add_user(JEAN, "professional", PW);
    let config = instance.config.to_str().unwrap().to_string();
    let head = instance.run(&["audit", "head"], None).trim().to_string();
    let (id, hash) = head.split_once(':').expect("ID:HASH");
    assert_eq!(id, "2", "{head}");
    assert_eq!(hash.len(), 64, "{head}");
    let mut server = instance.start();
    let store = common::open_store(&instance).await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM audit_checkpoints")
            .fetch_one(store.pool())
            .await
            .unwrap();
        if n > 0 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no checkpoint written"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    server.terminate(std::time::Duration::from_secs(10));
    let anchor = format!("--anchor={head}");
    let (ok, out, err) = mes(&["--config", &config, "audit", "verify", &anchor], None);
    assert!(ok, "{err}");
    assert!(out.contains("audit log intact: 2 entries, 1 sealed checkpoints checked, 0 entries after the last checkpoint, 1 anchors"), "{out}");

    // Someone with the database's owner rights cuts the last entry off and
    // points the head at the one before.
    let disable = match db {
        Db::Sqlite => "DROP TRIGGER audit_log_no_delete",
        Db::Postgres => "ALTER TABLE audit_log DISABLE TRIGGER audit_log_no_update",
    };
    sqlx::query(disable).execute(store.pool()).await.unwrap();
    sqlx::query("DELETE FROM audit_log WHERE id = 2")
        .execute(store.pool())
        .await
        .unwrap();
    sqlx::query("UPDATE audit_head SET hash = (SELECT hash FROM audit_log WHERE id = 1)")
        .execute(store.pool())
        .await
        .unwrap();
    let (ok, _, err) = mes(&["--config", &config, "audit", "verify"], None);
    assert!(!ok);
    assert!(
        err.contains("entry 2, sealed by a checkpoint, is missing"),
        "{err}"
    );
    // Without the checkpoints, the published head still tells.
    sqlx::query("DELETE FROM audit_checkpoints")
        .execute(store.pool())
        .await
        .unwrap();
    let (ok, _, err) = mes(&["--config", &config, "audit", "verify", &anchor], None);
    assert!(!ok);
    assert!(err.contains("anchored entry 2 is missing"), "{err}");
    // A checkpoint made without the key does not verify.
    sqlx::query(
        "INSERT INTO audit_checkpoints (at, entry_id, entry_hash, mac) \
         SELECT 1, id, hash, 'deadbeef' FROM audit_log WHERE id = 1",
    )
    .execute(store.pool())
    .await
    .unwrap();
    let (ok, _, err) = mes(&["--config", &config, "audit", "verify"], None);
    assert!(!ok);
    assert!(err.contains("invalid seal"), "{err}");
}

both_backends!(
    rules_hold_on_the_professionals_api,
    audit_log_is_append_only_and_verified,
    audit_trail_is_sealed
);

/// `mes init` and the store keep secrets private whatever the umask: the data
/// folder 0700, the database and the audit key 0600.
#[tokio::test]
async fn files_are_private_whatever_the_umask() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("mes");
    let out = Command::new("sh")
        .args([
            "-c",
            &format!(
                "umask 000 && exec {} init {} --domain a.mes.test --hostname mx.a.mes.test",
                common::MES,
                root.display()
            ),
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let config = root.join("mes.toml");
    let out = Command::new("sh")
        .args([
            "-c",
            &format!(
                "umask 000 && exec {} --config {} user list",
                common::MES,
                config.display()
            ),
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&root.join("data")), 0o700);
    assert_eq!(mode(&root.join("data/mes.db")), 0o600);
    assert_eq!(mode(&root.join("certs/audit.key")), 0o600);
    for extra in ["data/mes.db-wal", "data/mes.db-shm"] {
        let p = root.join(extra);
        if p.exists() {
            assert_eq!(mode(&p), 0o600, "{extra}");
        }
    }
}

/// A bearer token needs the password and a current TOTP code; an emergency
/// access through it sends the patient one content-free notice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn second_factor_tokens_and_emergency_notice() {
    let (port, notices) = common::smtp_sink().await;
    let instance = Instance::new(Db::Sqlite).await;
    instance.edit_config(|t| {
        t.replacen(
            "[notify]\n",
            &format!("[notify]\nsmarthost = \"127.0.0.1:{port}\"\nstarttls = false\n"),
            1,
        )
    });
    instance.add_user(PATIENT, "patient", PATIENT_PW);
    let urgentiste = professional(&instance, "urgences", "Dr Urgentiste");
    let out = instance.run(&["user", "totp", &urgentiste.address], None);
    let secret = out
        .lines()
        .find_map(|l| l.strip_prefix("TOTP secret: "))
        .and_then(|l| l.split_whitespace().next())
        .unwrap()
        .to_string();
    assert!(out.contains("otpauth://totp/MES:"), "{out}");
    // The database keeps it encrypted (key outside the database), never in clear.
    {
        let store = common::open_store(&instance).await;
        let stored: String =
            sqlx::query_scalar("SELECT totp_secret FROM accounts WHERE address = $1")
                .bind(&urgentiste.address)
                .fetch_one(store.pool())
                .await
                .unwrap();
        assert!(stored.starts_with("v1:"), "{stored}");
        assert!(!stored.contains(&secret), "{stored}");
        store.close().await;
    }
    let server = instance.start();
    let ca = instance.cert("ca.pem");
    let token = api_login(&server, &ca, INS, PATIENT_PW);
    let (code, _) = api(
        &server,
        &ca,
        "PUT",
        "/api/v1/settings/notifications",
        Some(&token),
        Some(r#"{"email": "marie@exemple.fr", "enabled": true}"#),
    );
    assert_eq!(code, 200);

    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let good = mes::identity::totp::code_at(&secret, now).unwrap();
    let wrong = format!("{:06}", (good.parse::<u32>().unwrap() + 1) % 1_000_000);
    let ask = |code: &str, password: &str| {
        api(
            &server,
            &ca,
            "POST",
            "/api/pro/v1/token",
            None,
            Some(&serde_json::json!({"address": urgentiste.address, "password": password, "code": code}).to_string()),
        )
    };
    assert_eq!(ask(&wrong, PW).0, 401, "a wrong code");
    assert_eq!(ask(&good, "not the password").0, 401, "a wrong password");
    let (code, body) = ask(&good, PW);
    assert_eq!(code, 200, "{body}");
    let bearer = body["token"].as_str().unwrap().to_string();
    assert_eq!(ask(&good, PW).0, 401, "a code is accepted once");

    let list = format!("/api/pro/v1/patients/{INS}/documents");
    let (code, _) = api(&server, &ca, "GET", &list, Some(&bearer), None);
    assert_eq!(code, 403, "not authorised by the patient");
    let (code, body) = api(
        &server,
        &ca,
        "POST",
        &format!("/api/pro/v1/patients/{INS}/break-glass"),
        Some(&bearer),
        Some(r#"{"reason": "détresse respiratoire"}"#),
    );
    assert_eq!(code, 201, "{body}");
    let (code, body) = api(
        &server,
        &ca,
        "GET",
        &format!("{list}?mode=break_glass"),
        Some(&bearer),
        None,
    );
    assert_eq!(code, 200, "{body}");
    // A patient's token is no professional token.
    assert_eq!(api(&server, &ca, "GET", &list, Some(&token), None).0, 401);

    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while notices.lock().unwrap().is_empty() && std::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let got = notices.lock().unwrap().clone();
    assert_eq!(got.len(), 1, "{got:?}");
    assert!(got[0].contains("urgence"), "{}", got[0]);
    assert!(
        !got[0].contains("Urgentiste") && !got[0].contains("respiratoire"),
        "content-free: {}",
        got[0]
    );
    // The audit row names the professional's RPPS/profession fields and the reason.
    let (_, history) = api(
        &server,
        &ca,
        "GET",
        "/api/v1/access-history",
        Some(&token),
        None,
    );
    assert!(
        history["entries"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["reason"] == "détresse respiratoire" && e["actor"] == "Dr Urgentiste")
    );
}

/// A valid INS (right key) that no account has.
fn unknown_ins() -> String {
    let nir: u64 = 1_850_575_123_456;
    format!("{nir}{:02}", 97 - nir % 97)
}

/// Waits until `notices` holds something (at most 10 s), then a little more
/// for any later one.
async fn settled(notices: &std::sync::Arc<std::sync::Mutex<Vec<String>>>) -> Vec<String> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while notices.lock().unwrap().is_empty() && std::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    notices.lock().unwrap().clone()
}

/// Break-glass: a POST, only by professionals whose profession may, at most
/// `access.break_glass_per_hour`; two accesses in one window make one notice
/// and two lines of history; unknown and refused INS answer alike.
async fn break_glass_is_a_rate_limited_post_for_eligible_professions(db: Db) {
    let (port, notices) = common::smtp_sink().await;
    let instance = Instance::new(db).await;
    instance.edit_config(|t| {
        t.replacen(
            "[notify]\n",
            &format!("[notify]\nsmarthost = \"127.0.0.1:{port}\"\nstarttls = false\n"),
            1,
        )
        .replacen("[access]\n", "[access]\nbreak_glass_per_hour = 2\n", 1)
    });
    instance.add_user(PATIENT, "patient", PATIENT_PW);
    let medecin = professional(&instance, "urgentiste", "Dr Urgentiste");
    let other = professional(&instance, "autre", "Dr Autre");
    let infirmiere = common::professional_as(
        &instance,
        "ide",
        "Mme Infirmière",
        "professional",
        Some("Infirmière anesthésiste"),
    );
    let kine = common::professional_as(
        &instance,
        "kine",
        "M. Kiné",
        "professional",
        Some("Masseur-kinésithérapeute"),
    );
    let dpi = common::professional_as(
        &instance,
        "dpi",
        "DPI Hôpital",
        "application",
        Some("Médecin"),
    );
    let server = instance.start();
    let ca = instance.cert("ca.pem");
    let token = api_login(&server, &ca, INS, PATIENT_PW);
    let (code, _) = api(
        &server,
        &ca,
        "PUT",
        "/api/v1/settings/notifications",
        Some(&token),
        Some(r#"{"email": "marie@exemple.fr", "enabled": true}"#),
    );
    assert_eq!(code, 200);
    let open_of = |ins: &str| format!("/api/pro/v1/patients/{ins}/break-glass");
    let open = open_of(INS);
    let unknown = open_of(&unknown_ins());
    let call = |pro: &Pro, method: &str, path: &str| {
        let json = (method == "POST").then_some(r#"{"reason": "patient inconscient"}"#);
        common::pro_request(&server, &instance, pro, method, path, json)
    };

    // Not for an application account, nor for a profession that may not,
    // whatever the INS.
    for pro in [&dpi, &kine] {
        let (code, body) = call(pro, "POST", &open);
        assert_eq!(code, 403, "{body}");
        assert!(body.contains("may not break the glass"), "{body}");
        assert_eq!(call(pro, "POST", &unknown), (code, body));
    }
    // A GET never breaks the glass, with or without a reason.
    let list = format!("/api/pro/v1/patients/{INS}/documents");
    let (code, _) = call(
        &medecin,
        "GET",
        &format!("{list}?mode=break_glass&reason=urgence"),
    );
    assert_eq!(code, 403);
    assert_eq!(call(&medecin, "GET", &open).0, 405);
    // An infirmière may.
    assert_eq!(call(&infirmiere, "POST", &open).0, 201);
    // A médecin breaks it twice within the notice window, and reads.
    let (code, body) = call(&medecin, "POST", &open);
    assert_eq!(code, 201, "{body}");
    assert_eq!(
        call(&medecin, "GET", &format!("{list}?mode=break_glass")).0,
        200
    );
    assert_eq!(call(&medecin, "POST", &open).0, 201);
    // Then the hourly limit, told whatever the INS.
    let (code, body) = call(&medecin, "POST", &open);
    assert_eq!(code, 429, "{body}");
    assert!(body.contains("too many break-glass accesses"), "{body}");
    assert_eq!(call(&medecin, "POST", &unknown), (code, body));

    // Three openings, one notice; every access in the history.
    let got = settled(&notices).await;
    assert_eq!(got.len(), 1, "{got:?}");
    let (_, history) = api(
        &server,
        &ca,
        "GET",
        "/api/v1/access-history",
        Some(&token),
        None,
    );
    let urgent = |actor: &str| {
        history["entries"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| {
                e["action"] == "Accès en urgence (bris de glace)"
                    && e["actor"] == actor
                    && e["reason"] == "patient inconscient"
            })
            .count()
    };
    assert_eq!(
        urgent("Dr Urgentiste"),
        3,
        "two openings and a read: {history}"
    );
    assert_eq!(urgent("Mme Infirmière"), 1, "{history}");
    assert!(
        history["entries"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["refused"] == true && e["actor"] == "M. Kiné"),
        "the refused attempt is on the patient's trail too: {history}"
    );

    // The patient refuses break-glass: refused and unknown INS, and a
    // malformed one, answer byte for byte alike, for a read and for breaking
    // the glass.
    let (code, _) = api(
        &server,
        &ca,
        "PUT",
        "/api/v1/consents",
        Some(&token),
        Some(r#"{"regulator": true, "break_glass": false, "masked": false}"#),
    );
    assert_eq!(code, 200);
    let refused = call(&other, "POST", &open);
    assert_eq!(refused.0, 403, "{}", refused.1);
    assert_eq!(call(&other, "POST", &unknown), refused);
    assert_eq!(call(&other, "POST", &open_of("123")), refused);
    let read = call(&other, "GET", &list);
    assert_eq!(read, refused);
    assert_eq!(
        call(
            &other,
            "GET",
            &format!("/api/pro/v1/patients/{}/documents", unknown_ins())
        ),
        read
    );
    assert_eq!(
        call(
            &other,
            "GET",
            &format!("/api/pro/v1/patients/{}/profile", unknown_ins())
        ),
        read
    );
}

/// `mes user passwd` and `mes user disable` end the account's sessions and
/// tokens at once; a session also ends `patients.session_max_secs` after login.
async fn operator_changes_end_sessions(db: Db) {
    let instance = Instance::new(db).await;
    instance.add_user(PATIENT, "patient", PATIENT_PW);
    let pro = professional(&instance, "urgences", "Dr Urgentiste");
    let out = instance.run(&["user", "totp", &pro.address], None);
    let secret = out
        .lines()
        .find_map(|l| l.strip_prefix("TOTP secret: "))
        .and_then(|l| l.split_whitespace().next())
        .unwrap()
        .to_string();
    // A logged-in IMAP session rechecks its account every second.
    instance.edit_config(|t| t.replacen("[imap]\n", "[imap]\nrecheck_secs = 1\n", 1));
    let mut server = instance.start();
    let ca = instance.cert("ca.pem");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let pro_token = |server: &common::Server, password: &str, at: u64| {
        let code = mes::identity::totp::code_at(&secret, at).unwrap();
        let (status, body) = api(
            server,
            &ca,
            "POST",
            "/api/pro/v1/token",
            None,
            Some(
                &serde_json::json!({"address": pro.address, "password": password, "code": code})
                    .to_string(),
            ),
        );
        assert_eq!(status, 200, "{body}");
        body["token"].as_str().unwrap().to_string()
    };
    let pro_list = format!("/api/pro/v1/patients/{INS}/documents");
    let threads = "/api/v1/threads";

    // The patient's token ends with `mes user passwd`.
    let patient = api_login(&server, &ca, INS, PATIENT_PW);
    assert_eq!(
        api(&server, &ca, "GET", threads, Some(&patient), None).0,
        200
    );
    instance.run(
        &["user", "passwd", PATIENT, "--password-stdin"],
        Some("un autre mot de passe 8\n"),
    );
    assert_eq!(
        api(&server, &ca, "GET", threads, Some(&patient), None).0,
        401
    );
    api_login(&server, &ca, INS, "un autre mot de passe 8");

    // A professional's token and IMAP session end with `mes user passwd`,
    // then `mes user disable`.
    let bearer = pro_token(&server, PW, now);
    let mut imap = common::imap_login(server.addr("imaps"), &ca, &pro.address, PW).await;
    imap.expect("SELECT INBOX", "OK").await;
    let mut smtp = common::connect_tls(server.addr("submissions"), common::client_tls(&ca, None))
        .await
        .unwrap();
    smtp.expect("EHLO client.test", 250).await;
    smtp.expect(
        &format!("AUTH PLAIN {}", common::plain(&pro.address, PW)),
        235,
    )
    .await;
    smtp.expect(&format!("MAIL FROM:<{}>", pro.address), 250)
        .await;
    smtp.expect("RSET", 250).await;
    assert_eq!(
        api(&server, &ca, "GET", &pro_list, Some(&bearer), None).0,
        403
    );
    instance.run(
        &["user", "passwd", &pro.address, "--password-stdin"],
        Some("nouveau mot de passe pro 9\n"),
    );
    assert_eq!(
        api(&server, &ca, "GET", &pro_list, Some(&bearer), None).0,
        401
    );
    // The SMTP session ends at its next transaction.
    let reply = smtp
        .expect(&format!("MAIL FROM:<{}>", pro.address), 421)
        .await;
    assert!(format!("{reply:?}").contains("Session ended"), "{reply:?}");
    // The IMAP session ends at its first command after a recheck (every
    // second here), and the old password is refused.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    imap.send_raw(b"a9 NOOP\r\n").await;
    let bye = imap.read_line().await;
    assert!(
        bye.starts_with("* BYE [UNAVAILABLE] Session ended"),
        "{bye}"
    );
    let mut imap = common::imap_tls(server.addr("imaps"), &ca).await;
    imap.expect(&format!("LOGIN {} \"{PW}\"", pro.address), "NO")
        .await;
    let mut imap = common::imap_login(
        server.addr("imaps"),
        &ca,
        &pro.address,
        "nouveau mot de passe pro 9",
    )
    .await;
    imap.expect("SELECT INBOX", "OK").await;
    imap.send_raw(b"i1 IDLE\r\n").await;
    assert!(imap.read_line().await.starts_with("+ "));
    // (the next time step: a code is accepted once)
    let bearer = pro_token(&server, "nouveau mot de passe pro 9", now + 30);
    assert_eq!(
        api(&server, &ca, "GET", &pro_list, Some(&bearer), None).0,
        403
    );
    instance.run(&["user", "disable", &pro.address], None);
    assert_eq!(
        api(&server, &ca, "GET", &pro_list, Some(&bearer), None).0,
        401
    );
    // The idling IMAP session is told within a poll and closed.
    let bye = imap.read_line().await;
    assert!(
        bye.starts_with("* BYE [UNAVAILABLE] Session ended"),
        "{bye}"
    );

    // An absolute lifetime, however active the session.
    server.terminate(std::time::Duration::from_secs(10));
    instance.edit_config(|t| t.replacen("[patients]\n", "[patients]\nsession_max_secs = 3\n", 1));
    let server = instance.start();
    let patient = api_login(&server, &ca, INS, "un autre mot de passe 8");
    for _ in 0..3 {
        assert_eq!(
            api(&server, &ca, "GET", threads, Some(&patient), None).0,
            200
        );
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
    tokio::time::sleep(std::time::Duration::from_millis(2500)).await;
    assert_eq!(
        api(&server, &ca, "GET", threads, Some(&patient), None).0,
        401
    );
}

both_backends!(
    break_glass_is_a_rate_limited_post_for_eligible_professions,
    operator_changes_end_sessions
);

/// A TOTP secret stored in clear (before encryption) is encrypted by the next
/// start, under the key outside the database, for its own account only.
#[tokio::test]
async fn clear_totp_secrets_are_encrypted_at_start() {
    let instance = Instance::new(Db::Sqlite).await;
    let pro = professional(&instance, "urgences", "Dr Urgentiste");
    let store = common::open_store(&instance).await;
    store
        .set_totp_secret(&pro.address, Some("JBSWY3DPEHPK3PXP"))
        .await
        .unwrap();
    let mut server = instance.start();
    server.terminate(std::time::Duration::from_secs(10));
    let stored: String = sqlx::query_scalar("SELECT totp_secret FROM accounts WHERE address = $1")
        .bind(&pro.address)
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert!(stored.starts_with("v1:"), "{stored}");
    let key = mes::identity::secret_box::SecretBox::load_or_create(
        &instance.root().join("certs/secrets.key"),
    )
    .unwrap();
    assert_eq!(key.open(&pro.address, &stored).unwrap(), "JBSWY3DPEHPK3PXP");
    assert!(key.open(JEAN, &stored).is_err());
}
