//! The patient's access history and list of professionals, as both the API
//! and the webmail show them: every audit entry about the patient written by
//! someone else, with the actor's type and name, the action and the reason.

use serde::Serialize;

use super::WebServices;
pub use crate::access::history::{ACTOR_TYPES, HistoryLine};
use crate::store::StoreError;
use crate::store::accounts::Account;

/// The history of `p`, newest first, optionally of one actor type.
pub async fn history(
    s: &WebServices,
    p: &Account,
    only: Option<&str>,
) -> Result<Vec<HistoryLine>, StoreError> {
    crate::access::history::history(&s.store, p, only).await
}

/// A professional of the patient's list, named when we know them.
#[derive(Debug, Clone, Serialize)]
pub struct ProfessionalLine {
    /// Address.
    pub address: String,
    /// Name (or the address).
    pub name: String,
    /// Profession, when known.
    pub profession: Option<String>,
    /// `authorised` or `blocked`.
    pub status: String,
}

/// The patient's list of professionals.
pub async fn professionals(
    s: &WebServices,
    p: &Account,
) -> Result<Vec<ProfessionalLine>, StoreError> {
    let mut out = Vec::new();
    for row in s.store.patient_professionals(p.id).await? {
        let account = s.store.account_by_address(&row.professional).await?;
        out.push(ProfessionalLine {
            name: account
                .as_ref()
                .map_or_else(|| row.professional.clone(), Account::shown_name),
            profession: account.and_then(|a| a.profession),
            address: row.professional,
            status: row.status,
        });
    }
    Ok(out)
}

/// Applies a patient's choice about a professional: `authorised`, `blocked`,
/// or `removed` (what "unblock" does: access is not restored by itself).
pub async fn set_professional(
    s: &WebServices,
    p: &Account,
    professional: &str,
    status: &str,
) -> Result<bool, StoreError> {
    let Ok(addr) = crate::address::Address::parse(professional.trim()) else {
        return Ok(false);
    };
    let addr = addr.to_string();
    match status {
        "authorised" | "blocked" => s.store.set_professional_status(p.id, &addr, status).await?,
        "removed" => s.store.remove_professional(p.id, &addr).await?,
        _ => return Ok(false),
    }
    crate::audit::append(
        &s.store,
        &crate::audit::AuditEntry::new(
            &p.address,
            &format!("professional.{status}"),
            &p.address,
            &addr,
        ),
    )
    .await?;
    Ok(true)
}

/// Records the patient's emergency consents (ETREAT, BTG, MASKED), audited.
pub async fn set_consents(
    s: &WebServices,
    p: &Account,
    c: crate::store::access::Consents,
) -> Result<(), StoreError> {
    s.store.set_consents(p.id, c).await?;
    crate::audit::append(
        &s.store,
        &crate::audit::AuditEntry::new(
            &p.address,
            "consents.set",
            &p.address,
            &format!(
                "regulator={} break_glass={} masked={}",
                c.regulator, c.break_glass, c.masked
            ),
        ),
    )
    .await
}
