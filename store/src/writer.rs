//! Group commit for accepted messages.
//!
//! SMTP may only say `250` after the message is durable, which costs an fsync per commit
//! (SQLite `synchronous = FULL`, PostgreSQL `synchronous_commit = on`). One task owns all
//! message inserts: it takes every insert that is waiting, writes them in one transaction,
//! commits once and then answers each caller. Under load a batch grows to `max_batch`; a
//! lone message is committed at once, with no added delay.
//!
//! If a shared transaction fails, each message is retried in a transaction of its own, so
//! one bad message cannot fail its neighbours; whoever still fails gets the error (and SMTP
//! answers `451`), and nothing of that message is stored.

use std::sync::Mutex;

use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use crate::db::Db;
use crate::{Error, ErrorKind, NewMessage, Result};

struct Job {
    message: NewMessage,
    reply: oneshot::Sender<Result<i64>>,
}

/// Handle to the group-commit task.
#[derive(Debug)]
pub(crate) struct Writer {
    sender: Mutex<Option<mpsc::Sender<Job>>>,
    task: tokio::sync::Mutex<Option<JoinHandle<()>>>,
}

impl Writer {
    pub(crate) fn start(db: Db, max_batch: usize) -> Self {
        let max_batch = max_batch.max(1);
        // Bounded: when the database stalls, SMTP sessions wait here instead of piling up
        // messages in memory.
        let (sender, receiver) = mpsc::channel(max_batch * 4);
        let task = tokio::spawn(run(db, receiver, max_batch));
        Self {
            sender: Mutex::new(Some(sender)),
            task: tokio::sync::Mutex::new(Some(task)),
        }
    }

    pub(crate) async fn submit(&self, message: NewMessage) -> Result<i64> {
        let sender = self
            .sender
            .lock()
            .map_err(|_| closed())?
            .clone()
            .ok_or_else(closed)?;
        let (reply, answer) = oneshot::channel();
        sender
            .send(Job { message, reply })
            .await
            .map_err(|_| closed())?;
        answer.await.map_err(|_| closed())?
    }

    /// Stops taking new messages and waits until every submitted one is answered.
    pub(crate) async fn close(&self) {
        if let Ok(mut sender) = self.sender.lock() {
            sender.take();
        }
        if let Some(task) = self.task.lock().await.take() {
            let _ = task.await;
        }
    }
}

fn closed() -> Error {
    Error::new(ErrorKind::Unavailable, "store is shutting down")
}

async fn run(db: Db, mut receiver: mpsc::Receiver<Job>, max_batch: usize) {
    let mut batch = Vec::with_capacity(max_batch);
    while receiver.recv_many(&mut batch, max_batch).await > 0 {
        let messages: Vec<&NewMessage> = batch.iter().map(|job| &job.message).collect();
        match commit(&db, &messages).await {
            Ok(ids) => {
                for (job, id) in batch.drain(..).zip(ids) {
                    let _ = job.reply.send(Ok(id));
                }
            }
            Err(err) => {
                tracing::warn!(batch = batch.len(), error = %err, "group commit failed; retrying one by one");
                for job in batch.drain(..) {
                    let result = commit(&db, &[&job.message]).await.map(|ids| ids[0]);
                    if let Err(err) = &result {
                        tracing::error!(error = %err, "message commit failed");
                    }
                    let _ = job.reply.send(result);
                }
            }
        }
    }
}

/// Writes `messages` in one transaction; returns their ids in order.
async fn commit(db: &Db, messages: &[&NewMessage]) -> Result<Vec<i64>> {
    // The same statements for both backends; the macro expands them once per transaction
    // type so each is checked against its own database.
    macro_rules! insert_all {
        ($tx:ident) => {{
            let mut ids = Vec::with_capacity(messages.len());
            for m in messages {
                let size = i64::try_from(m.raw.len()).unwrap_or(i64::MAX);
                let (id,): (i64,) = sqlx::query_as(
                    "INSERT INTO messages
                       (received_at, mail_from, helo, peer_ip, tls, size, sha256, message_id, state)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'received') RETURNING id",
                )
                .bind(m.received_at)
                .bind(&m.mail_from)
                .bind(&m.helo)
                .bind(&m.peer_ip)
                .bind(m.tls)
                .bind(size)
                .bind(&m.sha256)
                .bind(&m.message_id)
                .fetch_one(&mut *$tx)
                .await?;
                sqlx::query("INSERT INTO message_blobs (message_id, raw) VALUES ($1, $2)")
                    .bind(id)
                    .bind(&m.raw)
                    .execute(&mut *$tx)
                    .await?;
                for r in &m.recipients {
                    sqlx::query(
                        "INSERT INTO message_recipients (message_id, recipient, user_id)
                         VALUES ($1, $2, $3)",
                    )
                    .bind(id)
                    .bind(&r.address)
                    .bind(r.user_id)
                    .execute(&mut *$tx)
                    .await?;
                }
                ids.push(id);
            }
            $tx.commit().await?;
            ids
        }};
    }
    Ok(match db {
        Db::Sqlite(pools) => {
            // IMMEDIATE takes the write lock up front, so a CLI process writing at the same
            // time makes us wait (busy_timeout) rather than fail mid-transaction.
            let mut tx = pools.write.begin_with("BEGIN IMMEDIATE").await?;
            insert_all!(tx)
        }
        Db::Postgres(pool) => {
            let mut tx = pool.begin().await?;
            insert_all!(tx)
        }
    })
}
