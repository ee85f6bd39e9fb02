//! The base subject of a message (RFC 5256 §2.1), what SORT (SUBJECT) compares
//! and both THREAD algorithms group by, and the text of an unstructured header
//! with its RFC 2047 encoded-words decoded. Sans-IO: strings in, strings out.
//!
//! The extraction follows the RFC's steps on the decoded subject (Dovecot does
//! the same, and the examples in the tests were checked against Dovecot 2.3):
//! white space runs become one space; trailers (`(fwd)`, white space) are cut,
//! then leaders (`Re:`, `Fw:`, `Fwd:`, each with optional `[blob]`s before and
//! one after, and white space), then one `[blob]` when something is left after
//! it, again until nothing changes; a `[fwd: …]` wrapper is unwrapped and the
//! whole starts over. Whether anything of `Re:`/`Fwd:`/`(fwd)`/`[fwd: …]` was
//! cut is what THREAD=REFERENCES calls "a reply or forward" (§4 step 5).

use std::panic::{AssertUnwindSafe, catch_unwind};

/// The base subject of a decoded subject, and whether it was a reply or forward.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BaseSubject {
    /// The subject without its reply and forward decorations (case kept).
    pub text: String,
    /// Some `Re:`, `Fw:`, `Fwd:`, `(fwd)` or `[fwd: …]` was removed.
    pub reply_or_forward: bool,
}

/// The text of an unstructured header value (Subject, a display name) with
/// RFC 2047 encoded-words decoded, as mail-parser reads it; bytes that are not
/// UTF-8 are replaced. A value mail-parser cannot read is taken as it is.
pub fn decode_text(raw: &[u8]) -> String {
    let mut input = Vec::with_capacity(raw.len() + 2);
    input.extend_from_slice(raw);
    input.extend_from_slice(b"\r\n");
    // mail-parser's own checks may panic on hostile input (see `mime::parse`).
    let decoded = catch_unwind(AssertUnwindSafe(
        || match mail_parser::parsers::MessageStream::new(&input).parse_unstructured() {
            mail_parser::HeaderValue::Text(t) => Some(t.into_owned()),
            mail_parser::HeaderValue::TextList(l) => Some(l.join(" ")),
            _ => None,
        },
    ))
    .ok()
    .flatten();
    decoded.unwrap_or_else(|| String::from_utf8_lossy(raw).into_owned())
}

/// The base subject of `subject` (already decoded, see [`decode_text`]).
pub fn base_subject(subject: &str) -> BaseSubject {
    // Step 1: tabs and line breaks are spaces, runs of spaces one space.
    let mut s = String::with_capacity(subject.len());
    for c in subject.chars() {
        let c = if matches!(c, '\t' | '\r' | '\n') {
            ' '
        } else {
            c
        };
        if !(c == ' ' && s.ends_with(' ')) {
            s.push(c);
        }
    }
    let mut text = s.as_str();
    let mut reply = false;
    loop {
        // Step 2: trailers.
        loop {
            let trimmed = text.trim_end_matches(' ');
            if let Some(cut) = strip_suffix_ci(trimmed, "(fwd)") {
                text = cut;
                reply = true;
            } else {
                text = trimmed;
                break;
            }
        }
        // Steps 3 to 5: leaders, then one blob if something is left after it.
        loop {
            let before = text.len();
            loop {
                let trimmed = text.trim_start_matches(' ');
                if let Some(rest) = leader(trimmed) {
                    text = rest;
                    reply = true;
                } else {
                    text = trimmed;
                    break;
                }
            }
            if let Some(rest) = blob(text)
                && !rest.is_empty()
            {
                text = rest;
            }
            if text.len() == before {
                break;
            }
        }
        // Step 6: a `[fwd: …]` wrapper, then again from step 2.
        match strip_prefix_ci(text, "[fwd:").and_then(|t| t.strip_suffix(']')) {
            Some(inner) => {
                text = inner;
                reply = true;
            }
            None => break,
        }
    }
    BaseSubject {
        text: text.to_string(),
        reply_or_forward: reply,
    }
}

fn strip_prefix_ci<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &s[prefix.len()..])
}

fn strip_suffix_ci<'a>(s: &'a str, suffix: &str) -> Option<&'a str> {
    let cut = s.len().checked_sub(suffix.len())?;
    let tail = s.get(cut..)?;
    tail.eq_ignore_ascii_case(suffix).then(|| &s[..cut])
}

/// `subj-blob`: `[` any characters but brackets `]`, then white space. The rest.
fn blob(s: &str) -> Option<&str> {
    let inner = s.strip_prefix('[')?;
    let close = inner.find([']', '['])?;
    if inner.as_bytes()[close] != b']' {
        return None;
    }
    Some(inner[close + 1..].trim_start_matches(' '))
}

/// `subj-leader` other than white space: `*subj-blob subj-refwd`, where
/// `subj-refwd` is `re`, `fw` or `fwd`, white space, an optional blob and `:`.
/// The rest.
fn leader(s: &str) -> Option<&str> {
    let mut rest = s;
    loop {
        if let Some(after) = refwd(rest) {
            return Some(after);
        }
        rest = blob(rest)?;
    }
}

fn refwd(s: &str) -> Option<&str> {
    let after = strip_prefix_ci(s, "re")
        .or_else(|| strip_prefix_ci(s, "fwd"))
        .or_else(|| strip_prefix_ci(s, "fw"))?;
    let after = after.trim_start_matches(' ');
    let after = blob(after).unwrap_or(after);
    after.strip_prefix(':')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base(s: &str) -> (String, bool) {
        let b = base_subject(s);
        (b.text, b.reply_or_forward)
    }

    #[test]
    fn plain_subjects_stay_as_they_are() {
        assert_eq!(base("Meeting agenda"), ("Meeting agenda".into(), false));
        assert_eq!(base(""), (String::new(), false));
        assert_eq!(base("   Delta \t  x  "), ("Delta x".into(), false));
        assert_eq!(base("Lima [fwd]"), ("Lima [fwd]".into(), false));
        assert_eq!(base("Ré: Yankee"), ("Ré: Yankee".into(), false));
    }

    /// Pairs that Dovecot 2.3 puts in one THREAD=ORDEREDSUBJECT thread (same
    /// base subject), checked on a throwaway Dovecot.
    #[test]
    fn same_base_subject_as_dovecot() {
        let pairs = [
            ("Re[2]: Alpha", "Alpha", true),
            ("Fwd: [tag] Re: Bravo", "Bravo", true),
            ("Charlie (fwd) (fwd)", "Charlie", true),
            ("[a] [b] Echo", "Echo", false),
            ("Re: [a] [b]", "[b]", true),
            ("[Fwd: Re: Foxtrot]", "Foxtrot", true),
            ("Golf(fwd)", "Golf", true),
            ("Re:Hotel", "Hotel", true),
            ("RE : India", "India", true),
            ("Fw: Fwd: Re[3]: Juliet", "Juliet", true),
            ("[fwd: [fwd: Kilo]]", "Kilo", true),
            ("Re: [fwd: Mike] (fwd)", "Mike", true),
            ("Oscar\t(fwd)", "Oscar", true),
            ("[ ] Papa", "Papa", false),
            ("Re [x]: Quebec", "Quebec", true),
            ("Re [x]:Romeo", "Romeo", true),
            ("re :[x] Sierra", "Sierra", true),
            ("Tango (Fwd)  ", "Tango", true),
            ("[fwd: Uniform] (fwd)", "Uniform", true),
            ("Re: [fwd: Victor]", "Victor", true),
            ("[x] [fwd: Whiskey]", "Whiskey", true),
            ("Fwd: Re: X-ray", "X-ray", true),
        ];
        for (decorated, plain, reply) in pairs {
            assert_eq!(base(decorated), (plain.to_string(), reply), "{decorated:?}");
            assert_eq!(base(plain).0, plain, "{plain:?}");
        }
    }

    #[test]
    fn reply_or_forward_is_what_was_cut() {
        assert!(base("Re: x").1);
        assert!(base("x (fwd)").1);
        assert!(base("[fwd: x]").1);
        assert!(base("[tag] Fw: x").1);
        assert!(!base("[tag] x").1);
        assert!(!base("Meeting agenda").1);
        // A blob alone is not cut (nothing would be left), and not a reply.
        assert_eq!(base("[tag]"), ("[tag]".into(), false));
        assert_eq!(base("Fwd: [x]"), ("[x]".into(), true));
    }

    /// Dovecot groups all of these with the empty subject.
    #[test]
    fn decorations_alone_leave_nothing() {
        for s in [
            "Re: Re:",
            "Re:",
            "Re:   ",
            "Re: (fwd)",
            "(fwd)",
            "Re: Fwd:",
            "Fwd:",
            "[fwd: ]",
        ] {
            assert_eq!(base(s).0, "", "{s:?}");
        }
    }

    #[test]
    fn encoded_words_are_decoded() {
        assert_eq!(
            decode_text(b"=?UTF-8?Q?R=C3=A9sum=C3=A9_du_dossier?="),
            "Résumé du dossier"
        );
        assert_eq!(decode_text(b"=?ISO-8859-1?Q?=C9mile?="), "Émile");
        assert_eq!(
            base(&decode_text(b"=?UTF-8?B?UmU6IE5vdmVtYmVy?=")),
            ("November".into(), true)
        );
        assert_eq!(decode_text(b"plain  text"), "plain  text");
        assert_eq!(decode_text(b""), "");
        assert_eq!(decode_text(b"caf\xe9"), "caf\u{fffd}");
    }
}
