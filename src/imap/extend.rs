//! Extensions imap-codec 2.0-alpha does not parse: APPEND's `UTF8 (literal8)`
//! data item (RFC 6855), ESEARCH and ESORT (RFC 4731, RFC 5267: `SEARCH
//! RETURN (…)`, `SORT RETURN (…)`, read by `op/returns.rs`), CANCELUPDATE
//! (RFC 5267, answered by `op/context.rs`), the extended LIST syntax (RFC
//! 5258: selection options `(SUBSCRIBED REMOTE RECURSIVEMATCH SPECIAL-USE)`,
//! several patterns `(p1 p2)`, `RETURN (SUBSCRIBED CHILDREN SPECIAL-USE)`),
//! LIST-STATUS (RFC 5819: `RETURN (STATUS (MESSAGES UNSEEN …))`) and the
//! SEARCHRES marker `$` (RFC 5182), which is replaced by the numbers it stands
//! for before the command is parsed again. imap-types 2.0 has LIST-EXTENDED's
//! response items (`extensions::list_extended`) but imap-codec parses no
//! extended LIST command.
//!
//! When imap-next reports a command it could not parse, [`rewrite`] recognises
//! these forms, removes the extension syntax, remembers the options on the
//! session and lets imap-codec parse the plain command (each LIST pattern is
//! parsed by imap-codec as the pattern of a plain LIST). The ESEARCH response
//! has no imap-types variant either: the session writes it in place of a
//! placeholder.
//!
//! APPEND with several messages (MULTIAPPEND) or CATENATE parts is cut into
//! its messages by [`append`] and run as one [`append::AppendCommand`].

use imap_codec::CommandCodec;
use imap_codec::decode::Decoder;
use imap_codec::imap_types::IntoStatic;
use imap_codec::imap_types::command::{Command, CommandBody};
use imap_codec::imap_types::core::Tag;
use imap_codec::imap_types::mailbox::{ListMailbox, Mailbox};
use imap_codec::imap_types::status::StatusDataItemName;

pub mod append;

use super::sequence;
use super::session::ImapSession;
use super::storage::Mailstore;

/// LIST-EXTENDED options of one LIST command (RFC 5258).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListOptions {
    /// The command used the extended syntax (selection options, a list of
    /// patterns or RETURN): an empty pattern is then ignored rather than a
    /// request for the hierarchy delimiter (RFC 5258 §3, RFC 9051 §6.3.9).
    pub extended: bool,
    /// Selection: only subscribed mailboxes.
    pub select_subscribed: bool,
    /// Selection: only special-use mailboxes.
    pub select_special_use: bool,
    /// Selection: RECURSIVEMATCH (names with selected descendants, CHILDINFO).
    pub select_recursive: bool,
    /// Return the \Subscribed attribute.
    pub return_subscribed: bool,
    /// LIST-STATUS: a STATUS response with these items after each selectable mailbox.
    pub return_status: Option<Vec<StatusDataItemName>>,
    /// Every pattern of `(p1 p2 …)`, in place of the one of the command.
    pub patterns: Option<Vec<ListMailbox<'static>>>,
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
    /// Already answered (a command on an empty `$`, or a malformed extended LIST).
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
    // Only where a sequence set may stand: `$` is an ordinary character of a
    // mailbox name (`LIST "" ($ x)`, `STATUS $ (…)`).
    const TAKES_SETS: [&str; 8] = [
        "FETCH ", "STORE ", "COPY ", "MOVE ", "SEARCH ", "SORT ", "THREAD ", "UID ",
    ];
    let upper = rest.to_ascii_uppercase();
    if saved_marker(rest).is_none() || !TAKES_SETS.iter().any(|c| upper.starts_with(c)) {
        return Ok(None);
    }
    let Some(sel) = session.selected.as_ref() else {
        // No mailbox: let the plain parse fail (BAD).
        return Ok(None);
    };
    let uid_command = upper.starts_with("UID ");
    let search = ["SEARCH ", "SORT ", "THREAD "].iter().any(|c| {
        upper.starts_with(c) || upper.strip_prefix("UID ").is_some_and(|u| u.starts_with(c))
    });
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

/// APPEND's `UTF8 (~{n}…)` data item (RFC 6855 §4), which imap-codec does not
/// parse: `tag APPEND mailbox [flags] [date] UTF8 (~{n[+]}` CRLF, the n octets,
/// then `)` CRLF. Rewritten as the same APPEND with a plain `~{n}` literal8;
/// refused (BAD) unless the session enabled UTF8=ACCEPT.
fn rewrite_append_utf8<S: Mailstore>(session: &mut ImapSession<S>, raw: &[u8]) -> Option<Rewrite> {
    let line_end = raw.windows(2).position(|w| w == b"\r\n")?;
    let head = &raw[..line_end];
    let tilde = head.iter().rposition(|&b| b == b'~')?;
    let announced = head[tilde..].strip_prefix(b"~{")?.strip_suffix(b"}")?;
    let digits = announced.strip_suffix(b"+").unwrap_or(announced);
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let length: usize = std::str::from_utf8(digits).ok()?.parse().ok()?;
    const ITEM: &[u8] = b" UTF8 (";
    let before = &head[..tilde];
    if before.len() < ITEM.len() || !before[before.len() - ITEM.len()..].eq_ignore_ascii_case(ITEM)
    {
        return None;
    }
    let prefix = std::str::from_utf8(&before[..before.len() - ITEM.len()]).ok()?;
    let (tag, rest) = prefix.split_once(' ')?;
    if !rest
        .get(..7)
        .is_some_and(|w| w.eq_ignore_ascii_case("APPEND "))
    {
        return None;
    }
    let data_start = line_end + 2;
    let data = raw.get(data_start..data_start.checked_add(length)?)?;
    if &raw[data_start + length..] != b")\r\n" {
        return None;
    }
    let tag = Tag::try_from(tag.to_string()).ok()?;
    if !session.utf8 {
        session.bad(tag, "APPEND with UTF8 needs ENABLE UTF8=ACCEPT first");
        return Some(Rewrite::Answered);
    }
    let mut plain = Vec::with_capacity(prefix.len() + length + 24);
    plain.extend_from_slice(prefix.as_bytes());
    plain.extend_from_slice(format!(" ~{{{length}}}\r\n").as_bytes());
    plain.extend_from_slice(data);
    plain.extend_from_slice(b"\r\n");
    let (_, command) = CommandCodec::default().decode(&plain).ok()?;
    Some(Rewrite::Command(command.into_static()))
}

/// Recognises an extended command in `raw`, records its options on `session`, and
/// returns the plain command to run.
pub fn rewrite<S: Mailstore>(session: &mut ImapSession<S>, raw: &[u8]) -> Option<Rewrite> {
    if let Some(done) = rewrite_append_utf8(session, raw) {
        return Some(done);
    }
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
    if upper == "CANCELUPDATE" || upper.starts_with("CANCELUPDATE ") {
        let tag = Tag::try_from(tag.to_string()).ok()?;
        session.cancel_update(tag, &rest["CANCELUPDATE".len()..]);
        return Some(Rewrite::Answered);
    }
    if upper.starts_with("LIST ") {
        return rewrite_list(session, tag, &rest["LIST ".len()..]);
    }
    // `[UID] SEARCH RETURN (…) …` and `[UID] SORT RETURN (…) …` (ESEARCH, ESORT).
    let (uid, plain_upper) = match upper.strip_prefix("UID ") {
        Some(u) => (true, u),
        None => (false, upper.as_str()),
    };
    let command = ["SEARCH", "SORT"]
        .into_iter()
        .find(|c| plain_upper.starts_with(&format!("{c} ")))?;
    let after = &rest[rest.len() - plain_upper.len() + command.len() + 1..];
    let after_upper = after.to_ascii_uppercase();
    let options_text = after_upper.strip_prefix("RETURN ")?;
    let (options, _) = paren_list(options_text)?;
    let consumed = after.len() - paren_list(&after["RETURN ".len()..])?.1.len();
    let criteria = after[consumed..].trim();
    let plain = format!(
        "{tag} {}{command} {criteria}\r\n",
        if uid { "UID " } else { "" }
    );
    let (_, command) = CommandCodec::default().decode(plain.as_bytes()).ok()?;
    session.esearch = Some(options);
    Some(Rewrite::Command(command.into_static()))
}

/// One argument of an extended LIST: a parenthesised list (its inside) or a
/// single word (an atom, or a quoted string with its quotes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Arg<'a> {
    List(&'a str),
    Word(&'a str),
}

/// Splits the next argument off `s`; None when there is none or it is malformed.
fn next_arg(s: &str) -> Option<(Arg<'_>, &str)> {
    let s = s.trim_start_matches(' ');
    let bytes = s.as_bytes();
    let (mut quoted, mut escaped, mut depth) = (false, false, 0usize);
    for (i, &b) in bytes.iter().enumerate() {
        if quoted {
            match b {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => {
                    quoted = false;
                    if depth == 0 {
                        return Some((Arg::Word(&s[..=i]), &s[i + 1..]));
                    }
                }
                _ => {}
            }
            continue;
        }
        match b {
            b'"' if i == 0 || depth > 0 => quoted = true,
            b'(' if i == 0 || depth > 0 => depth += 1,
            b')' if depth == 1 => return Some((Arg::List(&s[1..i]), &s[i + 1..])),
            b')' if depth > 1 => depth -= 1,
            b' ' | b'(' | b')' if depth == 0 => {
                return (i > 0).then(|| (Arg::Word(&s[..i]), &s[i..]));
            }
            _ => {}
        }
    }
    (depth == 0 && !quoted && !s.is_empty()).then_some((Arg::Word(s), ""))
}

/// The words of a list's inside; None when it holds a nested list.
fn words(inner: &str) -> Option<Vec<&str>> {
    let mut out = Vec::new();
    let mut rest = inner;
    while !rest.trim_start_matches(' ').is_empty() {
        match next_arg(rest)? {
            (Arg::Word(w), after) => {
                out.push(w);
                rest = after;
            }
            (Arg::List(_), _) => return None,
        }
    }
    Some(out)
}

/// The LIST return options inside `RETURN (…)` (RFC 5258 §3.2, RFC 5819).
fn return_options(inner: &str, options: &mut ListOptions) -> Result<(), &'static str> {
    let mut rest = inner;
    while let Some((arg, after)) = next_arg(rest) {
        rest = after;
        let Arg::Word(word) = arg else {
            return Err("Unknown return option");
        };
        match word.to_ascii_uppercase().as_str() {
            "SUBSCRIBED" => options.return_subscribed = true,
            // Always returned (CHILDREN and SPECIAL-USE are announced).
            "CHILDREN" | "SPECIAL-USE" => {}
            "STATUS" => {
                let Some((Arg::List(items), after)) = next_arg(rest) else {
                    return Err("STATUS needs a list of items");
                };
                rest = after;
                let items = words(items)
                    .ok_or("Invalid STATUS items")?
                    .iter()
                    .map(|i| status_item(&i.to_ascii_uppercase()))
                    .collect::<Option<Vec<_>>>()
                    .filter(|items| !items.is_empty())
                    .ok_or("Invalid STATUS items")?;
                options.return_status = Some(items);
            }
            _ => return Err("Unknown return option"),
        }
    }
    if rest.trim().is_empty() {
        Ok(())
    } else {
        Err("Unknown return option")
    }
}

/// The selection options of `LIST (…)` (RFC 5258 §3.1, RFC 6154 §5.1).
fn selection_options(inner: &str, options: &mut ListOptions) -> Result<(), &'static str> {
    for word in words(inner).ok_or("Unknown selection option")? {
        match word.to_ascii_uppercase().as_str() {
            "SUBSCRIBED" => options.select_subscribed = true,
            "SPECIAL-USE" => options.select_special_use = true,
            "RECURSIVEMATCH" => options.select_recursive = true,
            // No remote mailboxes here (RFC 2193).
            "REMOTE" => {}
            _ => return Err("Unknown selection option"),
        }
    }
    // RFC 5258 §3.1: RECURSIVEMATCH alone (or with REMOTE only) is an error.
    if options.select_recursive && !options.select_subscribed && !options.select_special_use {
        return Err("RECURSIVEMATCH needs another selection option");
    }
    Ok(())
}

/// What the extended LIST `args` (after `LIST `) stand for: the plain
/// command (reference and first pattern) and the options, or why it is BAD.
/// `Ok(None)`: not the extended syntax (the plain parse's BAD stands).
fn parse_list(
    tag: &str,
    args: &str,
) -> Result<Option<(Command<'static>, ListOptions)>, &'static str> {
    let mut options = ListOptions::default();
    let mut rest = args;
    let (mut arg, mut after) = next_arg(rest).ok_or("Missing arguments")?;
    if let Arg::List(inner) = arg {
        options.extended = true;
        selection_options(inner, &mut options)?;
        (arg, after) = next_arg(after).ok_or("Missing reference")?;
    }
    let Arg::Word(reference) = arg else {
        return Err("Invalid reference");
    };
    rest = after;
    let (patterns, after) = next_arg(rest).ok_or("Missing mailbox pattern")?;
    let patterns = match patterns {
        Arg::Word(p) => vec![p],
        Arg::List(inner) => {
            options.extended = true;
            words(inner).ok_or("Invalid mailbox patterns")?
        }
    };
    let after = after.trim_start_matches(' ');
    if !after.is_empty() {
        let (keyword, after) = next_arg(after).ok_or("Invalid return options")?;
        let (Arg::Word(keyword), Some((Arg::List(inner), end))) = (keyword, next_arg(after)) else {
            return Err("Invalid return options");
        };
        if !keyword.eq_ignore_ascii_case("RETURN") || !end.trim().is_empty() {
            return Err("Invalid return options");
        }
        options.extended = true;
        return_options(inner, &mut options)?;
    }
    if !options.extended {
        return Ok(None);
    }
    // imap-codec parses the reference and each pattern as those of a plain LIST.
    let plain = |pattern: &str| -> Result<(Mailbox<'static>, ListMailbox<'static>), &'static str> {
        let line = format!("{tag} LIST {reference} {pattern}\r\n");
        match CommandCodec::default().decode(line.as_bytes()) {
            Ok((_, command)) => match command.into_static().body {
                CommandBody::List {
                    reference,
                    mailbox_wildcard,
                } => Ok((reference, mailbox_wildcard)),
                _ => Err("Invalid mailbox pattern"),
            },
            Err(_) => Err("Invalid mailbox pattern"),
        }
    };
    let (reference, first) = plain(patterns.first().copied().unwrap_or("\"\""))?;
    let mut all = Vec::with_capacity(patterns.len());
    for p in &patterns {
        all.push(plain(p)?.1);
    }
    options.patterns = Some(all);
    let tag = Tag::try_from(tag.to_string()).map_err(|_| "Invalid tag")?;
    let command = Command::new(
        tag,
        CommandBody::List {
            reference,
            mailbox_wildcard: first,
        },
    )
    .map_err(|_| "Invalid command")?;
    Ok(Some((command, options)))
}

fn rewrite_list<S: Mailstore>(
    session: &mut ImapSession<S>,
    tag: &str,
    args: &str,
) -> Option<Rewrite> {
    match parse_list(tag, args) {
        Ok(Some((command, options))) => {
            session.list_options = Some(options);
            Some(Rewrite::Command(command))
        }
        Ok(None) => None,
        Err(text) => {
            let tag = Tag::try_from(tag.to_string()).ok()?;
            session.bad(tag, text);
            Some(Rewrite::Answered)
        }
    }
}
