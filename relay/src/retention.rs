//! The retention task: storage limitation (Art. 5(1)(e) GDPR, issue #15 §3).
//!
//! Every `retention.check_interval` it purges, in batches of [`BATCH`], the bytes of the
//! messages older than `retention.message_days` whose notice links have expired and of
//! which no forward is pending (`Store::purge_messages`: mailbox entries are expunged as an
//! IMAP EXPUNGE, one `retention.purged` audit entry per batch); then, with
//! `retention.audit_days` set, cuts the audit log's start (`Store::prune_audit`); then, when
//! either changed the log, writes an audit checkpoint so that one signed line covers the
//! cut at once rather than at the next interval.
//!
//! Several nodes may run it at once: each batch picks its messages under the store's write
//! lock, so the second node finds them gone. A database failure ends the run; the next one
//! comes after a back-off (never a tight loop), and the failure is logged once, then at most
//! every [`LOG_EVERY`] while it lasts.

use std::sync::Arc;
use std::time::{Duration, Instant};

use store::{Millis, Store};

use crate::checkpoint::Duty;
use crate::config::Config;
use crate::shutdown::Shutdown;

/// Messages purged per transaction.
pub const BATCH: i64 = 500;

/// How often a failure that lasts is logged again.
pub const LOG_EVERY: Duration = Duration::from_secs(15 * 60);

/// The first wait after a failed run; it doubles up to the check interval.
const FIRST_RETRY: Duration = Duration::from_secs(30);

const DAY_MS: Millis = 86_400_000;

/// What one run did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunReport {
    /// Messages whose bytes were purged.
    pub messages: usize,
    /// Mailbox entries expunged with them.
    pub expunged: u64,
    /// Transactions (and `retention.purged` audit entries) it took.
    pub batches: usize,
    /// The last audit entry removed from the log's start, when `audit_days` cut it.
    pub audit_cut: Option<i64>,
    /// Whether a checkpoint was written after the changes.
    pub checkpoint: bool,
}

/// The cut-off for a message kept `days` days, at `now`: messages received before it are
/// old enough to be purged.
#[must_use]
pub fn cutoff(days: u32, now: Millis) -> Millis {
    now.saturating_sub(i64::from(days).saturating_mul(DAY_MS))
}

/// The retention task's parts.
pub struct Retention {
    /// Where the messages and the audit log are.
    pub store: Store,
    /// `retention.*` (and nothing else is read).
    pub config: Arc<Config>,
    /// Writes the checkpoint after a cut.
    pub checkpoints: Arc<Duty>,
}

impl Retention {
    /// One run as if the time were `now`: purge until nothing is due, cut the audit log,
    /// checkpoint. Stops between batches when `stop` is cancelled.
    ///
    /// # Errors
    /// When the database fails (what was committed before stays); a failed checkpoint is
    /// logged, not returned (the checkpoint duty writes one at its next interval).
    pub async fn run_once(
        &self,
        now: Millis,
        stop: &tokio_util::sync::CancellationToken,
    ) -> Result<RunReport, store::Error> {
        let retention = &self.config.retention;
        let mut report = RunReport::default();
        if let Some(days) = retention.message_days {
            let before = cutoff(days, now);
            while !stop.is_cancelled() {
                let batch = self.store.purge_messages(before, now, BATCH).await?;
                if batch.messages.is_empty() {
                    break;
                }
                report.messages += batch.count();
                report.expunged += batch.expunged;
                report.batches += 1;
                tracing::info!(
                    count = batch.count(),
                    expunged = batch.expunged,
                    job_bodies = batch.job_bodies,
                    audit_seq = batch.audit_seq,
                    message_days = days,
                    "retention: message contents purged"
                );
                if i64::try_from(batch.count()).unwrap_or(i64::MAX) < BATCH {
                    break;
                }
            }
        }
        // A log that no longer fits its checkpoints is never cut: the cut could not be
        // undone, and nothing would sign it.
        let fits = if retention.audit_days.is_some() {
            match self.checkpoints.check_log().await {
                Ok(()) => true,
                Err(err) => {
                    tracing::error!(
                        error = %format!("{err:#}"),
                        "retention: not cutting the audit log"
                    );
                    false
                }
            }
        } else {
            false
        };
        if let Some(days) = retention.audit_days
            && fits
            && !stop.is_cancelled()
        {
            // The checkpoints of this installation are the evidence a cut ends at.
            let config = Arc::clone(&self.config);
            let evidence =
                tokio::task::spawn_blocking(move || crate::checkpoint::installed_anchors(&config))
                    .await
                    .unwrap_or_default();
            report.audit_cut = self
                .store
                .prune_audit(cutoff(days, now), days, "system", &evidence)
                .await?;
            if let Some(seq) = report.audit_cut {
                tracing::info!(
                    through_seq = seq,
                    audit_days = days,
                    "retention: audit log start cut"
                );
            }
        }
        if report.batches > 0 || report.audit_cut.is_some() {
            match self.checkpoints.checkpoint_if_moved().await {
                Ok(written) => report.checkpoint = written.is_some(),
                Err(err) => tracing::error!(
                    error = %format!("{err:#}"),
                    "retention: cannot write the audit checkpoint after the run"
                ),
            }
            tracing::info!(
                messages = report.messages,
                expunged = report.expunged,
                batches = report.batches,
                audit_cut = report.audit_cut,
                "retention run done"
            );
        }
        Ok(report)
    }

    /// Until stopped: a run now, then every `retention.check_interval`; after a failure
    /// sooner, backing off from 30 s up to the interval.
    pub async fn run(self, shutdown: Shutdown) {
        let interval = self.config.retention.check_interval;
        let mut failures = 0u32;
        let mut logged: Option<Instant> = None;
        loop {
            let wait = match self.run_once(store::now_millis(), &shutdown.stop).await {
                Ok(_) => {
                    if failures > 0 {
                        tracing::info!(failures, "retention: runs work again");
                    }
                    failures = 0;
                    logged = None;
                    interval
                }
                Err(err) => {
                    let next = FIRST_RETRY
                        .saturating_mul(1 << failures.min(16))
                        .min(interval);
                    failures = failures.saturating_add(1);
                    if logged.is_none_or(|at| at.elapsed() >= LOG_EVERY) {
                        tracing::error!(
                            error = %err,
                            failures,
                            retry_secs = next.as_secs(),
                            "retention run failed"
                        );
                        logged = Some(Instant::now());
                    }
                    next
                }
            };
            tokio::select! {
                () = shutdown.stop.cancelled() => return,
                () = tokio::time::sleep(wait) => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{DAY_MS, cutoff};

    #[test]
    fn cutoff_is_whole_days_before_now() {
        assert_eq!(cutoff(90, 100 * DAY_MS), 10 * DAY_MS);
        assert_eq!(cutoff(1, 0), -DAY_MS);
        assert_eq!(cutoff(u32::MAX, i64::MIN + 1), i64::MIN);
    }
}
