//! Accepted messages: envelope, raw bytes, one row per recipient, processing state.

use serde::Serialize;

use crate::db::{Params, bind_params, where_clause, with_pool};
use crate::{Error, ErrorKind, Millis, Result, Store};

/// Where a message is in the processing pipeline. A restart resumes every message that is
/// not in a final state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum MessageState {
    /// Committed by SMTP intake; not yet classified or delivered to mailboxes.
    Received,
    /// Classified: its verdict is stored.
    Classified,
    /// Forward decisions made and queued: nothing left to do.
    Processed,
}

impl MessageState {
    /// The name stored in the database.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            MessageState::Received => "received",
            MessageState::Classified => "classified",
            MessageState::Processed => "processed",
        }
    }
}

/// A recipient of an accepted message: the address as given in `RCPT TO` (lower-cased) and
/// the user it belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StoredRecipient {
    /// Recipient address.
    pub address: String,
    /// Owner of the address.
    pub user_id: i64,
}

/// A message to commit, with everything SMTP learned about it.
#[derive(Debug, Clone)]
pub struct NewMessage {
    /// When the final `.` (or `BDAT LAST`) arrived.
    pub received_at: Millis,
    /// Envelope sender; empty for the null sender `<>`.
    pub mail_from: String,
    /// What the client said in EHLO/HELO.
    pub helo: String,
    /// The client's IP address.
    pub peer_ip: String,
    /// Whether the message arrived over TLS.
    pub tls: bool,
    /// The message exactly as received (after dot-unstuffing), without any header added.
    pub raw: Vec<u8>,
    /// Hex SHA-256 of `raw`.
    pub sha256: String,
    /// The `Message-ID` header, without angle brackets, if present.
    pub message_id: Option<String>,
    /// At least one recipient.
    pub recipients: Vec<StoredRecipient>,
}

/// A message as listed: metadata only, never content.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MessageSummary {
    /// Database id.
    pub id: i64,
    /// Receive time.
    pub received_at: Millis,
    /// Envelope sender (empty for `<>`).
    pub mail_from: String,
    /// Recipient addresses.
    pub recipients: Vec<String>,
    /// Size in bytes.
    pub size: i64,
    /// Hex SHA-256 of the raw message.
    pub sha256: String,
    /// `Message-ID` header.
    pub message_id: Option<String>,
    /// Processing state.
    pub state: String,
    /// The verdict, once classified: sensitive or not.
    pub sensitive: Option<bool>,
    /// The verdict's categories (empty when clean or not yet classified).
    pub categories: Vec<String>,
    /// When its bytes were purged under `retention.message_days` (`None`: kept).
    pub purged_at: Option<Millis>,
}

/// A classification result to store with a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerdictRecord {
    /// Sensitive or clean.
    pub sensitive: bool,
    /// Category ids.
    pub categories: Vec<String>,
    /// The findings as JSON (detector, category, confidence, location, masked hint).
    pub findings: String,
}

/// Which messages to list.
#[derive(Debug, Clone, Default)]
pub struct MessageFilter {
    /// Only messages with a recipient owned by this login.
    pub user: Option<String>,
    /// Only messages with this verdict.
    pub verdict: Option<VerdictKind>,
    /// Which page ([`Page::After`] lists oldest first).
    pub page: crate::Page,
    /// At most this many; `None` for all.
    pub limit: Option<i64>,
}

/// A verdict to filter messages by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VerdictKind {
    /// Classified as not sensitive.
    Clean,
    /// Classified as sensitive (any category).
    Sensitive,
    /// Classified as sensitive with this category id among its categories.
    Category(String),
    /// Not classified yet.
    Pending,
}

#[derive(sqlx::FromRow)]
struct SummaryRow {
    id: i64,
    received_at: i64,
    mail_from: String,
    size: i64,
    sha256: String,
    message_id: Option<String>,
    state: String,
    sensitive: Option<bool>,
    categories: Option<String>,
    purged_at: Option<i64>,
}

impl Store {
    /// Commits a message and its recipient rows in one transaction, possibly shared with
    /// other concurrent inserts (group commit). Returns once the commit is durable.
    ///
    /// # Errors
    /// `Invalid` without recipients; `Unavailable` when the commit failed — then nothing of
    /// the message is stored.
    pub async fn insert_message(&self, message: NewMessage) -> Result<i64> {
        if message.recipients.is_empty() {
            return Err(Error::new(
                ErrorKind::Invalid,
                "a message needs a recipient",
            ));
        }
        self.writer.submit(message).await
    }

    /// Lists messages, newest first (unless `filter.page` is [`crate::Page::After`]), with
    /// their recipients.
    ///
    /// # Errors
    /// `Unavailable` when the database fails.
    pub async fn list_messages(&self, filter: &MessageFilter) -> Result<Vec<MessageSummary>> {
        let mut conditions: Vec<String> = Vec::new();
        let mut params = Params::default();
        if let Some(login) = &filter.user {
            let n = params.text(login.trim().to_ascii_lowercase());
            conditions.push(format!(
                "EXISTS (SELECT 1 FROM message_recipients r JOIN users u ON u.id = r.user_id
                         WHERE r.message_id = m.id AND u.login = ${n})"
            ));
        }
        match &filter.verdict {
            None => {}
            Some(VerdictKind::Pending) => conditions.push("v.message_id IS NULL".to_owned()),
            Some(VerdictKind::Clean) => conditions.push("v.sensitive = FALSE".to_owned()),
            Some(VerdictKind::Sensitive) => conditions.push("v.sensitive = TRUE".to_owned()),
            Some(VerdictKind::Category(category)) => {
                // Categories are stored as a JSON array of ids: match the quoted id.
                let n = params.text(format!("%{}%", serde_json::json!(category)));
                conditions.push(format!("v.sensitive = TRUE AND v.categories LIKE ${n}"));
            }
        }
        let order = filter.page.condition("m.id", &mut conditions, &mut params);
        let n = params.int(filter.limit.unwrap_or(i64::MAX));
        let select = format!(
            "SELECT m.id, m.received_at, m.mail_from, m.size, m.sha256, m.message_id,
                    m.state, v.sensitive, v.categories, m.purged_at
             FROM messages m LEFT JOIN message_verdicts v ON v.message_id = m.id{}
             ORDER BY m.id {order} LIMIT ${n}",
            where_clause(&conditions)
        );
        let rows: Vec<SummaryRow> = with_pool!(&self.db, read pool => {
            bind_params!(sqlx::query_as(sqlx::AssertSqlSafe(select)), params)
                .fetch_all(pool)
                .await?
        });
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            let recipients: Vec<(String,)> = with_pool!(&self.db, read pool => {
                sqlx::query_as(
                    "SELECT recipient FROM message_recipients WHERE message_id = $1
                     ORDER BY recipient",
                )
                .bind(row.id)
                .fetch_all(pool)
                .await?
            });
            out.push(MessageSummary {
                id: row.id,
                received_at: row.received_at,
                mail_from: row.mail_from,
                recipients: recipients.into_iter().map(|(r,)| r).collect(),
                size: row.size,
                sha256: row.sha256,
                message_id: row.message_id,
                state: row.state,
                sensitive: row.sensitive,
                categories: row
                    .categories
                    .and_then(|c| serde_json::from_str(&c).ok())
                    .unwrap_or_default(),
                purged_at: row.purged_at,
            });
        }
        Ok(out)
    }

    /// The raw bytes of a message, exactly as received.
    ///
    /// # Errors
    /// `NotFound` for an unknown id; `Purged` when its bytes were purged under
    /// `retention.message_days` (its metadata and verdict remain).
    pub async fn message_raw(&self, id: i64) -> Result<Vec<u8>> {
        let row: Option<(Option<Vec<u8>>, Option<Millis>)> = with_pool!(&self.db, read pool => {
            sqlx::query_as(
                "SELECT b.raw, m.purged_at FROM messages m
                 LEFT JOIN message_blobs b ON b.message_id = m.id WHERE m.id = $1",
            )
            .bind(id)
            .fetch_optional(pool)
            .await?
        });
        match row {
            Some((Some(raw), _)) => Ok(raw),
            Some((None, Some(_))) => Err(crate::retention::purged_error(id)),
            Some((None, None)) | None => {
                Err(Error::new(ErrorKind::NotFound, format!("no message {id}")))
            }
        }
    }

    /// Ids of messages in `state`, oldest first (for tools and tests: it reads through all
    /// messages; the pipeline finds its work with [`Self::claim_messages`]).
    ///
    /// # Errors
    /// `Unavailable` when the database fails.
    pub async fn messages_in_state(&self, state: MessageState, limit: i64) -> Result<Vec<i64>> {
        let rows: Vec<(i64,)> = with_pool!(&self.db, read pool => {
            sqlx::query_as("SELECT id FROM messages WHERE state = $1 ORDER BY id LIMIT $2")
                .bind(state.as_str())
                .bind(limit)
                .fetch_all(pool)
                .await?
        });
        Ok(rows.into_iter().map(|(id,)| id).collect())
    }

    /// Claims up to `limit` messages that still need the pipeline (`received` or
    /// `classified`, oldest first) for `owner` until `claim_until`, skipping messages another
    /// owner has claimed and whose claim has not run out (its own are claimed again): so one
    /// node classifies a message. A claim only saves work — storing a verdict and the forward decisions stays idempotent
    /// — so a claim that runs out while its node is still busy costs time, never a wrong
    /// result. On PostgreSQL `FOR UPDATE SKIP LOCKED` keeps two nodes from claiming the same
    /// message at once.
    ///
    /// On SQLite one daemon serves a database (`serve` holds `<database>.lock`), so there is
    /// nobody to claim from: the pending messages are only read, and SQLite's one writer is
    /// left to the commits that must wait for the disk.
    ///
    /// # Errors
    /// `Unavailable` when the database fails.
    pub async fn claim_messages(
        &self,
        owner: &str,
        now: Millis,
        claim_until: Millis,
        limit: i64,
    ) -> Result<Vec<i64>> {
        const PICK: &str = "SELECT id FROM messages
             WHERE state IN ('received', 'classified')
               AND (claim_until IS NULL OR claim_until < $3 OR claim_owner = $1)
             ORDER BY id LIMIT $4";
        let set = "UPDATE messages SET claim_owner = $1, claim_until = $2";
        let pick = format!("{PICK}{}", self.db.skip_locked());
        // Built in each arm below: a query is typed by its backend.
        macro_rules! query {
            ($sql:expr) => {
                sqlx::query_as(sqlx::AssertSqlSafe($sql))
                    .bind(owner)
                    .bind(claim_until)
                    .bind(now)
                    .bind(limit)
            };
        }
        let mut ids: Vec<(i64,)> = match &self.db {
            crate::db::Db::Sqlite(pools) => {
                sqlx::query_as(
                    "SELECT id FROM messages WHERE state IN ('received', 'classified')
                 ORDER BY id LIMIT $1",
                )
                .bind(limit)
                .fetch_all(&pools.read)
                .await?
            }
            // A claim only saves work, so it need not survive a crash: the pipeline claims
            // often.
            crate::db::Db::Postgres(pool) => {
                query!(format!(
                    "{} {set} FROM lazy WHERE messages.id IN ({pick}) RETURNING messages.id",
                    crate::db::LAZY_COMMIT
                ))
                .fetch_all(pool)
                .await?
            }
        };
        ids.sort_unstable();
        Ok(ids.into_iter().map(|(id,)| id).collect())
    }

    /// Gives up the pipeline's claims of owners whose name starts with `owner_prefix` (a node
    /// at its start gives up those of its own earlier run; at its end, its own); returns how
    /// many.
    ///
    /// # Errors
    /// `Unavailable` when the database fails.
    pub async fn release_message_claims(&self, owner_prefix: &str) -> Result<u64> {
        let pattern = format!(
            "{}%",
            owner_prefix
                .replace('\\', "\\\\")
                .replace('%', "\\%")
                .replace('_', "\\_")
        );
        Ok(with_pool!(&self.db, write pool => {
            sqlx::query(
                "UPDATE messages SET claim_owner = NULL, claim_until = NULL
                 WHERE claim_owner LIKE $1 ESCAPE '\\' AND state IN ('received', 'classified')",
            )
            .bind(pattern)
            .execute(pool)
            .await?
            .rows_affected()
        }))
    }

    /// Stores the verdict of a message and moves it from `received` to `classified`, in one
    /// transaction. Idempotent: when another node classified it first, nothing changes and
    /// the result is `false` (the stored verdict is theirs).
    ///
    /// # Errors
    /// `Unavailable` when the database fails.
    pub async fn record_verdict(&self, message_id: i64, verdict: &VerdictRecord) -> Result<bool> {
        let categories =
            serde_json::to_string(&verdict.categories).unwrap_or_else(|_| "[]".to_owned());
        let now = crate::now_millis();
        let stored = with_pool!(&self.db, write pool => {
            let mut tx = pool.begin().await?;
            let moved = sqlx::query("UPDATE messages SET state = 'classified' WHERE id = $1 AND state = 'received'")
                .bind(message_id)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            if moved == 1 {
                sqlx::query(
                    "INSERT INTO message_verdicts (message_id, sensitive, categories, findings, classified_at)
                     VALUES ($1, $2, $3, $4, $5)",
                )
                .bind(message_id)
                .bind(verdict.sensitive)
                .bind(&categories)
                .bind(&verdict.findings)
                .bind(now)
                .execute(&mut *tx)
                .await?;
            }
            tx.commit().await?;
            moved == 1
        });
        Ok(stored)
    }

    /// The stored verdict of a message, if it has been classified.
    ///
    /// # Errors
    /// `Unavailable` when the database fails.
    pub async fn verdict(&self, message_id: i64) -> Result<Option<VerdictRecord>> {
        let row: Option<(bool, String, String)> = with_pool!(&self.db, read pool => {
            sqlx::query_as("SELECT sensitive, categories, findings FROM message_verdicts WHERE message_id = $1")
                .bind(message_id)
                .fetch_optional(pool)
                .await?
        });
        Ok(row.map(|(sensitive, categories, findings)| VerdictRecord {
            sensitive,
            categories: serde_json::from_str(&categories).unwrap_or_default(),
            findings,
        }))
    }
}

/// What SMTP recorded about a message besides its bytes.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct MessageEnvelope {
    /// Envelope sender.
    pub mail_from: String,
    /// EHLO name of the client.
    pub helo: String,
    /// Client IP.
    pub peer_ip: String,
    /// Arrived over TLS.
    pub tls: bool,
    /// When.
    pub received_at: Millis,
    /// Hex SHA-256 of the raw message.
    pub sha256: String,
}

impl Store {
    /// The envelope of a message.
    ///
    /// # Errors
    /// `NotFound` for an unknown id.
    pub async fn message_envelope(&self, id: i64) -> Result<MessageEnvelope> {
        Ok(with_pool!(&self.db, read pool => {
            sqlx::query_as("SELECT mail_from, helo, peer_ip, tls, received_at, sha256 FROM messages WHERE id = $1")
                .bind(id)
                .fetch_one(pool)
                .await?
        }))
    }
}

impl Store {
    /// Puts a message ratspost wrote itself (a delivery-failure notice, a reminder) into the
    /// mailbox of `user_id`: committed as already `processed` with a clean verdict, so it is
    /// never forwarded — a failing forward cannot loop.
    ///
    /// # Errors
    /// `Unavailable` when the database fails.
    pub async fn deliver_to_mailbox(
        &self,
        user_id: i64,
        address: &str,
        raw: &[u8],
        now: Millis,
    ) -> Result<i64> {
        use sha2::Digest as _;
        let sha256 = hex::encode(sha2::Sha256::digest(raw));
        let size = i64::try_from(raw.len()).unwrap_or(i64::MAX);
        crate::db::with_write_tx!(&self.db, tx => {
            let (id,): (i64,) = sqlx::query_as(
                "INSERT INTO messages (received_at, mail_from, helo, peer_ip, tls, size, sha256, message_id, state)
                 VALUES ($1, '', 'ratspost', 'local', $2, $3, $4, NULL, 'processed') RETURNING id",
            )
            .bind(now)
            .bind(true)
            .bind(size)
            .bind(&sha256)
            .fetch_one(&mut *tx)
            .await?;
            sqlx::query("INSERT INTO message_blobs (message_id, raw) VALUES ($1, $2)")
                .bind(id)
                .bind(raw)
                .execute(&mut *tx)
                .await?;
            sqlx::query("INSERT INTO message_recipients (message_id, recipient, user_id) VALUES ($1, $2, $3)")
                .bind(id)
                .bind(address)
                .bind(user_id)
                .execute(&mut *tx)
                .await?;
            sqlx::query(
                "INSERT INTO message_verdicts (message_id, sensitive, categories, findings, classified_at)
                 VALUES ($1, $2, '[]', '[]', $3)",
            )
            .bind(id)
            .bind(false)
            .bind(now)
            .execute(&mut *tx)
            .await?;
            let _ = crate::mailbox::file_into_inboxes!(tx, &[id], now);
            tx.commit().await?;
            self.announce(user_id);
            Ok(id)
        })
    }
}
