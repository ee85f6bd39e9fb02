//! The gate every read or deposit of a patient's record goes through: it
//! gathers what [`super::decide`] needs from the store, decides, writes one
//! audit row per attempt (allowed or refused, with the reason typed for a
//! break-glass access), and notifies the patient of emergency accesses.

use serde::{Deserialize, Serialize};

use super::{Actor, Denial, Grant, Mode, decide};
use crate::audit::{self, AuditEntry};
use crate::identity::AccountKind;
use crate::store::accounts::Account;
use crate::store::{Store, StoreError};
use crate::threads::notify::Notifier;

/// What an audit row of an access says, as JSON in its `detail` (read back by
/// the patient's access history).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessDetail {
    /// What was asked (`documents`, `document 12`, `profile`, `deposit`).
    pub what: String,
    /// `allowed` or `refused`.
    pub outcome: String,
    /// The grant (`authorised`, `regulation`, `break_glass`) or the denial.
    pub basis: String,
    /// The reason typed for a break-glass access.
    pub reason: Option<String>,
    /// The acting professional's profession.
    #[serde(default)]
    pub profession: Option<String>,
    /// Their RPPS number.
    #[serde(default)]
    pub rpps: Option<String>,
    /// The establishment they act for.
    #[serde(default)]
    pub establishment: Option<String>,
}

/// An access the gate allowed, with what it decided on: listing a record
/// then asks [`Access::shows`] for each hidden item without another query or
/// another audit row.
#[derive(Debug, Clone, Copy)]
pub struct Access {
    /// Why it was allowed.
    pub grant: Grant,
    who: Actor,
    consents: crate::store::access::Consents,
    mode: Mode<'static>,
}

impl Access {
    /// May this access see an item whose document is hidden (`hidden`) or not?
    pub fn shows(&self, hidden: bool) -> bool {
        decide(self.who, self.mode, self.consents, hidden).is_ok()
    }
}

/// Audit action of an allowed access.
pub const ACCESS_ALLOWED: &str = "record.access";
/// Audit action of a refused access.
pub const ACCESS_REFUSED: &str = "record.refused";

/// The store and notifier the gate needs.
#[derive(Debug, Clone)]
pub struct Gate {
    /// The store.
    pub store: Store,
    /// Patient notices (emergency accesses), when configured.
    pub notifier: Option<Notifier>,
}

fn grant_name(g: Grant) -> &'static str {
    match g {
        Grant::Owner => "owner",
        Grant::Authorised => "authorised",
        Grant::Regulation => "regulation",
        Grant::BreakGlass => "break_glass",
    }
}

impl Gate {
    /// How the rules see `actor` for `patient`.
    pub async fn actor(&self, actor: &Account, patient: &Account) -> Result<Actor, StoreError> {
        if actor.id == patient.id {
            return Ok(Actor::Owner);
        }
        if actor.kind == AccountKind::Patient {
            return Ok(Actor::OtherPatient);
        }
        let status = self
            .store
            .professional_status(patient.id, &actor.address)
            .await?;
        Ok(Actor::Professional {
            authorised: status.as_deref() == Some("authorised"),
            blocked: status.as_deref() == Some("blocked"),
            care_team: self.store.in_care_team(patient.id, &actor.address).await?,
            regulator: actor.emergency_regulator,
        })
    }

    /// Decides, audits and (for emergencies) notifies. `hidden` is the
    /// document's MASQUE_PS flag (false for the record as a whole).
    pub async fn check(
        &self,
        actor: &Account,
        patient: &Account,
        mode: Mode<'_>,
        what: &str,
        hidden: bool,
    ) -> Result<Result<Access, Denial>, StoreError> {
        let who = self.actor(actor, patient).await?;
        let consents = self.store.consents(patient.id).await?;
        let decision = decide(who, mode, consents, hidden);
        let reason = match mode {
            Mode::BreakGlass(r) if !r.trim().is_empty() => Some(r.trim().to_string()),
            _ => None,
        };
        let detail = AccessDetail {
            what: what.to_string(),
            outcome: if decision.is_ok() {
                "allowed"
            } else {
                "refused"
            }
            .into(),
            basis: match decision {
                Ok(g) => grant_name(g).into(),
                Err(d) => format!("{d:?}"),
            },
            reason,
            profession: actor.profession.clone(),
            rpps: actor.rpps.clone(),
            establishment: actor.establishment.clone(),
        };
        if decision != Ok(Grant::Owner) {
            let entry = AuditEntry::new(
                &actor.address,
                if decision.is_ok() {
                    ACCESS_ALLOWED
                } else {
                    ACCESS_REFUSED
                },
                &patient.address,
                &serde_json::to_string(&detail).unwrap_or_default(),
            );
            audit::append(&self.store, &entry).await?;
        }
        if let (Ok(g), Some(n)) = (decision, &self.notifier)
            && g.is_emergency()
        {
            let n = n.clone();
            let patient_id = patient.id;
            tokio::spawn(async move { n.emergency_access_for(patient_id).await });
        }
        Ok(decision.map(|grant| Access {
            grant,
            who,
            consents,
            mode: match mode {
                Mode::Normal => Mode::Normal,
                Mode::Regulation => Mode::Regulation,
                // The reason was checked and audited above; decide() only asks
                // that one was given.
                Mode::BreakGlass(_) => Mode::BreakGlass("reason given"),
            },
        }))
    }
}
