//! Turns accepted content into a [`NewMessage`]: content hash and the IMAP
//! ENVELOPE/BODYSTRUCTURE and the text SEARCH matches, computed once here so
//! that IMAP never re-parses a message to list or search a folder.

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
    /// How it reached us (`accept::Rules::origin`).
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
    /// What it files in patients' agendas (written inside the transaction).
    pub agenda: Option<Box<crate::store::agenda::AgendaFiling>>,
    /// What [`Analysis`] computes from `content`, when the caller already has
    /// it (None: [`Incoming::prepare`] computes it).
    pub analysis: Option<Analysis>,
}

/// What the store keeps alongside a message's content, computed from it once.
#[derive(Debug, Clone)]
pub struct Analysis {
    /// Lower-case hex SHA-256 of the content.
    pub hash: String,
    /// IMAP ENVELOPE in wire form.
    pub imap_envelope: Vec<u8>,
    /// IMAP BODYSTRUCTURE as JSON.
    pub bodystructure: Option<String>,
    /// What SEARCH SUBJECT/FROM/TO/CC/BCC match, so that SEARCH reads no content.
    pub search: crate::store::messages::SearchHeaders,
}

impl Analysis {
    /// Parses `content` and computes everything.
    pub fn of(content: &[u8]) -> Analysis {
        Analysis::of_parsed(
            content,
            &crate::mime::structure::ParsedMessage::parse(content),
        )
    }

    /// From a parse the caller already made of `content`.
    pub fn of_parsed(
        content: &[u8],
        parsed: &crate::mime::structure::ParsedMessage<'_>,
    ) -> Analysis {
        Analysis {
            hash: hex::encode(sha2::Sha256::digest(content)),
            imap_envelope: crate::mime::structure::wire::envelope(&parsed.envelope()),
            bodystructure: serde_json::to_string(&parsed.body_structure()).ok(),
            // Its own parse (headers only): the very one SEARCH's content path
            // makes, so both give the same answers.
            search: search_headers(content),
        }
    }
}

impl Incoming {
    /// Computes what the store keeps alongside the content.
    pub fn prepare(mut self) -> NewMessage {
        let analysis = self
            .analysis
            .take()
            .unwrap_or_else(|| Analysis::of(&self.content));
        NewMessage {
            data: self.content,
            hash: analysis.hash,
            mail_from: self.mail_from,
            header_message_id: self.message_id,
            dsn_envid: self.dsn_envid,
            dsn_ret: self.dsn_ret,
            origin: self.origin,
            received_at: self.received_at,
            recipients: self.recipients,
            envelope: None,
            imap_envelope: Some(analysis.imap_envelope),
            bodystructure: analysis.bodystructure,
            search: analysis.search,
            flags: self.flags,
            thread: self.thread,
            dossier: self.dossier,
            agenda: self.agenda,
        }
    }
}

/// The text IMAP SEARCH matches for SUBJECT, FROM, TO, CC and BCC, from the
/// same parse as SEARCH's content path (`mime::search::parse`), so that the
/// stored text gives the same answers without reading the content.
pub fn search_headers(content: &[u8]) -> crate::store::messages::SearchHeaders {
    use crate::mime::search::{lines, parse};
    let parsed = parse(content, false);
    crate::store::messages::SearchHeaders {
        subject: lines(&parsed, "subject"),
        from: lines(&parsed, "from"),
        to: lines(&parsed, "to"),
        cc: lines(&parsed, "cc"),
        bcc: lines(&parsed, "bcc"),
    }
}
