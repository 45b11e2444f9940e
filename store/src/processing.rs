//! The pipeline's end of a message: its verdict, the notices its mailbox shows, its forward
//! jobs with their link tokens and audit entries, and its inbox entries — committed together,
//! and for many messages in one transaction (group commit: one fsync for all of them).
//!
//! A message counts as processed only once all of that is committed; until then it stays
//! `received` (or `classified`, a state earlier versions stored between verdict and
//! decisions) and a restart takes it up again. Completing is idempotent: a message that is
//! no longer in the state its completion expects (another node, or an earlier run, got there
//! first) is left alone and nothing of the completion is written.

use crate::queue::insert_job;
use crate::{
    Error, ErrorKind, MessageEnvelope, MessageState, Millis, Result, Store, VerdictRecord,
};

/// The notice a recipient's mailbox serves instead of a sensitive original, with its token.
#[derive(Debug, Clone)]
pub struct MailboxNotice {
    /// The recipient.
    pub user_id: i64,
    /// The notice message.
    pub body: Vec<u8>,
    /// Hash and expiry of its link token.
    pub token: (String, Millis),
}

/// A forward decided by the pipeline: the job to queue and, for a notice, its link token.
#[derive(Debug, Clone)]
pub struct ForwardDecision {
    /// The recipient whose exemption allows it.
    pub user_id: i64,
    /// Their login (for the audit entry).
    pub login: String,
    /// The exemption.
    pub exemption_id: i64,
    /// `forward` (the original) or `notice`.
    pub kind: String,
    /// The mail to queue.
    pub mail: crate::QueuedMail,
    /// For a notice: the token's hash and expiry.
    pub token: Option<(String, Millis)>,
}

/// A message the pipeline is about to work on, as read for many at once
/// ([`Store::pending_messages`]).
#[derive(Debug, Clone)]
pub struct PendingMessage {
    /// Database id.
    pub id: i64,
    /// [`MessageState::Received`] (no verdict yet) or [`MessageState::Classified`] (its
    /// verdict is stored: [`Self::verdict`]).
    pub state: MessageState,
    /// What SMTP recorded about it.
    pub envelope: MessageEnvelope,
    /// The message exactly as received.
    pub raw: Vec<u8>,
    /// The stored verdict of a `classified` message.
    pub verdict: Option<VerdictRecord>,
    /// Its recipients as (address, user id, login), ordered by address.
    pub recipients: Vec<(String, i64, String)>,
}

/// Everything the pipeline worked out for one message, to commit
/// ([`Store::complete_messages`]).
#[derive(Debug, Clone)]
pub struct Completion {
    /// The message.
    pub message_id: i64,
    /// Hex SHA-256 of the message (for the audit entries).
    pub sha256: String,
    /// The verdict to store with it: then the message must still be `received`. `None`: its
    /// verdict was stored before and it must be `classified`.
    pub new_verdict: Option<VerdictRecord>,
    /// The categories of a sensitive verdict (empty when clean), for the audit entries.
    pub categories: Vec<String>,
    /// The forward jobs to queue.
    pub decisions: Vec<ForwardDecision>,
    /// The notices the recipients' mailboxes show instead of the original.
    pub mailbox: Vec<MailboxNotice>,
    /// The message's size in bytes: the RFC822.SIZE of an entry that serves the original.
    pub size: i64,
    /// The users among its recipients ([`PendingMessage::recipients`]): each gets one
    /// INBOX entry.
    pub users: Vec<i64>,
}

impl Completion {
    /// The INBOX entries of this message as (message id, user id, size), by user: a user
    /// with a notice is served the notice, and its size is the notice's.
    fn entries(&self) -> Vec<(i64, i64, i64)> {
        let mut users = self.users.clone();
        users.sort_unstable();
        users.dedup();
        users
            .into_iter()
            .map(|user| {
                let size = self
                    .mailbox
                    .iter()
                    .find(|m| m.user_id == user)
                    .map_or(self.size, |m| {
                        i64::try_from(m.body.len()).unwrap_or(i64::MAX)
                    });
                (self.message_id, user, size)
            })
            .collect()
    }
}

#[derive(sqlx::FromRow)]
struct PendingRow {
    id: i64,
    state: String,
    mail_from: String,
    helo: String,
    peer_ip: String,
    tls: bool,
    received_at: i64,
    sha256: String,
    raw: Option<Vec<u8>>,
    sensitive: Option<bool>,
    categories: Option<String>,
    findings: Option<String>,
}

/// Writes the completions `$completions` (`&[Completion]`) inside `$tx`, with a few
/// statements for the whole batch (state, verdicts, inbox entries) and one per notice and
/// forward. Evaluates to (whether each was completed, the users whose INBOX got entries).
macro_rules! complete_all {
    ($tx:ident, $completions:expr, $now:expr) => {{
        let completions: &[Completion] = $completions;
        let now: Millis = $now;
        // Each message moves on to `processed` only from the state its completion expects.
        let mut moved: Vec<i64> = Vec::new();
        for (expected, fresh) in [(MessageState::Received, true), (MessageState::Classified, false)] {
            let ids: Vec<i64> = completions
                .iter()
                .filter(|c| c.new_verdict.is_some() == fresh)
                .map(|c| c.message_id)
                .collect();
            if ids.is_empty() {
                continue;
            }
            let update = format!(
                "UPDATE messages SET state = 'processed', claim_owner = NULL, claim_until = NULL
                 WHERE state = $1 AND id IN ({}) RETURNING id",
                crate::db::placeholders(ids.len(), 1)
            );
            let mut query = sqlx::query_as(sqlx::AssertSqlSafe(update)).bind(expected.as_str());
            for id in &ids {
                query = query.bind(*id);
            }
            let rows: Vec<(i64,)> = query.fetch_all(&mut *$tx).await?;
            moved.extend(rows.into_iter().map(|(id,)| id));
        }
        moved.sort_unstable();
        let done: Vec<bool> = completions
            .iter()
            .map(|c| moved.binary_search(&c.message_id).is_ok())
            .collect();
        let verdicts: Vec<(i64, &VerdictRecord)> = completions
            .iter()
            .zip(&done)
            .filter_map(|(c, &done)| Some((c.message_id, c.new_verdict.as_ref().filter(|_| done)?)))
            .collect();
        for chunk in verdicts.chunks(crate::db::ROWS_PER_INSERT) {
            let insert = format!(
                "INSERT INTO message_verdicts (message_id, sensitive, categories, findings, classified_at)
                 VALUES {}",
                crate::db::value_rows(chunk.len(), 5)
            );
            let mut query = sqlx::query(sqlx::AssertSqlSafe(insert));
            for (id, verdict) in chunk {
                let categories =
                    serde_json::to_string(&verdict.categories).unwrap_or_else(|_| "[]".to_owned());
                query = query
                    .bind(*id)
                    .bind(verdict.sensitive)
                    .bind(categories)
                    .bind(&verdict.findings)
                    .bind(now);
            }
            query.execute(&mut *$tx).await?;
        }
        for (c, _) in completions.iter().zip(&done).filter(|(_, done)| **done) {
            for m in &c.mailbox {
                sqlx::query(
                    "UPDATE message_recipients SET mailbox_notice = $1 WHERE message_id = $2 AND user_id = $3",
                )
                .bind(&m.body)
                .bind(c.message_id)
                .bind(m.user_id)
                .execute(&mut *$tx)
                .await?;
                sqlx::query(
                    "INSERT INTO notice_tokens (token_hash, message_id, user_id, created_at, expires_at)
                     VALUES ($1, $2, $3, $4, $5)",
                )
                .bind(&m.token.0)
                .bind(c.message_id)
                .bind(m.user_id)
                .bind(now)
                .bind(m.token.1)
                .execute(&mut *$tx)
                .await?;
            }
            for d in &c.decisions {
                if let Some((hash, expires)) = &d.token {
                    sqlx::query(
                        "INSERT INTO notice_tokens (token_hash, message_id, user_id, created_at, expires_at)
                         VALUES ($1, $2, $3, $4, $5)",
                    )
                    .bind(hash)
                    .bind(c.message_id)
                    .bind(d.user_id)
                    .bind(now)
                    .bind(expires)
                    .execute(&mut *$tx)
                    .await?;
                }
                let job = insert_job!(&mut *$tx, &d.mail, d.exemption_id, Some(c.message_id), now);
                let entry = crate::NewAuditEntry {
                    actor: "system".to_owned(),
                    action: "forward.decided".to_owned(),
                    subjects: vec![
                        format!("message:{}", c.message_id),
                        format!("exemption:{}", d.exemption_id),
                        format!("user:{}", d.login),
                        format!("job:{job}"),
                    ],
                    details: serde_json::json!({
                        "sha256": c.sha256,
                        "sensitive": !c.categories.is_empty(),
                        "categories": c.categories,
                        "target": d.mail.rcpt_to,
                        "outcome": d.kind,
                    }),
                };
                let (details_text, subjects_text) = entry.texts()?;
                let _ = crate::audit::audit_append!($tx, &entry, now, details_text, subjects_text);
            }
        }
        // Last, so each INBOX row is locked only for the end of the transaction. What each
        // entry serves is known here; nothing need be read back.
        let mut entries: Vec<(i64, i64, i64)> = completions
            .iter()
            .zip(&done)
            .filter(|(_, done)| **done)
            .flat_map(|(c, _)| c.entries())
            .collect();
        entries.sort_unstable();
        let filed = crate::mailbox::file_entries!($tx, &entries, now);
        (done, filed)
    }};
}

impl Store {
    /// Reads the messages `ids` that still need the pipeline (state `received` or
    /// `classified`), with their bytes, stored verdict and recipients, in two queries;
    /// ordered by id. Ids that are processed by now, unknown or purged are left out, and so
    /// are, in id order, those past `max_bytes` of message bytes in all (the first one is
    /// always read, however large).
    ///
    /// # Errors
    /// `Unavailable` when the database fails.
    pub async fn pending_messages(
        &self,
        ids: &[i64],
        max_bytes: i64,
    ) -> Result<Vec<PendingMessage>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let list = crate::db::placeholders(ids.len(), 0);
        // The running total of sizes in id order bounds what is read at once.
        let select = format!(
            "SELECT m.id, m.state, m.mail_from, m.helo, m.peer_ip, m.tls, m.received_at, m.sha256,
                    b.raw, v.sensitive, v.categories, v.findings
             FROM (SELECT id, size, SUM(size) OVER (ORDER BY id) AS running FROM messages
                   WHERE id IN ({list}) AND state IN ('received', 'classified')) p
             JOIN messages m ON m.id = p.id
             LEFT JOIN message_blobs b ON b.message_id = m.id
             LEFT JOIN message_verdicts v ON v.message_id = m.id
             WHERE p.running - p.size < ${}
             ORDER BY m.id",
            ids.len() + 1
        );
        let rows: Vec<PendingRow> = crate::db::with_pool!(&self.db, read pool => {
            let mut query = sqlx::query_as(sqlx::AssertSqlSafe(select.clone()));
            for id in ids {
                query = query.bind(*id);
            }
            query.bind(max_bytes).fetch_all(pool).await?
        });
        let select = format!(
            "SELECT r.message_id, r.recipient, r.user_id, u.login
             FROM message_recipients r JOIN users u ON u.id = r.user_id
             WHERE r.message_id IN ({list}) ORDER BY r.message_id, r.recipient"
        );
        let recipients: Vec<(i64, String, i64, String)> = crate::db::with_pool!(&self.db, read pool => {
            let mut query = sqlx::query_as(sqlx::AssertSqlSafe(select.clone()));
            for id in ids {
                query = query.bind(*id);
            }
            query.fetch_all(pool).await?
        });
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            let state = match row.state.as_str() {
                "received" => MessageState::Received,
                _ => MessageState::Classified,
            };
            let verdict = match (row.sensitive, row.categories, row.findings) {
                (Some(sensitive), Some(categories), Some(findings)) => Some(VerdictRecord {
                    sensitive,
                    categories: serde_json::from_str(&categories).unwrap_or_default(),
                    findings,
                }),
                _ => None,
            };
            if state == MessageState::Classified && verdict.is_none() {
                return Err(Error::new(
                    ErrorKind::Unavailable,
                    format!("message {} is classified but has no verdict", row.id),
                ));
            }
            // Bytes are purged only from processed messages; a pending one without them is
            // not ours to work on.
            let Some(raw) = row.raw else { continue };
            out.push(PendingMessage {
                id: row.id,
                state,
                envelope: MessageEnvelope {
                    mail_from: row.mail_from,
                    helo: row.helo,
                    peer_ip: row.peer_ip,
                    tls: row.tls,
                    received_at: row.received_at,
                    sha256: row.sha256,
                },
                raw,
                verdict,
                recipients: recipients
                    .iter()
                    .filter(|r| r.0 == row.id)
                    .map(|(_, address, user, login)| (address.clone(), *user, login.clone()))
                    .collect(),
            });
        }
        Ok(out)
    }

    /// Commits the completions in one transaction: for each message its verdict (when new),
    /// mailbox notices with their link tokens, forward jobs with their tokens and one audit
    /// entry per decision (message hash, verdict, exemption, target, outcome), its inbox
    /// entries, and the state `processed`. Returns for each completion whether it was
    /// committed: `false` when its message was no longer in the state it expects (nothing of
    /// it is written then). IDLE sessions of the recipients are told after the commit.
    ///
    /// # Errors
    /// `Unavailable` when the database fails: then nothing of any completion is stored.
    pub async fn complete_messages(
        &self,
        completions: &[Completion],
        now: Millis,
    ) -> Result<Vec<bool>> {
        // Only forward decisions append to the audit chain; without them the commit need
        // not wait for the audit lock (on PostgreSQL), nor hold up other audited writes.
        // Every message has a recipient: a completion without one would be marked processed
        // with no INBOX entry.
        if let Some(c) = completions.iter().find(|c| c.users.is_empty()) {
            return Err(Error::new(
                ErrorKind::Invalid,
                format!("completion of message {} names no recipient", c.message_id),
            ));
        }
        let audited = completions.iter().any(|c| !c.decisions.is_empty());
        let (done, mut filed) = crate::db::with_write_tx!(&self.db, tx, audited = audited => {
            let done = complete_all!(tx, completions, now);
            tx.commit().await?;
            done
        });
        filed.sort_unstable();
        filed.dedup();
        for user in filed {
            self.announce(user);
        }
        Ok(done)
    }

    /// Records the forward decisions for a `classified` message and marks it processed:
    /// [`Self::complete_messages`] for one message whose verdict is already stored.
    ///
    /// # Errors
    /// `Unavailable` when the database fails.
    pub async fn complete_processing(
        &self,
        message_id: i64,
        sha256: &str,
        categories: &[String],
        decisions: &[ForwardDecision],
        mailbox: &[MailboxNotice],
        now: Millis,
    ) -> Result<bool> {
        // Its size and recipients, as the pipeline has them in hand.
        let rows: Vec<(i64, i64)> = crate::db::with_pool!(&self.db, read pool => {
            sqlx::query_as(
                "SELECT m.size, r.user_id FROM messages m
                 JOIN message_recipients r ON r.message_id = m.id WHERE m.id = $1",
            )
            .bind(message_id)
            .fetch_all(pool)
            .await?
        });
        let Some(&(size, _)) = rows.first() else {
            return Ok(false);
        };
        let users = rows.iter().map(|r| r.1).collect();
        let completion = Completion {
            message_id,
            sha256: sha256.to_owned(),
            new_verdict: None,
            categories: categories.to_vec(),
            decisions: decisions.to_vec(),
            mailbox: mailbox.to_vec(),
            size,
            users,
        };
        Ok(self.complete_messages(&[completion], now).await?[0])
    }
}
