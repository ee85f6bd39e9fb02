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
        let uids = sequence::resolve(&set, &sel.uids.to_vec(), uid);
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
