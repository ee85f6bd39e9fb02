//! Patient threads (messagerie citoyenne): the rules, in one place, used by every
//! path (SMTP delivery, IMAP keywords, the patient API and webmail). The
//! patient's sending path is `web::send`.
//!
//! - Only a professional, organisation or application starts a conversation.
//! - A message to a patient joins the open thread it replies to (In-Reply-To /
//!   References) with that sender, or opens a new one.
//! - `X-MSS-MES: FIN`, subject `[FIN]`, or the IMAP keyword `$MSSanteFin` ends it.
//! - The patient may write only inside an open thread.

pub mod compose;
pub mod notify;

use crate::store::threads::Thread;
pub use crate::store::threads::{Incoming, ThreadLink};

/// Why a patient may not send.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// The thread was ended by the professional.
    #[error("{name} a mis fin à vos échanges")]
    Ended {
        /// Who ended it.
        name: String,
    },
    /// No open thread with that correspondent.
    #[error(
        "Vous ne pouvez écrire qu'à un professionnel qui vous a écrit dans un échange en cours."
    )]
    NoOpenThread,
}

/// May the patient reply in `thread`?
pub fn may_reply(thread: &Thread) -> Result<(), Refusal> {
    if thread.status == "open" {
        Ok(())
    } else {
        Err(Refusal::Ended {
            name: thread
                .ended_by
                .clone()
                .unwrap_or_else(|| thread.correspondent_name.clone()),
        })
    }
}

/// The IMAP keyword a local professional sets to end a thread.
pub const END_KEYWORD: &str = "$MSSanteFin";

/// A professional set [`END_KEYWORD`] on messages of `folder_id` (INBOX or Sent):
/// ends the open threads with patients those messages belong to.
pub async fn end_by_keyword(
    store: &crate::store::Store,
    professional: &str,
    folder_id: i64,
    uids: &[i64],
) -> Result<usize, crate::store::StoreError> {
    let ids = store.header_message_ids(folder_id, uids).await?;
    if ids.is_empty() {
        return Ok(0);
    }
    let name = store
        .account_by_address(professional)
        .await?
        .map(|a| a.display_name)
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| professional.to_string());
    store
        .end_threads_with_messages(professional, &name, &ids)
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn thread(status: &str) -> Thread {
        Thread {
            id: 1,
            patient_id: 1,
            correspondent: "a@b.test".into(),
            correspondent_name: "Dr A".into(),
            correspondent_profession: None,
            correspondent_via: None,
            correspondent_other_operator: false,
            subject: "s".into(),
            status: status.into(),
            ended_by: Some("Dr A".into()),
            ended_at: None,
            created_at: 0,
            last_message_at: 0,
            unread: 0,
        }
    }

    #[test]
    fn replies_only_while_open() {
        assert!(may_reply(&thread("open")).is_ok());
        let err = may_reply(&thread("ended")).unwrap_err();
        assert_eq!(err.to_string(), "Dr A a mis fin à vos échanges");
    }
}
