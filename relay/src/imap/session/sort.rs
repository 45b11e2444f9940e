//! SORT and UID SORT (RFC 5256 §3), with RFC 5957's DISPLAYFROM and DISPLAYTO.
//!
//! The search criteria select the messages as SEARCH does ([`Session::search_within`]);
//! then, only when a key needs the header, the selected messages are loaded in batches and
//! their keys read ([`Sortable`]) on the heavy-work gate, and the sort itself runs there
//! too — all of it within one `imap.max_command_secs`. Strings compare upper-cased
//! (i;ascii-casemap, extended to Unicode upper case); ties go to the lower sequence number
//! (RFC 5256 §3).

use std::cmp::Ordering;

use imap_next::imap_types::core::Charset;
use imap_next::imap_types::extensions::sort::{SortCriterion, SortKey};

use super::fetch::batches;
use super::search::SearchError;
#[allow(clippy::wildcard_imports)]
use super::*;
use crate::imap::sortable::Sortable;

/// A selected message with what sorting and threading read from it.
pub(super) struct Keyed {
    pub(super) entry: store::Entry,
    pub(super) seq: u32,
    /// Read from the header; the default (empty) when no key needed it.
    pub(super) keys: Sortable,
}

impl Keyed {
    /// The sent date: the Date header, else INTERNALDATE (RFC 5256 §2.2).
    pub(super) fn date(&self) -> i64 {
        self.keys.sent.unwrap_or(self.entry.internal_date)
    }
}

/// Whether SORT and THREAD understand `charset` (their strings are compared decoded).
pub(super) fn known_charset(charset: &Charset<'_>) -> bool {
    ["US-ASCII", "UTF-8"]
        .iter()
        .any(|c| c.eq_ignore_ascii_case(charset.as_ref()))
}

/// `NO [BADCHARSET (US-ASCII UTF-8)]`.
pub(super) fn bad_charset(tag: Tag<'static>) -> Status<'static> {
    let allowed = ["US-ASCII", "UTF-8"]
        .into_iter()
        .filter_map(|c| Charset::try_from(c).ok())
        .collect();
    no(tag, Some(Code::badcharset(allowed)), "unknown charset")
}

/// `a` against `b` under `criteria`, ties to the lower sequence number.
fn compare(a: &Keyed, b: &Keyed, criteria: &[SortCriterion]) -> Ordering {
    for c in criteria {
        let order = match c.key {
            SortKey::Arrival => a.entry.internal_date.cmp(&b.entry.internal_date),
            SortKey::Date => a.date().cmp(&b.date()),
            SortKey::Size => a.entry.size.cmp(&b.entry.size),
            SortKey::From => a.keys.from.cmp(&b.keys.from),
            SortKey::To => a.keys.to.cmp(&b.keys.to),
            SortKey::Cc => a.keys.cc.cmp(&b.keys.cc),
            SortKey::Subject => a.keys.subject.cmp(&b.keys.subject),
            SortKey::DisplayFrom => a.keys.display_from.cmp(&b.keys.display_from),
            SortKey::DisplayTo => a.keys.display_to.cmp(&b.keys.display_to),
        };
        let order = if c.reverse { order.reverse() } else { order };
        if order != Ordering::Equal {
            return order;
        }
    }
    a.seq.cmp(&b.seq)
}

/// `NO [LIMIT]` or the store's refusal for a failed SORT or THREAD.
pub(super) fn failed(tag: Tag<'static>, command: &str, err: &SearchError) -> Status<'static> {
    match err {
        SearchError::Store(err) => refused(tag, err),
        SearchError::TimeLimit => no(
            tag,
            Some(code("LIMIT")),
            &format!("{command} took too long (imap.max_command_secs): narrow the search"),
        ),
    }
}

impl Session<'_> {
    /// The messages matching `criteria` in sequence order, with their header keys read
    /// when `header` (else left empty), all within `deadline`.
    pub(super) async fn keyed(
        &mut self,
        criteria: &Vec1<SearchKey<'static>>,
        header: bool,
        deadline: tokio::time::Instant,
    ) -> Result<Vec<Keyed>, SearchError> {
        let hits = self.search_within(criteria, deadline).await?;
        let selected = self.selected.as_ref().expect("selected");
        let mailbox = selected.mailbox.id;
        let mut entries: HashMap<i64, store::Entry> = self
            .ctx
            .store
            .mailbox_entries(mailbox)
            .await
            .map_err(SearchError::Store)?
            .into_iter()
            .map(|e| (e.uid, e))
            .collect();
        let selected = self.selected.as_ref().expect("selected");
        let mut out: Vec<Keyed> = hits
            .iter()
            .filter_map(|uid| {
                Some(Keyed {
                    seq: selected.seq_of(*uid)?,
                    entry: entries.remove(uid)?,
                    keys: Sortable::default(),
                })
            })
            .collect();
        if !header {
            return Ok(out);
        }
        let uids: Vec<i64> = out.iter().map(|k| k.entry.uid).collect();
        let ranges = batches(&uids, &selected.uids, CONTENT_BATCH);
        for range in ranges {
            let batch = &uids[range.clone()];
            let (first, last) = (batch[0], batch[batch.len() - 1]);
            // A message that cannot be served sorts with empty keys.
            let contents: Vec<(usize, Vec<u8>)> = self
                .ctx
                .store
                .entry_contents(mailbox, first, last)
                .await
                .map_err(SearchError::Store)?
                .into_iter()
                .filter_map(|(uid, raw)| {
                    let i = range.start + batch.binary_search(&uid).ok()?;
                    Some((i, raw.ok()?))
                })
                .collect();
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let keys = self
                .ctx
                .heavy
                .run(left, move || {
                    let deadline = std::time::Instant::now() + left;
                    let mut keys = Vec::with_capacity(contents.len());
                    for (i, raw) in contents {
                        if std::time::Instant::now() > deadline {
                            return None;
                        }
                        keys.push((i, Sortable::new(message::header(&raw))));
                    }
                    Some(keys)
                })
                .await
                .ok()
                .flatten()
                .ok_or(SearchError::TimeLimit)?;
            for (i, k) in keys {
                out[i].keys = k;
            }
            if tokio::time::Instant::now() > deadline {
                return Err(SearchError::TimeLimit);
            }
        }
        Ok(out)
    }

    /// SORT / UID SORT.
    pub(super) async fn sort(
        &mut self,
        tag: Tag<'static>,
        criteria: Vec1<SortCriterion>,
        charset: &Charset<'static>,
        search: &Vec1<SearchKey<'static>>,
        uid: bool,
    ) -> Status<'static> {
        if !known_charset(charset) {
            return bad_charset(tag);
        }
        let deadline = tokio::time::Instant::now() + self.ctx.config.imap.max_command;
        let header = criteria
            .as_ref()
            .iter()
            .any(|c| !matches!(c.key, SortKey::Arrival | SortKey::Size));
        let keyed = match self.keyed(search, header, deadline).await {
            Ok(k) => k,
            Err(err) => return failed(tag, "SORT", &err),
        };
        let criteria = criteria.into_inner();
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let sorted = self
            .ctx
            .heavy
            .run(left, move || {
                let mut keyed = keyed;
                keyed.sort_by(|a, b| compare(a, b, &criteria));
                keyed
                    .into_iter()
                    .map(|k| {
                        if uid {
                            nz(k.entry.uid)
                        } else {
                            nz(i64::from(k.seq))
                        }
                    })
                    .collect::<Vec<NonZeroU32>>()
            })
            .await;
        match sorted {
            Ok(ids) => {
                self.send_data(Data::Sort(ids, None));
                ok(tag, None, "SORT done")
            }
            Err(_) => failed(tag, "SORT", &SearchError::TimeLimit),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keyed(seq: u32, internal_date: i64, size: i64, raw: &[u8]) -> Keyed {
        Keyed {
            entry: store::Entry {
                uid: i64::from(seq) * 10,
                flags: String::new(),
                modseq: 1,
                internal_date,
                size,
            },
            seq,
            keys: Sortable::new(raw),
        }
    }

    fn sorted(mut ks: Vec<Keyed>, criteria: &[(bool, SortKey)]) -> Vec<u32> {
        let criteria: Vec<SortCriterion> = criteria
            .iter()
            .map(|(reverse, key)| SortCriterion {
                reverse: *reverse,
                key: key.clone(),
            })
            .collect();
        ks.sort_by(|a, b| compare(a, b, &criteria));
        ks.iter().map(|k| k.seq).collect()
    }

    /// imaptest `sort-date`: DATE falls back to INTERNALDATE, compares in UTC; ties by
    /// sequence number, also under REVERSE.
    #[test]
    fn date_falls_back_and_ties_go_by_sequence() {
        let h = 3_600_000;
        let ks = || {
            vec![
                keyed(1, 0, 1, b"Date: Fri, 22 Feb 2008 00:00:00 +0200\r\n\r\n"),
                keyed(2, 0, 1, b"Date: Fri, 22 Feb 2008 02:00:00 +0200\r\n\r\n"),
                keyed(3, 0, 1, b"Date: Fri, 22 Feb 2008 01:00:00 +0200\r\n\r\n"),
                keyed(4, 1_203_638_400_000 - h / 2, 1, b"\r\n"),
            ]
        };
        assert_eq!(sorted(ks(), &[(false, SortKey::Date)]), [1, 3, 4, 2]);
        assert_eq!(sorted(ks(), &[(true, SortKey::Date)]), [2, 4, 3, 1]);
        assert_eq!(sorted(ks(), &[(false, SortKey::Size)]), [1, 2, 3, 4]);
        assert_eq!(sorted(ks(), &[(true, SortKey::Size)]), [1, 2, 3, 4]);
    }

    /// The key `key` of `k`, for comparing groups.
    fn value(key: &SortKey, k: &Keyed) -> String {
        match key {
            SortKey::Arrival => format!("{:020}", k.entry.internal_date),
            SortKey::Date => format!("{:020}", k.date()),
            SortKey::Size => format!("{:020}", k.entry.size),
            SortKey::From => k.keys.from.clone(),
            SortKey::To => k.keys.to.clone(),
            SortKey::Cc => k.keys.cc.clone(),
            SortKey::Subject => k.keys.subject.clone(),
            SortKey::DisplayFrom => k.keys.display_from.clone(),
            SortKey::DisplayTo => k.keys.display_to.clone(),
        }
    }

    proptest::proptest! {
        /// For any key, REVERSE reverses the order of the groups of equal keys and leaves
        /// each group in sequence order; every message is answered once.
        #[test]
        fn reverse_reverses_groups_not_ties(
            mails in proptest::collection::vec(
                (
                    0i64..4,
                    0i64..4,
                    proptest::sample::select(vec!["a@x", "B <b@x>", "=?utf-8?q?=C3=A9?= <e@x>", "e@x"]),
                    proptest::sample::select(vec!["Re: a", "A", "[l] b", "é", "Fwd: E"]),
                    proptest::option::of(0i64..3),
                ),
                0..24,
            ),
            key in proptest::sample::select(vec![
                SortKey::Arrival, SortKey::Date, SortKey::Size, SortKey::From, SortKey::To,
                SortKey::Cc, SortKey::Subject, SortKey::DisplayFrom, SortKey::DisplayTo,
            ]),
        ) {
            let ks = || -> Vec<Keyed> {
                mails
                    .iter()
                    .enumerate()
                    .map(|(i, (date, size, from, subject, sent))| {
                        let sent = sent.map_or(String::new(), |d| {
                            format!("Date: Mon, {} Nov 2026 10:00:00 +0000\r\n", d + 1)
                        });
                        let raw = format!(
                            "From: {from}\r\nTo: {from}\r\nCc: {from}\r\nSubject: {subject}\r\n{sent}\r\n"
                        );
                        keyed(u32::try_from(i).expect("small") + 1, *date, *size, raw.as_bytes())
                    })
                    .collect()
            };
            let groups = |reverse: bool| -> Vec<(String, Vec<u32>)> {
                let mut sorted_ks = ks();
                let criteria = [SortCriterion { reverse, key: key.clone() }];
                sorted_ks.sort_by(|a, b| compare(a, b, &criteria));
                let mut out: Vec<(String, Vec<u32>)> = Vec::new();
                for k in &sorted_ks {
                    let v = value(&key, k);
                    match out.last_mut() {
                        Some((last, seqs)) if *last == v => seqs.push(k.seq),
                        _ => out.push((v, vec![k.seq])),
                    }
                }
                out
            };
            let forward = groups(false);
            let mut backward = groups(true);
            backward.reverse();
            proptest::prop_assert_eq!(&forward, &backward);
            let mut all: Vec<u32> = forward.iter().flat_map(|(_, s)| s.iter().copied()).collect();
            for (_, seqs) in &forward {
                proptest::prop_assert!(seqs.windows(2).all(|w| w[0] < w[1]));
            }
            all.sort_unstable();
            proptest::prop_assert_eq!(all, (1..=u32::try_from(mails.len()).expect("small")).collect::<Vec<_>>());
        }
    }

    #[test]
    fn addresses_and_display_names() {
        let ks = || {
            vec![
                keyed(1, 0, 1, b"From: foo bar <a@b.c>\r\n\r\n"),
                keyed(2, 0, 1, b"From: b@c.d\r\n\r\n"),
                keyed(3, 0, 1, b"From: d\r\n\r\n"),
                keyed(4, 0, 1, b"From: =?iso-8859-1?q?foo_aar?= <e@f.g>\r\n\r\n"),
            ]
        };
        assert_eq!(sorted(ks(), &[(false, SortKey::DisplayFrom)]), [2, 3, 4, 1]);
        assert_eq!(sorted(ks(), &[(false, SortKey::From)]), [1, 2, 3, 4]);
        assert_eq!(
            sorted(ks(), &[(false, SortKey::Cc), (true, SortKey::Arrival)]),
            [1, 2, 3, 4]
        );
    }
}
