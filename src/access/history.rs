//! The patient's access history, as the API, the webmail and the export of
//! the space show it: every audit entry about the patient written by someone
//! else (and the patient's own exports of their space), with the actor's type
//! and name, the action in French and the reason.

use serde::Serialize;

use super::check::{ACCESS_ALLOWED, ACCESS_REFUSED, AccessDetail};
use crate::identity::AccountKind;
use crate::store::accounts::Account;
use crate::store::export::EXPORT_ACTION;
use crate::store::{Store, StoreError};

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
    /// An export of the whole space (left out of the exported history).
    #[serde(skip)]
    pub exported: bool,
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
        (EXPORT_ACTION, _) => "Téléchargement de l'espace complet".into(),
        (other, _) => other.to_string(),
    }
}

/// The history of `p`, newest first, optionally of one actor type.
pub async fn history(
    store: &Store,
    p: &Account,
    only: Option<&str>,
) -> Result<Vec<HistoryLine>, StoreError> {
    let mut out = Vec::new();
    let mut names: std::collections::HashMap<String, (&'static str, String)> =
        std::collections::HashMap::new();
    for r in crate::audit::history_of(store, &p.address).await? {
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
            let found = store.account_by_address(&actor).await?;
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
            exported: r.entry.action == EXPORT_ACTION,
        });
    }
    Ok(out)
}
