//! IMAP logins: app passwords (one per device), the account password only where the
//! configuration allows it, and brute-force protection.
//!
//! The user name may be the login (`anna`) or any of the user's addresses
//! (`anna.schmidt@stadt.example`, case-insensitive), as mail programs guess it; the store
//! resolves both in one place ([`store::Store::user_by_name`]).
//!
//! Failures are counted per client address and per account — the account the name
//! resolved to, so trying the address and then the login adds up on one counter. Each
//! failure answers only after a delay that doubles with the count (per address and account,
//! whichever is higher); an address with `ban_after` failures within the window is refused outright for
//! `ban` — without its password being looked at. Accounts are slowed, never locked, so an
//! attacker cannot lock a user out. A login from an address a device has not used before
//! goes into the audit log (the user's login history).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use store::{ErrorKind, Store, User};

use crate::config::ImapConfig;

/// Failures older than this are forgotten.
const WINDOW: Duration = Duration::from_secs(15 * 60);

#[derive(Debug, Clone, Copy)]
struct Failures {
    count: u32,
    last: Instant,
}

/// Failure counters shared by all sessions of one server.
#[derive(Debug, Default)]
pub struct Guard {
    failures: Mutex<HashMap<String, Failures>>,
}

/// What the guard says before a login is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// Check the password.
    Check,
    /// The address is banned: refuse without checking.
    Banned,
}

impl Guard {
    fn count(&self, key: &str, now: Instant) -> u32 {
        let map = self
            .failures
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        map.get(key)
            .filter(|f| now.duration_since(f.last) < WINDOW)
            .map_or(0, |f| f.count)
    }

    /// Whether a login from `ip` may be checked at all.
    pub fn admit(&self, config: &ImapConfig, ip: &str) -> Admission {
        let now = Instant::now();
        let map = self
            .failures
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match map.get(&format!("ip:{ip}")) {
            Some(f) if f.count >= config.ban_after && now.duration_since(f.last) < config.ban => {
                Admission::Banned
            }
            _ => Admission::Check,
        }
    }

    /// Records a failure; returns how long to wait before answering it.
    pub fn failed(&self, config: &ImapConfig, ip: &str, login: &str) -> Duration {
        let now = Instant::now();
        let mut highest = 0;
        {
            let mut map = self
                .failures
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            map.retain(|_, f| now.duration_since(f.last) < WINDOW.max(config.ban));
            for key in [format!("ip:{ip}"), format!("user:{login}")] {
                let f = map.entry(key).or_insert(Failures {
                    count: 0,
                    last: now,
                });
                if now.duration_since(f.last) >= WINDOW {
                    f.count = 0;
                }
                f.count += 1;
                f.last = now;
                highest = highest.max(f.count);
            }
        }
        let factor = 1u32 << (highest.saturating_sub(1)).min(5);
        config.failure_delay.saturating_mul(factor)
    }

    /// Forgets the account's failures after a successful login.
    pub fn succeeded(&self, login: &str) {
        let mut map = self
            .failures
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        map.remove(&format!("user:{login}"));
    }

    /// Failures counted for `ip` now (for tests and logs).
    pub fn failures_of(&self, ip: &str) -> u32 {
        self.count(&format!("ip:{ip}"), Instant::now())
    }
}

/// The answer to a login attempt.
#[derive(Debug)]
pub enum Login {
    /// The password matched: this user is logged in.
    Accepted(User),
    /// Refused. `account` is the key its failure counts against in [`Guard::failed`]: the
    /// login of the user the name named (so failures add up whichever of the user's names
    /// was tried), or the name itself, normalised, when it names nobody.
    Refused {
        /// The account the failure counts against.
        account: String,
    },
}

/// Checks `name`/`password`, where `name` is the user's login or any of their addresses
/// ([`Store::user_by_name`]); the user when the password is one of their app passwords (or
/// the account password where allowed). A name that names nobody is checked against the
/// dummy hash, so it costs the same time as a wrong password.
///
/// # Errors
/// When the store fails (the login is then refused, never let through).
pub async fn check(
    store: &Store,
    config: &ImapConfig,
    name: &str,
    password: &str,
    ip: &str,
) -> anyhow::Result<Login> {
    let user = match store.user_by_name(name).await {
        Ok(u) => Some(u),
        Err(err) if err.kind() == ErrorKind::NotFound => None,
        Err(err) => return Err(err.into()),
    };
    let account = user
        .as_ref()
        .map_or_else(|| name.trim().to_lowercase(), |u| u.login.clone());
    // The work must not tell whether the name exists: app passwords are compared (cheap
    // SHA-256), and argon2id runs exactly when the account password is allowed — against
    // the dummy hash for a name that names nobody.
    let mut candidates: Vec<(Option<i64>, String)> = Vec::new();
    if let Some(user) = &user {
        for (id, hash) in store.app_password_hashes(user.id).await? {
            candidates.push((Some(id), hash));
        }
    }
    if config.account_password {
        let hash = match &user {
            Some(user) => store.password_hash(&user.login).await?,
            None => store::password::dummy_hash().to_owned(),
        };
        candidates.push((None, hash));
    }
    let password = password.to_owned();
    let matched = tokio::task::spawn_blocking(move || {
        let fast = store::token::hash(&password);
        candidates
            .into_iter()
            .find(|(device, hash)| match device {
                // App passwords: SHA-256 of a random secret.
                Some(_) => store::token::eq(hash.as_bytes(), fast.as_bytes()),
                // The account password (or the dummy): argon2id.
                None => store::password::verify(&password, hash),
            })
            .map(|(id, _)| id)
    })
    .await?;
    let (Some(user), Some(device)) = (user, matched) else {
        return Ok(Login::Refused { account });
    };
    if let Some(id) = device {
        let now = store::now_millis();
        if store.app_password_used(id, ip, now).await? {
            store
                .append_audit(&store::NewAuditEntry {
                    actor: user.login.clone(),
                    action: "imap.login_new_address".to_owned(),
                    subjects: vec![format!("user:{}", user.login)],
                    details: serde_json::json!({"ip": ip, "app_password": id}),
                })
                .await?;
        }
    }
    Ok(Login::Accepted(user))
}
