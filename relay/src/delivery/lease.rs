//! Holding a job's lease while it is being delivered.
//!
//! A job is leased for `delivery.lease_secs`; after that any node may take it. A delivery
//! can take longer than that (every SMTP reply may take up to `delivery.timeout_secs`), so
//! [`Lease::hold`] renews the lease in the background every quarter of its length while the
//! attempt runs, and the SMTP client asks [`Lease::renew_for_end`] right before it sends the
//! message's end (the final dot), which renews it once more: the dot only leaves while this
//! node holds the job for at least one more reply wait (`lease_secs ≥ 2 × timeout_secs`,
//! checked by the configuration). When renewing fails — the lease was lost, or the
//! database cannot be reached for so long that the lease would run out — an attempt that has
//! not sent the dot is abandoned before the lease ends, so another node can never send the
//! job while this one still might.
//!
//! What remains is the window every MTA has: the next hop said 250 and this node died (or
//! lost the database) before recording it; another node then sends the job again. Each copy
//! carries the same `X-Ratspost-Job` header and Message-ID, so the receiver can recognise it.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use store::Store;
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::throttle::Throttle;

/// Why a lost lease ends an attempt.
const LOST: &str = "the job's lease was lost (another node took the job, or it left the queue)";

/// Kept between the end of our lease as this node sees it and as other nodes may see it: the
/// clocks of several nodes differ a little (they should run NTP), and a renewal takes time.
fn margin(lease: Duration) -> Duration {
    (lease / 10).max(Duration::from_millis(500))
}

/// Where a held lease stands.
#[derive(Debug, Clone, Copy)]
struct State {
    /// Until when this node holds the job, by its own monotonic clock (conservative: counted
    /// from before the renewal that set it).
    until: Instant,
    /// Another node holds it now, or the job left the queue.
    lost: bool,
    /// The message's end was sent: from now on the attempt is not abandoned (its result
    /// must be recorded, whatever it is).
    ended: bool,
}

/// A job's lease, held by this node while a delivery attempt runs.
pub struct Lease {
    store: Store,
    job: i64,
    owner: String,
    length: Duration,
    state: Mutex<State>,
    changed: watch::Sender<()>,
    /// Logs failing renewals at most every few seconds, whatever the number of jobs.
    throttle: Arc<Throttle>,
}

/// How holding a lease through an attempt ended.
#[derive(Debug)]
pub enum Held<T> {
    /// The attempt finished with this result, which this node may record.
    Done(T),
    /// Given up before the message's end was sent: the lease was lost or could not be renewed
    /// in time. Nothing was delivered; nothing must be recorded.
    Abandoned(String),
    /// Cut off by the end of the shutdown grace period; `after_end`: the message's end had
    /// been sent (the next hop may have the message).
    Cut {
        /// Whether the final dot was sent before the cut.
        after_end: bool,
    },
}

impl Lease {
    /// The lease `owner` took on job `job` at `taken` for `length`.
    #[must_use]
    pub fn new(
        store: Store,
        job: i64,
        owner: String,
        length: Duration,
        taken: Instant,
        throttle: Arc<Throttle>,
    ) -> Self {
        Self {
            store,
            job,
            owner,
            length,
            state: Mutex::new(State {
                until: taken + length,
                lost: false,
                ended: false,
            }),
            changed: watch::channel(()).0,
            throttle,
        }
    }

    fn state(&self) -> State {
        *self
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn update(&self, f: impl FnOnce(&mut State)) {
        f(&mut self
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner));
        self.changed.send_replace(());
    }

    /// Renews the lease for another `length` from now. `Ok(false)`: lost.
    async fn renew(&self) -> Result<bool, store::Error> {
        let started = Instant::now();
        let until =
            store::now_millis() + i64::try_from(self.length.as_millis()).unwrap_or(i64::MAX);
        let held = self.store.renew_lease(self.job, &self.owner, until).await?;
        self.update(|s| {
            if held {
                s.until = s.until.max(started + self.length);
            } else {
                s.lost = true;
            }
        });
        Ok(held)
    }

    /// Asked by the SMTP client right before the final dot: renews the lease and allows the
    /// dot only when this node holds the job for at least `reply_wait` more (plus a margin).
    ///
    /// # Errors
    /// Why the message's end must not be sent; the client then closes the connection without
    /// it, and the next hop discards the transaction (RFC 5321 §4.1.1.4).
    pub async fn renew_for_end(&self, reply_wait: Duration) -> Result<(), String> {
        match self.renew().await {
            Ok(true) => {}
            Ok(false) => return Err(LOST.to_owned()),
            Err(err) => return Err(format!("the job's lease cannot be renewed: {err}")),
        }
        let state = self.state();
        if Instant::now() + reply_wait + margin(self.length) > state.until {
            return Err("the job's lease would run out while waiting for the reply".to_owned());
        }
        self.update(|s| s.ended = true);
        Ok(())
    }

    /// Runs `attempt` while keeping the lease: renews it every quarter of its length, gives
    /// the attempt up when the lease is lost or about to run out before its end was sent, and
    /// cuts it off when `abort` (the end of the shutdown grace period) fires.
    pub async fn hold<T>(
        &self,
        attempt: impl std::future::Future<Output = T>,
        abort: &CancellationToken,
    ) -> Held<T> {
        let renewing = async {
            loop {
                tokio::time::sleep(self.length / 4).await;
                match self.renew().await {
                    Ok(true) => {}
                    Ok(false) => return,
                    Err(err) => self.throttle.warn(
                        "lease renewal",
                        format_args!("cannot renew a delivery's lease (job {}): {err}", self.job),
                    ),
                }
            }
        };
        tokio::pin!(attempt, renewing);
        let mut changed = self.changed.subscribe();
        let mut renewal_over = false;
        loop {
            let state = self.state();
            if !state.ended {
                if state.lost {
                    return Held::Abandoned(LOST.to_owned());
                }
                if Instant::now() + margin(self.length) >= state.until {
                    return Held::Abandoned(
                        "the job's lease could not be renewed before it ran out".to_owned(),
                    );
                }
            }
            // Once the dot is sent the attempt runs to its reply (at most
            // `data_end_timeout_secs`), the lease renewed meanwhile: it is never abandoned.
            let deadline = state
                .until
                .checked_sub(margin(self.length))
                .unwrap_or(state.until);
            tokio::select! {
                biased;
                out = &mut attempt => return Held::Done(out),
                () = abort.cancelled() => return Held::Cut { after_end: self.state().ended },
                () = &mut renewing, if !renewal_over => renewal_over = true,
                _ = changed.changed() => {}
                () = tokio::time::sleep_until(deadline), if !state.ended => {}
            }
        }
    }
}

impl super::client::EndGate for Lease {
    async fn confirm_end(&self, reply_wait: Duration) -> Result<(), String> {
        self.renew_for_end(reply_wait).await
    }
}
