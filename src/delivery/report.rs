//! Delivery of reports the server writes itself (DSN, MDN) to one address: the
//! local INBOX when the address is ours, else the outbound queue. Reports have
//! the null reverse-path, so no report is ever sent about a report.

use super::prepare::Incoming;
use super::{Deliverer, DeliveryError, NewRecipient, Stored};
use crate::store::{Store, now};

/// Delivers `report` (a complete message) to `to`; `origin` says what it is (`dsn`, `mdn`).
pub async fn send(
    store: &Store,
    deliverer: &Deliverer,
    to: &str,
    report: Vec<u8>,
    origin: &'static str,
) -> Result<Stored, DeliveryError> {
    let target = match store.account_by_address(to).await {
        Ok(Some(acc)) if !acc.disabled => store.mailbox_id(acc.id, "INBOX").await.ok().flatten(),
        Ok(_) => None,
        Err(e) => return Err(DeliveryError::Store(e.to_string())),
    };
    let mut content = report;
    if target.is_some() {
        // Final delivery here: the null reverse-path is recorded as for any message.
        let mut with_path = b"Return-Path: <>\r\n".to_vec();
        with_path.extend_from_slice(&content);
        content = with_path;
    }
    let recipient = NewRecipient {
        address: to.to_string(),
        orcpt: None,
        notify: smtp_proto::RCPT_NOTIFY_NEVER as i64,
        mailbox_id: target,
        remote: target.is_none(),
        patient_id: None,
    };
    let message = Incoming {
        content,
        mail_from: String::new(),
        message_id: None,
        origin,
        received_at: now(),
        recipients: vec![recipient],
        dsn_envid: None,
        dsn_ret: None,
        flags: String::new(),
        thread: None,
        dossier: None,
        analysis: None,
    }
    .prepare();
    deliverer.deliver(message).await
}
