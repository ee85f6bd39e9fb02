//! Which names a LIST or LSUB returns: the patterns (several with the
//! extended syntax, RFC 5258 §3), the selection options (SUBSCRIBED,
//! SPECIAL-USE, RECURSIVEMATCH), and the hierarchy levels that are no mailbox
//! of their own, which RFC 3501 §6.3.8-9 still wants listed as `\Noselect`:
//! a parent whose mailbox was deleted (LIST), or a level that is not
//! subscribed above a subscribed mailbox the pattern does not reach (LSUB
//! with `%`). Pure: the session turns the result into responses (`op/list.rs`).

use std::collections::HashMap;

use super::names::{self, DELIMITER};
use super::storage::Folder;

/// What a LIST or LSUB selects.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Selection {
    /// LSUB: subscribed mailboxes, unsubscribed levels above them as `\Noselect`.
    pub lsub: bool,
    /// LIST (SUBSCRIBED): subscribed mailboxes only.
    pub subscribed: bool,
    /// LIST (SPECIAL-USE): special-use mailboxes only (RFC 6154).
    pub special_use: bool,
    /// RECURSIVEMATCH: also the names whose descendants are selected, with
    /// CHILDINFO (RFC 5258 §3.5).
    pub recursive: bool,
}

/// One name a LIST or LSUB returns, in the order of the account's folders.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shown<'a> {
    /// The UTF-8 name.
    pub name: String,
    /// Its mailbox; None for a level that has none.
    pub folder: Option<&'a Folder>,
    /// LSUB: a level shown for a subscribed descendant (`\Noselect`).
    pub noselect: bool,
    /// RECURSIVEMATCH: a descendant meets the selection (`CHILDINFO ("SUBSCRIBED")`).
    pub childinfo: bool,
}

/// The proper ancestors of `name`, outermost first (`a`, `a/b` for `a/b/c`).
fn ancestors(name: &str) -> impl Iterator<Item = &str> {
    name.char_indices()
        .filter(|&(_, c)| c == DELIMITER)
        .map(move |(i, _)| &name[..i])
}

fn is_descendant(name: &str, of: &str) -> bool {
    name.len() > of.len() && name.starts_with(of) && name[of.len()..].starts_with(DELIMITER)
}

/// The names `patterns` (canonical: reference already prepended) select
/// among `folders`.
pub fn select<'a>(folders: &'a [Folder], patterns: &[String], sel: Selection) -> Vec<Shown<'a>> {
    let matches = |name: &str| patterns.iter().any(|p| names::matches(p, name));
    let by_name: HashMap<&str, &Folder> = folders.iter().map(|f| (f.name.as_str(), f)).collect();
    // Every level in folder order, a missing ancestor just before its first descendant.
    let mut levels: Vec<(&str, Option<&Folder>)> = Vec::with_capacity(folders.len());
    let mut seen = std::collections::HashSet::new();
    for f in folders {
        for a in ancestors(&f.name) {
            if !by_name.contains_key(a) && seen.insert(a) {
                levels.push((a, None));
            }
        }
        if seen.insert(f.name.as_str()) {
            levels.push((f.name.as_str(), Some(f)));
        }
    }
    // What the selection options keep (LSUB: subscribed mailboxes).
    let filtered = sel.lsub || sel.subscribed || sel.special_use;
    let passes = |f: &Folder| {
        (!(sel.lsub || sel.subscribed) || f.subscribed)
            && (!sel.special_use || f.special_use.is_some())
    };
    let descendants = |name: &'a str| {
        folders
            .iter()
            .filter(move |f| passes(f) && is_descendant(&f.name, name))
    };
    let mut out = Vec::new();
    for (name, folder) in levels {
        if !matches(name) {
            continue;
        }
        let selected = folder.is_some_and(passes);
        // A level shown for a selected descendant the pattern does not reach
        // (RFC 3501 §6.3.9 for LSUB, RFC 5258 §3 for RECURSIVEMATCH).
        let for_descendant = (sel.lsub || sel.recursive)
            && !selected
            && descendants(name).any(|d| !matches(&d.name));
        let shown = if filtered {
            selected || for_descendant
        } else {
            true
        };
        if !shown {
            continue;
        }
        out.push(Shown {
            name: name.to_string(),
            folder,
            noselect: sel.lsub && !selected,
            childinfo: sel.recursive && sel.subscribed && descendants(name).next().is_some(),
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn folder(name: &str, subscribed: bool, special_use: Option<&str>) -> Folder {
        Folder {
            id: 0,
            account_id: 1,
            name: name.to_string(),
            special_use: special_use.map(str::to_string),
            subscribed,
            uidvalidity: 1,
            uidnext: 1,
            highestmodseq: 1,
        }
    }

    fn shown(folders: &[Folder], pattern: &str, sel: Selection) -> Vec<String> {
        select(folders, &[pattern.to_string()], sel)
            .into_iter()
            .map(|s| {
                let mut t = s.name.clone();
                if s.folder.is_none() {
                    t.push_str(" (none)");
                }
                if s.noselect {
                    t.push_str(" \\Noselect");
                }
                if s.childinfo {
                    t.push_str(" CHILDINFO");
                }
                t
            })
            .collect()
    }

    /// The mailboxes of Dovecot's comparison: p1 and p1/c1 not subscribed,
    /// p1/c1/g1, p2 and p2/c2 subscribed.
    fn tree() -> Vec<Folder> {
        vec![
            folder("INBOX", true, None),
            folder("Sent", true, Some("\\Sent")),
            folder("p1", false, None),
            folder("p1/c1", false, None),
            folder("p1/c1/g1", true, None),
            folder("p2", true, None),
            folder("p2/c2", true, None),
        ]
    }

    #[test]
    fn lsub_levels_above_subscribed_mailboxes_are_noselect() {
        let lsub = Selection {
            lsub: true,
            ..Selection::default()
        };
        let t = tree();
        assert_eq!(shown(&t, "p1/%", lsub), ["p1/c1 \\Noselect"]);
        assert_eq!(shown(&t, "p%", lsub), ["p1 \\Noselect", "p2"]);
        assert_eq!(shown(&t, "p1/*", lsub), ["p1/c1/g1"]);
        assert_eq!(shown(&t, "%/%", lsub), ["p1/c1 \\Noselect", "p2/c2"]);
        assert_eq!(shown(&t, "p1/c1/%", lsub), ["p1/c1/g1"]);
        // Never a name with nothing subscribed at or below it.
        assert!(shown(&t, "*", lsub).iter().all(|n| !n.starts_with("p1 ")));
    }

    #[test]
    fn list_shows_levels_without_mailbox() {
        let t: Vec<Folder> = tree().into_iter().filter(|f| f.name != "p1").collect();
        let plain = Selection::default();
        assert_eq!(shown(&t, "p%", plain), ["p1 (none)", "p2"]);
        assert_eq!(shown(&t, "p1*", plain), ["p1 (none)", "p1/c1", "p1/c1/g1"]);
        assert_eq!(shown(&t, "p1/%", plain), ["p1/c1"]);
    }

    #[test]
    fn subscribed_selection_and_recursivematch() {
        let t = tree();
        let subscribed = Selection {
            subscribed: true,
            ..Selection::default()
        };
        assert_eq!(shown(&t, "p%", subscribed), ["p2"]);
        let recursive = Selection {
            subscribed: true,
            recursive: true,
            ..Selection::default()
        };
        assert_eq!(shown(&t, "p%", recursive), ["p1 CHILDINFO", "p2 CHILDINFO"]);
        assert_eq!(shown(&t, "p1/%", recursive), ["p1/c1 CHILDINFO"]);
        assert_eq!(
            shown(&t, "p*", recursive),
            ["p1/c1/g1", "p2 CHILDINFO", "p2/c2"]
        );
    }

    #[test]
    fn several_patterns_and_special_use() {
        let t = tree();
        let pats = ["p1".to_string(), "p1".to_string(), "p2*".to_string()];
        let names: Vec<String> = select(&t, &pats, Selection::default())
            .into_iter()
            .map(|s| s.name)
            .collect();
        assert_eq!(names, ["p1", "p2", "p2/c2"]);
        let special = Selection {
            special_use: true,
            ..Selection::default()
        };
        assert_eq!(shown(&t, "*", special), ["Sent"]);
    }
}
