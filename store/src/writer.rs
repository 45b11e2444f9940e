//! Group commit for accepted messages.
//!
//! SMTP may only say `250` after the message is durable, which costs an fsync per commit
//! (SQLite `synchronous = FULL`, PostgreSQL `synchronous_commit = on`). One task owns all
//! message inserts: it takes every insert that is waiting, writes them in one transaction
//! (on PostgreSQL one statement, on SQLite a few multi-row `INSERT`s), commits once and then
//! answers each caller. Under load a batch grows to `max_batch`; a
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

/// Writes `messages` in one transaction; returns their ids in order. A few statements for
/// the whole batch, not three per message.
async fn commit(db: &Db, messages: &[&NewMessage]) -> Result<Vec<i64>> {
    Ok(match db {
        Db::Sqlite(pools) => {
            // IMMEDIATE takes the write lock up front, so a CLI process writing at the same
            // time makes us wait (busy_timeout) rather than fail mid-transaction.
            let mut tx = pools.write.begin_with("BEGIN IMMEDIATE").await?;
            let ids = insert_sqlite(&mut tx, messages).await?;
            tx.commit().await?;
            ids
        }
        Db::Postgres(pool) => {
            // One statement commits on its own: the whole batch in one round trip. Several
            // (large messages) go in one transaction, so the batch stays all or nothing.
            let rows: Vec<(i64, &NewMessage)> = (0..).zip(messages.iter().copied()).collect();
            match statements(&rows).as_slice() {
                [run] => insert_postgres(pool, run).await?,
                runs => {
                    let mut tx = pool.begin().await?;
                    let mut ids = Vec::with_capacity(messages.len());
                    for run in runs {
                        ids.extend(insert_postgres(&mut *tx, run).await?);
                    }
                    tx.commit().await?;
                    ids
                }
            }
        }
    })
}

/// Inserts `messages` on SQLite inside `tx`, which holds the write lock: the ids are taken
/// first, after the largest (what SQLite would choose itself), so each row's id is known
/// without relying on the order `RETURNING` gives; then each table gets one multi-row
/// `INSERT` per run of rows ([`statements`]). Returns the ids in order.
async fn insert_sqlite(
    tx: &mut sqlx::SqliteConnection,
    messages: &[&NewMessage],
) -> Result<Vec<i64>> {
    let (last,): (i64,) = sqlx::query_as("SELECT COALESCE(MAX(id), 0) FROM messages")
        .fetch_one(&mut *tx)
        .await?;
    let rows: Vec<(i64, &NewMessage)> = (last + 1..).zip(messages.iter().copied()).collect();
    for run in statements(&rows) {
        let insert = format!(
            "INSERT INTO messages
               (id, received_at, mail_from, helo, peer_ip, tls, size, sha256, message_id, state)
             VALUES {}",
            value_rows(run.len(), 10)
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(insert));
        for (id, m) in run {
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
        query.execute(&mut *tx).await?;
        let insert = format!(
            "INSERT INTO message_blobs (message_id, raw) VALUES {}",
            value_rows(run.len(), 2)
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(insert));
        for (id, m) in run {
            query = query.bind(*id).bind(&m.raw);
        }
        query.execute(&mut *tx).await?;
    }
    let recipients: Vec<(i64, &crate::StoredRecipient)> = rows
        .iter()
        .flat_map(|(id, m)| m.recipients.iter().map(move |r| (*id, r)))
        .collect();
    for run in recipients.chunks(ROWS_PER_INSERT) {
        let insert = format!(
            "INSERT INTO message_recipients (message_id, recipient, user_id) VALUES {}",
            value_rows(run.len(), 3)
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(insert));
        for (id, r) in run {
            query = query.bind(*id).bind(&r.address).bind(r.user_id);
        }
        query.execute(&mut *tx).await?;
    }
    Ok(rows.iter().map(|(id, _)| *id).collect())
}

/// Inserts the messages of `run` on PostgreSQL with one statement: their columns bound as
/// arrays, each message's id taken from the identity sequence in the statement, its blob and
/// recipients inserted with it (the foreign keys are checked at the end of the statement).
/// Returns the ids in the order of `run`.
async fn insert_postgres<'e>(
    executor: impl sqlx::PgExecutor<'e>,
    run: &[(i64, &NewMessage)],
) -> Result<Vec<i64>> {
    const INSERT: &str = "WITH input AS MATERIALIZED (
            SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::boolean[],
                                 $6::bigint[], $7::text[], $8::text[], $9::bytea[])
                WITH ORDINALITY
                AS i(received_at, mail_from, helo, peer_ip, tls, size, sha256, message_id, raw, n)
        ),
        ids AS MATERIALIZED (
            SELECT nextval(pg_get_serial_sequence('messages', 'id')) AS id, n FROM input
        ),
        stored AS (
            INSERT INTO messages
                (id, received_at, mail_from, helo, peer_ip, tls, size, sha256, message_id, state)
            OVERRIDING SYSTEM VALUE
            SELECT ids.id, i.received_at, i.mail_from, i.helo, i.peer_ip, i.tls, i.size, i.sha256,
                   i.message_id, 'received'
            FROM input i JOIN ids USING (n)
        ),
        blobs AS (
            INSERT INTO message_blobs (message_id, raw)
            SELECT ids.id, i.raw FROM input i JOIN ids USING (n)
        ),
        recipients AS (
            INSERT INTO message_recipients (message_id, recipient, user_id)
            SELECT ids.id, r.recipient, r.user_id
            FROM unnest($10::bigint[], $11::text[], $12::bigint[]) AS r(n, recipient, user_id)
            JOIN ids USING (n)
        )
        SELECT id FROM ids ORDER BY n";
    let messages: Vec<&NewMessage> = run.iter().map(|(_, m)| *m).collect();
    // Recipients name their message by its place in `run`, from 1 (WITH ORDINALITY).
    let (mut of, mut address, mut user) = (Vec::new(), Vec::new(), Vec::new());
    for (n, m) in (1_i64..).zip(&messages) {
        for r in &m.recipients {
            of.push(n);
            address.push(r.address.as_str());
            user.push(r.user_id);
        }
    }
    let ids: Vec<i64> = sqlx::query_scalar(INSERT)
        .bind(messages.iter().map(|m| m.received_at).collect::<Vec<_>>())
        .bind(
            messages
                .iter()
                .map(|m| m.mail_from.as_str())
                .collect::<Vec<_>>(),
        )
        .bind(messages.iter().map(|m| m.helo.as_str()).collect::<Vec<_>>())
        .bind(
            messages
                .iter()
                .map(|m| m.peer_ip.as_str())
                .collect::<Vec<_>>(),
        )
        .bind(messages.iter().map(|m| m.tls).collect::<Vec<_>>())
        .bind(
            messages
                .iter()
                .map(|m| i64::try_from(m.raw.len()).unwrap_or(i64::MAX))
                .collect::<Vec<_>>(),
        )
        .bind(
            messages
                .iter()
                .map(|m| m.sha256.as_str())
                .collect::<Vec<_>>(),
        )
        .bind(
            messages
                .iter()
                .map(|m| m.message_id.as_deref())
                .collect::<Vec<_>>(),
        )
        .bind(
            messages
                .iter()
                .map(|m| m.raw.as_slice())
                .collect::<Vec<_>>(),
        )
        .bind(of)
        .bind(address)
        .bind(user)
        .fetch_all(executor)
        .await?;
    Ok(ids)
}

#[cfg(test)]
mod tests {
    use super::{BYTES_PER_INSERT, ROWS_PER_INSERT, commit, statements};
    use crate::testing::TestDb;
    use crate::{NewMessage, NewUser, Role, StoredRecipient};

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

    /// A batch larger than one statement takes is committed whole, each id with its own
    /// message and recipients, on both backends.
    #[tokio::test]
    async fn a_batch_of_several_statements_maps_each_id_to_its_message() {
        let mut dbs = vec![TestDb::sqlite()];
        dbs.extend(TestDb::postgres("writer batch of several statements").await);
        for db in dbs {
            let store = db.open().await;
            let anna = store
                .create_user(&NewUser {
                    login: "anna".into(),
                    name: "Anna".into(),
                    role: Role::Staff,
                    password_hash: String::new(),
                    addresses: vec!["anna@stadt.test".into()],
                })
                .await
                .expect("anna");
            let sizes = [BYTES_PER_INSERT / 2 + 1, 10, BYTES_PER_INSERT / 2 + 1, 20];
            let messages: Vec<NewMessage> = sizes
                .iter()
                .enumerate()
                .map(|(i, n)| NewMessage {
                    raw: vec![b'a' + u8::try_from(i).expect("few"); *n],
                    sha256: format!("sha-{i}"),
                    recipients: vec![StoredRecipient {
                        address: "anna@stadt.test".into(),
                        user_id: anna.id,
                    }],
                    ..message(0)
                })
                .collect();
            let refs: Vec<&NewMessage> = messages.iter().collect();
            assert_eq!(
                statements(&(0..).zip(refs.iter().copied()).collect::<Vec<_>>()).len(),
                2
            );
            let ids = commit(&store.db, &refs).await.expect("commit");
            assert_eq!(ids.len(), 4);
            for (id, m) in ids.iter().zip(&messages) {
                assert_eq!(store.message_raw(*id).await.expect("raw"), m.raw);
                let envelope = store.message_envelope(*id).await.expect("envelope");
                assert_eq!(envelope.sha256, m.sha256);
            }
        }
    }
}
