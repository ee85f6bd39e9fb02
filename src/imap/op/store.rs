//! STORE and UID STORE (RFC 3501 §6.4.6, RFC 7162 UNCHANGEDSINCE).

use std::num::NonZeroU64;

use imap_codec::imap_types::command::StoreModifier;
use imap_codec::imap_types::core::{Tag, Vec1};
use imap_codec::imap_types::fetch::MessageDataItem;
use imap_codec::imap_types::flag::{Flag, StoreResponse, StoreType};
use imap_codec::imap_types::response::{Code, Data};
use imap_codec::imap_types::sequence::SequenceSet;

use super::nz;
use crate::imap::sequence;
use crate::imap::session::{ImapSession, flag_fetch};
use crate::imap::storage::FlagOp;
use crate::imap::storage::Mailstore;

impl<S: Mailstore> ImapSession<S> {
    /// STORE, UID STORE.
    #[allow(clippy::too_many_arguments)]
    pub(in crate::imap) async fn store(
        &mut self,
        tag: Tag<'static>,
        set: SequenceSet,
        kind: StoreType,
        response: StoreResponse,
        flags: Vec<Flag<'static>>,
        uid: bool,
        modifiers: Vec<StoreModifier>,
    ) {
        let Some(sel) = self.selected.clone() else {
            return self.bad(tag, "Select a mailbox first");
        };
        if sel.read_only {
            return self.no(tag, Some(Code::ReadOnly), "Mailbox is read-only");
        }
        if !uid && sequence::out_of_range(&set, sel.uids.len()) {
            return self.bad(tag, "Invalid message sequence number");
        }
        let unchanged_since = modifiers
            .iter()
            .map(|m| match m {
                StoreModifier::UnchangedSince(v) => *v as i64,
            })
            .next();
        let first = unchanged_since.is_some() && self.enable_condstore();
        let uids = sel.uids.resolve(&set, uid);
        let texts: Vec<String> = flags.iter().map(|f| f.to_string()).collect();
        let op = match kind {
            StoreType::Replace => FlagOp::Replace,
            StoreType::Add => FlagOp::Add,
            StoreType::Remove => FlagOp::Remove,
        };
        let change = match self
            .mailstore
            .store_flags(sel.id, &uids, op, &texts, unchanged_since)
            .await
        {
            Ok(c) => c,
            Err(e) => return self.store_failed(tag, e),
        };
        if op != FlagOp::Remove
            && texts
                .iter()
                .any(|f| f.eq_ignore_ascii_case(crate::threads::END_KEYWORD))
        {
            let who = self
                .user
                .as_ref()
                .map(|u| u.address.clone())
                .unwrap_or_default();
            let marked: Vec<i64> = change.changed.iter().map(|c| c.0).collect();
            match self.mailstore.end_threads(&who, sel.id, &marked).await {
                Ok(n) if n > 0 => tracing::info!(threads = n, "patient threads ended by keyword"),
                Ok(_) => {}
                Err(e) => tracing::error!(error = %e, "ending threads by keyword failed"),
            }
        }
        if let Some(s) = self.selected.as_mut()
            && let Some((_, _, m)) = change.changed.first()
            && *m == s.modseq + 1
        {
            s.modseq = *m;
        }
        // A new keyword is announced even to STORE.SILENT, as Dovecot does.
        self.announce_keywords(change.changed.iter().map(|c| c.1.as_str()));
        if response == StoreResponse::Answer || unchanged_since.is_some() {
            for (u, flags, modseq) in &change.changed {
                if response == StoreResponse::Silent {
                    continue;
                }
                let Some(seq) = sel.seq_of(*u) else { continue };
                let mut items = vec![MessageDataItem::Flags(flag_fetch(
                    flags,
                    !self.rev2 && sel.recent.contains(u),
                ))];
                if uid {
                    items.push(MessageDataItem::Uid(nz(*u)));
                }
                if self.condstore {
                    items.push(MessageDataItem::ModSeq(
                        NonZeroU64::new(*modseq as u64).unwrap_or(NonZeroU64::MIN),
                    ));
                }
                if let Ok(items) = Vec1::try_from(items) {
                    self.data(Data::Fetch { seq, items });
                }
            }
        }
        self.sync_selected(false).await;
        let highest = self.highest_modseq(first);
        if change.conflicts.is_empty() {
            self.ok(tag, highest, "STORE completed");
        } else {
            // The tagged OK holds [MODIFIED]: HIGHESTMODSEQ goes untagged.
            if let Some(highest) = highest {
                self.untagged_ok(highest, "Highest");
            }
            let numbers: Vec<i64> = if uid {
                change.conflicts.clone()
            } else {
                change
                    .conflicts
                    .iter()
                    .filter_map(|u| sel.seq_of(*u).map(|s| i64::from(s.get())))
                    .collect()
            };
            match SequenceSet::try_from(sequence::compact(&numbers).as_str()) {
                Ok(set) => self.ok(tag, Some(Code::Modified(set)), "Conditional STORE failed"),
                Err(_) => self.ok(tag, None, "STORE completed"),
            }
        }
    }
}
