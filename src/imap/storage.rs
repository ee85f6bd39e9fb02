//! The IMAP session's seam: everything an [`ImapSession`] asks of the rest of
//! the server (folders, entries, flags, changes, APPEND, login), in the
//! session's own terms, as SMTP's session asks its `Backend`. Real sessions
//! use [`ImapServices`] (`services.rs`: store, delivery path, authenticator);
//! the session's tests (`session/tests.rs`) drive the same state machine over
//! an in-memory fake, without a database.
//!
//! [`ImapSession`]: super::session::ImapSession
//! [`ImapServices`]: super::services::ImapServices

use std::future::Future;
use std::net::IpAddr;

use futures_core::Stream;

use tokio::sync::OwnedRwLockReadGuard;

use super::listing::{Listing, ListingRead};
use crate::delivery::AcceptError;
pub use crate::delivery::quota::{Quota, QuotaRefusal};
use crate::identity::auth::CredentialStamp;
use crate::identity::sasl::Credentials;
use crate::store::StoreError;
pub use crate::store::entries::{Entry, FlagChange, FlagOp, SearchField, StoredNeedle};
pub use crate::store::folder_read::{ChangesSince, FolderChanges};
pub use crate::store::folders::{Folder, FolderCounts};

/// The outcome of LOGIN or AUTHENTICATE, as the session answers it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Login {
    /// Logged in.
    Success {
        /// Account id.
        account_id: i64,
        /// Its address.
        address: String,
        /// Its credentials now: the session ends when they change.
        stamp: CredentialStamp,
    },
    /// Unknown account or wrong credentials (indistinguishable to the client).
    Invalid,
    /// A patient account: patients use the web space, not IMAP.
    Patient,
    /// Valid, but the patient space is closed (also refused).
    Closed,
    /// Too many failures: the session ends.
    Throttled,
    /// The check itself failed: try again later.
    Unavailable,
}

/// Everything an IMAP session asks of storage and identity. Folder and entry
/// ids are the store's; flags are stored text (`\Seen $Label`); every change
/// bumps the folder's HIGHESTMODSEQ, which is how a session notices it.
pub trait Mailstore: Send + Sync + 'static {
    /// Checks a password login from `ip` (throttled, delayed on failure).
    fn login(&self, ip: IpAddr, credentials: Credentials) -> impl Future<Output = Login> + Send;

    /// Maps a verified client certificate to an account (SASL EXTERNAL);
    /// `authzid` chooses among several.
    fn login_certificate(
        &self,
        subject: &str,
        authzid: Option<&str>,
    ) -> impl Future<Output = Login> + Send;

    /// Whether the account is still enabled with the credentials it logged in with.
    fn still_valid(
        &self,
        account_id: i64,
        stamp: &CredentialStamp,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// The account's folders, by name.
    fn folders(
        &self,
        account_id: i64,
    ) -> impl Future<Output = Result<Vec<Folder>, StoreError>> + Send;

    /// One folder of the account by its UTF-8 name.
    fn folder(
        &self,
        account_id: i64,
        name: &str,
    ) -> impl Future<Output = Result<Option<Folder>, StoreError>> + Send;

    /// One folder by id, with its current counters (None once deleted).
    fn folder_by_id(
        &self,
        folder_id: i64,
    ) -> impl Future<Output = Result<Option<Folder>, StoreError>> + Send;

    /// What STATUS counts.
    fn folder_counts(
        &self,
        folder_id: i64,
    ) -> impl Future<Output = Result<FolderCounts, StoreError>> + Send;

    /// Creates a folder and its missing parents; `Conflict` when it exists.
    fn create_folder(
        &self,
        account_id: i64,
        name: &str,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Deletes a folder with its entries.
    fn delete_folder(&self, folder_id: i64) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Renames `from` (and its children) to `to`; renaming INBOX moves its
    /// messages into a new folder and leaves INBOX empty (RFC 3501 §6.3.5).
    /// `Conflict` when `to` exists.
    fn rename_folder(
        &self,
        account_id: i64,
        from: &Folder,
        to: &str,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// SUBSCRIBE (`true`) or UNSUBSCRIBE.
    fn set_subscribed(
        &self,
        folder_id: i64,
        subscribed: bool,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// The folder's UIDs above `after`, ascending (0: all of them; a
    /// session's last known UID: what arrived since).
    fn folder_uids(
        &self,
        folder_id: i64,
        after: i64,
    ) -> impl Future<Output = Result<Vec<i64>, StoreError>> + Send;

    /// (UID, flags, \Recent) of every entry, by UID.
    fn entry_flags(
        &self,
        folder_id: i64,
    ) -> impl Future<Output = Result<Vec<(i64, String, bool)>, StoreError>> + Send;

    /// Takes \Recent off the folder's entries and returns their UIDs: only
    /// the session that claims them reports them as recent.
    fn claim_recent(
        &self,
        folder_id: i64,
    ) -> impl Future<Output = Result<Vec<i64>, StoreError>> + Send;

    /// (UID, flags, MODSEQ) of the entries changed after `modseq`, by UID.
    fn changed_since(
        &self,
        folder_id: i64,
        modseq: i64,
    ) -> impl Future<Output = Result<Vec<(i64, String, i64)>, StoreError>> + Send;

    /// UIDs expunged (or moved away) after `modseq`, ascending (QRESYNC).
    fn vanished_since(
        &self,
        folder_id: i64,
        modseq: i64,
    ) -> impl Future<Output = Result<Vec<i64>, StoreError>> + Send;

    /// What a session's check of its selected folder reads ([`FolderChanges`]),
    /// None once the folder is gone. By default four reads; the real store
    /// answers in one statement (one snapshot, one round trip).
    fn folder_changes(
        &self,
        folder_id: i64,
        since: ChangesSince,
    ) -> impl Future<Output = Result<Option<FolderChanges>, StoreError>> + Send {
        async move {
            let Some(folder) = self.folder_by_id(folder_id).await? else {
                return Ok(None);
            };
            Ok(Some(FolderChanges {
                counters: (folder.highestmodseq, folder.uidnext),
                expunged: self.vanished_since(folder_id, since.expunged_after).await?,
                new: self.folder_uids(folder_id, since.uid_above).await?,
                changed: self.changed_since(folder_id, since.changed_after).await?,
                unclaimed: true,
            }))
        }
    }

    /// Every entry of the folder that may meet `needles` (all of them
    /// when there are none), by UID (SEARCH): a superset of the matches.
    fn entries(
        &self,
        folder_id: i64,
        needles: &[StoredNeedle],
    ) -> impl Future<Output = Result<Vec<Entry>, StoreError>> + Send;

    /// The entries with UIDs in `first..=last`, by UID; the stored ENVELOPE
    /// and BODYSTRUCTURE only when asked for (FETCH).
    fn entries_in_range(
        &self,
        folder_id: i64,
        first: i64,
        last: i64,
        envelope: bool,
        bodystructure: bool,
    ) -> impl Future<Output = Result<Vec<Entry>, StoreError>> + Send;

    /// The folder's shared listing (`listing.rs`), caught up, when a metadata
    /// FETCH (or a SEARCH) of `count` of its `folder_len` messages is worth
    /// answering from it; no listing: read the entries instead (also when a
    /// small FETCH would have to wait for other sessions using the listing).
    /// With `since`, the session's changes may come with it, read in the
    /// same round trip.
    fn listing(
        &self,
        folder_id: i64,
        uidvalidity: i64,
        folder_len: usize,
        count: usize,
        since: Option<ChangesSince>,
    ) -> impl Future<Output = Result<ListingRead, StoreError>> + Send;

    /// The listing of a whole folder (SELECT, STATUS), when it is listed or
    /// large enough: [`Mailstore::listing`] of every message UIDNEXT allows.
    fn whole_listing(
        &self,
        folder: &Folder,
    ) -> impl Future<Output = Result<Option<OwnedRwLockReadGuard<Listing>>, StoreError>> + Send
    {
        let size_at_most = usize::try_from(folder.uidnext.saturating_sub(1)).unwrap_or(0);
        let (id, uidvalidity) = (folder.id, folder.uidvalidity);
        async move {
            Ok(self
                .listing(id, uidvalidity, size_at_most, size_at_most, None)
                .await?
                .listing)
        }
    }

    /// A message's content by its [`Entry::blob_hash`].
    fn blob(&self, hash: &str) -> impl Future<Output = Result<Vec<u8>, StoreError>> + Send;

    /// (UID, content) of every entry, by UID, one at a time (text SEARCH).
    fn contents(
        &self,
        folder_id: i64,
    ) -> impl Stream<Item = Result<(i64, Vec<u8>), StoreError>> + Send + '_;

    /// STORE: changes the flags of `uids` (those changed after
    /// `unchanged_since` are conflicts, RFC 7162), one new MODSEQ for all.
    fn store_flags(
        &self,
        folder_id: i64,
        uids: &[i64],
        op: FlagOp,
        flags: &[String],
        unchanged_since: Option<i64>,
    ) -> impl Future<Output = Result<FlagChange, StoreError>> + Send;

    /// `professional` set the thread-ending keyword on `uids`: ends the
    /// patient threads those messages belong to; returns how many.
    fn end_threads(
        &self,
        professional: &str,
        folder_id: i64,
        uids: &[i64],
    ) -> impl Future<Output = Result<usize, StoreError>> + Send;

    /// Removes `uids` (None: every entry) that carry `\Deleted`; returns the
    /// UIDs removed.
    fn expunge(
        &self,
        folder_id: i64,
        uids: Option<&[i64]>,
    ) -> impl Future<Output = Result<Vec<i64>, StoreError>> + Send;

    /// COPY: returns (source UID, new UID) pairs.
    fn copy_messages(
        &self,
        from: i64,
        uids: &[i64],
        to: i64,
    ) -> impl Future<Output = Result<Vec<(i64, i64)>, StoreError>> + Send;

    /// MOVE: as [`Mailstore::copy_messages`], the sources expunged in the same transaction.
    fn move_messages(
        &self,
        from: i64,
        uids: &[i64],
        to: i64,
    ) -> impl Future<Output = Result<Vec<(i64, i64)>, StoreError>> + Send;

    /// APPEND by `account` to its folder: the messages are stored (through
    /// the delivery path for real sessions) all or none (MULTIAPPEND), within
    /// the account's quota. Returns their UIDs, in order.
    fn append(
        &self,
        account: &str,
        folder_id: i64,
        messages: Vec<ToAppend>,
    ) -> impl Future<Output = Result<Vec<i64>, AcceptError>> + Send;

    /// The account's quota in force (GETQUOTA, GETQUOTAROOT, the check
    /// before COPY); None: the account is gone.
    fn quota(
        &self,
        account_id: i64,
    ) -> impl Future<Output = Result<Option<Quota>, StoreError>> + Send;
}

/// One message of an APPEND, ready to store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToAppend {
    /// Flags, normalised.
    pub flags: String,
    /// INTERNALDATE (Unix seconds); None: now.
    pub internal_date: Option<i64>,
    /// The message.
    pub content: Vec<u8>,
}
