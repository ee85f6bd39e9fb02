//! Turns accepted content into a [`NewMessage`]: content hash and the IMAP
//! ENVELOPE/BODYSTRUCTURE, computed once here so that IMAP never re-parses
//! a message to list a folder.

use sha2::Digest;

use super::{NewMessage, NewRecipient};

/// A message accepted by a protocol session, before preparation.
#[derive(Debug, Clone)]
pub struct Incoming {
    /// Final content (trace headers included).
    pub content: Vec<u8>,
    /// Reverse path ("" for null).
    pub mail_from: String,
    /// Message-ID header, without brackets.
    pub message_id: Option<String>,
    /// `mx`, `submission`, `append`.
    pub origin: &'static str,
    /// Unix seconds (INTERNALDATE).
    pub received_at: i64,
    /// Where it goes.
    pub recipients: Vec<NewRecipient>,
    /// RFC 3461 ENVID.
    pub dsn_envid: Option<String>,
    /// RFC 3461 RET.
    pub dsn_ret: Option<String>,
    /// Initial flags of every filed copy.
    pub flags: String,
    /// How it relates to patient threads.
    pub thread: Option<crate::threads::ThreadLink>,
    /// What it files in patients' records (indexed before the transaction,
    /// written inside it).
    pub dossier: Option<Box<crate::store::dossier::DossierFiling>>,
}

impl Incoming {
    /// Computes what the store keeps alongside the content.
    pub fn prepare(self) -> NewMessage {
        let hash = hex::encode(sha2::Sha256::digest(&self.content));
        let envelope = serde_json::to_string(&crate::imap::structure::envelope(&self.content)).ok();
        let bodystructure =
            serde_json::to_string(&crate::imap::structure::body_structure(&self.content)).ok();
        NewMessage {
            data: self.content,
            hash,
            mail_from: self.mail_from,
            header_message_id: self.message_id,
            dsn_envid: self.dsn_envid,
            dsn_ret: self.dsn_ret,
            origin: self.origin,
            received_at: self.received_at,
            recipients: self.recipients,
            envelope,
            bodystructure,
            flags: self.flags,
            thread: self.thread,
            dossier: self.dossier,
        }
    }
}
