//! The delivery worker: takes due jobs from the queue, re-checks that they may still leave,
//! and hands them to the next hop.
//!
//! Jobs are leased in the database, so several `ratspost serve` nodes on one PostgreSQL
//! never send a job twice at once, and a job whose node died is taken up again when its
//! lease runs out. Before each attempt the job's exemption is checked *now* (invariant 2):
//! a confirmation for an exemption that was revoked or denied, or a forward whose exemption
//! is no longer active, is dropped — and the drop is audited. The one exception: a forward
//! whose exemption simply ran out while its follow-up to the same address took over without
//! a gap still leaves (a revoked exemption's jobs never do).

pub mod client;
pub mod lease;
pub mod mx;

use std::sync::Arc;
use std::time::Duration;

use store::{ExemptionState, JobOutcome, LeasedJob, Store};
use tokio::task::JoinSet;

use crate::config::Config;
use crate::shutdown::Shutdown;
use crate::throttle::{Backoff, Throttle};
use client::{Hop, SendError};
use lease::{Held, Lease};
use mx::Mx;

/// Pause between queue scans when there is nothing to do (jobs queued by this process wake
/// the worker at once; this bounds the wait for jobs queued by other nodes or the CLI).
const IDLE: Duration = Duration::from_secs(1);

/// Where jobs go.
#[derive(Clone)]
enum Route {
    /// Everything through one relay.
    Smarthost(Hop),
    /// Straight to each recipient domain's MX hosts.
    Mx(Arc<Mx>),
}

/// The worker.
#[derive(Clone)]
pub struct Delivery {
    store: Store,
    config: Arc<Config>,
    route: Route,
    /// Where submitted messages go (`submission.relay`); never to MX hosts.
    submission: Option<Hop>,
    owner: String,
    wake: Arc<tokio::sync::Notify>,
    /// Repeating store failures are logged at most every few seconds.
    throttle: Arc<Throttle>,
}

impl Delivery {
    /// A worker for `config.delivery`.
    ///
    /// # Errors
    /// When `delivery.ca_file` cannot be loaded, or, without a smarthost, no DNS resolver
    /// can be set up.
    pub fn new(
        store: Store,
        config: Arc<Config>,
        wake: Arc<tokio::sync::Notify>,
    ) -> anyhow::Result<Self> {
        let d = &config.delivery;
        let hop = Hop {
            address: String::new(),
            host: String::new(),
            tls: d.tls,
            connector: client::connector(d.ca_file.as_deref())?,
            helo: config.smtp.hostname.clone(),
            timeout: d.timeout,
            data_end_timeout: d.data_end_timeout,
            auth: None,
        };
        let at = |address: &String, tls, auth: &Option<_>| Hop {
            address: address.clone(),
            host: address
                .rsplit_once(':')
                .map_or(address.as_str(), |(h, _)| h)
                .trim_matches(['[', ']'])
                .to_owned(),
            tls,
            auth: auth.clone(),
            ..hop.clone()
        };
        let s = &config.submission;
        let submission = s
            .relay
            .as_ref()
            .map(|relay| at(relay, s.relay_tls, &s.relay_auth));
        let route = match &d.smarthost {
            Some(address) => Route::Smarthost(at(address, d.tls, &d.auth)),
            None => Route::Mx(Arc::new(Mx::new(d, hop)?)),
        };
        let owner = format!(
            "{}-{}-{:08x}",
            config.smtp.hostname,
            std::process::id(),
            rand::random::<u32>()
        );
        Ok(Self {
            store,
            config,
            route,
            submission,
            owner,
            wake,
            throttle: Arc::new(Throttle::default()),
        })
    }

    /// Runs until `shutdown.stop`; deliveries in progress finish first, or are cut off when
    /// the grace period ends (`shutdown.abort`) and left for a retry. Up to
    /// `delivery.concurrency` attempts run at once; a slot that frees up is filled at once, so
    /// one slow delivery holds up nothing but itself.
    pub async fn run(self, shutdown: Shutdown) {
        if let Route::Mx(_) = self.route {
            tracing::info!("no delivery.smarthost configured: delivering directly to MX hosts");
        }
        let d = &self.config.delivery;
        // A queue that cannot be read is asked again after a growing pause, not every second.
        let mut backoff = Backoff::new(IDLE, Duration::from_secs(30));
        let mut running = JoinSet::new();
        let in_hand = Arc::new(std::sync::Mutex::new(std::collections::HashSet::new()));
        while !shutdown.stop.is_cancelled() {
            let free = d.concurrency.saturating_sub(running.len());
            if free > 0 {
                let taken = tokio::time::Instant::now();
                let now = store::now_millis();
                let leased = self
                    .store
                    .lease_jobs(&self.owner, now, now + millis(d.lease), free as i64)
                    .await;
                match leased {
                    Ok(jobs) => {
                        backoff.succeeded();
                        tracing::debug!(leased = jobs.len(), owner = %self.owner, "queue scan");
                        for job in jobs {
                            // Leased again while this node still holds an attempt of it (its
                            // outcome waiting for the database): that attempt records it.
                            let Some(in_hand) = InHand::take(&in_hand, job.id) else {
                                continue;
                            };
                            let this = self.clone();
                            let abort = shutdown.abort.clone();
                            running.spawn(async move {
                                this.attempt(job, taken, &abort).await;
                                drop(in_hand);
                            });
                        }
                    }
                    Err(err) => {
                        self.throttle
                            .error("queue read", format_args!("cannot read the queue: {err}"));
                        tokio::select! {
                            () = shutdown.stop.cancelled() => break,
                            () = tokio::time::sleep(backoff.failed()) => {}
                        }
                        continue;
                    }
                }
            }
            let has_room = running.len() < d.concurrency;
            tokio::select! {
                () = shutdown.stop.cancelled() => break,
                Some(_) = running.join_next(), if !running.is_empty() => {}
                () = self.wake.notified(), if has_room => {}
                () = tokio::time::sleep(IDLE), if has_room => {}
            }
        }
        // Attempts in progress finish, or are cut off at the end of the grace period.
        while running.join_next().await.is_some() {}
    }

    /// One delivery attempt of `job`, leased at `taken`, holding its lease throughout.
    async fn attempt(
        &self,
        job: LeasedJob,
        taken: tokio::time::Instant,
        abort: &tokio_util::sync::CancellationToken,
    ) {
        let lease = Lease::new(
            self.store.clone(),
            job.id,
            self.owner.clone(),
            self.config.delivery.lease,
            taken,
            Arc::clone(&self.throttle),
        );
        let outcome = match lease.hold(self.outcome(&job, &lease), abort).await {
            Held::Done(outcome) => outcome,
            Held::Abandoned(why) => {
                // Nothing left this node; whoever holds the job now delivers it.
                tracing::warn!(job = job.id, kind = %job.kind, %why, "delivery abandoned before the message's end");
                return;
            }
            Held::Cut { after_end } => JobOutcome::Retry {
                at: store::now_millis(),
                error: if after_end {
                    "cut off by shutdown after the message's end was sent: the next hop may already have it".to_owned()
                } else {
                    "cut off by shutdown before the message's end".to_owned()
                },
                rcpt_to: None,
            },
        };
        match &outcome {
            JobOutcome::Delivered => tracing::info!(job = job.id, kind = %job.kind, "delivered"),
            JobOutcome::Retry { error, .. } => {
                tracing::warn!(job = job.id, kind = %job.kind, %error, "delivery deferred")
            }
            JobOutcome::Failed { error } => {
                tracing::error!(job = job.id, kind = %job.kind, %error, "delivery failed")
            }
            JobOutcome::Dropped { reason } => {
                tracing::info!(job = job.id, kind = %job.kind, %reason, "job dropped")
            }
        }
        let now = store::now_millis();
        if !self.record(&job, &outcome, abort).await {
            return;
        }
        if let JobOutcome::Failed { error } = &outcome
            && let Err(err) = self.tell_owner(&job, error, now).await
        {
            tracing::error!(job = job.id, error = %err, "cannot put the failure notice into the mailbox");
        }
    }

    /// Records `outcome` while this node holds the job, retrying a failing store with a
    /// growing pause (an unrecorded delivery would be sent again once the lease ran out)
    /// until it succeeds, the lease turns out lost, or the shutdown grace period ends.
    /// Whether it was recorded.
    async fn record(
        &self,
        job: &LeasedJob,
        outcome: &JobOutcome,
        abort: &tokio_util::sync::CancellationToken,
    ) -> bool {
        let mut backoff = Backoff::new(Duration::from_millis(200), Duration::from_secs(10));
        loop {
            let err = match self
                .store
                .finish_job(job, &self.owner, outcome, store::now_millis())
                .await
            {
                Ok(()) => return true,
                Err(err) if err.kind() == store::ErrorKind::Conflict => {
                    tracing::error!(job = job.id, error = %err, "the job's lease was lost; this attempt's outcome is not recorded");
                    return false;
                }
                Err(err) => err,
            };
            self.throttle.error(
                "record outcome",
                format_args!(
                    "cannot record a delivery's outcome (job {}), retrying: {err}",
                    job.id
                ),
            );
            tokio::select! {
                () = abort.cancelled() => {
                    tracing::error!(job = job.id, "shutdown before the delivery's outcome could be recorded: the job will be tried again, and the next hop may get it twice");
                    return false;
                }
                () = tokio::time::sleep(backoff.failed()) => {}
            }
        }
    }

    /// Puts a delivery-failure notice into the mailbox of the user the job was for.
    async fn tell_owner(
        &self,
        job: &LeasedJob,
        error: &str,
        now: store::Millis,
    ) -> anyhow::Result<()> {
        let Some(exemption) = job.exemption_id else {
            return Ok(());
        };
        let login = self.store.exemption(exemption).await?.login;
        let user = self.store.user_by_login(&login).await?;
        let Some(address) = user.addresses.first() else {
            return Ok(());
        };
        let raw = crate::compose::delivery_failure(
            &self.config.notices,
            address,
            &job.kind,
            &job.rcpt_to,
            &self.config.dates().millis(job.created_at),
            error,
        );
        let id = self
            .store
            .deliver_to_mailbox(user.id, address, &raw, now)
            .await?;
        tracing::info!(job = job.id, message = id, user = %login, "failure notice put into the mailbox");
        Ok(())
    }

    async fn outcome(&self, job: &LeasedJob, lease: &Lease) -> JobOutcome {
        let now = store::now_millis();
        if job.kind == store::SUBMISSION_KIND {
            return self.relay_submission(job, lease, now).await;
        }
        if let Some(reason) = self.must_drop(job, now).await {
            return JobOutcome::Dropped { reason };
        }
        let body = self.marked(job);
        let sent = match &self.route {
            Route::Smarthost(hop) => {
                client::send(hop, &job.mail_from, &job.rcpt_to, &body, lease).await
            }
            Route::Mx(mx) => mx.send(&job.mail_from, &job.rcpt_to, &body, lease).await,
        };
        match sent {
            Ok(()) => JobOutcome::Delivered,
            Err(SendError::Permanent(error)) => JobOutcome::Failed { error },
            Err(SendError::Temporary(error)) => self.temporary(job, error, now),
        }
    }

    /// The job's message marked with its `X-Ratspost-Job` header ([`with_job_header`]), the
    /// same in every attempt and on every node. Submissions are not marked: they are the
    /// staff's own mail to the city's server, which gets them as sent plus ratspost's
    /// `Received` line, and their client's Message-ID tells a second copy.
    fn marked(&self, job: &LeasedJob) -> Vec<u8> {
        with_job_header(&job.body, job.id, job.created_at)
    }

    /// Hands a submitted message to `submission.relay`, all its recipients in one
    /// transaction. Recipients refused for good are reported to the sender at once (a
    /// non-delivery report in their mailbox); ones refused for now stay in the job and are
    /// tried again.
    async fn relay_submission(
        &self,
        job: &LeasedJob,
        lease: &Lease,
        now: store::Millis,
    ) -> JobOutcome {
        let rcpts: Vec<&str> = job.rcpt_to.split(' ').filter(|r| !r.is_empty()).collect();
        // A failure of the whole transaction befalls every recipient alike.
        let all = |error: SendError| -> Vec<(String, SendError)> {
            rcpts
                .iter()
                .map(|r| ((*r).to_owned(), error.clone()))
                .collect()
        };
        let refused = match &self.submission {
            // Submission was switched off with messages still queued: they wait for it.
            None => all(SendError::Temporary(
                "submission.relay is not configured".to_owned(),
            )),
            Some(hop) => client::send_many(hop, &job.mail_from, &rcpts, &job.body, lease)
                .await
                .unwrap_or_else(all),
        };
        let (later, never): (Vec<_>, Vec<_>) = refused
            .into_iter()
            .partition(|(_, e)| matches!(e, SendError::Temporary(_)));
        let text = |list: Vec<(String, SendError)>| -> Vec<(String, String)> {
            list.into_iter()
                .map(|(r, SendError::Temporary(e) | SendError::Permanent(e))| (r, e))
                .collect()
        };
        let joined = |list: &[(String, String)]| {
            list.iter()
                .map(|(r, e)| format!("{r}: {e}"))
                .collect::<Vec<_>>()
                .join("; ")
        };
        let (later, never) = (text(later), text(never));
        if !never.is_empty() {
            self.report_refused(job, &never).await;
        }
        if later.is_empty() {
            return if never.len() == rcpts.len() {
                JobOutcome::Failed {
                    error: joined(&never),
                }
            } else {
                JobOutcome::Delivered
            };
        }
        let remaining = (later.len() < rcpts.len()).then(|| {
            later
                .iter()
                .map(|(r, _)| r.as_str())
                .collect::<Vec<_>>()
                .join(" ")
        });
        match self.temporary(job, joined(&later), now) {
            JobOutcome::Retry { at, error, .. } => JobOutcome::Retry {
                at,
                error,
                rcpt_to: remaining,
            },
            JobOutcome::Failed { error } => {
                // Given up after `delivery.give_up_hours`: the sender hears of it.
                let gave_up: Vec<_> = later.into_iter().map(|(r, _)| (r, error.clone())).collect();
                self.report_refused(job, &gave_up).await;
                JobOutcome::Failed { error }
            }
            other => other,
        }
    }

    /// Puts a non-delivery report for `refused` (recipient, reply) into the mailbox of the
    /// user who submitted `job`; failures are logged (the job's outcome stands).
    async fn report_refused(&self, job: &LeasedJob, refused: &[(String, String)]) {
        let Some(user_id) = job.user_id else { return };
        let report = async {
            let user = self.store.user_by_id(user_id).await?;
            let address = crate::submission::sender_address(&user, &job.mail_from);
            let raw = crate::compose::submission_failure(
                &self.config.notices,
                &address,
                refused,
                &self.config.dates().millis(job.created_at),
                crate::smtp::message_id(&job.body).as_deref(),
            );
            self.store
                .deliver_to_mailbox(user_id, &address, &raw, store::now_millis())
                .await
        };
        match report.await {
            Ok(id) => tracing::info!(
                job = job.id,
                message = id,
                refused = refused.len(),
                "non-delivery report put into the mailbox"
            ),
            Err(err) => {
                tracing::error!(job = job.id, error = %err, "cannot put the non-delivery report into the mailbox")
            }
        }
    }

    /// Why `job` must not leave (any more), if so.
    async fn must_drop(&self, job: &LeasedJob, now: store::Millis) -> Option<String> {
        let id = job.exemption_id?;
        let exemption = match self.store.exemption(id).await {
            Ok(e) => e,
            Err(err) => return Some(format!("exemption {id} unavailable: {err}")),
        };
        match job.kind.as_str() {
            "confirmation" if exemption.state != ExemptionState::Requested => {
                Some(format!("exemption {id} is {}", exemption.state.as_str()))
            }
            "confirmation" => None,
            "forward" | "notice"
                if !exemption.is_active_at(now)
                    && self.continued(&exemption, &job.rcpt_to, now).await =>
            {
                None
            }
            _ if !exemption.is_active_at(now) => Some(format!(
                "exemption {id} is not active at delivery time ({})",
                exemption.state.as_str()
            )),
            _ => None,
        }
    }

    /// Whether forwarding under `exemption`, which ran out (not revoked), goes on without a gap
    /// under its follow-up to the same `target`: then a forward queued before the end but
    /// delivered after it (a retry) may still leave. A revoked exemption's jobs never do.
    async fn continued(
        &self,
        exemption: &store::Exemption,
        target: &str,
        now: store::Millis,
    ) -> bool {
        let ran_out = matches!(
            exemption.state,
            ExemptionState::Active | ExemptionState::Expired
        ) && exemption.valid_until.is_some_and(|until| until <= now);
        if !ran_out {
            return false;
        }
        match self.store.follow_up(exemption.id, now).await {
            Ok(Some(next)) => {
                next.is_active_at(now)
                    && next.valid_from == exemption.valid_until
                    && next.target == target
            }
            _ => false,
        }
    }

    /// Retry with exponential backoff, or give up when the job is too old.
    fn temporary(&self, job: &LeasedJob, error: String, now: store::Millis) -> JobOutcome {
        let d = &self.config.delivery;
        if now - job.created_at >= millis(d.give_up) {
            return JobOutcome::Failed {
                error: format!(
                    "gave up after {} hours: {error}",
                    d.give_up.as_secs() / 3600
                ),
            };
        }
        let factor = 1u32
            .checked_shl(u32::try_from(job.attempts).unwrap_or(31).min(20))
            .unwrap_or(u32::MAX);
        let delay = d.retry_base.saturating_mul(factor).min(d.retry_max);
        JobOutcome::Retry {
            at: now + millis(delay),
            error,
            rcpt_to: None,
        }
    }
}

/// A job this node has an attempt of, from its lease until its outcome is recorded (or given
/// up): the job is not attempted a second time meanwhile, even when a lease that ran out
/// while the database was unwritable is taken again.
struct InHand {
    jobs: Arc<std::sync::Mutex<std::collections::HashSet<i64>>>,
    id: i64,
}

impl InHand {
    /// Marks job `id` in hand; `None` when it already is.
    fn take(jobs: &Arc<std::sync::Mutex<std::collections::HashSet<i64>>>, id: i64) -> Option<Self> {
        let fresh = jobs
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(id);
        fresh.then(|| Self {
            jobs: Arc::clone(jobs),
            id,
        })
    }
}

impl Drop for InHand {
    fn drop(&mut self) {
        self.jobs
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(&self.id);
    }
}

/// `raw` with `X-Ratspost-Job: <id>.<queued at, ms>` inserted after its first header field.
/// A receiver recognises a second copy (the window after the next hop's 250 and before it
/// was recorded) by it, or by the unchanged Message-ID; the time keeps two installations' job
/// numbers apart. The first field is always one ratspost added when it queued the job — its
/// `Received` (submissions), `ARC-Seal` (forwards), `DKIM-Signature` (its own mail) — so the
/// header sits in ratspost's own part: below the trace field it follows, as RFC 5322 §3.6's
/// `trace *optional-field` has it, and never inside the original a forward carries intact.
/// DKIM and ARC sign chosen fields, so an added one breaks neither.
fn with_job_header(raw: &[u8], id: i64, queued_at: store::Millis) -> Vec<u8> {
    let header = format!("X-Ratspost-Job: {id}.{queued_at}\r\n");
    // The end of the first field: the first line end not followed by folding white space.
    let at = raw
        .iter()
        .enumerate()
        .find(|&(i, &b)| b == b'\n' && !matches!(raw.get(i + 1), Some(b' ' | b'\t')))
        .map_or(0, |(i, _)| i + 1);
    // A message that starts with its blank line has no field to follow.
    let at = if raw.starts_with(b"\r\n") || raw.starts_with(b"\n") {
        0
    } else {
        at
    };
    let mut out = Vec::with_capacity(raw.len() + header.len());
    out.extend_from_slice(&raw[..at]);
    out.extend_from_slice(header.as_bytes());
    out.extend_from_slice(&raw[at..]);
    out
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::with_job_header;

    #[test]
    fn the_job_header_follows_the_first_field_whole() {
        let mark =
            |raw: &str| String::from_utf8(with_job_header(raw.as_bytes(), 7, 99)).expect("utf-8");
        assert_eq!(
            mark("Received: by x;\r\n\tTue, 1 Dec 2026\r\nFrom: a@b\r\n\r\nbody\r\n"),
            "Received: by x;\r\n\tTue, 1 Dec 2026\r\nX-Ratspost-Job: 7.99\r\nFrom: a@b\r\n\r\nbody\r\n",
            "after a folded first field, not inside it"
        );
        assert_eq!(
            mark("ARC-Seal: i=1\nSubject: s\n\nx\n"),
            "ARC-Seal: i=1\nX-Ratspost-Job: 7.99\r\nSubject: s\n\nx\n"
        );
        assert_eq!(mark("\r\nbody"), "X-Ratspost-Job: 7.99\r\n\r\nbody");
        assert_eq!(mark(""), "X-Ratspost-Job: 7.99\r\n");
        assert_eq!(
            mark("Subject: only"),
            "X-Ratspost-Job: 7.99\r\nSubject: only"
        );
    }
}
