//! The [`Mailstore`] of real sessions: the store, the delivery path (APPEND),
//! the authenticator and the shared folder listings. Only translation here:
//! the rules stay in the session and in the layers below.

use std::net::IpAddr;

use futures_core::Stream;

use super::listing::{ListingRead, Listings};
use super::storage::{
    ChangesSince, Entry, FlagChange, FlagOp, Folder, FolderChanges, FolderCounts, Login, Mailstore,
    Quota, StoredNeedle, ToAppend,
};
use crate::delivery::{AcceptError, Acceptor, Append};
use crate::identity::auth::{Authenticator, CredentialStamp, LoginResult};
use crate::identity::sasl::Credentials;
use crate::store::{Store, StoreError};

/// What every IMAP session of the server shares, behind [`Mailstore`].
#[derive(Debug)]
pub struct ImapServices {
    /// The store.
    pub store: Store,
    /// Password and certificate logins.
    pub auth: Authenticator,
    /// The delivery path (APPEND stores through it).
    pub delivery: Acceptor,
    /// Folder listings shared by the sessions (header FETCH of large folders).
    pub listings: Listings,
}

fn login(result: LoginResult) -> Login {
    match result {
        LoginResult::Success(account) => Login::Success {
            stamp: CredentialStamp::of(&account),
            account_id: account.id,
            address: account.address,
        },
        LoginResult::Invalid => Login::Invalid,
        LoginResult::Patient(_) => Login::Patient,
        LoginResult::Closed => Login::Closed,
        LoginResult::Throttled => Login::Throttled,
        LoginResult::Unavailable => Login::Unavailable,
    }
}

impl Mailstore for ImapServices {
    async fn login(&self, ip: IpAddr, credentials: Credentials) -> Login {
        login(self.auth.login(ip, credentials).await)
    }

    async fn login_certificate(&self, subject: &str, authzid: Option<&str>) -> Login {
        login(self.auth.login_certificate(subject, authzid).await)
    }

    async fn still_valid(
        &self,
        account_id: i64,
        stamp: &CredentialStamp,
    ) -> Result<bool, StoreError> {
        self.auth.still_valid(account_id, stamp).await
    }

    async fn folders(&self, account_id: i64) -> Result<Vec<Folder>, StoreError> {
        self.store.folders(account_id).await
    }

    async fn folder(&self, account_id: i64, name: &str) -> Result<Option<Folder>, StoreError> {
        self.store.folder(account_id, name).await
    }

    async fn folder_by_id(&self, folder_id: i64) -> Result<Option<Folder>, StoreError> {
        self.store.folder_by_id(folder_id).await
    }

    async fn folder_counts(&self, folder_id: i64) -> Result<FolderCounts, StoreError> {
        self.store.folder_counts(folder_id).await
    }

    async fn create_folder(&self, account_id: i64, name: &str) -> Result<(), StoreError> {
        self.store.create_folder(account_id, name).await
    }

    async fn delete_folder(&self, folder_id: i64) -> Result<(), StoreError> {
        self.store.delete_folder(folder_id).await
    }

    async fn rename_folder(
        &self,
        account_id: i64,
        from: &Folder,
        to: &str,
    ) -> Result<(), StoreError> {
        if from.name == "INBOX" {
            self.store.rename_inbox(account_id, from.id, to).await
        } else {
            self.store.rename_folder(account_id, &from.name, to).await
        }
    }

    async fn set_subscribed(&self, folder_id: i64, subscribed: bool) -> Result<(), StoreError> {
        self.store.set_subscribed(folder_id, subscribed).await
    }

    async fn folder_uids(&self, folder_id: i64, after: i64) -> Result<Vec<i64>, StoreError> {
        self.store.folder_uids(folder_id, after).await
    }

    async fn entry_flags(&self, folder_id: i64) -> Result<Vec<(i64, String, bool)>, StoreError> {
        self.store.entry_flags(folder_id).await
    }

    async fn claim_recent(&self, folder_id: i64) -> Result<Vec<i64>, StoreError> {
        self.store.claim_recent(folder_id).await
    }

    async fn changed_since(
        &self,
        folder_id: i64,
        modseq: i64,
    ) -> Result<Vec<(i64, String, i64)>, StoreError> {
        self.store.changed_since(folder_id, modseq).await
    }

    async fn folder_changes(
        &self,
        folder_id: i64,
        since: ChangesSince,
    ) -> Result<Option<FolderChanges>, StoreError> {
        self.store.folder_changes(folder_id, since).await
    }

    async fn vanished_since(&self, folder_id: i64, modseq: i64) -> Result<Vec<i64>, StoreError> {
        self.store.vanished_since(folder_id, modseq).await
    }

    async fn entries(
        &self,
        folder_id: i64,
        needles: &[StoredNeedle],
    ) -> Result<Vec<Entry>, StoreError> {
        self.store.entries(folder_id, needles).await
    }

    async fn entries_in_range(
        &self,
        folder_id: i64,
        first: i64,
        last: i64,
        envelope: bool,
        bodystructure: bool,
    ) -> Result<Vec<Entry>, StoreError> {
        self.store
            .entries_in_range(folder_id, first, last, envelope, bodystructure)
            .await
    }

    async fn listing(
        &self,
        folder_id: i64,
        uidvalidity: i64,
        folder_len: usize,
        count: usize,
        since: Option<ChangesSince>,
    ) -> Result<ListingRead, StoreError> {
        if !self.listings.worth_using(folder_id, folder_len, count) {
            return Ok(ListingRead::default());
        }
        // Only a FETCH small enough to read its rows instead goes without waiting.
        let wait = count >= crate::imap::listing::FILL_THRESHOLD;
        self.listings
            .get(&self.store, folder_id, uidvalidity, wait, since)
            .await
    }

    async fn blob(&self, hash: &str) -> Result<Vec<u8>, StoreError> {
        self.store.blob(hash).await
    }

    fn contents(
        &self,
        folder_id: i64,
    ) -> impl Stream<Item = Result<(i64, Vec<u8>), StoreError>> + Send + '_ {
        self.store.stream_contents(folder_id)
    }

    async fn store_flags(
        &self,
        folder_id: i64,
        uids: &[i64],
        op: FlagOp,
        flags: &[String],
        unchanged_since: Option<i64>,
    ) -> Result<FlagChange, StoreError> {
        self.store
            .store_flags(folder_id, uids, op, flags, unchanged_since)
            .await
    }

    async fn end_threads(
        &self,
        professional: &str,
        folder_id: i64,
        uids: &[i64],
    ) -> Result<usize, StoreError> {
        crate::threads::end_by_keyword(&self.store, professional, folder_id, uids).await
    }

    async fn expunge(&self, folder_id: i64, uids: Option<&[i64]>) -> Result<Vec<i64>, StoreError> {
        self.store.expunge(folder_id, uids).await
    }

    async fn copy_messages(
        &self,
        from: i64,
        uids: &[i64],
        to: i64,
    ) -> Result<Vec<(i64, i64)>, StoreError> {
        self.store.copy_messages(from, uids, to).await
    }

    async fn move_messages(
        &self,
        from: i64,
        uids: &[i64],
        to: i64,
    ) -> Result<Vec<(i64, i64)>, StoreError> {
        self.store.move_messages(from, uids, to).await
    }

    async fn append(
        &self,
        account: &str,
        folder_id: i64,
        messages: Vec<ToAppend>,
    ) -> Result<Vec<i64>, AcceptError> {
        // The flags stay here while the contents move on.
        let mut flags = Vec::with_capacity(messages.len());
        let mut rest = Vec::with_capacity(messages.len());
        for m in messages {
            flags.push(m.flags);
            rest.push((m.internal_date, m.content));
        }
        let appends: Vec<(Append<'_>, Vec<u8>)> = flags
            .iter()
            .zip(rest)
            .map(|(flags, (internal_date, content))| {
                let append = Append {
                    account,
                    mailbox_id: folder_id,
                    flags,
                    internal_date,
                };
                (append, content)
            })
            .collect();
        let accepted = self.delivery.accept_all(appends).await?;
        Ok(accepted
            .iter()
            .map(|a| a.stored.placements.first().map(|p| p.1).unwrap_or(0))
            .collect())
    }

    async fn quota(&self, account_id: i64) -> Result<Option<Quota>, StoreError> {
        self.delivery.quota(account_id).await
    }
}
