//! LIST, LSUB and STATUS (RFC 3501 §6.3.8–§6.3.10): mailbox names and counts.

#[allow(clippy::wildcard_imports)]
use super::*;
use crate::imap::extended::{ListReturn, ListSelect};

impl Session<'_> {
    pub(super) async fn list(
        &mut self,
        tag: Tag<'static>,
        reference: &str,
        pattern: &str,
        lsub: bool,
    ) -> Status<'static> {
        let user = self.user.as_ref().expect("authenticated");
        let full = format!("{reference}{pattern}");
        let delimiter = imap_next::imap_types::core::QuotedChar::try_from('/').ok();
        if pattern.is_empty() {
            // The hierarchy delimiter query.
            let data = Data::List {
                items: vec![FlagNameAttribute::Noselect],
                delimiter,
                mailbox: ImapMailbox::try_from("").unwrap_or(ImapMailbox::Inbox),
            };
            self.send_data(data);
            return ok(tag, None, "LIST done");
        }
        let mailboxes = match self.ctx.store.mailboxes(user.id).await {
            Ok(m) => m,
            Err(err) => return refused(tag, &err),
        };
        let names: Vec<String> = mailboxes.iter().map(|m| m.name.clone()).collect();
        for (name, m) in &hierarchy(&mailboxes, |m| !lsub || m.subscribed) {
            if !wildcard_match(&full, name) {
                continue;
            }
            let mut items = Vec::new();
            for attr in attributes(&names, name, *m) {
                if let Ok(atom) = imap_next::imap_types::core::Atom::try_from(
                    attr.trim_start_matches('\\').to_owned(),
                ) {
                    items.push(FlagNameAttribute::from(atom));
                }
            }
            let mailbox = to_imap_mailbox(name);
            self.send_data(if lsub {
                Data::Lsub {
                    items,
                    delimiter,
                    mailbox,
                }
            } else {
                Data::List {
                    items,
                    delimiter,
                    mailbox,
                }
            });
        }
        ok(tag, None, if lsub { "LSUB done" } else { "LIST done" })
    }

    /// LIST-EXTENDED (RFC 5258) with LIST-STATUS (RFC 5819): the untagged `LIST` (and
    /// `STATUS`) responses and the tagged status, as bytes — imap-types' LIST response has
    /// no room for `CHILDINFO`.
    pub(super) async fn list_extended(
        &mut self,
        tag: &str,
        select: ListSelect,
        reference: &[u8],
        patterns: &[Vec<u8>],
        ret: &ListReturn,
    ) -> Vec<u8> {
        let user_id = self.user.as_ref().expect("authenticated").id;
        let decode = |raw: &[u8]| {
            let raw = String::from_utf8_lossy(raw).into_owned();
            utf7::decode(&raw).unwrap_or(raw)
        };
        let reference = decode(reference);
        let mut patterns: Vec<String> = patterns
            .iter()
            .map(|p| format!("{reference}{}", decode(p)))
            .collect();
        // Patterns can fill a command of `imap.max_message_bytes` in literals: the same one
        // counts once, and matching stops at `imap.max_command_secs`.
        patterns.sort_unstable();
        patterns.dedup();
        let deadline = tokio::time::Instant::now() + self.ctx.config.imap.max_command;
        let mut out = String::new();
        // `LIST () "" ""` still asks for the delimiter (RFC 5258 §3).
        if patterns.iter().all(String::is_empty) && select == ListSelect::default() {
            out.push_str("* LIST (\\Noselect) \"/\" \"\"\r\n");
            out.push_str(&format!("{tag} OK LIST done\r\n"));
            return out.into_bytes();
        }
        let mailboxes = match self.ctx.store.mailboxes(user_id).await {
            Ok(m) => m,
            Err(err) => {
                tracing::error!(error = %err, "imap: LIST failed");
                return format!("{tag} NO [SERVERBUG] LIST failed\r\n").into_bytes();
            }
        };
        // By name: a subscription outlives its mailbox (`\\NonExistent`).
        let subscriptions = match self.ctx.store.subscriptions(user_id).await {
            Ok(s) => s,
            Err(err) => {
                tracing::error!(error = %err, "imap: LIST failed");
                return format!("{tag} NO [SERVERBUG] LIST failed\r\n").into_bytes();
            }
        };
        let names: Vec<String> = mailboxes.iter().map(|m| m.name.clone()).collect();
        // Which names (mailboxes, the levels above them, subscriptions) match a pattern,
        // worked out once.
        let mut matched: std::collections::HashSet<String> = std::collections::HashSet::new();
        let mut tried = 0usize;
        for (name, _) in hierarchy(&mailboxes, |_| true)
            .into_iter()
            .chain(subscriptions.iter().map(|s| (s.clone(), None)))
            .chain(subscriptions.iter().flat_map(|s| {
                s.match_indices('/')
                    .map(|(i, _)| (s[..i].to_owned(), None))
                    .collect::<Vec<_>>()
            }))
        {
            if matched.contains(&name) {
                continue;
            }
            for p in &patterns {
                tried += 1;
                if tried.is_multiple_of(4096) {
                    if tokio::time::Instant::now() > deadline {
                        return format!(
                            "{tag} NO [LIMIT] LIST took too long (imap.max_command_secs): fewer patterns\r\n"
                        )
                        .into_bytes();
                    }
                    tokio::task::yield_now().await;
                }
                if wildcard_match(p, &name) {
                    matched.insert(name);
                    break;
                }
            }
        }
        let matches = |name: &str| matched.contains(name);
        // What the selection options pick (RFC 5258 §3.1).
        let picked = |name: &str, m: Option<&Mailbox>| {
            (!select.subscribed || subscriptions.iter().any(|s| s == name))
                && (!select.special_use || m.is_some_and(|m| m.special_use.is_some()))
        };
        let mut candidates: Vec<(String, Option<&Mailbox>)> = if select.subscribed {
            let mut c: Vec<(String, Option<&Mailbox>)> = subscriptions
                .iter()
                .map(|s| (s.clone(), mailboxes.iter().find(|m| &m.name == s)))
                .collect();
            c.sort_by(|a, b| a.0.cmp(&b.0));
            c
        } else {
            hierarchy(&mailboxes, |_| true)
        };
        if select.recursive {
            // Levels above a picked mailbox that does not match itself: shown with
            // CHILDINFO when they match (RFC 5258 §3.5).
            for (name, _) in &hierarchy(&mailboxes, |_| true) {
                if !candidates.iter().any(|(c, _)| c == name) {
                    candidates.push((name.clone(), mailboxes.iter().find(|m| &m.name == name)));
                }
            }
            for s in &subscriptions {
                for (i, _) in s.match_indices('/') {
                    let parent = &s[..i];
                    if !candidates.iter().any(|(c, _)| c == parent) {
                        candidates.push((parent.to_owned(), None));
                    }
                }
            }
            candidates.sort_by(|a, b| a.0.cmp(&b.0));
        }
        let wanted: Vec<StatusDataItemName> = ret
            .status
            .iter()
            .flatten()
            .filter_map(|item| match item.as_str() {
                "MESSAGES" => Some(StatusDataItemName::Messages),
                "RECENT" => Some(StatusDataItemName::Recent),
                "UIDNEXT" => Some(StatusDataItemName::UidNext),
                "UIDVALIDITY" => Some(StatusDataItemName::UidValidity),
                "UNSEEN" => Some(StatusDataItemName::Unseen),
                "DELETED" => Some(StatusDataItemName::Deleted),
                "HIGHESTMODSEQ" => Some(StatusDataItemName::HighestModSeq),
                _ => None,
            })
            .collect();
        for (name, m) in &candidates {
            if !matches(name) {
                continue;
            }
            let is_picked = picked(name, *m);
            let childinfo = select.recursive
                && select.subscribed
                && subscriptions
                    .iter()
                    .any(|s| s.starts_with(&format!("{name}/")) && !matches(s));
            if !is_picked && !childinfo {
                continue;
            }
            let mut attrs: Vec<&str> = Vec::new();
            if m.is_none() && !names.iter().any(|n| n.starts_with(&format!("{name}/"))) {
                attrs.push("\\NonExistent");
            } else {
                attrs.extend(attributes(&names, name, *m));
            }
            let subscribed = subscriptions.iter().any(|s| s == name);
            if subscribed && (select.subscribed || ret.subscribed) {
                attrs.push("\\Subscribed");
            }
            out.push_str(&format!(
                "* LIST ({}) \"/\" {}",
                attrs.join(" "),
                wire_mailbox(name)
            ));
            if childinfo {
                out.push_str(" (\"CHILDINFO\" (\"SUBSCRIBED\"))");
            }
            out.push_str("\r\n");
            if ret.status.is_some()
                && let Some(m) = m
            {
                match self.status_items(user_id, &m.name, &wanted).await {
                    Ok(items) => {
                        let items: Vec<String> = items.iter().map(status_item).collect();
                        out.push_str(&format!(
                            "* STATUS {} ({})\r\n",
                            wire_mailbox(name),
                            items.join(" ")
                        ));
                    }
                    Err(err) => {
                        tracing::error!(error = %err, "imap: LIST-STATUS failed");
                    }
                }
            }
        }
        out.push_str(&format!("{tag} OK LIST done\r\n"));
        out.into_bytes()
    }

    pub(super) async fn status_items(
        &self,
        user_id: i64,
        name: &str,
        wanted: &[StatusDataItemName],
    ) -> store::Result<Vec<StatusDataItem>> {
        let store = &self.ctx.store;
        let mailbox = store.mailbox(user_id, name).await?;
        let entries = store.mailbox_entries(mailbox.id).await?;
        let count = u32::try_from(entries.len()).unwrap_or(u32::MAX);
        let unseen =
            u32::try_from(entries.iter().filter(|e| !e.has("\\Seen")).count()).unwrap_or(u32::MAX);
        let recent = u32::try_from(
            entries
                .iter()
                .filter(|e| e.uid >= mailbox.recent_uid)
                .count(),
        )
        .unwrap_or(u32::MAX);
        let deleted = u32::try_from(entries.iter().filter(|e| e.has("\\Deleted")).count())
            .unwrap_or(u32::MAX);
        Ok(wanted
            .iter()
            .filter_map(|w| match w {
                StatusDataItemName::Messages => Some(StatusDataItem::Messages(count)),
                StatusDataItemName::Recent => Some(StatusDataItem::Recent(recent)),
                StatusDataItemName::UidNext => Some(StatusDataItem::UidNext(nz(mailbox.uid_next))),
                StatusDataItemName::UidValidity => {
                    Some(StatusDataItem::UidValidity(nz(mailbox.uid_validity)))
                }
                StatusDataItemName::Unseen => Some(StatusDataItem::Unseen(unseen)),
                StatusDataItemName::Deleted => Some(StatusDataItem::Deleted(deleted)),
                StatusDataItemName::HighestModSeq => Some(StatusDataItem::HighestModSeq(
                    u64::try_from(mailbox.highest_modseq).unwrap_or(0),
                )),
                _ => None,
            })
            .collect())
    }
}

/// The mailboxes `shown` picks, each with the levels above it that are not shown themselves
/// (a parent deleted while it had children, or not subscribed) as `None`, so `%` still finds
/// the way down (RFC 3501 §6.3.8, §6.3.9); sorted by name.
pub(super) fn hierarchy(
    mailboxes: &[Mailbox],
    shown: impl Fn(&Mailbox) -> bool,
) -> Vec<(String, Option<&Mailbox>)> {
    let mut out: Vec<(String, Option<&Mailbox>)> = mailboxes
        .iter()
        .filter(|m| shown(m))
        .map(|m| (m.name.clone(), Some(m)))
        .collect();
    let mut parents: Vec<String> = Vec::new();
    for (name, _) in &out {
        for (i, _) in name.match_indices('/') {
            let parent = &name[..i];
            if !parent.is_empty()
                && !out.iter().any(|(n, _)| n == parent)
                && !parents.iter().any(|p| p == parent)
            {
                parents.push(parent.to_owned());
            }
        }
    }
    out.extend(parents.into_iter().map(|p| (p, None)));
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

/// LIST's attributes of `name` among `names` (every existing mailbox): `\Noselect` for a
/// level that is not a mailbox (`m` is `None`), `\HasChildren` or `\HasNoChildren`
/// (RFC 3348), and the special use (RFC 6154).
pub(super) fn attributes<'m>(names: &[String], name: &str, m: Option<&'m Mailbox>) -> Vec<&'m str> {
    let prefix = format!("{name}/");
    let has_children = names.iter().any(|n| n.starts_with(&prefix));
    let mut out = Vec::with_capacity(3);
    if m.is_none() {
        out.push("\\Noselect");
    }
    out.push(if has_children {
        "\\HasChildren"
    } else {
        "\\HasNoChildren"
    });
    out.extend(m.and_then(|m| m.special_use.as_deref()));
    out
}

/// A mailbox name as LIST and STATUS send it: modified UTF-7, quoted with `"` and `\\`
/// escaped. Modified UTF-7 leaves only printable ASCII (a CR or LF is base64-encoded like any
/// other character outside it), so a quoted string always holds it.
pub(super) fn wire_mailbox(name: &str) -> String {
    if name.eq_ignore_ascii_case("INBOX") {
        return "INBOX".to_owned();
    }
    let encoded = utf7::encode(name);
    format!("\"{}\"", encoded.replace('\\', "\\\\").replace('"', "\\\""))
}

/// One STATUS item as written on the wire (RFC 3501 §7.2.4).
fn status_item(item: &StatusDataItem) -> String {
    match item {
        StatusDataItem::Messages(n) => format!("MESSAGES {n}"),
        StatusDataItem::Recent(n) => format!("RECENT {n}"),
        StatusDataItem::UidNext(n) => format!("UIDNEXT {n}"),
        StatusDataItem::UidValidity(n) => format!("UIDVALIDITY {n}"),
        StatusDataItem::Unseen(n) => format!("UNSEEN {n}"),
        StatusDataItem::Deleted(n) => format!("DELETED {n}"),
        StatusDataItem::HighestModSeq(n) => format!("HIGHESTMODSEQ {n}"),
        _ => String::new(),
    }
}

pub(super) fn list_pattern(m: &ListMailbox<'_>) -> String {
    let raw = match m {
        ListMailbox::Token(t) => String::from_utf8_lossy(t.as_ref()).into_owned(),
        ListMailbox::String(s) => String::from_utf8_lossy(s.as_ref()).into_owned(),
    };
    utf7::decode(&raw).unwrap_or(raw)
}

/// LIST wildcards: `*` matches anything, `%` anything but the delimiter.
///
/// Matched as an automaton over the pattern's positions, one step per byte of the name with
/// the set of positions still alive (each at most once): O(pattern × name) at worst, never
/// exponential. Backtracking took 10 s for `LIST "" "*****Z"` and held a worker thread
/// (issue #13 §3).
pub(super) fn wildcard_match(pattern: &str, name: &str) -> bool {
    let pattern = if pattern.len() >= 5 && pattern.as_bytes()[..5].eq_ignore_ascii_case(b"INBOX") {
        format!("INBOX{}", &pattern[5..])
    } else {
        pattern.to_owned()
    };
    // A run of wildcards is one `*` if it holds any `*` (it then matches anything), else one
    // `%`: `*****` costs what `*` costs.
    let mut p: Vec<u8> = Vec::with_capacity(pattern.len());
    for &b in pattern.as_bytes() {
        match (p.last_mut(), b) {
            (Some(last @ (b'*' | b'%')), b'*' | b'%') => {
                if b == b'*' {
                    *last = b'*';
                }
            }
            _ => p.push(b),
        }
    }
    let n = name.as_bytes();
    // Each literal byte consumes one byte of the name.
    if p.iter().filter(|&&b| b != b'*' && b != b'%').count() > n.len() {
        return false;
    }
    let mut alive = vec![false; p.len() + 1];
    let mut states: Vec<usize> = Vec::new();
    let add = |i: usize, states: &mut Vec<usize>, alive: &mut Vec<bool>| {
        // A wildcard also matches nothing: its successor is alive too.
        let mut i = i;
        loop {
            if alive[i] {
                return;
            }
            alive[i] = true;
            states.push(i);
            if i < p.len() && (p[i] == b'*' || p[i] == b'%') {
                i += 1;
            } else {
                return;
            }
        }
    };
    add(0, &mut states, &mut alive);
    for &c in n {
        let mut next = Vec::with_capacity(states.len() + 1);
        let mut next_alive = vec![false; p.len() + 1];
        for &i in &states {
            match p.get(i) {
                Some(b'*') => add(i, &mut next, &mut next_alive),
                Some(b'%') if c != b'/' => add(i, &mut next, &mut next_alive),
                Some(&l) if l != b'%' && l.eq_ignore_ascii_case(&c) => {
                    add(i + 1, &mut next, &mut next_alive);
                }
                _ => {}
            }
        }
        if next.is_empty() {
            return false;
        }
        states = next;
        alive = next_alive;
    }
    alive[p.len()]
}

#[cfg(test)]
mod tests {
    use super::{wildcard_match, wire_mailbox};

    #[test]
    fn mailbox_names_on_the_wire() {
        assert_eq!(wire_mailbox("inbox"), "INBOX");
        assert_eq!(wire_mailbox("Entwürfe"), "\"Entw&APw-rfe\"");
        assert_eq!(wire_mailbox("a \"b\" c\\d"), "\"a \\\"b\\\" c\\\\d\"");
        assert_eq!(wire_mailbox("a\r\nb"), "\"a&AA0ACg-b\"");
    }

    #[test]
    fn list_wildcards() {
        assert!(wildcard_match("*", "INBOX"));
        assert!(wildcard_match("*", "Projekte/2026"));
        assert!(wildcard_match("%", "Sent"));
        assert!(!wildcard_match("%", "Projekte/2026"));
        assert!(wildcard_match("Projekte/%", "Projekte/2026"));
        assert!(wildcard_match("inbox", "INBOX"));
        assert!(!wildcard_match("Sent", "Sent Items"));
        assert!(wildcard_match("a%%b", "axb"));
        assert!(!wildcard_match("a%*%", "b"));
        assert!(wildcard_match("a%*%", "a/b/c"));
        assert!(wildcard_match("", ""));
        assert!(!wildcard_match("", "a"));
    }

    /// `LIST "" "*****…Z"` against a long name that does not end in Z: instant, where
    /// backtracking grew exponentially with the stars.
    #[test]
    fn many_stars_do_not_backtrack() {
        let name = "a".repeat(200);
        for stars in [5, 20, 200] {
            assert!(!wildcard_match(&format!("{}Z", "*".repeat(stars)), &name));
            assert!(!wildcard_match(&format!("{}Z", "*a%".repeat(stars)), &name));
        }
        assert!(wildcard_match(&format!("{}a", "*".repeat(30)), &name));
    }

    /// The obvious backtracking definition (the old code): the reference for small inputs.
    fn reference(p: &[u8], n: &[u8]) -> bool {
        match p.first() {
            None => n.is_empty(),
            Some(b'*') => (0..=n.len()).any(|i| reference(&p[1..], &n[i..])),
            Some(b'%') => (0..=n.len())
                .take_while(|&i| i == 0 || n[i - 1] != b'/')
                .any(|i| reference(&p[1..], &n[i..])),
            Some(&c) => {
                n.first().is_some_and(|&d| d.eq_ignore_ascii_case(&c))
                    && reference(&p[1..], &n[1..])
            }
        }
    }

    proptest::proptest! {
        #[test]
        fn agrees_with_backtracking(p in "[aB/*%]{0,8}", n in "[abB/]{0,8}") {
            proptest::prop_assert_eq!(wildcard_match(&p, &n), reference(p.as_bytes(), n.as_bytes()));
        }
    }
}
