//! RETURN options of SEARCH and SORT (ESEARCH, RFC 4731; ESORT and PARTIAL,
//! RFC 5267; SAVE, RFC 5182; UPDATE and CONTEXT, RFC 5267 §4) and the ESEARCH
//! response that answers them. `extend.rs` cuts `RETURN (…)` out of the
//! command; [`Returns::parse`] reads what it found.
//!
//! The response lists its items as Dovecot 2.3 does, whatever order they were
//! asked in: `MIN MAX ALL PARTIAL COUNT`, then `MODSEQ` (RFC 7162). For SORT,
//! MIN and MAX are the first and last messages in the sort order, and ALL
//! keeps that order, with `a:b` only for ascending runs (RFC 5267 §3.2).

use imap_codec::imap_types::core::Tag;

use crate::imap::session::ImapSession;
use crate::imap::storage::Mailstore;

/// The RETURN options of one SEARCH or SORT.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(in crate::imap) struct Returns {
    pub(in crate::imap) min: bool,
    pub(in crate::imap) max: bool,
    pub(in crate::imap) all: bool,
    pub(in crate::imap) count: bool,
    /// Positions `first..=last` (1-based) of the result (RFC 5267 §4.4).
    pub(in crate::imap) partial: Option<(u32, u32)>,
    /// Keep the result for `$` (RFC 5182).
    pub(in crate::imap) save: bool,
    /// Keep the result up to date with ADDTO/REMOVEFROM (RFC 5267 §4.3).
    pub(in crate::imap) update: bool,
}

impl Returns {
    /// Reads the upper-cased words inside `RETURN (…)`. With no result option
    /// (nothing but CONTEXT, say), ALL is implied (RFC 4731 §3.1); SAVE and
    /// UPDATE alone ask for none. An unknown option is an error (BAD).
    pub(in crate::imap) fn parse(words: &[String]) -> Result<Returns, &'static str> {
        let mut r = Returns::default();
        let mut words = words.iter();
        while let Some(word) = words.next() {
            match word.as_str() {
                "MIN" => r.min = true,
                "MAX" => r.max = true,
                "ALL" => r.all = true,
                "COUNT" => r.count = true,
                "SAVE" => r.save = true,
                "UPDATE" => r.update = true,
                // A hint that the result will be updated or paged (RFC 5267 §4.2).
                "CONTEXT" => {}
                "PARTIAL" => {
                    let range = words.next().ok_or("PARTIAL needs a range")?;
                    r.partial = Some(partial_range(range).ok_or("PARTIAL range broken")?);
                }
                _ => return Err("Unknown RETURN option"),
            }
        }
        if !(r.min || r.max || r.all || r.count || r.partial.is_some() || r.save || r.update) {
            r.all = true;
        }
        Ok(r)
    }

    /// True when the command answers with an ESEARCH response (SAVE alone does not).
    pub(in crate::imap) fn answers(&self) -> bool {
        self.min || self.max || self.all || self.count || self.partial.is_some() || self.update
    }

    /// What `$` holds after this command (RFC 5182 §2.1): with MIN and/or MAX
    /// alone, just those; with PARTIAL alone, that part; else the whole result.
    pub(in crate::imap) fn saved(&self, result: &[i64]) -> Vec<i64> {
        let mut out: Vec<i64> = if self.all || self.count {
            result.to_vec()
        } else if let Some((first, last)) = self.partial {
            part(result, first, last).to_vec()
        } else if self.min || self.max {
            let mut ends = Vec::new();
            if self.min {
                ends.extend(result.first());
            }
            if self.max {
                ends.extend(result.last());
            }
            ends
        } else {
            result.to_vec()
        };
        out.sort_unstable();
        out.dedup();
        out
    }
}

/// `a:b` with `1 <= a, b` (in either order), as `(low, high)`.
fn partial_range(s: &str) -> Option<(u32, u32)> {
    let (a, b) = s.split_once(':')?;
    let (a, b): (u32, u32) = (a.parse().ok()?, b.parse().ok()?);
    (a >= 1 && b >= 1).then(|| (a.min(b), a.max(b)))
}

/// Positions `first..=last` (1-based) of `result`.
fn part<T>(result: &[T], first: u32, last: u32) -> &[T] {
    let start = (first as usize - 1).min(result.len());
    let end = (last as usize).min(result.len());
    &result[start..end]
}

/// A list of numbers in the given order, `a:b` for ascending runs.
pub(in crate::imap) fn ordered_set(numbers: &[u32]) -> String {
    let mut out = String::new();
    let mut i = 0;
    while i < numbers.len() {
        let start = numbers[i];
        let mut end = start;
        while i + 1 < numbers.len() && Some(numbers[i + 1]) == end.checked_add(1) {
            i += 1;
            end = numbers[i];
        }
        if !out.is_empty() {
            out.push(',');
        }
        if start == end {
            out.push_str(&start.to_string());
        } else {
            out.push_str(&format!("{start}:{end}"));
        }
        i += 1;
    }
    out
}

impl<S: Mailstore> ImapSession<S> {
    /// Answers a SEARCH or SORT with RETURN options: one ESEARCH response
    /// (RFC 4731, RFC 5267) over `numbers`, the result in its order.
    pub(in crate::imap) fn esearch_answer(
        &mut self,
        tag: &Tag<'static>,
        uid: bool,
        returns: &Returns,
        numbers: &[u32],
        modseq: Option<std::num::NonZeroU64>,
    ) {
        let mut line = format!("* ESEARCH (TAG \"{}\")", tag.as_ref());
        if uid {
            line.push_str(" UID");
        }
        if returns.min
            && let Some(n) = numbers.first()
        {
            line.push_str(&format!(" MIN {n}"));
        }
        if returns.max
            && let Some(n) = numbers.last()
        {
            line.push_str(&format!(" MAX {n}"));
        }
        if returns.all && !numbers.is_empty() {
            line.push_str(&format!(" ALL {}", ordered_set(numbers)));
        }
        if let Some((first, last)) = returns.partial {
            let numbers = part(numbers, first, last);
            let set = if numbers.is_empty() {
                "NIL".to_string()
            } else {
                ordered_set(numbers)
            };
            line.push_str(&format!(" PARTIAL ({first}:{last} {set})"));
        }
        if returns.count {
            line.push_str(&format!(" COUNT {}", numbers.len()));
        }
        // RFC 7162 §3.1.5: the highest MODSEQ of the results, after the others.
        if let Some(m) = modseq {
            line.push_str(&format!(" MODSEQ {m}"));
        }
        line.push_str("\r\n");
        self.raw(line.into_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<Returns, &'static str> {
        let words: Vec<String> = s.split_whitespace().map(str::to_string).collect();
        Returns::parse(&words)
    }

    #[test]
    fn options_and_their_defaults() {
        let all = Returns {
            all: true,
            ..Returns::default()
        };
        assert_eq!(parse(""), Ok(all.clone()));
        assert_eq!(parse("CONTEXT"), Ok(all));
        let r = parse("COUNT PARTIAL 6:3 MIN").unwrap();
        assert!(r.count && r.min && !r.all && !r.max);
        assert_eq!(r.partial, Some((3, 6)));
        assert!(!parse("SAVE").unwrap().answers());
        assert!(parse("UPDATE").unwrap().answers());
        assert!(!parse("UPDATE").unwrap().all);
        assert_eq!(parse("PARTIAL 0:4"), Err("PARTIAL range broken"));
        assert_eq!(parse("PARTIAL -1:-4"), Err("PARTIAL range broken"));
        assert_eq!(parse("PARTIAL"), Err("PARTIAL needs a range"));
        assert_eq!(parse("FOO"), Err("Unknown RETURN option"));
    }

    #[test]
    fn saved_results() {
        let result = [5, 6, 1, 2];
        assert_eq!(parse("SAVE").unwrap().saved(&result), [1, 2, 5, 6]);
        assert_eq!(parse("SAVE MIN").unwrap().saved(&result), [5]);
        assert_eq!(parse("SAVE MIN MAX").unwrap().saved(&result), [2, 5]);
        assert_eq!(
            parse("SAVE MIN COUNT").unwrap().saved(&result),
            [1, 2, 5, 6]
        );
        assert_eq!(parse("SAVE PARTIAL 2:3").unwrap().saved(&result), [1, 6]);
        assert!(parse("SAVE MIN").unwrap().saved(&[]).is_empty());
    }

    #[test]
    fn ordered_sets_keep_the_order() {
        assert_eq!(
            ordered_set(&[5, 6, 1, 2, 7, 3, 4, 22, 9]),
            "5:6,1:2,7,3:4,22,9"
        );
        assert_eq!(ordered_set(&[3, 2, 1]), "3,2,1");
        assert_eq!(ordered_set(&[1, 2, 3]), "1:3");
        assert_eq!(ordered_set(&[u32::MAX, 1]), format!("{},1", u32::MAX));
        assert_eq!(ordered_set(&[]), "");
        assert_eq!(part(&[1, 2, 3], 2, 9), [2, 3]);
        assert!(part(&[1, 2, 3], 30, 40).is_empty());
    }
}
