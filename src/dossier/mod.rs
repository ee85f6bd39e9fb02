//! The dossier médical: structured attachments (IHE XDM packages of CDA and PDF
//! documents, FHIR bundles) found in mail to patients, checked against the
//! recipient's identity, and filed with the message (documents, profile items).
//! The parsers are sans-IO (bytes in, values or typed refusals out); `filing.rs`
//! turns what they found into what a message files (`filing::Filing`), and
//! `rows.rs` maps that to the store's rows for the delivery transaction.
//!
//! The parsers touch neither network, disk nor clock: delivery hands over bytes
//! and gets back what to store, or why to refuse.

pub mod authorship;
pub mod category;
pub mod cda;
pub mod fhir;
pub mod filing;
pub mod headers;
pub mod identity;
pub mod limits;
pub mod mdn;
pub mod metadata;
pub mod profile;
pub mod rows;
pub mod xdm;

use crate::dossier::cda::{CdaDocument, CdaError};
use crate::dossier::fhir::{FhirBundle, FhirError};
use crate::dossier::limits::Limits;
use crate::dossier::metadata::DocumentEntry;
use crate::dossier::xdm::XdmError;

pub use filing::{PATIENT_DOCUMENT_MAX, declared_item, patient_document};
pub use profile::ProfileCategory;

/// The confidentiality code of documents a minor's legal representatives
/// never see (DESIGN: patient spaces over their life).
pub const INVISIBLE_REPRESENTANTS_LEGAUX: &str = "INVISIBLE_REPRESENTANTS_LEGAUX";

/// Whether a document with these stored confidentiality codes (comma
/// separated, as filed) is hidden from the patient's legal representatives.
pub fn hidden_from_representatives(confidentiality: Option<&str>) -> bool {
    confidentiality
        .unwrap_or_default()
        .split(',')
        .any(|c| c.trim() == INVISIBLE_REPRESENTANTS_LEGAUX)
}

/// Why a structured attachment could not be indexed.
#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    /// The XDM package was refused.
    #[error(transparent)]
    Xdm(#[from] XdmError),
    /// A CDA document of the package was refused.
    #[error("document {path}: {error}")]
    Cda {
        /// Zip path of the document.
        path: String,
        /// Why.
        error: CdaError,
    },
    /// A CDA's header says something else than its metadata.
    #[error("document {path}: CDA {field} {document} disagrees with METADATA.XML ({metadata})")]
    Disagreement {
        /// Zip path of the document.
        path: String,
        /// Which field (`typeCode`).
        field: &'static str,
        /// Value in the metadata.
        metadata: String,
        /// Value in the CDA header.
        document: String,
    },
    /// The FHIR attachment was refused.
    #[error(transparent)]
    Fhir(#[from] FhirError),
}

/// One document to file in the dossier.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexedDocument {
    /// Its XDS metadata, when it came in a package.
    pub entry: Option<DocumentEntry>,
    /// The parsed CDA, when the document is one.
    pub cda: Option<CdaDocument>,
    /// The document as received (verified against the metadata).
    pub data: Vec<u8>,
    /// Path of its zip entry, when it came in a package.
    pub path: Option<String>,
    /// MIME type from the metadata (`application/octet-stream` if absent).
    pub mime_type: String,
    /// Dossier category (see [`category::category_for`]).
    pub category: &'static str,
    /// Title to show: metadata title, else CDA title, else "Document".
    pub title: String,
}

/// What a structured attachment holds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Indexed {
    /// Documents to file.
    pub documents: Vec<IndexedDocument>,
    /// FHIR content, for `application/fhir+json` parts.
    pub fhir: Option<FhirBundle>,
    /// (new document uniqueId — or entry id if not in the package —, replaced
    /// document id) for each RPLC association: the replaced one must be superseded.
    pub replaces: Vec<(String, String)>,
    /// The submission set's patient id (XDM).
    pub submission_patient: Option<metadata::PatientId>,
    /// What was tolerated to read the package (recorded with the outcome).
    pub tolerated: Vec<xdm::Tolerance>,
}

/// Indexes an attachment if it is structured: `None` for ordinary attachments,
/// otherwise what was found or why it was refused.
pub fn index_attachment(
    filename: Option<&str>,
    content_type: &str,
    data: &[u8],
    limits: &Limits,
) -> Option<Result<Indexed, IndexError>> {
    let mime = content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    if mime == "application/fhir+json" {
        return Some(
            fhir::parse_bundle(data, limits)
                .map(|b| Indexed {
                    fhir: Some(b),
                    ..Indexed::default()
                })
                .map_err(IndexError::from),
        );
    }
    if xdm::looks_like_xdm(filename, data) {
        return Some(index_package(data, limits));
    }
    None
}

fn looks_like_xml(mime: &str, data: &[u8]) -> bool {
    let m = mime.to_ascii_lowercase();
    m.ends_with("/xml") || m.ends_with("+xml") || data.trim_ascii_start().starts_with(b"<")
}

fn index_package(data: &[u8], limits: &Limits) -> Result<Indexed, IndexError> {
    let pkg = xdm::read_package(data, limits)?;
    let mut documents = Vec::with_capacity(pkg.documents.len());
    for d in pkg.documents {
        let mime_type = d
            .entry
            .mime_type
            .clone()
            .unwrap_or_else(|| "application/octet-stream".to_owned());
        let cda = if looks_like_xml(&mime_type, &d.data) {
            match cda::parse_cda(&d.data, limits) {
                Ok(c) => Some(c),
                // XML that is not CDA (CCD from another realm is CDA too) stays a plain file.
                Err(CdaError::NotCda(_)) => None,
                Err(error) => {
                    return Err(IndexError::Cda {
                        path: d.path,
                        error,
                    });
                }
            }
        } else {
            None
        };
        // The header must tell the same story as the metadata it came with.
        if let (Some(c), Some(t)) = (
            cda.as_ref().and_then(|c| c.code.as_ref()),
            d.entry.type_code.as_ref(),
        ) && c.code.trim() != t.code.trim()
        {
            return Err(IndexError::Disagreement {
                path: d.path,
                field: "typeCode",
                metadata: t.code.clone(),
                document: c.code.clone(),
            });
        }
        let category =
            category::category_for(d.entry.type_code.as_ref(), d.entry.class_code.as_ref());
        let title = d
            .entry
            .title
            .clone()
            .or_else(|| cda.as_ref().and_then(|c| c.title.clone()))
            .unwrap_or_else(|| "Document".to_owned());
        documents.push(IndexedDocument {
            entry: Some(d.entry),
            cda,
            data: d.data,
            path: Some(d.path),
            mime_type,
            category,
            title,
        });
    }
    let replaces = pkg
        .metadata
        .associations
        .iter()
        .filter(|a| a.kind == "RPLC" || a.kind == "RPLC_XFRM")
        .map(|a| {
            let new = pkg
                .metadata
                .entries
                .iter()
                .find(|e| e.id == a.source)
                .map_or_else(|| a.source.clone(), |e| e.unique_id.clone());
            (new, a.target.clone())
        })
        .collect();
    Ok(Indexed {
        documents,
        fhir: None,
        replaces,
        submission_patient: pkg.metadata.submission_set.patient_id.clone(),
        tolerated: pkg.tolerated,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    fn read(rel: &str) -> Vec<u8> {
        let p = format!("{}/{rel}", env!("CARGO_MANIFEST_DIR"));
        std::fs::read(&p).unwrap_or_else(|e| panic!("{p}: {e}"))
    }

    #[derive(Debug, Deserialize, PartialEq)]
    struct FixtureItem {
        category: String,
        label: String,
        code: Option<String>,
        date: Option<String>,
        value: Option<String>,
    }

    #[derive(Debug, Deserialize)]
    struct Fixture {
        category: String,
        title: String,
        author: Option<String>,
        type_code: String,
        class_code: String,
        patient_id: String,
        patient_oid: String,
        cda_code: String,
        cda_title: String,
        non_xml_media_type: Option<String>,
        items: Vec<FixtureItem>,
    }

    #[test]
    fn ans_packages_match_fixtures() {
        for sample in [
            "VSM_1.4_2022.01",
            "LDL-SES_2022.01",
            "BIO-CR-BIO_2024.01_TSH_1",
            "DOC_NON_STRUCTURE_CDA-R2-N1",
        ] {
            let fx: Fixture =
                serde_json::from_slice(&read(&format!("tests/fixtures/dossier/{sample}.json")))
                    .unwrap();
            let zip = read(&format!(
                "tests/fixtures/corpus/xdm/ans-interop-exemples-xdm/{sample}/IHE_XDM.ZIP"
            ));
            let idx = index_attachment(
                Some("IHE_XDM.ZIP"),
                "application/zip",
                &zip,
                &Limits::default(),
            )
            .expect("recognised as XDM")
            .unwrap_or_else(|e| panic!("{sample}: {e}"));
            assert_eq!(idx.documents.len(), 1, "{sample}");
            let d = &idx.documents[0];
            let e = d.entry.as_ref().unwrap();
            assert_eq!(d.category, fx.category, "{sample}");
            assert_eq!(d.title, fx.title, "{sample}");
            assert_eq!(d.mime_type, "text/xml", "{sample}");
            assert_eq!(
                e.authors.first().and_then(|a| a.person.clone()),
                fx.author,
                "{sample}"
            );
            assert_eq!(e.type_code.as_ref().unwrap().code, fx.type_code, "{sample}");
            assert_eq!(
                e.class_code.as_ref().unwrap().code,
                fx.class_code,
                "{sample}"
            );
            let pid = e.patient_id.as_ref().unwrap();
            assert_eq!(
                (pid.id.as_str(), pid.oid.as_str()),
                (fx.patient_id.as_str(), fx.patient_oid.as_str())
            );
            let cda = d.cda.as_ref().unwrap();
            assert_eq!(cda.code.as_ref().unwrap().code, fx.cda_code, "{sample}");
            assert_eq!(
                cda.title.as_deref(),
                Some(fx.cda_title.as_str()),
                "{sample}"
            );
            assert_eq!(
                cda.non_xml_body.as_ref().map(|b| b.media_type.clone()),
                fx.non_xml_media_type,
                "{sample}"
            );
            if let Some(b) = &cda.non_xml_body {
                assert!(b.data.starts_with(b"%PDF-"), "{sample}");
            }
            let items: Vec<FixtureItem> = cda
                .items()
                .map(|i| FixtureItem {
                    category: i.category.as_str().to_owned(),
                    label: i.label.clone(),
                    code: i.code.as_ref().map(|c| c.code.clone()),
                    date: i.date.clone(),
                    value: i.value.clone(),
                })
                .collect();
            assert_eq!(items, fx.items, "{sample}");
            assert!(idx.replaces.is_empty());
            assert_eq!(
                crate::dossier::identity::check_identity(
                    "279035121518989",
                    &xdm::read_package(&zip, &Limits::default()).unwrap(),
                    std::slice::from_ref(cda)
                ),
                Ok(())
            );
        }
    }

    #[test]
    fn ordinary_attachments_are_not_indexed() {
        let l = Limits::default();
        assert!(index_attachment(Some("cr.pdf"), "application/pdf", b"%PDF-1.4", &l).is_none());
        assert!(
            index_attachment(Some("photos.zip"), "application/zip", b"PK\x03\x04junk", &l)
                .is_none()
        );
    }

    #[test]
    fn fhir_part_is_indexed() {
        let json = read("tests/fixtures/corpus/fhir/Bundle-bundle-example.json");
        let idx = index_attachment(
            None,
            "application/fhir+json; charset=utf-8",
            &json,
            &Limits::default(),
        )
        .unwrap()
        .unwrap();
        assert_eq!(idx.fhir.unwrap().items.len(), 1);
        assert!(idx.documents.is_empty());
    }

    #[test]
    fn nist_and_directproject_are_indexed() {
        let l = Limits::default();
        let zip = read("tests/fixtures/corpus/xdm/nist-iheos-toolkit2/xdm_minimal.zip");
        let idx = index_attachment(Some("xdm_minimal.zip"), "application/zip", &zip, &l)
            .unwrap()
            .unwrap();
        assert_eq!(idx.documents[0].category, "AUTR_DOC");
        assert_eq!(idx.documents[0].title, "Document");
        assert!(idx.documents[0].cda.is_none());
        let zip = read("tests/fixtures/corpus/xdm/directproject-xd-common/samplexdm.zip");
        let idx = index_attachment(None, "application/octet-stream", &zip, &l)
            .unwrap()
            .unwrap();
        let d = &idx.documents[0];
        assert_eq!(d.category, "CPT_REND");
        assert_eq!(d.title, "Physical");
        // A US CCD is CDA too: parsed, no INS.
        let cda = d.cda.as_ref().unwrap();
        assert_eq!(cda.patient.ins, None);
    }

    #[test]
    fn replacement_is_reported() {
        use std::io::Write;
        let doc = b"<ClinicalDocument/>";
        let hash = {
            use sha1::Digest;
            hex::encode(sha1::Sha1::digest(doc))
        };
        let meta = format!(
            r#"<SubmitObjectsRequest><RegistryObjectList><RegistryPackage id="ss"/>
<ExtrinsicObject id="new" mimeType="text/xml"><Slot name="hash"><ValueList><Value>{hash}</Value></ValueList></Slot>
<Slot name="URI"><ValueList><Value>DOC0001.XML</Value></ValueList></Slot>
<ExternalIdentifier identificationScheme="urn:uuid:2e82c1f6-a085-4c72-9da3-8640a32e42ab" value="1.2.3.4"/></ExtrinsicObject>
<Association associationType="urn:ihe:iti:2007:AssociationType:RPLC" sourceObject="new" targetObject="urn:uuid:old"/>
</RegistryObjectList></SubmitObjectsRequest>"#
        );
        let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
        let o = zip::write::SimpleFileOptions::default();
        w.start_file("IHE_XDM/SUBSET01/METADATA.XML", o).unwrap();
        w.write_all(meta.as_bytes()).unwrap();
        w.start_file("IHE_XDM/SUBSET01/DOC0001.XML", o).unwrap();
        w.write_all(doc).unwrap();
        let zip = w.finish().unwrap().into_inner();
        let idx = index_attachment(None, "application/zip", &zip, &Limits::default())
            .unwrap()
            .unwrap();
        assert_eq!(
            idx.replaces,
            [("1.2.3.4".to_owned(), "urn:uuid:old".to_owned())]
        );
    }
}
