//! COMPRESS=DEFLATE (RFC 4978) and UTF8=ACCEPT (RFC 6855) as the session sees
//! them: the compression itself is the listener's (`compress.rs`), the session
//! only says when it starts and hands back the input it did not read.

use std::sync::Arc;

use super::fake::{ADDRESS, Fake, INBOX, PASSWORD, UIDVALIDITY};
use super::{Action, config, logged_in, open, send, tls};

#[tokio::test]
async fn compress_once_after_login() {
    let fake = Arc::new(Fake::new());
    let mut s = open(fake.clone(), config(), tls()).await;
    let (_, out) = send(&mut s, "c0 COMPRESS DEFLATE\r\n").await;
    assert_eq!(out, "c0 BAD Log in first\r\n");
    let (_, out) = send(&mut s, &format!("l LOGIN {ADDRESS} {PASSWORD}\r\n")).await;
    assert!(
        out.contains(" COMPRESS=DEFLATE ") && out.contains(" UTF8=ACCEPT "),
        "{out}"
    );
    // The OK goes out uncompressed; what the client sent after the command
    // is compressed, so the session hands it back unread.
    let action = s.feed(b"c1 COMPRESS DEFLATE\r\n\x01\x02c2 NOOP\r\n").await;
    assert_eq!(action, Action::Compress);
    assert_eq!(s.take_output(), b"c1 OK DEFLATE active\r\n");
    assert_eq!(s.take_unread(), b"\x01\x02c2 NOOP\r\n");
    assert!(s.take_unread().is_empty());
    // The listener inflates and feeds again: the session goes on.
    let (action, out) = send(&mut s, "c3 NOOP\r\n").await;
    assert_eq!(
        (action, out.as_str()),
        (Action::Continue, "c3 OK NOOP completed\r\n")
    );
    let (action, out) = send(&mut s, "c4 COMPRESS DEFLATE\r\n").await;
    assert_eq!(action, Action::Continue);
    assert_eq!(
        out,
        "c4 NO [COMPRESSIONACTIVE] DEFLATE is already active\r\n"
    );
    let (_, out) = send(&mut s, "c5 COMPRESS GZIP\r\n").await;
    assert_eq!(out, "c5 BAD Syntax error\r\n");
}

#[tokio::test]
async fn utf8_accept_switches_names_and_allows_append_utf8() {
    let fake = Arc::new(Fake::new());
    let mut s = logged_in(&fake).await;
    // Before ENABLE: modified UTF-7 only, UTF-8 names and APPEND UTF8 refused.
    let (_, out) = send(&mut s, "u1 CREATE \"Résultats/Été\"\r\n").await;
    assert_eq!(out, "u1 BAD invalid modified UTF-7 mailbox name\r\n");
    for name in ["R&AOk-sultats", "R&AOk-sultats/&AMk-t&AOk-"] {
        let (_, out) = send(&mut s, &format!("u2 CREATE {name}\r\n")).await;
        assert_eq!(out, "u2 OK CREATE completed\r\n");
    }
    let (_, out) = send(&mut s, "u3 LIST \"\" R*\r\n").await;
    assert_eq!(
        out,
        "* LIST (\\HasChildren) \"/\" R&AOk-sultats\r\n\
         * LIST (\\HasNoChildren) \"/\" R&AOk-sultats/&AMk-t&AOk-\r\n\
         u3 OK LIST completed\r\n"
    );
    let message =
        "Subject: Compte rendu d'échographie\r\nFrom: Zoé <zoé@hôpital.test>\r\n\r\nCorps\r\n";
    let append = |tag: &str| {
        format!(
            "{tag} APPEND INBOX (\\Seen) UTF8 (~{{{}+}}\r\n{message})\r\n",
            message.len()
        )
    };
    let (_, out) = send(&mut s, &append("u4")).await;
    assert_eq!(
        out,
        "u4 BAD APPEND with UTF8 needs ENABLE UTF8=ACCEPT first\r\n"
    );
    assert!(fake.appended().is_empty());

    let (_, out) = send(&mut s, "u5 ENABLE UTF8=ACCEPT\r\n").await;
    assert_eq!(out, "* ENABLED UTF8=ACCEPT\r\nu5 OK ENABLE completed\r\n");
    // After: names are UTF-8 both ways, quoted.
    let (_, out) = send(&mut s, "u6 LIST \"\" R*\r\n").await;
    assert_eq!(
        out,
        "* LIST (\\HasChildren) \"/\" \"Résultats\"\r\n\
         * LIST (\\HasNoChildren) \"/\" \"Résultats/Été\"\r\n\
         u6 OK LIST completed\r\n"
    );
    let (_, out) = send(&mut s, "u7 CREATE \"Dossiers/Cœur\"\r\n").await;
    assert_eq!(out, "u7 OK CREATE completed\r\n");
    let (_, out) = send(&mut s, "u8 STATUS \"Dossiers/Cœur\" (MESSAGES)\r\n").await;
    assert_eq!(
        out,
        "* STATUS \"Dossiers/Cœur\" (MESSAGES 0)\r\nu8 OK STATUS completed\r\n"
    );
    let (_, out) = send(&mut s, "u9 EXAMINE \"Résultats/Été\"\r\n").await;
    assert!(
        out.ends_with("u9 OK [READ-ONLY] EXAMINE completed\r\n"),
        "{out}"
    );
    // APPEND's UTF8 item, synchronising and not: the octets are stored as sent.
    let (_, out) = send(&mut s, &append("u10")).await;
    assert_eq!(
        out,
        format!("u10 OK [APPENDUID {UIDVALIDITY} 1] APPEND completed\r\n")
    );
    let sync = format!("u11 APPEND INBOX utf8 (~{{{}}}\r\n", message.len());
    let (_, out) = send(&mut s, &sync).await;
    assert_eq!(out, "+ Ready for literal data\r\n");
    let (_, out) = send(&mut s, &format!("{message})\r\n")).await;
    assert_eq!(
        out,
        format!("u11 OK [APPENDUID {UIDVALIDITY} 2] APPEND completed\r\n")
    );
    let appended = fake.appended();
    assert_eq!(appended.len(), 2);
    assert!(appended.iter().all(|a| a.content == message.as_bytes()));
    assert!(appended.iter().all(|a| a.folder_id == INBOX));
    assert_eq!(appended[0].flags, "\\Seen");
    // A UTF8 item not closed by `)` is a syntax error, and the session goes on.
    let (_, out) = send(&mut s, "u12 APPEND INBOX UTF8 (~{3+}\r\nabc\r\n").await;
    assert_eq!(out, "u12 BAD Syntax error\r\n");
    let (_, out) = send(&mut s, "u13 NOOP\r\n").await;
    assert_eq!(out, "u13 OK NOOP completed\r\n");
}
