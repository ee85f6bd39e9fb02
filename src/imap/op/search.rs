//! SEARCH with every RFC 3501 key: flags, dates and sizes from the stored rows;
//! header and text keys over decoded headers and bodies (content parsed only
//! when a key needs it).

use std::num::NonZeroU32;

use imap_codec::imap_types::core::{AString, Charset, Tag, Vec1};
use imap_codec::imap_types::response::{Code, Data};
use imap_codec::imap_types::search::SearchKey;
use mail_parser::HeaderValue;

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
fn uses_modseq(key: &SearchKey<'_>) -> bool {
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

impl<S: Mailstore> ImapSession<S> {
    pub(in crate::imap) async fn search(
        &mut self,
        tag: Tag<'static>,
        charset: Option<Charset<'static>>,
        criteria: Vec1<SearchKey<'static>>,
        uid: bool,
    ) {
        // IMAP4rev2 answers every SEARCH with ESEARCH, ALL by default (RFC 9051 §6.4.4).
        let mut esearch = self
            .esearch
            .take()
            .or_else(|| self.rev2.then(|| vec!["ALL".to_string()]));
        // SEARCHRES (RFC 5182): SAVE keeps the result for `$`; a failed SEARCH saves nothing.
        let save = esearch.as_mut().is_some_and(|o| {
            let asked = o.iter().any(|x| x == "SAVE");
            o.retain(|x| x != "SAVE");
            asked
        });
        if save && let Some(sel) = self.selected.as_mut() {
            sel.saved.clear();
        }
        if let Some(cs) = &charset {
            let name = cs.as_ref().to_ascii_uppercase();
            if name != "UTF-8" && name != "US-ASCII" {
                return self.no(
                    tag,
                    Some(Code::BadCharset {
                        allowed: Vec::new(),
                    }),
                    "Only UTF-8 and US-ASCII",
                );
            }
        }
        let Some(sel) = self.selected.clone() else {
            return self.bad(tag, "Select a mailbox first");
        };
        let key = SearchKey::And(criteria);
        let store = self.mailstore.clone();
        let entries = match store.entries(sel.id).await {
            Ok(e) => e,
            Err(e) => return self.store_failed(tag, e),
        };
        let content = needs_content(&key);
        let with_body = needs_body(&key);
        let modseq_key = uses_modseq(&key);
        let first = modseq_key && self.enable_condstore();
        let mut modseqs = Vec::new();
        let mut hits = Vec::new();
        let mut hit_uids = Vec::new();
        let mut contents = Box::pin(store.contents(sel.id));
        let mut next_content: Option<(i64, Vec<u8>)> = None;
        for entry in &entries {
            let Some(seq) = sel.seq_of(entry.uid) else {
                continue;
            };
            let parsed = if content {
                // Both lists are in UID order: advance the content stream to this entry.
                use futures_util::StreamExt;
                while next_content.as_ref().is_none_or(|(u, _)| *u < entry.uid) {
                    match contents.next().await {
                        Some(Ok(row)) => next_content = Some(row),
                        Some(Err(e)) => return self.store_failed(tag, e),
                        None => break,
                    }
                }
                match &next_content {
                    Some((u, raw)) if *u == entry.uid => Some(parse(raw, with_body)),
                    _ => None,
                }
            } else {
                None
            };
            let ctx = Ctx {
                sel: &sel,
                entry,
                seq: i64::from(seq.get()),
                parsed: parsed.as_ref(),
            };
            if matches(&key, &ctx) {
                let n = if uid { entry.uid as u32 } else { seq.get() };
                hits.extend(NonZeroU32::new(n));
                hit_uids.push(entry.uid);
                modseqs.push(entry.modseq);
            }
        }
        let modseq = if modseq_key {
            reported_modseq(esearch.as_deref(), &modseqs)
                .and_then(|m| std::num::NonZeroU64::new(u64::try_from(m).ok()?))
        } else {
            None
        };
        if save && let Some(sel) = self.selected.as_mut() {
            let options = esearch.as_deref().unwrap_or_default();
            let has = |o: &str| options.iter().any(|x| x == o);
            sel.saved = if !has("ALL") && !has("COUNT") && (has("MIN") || has("MAX")) {
                // With MIN and/or MAX alone, `$` holds just those (RFC 5182 §2.1).
                let mut ends = Vec::new();
                if has("MIN") {
                    ends.extend(hit_uids.first());
                }
                if has("MAX") {
                    ends.extend(hit_uids.last());
                }
                ends.dedup();
                ends
            } else {
                hit_uids
            };
        }
        if let Some(options) = esearch {
            // SAVE alone: no ESEARCH response (RFC 5182 §2.1).
            if !(save && options.is_empty()) {
                self.esearch_result(&tag, uid, &options, &hits, modseq);
            }
        } else {
            self.data(Data::Search(hits, modseq));
        }
        self.sync_selected(false).await;
        let code = self.highest_modseq(first);
        self.ok(tag, code, "SEARCH completed");
    }
}
