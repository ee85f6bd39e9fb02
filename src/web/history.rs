//! The patient's access history and list of professionals, as both the API
//! and the webmail show them: every audit entry about the patient written by
//! someone else, with the actor's type and name, the action and the reason.

use serde::Serialize;

use super::WebServices;
use crate::access::check::{ACCESS_ALLOWED, ACCESS_REFUSED, AccessDetail};
use crate::identity::AccountKind;
use crate::store::StoreError;
use crate::store::accounts::Account;

/// The actor types a patient can filter on.
pub const ACTOR_TYPES: [(&str, &str); 5] = [
    ("professionnel", "Professionnel"),
    ("etablissement", "Établissement"),
    ("service", "Service"),
    ("patient", "Patient"),
    ("systeme", "Système"),
];

/// One line of the history.
#[derive(Debug, Clone, Serialize)]
pub struct HistoryLine {
    /// Unix seconds.
    pub at: i64,
    /// `professionnel`, `etablissement`, `service`, `patient`, `systeme`.
    pub actor_type: &'static str,
    /// Who (name, else address).
    pub actor: String,
    /// Their profession and establishment, when known ("Médecin, CHU de Test").
    pub actor_details: Option<String>,
    /// What, in French.
    pub action: String,
    /// Why (the reason typed for a break-glass access) or on what.
    pub reason: Option<String>,
    /// The access was refused.
    pub refused: bool,
}

fn action_fr(action: &str, detail: &Option<AccessDetail>) -> String {
    match (action, detail) {
        (ACCESS_ALLOWED, Some(d)) => match d.basis.as_str() {
            "regulation" => "Accès en urgence (régulation SAMU – Centre 15)".into(),
            "break_glass" => "Accès en urgence (bris de glace)".into(),
            "service" => "Accès par un service connecté".into(),
            _ => "Consultation de votre dossier".into(),
        },
        (ACCESS_REFUSED, Some(d)) if d.actor_type.is_some() => {
            "Accès d'un service à votre dossier refusé".into()
        }
        (ACCESS_REFUSED, _) => "Accès à votre dossier refusé".into(),
        ("service.connect", _) => "Service connecté".into(),
        ("service.disconnect", _) => "Service déconnecté".into(),
        ("thread.access_denied", _) => "Tentative d'accès à un de vos échanges, refusée".into(),
        ("thread.open", _) => "Nouvel échange ouvert".into(),
        ("thread.message", _) => "Message reçu".into(),
        ("thread.end", _) => "Fin d'un échange".into(),
        ("account.create", _) => "Création de votre espace".into(),
        ("account.activation_code", _) => "Code d'activation émis".into(),
        ("account.password", _) => "Mot de passe changé par l'opérateur".into(),
        ("careteam.patient", _) => "Prise en charge par un établissement".into(),
        (other, _) => other.to_string(),
    }
}

/// The history of `p`, newest first, optionally of one actor type.
pub async fn history(
    s: &WebServices,
    p: &Account,
    only: Option<&str>,
) -> Result<Vec<HistoryLine>, StoreError> {
    let mut out = Vec::new();
    let mut names: std::collections::HashMap<String, (&'static str, String)> =
        std::collections::HashMap::new();
    for r in crate::audit::by_others(&s.store, &p.address).await? {
        let actor = r.entry.actor.clone();
        let detail: Option<AccessDetail> = serde_json::from_str(&r.entry.detail).ok();
        if actor.starts_with("service:") && !names.contains_key(&actor) {
            // A referenced service: named by the audit detail (SERVICE_TIERS).
            let name = detail
                .as_ref()
                .and_then(|d| d.service.clone())
                .unwrap_or_else(|| actor.trim_start_matches("service:").to_string());
            names.insert(actor.clone(), ("service", name));
        }
        if !names.contains_key(&actor) {
            let found = s.store.account_by_address(&actor).await?;
            let v = match found {
                Some(a) => (
                    match a.kind {
                        AccountKind::Professional => "professionnel",
                        AccountKind::Organisation => "etablissement",
                        AccountKind::Application => "service",
                        AccountKind::Patient => "patient",
                    },
                    a.shown_name(),
                ),
                None if actor == "operator" || actor == "system" => {
                    ("systeme", "Opérateur du service".to_string())
                }
                None => ("professionnel", actor.clone()),
            };
            names.insert(actor.clone(), v);
        }
        let (actor_type, name) = names.get(&actor).cloned().unwrap_or(("systeme", actor));
        if only.is_some_and(|t| t != actor_type) {
            continue;
        }
        out.push(HistoryLine {
            at: r.at,
            actor_type,
            actor: name,
            actor_details: detail.as_ref().and_then(|d| {
                let parts: Vec<&str> = [d.profession.as_deref(), d.establishment.as_deref()]
                    .into_iter()
                    .flatten()
                    .collect();
                (!parts.is_empty()).then(|| parts.join(", "))
            }),
            action: action_fr(&r.entry.action, &detail),
            reason: detail.as_ref().and_then(|d| d.reason.clone()),
            refused: r.entry.action == ACCESS_REFUSED || r.entry.action.ends_with("_denied"),
        });
    }
    Ok(out)
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
