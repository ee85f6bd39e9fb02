//! Behaviours checked against Dovecot 2.3's answers on the same input (issue
//! 17): keywords announced in FLAGS before use, HIGHESTMODSEQ for the first
//! CONDSTORE enabling command, ESEARCH's MODSEQ, extended LIST and LSUB
//! levels, SENT* dates and address groups in SEARCH, odd mailbox names.

use std::sync::Arc;

use super::fake::{Fake, INBOX, UIDVALIDITY, message};
use super::{logged_in, selected, send};

const SYSTEM: &str = "\\Answered \\Flagged \\Deleted \\Seen \\Draft";

#[tokio::test]
async fn new_keywords_are_announced_before_a_fetch_shows_them() {
    let (fake, mut s) = selected().await;
    // STORE of a new keyword: FLAGS and PERMANENTFLAGS first.
    let (_, out) = send(&mut s, "a1 STORE 3 +FLAGS ($Foo)\r\n").await;
    assert_eq!(
        out,
        format!(
            "* FLAGS ({SYSTEM} $Label $Foo)\r\n\
             * OK [PERMANENTFLAGS ({SYSTEM} $Label $Foo \\*)] Flags permitted\r\n\
             * 3 FETCH (FLAGS ($Foo \\Recent))\r\n\
             a1 OK STORE completed\r\n"
        )
    );
    // A keyword already announced (in any case) is not announced again.
    let (_, out) = send(&mut s, "a2 STORE 1 +FLAGS ($foo)\r\n").await;
    assert!(!out.contains("* FLAGS"), "{out}");
    // Even STORE.SILENT announces it, as Dovecot does.
    let (_, out) = send(&mut s, "a3 STORE 1 +FLAGS.SILENT (Baz)\r\n").await;
    assert_eq!(
        out,
        format!(
            "* FLAGS ({SYSTEM} $Label $Foo Baz)\r\n\
             * OK [PERMANENTFLAGS ({SYSTEM} $Label $Foo Baz \\*)] Flags permitted\r\n\
             a3 OK STORE completed\r\n"
        )
    );
    // Another session's keyword, seen by NOOP.
    fake.set_flags(INBOX, 2, "$Label Qux");
    let (_, out) = send(&mut s, "a4 NOOP\r\n").await;
    assert_eq!(
        out,
        format!(
            "* FLAGS ({SYSTEM} $Label $Foo Baz Qux)\r\n\
             * OK [PERMANENTFLAGS ({SYSTEM} $Label $Foo Baz Qux \\*)] Flags permitted\r\n\
             * 2 FETCH (FLAGS ($Label Qux \\Recent) UID 2)\r\n\
             a4 OK NOOP completed\r\n"
        )
    );
    // ... and by a FETCH before any NOOP.
    fake.set_flags(INBOX, 2, "Zed");
    let (_, out) = send(&mut s, "a5 FETCH 2 FLAGS\r\n").await;
    assert!(
        out.starts_with(&format!("* FLAGS ({SYSTEM} $Label $Foo Baz Qux Zed)\r\n")),
        "{out}"
    );
    assert!(
        out.contains("* 2 FETCH (FLAGS (Zed \\Recent))\r\n"),
        "{out}"
    );
    // A delivery (or APPEND) with a new keyword: FLAGS before EXISTS.
    fake.deliver(INBOX, "$New", message("four"));
    let (_, out) = send(&mut s, "a6 NOOP\r\n").await;
    assert!(
        out.starts_with(&format!(
            "* FLAGS ({SYSTEM} $Label $Foo Baz Qux Zed $New)\r\n\
             * OK [PERMANENTFLAGS ({SYSTEM} $Label $Foo Baz Qux Zed $New \\*)] Flags permitted\r\n\
             * 4 EXISTS\r\n"
        )),
        "{out}"
    );
    // Read-only: the new FLAGS, no permanent ones.
    let (_, out) = send(&mut s, "a7 EXAMINE INBOX\r\n").await;
    assert!(
        out.ends_with("a7 OK [READ-ONLY] EXAMINE completed\r\n"),
        "{out}"
    );
    fake.set_flags(INBOX, 1, "Fresh");
    let (_, out) = send(&mut s, "a8 NOOP\r\n").await;
    assert!(
        out.contains("* OK [PERMANENTFLAGS ()] Flags permitted\r\n"),
        "{out}"
    );
    assert!(out.contains(" Fresh)\r\n"), "{out}");
}

#[tokio::test]
async fn the_first_condstore_enabling_command_reports_highestmodseq() {
    let (_fake, mut s) = selected().await;
    let (_, out) = send(&mut s, "a1 FETCH 1 (MODSEQ)\r\n").await;
    assert_eq!(
        out,
        "* 1 FETCH (MODSEQ (2))\r\na1 OK [HIGHESTMODSEQ 4] FETCH completed\r\n"
    );
    let (_, out) = send(&mut s, "a2 FETCH 1 (MODSEQ)\r\n").await;
    assert_eq!(out, "* 1 FETCH (MODSEQ (2))\r\na2 OK FETCH completed\r\n");

    for (command, done) in [
        (
            "SEARCH MODSEQ 1",
            "* SEARCH 1 2 3 (MODSEQ 4)\r\nb2 OK [HIGHESTMODSEQ 4] SEARCH completed\r\n",
        ),
        (
            "STATUS Sent (HIGHESTMODSEQ)",
            "* STATUS Sent (HIGHESTMODSEQ 1)\r\nb2 OK [HIGHESTMODSEQ 4] STATUS completed\r\n",
        ),
        (
            "ENABLE CONDSTORE",
            "* ENABLED CONDSTORE\r\nb2 OK [HIGHESTMODSEQ 4] ENABLE completed\r\n",
        ),
        (
            "STORE 1 (UNCHANGEDSINCE 9) +FLAGS (\\Flagged)",
            "* 1 FETCH (FLAGS (\\Flagged \\Seen \\Recent) MODSEQ (5))\r\nb2 OK [HIGHESTMODSEQ 5] STORE completed\r\n",
        ),
    ] {
        let (_fake, mut s) = selected().await;
        let (_, out) = send(&mut s, &format!("b2 {command}\r\n")).await;
        assert_eq!(out, done, "{command}");
    }
    // Without a selected mailbox there is no HIGHESTMODSEQ to give.
    let fake = Arc::new(Fake::new());
    let mut s = logged_in(&fake).await;
    let (_, out) = send(&mut s, "c1 STATUS INBOX (HIGHESTMODSEQ)\r\n").await;
    assert_eq!(
        out,
        "* STATUS INBOX (HIGHESTMODSEQ 1)\r\nc1 OK STATUS completed\r\n"
    );
}

#[tokio::test]
async fn esearch_modseq_is_that_of_the_messages_reported() {
    let (fake, mut s) = selected().await;
    // MODSEQ 2, 3, 4 at delivery; message 1 changed since (5).
    fake.set_flags(INBOX, 1, "\\Seen \\Flagged");
    send(&mut s, "a0 NOOP\r\n").await;
    for (options, expected) in [
        ("MIN", "MIN 1 MODSEQ 5"),
        ("MAX", "MAX 3 MODSEQ 4"),
        ("MIN MAX", "MIN 1 MAX 3 MODSEQ 5"),
        ("COUNT", "COUNT 3 MODSEQ 5"),
        ("ALL", "ALL 1:3 MODSEQ 5"),
        ("MAX COUNT", "MAX 3 COUNT 3 MODSEQ 5"),
    ] {
        let (_, out) = send(&mut s, &format!("e SEARCH RETURN ({options}) MODSEQ 1\r\n")).await;
        assert!(
            out.starts_with(&format!("* ESEARCH (TAG \"e\") {expected}\r\n")),
            "{options}: {out}"
        );
    }
    let (_, out) = send(&mut s, "u UID SEARCH RETURN (MIN) UNFLAGGED MODSEQ 1\r\n").await;
    assert!(
        out.starts_with("* ESEARCH (TAG \"u\") UID MIN 2 MODSEQ 3\r\n"),
        "{out}"
    );
    let (_, out) = send(&mut s, "n SEARCH RETURN (MIN) MODSEQ 99\r\n").await;
    assert!(out.starts_with("* ESEARCH (TAG \"n\")\r\n"), "{out}");
}

#[tokio::test]
async fn list_extended_syntax_and_lsub_levels() {
    let fake = Arc::new(Fake::new());
    let mut s = logged_in(&fake).await;
    for c in [
        "CREATE p1",
        "CREATE p1/c1",
        "CREATE p1/c1/g1",
        "SUBSCRIBE p1/c1/g1",
    ] {
        let (_, out) = send(&mut s, &format!("c {c}\r\n")).await;
        assert!(out.starts_with("c OK"), "{c}: {out}");
    }
    let (_, out) = send(&mut s, "a1 LSUB \"\" p1/%\r\n").await;
    assert_eq!(
        out,
        "* LSUB (\\Noselect) \"/\" p1/c1\r\na1 OK LSUB completed\r\n"
    );
    let (_, out) = send(&mut s, "a2 LSUB \"\" *\r\n").await;
    assert_eq!(
        out,
        "* LSUB (\\HasNoChildren \\Sent) \"/\" Sent\r\n\
         * LSUB (\\HasNoChildren) \"/\" p1/c1/g1\r\n\
         a2 OK LSUB completed\r\n"
    );
    let (_, out) = send(&mut s, "a3 LIST \"\" (p1 \"p1/c1\" INBOX)\r\n").await;
    assert_eq!(
        out,
        "* LIST (\\HasNoChildren) \"/\" INBOX\r\n\
         * LIST (\\HasChildren) \"/\" p1\r\n\
         * LIST (\\HasChildren) \"/\" p1/c1\r\n\
         a3 OK LIST completed\r\n"
    );
    let (_, out) = send(&mut s, "a4 LIST (SUBSCRIBED RECURSIVEMATCH) \"\" p%\r\n").await;
    assert_eq!(
        out,
        "* LIST (\\HasChildren) \"/\" p1 (\"CHILDINFO\" (\"SUBSCRIBED\"))\r\n\
         a4 OK LIST completed\r\n"
    );
    // The extended syntax ignores an empty pattern (RFC 5258 §3), as Dovecot.
    let (_, out) = send(&mut s, "a5 LIST (SUBSCRIBED) \"\" \"\"\r\n").await;
    assert_eq!(out, "a5 OK LIST completed\r\n");
    let (_, out) = send(&mut s, "a6 LIST \"\" \"\"\r\n").await;
    assert_eq!(
        out,
        "* LIST (\\Noselect) \"/\" \"\"\r\na6 OK LIST completed\r\n"
    );
    let (_, out) = send(&mut s, "a7 LIST (RECURSIVEMATCH) \"\" %\r\n").await;
    assert_eq!(
        out,
        "a7 BAD RECURSIVEMATCH needs another selection option\r\n"
    );
    // A level whose mailbox was deleted is listed, \Noselect.
    send(&mut s, "a8 DELETE p1\r\n").await;
    let (_, out) = send(&mut s, "a9 LIST \"\" p%\r\n").await;
    assert_eq!(
        out,
        "* LIST (\\Noselect \\HasChildren) \"/\" p1\r\na9 OK LIST completed\r\n"
    );
    let (_, out) = send(&mut s, "b1 LIST \"\" p% RETURN (STATUS (MESSAGES))\r\n").await;
    assert_eq!(
        out,
        "* LIST (\\NonExistent \\HasChildren) \"/\" p1\r\nb1 OK LIST completed\r\n"
    );
    // Options given before login do not reach a later LIST.
    let mut fresh = super::open(fake.clone(), super::config(), super::tls()).await;
    let (_, out) = send(&mut fresh, "c1 LIST (SUBSCRIBED) \"\" *\r\n").await;
    assert_eq!(out, "c1 BAD Log in first\r\n");
    send(
        &mut fresh,
        &format!(
            "c2 LOGIN {} {}\r\n",
            super::fake::ADDRESS,
            super::fake::PASSWORD
        ),
    )
    .await;
    let (_, out) = send(&mut fresh, "c3 LIST \"\" INBOX\r\n").await;
    assert_eq!(
        out,
        "* LIST (\\HasNoChildren) \"/\" INBOX\r\nc3 OK LIST completed\r\n"
    );
}

/// Two messages Dovecot 2.3 was asked about with the same keys.
fn dated(date: &str, to: &str) -> Vec<u8> {
    format!("From: a@b.example\r\nTo: {to}\r\nDate: {date}\r\nSubject: s\r\n\r\nx\r\n").into_bytes()
}

#[tokio::test]
async fn search_sent_dates_and_address_groups() {
    let fake = Arc::new(Fake::new());
    fake.deliver(
        INBOX,
        "",
        dated(
            "Sun, 25 Mar 2007 00:00:00 +0200",
            "groupname: x@y.example, z@w.example;",
        ),
    );
    fake.deliver(
        INBOX,
        "",
        dated("Sat, 24 Mar 2007 23:30:00 -0700", "plain@y.example"),
    );
    let mut s = logged_in(&fake).await;
    send(&mut s, "s SELECT INBOX\r\n").await;
    for (key, hits) in [
        ("SENTON 25-Mar-2007", "1"),
        ("SENTON 24-Mar-2007", "2"),
        ("SENTBEFORE 25-Mar-2007", "2"),
        ("SENTSINCE 25-Mar-2007", "1"),
        ("TO groupname", "1"),
        ("TO \"groupname: <x@y\"", "1"),
        ("TO plain", "2"),
        ("TO \"x@y.example, z\"", ""),
        ("HEADER To ;", "1"),
    ] {
        let (_, out) = send(&mut s, &format!("k SEARCH {key}\r\n")).await;
        let line = if hits.is_empty() {
            "* SEARCH\r\n".to_string()
        } else {
            format!("* SEARCH {hits}\r\n")
        };
        assert_eq!(out, format!("{line}k OK SEARCH completed\r\n"), "{key}");
    }
}

#[tokio::test]
async fn odd_mailbox_names_get_an_answer() {
    let (_fake, mut s) = selected().await;
    // Control characters are refused however they are encoded.
    let (_, out) = send(&mut s, "a1 CREATE &AAA-\r\n").await;
    assert_eq!(out, "a1 BAD invalid modified UTF-7 mailbox name\r\n");
    // `$` in a mailbox name is no saved search result.
    let (_, out) = send(&mut s, "a2 LIST \"\" ($ x)\r\n").await;
    assert_eq!(out, "a2 OK LIST completed\r\n");
    let name = "!#$&-'+,-.0123456789:;<=>?@^_`|}~";
    let (_, out) = send(&mut s, &format!("a3 STATUS {name} (MESSAGES)\r\n")).await;
    assert_eq!(out, "a3 NO [NONEXISTENT] No such mailbox\r\n");
    let (_, out) = send(&mut s, &format!("a4 CREATE {name}\r\n")).await;
    assert_eq!(out, "a4 OK CREATE completed\r\n");
    let (_, out) = send(&mut s, &format!("a5 STATUS {name} (UIDNEXT)\r\n")).await;
    assert_eq!(
        out,
        format!("* STATUS {name} (UIDNEXT 1)\r\na5 OK STATUS completed\r\n")
    );
    let (_, out) = send(&mut s, &format!("a6 SELECT {name}\r\n")).await;
    assert!(
        out.ends_with("a6 OK [READ-WRITE] SELECT completed\r\n"),
        "{out}"
    );
    assert!(out.contains("* 0 EXISTS\r\n"), "another mailbox: {out}");
    assert!(
        !out.contains(&format!("[UIDVALIDITY {UIDVALIDITY}]")),
        "{out}"
    );
}
