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

struct Tables {
    by_type: HashMap<&'static str, &'static str>,
    by_class: HashMap<&'static str, &'static str>,
}

fn tables() -> &'static Tables {
    static T: OnceLock<Tables> = OnceLock::new();
    T.get_or_init(|| {
        let mut t = Tables {
            by_type: HashMap::new(),
            by_class: HashMap::new(),
        };
        for line in TABLE.lines() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let mut f = line.splitn(4, ',');
            let (Some(axis), Some(code), Some(cat)) = (f.next(), f.next(), f.next()) else {
                continue;
            };
            // Only known categories are kept; the tests check that none is dropped.
            let Some(cat) = CATEGORIES.iter().find(|c| **c == cat) else {
                continue;
            };
            match axis {
                "type" => t.by_type.insert(code, cat),
                "class" => t.by_class.insert(code, cat),
                _ => None,
            };
        }
        t
    })
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
        let mut seen = std::collections::HashSet::new();
        for line in TABLE
            .lines()
            .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        {
            let f: Vec<&str> = line.splitn(4, ',').collect();
            assert_eq!(f.len(), 4, "{line}");
            assert!(f[0] == "type" || f[0] == "class", "{line}");
            assert!(CATEGORIES.contains(&f[2]), "{line}");
            assert!(seen.insert((f[0], f[1])), "duplicate {line}");
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
