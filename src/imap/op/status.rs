//! STATUS (RFC 3501 §6.3.10, RFC 8438 SIZE, RFC 9051 DELETED, DELETED-STORAGE).

use imap_codec::imap_types::core::Tag;
use imap_codec::imap_types::mailbox::Mailbox;
use imap_codec::imap_types::response::Data;
use imap_codec::imap_types::status::{StatusDataItem, StatusDataItemName};

use super::nz;
use crate::imap::listing::Listing;
use crate::imap::session::ImapSession;
use crate::imap::storage::Mailstore;
use crate::imap::storage::{Folder, FolderCounts};

/// The STATUS items asked for (STATUS, LIST-STATUS).
pub(super) fn status_items(
    folder: &Folder,
    counts: &FolderCounts,
    items: &[StatusDataItemName],
) -> Vec<StatusDataItem> {
    items
        .iter()
        .map(|item| match item {
            StatusDataItemName::Messages => StatusDataItem::Messages(counts.messages as u32),
            StatusDataItemName::Recent => StatusDataItem::Recent(counts.recent as u32),
            StatusDataItemName::UidNext => StatusDataItem::UidNext(nz(folder.uidnext)),
            StatusDataItemName::UidValidity => StatusDataItem::UidValidity(nz(folder.uidvalidity)),
            StatusDataItemName::Unseen => StatusDataItem::Unseen(counts.unseen as u32),
            StatusDataItemName::Deleted => StatusDataItem::Deleted(counts.deleted as u32),
            StatusDataItemName::DeletedStorage => {
                StatusDataItem::DeletedStorage(counts.deleted_size as u64)
            }
            StatusDataItemName::Size => StatusDataItem::Size(counts.size as u64),
            StatusDataItemName::HighestModSeq => {
                StatusDataItem::HighestModSeq(folder.highestmodseq as u64)
            }
        })
        .collect()
}

/// The counts of a listed folder (\Recent is not listed: 0).
fn counts_of(listing: &Listing) -> FolderCounts {
    let mut counts = FolderCounts::default();
    for (_, listed) in listing.iter() {
        let has = |flag: &str| {
            listed
                .flags
                .split(' ')
                .any(|f| f.eq_ignore_ascii_case(flag))
        };
        counts.messages += 1;
        counts.size += listed.size;
        if !has("\\Seen") {
            counts.unseen += 1;
        }
        if has("\\Deleted") {
            counts.deleted += 1;
            counts.deleted_size += listed.size;
        }
    }
    counts
}

impl<S: Mailstore> ImapSession<S> {
    /// The counts STATUS reports: from the folder's shared listing (caught
    /// up with the database) when it is held or the folder is large and
    /// RECENT is not asked (the listing does not keep \Recent), else in one
    /// aggregate query.
    async fn counts(
        &self,
        folder: &Folder,
        items: &[StatusDataItemName],
    ) -> Result<FolderCounts, crate::store::StoreError> {
        if !items.contains(&StatusDataItemName::Recent)
            && let Some(listing) = self.mailstore.whole_listing(folder).await?
        {
            return Ok(counts_of(&listing));
        }
        self.mailstore.folder_counts(folder.id).await
    }

    /// STATUS.
    pub(in crate::imap) async fn status(
        &mut self,
        tag: Tag<'static>,
        mailbox: Mailbox<'static>,
        items: &[StatusDataItemName],
    ) {
        let Some(folder) = self.resolve_folder(&tag, &mailbox).await else {
            return;
        };
        let counts = match self.counts(&folder, items).await {
            Ok(c) => c,
            Err(e) => return self.store_failed(tag, e),
        };
        let out = status_items(&folder, &counts, items);
        if let Some(mailbox) = self.wire_mailbox(&folder.name) {
            self.data(Data::Status {
                mailbox,
                items: out.into(),
            });
        }
        // STATUS (HIGHESTMODSEQ) is a CONDSTORE enabling command (RFC 7162 §3.1).
        let first = items.contains(&StatusDataItemName::HighestModSeq) && self.enable_condstore();
        let code = self.highest_modseq(first);
        self.ok(tag, code, "STATUS completed");
    }
}
