//! Extensions imap-codec 2.0-alpha does not parse: ESEARCH (RFC 4731: `SEARCH
//! RETURN (…)`), the LIST-EXTENDED options clients send (RFC 5258: selection
//! options `(SUBSCRIBED SPECIAL-USE)` and `RETURN (SUBSCRIBED CHILDREN SPECIAL-USE)`)
//! LIST-STATUS (RFC 5819: `RETURN (STATUS (MESSAGES UNSEEN …))`) and the
//! SEARCHRES marker `$` (RFC 5182), which is replaced by the numbers it stands
//! for before the command is parsed again.
//!
//! When imap-next reports a command it could not parse, [`rewrite`] recognises
//! these forms, removes the extension syntax, remembers the options on the
//! session and lets imap-codec parse the plain command. The ESEARCH response has
//! no imap-types variant either: the session writes it in place of a placeholder.
//!
//! APPEND with several messages (MULTIAPPEND) or CATENATE parts is cut into
//! its messages by [`append`] and run as one [`append::AppendCommand`].

use imap_codec::CommandCodec;
use imap_codec::decode::Decoder;
use imap_codec::imap_types::IntoStatic;
use imap_codec::imap_types::command::Command;
use imap_codec::imap_types::core::Tag;
use imap_codec::imap_types::status::StatusDataItemName;

pub mod append;

use super::sequence;
use super::session::ImapSession;
use super::storage::Mailstore;

/// LIST-EXTENDED options of one LIST command.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListOptions {
    /// Selection: only subscribed mailboxes.
    pub select_subscribed: bool,
    /// Selection: only special-use mailboxes.
    pub select_special_use: bool,
    /// Return the \Subscribed attribute.
    pub return_subscribed: bool,
    /// LIST-STATUS: a STATUS response with these items after each selectable mailbox.
    pub return_status: Option<Vec<StatusDataItemName>>,
}

/// Index of the `)` closing a list whose `(` is just before `s`.
fn closing_paren(s: &str) -> Option<usize> {
    let mut depth = 0usize;
    for (i, c) in s.char_indices() {
        match c {
            '(' => depth += 1,
            ')' if depth == 0 => return Some(i),
            ')' => depth -= 1,
            _ => {}
        }
    }
    None
}

/// A STATUS item name (RFC 9051 `status-att`, RFC 8438 SIZE).
fn status_item(name: &str) -> Option<StatusDataItemName> {
    Some(match name {
        "MESSAGES" => StatusDataItemName::Messages,
        "RECENT" => StatusDataItemName::Recent,
        "UIDNEXT" => StatusDataItemName::UidNext,
        "UIDVALIDITY" => StatusDataItemName::UidValidity,
        "UNSEEN" => StatusDataItemName::Unseen,
        "DELETED" => StatusDataItemName::Deleted,
        "DELETED-STORAGE" => StatusDataItemName::DeletedStorage,
        "SIZE" => StatusDataItemName::Size,
        "HIGHESTMODSEQ" => StatusDataItemName::HighestModSeq,
        _ => return None,
    })
}

/// The LIST return options inside `RETURN (…)`.
fn return_options(inner: &str, options: &mut ListOptions) -> Option<()> {
    let mut s = inner.trim_start();
    while !s.is_empty() {
        let end = s.find([' ', '(']).unwrap_or(s.len());
        let word = s[..end].to_ascii_uppercase();
        s = s[end..].trim_start();
        match word.as_str() {
            "SUBSCRIBED" => options.return_subscribed = true,
            "CHILDREN" | "SPECIAL-USE" => {}
            "STATUS" => {
                let (items, after) = paren_list(s)?;
                let items = items
                    .iter()
                    .map(|i| status_item(i))
                    .collect::<Option<Vec<_>>>()?;
                if items.is_empty() {
                    return None;
                }
                options.return_status = Some(items);
                s = after.trim_start();
            }
            _ => return None,
        }
    }
    Some(())
}

/// Splits `(A B C)` at the start of `s`: (upper-cased words, rest after the parenthesis).
fn paren_list(s: &str) -> Option<(Vec<String>, &str)> {
    let s = s.trim_start();
    let inner = s.strip_prefix('(')?;
    let end = inner.find(')')?;
    let words = inner[..end]
        .split_whitespace()
        .map(|w| w.to_ascii_uppercase())
        .collect();
    Some((words, &inner[end + 1..]))
}

/// What [`rewrite`] made of a command imap-codec could not parse.
#[derive(Debug)]
pub enum Rewrite {
    /// The plain command to run.
    Command(Command<'static>),
    /// Already answered (a command on an empty `$`).
    Answered,
    /// An APPEND of several messages or with CATENATE parts.
    Append(append::AppendCommand),
}

/// Where `$` stands for a whole sequence set (RFC 5182 `seq-last-command`):
/// after a space or `(`, before a space, `)` or the end, outside quoted strings.
fn saved_marker(s: &str) -> Option<usize> {
    let bytes = s.as_bytes();
    let (mut quoted, mut escaped) = (false, false);
    for (i, &b) in bytes.iter().enumerate() {
        if quoted {
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                quoted = false;
            }
            continue;
        }
        match b {
            b'"' => quoted = true,
            b'$' if i > 0
                && matches!(bytes[i - 1], b' ' | b'(')
                && matches!(bytes.get(i + 1), None | Some(b' ' | b')')) =>
            {
                return Some(i);
            }
            _ => {}
        }
    }
    None
}

/// `rest` (the command after its tag) with every `$` replaced by the saved
/// result: UIDs in UID commands and after the `UID` search key, sequence
/// numbers elsewhere. `Err(())` when `$` is empty in a command other than
/// SEARCH (nothing to do); `Ok(None)` when there is no `$`.
fn replace_saved<S: Mailstore>(session: &ImapSession<S>, rest: &str) -> Result<Option<String>, ()> {
    if saved_marker(rest).is_none() {
        return Ok(None);
    }
    let Some(sel) = session.selected.as_ref() else {
        // No mailbox: let the plain parse fail (BAD).
        return Ok(None);
    };
    let upper = rest.to_ascii_uppercase();
    let uid_command = upper.starts_with("UID ");
    let search = upper.starts_with("SEARCH ") || upper.starts_with("UID SEARCH ");
    let uids: Vec<i64> = sel
        .saved
        .iter()
        .copied()
        .filter(|&u| sel.uids.seq_of(u).is_some())
        .collect();
    let seqs: Vec<i64> = uids.iter().filter_map(|&u| sel.uids.seq_of(u)).collect();
    let mut out = String::with_capacity(rest.len());
    let mut s = rest;
    while let Some(i) = saved_marker(s) {
        out.push_str(&s[..i]);
        let as_uids = if search {
            out.to_ascii_uppercase().ends_with(" UID ")
        } else {
            uid_command
        };
        let numbers = if as_uids { &uids } else { &seqs };
        if numbers.is_empty() {
            if !search {
                return Err(());
            }
            // A number no message of the session has.
            let none = if as_uids {
                sel.uids.last().unwrap_or(0) + 1
            } else {
                sel.uids.len() as i64 + 1
            };
            out.push_str(&none.to_string());
        } else {
            out.push_str(&sequence::compact(numbers));
        }
        s = &s[i + 1..];
    }
    out.push_str(s);
    Ok(Some(out))
}

/// Recognises an extended command in `raw`, records its options on `session`, and
/// returns the plain command to run.
pub fn rewrite<S: Mailstore>(session: &mut ImapSession<S>, raw: &[u8]) -> Option<Rewrite> {
    // Before anything else: its literals need not be UTF-8.
    if let Some(append) = append::parse(raw) {
        return Some(Rewrite::Append(append));
    }
    let text = std::str::from_utf8(raw).ok()?;
    let line = text.strip_suffix("\r\n").unwrap_or(text);
    if line.contains('{') {
        // Never re-parse anything with literals.
        return None;
    }
    let (tag, rest) = line.split_once(' ')?;
    let replaced = match replace_saved(session, rest) {
        Ok(r) => r,
        Err(()) => {
            let tag = Tag::try_from(tag.to_string()).ok()?;
            session.ok(tag, None, "Completed: the saved search result is empty");
            return Some(Rewrite::Answered);
        }
    };
    let rest = match &replaced {
        Some(r) => {
            let plain = format!("{tag} {r}\r\n");
            if let Ok((_, command)) = CommandCodec::default().decode(plain.as_bytes()) {
                return Some(Rewrite::Command(command.into_static()));
            }
            r.as_str()
        }
        None => rest,
    };
    let upper = rest.to_ascii_uppercase();
    let (uid, after) = if upper.starts_with("UID SEARCH ") {
        (true, &rest["UID SEARCH ".len()..])
    } else if upper.starts_with("SEARCH ") {
        (false, &rest["SEARCH ".len()..])
    } else if upper.starts_with("LIST ") {
        return rewrite_list(session, tag, &rest["LIST ".len()..]).map(Rewrite::Command);
    } else {
        return None;
    };
    let after_upper = after.to_ascii_uppercase();
    let options_text = after_upper.strip_prefix("RETURN ")?;
    let (mut options, _) = paren_list(options_text)?;
    let consumed = after.len() - paren_list(&after["RETURN ".len()..])?.1.len();
    let criteria = after[consumed..].trim();
    if options.is_empty() {
        options.push("ALL".into());
    }
    let plain = format!(
        "{tag} {}SEARCH {criteria}\r\n",
        if uid { "UID " } else { "" }
    );
    let (_, command) = CommandCodec::default().decode(plain.as_bytes()).ok()?;
    session.esearch = Some(options);
    Some(Rewrite::Command(command.into_static()))
}

fn rewrite_list<S: Mailstore>(
    session: &mut ImapSession<S>,
    tag: &str,
    args: &str,
) -> Option<Command<'static>> {
    let mut options = ListOptions::default();
    let mut rest = args.trim_start();
    if rest.starts_with('(') {
        let (words, after) = paren_list(rest)?;
        for w in words {
            match w.as_str() {
                "SUBSCRIBED" => options.select_subscribed = true,
                "SPECIAL-USE" => options.select_special_use = true,
                "REMOTE" | "RECURSIVEMATCH" => {}
                _ => return None,
            }
        }
        rest = after.trim_start();
    }
    let upper = rest.to_ascii_uppercase();
    let plain_args = match upper.find(" RETURN (") {
        Some(pos) => {
            let inner = &rest[pos + " RETURN (".len()..];
            let close = closing_paren(inner)?;
            if !inner[close + 1..].trim().is_empty() {
                return None;
            }
            return_options(&inner[..close], &mut options)?;
            &rest[..pos]
        }
        None => rest,
    };
    let plain = format!("{tag} LIST {plain_args}\r\n");
    let (_, command) = CommandCodec::default().decode(plain.as_bytes()).ok()?;
    session.list_options = Some(options);
    Some(command.into_static())
}

impl<S: Mailstore> ImapSession<S> {
    /// Answers an ESEARCH (RFC 4731) with the requested results.
    pub(super) fn esearch_result(
        &mut self,
        tag: &Tag<'static>,
        uid: bool,
        options: &[String],
        hits: &[std::num::NonZeroU32],
        modseq: Option<std::num::NonZeroU64>,
    ) {
        let mut line = format!("* ESEARCH (TAG \"{}\")", tag.as_ref());
        if uid {
            line.push_str(" UID");
        }
        let numbers: Vec<i64> = hits.iter().map(|n| i64::from(n.get())).collect();
        for o in options {
            match o.as_str() {
                "MIN" if !numbers.is_empty() => line.push_str(&format!(" MIN {}", numbers[0])),
                "MAX" if !numbers.is_empty() => {
                    line.push_str(&format!(" MAX {}", numbers[numbers.len() - 1]))
                }
                "COUNT" => line.push_str(&format!(" COUNT {}", numbers.len())),
                "ALL" if !numbers.is_empty() => {
                    line.push_str(&format!(" ALL {}", sequence::compact(&numbers)))
                }
                _ => {}
            }
        }
        // RFC 7162 §3.1.5: the highest MODSEQ of the results, after the others.
        if let Some(m) = modseq {
            line.push_str(&format!(" MODSEQ {m}"));
        }
        line.push_str("\r\n");
        self.raw(line.into_bytes());
    }
}
