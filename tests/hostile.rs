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
