//! SEARCH (RFC 3501 §6.4.4): the keys evaluated against a message.
//!
//! The criteria are first compiled into a [`Program`]: owned, with sequence and UID sets
//! resolved to [`Ranges`] once (a set is never expanded). The program then runs over the
//! mailbox in batches on the heavy-work gate — off the async workers, whose threads SMTP,
//! the web UI and every other session share — and within `imap.max_command_secs`.

#[allow(clippy::wildcard_imports)]
use super::*;

/// Messages evaluated in one blocking task when no content is needed (flags, dates, sets).
const META_BATCH: usize = 4096;

/// Why a SEARCH has no answer.
pub(super) enum SearchError {
    Store(store::Error),
    /// Over `imap.max_command_secs`, or no heavy-work slot in that time.
    TimeLimit,
}

/// A search key with its sets resolved.
pub(super) enum Program {
    And(Vec<Program>),
    Or(Box<Program>, Box<Program>),
    Not(Box<Program>),
    /// UIDs in these ranges.
    Uids(Ranges),
    /// Sequence numbers in these ranges.
    Seqs(Ranges),
    /// `\Recent` (RFC 3501 §2.3.2): UIDs this session claimed as recent.
    Recent(Vec<std::ops::Range<i64>>),
    /// Any other key, evaluated as is.
    Key(SearchKey<'static>),
}

impl Program {
    /// `keys` (all must match), `*` standing for `last_uid` in UID sets and for `count` in
    /// sequence sets.
    /// `recent` are the UIDs recent in this session (RECENT, NEW, OLD).
    pub(super) fn compile(
        keys: &[SearchKey<'static>],
        last_uid: u32,
        count: u32,
        recent: &[std::ops::Range<i64>],
    ) -> Self {
        fn one(
            key: &SearchKey<'static>,
            last_uid: u32,
            count: u32,
            recent: &[std::ops::Range<i64>],
        ) -> Program {
            match key {
                SearchKey::And(keys) => Program::compile(keys.as_ref(), last_uid, count, recent),
                SearchKey::Or(a, b) => Program::Or(
                    Box::new(one(a, last_uid, count, recent)),
                    Box::new(one(b, last_uid, count, recent)),
                ),
                SearchKey::Not(k) => Program::Not(Box::new(one(k, last_uid, count, recent))),
                SearchKey::Recent => Program::Recent(recent.to_vec()),
                // NEW is RECENT UNSEEN, OLD is NOT RECENT (RFC 3501 §6.4.4).
                SearchKey::New => Program::And(vec![
                    Program::Recent(recent.to_vec()),
                    Program::Key(SearchKey::Unseen),
                ]),
                SearchKey::Old => Program::Not(Box::new(Program::Recent(recent.to_vec()))),
                SearchKey::Uid(set) => Program::Uids(Ranges::new(set, last_uid)),
                SearchKey::SequenceSet(set) => Program::Seqs(Ranges::new(set, count)),
                other => Program::Key(other.clone()),
            }
        }
        Program::And(
            keys.iter()
                .map(|k| one(k, last_uid, count, recent))
                .collect(),
        )
    }

    /// Whether any key looks at the message's contents.
    fn needs_content(&self) -> bool {
        match self {
            Program::And(ps) => ps.iter().any(Program::needs_content),
            Program::Or(a, b) => a.needs_content() || b.needs_content(),
            Program::Not(p) => p.needs_content(),
            Program::Uids(_) | Program::Seqs(_) | Program::Recent(_) => false,
            Program::Key(k) => is_content_key(k),
        }
    }

    /// Whether entry `e` (sequence number `seq`, contents `raw` when loaded) matches. The
    /// contents are parsed once, and only when a key gets to them.
    fn matches(
        &self,
        e: &store::Entry,
        seq: u32,
        raw: Option<&[u8]>,
        content: &mut Option<message::Searchable>,
    ) -> bool {
        match self {
            Program::And(ps) => ps.iter().all(|p| p.matches(e, seq, raw, content)),
            Program::Or(a, b) => a.matches(e, seq, raw, content) || b.matches(e, seq, raw, content),
            Program::Not(p) => !p.matches(e, seq, raw, content),
            Program::Uids(r) => r.contains_i64(e.uid),
            Program::Seqs(r) => r.contains(seq),
            Program::Recent(r) => r.iter().any(|r| r.contains(&e.uid)),
            Program::Key(key) if is_content_key(key) => {
                let text = content
                    .get_or_insert_with(|| message::Searchable::new(raw.unwrap_or_default()));
                content_matches(key, text)
            }
            Program::Key(key) => meta_matches(key, e),
        }
    }
}

fn is_content_key(key: &SearchKey<'_>) -> bool {
    matches!(
        key,
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
            | SearchKey::Header(..)
    )
}

/// Keys answered from the entry alone (flags, size, dates).
fn meta_matches(key: &SearchKey<'_>, e: &store::Entry) -> bool {
    match key {
        SearchKey::All => true,
        SearchKey::Seen => e.has("\\Seen"),
        SearchKey::Unseen => !e.has("\\Seen"),
        SearchKey::Answered => e.has("\\Answered"),
        SearchKey::Unanswered => !e.has("\\Answered"),
        SearchKey::Deleted => e.has("\\Deleted"),
        SearchKey::Undeleted => !e.has("\\Deleted"),
        SearchKey::Flagged => e.has("\\Flagged"),
        SearchKey::Unflagged => !e.has("\\Flagged"),
        SearchKey::Draft => e.has("\\Draft"),
        SearchKey::Undraft => !e.has("\\Draft"),
        SearchKey::Keyword(k) => e.has(k.inner()),
        SearchKey::Unkeyword(k) => !e.has(k.inner()),
        SearchKey::Larger(n) => e.size > i64::from(*n),
        SearchKey::Smaller(n) => e.size < i64::from(*n),
        SearchKey::ModSequence { modseq, .. } => u64::try_from(e.modseq).unwrap_or(0) >= *modseq,
        SearchKey::Since(d) => day(e.internal_date) >= *d.as_ref(),
        SearchKey::Before(d) => day(e.internal_date) < *d.as_ref(),
        SearchKey::On(d) => day(e.internal_date) == *d.as_ref(),
        // RECENT, NEW, OLD, the compound keys and the sets are compiled away.
        _ => false,
    }
}

/// Keys answered from what the entry serves (a notice, for sensitive mail: what is
/// searched is what is served).
fn content_matches(key: &SearchKey<'_>, text: &message::Searchable) -> bool {
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
        SearchKey::Header(name, v) => text.header_contains(&astring(name), &astring(v)),
        SearchKey::Text(s) => text.text_contains(&astring(s)),
        _ => false,
    }
}

impl Session<'_> {
    /// The UIDs of the messages matching `criteria`, ascending.
    pub(super) async fn search(
        &mut self,
        criteria: &Vec1<SearchKey<'static>>,
    ) -> Result<Vec<i64>, SearchError> {
        let deadline = tokio::time::Instant::now() + self.ctx.config.imap.max_command;
        self.search_within(criteria, deadline).await
    }

    /// [`Self::search`] within `deadline` (SORT and THREAD search first, then work on).
    pub(super) async fn search_within(
        &mut self,
        criteria: &Vec1<SearchKey<'static>>,
        deadline: tokio::time::Instant,
    ) -> Result<Vec<i64>, SearchError> {
        let selected = self.selected.as_ref().expect("selected");
        let mailbox = selected.mailbox.id;
        let entries = self
            .ctx
            .store
            .mailbox_entries(mailbox)
            .await
            .map_err(SearchError::Store)?;
        // The client's view: entries it has been told of, with their sequence numbers.
        let entries: Vec<(store::Entry, u32)> = entries
            .into_iter()
            .filter_map(|e| selected.seq_of(e.uid).map(|seq| (e, seq)))
            .collect();
        let last_uid = selected
            .uids
            .last()
            .map_or(0, |&u| u32::try_from(u).unwrap_or(u32::MAX));
        let count = u32::try_from(selected.uids.len()).unwrap_or(u32::MAX);
        let program = Arc::new(Program::compile(
            criteria.as_ref(),
            last_uid,
            count,
            &selected.recent,
        ));
        let needs_content = program.needs_content();
        let batch_size = if needs_content {
            CONTENT_BATCH
        } else {
            META_BATCH
        };
        let mut hits = Vec::new();
        for batch in entries.chunks(batch_size) {
            let mut contents: HashMap<i64, Vec<u8>> = HashMap::new();
            if needs_content {
                let (first, last) = (batch[0].0.uid, batch[batch.len() - 1].0.uid);
                // A message that cannot be served is searched as empty.
                contents = self
                    .ctx
                    .store
                    .entry_contents(mailbox, first, last)
                    .await
                    .map_err(SearchError::Store)?
                    .into_iter()
                    .filter_map(|(uid, raw)| raw.ok().map(|raw| (uid, raw)))
                    .collect();
            }
            let batch = batch.to_vec();
            let program = Arc::clone(&program);
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let found = self
                .ctx
                .heavy
                .run(left, move || {
                    let deadline = std::time::Instant::now() + left;
                    let mut found = Vec::new();
                    for (e, seq) in &batch {
                        if std::time::Instant::now() > deadline {
                            return None;
                        }
                        let raw = contents.get(&e.uid).map(Vec::as_slice);
                        if program.matches(e, *seq, raw, &mut None) {
                            found.push(e.uid);
                        }
                    }
                    Some(found)
                })
                .await
                .ok()
                .flatten()
                .ok_or(SearchError::TimeLimit)?;
            hits.extend(found);
            if tokio::time::Instant::now() > deadline {
                return Err(SearchError::TimeLimit);
            }
        }
        Ok(hits)
    }
}

pub(super) fn day(ms: i64) -> chrono::NaiveDate {
    chrono::DateTime::from_timestamp_millis(ms).map_or(chrono::NaiveDate::MIN, |d| d.date_naive())
}

/// Whether `key` has a MODSEQ criterion anywhere (RFC 7162 §3.1.5).
pub(super) fn has_modseq(key: &SearchKey<'_>) -> bool {
    match key {
        SearchKey::ModSequence { .. } => true,
        SearchKey::And(keys) => keys.as_ref().iter().any(has_modseq),
        SearchKey::Or(a, b) => has_modseq(a) || has_modseq(b),
        SearchKey::Not(k) => has_modseq(k),
        _ => false,
    }
}
