//! Keys every node of one installation must share: their fingerprints, recorded by the first
//! node that starts, compared by every node at its start (issue #16). A node whose SRS key
//! differs could not accept bounces to the other nodes' SRS addresses; one whose DKIM key
//! differs signs with a key DNS does not publish.

use crate::db::with_pool;
use crate::{Millis, Result, Store};

/// A key whose fingerprint differs from the one the installation recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyMismatch {
    /// The key's name (`srs.key`, `dkim.key`, `tls.cert`).
    pub name: String,
    /// The node that recorded the installation's fingerprint.
    pub recorded_by: String,
    /// When.
    pub recorded_at: Millis,
}

impl Store {
    /// Compares `keys` — (name, fingerprint) of this node's keys — with the installation's:
    /// records the ones not recorded yet (as `node`'s, at `now`), returns those that differ.
    ///
    /// # Errors
    /// `Unavailable` when the database fails.
    pub async fn check_shared_keys(
        &self,
        node: &str,
        keys: &[(&str, String)],
        now: Millis,
    ) -> Result<Vec<KeyMismatch>> {
        let mut mismatches = Vec::new();
        for (name, fingerprint) in keys {
            let recorded: (String, String, Millis) = with_pool!(&self.db, write pool => {
                sqlx::query(
                    "INSERT INTO shared_keys (name, fingerprint, recorded_by, recorded_at)
                     VALUES ($1, $2, $3, $4) ON CONFLICT (name) DO NOTHING",
                )
                .bind(name)
                .bind(fingerprint)
                .bind(node)
                .bind(now)
                .execute(pool)
                .await?;
                sqlx::query_as(
                    "SELECT fingerprint, recorded_by, recorded_at FROM shared_keys WHERE name = $1",
                )
                .bind(name)
                .fetch_one(pool)
                .await?
            });
            if &recorded.0 != fingerprint {
                mismatches.push(KeyMismatch {
                    name: (*name).to_owned(),
                    recorded_by: recorded.1,
                    recorded_at: recorded.2,
                });
            }
        }
        Ok(mismatches)
    }

    /// Makes `keys` the installation's (after they were replaced on every node on purpose),
    /// audited as `keys.adopted` by `by`.
    ///
    /// # Errors
    /// `Unavailable` when the database fails.
    pub async fn adopt_shared_keys(
        &self,
        node: &str,
        keys: &[(&str, String)],
        by: &str,
        now: Millis,
    ) -> Result<()> {
        crate::db::with_write_tx!(&self.db, tx => {
            for (name, fingerprint) in keys {
                sqlx::query(
                    "INSERT INTO shared_keys (name, fingerprint, recorded_by, recorded_at)
                     VALUES ($1, $2, $3, $4)
                     ON CONFLICT (name) DO UPDATE SET fingerprint = $2, recorded_by = $3, recorded_at = $4",
                )
                .bind(name)
                .bind(fingerprint)
                .bind(node)
                .bind(now)
                .execute(&mut *tx)
                .await?;
            }
            let entry = crate::NewAuditEntry {
                actor: by.to_owned(),
                action: "keys.adopted".to_owned(),
                subjects: keys.iter().map(|(name, _)| format!("key:{name}")).collect(),
                details: serde_json::json!({"node": node}),
            };
            let (details_text, subjects_text) = entry.texts()?;
            let _ = crate::audit::audit_append!(tx, &entry, now, details_text, subjects_text);
            tx.commit().await?;
        });
        Ok(())
    }
}
