//! The register of exemptions the data-protection officer keeps: every exemption, past and
//! present, with how much mail left under it.
//!
//! The counts come from the outbound jobs, the stored record of every forward: the pipeline
//! queues one job per decided forward or notice, tagged with the exemption that allowed it,
//! in the same transaction as its `forward.decided` audit entry, and the delivery worker
//! marks it `delivered` (or `dropped` when the exemption ended first).

use std::collections::HashMap;

use crate::db::with_pool;
use crate::{Result, Store};

/// How many forwards and notices an exemption allowed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ForwardCounts {
    /// Originals queued to the private address under it.
    pub forwards: i64,
    /// Of these, delivered.
    pub forwards_delivered: i64,
    /// Notices queued to the private address under it (sensitive mail: a notice instead).
    pub notices: i64,
    /// Of these, delivered.
    pub notices_delivered: i64,
}

impl Store {
    /// [`ForwardCounts`] per exemption id; exemptions with nothing sent are absent.
    ///
    /// # Errors
    /// `Unavailable` when the database fails.
    pub async fn forward_counts(&self) -> Result<HashMap<i64, ForwardCounts>> {
        let rows: Vec<(i64, String, i64, i64)> = with_pool!(&self.db, read pool => {
            sqlx::query_as(
                "SELECT exemption_id, kind, COUNT(*),
                        COALESCE(SUM(CASE WHEN state = 'delivered' THEN 1 ELSE 0 END), 0)
                 FROM outbound_jobs
                 WHERE exemption_id IS NOT NULL AND kind IN ('forward', 'notice')
                 GROUP BY exemption_id, kind",
            )
            .fetch_all(pool)
            .await?
        });
        let mut counts: HashMap<i64, ForwardCounts> = HashMap::new();
        for (id, kind, total, delivered) in rows {
            let c = counts.entry(id).or_default();
            if kind == "forward" {
                (c.forwards, c.forwards_delivered) = (total, delivered);
            } else {
                (c.notices, c.notices_delivered) = (total, delivered);
            }
        }
        Ok(counts)
    }
}
