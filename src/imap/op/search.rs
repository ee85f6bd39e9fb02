//! SEARCH with every RFC 3501 key: flags, dates and sizes from the stored rows;
//! header and text keys over decoded headers and bodies (content parsed only
//! when a key needs it).

use std::num::NonZeroU32;

use imap_codec::imap_types::core::{AString, Charset, Tag, Vec1};
use imap_codec::imap_types::response::{Code, Data};
use imap_codec::imap_types::search::SearchKey;
use mail_parser::HeaderValue;

use super::returns::Returns;
use crate::imap::sequence;
use crate::imap::session::{ImapSession, Selected};
use crate::imap::storage::Entry;
use crate::imap::storage::Mailstore;

/// The parts of a message text keys look at, decoded and lower-cased.
#[derive(Debug, Default)]
struct Parsed {
    headers: Vec<(String, String)>,
    body: String,
    sent: Option<chrono::NaiveDate>,
}

fn parse(raw: &[u8], with_body: bool) -> Parsed {
    let parsed = if with_body {
        crate::mime::parse(raw)
    } else {
        crate::mime::parse_headers(raw)
    };
    let Some(msg) = parsed else {
        return Parsed::default();
    };
    let mut headers = Vec::new();
    for h in msg.headers() {
        let name = h.name().to_ascii_lowercase();
        let start = h.offset_start() as usize;
        let end = (h.offset_end() as usize).min(raw.len());
        let value_bytes = raw.get(start..end).unwrap_or_default();
        let value = if ADDRESS_HEADERS.contains(&name.as_str()) {
            // As Dovecot: the address list rewritten (groups included), then decoded.
            decode_words(&crate::mime::structure::address_search_form(value_bytes))
        } else {
            match h.value() {
                HeaderValue::Text(t) => t.to_string(),
                HeaderValue::TextList(list) => list.join(" "),
                _ => String::from_utf8_lossy(value_bytes).into_owned(),
            }
        };
        headers.push((name, value.to_lowercase()));
    }
    let mut body = String::new();
    for i in 0..if with_body { msg.text_body_count() } else { 0 } {
        if let Some(t) = msg.body_text(i) {
            body.push_str(&t);
            body.push('\n');
        }
    }
    for i in 0..if with_body { msg.html_body_count() } else { 0 } {
        if let Some(t) = msg.body_html(i) {
            body.push_str(&t);
            body.push('\n');
        }
    }
    // The date as written, in the header's own zone (RFC 3501 §6.4.4).
    let sent = msg.date().and_then(|d| {
        chrono::NaiveDate::from_ymd_opt(i32::from(d.year), u32::from(d.month), u32::from(d.day))
    });
    Parsed {
        headers,
        body: body.to_lowercase(),
        sent,
    }
}

/// The headers Dovecot searches as address lists (`message_header_is_address`).
const ADDRESS_HEADERS: [&str; 11] = [
    "from",
    "sender",
    "reply-to",
    "to",
    "cc",
    "bcc",
    "resent-from",
    "resent-sender",
    "resent-to",
    "resent-cc",
    "resent-bcc",
];

/// `text` with its RFC 2047 encoded-words decoded, by mail-parser's reading
/// of an unstructured header.
fn decode_words(text: &[u8]) -> String {
    if !text.windows(2).any(|w| w == b"=?") {
        return String::from_utf8_lossy(text).into_owned();
    }
    let mut header = b"Subject: ".to_vec();
    header.extend_from_slice(text);
    header.extend_from_slice(b"\r\n\r\n");
    crate::mime::parse_headers(&header)
        .and_then(|m| m.subject().map(str::to_string))
        .unwrap_or_else(|| String::from_utf8_lossy(text).into_owned())
}

fn needle(s: &AString<'_>) -> String {
    String::from_utf8_lossy(s.as_ref()).to_lowercase()
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

struct Ctx<'a> {
    sel: &'a Selected,
    entry: &'a Entry,
    seq: i64,
    parsed: Option<&'a Parsed>,
}

fn has_flag(e: &Entry, flag: &str) -> bool {
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
        SearchKey::Bcc(s) => header_contains(c.parsed, "bcc", &needle(s)),
        SearchKey::Cc(s) => header_contains(c.parsed, "cc", &needle(s)),
        SearchKey::From(s) => header_contains(c.parsed, "from", &needle(s)),
        SearchKey::To(s) => header_contains(c.parsed, "to", &needle(s)),
        SearchKey::Subject(s) => header_contains(c.parsed, "subject", &needle(s)),
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
            entry,
            seq,
            parsed: parsed.as_ref(),
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
        let entries = store.entries(sel.id).await?;
        let content = needs_content(key) || headers;
        let with_body = needs_body(key);
        let key_content = needs_content(key);
        let mut hits = Vec::new();
        let mut contents = Box::pin(store.contents(sel.id));
        let mut next_content: Option<(i64, Vec<u8>)> = None;
        for entry in entries {
            let Some(seq) = sel.seq_of(entry.uid) else {
                continue;
            };
            let raw = if content {
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
                entry: &entry,
                seq: i64::from(seq.get()),
                parsed: parsed.as_ref(),
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
