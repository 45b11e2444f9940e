//! The audit chain: an append-only log where each entry carries the SHA-256 of its own
//! canonical form and of its predecessor, so that a changed, deleted, inserted or reordered
//! row is found by [`Store::verify_audit`].
//!
//! Canonical form of an entry: the JSON array
//! `[seq, at, actor, action, [subjects…], details, prev_hash]` as serde_json writes it —
//! object keys sorted (serde_json's map is a BTreeMap), no whitespace. The first entry's
//! `prev_hash` is 64 zeros. `audit_head` keeps the newest seq and hash, updated in the same
//! transaction, so that cutting entries off the end is detected as well.
//!
//! Appends are serialised: SQLite has one writer; on PostgreSQL a transaction-scoped
//! advisory lock orders appends from several ratspost nodes.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::db::with_pool;
use crate::{Error, ErrorKind, Millis, Result, Store, now_millis};

mod search;
pub use search::{AuditCounts, AuditFilter};

/// `prev_hash` of the first entry.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Key of the PostgreSQL advisory lock that orders appends ("ratspost audit").
pub(crate) const PG_LOCK: i64 = 0x7261_7473_6175_6474;

/// One audit entry as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEntry {
    /// Position in the chain, from 1.
    pub seq: i64,
    /// When (epoch milliseconds).
    pub at: Millis,
    /// Who: a login, `cli`, or `system`.
    pub actor: String,
    /// What, e.g. `user.created`, `exemption.approved`, `forward.delivered`.
    pub action: String,
    /// Ids of what it concerns, e.g. `user:anna`, `exemption:12`, `message:345`.
    pub subjects: Vec<String>,
    /// Structured details (never secrets or message content).
    pub details: serde_json::Value,
    /// Hash of the previous entry.
    pub prev_hash: String,
    /// Hash of this entry's canonical form.
    pub hash: String,
}

/// An entry to append.
#[derive(Debug, Clone)]
pub struct NewAuditEntry {
    /// Who.
    pub actor: String,
    /// What.
    pub action: String,
    /// Ids of what it concerns.
    pub subjects: Vec<String>,
    /// Details (an object).
    pub details: serde_json::Value,
}

impl NewAuditEntry {
    /// The stored forms of subjects and details. serde_json's default map is ordered by key,
    /// so the details text is canonical.
    pub(crate) fn texts(&self) -> Result<(String, String)> {
        if !self.details.is_object() {
            return Err(Error::new(
                ErrorKind::Invalid,
                "audit details must be a JSON object",
            ));
        }
        let subjects = serde_json::to_string(&self.subjects).unwrap_or_else(|_| "[]".to_owned());
        Ok((self.details.to_string(), subjects))
    }
}

/// Appends `$entry` inside the open write transaction `$tx` (see `with_write_tx!`, which
/// takes the PostgreSQL advisory lock first); evaluates to `(seq, prev_hash, hash)`.
/// Callers that change state append their audit entry this way, so that the change and its
/// record commit together or not at all.
macro_rules! audit_append {
    ($tx:ident, $entry:expr, $at:expr, $details_text:expr, $subjects_text:expr) => {{
        let entry: &$crate::audit::NewAuditEntry = $entry;
        let head: Option<(i64, String)> =
            sqlx::query_as("SELECT seq, hash FROM audit_head WHERE id = 1")
                .fetch_optional(&mut *$tx)
                .await?;
        let (last, prev_hash) = head.unwrap_or((0, $crate::audit::GENESIS.to_owned()));
        let seq = last + 1;
        let hash = $crate::audit::entry_hash(
            seq,
            $at,
            &entry.actor,
            &entry.action,
            &entry.subjects,
            &entry.details,
            &prev_hash,
        );
        sqlx::query(
            "INSERT INTO audit_log (seq, at, actor, action, subjects, details, prev_hash, hash)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(seq)
        .bind($at)
        .bind(&entry.actor)
        .bind(&entry.action)
        .bind(&$subjects_text)
        .bind(&$details_text)
        .bind(&prev_hash)
        .bind(&hash)
        .execute(&mut *$tx)
        .await?;
        sqlx::query(
            "INSERT INTO audit_head (id, seq, hash) VALUES (1, $1, $2)
             ON CONFLICT (id) DO UPDATE SET seq = excluded.seq, hash = excluded.hash",
        )
        .bind(seq)
        .bind(&hash)
        .execute(&mut *$tx)
        .await?;
        for subject in &entry.subjects {
            sqlx::query(
                "INSERT INTO audit_subjects (subject, seq) VALUES ($1, $2) ON CONFLICT DO NOTHING",
            )
            .bind(subject)
            .bind(seq)
            .execute(&mut *$tx)
            .await?;
        }
        (seq, prev_hash, hash)
    }};
}
pub(crate) use audit_append;

/// Result of a verification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuditCheck {
    /// Every entry and the head agree, and so does every anchor that could be checked.
    Intact {
        /// Number of entries kept (after retention: from `first` on).
        entries: i64,
        /// Hash of the newest entry (or [`GENESIS`] when empty): keep it outside the database
        /// to anchor the chain.
        head: String,
        /// Sequence number of the oldest entry kept (1 unless `retention.audit_days` removed
        /// older ones).
        first: i64,
        /// Anchors that were compared with an entry and matched.
        anchors_matched: usize,
        /// Anchors older than the oldest entry kept (removed by retention): not checkable.
        anchors_before_start: usize,
    },
    /// The first entry (or anchor) that does not fit, and why.
    Broken {
        /// Sequence number of the first bad entry (for a truncated log: the head's seq, or
        /// the anchor's).
        seq: i64,
        /// What is wrong.
        reason: String,
    },
}

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
    anchor_times: Vec<(i64, Millis)>,
    /// Whether a cut must be covered by an anchor (verification) or may be the newest
    /// thing (signing: the checkpoint about to be made covers it).
    cut_needs_cover: bool,
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
        verifier.anchor_times = anchors
            .iter()
            .filter_map(|a| Some((a.seq, a.at?)))
            .collect();
        verifier
    }

    /// For signing at `now`: a cut need not be covered yet (the checkpoint about to be made
    /// covers it), but no entry may be dated after `now`.
    #[must_use]
    pub fn for_signing(mut self, now: Millis) -> Self {
        self.cut_needs_cover = false;
        self.now = Some(now);
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
            anchor_times: anchors
                .iter()
                .filter_map(|a| Some((a.seq, a.at?)))
                .collect(),
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
    /// (through_seq, through_hash) if so. Its `before` must lie at least `audit_days` (one
    /// day or more) before its own time, and no anchor older than the cut's end may have
    /// been made at or after `before`: at an anchor's time its seq was the head, so every
    /// later entry — the cut's last among them — is younger than the anchor.
    fn judge_cut(&self, e: &AuditEntry) -> Result<(i64, String), String> {
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
                "it records a cut of entries younger than retention allows ({days} days before its own time)"
            ));
        }
        if let Some((seq, at)) = self
            .anchor_times
            .iter()
            .find(|(seq, at)| *seq < through && *at >= before)
        {
            return Err(format!(
                "it cut entries up to {through} as older than {before} ms, but a checkpoint of entry {seq} was made at {at} ms, before they were written: the cut was forged"
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

#[derive(sqlx::FromRow)]
struct Row {
    seq: i64,
    at: i64,
    actor: String,
    action: String,
    subjects: String,
    details: String,
    prev_hash: String,
    hash: String,
}

/// The SHA-256 (hex) of an entry's canonical form.
#[must_use]
pub fn entry_hash(
    seq: i64,
    at: Millis,
    actor: &str,
    action: &str,
    subjects: &[String],
    details: &serde_json::Value,
    prev_hash: &str,
) -> String {
    let canonical = serde_json::json!([seq, at, actor, action, subjects, details, prev_hash]);
    hex::encode(Sha256::digest(canonical.to_string().as_bytes()))
}

impl Store {
    /// Appends an entry to the chain; returns it with its sequence number and hash.
    ///
    /// # Errors
    /// `Invalid` when `details` is not a JSON object; `Unavailable` when the database fails.
    pub async fn append_audit(&self, entry: &NewAuditEntry) -> Result<AuditEntry> {
        let (details_text, subjects_text) = entry.texts()?;
        let at = now_millis();
        let (seq, prev_hash, hash) = crate::db::with_write_tx!(&self.db, tx => {
            let appended = audit_append!(tx, entry, at, details_text, subjects_text);
            tx.commit().await?;
            appended
        });
        Ok(AuditEntry {
            seq,
            at,
            actor: entry.actor.clone(),
            action: entry.action.clone(),
            subjects: entry.subjects.clone(),
            details: entry.details.clone(),
            prev_hash,
            hash,
        })
    }

    /// Entries in chain order; `after` skips entries up to that seq, `limit` caps the count.
    ///
    /// # Errors
    /// `Unavailable` when the database fails.
    pub async fn list_audit(&self, after: i64, limit: i64) -> Result<Vec<AuditEntry>> {
        let rows: Vec<Row> = with_pool!(&self.db, read pool => {
            sqlx::query_as(
                "SELECT seq, at, actor, action, subjects, details, prev_hash, hash
                 FROM audit_log WHERE seq > $1 ORDER BY seq LIMIT $2",
            )
            .bind(after)
            .bind(limit)
            .fetch_all(pool)
            .await?
        });
        Ok(rows.into_iter().map(entry_from_row).collect())
    }

    /// The newest entry's seq and hash (`(0, GENESIS)` for an empty log): what a checkpoint
    /// signs.
    ///
    /// # Errors
    /// `Unavailable` when the database fails.
    pub async fn audit_head(&self) -> Result<(i64, String)> {
        let head: Option<(i64, String)> = with_pool!(&self.db, read pool => {
            sqlx::query_as("SELECT seq, hash FROM audit_head WHERE id = 1")
                .fetch_optional(pool)
                .await?
        });
        Ok(head.unwrap_or((0, GENESIS.to_owned())))
    }

    /// Where the kept part of the chain starts (see [`Store::prune_audit`]).
    ///
    /// # Errors
    /// `Unavailable` when the database fails.
    pub async fn audit_start(&self) -> Result<ChainStart> {
        let base: Option<(i64, String)> = with_pool!(&self.db, read pool => {
            sqlx::query_as("SELECT seq, hash FROM audit_base WHERE id = 1")
                .fetch_optional(pool)
                .await?
        });
        Ok(base.map_or_else(ChainStart::default, |(seq, hash)| ChainStart { seq, hash }))
    }

    /// Recomputes the whole chain and compares it with the head.
    ///
    /// # Errors
    /// `Unavailable` when the database fails (a broken chain is not an error but a
    /// [`AuditCheck::Broken`]).
    pub async fn verify_audit(&self) -> Result<AuditCheck> {
        self.verify_audit_anchored(&[]).await
    }

    /// Recomputes the whole chain, compares it with the head and with `anchors` (signed
    /// checkpoints kept outside the database): a history rewritten with consistent hashes
    /// is found at the first anchor it no longer matches, a truncated one at the first
    /// anchor beyond its end.
    ///
    /// # Errors
    /// `Unavailable` when the database fails.
    pub async fn verify_audit_anchored(&self, anchors: &[Anchor]) -> Result<AuditCheck> {
        let start = self.audit_start().await?;
        let after = start.seq;
        let mut verifier = ChainVerifier::new(start, anchors);
        self.feed(after, &mut verifier).await?;
        let head = self.audit_head().await?;
        Ok(verifier.finish(Some(head)))
    }

    /// Checks the chain before a checkpoint of it is signed at `now`, against `anchors`
    /// (the checkpoints signed before, with their times): from the newest anchor the log
    /// still holds, only what came since (cheap: any change at or before it changes its
    /// hash); else the whole chain. A cut of the log's start must be one retention can
    /// explain (see [`ChainVerifier`]); it need not be covered yet, the checkpoint about to
    /// be made covers it. No entry may be dated after `now`.
    ///
    /// # Errors
    /// `Unavailable` when the database fails.
    pub async fn verify_audit_for_signing(
        &self,
        anchors: &[Anchor],
        now: Millis,
    ) -> Result<AuditCheck> {
        if let Some(newest) = anchors.iter().filter(|a| a.seq > 0).max_by_key(|a| a.seq) {
            let at: Option<(String,)> = with_pool!(&self.db, read pool => {
                sqlx::query_as("SELECT hash FROM audit_log WHERE seq = $1")
                    .bind(newest.seq)
                    .fetch_optional(pool)
                    .await?
            });
            match at {
                Some((found,)) if found == newest.hash => {
                    let mut verifier =
                        ChainVerifier::after(newest.seq, &newest.hash, anchors).for_signing(now);
                    self.feed(newest.seq, &mut verifier).await?;
                    let head = self.audit_head().await?;
                    return Ok(verifier.finish(Some(head)));
                }
                Some((found,)) => {
                    return Ok(AuditCheck::Broken {
                        seq: newest.seq,
                        reason: format!(
                            "{} records entry {} with hash {}, but the log holds {found} there: the history up to this entry was rewritten",
                            newest.label, newest.seq, newest.hash
                        ),
                    });
                }
                // Cut since: the whole chain, with the cut judged against the anchors.
                None => {}
            }
        }
        let start = self.audit_start().await?;
        let after = start.seq;
        let mut verifier = ChainVerifier::new(start, anchors).for_signing(now);
        self.feed(after, &mut verifier).await?;
        let head = self.audit_head().await?;
        Ok(verifier.finish(Some(head)))
    }

    /// Feeds every entry after `after` to `verifier`, page by page, until the end or the
    /// first problem.
    async fn feed(&self, mut after: i64, verifier: &mut ChainVerifier) -> Result<()> {
        const PAGE: i64 = 1000;
        loop {
            let rows: Vec<Row> = with_pool!(&self.db, read pool => {
                sqlx::query_as(
                    "SELECT seq, at, actor, action, subjects, details, prev_hash, hash
                     FROM audit_log WHERE seq > $1 ORDER BY seq LIMIT $2",
                )
                .bind(after)
                .bind(PAGE)
                .fetch_all(pool)
                .await?
            });
            let done = rows.len() < usize::try_from(PAGE).unwrap_or(usize::MAX);
            for row in rows {
                after = row.seq;
                match parsed(row) {
                    Some(entry) => verifier.push(&entry),
                    None => verifier.push_unreadable(after),
                }
            }
            if done || verifier.is_broken() {
                return Ok(());
            }
        }
    }

    /// Removes the entries recorded before `before` (retention: `audit_days` before now),
    /// keeping the newest removed entry's seq and hash as the start of the rest, and records
    /// the cut as an `audit.pruned` entry (by `actor`) in the same transaction. Returns the
    /// last removed seq, or `None` when nothing was old enough.
    ///
    /// # Errors
    /// `Unavailable` when the database fails.
    pub async fn prune_audit(
        &self,
        before: Millis,
        audit_days: u32,
        actor: &str,
    ) -> Result<Option<i64>> {
        let at = now_millis();
        Ok(crate::db::with_write_tx!(&self.db, tx => {
            // The newest entry is never removed: the head must stay verifiable.
            let cut: Option<(i64, String)> = sqlx::query_as(
                "SELECT seq, hash FROM audit_log
                 WHERE seq = (SELECT MAX(seq) FROM audit_log WHERE at < $1
                              AND seq < (SELECT MAX(seq) FROM audit_log))",
            )
            .bind(before)
            .fetch_optional(&mut *tx)
            .await?;
            match cut {
                None => None,
                Some((seq, hash)) => {
                    let removed = sqlx::query("DELETE FROM audit_log WHERE seq <= $1")
                        .bind(seq)
                        .execute(&mut *tx)
                        .await?
                        .rows_affected();
                    sqlx::query("DELETE FROM audit_subjects WHERE seq <= $1")
                        .bind(seq)
                        .execute(&mut *tx)
                        .await?;
                    sqlx::query(
                        "INSERT INTO audit_base (id, seq, hash) VALUES (1, $1, $2)
                         ON CONFLICT (id) DO UPDATE SET seq = excluded.seq, hash = excluded.hash",
                    )
                    .bind(seq)
                    .bind(&hash)
                    .execute(&mut *tx)
                    .await?;
                    let entry = NewAuditEntry {
                        actor: actor.to_owned(),
                        action: PRUNED_ACTION.to_owned(),
                        subjects: Vec::new(),
                        details: serde_json::json!({
                            "through_seq": seq,
                            "through_hash": hash,
                            "removed": removed,
                            "before": before,
                            "audit_days": audit_days,
                        }),
                    };
                    let (details_text, subjects_text) = entry.texts()?;
                    audit_append!(tx, &entry, at, details_text, subjects_text);
                    tx.commit().await?;
                    Some(seq)
                }
            }
        }))
    }
}

/// A row as an entry; `None` when its subjects or details are not valid JSON.
fn parsed(row: Row) -> Option<AuditEntry> {
    let subjects = serde_json::from_str::<Vec<String>>(&row.subjects).ok()?;
    let details = serde_json::from_str::<serde_json::Value>(&row.details).ok()?;
    Some(AuditEntry {
        seq: row.seq,
        at: row.at,
        actor: row.actor,
        action: row.action,
        subjects,
        details,
        prev_hash: row.prev_hash,
        hash: row.hash,
    })
}

fn entry_from_row(row: Row) -> AuditEntry {
    AuditEntry {
        seq: row.seq,
        at: row.at,
        actor: row.actor,
        action: row.action,
        subjects: serde_json::from_str(&row.subjects).unwrap_or_default(),
        details: serde_json::from_str(&row.details).unwrap_or(serde_json::Value::Null),
        prev_hash: row.prev_hash,
        hash: row.hash,
    }
}
