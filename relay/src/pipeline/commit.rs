//! Group commit for the pipeline's results, as intake does for accepted messages
//! (`store/src/writer.rs`): one task takes every completion that is waiting, commits them in
//! one transaction (one fsync, and on PostgreSQL one turn of the audit lock) and answers each
//! sender. Under load a batch grows up to `MAX_BATCH`; a lone completion is committed at
//! once, with no added delay.
//!
//! If a shared transaction fails, each completion is tried in a transaction of its own, so
//! one bad message cannot hold back its neighbours; whoever still fails gets the error and
//! its message is taken up again later.

use store::{Completion, Store};
use tokio::sync::{mpsc, oneshot};

/// Most completions in one transaction.
const MAX_BATCH: usize = 128;

type Reply = oneshot::Sender<store::Result<bool>>;

/// Where the pipeline's tasks send their completions.
#[derive(Clone)]
pub(super) struct Committer {
    sender: mpsc::Sender<(Completion, Reply)>,
}

impl Committer {
    /// Starts the committing task; it ends when every `Committer` clone is dropped.
    pub(super) fn start(store: Store) -> (Self, tokio::task::JoinHandle<()>) {
        let (sender, receiver) = mpsc::channel(MAX_BATCH);
        let task = tokio::spawn(run(store, receiver));
        (Self { sender }, task)
    }

    /// Commits `completion` (with whatever else is waiting); whether it was committed
    /// (`false`: its message was completed elsewhere first).
    ///
    /// # Errors
    /// When the store failed, or the committing task is gone (shutdown).
    pub(super) async fn commit(&self, completion: Completion) -> anyhow::Result<bool> {
        let gone = || anyhow::anyhow!("the pipeline is stopping");
        let (reply, answer) = oneshot::channel();
        self.sender
            .send((completion, reply))
            .await
            .map_err(|_| gone())?;
        Ok(answer.await.map_err(|_| gone())??)
    }
}

async fn run(store: Store, mut receiver: mpsc::Receiver<(Completion, Reply)>) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while receiver.recv_many(&mut batch, MAX_BATCH).await > 0 {
        let (completions, replies): (Vec<Completion>, Vec<Reply>) = batch.drain(..).unzip();
        match store
            .complete_messages(&completions, store::now_millis())
            .await
        {
            Ok(done) => {
                for (reply, done) in replies.into_iter().zip(done) {
                    let _ = reply.send(Ok(done));
                }
            }
            Err(err) if completions.len() == 1 => {
                let _ = replies.into_iter().next().map(|r| r.send(Err(err)));
            }
            Err(_) => {
                for (completion, reply) in completions.into_iter().zip(replies) {
                    let one = store
                        .complete_messages(std::slice::from_ref(&completion), store::now_millis())
                        .await
                        .map(|done| done[0]);
                    let _ = reply.send(one);
                }
            }
        }
    }
}
