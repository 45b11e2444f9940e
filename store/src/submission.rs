//! Mail submission (RFC 6409): a message a user sent from their own device, queued as one
//! job for all its recipients towards the city's mail server, together with its audit entry
//! — in one transaction, before the submission server says `250`.

use crate::db::with_pool;
use crate::{Millis, Result, Store};

/// A submitted message ready to be queued.
#[derive(Debug, Clone)]
pub struct Submission {
    /// The sender's user id.
    pub user_id: i64,
    /// Their login (the audit entry's actor).
    pub login: String,
    /// The app password (device) they authenticated with.
    pub device: i64,
    /// Envelope sender: one of the user's own addresses.
    pub mail_from: String,
    /// Envelope recipients, at least one, none containing whitespace.
    pub recipients: Vec<String>,
    /// The message as it will be relayed (with ratspost's `Received:` line).
    pub body: Vec<u8>,
    /// The classifier's verdict.
    pub sensitive: bool,
    /// Its categories (empty when clean).
    pub categories: Vec<String>,
    /// Keep it in the queue until an admin releases it (`submission.sensitive = "hold"`).
    pub hold: bool,
}

/// The job kind of submitted messages.
pub const SUBMISSION_KIND: &str = "submission";

impl Store {
    /// Queues `submission` and appends the audit entry `submission.accepted` (user, device
    /// id and label, number of recipients, verdict and categories — no addresses, no content) in one
    /// transaction; the job id.
    ///
    /// # Errors
    /// `Invalid` without recipients or with whitespace in one; `Unavailable` when the
    /// database fails (then nothing was queued).
    pub async fn submit(&self, submission: &Submission, now: Millis) -> Result<i64> {
        if submission.recipients.is_empty()
            || submission
                .recipients
                .iter()
                .any(|r| r.is_empty() || r.contains(char::is_whitespace))
        {
            return Err(crate::Error::new(
                crate::ErrorKind::Invalid,
                "a submission needs recipients without whitespace",
            ));
        }
        let rcpt_to = submission.recipients.join(" ");
        let held_at = submission.hold.then_some(now);
        let id = crate::db::with_write_tx!(&self.db, tx => {
            let (id,): (i64,) = sqlx::query_as(
                "INSERT INTO outbound_jobs (kind, mail_from, rcpt_to, body, next_attempt_at, created_at, user_id, held_at)
                 VALUES ($1, $2, $3, $4, $5, $5, $6, $7) RETURNING id",
            )
            .bind(SUBMISSION_KIND)
            .bind(&submission.mail_from)
            .bind(&rcpt_to)
            .bind(&submission.body)
            .bind(now)
            .bind(submission.user_id)
            .bind(held_at)
            .fetch_one(&mut *tx)
            .await?;
            // The device by its label, as the owner and the DPO know it (the id alone would
            // need the database to be read).
            let label: Option<(String,)> = sqlx::query_as("SELECT label FROM app_passwords WHERE id = $1")
                .bind(submission.device)
                .fetch_optional(&mut *tx)
                .await?;
            let entry = crate::NewAuditEntry {
                actor: submission.login.clone(),
                action: "submission.accepted".to_owned(),
                subjects: vec![format!("user:{}", submission.login), format!("job:{id}")],
                details: serde_json::json!({
                    "app_password": submission.device,
                    "label": label.map(|(l,)| l),
                    "recipients": submission.recipients.len(),
                    "sensitive": submission.sensitive,
                    "categories": submission.categories,
                    "held": submission.hold,
                }),
            };
            let (details_text, subjects_text) = entry.texts()?;
            let _ = crate::audit::audit_append!(tx, &entry, now, details_text, subjects_text);
            tx.commit().await?;
            id
        });
        Ok(id)
    }

    /// How many messages `user_id` submitted at or after `since`, counted up to `cap` (the
    /// hourly limit): the check stays as cheap as the limit is small, however much the user
    /// sent before a limit was lowered.
    ///
    /// # Errors
    /// `Unavailable` when the database fails.
    pub async fn submissions_since(&self, user_id: i64, since: Millis, cap: i64) -> Result<i64> {
        let (n,): (i64,) = with_pool!(&self.db, read pool => {
            sqlx::query_as(
                "SELECT COUNT(*) FROM (SELECT 1 FROM outbound_jobs
                   WHERE user_id = $1 AND kind = $2 AND created_at >= $3 LIMIT $4) recent",
            )
            .bind(user_id)
            .bind(SUBMISSION_KIND)
            .bind(since)
            .bind(cap)
            .fetch_one(pool)
            .await?
        });
        Ok(n)
    }

    /// Releases a held submission: it is due now. Audited as `submission.released` by `by`.
    ///
    /// # Errors
    /// `NotFound` when no queued job `id` is held.
    pub async fn release_job(&self, id: i64, by: &str, now: Millis) -> Result<()> {
        crate::db::with_write_tx!(&self.db, tx => {
            let n = sqlx::query(
                "UPDATE outbound_jobs SET held_at = NULL, next_attempt_at = $1
                 WHERE id = $2 AND state = 'queued' AND held_at IS NOT NULL",
            )
            .bind(now)
            .bind(id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if n == 0 {
                return Err(crate::Error::new(crate::ErrorKind::NotFound, format!("no held job {id}")));
            }
            let entry = crate::NewAuditEntry {
                actor: by.to_owned(),
                action: "submission.released".to_owned(),
                subjects: vec![format!("job:{id}")],
                details: serde_json::json!({}),
            };
            let (details_text, subjects_text) = entry.texts()?;
            let _ = crate::audit::audit_append!(tx, &entry, now, details_text, subjects_text);
            tx.commit().await?;
        });
        Ok(())
    }
}
