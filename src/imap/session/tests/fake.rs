//! An in-memory [`Mailstore`] for the session's tests: one account, folders and
//! entries in a mutex, MODSEQ and UIDs counted as the store counts them (every
//! change takes a new MODSEQ from the folder), and a log of what reached it.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::{Mutex, MutexGuard};

use futures_core::Stream;

use crate::delivery::AcceptError;
use crate::identity::AccountKind;
use crate::identity::auth::CredentialStamp;
use crate::identity::sasl::Credentials;
use crate::imap::listing::ListingRead;
use crate::imap::storage::{
    Entry, FlagChange, FlagOp, Folder, FolderCounts, Login, Mailstore, Quota, StoredNeedle,
    ToAppend,
};
use crate::store::StoreError;
use crate::store::accounts::Account;
use crate::store::entries::normalize_flags;

/// The one account.
pub(super) const ADDRESS: &str = "dr.a@mes.test";
/// Its password (`throttle` and `patient` give those outcomes).
pub(super) const PASSWORD: &str = "secret";
/// INBOX's id and UIDVALIDITY.
pub(super) const INBOX: i64 = 1;
/// INBOX's UIDVALIDITY.
pub(super) const UIDVALIDITY: i64 = 42;

/// A message in a folder.
#[derive(Debug, Clone)]
struct Stored {
    flags: String,
    recent: bool,
    modseq: i64,
    internal_date: i64,
    content: Vec<u8>,
}

/// What APPEND handed over.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Appended {
    /// The logged-in account.
    pub(super) account: String,
    /// Target folder.
    pub(super) folder_id: i64,
    /// Flags, normalised.
    pub(super) flags: String,
    /// INTERNALDATE given.
    pub(super) internal_date: Option<i64>,
    /// The message.
    pub(super) content: Vec<u8>,
}

#[derive(Debug, Default)]
struct State {
    folders: Vec<Folder>,
    entries: BTreeMap<i64, BTreeMap<i64, Stored>>,
    /// (folder, uid, modseq) of removed entries.
    vanished: Vec<(i64, i64, i64)>,
    appended: Vec<Appended>,
    calls: Vec<String>,
    disabled: bool,
    /// The account's limits: KiB and messages (None: no limit).
    limits: (Option<u64>, Option<u64>),
}

impl State {
    fn folder_mut(&mut self, id: i64) -> Result<&mut Folder, StoreError> {
        self.folders
            .iter_mut()
            .find(|f| f.id == id)
            .ok_or_else(|| StoreError::NotFound(format!("mailbox {id}")))
    }

    fn next_modseq(&mut self, folder_id: i64) -> Result<i64, StoreError> {
        let folder = self.folder_mut(folder_id)?;
        folder.highestmodseq += 1;
        Ok(folder.highestmodseq)
    }

    /// Files a message: a new UID and MODSEQ, \Recent.
    fn insert(&mut self, folder_id: i64, flags: &str, date: i64, content: Vec<u8>) -> i64 {
        let Ok(folder) = self.folder_mut(folder_id) else {
            return 0;
        };
        let uid = folder.uidnext;
        folder.uidnext += 1;
        folder.highestmodseq += 1;
        let stored = Stored {
            flags: normalize_flags(flags.split(' ')),
            recent: true,
            modseq: folder.highestmodseq,
            internal_date: date,
            content,
        };
        self.entries
            .entry(folder_id)
            .or_default()
            .insert(uid, stored);
        uid
    }

    /// The account's quota: its limits, and every entry of every folder.
    fn quota(&self) -> Quota {
        let contents = self.entries.values().flat_map(|e| e.values());
        let (octets, messages) =
            contents.fold((0, 0), |(o, n), s| (o + s.content.len() as u64, n + 1));
        Quota {
            account_id: 1,
            address: ADDRESS.into(),
            storage_used: octets,
            storage_limit_kib: self.limits.0,
            messages_used: messages,
            messages_limit: self.limits.1,
        }
    }

    fn entries_of(&self, folder_id: i64) -> impl Iterator<Item = (&i64, &Stored)> {
        self.entries.get(&folder_id).into_iter().flatten()
    }

    fn new_folder(&mut self, name: &str) -> i64 {
        let id = self.folders.iter().map(|f| f.id).max().unwrap_or(0) + 1;
        self.folders.push(Folder {
            id,
            account_id: 1,
            name: name.to_string(),
            special_use: None,
            subscribed: false,
            uidvalidity: 100 + id,
            uidnext: 1,
            highestmodseq: 1,
        });
        id
    }

    fn copy(&mut self, from: i64, uids: &[i64], to: i64) -> Result<Vec<(i64, i64)>, StoreError> {
        let sources: Vec<(i64, Stored)> = self
            .entries_of(from)
            .filter(|(uid, _)| uids.contains(uid))
            .map(|(uid, s)| (*uid, s.clone()))
            .collect();
        let mut pairs = Vec::new();
        for (uid, s) in sources {
            let new = self.insert(to, &s.flags, s.internal_date, s.content);
            pairs.push((uid, new));
        }
        Ok(pairs)
    }

    fn remove(&mut self, folder_id: i64, uids: &[i64]) -> Result<(), StoreError> {
        if uids.is_empty() {
            return Ok(());
        }
        let modseq = self.next_modseq(folder_id)?;
        for &uid in uids {
            if let Some(entries) = self.entries.get_mut(&folder_id) {
                entries.remove(&uid);
            }
            self.vanished.push((folder_id, uid, modseq));
        }
        Ok(())
    }
}

/// The in-memory mailstore; tests change it between commands as other
/// sessions or deliveries would.
#[derive(Debug)]
pub(super) struct Fake(Mutex<State>);

fn stamp() -> CredentialStamp {
    CredentialStamp::of(&Account {
        id: 1,
        address: ADDRESS.into(),
        domain: "mes.test".into(),
        kind: AccountKind::Professional,
        display_name: "Dr A".into(),
        profession: None,
        rpps: None,
        ins: None,
        password_hash: None,
        cert_subject: None,
        disabled: false,
        emergency_regulator: false,
        totp_secret: None,
        establishment: None,
    })
}

/// A message with this subject.
pub(super) fn message(subject: &str) -> Vec<u8> {
    format!("From: b@mes.test\r\nTo: {ADDRESS}\r\nSubject: {subject}\r\n\r\nHello\r\n").into_bytes()
}

impl Fake {
    /// INBOX (id 1, UIDVALIDITY 42, empty) and Sent.
    pub(super) fn new() -> Fake {
        let mut state = State::default();
        state.new_folder("INBOX");
        state.folders[0].uidvalidity = UIDVALIDITY;
        let sent = state.new_folder("Sent");
        if let Ok(f) = state.folder_mut(sent) {
            f.special_use = Some("\\Sent".into());
            f.subscribed = true;
        }
        Fake(Mutex::new(state))
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.0.lock().expect("fake state")
    }

    fn call(&self, what: String) {
        self.state().calls.push(what);
    }

    /// A delivery to `folder_id`; returns the UID.
    pub(super) fn deliver(&self, folder_id: i64, flags: &str, content: Vec<u8>) -> i64 {
        self.state()
            .insert(folder_id, flags, 1_700_000_000, content)
    }

    /// Another session sets the flags of a message.
    pub(super) fn set_flags(&self, folder_id: i64, uid: i64, flags: &str) {
        let mut state = self.state();
        let Ok(modseq) = state.next_modseq(folder_id) else {
            return;
        };
        if let Some(s) = state
            .entries
            .get_mut(&folder_id)
            .and_then(|e| e.get_mut(&uid))
        {
            s.flags = normalize_flags(flags.split(' '));
            s.modseq = modseq;
        }
    }

    /// The flags of a message, None once it is gone.
    pub(super) fn flags(&self, folder_id: i64, uid: i64) -> Option<String> {
        let state = self.state();
        let entry = state.entries.get(&folder_id)?.get(&uid)?;
        Some(entry.flags.clone())
    }

    /// The UIDs of a folder.
    pub(super) fn uids(&self, folder_id: i64) -> Vec<i64> {
        self.state()
            .entries_of(folder_id)
            .map(|(u, _)| *u)
            .collect()
    }

    /// What APPEND handed over, in order.
    pub(super) fn appended(&self) -> Vec<Appended> {
        self.state().appended.clone()
    }

    /// The calls that change something, and logins, in order.
    pub(super) fn calls(&self) -> Vec<String> {
        self.state().calls.clone()
    }

    /// The operator sets the account's limits (KiB, messages; None: no limit).
    pub(super) fn set_quota(&self, storage_kib: Option<u64>, messages: Option<u64>) {
        self.state().limits = (storage_kib, messages);
    }

    /// The operator disables the account.
    pub(super) fn disable(&self) {
        self.state().disabled = true;
    }
}

impl Mailstore for Fake {
    async fn login(&self, _: IpAddr, credentials: Credentials) -> Login {
        self.call(format!("login {}", credentials.username));
        if credentials.username != ADDRESS {
            return Login::Invalid;
        }
        match credentials.password.as_str() {
            PASSWORD => Login::Success {
                account_id: 1,
                address: ADDRESS.into(),
                stamp: stamp(),
            },
            "throttle" => Login::Throttled,
            "patient" => Login::Patient,
            _ => Login::Invalid,
        }
    }

    async fn login_certificate(&self, subject: &str, _: Option<&str>) -> Login {
        self.call(format!("certificate {subject}"));
        Login::Invalid
    }

    async fn still_valid(&self, _: i64, stamp_now: &CredentialStamp) -> Result<bool, StoreError> {
        Ok(!self.state().disabled && *stamp_now == stamp())
    }

    async fn folders(&self, _: i64) -> Result<Vec<Folder>, StoreError> {
        let mut all = self.state().folders.clone();
        all.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(all)
    }

    async fn folder(&self, _: i64, name: &str) -> Result<Option<Folder>, StoreError> {
        Ok(self
            .state()
            .folders
            .iter()
            .find(|f| f.name == name)
            .cloned())
    }

    async fn folder_by_id(&self, folder_id: i64) -> Result<Option<Folder>, StoreError> {
        Ok(self
            .state()
            .folders
            .iter()
            .find(|f| f.id == folder_id)
            .cloned())
    }

    async fn folder_counts(&self, folder_id: i64) -> Result<FolderCounts, StoreError> {
        let state = self.state();
        let mut counts = FolderCounts::default();
        for (_, s) in state.entries_of(folder_id) {
            let has = |flag: &str| s.flags.split(' ').any(|f| f.eq_ignore_ascii_case(flag));
            let size = s.content.len() as i64;
            counts.messages += 1;
            counts.recent += i64::from(s.recent);
            counts.unseen += i64::from(!has("\\Seen"));
            counts.size += size;
            if has("\\Deleted") {
                counts.deleted += 1;
                counts.deleted_size += size;
            }
        }
        Ok(counts)
    }

    async fn create_folder(&self, _: i64, name: &str) -> Result<(), StoreError> {
        let mut state = self.state();
        state.calls.push(format!("create {name}"));
        if state.folders.iter().any(|f| f.name == name) {
            return Err(StoreError::Conflict(format!("mailbox {name}")));
        }
        state.new_folder(name);
        Ok(())
    }

    async fn delete_folder(&self, folder_id: i64) -> Result<(), StoreError> {
        let mut state = self.state();
        state.calls.push(format!("delete {folder_id}"));
        state.folders.retain(|f| f.id != folder_id);
        state.entries.remove(&folder_id);
        Ok(())
    }

    async fn rename_folder(&self, _: i64, from: &Folder, to: &str) -> Result<(), StoreError> {
        let mut state = self.state();
        state.calls.push(format!("rename {} {to}", from.name));
        if state.folders.iter().any(|f| f.name == to) {
            return Err(StoreError::Conflict(format!("mailbox {to}")));
        }
        if from.name == "INBOX" {
            let target = state.new_folder(to);
            let uids: Vec<i64> = state.entries_of(from.id).map(|(u, _)| *u).collect();
            state.copy(from.id, &uids, target)?;
            return state.remove(from.id, &uids);
        }
        let folder = state.folder_mut(from.id)?;
        folder.name = to.to_string();
        folder.uidvalidity += 1000;
        Ok(())
    }

    async fn set_subscribed(&self, folder_id: i64, subscribed: bool) -> Result<(), StoreError> {
        self.state().folder_mut(folder_id)?.subscribed = subscribed;
        Ok(())
    }

    async fn folder_uids(&self, folder_id: i64, after: i64) -> Result<Vec<i64>, StoreError> {
        Ok(self
            .uids(folder_id)
            .into_iter()
            .filter(|&u| u > after)
            .collect())
    }

    async fn entry_flags(&self, folder_id: i64) -> Result<Vec<(i64, String, bool)>, StoreError> {
        let state = self.state();
        let rows = state.entries_of(folder_id);
        Ok(rows.map(|(u, s)| (*u, s.flags.clone(), s.recent)).collect())
    }

    async fn claim_recent(&self, folder_id: i64) -> Result<Vec<i64>, StoreError> {
        let mut state = self.state();
        let mut claimed = Vec::new();
        for (uid, s) in state.entries.entry(folder_id).or_default().iter_mut() {
            if std::mem::take(&mut s.recent) {
                claimed.push(*uid);
            }
        }
        Ok(claimed)
    }

    async fn changed_since(
        &self,
        folder_id: i64,
        modseq: i64,
    ) -> Result<Vec<(i64, String, i64)>, StoreError> {
        let state = self.state();
        let rows = state
            .entries_of(folder_id)
            .filter(|(_, s)| s.modseq > modseq);
        Ok(rows.map(|(u, s)| (*u, s.flags.clone(), s.modseq)).collect())
    }

    async fn vanished_since(&self, folder_id: i64, modseq: i64) -> Result<Vec<i64>, StoreError> {
        let state = self.state();
        let gone = state.vanished.iter();
        let mut uids: Vec<i64> = gone
            .filter(|(f, _, m)| *f == folder_id && *m > modseq)
            .map(|(_, u, _)| *u)
            .collect();
        uids.sort_unstable();
        Ok(uids)
    }

    /// Every entry (a superset of what `needles` select: SEARCH filters).
    async fn entries(
        &self,
        folder_id: i64,
        _needles: &[StoredNeedle],
    ) -> Result<Vec<Entry>, StoreError> {
        let mut entries = self
            .entries_in_range(folder_id, 0, i64::MAX, false, false)
            .await?;
        // As delivery stores it: in-process SEARCH takes the stored path.
        let state = self.state();
        let contents: std::collections::HashMap<i64, &Vec<u8>> = state
            .entries_of(folder_id)
            .map(|(&uid, s)| (uid, &s.content))
            .collect();
        for e in &mut entries {
            if let Some(content) = contents.get(&e.uid) {
                e.search = crate::delivery::prepare::search_headers(content);
            }
        }
        Ok(entries)
    }

    async fn entries_in_range(
        &self,
        folder_id: i64,
        first: i64,
        last: i64,
        _: bool,
        _: bool,
    ) -> Result<Vec<Entry>, StoreError> {
        let state = self.state();
        let rows = state
            .entries_of(folder_id)
            .filter(|(u, _)| (first..=last).contains(*u));
        Ok(rows
            .map(|(&uid, s)| Entry {
                uid,
                message_id: uid,
                flags: s.flags.clone(),
                recent: s.recent,
                modseq: s.modseq,
                internal_date: s.internal_date,
                size: s.content.len() as i64,
                blob_hash: format!("{folder_id}/{uid}"),
                envelope: None,
                imap_envelope: None,
                bodystructure: None,
                search: Default::default(),
            })
            .collect())
    }

    async fn listing(
        &self,
        _: i64,
        _: i64,
        _: usize,
        _: usize,
        _: Option<crate::imap::storage::ChangesSince>,
    ) -> Result<ListingRead, StoreError> {
        Ok(ListingRead::default())
    }

    async fn blob(&self, hash: &str) -> Result<Vec<u8>, StoreError> {
        let missing = || StoreError::NotFound(format!("blob {hash}"));
        let (folder, uid) = hash.split_once('/').ok_or_else(missing)?;
        let (folder, uid) = (
            folder.parse().map_err(|_| missing())?,
            uid.parse().map_err(|_| missing())?,
        );
        let state = self.state();
        let entry = state.entries.get(&folder).and_then(|e| e.get(&uid));
        entry.map(|s| s.content.clone()).ok_or_else(missing)
    }

    fn contents(
        &self,
        folder_id: i64,
    ) -> impl Stream<Item = Result<(i64, Vec<u8>), StoreError>> + Send + '_ {
        let rows: Vec<_> = self
            .state()
            .entries_of(folder_id)
            .map(|(u, s)| Ok((*u, s.content.clone())))
            .collect();
        futures_util::stream::iter(rows)
    }

    async fn store_flags(
        &self,
        folder_id: i64,
        uids: &[i64],
        op: FlagOp,
        flags: &[String],
        unchanged_since: Option<i64>,
    ) -> Result<FlagChange, StoreError> {
        let mut state = self.state();
        state.calls.push(format!(
            "store {folder_id} {uids:?} {op:?} {}",
            flags.join(" ")
        ));
        let modseq = state.next_modseq(folder_id)?;
        let mut change = FlagChange::default();
        for (uid, s) in state.entries.entry(folder_id).or_default().iter_mut() {
            if !uids.contains(uid) {
                continue;
            }
            if unchanged_since.is_some_and(|u| s.modseq > u) {
                change.conflicts.push(*uid);
                continue;
            }
            let given = flags.iter().map(String::as_str);
            let new = match op {
                FlagOp::Replace => normalize_flags(given),
                FlagOp::Add => normalize_flags(s.flags.split(' ').chain(given)),
                FlagOp::Remove => normalize_flags(
                    s.flags
                        .split(' ')
                        .filter(|f| !flags.iter().any(|x| x.eq_ignore_ascii_case(f))),
                ),
            };
            if new == s.flags && unchanged_since.is_none() {
                continue;
            }
            s.flags = new.clone();
            s.modseq = modseq;
            change.changed.push((*uid, new, modseq));
        }
        Ok(change)
    }

    async fn end_threads(
        &self,
        who: &str,
        folder_id: i64,
        uids: &[i64],
    ) -> Result<usize, StoreError> {
        self.call(format!("end threads {who} {folder_id} {uids:?}"));
        Ok(0)
    }

    async fn expunge(&self, folder_id: i64, uids: Option<&[i64]>) -> Result<Vec<i64>, StoreError> {
        let mut state = self.state();
        state.calls.push(format!("expunge {folder_id} {uids:?}"));
        let removed: Vec<i64> = state
            .entries_of(folder_id)
            .filter(|(u, s)| {
                s.flags.split(' ').any(|f| f == "\\Deleted")
                    && uids.is_none_or(|only| only.contains(u))
            })
            .map(|(u, _)| *u)
            .collect();
        state.remove(folder_id, &removed)?;
        Ok(removed)
    }

    async fn copy_messages(
        &self,
        from: i64,
        uids: &[i64],
        to: i64,
    ) -> Result<Vec<(i64, i64)>, StoreError> {
        let mut state = self.state();
        state.calls.push(format!("copy {from} {uids:?} {to}"));
        state.copy(from, uids, to)
    }

    async fn move_messages(
        &self,
        from: i64,
        uids: &[i64],
        to: i64,
    ) -> Result<Vec<(i64, i64)>, StoreError> {
        let mut state = self.state();
        state.calls.push(format!("move {from} {uids:?} {to}"));
        let pairs = state.copy(from, uids, to)?;
        let moved: Vec<i64> = pairs.iter().map(|p| p.0).collect();
        state.remove(from, &moved)?;
        Ok(pairs)
    }

    async fn append(
        &self,
        account: &str,
        folder_id: i64,
        messages: Vec<ToAppend>,
    ) -> Result<Vec<i64>, AcceptError> {
        let mut state = self.state();
        // As the delivery path: all or none, within the quota.
        let octets = messages.iter().map(|m| m.content.len() as u64).sum();
        state.quota().admit(octets, messages.len() as u64)?;
        let mut uids = Vec::with_capacity(messages.len());
        for m in messages {
            state.appended.push(Appended {
                account: account.to_string(),
                folder_id,
                flags: m.flags.clone(),
                internal_date: m.internal_date,
                content: m.content.clone(),
            });
            let date = m.internal_date.unwrap_or(1_700_000_000);
            uids.push(state.insert(folder_id, &m.flags, date, m.content));
        }
        Ok(uids)
    }

    async fn quota(&self, _: i64) -> Result<Option<Quota>, StoreError> {
        Ok(Some(self.state().quota()))
    }
}
