//! The outbound queue as the operator sees it. Jobs are created by the transitions that need
//! them (a confirmation mail with its exemption request); delivery comes with the queue
//! worker.

use serde::Serialize;

use crate::db::with_pool;
use crate::{Millis, Result, Store};

/// Queues `$mail` with `$exemption` and `$message` ids (`Option<i64>` or `i64`) due at `$now`,
/// using the executor `$on` (a pool, or `&mut *tx` inside a transaction); evaluates to the
/// job id. The one place that knows the job row's shape.
macro_rules! insert_job {
    ($on:expr, $mail:expr, $exemption:expr, $message:expr, $now:expr) => {{
        let mail: &$crate::QueuedMail = $mail;
        let (id,): (i64,) = sqlx::query_as(
            "INSERT INTO outbound_jobs (kind, exemption_id, message_id, mail_from, rcpt_to, body, next_attempt_at, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $7) RETURNING id",
        )
        .bind(&mail.kind)
        .bind($exemption)
        .bind($message)
        .bind(&mail.mail_from)
        .bind(&mail.rcpt_to)
        .bind(&mail.body)
        .bind($now)
        .fetch_one($on)
        .await?;
        id
    }};
}
pub(crate) use insert_job;

/// A queued or finished job, without its message body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct OutboundJob {
    /// Id.
    pub id: i64,
    /// `confirmation`, `forward`, `notice`, `reminder`, `failure_notice`.
    pub kind: String,
    /// The exemption it depends on.
    pub exemption_id: Option<i64>,
    /// Envelope recipient.
    pub rcpt_to: String,
    /// `queued`, `held` (a submission waiting for an admin), `delivered`, `failed`,
    /// `dropped`.
    pub state: String,
    /// Delivery attempts so far.
    pub attempts: i64,
    /// When it is due.
    pub next_attempt_at: Millis,
    /// The last delivery error.
    pub last_error: Option<String>,
}

impl Store {
    /// Jobs, newest first.
    ///
    /// # Errors
    /// `Unavailable` when the database fails.
    pub async fn list_outbound(&self, limit: i64) -> Result<Vec<OutboundJob>> {
        self.list_outbound_page(crate::Page::Newest, limit).await
    }

    /// Up to `limit` jobs on `page` (see [`crate::Page`] for the order).
    ///
    /// # Errors
    /// `Unavailable` when the database fails.
    pub async fn list_outbound_page(
        &self,
        page: crate::Page,
        limit: i64,
    ) -> Result<Vec<OutboundJob>> {
        let mut conditions = Vec::new();
        let mut params = crate::db::Params::default();
        let order = page.condition("id", &mut conditions, &mut params);
        let n = params.int(limit);
        let select = format!(
            "SELECT id, kind, exemption_id, rcpt_to,
                    CASE WHEN state = 'queued' AND held_at IS NOT NULL THEN 'held' ELSE state END AS state,
                    attempts, next_attempt_at, last_error
             FROM outbound_jobs{} ORDER BY id {order} LIMIT ${n}",
            crate::db::where_clause(&conditions)
        );
        Ok(with_pool!(&self.db, read pool => {
            crate::db::bind_params!(sqlx::query_as(sqlx::AssertSqlSafe(select)), params)
                .fetch_all(pool)
                .await?
        }))
    }

    /// The message a job will send (for the delivery worker and for tests).
    ///
    /// # Errors
    /// `NotFound` for an unknown id.
    pub async fn outbound_body(&self, id: i64) -> Result<Vec<u8>> {
        let (body,): (Vec<u8>,) = with_pool!(&self.db, read pool => {
            sqlx::query_as("SELECT body FROM outbound_jobs WHERE id = $1")
                .bind(id)
                .fetch_one(pool)
                .await?
        });
        Ok(body)
    }
}

/// A job handed to a delivery worker, with its message.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct LeasedJob {
    /// Id.
    pub id: i64,
    /// Kind.
    pub kind: String,
    /// The exemption it depends on (re-checked before delivery).
    pub exemption_id: Option<i64>,
    /// The source message (forwards).
    pub message_id: Option<i64>,
    /// Envelope sender.
    pub mail_from: String,
    /// Envelope recipient; for a `submission`, all of them separated by spaces.
    pub rcpt_to: String,
    /// The message.
    pub body: Vec<u8>,
    /// The user who submitted it (`submission` jobs).
    pub user_id: Option<i64>,
    /// Attempts before this one.
    pub attempts: i64,
    /// When it was queued.
    pub created_at: Millis,
}

/// What became of a delivery attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobOutcome {
    /// Accepted by the next hop.
    Delivered,
    /// Try again at this time.
    Retry {
        /// When.
        at: Millis,
        /// Why it failed.
        error: String,
        /// The recipients still to try (space-separated), when the attempt reached some of
        /// them; `None`: all as before.
        rcpt_to: Option<String>,
    },
    /// Give up.
    Failed {
        /// Why.
        error: String,
    },
    /// Not sent, on purpose (exemption no longer active, …).
    Dropped {
        /// Why.
        reason: String,
    },
}

impl Store {
    /// Queues a message (outside any transition).
    ///
    /// # Errors
    /// `Unavailable` when the database fails.
    pub async fn enqueue(
        &self,
        mail: &crate::QueuedMail,
        exemption_id: Option<i64>,
        message_id: Option<i64>,
        now: Millis,
    ) -> Result<i64> {
        let id = with_pool!(&self.db, write pool => {
            insert_job!(pool, mail, exemption_id, message_id, now)
        });
        Ok(id)
    }

    /// Leases up to `limit` due jobs to `owner` until `lease_until`. A job whose lease ran out
    /// (its node died) is due again. On PostgreSQL `FOR UPDATE SKIP LOCKED` keeps two nodes
    /// from leasing the same job; SQLite has one writer.
    ///
    /// # Errors
    /// `Unavailable` when the database fails.
    pub async fn lease_jobs(
        &self,
        owner: &str,
        now: Millis,
        lease_until: Millis,
        limit: i64,
    ) -> Result<Vec<LeasedJob>> {
        const PICK: &str = "SELECT id FROM outbound_jobs
             WHERE state = 'queued' AND held_at IS NULL AND next_attempt_at <= $3 AND (lease_until IS NULL OR lease_until < $3)
             ORDER BY next_attempt_at, id LIMIT $4";
        const RETURNING: &str = " RETURNING id, kind, exemption_id, message_id, mail_from, rcpt_to, body, user_id, attempts, created_at";
        let sql = format!(
            "UPDATE outbound_jobs SET lease_owner = $1, lease_until = $2 WHERE id IN ({PICK}{}){RETURNING}",
            self.db.skip_locked()
        );
        Ok(with_pool!(&self.db, write pool => {
            sqlx::query_as(sqlx::AssertSqlSafe(sql))
                .bind(owner)
                .bind(lease_until)
                .bind(now)
                .bind(limit)
                .fetch_all(pool)
                .await?
        }))
    }

    /// Extends `owner`'s lease on job `id` to `lease_until` (milliseconds since the epoch):
    /// `true` while `owner` still holds it, `false` when it was lost (another node took the
    /// job after the lease ran out, or the job was dropped by hand). A delivery renews its
    /// lease while its SMTP transaction runs and once more right before the message's end.
    ///
    /// # Errors
    /// `Unavailable` when the database fails.
    pub async fn renew_lease(&self, id: i64, owner: &str, lease_until: Millis) -> Result<bool> {
        let n = with_pool!(&self.db, write pool => {
            sqlx::query(
                "UPDATE outbound_jobs SET lease_until = $1
                 WHERE id = $2 AND lease_owner = $3 AND state = 'queued'",
            )
            .bind(lease_until)
            .bind(id)
            .bind(owner)
            .execute(pool)
            .await?
            .rows_affected()
        });
        Ok(n == 1)
    }

    /// Records the outcome of a leased job — only while `owner` still holds the lease, so a
    /// node whose lease expired cannot overwrite another node's result. Drops and final
    /// failures are audited.
    ///
    /// # Errors
    /// `Conflict` when the lease was lost; `Unavailable` when the database fails.
    pub async fn finish_job(
        &self,
        job: &LeasedJob,
        owner: &str,
        outcome: &JobOutcome,
        now: Millis,
    ) -> Result<()> {
        let (state, next, error): (&str, Option<Millis>, Option<&str>) = match outcome {
            JobOutcome::Delivered => ("delivered", None, None),
            JobOutcome::Retry { at, error, .. } => ("queued", Some(*at), Some(error)),
            JobOutcome::Failed { error } => ("failed", None, Some(error)),
            JobOutcome::Dropped { reason } => ("dropped", None, Some(reason)),
        };
        let remaining = match outcome {
            JobOutcome::Retry { rcpt_to, .. } => rcpt_to.as_deref(),
            _ => None,
        };
        let audit_action = match outcome {
            JobOutcome::Dropped { .. } => Some("queue.dropped"),
            JobOutcome::Failed { .. } => Some("queue.failed"),
            JobOutcome::Delivered if job.kind == "forward" || job.kind == "notice" => {
                Some("forward.delivered")
            }
            _ => None,
        };
        crate::db::with_write_tx!(&self.db, tx => {
            let done = sqlx::query(
                "UPDATE outbound_jobs SET state = $1, attempts = attempts + $2,
                    next_attempt_at = COALESCE($3, next_attempt_at), last_error = $4,
                    lease_owner = NULL, lease_until = NULL,
                    done_at = CASE WHEN $1 = 'queued' THEN NULL ELSE $5 END,
                    rcpt_to = COALESCE($8, rcpt_to)
                 WHERE id = $6 AND lease_owner = $7",
            )
            .bind(state)
            .bind(i64::from(!matches!(outcome, JobOutcome::Dropped { .. })))
            .bind(next)
            .bind(error)
            .bind(now)
            .bind(job.id)
            .bind(owner)
            .bind(remaining)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if done == 0 {
                return Err(crate::Error::new(crate::ErrorKind::Conflict, format!("lease on job {} was lost", job.id)));
            }
            if let Some(action) = audit_action {
                let mut subjects = vec![format!("job:{}", job.id)];
                subjects.extend(job.exemption_id.map(|e| format!("exemption:{e}")));
                subjects.extend(job.message_id.map(|m| format!("message:{m}")));
                let entry = crate::NewAuditEntry {
                    actor: "system".to_owned(),
                    action: action.to_owned(),
                    subjects,
                    details: serde_json::json!({"kind": job.kind, "target": job.rcpt_to, "error": error}),
                };
                let (details_text, subjects_text) = entry.texts()?;
                let _ = crate::audit::audit_append!(tx, &entry, now, details_text, subjects_text);
            }
            tx.commit().await?;
        });
        Ok(())
    }

    /// Makes a queued or failed job due now (a held one needs [`Store::release_job`]).
    ///
    /// # Errors
    /// `NotFound` when there is no such job waiting or failed, or it is held; `Purged` when
    /// its message was purged under `retention.message_days` (its body went with it).
    pub async fn retry_job(&self, id: i64, now: Millis) -> Result<()> {
        // The body's length is checked on the row itself, so a purge that emptied it while
        // this ran wins (PostgreSQL re-reads the row it waited for).
        let n = with_pool!(&self.db, write pool => {
            sqlx::query(
                "UPDATE outbound_jobs SET state = 'queued', next_attempt_at = $1, done_at = NULL
                 WHERE id = $2 AND state IN ('queued', 'failed') AND held_at IS NULL
                   AND LENGTH(body) > 0",
            )
            .bind(now)
            .bind(id)
            .execute(pool)
            .await?
            .rows_affected()
        });
        if n == 0 {
            let purged: Option<(i64,)> = with_pool!(&self.db, read pool => {
                sqlx::query_as(
                    "SELECT j.message_id FROM outbound_jobs j JOIN messages m ON m.id = j.message_id
                     WHERE j.id = $1 AND m.purged_at IS NOT NULL",
                )
                .bind(id)
                .fetch_optional(pool)
                .await?
            });
            if let Some((message_id,)) = purged {
                return Err(crate::Error::new(
                    crate::ErrorKind::Purged,
                    format!(
                        "job {id} cannot be sent again: message {message_id} was purged under retention.message_days"
                    ),
                ));
            }
            return Err(crate::Error::new(
                crate::ErrorKind::NotFound,
                format!("no queued or failed job {id}"),
            ));
        }
        Ok(())
    }

    /// Drops a queued job by hand (audited) — not while a node is delivering it: its
    /// message's end may already be on the way, and the job could then end delivered after
    /// all; the admin tries again when that attempt is over.
    ///
    /// # Errors
    /// `NotFound` when there is no such queued job; `Conflict` while it is being delivered.
    pub async fn drop_job(&self, id: i64, by: &str, now: Millis) -> Result<()> {
        crate::db::with_write_tx!(&self.db, tx => {
            let n = sqlx::query(
                "UPDATE outbound_jobs SET state = 'dropped', done_at = $1, last_error = $2
                 WHERE id = $3 AND state = 'queued' AND (lease_until IS NULL OR lease_until < $1)",
            )
                .bind(now)
                .bind(format!("dropped by {by}"))
                .bind(id)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            if n == 0 {
                let leased: Option<(i64,)> = sqlx::query_as(
                    "SELECT id FROM outbound_jobs WHERE id = $1 AND state = 'queued' AND lease_until >= $2",
                )
                .bind(id)
                .bind(now)
                .fetch_optional(&mut *tx)
                .await?;
                if leased.is_some() {
                    return Err(crate::Error::new(
                        crate::ErrorKind::Conflict,
                        format!("job {id} is being delivered right now; drop it when this attempt is over (queue list shows its state)"),
                    ));
                }
                return Err(crate::Error::new(crate::ErrorKind::NotFound, format!("no queued job {id}")));
            }
            let entry = crate::NewAuditEntry {
                actor: by.to_owned(),
                action: "queue.dropped".to_owned(),
                subjects: vec![format!("job:{id}")],
                details: serde_json::json!({"reason": "dropped by hand"}),
            };
            let (details_text, subjects_text) = entry.texts()?;
            let _ = crate::audit::audit_append!(tx, &entry, now, details_text, subjects_text);
            tx.commit().await?;
        });
        Ok(())
    }
}

impl Store {
    /// What `user_id`'s mailbox shows for a message: the notice when it is sensitive, the
    /// original otherwise. `None` when the user is not a recipient or the message is not
    /// processed yet (nothing is shown before its verdict).
    ///
    /// # Errors
    /// `Unavailable` when the database fails.
    pub async fn mailbox_copy(&self, message_id: i64, user_id: i64) -> Result<Option<Vec<u8>>> {
        let row: Option<(Option<Vec<u8>>, String)> = with_pool!(&self.db, read pool => {
            sqlx::query_as(
                "SELECT r.mailbox_notice, m.state FROM message_recipients r JOIN messages m ON m.id = r.message_id
                 WHERE r.message_id = $1 AND r.user_id = $2 LIMIT 1",
            )
            .bind(message_id)
            .bind(user_id)
            .fetch_optional(pool)
            .await?
        });
        match row {
            Some((_, state)) if state != "processed" => Ok(None),
            Some((Some(notice), _)) => Ok(Some(notice)),
            Some((None, _)) => Ok(Some(self.message_raw(message_id).await?)),
            None => Ok(None),
        }
    }

    /// The message and user a notice token opens, if it is valid at `now`.
    ///
    /// # Errors
    /// `Unavailable` when the database fails.
    pub async fn resolve_notice_token(
        &self,
        token_hash: &str,
        now: Millis,
    ) -> Result<Option<(i64, i64)>> {
        Ok(with_pool!(&self.db, read pool => {
            sqlx::query_as(
                "SELECT message_id, user_id FROM notice_tokens
                 WHERE token_hash = $1 AND expires_at > $2 AND revoked_at IS NULL",
            )
            .bind(token_hash)
            .bind(now)
            .fetch_optional(pool)
            .await?
        }))
    }

    /// Revokes every notice link of a message at once (audited as `notice.links_revoked`);
    /// returns how many were still valid.
    ///
    /// # Errors
    /// `NotFound` when there is no such message; `Unavailable` when the database fails.
    pub async fn revoke_notice_tokens(
        &self,
        message_id: i64,
        by: &str,
        now: Millis,
    ) -> Result<u64> {
        crate::db::with_write_tx!(&self.db, tx => {
            let exists: Option<(i64,)> = sqlx::query_as("SELECT id FROM messages WHERE id = $1")
                .bind(message_id)
                .fetch_optional(&mut *tx)
                .await?;
            if exists.is_none() {
                return Err(crate::Error::new(crate::ErrorKind::NotFound, format!("no message {message_id}")));
            }
            let n = sqlx::query("UPDATE notice_tokens SET revoked_at = $1 WHERE message_id = $2 AND revoked_at IS NULL")
                .bind(now)
                .bind(message_id)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            let entry = crate::NewAuditEntry {
                actor: by.to_owned(),
                action: "notice.links_revoked".to_owned(),
                subjects: vec![format!("message:{message_id}")],
                details: serde_json::json!({"links": n}),
            };
            let (details_text, subjects_text) = entry.texts()?;
            let _ = crate::audit::audit_append!(tx, &entry, now, details_text, subjects_text);
            tx.commit().await?;
            Ok(n)
        })
    }

    /// Recipients of a message with their user ids and logins.
    ///
    /// # Errors
    /// `Unavailable` when the database fails.
    pub async fn message_recipients(&self, message_id: i64) -> Result<Vec<(String, i64, String)>> {
        Ok(with_pool!(&self.db, read pool => {
            sqlx::query_as(
                "SELECT r.recipient, r.user_id, u.login FROM message_recipients r JOIN users u ON u.id = r.user_id
                 WHERE r.message_id = $1 ORDER BY r.recipient",
            )
            .bind(message_id)
            .fetch_all(pool)
            .await?
        }))
    }
}
