//! From what the parsers found to what a message files ([`Filing`]), and the
//! rules that decide: a message to a patient whose structured attachments do
//! not concern that patient, or cannot be read, is refused whole (nothing
//! half-indexed); professionals receive such mail, with the outcome recorded.
//! Also the patient's own documents and declared profile items. These are the
//! dossier's own values; `dossier::rows` maps them to the store's rows.

use mail_parser::{Message, MimeHeaders};

use super::headers::{MssHeaders, ReceivedHeaders};
use super::identity::{self, IdentityProblem};
use super::limits::Limits;
use super::metadata::{Code, EntryAction};
use super::profile::ProfileItem;
use super::{Indexed, IndexedDocument, ProfileCategory, index_attachment};

/// Largest document a patient may add (5 MB, as for attachments).
pub const PATIENT_DOCUMENT_MAX: usize = 5 * 1024 * 1024;

/// What a message (or a deposit) files in patients' records, decided here and
/// written with the message (or at once for a deposit).
#[derive(Debug, Clone, Default)]
pub struct Filing {
    /// (patient account id, document).
    pub documents: Vec<(i64, FiledDocument)>,
    /// One per recipient that had structured attachments.
    pub outcomes: Vec<Outcome>,
    /// (patient account id, document to withdraw): ANS action `D`.
    pub withdrawals: Vec<(i64, Withdrawal)>,
}

/// A document the sender asks to withdraw from a patient's record (an
/// entry whose `urn:action:extraMetadataSlot` is `D`). The document stays
/// stored, marked `deleted`, for the audit trail and the archive; only its
/// author may ask ([`super::authorship::sign_and_check`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Withdrawal {
    /// uniqueId of the document to withdraw.
    pub unique_id: String,
    /// The proven author who asks ([`Depositor::sign`]): the audit entry's actor.
    pub requested_by: Option<String>,
}

/// A document to file in a patient's record.
#[derive(Debug, Clone)]
pub struct FiledDocument {
    /// XDS uniqueId (empty for a FHIR bundle).
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
    /// Content (for a reference, only its size is stored).
    pub data: Vec<u8>,
    /// Lower-case hex SHA-256 of `data`, computed while examining (off the
    /// single database writer); None: the writer computes it.
    pub hash: Option<String>,
    /// Where the document is in the message that brings it: then it is not
    /// stored a second time.
    pub reference: Option<DocumentRef>,
    /// Where it comes from.
    pub source: DocumentSource,
    /// uniqueId (or entryUUID) of the document this one replaces (RPLC).
    pub replaces: Option<String>,
    /// Profile items read from it.
    pub items: Vec<FiledItem>,
    /// The proven author who deposited it ([`Depositor::sign`]).
    pub deposited_by: Option<String>,
    /// The establishment that deposited it, when an establishment's mailbox did.
    pub deposited_establishment: Option<String>,
}

impl FiledDocument {
    /// A document with what every source gives; its source fills in the rest.
    fn new(
        source: DocumentSource,
        category: String,
        title: String,
        mime_type: String,
    ) -> FiledDocument {
        FiledDocument {
            unique_id: String::new(),
            entry_uuid: None,
            category,
            title,
            type_code: None,
            class_code: None,
            format_code: None,
            creation_time: None,
            service_start: None,
            service_stop: None,
            author: None,
            author_institution: None,
            author_role: None,
            author_specialty: None,
            confidentiality: None,
            mime_type,
            data: Vec::new(),
            hash: None,
            reference: None,
            source,
            replaces: None,
            items: Vec::new(),
            deposited_by: None,
            deposited_establishment: None,
        }
    }

    /// Computes the content hash now, on the examining thread, so that the
    /// single database writer does not spend its time on it.
    fn hash_content(&mut self) {
        use sha2::Digest;
        self.hash = Some(hex::encode(sha2::Sha256::digest(&self.data)));
    }
}

/// Where a filed document comes from (stored by name).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DocumentSource {
    /// A document of an IHE XDM package.
    Xdm,
    /// A FHIR bundle, itself the document.
    Fhir,
    /// Added by the patient.
    Patient,
}

impl DocumentSource {
    /// The stable name stored with the document.
    pub fn as_str(self) -> &'static str {
        match self {
            DocumentSource::Xdm => "xdm",
            DocumentSource::Fhir => "fhir",
            DocumentSource::Patient => "patient",
        }
    }
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

/// A profile item to file, with who recorded it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FiledItem {
    /// The item as read (or as declared).
    pub item: ProfileItem,
    /// The author of its document; None when the patient declared it.
    pub author: Option<String>,
}

/// What indexing did with one recipient's copy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// The recipient.
    pub recipient: String,
    /// What was done.
    pub kind: OutcomeKind,
    /// Details, without health data (counts, what could not be read).
    pub detail: String,
    /// The MSSanté headers the message carried.
    pub headers: ReceivedHeaders,
    /// What was tolerated to read the attachments, and where the headers
    /// disagree with them (one remark each).
    pub remarks: Vec<String>,
}

/// The kinds of indexing outcome (stored by name).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutcomeKind {
    /// The patient's documents were filed.
    Indexed,
    /// A professional recipient: nothing is filed for them.
    NotIndexed,
    /// A professional recipient, and an attachment could not be read.
    Invalid,
}

impl OutcomeKind {
    /// The stable name stored in `indexing_outcomes`.
    pub fn as_str(self) -> &'static str {
        match self {
            OutcomeKind::Indexed => "indexed",
            OutcomeKind::NotIndexed => "not_indexed",
            OutcomeKind::Invalid => "invalid",
        }
    }
}

/// A local patient among a message's recipients.
#[derive(Debug, Clone)]
pub struct PatientRecipient {
    /// Account id.
    pub account_id: i64,
    /// Address.
    pub address: String,
    /// INS matricule.
    pub ins: String,
}

/// Why a message to a patient is refused at the end of DATA.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// The documents are not about this patient, or their INS is missing or incomplete.
    #[error("{0}")]
    Identity(IdentityProblem),
    /// A structured attachment could not be read (unsafe, corrupt, over a limit).
    #[error("Pièce jointe structurée illisible : {0}")]
    Unreadable(String),
    /// A replacement (RPLC) of a document deposited by someone else.
    #[error("Remplacement refusé : le document {0} a été déposé par un autre auteur")]
    NotAuthor(String),
    /// A withdrawal (action `D`) of a document the patient's record does
    /// not hold as current.
    #[error("Suppression refusée : le document {0} est inconnu dans le dossier du patient")]
    UnknownDocument(String),
    /// A withdrawal (action `D`) of a document deposited by someone else.
    #[error("Suppression refusée : le document {0} a été déposé par un autre auteur")]
    DeleteNotAuthor(String),
}

/// A refusal, with the MSSanté header values of what was read (for the
/// error MDN), when the attachments could be read at all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{refusal}")]
pub struct Refused {
    /// Why.
    pub refusal: Refusal,
    /// `X-MSS-CODECDA` / `X-MSS-INS` of the documents read.
    pub headers: MssHeaders,
}

/// Up to 128 printable ASCII characters of a document id, for an SMTP reply.
fn ascii_id(id: &str) -> String {
    id.chars()
        .filter(|c| c.is_ascii_graphic())
        .take(128)
        .collect()
}

impl Refusal {
    /// The SMTP reply text (ASCII: any client can show it).
    pub fn smtp_text(&self) -> String {
        match self {
            Refusal::Identity(IdentityProblem::WrongPatient) => {
                "Documents refused: they concern another patient (INS differs from the recipient's) [902]".into()
            }
            Refusal::Identity(IdentityProblem::NoIns) => {
                "Documents refused: no INS (national health identifier) of the patient [903]".into()
            }
            Refusal::Identity(IdentityProblem::IncompleteIns) => {
                "Documents refused: incomplete INS identity (birth name, given name, birth date and sex required) [905]".into()
            }
            Refusal::NotAuthor(id) => format!(
                "Replacement refused: document {} was deposited by another author [906]",
                ascii_id(id)
            ),
            Refusal::UnknownDocument(id) => format!(
                "Deletion refused: document {} is not in the patient's record [904]",
                ascii_id(id)
            ),
            Refusal::DeleteNotAuthor(id) => format!(
                "Deletion refused: document {} was deposited by another author [906]",
                ascii_id(id)
            ),
            Refusal::Unreadable(why) => format!(
                "Structured attachment refused: {} [900]",
                why.chars().filter(|c| c.is_ascii() && !c.is_ascii_control()).take(200).collect::<String>()
            ),
        }
    }

    /// Integration error code for the MDN (900 invalid content, 902, 903,
    /// 905; 904 for a withdrawal of a document the record does not hold;
    /// 906 for a replacement or withdrawal by another author than the
    /// document's).
    pub fn mdn_code(&self) -> u16 {
        match self {
            Refusal::Identity(p) => p.mdn_code(),
            Refusal::Unreadable(_) => 900,
            Refusal::UnknownDocument(_) => 904,
            Refusal::NotAuthor(_) | Refusal::DeleteNotAuthor(_) => 906,
        }
    }
}

/// Who deposits documents: the proven author of the message (or of the API
/// call), recorded on each document so that only they may replace it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Depositor {
    /// The author's address.
    pub address: String,
    /// The establishment the author belongs to, when known (our accounts).
    pub establishment: Option<String>,
    /// The author is an establishment's own mailbox (organisation or
    /// application account): its documents may be replaced by anyone of
    /// the same establishment.
    pub is_establishment: bool,
}

impl Depositor {
    /// The depositor for a local account or a proven author of that kind.
    pub fn new(
        address: &str,
        kind: Option<crate::identity::AccountKind>,
        establishment: Option<&str>,
    ) -> Depositor {
        use crate::identity::AccountKind;
        let is_establishment = matches!(
            kind,
            Some(AccountKind::Organisation | AccountKind::Application)
        );
        let establishment = establishment
            .filter(|e| !e.trim().is_empty())
            .map(str::to_string)
            // An establishment's mailbox without a registered establishment stands for itself.
            .or_else(|| is_establishment.then(|| address.to_string()));
        Depositor {
            address: address.to_string(),
            establishment,
            is_establishment,
        }
    }

    /// Records this depositor on every document and withdrawal of `filing`.
    pub fn sign(&self, filing: &mut Filing) {
        for (_, w) in &mut filing.withdrawals {
            w.requested_by = Some(self.address.clone());
        }
        for (_, d) in &mut filing.documents {
            d.deposited_by = Some(self.address.clone());
            d.deposited_establishment = self
                .is_establishment
                .then(|| self.establishment.clone())
                .flatten();
        }
    }

    /// May this depositor replace a document deposited by `by` (for the
    /// establishment `establishment`, when an establishment's mailbox
    /// deposited it)? Only the same author, or anyone of the depositing
    /// establishment. A document with no recorded depositor is replaced by
    /// nobody.
    pub fn may_replace(&self, by: Option<&str>, establishment: Option<&str>) -> bool {
        by.is_some_and(|b| b.eq_ignore_ascii_case(&self.address))
            || establishment
                .zip(self.establishment.as_deref())
                .is_some_and(|(original, mine)| original == mine)
    }
}

/// What the dossier makes of one message.
#[derive(Debug, Clone, Default)]
pub struct Examination {
    /// What to file with the message (None: nothing structured).
    pub filing: Option<Filing>,
    /// Patients whose documents were filed (for the `processed` MDN).
    pub filed_for: Vec<String>,
    /// `X-MSS-CODECDA` / `X-MSS-INS` of the documents read (for MDNs).
    pub headers: MssHeaders,
}

fn code_text(c: Option<&Code>) -> Option<String> {
    c.map(|c| match &c.scheme {
        Some(s) => format!("{}^{s}", c.code),
        None => c.code.clone(),
    })
}

fn items_of(d: &IndexedDocument, author: Option<&str>) -> Vec<FiledItem> {
    match &d.cda {
        Some(c) => c.items().map(|i| filed_item(i, author)).collect(),
        None => Vec::new(),
    }
}

fn filed_item(i: &ProfileItem, author: Option<&str>) -> FiledItem {
    FiledItem {
        item: i.clone(),
        author: author.map(str::to_string),
    }
}

/// The documents of one indexed attachment for one patient, and the
/// documents it asks to withdraw (entries marked `D`: nothing of them is filed).
/// `part` is the attachment's index in its message, when there is one: its
/// package's documents are then filed as references into the message.
fn documents_of(
    indexed: &Indexed,
    message_title: &str,
    part: Option<usize>,
) -> (Vec<FiledDocument>, Vec<Withdrawal>) {
    let mut out = Vec::new();
    let mut withdrawals = Vec::new();
    for d in &indexed.documents {
        let entry = d.entry.as_ref();
        if let Some(e) = entry
            && e.action == EntryAction::Delete
        {
            withdrawals.push(Withdrawal {
                unique_id: e.unique_id.clone(),
                requested_by: None,
            });
            continue;
        }
        let author = entry.and_then(|e| e.authors.first());
        let person = author.and_then(|a| a.person.clone()).or_else(|| {
            d.cda
                .as_ref()
                .and_then(|c| c.author.as_ref())
                .and_then(|a| a.person.clone())
        });
        let unique_id = entry.map(|e| e.unique_id.clone()).unwrap_or_default();
        let replaces = indexed
            .replaces
            .iter()
            .find(|(new, _)| *new == unique_id || entry.is_some_and(|e| e.id == *new))
            .map(|(_, old)| old.clone());
        let items = items_of(d, person.as_deref());
        out.push(FiledDocument {
            unique_id,
            entry_uuid: entry.map(|e| e.id.clone()),
            category: d.category.to_string(),
            title: d.title.clone(),
            type_code: code_text(entry.and_then(|e| e.type_code.as_ref())),
            class_code: code_text(entry.and_then(|e| e.class_code.as_ref())),
            format_code: code_text(entry.and_then(|e| e.format_code.as_ref())),
            creation_time: entry
                .and_then(|e| e.creation_time.clone())
                .or_else(|| d.cda.as_ref().and_then(|c| c.effective_time.clone())),
            service_start: entry.and_then(|e| e.service_start_time.clone()),
            service_stop: entry.and_then(|e| e.service_stop_time.clone()),
            author: person,
            author_institution: author.and_then(|a| a.institution.clone()),
            author_role: author.and_then(|a| a.role.clone()),
            author_specialty: author.and_then(|a| a.specialty.clone()),
            confidentiality: entry
                .map(|e| {
                    e.confidentiality
                        .iter()
                        .map(|c| c.code.clone())
                        .collect::<Vec<_>>()
                        .join(",")
                })
                .filter(|c| !c.is_empty()),
            mime_type: d.mime_type.clone(),
            data: d.data.clone(),
            hash: None,
            reference: part
                .zip(d.path.clone())
                .map(|(part, entry)| DocumentRef { part, entry }),
            source: DocumentSource::Xdm,
            replaces,
            items,
            deposited_by: None,
            deposited_establishment: None,
        });
    }
    if let Some(b) = &indexed.fhir {
        let title = if message_title.is_empty() {
            "Données de santé (FHIR)".into()
        } else {
            message_title.to_string()
        };
        out.push(FiledDocument {
            items: b.items.iter().map(|i| filed_item(i, None)).collect(),
            ..FiledDocument::new(
                DocumentSource::Fhir,
                super::category::DEFAULT_CATEGORY.to_string(),
                title,
                "application/fhir+json".into(),
            )
        });
    }
    (out, withdrawals)
}

/// Reads back a document filed as a reference into its message
/// ([`DocumentRef`]): the attachment, then the package with every check of
/// delivery (limits, sizes, SHA-1), then the entry, which must also carry the
/// document's XDS uniqueId. If the attachment at that index does not hold it
/// (another mail-parser version ordering attachments differently), the one
/// package of the message that does. None when the message does not hold it
/// (which a stored reference never should).
pub fn extract(
    message: &[u8],
    at: &DocumentRef,
    unique_id: &str,
    limits: &Limits,
) -> Option<Vec<u8>> {
    let msg = crate::mime::parse(message)?;
    let from = |contents: &[u8]| {
        super::xdm::read_package(contents, limits)
            .ok()?
            .documents
            .into_iter()
            .find(|d| d.path == at.entry && d.entry.unique_id == unique_id)
            .map(|d| d.data)
    };
    if let Some(data) = msg
        .attachments()
        .nth(at.part)
        .and_then(|p| from(p.contents()))
    {
        return Some(data);
    }
    let mut found = msg.attachments().filter_map(|p| from(p.contents()));
    match (found.next(), found.next()) {
        (Some(data), None) => Some(data),
        _ => None,
    }
}

/// Examines a message's attachments for its recipients. `Err` refuses the
/// message (patients only); professionals get an outcome row instead.
pub fn examine(
    raw: &[u8],
    patients: &[PatientRecipient],
    professionals: &[String],
    limits: &Limits,
) -> Result<Examination, Refused> {
    match crate::mime::parse(raw) {
        Some(msg) => examine_parsed(&msg, patients, professionals, limits),
        None => Ok(Examination::default()),
    }
}

/// [`examine`] on a message mail-parser has already parsed (delivery shares
/// the parse that computes the IMAP structure: `ParsedMessage::parse_sharing`).
pub fn examine_parsed(
    msg: &Message<'_>,
    patients: &[PatientRecipient],
    professionals: &[String],
    limits: &Limits,
) -> Result<Examination, Refused> {
    // (what was found, FHIR content, index of the attachment)
    let mut found: Vec<(Result<Indexed, String>, Vec<u8>, usize)> = Vec::new();
    // What the message's structured attachments hold once read, all together.
    let mut held: u64 = 0;
    for (index, part) in msg.attachments().enumerate() {
        let content_type = part
            .content_type()
            .map(|ct| format!("{}/{}", ct.ctype(), ct.subtype().unwrap_or_default()))
            .unwrap_or_default();
        let data = part.contents();
        let remaining = limits.max_message_inflated.saturating_sub(held);
        let part_limits = Limits {
            max_total_size: limits.max_total_size.min(remaining),
            max_entry_size: limits.max_entry_size.min(remaining),
            ..*limits
        };
        if let Some(r) = index_attachment(part.attachment_name(), &content_type, data, &part_limits)
        {
            if found.len() >= limits.max_structured_per_message {
                found.push((
                    Err(format!(
                        "more than {} structured attachments in one message",
                        limits.max_structured_per_message
                    )),
                    Vec::new(),
                    index,
                ));
                break;
            }
            let keep = if content_type.eq_ignore_ascii_case("application/fhir+json") {
                data.to_vec()
            } else {
                Vec::new()
            };
            held = held.saturating_add(keep.len() as u64);
            if let Ok(indexed) = &r {
                let bytes: usize = indexed.documents.iter().map(|d| d.data.len()).sum();
                held = held.saturating_add(bytes as u64);
            }
            found.push((r.map_err(|e| e.to_string()), keep, index));
        }
    }
    if found.is_empty() {
        return Ok(Examination::default());
    }
    let subject = msg.subject().unwrap_or_default().to_string();
    let headers = MssHeaders::of(found.iter().filter_map(|(r, _, _)| r.as_ref().ok()));
    let received = ReceivedHeaders::read(msg);
    let mut remarks: Vec<String> = found
        .iter()
        .filter_map(|(r, _, _)| r.as_ref().ok())
        .flat_map(|i| i.tolerated.iter().map(|t| format!("tolerated: {t}")))
        .collect();
    remarks.extend(received.disagreements(&headers));
    let refused = |refusal: Refusal| Refused {
        refusal,
        headers: headers.clone(),
    };
    let mut filing = Filing::default();
    let mut filed_for = Vec::new();
    for p in patients {
        for (r, _, _) in &found {
            let indexed = r
                .as_ref()
                .map_err(|e| refused(Refusal::Unreadable(e.clone())))?;
            identity::check_indexed(&p.ins, indexed).map_err(|e| refused(Refusal::Identity(e)))?;
        }
        let mut count = 0;
        let mut withdrawn = 0;
        for (r, fhir_raw, index) in &found {
            let Ok(indexed) = r else { continue };
            let (documents, withdrawals) = documents_of(indexed, &subject, Some(*index));
            for mut d in documents {
                if d.source == DocumentSource::Fhir {
                    d.data = fhir_raw.clone();
                }
                if d.reference.is_none() {
                    d.hash_content();
                }
                filing.documents.push((p.account_id, d));
                count += 1;
            }
            for w in withdrawals {
                filing.withdrawals.push((p.account_id, w));
                withdrawn += 1;
            }
        }
        filing.outcomes.push(Outcome {
            recipient: p.address.clone(),
            kind: OutcomeKind::Indexed,
            detail: if withdrawn == 0 {
                format!("{count} document(s)")
            } else {
                format!("{count} document(s), {withdrawn} withdrawn")
            },
            headers: received.clone(),
            remarks: remarks.clone(),
        });
        filed_for.push(p.address.clone());
    }
    for address in professionals {
        let problems: Vec<&str> = found
            .iter()
            .filter_map(|(r, _, _)| r.as_ref().err().map(String::as_str))
            .collect();
        filing.outcomes.push(Outcome {
            recipient: address.clone(),
            kind: if problems.is_empty() {
                OutcomeKind::NotIndexed
            } else {
                OutcomeKind::Invalid
            },
            detail: if problems.is_empty() {
                format!(
                    "{} structured attachment(s), professional recipient",
                    found.len()
                )
            } else {
                problems.join("; ")
            },
            headers: received.clone(),
            remarks: remarks.clone(),
        });
    }
    Ok(Examination {
        filing: Some(filing),
        filed_for,
        headers,
    })
}

/// A package deposited through the professionals' API for `patient`: the same
/// indexing and identity rules as by mail.
pub fn deposit(zip: &[u8], patient: &PatientRecipient, limits: &Limits) -> Result<Filing, Refusal> {
    let indexed = match index_attachment(Some("IHE_XDM.ZIP"), "application/zip", zip, limits) {
        Some(Ok(i)) => i,
        Some(Err(e)) => return Err(Refusal::Unreadable(e.to_string())),
        None => return Err(Refusal::Unreadable("not an IHE XDM package".into())),
    };
    identity::check_indexed(&patient.ins, &indexed).map_err(Refusal::Identity)?;
    let (documents, withdrawals) = documents_of(&indexed, "", None);
    let documents: Vec<(i64, FiledDocument)> = documents
        .into_iter()
        .map(|d| (patient.account_id, d))
        .collect();
    let withdrawals: Vec<(i64, Withdrawal)> = withdrawals
        .into_iter()
        .map(|w| (patient.account_id, w))
        .collect();
    Ok(Filing {
        outcomes: vec![Outcome {
            recipient: patient.address.clone(),
            kind: OutcomeKind::Indexed,
            detail: format!(
                "{} document(s), {} withdrawn, deposited",
                documents.len(),
                withdrawals.len()
            ),
            headers: ReceivedHeaders::default(),
            remarks: indexed
                .tolerated
                .iter()
                .map(|t| format!("tolerated: {t}"))
                .collect(),
        }],
        documents,
        withdrawals,
    })
}

/// Why a patient's own document is refused (French, shown to the patient).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DocumentRefusal {
    /// Not a category a patient may use.
    #[error("Choisissez une catégorie dans la liste.")]
    Category,
    /// No title.
    #[error("Donnez un titre au document (200 caractères au plus).")]
    Title,
    /// Not a PDF, JPEG or PNG (checked by content).
    #[error("Le document doit être un fichier PDF, JPEG ou PNG.")]
    Type,
    /// Over the size limit.
    #[error("Le document dépasse la taille maximale de 5 Mo.")]
    TooLarge,
}

/// A document the patient adds, checked: category, title, type by content, size.
pub fn patient_document(
    category: &str,
    title: &str,
    file_name: &str,
    data: Vec<u8>,
) -> Result<FiledDocument, DocumentRefusal> {
    let category = super::category::PATIENT_CATEGORIES
        .iter()
        .find(|c| **c == category)
        .ok_or(DocumentRefusal::Category)?;
    let title = title.trim();
    if title.is_empty() || title.chars().count() > 200 {
        return Err(DocumentRefusal::Title);
    }
    if data.len() > PATIENT_DOCUMENT_MAX {
        return Err(DocumentRefusal::TooLarge);
    }
    use crate::threads::compose::{AttachmentKind, check_attachment};
    let kind = check_attachment(file_name, &data, PATIENT_DOCUMENT_MAX)
        .map_err(|_| DocumentRefusal::Type)?;
    if !matches!(
        kind,
        AttachmentKind::Pdf | AttachmentKind::Jpeg | AttachmentKind::Png
    ) {
        return Err(DocumentRefusal::Type);
    }
    let unique_id = format!("patient.{}", {
        use sha2::Digest;
        hex::encode(&sha2::Sha256::digest(&data)[..12])
    });
    Ok(FiledDocument {
        unique_id,
        data,
        ..FiledDocument::new(
            DocumentSource::Patient,
            category.to_string(),
            title.to_string(),
            kind.mime().to_string(),
        )
    })
}

/// An item the patient declares; None when the entry or text is unusable.
pub fn declared_item(category: &str, label: &str, value: &str) -> Option<FiledItem> {
    let entry = ProfileCategory::parse(category)?;
    let label = label.trim();
    let value = value.trim();
    if label.is_empty() || label.chars().count() > 200 || value.chars().count() > 200 {
        return None;
    }
    Some(FiledItem {
        item: ProfileItem {
            category: entry,
            label: label.to_string(),
            code: None,
            date: None,
            value: (!value.is_empty()).then(|| value.to_string()),
        },
        author: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::AccountKind;

    fn fhir_message(parts: usize) -> Vec<u8> {
        let bundle = r#"{"resourceType":"Bundle","type":"collection","entry":[]}"#;
        let mut m = String::from(
            "From: <a@b.test>\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b\"\r\n\r\n",
        );
        for i in 0..parts {
            m.push_str(&format!(
                "--b\r\nContent-Type: application/fhir+json\r\nContent-Disposition: attachment; filename=\"b{i}.json\"\r\n\r\n{bundle}\r\n"
            ));
        }
        m.push_str("--b--\r\n");
        m.into_bytes()
    }

    #[test]
    fn structured_attachments_per_message_are_bounded() {
        let limits = Limits {
            max_structured_per_message: 3,
            ..Limits::default()
        };
        let pros = vec!["pro@b.test".to_string()];
        let detail = |raw: &[u8], limits: &Limits| {
            let e = examine(raw, &[], &pros, limits).unwrap();
            e.filing.unwrap().outcomes[0].detail.clone()
        };
        assert!(!detail(&fhir_message(3), &limits).contains("more than"));
        assert!(
            detail(&fhir_message(5), &limits).contains("more than 3 structured attachments"),
            "{}",
            detail(&fhir_message(5), &limits)
        );
        // One budget of inflated bytes for the whole message.
        let tight = Limits {
            max_message_inflated: 100,
            ..Limits::default()
        };
        let d = detail(&fhir_message(3), &tight);
        assert!(d.contains("large"), "{d}");
    }

    #[test]
    fn only_the_author_or_its_establishment_replaces() {
        let jean = Depositor::new(
            "jean@a.test",
            Some(AccountKind::Professional),
            Some("FINESS 1"),
        );
        let dpi = Depositor::new(
            "dpi@a.test",
            Some(AccountKind::Application),
            Some("FINESS 1"),
        );
        let remote = Depositor::new("marie@b.test", None, None);
        assert!(jean.may_replace(Some("JEAN@a.test"), None));
        assert!(!remote.may_replace(Some("jean@a.test"), None));
        // A document deposited by the establishment's system: its professionals may replace it.
        assert!(jean.may_replace(Some("dpi@a.test"), Some("FINESS 1")));
        assert!(!remote.may_replace(Some("dpi@a.test"), Some("FINESS 1")));
        // The system may not replace a professional's own document.
        assert!(!dpi.may_replace(Some("jean@a.test"), None));
        assert!(!jean.may_replace(None, None));
        let bare = Depositor::new("org@a.test", Some(AccountKind::Organisation), None);
        assert_eq!(bare.establishment.as_deref(), Some("org@a.test"));
    }
}
