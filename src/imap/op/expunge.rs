//! EXPUNGE and UID EXPUNGE (RFC 3501 §6.4.3, RFC 4315).

use imap_codec::imap_types::core::Tag;
use imap_codec::imap_types::response::Code;
use imap_codec::imap_types::sequence::SequenceSet;

use crate::imap::session::ImapSession;
use crate::imap::storage::Mailstore;

impl<S: Mailstore> ImapSession<S> {
    /// EXPUNGE, or UID EXPUNGE of `set`.
    pub(in crate::imap) async fn expunge(&mut self, tag: Tag<'static>, set: Option<SequenceSet>) {
        let Some(sel) = self.selected.clone() else {
            return self.bad(tag, "Select a mailbox first");
        };
        if sel.read_only {
            return self.no(tag, Some(Code::ReadOnly), "Mailbox is read-only");
        }
        let only = set.map(|s| sel.uids.resolve(&s, true));
        if let Err(e) = self.mailstore.expunge(sel.id, only.as_deref()).await {
            return self.store_failed(tag, e);
        }
        self.sync_selected(true).await;
        self.ok(tag, None, "EXPUNGE completed");
    }
}
