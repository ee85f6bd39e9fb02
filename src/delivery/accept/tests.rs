//! The accept path per source, over a real SQLite store: what each source
//! does (trace, threads, documents, reports) and what it must not do.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::{Arc, RwLock};

use base64::Engine;

use super::*;
use crate::identity::DomainKind;
use crate::store::accounts::NewAccount;

const JEAN: &str = "jean@hopital.test";
const PATIENT: &str = "279035121518989@patient.test";
/// A patient whose INS is not the one of the sample documents.
const OTHER: &str = "184127645108946@patient.test";
const OPERATOR: &str = "CN=mx.autre.test,O=Autre";
const MARIE: &str = "marie@autre.test";

struct Fixture {
    _dir: tempfile::TempDir,
    store: Store,
    acceptor: Acceptor,
    tracker: TaskTracker,
    jean: Account,
    patient: Account,
    other: Account,
}

async fn account(store: &Store, address: &str, kind: AccountKind, ins: Option<&str>) -> Account {
    let domain = address.rsplit_once('@').unwrap().1;
    store
        .create_account(&NewAccount {
            address: address.into(),
            domain: domain.into(),
            kind,
            display_name: if kind == AccountKind::Patient {
                "Camille Patient".into()
            } else {
                "Dr Jean Dupont".into()
            },
            profession: (kind == AccountKind::Professional).then(|| "Médecin".into()),
            rpps: None,
            ins: ins.map(str::to_string),
            password_hash: None,
            cert_subject: None,
        })
        .await
        .unwrap()
}

async fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/t.db", dir.path().display());
    let store = Store::open(&url, 2).await.unwrap();
    store
        .add_domain("hopital.test", DomainKind::Professional)
        .await
        .unwrap();
    store
        .add_domain("patient.test", DomainKind::Patient)
        .await
        .unwrap();
    let jean = account(&store, JEAN, AccountKind::Professional, None).await;
    let patient = account(
        &store,
        PATIENT,
        AccountKind::Patient,
        Some("279035121518989"),
    )
    .await;
    let other = account(&store, OTHER, AccountKind::Patient, Some("184127645108946")).await;
    let trust = TrustSpace::from_entries([("autre.test".to_string(), vec![OPERATOR.to_string()])]);
    let tracker = TaskTracker::new();
    let (acceptor, _writer) = Acceptor::start(Services {
        store: store.clone(),
        hostname: "mes.test".into(),
        trust: Arc::new(RwLock::new(Arc::new(trust))),
        delegations: Delegations::new(),
        notifier: None,
        after_commit: tracker.clone(),
        quota: Default::default(),
    });
    Fixture {
        _dir: dir,
        store,
        acceptor,
        tracker,
        jean,
        patient,
        other,
    }
}

impl Fixture {
    async fn inbox(&self, account: &Account) -> i64 {
        self.mailbox(account, "INBOX").await
    }

    async fn mailbox(&self, account: &Account, name: &str) -> i64 {
        self.store
            .mailbox_id(account.id, name)
            .await
            .unwrap()
            .unwrap()
    }

    async fn contents(&self, mailbox_id: i64) -> Vec<String> {
        self.store
            .folder_messages(mailbox_id)
            .await
            .unwrap()
            .into_iter()
            .map(|m| String::from_utf8(m.data).unwrap())
            .collect()
    }

    async fn origins(&self) -> Vec<String> {
        sqlx::query_scalar("SELECT origin FROM messages ORDER BY id")
            .fetch_all(self.store.pool())
            .await
            .unwrap()
    }

    fn local(&self, account: &Account, mailbox_id: i64) -> Recipient {
        Recipient {
            address: account.address.clone(),
            orcpt: None,
            notify: 0,
            target: Target::Local {
                account_id: account.id,
                mailbox_id,
                patient: account.kind == AccountKind::Patient,
            },
        }
    }

    /// Jean's client submits `content` to `recipients`.
    async fn submit(
        &self,
        mail_from: &str,
        recipients: &[Recipient],
        content: &str,
    ) -> Result<Accepted, AcceptError> {
        let source = Source::Submission(smtp(Peer::Account(JEAN), mail_from, recipients));
        self.acceptor
            .accept(source, content.as_bytes().to_vec())
            .await
    }
}

fn smtp<'a>(peer: Peer<'a>, mail_from: &'a str, recipients: &'a [Recipient]) -> Smtp<'a> {
    Smtp {
        peer,
        helo: "client.test",
        peer_ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
        tls: None,
        authenticated: matches!(peer, Peer::Account(_)),
        mail_from,
        sender: None,
        recipients,
        env_id: None,
        ret: None,
    }
}

fn to_patient(from: &str, subject: &str, extra: &str) -> String {
    format!("From: <{from}>\r\nTo: <{PATIENT}>\r\nSubject: {subject}\r\n{extra}\r\nBonjour\r\n")
}

/// A message carrying an ANS XDM sample whose documents are about `PATIENT`.
fn with_package(to: &str, extra: &str) -> String {
    let p = format!(
        "{}/tests/fixtures/corpus/xdm/ans-interop-exemples-xdm/LDL-SES_2022.01/IHE_XDM.ZIP",
        env!("CARGO_MANIFEST_DIR")
    );
    let zip = std::fs::read(&p).unwrap();
    let b64 = base64::engine::general_purpose::STANDARD.encode(zip);
    let body: String = b64
        .as_bytes()
        .chunks(76)
        .map(|c| format!("{}\r\n", String::from_utf8_lossy(c)))
        .collect();
    format!(
        "From: <{JEAN}>\r\nTo: <{to}>\r\nSubject: XDM/1.0/DDM\r\nMessage-ID: <xdm-1@hopital.test>\r\n{extra}\
         MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"sep\"\r\n\r\n\
         --sep\r\nContent-Type: text/plain\r\n\r\nDocument.\r\n\
         --sep\r\nContent-Type: application/zip; name=\"IHE_XDM.ZIP\"\r\n\
         Content-Disposition: attachment; filename=\"IHE_XDM.ZIP\"\r\n\
         Content-Transfer-Encoding: base64\r\n\r\n{body}--sep--\r\n"
    )
}

#[test]
fn the_rules_of_each_source() {
    let r: [Recipient; 0] = [];
    let s = smtp(Peer::Anonymous, "", &r);
    let mx = Source::Mx(s).rules();
    let submission = Source::Submission(s).rules();
    assert_eq!(
        (mx.origin, mx.adds_missing_ids, submission.adds_missing_ids),
        ("mx", false, true)
    );
    for rules in [mx, submission] {
        assert_eq!(rules.trace, TraceRule::Received);
        assert_eq!(rules.threads, ThreadRule::ToPatients);
        assert!(rules.files_documents);
    }
    let append = Source::Append(Append {
        account: JEAN,
        mailbox_id: 1,
        flags: "",
        internal_date: None,
    })
    .rules();
    assert_eq!(
        (
            append.origin,
            append.trace,
            append.threads,
            append.files_documents
        ),
        ("append", TraceRule::None, ThreadRule::Never, false)
    );
    let report = Source::Report(Report {
        kind: ReportKind::Mdn,
        to: JEAN,
    })
    .rules();
    assert_eq!(
        (
            report.origin,
            report.trace,
            report.threads,
            report.files_documents
        ),
        (
            "mdn",
            TraceRule::NullPathWhenLocal,
            ThreadRule::Never,
            false
        )
    );
}

#[tokio::test]
async fn submission_traces_adds_ids_and_opens_the_patients_thread() {
    let f = fixture().await;
    let (inbox, jean_inbox) = (f.inbox(&f.patient).await, f.inbox(&f.jean).await);
    let rcpts = [f.local(&f.patient, inbox), f.local(&f.jean, jean_inbox)];
    let accepted = f
        .submit(JEAN, &rcpts, &to_patient(JEAN, "Vos résultats", ""))
        .await
        .unwrap();
    let stored = &f.contents(inbox).await[0];
    assert!(
        stored.starts_with(
            "Return-Path: <jean@hopital.test>\r\nReceived: from client.test ([127.0.0.1])\r\n\tby mes.test (MES) with ESMTPA id "
        ),
        "{stored}"
    );
    assert!(stored.contains(&format!("Message-ID: <{}@mes.test>\r\n", accepted.id)));
    assert!(stored.contains("\r\nDate: "));
    assert_eq!(accepted.stored.placements.len(), 2);
    let threads = f.store.threads_of(f.patient.id).await.unwrap();
    assert_eq!(threads.len(), 1);
    assert_eq!(threads[0].correspondent, JEAN);
    assert_eq!(threads[0].correspondent_name, "Dr Jean Dupont");
    assert_eq!(
        threads[0].correspondent_profession.as_deref(),
        Some("Médecin")
    );
    assert!(f.store.threads_of(f.jean.id).await.unwrap().is_empty());
    assert_eq!(f.origins().await, ["submission"]);
}

#[tokio::test]
async fn mx_keeps_the_ids_and_names_another_operators_author() {
    let f = fixture().await;
    let inbox = f.inbox(&f.patient).await;
    let rcpts = [f.local(&f.patient, inbox)];
    let source = Source::Mx(smtp(Peer::Certificate(OPERATOR), MARIE, &rcpts));
    let content = format!(
        "From: Dr Marie Curie <{MARIE}>\r\nTo: <{PATIENT}>\r\nSubject: Bonjour\r\nMessage-ID: <m1@autre.test>\r\n\r\nx\r\n"
    );
    f.acceptor
        .accept(source, content.into_bytes())
        .await
        .unwrap();
    let stored = &f.contents(inbox).await[0];
    assert!(stored.contains("with ESMTP id"), "{stored}");
    assert_eq!(stored.matches("Message-ID:").count(), 1);
    assert!(!stored.contains("\r\nDate: "));
    let thread = &f.store.threads_of(f.patient.id).await.unwrap()[0];
    assert_eq!(thread.correspondent, MARIE);
    assert_eq!(thread.correspondent_name, "Dr Marie Curie");
    assert!(thread.correspondent_other_operator);
    assert_eq!(f.origins().await, ["mx"]);
}

#[tokio::test]
async fn an_unproven_author_stores_nothing() {
    let f = fixture().await;
    let inbox = f.inbox(&f.patient).await;
    let rcpts = [f.local(&f.patient, inbox)];
    let err = f
        .submit(JEAN, &rcpts, &to_patient("someone@hopital.test", "x", ""))
        .await
        .unwrap_err();
    assert!(matches!(err, AcceptError::Author(_)), "{err:?}");
    assert!(f.origins().await.is_empty());
    assert!(f.store.threads_of(f.patient.id).await.unwrap().is_empty());
}

#[tokio::test]
async fn a_report_over_smtp_reaches_a_patient_outside_any_thread() {
    let f = fixture().await;
    let inbox = f.inbox(&f.patient).await;
    let rcpts = [f.local(&f.patient, inbox)];
    let source = Source::Mx(smtp(Peer::Certificate(OPERATOR), "", &rcpts));
    let report = "From: MAILER-DAEMON@autre.test\r\nSubject: [FIN]\r\n\
                  Content-Type: multipart/report; report-type=delivery-status; boundary=x\r\n\r\n--x--\r\n";
    f.acceptor
        .accept(source, report.as_bytes().to_vec())
        .await
        .unwrap();
    assert!(f.contents(inbox).await[0].starts_with("Return-Path: <>\r\nReceived: "));
    assert!(f.store.threads_of(f.patient.id).await.unwrap().is_empty());
}

#[tokio::test]
async fn append_stores_the_bytes_as_given_and_nothing_else() {
    let f = fixture().await;
    let archive = f.mailbox(&f.jean, "Archive").await;
    // A package about a patient and a FIN: APPEND files neither documents nor thread events.
    let content = with_package(PATIENT, "X-MSS-MES: FIN\r\n");
    let source = Source::Append(Append {
        account: JEAN,
        mailbox_id: archive,
        flags: "\\Seen",
        internal_date: Some(1_700_000_000),
    });
    let accepted = f
        .acceptor
        .accept(source, content.clone().into_bytes())
        .await
        .unwrap();
    assert_eq!(accepted.stored.placements, [(archive, 1)]);
    let filed = f.store.folder_messages(archive).await.unwrap();
    assert_eq!(filed[0].data, content.as_bytes());
    assert_eq!(filed[0].flags, "\\Seen");
    let date: i64 = sqlx::query_scalar("SELECT received_at FROM messages")
        .fetch_one(f.store.pool())
        .await
        .unwrap();
    assert_eq!(date, 1_700_000_000);
    assert!(f.store.documents_of(f.patient.id).await.unwrap().is_empty());
    let outcomes: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM indexing_outcomes")
        .fetch_one(f.store.pool())
        .await
        .unwrap();
    assert_eq!(outcomes, 0);
    assert_eq!(f.origins().await, ["append"]);
}

#[tokio::test]
async fn a_patient_writes_only_in_an_open_thread_with_a_sent_copy() {
    let f = fixture().await;
    let (inbox, jean_inbox) = (f.inbox(&f.patient).await, f.inbox(&f.jean).await);
    let rcpts = [f.local(&f.patient, inbox)];
    let first = f
        .submit(JEAN, &rcpts, &to_patient(JEAN, "Vos résultats", ""))
        .await
        .unwrap();
    let thread = f.store.threads_of(f.patient.id).await.unwrap().remove(0);
    let reply = format!(
        "From: <{PATIENT}>\r\nTo: <{JEAN}>\r\nSubject: Re: Vos résultats\r\nMessage-ID: <r1.patient@mes.test>\r\n\r\nMerci\r\n"
    );
    let source = Source::Patient(FromPatient {
        patient: &f.patient,
        thread: &thread,
    });
    f.acceptor
        .accept(source, reply.clone().into_bytes())
        .await
        .unwrap();
    let received = &f.contents(jean_inbox).await[0];
    assert!(
        received.starts_with(&format!(
            "Return-Path: <{PATIENT}>\r\nReceived: from patient-space ([127.0.0.1])\r\n\tby mes.test (MES) with HTTPS id "
        )),
        "{received}"
    );
    let sent = f.mailbox(&f.patient, "Sent").await;
    assert_eq!(
        f.store.folder_messages(sent).await.unwrap()[0].flags,
        "\\Seen"
    );
    let messages = f.store.thread_messages(thread.id).await.unwrap();
    assert_eq!(messages.len(), 2);
    assert_eq!(messages[1].direction, "out");
    assert_eq!(
        messages[1].header_message_id.as_deref(),
        Some("r1.patient@mes.test")
    );
    assert_eq!(f.origins().await, ["submission", "patient"]);

    // Once the professional ended it, the patient can no longer write.
    let in_reply_to = format!("In-Reply-To: <{}@mes.test>\r\n", first.id);
    f.submit(JEAN, &rcpts, &to_patient(JEAN, "[FIN]", &in_reply_to))
        .await
        .unwrap();
    let threads = f.store.threads_of(f.patient.id).await.unwrap();
    assert_eq!(threads.len(), 1);
    let ended = &threads[0];
    assert_eq!(ended.status, "ended");
    let source = Source::Patient(FromPatient {
        patient: &f.patient,
        thread: ended,
    });
    let err = f
        .acceptor
        .accept(source, reply.clone().into_bytes())
        .await
        .unwrap_err();
    assert!(
        matches!(err, AcceptError::Thread(threads::Refusal::Ended { .. })),
        "{err:?}"
    );
    // A correspondent that is neither ours nor in the trust space is refused.
    let mut elsewhere = thread.clone();
    elsewhere.correspondent = "x@outside.test".into();
    let source = Source::Patient(FromPatient {
        patient: &f.patient,
        thread: &elsewhere,
    });
    let err = f
        .acceptor
        .accept(source, reply.into_bytes())
        .await
        .unwrap_err();
    assert!(
        matches!(err, AcceptError::Thread(threads::Refusal::NoOpenThread)),
        "{err:?}"
    );
    assert_eq!(f.origins().await.len(), 3);
}

#[tokio::test]
async fn a_report_goes_to_a_local_inbox_or_the_queue() {
    let f = fixture().await;
    let dsn = "From: MAILER-DAEMON@mes.test\r\nSubject: Undelivered\r\n\r\nx\r\n";
    for to in [JEAN, MARIE] {
        let source = Source::Report(Report {
            kind: ReportKind::Dsn,
            to,
        });
        f.acceptor
            .accept(source, dsn.as_bytes().to_vec())
            .await
            .unwrap();
    }
    let local = &f.contents(f.inbox(&f.jean).await).await;
    assert_eq!(local, &[format!("Return-Path: <>\r\n{dsn}")]);
    let queued = f.store.queue_list(true).await.unwrap();
    assert_eq!(queued.len(), 1);
    assert_eq!(queued[0].recipient, MARIE);
    assert_eq!(queued[0].notify, smtp_proto::RCPT_NOTIFY_NEVER as i64);
    let blob: Vec<u8> = sqlx::query_scalar(
        "SELECT b.data FROM messages m JOIN blobs b ON b.hash = m.blob_hash WHERE m.id = $1",
    )
    .bind(queued[0].message_id)
    .fetch_one(f.store.pool())
    .await
    .unwrap();
    assert_eq!(blob, dsn.as_bytes(), "a queued report gets no trace here");
    assert_eq!(f.origins().await, ["dsn", "dsn"]);
}

#[tokio::test]
async fn documents_are_filed_for_their_patient_and_the_sender_told_after_commit() {
    let f = fixture().await;
    let inbox = f.inbox(&f.patient).await;
    let rcpts = [f.local(&f.patient, inbox)];
    let dnt = format!("Disposition-Notification-To: <{JEAN}>\r\n");
    f.submit(JEAN, &rcpts, &with_package(PATIENT, &dnt))
        .await
        .unwrap();
    let documents = f.store.documents_of(f.patient.id).await.unwrap();
    assert!(!documents.is_empty());
    // The MDN is after-commit work on the tracked task set.
    f.tracker.close();
    f.tracker.wait().await;
    let mdns = f.contents(f.inbox(&f.jean).await).await;
    assert_eq!(mdns.len(), 1);
    assert!(mdns[0].starts_with("Return-Path: <>\r\n"));
    assert!(mdns[0].contains("; processed\r\n"), "{}", mdns[0]);
    assert_eq!(f.origins().await, ["submission", "mdn"]);
}

#[tokio::test]
async fn documents_about_another_patient_are_refused_whole_with_an_error_mdn() {
    let f = fixture().await;
    let inbox = f.inbox(&f.other).await;
    let rcpts = [f.local(&f.other, inbox)];
    let dnt = format!("Disposition-Notification-To: <{JEAN}>\r\n");
    let err = f
        .submit(JEAN, &rcpts, &with_package(OTHER, &dnt))
        .await
        .unwrap_err();
    assert!(matches!(err, AcceptError::Documents(_)), "{err:?}");
    assert!(f.contents(inbox).await.is_empty());
    assert!(f.store.threads_of(f.other.id).await.unwrap().is_empty());
    // The error MDN went out before the refusal.
    let mdns = f.contents(f.inbox(&f.jean).await).await;
    assert!(mdns[0].contains("Error: 902"), "{}", mdns[0]);
    assert_eq!(f.origins().await, ["mdn"]);
}

#[tokio::test]
async fn no_mdn_to_a_third_party_nor_without_documents() {
    let f = fixture().await;
    let inbox = f.inbox(&f.patient).await;
    let rcpts = [f.local(&f.patient, inbox)];
    // Disposition-Notification-To other than the envelope sender: no MDN.
    let third = "Disposition-Notification-To: <x@hopital.test>\r\n";
    f.submit(JEAN, &rcpts, &with_package(PATIENT, third))
        .await
        .unwrap();
    // Asked for, but nothing was filed: no MDN either.
    let dnt = format!("Disposition-Notification-To: <{JEAN}>\r\n");
    f.submit(JEAN, &rcpts, &to_patient(JEAN, "Sans pièce jointe", &dnt))
        .await
        .unwrap();
    f.tracker.close();
    f.tracker.wait().await;
    assert!(f.contents(f.inbox(&f.jean).await).await.is_empty());
    assert_eq!(f.origins().await, ["submission", "submission"]);
}

#[tokio::test]
async fn the_quota_is_checked_for_every_source() {
    use crate::delivery::quota::{QuotaRefusal, Resource};
    use crate::store::quota::Limit;
    let f = fixture().await;
    let (inbox, jean_inbox) = (f.inbox(&f.patient).await, f.inbox(&f.jean).await);
    // Jean opens a thread with the patient, then has 1 KiB and 2 messages in all.
    f.submit(
        JEAN,
        &[f.local(&f.patient, inbox)],
        &to_patient(JEAN, "Suivi", ""),
    )
    .await
    .unwrap();
    let thread = f.store.threads_of(f.patient.id).await.unwrap().remove(0);
    f.store
        .set_quota_limits(JEAN, Some(Limit::Max(1)), Some(Limit::Max(2)))
        .await
        .unwrap();
    let full = |resource| QuotaRefusal::Full {
        address: JEAN.into(),
        resource,
    };
    let quota_of = |e: AcceptError| match e {
        AcceptError::Quota(r) => r,
        e => panic!("not a quota refusal: {e:?}"),
    };
    // Larger than the whole quota: for good.
    let big = format!(
        "From: <{JEAN}>\r\nSubject: big\r\n\r\n{}\r\n",
        "x".repeat(1100)
    );
    let rcpts = [f.local(&f.jean, jean_inbox)];
    let refusal = quota_of(f.submit(JEAN, &rcpts, &big).await.unwrap_err());
    assert!(refusal.permanent(), "{refusal}");
    // Small messages until it is full.
    let small = "From: <jean@hopital.test>\r\nSubject: small\r\n\r\nx\r\n";
    f.submit(JEAN, &rcpts, small).await.unwrap();
    f.submit(JEAN, &rcpts, small).await.unwrap();
    let refusal = quota_of(f.submit(JEAN, &rcpts, small).await.unwrap_err());
    assert_eq!(refusal, full(Resource::Message));
    assert!(!refusal.permanent());
    // 1 KiB: the two messages with their trace headers and a third do not fit.
    f.store
        .set_quota_limits(JEAN, None, Some(Limit::Unlimited))
        .await
        .unwrap();
    let medium = format!(
        "From: <{JEAN}>\r\nSubject: m\r\n\r\n{}\r\n",
        "x".repeat(600)
    );
    let refusal = quota_of(f.submit(JEAN, &rcpts, &medium).await.unwrap_err());
    assert_eq!(refusal, full(Resource::Storage));
    assert!(!refusal.permanent());
    f.store
        .set_quota_limits(JEAN, None, Some(Limit::Max(2)))
        .await
        .unwrap();
    // Every other source meets the same rule.
    let append = |mailbox_id| Append {
        account: JEAN,
        mailbox_id,
        flags: "",
        internal_date: None,
    };
    let e = f
        .acceptor
        .accept(Source::Append(append(jean_inbox)), small.into())
        .await
        .unwrap_err();
    assert_eq!(quota_of(e), full(Resource::Message));
    let reply = format!("From: <{PATIENT}>\r\nTo: <{JEAN}>\r\nSubject: Re: Suivi\r\n\r\nMerci\r\n");
    let source = Source::Patient(FromPatient {
        patient: &f.patient,
        thread: &thread,
    });
    let e = f
        .acceptor
        .accept(source, reply.into_bytes())
        .await
        .unwrap_err();
    assert_eq!(quota_of(e).address(), JEAN);
    let source = Source::Report(Report {
        kind: ReportKind::Dsn,
        to: JEAN,
    });
    let e = f.acceptor.accept(source, small.into()).await.unwrap_err();
    assert_eq!(quota_of(e), full(Resource::Message));
    // MULTIAPPEND: each message fits, not both together; nothing is stored.
    f.store
        .set_quota_limits(JEAN, Some(Limit::Unlimited), Some(Limit::Max(3)))
        .await
        .unwrap();
    let archive = f.mailbox(&f.jean, "Archive").await;
    let e = f
        .acceptor
        .accept_all(vec![
            (append(archive), small.into()),
            (append(archive), small.into()),
        ])
        .await
        .unwrap_err();
    assert_eq!(quota_of(e), full(Resource::Message));
    assert!(f.contents(archive).await.is_empty());
    let accepted = f
        .acceptor
        .accept_all(vec![(append(archive), small.into())])
        .await
        .unwrap();
    assert_eq!(accepted[0].stored.placements, [(archive, 1)]);
    let q = f.acceptor.quota(f.jean.id).await.unwrap().unwrap();
    assert_eq!(
        (q.messages_used, q.messages_limit, q.storage_limit_kib),
        (3, Some(3), None)
    );
}
