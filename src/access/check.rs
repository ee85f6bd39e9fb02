//! The gate every read or deposit of a patient's record goes through: it
//! gathers what [`super::decide`] needs from the store, decides, writes one
//! audit row per attempt (allowed or refused, with the reason typed for a
//! break-glass access), and notifies the patient of emergency accesses (at
//! most one notice per patient per `notify.window_secs`; every access is in
//! the history).
//!
//! Breaking the glass is [`Gate::break_glass`]: eligibility (kind and
//! profession), the per-professional rate limit (`access.break_glass_per_hour`,
//! counted in the database so every node agrees), the patient's consent, one
//! audit row, and a break-glass access stored for `access.break_glass_valid_secs`;
//! reads in break-glass mode ([`Gate::check`]) need that open access and carry
//! its reason.

use serde::{Deserialize, Serialize};

use super::{Actor, Denial, Grant, Mode, decide, profession_may_break_glass};
use crate::audit::{self, AuditEntry};
use crate::config::AccessSettings;
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
    /// `SERVICE_TIERS` for a referenced service, absent otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor_type: Option<String>,
    /// The service's name, for a referenced service.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
}

/// Actor type of an access by a referenced service (the audit detail).
pub const SERVICE_TIERS: &str = "SERVICE_TIERS";

/// Audit actor of a referenced service: `service:` and its id.
pub fn service_actor(service_id: &str) -> String {
    format!("service:{service_id}")
}

/// The service id of a `service:ID` actor (an appointment a service booked
/// has it as organiser), None for anyone else.
pub fn service_of_actor(actor: &str) -> Option<&str> {
    actor.strip_prefix("service:")
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

/// Audit `what` of opening a break-glass access.
pub const BREAK_GLASS_WHAT: &str = "break-glass";

/// The store and notifier the gate needs.
#[derive(Debug, Clone)]
pub struct Gate {
    /// The store.
    pub store: Store,
    /// Patient notices (emergency accesses), when configured.
    pub notifier: Option<Notifier>,
    /// Who may break the glass, how often, for how long.
    pub settings: AccessSettings,
}

fn grant_name(g: Grant) -> &'static str {
    match g {
        Grant::Owner => "owner",
        Grant::Authorised => "authorised",
        Grant::Regulation => "regulation",
        Grant::BreakGlass => "break_glass",
        Grant::Service => "service",
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
            may_break_glass: self.may_break_glass(actor),
        })
    }

    /// Whether `actor`'s kind and profession may break the glass at all.
    pub fn may_break_glass(&self, actor: &Account) -> bool {
        actor.kind == AccountKind::Professional
            && profession_may_break_glass(
                actor.profession.as_deref(),
                &self.settings.break_glass_professions,
            )
    }

    /// Opens a break-glass access of `actor` to `patient`'s record (None: no
    /// such patient) with the typed `reason`. Eligibility and the rate limit
    /// depend on the professional alone and are checked first, so their
    /// answers say nothing of the patient; then the rules decide. Every
    /// attempt on an existing patient is audited on their trail; an opened
    /// access notifies them (grouped). Returns when the access ends.
    pub async fn break_glass(
        &self,
        actor: &Account,
        patient: Option<&Account>,
        reason: &str,
    ) -> Result<Result<i64, Denial>, StoreError> {
        let reason = reason.trim();
        let now = self.store.now();
        let mut decision = if !self.may_break_glass(actor) {
            Err(Denial::NotEligible)
        } else if self
            .store
            .break_glass_count_since(actor.id, now - 3600)
            .await?
            >= i64::from(self.settings.break_glass_per_hour)
        {
            Err(Denial::TooManyBreakGlass)
        } else if patient.is_some_and(|p| p.disabled) {
            Err(Denial::Closed)
        } else if let Some(patient) = patient {
            let who = self.actor(actor, patient).await?;
            let consents = self.store.consents(patient.id).await?;
            decide(who, Mode::BreakGlass(reason), consents, false).map(|_| ())
        } else {
            // No record: the caller answers as for any refusal.
            Err(Denial::BreakGlassNotOpen)
        };
        let Some(patient) = patient else {
            return Ok(decision.map(|()| now));
        };
        let expires = now + self.settings.break_glass_valid_secs as i64;
        // The count above answers early; this one is exact under concurrency.
        if decision.is_ok()
            && !self
                .store
                .open_break_glass(
                    actor.id,
                    patient.id,
                    reason,
                    now,
                    expires,
                    i64::from(self.settings.break_glass_per_hour),
                )
                .await?
        {
            decision = Err(Denial::TooManyBreakGlass);
        }
        self.audit(
            actor,
            patient,
            BREAK_GLASS_WHAT,
            decision.map(|()| Grant::BreakGlass),
            (!reason.is_empty()).then(|| reason.to_string()),
        )
        .await?;
        if let Err(d) = decision {
            return Ok(Err(d));
        }
        self.notify_emergency(patient);
        Ok(Ok(expires))
    }

    fn notify_emergency(&self, patient: &Account) {
        if let Some(n) = &self.notifier {
            n.spawn_emergency_access_for(patient.id);
        }
    }

    async fn audit(
        &self,
        actor: &Account,
        patient: &Account,
        what: &str,
        decision: Result<Grant, Denial>,
        reason: Option<String>,
    ) -> Result<(), StoreError> {
        if decision == Ok(Grant::Owner) {
            return Ok(());
        }
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
            actor_type: None,
            service: None,
        };
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
        audit::append(&self.store, &entry).await
    }

    /// Decides and audits; a regulator's emergency access notifies the
    /// patient. `hidden` is the document's MASQUE_PS flag (false for the
    /// record as a whole). In break-glass mode the reason given is ignored:
    /// the professional's open break-glass access for this patient (see
    /// [`Gate::break_glass`]) supplies it, and without one the read is refused.
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
        let opened = match mode {
            Mode::BreakGlass(_) => {
                self.store
                    .open_break_glass_reason(actor.id, patient.id)
                    .await?
            }
            _ => None,
        };
        let (decision, reason) = match (mode, &opened) {
            // A closed space: refused here, the one place, before any rule.
            _ if patient.disabled => (Err(Denial::Closed), None),
            (Mode::BreakGlass(_), None) => (Err(Denial::BreakGlassNotOpen), None),
            (Mode::BreakGlass(_), Some(r)) => (
                decide(who, Mode::BreakGlass(r), consents, hidden),
                Some(r.clone()),
            ),
            (m, _) => (decide(who, m, consents, hidden), None),
        };
        self.audit(actor, patient, what, decision, reason).await?;
        if decision == Ok(Grant::Regulation) {
            self.notify_emergency(patient);
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

    /// Decides and audits a referenced service's call for `patient`:
    /// `consented` when the token is the patient's and its granted scopes
    /// cover the call. Every attempt is on the patient's trail, with actor
    /// type [`SERVICE_TIERS`] and the service's name.
    pub async fn check_service(
        &self,
        service_id: &str,
        service_name: &str,
        patient: &Account,
        what: &str,
        consented: bool,
    ) -> Result<Result<Grant, Denial>, StoreError> {
        // A closed (or disabled) space is read by nobody, services included.
        let decision = if patient.disabled {
            Err(Denial::Closed)
        } else {
            decide(
                Actor::Service { consented },
                Mode::Normal,
                crate::store::access::Consents::default(),
                false,
            )
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
            reason: None,
            profession: None,
            rpps: None,
            establishment: None,
            actor_type: Some(SERVICE_TIERS.into()),
            service: Some(service_name.to_string()),
        };
        let entry = AuditEntry::new(
            &service_actor(service_id),
            if decision.is_ok() {
                ACCESS_ALLOWED
            } else {
                ACCESS_REFUSED
            },
            &patient.address,
            &serde_json::to_string(&detail).unwrap_or_default(),
        );
        audit::append(&self.store, &entry).await?;
        Ok(decision)
    }
}
