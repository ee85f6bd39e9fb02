//! MULTIAPPEND, CATENATE and QUOTA over the in-memory mailstore: what the
//! session answers and what reaches the mailstore.

use std::sync::Arc;

use super::fake::{Fake, INBOX, UIDVALIDITY, message};
use super::{logged_in, selected, send};

/// Sent's id and UIDVALIDITY in the fake.
const SENT: i64 = 2;
const SENT_UIDVALIDITY: i64 = 102;

#[tokio::test]
async fn multiappend_stores_every_message_or_none() {
    let (fake, mut s) = selected().await;
    let (_, out) = send(
        &mut s,
        "a1 APPEND INBOX (\\Seen) {3+}\r\none \"05-Dec-2026 10:00:00 +0100\" {3+}\r\ntwo\r\n",
    )
    .await;
    assert_eq!(
        out,
        format!(
            "* 5 EXISTS\r\n* 5 RECENT\r\n\
             a1 OK [APPENDUID {UIDVALIDITY} 4:5] APPEND completed\r\n"
        )
    );
    let appended = fake.appended();
    assert_eq!(appended.len(), 2);
    assert_eq!(
        (appended[0].flags.as_str(), appended[0].content.as_slice()),
        ("\\Seen", &b"one"[..])
    );
    assert_eq!(appended[1].flags, "");
    assert_eq!(appended[1].internal_date, Some(1_796_461_200));
    // Synchronising literals: one continuation per message.
    let (_, out) = send(&mut s, "a2 APPEND Sent {5}\r\n").await;
    assert_eq!(out, "+ Ready for literal data\r\n");
    let (_, out) = send(&mut s, "first (\\Draft) {6}\r\n").await;
    assert_eq!(out, "+ Ready for literal data\r\n");
    let (_, out) = send(&mut s, "second\r\n").await;
    assert_eq!(
        out,
        format!("a2 OK [APPENDUID {SENT_UIDVALIDITY} 1:2] APPEND completed\r\n")
    );
    // Seven messages now: room for one more, not two.
    fake.set_quota(None, Some(8));
    let (_, out) = send(&mut s, "a3 APPEND INBOX {1+}\r\na {1+}\r\nb\r\n").await;
    assert_eq!(out, "a3 NO [OVERQUOTA] Quota exceeded (mailbox full)\r\n");
    assert_eq!(fake.appended().len(), 4);
    let (_, out) = send(&mut s, "a4 APPEND INBOX {1+}\r\na\r\n").await;
    assert!(
        out.ends_with("a4 OK [APPENDUID 42 6] APPEND completed\r\n"),
        "{out}"
    );
    let (_, out) = send(&mut s, "a5 APPEND INBOX {1+}\r\nb\r\n").await;
    assert_eq!(out, "a5 NO [OVERQUOTA] Quota exceeded (mailbox full)\r\n");
    // A message larger than the whole quota.
    fake.set_quota(Some(1), None);
    let big = "x".repeat(2048);
    let (_, out) = send(&mut s, &format!("a6 APPEND INBOX {{2048+}}\r\n{big}\r\n")).await;
    assert_eq!(
        out,
        "a6 NO [OVERQUOTA] Quota exceeded (message larger than the quota)\r\n"
    );
    // One bad message fails the command: nothing stored.
    let (_, out) = send(&mut s, "a7 APPEND INBOX {1+}\r\na (\\Bad {1+}\r\nb\r\n").await;
    assert_eq!(out, "a7 BAD Syntax error\r\n");
    assert_eq!(fake.appended().len(), 5);
}

#[tokio::test]
async fn catenate_puts_text_and_urls_together() {
    let (fake, mut s) = selected().await;
    let (_, out) = send(
        &mut s,
        "a1 APPEND Sent (\\Seen) CATENATE (URL \"/INBOX;UIDVALIDITY=42/;UID=1/;SECTION=HEADER\" \
         TEXT {6+}\r\nHello! URL \";UID=2/;SECTION=TEXT\" \
         URL \"imap://dr.a%40mes.test@MES.test/INBOX/;UID=3/;PARTIAL=6.8\")\r\n",
    )
    .await;
    assert_eq!(
        out,
        format!("a1 OK [APPENDUID {SENT_UIDVALIDITY} 1] APPEND completed\r\n")
    );
    let appended = fake.appended();
    assert_eq!(appended.len(), 1);
    assert_eq!(appended[0].folder_id, SENT);
    assert_eq!(appended[0].flags, "\\Seen");
    assert_eq!(
        String::from_utf8_lossy(&appended[0].content),
        "From: b@mes.test\r\nTo: dr.a@mes.test\r\nSubject: one\r\n\r\nHello!Hello\r\nb@mes.te"
    );
    // MULTIAPPEND and CATENATE together.
    let (_, out) = send(
        &mut s,
        "a2 APPEND Sent CATENATE (TEXT {2+}\r\nhi) {3+}\r\nabc\r\n",
    )
    .await;
    assert_eq!(
        out,
        format!("a2 OK [APPENDUID {SENT_UIDVALIDITY} 2:3] APPEND completed\r\n")
    );
    assert_eq!(fake.appended()[1].content, b"hi");
}

#[tokio::test]
async fn catenate_refuses_urls_it_cannot_read() {
    let (fake, mut s) = selected().await;
    for (url, reason) in [
        ("imap://mx.other.test/INBOX/;UID=1", "URL of another server"),
        (
            "imap://bob@mes.test/INBOX/;UID=1",
            "URL of another user's mailbox",
        ),
        ("/INBOX;UIDVALIDITY=41/;UID=1", "UIDVALIDITY changed"),
        ("/INBOX/;UID=99", "No such message"),
        ("/Nowhere/;UID=1", "No such mailbox"),
        ("/INBOX", "URL does not name a message"),
        ("/INBOX/;UID=1/;SECTION=BOGUS", "Invalid section"),
        (
            "/INBOX/;UID=1;URLAUTH=anonymous:internal:00",
            "URLAUTH is not supported",
        ),
    ] {
        let (_, out) = send(
            &mut s,
            &format!("a1 APPEND Sent CATENATE (TEXT {{1+}}\r\nx URL \"{url}\")\r\n"),
        )
        .await;
        assert_eq!(out, format!("a1 NO [BADURL {url}] {reason}\r\n"));
    }
    // A relative URL needs a selected mailbox.
    let mut other = logged_in(&fake).await;
    let (_, out) = send(&mut other, "b1 APPEND Sent CATENATE (URL \";UID=1\")\r\n").await;
    assert_eq!(out, "b1 NO [BADURL ;UID=1] No mailbox selected\r\n");
    // Over APPENDLIMIT (1 MiB here) once put together.
    let big = fake.deliver(INBOX, "", vec![b'x'; 600 * 1024]);
    let (_, out) = send(
        &mut s,
        &format!(
            "a2 APPEND Sent CATENATE (URL \"/INBOX/;UID={big}\" URL \"/INBOX/;UID={big}\")\r\n"
        ),
    )
    .await;
    assert_eq!(out, "a2 NO [TOOBIG] Message too large\r\n");
    assert!(fake.appended().is_empty());
}

#[tokio::test]
async fn quota_roots_and_quotas() {
    let fake = Arc::new(Fake::new());
    for subject in ["one", "two", "three"] {
        fake.deliver(INBOX, "", message(subject));
    }
    let mut s = logged_in(&fake).await;
    let (_, out) = send(&mut s, "c CAPABILITY\r\n").await;
    for cap in [
        " QUOTA ",
        " QUOTA=RES-STORAGE ",
        " QUOTA=RES-MESSAGE",
        " MULTIAPPEND ",
        " CATENATE ",
    ] {
        assert!(out.contains(cap), "{cap} in {out}");
    }
    assert!(!out.contains("QUOTASET"), "{out}");
    // No limit: no quota root.
    let (_, out) = send(&mut s, "a1 GETQUOTAROOT INBOX\r\n").await;
    assert_eq!(out, "* QUOTAROOT INBOX\r\na1 OK GETQUOTAROOT completed\r\n");
    let (_, out) = send(&mut s, "a2 GETQUOTA \"\"\r\n").await;
    assert_eq!(out, "a2 NO [NONEXISTENT] No such quota root\r\n");
    fake.set_quota(Some(10), Some(100));
    let (_, out) = send(&mut s, "a3 GETQUOTAROOT Sent\r\n").await;
    assert_eq!(
        out,
        "* QUOTAROOT Sent \"\"\r\n* QUOTA \"\" (STORAGE 1 10 MESSAGE 3 100)\r\n\
         a3 OK GETQUOTAROOT completed\r\n"
    );
    fake.set_quota(None, Some(100));
    let (_, out) = send(&mut s, "a4 GETQUOTA \"\"\r\n").await;
    assert_eq!(
        out,
        "* QUOTA \"\" (MESSAGE 3 100)\r\na4 OK GETQUOTA completed\r\n"
    );
    let (_, out) = send(&mut s, "a5 GETQUOTA \"User quota\"\r\n").await;
    assert_eq!(out, "a5 NO [NONEXISTENT] No such quota root\r\n");
    let (_, out) = send(&mut s, "a6 SETQUOTA \"\" (STORAGE 512)\r\n").await;
    assert_eq!(out, "a6 NO [NOPERM] Quotas are set by the operator\r\n");
    let (_, out) = send(&mut s, "a7 GETQUOTAROOT Nowhere\r\n").await;
    assert_eq!(out, "a7 NO [NONEXISTENT] No such mailbox\r\n");
}

#[tokio::test]
async fn copy_within_the_quota_only() {
    let (fake, mut s) = selected().await;
    fake.set_quota(None, Some(4));
    let (_, out) = send(&mut s, "a1 COPY 1:2 Sent\r\n").await;
    assert_eq!(out, "a1 NO [OVERQUOTA] Quota exceeded (mailbox full)\r\n");
    assert!(fake.uids(SENT).is_empty());
    let (_, out) = send(&mut s, "a2 COPY 1 Sent\r\n").await;
    assert!(
        out.ends_with("a2 OK [COPYUID 102 1 1] COPY completed\r\n"),
        "{out}"
    );
    // A move leaves the account's usage as it was.
    let (_, out) = send(&mut s, "a3 MOVE 2:3 Sent\r\n").await;
    assert!(out.ends_with("a3 OK MOVE completed\r\n"), "{out}");
    assert_eq!(fake.uids(SENT), [1, 2, 3]);
}
