//! The TLS helper on real listeners: protocol versions and client certificates.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::{Db, Instance, client_tls};
use mes::pki::{Ca, LeafSpec, Usage};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Writes an issued certificate and key into `dir`; returns their paths.
fn write_identity(dir: &Path, name: &str, cert: &mes::pki::IssuedCert) -> (PathBuf, PathBuf) {
    let c = dir.join(format!("{name}.pem"));
    let k = dir.join(format!("{name}.key"));
    std::fs::write(&c, &cert.cert_pem).unwrap();
    std::fs::write(&k, &cert.key_pem).unwrap();
    (c, k)
}

/// A TLS 1.1 ClientHello (record version 3.2, client_version 3.2, one CBC suite, no extensions).
fn tls11_client_hello() -> Vec<u8> {
    let mut body = vec![0x03, 0x02];
    body.extend_from_slice(&[0x42; 32]); // random
    body.push(0); // session id
    body.extend_from_slice(&[0x00, 0x04, 0x00, 0x2f, 0x00, 0x35]); // AES128-SHA, AES256-SHA
    body.extend_from_slice(&[0x01, 0x00]); // null compression
    let mut hs = vec![0x01, 0x00, (body.len() >> 8) as u8, body.len() as u8];
    hs.extend_from_slice(&body);
    let mut rec = vec![0x16, 0x03, 0x02, (hs.len() >> 8) as u8, hs.len() as u8];
    rec.extend_from_slice(&hs);
    rec
}

#[tokio::test]
async fn tls_1_1_client_is_refused() {
    let instance = Instance::new(Db::Sqlite).await;
    let server = instance.start();
    let mut tcp = tokio::net::TcpStream::connect(server.addr("submissions"))
        .await
        .unwrap();
    tcp.write_all(&tls11_client_hello()).await.unwrap();
    let mut buf = [0u8; 7];
    let n = tokio::time::timeout(Duration::from_secs(10), tcp.read(&mut buf))
        .await
        .unwrap()
        .unwrap();
    assert!(n >= 1, "server closed without an alert");
    assert_eq!(
        buf[0],
        0x15,
        "expected a TLS alert record, got {:?}",
        &buf[..n]
    );
    if n == 7 {
        assert_eq!(buf[5], 2, "fatal alert");
        assert!(
            buf[6] == 70 || buf[6] == 40,
            "protocol_version or handshake_failure alert, got {}",
            buf[6]
        );
    }
    // The handshake refusal is logged with its reason.
    drop(tcp);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        server.log().contains("TLS handshake refused"),
        "{}",
        server.log()
    );
}

#[tokio::test]
async fn modern_clients_get_tls_1_3_with_an_aead_suite() {
    let instance = Instance::new(Db::Sqlite).await;
    let server = instance.start();
    let config = client_tls(&instance.cert("ca.pem"), None);
    let tcp = tokio::net::TcpStream::connect(server.addr("submissions"))
        .await
        .unwrap();
    let name = rustls_pki_types::ServerName::try_from("localhost").unwrap();
    let tls = tokio_rustls::TlsConnector::from(config)
        .connect(name, tcp)
        .await
        .unwrap();
    let (_, conn) = tls.get_ref();
    assert_eq!(
        conn.protocol_version(),
        Some(rustls::ProtocolVersion::TLSv1_3)
    );
    let suite = format!("{:?}", conn.negotiated_cipher_suite().unwrap().suite());
    assert!(
        suite.contains("GCM") || suite.contains("CHACHA20_POLY1305"),
        "{suite}"
    );
}

async fn mx_session_result(
    addr: std::net::SocketAddr,
    config: std::sync::Arc<rustls::ClientConfig>,
) -> bool {
    match common::connect_starttls(addr, config).await {
        Ok(mut s) => {
            // With TLS 1.3 the server's verdict on our certificate may arrive with the first reply.
            s.send("NOOP\r\n").await;
            let mut line = String::new();
            use tokio::io::AsyncBufReadExt;
            matches!(s.stream.read_line(&mut line).await, Ok(n) if n > 0 && line.starts_with("250"))
        }
        Err(_) => false,
    }
}

#[tokio::test]
async fn mx_requires_a_client_certificate_from_the_trust_anchors() {
    let instance = Instance::new(Db::Sqlite).await;
    let server = instance.start();
    let mx = server.addr("mx");
    let ca = instance.cert("ca.pem");
    let tmp = tempfile::tempdir().unwrap();

    // Good: the second operator's certificate from our CA.
    let good = client_tls(
        &ca,
        Some((
            &instance.cert("operator2.pem"),
            &instance.cert("operator2.key"),
        )),
    );
    assert!(
        mx_session_result(mx, good).await,
        "a trust-space certificate is accepted"
    );

    // No certificate.
    assert!(
        !mx_session_result(mx, client_tls(&ca, None)).await,
        "no certificate is refused"
    );

    // Another CA.
    let other = Ca::generate("Rogue CA").unwrap();
    let rogue = other
        .issue(&LeafSpec::new("mx.rogue.mes.test", "Rogue").with_loopback())
        .unwrap();
    let (c, k) = write_identity(tmp.path(), "rogue", &rogue);
    assert!(
        !mx_session_result(mx, client_tls(&ca, Some((&c, &k)))).await,
        "unknown CA is refused"
    );

    // Expired, from our CA.
    let ours = Ca::load(&instance.cert("ca.pem"), &instance.cert("ca.key")).unwrap();
    let mut spec = LeafSpec::new("mx.old.mes.test", "Old Operator");
    spec.usage = Usage::Client;
    spec.not_before = time::OffsetDateTime::now_utc() - time::Duration::days(400);
    spec.not_after = time::OffsetDateTime::now_utc() - time::Duration::days(1);
    let expired = ours.issue(&spec).unwrap();
    let (c, k) = write_identity(tmp.path(), "expired", &expired);
    assert!(
        !mx_session_result(mx, client_tls(&ca, Some((&c, &k)))).await,
        "expired certificate is refused"
    );

    tokio::time::sleep(Duration::from_millis(300)).await;
    let log = server.log();
    assert!(log.contains("TLS handshake refused"), "{log}");
    assert!(
        log.to_lowercase().contains("expired"),
        "the expiry reason is logged: {log}"
    );
    assert!(
        log.contains("UnknownIssuer") || log.to_lowercase().contains("unknown issuer"),
        "{log}"
    );
}
