//! SEARCH (RFC 3501 §6.4.4): the keys evaluated against a message.

#[allow(clippy::wildcard_imports)]
use super::*;

impl Session<'_> {
    pub(super) async fn search(&mut self, criteria: &Vec1<SearchKey<'static>>) -> Vec<i64> {
        let selected = self.selected.as_ref().expect("selected");
        let Ok(entries) = self.ctx.store.mailbox_entries(selected.mailbox.id).await else {
            return Vec::new();
        };
        let mut hits = Vec::new();
        for e in entries
            .iter()
            .filter(|e| selected.uids.binary_search(&e.uid).is_ok())
        {
            let mut content = None;
            let mut all = true;
            for key in criteria.as_ref() {
                if !self.matches(key, e, selected, &mut content).await {
                    all = false;
                    break;
                }
            }
            if all {
                hits.push(e.uid);
            }
        }
        hits
    }

    pub(super) fn matches<'b>(
        &'b self,
        key: &'b SearchKey<'static>,
        e: &'b store::Entry,
        selected: &'b Selected,
        content: &'b mut Option<message::Searchable>,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = bool> + Send + 'b>> {
        Box::pin(async move {
            match key {
                SearchKey::All => true,
                SearchKey::And(keys) => {
                    for k in keys.as_ref() {
                        if !self.matches(k, e, selected, content).await {
                            return false;
                        }
                    }
                    true
                }
                SearchKey::Not(k) => !self.matches(k, e, selected, content).await,
                SearchKey::Or(a, b) => {
                    self.matches(a, e, selected, content).await
                        || self.matches(b, e, selected, content).await
                }
                SearchKey::Seen => e.has("\\Seen"),
                SearchKey::Unseen => !e.has("\\Seen"),
                SearchKey::New => selected.is_recent(e.uid) && !e.has("\\Seen"),
                SearchKey::Answered => e.has("\\Answered"),
                SearchKey::Unanswered => !e.has("\\Answered"),
                SearchKey::Deleted => e.has("\\Deleted"),
                SearchKey::Undeleted => !e.has("\\Deleted"),
                SearchKey::Flagged => e.has("\\Flagged"),
                SearchKey::Unflagged => !e.has("\\Flagged"),
                SearchKey::Draft => e.has("\\Draft"),
                SearchKey::Undraft => !e.has("\\Draft"),
                SearchKey::Recent => selected.is_recent(e.uid),
                SearchKey::Old => !selected.is_recent(e.uid),
                SearchKey::Keyword(k) => e.has(k.inner()),
                SearchKey::Unkeyword(k) => !e.has(k.inner()),
                SearchKey::Larger(n) => e.size > i64::from(*n),
                SearchKey::Smaller(n) => e.size < i64::from(*n),
                SearchKey::Uid(set) => selected.resolve(set, true).contains(&e.uid),
                SearchKey::SequenceSet(set) => selected.resolve(set, false).contains(&e.uid),
                SearchKey::ModSequence { modseq, .. } => {
                    u64::try_from(e.modseq).unwrap_or(0) >= *modseq
                }
                SearchKey::Since(d) => day(e.internal_date) >= *d.as_ref(),
                SearchKey::Before(d) => day(e.internal_date) < *d.as_ref(),
                SearchKey::On(d) => day(e.internal_date) == *d.as_ref(),
                SearchKey::SentSince(_)
                | SearchKey::SentBefore(_)
                | SearchKey::SentOn(_)
                | SearchKey::Subject(_)
                | SearchKey::From(_)
                | SearchKey::To(_)
                | SearchKey::Cc(_)
                | SearchKey::Bcc(_)
                | SearchKey::Body(_)
                | SearchKey::Text(_)
                | SearchKey::Header(..) => {
                    if content.is_none() {
                        // What is searched is what is served: a notice, for sensitive mail.
                        let raw = self
                            .ctx
                            .store
                            .entry_content(selected.mailbox.id, e.uid)
                            .await
                            .unwrap_or_default();
                        *content = Some(message::Searchable::new(&raw));
                    }
                    let Some(text) = content.as_ref() else {
                        return false;
                    };
                    match key {
                        SearchKey::Subject(s) => text.header_contains("subject", &astring(s)),
                        SearchKey::From(s) => text.header_contains("from", &astring(s)),
                        SearchKey::To(s) => text.header_contains("to", &astring(s)),
                        SearchKey::Cc(s) => text.header_contains("cc", &astring(s)),
                        SearchKey::Bcc(s) => text.header_contains("bcc", &astring(s)),
                        SearchKey::Body(s) => text.body_contains(&astring(s)),
                        // SENT* compare the Date header's day (RFC 3501 §6.4.4).
                        SearchKey::SentSince(d) => text.sent().is_some_and(|s| s >= *d.as_ref()),
                        SearchKey::SentBefore(d) => text.sent().is_some_and(|s| s < *d.as_ref()),
                        SearchKey::SentOn(d) => text.sent().is_some_and(|s| s == *d.as_ref()),
                        SearchKey::Header(name, v) => {
                            text.header_contains(&astring(name), &astring(v))
                        }
                        _ => text.text_contains(&match key {
                            SearchKey::Text(s) => astring(s),
                            _ => String::new(),
                        }),
                    }
                }
            }
        })
    }
}

pub(super) fn day(ms: i64) -> chrono::NaiveDate {
    chrono::DateTime::from_timestamp_millis(ms).map_or(chrono::NaiveDate::MIN, |d| d.date_naive())
}
