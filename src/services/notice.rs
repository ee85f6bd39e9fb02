//! The connected-services notice: every 90 days, a patient with a notice
//! address, at least one connected service and NOTIF_SYNCHRONIZED_SERVICE on
//! gets a content-free notice naming the services connected to their space
//! (so a forgotten connection is noticed). Each notice takes its slot in the
//! database first (`service_notices`), so it goes out once across restarts
//! and nodes; the time is the store's clock.

use std::time::Duration;

use tokio::sync::watch;

use crate::store::{Store, StoreError};
use crate::threads::notify::Notifier;

/// Days between two notices to one patient.
pub const PERIOD_DAYS: i64 = 90;

/// The notice's subject.
pub const SUBJECT: &str = "Services connectés à votre espace santé";

/// The notice's text for these service names (no health data).
pub fn body(names: &[String]) -> String {
    let mut out =
        String::from("Bonjour,\r\n\r\nCes services sont connectés à votre espace santé :\r\n");
    for n in names {
        out.push_str("- ");
        out.push_str(n);
        out.push_str("\r\n");
    }
    out.push_str(
        "\r\nPour voir ce qu'ils peuvent faire ou les déconnecter, connectez-vous à votre espace \
         santé et ouvrez « Services » puis « Mes services connectés ».\r\n\r\n\
         Ce message est envoyé automatiquement, merci de ne pas y répondre.\r\n",
    );
    out
}

/// Sends the notices due now; returns how many went out.
pub async fn tick(store: &Store, notifier: &Notifier) -> Result<usize, StoreError> {
    let before = store.now() - PERIOD_DAYS * 86_400;
    let mut sent = 0;
    for (patient_id, email) in store.service_notice_due(before).await? {
        let mut names = Vec::new();
        for g in store.grants_of(patient_id).await? {
            if let Some(s) = store.service(&g.service_id).await? {
                names.push(s.name);
            }
        }
        if names.is_empty() || !store.take_service_notice(patient_id, before).await? {
            continue;
        }
        notifier.send_notice(&email, SUBJECT, &body(&names)).await;
        sent += 1;
    }
    Ok(sent)
}

/// Runs [`tick`] every `every` until `stop`.
pub async fn run(
    store: Store,
    notifier: Notifier,
    every: Duration,
    mut stop: watch::Receiver<bool>,
) {
    let mut interval = tokio::time::interval(every);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = interval.tick() => {
                match tick(&store, &notifier).await {
                    Ok(0) => {}
                    Ok(n) => tracing::info!(notices = n, "connected-services notices sent"),
                    Err(e) => tracing::error!(error = %e, "connected-services notices"),
                }
            }
            _ = stop.changed() => break,
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_notice_names_services_only() {
        let b = super::body(&["Suivi Tension".into()]);
        assert!(b.contains("- Suivi Tension\r\n"));
    }
}
