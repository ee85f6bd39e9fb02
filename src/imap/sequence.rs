//! Sequence sets (RFC 3501 §9 `sequence-set`) resolved against a session's view.

use imap_codec::imap_types::sequence::{SeqOrUid, Sequence, SequenceSet};

/// The UIDs designated by `set`, given the session's UIDs in sequence order.
///
/// With `uid`, numbers are UIDs (`*` is the highest UID; a range covers the UIDs
/// that exist inside it); otherwise they are sequence numbers (`*` is the last one,
/// numbers past the end are ignored). The result is ascending and without duplicates.
pub fn resolve(set: &SequenceSet, uids: &[i64], uid: bool) -> Vec<i64> {
    let mut out = Vec::new();
    let Some(&max_uid) = uids.last() else {
        return out;
    };
    let count = uids.len() as i64;
    let value = |s: &SeqOrUid| -> i64 {
        match s {
            SeqOrUid::Value(n) => i64::from(n.get()),
            SeqOrUid::Asterisk => {
                if uid {
                    max_uid
                } else {
                    count
                }
            }
        }
    };
    for seq in set.0.as_ref() {
        let (a, b) = match seq {
            Sequence::Single(s) => (value(s), value(s)),
            Sequence::Range(x, y) => {
                let (x, y) = (value(x), value(y));
                (x.min(y), x.max(y))
            }
        };
        if uid {
            let start = uids.partition_point(|&u| u < a);
            let end = uids.partition_point(|&u| u <= b);
            out.extend_from_slice(&uids[start..end]);
        } else {
            let a = a.max(1);
            let b = b.min(count);
            for n in a..=b {
                out.push(uids[(n - 1) as usize]);
            }
        }
    }
    out.sort_unstable();
    out.dedup();
    out
}

/// True when `number` is in `set`, where `*` stands for `max` (no list is built).
pub fn contains(set: &SequenceSet, number: i64, max: i64) -> bool {
    let value = |s: &SeqOrUid| match s {
        SeqOrUid::Value(n) => i64::from(n.get()),
        SeqOrUid::Asterisk => max,
    };
    set.0.as_ref().iter().any(|seq| match seq {
        Sequence::Single(s) => value(s) == number,
        Sequence::Range(a, b) => {
            let (a, b) = (value(a), value(b));
            a.min(b) <= number && number <= a.max(b)
        }
    })
}

/// A session's UIDs in sequence order, kept as runs of consecutive UIDs: an idle
/// session on a 10,000-message folder holds a few runs, not 10,000 numbers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UidMap {
    /// (first UID, run length, sequence number of the first UID - 1).
    runs: Vec<(i64, i64, i64)>,
    count: i64,
}

impl UidMap {
    /// From ascending UIDs.
    pub fn from_sorted(uids: &[i64]) -> UidMap {
        let mut map = UidMap::default();
        for &u in uids {
            map.push(u);
        }
        map.runs.shrink_to_fit();
        map
    }

    /// Appends a UID greater than every UID present.
    pub fn push(&mut self, uid: i64) {
        match self.runs.last_mut() {
            Some((start, len, _)) if *start + *len == uid => *len += 1,
            _ => self.runs.push((uid, 1, self.count)),
        }
        self.count += 1;
    }

    /// Number of messages.
    pub fn len(&self) -> usize {
        self.count as usize
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The highest UID.
    pub fn last(&self) -> Option<i64> {
        self.runs.last().map(|(s, l, _)| s + l - 1)
    }

    /// All UIDs, for the length of one command.
    pub fn to_vec(&self) -> Vec<i64> {
        let mut out = Vec::with_capacity(self.count as usize);
        for (s, l, _) in &self.runs {
            out.extend(*s..s + l);
        }
        out
    }

    /// The sequence number of `uid`.
    pub fn seq_of(&self, uid: i64) -> Option<i64> {
        let i = self.runs.partition_point(|(s, _, _)| *s <= uid);
        let (s, l, before) = *self.runs.get(i.checked_sub(1)?)?;
        (uid < s + l).then_some(before + (uid - s) + 1)
    }
}

/// True when a sequence-number set names a message past the end (a client error, RFC 3501 §9).
pub fn out_of_range(set: &SequenceSet, count: usize) -> bool {
    set.0.as_ref().iter().any(|s| {
        let check = |v: &SeqOrUid| matches!(v, SeqOrUid::Value(n) if n.get() as usize > count);
        match s {
            Sequence::Single(v) => check(v),
            Sequence::Range(a, b) => check(a) && check(b),
        }
    })
}

/// A compact sequence-set string for a sorted list of numbers (`1:3,7`).
pub fn compact(numbers: &[i64]) -> String {
    let mut parts = Vec::new();
    let mut i = 0;
    while i < numbers.len() {
        let start = numbers[i];
        let mut end = start;
        while i + 1 < numbers.len() && numbers[i + 1] == end + 1 {
            i += 1;
            end = numbers[i];
        }
        parts.push(if start == end {
            start.to_string()
        } else {
            format!("{start}:{end}")
        });
        i += 1;
    }
    parts.join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(s: &str) -> SequenceSet {
        SequenceSet::try_from(s).unwrap()
    }

    #[test]
    fn uid_map_is_compact_and_exact() {
        let uids = [1, 2, 3, 7, 8, 20];
        let m = UidMap::from_sorted(&uids);
        assert_eq!(m.runs.len(), 3);
        assert_eq!(m.to_vec(), uids);
        assert_eq!(m.len(), 6);
        assert_eq!(m.last(), Some(20));
        assert_eq!(m.seq_of(7), Some(4));
        assert_eq!(m.seq_of(20), Some(6));
        assert_eq!(m.seq_of(5), None);
        assert_eq!(m.seq_of(0), None);
        assert!(contains(&set("2:4,*"), 3, 6));
        assert!(contains(&set("2:4,*"), 6, 6));
        assert!(!contains(&set("2:4"), 5, 6));
    }

    #[test]
    fn sequence_numbers_and_uids() {
        let uids = [3, 5, 9, 10];
        assert_eq!(resolve(&set("1:*"), &uids, false), vec![3, 5, 9, 10]);
        assert_eq!(resolve(&set("2,4"), &uids, false), vec![5, 10]);
        assert_eq!(resolve(&set("*"), &uids, false), vec![10]);
        assert_eq!(resolve(&set("4:6"), &uids, true), vec![5]);
        assert_eq!(resolve(&set("*"), &uids, true), vec![10]);
        assert_eq!(
            resolve(&set("11:*"), &uids, true),
            vec![10],
            "n:* includes the highest UID"
        );
        assert!(resolve(&set("1:*"), &[], true).is_empty());
        assert!(out_of_range(&set("5"), 4));
        assert!(!out_of_range(&set("4:*"), 4));
        assert_eq!(compact(&[1, 2, 3, 7, 9, 10]), "1:3,7,9:10");
    }
}
