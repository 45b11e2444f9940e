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
//! messages are in hand at once, claimed and read in batches (one claim, two reads) whenever
//! fewer than half that many are left; each is classified and decided on its own, and the
//! results are committed together, whatever is ready, in one transaction ([`commit`]). So one
//! slow message (a scan read by OCR) holds up only itself, and under load the cost of a
//! commit is shared by many messages.
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

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use classifier::Rules;
use store::{Completion, MessageState, PendingMessage, Store, VerdictRecord};
use tokio::sync::{Notify, Semaphore};
use tokio::task::JoinSet;

use crate::forward::ActiveExemptions;
use crate::ocr::Tesseract;
use crate::shutdown::Shutdown;
use commit::Committer;

/// Messages in hand at once for each parallel classification: enough that commits are
/// shared by many, few enough that their bytes stay a small part of memory.
const IN_FLIGHT_PER_WORKER: usize = 8;
/// How often the pipeline looks for work without being woken (other nodes' intake).
const POLL: Duration = Duration::from_secs(10);
/// Longest pause after failures.
const MAX_BACKOFF: Duration = Duration::from_secs(30);

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
        let (committer, committing) = Committer::start(self.store.clone());
        let work = Work {
            pipeline: self.clone(),
            committer,
            cpu: Arc::new(Semaphore::new(self.workers.max(1))),
        };
        let most = self.workers.max(1) * IN_FLIGHT_PER_WORKER;
        let claim =
            i64::try_from((self.timeout + Duration::from_secs(60)).as_millis()).unwrap_or(i64::MAX);
        let mut backoff = crate::throttle::Backoff::new(Duration::from_millis(100), MAX_BACKOFF);
        let mut paused_until: Option<tokio::time::Instant> = None;
        let mut in_hand: HashSet<i64> = HashSet::new();
        // Which message each task works on: a task that panicked still gives its message up.
        let mut task_message: HashMap<tokio::task::Id, i64> = HashMap::new();
        let mut tasks: JoinSet<bool> = JoinSet::new();
        while !shutdown.stop.is_cancelled() {
            let paused = paused_until.is_some_and(|until| tokio::time::Instant::now() < until);
            let mut idle = false;
            if !paused && in_hand.len() <= most / 2 {
                match self.take_up(&owner, claim, &in_hand, most).await {
                    Ok((messages, exemptions)) => {
                        idle = messages.is_empty();
                        let exemptions = Arc::new(exemptions);
                        for message in messages {
                            in_hand.insert(message.id);
                            let id = message.id;
                            let task =
                                tasks.spawn(work.clone().process(message, Arc::clone(&exemptions)));
                            task_message.insert(task.id(), id);
                        }
                    }
                    Err(()) => {
                        paused_until = Some(tokio::time::Instant::now() + backoff.failed());
                    }
                }
            }
            let resume = paused_until.unwrap_or_else(tokio::time::Instant::now);
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
                    if let Some(id) = task_message.remove(&task) {
                        in_hand.remove(&id);
                    }
                    if ok {
                        backoff.succeeded();
                    } else {
                        // What failed stays claimed by this node and is taken up again after
                        // the pause.
                        paused_until = Some(tokio::time::Instant::now() + backoff.failed());
                    }
                }
                () = self.wake.notified(), if !paused && idle => {}
                () = tokio::time::sleep_until(resume), if paused => {}
                () = tokio::time::sleep(POLL), if idle && !paused => {}
            }
        }
        // Finish what is in hand: its results are committed before the store closes.
        while tasks.join_next().await.is_some() {}
        drop(work);
        let _ = committing.await;
        // Whatever this node claimed but did not finish is free for the others at once.
        if let Err(err) = self.store.release_message_claims(&owner).await {
            tracing::warn!(error = %err, "cannot release the pipeline's claims");
        }
    }

    /// Claims pending messages up to `most` in hand and reads those not in hand yet, with the
    /// exemptions of their recipients. An error is logged here.
    async fn take_up(
        &self,
        owner: &str,
        claim: i64,
        in_hand: &HashSet<i64>,
        most: usize,
    ) -> Result<(Vec<PendingMessage>, ActiveExemptions), ()> {
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
        let new: Vec<i64> = claimed
            .into_iter()
            .filter(|id| !in_hand.contains(id))
            .take(room)
            .collect();
        let messages = self.store.pending_messages(&new).await.map_err(|err| {
            self.throttle.error(
                "pipeline load",
                format_args!("cannot read pending messages: {err}"),
            );
        })?;
        let mut exemptions = ActiveExemptions::new();
        for (_, user, _) in messages.iter().flat_map(|m| &m.recipients) {
            if exemptions.contains_key(user) {
                continue;
            }
            let active = self
                .store
                .active_exemption(*user, now)
                .await
                .map_err(|err| {
                    self.throttle.error(
                        "pipeline exemptions",
                        format_args!("cannot read the exemptions of user {user}: {err}"),
                    );
                })?;
            exemptions.insert(*user, active);
        }
        Ok((messages, exemptions))
    }
}

/// What each message's task needs.
#[derive(Clone)]
struct Work {
    pipeline: Pipeline,
    committer: Committer,
    /// Parallel classifications and decisions (`classifier.workers`).
    cpu: Arc<Semaphore>,
}

impl Work {
    /// Classifies `message` (unless its verdict is stored), decides, and commits; whether it
    /// is done (`false`: it is taken up again after a pause).
    async fn process(self, message: PendingMessage, exemptions: Arc<ActiveExemptions>) -> bool {
        let id = message.id;
        let p = &self.pipeline;
        let Ok(permit) = self.cpu.acquire().await else {
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
        let now = store::now_millis();
        let decided = match p
            .forwarder
            .decide(&message, &verdict, &exemptions, now)
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
