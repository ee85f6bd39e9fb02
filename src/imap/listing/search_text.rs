//! The stored SUBJECT/FROM/TO/CC/BCC text of a listing's messages, one arena
//! per field holding every message's text end to end. A SEARCH on one of
//! those keys then runs one vectorised substring search over contiguous
//! memory, instead of one small search per message on text scattered over
//! the heap (at 10,000 messages, that scan was a quarter of the server's
//! CPU under a mixed load); only the messages it finds are matched in full.

use memchr::memmem::Finder;

use crate::store::entries::SearchField;
use crate::store::messages::SearchHeaders;

/// Removed text is dropped once it takes more than this and more than the
/// live text: compaction copies the live text once per halving.
const COMPACT_AFTER: usize = 64 * 1024;

/// Where a message's text of one field lies in its arena.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    start: u32,
    len: u32,
}

/// A listed message's spans, one per field (subject, from, to, cc, bcc; None: the
/// text is not stored, so SEARCH must read the message's content).
pub type Spans = [Option<Span>; 5];

fn index(field: SearchField) -> usize {
    match field {
        SearchField::Subject => 0,
        SearchField::From => 1,
        SearchField::To => 2,
        SearchField::Cc => 3,
        SearchField::Bcc => 4,
    }
}

/// One field's text of every listed message.
#[derive(Debug, Default)]
struct Arena {
    /// Each message's text followed by a newline: a needle given a searcher
    /// holds none, so no match spans two messages.
    text: String,
    /// (start, UID) of each message's text, by start.
    owners: Vec<(u32, i64)>,
    /// Octets of removed messages' text still in `text`.
    dead: usize,
    /// Listed messages without this field's text.
    missing: usize,
}

impl Arena {
    /// Appends a message's text; None when the arena would pass 4 GiB (the
    /// message is then treated as not stored).
    fn push(&mut self, uid: i64, t: &str) -> Option<Span> {
        let start = u32::try_from(self.text.len()).ok()?;
        let len = u32::try_from(t.len()).ok()?;
        u32::try_from(self.text.len() + t.len() + 1).ok()?;
        self.text.push_str(t);
        self.text.push('\n');
        self.owners.push((start, uid));
        Some(Span { start, len })
    }

    fn get(&self, span: Span) -> Option<&str> {
        let start = span.start as usize;
        self.text.get(start..start + span.len as usize)
    }
}

/// The arenas of one listing.
#[derive(Debug, Default)]
pub(super) struct SearchText {
    arenas: [Arena; 5],
}

impl SearchText {
    /// Adds a newly listed message's text; returns where it lies.
    pub(super) fn add(&mut self, uid: i64, headers: &SearchHeaders) -> Spans {
        let texts = [
            &headers.subject,
            &headers.from,
            &headers.to,
            &headers.cc,
            &headers.bcc,
        ];
        let mut spans: Spans = [None; 5];
        for ((arena, text), span) in self.arenas.iter_mut().zip(texts).zip(&mut spans) {
            *span = text.as_deref().and_then(|t| arena.push(uid, t));
            if span.is_none() {
                arena.missing += 1;
            }
        }
        spans
    }

    /// Forgets a message that left the listing (its text stays until compaction).
    pub(super) fn remove(&mut self, spans: &Spans) {
        for (arena, span) in self.arenas.iter_mut().zip(spans) {
            match span {
                Some(s) => arena.dead += s.len as usize + 1,
                None => arena.missing = arena.missing.saturating_sub(1),
            }
        }
    }

    /// A message's text of `field`, None when not stored.
    pub(super) fn get(&self, spans: &Spans, field: SearchField) -> Option<&str> {
        let i = index(field);
        spans[i].and_then(|s| self.arenas[i].get(s))
    }

    /// The UIDs whose text of `field` holds `finder`'s needle, ascending;
    /// they may include messages removed since. None when some listed
    /// message lacks the text, as it could match by its content.
    pub(super) fn find(&self, field: SearchField, finder: &Finder<'_>) -> Option<Vec<i64>> {
        let arena = &self.arenas[index(field)];
        if arena.missing > 0 {
            return None;
        }
        let text = arena.text.as_bytes();
        let mut found = Vec::new();
        let mut at = 0;
        while let Some(hit) = text.get(at..).and_then(|rest| finder.find(rest)) {
            let hit = at + hit;
            let owner = arena
                .owners
                .partition_point(|&(start, _)| start as usize <= hit)
                .checked_sub(1)?;
            found.push(arena.owners[owner].1);
            // The next message's text: one hit per message is enough.
            at = arena
                .owners
                .get(owner + 1)
                .map_or(text.len(), |&(start, _)| start as usize);
        }
        found.sort_unstable();
        found.dedup();
        Some(found)
    }

    /// Octets held.
    pub(super) fn weight(&self) -> usize {
        self.arenas
            .iter()
            .map(|a| a.text.capacity() + a.owners.capacity() * std::mem::size_of::<(u32, i64)>())
            .sum()
    }

    /// Whether removed text now takes more room than it is worth keeping.
    pub(super) fn wasteful(&self) -> bool {
        self.arenas
            .iter()
            .any(|a| a.dead > COMPACT_AFTER && a.dead * 2 > a.text.len())
    }

    /// Rebuilds the arenas with the text of `listed` only (every message
    /// still listed, with its spans, which are rewritten).
    pub(super) fn compact<'a>(&mut self, listed: impl Iterator<Item = (i64, &'a mut Spans)>) {
        let old = std::mem::take(&mut self.arenas);
        for (new, old) in self.arenas.iter_mut().zip(&old) {
            new.missing = old.missing;
            new.text
                .reserve(old.text.len() - old.dead.min(old.text.len()));
        }
        for (uid, spans) in listed {
            for ((new, old), span) in self.arenas.iter_mut().zip(&old).zip(spans.iter_mut()) {
                if let Some(s) = *span {
                    *span = old.get(s).and_then(|t| new.push(uid, t));
                    if span.is_none() {
                        new.missing += 1;
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(subject: &str, to: Option<&str>) -> SearchHeaders {
        SearchHeaders {
            subject: Some(subject.into()),
            from: Some("dr house <house@a.test>".into()),
            to: to.map(str::to_owned),
            cc: Some(String::new()),
            bcc: Some(String::new()),
        }
    }

    #[test]
    fn finds_each_message_once_and_survives_compaction() {
        let mut t = SearchText::default();
        let mut listed: Vec<(i64, Spans)> = Vec::new();
        for uid in 1..=6000 {
            let subject = format!("compte rendu {uid}\nrendu {uid} bis");
            listed.push((uid, t.add(uid, &headers(&subject, Some("a@b.test")))));
        }
        let finder = Finder::new(b"rendu 12");
        let found = t.find(SearchField::Subject, &finder).expect("all stored");
        assert_eq!(found.len(), 1 + 10 + 100);
        assert!(found.windows(2).all(|w| w[0] < w[1]));
        assert!(found.contains(&12) && found.contains(&1299) && !found.contains(&13));
        assert_eq!(
            t.find(SearchField::Subject, &Finder::new(b"1\nrendu"))
                .map(|f| f.len()),
            Some(600),
            "a needle is searched as given: the caller gives none with a newline"
        );
        // Remove two thirds; the arena is compacted and answers the same.
        let weight = t.weight();
        for (_, spans) in listed.iter().filter(|(uid, _)| uid % 3 != 0) {
            t.remove(spans);
        }
        listed.retain(|(uid, _)| uid % 3 == 0);
        assert!(t.wasteful());
        t.compact(listed.iter_mut().map(|(uid, spans)| (*uid, spans)));
        assert!(!t.wasteful() && t.weight() < weight);
        let finder = Finder::new(b"rendu 129");
        let found = t.find(SearchField::Subject, &finder).expect("all stored");
        assert_eq!(found, vec![129, 1290, 1293, 1296, 1299]);
        for (uid, spans) in &listed {
            let subject = format!("compte rendu {uid}\nrendu {uid} bis");
            assert_eq!(t.get(spans, SearchField::Subject), Some(subject.as_str()));
            assert_eq!(t.get(spans, SearchField::Cc), Some(""));
        }
    }

    #[test]
    fn a_message_without_stored_text_turns_the_search_down() {
        let mut t = SearchText::default();
        let stored = t.add(1, &headers("a", Some("x@y.test")));
        let unstored = t.add(2, &headers("b", None));
        let finder = Finder::new(b"x@");
        assert_eq!(t.find(SearchField::To, &finder), None);
        assert_eq!(t.get(&unstored, SearchField::To), None);
        t.remove(&unstored);
        assert_eq!(t.find(SearchField::To, &finder), Some(vec![1]));
        assert_eq!(t.get(&stored, SearchField::To), Some("x@y.test"));
    }
}
