//! Opening the database and dispatching queries to the backend in use.

use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

use crate::writer::Writer;
use crate::{Error, ErrorKind, Millis, Result};

/// Which database a [`Store`] talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// A SQLite file: the embedded default.
    Sqlite,
    /// PostgreSQL: for larger or multi-node deployments.
    Postgres,
}

/// Pool sizes and timeouts; every one has a safe default.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// Connections in the pool (PostgreSQL), or read connections (SQLite; writes use one).
    pub max_connections: u32,
    /// How long a caller waits for a free connection before the operation fails.
    pub acquire_timeout: Duration,
    /// How many messages at most share one group-commit transaction.
    pub max_batch: usize,
}

impl Default for StoreOptions {
    fn default() -> Self {
        Self {
            max_connections: 16,
            acquire_timeout: Duration::from_secs(10),
            max_batch: 128,
        }
    }
}

/// SQLite allows one writer at a time; giving writes their own single-connection pool turns
/// "database is locked" races into an orderly queue, while reads run in parallel (WAL).
#[derive(Debug, Clone)]
pub(crate) struct SqlitePools {
    pub(crate) write: SqlitePool,
    pub(crate) read: SqlitePool,
}

#[derive(Debug, Clone)]
pub(crate) enum Db {
    Sqlite(SqlitePools),
    Postgres(PgPool),
}

/// Runs the same code against whichever pool is in use. The body is compiled once per
/// backend, so `sqlx::query_as` and `FromRow` are checked for both.
/// `read` picks SQLite's read pool, `write` its single writer.
macro_rules! with_pool {
    ($db:expr, read $pool:ident => $body:expr) => {
        match $db {
            $crate::db::Db::Sqlite(pools) => {
                let $pool = &pools.read;
                $body
            }
            $crate::db::Db::Postgres($pool) => $body,
        }
    };
    ($db:expr, write $pool:ident => $body:expr) => {
        match $db {
            $crate::db::Db::Sqlite(pools) => {
                let $pool = &pools.write;
                $body
            }
            $crate::db::Db::Postgres($pool) => $body,
        }
    };
}
pub(crate) use with_pool;

/// Runs `$body` in a write transaction `$tx` that may append to the audit chain: SQLite's
/// `BEGIN IMMEDIATE` (the one writer), or on PostgreSQL a transaction holding the audit
/// advisory lock, which orders appends across nodes. The body must commit.
///
/// With `audited = false` the transaction appends nothing to the chain: on PostgreSQL it then
/// goes without the audit lock, so it never waits for (or holds up) an audited write; rows
/// it reads in order to change them must be locked (`Db::for_update`).
macro_rules! with_write_tx {
    ($db:expr, $tx:ident => $body:expr) => {
        $crate::db::with_write_tx!($db, $tx, audited = true => $body)
    };
    ($db:expr, $tx:ident, audited = $audited:expr => $body:expr) => {
        match $db {
            $crate::db::Db::Sqlite(pools) => {
                let mut $tx = pools.write.begin_with("BEGIN IMMEDIATE").await?;
                $body
            }
            $crate::db::Db::Postgres(pool) => {
                let mut $tx = pool.begin().await?;
                if $audited {
                    sqlx::query("SELECT pg_advisory_xact_lock($1)")
                        .bind($crate::audit::PG_LOCK)
                        .execute(&mut *$tx)
                        .await?;
                }
                $body
            }
        }
    };
}
pub(crate) use with_write_tx;

/// Writes whose commit does not wait for the disk: for what is harmless to lose in a crash
/// (IMAP's `\Recent`), written often enough that an fsync each would hold up the durable
/// commits (SQLite has one writer). Ordering is kept:
/// the next durable commit writes it out with everything before it.
///
/// On SQLite `$sqlite` (of type `Result<T>`, committing `$tx`) runs in a transaction on the
/// writer connection with `synchronous = NORMAL`, not `OFF`: in WAL mode NORMAL skips only the
/// commit's sync, while a checkpoint it may run stays synced (with OFF, frames of earlier
/// durable commits could be checkpointed unsynced). `FULL` is restored however `$sqlite`
/// ends; a connection where that fails, or whose future is dropped before (a timeout), is
/// closed ([`Unsynced`]), never reused.
///
/// On PostgreSQL `$postgres` runs one statement on `$pool` that starts with
/// [`LAZY_COMMIT`]: one round trip instead of four for `BEGIN`, `SET LOCAL`, the statement
/// and `COMMIT`. Never takes the audit lock.
macro_rules! with_lazy_write {
    ($db:expr, sqlite $tx:ident => $sqlite:expr, postgres $pool:ident => $postgres:expr) => {
        match $db {
            $crate::db::Db::Sqlite(pools) => {
                let mut conn = $crate::db::Unsynced(Some(pools.write.acquire().await?));
                let outcome = async {
                    let conn = conn.connection();
                    sqlx::query("PRAGMA synchronous = NORMAL")
                        .execute(&mut *conn)
                        .await?;
                    // In a block of its own, so an error in it still comes back here.
                    let result = async {
                        let mut $tx =
                            sqlx::Connection::begin_with(&mut *conn, "BEGIN IMMEDIATE").await?;
                        $sqlite
                    }
                    .await;
                    sqlx::query("PRAGMA synchronous = FULL")
                        .execute(&mut *conn)
                        .await?;
                    Ok::<_, $crate::Error>(result)
                }
                .await;
                match outcome {
                    Ok(result) => {
                        conn.restored();
                        result
                    }
                    Err(err) => {
                        tracing::warn!(error = %err, "cannot run a write with synchronous = NORMAL and back; closing the connection");
                        Err(err)
                    }
                }
            }
            $crate::db::Db::Postgres($pool) => Ok::<_, $crate::Error>($postgres),
        }
    };
}
pub(crate) use with_lazy_write;

/// The start of a PostgreSQL statement, run on its own (autocommit), whose commit does not
/// wait for the disk: `set_config(…, true)` sets `synchronous_commit = off` for the
/// statement's own transaction, and the commit reads it before the setting ends. The
/// statement joins `lazy` (one row) so that it is evaluated.
pub(crate) const LAZY_COMMIT: &str =
    "WITH lazy AS (SELECT set_config('synchronous_commit', 'off', true) AS lazy)";

/// SQLite's writer connection while it may run `synchronous = NORMAL`
/// ([`with_lazy_write_tx!`]): unless [`Self::restored`] says `FULL` is back, dropping it
/// closes the connection instead of returning it to the pool, so no later commit on it skips
/// the sync.
pub(crate) struct Unsynced(pub(crate) Option<sqlx::pool::PoolConnection<sqlx::Sqlite>>);

impl Unsynced {
    /// The connection.
    pub(crate) fn connection(&mut self) -> &mut sqlx::SqliteConnection {
        self.0.as_mut().expect("connection in use")
    }

    /// `synchronous = FULL` is set again: the connection goes back to the pool.
    pub(crate) fn restored(mut self) {
        drop(self.0.take());
    }
}

impl Drop for Unsynced {
    fn drop(&mut self) {
        if let Some(conn) = self.0.as_mut() {
            conn.close_on_drop();
        }
    }
}

impl Db {
    /// What a `SELECT` picking rows for one node (leases, claims) ends with: on PostgreSQL
    /// `FOR UPDATE SKIP LOCKED`, so two nodes never pick the same row at once; on SQLite
    /// nothing, its single writer already serialises the `UPDATE` around it.
    pub(crate) fn skip_locked(&self) -> &'static str {
        match self {
            Db::Sqlite(_) => "",
            Db::Postgres(_) => " FOR UPDATE SKIP LOCKED",
        }
    }
}

/// The handle every part of ratspost uses to reach its data. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Store {
    pub(crate) db: Db,
    pub(crate) writer: Arc<Writer>,
    /// Mailbox changes made through this store (user ids), for IMAP IDLE.
    pub(crate) changes: tokio::sync::broadcast::Sender<i64>,
    /// Credential changes made through this store (user ids): a revoked app password, a
    /// changed or reset password, a disabled account. IMAP sessions of that user check at
    /// once whether they may go on.
    pub(crate) credentials: tokio::sync::broadcast::Sender<i64>,
}

impl Store {
    /// Opens `url` (`sqlite://PATH` or `postgres://…`), creating a SQLite file if missing,
    /// and applies any pending migrations. Must be called inside a tokio runtime: it starts
    /// the group-commit task.
    ///
    /// # Errors
    /// `Invalid` for an unsupported URL, `Unavailable` when the database cannot be reached,
    /// `Migration` when the schema cannot be brought up to date.
    pub async fn open(url: &str, options: &StoreOptions) -> Result<Self> {
        let db = if url.starts_with("sqlite:") {
            Db::Sqlite(open_sqlite(url, options).await?)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Db::Postgres(open_postgres(url, options).await?)
        } else {
            return Err(Error::new(
                ErrorKind::Invalid,
                format!(
                    "unsupported database URL scheme in {:?}: use sqlite://PATH or postgres://…",
                    redact_url(url)
                ),
            ));
        };
        match &db {
            Db::Sqlite(p) => sqlx::migrate!("./migrations/sqlite").run(&p.write).await?,
            Db::Postgres(p) => sqlx::migrate!("./migrations/postgres").run(p).await?,
        }
        let writer = Arc::new(Writer::start(db.clone(), options.max_batch));
        let (changes, _) = tokio::sync::broadcast::channel(1024);
        let (credentials, _) = tokio::sync::broadcast::channel(256);
        Ok(Self {
            db,
            writer,
            changes,
            credentials,
        })
    }

    /// Which backend this store uses.
    #[must_use]
    pub fn backend(&self) -> Backend {
        match self.db {
            Db::Sqlite(_) => Backend::Sqlite,
            Db::Postgres(_) => Backend::Postgres,
        }
    }

    /// Writes a consistent copy of a SQLite database to `dest` while it is in use (`VACUUM
    /// INTO`, one read transaction: writers go on, the copy is the state at its start, with
    /// no write-ahead log beside it). `dest` must not exist or be an empty file; make it
    /// with the mode the copy must have, SQLite keeps it.
    ///
    /// # Errors
    /// `Invalid` on PostgreSQL (its backups are `pg_dump`'s); `Unavailable` when SQLite
    /// fails (no space, `dest` not empty).
    ///
    /// Returns the copy's audit head (seq, hash, the entry's time), read from the copy itself, which is opened
    /// read-only and immutable for it: no journal appears beside it and no byte changes.
    pub async fn backup_into(&self, dest: &Path) -> Result<(i64, String, Millis)> {
        use sqlx::Connection as _;
        let Db::Sqlite(pools) = &self.db else {
            return Err(Error::new(
                ErrorKind::Invalid,
                "a PostgreSQL database is backed up with pg_dump (see the README)",
            ));
        };
        sqlx::query("VACUUM INTO $1")
            .bind(dest.to_string_lossy().into_owned())
            .execute(&pools.read)
            .await?;
        let options = SqliteConnectOptions::new()
            .filename(dest)
            .read_only(true)
            .immutable(true);
        let mut copy = sqlx::SqliteConnection::connect_with(&options).await?;
        let head: Option<(i64, String, Option<i64>)> = sqlx::query_as(
            "SELECT h.seq, h.hash, l.at FROM audit_head h
             LEFT JOIN audit_log l ON l.seq = h.seq WHERE h.id = 1",
        )
        .fetch_optional(&mut copy)
        .await?;
        copy.close().await?;
        Ok(head.map_or(
            (0, crate::audit::GENESIS.to_owned(), 0),
            |(seq, hash, at)| (seq, hash, at.unwrap_or(0)),
        ))
    }

    /// Closes all connections after the group-commit task has drained.
    pub async fn close(&self) {
        self.writer.close().await;
        match &self.db {
            Db::Sqlite(p) => {
                p.write.close().await;
                p.read.close().await;
            }
            Db::Postgres(p) => p.close().await,
        }
    }
}

/// The file of a `sqlite:` URL (`None` for other databases), e.g. to tell whether an
/// installation exists before [`Store::open`] creates an empty one.
#[must_use]
pub fn sqlite_path(url: &str) -> Option<&Path> {
    let path = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))?;
    // Connection options after `?` (e.g. `?mode=rwc`) are not part of the path.
    let path = path.split_once('?').map_or(path, |(p, _)| p);
    (!path.is_empty()).then(|| Path::new(path))
}

async fn open_sqlite(url: &str, options: &StoreOptions) -> Result<SqlitePools> {
    let path = url
        .trim_start_matches("sqlite://")
        .trim_start_matches("sqlite:");
    if path.is_empty() || path.contains(":memory:") || path.starts_with("file::memory") {
        // An in-memory database would give every pooled connection its own empty database
        // and lose every accepted message on exit: never what an operator wants.
        return Err(Error::new(
            ErrorKind::Invalid,
            "sqlite needs a file path (sqlite://./data/ratspost.db); in-memory is not durable",
        ));
    }
    if let Some(parent) = Path::new(path)
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
    {
        std::fs::create_dir_all(parent).map_err(|e| {
            Error::new(
                ErrorKind::Unavailable,
                format!("cannot create {}: {e}", parent.display()),
            )
        })?;
    }
    // synchronous = FULL: in WAL mode NORMAL survives a process crash but may lose the last
    // commits on power loss or a kernel crash. "250 means durable" must hold for those too;
    // group commit (writer.rs) keeps the cost of the extra fsync to one per batch.
    let connect = SqliteConnectOptions::from_str(url)
        .map_err(|e| Error::new(ErrorKind::Invalid, format!("bad sqlite URL: {e}")))?
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Full)
        .foreign_keys(true)
        // Deleted content is overwritten, not left in free pages: a message purged under
        // retention (Art. 5(1)(e) GDPR) or expunged is gone from the file, not only from
        // the tables. Deletes are rare (retention, EXPUNGE); the extra writes are cheap.
        .pragma("secure_delete", "ON")
        // Other processes (the CLI next to a running daemon) take the write lock briefly.
        .busy_timeout(Duration::from_secs(10));
    let write = SqlitePoolOptions::new()
        .max_connections(1)
        .acquire_timeout(options.acquire_timeout)
        .after_release(close_if_in_transaction)
        .connect_with(connect.clone())
        .await?;
    let read = SqlitePoolOptions::new()
        .max_connections(options.max_connections.max(1))
        .acquire_timeout(options.acquire_timeout)
        .after_release(close_if_in_transaction)
        .connect_with(connect.read_only(true))
        .await?;
    Ok(SqlitePools { write, read })
}

/// Closes a connection that comes back to its pool still inside a transaction instead of
/// handing it out again. That happens when a `COMMIT` fails (SQLite on a full disk) and the
/// `ROLLBACK` sqlx sends when the transaction is dropped fails too (SQLite had already rolled
/// back): sqlx then still counts the connection as inside the transaction, and every later
/// `BEGIN` on it fails ("attempted to call begin_with at non-zero transaction depth") — with
/// SQLite's single writer connection, every write from then on. The pool opens a fresh one.
fn close_if_in_transaction<C: sqlx::Connection>(
    conn: &mut C,
    _: sqlx::pool::PoolConnectionMetadata,
) -> std::pin::Pin<Box<dyn std::future::Future<Output = sqlx::Result<bool>> + Send + '_>> {
    Box::pin(async move {
        if !conn.is_in_transaction() {
            return Ok(true);
        }
        // The rollback queued when the transaction was dropped runs before the ping.
        conn.ping().await?;
        if conn.is_in_transaction() {
            // Once a minute at most: on a full disk this happens at every retry.
            static LAST: std::sync::atomic::AtomicI64 = std::sync::atomic::AtomicI64::new(0);
            let now = crate::now_millis();
            let last = LAST.load(std::sync::atomic::Ordering::Relaxed);
            if now - last >= 60_000
                && LAST
                    .compare_exchange(
                        last,
                        now,
                        std::sync::atomic::Ordering::Relaxed,
                        std::sync::atomic::Ordering::Relaxed,
                    )
                    .is_ok()
            {
                tracing::warn!(
                    "a database connection is stuck in a failed transaction (a commit failed, e.g. on a full disk); closing it"
                );
            }
            return Ok(false);
        }
        Ok(true)
    })
}

async fn open_postgres(url: &str, options: &StoreOptions) -> Result<PgPool> {
    let connect = PgConnectOptions::from_str(url)
        .map_err(|e| Error::new(ErrorKind::Invalid, format!("bad postgres URL: {e}")))?;
    Ok(PgPoolOptions::new()
        .max_connections(options.max_connections.max(2))
        .acquire_timeout(options.acquire_timeout)
        .after_release(close_if_in_transaction)
        .connect_with(connect)
        .await?)
}

/// Folds the write-ahead log of the SQLite database at `path` into the file itself (a
/// checkpoint, then the log is emptied), so the file alone holds every commit: before it is
/// moved aside or copied. Nothing happens when there is no such file.
///
/// # Errors
/// `Unavailable` when SQLite fails (the database is in use, damaged).
pub async fn fold_sqlite_wal(path: &Path) -> Result<()> {
    use sqlx::Connection as _;
    if !path.exists() {
        return Ok(());
    }
    let options = SqliteConnectOptions::new()
        .filename(path)
        .busy_timeout(Duration::from_secs(10));
    let mut connection = sqlx::SqliteConnection::connect_with(&options).await?;
    sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
        .execute(&mut connection)
        .await?;
    connection.close().await?;
    Ok(())
}

/// A database URL with any password replaced, safe for logs and error messages.
#[must_use]
pub fn redact_url(url: &str) -> String {
    // scheme://user:password@host/…  →  scheme://user:***@host/…
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let Some((userinfo, host)) = rest.split_once('@') else {
        return url.to_owned();
    };
    match userinfo.split_once(':') {
        Some((user, _)) => format!("{scheme}://{user}:***@{host}"),
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::redact_url;

    #[test]
    fn passwords_are_redacted_from_urls() {
        assert_eq!(
            redact_url("postgres://app:s3cret@db.example/ratspost"),
            "postgres://app:***@db.example/ratspost"
        );
        assert_eq!(redact_url("postgres://app@db/x"), "postgres://app@db/x");
        assert_eq!(redact_url("sqlite://./data/r.db"), "sqlite://./data/r.db");
    }
}

/// A value bound to a query built at run time (a filter whose parts are optional).
pub(crate) enum Param {
    Text(String),
    Int(i64),
}

/// The values of a query built at run time, numbered `$1`, `$2`, … in the order pushed.
#[derive(Default)]
pub(crate) struct Params(pub(crate) Vec<Param>);

impl Params {
    /// Adds a value; returns its placeholder number.
    pub(crate) fn text(&mut self, value: impl Into<String>) -> usize {
        self.0.push(Param::Text(value.into()));
        self.0.len()
    }

    /// Adds a value; returns its placeholder number.
    pub(crate) fn int(&mut self, value: i64) -> usize {
        self.0.push(Param::Int(value));
        self.0.len()
    }
}

/// Rows per multi-row `INSERT`: far below SQLite's 32 766 and PostgreSQL's 65 535 bound
/// values, for any table here.
pub(crate) const ROWS_PER_INSERT: usize = 200;

/// `$1, $2, …, $n` after `offset` placeholders already used: an `IN` list.
pub(crate) fn placeholders(n: usize, offset: usize) -> String {
    (1..=n)
        .map(|i| format!("${}", i + offset))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `($1, …, $columns), (…), …` — the `VALUES` of a multi-row `INSERT` of `rows` rows.
pub(crate) fn value_rows(rows: usize, columns: usize) -> String {
    (0..rows)
        .map(|r| format!("({})", placeholders(columns, r * columns)))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Binds every value of `$params` ([`Params`]) to `$query`, in order.
macro_rules! bind_params {
    ($query:expr, $params:expr) => {{
        let mut query = $query;
        for p in $params.0 {
            query = match p {
                $crate::db::Param::Text(s) => query.bind(s),
                $crate::db::Param::Int(i) => query.bind(i),
            };
        }
        query
    }};
}
pub(crate) use bind_params;

/// Which page of a list ordered by id (or seq).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Page {
    /// The newest rows, newest first.
    #[default]
    Newest,
    /// Rows older than this id, newest first (the "older" link).
    Before(i64),
    /// Rows newer than this id, **oldest first** (the "newer" link reverses them; exports
    /// read onwards in this order).
    After(i64),
}

impl Page {
    /// Adds this page's condition on `column` to `conditions`; returns the `ORDER BY`
    /// direction.
    pub(crate) fn condition(
        self,
        column: &str,
        conditions: &mut Vec<String>,
        params: &mut Params,
    ) -> &'static str {
        match self {
            Page::Newest => "DESC",
            Page::Before(id) => {
                conditions.push(format!("{column} < ${}", params.int(id)));
                "DESC"
            }
            Page::After(id) => {
                conditions.push(format!("{column} > ${}", params.int(id)));
                "ASC"
            }
        }
    }
}

/// ` WHERE a AND b`, or nothing when there are no conditions.
pub(crate) fn where_clause(conditions: &[String]) -> String {
    if conditions.is_empty() {
        String::new()
    } else {
        format!(" WHERE {}", conditions.join(" AND "))
    }
}

#[cfg(test)]
mod placeholder_tests {
    #[test]
    fn placeholders_are_numbered_after_the_offset() {
        assert_eq!(super::placeholders(3, 0), "$1, $2, $3");
        assert_eq!(super::placeholders(2, 1), "$2, $3");
        assert_eq!(super::value_rows(2, 2), "($1, $2), ($3, $4)");
    }
}

#[cfg(test)]
mod lazy_write_tests {
    use super::Db;

    /// The writer's `PRAGMA synchronous`: 2 is FULL.
    async fn synchronous(db: &Db) -> i64 {
        let Db::Sqlite(pools) = db else {
            unreachable!("SQLite")
        };
        let (level,): (i64,) = sqlx::query_as("PRAGMA synchronous")
            .fetch_one(&pools.write)
            .await
            .expect("pragma");
        level
    }

    #[tokio::test]
    async fn lazy_writes_leave_the_writer_durable_however_they_end() {
        let db = crate::testing::TestDb::sqlite();
        let store = db.open().await;
        assert_eq!(synchronous(&store.db).await, 2);
        let anna = store
            .create_user(&crate::NewUser {
                login: "anna".into(),
                name: "Anna".into(),
                role: crate::Role::Staff,
                password_hash: String::new(),
                addresses: vec!["anna@stadt.test".into()],
            })
            .await
            .expect("anna");
        store.ensure_mailboxes(anna.id, 0).await.expect("mailboxes");
        let inbox = store.mailbox(anna.id, "INBOX").await.expect("INBOX");
        let claimed = store.claim_recent(inbox.id).await.expect("claim");
        assert!(claimed.is_empty());
        assert_eq!(synchronous(&store.db).await, 2, "after a claim");
        // An error inside the transaction (no such mailbox) restores it too.
        let missing = store.claim_recent(999_999).await;
        assert!(missing.is_err());
        assert_eq!(synchronous(&store.db).await, 2, "after a failed claim");
    }
}
