//! Does an attachment concern the patient it was sent to?
//!
//! A document may only enter a patient's dossier when every identity it
//! carries is a qualified INS equal to the recipient's, and the CDA carries
//! the INS identity traits. The outcome maps onto the MSSanté integration
//! error codes reported in MDNs.

use std::fmt;

use crate::dossier::cda::CdaDocument;
use crate::dossier::metadata::PatientId;
use crate::dossier::xdm::Package;

/// OIDs of INS identifiers: INS-NIR, INS-NIA, and their test counterparts.
pub const INS_OIDS: &[&str] = &[
    "1.2.250.1.213.1.4.8",
    "1.2.250.1.213.1.4.9",
    "1.2.250.1.213.1.4.10",
    "1.2.250.1.213.1.4.11",
];

/// Why a document was refused for this patient.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdentityProblem {
    /// The INS is not the recipient's.
    WrongPatient,
    /// No INS at all (no patient id, or one under another authority).
    NoIns,
    /// The INS is there but the identity traits are missing.
    IncompleteIns,
}

impl IdentityProblem {
    /// MSSanté integration error code for the MDN (902, 903, 905).
    pub fn mdn_code(&self) -> u16 {
        match self {
            Self::WrongPatient => 902,
            Self::NoIns => 903,
            Self::IncompleteIns => 905,
        }
    }
}

impl fmt::Display for IdentityProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::WrongPatient => "Le document concerne un autre patient (INS différent du destinataire)",
            Self::NoIns => "Le document ne porte pas d'INS (identifiant national de santé) du patient",
            Self::IncompleteIns => {
                "L'identité INS du document est incomplète (nom de naissance, prénom, date de naissance et sexe requis)"
            }
        })
    }
}

impl std::error::Error for IdentityProblem {}

fn is_ins_oid(oid: &str) -> bool {
    INS_OIDS.contains(&oid.trim())
}

fn check_pid(expected: &str, pid: Option<&PatientId>) -> Result<(), IdentityProblem> {
    let pid = pid.ok_or(IdentityProblem::NoIns)?;
    if !is_ins_oid(&pid.oid) {
        return Err(IdentityProblem::NoIns);
    }
    if pid.id.trim() != expected.trim() {
        return Err(IdentityProblem::WrongPatient);
    }
    Ok(())
}

/// Checks a package against the recipient's INS: every patient id (submission
/// set and documents) and every CDA recordTarget must be that INS, and each CDA
/// must carry the identity traits. A wrong patient wins over other problems.
pub fn check_identity(
    expected_ins: &str,
    package: &Package,
    cdas: &[CdaDocument],
) -> Result<(), IdentityProblem> {
    check_ids(
        expected_ins,
        package.metadata.submission_set.patient_id.as_ref(),
        package
            .documents
            .iter()
            .map(|d| d.entry.patient_id.as_ref()),
        cdas.iter(),
    )
}

/// The same check over what [`crate::dossier::index_attachment`] found (XDM
/// documents and their CDAs, or a FHIR bundle's Patient).
pub fn check_indexed(
    expected_ins: &str,
    indexed: &crate::dossier::Indexed,
) -> Result<(), IdentityProblem> {
    if let Some(b) = &indexed.fhir {
        let oid = b
            .patient_ins_system
            .as_deref()
            .map(|s| s.trim_start_matches("urn:oid:").to_string());
        return check_pid(
            expected_ins,
            b.patient_ins
                .as_ref()
                .zip(oid)
                .map(|(id, oid)| PatientId {
                    id: id.clone(),
                    oid,
                })
                .as_ref(),
        );
    }
    check_ids(
        expected_ins,
        indexed.submission_patient.as_ref(),
        indexed
            .documents
            .iter()
            .map(|d| d.entry.as_ref().and_then(|e| e.patient_id.as_ref())),
        indexed.documents.iter().filter_map(|d| d.cda.as_ref()),
    )
}

fn check_ids<'a>(
    expected_ins: &str,
    submission: Option<&PatientId>,
    entries: impl Iterator<Item = Option<&'a PatientId>>,
    cdas: impl Iterator<Item = &'a CdaDocument>,
) -> Result<(), IdentityProblem> {
    let mut first_problem = None;
    let mut note = |r: Result<(), IdentityProblem>| -> Result<(), IdentityProblem> {
        match r {
            Err(IdentityProblem::WrongPatient) => Err(IdentityProblem::WrongPatient),
            Err(p) => {
                first_problem.get_or_insert(p);
                Ok(())
            }
            Ok(()) => Ok(()),
        }
    };
    if let Some(pid) = submission {
        note(check_pid(expected_ins, Some(pid)))?;
    }
    for pid in entries {
        note(check_pid(expected_ins, pid))?;
    }
    for c in cdas {
        let p = &c.patient;
        let r = match (&p.ins, &p.ins_oid) {
            (Some(ins), Some(oid)) => check_pid(
                expected_ins,
                Some(&PatientId {
                    id: ins.clone(),
                    oid: oid.clone(),
                }),
            ),
            _ => Err(IdentityProblem::NoIns),
        };
        note(r)?;
        if p.ins.is_some()
            && (p.birth_name.is_none()
                || p.given_names.is_empty()
                || p.birth_date.is_none()
                || p.sex.is_none())
        {
            note(Err(IdentityProblem::IncompleteIns))?;
        }
    }
    first_problem.map_or(Ok(()), Err)
}

/// True when a 15-character NIR has a valid control key (97 - number mod 97),
/// Corsican departments 2A/2B replaced by 19/18 before computing the key.
pub fn nir_key_is_valid(nir: &str) -> bool {
    if nir.len() != 15 || !nir.is_ascii() {
        return false;
    }
    let (body, key) = nir.split_at(13);
    let digits: String = if body[5..7].eq_ignore_ascii_case("2A") {
        format!("{}19{}", &body[..5], &body[7..])
    } else if body[5..7].eq_ignore_ascii_case("2B") {
        format!("{}18{}", &body[..5], &body[7..])
    } else {
        body.to_owned()
    };
    let (Ok(n), Ok(k)) = (digits.parse::<u64>(), key.parse::<u64>()) else {
        return false;
    };
    97 - n % 97 == k
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dossier::limits::Limits;

    const INS: &str = "279035121518989";

    fn vsm() -> (Package, Vec<CdaDocument>) {
        let p = format!(
            "{}/tests/fixtures/corpus/xdm/ans-interop-exemples-xdm/VSM_1.4_2022.01/IHE_XDM.ZIP",
            env!("CARGO_MANIFEST_DIR")
        );
        let zip = std::fs::read(p).unwrap();
        let pkg = crate::dossier::xdm::read_package(&zip, &Limits::default()).unwrap();
        let cda =
            crate::dossier::cda::parse_cda(&pkg.documents[0].data, &Limits::default()).unwrap();
        (pkg, vec![cda])
    }

    #[test]
    fn matching_ins_passes() {
        let (pkg, cdas) = vsm();
        assert_eq!(check_identity(INS, &pkg, &cdas), Ok(()));
    }

    #[test]
    fn other_ins_is_wrong_patient() {
        let (pkg, cdas) = vsm();
        let e = check_identity("180012B01234567", &pkg, &cdas).unwrap_err();
        assert_eq!(e, IdentityProblem::WrongPatient);
        assert_eq!(e.mdn_code(), 902);
        assert!(e.to_string().contains("autre patient"));
    }

    #[test]
    fn removed_ins_is_no_ins() {
        let (mut pkg, mut cdas) = vsm();
        pkg.metadata.submission_set.patient_id = None;
        pkg.documents[0].entry.patient_id = None;
        cdas[0].patient.ins = None;
        cdas[0].patient.ins_oid = None;
        let e = check_identity(INS, &pkg, &cdas).unwrap_err();
        assert_eq!(e, IdentityProblem::NoIns);
        assert_eq!(e.mdn_code(), 903);
        // A patient id under a non-INS authority is not an INS either.
        let (mut pkg, cdas) = vsm();
        pkg.documents[0].entry.patient_id = Some(PatientId {
            id: INS.into(),
            oid: "1.2.3.4.567.8.9.10".into(),
        });
        assert_eq!(
            check_identity(INS, &pkg, &cdas),
            Err(IdentityProblem::NoIns)
        );
    }

    #[test]
    fn removed_birth_date_is_incomplete() {
        let (pkg, mut cdas) = vsm();
        cdas[0].patient.birth_date = None;
        let e = check_identity(INS, &pkg, &cdas).unwrap_err();
        assert_eq!(e, IdentityProblem::IncompleteIns);
        assert_eq!(e.mdn_code(), 905);
    }

    #[test]
    fn nir_keys() {
        assert!(nir_key_is_valid("279035121518989"));
        // FR Core example: documented as carrying an invalid key.
        assert!(!nir_key_is_valid("123456789012244"));
        assert!(nir_key_is_valid("123456789012212"));
        assert!(!nir_key_is_valid("12345"));
    }
}
