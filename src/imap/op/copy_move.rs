//! COPY and MOVE (RFC 3501 §6.4.7, RFC 6851, RFC 4315 COPYUID).

use imap_codec::imap_types::core::{Tag, Vec1};
use imap_codec::imap_types::extensions::uidplus::{UidElement, UidSet};
use imap_codec::imap_types::mailbox::Mailbox;
use imap_codec::imap_types::response::Code;
use imap_codec::imap_types::sequence::SequenceSet;

use super::nz;
use crate::imap::sequence;
use crate::imap::session::ImapSession;
use crate::imap::storage::Mailstore;

/// A UIDPLUS uid-set for sorted UIDs, in the order given (COPYUID pairs them up by position).
fn uid_set(uids: &[i64]) -> Option<UidSet> {
    let mut elements = Vec::new();
    let mut i = 0;
    while i < uids.len() {
        let start = uids[i];
        let mut end = start;
        while i + 1 < uids.len() && uids[i + 1] == end + 1 {
            i += 1;
            end = uids[i];
        }
        elements.push(if start == end {
            UidElement::Single(nz(start))
        } else {
            UidElement::Range(nz(start), nz(end))
        });
        i += 1;
    }
    Vec1::try_from(elements).ok().map(UidSet)
}

impl<S: Mailstore> ImapSession<S> {
    /// Whether copies of `uids` of `folder` fit the account's quota; answers
    /// `NO [OVERQUOTA]` (RFC 9208 §4.3) or a failure itself when not.
    async fn copy_fits(&mut self, tag: &Tag<'static>, folder: i64, uids: &[i64]) -> bool {
        let (Some(&first), Some(&last)) = (uids.first(), uids.last()) else {
            return true;
        };
        let quota = match self.mailstore.quota(self.account()).await {
            Ok(Some(q)) if q.is_limited() => q,
            Ok(_) => return true,
            Err(e) => {
                self.store_failed(tag.clone(), e);
                return false;
            }
        };
        let entries = match self
            .mailstore
            .entries_in_range(folder, first, last, false, false)
            .await
        {
            Ok(e) => e,
            Err(e) => {
                self.store_failed(tag.clone(), e);
                return false;
            }
        };
        let wanted: std::collections::HashSet<i64> = uids.iter().copied().collect();
        let copied: Vec<u64> = entries
            .iter()
            .filter(|e| wanted.contains(&e.uid))
            .map(|e| e.size.max(0) as u64)
            .collect();
        match quota.admit(copied.iter().sum(), copied.len() as u64) {
            Ok(()) => true,
            Err(refusal) => {
                self.over_quota(tag.clone(), &refusal);
                false
            }
        }
    }

    /// COPY, or MOVE when `moving`.
    pub(in crate::imap) async fn copy(
        &mut self,
        tag: Tag<'static>,
        set: SequenceSet,
        mailbox: Mailbox<'static>,
        uid: bool,
        moving: bool,
    ) {
        let Some(sel) = self.selected.clone() else {
            return self.bad(tag, "Select a mailbox first");
        };
        if moving && sel.read_only {
            return self.no(tag, Some(Code::ReadOnly), "Mailbox is read-only");
        }
        if !uid && sequence::out_of_range(&set, sel.uids.len()) {
            return self.bad(tag, "Invalid message sequence number");
        }
        let Some(target) = self.resolve_target(&tag, &mailbox).await else {
            return;
        };
        let uids = sel.uids.resolve(&set, uid);
        // A copy adds to the account's quota usage (a move within it does not).
        if !moving && !self.copy_fits(&tag, sel.id, &uids).await {
            return;
        }
        let store = self.mailstore.clone();
        let result = if moving {
            store.move_messages(sel.id, &uids, target.id).await
        } else {
            store.copy_messages(sel.id, &uids, target.id).await
        };
        let pairs = match result {
            Ok(p) => p,
            Err(e) => return self.store_failed(tag, e),
        };
        let code = if pairs.is_empty() {
            None
        } else {
            let src: Vec<i64> = pairs.iter().map(|p| p.0).collect();
            let dst: Vec<i64> = pairs.iter().map(|p| p.1).collect();
            match (uid_set(&src), uid_set(&dst)) {
                (Some(source), Some(destination)) => Some(Code::CopyUid {
                    uid_validity: nz(target.uidvalidity),
                    source,
                    destination,
                }),
                _ => None,
            }
        };
        if moving {
            // RFC 6851: COPYUID comes in an untagged OK before the EXPUNGEs.
            if let Some(code) = code {
                self.untagged_ok(code, "Moved");
            }
            self.sync_selected(true).await;
            self.ok(tag, None, "MOVE completed");
        } else {
            self.sync_selected(true).await;
            self.ok(tag, code, "COPY completed");
        }
    }
}
