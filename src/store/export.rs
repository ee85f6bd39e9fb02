//! What the export of a whole patient space reads beyond the usual queries:
//! every document row with all its stored XDS metadata, and the small
//! fingerprint of the space's state its ETag is made of. The rules (what
//! goes into the archive, in which form) are `crate::lifecycle::export`.

use super::dossier::DocumentRef;
use super::{Store, StoreError};

/// A document row with every metadata column, for `METADATA.XML`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArchivedDocument {
    /// Row id.
    pub id: i64,
    /// The message that brought it, if any.
    pub message_id: Option<i64>,
    /// XDS uniqueId.
    pub unique_id: String,
    /// XDS entryUUID, when the sender gave one.
    pub entry_uuid: Option<String>,
    /// Category (SYNTHESE, …).
    pub category: String,
    /// Title.
    pub title: String,
    /// typeCode as stored (`code^scheme` or code).
    pub type_code: Option<String>,
    /// classCode as stored.
    pub class_code: Option<String>,
    /// formatCode as stored.
    pub format_code: Option<String>,
    /// HL7 TS.
    pub creation_time: Option<String>,
    /// HL7 TS.
    pub service_start: Option<String>,
    /// HL7 TS.
    pub service_stop: Option<String>,
    /// Author's name.
    pub author: Option<String>,
    /// Author's institution.
    pub author_institution: Option<String>,
    /// Author's role.
    pub author_role: Option<String>,
    /// Author's specialty.
    pub author_specialty: Option<String>,
    /// Confidentiality codes, comma-separated.
    pub confidentiality: Option<String>,
    /// MIME type.
    pub mime_type: String,
    /// The content's blob, or its message's when `reference` is set.
    pub blob_hash: String,
    /// Where in its message the document is, when not stored on its own.
    pub reference: Option<DocumentRef>,
    /// Version number.
    pub version: i64,
    /// `current`, `superseded` or `deleted`.
    pub status: String,
    /// Row id of the version that replaced it.
    pub replaced_by: Option<i64>,
    /// `xdm`, `fhir` or `patient`.
    pub source: String,
}

#[derive(sqlx::FromRow)]
struct Row {
    id: i64,
    message_id: Option<i64>,
    unique_id: String,
    entry_uuid: Option<String>,
    category: String,
    title: String,
    type_code: Option<String>,
    class_code: Option<String>,
    format_code: Option<String>,
    creation_time: Option<String>,
    service_start: Option<String>,
    service_stop: Option<String>,
    author: Option<String>,
    author_institution: Option<String>,
    author_role: Option<String>,
    author_specialty: Option<String>,
    confidentiality: Option<String>,
    mime_type: String,
    blob_hash: String,
    source_part: Option<i64>,
    source_entry: Option<String>,
    version: i64,
    status: String,
    replaced_by: Option<i64>,
    source: String,
}

impl From<Row> for ArchivedDocument {
    fn from(r: Row) -> ArchivedDocument {
        ArchivedDocument {
            id: r.id,
            message_id: r.message_id,
            unique_id: r.unique_id,
            entry_uuid: r.entry_uuid,
            category: r.category,
            title: r.title,
            type_code: r.type_code,
            class_code: r.class_code,
            format_code: r.format_code,
            creation_time: r.creation_time,
            service_start: r.service_start,
            service_stop: r.service_stop,
            author: r.author,
            author_institution: r.author_institution,
            author_role: r.author_role,
            author_specialty: r.author_specialty,
            confidentiality: r.confidentiality,
            mime_type: r.mime_type,
            blob_hash: r.blob_hash,
            reference: match (r.source_part, r.source_entry) {
                (Some(part), Some(entry)) => Some(DocumentRef {
                    part: usize::try_from(part).unwrap_or(usize::MAX),
                    entry,
                }),
                _ => None,
            },
            version: r.version,
            status: r.status,
            replaced_by: r.replaced_by,
            source: r.source,
        }
    }
}

/// The audit action of an export, left out of the state and of the
/// exported history so that downloading does not change the archive.
pub const EXPORT_ACTION: &str = "space.export";

impl Store {
    /// Every document row of the patient with all its metadata, by id.
    pub async fn documents_for_export(
        &self,
        patient_id: i64,
    ) -> Result<Vec<ArchivedDocument>, StoreError> {
        let rows: Vec<Row> = sqlx::query_as(
            "SELECT id, message_id, unique_id, entry_uuid, category, title, type_code, class_code, \
             format_code, creation_time, service_start, service_stop, author, author_institution, \
             author_role, author_specialty, confidentiality, mime_type, blob_hash, source_part, \
             source_entry, version, status, replaced_by, source FROM documents \
             WHERE patient_id = $1 ORDER BY id",
        )
        .bind(patient_id)
        .fetch_all(self.pool())
        .await?;
        Ok(rows.into_iter().map(ArchivedDocument::from).collect())
    }

    /// The content of message `id`.
    pub async fn message_content(&self, id: i64) -> Result<Vec<u8>, StoreError> {
        sqlx::query_scalar(
            "SELECT b.data FROM messages m JOIN blobs b ON b.hash = m.blob_hash WHERE m.id = $1",
        )
        .bind(id)
        .fetch_optional(self.pool())
        .await?
        .ok_or_else(|| StoreError::NotFound(format!("message {id}")))
    }

    /// A fingerprint of everything the export of the space shows, as lines
    /// of text: folders (name, UIDVALIDITY, UIDNEXT, HIGHESTMODSEQ, count),
    /// documents (id, version, status, hidden), profile items, appointments
    /// (with the patient's answer) and the history (count and last id of the
    /// entries by others, exports left out). Small: no content is read.
    pub async fn export_state(
        &self,
        patient_id: i64,
        address: &str,
    ) -> Result<Vec<String>, StoreError> {
        let mut out = Vec::new();
        let folders: Vec<(String, i64, i64, i64, i64)> = sqlx::query_as(
            "SELECT f.name, f.uidvalidity, f.uidnext, f.highestmodseq, \
             (SELECT COUNT(*) FROM mailbox_messages mm WHERE mm.mailbox_id = f.id) \
             FROM mailboxes f WHERE f.account_id = $1 ORDER BY f.name",
        )
        .bind(patient_id)
        .fetch_all(self.pool())
        .await?;
        for (name, validity, next, modseq, count) in folders {
            out.push(format!("folder {name} {validity} {next} {modseq} {count}"));
        }
        let documents: Vec<(i64, i64, String, i64)> = sqlx::query_as(
            "SELECT id, version, status, hidden FROM documents WHERE patient_id = $1 ORDER BY id",
        )
        .bind(patient_id)
        .fetch_all(self.pool())
        .await?;
        for (id, version, status, hidden) in documents {
            out.push(format!("document {id} {version} {status} {hidden}"));
        }
        let profile: Vec<(i64,)> =
            sqlx::query_as("SELECT id FROM profile_items WHERE patient_id = $1 ORDER BY id")
                .bind(patient_id)
                .fetch_all(self.pool())
                .await?;
        for (id,) in profile {
            out.push(format!("profile {id}"));
        }
        let appointments: Vec<(i64, i64, i64, String, String, i64)> = sqlx::query_as(
            "SELECT id, sequence, dtstamp, status, partstat, updated_at FROM appointments \
             WHERE patient_id = $1 ORDER BY id",
        )
        .bind(patient_id)
        .fetch_all(self.pool())
        .await?;
        for (id, sequence, dtstamp, status, partstat, updated) in appointments {
            out.push(format!(
                "appointment {id} {sequence} {dtstamp} {status} {partstat} {updated}"
            ));
        }
        let (count, last): (i64, Option<i64>) = sqlx::query_as(
            "SELECT COUNT(*), MAX(id) FROM audit_log WHERE target = $1 AND actor <> $1 \
             AND action <> $2",
        )
        .bind(address)
        .bind(EXPORT_ACTION)
        .fetch_one(self.pool())
        .await?;
        out.push(format!("history {count} {}", last.unwrap_or(0)));
        Ok(out)
    }
}
