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

mod chain;
mod search;
pub use chain::{Anchor, CLOCK_SKEW, ChainStart, ChainVerifier, CutPolicy, PRUNED_ACTION};
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

    /// The time (`at`, epoch ms) of entry `seq`; 0 for seq 0 or an entry not (any more) in
    /// the log.
    ///
    /// # Errors
    /// `Unavailable` when the database fails.
    pub async fn audit_entry_at(&self, seq: i64) -> Result<Millis> {
        let at: Option<(i64,)> = with_pool!(&self.db, read pool => {
            sqlx::query_as("SELECT at FROM audit_log WHERE seq = $1")
                .bind(seq)
                .fetch_optional(pool)
                .await?
        });
        Ok(at.map_or(0, |(at,)| at))
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
        self.verify_audit_policy(anchors, CutPolicy::Stated).await
    }

    /// [`Store::verify_audit_anchored`] believing only the cuts `policy` allows (the
    /// installation's own retention).
    ///
    /// # Errors
    /// `Unavailable` when the database fails.
    pub async fn verify_audit_policy(
        &self,
        anchors: &[Anchor],
        policy: CutPolicy,
    ) -> Result<AuditCheck> {
        let start = self.audit_start().await?;
        let after = start.seq;
        let mut verifier = ChainVerifier::new(start, anchors).with_policy(policy);
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
        policy: CutPolicy,
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
                    let mut verifier = ChainVerifier::after(newest.seq, &newest.hash, anchors)
                        .for_signing(now, policy);
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
        let mut verifier = ChainVerifier::new(start, anchors).for_signing(now, policy);
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

    /// Removes the entries recorded before `before` (retention: `audit_days` before now) up
    /// to the newest of them a checkpoint in `evidence` records (a cut ends where a signed
    /// checkpoint proves the entry's age, so that nobody can fake one elsewhere),
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
        evidence: &[Anchor],
    ) -> Result<Option<i64>> {
        let at = now_millis();
        // Newest first: the cut ends at the newest checkpointed entry old enough.
        let mut candidates: Vec<&Anchor> = evidence
            .iter()
            .filter(|a| a.seq > 0 && a.entry_at.is_some_and(|t| t < before))
            .collect();
        candidates.sort_by_key(|a| std::cmp::Reverse(a.seq));
        Ok(crate::db::with_write_tx!(&self.db, tx => {
            // The newest entry is never removed: the head must stay verifiable.
            let (newest,): (Option<i64>,) = sqlx::query_as("SELECT MAX(seq) FROM audit_log")
                .fetch_one(&mut *tx)
                .await?;
            let mut cut: Option<(i64, String)> = None;
            for anchor in candidates {
                if newest.is_none_or(|newest| anchor.seq >= newest) {
                    continue;
                }
                let found: Option<(String, i64)> =
                    sqlx::query_as("SELECT hash, at FROM audit_log WHERE seq = $1")
                        .bind(anchor.seq)
                        .fetch_optional(&mut *tx)
                        .await?;
                if let Some((hash, entry_at)) = found
                    && hash == anchor.hash
                    && entry_at < before
                {
                    cut = Some((anchor.seq, hash));
                    break;
                }
            }
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
