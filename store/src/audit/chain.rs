//! Judging a chain: entry by entry against its own hashes, against anchors kept outside
//! the database (signed checkpoints, issue #15 §1), and a cut of its start against what
//! retention can explain. The database's verification, the signer's check and the
//! verification of an export feed entries through the same [`ChainVerifier`].

use super::{AuditCheck, AuditEntry, GENESIS, entry_hash};
use crate::Millis;

/// A (sequence number, hash) pair known from outside the database: a signed checkpoint
/// (issue #15 §1). The chain must hold exactly this hash at this position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Anchor {
    /// Position in the chain.
    pub seq: i64,
    /// SHA-256 (hex) the entry at `seq` must have.
    pub hash: String,
    /// How people know it, for the report ("checkpoint of 1 Dec 2026 10:00, line 3 of …").
    pub label: String,
    /// When it was made (epoch ms), if known: the entry at `seq` cannot be younger, and
    /// every later entry was appended after it (a cut of the log's start is checked
    /// against that).
    pub at: Option<Millis>,
    /// The time of the entry at `seq` itself (epoch ms), as the signer read it from a log it
    /// had verified: a cut through `seq` is evidenced by it.
    pub entry_at: Option<Millis>,
}

/// How far clocks of several nodes may disagree (ms) when an entry's time is compared with
/// a checkpoint's.
pub const CLOCK_SKEW: Millis = 5 * 60 * 1000;

/// One day in milliseconds.
const DAY: Millis = 86_400_000;

/// Where the kept part of the chain starts: after entry `seq` with hash `hash` (entry 0 and
/// [`GENESIS`] when nothing was removed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainStart {
    /// The last removed entry's sequence number (0: none removed).
    pub seq: i64,
    /// Its hash.
    pub hash: String,
}

impl Default for ChainStart {
    fn default() -> Self {
        Self {
            seq: 0,
            hash: GENESIS.to_owned(),
        }
    }
}

/// The action of the entry that records a cut of the log's start ([`Store::prune_audit`]).
pub const PRUNED_ACTION: &str = "audit.pruned";

/// Checks a chain entry by entry, in order, against its own hashes and against anchors. The
/// database's verification and the verification of an export (`ratspost audit verify
/// --export`) both feed entries through it, so they judge alike.
#[derive(Debug)]
pub struct ChainVerifier {
    start: ChainStart,
    expected_seq: i64,
    prev_hash: String,
    /// Anchors by position, each position's in the order given.
    anchors: std::collections::BTreeMap<i64, Vec<Anchor>>,
    matched: usize,
    before_start: usize,
    /// The newest `audit.pruned` entry's record of where it cut: (seq, hash), and its own seq.
    last_cut: Option<(i64, String)>,
    last_cut_entry: i64,
    /// The highest position an anchor matched at.
    matched_up_to: i64,
    broken: Option<(i64, String)>,
    /// The start is a trusted position (a checkpoint), not a recorded cut.
    trusted_start: bool,
    /// (seq, time) of every anchor with a time, for judging cuts.
    anchor_times: Vec<AnchorTimes>,
    /// Whether a cut must be covered by an anchor (verification) or may be the newest
    /// thing (signing: the checkpoint about to be made covers it).
    cut_needs_cover: bool,
    /// Which cuts may be believed.
    policy: CutPolicy,
    /// The previous entry's time: times never go back by more than [`CLOCK_SKEW`].
    last_at: Option<Millis>,
    /// Anchor times by seq, and how far an entry's seq has passed them: the latest time a
    /// checkpoint was made while the log ended before the entry (it is not older).
    by_seq: Vec<(i64, Millis)>,
    passed: usize,
    made_before: Option<Millis>,
    /// The signer's clock: no entry may be dated later (plus [`CLOCK_SKEW`]).
    now: Option<Millis>,
}

impl ChainVerifier {
    /// A verifier for the part of a chain after a position already proved (the newest
    /// checkpoint's): entry `seq` has hash `hash`, and what follows must chain to it;
    /// `anchors` only lend their times (for judging a cut).
    #[must_use]
    pub fn after(seq: i64, hash: &str, anchors: &[Anchor]) -> Self {
        let mut verifier = Self::new(
            ChainStart {
                seq,
                hash: hash.to_owned(),
            },
            &[],
        );
        verifier.trusted_start = true;
        verifier.anchor_times = AnchorTimes::of(anchors);
        verifier
    }

    /// For signing at `now`: a cut need not be covered yet (the checkpoint about to be made
    /// covers it), but no entry may be dated after `now`.
    #[must_use]
    pub fn for_signing(mut self, now: Millis, policy: CutPolicy) -> Self {
        self.cut_needs_cover = false;
        self.now = Some(now);
        self.policy = policy;
        self
    }

    /// Believes only the cuts `policy` allows (the installation's `retention.audit_days`).
    #[must_use]
    pub fn with_policy(mut self, policy: CutPolicy) -> Self {
        self.policy = policy;
        self
    }

    /// A verifier for a chain kept from after `start`, with `anchors` to compare.
    #[must_use]
    pub fn new(start: ChainStart, anchors: &[Anchor]) -> Self {
        let mut by_seq: std::collections::BTreeMap<i64, Vec<Anchor>> =
            std::collections::BTreeMap::new();
        let mut before_start = 0;
        for anchor in anchors {
            if anchor.seq < start.seq {
                before_start += 1;
            } else {
                by_seq.entry(anchor.seq).or_default().push(anchor.clone());
            }
        }
        let mut verifier = Self {
            expected_seq: start.seq + 1,
            prev_hash: start.hash.clone(),
            start,
            anchors: by_seq,
            matched: 0,
            before_start,
            last_cut: None,
            last_cut_entry: 0,
            matched_up_to: 0,
            broken: None,
            trusted_start: false,
            anchor_times: AnchorTimes::of(anchors),
            policy: CutPolicy::Stated,
            last_at: None,
            by_seq: {
                let mut by_seq: Vec<(i64, Millis)> = anchors
                    .iter()
                    .filter_map(|a| Some((a.seq, a.at?)))
                    .collect();
                by_seq.sort_unstable();
                by_seq
            },
            passed: 0,
            made_before: None,
            cut_needs_cover: true,
            now: None,
        };
        // An anchor on the start itself (an empty log's, or one on the cut) is checked
        // against the recorded start.
        let (seq, hash) = (verifier.start.seq, verifier.start.hash.clone());
        verifier.check_anchors(seq, &hash, Millis::MIN);
        verifier
    }

    /// Whether any anchor was given at all (before the start or not).
    fn anchors_given(&self) -> bool {
        self.matched > 0 || self.before_start > 0 || !self.anchors.is_empty()
    }

    /// Whether a problem was found (then further entries are ignored).
    #[must_use]
    pub fn is_broken(&self) -> bool {
        self.broken.is_some()
    }

    /// Takes the next entry in chain order.
    pub fn push(&mut self, entry: &AuditEntry) {
        if self.broken.is_some() {
            return;
        }
        if let Some(reason) = self.check_entry(entry) {
            self.broken = Some((self.expected_seq.min(entry.seq), reason));
            return;
        }
        if let Some(now) = self.now
            && entry.at > now + CLOCK_SKEW
        {
            self.broken = Some((entry.seq, "it is dated in the future".to_owned()));
            return;
        }
        if let Some(reason) = self.check_time(entry) {
            self.broken = Some((entry.seq, reason));
            return;
        }
        if entry.action == PRUNED_ACTION {
            match self.judge_cut(entry) {
                Ok((seq, hash)) => {
                    self.last_cut = Some((seq, hash));
                    self.last_cut_entry = entry.seq;
                }
                Err(reason) => {
                    self.broken = Some((entry.seq, reason));
                    return;
                }
            }
        }
        self.check_anchors(entry.seq, &entry.hash, entry.at);
        self.prev_hash.clone_from(&entry.hash);
        self.expected_seq += 1;
    }

    /// Why `e`'s time cannot be true, if it cannot: entries are appended in time order (up
    /// to [`CLOCK_SKEW`] between nodes), and after every checkpoint made while the log ended
    /// before them.
    fn check_time(&mut self, e: &AuditEntry) -> Option<String> {
        while let Some(&(seq, made)) = self.by_seq.get(self.passed) {
            if seq >= e.seq {
                break;
            }
            self.made_before = Some(self.made_before.map_or(made, |m| m.max(made)));
            self.passed += 1;
        }
        let previous = self.last_at.replace(e.at);
        if previous.is_some_and(|p| e.at < p - CLOCK_SKEW) {
            return Some("it is dated before the entry before it: its time was changed".to_owned());
        }
        if self.made_before.is_some_and(|m| e.at < m - CLOCK_SKEW) {
            return Some(
                "it is dated before a checkpoint made while the log still ended before it: its time was changed"
                    .to_owned(),
            );
        }
        None
    }

    /// A row whose subjects or details were not valid JSON: the row was changed.
    pub fn push_unreadable(&mut self, seq: i64) {
        if self.broken.is_none() {
            self.broken = Some((
                self.expected_seq.min(seq),
                "its subjects or details are not valid JSON (the row was changed)".to_owned(),
            ));
        }
    }

    /// Whether the `audit.pruned` entry `e` records a cut that retention can explain:
    /// (through_seq, through_hash) if so. A cut ends at a checkpointed entry: an anchor at
    /// `through_seq` with that hash, whose entry was written before the cut-off `before`
    /// (the evidence — [`crate::Store::prune_audit`] cuts only there). `before` lies at least
    /// `audit_days` (one day or more) behind the record's own time, and no anchor
    /// contradicts it: none of an entry up to `through_seq` written at or after `before`,
    /// none of an earlier entry made at or after `before` (every later entry, the cut's
    /// last among them, is younger than that checkpoint).
    fn judge_cut(&self, e: &AuditEntry) -> Result<(i64, String), String> {
        if self.policy == CutPolicy::KeepForever {
            return Err(
                "it records a cut of the log's start, but this installation keeps its log for ever (retention.audit_days is not set)"
                    .to_owned(),
            );
        }
        let field = |name: &str| e.details.get(name);
        let (Some(through), Some(hash), Some(before), Some(days)) = (
            field("through_seq").and_then(serde_json::Value::as_i64),
            field("through_hash").and_then(serde_json::Value::as_str),
            field("before").and_then(serde_json::Value::as_i64),
            field("audit_days").and_then(serde_json::Value::as_i64),
        ) else {
            return Err(format!(
                "its record of a cut lacks through_seq, through_hash, before or audit_days: not written by {PRUNED_ACTION}"
            ));
        };
        if days < 1 || before > e.at.saturating_sub(days.saturating_mul(DAY)) {
            return Err(format!(
                "it records a cut of entries younger than retention allows ({days} day(s) before its own time)"
            ));
        }
        if let CutPolicy::Days(kept) = self.policy
            && days < i64::from(kept)
        {
            return Err(format!(
                "it records a cut after {days} day(s), but this installation keeps its audit log for {kept} days (retention.audit_days)"
            ));
        }
        for t in &self.anchor_times {
            if t.seq <= through && t.entry_at.is_some_and(|at| at >= before) {
                return Err(format!(
                    "it cut entries up to {through} as older than {before} ms, but a checkpoint records entry {} written at {} ms: the cut was forged",
                    t.seq,
                    t.entry_at.unwrap_or_default()
                ));
            }
            if t.seq < through && t.made.is_some_and(|at| at >= before) {
                return Err(format!(
                    "it cut entries up to {through} as older than {before} ms, but a checkpoint of entry {} was made at {} ms, before they were written: the cut was forged",
                    t.seq,
                    t.made.unwrap_or_default()
                ));
            }
        }
        let evidenced = self.anchor_times.iter().any(|t| {
            t.seq == through && t.hash == hash && t.entry_at.is_some_and(|at| at < before)
        });
        if !evidenced {
            return Err(format!(
                "it records a cut through entry {through}, but no checkpoint of that entry shows it older than the cut-off: the cut is not evidenced (verify with the checkpoint file, which holds it, or the checkpoint mails of that time)"
            ));
        }
        Ok((through, hash.to_owned()))
    }

    fn check_anchors(&mut self, seq: i64, hash: &str, entry_at: Millis) {
        let Some(anchors) = self.anchors.remove(&seq) else {
            return;
        };
        for anchor in anchors {
            if anchor.hash == hash && anchor.at.is_some_and(|at| entry_at > at + CLOCK_SKEW) {
                if self.broken.is_none() {
                    self.broken = Some((
                        seq,
                        format!(
                            "{} was made before entry {seq}'s own time: the entry's time was changed",
                            anchor.label
                        ),
                    ));
                }
            } else if anchor.hash == hash {
                self.matched += 1;
                self.matched_up_to = self.matched_up_to.max(seq);
            } else if self.broken.is_none() {
                self.broken = Some((
                    seq,
                    format!(
                        "{} records entry {seq} with hash {}, but the log holds {hash} there: the history up to this entry was rewritten, reordered or replaced",
                        anchor.label, anchor.hash
                    ),
                ));
            }
        }
    }

    fn check_entry(&self, e: &AuditEntry) -> Option<String> {
        let expected_seq = self.expected_seq;
        if e.seq != expected_seq {
            return Some(format!(
                "entry {expected_seq} is missing (next is {})",
                e.seq
            ));
        }
        if e.prev_hash != self.prev_hash {
            return Some("its previous-hash does not match the entry before it (entries removed, inserted or reordered)".to_owned());
        }
        let hash = entry_hash(
            e.seq,
            e.at,
            &e.actor,
            &e.action,
            &e.subjects,
            &e.details,
            &e.prev_hash,
        );
        if hash != e.hash {
            return Some("its content does not match its hash (the row was changed)".to_owned());
        }
        None
    }

    /// The verdict, given the head recorded beside the log (`None`: compare with nothing, as
    /// for an export, whose end is proved only by its anchors).
    #[must_use]
    pub fn finish(mut self, head: Option<(i64, String)>) -> AuditCheck {
        if let Some((seq, reason)) = self.broken.take() {
            return AuditCheck::Broken { seq, reason };
        }
        let last = self.expected_seq - 1;
        if let Some((head_seq, head_hash)) = head
            && (head_seq != last || head_hash != self.prev_hash)
        {
            return AuditCheck::Broken {
                seq: head_seq.max(last),
                reason: format!(
                    "the log ends at entry {last} but its head records entry {head_seq}: entries were removed from the end or the head was changed"
                ),
            };
        }
        if let Some((&seq, anchors)) = self.anchors.iter().next() {
            return AuditCheck::Broken {
                seq,
                reason: format!(
                    "{} records entry {seq}, but the log ends at entry {last}: entries were removed from the end",
                    anchors[0].label
                ),
            };
        }
        if self.start.seq > 0 && !self.trusted_start {
            let recorded = self.last_cut.as_ref().map(|(s, h)| (*s, h.as_str()));
            if recorded != Some((self.start.seq, self.start.hash.as_str())) {
                return AuditCheck::Broken {
                    seq: self.start.seq + 1,
                    reason: format!(
                        "the log starts after entry {}, but no {PRUNED_ACTION} entry records a cut there: entries were removed from the start",
                        self.start.seq
                    ),
                };
            }
            // A cut anyone with database access could fake — drop the start, append an
            // audit.pruned entry after the newest checkpoint — is believed only when a
            // checkpoint covers the entry that records it (the daemon writes one right after
            // each cut). Without anchors nothing is believed anyway.
            if self.cut_needs_cover
                && self.anchors_given()
                && self.matched_up_to < self.last_cut_entry
            {
                return AuditCheck::Broken {
                    seq: self.last_cut_entry,
                    reason: format!(
                        "entry {} records a cut of the log's start, but no checkpoint covers it: the cut may have been forged (use a checkpoint written after it)",
                        self.last_cut_entry
                    ),
                };
            }
        }
        AuditCheck::Intact {
            entries: last - self.start.seq,
            head: self.prev_hash,
            first: self.start.seq + 1,
            anchors_matched: self.matched,
            anchors_before_start: self.before_start,
        }
    }
}

/// What an anchor tells about times, kept for judging cuts (also of anchors before the
/// kept start).
#[derive(Debug)]
struct AnchorTimes {
    seq: i64,
    hash: String,
    /// When the checkpoint was made.
    made: Option<Millis>,
    /// When its entry was written.
    entry_at: Option<Millis>,
}

impl AnchorTimes {
    fn of(anchors: &[Anchor]) -> Vec<Self> {
        anchors
            .iter()
            .map(|a| Self {
                seq: a.seq,
                hash: a.hash.clone(),
                made: a.at,
                entry_at: a.entry_at,
            })
            .collect()
    }
}

/// Which cuts of the log's start a verification believes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CutPolicy {
    /// Those whose record states a retention of a day or more (an export checked where the
    /// installation's configuration is not known).
    Stated,
    /// None: the installation keeps its log for ever (`retention.audit_days` unset).
    KeepForever,
    /// Those of a retention of at least this many days (`retention.audit_days`).
    Days(u32),
}

impl CutPolicy {
    /// The policy of `retention.audit_days` (`None`: for ever).
    #[must_use]
    pub fn of(audit_days: Option<u32>) -> Self {
        audit_days.map_or(Self::KeepForever, Self::Days)
    }
}
