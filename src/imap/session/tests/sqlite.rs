//! The session over the real [`ImapServices`] on a temporary SQLite store:
//! the seam's real side (login through the authenticator, APPEND through the
//! delivery path) answers as the fake does.

use std::sync::Arc;
use std::time::Duration;

use super::{Action, ImapSession, open, send, tls};
use crate::config::QuotaSettings;
use crate::delivery::{Acceptor, Services};
use crate::identity::auth::Authenticator;
use crate::identity::password;
use crate::identity::secret_box::SecretBox;
use crate::identity::throttle::Throttle;
use crate::identity::{AccountKind, DomainKind};
use crate::imap::ImapServices;
use crate::imap::listing::Listings;
use crate::store::Store;
use crate::store::accounts::NewAccount;
use crate::tls::TlsInfo;

const ADDRESS: &str = "alice@hopital.test";
const PASSWORD: &str = "correct horse battery";

/// Services over a fresh store holding one professional account.
async fn services(dir: &tempfile::TempDir) -> Arc<ImapServices> {
    services_with(dir, QuotaSettings::default()).await
}

/// [`services`] with `quota` as the configured default.
async fn services_with(dir: &tempfile::TempDir, quota: QuotaSettings) -> Arc<ImapServices> {
    services_listing(dir, quota, 1024 * 1024).await
}

/// [`services_with`] with listings bounded to `listing_bytes` (0: none), on
/// the store in `dir` (created on first use).
async fn services_listing(
    dir: &tempfile::TempDir,
    quota: QuotaSettings,
    listing_bytes: usize,
) -> Arc<ImapServices> {
    let url = format!("sqlite://{}/t.db", dir.path().display());
    let store = Store::open(&url, 2).await.expect("store");
    if store
        .account_by_address(ADDRESS)
        .await
        .expect("account")
        .is_some()
    {
        return services_on(store, quota, listing_bytes);
    }
    store
        .add_domain("hopital.test", DomainKind::Professional)
        .await
        .expect("domain");
    store
        .create_account(&NewAccount {
            address: ADDRESS.into(),
            domain: "hopital.test".into(),
            kind: AccountKind::Professional,
            display_name: "Alice".into(),
            profession: None,
            rpps: None,
            ins: None,
            password_hash: Some(password::hash(PASSWORD).expect("hash")),
            cert_subject: None,
        })
        .await
        .expect("account");
    services_on(store, quota, listing_bytes)
}

fn services_on(store: Store, quota: QuotaSettings, listing_bytes: usize) -> Arc<ImapServices> {
    let throttle = Arc::new(Throttle::new(store.clone(), 5, 20, Duration::from_secs(60)));
    let (delivery, _writer) = Acceptor::start(Services {
        store: store.clone(),
        hostname: "mes.test".into(),
        trust: Arc::default(),
        delegations: Default::default(),
        notifier: None,
        after_commit: tokio_util::task::TaskTracker::new(),
        quota,
    });
    Arc::new(ImapServices {
        store: store.clone(),
        auth: Authenticator::new(
            store,
            throttle,
            Duration::ZERO,
            Arc::new(SecretBox::new([7; 32])),
        ),
        delivery,
        listings: Listings::new(listing_bytes),
    })
}

/// A session as after the TLS handshake, greeting already read.
async fn session(services: Arc<ImapServices>, tls: Option<TlsInfo>) -> ImapSession<ImapServices> {
    open(services, super::config(), tls).await
}

#[tokio::test]
async fn login_select_logout() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut s = session(services(&dir).await, tls()).await;
    let (_, out) = send(&mut s, &format!("a1 LOGIN {ADDRESS} \"{PASSWORD}\"\r\n")).await;
    assert!(out.starts_with("a1 OK [CAPABILITY "), "{out}");
    assert!(s.is_authenticated());
    let (_, out) = send(&mut s, "a2 SELECT INBOX\r\n").await;
    assert!(out.contains("* 0 EXISTS\r\n"), "{out}");
    assert!(out.contains("a2 OK [READ-WRITE]"), "{out}");
    assert!(s.selected_folder().is_some());
    let (action, out) = send(&mut s, "a3 LOGOUT\r\n").await;
    assert!(out.starts_with("* BYE"), "{out}");
    assert!(out.contains("a3 OK"), "{out}");
    assert!(matches!(action, Action::Close), "{out}");
}

#[tokio::test]
async fn wrong_password_and_states() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut s = session(services(&dir).await, tls()).await;
    let (_, out) = send(&mut s, "a1 SELECT INBOX\r\n").await;
    assert_eq!(out, "a1 BAD Log in first\r\n");
    let (_, out) = send(&mut s, &format!("a2 LOGIN {ADDRESS} wrong\r\n")).await;
    assert_eq!(
        out,
        "a2 NO [AUTHENTICATIONFAILED] Authentication failed\r\n"
    );
    assert!(!s.is_authenticated());
    let (_, out) = send(&mut s, &format!("a3 LOGIN {ADDRESS} \"{PASSWORD}\"\r\n")).await;
    assert!(out.starts_with("a3 OK"), "{out}");
    let (_, out) = send(&mut s, "a4 FETCH 1 FLAGS\r\n").await;
    assert_eq!(out, "a4 BAD Select a mailbox first\r\n");
    let (_, out) = send(&mut s, "a5 LOGIN x y\r\n").await;
    assert_eq!(out, "a5 BAD Already authenticated\r\n");
}

#[tokio::test]
async fn login_refused_before_tls() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut s = session(services(&dir).await, None).await;
    let (_, out) = send(&mut s, "a1 CAPABILITY\r\n").await;
    assert!(
        out.contains(" STARTTLS ") && out.contains(" LOGINDISABLED "),
        "{out}"
    );
    let (_, out) = send(&mut s, &format!("a2 LOGIN {ADDRESS} \"{PASSWORD}\"\r\n")).await;
    assert_eq!(
        out,
        "a2 NO [PRIVACYREQUIRED] LOGIN is disabled before STARTTLS\r\n"
    );
}

#[tokio::test]
async fn append_then_fetch() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut s = session(services(&dir).await, tls()).await;
    send(&mut s, &format!("a1 LOGIN {ADDRESS} \"{PASSWORD}\"\r\n")).await;
    let message = format!(
        "From: {ADDRESS}\r\nTo: {ADDRESS}\r\nSubject: note\r\n\
         Date: Thu, 03 Dec 2026 01:00:00 +0000\r\nMessage-ID: <n1@hopital.test>\r\n\r\nHello\r\n"
    );
    let (_, out) = send(
        &mut s,
        &format!(
            "a2 APPEND INBOX (\\Seen) {{{}+}}\r\n{message}\r\n",
            message.len()
        ),
    )
    .await;
    assert!(out.starts_with("a2 OK [APPENDUID "), "{out}");
    let (_, out) = send(&mut s, "a3 SELECT INBOX\r\n").await;
    assert!(out.contains("* 1 EXISTS\r\n"), "{out}");
    let (_, out) = send(&mut s, "a4 FETCH 1 (FLAGS RFC822.SIZE)\r\n").await;
    assert!(
        out.starts_with(&format!(
            "* 1 FETCH (FLAGS (\\Seen \\Recent) RFC822.SIZE {})\r\n",
            message.len()
        )),
        "{out}"
    );
    assert!(out.ends_with("a4 OK FETCH completed\r\n"), "{out}");
}

#[tokio::test]
async fn multiappend_and_quota_over_the_real_store() {
    let dir = tempfile::tempdir().expect("tempdir");
    // 1 KiB and 3 messages for every account, by default.
    let quota = QuotaSettings {
        storage_kib: Some(1),
        messages: Some(3),
    };
    let services = services_with(&dir, quota).await;
    let store = services.store.clone();
    let mut s = session(services, tls()).await;
    send(&mut s, &format!("a1 LOGIN {ADDRESS} \"{PASSWORD}\"\r\n")).await;
    let (_, out) = send(&mut s, "a2 GETQUOTAROOT INBOX\r\n").await;
    assert_eq!(
        out,
        "* QUOTAROOT INBOX \"\"\r\n* QUOTA \"\" (STORAGE 0 1 MESSAGE 0 3)\r\n\
         a2 OK GETQUOTAROOT completed\r\n"
    );
    let (_, out) = send(
        &mut s,
        "a3 APPEND INBOX (\\Seen) {5+}\r\nfirst {6+}\r\nsecond\r\n",
    )
    .await;
    assert!(out.starts_with("a3 OK [APPENDUID "), "{out}");
    assert!(out.ends_with(" 1:2] APPEND completed\r\n"), "{out}");
    // Two more do not fit (three messages in all): neither is stored.
    let (_, out) = send(&mut s, "a4 APPEND INBOX {1+}\r\na {1+}\r\nb\r\n").await;
    assert_eq!(out, "a4 NO [OVERQUOTA] Quota exceeded (mailbox full)\r\n");
    // CATENATE copies the first message into Drafts: the third and last.
    let (_, out) = send(
        &mut s,
        "a5 APPEND Drafts CATENATE (URL \"/INBOX/;UID=1\" TEXT {1+}\r\n!)\r\n",
    )
    .await;
    assert!(out.starts_with("a5 OK [APPENDUID "), "{out}");
    let (_, out) = send(&mut s, "a6 GETQUOTA \"\"\r\n").await;
    assert_eq!(
        out,
        "* QUOTA \"\" (STORAGE 1 1 MESSAGE 3 3)\r\na6 OK GETQUOTA completed\r\n"
    );
    let account = store.account_by_address(ADDRESS).await.unwrap().unwrap();
    let drafts = store
        .mailbox_id(account.id, "Drafts")
        .await
        .unwrap()
        .unwrap();
    let filed = store.folder_messages(drafts).await.unwrap();
    assert_eq!(filed[0].data, b"first!");
    assert_eq!(store.recount_usage(account.id).await.unwrap(), (17, 3));
    // The operator lifts the message limit for this account.
    store
        .set_quota_limits(ADDRESS, None, Some(crate::store::quota::Limit::Unlimited))
        .await
        .unwrap();
    let (_, out) = send(&mut s, "a7 SELECT INBOX\r\n").await;
    assert!(out.contains("a7 OK"), "{out}");
    let (_, out) = send(&mut s, "a8 COPY 1:2 Drafts\r\n").await;
    assert!(out.starts_with("a8 OK [COPYUID "), "{out}");
    let (_, out) = send(&mut s, "a9 GETQUOTAROOT Drafts\r\n").await;
    assert_eq!(
        out,
        "* QUOTAROOT Drafts \"\"\r\n* QUOTA \"\" (STORAGE 1 1)\r\n\
         a9 OK GETQUOTAROOT completed\r\n"
    );
}

/// SEARCH answered from the folder's listing (memory) says what the rows say,
/// for every key the listing can answer, and sees other sessions' changes.
#[tokio::test]
async fn search_from_the_listing_answers_as_the_rows() {
    let dir = tempfile::tempdir().expect("tempdir");
    let listed = services_listing(&dir, QuotaSettings::default(), 4 * 1024 * 1024).await;
    let rows = services_listing(&dir, QuotaSettings::default(), 0).await;
    let mut a = session(listed.clone(), tls()).await;
    let mut b = session(rows, tls()).await;
    for s in [&mut a, &mut b] {
        let (_, out) = send(s, &format!("a1 LOGIN {ADDRESS} \"{PASSWORD}\"\r\n")).await;
        assert!(out.contains("a1 OK"), "{out}");
    }
    let mut append = String::from("a2 APPEND INBOX");
    for i in 0..150 {
        let subject = match i % 5 {
            0 => format!("Compte rendu {i}"),
            1 => format!("=?utf-8?q?R=C3=A9sultat_{i}?="),
            2 => "Ordonnance".to_string(),
            3 => format!("RE: compte RENDU {i}"),
            _ => String::new(),
        };
        let to = if i % 7 == 0 {
            "Equipe soins: a@hopital.test, b@hopital.test;".to_string()
        } else {
            format!("Dr Martin <martin{}@hopital.test>", i % 3)
        };
        let message = format!(
            "From: Bob <bob{}@clinique.test>\r\nTo: {to}\r\nCc: cc{}@hopital.test\r\n\
             Subject: {subject}\r\nDate: Thu, 03 Dec 2026 01:00:00 +0000\r\n\r\nTexte {i}\r\n",
            i % 4,
            i % 2
        );
        let flags = if i % 3 == 0 { "(\\Seen) " } else { "" };
        append.push_str(&format!(" {flags}{{{}+}}\r\n{message}", message.len()));
    }
    append.push_str("\r\n");
    let (_, out) = send(&mut a, &append).await;
    assert!(out.starts_with("a2 OK [APPENDUID "), "{out}");
    for s in [&mut a, &mut b] {
        let (_, out) = send(s, "a3 SELECT INBOX\r\n").await;
        assert!(out.contains("* 150 EXISTS"), "{out}");
    }
    let searches = [
        "SUBJECT \"rendu 1\"",
        "CHARSET UTF-8 SUBJECT {9+}\r\nrésultat",
        "SUBJECT \"\"",
        "NOT SUBJECT ordonnance",
        "FROM bob2",
        "TO \"equipe soins\"",
        "CC cc1 UNSEEN",
        "OR SUBJECT ordonnance FROM bob3",
        "SEEN SUBJECT compte",
        "UID 10:40 SUBJECT rendu",
        "1:20 NOT FROM bob1",
        "LARGER 150 SUBJECT rendu",
        "RETURN (MIN MAX COUNT) SUBJECT rendu",
    ];
    let compare =
        async |a: &mut ImapSession<ImapServices>, b: &mut ImapSession<ImapServices>, tag: &str| {
            for (i, key) in searches.iter().enumerate() {
                let (_, listed) = send(a, &format!("{tag}{i} UID SEARCH {key}\r\n")).await;
                let (_, read) = send(b, &format!("{tag}{i} UID SEARCH {key}\r\n")).await;
                assert!(listed.contains(&format!("{tag}{i} OK")), "{key}: {listed}");
                assert_eq!(listed, read, "{key}");
            }
        };
    compare(&mut a, &mut b, "s").await;
    assert_eq!(listed.listings.folders_held(), 1, "the listing answered");
    let (_, out) = send(&mut a, "s SEARCH SUBJECT \"rendu 1\"\r\n").await;
    assert!(out.starts_with("* SEARCH 11 14 16 19 101 104 "), "{out}");
    // Changes made by the other session are in the listing's next answer.
    let (_, out) = send(&mut b, "c1 UID STORE 1:30 +FLAGS.SILENT (\\Seen)\r\n").await;
    assert!(out.contains("c1 OK"), "{out}");
    let (_, out) = send(
        &mut b,
        "c2 UID STORE 2 FLAGS.SILENT (\\Deleted)\r\nc3 EXPUNGE\r\n",
    )
    .await;
    assert!(out.contains("c3 OK"), "{out}");
    for s in [&mut a, &mut b] {
        send(s, "c4 NOOP\r\n").await;
    }
    compare(&mut a, &mut b, "t").await;
}

/// A FETCH answered from the listing reads the session's changes in the same
/// round trip as the listing's catch-up: it reports what another session
/// did exactly as a FETCH that reads the rows and then checks the folder.
#[tokio::test]
async fn a_listed_fetch_reports_changes_as_the_rows() {
    let dir = tempfile::tempdir().expect("tempdir");
    let listed = services_listing(&dir, QuotaSettings::default(), 4 * 1024 * 1024).await;
    let rows = services_listing(&dir, QuotaSettings::default(), 0).await;
    let mut a = session(listed.clone(), tls()).await;
    let mut b = session(rows.clone(), tls()).await;
    let mut c = session(rows, tls()).await;
    for s in [&mut a, &mut b, &mut c] {
        let (_, out) = send(s, &format!("a1 LOGIN {ADDRESS} \"{PASSWORD}\"\r\n")).await;
        assert!(out.contains("a1 OK"), "{out}");
    }
    let mut append = String::from("a2 APPEND INBOX");
    for i in 0..150 {
        let message =
            format!("Subject: Compte rendu {i}\r\nFrom: bob@clinique.test\r\n\r\n{i}\r\n");
        append.push_str(&format!(" {{{}+}}\r\n{message}", message.len()));
    }
    let (_, out) = send(&mut b, &format!("{append}\r\n")).await;
    assert!(out.starts_with("a2 OK [APPENDUID "), "{out}");
    // b first: it claims \Recent, so that a and c see the same flags.
    for s in [&mut b, &mut a, &mut c] {
        let (_, out) = send(s, "a3 SELECT INBOX\r\n").await;
        assert!(out.contains("* 150 EXISTS"), "{out}");
    }
    let (_, out) = send(&mut a, "a4 FETCH 1:* (UID FLAGS)\r\n").await;
    assert!(out.contains("a4 OK"), "{out}");
    assert_eq!(listed.listings.folders_held(), 1, "the listing is filled");
    let (_, out) = send(
        &mut b,
        "b1 STORE 5 +FLAGS.SILENT (\\Flagged $Urgent)\r\nb2 STORE 7 +FLAGS.SILENT (\\Deleted)\r\n\
         b3 EXPUNGE\r\nb4 APPEND INBOX {20+}\r\nSubject: nouveau\r\n\r\n\r\n",
    )
    .await;
    assert!(out.contains("b4 OK"), "{out}");
    let (_, from_listing) = send(&mut a, "f1 FETCH 1:8 (UID FLAGS)\r\n").await;
    let (_, from_rows) = send(&mut c, "f1 FETCH 1:8 (UID FLAGS)\r\n").await;
    assert_eq!(from_listing, from_rows);
    assert!(from_listing.contains("* 151 EXISTS"), "{from_listing}");
    assert!(
        from_listing.contains("* 5 FETCH (FLAGS (\\Flagged $Urgent) UID 5)"),
        "{from_listing}"
    );
    assert!(
        !from_listing.contains("EXPUNGE"),
        "no EXPUNGE during a FETCH: {from_listing}"
    );
    let (_, from_listing) = send(&mut a, "n1 NOOP\r\n").await;
    let (_, from_rows) = send(&mut c, "n1 NOOP\r\n").await;
    assert_eq!(from_listing, from_rows);
    assert!(from_listing.contains("* 7 EXPUNGE"), "{from_listing}");
}
