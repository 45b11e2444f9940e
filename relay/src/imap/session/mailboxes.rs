//! LIST, LSUB and STATUS (RFC 3501 §6.3.8–§6.3.10): mailbox names and counts.

#[allow(clippy::wildcard_imports)]
use super::*;

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
        // LIST shows every mailbox, LSUB the subscribed ones; a level above them that is not
        // shown itself (a parent deleted while it had children, or not subscribed) is shown as
        // `\Noselect`, so `%` still finds the way down (RFC 3501 §6.3.8, §6.3.9).
        let names: Vec<String> = mailboxes.iter().map(|m| m.name.clone()).collect();
        let mut shown: Vec<(String, Option<&Mailbox>)> = mailboxes
            .iter()
            .filter(|m| !lsub || m.subscribed)
            .map(|m| (m.name.clone(), Some(m)))
            .collect();
        let mut parents: Vec<String> = Vec::new();
        for (name, _) in &shown {
            for (i, _) in name.match_indices('/') {
                let parent = &name[..i];
                if !parent.is_empty()
                    && !shown.iter().any(|(n, _)| n == parent)
                    && !parents.iter().any(|p| p == parent)
                {
                    parents.push(parent.to_owned());
                }
            }
        }
        shown.extend(parents.into_iter().map(|p| (p, None)));
        shown.sort_by(|a, b| a.0.cmp(&b.0));
        for (name, m) in &shown {
            if !wildcard_match(&full, name) {
                continue;
            }
            let mut items = Vec::new();
            if m.is_none() {
                items.push(FlagNameAttribute::Noselect);
            }
            let has_children = names.iter().any(|n| n.starts_with(&format!("{name}/")));
            for attr in [
                Some(if has_children {
                    "\\HasChildren"
                } else {
                    "\\HasNoChildren"
                }),
                m.and_then(|m| m.special_use.as_deref()),
            ]
            .into_iter()
            .flatten()
            {
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

pub(super) fn list_pattern(m: &ListMailbox<'_>) -> String {
    let raw = match m {
        ListMailbox::Token(t) => String::from_utf8_lossy(t.as_ref()).into_owned(),
        ListMailbox::String(s) => String::from_utf8_lossy(s.as_ref()).into_owned(),
    };
    utf7::decode(&raw).unwrap_or(raw)
}

/// LIST wildcards: `*` matches anything, `%` anything but the delimiter.
pub(super) fn wildcard_match(pattern: &str, name: &str) -> bool {
    pub(super) fn go(p: &[u8], n: &[u8]) -> bool {
        match p.first() {
            None => n.is_empty(),
            Some(b'*') => (0..=n.len()).any(|i| go(&p[1..], &n[i..])),
            Some(b'%') => (0..=n.len())
                .take_while(|&i| i == 0 || n[i - 1] != b'/')
                .any(|i| go(&p[1..], &n[i..])),
            Some(&c) => {
                n.first().is_some_and(|&d| d.eq_ignore_ascii_case(&c)) && go(&p[1..], &n[1..])
            }
        }
    }
    let pattern = if pattern.len() >= 5 && pattern[..5].eq_ignore_ascii_case("INBOX") {
        format!("INBOX{}", &pattern[5..])
    } else {
        pattern.to_owned()
    };
    go(pattern.as_bytes(), name.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::wildcard_match;

    #[test]
    fn list_wildcards() {
        assert!(wildcard_match("*", "INBOX"));
        assert!(wildcard_match("*", "Projekte/2026"));
        assert!(wildcard_match("%", "Sent"));
        assert!(!wildcard_match("%", "Projekte/2026"));
        assert!(wildcard_match("Projekte/%", "Projekte/2026"));
        assert!(wildcard_match("inbox", "INBOX"));
        assert!(!wildcard_match("Sent", "Sent Items"));
    }
}
