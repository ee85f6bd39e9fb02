//! Terminal mail clients against the real server: NeoMutt, driven through a
//! private tmux server, reads the INBOX over IMAPS (trusting the development
//! CA), shows a message, flags it, moves it to another folder and searches
//! on the server. The test checks the screen (tmux capture-pane) for what the
//! user sees, and the server (over IMAP) for what the client changed.
//! `scripts/test` installs neomutt and tmux.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::{Db, Imap, Instance, imap_login};

const PW: &str = "correct horse battery staple";
const JEAN: &str = "jean.dupont@hopital-a.mes.test";

/// How long a screen may take to show what the test waits for.
const SCREEN_WAIT: Duration = Duration::from_secs(30);

/// A tmux server of our own (its socket in a temporary folder), holding one
/// session of one window; killed when dropped.
struct Tmux {
    socket: PathBuf,
}

impl Tmux {
    /// Starts `command` (a shell command line) in a 160x48 window.
    fn start(socket: &Path, home: &Path, command: &str) -> Tmux {
        let tmux = Tmux {
            socket: socket.to_path_buf(),
        };
        let out = tmux
            .cmd()
            .args(["-f", "/dev/null", "new-session", "-d", "-s", "mes"])
            .args(["-x", "160", "-y", "48", command])
            .env("HOME", home)
            .env("LANG", "C.UTF-8")
            .env("TERM", "xterm-256color")
            .output()
            .expect("tmux is installed by scripts/test");
        assert!(
            out.status.success(),
            "tmux new-session failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        tmux
    }

    fn cmd(&self) -> Command {
        let mut c = Command::new("tmux");
        c.arg("-S").arg(&self.socket);
        c
    }

    /// Types `keys` (tmux key names: `Enter`, `C-u`, or literal text with `-l`).
    fn keys(&self, keys: &[&str]) {
        let out = self
            .cmd()
            .args(["send-keys", "-t", "mes"])
            .args(keys)
            .output()
            .expect("tmux send-keys");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Types `text` literally.
    fn text(&self, text: &str) {
        self.keys(&["-l", text]);
    }

    /// What the window shows now.
    fn screen(&self) -> String {
        let out = self
            .cmd()
            .args(["capture-pane", "-p", "-t", "mes"])
            .output()
            .expect("tmux capture-pane");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Waits until the screen satisfies `ok`; panics with the last screen.
    fn wait(&self, what: &str, ok: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + SCREEN_WAIT;
        loop {
            let screen = self.screen();
            if ok(&screen) {
                return screen;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}; screen:\n{screen}"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        // Only our own server, by its socket.
        let _ = self.cmd().arg("kill-server").output();
    }
}

fn mail(subject: &str, hour: u32, body: &str) -> Vec<u8> {
    format!(
        "From: Marie Curie <marie.curie@hopital-a.mes.test>\r\nTo: Jean Dupont <{JEAN}>\r\n\
         Subject: {subject}\r\nDate: Tue, 24 Nov 2026 {hour:02}:00:00 +0100\r\n\
         Message-ID: <{hour}@clients.test>\r\n\r\n{body}\r\n"
    )
    .into_bytes()
}

/// Polls the server over IMAP until `ok` holds for the reply to `command`
/// (run after `SELECT`/`EXAMINE` of `mailbox`).
async fn server_shows<S>(c: &mut Imap<S>, mailbox: &str, command: &str, ok: impl Fn(&str) -> bool)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let deadline = Instant::now() + SCREEN_WAIT;
    loop {
        c.expect(&format!("EXAMINE {mailbox}"), "OK").await;
        let reply = c.expect(command, "OK").await.all();
        if ok(&reply) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the server never showed it: {command} in {mailbox} gave\n{reply}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn neomutt_reads_flags_moves_and_searches() {
    let instance = Instance::new(Db::Sqlite).await;
    instance.add_user(JEAN, "professional", PW);
    let server = instance.start();
    let ca = instance.cert("ca.pem");
    let addr = server.addr("imaps");
    let mut c = imap_login(addr, &ca, JEAN, PW).await;
    // "Résultats", written by this IMAP4rev1 session in modified UTF-7.
    c.expect("CREATE R&AOk-sultats", "OK").await;
    for (subject, hour, body) in [
        (
            "Resultats biologiques Durand",
            9,
            "Creatinine 80 umol/L, marqueur-alpha.",
        ),
        (
            "Compte rendu operatoire Martin",
            10,
            "Intervention sans incident, marqueur-beta.",
        ),
        (
            "Demande d avis cardiologique",
            11,
            "ECG joint, marqueur-gamma.",
        ),
    ] {
        assert!(c.append("INBOX", "", &mail(subject, hour, body)).await.ok());
    }

    let work = tempfile::tempdir().unwrap();
    let home = work.path().join("home");
    std::fs::create_dir_all(&home).unwrap();
    let muttrc = home.join("muttrc");
    std::fs::write(
        &muttrc,
        format!(
            "set folder=\"imaps://localhost:{port}/\"\n\
             set spoolfile=\"+INBOX\"\n\
             set imap_user=\"{JEAN}\"\n\
             set imap_pass=\"{PW}\"\n\
             set ssl_ca_certificates_file=\"{ca}\"\n\
             set certificate_file=\"{home}/certificates\"\n\
             set ssl_force_tls=yes\n\
             set imap_check_subscribed=no\n\
             set header_cache=\"\"\n\
             set message_cachedir=\"\"\n\
             set record=\"\"\n\
             set postponed=\"+Drafts\"\n\
             set sort=date-sent\n\
             set delete=yes\n\
             set resolve=no\n\
             set confirmappend=no\n\
             set confirmcreate=no\n\
             set wait_key=no\n\
             set sleep_time=0\n\
             set mark_old=no\n\
             set pager_index_lines=0\n\
             set charset=\"utf-8\"\n",
            port = addr.port(),
            ca = ca.display(),
            home = home.display(),
        ),
    )
    .unwrap();
    let tmux = Tmux::start(
        &work.path().join("tmux.sock"),
        &home,
        &format!(
            "neomutt -n -F {} -d 2 -l {}",
            muttrc.display(),
            home.join("neomutt.log").display()
        ),
    );

    // 1. The INBOX, all three messages listed.
    tmux.wait("the index with three messages", |s| {
        s.contains("Resultats biologiques Durand")
            && s.contains("Compte rendu operatoire Martin")
            && s.contains("Demande d avis cardiologique")
    });

    // 2. Read the first one: the pager shows its header and body.
    tmux.text("=");
    tmux.keys(&["Enter"]);
    let pager = tmux.wait("the message in the pager", |s| s.contains("marqueur-alpha"));
    assert!(
        pager.contains("Subject: Resultats biologiques Durand")
            && pager.contains("Creatinine 80 umol/L"),
        "{pager}"
    );
    tmux.text("q");
    tmux.wait("the index again", |s| {
        s.contains("Demande d avis cardiologique") && !s.contains("marqueur-alpha")
    });

    // 3. Flag it and sync: the server has \Flagged (and \Seen, it was read).
    tmux.text("F");
    tmux.text("$");
    server_shows(
        &mut c,
        "INBOX",
        "SEARCH FLAGGED SEEN SUBJECT Resultats",
        |r| r.contains("* SEARCH 1\n"),
    )
    .await;

    // 4. Move it to "Résultats" (saved there, then the original deleted and
    // expunged on sync).
    tmux.text("s");
    tmux.wait("the save prompt", |s| s.contains("Save to mailbox"));
    tmux.keys(&["C-u"]);
    // A UTF-8 folder name: NeoMutt enables UTF8=ACCEPT and sends it as is.
    tmux.text("=Résultats");
    tmux.keys(&["Enter"]);
    tmux.text("$");
    server_shows(
        &mut c,
        "R&AOk-sultats",
        "FETCH 1:* (FLAGS BODY.PEEK[HEADER.FIELDS (SUBJECT)])",
        |r| r.contains("\\Flagged") && r.contains("Subject: Resultats biologiques Durand"),
    )
    .await;
    server_shows(&mut c, "INBOX", "SEARCH ALL", |r| {
        r.contains("* SEARCH 1 2\n")
    })
    .await;
    let inbox = c
        .expect("FETCH 1:* (BODY.PEEK[HEADER.FIELDS (SUBJECT)])", "OK")
        .await
        .all();
    assert!(!inbox.contains("Resultats biologiques"), "{inbox}");
    tmux.wait("the index without the moved message", |s| {
        !s.contains("Resultats biologiques Durand") && s.contains("Compte rendu operatoire Martin")
    });

    // 5. Search the bodies on the server (`=b`): only the matching message is left.
    tmux.text("l");
    tmux.wait("the limit prompt", |s| {
        s.contains("Limit to messages matching")
    });
    tmux.text("=b marqueur-beta");
    tmux.keys(&["Enter"]);
    let limited = tmux.wait("the limited index", |s| {
        s.contains("Compte rendu operatoire Martin") && !s.contains("Demande d avis cardiologique")
    });
    assert!(!limited.contains("Resultats biologiques"), "{limited}");

    // The client's own log: UTF-8 names after ENABLE UTF8=ACCEPT, and the
    // search made by the server, not by downloading the messages.
    tmux.text("q");
    let log = ["neomutt.log0", "neomutt.log"]
        .iter()
        .find_map(|name| std::fs::read_to_string(home.join(name)).ok())
        .expect("neomutt's debug log");
    for sent in [
        "ENABLE UTF8=ACCEPT",
        " 1 \"Résultats\"",
        " UID SEARCH BODY \"marqueur-beta\"",
    ] {
        assert!(
            log.lines().any(|l| l.contains("> a") && l.contains(sent)),
            "{sent} not in the log:\n{log}"
        );
    }
    c.expect("LOGOUT", "OK").await;
}
