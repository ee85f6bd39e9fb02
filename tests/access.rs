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
        .split_whitespace()
        .rev()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap()
}

/// (what, who, consents all allowed?, path, expected status, documents listed when 200)
type Case<'a> = (&'a str, &'a Pro, bool, String, u16, Option<usize>);

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
    // (who, consents allowed?, path, expected status, documents listed when 200)
    let btg = "?mode=break_glass&reason=patient%20inconscient%20aux%20urgences";
    let cases: Vec<Case> = vec![
        ("authorised", &authorised, true, list.clone(), 200, Some(1)),
        (
            "authorised, hidden document",
            &authorised,
            true,
            bio_content.clone(),
            403,
            None,
        ),
        ("unauthorised", &stranger, true, list.clone(), 403, None),
        ("blocked", &blocked, true, list.clone(), 403, None),
        (
            "blocked breaking the glass",
            &blocked,
            true,
            format!("{list}{btg}"),
            403,
            None,
        ),
        ("care team", &care, true, list.clone(), 200, Some(1)),
        (
            "regulator",
            &regulator,
            true,
            format!("{list}?mode=regulation"),
            200,
            Some(2),
        ),
        (
            "regulator refused",
            &regulator,
            false,
            format!("{list}?mode=regulation"),
            403,
            None,
        ),
        (
            "non-regulator regulating",
            &stranger,
            true,
            format!("{list}?mode=regulation"),
            403,
            None,
        ),
        (
            "break glass",
            &stranger,
            true,
            format!("{list}{btg}"),
            200,
            Some(2),
        ),
        (
            "break glass, hidden document",
            &stranger,
            true,
            format!("{bio_content}{btg}"),
            200,
            None,
        ),
        (
            "break glass refused",
            &stranger,
            false,
            format!("{list}{btg}"),
            403,
            None,
        ),
        (
            "break glass without reason",
            &stranger,
            true,
            format!("{list}?mode=break_glass"),
            403,
            None,
        ),
        (
            "break glass, hidden, masked refused",
            &stranger,
            false,
            format!("{bio_content}{btg}"),
            403,
            None,
        ),
    ];
    for (what, pro, allowed, path, status, listed) in cases {
        // "allowed" sets every consent; otherwise every consent is refused.
        consents(allowed, allowed, allowed);
        let before = audit_rows(&instance);
        let (code, body) = pro_get(&server, &instance, pro, &path);
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

both_backends!(
    rules_hold_on_the_professionals_api,
    audit_log_is_append_only_and_verified
);

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
        "GET",
        &format!("{list}?mode=break_glass&reason=d%C3%A9tresse%20respiratoire"),
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
