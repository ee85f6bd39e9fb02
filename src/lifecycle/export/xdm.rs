//! The dossier médical as an IHE XDM package (ITI TF-1 §16, TF-3 §4.2.4):
//! `IHE_XDM/SUBSET01/` with the documents as received (`DOCnnnnn.ext`) and
//! a `METADATA.XML` (ebRIM SubmitObjectsRequest) regenerated from the stored
//! metadata, its size and SHA-1 those of the bytes written; `INDEX.HTM` at
//! the root lists them. Every version is kept: superseded ones are
//! `Deprecated` with their RPLC association, withdrawn ones `Deprecated`
//! with the `mesStatus` slot saying so.

use quick_xml::escape::escape;

use crate::store::export::ArchivedDocument;

/// Folder of the package's one submission set.
pub const SUBSET: &str = "IHE_XDM/SUBSET01";

/// XDS scheme and object type UUIDs (ITI TF-3 §4.2.5).
mod uuid {
    pub(super) const DOCUMENT_ENTRY: &str = "urn:uuid:7edca82f-054d-47f2-a032-9b2a5b5186c1";
    pub(super) const SUBMISSION_SET: &str = "urn:uuid:a54d6aa5-d40d-43f9-88c5-b4633d873bdd";
    pub(super) const CLASS_CODE: &str = "urn:uuid:41a5887f-8865-4c09-adf7-e362475b143a";
    pub(super) const CONFIDENTIALITY: &str = "urn:uuid:f4f85eac-e6cb-4883-b524-f2705394840f";
    pub(super) const FORMAT_CODE: &str = "urn:uuid:a09d5840-386c-46f2-b5ad-9c3699a4309d";
    pub(super) const TYPE_CODE: &str = "urn:uuid:f0306f51-975f-434e-a61c-c59651d33983";
    pub(super) const AUTHOR: &str = "urn:uuid:93606bcf-9494-43ec-9b4e-a7748d1a838d";
    pub(super) const PATIENT_ID: &str = "urn:uuid:58a6f841-87b3-4a3e-92fd-a8ffeff98427";
    pub(super) const UNIQUE_ID: &str = "urn:uuid:2e82c1f6-a085-4c72-9da3-8640a32e42ab";
    pub(super) const SS_PATIENT_ID: &str = "urn:uuid:6b5aea1a-874d-4603-a4bc-96a0a7b38446";
    pub(super) const SS_SOURCE_ID: &str = "urn:uuid:554ac39e-e3fe-47fe-b233-965d2a147832";
    pub(super) const SS_UNIQUE_ID: &str = "urn:uuid:96fdda7c-d067-4183-912e-bf5ee74998a8";
}

/// OID of the INS-NIR, the assigning authority of the patient id.
const INS_OID: &str = "1.2.250.1.213.1.4.8";

/// A document as written into the package.
#[derive(Debug, Clone)]
pub struct Written {
    /// Its row.
    pub doc: ArchivedDocument,
    /// File name inside the subset (`DOC00001.XML`).
    pub file: String,
    /// Octets written.
    pub size: u64,
    /// Upper-case hex SHA-1 of them.
    pub sha1: String,
}

/// The file name of the `n`th document (from 1), its extension from the
/// entry it came in or its MIME type.
pub fn file_name(n: usize, doc: &ArchivedDocument) -> String {
    let from_entry = doc
        .reference
        .as_ref()
        .and_then(|r| {
            r.entry
                .rsplit_once('.')
                .map(|(_, e)| e.to_ascii_uppercase())
        })
        .filter(|e| (1..=4).contains(&e.len()) && e.chars().all(|c| c.is_ascii_alphanumeric()));
    let ext = from_entry.unwrap_or_else(|| {
        match doc.mime_type.as_str() {
            "application/pdf" => "PDF",
            "text/xml" | "application/xml" | "application/hl7-v3+xml" => "XML",
            "application/fhir+json" | "application/json" => "JSON",
            "text/plain" => "TXT",
            "image/jpeg" => "JPG",
            "image/png" => "PNG",
            _ => "BIN",
        }
        .to_string()
    });
    format!("DOC{n:05}.{ext}")
}

fn slot(out: &mut String, name: &str, values: &[&str]) {
    out.push_str(&format!(
        "<rim:Slot name=\"{}\"><rim:ValueList>",
        escape(name)
    ));
    for v in values {
        out.push_str(&format!("<rim:Value>{}</rim:Value>", escape(*v)));
    }
    out.push_str("</rim:ValueList></rim:Slot>");
}

fn name(out: &mut String, text: &str) {
    out.push_str(&format!(
        "<rim:Name><rim:LocalizedString value=\"{}\"/></rim:Name>",
        escape(text)
    ));
}

/// A classification by code: `code^scheme` as stored, or a bare code.
fn classification(out: &mut String, id: &str, object: &str, scheme: &str, stored: &str) {
    let (code, coding) = match stored.split_once('^') {
        Some((c, s)) => (c, s),
        None => (stored, ""),
    };
    out.push_str(&format!(
        "<rim:Classification id=\"{id}\" classificationScheme=\"{scheme}\" classifiedObject=\"{object}\" nodeRepresentation=\"{}\">",
        escape(code)
    ));
    if !coding.is_empty() {
        slot(out, "codingScheme", &[coding]);
    }
    out.push_str("</rim:Classification>");
}

fn identifier(out: &mut String, id: &str, object: &str, scheme: &str, value: &str, label: &str) {
    out.push_str(&format!(
        "<rim:ExternalIdentifier id=\"{id}\" identificationScheme=\"{scheme}\" registryObject=\"{object}\" value=\"{}\">",
        escape(value)
    ));
    name(out, label);
    out.push_str("</rim:ExternalIdentifier>");
}

/// `METADATA.XML` for the documents written, `space_oid` a stable OID of
/// the space (the submission set's unique and source ids).
pub fn metadata(ins: Option<&str>, space_oid: &str, docs: &[Written]) -> String {
    let patient = ins.map(|i| format!("{i}^^^&{INS_OID}&ISO^NH"));
    let mut o = String::with_capacity(4096 + docs.len() * 3000);
    o.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    o.push_str(
        "<lcm:SubmitObjectsRequest xmlns:lcm=\"urn:oasis:names:tc:ebxml-regrep:xsd:lcm:3.0\" \
         xmlns:rim=\"urn:oasis:names:tc:ebxml-regrep:xsd:rim:3.0\"><rim:RegistryObjectList>",
    );
    let submitted = docs
        .iter()
        .filter_map(|w| w.doc.creation_time.as_deref())
        .max()
        .unwrap_or("19800101000000");
    o.push_str("<rim:RegistryPackage id=\"SubmissionSet01\" objectType=\"urn:oasis:names:tc:ebxml-regrep:ObjectType:RegistryObject\">");
    slot(&mut o, "submissionTime", &[submitted]);
    name(&mut o, "Export de l'espace santé du patient");
    o.push_str(&format!(
        "<rim:Classification id=\"ss-node\" classifiedObject=\"SubmissionSet01\" classificationNode=\"{}\"/>",
        uuid::SUBMISSION_SET
    ));
    identifier(
        &mut o,
        "ss-unique",
        "SubmissionSet01",
        uuid::SS_UNIQUE_ID,
        space_oid,
        "XDSSubmissionSet.uniqueId",
    );
    identifier(
        &mut o,
        "ss-source",
        "SubmissionSet01",
        uuid::SS_SOURCE_ID,
        space_oid,
        "XDSSubmissionSet.sourceId",
    );
    if let Some(p) = &patient {
        identifier(
            &mut o,
            "ss-patient",
            "SubmissionSet01",
            uuid::SS_PATIENT_ID,
            p,
            "XDSSubmissionSet.patientId",
        );
    }
    o.push_str("</rim:RegistryPackage>");
    let object_of = |row: i64| {
        docs.iter()
            .position(|w| w.doc.id == row)
            .map(|i| format!("Document{:05}", i + 1))
    };
    for (i, w) in docs.iter().enumerate() {
        let d = &w.doc;
        let id = format!("Document{:05}", i + 1);
        let status = if d.status == "current" {
            "Approved"
        } else {
            "Deprecated"
        };
        o.push_str(&format!(
            "<rim:ExtrinsicObject id=\"{id}\" mimeType=\"{}\" objectType=\"{}\" status=\"urn:oasis:names:tc:ebxml-regrep:StatusType:{status}\">",
            escape(&d.mime_type),
            uuid::DOCUMENT_ENTRY
        ));
        for (slot_name, value) in [
            ("creationTime", &d.creation_time),
            ("serviceStartTime", &d.service_start),
            ("serviceStopTime", &d.service_stop),
        ] {
            if let Some(v) = value {
                slot(&mut o, slot_name, &[v]);
            }
        }
        slot(&mut o, "hash", &[&w.sha1]);
        slot(&mut o, "size", &[&w.size.to_string()]);
        slot(&mut o, "URI", &[&w.file]);
        slot(&mut o, "mesStatus", &[&d.status]);
        slot(&mut o, "mesCategory", &[&d.category]);
        if let Some(p) = &patient {
            slot(&mut o, "sourcePatientId", &[p]);
        }
        name(&mut o, &d.title);
        for (n, (scheme, value)) in [
            (uuid::CLASS_CODE, &d.class_code),
            (uuid::TYPE_CODE, &d.type_code),
            (uuid::FORMAT_CODE, &d.format_code),
        ]
        .into_iter()
        .enumerate()
        {
            if let Some(v) = value {
                classification(&mut o, &format!("{id}-c{n}"), &id, scheme, v);
            }
        }
        for (n, code) in d
            .confidentiality
            .as_deref()
            .unwrap_or_default()
            .split(',')
            .map(str::trim)
            .filter(|c| !c.is_empty())
            .enumerate()
        {
            classification(
                &mut o,
                &format!("{id}-conf{n}"),
                &id,
                uuid::CONFIDENTIALITY,
                code,
            );
        }
        if d.author.is_some() || d.author_institution.is_some() {
            o.push_str(&format!(
                "<rim:Classification id=\"{id}-author\" classificationScheme=\"{}\" classifiedObject=\"{id}\" nodeRepresentation=\"\">",
                uuid::AUTHOR
            ));
            for (slot_name, value) in [
                ("authorPerson", &d.author),
                ("authorInstitution", &d.author_institution),
                ("authorRole", &d.author_role),
                ("authorSpecialty", &d.author_specialty),
            ] {
                if let Some(v) = value {
                    slot(&mut o, slot_name, &[v]);
                }
            }
            o.push_str("</rim:Classification>");
        }
        identifier(
            &mut o,
            &format!("{id}-uid"),
            &id,
            uuid::UNIQUE_ID,
            &d.unique_id,
            "XDSDocumentEntry.uniqueId",
        );
        if let Some(p) = &patient {
            identifier(
                &mut o,
                &format!("{id}-pid"),
                &id,
                uuid::PATIENT_ID,
                p,
                "XDSDocumentEntry.patientId",
            );
        }
        o.push_str("</rim:ExtrinsicObject>");
    }
    for (i, w) in docs.iter().enumerate() {
        let id = format!("Document{:05}", i + 1);
        o.push_str(&format!(
            "<rim:Association id=\"as{:05}\" associationType=\"urn:oasis:names:tc:ebxml-regrep:AssociationType:HasMember\" sourceObject=\"SubmissionSet01\" targetObject=\"{id}\">",
            i + 1
        ));
        slot(&mut o, "SubmissionSetStatus", &["Original"]);
        o.push_str("</rim:Association>");
        if let Some(new) = w.doc.replaced_by.and_then(object_of) {
            o.push_str(&format!(
                "<rim:Association id=\"rplc{:05}\" associationType=\"urn:ihe:iti:2007:AssociationType:RPLC\" sourceObject=\"{new}\" targetObject=\"{id}\"/>",
                i + 1
            ));
        }
    }
    o.push_str("</rim:RegistryObjectList></lcm:SubmitObjectsRequest>\n");
    o
}

/// `INDEX.HTM`: what the package holds, readable in any browser (XDM).
pub fn index(docs: &[Written]) -> String {
    let mut o = String::from(
        "<!DOCTYPE html>\n<html lang=\"fr\"><head><meta charset=\"utf-8\"><title>Dossier médical</title></head><body>\n\
         <h1>Dossier médical</h1>\n<p>Ce support IHE XDM contient les documents de votre dossier médical, tels que reçus. \
         Voir aussi le fichier README.TXT.</p>\n<ul>\n",
    );
    for w in docs {
        let status = match w.doc.status.as_str() {
            "current" => "",
            "superseded" => " (version remplacée)",
            _ => " (retiré par son auteur)",
        };
        o.push_str(&format!(
            "<li><a href=\"{SUBSET}/{file}\">{title}</a>{status}</li>\n",
            file = escape(&w.file),
            title = escape(&w.doc.title)
        ));
    }
    o.push_str("</ul>\n</body></html>\n");
    o
}
