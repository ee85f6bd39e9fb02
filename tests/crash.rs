//! A message acknowledged with 250 is never lost, even on SIGKILL: the load tool
//! sends while the server is killed and restarted; afterwards every acknowledged
//! message is in its mailbox exactly once.

mod common;

use std::collections::HashMap;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{Db, Instance, inbox, open_store};

const RCPT: &str = "jean.dupont@hopital-a.mes.test";

async fn acknowledged_messages_survive_sigkill(db: Db) {
    let instance = Instance::new(db).await;
    instance.add_user(RCPT, "professional", "correct horse battery staple");
    let mut server = instance.start();
    instance.pin_ports(&server);
    let mx = server.addr("mx");
    let acked = instance.root().join("acked.log");
    let load = Command::new(common::MES)
        .args([
            "bench",
            "smtp",
            "--server",
            &mx.to_string(),
            "--ca",
            instance.cert("ca.pem").to_str().unwrap(),
            "--cert",
            instance.cert("operator2.pem").to_str().unwrap(),
            "--key",
            instance.cert("operator2.key").to_str().unwrap(),
            "--from",
            "load@operateur2.mes.test",
            "--to",
            RCPT,
            "--connections",
            "8",
            "--messages",
            "100000",
            "--size",
            "2048",
            "--duration",
            "15",
            "--keep-going",
            "--run-id",
            "crash",
            "--acked-log",
            acked.to_str().unwrap(),
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();

    let count = || {
        std::fs::read_to_string(&acked)
            .map(|s| s.lines().count())
            .unwrap_or(0)
    };
    for round in 0..3 {
        // Let some messages through, then crash in the middle of the traffic.
        let before = count();
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while count() < before + 30 && std::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(
            count() >= before + 30,
            "round {round}: no progress\n{}",
            server.log()
        );
        server.kill();
        tokio::time::sleep(Duration::from_millis(200)).await;
        server = instance.start();
    }
    let out = load.wait_with_output().unwrap();
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "load tool failed: {report}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(report.contains("errors"), "{report}");
    server.terminate(Duration::from_secs(10));

    let acked: Vec<String> = std::fs::read_to_string(&acked)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect();
    assert!(
        acked.len() > 90,
        "too few acknowledged messages to prove anything: {}",
        acked.len()
    );
    let store = open_store(&instance).await;
    let mut stored: HashMap<String, usize> = HashMap::new();
    for m in inbox(&store, RCPT).await {
        let text = String::from_utf8_lossy(&m.data);
        let token = text
            .lines()
            .find_map(|l| l.strip_prefix("token "))
            .expect("every stored message is whole")
            .trim()
            .to_string();
        *stored.entry(token).or_default() += 1;
    }
    for token in &acked {
        assert_eq!(
            stored.get(token),
            Some(&1),
            "acknowledged message {token} must be stored exactly once"
        );
    }
    assert!(
        stored.values().all(|&n| n == 1),
        "no message is stored twice"
    );
    // Nothing half-stored: every message row is filed and has its content.
    let orphans: (i64,) = sqlx::query_as(
        "SELECT COUNT(*) FROM messages m WHERE NOT EXISTS (SELECT 1 FROM mailbox_messages mm WHERE mm.message_id = m.id) \
         OR NOT EXISTS (SELECT 1 FROM blobs b WHERE b.hash = m.blob_hash)",
    )
    .fetch_one(store.pool())
    .await
    .unwrap();
    assert_eq!(orphans.0, 0);
    eprintln!(
        "crash test ({db:?}): {} acknowledged, {} stored; {report}",
        acked.len(),
        stored.len()
    );
}

both_backends!(acknowledged_messages_survive_sigkill);
