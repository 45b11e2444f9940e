//! Two-phase shutdown, shared by every listener and session.
//!
//! Phase 1 (`stop`): listeners stop accepting, sessions finish the command in hand and say
//! goodbye (`421` in SMTP). Phase 2 (`abort`), after the grace period: whatever is still
//! running stops its I/O. Nothing is lost either way: a message is only acknowledged after
//! its commit, and a commit is atomic.

use std::time::Duration;

use tokio_util::sync::CancellationToken;
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
    /// for the rest (which end promptly once aborted).
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
            self.tracker.wait().await;
        }
    }
}
