//! The processing pipeline: every accepted message is classified, its notices and forward
//! decisions made, and all of it committed with the verdict.
//!
//! It works from the database, not from memory: at start it takes up every message still
//! pending (a restart resumes where a crash left off), and SMTP intake wakes it after each
//! commit. Several nodes on one PostgreSQL share the work: each claims pending messages for a
//! while before it works on them ([`Store::claim_messages`]), so a message is classified by
//! one node; a dead node's claims run out after the classifier's timeout plus a minute.
//! Completing a message stays idempotent, so even two nodes working on one message (a claim
//! that ran out) give one result.
//!
//! The work flows rather than going in rounds: up to `workers × IN_FLIGHT_PER_WORKER`
//! messages (and `IN_HAND_BYTES` of them) are in hand at once. New ones are taken up in
//! batches when there may be some (intake woke the pipeline, a timer ran out, or a take-up
//! left some behind and room opened up) and at most half that many are in hand: one claim,
//! then three reads (bytes and verdicts, recipients, their active exemptions). Each is
//! classified and decided on its own, and the results are committed together, whatever is
//! ready, in one transaction ([`commit`]). So one slow message (a scan read by OCR) holds
//! up only itself, and under load the cost of a commit is shared by many messages.
//!
//! A failing store (a full disk, a database outage) never turns into a loop: after a failure
//! no new work is claimed for a pause that doubles up to half a minute, and the repeating
//! error is logged at most every ten seconds.
//!
//! Classification runs on the blocking pool, bounded in time ([`classify`]); so does the OCR
//! of scans it asks for (each OCR run ends by the message's deadline at the latest).

mod classify;
mod commit;

pub use classify::classify_bounded;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use classifier::Rules;
use store::{Completion, MessageState, PendingMessage, Store, VerdictRecord};
use tokio::sync::{Notify, Semaphore};
use tokio::task::JoinSet;

use crate::forward::ActiveExemptions;
use crate::ocr::Tesseract;
use crate::shutdown::Shutdown;
use crate::throttle::Backoff;
use commit::Committer;

/// Messages in hand at once for each parallel classification: enough that commits are
/// shared by many, few enough that their bytes stay a small part of memory.
const IN_FLIGHT_PER_WORKER: usize = 32;
/// Most message bytes in hand at once (a larger message is still taken up, alone).
const IN_HAND_BYTES: i64 = 64 * 1024 * 1024;
/// How often the pipeline looks for work without being woken (other nodes' intake).
const POLL: Duration = Duration::from_secs(10);
/// The first wait after a failure (of the store, or of one message); it doubles with each
/// further failure.
const RETRY_FIRST: Duration = Duration::from_millis(100);
/// Longest pause after failures.
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// How old the exemptions read with a message may be when its forwards are decided; a
/// message that waited longer (behind OCR, say) reads its recipients' again. Delivery checks
/// each job's exemption once more before anything leaves.
const EXEMPTIONS_FRESH: Duration = Duration::from_secs(1);

/// The active exemptions of the recipients of messages taken up together, and when they
/// were read: one query for all of them rather than one per message.
struct Exemptions {
    active: ActiveExemptions,
    read: Instant,
}

/// The pipeline's settings and handles.
#[derive(Clone)]
pub struct Pipeline {
    /// The store.
    pub store: Store,
    /// Compiled rules.
    pub rules: Arc<Rules>,
    /// Reads scans; `None`: OCR off or not installed.
    pub ocr: Option<Arc<Tesseract>>,
    /// Longest classification per message.
    pub timeout: Duration,
    /// Parallel classifications.
    pub workers: usize,
    /// Notified by intake after each commit.
    pub wake: Arc<Notify>,
    /// Makes the forward decisions once a message is classified.
    pub forwarder: crate::forward::Forwarder,
    /// This node's name (`smtp.hostname`): its claims are named after it.
    pub node: String,
    /// Repeating failures are logged at most every few seconds.
    pub throttle: Arc<crate::throttle::Throttle>,
}

impl Pipeline {
    /// Runs until `shutdown.stop`; the messages in hand are finished first.
    pub async fn run(self, shutdown: Shutdown) {
        let owner = format!(
            "{}:{}:{:08x}",
            self.node,
            std::process::id(),
            rand::random::<u32>()
        );
        // Claims this node's earlier run left (a crash) need not run out first.
        if let Err(err) = self
            .store
            .release_message_claims(&format!("{}:", self.node))
            .await
        {
            tracing::warn!(error = %err, "cannot release the pipeline's claims of an earlier run");
        }
        let (committer, mut committing) = Committer::start(self.store.clone());
        let mut work = Work {
            pipeline: self.clone(),
            committer,
            cpu: Arc::new(Semaphore::new(self.workers.max(1))),
            stop: shutdown.stop.clone(),
        };
        let most = self.workers.max(1) * IN_FLIGHT_PER_WORKER;
        let claim =
            i64::try_from((self.timeout + Duration::from_secs(60)).as_millis()).unwrap_or(i64::MAX);
        let mut backoff = Backoff::new(RETRY_FIRST, MAX_BACKOFF);
        let mut paused_until: Option<Instant> = None;
        // Messages in hand, with their sizes.
        let mut in_hand: HashMap<i64, i64> = HashMap::new();
        // Messages that failed, with their own backoff and when to try again: one that keeps
        // failing is not classified over and over while others succeed.
        let mut retry: HashMap<i64, (Backoff, Instant)> = HashMap::new();
        // Which message each task works on: a task that panicked still gives its message up.
        let mut task_message: HashMap<tokio::task::Id, i64> = HashMap::new();
        let mut tasks: JoinSet<bool> = JoinSet::new();
        // Whether there may be work to take up: at start, when intake wakes us, at a timer (a
        // retry, a pause's end, the poll), and when room opens up after a take-up that left
        // some behind. Not after every finished message: a claim that finds nothing costs a
        // transaction.
        let mut look = true;
        let mut left_behind = false;
        while !shutdown.stop.is_cancelled() {
            if committing.is_finished() {
                tracing::error!("the pipeline's commit task ended; starting it again");
                (work.committer, committing) = Committer::start(self.store.clone());
            }
            let now = Instant::now();
            let paused = paused_until.is_some_and(|until| now < until);
            if look && !paused && in_hand.len() <= most / 2 {
                look = false;
                // A failed message not due yet stays claimed and waits for its time.
                let waiting = |id: i64| retry.get(&id).is_some_and(|(_, at)| now < *at);
                match self.take_up(&owner, claim, &in_hand, waiting, most).await {
                    Ok((messages, exemptions, left)) => {
                        left_behind = left;
                        for message in messages {
                            let id = message.id;
                            in_hand
                                .insert(id, i64::try_from(message.raw.len()).unwrap_or(i64::MAX));
                            let task =
                                tasks.spawn(work.clone().process(message, Arc::clone(&exemptions)));
                            task_message.insert(task.id(), id);
                        }
                    }
                    Err(()) => {
                        paused_until = Some(now + backoff.failed());
                        look = true;
                    }
                }
            }
            // What to wait for, decided after taking up: new mail only while there is room,
            // and always a time to look again (a pause's end, a retry, the next poll).
            let now = Instant::now();
            let paused = paused_until.is_some_and(|until| now < until);
            let listening = !paused && in_hand.len() <= most / 2;
            retry.retain(|_, (_, at)| now < *at + MAX_BACKOFF * 2);
            let look_again = match paused_until {
                Some(until) if paused => until,
                _ => retry
                    .values()
                    .map(|(_, at)| *at)
                    .filter(|at| now < *at)
                    .fold(now + POLL, Instant::min),
            };
            tokio::select! {
                () = shutdown.stop.cancelled() => {}
                Some(done) = tasks.join_next_with_id(), if !tasks.is_empty() => {
                    let (task, ok) = match done {
                        Ok((task, ok)) => (task, ok),
                        Err(err) => {
                            tracing::error!(error = %err, "a pipeline task failed");
                            (err.id(), false)
                        }
                    };
                    let id = task_message.remove(&task);
                    if let Some(id) = id {
                        in_hand.remove(&id);
                        // Room again for what was left behind. (What intake committed while
                        // there was no room woke us all the same: `Notify` keeps the wake.)
                        look |= left_behind;
                    }
                    if ok {
                        backoff.succeeded();
                        id.map(|id| retry.remove(&id));
                    } else if !shutdown.stop.is_cancelled() {
                        // What failed stays claimed by this node: no new work for a pause, and
                        // this message again after its own.
                        paused_until = Some(Instant::now() + backoff.failed());
                        if let Some(id) = id {
                            let (own, at) = retry.entry(id).or_insert_with(|| {
                                (Backoff::new(RETRY_FIRST, MAX_BACKOFF), Instant::now())
                            });
                            *at = Instant::now() + own.failed();
                        }
                    }
                }
                () = self.wake.notified(), if listening => look = true,
                () = tokio::time::sleep_until(look_again) => look = true,
            }
        }
        // Finish what is in hand (what has not started gives up at once): its results are
        // committed before the store closes.
        while tasks.join_next().await.is_some() {}
        drop(work);
        let _ = committing.await;
        // Whatever this node claimed but did not finish is free for the others at once.
        if let Err(err) = self.store.release_message_claims(&owner).await {
            tracing::warn!(error = %err, "cannot release the pipeline's claims");
        }
    }

    /// Claims pending messages up to `most` in hand and reads those neither in hand nor
    /// `waiting` (for a retry), within the byte budget, with their recipients' active
    /// exemptions; and whether some may have been left behind for want of room or bytes.
    /// An error is logged here.
    async fn take_up(
        &self,
        owner: &str,
        claim: i64,
        in_hand: &HashMap<i64, i64>,
        waiting: impl Fn(i64) -> bool,
        most: usize,
    ) -> Result<(Vec<PendingMessage>, Arc<Exemptions>, bool), ()> {
        let now = store::now_millis();
        // This node's own claims come back too (those in hand and those that failed), so
        // ask for as many more as there is room for.
        let limit = i64::try_from(most).unwrap_or(i64::MAX);
        let claimed = self
            .store
            .claim_messages(owner, now, now + claim, limit)
            .await
            .map_err(|err| {
                self.throttle.error(
                    "pipeline claim",
                    format_args!("pipeline cannot claim pending messages: {err}"),
                );
            })?;
        let room = most.saturating_sub(in_hand.len());
        // As many claimed as asked for: more may be waiting.
        let mut left = claimed.len() >= most;
        let new: Vec<i64> = claimed
            .into_iter()
            .filter(|id| !in_hand.contains_key(id) && !waiting(*id))
            .take(room)
            .collect();
        // With nothing in hand the whole budget is left, and `pending_messages` always takes
        // the first message, however large.
        let budget = IN_HAND_BYTES.saturating_sub(in_hand.values().sum());
        if new.is_empty() {
            return Ok((Vec::new(), Arc::new(Exemptions::none()), left));
        }
        if budget <= 0 {
            // Claimed but no bytes to spare: taken up when messages in hand are done.
            return Ok((Vec::new(), Arc::new(Exemptions::none()), true));
        }
        let messages = self
            .store
            .pending_messages(&new, budget)
            .await
            .map_err(|err| {
                self.throttle.error(
                    "pipeline load",
                    format_args!("cannot read pending messages: {err}"),
                );
            })?;
        let users: Vec<i64> = messages
            .iter()
            .flat_map(|m| m.recipients.iter().map(|(_, user, _)| *user))
            .collect();
        let exemptions = self.exemptions(users).await?;
        // Some left for want of room or bytes.
        left |= messages.len() < new.len() || new.len() >= room;
        Ok((messages, Arc::new(exemptions), left))
    }

    /// The active exemptions of `users`, now. An error is logged here.
    async fn exemptions(&self, mut users: Vec<i64>) -> Result<Exemptions, ()> {
        users.sort_unstable();
        users.dedup();
        let read = Instant::now();
        let active = self
            .store
            .active_exemptions(&users, store::now_millis())
            .await
            .map_err(|err| {
                self.throttle.error(
                    "pipeline exemptions",
                    format_args!("cannot read the active exemptions: {err}"),
                );
            })?;
        Ok(Exemptions { active, read })
    }
}

impl Exemptions {
    /// For no messages.
    fn none() -> Self {
        Self {
            active: ActiveExemptions::new(),
            read: Instant::now(),
        }
    }
}

/// What each message's task needs.
#[derive(Clone)]
struct Work {
    pipeline: Pipeline,
    committer: Committer,
    /// Parallel classifications and decisions (`classifier.workers`).
    cpu: Arc<Semaphore>,
    /// Set at shutdown: what has not started gives up.
    stop: tokio_util::sync::CancellationToken,
}

impl Work {
    /// Classifies `message` (unless its verdict is stored), decides, and commits; whether it
    /// is done (`false`: it is taken up again after a pause).
    async fn process(self, message: PendingMessage, exemptions: Arc<Exemptions>) -> bool {
        let id = message.id;
        let p = &self.pipeline;
        let permit = tokio::select! {
            permit = self.cpu.acquire() => permit,
            () = self.stop.cancelled() => return false,
        };
        let Ok(permit) = permit else {
            return false;
        };
        let started = std::time::Instant::now();
        let (verdict, new) = match (&message.state, &message.verdict) {
            (MessageState::Classified, Some(stored)) => (stored.clone(), false),
            _ => {
                let raw: Arc<[u8]> = message.raw.as_slice().into();
                let verdict =
                    classify_bounded(raw, Arc::clone(&p.rules), p.ocr.clone(), p.timeout).await;
                (verdict, true)
            }
        };
        let micros = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
        // Read with the message a moment ago, or again if that was long ago: an exemption
        // ended meanwhile makes no job.
        let exemptions = if exemptions.read.elapsed() <= EXEMPTIONS_FRESH {
            exemptions
        } else {
            let users = message
                .recipients
                .iter()
                .map(|(_, user, _)| *user)
                .collect();
            match p.exemptions(users).await {
                Ok(fresh) => Arc::new(fresh),
                Err(()) => return false,
            }
        };
        let now = store::now_millis();
        let decided = match p
            .forwarder
            .decide(&message, &verdict, &exemptions.active, now)
            .await
        {
            Ok(decided) => decided,
            Err(err) => {
                p.throttle.error(
                    "pipeline decision",
                    format_args!("forward decision for message {id} failed; will retry: {err}"),
                );
                return false;
            }
        };
        drop(permit);
        let categories = if verdict.sensitive {
            verdict.categories.clone()
        } else {
            Vec::new()
        };
        let crate::forward::Decided {
            decisions,
            mailbox,
            withheld,
        } = decided;
        let queued = crate::forward::Queued::of(&decisions);
        let completion = Completion {
            message_id: id,
            sha256: message.envelope.sha256.clone(),
            new_verdict: new.then(|| verdict.clone()),
            categories,
            decisions,
            mailbox,
            size: i64::try_from(message.raw.len()).unwrap_or(i64::MAX),
            users: message
                .recipients
                .iter()
                .map(|(_, user, _)| *user)
                .collect(),
        };
        match self.committer.commit(completion).await {
            Ok(true) => {
                if new {
                    log_verdict(id, message.raw.len(), &verdict, micros);
                }
                p.forwarder.committed(id, &withheld, &queued).await;
                true
            }
            // Another node (or an earlier run) completed it first: nothing left to do.
            Ok(false) => true,
            Err(err) => {
                p.throttle.error(
                    "pipeline commit",
                    format_args!("cannot store the processing of message {id}; will retry: {err}"),
                );
                false
            }
        }
    }
}

fn log_verdict(id: i64, size: usize, verdict: &VerdictRecord, micros: u64) {
    tracing::info!(
        id,
        size,
        sensitive = verdict.sensitive,
        categories = %verdict.categories.join(","),
        micros,
        "message classified"
    );
}
