//! SELECT and EXAMINE (RFC 3501 §6.3.1-2, RFC 7162 CONDSTORE and QRESYNC).

use std::collections::HashSet;
use std::num::NonZeroU64;

use imap_codec::imap_types::IntoStatic;
use imap_codec::imap_types::command::SelectParameter;
use imap_codec::imap_types::core::{QuotedChar, Tag};
use imap_codec::imap_types::flag::{Flag, FlagPerm};
use imap_codec::imap_types::mailbox::Mailbox;
use imap_codec::imap_types::response::{Code, Data};

use super::list::list_attributes;
use super::nz;
use crate::imap::names::DELIMITER;
use crate::imap::sequence;
use crate::imap::session::{ImapSession, Selected};
use crate::imap::storage::Mailstore;

/// The FLAGS list: the system flags, then `keywords`.
fn flag_list(keywords: &[String]) -> Vec<Flag<'static>> {
    let mut flags = vec![
        Flag::Answered,
        Flag::Flagged,
        Flag::Deleted,
        Flag::Seen,
        Flag::Draft,
    ];
    flags.extend(
        keywords
            .iter()
            .filter_map(|k| Flag::try_from(k.as_str()).ok().map(IntoStatic::into_static)),
    );
    flags
}

/// `[PERMANENTFLAGS (…)]`: the FLAGS list and `\*`, none when read-only.
fn permanent_flags(keywords: &[String], read_only: bool) -> Code<'static> {
    if read_only {
        return Code::PermanentFlags(Vec::new());
    }
    let mut perm: Vec<FlagPerm<'static>> = flag_list(keywords)
        .into_iter()
        .map(FlagPerm::Flag)
        .collect();
    perm.push(FlagPerm::Asterisk);
    Code::PermanentFlags(perm)
}

/// Adds the keywords of the stored flag strings `flags` that `keywords`
/// lacks (keywords are case-insensitive); true when one was added.
fn add_keywords<'f>(keywords: &mut Vec<String>, flags: impl IntoIterator<Item = &'f str>) -> bool {
    let mut added = false;
    for stored in flags {
        for k in stored
            .split(' ')
            .filter(|k| !k.is_empty() && !k.starts_with('\\'))
        {
            if Flag::try_from(k).is_ok() && !keywords.iter().any(|x| x.eq_ignore_ascii_case(k)) {
                keywords.push(k.to_string());
                added = true;
            }
        }
    }
    added
}

impl<S: Mailstore> ImapSession<S> {
    /// Before a FETCH response shows the stored flag strings `flags`: a
    /// keyword the client has not been told of yet (set by STORE, APPEND or
    /// another session) first gets the new `* FLAGS` and `* OK
    /// [PERMANENTFLAGS …]` (RFC 3501 §7.2.6, RFC 9051 §7.3.5), as Dovecot does.
    pub(in crate::imap) fn announce_keywords<'f>(
        &mut self,
        flags: impl IntoIterator<Item = &'f str>,
    ) {
        let Some(sel) = self.selected.as_mut() else {
            return;
        };
        if !add_keywords(&mut sel.keywords, flags) {
            return;
        }
        let (list, perm) = (
            flag_list(&sel.keywords),
            permanent_flags(&sel.keywords, sel.read_only),
        );
        self.data(Data::Flags(list));
        self.untagged_ok(perm, "Flags permitted");
    }

    /// SELECT, or EXAMINE when `read_only`.
    pub(in crate::imap) async fn select(
        &mut self,
        tag: Tag<'static>,
        mailbox: Mailbox<'static>,
        read_only: bool,
        parameters: Vec<SelectParameter>,
    ) {
        let qresync = parameters.iter().find_map(|p| match p {
            SelectParameter::QResync {
                uid_validity,
                mod_sequence_value,
                known_uids,
                ..
            } => Some((*uid_validity, *mod_sequence_value, known_uids.clone())),
            _ => None,
        });
        if qresync.is_some() && !self.qresync {
            // RFC 7162 §3.2.5: QRESYNC parameters need ENABLE QRESYNC first.
            return self.bad(tag, "ENABLE QRESYNC first");
        }
        // A failed SELECT leaves no mailbox selected (RFC 3501 §6.3.1). A server
        // with CONDSTORE says so first (RFC 7162 §3.2.11, RFC 9051 §6.3.2).
        if self.selected.take().is_some() {
            self.untagged_ok(Code::Closed, "Previous mailbox closed");
        }
        let Some(folder) = self.resolve_folder(&tag, &mailbox).await else {
            return;
        };
        if parameters
            .iter()
            .any(|p| matches!(p, SelectParameter::CondStore))
        {
            self.condstore = true;
        }
        let store = self.mailstore.clone();
        // The UIDs and flags of the whole folder: from the shared listing
        // (caught up with the database) when the folder is large or already
        // listed, else in one read with \Recent; SELECT then claims \Recent.
        let listed = if read_only {
            None
        } else {
            match store.whole_listing(&folder).await {
                Ok(listing) => listing.map(|l| {
                    l.iter()
                        .map(|(uid, e)| (uid, e.flags.to_string(), false))
                        .collect::<Vec<_>>()
                }),
                Err(e) => return self.store_failed(tag, e),
            }
        };
        let entries = match listed {
            Some(entries) => entries,
            None => match store.entry_flags(folder.id).await {
                Ok(e) => e,
                Err(e) => return self.store_failed(tag, e),
            },
        };
        let uids: Vec<i64> = entries.iter().map(|e| e.0).collect();
        let recent: HashSet<i64> = if read_only {
            entries.iter().filter(|e| e.2).map(|e| e.0).collect()
        } else {
            match store.claim_recent(folder.id).await {
                Ok(c) => c.into_iter().collect(),
                Err(e) => return self.store_failed(tag, e),
            }
        };
        let first_unseen = entries
            .iter()
            .position(|e| !e.1.split(' ').any(|f| f.eq_ignore_ascii_case("\\Seen")));
        let mut keywords: Vec<String> = Vec::new();
        add_keywords(&mut keywords, entries.iter().map(|e| e.1.as_str()));
        // IMAP4rev2 has neither RECENT nor the UNSEEN code, and wants the
        // mailbox's LIST response (RFC 9051 §6.3.2).
        let list = if self.rev2 {
            match store.folders(self.account()).await {
                Ok(all) => Some(Data::List {
                    items: list_attributes(&folder, &all),
                    delimiter: QuotedChar::try_from(DELIMITER).ok(),
                    mailbox: self
                        .wire_mailbox(&folder.name)
                        .unwrap_or_else(|| mailbox.clone()),
                }),
                Err(e) => return self.store_failed(tag, e),
            }
        } else {
            None
        };
        self.data(Data::Flags(flag_list(&keywords)));
        self.data(Data::Exists(uids.len() as u32));
        if let Some(list) = list {
            self.data(list);
        } else {
            self.data(Data::Recent(recent.len() as u32));
            if let Some(i) = first_unseen {
                self.untagged_ok(Code::Unseen(nz(i as i64 + 1)), "First unseen");
            }
        }
        self.untagged_ok(permanent_flags(&keywords, read_only), "Flags permitted");
        self.untagged_ok(Code::UidValidity(nz(folder.uidvalidity)), "UIDs valid");
        self.untagged_ok(Code::UidNext(nz(folder.uidnext)), "Predicted next UID");
        if let Some(m) = NonZeroU64::new(folder.highestmodseq as u64) {
            self.untagged_ok(Code::HighestModSeq(m), "Highest");
        }
        self.selected = Some(Selected {
            id: folder.id,
            name: folder.name,
            read_only,
            uidvalidity: folder.uidvalidity,
            uids: crate::imap::sequence::UidMap::from_sorted(&uids),
            recent,
            modseq: folder.highestmodseq,
            checked: (folder.highestmodseq, folder.uidnext),
            saved: Vec::new(),
            contexts: Vec::new(),
            keywords,
        });
        // QRESYNC (RFC 7162 §3.2.5.1): what changed since the client's MODSEQ,
        // when its UIDVALIDITY is still right.
        if let Some((validity, since, known)) = qresync
            && i64::from(validity.get()) == folder.uidvalidity
        {
            let since = i64::try_from(since.get()).unwrap_or(i64::MAX);
            let max = uids.last().copied().unwrap_or(0);
            let keep = |uid: i64| {
                known
                    .as_ref()
                    .is_none_or(|set| sequence::contains(set, uid, max))
            };
            if let Err(e) = self.report_vanished(folder.id, since, keep).await {
                self.selected = None;
                return self.store_failed(tag, e);
            }
            if let Err(e) = self.report_changed(folder.id, since).await {
                self.selected = None;
                return self.store_failed(tag, e);
            }
        }
        if read_only {
            self.ok(tag, Some(Code::ReadOnly), "EXAMINE completed");
        } else {
            self.ok(tag, Some(Code::ReadWrite), "SELECT completed");
        }
    }
}
