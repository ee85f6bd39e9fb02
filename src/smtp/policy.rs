//! Inbound SMTP policy: who may log in, send as whom and to whom, and the hand-over
//! of accepted messages to the delivery path. The session asks; this decides.

use std::sync::{Arc, RwLock};

use super::Mode;
use super::reply::{self, Reply};
use super::session::{AuthOutcome, Authenticated, Backend, Envelope, SessionView};
use crate::delivery::quota::QuotaRefusal;
use crate::delivery::{AcceptError, Acceptor, Smtp, Source, Target};
use crate::identity::auth::{Authenticator, CredentialStamp, LoginResult};
use crate::identity::author::{Peer, Refusal as AuthorRefusal, SenderCheck};
use crate::identity::sasl::Credentials;
use crate::store::Store;
use crate::trust::TrustSpace;

/// What every SMTP session of the server shares.
#[derive(Debug)]
pub struct SmtpServices {
    /// The store.
    pub store: Store,
    /// The trust space in force (reloaded periodically).
    pub trust: Arc<RwLock<Arc<TrustSpace>>>,
    /// Password and certificate logins.
    pub auth: Authenticator,
    /// The delivery path (and the author rule it applies).
    pub delivery: Acceptor,
}

/// The [`Backend`] of real sessions: a cheap handle on [`SmtpServices`].
#[derive(Debug, Clone)]
pub struct ServerBackend(pub Arc<SmtpServices>);

impl SmtpServices {
    fn trust(&self) -> Arc<TrustSpace> {
        self.trust.read().map(|t| t.clone()).unwrap_or_default()
    }
}

/// What authentication proved about the session's peer.
fn peer_of(view: &SessionView) -> Peer<'_> {
    match (view.mode, &view.auth) {
        (Mode::Submission, Some(auth)) => Peer::Account(&auth.address),
        (Mode::Submission, None) => Peer::Anonymous,
        (Mode::Mx, _) => view
            .tls
            .as_ref()
            .and_then(|t| t.peer_subject.as_deref())
            .map_or(Peer::Anonymous, Peer::Certificate),
    }
}

/// The SMTP reply for a refused sender or author.
fn refusal_reply(refusal: &AuthorRefusal, mode: Mode) -> Reply {
    match refusal {
        AuthorRefusal::Unavailable => reply::temporary_failure(),
        AuthorRefusal::NoCertificate if mode == Mode::Submission => {
            Reply::new(530, "5.7.0", "Authentication required")
        }
        AuthorRefusal::NoCertificate => Reply::new(530, "5.7.0", refusal.to_string()),
        AuthorRefusal::NullOnSubmission | AuthorRefusal::NotOwned { .. } => {
            Reply::new(553, "5.7.1", refusal.to_string())
        }
        _ => Reply::new(550, "5.7.1", refusal.to_string()),
    }
}

/// A quota refusal (RFC 3463 X.2.2 mailbox full): 452 while the mailbox is
/// full, 552 when the message alone is larger than its quota.
fn quota_reply(refusal: &QuotaRefusal) -> Reply {
    if refusal.permanent() {
        Reply::new(
            552,
            "5.2.2",
            format!(
                "Message larger than the mailbox quota of {}",
                refusal.address()
            ),
        )
    } else {
        Reply::new(
            452,
            "4.2.2",
            format!("Mailbox of {} is full, try again later", refusal.address()),
        )
    }
}

fn outcome(result: LoginResult) -> AuthOutcome {
    match result {
        LoginResult::Success(acc) => AuthOutcome::Success(Authenticated {
            stamp: Some(CredentialStamp::of(&acc)),
            account_id: acc.id,
            address: acc.address,
            kind: acc.kind,
        }),
        LoginResult::Invalid => AuthOutcome::Invalid,
        LoginResult::Throttled => AuthOutcome::Throttled,
        LoginResult::Patient(_) => AuthOutcome::Refused(Reply::new(
            535,
            "5.7.8",
            "Patient accounts use the patient web space, not SMTP",
        )),
        LoginResult::Closed => {
            AuthOutcome::Refused(Reply::new(535, "5.7.8", "This patient space is closed"))
        }
        LoginResult::Unavailable => {
            AuthOutcome::Refused(Reply::new(454, "4.7.0", "Temporary authentication failure"))
        }
    }
}

impl Backend for ServerBackend {
    async fn authenticate(&self, view: &SessionView, credentials: Credentials) -> AuthOutcome {
        outcome(self.0.auth.login(view.peer_ip, credentials).await)
    }

    async fn authenticate_external(
        &self,
        view: &SessionView,
        authzid: Option<String>,
    ) -> AuthOutcome {
        let Some(subject) = view.tls.as_ref().and_then(|t| t.peer_subject.clone()) else {
            return AuthOutcome::Invalid;
        };
        outcome(
            self.0
                .auth
                .login_certificate(&subject, authzid.as_deref())
                .await,
        )
    }

    async fn check_sender(
        &self,
        view: &SessionView,
        mail_from: &str,
    ) -> Result<Option<SenderCheck>, Reply> {
        // Each transaction of a logged-in session first checks that the
        // account is still enabled with the credentials it logged in with.
        if let Some(Authenticated {
            account_id,
            address,
            stamp: Some(stamp),
            ..
        }) = &view.auth
        {
            match self.0.auth.still_valid(*account_id, stamp).await {
                Ok(true) => {}
                Ok(false) => {
                    tracing::info!(account = %address, "SMTP session ended: account disabled or credentials changed");
                    return Err(Reply::new(
                        421,
                        "4.7.0",
                        "Session ended: the account was disabled or its credentials changed",
                    ));
                }
                Err(e) => {
                    tracing::error!(error = %e, "account recheck failed");
                    return Err(reply::temporary_failure());
                }
            }
        }
        let trust = self.0.trust();
        let peer = peer_of(view);
        match self
            .0
            .delivery
            .author_rule(&trust)
            .check_envelope(peer, mail_from)
            .await
        {
            Ok(sender) => Ok(sender),
            Err(refusal) => {
                tracing::warn!(
                    mode = view.mode.as_str(),
                    peer = %peer,
                    reason = %refusal,
                    "envelope sender refused"
                );
                crate::metrics::message_refused(listener_label(view), "sender");
                Err(refusal_reply(&refusal, view.mode))
            }
        }
    }

    async fn check_recipient(
        &self,
        view: &SessionView,
        envelope: &Envelope,
        rcpt: &str,
    ) -> Result<Target, Reply> {
        let target = self.recipient_target(view, envelope, rcpt).await;
        if let Err(reply) = &target {
            let reason = if reply.code >= 500 {
                "recipient"
            } else {
                "recipient_temporary"
            };
            crate::metrics::message_refused(listener_label(view), reason);
        }
        target
    }

    async fn deliver(&self, view: &SessionView, envelope: &Envelope, data: Vec<u8>) -> Reply {
        let smtp = Smtp {
            peer: peer_of(view),
            helo: &view.helo,
            peer_ip: view.peer_ip,
            tls: view.tls.as_ref(),
            authenticated: view.auth.is_some(),
            mail_from: &envelope.mail_from,
            sender: envelope.sender.as_ref(),
            recipients: &envelope.recipients,
            env_id: envelope.env_id.as_deref(),
            ret: envelope.ret,
        };
        let source = match view.mode {
            Mode::Mx => Source::Mx(smtp),
            Mode::Submission => Source::Submission(smtp),
        };
        match self.0.delivery.accept(source, data).await {
            Ok(accepted) => Reply::new(
                250,
                "2.0.0",
                format!("Message accepted, id {}", accepted.id),
            ),
            Err(AcceptError::Author(AuthorRefusal::Unavailable)) => reply::temporary_failure(),
            Err(AcceptError::Author(refusal)) => Reply::new(550, "5.7.1", refusal.to_string()),
            Err(AcceptError::Documents(refusal)) => Reply::new(550, "5.7.1", refusal.smtp_text()),
            Err(AcceptError::Quota(refusal)) => quota_reply(&refusal),
            Err(e) => {
                tracing::error!(error = %e, "delivery failed");
                reply::temporary_failure()
            }
        }
    }
}

impl ServerBackend {
    /// Where a recipient goes, or the reply refusing it.
    async fn recipient_target(
        &self,
        view: &SessionView,
        envelope: &Envelope,
        rcpt: &str,
    ) -> Result<Target, Reply> {
        let store = &self.0.store;
        let account = store.account_with_inbox(rcpt).await.map_err(|e| {
            tracing::error!(error = %e, "recipient lookup failed");
            reply::temporary_failure()
        })?;
        if let Some(found) = account {
            let acc = found.account;
            if acc.disabled {
                // A closed patient space is told as such (lifecycle's one rule).
                if acc.kind == crate::identity::AccountKind::Patient
                    && let Some(local) = rcpt.rsplit_once('@').map(|(l, _)| l)
                    && let Some(text) = crate::lifecycle::refusal_for(store, local)
                        .await
                        .map_err(|_| reply::temporary_failure())?
                {
                    return Err(Reply::new(550, "5.1.1", text));
                }
                return Err(Reply::new(550, "5.2.1", "Mailbox disabled"));
            }
            let inbox = found.inbox.ok_or_else(reply::temporary_failure)?;
            // Told now when the quota cannot take the declared size (or, without
            // SIZE, anything at all); the delivery path checks again at the end of DATA.
            let size = envelope.size.max(1) as u64;
            if let Err(refusal) = self.0.delivery.quota_in_force(&found.quota).admit(size, 1) {
                // By id: a patient's address carries their INS.
                tracing::info!(account_id = acc.id, "recipient refused: quota");
                return Err(quota_reply(&refusal));
            }
            return Ok(Target::Local {
                account_id: acc.id,
                mailbox_id: inbox,
                patient: acc.kind == crate::identity::AccountKind::Patient,
            });
        }
        let domain = rcpt.rsplit_once('@').map(|(_, d)| d).unwrap_or_default();
        let hosted = store
            .domain_kind(domain)
            .await
            .map_err(|_| reply::temporary_failure())?;
        if let Some(kind) = hosted {
            if kind == crate::identity::DomainKind::Patient {
                let local = rcpt.rsplit_once('@').map(|(l, _)| l).unwrap_or_default();
                let refusal = crate::lifecycle::refusal_for(store, local)
                    .await
                    .map_err(|_| reply::temporary_failure())?;
                if let Some(text) = refusal {
                    return Err(Reply::new(550, "5.1.1", text));
                }
            }
            return Err(Reply::new(550, "5.1.1", "No such mailbox here"));
        }
        match view.mode {
            Mode::Mx => Err(Reply::new(
                550,
                "5.7.1",
                "Relaying denied: not a local mailbox",
            )),
            Mode::Submission => {
                if self.0.trust().is_whitelisted(domain) {
                    Ok(Target::Remote)
                } else {
                    Err(Reply::new(
                        550,
                        "5.7.1",
                        format!("Recipient domain {domain} is outside the trust space"),
                    ))
                }
            }
        }
    }
}

/// The listener as a metrics label: an MX peer proven by its certificate is `relay_in`.
fn listener_label(view: &SessionView) -> &'static str {
    match (view.mode, peer_of(view)) {
        (Mode::Mx, Peer::Certificate(_)) => "relay_in",
        (mode, _) => mode.as_str(),
    }
}
