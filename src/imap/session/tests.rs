//! The IMAP session driven in process: bytes in, replies out, no sockets, over
//! an in-memory [`Mailstore`] (`tests/fake.rs`) that the tests change between
//! commands as deliveries and other sessions would. `tests/sqlite.rs` drives
//! the same session over the real [`crate::imap::ImapServices`]; the
//! integration tests (`tests/imap.rs`) go through the real binary.

mod append;
mod dovecot;
mod extensions;
mod fake;
mod sort;
mod sqlite;

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::Duration;

use self::fake::{ADDRESS, Fake, INBOX, PASSWORD, UIDVALIDITY, message};
use super::{Action, ImapSession};
use crate::imap::ImapConfig;
use crate::imap::storage::Mailstore;
use crate::tls::TlsInfo;

fn config() -> Arc<ImapConfig> {
    Arc::new(ImapConfig {
        hostname: "mes.test".into(),
        max_message_size: 1024 * 1024,
        max_command_line: 8192,
        login_timeout: Duration::from_secs(60),
        recheck: Duration::from_secs(30),
    })
}

fn tls() -> Option<TlsInfo> {
    Some(TlsInfo {
        version: "TLSv1.3".into(),
        cipher: "TLS13_AES_256_GCM_SHA384".into(),
        peer_subject: None,
        peer_dn: None,
    })
}

/// A session as after the TLS handshake, greeting already read.
async fn open<S: Mailstore>(
    mailstore: Arc<S>,
    config: Arc<ImapConfig>,
    tls: Option<TlsInfo>,
) -> ImapSession<S> {
    let mut s = ImapSession::new(mailstore, config, IpAddr::V4(Ipv4Addr::LOCALHOST), tls);
    s.feed(b"").await;
    let greeting = String::from_utf8(s.take_output()).expect("UTF-8");
    assert!(greeting.starts_with("* OK"), "{greeting}");
    s
}

/// Feeds `input` and returns the action and what the server wrote.
async fn send<S: Mailstore>(s: &mut ImapSession<S>, input: &str) -> (Action, String) {
    let action = s.feed(input.as_bytes()).await;
    let out = String::from_utf8(s.take_output()).expect("UTF-8");
    (action, out)
}

/// A logged-in session over `fake`.
async fn logged_in(fake: &Arc<Fake>) -> ImapSession<Fake> {
    let mut s = open(fake.clone(), config(), tls()).await;
    let (_, out) = send(&mut s, &format!("l LOGIN {ADDRESS} {PASSWORD}\r\n")).await;
    assert!(out.starts_with("l OK [CAPABILITY "), "{out}");
    s
}

/// A logged-in session with INBOX selected, holding three messages: UID 1
/// `\Seen`, UID 2 `$Label`, UID 3 without flags, subjects "one" to "three".
async fn selected() -> (Arc<Fake>, ImapSession<Fake>) {
    let fake = Arc::new(Fake::new());
    fake.deliver(INBOX, "\\Seen", message("one"));
    fake.deliver(INBOX, "$Label", message("two"));
    fake.deliver(INBOX, "", message("three"));
    let mut s = logged_in(&fake).await;
    let (_, out) = send(&mut s, "s SELECT INBOX\r\n").await;
    assert!(
        out.ends_with("s OK [READ-WRITE] SELECT completed\r\n"),
        "{out}"
    );
    (fake, s)
}

#[tokio::test]
async fn login_fails_then_succeeds() {
    let fake = Arc::new(Fake::new());
    let mut s = open(fake.clone(), config(), tls()).await;
    let (_, out) = send(&mut s, "a1 SELECT INBOX\r\n").await;
    assert_eq!(out, "a1 BAD Log in first\r\n");
    let (_, out) = send(&mut s, &format!("a2 LOGIN {ADDRESS} wrong\r\n")).await;
    assert_eq!(
        out,
        "a2 NO [AUTHENTICATIONFAILED] Authentication failed\r\n"
    );
    assert!(!s.is_authenticated());
    let (_, out) = send(&mut s, &format!("a3 LOGIN {ADDRESS} patient\r\n")).await;
    assert_eq!(
        out,
        "a3 NO [NOPERM] Patient accounts use the patient web space, not IMAP\r\n"
    );
    let (action, out) = send(&mut s, &format!("a4 LOGIN {ADDRESS} {PASSWORD}\r\n")).await;
    assert_eq!(action, Action::Continue);
    assert!(
        out.starts_with("a4 OK [CAPABILITY IMAP4REV1 IMAP4rev2 "),
        "{out}"
    );
    assert!(out.ends_with("] Logged in\r\n"), "{out}");
    assert!(
        out.contains(" CONDSTORE ") && !out.contains("AUTH="),
        "{out}"
    );
    assert!(s.is_authenticated());
    let (_, out) = send(&mut s, "a5 LOGIN x y\r\n").await;
    assert_eq!(out, "a5 BAD Already authenticated\r\n");
    assert_eq!(
        fake.calls(),
        [
            format!("login {ADDRESS}"),
            format!("login {ADDRESS}"),
            format!("login {ADDRESS}"),
        ]
    );
}

#[tokio::test]
async fn authenticate_plain_and_throttling() {
    let fake = Arc::new(Fake::new());
    let mut s = open(fake.clone(), config(), tls()).await;
    // \0dr.a@mes.test\0secret
    let (_, out) = send(
        &mut s,
        "a1 AUTHENTICATE PLAIN AGRyLmFAbWVzLnRlc3QAc2VjcmV0\r\n",
    )
    .await;
    assert!(out.starts_with("a1 OK [CAPABILITY "), "{out}");
    assert!(s.is_authenticated());

    let mut s = open(fake, config(), tls()).await;
    let (action, out) = send(&mut s, &format!("a1 LOGIN {ADDRESS} throttle\r\n")).await;
    assert_eq!(
        out,
        "a1 NO [UNAVAILABLE] Too many failed logins, try again later\r\n\
         * BYE Too many failed logins\r\n"
    );
    assert_eq!(action, Action::Close);
}

#[tokio::test]
async fn select_reports_counts_and_uidvalidity() {
    let fake = Arc::new(Fake::new());
    fake.deliver(INBOX, "\\Seen", message("one"));
    fake.deliver(INBOX, "$Label", message("two"));
    fake.deliver(INBOX, "", message("three"));
    let mut s = logged_in(&fake).await;
    let (_, out) = send(&mut s, "a1 SELECT INBOX\r\n").await;
    assert_eq!(
        out,
        format!(
            "* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft $Label)\r\n\
             * 3 EXISTS\r\n\
             * 3 RECENT\r\n\
             * OK [UNSEEN 2] First unseen\r\n\
             * OK [PERMANENTFLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft $Label \\*)] Flags permitted\r\n\
             * OK [UIDVALIDITY {UIDVALIDITY}] UIDs valid\r\n\
             * OK [UIDNEXT 4] Predicted next UID\r\n\
             * OK [HIGHESTMODSEQ 4] Highest\r\n\
             a1 OK [READ-WRITE] SELECT completed\r\n"
        )
    );
    assert_eq!(s.selected_folder(), Some(INBOX));
    // SELECT claimed \Recent: another look sees none, and EXAMINE claims nothing.
    let (_, out) = send(&mut s, "a2 EXAMINE INBOX\r\n").await;
    assert!(
        out.starts_with("* OK [CLOSED] Previous mailbox closed\r\n"),
        "{out}"
    );
    assert!(out.contains("* 0 RECENT\r\n"), "{out}");
    assert!(
        out.contains("* OK [PERMANENTFLAGS ()] Flags permitted\r\n"),
        "{out}"
    );
    assert!(
        out.ends_with("a2 OK [READ-ONLY] EXAMINE completed\r\n"),
        "{out}"
    );
    let (_, out) = send(
        &mut s,
        "a3 STATUS INBOX (MESSAGES UNSEEN UIDNEXT UIDVALIDITY)\r\n",
    )
    .await;
    assert_eq!(
        out,
        format!(
            "* STATUS INBOX (MESSAGES 3 UNSEEN 2 UIDNEXT 4 UIDVALIDITY {UIDVALIDITY})\r\n\
             a3 OK STATUS completed\r\n"
        )
    );
    let (_, out) = send(&mut s, "a4 SELECT Nowhere\r\n").await;
    assert_eq!(
        out,
        "* OK [CLOSED] Previous mailbox closed\r\na4 NO [NONEXISTENT] No such mailbox\r\n"
    );
    assert_eq!(s.selected_folder(), None);
}

#[tokio::test]
async fn fetch_flags_and_store() {
    let (fake, mut s) = selected().await;
    let (_, out) = send(&mut s, "a1 FETCH 1:* (UID FLAGS)\r\n").await;
    assert_eq!(
        out,
        "* 1 FETCH (UID 1 FLAGS (\\Seen \\Recent))\r\n\
         * 2 FETCH (UID 2 FLAGS ($Label \\Recent))\r\n\
         * 3 FETCH (UID 3 FLAGS (\\Recent))\r\n\
         a1 OK FETCH completed\r\n"
    );
    let (_, out) = send(&mut s, "a2 STORE 2 +FLAGS (\\Flagged)\r\n").await;
    assert_eq!(
        out,
        "* 2 FETCH (FLAGS (\\Flagged $Label \\Recent))\r\na2 OK STORE completed\r\n"
    );
    assert_eq!(fake.flags(INBOX, 2).as_deref(), Some("\\Flagged $Label"));
    let (_, out) = send(&mut s, "a3 UID STORE 3 +FLAGS.SILENT (\\Seen)\r\n").await;
    assert_eq!(out, "a3 OK STORE completed\r\n");
    assert_eq!(fake.flags(INBOX, 3).as_deref(), Some("\\Seen"));
    let (_, out) = send(&mut s, "a4 STORE 1 -FLAGS (\\Seen)\r\n").await;
    assert_eq!(
        out,
        "* 1 FETCH (FLAGS (\\Recent))\r\na4 OK STORE completed\r\n"
    );
    // Our own changes are not reported again.
    let (_, out) = send(&mut s, "a5 NOOP\r\n").await;
    assert_eq!(out, "a5 OK NOOP completed\r\n");
    // The thread-ending keyword goes to the mailstore's thread rule.
    let (_, out) = send(&mut s, "a6 UID STORE 2 +FLAGS.SILENT ($MSSanteFin)\r\n").await;
    assert_eq!(
        out,
        "* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft $Label $MSSanteFin)\r\n\
         * OK [PERMANENTFLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft $Label $MSSanteFin \\*)] Flags permitted\r\n\
         a6 OK STORE completed\r\n"
    );
    assert!(
        fake.calls()
            .contains(&format!("end threads {ADDRESS} {INBOX} [2]")),
        "{:?}",
        fake.calls()
    );
    let (_, out) = send(&mut s, "a7 FETCH 9 FLAGS\r\n").await;
    assert_eq!(out, "a7 BAD Invalid message sequence number\r\n");
}

#[tokio::test]
async fn fetch_body_reads_the_content_and_sets_seen() {
    let (fake, mut s) = selected().await;
    let size = message("two").len();
    let (_, out) = send(
        &mut s,
        "a1 FETCH 2 (RFC822.SIZE BODY[HEADER.FIELDS (SUBJECT)])\r\n",
    )
    .await;
    assert_eq!(
        out,
        format!(
            "* 2 FETCH (RFC822.SIZE {size} BODY[HEADER.FIELDS (SUBJECT)] {{16}}\r\n\
             Subject: two\r\n\r\n FLAGS (\\Seen $Label \\Recent))\r\n\
             a1 OK FETCH completed\r\n"
        )
    );
    assert_eq!(fake.flags(INBOX, 2).as_deref(), Some("\\Seen $Label"));
}

#[tokio::test]
async fn uid_search() {
    let (fake, mut s) = selected().await;
    let (_, out) = send(&mut s, "a1 UID SEARCH UNSEEN\r\n").await;
    assert_eq!(out, "* SEARCH 2 3\r\na1 OK SEARCH completed\r\n");
    let (_, out) = send(&mut s, "a2 UID SEARCH KEYWORD $Label\r\n").await;
    assert_eq!(out, "* SEARCH 2\r\na2 OK SEARCH completed\r\n");
    // A header key reads the contents through the mailstore's stream.
    let (_, out) = send(&mut s, "a3 UID SEARCH SUBJECT three\r\n").await;
    assert_eq!(out, "* SEARCH 3\r\na3 OK SEARCH completed\r\n");
    let (_, out) = send(
        &mut s,
        "a4 UID SEARCH OR SUBJECT one BODY nothing-like-it\r\n",
    )
    .await;
    assert_eq!(out, "* SEARCH 1\r\na4 OK SEARCH completed\r\n");
    // UIDs, not sequence numbers, once one is gone.
    fake.set_flags(INBOX, 1, "\\Deleted");
    send(&mut s, "a5 EXPUNGE\r\n").await;
    let (_, out) = send(&mut s, "a6 UID SEARCH ALL\r\n").await;
    assert_eq!(out, "* SEARCH 2 3\r\na6 OK SEARCH completed\r\n");
    let (_, out) = send(&mut s, "a7 SEARCH ALL\r\n").await;
    assert_eq!(out, "* SEARCH 1 2\r\na7 OK SEARCH completed\r\n");
}

#[tokio::test]
async fn noop_and_idle_see_new_messages() {
    let (fake, mut s) = selected().await;
    let (_, out) = send(&mut s, "a1 NOOP\r\n").await;
    assert_eq!(out, "a1 OK NOOP completed\r\n");
    fake.deliver(INBOX, "", message("four"));
    let (_, out) = send(&mut s, "a2 NOOP\r\n").await;
    assert_eq!(out, "* 4 EXISTS\r\n* 4 RECENT\r\na2 OK NOOP completed\r\n");

    let (_, out) = send(&mut s, "a3 IDLE\r\n").await;
    assert_eq!(out, "+ idling\r\n");
    assert!(s.is_idling());
    // What the listener does when the change bus names the folder.
    fake.deliver(INBOX, "", message("five"));
    assert_eq!(s.idle_changes().await, Action::Continue);
    assert_eq!(
        String::from_utf8(s.take_output()).expect("UTF-8"),
        "* 5 EXISTS\r\n* 5 RECENT\r\n"
    );
    // Another session changes flags.
    fake.set_flags(INBOX, 2, "\\Answered");
    s.idle_changes().await;
    assert_eq!(
        String::from_utf8(s.take_output()).expect("UTF-8"),
        "* 2 FETCH (FLAGS (\\Answered \\Recent) UID 2)\r\n"
    );
    // Nothing changed: nothing said.
    s.idle_changes().await;
    assert_eq!(s.take_output(), b"");
    let (_, out) = send(&mut s, "DONE\r\n").await;
    assert_eq!(out, "a3 OK IDLE terminated\r\n");
    assert!(!s.is_idling());
}

#[tokio::test]
async fn expunge_replies() {
    let (fake, mut s) = selected().await;
    let (_, out) = send(&mut s, "a1 STORE 1,3 +FLAGS.SILENT (\\Deleted)\r\n").await;
    assert_eq!(out, "a1 OK STORE completed\r\n");
    // Highest sequence number first, so that each number is still right.
    let (_, out) = send(&mut s, "a2 EXPUNGE\r\n").await;
    assert_eq!(
        out,
        "* 3 EXPUNGE\r\n* 1 EXPUNGE\r\na2 OK EXPUNGE completed\r\n"
    );
    assert_eq!(fake.uids(INBOX), [2]);
    // UID EXPUNGE touches only the UIDs given; with QRESYNC, VANISHED.
    fake.deliver(INBOX, "\\Deleted", message("four"));
    fake.deliver(INBOX, "\\Deleted", message("five"));
    let (_, out) = send(&mut s, "a3 NOOP\r\n").await;
    assert_eq!(out, "* 3 EXISTS\r\n* 3 RECENT\r\na3 OK NOOP completed\r\n");
    // QRESYNC implies CONDSTORE: the first enabling command with a mailbox
    // selected gives its HIGHESTMODSEQ (RFC 7162 §3.1).
    let (_, out) = send(&mut s, "a4 ENABLE QRESYNC\r\n").await;
    assert_eq!(
        out,
        "* ENABLED QRESYNC\r\na4 OK [HIGHESTMODSEQ 8] ENABLE completed\r\n"
    );
    let (_, out) = send(&mut s, "a5 UID EXPUNGE 5\r\n").await;
    assert_eq!(out, "* VANISHED 5\r\na5 OK EXPUNGE completed\r\n");
    assert_eq!(fake.uids(INBOX), [2, 4]);
    let (_, out) = send(&mut s, "a6 EXAMINE INBOX\r\n").await;
    assert!(
        out.ends_with("a6 OK [READ-ONLY] EXAMINE completed\r\n"),
        "{out}"
    );
    let (_, out) = send(&mut s, "a7 EXPUNGE\r\n").await;
    assert_eq!(out, "a7 NO [READ-ONLY] Mailbox is read-only\r\n");
}

#[tokio::test]
async fn append_hands_bytes_to_the_mailstore() {
    let (fake, mut s) = selected().await;
    let body = message("appended");
    let text = String::from_utf8(body.clone()).expect("UTF-8");
    let (_, out) = send(
        &mut s,
        &format!(
            "a1 APPEND INBOX (\\Seen \\Flagged) \"03-Dec-2026 01:00:00 +0000\" {{{}+}}\r\n{text}\r\n",
            body.len()
        ),
    )
    .await;
    // The selected folder hears of its new message before the tagged OK.
    assert_eq!(
        out,
        format!(
            "* 4 EXISTS\r\n* 4 RECENT\r\n\
             a1 OK [APPENDUID {UIDVALIDITY} 4] APPEND completed\r\n"
        )
    );
    let appended = fake.appended();
    assert_eq!(appended.len(), 1);
    assert_eq!(appended[0].account, ADDRESS);
    assert_eq!(appended[0].folder_id, INBOX);
    assert_eq!(appended[0].flags, "\\Flagged \\Seen");
    assert_eq!(appended[0].internal_date, Some(1_796_259_600));
    assert_eq!(appended[0].content, body);
    let (_, out) = send(&mut s, "a2 APPEND Nowhere {3+}\r\nabc\r\n").await;
    assert_eq!(out, "a2 NO [TRYCREATE] No such mailbox\r\n");
    assert_eq!(fake.appended().len(), 1);
}

#[tokio::test]
async fn copy_move_and_mailboxes() {
    let (fake, mut s) = selected().await;
    let (_, out) = send(&mut s, "a1 CREATE Archive\r\n").await;
    assert_eq!(out, "a1 OK CREATE completed\r\n");
    let (_, out) = send(&mut s, "a2 CREATE Archive\r\n").await;
    assert_eq!(out, "a2 NO [ALREADYEXISTS] Mailbox already exists\r\n");
    let (_, out) = send(&mut s, "a3 UID COPY 1:2 Archive\r\n").await;
    assert_eq!(out, "a3 OK [COPYUID 103 1:2 1:2] COPY completed\r\n");
    let (_, out) = send(&mut s, "a4 MOVE 3 Sent\r\n").await;
    assert_eq!(
        out,
        "* OK [COPYUID 102 3 1] Moved\r\n* 3 EXPUNGE\r\na4 OK MOVE completed\r\n"
    );
    assert_eq!(fake.uids(INBOX), [1, 2]);
    let (_, out) = send(&mut s, "a5 LIST \"\" *\r\n").await;
    assert_eq!(
        out,
        "* LIST (\\HasNoChildren) \"/\" Archive\r\n\
         * LIST (\\HasNoChildren) \"/\" INBOX\r\n\
         * LIST (\\HasNoChildren \\Sent) \"/\" Sent\r\n\
         a5 OK LIST completed\r\n"
    );
    let (_, out) = send(&mut s, "a6 RENAME Archive Old\r\n").await;
    assert_eq!(out, "a6 OK RENAME completed\r\n");
    let (_, out) = send(&mut s, "a7 DELETE Old\r\n").await;
    assert_eq!(out, "a7 OK DELETE completed\r\n");
    let (_, out) = send(&mut s, "a8 DELETE INBOX\r\n").await;
    assert_eq!(out, "a8 NO [CANNOT] INBOX cannot be deleted\r\n");
}

#[tokio::test]
async fn a_disabled_account_ends_the_session() {
    let fake = Arc::new(Fake::new());
    let mut config = (*config()).clone();
    config.recheck = Duration::ZERO;
    let mut s = open(fake.clone(), Arc::new(config), tls()).await;
    send(&mut s, &format!("a1 LOGIN {ADDRESS} {PASSWORD}\r\n")).await;
    let (_, out) = send(&mut s, "a2 NOOP\r\n").await;
    assert_eq!(out, "a2 OK NOOP completed\r\n");
    fake.disable();
    let (action, out) = send(&mut s, "a3 NOOP\r\n").await;
    assert_eq!(
        out,
        "* BYE [UNAVAILABLE] Session ended: the account was disabled or its credentials changed\r\n"
    );
    assert_eq!(action, Action::Close);
    assert!(!s.is_authenticated());
}
