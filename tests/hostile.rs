//! Hostile clients against the real binary: whatever one peer sends, the
//! session answers clearly or ends alone, memory stays bounded, and other
//! clients keep being served.

mod common;

use std::time::{Duration, Instant};

use common::{Db, Imap, Instance, Server, imap_login, imap_tls};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

const PW: &str = "correct horse battery staple";
const JEAN: &str = "jean.dupont@hopital-a.mes.test";

async fn setup(imap_extra: &str) -> (Instance, Server) {
    let instance = Instance::new(Db::Sqlite).await;
    if !imap_extra.is_empty() {
        instance.edit_config(|t| t.replacen("[imap]\n", &format!("[imap]\n{imap_extra}\n"), 1));
    }
    instance.add_user(JEAN, "professional", PW);
    let server = instance.start();
    (instance, server)
}

/// The server's resident memory, in KiB.
fn rss_kib(server: &Server) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{}/status", server.pid())).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS")
}

/// A plain connection to `addr` from the loopback address `from`.
async fn connect_from(from: &str, addr: std::net::SocketAddr) -> std::io::Result<TcpStream> {
    let socket = TcpSocket::new_v4()?;
    socket.bind(format!("{from}:0").parse().unwrap())?;
    socket.connect(addr).await
}

/// Mailbox names that are valid atoms but not modified UTF-7, and unknown
/// LIST selection options: a clear answer, and the session goes on.
#[tokio::test]
async fn imap_malformed_names_get_an_answer() {
    let (instance, server) = setup("").await;
    let mut c = imap_login(server.addr("imaps"), &instance.cert("ca.pem"), JEAN, PW).await;
    for command in [
        "SELECT !#$$&'+,-.0123456789:;<=>?@^_`|[}",
        "SELECT &Zm9v-",
        "SELECT \"R&AOk\"",
        "STATUS &AOk-&AOk- (MESSAGES)",
        "CREATE a&b",
        "EXAMINE &2D0-",
    ] {
        let r = c.cmd(command).await;
        assert!(matches!(r.kind(), "NO" | "BAD"), "{command}: {}", r.all());
    }
    let r = c.cmd("LIST (foo) \"\" \"\"").await;
    assert!(matches!(r.kind(), "BAD" | "OK"), "{}", r.all());
    // Still the same session.
    c.expect("NOOP", "OK").await;
    c.expect("SELECT INBOX", "OK").await;
    c.expect("LOGOUT", "OK").await;
}

/// Before login a literal is a few KiB at most: `LOGIN {50 MB}` is refused
/// without a continuation request, the session goes on, and many such
/// clients do not grow the server's memory.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn imap_large_literals_before_login() {
    let (instance, server) = setup("").await;
    let mut c = imap_tls(server.addr("imaps"), &instance.cert("ca.pem")).await;
    c.send_raw(b"a1 LOGIN {52428800}\r\n").await;
    let line = c.read_line().await;
    assert!(line.starts_with("a1 BAD [TOOBIG]"), "{line}");
    // A small literal still works for LOGIN.
    c.send_raw(format!("a2 LOGIN {{{}}}\r\n", JEAN.len()).as_bytes())
        .await;
    let cont = c.read_line().await;
    assert!(cont.starts_with('+'), "{cont}");
    c.send_raw(format!("{JEAN} \"{PW}\"\r\n").as_bytes()).await;
    let r = c.read_until_tagged("a2").await;
    assert!(r.ok(), "{}", r.all());
    // After login, APPEND takes a literal larger than the pre-login bound.
    let message = format!(
        "From: <{JEAN}>\r\nSubject: big\r\n\r\n{}\r\n",
        "x".repeat(100 * 1024)
    );
    let r = c.append("INBOX", "", message.as_bytes()).await;
    assert!(r.ok(), "{}", r.all());

    // Fifty clients announce 50 MB and send 4 MB each anyway.
    let before = rss_kib(&server);
    let addr = server.addr("imap");
    let mut tasks = Vec::new();
    for _ in 0..50 {
        tasks.push(tokio::spawn(async move {
            let mut s = TcpStream::connect(addr).await.unwrap();
            let mut greeting = [0u8; 512];
            let _ = s.read(&mut greeting).await;
            let _ = s.write_all(b"a LOGIN {52428800+}\r\n").await;
            let chunk = vec![b'x'; 64 * 1024];
            for _ in 0..64 {
                if s.write_all(&chunk).await.is_err() {
                    break;
                }
            }
            let mut rest = Vec::new();
            let _ = tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut rest)).await;
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let after = rss_kib(&server);
    assert!(
        after < before + 64 * 1024,
        "RSS grew from {before} KiB to {after} KiB"
    );
    // The logged-in session is still served.
    c.expect("NOOP", "OK").await;
}

/// A client that trickles a command byte by byte before login is cut off at
/// the login deadline, not kept alive by every byte.
#[tokio::test]
async fn imap_trickle_before_login_hits_the_deadline() {
    let (_instance, server) = setup("login_timeout_secs = 2").await;
    let mut s = TcpStream::connect(server.addr("imap")).await.unwrap();
    let mut buf = vec![0u8; 4096];
    let n = s.read(&mut buf).await.unwrap();
    assert!(buf[..n].starts_with(b"* OK"));
    let start = Instant::now();
    let mut got = Vec::new();
    for b in b"a CAPABILITY".iter().cycle() {
        if s.write_all(&[*b]).await.is_err() {
            break;
        }
        if let Ok(Ok(n)) = tokio::time::timeout(Duration::from_millis(300), s.read(&mut buf)).await
        {
            if n == 0 {
                break;
            }
            got.extend_from_slice(&buf[..n]);
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "still connected after 20 s"
        );
    }
    let text = String::from_utf8_lossy(&got);
    assert!(text.contains("* BYE"), "{text}");
}

/// 500 idle connections from one address do not stop a client from another
/// address from being served (per-address and total limits).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn imap_slowloris_from_one_address() {
    let (_instance, server) = setup("").await;
    let addr = server.addr("imap");
    let mut idle = Vec::new();
    for _ in 0..500 {
        if let Ok(s) = connect_from("127.0.0.1", addr).await {
            idle.push(s);
        }
    }
    let mut c = Imap::new(connect_from("127.0.0.2", addr).await.unwrap());
    let greeting = c.read_line().await;
    assert!(greeting.starts_with("* OK"), "{greeting}");
    c.expect("CAPABILITY", "OK").await;
    c.expect("NOOP", "OK").await;
    assert!(idle.len() >= 100, "only {} connections opened", idle.len());
    drop(idle);
}

/// A TLS connection to the HTTPS listener from the loopback address `from`.
async fn https_from(
    instance: &Instance,
    server: &Server,
    from: &str,
) -> std::io::Result<tokio_rustls::client::TlsStream<TcpStream>> {
    let tcp = connect_from(from, server.addr("https")).await?;
    let connector =
        tokio_rustls::TlsConnector::from(common::client_tls(&instance.cert("ca.pem"), None));
    let name = rustls_pki_types::ServerName::try_from("localhost").unwrap();
    connector.connect(name, tcp).await
}

/// Reads until the server closes (or `limit` passes); returns what came and
/// whether the connection was closed by then.
async fn read_until_closed<S: tokio::io::AsyncRead + Unpin>(
    s: &mut S,
    limit: Duration,
) -> (String, bool) {
    let mut got = Vec::new();
    let mut buf = vec![0u8; 8192];
    let end = Instant::now() + limit;
    loop {
        let left = end.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, s.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return (String::from_utf8_lossy(&got).into_owned(), true),
            Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
            Err(_) => return (String::from_utf8_lossy(&got).into_owned(), false),
        }
    }
}

/// HTTPS bounds idle and slow clients: silent connections and idle
/// keep-alives are closed, a slow body hits the request deadline, and 500
/// connections from one address leave another address served.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_limits_and_timeouts() {
    let instance = Instance::new(Db::Sqlite).await;
    instance.edit_config(|t| {
        t.replacen(
            "[https]\n",
            "[https]\nheader_read_timeout_secs = 2\nrequest_timeout_secs = 3\n",
            1,
        )
    });
    let server = instance.start();

    // Silent after the handshake: closed by the header deadline.
    let mut silent = https_from(&instance, &server, "127.0.0.1").await.unwrap();
    let (_, closed) = read_until_closed(&mut silent, Duration::from_secs(15)).await;
    assert!(closed, "a silent connection stays open");

    // One request, then idle keep-alive: answered, then closed.
    let mut keep = https_from(&instance, &server, "127.0.0.1").await.unwrap();
    keep.write_all(b"GET /connexion HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await
        .unwrap();
    let (text, closed) = read_until_closed(&mut keep, Duration::from_secs(15)).await;
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    assert!(closed, "an idle keep-alive connection stays open");

    // A body trickled slower than the request deadline.
    let mut slow = https_from(&instance, &server, "127.0.0.1").await.unwrap();
    slow.write_all(
        b"POST /api/v1/login HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{",
    )
    .await
    .unwrap();
    let start = Instant::now();
    let mut answer = String::new();
    while start.elapsed() < Duration::from_secs(15) {
        if slow.write_all(b" ").await.is_err() {
            break;
        }
        let (text, closed) = read_until_closed(&mut slow, Duration::from_millis(500)).await;
        answer.push_str(&text);
        if closed || !text.is_empty() {
            break;
        }
    }
    assert!(
        answer.starts_with("HTTP/1.1 408") || answer.is_empty(),
        "{answer}"
    );
    assert!(
        start.elapsed() < Duration::from_secs(15),
        "slow body never cut off"
    );

    // Slowloris: 500 plain TCP connections from 127.0.0.1, none saying anything.
    let addr = server.addr("https");
    let mut idle = Vec::new();
    for _ in 0..500 {
        if let Ok(s) = connect_from("127.0.0.1", addr).await {
            idle.push(s);
        }
    }
    let mut other = https_from(&instance, &server, "127.0.0.2").await.unwrap();
    other
        .write_all(b"GET /connexion HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let (text, _) = read_until_closed(&mut other, Duration::from_secs(15)).await;
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    drop(idle);
}

/// SMTP: 500 idle connections from one address leave another address served.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smtp_slowloris_from_one_address() {
    let (_instance, server) = setup("").await;
    for listener in ["mx", "submission"] {
        let addr = server.addr(listener);
        let mut idle = Vec::new();
        for _ in 0..500 {
            if let Ok(s) = connect_from("127.0.0.1", addr).await {
                idle.push(s);
            }
        }
        let mut s = common::Smtp::new(connect_from("127.0.0.2", addr).await.unwrap());
        assert_eq!(s.read_reply().await.code, 220, "{listener}");
        s.expect("EHLO client.test", 250).await;
        s.expect("QUIT", 221).await;
        drop(idle);
    }
}

/// A multipart message from Jean with `zips` as IHE_XDM.ZIP attachments.
fn packages_message(to: &str, zips: &[Vec<u8>]) -> String {
    use base64::Engine;
    let mut data = format!(
        "From: <{JEAN}>\r\nTo: <{to}>\r\nSubject: XDM/1.0/DDM\r\nMIME-Version: 1.0\r\n\
         Content-Type: multipart/mixed; boundary=\"sep\"\r\n\r\n--sep\r\n\
         Content-Type: text/plain\r\n\r\nDocuments.\r\n"
    );
    for zip in zips {
        let b64 = base64::engine::general_purpose::STANDARD.encode(zip);
        data.push_str(
            "--sep\r\nContent-Type: application/zip\r\n\
             Content-Disposition: attachment; filename=\"IHE_XDM.ZIP\"\r\n\
             Content-Transfer-Encoding: base64\r\n\r\n",
        );
        for chunk in b64.as_bytes().chunks(76) {
            data.push_str(std::str::from_utf8(chunk).unwrap());
            data.push_str("\r\n");
        }
    }
    data.push_str("--sep--\r\n");
    data
}

/// Hostile structured attachments: an XML element with a million attributes
/// is refused at once with its reason, and a message carrying thirty
/// packages is indexed only up to the per-message bound, in bounded memory.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_packages_are_bounded() {
    use std::io::Write;
    const PATIENT: &str = "279035121518989@patient.mes.test";
    let (instance, server) = setup("").await;
    instance.add_user(PATIENT, "patient", "mot de passe du patient");
    let ca = instance.cert("ca.pem");

    let mut metadata = String::from("<SubmitObjectsRequest");
    for i in 0..1_000_000 {
        metadata.push_str(&format!(" a{i}=\"\""));
    }
    metadata.push_str("/>");
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    w.start_file(
        "IHE_XDM/SUBSET01/METADATA.XML",
        zip::write::SimpleFileOptions::default(),
    )
    .unwrap();
    w.write_all(metadata.as_bytes()).unwrap();
    let bomb = w.finish().unwrap().into_inner();
    let code = common::submit(
        server.addr("submissions"),
        &ca,
        JEAN,
        PW,
        "",
        PATIENT,
        &packages_message(PATIENT, &[bomb]),
    )
    .await;
    assert_eq!(code, 550);
    let log = server.log();
    assert!(log.contains("structured attachments refused"), "{log}");

    let before = rss_kib(&server);
    let sample = common::xdm_sample("VSM_1.4_2022.01");
    let zips = vec![sample; 30];
    let code = common::submit(
        server.addr("submissions"),
        &ca,
        JEAN,
        PW,
        "",
        JEAN,
        &packages_message(JEAN, &zips),
    )
    .await;
    assert_eq!(code, 250);
    let store = common::open_store(&instance).await;
    let detail: (String,) =
        sqlx::query_as("SELECT detail FROM indexing_outcomes ORDER BY id DESC LIMIT 1")
            .fetch_one(store.pool())
            .await
            .unwrap();
    assert!(
        detail.0.contains("more than 20 structured attachments"),
        "{}",
        detail.0
    );
    let after = rss_kib(&server);
    assert!(
        after < before + 200 * 1024,
        "RSS grew from {before} KiB to {after} KiB"
    );
    // Still serving.
    let mut c = imap_login(server.addr("imaps"), &ca, JEAN, PW).await;
    c.expect("SELECT INBOX", "OK").await;
}
