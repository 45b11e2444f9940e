//! FETCH (RFC 3501 §6.4.5, RFC 7162 CHANGEDSINCE): message data items and body sections.

#[allow(clippy::wildcard_imports)]
use super::*;
use crate::imap::binary;
use imap_next::imap_types::core::{LiteralMode, NString8};
use imap_next::imap_types::extensions::binary::Literal8;

impl Session<'_> {
    pub(super) fn send_fetch_flags(
        &mut self,
        seq: u32,
        uid: i64,
        flags: &str,
        modseq: i64,
        with_uid: bool,
    ) {
        self.announce_keywords(flags);
        let listed = match self.selected.as_ref() {
            Some(selected) => selected.flags(uid, flags),
            None => flags_of(flags),
        };
        let mut items = vec![MessageDataItem::Flags(listed)];
        if with_uid {
            items.push(MessageDataItem::Uid(nz(uid)));
        }
        if self.condstore {
            items.push(MessageDataItem::ModSeq(nz64(modseq)));
        }
        if let (Some(seq), Ok(items)) = (NonZeroU32::new(seq), Vec1::try_from(items)) {
            self.send_data(Data::Fetch { seq, items });
        }
    }

    /// FLAGS and PERMANENTFLAGS again when `flags` holds a keyword the client has not been
    /// told about: a client may reject a keyword it did not see announced (RFC 3501 §7.2.6).
    pub(super) fn announce_keywords(&mut self, flags: &str) {
        let Some(selected) = self.selected.as_mut() else {
            return;
        };
        let mut new = false;
        for k in keywords_of(flags) {
            if Flag::try_from(k).is_ok()
                && !selected
                    .keywords
                    .iter()
                    .any(|have| have.eq_ignore_ascii_case(k))
            {
                selected.keywords.push(k.to_owned());
                new = true;
            }
        }
        if !new {
            return;
        }
        let flags = flag_list(&selected.keywords);
        let mut perm: Vec<FlagPerm<'static>> = flags.iter().cloned().map(FlagPerm::Flag).collect();
        perm.push(FlagPerm::Asterisk);
        self.send_data(Data::Flags(flags));
        self.send(
            Status::ok(None, Some(Code::PermanentFlags(perm)), text("limited"))
                .unwrap_or_else(|_| unreachable_status()),
        );
    }

    /// Starts the FETCH of `uids` (in the client's order) under `tag`: the answer is built
    /// batch by batch in [`Session::fetch_step`], which the connection loop calls after each
    /// batch's responses are written — so a `FETCH 1:* BODY[]` never holds more than one
    /// batch in memory, and a client that does not read stalls only itself.
    pub(super) async fn start_fetch(
        &mut self,
        tag: Tag<'static>,
        uids: Vec<i64>,
        names: Vec<MessageDataItemName<'static>>,
        by_uid: bool,
    ) -> Result<(), FetchError> {
        let deadline = tokio::time::Instant::now() + self.ctx.config.imap.max_command;
        let selected = self.selected.as_ref().expect("selected");
        let mailbox = selected.mailbox.clone();
        let needs_content = names.iter().any(|n| {
            matches!(
                n,
                MessageDataItemName::BodyExt { .. }
                    | MessageDataItemName::Rfc822
                    | MessageDataItemName::Rfc822Header
                    | MessageDataItemName::Rfc822Text
                    | MessageDataItemName::Body
                    | MessageDataItemName::BodyStructure
                    | MessageDataItemName::Envelope
                    | MessageDataItemName::Binary { .. }
                    | MessageDataItemName::BinarySize { .. }
            )
        });
        let entries: HashMap<i64, store::Entry> = self
            .ctx
            .store
            .mailbox_entries(mailbox.id)
            .await
            .map_err(FetchError::Store)?
            .into_iter()
            .map(|e| (e.uid, e))
            .collect();
        let batches = batches(
            &uids,
            &selected.uids,
            if needs_content { CONTENT_BATCH } else { 4096 },
        )
        .into();
        self.fetching = Some(FetchJob {
            tag,
            read_only: selected.read_only,
            mailbox,
            uids,
            names: Arc::new(names),
            by_uid,
            needs_content,
            entries,
            batches,
            seen: Vec::new(),
            deadline,
        });
        Ok(())
    }

    /// One batch of the FETCH in progress; the last one (or a failure) sets `\Seen` where
    /// the items ask for it, sends the tagged answer and ends the job.
    pub(super) async fn fetch_step(&mut self) {
        let Some(mut job) = self.fetching.take() else {
            return;
        };
        let result = match job.batches.pop_front() {
            Some(batch) => self.fetch_batch(&mut job, batch).await,
            None => Ok(()),
        };
        let over_time = tokio::time::Instant::now() > job.deadline;
        if result.is_ok() && !job.batches.is_empty() && !over_time {
            self.fetching = Some(job);
            return;
        }
        let result = match result {
            Ok(()) if over_time && !job.batches.is_empty() => Err(FetchError::TimeLimit),
            other => other,
        };
        if !job.seen.is_empty() {
            let _ = self
                .ctx
                .store
                .set_flags(
                    &job.mailbox,
                    &job.seen,
                    FlagOp::Add,
                    &["\\Seen".to_owned()],
                    None,
                )
                .await;
        }
        let tag = job.tag;
        let status = match result {
            Ok(()) => ok(tag, None, "FETCH done"),
            Err(FetchError::Store(err)) => refused(tag, &err),
            Err(FetchError::TimeLimit) => no(
                tag,
                Some(code("LIMIT")),
                "FETCH took too long (imap.max_command_secs): fetch fewer messages",
            ),
            Err(FetchError::Unservable(uid)) => {
                no(tag, None, &format!("message UID {uid} cannot be served"))
            }
            Err(FetchError::UnknownCte(cte)) => no(
                tag,
                Some(Code::UnknownCte),
                &format!("cannot decode content-transfer-encoding {}", cte.0),
            ),
        };
        self.refresh(false).await;
        self.send(status);
    }

    /// Loads, builds (on the heavy-work gate: MIME parsing is CPU work an attacker controls)
    /// and sends the items of `job.uids[batch]`.
    async fn fetch_batch(
        &mut self,
        job: &mut FetchJob,
        batch: std::ops::Range<usize>,
    ) -> Result<(), FetchError> {
        let batch = &job.uids[batch];
        // One query per batch, and a batch spans at most CONTENT_BATCH messages of the
        // mailbox: `UID FETCH 1,4000000 BODY[]` must not load everything in between.
        let mut contents: HashMap<i64, store::Result<Vec<u8>>> = HashMap::new();
        if job.needs_content {
            let (first, last) = (batch[0], batch[batch.len() - 1]);
            contents = self
                .ctx
                .store
                .entry_contents(job.mailbox.id, first.min(last), first.max(last))
                .await
                .map_err(FetchError::Store)?
                .into_iter()
                .filter(|(u, _)| batch.contains(u))
                .collect();
        }
        let mut work: Vec<(store::Entry, u32, Vec<u8>)> = Vec::with_capacity(batch.len());
        for &uid in batch {
            let Some(entry) = job.entries.get(&uid) else {
                continue;
            };
            let Some(seq) = self.selected.as_ref().and_then(|s| s.seq_of(uid)) else {
                continue;
            };
            let raw = if job.needs_content {
                match contents.remove(&uid) {
                    Some(Ok(raw)) => raw,
                    Some(Err(err)) => {
                        tracing::error!(uid, error = %err, "imap: message not served");
                        return Err(FetchError::Unservable(uid));
                    }
                    None => continue,
                }
            } else {
                Vec::new()
            };
            work.push((entry.clone(), seq, raw));
        }
        let build = {
            let names = Arc::clone(&job.names);
            let by_uid = job.by_uid;
            move || {
                work.into_iter()
                    .map(|(entry, seq, raw)| {
                        let built = fetch_items(&entry, &raw, &names, by_uid);
                        (entry, seq, built)
                    })
                    .collect::<Vec<_>>()
            }
        };
        let built = if job.needs_content {
            let left = job
                .deadline
                .saturating_duration_since(tokio::time::Instant::now());
            self.ctx
                .heavy
                .run(left, build)
                .await
                .map_err(|_| FetchError::TimeLimit)?
        } else {
            build()
        };
        for (entry, seq, built) in built {
            let (mut items, sets_seen) = match built {
                Ok(built) => built,
                Err(unknown) => return Err(FetchError::UnknownCte(unknown)),
            };
            if sets_seen && !job.read_only && !entry.has("\\Seen") {
                job.seen.push(entry.uid);
            }
            // FLAGS depend on the session (\Recent, keywords announced): set here, not
            // on the heavy-work pool.
            for item in &mut items {
                if let MessageDataItem::Flags(flags) = item {
                    self.announce_keywords(&entry.flags);
                    let selected = self.selected.as_ref().expect("selected");
                    *flags = selected.flags(entry.uid, &entry.flags);
                }
            }
            if let (Some(seq), Ok(items)) = (NonZeroU32::new(seq), Vec1::try_from(items)) {
                self.send_data(Data::Fetch { seq, items });
            }
        }
        Ok(())
    }
}

/// A FETCH whose answer is being sent, batch by batch ([`Session::fetch_step`]).
pub(super) struct FetchJob {
    tag: Tag<'static>,
    read_only: bool,
    mailbox: Mailbox,
    /// The UIDs asked for, in the client's order.
    uids: Vec<i64>,
    names: Arc<Vec<MessageDataItemName<'static>>>,
    by_uid: bool,
    needs_content: bool,
    entries: HashMap<i64, store::Entry>,
    /// Index ranges of `uids` still to send.
    batches: std::collections::VecDeque<std::ops::Range<usize>>,
    /// Messages whose `\Seen` the items set.
    seen: Vec<i64>,
    deadline: tokio::time::Instant,
}

/// `uids` (ascending, from [`Selected::resolve`]) cut into index ranges of at most `size`
/// UIDs, each spanning fewer than `size` messages of `snapshot`.
pub(super) fn batches(uids: &[i64], snapshot: &[i64], size: usize) -> Vec<std::ops::Range<usize>> {
    let position = |uid: i64| snapshot.partition_point(|&u| u < uid);
    let mut out = Vec::new();
    let mut start = 0;
    while start < uids.len() {
        let first = position(uids[start]);
        let mut end = start + 1;
        while end < uids.len() && end - start < size && position(uids[end]) - first < size {
            end += 1;
        }
        out.push(start..end);
        start = end;
    }
    out
}

/// The items `names` of `entry` whose served bytes are `raw`, and whether they mark it
/// `\Seen`. CPU work (MIME parsing, decoding): runs on the heavy-work gate.
///
/// # Errors
/// A `BINARY` section in a transfer encoding the server cannot undo.
fn fetch_items(
    entry: &store::Entry,
    raw: &[u8],
    names: &[MessageDataItemName<'static>],
    by_uid: bool,
) -> Result<(Vec<MessageDataItem<'static>>, bool), binary::UnknownCte> {
    let uid = entry.uid;
    let mut tree: Option<mime::Part> = None;
    let mut items = Vec::new();
    let mut sets_seen = false;
    if by_uid {
        items.push(MessageDataItem::Uid(nz(uid)));
    }
    for name in names {
        match name {
            MessageDataItemName::Uid if !by_uid => items.push(MessageDataItem::Uid(nz(uid))),
            MessageDataItemName::Uid => {}
            MessageDataItemName::Flags => {
                items.push(MessageDataItem::Flags(flags_of(&entry.flags)));
            }
            MessageDataItemName::InternalDate => {
                if let Some(d) = date_time(entry.internal_date) {
                    items.push(MessageDataItem::InternalDate(d));
                }
            }
            MessageDataItemName::Rfc822Size => items.push(MessageDataItem::Rfc822Size(
                u32::try_from(entry.size).unwrap_or(u32::MAX),
            )),
            MessageDataItemName::ModSeq => items.push(MessageDataItem::ModSeq(nz64(entry.modseq))),
            MessageDataItemName::Envelope => {
                items.push(MessageDataItem::Envelope(mime::envelope(message::header(
                    raw,
                ))));
            }
            MessageDataItemName::BodyStructure => {
                let tree = tree.get_or_insert_with(|| mime::parse(raw));
                items.push(MessageDataItem::BodyStructure(tree.structure(raw, true)));
            }
            MessageDataItemName::Body => {
                let tree = tree.get_or_insert_with(|| mime::parse(raw));
                items.push(MessageDataItem::Body(tree.structure(raw, false)));
            }
            MessageDataItemName::Rfc822 => {
                sets_seen = true;
                items.push(MessageDataItem::Rfc822(literal(raw)));
            }
            MessageDataItemName::Rfc822Header => {
                items.push(MessageDataItem::Rfc822Header(literal(message::header(raw))));
            }
            MessageDataItemName::Rfc822Text => {
                sets_seen = true;
                items.push(MessageDataItem::Rfc822Text(literal(message::text(raw))));
            }
            MessageDataItemName::BodyExt {
                section,
                partial,
                peek,
            } => {
                if !peek {
                    sets_seen = true;
                }
                let whole = section_bytes(raw, section.as_ref(), &mut tree);
                let (data, origin) = match partial {
                    Some((start, len)) => (
                        message::partial(&whole, *start, len.get()).to_vec(),
                        Some(*start),
                    ),
                    None => (whole, None),
                };
                items.push(MessageDataItem::BodyExt {
                    section: section.clone(),
                    origin,
                    data: literal(&data),
                });
            }
            MessageDataItemName::Binary {
                section,
                partial,
                peek,
            } => {
                if !peek {
                    sets_seen = true;
                }
                let path: Vec<u32> = section.iter().map(|n| n.get()).collect();
                let whole = binary::section(raw, &path, &mut tree)?;
                let (data, section) = match partial {
                    Some((start, len)) => (
                        message::partial(&whole, *start, len.get()).to_vec(),
                        binary::section_with_origin(section, *start),
                    ),
                    None => (whole, section.clone()),
                };
                items.push(MessageDataItem::Binary {
                    section,
                    value: nstring8(data),
                });
            }
            MessageDataItemName::BinarySize { section } => {
                let path: Vec<u32> = section.iter().map(|n| n.get()).collect();
                let size = binary::section(raw, &path, &mut tree)?.len();
                items.push(MessageDataItem::BinarySize {
                    section: section.clone(),
                    size: u32::try_from(size).unwrap_or(u32::MAX),
                });
            }
        }
    }
    Ok((items, sets_seen))
}

/// `data` as a string that may hold NUL: a literal8 (`~{n}`) when it does, else a literal.
fn nstring8(data: Vec<u8>) -> NString8<'static> {
    if binary::needs_literal8(&data) {
        NString8::Literal8(Literal8 {
            data: data.into(),
            mode: LiteralMode::Sync,
        })
    } else {
        NString8::NString(literal(&data))
    }
}

/// The bytes of `section` of `raw` (the whole message when `None`).
pub(super) fn section_bytes(
    raw: &[u8],
    section: Option<&Section<'_>>,
    tree: &mut Option<mime::Part>,
) -> Vec<u8> {
    let fields = |f: &Vec1<AString<'_>>| f.as_ref().iter().map(astring).collect::<Vec<_>>();
    let path = |p: &imap_next::imap_types::fetch::Part| {
        p.0.as_ref().iter().map(|n| n.get()).collect::<Vec<u32>>()
    };
    let mut part = |p: &imap_next::imap_types::fetch::Part, kind: mime::SectionKind| -> Vec<u8> {
        let root = tree.get_or_insert_with(|| mime::parse(raw));
        root.find(&path(p))
            .map(|found| found.bytes(raw, kind).to_vec())
            .unwrap_or_default()
    };
    match section {
        None => raw.to_vec(),
        Some(Section::Header(None)) => message::header(raw).to_vec(),
        Some(Section::Text(None)) => message::text(raw).to_vec(),
        Some(Section::HeaderFields(None, f)) => message::header_fields(raw, &fields(f), false),
        Some(Section::HeaderFieldsNot(None, f)) => message::header_fields(raw, &fields(f), true),
        Some(Section::Part(p)) => part(p, mime::SectionKind::Body),
        Some(Section::Mime(p)) => part(p, mime::SectionKind::Mime),
        Some(Section::Header(Some(p))) => part(p, mime::SectionKind::Header),
        Some(Section::Text(Some(p))) => part(p, mime::SectionKind::Text),
        Some(Section::HeaderFields(Some(p), f)) => {
            message::header_fields(&part(p, mime::SectionKind::Header), &fields(f), false)
        }
        Some(Section::HeaderFieldsNot(Some(p), f)) => {
            message::header_fields(&part(p, mime::SectionKind::Header), &fields(f), true)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::batches;

    /// A batch never spans more messages of the mailbox than its size: `UID FETCH 1,4000000`
    /// loads two messages, not everything in between.
    #[test]
    fn batches_span_few_messages() {
        let snapshot: Vec<i64> = (1..=1000).collect();
        assert_eq!(batches(&[1, 1000], &snapshot, 32), [0..1, 1..2]);
        assert_eq!(batches(&[1, 2, 31, 32, 33], &snapshot, 32), [0..4, 4..5]);
        let all: Vec<i64> = (1..=100).collect();
        assert_eq!(
            batches(&all, &snapshot, 32),
            [0..32, 32..64, 64..96, 96..100]
        );
        assert!(batches(&[], &snapshot, 32).is_empty());
    }
}
