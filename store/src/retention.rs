//! Storage limitation (Art. 5(1)(e) GDPR, issue #15 §3): the bytes of old messages are purged.
//!
//! A message may go once it is older than the cut-off, its pipeline has finished
//! (`processed`), every notice link to it has expired or been revoked, and no outbound job
//! of it is still queued (a held one counts as queued). Purging deletes the original
//! (`message_blobs`), the recipients' mailbox notices, the bodies of its finished outbound
//! jobs (a forward's body is a copy of the content), and expunges every mailbox entry that
//! refers to it exactly as IMAP EXPUNGE does (`remove_entries_in!`), so clients see an
//! ordinary `* n EXPUNGE` or VANISHED. The message row (`purged_at` set), its verdict, its
//! recipient rows and every audit entry stay.
//!
//! Key decision: a batch is one write transaction (`with_write_tx!`) that picks its
//! candidates *after* taking the write lock and appends one `retention.purged` entry naming
//! each message. Two nodes purging at once therefore take turns: the second finds nothing
//! left to do, and no message is purged or audited twice.

use std::collections::BTreeMap;

use crate::db::with_write_tx;

/// Binds every id of `$ids` to `$query`, in order (the `IN (…)` lists below).
macro_rules! bind_ids {
    ($query:expr, $ids:expr) => {{
        let mut query = $query;
        for id in $ids {
            query = query.bind(*id);
        }
        query
    }};
}
use crate::{Error, ErrorKind, Millis, NewAuditEntry, Result, Store};

/// The audit action of a purge batch.
pub const PURGED_ACTION: &str = "retention.purged";

const DAY_MS: Millis = 86_400_000;

/// Most messages one batch takes, whatever the caller asks for (the statement binds one
/// parameter per message).
pub const PURGE_BATCH_MAX: i64 = 1000;

/// What one call of [`Store::purge_messages`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PurgeReport {
    /// The messages purged, ascending.
    pub messages: Vec<i64>,
    /// Mailbox entries expunged with them.
    pub expunged: u64,
    /// Outbound job bodies emptied with them.
    pub job_bodies: u64,
    /// Sequence number of the `retention.purged` audit entry (`None` when nothing was due).
    pub audit_seq: Option<i64>,
}

impl PurgeReport {
    /// How many messages were purged.
    #[must_use]
    pub fn count(&self) -> usize {
        self.messages.len()
    }
}

/// The error for reading the content of message `id` after it was purged.
pub(crate) fn purged_error(id: i64) -> Error {
    Error::new(
        ErrorKind::Purged,
        format!(
            "message {id} was purged under retention.message_days: its content is gone, its metadata and audit entries remain"
        ),
    )
}

impl Store {
    /// Purges the bytes of up to `limit` messages received before `received_before` whose
    /// notice links have all expired or been revoked by `now` and of which no outbound job
    /// is queued or held; see the module docs for what goes and what stays. One transaction
    /// and one `retention.purged` audit entry (actor `system`, subjects `message:ID`, details
    /// `count`, `message_days`, `received_before`) per call; `message_days` is the cut-off's
    /// age at `now` in whole days. Call again until it purges fewer than `limit`.
    ///
    /// # Errors
    /// `Unavailable` when the database fails; then nothing of the batch is purged.
    pub async fn purge_messages(
        &self,
        received_before: Millis,
        now: Millis,
        limit: i64,
    ) -> Result<PurgeReport> {
        let limit = limit.clamp(1, PURGE_BATCH_MAX);
        let mut report = PurgeReport::default();
        let mut owners: Vec<i64> = Vec::new();
        with_write_tx!(&self.db, tx => {
            // Chosen under the write lock (SQLite's one writer, PostgreSQL's audit lock), so
            // another node's batch has committed or not begun.
            let ids: Vec<(i64,)> = sqlx::query_as(
                "SELECT m.id FROM messages m
                 WHERE m.purged_at IS NULL AND m.received_at < $1 AND m.state = 'processed'
                   AND NOT EXISTS (SELECT 1 FROM notice_tokens t WHERE t.message_id = m.id
                                   AND t.revoked_at IS NULL AND t.expires_at > $2)
                   AND NOT EXISTS (SELECT 1 FROM outbound_jobs j WHERE j.message_id = m.id
                                   AND j.state = 'queued')
                 ORDER BY m.received_at, m.id LIMIT $3",
            )
            .bind(received_before)
            .bind(now)
            .bind(limit)
            .fetch_all(&mut *tx)
            .await?;
            if ids.is_empty() {
                return Ok(report);
            }
            let mut ids: Vec<i64> = ids.into_iter().map(|(id,)| id).collect();
            ids.sort_unstable();
            let list = crate::db::placeholders(ids.len(), 0);

            bind_ids!(
                sqlx::query(sqlx::AssertSqlSafe(format!(
                    "DELETE FROM message_blobs WHERE message_id IN ({list})"
                ))),
                &ids
            )
            .execute(&mut *tx)
            .await?;
            bind_ids!(
                sqlx::query(sqlx::AssertSqlSafe(format!(
                    "UPDATE message_recipients SET mailbox_notice = NULL WHERE message_id IN ({list})"
                ))),
                &ids
            )
            .execute(&mut *tx)
            .await?;
            // Finished jobs only: the candidates have none queued, and the state is checked
            // again on the row in case a retry raced this batch.
            report.job_bodies = bind_ids!(
                sqlx::query(sqlx::AssertSqlSafe(format!(
                    "UPDATE outbound_jobs SET body = $1
                     WHERE state <> 'queued' AND message_id IN ({})",
                    crate::db::placeholders(ids.len(), 1)
                )))
                .bind(Vec::<u8>::new()),
                &ids
            )
            .execute(&mut *tx)
            .await?
            .rows_affected();

            let entries: Vec<(i64, i64, i64)> = bind_ids!(
                sqlx::query_as(sqlx::AssertSqlSafe(format!(
                    "SELECT e.mailbox_id, mb.user_id, e.uid FROM mailbox_entries e
                     JOIN mailboxes mb ON mb.id = e.mailbox_id
                     WHERE e.message_id IN ({list}) ORDER BY e.mailbox_id, e.uid"
                ))),
                &ids
            )
            .fetch_all(&mut *tx)
            .await?;
            let mut by_mailbox: BTreeMap<(i64, i64), Vec<i64>> = BTreeMap::new();
            for (mailbox_id, user_id, uid) in entries {
                by_mailbox.entry((mailbox_id, user_id)).or_default().push(uid);
            }
            for ((mailbox_id, user_id), uids) in &by_mailbox {
                crate::mailbox::remove_entries_in!(tx, *mailbox_id, uids);
                report.expunged += u64::try_from(uids.len()).unwrap_or(u64::MAX);
                owners.push(*user_id);
            }

            // When it happened is the wall clock's (audit times must never lie ahead of
            // the checkpoints that cover them); `now` only judges expiry.
            let recorded = crate::now_millis();
            bind_ids!(
                sqlx::query(sqlx::AssertSqlSafe(format!(
                    "UPDATE messages SET purged_at = $1 WHERE purged_at IS NULL AND id IN ({})",
                    crate::db::placeholders(ids.len(), 1)
                )))
                .bind(recorded),
                &ids
            )
            .execute(&mut *tx)
            .await?;

            let entry = NewAuditEntry {
                actor: "system".to_owned(),
                action: PURGED_ACTION.to_owned(),
                subjects: ids.iter().map(|id| format!("message:{id}")).collect(),
                details: serde_json::json!({
                    "count": ids.len(),
                    "message_days": (now - received_before).max(0) / DAY_MS,
                    "received_before": received_before,
                    "expunged": report.expunged,
                }),
            };
            let (details_text, subjects_text) = entry.texts()?;
            let (seq, _, _) =
                crate::audit::audit_append!(tx, &entry, recorded, details_text, subjects_text);
            tx.commit().await?;
            report.audit_seq = Some(seq);
            report.messages = ids;
            Ok::<_, Error>(())
        })?;
        owners.sort_unstable();
        owners.dedup();
        for user in owners {
            self.announce(user);
        }
        if !report.messages.is_empty()
            && let crate::db::Db::Sqlite(pools) = &self.db
        {
            // The pages that held the purged bytes are zeroed (secure_delete), but earlier
            // copies of them may still sit in the write-ahead log: fold it in and empty it.
            // Best effort: a busy reader only delays it to the next batch.
            if let Err(err) = sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
                .execute(&pools.write)
                .await
            {
                tracing::debug!(error = %err, "write-ahead log not folded after a purge");
            }
        }
        Ok(report)
    }
}
