//! The dossier médical and profil médical as stored: documents (one row per
//! version; content in `blobs`, or inside the message that brought it),
//! profile items with their provenance, and the indexing outcome of each
//! delivery. Rows that come with a message are written
//! inside that message's transaction (`group_commit::write`), so a document is
//! indexed with its message or not at all. The rules are in `crate::dossier`.

use sqlx::AnyConnection;

use super::{Store, StoreError};

/// A document to file in a patient's record.
#[derive(Debug, Clone, Default)]
pub struct NewDocument {
    /// XDS uniqueId.
    pub unique_id: String,
    /// XDS entryUUID (what RPLC associations point at).
    pub entry_uuid: Option<String>,
    /// Category (SYNTHESE, BIOLOGIE, …).
    pub category: String,
    /// Title shown to the patient.
    pub title: String,
    /// XDS typeCode (`code^scheme`).
    pub type_code: Option<String>,
    /// XDS classCode.
    pub class_code: Option<String>,
    /// XDS formatCode.
    pub format_code: Option<String>,
    /// Creation time (HL7 TS as given).
    pub creation_time: Option<String>,
    /// Start of the care it reports.
    pub service_start: Option<String>,
    /// End of the care it reports.
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
    /// MIME type of the content.
    pub mime_type: String,
    /// Content.
    pub data: Vec<u8>,
    /// Lower-case hex SHA-256 of `data`, when computed before the write
    /// ([`NewDocument::hash_content`]); empty: computed by the writer.
    pub hash: String,
    /// Where the document is in the message that brings it: then it is not
    /// stored a second time (`data` only gives its size).
    pub reference: Option<DocumentRef>,
    /// `xdm`, `fhir` or `patient`.
    pub source: &'static str,
    /// uniqueId (or entry id) of the document this one replaces (RPLC).
    pub replaces: Option<String>,
    /// Profile items read from it.
    pub items: Vec<NewProfileItem>,
    /// The proven author who deposited it (`dossier::filing::Depositor`).
    pub deposited_by: Option<String>,
    /// The establishment that deposited it, when an establishment's mailbox did.
    pub deposited_establishment: Option<String>,
}

/// Where a document is inside its message: an XDM package's zip entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DocumentRef {
    /// Index of the attachment among the message's attachments (mail-parser's
    /// `attachments()` order).
    pub part: usize,
    /// Path of the zip entry.
    pub entry: String,
}

impl NewDocument {
    /// Computes the content hash now, on the caller's thread, so that the
    /// single database writer does not spend its time on it.
    pub fn hash_content(&mut self) {
        self.hash = self.content_hash();
    }

    /// Lower-case hex SHA-256 of the content: the one computed beforehand, if any.
    fn content_hash(&self) -> String {
        if self.hash.is_empty() {
            use sha2::Digest;
            hex::encode(sha2::Sha256::digest(&self.data))
        } else {
            self.hash.clone()
        }
    }
}

/// A profile item to file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NewProfileItem {
    /// Profile entry id (`allergies`, `traitements`, …).
    pub category: String,
    /// What it says.
    pub label: String,
    /// Code.
    pub code: Option<String>,
    /// Code system.
    pub code_system: Option<String>,
    /// Value (a measure, a blood group).
    pub value: Option<String>,
    /// Date (HL7 TS or ISO as given).
    pub item_date: Option<String>,
    /// Who recorded it (document author).
    pub author: Option<String>,
}

/// What indexing did with one recipient's copy.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct IndexingOutcome {
    /// The recipient.
    pub recipient: String,
    /// `indexed`, `not_indexed` or `invalid` (professional recipients; `dossier::filing::OutcomeKind`).
    pub outcome: String,
    /// Details, without health data (counts, error kind).
    pub detail: String,
    /// `X-MSS-CODECDA` as the message carried it.
    pub header_codecda: Option<String>,
    /// `X-MSS-INS` as the message carried it.
    pub header_ins: Option<String>,
    /// What was tolerated to read the attachments and where the headers
    /// disagree with them, `; ` separated (empty: nothing to say).
    pub remarks: String,
}

/// A document to withdraw from a patient's record (ANS action `D`), checked
/// beforehand (`dossier::authorship`): its current version becomes
/// `deleted`, its profile items go, and the audit trail says who did it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Withdrawal {
    /// uniqueId of the document.
    pub unique_id: String,
    /// The proven author who asked (the audit entry's actor).
    pub requested_by: String,
}

/// Everything a delivery files in patients' records, written with the message.
#[derive(Debug, Clone, Default)]
pub struct DossierFiling {
    /// (patient account id, document).
    pub documents: Vec<(i64, NewDocument)>,
    /// One per recipient that had structured attachments.
    pub outcomes: Vec<IndexingOutcome>,
    /// (patient account id, document to withdraw).
    pub withdrawals: Vec<(i64, Withdrawal)>,
}

/// A document as listed.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Document {
    /// Row id.
    pub id: i64,
    /// The patient.
    #[serde(skip)]
    pub patient_id: i64,
    /// Source message.
    #[serde(skip)]
    pub message_id: Option<i64>,
    /// XDS uniqueId.
    pub unique_id: String,
    /// Category.
    pub category: String,
    /// Title.
    pub title: String,
    /// typeCode.
    pub type_code: Option<String>,
    /// Creation time.
    pub creation_time: Option<String>,
    /// Author.
    pub author: Option<String>,
    /// Author's institution.
    pub author_institution: Option<String>,
    /// Confidentiality codes.
    pub confidentiality: Option<String>,
    /// MIME type.
    pub mime_type: String,
    /// Content hash; the message's when the document is read from it
    /// (`reference`).
    #[serde(skip)]
    pub blob_hash: String,
    /// Where in its message the document is, when it is not stored on its own.
    #[serde(skip)]
    pub reference: Option<DocumentRef>,
    /// Octets.
    pub size: i64,
    /// Version (1, then 2 for its replacement, …).
    pub version: i64,
    /// `current`, `superseded`, or `deleted` (withdrawn by its author: shown
    /// only by [`Store::documents_archive`], for the audit and the export).
    pub status: String,
    /// Hidden from professionals (MASQUE_PS).
    pub hidden: bool,
    /// `xdm`, `fhir` or `patient`.
    pub source: String,
    /// When it was filed (Unix seconds).
    pub created_at: i64,
}

const DOCUMENT_COLUMNS: &str = "id, patient_id, message_id, unique_id, category, title, type_code, creation_time, \
     author, author_institution, confidentiality, mime_type, blob_hash, source_part, source_entry, size, version, \
     status, hidden, source, created_at";

/// A `documents` row as read ([`DOCUMENT_COLUMNS`]): the place in the
/// message as two nullable columns, the hidden mark as an integer.
#[derive(sqlx::FromRow)]
struct DocumentRow {
    id: i64,
    patient_id: i64,
    message_id: Option<i64>,
    unique_id: String,
    category: String,
    title: String,
    type_code: Option<String>,
    creation_time: Option<String>,
    author: Option<String>,
    author_institution: Option<String>,
    confidentiality: Option<String>,
    mime_type: String,
    blob_hash: String,
    source_part: Option<i64>,
    source_entry: Option<String>,
    size: i64,
    version: i64,
    status: String,
    hidden: i64,
    source: String,
    created_at: i64,
}

impl From<DocumentRow> for Document {
    fn from(r: DocumentRow) -> Document {
        Document {
            id: r.id,
            patient_id: r.patient_id,
            message_id: r.message_id,
            unique_id: r.unique_id,
            category: r.category,
            title: r.title,
            type_code: r.type_code,
            creation_time: r.creation_time,
            author: r.author,
            author_institution: r.author_institution,
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
            size: r.size,
            version: r.version,
            status: r.status,
            hidden: r.hidden != 0,
            source: r.source,
            created_at: r.created_at,
        }
    }
}

/// A profile item as listed, with its provenance.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ProfileItem {
    /// Row id.
    pub id: i64,
    /// Profile entry id.
    pub category: String,
    /// What it says.
    pub label: String,
    /// Code.
    pub code: Option<String>,
    /// Value.
    pub value: Option<String>,
    /// Date.
    pub date: Option<String>,
    /// Source document (None: declared by the patient).
    pub document_id: Option<i64>,
    /// Source document's title.
    pub document_title: Option<String>,
    /// Who recorded it.
    pub author: Option<String>,
    /// When it was filed.
    pub created_at: i64,
    /// Its source document is hidden from professionals (MASQUE_PS).
    #[serde(skip)]
    pub source_hidden: bool,
}

/// A profile item as read by [`Store::profile_of`], the hidden mark as an integer.
#[derive(sqlx::FromRow)]
struct ProfileRow {
    id: i64,
    category: String,
    label: String,
    code: Option<String>,
    value: Option<String>,
    item_date: Option<String>,
    document_id: Option<i64>,
    document_title: Option<String>,
    author: Option<String>,
    created_at: i64,
    source_hidden: i64,
}

impl From<ProfileRow> for ProfileItem {
    fn from(r: ProfileRow) -> ProfileItem {
        ProfileItem {
            id: r.id,
            category: r.category,
            label: r.label,
            code: r.code,
            value: r.value,
            date: r.item_date,
            document_id: r.document_id,
            document_title: r.document_title,
            author: r.author,
            created_at: r.created_at,
            source_hidden: r.source_hidden != 0,
        }
    }
}

/// Writes the documents and outcomes of one message, on the delivery's connection.
pub(super) async fn file_on(
    conn: &mut AnyConnection,
    message: Option<(i64, &str)>,
    filing: &DossierFiling,
    t: i64,
) -> Result<(), StoreError> {
    let message_id = message.map(|(id, _)| id);
    for (patient_id, d) in &filing.documents {
        // A document inside the message is read from the message's blob.
        let reference = d.reference.as_ref().zip(message.map(|(_, hash)| hash));
        let hash = match reference {
            Some((_, message_hash)) => message_hash.to_string(),
            None => d.content_hash(),
        };
        if reference.is_none() {
            sqlx::query(
                "INSERT INTO blobs (hash, size, data) VALUES ($1, $2, $3) ON CONFLICT (hash) DO NOTHING",
            )
            .bind(&hash)
            .bind(d.data.len() as i64)
            .bind(&d.data)
            .execute(&mut *conn)
            .await?;
        }
        // A replacement takes the next version number and supersedes the old one.
        let mut version = 1i64;
        let mut replaced: Option<i64> = None;
        let mut hidden = 0i64;
        if let Some(old) = &d.replaces {
            // A withdrawn document is replaced by nothing: its successor is a first version.
            let row: Option<(i64, i64, i64)> = sqlx::query_as(
                "SELECT id, version, hidden FROM documents WHERE patient_id = $1 \
                 AND (unique_id = $2 OR entry_uuid = $2) AND status <> 'deleted' \
                 ORDER BY version DESC LIMIT 1",
            )
            .bind(patient_id)
            .bind(old)
            .fetch_optional(&mut *conn)
            .await?;
            if let Some((old_id, old_version, old_hidden)) = row {
                replaced = Some(old_id);
                version = old_version + 1;
                // What the patient hid stays hidden in its new version.
                hidden = old_hidden;
            }
        }
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO documents (patient_id, message_id, unique_id, entry_uuid, category, title, type_code, class_code, \
             format_code, creation_time, service_start, service_stop, author, author_institution, author_role, \
             author_specialty, confidentiality, mime_type, blob_hash, size, version, source, created_at, hidden, \
             source_part, source_entry, deposited_by, deposited_establishment) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22, $23, $24, \
             $25, $26, $27, $28) RETURNING id",
        )
        .bind(patient_id)
        .bind(message_id)
        .bind(&d.unique_id)
        .bind(&d.entry_uuid)
        .bind(&d.category)
        .bind(&d.title)
        .bind(&d.type_code)
        .bind(&d.class_code)
        .bind(&d.format_code)
        .bind(&d.creation_time)
        .bind(&d.service_start)
        .bind(&d.service_stop)
        .bind(&d.author)
        .bind(&d.author_institution)
        .bind(&d.author_role)
        .bind(&d.author_specialty)
        .bind(&d.confidentiality)
        .bind(&d.mime_type)
        .bind(&hash)
        .bind(d.data.len() as i64)
        .bind(version)
        .bind(d.source)
        .bind(t)
        .bind(hidden)
        .bind(reference.map(|(r, _)| i64::try_from(r.part).unwrap_or(i64::MAX)))
        .bind(reference.map(|(r, _)| r.entry.as_str()))
        .bind(&d.deposited_by)
        .bind(&d.deposited_establishment)
        .fetch_one(&mut *conn)
        .await?;
        if let Some(old) = replaced {
            sqlx::query(
                "UPDATE documents SET status = 'superseded', replaced_by = $1 WHERE id = $2",
            )
            .bind(id)
            .bind(old)
            .execute(&mut *conn)
            .await?;
            // The profile follows the current version.
            sqlx::query("DELETE FROM profile_items WHERE document_id = $1")
                .bind(old)
                .execute(&mut *conn)
                .await?;
        }
        for item in &d.items {
            insert_item(&mut *conn, *patient_id, Some(id), item, t).await?;
        }
    }
    for (patient_id, w) in &filing.withdrawals {
        withdraw_on(&mut *conn, *patient_id, w, t).await?;
    }
    for o in &filing.outcomes {
        sqlx::query(
            "INSERT INTO indexing_outcomes (message_id, recipient, outcome, detail, created_at, \
             header_codecda, header_ins, remarks) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(message_id)
        .bind(&o.recipient)
        .bind(&o.outcome)
        .bind(&o.detail)
        .bind(t)
        .bind(&o.header_codecda)
        .bind(&o.header_ins)
        .bind(&o.remarks)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

/// Withdraws the current version of a patient's document: status `deleted`
/// (the row and its content stay for the audit and the archive), its
/// profile items removed, and an audit entry on the patient's trail, all in
/// the caller's transaction. A document no longer current by now (withdrawn
/// or replaced since the check) is left as it is.
async fn withdraw_on(
    conn: &mut AnyConnection,
    patient_id: i64,
    w: &Withdrawal,
    t: i64,
) -> Result<(), StoreError> {
    let ids: Vec<i64> = sqlx::query_scalar(
        "UPDATE documents SET status = 'deleted', withdrawn_at = $1, withdrawn_by = $2 \
         WHERE patient_id = $3 AND unique_id = $4 AND status = 'current' RETURNING id",
    )
    .bind(t)
    .bind(&w.requested_by)
    .bind(patient_id)
    .bind(&w.unique_id)
    .fetch_all(&mut *conn)
    .await?;
    if ids.is_empty() {
        return Ok(());
    }
    let patient: String = sqlx::query_scalar("SELECT address FROM accounts WHERE id = $1")
        .bind(patient_id)
        .fetch_one(&mut *conn)
        .await?;
    for id in ids {
        sqlx::query("DELETE FROM profile_items WHERE document_id = $1")
            .bind(id)
            .execute(&mut *conn)
            .await?;
        super::audit::append_on(
            conn,
            &super::audit::AuditEntry::new(
                &w.requested_by,
                "document.delete",
                &patient,
                &format!("document {id} withdrawn by its author"),
            ),
            t,
        )
        .await?;
    }
    Ok(())
}

async fn insert_item(
    conn: &mut AnyConnection,
    patient_id: i64,
    document_id: Option<i64>,
    item: &NewProfileItem,
    t: i64,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO profile_items (patient_id, category, label, code, code_system, value, item_date, \
         document_id, author, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    )
    .bind(patient_id)
    .bind(&item.category)
    .bind(&item.label)
    .bind(&item.code)
    .bind(&item.code_system)
    .bind(&item.value)
    .bind(&item.item_date)
    .bind(document_id)
    .bind(&item.author)
    .bind(t)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

impl Store {
    /// The patient's documents, current versions first by category then
    /// newest; withdrawn ones are not shown (only [`Store::documents_archive`]
    /// has them).
    pub async fn documents_of(&self, patient_id: i64) -> Result<Vec<Document>, StoreError> {
        let rows: Vec<DocumentRow> = sqlx::query_as(&format!(
            "SELECT {DOCUMENT_COLUMNS} FROM documents WHERE patient_id = $1 AND status <> 'deleted' \
             ORDER BY category, created_at DESC, id DESC"
        ))
        .bind(patient_id)
        .fetch_all(self.pool())
        .await?;
        Ok(rows.into_iter().map(Document::from).collect())
    }

    /// A page of the patient's documents, newest first: those with an id
    /// below `before` (all when None), in `category` when given.
    pub async fn documents_page(
        &self,
        patient_id: i64,
        category: Option<&str>,
        before: Option<i64>,
        limit: i64,
    ) -> Result<Vec<Document>, StoreError> {
        let rows: Vec<DocumentRow> = sqlx::query_as(&format!(
            "SELECT {DOCUMENT_COLUMNS} FROM documents WHERE patient_id = $1 AND status <> 'deleted' \
             AND ($2 IS NULL OR category = $2) AND id < $3 ORDER BY id DESC LIMIT $4"
        ))
        .bind(patient_id)
        .bind(category)
        .bind(before.unwrap_or(i64::MAX))
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        Ok(rows.into_iter().map(Document::from).collect())
    }

    /// The account id of the patient a document belongs to (to check an
    /// attempt on it by someone else).
    pub async fn document_owner(&self, id: i64) -> Result<Option<i64>, StoreError> {
        Ok(
            sqlx::query_scalar("SELECT patient_id FROM documents WHERE id = $1")
                .bind(id)
                .fetch_optional(self.pool())
                .await?,
        )
    }

    /// One document, only if it belongs to `patient_id` and was not withdrawn.
    pub async fn document_of(
        &self,
        patient_id: i64,
        id: i64,
    ) -> Result<Option<Document>, StoreError> {
        let row: Option<DocumentRow> = sqlx::query_as(&format!(
            "SELECT {DOCUMENT_COLUMNS} FROM documents WHERE id = $1 AND patient_id = $2 \
             AND status <> 'deleted'"
        ))
        .bind(id)
        .bind(patient_id)
        .fetch_optional(self.pool())
        .await?;
        Ok(row.map(Document::from))
    }

    /// Hides a document from professionals (MASQUE_PS) or shows it again.
    pub async fn set_document_hidden(
        &self,
        patient_id: i64,
        id: i64,
        hidden: bool,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE documents SET hidden = $1 WHERE id = $2 AND patient_id = $3 \
                 AND status <> 'deleted'",
        )
        .bind(i64::from(hidden))
        .bind(id)
        .bind(patient_id)
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Files a document outside any message (the patient's own), with its items.
    pub async fn add_document(
        &self,
        patient_id: i64,
        document: NewDocument,
    ) -> Result<(), StoreError> {
        let mut tx = self.pool().begin().await?;
        let filing = DossierFiling {
            documents: vec![(patient_id, document)],
            ..DossierFiling::default()
        };
        file_on(&mut tx, None, &filing, self.now()).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Who deposited the latest version of the patient's document `id`
    /// (uniqueId or entryUUID): (depositor address, depositing
    /// establishment); None when there is no such document, or it was
    /// withdrawn (RPLC then files a first version).
    pub async fn document_depositor(
        &self,
        patient_id: i64,
        id: &str,
    ) -> Result<Option<(Option<String>, Option<String>)>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT deposited_by, deposited_establishment FROM documents WHERE patient_id = $1 \
             AND (unique_id = $2 OR entry_uuid = $2) AND status <> 'deleted' \
             ORDER BY version DESC LIMIT 1",
        )
        .bind(patient_id)
        .bind(id)
        .fetch_optional(self.pool())
        .await?)
    }

    /// Who deposited each current document of the patient with this
    /// uniqueId (what a withdrawal, ANS action `D`, names; a package sent
    /// twice files two): (depositor address, depositing establishment).
    /// Empty when the record holds no current document with it (unknown,
    /// replaced or withdrawn).
    pub async fn current_document_depositors(
        &self,
        patient_id: i64,
        unique_id: &str,
    ) -> Result<Vec<(Option<String>, Option<String>)>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT deposited_by, deposited_establishment FROM documents WHERE patient_id = $1 \
             AND unique_id = $2 AND status = 'current' ORDER BY id",
        )
        .bind(patient_id)
        .bind(unique_id)
        .fetch_all(self.pool())
        .await?)
    }

    /// Every document row of the patient, withdrawn and superseded ones
    /// included, oldest first: what the audit and the export of the whole
    /// space read (and nothing that shows the record to anyone).
    pub async fn documents_archive(&self, patient_id: i64) -> Result<Vec<Document>, StoreError> {
        let rows: Vec<DocumentRow> = sqlx::query_as(&format!(
            "SELECT {DOCUMENT_COLUMNS} FROM documents WHERE patient_id = $1 ORDER BY id"
        ))
        .bind(patient_id)
        .fetch_all(self.pool())
        .await?;
        Ok(rows.into_iter().map(Document::from).collect())
    }

    /// Files documents outside any message (a deposit through the API).
    pub async fn file(&self, filing: &DossierFiling) -> Result<(), StoreError> {
        let mut tx = self.pool().begin().await?;
        file_on(&mut tx, None, filing, self.now()).await?;
        tx.commit().await?;
        Ok(())
    }

    /// The patient's profile items, with the title of their source document.
    pub async fn profile_of(&self, patient_id: i64) -> Result<Vec<ProfileItem>, StoreError> {
        let rows: Vec<ProfileRow> = sqlx::query_as(
            "SELECT p.id, p.category, p.label, p.code, p.value, p.item_date, p.document_id, p.author, \
             p.created_at, d.title AS document_title, COALESCE(d.hidden, 0) AS source_hidden \
             FROM profile_items p \
             LEFT JOIN documents d ON d.id = p.document_id WHERE p.patient_id = $1 \
             ORDER BY p.category, p.id",
        )
        .bind(patient_id)
        .fetch_all(self.pool())
        .await?;
        Ok(rows.into_iter().map(ProfileItem::from).collect())
    }

    /// Adds an item the patient declares ("déclaré par le patient").
    pub async fn declare_profile_item(
        &self,
        patient_id: i64,
        item: &NewProfileItem,
    ) -> Result<(), StoreError> {
        let mut conn = self.pool().acquire().await?;
        insert_item(&mut conn, patient_id, None, item, self.now()).await
    }

    /// The indexing outcomes recorded for a message.
    pub async fn indexing_outcomes(
        &self,
        message_id: i64,
    ) -> Result<Vec<IndexingOutcome>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT recipient, outcome, detail, header_codecda, header_ins, remarks FROM indexing_outcomes \
             WHERE message_id = $1 ORDER BY id",
        )
        .bind(message_id)
        .fetch_all(self.pool())
        .await?)
    }
}
