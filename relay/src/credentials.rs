//! Logins of mail programs, for IMAP and for submission: app passwords (one per device),
//! the account password only where the configuration allows it (IMAP only), and brute-force
//! protection shared by both and the web UI.
//!
//! The user name may be the login (`anna`) or any of the user's addresses
//! (`anna.schmidt@stadt.example`, case-insensitive), as mail programs guess it; the store
//! resolves both in one place ([`store::Store::user_by_name`]).
//!
//! Failures are counted per client address and per account — the account the name
//! resolved to, so trying the address and then the login adds up on one counter — in the
//! store, shared with the web UI's login and every node ([`store::Store::admit_login`]). Each
//! failure answers only after a delay that doubles with the count (per address and account,
//! whichever is higher); an address with `ban_after` failures within the window is refused
//! outright for `ban` — without its password being looked at. Accounts are slowed, never
//! locked, so an attacker cannot lock a user out. A login from an address a device has not
//! used before goes into the audit log; every login goes into the user's login history.
//!
//! Password hashing (argon2id: 19 MiB and a core for half a second) runs behind a small
//! [`Gate`]: 100 parallel logins queue for a few slots instead of taking gigabytes, and a
//! login that waits too long is refused as temporary ([`Login::Busy`]). A name that names
//! nobody costs the same queries and the same hash as one that does (issue #13 §3).

use std::time::Duration;

use store::{Admission, ErrorKind, LoginVia, Store, User};

use crate::config::ImapConfig;
use crate::imap::gate::{Gate, GateError};

/// The protocol a mail program logs in with: it names the login history's rows and the
/// audit entry for a device at a new address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Service {
    /// IMAP (RFC 9051 / 3501).
    Imap,
    /// Mail submission (RFC 6409): app passwords only.
    Submission,
}

/// How a login is checked: the failure limits (shared), whether the account password is
/// allowed, how long a login waits for a hashing slot, and for which service.
#[derive(Debug, Clone)]
pub struct Policy {
    /// Delays and ban.
    pub limits: store::LoginLimits,
    /// Whether the account password is accepted besides the app passwords.
    pub account_password: bool,
    /// How long to wait for a hashing slot.
    pub hash_queue: Duration,
    /// Which service asks.
    pub service: Service,
}

impl Policy {
    /// IMAP's policy: `imap.*` limits, the account password where `imap.account_password`.
    #[must_use]
    pub fn imap(config: &ImapConfig) -> Self {
        Self {
            limits: config.login_limits(),
            account_password: config.account_password,
            hash_queue: config.hash_queue,
            service: Service::Imap,
        }
    }

    /// Submission's policy: the same limits and counters as IMAP (an attacker gains nothing
    /// by switching protocols), app passwords only.
    #[must_use]
    pub fn submission(config: &ImapConfig) -> Self {
        Self {
            account_password: false,
            service: Service::Submission,
            ..Self::imap(config)
        }
    }
}

/// The answer to a login attempt.
#[derive(Debug)]
pub enum Login {
    /// The password matched: this user is logged in, with app password `device` (`None`:
    /// the account password).
    Accepted {
        /// Who.
        user: User,
        /// Which app password.
        device: Option<i64>,
    },
    /// No hashing slot came free in time: refused as temporary (the attempt stays counted).
    Busy,
    /// Refused: the failure is counted; answer after `delay`.
    Refused {
        /// The pause before the answer.
        delay: Duration,
    },
    /// The client address is banned: refused without looking at the password.
    Banned,
}

/// Checks `name`/`password`, where `name` is the user's login or any of their addresses
/// ([`Store::user_by_name`]); the user when the password is one of their app passwords (or
/// the account password where allowed). A name that names nobody is checked against the
/// dummy hash, so it costs the same time as a wrong password. The attempt is counted before
/// the check (against the address, and the account the name resolved to — or the name
/// itself, normalised, when it names nobody); a successful login is recorded in the user's
/// history (keeping `history_keep` rows).
///
/// # Errors
/// When the store fails (the login is then refused, never let through).
pub async fn check(
    store: &Store,
    hashes: &Gate,
    policy: &Policy,
    name: &str,
    password: &str,
    ip: &str,
    history_keep: u32,
) -> anyhow::Result<Login> {
    let user = match store.user_by_name(name).await {
        Ok(u) => Some(u),
        Err(err) if err.kind() == ErrorKind::NotFound => None,
        Err(err) => return Err(err.into()),
    };
    let account = user
        .as_ref()
        .map_or_else(|| name.trim().to_lowercase(), |u| u.login.clone());
    // A device's own app password first, uncounted: it is 139 random bits (no guessing
    // helps, and checking it costs a SHA-256), and counting before the check would turn a
    // burst of devices behind one address (an office's NAT after a restart) into a ban.
    // A banned address is refused all the same; a wrong password goes the counted way.
    // The same queries whether or not the name names somebody (ids start at 1).
    let limits = &policy.limits;
    if store
        .login_banned(limits, ip, store::now_millis())
        .await?
        .is_some()
    {
        return Ok(Login::Banned);
    }
    let fast = store::token::hash(password);
    let device = store
        .app_password_hashes(user.as_ref().map_or(0, |u| u.id))
        .await?
        .into_iter()
        .find(|(_, hash)| store::token::eq(hash.as_bytes(), fast.as_bytes()))
        .map(|(id, _)| id);
    if let (Some(user), Some(device)) = (&user, device) {
        store.forget_login_failures(&account).await?;
        return accepted(
            store,
            policy.service,
            user.clone(),
            Some(device),
            ip,
            history_keep,
        )
        .await;
    }
    let delay = match store
        .admit_login(limits, ip, &account, store::now_millis())
        .await?
    {
        Admission::Banned { .. } => return Ok(Login::Banned),
        Admission::Check { delay_if_wrong } => delay_if_wrong,
    };
    // The app passwords did not match (above). What is left is the account password, when
    // it is allowed: argon2id, behind the hashing gate, against the dummy hash for a name
    // that names nobody — so the work does not tell whether the name exists.
    let matched = if policy.account_password {
        let hash = match &user {
            Some(user) => store.password_hash(&user.login).await?,
            None => store::password::dummy_hash().to_owned(),
        };
        let password = password.to_owned();
        match hashes
            .run(policy.hash_queue, move || {
                store::password::verify(&password, &hash)
            })
            .await
        {
            Ok(right) => right,
            Err(GateError::Busy) => return Ok(Login::Busy),
            Err(GateError::Failed) => anyhow::bail!("password check failed"),
        }
    } else {
        false
    };
    let (Some(user), true) = (user, matched) else {
        return Ok(Login::Refused { delay });
    };
    store.login_succeeded(ip, &account).await?;
    accepted(store, policy.service, user, None, ip, history_keep).await
}

/// A login that succeeded (with app password `device`, or the account password): recorded
/// in the user's history, and a new address for a device in the audit trail.
async fn accepted(
    store: &Store,
    service: Service,
    user: store::User,
    device: Option<i64>,
    ip: &str,
    history_keep: u32,
) -> anyhow::Result<Login> {
    let now = store::now_millis();
    let (via, action) = match (service, device) {
        (Service::Submission, Some(app_password)) => (
            LoginVia::Submission { app_password },
            "submission.login_new_address",
        ),
        (Service::Submission, None) => anyhow::bail!("submission accepts app passwords only"),
        (Service::Imap, app_password) => {
            (LoginVia::Imap { app_password }, "imap.login_new_address")
        }
    };
    // Whether the device is new at this address is asked before this login is recorded.
    let new_address = match device {
        Some(id) => store.app_password_used(id, ip, now).await?,
        None => false,
    };
    store
        .record_login(user.id, via, ip, now, history_keep)
        .await?;
    if let (Some(id), true) = (device, new_address) {
        store
            .append_audit(&store::NewAuditEntry {
                actor: user.login.clone(),
                action: action.to_owned(),
                subjects: vec![format!("user:{}", user.login)],
                details: serde_json::json!({"ip": ip, "app_password": id}),
            })
            .await?;
    }
    Ok(Login::Accepted { user, device })
}
