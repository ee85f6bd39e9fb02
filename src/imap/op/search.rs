//! SEARCH with every RFC 3501 key: flags, dates and sizes from the stored rows;
//! header and text keys over decoded headers and bodies (content parsed only
//! when a key needs it).

use std::num::NonZeroU32;

use imap_codec::imap_types::IntoStatic;
use imap_codec::imap_types::core::{AString, Charset, Tag, Vec1};
use imap_codec::imap_types::response::{Code, Data};
use imap_codec::imap_types::search::SearchKey;

use super::returns::Returns;
use crate::cpu_pool::CpuPool;
use crate::imap::listing::{Listed, Listing};
use crate::imap::sequence;
use crate::imap::session::{ImapSession, Selected};
use crate::imap::storage::Entry;
use crate::imap::storage::Mailstore;
use crate::imap::storage::{SearchField, StoredNeedle};
use crate::mime::search::{Parsed, parse};

fn needle(s: &AString<'_>) -> String {
    String::from_utf8_lossy(s.as_ref()).to_lowercase()
}

/// The needle borrowed when lower-casing cannot change it (ASCII without
/// capitals, the usual case), so that matching the stored text allocates nothing.
fn needle_cow<'a>(s: &'a AString<'_>) -> std::borrow::Cow<'a, str> {
    match std::str::from_utf8(s.as_ref()) {
        Ok(t) if t.bytes().all(|b| b.is_ascii() && !b.is_ascii_uppercase()) => t.into(),
        _ => needle(s).into(),
    }
}

/// Whether the stored lines `text` (`delivery::prepare::search_headers`) hold `needle`,
/// as [`header_contains`] answers on the parsed headers: some line contains
/// it (an empty needle: there is a line).
fn stored_contains(text: &str, needle: &str) -> bool {
    if needle.is_empty() {
        !text.is_empty()
    } else if needle.contains('\n') {
        // No line holds a newline, so none holds this needle.
        false
    } else {
        text.contains(needle)
    }
}

/// True when the content `key` needs is only what delivery stores
/// (SUBJECT, FROM, TO, CC, BCC): with the stored text, no content is read.
fn stored_suffices(key: &SearchKey<'_>) -> bool {
    match key {
        SearchKey::And(keys) => keys.as_ref().iter().all(stored_suffices),
        SearchKey::Not(k) => stored_suffices(k),
        SearchKey::Or(a, b) => stored_suffices(a) && stored_suffices(b),
        SearchKey::Bcc(_)
        | SearchKey::Cc(_)
        | SearchKey::From(_)
        | SearchKey::Subject(_)
        | SearchKey::To(_) => true,
        // Any other key that reads content (BODY, TEXT, HEADER, SENT*) needs it.
        k => !needs_content(k),
    }
}

/// The SUBJECT/FROM/TO/CC/BCC keys every match must meet (those of the
/// top-level conjunction): the database leaves out the entries whose stored
/// text cannot meet them (`Store::entries`).
fn conjunct_needles(key: &SearchKey<'_>, out: &mut Vec<StoredNeedle>) {
    let mut keys = Vec::new();
    conjuncts(key, &mut keys);
    out.extend(keys.into_iter().map(|(field, s)| StoredNeedle {
        field,
        needle: needle(s),
    }));
}

/// The (field, string) of each SUBJECT/FROM/TO/CC/BCC key of the top-level
/// conjunction of `key`.
fn conjuncts<'k, 'a>(key: &'k SearchKey<'a>, out: &mut Vec<(SearchField, &'k AString<'a>)>) {
    out.push(match key {
        SearchKey::And(keys) => {
            for k in keys.as_ref() {
                conjuncts(k, out);
            }
            return;
        }
        SearchKey::Subject(s) => (SearchField::Subject, s),
        SearchKey::From(s) => (SearchField::From, s),
        SearchKey::To(s) => (SearchField::To, s),
        SearchKey::Cc(s) => (SearchField::Cc, s),
        SearchKey::Bcc(s) => (SearchField::Bcc, s),
        _ => return,
    });
}

/// True when `item` has the stored text of every key in `key`.
fn has_stored(key: &SearchKey<'_>, item: &Item<'_>) -> bool {
    let s = item;
    match key {
        SearchKey::And(keys) => keys.as_ref().iter().all(|k| has_stored(k, item)),
        SearchKey::Not(k) => has_stored(k, item),
        SearchKey::Or(a, b) => has_stored(a, item) && has_stored(b, item),
        SearchKey::Subject(_) => s.subject.is_some(),
        SearchKey::From(_) => s.from.is_some(),
        SearchKey::To(_) => s.to.is_some(),
        SearchKey::Cc(_) => s.cc.is_some(),
        SearchKey::Bcc(_) => s.bcc.is_some(),
        _ => true,
    }
}

/// True when a key tests MODSEQ (RFC 7162 §3.1.5: the response then carries the highest one).
pub(in crate::imap) fn uses_modseq(key: &SearchKey<'_>) -> bool {
    match key {
        SearchKey::And(keys) => keys.as_ref().iter().any(uses_modseq),
        SearchKey::Not(k) => uses_modseq(k),
        SearchKey::Or(a, b) => uses_modseq(a) || uses_modseq(b),
        SearchKey::ModSequence { .. } => true,
        _ => false,
    }
}

/// True when a key reads the body (BODY, TEXT), not only headers.
fn needs_body(key: &SearchKey<'_>) -> bool {
    match key {
        SearchKey::And(keys) => keys.as_ref().iter().any(needs_body),
        SearchKey::Not(k) => needs_body(k),
        SearchKey::Or(a, b) => needs_body(a) || needs_body(b),
        SearchKey::Body(_) | SearchKey::Text(_) => true,
        _ => false,
    }
}

fn needs_content(key: &SearchKey<'_>) -> bool {
    match key {
        SearchKey::And(keys) => keys.as_ref().iter().any(needs_content),
        SearchKey::Not(k) => needs_content(k),
        SearchKey::Or(a, b) => needs_content(a) || needs_content(b),
        SearchKey::Bcc(_)
        | SearchKey::Body(_)
        | SearchKey::Cc(_)
        | SearchKey::From(_)
        | SearchKey::Header(..)
        | SearchKey::Subject(_)
        | SearchKey::Text(_)
        | SearchKey::To(_)
        | SearchKey::SentBefore(_)
        | SearchKey::SentOn(_)
        | SearchKey::SentSince(_) => true,
        _ => false,
    }
}

/// The MODSEQ a SEARCH with a MODSEQ key reports, of `modseqs` (those of
/// the messages found, in order): with only MIN and/or MAX asked for, that of
/// the message(s) reported; otherwise the highest of all found (RFC 7162
/// §3.1.5, RFC 4731 §3.2). None when nothing was found.
fn reported_modseq(options: Option<&[String]>, modseqs: &[i64]) -> Option<i64> {
    let (&first, &last) = (modseqs.first()?, modseqs.last()?);
    let has = |o: &str| options.is_some_and(|opts| opts.iter().any(|x| x == o));
    if !has("ALL") && !has("COUNT") && (has("MIN") || has("MAX")) {
        let min = if has("MIN") { first } else { 0 };
        let max = if has("MAX") { last } else { 0 };
        return Some(min.max(max));
    }
    modseqs.iter().copied().max()
}

/// What SEARCH reads of one message besides its content: an [`Entry`] read
/// from the database, or a message of the folder's listing.
struct Item<'a> {
    uid: i64,
    flags: &'a str,
    modseq: i64,
    internal_date: i64,
    size: i64,
    subject: Option<&'a str>,
    from: Option<&'a str>,
    to: Option<&'a str>,
    cc: Option<&'a str>,
    bcc: Option<&'a str>,
}

impl<'a> From<&'a Entry> for Item<'a> {
    fn from(e: &'a Entry) -> Item<'a> {
        Item {
            uid: e.uid,
            flags: &e.flags,
            modseq: e.modseq,
            internal_date: e.internal_date,
            size: e.size,
            subject: e.search.subject.as_deref(),
            from: e.search.from.as_deref(),
            to: e.search.to.as_deref(),
            cc: e.search.cc.as_deref(),
            bcc: e.search.bcc.as_deref(),
        }
    }
}

impl<'a> Item<'a> {
    fn listed(uid: i64, l: &'a Listed, listing: &'a Listing) -> Item<'a> {
        Item {
            uid,
            flags: &l.flags,
            modseq: l.modseq,
            internal_date: l.internal_date,
            size: l.size,
            subject: listing.text(l, SearchField::Subject),
            from: listing.text(l, SearchField::From),
            to: listing.text(l, SearchField::To),
            cc: listing.text(l, SearchField::Cc),
            bcc: listing.text(l, SearchField::Bcc),
        }
    }
}

/// The searchers of a key's SUBJECT/FROM/TO/CC/BCC needles, each built once
/// for a scan of many messages (found by the address of the key's string,
/// which does not move during the scan). A needle that is empty or holds a
/// newline has none: `stored_contains` answers it.
#[derive(Default)]
struct Finders(Vec<(usize, memchr::memmem::Finder<'static>)>);

impl Finders {
    fn of(key: &SearchKey<'_>) -> Finders {
        let mut out = Finders::default();
        out.collect(key);
        out
    }

    fn collect(&mut self, key: &SearchKey<'_>) {
        match key {
            SearchKey::And(keys) => keys.as_ref().iter().for_each(|k| self.collect(k)),
            SearchKey::Not(k) => self.collect(k),
            SearchKey::Or(a, b) => {
                self.collect(a);
                self.collect(b);
            }
            SearchKey::Bcc(s)
            | SearchKey::Cc(s)
            | SearchKey::From(s)
            | SearchKey::To(s)
            | SearchKey::Subject(s) => {
                let n = needle(s);
                if !n.is_empty() && !n.contains('\n') {
                    let at = std::ptr::from_ref(s) as usize;
                    self.0
                        .push((at, memchr::memmem::Finder::new(n.as_bytes()).into_owned()));
                }
            }
            _ => {}
        }
    }

    fn get(&self, s: &AString<'_>) -> Option<&memchr::memmem::Finder<'static>> {
        let at = std::ptr::from_ref(s) as usize;
        self.0.iter().find(|(a, _)| *a == at).map(|(_, f)| f)
    }
}

struct Ctx<'a> {
    sel: &'a Selected,
    /// Searchers built for this scan (none: each match lower-cases its needle).
    finders: Option<&'a Finders>,
    entry: &'a Item<'a>,
    seq: i64,
    parsed: Option<&'a Parsed>,
    /// Match SUBJECT/FROM/TO/CC/BCC on the entry's stored text, not `parsed`.
    stored: bool,
}

/// SUBJECT, FROM, TO, CC or BCC (`name`) on the stored text `text` when the
/// context says so, otherwise on the parsed headers.
fn address_or_subject(c: &Ctx<'_>, text: Option<&str>, name: &str, s: &AString<'_>) -> bool {
    match text {
        Some(text) if c.stored => match c.finders.and_then(|f| f.get(s)) {
            Some(finder) => finder.find(text.as_bytes()).is_some(),
            None => stored_contains(text, &needle_cow(s)),
        },
        _ => header_contains(c.parsed, name, &needle(s)),
    }
}

fn has_flag(e: &Item<'_>, flag: &str) -> bool {
    e.flags.split(' ').any(|f| f.eq_ignore_ascii_case(flag))
}

fn header_contains(p: Option<&Parsed>, name: &str, value: &str) -> bool {
    p.is_some_and(|p| {
        p.headers
            .iter()
            .any(|(n, v)| n == name && v.contains(value))
    })
}

fn date_of(secs: i64) -> Option<chrono::NaiveDate> {
    chrono::DateTime::from_timestamp(secs, 0).map(|d| d.date_naive())
}

fn matches(key: &SearchKey<'_>, c: &Ctx<'_>) -> bool {
    let e = c.entry;
    match key {
        SearchKey::And(keys) => keys.as_ref().iter().all(|k| matches(k, c)),
        SearchKey::SequenceSet(set) => sequence::contains(set, c.seq, c.sel.uids.len() as i64),
        SearchKey::Uid(set) => sequence::contains(set, e.uid, c.sel.uids.last().unwrap_or(0)),
        SearchKey::All => true,
        SearchKey::Answered => has_flag(e, "\\Answered"),
        SearchKey::Deleted => has_flag(e, "\\Deleted"),
        SearchKey::Draft => has_flag(e, "\\Draft"),
        SearchKey::Flagged => has_flag(e, "\\Flagged"),
        SearchKey::Seen => has_flag(e, "\\Seen"),
        SearchKey::Unanswered => !has_flag(e, "\\Answered"),
        SearchKey::Undeleted => !has_flag(e, "\\Deleted"),
        SearchKey::Undraft => !has_flag(e, "\\Draft"),
        SearchKey::Unflagged => !has_flag(e, "\\Flagged"),
        SearchKey::Unseen => !has_flag(e, "\\Seen"),
        SearchKey::Recent => c.sel.recent.contains(&e.uid),
        SearchKey::Old => !c.sel.recent.contains(&e.uid),
        SearchKey::New => c.sel.recent.contains(&e.uid) && !has_flag(e, "\\Seen"),
        SearchKey::Keyword(k) => has_flag(e, k.as_ref()),
        SearchKey::Unkeyword(k) => !has_flag(e, k.as_ref()),
        SearchKey::Larger(n) => e.size > i64::from(*n),
        SearchKey::Smaller(n) => e.size < i64::from(*n),
        SearchKey::Before(d) => date_of(e.internal_date).is_some_and(|x| x < *d.as_ref()),
        SearchKey::On(d) => date_of(e.internal_date).is_some_and(|x| x == *d.as_ref()),
        SearchKey::Since(d) => date_of(e.internal_date).is_some_and(|x| x >= *d.as_ref()),
        SearchKey::SentBefore(d) => c
            .parsed
            .and_then(|p| p.sent)
            .is_some_and(|x| x < *d.as_ref()),
        SearchKey::SentOn(d) => c
            .parsed
            .and_then(|p| p.sent)
            .is_some_and(|x| x == *d.as_ref()),
        SearchKey::SentSince(d) => c
            .parsed
            .and_then(|p| p.sent)
            .is_some_and(|x| x >= *d.as_ref()),
        SearchKey::Bcc(s) => address_or_subject(c, e.bcc, "bcc", s),
        SearchKey::Cc(s) => address_or_subject(c, e.cc, "cc", s),
        SearchKey::From(s) => address_or_subject(c, e.from, "from", s),
        SearchKey::To(s) => address_or_subject(c, e.to, "to", s),
        SearchKey::Subject(s) => address_or_subject(c, e.subject, "subject", s),
        SearchKey::Header(name, value) => {
            let name = String::from_utf8_lossy(name.as_ref()).to_ascii_lowercase();
            header_contains(c.parsed, &name, &needle(value))
        }
        SearchKey::Body(s) => c.parsed.is_some_and(|p| p.body.contains(&needle(s))),
        SearchKey::Text(s) => {
            let n = needle(s);
            c.parsed.is_some_and(|p| {
                p.body.contains(&n) || p.headers.iter().any(|(_, v)| v.contains(&n))
            })
        }
        SearchKey::ModSequence { modseq, .. } => e.modseq as u64 >= *modseq,
        SearchKey::Not(k) => !matches(k, c),
        SearchKey::Or(a, b) => matches(a, c) || matches(b, c),
        #[allow(unreachable_patterns)]
        _ => false,
    }
}

/// One message a search matched.
pub(in crate::imap) struct Hit {
    /// The entry.
    pub(in crate::imap) entry: Entry,
    /// Its sequence number in the session.
    pub(in crate::imap) seq: NonZeroU32,
    /// Its header block, when the caller asked for it.
    pub(in crate::imap) header: Option<Vec<u8>>,
}

/// True when `key` names messages by sequence number (which expunges shift).
pub(in crate::imap) fn uses_sequence_numbers(key: &SearchKey<'_>) -> bool {
    match key {
        SearchKey::And(keys) => keys.as_ref().iter().any(uses_sequence_numbers),
        SearchKey::Not(k) => uses_sequence_numbers(k),
        SearchKey::Or(a, b) => uses_sequence_numbers(a) || uses_sequence_numbers(b),
        SearchKey::SequenceSet(_) => true,
        _ => false,
    }
}

/// Whether `entry` (sequence number `seq`, content `raw` if read) matches
/// `key` (for the contexts kept up to date, `op/context.rs`).
pub(in crate::imap) fn entry_matches(
    key: &SearchKey<'_>,
    sel: &Selected,
    entry: &Entry,
    seq: i64,
    raw: Option<&[u8]>,
) -> bool {
    let parsed = raw.map(|r| parse(r, needs_body(key)));
    matches(
        key,
        &Ctx {
            sel,
            finders: None,
            entry: &Item::from(entry),
            seq,
            parsed: parsed.as_ref(),
            stored: false,
        },
    )
}

/// True when matching `key` reads the message content.
pub(in crate::imap) fn reads_content(key: &SearchKey<'_>) -> bool {
    needs_content(key)
}

/// The charset of SEARCH, SORT and THREAD: UTF-8 and US-ASCII only.
pub(in crate::imap) fn charset_ok(charset: &Charset<'_>) -> bool {
    let name = charset.as_ref().to_ascii_uppercase();
    name == "UTF-8" || name == "US-ASCII"
}

/// The process's pool for SEARCH's scans of a listing: one slot per core,
/// at a lower priority (`cpu_pool`).
fn scans() -> &'static CpuPool {
    static POOL: std::sync::LazyLock<CpuPool> = std::sync::LazyLock::new(|| {
        CpuPool::new(
            "imap-scan",
            std::thread::available_parallelism().map_or(2, usize::from),
        )
    });
    &POOL
}

/// [`ImapSession::find`] over the folder's listing, for a key that reads no
/// content but the stored SUBJECT/FROM/TO/CC/BCC text: memory instead of a
/// scan of the folder's rows. None when some message lacks the stored text
/// the key needs (its content must then be read).
fn find_listed(sel: &Selected, key: &SearchKey<'_>, listing: &Listing) -> Option<Vec<Hit>> {
    let content = needs_content(key);
    let finders = Finders::of(key);
    // Every match holds each needle of the top-level conjunction: the
    // longest one, found in the field's text of the whole folder at once,
    // leaves few messages to match in full.
    let mut keys = Vec::new();
    conjuncts(key, &mut keys);
    let narrowed = keys
        .iter()
        .filter_map(|&(field, s)| Some((field, finders.get(s)?)))
        .max_by_key(|(_, finder)| finder.needle().len())
        .and_then(|(field, finder)| listing.holding(field, finder));
    let listed: Box<dyn Iterator<Item = (i64, &Listed)>> = match narrowed {
        Some(uids) => Box::new(
            uids.into_iter()
                .filter_map(|uid| listing.get(uid).map(|l| (uid, l))),
        ),
        None => Box::new(listing.iter()),
    };
    let mut hits = Vec::new();
    for (uid, listed) in listed {
        let Some(seq) = sel.seq_of(uid) else {
            continue;
        };
        let item = Item::listed(uid, listed, listing);
        if content && !has_stored(key, &item) {
            return None;
        }
        let ctx = Ctx {
            sel,
            finders: Some(&finders),
            entry: &item,
            seq: i64::from(seq.get()),
            parsed: None,
            stored: true,
        };
        if matches(key, &ctx) {
            hits.push(Hit {
                entry: listing.entry(uid, listed, sel.recent.contains(&uid)),
                seq,
                header: None,
            });
        }
    }
    Some(hits)
}

impl<S: Mailstore> ImapSession<S> {
    /// The messages of the selected folder (as the session sees it) that
    /// match `key`, in mailbox order; with `headers`, each with its header
    /// block (the content is then read for every message).
    pub(in crate::imap) async fn find(
        &self,
        sel: &Selected,
        key: &SearchKey<'_>,
        headers: bool,
    ) -> Result<Vec<Hit>, crate::store::StoreError> {
        use futures_util::StreamExt;
        let store = self.mailstore.clone();
        if !headers && stored_suffices(key) {
            let len = sel.uids.len();
            // The scan runs on a low-priority thread, so that the short
            // commands of other sessions go first when the cores are busy.
            // The slot is taken before the listing: its lock is not held
            // while the scan waits for the pool.
            if let Some(slot) = scans().slot().await
                && let Some(listing) = store
                    .listing(sel.id, sel.uidvalidity, len, len, None)
                    .await?
                    .listing
            {
                let (sel, key) = (sel.clone(), key.clone().into_static());
                if let Some(Some(hits)) = slot.run(move || find_listed(&sel, &key, &listing)).await
                {
                    return Ok(hits);
                }
            }
        }
        let mut needles = Vec::new();
        conjunct_needles(key, &mut needles);
        let entries = store.entries(sel.id, &needles).await?;
        let content = needs_content(key) || headers;
        let with_body = needs_body(key);
        let key_content = needs_content(key);
        // SUBJECT/FROM/TO/CC/BCC only: entries with the stored text skip the content.
        let storable = key_content && !headers && stored_suffices(key);
        let finders = Finders::of(key);
        let mut hits = Vec::new();
        let mut contents = Box::pin(store.contents(sel.id));
        let mut next_content: Option<(i64, Vec<u8>)> = None;
        for entry in entries {
            let Some(seq) = sel.seq_of(entry.uid) else {
                continue;
            };
            let item = Item::from(&entry);
            let stored = storable && has_stored(key, &item);
            let raw = if content && !stored {
                // Both lists are in UID order: advance the content stream to this entry.
                while next_content.as_ref().is_none_or(|(u, _)| *u < entry.uid) {
                    match contents.next().await {
                        Some(row) => next_content = Some(row?),
                        None => break,
                    }
                }
                match &next_content {
                    Some((u, raw)) if *u == entry.uid => Some(raw.as_slice()),
                    _ => None,
                }
            } else {
                None
            };
            let parsed = raw.filter(|_| key_content).map(|raw| parse(raw, with_body));
            let ctx = Ctx {
                sel,
                finders: Some(&finders),
                entry: &item,
                seq: i64::from(seq.get()),
                parsed: parsed.as_ref(),
                stored,
            };
            if matches(key, &ctx) {
                let header = raw
                    .filter(|_| headers)
                    .map(|raw| raw[..crate::mime::header_end(raw)].to_vec());
                hits.push(Hit { entry, seq, header });
            }
        }
        Ok(hits)
    }

    pub(in crate::imap) async fn search(
        &mut self,
        tag: Tag<'static>,
        charset: Option<Charset<'static>>,
        criteria: Vec1<SearchKey<'static>>,
        uid: bool,
    ) {
        // IMAP4rev2 answers every SEARCH with ESEARCH, ALL by default (RFC 9051 §6.4.4).
        let esearch = self.esearch.take().or_else(|| self.rev2.then(Vec::new));
        let returns = match esearch.as_deref().map(Returns::parse).transpose() {
            Ok(r) => r,
            Err(e) => return self.bad(tag, e),
        };
        // SEARCHRES (RFC 5182): SAVE keeps the result for `$`; a failed SEARCH saves nothing.
        let save = returns.as_ref().is_some_and(|r| r.save);
        if save && let Some(sel) = self.selected.as_mut() {
            sel.saved.clear();
        }
        if let Some(cs) = &charset
            && !charset_ok(cs)
        {
            return self.no(
                tag,
                Some(Code::BadCharset {
                    allowed: Vec::new(),
                }),
                "Only UTF-8 and US-ASCII",
            );
        }
        let Some(sel) = self.selected.clone() else {
            return self.bad(tag, "Select a mailbox first");
        };
        let key = SearchKey::And(criteria);
        let modseq_key = uses_modseq(&key);
        let first = modseq_key && self.enable_condstore();
        let found = match self.find(&sel, &key, false).await {
            Ok(h) => h,
            Err(e) => return self.store_failed(tag, e),
        };
        let modseqs: Vec<i64> = found.iter().map(|h| h.entry.modseq).collect();
        let modseq = if modseq_key {
            reported_modseq(esearch.as_deref(), &modseqs)
                .and_then(|m| std::num::NonZeroU64::new(u64::try_from(m).ok()?))
        } else {
            None
        };
        let hit_uids: Vec<i64> = found.iter().map(|h| h.entry.uid).collect();
        let hits: Vec<NonZeroU32> = found
            .iter()
            .filter_map(|h| {
                if uid {
                    NonZeroU32::new(h.entry.uid as u32)
                } else {
                    Some(h.seq)
                }
            })
            .collect();
        if let Some(returns) = &returns {
            if save && let Some(sel) = self.selected.as_mut() {
                sel.saved = returns.saved(&hit_uids);
            }
            // SAVE alone: no ESEARCH response (RFC 5182 §2.1).
            if returns.answers() {
                let numbers: Vec<u32> = hits.iter().map(|n| n.get()).collect();
                self.esearch_answer(&tag, uid, returns, &numbers, modseq);
            }
            if returns.update {
                self.keep_updated(&tag, uid, &key, &hit_uids);
            }
        } else {
            self.data(Data::Search(hits, modseq));
        }
        self.sync_selected(false).await;
        let code = self.highest_modseq(first);
        self.ok(tag, code, "SEARCH completed");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Messages whose headers the two paths could read differently.
    const TRICKY: [&[u8]; 7] = [
        b"Subject: =?utf-8?q?R=C3=A9sultats_d'ANALYSE?= du =?ISO-8859-1?Q?Dr_L=E9a?=\r\n\
         From: =?utf-8?b?w4lxdWlwZQ==?= <Equipe@Hopital-A.test>\r\n\
         To: a@a.test\r\nTo: \"Dr B\" <B@b.test>, c@c.test\r\n\
         Cc: Service: =?utf-8?q?M=C3=A9decin?= <m@d.test>, x@y.test;\r\n\r\nbody\r\n",
        b"Subject: folded\r\n continued\tline\r\nTo: Undisclosed recipients:;\r\n\
         Bcc: hidden@z.test\r\nBcc: second@z.test\r\n\r\n",
        b"From: plain@a.test\r\n\r\nno subject, no to\r\n",
        b"Subject: =?utf-8?q?a=0Ab?=\r\nTo: =?utf-8?q?x=00y?= <n@n.test>\r\n\r\n",
        b"Subject: \xe9t\xe9 latin-1\r\nCc: Groupe vide:;, Autre: o@o.test;\r\n\r\n",
        b"Subject:\r\nTo:\r\n\r\n",
        b"not a message at all",
    ];

    fn needles(parsed: &Parsed) -> Vec<String> {
        let mut out: Vec<String> = [
            "",
            "\n",
            "a\nb",
            "zzz",
            "é",
            "résultats",
            "analyse",
            "dr léa",
            "équipe",
            "a@a.test",
            "b@b.test",
            "\"dr b\"",
            "service",
            "médecin",
            "undisclosed",
            "hidden",
            "second",
            "latin",
            "continued",
            "x",
            "y",
            "<",
            ";",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        for (_, v) in &parsed.headers {
            let chars: Vec<char> = v.chars().collect();
            out.push(v.clone());
            out.push(chars[..chars.len() / 2].iter().collect());
            out.push(chars[chars.len() / 2..].iter().collect());
        }
        out
    }

    #[test]
    fn stored_text_answers_as_the_content_path() {
        for raw in TRICKY {
            let parsed = parse(raw, false);
            let stored = crate::delivery::prepare::search_headers(raw);
            let raw = String::from_utf8_lossy(raw);
            let fields = [
                ("subject", &stored.subject),
                ("from", &stored.from),
                ("to", &stored.to),
                ("cc", &stored.cc),
                ("bcc", &stored.bcc),
            ];
            for (name, text) in fields {
                let Some(text) = text else {
                    // Not storable: such a message keeps the content path.
                    assert!(
                        parsed
                            .headers
                            .iter()
                            .any(|(n, v)| n == name && v.contains(['\n', '\0'])),
                        "{name} of {raw:?}"
                    );
                    continue;
                };
                for n in needles(&parsed) {
                    assert_eq!(
                        stored_contains(text, &n),
                        header_contains(Some(&parsed), name, &n),
                        "{name} {n:?} in {raw:?} (stored {text:?})"
                    );
                }
            }
        }
    }

    #[test]
    fn stored_text_is_decoded_lower_cased_and_one_line_per_field() {
        let s = crate::delivery::prepare::search_headers(TRICKY[0]);
        assert_eq!(
            s.subject.as_deref(),
            Some("\nrésultats d'analyse du dr léa")
        );
        let to = s.to.unwrap();
        assert_eq!(to.matches('\n').count(), 2, "{to:?}");
        assert!(to.contains("b@b.test") && to.contains("a@a.test"), "{to:?}");
        assert!(s.cc.unwrap().contains("service"));
        assert_eq!(s.bcc.as_deref(), Some(""));
        let s = crate::delivery::prepare::search_headers(TRICKY[3]);
        assert_eq!(s.subject, None, "a value holding a newline is not stored");
        assert_eq!(s.to, None, "nor one holding a NUL");
        assert_eq!(s.from.as_deref(), Some(""));
    }

    #[test]
    fn stored_text_serves_only_subject_and_address_keys() {
        let subject = SearchKey::Subject(AString::try_from("x").unwrap());
        let body = SearchKey::Body(AString::try_from("x").unwrap());
        let header = SearchKey::Header(
            AString::try_from("subject").unwrap(),
            AString::try_from("x").unwrap(),
        );
        assert!(stored_suffices(&subject));
        assert!(stored_suffices(&SearchKey::Not(Box::new(subject.clone()))));
        assert!(!stored_suffices(&body));
        assert!(!stored_suffices(&header));
        assert!(!stored_suffices(&SearchKey::Or(
            Box::new(subject.clone()),
            Box::new(body)
        )));
        assert!(!stored_suffices(&SearchKey::SentOn(
            chrono::NaiveDate::from_ymd_opt(2024, 1, 1)
                .unwrap()
                .try_into()
                .unwrap()
        )));
    }
}
