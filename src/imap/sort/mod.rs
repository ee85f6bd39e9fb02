//! SORT and THREAD, sans-IO (RFC 5256, RFC 5957 DISPLAYFROM/DISPLAYTO): what
//! they compare of each message ([`Facts`], from its ENVELOPE or header, see
//! `facts.rs`), the order SORT answers ([`order`]), and the two threading
//! algorithms (`thread.rs`). The commands themselves are `op/sort.rs`.
//!
//! As Dovecot 2.3 (which announces `I18NLEVEL=1`), strings are compared with
//! `i;unicode-casemap` (RFC 5051, [`casemap`]): `é` sorts with `E`, not after
//! `Z`, where RFC 5256's `i;ascii-casemap` (the same on ASCII) would put it. Messages that compare equal stay in mailbox order, also under
//! REVERSE (RFC 5256 §3). Addresses compare by their mailbox part (FROM, TO,
//! CC: RFC 5256 `addr-mailbox`) or by display name, else `mailbox@host`
//! (DISPLAYFROM, DISPLAYTO: RFC 5957); a missing one is the empty string.

pub mod facts;
pub mod thread;

use std::cmp::Ordering;

use imap_codec::imap_types::extensions::sort::{SortCriterion, SortKey};
use unicode_normalization::UnicodeNormalization;

pub use facts::Facts;

/// `i;unicode-casemap` (RFC 5051): each character to its titlecase, then the
/// compatibility decomposition (NFKD), so that comparing the results compares
/// the strings without case or accents getting in the way of their order.
pub fn casemap(s: &str) -> String {
    s.chars().map(titlecase).nfkd().collect()
}

/// Simple titlecase mapping: the uppercase letter where it is one character
/// (not `ß` → `SS`), and the title forms of the four Latin digraphs.
fn titlecase(c: char) -> char {
    match c {
        '\u{1C4}'..='\u{1C6}' => '\u{1C5}',
        '\u{1C7}'..='\u{1C9}' => '\u{1C8}',
        '\u{1CA}'..='\u{1CC}' => '\u{1CB}',
        '\u{1F1}'..='\u{1F3}' => '\u{1F2}',
        _ => {
            let mut upper = c.to_uppercase();
            match (upper.next(), upper.next()) {
                (Some(u), None) => u,
                _ => c,
            }
        }
    }
}

/// The order SORT answers: indexes into `facts` (given in mailbox order),
/// sorted by the criteria, ties in mailbox order.
pub fn order(facts: &[Facts], criteria: &[SortCriterion]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..facts.len()).collect();
    order.sort_by(|&a, &b| {
        criteria
            .iter()
            .map(|c| {
                let o = compare(&facts[a], &facts[b], &c.key);
                if c.reverse { o.reverse() } else { o }
            })
            .find(|o| o.is_ne())
            .unwrap_or(Ordering::Equal)
            .then(a.cmp(&b))
    });
    order
}

fn compare(a: &Facts, b: &Facts, key: &SortKey) -> Ordering {
    match key {
        SortKey::Arrival => a.arrival.cmp(&b.arrival),
        SortKey::Date => a.date.cmp(&b.date),
        SortKey::Size => a.size.cmp(&b.size),
        SortKey::Subject => a.subject.cmp(&b.subject),
        SortKey::From => a.from.cmp(&b.from),
        SortKey::To => a.to.cmp(&b.to),
        SortKey::Cc => a.cc.cmp(&b.cc),
        SortKey::DisplayFrom => a.display_from.cmp(&b.display_from),
        SortKey::DisplayTo => a.display_to.cmp(&b.display_to),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn casemap_ignores_case_and_splits_accents() {
        assert_eq!(casemap("Zulu été"), casemap("ZULU ÉTÉ"));
        assert_eq!(casemap("émile"), "E\u{301}MILE");
        assert!(casemap("Émile") < casemap("Fix"));
        assert!(casemap("budget") < casemap("Émile"));
        assert_eq!(casemap("straße"), "STRAßE");
        assert_eq!(casemap("ǆ"), casemap("ǅ"));
        assert_eq!(casemap("ﬁ"), "fi");
    }

    fn facts(date: i64, subject: &str, size: i64) -> Facts {
        Facts {
            date,
            arrival: -date,
            size,
            subject: casemap(subject),
            ..Facts::default()
        }
    }

    #[test]
    fn criteria_in_turn_then_mailbox_order() {
        let all = [
            facts(3, "b", 10),
            facts(1, "a", 20),
            facts(2, "b", 10),
            facts(1, "a", 10),
        ];
        let by = |key: SortKey, reverse: bool| SortCriterion { reverse, key };
        assert_eq!(order(&all, &[by(SortKey::Date, false)]), [1, 3, 2, 0]);
        // Ties stay in mailbox order under REVERSE too (as Dovecot).
        assert_eq!(order(&all, &[by(SortKey::Date, true)]), [0, 2, 1, 3]);
        assert_eq!(order(&all, &[by(SortKey::Arrival, false)]), [0, 2, 1, 3]);
        assert_eq!(
            order(
                &all,
                &[by(SortKey::Subject, false), by(SortKey::Date, true)]
            ),
            [1, 3, 0, 2]
        );
        assert_eq!(
            order(
                &all,
                &[by(SortKey::Size, true), by(SortKey::Subject, false)]
            ),
            [1, 3, 0, 2]
        );
        assert!(order(&[], &[by(SortKey::Size, false)]).is_empty());
    }
}
