//! Two-phase shutdown, shared by every listener and session.
//!
//! Phase 1 (`stop`): listeners stop accepting, sessions finish the command in hand and say
//! goodbye (`421` in SMTP). Phase 2 (`abort`), after the grace period: whatever is still
//! running stops its I/O — a delivery is cut off and left queued for a retry. Whatever has
//! not ended [`ABORT_MARGIN`] after that is left behind: the process exits anyway, so a stop
//! never takes longer than `shutdown.grace_secs` plus that margin. Nothing is lost either
//! way: a message is only acknowledged after its commit, and a commit is atomic.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

/// How long tasks get after the grace period to stop their I/O and record what they cut off
/// (a delivery put back into the queue) before the process exits without them.
pub const ABORT_MARGIN: Duration = Duration::from_secs(2);
use tokio_util::task::TaskTracker;

/// Tokens and the task tracker for one server instance.
#[derive(Debug, Clone, Default)]
pub struct Shutdown {
    /// Cancelled when a stop was requested: stop accepting, finish the current command.
    pub stop: CancellationToken,
    /// Cancelled when the grace period is over: stop all I/O now.
    pub abort: CancellationToken,
    /// Every spawned session and background task, so shutdown can wait for them.
    pub tracker: TaskTracker,
}

impl Shutdown {
    /// A fresh, running instance.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Runs the two phases: stop, wait up to `grace` for tasks to end, then abort and wait
    /// up to [`ABORT_MARGIN`] for the rest (which end promptly once aborted).
    pub async fn run(&self, grace: Duration) {
        self.stop.cancel();
        self.tracker.close();
        if tokio::time::timeout(grace, self.tracker.wait())
            .await
            .is_err()
        {
            tracing::warn!(
                grace_secs = grace.as_secs(),
                "grace period over; aborting sessions"
            );
            self.abort.cancel();
            if tokio::time::timeout(ABORT_MARGIN, self.tracker.wait())
                .await
                .is_err()
            {
                tracing::error!(
                    margin_secs = ABORT_MARGIN.as_secs(),
                    "tasks still running after the grace period and the abort margin; exiting without them"
                );
            }
        }
    }
}
