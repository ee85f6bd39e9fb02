//! Folder listings kept in memory and shared by every session of this process:
//! what a header FETCH of a whole folder (UID FLAGS RFC822.SIZE ENVELOPE …)
//! reads, with each ENVELOPE already in wire form, so that answering it copies
//! bytes instead of reading and converting one database row per message, and
//! the stored SUBJECT/FROM/TO/CC/BCC text, so that a SEARCH on those keys
//! scans memory instead of every row of the folder (Dovecot keeps its index
//! and cache files for the same reasons).
//!
//! A listing is never staler than a direct read: each use first catches up
//! with the database ([`Store::listing_since`] from the highest MODSEQ it has
//! seen, expunges included), so changes made by other sessions, or by other
//! nodes on the same PostgreSQL database, are in it. A new UIDVALIDITY starts
//! it afresh; a deleted folder's listing is dropped. Memory is bounded by
//! `imap.listing_cache_mb`, counted in octets held: the least recently used
//! folders are dropped first, and a folder estimated at more than half the
//! bound is never filled (its FETCHes read the rows).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use tokio::sync::{OwnedRwLockReadGuard, RwLock};

use crate::store::entries::{Entry, SearchField};
use crate::store::folder_read::{ChangesSince, FolderChanges, FolderRead, ListingChange};
use crate::store::messages::SearchHeaders;
use crate::store::{Store, StoreError};

mod search_text;

use search_text::SearchText;
pub use search_text::Spans;

/// A FETCH of at least this many messages fills the listing of a folder that
/// has none yet; smaller FETCHes use one only when it is already there.
pub const FILL_THRESHOLD: usize = 100;

/// Octets a listed message is assumed to take before its listing is read
/// (flags, envelope, search text, map node), to decide whether a folder is
/// worth filling.
const ESTIMATE_PER_MESSAGE: usize = 480;

/// Octets one listed message holds beyond its flags, envelope, blob hash and
/// search text.
const OVERHEAD_PER_MESSAGE: usize = 160;

/// What a header FETCH needs of one message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    /// MODSEQ of the last change.
    pub modseq: i64,
    /// INTERNALDATE, Unix seconds.
    pub internal_date: i64,
    /// RFC822.SIZE.
    pub size: i64,
    /// Flags and keywords as stored, space-separated.
    pub flags: Box<str>,
    /// ENVELOPE in wire form; None when the message has neither form stored.
    pub envelope: Option<Box<[u8]>>,
    /// The message row.
    pub message_id: i64,
    /// Content hash (to read the blob).
    pub blob_hash: Box<str>,
    /// Where its SUBJECT/FROM/TO/CC/BCC text, as SEARCH matches it, lies
    /// in the listing's [`SearchText`] (None: not stored).
    pub search: Spans,
}

impl Listed {
    /// Octets held for this message.
    fn weight(&self) -> usize {
        OVERHEAD_PER_MESSAGE
            + self.flags.len()
            + self.envelope.as_ref().map_or(0, |e| e.len())
            + self.blob_hash.len()
    }

    fn from_change(change: ListingChange, search: Spans) -> Listed {
        let envelope = change.imap_envelope.or_else(|| {
            // Stored before the wire form existed: convert the JSON once, here.
            change
                .envelope
                .as_deref()
                .and_then(|json| serde_json::from_str(json).ok())
                .map(|e| crate::mime::structure::wire::envelope(&e))
        });
        Listed {
            modseq: change.modseq,
            internal_date: change.internal_date,
            size: change.size,
            flags: change.flags.into_boxed_str(),
            envelope: envelope.map(Vec::into_boxed_slice),
            message_id: change.message_id,
            blob_hash: change.blob_hash.into_boxed_str(),
            search,
        }
    }
}

/// One folder's listing.
#[derive(Debug)]
pub struct Listing {
    uidvalidity: i64,
    /// Highest MODSEQ seen: everything up to it is in `entries`.
    seen: i64,
    entries: BTreeMap<i64, Listed>,
    /// Octets held by `entries`.
    weight: usize,
    /// The listed messages' stored search text.
    text: SearchText,
}

impl Listing {
    fn empty(uidvalidity: i64) -> Listing {
        Listing {
            uidvalidity,
            seen: 0,
            entries: BTreeMap::new(),
            weight: 0,
            text: SearchText::default(),
        }
    }

    /// Octets held, the search text included.
    fn held(&self) -> usize {
        self.weight + self.text.weight()
    }

    /// A listed message's stored text of `field` (None: not stored).
    pub fn text(&self, listed: &Listed, field: SearchField) -> Option<&str> {
        self.text.get(&listed.search, field)
    }

    /// The UIDs of the listed messages whose stored text of `field` holds
    /// `finder`'s needle (one without a newline), ascending: one search over
    /// the field's text of the whole folder. None when some message lacks
    /// that text (its content would have to be read).
    pub fn holding(
        &self,
        field: SearchField,
        finder: &memchr::memmem::Finder<'_>,
    ) -> Option<Vec<i64>> {
        let mut uids = self.text.find(field, finder)?;
        uids.retain(|uid| self.entries.contains_key(uid));
        Some(uids)
    }

    /// A listed message as an [`Entry`] of a folder read from the database
    /// (\\Recent as `recent` says; BODYSTRUCTURE is not listed).
    pub fn entry(&self, uid: i64, listed: &Listed, recent: bool) -> Entry {
        let text = |field| self.text(listed, field).map(str::to_owned);
        Entry {
            uid,
            message_id: listed.message_id,
            flags: listed.flags.to_string(),
            recent,
            modseq: listed.modseq,
            internal_date: listed.internal_date,
            size: listed.size,
            blob_hash: listed.blob_hash.to_string(),
            envelope: None,
            imap_envelope: listed.envelope.as_ref().map(|e| e.to_vec()),
            bodystructure: None,
            search: SearchHeaders {
                subject: text(SearchField::Subject),
                from: text(SearchField::From),
                to: text(SearchField::To),
                cc: text(SearchField::Cc),
                bcc: text(SearchField::Bcc),
            },
        }
    }

    /// The message with this UID, if the folder holds it.
    pub fn get(&self, uid: i64) -> Option<&Listed> {
        self.entries.get(&uid)
    }

    /// Every listed message, by UID.
    pub fn iter(&self) -> impl Iterator<Item = (i64, &Listed)> {
        self.entries.iter().map(|(uid, listed)| (*uid, listed))
    }

    /// Number of messages listed.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when the folder is empty.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Applies changes read after some earlier mark, in any order. A change
    /// at or below `self.seen` is already here, or was overtaken by a newer
    /// one (another session caught up from a later read first): it is skipped.
    fn apply(&mut self, changes: Vec<ListingChange>) {
        let seen = self.seen;
        for change in changes {
            if change.modseq <= seen {
                continue;
            }
            self.seen = self.seen.max(change.modseq);
            let uid = change.uid;
            let old = if change.gone {
                let old = self.entries.remove(&uid);
                if let Some(old) = &old {
                    self.text.remove(&old.search);
                }
                old
            } else {
                // A message's text never changes: a listed one keeps its own.
                let spans = match self.entries.get(&uid) {
                    Some(old) => old.search,
                    None => self.text.add(uid, &change.search),
                };
                let listed = Listed::from_change(change, spans);
                self.weight += listed.weight();
                self.entries.insert(uid, listed)
            };
            if let Some(old) = old {
                self.weight = self.weight.saturating_sub(old.weight());
            }
        }
        if self.text.wasteful() {
            self.text.compact(
                self.entries
                    .iter_mut()
                    .map(|(uid, l)| (*uid, &mut l.search)),
            );
        }
    }
}

/// What [`Listings::get`] read: the listing (None: read the rows
/// instead), and the session's changes when asked for and read with it.
#[derive(Default)]
pub struct ListingRead {
    /// The listing, caught up.
    pub listing: Option<OwnedRwLockReadGuard<Listing>>,
    /// The session's changes, from the same snapshot as the catch-up.
    pub changes: Option<FolderChanges>,
}

struct Slot {
    listing: Arc<RwLock<Listing>>,
    used: u64,
    /// Octets held, as of its last use.
    weight: usize,
}

#[derive(Default)]
struct Folders {
    slots: HashMap<i64, Slot>,
    clock: u64,
}

/// The listings of this process.
pub struct Listings {
    max_bytes: usize,
    folders: Mutex<Folders>,
}

impl std::fmt::Debug for Listings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Listings")
            .field("max_bytes", &self.max_bytes)
            .finish_non_exhaustive()
    }
}

impl Listings {
    /// Listings holding at most about `max_bytes` octets in all (0: none).
    pub fn new(max_bytes: usize) -> Listings {
        Listings {
            max_bytes,
            folders: Mutex::new(Folders::default()),
        }
    }

    fn folders(&self) -> std::sync::MutexGuard<'_, Folders> {
        // The map stays consistent even if a holder panicked: keep using it.
        self.folders
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Whether to answer a metadata FETCH of `count` of the `folder_len`
    /// messages of this folder from its listing.
    pub fn worth_using(&self, folder_id: i64, folder_len: usize, count: usize) -> bool {
        let held = self.folders().slots.contains_key(&folder_id);
        self.max_bytes > 0
            && (held
                || (count >= FILL_THRESHOLD
                    && folder_len.saturating_mul(ESTIMATE_PER_MESSAGE) <= self.max_bytes / 2))
    }

    /// The listing of a folder, caught up with the database, for the caller
    /// to read (other sessions read it at the same time). The database is
    /// read outside the lock, so that sessions reading the listing never wait
    /// for another's query; only applying what it returned takes the lock
    /// alone, briefly. The first fill is read under that lock, once. With
    /// `since`, the same read brings the session's [`FolderChanges`].
    ///
    /// Without `wait`, no listing instead of waiting for the lock (other
    /// sessions applying changes): a small FETCH then reads its rows, which
    /// costs less than waiting.
    pub async fn get(
        &self,
        store: &Store,
        folder_id: i64,
        uidvalidity: i64,
        wait: bool,
        since: Option<ChangesSince>,
    ) -> Result<ListingRead, StoreError> {
        let shared = {
            let mut folders = self.folders();
            folders.clock += 1;
            let clock = folders.clock;
            let slot = folders.slots.entry(folder_id).or_insert_with(|| Slot {
                listing: Arc::new(RwLock::new(Listing::empty(uidvalidity))),
                used: clock,
                weight: 0,
            });
            slot.used = clock;
            slot.listing.clone()
        };
        let none = ListingRead::default;
        let (mark, valid) = {
            let listing = match shared.try_read() {
                Ok(listing) => listing,
                Err(_) if !wait => return Ok(none()),
                Err(_) => shared.read().await,
            };
            (listing.seen, listing.uidvalidity == uidvalidity)
        };
        if !wait && (mark == 0 || !valid) {
            return Ok(none());
        }
        if mark != 0 && valid {
            // Catch up outside the lock; the same read tells a folder deleted
            // (its rows go without tombstones) or recreated.
            let Some(read) = self
                .checked(store, folder_id, uidvalidity, mark, since)
                .await?
            else {
                return Ok(self.dropped(folder_id, shared, uidvalidity).await);
            };
            let changes = read.changes;
            if read.listing.is_empty() {
                // Nothing new since the mark: read it as it is (or newer).
                let listing = match shared.clone().try_read_owned() {
                    Ok(listing) => Some(listing),
                    Err(_) if !wait => None,
                    Err(_) => Some(shared.read_owned().await),
                };
                return Ok(ListingRead { listing, changes });
            }
            let mut listing = match shared.clone().try_write_owned() {
                Ok(listing) => listing,
                Err(_) if !wait => {
                    return Ok(ListingRead {
                        listing: None,
                        changes,
                    });
                }
                Err(_) => shared.clone().write_owned().await,
            };
            if listing.uidvalidity == uidvalidity {
                listing.apply(read.listing);
                self.account(folder_id, listing.held());
                let listing = Some(listing.downgrade());
                return Ok(ListingRead { listing, changes });
            }
        }
        // First fill, or a listing of an earlier UIDVALIDITY: read under the
        // lock, once (whoever comes next finds it done).
        let mut listing = shared.clone().write_owned().await;
        if listing.uidvalidity != uidvalidity {
            *listing = Listing::empty(uidvalidity);
        }
        let mark = listing.seen;
        let Some(read) = self
            .checked(store, folder_id, uidvalidity, mark, since)
            .await?
        else {
            drop(listing);
            return Ok(self.dropped(folder_id, shared, uidvalidity).await);
        };
        listing.apply(read.listing);
        self.account(folder_id, listing.held());
        Ok(ListingRead {
            listing: Some(listing.downgrade()),
            changes: read.changes,
        })
    }

    /// [`Store::listing_since`] `mark`; None when the folder is gone or no
    /// longer has this UIDVALIDITY.
    async fn checked(
        &self,
        store: &Store,
        folder_id: i64,
        uidvalidity: i64,
        mark: i64,
        since: Option<ChangesSince>,
    ) -> Result<Option<FolderRead>, StoreError> {
        Ok(store
            .listing_since(folder_id, mark, since)
            .await?
            .filter(|read| read.uidvalidity == uidvalidity))
    }

    /// Forgets a folder that was deleted or recreated: an empty listing,
    /// held by nobody else, for the caller that found it so.
    async fn dropped(
        &self,
        folder_id: i64,
        shared: Arc<RwLock<Listing>>,
        uidvalidity: i64,
    ) -> ListingRead {
        self.folders().slots.remove(&folder_id);
        let mut listing = shared.write_owned().await;
        *listing = Listing::empty(uidvalidity);
        ListingRead {
            listing: Some(listing.downgrade()),
            changes: None,
        }
    }

    /// Records a folder's size and drops the least recently used folders
    /// while the total is over the bound (this one last).
    fn account(&self, folder_id: i64, weight: usize) {
        let mut folders = self.folders();
        if let Some(slot) = folders.slots.get_mut(&folder_id) {
            slot.weight = weight;
        }
        let mut total: usize = folders.slots.values().map(|s| s.weight).sum();
        while total > self.max_bytes {
            let victim = folders
                .slots
                .iter()
                .filter(|(id, _)| **id != folder_id)
                .min_by_key(|(_, s)| s.used)
                .map(|(id, _)| *id)
                .unwrap_or(folder_id);
            let Some(dropped) = folders.slots.remove(&victim) else {
                break;
            };
            total = total.saturating_sub(dropped.weight);
        }
    }

    /// Number of folders held.
    #[cfg(test)]
    pub(crate) fn folders_held(&self) -> usize {
        self.folders().slots.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn change(uid: i64, modseq: i64, flags: &str, gone: bool) -> ListingChange {
        ListingChange {
            uid,
            modseq,
            flags: flags.to_string(),
            internal_date: 1_700_000_000,
            size: 100,
            imap_envelope: (!gone).then(|| b"(NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL)".to_vec()),
            envelope: None,
            message_id: uid + 1000,
            blob_hash: "ab".repeat(32),
            search: SearchHeaders {
                subject: Some(format!("compte rendu {uid}")),
                ..SearchHeaders::default()
            },
            gone,
        }
    }

    #[test]
    fn changes_apply_in_any_order_and_raise_the_mark() {
        let mut l = Listing::empty(1);
        l.apply(vec![change(2, 5, "", false), change(1, 3, "\\Seen", false)]);
        assert_eq!(l.seen, 5);
        assert_eq!(l.len(), 2);
        let weight = l.weight;
        assert_eq!(
            weight,
            l.entries.values().map(Listed::weight).sum::<usize>()
        );
        l.apply(vec![
            change(1, 7, "", true),
            change(2, 6, "\\Flagged", false),
        ]);
        assert_eq!(l.seen, 7);
        assert!(l.get(1).is_none());
        assert_eq!(l.get(2).map(|e| &*e.flags), Some("\\Flagged"));
        assert_eq!(
            l.weight,
            l.entries.values().map(Listed::weight).sum::<usize>()
        );
        assert!(l.weight < weight);
    }

    /// Two sessions read the changes outside the lock and apply them in the
    /// wrong order: the older read changes nothing the newer one applied.
    #[test]
    fn an_older_read_applied_late_changes_nothing() {
        let mut l = Listing::empty(1);
        l.apply(vec![change(1, 1, "", false), change(2, 2, "", false)]);
        let older = vec![change(1, 3, "\\Seen", false)];
        let newer = vec![
            change(1, 4, "\\Flagged", false),
            change(2, 5, "", true),
            change(3, 5, "", false),
        ];
        l.apply(newer);
        let weight = l.weight;
        l.apply(older);
        assert_eq!(l.seen, 5);
        assert_eq!(l.get(1).map(|e| &*e.flags), Some("\\Flagged"));
        assert!(l.get(2).is_none());
        assert_eq!(l.len(), 2);
        assert_eq!(l.weight, weight);
        let listed = l.get(3).expect("listed");
        let entry = l.entry(3, listed, true);
        assert_eq!(entry.message_id, 1003);
        assert_eq!(entry.search.subject.as_deref(), Some("compte rendu 3"));
        assert!(entry.recent);
    }

    #[test]
    fn old_rows_get_their_json_envelope_converted() {
        let env = crate::mime::structure::envelope(b"Subject: Bonjour\r\n\r\n");
        let mut c = change(1, 1, "", false);
        c.imap_envelope = None;
        c.envelope = serde_json::to_string(&env).ok();
        let listed = Listed::from_change(c, Default::default());
        assert_eq!(
            listed.envelope.as_deref(),
            Some(&crate::mime::structure::wire::envelope(&env)[..])
        );
        let mut c = change(2, 2, "", false);
        c.imap_envelope = None;
        assert_eq!(Listed::from_change(c, Default::default()).envelope, None);
    }

    #[test]
    fn least_recently_used_folders_go_first() {
        let listings = Listings::new(10);
        for id in 1..=3 {
            let mut f = listings.folders();
            f.clock += 1;
            let used = f.clock;
            f.slots.insert(
                id,
                Slot {
                    listing: Arc::new(RwLock::new(Listing::empty(1))),
                    used,
                    weight: 0,
                },
            );
        }
        listings.account(1, 4);
        listings.account(2, 4);
        assert_eq!(listings.folders_held(), 3);
        // Folder 3 grows to 6: 14 > 10, folder 1 (least recently used) goes.
        listings.account(3, 6);
        let held: Vec<i64> = {
            let f = listings.folders();
            let mut ids: Vec<i64> = f.slots.keys().copied().collect();
            ids.sort();
            ids
        };
        assert_eq!(held, vec![2, 3]);
        // A folder alone over the bound is not kept either.
        listings.account(3, 11);
        assert_eq!(listings.folders_held(), 0);
        assert!(!Listings::new(0).worth_using(1, 10_000, 10_000));
        // A folder estimated over half the bound is not filled; a small FETCH
        // of a folder not held uses the rows.
        let listings = Listings::new(ESTIMATE_PER_MESSAGE * 1000);
        assert!(listings.worth_using(9, 500, 500));
        assert!(!listings.worth_using(9, 501, 501));
        assert!(!listings.worth_using(9, 500, FILL_THRESHOLD - 1));
    }
}
