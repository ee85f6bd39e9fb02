//! Certificate revocation on real listeners and on the relay: `mes pki revoke`
//! adds a certificate to the development CA's list, a running server picks it up
//! on SIGHUP or at the periodic reload, and refuses the certificate at the
//! handshake with its subject and serial in the log.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::{Db, Instance, Pro, Server, client_tls, inbox, open_store};
use mes::pki::{Ca, LeafSpec, Usage};
use tokio::io::AsyncBufReadExt;

const PW: &str = "correct horse battery staple";

/// A new client certificate from the instance's CA, written beside its config.
fn issue_client(instance: &Instance, name: &str) -> (PathBuf, PathBuf) {
    let ca = Ca::load(&instance.cert("ca.pem"), &instance.cert("ca.key")).unwrap();
    let mut spec = LeafSpec::new(&format!("{name}.mes.test"), "Hopital Test");
    spec.usage = Usage::Client;
    let issued = ca.issue(&spec).unwrap();
    let cert = instance.root().join(format!("{name}.pem"));
    let key = instance.root().join(format!("{name}.key"));
    std::fs::write(&cert, &issued.cert_pem).unwrap();
    std::fs::write(&key, &issued.key_pem).unwrap();
    (cert, key)
}

/// Serial of a PEM certificate as the log shows it (hex with colons).
fn serial_of(cert: &Path) -> String {
    let pem = std::fs::read(cert).unwrap();
    let der = rustls_pki_types::pem::PemObject::from_pem_slice(&pem)
        .map(|d: rustls_pki_types::CertificateDer<'static>| d.to_vec())
        .unwrap();
    let (_, parsed) = x509_parser::parse_x509_certificate(&der).unwrap();
    parsed.raw_serial_as_string()
}

/// Whether an MX session over STARTTLS with `(cert, key)` gets as far as a 250 to NOOP.
async fn mx_accepts(instance: &Instance, server: &Server, cert: &Path, key: &Path) -> bool {
    let config = client_tls(&instance.cert("ca.pem"), Some((cert, key)));
    match common::connect_starttls(server.addr("mx"), config).await {
        Ok(mut s) => {
            // With TLS 1.3 the server's verdict may arrive with the first reply.
            s.send("NOOP\r\n").await;
            let mut line = String::new();
            matches!(s.stream.read_line(&mut line).await, Ok(n) if n > 0 && line.starts_with("250"))
        }
        Err(_) => false,
    }
}

fn sighup(server: &Server) {
    let status = Command::new("kill")
        .args(["-HUP", &server.pid().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

/// Waits until the server's log holds `needle` `count` times (or fails after `secs`).
async fn wait_log(server: &Server, needle: &str, count: usize, secs: u64) {
    let end = Instant::now() + Duration::from_secs(secs);
    while server.log().matches(needle).count() < count {
        assert!(
            Instant::now() < end,
            "no {needle:?} in the log:\n{}",
            server.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

const RELOADED: &str = "certificate revocation lists reloaded";

#[tokio::test]
async fn revoked_client_certificate_is_refused_on_mx_after_sighup() {
    let instance = Instance::new(Db::Sqlite).await;
    let (revoked, revoked_key) = issue_client(&instance, "dpi-vole");
    let (kept, kept_key) = issue_client(&instance, "dpi-garde");
    let server = instance.start();
    assert!(mx_accepts(&instance, &server, &revoked, &revoked_key).await);
    assert!(mx_accepts(&instance, &server, &kept, &kept_key).await);

    let out = instance.run(
        &[
            "pki",
            "revoke",
            revoked.to_str().unwrap(),
            "--reason",
            "key-compromise",
        ],
        None,
    );
    assert!(out.contains("CRL number 02"), "{out}");
    assert!(out.contains("CN=dpi-vole.mes.test"), "{out}");
    // Revoking twice changes nothing.
    let again = instance.run(&["pki", "revoke", revoked.to_str().unwrap()], None);
    assert!(again.contains("already"), "{again}");

    sighup(&server);
    wait_log(&server, RELOADED, 1, 10).await;
    assert!(
        !mx_accepts(&instance, &server, &revoked, &revoked_key).await,
        "the revoked certificate is refused"
    );
    assert!(
        mx_accepts(&instance, &server, &kept, &kept_key).await,
        "another certificate of the same CA still works"
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    let log = server.log();
    let line = log
        .lines()
        .find(|l| l.contains("certificate refused: revoked"))
        .unwrap_or_else(|| panic!("no refusal line:\n{log}"));
    assert!(line.contains("dpi-vole.mes.test"), "{line}");
    assert!(line.contains(&serial_of(&revoked)), "{line}");
    assert!(log.contains("TLS handshake refused"), "{log}");
    assert!(!log.contains("PRIVATE KEY"), "{log}");
}

/// GET on the professionals' API with `pro`'s certificate; the HTTP status, 0 when
/// the TLS handshake failed.
fn pro_status(instance: &Instance, server: &Server, pro: &Pro) -> u16 {
    let out = Command::new("curl")
        .args([
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "--cacert",
            instance.cert("ca.pem").to_str().unwrap(),
            "--cert",
            pro.cert.to_str().unwrap(),
            "--key",
            pro.key.to_str().unwrap(),
            &format!(
                "https://localhost:{}/api/pro/v1/patients/279035121518989/profile",
                server.addr("https").port()
            ),
        ])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
}

#[tokio::test]
async fn revoked_professional_is_refused_on_the_api_after_the_periodic_reload() {
    let instance = Instance::new(Db::Sqlite).await;
    instance.edit_config(|t| t.replace("# crl_reload_secs = 300", "crl_reload_secs = 1"));
    let revoked = common::professional(&instance, "revoque", "Dr Revoque");
    let kept = common::professional(&instance, "garde", "Dr Garde");
    let server = instance.start();
    assert_ne!(
        pro_status(&instance, &server, &revoked),
        0,
        "{}",
        server.log()
    );
    assert_ne!(pro_status(&instance, &server, &kept), 0);

    instance.run(&["pki", "revoke", revoked.cert.to_str().unwrap()], None);
    wait_log(&server, RELOADED, 1, 10).await;
    assert_eq!(
        pro_status(&instance, &server, &revoked),
        0,
        "the handshake fails"
    );
    assert_ne!(pro_status(&instance, &server, &kept), 0);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let log = server.log();
    assert!(
        log.lines()
            .any(|l| l.contains("certificate refused: revoked") && l.contains("Dr Revoque")),
        "{log}"
    );

    // A broken list on reload: logged, the previous lists stay in force.
    std::fs::write(instance.cert("crl.pem"), "-----BEGIN X509 CRL-----\n").unwrap();
    wait_log(
        &server,
        "not reloaded; the previous ones stay in force",
        1,
        10,
    )
    .await;
    assert_eq!(pro_status(&instance, &server, &revoked), 0);
    assert_ne!(pro_status(&instance, &server, &kept), 0);

    // At startup a broken list is a configuration error naming the key.
    let (ok, _, err) = common::mes(
        &[
            "--config",
            instance.config.to_str().unwrap(),
            "config",
            "check",
        ],
        None,
    );
    assert!(!ok);
    assert!(err.contains("tls.crl_files"), "{err}");
}

#[tokio::test]
async fn relay_to_a_revoked_server_fails_with_the_tls_reason() {
    const JEAN_A: &str = "jean.dupont@hopital-a.mes.test";
    const MARIE_B: &str = "marie.curie@hopital-b.mes.test";
    let a = Instance::with(Db::Sqlite, "hopital-a.mes.test", None, "").await;
    let b = Instance::with(Db::Sqlite, "hopital-b.mes.test", Some(&a.root()), "").await;
    a.add_user(JEAN_A, "professional", PW);
    b.add_user(MARIE_B, "professional", PW);
    a.whitelist("hopital-b.mes.test", &b.cert("server.pem"));
    b.whitelist("hopital-a.mes.test", &a.cert("server.pem"));
    a.relay("retry_schedule_secs = [1]\nexpire_secs = 3");
    // A revokes B's operator certificate (same CA, A's list).
    let out = a.run(
        &["pki", "revoke", b.cert("server.pem").to_str().unwrap()],
        None,
    );
    assert!(out.contains("CN=mx.hopital-b.mes.test"), "{out}");
    let b_server = b.start();
    a.relay(&format!(
        "routes = {{ \"hopital-b.mes.test\" = \"127.0.0.1:{}\" }}",
        b_server.addr("mx").port()
    ));
    let a_server = a.start();
    let data =
        format!("From: Jean <{JEAN_A}>\r\nTo: <{MARIE_B}>\r\nSubject: revoque\r\n\r\nTexte.\r\n");
    let code = common::submit(
        a_server.addr("submissions"),
        &a.cert("ca.pem"),
        JEAN_A,
        PW,
        "",
        MARIE_B,
        &data,
    )
    .await;
    assert_eq!(code, 250);

    let store = open_store(&a).await;
    let end = Instant::now() + Duration::from_secs(30);
    let mails = loop {
        let mails = inbox(&store, JEAN_A).await;
        if !mails.is_empty() || Instant::now() > end {
            break mails;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(mails.len(), 1, "a DSN comes back:\n{}", a_server.log());
    let text = String::from_utf8_lossy(&mails[0].data);
    assert!(text.contains("Action: failed"), "{text}");
    assert!(
        text.contains("Revoked"),
        "the TLS reason in the DSN: {text}"
    );
    let log = a_server.log();
    assert!(
        log.lines()
            .any(|l| l.contains("certificate refused: revoked")
                && l.contains("mx.hopital-b.mes.test")
                && l.contains("server")),
        "{log}"
    );
    let b_store = open_store(&b).await;
    assert!(
        inbox(&b_store, MARIE_B).await.is_empty(),
        "nothing reached B"
    );
}
