//! Only a document's author replaces it: the check every path that files
//! documents (mail, the professionals' API) makes before writing, against
//! the depositor recorded on the current version.

use super::filing::{Depositor, Filing, Refusal};
use crate::store::{Store, StoreError};

/// Signs `filing` with `depositor`, then refuses it whole when one of its
/// documents replaces (RPLC) a document deposited by someone else. A
/// replacement of a document the patient's record does not hold is filed
/// as a first version.
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
    Ok(Ok(()))
}
