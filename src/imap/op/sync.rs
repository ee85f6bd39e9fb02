//! Telling the client what changed in the selected folder: EXISTS, RECENT,
//! EXPUNGE or VANISHED, FETCH of changed flags (RFC 3501 §7.3-7.4, RFC 7162).

use std::collections::HashSet;
use std::num::NonZeroU32;

use imap_codec::imap_types::fetch::MessageDataItem;
use imap_codec::imap_types::response::Data;
use imap_codec::imap_types::sequence::SequenceSet;

use crate::imap::session::{ImapSession, flag_fetch};
use crate::imap::storage::{ChangesSince, FolderChanges, Mailstore};
use crate::store::StoreError;

impl<S: Mailstore> ImapSession<S> {
    /// Reports what changed in the selected folder since the client last heard:
    /// new messages (EXISTS, RECENT), flag changes (FETCH) and, when `expunges` is
    /// allowed at this point of the protocol, removals (EXPUNGE).
    pub(in crate::imap) async fn sync_selected(&mut self, expunges: bool) {
        self.sync_from(None, expunges).await;
    }

    /// The marks the selected folder's changes are read after: every change
    /// to a folder (delivery, flags, copy, move, expunge) bumps its
    /// HIGHESTMODSEQ, so what changed since the last check, not the whole
    /// folder again: the UIDs expunged since (kept with their MODSEQ for
    /// QRESYNC), the UIDs above the highest one this session knows, and the
    /// flags changed since the client was last told.
    pub(in crate::imap) fn changes_since(&self) -> Option<ChangesSince> {
        let sel = self.selected.as_ref()?;
        Some(ChangesSince {
            expunged_after: sel.checked.0,
            uid_above: sel.uids.last().unwrap_or(0),
            changed_after: sel.modseq,
        })
    }

    /// [`Self::sync_selected`] with the changes already `read` since
    /// [`Self::changes_since`] (with the command's own read), or read now.
    pub(in crate::imap) async fn sync_from(&mut self, read: Option<FolderChanges>, expunges: bool) {
        let (Some(sel), Some(since)) = (self.selected.as_ref(), self.changes_since()) else {
            return;
        };
        let id = sel.id;
        let rev2 = self.rev2;
        let qresync = self.qresync;
        let store = self.mailstore.clone();
        let changes = match read {
            Some(changes) => changes,
            None => match store.folder_changes(id, since).await {
                Ok(Some(changes)) => changes,
                _ => return,
            },
        };
        let counters = changes.counters;
        if counters == sel.checked {
            return;
        }
        let FolderChanges {
            expunged,
            new,
            changed,
            unclaimed,
            ..
        } = changes;
        let Some(sel) = self.selected.as_mut() else {
            return;
        };
        let expunged: HashSet<i64> = expunged.into_iter().collect();
        let mut responses = Vec::new();
        let contexts = !sel.contexts.is_empty();
        // Expunged now, and the view they leave: search contexts name them so.
        let mut gone = Vec::new();
        let before = if contexts {
            sel.uids.clone()
        } else {
            Default::default()
        };
        let pending = expunged.iter().any(|&u| sel.uids.seq_of(u).is_some());
        if expunges && pending {
            let mut uids = sel.uids.to_vec();
            let mut vanished = Vec::new();
            let mut i = uids.len();
            while i > 0 {
                i -= 1;
                if expunged.contains(&uids[i]) {
                    let uid = uids.remove(i);
                    sel.recent.remove(&uid);
                    gone.push(uid);
                    if qresync {
                        vanished.push(uid);
                    } else if let Some(seq) = NonZeroU32::new(i as u32 + 1) {
                        responses.push(Data::Expunge(seq));
                    }
                }
            }
            // With QRESYNC, one VANISHED instead of EXPUNGEs (RFC 7162 §3.2.10).
            vanished.reverse();
            if let Some(known_uids) = uid_set(&vanished) {
                responses.push(Data::Vanished {
                    earlier: false,
                    known_uids,
                });
            }
            sel.uids = crate::imap::sequence::UidMap::from_sorted(&uids);
        }
        if !new.is_empty() {
            if !sel.read_only
                && unclaimed
                && let Ok(claimed) = store.claim_recent(id).await
            {
                sel.recent.extend(claimed);
            }
            // Above every UID the session knows: appended to its runs.
            for &uid in &new {
                if sel.uids.last().is_none_or(|last| uid > last) {
                    sel.uids.push(uid);
                }
            }
            responses.push(Data::Exists(sel.uids.len() as u32));
            if !rev2 {
                responses.push(Data::Recent(sel.recent.len() as u32));
            }
        }
        // Expunges not reported yet (not allowed at this point) keep the check pending.
        if expunges || !pending {
            sel.checked = counters;
        }
        // Flags of new and changed messages, whose keywords must be in FLAGS first.
        let mut shown_flags: Vec<String> = Vec::new();
        {
            for (uid, flags, modseq) in changed {
                sel.modseq = sel.modseq.max(modseq);
                if flags
                    .split(' ')
                    .any(|f| !f.is_empty() && !f.starts_with('\\'))
                {
                    shown_flags.push(flags.clone());
                }
                if new.contains(&uid) {
                    continue;
                }
                let Some(seq) = sel.seq_of(uid) else { continue };
                let mut items = vec![
                    MessageDataItem::Flags(flag_fetch(&flags, !rev2 && sel.recent.contains(&uid))),
                    MessageDataItem::Uid(NonZeroU32::new(uid as u32).unwrap_or(NonZeroU32::MIN)),
                ];
                if self.condstore
                    && let Some(m) = std::num::NonZeroU64::new(modseq as u64)
                {
                    items.push(MessageDataItem::ModSeq(m));
                }
                if let Ok(items) = items.try_into() {
                    responses.push(Data::Fetch { seq, items });
                }
            }
        }
        if contexts && !gone.is_empty() {
            self.contexts_expunged(&gone, &before);
        }
        self.announce_keywords(shown_flags.iter().map(String::as_str));
        for r in responses {
            self.data(r);
        }
        if contexts {
            self.contexts_changed(&new).await;
        }
    }
}

/// A UID set in compact form, `None` when empty.
fn uid_set(uids: &[i64]) -> Option<SequenceSet> {
    if uids.is_empty() {
        return None;
    }
    SequenceSet::try_from(crate::imap::sequence::compact(uids).as_str()).ok()
}

impl<S: Mailstore> ImapSession<S> {
    /// `* VANISHED (EARLIER)` for the UIDs expunged from `folder_id` after
    /// `since` that `keep` accepts (RFC 7162 §3.2.5.1, §3.2.6).
    pub(in crate::imap) async fn report_vanished(
        &mut self,
        folder_id: i64,
        since: i64,
        keep: impl Fn(i64) -> bool,
    ) -> Result<(), StoreError> {
        let gone: Vec<i64> = self
            .mailstore
            .vanished_since(folder_id, since)
            .await?
            .into_iter()
            .filter(|&u| keep(u))
            .collect();
        if let Some(known_uids) = uid_set(&gone) {
            self.data(Data::Vanished {
                earlier: true,
                known_uids,
            });
        }
        Ok(())
    }

    /// FETCH (UID FLAGS MODSEQ) of the selected folder's messages changed after `since`.
    pub(in crate::imap) async fn report_changed(
        &mut self,
        folder_id: i64,
        since: i64,
    ) -> Result<(), StoreError> {
        let changes = self.mailstore.changed_since(folder_id, since).await?;
        self.announce_keywords(changes.iter().map(|c| c.1.as_str()));
        let Some(sel) = self.selected.as_ref() else {
            return Ok(());
        };
        let mut out = Vec::new();
        for (uid, flags, modseq) in changes {
            let Some(seq) = sel.seq_of(uid) else { continue };
            let items = vec![
                MessageDataItem::Uid(NonZeroU32::new(uid as u32).unwrap_or(NonZeroU32::MIN)),
                MessageDataItem::Flags(flag_fetch(&flags, !self.rev2 && sel.recent.contains(&uid))),
                MessageDataItem::ModSeq(
                    std::num::NonZeroU64::new(modseq as u64).unwrap_or(std::num::NonZeroU64::MIN),
                ),
            ];
            if let Ok(items) = items.try_into() {
                out.push(Data::Fetch { seq, items });
            }
        }
        for d in out {
            self.data(d);
        }
        Ok(())
    }
}
