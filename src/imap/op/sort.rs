//! SORT, UID SORT, THREAD and UID THREAD (RFC 5256; DISPLAYFROM/DISPLAYTO,
//! RFC 5957; RETURN options, RFC 5267). The search is SEARCH's (`search.rs`);
//! what is compared comes from the ENVELOPE stored at delivery, so SORT reads
//! no message content unless a search key needs it; THREAD=REFERENCES reads
//! each message's header for its References. The algorithms are sans-IO in
//! `imap/sort/`.

use std::num::{NonZeroU32, NonZeroU64};

use imap_codec::imap_types::core::{Charset, Tag, Vec1};
use imap_codec::imap_types::envelope::Envelope;
use imap_codec::imap_types::extensions::sort::{SortCriterion, SortKey};
use imap_codec::imap_types::extensions::thread::ThreadingAlgorithm;
use imap_codec::imap_types::response::{Code, Data};
use imap_codec::imap_types::search::SearchKey;

use super::returns::Returns;
use super::search::{Hit, charset_ok};
use crate::imap::session::ImapSession;
use crate::imap::sort::facts::Ids;
use crate::imap::sort::{self, Facts, thread};
use crate::imap::storage::{Entry, Mailstore};
use crate::store::StoreError;

/// True when comparing by `key` needs the ENVELOPE.
fn needs_envelope(key: &SortKey) -> bool {
    !matches!(key, SortKey::Arrival | SortKey::Size)
}

impl<S: Mailstore> ImapSession<S> {
    /// The ENVELOPE of an entry: as stored at delivery (wire form, or JSON for
    /// older rows), else computed from the message's header.
    async fn envelope_of(&self, entry: &Entry) -> Result<Envelope<'static>, StoreError> {
        let stored = entry
            .imap_envelope
            .as_deref()
            .and_then(crate::mime::structure::wire::parse_envelope)
            .or_else(|| {
                entry
                    .envelope
                    .as_deref()
                    .and_then(|json| serde_json::from_str(json).ok())
            });
        match stored {
            Some(e) => Ok(e),
            None => {
                let raw = self.mailstore.blob(&entry.blob_hash).await?;
                Ok(crate::mime::structure::envelope(
                    &raw[..crate::mime::header_end(&raw)],
                ))
            }
        }
    }

    /// What SORT compares of each hit; the ENVELOPE is read only when `envelope`.
    async fn facts(&self, hits: &[Hit], envelope: bool) -> Result<Vec<Facts>, StoreError> {
        let mut out = Vec::with_capacity(hits.len());
        for h in hits {
            let env = match (&h.header, envelope) {
                (Some(header), _) => Some(crate::mime::structure::envelope(header)),
                (None, true) => Some(self.envelope_of(&h.entry).await?),
                (None, false) => None,
            };
            out.push(Facts::new(
                env.as_ref(),
                h.entry.internal_date,
                h.entry.size,
            ));
        }
        Ok(out)
    }

    /// Checks the charset and RETURN options shared by SORT and THREAD;
    /// answers and returns None when the command cannot go on.
    fn sort_preamble(
        &mut self,
        tag: &Tag<'static>,
        charset: &Charset<'_>,
    ) -> Option<Option<Returns>> {
        let returns = match self
            .esearch
            .take()
            .as_deref()
            .map(Returns::parse)
            .transpose()
        {
            Ok(r) => r,
            Err(e) => {
                self.bad(tag.clone(), e);
                return None;
            }
        };
        if returns.as_ref().is_some_and(|r| r.save)
            && let Some(sel) = self.selected.as_mut()
        {
            sel.saved.clear();
        }
        if !charset_ok(charset) {
            self.no(
                tag.clone(),
                Some(Code::BadCharset {
                    allowed: Vec::new(),
                }),
                "Only UTF-8 and US-ASCII",
            );
            return None;
        }
        Some(returns)
    }

    /// SORT and UID SORT, with ESORT's RETURN options (RFC 5267 §3).
    pub(in crate::imap) async fn sort(
        &mut self,
        tag: Tag<'static>,
        criteria: Vec1<SortCriterion>,
        charset: Charset<'static>,
        search: Vec1<SearchKey<'static>>,
        uid: bool,
    ) {
        let Some(returns) = self.sort_preamble(&tag, &charset) else {
            return;
        };
        let Some(sel) = self.selected.clone() else {
            return self.bad(tag, "Select a mailbox first");
        };
        let key = SearchKey::And(search);
        let modseq_key = super::search::uses_modseq(&key);
        if modseq_key {
            self.condstore = true;
        }
        let criteria = criteria.into_inner();
        let hits = match self.find(&sel, &key, false).await {
            Ok(h) => h,
            Err(e) => return self.store_failed(tag, e),
        };
        let envelope = criteria.iter().any(|c| needs_envelope(&c.key));
        let facts = match self.facts(&hits, envelope).await {
            Ok(f) => f,
            Err(e) => return self.store_failed(tag, e),
        };
        let order = sort::order(&facts, &criteria);
        let number = |h: &Hit| {
            if uid {
                NonZeroU32::new(h.entry.uid as u32).unwrap_or(NonZeroU32::MIN)
            } else {
                h.seq
            }
        };
        let numbers: Vec<NonZeroU32> = order.iter().map(|&i| number(&hits[i])).collect();
        let modseq = hits
            .iter()
            .map(|h| h.entry.modseq)
            .max()
            .filter(|_| modseq_key)
            .and_then(|m| NonZeroU64::new(m as u64));
        match returns {
            Some(returns) => {
                let uids: Vec<i64> = order.iter().map(|&i| hits[i].entry.uid).collect();
                if returns.save
                    && let Some(sel) = self.selected.as_mut()
                {
                    sel.saved = returns.saved(&uids);
                }
                if returns.answers() {
                    let numbers: Vec<u32> = numbers.iter().map(|n| n.get()).collect();
                    self.esearch_answer(&tag, uid, &returns, &numbers, modseq);
                }
                if returns.update {
                    self.keep_updated(&tag, uid, &key, &uids);
                }
            }
            None => self.data(Data::Sort(numbers, modseq)),
        }
        self.sync_selected(false).await;
        self.ok(tag, None, "SORT completed");
    }

    /// THREAD and UID THREAD: ORDEREDSUBJECT and REFERENCES (RFC 5256).
    pub(in crate::imap) async fn thread(
        &mut self,
        tag: Tag<'static>,
        algorithm: ThreadingAlgorithm<'static>,
        charset: Charset<'static>,
        search: Vec1<SearchKey<'static>>,
        uid: bool,
    ) {
        let references = match algorithm {
            ThreadingAlgorithm::References => true,
            ThreadingAlgorithm::OrderedSubject => false,
            ThreadingAlgorithm::Other(_) => return self.bad(tag, "Unknown thread algorithm"),
        };
        if self.esearch.is_some() {
            self.esearch = None;
            return self.bad(tag, "THREAD takes no RETURN options");
        }
        if self.sort_preamble(&tag, &charset).is_none() {
            return;
        }
        let Some(sel) = self.selected.clone() else {
            return self.bad(tag, "Select a mailbox first");
        };
        let key = SearchKey::And(search);
        let hits = match self.find(&sel, &key, references).await {
            Ok(h) => h,
            Err(e) => return self.store_failed(tag, e),
        };
        let facts = match self.facts(&hits, true).await {
            Ok(f) => f,
            Err(e) => return self.store_failed(tag, e),
        };
        let msgs: Vec<thread::Message> = hits
            .iter()
            .zip(facts)
            .map(|(h, f)| thread::Message {
                number: if uid { h.entry.uid as u32 } else { h.seq.get() },
                date: f.date,
                subject: f.subject,
                reply: f.reply,
                ids: h.header.as_deref().map(Ids::read).unwrap_or_default(),
            })
            .collect();
        let threads = if references {
            thread::references(&msgs)
        } else {
            thread::ordered_subject(&msgs)
        };
        let text = threads.write(&msgs);
        let line = if text.is_empty() {
            "* THREAD\r\n".to_string()
        } else {
            format!("* THREAD {text}\r\n")
        };
        // Written by hand: imap-types' `Thread` is a recursive type, which a
        // deep thread would make costly to build and drop.
        self.raw(line.into_bytes());
        self.sync_selected(false).await;
        self.ok(tag, None, "THREAD completed");
    }
}
