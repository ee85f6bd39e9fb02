//! Who may read a patient's record: the one place the rules live. Every path
//! (the professionals' API, document deposit, any later one) asks [`decide`]
//! through [`check::Gate`], which also writes the audit row and tells the
//! patient of emergency accesses.
//!
//! - The patient always sees their own record; another patient never does.
//! - A service the patient connected reads or writes what the patient
//!   granted it (scopes), nothing of anyone else.
//! - A professional reads when authorised by the patient or in the care team
//!   of an establishment caring for the patient, and not blocked. Blocking
//!   takes effect at once; unblocking restores nothing by itself.
//! - Emergency: a SAMU / Centre 15 regulating physician reads unless the
//!   patient refused it (ETREAT); a professional whose profession may
//!   ([`profession_may_break_glass`], `access.break_glass_professions`) breaks
//!   the glass (BTG) with a written reason unless the patient refused it;
//!   organisation and application accounts never do. Breaking the glass is
//!   its own request (`POST …/break-glass`, rate-limited per professional);
//!   reads then use the access it opened. A blocked professional stays
//!   blocked in an emergency too.
//! - Documents the patient hid from professionals (MASQUE_PS) are never shown
//!   in normal access, and in an emergency only if the patient allowed it (MASKED).
//! - A closed space (`lifecycle/close.rs`: its account is disabled) is read by
//!   nobody, emergency or not ([`check::Gate`] refuses it before deciding).

pub mod check;
pub mod history;

use crate::store::access::Consents;

/// Who asks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Actor {
    /// The record's own patient.
    Owner,
    /// Any other patient.
    OtherPatient,
    /// A referenced service acting for a patient: `consented` when the
    /// patient granted it the scope of the call and this is that patient.
    Service {
        /// The patient's grant covers this call.
        consented: bool,
    },
    /// A professional, with what the store knows of them for this patient.
    Professional {
        /// In the patient's authorised list.
        authorised: bool,
        /// In the patient's blocked list.
        blocked: bool,
        /// In the care team of an establishment caring for the patient.
        care_team: bool,
        /// A SAMU / Centre 15 regulating physician.
        regulator: bool,
        /// A professional (not an organisation or application) whose
        /// profession may break the glass.
        may_break_glass: bool,
    },
}

/// How the professional asks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode<'a> {
    /// Ordinary access.
    Normal,
    /// Emergency access by a regulating physician.
    Regulation,
    /// Break the glass, with the reason typed by the professional.
    BreakGlass(&'a str),
}

/// Why access is granted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Grant {
    /// The patient themself.
    Owner,
    /// Authorised professional or care team member.
    Authorised,
    /// Regulating physician in an emergency.
    Regulation,
    /// Break-glass access.
    BreakGlass,
    /// A service the patient connected, within the scopes granted.
    Service,
}

impl Grant {
    /// Emergency accesses are notified to the patient.
    pub fn is_emergency(self) -> bool {
        matches!(self, Grant::Regulation | Grant::BreakGlass)
    }
}

/// Why access is refused (the code goes to the audit trail and the API).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Denial {
    /// Another patient.
    #[error("not your record")]
    OtherPatient,
    /// The patient blocked this professional.
    #[error("blocked by the patient")]
    Blocked,
    /// Neither authorised nor in a care team.
    #[error("not authorised by the patient")]
    NotAuthorised,
    /// Regulation asked by someone who is not a regulating physician.
    #[error("not a regulating physician")]
    NotRegulator,
    /// The patient refused emergency access by regulators (ETREAT).
    #[error("the patient refused emergency access (ETREAT)")]
    RegulationRefused,
    /// The patient refused break-glass access (BTG).
    #[error("the patient refused break-glass access (BTG)")]
    BreakGlassRefused,
    /// Break the glass without a written reason.
    #[error("break-glass access needs a written reason")]
    ReasonRequired,
    /// Break the glass by an account whose kind or profession may not.
    #[error("your profession may not break the glass")]
    NotEligible,
    /// More break-glass accesses than `access.break_glass_per_hour`.
    #[error("too many break-glass accesses in the last hour")]
    TooManyBreakGlass,
    /// An emergency read without a live break-glass access of this
    /// professional for this patient.
    #[error("no break-glass access open for this patient")]
    BreakGlassNotOpen,
    /// A document hidden from professionals (and not shown in emergencies).
    #[error("document hidden by the patient")]
    Hidden,
    /// The patient's space is closed (archived until its purge) or disabled:
    /// nobody reads or deposits, emergency or not.
    #[error("the patient's space is closed")]
    Closed,
    /// A service without the patient's consent for this call.
    #[error("not granted to this service by the patient")]
    NotGranted,
}

/// The decision for one actor, one way of asking, one document (or the record
/// as a whole with `hidden = false`).
pub fn decide(
    actor: Actor,
    mode: Mode<'_>,
    consents: Consents,
    hidden: bool,
) -> Result<Grant, Denial> {
    let (authorised, blocked, care_team, regulator, may_break_glass) = match actor {
        Actor::Owner => return Ok(Grant::Owner),
        Actor::OtherPatient => return Err(Denial::OtherPatient),
        // The patient's own choice: hidden documents stay theirs to share.
        Actor::Service { consented: true } => return Ok(Grant::Service),
        Actor::Service { consented: false } => return Err(Denial::NotGranted),
        Actor::Professional {
            authorised,
            blocked,
            care_team,
            regulator,
            may_break_glass,
        } => (authorised, blocked, care_team, regulator, may_break_glass),
    };
    if blocked {
        return Err(Denial::Blocked);
    }
    let grant = match mode {
        Mode::Normal if authorised || care_team => Grant::Authorised,
        Mode::Normal => return Err(Denial::NotAuthorised),
        Mode::Regulation if !regulator => return Err(Denial::NotRegulator),
        Mode::Regulation if !consents.regulator => return Err(Denial::RegulationRefused),
        Mode::Regulation => Grant::Regulation,
        Mode::BreakGlass(_) if !may_break_glass => return Err(Denial::NotEligible),
        Mode::BreakGlass(reason) if reason.trim().is_empty() => {
            return Err(Denial::ReasonRequired);
        }
        Mode::BreakGlass(_) if !consents.break_glass => return Err(Denial::BreakGlassRefused),
        Mode::BreakGlass(_) => Grant::BreakGlass,
    };
    if hidden && !(grant.is_emergency() && consents.masked) {
        return Err(Denial::Hidden);
    }
    Ok(grant)
}

/// Lower case, French accents and ligatures folded, hyphens and runs of
/// spaces made one space: "Sage-Femme" and "sage  femme" compare equal.
fn fold(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.trim().chars().flat_map(char::to_lowercase) {
        let folded: &str = match c {
            'à' | 'â' | 'ä' | 'á' | 'ã' => "a",
            'é' | 'è' | 'ê' | 'ë' => "e",
            'î' | 'ï' | 'í' | 'ì' => "i",
            'ô' | 'ö' | 'ó' | 'ò' | 'õ' => "o",
            'ù' | 'û' | 'ü' | 'ú' => "u",
            'ÿ' => "y",
            'ç' => "c",
            'ñ' => "n",
            'œ' => "oe",
            'æ' => "ae",
            '-' | '_' | '\'' | '’' => " ",
            c if c.is_whitespace() => " ",
            _ => {
                out.push(c);
                continue;
            }
        };
        if folded == " " && (out.is_empty() || out.ends_with(' ')) {
            continue;
        }
        out.push_str(folded);
    }
    out.trim_end().to_string()
}

/// Whether an account's `profession` is one of `allowed`
/// (`access.break_glass_professions`): an entry made only of digits is a
/// profession code, matched exactly ("10" for médecin); any other entry
/// matches as a prefix of the profession, ignoring case, accents, hyphens and
/// repeated spaces, so "médecin" matches "Médecin urgentiste" and "MEDECIN",
/// and "infirmier" matches "Infirmière". An absent or empty profession never
/// matches.
pub fn profession_may_break_glass(profession: Option<&str>, allowed: &[String]) -> bool {
    let Some(profession) = profession.map(fold).filter(|p| !p.is_empty()) else {
        return false;
    };
    allowed.iter().any(|entry| {
        let entry = fold(entry);
        if entry.is_empty() {
            false
        } else if entry.bytes().all(|b| b.is_ascii_digit()) {
            profession == entry
        } else {
            profession.starts_with(&entry)
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const PRO: Actor = Actor::Professional {
        authorised: false,
        blocked: false,
        care_team: false,
        regulator: false,
        may_break_glass: true,
    };

    fn pro(authorised: bool, blocked: bool, care_team: bool, regulator: bool) -> Actor {
        Actor::Professional {
            authorised,
            blocked,
            care_team,
            regulator,
            may_break_glass: true,
        }
    }

    #[test]
    fn professions_that_may_break_the_glass() {
        let allowed: Vec<String> = crate::config::AccessSettings::default()
            .break_glass_professions
            .into_iter()
            .chain(["10".to_string()])
            .collect();
        for yes in [
            "Médecin",
            "MEDECIN",
            "médecin urgentiste",
            "  Médecin  généraliste ",
            "Infirmière",
            "infirmier anesthésiste",
            "Sage-femme",
            "sage femme",
            "SAGE-FEMME",
            "Pharmacien",
            "Pharmacienne",
            "10",
        ] {
            assert!(profession_may_break_glass(Some(yes), &allowed), "{yes}");
        }
        for no in [
            "Masseur-kinésithérapeute",
            "Chirurgien-dentiste",
            "Secrétaire médicale",
            "Aide-soignant",
            "100",
            "1",
            "",
            "   ",
        ] {
            assert!(!profession_may_break_glass(Some(no), &allowed), "{no}");
        }
        assert!(!profession_may_break_glass(None, &allowed));
        assert!(!profession_may_break_glass(Some("Médecin"), &[]));
    }

    #[test]
    fn only_eligible_professionals_break_the_glass() {
        let c = Consents {
            regulator: true,
            break_glass: true,
            masked: true,
        };
        let not_eligible = Actor::Professional {
            authorised: true,
            blocked: false,
            care_team: false,
            regulator: false,
            may_break_glass: false,
        };
        assert_eq!(
            decide(not_eligible, Mode::BreakGlass("urgence"), c, false),
            Err(Denial::NotEligible)
        );
        // Ordinary access is not affected.
        assert_eq!(
            decide(not_eligible, Mode::Normal, c, false),
            Ok(Grant::Authorised)
        );
    }

    /// Every actor × consents (all allowed / all refused) × document (normal /
    /// hidden), with the expected outcome.
    #[test]
    fn decision_table() {
        let allowed = Consents {
            regulator: true,
            break_glass: true,
            masked: true,
        };
        let refused = Consents {
            regulator: false,
            break_glass: false,
            masked: false,
        };
        use Denial::*;
        use Grant as G;
        type Row = (
            &'static str,
            Actor,
            Mode<'static>,
            [Result<Grant, Denial>; 4],
        );
        // Columns: (allowed, normal), (allowed, hidden), (refused, normal), (refused, hidden).
        let table: Vec<Row> = vec![
            ("patient", Actor::Owner, Mode::Normal, [Ok(G::Owner); 4]),
            (
                "other patient",
                Actor::OtherPatient,
                Mode::Normal,
                [Err(OtherPatient); 4],
            ),
            (
                "authorised professional",
                pro(true, false, false, false),
                Mode::Normal,
                [
                    Ok(G::Authorised),
                    Err(Hidden),
                    Ok(G::Authorised),
                    Err(Hidden),
                ],
            ),
            (
                "unauthorised professional",
                PRO,
                Mode::Normal,
                [Err(NotAuthorised); 4],
            ),
            (
                "blocked professional",
                pro(true, true, false, false),
                Mode::Normal,
                [Err(Blocked); 4],
            ),
            (
                "blocked professional breaking the glass",
                pro(false, true, false, false),
                Mode::BreakGlass("arrêt cardiaque"),
                [Err(Blocked); 4],
            ),
            (
                "care-team member",
                pro(false, false, true, false),
                Mode::Normal,
                [
                    Ok(G::Authorised),
                    Err(Hidden),
                    Ok(G::Authorised),
                    Err(Hidden),
                ],
            ),
            (
                "regulator",
                pro(false, false, false, true),
                Mode::Regulation,
                [
                    Ok(G::Regulation),
                    Ok(G::Regulation),
                    Err(RegulationRefused),
                    Err(RegulationRefused),
                ],
            ),
            (
                "regulator without emergency",
                pro(false, false, false, true),
                Mode::Normal,
                [Err(NotAuthorised); 4],
            ),
            (
                "non-regulator asking regulation",
                PRO,
                Mode::Regulation,
                [Err(NotRegulator); 4],
            ),
            (
                "break-glass with reason",
                PRO,
                Mode::BreakGlass("patient inconscient aux urgences"),
                [
                    Ok(G::BreakGlass),
                    Ok(G::BreakGlass),
                    Err(BreakGlassRefused),
                    Err(BreakGlassRefused),
                ],
            ),
            (
                "break-glass without reason",
                PRO,
                Mode::BreakGlass("  "),
                [Err(ReasonRequired); 4],
            ),
        ];
        for (name, actor, mode, expected) in table {
            let got = [
                decide(actor, mode, allowed, false),
                decide(actor, mode, allowed, true),
                decide(actor, mode, refused, false),
                decide(actor, mode, refused, true),
            ];
            assert_eq!(got, expected, "{name}");
        }
    }

    #[test]
    fn hidden_documents_in_an_emergency_follow_masked_alone() {
        let c = Consents {
            regulator: true,
            break_glass: true,
            masked: false,
        };
        assert_eq!(
            decide(PRO, Mode::BreakGlass("urgence"), c, true),
            Err(Denial::Hidden)
        );
        let c = Consents { masked: true, ..c };
        assert_eq!(
            decide(PRO, Mode::BreakGlass("urgence"), c, true),
            Ok(Grant::BreakGlass)
        );
    }
}
