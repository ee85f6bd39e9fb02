//! Patient threads end to end: professionals write (lettre, SMTP), patients read
//! and reply through the API (curl), replies reach the professional (IMAP),
//! closing by [FIN], X-MSS-MES: FIN (remote operator) and $MSSanteFin.

mod common;

use std::time::{Duration, Instant};

use common::{Db, Instance, Server, api, api_login, imap_login, inbox, open_store};
use lettre::message::Mailbox;
use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use serde_json::json;

const PW: &str = "correct horse battery staple";
const JEAN: &str = "jean.dupont@hopital-a.mes.test";
const PATIENT: &str = "279035121518989@patient.mes.test";
const PATIENT_PW: &str = "mot de passe du patient";

async fn setup(db: Db) -> (Instance, Server) {
    let instance = Instance::new(db).await;
    instance.add_professional(JEAN, "Dr Jean Dupont", "Médecin généraliste", PW);
    instance.add_named_user(PATIENT, "patient", "Dominique Pat-Trois", PATIENT_PW);
    let server = instance.start();
    (instance, server)
}

fn transport(instance: &Instance, server: &Server) -> AsyncSmtpTransport<Tokio1Executor> {
    let ca = std::fs::read(instance.cert("ca.pem")).unwrap();
    let tls = TlsParameters::builder("localhost".into())
        .add_root_certificate(Certificate::from_pem(&ca).unwrap())
        .build_rustls()
        .unwrap();
    AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous("127.0.0.1")
        .port(server.addr("submission").port())
        .tls(Tls::Required(tls))
        .credentials(Credentials::new(JEAN.into(), PW.into()))
        .authentication(vec![Mechanism::Plain])
        .build()
}

async fn pro_writes(
    instance: &Instance,
    server: &Server,
    subject: &str,
    in_reply_to: Option<&str>,
) {
    let mut b = Message::builder()
        .from(
            format!("Dr Jean Dupont <{JEAN}>")
                .parse::<Mailbox>()
                .unwrap(),
        )
        .to(PATIENT.parse::<Mailbox>().unwrap())
        .subject(subject);
    if let Some(r) = in_reply_to {
        b = b.in_reply_to(r.to_string()).references(r.to_string());
    }
    transport(instance, server)
        .send(b.body(format!("Bonjour, {subject}.\r\n")).unwrap())
        .await
        .unwrap();
}

async fn local_professional_thread(db: Db) {
    let (instance, server) = setup(db).await;
    let ca = instance.cert("ca.pem");
    pro_writes(&instance, &server, "Vos résultats", None).await;

    let token = api_login(&server, &ca, "279035121518989", PATIENT_PW);
    let (status, list) = api(&server, &ca, "GET", "/api/v1/threads", Some(&token), None);
    assert_eq!(status, 200);
    let t = &list["threads"][0];
    assert_eq!(t["correspondent"]["name"], "Dr Jean Dupont");
    assert_eq!(t["correspondent"]["profession"], "Médecin généraliste");
    assert_eq!(t["status"], "open");
    assert_eq!(t["unread"], 1);
    let id = t["id"].as_i64().unwrap();
    let (_, thread) = api(
        &server,
        &ca,
        "GET",
        &format!("/api/v1/threads/{id}"),
        Some(&token),
        None,
    );
    assert!(
        thread["messages"][0]["text"]
            .as_str()
            .unwrap()
            .contains("Vos résultats"),
        "{thread}"
    );
    assert_eq!(thread["messages"][0]["from_name"], "Dr Jean Dupont");
    let (status, _) = api(
        &server,
        &ca,
        "POST",
        &format!("/api/v1/threads/{id}/read"),
        Some(&token),
        None,
    );
    assert_eq!(status, 204);

    // The patient replies; the professional's client threads it.
    let (status, body) = api(
        &server,
        &ca,
        "POST",
        &format!("/api/v1/threads/{id}/reply"),
        Some(&token),
        Some(&json!({"text": "Merci docteur"}).to_string()),
    );
    assert_eq!(status, 201, "{body}");
    let store = open_store(&instance).await;
    let first_id = {
        let m = inbox(&store, PATIENT).await;
        let text = String::from_utf8_lossy(&m[0].data).into_owned();
        text.lines()
            .find_map(|l| l.strip_prefix("Message-ID: "))
            .unwrap()
            .trim()
            .to_string()
    };
    let mut imap = imap_login(server.addr("imaps"), &ca, JEAN, PW).await;
    imap.expect("SELECT INBOX", "OK").await;
    let f = imap
        .expect(
            "FETCH 1 (BODY.PEEK[HEADER.FIELDS (FROM IN-REPLY-TO REFERENCES SUBJECT)])",
            "OK",
        )
        .await
        .all();
    assert!(f.contains(&format!("In-Reply-To: {first_id}")), "{f}");
    assert!(f.contains(&format!("References: {first_id}")), "{f}");
    assert!(f.contains("Dominique Pat-Trois"), "{f}");
    assert!(f.contains("Re:_Vos_r=C3=A9sultats"), "{f}");

    // [FIN]: the thread ends; the next reply is refused in French.
    pro_writes(&instance, &server, "[FIN]", Some(&first_id)).await;
    let (_, list) = api(&server, &ca, "GET", "/api/v1/threads", Some(&token), None);
    assert_eq!(list["threads"][0]["status"], "ended", "{list}");
    assert_eq!(
        list["threads"][0]["notice"],
        "Dr Jean Dupont a mis fin à vos échanges"
    );
    let (status, body) = api(
        &server,
        &ca,
        "POST",
        &format!("/api/v1/threads/{id}/reply"),
        Some(&token),
        Some(&json!({"text": "Encore une question"}).to_string()),
    );
    assert_eq!(status, 403);
    assert_eq!(body["error"], "Dr Jean Dupont a mis fin à vos échanges");
    let (status, _) = api(
        &server,
        &ca,
        "POST",
        "/api/v1/messages",
        Some(&token),
        Some(&json!({"to": JEAN, "text": "Bonjour ?"}).to_string()),
    );
    assert_eq!(status, 403, "no open thread, no new message");

    // A new message from the professional opens a new thread that accepts replies.
    pro_writes(&instance, &server, "Nouveau rendez-vous", None).await;
    let (_, list) = api(&server, &ca, "GET", "/api/v1/threads", Some(&token), None);
    assert_eq!(list["threads"].as_array().unwrap().len(), 2, "{list}");
    let new_id = list["threads"][0]["id"].as_i64().unwrap();
    assert_ne!(new_id, id);
    let (status, body) = api(
        &server,
        &ca,
        "POST",
        "/api/v1/messages",
        Some(&token),
        Some(&json!({"to": JEAN, "text": "D'accord"}).to_string()),
    );
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["thread"].as_i64(), Some(new_id));

    // The thread events are in the patient's audit trail.
    let trail = mes::audit::entries_for(&store, PATIENT).await.unwrap();
    let actions: Vec<&str> = trail.iter().map(|e| e.action.as_str()).collect();
    for a in [
        "thread.open",
        "thread.reply",
        "thread.message",
        "thread.end",
    ] {
        assert!(actions.contains(&a), "{a} in {actions:?}");
    }
}

both_backends!(local_professional_thread);

#[tokio::test]
async fn keyword_ends_the_thread_and_other_patients_get_404() {
    let (instance, server) = setup(Db::Sqlite).await;
    let ca = instance.cert("ca.pem");
    instance.add_user(
        "184127645108946@patient.mes.test",
        "patient",
        "autre mot de passe long",
    );
    pro_writes(&instance, &server, "Ordonnance", None).await;
    let token = api_login(&server, &ca, PATIENT, PATIENT_PW);
    let (_, list) = api(&server, &ca, "GET", "/api/v1/threads", Some(&token), None);
    let id = list["threads"][0]["id"].as_i64().unwrap();
    let (status, _) = api(
        &server,
        &ca,
        "POST",
        &format!("/api/v1/threads/{id}/reply"),
        Some(&token),
        Some(&json!({"text": "Reçu"}).to_string()),
    );
    assert_eq!(status, 201);

    // Another patient's token on this thread: 404, and the attempt is audited.
    let other = api_login(&server, &ca, "184127645108946", "autre mot de passe long");
    let (status, _) = api(
        &server,
        &ca,
        "GET",
        &format!("/api/v1/threads/{id}"),
        Some(&other),
        None,
    );
    assert_eq!(status, 404);
    let (status, _) = api(
        &server,
        &ca,
        "POST",
        &format!("/api/v1/threads/{id}/reply"),
        Some(&other),
        Some(&json!({"text": "x"}).to_string()),
    );
    assert_eq!(status, 404);
    let store = open_store(&instance).await;
    let trail = mes::audit::entries_for(&store, PATIENT).await.unwrap();
    assert!(
        trail
            .iter()
            .any(|e| e.action == "thread.access_denied"
                && e.actor == "184127645108946@patient.mes.test"),
        "{trail:?}"
    );
    // A patient cannot write to a professional who never wrote to them.
    let (status, body) = api(
        &server,
        &ca,
        "POST",
        "/api/v1/messages",
        Some(&other),
        Some(&json!({"to": JEAN, "text": "Bonjour"}).to_string()),
    );
    assert_eq!(status, 403);
    assert!(
        body["error"].as_str().unwrap().contains("qui vous a écrit"),
        "{body}"
    );
    // Without a token: 401.
    assert_eq!(
        api(&server, &ca, "GET", "/api/v1/threads", None, None).0,
        401
    );

    // The professional sets $MSSanteFin on the patient's reply in INBOX.
    let mut imap = imap_login(server.addr("imaps"), &ca, JEAN, PW).await;
    imap.expect("SELECT INBOX", "OK").await;
    imap.expect("STORE 1 +FLAGS ($MSSanteFin)", "OK").await;
    let (_, list) = api(&server, &ca, "GET", "/api/v1/threads", Some(&token), None);
    assert_eq!(list["threads"][0]["status"], "ended", "{list}");
    let (status, _) = api(
        &server,
        &ca,
        "POST",
        &format!("/api/v1/threads/{id}/reply"),
        Some(&token),
        Some(&json!({"text": "?"}).to_string()),
    );
    assert_eq!(status, 403);
}

#[tokio::test]
async fn one_content_free_notice_for_a_burst() {
    let (port, got) = common::smtp_sink().await;
    let instance = Instance::new(Db::Sqlite).await;
    instance.edit_config(|t| {
        t.replacen(
            "[notify]\n",
            &format!("[notify]\nsmarthost = \"127.0.0.1:{port}\"\nstarttls = false\n"),
            1,
        )
    });
    instance.add_named_user(JEAN, "professional", "Dr Jean Dupont", PW);
    instance.add_user(PATIENT, "patient", PATIENT_PW);
    let server = instance.start();
    let ca = instance.cert("ca.pem");
    let token = api_login(&server, &ca, PATIENT, PATIENT_PW);
    let (status, _) = api(
        &server,
        &ca,
        "PUT",
        "/api/v1/settings/notifications",
        Some(&token),
        Some(&json!({"email": "dominique@perso.example", "enabled": true}).to_string()),
    );
    assert_eq!(status, 200);
    for i in 0..3 {
        pro_writes(
            &instance,
            &server,
            &format!("Résultat confidentiel {i}"),
            None,
        )
        .await;
    }
    let end = Instant::now() + Duration::from_secs(10);
    while got.lock().unwrap().is_empty() && Instant::now() < end {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let notices = got.lock().unwrap().clone();
    assert_eq!(
        notices.len(),
        1,
        "exactly one notice for the burst: {notices:?}"
    );
    let n = &notices[0];
    assert!(n.contains("dominique@perso.example"));
    assert!(
        !n.contains("confidentiel") && !n.contains("Dupont") && !n.contains(JEAN),
        "no content, no sender: {n}"
    );
}

#[tokio::test]
async fn remote_professional_thread_closed_by_header() {
    // A hosts the patient; B (another operator) hosts the professional.
    let a = Instance::new(Db::Sqlite).await;
    let b = Instance::with(Db::Sqlite, "hopital-b.mes.test", Some(&a.root()), "").await;
    const MARIE: &str = "marie.curie@hopital-b.mes.test";
    b.add_named_user(MARIE, "professional", "Dr Marie Curie", PW);
    a.add_named_user(PATIENT, "patient", "Dominique Pat-Trois", PATIENT_PW);
    a.whitelist("hopital-b.mes.test", &b.cert("server.pem"));
    b.whitelist("patient.mes.test", &a.cert("server.pem"));
    b.whitelist("hopital-a.mes.test", &a.cert("server.pem"));
    a.relay("retry_schedule_secs = [1]");
    b.relay("retry_schedule_secs = [1]");
    // Learn and keep each side's ports, point the routes at them, restart both.
    let mut a0 = a.start();
    a.pin_ports(&a0);
    let mut b0 = b.start();
    b.pin_ports(&b0);
    b.relay(&format!(
        "routes = {{ \"patient.mes.test\" = \"127.0.0.1:{}\" }}",
        a0.addr("mx").port()
    ));
    a.relay(&format!(
        "routes = {{ \"hopital-b.mes.test\" = \"127.0.0.1:{}\" }}",
        b0.addr("mx").port()
    ));
    a0.terminate(Duration::from_secs(10));
    b0.terminate(Duration::from_secs(10));
    let a_server = a.start();
    let b_server = b.start();
    let ca = a.cert("ca.pem");

    let send_from_b = |subject: &'static str, fin: bool, reply_to: Option<String>| {
        let ca_b = std::fs::read(b.cert("ca.pem")).unwrap();
        let port = b_server.addr("submission").port();
        async move {
            let tls = TlsParameters::builder("localhost".into())
                .add_root_certificate(Certificate::from_pem(&ca_b).unwrap())
                .build_rustls()
                .unwrap();
            let t = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous("127.0.0.1")
                .port(port)
                .tls(Tls::Required(tls))
                .credentials(Credentials::new(MARIE.into(), PW.into()))
                .authentication(vec![Mechanism::Plain])
                .build();
            let mut m = Message::builder()
                .from(
                    format!("Dr Marie Curie <{MARIE}>")
                        .parse::<Mailbox>()
                        .unwrap(),
                )
                .to(PATIENT.parse::<Mailbox>().unwrap())
                .subject(subject);
            if let Some(r) = reply_to {
                m = m.in_reply_to(r.clone()).references(r);
            }
            if fin {
                m = m.raw_header(lettre::message::header::HeaderValue::new(
                    lettre::message::header::HeaderName::new_from_ascii_str("X-MSS-MES"),
                    "FIN".into(),
                ));
            }
            t.send(m.body("Bonjour.\r\n".to_string()).unwrap())
                .await
                .unwrap();
        }
    };
    send_from_b("Consultation", false, None).await;
    let end = Instant::now() + Duration::from_secs(30);
    let token = api_login(&a_server, &ca, PATIENT, PATIENT_PW);
    let id = loop {
        let (_, list) = api(&a_server, &ca, "GET", "/api/v1/threads", Some(&token), None);
        if let Some(id) = list["threads"][0]["id"].as_i64() {
            assert_eq!(
                list["threads"][0]["correspondent"]["name"], "Dr Marie Curie",
                "{list}"
            );
            break id;
        }
        assert!(
            Instant::now() < end,
            "the message from B never arrived:\n{}",
            b_server.log()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let (status, body) = api(
        &a_server,
        &ca,
        "POST",
        &format!("/api/v1/threads/{id}/reply"),
        Some(&token),
        Some(&json!({"text": "Merci"}).to_string()),
    );
    assert_eq!(status, 201, "{body}");
    // The reply crosses to B over the relay.
    let b_store = open_store(&b).await;
    let end = Instant::now() + Duration::from_secs(30);
    let reply = loop {
        let m = inbox(&b_store, MARIE).await;
        if let Some(m) = m.first() {
            break String::from_utf8_lossy(&m.data).into_owned();
        }
        assert!(
            Instant::now() < end,
            "the reply never reached B:\n{}",
            a_server.log()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(reply.contains("In-Reply-To: <"), "{reply}");
    let reply_id = reply
        .lines()
        .find_map(|l| l.strip_prefix("Message-ID: "))
        .unwrap()
        .trim()
        .to_string();
    // B's professional closes with X-MSS-MES: FIN, replying to the patient.
    send_from_b("Fin de l'échange", true, Some(reply_id)).await;
    let end = Instant::now() + Duration::from_secs(30);
    loop {
        let (_, list) = api(&a_server, &ca, "GET", "/api/v1/threads", Some(&token), None);
        if list["threads"][0]["status"] == "ended" {
            assert_eq!(
                list["threads"][0]["notice"],
                "Dr Marie Curie a mis fin à vos échanges"
            );
            break;
        }
        assert!(Instant::now() < end, "never ended: {list}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let (status, _) = api(
        &a_server,
        &ca,
        "POST",
        &format!("/api/v1/threads/{id}/reply"),
        Some(&token),
        Some(&json!({"text": "?"}).to_string()),
    );
    assert_eq!(status, 403);
}

#[tokio::test]
async fn attachments_upload_rules_and_download() {
    let (instance, server) = setup(Db::Sqlite).await;
    let ca = instance.cert("ca.pem");
    pro_writes(&instance, &server, "Envoyez votre ordonnance", None).await;
    let token = api_login(&server, &ca, PATIENT, PATIENT_PW);
    let (_, list) = api(&server, &ca, "GET", "/api/v1/threads", Some(&token), None);
    let id = list["threads"][0]["id"].as_i64().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let pdf = dir.path().join("ordonnance.pdf");
    std::fs::write(&pdf, b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n").unwrap();
    let exe = dir.path().join("photo.pdf");
    std::fs::write(&exe, b"MZ\x90\x00not a pdf").unwrap();
    let url = format!(
        "https://localhost:{}/api/v1/threads/{id}/reply",
        server.addr("https").port()
    );
    let upload = |file: &std::path::Path| {
        let out = std::process::Command::new("curl")
            .args([
                "-sS",
                "--cacert",
                ca.to_str().unwrap(),
                "-w",
                "\n%{http_code}",
                "-H",
                // The scheme in any case (RFC 9110 §11.1).
                &format!("authorization: bearer {token}"),
            ])
            .args([
                "-F",
                "text=Voici le document",
                "-F",
                &format!("file=@{}", file.display()),
                &url,
            ])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let refused = upload(&exe);
    assert!(refused.ends_with("422"), "{refused}");
    assert!(refused.contains("type accepté"), "{refused}");
    let ok = upload(&pdf);
    assert!(ok.ends_with("201"), "{ok}");
    // The professional receives the PDF; the patient can download it back from the thread.
    let (_, thread) = api(
        &server,
        &ca,
        "GET",
        &format!("/api/v1/threads/{id}"),
        Some(&token),
        None,
    );
    let sent = thread["messages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["direction"] == "out")
        .unwrap()
        .clone();
    assert_eq!(
        sent["attachments"][0]["filename"], "ordonnance.pdf",
        "{thread}"
    );
    let mid = sent["id"].as_i64().unwrap();
    let out = std::process::Command::new("curl")
        .args([
            "-sS",
            "--cacert",
            ca.to_str().unwrap(),
            "-D",
            "-",
            "-H",
            &format!("authorization: Bearer {token}"),
        ])
        .arg(format!(
            "https://localhost:{}/api/v1/threads/{id}/messages/{mid}/attachments/0",
            server.addr("https").port()
        ))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("attachment; filename=\"ordonnance.pdf\""),
        "{text}"
    );
    assert!(text.contains("%PDF-1.4"), "{text}");
    let store = open_store(&instance).await;
    let pro = inbox(&store, JEAN).await;
    assert!(String::from_utf8_lossy(&pro[0].data).contains("application/pdf"));
}

#[tokio::test]
async fn smtp_never_carries_patient_messages() {
    let (instance, server) = setup(Db::Sqlite).await;
    let config = common::client_tls(
        &instance.cert("ca.pem"),
        Some((
            &instance.cert("operator2.pem"),
            &instance.cert("operator2.key"),
        )),
    );
    let mut s = common::connect_starttls(server.addr("mx"), config)
        .await
        .unwrap();
    let r = s.expect(&format!("MAIL FROM:<{PATIENT}>"), 550).await;
    assert!(r.text().contains("5.7.1"), "{r:?}");
}

/// A full mailbox, the correspondent's or the patient's own, is told in French.
async fn full_mailboxes_are_told_in_french(db: Db) {
    let (instance, server) = setup(db).await;
    let ca = instance.cert("ca.pem");
    pro_writes(&instance, &server, "Suivi", None).await;
    let token = api_login(&server, &ca, "279035121518989", PATIENT_PW);
    let (_, list) = api(&server, &ca, "GET", "/api/v1/threads", Some(&token), None);
    let id = list["threads"][0]["id"].as_i64().unwrap();
    let reply = |text: &str| {
        api(
            &server,
            &ca,
            "POST",
            &format!("/api/v1/threads/{id}/reply"),
            Some(&token),
            Some(&json!({ "text": text }).to_string()),
        )
    };
    instance.run(&["user", "quota", JEAN, "--messages", "1"], None);
    assert_eq!(reply("Première réponse").0, 201);
    let (status, body) = reply("Deuxième réponse");
    assert_eq!(status, 507, "{body}");
    assert_eq!(
        body["error"],
        "La messagerie de votre correspondant est pleine : le message n'a pas été envoyé. \
         Réessayez plus tard."
    );
    instance.run(&["user", "quota", JEAN, "--messages", "none"], None);
    instance.run(&["user", "quota", PATIENT, "--storage", "1K"], None);
    let (status, body) = reply("Troisième réponse");
    assert_eq!(status, 507, "{body}");
    assert_eq!(
        body["error"],
        "Votre espace de messagerie est plein : le message n'a pas été envoyé. \
         Réessayez plus tard ou contactez le service."
    );
    let store = open_store(&instance).await;
    assert_eq!(
        inbox(&store, JEAN).await.len(),
        1,
        "only the first reply arrived"
    );
}

both_backends!(full_mailboxes_are_told_in_french);
