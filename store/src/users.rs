//! Staff accounts, their roles and their enrolled addresses.

use serde::Serialize;

use crate::db::with_pool;
use crate::{Error, ErrorKind, Millis, Result, Store, now_millis};

/// What a user may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Reads their own mail, requests exemptions for themselves.
    Staff,
    /// Manages users, approves exemptions.
    Admin,
    /// The data-protection officer: reads the audit trail, may co-approve exemptions.
    Dpo,
}

impl Role {
    /// The name stored in the database and used on the command line.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Staff => "staff",
            Role::Admin => "admin",
            Role::Dpo => "dpo",
        }
    }
}

impl std::str::FromStr for Role {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        match s {
            "staff" => Ok(Role::Staff),
            "admin" => Ok(Role::Admin),
            "dpo" => Ok(Role::Dpo),
            other => Err(Error::new(
                ErrorKind::Invalid,
                format!("unknown role {other:?}: expected staff, admin or dpo"),
            )),
        }
    }
}

/// A user as stored, without the password hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct User {
    /// Database id.
    pub id: i64,
    /// Login name (lower-case).
    pub login: String,
    /// Display name.
    pub name: String,
    /// Role.
    pub role: Role,
    /// Creation time.
    pub created_at: Millis,
    /// Enrolled mail addresses, lower-case, sorted.
    pub addresses: Vec<String>,
    /// When an admin disabled the account (it cannot log in anywhere); `None` = enabled.
    pub disabled_at: Option<Millis>,
}

/// A user to create.
#[derive(Debug, Clone)]
pub struct NewUser {
    /// Login name: 1–64 characters of `a-z 0-9 . _ -`, case-insensitive.
    pub login: String,
    /// Display name.
    pub name: String,
    /// Role.
    pub role: Role,
    /// argon2id PHC string from [`crate::password::hash`].
    pub password_hash: String,
    /// Addresses mail is accepted for.
    pub addresses: Vec<String>,
}

/// How a recipient address relates to the enrolled users.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecipientLookup {
    /// The address belongs to this user.
    Enrolled(i64),
    /// The domain is one of ours (some user has an address there), the address is not.
    UnknownLocal,
    /// Nobody is enrolled in that domain.
    Foreign,
}

#[derive(sqlx::FromRow)]
struct UserRow {
    id: i64,
    login: String,
    name: String,
    role: String,
    created_at: i64,
    disabled_at: Option<i64>,
}

/// Normalises a login; rejects what would be ambiguous in URLs, logs or IMAP.
fn normalise_login(login: &str) -> Result<String> {
    let login = login.trim().to_ascii_lowercase();
    let ok = !login.is_empty()
        && login.len() <= 64
        && login
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
    if ok {
        Ok(login)
    } else {
        Err(Error::new(
            ErrorKind::Invalid,
            format!("invalid login {login:?}: use 1-64 characters a-z 0-9 . _ -"),
        ))
    }
}

/// Splits and lower-cases `local@domain`; the whole address is compared case-insensitively,
/// as every mail system the upstream could be does in practice.
pub(crate) fn normalise_address(address: &str) -> Result<(String, String)> {
    let address = address.trim().to_lowercase();
    match address.rsplit_once('@') {
        Some((local, domain))
            if !local.is_empty()
                && !domain.is_empty()
                && address.len() <= 254
                && !address
                    .chars()
                    .any(|c| c.is_whitespace() || c.is_control() || "<>".contains(c)) =>
        {
            let domain = domain.to_owned();
            Ok((address, domain))
        }
        _ => Err(Error::new(
            ErrorKind::Invalid,
            format!("invalid address {address:?}: expected local@domain"),
        )),
    }
}

/// Whether `domain` (lower-case) is a domain name mail can be sent to: two or more labels of
/// letters, digits and `-` (1–63 each, not starting or ending with `-`), the last not all
/// digits — so neither an IP address (`127.0.0.1`, `[::1]`) nor a single word.
#[must_use]
pub fn is_mail_domain(domain: &str) -> bool {
    let labels: Vec<&str> = domain.split('.').collect();
    labels.len() >= 2
        && domain.len() <= 253
        && labels.iter().all(|l| {
            !l.is_empty()
                && l.chars().count() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.chars().all(|c| c.is_alphanumeric() || c == '-')
        })
        && !labels
            .last()
            .is_some_and(|tld| tld.chars().all(|c| c.is_ascii_digit()))
}

/// Whether `address` is `local@domain` with a local part as [`normalise_address`] takes it
/// and a domain mail can be sent to ([`is_mail_domain`]): what a forwarding target must be.
#[must_use]
pub fn is_mail_address(address: &str) -> bool {
    normalise_address(address).is_ok_and(|(_, domain)| is_mail_domain(&domain))
}

impl Store {
    /// Creates a user with their addresses, atomically.
    ///
    /// # Errors
    /// `Invalid` for a bad login or address, `Conflict` when the login or an address is
    /// taken.
    pub async fn create_user(&self, user: &NewUser) -> Result<User> {
        let login = normalise_login(&user.login)?;
        let name = user.name.trim().to_owned();
        if name.is_empty() || name.chars().count() > 200 {
            return Err(Error::new(
                ErrorKind::Invalid,
                "name must be 1-200 characters",
            ));
        }
        let mut addresses = user
            .addresses
            .iter()
            .map(|a| normalise_address(a))
            .collect::<Result<Vec<_>>>()?;
        addresses.sort();
        addresses.dedup();
        let created_at = now_millis();
        let id: i64 = with_pool!(&self.db, write pool => {
            let mut tx = pool.begin().await?;
            let (id,): (i64,) = sqlx::query_as(
                "INSERT INTO users (login, name, role, password_hash, created_at)
                 VALUES ($1, $2, $3, $4, $5) RETURNING id",
            )
            .bind(&login)
            .bind(&name)
            .bind(user.role.as_str())
            .bind(&user.password_hash)
            .bind(created_at)
            .fetch_one(&mut *tx)
            .await?;
            for (address, domain) in &addresses {
                sqlx::query("INSERT INTO addresses (address, domain, user_id) VALUES ($1, $2, $3)")
                    .bind(address)
                    .bind(domain)
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
            id
        });
        Ok(User {
            id,
            login,
            name,
            role: user.role,
            created_at,
            addresses: addresses.into_iter().map(|(a, _)| a).collect(),
            disabled_at: None,
        })
    }

    /// All users with their addresses, ordered by login.
    ///
    /// # Errors
    /// `Unavailable` when the database fails.
    pub async fn list_users(&self) -> Result<Vec<User>> {
        let (rows, addresses): (Vec<UserRow>, Vec<(i64, String)>) = with_pool!(&self.db, read pool => {
            let rows = sqlx::query_as(
                "SELECT id, login, name, role, created_at, disabled_at FROM users ORDER BY login",
            )
            .fetch_all(pool)
            .await?;
            let addresses = sqlx::query_as(
                "SELECT user_id, address FROM addresses ORDER BY address",
            )
            .fetch_all(pool)
            .await?;
            (rows, addresses)
        });
        rows.into_iter()
            .map(|row| {
                let mine = addresses
                    .iter()
                    .filter(|(uid, _)| *uid == row.id)
                    .map(|(_, a)| a.clone())
                    .collect();
                user_from_row(row, mine)
            })
            .collect()
    }

    /// The user with this login.
    ///
    /// # Errors
    /// `NotFound` when there is none.
    pub async fn user_by_login(&self, login: &str) -> Result<User> {
        let login = login.trim().to_ascii_lowercase();
        self.user_where(
            "SELECT id, login, name, role, created_at, disabled_at FROM users WHERE login = $1",
            &login,
        )
        .await
    }

    /// The user with this id.
    ///
    /// # Errors
    /// `NotFound` when there is none.
    pub async fn user_by_id(&self, id: i64) -> Result<User> {
        let login: Option<(String,)> = with_pool!(&self.db, read pool => {
            sqlx::query_as("SELECT login FROM users WHERE id = $1")
                .bind(id)
                .fetch_optional(pool)
                .await?
        });
        match login {
            Some((login,)) => self.user_by_login(&login).await,
            None => Err(Error::new(ErrorKind::NotFound, format!("no user {id}"))),
        }
    }

    /// The user a sign-in name names: their login or any of their enrolled addresses, both
    /// case-insensitive (mail programs offer the address as the user name first). Every
    /// login path (IMAP, the web, submission) resolves names here, so a user is the same
    /// account — for the password and for brute-force accounting — whichever name was used.
    ///
    /// Logins cannot contain `@` and addresses always do, so a name is never ambiguous.
    ///
    /// # Errors
    /// `NotFound` when no user has that login or address (also for a name that is neither a
    /// valid login nor a valid address: callers cannot tell these apart),
    /// `Unavailable` when the database fails.
    pub async fn user_by_name(&self, name: &str) -> Result<User> {
        if !name.contains('@') {
            return self.user_by_login(name).await;
        }
        let Ok((address, _)) = normalise_address(name) else {
            return Err(Error::new(ErrorKind::NotFound, "no such user"));
        };
        self.user_where(
            "SELECT u.id, u.login, u.name, u.role, u.created_at, u.disabled_at FROM users u
             JOIN addresses a ON a.user_id = u.id WHERE a.address = $1",
            &address,
        )
        .await
    }

    /// The one user `select` (with `$1` bound to `key`) finds, with their addresses.
    async fn user_where(&self, select: &'static str, key: &str) -> Result<User> {
        let (row, addresses): (UserRow, Vec<(String,)>) = with_pool!(&self.db, read pool => {
            let row: UserRow = sqlx::query_as(select)
            .bind(key)
            .fetch_one(pool)
            .await?;
            let addresses = sqlx::query_as(
                "SELECT address FROM addresses WHERE user_id = $1 ORDER BY address",
            )
            .bind(row.id)
            .fetch_all(pool)
            .await?;
            (row, addresses)
        });
        user_from_row(row, addresses.into_iter().map(|(a,)| a).collect())
    }

    /// The stored password hash of `login`, for verification. For a disabled account it is
    /// [`crate::password::dummy_hash`], which no password matches: every login path (web,
    /// IMAP, the CLI's proof) then fails exactly as for a wrong password, taking as long.
    ///
    /// # Errors
    /// `NotFound` when there is no such user.
    pub async fn password_hash(&self, login: &str) -> Result<String> {
        let login = login.trim().to_ascii_lowercase();
        let (hash, disabled_at): (String, Option<Millis>) = with_pool!(&self.db, read pool => {
            sqlx::query_as("SELECT password_hash, disabled_at FROM users WHERE login = $1")
                .bind(&login)
                .fetch_one(pool)
                .await?
        });
        Ok(match disabled_at {
            Some(_) => crate::password::dummy_hash().to_owned(),
            None => hash,
        })
    }

    /// Disables (`disabled = true`) or enables the account `login`, as `by` (an admin's login),
    /// with its audit entry (`user.disabled` / `user.enabled`) in the same transaction.
    /// Disabling ends every web session of the user at once; their app passwords stop working
    /// while disabled (see [`Store::app_password_hashes`]) and work again when enabled.
    /// An admin cannot disable their own account (nobody would be left to undo it).
    ///
    /// # Errors
    /// `NotFound` when there is no such user; `Invalid` when `by` disables themselves;
    /// `Conflict` when the account is already in that state; `Unavailable` when the database
    /// fails.
    pub async fn set_user_disabled(
        &self,
        login: &str,
        disabled: bool,
        by: &str,
        now: Millis,
    ) -> Result<User> {
        let login = login.trim().to_ascii_lowercase();
        if disabled && by.trim().eq_ignore_ascii_case(&login) {
            return Err(Error::new(
                ErrorKind::Invalid,
                "an admin cannot disable their own account",
            ));
        }
        crate::db::with_write_tx!(&self.db, tx => {
            let row: Option<(i64, Option<Millis>)> =
                sqlx::query_as("SELECT id, disabled_at FROM users WHERE login = $1")
                    .bind(&login)
                    .fetch_optional(&mut *tx)
                    .await?;
            let Some((id, was)) = row else {
                return Err(Error::new(ErrorKind::NotFound, format!("no user {login:?}")));
            };
            if was.is_some() == disabled {
                return Err(Error::new(
                    ErrorKind::Conflict,
                    format!("user {login:?} is already {}", if disabled { "disabled" } else { "enabled" }),
                ));
            }
            sqlx::query("UPDATE users SET disabled_at = $1 WHERE id = $2")
                .bind(disabled.then_some(now))
                .bind(id)
                .execute(&mut *tx)
                .await?;
            if disabled {
                sqlx::query("DELETE FROM web_sessions WHERE user_id = $1")
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
            }
            let entry = crate::NewAuditEntry {
                actor: by.trim().to_ascii_lowercase(),
                action: if disabled { "user.disabled" } else { "user.enabled" }.to_owned(),
                subjects: vec![format!("user:{login}")],
                details: serde_json::json!({}),
            };
            let (details_text, subjects_text) = entry.texts()?;
            let _ = crate::audit::audit_append!(tx, &entry, now, details_text, subjects_text);
            tx.commit().await?;
            self.announce_credentials(id);
        });
        self.user_by_login(&login).await
    }

    /// Live app passwords (devices) per user id, for the users list; users without any are
    /// absent.
    ///
    /// # Errors
    /// `Unavailable` when the database fails.
    pub async fn device_counts(&self) -> Result<std::collections::HashMap<i64, i64>> {
        let rows: Vec<(i64, i64)> = with_pool!(&self.db, read pool => {
            sqlx::query_as(
                "SELECT user_id, COUNT(*) FROM app_passwords WHERE revoked_at IS NULL GROUP BY user_id",
            )
            .fetch_all(pool)
            .await?
        });
        Ok(rows.into_iter().collect())
    }

    /// Replaces the password hash of `login` and ends every web session of the user, in one
    /// transaction: whoever knew the old password (or held a session opened with it) is out
    /// when it changes or an admin resets it.
    ///
    /// # Errors
    /// `NotFound` when there is no such user.
    pub async fn set_password_hash(&self, login: &str, hash: &str) -> Result<()> {
        let login = login.trim().to_ascii_lowercase();
        let id = with_pool!(&self.db, write pool => {
            let mut tx = pool.begin().await?;
            let id: Option<(i64,)> =
                sqlx::query_as("UPDATE users SET password_hash = $1 WHERE login = $2 RETURNING id")
                    .bind(hash)
                    .bind(&login)
                    .fetch_optional(&mut *tx)
                    .await?;
            sqlx::query(
                "DELETE FROM web_sessions WHERE user_id IN (SELECT id FROM users WHERE login = $1)",
            )
            .bind(&login)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            id
        });
        let Some((id,)) = id else {
            return Err(Error::new(
                ErrorKind::NotFound,
                format!("no user {login:?}"),
            ));
        };
        // Every IMAP session of the user ends (they hold the old credentials).
        self.announce_credentials(id);
        Ok(())
    }

    /// Number of users; zero means the installation still needs its bootstrap admin.
    ///
    /// # Errors
    /// `Unavailable` when the database fails.
    pub async fn count_users(&self) -> Result<i64> {
        let (n,): (i64,) = with_pool!(&self.db, read pool => {
            sqlx::query_as("SELECT COUNT(*) FROM users").fetch_one(pool).await?
        });
        Ok(n)
    }

    /// Classifies a recipient address for SMTP: enrolled, unknown in one of our domains, or
    /// foreign.
    ///
    /// # Errors
    /// `Invalid` for a malformed address, `Unavailable` when the database fails.
    pub async fn lookup_recipient(&self, address: &str) -> Result<RecipientLookup> {
        let (address, domain) = normalise_address(address)?;
        let found: Option<(i64,)> = with_pool!(&self.db, read pool => {
            sqlx::query_as("SELECT user_id FROM addresses WHERE address = $1")
                .bind(&address)
                .fetch_optional(pool)
                .await?
        });
        if let Some((user_id,)) = found {
            return Ok(RecipientLookup::Enrolled(user_id));
        }
        let local: Option<(i64,)> = with_pool!(&self.db, read pool => {
            sqlx::query_as("SELECT user_id FROM addresses WHERE domain = $1 LIMIT 1")
                .bind(&domain)
                .fetch_optional(pool)
                .await?
        });
        Ok(if local.is_some() {
            RecipientLookup::UnknownLocal
        } else {
            RecipientLookup::Foreign
        })
    }
}

fn user_from_row(row: UserRow, addresses: Vec<String>) -> Result<User> {
    Ok(User {
        id: row.id,
        login: row.login,
        name: row.name,
        role: row.role.parse()?,
        created_at: row.created_at,
        addresses,
        disabled_at: row.disabled_at,
    })
}
