//! Legal representatives of minors: a representative (a patient with a
//! space of their own) acts in the child's space from their own login. The
//! links come from the provisioning file (`representatives` column) or the
//! operator (`mes representative add|remove`); they end when the child
//! turns 18 (`end_due`, the background task of `mes serve`, on the store's
//! clock), and the young adult gets a content-free notice.

use std::time::Duration;

use crate::identity::AccountKind;
use crate::identity::ins::{Ins, InsError};
use crate::store::audit::AuditEntry;
use crate::store::{Store, StoreError};
use crate::threads::notify::NoticeSender;

/// Links ended per pass before looking again.
pub const END_BATCH: i64 = 100;

/// Subject of the notice at the end of the representation (French).
pub const ADULT_SUBJECT: &str = "Votre espace santé est désormais le vôtre";

/// Its body: no health data, no name.
pub const ADULT_BODY: &str = "Bonjour,\r\n\r\n\
     Vous êtes désormais majeur : vos représentants légaux n'ont plus accès à votre espace \
     santé. Vous seul pouvez maintenant le consulter.\r\n\r\n\
     Ce message est envoyé automatiquement, merci de ne pas y répondre.\r\n";

/// Why a link was refused.
#[derive(Debug, thiserror::Error)]
pub enum RepresentationError {
    /// The child's INS is not one.
    #[error("not an INS: {0}")]
    Ins(#[from] InsError),
    /// The representative's address is not a patient account with an INS.
    #[error("the representative must be an existing patient account")]
    NotPatient,
    /// Someone cannot represent themself.
    #[error("a patient cannot be their own representative")]
    Themself,
    /// Removing a link that does not exist.
    #[error("no such representation")]
    Unknown,
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The representative's INS from their address.
async fn parent_ins(store: &Store, parent: &str) -> Result<String, RepresentationError> {
    store
        .account_by_address(parent)
        .await?
        .filter(|a| a.kind == AccountKind::Patient)
        .and_then(|a| a.ins)
        .ok_or(RepresentationError::NotPatient)
}

/// Makes the patient at `parent` a representative of the child `child_ins`;
/// false when they already were.
pub async fn add(
    store: &Store,
    child_ins: &str,
    parent: &str,
) -> Result<bool, RepresentationError> {
    let child = Ins::parse(child_ins)?;
    let parent_ins = parent_ins(store, parent).await?;
    if parent_ins == child.as_str() {
        return Err(RepresentationError::Themself);
    }
    let entry = AuditEntry::new(
        "operator",
        "representative.add",
        parent,
        "legal representative",
    );
    Ok(store
        .add_representative(child.as_str(), &parent_ins, &entry)
        .await?)
}

/// Ends the representation of `child_ins` by the patient at `parent`.
pub async fn remove(
    store: &Store,
    child_ins: &str,
    parent: &str,
) -> Result<(), RepresentationError> {
    let child = Ins::parse(child_ins)?;
    let parent_ins = parent_ins(store, parent).await?;
    let entry = AuditEntry::new(
        "operator",
        "representative.remove",
        parent,
        "legal representative removed",
    );
    if store
        .remove_representative(child.as_str(), &parent_ins, &entry)
        .await?
    {
        Ok(())
    } else {
        Err(RepresentationError::Unknown)
    }
}

/// Ends the representations of every child who turned 18 by the store's
/// clock, each with an audit row and a notice to the young adult (when an
/// address is known and `sender` is set); returns how many children.
pub async fn end_due(store: &Store, sender: Option<&NoticeSender>) -> Result<u64, StoreError> {
    let born_by = adult_birth_date(store.now());
    let mut ended = 0;
    loop {
        let due = store.coming_of_age(&born_by, END_BATCH).await?;
        let mut n = 0;
        for d in &due {
            let target = store
                .account_by_ins(&d.child_ins)
                .await?
                .map(|a| a.address)
                .unwrap_or_else(|| super::ins_hash(&d.child_ins));
            let entry = AuditEntry::new(
                "system",
                "representative.end",
                &target,
                "the patient came of age",
            );
            if !store.end_representation(&d.child_ins, &entry).await? {
                continue;
            }
            n += 1;
            if let (Some(email), Some(sender)) = (&d.email, sender)
                && let Err(e) = sender.send(email, ADULT_SUBJECT, ADULT_BODY).await
            {
                tracing::warn!(error = %e, "coming-of-age notice not sent");
            }
        }
        ended += n;
        if n == 0 {
            return Ok(ended);
        }
    }
}

/// The latest birth date (`YYYY-MM-DD`) of someone 18 or older at `now`.
pub fn adult_birth_date(now: i64) -> String {
    use chrono::{Datelike, NaiveDate};
    let today = chrono::DateTime::from_timestamp(now, 0)
        .map(|d| d.date_naive())
        .unwrap_or_default();
    // 29 February: the 18th birthday is on 1 March in a common year.
    let back = NaiveDate::from_ymd_opt(today.year() - 18, today.month(), today.day())
        .unwrap_or_else(|| {
            NaiveDate::from_ymd_opt(today.year() - 18, 2, 28).unwrap_or(NaiveDate::MIN)
        });
    back.format("%Y-%m-%d").to_string()
}

/// The background task: a pass now, then one every `every`.
pub async fn run(store: Store, sender: Option<NoticeSender>, every: Duration) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        match end_due(&store, sender.as_ref()).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(ended = n, "representations ended at coming of age"),
            Err(e) => tracing::error!(error = %e, "ending representations failed"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adult_at_the_18th_birthday() {
        // 2026-03-01T12:00:00Z
        let now = 1_772_366_400;
        assert_eq!(adult_birth_date(now), "2008-03-01");
        // 2028-02-29 (leap) -> 2010-02-28 (common year).
        assert_eq!(adult_birth_date(1_835_438_400), "2010-02-28");
    }
}
