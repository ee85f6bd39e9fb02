//! The SMTP state machine driven in process: bytes in, replies out, over a
//! scripted [`Backend`] that records what reached it. The integration tests
//! (`tests/smtp.rs`) drive the same session through the real binary.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::*;

/// What reached the backend, in order.
#[derive(Default)]
struct Log {
    calls: Vec<String>,
    delivered: Vec<(Envelope, Vec<u8>)>,
}

/// Accepts the password `secret` (`throttle` locks out), senders and
/// recipients without `refuse`, and any message.
#[derive(Clone, Default)]
struct Scripted(Arc<Mutex<Log>>);

impl Scripted {
    fn calls(&self) -> Vec<String> {
        self.0.lock().expect("log").calls.clone()
    }

    fn delivered(&self) -> Vec<(Envelope, Vec<u8>)> {
        self.0.lock().expect("log").delivered.clone()
    }

    fn call(&self, what: String) {
        self.0.lock().expect("log").calls.push(what);
    }
}

fn account() -> Authenticated {
    Authenticated {
        account_id: 1,
        address: "dr.a@mes.test".into(),
        kind: AccountKind::Professional,
        stamp: None,
    }
}

impl Backend for Scripted {
    async fn authenticate(&self, _: &SessionView, c: Credentials) -> AuthOutcome {
        self.call(format!("authenticate {}", c.username));
        match c.password.as_str() {
            "secret" => AuthOutcome::Success(account()),
            "throttle" => AuthOutcome::Throttled,
            _ => AuthOutcome::Invalid,
        }
    }

    async fn authenticate_external(&self, _: &SessionView, authzid: Option<String>) -> AuthOutcome {
        self.call(format!("external {authzid:?}"));
        AuthOutcome::Success(account())
    }

    async fn check_sender(
        &self,
        view: &SessionView,
        from: &str,
    ) -> Result<Option<SenderCheck>, Reply> {
        let who = view.auth.as_ref().map_or("-", |a| a.address.as_str());
        self.call(format!("sender {from} by {who}"));
        if from.contains("refuse") {
            Err(Reply::new(550, "5.7.1", "sender refused"))
        } else if from.contains("gone") {
            Err(Reply::new(421, "4.7.0", "Session ended"))
        } else {
            Ok(None)
        }
    }

    async fn check_recipient(
        &self,
        _: &SessionView,
        _: &Envelope,
        rcpt: &str,
    ) -> Result<Target, Reply> {
        self.call(format!("recipient {rcpt}"));
        if rcpt.contains("refuse") {
            Err(Reply::new(550, "5.1.1", "no such user"))
        } else {
            Ok(Target::Remote)
        }
    }

    async fn deliver(&self, _: &SessionView, envelope: &Envelope, data: Vec<u8>) -> Reply {
        self.call("deliver".into());
        self.0
            .lock()
            .expect("log")
            .delivered
            .push((envelope.clone(), data));
        Reply::new(250, "2.0.0", "queued")
    }
}

fn tls() -> TlsInfo {
    TlsInfo {
        version: "TLSv1.3".into(),
        cipher: "TLS13_AES_256_GCM_SHA384".into(),
        peer_subject: None,
        peer_dn: None,
    }
}

fn session(mode: Mode, tls_on: bool, max_message_size: usize) -> (Session<Scripted>, Scripted) {
    let backend = Scripted::default();
    let config = Arc::new(SessionConfig {
        hostname: "mx.mes.test".into(),
        mode,
        max_message_size,
        max_recipients: 2,
        command_timeout: Duration::from_secs(300),
        data_timeout: Duration::from_secs(600),
    });
    let mut s = Session::new(
        backend.clone(),
        config,
        IpAddr::V4(Ipv4Addr::LOCALHOST),
        tls_on.then(tls),
    );
    let greeting = String::from_utf8(s.take_output()).expect("ascii");
    assert_eq!(greeting, "220 mx.mes.test ESMTP MES ready\r\n");
    (s, backend)
}

/// Feeds `input` at once; returns the action and the replies.
async fn send(s: &mut Session<Scripted>, input: &str) -> (Action, String) {
    let action = s.feed(input.as_bytes()).await;
    (action, String::from_utf8(s.take_output()).expect("ascii"))
}

/// Feeds `input` and returns the replies, which must leave the session open.
async fn say(s: &mut Session<Scripted>, input: &str) -> String {
    let (action, out) = send(s, input).await;
    assert_eq!(action, Action::Continue, "{out}");
    out
}

#[tokio::test]
async fn mx_transaction_reaches_the_backend_dot_unstuffed() {
    let (mut s, backend) = session(Mode::Mx, true, 10_000);
    let ehlo = say(&mut s, "EHLO client.test\r\n").await;
    assert!(
        ehlo.starts_with("250-mx.mes.test greets client.test\r\n"),
        "{ehlo}"
    );
    for cap in [
        "PIPELINING",
        "SIZE 10000",
        "8BITMIME",
        "SMTPUTF8",
        "DSN",
        "CHUNKING",
    ] {
        assert!(
            ehlo.contains(&format!("250-{cap}\r\n")) || ehlo.contains(&format!("250 {cap}\r\n")),
            "{cap}: {ehlo}"
        );
    }
    assert!(!ehlo.contains("AUTH"), "MX offers no AUTH: {ehlo}");
    assert!(!ehlo.contains("STARTTLS"), "TLS is already on: {ehlo}");
    // Pipelined (RFC 2920): one read, one reply per command, in order.
    let out = say(
        &mut s,
        "MAIL FROM:<dr.b@other.test> BODY=8BITMIME\r\nRCPT TO:<Dr.A@MES.test> NOTIFY=FAILURE\r\nDATA\r\n",
    )
    .await;
    assert_eq!(
        out,
        "250 2.1.0 Sender OK\r\n250 2.1.5 Recipient OK\r\n354 2.0.0 Start mail input; end with <CRLF>.<CRLF>\r\n"
    );
    let out = say(&mut s, "Subject: x\r\n\r\n..dot first\r\nend\r\n.\r\n").await;
    assert_eq!(out, "250 2.0.0 queued\r\n");
    let delivered = backend.delivered();
    let [(envelope, data)] = delivered.as_slice() else {
        panic!("one delivery: {delivered:?}");
    };
    assert_eq!(envelope.mail_from, "dr.b@other.test");
    assert!(envelope.body_8bit);
    assert_eq!(envelope.recipients.len(), 1);
    assert_eq!(data.as_slice(), b"Subject: x\r\n\r\n.dot first\r\nend\r\n");
    assert!(s.is_idle());
    assert_eq!(
        send(&mut s, "QUIT\r\n").await,
        (Action::Close, "221 2.0.0 Bye\r\n".into())
    );
}

#[tokio::test]
async fn commands_piped_after_starttls_are_dropped() {
    let (mut s, backend) = session(Mode::Mx, false, 10_000);
    let ehlo = say(&mut s, "EHLO c\r\n").await;
    assert!(
        ehlo.contains("250 STARTTLS\r\n") || ehlo.contains("250-STARTTLS\r\n"),
        "{ehlo}"
    );
    assert!(!ehlo.contains("SIZE"), "{ehlo}");
    // Nothing but EHLO, STARTTLS, NOOP and QUIT before TLS.
    assert_eq!(
        say(&mut s, "MAIL FROM:<a@b.test>\r\n").await,
        "530 5.7.0 Must issue a STARTTLS command first\r\n"
    );
    // CVE-2011-0411: what follows STARTTLS in the same read is never executed.
    let (action, out) = send(&mut s, "STARTTLS\r\nMAIL FROM:<a@b.test>\r\n").await;
    assert_eq!(action, Action::StartTls);
    assert_eq!(out, "220 2.0.0 Ready to start TLS\r\n");
    assert!(backend.calls().is_empty(), "{:?}", backend.calls());
    // After the handshake the session starts afresh: EHLO again first.
    s.tls_started(tls());
    assert_eq!(
        say(&mut s, "MAIL FROM:<a@b.test>\r\n").await,
        "503 5.5.1 Bad sequence of commands: send EHLO first\r\n"
    );
    say(&mut s, "EHLO c\r\n").await;
    assert_eq!(
        say(&mut s, "STARTTLS\r\n").await,
        "503 5.5.1 TLS already active\r\n"
    );
}

#[tokio::test]
async fn submission_needs_a_login_and_tells_the_backend_who() {
    let (mut s, backend) = session(Mode::Submission, true, 10_000);
    let ehlo = say(&mut s, "EHLO c\r\n").await;
    assert!(ehlo.contains("AUTH PLAIN LOGIN\r\n"), "{ehlo}");
    assert!(!ehlo.contains("EXTERNAL"), "no client certificate: {ehlo}");
    assert_eq!(
        say(&mut s, "MAIL FROM:<dr.a@mes.test>\r\n").await,
        "530 5.7.0 Authentication required\r\n"
    );
    // PLAIN with an initial response: \0user\0password.
    let wrong = crate::identity::sasl::encode_b64(b"\0dr.a@mes.test\0nope");
    assert_eq!(
        say(&mut s, &format!("AUTH PLAIN {wrong}\r\n")).await,
        "535 5.7.8 Authentication credentials invalid\r\n"
    );
    // LOGIN, in two steps, then the cancel of a third attempt is not needed.
    assert_eq!(say(&mut s, "AUTH LOGIN\r\n").await, "334 VXNlcm5hbWU6\r\n");
    let user = crate::identity::sasl::encode_b64(b"dr.a@mes.test");
    assert_eq!(
        say(&mut s, &format!("{user}\r\n")).await,
        "334 UGFzc3dvcmQ6\r\n"
    );
    let password = crate::identity::sasl::encode_b64(b"secret");
    assert_eq!(
        say(&mut s, &format!("{password}\r\n")).await,
        "235 2.7.0 Authentication successful\r\n"
    );
    assert!(!say(&mut s, "EHLO c\r\n").await.contains("AUTH"));
    assert_eq!(
        say(&mut s, "AUTH PLAIN\r\n").await,
        "503 5.5.1 Bad sequence of commands: already authenticated\r\n"
    );
    assert_eq!(
        say(&mut s, "MAIL FROM:<dr.a@mes.test>\r\n").await,
        "250 2.1.0 Sender OK\r\n"
    );
    assert_eq!(
        backend.calls(),
        [
            "authenticate dr.a@mes.test",
            "authenticate dr.a@mes.test",
            "sender dr.a@mes.test by dr.a@mes.test"
        ]
    );
}

/// A 421 from the backend (the account was disabled since login) closes.
#[tokio::test]
async fn backend_421_at_mail_ends_the_session() {
    let (mut s, _) = session(Mode::Mx, true, 10_000);
    say(&mut s, "EHLO c\r\n").await;
    let (action, out) = send(&mut s, "MAIL FROM:<gone@b.test>\r\nNOOP\r\n").await;
    assert_eq!(action, Action::Close);
    assert_eq!(out, "421 4.7.0 Session ended\r\n");
}

#[tokio::test]
async fn throttled_login_ends_the_session() {
    let (mut s, _) = session(Mode::Submission, true, 10_000);
    say(&mut s, "EHLO c\r\n").await;
    let creds = crate::identity::sasl::encode_b64(b"\0dr.a@mes.test\0throttle");
    let (action, out) = send(&mut s, &format!("AUTH PLAIN {creds}\r\nNOOP\r\n")).await;
    assert_eq!(action, Action::Close);
    assert_eq!(
        out,
        "421 4.7.0 Too many failed authentications, try again later\r\n"
    );
}

#[tokio::test]
async fn mx_offers_no_auth_and_commands_keep_their_order() {
    let (mut s, _) = session(Mode::Mx, true, 10_000);
    assert_eq!(
        say(&mut s, "RCPT TO:<a@b.test>\r\n").await,
        "503 5.5.1 Bad sequence of commands: need MAIL before RCPT\r\n"
    );
    say(&mut s, "EHLO c\r\n").await;
    assert_eq!(
        say(&mut s, "AUTH PLAIN\r\n").await,
        "503 5.5.1 AUTH is not offered here (client certificates identify peers)\r\n"
    );
    assert_eq!(
        say(&mut s, "DATA\r\n").await,
        "503 5.5.1 Bad sequence of commands: need RCPT before DATA\r\n"
    );
    say(&mut s, "MAIL FROM:<>\r\n").await;
    assert_eq!(
        say(&mut s, "MAIL FROM:<>\r\n").await,
        "503 5.5.1 Bad sequence of commands: nested MAIL command\r\n"
    );
    // The backend's refusals go out as they are; the transaction goes on.
    assert_eq!(
        say(&mut s, "RCPT TO:<refuse@b.test>\r\n").await,
        "550 5.1.1 no such user\r\n"
    );
    say(&mut s, "RCPT TO:<a@b.test>\r\n").await;
    say(&mut s, "RCPT TO:<c@b.test>\r\n").await;
    assert_eq!(
        say(&mut s, "RCPT TO:<d@b.test>\r\n").await,
        "452 4.5.3 Too many recipients\r\n"
    );
    assert_eq!(say(&mut s, "RSET\r\n").await, "250 2.0.0 OK\r\n");
    assert!(s.is_idle());
    assert_eq!(
        say(&mut s, "VRFY a\r\n").await,
        "252 2.5.0 Cannot VRFY user, but will accept message\r\n"
    );
    assert_eq!(
        say(&mut s, "FOO\r\n").await,
        "500 5.5.1 Command unrecognized\r\n"
    );
}

#[tokio::test]
async fn oversized_and_long_lined_messages_are_refused_and_the_session_goes_on() {
    let (mut s, backend) = session(Mode::Mx, true, 1024);
    say(&mut s, "EHLO c\r\n").await;
    // Announced too large: refused at MAIL.
    assert_eq!(
        say(&mut s, "MAIL FROM:<a@b.test> SIZE=2048\r\n").await,
        "552 5.3.4 Message size exceeds fixed maximum message size\r\n"
    );
    // Sent too large: the rest is discarded, not buffered, then 552.
    say(
        &mut s,
        "MAIL FROM:<a@b.test>\r\nRCPT TO:<c@d.test>\r\nDATA\r\n",
    )
    .await;
    for _ in 0..40 {
        assert_eq!(say(&mut s, &format!("{}\r\n", "x".repeat(98))).await, "");
    }
    assert_eq!(
        say(&mut s, ".\r\n").await,
        "552 5.3.4 Message size exceeds fixed maximum message size\r\n"
    );
    // A text line over 1000 octets (RFC 5321 §4.5.3.1.6).
    let (mut s2, _) = session(Mode::Mx, true, 10_000);
    say(
        &mut s2,
        "EHLO c\r\nMAIL FROM:<a@b.test>\r\nRCPT TO:<c@d.test>\r\nDATA\r\n",
    )
    .await;
    assert_eq!(
        say(&mut s2, &format!("{}\r\n.\r\n", "y".repeat(1000))).await,
        "500 5.5.2 Message has lines longer than 1000 octets\r\n"
    );
    // A command line over 512 octets.
    assert_eq!(
        say(&mut s, &format!("NOOP {}\r\n", "z".repeat(600))).await,
        "500 5.5.2 Line too long (512 octets at most)\r\n"
    );
    // Nothing reached the backend; the next message does.
    assert!(backend.delivered().is_empty());
    say(
        &mut s,
        "MAIL FROM:<a@b.test>\r\nRCPT TO:<c@d.test>\r\nDATA\r\n",
    )
    .await;
    assert_eq!(say(&mut s, "small\r\n.\r\n").await, "250 2.0.0 queued\r\n");
    assert_eq!(backend.delivered().len(), 1);
}

#[tokio::test]
async fn bdat_chunks_split_across_reads() {
    let (mut s, backend) = session(Mode::Mx, true, 10_000);
    say(
        &mut s,
        "EHLO c\r\nMAIL FROM:<a@b.test>\r\nRCPT TO:<c@d.test>\r\n",
    )
    .await;
    assert_eq!(say(&mut s, "BDAT 7\r\nhel").await, "");
    assert_eq!(
        say(&mut s, "lo\r\n").await,
        "250 2.0.0 7 octets received\r\n"
    );
    assert_eq!(say(&mut s, "BDAT 9 LAST\r\nworld\r\n").await, "");
    assert_eq!(say(&mut s, "\r\n").await, "250 2.0.0 queued\r\n");
    assert_eq!(backend.delivered()[0].1, b"hello\r\nworld\r\n\r\n");
    // A chunk over the size limit is read in full, then fails the transaction.
    let (mut s, backend) = session(Mode::Mx, true, 16);
    say(
        &mut s,
        "EHLO c\r\nMAIL FROM:<a@b.test>\r\nRCPT TO:<c@d.test>\r\n",
    )
    .await;
    assert_eq!(
        say(
            &mut s,
            &format!("BDAT 20 LAST\r\n{}NOOP\r\n", "q".repeat(20))
        )
        .await,
        "552 5.3.4 Message size exceeds fixed maximum message size\r\n250 2.0.0 OK\r\n"
    );
    assert!(backend.delivered().is_empty());
}

/// The same conversation fed at once and one byte at a time gives the same
/// replies and the same message: the state machine does not depend on how
/// the network cuts the input.
#[tokio::test]
async fn replies_do_not_depend_on_how_input_is_cut() {
    let script = "EHLO c\r\nMAIL FROM:<a@b.test>\r\nRCPT TO:<c@d.test>\r\nDATA\r\n\
        Subject: s\r\n\r\n..x\r\n.\r\nMAIL FROM:<a@b.test>\r\nRCPT TO:<c@d.test>\r\n\
        BDAT 3 LAST\r\nabcNOOP\r\n";
    let (mut whole, whole_backend) = session(Mode::Mx, true, 10_000);
    let all = say(&mut whole, script).await;
    let (mut bytes, bytes_backend) = session(Mode::Mx, true, 10_000);
    let mut out = String::new();
    for b in script.as_bytes() {
        assert_eq!(bytes.feed(std::slice::from_ref(b)).await, Action::Continue);
        out.push_str(&String::from_utf8(bytes.take_output()).expect("ascii"));
    }
    assert_eq!(out, all);
    assert_eq!(all.matches("250 2.0.0 queued").count(), 2, "{all}");
    let data = |b: &Scripted| {
        b.delivered()
            .into_iter()
            .map(|(_, d)| d)
            .collect::<Vec<_>>()
    };
    assert_eq!(data(&whole_backend), data(&bytes_backend));
}
