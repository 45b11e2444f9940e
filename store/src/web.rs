//! What the web UI keeps: login sessions, and the audited opening of notice links.
//!
//! Sessions and notice links are both bearer secrets, so only their SHA-256 is stored; the
//! caller hashes. Opening a notice link resolves the token, checks that the viewer owns it
//! and appends the audit entry in one transaction: a view that could not be audited does
//! not happen (invariant 4).

use crate::db::{with_pool, with_write_tx};
use crate::users::Role;
use crate::{Millis, NewAuditEntry, Result, Store};

/// A logged-in session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebSession {
    /// The user's id.
    pub user_id: i64,
    /// Their login.
    pub login: String,
    /// Their display name.
    pub name: String,
    /// Their role.
    pub role: Role,
    /// The token forms of this session must carry.
    pub csrf: String,
    /// When the session ends.
    pub expires_at: Millis,
}

/// The outcome of opening a notice link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NoticeAccess {
    /// The viewer may see message `message_id`; the view is audited.
    Open {
        /// The original message.
        message_id: i64,
    },
    /// The link exists but does not open (audited): revoked, expired, or another user's.
    Refused {
        /// Why, for the page and the audit entry.
        reason: &'static str,
    },
    /// No such link.
    Unknown,
}

/// Who opens a notice link, from where, and what part of the message.
#[derive(Debug, Clone)]
pub struct NoticeView<'a> {
    /// SHA-256 (hex) of the link token.
    pub token_hash: &'a str,
    /// The logged-in user.
    pub user_id: i64,
    /// Their login (the audit actor).
    pub login: &'a str,
    /// Client address.
    pub ip: &'a str,
    /// What is shown: `message`, `original`, `attachment 2`, …
    pub what: &'a str,
    /// Whether the message's verdict keeps this view closed (the web UI's download policy).
    pub gate: VerdictGate<'a>,
}

/// Whether a view may open given the message's stored verdict: the web UI's download policy
/// (`web.downloads`), decided in the same transaction as the audit entry, so a refused
/// download is audited as `notice.view_refused` with `reason` like every other refusal.
#[derive(Debug, Clone, Copy)]
pub enum VerdictGate<'a> {
    /// Whatever the verdict says.
    Open,
    /// Never (downloads switched off).
    Closed {
        /// Why, for the page and the audit entry.
        reason: &'static str,
    },
    /// Not when the verdict has one of `categories` — and not when there is no readable
    /// verdict (fail closed).
    Unless {
        /// Category ids that close the view (the classification markings).
        categories: &'a [&'a str],
        /// Why, for the page and the audit entry.
        reason: &'static str,
    },
}

#[derive(sqlx::FromRow)]
struct SessionRow {
    user_id: i64,
    login: String,
    name: String,
    role: String,
    csrf: String,
    expires_at: Millis,
}

impl Store {
    /// Starts a session for `user_id`; expired sessions are cleared on the way.
    ///
    /// # Errors
    /// `Unavailable` when the database fails.
    pub async fn create_web_session(
        &self,
        token_hash: &str,
        user_id: i64,
        csrf: &str,
        ip: &str,
        now: Millis,
        expires_at: Millis,
    ) -> Result<()> {
        with_pool!(&self.db, write pool => {
            sqlx::query("DELETE FROM web_sessions WHERE expires_at <= $1")
                .bind(now)
                .execute(pool)
                .await?;
            sqlx::query(
                "INSERT INTO web_sessions (token_hash, user_id, csrf, ip, created_at, expires_at)
                 VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(token_hash)
            .bind(user_id)
            .bind(csrf)
            .bind(ip)
            .bind(now)
            .bind(expires_at)
            .execute(pool)
            .await?;
        });
        Ok(())
    }

    /// The session with `token_hash`, if it is valid at `now`.
    ///
    /// # Errors
    /// `Unavailable` when the database fails.
    pub async fn web_session(&self, token_hash: &str, now: Millis) -> Result<Option<WebSession>> {
        let row: Option<SessionRow> = with_pool!(&self.db, read pool => {
            sqlx::query_as(
                "SELECT s.user_id, u.login, u.name, u.role, s.csrf, s.expires_at
                 FROM web_sessions s JOIN users u ON u.id = s.user_id
                 WHERE s.token_hash = $1 AND s.expires_at > $2",
            )
            .bind(token_hash)
            .bind(now)
            .fetch_optional(pool)
            .await?
        });
        row.map(|r| {
            Ok(WebSession {
                user_id: r.user_id,
                login: r.login,
                name: r.name,
                role: r.role.parse()?,
                csrf: r.csrf,
                expires_at: r.expires_at,
            })
        })
        .transpose()
    }

    /// Ends a session (logout).
    ///
    /// # Errors
    /// `Unavailable` when the database fails.
    pub async fn delete_web_session(&self, token_hash: &str) -> Result<()> {
        with_pool!(&self.db, write pool => {
            sqlx::query("DELETE FROM web_sessions WHERE token_hash = $1")
                .bind(token_hash)
                .execute(pool)
                .await?;
        });
        Ok(())
    }

    /// Opens a notice link for a logged-in user and audits it: `notice.viewed` when it opens,
    /// `notice.view_refused` (with the reason) when the link is revoked, expired or belongs to
    /// someone else, or when `view.gate` keeps it closed for this message's verdict. Unknown tokens are not audited: they name no message.
    ///
    /// # Errors
    /// `Unavailable` when the database fails; then nothing is shown.
    pub async fn open_notice(&self, view: &NoticeView<'_>, now: Millis) -> Result<NoticeAccess> {
        with_write_tx!(&self.db, tx => {
            let row: Option<(i64, i64, Millis, Option<Millis>)> = sqlx::query_as(
                "SELECT message_id, user_id, expires_at, revoked_at FROM notice_tokens
                 WHERE token_hash = $1",
            )
            .bind(view.token_hash)
            .fetch_optional(&mut *tx)
            .await?;
            let Some((message_id, owner, expires_at, revoked_at)) = row else {
                return Ok(NoticeAccess::Unknown);
            };
            let refused = if revoked_at.is_some() {
                Some("the link was revoked")
            } else if expires_at <= now {
                Some("the link has expired")
            } else if owner != view.user_id {
                Some("the link belongs to another user's mailbox")
            } else {
                match view.gate {
                    VerdictGate::Open => None,
                    VerdictGate::Closed { reason } => Some(reason),
                    VerdictGate::Unless { categories, reason } => {
                        let stored: Option<(String,)> = sqlx::query_as(
                            "SELECT categories FROM message_verdicts WHERE message_id = $1",
                        )
                        .bind(message_id)
                        .fetch_optional(&mut *tx)
                        .await?;
                        let found = stored
                            .and_then(|(text,)| serde_json::from_str::<Vec<String>>(&text).ok());
                        match found {
                            Some(found) if !found.iter().any(|c| categories.contains(&c.as_str())) => None,
                            _ => Some(reason),
                        }
                    }
                }
            };
            let entry = NewAuditEntry {
                actor: view.login.to_owned(),
                action: if refused.is_some() { "notice.view_refused" } else { "notice.viewed" }
                    .to_owned(),
                subjects: vec![format!("message:{message_id}"), format!("user:{owner}")],
                details: match refused {
                    Some(reason) => serde_json::json!({"ip": view.ip, "what": view.what, "reason": reason}),
                    None => serde_json::json!({"ip": view.ip, "what": view.what}),
                },
            };
            let (details_text, subjects_text) = entry.texts()?;
            let _ = crate::audit::audit_append!(tx, &entry, now, details_text, subjects_text);
            tx.commit().await?;
            Ok(match refused {
                Some(reason) => NoticeAccess::Refused { reason },
                None => NoticeAccess::Open { message_id },
            })
        })
    }
}
