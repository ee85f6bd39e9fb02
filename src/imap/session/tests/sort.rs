//! SORT, THREAD, ESORT and CONTEXT=SEARCH in process, over the fake store
//! (which has no stored ENVELOPE: the session computes it from the header).

use std::sync::Arc;

use super::fake::{Fake, INBOX};
use super::{logged_in, send};
use crate::imap::session::ImapSession;
use crate::imap::storage::Mailstore;

fn mail(headers: &str) -> Vec<u8> {
    format!("{headers}\r\n\r\nbody\r\n").into_bytes()
}

/// INBOX with five messages (UIDs 1-5), selected.
async fn mailbox() -> (Arc<Fake>, ImapSession<Fake>) {
    let fake = Arc::new(Fake::new());
    for (flags, headers) in [
        (
            "\\Seen",
            "From: Zoe <a@x>\r\nSubject: Lab results\r\nDate: Mon, 1 Jan 2024 10:00:00 +0000\r\nMessage-ID: <1@x>",
        ),
        (
            "",
            "From: b@x\r\nSubject: Re: lab results\r\nDate: Mon, 1 Jan 2024 09:00:00 -0200\r\nMessage-ID: <2@x>\r\nReferences: <1@x>",
        ),
        (
            "",
            "From: =?UTF-8?Q?=C3=89mile?= <c@x>\r\nSubject: =?UTF-8?Q?=C3=A9t=C3=A9?=\r\nDate: Sun, 31 Dec 2023 10:00:00 +0000\r\nMessage-ID: <3@x>\r\nReferences: <gone@x>",
        ),
        (
            "",
            "From: d@x\r\nSubject: Fwd: Lab results\r\nDate: Tue, 2 Jan 2024 10:00:00 +0000\r\nMessage-ID: <4@x>",
        ),
        (
            "",
            "Subject: [x] Budget\r\nDate: Wed, 3 Jan 2024 10:00:00 +0000\r\nMessage-ID: <5@x>\r\nIn-Reply-To: <gone@x>",
        ),
    ] {
        fake.deliver(INBOX, flags, mail(headers));
    }
    let mut s = logged_in(&fake).await;
    let (_, out) = send(&mut s, "s SELECT INBOX\r\n").await;
    assert!(out.contains("s OK [READ-WRITE]"), "{out}");
    (fake, s)
}

#[tokio::test]
async fn sort_by_each_key() {
    let (_, mut s) = mailbox().await;
    for (criteria, want) in [
        ("(DATE)", "3 1 2 4 5"),
        ("(REVERSE DATE)", "5 4 2 1 3"),
        ("(ARRIVAL)", "1 2 3 4 5"),
        ("(SIZE)", "4 1 5 2 3"),
        // budget, été (with E), lab results ×3 by date.
        ("(SUBJECT DATE)", "5 3 1 2 4"),
        ("(FROM)", "5 1 2 3 4"),
        ("(DISPLAYFROM)", "5 2 4 3 1"),
    ] {
        let (_, out) = send(&mut s, &format!("t SORT {criteria} UTF-8 ALL\r\n")).await;
        assert_eq!(
            out,
            format!("* SORT {want}\r\nt OK SORT completed\r\n"),
            "{criteria}"
        );
    }
    let (_, out) = send(&mut s, "t UID SORT (SUBJECT) US-ASCII UNSEEN\r\n").await;
    assert_eq!(out, "* SORT 5 3 2 4\r\nt OK SORT completed\r\n");
    let (_, out) = send(&mut s, "t SORT (DATE) UTF-8 SUBJECT nothing\r\n").await;
    assert_eq!(out, "* SORT\r\nt OK SORT completed\r\n");
    let (_, out) = send(&mut s, "t SORT (DATE) ISO-8859-1 ALL\r\n").await;
    assert!(out.starts_with("t NO [BADCHARSET]"), "{out}");
}

#[tokio::test]
async fn esort_return_options() {
    let (_, mut s) = mailbox().await;
    let (_, out) = send(
        &mut s,
        "t SORT RETURN (COUNT ALL MAX MIN) (DATE) UTF-8 ALL\r\n",
    )
    .await;
    assert_eq!(
        out,
        "* ESEARCH (TAG \"t\") MIN 3 MAX 5 ALL 3,1:2,4:5 COUNT 5\r\nt OK SORT completed\r\n"
    );
    let (_, out) = send(
        &mut s,
        "t UID SORT RETURN (PARTIAL 2:3) (DATE) UTF-8 ALL\r\n",
    )
    .await;
    assert_eq!(
        out,
        "* ESEARCH (TAG \"t\") UID PARTIAL (2:3 1:2)\r\nt OK SORT completed\r\n"
    );
    let (_, out) = send(&mut s, "t SORT RETURN (SAVE MAX) (DATE) UTF-8 ALL\r\n").await;
    assert_eq!(
        out,
        "* ESEARCH (TAG \"t\") MAX 5\r\nt OK SORT completed\r\n"
    );
    let (_, out) = send(&mut s, "t SEARCH $\r\n").await;
    assert_eq!(out, "* SEARCH 5\r\nt OK SEARCH completed\r\n");
    let (_, out) = send(&mut s, "t SEARCH RETURN (MAX COUNT MIN) ALL\r\n").await;
    assert_eq!(
        out,
        "* ESEARCH (TAG \"t\") MIN 1 MAX 5 COUNT 5\r\nt OK SEARCH completed\r\n"
    );
    let (_, out) = send(&mut s, "t SORT RETURN (FOO) (DATE) UTF-8 ALL\r\n").await;
    assert_eq!(out, "t BAD Unknown RETURN option\r\n");
    let (_, out) = send(&mut s, "t SEARCH RETURN (PARTIAL 0:1) ALL\r\n").await;
    assert_eq!(out, "t BAD PARTIAL range broken\r\n");
}

#[tokio::test]
async fn thread_both_algorithms() {
    let (_, mut s) = mailbox().await;
    let (_, out) = send(&mut s, "t THREAD REFERENCES UTF-8 ALL\r\n").await;
    // 3 and 5 share the missing <gone@x>: a dummy of two children.
    assert_eq!(
        out,
        "* THREAD ((3)(5))(1 (2)(4))\r\nt OK THREAD completed\r\n"
    );
    let (_, out) = send(&mut s, "t UID THREAD ORDEREDSUBJECT UTF-8 ALL\r\n").await;
    assert_eq!(
        out,
        "* THREAD (3)(1 (2)(4))(5)\r\nt OK THREAD completed\r\n"
    );
    let (_, out) = send(&mut s, "t THREAD REFERENCES UTF-8 UNSEEN\r\n").await;
    assert_eq!(
        out,
        "* THREAD ((3)(5))((2)(4))\r\nt OK THREAD completed\r\n"
    );
    let (_, out) = send(&mut s, "t THREAD REFERENCES UTF-8 SUBJECT nothing\r\n").await;
    assert_eq!(out, "* THREAD\r\nt OK THREAD completed\r\n");
    let (_, out) = send(&mut s, "t THREAD REFS UTF-8 ALL\r\n").await;
    assert_eq!(out, "t BAD Unknown thread algorithm\r\n");
}

#[tokio::test]
async fn contexts_follow_changes_until_cancelled() {
    let (fake, mut s) = mailbox().await;
    let (_, out) = send(&mut s, "u1 SEARCH RETURN (UPDATE) UNSEEN\r\n").await;
    assert_eq!(out, "* ESEARCH (TAG \"u1\")\r\nu1 OK SEARCH completed\r\n");
    let (_, out) = send(
        &mut s,
        "u2 UID SORT RETURN (UPDATE COUNT) (DATE) UTF-8 FLAGGED\r\n",
    )
    .await;
    assert_eq!(
        out,
        "* ESEARCH (TAG \"u2\") UID COUNT 0\r\nu2 OK SORT completed\r\n"
    );
    // Another session: 1 unseen, 2 seen and flagged, a new message.
    fake.set_flags(INBOX, 1, "");
    fake.set_flags(INBOX, 2, "\\Seen \\Flagged");
    fake.deliver(INBOX, "", mail("Subject: new"));
    let (_, out) = send(&mut s, "n NOOP\r\n").await;
    assert_eq!(
        out,
        "* 6 EXISTS\r\n* 6 RECENT\r\n* 1 FETCH (FLAGS (\\Recent) UID 1)\r\n\
         * 2 FETCH (FLAGS (\\Flagged \\Seen \\Recent) UID 2)\r\n\
         * ESEARCH (TAG \"u1\") REMOVEFROM (0 2)\r\n\
         * ESEARCH (TAG \"u1\") ADDTO (0 1,6)\r\n\
         * ESEARCH (TAG \"u2\") UID ADDTO (0 2)\r\n\
         n OK NOOP completed\r\n"
    );
    // An expunge: REMOVEFROM first, numbered as before it.
    fake.set_flags(INBOX, 1, "\\Deleted");
    let _ = fake.expunge(INBOX, None).await;
    let (_, out) = send(&mut s, "n NOOP\r\n").await;
    assert_eq!(
        out,
        "* ESEARCH (TAG \"u1\") REMOVEFROM (0 1)\r\n* 1 EXPUNGE\r\nn OK NOOP completed\r\n"
    );
    // Our own STORE updates them too.
    let (_, out) = send(&mut s, "s STORE 2 +FLAGS.SILENT (\\Flagged)\r\n").await;
    assert!(
        out.ends_with("* ESEARCH (TAG \"u2\") UID ADDTO (0 3)\r\ns OK STORE completed\r\n"),
        "{out}"
    );
    let (_, out) = send(&mut s, "c CANCELUPDATE \"u1\" \"u2\"\r\n").await;
    assert_eq!(out, "c OK Updates cancelled\r\n");
    let (_, out) = send(&mut s, "c CANCELUPDATE \"u1\"\r\n").await;
    assert_eq!(out, "c NO Unknown tag\r\n");
    fake.set_flags(INBOX, 4, "\\Flagged");
    let (_, out) = send(&mut s, "n NOOP\r\n").await;
    assert!(out.contains(" FETCH ") && !out.contains("ESEARCH"), "{out}");
    // A search by sequence numbers is answered, its updates refused.
    let (_, out) = send(&mut s, "q SEARCH RETURN (UPDATE ALL) 1:2\r\n").await;
    assert_eq!(
        out,
        "* ESEARCH (TAG \"q\") ALL 1:2\r\n\
         * NO [NOUPDATE \"q\"] Sequence numbers are not kept up to date, use UIDs\r\n\
         q OK SEARCH completed\r\n"
    );
}
