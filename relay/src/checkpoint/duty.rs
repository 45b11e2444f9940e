//! The daemon's checkpoint duty: one at start when the log moved since the file's last
//! checkpoint, then one every `audit.checkpoint_interval_secs` when the log grew, and one at
//! shutdown. Each is appended to the file, logged (journald keeps it, and forwards it where
//! configured) and, at most every `audit.checkpoint_mail_hours`, mailed to
//! `audit.checkpoint_to`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::Mutex;

use super::{Checkpoint, Signer, last_in};
use crate::config::Config;
use crate::shutdown::Shutdown;

/// After a failed checkpoint, the next try waits this long at first, doubling up to the
/// interval: a full disk or a database outage must not turn into a loop.
const FIRST_RETRY: Duration = Duration::from_secs(5);

/// Writes checkpoints for one running daemon.
pub struct Duty {
    signer: Signer,
    store: store::Store,
    config: Arc<Config>,
    dkim: crate::dkim::Signer,
    queued: Arc<tokio::sync::Notify>,
    state: Mutex<State>,
}

struct State {
    /// The (seq, head) last written, from the file at start.
    last: Option<(i64, String)>,
    /// When the last mail was queued (none since start: the first checkpoint is mailed).
    mailed: Option<Instant>,
}

impl Duty {
    /// Loads (or creates) the key and reads the file's newest checkpoint.
    ///
    /// # Errors
    /// When the key cannot be loaded or the file exists but cannot be read.
    pub fn new(
        config: Arc<Config>,
        store: store::Store,
        dkim: crate::dkim::Signer,
        queued: Arc<tokio::sync::Notify>,
    ) -> anyhow::Result<Self> {
        let signer = Signer::load(&config)?;
        let last = last_in(signer.file())?.map(|c| (c.seq, c.head));
        Ok(Self {
            signer,
            store,
            config,
            dkim,
            queued,
            state: Mutex::new(State { last, mailed: None }),
        })
    }

    /// Writes a checkpoint when the log moved since the last one; returns it. Mails the
    /// newest checkpoint to `audit.checkpoint_to` when one is due: the first time after a
    /// start (also when nothing moved), then at most every `checkpoint_mail_hours`.
    ///
    /// # Errors
    /// When the database or the file fails (nothing was recorded as written then).
    pub async fn checkpoint_if_moved(&self) -> anyhow::Result<Option<Checkpoint>> {
        let mut state = self.state.lock().await;
        let head = self.store.audit_head().await?;
        let written = if state.last.as_ref() == Some(&head) {
            None
        } else {
            let checkpoint = self.signer.write(&self.store).await?;
            tracing::info!(
                checkpoint = %checkpoint.line(),
                file = %self.signer.file().display(),
                "audit checkpoint"
            );
            state.last = Some((checkpoint.seq, checkpoint.head.clone()));
            Some(checkpoint)
        };
        let due = state
            .mailed
            .is_none_or(|at| at.elapsed() >= self.config.audit.checkpoint_mail_interval);
        if let Some(to) = &self.config.audit.checkpoint_to
            && due
        {
            let newest = match &written {
                Some(c) => Some(c.clone()),
                None => {
                    let file = self.signer.file().to_path_buf();
                    tokio::task::spawn_blocking(move || last_in(&file))
                        .await
                        .ok()
                        .and_then(Result::ok)
                        .flatten()
                }
            };
            if let Some(checkpoint) = newest {
                self.mail(to, &checkpoint).await;
                state.mailed = Some(Instant::now());
            }
        }
        Ok(written)
    }

    /// Whether the log still fits the checkpoints this installation signed (see
    /// [`super::Signer::verified_head`]).
    ///
    /// # Errors
    /// When it does not, or the database or the file fails.
    pub async fn check_log(&self) -> anyhow::Result<()> {
        self.signer.verified_head(&self.store).await.map(|_| ())
    }

    /// Queues the checkpoint mail to `to`, DKIM-signed.
    async fn mail(&self, to: &str, checkpoint: &Checkpoint) {
        let mut mail = crate::compose::audit_checkpoint(
            &self.config.notices,
            to,
            &checkpoint.line(),
            checkpoint.seq,
        );
        mail.body = self.dkim.sign(mail.body);
        match self
            .store
            .enqueue(&mail, None, None, store::now_millis())
            .await
        {
            Ok(job) => {
                self.queued.notify_one();
                tracing::info!(job, "audit checkpoint mailed to audit.checkpoint_to");
            }
            Err(err) => tracing::error!(error = %err, "cannot queue the checkpoint mail"),
        }
    }

    /// Until stopped: a checkpoint now if the log moved, then every interval. The final one
    /// is [`Duty::checkpoint_if_moved`] after the other tasks ended (see `serve`).
    pub async fn run(self: Arc<Self>, shutdown: Shutdown) {
        let interval = self.config.audit.checkpoint_interval;
        let mut wait = Duration::ZERO;
        let mut failures = 0u32;
        loop {
            tokio::select! {
                () = shutdown.stop.cancelled() => return,
                () = tokio::time::sleep(wait) => {}
            }
            wait = match self.checkpoint_if_moved().await {
                Ok(_) => {
                    failures = 0;
                    interval
                }
                Err(err) => {
                    let next = FIRST_RETRY
                        .saturating_mul(1 << failures.min(16))
                        .min(interval);
                    failures += 1;
                    tracing::error!(error = %format!("{err:#}"), retry_secs = next.as_secs(), "cannot write the audit checkpoint");
                    next
                }
            };
        }
    }
}
