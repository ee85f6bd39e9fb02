//! A patient's message, from the API or the webmail, through the thread rules to
//! the delivery path: checked, built, traced, filed in the patient's Sent folder,
//! delivered locally or queued for another operator.

use std::sync::{Arc, RwLock};

use super::compose::{self, AttachmentError, AttachmentKind, PatientMessage};
use super::{Refusal, ThreadLink, may_reply};
use crate::delivery::facts::MessageFacts;
use crate::delivery::prepare::Incoming;
use crate::delivery::trace::{self, TraceInfo};
use crate::delivery::{Deliverer, NewRecipient};
use crate::store::accounts::Account;
use crate::store::threads::Thread;
use crate::store::{Store, StoreError, now};
use crate::trust::TrustSpace;

/// Why a patient's message was not sent.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// A thread rule refused it (403, French reason).
    #[error("{0}")]
    Refused(#[from] Refusal),
    /// An attachment was refused (422, French reason).
    #[error("{0}")]
    Attachment(#[from] AttachmentError),
    /// The message is empty.
    #[error("Le message est vide.")]
    Empty,
    /// The store or delivery failed (503).
    #[error("service unavailable: {0}")]
    Unavailable(String),
}

impl From<StoreError> for SendError {
    fn from(e: StoreError) -> Self {
        SendError::Unavailable(e.to_string())
    }
}

/// What the sending path needs.
#[derive(Debug, Clone)]
pub struct Sender {
    /// The store.
    pub store: Store,
    /// The delivery path.
    pub deliverer: Deliverer,
    /// The trust space (remote correspondents must be in it).
    pub trust: Arc<RwLock<Arc<TrustSpace>>>,
    /// Our host name.
    pub hostname: String,
    /// Largest attachment.
    pub max_attachment_size: usize,
}

/// An uploaded file.
#[derive(Debug, Clone)]
pub struct Upload {
    /// File name as given.
    pub name: String,
    /// Content.
    pub data: Vec<u8>,
}

impl Sender {
    /// Sends `text` (and files) from `patient` in `thread`, which must be open.
    pub async fn reply(
        &self,
        patient: &Account,
        thread: &Thread,
        text: &str,
        uploads: Vec<Upload>,
    ) -> Result<i64, SendError> {
        may_reply(thread)?;
        if text.trim().is_empty() && uploads.is_empty() {
            return Err(SendError::Empty);
        }
        let mut attachments = Vec::with_capacity(uploads.len());
        for u in uploads {
            let kind: AttachmentKind =
                compose::check_attachment(&u.name, &u.data, self.max_attachment_size)?;
            attachments.push((u.name, kind, u.data));
        }
        let history = self.store.thread_messages(thread.id).await?;
        let references: Vec<String> = history
            .iter()
            .filter_map(|m| m.header_message_id.clone())
            .collect();
        let subject = if thread.subject.to_ascii_lowercase().starts_with("re:") {
            thread.subject.clone()
        } else {
            format!("Re: {}", thread.subject)
        };
        let (content, message_id) = compose::build(PatientMessage {
            from_name: patient.display_name.clone(),
            from: patient.address.clone(),
            to_name: thread.correspondent_name.clone(),
            to: thread.correspondent.clone(),
            subject,
            text: text.to_string(),
            in_reply_to: references.last().cloned(),
            references,
            attachments,
            hostname: self.hostname.clone(),
        })
        .map_err(|e| SendError::Unavailable(e.to_string()))?;

        // Where the correspondent is: here, or at another operator of the trust space.
        let correspondent = self.store.account_by_address(&thread.correspondent).await?;
        let target = match correspondent {
            Some(acc) if !acc.disabled => {
                let inbox = self
                    .store
                    .mailbox_id(acc.id, "INBOX")
                    .await?
                    .ok_or_else(|| SendError::Unavailable("no INBOX".into()))?;
                NewRecipient {
                    address: acc.address,
                    orcpt: None,
                    notify: 0,
                    mailbox_id: Some(inbox),
                    remote: false,
                    patient_id: None,
                }
            }
            _ => {
                let domain = thread
                    .correspondent
                    .rsplit_once('@')
                    .map(|(_, d)| d)
                    .unwrap_or_default();
                let whitelisted = self
                    .trust
                    .read()
                    .map(|t| t.is_whitelisted(domain))
                    .unwrap_or(false);
                if !whitelisted {
                    return Err(Refusal::NoOpenThread.into());
                }
                NewRecipient {
                    address: thread.correspondent.clone(),
                    orcpt: None,
                    notify: 0,
                    mailbox_id: None,
                    remote: true,
                    patient_id: None,
                }
            }
        };
        let sent = self.store.mailbox_id(patient.id, "Sent").await?;
        let mut recipients = vec![target];
        recipients.push(NewRecipient {
            address: patient.address.clone(),
            orcpt: None,
            notify: 0,
            mailbox_id: sent,
            remote: false,
            patient_id: None,
        });
        let time = now();
        let info = TraceInfo {
            hostname: self.hostname.clone(),
            helo: "patient-space".into(),
            peer_ip: "127.0.0.1".into(),
            protocol: "HTTPS",
            tls_version: None,
            tls_cipher: None,
            peer_subject: None,
            id: format!("{:016x}", rand::random::<u64>()),
            time,
        };
        let facts = MessageFacts::read(&content);
        let (content, _) = trace::assemble(&content, &facts, &patient.address, &info, false);
        let message = Incoming {
            content,
            mail_from: patient.address.clone(),
            message_id: Some(message_id),
            origin: "patient",
            received_at: time,
            recipients,
            dsn_envid: None,
            dsn_ret: None,
            flags: "\\Seen".into(),
            thread: Some(ThreadLink::FromPatient {
                thread_id: thread.id,
            }),
            dossier: None,
            analysis: None,
        }
        .prepare();
        let stored = self
            .deliverer
            .deliver(message)
            .await
            .map_err(|e| SendError::Unavailable(e.to_string()))?;
        Ok(stored.message_id)
    }

    /// A new message to `correspondent`: allowed only while a thread with them is open.
    pub async fn new_message(
        &self,
        patient: &Account,
        correspondent: &str,
        text: &str,
        uploads: Vec<Upload>,
    ) -> Result<(i64, i64), SendError> {
        let Some(thread) = self
            .store
            .open_thread_with(patient.id, correspondent)
            .await?
        else {
            return Err(Refusal::NoOpenThread.into());
        };
        let id = self.reply(patient, &thread, text, uploads).await?;
        Ok((thread.id, id))
    }
}
