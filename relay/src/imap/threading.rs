//! The THREAD algorithms of RFC 5256 §3: ORDEREDSUBJECT and REFERENCES (Jamie Zawinski's
//! algorithm with the RFC's subject merge and sorting), on plain data — no I/O, no IMAP
//! types — so they are tested on their own.
//!
//! The tree is an arena of [`Node`]s indexed by position: no recursion while building or
//! sorting, so a hostile mailbox (a reply chain of 100,000 messages) cannot overflow a
//! stack. Loops are refused with a walk up the parent links, bounded by the number of
//! containers. Where RFC 5256 leaves a choice, Dovecot's is taken (imaptest's `thread*`
//! groups): a message that names its parent unlinks itself from a parent presumed from
//! another message's References even when the new link would make a loop.

use std::collections::HashMap;
use std::time::Instant;

/// Parent links followed when checking a new link for a loop; a deeper ancestry is
/// treated as a loop (the link is not made), so a 100,000-message reply chain costs
/// linear time, not quadratic.
const MAX_ANCESTRY: usize = 4096;

/// References of one message that are linked (the last ones); a header listing a million
/// ids must not cost a million links.
const MAX_REFERENCES: usize = 256;

/// What threading needs to know about one message.
#[derive(Debug, Clone, Default)]
pub struct Msg {
    /// The number answered to the client (sequence number or UID).
    pub id: u32,
    /// Sent date (the Date header, else INTERNALDATE), ms since the epoch.
    pub date: i64,
    /// `Message-ID`, without the angle brackets.
    pub message_id: Option<String>,
    /// `References` (else the first `In-Reply-To` id), oldest first.
    pub references: Vec<String>,
    /// Base subject (RFC 5256 §2.1), case-mapped.
    pub base_subject: String,
    /// Whether the subject was that of a reply or forward.
    pub reply: bool,
}

/// A container: a message, or a dummy standing for one that is not in the mailbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    /// Index into the messages, `None` for a dummy.
    pub msg: Option<usize>,
    /// Children, sorted.
    pub children: Vec<usize>,
    parent: Option<usize>,
}

/// A forest: the arena and its roots, both sorted by sent date (then by id).
#[derive(Debug, Clone, Default)]
pub struct Forest {
    /// All containers; unreachable ones are left in place.
    pub nodes: Vec<Node>,
    /// The threads.
    pub roots: Vec<usize>,
}

impl Forest {
    fn node(&mut self, msg: Option<usize>) -> usize {
        self.nodes.push(Node {
            msg,
            children: Vec::new(),
            parent: None,
        });
        self.nodes.len() - 1
    }

    fn unlink(&mut self, child: usize) {
        if let Some(p) = self.nodes[child].parent.take() {
            self.nodes[p].children.retain(|&c| c != child);
        }
    }

    fn link(&mut self, parent: usize, child: usize) {
        self.unlink(child);
        self.nodes[child].parent = Some(parent);
        self.nodes[parent].children.push(child);
    }

    /// Whether `a` is `b` or one of its ancestors.
    fn is_ancestor(&self, a: usize, b: usize) -> bool {
        let mut cur = Some(b);
        let mut steps = 0;
        while let Some(c) = cur {
            if c == a {
                return true;
            }
            steps += 1;
            if steps > MAX_ANCESTRY {
                return true; // too deep (or a loop already): refuse
            }
            cur = self.nodes[c].parent;
        }
        false
    }

    /// The messages of the forest in depth-first order, with their depth (for tests).
    #[must_use]
    pub fn walk(&self) -> Vec<(usize, Option<usize>)> {
        let mut out = Vec::new();
        let mut stack: Vec<(usize, usize)> = self.roots.iter().rev().map(|&r| (r, 0)).collect();
        while let Some((n, depth)) = stack.pop() {
            out.push((depth, self.nodes[n].msg));
            stack.extend(self.nodes[n].children.iter().rev().map(|&c| (c, depth + 1)));
        }
        out
    }
}

/// Sort key of a node: its message's (date, id), or for a dummy its first child's.
fn key(forest: &Forest, msgs: &[Msg], n: usize) -> (i64, u32) {
    let mut cur = n;
    loop {
        let node = &forest.nodes[cur];
        if let Some(m) = node.msg {
            return (msgs[m].date, msgs[m].id);
        }
        match node.children.first() {
            Some(&c) => cur = c,
            None => return (i64::MIN, 0),
        }
    }
}

/// Sorts every child list and the roots by sent date, then id (RFC 5256 step 6), children
/// before parents (a dummy takes its first child's date).
fn sort_all(forest: &mut Forest, msgs: &[Msg]) {
    // Post-order without recursion: sort a node's children after theirs.
    let mut order = Vec::with_capacity(forest.nodes.len());
    let mut stack: Vec<usize> = forest.roots.clone();
    while let Some(n) = stack.pop() {
        order.push(n);
        stack.extend(forest.nodes[n].children.iter().copied());
    }
    for &n in order.iter().rev() {
        let mut children = std::mem::take(&mut forest.nodes[n].children);
        children.sort_by_key(|&c| key(forest, msgs, c));
        forest.nodes[n].children = children;
    }
    let mut roots = std::mem::take(&mut forest.roots);
    roots.sort_by_key(|&r| key(forest, msgs, r));
    forest.roots = roots;
}

/// ORDEREDSUBJECT (RFC 5256 §3): messages grouped by base subject; in each group the first
/// by sent date is the parent of the others; the groups sorted by their first message.
#[must_use]
pub fn ordered_subject(msgs: &[Msg]) -> Forest {
    let mut order: Vec<usize> = (0..msgs.len()).collect();
    order.sort_by(|&a, &b| {
        (&msgs[a].base_subject, msgs[a].date, msgs[a].id).cmp(&(
            &msgs[b].base_subject,
            msgs[b].date,
            msgs[b].id,
        ))
    });
    let mut forest = Forest::default();
    let mut current: Option<(usize, &str)> = None;
    for m in order {
        let n = forest.node(Some(m));
        match current {
            Some((root, subject)) if subject == msgs[m].base_subject => forest.link(root, n),
            _ => {
                forest.roots.push(n);
                current = Some((n, &msgs[m].base_subject));
            }
        }
    }
    sort_all(&mut forest, msgs);
    forest
}

/// REFERENCES (RFC 5256 §3, steps 1–6); `None` when past `deadline` (checked per
/// message: an attacker's References can make one step cost more than another's).
#[must_use]
pub fn references(msgs: &[Msg], deadline: Instant) -> Option<Forest> {
    let mut forest = Forest::default();
    let mut by_id: HashMap<&str, usize> = HashMap::new();
    // Step 1.
    for (i, m) in msgs.iter().enumerate() {
        if Instant::now() > deadline {
            return None;
        }
        // 1.A: this message's container; a duplicate or missing Message-ID gets its own.
        let this = match m.message_id.as_deref() {
            Some(id) => match by_id.get(id) {
                Some(&n) if forest.nodes[n].msg.is_none() => {
                    forest.nodes[n].msg = Some(i);
                    n
                }
                Some(_) => forest.node(Some(i)),
                None => {
                    let n = forest.node(Some(i));
                    by_id.insert(id, n);
                    n
                }
            },
            None => forest.node(Some(i)),
        };
        // 1.B: link the References in order, where nothing is linked yet and no loop.
        let mut prev: Option<usize> = None;
        // The last MAX_REFERENCES only: the parent is the last one.
        let skip = m.references.len().saturating_sub(MAX_REFERENCES);
        for r in &m.references[skip..] {
            let n = *by_id.entry(r.as_str()).or_insert_with(|| {
                forest.nodes.push(Node {
                    msg: None,
                    children: Vec::new(),
                    parent: None,
                });
                forest.nodes.len() - 1
            });
            if let Some(p) = prev
                && forest.nodes[n].parent.is_none()
                && !forest.is_ancestor(n, p)
            {
                forest.link(p, n);
            }
            prev = Some(n);
        }
        // 1.C: the last reference is the parent; an old presumed parent is dropped.
        forest.unlink(this);
        if let Some(p) = prev
            && !forest.is_ancestor(this, p)
        {
            forest.link(p, this);
        }
    }
    // Step 2: the roots.
    let roots: Vec<usize> = (0..forest.nodes.len())
        .filter(|&n| forest.nodes[n].parent.is_none())
        .collect();
    // Step 4: prune dummies (children before parents, without recursion).
    let mut order = Vec::new();
    let mut stack = roots.clone();
    while let Some(n) = stack.pop() {
        order.push(n);
        stack.extend(forest.nodes[n].children.iter().copied());
    }
    for &n in order.iter().rev() {
        let children = std::mem::take(&mut forest.nodes[n].children);
        let mut kept = Vec::with_capacity(children.len());
        for c in children {
            if forest.nodes[c].msg.is_none() {
                // A dummy below the root: its children take its place (none: it goes).
                let grand = std::mem::take(&mut forest.nodes[c].children);
                for &g in &grand {
                    forest.nodes[g].parent = Some(n);
                }
                kept.extend(grand);
            } else {
                kept.push(c);
            }
        }
        forest.nodes[n].children = kept;
    }
    // At the root: a dummy with no children goes, with one child is replaced by it.
    let mut top = Vec::new();
    for r in roots {
        if forest.nodes[r].msg.is_some() {
            top.push(r);
            continue;
        }
        match forest.nodes[r].children.len() {
            0 => {}
            1 => {
                let c = forest.nodes[r].children[0];
                forest.nodes[r].children.clear();
                forest.nodes[c].parent = None;
                top.push(c);
            }
            _ => top.push(r),
        }
    }
    forest.roots = top;
    // Step 5 needs a dummy's first child: sort first (step 6 sorts again at the end).
    sort_all(&mut forest, msgs);
    merge_subjects(&mut forest, msgs);
    sort_all(&mut forest, msgs);
    Some(forest)
}

/// The subject of a thread: its message's, or a dummy's first child's.
fn thread_subject<'m>(forest: &Forest, msgs: &'m [Msg], root: usize) -> Option<&'m Msg> {
    let node = &forest.nodes[root];
    let m = match node.msg {
        Some(m) => m,
        None => forest.nodes[*node.children.first()?].msg?,
    };
    Some(&msgs[m])
}

/// Step 5: threads whose roots share a base subject are gathered.
fn merge_subjects(forest: &mut Forest, msgs: &[Msg]) {
    // 5.B: the container standing for each subject.
    let mut table: HashMap<&str, usize> = HashMap::new();
    for &r in &forest.roots {
        let Some(m) = thread_subject(forest, msgs, r) else {
            continue;
        };
        if m.base_subject.is_empty() {
            continue;
        }
        match table.get(m.base_subject.as_str()) {
            None => {
                table.insert(&m.base_subject, r);
            }
            Some(&old) => {
                let old_dummy = forest.nodes[old].msg.is_none();
                let old_reply = thread_subject(forest, msgs, old).is_some_and(|o| o.reply);
                let this_dummy = forest.nodes[r].msg.is_none();
                if (this_dummy && !old_dummy) || (!old_dummy && old_reply && !m.reply) {
                    table.insert(&m.base_subject, r);
                }
            }
        }
    }
    // 5.C: merge each root into its subject's container (which may have been wrapped in
    // a dummy meanwhile: `current` follows that).
    let roots = std::mem::take(&mut forest.roots);
    let mut current: HashMap<usize, usize> = HashMap::new();
    let mut dummies = Vec::new();
    for &r in &roots {
        if forest.nodes[r].parent.is_some() {
            continue; // merged under another root already
        }
        let Some(m) = thread_subject(forest, msgs, r) else {
            continue;
        };
        let Some(&first) = table.get(m.base_subject.as_str()) else {
            continue;
        };
        let target = current.get(&first).copied().unwrap_or(first);
        if target == r {
            continue;
        }
        let target_dummy = forest.nodes[target].msg.is_none();
        let this_dummy = forest.nodes[r].msg.is_none();
        let target_reply = forest.nodes[target].msg.is_some_and(|t| msgs[t].reply);
        if target_dummy && this_dummy {
            for c in std::mem::take(&mut forest.nodes[r].children) {
                forest.nodes[c].parent = None;
                forest.link(target, c);
            }
        } else if target_dummy || (m.reply && !target_reply && !this_dummy) {
            forest.link(target, r);
        } else if this_dummy {
            forest.link(r, target);
            current.insert(first, r);
        } else {
            let dummy = forest.node(None);
            forest.link(dummy, target);
            forest.link(dummy, r);
            current.insert(first, dummy);
            dummies.push(dummy);
        }
    }
    forest.roots = roots
        .into_iter()
        .chain(dummies)
        .filter(|&n| {
            let node = &forest.nodes[n];
            node.parent.is_none() && (node.msg.is_some() || !node.children.is_empty())
        })
        .collect();
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn msg(id: u32, date: i64, mid: &str, refs: &[&str], subject: &str) -> Msg {
        let (base_subject, reply) = crate::imap::base_subject::base_subject(subject);
        Msg {
            id,
            date,
            message_id: (!mid.is_empty()).then(|| mid.to_owned()),
            references: refs.iter().map(|r| (*r).to_owned()).collect(),
            base_subject,
            reply,
        }
    }

    fn far() -> Instant {
        Instant::now() + std::time::Duration::from_secs(3600)
    }

    /// The forest in RFC 5256's THREAD notation.
    fn notation(f: &Forest, msgs: &[Msg]) -> String {
        fn one(f: &Forest, msgs: &[Msg], n: usize, out: &mut String, top: bool) {
            let node = &f.nodes[n];
            if top {
                out.push('(');
            }
            match node.msg {
                Some(m) => {
                    out.push_str(&msgs[m].id.to_string());
                    match node.children.len() {
                        0 => {}
                        1 => {
                            out.push(' ');
                            one(f, msgs, node.children[0], out, false);
                        }
                        _ => {
                            out.push(' ');
                            for &c in &node.children {
                                out.push('(');
                                one(f, msgs, c, out, false);
                                out.push(')');
                            }
                        }
                    }
                }
                None => {
                    for &c in &node.children {
                        out.push('(');
                        one(f, msgs, c, out, false);
                        out.push(')');
                    }
                }
            }
            if top {
                out.push(')');
            }
        }
        let mut out = String::new();
        for &r in &f.roots {
            one(f, msgs, r, &mut out, true);
        }
        out
    }

    #[test]
    fn references_as_imaptest_thread() {
        // imaptest `thread`: b names c as its parent, c names b: c wins, a stands alone.
        let msgs = vec![
            msg(1, 17, "a@b", &[], ""),
            msg(2, 15, "b@b", &["a@b", "c@b"], ""),
            msg(3, 16, "c@b", &["b@b"], ""),
        ];
        assert_eq!(
            notation(&references(&msgs, far()).expect("in time"), &msgs),
            "(3 2)(1)"
        );
        let msgs = vec![
            msg(1, 15, "b@b", &["a@b", "c@b"], ""),
            msg(2, 16, "c@b", &["b@b"], ""),
        ];
        assert_eq!(
            notation(&references(&msgs, far()).expect("in time"), &msgs),
            "(2 1)"
        );
    }

    #[test]
    fn references_rfc_shapes() {
        let msgs = vec![
            msg(1, 1, "1", &[], "Plan"),
            msg(2, 2, "2", &["1"], "Re: Plan"),
            msg(3, 3, "3", &["1"], "Re: Plan"),
            msg(4, 4, "4", &["1", "2"], "Re: Plan"),
            msg(5, 5, "5", &["x"], "Other"),
            msg(6, 6, "6", &["x"], "Other"),
            msg(7, 7, "7", &[], "Re: Lonely"),
            msg(8, 8, "8", &[], "Lonely"),
        ];
        // 5 and 6 share a missing parent (a dummy root); 7 and 8 share a subject, neither
        // a reply of the other's thread: 8 is not a reply, 7 is, so 7 goes under 8? No:
        // 7 came first and is a reply; 8 takes the table (not a reply) and 7 joins it.
        assert_eq!(
            notation(&references(&msgs, far()).expect("in time"), &msgs),
            "(1 (2 4)(3))((5)(6))(8 7)"
        );
    }

    #[test]
    fn ordered_subject_groups_by_base_subject() {
        let msgs = vec![
            msg(1, 3, "", &[], "b"),
            msg(2, 1, "", &[], "a"),
            msg(3, 2, "", &[], "Re: b"),
            msg(4, 4, "", &[], "Re: a"),
            msg(5, 5, "", &[], "Fwd: a"),
            msg(6, 0, "", &[], "c"),
        ];
        assert_eq!(
            notation(&ordered_subject(&msgs), &msgs),
            "(6)(2 (4)(5))(3 1)"
        );
    }

    /// A long reply chain whose References list every ancestor: linear, in order, and a
    /// deadline already past is honoured.
    #[test]
    fn long_chains_are_cheap_and_bounded() {
        let n = 6000u32;
        let msgs: Vec<Msg> = (1..=n)
            .map(|i| Msg {
                id: i,
                date: i64::from(i),
                message_id: Some(i.to_string()),
                references: (1..i).map(|r| r.to_string()).collect(),
                ..Msg::default()
            })
            .collect();
        let started = Instant::now();
        let forest = references(&msgs, far()).expect("in time");
        assert!(started.elapsed() < std::time::Duration::from_secs(20));
        // Deeper than MAX_ANCESTRY: the chain is cut there, nothing is lost.
        assert_eq!(forest.walk().len(), msgs.len());
        assert_eq!(forest.roots.len(), 2);
        assert!(references(&msgs, Instant::now()).is_none());
    }

    fn arb_msgs() -> impl Strategy<Value = Vec<Msg>> {
        prop::collection::vec(
            (
                0i64..20,
                prop::option::of(0u8..12),
                prop::collection::vec(0u8..12, 0..4),
                prop::sample::select(vec!["a", "Re: a", "b", "Fwd: b", "", "c"]),
            ),
            0..30,
        )
        .prop_map(|v| {
            v.into_iter()
                .enumerate()
                .map(|(i, (date, mid, refs, subject))| {
                    let (base_subject, reply) = crate::imap::base_subject::base_subject(subject);
                    Msg {
                        id: u32::try_from(i).expect("small") + 1,
                        date,
                        message_id: mid.map(|m| m.to_string()),
                        references: refs.into_iter().map(|r| r.to_string()).collect(),
                        base_subject,
                        reply,
                    }
                })
                .collect()
        })
    }

    proptest! {
        /// Every message appears exactly once, whatever the References say (loops,
        /// duplicates, self-references), and siblings are in (date, id) order.
        #[test]
        fn every_message_once(msgs in arb_msgs()) {
            for forest in [references(&msgs, far()).expect("in time"), ordered_subject(&msgs)] {
                let mut seen: Vec<usize> =
                    forest.walk().into_iter().filter_map(|(_, m)| m).collect();
                seen.sort_unstable();
                prop_assert_eq!(seen, (0..msgs.len()).collect::<Vec<_>>());
                for n in forest.roots.iter().chain(forest.nodes.iter().flat_map(|n| n.children.iter())) {
                    let node = &forest.nodes[*n];
                    prop_assert!(node.msg.is_some() || !node.children.is_empty());
                }
                let keys: Vec<_> = forest.roots.iter().map(|&r| key(&forest, &msgs, r)).collect();
                prop_assert!(keys.windows(2).all(|w| w[0] <= w[1]));
            }
        }
    }
}
