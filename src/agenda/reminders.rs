//! Content-free reminders of the agenda: on the day before and on the day
//! of an appointment (each occurrence, once), and of a recommendation due
//! (its next cycle included), for
//! patients who gave a notice address and kept the switch on
//! (NOTIF_APPOINTMENT, NOTIF_DEPISTAGE on the settings page). Each reminder
//! takes its slot in the database before it goes out (`agenda_reminders`),
//! so it is sent once, across restarts and nodes. Days are Europe/Paris days.

use std::time::Duration;

use chrono::{Days, NaiveDate, TimeZone};
use tokio::sync::watch;

use super::ical::DEFAULT_ZONE;
use super::recommend;
use super::{Limits, expand};
use crate::store::{Store, StoreError};
use crate::threads::notify::Notifier;

/// The day of `unix` in the patients' zone.
fn day_of(unix: i64) -> Option<NaiveDate> {
    DEFAULT_ZONE
        .timestamp_opt(unix, 0)
        .single()
        .map(|d| d.date_naive())
}

/// Looks once for reminders due now and sends them; returns how many went out.
pub async fn tick(store: &Store, notifier: &Notifier) -> Result<usize, StoreError> {
    let now = store.now();
    let Some(today) = day_of(now) else {
        return Ok(0);
    };
    let tomorrow = today.checked_add_days(Days::new(1)).unwrap_or(today);
    let limits = Limits::default();
    let mut sent = 0;
    for (patient_id, ins, email, appointments, prevention) in store.reminder_targets().await? {
        if appointments {
            let rows = store
                .appointments_of(patient_id, now - 86_400, now + 3 * 86_400)
                .await?;
            for o in expand::occurrences(&rows, now - 86_400, now + 3 * 86_400, &limits) {
                let Some(day) = day_of(o.start) else {
                    continue;
                };
                if o.cancelled || o.start < now || (day != today && day != tomorrow) {
                    continue;
                }
                let subject = format!("{}@{}", o.id, o.start);
                if store
                    .take_reminder_slot(patient_id, "appointment", &subject, &day.to_string())
                    .await?
                {
                    notifier.reminder(&email, true).await;
                    sent += 1;
                }
            }
        }
        if prevention {
            for r in recommend::of_patient(store, patient_id, ins.as_deref(), today).await? {
                let Some(due) = r.due_date else {
                    continue;
                };
                if due != today && due != tomorrow {
                    continue;
                }
                if store
                    .take_reminder_slot(patient_id, "recommendation", &r.code, &due.to_string())
                    .await?
                {
                    notifier.reminder(&email, false).await;
                    sent += 1;
                }
            }
        }
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
                    Ok(n) => tracing::info!(reminders = n, "agenda reminders sent"),
                    Err(e) => tracing::error!(error = %e, "agenda reminders"),
                }
            }
            _ = stop.changed() => break,
        }
    }
}
