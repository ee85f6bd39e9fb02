//! Sequence sets (RFC 3501 §9 `sequence-set`) resolved against a session's view.

use imap_codec::imap_types::sequence::{SeqOrUid, Sequence, SequenceSet};

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

    /// The UIDs `set` names, ascending and once each: UIDs (`uid`) or
    /// sequence numbers, `*` being the highest; numbers outside the view name
    /// nothing. Read from the runs: the whole view is never listed.
    pub fn resolve(&self, set: &SequenceSet, uid: bool) -> Vec<i64> {
        let mut out = Vec::new();
        let Some(max_uid) = self.last() else {
            return out;
        };
        let value = |s: &SeqOrUid| -> i64 {
            match s {
                SeqOrUid::Value(n) => i64::from(n.get()),
                SeqOrUid::Asterisk if uid => max_uid,
                SeqOrUid::Asterisk => self.count,
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
            // A run holds UIDs first..first+len, numbered before+1..=before+len.
            let from = if uid {
                self.runs
                    .partition_point(|&(first, len, _)| first + len - 1 < a)
            } else {
                self.runs
                    .partition_point(|&(_, len, before)| before + len < a)
            };
            for &(first, len, before) in &self.runs[from..] {
                let (lo, hi) = if uid {
                    if first > b {
                        break;
                    }
                    (a.max(first), b.min(first + len - 1))
                } else {
                    if before + 1 > b {
                        break;
                    }
                    let (lo, hi) = (a.max(before + 1), b.min(before + len));
                    (first + lo - before - 1, first + hi - before - 1)
                };
                if lo <= hi {
                    out.extend(lo..=hi);
                }
            }
        }
        out.sort_unstable();
        out.dedup();
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
        let uids = UidMap::from_sorted(&[3, 5, 9, 10]);
        assert_eq!(uids.resolve(&set("1:*"), false), vec![3, 5, 9, 10]);
        assert_eq!(uids.resolve(&set("2,4"), false), vec![5, 10]);
        assert_eq!(uids.resolve(&set("*"), false), vec![10]);
        assert_eq!(uids.resolve(&set("4:6"), true), vec![5]);
        assert_eq!(uids.resolve(&set("*"), true), vec![10]);
        assert_eq!(
            uids.resolve(&set("11:*"), true),
            vec![10],
            "n:* includes the highest UID"
        );
        assert!(UidMap::default().resolve(&set("1:*"), true).is_empty());
        assert!(out_of_range(&set("5"), 4));
        assert!(!out_of_range(&set("4:*"), 4));
        assert_eq!(compact(&[1, 2, 3, 7, 9, 10]), "1:3,7,9:10");
    }

    /// What a set names, the plain way: every UID of the view tested.
    fn named(set: &SequenceSet, uids: &[i64], uid: bool) -> Vec<i64> {
        let (max_uid, count) = (uids.last().copied().unwrap_or(0), uids.len() as i64);
        let max = if uid { max_uid } else { count };
        uids.iter()
            .enumerate()
            .filter(|&(i, &u)| contains(set, if uid { u } else { i as i64 + 1 }, max))
            .map(|(_, &u)| u)
            .collect()
    }

    /// Views with holes and runs, sets of ranges in any order: the runs
    /// answer as testing every UID does.
    #[test]
    fn resolving_on_runs_names_what_each_number_names() {
        let mut seed = 0x2545_f491_4f6c_dd1d_u64;
        let mut next = |n: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed % n) as i64
        };
        for _ in 0..300 {
            let mut uids = Vec::new();
            let mut u = 0;
            for _ in 0..next(40) {
                u += 1 + next(3) * next(4);
                uids.push(u);
            }
            let map = UidMap::from_sorted(&uids);
            for _ in 0..10 {
                let mut parts = Vec::new();
                for _ in 0..1 + next(3) {
                    let a = if next(8) == 0 {
                        "*".to_string()
                    } else {
                        (1 + next(60)).to_string()
                    };
                    parts.push(match next(3) {
                        0 => a,
                        _ => format!("{a}:{}", 1 + next(60)),
                    });
                }
                let s = set(&parts.join(","));
                for uid in [true, false] {
                    assert_eq!(
                        map.resolve(&s, uid),
                        named(&s, &uids, uid),
                        "{parts:?} {uid} {uids:?}"
                    );
                }
            }
        }
    }
}
