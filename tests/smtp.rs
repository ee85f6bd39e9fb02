//! SMTP against the real server: submission and MX, real clients (lettre, swaks),
//! scripted exchanges for the refusals, durable delivery checked in the store.

mod common;

use std::time::Duration;

use common::{
    Db, Instance, Server, client_tls, connect_plain, connect_starttls, connect_tls, inbox,
    open_store, plain,
};
use lettre::message::Mailbox;
use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::{Certificate, Identity, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

const PW: &str = "correct horse battery staple";
const JEAN: &str = "jean.dupont@hopital-a.mes.test";
const MARIE: &str = "marie.curie@hopital-a.mes.test";

async fn setup(db: Db, smtp_extra: &str) -> (Instance, Server) {
    let instance = Instance::with(db, "hopital-a.mes.test", None, smtp_extra).await;
    instance.add_user(JEAN, "professional", PW);
    instance.add_user(MARIE, "professional", PW);
    instance.add_user("279035121518989@patient.mes.test", "patient", PW);
    let server = instance.start();
    (instance, server)
}

fn tls_params(instance: &Instance, identity: Option<&str>) -> TlsParameters {
    let ca = std::fs::read(instance.cert("ca.pem")).unwrap();
    let mut b = TlsParameters::builder("localhost".into())
        .add_root_certificate(Certificate::from_pem(&ca).unwrap());
    if let Some(name) = identity {
        let cert = std::fs::read(instance.cert(&format!("{name}.pem"))).unwrap();
        let key = std::fs::read(instance.cert(&format!("{name}.key"))).unwrap();
        // lettre 0.11's rustls Identity::from_pem takes the certificate as DER, the key as PEM.
        use rustls_pki_types::pem::PemObject;
        let der = rustls_pki_types::CertificateDer::from_pem_slice(&cert).unwrap();
        b = b.identify_with(Identity::from_pem(der.as_ref(), &key).unwrap());
    }
    b.build_rustls().unwrap()
}

fn message(from: &str, to: &str, subject: &str) -> Message {
    Message::builder()
        .from(from.parse::<Mailbox>().unwrap())
        .to(to.parse::<Mailbox>().unwrap())
        .subject(subject)
        .body(format!("Bonjour,\r\nResultats joints ({subject}).\r\n"))
        .unwrap()
}

async fn lettre_submission_starttls(db: Db) {
    let (instance, server) = setup(db, "").await;
    let addr = server.addr("submission");
    let transport = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous("127.0.0.1")
        .port(addr.port())
        .tls(Tls::Required(tls_params(&instance, None)))
        .credentials(Credentials::new(JEAN.into(), PW.into()))
        .authentication(vec![Mechanism::Plain])
        .timeout(Some(Duration::from_secs(20)))
        .build();
    let response = transport
        .send(message(JEAN, MARIE, "lettre starttls"))
        .await
        .unwrap();
    assert_eq!(response.code().to_string(), "250");

    let store = open_store(&instance).await;
    let mails = inbox(&store, MARIE).await;
    assert_eq!(mails.len(), 1);
    let text = String::from_utf8_lossy(&mails[0].data);
    assert!(
        text.starts_with("Return-Path: <jean.dupont@hopital-a.mes.test>\r\nReceived: from "),
        "{text}"
    );
    assert!(text.contains("with ESMTPSA"), "{text}");
    assert!(text.contains("version=TLSv1.3"), "{text}");
    assert!(text.contains("Subject: lettre starttls"), "{text}");
    assert_eq!(mails[0].uid, 1);
}

async fn lettre_submissions_implicit_tls_login(db: Db) {
    let (instance, server) = setup(db, "").await;
    let addr = server.addr("submissions");
    let transport = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous("127.0.0.1")
        .port(addr.port())
        .tls(Tls::Wrapper(tls_params(&instance, None)))
        .credentials(Credentials::new(MARIE.into(), PW.into()))
        .authentication(vec![Mechanism::Login])
        .timeout(Some(Duration::from_secs(20)))
        .build();
    for i in 0..3 {
        transport
            .send(message(MARIE, JEAN, &format!("implicit {i}")))
            .await
            .unwrap();
    }
    let store = open_store(&instance).await;
    let mails = inbox(&store, JEAN).await;
    assert_eq!(
        mails.iter().map(|m| m.uid).collect::<Vec<_>>(),
        vec![1, 2, 3]
    );
}

async fn lettre_mx_with_operator_certificate(db: Db) {
    let (instance, server) = setup(db, "").await;
    let addr = server.addr("mx");
    let transport = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous("127.0.0.1")
        .port(addr.port())
        .tls(Tls::Required(tls_params(&instance, Some("operator2"))))
        .timeout(Some(Duration::from_secs(20)))
        .build();
    transport
        .send(message(
            "dr.martin@operateur2.mes.test",
            JEAN,
            "from operator two",
        ))
        .await
        .unwrap();
    // Operator two may not send as our domain.
    let err = transport
        .send(message("forged@hopital-a.mes.test", JEAN, "forged"))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("is hosted here"), "{err}");
    let store = open_store(&instance).await;
    let mails = inbox(&store, JEAN).await;
    assert_eq!(mails.len(), 1);
    let text = String::from_utf8_lossy(&mails[0].data);
    assert!(
        text.contains("verified-peer=\"CN=mx.operateur2.mes.test, O=Operateur Deux, C=FR\""),
        "{text}"
    );
    assert!(text.contains("with ESMTPS"), "{text}");
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        server
            .log()
            .contains("forged@hopital-a.mes.test is hosted here"),
        "reason logged"
    );
}

both_backends!(
    lettre_submission_starttls,
    lettre_submissions_implicit_tls_login,
    lettre_mx_with_operator_certificate,
);

#[tokio::test]
async fn swaks_starttls_auth_with_client_certificate() {
    let (instance, server) = setup(Db::Sqlite, "").await;
    let port = server.addr("submission").port().to_string();
    let out = std::process::Command::new("swaks")
        .args([
            "--server",
            "127.0.0.1",
            "--port",
            &port,
            "--tls",
            "--tls-ca-path",
            instance.cert("ca.pem").to_str().unwrap(),
            "--tls-cert",
            instance.cert("client.pem").to_str().unwrap(),
            "--tls-key",
            instance.cert("client.key").to_str().unwrap(),
            "--auth",
            "PLAIN",
            "--auth-user",
            JEAN,
            "--auth-password",
            PW,
            "--from",
            JEAN,
            "--to",
            MARIE,
            "--h-From",
            JEAN,
            "--header",
            "Subject: via swaks",
        ])
        .output()
        .expect("swaks is installed by scripts/test");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "swaks failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("250 2.0.0 Message accepted"), "{stdout}");
    // swaks saw our certificate and we saw its.
    assert!(stdout.contains("TLS started"), "{stdout}");
    let store = open_store(&instance).await;
    let mails = inbox(&store, MARIE).await;
    assert_eq!(mails.len(), 1);
    let text = String::from_utf8_lossy(&mails[0].data);
    assert!(
        text.contains("verified-peer=\"CN=dpi.hopital.mes.test"),
        "{text}"
    );

    // swaks on the MX port with the operator certificate (mutual TLS, no AUTH).
    let port = server.addr("mx").port().to_string();
    let out = std::process::Command::new("swaks")
        .args([
            "--server",
            "127.0.0.1",
            "--port",
            &port,
            "--tls",
            "--tls-ca-path",
            instance.cert("ca.pem").to_str().unwrap(),
            "--tls-cert",
            instance.cert("operator2.pem").to_str().unwrap(),
            "--tls-key",
            instance.cert("operator2.key").to_str().unwrap(),
            "--from",
            "secretariat@operateur2.mes.test",
            "--to",
            JEAN,
        ])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert_eq!(inbox(&store, JEAN).await.len(), 1);
}

#[tokio::test]
async fn nothing_but_ehlo_starttls_noop_quit_before_tls() {
    let (_instance, server) = setup(Db::Sqlite, "").await;
    for listener in ["mx", "submission"] {
        let mut s = connect_plain(server.addr(listener)).await;
        let ehlo = s.expect("EHLO client.test", 250).await;
        let text = ehlo.text();
        assert!(text.contains("STARTTLS"), "{text}");
        assert!(
            !text.contains("AUTH"),
            "AUTH is not advertised before TLS: {text}"
        );
        s.expect("NOOP", 250).await;
        s.expect("MAIL FROM:<jean.dupont@hopital-a.mes.test>", 530)
            .await;
        s.expect("RCPT TO:<jean.dupont@hopital-a.mes.test>", 530)
            .await;
        s.expect("AUTH PLAIN AGplYW4AcHc=", 530).await;
        s.expect("DATA", 530).await;
        s.expect("QUIT", 221).await;
    }
}

#[tokio::test]
async fn submission_refusals() {
    let (instance, server) = setup(Db::Sqlite, "").await;
    let config = client_tls(&instance.cert("ca.pem"), None);
    let mut s = connect_starttls(server.addr("submission"), config.clone())
        .await
        .unwrap();
    // MAIL before AUTH.
    s.expect("MAIL FROM:<jean.dupont@hopital-a.mes.test>", 530)
        .await;
    // Wrong password, then right.
    s.expect(
        &format!("AUTH PLAIN {}", plain(JEAN, "wrong password here")),
        535,
    )
    .await;
    s.expect(&format!("AUTH PLAIN {}", plain(JEAN, PW)), 235)
        .await;
    // Sending as someone else.
    let r = s
        .expect("MAIL FROM:<marie.curie@hopital-a.mes.test>", 553)
        .await;
    assert!(r.text().contains("5.7.1"), "{r:?}");
    s.expect("MAIL FROM:<jean.dupont@hopital-a.mes.test>", 250)
        .await;
    // Unknown local recipient, domain outside the trust space.
    let r = s.expect("RCPT TO:<nobody@hopital-a.mes.test>", 550).await;
    assert!(r.text().contains("5.1.1"), "{r:?}");
    let r = s.expect("RCPT TO:<someone@gmail.test>", 550).await;
    assert!(r.text().contains("5.7.1"), "{r:?}");
    // A trust-space domain of another operator is accepted for the outbound queue.
    s.expect("RCPT TO:<dr@operateur2.mes.test>", 250).await;
    s.expect("RCPT TO:<marie.curie@hopital-a.mes.test>", 250)
        .await;
    // The From header must be the account's own address.
    s.expect("DATA", 354).await;
    s.send("From: Marie <marie.curie@hopital-a.mes.test>\r\nSubject: forged\r\n\r\nx\r\n.\r\n")
        .await;
    let r = s.read_reply().await;
    assert_eq!(r.code, 550, "{r:?}");
    // Message-ID and Date are added when missing.
    s.expect("MAIL FROM:<jean.dupont@hopital-a.mes.test>", 250)
        .await;
    s.expect("RCPT TO:<marie.curie@hopital-a.mes.test>", 250)
        .await;
    s.expect("DATA", 354).await;
    s.send("From: jean.dupont@hopital-a.mes.test\r\nSubject: bare\r\n\r\nx\r\n.\r\n")
        .await;
    assert_eq!(s.read_reply().await.code, 250);
    s.expect("QUIT", 221).await;

    let store = open_store(&instance).await;
    let mails = inbox(&store, MARIE).await;
    assert_eq!(mails.len(), 1, "the forged message was not stored");
    let text = String::from_utf8_lossy(&mails[0].data);
    assert!(text.contains("\r\nMessage-ID: <"), "{text}");
    assert!(text.contains("\r\nDate: "), "{text}");

    // Patients do not use SMTP.
    let mut s = connect_tls(server.addr("submissions"), config)
        .await
        .unwrap();
    s.expect("EHLO client.test", 250).await;
    let r = s
        .expect(
            &format!(
                "AUTH PLAIN {}",
                plain("279035121518989@patient.mes.test", PW)
            ),
            535,
        )
        .await;
    assert!(r.text().contains("Patient"), "{r:?}");
}

#[tokio::test]
async fn auth_failures_are_throttled() {
    let (instance, server) = setup(Db::Sqlite, "auth_failures_before_lockout = 3").await;
    let config = client_tls(&instance.cert("ca.pem"), None);
    let mut s = connect_tls(server.addr("submissions"), config.clone())
        .await
        .unwrap();
    s.expect("EHLO client.test", 250).await;
    s.expect(
        &format!("AUTH PLAIN {}", plain(MARIE, "wrong password 1")),
        535,
    )
    .await;
    s.expect(
        &format!("AUTH PLAIN {}", plain(MARIE, "wrong password 2")),
        535,
    )
    .await;
    let r = s
        .cmd(&format!("AUTH PLAIN {}", plain(MARIE, "wrong password 3")))
        .await;
    assert_eq!(r.code, 421, "{r:?}");
    assert!(r.text().contains("4.7.0"));
    // Locked out even with the right password now.
    let mut s = connect_tls(server.addr("submissions"), config)
        .await
        .unwrap();
    s.expect("EHLO client.test", 250).await;
    assert_eq!(
        s.cmd(&format!("AUTH PLAIN {}", plain(MARIE, PW)))
            .await
            .code,
        421
    );
    assert!(
        !server.log().contains("wrong password"),
        "passwords are never logged"
    );
}

/// Failures for one account from one address lock that pair only: the same
/// account logs in from another address; the lockout is in the database, so
/// a restart keeps it. Enough failures from one address, whatever the
/// accounts, lock that address only.
async fn login_lockout_is_per_address_and_survives_restarts(db: Db) {
    let (instance, mut server) = setup(
        db,
        "auth_failures_before_lockout = 3\nauth_ip_failures_before_lockout = 5",
    )
    .await;
    let config = client_tls(&instance.cert("ca.pem"), None);
    let stranger: std::net::IpAddr = "127.0.0.2".parse().unwrap();
    let auth = |password: &str| format!("AUTH PLAIN {}", plain(MARIE, password));
    let jean = |password: &str| format!("AUTH PLAIN {}", plain(JEAN, password));
    let mut s = common::connect_tls_from(server.addr("submissions"), config.clone(), stranger)
        .await
        .unwrap();
    s.expect("EHLO client.test", 250).await;
    s.expect(&auth("wrong password 1"), 535).await;
    s.expect(&auth("wrong password 2"), 535).await;
    assert_eq!(s.cmd(&auth("wrong password 3")).await.code, 421);
    // From the stranger's address, even the right password waits.
    let mut s = common::connect_tls_from(server.addr("submissions"), config.clone(), stranger)
        .await
        .unwrap();
    s.expect("EHLO client.test", 250).await;
    assert_eq!(s.cmd(&auth(PW)).await.code, 421);
    // Another account from that address is not.
    let mut s = common::connect_tls_from(server.addr("submissions"), config.clone(), stranger)
        .await
        .unwrap();
    s.expect("EHLO client.test", 250).await;
    s.expect(&jean(PW), 235).await;
    // Marie, from her own address, is not locked out.
    let mut s = connect_tls(server.addr("submissions"), config.clone())
        .await
        .unwrap();
    s.expect("EHLO client.test", 250).await;
    s.expect(&auth(PW), 235).await;

    server.terminate(Duration::from_secs(10));
    let server = instance.start();
    let mut s = common::connect_tls_from(server.addr("submissions"), config.clone(), stranger)
        .await
        .unwrap();
    s.expect("EHLO client.test", 250).await;
    assert_eq!(
        s.cmd(&auth(PW)).await.code,
        421,
        "the lockout survives a restart"
    );
    let mut s = connect_tls(server.addr("submissions"), config.clone())
        .await
        .unwrap();
    s.expect("EHLO client.test", 250).await;
    s.expect(&auth(PW), 235).await;

    // Two more failures from the stranger's address (five in all) lock the
    // address for every account; other addresses go on.
    let mut s = common::connect_tls_from(server.addr("submissions"), config.clone(), stranger)
        .await
        .unwrap();
    s.expect("EHLO client.test", 250).await;
    s.expect(&jean("wrong password 4"), 535).await;
    assert_eq!(s.cmd(&jean("wrong password 5")).await.code, 421);
    let mut s = common::connect_tls_from(server.addr("submissions"), config.clone(), stranger)
        .await
        .unwrap();
    s.expect("EHLO client.test", 250).await;
    assert_eq!(s.cmd(&jean(PW)).await.code, 421);
    let mut s = connect_tls(server.addr("submissions"), config)
        .await
        .unwrap();
    s.expect("EHLO client.test", 250).await;
    s.expect(&jean(PW), 235).await;
}

both_backends!(login_lockout_is_per_address_and_survives_restarts);

#[tokio::test]
async fn size_limits_and_long_lines() {
    let (instance, server) = setup(Db::Sqlite, "max_message_size = 65536").await;
    let config = client_tls(&instance.cert("ca.pem"), None);
    let mut s = connect_tls(server.addr("submissions"), config)
        .await
        .unwrap();
    let ehlo = s.expect("EHLO client.test", 250).await;
    assert!(ehlo.text().contains("SIZE 65536"), "{ehlo:?}");
    s.expect(&format!("AUTH PLAIN {}", plain(JEAN, PW)), 235)
        .await;
    // Declared size over the limit.
    let r = s
        .expect(
            "MAIL FROM:<jean.dupont@hopital-a.mes.test> SIZE=100000",
            552,
        )
        .await;
    assert!(r.text().contains("5.3.4"));
    // Undeclared, streamed over the limit with DATA.
    s.expect("MAIL FROM:<jean.dupont@hopital-a.mes.test>", 250)
        .await;
    s.expect("RCPT TO:<marie.curie@hopital-a.mes.test>", 250)
        .await;
    s.expect("DATA", 354).await;
    let line = format!("{}\r\n", "a".repeat(70));
    s.send("From: jean.dupont@hopital-a.mes.test\r\n\r\n").await;
    for _ in 0..2000 {
        s.send(&line).await;
    }
    s.send(".\r\n").await;
    let r = s.read_reply().await;
    assert_eq!(r.code, 552, "{r:?}");
    // Over the limit with BDAT.
    s.expect("MAIL FROM:<jean.dupont@hopital-a.mes.test>", 250)
        .await;
    s.expect("RCPT TO:<marie.curie@hopital-a.mes.test>", 250)
        .await;
    let chunk = vec![b'b'; 70000];
    s.send("BDAT 70000 LAST\r\n").await;
    s.send_bytes(&chunk).await;
    assert_eq!(s.read_reply().await.code, 552);
    // The session goes on: a long command line, then a good BDAT message in two chunks.
    let r = s.cmd(&format!("NOOP {}", "x".repeat(600))).await;
    assert_eq!(r.code, 500, "{r:?}");
    s.expect("MAIL FROM:<jean.dupont@hopital-a.mes.test>", 250)
        .await;
    s.expect("RCPT TO:<marie.curie@hopital-a.mes.test>", 250)
        .await;
    let head = b"From: jean.dupont@hopital-a.mes.test\r\nSubject: chunks\r\n\r\n";
    s.send(&format!("BDAT {}\r\n", head.len())).await;
    s.send_bytes(head).await;
    assert_eq!(s.read_reply().await.code, 250);
    s.send("BDAT 6 LAST\r\nhello\n").await;
    assert_eq!(s.read_reply().await.code, 250);
    // A text line over 1000 octets in DATA.
    s.expect("MAIL FROM:<jean.dupont@hopital-a.mes.test>", 250)
        .await;
    s.expect("RCPT TO:<marie.curie@hopital-a.mes.test>", 250)
        .await;
    s.expect("DATA", 354).await;
    s.send(&format!(
        "From: jean.dupont@hopital-a.mes.test\r\n\r\n{}\r\n.\r\n",
        "c".repeat(1200)
    ))
    .await;
    assert_eq!(s.read_reply().await.code, 500);
    s.expect("QUIT", 221).await;

    let store = open_store(&instance).await;
    let mails = inbox(&store, MARIE).await;
    assert_eq!(mails.len(), 1, "only the chunked message was stored");
    assert!(mails[0].data.ends_with(b"Subject: chunks\r\n\r\nhello\n"));
}

#[tokio::test]
async fn pipelining_dsn_parameters_and_hostile_mime() {
    let (instance, server) = setup(Db::Sqlite, "").await;
    let config = client_tls(
        &instance.cert("ca.pem"),
        Some((
            &instance.cert("operator2.pem"),
            &instance.cert("operator2.key"),
        )),
    );
    let mut s = connect_starttls(server.addr("mx"), config).await.unwrap();
    // One write: MAIL, two RCPT, DATA (RFC 2920).
    s.send(
        "MAIL FROM:<dr@operateur2.mes.test> RET=HDRS ENVID=env-42 BODY=8BITMIME\r\n\
         RCPT TO:<jean.dupont@hopital-a.mes.test> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;jean.dupont@hopital-a.mes.test\r\n\
         RCPT TO:<marie.curie@hopital-a.mes.test>\r\n\
         DATA\r\n",
    )
    .await;
    for expected in [250, 250, 250, 354] {
        assert_eq!(s.read_reply().await.code, expected);
    }
    // Hostile MIME from the corpus is still mail: stored as received. (Its
    // own From line is mangled: a From that proves the author goes first.)
    let hostile = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/mime/malformed-019.eml"
    ))
    .unwrap();
    let mut data = b"From: <dr@operateur2.mes.test>\r\n".to_vec();
    for line in hostile.split_inclusive(|&b| b == b'\n') {
        let line = line.strip_suffix(b"\n").unwrap_or(line);
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.first() == Some(&b'.') {
            data.push(b'.');
        }
        data.extend_from_slice(line);
        data.extend_from_slice(b"\r\n");
    }
    data.extend_from_slice(b".\r\n");
    s.send_bytes(&data).await;
    let r = s.read_reply().await;
    assert_eq!(r.code, 250, "{r:?}");
    s.expect("QUIT", 221).await;

    let store = open_store(&instance).await;
    let jean = inbox(&store, JEAN).await;
    let marie = inbox(&store, MARIE).await;
    assert_eq!((jean.len(), marie.len()), (1, 1));
    assert_eq!(jean[0].data, marie[0].data, "one blob for both recipients");
    let body_start = jean[0]
        .data
        .windows(b"Return-Path".len())
        .position(|w| w == b"Return-Path")
        .unwrap();
    assert_eq!(body_start, 0);
    let original: Vec<u8> = data[..data.len() - 3]
        .split(|&b| b == b'\n')
        .map(|l| if l.first() == Some(&b'.') { &l[1..] } else { l })
        .collect::<Vec<_>>()
        .join(&b'\n');
    assert!(
        jean[0].data.ends_with(&original),
        "content stored byte for byte"
    );

    // DSN parameters are kept with the message.
    let row: (i64, Option<String>, Option<String>) =
        sqlx::query_as("SELECT id, dsn_envid, dsn_ret FROM messages")
            .fetch_one(store.pool())
            .await
            .unwrap();
    assert_eq!(row.1.as_deref(), Some("env-42"));
    assert_eq!(row.2.as_deref(), Some("HDRS"));
    let rcpts = store.message_recipients(row.0).await.unwrap();
    assert_eq!(rcpts.len(), 2);
    assert_eq!(rcpts[0].0, JEAN);
    assert_eq!(
        rcpts[0].1.as_deref(),
        Some("rfc822;jean.dupont@hopital-a.mes.test")
    );
    assert_eq!(
        rcpts[0].2 as u64,
        smtp_proto::RCPT_NOTIFY_SUCCESS | smtp_proto::RCPT_NOTIFY_FAILURE
    );
}

#[tokio::test]
async fn auth_external_and_relaying_system_certificate() {
    let instance = Instance::new(Db::Sqlite).await;
    let client_dn = mes::pki::subject_dn_of_file(&instance.cert("client.pem")).unwrap();
    instance.run(
        &[
            "user",
            "add",
            "dpi@hopital-a.mes.test",
            "--kind",
            "application",
            "--name",
            "DPI",
            "--certificate-subject",
            &client_dn,
        ],
        None,
    );
    instance.add_user(JEAN, "professional", PW);
    let server = instance.start();
    let config = client_tls(
        &instance.cert("ca.pem"),
        Some((&instance.cert("client.pem"), &instance.cert("client.key"))),
    );

    // Submission with SASL EXTERNAL.
    let mut s = connect_starttls(server.addr("submission"), config.clone())
        .await
        .unwrap();
    let ehlo = s.cmd("EHLO dpi.test").await;
    assert!(ehlo.text().contains("EXTERNAL"), "{ehlo:?}");
    s.expect("AUTH EXTERNAL =", 235).await;
    s.expect("MAIL FROM:<dpi@hopital-a.mes.test>", 250).await;
    s.expect("RCPT TO:<jean.dupont@hopital-a.mes.test>", 250)
        .await;
    s.expect("DATA", 354).await;
    s.send("From: DPI <dpi@hopital-a.mes.test>\r\nSubject: CR\r\n\r\nx\r\n.\r\n")
        .await;
    assert_eq!(s.read_reply().await.code, 250);

    // The same system relaying through MX with its certificate, as its own mailbox only.
    let mut s = connect_starttls(server.addr("mx"), config).await.unwrap();
    s.expect("MAIL FROM:<dpi@hopital-a.mes.test>", 250).await;
    s.expect("RCPT TO:<jean.dupont@hopital-a.mes.test>", 250)
        .await;
    s.expect("RSET", 250).await;
    s.expect("MAIL FROM:<jean.dupont@hopital-a.mes.test>", 550)
        .await;
    let r = s.expect("MAIL FROM:<x@elsewhere.test>", 550).await;
    assert!(
        r.text()
            .contains("mapped to dpi@hopital-a.mes.test, which may not send as x@elsewhere.test"),
        "{r:?}"
    );
    s.expect("MAIL FROM:<dpi@hopital-a.mes.test>", 250).await;
    let r = s.expect("RCPT TO:<someone@operateur2.mes.test>", 550).await;
    assert!(
        r.text().contains("Relaying denied"),
        "never an open relay: {r:?}"
    );
    s.expect("QUIT", 221).await;

    let store = open_store(&instance).await;
    assert_eq!(inbox(&store, JEAN).await.len(), 1);
}

#[tokio::test]
async fn delegated_organisation_mailbox() {
    let extra = "[smtp.delegations]\n\"secretariat@hopital-a.mes.test\" = [\"jean.dupont@hopital-a.mes.test\"]";
    let (instance, server) = setup(Db::Sqlite, extra).await;
    instance.add_user("secretariat@hopital-a.mes.test", "organisation", PW);
    let config = client_tls(&instance.cert("ca.pem"), None);
    let mut s = connect_tls(server.addr("submissions"), config.clone())
        .await
        .unwrap();
    s.expect("EHLO client.test", 250).await;
    s.expect(&format!("AUTH PLAIN {}", plain(JEAN, PW)), 235)
        .await;
    s.expect("MAIL FROM:<secretariat@hopital-a.mes.test>", 250)
        .await;
    s.expect("RCPT TO:<marie.curie@hopital-a.mes.test>", 250)
        .await;
    s.expect("DATA", 354).await;
    s.send("From: Secretariat <secretariat@hopital-a.mes.test>\r\nSubject: RDV\r\n\r\nx\r\n.\r\n")
        .await;
    assert_eq!(s.read_reply().await.code, 250);
    // Marie is not a delegate.
    let mut s = connect_tls(server.addr("submissions"), config)
        .await
        .unwrap();
    s.expect("EHLO client.test", 250).await;
    s.expect(&format!("AUTH PLAIN {}", plain(MARIE, PW)), 235)
        .await;
    s.expect("MAIL FROM:<secretariat@hopital-a.mes.test>", 553)
        .await;
}

#[tokio::test]
async fn connection_limits_and_idle_timeout() {
    let (instance, server) = setup(
        Db::Sqlite,
        "max_connections_per_ip = 2\ncommand_timeout_secs = 1\nmax_recipients = 1",
    )
    .await;
    // At most max_recipients per message.
    {
        let mut s = connect_tls(
            server.addr("submissions"),
            client_tls(&instance.cert("ca.pem"), None),
        )
        .await
        .unwrap();
        s.expect("EHLO client.test", 250).await;
        s.expect(&format!("AUTH PLAIN {}", plain(JEAN, PW)), 235)
            .await;
        s.expect(&format!("MAIL FROM:<{JEAN}>"), 250).await;
        s.expect(&format!("RCPT TO:<{MARIE}>"), 250).await;
        let r = s.expect(&format!("RCPT TO:<{JEAN}>"), 452).await;
        assert!(r.text().contains("4.5.3"), "{r:?}");
        s.expect("QUIT", 221).await;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let addr = server.addr("mx");
    let a = connect_plain(addr).await;
    let b = connect_plain(addr).await;
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut third = common::Smtp::new(tcp);
    let r = third.read_reply().await;
    assert_eq!(r.code, 421, "third connection from one IP: {r:?}");
    drop((a, b, third));
    tokio::time::sleep(Duration::from_millis(300)).await;
    // A silent client is closed after the command timeout.
    let mut idle = connect_plain(server.addr("submission")).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let r = idle.read_reply().await;
    assert_eq!(r.code, 421, "{r:?}");
}

#[tokio::test]
async fn invalid_utf8_headers_are_stored_as_bytes() {
    let (instance, server) = setup(Db::Sqlite, "").await;
    let config = client_tls(&instance.cert("ca.pem"), None);
    let mut s = connect_tls(server.addr("submissions"), config)
        .await
        .unwrap();
    s.expect("EHLO client.test", 250).await;
    s.expect(&format!("AUTH PLAIN {}", plain(JEAN, PW)), 235)
        .await;
    s.expect(&format!("MAIL FROM:<{JEAN}> BODY=8BITMIME SMTPUTF8"), 250)
        .await;
    s.expect(&format!("RCPT TO:<{MARIE}>"), 250).await;
    s.expect("DATA", 354).await;
    let body: &[u8] = b"From: jean.dupont@hopital-a.mes.test\r\nSubject: r\xe9sultat \xff\xfe\r\n\r\nd\xe9j\xe0 vu\r\n.\r\n";
    s.send_bytes(body).await;
    assert_eq!(s.read_reply().await.code, 250);
    let store = open_store(&instance).await;
    let mails = inbox(&store, MARIE).await;
    assert!(
        mails[0].data.ends_with(&body[..body.len() - 3]),
        "stored byte for byte"
    );
}

/// A recipient's quota refuses at RCPT TO when it can tell (the declared
/// SIZE, or a mailbox already full), else at the end of DATA: 452 4.2.2 while
/// the mailbox is full, 552 5.2.2 for a message larger than the quota.
async fn quota_refusals(db: Db) {
    let instance = Instance::new(db).await;
    instance.add_user(JEAN, "professional", PW);
    instance.add_user(MARIE, "professional", PW);
    instance.run(&["user", "quota", MARIE, "--storage", "3K"], None);
    let server = instance.start();
    let config = client_tls(&instance.cert("ca.pem"), None);
    let mut s = connect_tls(server.addr("submissions"), config)
        .await
        .unwrap();
    s.expect("EHLO client.test", 250).await;
    s.expect(&format!("AUTH PLAIN {}", plain(JEAN, PW)), 235)
        .await;
    // `n` octets of text in lines of 100.
    let body = |n: usize| {
        let line = format!("{}\r\n", "x".repeat(98));
        format!(
            "From: <{JEAN}>\r\nTo: <{MARIE}>\r\nSubject: q\r\n\r\n{}.\r\n",
            line.repeat(n / 100)
        )
    };
    // Declared larger than the whole quota: refused at RCPT, for good.
    s.expect(&format!("MAIL FROM:<{JEAN}> SIZE=4000"), 250)
        .await;
    let r = s.expect(&format!("RCPT TO:<{MARIE}>"), 552).await;
    assert!(r.text().contains("5.2.2"), "{r:?}");
    s.expect("RSET", 250).await;
    // Not declared, larger than the quota: refused after DATA, for good.
    s.expect(&format!("MAIL FROM:<{JEAN}>"), 250).await;
    s.expect(&format!("RCPT TO:<{MARIE}>"), 250).await;
    s.expect("DATA", 354).await;
    s.send(&body(3500)).await;
    let r = s.read_reply().await;
    assert_eq!((r.code, r.text().contains("5.2.2")), (552, true), "{r:?}");
    // 1.5 KiB fits once; then a declared size that no longer fits waits at
    // RCPT, an undeclared one after DATA.
    s.expect(&format!("MAIL FROM:<{JEAN}> SIZE=1600"), 250)
        .await;
    s.expect(&format!("RCPT TO:<{MARIE}>"), 250).await;
    s.expect("DATA", 354).await;
    s.send(&body(1500)).await;
    assert_eq!(s.read_reply().await.code, 250);
    s.expect(&format!("MAIL FROM:<{JEAN}> SIZE=1600"), 250)
        .await;
    let r = s.expect(&format!("RCPT TO:<{MARIE}>"), 452).await;
    assert!(r.text().contains("4.2.2"), "{r:?}");
    s.expect("RSET", 250).await;
    s.expect(&format!("MAIL FROM:<{JEAN}>"), 250).await;
    s.expect(&format!("RCPT TO:<{MARIE}>"), 250).await;
    s.expect("DATA", 354).await;
    s.send(&body(1500)).await;
    let r = s.read_reply().await;
    assert_eq!((r.code, r.text().contains("4.2.2")), (452, true), "{r:?}");
    // With less room than the mail already there, RCPT itself says so.
    instance.run(&["user", "quota", MARIE, "--storage", "1K"], None);
    s.expect(&format!("MAIL FROM:<{JEAN}>"), 250).await;
    let r = s.expect(&format!("RCPT TO:<{MARIE}>"), 452).await;
    assert!(r.text().contains("4.2.2"), "{r:?}");
    // Other recipients are not concerned.
    s.expect(&format!("RCPT TO:<{JEAN}>"), 250).await;
    s.expect("QUIT", 221).await;
    let store = open_store(&instance).await;
    assert_eq!(inbox(&store, MARIE).await.len(), 1);
}

both_backends!(quota_refusals);
