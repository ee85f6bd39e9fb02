//! Document categories of the dossier (the DMP / Mon espace santé categories),
//! chosen from a document's XDS typeCode, falling back on its classCode.
//!
//! The table lives in `categories.csv` so that it can be reviewed and amended
//! without touching code; it is compiled in and checked by the tests.

use std::collections::HashMap;
use std::sync::OnceLock;

use crate::dossier::metadata::Code;

/// Every category, in display order.
pub const CATEGORIES: &[&str] = &[
    "SYNTHESE",
    "ORD_SOIN",
    "RADIO_SC",
    "BIOLOGIE",
    "CPT_REND",
    "DEPISTAG",
    "CERT_MED",
    "SYNTH_PML",
    "DOC_ADM",
    "AUTR_DOC",
    "DIR_ANT",
    "QUEST_SANTE",
];

/// Category of documents whose codes are unknown.
pub const DEFAULT_CATEGORY: &str = "AUTR_DOC";

/// OID of the French classCode system (TRE_A03_ClasseDocument).
const CLASS_CODE_SYSTEM: &str = "1.2.250.1.213.1.1.4.1";

/// Categories a patient may file their own documents under: every one the
/// CI-SIS gives a "déposé par le patient" typeCode (DOCPAT01–07, 09), plus
/// directives anticipées (EXPPAT_3) and the health questionnaire. SYNTH_PML
/// is excluded: it is produced by the service from the profil médical.
pub const PATIENT_CATEGORIES: &[&str] = &[
    "SYNTHESE",
    "ORD_SOIN",
    "RADIO_SC",
    "BIOLOGIE",
    "CPT_REND",
    "DEPISTAG",
    "CERT_MED",
    "DOC_ADM",
    "AUTR_DOC",
    "DIR_ANT",
    "QUEST_SANTE",
];

const TABLE: &str = include_str!("../../schemas/dossier/categories.csv");

/// A line of `categories.csv` that cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("categories.csv line {line}: {message}")]
struct TableError {
    /// 1-based line in the file.
    line: u64,
    /// What is wrong with it.
    message: String,
}

struct Tables {
    by_type: HashMap<String, &'static str>,
    by_class: HashMap<String, &'static str>,
}

/// The table, read once. It is compiled in and `table_is_clean` reads it, so
/// an error here is a bug of this build, not of the input.
fn tables() -> &'static Tables {
    static T: OnceLock<Tables> = OnceLock::new();
    T.get_or_init(|| read_table(TABLE).unwrap_or_else(|e| panic!("{e}")))
}

/// Reads `axis,code,category,display` rows (`#` comments, blank lines,
/// quoted fields). Every other line is an error naming it: a wrong field
/// count, an unknown axis or category, a code given twice.
fn read_table(text: &str) -> Result<Tables, TableError> {
    let mut t = Tables {
        by_type: HashMap::new(),
        by_class: HashMap::new(),
    };
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .comment(Some(b'#'))
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(text.as_bytes());
    for record in reader.records() {
        let line_at = |p: Option<&csv::Position>| p.map_or(0, |p| line_of(text, p));
        let record = record.map_err(|e| TableError {
            line: line_at(e.position()),
            message: e.to_string(),
        })?;
        let line = line_at(record.position());
        let error = |message: String| TableError { line, message };
        if record.len() != 4 {
            return Err(error(format!(
                "{} fields where 4 are expected (quote a display that holds commas)",
                record.len()
            )));
        }
        let (axis, code, category) = (&record[0], &record[1], &record[2]);
        let category = CATEGORIES
            .iter()
            .find(|c| **c == category)
            .ok_or_else(|| error(format!("unknown category `{category}`")))?;
        let map = match axis {
            "type" => &mut t.by_type,
            "class" => &mut t.by_class,
            _ => return Err(error(format!("unknown axis `{axis}`"))),
        };
        if map.insert(code.to_owned(), category).is_some() {
            return Err(error(format!("{axis} code `{code}` given twice")));
        }
    }
    Ok(t)
}

/// The 1-based line of the record at `p`: csv places a record where the
/// blank and comment lines before it begin.
fn line_of(text: &str, p: &csv::Position) -> u64 {
    let skipped = text
        .get(p.byte() as usize..)
        .unwrap_or_default()
        .lines()
        .take_while(|l| l.is_empty() || l.starts_with('#'))
        .count();
    p.line() + skipped as u64
}

/// Category of a document: by typeCode (matched on the code alone: LOINC and
/// CI-SIS codes never collide), else by French classCode, else AUTR_DOC.
pub fn category_for(type_code: Option<&Code>, class_code: Option<&Code>) -> &'static str {
    let t = tables();
    if let Some(c) = type_code.and_then(|c| t.by_type.get(c.code.trim())) {
        return c;
    }
    class_code
        .filter(|c| {
            c.scheme
                .as_deref()
                .is_none_or(|s| s.trim() == CLASS_CODE_SYSTEM)
        })
        .and_then(|c| t.by_class.get(c.code.trim()))
        .copied()
        .unwrap_or(DEFAULT_CATEGORY)
}

/// French name of a category, as shown in the dossier.
pub fn label_fr(category: &str) -> &'static str {
    match category {
        "SYNTHESE" => "Synthèses",
        "ORD_SOIN" => "Traitements et soins",
        "RADIO_SC" => "Imagerie médicale",
        "BIOLOGIE" => "Biologie",
        "CPT_REND" => "Comptes rendus",
        "DEPISTAG" => "Prévention",
        "CERT_MED" => "Certificats",
        "SYNTH_PML" => "Synthèse médicale",
        "DOC_ADM" => "Documents administratifs",
        "DIR_ANT" => "Directives anticipées",
        "QUEST_SANTE" => "Questionnaire de santé",
        _ => "Autres documents",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(c: &str) -> Code {
        Code {
            code: c.into(),
            scheme: None,
            display: None,
        }
    }

    #[test]
    fn table_is_clean() {
        let t = read_table(TABLE).unwrap();
        let rows = TABLE
            .lines()
            .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
            .count();
        assert_eq!(
            t.by_type.len() + t.by_class.len(),
            rows,
            "every line is kept"
        );
        assert_eq!(
            tables().by_type.get("CERT_DECL").copied(),
            Some("CERT_MED"),
            "a quoted display with a comma"
        );
    }

    #[test]
    fn a_bad_line_is_an_error_with_its_line() {
        let good = "type,SYNTH,SYNTHESE,Synthèse\n\n# comment\n";
        assert_eq!(read_table(good).unwrap().by_type.len(), 1);
        for (bad, message) in [
            ("type,X,NOPE,x\n", "unknown category `NOPE`"),
            ("kind,X,SYNTHESE,x\n", "unknown axis `kind`"),
            ("type,X,SYNTHESE\n", "3 fields"),
            ("type,X,SYNTHESE,a, b\n", "5 fields"),
            ("type,SYNTH,BIOLOGIE,x\n", "given twice"),
        ] {
            let err = read_table(&format!("{good}{bad}")).err().expect(bad);
            assert_eq!(err.line, 4, "{bad}: {err}");
            assert!(err.to_string().contains("line 4"), "{err}");
            assert!(err.to_string().contains(message), "{bad}: {err}");
        }
    }

    #[test]
    fn every_cisis_type_code_is_mapped() {
        let p = format!(
            "{}/tests/fixtures/corpus/cda/JDV_J07_XdsTypeCode_CISIS.xml",
            env!("CARGO_MANIFEST_DIR")
        );
        let xml = std::fs::read_to_string(p).unwrap();
        let mut missing = Vec::new();
        let mut n = 0;
        for part in xml.split("<Concept ").skip(1) {
            let c = part
                .split("code=\"")
                .nth(1)
                .unwrap()
                .split('"')
                .next()
                .unwrap();
            n += 1;
            if !tables().by_type.contains_key(c) {
                missing.push(c.to_owned());
            }
        }
        assert!(n > 100);
        assert!(missing.is_empty(), "unmapped typeCodes: {missing:?}");
    }

    #[test]
    fn mapping_choices() {
        assert_eq!(category_for(Some(&code("SYNTH")), None), "SYNTHESE");
        assert_eq!(category_for(Some(&code("60591-5")), None), "SYNTHESE");
        assert_eq!(
            category_for(Some(&code("11502-2")), Some(&code("10"))),
            "BIOLOGIE"
        );
        assert_eq!(category_for(Some(&code("18748-4")), None), "RADIO_SC");
        assert_eq!(category_for(Some(&code("57833-6")), None), "ORD_SOIN");
        for c in ["11490-0", "34133-9", "11488-4", "34874-8"] {
            assert_eq!(category_for(Some(&code(c)), None), "CPT_REND", "{c}");
        }
        assert_eq!(category_for(Some(&code("87273-9")), None), "DEPISTAG");
        assert_eq!(category_for(Some(&code("89601-9")), None), "CERT_MED");
        assert_eq!(category_for(Some(&code("EXPPAT_3")), None), "DIR_ANT");
        assert_eq!(category_for(Some(&code("DOCPAT08")), None), "SYNTH_PML");
        // classCode fallback, only for the French class system.
        assert_eq!(
            category_for(Some(&code("XYZ")), Some(&code("31"))),
            "RADIO_SC"
        );
        let foreign = Code {
            code: "31".into(),
            scheme: Some("1.2.3".into()),
            display: None,
        };
        assert_eq!(category_for(None, Some(&foreign)), "AUTR_DOC");
        assert_eq!(category_for(None, None), "AUTR_DOC");
    }

    #[test]
    fn labels_and_patient_categories() {
        for c in CATEGORIES {
            assert!(!label_fr(c).is_empty());
        }
        for c in PATIENT_CATEGORIES {
            assert!(CATEGORIES.contains(c));
        }
        assert!(!PATIENT_CATEGORIES.contains(&"SYNTH_PML"));
        assert_eq!(label_fr("ORD_SOIN"), "Traitements et soins");
    }
}
