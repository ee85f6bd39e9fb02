//! Export of a whole patient space (issue 20): one zip holding the messages
//! as mbox (`messages/FOLDER.mbox`, `mbox.rs`), the dossier as an IHE XDM
//! package (`IHE_XDM/SUBSET01/`, `INDEX.HTM`, `xdm.rs`), the profil médical
//! and the agenda as a FHIR R4 Bundle (`fhir.rs`), the access history as
//! CSV (`csv.rs`) and `README.TXT` in French (also the XDM README).
//!
//! Streamed (`stream.rs`): messages are read one at a time from the store
//! and each piece is handed to the output at once, so memory does not grow
//! with the space. Deterministic: fixed entry times, entries in a stable
//! order, no clock read, and the exports themselves left out of the
//! history, so the same state gives the same bytes and [`state_tag`] (a
//! strong ETag) names them; HTTP ranges regenerate and skip. No sockets
//! here: `web/` and `cli/` call [`write`] and [`record`].

pub mod csv;
pub mod fhir;
pub mod mbox;
pub mod stream;
pub mod xdm;

use futures_util::StreamExt;
use sha1::Digest;
use tokio::io::AsyncWrite;

use crate::store::accounts::Account;
use crate::store::audit::AuditEntry;
use crate::store::export::{ArchivedDocument, EXPORT_ACTION};
use crate::store::{Store, StoreError};
pub use stream::Output;
use stream::{StreamError, ZipStream};

/// The file name offered for the archive.
pub const FILE_NAME: &str = "espace-sante.zip";

/// Name of the FHIR entry.
pub const FHIR_ENTRY: &str = "profil-et-agenda.fhir.json";

/// Name of the history entry.
pub const HISTORY_ENTRY: &str = "historique-des-acces.csv";

/// Why the export failed.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Writing the archive failed.
    #[error(transparent)]
    Stream(#[from] StreamError),
    /// The history could not be written as CSV.
    #[error("history CSV: {0}")]
    Csv(#[from] ::csv::Error),
    /// The FHIR bundle could not be serialised.
    #[error("FHIR bundle: {0}")]
    Json(#[from] serde_json::Error),
    /// No patient space has this INS.
    #[error("no open patient space has this INS")]
    Unknown,
}

/// Who exports (for the audit trail).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exporter {
    /// The patient, from the webmail or the app.
    Patient,
    /// The operator, `mes export`.
    Operator,
}

/// The open patient space of `ins` (the operator's command).
pub async fn patient_by_ins(store: &Store, ins: &str) -> Result<Account, ExportError> {
    store
        .account_by_ins(ins.trim())
        .await?
        .filter(|a| a.kind == crate::identity::AccountKind::Patient)
        .ok_or(ExportError::Unknown)
}

/// A strong ETag (quoted) for the archive of the space as it is now: a
/// SHA-256 of the state every part is made of (`Store::export_state`).
pub async fn state_tag(store: &Store, account: &Account) -> Result<String, StoreError> {
    let mut h = sha2::Sha256::new();
    h.update(b"mes-export-v1\n");
    h.update(account.address.as_bytes());
    for line in store.export_state(account.id, &account.address).await? {
        h.update(b"\n");
        h.update(line.as_bytes());
    }
    Ok(format!("\"{}\"", hex::encode(&h.finalize()[..20])))
}

/// Appends the audit entry of an export (one per download or range).
pub async fn record(store: &Store, account: &Account, by: Exporter) -> Result<(), StoreError> {
    let (actor, detail) = match by {
        Exporter::Patient => (account.address.as_str(), "patient"),
        Exporter::Operator => ("operator", "operator"),
    };
    crate::audit::append(
        store,
        &AuditEntry::new(actor, EXPORT_ACTION, &account.address, detail),
    )
    .await
}

/// A stable OID for the space (XDM submission set ids), under `2.25`.
fn space_oid(account: &Account) -> String {
    let h = sha2::Sha256::digest(format!("mes-space:{}", account.address).as_bytes());
    let mut b = [0u8; 16];
    b.copy_from_slice(&h[..16]);
    format!("2.25.{}", u128::from_be_bytes(b))
}

/// The README, in French: what each part is and how to open it.
fn readme(folders: &[String], documents: usize) -> String {
    let mut s = String::from(
        "ESPACE SANTÉ — EXPORT COMPLET\r\n\
         =============================\r\n\r\n\
         Cette archive contient tout votre espace santé, tel qu'il était au moment du téléchargement.\r\n\r\n\
         messages/\r\n  Vos messages, un fichier par dossier de votre messagerie, au format mbox\r\n  \
         (lisible par Thunderbird, Apple Mail et la plupart des logiciels de messagerie).\r\n  \
         Chaque message est conservé tel qu'il a été reçu ou envoyé.\r\n",
    );
    for f in folders {
        s.push_str(&format!("    {f}\r\n"));
    }
    s.push_str(&format!(
        "\r\nIHE_XDM/ et INDEX.HTM\r\n  Votre dossier médical ({documents} document(s)), au format IHE XDM utilisé par les\r\n  \
         professionnels de santé : les documents tels que reçus et leur description\r\n  \
         (IHE_XDM/SUBSET01/METADATA.XML). Ouvrez INDEX.HTM dans un navigateur pour les parcourir.\r\n  \
         Les versions remplacées et les documents retirés par leur auteur y figurent, signalés comme tels.\r\n\r\n\
         {FHIR_ENTRY}\r\n  Votre profil médical (maladies, traitements, allergies, vaccinations, mesures…)\r\n  \
         et votre agenda de rendez-vous, au format FHIR R4 (JSON), lisible par les logiciels de santé.\r\n\r\n\
         {HISTORY_ENTRY}\r\n  L'historique des accès à votre espace (date en temps universel, qui, quoi, sur quel\r\n  \
         document), au format CSV, lisible par un tableur. Les téléchargements de cette archive\r\n  \
         n'y figurent pas, pour qu'elle reste identique d'un téléchargement à l'autre ; ils restent\r\n  \
         visibles dans votre historique en ligne.\r\n\r\n\
         Ce support a été créé par MES {version} (messagerie sécurisée de santé), selon le profil IHE XDM.\r\n\
         Pour toute question, adressez-vous à l'opérateur de votre espace santé.\r\n",
        version = env!("CARGO_PKG_VERSION"),
    ));
    s
}

/// The bytes of a document: its blob, or read back from its message.
async fn document_bytes(
    store: &Store,
    d: &ArchivedDocument,
) -> Result<Option<Vec<u8>>, StoreError> {
    let Some(at) = d.reference.clone() else {
        return Ok(Some(store.blob(&d.blob_hash).await?));
    };
    let raw = match d.message_id {
        Some(m) => store.message_content(m).await?,
        None => store.blob(&d.blob_hash).await?,
    };
    let unique_id = d.unique_id.clone();
    Ok(tokio::task::spawn_blocking(move || {
        let limits = crate::dossier::limits::Limits::default();
        crate::dossier::filing::extract(&raw, &at.into(), &unique_id, &limits)
    })
    .await
    .ok()
    .flatten())
}

/// Writes the archive of `account`'s space into `out`; returns it for the
/// caller to finish (or to read the length of a counting output).
pub async fn write<W: AsyncWrite + Unpin>(
    store: &Store,
    account: &Account,
    out: Output<W>,
) -> Result<Output<W>, ExportError> {
    let folders = store.folders(account.id).await?;
    let documents = store.documents_for_export(account.id).await?;
    let mut zip = ZipStream::new(out);
    let names: Vec<String> = folders.iter().map(|f| mbox::path(&f.name)).collect();
    zip.entry("README.TXT", readme(&names, documents.len()).as_bytes())
        .await?;

    // The dossier: documents first (their size and hash go into METADATA.XML).
    let mut written = Vec::with_capacity(documents.len());
    for d in documents {
        let Some(bytes) = document_bytes(store, &d).await? else {
            tracing::warn!(
                document = d.id,
                "export: a document could not be read back, left out"
            );
            continue;
        };
        let file = xdm::file_name(written.len() + 1, &d);
        zip.entry(&format!("{}/{file}", xdm::SUBSET), &bytes)
            .await?;
        written.push(xdm::Written {
            size: bytes.len() as u64,
            sha1: hex::encode_upper(sha1::Sha1::digest(&bytes)),
            file,
            doc: d,
        });
    }
    let metadata = xdm::metadata(account.ins.as_deref(), &space_oid(account), &written);
    zip.entry(
        &format!("{}/METADATA.XML", xdm::SUBSET),
        metadata.as_bytes(),
    )
    .await?;
    zip.entry("INDEX.HTM", xdm::index(&written).as_bytes())
        .await?;
    drop(written);

    // The messages, one folder at a time, one message at a time.
    for (folder, name) in folders.iter().zip(&names) {
        zip.start(name, true).await?;
        let mut rows = store.stream_contents(folder.id);
        let mut piece = Vec::new();
        while let Some(row) = rows.next().await {
            let (_, raw) = row?;
            piece.clear();
            mbox::append(&raw, &mut piece);
            zip.write(&piece).await?;
        }
    }

    let profile = store.profile_of(account.id).await?;
    let agenda = store.all_appointments_of(account.id).await?;
    let bundle = fhir::bundle(account.id, account.ins.as_deref(), &profile, &agenda);
    zip.entry(FHIR_ENTRY, &serde_json::to_vec_pretty(&bundle)?)
        .await?;

    let history: Vec<_> = crate::access::history::history(store, account, None)
        .await?
        .into_iter()
        .filter(|l| !l.exported)
        .collect();
    zip.entry(HISTORY_ENTRY, &csv::write(&history)?).await?;
    Ok(zip.finish().await?)
}
