//! The one path every accepted message takes, whatever its [`Source`]: who
//! wrote it (the author rule), where it goes, trace headers, patient threads,
//! documents filed in patients' records, one commit, then the work that
//! follows the commit (patient notices, MDNs) on the task set shutdown waits
//! for.
//!
//! Sources differ on purpose (APPEND stores the bytes as given and starts no
//! thread; reports have no author and join no thread; only SMTP mail files
//! documents): those differences are the source's [`Rules`], read by the one
//! path, never a second assembly.

use std::net::IpAddr;
use std::pin::Pin;
use std::sync::{Arc, RwLock};
use std::time::Instant;

use tokio::task::JoinHandle;
use tokio_util::task::TaskTracker;

use super::prepare::{Analysis, Incoming};
use super::quota::QuotaRefusal;
use super::trace::{self, TraceInfo};
use super::{Deliverer, DeliveryError, NewRecipient, Stored};
use crate::agenda;
use crate::config::QuotaSettings;
use crate::dossier::authorship;
use crate::dossier::filing::{self, Depositor, PatientRecipient, Refused};
use crate::dossier::headers::MssHeaders;
use crate::dossier::limits::Limits;
use crate::dossier::mdn::{self, Disposition};
use crate::identity::AccountKind;
use crate::identity::author::{
    Author, AuthorRule, Authored, Delegations, Peer, Refusal as AuthorRefusal, SenderCheck,
};
use crate::metrics;
use crate::mime::facts::MessageFacts;
use crate::mime::structure::ParsedMessage;
use crate::store::accounts::Account;
use crate::store::agenda::AgendaFiling;
use crate::store::dossier::DossierFiling;
use crate::store::messages::NewMessage;
use crate::store::threads::Thread;
use crate::store::{Store, StoreError};
use crate::threads::notify::Notifier;
use crate::threads::{self, ThreadLink};
use crate::tls::TlsInfo;
use crate::trust::TrustSpace;

mod envelope;
#[cfg(test)]
mod tests;

/// Where an accepted message comes from, with what that source proved.
#[derive(Debug, Clone, Copy)]
pub enum Source<'a> {
    /// Another operator, or a hospital system with a mapped certificate, on the MX listener.
    Mx(Smtp<'a>),
    /// A professional's client on submission.
    Submission(Smtp<'a>),
    /// A client filing a message in one of its own folders (IMAP APPEND).
    Append(Append<'a>),
    /// A patient writing in a thread (API, webmail).
    Patient(FromPatient<'a>),
    /// A report the server writes itself (DSN, MDN).
    Report(Report<'a>),
    /// A patient's answer to an invitation (iTIP REPLY) to its organiser.
    CalendarReply(CalendarReply<'a>),
    /// A connected service's notification to its patient (`messages.notify`).
    Service(ServiceNotice<'a>),
}

/// An SMTP transaction at the end of DATA.
#[derive(Debug, Clone, Copy)]
pub struct Smtp<'a> {
    /// What authentication proved about the peer.
    pub peer: Peer<'a>,
    /// The client's EHLO name.
    pub helo: &'a str,
    /// The client's address.
    pub peer_ip: IpAddr,
    /// TLS parameters, if any.
    pub tls: Option<&'a TlsInfo>,
    /// An account logged in (ESMTPA).
    pub authenticated: bool,
    /// Reverse path ("" for the null sender).
    pub mail_from: &'a str,
    /// What the check of the reverse path proved at MAIL FROM.
    pub sender: Option<&'a SenderCheck>,
    /// Accepted recipients, resolved at RCPT.
    pub recipients: &'a [Recipient],
    /// RFC 3461 ENVID.
    pub env_id: Option<&'a str>,
    /// RFC 3461 RET.
    pub ret: Option<&'static str>,
}

/// IMAP APPEND into a folder of the logged-in account.
#[derive(Debug, Clone, Copy)]
pub struct Append<'a> {
    /// The logged-in account's address.
    pub account: &'a str,
    /// The target folder.
    pub mailbox_id: i64,
    /// Initial flags, normalised.
    pub flags: &'a str,
    /// The INTERNALDATE given (Unix seconds), else now.
    pub internal_date: Option<i64>,
}

/// A patient's message in one of their threads (built by `threads::compose`).
#[derive(Debug, Clone, Copy)]
pub struct FromPatient<'a> {
    /// The patient, logged in to the patient space.
    pub patient: &'a Account,
    /// The thread written in.
    pub thread: &'a Thread,
}

/// A report of ours to one address (null reverse-path: no report about a report).
#[derive(Debug, Clone, Copy)]
pub struct Report<'a> {
    /// What it reports.
    pub kind: ReportKind,
    /// Where it goes.
    pub to: &'a str,
}

/// A patient's iTIP REPLY (`agenda::reply`) to the organiser of one of
/// their appointments: the web layer checked that the appointment is the
/// patient's and `to` its organiser (the proven author of the invitation),
/// so it needs no open thread; it joins none.
#[derive(Debug, Clone, Copy)]
pub struct CalendarReply<'a> {
    /// The patient, logged in to the patient space.
    pub patient: &'a Account,
    /// The organiser.
    pub to: &'a str,
}

/// A connected service's notification (`services::notify`): the service was
/// proven by its access token and the patient's consent by the gate, so the
/// web layer hands over the patient and the fixed sender of the service.
/// It goes to the patient's INBOX only, in a thread of its own that is ended
/// at once (nobody reads replies to it).
#[derive(Debug, Clone, Copy)]
pub struct ServiceNotice<'a> {
    /// The patient.
    pub patient: &'a Account,
    /// The service's fixed no-reply address (`services::notify::from_address`).
    pub from: &'a str,
    /// The name the patient sees (`services::notify::display_name`).
    pub name: &'a str,
}

/// The kinds of reports the server writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReportKind {
    /// RFC 3464 delivery status notification (the relay).
    Dsn,
    /// RFC 8098 disposition notification (dossier filing).
    Mdn,
}

/// Where an accepted SMTP recipient goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// A local account's INBOX.
    Local {
        /// The account.
        account_id: i64,
        /// Its INBOX.
        mailbox_id: i64,
        /// A patient: the message joins the patient's threads and record.
        patient: bool,
    },
    /// Another operator of the trust space (outbound queue).
    Remote,
}

/// One accepted SMTP recipient.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recipient {
    /// Normalised address.
    pub address: String,
    /// RFC 3461 ORCPT.
    pub orcpt: Option<String>,
    /// RFC 3461 NOTIFY bits (smtp-proto's `RCPT_NOTIFY_*`).
    pub notify: u64,
    /// Where it goes.
    pub target: Target,
}

/// What the path does with a source's messages: how sources differ, as data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rules {
    /// Stored with the message (`messages.origin`).
    pub origin: &'static str,
    /// Which trace headers are added.
    pub trace: TraceRule,
    /// A missing Message-ID and Date are added (RFC 6409 §8: submission).
    pub adds_missing_ids: bool,
    /// How the message takes part in patient threads.
    pub threads: ThreadRule,
    /// Structured attachments are filed in patient recipients' records
    /// (refused whole when they do not concern them), and the sender may
    /// ask for an MDN about it.
    pub files_documents: bool,
}

/// Which trace headers a source's messages get.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TraceRule {
    /// Return-Path and Received (RFC 5321 §4.4).
    Received,
    /// `Return-Path: <>` when delivered here, nothing when queued (our reports).
    NullPathWhenLocal,
    /// The bytes as given (APPEND files a client's own copy).
    None,
}

/// How a source's messages take part in patient threads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ThreadRule {
    /// A proven author's message to patients joins or opens their threads.
    ToPatients,
    /// A patient's message continues the thread it is written in, if still open.
    FromPatient,
    /// Never part of a thread.
    Never,
    /// A thread of its own for the patient recipient, ended at once (no reply).
    Notice,
}

impl Source<'_> {
    /// The rules for this source.
    pub fn rules(&self) -> Rules {
        let smtp = |origin, adds_missing_ids| Rules {
            origin,
            trace: TraceRule::Received,
            adds_missing_ids,
            threads: ThreadRule::ToPatients,
            files_documents: true,
        };
        match self {
            Source::Mx(_) => smtp("mx", false),
            Source::Submission(_) => smtp("submission", true),
            Source::Append(_) => Rules {
                origin: "append",
                trace: TraceRule::None,
                adds_missing_ids: false,
                threads: ThreadRule::Never,
                files_documents: false,
            },
            Source::Patient(_) => Rules {
                origin: "patient",
                trace: TraceRule::Received,
                adds_missing_ids: false,
                threads: ThreadRule::FromPatient,
                files_documents: false,
            },
            Source::CalendarReply(_) => Rules {
                origin: "itip-reply",
                trace: TraceRule::Received,
                adds_missing_ids: false,
                threads: ThreadRule::Never,
                files_documents: false,
            },
            Source::Service(_) => Rules {
                origin: "service",
                trace: TraceRule::Received,
                adds_missing_ids: false,
                threads: ThreadRule::Notice,
                files_documents: false,
            },
            Source::Report(r) => Rules {
                origin: match r.kind {
                    ReportKind::Dsn => "dsn",
                    ReportKind::Mdn => "mdn",
                },
                trace: TraceRule::NullPathWhenLocal,
                adds_missing_ids: false,
                threads: ThreadRule::Never,
                files_documents: false,
            },
        }
    }
}

/// A committed message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accepted {
    /// Our identifier of the transaction (Received, the SMTP reply, the logs).
    pub id: String,
    /// Where it was stored.
    pub stored: Stored,
}

/// Why a message was not accepted.
#[derive(Debug, thiserror::Error)]
pub enum AcceptError {
    /// The author rule refused the sender.
    #[error(transparent)]
    Author(#[from] AuthorRefusal),
    /// A thread rule refused a patient's message.
    #[error(transparent)]
    Thread(#[from] threads::Refusal),
    /// Structured attachments do not concern their patient or cannot be read.
    #[error(transparent)]
    Documents(#[from] filing::Refusal),
    /// An account's quota has no room for it (`delivery::quota`).
    #[error(transparent)]
    Quota(#[from] QuotaRefusal),
    /// The recipient is neither ours nor in the trust space.
    #[error("recipient outside the trust space")]
    Unroutable,
    /// A lookup failed: the sender should retry later.
    #[error("store: {0}")]
    Store(#[from] StoreError),
    /// Indexing the attachments failed (the blocking task panicked).
    #[error("indexing: {0}")]
    Indexing(#[from] tokio::task::JoinError),
    /// The commit failed, or the server is stopping.
    #[error(transparent)]
    Delivery(DeliveryError),
}

impl From<DeliveryError> for AcceptError {
    fn from(e: DeliveryError) -> Self {
        match e {
            DeliveryError::Quota(refusal) => AcceptError::Quota(refusal),
            e => AcceptError::Delivery(e),
        }
    }
}

/// What the path shares between messages, built once by `mes serve`.
#[derive(Debug)]
pub struct Services {
    /// The store.
    pub store: Store,
    /// Our host name (Received, generated Message-IDs, reports).
    pub hostname: String,
    /// The trust space in force (reloaded periodically).
    pub trust: Arc<RwLock<Arc<TrustSpace>>>,
    /// Organisation mailbox -> accounts allowed to send as it.
    pub delegations: Delegations,
    /// Content-free notices to patients, when a smarthost is configured.
    pub notifier: Option<Notifier>,
    /// Work after a commit (notices, MDNs): tracked, and waited for at shutdown.
    pub after_commit: TaskTracker,
    /// The quota of accounts that have none of their own (`delivery::quota`).
    pub quota: QuotaSettings,
}

/// The accept path: cheap to clone, shared by every source.
#[derive(Debug, Clone)]
pub struct Acceptor {
    pub(super) services: Arc<Services>,
    deliverer: Deliverer,
}

/// How a message reached us, for its Received header.
struct Hop<'a> {
    helo: &'a str,
    peer_ip: String,
    protocol: &'static str,
    tls: Option<&'a TlsInfo>,
}

/// A source's envelope in the one form the steps of the path read.
struct Envelope<'a> {
    mail_from: &'a str,
    recipients: Vec<NewRecipient>,
    hop: Option<Hop<'a>>,
    received_at: Option<i64>,
    flags: &'a str,
    env_id: Option<&'a str>,
    ret: Option<&'static str>,
}

impl Acceptor {
    /// Starts the group-commit writers under the path. They stop once every
    /// clone is dropped and their queue is drained.
    pub fn start(services: Services) -> (Acceptor, JoinHandle<()>) {
        let (deliverer, writer) = Deliverer::start(services.store.clone(), services.quota);
        let acceptor = Acceptor {
            services: Arc::new(services),
            deliverer,
        };
        (acceptor, writer)
    }

    /// The trust space in force.
    pub fn trust(&self) -> Arc<TrustSpace> {
        self.services
            .trust
            .read()
            .map(|t| t.clone())
            .unwrap_or_default()
    }

    /// The author rule over `trust`, with the configured delegations (SMTP
    /// also checks the envelope sender with it at MAIL FROM).
    pub fn author_rule<'a>(&'a self, trust: &'a TrustSpace) -> AuthorRule<'a> {
        AuthorRule {
            store: &self.services.store,
            trust,
            delegations: &self.services.delegations,
        }
    }

    /// Accepts `content` from `source`: returns once it is committed (or
    /// refused, and then nothing is stored). Boxed because the path calls
    /// itself: an MDN about a message is accepted like any message.
    pub fn accept<'a>(
        &'a self,
        source: Source<'a>,
        content: Vec<u8>,
    ) -> Pin<Box<dyn Future<Output = Result<Accepted, AcceptError>> + Send + 'a>> {
        Box::pin(self.run(source, content))
    }

    /// Accepts APPENDed messages together: every one is committed or none
    /// is (RFC 3502 MULTIAPPEND), and the quota must take them all. Returns
    /// them in order.
    pub async fn accept_all(
        &self,
        appends: Vec<(Append<'_>, Vec<u8>)>,
    ) -> Result<Vec<Accepted>, AcceptError> {
        let started = Instant::now();
        let count = appends.len();
        let result = self.append_all(appends).await;
        for _ in 0..count {
            counted("imap_append", started, &result);
        }
        result
    }

    async fn append_all(
        &self,
        appends: Vec<(Append<'_>, Vec<u8>)>,
    ) -> Result<Vec<Accepted>, AcceptError> {
        let mut prepared = Vec::with_capacity(appends.len());
        for (append, content) in appends {
            prepared.push(self.prepare(Source::Append(append), content).await?);
        }
        let (messages, rest): (Vec<NewMessage>, Vec<AfterCommit<'_>>) =
            prepared.into_iter().map(|p| (p.message, p.after)).unzip();
        let stored = self.deliverer.deliver_all(messages).await?;
        Ok(stored
            .into_iter()
            .zip(rest)
            .map(|(stored, after)| self.after_commit(after, stored))
            .collect())
    }

    async fn run(&self, source: Source<'_>, content: Vec<u8>) -> Result<Accepted, AcceptError> {
        let started = Instant::now();
        let listener = source.metric_label();
        let result = async {
            let prepared = self.prepare(source, content).await?;
            let stored = self.deliverer.deliver(prepared.message).await?;
            Ok(self.after_commit(prepared.after, stored))
        }
        .await;
        counted(listener, started, &result);
        result
    }

    /// Every step before the commit: the author, the envelope, trace
    /// headers, the quota, threads and documents; the message to store and
    /// what to do once it is.
    async fn prepare<'a>(
        &self,
        source: Source<'a>,
        content: Vec<u8>,
    ) -> Result<Prepared<'a>, AcceptError> {
        let rules = source.rules();
        let facts = MessageFacts::read(&content);
        let id = transaction_id();
        let time = self.services.store.now();
        let authored = self.author(&source, &facts).await?;
        let envelope = self.envelope(&source).await?;
        let (content, message_id) = match (&envelope.hop, rules.trace) {
            (Some(hop), TraceRule::Received) => {
                let info = TraceInfo {
                    hostname: self.services.hostname.clone(),
                    helo: hop.helo.to_string(),
                    peer_ip: hop.peer_ip.clone(),
                    protocol: hop.protocol,
                    tls_version: hop.tls.map(|t| t.version.clone()),
                    tls_cipher: hop.tls.map(|t| t.cipher.clone()),
                    peer_subject: hop.tls.and_then(|t| t.peer_subject.clone()),
                    id: id.clone(),
                    time,
                };
                trace::assemble(
                    &content,
                    &facts,
                    envelope.mail_from,
                    &info,
                    rules.adds_missing_ids,
                )
            }
            (_, TraceRule::NullPathWhenLocal) if envelope.recipients.iter().any(is_local) => {
                // Final delivery here: the null reverse-path is recorded as for any message.
                let mut with_path = b"Return-Path: <>\r\n".to_vec();
                with_path.extend_from_slice(&content);
                (with_path, facts.message_id.clone())
            }
            _ => (content, facts.message_id.clone()),
        };
        let thread = match (rules.threads, &source, authored.as_ref()) {
            (ThreadRule::ToPatients, _, Some(Authored::Author(author)))
                if envelope.recipients.iter().any(|r| r.patient_id.is_some()) =>
            {
                Some(ThreadLink::ToPatient(thread_incoming(
                    author,
                    &facts,
                    message_id.clone(),
                )))
            }
            (ThreadRule::FromPatient, Source::Patient(p), _) => Some(ThreadLink::FromPatient {
                thread_id: p.thread.id,
            }),
            (ThreadRule::Notice, Source::Service(n), _) => {
                Some(ThreadLink::ToPatient(threads::Incoming {
                    sender: n.from.to_string(),
                    sender_name: n.name.to_string(),
                    sender_profession: None,
                    via: None,
                    other_operator: false,
                    subject: facts.subject.clone().unwrap_or_default(),
                    references: Vec::new(),
                    ends: true,
                    message_id: message_id.clone(),
                }))
            }
            _ => None,
        };
        let mdn_to = mdn_address(&facts, envelope.mail_from);
        let (dossier, filed_for, analysis, agenda, documents) =
            match authored.as_ref().and_then(Authored::author) {
                Some(author) if rules.files_documents => {
                    self.examine_dossier(&envelope, &content, &facts, author, mdn_to.as_deref())
                        .await?
                }
                _ => (None, Vec::new(), None, None, MssHeaders::default()),
            };
        let mdn_content = (mdn_to.is_some() && !filed_for.is_empty()).then(|| content.clone());
        let patients: Vec<i64> = envelope
            .recipients
            .iter()
            .filter_map(|r| r.patient_id)
            .collect();
        let message = Incoming {
            content,
            mail_from: envelope.mail_from.to_string(),
            message_id,
            origin: rules.origin,
            received_at: envelope.received_at.unwrap_or(time),
            recipients: envelope.recipients,
            dsn_envid: envelope.env_id.map(str::to_string),
            dsn_ret: envelope.ret.map(str::to_string),
            flags: envelope.flags.to_string(),
            thread,
            dossier,
            agenda,
            analysis,
        }
        .prepare();
        Ok(Prepared {
            after: AfterCommit {
                source,
                id,
                size: message.data.len(),
                recipients: message.recipients.len(),
                authored,
                patients,
                message_id: facts.message_id,
                mdn: mdn_to
                    .zip(mdn_content)
                    .map(|(to, content)| (to, content, filed_for, documents)),
            },
            message,
        })
    }

    /// What follows a commit: the log line, patients' notices, MDNs.
    fn after_commit(&self, after: AfterCommit<'_>, stored: super::Stored) -> Accepted {
        let AfterCommit {
            source,
            id,
            size,
            recipients,
            authored,
            patients,
            message_id,
            mdn,
        } = after;
        let rules = source.rules();
        if let Source::Mx(smtp) | Source::Submission(smtp) = &source {
            match authored.as_ref().and_then(Authored::author) {
                Some(author) => tracing::info!(
                    id = %id,
                    mode = rules.origin,
                    author = %author.address,
                    proof = %author.proof,
                    size,
                    recipients,
                    stored_id = stored.message_id,
                    "message accepted"
                ),
                None => tracing::info!(
                    id = %id,
                    mode = rules.origin,
                    author = "report (null sender)",
                    peer = %smtp.peer,
                    size,
                    recipients,
                    stored_id = stored.message_id,
                    "message accepted"
                ),
            }
        }
        if let Some(n) = &self.services.notifier {
            // Tell patients, without content, that something arrived.
            for patient in patients {
                n.spawn_message_for(patient);
            }
        }
        if let Some((to, content, filed_for, documents)) = mdn {
            // Tell the sender its documents were filed.
            let this = self.clone();
            self.services.after_commit.spawn(async move {
                for patient in filed_for {
                    this.send_mdn(
                        &to,
                        &patient,
                        message_id.as_deref(),
                        &content,
                        &documents,
                        Disposition::Processed,
                    )
                    .await;
                }
            });
        }
        Accepted { id, stored }
    }

    /// Who wrote the message: the author rule over what the SMTP peer proved.
    /// Reports have no author; APPEND and the patient space have their own
    /// login, which stands for it (None).
    async fn author(
        &self,
        source: &Source<'_>,
        facts: &MessageFacts,
    ) -> Result<Option<Authored>, AcceptError> {
        let smtp = match source {
            Source::Mx(s) | Source::Submission(s) => s,
            Source::Report(_) => return Ok(Some(Authored::Report)),
            Source::Append(_)
            | Source::Patient(_)
            | Source::CalendarReply(_)
            | Source::Service(_) => return Ok(None),
        };
        let trust = self.trust();
        match self
            .author_rule(&trust)
            .establish(smtp.peer, smtp.mail_from, smtp.sender, facts)
            .await
        {
            Ok(authored) => Ok(Some(authored)),
            Err(refusal) => {
                tracing::warn!(
                    mode = source.rules().origin,
                    peer = %smtp.peer,
                    reason = %refusal,
                    "message refused: author not proven"
                );
                Err(refusal.into())
            }
        }
    }

    /// Indexes structured attachments for local recipients: the rows to file
    /// with the message, the patients whose documents were filed, the IMAP
    /// structure from the same parse, and the MSSanté headers of the
    /// documents read (for the MDN). A message whose documents do not
    /// concern its patient recipient, or that replaces or withdraws another
    /// author's document, is refused whole (with an error MDN when the
    /// sender asked for one).
    async fn examine_dossier(
        &self,
        envelope: &Envelope<'_>,
        content: &[u8],
        facts: &MessageFacts,
        author: &Author,
        mdn_to: Option<&str>,
    ) -> Result<Examined, AcceptError> {
        let store = &self.services.store;
        let mut patients = Vec::new();
        let mut professionals = Vec::new();
        for r in envelope.recipients.iter().filter(|r| !r.remote) {
            match r.patient_id {
                Some(account_id) => {
                    if let Some(ins) = store.account_by_id(account_id).await?.and_then(|a| a.ins) {
                        patients.push(PatientRecipient {
                            account_id,
                            address: r.address.clone(),
                            ins,
                        });
                    }
                }
                None => professionals.push(r.address.clone()),
            }
        }
        if patients.is_empty() && professionals.is_empty() {
            return Ok((None, Vec::new(), None, None, MssHeaders::default()));
        }
        let raw = content.to_vec();
        let p = patients.clone();
        // Invitations to patients are filed in their agenda, organised by the proven author.
        let agenda_patients: Vec<agenda::filing::Patient> = patients
            .iter()
            .map(|p| agenda::filing::Patient {
                account_id: p.account_id,
                address: p.address.clone(),
            })
            .collect();
        let organiser = agenda::filing::Organiser {
            address: author.address.clone(),
            name: Some(author.name.clone()).filter(|n| !n.is_empty()),
        };
        // One parse for both: the IMAP structure the store keeps and the
        // attachments to index (base64 decoding a large package is most of it).
        let (analysis, outcome, agenda) = tokio::task::spawn_blocking(move || {
            let limits = Limits::default();
            let (parsed, (outcome, agenda)) =
                ParsedMessage::parse_sharing(&raw, |message| match message {
                    Some(m) => (
                        filing::examine_parsed(m, &p, &professionals, &limits),
                        agenda::filing::examine(
                            m,
                            &agenda_patients,
                            &organiser,
                            &agenda::Limits::default(),
                        ),
                    ),
                    None => (filing::examine(&raw, &p, &professionals, &limits), None),
                });
            (Analysis::of_parsed(&raw, &parsed), outcome, agenda)
        })
        .await?;
        // Only a document's author replaces or withdraws it.
        let outcome = match outcome {
            Ok(mut e) => {
                let headers = e.headers.clone();
                match e.filing.as_mut() {
                    Some(filing) => {
                        let depositor = Depositor::new(
                            &author.address,
                            author.kind,
                            author.establishment.as_deref(),
                        );
                        authorship::sign_and_check(store, filing, &depositor)
                            .await?
                            .map(|()| e)
                            .map_err(|refusal| Refused { refusal, headers })
                    }
                    None => Ok(e),
                }
            }
            Err(refused) => Err(refused),
        };
        if agenda.is_some() {
            metrics::indexing_outcome("calendar", "filed");
        }
        match &outcome {
            Ok(e) if e.filing.is_some() => metrics::indexing_outcome("xdm", "filed"),
            Ok(_) => {}
            Err(r) => {
                metrics::indexing_outcome("xdm", metrics::mdn_code_label(r.refusal.mdn_code()))
            }
        }
        match outcome {
            // What the dossier decided becomes the store's rows here, once.
            Ok(e) => Ok((
                e.filing.map(|f| Box::new(DossierFiling::from(f))),
                e.filed_for,
                Some(analysis),
                agenda.map(Box::new),
                e.headers,
            )),
            Err(Refused { refusal, headers }) => {
                tracing::warn!(code = refusal.mdn_code(), "structured attachments refused");
                if let Some(to) = mdn_to {
                    for p in &patients {
                        self.send_mdn(
                            to,
                            &p.address,
                            facts.message_id.as_deref(),
                            content,
                            &headers,
                            Disposition::Error(refusal.mdn_code(), refusal.to_string()),
                        )
                        .await;
                    }
                }
                Err(refusal.into())
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
        documents: &MssHeaders,
        disposition: Disposition,
    ) {
        // Reports go to senders, never into a patient's mailbox.
        if let Ok(Some(a)) = self.services.store.account_by_address(to).await
            && a.kind == AccountKind::Patient
        {
            return;
        }
        let original = mdn::Original {
            notify_to: to,
            final_recipient: recipient,
            message_id,
            headers: crate::mime::header_fields(content),
            documents,
        };
        match mdn::build(&self.services.hostname, &original, &disposition) {
            Ok(report) => {
                let source = Source::Report(Report {
                    kind: ReportKind::Mdn,
                    to,
                });
                if let Err(e) = self.accept(source, report).await {
                    tracing::error!(error = %e, "MDN delivery failed");
                }
            }
            Err(e) => tracing::error!(error = %e, "MDN could not be built"),
        }
    }
}

/// Counts one message of `listener` accepted (with its latency) or refused.
fn counted<T>(listener: &'static str, started: Instant, result: &Result<T, AcceptError>) {
    match result {
        Ok(_) => metrics::message_accepted(listener, started.elapsed()),
        Err(e) => metrics::message_refused(listener, e.metric_label()),
    }
}

impl AcceptError {
    /// The refusal's reason as a metrics label (a fixed word).
    fn metric_label(&self) -> &'static str {
        match self {
            AcceptError::Author(_) => "author",
            AcceptError::Thread(_) => "thread",
            AcceptError::Documents(_) => "documents",
            AcceptError::Quota(_) => "quota",
            AcceptError::Unroutable => "unroutable",
            AcceptError::Store(_) => "store",
            AcceptError::Indexing(_) => "indexing",
            AcceptError::Delivery(_) => "delivery",
        }
    }
}

impl Source<'_> {
    /// The listener or source as a metrics label: `relay_in` is a hospital
    /// system or another operator proven by its certificate on the MX
    /// listener, `mx` an MX peer without one.
    fn metric_label(&self) -> &'static str {
        match self {
            Source::Mx(s) => match s.peer {
                Peer::Certificate(_) => "relay_in",
                _ => "mx",
            },
            Source::Submission(_) => "submission",
            Source::Append(_) => "imap_append",
            Source::Patient(_) => "patient",
            Source::Report(_) => "report",
            Source::CalendarReply(_) => "calendar_reply",
            Source::Service(_) => "service",
        }
    }
}

/// What indexing found: dossier rows, the patients whose documents were
/// filed, the IMAP structure from the same parse, agenda rows, and the
/// MSSanté headers of the documents read (for the MDN).
type Examined = (
    Option<Box<DossierFiling>>,
    Vec<String>,
    Option<Analysis>,
    Option<Box<AgendaFiling>>,
    MssHeaders,
);

/// A message ready for the commit, and what follows it.
struct Prepared<'a> {
    message: NewMessage,
    after: AfterCommit<'a>,
}

/// What the path does once a message is committed.
struct AfterCommit<'a> {
    source: Source<'a>,
    id: String,
    size: usize,
    recipients: usize,
    authored: Option<Authored>,
    /// Patients told (without content) that something arrived.
    patients: Vec<i64>,
    /// The message's Message-ID (MDNs).
    message_id: Option<String>,
    /// An MDN to send: to whom, about which content, for which patients,
    /// with the MSSanté headers of its documents.
    mdn: Option<(String, Vec<u8>, Vec<String>, MssHeaders)>,
}

fn is_local(r: &NewRecipient) -> bool {
    r.mailbox_id.is_some()
}

/// Our identifier of a transaction: 16 random hex digits.
fn transaction_id() -> String {
    format!("{:016x}", rand::random::<u64>())
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
fn mdn_address(facts: &MessageFacts, mail_from: &str) -> Option<String> {
    facts
        .notify_to
        .clone()
        .filter(|to| !mail_from.is_empty() && to.eq_ignore_ascii_case(mail_from))
}
