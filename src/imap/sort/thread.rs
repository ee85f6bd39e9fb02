//! THREAD=ORDEREDSUBJECT (RFC 5256 §3) and THREAD=REFERENCES (§4), sans-IO:
//! messages in, threads out, written as the THREAD response writes them.
//!
//! REFERENCES follows the RFC's steps, as Dovecot 2.3 does: a message keeps
//! the first parent a References chain gave it, a link that would make a
//! loop is not made, a duplicate Message-ID counts as none, dummies (ids
//! referenced but not there) are pruned, top-level threads with the same base
//! subject are merged, and every set of siblings is sorted by sent date, ties
//! in mailbox order. Nothing here recurses: a reply chain of any length is
//! walked with explicit stacks.

use std::collections::HashMap;

use super::facts::Ids;

/// One message to thread (given in mailbox order).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Message {
    /// What the response names it by: sequence number or UID.
    pub number: u32,
    /// Sent date, Unix seconds (RFC 5256 §2.2).
    pub date: i64,
    /// Base subject, through [`super::casemap`].
    pub subject: String,
    /// The subject was a reply or forward.
    pub reply: bool,
    /// Its Message-ID and references.
    pub ids: Ids,
}

/// A forest of messages and dummies (ids referenced by messages not there).
#[derive(Debug, Default)]
pub struct Threads {
    nodes: Vec<Node>,
    roots: Vec<usize>,
}

#[derive(Debug, Default, Clone)]
struct Node {
    /// Index of the message; None for a dummy.
    message: Option<usize>,
    parent: Option<usize>,
    children: Vec<usize>,
}

/// THREAD=ORDEREDSUBJECT: one thread per base subject, its earliest message
/// first with all the others as its children; threads by their first date.
pub fn ordered_subject(msgs: &[Message]) -> Threads {
    let mut sorted: Vec<usize> = (0..msgs.len()).collect();
    sorted.sort_by(|&a, &b| {
        (msgs[a].subject.as_str(), msgs[a].date, a).cmp(&(
            msgs[b].subject.as_str(),
            msgs[b].date,
            b,
        ))
    });
    let mut t = Threads::default();
    for group in sorted.chunk_by(|&a, &b| msgs[a].subject == msgs[b].subject) {
        let root = t.push(Some(group[0]));
        for &m in &group[1..] {
            let child = t.push(Some(m));
            t.nodes[root].children.push(child);
        }
        t.roots.push(root);
    }
    let mut roots = std::mem::take(&mut t.roots);
    roots.sort_by_key(|&r| t.key(r, msgs));
    t.roots = roots;
    t
}

/// THREAD=REFERENCES (RFC 5256 §4).
pub fn references(msgs: &[Message]) -> Threads {
    let mut t = Threads::default();
    // Step 1: link messages and the ids they reference.
    let mut by_id: HashMap<&[u8], usize> = HashMap::new();
    for (i, m) in msgs.iter().enumerate() {
        let own = match m.ids.message_id.as_deref() {
            Some(id) => match by_id.get(id) {
                Some(&n) if t.nodes[n].message.is_none() => {
                    t.nodes[n].message = Some(i);
                    n
                }
                // A duplicate: this message gets an id of its own.
                Some(_) => t.push(Some(i)),
                None => {
                    let n = t.push(Some(i));
                    by_id.insert(id, n);
                    n
                }
            },
            None => t.push(Some(i)),
        };
        let mut parent = None;
        for id in &m.ids.references {
            let n = match by_id.get(id.as_slice()) {
                Some(&n) => n,
                None => {
                    let n = t.push(None);
                    by_id.insert(id, n);
                    n
                }
            };
            if let Some(p) = parent {
                t.link(p, n);
            }
            parent = Some(n);
        }
        // The last reference is the parent: a different one is dropped.
        if t.nodes[own].parent != parent {
            t.nodes[own].parent = None;
        }
        if let Some(p) = parent {
            t.link(p, own);
        }
    }
    for n in 0..t.nodes.len() {
        match t.nodes[n].parent {
            Some(p) => t.nodes[p].children.push(n),
            None => t.roots.push(n),
        }
    }
    // Step 3: prune dummies, children before parents.
    for n in t.post_order() {
        let children = std::mem::take(&mut t.nodes[n].children);
        t.nodes[n].children = t.pruned(&children, false);
    }
    let roots = std::mem::take(&mut t.roots);
    t.roots = t.pruned(&roots, true);
    // Step 4: top-level siblings by date (a dummy by its first child's).
    for r in t.roots.clone() {
        if t.nodes[r].message.is_none() {
            t.sort_children(r, msgs);
        }
    }
    let mut roots = std::mem::take(&mut t.roots);
    roots.sort_by_key(|&r| t.key(r, msgs));
    t.roots = roots;
    // Step 5: merge top-level threads with the same base subject.
    t.merge_subjects(msgs);
    // Step 6: every set of siblings by date, the deepest first.
    for n in t.post_order() {
        t.sort_children(n, msgs);
    }
    let mut roots = std::mem::take(&mut t.roots);
    roots.sort_by_key(|&r| t.key(r, msgs));
    t.roots = roots;
    t
}

impl Threads {
    fn push(&mut self, message: Option<usize>) -> usize {
        self.nodes.push(Node {
            message,
            ..Node::default()
        });
        self.nodes.len() - 1
    }

    /// True when `ancestor` is `node` or above it.
    fn has_ancestor(&self, mut node: usize, ancestor: usize) -> bool {
        loop {
            if node == ancestor {
                return true;
            }
            match self.nodes[node].parent {
                Some(p) => node = p,
                None => return false,
            }
        }
    }

    /// Makes `parent` the parent of `child` unless that makes a loop or
    /// `child` already has one (RFC 5256 §4 step 1.A).
    fn link(&mut self, parent: usize, child: usize) {
        if self.has_ancestor(parent, child) {
            return;
        }
        if self.nodes[child].parent.is_none() {
            self.nodes[child].parent = Some(parent);
        }
    }

    /// Every node under the roots, each after all its descendants.
    fn post_order(&self) -> Vec<usize> {
        let mut out = Vec::with_capacity(self.nodes.len());
        let mut stack: Vec<(usize, bool)> = self.roots.iter().map(|&r| (r, false)).collect();
        while let Some((n, expanded)) = stack.pop() {
            if expanded {
                out.push(n);
            } else {
                stack.push((n, true));
                stack.extend(self.nodes[n].children.iter().map(|&c| (c, false)));
            }
        }
        out
    }

    /// One level of siblings with dummies pruned (step 3): an empty dummy
    /// goes, a dummy's children take its place, except at the top level,
    /// where a dummy of several children stays.
    fn pruned(&self, level: &[usize], top: bool) -> Vec<usize> {
        let mut out = Vec::with_capacity(level.len());
        for &c in level {
            let node = &self.nodes[c];
            if node.message.is_some() || (top && node.children.len() > 1) {
                out.push(c);
            } else {
                out.extend_from_slice(&node.children);
            }
        }
        out
    }

    /// The message that stands for `n`: itself, or a dummy's first child's.
    fn first_message(&self, mut n: usize) -> Option<usize> {
        loop {
            match self.nodes[n].message {
                Some(m) => return Some(m),
                None => n = *self.nodes[n].children.first()?,
            }
        }
    }

    /// Sort key of a node: sent date, then mailbox order.
    fn key(&self, n: usize, msgs: &[Message]) -> (i64, usize) {
        self.first_message(n)
            .map_or((i64::MAX, usize::MAX), |m| (msgs[m].date, m))
    }

    fn sort_children(&mut self, n: usize, msgs: &[Message]) {
        let mut children = std::mem::take(&mut self.nodes[n].children);
        children.sort_by_key(|&c| self.key(c, msgs));
        self.nodes[n].children = children;
    }

    /// Step 5 (RFC 5256 §4): one thread per non-empty base subject at the top.
    fn merge_subjects(&mut self, msgs: &[Message]) {
        let subject = |t: &Threads, n: usize| {
            t.first_message(n)
                .map(|m| msgs[m].subject.as_str())
                .unwrap_or_default()
        };
        let is_dummy = |t: &Threads, n: usize| t.nodes[n].message.is_none();
        let is_reply = |t: &Threads, n: usize| t.nodes[n].message.is_some_and(|m| msgs[m].reply);
        let mut table: HashMap<&str, usize> = HashMap::new();
        for &r in &self.roots {
            let s = subject(self, r);
            if s.is_empty() {
                continue;
            }
            match table.get(s) {
                None => {
                    table.insert(s, r);
                }
                Some(&old) => {
                    if !is_dummy(self, old)
                        && (is_dummy(self, r) || (is_reply(self, old) && !is_reply(self, r)))
                    {
                        table.insert(s, r);
                    }
                }
            }
        }
        let mut roots = self.roots.clone();
        let mut removed = vec![false; self.nodes.len()];
        for r in self.roots.clone() {
            let s = subject(self, r);
            let Some(&old) = table.get(s) else { continue };
            if old == r {
                continue;
            }
            removed.resize(self.nodes.len() + 1, false);
            removed[r] = true;
            if is_dummy(self, old) && is_dummy(self, r) {
                let children = std::mem::take(&mut self.nodes[r].children);
                self.nodes[old].children.extend(children);
            } else if is_dummy(self, old) || (is_reply(self, r) && !is_reply(self, old)) {
                self.nodes[old].children.push(r);
            } else {
                let dummy = self.push(None);
                self.nodes[dummy].children = vec![old, r];
                if let Some(slot) = roots.iter_mut().find(|x| **x == old) {
                    *slot = dummy;
                }
                table.insert(s, dummy);
            }
        }
        roots.retain(|&r| !removed.get(r).copied().unwrap_or(false));
        self.roots = roots;
    }

    /// The threads as the THREAD response lists them (RFC 5256 §4):
    /// `(1 2 (3)(4))(5)`, numbers from `msgs`.
    pub fn write(&self, msgs: &[Message]) -> String {
        enum Task {
            Open(usize),
            Close,
        }
        let mut out = String::new();
        let mut stack: Vec<Task> = self.roots.iter().rev().map(|&r| Task::Open(r)).collect();
        while let Some(task) = stack.pop() {
            let Task::Open(mut n) = task else {
                out.push(')');
                continue;
            };
            out.push('(');
            let mut wrote = false;
            // A message with one child that is a message: one list, `1 2 3`.
            while let Some(m) = self.nodes[n].message {
                if wrote {
                    out.push(' ');
                }
                out.push_str(&msgs[m].number.to_string());
                wrote = true;
                match self.nodes[n].children.as_slice() {
                    [only] if self.nodes[*only].message.is_some() => n = *only,
                    _ => break,
                }
            }
            let children = &self.nodes[n].children;
            if children.is_empty() {
                out.push(')');
                continue;
            }
            if wrote {
                out.push(' ');
            }
            stack.push(Task::Close);
            stack.extend(children.iter().rev().map(|&c| Task::Open(c)));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (number, date, base subject, reply, message-id, references)
    type Spec<'a> = (u32, i64, &'a str, bool, Option<&'a str>, &'a [&'a str]);

    fn msgs(specs: &[Spec<'_>]) -> Vec<Message> {
        specs
            .iter()
            .map(|&(number, date, subject, reply, id, refs)| Message {
                number,
                date,
                subject: subject.into(),
                reply,
                ids: Ids {
                    message_id: id.map(|i| i.as_bytes().to_vec()),
                    references: refs.iter().map(|r| r.as_bytes().to_vec()).collect(),
                },
            })
            .collect()
    }

    fn refs(specs: &[Spec<'_>]) -> String {
        let m = msgs(specs);
        references(&m).write(&m)
    }

    #[test]
    fn chains_branches_and_missing_parents() {
        let specs: &[Spec<'_>] = &[
            (1, 10, "a", false, Some("1"), &[]),
            (2, 20, "a", true, Some("2"), &["1"]),
            (3, 30, "a", true, Some("3"), &["1", "2"]),
            (4, 25, "a", true, Some("4"), &["1"]),
            // Two messages under an id nobody has: a top-level dummy.
            (5, 50, "b", false, Some("5"), &["gone", "gone2"]),
            (6, 40, "b", false, Some("6"), &["gone"]),
            // A missing parent with one child: the child moves up.
            (7, 60, "c", false, Some("7"), &["gone3"]),
        ];
        assert_eq!(refs(specs), "(1 (2 3)(4))((6)(5))(7)");
    }

    #[test]
    fn first_parent_stays_and_loops_are_not_made() {
        let specs: &[Spec<'_>] = &[
            (1, 1, "l", false, Some("a"), &["b"]),
            (2, 2, "m", false, Some("b"), &["a"]),
            // Refers to itself.
            (3, 3, "n", false, Some("c"), &["c"]),
            // Its References put 3 (no parent yet) under 1; c -> b would loop.
            (4, 4, "o", false, Some("d"), &["a", "c", "b"]),
        ];
        assert_eq!(refs(specs), "(2 (1 3)(4))");
        let specs: &[Spec<'_>] = &[
            (1, 1, "x", false, Some("p"), &[]),
            (2, 2, "y", false, Some("q"), &["other"]),
            (3, 3, "z", false, Some("r"), &["p", "q"]),
        ];
        // q already has the dummy "other" for parent: p -> q is not made.
        assert_eq!(refs(specs), "(1)(2 3)");
    }

    #[test]
    fn duplicate_and_missing_ids_stand_alone() {
        let specs: &[Spec<'_>] = &[
            (1, 1, "a", false, Some("x"), &[]),
            (2, 2, "b", false, Some("x"), &[]),
            (3, 3, "c", false, None, &["x"]),
            (4, 4, "d", false, None, &[]),
        ];
        assert_eq!(refs(specs), "(1 3)(2)(4)");
    }

    #[test]
    fn same_subject_threads_are_merged() {
        let specs: &[Spec<'_>] = &[
            (1, 10, "agenda", false, Some("1"), &[]),
            (2, 11, "agenda", true, Some("2"), &["1"]),
            // A forward without references: under 1.
            (3, 30, "agenda", true, Some("3"), &[]),
            // Same subject, not a reply: both under a new dummy.
            (4, 40, "agenda", false, Some("4"), &[]),
            (5, 50, "agenda", true, Some("5"), &["4"]),
            // Empty subjects are never merged.
            (6, 60, "", false, Some("6"), &[]),
            (7, 70, "", false, Some("7"), &[]),
            // Two dummies with one subject become one.
            (8, 80, "budget", false, Some("8"), &["g1"]),
            (9, 81, "budget", false, Some("9"), &["g1"]),
            (10, 82, "budget", false, Some("10"), &["g2"]),
            (11, 83, "budget", false, Some("11"), &["g2"]),
        ];
        assert_eq!(refs(specs), "((1 (2)(3))(4 5))(6)(7)((8)(9)(10)(11))");
        // A reply that comes first still goes under the original.
        let specs: &[Spec<'_>] = &[
            (1, 1, "x", true, Some("1"), &[]),
            (2, 2, "x", false, Some("2"), &[]),
        ];
        assert_eq!(refs(specs), "(2 1)");
    }

    #[test]
    fn siblings_sort_by_date_then_mailbox_order() {
        let specs: &[Spec<'_>] = &[
            (7, 5, "r", false, Some("r"), &[]),
            (8, 9, "s", false, Some("s"), &["r"]),
            (9, 1, "t", false, Some("t"), &["r"]),
            (10, 9, "u", false, Some("u"), &["r"]),
            (11, 0, "v", false, Some("v"), &[]),
        ];
        assert_eq!(refs(specs), "(11)(7 (9)(8)(10))");
    }

    #[test]
    fn ordered_subject_groups_by_base_subject() {
        let m = msgs(&[
            (1, 30, "b", false, None, &[]),
            (2, 10, "a", false, None, &[]),
            (3, 20, "a", true, None, &[]),
            (4, 5, "c", false, None, &[]),
            (5, 15, "b", false, None, &[]),
            (6, 10, "a", false, None, &[]),
            (7, 1, "", false, None, &[]),
            (8, 2, "", false, None, &[]),
        ]);
        assert_eq!(ordered_subject(&m).write(&m), "(7 8)(4)(2 (6)(3))(5 1)");
        assert_eq!(ordered_subject(&[]).write(&[]), "");
        assert_eq!(references(&[]).write(&[]), "");
    }

    #[test]
    fn a_long_chain_is_no_deep_recursion() {
        let n = 10_000u32;
        let m: Vec<Message> = (1..=n)
            .map(|i| Message {
                number: i,
                date: i64::from(i),
                subject: "x".into(),
                reply: i > 1,
                ids: Ids {
                    message_id: Some(i.to_string().into_bytes()),
                    references: if i > 1 {
                        vec![(i - 1).to_string().into_bytes()]
                    } else {
                        vec![]
                    },
                },
            })
            .collect();
        let out = references(&m).write(&m);
        assert!(
            out.starts_with("(1 2 3 ") && out.ends_with(" 10000)"),
            "{}",
            &out[..20]
        );
        // Every message a child of the first: a wide thread.
        let wide: Vec<Message> = m
            .iter()
            .map(|x| Message {
                ids: Ids {
                    references: if x.number > 1 {
                        vec![b"1".to_vec()]
                    } else {
                        vec![]
                    },
                    ..x.ids.clone()
                },
                ..x.clone()
            })
            .collect();
        let out = references(&wide).write(&wide);
        assert!(out.starts_with("(1 (2)(3)") && out.ends_with("(10000))"));
    }
}
