//! A hospital's own Postfix relaying into MES, as a hospital IT team sets it up.
//!
//! Each test runs a real Postfix (Debian's `postfix` package, which `scripts/test`
//! installs) as a throwaway instance: its configuration, queue, data directory,
//! mailboxes and log (`maillog_file`) live in a temporary folder, its smtpd listens
//! on a free port of 127.0.0.1 only, and it is started with `postfix -c DIR start`
//! and always stopped (`postfix -c DIR stop`, then SIGKILL of a master that
//! lingers) when the test ends, also on failure (`Postfix`'s `Drop`).
//!
//! The hospital's Postfix sends everything to `relayhost = [127.0.0.1]:<MES MX
//! port>` with `smtp_tls_security_level = verify` against the MES CA and, when the
//! test says so, the hospital system's client certificate (`client.pem` of the
//! development PKI), mapped on the MES side to `dpi@hopital-a.mes.test` with
//! `mes user add … --certificate-subject DN`. Its own internal domain
//! `hopital-a.local` is delivered locally (Maildir), so bounces to its users and
//! its postmaster can be read back.
//!
//! - with the certificate, a message from the mapped account reaches a
//!   professional's and a patient's INBOX;
//! - without a certificate, MES's MX (by default `smtp.mx_client_certificate =
//!   "required"`) ends the TLS handshake with "certificate required": Postfix
//!   defers the message (4.4.2) and keeps retrying; once the certificate is
//!   configured and Postfix reloaded, the same message is delivered;
//! - without a certificate and `mx_client_certificate = "optional"`, MES refuses
//!   at MAIL FROM (530 5.7.0): Postfix takes that as permanent and bounces the
//!   message; the bounce to the sender is refused the same way, so it ends with
//!   the hospital's postmaster (`notify_classes` with `2bounce`);
//! - with the certificate, a sender of another domain (the hospital's internal
//!   one) or another account of ours is refused at MAIL FROM (550 5.7.1) and the
//!   sender gets Postfix's bounce with MES's reason.
//!
//! If Postfix is missing or cannot start, the tests fail with its log: they are
//! never skipped.

mod common;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use common::{Db, Instance, Server, connect_plain, inbox, open_store};

const DPI: &str = "dpi@hopital-a.mes.test";
const JEAN: &str = "jean.dupont@hopital-a.mes.test";
const PATIENT: &str = "279035121518989@patient.mes.test";
/// A user of the hospital's internal domain, delivered by its Postfix itself.
const SECRETARIAT: &str = "secretariat@hopital-a.local";
/// Where the hospital's Postfix sends double bounces.
const POSTMASTER: &str = "postmaster@hopital-a.local";
/// The name in MES's server certificate that the hospital's Postfix checks.
const MX_NAME: &str = "mx.hopital-a.mes.test";
/// How long Postfix gets for one delivery outcome.
const DEADLINE: Duration = Duration::from_secs(60);

/// A Postfix program: in /usr/sbin on Debian, which is not always on a test's PATH.
fn postfix_program(name: &str) -> PathBuf {
    for dir in ["/usr/sbin", "/usr/bin", "/sbin"] {
        let path = Path::new(dir).join(name);
        if path.exists() {
            return path;
        }
    }
    panic!(
        "{name} not found: these tests need Postfix (Debian package `postfix`); \
         ./scripts/test installs it"
    );
}

/// The numeric id of a system user (`nobody` owns the hospital's local mailboxes).
fn uid_of(user: &str) -> u32 {
    let passwd = std::fs::read_to_string("/etc/passwd").expect("/etc/passwd");
    passwd
        .lines()
        .find_map(|line| {
            let fields: Vec<&str> = line.split(':').collect();
            (fields.first() == Some(&user)).then(|| fields[2].parse().expect("uid"))
        })
        .unwrap_or_else(|| panic!("no system user {user:?}: is Postfix installed?"))
}

/// A port of 127.0.0.1 that was free a moment ago.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("local addr")
        .port()
}

/// What the hospital's Postfix relays to.
struct Relay {
    /// MES's MX listener.
    mx: SocketAddr,
    /// The CA that signed MES's server certificate.
    ca: PathBuf,
    /// The hospital system's client certificate and key, if it presents one.
    identity: Option<(PathBuf, PathBuf)>,
}

/// One throwaway Postfix instance; stopped when dropped.
struct Postfix {
    /// Holds `conf/`, `queue/`, `data/`, `mail/` and `maillog`.
    dir: tempfile::TempDir,
    /// Its smtpd's port on 127.0.0.1.
    port: u16,
}

impl Postfix {
    /// Writes the configuration and starts Postfix; a port taken meanwhile is retried.
    fn start(relay: &Relay) -> Postfix {
        // `postfix start` is for the superuser only; say so rather than fail obscurely.
        let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
        let euid = status
            .lines()
            .find_map(|l| l.strip_prefix("Uid:"))
            .and_then(|ids| ids.split_whitespace().nth(1));
        assert_eq!(
            euid,
            Some("0"),
            "the Postfix tests run a Postfix instance, which needs root (as ./scripts/test does)"
        );
        let mut attempt = 0;
        loop {
            let postfix = Postfix::configure(relay);
            let out = postfix.postfix(&["start"]);
            if out.status.success() {
                return postfix;
            }
            let log = postfix.log();
            attempt += 1;
            if log.contains("Address already in use") && attempt < 5 {
                continue; // dropped: stopped and removed
            }
            panic!(
                "postfix -c {} start failed ({}):\nstdout: {}\nstderr: {}\nmaillog:\n{log}",
                postfix.conf().display(),
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr),
            );
        }
    }

    /// A fresh folder with main.cf and master.cf; nothing started yet.
    fn configure(relay: &Relay) -> Postfix {
        // Postfix's daemons run as the `postfix` user and the local mailboxes as
        // `nobody`: both must reach the folders below, so under /tmp whatever
        // TMPDIR says (a private temp folder would stop them), and readable.
        let dir = tempfile::Builder::new()
            .prefix("mes-postfix.")
            .tempdir_in("/tmp")
            .expect("tempdir");
        set_mode(dir.path(), 0o755);
        let postfix = Postfix {
            dir,
            port: free_port(),
        };
        std::fs::create_dir(postfix.conf()).expect("conf dir");
        let mail = postfix.path("mail");
        std::fs::create_dir(&mail).expect("mail dir");
        let nobody = uid_of("nobody");
        std::os::unix::fs::chown(&mail, Some(nobody), Some(nobody)).expect("chown mail");
        // The queue folder is root's; `postfix start` makes its subfolders and the data
        // folder (post-install) with the owners Postfix checks (root's would be refused).
        std::fs::create_dir(postfix.path("queue")).expect("queue dir");
        set_mode(&postfix.path("queue"), 0o755);
        std::fs::write(postfix.conf().join("main.cf"), postfix.main_cf(relay)).expect("main.cf");
        std::fs::write(postfix.conf().join("master.cf"), postfix.master_cf()).expect("master.cf");
        postfix
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn conf(&self) -> PathBuf {
        self.path("conf")
    }

    /// The hospital's main.cf: everything not for its own domain goes to MES.
    fn main_cf(&self, relay: &Relay) -> String {
        let root = self.dir.path().display();
        let client_certificate = match &relay.identity {
            Some((cert, key)) => format!(
                "smtp_tls_cert_file = {}\nsmtp_tls_key_file = {}\n",
                cert.display(),
                key.display()
            ),
            None => String::new(),
        };
        let nobody = uid_of("nobody");
        format!(
            "\
compatibility_level = 3.6
queue_directory = {root}/queue
data_directory = {root}/data
maillog_file_prefixes = {root}
maillog_file = {root}/maillog
myhostname = relais.hopital-a.local
mydomain = hopital-a.local
myorigin = $mydomain
mydestination =
inet_interfaces = loopback-only
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination
alias_maps =
alias_database =
biff = no

# The hospital's relay into MES: mutual TLS, MES's certificate verified.
relayhost = [127.0.0.1]:{mx_port}
smtp_tls_security_level = verify
smtp_tls_CAfile = {ca}
# relayhost is an IP address here: check the name MES's certificate carries.
smtp_tls_verify_cert_match = {MX_NAME}
{client_certificate}smtp_tls_loglevel = 1

# The hospital's own domain, delivered here, where bounces come back.
virtual_mailbox_domains = hopital-a.local
virtual_mailbox_base = {root}/mail
virtual_mailbox_maps = inline:{{ {{{SECRETARIAT} = secretariat/}}, {{{POSTMASTER} = postmaster/}} }}
virtual_uid_maps = static:{nobody}
virtual_gid_maps = static:{nobody}
virtual_minimum_uid = 1
# Bounces MES refuses too (their sender is empty) go to the postmaster, not nowhere.
notify_classes = resource, software, 2bounce
2bounce_notice_recipient = {POSTMASTER}

# A test does not wait for the default retry schedule.
queue_run_delay = 1s
minimal_backoff_time = 1s
maximal_backoff_time = 2s
smtp_connect_timeout = 10s
",
            mx_port = relay.mx.port(),
            ca = relay.ca.display(),
        )
    }

    /// Only the services this setup uses; nothing chrooted, smtpd on loopback only.
    fn master_cf(&self) -> String {
        format!(
            "\
127.0.0.1:{port} inet n - n - - smtpd
pickup    unix  n - n 60    1 pickup
cleanup   unix  n - n -     0 cleanup
qmgr      unix  n - n 300   1 qmgr
tlsmgr    unix  - - n 1000? 1 tlsmgr
rewrite   unix  - - n -     - trivial-rewrite
bounce    unix  - - n -     0 bounce
defer     unix  - - n -     0 bounce
trace     unix  - - n -     0 bounce
verify    unix  - - n -     1 verify
flush     unix  n - n 1000? 0 flush
proxymap  unix  - - n -     - proxymap
smtp      unix  - - n -     - smtp
relay     unix  - - n -     - smtp
showq     unix  n - n -     - showq
error     unix  - - n -     - error
retry     unix  - - n -     - error
discard   unix  - - n -     - discard
virtual   unix  - n n -     - virtual
anvil     unix  - - n -     1 anvil
scache    unix  - - n -     1 scache
postlog   unix-dgram n - n - 1 postlogd
",
            port = self.port
        )
    }

    /// Rewrites main.cf for `relay` and has the running Postfix reload it.
    fn reconfigure(&self, relay: &Relay) {
        std::fs::write(self.conf().join("main.cf"), self.main_cf(relay)).expect("main.cf");
        let out = self.postfix(&["reload"]);
        assert!(
            out.status.success(),
            "postfix reload: {}\nmaillog:\n{}",
            String::from_utf8_lossy(&out.stderr),
            self.log()
        );
    }

    /// Runs `postfix -c DIR ARGS…`.
    fn postfix(&self, args: &[&str]) -> Output {
        Command::new(postfix_program("postfix"))
            .arg("-c")
            .arg(self.conf())
            .args(args)
            .output()
            .expect("run postfix")
    }

    /// Runs `postqueue -c DIR ARGS…` and panics with its output unless it succeeds.
    fn postqueue(&self, args: &[&str]) -> String {
        let out = Command::new(postfix_program("postqueue"))
            .arg("-c")
            .arg(self.conf())
            .args(args)
            .output()
            .expect("run postqueue");
        assert!(
            out.status.success(),
            "postqueue {args:?}: {}\nmaillog:\n{}",
            String::from_utf8_lossy(&out.stderr),
            self.log()
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// The queue as `postqueue -j` lists it: one JSON object per message.
    fn queue(&self) -> Vec<serde_json::Value> {
        self.postqueue(&["-j"])
            .lines()
            .map(|line| serde_json::from_str(line).expect("postqueue -j line"))
            .collect()
    }

    /// Asks Postfix to try every queued message now.
    fn flush(&self) {
        self.postqueue(&["-f"]);
    }

    /// Postfix's log so far.
    fn log(&self) -> String {
        std::fs::read_to_string(self.path("maillog")).unwrap_or_default()
    }

    /// Sends a message to Postfix's smtpd, as the hospital's applications do;
    /// returns Postfix's queue id.
    async fn inject(&self, from: &str, to: &[&str], subject: &str) -> String {
        let mut s = connect_plain(SocketAddr::from(([127, 0, 0, 1], self.port))).await;
        s.expect("EHLO dpi.hopital-a.local", 250).await;
        s.expect(&format!("MAIL FROM:<{from}>"), 250).await;
        for rcpt in to {
            s.expect(&format!("RCPT TO:<{rcpt}>"), 250).await;
        }
        s.expect("DATA", 354).await;
        s.send(&format!(
            "From: <{from}>\r\nTo: {to}\r\nSubject: {subject}\r\n\
             Date: Thu, 03 Dec 2026 09:00:00 +0100\r\n\
             Message-ID: <{id}@hopital-a.local>\r\n\r\n\
             Bonjour,\r\nle compte rendu suit.\r\n.\r\n",
            to = to
                .iter()
                .map(|r| format!("<{r}>"))
                .collect::<Vec<_>>()
                .join(", "),
            id = common::random_hex(12),
        ))
        .await;
        let reply = s.read_reply().await;
        assert_eq!(reply.code, 250, "{reply:?}");
        s.expect("QUIT", 221).await;
        // "250 2.0.0 Ok: queued as 4F2A1B3C9D"
        reply
            .text()
            .rsplit(' ')
            .next()
            .expect("queue id")
            .to_string()
    }

    /// The last delivery line Postfix logged for `queue_id` and `rcpt`
    /// (`… to=<rcpt>, relay=…, status=sent|deferred|bounced (…)`).
    fn delivery_line(&self, queue_id: &str, rcpt: &str) -> Option<String> {
        let prefix = format!(" {queue_id}: to=<{rcpt}>,");
        self.log()
            .lines()
            .rfind(|line| line.contains(&prefix) && line.contains(" status="))
            .map(str::to_string)
    }

    /// How many times Postfix deferred `queue_id` for `rcpt` so far.
    fn deferrals(&self, queue_id: &str, rcpt: &str) -> usize {
        let prefix = format!(" {queue_id}: to=<{rcpt}>,");
        self.log()
            .lines()
            .filter(|line| line.contains(&prefix) && line.contains(" status=deferred "))
            .count()
    }

    /// Waits until Postfix gave up or succeeded for `queue_id` and `rcpt`
    /// (sent or bounced, not deferred), flushing the queue meanwhile; returns the line.
    async fn final_outcome(&self, queue_id: &str, rcpt: &str) -> String {
        self.wait_for(&format!("a final status of {queue_id} to {rcpt}"), || {
            self.delivery_line(queue_id, rcpt)
                .filter(|line| line.contains(" status=sent ") || line.contains(" status=bounced "))
        })
        .await
    }

    /// Polls `check` (flushing the queue every second) until it gives a value or the deadline.
    async fn wait_for<T>(&self, what: &str, mut check: impl FnMut() -> Option<T>) -> T {
        let deadline = Instant::now() + DEADLINE;
        let mut next_flush = Instant::now() + Duration::from_secs(1);
        loop {
            if let Some(value) = check() {
                return value;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}; queue: {:?}\nmaillog:\n{}",
                self.queue(),
                self.log()
            );
            if Instant::now() >= next_flush {
                self.flush();
                next_flush = Instant::now() + Duration::from_secs(1);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits until Postfix's queue is empty.
    async fn wait_queue_empty(&self) {
        self.wait_for("an empty queue", || self.queue().is_empty().then_some(()))
            .await;
    }

    /// The messages delivered to a local Maildir of the hospital's domain.
    fn mailbox(&self, local_part: &str) -> Vec<String> {
        let mut out = Vec::new();
        for sub in ["new", "cur"] {
            let Ok(entries) = std::fs::read_dir(self.path("mail").join(local_part).join(sub))
            else {
                continue;
            };
            for entry in entries {
                let path = entry.expect("maildir entry").path();
                out.push(
                    String::from_utf8_lossy(&std::fs::read(&path).expect("read")).into_owned(),
                );
            }
        }
        out
    }

    /// The pid of the running master, from its pid file.
    fn master_pid(&self) -> Option<u32> {
        std::fs::read_to_string(self.path("queue/pid/master.pid"))
            .ok()?
            .trim()
            .parse()
            .ok()
    }
}

/// Whether a process exists and is not a zombie.
fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // "pid (comm) S …": the state follows the last ')'.
        Ok(stat) => stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_some_and(|state| state != "Z"),
        Err(_) => false,
    }
}

impl Drop for Postfix {
    fn drop(&mut self) {
        let pid = self.master_pid();
        let _ = self.postfix(&["stop"]);
        let Some(pid) = pid else { return };
        // `postfix stop` signals the master and returns; wait for it to end.
        let deadline = Instant::now() + Duration::from_secs(10);
        while alive(pid) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        if alive(pid) {
            let _ = Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status();
        }
    }
}

fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
}

/// MES with the hospital system's account mapped to the development PKI's client
/// certificate, a professional and a patient; `smtp_extra` goes into `[smtp]`.
async fn mes_with_mapped_system(db: Db, smtp_extra: &str) -> (Instance, Server) {
    let instance = Instance::with(db, "hopital-a.mes.test", None, smtp_extra).await;
    instance.add_mapped_system(DPI, "DPI Hôpital A");
    instance.add_named_user(
        JEAN,
        "professional",
        "Jean Dupont",
        "correct horse battery staple",
    );
    instance.add_named_user(
        PATIENT,
        "patient",
        "Dominique Pat-Trois",
        "mot de passe du patient",
    );
    let server = instance.start();
    (instance, server)
}

/// What the hospital's Postfix relays to: MES's MX, with the client certificate or without.
fn relay_to(instance: &Instance, server: &Server, certificate: bool) -> Relay {
    Relay {
        mx: server.addr("mx"),
        ca: instance.cert("ca.pem"),
        identity: certificate.then(|| (instance.cert("client.pem"), instance.cert("client.key"))),
    }
}

/// Waits until the MES log shows `needle`.
async fn mes_logged(server: &Server, needle: &str) {
    let deadline = Instant::now() + DEADLINE;
    while !server.log().contains(needle) {
        assert!(
            Instant::now() < deadline,
            "MES never logged {needle:?}; log:\n{}",
            server.log()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The MES message of `rcpt`'s INBOX, as text; exactly one is expected.
async fn only_message(instance: &Instance, rcpt: &str) -> String {
    let store = open_store(instance).await;
    let mails = inbox(&store, rcpt).await;
    assert_eq!(mails.len(), 1, "{rcpt}'s INBOX");
    String::from_utf8_lossy(&mails[0].data).into_owned()
}

async fn relayed_with_the_mapped_certificate_is_delivered(db: Db) {
    let (instance, server) = mes_with_mapped_system(db, "").await;
    let postfix = Postfix::start(&relay_to(&instance, &server, true));
    let mx_port = server.addr("mx").port();

    let id = postfix.inject(DPI, &[JEAN, PATIENT], "Compte rendu").await;
    for rcpt in [JEAN, PATIENT] {
        let line = postfix.final_outcome(&id, rcpt).await;
        assert!(
            line.contains(&format!("relay=127.0.0.1[127.0.0.1]:{mx_port},"))
                && line.contains("status=sent (250 2.0.0 Message accepted"),
            "{line}"
        );
    }
    postfix.wait_queue_empty().await;
    // Postfix checked MES's certificate (security level verify), MES checked Postfix's.
    let log = postfix.log();
    assert!(
        log.contains(&format!(
            "Verified TLS connection established to 127.0.0.1[127.0.0.1]:{mx_port}"
        )),
        "{log}"
    );

    let dn = mes::pki::subject_dn_of_file(&instance.cert("client.pem")).expect("client DN");
    for rcpt in [JEAN, PATIENT] {
        let text = only_message(&instance, rcpt).await;
        assert!(text.contains("Subject: Compte rendu"), "{text}");
        assert!(text.contains(&format!("Return-Path: <{DPI}>")), "{text}");
        assert!(text.contains("from relais.hopital-a.local"), "{text}");
        assert!(text.contains(&format!("verified-peer=\"{dn}\"")), "{text}");
    }
    mes_logged(&server, "message accepted").await;
}

async fn without_a_client_certificate_postfix_defers_until_it_has_one(db: Db) {
    let (instance, server) = mes_with_mapped_system(db, "").await;
    let postfix = Postfix::start(&relay_to(&instance, &server, false));

    let id = postfix.inject(DPI, &[JEAN], "Sans certificat").await;
    // MES's MX requires the certificate in the TLS handshake (the default
    // `smtp.mx_client_certificate = "required"`): Postfix gets the TLS alert, keeps
    // the message and tries again, without ever bouncing it.
    postfix
        .wait_for("a deferral and a deferred retry", || {
            (postfix.deferrals(&id, JEAN) >= 2).then_some(())
        })
        .await;
    let line = postfix.delivery_line(&id, JEAN).expect("a delivery line");
    assert!(
        line.contains(
            "dsn=4.4.2, status=deferred (lost connection with 127.0.0.1[127.0.0.1] \
             while performing the EHLO handshake)"
        ),
        "{line}"
    );
    let log = postfix.log();
    assert!(log.contains("alert certificate required"), "{log}");
    assert!(!log.contains(" status=bounced "), "{log}");
    let queue = postfix.queue();
    assert_eq!(queue.len(), 1, "{queue:?}");
    assert_eq!(queue[0]["queue_name"], "deferred", "{queue:?}");
    assert_eq!(queue[0]["recipients"][0]["address"], JEAN, "{queue:?}");
    let store = open_store(&instance).await;
    assert!(inbox(&store, JEAN).await.is_empty());
    assert!(!server.log().contains("message accepted"));

    // The hospital adds its certificate and reloads: the same message goes out.
    postfix.reconfigure(&relay_to(&instance, &server, true));
    postfix.flush();
    let line = postfix.final_outcome(&id, JEAN).await;
    assert!(
        line.contains("status=sent (250 2.0.0 Message accepted"),
        "{line}"
    );
    postfix.wait_queue_empty().await;
    let text = only_message(&instance, JEAN).await;
    assert!(text.contains("Subject: Sans certificat"), "{text}");
}

async fn with_an_optional_certificate_mes_refuses_at_mail_from_and_postfix_bounces(db: Db) {
    let optional = "mx_client_certificate = \"optional\"";
    let (instance, server) = mes_with_mapped_system(db, optional).await;
    let postfix = Postfix::start(&relay_to(&instance, &server, false));

    let id = postfix.inject(DPI, &[JEAN], "Sans certificat").await;
    // 530 is a permanent reply: Postfix does not keep the message, it bounces it.
    let line = postfix.final_outcome(&id, JEAN).await;
    assert!(
        line.contains(
            "status=bounced (host 127.0.0.1[127.0.0.1] said: 530 5.7.0 \
             A client certificate of the trust space is required (in reply to MAIL FROM command))"
        ),
        "{line}"
    );
    // The bounce to the sender goes the same way and is refused the same way, so
    // the hospital's postmaster receives it (double bounce), with MES's reason.
    let bounces = postfix
        .wait_for("the double bounce in the postmaster's mailbox", || {
            let mails = postfix.mailbox("postmaster");
            (!mails.is_empty()).then_some(mails)
        })
        .await;
    assert!(
        bounces.iter().any(|m| m.contains("530 5.7.0")),
        "{bounces:?}"
    );
    postfix.wait_queue_empty().await;

    mes_logged(
        &server,
        "envelope sender refused mode=\"mx\" peer=unauthenticated",
    )
    .await;
    let store = open_store(&instance).await;
    assert!(inbox(&store, JEAN).await.is_empty());
    assert!(inbox(&store, DPI).await.is_empty());
}

async fn senders_not_mapped_to_the_certificate_are_refused(db: Db) {
    let (instance, server) = mes_with_mapped_system(db, "").await;
    let postfix = Postfix::start(&relay_to(&instance, &server, true));

    // A sender of the hospital's internal domain, which is not in the trust space:
    // refused at MAIL FROM, and Postfix's bounce comes back to the sender's mailbox.
    let id = postfix.inject(SECRETARIAT, &[JEAN], "Autre domaine").await;
    let line = postfix.final_outcome(&id, JEAN).await;
    assert!(
        line.contains("status=bounced (host 127.0.0.1[127.0.0.1] said: 550 5.7.1")
            && line.contains("hopital-a.local")
            && line.contains("(in reply to MAIL FROM command)"),
        "{line}"
    );
    let bounces = postfix
        .wait_for("the bounce in the sender's mailbox", || {
            let mails = postfix.mailbox("secretariat");
            (!mails.is_empty()).then_some(mails)
        })
        .await;
    assert_eq!(bounces.len(), 1, "{bounces:?}");
    assert!(
        bounces[0].contains("550 5.7.1") && bounces[0].contains("Subject: Autre domaine"),
        "{}",
        bounces[0]
    );

    // Another account of our own domain, not mapped to this certificate: refused too;
    // Postfix's bounce (null sender, same certificate) reaches that account's INBOX.
    let id = postfix.inject(JEAN, &[PATIENT], "Au nom de Jean").await;
    let line = postfix.final_outcome(&id, PATIENT).await;
    assert!(
        line.contains("status=bounced (host 127.0.0.1[127.0.0.1] said: 550 5.7.1")
            && line.contains("(in reply to MAIL FROM command)"),
        "{line}"
    );
    postfix.wait_queue_empty().await;
    let report = only_message(&instance, JEAN).await;
    assert!(report.contains("Return-Path: <>"), "{report}");
    assert!(report.contains("report-type=delivery-status"), "{report}");
    assert!(report.contains("Subject: Au nom de Jean"), "{report}");

    mes_logged(&server, "which may not send as").await;
    let store = open_store(&instance).await;
    assert!(
        inbox(&store, PATIENT).await.is_empty(),
        "nothing reached the patient"
    );
    assert!(inbox(&store, DPI).await.is_empty());
}

both_backends!(
    relayed_with_the_mapped_certificate_is_delivered,
    without_a_client_certificate_postfix_defers_until_it_has_one,
    with_an_optional_certificate_mes_refuses_at_mail_from_and_postfix_bounces,
    senders_not_mapped_to_the_certificate_are_refused,
);
