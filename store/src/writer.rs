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

use crate::db::{Db, ROWS_PER_INSERT, value_rows};
use crate::{Error, ErrorKind, MessageState, NewMessage, Result};

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

/// Most message bytes bound to one `INSERT`: every value is copied into the statement, and
/// PostgreSQL refuses a message over 1 GiB.
const BYTES_PER_INSERT: usize = 16 * 1024 * 1024;

/// `rows` cut into the runs one `INSERT` takes: at most `ROWS_PER_INSERT` rows and
/// `BYTES_PER_INSERT` message bytes each (a larger message alone).
fn statements<'a>(rows: &'a [(i64, &NewMessage)]) -> Vec<&'a [(i64, &'a NewMessage)]> {
    let mut runs = Vec::new();
    let (mut start, mut bytes) = (0, 0);
    for (i, (_, m)) in rows.iter().enumerate() {
        let full = i - start == ROWS_PER_INSERT || bytes + m.raw.len() > BYTES_PER_INSERT;
        if i > start && full {
            runs.push(&rows[start..i]);
            (start, bytes) = (i, 0);
        }
        bytes += m.raw.len();
    }
    if start < rows.len() {
        runs.push(&rows[start..]);
    }
    runs
}

/// Writes `messages` in one transaction; returns their ids in order.
///
/// A few statements for the whole batch, not three per message: the ids are taken first
/// (so each row's id is known without relying on the order `RETURNING` gives), then each
/// table gets one multi-row `INSERT` per run of rows ([`statements`]).
async fn commit(db: &Db, messages: &[&NewMessage]) -> Result<Vec<i64>> {
    // The same statements for both backends; the macro expands them once per transaction
    // type so each is checked against its own database. `$overriding` is PostgreSQL's
    // permission to write an identity column.
    macro_rules! insert_all {
        ($tx:ident, $ids:expr, $overriding:expr) => {{
            let ids: Vec<i64> = $ids;
            let rows: Vec<(i64, &NewMessage)> = ids.iter().copied().zip(messages.iter().copied()).collect();
            for chunk in statements(&rows) {
                let insert = format!(
                    "INSERT INTO messages
                       (id, received_at, mail_from, helo, peer_ip, tls, size, sha256, message_id, state)
                     {} VALUES {}",
                    $overriding,
                    value_rows(chunk.len(), 10)
                );
                let mut query = sqlx::query(sqlx::AssertSqlSafe(insert));
                for (id, m) in chunk {
                    query = query
                        .bind(*id)
                        .bind(m.received_at)
                        .bind(&m.mail_from)
                        .bind(&m.helo)
                        .bind(&m.peer_ip)
                        .bind(m.tls)
                        .bind(i64::try_from(m.raw.len()).unwrap_or(i64::MAX))
                        .bind(&m.sha256)
                        .bind(&m.message_id)
                        .bind(MessageState::Received.as_str());
                }
                query.execute(&mut *$tx).await?;
                let insert = format!(
                    "INSERT INTO message_blobs (message_id, raw) VALUES {}",
                    value_rows(chunk.len(), 2)
                );
                let mut query = sqlx::query(sqlx::AssertSqlSafe(insert));
                for (id, m) in chunk {
                    query = query.bind(*id).bind(&m.raw);
                }
                query.execute(&mut *$tx).await?;
            }
            let recipients: Vec<(i64, &crate::StoredRecipient)> = rows
                .iter()
                .flat_map(|(id, m)| m.recipients.iter().map(move |r| (*id, r)))
                .collect();
            for chunk in recipients.chunks(ROWS_PER_INSERT) {
                let insert = format!(
                    "INSERT INTO message_recipients (message_id, recipient, user_id) VALUES {}",
                    value_rows(chunk.len(), 3)
                );
                let mut query = sqlx::query(sqlx::AssertSqlSafe(insert));
                for (id, r) in chunk {
                    query = query.bind(*id).bind(&r.address).bind(r.user_id);
                }
                query.execute(&mut *$tx).await?;
            }
            $tx.commit().await?;
            ids
        }};
    }
    let n = i64::try_from(messages.len()).unwrap_or(i64::MAX);
    Ok(match db {
        Db::Sqlite(pools) => {
            // IMMEDIATE takes the write lock up front, so a CLI process writing at the same
            // time makes us wait (busy_timeout) rather than fail mid-transaction. Holding it,
            // the next ids are those after the largest (what SQLite would choose itself).
            let mut tx = pools.write.begin_with("BEGIN IMMEDIATE").await?;
            let (last,): (i64,) = sqlx::query_as("SELECT COALESCE(MAX(id), 0) FROM messages")
                .fetch_one(&mut *tx)
                .await?;
            insert_all!(tx, (1..=n).map(|i| last + i).collect(), "")
        }
        Db::Postgres(pool) => {
            let mut tx = pool.begin().await?;
            // Other nodes take ids from the same sequence; ascending, as they were received.
            let mut ids: Vec<i64> = sqlx::query_scalar(
                "SELECT nextval(pg_get_serial_sequence('messages', 'id')) FROM generate_series(1, $1)",
            )
            .bind(n)
            .fetch_all(&mut *tx)
            .await?;
            ids.sort_unstable();
            insert_all!(tx, ids, "OVERRIDING SYSTEM VALUE")
        }
    })
}

#[cfg(test)]
mod tests {
    use super::{BYTES_PER_INSERT, ROWS_PER_INSERT, statements};
    use crate::NewMessage;

    fn message(bytes: usize) -> NewMessage {
        NewMessage {
            received_at: 0,
            mail_from: String::new(),
            helo: String::new(),
            peer_ip: String::new(),
            tls: false,
            raw: vec![b'x'; bytes],
            sha256: String::new(),
            message_id: None,
            recipients: Vec::new(),
        }
    }

    /// The lengths of the runs `statements` cuts messages of `sizes` bytes into.
    fn runs(sizes: &[usize]) -> Vec<usize> {
        let messages: Vec<NewMessage> = sizes.iter().map(|n| message(*n)).collect();
        let rows: Vec<(i64, &NewMessage)> = (0..).zip(&messages).collect();
        let runs = statements(&rows);
        assert_eq!(runs.iter().map(|r| r.len()).sum::<usize>(), rows.len());
        runs.iter().map(|r| r.len()).collect()
    }

    #[test]
    fn inserts_are_cut_by_rows_and_by_bytes_and_a_large_message_goes_alone() {
        assert_eq!(runs(&[]), Vec::<usize>::new());
        assert_eq!(runs(&[10; 3]), [3]);
        assert_eq!(
            runs(&vec![10; ROWS_PER_INSERT * 2 + 1]),
            [ROWS_PER_INSERT, ROWS_PER_INSERT, 1]
        );
        let half = BYTES_PER_INSERT / 2;
        assert_eq!(runs(&[half, half, 1, half]), [2, 2]);
        assert_eq!(runs(&[BYTES_PER_INSERT * 2, 1]), [1, 1]);
        assert_eq!(runs(&[1, BYTES_PER_INSERT * 2, 1]), [1, 1, 1]);
    }
}
