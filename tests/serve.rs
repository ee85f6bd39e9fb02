//! The real `mes serve`: starts on free ports and stops cleanly on SIGTERM.

mod common;

use std::time::Duration;

use common::{Db, Instance};

async fn stops_on_sigterm(db: Db) {
    let instance = Instance::new(db).await;
    let mut server = instance.start();
    // A session in progress does not stop the shutdown: idle sessions are told 421.
    let mut idle = common::connect_plain(server.addr("mx")).await;
    idle.expect("EHLO client.test", 250).await;
    let status = server
        .terminate(Duration::from_secs(10))
        .expect("exits within the deadline");
    assert!(status.success(), "exit status {status:?}\n{}", server.log());
    let bye = idle.read_reply().await;
    assert_eq!(bye.code, 421, "{bye:?}");
    assert!(server.log().contains("stopped"), "{}", server.log());
}

both_backends!(stops_on_sigterm);

#[test]
fn first_start_without_config_creates_demo_accounts() {
    let tmp = tempfile::tempdir().unwrap();
    let mut child = std::process::Command::new(common::MES)
        .arg("serve")
        .current_dir(tmp.path())
        .env_remove("MES_CONFIG")
        .stdout(std::process::Stdio::piped())
        .stderr(std::fs::File::create(tmp.path().join("stderr")).unwrap())
        .spawn()
        .unwrap();
    use std::io::BufRead;
    let stdout = child.stdout.take().unwrap();
    let mut lines = Vec::new();
    for line in std::io::BufReader::new(stdout).lines() {
        let line = line.unwrap();
        let done = line == "mes: ready";
        lines.push(line);
        if done {
            break;
        }
    }
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let status = child.wait().unwrap();
    let text = lines.join("\n");
    assert!(
        status.success(),
        "{status}: {text}\n{}",
        std::fs::read_to_string(tmp.path().join("stderr")).unwrap_or_default()
    );
    assert!(
        text.contains("jean.dupont@hopital-a.mes.test  password: "),
        "{text}"
    );
    assert!(
        text.contains("279035121518989@patient.mes.test  password: "),
        "{text}"
    );
    assert!(
        text.contains("mes: listening submission 127.0.0.1:2587"),
        "{text}"
    );
    assert!(tmp.path().join("mes-data/mes.toml").is_file());
}
