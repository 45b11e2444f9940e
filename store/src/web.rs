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

/// The reason [`Store::open_notice`] gives (and audits) for a link to a message whose
/// content was purged under `retention.message_days`.
pub const PURGED_REASON: &str = "the message's content was purged under retention.message_days";

/// A notice link as [`Store::open_notice`] reads it: message, owner, expiry, revocation and
/// when the message's content was purged.
type LinkRow = (i64, i64, Millis, Option<Millis>, Option<Millis>);

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
                 WHERE s.token_hash = $1 AND s.expires_at > $2 AND u.disabled_at IS NULL",
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
    /// someone else, when its message was purged ([`PURGED_REASON`]), or when `view.gate` keeps it closed for this message's verdict. Unknown tokens are not audited: they name no message.
    ///
    /// # Errors
    /// `Unavailable` when the database fails; then nothing is shown.
    pub async fn open_notice(&self, view: &NoticeView<'_>, now: Millis) -> Result<NoticeAccess> {
        with_write_tx!(&self.db, tx => {
            let row: Option<LinkRow> = sqlx::query_as(
                "SELECT t.message_id, t.user_id, t.expires_at, t.revoked_at, m.purged_at
                 FROM notice_tokens t JOIN messages m ON m.id = t.message_id
                 WHERE t.token_hash = $1",
            )
            .bind(view.token_hash)
            .fetch_optional(&mut *tx)
            .await?;
            let Some((message_id, owner, expires_at, revoked_at, purged_at)) = row else {
                return Ok(NoticeAccess::Unknown);
            };
            // A purged message's links have all expired or been revoked; saying "expired"
            // would suggest the original is still in the mailbox.
            let refused = if purged_at.is_some() {
                Some(PURGED_REASON)
            } else if revoked_at.is_some() {
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

/// A message a user was sent a notice for (their mailbox copy or a forwarded notice): what
/// the "held messages" page lists — metadata only, never content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeldNotice {
    /// The message.
    pub message_id: i64,
    /// When it arrived.
    pub received_at: Millis,
    /// Its envelope sender.
    pub sender: String,
    /// The categories of its verdict (category ids).
    pub categories: Vec<String>,
    /// Until when a link of this user to it works; `None` when every link is revoked.
    pub valid_until: Option<Millis>,
}

/// A row of [`Store::held_notices`]: message id, received, sender, categories (JSON), the
/// latest expiry of a link not revoked.
type HeldRow = (i64, Millis, String, Option<String>, Option<Millis>);

/// Most notices [`Store::held_notices`] returns at once.
pub const HELD_PAGE_MAX: i64 = 100;

impl Store {
    /// The messages `user_id` holds notice links to, newest first: at most `limit` (capped at
    /// [`HELD_PAGE_MAX`]) after skipping `offset` (paging).
    ///
    /// # Errors
    /// `Unavailable` when the database fails.
    pub async fn held_notices(
        &self,
        user_id: i64,
        offset: i64,
        limit: i64,
    ) -> Result<Vec<HeldNotice>> {
        let rows: Vec<HeldRow> = with_pool!(&self.db, read pool => {
            sqlx::query_as(
                "SELECT m.id, m.received_at, m.mail_from, v.categories,
                        MAX(CASE WHEN t.revoked_at IS NULL THEN t.expires_at END)
                 FROM notice_tokens t JOIN messages m ON m.id = t.message_id
                 LEFT JOIN message_verdicts v ON v.message_id = m.id
                 WHERE t.user_id = $1
                 GROUP BY m.id, m.received_at, m.mail_from, v.categories
                 ORDER BY m.id DESC LIMIT $2 OFFSET $3",
            )
            .bind(user_id)
            .bind(limit.clamp(1, HELD_PAGE_MAX))
            .bind(offset.max(0))
            .fetch_all(pool)
            .await?
        });
        Ok(rows
            .into_iter()
            .map(
                |(message_id, received_at, sender, categories, valid_until)| HeldNotice {
                    message_id,
                    received_at,
                    sender,
                    categories: categories
                        .and_then(|c| serde_json::from_str(&c).ok())
                        .unwrap_or_default(),
                    valid_until,
                },
            )
            .collect())
    }

    /// A new link token (given as its SHA-256, `token_hash`) to message `message_id` for
    /// `user_id`, valid exactly as long as their latest valid link to it: the "held
    /// messages" page cannot rebuild a link from the store (only hashes are kept), so it
    /// hands out a fresh one that opens through the same audited path (`/m/{token}`) and
    /// never outlives the link the notice carried. `false` (and nothing stored) when the
    /// user has no valid link to that message — revoked, expired, or not theirs.
    ///
    /// # Errors
    /// `Unavailable` when the database fails.
    pub async fn reissue_notice_token(
        &self,
        message_id: i64,
        user_id: i64,
        token_hash: &str,
        now: Millis,
    ) -> Result<bool> {
        with_write_tx!(&self.db, tx => {
            let (until,): (Option<Millis>,) = sqlx::query_as(
                "SELECT MAX(expires_at) FROM notice_tokens
                 WHERE message_id = $1 AND user_id = $2 AND revoked_at IS NULL AND expires_at > $3",
            )
            .bind(message_id)
            .bind(user_id)
            .bind(now)
            .fetch_one(&mut *tx)
            .await?;
            let Some(until) = until else {
                return Ok(false);
            };
            sqlx::query(
                "INSERT INTO notice_tokens (token_hash, message_id, user_id, created_at, expires_at)
                 VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(token_hash)
            .bind(message_id)
            .bind(user_id)
            .bind(now)
            .bind(until)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok(true)
        })
    }
}
