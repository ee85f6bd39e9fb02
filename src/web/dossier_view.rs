//! Documents and profile items as the patient reads them: French dates from HL7
//! timestamps, authors, provenance, and a CDA turned into a header and its
//! sections' narratives as plain text (escaped by the templates: nothing in a
//! document can run in the page).

use crate::dossier::{self, cda};
use crate::store::dossier::{Document, ProfileItem};

/// `20240115103000+0100` or `2024-01-15` → `15/01/2024`; anything else as given.
pub fn hl7_date_fr(ts: &str) -> String {
    let digits: String = ts.chars().filter(char::is_ascii_digit).take(8).collect();
    if digits.len() == 8 {
        format!("{}/{}/{}", &digits[6..8], &digits[4..6], &digits[0..4])
    } else if digits.len() == 6 {
        format!("{}/{}", &digits[4..6], &digits[0..4])
    } else {
        ts.to_string()
    }
}

/// The date shown for a document: its creation time, else when it was filed.
pub fn document_date(d: &Document) -> String {
    match &d.creation_time {
        Some(t) if !t.is_empty() => hl7_date_fr(t),
        _ => super::pages::date_fr(d.created_at),
    }
}

/// The author shown for a document (name, institution), or who added it.
pub fn document_author(d: &Document) -> String {
    if d.source == "patient" {
        return "Ajouté par vous".into();
    }
    match (&d.author, &d.author_institution) {
        (Some(a), Some(i)) if !i.is_empty() => format!("{a}, {i}"),
        (Some(a), _) => a.clone(),
        (None, Some(i)) => i.clone(),
        (None, None) => "Auteur non précisé".into(),
    }
}

/// Where a profile item comes from.
pub fn provenance(i: &ProfileItem) -> String {
    match (&i.document_title, &i.author) {
        (None, _) if i.document_id.is_none() => "Déclaré par vous".into(),
        (Some(t), Some(a)) => format!("Source : {t} ({a})"),
        (Some(t), None) => format!("Source : {t}"),
        (None, _) => "Source : document".into(),
    }
}

/// A download name: the title, made safe, with the extension of its type.
pub fn file_name(d: &Document) -> String {
    let ext = match d.mime_type.as_str() {
        "application/pdf" => "pdf",
        "image/jpeg" => "jpg",
        "image/png" => "png",
        "text/xml" | "application/xml" | "application/hl7-v3+xml" => "xml",
        "application/fhir+json" => "json",
        _ => "bin",
    };
    let base: String = d
        .title
        .chars()
        .map(|c| if c.is_alphanumeric() { c } else { '-' })
        .collect();
    let base = base.trim_matches('-');
    format!("{}.{ext}", if base.is_empty() { "document" } else { base })
}

/// One section of a CDA as shown.
#[derive(Debug, Clone)]
pub struct SectionView {
    /// Section title.
    pub title: String,
    /// Its narrative, as text.
    pub narrative: String,
}

/// A document page.
#[derive(Debug, Clone)]
pub struct DocumentView {
    /// Row id.
    pub id: i64,
    /// Title.
    pub title: String,
    /// Category label.
    pub category: &'static str,
    /// Date shown.
    pub date: String,
    /// Author shown.
    pub author: String,
    /// Hidden from professionals.
    pub hidden: bool,
    /// Replaced by a newer version.
    pub superseded: bool,
    /// Version number.
    pub version: i64,
    /// Readable content of a CDA (header lines, sections); empty for files.
    pub header: Vec<(String, String)>,
    /// Sections of a CDA.
    pub sections: Vec<SectionView>,
    /// A file to download (PDF, image, or the CDA's embedded PDF).
    pub is_file: bool,
}

/// Builds the page of a document from its row and content.
pub fn document_view(d: &Document, raw: &[u8]) -> DocumentView {
    let mut v = DocumentView {
        id: d.id,
        title: d.title.clone(),
        category: dossier::category::label_fr(&d.category),
        date: document_date(d),
        author: document_author(d),
        hidden: d.hidden,
        superseded: d.status == "superseded",
        version: d.version,
        header: Vec::new(),
        sections: Vec::new(),
        is_file: true,
    };
    if d.mime_type.contains("xml")
        && let Ok(doc) = cda::parse_cda(raw, &dossier::limits::Limits::default())
    {
        v.is_file = doc.non_xml_body.is_some();
        let p = &doc.patient;
        let name = format!(
            "{} {}",
            p.given_names.join(" "),
            p.birth_name.clone().unwrap_or_default()
        );
        v.header.push(("Patient".into(), name.trim().to_string()));
        if let Some(c) = &doc.custodian {
            v.header.push(("Établissement".into(), c.clone()));
        }
        v.sections = doc
            .sections
            .iter()
            .filter(|s| !s.narrative.trim().is_empty())
            .map(|s| SectionView {
                title: s.title.clone().unwrap_or_else(|| "Section".into()),
                narrative: s.narrative.clone(),
            })
            .collect();
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hl7_dates_read_in_french() {
        assert_eq!(hl7_date_fr("20240115103000+0100"), "15/01/2024");
        assert_eq!(hl7_date_fr("2024-01-15"), "15/01/2024");
        assert_eq!(hl7_date_fr("202401"), "01/2024");
        assert_eq!(hl7_date_fr("inconnue"), "inconnue");
    }
}
