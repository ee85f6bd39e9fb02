//! IMAP against the real server over TLS: scripted exchanges for every command,
//! concurrent sessions, IDLE, bad input; real clients (imaplib, curl, mbsync).

mod common;

use std::time::Duration;

use common::{Db, Instance, Server, imap_login, imap_tls};

const PW: &str = "correct horse battery staple";
const JEAN: &str = "jean.dupont@hopital-a.mes.test";

async fn setup(db: Db) -> (Instance, Server) {
    let instance = Instance::new(db).await;
    instance.add_user(JEAN, "professional", PW);
    instance.add_user("279035121518989@patient.mes.test", "patient", PW);
    let server = instance.start();
    (instance, server)
}

fn mail(subject: &str, body: &str) -> Vec<u8> {
    format!(
        "From: Marie Curie <marie.curie@hopital-a.mes.test>\r\nTo: Jean Dupont <jean.dupont@hopital-a.mes.test>\r\n\
         Subject: {subject}\r\nDate: Tue, 24 Nov 2026 10:00:00 +0100\r\nMessage-ID: <{subject}@test>\r\n\r\n{body}\r\n"
    )
    .into_bytes()
}

async fn protocol_suite(db: Db) {
    let (instance, server) = setup(db).await;
    let ca = instance.cert("ca.pem");
    let addr = server.addr("imaps");

    // Not authenticated: wrong state and wrong credentials.
    let mut c = imap_tls(addr, &ca).await;
    let caps = c.expect("CAPABILITY", "OK").await;
    assert!(
        caps.untagged[0].contains("AUTH=PLAIN") && caps.untagged[0].contains("SASL-IR"),
        "{caps:?}"
    );
    c.expect("SELECT INBOX", "BAD").await;
    c.expect(&format!("LOGIN {JEAN} \"wrong password here\""), "NO")
        .await;
    c.expect(
        "LOGIN 279035121518989@patient.mes.test \"correct horse battery staple\"",
        "NO",
    )
    .await;
    let b64 = common::plain(JEAN, PW);
    let r = c.expect(&format!("AUTHENTICATE PLAIN {b64}"), "OK").await;
    assert!(r.status.contains("CAPABILITY"), "{r:?}");

    // Mailboxes.
    let list = c.expect("LIST \"\" \"*\"", "OK").await.all();
    for needle in [
        "\\Sent) \"/\" Sent",
        "\\Drafts) \"/\" Drafts",
        "\\Trash) \"/\" Trash",
        "\\Junk) \"/\" Junk",
        "\\Archive) \"/\" Archive",
        "\"/\" INBOX",
    ] {
        assert!(list.contains(needle), "{needle} in {list}");
    }
    let root = c.expect("LIST \"\" \"\"", "OK").await;
    assert!(
        root.untagged[0].contains("(\\Noselect) \"/\" \"\""),
        "{root:?}"
    );
    c.expect("CREATE Projets/2026/Cardio", "OK").await;
    c.expect("CREATE Projets", "NO").await;
    let l = c.expect("LIST \"\" \"Projets/%\"", "OK").await;
    assert_eq!(l.untagged.len(), 1, "{l:?}");
    assert!(
        l.untagged[0].contains("(\\HasChildren) \"/\" Projets/2026"),
        "{l:?}"
    );
    c.expect("CREATE R&AOk-sultats", "OK").await;
    let l = c.expect("LIST \"\" \"R*\"", "OK").await;
    assert!(l.untagged[0].ends_with("R&AOk-sultats"), "{l:?}");
    c.expect("RENAME Projets Archives-Projets", "OK").await;
    let l = c.expect("LIST \"\" \"Archives-Projets/*\"", "OK").await;
    assert_eq!(l.untagged.len(), 2, "children follow a RENAME: {l:?}");
    c.expect("DELETE Archives-Projets/2026/Cardio", "OK").await;
    c.expect("DELETE INBOX", "NO").await;
    let r = c.expect("DELETE Nothing", "NO").await;
    assert!(r.status.contains("[NONEXISTENT]"), "{r:?}");
    c.expect("SUBSCRIBE R&AOk-sultats", "OK").await;
    c.expect("UNSUBSCRIBE Junk", "OK").await;
    let lsub = c.expect("LSUB \"\" \"*\"", "OK").await.all();
    assert!(
        lsub.contains("R&AOk-sultats") && !lsub.contains("Junk"),
        "{lsub}"
    );

    // APPEND: synchronising literal, LITERAL+, flags and date.
    let r = c
        .append("INBOX", "\\Seen", &mail("premier", "Bonjour"))
        .await;
    assert!(r.status.contains("[APPENDUID "), "{r:?}");
    assert!(r.status.ends_with("1] APPEND completed"), "{r:?}");
    let m2 = mail("second", "Compte rendu de biologie: TSH normale");
    let tag = c.tag();
    c.send_raw(
        format!(
            "{tag} APPEND INBOX (\\Flagged $Urgent) \"24-Nov-2026 10:00:00 +0100\" {{{}+}}\r\n",
            m2.len()
        )
        .as_bytes(),
    )
    .await;
    c.send_raw(&m2).await;
    c.send_raw(b"\r\n").await;
    assert!(c.read_until_tagged(&tag).await.ok());
    c.append("INBOX", "", &mail("troisieme", "Lettre de liaison"))
        .await;

    // STATUS and SELECT.
    let st = c
        .expect(
            "STATUS INBOX (MESSAGES RECENT UIDNEXT UIDVALIDITY UNSEEN HIGHESTMODSEQ)",
            "OK",
        )
        .await;
    assert!(
        st.untagged[0].contains("MESSAGES 3")
            && st.untagged[0].contains("UIDNEXT 4")
            && st.untagged[0].contains("UNSEEN 2"),
        "{st:?}"
    );
    let sel = c.expect("SELECT INBOX", "OK").await;
    let all = sel.all();
    assert!(
        all.contains("* 3 EXISTS") && all.contains("* 3 RECENT"),
        "{all}"
    );
    assert!(
        all.contains("[UIDVALIDITY ") && all.contains("[UIDNEXT 4]") && all.contains("[UNSEEN 2]"),
        "{all}"
    );
    assert!(
        all.contains("[PERMANENTFLAGS (") && all.contains("\\*)]"),
        "{all}"
    );
    assert!(all.contains("$Urgent"), "keywords in FLAGS: {all}");
    assert!(sel.status.contains("[READ-WRITE]"), "{sel:?}");

    // FETCH.
    let f = c
        .expect("FETCH 1:* (UID FLAGS RFC822.SIZE INTERNALDATE)", "OK")
        .await;
    assert_eq!(f.untagged.len(), 3);
    assert!(
        f.untagged[1].contains("UID 2")
            && f.untagged[1].contains("\\Flagged")
            && f.untagged[1].contains("$Urgent"),
        "{f:?}"
    );
    assert!(
        f.untagged[1].contains("INTERNALDATE \"24-Nov-2026 09:00:00 +0000\""),
        "{f:?}"
    );
    let f = c
        .expect("FETCH 2 (BODY.PEEK[HEADER.FIELDS (SUBJECT)])", "OK")
        .await;
    assert!(f.untagged[0].contains("Subject: second"), "{f:?}");
    let f = c.expect("FETCH 2 (BODY[TEXT]<0.14>)", "OK").await;
    assert!(
        f.untagged[0].contains("BODY[TEXT]<0>") && f.untagged[0].contains("Compte rendu d"),
        "{f:?}"
    );
    assert!(
        f.untagged[0].contains("\\Seen"),
        "BODY[] sets \\Seen and reports it: {f:?}"
    );
    let f = c
        .expect("UID FETCH 3 (RFC822.HEADER ENVELOPE BODYSTRUCTURE)", "OK")
        .await;
    assert!(f.untagged[0].contains("UID 3"), "{f:?}");
    let f = c.expect("FETCH 3 RFC822", "OK").await;
    assert!(f.untagged[0].contains("Lettre de liaison"), "{f:?}");
    c.expect("FETCH 9 FLAGS", "BAD").await;

    // SEARCH.
    let s = c.expect("SEARCH SUBJECT second", "OK").await;
    assert_eq!(s.untagged[0], "* SEARCH 2");
    let s = c.expect("SEARCH BODY biologie", "OK").await;
    assert_eq!(s.untagged[0], "* SEARCH 2");
    let s = c
        .expect("SEARCH OR FLAGGED KEYWORD $Urgent SEEN", "OK")
        .await;
    assert_eq!(s.untagged[0], "* SEARCH 2");
    let s = c.expect("SEARCH UNSEEN", "OK").await;
    assert_eq!(s.untagged[0], "* SEARCH");
    let s = c
        .expect(
            "UID SEARCH FROM curie SINCE 1-Jan-2020 LARGER 10 TEXT liaison",
            "OK",
        )
        .await;
    assert_eq!(s.untagged[0], "* SEARCH 3");
    let s = c
        .expect("SEARCH HEADER Message-ID premier@test", "OK")
        .await;
    assert_eq!(s.untagged[0], "* SEARCH 1");
    let s = c.expect("SEARCH SENTON 24-Nov-2026 1:2", "OK").await;
    assert_eq!(s.untagged[0], "* SEARCH 1 2");
    c.expect("SEARCH CHARSET KOI8-R SUBJECT x", "NO").await;

    // STORE.
    let st = c.expect("STORE 1 +FLAGS (\\Answered)", "OK").await;
    assert!(
        st.untagged[0].starts_with("* 1 FETCH (FLAGS (\\Answered \\Seen"),
        "{st:?}"
    );
    let st = c.expect("STORE 1 -FLAGS.SILENT (\\Answered)", "OK").await;
    assert!(st.untagged.is_empty(), "{st:?}");
    let st = c.expect("UID STORE 2 FLAGS (\\Seen)", "OK").await;
    assert!(
        st.untagged[0].contains("UID 2") && !st.untagged[0].contains("$Urgent"),
        "{st:?}"
    );

    // CONDSTORE.
    c.expect("ENABLE CONDSTORE", "OK").await;
    let f = c.expect("FETCH 1:* (MODSEQ)", "OK").await;
    assert!(f.untagged.iter().all(|l| l.contains("MODSEQ (")), "{f:?}");
    let modseq: u64 = f.untagged[1]
        .rsplit("MODSEQ (")
        .next()
        .unwrap()
        .trim_end_matches("))")
        .parse()
        .unwrap();
    let f = c
        .expect(&format!("FETCH 1:* (FLAGS) (CHANGEDSINCE {modseq})"), "OK")
        .await;
    assert!(f.untagged.iter().all(|l| !l.starts_with("* 2 ")), "{f:?}");
    let s = c.expect(&format!("SEARCH MODSEQ {modseq}"), "OK").await;
    assert!(
        s.untagged[0].starts_with("* SEARCH ") && s.untagged[0].contains("(MODSEQ "),
        "{s:?}"
    );
    let st = c
        .expect(
            &format!("STORE 2 (UNCHANGEDSINCE {}) +FLAGS (\\Flagged)", modseq - 1),
            "OK",
        )
        .await;
    assert!(st.status.contains("[MODIFIED 2]"), "{st:?}");

    // COPY, MOVE, EXPUNGE.
    let r = c.expect("COPY 1 Nowhere", "NO").await;
    assert!(r.status.contains("[TRYCREATE]"), "{r:?}");
    let cp = c.expect("COPY 1:2 Archive", "OK").await;
    assert!(
        cp.status.contains("[COPYUID ") && cp.status.contains(" 1:2 1:2]"),
        "{cp:?}"
    );
    let mv = c.expect("UID MOVE 3 Trash", "OK").await;
    let all = mv.all();
    assert!(
        all.contains("[COPYUID ") && all.contains("* 3 EXPUNGE"),
        "{all}"
    );
    c.expect("STORE 1 +FLAGS.SILENT (\\Deleted)", "OK").await;
    let ex = c.expect("UID EXPUNGE 2", "OK").await;
    assert!(
        ex.untagged.is_empty(),
        "UID EXPUNGE only removes the given UIDs: {ex:?}"
    );
    let ex = c.expect("EXPUNGE", "OK").await;
    assert_eq!(ex.untagged, vec!["* 1 EXPUNGE".to_string()]);
    let f = c.expect("FETCH 1 (UID)", "OK").await;
    assert!(f.untagged[0].contains("UID 2"), "{f:?}");

    // EXAMINE is read-only, NAMESPACE, ID, UNSELECT, CLOSE.
    let ex = c.expect("EXAMINE Archive", "OK").await;
    assert!(ex.status.contains("[READ-ONLY]"), "{ex:?}");
    c.expect("STORE 1 +FLAGS (\\Deleted)", "NO").await;
    c.expect("UNSELECT", "OK").await;
    c.expect("FETCH 1 FLAGS", "BAD").await;
    let ns = c.expect("NAMESPACE", "OK").await;
    assert_eq!(ns.untagged[0], "* NAMESPACE ((\"\" \"/\")) NIL NIL");
    let id = c.expect("ID (\"name\" \"test\")", "OK").await;
    assert!(id.untagged[0].contains("\"MES\""), "{id:?}");
    c.expect("SELECT Trash", "OK").await;
    c.expect("STORE 1 +FLAGS.SILENT (\\Deleted)", "OK").await;
    c.expect("CLOSE", "OK").await;
    let st = c.expect("STATUS Trash (MESSAGES)", "OK").await;
    assert!(
        st.untagged[0].contains("MESSAGES 0"),
        "CLOSE expunges: {st:?}"
    );

    // Pipelined commands in one write.
    c.send_raw(b"p1 NOOP\r\np2 SELECT INBOX\r\np3 FETCH 1 (UID)\r\np4 NOOP\r\n")
        .await;
    for t in ["p1", "p2", "p3", "p4"] {
        let r = c.read_until_tagged(t).await;
        assert!(r.ok(), "{t}: {r:?}");
    }
    c.expect("LOGOUT", "OK").await;
}

async fn two_sessions_and_idle(db: Db) {
    let (instance, server) = setup(db).await;
    let ca = instance.cert("ca.pem");
    let addr = server.addr("imaps");
    let mut a = imap_login(addr, &ca, JEAN, PW).await;
    let mut b = imap_login(addr, &ca, JEAN, PW).await;
    a.append("INBOX", "", &mail("un", "x")).await;
    a.append("INBOX", "", &mail("deux", "y")).await;
    a.expect("SELECT INBOX", "OK").await;
    let sel = b.expect("SELECT INBOX", "OK").await;
    assert!(
        sel.all().contains("* 0 RECENT"),
        "\\Recent went to the first session: {}",
        sel.all()
    );

    // B changes flags and expunges; A hears it at NOOP.
    b.expect("STORE 1 +FLAGS (\\Deleted)", "OK").await;
    b.expect("STORE 2 +FLAGS (\\Flagged)", "OK").await;
    b.expect("EXPUNGE", "OK").await;
    let n = a.expect("NOOP", "OK").await.all();
    assert!(n.contains("* 1 EXPUNGE"), "{n}");
    assert!(
        n.contains("FETCH (FLAGS (\\Flagged") || n.contains("\\Flagged"),
        "{n}"
    );

    // A idles; an SMTP delivery wakes it.
    let tag = a.tag();
    a.send_raw(format!("{tag} IDLE\r\n").as_bytes()).await;
    let cont = a.read_line().await;
    assert!(cont.starts_with('+'), "{cont}");
    let data = format!("From: {JEAN}\r\nSubject: idle\r\n\r\nhello\r\n");
    let code = common::submit(server.addr("submissions"), &ca, JEAN, PW, "", JEAN, &data).await;
    assert_eq!(code, 250);
    let pushed = tokio::time::timeout(Duration::from_secs(5), a.read_line())
        .await
        .expect("IDLE heard the delivery");
    assert_eq!(pushed, "* 2 EXISTS");
    a.send_raw(b"DONE\r\n").await;
    let done = a.read_until_tagged(&tag).await;
    assert!(done.ok(), "{done:?}");
    b.expect("LOGOUT", "OK").await;
}

both_backends!(protocol_suite, two_sessions_and_idle);

#[tokio::test]
async fn bad_input_gets_no_or_bad_and_the_session_continues() {
    let (instance, server) = setup(Db::Sqlite).await;
    let ca = instance.cert("ca.pem");
    // Plain IMAP: LOGINDISABLED until STARTTLS.
    let tcp = tokio::net::TcpStream::connect(server.addr("imap"))
        .await
        .unwrap();
    let mut p = common::Imap::new(tcp);
    let greeting = p.read_line().await;
    assert!(
        greeting.contains("LOGINDISABLED") && greeting.contains("STARTTLS"),
        "{greeting}"
    );
    p.expect(&format!("LOGIN {JEAN} \"{PW}\""), "NO").await;
    p.expect("STARTTLS", "OK").await;

    let mut c = imap_login(server.addr("imaps"), &ca, JEAN, PW).await;
    c.expect("FETCH 1 FLAGS", "BAD").await;
    c.expect("THIS IS NOT A COMMAND", "BAD").await;
    c.expect("SELECT", "BAD").await;
    c.expect("CREATE \"R&AOk\"", "BAD").await;
    c.expect("CREATE \"a//b\"", "BAD").await;
    // A literal larger than the limit (APPENDLIMIT) is refused before its data is sent.
    let tag = c.tag();
    c.send_raw(format!("{tag} APPEND INBOX {{999999999999}}\r\n").as_bytes())
        .await;
    let r = c.read_until_tagged(&tag).await;
    assert_eq!(r.kind(), "BAD", "{r:?}");
    // An unbalanced literal: announced, then the client sends fewer bytes and a new command.
    c.expect("NOOP", "OK").await;
    c.expect("LOGOUT", "OK").await;
}

#[tokio::test]
async fn python_imaplib_and_curl() {
    let (instance, server) = setup(Db::Sqlite).await;
    let ca = instance.cert("ca.pem");
    let port = server.addr("imaps").port();
    let script = format!(
        r#"
import imaplib, ssl, sys
ctx = ssl.create_default_context(cafile={ca:?})
m = imaplib.IMAP4_SSL("127.0.0.1", {port}, ssl_context=ctx)
m.login({JEAN:?}, {PW:?})
for i in range(5):
    m.append("INBOX", None, None, ("Subject: imaplib %d\r\nFrom: {JEAN}\r\n\r\nbody %d\r\n" % (i, i)).encode())
typ, data = m.select("INBOX")
assert typ == "OK" and data[0] == b"5", data
typ, data = m.fetch("1:*", "(UID FLAGS BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
assert typ == "OK" and len([d for d in data if isinstance(d, tuple)]) == 5, data
typ, data = m.search(None, "SUBJECT", '"imaplib 3"')
assert data == [b"4"], data
typ, data = m.store("2:3", "+FLAGS", "(\\Deleted)")
assert typ == "OK", data
typ, data = m.expunge()
assert data == [b"3", b"2"] or data == [b"2", b"2"], data
typ, data = m.search(None, "ALL")
assert data == [b"1 2 3"], data
m.logout()
print("imaplib ok")
"#,
        ca = ca.to_str().unwrap()
    );
    let out = std::process::Command::new("python3")
        .arg("-c")
        .arg(&script)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("imaplib ok"));

    // curl lists the mailboxes and fetches a message over imaps.
    let base = format!("imaps://localhost:{port}");
    let list = std::process::Command::new("curl")
        .args([
            "-sS",
            "--cacert",
            ca.to_str().unwrap(),
            "--user",
            &format!("{JEAN}:{PW}"),
            &format!("{base}/"),
        ])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&list.stdout);
    assert!(
        list.status.success(),
        "{}",
        String::from_utf8_lossy(&list.stderr)
    );
    assert!(text.contains("INBOX") && text.contains("Sent"), "{text}");
    let fetch = std::process::Command::new("curl")
        .args([
            "-sS",
            "--cacert",
            ca.to_str().unwrap(),
            "--user",
            &format!("{JEAN}:{PW}"),
            &format!("{base}/INBOX;UID=1"),
        ])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&fetch.stdout);
    assert!(
        fetch.status.success(),
        "{}",
        String::from_utf8_lossy(&fetch.stderr)
    );
    assert!(
        text.contains("Subject: imaplib 0") && text.contains("body 0"),
        "{text}"
    );
}

/// Counts the maildir files of `dir` (cur and new) and how many carry `flag` in their info.
fn maildir(dir: &std::path::Path, flag: char) -> (usize, usize) {
    let mut total = 0;
    let mut flagged = 0;
    for sub in ["cur", "new"] {
        let Ok(entries) = std::fs::read_dir(dir.join(sub)) else {
            continue;
        };
        for e in entries.flatten() {
            total += 1;
            let name = e.file_name().to_string_lossy().into_owned();
            if name
                .rsplit_once(":2,")
                .is_some_and(|(_, f)| f.contains(flag))
            {
                flagged += 1;
            }
        }
    }
    (total, flagged)
}

#[tokio::test]
async fn mbsync_two_way_sync_of_1000_messages() {
    let (instance, server) = setup(Db::Sqlite).await;
    let ca = instance.cert("ca.pem");
    let addr = server.addr("imaps");
    let mut c = imap_login(addr, &ca, JEAN, PW).await;
    // 1000 messages with LITERAL+ in one pipelined write.
    let mut batch = Vec::new();
    for i in 0..1000 {
        let m = mail(&format!("msg{i}"), &format!("Message number {i}"));
        batch.extend_from_slice(format!("m{i} APPEND INBOX {{{}+}}\r\n", m.len()).as_bytes());
        batch.extend_from_slice(&m);
        batch.extend_from_slice(b"\r\n");
    }
    c.send_raw(&batch).await;
    for i in 0..1000 {
        let r = c.read_until_tagged(&format!("m{i}")).await;
        assert!(r.ok(), "{r:?}");
    }

    let work = tempfile::tempdir().unwrap();
    let mail_dir = work.path().join("mail");
    std::fs::create_dir_all(&mail_dir).unwrap();
    let config = work.path().join("mbsyncrc");
    std::fs::write(
        &config,
        format!(
            "IMAPAccount mes\nHost localhost\nPort {port}\nUser {JEAN}\nPass \"{PW}\"\nSSLType IMAPS\nCertificateFile {ca}\nAuthMechs PLAIN\n\n\
             IMAPStore remote\nAccount mes\n\n\
             MaildirStore local\nPath {dir}/\nInbox {dir}/INBOX\nSubFolders Verbatim\n\n\
             Channel sync\nFar :remote:\nNear :local:\nPatterns INBOX\nCreate Both\nExpunge Both\nSyncState *\n",
            port = addr.port(),
            ca = ca.display(),
            dir = mail_dir.display()
        ),
    )
    .unwrap();
    let run = |label: &str| {
        let out = std::process::Command::new("mbsync")
            .args(["-c", config.to_str().unwrap(), "-a"])
            .output()
            .expect("mbsync is installed by scripts/test");
        assert!(
            out.status.success(),
            "mbsync {label} failed:\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    };

    // 1. Pull.
    run("pull");
    let inbox = mail_dir.join("INBOX");
    assert_eq!(maildir(&inbox, 'F').0, 1000);
    // isync speaks COMPRESS=DEFLATE (RFC 4978) when the server offers it.
    assert!(
        server.log().contains("IMAP compression started"),
        "mbsync did not compress"
    );

    // 2. Flag 10 and delete 5 locally, push back.
    let mut files: Vec<std::path::PathBuf> = ["cur", "new"]
        .iter()
        .flat_map(|s| {
            std::fs::read_dir(inbox.join(s))
                .unwrap()
                .flatten()
                .map(|e| e.path())
        })
        .collect();
    files.sort();
    for f in &files[..10] {
        let name = f.file_name().unwrap().to_string_lossy().into_owned();
        let (base, flags) = name
            .rsplit_once(":2,")
            .map(|(b, f)| (b.to_string(), f.to_string()))
            .unwrap_or((name.clone(), String::new()));
        let mut flags: Vec<char> = flags.chars().collect();
        flags.push('F');
        flags.sort();
        std::fs::rename(
            f,
            inbox.join("cur").join(format!(
                "{base}:2,{}",
                flags.into_iter().collect::<String>()
            )),
        )
        .unwrap();
    }
    for f in &files[10..15] {
        std::fs::remove_file(f).unwrap();
    }
    run("push");
    let sel = c.expect("SELECT INBOX", "OK").await.all();
    assert!(sel.contains("* 995 EXISTS"), "{sel}");
    let flagged = c.expect("SEARCH FLAGGED", "OK").await;
    assert_eq!(
        flagged.untagged[0].split(' ').count() - 2,
        10,
        "{flagged:?}"
    );
    let modseq_before = c
        .expect("STATUS INBOX (HIGHESTMODSEQ MESSAGES)", "OK")
        .await
        .untagged[0]
        .clone();

    // 3. A second sync with no changes changes nothing on either side.
    let before = maildir(&inbox, 'F');
    run("idempotent");
    assert_eq!(maildir(&inbox, 'F'), before);
    assert_eq!(before, (995, 10));
    let modseq_after = c
        .expect("STATUS INBOX (HIGHESTMODSEQ MESSAGES)", "OK")
        .await
        .untagged[0]
        .clone();
    assert_eq!(modseq_before, modseq_after, "the server saw no change");
}

#[tokio::test]
async fn esearch_and_list_extended() {
    let (instance, server) = setup(Db::Sqlite).await;
    let ca = instance.cert("ca.pem");
    let mut c = imap_login(server.addr("imaps"), &ca, JEAN, PW).await;
    let caps = c.expect("CAPABILITY", "OK").await;
    assert!(
        caps.untagged[0].contains("ESEARCH") && caps.untagged[0].contains("LIST-EXTENDED"),
        "{caps:?}"
    );
    for i in 0..5 {
        c.append(
            "INBOX",
            if i % 2 == 0 { "\\Seen" } else { "" },
            &mail(&format!("e{i}"), "x"),
        )
        .await;
    }
    c.expect("SELECT INBOX", "OK").await;
    let tag = c.tag();
    c.send_raw(format!("{tag} SEARCH RETURN (MIN MAX COUNT ALL) SEEN\r\n").as_bytes())
        .await;
    let r = c.read_until_tagged(&tag).await;
    assert!(r.ok(), "{r:?}");
    assert_eq!(
        r.untagged,
        vec![format!(
            "* ESEARCH (TAG \"{tag}\") MIN 1 MAX 5 ALL 1,3,5 COUNT 3"
        )]
    );
    let tag = c.tag();
    c.send_raw(format!("{tag} UID SEARCH RETURN () UNSEEN\r\n").as_bytes())
        .await;
    let r = c.read_until_tagged(&tag).await;
    assert_eq!(
        r.untagged,
        vec![format!("* ESEARCH (TAG \"{tag}\") UID ALL 2,4")]
    );
    // A plain SEARCH afterwards is plain again.
    assert_eq!(
        c.expect("SEARCH UNSEEN", "OK").await.untagged[0],
        "* SEARCH 2 4"
    );
    // LIST-EXTENDED: selection and return options.
    c.expect("UNSUBSCRIBE Junk", "OK").await;
    let l = c.expect("LIST (SPECIAL-USE) \"\" \"*\"", "OK").await;
    assert_eq!(l.untagged.len(), 5, "special-use mailboxes only: {l:?}");
    let l = c
        .expect("LIST \"\" \"*\" RETURN (SUBSCRIBED CHILDREN)", "OK")
        .await
        .all();
    assert!(l.contains("\\Subscribed") && l.contains("INBOX"), "{l}");
    assert!(
        l.lines()
            .any(|x| x.ends_with("Junk") && !x.contains("\\Subscribed")),
        "{l}"
    );
    let l = c.expect("LIST (SUBSCRIBED) \"\" \"*\"", "OK").await;
    assert!(
        l.untagged
            .iter()
            .all(|x| x.contains("\\Subscribed") && !x.ends_with("Junk")),
        "{l:?}"
    );
    c.expect("LIST (NONSENSE) \"\" \"*\"", "BAD").await;
}

/// Two nodes on one PostgreSQL: a delivery through node 1 wakes an IDLE session on node 2.
#[tokio::test]
async fn idle_hears_deliveries_made_by_another_node() {
    let instance = Instance::new(Db::Postgres).await;
    instance.add_user(JEAN, "professional", PW);
    let second = instance.root().join("node2.toml");
    let text = std::fs::read_to_string(&instance.config).unwrap();
    std::fs::write(
        &second,
        text.replacen("[relay]\n", "[relay]\nnode_id = \"node-2\"\n", 1),
    )
    .unwrap();
    let node1 = instance.start();
    let node2 = common::Server::start(&second);
    let ca = instance.cert("ca.pem");
    let mut c = imap_login(node2.addr("imaps"), &ca, JEAN, PW).await;
    c.expect("SELECT INBOX", "OK").await;
    let tag = c.tag();
    c.send_raw(format!("{tag} IDLE\r\n").as_bytes()).await;
    assert!(c.read_line().await.starts_with('+'));
    let data = format!("From: {JEAN}\r\nSubject: node 1\r\n\r\nhello\r\n");
    let code = common::submit(node1.addr("submissions"), &ca, JEAN, PW, "", JEAN, &data).await;
    assert_eq!(code, 250);
    let pushed = tokio::time::timeout(Duration::from_secs(10), c.read_line())
        .await
        .expect("node 2's IDLE heard node 1's delivery");
    assert_eq!(pushed, "* 1 EXISTS");
    c.send_raw(b"DONE\r\n").await;
    assert!(c.read_until_tagged(&tag).await.ok());
}

/// `imap.max_command_line` (64 KiB by default) bounds each line outside
/// literals: over it, tagged BAD [TOOBIG] and the session goes on; the rest of
/// the command (including a LITERAL+ payload that looks like commands) is dropped.
#[tokio::test]
async fn command_lines_longer_than_the_limit_are_refused_and_the_session_continues() {
    let (instance, server) = setup(Db::Sqlite).await;
    let ca = instance.cert("ca.pem");
    let mut c = imap_login(server.addr("imaps"), &ca, JEAN, PW).await;
    c.append("INBOX", "", &mail("long", "x")).await;
    c.expect("SELECT INBOX", "OK").await;

    // Just under the limit: served.
    let set = vec!["1"; 32_000].join(",");
    let ok = c.expect(&format!("UID SEARCH UID {set}"), "OK").await;
    assert_eq!(ok.untagged, vec!["* SEARCH 1".to_string()]);

    // Over it, on the first line of a command: tagged BAD [TOOBIG].
    let tag = c.tag();
    let long = "x".repeat(70_000);
    c.send_raw(format!("{tag} NOOP {long}\r\n").as_bytes())
        .await;
    let r = c.read_until_tagged(&tag).await;
    assert!(
        r.status.starts_with(&format!("{tag} BAD [TOOBIG]")),
        "{r:?}"
    );
    c.expect("NOOP", "OK").await;

    // A megabyte of line: still one BAD, and the next command is read.
    let tag = c.tag();
    c.send_raw(format!("{tag} NOOP ").as_bytes()).await;
    for _ in 0..16 {
        c.send_raw("y".repeat(64 * 1024).as_bytes()).await;
    }
    c.send_raw(b"\r\n").await;
    let r = c.read_until_tagged(&tag).await;
    assert!(
        r.status.starts_with(&format!("{tag} BAD [TOOBIG]")),
        "{r:?}"
    );
    c.expect("NOOP", "OK").await;

    // Over it after a literal: the command (here an APPEND) is dropped whole.
    let tag = c.tag();
    c.send_raw(format!("{tag} APPEND INBOX {{5+}}\r\nhello {long}\r\n").as_bytes())
        .await;
    let r = c.read_until_tagged(&tag).await;
    assert!(
        r.status.starts_with(&format!("{tag} BAD [TOOBIG]")),
        "{r:?}"
    );
    let st = c.expect("STATUS INBOX (MESSAGES)", "OK").await;
    assert!(st.untagged[0].contains("MESSAGES 1"), "{st:?}");

    // An over-long line announcing a LITERAL+: its data is dropped, never run as commands.
    let tag = c.tag();
    let payload = b"z1 DELETE Archive\r\nz2 LOGOUT\r\n";
    c.send_raw(format!("{tag} NOOP {long} {{{}+}}\r\n", payload.len()).as_bytes())
        .await;
    c.send_raw(payload).await;
    c.send_raw(b"\r\n").await;
    let r = c.read_until_tagged(&tag).await;
    assert!(
        r.status.starts_with(&format!("{tag} BAD [TOOBIG]")),
        "{r:?}"
    );
    let after = c.expect("LIST \"\" Archive", "OK").await;
    assert_eq!(after.untagged.len(), 1, "Archive still there: {after:?}");

    // A synchronising literal announced by an over-long line is not asked for.
    let tag = c.tag();
    c.send_raw(format!("{tag} NOOP {long} {{10}}\r\n").as_bytes())
        .await;
    let r = c.read_line().await;
    assert!(r.starts_with(&format!("{tag} BAD [TOOBIG]")), "{r}");
    c.expect("NOOP", "OK").await;

    // A literal over APPENDLIMIT is refused (by imap-next) before it is sent:
    // the guard reads what follows as commands again.
    let tag = c.tag();
    c.send_raw(format!("{tag} APPEND INBOX {{60000000}}\r\n").as_bytes())
        .await;
    let r = c.read_until_tagged(&tag).await;
    assert_eq!(r.kind(), "BAD", "{r:?}");
    c.expect("NOOP", "OK").await;
    let tag = c.tag();
    c.send_raw(format!("{tag} NOOP {long}\r\n").as_bytes())
        .await;
    let r = c.read_until_tagged(&tag).await;
    assert!(
        r.status.starts_with(&format!("{tag} BAD [TOOBIG]")),
        "{r:?}"
    );
    c.expect("LOGOUT", "OK").await;

    // No tag to answer: BYE.
    let mut d = imap_login(server.addr("imaps"), &ca, JEAN, PW).await;
    d.send_raw(format!("({long}\r\nz1 NOOP\r\n").as_bytes())
        .await;
    let bye = d.read_line().await;
    assert!(bye.starts_with("* BYE [TOOBIG]"), "{bye}");
    // …and nothing after it is answered: the connection closes.
    let mut rest = String::new();
    use tokio::io::AsyncReadExt;
    let _ = tokio::time::timeout(Duration::from_secs(10), d.stream.read_to_string(&mut rest))
        .await
        .expect("closed after BYE");
    assert!(!rest.contains("z1 "), "{rest}");
}

/// FETCH BINARY, BINARY.PEEK and BINARY.SIZE (RFC 3516): content with its
/// transfer encoding undone, partial fetches counted in decoded octets.
async fn fetch_binary(db: Db) {
    let (instance, server) = setup(db).await;
    let ca = instance.cert("ca.pem");
    let mut c = imap_login(server.addr("imaps"), &ca, JEAN, PW).await;
    let caps = c.expect("CAPABILITY", "OK").await;
    assert!(caps.untagged[0].contains(" BINARY"), "{caps:?}");
    let message = b"From: marie.curie@hopital-a.mes.test\r\nSubject: binary\r\n\
MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"sep\"\r\n\r\n\
--sep\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n\
Hello=20world, caf=C3=A9=\r\n!\r\n\
--sep\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n\
AAECA/9B\r\n\
--sep\r\nContent-Type: application/x-old\r\nContent-Transfer-Encoding: x-uuencode\r\n\r\n\
begin 644 x\r\n\
--sep--\r\n";
    c.append("INBOX", "", message).await;
    c.expect("SELECT INBOX", "OK").await;

    let f = c.expect("FETCH 1 (BINARY.PEEK[1])", "OK").await;
    assert_eq!(
        f.untagged,
        vec!["* 1 FETCH (BINARY[1] {19}\nHello world, café!)".to_string()],
        "{f:?}"
    );
    let f = c
        .expect("FETCH 1 (BINARY.SIZE[1] BINARY.SIZE[2])", "OK")
        .await;
    assert_eq!(
        f.untagged,
        vec!["* 1 FETCH (BINARY.SIZE[1] 19 BINARY.SIZE[2] 6)".to_string()]
    );
    // Content with NUL is sent as literal8.
    let tag = c.tag();
    c.send_raw(format!("{tag} FETCH 1 (BINARY.PEEK[2])\r\n").as_bytes())
        .await;
    let mut line = Vec::new();
    use tokio::io::AsyncBufReadExt;
    c.stream.read_until(b'\n', &mut line).await.unwrap();
    assert_eq!(line, b"* 1 FETCH (BINARY[2] ~{6}\r\n");
    let mut data = [0u8; 6];
    use tokio::io::AsyncReadExt;
    c.stream.read_exact(&mut data).await.unwrap();
    assert_eq!(data, [0, 1, 2, 3, 255, b'A']);
    assert!(c.read_until_tagged(&tag).await.ok());

    // Partial: origin and length in decoded octets; the origin is in the response.
    let f = c
        .expect("UID FETCH 1 (BINARY.PEEK[1]<6.5> FLAGS)", "OK")
        .await;
    assert_eq!(
        f.untagged,
        vec!["* 1 FETCH (UID 1 BINARY[1]<6> \"world\" FLAGS (\\Recent))".to_string()]
    );
    let f = c.expect("FETCH 1 (BINARY.PEEK[2]<4.100>)", "OK").await;
    assert_eq!(
        f.untagged,
        vec!["* 1 FETCH (BINARY[2]<4> {2}\n\u{FFFD}A)".to_string()]
    );

    // An encoding we cannot undo: NO [UNKNOWN-CTE].
    let r = c.expect("FETCH 1 (BINARY.PEEK[3])", "NO").await;
    assert!(r.status.contains("[UNKNOWN-CTE]"), "{r:?}");
    c.expect("FETCH 1 (BINARY.SIZE[3])", "NO").await;
    // The whole message as stored, and a part that does not exist.
    let f = c
        .expect("FETCH 1 (BINARY.SIZE[] BINARY.PEEK[4])", "OK")
        .await;
    assert_eq!(
        f.untagged,
        vec![format!(
            "* 1 FETCH (BINARY.SIZE[] {} BINARY[4] \"\")",
            message.len()
        )]
    );

    // APPEND takes a literal8 (RFC 3516 §4.4): content with NUL, sent and read back as is.
    let raw = b"From: marie.curie@hopital-a.mes.test\r\nSubject: nul\r\n\
MIME-Version: 1.0\r\nContent-Type: application/octet-stream\r\n\
Content-Transfer-Encoding: binary\r\n\r\n\x00\x01zz\x00\r\n";
    let tag = c.tag();
    c.send_raw(format!("{tag} APPEND INBOX ~{{{}}}\r\n", raw.len()).as_bytes())
        .await;
    assert!(c.read_line().await.starts_with('+'));
    c.send_raw(raw).await;
    c.send_raw(b"\r\n").await;
    let r = c.read_until_tagged(&tag).await;
    assert!(r.ok(), "{r:?}");
    let f = c.expect("FETCH 2 (BINARY.SIZE[1] RFC822.SIZE)", "OK").await;
    assert_eq!(
        f.untagged,
        vec![format!(
            "* 2 FETCH (BINARY.SIZE[1] 7 RFC822.SIZE {})",
            raw.len()
        )]
    );

    // BINARY (not PEEK) sets \Seen, and says so; the peeks above did not.
    let f = c.expect("FETCH 1 (FLAGS)", "OK").await;
    assert!(!f.untagged[0].contains("\\Seen"), "{f:?}");
    let f = c.expect("FETCH 1 (BINARY[1]<0.5>)", "OK").await;
    assert_eq!(
        f.untagged,
        vec!["* 1 FETCH (BINARY[1]<0> \"Hello\" FLAGS (\\Seen \\Recent))".to_string()]
    );
}

/// IMAP4rev2 (RFC 9051) for a session that ENABLEs it: no \Recent, ESEARCH
/// replies to SEARCH, CLOSED and LIST in SELECT, STATUS DELETED and SIZE. A
/// session that does not enable it keeps IMAP4rev1 answers.
async fn imap4rev2_when_enabled(db: Db) {
    let (instance, server) = setup(db).await;
    let ca = instance.cert("ca.pem");
    let addr = server.addr("imaps");
    let mut c = imap_login(addr, &ca, JEAN, PW).await;
    let caps = c.expect("CAPABILITY", "OK").await;
    assert!(
        caps.untagged[0]
            .to_ascii_uppercase()
            .starts_with("* CAPABILITY IMAP4REV1 IMAP4REV2 ")
            && caps.untagged[0].contains(" STATUS=SIZE"),
        "{caps:?}"
    );
    let m1 = mail("rev2-un", "premier");
    c.append("INBOX", "\\Seen", &m1).await;
    c.append("INBOX", "", &mail("rev2-deux", "second")).await;
    c.append("INBOX", "\\Deleted", &mail("rev2-trois", "troisieme"))
        .await;

    let e = c.expect("ENABLE IMAP4rev2", "OK").await;
    assert_eq!(e.untagged, vec!["* ENABLED IMAP4rev2".to_string()]);

    let sel = c.expect("SELECT INBOX", "OK").await;
    let all = sel.all();
    assert!(all.contains("* 3 EXISTS"), "{all}");
    assert!(!all.contains("RECENT") && !all.contains("[UNSEEN"), "{all}");
    assert!(
        sel.untagged
            .iter()
            .any(|l| l == "* LIST (\\HasNoChildren) \"/\" INBOX"),
        "{all}"
    );
    let f = c.expect("FETCH 1:* (FLAGS)", "OK").await;
    assert_eq!(
        f.untagged,
        vec![
            "* 1 FETCH (FLAGS (\\Seen))".to_string(),
            "* 2 FETCH (FLAGS ())".to_string(),
            "* 3 FETCH (FLAGS (\\Deleted))".to_string(),
        ]
    );

    // SEARCH answers with ESEARCH.
    let tag = c.tag();
    c.send_raw(format!("{tag} SEARCH ALL\r\n").as_bytes()).await;
    let r = c.read_until_tagged(&tag).await;
    assert_eq!(
        r.untagged,
        vec![format!("* ESEARCH (TAG \"{tag}\") ALL 1:3")]
    );
    let tag = c.tag();
    c.send_raw(format!("{tag} UID SEARCH UNSEEN UNDELETED\r\n").as_bytes())
        .await;
    let r = c.read_until_tagged(&tag).await;
    assert_eq!(
        r.untagged,
        vec![format!("* ESEARCH (TAG \"{tag}\") UID ALL 2")]
    );
    let tag = c.tag();
    c.send_raw(format!("{tag} SEARCH SUBJECT nowhere\r\n").as_bytes())
        .await;
    let r = c.read_until_tagged(&tag).await;
    assert_eq!(r.untagged, vec![format!("* ESEARCH (TAG \"{tag}\")")]);

    // STATUS DELETED, DELETED-STORAGE and SIZE count what is there.
    let size = |subject: &str, body: &str| mail(subject, body).len();
    let st = c.expect("STATUS INBOX (MESSAGES DELETED SIZE)", "OK").await;
    let total = m1.len() + size("rev2-deux", "second") + size("rev2-trois", "troisieme");
    assert_eq!(
        st.untagged,
        vec![format!(
            "* STATUS INBOX (MESSAGES 3 DELETED 1 SIZE {total})"
        )]
    );

    // A second SELECT says the first mailbox was closed before anything else.
    let sel = c.expect("EXAMINE Archive", "OK").await;
    assert!(sel.untagged[0].starts_with("* OK [CLOSED]"), "{sel:?}");
    assert!(
        sel.untagged
            .iter()
            .any(|l| l == "* LIST (\\HasNoChildren \\Archive) \"/\" Archive"),
        "{sel:?}"
    );

    // Deliveries seen by NOOP/IDLE: EXISTS without RECENT.
    c.expect("SELECT INBOX", "OK").await;
    let mut other = imap_login(addr, &ca, JEAN, PW).await;
    other.append("INBOX", "", &mail("rev2-quatre", "x")).await;
    let n = c.expect("NOOP", "OK").await;
    assert_eq!(n.untagged, vec!["* 4 EXISTS".to_string()]);

    // LIST-STATUS: each LIST response is followed by the mailbox's STATUS.
    let l = c
        .expect(
            "LIST \"\" \"*\" RETURN (SUBSCRIBED STATUS (MESSAGES UNSEEN DELETED))",
            "OK",
        )
        .await;
    let inbox = l
        .untagged
        .iter()
        .position(|x| x.ends_with("\"/\" INBOX"))
        .expect("INBOX listed");
    assert!(l.untagged[inbox].contains("\\Subscribed"), "{l:?}");
    assert_eq!(
        l.untagged[inbox + 1],
        "* STATUS INBOX (MESSAGES 4 UNSEEN 3 DELETED 1)"
    );
    assert_eq!(
        l.untagged.len(),
        12,
        "6 mailboxes, LIST and STATUS each: {l:?}"
    );
    assert!(
        l.untagged
            .iter()
            .skip(1)
            .step_by(2)
            .all(|x| x.starts_with("* STATUS ")),
        "{l:?}"
    );
    c.expect("LIST \"\" \"*\" RETURN (STATUS (NONSENSE))", "BAD")
        .await;

    // A session that did not enable IMAP4rev2 keeps IMAP4rev1 answers.
    let sel = other.expect("SELECT INBOX", "OK").await.all();
    assert!(
        sel.contains("* 0 RECENT") && sel.contains("[UNSEEN 2]"),
        "{sel}"
    );
    let s = other.expect("SEARCH UNSEEN", "OK").await;
    assert_eq!(s.untagged, vec!["* SEARCH 2 3 4".to_string()]);
}

both_backends!(fetch_binary, imap4rev2_when_enabled);

/// SEARCHRES (RFC 5182): `SEARCH RETURN (SAVE)` keeps the result, `$` uses it.
#[tokio::test]
async fn search_result_reference() {
    let (instance, server) = setup(Db::Sqlite).await;
    let ca = instance.cert("ca.pem");
    let mut c = imap_login(server.addr("imaps"), &ca, JEAN, PW).await;
    let caps = c.expect("CAPABILITY", "OK").await;
    assert!(caps.untagged[0].contains(" SEARCHRES"), "{caps:?}");
    for (i, flags) in ["\\Seen", "", "\\Seen", ""].iter().enumerate() {
        c.append("INBOX", flags, &mail(&format!("res{i}"), "x"))
            .await;
    }
    c.expect("SELECT INBOX", "OK").await;
    // Before any SAVE, `$` is empty: nothing happens.
    let f = c.expect("FETCH $ (UID)", "OK").await;
    assert!(f.untagged.is_empty(), "{f:?}");

    // SAVE alone: no ESEARCH response.
    let s = c.expect("SEARCH RETURN (SAVE) UNSEEN", "OK").await;
    assert!(s.untagged.is_empty(), "{s:?}");
    let f = c.expect("FETCH $ (UID)", "OK").await;
    assert_eq!(
        f.untagged,
        vec![
            "* 2 FETCH (UID 2)".to_string(),
            "* 4 FETCH (UID 4)".to_string()
        ]
    );
    let st = c
        .expect("UID STORE $ +FLAGS.SILENT (\\Flagged)", "OK")
        .await;
    assert!(st.untagged.is_empty(), "{st:?}");
    let s = c.expect("SEARCH FLAGGED", "OK").await;
    assert_eq!(s.untagged, vec!["* SEARCH 2 4".to_string()]);
    // `$` as a search key, as messages or after UID; a quoted "$" is only text.
    let s = c.expect("SEARCH $ UID 4", "OK").await;
    assert_eq!(s.untagged, vec!["* SEARCH 4".to_string()]);
    let s = c.expect("UID SEARCH OR UID $ SEEN", "OK").await;
    assert_eq!(s.untagged, vec!["* SEARCH 1 2 3 4".to_string()]);
    let s = c.expect("SEARCH SUBJECT \"$\"", "OK").await;
    assert_eq!(s.untagged, vec!["* SEARCH".to_string()]);

    // With MIN alone, `$` holds only the first message; the ESEARCH is sent.
    let tag = c.tag();
    c.send_raw(format!("{tag} SEARCH RETURN (SAVE MIN) UNSEEN\r\n").as_bytes())
        .await;
    let r = c.read_until_tagged(&tag).await;
    assert_eq!(r.untagged, vec![format!("* ESEARCH (TAG \"{tag}\") MIN 2")]);
    let f = c.expect("UID FETCH $ (FLAGS)", "OK").await;
    assert_eq!(f.untagged.len(), 1, "{f:?}");
    assert!(f.untagged[0].starts_with("* 2 FETCH (UID 2 FLAGS"), "{f:?}");
    c.expect("COPY $ Archive", "OK").await;
    let st = c.expect("STATUS Archive (MESSAGES)", "OK").await;
    assert!(st.untagged[0].contains("MESSAGES 1"), "{st:?}");

    // Expunged messages leave `$`; SELECT empties it.
    c.expect("STORE $ +FLAGS.SILENT (\\Deleted)", "OK").await;
    c.expect("EXPUNGE", "OK").await;
    let f = c.expect("FETCH $ (UID)", "OK").await;
    assert!(f.untagged.is_empty(), "{f:?}");
    c.expect("SEARCH RETURN (SAVE) ALL", "OK").await;
    c.expect("SELECT INBOX", "OK").await;
    let f = c.expect("FETCH $ (UID)", "OK").await;
    assert!(f.untagged.is_empty(), "{f:?}");
    // No mailbox: BAD.
    c.expect("UNSELECT", "OK").await;
    c.expect("FETCH $ (UID)", "BAD").await;
}

/// QRESYNC (RFC 7162): VANISHED instead of EXPUNGE once enabled, and what
/// changed since a MODSEQ on SELECT (QRESYNC …) and UID FETCH (… VANISHED).
async fn qresync(db: Db) {
    let (instance, server) = setup(db).await;
    let ca = instance.cert("ca.pem");
    let addr = server.addr("imaps");
    let mut a = imap_login(addr, &ca, JEAN, PW).await;
    let caps = a.expect("CAPABILITY", "OK").await;
    assert!(caps.untagged[0].contains(" QRESYNC"), "{caps:?}");
    for i in 1..=5 {
        a.append("INBOX", "", &mail(&format!("q{i}"), "x")).await;
    }
    // Without ENABLE QRESYNC, its SELECT parameter is refused.
    a.expect("SELECT INBOX (QRESYNC (1 1))", "BAD").await;
    let e = a.expect("ENABLE QRESYNC", "OK").await;
    assert_eq!(e.untagged, vec!["* ENABLED QRESYNC".to_string()]);
    let sel = a.expect("SELECT INBOX", "OK").await.all();
    let number = |text: &str, key: &str| -> u64 {
        let at = text.find(key).unwrap_or_else(|| panic!("{key} in {text}")) + key.len();
        text[at..]
            .split(|c: char| !c.is_ascii_digit())
            .next()
            .unwrap()
            .parse()
            .unwrap()
    };
    let validity = number(&sel, "[UIDVALIDITY ");
    let before = number(&sel, "[HIGHESTMODSEQ ");

    // Expunges are reported as VANISHED, in the session that made them too.
    a.expect("STORE 2,4 +FLAGS.SILENT (\\Deleted)", "OK").await;
    let ex = a.expect("EXPUNGE", "OK").await;
    assert_eq!(ex.untagged, vec!["* VANISHED 2,4".to_string()]);
    a.expect("UID STORE 1 +FLAGS.SILENT (\\Flagged)", "OK")
        .await;
    a.expect("CREATE Dossiers", "OK").await;
    a.expect("UID MOVE 5 Dossiers", "OK").await;

    // Another client resynchronises from `before`.
    let mut b = imap_login(addr, &ca, JEAN, PW).await;
    b.expect("ENABLE QRESYNC", "OK").await;
    let sel = b
        .expect(
            &format!("SELECT INBOX (QRESYNC ({validity} {before}))"),
            "OK",
        )
        .await;
    let vanished: Vec<&String> = sel
        .untagged
        .iter()
        .filter(|l| l.starts_with("* VANISHED"))
        .collect();
    assert_eq!(vanished, vec!["* VANISHED (EARLIER) 2,4:5"], "{sel:?}");
    let fetches: Vec<&String> = sel
        .untagged
        .iter()
        .filter(|l| l.contains("FETCH"))
        .collect();
    assert_eq!(fetches.len(), 1, "{sel:?}");
    assert!(
        fetches[0].starts_with("* 1 FETCH (UID 1 FLAGS (\\Flagged) MODSEQ ("),
        "{sel:?}"
    );
    // Known UIDs narrow VANISHED; a stale UIDVALIDITY gets no resync data.
    let sel = b
        .expect(
            &format!("EXAMINE INBOX (QRESYNC ({validity} {before} 3:5))"),
            "OK",
        )
        .await;
    assert!(sel.untagged[0].starts_with("* OK [CLOSED]"), "{sel:?}");
    assert!(
        sel.untagged.iter().any(|l| l == "* VANISHED (EARLIER) 4:5"),
        "{sel:?}"
    );
    let sel = b
        .expect(
            &format!("SELECT INBOX (QRESYNC ({} {before}))", validity + 1),
            "OK",
        )
        .await;
    assert!(
        !sel.all().contains("VANISHED") && !sel.all().contains("FETCH"),
        "{sel:?}"
    );

    // UID FETCH … (CHANGEDSINCE m VANISHED).
    let f = b
        .expect(
            &format!("UID FETCH 1:* (FLAGS) (CHANGEDSINCE {before} VANISHED)"),
            "OK",
        )
        .await;
    assert_eq!(f.untagged[0], "* VANISHED (EARLIER) 2,4:5", "{f:?}");
    assert_eq!(f.untagged.len(), 2, "{f:?}");
    assert!(f.untagged[1].contains("UID 1"), "{f:?}");
    b.expect(
        &format!("FETCH 1:* (FLAGS) (CHANGEDSINCE {before} VANISHED)"),
        "BAD",
    )
    .await;

    // A session without QRESYNC still gets EXPUNGE.
    let mut c = imap_login(addr, &ca, JEAN, PW).await;
    c.expect("SELECT INBOX", "OK").await;
    c.expect("STORE 1 +FLAGS.SILENT (\\Deleted)", "OK").await;
    let ex = c.expect("EXPUNGE", "OK").await;
    assert_eq!(ex.untagged, vec!["* 1 EXPUNGE".to_string()]);
    // …and B hears it as VANISHED.
    let n = b.expect("NOOP", "OK").await;
    assert!(n.untagged.contains(&"* VANISHED 1".to_string()), "{n:?}");
    // Deleting a mailbox takes its VANISHED records along.
    c.expect("DELETE Dossiers", "OK").await;
}

both_backends!(qresync);

/// Mailbox names in UTF-8 for a session that enabled IMAP4rev2 (RFC 9051 §5.1,
/// Appendix E), in modified UTF-7 for the others, over the same mailboxes; the
/// LIST response with `OLDNAME` when the server normalised a created or
/// renamed name.
async fn utf8_mailbox_names(db: Db) {
    let (instance, server) = setup(db).await;
    let ca = instance.cert("ca.pem");
    let addr = server.addr("imaps");
    let mut v2 = imap_login(addr, &ca, JEAN, PW).await;
    let mut v1 = imap_login(addr, &ca, JEAN, PW).await;
    v2.expect("ENABLE IMAP4rev2", "OK").await;

    // Before ENABLE and in an IMAP4rev1 session, UTF-8 is not a mailbox name.
    v1.expect("CREATE \"Résultats\"", "BAD").await;
    v1.expect("SELECT \"R&AOk\"", "BAD").await;

    let c = v2.expect("CREATE \"Résultats/Été 2026\"", "OK").await;
    assert!(c.untagged.is_empty(), "not normalised: no LIST {c:?}");
    let l = v2.expect("LIST \"\" \"Résultats/*\"", "OK").await;
    assert_eq!(
        l.untagged,
        vec!["* LIST (\\HasNoChildren) \"/\" \"Résultats/Été 2026\"".to_string()]
    );
    // The IMAP4rev1 session sees the same mailbox in modified UTF-7, and its
    // patterns are modified UTF-7 too.
    let l = v1.expect("LIST \"\" \"R&AOk-sultats/*\"", "OK").await;
    assert_eq!(
        l.untagged,
        vec!["* LIST (\\HasNoChildren) \"/\" \"R&AOk-sultats/&AMk-t&AOk- 2026\"".to_string()]
    );
    let l = v1.expect("LIST \"\" \"*\"", "OK").await.all();
    assert!(!l.contains("Résultats"), "{l}");

    // APPEND from both sides, each in its own form.
    let r = v2
        .append("\"Résultats/Été 2026\"", "", &mail("utf8-un", "un"))
        .await;
    assert!(r.status.contains("OK [APPENDUID "), "{r:?}");
    let r = v1
        .append(
            "\"R&AOk-sultats/&AMk-t&AOk- 2026\"",
            "\\Seen",
            &mail("utf8-deux", "deux"),
        )
        .await;
    assert!(r.status.contains("OK [APPENDUID "), "{r:?}");
    let r = v1
        .append("\"Résultats/Été 2026\"", "", &mail("x", "x"))
        .await;
    assert_eq!(r.kind(), "BAD", "{r:?}");

    // STATUS and SELECT name the mailbox in the session's form.
    let s = v2
        .expect("STATUS \"Résultats/Été 2026\" (MESSAGES)", "OK")
        .await;
    assert_eq!(
        s.untagged,
        vec!["* STATUS \"Résultats/Été 2026\" (MESSAGES 2)".to_string()]
    );
    let s = v1
        .expect("STATUS \"R&AOk-sultats/&AMk-t&AOk- 2026\" (MESSAGES)", "OK")
        .await;
    assert_eq!(
        s.untagged,
        vec!["* STATUS \"R&AOk-sultats/&AMk-t&AOk- 2026\" (MESSAGES 2)".to_string()]
    );
    let sel = v2.expect("SELECT \"Résultats/Été 2026\"", "OK").await;
    assert!(
        sel.untagged
            .iter()
            .any(|l| l == "* LIST (\\HasNoChildren) \"/\" \"Résultats/Été 2026\""),
        "{sel:?}"
    );
    assert!(sel.untagged.iter().any(|l| l == "* 2 EXISTS"), "{sel:?}");
    let sel = v1
        .expect("EXAMINE \"R&AOk-sultats/&AMk-t&AOk- 2026\"", "OK")
        .await;
    assert!(sel.untagged.iter().any(|l| l == "* 2 EXISTS"), "{sel:?}");

    // COPY and MOVE into a UTF-8 name; the other session counts them.
    v2.expect("CREATE \"Archivé\"", "OK").await;
    v2.expect("COPY 1:2 \"Archivé\"", "OK").await;
    v2.expect("MOVE 1 \"Archivé\"", "OK").await;
    let s = v1.expect("STATUS \"Archiv&AOk-\" (MESSAGES)", "OK").await;
    assert_eq!(
        s.untagged,
        vec!["* STATUS Archiv&AOk- (MESSAGES 3)".to_string()]
    );
    v2.expect("COPY 1 \"Archiv&AOk-\"", "NO").await;

    // SUBSCRIBE/LSUB.
    v2.expect("SUBSCRIBE \"Archivé\"", "OK").await;
    let l = v2.expect("LSUB \"\" \"Arch*\"", "OK").await.all();
    assert!(l.contains(" \"/\" \"Archivé\""), "{l}");
    let l = v1.expect("LSUB \"\" \"Arch*\"", "OK").await.all();
    assert!(l.contains(" \"/\" Archiv&AOk-"), "{l}");

    // RENAME: a name the server normalises comes back with OLDNAME; one it
    // keeps as given does not.
    let r = v2
        .expect("RENAME \"Archivé\" \"Archivé 2026/\"", "OK")
        .await;
    assert_eq!(
        r.untagged,
        vec![
            "* LIST (\\HasNoChildren) \"/\" \"Archivé 2026\" (\"OLDNAME\" (\"Archivé 2026/\"))"
                .to_string()
        ]
    );
    let r = v2.expect("RENAME \"Archivé 2026\" \"Archivé\"", "OK").await;
    assert!(r.untagged.is_empty(), "{r:?}");
    let c = v2.expect("CREATE \"inbox/Été\"", "OK").await;
    assert_eq!(
        c.untagged,
        vec![
            "* LIST (\\HasNoChildren) \"/\" \"INBOX/Été\" (\"OLDNAME\" (\"inbox/Été\"))"
                .to_string()
        ]
    );
    // An IMAP4rev1 session gets no LIST there.
    let c = v1.expect("CREATE \"Dossier&AOk-/\"", "OK").await;
    assert!(c.untagged.is_empty(), "{c:?}");
    let l = v2.expect("LIST \"\" \"Dossier*\"", "OK").await;
    assert_eq!(
        l.untagged,
        vec!["* LIST (\\HasNoChildren) \"/\" \"Dossieré\"".to_string()]
    );

    // Invalid UTF-8 and control characters are refused in an IMAP4rev2 session.
    let tag = v2.tag();
    v2.send_raw(format!("{tag} CREATE {{2+}}\r\nR\t").as_bytes())
        .await;
    v2.send_raw(b"\r\n").await;
    let r = v2.read_until_tagged(&tag).await;
    assert_eq!(r.kind(), "BAD", "{r:?}");
    let tag = v2.tag();
    v2.send_raw(format!("{tag} CREATE {{2+}}\r\n").as_bytes())
        .await;
    v2.send_raw(&[b'R', 0xff, b'\r', b'\n']).await;
    let r = v2.read_until_tagged(&tag).await;
    assert_eq!(r.kind(), "BAD", "{r:?}");
    v2.expect("NOOP", "OK").await;
}

both_backends!(utf8_mailbox_names);

/// A header FETCH of a large folder is answered from the shared folder
/// listing (`imap/listing.rs`, written by `imap/wire.rs`): byte for byte what
/// the row-by-row path gives, and up to date with other sessions' changes.
async fn header_fetch_of_a_large_folder(db: Db) {
    let (instance, server) = setup(db).await;
    let ca = instance.cert("ca.pem");
    let addr = server.addr("imaps");
    let mut a = imap_login(addr, &ca, JEAN, PW).await;
    let mut b = imap_login(addr, &ca, JEAN, PW).await;
    // 150 messages with varied headers, APPENDs pipelined with LITERAL+.
    let mut batch = Vec::new();
    let mut last = String::new();
    for i in 1..=150 {
        let message = match i % 4 {
            0 => mail(&format!("m{i}"), "plain"),
            1 => format!(
                "From: =?utf-8?q?=C3=89lo=C3=AFse?= <eloise@hopital-a.mes.test>\r\n\
                 To: Equipe: a@x.test, b@x.test;\r\nSubject: =?utf-8?b?UsOpc3VsdGF0cw==?= {i} \"q\" \\\r\n\
                 Message-ID: <m{i}@test>\r\n\r\nx\r\n"
            )
            .into_bytes(),
            2 => format!("Subject: sans date {i}\r\n\r\n").into_bytes(),
            _ => format!("Subject: {{5}}\r\n folded {i}\r\nIn-Reply-To: <m1@test>\r\n\r\nbody\r\n")
                .into_bytes(),
        };
        let flags = ["", "\\Seen", "\\Answered $Label1", "\\Flagged \\Draft"][i % 4];
        last = a.tag();
        batch.extend_from_slice(
            format!("{last} APPEND INBOX ({flags}) {{{}+}}\r\n", message.len()).as_bytes(),
        );
        batch.extend_from_slice(&message);
        batch.extend_from_slice(b"\r\n");
    }
    a.send_raw(&batch).await;
    let appended = a.read_until_tagged(&last).await;
    assert!(appended.ok(), "{}", appended.all());
    let items = "(UID FLAGS INTERNALDATE RFC822.SIZE ENVELOPE)";
    a.expect("SELECT INBOX", "OK").await;
    // Fewer than 100 messages of a folder without a listing: the row path.
    let by_rows = a.expect(&format!("FETCH 1:99 {items}"), "OK").await;
    assert_eq!(by_rows.untagged.len(), 99, "{}", by_rows.all());
    // The whole folder: from the listing, the same bytes for the same messages.
    let listed = a.expect(&format!("FETCH 1:* {items}"), "OK").await;
    assert_eq!(listed.untagged.len(), 150, "{}", listed.all());
    assert_eq!(listed.untagged[..99], by_rows.untagged[..]);

    // Another session changes flags, expunges, and a message arrives.
    b.expect("SELECT INBOX", "OK").await;
    b.expect("STORE 10 +FLAGS (\\Flagged $Suivi)", "OK").await;
    b.expect("STORE 1:3 +FLAGS.SILENT (\\Deleted)", "OK").await;
    b.expect("EXPUNGE", "OK").await;
    b.append("INBOX", "", &mail("nouveau", "z")).await;
    let fetches = |r: &common::ImapReply| {
        r.untagged
            .iter()
            .filter(|l| l.contains(" ENVELOPE (") || l.contains(" MODSEQ ("))
            .cloned()
            .collect::<Vec<_>>()
    };
    // Before A has heard of them, its FETCH leaves out the expunged messages
    // and the new one.
    let stale = a.expect(&format!("UID FETCH 1:* {items}"), "OK").await;
    assert_eq!(fetches(&stale).len(), 147, "{}", stale.all());
    a.expect("NOOP", "OK").await;
    let now = a.expect(&format!("FETCH 1:* {items}"), "OK").await;
    let lines = fetches(&now);
    assert_eq!(lines.len(), 148, "{}", now.all());
    assert!(lines[0].starts_with("* 1 FETCH (UID 4 "), "{}", lines[0]);
    assert!(
        lines[6].starts_with("* 7 FETCH (UID 10 FLAGS (\\Answered \\Flagged $Label1 $Suivi"),
        "{}",
        lines[6]
    );
    assert!(
        lines[147].starts_with("* 148 FETCH (UID 151 FLAGS (")
            && lines[147].contains("\"nouveau\""),
        "{}",
        lines[147]
    );
    // CHANGEDSINCE from the listing: only the changed messages.
    let sel = b.expect("SELECT INBOX", "OK").await.all();
    let at = sel.find("[HIGHESTMODSEQ ").expect("HIGHESTMODSEQ") + 15;
    let modseq: u64 = sel[at..].split(']').next().unwrap().parse().unwrap();
    b.expect("STORE 100 +FLAGS (\\Seen)", "OK").await;
    let changed = b
        .expect(
            &format!("FETCH 1:* (UID FLAGS) (CHANGEDSINCE {modseq})"),
            "OK",
        )
        .await;
    let lines = fetches(&changed);
    assert_eq!(lines.len(), 1, "{}", changed.all());
    assert!(
        lines[0].starts_with("* 100 FETCH (UID 103 FLAGS ("),
        "{}",
        lines[0]
    );
    assert!(lines[0].contains(" MODSEQ ("), "{}", lines[0]);
    // STATUS without RECENT is counted from the listing, with RECENT by the
    // database: the same counts. 148 messages, 37 of them \Seen (i % 4 == 1,
    // less UID 1 expunged) plus UID 103, and one \Deleted after this STORE.
    b.expect("STORE 5 +FLAGS.SILENT (\\Deleted)", "OK").await;
    let counts = |r: &common::ImapReply| {
        let line = r
            .untagged
            .iter()
            .find(|l| l.starts_with("* STATUS "))
            .cloned()
            .unwrap_or_default();
        let mut out = Vec::new();
        for name in ["MESSAGES", "UNSEEN", "SIZE", "DELETED"] {
            let at = line.find(&format!("{name} ")).map(|i| i + name.len() + 1);
            let value: Option<u64> = at.and_then(|i| {
                line[i..]
                    .split(|c: char| !c.is_ascii_digit())
                    .next()
                    .and_then(|v| v.parse().ok())
            });
            out.push(value);
        }
        out
    };
    let listed = a
        .expect("STATUS INBOX (MESSAGES UNSEEN SIZE DELETED)", "OK")
        .await;
    let by_rows = a
        .expect("STATUS INBOX (MESSAGES RECENT UNSEEN SIZE DELETED)", "OK")
        .await;
    let (l, r) = (counts(&listed), counts(&by_rows));
    assert_eq!(l, r, "{}\n{}", listed.all(), by_rows.all());
    assert_eq!(
        (l[0], l[1], l[3]),
        (Some(148), Some(148 - 38), Some(1)),
        "{}",
        listed.all()
    );
    // SELECT from the listing: the same EXISTS and first unseen as EXAMINE,
    // which reads the rows.
    let selected = a.expect("SELECT INBOX", "OK").await;
    let examined = b.expect("EXAMINE INBOX", "OK").await;
    for needle in ["* 148 EXISTS", "[UNSEEN 1]"] {
        assert!(selected.all().contains(needle), "{}", selected.all());
        assert!(examined.all().contains(needle), "{}", examined.all());
    }
}

both_backends!(header_fetch_of_a_large_folder);

/// The peak resident memory of a process (VmHWM), in KiB.
fn peak_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM")
}

/// COMPRESS=DEFLATE (RFC 4978): after `COMPRESS DEFLATE` both directions are
/// raw DEFLATE; every reply (IDLE pushes included) can be decoded when it
/// arrives; a second COMPRESS is refused; a decompression bomb meets the line
/// limit without the server's memory growing with it.
async fn compress_deflate(db: Db) {
    let (instance, server) = setup(db).await;
    let ca = instance.cert("ca.pem");
    let addr = server.addr("imaps");
    let mut c = imap_login(addr, &ca, JEAN, PW).await;
    let caps = c.expect("CAPABILITY", "OK").await;
    assert!(caps.untagged[0].contains(" COMPRESS=DEFLATE"), "{caps:?}");
    let r = c.expect("COMPRESS DEFLATE", "OK").await;
    assert!(r.untagged.is_empty(), "{r:?}");
    assert!(r.status.ends_with(" OK DEFLATE active"), "{r:?}");
    let mut z = common::Imap::new(common::deflate::Deflated::new(c.stream.into_inner()));

    // Plenty of compressible text: 300 KB of the same report lines.
    let body = "Compte rendu: examen sans particularite, controle dans six mois.\r\n".repeat(4600);
    let big = mail("compress-big", &body);
    let a = z.append("INBOX", "", &big).await;
    assert!(a.ok(), "{a:?}");
    z.expect("SELECT INBOX", "OK").await;
    let before = z.stream.get_ref().compressed_in;
    let f = z.expect("FETCH 1 (BODY.PEEK[])", "OK").await;
    let compressed = z.stream.get_ref().compressed_in - before;
    assert_eq!(f.untagged.len(), 1, "{}", f.status);
    let fetched = f.untagged[0].split_once('\n').expect("literal").1;
    assert!(fetched.starts_with(&String::from_utf8_lossy(&big).into_owned()));
    assert!(
        compressed < big.len() as u64 / 20,
        "{compressed} compressed octets for {}",
        big.len()
    );
    let again = z.expect("COMPRESS DEFLATE", "NO").await;
    assert_eq!(
        again.status.split_once(' ').unwrap().1,
        "NO [COMPRESSIONACTIVE] DEFLATE is already active"
    );

    // IDLE: a delivery is pushed while the client waits, so the burst was flushed.
    let tag = z.tag();
    z.send_raw(format!("{tag} IDLE\r\n").as_bytes()).await;
    let cont = z.read_line().await;
    assert!(cont.starts_with('+'), "{cont}");
    let mut other = imap_login(addr, &ca, JEAN, PW).await;
    other.append("INBOX", "", &mail("compress-idle", "x")).await;
    let pushed = tokio::time::timeout(Duration::from_secs(10), z.read_line())
        .await
        .expect("IDLE heard the APPEND");
    assert_eq!(pushed, "* 2 EXISTS");
    z.send_raw(b"DONE\r\n").await;
    assert!(z.read_until_tagged(&tag).await.ok());

    // A bomb: 64 MiB without a line end, sent as about 64 KiB. The line limit
    // answers, the rest of the line is dropped as it is inflated, and the
    // server's peak memory does not follow the inflated size.
    let pid = server.pid();
    let peak_before = peak_rss_kib(pid);
    let tag = z.tag();
    let chunk = vec![b'a'; 1024 * 1024];
    let mut bomb = z
        .stream
        .get_mut()
        .compress(format!("{tag} NOOP ").as_bytes());
    for _ in 0..64 {
        bomb.extend(z.stream.get_mut().compress(&chunk));
    }
    bomb.extend(z.stream.get_mut().compress(b"\r\n"));
    assert!(bomb.len() < 1024 * 1024, "{}", bomb.len());
    {
        use tokio::io::AsyncWriteExt;
        let tls = z.stream.get_mut().get_mut();
        tls.write_all(&bomb).await.unwrap();
        tls.flush().await.unwrap();
    }
    let r = z.read_until_tagged(&tag).await;
    assert_eq!(
        r.status,
        format!("{tag} BAD [TOOBIG] Command line longer than 65536 octets")
    );
    z.expect("NOOP", "OK").await;
    // The peak is the whole process's (other sessions and the allocator's
    // arenas move it by a few MiB): an eighth of the inflated size is far
    // below what buffering the line would take.
    let grown = peak_rss_kib(pid).saturating_sub(peak_before);
    assert!(grown < 8 * 1024, "peak memory grew by {grown} KiB");
    z.expect("LOGOUT", "OK").await;
}

/// UTF8=ACCEPT (RFC 6855): after `ENABLE UTF8=ACCEPT` mailbox names are
/// UTF-8 quoted strings both ways and APPEND takes `UTF8 (~{n}…)`; a message
/// with UTF-8 header fields is stored and served octet for octet. A session
/// that did not enable it keeps modified UTF-7 and gets BAD for UTF-8.
async fn utf8_accept(db: Db) {
    let (instance, server) = setup(db).await;
    let ca = instance.cert("ca.pem");
    let addr = server.addr("imaps");
    let mut c = imap_login(addr, &ca, JEAN, PW).await;
    let caps = c.expect("CAPABILITY", "OK").await;
    assert!(caps.untagged[0].contains(" UTF8=ACCEPT"), "{caps:?}");
    c.expect("CREATE \"Résultats\"", "BAD").await;
    let e = c.expect("ENABLE UTF8=ACCEPT", "OK").await;
    assert_eq!(e.untagged, vec!["* ENABLED UTF8=ACCEPT".to_string()]);
    c.expect("CREATE \"Résultats/Échographies\"", "OK").await;
    let l = c.expect("LIST \"\" \"R*\"", "OK").await;
    assert_eq!(
        l.untagged,
        vec![
            "* LIST (\\HasChildren) \"/\" \"Résultats\"".to_string(),
            "* LIST (\\HasNoChildren) \"/\" \"Résultats/Échographies\"".to_string(),
        ]
    );
    let message = "From: =?utf-8?q?Zo=C3=A9?= <zoe.lefevre@hopital-a.mes.test>\r\n\
                   To: Jean Dupont <jean.dupont@hopital-a.mes.test>\r\n\
                   Subject: Échographie cardiaque de Mme Lefèvre\r\n\
                   Date: Tue, 24 Nov 2026 10:00:00 +0100\r\n\
                   Message-ID: <utf8-accept@test>\r\n\r\nFEVG conservée.\r\n";
    let tag = c.tag();
    let mut append = format!(
        "{tag} APPEND \"Résultats/Échographies\" (\\Seen) UTF8 (~{{{}+}}\r\n",
        message.len()
    )
    .into_bytes();
    append.extend_from_slice(message.as_bytes());
    append.extend_from_slice(b")\r\n");
    c.send_raw(&append).await;
    let r = c.read_until_tagged(&tag).await;
    assert!(r.ok(), "{r:?}");
    assert!(r.status.contains("[APPENDUID "), "{r:?}");
    let s = c
        .expect("STATUS \"Résultats/Échographies\" (MESSAGES)", "OK")
        .await;
    assert_eq!(
        s.untagged,
        vec!["* STATUS \"Résultats/Échographies\" (MESSAGES 1)".to_string()]
    );
    c.expect("SELECT \"Résultats/Échographies\"", "OK").await;
    let f = c
        .expect(
            "FETCH 1 (FLAGS BODY.PEEK[HEADER.FIELDS (SUBJECT)] BODY.PEEK[])",
            "OK",
        )
        .await;
    let all = f.all();
    assert!(all.contains("FLAGS (\\Seen \\Recent)"), "{all}");
    assert!(
        all.contains("Subject: Échographie cardiaque de Mme Lefèvre\r\n\r\n"),
        "{all}"
    );
    assert!(all.contains(message), "{all}");
    let sr = c.expect("SEARCH SUBJECT \"Lefèvre\"", "OK").await;
    assert_eq!(sr.untagged, vec!["* SEARCH 1".to_string()]);

    // Another session, without ENABLE: modified UTF-7, and the message as stored.
    let mut old = imap_login(addr, &ca, JEAN, PW).await;
    let l = old.expect("LIST \"\" \"R*\"", "OK").await;
    assert_eq!(
        l.untagged,
        vec![
            "* LIST (\\HasChildren) \"/\" R&AOk-sultats".to_string(),
            "* LIST (\\HasNoChildren) \"/\" R&AOk-sultats/&AMk-chographies".to_string(),
        ]
    );
    old.expect("SELECT \"Résultats/Échographies\"", "BAD").await;
    old.expect("SELECT R&AOk-sultats/&AMk-chographies", "OK")
        .await;
    let f = old.expect("FETCH 1 (BODY.PEEK[])", "OK").await;
    assert!(f.all().contains(message), "{}", f.all());
    let tag = old.tag();
    let mut append = format!("{tag} APPEND INBOX UTF8 (~{{{}+}}\r\n", message.len()).into_bytes();
    append.extend_from_slice(message.as_bytes());
    append.extend_from_slice(b")\r\n");
    old.send_raw(&append).await;
    let r = old.read_until_tagged(&tag).await;
    assert_eq!(r.kind(), "BAD", "{r:?}");
    old.expect("NOOP", "OK").await;
}

both_backends!(compress_deflate, utf8_accept);

/// The SORT/THREAD fixtures (`tests/fixtures/imap/sort/`).
fn sort_fixture(name: &str) -> Vec<u8> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/imap/sort")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// APPEND with flags and INTERNALDATE, as a LITERAL+ literal.
async fn append_dated<S>(
    c: &mut common::Imap<S>,
    mailbox: &str,
    flags: &str,
    date: &str,
    msg: &[u8],
) where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let tag = c.tag();
    let mut command = format!(
        "{tag} APPEND {mailbox} ({flags}) \"{date}\" {{{}+}}\r\n",
        msg.len()
    )
    .into_bytes();
    command.extend_from_slice(msg);
    command.extend_from_slice(b"\r\n");
    c.send_raw(&command).await;
    let r = c.read_until_tagged(&tag).await;
    assert!(r.ok(), "{r:?}");
}

/// The fixture mailbox as `dovecot.py` builds it: a throwaway message
/// (expunged, so UIDs are sequence numbers + 1), then the 23 messages of
/// `manifest.txt`; `sorttest` is left selected.
async fn sort_fixture_mailbox<S>(c: &mut common::Imap<S>)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    c.expect("CREATE sorttest", "OK").await;
    append_dated(
        c,
        "sorttest",
        "\\Deleted",
        "01-Jan-2024 00:00:00 +0000",
        b"Subject: gone\r\n\r\ngone\r\n",
    )
    .await;
    let manifest = String::from_utf8(sort_fixture("manifest.txt")).unwrap();
    for line in manifest.lines() {
        let parts: Vec<&str> = line.split_whitespace().collect();
        let date = parts[1..4].join(" ");
        let flags = parts[4..].join(" ");
        append_dated(c, "sorttest", &flags, &date, &sort_fixture(parts[0])).await;
    }
    c.expect("SELECT sorttest", "OK").await;
    c.expect("EXPUNGE", "OK").await;
}

/// SORT, THREAD, ESORT and PARTIAL on the fixture messages, compared byte for
/// byte with what Dovecot 2.3 answered (`expected.txt`; the one difference
/// allowed is Dovecot's trailing space after an empty `* THREAD`).
async fn sort_and_thread_as_dovecot(db: Db) {
    let (instance, server) = setup(db).await;
    let ca = instance.cert("ca.pem");
    let mut c = imap_login(server.addr("imaps"), &ca, JEAN, PW).await;
    let caps = c.expect("CAPABILITY", "OK").await.untagged.join(" ");
    for cap in [
        " SORT ",
        " SORT=DISPLAY ",
        " THREAD=ORDEREDSUBJECT ",
        " THREAD=REFERENCES ",
        " ESORT ",
        " CONTEXT=SEARCH ",
    ] {
        assert!(caps.contains(cap), "{cap} in {caps}");
    }
    sort_fixture_mailbox(&mut c).await;
    let expected = String::from_utf8(sort_fixture("expected.txt")).unwrap();
    let mut checked = 0;
    for block in expected.split("C: ").filter(|b| !b.is_empty()) {
        let mut lines = block.split("\r\n").filter(|l| !l.is_empty());
        let command = lines.next().unwrap();
        let tag = c.tag();
        c.send_raw(format!("{tag} {command}\r\n").as_bytes()).await;
        let r = c.read_until_tagged(&tag).await;
        assert!(r.ok(), "{command}: {r:?}");
        let want: Vec<String> = lines
            .map(|l| if l == "* THREAD " { "* THREAD" } else { l })
            .map(|l| l.replace("{tag}", &tag))
            .collect();
        assert_eq!(r.untagged, want, "{command}");
        checked += 1;
    }
    assert_eq!(checked, 45);
    // What Dovecot refuses, we refuse.
    for bad in [
        "THREAD FOO UTF-8 ALL",
        "SORT () UTF-8 ALL",
        "SORT (REVERSE) UTF-8 ALL",
        "SORT RETURN (FOO) (DATE) UTF-8 ALL",
        "SORT RETURN (PARTIAL 0:4) (DATE) UTF-8 ALL",
    ] {
        c.expect(bad, "BAD").await;
    }
    c.expect("SORT (DATE) KOI8-R ALL", "NO").await;
}

/// CONTEXT=SEARCH: results of `RETURN (UPDATE)` kept up to date while another
/// session changes the mailbox, and the session's own STORE, as Dovecot 2.3
/// answered the same script (the ESEARCH and EXPUNGE lines of the first
/// session are compared).
async fn sort_contexts_as_dovecot(db: Db) {
    let (instance, server) = setup(db).await;
    let ca = instance.cert("ca.pem");
    let mut a = imap_login(server.addr("imaps"), &ca, JEAN, PW).await;
    sort_fixture_mailbox(&mut a).await;
    let mut b = imap_login(server.addr("imaps"), &ca, JEAN, PW).await;
    b.expect("SELECT sorttest", "OK").await;
    // (session, command, what the first session gets: ESEARCH and EXPUNGE lines)
    let script: &[(&str, &str, &[&str])] = &[
        (
            "a",
            "SEARCH RETURN (UPDATE) UNSEEN",
            &["* ESEARCH (TAG \"{a1}\")"],
        ),
        (
            "a",
            "SORT RETURN (UPDATE ALL) (DATE) UTF-8 ALL",
            &["* ESEARCH (TAG \"{a2}\") ALL 5:6,1:2,7,3:4,22,9,11,10,13,12,15:21,23,8,14"],
        ),
        (
            "a",
            "SORT RETURN (UPDATE COUNT MIN) (SUBJECT) UTF-8 UNSEEN",
            &["* ESEARCH (TAG \"{a3}\") MIN 12 COUNT 21"],
        ),
        (
            "a",
            "UID SEARCH RETURN (UPDATE ALL) SUBJECT agenda",
            &["* ESEARCH (TAG \"{a4}\") UID ALL 2:5,10,19,23"],
        ),
        (
            "a",
            "UID SORT RETURN (UPDATE) (DATE) UTF-8 UNDELETED FLAGGED",
            &["* ESEARCH (TAG \"{a5}\") UID"],
        ),
        ("b", "STORE 1 +FLAGS (\\Seen)", &[]),
        (
            "a",
            "NOOP",
            &[
                "* ESEARCH (TAG \"{a1}\") REMOVEFROM (0 1)",
                "* ESEARCH (TAG \"{a3}\") REMOVEFROM (0 1)",
            ],
        ),
        ("b", "STORE 1,2 -FLAGS (\\Seen)", &[]),
        (
            "a",
            "NOOP",
            &[
                "* ESEARCH (TAG \"{a1}\") ADDTO (0 1:2)",
                "* ESEARCH (TAG \"{a3}\") ADDTO (0 1:2)",
            ],
        ),
        ("b", "APPEND", &[]),
        (
            "a",
            "NOOP",
            &[
                "* ESEARCH (TAG \"{a1}\") ADDTO (0 24)",
                "* ESEARCH (TAG \"{a2}\") ADDTO (0 24)",
                "* ESEARCH (TAG \"{a3}\") ADDTO (0 24)",
                "* ESEARCH (TAG \"{a4}\") UID ADDTO (0 25)",
            ],
        ),
        ("b", "STORE 3 +FLAGS (\\Deleted \\Flagged)", &[]),
        ("a", "NOOP", &[]),
        ("b", "EXPUNGE", &[]),
        (
            "a",
            "NOOP",
            &[
                "* ESEARCH (TAG \"{a1}\") REMOVEFROM (0 3)",
                "* ESEARCH (TAG \"{a2}\") REMOVEFROM (0 3)",
                "* ESEARCH (TAG \"{a3}\") REMOVEFROM (0 3)",
                "* ESEARCH (TAG \"{a4}\") UID REMOVEFROM (0 4)",
                "* 3 EXPUNGE",
            ],
        ),
        (
            "a",
            "STORE 4 +FLAGS (\\Flagged \\Seen)",
            // Our own change, answered in the STORE (4 was seen already).
            &["* ESEARCH (TAG \"{a5}\") UID ADDTO (0 6)"],
        ),
        ("a", "CANCELUPDATE \"{a1}\"", &[]),
        ("b", "STORE 1 +FLAGS (\\Seen)", &[]),
        ("a", "NOOP", &["* ESEARCH (TAG \"{a3}\") REMOVEFROM (0 1)"]),
        ("a", "CANCELUPDATE \"{a2}\" \"{a3}\"", &[]),
        ("a", "NOOP", &[]),
    ];
    let mut tags: Vec<(String, String)> = Vec::new();
    let fill = |s: &str, tags: &[(String, String)]| {
        tags.iter()
            .fold(s.to_string(), |s, (label, tag)| s.replace(label, tag))
    };
    for (i, (who, command, want)) in script.iter().enumerate() {
        if *who == "b" {
            if *command == "APPEND" {
                append_dated(
                    &mut b,
                    "sorttest",
                    "",
                    "20-Feb-2024 10:00:00 +0000",
                    b"Subject: Re: Meeting agenda\r\nDate: Thu, 4 Jan 2024 11:00:00 +0000\r\n\r\nx\r\n",
                )
                .await;
            } else {
                b.expect(command, "OK").await;
            }
            continue;
        }
        let tag = a.tag();
        if i < 5 {
            tags.push((format!("{{a{}}}", i + 1), tag.clone()));
        }
        let command = fill(command, &tags);
        a.send_raw(format!("{tag} {command}\r\n").as_bytes()).await;
        let r = a.read_until_tagged(&tag).await;
        assert!(r.ok(), "{command}: {r:?}");
        let got: Vec<String> = r
            .untagged
            .iter()
            .filter(|l| l.starts_with("* ESEARCH") || l.ends_with(" EXPUNGE"))
            .cloned()
            .collect();
        let want: Vec<String> = want.iter().map(|w| fill(w, &tags)).collect();
        assert_eq!(got, want, "{command}:\n{}", r.all());
    }
    // A context cancelled already, or never made: NO (as Dovecot).
    let r = a.cmd(&fill("CANCELUPDATE \"{a3}\"", &tags)).await;
    assert_eq!(r.kind(), "NO", "{r:?}");
    // Sequence numbers are not kept up to date: answered, updates refused.
    let r = a.expect("SEARCH RETURN (UPDATE ALL) 1:3", "OK").await;
    assert!(r.untagged[1].contains("[NOUPDATE \""), "{r:?}");
}

both_backends!(sort_and_thread_as_dovecot, sort_contexts_as_dovecot);

/// Python's imaplib `sort()` and `thread()` over the fixture messages.
#[tokio::test]
async fn python_imaplib_sort_and_thread() {
    let (instance, server) = setup(Db::Sqlite).await;
    let ca = instance.cert("ca.pem");
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/imap/sort");
    let script = format!(
        r#"
import imaplib, os, ssl
ctx = ssl.create_default_context(cafile={ca:?})
m = imaplib.IMAP4_SSL("127.0.0.1", {port}, ssl_context=ctx)
m.login({JEAN:?}, {PW:?})
m.create("sorttest")
for line in open(os.path.join({dir:?}, "manifest.txt")):
    parts = line.split()
    data = open(os.path.join({dir:?}, parts[0]), "rb").read()
    flags = "(%s)" % " ".join(parts[4:])
    typ, _ = m.append("sorttest", flags, '"%s"' % " ".join(parts[1:4]), data)
    assert typ == "OK"
typ, data = m.select("sorttest")
assert data == [b"23"], data
# Dovecot 2.3's answers on the same messages (UIDs are sequence numbers here).
typ, data = m.sort("(DATE)", "UTF-8", "ALL")
assert typ == "OK" and data == [b"5 6 1 2 7 3 4 22 9 11 10 13 12 15 16 17 18 19 20 21 23 8 14"], data
typ, data = m.sort("REVERSE SUBJECT", "UTF-8", "ALL")
assert data == [b"15 16 17 1 2 3 4 9 18 22 19 20 5 6 7 8 14 23 10 11 21 12 13"], data
typ, data = m.uid("SORT", "(FROM SUBJECT)", "UTF-8", "ALL")
assert data == [b"13 23 12 6 19 1 3 17 11 5 7 20 2 22 16 10 21 8 15 14 4 9 18"], data
typ, data = m.thread("REFERENCES", "UTF-8", "ALL")
assert typ == "OK" and data == [b"(5 (6 7)(8))((1 (2 3)(4))(9 22 23)(18))((11)(10 21))(13)(12)(15 (16)(17))(20 19)(14)"], data
typ, data = m.thread("ORDEREDSUBJECT", "UTF-8", "SUBJECT", "agenda")
assert data == [b"(1 (2)(3)(4)(22)(9)(18))"], data
typ, data = m.uid("THREAD", "REFERENCES", "UTF-8", "UNSEEN")
assert data == [b"((6 7)(8))((1 (3)(4))(9 22 23)(18))((11)(10 21))(13)(12)(15 (16)(17))(20 19)(14)"], data
m.logout()
print("imaplib sort ok")
"#,
        ca = ca.to_str().unwrap(),
        port = server.addr("imaps").port(),
        dir = dir.to_str().unwrap(),
    );
    let out = std::process::Command::new("python3")
        .arg("-c")
        .arg(&script)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("imaplib sort ok"));
}

/// The IMAP form of a mailbox name the tests below use: an atom when it can
/// be one (`]` included, as imap-codec writes it), else a quoted string.
fn name_arg(name: &str) -> String {
    if name.chars().any(|c| "(){ %*\"\\".contains(c)) {
        format!("\"{}\"", name.replace('\\', "\\\\").replace('"', "\\\""))
    } else {
        name.to_string()
    }
}

/// Any mailbox name a client can write (an atom, a quoted string) gets a
/// tagged answer and the session goes on (issue 17): `NO [NONEXISTENT]` for
/// a missing one, BAD for invalid modified UTF-7 (control characters
/// included, however encoded); each valid name can be created, listed,
/// selected, renamed and deleted. Dovecot 2.3 gives the same answers except
/// for invalid modified UTF-7, which it answers NO ("Mailbox name is not
/// valid mUTF-7"), and names beginning with `~`, which it refuses.
async fn mailbox_names_get_an_answer(db: Db) {
    let (instance, server) = setup(db).await;
    let ca = instance.cert("ca.pem");
    let mut c = imap_login(server.addr("imaps"), &ca, JEAN, PW).await;
    c.append("INBOX", "", &mail("names", "x")).await;
    let mut names = vec!["!#$&-'+,-.0123456789:;<=>?@^_`|}~".to_string()];
    for b in 0x20u8..0x7f {
        let ch = char::from(b);
        if ch == '&' || ch == '/' {
            continue;
        }
        names.push(format!("x{ch}y"));
        if ch != ' ' {
            names.push(format!("{ch}z"));
        }
    }
    for name in &names {
        let arg = name_arg(name);
        let renamed = name_arg(&format!("{name}2"));
        c.expect("SELECT INBOX", "OK").await;
        for missing in [
            format!("SELECT {arg}"),
            format!("STATUS {arg} (MESSAGES)"),
            format!("DELETE {arg}"),
            format!("RENAME {arg} {renamed}"),
            format!("SUBSCRIBE {arg}"),
        ] {
            let r = c.expect(&missing, "NO").await;
            assert!(r.status.contains("NO [NONEXISTENT]"), "{missing}: {r:?}");
        }
        c.expect(&format!("CREATE {arg}"), "OK").await;
        let l = c.expect(&format!("LIST \"\" {arg}"), "OK").await;
        assert_eq!(
            l.untagged,
            [format!("* LIST (\\HasNoChildren) \"/\" {arg}")],
            "{name}"
        );
        let s = c.expect(&format!("STATUS {arg} (MESSAGES)"), "OK").await;
        assert_eq!(
            s.untagged,
            [format!("* STATUS {arg} (MESSAGES 0)")],
            "{name}"
        );
        c.expect("SELECT INBOX", "OK").await;
        c.expect(&format!("COPY 1 {arg}"), "OK").await;
        c.expect(&format!("SELECT {arg}"), "OK").await;
        c.expect(&format!("RENAME {arg} {renamed}"), "OK").await;
        c.expect(&format!("DELETE {renamed}"), "OK").await;
    }
    // Invalid modified UTF-7, control characters included: BAD, never a drop.
    for arg in [
        "&",
        "x&y",
        "&AOk",
        "&AAA-",
        "&AA0ACg-",
        "&ACY-",
        "\"&AH8-\"",
    ] {
        for command in ["CREATE", "SELECT", "EXAMINE", "DELETE", "SUBSCRIBE"] {
            c.expect(&format!("{command} {arg}"), "BAD").await;
        }
        c.expect(&format!("STATUS {arg} (MESSAGES)"), "BAD").await;
        c.expect(&format!("RENAME INBOX {arg}"), "BAD").await;
    }
    c.expect("LIST \"\" &", "BAD").await;
    // `$` is an ordinary character of a name, also with a mailbox selected.
    c.expect("SELECT INBOX", "OK").await;
    c.expect("CREATE $", "OK").await;
    let mut l = c.expect("LIST \"\" ($ INBOX)", "OK").await.untagged;
    l.sort();
    assert_eq!(
        l,
        [
            "* LIST (\\HasNoChildren) \"/\" $",
            "* LIST (\\HasNoChildren) \"/\" INBOX"
        ],
    );
    let s = c.expect("STATUS $ (MESSAGES)", "OK").await;
    assert_eq!(s.untagged, ["* STATUS $ (MESSAGES 0)"]);
    // In an IMAP4rev2 session the names are UTF-8: `&` is a character.
    let mut v2 = imap_login(server.addr("imaps"), &ca, JEAN, PW).await;
    v2.expect("ENABLE IMAP4rev2", "OK").await;
    let r = v2.expect("SELECT \"a&b\"", "NO").await;
    assert!(r.status.contains("NO [NONEXISTENT]"), "{r:?}");
    v2.expect("CREATE \"a&b\"", "OK").await;
    let l = c.expect("LIST \"\" a&-b", "OK").await;
    assert_eq!(l.untagged, ["* LIST (\\HasNoChildren) \"/\" a&-b"]);
    c.expect("NOOP", "OK").await;
    v2.expect("NOOP", "OK").await;
}

/// RFC 5258's extended LIST (several patterns, selection and return
/// options, RECURSIVEMATCH with CHILDINFO) and RFC 3501's LSUB levels,
/// compared with Dovecot 2.3 on the same mailboxes (p1 and p1/c1 not
/// subscribed, p1/c1/g1, p2 and p2/c2 subscribed). Where the lines differ
/// from Dovecot's, it is in what the RFCs leave open: MES always gives the
/// CHILDREN attributes (RFC 5258 §4 allows it) and writes CHILDINFO's tag
/// quoted as RFC 5258's examples do (Dovecot: `(CHILDINFO ("SUBSCRIBED"))`).
async fn list_extended_and_lsub(db: Db) {
    let (instance, server) = setup(db).await;
    let ca = instance.cert("ca.pem");
    let mut c = imap_login(server.addr("imaps"), &ca, JEAN, PW).await;
    for command in [
        "CREATE p1/c1/g1",
        "CREATE p2/c2",
        "UNSUBSCRIBE p1",
        "UNSUBSCRIBE p1/c1",
        "SUBSCRIBE p1/c1/g1",
        "SUBSCRIBE p2",
        "SUBSCRIBE p2/c2",
    ] {
        c.expect(command, "OK").await;
    }
    let lines = |r: common::ImapReply| r.untagged;
    // Dovecot, byte for byte: `* LSUB (\Noselect) "/" p1/c1`.
    assert_eq!(
        lines(c.expect("LSUB \"\" p1/%", "OK").await),
        ["* LSUB (\\Noselect) \"/\" p1/c1"]
    );
    assert_eq!(
        lines(c.expect("LSUB \"\" p%", "OK").await),
        [
            "* LSUB (\\Noselect) \"/\" p1",
            "* LSUB (\\HasChildren) \"/\" p2"
        ]
    );
    assert_eq!(
        lines(c.expect("LSUB \"\" p1/*", "OK").await),
        ["* LSUB (\\HasNoChildren) \"/\" p1/c1/g1"]
    );
    // Several patterns, each name once.
    assert_eq!(
        lines(c.expect("LIST \"\" (p1 p1 \"p2*\")", "OK").await),
        [
            "* LIST (\\HasChildren) \"/\" p1",
            "* LIST (\\HasChildren) \"/\" p2",
            "* LIST (\\HasNoChildren) \"/\" p2/c2",
        ]
    );
    assert_eq!(
        lines(c.expect("LIST \"p1/\" (% c1/%)", "OK").await),
        [
            "* LIST (\\HasChildren) \"/\" p1/c1",
            "* LIST (\\HasNoChildren) \"/\" p1/c1/g1",
        ]
    );
    assert_eq!(
        lines(
            c.expect(
                "LIST (SUBSCRIBED) \"\" (p1 p2 p2/c2) RETURN (STATUS (MESSAGES))",
                "OK"
            )
            .await
        ),
        [
            "* LIST (\\HasChildren \\Subscribed) \"/\" p2",
            "* STATUS p2 (MESSAGES 0)",
            "* LIST (\\HasNoChildren \\Subscribed) \"/\" p2/c2",
            "* STATUS p2/c2 (MESSAGES 0)",
        ]
    );
    assert_eq!(
        lines(
            c.expect("LIST (SUBSCRIBED RECURSIVEMATCH) \"\" p%", "OK")
                .await
        ),
        [
            "* LIST (\\HasChildren) \"/\" p1 (\"CHILDINFO\" (\"SUBSCRIBED\"))",
            "* LIST (\\HasChildren \\Subscribed) \"/\" p2 (\"CHILDINFO\" (\"SUBSCRIBED\"))",
        ]
    );
    assert_eq!(
        lines(
            c.expect("LIST (SUBSCRIBED REMOTE RECURSIVEMATCH) \"\" p1/%", "OK")
                .await
        ),
        ["* LIST (\\HasChildren) \"/\" p1/c1 (\"CHILDINFO\" (\"SUBSCRIBED\"))"]
    );
    assert_eq!(
        lines(c.expect("LIST (SUBSCRIBED) \"\" p%", "OK").await),
        ["* LIST (\\HasChildren \\Subscribed) \"/\" p2"]
    );
    // The extended syntax ignores empty patterns (RFC 5258 §3), as Dovecot:
    // only the basic `LIST "" ""` gives the hierarchy delimiter.
    for command in [
        "LIST (SUBSCRIBED) \"\" \"\"",
        "LIST () \"\" \"\"",
        "LIST (REMOTE) \"\" \"\"",
        "LIST \"\" \"\" RETURN (CHILDREN)",
        "LIST \"\" (\"\")",
        "LIST \"\" ()",
    ] {
        assert!(lines(c.expect(command, "OK").await).is_empty(), "{command}");
    }
    assert_eq!(
        lines(c.expect("LIST \"\" \"\"", "OK").await),
        ["* LIST (\\Noselect) \"/\" \"\""]
    );
    for command in [
        "LIST (RECURSIVEMATCH) \"\" %",
        "LIST (REMOTE RECURSIVEMATCH) \"\" %",
        "LIST (FOO) \"\" %",
        "LIST \"\" % RETURN (FOO)",
        "LIST \"\" (p1 (p2))",
    ] {
        c.expect(command, "BAD").await;
    }
    // A parent whose mailbox is deleted stays a level of the hierarchy.
    // Dovecot, byte for byte: `* LIST (\Noselect \HasChildren) "/" p1`.
    c.expect("DELETE p1", "OK").await;
    assert_eq!(
        lines(c.expect("LIST \"\" p%", "OK").await),
        [
            "* LIST (\\Noselect \\HasChildren) \"/\" p1",
            "* LIST (\\HasChildren) \"/\" p2"
        ]
    );
    assert_eq!(
        lines(c.expect("LSUB \"\" p%", "OK").await),
        [
            "* LSUB (\\Noselect) \"/\" p1",
            "* LSUB (\\HasChildren) \"/\" p2"
        ]
    );
    c.expect("SELECT p1", "NO").await;
}

/// A keyword is in an untagged FLAGS (and PERMANENTFLAGS) before a FETCH
/// response shows it, whoever set it (RFC 3501 §7.2.6). The FLAGS lines are
/// Dovecot 2.3's, byte for byte, for the same commands.
async fn keywords_are_announced_before_use(db: Db) {
    let (instance, server) = setup(db).await;
    let ca = instance.cert("ca.pem");
    let addr = server.addr("imaps");
    let mut a = imap_login(addr, &ca, JEAN, PW).await;
    let mut b = imap_login(addr, &ca, JEAN, PW).await;
    const SYS: &str = "\\Answered \\Flagged \\Deleted \\Seen \\Draft";
    a.expect("CREATE kw", "OK").await;
    a.append("kw", "", &mail("kw1", "x")).await;
    a.expect("SELECT kw", "OK").await;
    let r = a.expect("STORE 1 +FLAGS ($Foo)", "OK").await;
    assert_eq!(r.untagged[0], format!("* FLAGS ({SYS} $Foo)"));
    assert!(
        r.untagged[1].starts_with(&format!("* OK [PERMANENTFLAGS ({SYS} $Foo \\*)]")),
        "{r:?}"
    );
    assert!(r.untagged[2].starts_with("* 1 FETCH (FLAGS ("), "{r:?}");
    // APPEND into the selected mailbox: FLAGS before EXISTS.
    let r = a.append("kw", "$Bar", &mail("kw2", "x")).await;
    assert_eq!(r.untagged[0], format!("* FLAGS ({SYS} $Foo $Bar)"), "{r:?}");
    assert_eq!(r.untagged[2], "* 2 EXISTS", "{r:?}");
    let r = b.expect("EXAMINE kw", "OK").await;
    assert_eq!(r.untagged[0], format!("* FLAGS ({SYS} $Foo $Bar)"));
    assert!(r.all().contains("* OK [PERMANENTFLAGS ()]"), "{r:?}");
    // STORE.SILENT announces too; the other session hears it at NOOP.
    let r = a.expect("STORE 1 +FLAGS.SILENT (Baz)", "OK").await;
    assert_eq!(r.untagged[0], format!("* FLAGS ({SYS} $Foo $Bar Baz)"));
    let r = b.expect("NOOP", "OK").await;
    assert_eq!(r.untagged[0], format!("* FLAGS ({SYS} $Foo $Bar Baz)"));
    assert!(
        r.untagged[1].starts_with("* OK [PERMANENTFLAGS ()]"),
        "{r:?}"
    );
    assert!(
        r.untagged[2].starts_with("* 1 FETCH (FLAGS ($Foo Baz)"),
        "{r:?}"
    );
    // A third session sets one; `a` meets it first in a FETCH.
    let mut c = imap_login(addr, &ca, JEAN, PW).await;
    c.expect("SELECT kw", "OK").await;
    c.expect("STORE 2 +FLAGS.SILENT (Qux)", "OK").await;
    let r = a.expect("FETCH 1:* FLAGS", "OK").await;
    assert_eq!(r.untagged[0], format!("* FLAGS ({SYS} $Foo $Bar Baz Qux)"));
    assert!(
        r.untagged[1].starts_with(&format!(
            "* OK [PERMANENTFLAGS ({SYS} $Foo $Bar Baz Qux \\*)]"
        )),
        "{r:?}"
    );
    assert!(
        r.untagged[3].starts_with("* 2 FETCH (FLAGS ($Bar Qux"),
        "{r:?}"
    );
    // Known keywords are not announced again.
    let r = a.expect("STORE 2 +FLAGS ($foo)", "OK").await;
    assert!(!r.all().contains("* FLAGS"), "{r:?}");
}

fn dovecot_search_messages() -> [Vec<u8>; 3] {
    [
        b"From: a@b.example\r\nTo: groupname: x@y.example, z@w.example;\r\nCc: Team Name:;\r\n\
          Bcc: undisclosed-recipients:;\r\nDate: Sun, 25 Mar 2007 00:00:00 +0200\r\nSubject: one\r\n\r\nbody\r\n"
            .to_vec(),
        b"From: Some Group: a@b.example;\r\nTo: plain@y.example\r\nDate: Sat, 24 Mar 2007 23:30:00 -0700\r\n\
          Subject: two\r\n\r\nbody\r\n"
            .to_vec(),
        b"From: c@d.example\r\nTo: \"Quoted, Group\": q@y.example;\r\nDate: Mon, 26 Mar 2007 01:00:00 +1400\r\n\
          Subject: three\r\n\r\nbody\r\n"
            .to_vec(),
    ]
}

/// SENTBEFORE/SENTON/SENTSINCE take the `Date:` header's day in its own zone
/// (RFC 3501 §6.4.4), and FROM/TO/CC/BCC match group names (RFC 5322 group
/// syntax) the way Dovecot writes address lists for searching. Every
/// expected line is Dovecot 2.3's answer on the same three messages.
async fn search_sent_dates_and_address_groups(db: Db) {
    let (instance, server) = setup(db).await;
    let ca = instance.cert("ca.pem");
    let mut c = imap_login(server.addr("imaps"), &ca, JEAN, PW).await;
    c.expect("CREATE srch", "OK").await;
    for m in dovecot_search_messages() {
        c.append("srch", "", &m).await;
    }
    c.expect("SELECT srch", "OK").await;
    for (key, dovecot) in [
        ("SENTON 25-Mar-2007", "* SEARCH 1"),
        ("SENTON 24-Mar-2007", "* SEARCH 2"),
        ("SENTON 26-Mar-2007", "* SEARCH 3"),
        ("SENTBEFORE 25-Mar-2007", "* SEARCH 2"),
        ("SENTSINCE 25-Mar-2007", "* SEARCH 1 3"),
        ("SENTBEFORE 26-Mar-2007", "* SEARCH 1 2"),
        ("SENTSINCE 26-Mar-2007", "* SEARCH 3"),
        ("TO groupname", "* SEARCH 1"),
        ("TO group", "* SEARCH 1 3"),
        ("TO x@y.example", "* SEARCH 1"),
        ("TO z@w", "* SEARCH 1"),
        ("CC \"Team Name\"", "* SEARCH 1"),
        ("CC team", "* SEARCH 1"),
        ("BCC undisclosed", "* SEARCH 1"),
        ("FROM \"Some Group\"", "* SEARCH 2"),
        ("FROM some", "* SEARCH 2"),
        ("FROM a@b", "* SEARCH 1 2"),
        ("TO \"Quoted, Group\"", "* SEARCH 3"),
        ("TO quoted", "* SEARCH 3"),
        ("TO q@y", "* SEARCH 3"),
        ("TO plain", "* SEARCH 2"),
        ("TO :", "* SEARCH 1 3"),
        ("TO ;", "* SEARCH 1 3"),
        ("TO ,", "* SEARCH 1 3"),
        ("FROM <", "* SEARCH 1 2 3"),
        ("FROM \"a@b.example\"", "* SEARCH 1 2"),
        ("TO \"x@y.example, z\"", "* SEARCH"),
    ] {
        let r = c.expect(&format!("SEARCH {key}"), "OK").await;
        assert_eq!(r.untagged, [dovecot], "SEARCH {key}");
    }
}

/// Runs each `(key, answer)` SEARCH and checks its one untagged line.
async fn search_answers<S>(c: &mut common::Imap<S>, expected: &[(&str, &str)], what: &str)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    for (key, answer) in expected {
        let r = c.expect(&format!("SEARCH {key}"), "OK").await;
        assert_eq!(r.untagged, [*answer], "SEARCH {key} ({what})");
    }
}

/// SEARCH SUBJECT/FROM/TO/CC/BCC on messages delivered over SMTP and APPEND
/// (which store the text these keys match, issue 17) answers as the content
/// path does: the same answers once the stored text is gone (rows written
/// before it existed), for one message and then for all.
async fn search_stored_headers_and_old_rows(db: Db) {
    let (instance, server) = setup(db).await;
    let ca = instance.cert("ca.pem");
    let data = format!(
        "From: Jean Dupont <{JEAN}>\r\nTo: Cardiologie: {JEAN};\r\n\
         Subject: =?utf-8?q?R=C3=A9sultats_IRM?=\r\n\r\nbonjour\r\n"
    );
    let code = common::submit(server.addr("submissions"), &ca, JEAN, PW, "", JEAN, &data).await;
    assert_eq!(code, 250);
    let mut c = imap_login(server.addr("imaps"), &ca, JEAN, PW).await;
    c.append("INBOX", "", &mail("bilan", "x")).await;
    c.append(
        "INBOX",
        "",
        b"From: =?utf-8?q?L=C3=A9a?= <lea@b.test>\r\nTo: a@a.test\r\nTo: Paul <p@c.test>\r\n\
          Cc: Groupe vide:;\r\nSubject: Compte rendu\r\n\r\ncorps\r\n",
    )
    .await;
    let sel = c.expect("SELECT INBOX", "OK").await.all();
    assert!(sel.contains("* 3 EXISTS"), "{sel}");
    let expected = [
        ("SUBJECT irm", "* SEARCH 1"),
        ("SUBJECT sultats", "* SEARCH 1"),
        ("SUBJECT BILAN", "* SEARCH 2"),
        ("SUBJECT \"\"", "* SEARCH 1 2 3"),
        ("SUBJECT \"compte rendu\"", "* SEARCH 3"),
        ("FROM marie", "* SEARCH 2"),
        ("FROM jean", "* SEARCH 1"),
        ("FROM lea@b", "* SEARCH 3"),
        ("TO cardiologie", "* SEARCH 1"),
        ("TO jean", "* SEARCH 1 2"),
        ("TO a@a.test", "* SEARCH 3"),
        ("TO paul", "* SEARCH 3"),
        ("CC groupe", "* SEARCH 3"),
        ("CC \"\"", "* SEARCH 3"),
        ("BCC \"\"", "* SEARCH"),
        ("OR SUBJECT bilan FROM lea", "* SEARCH 2 3"),
        ("NOT SUBJECT bilan", "* SEARCH 1 3"),
        ("SUBJECT compte BODY corps", "* SEARCH 3"),
    ];
    search_answers(&mut c, &expected, "stored text").await;

    let store = common::open_store(&instance).await;
    let stored: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM messages WHERE search_subject IS NOT NULL \
         AND search_from IS NOT NULL AND search_to IS NOT NULL \
         AND search_cc IS NOT NULL AND search_bcc IS NOT NULL",
    )
    .fetch_one(store.pool())
    .await
    .unwrap();
    assert_eq!(stored, 3, "SMTP and APPEND store the search text");
    let to: String = sqlx::query_scalar("SELECT search_to FROM messages WHERE search_cc <> ''")
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert!(
        to.starts_with('\n') && to.matches('\n').count() == 2 && to.contains("p@c.test"),
        "{to:?}"
    );

    let clear = "UPDATE messages SET search_subject = NULL, search_from = NULL, \
                 search_to = NULL, search_cc = NULL, search_bcc = NULL";
    sqlx::query(&format!(
        "{clear} WHERE id = (SELECT MIN(id) FROM messages)"
    ))
    .execute(store.pool())
    .await
    .unwrap();
    search_answers(&mut c, &expected, "first row NULL").await;
    sqlx::query(clear).execute(store.pool()).await.unwrap();
    search_answers(&mut c, &expected, "all rows NULL").await;
    store.close().await;
}

/// CONDSTORE with ESEARCH: the MODSEQ of `RETURN (MIN)`/`(MAX)` is that of
/// the message reported, for ALL and COUNT the highest of those found (RFC
/// 4731, RFC 7162 §3.1.5); the first CONDSTORE enabling command with a
/// mailbox selected has `[HIGHESTMODSEQ n]` in its tagged OK (Dovecot 2.3
/// sends it as an untagged `* OK [HIGHESTMODSEQ n] Highest` instead, and
/// its sdbox gives the messages one MODSEQ, so MIN and MAX cannot differ there).
async fn condstore_highestmodseq_and_esearch_modseq(db: Db) {
    let (instance, server) = setup(db).await;
    let ca = instance.cert("ca.pem");
    let mut c = imap_login(server.addr("imaps"), &ca, JEAN, PW).await;
    c.expect("CREATE ms", "OK").await;
    for i in 0..4 {
        c.append("ms", "", &mail(&format!("ms{i}"), "x")).await;
    }
    let sel = c.expect("SELECT ms", "OK").await.all();
    let highest: u64 = sel
        .split("[HIGHESTMODSEQ ")
        .nth(1)
        .and_then(|s| s.split(']').next())
        .and_then(|n| n.parse().ok())
        .expect("HIGHESTMODSEQ at SELECT");
    c.expect("STORE 1 +FLAGS.SILENT (\\Flagged)", "OK").await;
    c.expect("STORE 3 +FLAGS.SILENT (\\Seen)", "OK").await;
    c.expect("STORE 2 +FLAGS.SILENT (\\Seen)", "OK").await;
    // The first enabling command: the tagged OK has the HIGHESTMODSEQ.
    let r = c.expect("FETCH 1:* (MODSEQ)", "OK").await;
    let modseq: Vec<u64> = r
        .untagged
        .iter()
        .map(|l| {
            l.split("MODSEQ (")
                .nth(1)
                .and_then(|s| s.split(')').next())
                .and_then(|n| n.parse().ok())
                .expect("MODSEQ")
        })
        .collect();
    assert_eq!(modseq.len(), 4, "{r:?}");
    assert_eq!(modseq, [highest + 1, highest + 3, highest + 2, highest]);
    let top = highest + 3;
    assert!(
        r.status
            .contains(&format!("OK [HIGHESTMODSEQ {top}] FETCH completed")),
        "{r:?}"
    );
    let r = c.expect("FETCH 1 (MODSEQ)", "OK").await;
    assert!(!r.status.contains("HIGHESTMODSEQ"), "only the first: {r:?}");
    for (options, criteria, expected) in [
        ("MIN", "", format!("MIN 1 MODSEQ {}", modseq[0])),
        ("MAX", "", format!("MAX 4 MODSEQ {}", modseq[3])),
        ("MIN MAX", "", format!("MIN 1 MAX 4 MODSEQ {}", modseq[0])),
        ("MIN", "UNFLAGGED ", format!("MIN 2 MODSEQ {}", modseq[1])),
        ("COUNT", "UNFLAGGED ", format!("COUNT 3 MODSEQ {top}")),
        ("ALL", "", format!("ALL 1:4 MODSEQ {top}")),
        ("MIN COUNT", "", format!("MIN 1 COUNT 4 MODSEQ {top}")),
    ] {
        let tag = c.tag();
        c.send_raw(format!("{tag} SEARCH RETURN ({options}) {criteria}MODSEQ 1\r\n").as_bytes())
            .await;
        let r = c.read_until_tagged(&tag).await;
        assert_eq!(
            r.untagged,
            [format!("* ESEARCH (TAG \"{tag}\") {expected}")],
            "RETURN ({options}) {criteria}"
        );
    }
    // Each enabling command counts once per session: SEARCH MODSEQ first here.
    let mut d = imap_login(server.addr("imaps"), &ca, JEAN, PW).await;
    d.expect("SELECT ms", "OK").await;
    let r = d.expect("SEARCH MODSEQ 1", "OK").await;
    assert_eq!(r.untagged, [format!("* SEARCH 1 2 3 4 (MODSEQ {top})")]);
    assert!(
        r.status
            .contains(&format!("OK [HIGHESTMODSEQ {top}] SEARCH completed")),
        "{r:?}"
    );
    let mut e = imap_login(server.addr("imaps"), &ca, JEAN, PW).await;
    e.expect("SELECT ms", "OK").await;
    let r = e
        .expect("STORE 4 (UNCHANGEDSINCE 1) +FLAGS (\\Seen)", "OK")
        .await;
    assert!(r.status.contains("[MODIFIED 4]"), "{r:?}");
    assert!(
        r.untagged
            .contains(&format!("* OK [HIGHESTMODSEQ {top}] Highest")),
        "{r:?}"
    );
}

both_backends!(
    mailbox_names_get_an_answer,
    list_extended_and_lsub,
    keywords_are_announced_before_use,
    search_sent_dates_and_address_groups,
    search_stored_headers_and_old_rows,
    condstore_highestmodseq_and_esearch_modseq,
);

/// QUOTA, MULTIAPPEND and CATENATE over the real server: GETQUOTAROOT as a
/// client reads it, APPEND refused with OVERQUOTA, the operator's CLI.
async fn quota_multiappend_and_catenate(db: Db) {
    let instance = Instance::new(db).await;
    instance.add_user(JEAN, "professional", PW);
    instance.edit_config(|t| {
        t.replace("# storage = \"none\"", "storage = \"4K\" #")
            .replace("# messages = \"none\"", "messages = 10 #")
    });
    let server = instance.start();
    let ca = instance.cert("ca.pem");
    let mut c = imap_login(server.addr("imaps"), &ca, JEAN, PW).await;
    let caps = c.expect("CAPABILITY", "OK").await;
    for cap in [
        " QUOTA ",
        " QUOTA=RES-STORAGE ",
        " QUOTA=RES-MESSAGE",
        " MULTIAPPEND ",
        " CATENATE ",
    ] {
        assert!(caps.untagged[0].contains(cap), "{cap} in {caps:?}");
    }
    let r = c.expect("GETQUOTAROOT INBOX", "OK").await;
    assert_eq!(
        r.untagged,
        [
            "* QUOTAROOT INBOX \"\"",
            "* QUOTA \"\" (STORAGE 0 4 MESSAGE 0 10)"
        ]
    );
    c.expect("SETQUOTA \"\" (STORAGE 100000)", "NO").await;

    // Two messages in one APPEND, LITERAL+ and synchronising literals mixed.
    let (one, two) = (mail("one", "Premier."), mail("two", "Second."));
    let tag = c.tag();
    c.send_raw(format!("{tag} APPEND INBOX (\\Seen) {{{}+}}\r\n", one.len()).as_bytes())
        .await;
    c.send_raw(&one).await;
    c.send_raw(format!(" {{{}}}\r\n", two.len()).as_bytes())
        .await;
    let cont = c.read_line().await;
    assert!(cont.starts_with("+ "), "{cont}");
    c.send_raw(&two).await;
    c.send_raw(b"\r\n").await;
    let r = c.read_until_tagged(&tag).await;
    assert!(
        r.status.starts_with(&format!("{tag} OK [APPENDUID ")) && r.status.contains(" 1:2] "),
        "{r:?}"
    );

    // A draft from the first message's header, new text and the second's body.
    let text = "\r\nVoir ci-dessous.\r\n";
    let tag = c.tag();
    c.send_raw(
        format!(
            "{tag} APPEND Drafts (\\Draft) CATENATE (URL \"/INBOX/;UID=1/;SECTION=HEADER\" \
             TEXT {{{}+}}\r\n{text} URL \"imap://{}@mx.hopital-a.mes.test/INBOX/;UID=2/;SECTION=TEXT\")\r\n",
            text.len(),
            JEAN.replace('@', "%40"),
        )
        .as_bytes(),
    )
    .await;
    let r = c.read_until_tagged(&tag).await;
    assert!(r.ok(), "{r:?}");
    c.expect("SELECT Drafts", "OK").await;
    let r = c.expect("FETCH 1 BODY.PEEK[]", "OK").await;
    let one = String::from_utf8(one).unwrap();
    let expected = format!(
        "{}{text}Second.\r\n",
        &one[..one.find("\r\n\r\n").unwrap() + 4]
    );
    assert_eq!(
        r.untagged[0],
        format!("* 1 FETCH (BODY[] {{{}}}\n{expected})", expected.len())
    );
    let r = c
        .expect(
            "APPEND Drafts CATENATE (URL \"imap://mx.autre.test/INBOX/;UID=1\")",
            "NO",
        )
        .await;
    assert!(
        r.status
            .ends_with(" NO [BADURL imap://mx.autre.test/INBOX/;UID=1] URL of another server"),
        "{r:?}"
    );

    // Over the quota: refused whole, until the operator gives more room.
    let big = mail("big", &"x".repeat(3500));
    let r = c.append("INBOX", "", &big).await;
    assert_eq!(r.kind(), "NO", "{r:?}");
    assert!(
        r.status
            .ends_with(" NO [OVERQUOTA] Quota exceeded (mailbox full)"),
        "{r:?}"
    );
    let out = instance.run(&["user", "quota", JEAN, "--storage", "1M"], None);
    assert!(
        out.contains("limit 1024 KiB (set for this account)"),
        "{out}"
    );
    let r = c.append("INBOX", "", &big).await;
    assert!(r.ok(), "{r:?}");
    let used = (one.len() + two.len() + expected.len() + big.len()).div_ceil(1024);
    let r = c.expect("GETQUOTA \"\"", "OK").await;
    assert_eq!(
        r.untagged,
        [format!("* QUOTA \"\" (STORAGE {used} 1024 MESSAGE 4 10)")]
    );
    let out = instance.run(&["user", "quota", JEAN], None);
    assert!(
        out.contains("messages: 4 used, limit 10 ([quota] default)"),
        "{out}"
    );
}

both_backends!(quota_multiappend_and_catenate);
