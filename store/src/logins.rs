//! Logins, web and IMAP: the failed-login counters both share (brute-force protection), the
//! history of successful logins a user sees, and a user's own web sessions.
//!
//! # Failed logins
//!
//! Failures are counted per client address (`ip:…`) and per account (`account:…`, the login
//! the name resolved to, or the normalised name when it names nobody) in the database, so the
//! web UI, IMAP and every node using the database add up on the same counters. An attempt is
//! counted when it is *admitted*, before its password is checked ([`Store::admit_login`]), and
//! the count is taken back when it succeeds ([`Store::login_succeeded`]). So parallel attempts
//! see each other: each gets its own, higher count and a longer delay, and no more than
//! [`LoginLimits::ban_after`] attempts from one address are ever checked before its ban —
//! however many arrive at once.
//!
//! A failure is answered after `failure_delay × 2^(n−1)` (n the higher of the two counts,
//! the factor capped at 32). An address with `ban_after` failures is refused without its
//! password being looked at, for `ban` after its last failure. Accounts are slowed, never
//! banned: an attacker must not be able to lock a user out. Counts older than
//! [`FAILURE_WINDOW`] are forgotten.

use std::time::Duration;

use crate::db::with_pool;
use crate::{Error, ErrorKind, Millis, Result, Store};

/// Failures older than this are forgotten (15 minutes).
pub const FAILURE_WINDOW: Duration = Duration::from_secs(15 * 60);

/// Repeated logins of one device from one address within this time share a history row.
const SAME_LOGIN_MS: Millis = 3_600_000;

/// How failed logins are answered (`[imap] failure_delay_ms`, `ban_after`, `ban_secs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoginLimits {
    /// Delay after a first failure; doubles with each further one (up to 32 times).
    pub failure_delay: Duration,
    /// Failures from one address before it is banned.
    pub ban_after: u32,
    /// How long a ban lasts after the address's last failure.
    pub ban: Duration,
}

impl LoginLimits {
    /// The delay before answering the `n`-th failure (n ≥ 1).
    #[must_use]
    pub fn delay(&self, n: i64) -> Duration {
        let shift = u32::try_from(n.saturating_sub(1).clamp(0, 5)).unwrap_or(5);
        self.failure_delay.saturating_mul(1 << shift)
    }
}

/// What [`Store::admit_login`] decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// Check the password; if it is wrong, answer after `delay_if_wrong`.
    Check {
        /// The pause before a failure is answered.
        delay_if_wrong: Duration,
    },
    /// The client address is banned: refuse without checking, until `until`.
    Banned {
        /// When the ban ends (if no further failure comes).
        until: Millis,
    },
}

/// How a user logged in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoginVia {
    /// The web UI, with the account password.
    Web,
    /// IMAP, with the app password of device `app_password` (or the account password, where
    /// allowed: `None`).
    Imap {
        /// The app password's id.
        app_password: Option<i64>,
    },
    /// Mail submission (RFC 6409), always with the app password of device `app_password`.
    Submission {
        /// The app password's id.
        app_password: i64,
    },
}

/// One row of a user's login history.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow, serde::Serialize)]
pub struct LoginRecord {
    /// Id (for paging: newer rows have higher ids).
    pub id: i64,
    /// `web`, `imap` or `submission`.
    pub via: String,
    /// The app password's label for IMAP logins with one; `None` for the web.
    pub device: Option<String>,
    /// Client address.
    pub ip: String,
    /// First login of this row.
    pub first_at: Millis,
    /// Last login of this row (the same device from the same address within an hour).
    pub last_at: Millis,
    /// How many logins the row stands for.
    pub count: i64,
    /// Whether the address had not been seen for this user before (within the kept history).
    pub new_address: bool,
}

/// One of a user's web sessions, as listed to them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionInfo {
    /// Names the session in forms: derived from the stored hash, so neither the cookie nor
    /// the key of the row leaves the server.
    pub handle: String,
    /// Client address at login.
    pub ip: String,
    /// Login time.
    pub created_at: Millis,
    /// When it ends by itself.
    pub expires_at: Millis,
    /// Whether it is the session asking.
    pub current: bool,
}

/// The form handle of a session with `token_hash`.
fn handle_of(token_hash: &str) -> String {
    crate::token::hash(&format!("session-handle:{token_hash}"))[..32].to_owned()
}

/// The counter of `account`, normalised here (trimmed, lower-case) whatever the caller did:
/// `"alice "` and `"Alice"` are one account, so spelling variants do not each get a fresh
/// count (issue #13 §3).
fn account_key(account: &str) -> String {
    format!("account:{}", account.trim().to_lowercase())
}

fn millis(d: Duration) -> Millis {
    Millis::try_from(d.as_millis()).unwrap_or(Millis::MAX)
}

impl Store {
    /// Counts a login attempt from `ip` for `account` before its password is checked, and
    /// says whether to check it. See the module docs.
    ///
    /// # Errors
    /// `Unavailable` when the database fails (the caller refuses the login: fail closed).
    pub async fn admit_login(
        &self,
        limits: &LoginLimits,
        ip: &str,
        account: &str,
        now: Millis,
    ) -> Result<Admission> {
        let window = millis(FAILURE_WINDOW);
        let ban = millis(limits.ban);
        let ban_after = i64::from(limits.ban_after.max(1));
        let ip_key = format!("ip:{ip}");
        let account_key = account_key(account);
        // One statement per key: the upsert locks the row (PostgreSQL) or runs alone (SQLite's
        // single writer), so parallel attempts each get their own count. A banned address's
        // row is not updated (`WHERE`): no row comes back.
        let upsert = "INSERT INTO login_failures (key, count, last_at) VALUES ($1, 1, $2)
             ON CONFLICT (key) DO UPDATE SET
               count = CASE WHEN $2 - login_failures.last_at >= $3 THEN 1
                            ELSE login_failures.count + 1 END,
               last_at = $2
             WHERE NOT (login_failures.count >= $4 AND $2 - login_failures.last_at < $5)
             RETURNING count";
        let counted: Option<(i64,)> = with_pool!(&self.db, write pool => {
            sqlx::query("DELETE FROM login_failures WHERE last_at < $1")
                .bind(now.saturating_sub(window.max(ban)))
                .execute(pool)
                .await?;
            sqlx::query_as(upsert)
                .bind(&ip_key)
                .bind(now)
                .bind(window)
                .bind(ban_after)
                .bind(ban)
                .fetch_optional(pool)
                .await?
        });
        let Some((ip_count,)) = counted else {
            let last: Option<(Millis,)> = with_pool!(&self.db, read pool => {
                sqlx::query_as("SELECT last_at FROM login_failures WHERE key = $1")
                    .bind(&ip_key)
                    .fetch_optional(pool)
                    .await?
            });
            let until = last.map_or(now, |(t,)| t).saturating_add(ban);
            return Ok(Admission::Banned { until });
        };
        let (account_count,): (i64,) = with_pool!(&self.db, write pool => {
            sqlx::query_as(upsert)
                .bind(&account_key)
                .bind(now)
                .bind(window)
                // Accounts are never banned.
                .bind(i64::MAX)
                .bind(ban)
                .fetch_one(pool)
                .await?
        });
        Ok(Admission::Check {
            delay_if_wrong: limits.delay(ip_count.max(account_count)),
        })
    }

    /// Takes back the count of an admitted attempt that succeeded: the address's count is
    /// lowered by one, the account's failures are forgotten.
    ///
    /// # Errors
    /// `Unavailable` when the database fails.
    pub async fn login_succeeded(&self, ip: &str, account: &str) -> Result<()> {
        with_pool!(&self.db, write pool => {
            sqlx::query(
                "UPDATE login_failures SET count = count - 1 WHERE key = $1 AND count > 0",
            )
            .bind(format!("ip:{ip}"))
            .execute(pool)
            .await?;
            sqlx::query("DELETE FROM login_failures WHERE key = $1")
                .bind(account_key(account))
                .execute(pool)
                .await?;
        });
        Ok(())
    }

    /// Whether `ip` is banned now (until when), without counting anything: for a check
    /// that must refuse a banned address before it looks at a credential.
    ///
    /// # Errors
    /// `Unavailable` when the database fails.
    pub async fn login_banned(
        &self,
        limits: &LoginLimits,
        ip: &str,
        now: Millis,
    ) -> Result<Option<Millis>> {
        let row: Option<(i64, Millis)> = with_pool!(&self.db, read pool => {
            sqlx::query_as("SELECT count, last_at FROM login_failures WHERE key = $1")
                .bind(format!("ip:{ip}"))
                .fetch_optional(pool)
                .await?
        });
        let ban = millis(limits.ban);
        Ok(row.and_then(|(count, last)| {
            (count >= i64::from(limits.ban_after.max(1)) && now - last < ban)
                .then(|| last.saturating_add(ban))
        }))
    }

    /// Forgets the failures of `account` after a login that was checked without being
    /// counted (an app password, see `relay::credentials`).
    ///
    /// # Errors
    /// `Unavailable` when the database fails.
    pub async fn forget_login_failures(&self, account: &str) -> Result<()> {
        with_pool!(&self.db, write pool => {
            sqlx::query("DELETE FROM login_failures WHERE key = $1")
                .bind(account_key(account))
                .execute(pool)
                .await?;
        });
        Ok(())
    }

    /// Failures counted for `ip` (within the window), for tests and logs.
    ///
    /// # Errors
    /// `Unavailable` when the database fails.
    pub async fn login_failures_of_ip(&self, ip: &str, now: Millis) -> Result<i64> {
        let row: Option<(i64,)> = with_pool!(&self.db, read pool => {
            sqlx::query_as("SELECT count FROM login_failures WHERE key = $1 AND last_at > $2")
                .bind(format!("ip:{ip}"))
                .bind(now.saturating_sub(millis(FAILURE_WINDOW)))
                .fetch_optional(pool)
                .await?
        });
        Ok(row.map_or(0, |(n,)| n))
    }

    /// Records a successful login of `user_id` and keeps the user's history to its newest
    /// `keep` rows. Returns whether `ip` is new for this user (not in the kept history).
    ///
    /// # Errors
    /// `Unavailable` when the database fails.
    pub async fn record_login(
        &self,
        user_id: i64,
        via: LoginVia,
        ip: &str,
        now: Millis,
        keep: u32,
    ) -> Result<bool> {
        let (kind, app_password) = match via {
            LoginVia::Web => ("web", None),
            LoginVia::Imap { app_password } => ("imap", app_password),
            LoginVia::Submission { app_password } => ("submission", Some(app_password)),
        };
        let device: Option<String> = match app_password {
            None => None,
            Some(id) => with_pool!(&self.db, read pool => {
                sqlx::query_as::<_, (String,)>("SELECT label FROM app_passwords WHERE id = $1")
                    .bind(id)
                    .fetch_optional(pool)
                    .await?
                    .map(|(l,)| l)
            }),
        };
        let new_address = with_pool!(&self.db, write pool => {
            let same: Option<(i64,)> = sqlx::query_as(
                "SELECT id FROM logins WHERE user_id = $1 AND via = $2 AND ip = $3
                   AND COALESCE(device, '') = COALESCE($4, '') AND last_at >= $5
                 ORDER BY id DESC LIMIT 1",
            )
            .bind(user_id)
            .bind(kind)
            .bind(ip)
            .bind(device.as_deref())
            .bind(now.saturating_sub(SAME_LOGIN_MS))
            .fetch_optional(pool)
            .await?;
            if let Some((id,)) = same {
                sqlx::query("UPDATE logins SET last_at = $1, count = count + 1 WHERE id = $2")
                    .bind(now)
                    .bind(id)
                    .execute(pool)
                    .await?;
                false
            } else {
                let (seen,): (i64,) =
                    sqlx::query_as("SELECT COUNT(*) FROM logins WHERE user_id = $1 AND ip = $2")
                        .bind(user_id)
                        .bind(ip)
                        .fetch_one(pool)
                        .await?;
                sqlx::query(
                    "INSERT INTO logins (user_id, via, device, ip, first_at, last_at, count, new_address)
                     VALUES ($1, $2, $3, $4, $5, $5, 1, $6)",
                )
                .bind(user_id)
                .bind(kind)
                .bind(device.as_deref())
                .bind(ip)
                .bind(now)
                .bind(seen == 0)
                .execute(pool)
                .await?;
                sqlx::query(
                    "DELETE FROM logins WHERE user_id = $1 AND id NOT IN
                       (SELECT id FROM logins WHERE user_id = $1 ORDER BY id DESC LIMIT $2)",
                )
                .bind(user_id)
                .bind(i64::from(keep.max(1)))
                .execute(pool)
                .await?;
                seen == 0
            }
        });
        Ok(new_address)
    }

    /// Up to `limit` (at most 200) of `user_id`'s logins, newest first; with `before`, only
    /// rows with a smaller id (the next page).
    ///
    /// # Errors
    /// `Unavailable` when the database fails.
    pub async fn logins(
        &self,
        user_id: i64,
        before: Option<i64>,
        limit: u32,
    ) -> Result<Vec<LoginRecord>> {
        Ok(with_pool!(&self.db, read pool => {
            sqlx::query_as(
                "SELECT id, via, device, ip, first_at, last_at, count, new_address FROM logins
                 WHERE user_id = $1 AND id < $2 ORDER BY id DESC LIMIT $3",
            )
            .bind(user_id)
            .bind(before.unwrap_or(i64::MAX))
            .bind(i64::from(limit.clamp(1, 200)))
            .fetch_all(pool)
            .await?
        }))
    }

    /// The valid web sessions of `user_id` at `now`, newest first; the one with
    /// `current_hash` is marked.
    ///
    /// # Errors
    /// `Unavailable` when the database fails.
    pub async fn web_sessions_of(
        &self,
        user_id: i64,
        current_hash: &str,
        now: Millis,
    ) -> Result<Vec<SessionInfo>> {
        let rows: Vec<(String, String, Millis, Millis)> = with_pool!(&self.db, read pool => {
            sqlx::query_as(
                "SELECT token_hash, ip, created_at, expires_at FROM web_sessions
                 WHERE user_id = $1 AND expires_at > $2 ORDER BY created_at DESC LIMIT 500",
            )
            .bind(user_id)
            .bind(now)
            .fetch_all(pool)
            .await?
        });
        Ok(rows
            .into_iter()
            .map(|(hash, ip, created_at, expires_at)| SessionInfo {
                handle: handle_of(&hash),
                current: hash == current_hash,
                ip,
                created_at,
                expires_at,
            })
            .collect())
    }

    /// Ends `user_id`'s session named `handle` (from [`Store::web_sessions_of`]).
    ///
    /// # Errors
    /// `NotFound` when the user has no such session; `Unavailable` when the database fails.
    pub async fn end_web_session(&self, user_id: i64, handle: &str) -> Result<()> {
        let hashes: Vec<(String,)> = with_pool!(&self.db, read pool => {
            sqlx::query_as("SELECT token_hash FROM web_sessions WHERE user_id = $1")
                .bind(user_id)
                .fetch_all(pool)
                .await?
        });
        let Some((hash,)) = hashes
            .into_iter()
            .find(|(h,)| crate::token::eq(handle_of(h).as_bytes(), handle.as_bytes()))
        else {
            return Err(Error::new(ErrorKind::NotFound, "no such session"));
        };
        let done = with_pool!(&self.db, write pool => {
            sqlx::query("DELETE FROM web_sessions WHERE token_hash = $1 AND user_id = $2")
                .bind(&hash)
                .bind(user_id)
                .execute(pool)
                .await?
                .rows_affected()
        });
        Error::found(done, || "no such session".to_owned())
    }

    /// Ends every session of `user_id` but the one with `keep_hash`; returns how many ended.
    ///
    /// # Errors
    /// `Unavailable` when the database fails.
    pub async fn end_other_web_sessions(&self, user_id: i64, keep_hash: &str) -> Result<u64> {
        Ok(with_pool!(&self.db, write pool => {
            sqlx::query("DELETE FROM web_sessions WHERE user_id = $1 AND token_hash <> $2")
                .bind(user_id)
                .bind(keep_hash)
                .execute(pool)
                .await?
                .rows_affected()
        }))
    }
}
