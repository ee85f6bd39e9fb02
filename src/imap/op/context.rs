//! Search results kept up to date (CONTEXT=SEARCH, RFC 5267 §4): after a
//! SEARCH or SORT with `RETURN (UPDATE)`, the session tells the client which
//! messages join (`ADDTO`) or leave (`REMOVEFROM`) the result as flags
//! change, messages arrive and expunges are reported, until CANCELUPDATE or
//! the mailbox is closed. As Dovecot 2.3, the position given is always 0, for
//! sorted results too (so CONTEXT=SORT is not announced), REMOVEFROM for
//! expunged messages comes just before their EXPUNGE and names them by the
//! numbers they had, and ADDTO/REMOVEFROM for other changes come after the
//! EXISTS and FETCH responses of the same report.
//!
//! Only the messages that changed are looked at again: those whose MODSEQ
//! passed the context's, and new ones. A search by sequence numbers
//! (`SEARCH RETURN (UPDATE) 1:10`) is not kept: expunges would move it.
//! Such a search, or one past [`MAX_CONTEXTS`], is answered and then refused
//! updates with `NO [NOUPDATE "tag"]` (RFC 5267 §4.3.1).

use std::collections::{BTreeSet, HashMap};

use imap_codec::imap_types::core::Tag;
use imap_codec::imap_types::search::SearchKey;

use super::search::{entry_matches, reads_content, uses_sequence_numbers};
use crate::imap::sequence::{self, UidMap};
use crate::imap::session::ImapSession;
use crate::imap::storage::Mailstore;

/// Most results one session keeps up to date at once.
pub(in crate::imap) const MAX_CONTEXTS: usize = 16;

/// One result kept up to date.
#[derive(Debug, Clone)]
pub(in crate::imap) struct UpdateContext {
    /// Tag of the SEARCH or SORT that asked for it.
    tag: String,
    /// UID SEARCH / UID SORT: updates name UIDs.
    uid: bool,
    key: SearchKey<'static>,
    /// Matching reads message content.
    content: bool,
    /// UIDs in the result now.
    result: BTreeSet<i64>,
    /// Changes up to this MODSEQ are in `result`.
    modseq: i64,
}

/// `* ESEARCH (TAG "t") [UID] WHAT (0 set)`.
fn update_line(ctx: &UpdateContext, what: &str, numbers: &mut [i64]) -> Vec<u8> {
    numbers.sort_unstable();
    format!(
        "* ESEARCH (TAG \"{}\"){} {what} (0 {})\r\n",
        ctx.tag,
        if ctx.uid { " UID" } else { "" },
        sequence::compact(numbers)
    )
    .into_bytes()
}

impl<S: Mailstore> ImapSession<S> {
    /// Keeps the result `uids` of the command `tag` up to date, or says why not.
    pub(in crate::imap) fn keep_updated(
        &mut self,
        tag: &Tag<'static>,
        uid: bool,
        key: &SearchKey<'static>,
        uids: &[i64],
    ) {
        let Some(sel) = self.selected.as_mut() else {
            return;
        };
        let refused = if uses_sequence_numbers(key) {
            Some("Sequence numbers are not kept up to date, use UIDs")
        } else if sel.contexts.len() >= MAX_CONTEXTS {
            Some("Too many contexts")
        } else {
            None
        };
        if let Some(text) = refused {
            let line = format!("* NO [NOUPDATE \"{}\"] {text}\r\n", tag.as_ref());
            return self.raw(line.into_bytes());
        }
        let modseq = sel.modseq;
        sel.contexts.retain(|c| c.tag != tag.as_ref());
        sel.contexts.push(UpdateContext {
            tag: tag.as_ref().to_string(),
            uid,
            key: key.clone(),
            content: reads_content(key),
            result: uids.iter().copied().collect(),
            modseq,
        });
    }

    /// CANCELUPDATE (RFC 5267 §4.3.5): `args` are the quoted tags.
    pub(in crate::imap) fn cancel_update(&mut self, tag: Tag<'static>, args: &str) {
        let tags: Vec<&str> = args
            .split_whitespace()
            .map(|t| t.trim_matches('"'))
            .filter(|t| !t.is_empty())
            .collect();
        if tags.is_empty() {
            return self.bad(tag, "CANCELUPDATE needs a tag");
        }
        let Some(sel) = self.selected.as_mut() else {
            return self.bad(tag, "Select a mailbox first");
        };
        let before = sel.contexts.len();
        sel.contexts.retain(|c| !tags.contains(&c.tag.as_str()));
        if before - sel.contexts.len() < tags.len() {
            return self.no(tag, None, "Unknown tag");
        }
        self.ok(tag, None, "Updates cancelled");
    }

    /// REMOVEFROM for the UIDs `gone` whose EXPUNGE is about to be sent,
    /// numbered as in `before`, the view they leave.
    pub(in crate::imap) fn contexts_expunged(&mut self, gone: &[i64], before: &UidMap) {
        let Some(sel) = self.selected.as_mut() else {
            return;
        };
        let mut lines = Vec::new();
        for ctx in &mut sel.contexts {
            let mut numbers: Vec<i64> = gone
                .iter()
                .filter(|u| ctx.result.remove(u))
                .filter_map(|&u| if ctx.uid { Some(u) } else { before.seq_of(u) })
                .collect();
            if !numbers.is_empty() {
                lines.push(update_line(ctx, "REMOVEFROM", &mut numbers));
            }
        }
        for line in lines {
            self.raw(line);
        }
    }

    /// ADDTO and REMOVEFROM for messages changed since each context last
    /// looked, and for the `new` ones. A store failure leaves the contexts
    /// as they are, to be tried again at the next report.
    pub(in crate::imap) async fn contexts_changed(&mut self, new: &[i64]) {
        let Some(sel) = self.selected.clone() else {
            return;
        };
        let Some(since) = sel.contexts.iter().map(|c| c.modseq).min() else {
            return;
        };
        let store = self.mailstore.clone();
        let Ok(changes) = store.changed_since(sel.id, since).await else {
            return;
        };
        let changed: HashMap<i64, i64> = changes.iter().map(|c| (c.0, c.2)).collect();
        let mut uids: BTreeSet<i64> = new.iter().copied().collect();
        uids.extend(changed.keys());
        let highest = changes.iter().map(|c| c.2).max().unwrap_or(since);
        let (Some(&first), Some(&last)) = (uids.first(), uids.last()) else {
            return;
        };
        let Ok(entries) = store
            .entries_in_range(sel.id, first, last, false, false)
            .await
        else {
            return;
        };
        let mut contents: HashMap<i64, Vec<u8>> = HashMap::new();
        let mut lines = Vec::new();
        let mut contexts = sel.contexts.clone();
        for ctx in &mut contexts {
            let (mut added, mut removed) = (Vec::new(), Vec::new());
            for entry in entries.iter().filter(|e| uids.contains(&e.uid)) {
                let Some(seq) = sel.seq_of(entry.uid) else {
                    continue;
                };
                let changed = changed.get(&entry.uid).is_some_and(|&m| m > ctx.modseq);
                if !changed && !new.contains(&entry.uid) {
                    continue;
                }
                if ctx.content && !contents.contains_key(&entry.uid) {
                    match store.blob(&entry.blob_hash).await {
                        Ok(raw) => {
                            contents.insert(entry.uid, raw);
                        }
                        Err(e) => {
                            tracing::warn!(error = %e, "search context update failed");
                            return;
                        }
                    }
                }
                let raw = contents.get(&entry.uid).map(Vec::as_slice);
                let seq = i64::from(seq.get());
                let number = if ctx.uid { entry.uid } else { seq };
                let now = entry_matches(&ctx.key, &sel, entry, seq, raw);
                if now && ctx.result.insert(entry.uid) {
                    added.push(number);
                } else if !now && ctx.result.remove(&entry.uid) {
                    removed.push(number);
                }
            }
            ctx.modseq = ctx.modseq.max(highest);
            if !removed.is_empty() {
                lines.push(update_line(ctx, "REMOVEFROM", &mut removed));
            }
            if !added.is_empty() {
                lines.push(update_line(ctx, "ADDTO", &mut added));
            }
        }
        if let Some(s) = self.selected.as_mut()
            && s.id == sel.id
        {
            s.contexts = contexts;
        }
        for line in lines {
            self.raw(line);
        }
    }
}
