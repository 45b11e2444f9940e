//! Reading the audit trail the way the data-protection officer asks for it: by user, event
//! type and time range, a page at a time, and counted per period for the figures.
//!
//! Everything is filtered in SQL on indexes (`audit_log (at)`, `(action, seq)`,
//! `(actor, seq)` and `audit_subjects (subject, seq)`, migration 0013), so a page costs the
//! same whether the log holds a hundred entries or ten million.

use super::{Row, entry_from_row};
use crate::db::{Params, bind_params, where_clause, with_pool};
use crate::{AuditEntry, Millis, Page, Result, Store};

/// Which entries to read. Every field narrows; the default reads all.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditFilter {
    /// Entries a user made or that concern them: `actor` is this login, or a subject is
    /// `user:LOGIN` or `user:ID` (the notice-link entries name the user by id).
    pub user: Option<String>,
    /// Only this event type (`exemption.approved`, `notice.viewed`, …).
    pub action: Option<String>,
    /// From this time on (inclusive, epoch milliseconds).
    pub from: Option<Millis>,
    /// Before this time (exclusive, epoch milliseconds).
    pub until: Option<Millis>,
}

/// How often the events the figures show happened in a period.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AuditCounts {
    /// Originals forwarded to a private address (`forward.decided`, outcome `forward`).
    pub forwards: i64,
    /// Notices sent to a private address instead (`forward.decided`, outcome `notice`).
    pub notices: i64,
    /// Notice links opened (`notice.viewed`).
    pub views: i64,
    /// Notice links refused: revoked, expired or someone else's (`notice.view_refused`).
    pub refused: i64,
}

/// The conditions of `filter` (with `user_id`, the id of `filter.user` if it names a user),
/// their values in `params`.
fn conditions(filter: &AuditFilter, user_id: Option<i64>, params: &mut Params) -> Vec<String> {
    let mut sql = Vec::new();
    if let Some(login) = &filter.user {
        let login = login.trim().to_ascii_lowercase();
        let a = params.text(login.clone());
        let b = params.text(format!("user:{login}"));
        let by_id = user_id.map_or_else(String::new, |id| {
            format!(", ${}", params.text(format!("user:{id}")))
        });
        sql.push(format!(
            "(actor = ${a} OR seq IN (SELECT seq FROM audit_subjects WHERE subject IN (${b}{by_id})))"
        ));
    }
    if let Some(action) = &filter.action {
        sql.push(format!("action = ${}", params.text(action.clone())));
    }
    if let Some(from) = filter.from {
        sql.push(format!("at >= ${}", params.int(from)));
    }
    if let Some(until) = filter.until {
        sql.push(format!("at < ${}", params.int(until)));
    }
    sql
}

impl Store {
    /// Up to `limit` entries matching `filter`, on `page` (see [`Page`] for the order;
    /// exports read in chain order: `After(0)`, then after the last seq read).
    ///
    /// # Errors
    /// `Unavailable` when the database fails.
    pub async fn search_audit(
        &self,
        filter: &AuditFilter,
        page: Page,
        limit: i64,
    ) -> Result<Vec<AuditEntry>> {
        let user_id = match &filter.user {
            Some(login) => self.user_by_login(login).await.ok().map(|u| u.id),
            None => None,
        };
        let mut params = Params::default();
        let mut sql = conditions(filter, user_id, &mut params);
        let order = page.condition("seq", &mut sql, &mut params);
        let n = params.int(limit.max(0));
        let select = format!(
            "SELECT seq, at, actor, action, subjects, details, prev_hash, hash FROM audit_log{} ORDER BY seq {order} LIMIT ${n}",
            where_clause(&sql),
        );
        let rows: Vec<Row> = with_pool!(&self.db, read pool => {
            bind_params!(sqlx::query_as(sqlx::AssertSqlSafe(select)), params)
                .fetch_all(pool)
                .await?
        });
        Ok(rows.into_iter().map(entry_from_row).collect())
    }

    /// The event types that occur in the log, sorted (for the filter's choices).
    ///
    /// # Errors
    /// `Unavailable` when the database fails.
    pub async fn audit_actions(&self) -> Result<Vec<String>> {
        let rows: Vec<(String,)> = with_pool!(&self.db, read pool => {
            sqlx::query_as("SELECT DISTINCT action FROM audit_log ORDER BY action")
                .fetch_all(pool)
                .await?
        });
        Ok(rows.into_iter().map(|(a,)| a).collect())
    }

    /// How many forwards, notices, link views and refused views were recorded in
    /// `[from, until)` (epoch milliseconds).
    ///
    /// # Errors
    /// `Unavailable` when the database fails.
    pub async fn count_audit(&self, from: Millis, until: Millis) -> Result<AuditCounts> {
        // serde_json writes details canonically (sorted keys, no spaces), so the outcome is
        // always spelled exactly so.
        const SELECT: &str = r#"SELECT
              COALESCE(SUM(CASE WHEN action = 'forward.decided' AND details LIKE '%"outcome":"forward"%' THEN 1 ELSE 0 END), 0),
              COALESCE(SUM(CASE WHEN action = 'forward.decided' AND details LIKE '%"outcome":"notice"%' THEN 1 ELSE 0 END), 0),
              COALESCE(SUM(CASE WHEN action = 'notice.viewed' THEN 1 ELSE 0 END), 0),
              COALESCE(SUM(CASE WHEN action = 'notice.view_refused' THEN 1 ELSE 0 END), 0)
            FROM audit_log
            WHERE at >= $1 AND at < $2
              AND action IN ('forward.decided', 'notice.viewed', 'notice.view_refused')"#;
        let (forwards, notices, views, refused): (i64, i64, i64, i64) = with_pool!(&self.db, read pool => {
            sqlx::query_as(SELECT).bind(from).bind(until).fetch_one(pool).await?
        });
        Ok(AuditCounts {
            forwards,
            notices,
            views,
            refused,
        })
    }
}
