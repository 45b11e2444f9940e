//! Bounded pools for CPU-heavy work: password hashing before login, SEARCH over bodies and
//! MIME parsing for FETCH after it.
//!
//! The work runs on tokio's blocking threads, never on the async workers that serve SMTP,
//! the web UI and every other session; a semaphore bounds how much runs at once, and a
//! caller waits for its turn only so long. Issue #13 §3: two `UID SEARCH`es on the async
//! workers froze the whole daemon, and 100 parallel logins ran 100 argon2 hashes of
//! 19 MiB each.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Semaphore;

/// A pool of `n` slots for blocking work. Cheap to clone (all clones share the slots).
#[derive(Clone, Debug)]
pub struct Gate {
    slots: Arc<Semaphore>,
}

/// Why work did not run or finish.
#[derive(Debug, PartialEq, Eq)]
pub enum GateError {
    /// No slot came free in time: refuse as temporary.
    Busy,
    /// The work panicked.
    Failed,
}

impl Gate {
    /// A gate letting `n` (at least one) pieces of work run at once.
    #[must_use]
    pub fn new(n: usize) -> Self {
        Self {
            slots: Arc::new(Semaphore::new(n.max(1))),
        }
    }

    /// Runs `work` on a blocking thread once a slot is free, waiting at most `queue` for it.
    /// The slot is held by the work itself: a caller that gives up (its connection closed)
    /// does not free it while the work still runs.
    ///
    /// # Errors
    /// `Busy` when no slot came free within `queue`; `Failed` when `work` panicked.
    pub async fn run<T, F>(&self, queue: Duration, work: F) -> Result<T, GateError>
    where
        T: Send + 'static,
        F: FnOnce() -> T + Send + 'static,
    {
        let slot = tokio::time::timeout(queue, Arc::clone(&self.slots).acquire_owned())
            .await
            .map_err(|_| GateError::Busy)?
            .map_err(|_| GateError::Busy)?;
        tokio::task::spawn_blocking(move || {
            let _slot = slot;
            work()
        })
        .await
        .map_err(|_| GateError::Failed)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    /// However many callers, no more than `n` run at once.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn at_most_n_run_at_once() {
        let gate = Gate::new(2);
        let running = Arc::new(AtomicUsize::new(0));
        let most = Arc::new(AtomicUsize::new(0));
        let tasks: Vec<_> = (0..24)
            .map(|_| {
                let (gate, running, most) = (gate.clone(), running.clone(), most.clone());
                tokio::spawn(async move {
                    gate.run(Duration::from_secs(600), move || {
                        let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                        most.fetch_max(now, Ordering::SeqCst);
                        std::thread::sleep(Duration::from_millis(5));
                        running.fetch_sub(1, Ordering::SeqCst);
                    })
                    .await
                })
            })
            .collect();
        for t in tasks {
            assert_eq!(t.await.expect("task"), Ok(()));
        }
        assert_eq!(most.load(Ordering::SeqCst), 2);
    }

    /// A caller finding every slot taken gives up after its queue time (the slot is held
    /// throughout, so the outcome does not depend on timing), and the holder is not disturbed.
    #[tokio::test]
    async fn a_full_gate_says_busy_after_the_queue_time() {
        let gate = Gate::new(1);
        let held = Arc::clone(&gate.slots).acquire_owned().await.expect("slot");
        let r = gate.run(Duration::from_millis(20), || 1).await;
        assert_eq!(r, Err(GateError::Busy));
        drop(held);
        assert_eq!(gate.run(Duration::from_secs(5), || 2).await, Ok(2));
    }
}
