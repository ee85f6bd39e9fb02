//! Only a document's author replaces or withdraws it: the check every path
//! that files documents (mail, the professionals' API) makes before writing,
//! against the depositor recorded on the current version.

use super::filing::{Depositor, Filing, Refusal};
use crate::store::{Store, StoreError};

/// Signs `filing` with `depositor`, then refuses it whole when one of its
/// documents replaces (RPLC) a document deposited by someone else, or when
/// it withdraws (action `D`) a document the patient's record does not hold
/// as current (904) or of which a current copy was deposited by someone
/// else (906). A replacement of
/// a document the record does not hold is filed as a first version.
///
/// The rule for who may withdraw is the rule for who may replace
/// ([`Depositor::may_replace`]): the same proven author, or anyone of the
/// establishment whose own mailbox deposited it. Withdrawing is replacing
/// with nothing.
pub async fn sign_and_check(
    store: &Store,
    filing: &mut Filing,
    depositor: &Depositor,
) -> Result<Result<(), Refusal>, StoreError> {
    depositor.sign(filing);
    for (patient_id, d) in &filing.documents {
        let Some(old) = &d.replaces else { continue };
        if let Some((by, establishment)) = store.document_depositor(*patient_id, old).await?
            && !depositor.may_replace(by.as_deref(), establishment.as_deref())
        {
            return Ok(Err(Refusal::NotAuthor(old.clone())));
        }
    }
    for (patient_id, w) in &filing.withdrawals {
        // Every current copy goes, so every copy must be the depositor's to withdraw.
        let copies = store
            .current_document_depositors(*patient_id, &w.unique_id)
            .await?;
        if copies.is_empty() {
            return Ok(Err(Refusal::UnknownDocument(w.unique_id.clone())));
        }
        if !copies
            .iter()
            .all(|(by, est)| depositor.may_replace(by.as_deref(), est.as_deref()))
        {
            return Ok(Err(Refusal::DeleteNotAuthor(w.unique_id.clone())));
        }
    }
    Ok(Ok(()))
}
