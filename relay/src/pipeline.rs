//! The processing pipeline: every accepted message is classified and its verdict stored.
//!
//! It works from the database, not from memory: at start it takes up every message still in
//! state `received` (a restart resumes where a crash left off), and SMTP intake wakes it
//! after each commit. Several nodes on one PostgreSQL share the work: each claims a few
//! pending messages for a while before it classifies them ([`Store::claim_messages`]), so a
//! message is classified by one node; a dead node's claims run out after the classifier's
//! timeout plus a minute. Storing the verdict and the decisions stays idempotent, so even two
//! nodes working on one message (a claim that ran out) give one result.
//!
//! A failing store (a full disk, a database outage) never turns into a loop: a round with
//! failures is followed by a pause that doubles up to half a minute, and the repeating error
//! is logged at most every ten seconds.
//!
//! Classification runs on the blocking pool, bounded in time; so does the OCR of scans it
//! asks for (each OCR run ends by the message's deadline at the latest). A timeout or a crash
//! inside the classifier is a verdict too: sensitive, `uninspectable` (fail closed).

use std::sync::Arc;
use std::time::Duration;

use classifier::{Ocr, Rules, Verdict, category};
use store::{Store, VerdictRecord};
use tokio::sync::Notify;
use tokio::task::JoinSet;

use crate::ocr::Tesseract;
use crate::shutdown::Shutdown;

/// Messages claimed per round for each parallel classification.
const CLAIM_PER_WORKER: usize = 4;
/// How often the pipeline looks for work without being woken (other nodes' intake).
const POLL: Duration = Duration::from_secs(10);
/// Longest pause after failing rounds.
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
    /// Runs until `shutdown.stop`; the round in progress is finished first.
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
        let workers = self.workers.max(1);
        let claim =
            i64::try_from((self.timeout + Duration::from_secs(60)).as_millis()).unwrap_or(i64::MAX);
        let mut backoff = crate::throttle::Backoff::new(Duration::from_millis(100), MAX_BACKOFF);
        loop {
            let now = store::now_millis();
            let limit = i64::try_from(workers * CLAIM_PER_WORKER).unwrap_or(64);
            let batch = match self
                .store
                .claim_messages(&owner, now, now + claim, limit)
                .await
            {
                Ok(ids) => ids,
                Err(err) => {
                    self.throttle.error(
                        "pipeline claim",
                        format_args!("pipeline cannot read pending messages: {err}"),
                    );
                    tokio::select! {
                        () = shutdown.stop.cancelled() => break,
                        () = tokio::time::sleep(backoff.failed()) => {}
                    }
                    continue;
                }
            };
            if batch.is_empty() {
                backoff.succeeded();
                tokio::select! {
                    () = shutdown.stop.cancelled() => break,
                    () = self.wake.notified() => {}
                    () = tokio::time::sleep(POLL) => {}
                }
                continue;
            }
            // `workers` messages in flight at a time, without waiting for a whole group.
            let permits = Arc::new(tokio::sync::Semaphore::new(workers));
            let mut set = JoinSet::new();
            for id in batch {
                let Ok(permit) = Arc::clone(&permits).acquire_owned().await else {
                    break;
                };
                let this = self.clone();
                set.spawn(async move {
                    let done = this.process(id).await;
                    drop(permit);
                    done
                });
                if shutdown.stop.is_cancelled() {
                    break;
                }
            }
            let mut failed = false;
            while let Some(done) = set.join_next().await {
                failed |= !done.unwrap_or(false);
            }
            if shutdown.stop.is_cancelled() {
                break;
            }
            if failed {
                // What failed stays claimed by this node and is tried again after the pause.
                tokio::select! {
                    () = shutdown.stop.cancelled() => break,
                    () = tokio::time::sleep(backoff.failed()) => {}
                }
            } else {
                backoff.succeeded();
            }
        }
        // Whatever this node claimed but did not finish is free for the others at once.
        if let Err(err) = self.store.release_message_claims(&owner).await {
            tracing::warn!(error = %err, "cannot release the pipeline's claims");
        }
    }

    /// Classifies message `id` (unless it has a verdict) and makes its forward decisions.
    /// Whether everything was stored; `false`: it is tried again after a pause.
    async fn process(&self, id: i64) -> bool {
        let classified = match self.store.verdict(id).await {
            Ok(Some(_)) => None,
            Ok(None) => match self.classify(id).await {
                Ok(done) => done,
                Err(()) => return false,
            },
            Err(err) => {
                self.throttle.error(
                    "pipeline verdict",
                    format_args!("cannot read the verdict of message {id}: {err}"),
                );
                return false;
            }
        };
        // Freshly classified here: decide with the bytes and verdict in hand. Otherwise (a
        // resumed message, or another node's verdict) the forwarder loads them.
        let decided = match classified {
            Some((raw, verdict)) => self.forwarder.decide(id, &raw, &verdict).await,
            None => self.forwarder.process(id).await,
        };
        if let Err(err) = decided {
            self.throttle.error(
                "pipeline decision",
                format_args!("forward decision for message {id} failed; will retry: {err}"),
            );
            return false;
        }
        true
    }

    /// Classifies message `id` and stores the verdict; returns the bytes and the verdict when
    /// this verdict is the one stored (`None`: another node's was first).
    ///
    /// # Errors
    /// When the message could not be loaded or the verdict not stored (logged here).
    async fn classify(&self, id: i64) -> Result<Option<(Arc<[u8]>, VerdictRecord)>, ()> {
        let raw = match self.store.message_raw(id).await {
            Ok(raw) => raw,
            Err(err) => {
                self.throttle.error(
                    "pipeline load",
                    format_args!("cannot load message {id} for classification: {err}"),
                );
                return Err(());
            }
        };
        let raw: Arc<[u8]> = raw.into();
        let started = std::time::Instant::now();
        let record = classify_bounded(
            Arc::clone(&raw),
            Arc::clone(&self.rules),
            self.ocr.clone(),
            self.timeout,
        )
        .await;
        match self.store.record_verdict(id, &record).await {
            Ok(stored) => {
                tracing::info!(
                    id,
                    size = raw.len(),
                    sensitive = record.sensitive,
                    categories = %record.categories.join(","),
                    micros = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX),
                    "message classified"
                );
                Ok(stored.then_some((raw, record)))
            }
            Err(err) => {
                self.throttle.error(
                    "pipeline verdict store",
                    format_args!("cannot store the verdict of message {id}; will retry: {err}"),
                );
                Err(())
            }
        }
    }
}

/// Classifies on the blocking pool within `timeout`, scans read with `ocr`. A timeout or
/// panic is a fail-closed verdict.
pub async fn classify_bounded(
    raw: Arc<[u8]>,
    rules: Arc<Rules>,
    ocr: Option<Arc<Tesseract>>,
    timeout: Duration,
) -> VerdictRecord {
    // OCR still running at the deadline is killed: its result could no longer count.
    let deadline = std::time::Instant::now() + timeout;
    let task = tokio::task::spawn_blocking(move || {
        let ocr = ocr.as_deref().map(|t| t.until(deadline));
        classifier::classify_with(&raw, &rules, ocr.as_ref().map(|o| o as &dyn Ocr))
    });
    match tokio::time::timeout(timeout, task).await {
        Ok(Ok(verdict)) => record(&verdict),
        Ok(Err(_)) => {
            tracing::error!("classifier crashed; message counts as uninspectable");
            fail_closed("classifier failure")
        }
        Err(_) => {
            tracing::warn!(
                timeout_secs = timeout.as_secs(),
                "classifier timed out; message counts as uninspectable"
            );
            fail_closed("classifier timeout")
        }
    }
}

fn record(verdict: &Verdict) -> VerdictRecord {
    VerdictRecord {
        sensitive: verdict.sensitive,
        categories: verdict.categories.clone(),
        findings: serde_json::to_string(&verdict.findings).unwrap_or_else(|_| "[]".to_owned()),
    }
}

fn fail_closed(reason: &str) -> VerdictRecord {
    VerdictRecord {
        sensitive: true,
        categories: vec![category::UNINSPECTABLE.to_owned()],
        findings: serde_json::json!([{
            "detector": "inspection",
            "category": category::UNINSPECTABLE,
            "confidence": 100,
            "location": {},
            "hint": reason,
        }])
        .to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_classification_that_takes_too_long_fails_closed() {
        // 3 MB of text with the Steuer-ID pattern's first digits everywhere keeps the
        // classifier busy longer than a zero timeout allows.
        let raw = format!("Subject: x\r\n\r\n{}\r\n", "86095 ".repeat(500_000)).into_bytes();
        let v =
            classify_bounded(raw.into(), Arc::new(Rules::default()), None, Duration::ZERO).await;
        assert!(v.sensitive);
        assert_eq!(v.categories, [category::UNINSPECTABLE]);
        assert!(v.findings.contains("classifier timeout"), "{}", v.findings);
    }

    #[tokio::test]
    async fn a_verdict_is_recorded_without_values() {
        let raw = b"Subject: x\r\n\r\nSteuer-ID 86095742719\r\n".to_vec();
        let v = classify_bounded(
            raw.into(),
            Arc::new(Rules::default()),
            None,
            Duration::from_secs(30),
        )
        .await;
        assert!(v.sensitive);
        assert_eq!(v.categories, ["tax_id"]);
        assert!(!v.findings.contains("86095742719"), "{}", v.findings);
    }
}
