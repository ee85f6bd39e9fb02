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

fn system_flags() -> Vec<Flag<'static>> {
    vec![
        Flag::Answered,
        Flag::Flagged,
        Flag::Deleted,
        Flag::Seen,
        Flag::Draft,
    ]
}

impl<S: Mailstore> ImapSession<S> {
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
        let uids = match store.folder_uids(folder.id, 0).await {
            Ok(u) => u,
            Err(e) => return self.store_failed(tag, e),
        };
        let entries = match store.entry_flags(folder.id).await {
            Ok(e) => e,
            Err(e) => return self.store_failed(tag, e),
        };
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
        let mut keywords: Vec<Flag<'static>> = system_flags();
        for e in &entries {
            for f in
                e.1.split(' ')
                    .filter(|f| !f.is_empty() && !f.starts_with('\\'))
            {
                if let Ok(flag) = Flag::try_from(f).map(IntoStatic::into_static)
                    && !keywords.contains(&flag)
                {
                    keywords.push(flag);
                }
            }
        }
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
        self.data(Data::Flags(keywords.clone()));
        self.data(Data::Exists(uids.len() as u32));
        if let Some(list) = list {
            self.data(list);
        } else {
            self.data(Data::Recent(recent.len() as u32));
            if let Some(i) = first_unseen {
                self.untagged_ok(Code::Unseen(nz(i as i64 + 1)), "First unseen");
            }
        }
        let mut perm: Vec<FlagPerm<'static>> = keywords.into_iter().map(FlagPerm::Flag).collect();
        perm.push(FlagPerm::Asterisk);
        self.untagged_ok(
            Code::PermanentFlags(if read_only { Vec::new() } else { perm }),
            "Flags permitted",
        );
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
