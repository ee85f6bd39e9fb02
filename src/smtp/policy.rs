//! Inbound SMTP policy: who may log in, send as whom and to whom, and the hand-over
//! of accepted messages to the delivery path. The session asks; this decides.

use std::sync::{Arc, RwLock};

use rand::Rng;

use super::Mode;
use super::reply::{self, Reply};
use super::session::{AuthOutcome, Authenticated, Backend, Envelope, RcptTarget, SessionView};
use crate::delivery::facts::MessageFacts;
use crate::delivery::prepare::{Analysis, Incoming};
use crate::delivery::report;
use crate::delivery::trace::{self, TraceInfo};
use crate::delivery::{Deliverer, NewRecipient};
use crate::dossier::authorship;
use crate::dossier::filing::{self, Depositor, PatientRecipient};
use crate::dossier::limits::Limits;
use crate::dossier::mdn::{self, Disposition};
use crate::identity::auth::{Authenticator, LoginResult};
use crate::identity::author::{Author, AuthorRule, Delegations, Peer, Refusal as AuthorRefusal};
use crate::identity::sasl::Credentials;
use crate::imap::structure::ParsedMessage;
use crate::store::dossier::DossierFiling;
use crate::store::{Store, now};
use crate::threads::{self, ThreadLink};
use crate::trust::TrustSpace;

/// What every SMTP session of the server shares.
#[derive(Debug)]
pub struct SmtpServices {
    /// Our host name.
    pub hostname: String,
    /// The store.
    pub store: Store,
    /// The trust space in force (reloaded periodically).
    pub trust: Arc<RwLock<Arc<TrustSpace>>>,
    /// Password and certificate logins.
    pub auth: Authenticator,
    /// The delivery path.
    pub deliverer: Deliverer,
    /// Organisation mailbox -> accounts allowed to send as it.
    pub delegations: Delegations,
    /// Work after a commit (MDNs): tracked, and waited for at shutdown.
    pub after_commit: tokio_util::task::TaskTracker,
}

/// The [`Backend`] of real sessions: a cheap handle on [`SmtpServices`].
#[derive(Debug, Clone)]
pub struct ServerBackend(pub Arc<SmtpServices>);

impl SmtpServices {
    fn trust(&self) -> Arc<TrustSpace> {
        self.trust.read().map(|t| t.clone()).unwrap_or_default()
    }

    /// Indexes structured attachments for local recipients. `Err` is the 550
    /// that refuses a message whose documents do not concern its patient
    /// recipient (the sender also gets an error MDN when it asked for one).
    async fn examine_dossier(
        &self,
        envelope: &Envelope,
        content: &[u8],
        facts: &MessageFacts,
        author: Option<&Author>,
    ) -> Result<(Option<Box<DossierFiling>>, Vec<String>, Option<Analysis>), Reply> {
        // Reports (null sender) file nothing, even when they return a package.
        let Some(author) = author else {
            return Ok((None, Vec::new(), None));
        };
        let mut patients = Vec::new();
        let mut professionals = Vec::new();
        for r in &envelope.recipients {
            match r.target {
                RcptTarget::Local {
                    account_id,
                    patient: true,
                    ..
                } => {
                    let account = self
                        .store
                        .account_by_id(account_id)
                        .await
                        .map_err(|_| reply::temporary_failure())?;
                    if let Some(ins) = account.and_then(|a| a.ins) {
                        patients.push(PatientRecipient {
                            account_id,
                            address: r.address.clone(),
                            ins,
                        });
                    }
                }
                RcptTarget::Local { .. } => professionals.push(r.address.clone()),
                RcptTarget::Remote => {}
            }
        }
        if patients.is_empty() && professionals.is_empty() {
            return Ok((None, Vec::new(), None));
        }
        let raw = content.to_vec();
        let (p, pros) = (patients.clone(), professionals);
        // One parse for both: the IMAP structure the store keeps and the
        // attachments to index (base64 decoding a large package is most of it).
        let (analysis, outcome) = tokio::task::spawn_blocking(move || {
            let limits = Limits::default();
            let (parsed, outcome) = ParsedMessage::parse_sharing(&raw, |message| match message {
                Some(m) => filing::examine_parsed(m, &p, &pros, &limits),
                None => filing::examine(&raw, &p, &pros, &limits),
            });
            (Analysis::of_parsed(&raw, &parsed), outcome)
        })
        .await
        .map_err(|_| reply::temporary_failure())?;
        // Only a document's author replaces it.
        let outcome = match outcome {
            Ok(mut e) => match e.filing.as_mut() {
                Some(filing) => {
                    let depositor = Depositor::new(
                        &author.address,
                        author.kind,
                        author.establishment.as_deref(),
                    );
                    authorship::sign_and_check(&self.store, filing, &depositor)
                        .await
                        .map_err(|err| {
                            tracing::error!(error = %err, "depositor lookup failed");
                            reply::temporary_failure()
                        })?
                        .map(|()| e)
                }
                None => Ok(e),
            },
            Err(refusal) => Err(refusal),
        };
        match outcome {
            Ok(e) => Ok((e.filing.map(Box::new), e.filed_for, Some(analysis))),
            Err(refusal) => {
                tracing::warn!(code = refusal.mdn_code(), "structured attachments refused");
                if let Some(to) = mdn_address(facts, envelope) {
                    for p in &patients {
                        self.send_mdn(
                            &to,
                            &p.address,
                            facts.message_id.as_deref(),
                            content,
                            Disposition::Error(refusal.mdn_code(), refusal.to_string()),
                        )
                        .await;
                    }
                }
                Err(Reply::new(550, "5.7.1", refusal.smtp_text()))
            }
        }
    }

    /// Sends an MDN about `recipient`'s copy to `to` (best effort, logged).
    async fn send_mdn(
        &self,
        to: &str,
        recipient: &str,
        message_id: Option<&str>,
        content: &[u8],
        disposition: Disposition,
    ) {
        // Reports go to senders, never into a patient's mailbox.
        if let Ok(Some(a)) = self.store.account_by_address(to).await
            && a.kind == crate::identity::AccountKind::Patient
        {
            return;
        }
        let original = mdn::Original {
            notify_to: to,
            final_recipient: recipient,
            message_id,
            headers: crate::mime::header_fields(content),
        };
        let built = mdn::build(&self.hostname, &original, &disposition);
        match built {
            Ok(m) => {
                if let Err(e) = report::send(&self.store, &self.deliverer, to, m, "mdn").await {
                    tracing::error!(error = %e, "MDN delivery failed");
                }
            }
            Err(e) => tracing::error!(error = %e, "MDN could not be built"),
        }
    }

    /// The author rule over the whitelist in force.
    fn rule<'a>(&'a self, trust: &'a TrustSpace) -> AuthorRule<'a> {
        AuthorRule {
            store: &self.store,
            trust,
            delegations: &self.delegations,
        }
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

/// A peer as the logs name it: the account or the certificate, nothing else.
struct PeerLog<'a>(Peer<'a>);

impl std::fmt::Display for PeerLog<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            Peer::Account(a) => write!(f, "account {a}"),
            Peer::Certificate(s) => write!(f, "certificate {s}"),
            Peer::Anonymous => f.write_str("unauthenticated"),
        }
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

/// The facts of a message to a patient that decide its thread, from its proven author.
fn thread_incoming(
    author: &Author,
    facts: &MessageFacts,
    message_id: Option<String>,
) -> threads::Incoming {
    threads::Incoming {
        sender: author.address.clone(),
        sender_name: author.name.clone(),
        sender_profession: author.profession.clone(),
        via: author.via.clone(),
        other_operator: author.other_operator,
        subject: facts.subject.clone().unwrap_or_default(),
        references: facts.references.clone(),
        ends: facts.ends_thread,
        message_id,
    }
}

/// Where an MDN may go: the `Disposition-Notification-To` address only when it
/// is the envelope sender (RFC 8098 §2.1: no reports to third parties), never
/// for the null sender.
fn mdn_address(facts: &MessageFacts, envelope: &Envelope) -> Option<String> {
    facts
        .notify_to
        .clone()
        .filter(|to| !envelope.mail_from.is_empty() && to.eq_ignore_ascii_case(&envelope.mail_from))
}

fn outcome(result: LoginResult) -> AuthOutcome {
    match result {
        LoginResult::Success(acc) => AuthOutcome::Success(Authenticated {
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

    async fn check_sender(&self, view: &SessionView, mail_from: &str) -> Result<(), Reply> {
        let trust = self.0.trust();
        let peer = peer_of(view);
        match self.0.rule(&trust).check_envelope(peer, mail_from).await {
            Ok(()) => Ok(()),
            Err(refusal) => {
                tracing::warn!(
                    mode = view.mode.as_str(),
                    peer = %PeerLog(peer),
                    reason = %refusal,
                    "envelope sender refused"
                );
                Err(refusal_reply(&refusal, view.mode))
            }
        }
    }

    async fn check_recipient(
        &self,
        view: &SessionView,
        _envelope: &Envelope,
        rcpt: &str,
    ) -> Result<RcptTarget, Reply> {
        let store = &self.0.store;
        let account = store.account_by_address(rcpt).await.map_err(|e| {
            tracing::error!(error = %e, "recipient lookup failed");
            reply::temporary_failure()
        })?;
        if let Some(acc) = account {
            if acc.disabled {
                return Err(Reply::new(550, "5.2.1", "Mailbox disabled"));
            }
            let inbox = store
                .mailbox_id(acc.id, "INBOX")
                .await
                .map_err(|_| reply::temporary_failure())?
                .ok_or_else(reply::temporary_failure)?;
            return Ok(RcptTarget::Local {
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
        if hosted.is_some() {
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
                    Ok(RcptTarget::Remote)
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

    async fn deliver(&self, view: &SessionView, envelope: &Envelope, data: Vec<u8>) -> Reply {
        let facts = MessageFacts::read(&data);
        let trust = self.0.trust();
        let peer = peer_of(view);
        let authored = match self
            .0
            .rule(&trust)
            .establish(peer, &envelope.mail_from, &facts)
            .await
        {
            Ok(authored) => authored,
            Err(refusal) => {
                tracing::warn!(
                    mode = view.mode.as_str(),
                    peer = %PeerLog(peer),
                    reason = %refusal,
                    "message refused: author not proven"
                );
                return match refusal {
                    AuthorRefusal::Unavailable => reply::temporary_failure(),
                    _ => Reply::new(550, "5.7.1", refusal.to_string()),
                };
            }
        };
        let id: String = {
            let mut rng = rand::rng();
            (0..16)
                .map(|_| format!("{:x}", rng.random_range(0..16u8)))
                .collect()
        };
        let tls = view.tls.as_ref();
        let info = TraceInfo {
            hostname: self.0.hostname.clone(),
            helo: view.helo.clone(),
            peer_ip: view.peer_ip.to_string(),
            protocol: match (tls.is_some(), view.auth.is_some()) {
                (true, true) => "ESMTPSA",
                (true, false) => "ESMTPS",
                (false, true) => "ESMTPA",
                (false, false) => "ESMTP",
            },
            tls_version: tls.map(|t| t.version.clone()),
            tls_cipher: tls.map(|t| t.cipher.clone()),
            peer_subject: tls.and_then(|t| t.peer_subject.clone()),
            id: id.clone(),
            time: now(),
        };
        let (content, message_id) = trace::assemble(
            &data,
            &facts,
            &envelope.mail_from,
            &info,
            view.mode == Mode::Submission,
        );
        drop(data);
        let recipients = envelope
            .recipients
            .iter()
            .map(|r| NewRecipient {
                address: r.address.clone(),
                orcpt: r.orcpt.clone(),
                notify: r.notify as i64,
                mailbox_id: match r.target {
                    RcptTarget::Local { mailbox_id, .. } => Some(mailbox_id),
                    RcptTarget::Remote => None,
                },
                remote: r.target == RcptTarget::Remote,
                patient_id: match r.target {
                    RcptTarget::Local {
                        account_id,
                        patient: true,
                        ..
                    } => Some(account_id),
                    _ => None,
                },
            })
            .collect();
        let to_patient = envelope
            .recipients
            .iter()
            .any(|r| matches!(r.target, RcptTarget::Local { patient: true, .. }));
        // Reports never join a patient thread; the author is the proven one.
        let thread = match authored.author() {
            Some(author) if to_patient => Some(ThreadLink::ToPatient(thread_incoming(
                author,
                &facts,
                message_id.clone(),
            ))),
            _ => None,
        };
        let (dossier, filed_for, analysis) = match self
            .0
            .examine_dossier(envelope, &content, &facts, authored.author())
            .await
        {
            Ok(found) => found,
            Err(refusal) => return refusal,
        };
        let mdn_to = mdn_address(&facts, envelope);
        let mdn_content = (mdn_to.is_some() && !filed_for.is_empty()).then(|| content.clone());
        let message = Incoming {
            thread,
            dossier,
            content,
            mail_from: envelope.mail_from.clone(),
            message_id,
            origin: view.mode.as_str(),
            received_at: info.time,
            recipients,
            dsn_envid: envelope.env_id.clone(),
            dsn_ret: envelope.ret.map(str::to_string),
            flags: String::new(),
            analysis,
        }
        .prepare();
        let size = message.data.len();
        match self.0.deliverer.deliver(message).await {
            Ok(stored) => {
                match authored.author() {
                    Some(author) => tracing::info!(
                        id = %id,
                        mode = view.mode.as_str(),
                        author = %author.address,
                        proof = %author.proof,
                        size,
                        recipients = envelope.recipients.len(),
                        stored_id = stored.message_id,
                        "message accepted"
                    ),
                    None => tracing::info!(
                        id = %id,
                        mode = view.mode.as_str(),
                        author = "report (null sender)",
                        peer = %PeerLog(peer),
                        size,
                        recipients = envelope.recipients.len(),
                        stored_id = stored.message_id,
                        "message accepted"
                    ),
                }
                if let (Some(to), Some(content)) = (mdn_to, mdn_content) {
                    // After the commit: tell the sender its documents were filed.
                    let services = self.0.clone();
                    let message_id = facts.message_id.clone();
                    self.0.after_commit.spawn(async move {
                        for patient in filed_for {
                            services
                                .send_mdn(
                                    &to,
                                    &patient,
                                    message_id.as_deref(),
                                    &content,
                                    Disposition::Processed,
                                )
                                .await;
                        }
                    });
                }
                Reply::new(250, "2.0.0", format!("Message accepted, id {id}"))
            }
            Err(e) => {
                tracing::error!(id = %id, error = %e, "delivery failed");
                reply::temporary_failure()
            }
        }
    }
}
