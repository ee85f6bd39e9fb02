//! `mes bench imap`: a 10,000-message mailbox, the header FETCH clients do on
//! opening it, a mixed workload of concurrent clients (FETCH, STORE, SEARCH,
//! APPEND), and the server's resident memory with many idle IDLE connections.
//!
//! The client is a small tagged line client over rustls: it only needs to send
//! commands and wait for their tagged completion.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Args;
use rand::Rng;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpSocket, TcpStream};
use tokio_rustls::client::TlsStream;

use super::percentile_ms;

/// Arguments of `mes bench imap`.
#[derive(Debug, Clone, Args)]
pub struct ImapBenchArgs {
    /// IMAPS (implicit TLS) address.
    #[arg(long, default_value = "127.0.0.1:2993")]
    pub server: SocketAddr,
    /// CA certificate (PEM) to verify the server with.
    #[arg(long)]
    pub ca: PathBuf,
    /// Login (password from MES_BENCH_PASSWORD).
    #[arg(long)]
    pub user: String,
    /// Messages to have in INBOX before measuring (appended when missing).
    #[arg(long, default_value_t = 10_000)]
    pub messages: usize,
    /// Concurrent clients of the mixed workload.
    #[arg(long, default_value_t = 8)]
    pub clients: usize,
    /// Seconds of mixed workload.
    #[arg(long, default_value_t = 10)]
    pub duration: u64,
    /// Idle IDLE connections to open for the memory measurement (0: skip).
    #[arg(long, default_value_t = 0)]
    pub idle: usize,
    /// PID of the server, to read its resident memory (VmRSS).
    #[arg(long)]
    pub server_pid: Option<u32>,
}

type Conn = BufReader<TlsStream<TcpStream>>;

struct Client {
    conn: Conn,
    tag: u64,
}

impl Client {
    async fn connect(args: &ImapBenchArgs, source: Option<IpAddr>) -> anyhow::Result<Client> {
        let config = crate::tls::client_config(&[&args.ca], None)?;
        let socket = TcpSocket::new_v4()?;
        if let Some(ip) = source {
            socket.bind(SocketAddr::new(ip, 0))?;
        }
        let tcp = socket.connect(args.server).await?;
        let name = rustls_pki_types::ServerName::try_from("localhost")?;
        let tls = tokio_rustls::TlsConnector::from(config)
            .connect(name, tcp)
            .await?;
        let mut c = Client {
            conn: BufReader::new(tls),
            tag: 0,
        };
        let greeting = c.line().await?;
        if !greeting.starts_with("* OK") {
            bail!("unexpected greeting: {greeting}");
        }
        let password =
            std::env::var("MES_BENCH_PASSWORD").context("MES_BENCH_PASSWORD is not set")?;
        c.run(&format!("LOGIN \"{}\" \"{}\"", args.user, password))
            .await?;
        Ok(c)
    }

    async fn line(&mut self) -> anyhow::Result<String> {
        let mut buf = Vec::new();
        loop {
            let mut line = Vec::new();
            if self.conn.read_until(b'\n', &mut line).await? == 0 {
                bail!("connection closed");
            }
            let text = String::from_utf8_lossy(&line).trim_end().to_string();
            buf.extend_from_slice(text.as_bytes());
            if let Some(open) = text.rfind('{')
                && text.ends_with('}')
                && let Ok(n) = text[open + 1..text.len() - 1].parse::<usize>()
            {
                let mut lit = vec![0; n];
                self.conn.read_exact(&mut lit).await?;
                continue;
            }
            return Ok(String::from_utf8_lossy(&buf).into_owned());
        }
    }

    /// Sends a command, waits for its tagged OK; returns the number of untagged lines.
    async fn run(&mut self, command: &str) -> anyhow::Result<usize> {
        self.tag += 1;
        let tag = format!("b{}", self.tag);
        self.conn
            .get_mut()
            .write_all(format!("{tag} {command}\r\n").as_bytes())
            .await?;
        let mut untagged = 0;
        loop {
            let line = self.line().await?;
            if let Some(rest) = line.strip_prefix(&format!("{tag} ")) {
                if rest.starts_with("OK") {
                    return Ok(untagged);
                }
                bail!("{command}: {rest}");
            }
            untagged += 1;
        }
    }

    async fn append_many(&mut self, count: usize, start: usize) -> anyhow::Result<()> {
        let mut batch = Vec::new();
        let mut tags = Vec::new();
        for i in start..start + count {
            let msg = message(i);
            self.tag += 1;
            let tag = format!("b{}", self.tag);
            batch
                .extend_from_slice(format!("{tag} APPEND INBOX {{{}+}}\r\n", msg.len()).as_bytes());
            batch.extend_from_slice(&msg);
            batch.extend_from_slice(b"\r\n");
            tags.push(tag);
        }
        self.conn.get_mut().write_all(&batch).await?;
        for tag in tags {
            loop {
                let line = self.line().await?;
                if line.starts_with(&format!("{tag} ")) {
                    if !line.contains(" OK") {
                        bail!("APPEND failed: {line}");
                    }
                    break;
                }
            }
        }
        Ok(())
    }
}

fn message(i: usize) -> Vec<u8> {
    format!(
        "From: Dr Marie Curie <marie.curie@hopital-a.mes.test>\r\nTo: Dr Jean Dupont <jean.dupont@hopital-a.mes.test>\r\n\
         Subject: Compte rendu {i}\r\nDate: Tue, 24 Nov 2026 10:00:00 +0100\r\nMessage-ID: <bench-{i}@mes.test>\r\n\
         MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n\
         Bonjour,\r\nVoici le compte rendu numero {i}.\r\nBien cordialement.\r\n"
    )
    .into_bytes()
}

fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// Runs the IMAP benchmark and prints its figures.
pub async fn run(args: ImapBenchArgs) -> anyhow::Result<()> {
    let mut c = Client::connect(&args, None).await?;
    c.run("SELECT INBOX").await?;
    let status_count = {
        c.tag += 1;
        let tag = format!("b{}", c.tag);
        c.conn
            .get_mut()
            .write_all(format!("{tag} STATUS INBOX (MESSAGES)\r\n").as_bytes())
            .await?;
        let mut count = 0usize;
        loop {
            let line = c.line().await?;
            if let Some(rest) = line.split("MESSAGES ").nth(1) {
                count = rest.trim_end_matches(')').parse().unwrap_or(0);
            }
            if line.starts_with(&format!("{tag} ")) {
                break;
            }
        }
        count
    };
    if status_count < args.messages {
        let t0 = Instant::now();
        let mut i = status_count;
        while i < args.messages {
            let n = (args.messages - i).min(500);
            c.append_many(n, i).await?;
            i += n;
        }
        println!(
            "appended {} messages in {:.2} s",
            args.messages - status_count,
            t0.elapsed().as_secs_f64()
        );
    }
    c.run("SELECT INBOX").await?;
    let mut fetch_times = Vec::new();
    for _ in 0..5 {
        let t0 = Instant::now();
        let n = c
            .run("UID FETCH 1:* (UID FLAGS RFC822.SIZE ENVELOPE)")
            .await?;
        fetch_times.push(t0.elapsed());
        if n < args.messages {
            bail!("FETCH returned {n} messages");
        }
    }
    // The first one may fill the server's folder listing (`imap/listing.rs`).
    let first = fetch_times[0].as_secs_f64() * 1000.0;
    fetch_times.sort();
    println!(
        "FETCH 1:* (UID FLAGS RFC822.SIZE ENVELOPE) on {} messages: first {:.1} ms, min {:.1} ms, median {:.1} ms, max {:.1} ms",
        args.messages,
        first,
        percentile_ms(&fetch_times, 0.0),
        percentile_ms(&fetch_times, 0.5),
        percentile_ms(&fetch_times, 1.0)
    );

    // Mixed workload.
    let deadline = Instant::now() + Duration::from_secs(args.duration);
    let mut tasks = Vec::new();
    let args_shared = Arc::new(args.clone());
    for w in 0..args.clients {
        let args = args_shared.clone();
        tasks.push(tokio::spawn(async move {
            let mut c = Client::connect(&args, None).await?;
            c.run("SELECT INBOX").await?;
            let mut lat: Vec<(&'static str, Duration)> = Vec::new();
            let mut i = 0usize;
            while Instant::now() < deadline {
                let (kind, cmd) = {
                    let mut rng = rand::rng();
                    let n = rng.random_range(1..=args.messages.max(1));
                    match i % 4 {
                        0 => (
                            "fetch",
                            format!(
                                "FETCH {n}:{} (UID FLAGS ENVELOPE)",
                                (n + 49).min(args.messages)
                            ),
                        ),
                        1 => ("store", format!("STORE {n} +FLAGS.SILENT ($Bench{w})")),
                        2 => ("search", format!("SEARCH SUBJECT \"rendu {n}\"")),
                        _ => ("noop", "NOOP".to_string()),
                    }
                };
                let t0 = Instant::now();
                if kind == "noop" {
                    c.append_many(1, 1_000_000 + w * 100_000 + i).await?;
                    lat.push(("append", t0.elapsed()));
                } else {
                    c.run(&cmd).await?;
                    lat.push((kind, t0.elapsed()));
                }
                i += 1;
            }
            anyhow::Ok(lat)
        }));
    }
    let mut all: Vec<(&'static str, Duration)> = Vec::new();
    for t in tasks {
        all.extend(t.await??);
    }
    println!(
        "mixed workload: {} clients, {} operations in {} s: {:.0} ops/s",
        args.clients,
        all.len(),
        args.duration,
        all.len() as f64 / args.duration as f64
    );
    for kind in ["fetch", "store", "search", "append"] {
        let mut l: Vec<Duration> = all
            .iter()
            .filter(|(k, _)| *k == kind)
            .map(|(_, d)| *d)
            .collect();
        l.sort();
        println!(
            "  {kind:7} n={:6} p50 {:7.1} ms  p99 {:7.1} ms",
            l.len(),
            percentile_ms(&l, 0.5),
            percentile_ms(&l, 0.99)
        );
    }

    // Idle IDLE connections.
    if args.idle > 0 {
        let before = args.server_pid.and_then(rss_kib);
        let mut idlers = Vec::with_capacity(args.idle);
        for i in 0..args.idle {
            // Spread over loopback source addresses to stay under the per-IP limit.
            let source = IpAddr::V4(Ipv4Addr::new(
                127,
                0,
                1 + (i / 50) as u8,
                1 + (i % 50) as u8,
            ));
            let mut c = Client::connect(&args, Some(source)).await?;
            c.run("SELECT INBOX").await?;
            c.tag += 1;
            c.conn
                .get_mut()
                .write_all(format!("b{} IDLE\r\n", c.tag).as_bytes())
                .await?;
            let cont = c.line().await?;
            if !cont.starts_with('+') {
                bail!("IDLE refused: {cont}");
            }
            idlers.push(c);
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
        let after = args.server_pid.and_then(rss_kib);
        match (before, after) {
            (Some(b), Some(a)) => println!(
                "{} idle IDLE connections: server RSS {} KiB -> {} KiB, {:.1} KiB per connection",
                args.idle,
                b,
                a,
                (a.saturating_sub(b)) as f64 / args.idle as f64
            ),
            _ => println!(
                "{} idle IDLE connections open (pass --server-pid to measure memory)",
                args.idle
            ),
        }
        drop(idlers);
    }
    Ok(())
}
