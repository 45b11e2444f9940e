//! Per-device app passwords for IMAP: one per phone or laptop, shown once, stored as an
//! argon2id hash, revocable alone. Using one records when and from where.

use crate::db::with_pool;

/// How precisely "last used" is kept.
const USED_RESOLUTION_MS: Millis = 60_000;
use crate::{Error, ErrorKind, Millis, Result, Store};

/// An app password as listed (never the password).
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow, serde::Serialize)]
pub struct AppPassword {
    /// Id.
    pub id: i64,
    /// The device's label.
    pub label: String,
    /// Created.
    pub created_at: Millis,
    /// Last successful login with it.
    pub last_used_at: Option<Millis>,
    /// Address of that login.
    pub last_ip: Option<String>,
}

impl Store {
    /// Stores an app password (its hash) for `user_id` under `label`.
    ///
    /// # Errors
    /// `Conflict` when the user has a live app password with that label; `Invalid` for an
    /// empty label.
    pub async fn create_app_password(
        &self,
        user_id: i64,
        label: &str,
        hash: &str,
        now: Millis,
    ) -> Result<i64> {
        let label = label.trim();
        if label.is_empty() || label.chars().count() > 100 {
            return Err(Error::new(
                ErrorKind::Invalid,
                "the label must have 1 to 100 characters",
            ));
        }
        if crate::has_hidden_formatting(label) || label.contains(['\n', '\r', '\t']) {
            return Err(Error::new(
                ErrorKind::Invalid,
                "the label must not hold control or text-direction characters",
            ));
        }
        if self
            .app_passwords(user_id)
            .await?
            .iter()
            .any(|a| a.label == label)
        {
            return Err(Error::new(
                ErrorKind::Conflict,
                format!("an app password labelled {label:?} exists; revoke it first"),
            ));
        }
        Ok(with_pool!(&self.db, write pool => {
            let (id,): (i64,) = sqlx::query_as(
                "INSERT INTO app_passwords (user_id, label, hash, created_at) VALUES ($1, $2, $3, $4) RETURNING id",
            )
            .bind(user_id)
            .bind(label)
            .bind(hash)
            .bind(now)
            .fetch_one(pool)
            .await?;
            id
        }))
    }

    /// The live app passwords of `user_id`, oldest first.
    ///
    /// # Errors
    /// `Unavailable` when the database fails.
    pub async fn app_passwords(&self, user_id: i64) -> Result<Vec<AppPassword>> {
        Ok(with_pool!(&self.db, read pool => {
            sqlx::query_as(
                "SELECT id, label, created_at, last_used_at, last_ip FROM app_passwords
                 WHERE user_id = $1 AND revoked_at IS NULL ORDER BY id",
            )
            .bind(user_id)
            .fetch_all(pool)
            .await?
        }))
    }

    /// The (id, hash) of every live app password of `user_id`, for checking a login; none
    /// while the user is disabled.
    ///
    /// # Errors
    /// `Unavailable` when the database fails.
    pub async fn app_password_hashes(&self, user_id: i64) -> Result<Vec<(i64, String)>> {
        Ok(with_pool!(&self.db, read pool => {
            sqlx::query_as(
                "SELECT p.id, p.hash FROM app_passwords p JOIN users u ON u.id = p.user_id
                 WHERE p.user_id = $1 AND p.revoked_at IS NULL AND u.disabled_at IS NULL",
            )
                .bind(user_id)
                .fetch_all(pool)
                .await?
        }))
    }

    /// Records a successful login with app password `id`; returns whether `ip` is new for
    /// this device: no login of it from there in the user's kept login history. Call it
    /// before [`Store::record_login`] records this login.
    ///
    /// # Errors
    /// `Unavailable` when the database fails.
    pub async fn app_password_used(&self, id: i64, ip: &str, now: Millis) -> Result<bool> {
        let before: Option<(Option<String>, Option<Millis>)> = with_pool!(&self.db, read pool => {
            sqlx::query_as("SELECT last_ip, last_used_at FROM app_passwords WHERE id = $1")
                .bind(id)
                .fetch_optional(pool)
                .await?
        });
        let Some((last_ip, last_used)) = before else {
            return Ok(false);
        };
        // New is an address this device has no login from in the kept history — not merely
        // one other than its last (a phone switching between home and mobile data is not
        // news each time). Called before the login is recorded.
        let (known,): (i64,) = with_pool!(&self.db, read pool => {
            sqlx::query_as(
                "SELECT COUNT(*) FROM logins l JOIN app_passwords a
                   ON a.user_id = l.user_id AND a.label = l.device
                 WHERE a.id = $1 AND l.ip = $2",
            )
            .bind(id)
            .bind(ip)
            .fetch_one(pool)
            .await?
        });
        let new_address = known == 0;
        let moved = last_ip.as_deref() != Some(ip);
        // Mail clients log in every few minutes; "last used" to the minute is enough, and
        // saves a write per login.
        if moved || last_used.is_none_or(|t| now - t >= USED_RESOLUTION_MS) {
            with_pool!(&self.db, write pool => {
                sqlx::query("UPDATE app_passwords SET last_used_at = $1, last_ip = $2 WHERE id = $3")
                    .bind(now)
                    .bind(ip)
                    .bind(id)
                    .execute(pool)
                    .await?;
            });
        }
        Ok(new_address)
    }

    /// Revokes the app password `label` of `user_id` at once.
    ///
    /// # Errors
    /// `NotFound` when there is no live one with that label.
    pub async fn revoke_app_password(&self, user_id: i64, label: &str, now: Millis) -> Result<()> {
        let done = with_pool!(&self.db, write pool => {
            sqlx::query(
                "UPDATE app_passwords SET revoked_at = $1 WHERE user_id = $2 AND label = $3 AND revoked_at IS NULL",
            )
            .bind(now)
            .bind(user_id)
            .bind(label.trim())
            .execute(pool)
            .await?
            .rows_affected()
        });
        Error::found(done, || {
            format!("no app password labelled {:?}", label.trim())
        })?;
        // The device's open IMAP sessions end at once (README: "revoking … ends its sessions").
        self.announce_credentials(user_id);
        Ok(())
    }

    /// Whether app password `id` of `user_id` still works: not revoked, and its user not
    /// disabled. IMAP sessions re-check this now and then, so a revocation made on another
    /// node ends them too.
    ///
    /// # Errors
    /// `Unavailable` when the database fails.
    pub async fn app_password_live(&self, user_id: i64, id: i64) -> Result<bool> {
        let row: Option<(i64,)> = with_pool!(&self.db, read pool => {
            sqlx::query_as(
                "SELECT a.id FROM app_passwords a JOIN users u ON u.id = a.user_id
                 WHERE a.id = $1 AND a.user_id = $2 AND a.revoked_at IS NULL
                   AND u.disabled_at IS NULL",
            )
            .bind(id)
            .bind(user_id)
            .fetch_optional(pool)
            .await?
        });
        Ok(row.is_some())
    }
}

/// Length of generated app passwords: 24 characters from the generator's 56-letter alphabet
/// (139 bits), easy to type on a phone and far beyond guessing.
pub const APP_PASSWORD_LENGTH: usize = 24;

/// Who creates or revokes an app password, for whom (the CLI and the web UI alike).
#[derive(Debug, Clone, Copy)]
pub struct DeviceChange<'a> {
    /// The owner's id.
    pub user_id: i64,
    /// The owner's login (the audit subject).
    pub login: &'a str,
    /// The device's label.
    pub label: &'a str,
    /// Who does it (the audit actor): the owner or an admin, checked by the caller.
    pub actor: &'a str,
}

impl DeviceChange<'_> {
    async fn audit(&self, store: &Store, action: &str) -> Result<()> {
        store
            .append_audit(&crate::NewAuditEntry {
                actor: self.actor.to_owned(),
                action: action.to_owned(),
                subjects: vec![format!("user:{}", self.login)],
                details: serde_json::json!({"label": self.label.trim()}),
            })
            .await?;
        Ok(())
    }
}

impl Store {
    /// Creates a new app password for the device in `change`, audits it
    /// (`app_password.created`) and returns the password — the only time it exists in clear.
    ///
    /// It is stored as SHA-256, not argon2: a slow hash protects passwords people choose; this
    /// one is random with 139 bits, so no dictionary exists, and a fast check keeps the logins
    /// of thousands of devices cheap. (Account passwords stay argon2id.)
    ///
    /// # Errors
    /// As [`Store::create_app_password`]; `Unavailable` when the audit entry cannot be written
    /// (the password then exists but is reported as failed: revoke and retry).
    pub async fn issue_app_password(
        &self,
        change: &DeviceChange<'_>,
        now: Millis,
    ) -> Result<String> {
        let password = crate::password::generate(APP_PASSWORD_LENGTH);
        let hash = crate::token::hash(&password);
        self.create_app_password(change.user_id, change.label, &hash, now)
            .await?;
        change.audit(self, "app_password.created").await?;
        Ok(password)
    }

    /// Revokes the device in `change` and audits it (`app_password.revoked`).
    ///
    /// # Errors
    /// As [`Store::revoke_app_password`].
    pub async fn withdraw_app_password(
        &self,
        change: &DeviceChange<'_>,
        now: Millis,
    ) -> Result<()> {
        self.revoke_app_password(change.user_id, change.label, now)
            .await?;
        change.audit(self, "app_password.revoked").await
    }

    /// Whether `password` is the live app password `label` of `user_id` (for a download that
    /// carries it, such as the .mobileconfig).
    ///
    /// # Errors
    /// `Unavailable` when the database fails.
    pub async fn app_password_matches(
        &self,
        user_id: i64,
        label: &str,
        password: &str,
    ) -> Result<bool> {
        let row: Option<(String,)> = with_pool!(&self.db, read pool => {
            sqlx::query_as(
                "SELECT hash FROM app_passwords WHERE user_id = $1 AND label = $2 AND revoked_at IS NULL",
            )
            .bind(user_id)
            .bind(label.trim())
            .fetch_optional(pool)
            .await?
        });
        let given = crate::token::hash(password);
        Ok(row.is_some_and(|(hash,)| crate::token::eq(hash.as_bytes(), given.as_bytes())))
    }
}
