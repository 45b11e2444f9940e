//! The outbound queue as the operator sees it. Jobs are created by the transitions that need
//! them (a confirmation mail with its exemption request); delivery comes with the queue
//! worker.

use serde::Serialize;

use crate::db::with_pool;
use crate::{Millis, Result, Store};

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
    /// `queued`, `delivered`, `failed`, `dropped`.
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
        Ok(with_pool!(&self.db, read pool => {
            sqlx::query_as(
                "SELECT id, kind, exemption_id, rcpt_to, state, attempts, next_attempt_at, last_error
                 FROM outbound_jobs ORDER BY id DESC LIMIT $1",
            )
            .bind(limit)
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
