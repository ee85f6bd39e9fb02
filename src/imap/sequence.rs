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
