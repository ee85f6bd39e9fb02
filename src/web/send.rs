//! A patient's message, from the API or the webmail: its attachments checked,
//! built, then handed to the delivery path, which applies the thread rules,
//! files it in the patient's Sent folder and delivers it locally or queues it
//! for another operator.

use crate::delivery::quota::QuotaRefusal;
use crate::delivery::{AcceptError, Acceptor, FromPatient, Source};
use crate::store::accounts::Account;
use crate::store::threads::Thread;
use crate::store::{Store, StoreError};
use crate::threads::Refusal;
use crate::threads::compose::{self, AttachmentError, AttachmentKind, PatientMessage};

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
    /// A mailbox's quota has no room for it (507, French reason).
    #[error("{}", quota_text(.0, .1))]
    Quota(QuotaRefusal, Whose),
    /// The store or delivery failed (503).
    #[error("service unavailable: {0}")]
    Unavailable(#[source] Box<dyn std::error::Error + Send + Sync>),
}

/// Whose mailbox a quota refusal is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Whose {
    /// The patient's own space (the copy in its Sent folder).
    Own,
    /// The correspondent's mailbox.
    Correspondent,
}

/// What the patient reads when a quota refuses the message.
fn quota_text(refusal: &QuotaRefusal, whose: &Whose) -> &'static str {
    match (whose, refusal.permanent()) {
        (Whose::Own, false) => {
            "Votre espace de messagerie est plein : le message n'a pas été envoyé. \
             Réessayez plus tard ou contactez le service."
        }
        (Whose::Own, true) => "Ce message est trop volumineux pour votre espace de messagerie.",
        (Whose::Correspondent, false) => {
            "La messagerie de votre correspondant est pleine : le message n'a pas été envoyé. \
             Réessayez plus tard."
        }
        (Whose::Correspondent, true) => {
            "Ce message est trop volumineux pour la messagerie de votre correspondant."
        }
    }
}

impl From<StoreError> for SendError {
    fn from(e: StoreError) -> Self {
        SendError::Unavailable(Box::new(e))
    }
}

impl From<AcceptError> for SendError {
    fn from(e: AcceptError) -> Self {
        match e {
            AcceptError::Thread(refusal) => SendError::Refused(refusal),
            e => SendError::Unavailable(Box::new(e)),
        }
    }
}

/// What the sending path needs.
#[derive(Debug, Clone)]
pub struct Sender {
    /// The store.
    pub store: Store,
    /// The delivery path (the thread rules and the trust space are applied there).
    pub delivery: Acceptor,
    /// Our host name (Message-ID).
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
    /// Sends `text` (and files) from `patient` in `thread`, which must be open
    /// (the delivery path refuses it otherwise).
    pub async fn reply(
        &self,
        patient: &Account,
        thread: &Thread,
        text: &str,
        uploads: Vec<Upload>,
    ) -> Result<i64, SendError> {
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
        let (content, _) = compose::build(PatientMessage {
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
        .map_err(|e| SendError::Unavailable(Box::new(e)))?;

        let source = Source::Patient(FromPatient { patient, thread });
        let accepted = match self.delivery.accept(source, content).await {
            Ok(accepted) => accepted,
            Err(AcceptError::Quota(refusal)) => {
                let whose = if refusal.address() == patient.address {
                    Whose::Own
                } else {
                    Whose::Correspondent
                };
                return Err(SendError::Quota(refusal, whose));
            }
            Err(e) => return Err(e.into()),
        };
        Ok(accepted.stored.message_id)
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
