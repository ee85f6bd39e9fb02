//! The store's suite, run on SQLite and on PostgreSQL in the same run.

mod common;

use common::Db;
use mes::audit::{self, AuditEntry};
use mes::identity::{AccountKind, DomainKind};
use mes::store::accounts::NewAccount;
use mes::store::entries::{SearchField, StoredNeedle};
use mes::store::messages::{GroupError, NewMessage, NewRecipient};
use mes::store::quota::AccountQuota;
use mes::store::{Store, StoreError};

async fn open(db: Db) -> (Store, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let url = match db {
        Db::Sqlite => format!("sqlite://{}", dir.path().join("mes.db").display()),
        Db::Postgres => common::fresh_pg_database().await,
    };
    (Store::open(&url, 8).await.unwrap(), dir)
}

fn account(address: &str, kind: AccountKind) -> NewAccount {
    NewAccount {
        address: address.into(),
        domain: address.rsplit_once('@').unwrap().1.into(),
        kind,
        display_name: "Name".into(),
        profession: None,
        rpps: None,
        ins: None,
        password_hash: None,
        cert_subject: Some("CN=x".into()),
    }
}

fn message(body: &str, mailbox: i64, rcpt: &str) -> NewMessage {
    use sha2::Digest;
    let data = format!("Subject: {body}\r\n\r\n{body}\r\n").into_bytes();
    NewMessage {
        hash: hex::encode(sha2::Sha256::digest(&data)),
        data,
        mail_from: "a@a.test".into(),
        header_message_id: Some(format!("{body}@a.test")),
        dsn_envid: None,
        dsn_ret: None,
        origin: "test",
        received_at: 1_700_000_000,
        recipients: vec![NewRecipient {
            address: rcpt.into(),
            orcpt: None,
            notify: 0,
            mailbox_id: Some(mailbox),
            remote: false,
            patient_id: None,
        }],
        envelope: None,
        imap_envelope: None,
        bodystructure: None,
        search: Default::default(),
        flags: String::new(),
        thread: None,
        dossier: None,
        agenda: None,
    }
}

/// The domain a.test with jean@a.test, a professional: (account, INBOX id).
async fn jean_with_inbox(store: &Store) -> (mes::store::accounts::Account, i64) {
    store
        .add_domain("a.test", DomainKind::Professional)
        .await
        .unwrap();
    let a = store
        .create_account(&account("jean@a.test", AccountKind::Professional))
        .await
        .unwrap();
    let inbox = store.mailbox_id(a.id, "INBOX").await.unwrap().unwrap();
    (a, inbox)
}

async fn domains_and_accounts(db: Db) {
    let (store, _dir) = open(db).await;
    store
        .add_domain("a.test", DomainKind::Professional)
        .await
        .unwrap();
    store
        .add_domain("p.test", DomainKind::Patient)
        .await
        .unwrap();
    assert!(matches!(
        store.add_domain("a.test", DomainKind::Professional).await,
        Err(StoreError::Conflict(_))
    ));
    assert_eq!(
        store.domain_kind("p.test").await.unwrap(),
        Some(DomainKind::Patient)
    );
    assert_eq!(store.domain_kind("zz.test").await.unwrap(), None);
    assert_eq!(store.list_domains().await.unwrap().len(), 2);

    let a = store
        .create_account(&account("jean@a.test", AccountKind::Professional))
        .await
        .unwrap();
    assert_eq!(a.kind, AccountKind::Professional);
    assert!(matches!(
        store
            .create_account(&account("jean@a.test", AccountKind::Professional))
            .await,
        Err(StoreError::Conflict(_))
    ));
    // A domain we do not host cannot have accounts (foreign key).
    assert!(
        store
            .create_account(&account("x@zz.test", AccountKind::Professional))
            .await
            .is_err()
    );
    for name in ["INBOX", "Sent", "Drafts", "Trash", "Junk", "Archive"] {
        assert!(
            store.mailbox_id(a.id, name).await.unwrap().is_some(),
            "{name}"
        );
    }
    let found = store
        .account_with_inbox("jean@a.test")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found.account.id, a.id);
    assert_eq!(found.inbox, store.mailbox_id(a.id, "INBOX").await.unwrap());
    assert_eq!(found.quota.account_id, a.id);
    assert_eq!(found.quota.storage_used, 0);
    assert!(
        store
            .account_with_inbox("nobody@a.test")
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(
        store.accounts_by_cert_subject("CN=x").await.unwrap().len(),
        1
    );
    store
        .set_password("jean@a.test", "$argon2id$fake", None)
        .await
        .unwrap();
    store.disable_account("jean@a.test").await.unwrap();
    let a = store
        .account_by_address("jean@a.test")
        .await
        .unwrap()
        .unwrap();
    assert!(a.disabled);
    assert_eq!(a.password_hash.as_deref(), Some("$argon2id$fake"));
    assert!(
        store
            .accounts_by_cert_subject("CN=x")
            .await
            .unwrap()
            .is_empty(),
        "disabled accounts are not mapped"
    );
    assert!(matches!(
        store.set_password("nobody@a.test", "x", None).await,
        Err(StoreError::NotFound(_))
    ));
    store.close().await;
}

async fn messages_get_increasing_uids_under_concurrency(db: Db) {
    let (store, _dir) = open(db).await;
    let (_, inbox) = jean_with_inbox(&store).await;
    let (deliverer, writer) = mes::delivery::Deliverer::start(store.clone(), Default::default());
    let mut tasks = Vec::new();
    for i in 0..40 {
        let d = deliverer.clone();
        tasks.push(tokio::spawn(async move {
            d.deliver(message(&format!("m{i}"), inbox, "jean@a.test"))
                .await
        }));
    }
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    drop(deliverer);
    writer.await.unwrap();
    let filed = store.folder_messages(inbox).await.unwrap();
    let uids: Vec<i64> = filed.iter().map(|m| m.uid).collect();
    assert_eq!(uids, (1..=40).collect::<Vec<_>>());
    assert!(filed.iter().all(|m| m.recent && m.flags.is_empty()));
    let row: (i64, i64) =
        sqlx::query_as("SELECT uidnext, highestmodseq FROM mailboxes WHERE id = $1")
            .bind(inbox)
            .fetch_one(store.pool())
            .await
            .unwrap();
    assert_eq!(row, (41, 41));
    // Same content twice is stored once.
    let batch = [
        message("same", inbox, "jean@a.test"),
        message("same", inbox, "jean@a.test"),
    ];
    let refs: Vec<_> = batch.iter().collect();
    let results = store.insert_batch(&refs).await.unwrap();
    assert!(results.iter().all(Result::is_ok));
    let blobs: (i64,) = sqlx::query_as("SELECT COUNT(*) FROM blobs")
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert_eq!(blobs.0, 41);
    store.close().await;
}

async fn one_bad_message_does_not_fail_its_batch(db: Db) {
    let (store, _dir) = open(db).await;
    let (_, inbox) = jean_with_inbox(&store).await;
    let batch = [
        message("ok1", inbox, "jean@a.test"),
        message("bad", 999_999, "jean@a.test"),
        message("ok2", inbox, "jean@a.test"),
    ];
    let refs: Vec<_> = batch.iter().collect();
    let results = store.insert_batch(&refs).await.unwrap();
    assert!(
        results[0].is_ok() && results[1].is_err() && results[2].is_ok(),
        "{results:?}"
    );
    assert_eq!(store.folder_messages(inbox).await.unwrap().len(), 2);
    let n: (i64,) = sqlx::query_as("SELECT COUNT(*) FROM messages")
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert_eq!(n.0, 2, "the failed message left no row behind");
    store.close().await;
}

/// The text SEARCH matches (SUBJECT/FROM/TO/CC/BCC) is written with the
/// message and read back by `entries` (SEARCH), not by `entries_in_range`
/// (FETCH, which has no use for it); a message stored without it reads None.
async fn search_headers_are_written_and_read(db: Db) {
    let (store, _dir) = open(db).await;
    let (_, inbox) = jean_with_inbox(&store).await;
    let mut with = message("with", inbox, "jean@a.test");
    with.search = mes::delivery::prepare::search_headers(
        b"Subject: =?utf-8?q?R=C3=A9sultats?=\r\nTo: a@a.test\r\nTo: G: b@b.test;\r\n\r\n",
    );
    assert_eq!(with.search.subject.as_deref(), Some("\nrésultats"));
    let without = message("without", inbox, "jean@a.test");
    let refs = [&with, &without];
    let results = store.insert_batch(&refs).await.unwrap();
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    let entries = store.entries(inbox, &[]).await.unwrap();
    assert_eq!(entries.len(), 2);
    // Needles: rows whose stored text cannot match are left out by the
    // database; rows without stored text are always kept.
    let uids = |needles: Vec<(SearchField, &'static str)>| {
        let store = store.clone();
        let needles: Vec<StoredNeedle> = needles
            .into_iter()
            .map(|(field, n)| StoredNeedle {
                field,
                needle: n.to_string(),
            })
            .collect();
        async move {
            let found = store.entries(inbox, &needles).await.unwrap();
            found.iter().map(|e| e.uid).collect::<Vec<_>>()
        }
    };
    let (with_uid, without_uid) = (entries[0].uid, entries[1].uid);
    assert_eq!(
        uids(vec![(SearchField::Subject, "sultats")]).await,
        [with_uid, without_uid]
    );
    assert_eq!(
        uids(vec![(SearchField::Subject, "absent")]).await,
        [without_uid]
    );
    assert_eq!(
        uids(vec![(SearchField::Subject, "")]).await,
        [with_uid, without_uid]
    );
    assert_eq!(
        uids(vec![(SearchField::Subject, "a\nb")]).await,
        [without_uid]
    );
    assert_eq!(
        uids(vec![
            (SearchField::To, "b@b.test"),
            (SearchField::Subject, "r")
        ])
        .await,
        [with_uid, without_uid]
    );
    assert_eq!(
        uids(vec![(SearchField::To, "b@b.test"), (SearchField::Cc, "x")]).await,
        [without_uid]
    );
    assert_eq!(entries[0].search, with.search);
    assert_eq!(entries[1].search, Default::default());
    let row: (Option<String>, Option<String>, Option<String>) =
        sqlx::query_as("SELECT search_to, search_cc, search_bcc FROM messages WHERE id = $1")
            .bind(entries[0].message_id)
            .fetch_one(store.pool())
            .await
            .unwrap();
    assert_eq!(row.0, with.search.to);
    assert_eq!(
        row.1.as_deref(),
        Some(""),
        "no Cc: stored as such, not NULL"
    );
    assert_eq!(row.2.as_deref(), Some(""));
    let fetched = store
        .entries_in_range(inbox, 1, 2, true, true)
        .await
        .unwrap();
    assert!(fetched.iter().all(|e| e.search == Default::default()));
    store.close().await;
}

async fn audit_chain_detects_tampering(db: Db) {
    let (store, _dir) = open(db).await;
    for i in 0..5 {
        audit::append(
            &store,
            &AuditEntry::new("operator", "account.create", &format!("u{i}@a.test"), ""),
        )
        .await
        .unwrap();
    }
    assert_eq!(audit::verify_chain(&store).await.unwrap(), None);
    assert_eq!(
        audit::entries_for(&store, "u3@a.test").await.unwrap().len(),
        1
    );
    let tamper = "UPDATE audit_log SET actor = 'someone else' WHERE target = 'u2@a.test'";
    // The application cannot: a trigger refuses updates...
    assert!(sqlx::query(tamper).execute(store.pool()).await.is_err());
    // ...someone with the database owner's rights can, and the chain tells.
    let disable = match db {
        Db::Sqlite => "DROP TRIGGER audit_log_no_update",
        Db::Postgres => "ALTER TABLE audit_log DISABLE TRIGGER audit_log_no_update",
    };
    sqlx::query(disable).execute(store.pool()).await.unwrap();
    sqlx::query(tamper).execute(store.pool()).await.unwrap();
    assert!(audit::verify_chain(&store).await.unwrap().is_some());
    store.close().await;
}

/// The operator's changes end every session of the account; a session has an
/// absolute lifetime besides the idle one.
async fn account_changes_end_sessions(db: Db) {
    let (store, _dir) = open(db).await;
    store
        .add_domain("a.test", DomainKind::Professional)
        .await
        .unwrap();
    let a = store
        .create_account(&account("jean@a.test", AccountKind::Professional))
        .await
        .unwrap();
    let live = |token: &'static str| {
        let store = store.clone();
        async move {
            store
                .session_account(token, 900, 43_200)
                .await
                .unwrap()
                .is_some()
        }
    };
    store.create_session("t1", a.id).await.unwrap();
    store.create_session("t2", a.id).await.unwrap();
    assert!(live("t1").await);
    assert!(
        store.session_account("t1", 900, 0).await.unwrap().is_none(),
        "past the absolute lifetime"
    );
    // The session that changes its own password stays; the others end.
    store
        .set_password("jean@a.test", "$argon2id$fake", Some("t1"))
        .await
        .unwrap();
    assert!(live("t1").await);
    assert!(!live("t2").await);
    store.create_session("t3", a.id).await.unwrap();
    store
        .set_totp_secret("jean@a.test", Some("JBSWY3DPEHPK3PXP"))
        .await
        .unwrap();
    assert!(!live("t1").await && !live("t3").await);
    store.create_session("t4", a.id).await.unwrap();
    store.disable_account("jean@a.test").await.unwrap();
    assert!(!live("t4").await);
    store.close().await;
}

/// Login failures: the count, the lockout, forgiveness and the purge.
async fn login_throttle_rows(db: Db) {
    let (store, _dir) = open(db).await;
    assert!(!store.throttle_failure("k", 3, 300).await.unwrap());
    assert!(!store.throttle_failure("k", 3, 300).await.unwrap());
    assert!(!store.throttle_locked(&["k", "other"]).await.unwrap());
    assert!(store.throttle_failure("k", 3, 300).await.unwrap());
    assert!(store.throttle_locked(&["other", "k"]).await.unwrap());
    assert!(!store.throttle_locked(&["other"]).await.unwrap());
    store.throttle_forget("k").await.unwrap();
    assert!(!store.throttle_locked(&["k"]).await.unwrap());
    // A failure older than the window starts the count again.
    assert!(!store.throttle_failure("old", 2, 300).await.unwrap());
    sqlx::query("UPDATE login_throttle SET last_at = last_at - 1000 WHERE key_hash = 'old'")
        .execute(store.pool())
        .await
        .unwrap();
    assert!(!store.throttle_failure("old", 2, 300).await.unwrap());
    // Rows past the window and not locked are deleted.
    sqlx::query("UPDATE login_throttle SET last_at = last_at - 1000 WHERE key_hash = 'old'")
        .execute(store.pool())
        .await
        .unwrap();
    assert_eq!(store.throttle_purge(300).await.unwrap(), 1);
    store.close().await;
}

/// The break-glass rate limit holds under concurrent openings.
async fn break_glass_limit_is_exact(db: Db) {
    let (store, _dir) = open(db).await;
    store
        .add_domain("a.test", DomainKind::Professional)
        .await
        .unwrap();
    let pro = store
        .create_account(&account("jean@a.test", AccountKind::Professional))
        .await
        .unwrap();
    let patient = store
        .create_account(&account("p@a.test", AccountKind::Patient))
        .await
        .unwrap();
    let t = store.now();
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move {
                store
                    .open_break_glass(pro.id, patient.id, "urgence", t, t + 60, 3)
                    .await
                    .unwrap()
            })
        })
        .collect();
    let mut opened = 0;
    for task in tasks {
        opened += usize::from(task.await.unwrap());
    }
    assert_eq!(opened, 3);
    assert_eq!(
        store
            .break_glass_count_since(pro.id, t - 3600)
            .await
            .unwrap(),
        3
    );
    assert_eq!(
        store
            .open_break_glass_reason(pro.id, patient.id)
            .await
            .unwrap()
            .as_deref(),
        Some("urgence")
    );
    store.close().await;
}

/// A batch is written with one statement per table: every copy, recipient
/// and queue row is there, with the UIDs and MODSEQs one by one would give.
async fn a_batch_files_every_copy(db: Db) {
    let (store, _dir) = open(db).await;
    store
        .add_domain("a.test", DomainKind::Professional)
        .await
        .unwrap();
    let a = store
        .create_account(&account("jean@a.test", AccountKind::Professional))
        .await
        .unwrap();
    let b = store
        .create_account(&account("anne@a.test", AccountKind::Professional))
        .await
        .unwrap();
    let inbox_a = store.mailbox_id(a.id, "INBOX").await.unwrap().unwrap();
    let inbox_b = store.mailbox_id(b.id, "INBOX").await.unwrap().unwrap();
    // One message first, so the batch continues existing counters.
    let first = message("first", inbox_b, "anne@a.test");
    store.insert_batch(&[&first]).await.unwrap()[0]
        .as_ref()
        .unwrap();
    let mut both = message("both", inbox_a, "jean@a.test");
    for (address, mailbox) in [("anne@a.test", inbox_b), ("jean@a.test", inbox_a)] {
        both.recipients.push(NewRecipient {
            address: address.into(),
            orcpt: None,
            notify: 0,
            mailbox_id: Some(mailbox),
            remote: false,
            patient_id: None,
        });
    }
    let mut away = message("away", inbox_a, "jean@a.test");
    away.recipients.push(NewRecipient {
        address: "marie@b.test".into(),
        orcpt: Some("rfc822;marie@b.test".into()),
        notify: 2,
        mailbox_id: None,
        remote: true,
        patient_id: None,
    });
    let only_b = message("only-b", inbox_b, "anne@a.test");
    let batch = [&both, &away, &only_b];
    let results: Vec<_> = store
        .insert_batch(&batch)
        .await
        .unwrap()
        .into_iter()
        .map(Result::unwrap)
        .collect();
    assert_eq!(results[0].placements, vec![(inbox_a, 1), (inbox_b, 2)]);
    assert_eq!(results[1].placements, vec![(inbox_a, 2)]);
    assert_eq!(results[2].placements, vec![(inbox_b, 3)]);
    let ids: Vec<i64> = results.iter().map(|s| s.message_id).collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "{ids:?}");
    let subjects = |filed: Vec<mes::store::messages::FiledMessage>| -> Vec<String> {
        filed
            .iter()
            .map(|m| {
                String::from_utf8_lossy(&m.data)
                    .lines()
                    .next()
                    .unwrap()
                    .to_string()
            })
            .collect()
    };
    assert_eq!(
        subjects(store.folder_messages(inbox_a).await.unwrap()),
        ["Subject: both", "Subject: away"]
    );
    assert_eq!(
        subjects(store.folder_messages(inbox_b).await.unwrap()),
        ["Subject: first", "Subject: both", "Subject: only-b"]
    );
    for (mailbox, uidnext, modseq) in [(inbox_a, 3, 3), (inbox_b, 4, 4)] {
        let row: (i64, i64) =
            sqlx::query_as("SELECT uidnext, highestmodseq FROM mailboxes WHERE id = $1")
                .bind(mailbox)
                .fetch_one(store.pool())
                .await
                .unwrap();
        assert_eq!(row, (uidnext, modseq));
        let modseqs: Vec<(i64,)> = sqlx::query_as(
            "SELECT modseq FROM mailbox_messages WHERE mailbox_id = $1 ORDER BY uid",
        )
        .bind(mailbox)
        .fetch_all(store.pool())
        .await
        .unwrap();
        let expected: Vec<(i64,)> = (2..=modseq).map(|m| (m,)).collect();
        assert_eq!(modseqs, expected, "MODSEQs of the folder's copies");
    }
    assert_eq!(
        store.message_recipients(ids[0]).await.unwrap().len(),
        2,
        "a recipient named twice is kept once"
    );
    assert_eq!(
        store.message_recipients(ids[1]).await.unwrap(),
        vec![
            ("jean@a.test".to_string(), None, 0),
            (
                "marie@b.test".to_string(),
                Some("rfc822;marie@b.test".to_string()),
                2
            ),
        ]
    );
    let queued: Vec<(i64, String, String)> =
        sqlx::query_as("SELECT message_id, recipient, domain FROM queue")
            .fetch_all(store.pool())
            .await
            .unwrap();
    assert_eq!(
        queued,
        vec![(ids[1], "marie@b.test".into(), "b.test".into())]
    );
    store.close().await;
}

/// STATUS counts come from the database in one row: a flag is a whole word of
/// the list in any case, not a substring of a keyword.
async fn folder_counts_are_exact(db: Db) {
    let (store, _dir) = open(db).await;
    let (_, inbox) = jean_with_inbox(&store).await;
    let empty = store.folder_counts(inbox).await.unwrap();
    assert_eq!(
        (empty.messages, empty.unseen, empty.size, empty.deleted),
        (0, 0, 0, 0)
    );
    let flagged = [
        ("seen", "\\Seen"),
        ("shouting", "\\SEEN \\Deleted"),
        ("keyword", "$NotSeen $unseen"),
        ("new", ""),
        ("gone", "\\deleted $x"),
    ];
    let messages: Vec<_> = flagged
        .iter()
        .map(|(body, flags)| {
            let mut m = message(body, inbox, "jean@a.test");
            m.flags = (*flags).to_string();
            m
        })
        .collect();
    let refs: Vec<_> = messages.iter().collect();
    store.insert_batch(&refs).await.unwrap();
    let c = store.folder_counts(inbox).await.unwrap();
    let size = |body: &str| message(body, inbox, "jean@a.test").data.len() as i64;
    assert_eq!(c.messages, 5);
    assert_eq!(c.recent, 5);
    assert_eq!(c.unseen, 3, "keyword, new and gone have no \\Seen");
    assert_eq!(c.deleted, 2);
    assert_eq!(c.size, flagged.iter().map(|(b, _)| size(b)).sum::<i64>());
    assert_eq!(c.deleted_size, size("shouting") + size("gone"));
    store.close().await;
}

both_backends!(
    folder_counts_are_exact,
    a_batch_files_every_copy,
    break_glass_limit_is_exact,
    account_changes_end_sessions,
    login_throttle_rows,
    domains_and_accounts,
    messages_get_increasing_uids_under_concurrency,
    one_bad_message_does_not_fail_its_batch,
    search_headers_are_written_and_read,
    audit_chain_detects_tampering,
);

#[tokio::test]
async fn sqlite_is_durable_wal() {
    let (store, _dir) = open(Db::Sqlite).await;
    let mode: (String,) = sqlx::query_as("PRAGMA journal_mode")
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert_eq!(mode.0.to_lowercase(), "wal");
    let sync: (i64,) = sqlx::query_as("PRAGMA synchronous")
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert_eq!(sync.0, 2, "synchronous=FULL");
}

/// Certificate subjects are stored as canonical keys (the DN rule), matched in
/// any usual form, and rows written as typed before are canonicalised when the
/// store opens.
async fn certificate_subjects_are_canonical(db: Db) {
    let dir = tempfile::tempdir().unwrap();
    let url = match db {
        Db::Sqlite => format!("sqlite://{}", dir.path().join("mes.db").display()),
        Db::Postgres => common::fresh_pg_database().await,
    };
    let store = Store::open(&url, 4).await.unwrap();
    store
        .add_domain("a.test", DomainKind::Professional)
        .await
        .unwrap();
    let mut new = account("dpi@a.test", AccountKind::Application);
    new.cert_subject = Some("C=FR,O=Hopital A,CN=dpi.a.test".into());
    store.create_account(&new).await.unwrap();
    let stored = store
        .account_by_address("dpi@a.test")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        stored.cert_subject.as_deref(),
        Some("C=fr,O=hopital a,CN=dpi.a.test")
    );
    for form in [
        "CN=dpi.a.test, O=Hopital A, C=FR",
        "/C=FR/O=Hopital A/CN=dpi.a.test",
        "C = FR, O = HOPITAL A, CN = dpi.a.test",
    ] {
        assert_eq!(
            store.accounts_by_cert_subject(form).await.unwrap().len(),
            1,
            "{form}"
        );
    }
    for other in [
        "CN=dpi.a.test, O=Hopital A",
        r"CN=dpi.a.test\, O=Hopital A\, C=FR",
        "junk",
    ] {
        assert!(
            store
                .accounts_by_cert_subject(other)
                .await
                .unwrap()
                .is_empty(),
            "{other}"
        );
    }
    assert!(matches!(
        store.set_cert_subject("dpi@a.test", Some("no dn")).await,
        Err(StoreError::InvalidDn(_))
    ));
    // A row written as typed by an older version.
    sqlx::query("UPDATE accounts SET cert_subject = $1 WHERE address = $2")
        .bind("CN=dpi.a.test, O=Hopital A, C=FR")
        .bind("dpi@a.test")
        .execute(store.pool())
        .await
        .unwrap();
    store.close().await;
    let store = Store::open(&url, 4).await.unwrap();
    let stored = store
        .account_by_address("dpi@a.test")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        stored.cert_subject.as_deref(),
        Some("C=fr,O=hopital a,CN=dpi.a.test")
    );
    store.set_cert_subject("dpi@a.test", None).await.unwrap();
    assert!(
        store
            .accounts_by_cert_subject("CN=dpi.a.test, O=Hopital A, C=FR")
            .await
            .unwrap()
            .is_empty()
    );
}

both_backends!(certificate_subjects_are_canonical);

/// The account's counters, checked against a recount of its entries.
async fn usage(store: &Store, account_id: i64) -> (u64, u64) {
    let q = store.quota_of(account_id).await.unwrap().unwrap();
    let counted = (q.storage_used, q.messages_used);
    assert_eq!(
        counted,
        store.recount_usage(account_id).await.unwrap(),
        "counters and entries of account {account_id} disagree"
    );
    counted
}

async fn quota_usage_follows_every_change(db: Db) {
    use mes::store::entries::FlagOp;
    use mes::store::quota::Limit;
    let (store, _dir) = open(db).await;
    store
        .add_domain("a.test", DomainKind::Professional)
        .await
        .unwrap();
    let a = store
        .create_account(&account("jean@a.test", AccountKind::Professional))
        .await
        .unwrap();
    let b = store
        .create_account(&account("anne@a.test", AccountKind::Professional))
        .await
        .unwrap();
    let folder = |account: i64, name: &'static str| {
        let store = store.clone();
        async move { store.mailbox_id(account, name).await.unwrap().unwrap() }
    };
    let (inbox_a, archive_a, trash_a) = (
        folder(a.id, "INBOX").await,
        folder(a.id, "Archive").await,
        folder(a.id, "Trash").await,
    );
    let (inbox_b, sent_b) = (folder(b.id, "INBOX").await, folder(b.id, "Sent").await);
    assert_eq!(usage(&store, a.id).await, (0, 0));
    // A batch: one message to both INBOXes, one to each account.
    let mut both = message("both", inbox_a, "jean@a.test");
    both.recipients[0].mailbox_id = Some(inbox_a);
    both.recipients.push(NewRecipient {
        address: "anne@a.test".into(),
        orcpt: None,
        notify: 0,
        mailbox_id: Some(inbox_b),
        remote: false,
        patient_id: None,
    });
    let to_a = message("to-a", inbox_a, "jean@a.test");
    let to_b = message("to-b", sent_b, "anne@a.test");
    let refs = [&both, &to_a, &to_b];
    for r in store.insert_batch(&refs).await.unwrap() {
        r.unwrap();
    }
    let size = |m: &NewMessage| m.data.len() as u64;
    assert_eq!(usage(&store, a.id).await, (size(&both) + size(&to_a), 2));
    assert_eq!(usage(&store, b.id).await, (size(&both) + size(&to_b), 2));
    // Groups are stored whole or not at all: the one with a missing folder
    // fails (and the batch falls back to group by group), the other counts.
    let good = [
        message("g1", inbox_a, "jean@a.test"),
        message("g2", inbox_a, "jean@a.test"),
    ];
    let bad = [
        message("b1", inbox_a, "jean@a.test"),
        message("b2", 999_999, "jean@a.test"),
    ];
    let results = store.insert_groups(&[&good, &bad]).await.unwrap();
    assert_eq!(results[0].as_ref().unwrap().len(), 2);
    assert!(results[1].is_err(), "{results:?}");
    let expected = size(&both) + size(&to_a) + size(&good[0]) + size(&good[1]);
    assert_eq!(usage(&store, a.id).await, (expected, 4));
    let uids = store.folder_uids(inbox_a, 0).await.unwrap();
    assert_eq!(uids.len(), 4, "nothing of the failed group is filed");
    // COPY adds, MOVE within the account does not, EXPUNGE and DELETE remove.
    store
        .copy_messages(inbox_a, &uids, archive_a)
        .await
        .unwrap();
    assert_eq!(usage(&store, a.id).await, (2 * expected, 8));
    let archived = store.folder_uids(archive_a, 0).await.unwrap();
    store
        .move_messages(archive_a, &archived[..2], trash_a)
        .await
        .unwrap();
    assert_eq!(usage(&store, a.id).await, (2 * expected, 8));
    store
        .store_flags(
            inbox_a,
            &uids[..1],
            FlagOp::Add,
            &["\\Deleted".into()],
            None,
        )
        .await
        .unwrap();
    store.expunge(inbox_a, None).await.unwrap();
    let (bytes, messages) = usage(&store, a.id).await;
    assert_eq!((bytes, messages), (2 * expected - size(&both), 7));
    store.delete_folder(trash_a).await.unwrap();
    assert_eq!(usage(&store, a.id).await.1, 5);
    assert_eq!(usage(&store, b.id).await, (size(&both) + size(&to_b), 2));
    // Limits: own, none, back to the default; the folders' accounts.
    let q = store
        .set_quota_limits("jean@a.test", Some(Limit::Max(512)), Some(Limit::Unlimited))
        .await
        .unwrap();
    assert_eq!(
        (q.storage_limit, q.messages_limit),
        (Limit::Max(512), Limit::Unlimited)
    );
    let q = store
        .set_quota_limits("jean@a.test", Some(Limit::Default), None)
        .await
        .unwrap();
    assert_eq!(
        (q.storage_limit, q.messages_limit),
        (Limit::Default, Limit::Unlimited)
    );
    assert!(matches!(
        store.set_quota_limits("nobody@a.test", None, None).await,
        Err(StoreError::NotFound(_))
    ));
    // The writer's admission, under the write lock: each group is judged
    // with its account's usage plus what the groups before it in the batch
    // took; a refused group writes nothing and does not stop the others.
    let (used_b, count_b) = usage(&store, b.id).await;
    let filed_b = store.folder_uids(inbox_b, 0).await.unwrap().len();
    let first = [message("q1", inbox_b, "anne@a.test")];
    let second = [message("q2", inbox_b, "anne@a.test")];
    let to_a_too = [message("q3", inbox_a, "jean@a.test")];
    let room = used_b + size(&first[0]);
    let rule = |q: &AccountQuota, octets: u64, messages: u64| {
        if q.account_id == b.id && q.storage_used + octets > room {
            Err((q.account_id, q.storage_used, messages))
        } else {
            Ok(())
        }
    };
    let results = store
        .insert_groups_within(&[&first, &second, &to_a_too], &rule)
        .await
        .unwrap();
    assert!(results[0].is_ok(), "{results:?}");
    assert!(
        matches!(results[1], Err(GroupError::Refused((id, used, 1))) if id == b.id && used == room),
        "{results:?}"
    );
    assert!(results[2].is_ok(), "{results:?}");
    assert_eq!(usage(&store, b.id).await, (room, count_b + 1));
    assert_eq!(
        store.folder_uids(inbox_b, 0).await.unwrap().len(),
        filed_b + 1
    );
    store.close().await;
}

/// Migration 0013 counts the mail stored before it.
async fn quota_migration_counts_existing_mail(db: Db) {
    let dir = tempfile::tempdir().unwrap();
    let url = match db {
        Db::Sqlite => format!("sqlite://{}?mode=rwc", dir.path().join("mes.db").display()),
        Db::Postgres => common::fresh_pg_database().await,
    };
    // The schema as it was before 0013, with mail in it.
    let schema = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(match db {
        Db::Sqlite => "schemas/sqlite",
        Db::Postgres => "schemas/postgres",
    });
    let before = dir.path().join("before");
    std::fs::create_dir(&before).unwrap();
    for entry in std::fs::read_dir(&schema).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if name.as_str() < "0013" {
            std::fs::copy(&path, before.join(&name)).unwrap();
        }
    }
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(&url).await.unwrap();
    sqlx::migrate::Migrator::new(before.as_path())
        .await
        .unwrap()
        .run(&pool)
        .await
        .unwrap();
    for sql in [
        "INSERT INTO domains (name, kind, created_at) VALUES ('a.test', 'professional', 0)",
        "INSERT INTO accounts (id, address, domain, kind, created_at) VALUES (1, 'jean@a.test', 'a.test', 'professional', 0)",
        "INSERT INTO accounts (id, address, domain, kind, created_at) VALUES (2, 'anne@a.test', 'a.test', 'professional', 0)",
        "INSERT INTO mailboxes (id, account_id, name, uidvalidity) VALUES (1, 1, 'INBOX', 1)",
        "INSERT INTO mailboxes (id, account_id, name, uidvalidity) VALUES (2, 1, 'Archive', 1)",
        "INSERT INTO mailboxes (id, account_id, name, uidvalidity) VALUES (3, 2, 'INBOX', 1)",
        "INSERT INTO blobs (hash, size, data) VALUES ('h1', 100, 'x')",
        "INSERT INTO blobs (hash, size, data) VALUES ('h2', 3000, 'y')",
        "INSERT INTO messages (id, blob_hash, size, received_at, mail_from, origin) VALUES (1, 'h1', 100, 0, '', 'mx')",
        "INSERT INTO messages (id, blob_hash, size, received_at, mail_from, origin) VALUES (2, 'h2', 3000, 0, '', 'mx')",
        "INSERT INTO mailbox_messages (mailbox_id, uid, message_id, modseq, internal_date) VALUES (1, 1, 1, 1, 0)",
        "INSERT INTO mailbox_messages (mailbox_id, uid, message_id, modseq, internal_date) VALUES (1, 2, 2, 1, 0)",
        "INSERT INTO mailbox_messages (mailbox_id, uid, message_id, modseq, internal_date) VALUES (2, 1, 2, 1, 0)",
    ] {
        sqlx::query(sql).execute(&pool).await.unwrap();
    }
    pool.close().await;
    let store = Store::open(&url, 2).await.unwrap();
    assert_eq!(usage(&store, 1).await, (6100, 3));
    assert_eq!(usage(&store, 2).await, (0, 0));
    store.close().await;
}

/// Concurrent deliveries cannot overshoot a quota: the writers (one on
/// SQLite, four on PostgreSQL) judge it under the write lock or the
/// account's lock, so exactly the room left is filled and the rest refused.
async fn concurrent_deliveries_fill_a_quota_exactly(db: Db) {
    let (store, _dir) = open(db).await;
    let (a, inbox) = jean_with_inbox(&store).await;
    let limits = mes::config::QuotaSettings {
        storage_kib: None,
        messages: Some(7),
    };
    let (deliverer, writer) = mes::delivery::Deliverer::start(store.clone(), limits);
    let mut tasks = Vec::new();
    for i in 0..30 {
        let d = deliverer.clone();
        tasks.push(tokio::spawn(async move {
            d.deliver(message(&format!("m{i}"), inbox, "jean@a.test"))
                .await
        }));
    }
    let (mut stored, mut refused) = (0, 0);
    for t in tasks {
        match t.await.unwrap() {
            Ok(_) => stored += 1,
            Err(mes::delivery::DeliveryError::Quota(refusal)) => {
                assert!(!refusal.permanent(), "{refusal}");
                refused += 1;
            }
            Err(e) => panic!("{e}"),
        }
    }
    drop(deliverer);
    writer.await.unwrap();
    assert_eq!((stored, refused), (7, 23));
    assert_eq!(usage(&store, a.id).await.1, 7);
    assert_eq!(store.folder_uids(inbox, 0).await.unwrap().len(), 7);
    store.close().await;
}

both_backends!(
    quota_usage_follows_every_change,
    quota_migration_counts_existing_mail,
    concurrent_deliveries_fill_a_quota_exactly
);
