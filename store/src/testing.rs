//! Test databases: a fresh SQLite file, or a fresh PostgreSQL database on the server named by
//! `RATSPOST_TEST_PG_URL`. Only compiled with the `testing` feature.
//!
//! Without that variable the PostgreSQL half of a test is skipped *visibly*: a line goes to
//! the real stderr (bypassing the test harness's capture). Under `CI=true` a missing URL is a
//! failure instead, so CI can never silently skip the PostgreSQL run.

use std::io::Write;
use std::sync::atomic::{AtomicU32, Ordering};

use crate::{Backend, Store, StoreOptions};

/// Environment variable naming a PostgreSQL server for tests, e.g.
/// `postgres://postgres@127.0.0.1:5432/postgres`. Each test creates its own database there.
pub const PG_URL_VAR: &str = "RATSPOST_TEST_PG_URL";

/// A database that exists for the lifetime of this value.
#[derive(Debug)]
pub struct TestDb {
    /// URL to give to [`Store::open`] or to the daemon's config.
    pub url: String,
    /// Which backend.
    pub backend: Backend,
    _dir: Option<tempfile::TempDir>,
    pg: Option<(String, String)>,
}

impl TestDb {
    /// A fresh SQLite database file in a temporary directory.
    ///
    /// # Panics
    /// When no temporary directory can be made.
    #[must_use]
    pub fn sqlite() -> Self {
        let dir = tempfile::tempdir().expect("temporary directory");
        let url = format!("sqlite://{}", dir.path().join("ratspost.db").display());
        Self {
            url,
            backend: Backend::Sqlite,
            _dir: Some(dir),
            pg: None,
        }
    }

    /// A fresh PostgreSQL database, or `None` (with a visible SKIP line) when
    /// `RATSPOST_TEST_PG_URL` is unset.
    ///
    /// # Panics
    /// When the variable is unset under `CI=true`, or the server cannot be reached.
    pub async fn postgres(test: &str) -> Option<Self> {
        let Ok(admin_url) = std::env::var(PG_URL_VAR) else {
            if std::env::var("CI").is_ok_and(|v| v == "true") {
                panic!("{PG_URL_VAR} must be set under CI=true ({test})");
            }
            let _ = writeln!(
                std::io::stderr(),
                "SKIPPED (PostgreSQL): {test}: set {PG_URL_VAR}=postgres://… to run it"
            );
            return None;
        };
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let name = format!(
            "ratspost_t_{}_{}_{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed),
            crate::now_millis()
        );
        let admin = sqlx::PgPool::connect(&admin_url)
            .await
            .unwrap_or_else(|e| panic!("cannot reach PostgreSQL at {PG_URL_VAR}: {e}"));
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&admin)
            .await
            .expect("create test database");
        admin.close().await;
        let url = replace_database(&admin_url, &name);
        Some(Self {
            url,
            backend: Backend::Postgres,
            _dir: None,
            pg: Some((admin_url, name)),
        })
    }

    /// Opens a [`Store`] on this database with default options.
    ///
    /// # Panics
    /// When the store cannot be opened.
    pub async fn open(&self) -> Store {
        Store::open(&self.url, &StoreOptions::default())
            .await
            .expect("open test store")
    }
}

/// Runs raw SQL against the store's database, bypassing its API: for tests that tamper with
/// data the way an attacker with database access would.
///
/// # Panics
/// When the statement fails.
pub async fn raw_execute(store: &Store, sql: &str) {
    crate::db::with_pool!(&store.db, write pool => {
        sqlx::query(sqlx::AssertSqlSafe(sql.to_owned()))
            .execute(pool)
            .await
            .expect("raw SQL");
    });
}

/// What an attacker with write access to the database does (issue #15 §1): replaces the
/// whole log by `entries`, renumbered from 1 with every hash recomputed, and moves the head.
///
/// # Panics
/// When a statement fails.
pub async fn rewrite_audit(store: &Store, entries: &[crate::AuditEntry]) {
    raw_execute(store, "DELETE FROM audit_subjects").await;
    raw_execute(store, "DELETE FROM audit_log").await;
    let mut prev = crate::audit::GENESIS.to_owned();
    for (i, e) in entries.iter().enumerate() {
        let seq = i64::try_from(i).expect("i") + 1;
        let hash = crate::audit::entry_hash(
            seq,
            e.at,
            &e.actor,
            &e.action,
            &e.subjects,
            &e.details,
            &prev,
        );
        let quote = |s: &str| s.replace('\'', "''");
        raw_execute(
            store,
            &format!(
                "INSERT INTO audit_log (seq, at, actor, action, subjects, details, prev_hash, hash) \
                 VALUES ({seq}, {}, '{}', '{}', '{}', '{}', '{prev}', '{hash}')",
                e.at,
                quote(&e.actor),
                quote(&e.action),
                quote(&serde_json::to_string(&e.subjects).expect("json")),
                quote(&e.details.to_string()),
            ),
        )
        .await;
        prev = hash;
    }
    raw_execute(
        store,
        &format!(
            "UPDATE audit_head SET seq = {}, hash = '{prev}' WHERE id = 1",
            entries.len()
        ),
    )
    .await;
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Some((admin_url, name)) = self.pg.take() {
            // Drop can't be async; a short-lived runtime on its own thread does the cleanup.
            let _ = std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .ok()?;
                rt.block_on(async {
                    let admin = sqlx::PgPool::connect(&admin_url).await.ok()?;
                    let sql = format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)");
                    sqlx::query(sqlx::AssertSqlSafe(sql))
                        .execute(&admin)
                        .await
                        .ok()?;
                    admin.close().await;
                    Some(())
                })
            })
            .join();
        }
    }
}

/// `postgres://u@h:p/olddb?x` → `postgres://u@h:p/NAME?x`.
fn replace_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let scheme_end = base.find("://").map_or(0, |i| i + 3);
    let host_part = match base[scheme_end..].find('/') {
        Some(i) => &base[..scheme_end + i],
        None => base,
    };
    match query {
        Some(q) => format!("{host_part}/{name}?{q}"),
        None => format!("{host_part}/{name}"),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn database_name_is_replaced() {
        assert_eq!(
            super::replace_database("postgres://root@127.0.0.1:5432/postgres", "x"),
            "postgres://root@127.0.0.1:5432/x"
        );
        assert_eq!(
            super::replace_database("postgres://root@h/db?sslmode=disable", "x"),
            "postgres://root@h/x?sslmode=disable"
        );
        assert_eq!(
            super::replace_database("postgres://h", "x"),
            "postgres://h/x"
        );
    }
}
