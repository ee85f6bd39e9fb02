//! The SMTP session state machine (`mes::smtp::Session`) fed arbitrary bytes,
//! in arbitrary chunks, over a trivial in-memory `Backend` that accepts or
//! refuses deterministically from what it is given.
//!
//! Input: byte 0 picks the mode (MX or submission) and implicit TLS, byte 1
//! the chunk size; the rest is what the client sends. STARTTLS "succeeds" at
//! once. Every reply line must start with a three-digit code.
#![no_main]

use std::future::Future;
use std::net::{IpAddr, Ipv4Addr};
use std::pin::pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use mes::identity::AccountKind;
use mes::identity::sasl::Credentials;
use mes::smtp::session::{AuthOutcome, Authenticated, Backend, Envelope, SessionView, Target};
use mes::smtp::{Action, Mode, Reply, Session, SessionConfig};
use mes::tls::TlsInfo;

/// Accepts the password `secret`, senders and recipients without `refuse`,
/// and any message without `TEMPFAIL`.
struct Fake;

fn account() -> Authenticated {
    Authenticated {
        account_id: 1,
        address: "dr.a@mes.test".into(),
        kind: AccountKind::Professional,
        stamp: None,
    }
}

impl Backend for Fake {
    async fn authenticate(&self, _: &SessionView, c: Credentials) -> AuthOutcome {
        match c.password.as_str() {
            "secret" => AuthOutcome::Success(account()),
            "throttle" => AuthOutcome::Throttled,
            "patient" => AuthOutcome::Refused(Reply::new(535, "5.7.8", "no")),
            _ => AuthOutcome::Invalid,
        }
    }

    async fn authenticate_external(&self, _: &SessionView, authzid: Option<String>) -> AuthOutcome {
        match authzid {
            None => AuthOutcome::Success(account()),
            Some(_) => AuthOutcome::Invalid,
        }
    }

    async fn check_sender(
        &self,
        _: &SessionView,
        from: &str,
    ) -> Result<Option<mes::identity::author::SenderCheck>, Reply> {
        if from.contains("refuse") {
            Err(Reply::new(550, "5.7.1", "sender refused"))
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
        if rcpt.contains("refuse") {
            Err(Reply::new(550, "5.1.1", "no such user"))
        } else if rcpt.contains("remote") {
            Ok(Target::Remote)
        } else {
            Ok(Target::Local {
                account_id: 2,
                mailbox_id: 3,
                patient: rcpt.contains("patient"),
            })
        }
    }

    async fn deliver(&self, _: &SessionView, _: &Envelope, data: Vec<u8>) -> Reply {
        if data.windows(8).any(|w| w == b"TEMPFAIL") {
            Reply::new(451, "4.3.0", "try again")
        } else {
            Reply::new(250, "2.0.0", "queued")
        }
    }
}

/// The fake backend never waits: every future is ready at the first poll.
fn now<F: Future>(f: F) -> F::Output {
    let mut f = pin!(f);
    match f.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(v) => v,
        Poll::Pending => panic!("the session waited on a ready backend"),
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

fn check_replies(out: &[u8]) {
    for line in out.split_inclusive(|&b| b == b'\n') {
        assert!(
            line.len() >= 5 && line[..3].iter().all(u8::is_ascii_digit) && line.ends_with(b"\r\n"),
            "bad reply line {:?}",
            String::from_utf8_lossy(line)
        );
    }
}

fuzz_target!(|data: &[u8]| {
    let [flags, chunk, input @ ..] = data else {
        return;
    };
    let config = Arc::new(SessionConfig {
        hostname: "mx.mes.test".into(),
        mode: if flags & 1 == 0 {
            Mode::Mx
        } else {
            Mode::Submission
        },
        max_message_size: 64 * 1024,
        max_recipients: 5,
        command_timeout: Duration::from_secs(300),
        data_timeout: Duration::from_secs(600),
    });
    let implicit = (flags & 2 != 0).then(tls);
    let mut session = Session::new(Fake, config, IpAddr::V4(Ipv4Addr::LOCALHOST), implicit);
    check_replies(&session.take_output());
    for piece in input.chunks(usize::from(*chunk).max(1)) {
        let action = now(session.feed(piece));
        check_replies(&session.take_output());
        match action {
            Action::Continue => {}
            Action::StartTls => session.tls_started(tls()),
            Action::Close => return,
        }
        let _ = (session.is_idle(), session.timeout());
    }
    session.shutdown("closing");
    check_replies(&session.take_output());
});
