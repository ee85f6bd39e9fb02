//! Running MES for real, on the real binary: the metrics listener (counters
//! moved by SMTP, IMAP and failed logins; `/healthz`, `/readyz` and its 503
//! once the database is gone), JSON logs without health data or secrets,
//! mail-client autoconfiguration (Thunderbird, Outlook) over HTTPS with the
//! development CA, `mes dns records`, and the production configuration check.

mod common;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;

use common::{
    Db, Instance, Server, api, api_login, client_tls, connect_tls, imap_login, imap_tls, mes,
    plain, submit,
};

const PW: &str = "correct horse battery staple";
const JEAN: &str = "jean.dupont@hopital-a.mes.test";
const MARIE: &str = "marie.curie@hopital-a.mes.test";
const PATIENT: &str = "279035121518989@patient.mes.test";
const PATIENT_INS: &str = "279035121518989";
const PATIENT_PW: &str = "mot de passe du patient";

/// An instance with the metrics listener on a free loopback port.
async fn with_metrics(db: Db) -> Instance {
    let instance = Instance::new(db).await;
    instance.edit_config(|t| {
        t.replacen(
            "https = \"127.0.0.1:0\"\n",
            "https = \"127.0.0.1:0\"\nmetrics = \"127.0.0.1:0\"\n",
            1,
        )
    });
    instance
}

/// A plain HTTP GET with curl: (status, body).
fn http_get(addr: SocketAddr, path: &str) -> (u16, String) {
    curl(&[&format!("http://{addr}{path}")])
}

/// Runs curl with `args`, appending the status code; returns (status, body).
fn curl(args: &[&str]) -> (u16, String) {
    let out = Command::new("curl")
        .args(["-sS", "-w", "\n%{http_code}"])
        .args(args)
        .output()
        .expect("curl");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", &text));
    let status = code
        .trim()
        .parse()
        .unwrap_or_else(|_| panic!("curl: {text} {}", String::from_utf8_lossy(&out.stderr)));
    (status, body.to_string())
}

/// An HTTPS request to the web listener, trusting the development CA, with
/// an optional Host header and body.
fn https(
    server: &Server,
    ca: &Path,
    method: &str,
    path: &str,
    host: Option<&str>,
    body: Option<&Path>,
) -> (u16, String) {
    let url = format!("https://localhost:{}{path}", server.addr("https").port());
    let mut args = vec![
        "--cacert".to_string(),
        ca.display().to_string(),
        "-X".into(),
        method.into(),
        url,
    ];
    if let Some(h) = host {
        args.push("-H".into());
        args.push(format!("Host: {h}"));
    }
    if let Some(b) = body {
        args.push("-H".into());
        args.push("content-type: text/xml".into());
        // The whole body in one go, without waiting for 100 Continue.
        args.push("-H".into());
        args.push("Expect:".into());
        args.push("--data-binary".into());
        args.push(format!("@{}", b.display()));
    }
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    curl(&refs)
}

/// The samples of an OpenMetrics text page: `name{labels}` -> value.
fn samples(text: &str) -> HashMap<String, f64> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .filter_map(|l| {
            let (key, value) = l.rsplit_once(' ')?;
            Some((key.to_string(), value.parse().ok()?))
        })
        .collect()
}

fn sample(all: &HashMap<String, f64>, key: &str) -> f64 {
    all.get(key).copied().unwrap_or(0.0)
}

async fn metrics_count_events_and_readyz_follows_the_database(db: Db) {
    let instance = with_metrics(db).await;
    instance.add_professional(JEAN, "Dr Jean Dupont", "Médecin", PW);
    instance.add_professional(MARIE, "Dr Marie Curie", "Médecin", PW);
    let server = instance.start();
    let metrics = server.addr("metrics");
    let ca = instance.cert("ca.pem");

    let (status, body) = http_get(metrics, "/healthz");
    assert_eq!(status, 200, "{body}");
    let (status, body) = http_get(metrics, "/readyz");
    assert_eq!((status, body.trim()), (200, "ready"));

    let data = format!("From: <{JEAN}>\r\nTo: <{MARIE}>\r\nSubject: essai\r\n\r\nbonjour\r\n");
    let code = submit(server.addr("submissions"), &ca, JEAN, PW, "", MARIE, &data).await;
    assert_eq!(code, 250);
    // One failed SMTP login, one failed IMAP login.
    let mut s = connect_tls(server.addr("submissions"), client_tls(&ca, None))
        .await
        .expect("submissions");
    s.expect("EHLO client.test", 250).await;
    s.expect(&format!("AUTH PLAIN {}", plain(JEAN, "wrong")), 535)
        .await;
    // One recipient refused at RCPT.
    let mut s = connect_tls(server.addr("submissions"), client_tls(&ca, None))
        .await
        .expect("submissions");
    s.expect("EHLO client.test", 250).await;
    s.expect(&format!("AUTH PLAIN {}", plain(JEAN, PW)), 235)
        .await;
    s.expect(&format!("MAIL FROM:<{JEAN}>"), 250).await;
    s.expect("RCPT TO:<nobody@hopital-a.mes.test>", 550).await;
    drop(s);
    let mut bad = imap_tls(server.addr("imaps"), &ca).await;
    bad.expect(&format!("LOGIN {MARIE} \"wrong\""), "NO").await;
    drop(bad);
    let mut imap = imap_login(server.addr("imaps"), &ca, MARIE, PW).await;
    imap.expect("SELECT INBOX", "OK").await;

    let (status, page) = http_get(metrics, "/metrics");
    assert_eq!(status, 200);
    assert!(page.trim_end().ends_with("# EOF"), "{page}");
    let m = samples(&page);
    assert_eq!(
        sample(&m, "mes_messages_accepted_total{listener=\"submission\"}"),
        1.0,
        "{page}"
    );
    assert_eq!(
        sample(
            &m,
            "mes_delivery_latency_seconds_count{listener=\"submission\"}"
        ),
        1.0
    );
    assert_eq!(
        sample(
            &m,
            "mes_messages_refused_total{listener=\"submission\",reason=\"recipient\"}"
        ),
        1.0,
        "{page}"
    );
    assert_eq!(
        sample(&m, "mes_auth_failures_total{protocol=\"smtp\"}"),
        1.0
    );
    assert_eq!(
        sample(&m, "mes_auth_failures_total{protocol=\"imap\"}"),
        1.0
    );
    assert!(
        sample(&m, "mes_sessions_open{protocol=\"imap\"}") >= 1.0,
        "{page}"
    );
    assert!(sample(&m, "mes_db_acquire_seconds_count{use=\"writer\"}") >= 1.0);
    // No label carries an address.
    assert!(!page.contains('@'), "{page}");
    imap.expect("LOGOUT", "OK").await;

    // The database goes away: the process stays up, readiness fails.
    match db {
        Db::Sqlite => {
            let file = instance.root().join("data/mes.db");
            std::fs::rename(&file, file.with_extension("gone")).expect("move the database");
        }
        Db::Postgres => {
            let text = std::fs::read_to_string(&instance.config).expect("config");
            let url = text
                .lines()
                .find_map(|l| l.strip_prefix("url = \""))
                .and_then(|l| l.strip_suffix('"'))
                .expect("postgres url");
            let name = url.rsplit('/').next().expect("database name");
            let admin = std::env::var("MES_TEST_POSTGRES_URL").expect("admin url");
            use sqlx::Connection;
            let mut conn = sqlx::PgConnection::connect(&admin).await.expect("admin");
            sqlx::query(&format!("DROP DATABASE {name} WITH (FORCE)"))
                .execute(&mut conn)
                .await
                .expect("drop database");
        }
    }
    let (status, body) = http_get(metrics, "/readyz");
    assert_eq!(status, 503, "{body}");
    assert!(
        body.contains("database"),
        "a short reason naming the database: {body}"
    );
    let (status, _) = http_get(metrics, "/healthz");
    assert_eq!(status, 200);
}

mod metrics_and_probes {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite() {
        super::metrics_count_events_and_readyz_follows_the_database(super::common::Db::Sqlite)
            .await;
    }
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres() {
        super::metrics_count_events_and_readyz_follows_the_database(super::common::Db::Postgres)
            .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_refuse_a_public_address_unless_allowed() {
    let instance = Instance::new(Db::Sqlite).await;
    instance.edit_config(|t| {
        t.replacen(
            "https = \"127.0.0.1:0\"\n",
            "https = \"127.0.0.1:0\"\nmetrics = \"0.0.0.0:0\"\n",
            1,
        )
    });
    let config = instance.config.to_str().expect("utf-8").to_string();
    let (ok, _, err) = mes(&["--config", &config, "config", "check"], None);
    assert!(!ok);
    assert!(err.contains("`listen.metrics`"), "{err}");
    assert!(err.contains("metrics_public"), "{err}");
    instance.edit_config(|t| {
        t.replacen(
            "metrics = \"0.0.0.0:0\"\n",
            "metrics = \"0.0.0.0:0\"\nmetrics_public = true\n",
            1,
        )
    });
    let out = instance.run(&["config", "check"], None);
    assert!(out.contains("OK (development)"), "{out}");
}

/// Every line of `text` is one JSON object; none holds any of `secrets`.
fn assert_json_without(text: &str, secrets: &[&str]) -> Vec<serde_json::Value> {
    let mut lines = Vec::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let value: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not a JSON line ({e}): {line}"));
        assert!(value.is_object(), "{line}");
        for s in secrets {
            assert!(!line.contains(s), "`{s}` leaked in the logs: {line}");
        }
        lines.push(value);
    }
    lines
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_logs_carry_no_health_data_nor_secrets() {
    let instance = Instance::new(Db::Sqlite).await;
    instance.edit_config(|t| t.replacen("# format = \"text\"", "format = \"json\"", 1));
    instance.add_professional(JEAN, "Dr Jean Dupont", "Médecin", PW);
    instance.add_named_user(PATIENT, "patient", "Dominique Pat-Trois", PATIENT_PW);
    let mut server = Server::start_with_env(&instance.config, &[("RUST_LOG", "debug")]);
    let ca = instance.cert("ca.pem");

    let subject = "Resultats Zorglub confidentiels";
    let data = format!(
        "From: Dr Jean Dupont <{JEAN}>\r\nTo: Dominique Pat-Trois <{PATIENT}>\r\n\
         Subject: {subject}\r\nX-Patient: Dominique Pat-Trois, INS {PATIENT_INS}\r\n\r\n\
         Bonjour Dominique Pat-Trois (INS {PATIENT_INS}), voici vos resultats.\r\n"
    );
    let code = submit(
        server.addr("submissions"),
        &ca,
        JEAN,
        PW,
        "",
        PATIENT,
        &data,
    )
    .await;
    assert_eq!(code, 250);
    // The patient reads through the API; a wrong password is tried too.
    let (status, _) = api(
        &server,
        &ca,
        "POST",
        "/api/v1/login",
        None,
        Some(
            &serde_json::json!({"login": PATIENT_INS, "password": "MauvaisSecret-42"}).to_string(),
        ),
    );
    assert_eq!(status, 401);
    let token = api_login(&server, &ca, PATIENT, PATIENT_PW);
    let (status, threads) = api(&server, &ca, "GET", "/api/v1/threads", Some(&token), None);
    assert_eq!(status, 200, "{threads}");
    // The patient opens the thread and answers with their name in the text.
    let id = threads["threads"][0]["id"].as_i64().expect("a thread");
    let (status, thread) = api(
        &server,
        &ca,
        "GET",
        &format!("/api/v1/threads/{id}"),
        Some(&token),
        None,
    );
    assert_eq!(status, 200, "{thread}");
    let (status, body) = api(
        &server,
        &ca,
        "POST",
        &format!("/api/v1/threads/{id}/reply"),
        Some(&token),
        Some(&serde_json::json!({"text": "Merci, Dominique Pat-Trois"}).to_string()),
    );
    assert_eq!(status, 201, "{body}");
    // The professional reads the sent copy over IMAP.
    let mut imap = imap_login(server.addr("imaps"), &ca, JEAN, PW).await;
    imap.expect("SELECT INBOX", "OK").await;
    imap.expect("LOGOUT", "OK").await;
    let mut s = connect_tls(server.addr("submissions"), client_tls(&ca, None))
        .await
        .expect("submissions");
    s.expect("EHLO client.test", 250).await;
    s.expect(
        &format!("AUTH PLAIN {}", plain(JEAN, "MauvaisSecret-42")),
        535,
    )
    .await;
    drop(s);
    server.terminate(std::time::Duration::from_secs(20));

    // SASL PLAIN carries the password in base64.
    let sasl = [plain(JEAN, PW), plain(JEAN, "MauvaisSecret-42")];
    let secrets = [
        sasl[0].as_str(),
        sasl[1].as_str(),
        "Pat-Trois",
        "Dominique",
        PATIENT_INS,
        &PATIENT_INS[..13],
        "Zorglub",
        PW,
        PATIENT_PW,
        "MauvaisSecret",
    ];
    let stderr = assert_json_without(&server.log(), &secrets);
    let stdout = assert_json_without(&server.stdout(), &secrets);
    assert!(stdout.iter().any(|v| v["mes"] == "ready"), "{stdout:?}");
    // The fields an operator filters on.
    assert!(stderr.len() > 20, "debug logs expected");
    assert!(
        stderr.iter().all(|v| v["timestamp"].is_string()
            && v["level"].is_string()
            && v["target"].is_string())
    );
    let in_session = |protocol: &str| {
        stderr.iter().any(|v| {
            v["spans"].as_array().is_some_and(|spans| {
                spans.iter().any(|s| {
                    s["name"] == protocol && s["session"].is_u64() && s["peer"].is_string()
                })
            })
        })
    };
    assert!(in_session("smtp"), "no SMTP line with session and peer");
    assert!(in_session("imap"), "no IMAP line with session and peer");
    assert!(in_session("https"), "no HTTPS line with session and peer");
}

/// A small XML tree, read with quick-xml: (name, attributes, text, children).
#[derive(Debug, Default, Clone)]
struct Node {
    name: String,
    attrs: HashMap<String, String>,
    text: String,
    children: Vec<Node>,
}

impl Node {
    fn parse(xml: &str) -> Node {
        use quick_xml::events::Event;
        let mut reader = quick_xml::Reader::from_str(xml);
        let mut stack = vec![Node::default()];
        let start = |e: &quick_xml::events::BytesStart<'_>| Node {
            name: String::from_utf8_lossy(e.local_name().as_ref()).into_owned(),
            attrs: e
                .attributes()
                .map(|a| {
                    let a = a.expect("attribute");
                    (
                        String::from_utf8_lossy(a.key.local_name().as_ref()).into_owned(),
                        a.unescape_value().expect("value").into_owned(),
                    )
                })
                .collect(),
            ..Node::default()
        };
        loop {
            match reader.read_event().expect("well-formed XML") {
                Event::Start(e) => stack.push(start(&e)),
                Event::Empty(e) => {
                    let node = start(&e);
                    stack.last_mut().expect("parent").children.push(node);
                }
                Event::Text(t) => {
                    let text = t.decode().expect("text");
                    stack.last_mut().expect("node").text.push_str(text.trim());
                }
                Event::GeneralRef(r) => {
                    let name = r.decode().expect("ref");
                    let ch = match name.as_ref() {
                        "amp" => "&",
                        "lt" => "<",
                        "gt" => ">",
                        "quot" => "\"",
                        "apos" => "'",
                        other => panic!("entity {other}"),
                    };
                    stack.last_mut().expect("node").text.push_str(ch);
                }
                Event::End(_) => {
                    let node = stack.pop().expect("open element");
                    stack.last_mut().expect("parent").children.push(node);
                }
                Event::Eof => break,
                _ => {}
            }
        }
        stack.pop().expect("document").children.remove(0)
    }

    fn all(&self, name: &str) -> Vec<&Node> {
        self.children.iter().filter(|c| c.name == name).collect()
    }

    fn child(&self, name: &str) -> &Node {
        self.all(name)
            .first()
            .copied()
            .unwrap_or_else(|| panic!("no <{name}> in <{}>", self.name))
    }

    fn text_of(&self, name: &str) -> &str {
        &self.child(name).text
    }
}

async fn autoconfiguration_describes_the_running_listeners(db: Db) {
    let instance = Instance::new(db).await;
    instance.add_professional(JEAN, "Dr Jean Dupont", "Médecin", PW);
    let server = instance.start();
    let ca = instance.cert("ca.pem");
    let port = |name: &str| server.addr(name).port().to_string();

    let thunderbird = |path: &str, host: Option<&str>| {
        let (status, body) = https(&server, &ca, "GET", path, host, None);
        assert_eq!(status, 200, "{path}: {body}");
        let root = Node::parse(&body);
        assert_eq!(root.name, "clientConfig");
        assert_eq!(root.attrs["version"], "1.1");
        let provider = root.child("emailProvider");
        assert_eq!(provider.text_of("domain"), "hopital-a.mes.test");
        let incoming = provider.all("incomingServer");
        let outgoing = provider.all("outgoingServer");
        let check = |server: &Node, kind: &str, port: String, socket: &str| {
            assert_eq!(server.attrs["type"], kind);
            assert_eq!(server.text_of("hostname"), "mx.hopital-a.mes.test");
            assert_eq!(server.text_of("port"), port);
            assert_eq!(server.text_of("socketType"), socket);
            assert_eq!(server.text_of("username"), "%EMAILADDRESS%");
            assert_eq!(server.text_of("authentication"), "password-cleartext");
        };
        // Implicit TLS first (RFC 8314), then STARTTLS.
        assert_eq!(incoming.len(), 2, "{body}");
        check(incoming[0], "imap", port("imaps"), "SSL");
        check(incoming[1], "imap", port("imap"), "STARTTLS");
        assert_eq!(outgoing.len(), 2, "{body}");
        check(outgoing[0], "smtp", port("submissions"), "SSL");
        check(outgoing[1], "smtp", port("submission"), "STARTTLS");
    };
    thunderbird(
        &format!("/.well-known/autoconfig/mail/config-v1.1.xml?emailaddress={JEAN}"),
        None,
    );
    thunderbird(
        "/mail/config-v1.1.xml",
        Some("autoconfig.hopital-a.mes.test"),
    );
    for who in ["someone@unknown.test", PATIENT] {
        let (status, _) = https(
            &server,
            &ca,
            "GET",
            &format!("/mail/config-v1.1.xml?emailaddress={who}"),
            None,
            None,
        );
        assert_eq!(status, 404, "{who}: only hosted professional domains");
    }

    let dir = tempfile::tempdir().expect("tempdir");
    let write = |name: &str, content: &[u8]| {
        let path = dir.path().join(name);
        std::fs::write(&path, content).expect("write body");
        path
    };
    let request = |address: &str| {
        format!(
            "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<Autodiscover \
             xmlns=\"http://schemas.microsoft.com/exchange/autodiscover/outlook/requestschema/2006\">\
             <Request><EMailAddress>{address}</EMailAddress><AcceptableResponseSchema>\
             http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a\
             </AcceptableResponseSchema></Request></Autodiscover>"
        )
    };
    let good = write("good.xml", request(JEAN).as_bytes());
    let (status, body) = https(
        &server,
        &ca,
        "POST",
        "/autodiscover/autodiscover.xml",
        Some("autodiscover.hopital-a.mes.test"),
        Some(&good),
    );
    assert_eq!(status, 200, "{body}");
    let root = Node::parse(&body);
    assert_eq!(root.name, "Autodiscover");
    let account = root.child("Response").child("Account");
    assert_eq!(account.text_of("AccountType"), "email");
    assert_eq!(account.text_of("Action"), "settings");
    let protocols = account.all("Protocol");
    let by_type = |t: &str| {
        *protocols
            .iter()
            .find(|p| p.text_of("Type") == t)
            .unwrap_or_else(|| panic!("no {t} protocol: {body}"))
    };
    assert_eq!(by_type("IMAP").text_of("Port"), port("imaps"));
    assert_eq!(by_type("IMAP").text_of("SSL"), "on");
    assert_eq!(by_type("IMAP").text_of("LoginName"), JEAN);
    assert_eq!(by_type("SMTP").text_of("Port"), port("submissions"));
    assert_eq!(by_type("SMTP").text_of("Server"), "mx.hopital-a.mes.test");

    let unknown = write("unknown.xml", request("x@unknown.test").as_bytes());
    let (status, _) = https(
        &server,
        &ca,
        "POST",
        "/autodiscover/autodiscover.xml",
        None,
        Some(&unknown),
    );
    assert_eq!(status, 404);
    let laughs = write(
        "laughs.xml",
        "<?xml version=\"1.0\"?><!DOCTYPE a [<!ENTITY a \"aaaaaaaaaa\">\
             <!ENTITY b \"&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;\"><!ENTITY c \"&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;\">]>\
             <Autodiscover><Request><EMailAddress>&c;@hopital-a.mes.test</EMailAddress></Request></Autodiscover>"
        .as_bytes(),
    );
    let (status, _) = https(
        &server,
        &ca,
        "POST",
        "/autodiscover/autodiscover.xml",
        None,
        Some(&laughs),
    );
    assert_eq!(status, 400, "entities are never expanded");
    // Over the limit: 413 (a body small enough to be sent whole before the answer).
    let mut over = request(JEAN).into_bytes();
    over.extend(std::iter::repeat_n(b' ', 16 * 1024));
    let over = write("over.xml", &over);
    let (status, _) = https(
        &server,
        &ca,
        "POST",
        "/autodiscover/autodiscover.xml",
        None,
        Some(&over),
    );
    assert_eq!(
        status, 413,
        "a body over the limit is refused before parsing"
    );
    // A huge one: refused with 413, or the connection is closed while curl still sends.
    let mut huge = request(JEAN).into_bytes();
    huge.extend(std::iter::repeat_n(b' ', 4 * 1024 * 1024));
    let huge = write("huge.xml", &huge);
    let (status, _) = https(
        &server,
        &ca,
        "POST",
        "/autodiscover/autodiscover.xml",
        None,
        Some(&huge),
    );
    assert!(status == 413 || status == 0, "huge body answered {status}");
    // The server is still there.
    let (status, _) = https(
        &server,
        &ca,
        "POST",
        "/autodiscover/autodiscover.xml",
        None,
        Some(&good),
    );
    assert_eq!(status, 200);
}

mod autoconfiguration {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite() {
        super::autoconfiguration_describes_the_running_listeners(super::common::Db::Sqlite).await;
    }
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres() {
        super::autoconfiguration_describes_the_running_listeners(super::common::Db::Postgres).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dns_records_for_a_hosted_domain() {
    let instance = Instance::new(Db::Sqlite).await;
    instance.edit_config(|t| {
        t.replacen("imap = \"127.0.0.1:0\"\n", "", 1).replacen(
            "[clients]\n",
            "[clients]\nimaps_port = 993\nsubmissions_port = 465\nsubmission_port = 587\n",
            1,
        )
    });
    let out = instance.run(&["dns", "records", "hopital-a.mes.test"], None);
    let d = "hopital-a.mes.test";
    for expected in [
        format!("{d}. 3600 IN MX 10 mx.{d}."),
        format!("_submissions._tcp.{d}. 3600 IN SRV 0 1 465 mx.{d}."),
        format!("_submission._tcp.{d}. 3600 IN SRV 10 1 587 mx.{d}."),
        format!("_imaps._tcp.{d}. 3600 IN SRV 0 1 993 mx.{d}."),
        // The IMAP STARTTLS listener is off: "no service".
        format!("_imap._tcp.{d}. 3600 IN SRV 0 0 0 ."),
        format!("autoconfig.{d}. 3600 IN CNAME mx.{d}."),
        format!("autodiscover.{d}. 3600 IN CNAME mx.{d}."),
        format!("_smtp._tls.{d}. 3600 IN TXT \"v=TLSRPTv1; rua=mailto:tls-reports@{d}\""),
        ";   mode: enforce".to_string(),
        format!(";   mx: mx.{d}"),
    ] {
        assert!(
            out.lines().any(|l| l == expected),
            "missing `{expected}` in:\n{out}"
        );
    }
    assert!(
        out.lines()
            .any(|l| l.starts_with(&format!("_mta-sts.{d}. 3600 IN TXT \"v=STSv1; id="))),
        "{out}"
    );
    assert!(out.contains("RFC 8314"), "{out}");
    let config = instance.config.to_str().expect("utf-8");
    let (ok, _, err) = mes(
        &["--config", config, "dns", "records", "unknown.test"],
        None,
    );
    assert!(!ok);
    assert!(err.contains("not a hosted domain"), "{err}");
}

/// A CA of our own (not the development PKI), a server certificate it
/// issued for localhost, and its revocation list, written into `certs/prod-*`.
fn production_pki(instance: &Instance) {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, KeyUsagePurpose};
    let mut params = CertificateParams::default();
    params
        .distinguished_name
        .push(DnType::CommonName, "AC Test Production");
    params
        .distinguished_name
        .push(DnType::OrganizationName, "Autorite de Test");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let key = KeyPair::generate().expect("key");
    let cert = params.self_signed(&key).expect("CA");
    let ca = mes::pki::Ca::from_pem(&cert.pem(), &key.serialize_pem()).expect("CA");
    let leaf = ca
        .issue(&mes::pki::LeafSpec::new("localhost", "Operateur de Test").with_loopback())
        .expect("leaf");
    let crl = mes::tls::revocation::empty_crl(&ca).expect("CRL");
    std::fs::write(instance.cert("prod-ca.pem"), ca.cert_pem()).expect("write");
    std::fs::write(instance.cert("prod-server.pem"), &leaf.cert_pem).expect("write");
    std::fs::write(instance.cert("prod-server.key"), &leaf.key_pem).expect("write");
    std::fs::write(instance.cert("prod-crl.pem"), crl).expect("write");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn production_mode_refuses_development_certificates() {
    let instance = Instance::new(Db::Sqlite).await;
    instance.edit_config(|t| t.replacen("# mode = \"development\"", "mode = \"production\"", 1));
    let config = instance.config.to_str().expect("utf-8").to_string();
    let (ok, _, err) = mes(&["--config", &config, "config", "check"], None);
    assert!(!ok, "the development PKI passed the production check");
    for key in [
        "`tls.certificate`",
        "`tls.trust_anchors`",
        "`tls.crl_files`",
        "`clients.web_url`",
    ] {
        assert!(err.contains(key), "{key} not named: {err}");
    }
    let (ok, out, err) = mes(&["--config", &config, "serve"], None);
    assert!(
        !ok,
        "mes serve started in production with development certificates: {out}"
    );
    assert!(err.contains("not fit for production"), "{err}");

    // Our own CA, a certificate it issued and its list: fit.
    production_pki(&instance);
    instance.edit_config(|t| {
        t.replacen(
            "[clients]\n",
            "[clients]\nweb_url = \"https://localhost\"\n",
            1,
        )
        .replacen(
            "certificate = \"certs/server.pem\"",
            "certificate = \"certs/prod-server.pem\"",
            1,
        )
        .replacen(
            "private_key = \"certs/server.key\"",
            "private_key = \"certs/prod-server.key\"",
            1,
        )
        .replacen(
            "trust_anchors = [\"certs/ca.pem\"]",
            "trust_anchors = [\"certs/prod-ca.pem\"]",
            1,
        )
        .replacen(
            "crl_files = [\"certs/crl.pem\"]",
            "crl_files = [\"certs/prod-crl.pem\"]",
            1,
        )
    });
    let out = instance.run(&["config", "check"], None);
    assert!(out.contains("OK (production)"), "{out}");
    let mut server = instance.start();
    let (status, _) = curl(&[
        "--cacert",
        instance.cert("prod-ca.pem").to_str().expect("utf-8"),
        &format!(
            "https://localhost:{}/connexion",
            server.addr("https").port()
        ),
    ]);
    assert_eq!(status, 200, "served with the production certificate");
    server.terminate(std::time::Duration::from_secs(20));

    // Without its list, or with a key that is not the certificate's: refused.
    instance
        .edit_config(|t| t.replacen("crl_files = [\"certs/prod-crl.pem\"]", "crl_files = []", 1));
    let (ok, _, err) = mes(&["--config", &config, "config", "check"], None);
    assert!(!ok);
    assert!(err.contains("`tls.crl_files`: no revocation list"), "{err}");
    instance.edit_config(|t| {
        t.replacen("crl_files = []", "crl_files = [\"certs/prod-crl.pem\"]", 1)
            .replacen(
                "private_key = \"certs/prod-server.key\"",
                "private_key = \"certs/server.key\"",
                1,
            )
    });
    let (ok, _, err) = mes(&["--config", &config, "config", "check"], None);
    assert!(!ok);
    assert!(err.contains("`tls.private_key`"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn production_mode_refuses_a_self_signed_certificate_and_public_metrics() {
    let instance = Instance::new(Db::Sqlite).await;
    production_pki(&instance);
    let own = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).expect("cert");
    std::fs::write(instance.cert("self.pem"), own.cert.pem()).expect("write");
    std::fs::write(instance.cert("self.key"), own.signing_key.serialize_pem()).expect("write");
    instance.edit_config(|t| {
        t.replacen("# mode = \"development\"", "mode = \"production\"", 1)
            .replacen(
                "certificate = \"certs/server.pem\"",
                "certificate = \"certs/self.pem\"",
                1,
            )
            .replacen(
                "private_key = \"certs/server.key\"",
                "private_key = \"certs/self.key\"",
                1,
            )
            .replacen(
                "trust_anchors = [\"certs/ca.pem\"]",
                "trust_anchors = [\"certs/prod-ca.pem\"]",
                1,
            )
            .replacen(
                "crl_files = [\"certs/crl.pem\"]",
                "crl_files = [\"certs/prod-crl.pem\"]",
                1,
            )
            .replacen(
                "https = \"127.0.0.1:0\"\n",
                "https = \"127.0.0.1:0\"\nmetrics = \"0.0.0.0:0\"\nmetrics_public = true\n",
                1,
            )
    });
    let config = instance.config.to_str().expect("utf-8").to_string();
    let (ok, _, err) = mes(&["--config", &config, "config", "check"], None);
    assert!(!ok);
    assert!(
        err.contains("`tls.certificate`") && err.contains("self-signed"),
        "{err}"
    );
    assert!(
        err.contains("`listen.metrics`") && err.contains("public address"),
        "{err}"
    );
    assert!(!err.contains("`tls.trust_anchors`"), "{err}");
}
