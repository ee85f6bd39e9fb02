//! IHE XDM packages (ITI-32): recognising them and reading them safely.
//!
//! A package is a zip from another operator, so it is treated as hostile:
//! the entry count is checked from the end-of-central-directory record before
//! the directory is parsed, declared sizes may only make us refuse (never
//! accept), and every entry is inflated through a reader bounded by the
//! per-entry, total and ratio limits so that a zip bomb is stopped after at most
//! `max_entry_size` bytes. Paths are validated before anything is looked up;
//! documents are located relative to METADATA.XML, case-insensitively, and
//! checked against the size and SHA-1 the metadata declares.

use std::collections::HashMap;
use std::io::{Cursor, Read};

use sha1::{Digest, Sha1};

use crate::dossier::limits::Limits;
use crate::dossier::metadata::{self, DocumentEntry, Metadata, MetadataError};

const LOCAL_HEADER_MAGIC: &[u8] = b"PK\x03\x04";
const EOCD_MAGIC: &[u8] = b"PK\x05\x06";
/// The zip64 end-of-central-directory locator, just before the EOCD.
const ZIP64_LOCATOR_MAGIC: &[u8] = b"PK\x06\x07";
/// The zip64 end-of-central-directory record.
const ZIP64_EOCD_MAGIC: &[u8] = b"PK\x06\x06";
/// Smallest central directory record (a file header with empty fields).
const CENTRAL_HEADER_MIN: u64 = 46;
/// The EOCD record is 22 bytes plus a comment of at most 65535 bytes.
const EOCD_SEARCH: usize = 22 + 65_535;

/// Why an XDM package was refused.
#[derive(Debug, thiserror::Error)]
pub enum XdmError {
    /// Not a zip file at all.
    #[error("the attachment is not a zip file")]
    NotZip,
    /// More entries than `max_entries`.
    #[error("the zip package lists too many entries ({0})")]
    TooManyEntries(usize),
    /// One entry inflates beyond `max_entry_size`.
    #[error("zip entry {0} is larger than allowed")]
    EntryTooLarge(String),
    /// All entries together inflate beyond `max_total_size`.
    #[error("the zip package is larger than allowed once inflated")]
    TotalTooLarge,
    /// An entry inflates more than `max_ratio` times its compressed size.
    #[error("zip entry {0} has a suspicious compression ratio (zip bomb)")]
    RatioTooHigh(String),
    /// An entry or document path is absolute, climbs with `..`, or uses backslashes.
    #[error("unsafe path in the zip package: {0:?}")]
    UnsafePath(String),
    /// An entry is a symbolic link.
    #[error("the zip package contains a symbolic link: {0:?}")]
    Link(String),
    /// Two entries share a name (compared case-insensitively).
    #[error("the zip package contains the name {0:?} twice")]
    Duplicate(String),
    /// No `IHE_XDM/<subset>/METADATA.XML`.
    #[error("the zip package has no IHE_XDM/<subset>/METADATA.XML")]
    NoMetadata,
    /// More than one submission set (not supported yet).
    #[error("the zip package holds several submission sets, which is not supported")]
    MultipleSubmissionSets,
    /// METADATA.XML was refused.
    #[error("invalid METADATA.XML: {0}")]
    Metadata(#[from] MetadataError),
    /// A document listed in the metadata is not in the zip.
    #[error("document {0:?} listed in METADATA.XML is missing from the package")]
    MissingDocument(String),
    /// A document's size differs from the metadata.
    #[error("document {uri:?} is {actual} bytes, METADATA.XML says {expected}")]
    SizeMismatch {
        /// Document URI.
        uri: String,
        /// Size declared in the metadata.
        expected: u64,
        /// Size found.
        actual: u64,
    },
    /// A document's SHA-1 differs from the metadata.
    #[error("document {uri:?} does not match the SHA-1 given in METADATA.XML")]
    HashMismatch {
        /// Document URI.
        uri: String,
    },
    /// The zip ends before its central directory (cut-off transfer).
    #[error("the zip package is truncated")]
    Truncated,
    /// Any other structural zip error (bad CRC, bad deflate stream, encryption…).
    #[error("the zip package is corrupt: {0}")]
    Corrupt(#[source] zip::result::ZipError),
}

/// A departure from the XDM layout that is accepted because it touches
/// neither integrity (sizes and hashes are still checked) nor identity:
/// everyday zip tools produce them. Each is recorded with the indexing
/// outcome, so the sender's habits stay visible.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Tolerance {
    /// A document URI matched its zip entry only when letter case is
    /// ignored (zip tools on Windows).
    UriCase {
        /// The URI given in METADATA.XML.
        uri: String,
        /// The zip entry it matched.
        entry: String,
    },
    /// METADATA.XML starts with a UTF-8 byte-order mark.
    MetadataBom,
    /// Entries that are no part of the package were ignored: macOS
    /// `__MACOSX/` and `._*` resource forks, `.DS_Store`, Windows
    /// `Thumbs.db` and `desktop.ini` (how many).
    JunkEntries(usize),
    /// The whole package sits in one top folder (`name/IHE_XDM/…`).
    TopFolder,
}

impl std::fmt::Display for Tolerance {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Tolerance::UriCase { uri, entry } => {
                write!(
                    f,
                    "document URI {uri:?} matched zip entry {entry:?} ignoring case"
                )
            }
            Tolerance::MetadataBom => f.write_str("byte-order mark at the start of METADATA.XML"),
            Tolerance::JunkEntries(n) => write!(
                f,
                "{n} junk zip entr{} ignored",
                if *n == 1 { "y" } else { "ies" }
            ),
            Tolerance::TopFolder => f.write_str("package wrapped in one top folder"),
        }
    }
}

/// The UTF-8 byte-order mark.
const BOM: &[u8] = b"\xEF\xBB\xBF";

/// Entries that archivers add and no XDM package means: anything under
/// `__MACOSX/`, AppleDouble `._*` files, `.DS_Store`, `Thumbs.db`,
/// `desktop.ini`. They are never read; their paths are still checked.
fn is_junk(name: &str) -> bool {
    let trimmed = name.trim_end_matches('/');
    let base = trimmed.rsplit('/').next().unwrap_or(trimmed);
    trimmed
        .split('/')
        .any(|s| s.eq_ignore_ascii_case("__MACOSX"))
        || base.starts_with("._")
        || [".DS_Store", "Thumbs.db", "desktop.ini"]
            .iter()
            .any(|j| base.eq_ignore_ascii_case(j))
}

/// A document of the package together with its metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackagedDocument {
    /// Its XDSDocumentEntry.
    pub entry: DocumentEntry,
    /// Path of the zip entry it was read from.
    pub path: String,
    /// Its bytes, size and hash verified.
    pub data: Vec<u8>,
}

/// A verified XDM package.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Package {
    /// Parsed METADATA.XML.
    pub metadata: Metadata,
    /// Documents, in metadata order.
    pub documents: Vec<PackagedDocument>,
    /// What was tolerated to read it.
    pub tolerated: Vec<Tolerance>,
}

/// True when `data` is a zip that is an XDM package: named like `IHE_XDM.zip`,
/// or holding `IHE_XDM/<subset>/METADATA.XML` (possibly under one top folder).
/// Only the central directory is looked at; nothing is inflated.
pub fn looks_like_xdm(filename: Option<&str>, data: &[u8]) -> bool {
    if !data.starts_with(LOCAL_HEADER_MAGIC) {
        return false;
    }
    if let Some(name) = filename {
        let base = name.rsplit(['/', '\\']).next().unwrap_or(name);
        if base.eq_ignore_ascii_case("IHE_XDM.zip") {
            return true;
        }
    }
    // The directory is checked before the zip crate reads it, so that forged
    // counts or offsets cannot make it reserve memory.
    if check_eocd(data, &Limits::default()).is_err() {
        return false;
    }
    match zip::ZipArchive::new(Cursor::new(data)) {
        Ok(archive) => archive.file_names().any(is_metadata_path),
        Err(_) => false,
    }
}

/// `IHE_XDM/<subset>/METADATA.XML`, or the same under one top folder
/// (the directproject sample), ignoring macOS resource forks.
fn is_metadata_path(name: &str) -> bool {
    let segs: Vec<&str> = name.split('/').collect();
    let tail = match segs.len() {
        3 => &segs[..],
        4 if !segs[0].eq_ignore_ascii_case("__MACOSX") => &segs[1..],
        _ => return false,
    };
    tail[0].eq_ignore_ascii_case("IHE_XDM")
        && !tail[1].is_empty()
        && tail[2].eq_ignore_ascii_case("METADATA.XML")
}

/// Reads and verifies an XDM package.
pub fn read_package(zip: &[u8], limits: &Limits) -> Result<Package, XdmError> {
    if !zip.starts_with(LOCAL_HEADER_MAGIC) {
        return Err(XdmError::NotZip);
    }
    check_eocd(zip, limits)?;
    let mut archive = zip::ZipArchive::new(Cursor::new(zip)).map_err(zip_error)?;
    if archive.len() > limits.max_entries {
        return Err(XdmError::TooManyEntries(archive.len()));
    }

    // Pass 1: names, kinds and declared sizes, without inflating anything.
    let mut by_name: HashMap<String, (String, usize)> = HashMap::new();
    let mut declared_total: u64 = 0;
    let mut metadata_paths = Vec::new();
    let mut junk = 0usize;
    for i in 0..archive.len() {
        let f = archive.by_index_raw(i).map_err(zip_error)?;
        let name = f.name().to_owned();
        check_path(&name)?;
        if f.unix_mode().is_some_and(|m| m & 0o170000 == 0o120000) {
            return Err(XdmError::Link(name));
        }
        if is_junk(&name) {
            // Never read, so neither named nor counted against the sizes.
            if !f.is_dir() {
                junk += 1;
            }
            continue;
        }
        if by_name
            .insert(name.to_lowercase(), (name.clone(), i))
            .is_some()
        {
            return Err(XdmError::Duplicate(name));
        }
        if f.is_dir() {
            continue;
        }
        let size = f.size();
        if size > limits.max_entry_size {
            return Err(XdmError::EntryTooLarge(name));
        }
        if size > limits.ratio_floor && size / f.compressed_size().max(1) > limits.max_ratio {
            return Err(XdmError::RatioTooHigh(name));
        }
        declared_total = declared_total.saturating_add(size);
        if declared_total > limits.max_total_size {
            return Err(XdmError::TotalTooLarge);
        }
        if is_metadata_path(&name) {
            metadata_paths.push(name);
        }
    }
    let meta_path = match metadata_paths.as_slice() {
        [] => return Err(XdmError::NoMetadata),
        [one] => one.clone(),
        _ => return Err(XdmError::MultipleSubmissionSets),
    };
    let folder = meta_path
        .rsplit_once('/')
        .map(|(f, _)| f.to_owned())
        .unwrap_or_default();
    let mut tolerated = Vec::new();
    if meta_path.split('/').count() == 4 {
        tolerated.push(Tolerance::TopFolder);
    }
    if junk > 0 {
        tolerated.push(Tolerance::JunkEntries(junk));
    }

    let mut budget = Budget {
        used: 0,
        limits: *limits,
    };
    let meta_index = by_name
        .get(&meta_path.to_lowercase())
        .map(|(_, i)| *i)
        .ok_or(XdmError::NoMetadata)?;
    let meta_bytes = budget.read(&mut archive, meta_index)?;
    let meta_xml = match meta_bytes.strip_prefix(BOM) {
        Some(rest) => {
            tolerated.push(Tolerance::MetadataBom);
            rest
        }
        None => &meta_bytes[..],
    };
    let metadata = metadata::parse_metadata(meta_xml, limits)?;

    let mut documents = Vec::with_capacity(metadata.entries.len());
    for entry in &metadata.entries {
        let (path, index) = locate(entry, &folder, &by_name)?;
        if let Some(uri) = &entry.uri
            && !path.ends_with(uri.as_str())
        {
            tolerated.push(Tolerance::UriCase {
                uri: uri.clone(),
                entry: path.clone(),
            });
        }
        let data = budget.read(&mut archive, index)?;
        let uri = entry.uri.clone().unwrap_or_else(|| path.clone());
        if let Some(expected) = entry.size
            && expected != data.len() as u64
        {
            return Err(XdmError::SizeMismatch {
                uri,
                expected,
                actual: data.len() as u64,
            });
        }
        if let Some(hash) = &entry.hash {
            let actual = hex::encode(Sha1::digest(&data));
            if !actual.eq_ignore_ascii_case(hash.trim()) {
                return Err(XdmError::HashMismatch { uri });
            }
        }
        documents.push(PackagedDocument {
            entry: entry.clone(),
            path,
            data,
        });
    }
    Ok(Package {
        metadata,
        documents,
        tolerated,
    })
}

/// Finds the zip entry of a document: its URI relative to the metadata folder,
/// case-insensitively; without a URI (directproject sample), the single file of
/// the folder whose stem is the entry id.
fn locate(
    entry: &DocumentEntry,
    folder: &str,
    by_name: &HashMap<String, (String, usize)>,
) -> Result<(String, usize), XdmError> {
    let join = |rel: &str| {
        if folder.is_empty() {
            rel.to_owned()
        } else {
            format!("{folder}/{rel}")
        }
    };
    if let Some(uri) = &entry.uri {
        check_path(uri)?;
        let path = join(uri);
        return by_name
            .get(&path.to_lowercase())
            .map(|(orig, i)| (orig.clone(), *i))
            .ok_or_else(|| XdmError::MissingDocument(uri.clone()));
    }
    let prefix = join(&entry.id).to_lowercase() + ".";
    let mut found = by_name
        .iter()
        .filter(|(n, _)| n.starts_with(&prefix) && !n[prefix.len()..].contains('/'));
    match (found.next(), found.next()) {
        (Some((_, (orig, i))), None) => Ok((orig.clone(), *i)),
        _ => Err(XdmError::MissingDocument(entry.id.clone())),
    }
}

/// Refuses absolute paths, drive letters, `..`, `.`, empty segments,
/// backslashes and control characters.
fn check_path(name: &str) -> Result<(), XdmError> {
    let bad = name.is_empty()
        || name.starts_with('/')
        || name.contains('\\')
        || name.contains(':')
        || name.chars().any(char::is_control)
        || name
            .trim_end_matches('/')
            .split('/')
            .any(|s| s.is_empty() || s == "." || s == "..");
    if bad {
        Err(XdmError::UnsafePath(name.to_owned()))
    } else {
        Ok(())
    }
}

/// Checks the end-of-central-directory record before the directory is parsed:
/// its absence means a cut-off file, and its entry count is refused early.
fn check_eocd(zip: &[u8], limits: &Limits) -> Result<(), XdmError> {
    let le16 = |b: &[u8], at: usize| u64::from(u16::from_le_bytes([b[at], b[at + 1]]));
    let le32 = |b: &[u8], at: usize| {
        u64::from(u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]]))
    };
    let le64 = |b: &[u8], at: usize| {
        let mut x = [0u8; 8];
        x.copy_from_slice(&b[at..at + 8]);
        u64::from_le_bytes(x)
    };
    let start = zip.len().saturating_sub(EOCD_SEARCH);
    let tail = &zip[start..];
    let pos = tail
        .windows(EOCD_MAGIC.len())
        .rposition(|w| w == EOCD_MAGIC)
        .ok_or(XdmError::Truncated)?;
    let eocd_at = start + pos;
    let rec = &tail[pos..];
    if rec.len() < 22 {
        return Err(XdmError::Truncated);
    }
    let (mut total, mut cd_size, mut cd_offset) = (le16(rec, 10), le32(rec, 12), le32(rec, 16));
    // Counts, size or offset at their maximum live in the zip64 record, found
    // through the locator right before this record: read and check them too.
    if total == u64::from(u16::MAX)
        || cd_size == u64::from(u32::MAX)
        || cd_offset == u64::from(u32::MAX)
    {
        let locator_at = eocd_at.checked_sub(20).ok_or(XdmError::Truncated)?;
        let locator = &zip[locator_at..eocd_at];
        if &locator[..4] != ZIP64_LOCATOR_MAGIC {
            return Err(XdmError::Truncated);
        }
        let record_at = usize::try_from(le64(locator, 8)).map_err(|_| XdmError::Truncated)?;
        let record = zip
            .get(record_at..record_at.checked_add(56).ok_or(XdmError::Truncated)?)
            .ok_or(XdmError::Truncated)?;
        if record_at >= locator_at || &record[..4] != ZIP64_EOCD_MAGIC {
            return Err(XdmError::Truncated);
        }
        total = le64(record, 32);
        cd_size = le64(record, 40);
        cd_offset = le64(record, 48);
    }
    if total > limits.max_entries as u64 {
        return Err(XdmError::TooManyEntries(
            usize::try_from(total).unwrap_or(usize::MAX),
        ));
    }
    // The directory lies inside the file, and holds at least as many bytes
    // as its entries need.
    let end = cd_offset.checked_add(cd_size).ok_or(XdmError::Truncated)?;
    if end > zip.len() as u64 || cd_size < total.saturating_mul(CENTRAL_HEADER_MIN) {
        return Err(XdmError::Truncated);
    }
    Ok(())
}

/// Inflated bytes used so far, against the limits.
struct Budget {
    used: u64,
    limits: Limits,
}

impl Budget {
    /// Inflates one entry through a reader that stops one byte past the smallest
    /// applicable bound, whatever sizes the headers declare.
    fn read(
        &mut self,
        archive: &mut zip::ZipArchive<Cursor<&[u8]>>,
        index: usize,
    ) -> Result<Vec<u8>, XdmError> {
        let mut f = archive.by_index(index).map_err(zip_error)?;
        let name = f.name().to_owned();
        let entry_cap = self.limits.max_entry_size;
        let total_cap = self.limits.max_total_size.saturating_sub(self.used);
        let ratio_cap = f
            .compressed_size()
            .saturating_mul(self.limits.max_ratio)
            .max(self.limits.ratio_floor);
        let cap = entry_cap.min(total_cap).min(ratio_cap);
        let initial = usize::try_from(f.size().min(cap)).unwrap_or(0);
        let mut buf = Vec::with_capacity(initial);
        (&mut f)
            .take(cap.saturating_add(1))
            .read_to_end(&mut buf)
            .map_err(io_error)?;
        let got = buf.len() as u64;
        if got > cap {
            return Err(if got > entry_cap {
                XdmError::EntryTooLarge(name)
            } else if got > total_cap {
                XdmError::TotalTooLarge
            } else {
                XdmError::RatioTooHigh(name)
            });
        }
        self.used += got;
        Ok(buf)
    }
}

fn zip_error(e: zip::result::ZipError) -> XdmError {
    match e {
        zip::result::ZipError::Io(io) => io_error(io),
        other => XdmError::Corrupt(other),
    }
}

fn io_error(e: std::io::Error) -> XdmError {
    if e.kind() == std::io::ErrorKind::UnexpectedEof {
        XdmError::Truncated
    } else {
        XdmError::Corrupt(zip::result::ZipError::Io(e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use zip::write::SimpleFileOptions;

    fn corpus(rel: &str) -> Vec<u8> {
        let p = format!("{}/tests/fixtures/corpus/{rel}", env!("CARGO_MANIFEST_DIR"));
        std::fs::read(&p).unwrap_or_else(|e| panic!("{p}: {e}"))
    }

    const ANS: [&str; 4] = [
        "VSM_1.4_2022.01",
        "LDL-SES_2022.01",
        "BIO-CR-BIO_2024.01_TSH_1",
        "DOC_NON_STRUCTURE_CDA-R2-N1",
    ];

    fn ans(name: &str) -> Vec<u8> {
        corpus(&format!("xdm/ans-interop-exemples-xdm/{name}/IHE_XDM.ZIP"))
    }

    fn deflated() -> SimpleFileOptions {
        SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated)
    }

    /// A minimal valid package: METADATA.XML listing one document.
    fn metadata_for(doc: &[u8], uri: &str, hash: Option<&str>, size: Option<u64>) -> String {
        let hash = hash.map_or_else(|| hex::encode(Sha1::digest(doc)), str::to_owned);
        let size = size.unwrap_or(doc.len() as u64);
        format!(
            r#"<SubmitObjectsRequest><RegistryObjectList>
<RegistryPackage id="ss"/>
<ExtrinsicObject id="d1" mimeType="text/plain">
<Slot name="hash"><ValueList><Value>{hash}</Value></ValueList></Slot>
<Slot name="size"><ValueList><Value>{size}</Value></ValueList></Slot>
<Slot name="URI"><ValueList><Value>{uri}</Value></ValueList></Slot>
<ExternalIdentifier identificationScheme="urn:uuid:2e82c1f6-a085-4c72-9da3-8640a32e42ab" value="1.2.3"/>
</ExtrinsicObject>
</RegistryObjectList></SubmitObjectsRequest>"#
        )
    }

    fn build(files: &[(&str, &[u8])]) -> Vec<u8> {
        let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
        for (name, data) in files {
            w.start_file(*name, deflated()).unwrap();
            w.write_all(data).unwrap();
        }
        w.finish().unwrap().into_inner()
    }

    fn good_package() -> Vec<u8> {
        let doc = b"hello world";
        let meta = metadata_for(doc, "DOC0001.TXT", None, None);
        build(&[
            ("IHE_XDM/SUBSET01/METADATA.XML", meta.as_bytes()),
            ("IHE_XDM/SUBSET01/DOC0001.TXT", doc),
        ])
    }

    #[test]
    fn ans_packages_parse_and_verify() {
        for name in ANS {
            let zip = ans(name);
            assert!(looks_like_xdm(Some("IHE_XDM.ZIP"), &zip), "{name}");
            assert!(looks_like_xdm(None, &zip), "{name}");
            let p =
                read_package(&zip, &Limits::default()).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(p.documents.len(), 1, "{name}");
            let d = &p.documents[0];
            assert_eq!(d.path, "IHE_XDM/SUBSET01/DOC0001.XML");
            assert_eq!(Some(d.data.len() as u64), d.entry.size);
            assert!(d.data.starts_with(b"<?xml"), "{name}");
            let pid = d.entry.patient_id.as_ref().unwrap();
            assert_eq!(pid.id, "279035121518989");
            assert_eq!(pid.oid, "1.2.250.1.213.1.4.10");
        }
    }

    #[test]
    fn directproject_sample_wrapped_without_uri_or_size() {
        let zip = corpus("xdm/directproject-xd-common/samplexdm.zip");
        assert!(looks_like_xdm(Some("samplexdm.zip"), &zip));
        let p = read_package(&zip, &Limits::default()).unwrap();
        assert_eq!(p.documents.len(), 1);
        let d = &p.documents[0];
        assert_eq!(d.path, "samplexdm/IHE_XDM/SUBSET01/Document01.xml");
        assert_eq!(d.entry.uri, None);
        assert_eq!(d.entry.size, None);
        assert_eq!(d.data.len(), 68226);
        assert_eq!(d.entry.type_code.as_ref().unwrap().code, "34133-9");
        assert_eq!(
            d.entry.authors[0].person.as_deref(),
            Some("Provider Allscripts")
        );
        let ss = &p.metadata.submission_set;
        assert_eq!(
            ss.unique_id.as_deref(),
            Some("1.3.6.1.4.1.21367.2005.3.9999.33")
        );
        assert_eq!(ss.authors[0].person.as_deref(), Some("Sherry Dopplemeyer"));
        assert_eq!(p.metadata.associations[0].kind, "HasMember");
    }

    #[test]
    fn nist_minimal_case_insensitive_uri_and_macosx() {
        let zip = corpus("xdm/nist-iheos-toolkit2/xdm_minimal.zip");
        assert!(looks_like_xdm(None, &zip));
        let p = read_package(&zip, &Limits::default()).unwrap();
        let d = &p.documents[0];
        assert_eq!(d.entry.uri.as_deref(), Some("DOC.TXT"));
        assert_eq!(d.path, "IHE_XDM/SUBSET/doc.txt");
        assert_eq!(d.data, b"My Document");
        assert_eq!(d.entry.mime_type.as_deref(), Some("text/plain"));
        assert!(p.tolerated.contains(&Tolerance::UriCase {
            uri: "DOC.TXT".into(),
            entry: "IHE_XDM/SUBSET/doc.txt".into()
        }));
    }

    /// What everyday zip tools do to a package is accepted and recorded;
    /// the checks that matter still apply to what is read.
    #[test]
    fn tolerated_layouts_are_recorded() {
        let doc = b"hello world";
        let meta = metadata_for(doc, "DOC0001.TXT", None, None);
        let mut bom = BOM.to_vec();
        bom.extend_from_slice(meta.as_bytes());
        let zip = build(&[
            ("IHE_XDM/SUBSET01/METADATA.XML", &bom),
            ("IHE_XDM/SUBSET01/DOC0001.TXT", doc),
        ]);
        let p = read_package(&zip, &Limits::default()).unwrap();
        assert_eq!(p.tolerated, [Tolerance::MetadataBom]);

        let zip = build(&[
            ("IHE_XDM/SUBSET01/METADATA.XML", meta.as_bytes()),
            ("IHE_XDM/SUBSET01/doc0001.txt", doc),
            ("__MACOSX/IHE_XDM/SUBSET01/._METADATA.XML", b"junk"),
            ("__MACOSX/IHE_XDM/SUBSET01/METADATA.XML", b"<not-metadata/>"),
            ("IHE_XDM/SUBSET01/.DS_Store", b"junk"),
            ("IHE_XDM/Thumbs.db", b"junk"),
            // A junk name twice is no duplicate: it is never read.
            ("IHE_XDM/thumbs.db", b"junk"),
        ]);
        let p = read_package(&zip, &Limits::default()).unwrap();
        assert_eq!(
            p.tolerated,
            [
                Tolerance::JunkEntries(5),
                Tolerance::UriCase {
                    uri: "DOC0001.TXT".into(),
                    entry: "IHE_XDM/SUBSET01/doc0001.txt".into()
                }
            ]
        );
        assert_eq!(p.documents[0].data, doc);

        let zip = build(&[
            ("envoi/IHE_XDM/SUBSET01/METADATA.XML", meta.as_bytes()),
            ("envoi/IHE_XDM/SUBSET01/DOC0001.TXT", doc),
            ("envoi/README.TXT", b"x"),
        ]);
        let p = read_package(&zip, &Limits::default()).unwrap();
        assert_eq!(p.tolerated, [Tolerance::TopFolder]);
        assert!(
            read_package(&good_package(), &Limits::default())
                .unwrap()
                .tolerated
                .is_empty()
        );
    }

    /// Junk is skipped, never trusted: its paths are still checked, and a
    /// wrong hash or size in a tolerated package is still refused.
    #[test]
    fn tolerance_stops_where_integrity_starts() {
        let doc = b"hello world";
        let zip = build(&[
            (
                "IHE_XDM/SUBSET01/METADATA.XML",
                metadata_for(doc, "DOC0001.TXT", None, None).as_bytes(),
            ),
            ("IHE_XDM/SUBSET01/DOC0001.TXT", doc),
            ("__MACOSX/../../evil", b"x"),
        ]);
        assert!(matches!(
            read_package(&zip, &Limits::default()),
            Err(XdmError::UnsafePath(_))
        ));
        let mut bom = BOM.to_vec();
        bom.extend_from_slice(metadata_for(doc, "doc0001.txt", Some("00"), None).as_bytes());
        let zip = build(&[
            ("top/IHE_XDM/SUBSET01/METADATA.XML", &bom),
            ("top/IHE_XDM/SUBSET01/DOC0001.TXT", doc),
        ]);
        assert!(matches!(
            read_package(&zip, &Limits::default()),
            Err(XdmError::HashMismatch { .. })
        ));
        let zip = build(&[
            (
                "top/IHE_XDM/SUBSET01/METADATA.XML",
                metadata_for(doc, "doc0001.txt", None, Some(3)).as_bytes(),
            ),
            ("top/IHE_XDM/SUBSET01/DOC0001.TXT", doc),
        ]);
        assert!(matches!(
            read_package(&zip, &Limits::default()),
            Err(XdmError::SizeMismatch { .. })
        ));
    }

    #[test]
    fn forged_directories_are_refused_before_the_zip_crate() {
        let mut zip = build(&[("IHE_XDM/SUBSET01/METADATA.XML", b"<x/>")]);
        assert!(check_eocd(&zip, &Limits::default()).is_ok());
        let eocd = zip.len() - 22;
        // A directory offset past the end of the file.
        let mut bad = zip.clone();
        bad[eocd + 16..eocd + 20].copy_from_slice(&0x7fff_fff0u32.to_le_bytes());
        assert!(matches!(
            check_eocd(&bad, &Limits::default()),
            Err(XdmError::Truncated)
        ));
        assert!(!looks_like_xdm(None, &bad));
        // A zip64 marker without a zip64 record, and one claiming 2^60 entries.
        let mut bad = zip.clone();
        bad[eocd + 10..eocd + 12].copy_from_slice(&u16::MAX.to_le_bytes());
        assert!(check_eocd(&bad, &Limits::default()).is_err());
        let mut record = Vec::new();
        record.extend_from_slice(ZIP64_EOCD_MAGIC);
        record.extend_from_slice(&44u64.to_le_bytes());
        record.extend_from_slice(&[0u8; 12]);
        record.extend_from_slice(&(1u64 << 60).to_le_bytes());
        record.extend_from_slice(&(1u64 << 60).to_le_bytes());
        record.extend_from_slice(&0u64.to_le_bytes());
        record.extend_from_slice(&0u64.to_le_bytes());
        let record_at = eocd as u64;
        let mut locator = Vec::new();
        locator.extend_from_slice(ZIP64_LOCATOR_MAGIC);
        locator.extend_from_slice(&0u32.to_le_bytes());
        locator.extend_from_slice(&record_at.to_le_bytes());
        locator.extend_from_slice(&1u32.to_le_bytes());
        let mut tail = zip.split_off(eocd);
        tail[10..12].copy_from_slice(&u16::MAX.to_le_bytes());
        zip.extend_from_slice(&record);
        zip.extend_from_slice(&locator);
        zip.extend_from_slice(&tail);
        assert!(matches!(
            check_eocd(&zip, &Limits::default()),
            Err(XdmError::TooManyEntries(_))
        ));
        assert!(!looks_like_xdm(None, &zip));
    }

    #[test]
    fn looks_like_xdm_negative() {
        assert!(!looks_like_xdm(Some("IHE_XDM.zip"), b"not a zip"));
        let other = build(&[("report.pdf", b"%PDF")]);
        assert!(!looks_like_xdm(Some("archive.zip"), &other));
        assert!(looks_like_xdm(Some("dir/ihe_xdm.ZIP"), &other));
        assert!(is_metadata_path("IHE_XDM/SUBSET01/METADATA.XML"));
        assert!(is_metadata_path("wrap/ihe_xdm/s/metadata.xml"));
        assert!(!is_metadata_path("__MACOSX/IHE_XDM/SUBSET/METADATA.xml"));
        assert!(!is_metadata_path("IHE_XDM/METADATA.XML"));
    }

    #[test]
    fn synthetic_package_is_accepted() {
        let p = read_package(&good_package(), &Limits::default()).unwrap();
        assert_eq!(p.documents[0].data, b"hello world");
    }

    #[test]
    fn not_zip() {
        assert!(matches!(
            read_package(b"hello", &Limits::default()),
            Err(XdmError::NotZip)
        ));
    }

    #[test]
    fn dot_dot_path_is_refused() {
        let zip = build(&[("IHE_XDM/SUBSET01/../../evil", b"x")]);
        assert!(matches!(
            read_package(&zip, &Limits::default()),
            Err(XdmError::UnsafePath(p)) if p.contains("..")
        ));
        // A URI in the metadata that climbs out is refused the same way.
        let meta = metadata_for(b"x", "../../evil", None, None);
        let zip = build(&[
            ("IHE_XDM/SUBSET01/METADATA.XML", meta.as_bytes()),
            ("evil", b"x"),
        ]);
        assert!(matches!(
            read_package(&zip, &Limits::default()),
            Err(XdmError::UnsafePath(_))
        ));
    }

    #[test]
    fn absolute_and_backslash_paths_are_refused() {
        for name in ["/etc/passwd", "C:/x", "IHE_XDM\\..\\evil", "a//b"] {
            let zip = build(&[(name, b"x")]);
            assert!(
                matches!(
                    read_package(&zip, &Limits::default()),
                    Err(XdmError::UnsafePath(_))
                ),
                "{name}"
            );
        }
    }

    #[test]
    fn symlink_is_refused() {
        let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
        w.add_symlink(
            "IHE_XDM/SUBSET01/DOC0001.TXT",
            "/etc/passwd",
            SimpleFileOptions::default(),
        )
        .unwrap();
        let zip = w.finish().unwrap().into_inner();
        assert!(matches!(
            read_package(&zip, &Limits::default()),
            Err(XdmError::Link(_))
        ));
    }

    #[test]
    fn duplicate_names_are_refused() {
        let zip = build(&[("IHE_XDM/S/DOC.TXT", b"a"), ("IHE_XDM/S/doc.txt", b"b")]);
        assert!(matches!(
            read_package(&zip, &Limits::default()),
            Err(XdmError::Duplicate(_))
        ));
    }

    /// Builds a one-entry zip holding `mib` MiB of zeros, deflated, without ever
    /// holding the zeros in memory: 1 MiB is deflated once with a full flush
    /// (byte-aligned, independent blocks) and that chunk is repeated.
    fn zeros_zip(name: &str, mib: u32) -> Vec<u8> {
        use flate2::{Compress, Compression, FlushCompress};
        let mut c = Compress::new(Compression::best(), false);
        let mut chunk = Vec::with_capacity(4096);
        c.compress_vec(&vec![0u8; 1024 * 1024], &mut chunk, FlushCompress::Full)
            .unwrap();
        let mut data = Vec::with_capacity(chunk.len() * mib as usize + 2);
        for _ in 0..mib {
            data.extend_from_slice(&chunk);
        }
        data.extend_from_slice(&[0x03, 0x00]); // final empty fixed-Huffman block
        let size = mib * 1024 * 1024;
        let crc = {
            let mut h = crc32fast_like::Crc::new();
            h.zeros(u64::from(size));
            h.finish()
        };
        raw_zip(name, &data, size, crc)
    }

    /// CRC-32 of a run of zeros, computed bytewise (no dependency needed).
    mod crc32fast_like {
        pub(super) struct Crc(u32);
        impl Crc {
            pub(super) fn new() -> Self {
                Crc(0xFFFF_FFFF)
            }
            pub(super) fn zeros(&mut self, n: u64) {
                // Only 1 MiB is hashed for real; the test bombs do not need a
                // correct CRC because they must be refused before the end.
                for _ in 0..n.min(1024 * 1024) {
                    let mut c = self.0 & 0xFF;
                    for _ in 0..8 {
                        c = if c & 1 == 1 {
                            0xEDB8_8320 ^ (c >> 1)
                        } else {
                            c >> 1
                        };
                    }
                    self.0 = c ^ (self.0 >> 8);
                }
            }
            pub(super) fn finish(&self) -> u32 {
                !self.0
            }
        }
    }

    /// A minimal one-entry zip (local header, data, central directory, EOCD).
    fn raw_zip(name: &str, data: &[u8], size: u32, crc: u32) -> Vec<u8> {
        let n = name.as_bytes();
        let csize = u32::try_from(data.len()).unwrap();
        let nlen = u16::try_from(n.len()).unwrap();
        let mut z = Vec::new();
        z.extend_from_slice(b"PK\x03\x04");
        z.extend_from_slice(&20u16.to_le_bytes()); // version needed
        z.extend_from_slice(&0u16.to_le_bytes()); // flags
        z.extend_from_slice(&8u16.to_le_bytes()); // deflate
        z.extend_from_slice(&[0, 0, 0x21, 0]); // time, date
        z.extend_from_slice(&crc.to_le_bytes());
        z.extend_from_slice(&csize.to_le_bytes());
        z.extend_from_slice(&size.to_le_bytes());
        z.extend_from_slice(&nlen.to_le_bytes());
        z.extend_from_slice(&0u16.to_le_bytes());
        z.extend_from_slice(n);
        z.extend_from_slice(data);
        let cd_offset = u32::try_from(z.len()).unwrap();
        z.extend_from_slice(b"PK\x01\x02");
        z.extend_from_slice(&20u16.to_le_bytes()); // made by
        z.extend_from_slice(&20u16.to_le_bytes()); // needed
        z.extend_from_slice(&0u16.to_le_bytes());
        z.extend_from_slice(&8u16.to_le_bytes());
        z.extend_from_slice(&[0, 0, 0x21, 0]);
        z.extend_from_slice(&crc.to_le_bytes());
        z.extend_from_slice(&csize.to_le_bytes());
        z.extend_from_slice(&size.to_le_bytes());
        z.extend_from_slice(&nlen.to_le_bytes());
        z.extend_from_slice(&[0; 8]); // extra, comment, disk, int attr
        z.extend_from_slice(&0u32.to_le_bytes()); // ext attr
        z.extend_from_slice(&0u32.to_le_bytes()); // local header offset
        z.extend_from_slice(n);
        let cd_size = u32::try_from(z.len()).unwrap() - cd_offset;
        z.extend_from_slice(b"PK\x05\x06");
        z.extend_from_slice(&[0; 4]);
        z.extend_from_slice(&1u16.to_le_bytes());
        z.extend_from_slice(&1u16.to_le_bytes());
        z.extend_from_slice(&cd_size.to_le_bytes());
        z.extend_from_slice(&cd_offset.to_le_bytes());
        z.extend_from_slice(&0u16.to_le_bytes());
        z
    }

    #[test]
    fn raw_zip_builder_is_sound() {
        // A small honest one (4 MiB, below the ratio floor x limits) reads back as zeros.
        let zip = zeros_zip("IHE_XDM/SUBSET01/DOC.TXT", 1);
        let mut a = zip::ZipArchive::new(Cursor::new(&zip[..])).unwrap();
        let mut f = a.by_index(0).unwrap();
        let mut out = Vec::new();
        f.read_to_end(&mut out).unwrap();
        assert_eq!(out.len(), 1024 * 1024);
        assert!(out.iter().all(|b| *b == 0));
    }

    #[test]
    fn zip_bomb_is_refused_from_declared_size() {
        let zip = zeros_zip("IHE_XDM/SUBSET01/METADATA.XML", 200);
        assert!(zip.len() < 300 * 1024, "bomb is {} bytes", zip.len());
        assert!(matches!(
            read_package(&zip, &Limits::default()),
            Err(XdmError::EntryTooLarge(_))
        ));
    }

    /// Overwrites the declared uncompressed size of every entry (local and central).
    fn lie_about_sizes(zip: &mut [u8], size: u32) {
        let mut i = 0;
        while i + 30 <= zip.len() {
            if &zip[i..i + 4] == b"PK\x03\x04" {
                zip[i + 22..i + 26].copy_from_slice(&size.to_le_bytes());
                i += 30;
            } else if &zip[i..i + 4] == b"PK\x01\x02" {
                zip[i + 24..i + 28].copy_from_slice(&size.to_le_bytes());
                i += 46;
            } else {
                i += 1;
            }
        }
    }

    #[test]
    fn lying_bomb_is_stopped_while_inflating() {
        // 200 MiB of zeros claiming to be 100 bytes: the bounded reader must stop
        // it at the ratio bound, long before 200 MiB are inflated.
        let mut zip = zeros_zip("IHE_XDM/SUBSET01/METADATA.XML", 200);
        lie_about_sizes(&mut zip, 100);
        let r = read_package(&zip, &Limits::default());
        assert!(matches!(r, Err(XdmError::RatioTooHigh(_))), "{r:?}");
    }

    #[test]
    fn high_ratio_is_refused() {
        // 5 MiB of zeros: within the size limits, but a ratio near 1000.
        let zip = zeros_zip("IHE_XDM/SUBSET01/DOC.TXT", 5);
        assert!(matches!(
            read_package(&zip, &Limits::default()),
            Err(XdmError::RatioTooHigh(_))
        ));
    }

    #[test]
    fn total_size_is_enforced() {
        let l = Limits {
            max_total_size: 10,
            ..Limits::default()
        };
        assert!(matches!(
            read_package(&good_package(), &l),
            Err(XdmError::TotalTooLarge)
        ));
    }

    #[test]
    fn too_many_entries() {
        let names: Vec<String> = (0..1001).map(|i| format!("f{i}")).collect();
        let files: Vec<(&str, &[u8])> = names.iter().map(|n| (n.as_str(), &b""[..])).collect();
        let zip = build(&files);
        assert!(matches!(
            read_package(&zip, &Limits::default()),
            Err(XdmError::TooManyEntries(1001))
        ));
    }

    #[test]
    fn wrong_sha1_is_refused() {
        let doc = b"hello world";
        let meta = metadata_for(doc, "DOC0001.TXT", Some(&"0".repeat(40)), None);
        let zip = build(&[
            ("IHE_XDM/SUBSET01/METADATA.XML", meta.as_bytes()),
            ("IHE_XDM/SUBSET01/DOC0001.TXT", doc),
        ]);
        assert!(matches!(
            read_package(&zip, &Limits::default()),
            Err(XdmError::HashMismatch { uri }) if uri == "DOC0001.TXT"
        ));
    }

    #[test]
    fn upper_case_sha1_is_accepted() {
        let doc = b"hello world";
        let upper = hex::encode_upper(Sha1::digest(doc));
        let meta = metadata_for(doc, "doc0001.txt", Some(&upper), None);
        let zip = build(&[
            ("IHE_XDM/SUBSET01/METADATA.XML", meta.as_bytes()),
            ("IHE_XDM/SUBSET01/DOC0001.TXT", doc),
        ]);
        assert!(read_package(&zip, &Limits::default()).is_ok());
    }

    #[test]
    fn wrong_size_is_refused() {
        let doc = b"hello world";
        let meta = metadata_for(doc, "DOC0001.TXT", None, Some(12));
        let zip = build(&[
            ("IHE_XDM/SUBSET01/METADATA.XML", meta.as_bytes()),
            ("IHE_XDM/SUBSET01/DOC0001.TXT", doc),
        ]);
        assert!(matches!(
            read_package(&zip, &Limits::default()),
            Err(XdmError::SizeMismatch {
                expected: 12,
                actual: 11,
                ..
            })
        ));
    }

    #[test]
    fn missing_document_and_metadata() {
        let meta = metadata_for(b"x", "DOC0002.TXT", None, None);
        let zip = build(&[("IHE_XDM/SUBSET01/METADATA.XML", meta.as_bytes())]);
        assert!(matches!(
            read_package(&zip, &Limits::default()),
            Err(XdmError::MissingDocument(u)) if u == "DOC0002.TXT"
        ));
        let zip = build(&[("README.TXT", b"x")]);
        assert!(matches!(
            read_package(&zip, &Limits::default()),
            Err(XdmError::NoMetadata)
        ));
    }

    #[test]
    fn truncated_zip() {
        let zip = ans("VSM_1.4_2022.01");
        let cut = &zip[..zip.len() / 2];
        assert!(matches!(
            read_package(cut, &Limits::default()),
            Err(XdmError::Truncated)
        ));
    }

    #[test]
    fn corrupt_entry_data() {
        let mut zip = good_package();
        // Flip bytes inside the first entry's compressed data (after its local header).
        let name_len = usize::from(u16::from_le_bytes([zip[26], zip[27]]));
        let start = 30 + name_len;
        for b in &mut zip[start..start + 8] {
            *b ^= 0xA5;
        }
        let r = read_package(&zip, &Limits::default());
        assert!(matches!(r, Err(XdmError::Corrupt(_))), "{r:?}");
    }

    #[test]
    fn metadata_doctype_is_refused_inside_package() {
        let meta =
            br#"<!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><SubmitObjectsRequest/>"#;
        let zip = build(&[("IHE_XDM/SUBSET01/METADATA.XML", meta)]);
        assert!(matches!(
            read_package(&zip, &Limits::default()),
            Err(XdmError::Metadata(MetadataError::Doctype))
        ));
    }
}
