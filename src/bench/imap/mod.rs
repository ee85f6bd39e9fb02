//! `mes bench imap`: a 10,000-message mailbox, the header FETCH clients do on
//! opening it, a workload of concurrent clients, and the server's resident
//! memory with many idle IDLE connections. Two workloads (`--profile`):
//! `commands`, long-lived sessions sending FETCH, STORE, SEARCH and APPEND;
//! `sessions`, a client population where each client logs in, lists, opens,
//! reads, flags, appends, expunges and logs out, again and again
//! (`sessions.rs`). The client (`client.rs`) speaks to any IMAP server, so
//! `bench/compare-dovecot.sh` drives Dovecot the same way.

mod client;
mod sessions;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::bail;
use clap::{Args, ValueEnum};
use rand::Rng;

use super::percentile_ms;
use client::Client;

/// Arguments of `mes bench imap`.
#[derive(Debug, Clone, Args)]
pub struct ImapBenchArgs {
    /// IMAPS (implicit TLS) address.
    #[arg(long, default_value = "127.0.0.1:2993")]
    pub server: SocketAddr,
    /// CA certificate (PEM) to verify the server with.
    #[arg(long)]
    pub ca: PathBuf,
    /// Login (password from MES_BENCH_PASSWORD); repeat it to spread the
    /// clients over several accounts (client i uses user i mod n).
    #[arg(long, required = true)]
    pub user: Vec<String>,
    /// Messages to have in each account's INBOX before measuring (appended when missing).
    #[arg(long, default_value_t = 10_000)]
    pub messages: usize,
    /// Concurrent clients of the workload.
    #[arg(long, default_value_t = 8)]
    pub clients: usize,
    /// Seconds of workload.
    #[arg(long, default_value_t = 10)]
    pub duration: u64,
    /// Which workload.
    #[arg(long, value_enum, default_value_t = Profile::Commands)]
    pub profile: Profile,
    /// Skip the five header FETCHes of the whole INBOX.
    #[arg(long)]
    pub no_header_fetch: bool,
    /// Idle IDLE connections to open for the memory measurement (0: skip).
    #[arg(long, default_value_t = 0)]
    pub idle: usize,
    /// PID of the server, to read its resident memory (VmRSS).
    #[arg(long)]
    pub server_pid: Option<u32>,
}

/// The workloads of `mes bench imap`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Profile {
    /// Long-lived sessions: FETCH of 50 envelopes, STORE, SEARCH SUBJECT, APPEND.
    Commands,
    /// A client population: LOGIN, LIST, STATUS, SELECT, FETCH flags and
    /// envelopes, FETCH a body, STORE, APPEND, EXPUNGE, LOGOUT, in a loop.
    Sessions,
}

/// Latencies of one workload, by command.
type Samples = Vec<(&'static str, Duration)>;

fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// Fills `user`'s INBOX up to `messages`.
async fn fill(args: &ImapBenchArgs, user: &str) -> anyhow::Result<()> {
    let mut c = Client::connect(args.server, client::tls(&args.ca)?, None).await?;
    c.login(user).await?;
    let status = c.command("STATUS INBOX (MESSAGES)").await?;
    let present = status
        .untagged
        .iter()
        .find_map(|l| l.split("MESSAGES ").nth(1))
        .and_then(|rest| rest.trim_end_matches(')').parse().ok())
        .unwrap_or(0usize);
    if present < args.messages {
        let t0 = Instant::now();
        let mut i = present;
        while i < args.messages {
            let n = (args.messages - i).min(500);
            c.append_many(n, i).await?;
            i += n;
        }
        println!(
            "{user}: appended {} messages in {:.2} s",
            args.messages - present,
            t0.elapsed().as_secs_f64()
        );
    }
    let _ = c.command("LOGOUT").await;
    Ok(())
}

/// Prints the operations per second and the latency of each command.
fn report(what: &str, clients: usize, seconds: f64, samples: &Samples) {
    println!(
        "{what}: {clients} clients, {} operations in {seconds:.1} s: {:.0} ops/s",
        samples.len(),
        samples.len() as f64 / seconds
    );
    let mut kinds: Vec<&'static str> = Vec::new();
    for (k, _) in samples {
        if !kinds.contains(k) {
            kinds.push(k);
        }
    }
    for kind in kinds {
        let mut l: Vec<Duration> = samples
            .iter()
            .filter(|(k, _)| *k == kind)
            .map(|(_, d)| *d)
            .collect();
        l.sort();
        println!(
            "  {kind:8} n={:6} p50 {:7.2} ms  p99 {:7.2} ms",
            l.len(),
            percentile_ms(&l, 0.5),
            percentile_ms(&l, 0.99)
        );
    }
}

/// Runs the IMAP benchmark and prints its figures.
pub async fn run(args: ImapBenchArgs) -> anyhow::Result<()> {
    let tls = client::tls(&args.ca)?;
    for user in &args.user {
        fill(&args, user).await?;
    }
    if !args.no_header_fetch {
        header_fetch(&args).await?;
    }
    if args.clients > 0 && args.duration > 0 {
        let t0 = Instant::now();
        let samples = match args.profile {
            Profile::Commands => commands(&args).await?,
            Profile::Sessions => sessions::run(&args, tls.clone()).await?,
        };
        let name = match args.profile {
            Profile::Commands => "commands workload",
            Profile::Sessions => "sessions workload",
        };
        report(name, args.clients, t0.elapsed().as_secs_f64(), &samples);
        if let Some(kib) = args.server_pid.and_then(rss_kib) {
            println!("server RSS after the workload: {kib} KiB");
        }
    }
    if args.idle > 0 {
        idle(&args, tls).await?;
    }
    Ok(())
}

/// The header FETCH of the whole INBOX, five times.
async fn header_fetch(args: &ImapBenchArgs) -> anyhow::Result<()> {
    let mut c = Client::connect(args.server, client::tls(&args.ca)?, None).await?;
    c.login(&args.user[0]).await?;
    c.command("SELECT INBOX").await?;
    let mut fetch_times = Vec::new();
    for _ in 0..5 {
        let t0 = Instant::now();
        let n = c
            .command("UID FETCH 1:* (UID FLAGS RFC822.SIZE ENVELOPE)")
            .await?
            .untagged
            .len();
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
    Ok(())
}

/// Long-lived sessions sending FETCH, STORE, SEARCH and APPEND in turn.
async fn commands(args: &ImapBenchArgs) -> anyhow::Result<Samples> {
    let deadline = Instant::now() + Duration::from_secs(args.duration);
    let tls = client::tls(&args.ca)?;
    let mut tasks = Vec::new();
    for w in 0..args.clients {
        let user = args.user[w % args.user.len()].clone();
        let (server, tls, messages) = (args.server, tls.clone(), args.messages);
        tasks.push(tokio::spawn(async move {
            let mut c = Client::connect(server, tls, None).await?;
            c.login(&user).await?;
            c.command("SELECT INBOX").await?;
            let mut samples: Samples = Vec::new();
            let mut i = 0usize;
            while Instant::now() < deadline {
                let n = rand::rng().random_range(1..=messages.max(1));
                let t0 = Instant::now();
                let kind = match i % 4 {
                    0 => {
                        let last = (n + 49).min(messages);
                        c.command(&format!("FETCH {n}:{last} (UID FLAGS ENVELOPE)"))
                            .await?;
                        "fetch"
                    }
                    1 => {
                        c.command(&format!("STORE {n} +FLAGS.SILENT ($Bench{w})"))
                            .await?;
                        "store"
                    }
                    2 => {
                        c.command(&format!("SEARCH SUBJECT \"rendu {n}\"")).await?;
                        "search"
                    }
                    _ => {
                        c.append_many(1, 1_000_000 + w * 100_000 + i).await?;
                        "append"
                    }
                };
                samples.push((kind, t0.elapsed()));
                i += 1;
            }
            anyhow::Ok(samples)
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await??);
    }
    Ok(all)
}

/// Idle IDLE connections, and the server's memory for them.
async fn idle(args: &ImapBenchArgs, tls: Arc<rustls::ClientConfig>) -> anyhow::Result<()> {
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
        let mut c = Client::connect(args.server, tls.clone(), Some(source)).await?;
        c.login(&args.user[i % args.user.len()]).await?;
        c.command("SELECT INBOX").await?;
        c.start_idle().await?;
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
    Ok(())
}
