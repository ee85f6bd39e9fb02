//! The `sessions` workload: a population of mail clients, each one in a loop
//! connecting, logging in, listing folders, checking and opening the INBOX,
//! reading the newest envelopes and one whole message, flagging, filing a
//! message (APPEND) and removing it again (EXPUNGE, so the folder keeps its
//! size), then logging out. Each command's latency is recorded apart, LOGIN
//! included (password hashing is part of it: compare it separately).

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use rand::Rng;

use super::client::{self, Client};
use super::{ImapBenchArgs, Samples};

/// Runs the workload for `args.duration` seconds; returns every command's latency.
pub(super) async fn run(
    args: &ImapBenchArgs,
    tls: Arc<rustls::ClientConfig>,
) -> anyhow::Result<Samples> {
    let deadline = Instant::now() + Duration::from_secs(args.duration);
    let mut tasks = Vec::new();
    for w in 0..args.clients {
        let user = args.user[w % args.user.len()].clone();
        let (server, tls) = (args.server, tls.clone());
        tasks.push(tokio::spawn(async move {
            let mut samples: Samples = Vec::new();
            let mut round = 0usize;
            while Instant::now() < deadline {
                one_session(server, tls.clone(), &user, w, round, &mut samples).await?;
                round += 1;
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

/// Times `f`'s command under `name`.
macro_rules! timed {
    ($samples:expr, $name:expr, $f:expr) => {{
        let t0 = Instant::now();
        let out = $f.await?;
        $samples.push(($name, t0.elapsed()));
        out
    }};
}

async fn one_session(
    server: std::net::SocketAddr,
    tls: Arc<rustls::ClientConfig>,
    user: &str,
    worker: usize,
    round: usize,
    samples: &mut Samples,
) -> anyhow::Result<()> {
    let mut c = timed!(samples, "connect", Client::connect(server, tls, None));
    timed!(samples, "login", c.login(user));
    timed!(samples, "list", c.command("LIST \"\" \"*\""));
    timed!(
        samples,
        "status",
        c.command("STATUS INBOX (MESSAGES UIDNEXT UNSEEN)")
    );
    let selected = timed!(samples, "select", c.command("SELECT INBOX"));
    let exists = selected.count("EXISTS").context("SELECT gave no EXISTS")?;
    if exists > 0 {
        let first = exists.saturating_sub(49).max(1);
        timed!(
            samples,
            "fetch",
            c.command(&format!("FETCH {first}:* (UID FLAGS ENVELOPE)"))
        );
        let n = rand::rng().random_range(1..=exists);
        timed!(
            samples,
            "body",
            c.command(&format!("FETCH {n} BODY.PEEK[]"))
        );
        let op = if round.is_multiple_of(2) { '+' } else { '-' };
        timed!(
            samples,
            "store",
            c.command(&format!("STORE {n} {op}FLAGS.SILENT (\\Flagged)"))
        );
    }
    let message = client::message(2_000_000 + worker * 100_000 + round);
    let appended = timed!(samples, "append", c.append("INBOX", &message));
    if let Some(uid) = appended.append_uid() {
        timed!(samples, "expunge", async {
            c.command(&format!("UID STORE {uid} +FLAGS.SILENT (\\Deleted)"))
                .await?;
            c.command(&format!("UID EXPUNGE {uid}")).await
        });
    }
    timed!(samples, "logout", c.command("LOGOUT"));
    Ok(())
}
