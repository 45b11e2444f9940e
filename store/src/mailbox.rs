//! IMAP mailboxes: folders with UIDVALIDITY, UIDNEXT and HIGHESTMODSEQ, their entries with
//! flags and mod-sequences, and what an entry serves.
//!
//! An entry filed from an accepted message refers to it; what it serves is decided on every
//! read ([`Store::entry_content`]): the recipient's notice when the message is sensitive, the
//! original only when its verdict says clean — and an error otherwise (fail closed: a
//! sensitive message without its notice shows nothing). So COPY and MOVE can never turn a
//! notice into the original. Entries a client APPENDed (Sent, Drafts) carry their own bytes.
//!
//! Every change bumps the mailbox's HIGHESTMODSEQ and stamps the changed entries with it
//! (CONDSTORE), and is announced on [`Store::mailbox_changes`] so IDLE sessions on this node
//! wake at once; sessions also poll, for changes made by other nodes.

use crate::db::{with_pool, with_write_tx};
use crate::{Error, ErrorKind, Millis, Result, Store};

/// The folders every account has, with their RFC 6154 attribute.
pub const SPECIAL_USE: [(&str, &str); 5] = [
    ("Sent", "\\Sent"),
    ("Drafts", "\\Drafts"),
    ("Trash", "\\Trash"),
    ("Junk", "\\Junk"),
    ("Archive", "\\Archive"),
];

/// A mailbox and its counters.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Mailbox {
    /// Database id.
    pub id: i64,
    /// Owner.
    pub user_id: i64,
    /// Full name, `/` as hierarchy delimiter, `INBOX` for the inbox.
    pub name: String,
    /// RFC 6154 attribute (`\Sent`, …).
    pub special_use: Option<String>,
    /// Subscribed (LSUB).
    pub subscribed: bool,
    /// UIDVALIDITY.
    pub uid_validity: i64,
    /// UIDNEXT.
    pub uid_next: i64,
    /// HIGHESTMODSEQ.
    pub highest_modseq: i64,
    /// The lowest UID no session has seen yet: entries from here on are `\Recent`
    /// (RFC 3501 §2.3.2) for the session that claims them ([`Store::claim_recent`]).
    pub recent_uid: i64,
}

/// One message in a mailbox.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Entry {
    /// UID.
    pub uid: i64,
    /// Flags and keywords, space-separated (`\Seen \Flagged $Label1`).
    pub flags: String,
    /// MODSEQ of the last change.
    pub modseq: i64,
    /// INTERNALDATE (ms).
    pub internal_date: Millis,
    /// RFC822.SIZE of what the entry serves.
    pub size: i64,
}

impl Entry {
    /// The flags as a list.
    #[must_use]
    pub fn flag_list(&self) -> Vec<&str> {
        self.flags.split_whitespace().collect()
    }

    /// Whether `flag` is set (case-insensitive, as IMAP flags are).
    #[must_use]
    pub fn has(&self, flag: &str) -> bool {
        self.flags
            .split_whitespace()
            .any(|f| f.eq_ignore_ascii_case(flag))
    }
}

/// How STORE changes flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlagOp {
    /// `+FLAGS`.
    Add,
    /// `-FLAGS`.
    Remove,
    /// `FLAGS`.
    Replace,
}

/// The result of STORE.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FlagUpdate {
    /// Entries whose flags changed, as they are now.
    pub changed: Vec<Entry>,
    /// UIDs not changed because they were modified after UNCHANGEDSINCE.
    pub modified: Vec<i64>,
}

fn normalise_flags<'a>(flags: impl Iterator<Item = &'a str>) -> String {
    let mut out: Vec<&str> = Vec::new();
    for f in flags {
        if !out.iter().any(|o| o.eq_ignore_ascii_case(f)) {
            out.push(f);
        }
    }
    out.join(" ")
}

/// Files the messages `$message_ids` (`&[i64]`, ascending) into the INBOX of each of their
/// recipients (created if missing), inside transaction `$tx`: reads who they are and what
/// each entry serves, then [`file_entries!`]. Evaluates to the users whose INBOX got an
/// entry.
macro_rules! file_into_inboxes {
    ($tx:expr, $message_ids:expr, $now:expr) => {{
        let message_ids: &[i64] = $message_ids;
        let mut rows: Vec<(i64, i64, i64)> = Vec::new();
        if !message_ids.is_empty() {
            // RFC822.SIZE is the size of what the entry serves: the notice, where there is one.
            let select = format!(
                "SELECT r.message_id, r.user_id, MAX(COALESCE(LENGTH(r.mailbox_notice), m.size))
                 FROM message_recipients r JOIN messages m ON m.id = r.message_id
                 WHERE r.message_id IN ({}) GROUP BY r.message_id, r.user_id
                 ORDER BY r.message_id, r.user_id",
                $crate::db::placeholders(message_ids.len(), 0)
            );
            let mut query = sqlx::query_as(sqlx::AssertSqlSafe(select));
            for id in message_ids {
                query = query.bind(*id);
            }
            rows = query.fetch_all(&mut *$tx).await?;
        }
        $crate::mailbox::file_entries!($tx, &rows, $now)
    }};
}
pub(crate) use file_into_inboxes;

/// Files INBOX entries `$rows` (`&[(message id, user id, size)]`, in message order) inside
/// transaction `$tx`, creating an INBOX that is missing, with one statement for all entries:
/// each user's new UIDs and MODSEQs are reserved at once, in the order of the messages.
/// Evaluates to the users whose INBOX got an entry, ascending.
macro_rules! file_entries {
    ($tx:expr, $rows:expr, $now:expr) => {{
        let rows: &[(i64, i64, i64)] = $rows;
        let now: Millis = $now;
        // INBOX rows are locked in user order, so two transactions filing for the same
        // users (nodes without the audit lock) cannot deadlock.
        let mut filed: Vec<i64> = rows.iter().map(|r| r.1).collect();
        filed.sort_unstable();
        filed.dedup();
        // (mailbox, uid, message, modseq, size) of every new entry.
        let mut entries: Vec<(i64, i64, i64, i64, i64)> = Vec::with_capacity(rows.len());
        for &user_id in &filed {
            let theirs: Vec<&(i64, i64, i64)> = rows.iter().filter(|r| r.1 == user_id).collect();
            let count = i64::try_from(theirs.len()).unwrap_or(i64::MAX);
            let reserve = "UPDATE mailboxes SET uid_next = uid_next + $2, highest_modseq = highest_modseq + $2
                 WHERE user_id = $1 AND name = 'INBOX'
                 RETURNING id, uid_next - $2, highest_modseq - $2";
            let reserved: Option<(i64, i64, i64)> = sqlx::query_as(reserve)
                .bind(user_id)
                .bind(count)
                .fetch_optional(&mut *$tx)
                .await?;
            // The INBOX exists but for a user's very first mail.
            let (mailbox_id, first_uid, modseq_before) = match reserved {
                Some(reserved) => reserved,
                None => {
                    let created = sqlx::query(
                        "INSERT INTO mailboxes (user_id, name, uid_validity) VALUES ($1, 'INBOX', $2)
                         ON CONFLICT (user_id, name) DO NOTHING",
                    )
                    .bind(user_id)
                    .bind(now / 1000)
                    .execute(&mut *$tx)
                    .await?
                    .rows_affected();
                    // A new INBOX is subscribed; one the user unsubscribed stays so.
                    if created > 0 {
                        sqlx::query(
                            "INSERT INTO subscriptions (user_id, name) VALUES ($1, 'INBOX')
                             ON CONFLICT (user_id, name) DO NOTHING",
                        )
                        .bind(user_id)
                        .execute(&mut *$tx)
                        .await?;
                    }
                    sqlx::query_as(reserve)
                        .bind(user_id)
                        .bind(count)
                        .fetch_one(&mut *$tx)
                        .await?
                }
            };
            for (n, (message_id, _, size)) in (0_i64..).zip(theirs) {
                entries.push((mailbox_id, first_uid + n, *message_id, modseq_before + 1 + n, *size));
            }
        }
        for chunk in entries.chunks($crate::db::ROWS_PER_INSERT) {
            let insert = format!(
                "INSERT INTO mailbox_entries (mailbox_id, uid, message_id, modseq, internal_date, size)
                 VALUES {}",
                $crate::db::value_rows(chunk.len(), 6)
            );
            let mut query = sqlx::query(sqlx::AssertSqlSafe(insert));
            for &(mailbox_id, uid, message_id, modseq, size) in chunk {
                query = query
                    .bind(mailbox_id)
                    .bind(uid)
                    .bind(message_id)
                    .bind(modseq)
                    .bind(now)
                    .bind(size);
            }
            query.execute(&mut *$tx).await?;
        }
        filed
    }};
}
pub(crate) use file_entries;

/// Reserves the next UID and MODSEQ of a mailbox inside `$tx`.
macro_rules! next_uid {
    ($tx:expr, $mailbox_id:expr) => {{
        let row: (i64, i64, i64) = sqlx::query_as(
            "UPDATE mailboxes SET uid_next = uid_next + 1, highest_modseq = highest_modseq + 1
             WHERE id = $1 RETURNING uid_validity, uid_next - 1, highest_modseq",
        )
        .bind($mailbox_id)
        .fetch_one(&mut *$tx)
        .await?;
        row
    }};
}

/// Removes the entries `$uids` (`&[i64]`, not empty) of mailbox `$mailbox_id` inside `$tx`
/// as EXPUNGE does: one new HIGHESTMODSEQ for the mailbox, each UID recorded with it in
/// `mailbox_expunged` (QRESYNC's VANISHED). Sessions with the mailbox selected see the
/// modseq move and send `* n EXPUNGE` (or VANISHED) at their next refresh. The caller
/// announces the owner after the commit.
macro_rules! remove_entries_in {
    ($tx:expr, $mailbox_id:expr, $uids:expr) => {{
        let mailbox_id: i64 = $mailbox_id;
        let (modseq,): (i64,) = sqlx::query_as(
            "UPDATE mailboxes SET highest_modseq = highest_modseq + 1 WHERE id = $1 RETURNING highest_modseq",
        )
        .bind(mailbox_id)
        .fetch_one(&mut *$tx)
        .await?;
        for uid in $uids {
            sqlx::query("DELETE FROM mailbox_entries WHERE mailbox_id = $1 AND uid = $2")
                .bind(mailbox_id)
                .bind(uid)
                .execute(&mut *$tx)
                .await?;
            sqlx::query(
                "INSERT INTO mailbox_expunged (mailbox_id, uid, modseq) VALUES ($1, $2, $3)
                 ON CONFLICT (mailbox_id, uid) DO UPDATE SET modseq = excluded.modseq",
            )
            .bind(mailbox_id)
            .bind(uid)
            .bind(modseq)
            .execute(&mut *$tx)
            .await?;
        }
    }};
}
pub(crate) use remove_entries_in;

const MAILBOX_COLUMNS: &str = "id, user_id, name, special_use,
    EXISTS (SELECT 1 FROM subscriptions s WHERE s.user_id = mailboxes.user_id AND s.name = mailboxes.name) AS subscribed,
    uid_validity, uid_next, highest_modseq, recent_uid";

/// The next UIDVALIDITY inside `$tx`: the current second, or one more than the last one
/// handed out, whichever is larger (so it changes even within one second).
macro_rules! next_uid_validity {
    ($tx:expr, $now:expr) => {{
        let (v,): (i64,) = sqlx::query_as(
            "UPDATE uid_validity_counter SET last = CASE WHEN last + 1 > $1 THEN last + 1 ELSE $1 END
             WHERE id = 1 RETURNING last",
        )
        .bind($now / 1000)
        .fetch_one(&mut *$tx)
        .await?;
        v
    }};
}

impl Store {
    /// A receiver that hears the user id of every mailbox change made through this store.
    #[must_use]
    pub fn mailbox_changes(&self) -> tokio::sync::broadcast::Receiver<i64> {
        self.changes.subscribe()
    }

    pub(crate) fn announce(&self, user_id: i64) {
        let _ = self.changes.send(user_id);
    }

    /// A receiver that hears the user id of every credential change made through this store
    /// (app password revoked, password changed or reset, account disabled or enabled). Other
    /// nodes do not hear it: their sessions re-check on their own ([`Store::app_password_live`]).
    #[must_use]
    pub fn credential_changes(&self) -> tokio::sync::broadcast::Receiver<i64> {
        self.credentials.subscribe()
    }

    pub(crate) fn announce_credentials(&self, user_id: i64) {
        let _ = self.credentials.send(user_id);
    }

    /// Creates INBOX and the special-use folders where missing.
    ///
    /// # Errors
    /// `Unavailable` when the database fails.
    pub async fn ensure_mailboxes(&self, user_id: i64, now: Millis) -> Result<()> {
        let (have,): (i64,) = with_pool!(&self.db, read pool => {
            sqlx::query_as(
                "SELECT COUNT(*) FROM mailboxes WHERE user_id = $1 AND (name = 'INBOX' OR special_use IS NOT NULL)",
            )
            .bind(user_id)
            .fetch_one(pool)
            .await?
        });
        if usize::try_from(have).unwrap_or(0) > SPECIAL_USE.len() {
            return Ok(());
        }
        with_pool!(&self.db, write pool => {
            let mut tx = pool.begin().await?;
            for (name, special) in std::iter::once(("INBOX", None))
                .chain(SPECIAL_USE.iter().map(|(n, s)| (*n, Some(*s))))
            {
                let exists: Option<(i64,)> =
                    sqlx::query_as("SELECT id FROM mailboxes WHERE user_id = $1 AND name = $2")
                        .bind(user_id)
                        .bind(name)
                        .fetch_optional(&mut *tx)
                        .await?;
                if exists.is_some() {
                    continue;
                }
                let validity = next_uid_validity!(tx, now);
                let created = sqlx::query(
                    "INSERT INTO mailboxes (user_id, name, special_use, uid_validity) VALUES ($1, $2, $3, $4)
                     ON CONFLICT (user_id, name) DO NOTHING",
                )
                .bind(user_id)
                .bind(name)
                .bind(special)
                .bind(validity)
                .execute(&mut *tx)
                .await?
                .rows_affected();
                // INBOX and the special-use folders start subscribed.
                if created > 0 {
                    sqlx::query(
                        "INSERT INTO subscriptions (user_id, name) VALUES ($1, $2)
                         ON CONFLICT (user_id, name) DO NOTHING",
                    )
                    .bind(user_id)
                    .bind(name)
                    .execute(&mut *tx)
                    .await?;
                }
            }
            tx.commit().await?;
        });
        Ok(())
    }

    /// A user's mailboxes, by name.
    ///
    /// # Errors
    /// `Unavailable` when the database fails.
    pub async fn mailboxes(&self, user_id: i64) -> Result<Vec<Mailbox>> {
        Ok(with_pool!(&self.db, read pool => {
            sqlx::query_as(sqlx::AssertSqlSafe(format!(
                "SELECT {MAILBOX_COLUMNS} FROM mailboxes WHERE user_id = $1 ORDER BY name"
            )))
            .bind(user_id)
            .fetch_all(pool)
            .await?
        }))
    }

    /// The mailbox `name` of `user_id` (`INBOX` in any case).
    ///
    /// # Errors
    /// `NotFound` when there is none; `Unavailable` when the database fails.
    pub async fn mailbox(&self, user_id: i64, name: &str) -> Result<Mailbox> {
        let name = canonical(name);
        let found: Option<Mailbox> = with_pool!(&self.db, read pool => {
            sqlx::query_as(sqlx::AssertSqlSafe(format!(
                "SELECT {MAILBOX_COLUMNS} FROM mailboxes WHERE user_id = $1 AND name = $2"
            )))
            .bind(user_id)
            .bind(&name)
            .fetch_optional(pool)
            .await?
        });
        found.ok_or_else(|| Error::new(ErrorKind::NotFound, format!("no mailbox {name:?}")))
    }

    /// The mailbox with id `id` (fresh counters).
    ///
    /// # Errors
    /// `NotFound`, `Unavailable`.
    pub async fn mailbox_by_id(&self, id: i64) -> Result<Mailbox> {
        let found: Option<Mailbox> = with_pool!(&self.db, read pool => {
            sqlx::query_as(sqlx::AssertSqlSafe(format!(
                "SELECT {MAILBOX_COLUMNS} FROM mailboxes WHERE id = $1"
            )))
            .bind(id)
            .fetch_optional(pool)
            .await?
        });
        found.ok_or_else(|| Error::new(ErrorKind::NotFound, format!("no mailbox {id}")))
    }

    /// Creates mailbox `name`, and its missing parents (`a` and `a/b` for `a/b/c`, RFC 3501
    /// §6.3.3). One trailing `/` is dropped: `CREATE a/` creates `a`.
    ///
    /// # Errors
    /// `Conflict` when it exists, `Invalid` for a bad name.
    pub async fn create_mailbox(&self, user_id: i64, name: &str, now: Millis) -> Result<()> {
        let name = canonical(name.strip_suffix('/').unwrap_or(name));
        if name.is_empty() || name.starts_with('/') || name.ends_with('/') || name.contains("//") {
            return Err(Error::new(
                ErrorKind::Invalid,
                format!("{name:?} is not a mailbox name"),
            ));
        }
        let parents: Vec<&str> = name.match_indices('/').map(|(i, _)| &name[..i]).collect();
        let done = with_write_tx!(&self.db, tx => {
            let mut done = 0;
            for (i, n) in parents.iter().copied().chain(std::iter::once(name.as_str())).enumerate() {
                let exists: Option<(i64,)> =
                    sqlx::query_as("SELECT id FROM mailboxes WHERE user_id = $1 AND name = $2")
                        .bind(user_id)
                        .bind(n)
                        .fetch_optional(&mut *tx)
                        .await?;
                if exists.is_some() {
                    continue;
                }
                let validity = next_uid_validity!(tx, now);
                // CREATE does not subscribe (RFC 3501 §6.3.3, §6.3.6): LSUB lists what the
                // client subscribed to; INBOX and the special-use folders are subscribed.
                sqlx::query(
                    "INSERT INTO mailboxes (user_id, name, uid_validity) VALUES ($1, $2, $3)",
                )
                    .bind(user_id)
                    .bind(n)
                    .bind(validity)
                    .execute(&mut *tx)
                    .await?;
                if i == parents.len() {
                    done = 1;
                }
            }
            tx.commit().await?;
            Ok::<_, Error>(done)
        })?;
        if done == 0 {
            return Err(Error::new(
                ErrorKind::Conflict,
                format!("mailbox {name:?} exists"),
            ));
        }
        self.announce(user_id);
        Ok(())
    }

    /// Claims the UIDs no session has seen yet for the caller (a session that SELECTed the
    /// mailbox): returns `first..next` — the entries with those UIDs are `\Recent` in that
    /// session only (RFC 3501 §2.3.2).
    ///
    /// # Errors
    /// `NotFound`, `Unavailable`.
    pub async fn claim_recent(&self, mailbox_id: i64) -> Result<std::ops::Range<i64>> {
        // Harmless to lose in a crash (the mail shows as recent again), and claimed on every
        // change a session in IDLE sees: committed without waiting for the disk.
        let row: Option<(i64, i64)> = crate::db::with_lazy_write!(&self.db,
            sqlite tx => {
                let row: Option<(i64, i64)> =
                    sqlx::query_as("SELECT recent_uid, uid_next FROM mailboxes WHERE id = $1")
                        .bind(mailbox_id)
                        .fetch_optional(&mut *tx)
                        .await?;
                if let Some((first, next)) = row
                    && next > first
                {
                    sqlx::query("UPDATE mailboxes SET recent_uid = $1 WHERE id = $2")
                        .bind(next)
                        .bind(mailbox_id)
                        .execute(&mut *tx)
                        .await?;
                }
                tx.commit().await?;
                Ok::<_, Error>(row)
            },
            // The row locked first, so the value before the update is the one claimed from.
            postgres pool => sqlx::query_as(sqlx::AssertSqlSafe(format!(
                "{}, before AS (SELECT recent_uid FROM mailboxes WHERE id = $1 FOR UPDATE)
                 UPDATE mailboxes m SET recent_uid = GREATEST(m.uid_next, before.recent_uid)
                 FROM before, lazy WHERE m.id = $1
                 RETURNING before.recent_uid, m.uid_next",
                crate::db::LAZY_COMMIT
            )))
            .bind(mailbox_id)
            .fetch_optional(pool)
            .await?
        )?;
        let Some((first, next)) = row else {
            return Err(Error::new(
                ErrorKind::NotFound,
                format!("no mailbox {mailbox_id}"),
            ));
        };
        Ok(first..next.max(first))
    }

    /// Deletes mailbox `name` and its entries (not INBOX).
    ///
    /// # Errors
    /// `Forbidden` for INBOX, `NotFound`.
    pub async fn delete_mailbox(&self, user_id: i64, name: &str) -> Result<()> {
        let name = canonical(name);
        if name == "INBOX" {
            return Err(Error::new(ErrorKind::Forbidden, "INBOX cannot be deleted"));
        }
        let done = with_pool!(&self.db, write pool => {
            sqlx::query("DELETE FROM mailboxes WHERE user_id = $1 AND name = $2")
                .bind(user_id)
                .bind(&name)
                .execute(pool)
                .await?
                .rows_affected()
        });
        Error::found(done, || format!("no mailbox {name:?}"))?;
        self.announce(user_id);
        Ok(())
    }

    /// Renames mailbox `from` (and its children) to `to`.
    ///
    /// # Errors
    /// `Forbidden` for INBOX, `NotFound`, `Conflict` when `to` exists.
    pub async fn rename_mailbox(&self, user_id: i64, from: &str, to: &str) -> Result<()> {
        let (from, to) = (canonical(from), canonical(to));
        if from == "INBOX" || to == "INBOX" {
            return Err(Error::new(ErrorKind::Forbidden, "INBOX cannot be renamed"));
        }
        if self.mailbox(user_id, &to).await.is_ok() {
            return Err(Error::new(
                ErrorKind::Conflict,
                format!("mailbox {to:?} exists"),
            ));
        }
        self.mailbox(user_id, &from).await?;
        with_pool!(&self.db, write pool => {
            let mut tx = pool.begin().await?;
            sqlx::query("UPDATE mailboxes SET name = $1 WHERE user_id = $2 AND name = $3")
                .bind(&to)
                .bind(user_id)
                .bind(&from)
                .execute(&mut *tx)
                .await?;
            sqlx::query(
                "UPDATE mailboxes SET name = $1 || SUBSTR(name, $2) WHERE user_id = $3 AND SUBSTR(name, 1, $4) = $5",
            )
            .bind(&to)
            .bind(i32::try_from(from.len()).unwrap_or(0) + 1)
            .bind(user_id)
            .bind(i32::try_from(from.len()).unwrap_or(0) + 1)
            .bind(format!("{from}/"))
            .execute(&mut *tx)
            .await?;
            // Subscriptions move with the mailboxes (as Dovecot's do), so a renamed folder
            // stays in LSUB; one already on a new name is kept.
            let subscribed: Vec<(String,)> =
                sqlx::query_as("SELECT name FROM subscriptions WHERE user_id = $1")
                    .bind(user_id)
                    .fetch_all(&mut *tx)
                    .await?;
            let prefix = format!("{from}/");
            for (old,) in subscribed {
                let new = if old == from {
                    to.clone()
                } else if let Some(rest) = old.strip_prefix(&prefix) {
                    format!("{to}/{rest}")
                } else {
                    continue;
                };
                sqlx::query("DELETE FROM subscriptions WHERE user_id = $1 AND name = $2")
                    .bind(user_id)
                    .bind(&old)
                    .execute(&mut *tx)
                    .await?;
                sqlx::query(
                    "INSERT INTO subscriptions (user_id, name) VALUES ($1, $2)
                     ON CONFLICT (user_id, name) DO NOTHING",
                )
                .bind(user_id)
                .bind(&new)
                .execute(&mut *tx)
                .await?;
            }
            tx.commit().await?;
        });
        self.announce(user_id);
        Ok(())
    }

    /// SUBSCRIBE / UNSUBSCRIBE. A subscription is kept by name: it outlives DELETE
    /// (RFC 3501 §6.3.6) and moves with RENAME.
    ///
    /// # Errors
    /// `NotFound` when subscribing to a mailbox that does not exist, or unsubscribing from a
    /// name that is neither subscribed nor a mailbox; `Unavailable`.
    pub async fn set_subscribed(&self, user_id: i64, name: &str, on: bool) -> Result<()> {
        let name = canonical(name);
        if on {
            self.mailbox(user_id, &name).await?;
        }
        let done = with_pool!(&self.db, write pool => {
            if on {
                sqlx::query(
                    "INSERT INTO subscriptions (user_id, name) VALUES ($1, $2)
                     ON CONFLICT (user_id, name) DO NOTHING",
                )
                .bind(user_id)
                .bind(&name)
                .execute(pool)
                .await?;
                1
            } else {
                sqlx::query("DELETE FROM subscriptions WHERE user_id = $1 AND name = $2")
                    .bind(user_id)
                    .bind(&name)
                    .execute(pool)
                    .await?
                    .rows_affected()
            }
        });
        if done == 0 {
            self.mailbox(user_id, &name).await?;
        }
        Ok(())
    }

    /// The names a user is subscribed to, sorted, whether or not the mailboxes exist.
    ///
    /// # Errors
    /// `Unavailable` when the database fails.
    pub async fn subscriptions(&self, user_id: i64) -> Result<Vec<String>> {
        let rows: Vec<(String,)> = with_pool!(&self.db, read pool => {
            sqlx::query_as("SELECT name FROM subscriptions WHERE user_id = $1 ORDER BY name")
                .bind(user_id)
                .fetch_all(pool)
                .await?
        });
        Ok(rows.into_iter().map(|(n,)| n).collect())
    }

    /// The entries of a mailbox, by UID.
    ///
    /// # Errors
    /// `Unavailable` when the database fails.
    pub async fn mailbox_entries(&self, mailbox_id: i64) -> Result<Vec<Entry>> {
        Ok(with_pool!(&self.db, read pool => {
            sqlx::query_as(
                "SELECT uid, flags, modseq, internal_date, size FROM mailbox_entries
                 WHERE mailbox_id = $1 ORDER BY uid",
            )
            .bind(mailbox_id)
            .fetch_all(pool)
            .await?
        }))
    }

    /// What changed in a mailbox after mod-sequence `since` (RFC 7162 §3.1), in one query:
    /// the entries added or with flags set, and the UIDs expunged ([`Self::expunged_since`]),
    /// each by UID.
    ///
    /// # Errors
    /// `Unavailable` when the database fails.
    pub async fn changes_since(
        &self,
        mailbox_id: i64,
        since: i64,
    ) -> Result<(Vec<Entry>, Vec<i64>)> {
        let rows: Vec<(i64, String, i64, i64, i64, bool)> = with_pool!(&self.db, read pool => {
            sqlx::query_as(
                "SELECT uid, flags, modseq, internal_date, size, FALSE AS gone FROM mailbox_entries
                 WHERE mailbox_id = $1 AND modseq > $2
                 UNION ALL
                 SELECT uid, '', modseq, 0, 0, TRUE FROM mailbox_expunged
                 WHERE mailbox_id = $1 AND modseq > $2
                 ORDER BY 1",
            )
            .bind(mailbox_id)
            .bind(since)
            .fetch_all(pool)
            .await?
        });
        let (mut changed, mut expunged) = (Vec::new(), Vec::new());
        for (uid, flags, modseq, internal_date, size, gone) in rows {
            if gone {
                expunged.push(uid);
            } else {
                changed.push(Entry {
                    uid,
                    flags,
                    modseq,
                    internal_date,
                    size,
                });
            }
        }
        Ok((changed, expunged))
    }

    /// What entry `uid` serves: its own content, the recipient's notice, or the original of
    /// a message whose verdict is clean.
    ///
    /// # Errors
    /// `NotFound` for no such entry; `Forbidden` when a sensitive message has no notice (it
    /// is then never served); `Unavailable` when the database fails.
    pub async fn entry_content(&self, mailbox_id: i64, uid: i64) -> Result<Vec<u8>> {
        self.entry_contents(mailbox_id, uid, uid)
            .await?
            .pop()
            .map(|(_, served)| served)
            .ok_or_else(|| Error::new(ErrorKind::NotFound, format!("no message with UID {uid}")))?
    }

    /// What the entries with UIDs `first..=last` serve, in one query (FETCH of many
    /// messages); each is decided as in [`Self::entry_content`], so one sensitive message
    /// without a notice fails alone.
    ///
    /// # Errors
    /// `Unavailable` when the database fails.
    pub async fn entry_contents(
        &self,
        mailbox_id: i64,
        first: i64,
        last: i64,
    ) -> Result<Vec<(i64, Result<Vec<u8>>)>> {
        type Row = (
            i64,
            Option<Vec<u8>>,
            Option<Vec<u8>>,
            Option<bool>,
            Option<Vec<u8>>,
            Option<Millis>,
        );
        let rows: Vec<Row> = with_pool!(&self.db, read pool => {
            sqlx::query_as(
                "SELECT e.uid, e.content,
                        (SELECT r.mailbox_notice FROM message_recipients r
                          WHERE r.message_id = e.message_id AND r.user_id = mb.user_id
                            AND r.mailbox_notice IS NOT NULL LIMIT 1),
                        v.sensitive,
                        CASE WHEN e.content IS NULL AND v.sensitive = $4 THEN b.raw END,
                        m.purged_at
                 FROM mailbox_entries e
                 JOIN mailboxes mb ON mb.id = e.mailbox_id
                 LEFT JOIN messages m ON m.id = e.message_id
                 LEFT JOIN message_verdicts v ON v.message_id = e.message_id
                 LEFT JOIN message_blobs b ON b.message_id = e.message_id
                 WHERE e.mailbox_id = $1 AND e.uid >= $2 AND e.uid <= $3
                 ORDER BY e.uid",
            )
            .bind(mailbox_id)
            .bind(first)
            .bind(last)
            .bind(false)
            .fetch_all(pool)
            .await?
        });
        Ok(rows
            .into_iter()
            .map(|(uid, content, notice, sensitive, raw, purged_at)| {
                let served = match (content, notice, sensitive, raw) {
                    (Some(content), ..) => Ok(content),
                    // Purging expunges the entries in the same transaction; a session that
                    // still names the UID learns why there is nothing.
                    (None, ..) if purged_at.is_some() => Err(Error::new(
                        ErrorKind::Purged,
                        format!("UID {uid}: the message was purged under retention.message_days"),
                    )),
                    (None, Some(notice), ..) => Ok(notice),
                    (None, None, Some(false), Some(raw)) => Ok(raw),
                    _ => Err(Error::new(
                        ErrorKind::Forbidden,
                        format!("UID {uid} is sensitive and has no notice: not served"),
                    )),
                };
                (uid, served)
            })
            .collect())
    }

    /// STORE: changes the flags of `uids`; entries modified after `unchanged_since` are left
    /// alone and reported (CONDSTORE).
    ///
    /// # Errors
    /// `Unavailable` when the database fails.
    pub async fn set_flags(
        &self,
        mailbox: &Mailbox,
        uids: &[i64],
        op: FlagOp,
        flags: &[String],
        unchanged_since: Option<i64>,
    ) -> Result<FlagUpdate> {
        let mut update = FlagUpdate::default();
        with_pool!(&self.db, write pool => {
            let mut tx = pool.begin().await?;
            let mut modseq = None;
            for &uid in uids {
                let row: Option<Entry> = sqlx::query_as(
                    "SELECT uid, flags, modseq, internal_date, size FROM mailbox_entries
                     WHERE mailbox_id = $1 AND uid = $2",
                )
                .bind(mailbox.id)
                .bind(uid)
                .fetch_optional(&mut *tx)
                .await?;
                let Some(entry) = row else { continue };
                if unchanged_since.is_some_and(|since| entry.modseq > since) {
                    update.modified.push(uid);
                    continue;
                }
                let current = entry.flag_list();
                let new = match op {
                    FlagOp::Replace => normalise_flags(flags.iter().map(String::as_str)),
                    FlagOp::Add => normalise_flags(current.iter().copied().chain(flags.iter().map(String::as_str))),
                    FlagOp::Remove => normalise_flags(current.iter().copied().filter(|f| {
                        !flags.iter().any(|r| r.eq_ignore_ascii_case(f))
                    })),
                };
                if new == entry.flags {
                    continue;
                }
                let m = match modseq {
                    Some(m) => m,
                    None => {
                        let (m,): (i64,) = sqlx::query_as(
                            "UPDATE mailboxes SET highest_modseq = highest_modseq + 1 WHERE id = $1 RETURNING highest_modseq",
                        )
                        .bind(mailbox.id)
                        .fetch_one(&mut *tx)
                        .await?;
                        modseq = Some(m);
                        m
                    }
                };
                sqlx::query("UPDATE mailbox_entries SET flags = $1, modseq = $2 WHERE mailbox_id = $3 AND uid = $4")
                    .bind(&new)
                    .bind(m)
                    .bind(mailbox.id)
                    .bind(uid)
                    .execute(&mut *tx)
                    .await?;
                update.changed.push(Entry { flags: new, modseq: m, ..entry });
            }
            tx.commit().await?;
        });
        if !update.changed.is_empty() {
            self.announce(mailbox.user_id);
        }
        Ok(update)
    }

    /// EXPUNGE: removes the entries flagged `\Deleted` (only those in `uids`, if given);
    /// returns their UIDs.
    ///
    /// # Errors
    /// `Unavailable` when the database fails.
    pub async fn expunge(&self, mailbox: &Mailbox, uids: Option<&[i64]>) -> Result<Vec<i64>> {
        let entries = self.mailbox_entries(mailbox.id).await?;
        let gone: Vec<i64> = entries
            .iter()
            .filter(|e| e.has("\\Deleted") && uids.is_none_or(|u| u.contains(&e.uid)))
            .map(|e| e.uid)
            .collect();
        self.remove_entries(mailbox, &gone).await?;
        Ok(gone)
    }

    async fn remove_entries(&self, mailbox: &Mailbox, uids: &[i64]) -> Result<()> {
        if uids.is_empty() {
            return Ok(());
        }
        with_pool!(&self.db, write pool => {
            let mut tx = pool.begin().await?;
            remove_entries_in!(tx, mailbox.id, uids);
            tx.commit().await?;
        });
        self.announce(mailbox.user_id);
        Ok(())
    }

    /// UIDs expunged from `mailbox_id` after mod-sequence `since` (QRESYNC), ascending.
    ///
    /// # Errors
    /// `Unavailable` when the database fails.
    pub async fn expunged_since(&self, mailbox_id: i64, since: i64) -> Result<Vec<i64>> {
        let rows: Vec<(i64,)> = with_pool!(&self.db, read pool => {
            sqlx::query_as("SELECT uid FROM mailbox_expunged WHERE mailbox_id = $1 AND modseq > $2 ORDER BY uid")
                .bind(mailbox_id)
                .bind(since)
                .fetch_all(pool)
                .await?
        });
        Ok(rows.into_iter().map(|(u,)| u).collect())
    }

    /// APPEND: stores `content` as a new entry; returns (UIDVALIDITY, UID).
    ///
    /// # Errors
    /// `Unavailable` when the database fails.
    pub async fn append_entry(
        &self,
        mailbox: &Mailbox,
        content: &[u8],
        flags: &[String],
        internal_date: Millis,
    ) -> Result<(i64, i64)> {
        let size = i64::try_from(content.len()).unwrap_or(i64::MAX);
        let result = with_write_tx!(&self.db, tx, audited = false => {
            let (validity, uid, modseq) = next_uid!(tx, mailbox.id);
            sqlx::query(
                "INSERT INTO mailbox_entries (mailbox_id, uid, content, flags, modseq, internal_date, size)
                 VALUES ($1, $2, $3, $4, $5, $6, $7)",
            )
            .bind(mailbox.id)
            .bind(uid)
            .bind(content)
            .bind(normalise_flags(flags.iter().map(String::as_str)))
            .bind(modseq)
            .bind(internal_date)
            .bind(size)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok::<_, Error>((validity, uid))
        })?;
        self.announce(mailbox.user_id);
        Ok(result)
    }

    /// COPY (and, with `remove`, MOVE) `uids` from `from` to `to`; returns the destination's
    /// UIDVALIDITY and (source UID, new UID) pairs. The copies refer to the same message, so
    /// they serve what the source served — a notice stays a notice.
    ///
    /// # Errors
    /// `Unavailable` when the database fails.
    pub async fn copy_entries(
        &self,
        from: &Mailbox,
        uids: &[i64],
        to: &Mailbox,
        remove: bool,
    ) -> Result<(i64, Vec<(i64, i64)>)> {
        let mut pairs = Vec::new();
        let mut validity = to.uid_validity;
        with_write_tx!(&self.db, tx => {
            for &uid in uids {
                let exists: Option<(i64,)> = sqlx::query_as(
                    "SELECT uid FROM mailbox_entries WHERE mailbox_id = $1 AND uid = $2",
                )
                .bind(from.id)
                .bind(uid)
                .fetch_optional(&mut *tx)
                .await?;
                if exists.is_none() {
                    continue;
                }
                let (v, new_uid, modseq) = next_uid!(tx, to.id);
                validity = v;
                sqlx::query(
                    "INSERT INTO mailbox_entries (mailbox_id, uid, message_id, content, flags, modseq, internal_date, size)
                     SELECT $1, $2, message_id, content, flags, $3, internal_date, size
                     FROM mailbox_entries WHERE mailbox_id = $4 AND uid = $5",
                )
                .bind(to.id)
                .bind(new_uid)
                .bind(modseq)
                .bind(from.id)
                .bind(uid)
                .execute(&mut *tx)
                .await?;
                pairs.push((uid, new_uid));
            }
            tx.commit().await?;
            Ok::<_, Error>(())
        })?;
        self.announce(to.user_id);
        if remove {
            let moved: Vec<i64> = pairs.iter().map(|(old, _)| *old).collect();
            self.remove_entries(from, &moved).await?;
        }
        Ok((validity, pairs))
    }
}

/// `INBOX` is case-insensitive (RFC 3501 §5.1); other names are kept as given.
fn canonical(name: &str) -> String {
    if name.eq_ignore_ascii_case("INBOX") {
        "INBOX".to_owned()
    } else if let Some(rest) = name
        .get(..6)
        .filter(|head| head.eq_ignore_ascii_case("INBOX/"))
        .and_then(|_| name.get(6..))
        .filter(|rest| !rest.is_empty())
    {
        // `get`: a name like "INBOXä…" has no character boundary at byte 6.
        format!("INBOX/{rest}")
    } else {
        name.to_owned()
    }
}

#[cfg(test)]
mod canonical_tests {
    use super::canonical;

    #[test]
    fn inbox_prefix_is_case_insensitive_and_non_ascii_names_do_not_panic() {
        assert_eq!(canonical("inbox/Archiv"), "INBOX/Archiv");
        assert_eq!(canonical("InBoX"), "INBOX");
        assert_eq!(canonical("INBOXäö"), "INBOXäö");
        assert_eq!(canonical("Entwürfe"), "Entwürfe");
        assert_eq!(canonical("INBOX/"), "INBOX/");
    }
}
