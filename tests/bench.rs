//! The load tools run against the real server: `mes bench imap` in both
//! workloads finishes without an error and reports every command it times.

mod common;

use std::process::Command;

use common::{Db, Instance};

const PASSWORD: &str = "correct horse battery staple";

fn bench_imap(instance: &Instance, imaps: std::net::SocketAddr, extra: &[&str]) -> String {
    let out = Command::new(common::MES)
        .args(["bench", "imap", "--server", &imaps.to_string(), "--ca"])
        .arg(instance.cert("ca.pem"))
        .args(["--messages", "30", "--clients", "3", "--duration", "2"])
        .args(extra)
        .env("MES_BENCH_PASSWORD", PASSWORD)
        .output()
        .expect("mes bench imap runs");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "mes bench imap failed: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// The line of `command` in the report, with its sample count.
fn samples(report: &str, command: &str) -> usize {
    report
        .lines()
        .find_map(|l| {
            let rest = l.trim_start().strip_prefix(command)?;
            rest.trim_start()
                .strip_prefix("n=")?
                .split_whitespace()
                .next()?
                .parse()
                .ok()
        })
        .unwrap_or_else(|| panic!("no line for {command} in:\n{report}"))
}

#[tokio::test]
async fn bench_imap_drives_both_workloads() {
    let instance = Instance::new(Db::Sqlite).await;
    let users = [
        "jean.dupont@hopital-a.mes.test",
        "marie.curie@hopital-a.mes.test",
    ];
    for user in users {
        instance.add_user(user, "professional", PASSWORD);
    }
    let server = instance.start();
    let imaps = server.addr("imaps");

    let report = bench_imap(
        &instance,
        imaps,
        &[
            "--profile",
            "sessions",
            "--user",
            users[0],
            "--user",
            users[1],
        ],
    );
    assert!(report.contains("sessions workload: 3 clients"), "{report}");
    for command in [
        "connect", "login", "list", "status", "select", "fetch", "body", "store", "append",
        "expunge", "logout",
    ] {
        assert!(samples(&report, command) > 0, "{command}: {report}");
    }
    // Every session removed what it appended: each INBOX holds the 30 again.
    for user in users {
        let ca = instance.cert("ca.pem");
        let mut imap = common::imap_login(imaps, &ca, user, PASSWORD).await;
        let status = imap.expect("STATUS INBOX (MESSAGES)", "OK").await.all();
        assert!(status.contains("(MESSAGES 30)"), "{user}: {status}");
    }

    let report = bench_imap(&instance, imaps, &["--user", users[0], "--no-header-fetch"]);
    assert!(report.contains("commands workload: 3 clients"), "{report}");
    for command in ["fetch", "store", "search", "append"] {
        assert!(samples(&report, command) > 0, "{command}: {report}");
    }
}
