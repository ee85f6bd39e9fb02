//! Shared harness of the integration tests: starts the real `mes` binary on free
//! ports with an inline configuration, on SQLite or on a fresh PostgreSQL database,
//! and speaks SMTP to it over real TLS.
#![allow(dead_code, unreachable_pub, missing_docs)]

pub mod deflate;

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{
    AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader as TokioBufReader,
};
use tokio::net::TcpStream;

/// Path of the binary under test.
pub const MES: &str = env!("CARGO_BIN_EXE_mes");

/// Which store a test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Db {
    Sqlite,
    Postgres,
}

/// Defines `NAME_sqlite` and `NAME_postgres` tests calling `NAME(Db)`.
#[macro_export]
macro_rules! both_backends {
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sqlite() {
                    super::$name($crate::common::Db::Sqlite).await;
                }
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres() {
                    super::$name($crate::common::Db::Postgres).await;
                }
            }
        )*
    };
}

/// A fresh, empty PostgreSQL database; fails loudly when no server is configured.
pub async fn fresh_pg_database() -> String {
    let admin = std::env::var("MES_TEST_POSTGRES_URL").unwrap_or_else(|_| {
        panic!(
            "MES_TEST_POSTGRES_URL is not set: PostgreSQL tests need a server. \
             Run the suite with ./scripts/test, which starts one."
        )
    });
    use sqlx::Connection;
    let mut conn = sqlx::PgConnection::connect(&admin)
        .await
        .unwrap_or_else(|e| panic!("cannot connect to PostgreSQL at {admin}: {e}"));
    let name = format!("mes_test_{}", random_hex(12));
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut conn)
        .await
        .expect("create database");
    let base = admin.rsplit_once('/').map(|(b, _)| b).unwrap_or(&admin);
    format!("{base}/{name}")
}

pub fn random_hex(n: usize) -> String {
    use rand::Rng;
    let mut rng = rand::rng();
    (0..n)
        .map(|_| format!("{:x}", rng.random_range(0..16u8)))
        .collect()
}

/// Runs `mes` with arguments; returns (status ok, stdout, stderr).
pub fn mes(args: &[&str], stdin: Option<&str>) -> (bool, String, String) {
    let mut cmd = Command::new(MES);
    cmd.args(args)
        .env_remove("MES_CONFIG")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("spawn mes");
    {
        use std::io::Write;
        let mut input = child.stdin.take().expect("stdin");
        if let Some(s) = stdin {
            input.write_all(s.as_bytes()).expect("write stdin");
        }
    }
    let out = child.wait_with_output().expect("mes output");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Runs `mes` and panics with its stderr unless it succeeds.
pub fn mes_ok(args: &[&str], stdin: Option<&str>) -> String {
    let (ok, out, err) = mes(args, stdin);
    assert!(ok, "mes {args:?} failed: {err}");
    out
}

/// A configured instance folder (`mes init`), not yet running.
pub struct Instance {
    pub dir: tempfile::TempDir,
    pub config: PathBuf,
    pub db: Db,
    pub domain: String,
    pub patient_domain: String,
}

impl Instance {
    /// `mes init` into a temporary folder, listeners on free ports, database chosen by `db`.
    pub async fn new(db: Db) -> Instance {
        Self::with(db, "hopital-a.mes.test", None, "").await
    }

    /// Like `new`, with a domain, an optional CA folder to share, and extra TOML appended
    /// to the `[smtp]` table.
    pub async fn with(db: Db, domain: &str, ca: Option<&Path>, smtp_extra: &str) -> Instance {
        Self::with_hostnames(db, domain, ca, smtp_extra, &[]).await
    }

    /// Like `with`, with more host names in the server certificate.
    pub async fn with_hostnames(
        db: Db,
        domain: &str,
        ca: Option<&Path>,
        smtp_extra: &str,
        hostnames: &[&str],
    ) -> Instance {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path().join("mes");
        let mut args = vec![
            "init".to_string(),
            root.display().to_string(),
            "--domain".into(),
            domain.into(),
            "--hostname".into(),
            format!("mx.{domain}"),
        ];
        if let Some(ca) = ca {
            args.push("--ca".into());
            args.push(ca.display().to_string());
        }
        for h in hostnames {
            args.push("--hostname".into());
            args.push(h.to_string());
        }
        // Only the first operator hosts patient.mes.test; others get a patient domain of their own.
        let patient_domain = if domain == "hopital-a.mes.test" {
            "patient.mes.test".to_string()
        } else {
            format!("patient.{domain}")
        };
        args.push("--patient-domain".into());
        args.push(patient_domain.clone());
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        mes_ok(&refs, None);
        let config = root.join("mes.toml");
        let mut text = std::fs::read_to_string(&config).expect("read config");
        for key in ["mx", "submission", "submissions", "imap", "imaps", "https"] {
            text = text.replace(
                &format!("{key} = \"127.0.0.1:{}\"", default_port(key)),
                &format!("{key} = \"127.0.0.1:0\""),
            );
        }
        text = text.replace("# shutdown_grace_secs = 20", "shutdown_grace_secs = 5");
        if db == Db::Postgres {
            let url = fresh_pg_database().await;
            text = text.replace(
                "# url = \"postgres://mes@127.0.0.1/mes\"",
                &format!("url = \"{url}\""),
            );
        }
        text = text.replace(
            "[smtp]\n",
            &format!("[smtp]\nauth_lockout_secs = 300\n{smtp_extra}\n"),
        );
        std::fs::write(&config, text).expect("write config");
        Instance {
            dir,
            config,
            db,
            domain: domain.to_string(),
            patient_domain,
        }
    }

    pub fn root(&self) -> PathBuf {
        self.config.parent().expect("config dir").to_path_buf()
    }

    pub fn cert(&self, name: &str) -> PathBuf {
        self.root().join("certs").join(name)
    }

    /// Runs a `mes` command against this instance's configuration.
    pub fn run(&self, args: &[&str], stdin: Option<&str>) -> String {
        let mut all = vec!["--config", self.config.to_str().expect("utf-8 path")];
        all.extend_from_slice(args);
        mes_ok(&all, stdin)
    }

    /// Creates an account with a known password.
    pub fn add_user(&self, address: &str, kind: &str, password: &str) {
        self.add_named_user(address, kind, "Test User", password);
    }

    /// `mes user add ADDRESS --kind KIND --name NAME --password-stdin`.
    pub fn add_named_user(&self, address: &str, kind: &str, name: &str, password: &str) {
        self.run(
            &[
                "user",
                "add",
                address,
                "--kind",
                kind,
                "--name",
                name,
                "--password-stdin",
            ],
            Some(&format!("{password}\n")),
        );
    }

    /// A professional with a name and a profession (`mes user add … --profession`).
    pub fn add_professional(&self, address: &str, name: &str, profession: &str, password: &str) {
        self.run(
            &[
                "user",
                "add",
                address,
                "--kind",
                "professional",
                "--name",
                name,
                "--profession",
                profession,
                "--password-stdin",
            ],
            Some(&format!("{password}\n")),
        );
    }

    /// A hospital system's account (`application`) mapped to the development
    /// PKI's client certificate (`certs/client.pem`).
    pub fn add_mapped_system(&self, address: &str, name: &str) {
        let dn = mes::pki::subject_dn_of_file(&self.cert("client.pem")).expect("client DN");
        self.run(
            &[
                "user",
                "add",
                address,
                "--kind",
                "application",
                "--name",
                name,
                "--certificate-subject",
                &dn,
            ],
            None,
        );
    }

    /// Edits the configuration file in place.
    pub fn edit_config(&self, f: impl FnOnce(String) -> String) {
        let text = std::fs::read_to_string(&self.config).expect("read config");
        std::fs::write(&self.config, f(text)).expect("write config");
    }

    /// Adds a whitelist entry for `domain`, operated by the holder of `cert`.
    pub fn whitelist(&self, domain: &str, cert: &Path) {
        let dn = mes::pki::subject_dn_of_file(cert).expect("certificate subject");
        self.edit_config(|t| {
            t.replacen(
                "whitelist = [\n",
                &format!("whitelist = [\n  {{ domain = \"{domain}\", operator_dn = \"{dn}\" }},\n"),
                1,
            )
        });
    }

    /// Adds keys to the `[relay]` table.
    pub fn relay(&self, keys: &str) {
        self.edit_config(|t| t.replacen("[relay]\n", &format!("[relay]\n{keys}\n"), 1));
    }

    /// Rewrites the configuration so the listeners keep the ports `server` got (for restarts).
    pub fn pin_ports(&self, server: &Server) {
        let text = std::fs::read_to_string(&self.config).expect("read config");
        let pinned: Vec<String> = text
            .lines()
            .map(|line| {
                for (name, addr) in &server.addrs {
                    if line.starts_with(&format!("{name} = \"127.0.0.1:0\"")) {
                        return format!("{name} = \"{addr}\"");
                    }
                }
                line.to_string()
            })
            .collect();
        std::fs::write(&self.config, pinned.join("\n") + "\n").expect("write config");
    }

    /// Starts `mes serve` and waits until it listens.
    pub fn start(&self) -> Server {
        Server::start(&self.config)
    }
}

fn default_port(key: &str) -> u16 {
    match key {
        "mx" => 2525,
        "submission" => 2587,
        "submissions" => 2465,
        "imap" => 2143,
        "imaps" => 2993,
        "https" => 8443,
        _ => 0,
    }
}

/// A running `mes serve`.
pub struct Server {
    pub child: Option<Child>,
    pub addrs: HashMap<String, SocketAddr>,
    pub stderr_path: PathBuf,
    _stderr_dir: tempfile::TempDir,
}

impl Server {
    /// Starts `mes serve` with `config`. A configuration with fixed ports (a
    /// restart after `pin_ports`) can find one of them taken by another
    /// test's outgoing connection, or by a listener another test bound to
    /// port 0 and got that number for: that start is tried again for up to
    /// a minute (as long as such a test may hold it).
    pub fn start(config: &Path) -> Server {
        Server::start_with_env(config, &[("RUST_LOG", "info")])
    }

    /// Like `start`, with environment variables (`RUST_LOG`…) of its own.
    pub fn start_with_env(config: &Path, env: &[(&str, &str)]) -> Server {
        Server::start_in(config, env, None)
    }

    /// Like `start_with_env`, in working directory `cwd` when given.
    pub fn start_in(config: &Path, env: &[(&str, &str)], cwd: Option<&Path>) -> Server {
        let mut attempt = 0;
        loop {
            match Server::try_start(config, env, cwd) {
                Ok(server) => return server,
                Err(log) if log.contains("Address already in use") && attempt < 240 => {
                    attempt += 1;
                    std::thread::sleep(Duration::from_millis(250));
                }
                Err(log) => panic!("mes serve did not become ready:\n{log}"),
            }
        }
    }

    fn try_start(
        config: &Path,
        env: &[(&str, &str)],
        cwd: Option<&Path>,
    ) -> Result<Server, String> {
        let stderr_dir = tempfile::tempdir().expect("tempdir");
        let stderr_path = stderr_dir.path().join("stderr.log");
        let stderr = std::fs::File::create(&stderr_path).expect("stderr file");
        let mut stdout_copy =
            std::fs::File::create(stderr_dir.path().join("stdout.log")).expect("stdout file");
        let mut command = Command::new(MES);
        if let Some(dir) = cwd {
            command.current_dir(dir);
        }
        let mut child = command
            .args(["serve", "--config", config.to_str().expect("utf-8")])
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .expect("spawn mes serve");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                {
                    use std::io::Write;
                    let _ = writeln!(stdout_copy, "{line}");
                }
                if tx.send(line).is_err() {
                    // Keep draining so the server never blocks on a full pipe.
                    continue;
                }
            }
        });
        let mut addrs = HashMap::new();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let remaining = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(remaining).map(|l| announcement(&l)) {
                Ok(line) if line == "mes: ready" => break,
                Ok(line) => {
                    if let Some(rest) = line.strip_prefix("mes: listening ") {
                        let (name, addr) = rest.split_once(' ').expect("listening line");
                        addrs.insert(name.to_string(), addr.parse().expect("addr"));
                    }
                }
                Err(_) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(std::fs::read_to_string(&stderr_path).unwrap_or_default());
                }
            }
        }
        Ok(Server {
            child: Some(child),
            addrs,
            stderr_path,
            _stderr_dir: stderr_dir,
        })
    }

    pub fn addr(&self, name: &str) -> SocketAddr {
        *self
            .addrs
            .get(name)
            .unwrap_or_else(|| panic!("no {name} listener"))
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.stderr_path).unwrap_or_default()
    }

    /// Everything `mes serve` printed on standard output so far.
    pub fn stdout(&self) -> String {
        let path = self.stderr_path.with_file_name("stdout.log");
        std::fs::read_to_string(path).unwrap_or_default()
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    /// SIGTERM, then wait up to `deadline`; returns the exit status (None: still running, killed).
    pub fn terminate(&mut self, deadline: Duration) -> Option<std::process::ExitStatus> {
        let mut child = self.child.take()?;
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        let end = Instant::now() + deadline;
        while Instant::now() < end {
            if let Ok(Some(status)) = child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        let _ = child.wait();
        None
    }

    /// SIGKILL, as a crash.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A line `mes serve` prints on standard output, in its text form (`[log]
/// format = "json"` prints `{"mes":"listening","listener":…,"address":…}`).
fn announcement(line: &str) -> String {
    let Ok(v) = serde_json::from_str::<serde_json::Value>(line) else {
        return line.to_string();
    };
    match (
        v["mes"].as_str(),
        v["listener"].as_str(),
        v["address"].as_str(),
    ) {
        (Some(what), Some(name), Some(addr)) => format!("mes: {what} {name} {addr}"),
        (Some(what), _, _) => format!("mes: {what}"),
        _ => line.to_string(),
    }
}

/// A rustls client configuration trusting `ca`, presenting `(cert, key)` when given.
pub fn client_tls(ca: &Path, identity: Option<(&Path, &Path)>) -> Arc<rustls::ClientConfig> {
    mes::tls::client_config(&[ca], identity).expect("client tls config")
}

/// A line-oriented SMTP client for scripted exchanges.
pub struct Smtp<S> {
    pub stream: TokioBufReader<S>,
}

/// A full reply: code and lines.
#[derive(Debug, Clone)]
pub struct SmtpReply {
    pub code: u16,
    pub lines: Vec<String>,
}

impl SmtpReply {
    pub fn text(&self) -> String {
        self.lines.join("\n")
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> Smtp<S> {
    pub fn new(stream: S) -> Self {
        Smtp {
            stream: TokioBufReader::new(stream),
        }
    }

    pub async fn read_reply(&mut self) -> SmtpReply {
        let mut lines = Vec::new();
        loop {
            let mut line = String::new();
            let n = tokio::time::timeout(Duration::from_secs(30), self.stream.read_line(&mut line))
                .await
                .expect("reply timeout")
                .expect("read reply");
            assert!(
                n > 0,
                "connection closed while waiting for a reply (got {lines:?})"
            );
            let line = line.trim_end().to_string();
            let code: u16 = line
                .get(..3)
                .and_then(|c| c.parse().ok())
                .unwrap_or_else(|| panic!("bad reply line {line:?}"));
            let last = line.as_bytes().get(3) != Some(&b'-');
            lines.push(line);
            if last {
                return SmtpReply { code, lines };
            }
        }
    }

    pub async fn send(&mut self, data: &str) {
        self.stream
            .get_mut()
            .write_all(data.as_bytes())
            .await
            .expect("write");
        self.stream.get_mut().flush().await.expect("flush");
    }

    pub async fn send_bytes(&mut self, data: &[u8]) {
        self.stream.get_mut().write_all(data).await.expect("write");
        self.stream.get_mut().flush().await.expect("flush");
    }

    /// Sends one command and returns its reply.
    pub async fn cmd(&mut self, line: &str) -> SmtpReply {
        self.send(&format!("{line}\r\n")).await;
        self.read_reply().await
    }

    /// Sends a command and asserts the reply code.
    pub async fn expect(&mut self, line: &str, code: u16) -> SmtpReply {
        let r = self.cmd(line).await;
        assert_eq!(r.code, code, "{line:?} got {:?}", r.lines);
        r
    }
}

/// Connects in plain text and reads the greeting.
pub async fn connect_plain(addr: SocketAddr) -> Smtp<TcpStream> {
    let tcp = TcpStream::connect(addr).await.expect("connect");
    let mut s = Smtp::new(tcp);
    let greeting = s.read_reply().await;
    assert_eq!(greeting.code, 220);
    s
}

/// Connects, EHLO, STARTTLS, handshake with `config`, EHLO again.
pub async fn connect_starttls(
    addr: SocketAddr,
    config: Arc<rustls::ClientConfig>,
) -> std::io::Result<Smtp<tokio_rustls::client::TlsStream<TcpStream>>> {
    let mut s = connect_plain(addr).await;
    s.expect("EHLO client.test", 250).await;
    s.expect("STARTTLS", 220).await;
    let tcp = s.stream.into_inner();
    let connector = tokio_rustls::TlsConnector::from(config);
    let name = rustls_pki_types::ServerName::try_from("localhost").expect("name");
    let tls = connector.connect(name, tcp).await?;
    // With TLS 1.3 a refused client certificate shows on the first read, not in the handshake.
    let mut s = Smtp::new(tls);
    s.send("EHLO client.test\r\n").await;
    let mut line = String::new();
    s.stream.read_line(&mut line).await?;
    if line.is_empty() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::ConnectionAborted,
            "closed after handshake",
        ));
    }
    loop {
        if line.as_bytes().get(3) != Some(&b'-') {
            break;
        }
        line.clear();
        s.stream.read_line(&mut line).await?;
    }
    Ok(s)
}

/// Connects with implicit TLS and reads the greeting.
pub async fn connect_tls(
    addr: SocketAddr,
    config: Arc<rustls::ClientConfig>,
) -> std::io::Result<Smtp<tokio_rustls::client::TlsStream<TcpStream>>> {
    let tcp = TcpStream::connect(addr).await?;
    let connector = tokio_rustls::TlsConnector::from(config);
    let name = rustls_pki_types::ServerName::try_from("localhost").expect("name");
    let tls = connector.connect(name, tcp).await?;
    let mut s = Smtp::new(tls);
    let greeting = s.read_reply().await;
    assert_eq!(greeting.code, 220);
    Ok(s)
}

/// Base64 of a SASL PLAIN response.
pub fn plain(user: &str, password: &str) -> String {
    mes::identity::sasl::encode_b64(format!("\0{user}\0{password}").as_bytes())
}

/// Opens the instance's store directly (to check what was committed).
pub async fn open_store(instance: &Instance) -> mes::store::Store {
    let config = mes::config::Config::load(&instance.config).expect("config");
    mes::store::Store::open(&config.database_url, 2)
        .await
        .expect("store")
}

/// The messages in `address`'s INBOX.
pub async fn inbox(
    store: &mes::store::Store,
    address: &str,
) -> Vec<mes::store::messages::FiledMessage> {
    let account = store
        .account_by_address(address)
        .await
        .expect("lookup")
        .expect("account exists");
    let mailbox = store
        .mailbox_id(account.id, "INBOX")
        .await
        .expect("mailbox")
        .expect("inbox");
    store.folder_messages(mailbox).await.expect("messages")
}

/// A tagged IMAP client for scripted exchanges.
pub struct Imap<S> {
    pub stream: TokioBufReader<S>,
    next_tag: u32,
}

/// Everything the server sent for one command: untagged lines (with literals inlined) and the tagged status.
#[derive(Debug, Clone)]
pub struct ImapReply {
    pub untagged: Vec<String>,
    pub status: String,
}

impl ImapReply {
    pub fn ok(&self) -> bool {
        self.status.split(' ').nth(1) == Some("OK")
    }
    pub fn kind(&self) -> &str {
        self.status.split(' ').nth(1).unwrap_or("")
    }
    pub fn all(&self) -> String {
        let mut s = self.untagged.join("\n");
        s.push('\n');
        s.push_str(&self.status);
        s
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> Imap<S> {
    pub fn new(stream: S) -> Self {
        Imap {
            stream: TokioBufReader::new(stream),
            next_tag: 1,
        }
    }

    /// Reads one response line, inlining any literal it announces.
    pub async fn read_line(&mut self) -> String {
        let mut out = Vec::new();
        loop {
            let mut line = Vec::new();
            let n = tokio::time::timeout(
                Duration::from_secs(30),
                self.stream.read_until(b'\n', &mut line),
            )
            .await
            .expect("IMAP read timeout")
            .expect("IMAP read");
            assert!(
                n > 0,
                "connection closed; got so far: {}",
                String::from_utf8_lossy(&out)
            );
            let text = String::from_utf8_lossy(&line).into_owned();
            let trimmed = text.trim_end_matches(['\r', '\n']);
            out.extend_from_slice(trimmed.as_bytes());
            // A literal {n} at the end of the line: read n bytes and continue the line.
            if let Some(open) = trimmed.rfind('{')
                && trimmed.ends_with('}')
                && let Ok(len) = trimmed[open + 1..trimmed.len() - 1]
                    .trim_end_matches('+')
                    .parse::<usize>()
            {
                let mut buf = vec![0u8; len];
                use tokio::io::AsyncReadExt;
                self.stream.read_exact(&mut buf).await.expect("literal");
                out.extend_from_slice(b"\n");
                out.extend_from_slice(&buf);
                continue;
            }
            return String::from_utf8_lossy(&out).into_owned();
        }
    }

    pub async fn send_raw(&mut self, data: &[u8]) {
        self.stream.get_mut().write_all(data).await.expect("write");
        self.stream.get_mut().flush().await.expect("flush");
    }

    pub fn tag(&mut self) -> String {
        let t = format!("a{}", self.next_tag);
        self.next_tag += 1;
        t
    }

    /// Reads until the tagged line of `tag`.
    pub async fn read_until_tagged(&mut self, tag: &str) -> ImapReply {
        let mut untagged = Vec::new();
        loop {
            let line = self.read_line().await;
            if line.starts_with(&format!("{tag} ")) {
                return ImapReply {
                    untagged,
                    status: line,
                };
            }
            untagged.push(line);
        }
    }

    /// Sends `command` with a fresh tag and returns the reply.
    pub async fn cmd(&mut self, command: &str) -> ImapReply {
        let tag = self.tag();
        self.send_raw(format!("{tag} {command}\r\n").as_bytes())
            .await;
        self.read_until_tagged(&tag).await
    }

    /// Sends a command and asserts the tagged status kind (OK/NO/BAD).
    pub async fn expect(&mut self, command: &str, kind: &str) -> ImapReply {
        let r = self.cmd(command).await;
        assert_eq!(r.kind(), kind, "{command:?} got:\n{}", r.all());
        r
    }

    /// APPEND with a synchronising literal.
    pub async fn append(&mut self, mailbox: &str, flags: &str, message: &[u8]) -> ImapReply {
        let tag = self.tag();
        self.send_raw(
            format!("{tag} APPEND {mailbox} ({flags}) {{{}}}\r\n", message.len()).as_bytes(),
        )
        .await;
        let cont = self.read_line().await;
        assert!(cont.starts_with('+'), "expected continuation, got {cont}");
        self.send_raw(message).await;
        self.send_raw(b"\r\n").await;
        self.read_until_tagged(&tag).await
    }
}

/// Connects with implicit TLS to an IMAP listener, reads the greeting.
pub async fn imap_tls(
    addr: SocketAddr,
    ca: &Path,
) -> Imap<tokio_rustls::client::TlsStream<TcpStream>> {
    let tcp = TcpStream::connect(addr).await.expect("connect");
    let connector = tokio_rustls::TlsConnector::from(client_tls(ca, None));
    let name = rustls_pki_types::ServerName::try_from("localhost").expect("name");
    let tls = connector.connect(name, tcp).await.expect("tls");
    let mut c = Imap::new(tls);
    let greeting = c.read_line().await;
    assert!(greeting.starts_with("* OK"), "{greeting}");
    c
}

/// Logs in on a fresh implicit-TLS connection.
pub async fn imap_login(
    addr: SocketAddr,
    ca: &Path,
    user: &str,
    password: &str,
) -> Imap<tokio_rustls::client::TlsStream<TcpStream>> {
    let mut c = imap_tls(addr, ca).await;
    c.expect(&format!("LOGIN {user} \"{password}\""), "OK")
        .await;
    c
}

/// Calls the patient API with curl; returns (HTTP status, JSON body or Null).
pub fn api(
    server: &Server,
    ca: &Path,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<&str>,
) -> (u16, serde_json::Value) {
    let url = format!("https://localhost:{}{path}", server.addr("https").port());
    let mut cmd = Command::new("curl");
    cmd.args([
        "-sS",
        "--cacert",
        ca.to_str().expect("utf-8"),
        "-X",
        method,
        "-w",
        "\n%{http_code}",
        &url,
    ]);
    if let Some(t) = token {
        cmd.args(["-H", &format!("authorization: Bearer {t}")]);
    }
    if let Some(b) = body {
        cmd.args(["-H", "content-type: application/json", "--data-binary", b]);
    }
    let out = cmd.output().expect("curl");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (json, code) = text.rsplit_once('\n').unwrap_or(("", &text));
    let status: u16 = code
        .trim()
        .parse()
        .unwrap_or_else(|_| panic!("curl: {text} {}", String::from_utf8_lossy(&out.stderr)));
    (
        status,
        serde_json::from_str(json).unwrap_or(serde_json::Value::Null),
    )
}

/// Logs a patient in through the API; returns the token.
pub fn api_login(server: &Server, ca: &Path, login: &str, password: &str) -> String {
    let (status, body) = api(
        server,
        ca,
        "POST",
        "/api/v1/login",
        None,
        Some(&serde_json::json!({"login": login, "password": password}).to_string()),
    );
    assert_eq!(status, 200, "{body}");
    body["token"].as_str().expect("token").to_string()
}

/// Logs in on the implicit-TLS submission port and sends `data` (without the final dot)
/// from `user` to `to`, with `params` after MAIL FROM (e.g. ` RET=HDRS`); returns the final code.
pub async fn submit(
    addr: SocketAddr,
    ca: &Path,
    user: &str,
    password: &str,
    params: &str,
    to: &str,
    data: &str,
) -> u16 {
    let mut s = connect_tls(addr, client_tls(ca, None))
        .await
        .expect("submissions");
    s.expect("EHLO client.test", 250).await;
    s.expect(&format!("AUTH PLAIN {}", plain(user, password)), 235)
        .await;
    s.expect(&format!("MAIL FROM:<{user}>{params}"), 250).await;
    s.expect(&format!("RCPT TO:<{to}>"), 250).await;
    s.expect("DATA", 354).await;
    s.send(&format!("{data}.\r\n")).await;
    s.read_reply().await.code
}

/// `from` (address, password) sends `zip` as an IHE_XDM.ZIP attachment to `to`
/// over submission (subject `XDM/1.0/DDM`); returns the final SMTP code.
pub async fn send_xdm(
    instance: &Instance,
    server: &Server,
    from: (&str, &str),
    to: &str,
    zip: &[u8],
    extra_headers: &str,
) -> u16 {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD.encode(zip);
    let body: String = b64
        .as_bytes()
        .chunks(76)
        .map(|c| format!("{}\r\n", String::from_utf8_lossy(c)))
        .collect();
    let data = format!(
        "From: <{sender}>\r\nTo: <{to}>\r\nSubject: Envoi de document XDM/1.0/DDM\r\n\
         Message-ID: <xdm-{id}@hopital-a.mes.test>\r\n{extra_headers}\
         MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"sep\"\r\n\r\n\
         --sep\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nVeuillez trouver le document.\r\n\
         --sep\r\nContent-Type: application/zip; name=\"IHE_XDM.ZIP\"\r\n\
         Content-Disposition: attachment; filename=\"IHE_XDM.ZIP\"\r\n\
         Content-Transfer-Encoding: base64\r\n\r\n{body}--sep--\r\n",
        sender = from.0,
        id = random_hex(8),
    );
    submit(
        server.addr("submissions"),
        &instance.cert("ca.pem"),
        from.0,
        from.1,
        "",
        to,
        &data,
    )
    .await
}

/// A sample of tests/fixtures/corpus/xdm/ans-interop-exemples-xdm (copied from ../shared/corpus).
pub fn xdm_sample(name: &str) -> Vec<u8> {
    let p = format!(
        "{}/tests/fixtures/corpus/xdm/ans-interop-exemples-xdm/{name}/IHE_XDM.ZIP",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read(&p).unwrap_or_else(|e| panic!("{p}: {e}"))
}

/// A sample of [`xdm_sample`] whose document entry asks for the withdrawal
/// of its document (ANS `urn:action:extraMetadataSlot` = `D`): the slot is
/// set where the sample has one, added first in the entry otherwise. The
/// document itself is unchanged, so hash and size still hold.
pub fn xdm_withdrawal(name: &str) -> Vec<u8> {
    use std::io::{Read, Write};
    const SLOT: &str = "Slot name=\"urn:action:extraMetadataSlot\"";
    let zip = xdm_sample(name);
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(&zip[..])).unwrap();
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    for i in 0..archive.len() {
        let mut f = archive.by_index(i).unwrap();
        if f.is_dir() {
            continue;
        }
        let mut data = Vec::new();
        f.read_to_end(&mut data).unwrap();
        if f.name().ends_with("METADATA.XML") {
            let text = String::from_utf8(data).unwrap();
            let text = match text.find(SLOT) {
                Some(at) => {
                    let value = at + text[at..].find("Value>").unwrap() + "Value>".len();
                    let end = value + text[value..].find('<').unwrap();
                    format!("{}D{}", &text[..value], &text[end..])
                }
                None => {
                    let entry = text.find("ExtrinsicObject ").unwrap();
                    let open = entry + text[entry..].find('>').unwrap() + 1;
                    format!(
                        "{}<ns2:{SLOT}><ns2:ValueList><ns2:Value>D</ns2:Value></ns2:ValueList></ns2:Slot>{}",
                        &text[..open],
                        &text[open..]
                    )
                }
            };
            data = text.into_bytes();
        }
        w.start_file(f.name(), zip::write::SimpleFileOptions::default())
            .unwrap();
        w.write_all(&data).unwrap();
    }
    w.finish().unwrap().into_inner()
}

/// A professional and the client certificate their software presents
/// (password: correct horse battery staple).
pub struct Pro {
    pub address: String,
    pub cert: PathBuf,
    pub key: PathBuf,
}

pub fn professional(instance: &Instance, local: &str, name: &str) -> Pro {
    let ca = mes::pki::Ca::load(&instance.cert("ca.pem"), &instance.cert("ca.key")).unwrap();
    let issued = ca
        .issue(&mes::pki::LeafSpec::new(name, "Cabinet de test"))
        .unwrap();
    let cert = instance.root().join(format!("{local}.pem"));
    let key = instance.root().join(format!("{local}.key"));
    std::fs::write(&cert, &issued.cert_pem).unwrap();
    std::fs::write(&key, &issued.key_pem).unwrap();
    let address = format!("{local}@hopital-a.mes.test");
    instance.run(
        &[
            "user",
            "add",
            &address,
            "--kind",
            "professional",
            "--name",
            name,
            "--certificate-subject",
            &issued.subject_dn,
            "--establishment",
            "CHU de Test",
            "--profession",
            "Médecin",
            "--password-stdin",
        ],
        Some("correct horse battery staple\n"),
    );
    Pro { address, cert, key }
}

/// GET on the professionals' API with `pro`'s certificate; (status, body).
pub fn pro_get(
    server: &Server,
    instance: &Instance,
    pro: &Pro,
    path: &str,
) -> (u16, serde_json::Value) {
    let out = Command::new("curl")
        .args([
            "-sS",
            "--cacert",
            instance.cert("ca.pem").to_str().unwrap(),
            "--cert",
            pro.cert.to_str().unwrap(),
            "--key",
            pro.key.to_str().unwrap(),
            "-w",
            "\n%{http_code}",
            &format!("https://localhost:{}{path}", server.addr("https").port()),
        ])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').unwrap();
    (
        code.trim().parse().unwrap(),
        serde_json::from_str(body).unwrap_or(serde_json::Value::Null),
    )
}

/// A minimal SMTP sink: accepts every message and keeps it.
pub async fn smtp_sink() -> (u16, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let got = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let store = got.clone();
    tokio::spawn(async move {
        loop {
            let Ok((sock, _)) = listener.accept().await else {
                return;
            };
            let store = store.clone();
            tokio::spawn(async move {
                let (r, mut w) = sock.into_split();
                let mut r = BufReader::new(r);
                let _ = w.write_all(b"220 sink ESMTP\r\n").await;
                let mut data = false;
                let mut message = String::new();
                let mut line = String::new();
                while r.read_line(&mut line).await.unwrap_or(0) > 0 {
                    if data {
                        if line == ".\r\n" {
                            data = false;
                            store.lock().unwrap().push(std::mem::take(&mut message));
                            let _ = w.write_all(b"250 queued\r\n").await;
                        } else {
                            message.push_str(&line);
                        }
                    } else {
                        let cmd = line.to_ascii_uppercase();
                        let reply: &[u8] = if cmd.starts_with("EHLO") {
                            b"250-sink\r\n250 8BITMIME\r\n"
                        } else if cmd.starts_with("DATA") {
                            data = true;
                            b"354 go\r\n"
                        } else if cmd.starts_with("QUIT") {
                            let _ = w.write_all(b"221 bye\r\n").await;
                            return;
                        } else {
                            b"250 ok\r\n"
                        };
                        let _ = w.write_all(reply).await;
                    }
                    line.clear();
                }
            });
        }
    });
    (port, got)
}

/// Like [`professional`], of any account kind and profession (None: no
/// `--profession`).
pub fn professional_as(
    instance: &Instance,
    local: &str,
    name: &str,
    kind: &str,
    profession: Option<&str>,
) -> Pro {
    let ca = mes::pki::Ca::load(&instance.cert("ca.pem"), &instance.cert("ca.key")).unwrap();
    let issued = ca
        .issue(&mes::pki::LeafSpec::new(name, "Cabinet de test"))
        .unwrap();
    let cert = instance.root().join(format!("{local}.pem"));
    let key = instance.root().join(format!("{local}.key"));
    std::fs::write(&cert, &issued.cert_pem).unwrap();
    std::fs::write(&key, &issued.key_pem).unwrap();
    let address = format!("{local}@hopital-a.mes.test");
    let mut args = vec![
        "user",
        "add",
        &address,
        "--kind",
        kind,
        "--name",
        name,
        "--certificate-subject",
        &issued.subject_dn,
        "--password-stdin",
    ];
    if let Some(p) = profession {
        args.extend(["--profession", p]);
    }
    instance.run(&args, Some("correct horse battery staple\n"));
    Pro { address, cert, key }
}

/// A request on the professionals' API with `pro`'s certificate and an
/// optional JSON body; (status, body exactly as sent).
pub fn pro_request(
    server: &Server,
    instance: &Instance,
    pro: &Pro,
    method: &str,
    path: &str,
    json: Option<&str>,
) -> (u16, String) {
    let mut cmd = Command::new("curl");
    cmd.args([
        "-sS",
        "-X",
        method,
        "--cacert",
        instance.cert("ca.pem").to_str().unwrap(),
        "--cert",
        pro.cert.to_str().unwrap(),
        "--key",
        pro.key.to_str().unwrap(),
        "-w",
        "\n%{http_code}",
        &format!("https://localhost:{}{path}", server.addr("https").port()),
    ]);
    if let Some(b) = json {
        cmd.args(["-H", "content-type: application/json", "--data-binary", b]);
    }
    let out = cmd.output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').unwrap();
    (code.trim().parse().unwrap(), body.to_string())
}

/// Connects with implicit TLS from the local address `from` (another
/// loopback address, e.g. 127.0.0.2: the server sees it as another client).
pub async fn connect_tls_from(
    addr: SocketAddr,
    config: Arc<rustls::ClientConfig>,
    from: std::net::IpAddr,
) -> std::io::Result<Smtp<tokio_rustls::client::TlsStream<TcpStream>>> {
    let socket = tokio::net::TcpSocket::new_v4()?;
    socket.bind(SocketAddr::new(from, 0))?;
    let tcp = socket.connect(addr).await?;
    let connector = tokio_rustls::TlsConnector::from(config);
    let name = rustls_pki_types::ServerName::try_from("localhost").expect("name");
    let tls = connector.connect(name, tcp).await?;
    let mut s = Smtp::new(tls);
    let greeting = s.read_reply().await;
    assert_eq!(greeting.code, 220);
    Ok(s)
}

/// Asserts that `value` is valid against the JSON Schema at `schema` (a path
/// under the crate's root), with Python's jsonschema (Draft 2020-12), which
/// `./scripts/test` installs when missing.
#[allow(dead_code)]
pub fn assert_json_schema(value: &serde_json::Value, schema: &str) {
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), value.to_string()).unwrap();
    let schema = format!("{}/{schema}", env!("CARGO_MANIFEST_DIR"));
    let out = std::process::Command::new("python3")
        .args([
            "-c",
            "import json, sys, jsonschema\n\
             s = json.load(open(sys.argv[1]))\n\
             jsonschema.Draft202012Validator.check_schema(s)\n\
             jsonschema.Draft202012Validator(s).validate(json.load(open(sys.argv[2])))",
            &schema,
            file.path().to_str().unwrap(),
        ])
        .output()
        .expect("python3");
    assert!(
        out.status.success(),
        "{schema}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}
