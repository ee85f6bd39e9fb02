//! Two operators, A and B, as two real `mes` instances sharing the test CA:
//! relaying over mutual TLS, retries, DSNs, MX resolution, crashes.

mod common;

use std::time::{Duration, Instant};

use common::{Db, Instance, Server, client_tls, connect_tls, inbox, open_store, plain};

const PW: &str = "correct horse battery staple";
const JEAN_A: &str = "jean.dupont@hopital-a.mes.test";
const MARIE_B: &str = "marie.curie@hopital-b.mes.test";

/// A and B, whitelisting each other; B not started. `b_own_ca`: B gets a CA of its own.
async fn pair(db: Db, b_own_ca: bool, b_hostnames: &[&str]) -> (Instance, Instance) {
    let a = Instance::with(db, "hopital-a.mes.test", None, "").await;
    let ca = if b_own_ca { None } else { Some(a.root()) };
    let b =
        Instance::with_hostnames(db, "hopital-b.mes.test", ca.as_deref(), "", b_hostnames).await;
    a.add_user(JEAN_A, "professional", PW);
    b.add_user(MARIE_B, "professional", PW);
    a.whitelist("hopital-b.mes.test", &b.cert("server.pem"));
    b.whitelist("hopital-a.mes.test", &a.cert("server.pem"));
    a.relay("retry_schedule_secs = [1]");
    (a, b)
}

/// Submits one message from Jean at A; returns the SMTP reply code of the end of data.
async fn submit(a: &Instance, server: &Server, to: &str, subject: &str) -> u16 {
    let data = format!(
        "From: Jean <{JEAN_A}>\r\nTo: <{to}>\r\nSubject: {subject}\r\n\r\nCompte rendu.\r\n"
    );
    common::submit(
        server.addr("submissions"),
        &a.cert("ca.pem"),
        JEAN_A,
        PW,
        " RET=HDRS ENVID=relay-test",
        to,
        &data,
    )
    .await
}

/// Waits until `address`'s INBOX at `instance` has `n` messages (or fails after `secs`).
async fn wait_inbox(
    instance: &Instance,
    address: &str,
    n: usize,
    secs: u64,
) -> Vec<mes::store::messages::FiledMessage> {
    let store = open_store(instance).await;
    let end = Instant::now() + Duration::from_secs(secs);
    loop {
        let mails = inbox(&store, address).await;
        if mails.len() >= n || Instant::now() > end {
            return mails;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn route_to(a: &Instance, b_server: &Server) {
    a.relay(&format!(
        "routes = {{ \"hopital-b.mes.test\" = \"127.0.0.1:{}\" }}",
        b_server.addr("mx").port()
    ));
}

async fn relays_over_mutual_tls(db: Db) {
    let (a, b) = pair(db, false, &[]).await;
    let b_server = b.start();
    route_to(&a, &b_server);
    let a_server = a.start();
    assert_eq!(submit(&a, &a_server, MARIE_B, "vers B").await, 250);
    let mails = wait_inbox(&b, MARIE_B, 1, 30).await;
    assert_eq!(mails.len(), 1, "A's log:\n{}", a_server.log());
    let text = String::from_utf8_lossy(&mails[0].data);
    assert!(text.contains("Subject: vers B"), "{text}");
    assert!(
        text.contains("verified-peer=\"CN=mx.hopital-a.mes.test, O=Operateur MES, C=FR\""),
        "A's certificate subject in B's Received: {text}"
    );
    let out = a.run(&["queue", "list", "--all"], None);
    assert!(
        out.contains("\tsent\tmarie.curie@hopital-b.mes.test"),
        "{out}"
    );
}

both_backends!(relays_over_mutual_tls);

#[tokio::test]
async fn b_down_then_up_gets_the_message_once() {
    let (a, b) = pair(Db::Sqlite, false, &[]).await;
    let mut b_server = b.start();
    b.pin_ports(&b_server);
    route_to(&a, &b_server);
    b_server.kill();
    let a_server = a.start();
    assert_eq!(submit(&a, &a_server, MARIE_B, "retry").await, 250);
    tokio::time::sleep(Duration::from_secs(3)).await;
    let out = a.run(&["queue", "list"], None);
    assert!(out.contains("1 pending"), "{out}");
    assert!(out.contains("attempts="), "{out}");
    let _b_server = b.start();
    let mails = wait_inbox(&b, MARIE_B, 1, 30).await;
    assert_eq!(mails.len(), 1, "{}", a_server.log());
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        wait_inbox(&b, MARIE_B, 2, 0).await.len(),
        1,
        "delivered once"
    );
}

#[tokio::test]
async fn unknown_recipient_at_b_returns_a_dsn_readable_over_imap() {
    let (a, b) = pair(Db::Sqlite, false, &[]).await;
    let b_server = b.start();
    route_to(&a, &b_server);
    let a_server = a.start();
    assert_eq!(
        submit(&a, &a_server, "nobody@hopital-b.mes.test", "perdu").await,
        250
    );
    let mails = wait_inbox(&a, JEAN_A, 1, 30).await;
    assert_eq!(mails.len(), 1, "{}", a_server.log());
    let mut c = common::imap_login(a_server.addr("imaps"), &a.cert("ca.pem"), JEAN_A, PW).await;
    c.expect("SELECT INBOX", "OK").await;
    let f = c.expect("FETCH 1 (BODY[])", "OK").await.all();
    assert!(f.contains("multipart/report"), "{f}");
    assert!(f.contains("Action: failed"), "{f}");
    assert!(f.contains("Status: 5.1.1"), "{f}");
    assert!(
        f.contains("Final-Recipient: rfc822; nobody@hopital-b.mes.test"),
        "{f}"
    );
    assert!(f.contains("Original-Envelope-Id: relay-test"), "{f}");
    assert!(f.contains("Subject: perdu"), "original headers: {f}");
    assert!(
        f.contains("Return-Path: <>"),
        "DSNs have a null sender: {f}"
    );
}

#[tokio::test]
async fn certificate_from_another_ca_is_retried_then_returned() {
    let (a, b) = pair(Db::Sqlite, true, &[]).await;
    let b_server = b.start();
    route_to(&a, &b_server);
    a.relay("expire_secs = 3");
    let a_server = a.start();
    assert_eq!(submit(&a, &a_server, MARIE_B, "rogue").await, 250);
    let mails = wait_inbox(&a, JEAN_A, 1, 30).await;
    assert_eq!(mails.len(), 1, "{}", a_server.log());
    let text = String::from_utf8_lossy(&mails[0].data);
    assert!(text.contains("Action: failed"), "{text}");
    assert!(
        text.to_lowercase().contains("certificate") || text.contains("UnknownIssuer"),
        "reason in the DSN: {text}"
    );
    assert!(
        wait_inbox(&b, MARIE_B, 1, 0).await.is_empty(),
        "nothing reached B"
    );
    let out = a.run(&["queue", "list", "--all"], None);
    assert!(out.contains("\tfailed\t"), "{out}");
}

/// B's MX holds a valid certificate of the same CA, whose name matches, and
/// which is whitelisted, but for another domain: A's whitelist names another
/// operator for hopital-b. A must not hand the message over; it retries, then
/// returns it with the reason.
async fn server_certificate_of_another_operator_is_retried_then_returned(db: Db) {
    let (a, b) = pair(db, false, &[]).await;
    // B's certificate now operates autre.mes.test; hopital-b is operator 2's.
    a.edit_config(|t| {
        t.replacen(
            "domain = \"hopital-b.mes.test\"",
            "domain = \"autre.mes.test\"",
            1,
        )
    });
    a.whitelist("hopital-b.mes.test", &a.cert("operator2.pem"));
    let b_server = b.start();
    route_to(&a, &b_server);
    a.relay("expire_secs = 4");
    let a_server = a.start();
    assert_eq!(submit(&a, &a_server, MARIE_B, "detour").await, 250);
    let mails = wait_inbox(&a, JEAN_A, 1, 30).await;
    assert_eq!(mails.len(), 1, "{}", a_server.log());
    let text = String::from_utf8_lossy(&mails[0].data);
    assert!(text.contains("Action: failed"), "{text}");
    let unfolded = text.replace("\r\n ", " ").replace("\r\n\t", " ");
    assert!(
        unfolded.contains("TLS: certificate CN=mx.hopital-b.mes.test")
            && unfolded.contains("is not the operator of domain hopital-b.mes.test"),
        "the operator reason in the DSN: {text}"
    );
    let log = a_server.log();
    assert!(
        log.contains("relay deferred") && log.contains("is not the operator of domain"),
        "retried on the schedule first: {log}"
    );
    assert!(
        wait_inbox(&b, MARIE_B, 1, 0).await.is_empty(),
        "nothing reached B"
    );
    let out = a.run(&["queue", "list", "--all"], None);
    assert!(out.contains("\tfailed\t"), "{out}");
}

both_backends!(server_certificate_of_another_operator_is_retried_then_returned);

/// A dnsmasq on a loopback port serving MX and A records for the test domains.
struct Dns {
    child: std::process::Child,
    port: u16,
}

impl Drop for Dns {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn dnsmasq(records: &[&str]) -> Dns {
    let port = {
        let s = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        s.local_addr().unwrap().port()
    };
    let pid = tempfile::NamedTempFile::new().unwrap();
    let mut cmd = std::process::Command::new("dnsmasq");
    cmd.args([
        "--keep-in-foreground",
        "--conf-file=/dev/null",
        "--no-resolv",
        "--no-hosts",
        "--bind-interfaces",
        "--listen-address=127.0.0.1",
        &format!("--port={port}"),
        &format!("--pid-file={}", pid.path().display()),
        "--user=root",
    ]);
    cmd.args(records);
    let child = cmd
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("dnsmasq is installed by scripts/test");
    std::thread::sleep(Duration::from_millis(300));
    Dns { child, port }
}

#[tokio::test]
async fn mx_resolution_with_preference_and_implicit_mx() {
    let (a, b) = pair(
        Db::Sqlite,
        false,
        &["mx2.hopital-b.mes.test", "clinique-b.mes.test"],
    )
    .await;
    b.run(
        &[
            "domain",
            "add",
            "clinique-b.mes.test",
            "--kind",
            "professional",
        ],
        None,
    );
    b.add_user("accueil@clinique-b.mes.test", "professional", PW);
    a.whitelist("clinique-b.mes.test", &b.cert("server.pem"));
    let b_server = b.start();
    let port = b_server.addr("mx").port();
    // Preference 10 points at an address where nothing listens; 20 at B.
    let dns = dnsmasq(&[
        "--mx-host=hopital-b.mes.test,mx1.hopital-b.mes.test,10",
        "--mx-host=hopital-b.mes.test,mx2.hopital-b.mes.test,20",
        "--host-record=mx1.hopital-b.mes.test,127.0.0.3",
        "--host-record=mx2.hopital-b.mes.test,127.0.0.1",
        // No MX at all: the domain's own address is used (RFC 5321 §5.1).
        "--host-record=clinique-b.mes.test,127.0.0.1",
    ]);
    a.relay(&format!(
        "dns = [\"127.0.0.1:{}\"]\nmx_port = {port}",
        dns.port
    ));
    let a_server = a.start();
    assert_eq!(submit(&a, &a_server, MARIE_B, "par MX").await, 250);
    assert_eq!(
        submit(&a, &a_server, "accueil@clinique-b.mes.test", "sans MX").await,
        250
    );
    assert_eq!(
        // Generous: a loaded CI machine can make the first DNS answers time out.
        wait_inbox(&b, MARIE_B, 1, 90).await.len(),
        1,
        "{}",
        a_server.log()
    );
    assert_eq!(
        wait_inbox(&b, "accueil@clinique-b.mes.test", 1, 30)
            .await
            .len(),
        1,
        "{}",
        a_server.log()
    );
    let out = a.run(&["queue", "list", "--all"], None);
    assert!(out.matches("\tsent\t").count() == 2, "{out}");
    assert!(
        a_server.log().contains("127.0.0.3"),
        "the preferred MX was tried first"
    );
}

#[tokio::test]
async fn crash_while_relaying_500_messages() {
    let (a, b) = pair(Db::Sqlite, false, &[]).await;
    // B is down while the 500 messages are queued at A.
    let mut b_server = b.start();
    b.pin_ports(&b_server);
    route_to(&a, &b_server);
    b_server.kill();
    let mut a_server = a.start();
    a.pin_ports(&a_server);
    let load = std::process::Command::new(common::MES)
        .env("MES_BENCH_PASSWORD", PW)
        .args([
            "bench",
            "smtp",
            "--server",
            &a_server.addr("submissions").to_string(),
            "--implicit-tls",
            "--ca",
            a.cert("ca.pem").to_str().unwrap(),
            "--user",
            JEAN_A,
            "--from",
            JEAN_A,
            "--to",
            MARIE_B,
            "--connections",
            "8",
            "--messages",
            "500",
            "--size",
            "1024",
            "--run-id",
            "relaycrash",
        ])
        .output()
        .unwrap();
    assert!(
        load.status.success(),
        "{}",
        String::from_utf8_lossy(&load.stderr)
    );
    // B comes up; kill A while it relays, then restart it.
    let _b_server = b.start();
    let end = Instant::now() + Duration::from_secs(30);
    loop {
        let n = wait_inbox(&b, MARIE_B, 0, 0).await.len();
        if n >= 50 || Instant::now() > end {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    a_server.kill();
    let _a_server = a.start();
    let end = Instant::now() + Duration::from_secs(120);
    let counts = loop {
        let mut counts = std::collections::HashMap::new();
        for m in wait_inbox(&b, MARIE_B, 0, 0).await {
            let text = String::from_utf8_lossy(&m.data);
            let token = text
                .lines()
                .find_map(|l| l.strip_prefix("token "))
                .unwrap()
                .trim()
                .to_string();
            *counts.entry(token).or_insert(0usize) += 1;
        }
        if counts.len() >= 500 || Instant::now() > end {
            break counts;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let duplicates: usize = counts.values().map(|n| n - 1).sum();
    eprintln!(
        "relay crash test: {} distinct messages at B, {duplicates} duplicates",
        counts.len()
    );
    assert_eq!(counts.len(), 500, "every message reaches B");
}

#[tokio::test]
async fn delay_dsn_then_partial_success_without_second_copies() {
    let (a, b) = pair(Db::Sqlite, false, &[]).await;
    b.add_user("paul.martin@hopital-b.mes.test", "professional", PW);
    let mut b_server = b.start();
    b.pin_ports(&b_server);
    route_to(&a, &b_server);
    b_server.kill();
    a.relay("delay_dsn_secs = 1");
    let a_server = a.start();
    // Two recipients at B, one of them unknown there.
    let mut s = connect_tls(
        a_server.addr("submissions"),
        client_tls(&a.cert("ca.pem"), None),
    )
    .await
    .unwrap();
    s.expect("EHLO client.test", 250).await;
    s.expect(&format!("AUTH PLAIN {}", plain(JEAN_A, PW)), 235)
        .await;
    s.expect(&format!("MAIL FROM:<{JEAN_A}>"), 250).await;
    s.expect(&format!("RCPT TO:<{MARIE_B}>"), 250).await;
    s.expect(
        "RCPT TO:<ghost@hopital-b.mes.test> NOTIFY=FAILURE,DELAY",
        250,
    )
    .await;
    s.expect("DATA", 354).await;
    s.send(&format!(
        "From: {JEAN_A}\r\nSubject: deux\r\n\r\nx\r\n.\r\n"
    ))
    .await;
    assert_eq!(s.read_reply().await.code, 250);
    // B is down: after delay_dsn_secs the sender hears of the delay, once per recipient.
    let mails = wait_inbox(&a, JEAN_A, 1, 30).await;
    assert!(!mails.is_empty(), "{}", a_server.log());
    let text = String::from_utf8_lossy(&mails[0].data);
    assert!(text.contains("Action: delayed"), "{text}");
    // B comes back: Marie gets it, the ghost bounces, nobody gets a second copy.
    let _b_server = b.start();
    assert_eq!(wait_inbox(&b, MARIE_B, 1, 30).await.len(), 1);
    let end = Instant::now() + Duration::from_secs(30);
    let failure = loop {
        let mails = wait_inbox(&a, JEAN_A, 0, 0).await;
        if let Some(m) = mails
            .iter()
            .find(|m| String::from_utf8_lossy(&m.data).contains("Action: failed"))
        {
            break String::from_utf8_lossy(&m.data).into_owned();
        }
        assert!(Instant::now() < end, "no failure DSN:\n{}", a_server.log());
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(
        failure.contains("ghost@hopital-b.mes.test")
            && !failure.contains("Final-Recipient: rfc822; marie"),
        "{failure}"
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        wait_inbox(&b, MARIE_B, 0, 0).await.len(),
        1,
        "no second copy"
    );
    let delayed = wait_inbox(&a, JEAN_A, 0, 0)
        .await
        .iter()
        .filter(|m| String::from_utf8_lossy(&m.data).contains("Action: delayed"))
        .count();
    assert!(
        delayed <= 2,
        "one delay notice per recipient at most, got {delayed}"
    );
}
