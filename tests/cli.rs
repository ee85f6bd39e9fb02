//! The command line as operators script it: init, config check, users, domains.

mod common;

use common::{mes, mes_ok};

fn init(dir: &std::path::Path) -> std::path::PathBuf {
    mes_ok(&["init", dir.to_str().unwrap()], None);
    dir.join("mes.toml")
}

#[test]
fn init_then_config_check_succeeds() {
    let tmp = tempfile::tempdir().unwrap();
    let config = init(&tmp.path().join("a"));
    let out = mes_ok(
        &["--config", config.to_str().unwrap(), "config", "check"],
        None,
    );
    assert!(out.contains("OK"), "{out}");
    for f in [
        "ca.pem",
        "ca.key",
        "server.pem",
        "server.key",
        "operator2.pem",
        "client.pem",
    ] {
        assert!(tmp.path().join("a/certs").join(f).is_file(), "{f} missing");
    }
    // MES_CONFIG works like --config.
    let out = std::process::Command::new(common::MES)
        .args(["config", "check"])
        .env("MES_CONFIG", &config)
        .output()
        .unwrap();
    assert!(out.status.success());
}

#[test]
fn init_refuses_to_overwrite_without_force() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("a");
    init(&dir);
    let (ok, _, err) = mes(&["init", dir.to_str().unwrap()], None);
    assert!(!ok);
    assert!(err.contains("already exists"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "one-line reason: {err}");
    mes_ok(&["init", dir.to_str().unwrap(), "--force"], None);
}

#[test]
fn init_with_ca_shares_the_trust_anchor() {
    let tmp = tempfile::tempdir().unwrap();
    let a = tmp.path().join("a");
    let b = tmp.path().join("b");
    init(&a);
    mes_ok(
        &[
            "init",
            b.to_str().unwrap(),
            "--domain",
            "hopital-b.mes.test",
            "--ca",
            a.to_str().unwrap(),
        ],
        None,
    );
    let ca_a = std::fs::read(a.join("certs/ca.pem")).unwrap();
    let ca_b = std::fs::read(b.join("certs/ca.pem")).unwrap();
    assert_eq!(ca_a, ca_b);
    let server_a = std::fs::read(a.join("certs/server.pem")).unwrap();
    let server_b = std::fs::read(b.join("certs/server.pem")).unwrap();
    assert_ne!(server_a, server_b);
}

fn check_fails(config: &std::path::Path, needle: &str) {
    let (ok, _, err) = mes(
        &["--config", config.to_str().unwrap(), "config", "check"],
        None,
    );
    assert!(!ok, "config check should fail");
    assert!(err.contains(needle), "expected {needle:?} in {err:?}");
    assert_eq!(err.trim().lines().count(), 1, "one-line reason: {err}");
}

#[test]
fn bad_configurations_are_named() {
    let tmp = tempfile::tempdir().unwrap();
    let config = init(&tmp.path().join("a"));
    let good = std::fs::read_to_string(&config).unwrap();

    std::fs::write(
        &config,
        good.replace("[listen]\n", "[listen]\nsmtp_port = 25\n"),
    )
    .unwrap();
    check_fails(&config, "smtp_port");

    std::fs::write(&config, good.replace("127.0.0.1:2587", "127.0.0.1:70000")).unwrap();
    check_fails(&config, "listen.submission");

    std::fs::write(
        &config,
        good.replace("certs/server.key", "certs/missing.key"),
    )
    .unwrap();
    check_fails(&config, "missing.key");

    std::fs::write(
        &config,
        good.replace("# max_recipients = 100", "max_recipients = \"many\""),
    )
    .unwrap();
    check_fails(&config, "max_recipients");
}

#[test]
fn users_and_domains() {
    let tmp = tempfile::tempdir().unwrap();
    let config = init(&tmp.path().join("a"));
    let c = config.to_str().unwrap();
    let out = mes_ok(
        &[
            "--config",
            c,
            "user",
            "add",
            "Jean.Dupont@Hopital-A.mes.test",
            "--kind",
            "professional",
            "--name",
            "Dr Jean Dupont",
            "--profession",
            "Médecin",
            "--rpps",
            "10001234567",
        ],
        None,
    );
    assert!(
        out.contains("password:"),
        "a generated password is printed once: {out}"
    );
    mes_ok(
        &[
            "--config",
            c,
            "user",
            "add",
            "279035121518989@patient.mes.test",
            "--kind",
            "patient",
            "--password-stdin",
        ],
        Some("a long patient password\n"),
    );
    // Wrong INS key, patient outside a patient domain, professional in a patient domain.
    for (addr, kind, needle) in [
        ("279035121518988@patient.mes.test", "patient", "INS"),
        (
            "279035121518989@hopital-a.mes.test",
            "patient",
            "patient domain",
        ),
        ("marie@patient.mes.test", "professional", "patient domain"),
        ("x@unknown.mes.test", "professional", "not hosted"),
    ] {
        let (ok, _, err) = mes(&["--config", c, "user", "add", addr, "--kind", kind], None);
        assert!(!ok, "{addr} should be refused");
        assert!(err.contains(needle), "{addr}: {err}");
    }
    let (ok, _, err) = mes(
        &[
            "--config",
            c,
            "user",
            "add",
            "a@hopital-a.mes.test",
            "--kind",
            "doctor",
        ],
        None,
    );
    assert!(!ok && err.contains("doctor"), "{err}");

    let list = mes_ok(&["--config", c, "user", "list"], None);
    assert!(
        list.contains("jean.dupont@hopital-a.mes.test\tprofessional\tDr Jean Dupont"),
        "{list}"
    );
    assert!(
        list.contains("279035121518989@patient.mes.test\tpatient"),
        "{list}"
    );

    mes_ok(
        &[
            "--config",
            c,
            "user",
            "passwd",
            "jean.dupont@hopital-a.mes.test",
            "--password-stdin",
        ],
        Some("another long password\n"),
    );
    let (ok, _, err) = mes(
        &[
            "--config",
            c,
            "user",
            "passwd",
            "jean.dupont@hopital-a.mes.test",
            "--password-stdin",
        ],
        Some("short\n"),
    );
    assert!(!ok && err.contains("at least"), "{err}");
    mes_ok(
        &[
            "--config",
            c,
            "user",
            "disable",
            "jean.dupont@hopital-a.mes.test",
        ],
        None,
    );
    let list = mes_ok(&["--config", c, "user", "list"], None);
    assert!(list.contains("disabled"), "{list}");

    mes_ok(
        &[
            "--config",
            c,
            "domain",
            "add",
            "Clinique-C.mes.test",
            "--kind",
            "professional",
        ],
        None,
    );
    let domains = mes_ok(&["--config", c, "domain", "list"], None);
    assert!(
        domains.contains("clinique-c.mes.test\tprofessional"),
        "{domains}"
    );
    let (ok, _, err) = mes(
        &[
            "--config",
            c,
            "domain",
            "add",
            "clinique-c.mes.test",
            "--kind",
            "professional",
        ],
        None,
    );
    assert!(!ok && err.contains("already exists"), "{err}");
}

#[test]
fn every_command_has_help() {
    for args in [
        vec!["--help"],
        vec!["init", "--help"],
        vec!["serve", "--help"],
        vec!["user", "add", "--help"],
        vec!["user", "list", "--help"],
        vec!["user", "passwd", "--help"],
        vec!["user", "disable", "--help"],
        vec!["user", "certificate", "--help"],
        vec!["user", "quota", "--help"],
        vec!["domain", "add", "--help"],
        vec!["domain", "list", "--help"],
        vec!["config", "check", "--help"],
        vec!["trust", "import", "--help"],
    ] {
        let out = mes_ok(&args, None);
        assert!(out.contains("Usage:"), "{args:?}: {out}");
    }
}

#[test]
fn trust_import_reads_the_published_whitelist() {
    let tmp = tempfile::tempdir().unwrap();
    let config = init(&tmp.path().join("a"));
    let c = config.to_str().unwrap();
    let xml = tmp.path().join("lb.xml");
    std::fs::write(
        &xml,
        r#"<?xml version="1.0" encoding="UTF-8"?>
<ListeBlanche xmlns="https://listeblanche.mssante.fr/schema">
  <DateDeGeneration>2026-11-20T03:00:00</DateDeGeneration>
  <Domaine>
    <Nom>hopital-b.mes.test</Nom>
    <Description>Hôpital B</Description>
    <DNCertificatOperateur>CN=mx.operateur2.mes.test, O=Operateur Deux, C=FR</DNCertificatOperateur>
    <ResponsableContact>dsi@hopital-b.mes.test</ResponsableContact>
    <SupportContact>support@hopital-b.mes.test</SupportContact>
    <DateMAJ>2026-11-01T10:00:00</DateMAJ>
  </Domaine>
</ListeBlanche>"#,
    )
    .unwrap();
    let out = mes_ok(
        &["--config", c, "trust", "import", xml.to_str().unwrap()],
        None,
    );
    assert!(out.contains("imported 1 domains"), "{out}");
    let list = mes_ok(&["--config", c, "trust", "list"], None);
    assert!(
        list.contains("hopital-b.mes.test\timported\tCN=mx.operateur2.mes.test"),
        "{list}"
    );

    std::fs::write(
        &xml,
        "<!DOCTYPE x [<!ENTITY a \"aaaa\">]><ListeBlanche>&a;</ListeBlanche>",
    )
    .unwrap();
    let (ok, _, err) = mes(
        &["--config", c, "trust", "import", xml.to_str().unwrap()],
        None,
    );
    assert!(!ok, "a DOCTYPE is refused");
    assert!(err.to_lowercase().contains("doctype"), "{err}");
}

/// The subject of `cert` as `openssl x509 -subject -nameopt RFC2253` prints it.
fn openssl_subject(cert: &std::path::Path, nameopt: &str) -> String {
    let out = std::process::Command::new("openssl")
        .args(["x509", "-noout", "-subject", "-nameopt", nameopt, "-in"])
        .arg(cert)
        .output()
        .expect("openssl is installed");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// Whether AUTH EXTERNAL with the dev client certificate logs in on submission.
async fn external_login(server: &common::Server, instance: &common::Instance) -> u16 {
    let config = common::client_tls(
        &instance.cert("ca.pem"),
        Some((&instance.cert("client.pem"), &instance.cert("client.key"))),
    );
    let mut s = common::connect_starttls(server.addr("submission"), config)
        .await
        .unwrap();
    s.expect("EHLO dpi.test", 250).await;
    let code = s.cmd("AUTH EXTERNAL =").await.code;
    s.cmd("QUIT").await;
    code
}

#[tokio::test]
async fn certificate_subject_in_openssl_rfc2253_form_maps_the_account() {
    let instance = common::Instance::new(common::Db::Sqlite).await;
    let printed = openssl_subject(&instance.cert("client.pem"), "RFC2253");
    // Reversed order, no spaces: what `mes` used to store as typed and never match.
    let dn = printed.strip_prefix("subject=").unwrap();
    assert!(dn.starts_with("C=FR,O="), "{dn}");
    let out = instance.run(
        &[
            "user",
            "add",
            "dpi@hopital-a.mes.test",
            "--kind",
            "application",
            "--name",
            "DPI",
            "--certificate-subject",
            dn,
        ],
        None,
    );
    assert!(out.contains("certificate subject: "), "{out}");
    let list = instance.run(&["user", "list"], None);
    assert!(
        list.contains("dpi@hopital-a.mes.test\tapplication\tDPI\t\tcertificate: ")
            && list.contains("dpi.hopital.mes.test"),
        "{list}"
    );
    instance.add_user(
        "jean.dupont@hopital-a.mes.test",
        "professional",
        "correct horse battery staple",
    );
    let server = instance.start();

    // SASL EXTERNAL on submission, and the same certificate relaying on MX.
    assert_eq!(external_login(&server, &instance).await, 235);
    let config = common::client_tls(
        &instance.cert("ca.pem"),
        Some((&instance.cert("client.pem"), &instance.cert("client.key"))),
    );
    let mut s = common::connect_starttls(server.addr("mx"), config)
        .await
        .unwrap();
    s.expect("MAIL FROM:<dpi@hopital-a.mes.test>", 250).await;
    s.expect("RCPT TO:<jean.dupont@hopital-a.mes.test>", 250)
        .await;
    s.expect("QUIT", 221).await;

    // Removed: the certificate maps to nothing any more.
    let out = instance.run(
        &["user", "certificate", "dpi@hopital-a.mes.test", "--remove"],
        None,
    );
    assert!(out.contains("mapped to no certificate"), "{out}");
    let list = instance.run(&["user", "list"], None);
    assert!(!list.contains("certificate: "), "{list}");
    assert_ne!(external_login(&server, &instance).await, 235);

    // Mapped again from the PEM file.
    let pem = instance.cert("client.pem");
    let out = instance.run(
        &[
            "user",
            "certificate",
            "dpi@hopital-a.mes.test",
            pem.to_str().unwrap(),
        ],
        None,
    );
    assert!(out.contains("mapped to certificate subject"), "{out}");
    assert_eq!(external_login(&server, &instance).await, 235);

    // And from OpenSSL's default one-line form, `subject=` included.
    let oneline = openssl_subject(&pem, "oneline");
    assert!(oneline.contains(" = "), "{oneline}");
    instance.run(
        &["user", "certificate", "dpi@hopital-a.mes.test", "--remove"],
        None,
    );
    instance.run(
        &[
            "user",
            "certificate",
            "dpi@hopital-a.mes.test",
            "--subject",
            &oneline,
        ],
        None,
    );
    assert_eq!(external_login(&server, &instance).await, 235);

    // Another certificate's subject (the server's) does not log the client in.
    let other = instance.cert("server.pem");
    instance.run(
        &[
            "user",
            "certificate",
            "dpi@hopital-a.mes.test",
            other.to_str().unwrap(),
        ],
        None,
    );
    assert_ne!(external_login(&server, &instance).await, 235);
}

#[test]
fn certificate_subject_is_checked() {
    let tmp = tempfile::tempdir().unwrap();
    let config = init(&tmp.path().join("a"));
    let c = config.to_str().unwrap();
    let (ok, _, err) = mes(
        &[
            "--config",
            c,
            "user",
            "add",
            "dpi@hopital-a.mes.test",
            "--kind",
            "application",
            "--certificate-subject",
            "dpi.hopital.mes.test",
        ],
        None,
    );
    assert!(!ok);
    assert!(err.contains("is not a distinguished name"), "{err}");
    let list = mes_ok(&["--config", c, "user", "list"], None);
    assert!(!list.contains("dpi@"), "nothing created: {list}");
    // A CN holding ", O=…" stays one CN.
    mes_ok(
        &[
            "--config",
            c,
            "user",
            "add",
            "dpi@hopital-a.mes.test",
            "--kind",
            "application",
            "--certificate-subject",
            r"CN=dpi\, O=Hopital A",
        ],
        None,
    );
    let list = mes_ok(&["--config", c, "user", "list"], None);
    assert!(
        list.contains(r"certificate: CN=dpi\, o\=hopital a"),
        "{list}"
    );
    let (ok, _, err) = mes(
        &[
            "--config",
            c,
            "user",
            "certificate",
            "dpi@hopital-a.mes.test",
            "/nonexistent.pem",
        ],
        None,
    );
    assert!(!ok);
    assert!(err.contains("/nonexistent.pem"), "{err}");
    let (ok, _, err) = mes(
        &[
            "--config",
            c,
            "user",
            "certificate",
            "dpi@hopital-a.mes.test",
        ],
        None,
    );
    assert!(!ok, "a file, --subject or --remove is required: {err}");
}

/// `mes user quota`: shows usage and the limits in force, sets an account's
/// own limits, `none` and `default`; refusals name the option.
async fn user_quota(db: common::Db) {
    let instance = common::Instance::new(db).await;
    let jean = "jean.dupont@hopital-a.mes.test";
    instance.add_user(jean, "professional", "a long password here");
    let out = instance.run(&["user", "quota", jean], None);
    assert_eq!(
        out,
        format!(
            "{jean}\nstorage: 0 KiB used, no limit ([quota] default)\n\
             messages: 0 used, no limit ([quota] default)\n"
        )
    );
    instance.edit_config(|t| t.replace("# storage = \"none\"", "storage = \"1G\" #"));
    let out = instance.run(&["user", "quota", jean], None);
    assert!(
        out.contains("storage: 0 KiB used, limit 1048576 KiB ([quota] default)"),
        "{out}"
    );
    let out = instance.run(
        &[
            "user",
            "quota",
            jean,
            "--storage",
            "500M",
            "--messages",
            "1000",
        ],
        None,
    );
    assert!(
        out.contains("limit 512000 KiB (set for this account)")
            && out.contains("messages: 0 used, limit 1000 (set for this account)"),
        "{out}"
    );
    let out = instance.run(&["user", "quota", jean, "--storage", "none"], None);
    assert!(
        out.contains("storage: 0 KiB used, no limit (set for this account)"),
        "{out}"
    );
    assert!(out.contains("limit 1000 (set for this account)"), "{out}");
    let out = instance.run(
        &[
            "user",
            "quota",
            jean,
            "--storage",
            "default",
            "--messages",
            "DEFAULT",
        ],
        None,
    );
    assert!(out.contains("limit 1048576 KiB ([quota] default)"), "{out}");
    assert!(out.contains("no limit ([quota] default)"), "{out}");
    let c = instance.config.to_str().unwrap();
    let (ok, _, err) = mes(
        &["--config", c, "user", "quota", jean, "--storage", "5X"],
        None,
    );
    assert!(
        !ok && err.contains("--storage") && err.contains("5X"),
        "{err}"
    );
    let (ok, _, err) = mes(
        &["--config", c, "user", "quota", jean, "--messages", "1k"],
        None,
    );
    assert!(!ok && err.contains("--messages"), "{err}");
    let (ok, _, err) = mes(
        &["--config", c, "user", "quota", "nobody@hopital-a.mes.test"],
        None,
    );
    assert!(!ok && err.contains("no account"), "{err}");
    let (ok, _, err) = mes(
        &[
            "--config",
            c,
            "user",
            "quota",
            "nobody@hopital-a.mes.test",
            "--storage",
            "1G",
        ],
        None,
    );
    assert!(!ok && err.contains("not found"), "{err}");
    // Every change is in the audit trail.
    let out = instance.run(&["audit", "verify"], None);
    assert!(out.contains("audit log intact"), "{out}");
}

both_backends!(user_quota);
