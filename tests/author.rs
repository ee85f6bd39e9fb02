//! The author of a message is proven by authentication, never taken from a
//! header (identity/author.rs), against the real binary on both backends:
//! each forged case is refused or has no effect, and the test shows what the
//! patient then sees (threads through the API) and what the sender is told.

mod common;

use std::time::{Duration, Instant};

use common::{
    Db, Instance, Server, api, api_login, client_tls, connect_starttls, inbox, open_store,
};
use serde_json::{Value, json};

const PW: &str = "correct horse battery staple";
const JEAN: &str = "jean.dupont@hopital-a.mes.test";
const PIERRE: &str = "pierre.martin@hopital-a.mes.test";
const DPI: &str = "dpi@hopital-a.mes.test";
const MARTIN: &str = "dr.martin@operateur2.mes.test";
const PATIENT: &str = "279035121518989@patient.mes.test";
const OTHER_PATIENT: &str = "184127645108946@patient.mes.test";
const PATIENT_PW: &str = "mot de passe du patient";

/// Jean (who may be written for by the DPI), Pierre, the DPI mapped to the
/// development client certificate, two patients; hopital-b whitelisted for
/// our own server certificate (so operator two is the wrong operator for it).
async fn setup(db: Db) -> (Instance, Server) {
    let delegation = format!("[smtp.delegations]\n\"{JEAN}\" = [\"{DPI}\"]");
    let instance = Instance::with(db, "hopital-a.mes.test", None, &delegation).await;
    instance.add_professional(JEAN, "Dr Jean Dupont", "Médecin généraliste", PW);
    instance.add_named_user(PIERRE, "professional", "Dr Pierre Martin", PW);
    instance.add_mapped_system(DPI, "DPI Hôpital A");
    instance.add_named_user(PATIENT, "patient", "Dominique Pat-Trois", PATIENT_PW);
    instance.add_named_user(OTHER_PATIENT, "patient", "Camille Autre", PATIENT_PW);
    instance.whitelist("hopital-b.mes.test", &instance.cert("server.pem"));
    let server = instance.start();
    (instance, server)
}

/// One message over the MX listener with the certificate `cert` (`operator2`
/// or `client`); returns the reply to MAIL FROM if refused, else the final one.
async fn mx(
    instance: &Instance,
    server: &Server,
    cert: &str,
    mail_from: &str,
    to: &str,
    data: &str,
) -> common::SmtpReply {
    let tls = client_tls(
        &instance.cert("ca.pem"),
        Some((
            &instance.cert(&format!("{cert}.pem")),
            &instance.cert(&format!("{cert}.key")),
        )),
    );
    let mut s = connect_starttls(server.addr("mx"), tls).await.unwrap();
    let r = s.cmd(&format!("MAIL FROM:<{mail_from}>")).await;
    if r.code != 250 {
        return r;
    }
    s.expect(&format!("RCPT TO:<{to}>"), 250).await;
    s.expect("DATA", 354).await;
    s.send(&format!("{data}.\r\n")).await;
    let r = s.read_reply().await;
    s.expect("QUIT", 221).await;
    r
}

/// One message on submission as `user`; returns the final reply.
async fn submit(
    instance: &Instance,
    server: &Server,
    user: &str,
    to: &str,
    data: &str,
) -> common::SmtpReply {
    let mut s = common::connect_tls(
        server.addr("submissions"),
        client_tls(&instance.cert("ca.pem"), None),
    )
    .await
    .unwrap();
    s.expect("EHLO client.test", 250).await;
    s.expect(&format!("AUTH PLAIN {}", common::plain(user, PW)), 235)
        .await;
    s.expect(&format!("MAIL FROM:<{user}>"), 250).await;
    s.expect(&format!("RCPT TO:<{to}>"), 250).await;
    s.expect("DATA", 354).await;
    s.send(&format!("{data}.\r\n")).await;
    s.read_reply().await
}

fn threads(server: &Server, instance: &Instance, token: &str) -> Vec<Value> {
    let (status, list) = api(
        server,
        &instance.cert("ca.pem"),
        "GET",
        "/api/v1/threads",
        Some(token),
        None,
    );
    assert_eq!(status, 200, "{list}");
    list["threads"].as_array().cloned().unwrap_or_default()
}

/// Forged authors on MX: refused with the real reason, nothing reaches the patient.
async fn forged_from_on_mx_is_refused(db: Db) {
    let (instance, server) = setup(db).await;
    // Operator two writes `From:` one of our professionals.
    let r = mx(
        &instance,
        &server,
        "operator2",
        MARTIN,
        PATIENT,
        &format!("From: Dr Jean Dupont <{JEAN}>\r\nSubject: Resultats\r\n\r\nx\r\n"),
    )
    .await;
    assert_eq!(r.code, 550, "{r:?}");
    assert!(r.text().contains("5.7.1"), "{r:?}");
    assert!(
        r.text().contains(&format!("{JEAN} is hosted here")),
        "{r:?}"
    );
    // ... or as envelope sender.
    let r = mx(&instance, &server, "operator2", JEAN, PATIENT, "").await;
    assert_eq!(r.code, 550, "{r:?}");
    // `From:` of a domain outside the trust space.
    let r = mx(
        &instance,
        &server,
        "operator2",
        MARTIN,
        PATIENT,
        "From: <x@elsewhere.test>\r\nSubject: s\r\n\r\nx\r\n",
    )
    .await;
    assert_eq!(r.code, 550, "{r:?}");
    assert!(
        r.text()
            .contains("elsewhere.test is not in the trust space"),
        "{r:?}"
    );
    // `From:` of a domain whitelisted for another operator's certificate.
    let r = mx(
        &instance,
        &server,
        "operator2",
        MARTIN,
        PATIENT,
        "From: <someone@hopital-b.mes.test>\r\nSubject: s\r\n\r\nx\r\n",
    )
    .await;
    assert_eq!(r.code, 550, "{r:?}");
    assert!(
        r.text().contains("not the operator of hopital-b.mes.test"),
        "{r:?}"
    );
    // A patient's address as author: patients write from their space only.
    let r = mx(
        &instance,
        &server,
        "operator2",
        MARTIN,
        PATIENT,
        &format!("From: <{OTHER_PATIENT}>\r\nSubject: s\r\n\r\nx\r\n"),
    )
    .await;
    assert_eq!(r.code, 550, "{r:?}");
    assert!(r.text().contains("patient space only"), "{r:?}");
    // Two From fields, and a Sender that disagrees.
    for headers in [
        format!("From: <{MARTIN}>\r\nFrom: <{JEAN}>\r\n"),
        format!("From: <{MARTIN}>\r\nSender: <{JEAN}>\r\n"),
        String::new(),
    ] {
        let r = mx(
            &instance,
            &server,
            "operator2",
            MARTIN,
            PATIENT,
            &format!("{headers}Subject: s\r\n\r\nx\r\n"),
        )
        .await;
        assert_eq!(r.code, 550, "{headers}: {r:?}");
    }
    // What the patient sees: nothing at all.
    let token = api_login(&server, &instance.cert("ca.pem"), PATIENT, PATIENT_PW);
    assert!(threads(&server, &instance, &token).is_empty());
    let store = open_store(&instance).await;
    assert!(inbox(&store, PATIENT).await.is_empty());
    // The log names the reason and the certificate, never the patient.
    let log = server.log();
    assert!(log.contains("author not proven"), "{log}");
    assert!(!log.contains("279035121518989"), "{log}");

    // The legitimate remote professional still opens a thread, marked as
    // another operator's, named from the message.
    let r = mx(
        &instance,
        &server,
        "operator2",
        MARTIN,
        PATIENT,
        &format!("From: Dr Martin <{MARTIN}>\r\nSubject: Bonjour\r\n\r\nx\r\n"),
    )
    .await;
    assert_eq!(r.code, 250, "{r:?}");
    let list = threads(&server, &instance, &token);
    assert_eq!(list.len(), 1, "{list:?}");
    assert_eq!(list[0]["correspondent"]["name"], "Dr Martin");
    assert_eq!(list[0]["correspondent"]["address"], MARTIN);
    assert_eq!(list[0]["correspondent"]["other_operator"], true);
    let log = server.log();
    assert!(
        log.contains(&format!("author={MARTIN}"))
            && log.contains("proof=operator certificate CN=mx.operateur2.mes.test"),
        "{log}"
    );
}

/// Only the correspondent ends a thread: not a null sender, not another professional.
async fn only_the_correspondent_ends_a_thread(db: Db) {
    let (instance, server) = setup(db).await;
    let r = submit(
        &instance,
        &server,
        JEAN,
        PATIENT,
        &format!(
            "From: Dr Jean Dupont <{JEAN}>\r\nTo: <{PATIENT}>\r\nSubject: Resultats\r\n\
             Message-ID: <first@hopital-a.mes.test>\r\n\r\nBonjour.\r\n"
        ),
    )
    .await;
    assert_eq!(r.code, 250, "{r:?}");
    let ca = instance.cert("ca.pem");
    let token = api_login(&server, &ca, PATIENT, PATIENT_PW);
    let list = threads(&server, &instance, &token);
    assert_eq!(list.len(), 1);
    assert_eq!(list[0]["correspondent"]["name"], "Dr Jean Dupont");
    assert_eq!(
        list[0]["correspondent"]["profession"],
        "Médecin généraliste"
    );
    assert_eq!(list[0]["correspondent"]["other_operator"], false);
    assert!(list[0]["correspondent"]["via"].is_null());
    let jean_thread = list[0]["id"].as_i64().unwrap();

    // The null sender with X-MSS-MES: FIN and no report: refused.
    let fin = format!(
        "From: <{JEAN}>\r\nSubject: [FIN]\r\nX-MSS-MES: FIN\r\n\
         In-Reply-To: <first@hopital-a.mes.test>\r\n\r\nFin.\r\n"
    );
    let r = mx(&instance, &server, "operator2", "", PATIENT, &fin).await;
    assert_eq!(r.code, 550, "{r:?}");
    assert!(
        r.text().contains("only delivery or disposition reports"),
        "{r:?}"
    );
    // A real report under the null sender, even with FIN: delivered, no thread effect.
    let report = "From: MAILER-DAEMON@mx.operateur2.mes.test (Mail Delivery System)\r\n\
         Subject: Undelivered Mail\r\nX-MSS-MES: FIN\r\nIn-Reply-To: <first@hopital-a.mes.test>\r\n\
         MIME-Version: 1.0\r\n\
         Content-Type: multipart/report; report-type=delivery-status; boundary=\"r\"\r\n\r\n\
         --r\r\nContent-Type: text/plain\r\n\r\nDelivery failed.\r\n\
         --r\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.operateur2.mes.test\r\n\r\n\
         Final-Recipient: rfc822; x@operateur2.mes.test\r\nAction: failed\r\nStatus: 5.1.1\r\n\r\n--r--\r\n";
    let r = mx(&instance, &server, "operator2", "", PATIENT, report).await;
    assert_eq!(r.code, 250, "{r:?}");
    // Another professional ends "the thread": it has no effect on Jean's.
    let r = submit(
        &instance,
        &server,
        PIERRE,
        PATIENT,
        &format!(
            "From: <{PIERRE}>\r\nSubject: [FIN]\r\nX-MSS-MES: FIN\r\n\
             In-Reply-To: <first@hopital-a.mes.test>\r\n\r\nFin.\r\n"
        ),
    )
    .await;
    assert_eq!(r.code, 250, "{r:?}");
    // A remote professional likewise.
    let r = mx(
        &instance,
        &server,
        "operator2",
        MARTIN,
        PATIENT,
        &format!(
            "From: <{MARTIN}>\r\nSubject: [FIN]\r\nX-MSS-MES: FIN\r\n\
             In-Reply-To: <first@hopital-a.mes.test>\r\n\r\nFin.\r\n"
        ),
    )
    .await;
    assert_eq!(r.code, 250, "{r:?}");
    let list = threads(&server, &instance, &token);
    let jean = list
        .iter()
        .find(|t| t["id"] == jean_thread)
        .expect("Jean's thread");
    assert_eq!(jean["status"], "open", "{list:?}");
    assert!(
        list.iter().all(|t| t["correspondent"]["address"]
            != "mailer-daemon@mx.operateur2.mes.test"
            && t["correspondent"]["name"] != "Mail Delivery System"),
        "a report is never a thread: {list:?}"
    );
    // The patient still replies to Jean.
    let (status, body) = api(
        &server,
        &ca,
        "POST",
        &format!("/api/v1/threads/{jean_thread}/reply"),
        Some(&token),
        Some(&json!({"text": "Merci"}).to_string()),
    );
    assert_eq!(status, 201, "{body}");
    // Jean ends it himself.
    let r = submit(
        &instance,
        &server,
        JEAN,
        PATIENT,
        &format!(
            "From: <{JEAN}>\r\nSubject: [FIN]\r\nIn-Reply-To: <first@hopital-a.mes.test>\r\n\r\nFin.\r\n"
        ),
    )
    .await;
    assert_eq!(r.code, 250, "{r:?}");
    let list = threads(&server, &instance, &token);
    let jean = list.iter().find(|t| t["id"] == jean_thread).unwrap();
    assert_eq!(jean["status"], "ended", "{list:?}");
}

/// Submission: one From, the account's own; a Sender that disagrees is refused.
async fn submission_headers(db: Db) {
    let (instance, server) = setup(db).await;
    for (headers, reason) in [
        (
            format!("From: <{JEAN}>\r\nFrom: <{PIERRE}>\r\n"),
            "exactly one From",
        ),
        (
            format!("From: <{JEAN}>, <{PIERRE}>\r\n"),
            "exactly one From",
        ),
        (format!("From: <{PIERRE}>\r\n"), "is not an address of"),
        (
            format!("From: <{JEAN}>\r\nSender: <{PIERRE}>\r\n"),
            "is not an address of",
        ),
        (
            format!("From: <{JEAN}>\r\nSender: <{JEAN}>\r\nSender: <{JEAN}>\r\n"),
            "at most one Sender",
        ),
    ] {
        let r = submit(
            &instance,
            &server,
            JEAN,
            PATIENT,
            &format!("{headers}Subject: s\r\n\r\nx\r\n"),
        )
        .await;
        assert_eq!(r.code, 550, "{headers}: {r:?}");
        assert!(r.text().contains(reason), "{headers}: {r:?}");
    }
    let r = submit(
        &instance,
        &server,
        JEAN,
        PATIENT,
        &format!("From: <{JEAN}>\r\nSender: <{JEAN}>\r\nSubject: s\r\n\r\nx\r\n"),
    )
    .await;
    assert_eq!(r.code, 250, "{r:?}");
    let store = open_store(&instance).await;
    assert_eq!(inbox(&store, PATIENT).await.len(), 1);
}

/// A hospital system with a mapped certificate writes for the professionals
/// it holds a delegation for; the patient sees both. Its bounces open nothing.
async fn hospital_system_writes_for_a_professional(db: Db) {
    let (instance, server) = setup(db).await;
    let r = mx(
        &instance,
        &server,
        "client",
        DPI,
        PATIENT,
        &format!("From: Dr Jean Dupont <{JEAN}>\r\nSubject: Compte rendu\r\n\r\nx\r\n"),
    )
    .await;
    assert_eq!(r.code, 250, "{r:?}");
    // Not for Pierre: no delegation.
    let r = mx(
        &instance,
        &server,
        "client",
        DPI,
        PATIENT,
        &format!("From: Dr Pierre Martin <{PIERRE}>\r\nSubject: Compte rendu\r\n\r\nx\r\n"),
    )
    .await;
    assert_eq!(r.code, 550, "{r:?}");
    assert!(
        r.text()
            .contains(&format!("mapped to {DPI}, which may not send as {PIERRE}")),
        "{r:?}"
    );
    // Postfix's own bounce (null sender): delivered, never a thread.
    let bounce = "From: MAILER-DAEMON@dpi.hopital.mes.test (Mail Delivery System)\r\n\
         Subject: Undelivered Mail Returned to Sender\r\nMIME-Version: 1.0\r\n\
         Content-Type: multipart/report; report-type=delivery-status; boundary=\"r\"\r\n\r\n\
         --r\r\nContent-Type: text/plain\r\n\r\nI'm sorry.\r\n--r\r\n\
         Content-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; dpi.hopital.mes.test\r\n\r\n\
         Final-Recipient: rfc822; x@y.test\r\nAction: failed\r\nStatus: 5.0.0\r\n\r\n--r--\r\n";
    let r = mx(&instance, &server, "client", "", PATIENT, bounce).await;
    assert_eq!(r.code, 250, "{r:?}");
    let token = api_login(&server, &instance.cert("ca.pem"), PATIENT, PATIENT_PW);
    let list = threads(&server, &instance, &token);
    assert_eq!(list.len(), 1, "{list:?}");
    assert_eq!(list[0]["correspondent"]["address"], JEAN);
    assert_eq!(list[0]["correspondent"]["name"], "Dr Jean Dupont");
    assert_eq!(list[0]["correspondent"]["via"], "DPI Hôpital A");
    let log = server.log();
    assert!(
        log.contains(&format!("proof=client certificate mapped to {DPI}")),
        "{log}"
    );
}

/// A subject whose decoded text holds CRLF CRLF: stored without it, and the
/// patient's reply carries exactly one Subject and no extra header or part.
async fn header_injection_through_a_subject(db: Db) {
    let (instance, server) = setup(db).await;
    // "Bilan\r\nBcc: victim@x.test\r\n\r\nforged"
    let encoded = "=?utf-8?B?QmlsYW4NCkJjYzogdmljdGltQHgudGVzdA0KDQpmb3JnZWQ=?=";
    let r = submit(
        &instance,
        &server,
        JEAN,
        PATIENT,
        &format!(
            "From: <{JEAN}>\r\nSubject: {encoded}\r\nMessage-ID: <inj@hopital-a.mes.test>\r\n\r\nx\r\n"
        ),
    )
    .await;
    assert_eq!(r.code, 250, "{r:?}");
    let ca = instance.cert("ca.pem");
    let token = api_login(&server, &ca, PATIENT, PATIENT_PW);
    let list = threads(&server, &instance, &token);
    assert_eq!(list[0]["subject"], "Bilan Bcc: victim@x.test forged");
    let id = list[0]["id"].as_i64().unwrap();
    let (status, body) = api(
        &server,
        &ca,
        "POST",
        &format!("/api/v1/threads/{id}/reply"),
        Some(&token),
        Some(&json!({"text": "Merci"}).to_string()),
    );
    assert_eq!(status, 201, "{body}");
    let store = open_store(&instance).await;
    let end = Instant::now() + Duration::from_secs(10);
    let reply = loop {
        if let Some(m) = inbox(&store, JEAN).await.first() {
            break m.data.clone();
        }
        assert!(Instant::now() < end, "the reply never arrived");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let parsed = mail_parser::MessageParser::default().parse(&reply).unwrap();
    assert_eq!(parsed.header_values("Subject").count(), 1);
    assert_eq!(parsed.header_values("Bcc").count(), 0);
    assert_eq!(
        parsed.subject(),
        Some("Re: Bilan Bcc: victim@x.test forged")
    );
    assert_eq!(parsed.parts.len(), 1, "one text part only");
    assert_eq!(parsed.body_text(0).as_deref().map(str::trim), Some("Merci"));
}

both_backends!(
    forged_from_on_mx_is_refused,
    only_the_correspondent_ends_a_thread,
    submission_headers,
    hospital_system_writes_for_a_professional,
    header_injection_through_a_subject,
);
