//! Patient spaces over their life: creation by opt-out, closure, archive,
//! purge, reopening (`close.rs`), legal representatives (`representation.rs`).
//!
//! A beneficiary provisioned from a file (`provision.rs`) gets a space in
//! state `informed`: an information notice with a personal opposition code
//! goes out and the opposition window (`lifecycle.opposition_days`) starts.
//! Without opposition, `open.rs` opens it at the end of the window (account,
//! folders, notice address): only then does its mailbox exist. An opposed
//! space is never opened; only the hash of its INS is kept, so provisioning
//! never recreates it. Accounts made by `mes user add` have no space row and
//! are open (closing one makes its row). An open space is closed (opposing
//! after opening closes it too), archived, then purged or reopened. The
//! states are data of `store::spaces`; the rules are here.

pub mod close;
pub mod export;
pub mod input;
pub mod open;
pub mod provision;
pub mod representation;

use crate::identity::ins::{Ins, InsError};
use crate::store::audit::AuditEntry;
use crate::store::{Store, StoreError};

pub use crate::store::spaces::ins_hash;

/// State of a provisioned space.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpaceState {
    /// Notice sent, opposition window running: no mailbox yet.
    Informed,
    /// Opened: an ordinary patient account.
    Open,
    /// The patient opposed: never opened, nothing kept but the INS hash.
    Opposed,
    /// Closed: account disabled, content archived until its purge.
    Closed,
    /// Closed and purged: nothing kept but the INS hash.
    Purged,
}

impl SpaceState {
    /// From the stored name.
    pub fn parse(s: &str) -> Option<SpaceState> {
        match s {
            "informed" => Some(SpaceState::Informed),
            "open" => Some(SpaceState::Open),
            "opposed" => Some(SpaceState::Opposed),
            "closed" => Some(SpaceState::Closed),
            "purged" => Some(SpaceState::Purged),
            _ => None,
        }
    }
}

/// The one rule for mail to a patient address whose space is not open: when
/// it is a provisioned space not open yet, opposed, closed (its account is
/// still there, disabled) or purged, the text of the 550 5.1.1 that refuses
/// it; `None` for an open or unknown address (the caller's usual answer).
/// Called from the RCPT path (`smtp/policy.rs`) for addresses without an
/// account and for disabled patient accounts; every other delivery path
/// needs an enabled account, which only an open space has.
pub async fn refusal_for(
    store: &Store,
    local_part: &str,
) -> Result<Option<&'static str>, StoreError> {
    if Ins::parse(local_part).is_err() {
        return Ok(None);
    }
    let state = store.space_state_by_ins(local_part).await?;
    Ok(match state.as_deref().and_then(SpaceState::parse) {
        Some(SpaceState::Informed) => {
            Some("This patient space is not open yet (opposition window running): no mail accepted")
        }
        Some(SpaceState::Opposed) => {
            Some("This patient space does not exist (the patient opposed its creation)")
        }
        Some(SpaceState::Closed) => {
            Some("This patient space is closed: the patient no longer receives mail here")
        }
        Some(SpaceState::Purged) => {
            Some("This patient space was closed and no longer exists: no mail accepted")
        }
        Some(SpaceState::Open) | None => None,
    })
}

/// Who opposes (for the audit trail).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Opponent {
    /// The operator, `mes oppose` (on the patient's request by mail or phone).
    Operator,
    /// The patient, on the `/opposition` page with their code.
    Patient,
}

/// What an opposition did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Opposed {
    /// The space is now opposed and its data deleted.
    Done,
    /// The space was open: it is now closed, its content archived until
    /// this time (Unix seconds), then purged.
    Closed(i64),
    /// It was already opposed (nothing changed).
    Already,
}

/// Why an opposition was refused.
#[derive(Debug, thiserror::Error)]
pub enum OpposeError {
    /// Not an INS.
    #[error("not an INS: {0}")]
    Ins(#[from] InsError),
    /// No space was provisioned for this INS.
    #[error("no patient space was provisioned for this INS")]
    Unknown,
    /// The code does not match (patients only).
    #[error("the opposition code does not match")]
    Code,
    /// The window ended and the space is being opened: once open,
    /// opposing closes it.
    #[error(
        "the opposition window has ended and the space is being opened: try again in a few \
         minutes (opposing an open space closes it)"
    )]
    Open,
    /// The space is already closed (or purged).
    #[error("this patient space is already closed")]
    Closed,
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Opposes the creation of `ins`'s space before its window ends: the space
/// is never opened and all but the INS hash is deleted, audited in the same
/// transaction. Once it is open, opposing closes it (archived for
/// `archive_years`, see `close.rs`). A patient must give the code of their
/// notice.
pub async fn oppose(
    store: &Store,
    ins: &str,
    code: Option<&str>,
    by: Opponent,
    archive_years: u32,
) -> Result<Opposed, OpposeError> {
    let ins = Ins::parse(ins)?;
    let key = ins_hash(ins.as_str());
    let Some(space) = store.space_state(&key).await? else {
        return Err(OpposeError::Unknown);
    };
    // The code first: without it, nothing is told about the space.
    if let Some(code) = code {
        let given = code_hash(&key, code);
        let stored = space.opposition_code_hash.unwrap_or_default();
        use subtle::ConstantTimeEq;
        if !bool::from(given.as_bytes().ct_eq(stored.as_bytes())) {
            return Err(OpposeError::Code);
        }
    }
    match SpaceState::parse(&space.state) {
        Some(SpaceState::Opposed) => return Ok(Opposed::Already),
        Some(SpaceState::Closed | SpaceState::Purged) => return Err(OpposeError::Closed),
        Some(SpaceState::Open) => {
            let closer = match by {
                Opponent::Operator => close::Closer::Operator,
                Opponent::Patient => close::Closer::Patient("patient".to_string()),
            };
            return match close::close(
                store,
                ins.as_str(),
                close::Disposal::Archive,
                &closer,
                archive_years,
            )
            .await
            {
                Ok(close::Closed::Archived(at)) => Ok(Opposed::Closed(at)),
                Ok(close::Closed::Destroyed) => Ok(Opposed::Done),
                Err(close::CloseError::AlreadyClosed | close::CloseError::Purged) => {
                    Err(OpposeError::Closed)
                }
                Err(close::CloseError::Store(e)) => Err(e.into()),
                Err(_) => Err(OpposeError::Open),
            };
        }
        Some(SpaceState::Informed) => {}
        None => return Err(StoreError::Corrupt(format!("space state {}", space.state)).into()),
    }
    if store.now() >= space.opens_at {
        return Err(OpposeError::Open);
    }
    let actor = match by {
        Opponent::Operator => "operator",
        Opponent::Patient => "patient",
    };
    // The target is the hash: the trail keeps no INS of someone who opposed.
    let entry = AuditEntry::new(actor, "space.oppose", &key, "opposition before opening");
    if store.oppose_space(&key, &entry).await? {
        Ok(Opposed::Done)
    } else {
        Err(OpposeError::Open)
    }
}

/// Characters of opposition codes: no 0/O, 1/I/L, easy to read on paper.
const CODE_ALPHABET: &[u8] = b"ABCDEFGHJKMNPQRSTUVWXYZ23456789";

/// A new personal opposition code, 10 characters (about 49 bits), shown
/// as `XXXXX-XXXXX`.
pub fn new_code() -> String {
    use rand::Rng;
    let mut rng = rand::rng();
    let mut s = String::with_capacity(11);
    for i in 0..10 {
        if i == 5 {
            s.push('-');
        }
        s.push(CODE_ALPHABET[rng.random_range(0..CODE_ALPHABET.len())] as char);
    }
    s
}

/// What is stored of a code: SHA-256 bound to the space, ignoring case,
/// spaces and dashes as typed. Fast on purpose (a million per run); the
/// guessing of codes is bounded by the page's throttle and the window.
pub fn code_hash(space_key: &str, code: &str) -> String {
    use sha2::{Digest, Sha256};
    let norm: String = code
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_uppercase())
        .collect();
    let mut h = Sha256::new();
    h.update(b"mes-opposition:");
    h.update(space_key.as_bytes());
    h.update(b":");
    h.update(norm.as_bytes());
    hex::encode(h.finalize())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_hash_as_typed() {
        let code = new_code();
        assert_eq!(code.len(), 11);
        let k = ins_hash("279035121518989");
        assert_eq!(
            code_hash(&k, &code),
            code_hash(&k, &code.to_lowercase().replace('-', " "))
        );
        assert_ne!(
            code_hash(&k, &code),
            code_hash(&ins_hash("184127645108946"), &code)
        );
    }
}
