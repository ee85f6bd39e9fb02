//! Items of the profil médical, the patient's structured health summary, fed by
//! CDA sections and FHIR resources received for the patient.

use serde::{Deserialize, Serialize};

use crate::dossier::metadata::Code;

/// The entries of the profil médical (DESIGN.md), plus vaccinations.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProfileCategory {
    /// Maladies et sujets de santé (problems, past illnesses, surgery history).
    Maladies,
    /// Traitements (current medication).
    Traitements,
    /// Hospitalisations.
    Hospitalisations,
    /// Handicaps.
    Handicaps,
    /// Groupe sanguin.
    GroupeSanguin,
    /// Allergies.
    Allergies,
    /// Antécédents familiaux.
    AntecedentsFamiliaux,
    /// Mesures (weight, blood pressure…).
    Mesures,
    /// Professionnels de santé.
    ProfessionnelsDeSante,
    /// Entourage (relatives, trusted person).
    Entourage,
    /// Directives anticipées.
    DirectivesAnticipees,
    /// Don d'organes.
    DonOrganes,
    /// Vaccinations.
    Vaccinations,
}

impl ProfileCategory {
    /// Every entry, in the order the profile shows them.
    pub const ALL: [ProfileCategory; 13] = [
        ProfileCategory::Maladies,
        ProfileCategory::Traitements,
        ProfileCategory::Hospitalisations,
        ProfileCategory::Handicaps,
        ProfileCategory::GroupeSanguin,
        ProfileCategory::Allergies,
        ProfileCategory::AntecedentsFamiliaux,
        ProfileCategory::Mesures,
        ProfileCategory::ProfessionnelsDeSante,
        ProfileCategory::Entourage,
        ProfileCategory::DirectivesAnticipees,
        ProfileCategory::DonOrganes,
        ProfileCategory::Vaccinations,
    ];

    /// The entry with identifier `id` ([`ProfileCategory::as_str`]).
    pub fn parse(id: &str) -> Option<ProfileCategory> {
        Self::ALL.into_iter().find(|c| c.as_str() == id)
    }

    /// Stable identifier for storage and APIs.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Maladies => "maladies",
            Self::Traitements => "traitements",
            Self::Hospitalisations => "hospitalisations",
            Self::Handicaps => "handicaps",
            Self::GroupeSanguin => "groupe_sanguin",
            Self::Allergies => "allergies",
            Self::AntecedentsFamiliaux => "antecedents_familiaux",
            Self::Mesures => "mesures",
            Self::ProfessionnelsDeSante => "professionnels_de_sante",
            Self::Entourage => "entourage",
            Self::DirectivesAnticipees => "directives_anticipees",
            Self::DonOrganes => "don_organes",
            Self::Vaccinations => "vaccinations",
        }
    }

    /// Name shown to the patient.
    pub fn label_fr(&self) -> &'static str {
        match self {
            Self::Maladies => "Maladies et sujets de santé",
            Self::Traitements => "Traitements",
            Self::Hospitalisations => "Hospitalisations",
            Self::Handicaps => "Handicaps",
            Self::GroupeSanguin => "Groupe sanguin",
            Self::Allergies => "Allergies",
            Self::AntecedentsFamiliaux => "Antécédents familiaux",
            Self::Mesures => "Mesures",
            Self::ProfessionnelsDeSante => "Professionnels de santé",
            Self::Entourage => "Entourage",
            Self::DirectivesAnticipees => "Directives anticipées",
            Self::DonOrganes => "Don d'organes",
            Self::Vaccinations => "Vaccinations",
        }
    }
}

/// One fact for the profil médical.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProfileItem {
    /// Where it goes.
    pub category: ProfileCategory,
    /// What it is, readable ("PLAVIX 75 mg, comprimé pelliculé").
    pub label: String,
    /// The code behind the label (CIM-10, CIS, LOINC, SNOMED CT…).
    pub code: Option<Code>,
    /// When (HL7 TS or FHIR date as sent).
    pub date: Option<String>,
    /// Measured value or qualifier ("71 kg", "Mère", "allergie médicamenteuse").
    pub value: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_stable_and_match_serde() {
        let all = [
            ProfileCategory::Maladies,
            ProfileCategory::Traitements,
            ProfileCategory::Hospitalisations,
            ProfileCategory::Handicaps,
            ProfileCategory::GroupeSanguin,
            ProfileCategory::Allergies,
            ProfileCategory::AntecedentsFamiliaux,
            ProfileCategory::Mesures,
            ProfileCategory::ProfessionnelsDeSante,
            ProfileCategory::Entourage,
            ProfileCategory::DirectivesAnticipees,
            ProfileCategory::DonOrganes,
            ProfileCategory::Vaccinations,
        ];
        for c in all {
            let json = serde_json::to_string(&c).unwrap();
            assert_eq!(json, format!("\"{}\"", c.as_str()));
            assert!(!c.label_fr().is_empty());
        }
        assert_eq!(
            ProfileCategory::Maladies.label_fr(),
            "Maladies et sujets de santé"
        );
    }
}
