//! Several `mes serve` nodes on one PostgreSQL database (the multi-node
//! backend, so PostgreSQL only): deliveries spread over three nodes, one of
//! them SIGKILLed while it holds relay leases, IDLE on one node hearing a
//! delivery made through another, login throttling shared; then the
//! structure of `docker/compose.yml`, and the whitelist refresh.

mod common;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{Db, Instance, Server, imap_login, inbox, open_store};

const PW: &str = "correct horse battery staple";
const JEAN_A: &str = "jean.dupont@hopital-a.mes.test";
const LOAD_A: &str = "paul.charge@hopital-a.mes.test";
const LOCKED_A: &str = "luc.verrou@hopital-a.mes.test";
const MARIE_B: &str = "marie.curie@hopital-b.mes.test";
/// Lease of the test's relay: short, so a crashed node's rows move on soon.
const LEASE_SECS: u64 = 8;

/// A copy of `a`'s configuration naming node `n` (same database, certificates
/// and keys; listeners on ports of their own).
fn node_config(a: &Instance, n: usize) -> PathBuf {
    let text = std::fs::read_to_string(&a.config).expect("config");
    let text = text.replacen(
        "[relay]\n",
        &format!("[relay]\nnode_id = \"node-{n}\"\n"),
        1,
    );
    // IDLE wakes only through the change bus (NOTIFY), not the periodic recheck.
    let text = text.replacen("[imap]\n", "[imap]\nrecheck_secs = 3600\n", 1);
    let path = a.root().join(format!("mes-{n}.toml"));
    std::fs::write(&path, text).expect("write node config");
    path
}

/// `mes bench smtp` in the background: `n` messages, tokens `run-…`, every
/// acknowledged token appended to `acked`.
fn load(extra: &[&str], to: &str, n: u64, run: &str, acked: &Path) -> Child {
    let n = n.to_string();
    let mut args = vec![
        "bench",
        "smtp",
        "--to",
        to,
        "--connections",
        "2",
        "--messages",
        &n,
        "--size",
        "1024",
        "--keep-going",
        "--run-id",
        run,
        "--acked-log",
        acked.to_str().expect("utf-8"),
    ];
    args.extend_from_slice(extra);
    Command::new(common::MES)
        .env("MES_BENCH_PASSWORD", PW)
        .args(&args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn load")
}

fn lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

/// Token -> copies among `messages` (bench messages carry a `token …` line).
fn tokens(messages: &[mes::store::messages::FiledMessage]) -> HashMap<String, usize> {
    let mut counts = HashMap::new();
    for m in messages {
        let text = String::from_utf8_lossy(&m.data);
        if let Some(t) = text.lines().find_map(|l| l.strip_prefix("token ")) {
            *counts.entry(t.trim().to_string()).or_insert(0usize) += 1;
        }
    }
    counts
}

/// Polls `f` until it returns `Some`, failing with `what` after `secs`.
async fn until<T, F: std::future::Future<Output = Option<T>>>(
    secs: u64,
    what: &str,
    mut f: impl FnMut() -> F,
) -> T {
    let end = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(Instant::now() < end, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn signal(child: &Server, sig: &str) {
    let ok = Command::new("kill")
        .args([sig, &child.pid().to_string()])
        .status()
        .expect("kill");
    assert!(ok.success(), "kill {sig}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_on_one_postgres() {
    let a = Instance::with(
        Db::Postgres,
        "hopital-a.mes.test",
        None,
        "auth_failures_before_lockout = 3",
    )
    .await;
    // The remote operator: one node of its own, sharing the test CA.
    let b = Instance::with(Db::Sqlite, "hopital-b.mes.test", Some(&a.root()), "").await;
    for user in [JEAN_A, LOAD_A, LOCKED_A] {
        a.add_user(user, "professional", PW);
    }
    b.add_user(MARIE_B, "professional", PW);
    a.whitelist("hopital-b.mes.test", &b.cert("server.pem"));
    b.whitelist("hopital-a.mes.test", &a.cert("server.pem"));
    let b_server = b.start();
    a.relay(&format!(
        "retry_schedule_secs = [1]\nlease_secs = {LEASE_SECS}\ntimeout_secs = 3\n\
         routes = {{ \"hopital-b.mes.test\" = \"127.0.0.1:{}\" }}",
        b_server.addr("mx").port()
    ));
    let configs: Vec<PathBuf> = (1..=3).map(|n| node_config(&a, n)).collect();
    let mut nodes: Vec<Server> = configs.iter().map(|c| Server::start(c)).collect();
    let ca = a.cert("ca.pem");

    // IDLE on node 1 hears a delivery made through node 3.
    let mut idle = imap_login(nodes[0].addr("imaps"), &ca, JEAN_A, PW).await;
    idle.expect("SELECT INBOX", "OK").await;
    let tag = idle.tag();
    idle.send_raw(format!("{tag} IDLE\r\n").as_bytes()).await;
    let go_ahead = idle.read_line().await;
    assert!(go_ahead.starts_with('+'), "{go_ahead}");
    let data = format!("From: <{JEAN_A}>\r\nTo: <{JEAN_A}>\r\nSubject: note\r\n\r\nvu\r\n");
    let code = common::submit(
        nodes[2].addr("submissions"),
        &ca,
        JEAN_A,
        PW,
        "",
        JEAN_A,
        &data,
    )
    .await;
    assert_eq!(code, 250);
    let heard = tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            let line = idle.read_line().await;
            if line.contains("EXISTS") {
                return line;
            }
        }
    })
    .await
    .expect("IDLE on node 1 hears the delivery through node 3");
    assert_eq!(heard.trim(), "* 1 EXISTS");
    idle.send_raw(b"DONE\r\n").await;
    assert!(idle.read_until_tagged(&tag).await.ok());

    // Login throttling agrees: failures on node 1 lock the account on node 2.
    let mut c = imap_login(nodes[1].addr("imaps"), &ca, LOCKED_A, PW).await;
    c.expect("LOGOUT", "OK").await;
    let mut c = common::imap_tls(nodes[0].addr("imaps"), &ca).await;
    for i in 0..3 {
        let r = c.cmd(&format!("LOGIN {LOCKED_A} \"wrong {i}\"")).await;
        assert!(!r.ok(), "{}", r.all());
    }
    let mut c = common::imap_tls(nodes[1].addr("imaps"), &ca).await;
    let r = c.cmd(&format!("LOGIN {LOCKED_A} \"{PW}\"")).await;
    assert!(!r.ok(), "locked out on node 2 too: {}", r.all());

    // The remote operator stops answering: relay rows stay leased while the
    // nodes wait for its greeting.
    signal(&b_server, "-STOP");
    let dir = a.root();
    let mut loads = Vec::new();
    for (i, node) in nodes.iter().enumerate() {
        let mx = node.addr("mx").to_string();
        let sub = node.addr("submissions").to_string();
        let local_log = dir.join(format!("local-{i}.log"));
        let relay_log = dir.join(format!("relay-{i}.log"));
        let op2 = [
            "--server".to_string(),
            mx,
            "--ca".into(),
            ca.display().to_string(),
            "--cert".into(),
            a.cert("operator2.pem").display().to_string(),
            "--key".into(),
            a.cert("operator2.key").display().to_string(),
            "--from".into(),
            "load@operateur2.mes.test".into(),
        ];
        let op2: Vec<&str> = op2.iter().map(String::as_str).collect();
        loads.push(load(&op2, LOAD_A, 80, &format!("l{i}"), &local_log));
        let ca_text = ca.display().to_string();
        let jean = [
            "--server",
            &sub,
            "--implicit-tls",
            "--ca",
            &ca_text,
            "--user",
            JEAN_A,
            "--from",
            JEAN_A,
        ];
        loads.push(load(&jean, MARIE_B, 40, &format!("r{i}"), &relay_log));
    }

    // Node 2 crashes mid-way, while it holds leases.
    let store = open_store(&a).await;
    let local_1 = dir.join("local-1.log");
    until(120, "node 2 holding leases with deliveries done", || {
        let store = store.clone();
        let local_1 = local_1.clone();
        async move {
            let leased: i64 = sqlx::query_scalar(
                "SELECT COUNT(*) FROM queue WHERE lease_owner = 'node-2' AND status = 'pending'",
            )
            .fetch_one(store.pool())
            .await
            .expect("count");
            (leased > 0 && lines(&local_1).len() >= 20).then_some(())
        }
    })
    .await;
    nodes[1].kill();
    let orphans: Vec<i64> = sqlx::query_scalar(
        "SELECT id FROM queue WHERE lease_owner = 'node-2' AND status = 'pending'",
    )
    .fetch_all(store.pool())
    .await
    .expect("orphans");
    assert!(!orphans.is_empty(), "node 2 died holding leases");

    let mut reports = Vec::new();
    for l in loads {
        let out = l.wait_with_output().expect("load");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        reports.push(String::from_utf8_lossy(&out.stdout).into_owned());
    }
    signal(&b_server, "-CONT");

    // Every acknowledged local message is stored exactly once.
    let mut acked_local = Vec::new();
    let mut acked_relay = Vec::new();
    for i in 0..3 {
        acked_local.extend(lines(&dir.join(format!("local-{i}.log"))));
        acked_relay.extend(lines(&dir.join(format!("relay-{i}.log"))));
    }
    assert!(acked_local.len() > 150, "{reports:?}");
    assert!(acked_relay.len() > 60, "{reports:?}");
    let stored = tokens(&inbox(&store, LOAD_A).await);
    for t in &acked_local {
        assert_eq!(stored.get(t), Some(&1), "{t} stored exactly once");
    }
    assert!(stored.values().all(|&n| n == 1), "no message stored twice");

    // The others take node 2's rows over once its leases run out, and every
    // relayed message reaches B.
    until(180, "the queue to drain", || {
        let store = store.clone();
        async move {
            let pending: i64 =
                sqlx::query_scalar("SELECT COUNT(*) FROM queue WHERE status <> 'sent'")
                    .fetch_one(store.pool())
                    .await
                    .expect("count");
            (pending == 0).then_some(())
        }
    })
    .await;
    let b_store = open_store(&b).await;
    let at_b = until(60, "every relayed message at B", || {
        let b_store = b_store.clone();
        let acked = acked_relay.clone();
        async move {
            let at_b = tokens(&inbox(&b_store, MARIE_B).await);
            acked.iter().all(|t| at_b.contains_key(t)).then_some(at_b)
        }
    })
    .await;
    let duplicates: usize = at_b.values().map(|n| n - 1).sum();
    // At-least-once for relay after a crash (as tests/crash.rs and
    // tests/relay.rs accept): reported, not failed.
    eprintln!(
        "nodes test: {} local acknowledged, {} relayed acknowledged, {} rows of node 2 taken over, \
         {} distinct at B, {duplicates} duplicates",
        acked_local.len(),
        acked_relay.len(),
        orphans.len(),
        at_b.len()
    );
    let survivors = format!("{}{}", nodes[0].log(), nodes[2].log());
    assert!(survivors.contains("relayed"), "{survivors}");
}

/// `docker/compose.yml`: PostgreSQL with a volume, two MES nodes with
/// health checks behind one load balancer, started in order; the MES
/// configurations it mounts are in the repository and load.
#[test]
fn compose_file_structure() {
    use yaml_rust2::{Yaml, YamlLoader};
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(root.join("docker/compose.yml")).expect("compose.yml");
    let docs = YamlLoader::load_from_str(&text).expect("valid YAML");
    let doc = &docs[0];
    let services = doc["services"].as_hash().expect("services");
    let names: Vec<&str> = services.keys().filter_map(Yaml::as_str).collect();
    for name in ["postgres", "mes-1", "mes-2", "lb"] {
        assert!(names.contains(&name), "service {name} in {names:?}");
    }
    let svc = |name: &str| &doc["services"][name];
    let pg_check = svc("postgres")["healthcheck"]["test"]
        .as_vec()
        .expect("postgres healthcheck");
    assert!(
        pg_check
            .iter()
            .any(|t| t.as_str().is_some_and(|s| s.contains("pg_isready"))),
        "{pg_check:?}"
    );
    let certs = tempfile::tempdir().expect("tempdir");
    common::mes_ok(
        &[
            "init",
            certs.path().join("mes").to_str().expect("utf-8"),
            "--domain",
            "hopital.example",
            "--hostname",
            "mx.hopital.example",
            "--patient-domain",
            "patient.hopital.example",
        ],
        None,
    );
    let mut volumes_seen = Vec::new();
    for node in ["mes-1", "mes-2"] {
        let s = svc(node);
        assert!(
            !s["healthcheck"]["test"].is_badvalue(),
            "{node} has a health check"
        );
        assert_eq!(
            s["depends_on"]["postgres"]["condition"].as_str(),
            Some("service_healthy"),
            "{node} waits for PostgreSQL"
        );
        assert!(
            s["ports"].is_badvalue(),
            "{node} is reached through the load balancer only"
        );
        for v in s["volumes"].as_vec().expect("mounts") {
            let source = match v {
                Yaml::String(s) => s.split(':').next().unwrap_or_default().to_string(),
                other => other["source"].as_str().unwrap_or_default().to_string(),
            };
            assert!(
                source.starts_with("./"),
                "{node} mounts host files only, no volume: {source}"
            );
            if source.ends_with(".toml") {
                // Loaded beside a development certificate set, as README.md makes.
                let text = std::fs::read_to_string(root.join("docker").join(&source))
                    .expect("node configuration");
                let path = certs.path().join("mes").join("node.toml");
                std::fs::write(&path, text).expect("write");
                let config = mes::config::Config::load(&path)
                    .unwrap_or_else(|e| panic!("{source} loads: {e}"));
                assert!(config.database_url.starts_with("postgres://"), "{source}");
                assert!(config.relay.node_id.is_some(), "{source} names its node");
                let lb_ip = doc["services"]["lb"]["networks"]["default"]["ipv4_address"]
                    .as_str()
                    .expect("the balancer's fixed address")
                    .parse::<std::net::IpAddr>()
                    .expect("an IP address");
                for listener in ["mx", "submission", "submissions", "imap", "imaps", "https"] {
                    assert_eq!(
                        config.listen.proxy_for(listener),
                        Some(vec![lb_ip]),
                        "{source}: {listener} reads PROXY headers from the balancer only"
                    );
                }
                volumes_seen.push(config.relay.node_id.clone());
            }
        }
    }
    assert_eq!(volumes_seen.len(), 2, "each node mounts one configuration");
    assert_ne!(volumes_seen[0], volumes_seen[1], "node ids differ");
    let lb = svc("lb");
    assert!(
        !lb["ports"].is_badvalue(),
        "the load balancer publishes the ports"
    );
    for node in ["mes-1", "mes-2"] {
        assert_eq!(
            lb["depends_on"][node]["condition"].as_str(),
            Some("service_healthy"),
            "the load balancer waits for {node}"
        );
    }
    let top_volumes = doc["volumes"].as_hash().expect("named volumes");
    let top: Vec<&str> = top_volumes.keys().filter_map(Yaml::as_str).collect();
    assert_eq!(top, ["pgdata"], "a volume for PostgreSQL only");
    let lb_config = lb["volumes"].as_vec().expect("lb config")[0]
        .as_str()
        .expect("bind mount")
        .split(':')
        .next()
        .expect("source")
        .to_string();
    let haproxy = std::fs::read_to_string(root.join("docker").join(&lb_config)).expect("lb config");
    for node in ["mes-1", "mes-2"] {
        assert!(haproxy.contains(node), "{lb_config} balances over {node}");
    }
    assert!(
        haproxy.contains("send-proxy-v2") && haproxy.contains("check-send-proxy"),
        "{lb_config} names the client to the nodes, health checks included"
    );
}

/// A sample whitelist with `domains`, each operated by the test CA's server
/// certificate subject.
fn whitelist_xml(domains: &[&str]) -> String {
    let mut xml = String::from(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<ListeBlanche xmlns=\"https://listeblanche.mssante.fr/schema\">\n\
         <DateDeGeneration>2026-12-01T00:00:00</DateDeGeneration>\n",
    );
    for d in domains {
        xml.push_str(&format!(
            "<Domaine><Nom>{d}</Nom><Description>test</Description>\
             <DNCertificatOperateur>CN=mx.{d}, O=Operateur, C=FR</DNCertificatOperateur>\
             <DateMAJ>2026-12-01</DateMAJ></Domaine>\n"
        ));
    }
    xml.push_str("</ListeBlanche>\n");
    xml
}

/// The whitelist is refreshed from `trust.whitelist_url`: a changed file is
/// taken (and the change logged by domain), a broken one keeps the list in force.
async fn whitelist_refresh(db: Db) {
    let a = Instance::new(db).await;
    let list = a.root().join("liste-blanche.xml");
    std::fs::write(&list, whitelist_xml(&["un.test", "deux.test"])).expect("write");
    let source = list.display().to_string();
    a.edit_config(|t| {
        t.replacen(
            "[trust]\n",
            &format!("[trust]\nwhitelist_url = \"{source}\"\nrefresh_secs = 1\n"),
            1,
        )
    });
    let server = a.start();
    let imported = |a: &Instance| {
        let out = a.run(&["trust", "list"], None);
        let mut d: Vec<String> = out
            .lines()
            .filter(|l| l.contains("\timported\t"))
            .filter_map(|l| l.split('\t').next().map(str::to_string))
            .collect();
        d.sort();
        d
    };
    until(60, "the first list", || {
        let d = imported(&a);
        async move { (d == ["deux.test", "un.test"]).then_some(()) }
    })
    .await;
    std::fs::write(&list, whitelist_xml(&["un.test", "trois.test"])).expect("write");
    until(60, "the changed list", || {
        let d = imported(&a);
        async move { (d == ["trois.test", "un.test"]).then_some(()) }
    })
    .await;
    until(30, "the change in the log", || {
        let log = server.log();
        async move {
            (log.contains("whitelist refreshed")
                && log.contains("trois.test")
                && log.contains("deux.test"))
            .then_some(())
        }
    })
    .await;
    // Broken XML, then a list whose DN does not parse, then an empty list:
    // each is refused (its own reason in the log) and the list in force stays.
    let cases = [
        (
            "<ListeBlanche><Domaine>".to_string(),
            "whitelist refused near byte",
        ),
        (
            whitelist_xml(&["quatre.test"])
                .replace("CN=mx.quatre.test, O=Operateur, C=FR", "pas un DN"),
            "no DNCertificatOperateur",
        ),
        (whitelist_xml(&[]), "no Domaine"),
    ];
    for (broken, reason) in cases {
        std::fs::write(&list, broken).expect("write");
        let end = Instant::now() + Duration::from_secs(60);
        while !server
            .log()
            .lines()
            .any(|l| l.contains("whitelist refresh failed") && l.contains(reason))
        {
            let log = server.log();
            let seen: Vec<&str> = log.lines().filter(|l| l.contains("whitelist")).collect();
            assert!(Instant::now() < end, "no refusal for {reason}: {seen:#?}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert_eq!(
            imported(&a),
            ["trois.test", "un.test"],
            "the list in force stays"
        );
    }
    let audit: i64 = {
        let store = open_store(&a).await;
        sqlx::query_scalar("SELECT COUNT(*) FROM audit_log WHERE action = 'whitelist.refresh'")
            .fetch_one(store.pool())
            .await
            .expect("audit")
    };
    assert_eq!(audit, 2, "each change audited once");
}

both_backends!(whitelist_refresh);

/// The `https://` source of the whitelist refresh, against a real TLS server
/// with a certificate of the development PKI: the body comes back whole; an
/// HTTP error and a server the client does not trust are errors (the task
/// then keeps the list in force, as `whitelist_refresh` shows for a file).
#[tokio::test]
async fn whitelist_fetch_over_https() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let a = Instance::new(Db::Sqlite).await;
    let certs = a.root().join("certs");
    let server = rustls::ServerConfig::builder_with_provider(mes::tls::provider())
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_no_client_auth()
        .with_single_cert(
            mes::tls::load_certs(&certs.join("server.pem")).expect("certificate"),
            mes::tls::load_key(&certs.join("server.key")).expect("key"),
        )
        .expect("server config");
    let acceptor = tokio_rustls::TlsAcceptor::from(std::sync::Arc::new(server));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("address").port();
    let xml = whitelist_xml(&["un.test", "deux.test"]);
    let body = xml.clone();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            let body = body.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let mut request = Vec::new();
                let mut buf = [0u8; 1024];
                while !request.ends_with(b"\r\n\r\n") {
                    match tls.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => request.extend_from_slice(&buf[..n]),
                    }
                }
                let found = request.starts_with(b"GET /liste-blanche.xml ");
                let reply = if found {
                    format!(
                        "HTTP/1.1 200 OK\r\nContent-Type: application/xml\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                        body.len()
                    )
                } else {
                    "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                        .into()
                };
                let _ = tls.write_all(reply.as_bytes()).await;
                let _ = tls.shutdown().await;
            });
        }
    });
    let trusting = mes::tls::client_config(&[certs.join("ca.pem")], None).expect("client config");
    let url = format!("https://127.0.0.1:{port}/liste-blanche.xml");
    let got = mes::trust::refresh::fetch(&url, trusting.clone())
        .await
        .expect("the list over https");
    assert_eq!(got, xml.as_bytes());
    let missing = format!("https://127.0.0.1:{port}/absente.xml");
    let err = mes::trust::refresh::fetch(&missing, trusting)
        .await
        .expect_err("an HTTP 404 is an error");
    assert!(err.to_string().contains("404"), "{err}");
    // The server's own default: the public roots, which do not know our CA.
    let public = mes::tls::web_client_config().expect("web client config");
    assert!(
        mes::trust::refresh::fetch(&url, public).await.is_err(),
        "a server outside the public roots is refused"
    );
}

/// A valid INS from a 13-digit NIR.
fn ins_of(nir: &str) -> String {
    let v: u64 = nir.parse().expect("digits");
    format!("{nir}{:02}", 97 - v % 97)
}

/// Store handles of three nodes: a pool of their own each, on the one
/// database, all on the test's clock (the periodic tasks' time is the
/// store's, so the test moves it instead of waiting days).
async fn task_nodes(a: &Instance, clock: &Arc<mes::clock::ManualClock>) -> Vec<mes::store::Store> {
    let mut nodes = Vec::new();
    for _ in 0..3 {
        nodes.push(open_store(a).await.with_clock(clock.clone()));
    }
    nodes
}

/// Runs `task` on every node at the same moment (all wait at one barrier,
/// on the runtime's threads); each node's result.
async fn at_once<T, Fut>(
    nodes: &[mes::store::Store],
    task: impl Fn(mes::store::Store) -> Fut,
) -> Vec<T>
where
    T: Send + 'static,
    Fut: std::future::Future<Output = T> + Send + 'static,
{
    let barrier = Arc::new(tokio::sync::Barrier::new(nodes.len()));
    let runs: Vec<_> = nodes
        .iter()
        .map(|s| {
            let barrier = barrier.clone();
            let run = task(s.clone());
            tokio::spawn(async move {
                barrier.wait().await;
                run.await
            })
        })
        .collect();
    let mut out = Vec::new();
    for r in runs {
        out.push(r.await.expect("node task"));
    }
    out
}

/// The mails of the sink with this subject, by recipient.
fn notices_by_recipient(
    got: &std::sync::Mutex<Vec<String>>,
    subject: &str,
) -> HashMap<String, usize> {
    let mut by = HashMap::new();
    for m in got.lock().expect("sink").iter() {
        let Some(parsed) = mail_parser::MessageParser::default().parse(m.as_bytes()) else {
            continue;
        };
        if parsed.subject() != Some(subject) {
            continue;
        }
        let to = parsed
            .to()
            .and_then(|t| t.first())
            .and_then(|a| a.address())
            .unwrap_or_default()
            .to_string();
        *by.entry(to).or_insert(0usize) += 1;
    }
    by
}

async fn count(store: &mes::store::Store, sql: &str) -> i64 {
    sqlx::query_scalar(sql)
        .fetch_one(store.pool())
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
}

/// The periodic tasks of `mes serve`, run by three nodes at the same moment
/// on one PostgreSQL database: the opening of a few hundred informed spaces,
/// the agenda reminders, the 90-day connected-services notice, the end of
/// representations at 18 and the purge of archives each happen once (every
/// space opened once with its folders once and audited once; one notice per
/// patient at the smarthost, one slot row each; one purge each).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn periodic_tasks_run_once_across_nodes() {
    const SPACES: usize = 300;
    const ELDERS: usize = 20;
    const CHILDREN: usize = 10;
    const SERVICES: usize = 30;
    const CLOSED: usize = 25;
    let (port, got) = common::smtp_sink().await;
    let a = Instance::new(Db::Postgres).await;
    a.edit_config(|t| {
        t.replacen(
            "[notify]\n",
            &format!("[notify]\nsmarthost = \"127.0.0.1:{port}\"\nstarttls = false\n"),
            1,
        )
    });
    let real = mes::clock::system_now();
    let clock = Arc::new(mes::clock::ManualClock::new(real));
    let opening = real + 43 * 86_400;
    // Elders are 66 on the day the spaces open: their influenza vaccination
    // (marked done a year before) falls due the next day.
    let open_day = chrono::DateTime::from_timestamp(opening, 0)
        .expect("date")
        .with_timezone(&chrono_tz::Europe::Paris)
        .date_naive();
    let elder_birth = {
        use chrono::Datelike;
        let m = open_day - chrono::Months::new(66 * 12 + 1);
        format!("{:02}{:02}", m.year() % 100, m.month())
    };
    let mut csv = String::from(
        "ins,birth_name,first_names,birth_date,sex,birth_place,email,postal,representatives\n",
    );
    let mut adults = Vec::new();
    for n in 0..SPACES {
        let ins = ins_of(&format!(
            "2{:02}{:02}75056{:03}",
            40 + (n / 12) % 50,
            1 + n % 12,
            1 + n / 600
        ));
        csv.push_str(&format!(
            "{ins},NOM,Prenom,1960-01-15,F,75056,p{n}@example.test,,\n"
        ));
        adults.push(ins);
    }
    let mut elders = Vec::new();
    for n in 0..ELDERS {
        let ins = ins_of(&format!("1{elder_birth}75123{:03}", n + 1));
        csv.push_str(&format!(
            "{ins},ANCIEN,Prenom,1960-01-15,M,75123,e{n}@example.test,,\n"
        ));
        elders.push(ins);
    }
    for (n, parent) in adults.iter().take(CHILDREN).enumerate() {
        let ins = ins_of(&format!("11501750990{:02}", n + 1));
        csv.push_str(&format!(
            "{ins},ENFANT,Prenom,2015-01-01,M,75099,c{n}@example.test,,{parent}\n"
        ));
    }
    let file = a.root().join("beneficiaires.csv");
    std::fs::write(&file, csv).expect("write");
    let total = SPACES + ELDERS + CHILDREN;
    let out = a.run(&["provision", file.to_str().expect("utf-8")], None);
    assert!(out.contains(&total.to_string()), "{out}");
    let nodes = task_nodes(&a, &clock).await;
    let store = &nodes[0];
    assert_eq!(
        count(
            store,
            "SELECT COUNT(*) FROM patient_spaces WHERE state = 'informed'"
        )
        .await,
        total as i64
    );

    // The opposition window ends: three nodes open the spaces at once.
    clock.advance(opening - real);
    let opened: Vec<u64> = at_once(&nodes, |s| async move {
        mes::lifecycle::open::open_due(&s).await.expect("open")
    })
    .await;
    assert_eq!(opened.iter().sum::<u64>(), total as u64, "{opened:?}");
    assert_eq!(
        count(
            store,
            "SELECT COUNT(*) FROM patient_spaces WHERE state = 'open'"
        )
        .await,
        total as i64
    );
    assert_eq!(
        count(
            store,
            "SELECT COUNT(*) FROM accounts WHERE kind = 'patient'"
        )
        .await,
        total as i64
    );
    // Each account has its folders once.
    let folders: Vec<(i64, i64)> = sqlx::query_as(
        "SELECT COUNT(*), COUNT(DISTINCT name) FROM mailboxes m JOIN accounts a \
         ON a.id = m.account_id WHERE a.kind = 'patient' GROUP BY a.id",
    )
    .fetch_all(store.pool())
    .await
    .expect("folders");
    assert_eq!(folders.len(), total);
    let first = folders[0].0;
    assert!(first >= 4, "{folders:?}");
    assert!(
        folders.iter().all(|&(n, d)| n == first && d == first),
        "every space has its folders once: {folders:?}"
    );
    // Each opening audited once: the batches' entries add up to the spaces.
    let details: Vec<String> =
        sqlx::query_scalar("SELECT detail FROM audit_log WHERE action = 'space.open'")
            .fetch_all(store.pool())
            .await
            .expect("audit");
    let audited: usize = details
        .iter()
        .map(|d| {
            d.split(' ')
                .next()
                .and_then(|n| n.parse::<usize>().ok())
                .unwrap_or_else(|| panic!("{d}"))
        })
        .sum();
    assert_eq!(audited, total, "{details:?}");
    assert_eq!(details.len(), opened.iter().filter(|&&n| n > 0).count());

    // Agenda reminders: the elders' vaccination is due tomorrow.
    let tomorrow = open_day + chrono::Days::new(1);
    let done = (tomorrow - chrono::Months::new(12))
        .format("%Y-%m-%d")
        .to_string();
    for ins in &elders {
        let account = store
            .account_by_ins(ins)
            .await
            .expect("lookup")
            .expect("opened");
        store
            .set_recommendation_mark(account.id, "VACCIN_GRIPPE", "DONE", &done)
            .await
            .expect("mark");
    }
    let settings = mes::config::Config::load(&a.config).expect("config").notify;
    let notifier = |s: &mes::store::Store| {
        mes::threads::notify::Notifier::new(
            s.clone(),
            settings.clone(),
            tokio_util::task::TaskTracker::new(),
        )
        .expect("a smarthost")
    };
    for _ in 0..2 {
        let sent: Vec<usize> = at_once(&nodes, |s| {
            let n = notifier(&s);
            async move { mes::agenda::reminders::tick(&s, &n).await.expect("tick") }
        })
        .await;
        eprintln!("reminders sent by each node: {sent:?}");
    }
    let reminders = notices_by_recipient(&got, mes::threads::notify::PREVENTION_SUBJECT);
    for n in 0..ELDERS {
        assert_eq!(
            reminders.get(&format!("e{n}@example.test")),
            Some(&1),
            "one reminder for elder {n}: {reminders:?}"
        );
    }
    let appointment = notices_by_recipient(&got, mes::threads::notify::APPOINTMENT_SUBJECT);
    let slots = count(store, "SELECT COUNT(*) FROM agenda_reminders").await;
    assert_eq!(
        (reminders.values().sum::<usize>() + appointment.values().sum::<usize>()) as i64,
        slots,
        "one mail per slot taken"
    );
    assert!(reminders.values().all(|&n| n == 1), "{reminders:?}");

    // The connected-services notice, 90 days after the connection.
    let redirect = "https://service.example.test/retour-service";
    a.run(
        &[
            "service",
            "add",
            "suivi-tension",
            "--name",
            "Suivi Tension",
            "--publisher",
            "Éditeur Santé SAS",
            "--category",
            "Suivi de maladie chronique",
            "--description",
            "Suivez votre tension.",
            "--home-url",
            "https://service.example.test/accueil-service",
            "--redirect-uri",
            redirect,
            "--scopes",
            "documents.read",
        ],
        None,
    );
    for ins in &adults[..SERVICES] {
        let account = store
            .account_by_ins(ins)
            .await
            .expect("lookup")
            .expect("opened");
        store
            .set_grant(account.id, "suivi-tension", "documents.read")
            .await
            .expect("grant");
    }
    clock.advance(mes::services::notice::PERIOD_DAYS * 86_400 + 1);
    for _ in 0..2 {
        let sent: Vec<usize> = at_once(&nodes, |s| {
            let n = notifier(&s);
            async move { mes::services::notice::tick(&s, &n).await.expect("tick") }
        })
        .await;
        eprintln!("service notices sent by each node: {sent:?}");
    }
    let notices = notices_by_recipient(&got, mes::services::notice::SUBJECT);
    assert_eq!(notices.len(), SERVICES, "{notices:?}");
    for n in 0..SERVICES {
        assert_eq!(
            notices.get(&format!("p{n}@example.test")),
            Some(&1),
            "{notices:?}"
        );
    }
    assert_eq!(
        count(store, "SELECT COUNT(*) FROM service_notices").await,
        SERVICES as i64
    );

    // The children turn 18 (born 2015-01-01): each representation ends once,
    // with one notice and one audit entry.
    assert_eq!(
        count(
            store,
            "SELECT COUNT(DISTINCT child_ins) FROM representatives"
        )
        .await,
        CHILDREN as i64
    );
    let birthday = 1_988_150_400; // 2033-01-01T00:00:00Z
    clock.advance(birthday - clock_now(&clock));
    let sender = mes::threads::notify::NoticeSender::new(&settings)
        .expect("sender")
        .expect("a smarthost");
    let ended: Vec<u64> = at_once(&nodes, |s| {
        let sender = sender.clone();
        async move {
            mes::lifecycle::representation::end_due(&s, Some(&sender))
                .await
                .expect("end")
        }
    })
    .await;
    assert_eq!(ended.iter().sum::<u64>(), CHILDREN as u64, "{ended:?}");
    let adult = notices_by_recipient(&got, mes::lifecycle::representation::ADULT_SUBJECT);
    assert_eq!(adult.len(), CHILDREN, "{adult:?}");
    assert!(adult.values().all(|&n| n == 1), "{adult:?}");
    assert_eq!(
        count(
            store,
            "SELECT COUNT(*) FROM audit_log WHERE action = 'representative.end'"
        )
        .await,
        CHILDREN as i64
    );

    // Closed spaces are purged once at the end of their archive period.
    let years = mes::config::Config::load(&a.config)
        .expect("config")
        .lifecycle
        .archive_years;
    for ins in &adults[SPACES - CLOSED..] {
        mes::lifecycle::close::close(
            store,
            ins,
            mes::lifecycle::close::Disposal::Archive,
            &mes::lifecycle::close::Closer::Operator,
            years,
        )
        .await
        .expect("close");
    }
    clock.advance(i64::from(years) * 31_557_600 + 86_400);
    let purged: Vec<u64> = at_once(&nodes, |s| async move {
        mes::lifecycle::close::purge_due(&s).await.expect("purge")
    })
    .await;
    assert_eq!(purged.iter().sum::<u64>(), CLOSED as u64, "{purged:?}");
    assert_eq!(
        count(
            store,
            "SELECT COUNT(*) FROM patient_spaces WHERE state = 'purged'"
        )
        .await,
        CLOSED as i64
    );
    assert_eq!(
        count(
            store,
            "SELECT COUNT(*) FROM audit_log WHERE action = 'space.purge'"
        )
        .await,
        CLOSED as i64
    );
    eprintln!("periodic tasks: opened {opened:?}, ended {ended:?}, purged {purged:?} per node");
    for s in nodes {
        s.close().await;
    }
}

fn clock_now(clock: &mes::clock::ManualClock) -> i64 {
    use mes::clock::Clock;
    clock.now()
}

/// `mes serve` with this configuration, expected to refuse to start: its
/// error output.
fn refused_start(a: &Instance) -> String {
    let (ok, _, err) = common::mes(
        &["--config", a.config.to_str().expect("utf-8"), "serve"],
        None,
    );
    assert!(!ok, "mes serve started: {err}");
    err
}

/// A node without the audit seal key or the secrets key: on an empty
/// database the first start makes them; once the database holds an audit
/// trail (or secrets sealed with the key), a node missing the file refuses to
/// start, naming the file and saying to copy it from the first node, and
/// makes no key of its own.
async fn keys_are_shared_not_made_twice(db: Db) {
    // An empty database: the first node makes its keys.
    let first = Instance::new(db).await;
    let audit_key = first.cert("audit.key");
    let secrets_key = first.cert("secrets.key");
    std::fs::remove_file(&audit_key).expect("remove");
    std::fs::remove_file(&secrets_key).expect("remove");
    let mut server = first.start();
    assert!(
        audit_key.exists() && secrets_key.exists(),
        "made on first start"
    );
    server.terminate(Duration::from_secs(10));

    // A database with an audit trail: a node without the audit key refuses.
    let a = Instance::new(db).await;
    a.add_user(JEAN_A, "professional", PW);
    let audit_key = a.cert("audit.key");
    let kept = std::fs::read(&audit_key).expect("key");
    std::fs::remove_file(&audit_key).expect("remove");
    let err = refused_start(&a);
    assert!(
        err.contains(&audit_key.display().to_string()) && err.contains("copy"),
        "{err}"
    );
    assert!(!audit_key.exists(), "no key of its own");
    std::fs::write(&audit_key, &kept).expect("restore");

    // No secret sealed yet: the secrets key may still be made.
    let secrets_key = a.cert("secrets.key");
    std::fs::remove_file(&secrets_key).expect("remove");
    let mut server = a.start();
    server.terminate(Duration::from_secs(10));
    assert!(secrets_key.exists());
    // A sealed TOTP secret: a node without that key refuses, as does the CLI.
    a.run(&["user", "totp", JEAN_A], None);
    let kept = std::fs::read(&secrets_key).expect("key");
    std::fs::remove_file(&secrets_key).expect("remove");
    let err = refused_start(&a);
    assert!(
        err.contains(&secrets_key.display().to_string()) && err.contains("copy"),
        "{err}"
    );
    let (ok, _, err) = common::mes(
        &[
            "--config",
            a.config.to_str().expect("utf-8"),
            "user",
            "totp",
            JEAN_A,
        ],
        None,
    );
    assert!(!ok && err.contains("copy"), "{err}");
    assert!(!secrets_key.exists(), "no key of its own");
    // With the first node's key copied back, the node starts.
    std::fs::write(&secrets_key, &kept).expect("restore");
    let mut server = a.start();
    server.terminate(Duration::from_secs(10));
}

both_backends!(keys_are_shared_not_made_twice);

/// Every file under `dir` with its size and modification time.
fn tree(dir: &Path) -> Vec<(PathBuf, u64, std::time::SystemTime)> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).expect("read dir").flatten() {
            let meta = e.metadata().expect("metadata");
            if meta.is_dir() {
                todo.push(e.path());
            } else {
                out.push((
                    e.path(),
                    meta.len(),
                    meta.modified().expect("modification time"),
                ));
            }
        }
    }
    out.sort();
    out
}

/// No shared disk: a PostgreSQL node that accepted mail with an attachment,
/// queued mail for another operator and served IMAP writes no file at all:
/// its configuration folder (data directory included), its working
/// directory and its temporary directory are as they were (its log goes to
/// its standard output and error).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgres_node_writes_nothing_on_disk() {
    let a = Instance::new(Db::Postgres).await;
    a.add_user(JEAN_A, "professional", PW);
    a.add_user(LOAD_A, "professional", PW);
    a.whitelist("hopital-b.mes.test", &a.cert("server.pem"));
    let config = Arc::new(mes::config::Config::load(&a.config).expect("config"));
    let cwd = tempfile::tempdir().expect("tempdir");
    let tmp = tempfile::tempdir().expect("tempdir");
    let before = tree(&a.root());
    let data = tree(&config.data_dir);
    assert!(
        data.iter()
            .all(|(p, _, _)| p.file_name().is_some_and(|n| n == "init-domains")),
        "{data:?}"
    );
    let tmp_path = tmp.path().display().to_string();
    let mut server = Server::start_in(
        &a.config,
        &[("RUST_LOG", "info"), ("TMPDIR", &tmp_path)],
        Some(cwd.path()),
    );
    let ca = a.cert("ca.pem");
    let attachment = format!(
        "From: <{JEAN_A}>\r\nTo: <{LOAD_A}>\r\nSubject: compte rendu\r\nMIME-Version: 1.0\r\n\
         Content-Type: multipart/mixed; boundary=\"sep\"\r\n\r\n--sep\r\n\
         Content-Type: text/plain\r\n\r\nci-joint\r\n--sep\r\n\
         Content-Type: application/pdf; name=\"cr.pdf\"\r\n\
         Content-Disposition: attachment; filename=\"cr.pdf\"\r\n\
         Content-Transfer-Encoding: base64\r\n\r\n{}\r\n--sep--\r\n",
        "JVBERi0xLjQKJVBERi0xLjQKJVBERi0xLjQKJVBERi0xLjQKJVBERi0xLjQKJVBERi0xLjQK\r\n".repeat(300)
    );
    let code = common::submit(
        server.addr("submissions"),
        &ca,
        JEAN_A,
        PW,
        "",
        LOAD_A,
        &attachment,
    )
    .await;
    assert_eq!(code, 250);
    let remote = format!("From: <{JEAN_A}>\r\nTo: <{MARIE_B}>\r\nSubject: avis\r\n\r\nbonjour\r\n");
    let code = common::submit(
        server.addr("submissions"),
        &ca,
        JEAN_A,
        PW,
        "",
        MARIE_B,
        &remote,
    )
    .await;
    assert_eq!(code, 250);
    let mut imap = imap_login(server.addr("imaps"), &ca, LOAD_A, PW).await;
    imap.expect("SELECT INBOX", "OK").await;
    let fetched = imap.expect("FETCH 1 (BODY[])", "OK").await;
    assert!(fetched.all().contains("cr.pdf"), "{}", fetched.all());
    imap.expect("LOGOUT", "OK").await;
    let store = open_store(&a).await;
    let queued = count(&store, "SELECT COUNT(*) FROM queue").await;
    assert_eq!(queued, 1, "the remote message is queued in the database");
    store.close().await;
    server.terminate(Duration::from_secs(10));
    assert_eq!(
        tree(&a.root()),
        before,
        "nothing written beside the configuration"
    );
    assert_eq!(
        tree(cwd.path()),
        Vec::new(),
        "nothing in the working directory"
    );
    assert_eq!(
        tree(tmp.path()),
        Vec::new(),
        "nothing in the temporary directory"
    );
}

/// Runs `openssl` with `args` in `dir`; panics with its error output on failure.
fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .output()
        .expect("openssl");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A throwaway signer made by openssl: `NAME.key` and its self-signed `NAME.pem`.
fn openssl_signer(dir: &Path, name: &str, key: &[&str]) {
    let mut args = vec!["req", "-x509", "-nodes", "-newkey"];
    args.extend_from_slice(key);
    let (k, c, s) = (
        format!("{name}.key"),
        format!("{name}.pem"),
        format!("/CN={name}"),
    );
    args.extend_from_slice(&["-keyout", &k, "-out", &c, "-subj", &s, "-days", "2"]);
    openssl(dir, &args);
}

/// Writes `xml` as `liste-blanche.xml` and, signed by `signer`'s key, its `.sig`.
fn publish(dir: &Path, xml: &str, signer: Option<&str>) {
    std::fs::write(dir.join("liste-blanche.xml"), xml).expect("write");
    if let Some(signer) = signer {
        openssl(
            dir,
            &[
                "dgst",
                "-sha256",
                "-sign",
                &format!("{signer}.key"),
                "-out",
                "liste-blanche.xml.sig",
                "liste-blanche.xml",
            ],
        );
    }
}

/// The whitelist's detached signature (`trust.whitelist_signing_cert`),
/// made with the real `openssl dgst -sha256 -sign`: a list signed by the
/// configured certificate's key (RSA, then ECDSA P-256) is taken; a list
/// changed after signing, a list without its `.sig` and a list signed by
/// another key are each refused (logged, audited) and the list in force
/// stays. `mes trust import --signature` follows the same rule.
async fn whitelist_signature(db: Db) {
    let a = Instance::new(db).await;
    let dir = a.root().join("publication");
    std::fs::create_dir_all(&dir).expect("mkdir");
    openssl_signer(&dir, "signataire", &["rsa:2048"]);
    openssl_signer(&dir, "autre", &["rsa:2048"]);
    openssl_signer(
        &dir,
        "signataire-ec",
        &["ec", "-pkeyopt", "ec_paramgen_curve:P-256"],
    );
    publish(
        &dir,
        &whitelist_xml(&["un.test", "deux.test"]),
        Some("signataire"),
    );
    let list = dir.join("liste-blanche.xml");
    let cert = dir.join("signataire.pem");
    a.edit_config(|t| {
        t.replacen(
            "https = \"127.0.0.1:0\"\n",
            "https = \"127.0.0.1:0\"\nmetrics = \"127.0.0.1:0\"\n",
            1,
        )
        .replacen(
            "[trust]\n",
            &format!(
                "[trust]\nwhitelist_url = \"{}\"\nrefresh_secs = 1\nwhitelist_signing_cert = \"{}\"\n",
                list.display(),
                cert.display()
            ),
            1,
        )
    });
    let imported = |a: &Instance| {
        let out = a.run(&["trust", "list"], None);
        let mut d: Vec<String> = out
            .lines()
            .filter(|l| l.contains("\timported\t"))
            .filter_map(|l| l.split('\t').next().map(str::to_string))
            .collect();
        d.sort();
        d
    };
    let server = a.start();
    until(60, "the signed list", || {
        let d = imported(&a);
        async move { (d == ["deux.test", "un.test"]).then_some(()) }
    })
    .await;
    let refusals = |server: &Server| {
        server
            .log()
            .lines()
            .filter(|l| l.contains("whitelist refresh failed") && l.contains("signature"))
            .count()
    };
    // Changed after signing; then without its signature; then signed by
    // another key: refused each time, the list in force stays.
    let tampered = whitelist_xml(&["un.test", "deux.test", "intrus.test"]);
    let sig = dir.join("liste-blanche.xml.sig");
    let cases: [(&str, &dyn Fn()); 3] = [
        ("does not verify", &|| publish(&dir, &tampered, None)),
        ("missing", &|| {
            std::fs::remove_file(&sig).expect("remove");
        }),
        ("does not verify", &|| {
            publish(&dir, &tampered, Some("autre"))
        }),
    ];
    for (reason, change) in cases {
        let seen = refusals(&server);
        change();
        until(60, reason, || {
            let log = server.log();
            let n = refusals(&server);
            async move {
                (n > seen
                    && log
                        .lines()
                        .rev()
                        .find(|l| l.contains("whitelist refresh failed"))
                        .is_some_and(|l| l.contains(reason)))
                .then_some(())
            }
        })
        .await;
        assert_eq!(imported(&a), ["deux.test", "un.test"], "{reason}: kept");
    }
    let store = open_store(&a).await;
    let refused = count(
        &store,
        "SELECT COUNT(*) FROM audit_log WHERE action = 'whitelist.refused'",
    )
    .await;
    assert!(refused >= 3, "each refusal audited: {refused}");
    let metrics = Command::new("curl")
        .args(["-sS", &format!("http://{}/metrics", server.addr("metrics"))])
        .output()
        .expect("curl");
    let metrics = String::from_utf8_lossy(&metrics.stdout);
    let refusals_counted: f64 = metrics
        .lines()
        .find_map(|l| {
            l.strip_prefix("mes_whitelist_refreshes_total{outcome=\"refused_signature\"} ")
        })
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0.0);
    assert!(refusals_counted >= 3.0, "{metrics}");
    // Signed again by the configured key: taken.
    publish(&dir, &tampered, Some("signataire"));
    until(60, "the newly signed list", || {
        let d = imported(&a);
        async move { (d == ["deux.test", "intrus.test", "un.test"]).then_some(()) }
    })
    .await;
    drop(server);

    // `mes trust import`: an ECDSA P-256 signer, a good signature, a
    // tampered file, no signature.
    let ec = dir.join("signataire-ec.pem");
    a.edit_config(|t| {
        t.replace(&cert.display().to_string(), &ec.display().to_string())
            .replace("whitelist_url", "# whitelist_url")
    });
    publish(&dir, &whitelist_xml(&["trois.test"]), Some("signataire-ec"));
    let file = list.to_str().expect("utf-8");
    let sig_file = sig.to_str().expect("utf-8");
    let out = a.run(&["trust", "import", file, "--signature", sig_file], None);
    assert!(out.contains("imported 1 domains"), "{out}");
    assert_eq!(imported(&a), ["trois.test"]);
    let cfg = a.config.to_str().expect("utf-8");
    std::fs::write(&list, whitelist_xml(&["quatre.test"])).expect("write");
    let (ok, _, err) = common::mes(
        &[
            "--config",
            cfg,
            "trust",
            "import",
            file,
            "--signature",
            sig_file,
        ],
        None,
    );
    assert!(!ok && err.contains("does not verify"), "{err}");
    let (ok, _, err) = common::mes(&["--config", cfg, "trust", "import", file], None);
    assert!(!ok && err.contains("--signature"), "{err}");
    assert_eq!(imported(&a), ["trois.test"], "the list in force stays");
    let refused_after = count(
        &store,
        "SELECT COUNT(*) FROM audit_log WHERE action = 'whitelist.refused'",
    )
    .await;
    assert!(
        refused_after >= refused + 2,
        "{refused} then {refused_after}"
    );
    store.close().await;
}

both_backends!(whitelist_signature);

/// An implicit-TLS IMAP connection that first sends `header` (a PROXY
/// protocol header, as a load balancer does); the greeting is read.
async fn imap_via(
    addr: std::net::SocketAddr,
    ca: &Path,
    header: &[u8],
) -> std::io::Result<common::Imap<tokio_rustls::client::TlsStream<tokio::net::TcpStream>>> {
    use tokio::io::AsyncWriteExt;
    let mut tcp = tokio::net::TcpStream::connect(addr).await?;
    tcp.write_all(header).await?;
    let connector = tokio_rustls::TlsConnector::from(common::client_tls(ca, None));
    let name = rustls_pki_types::ServerName::try_from("localhost").expect("name");
    let tls = connector.connect(name, tcp).await?;
    let mut c = common::Imap::new(tls);
    let greeting = c.read_line().await;
    assert!(greeting.starts_with("* OK"), "{greeting}");
    Ok(c)
}

/// Behind a load balancer (`listen.proxy_protocol`, `listen.proxy_from`):
/// the client named by the PROXY header (v1 text, v2 binary) is the one
/// login throttling counts, so failures from one client lock the account
/// for that client only; a balancer's connection without a header is
/// refused; and a header from an address that is not a balancer is not
/// read (that connection fails its TLS handshake).
async fn proxy_protocol(db: Db) {
    let a = Instance::with(
        db,
        "hopital-a.mes.test",
        None,
        "auth_failures_before_lockout = 3",
    )
    .await;
    a.add_user(LOCKED_A, "professional", PW);
    a.add_user(JEAN_A, "professional", PW);
    a.edit_config(|t| {
        t.replacen(
            "[listen]\n",
            "[listen]\nproxy_protocol = [\"imaps\"]\nproxy_from = [\"127.0.0.1\"]\n",
            1,
        )
    });
    let mut server = a.start();
    let ca = a.cert("ca.pem");
    let imaps = server.addr("imaps");
    let x = b"PROXY TCP4 203.0.113.7 127.0.0.1 5555 993\r\n".to_vec();
    let y = ppp::v2::Builder::with_addresses(
        0x21,
        ppp::v2::Protocol::Stream,
        (
            "198.51.100.9:6000"
                .parse::<std::net::SocketAddr>()
                .expect("addr"),
            imaps,
        ),
    )
    .build()
    .expect("v2 header");
    let mut c = imap_via(imaps, &ca, &x)
        .await
        .expect("through the balancer");
    for i in 0..3 {
        let r = c.cmd(&format!("LOGIN {LOCKED_A} \"wrong {i}\"")).await;
        assert!(!r.ok(), "{}", r.all());
    }
    let mut c = imap_via(imaps, &ca, &x)
        .await
        .expect("through the balancer");
    let r = c.cmd(&format!("LOGIN {LOCKED_A} \"{PW}\"")).await;
    assert!(!r.ok(), "locked out for 203.0.113.7: {}", r.all());
    let mut c = imap_via(imaps, &ca, &y).await.expect("v2 header");
    c.expect(&format!("LOGIN {LOCKED_A} \"{PW}\""), "OK").await;
    c.expect("LOGOUT", "OK").await;
    let log = server.log();
    assert!(
        log.contains("203.0.113.7") && log.contains("198.51.100.9"),
        "the clients in the log: {log}"
    );
    // The balancer's own connection must carry a header.
    assert!(
        imap_via(imaps, &ca, b"").await.is_err(),
        "a connection from the balancer without a header is refused"
    );
    until(30, "the refusal in the log", || {
        let log = server.log();
        async move {
            log.contains("connection from the load balancer refused")
                .then_some(())
        }
    })
    .await;
    server.terminate(Duration::from_secs(10));

    // 127.0.0.1 is no balancer any more: its header is not read.
    a.edit_config(|t| {
        t.replace(
            "proxy_from = [\"127.0.0.1\"]",
            "proxy_from = [\"192.0.2.1\"]",
        )
    });
    let server = a.start();
    let imaps = server.addr("imaps");
    assert!(
        imap_via(imaps, &ca, &x).await.is_err(),
        "a header from a non-balancer is not taken"
    );
    let mut c = imap_via(imaps, &ca, b"").await.expect("direct");
    c.expect(&format!("LOGIN {JEAN_A} \"{PW}\""), "OK").await;
    assert!(!server.log().contains("203.0.113.7"));
}

both_backends!(proxy_protocol);

/// The opening pass as `mes serve` runs it: three running nodes (every
/// `lifecycle.open_check_secs` = 1) find the same informed spaces due at
/// once (their window moved into the past in one statement) and open each
/// exactly once between them, with its folders once and its opening audited
/// once; the nodes' logs add up to the spaces.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn opening_on_three_running_nodes() {
    const SPACES: usize = 200;
    let a = Instance::new(Db::Postgres).await;
    a.edit_config(|t| t.replacen("[lifecycle]\n", "[lifecycle]\nopen_check_secs = 1\n", 1));
    let mut csv = String::from(
        "ins,birth_name,first_names,birth_date,sex,birth_place,email,postal,representatives\n",
    );
    for n in 0..SPACES {
        let ins = ins_of(&format!(
            "1{:02}{:02}69123{:03}",
            30 + (n / 12) % 50,
            1 + n % 12,
            1 + n / 600
        ));
        csv.push_str(&format!(
            "{ins},NOM,Prenom,1950-01-15,M,69123,,{n} rue du Test 69001 Lyon,\n"
        ));
    }
    let file = a.root().join("beneficiaires.csv");
    std::fs::write(&file, csv).expect("write");
    a.run(&["provision", file.to_str().expect("utf-8")], None);
    let configs: Vec<PathBuf> = (1..=3).map(|n| node_config(&a, n)).collect();
    let nodes: Vec<Server> = configs.iter().map(|c| Server::start(c)).collect();
    let store = open_store(&a).await;
    let informed = "SELECT COUNT(*) FROM patient_spaces WHERE state = 'informed'";
    assert_eq!(count(&store, informed).await, SPACES as i64);
    sqlx::query("UPDATE patient_spaces SET opens_at = 0 WHERE state = 'informed'")
        .execute(store.pool())
        .await
        .expect("window ended");
    until(60, "every space open", || {
        let store = store.clone();
        async move { (count(&store, informed).await == 0).then_some(()) }
    })
    .await;
    assert_eq!(
        count(
            &store,
            "SELECT COUNT(*) FROM patient_spaces WHERE state = 'open'"
        )
        .await,
        SPACES as i64
    );
    let folders: Vec<(i64, i64)> = sqlx::query_as(
        "SELECT COUNT(*), COUNT(DISTINCT name) FROM mailboxes m JOIN accounts a \
         ON a.id = m.account_id WHERE a.kind = 'patient' GROUP BY a.id",
    )
    .fetch_all(store.pool())
    .await
    .expect("folders");
    assert_eq!(folders.len(), SPACES);
    assert!(
        folders.iter().all(|&(n, d)| n == folders[0].0 && d == n),
        "{folders:?}"
    );
    let details: Vec<String> =
        sqlx::query_scalar("SELECT detail FROM audit_log WHERE action = 'space.open'")
            .fetch_all(store.pool())
            .await
            .expect("audit");
    let audited: usize = details
        .iter()
        .filter_map(|d| d.split(' ').next().and_then(|n| n.parse::<usize>().ok()))
        .sum();
    assert_eq!(audited, SPACES, "{details:?}");
    // Each node logs what it opened: together, every space once. A node
    // logs after its pass, which may end after the last commit seen above.
    let logged_now = || -> Vec<usize> {
        nodes
            .iter()
            .map(|n| {
                n.log()
                    .lines()
                    .filter(|l| l.contains("patient spaces opened at the end of their window"))
                    .filter_map(|l| {
                        let rest = &l[l.find("opened=")? + 7..];
                        rest.split(|c: char| !c.is_ascii_digit())
                            .next()?
                            .parse::<usize>()
                            .ok()
                    })
                    .sum()
            })
            .collect()
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let mut logged = logged_now();
    while logged.iter().sum::<usize>() < SPACES && std::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        logged = logged_now();
    }
    eprintln!("spaces opened by each running node: {logged:?}");
    assert_eq!(logged.iter().sum::<usize>(), SPACES, "{logged:?}");
    store.close().await;
}
