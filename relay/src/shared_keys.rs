//! The keys every node of one PostgreSQL installation must share, and the check that they
//! do (issue #16): `data_dir/srs.key` (a bounce to an SRS address another node wrote must
//! verify here), `data_dir/dkim.key` (DNS publishes one public key) and, when ratspost made
//! it, the self-signed certificate (a phone that accepted it must not be warned about
//! another). The first node records a fingerprint of each in the database; a node whose key
//! differs refuses to start and says which file to copy. A certificate configured by the
//! admin (`tls.cert`) may differ per node: each node may have its own name.
//!
//! SQLite installations have one node (`serve` locks the database), so they are not checked.

use anyhow::Context as _;
use sha2::{Digest as _, Sha256};
use store::Store;

use crate::config::Config;

/// (name, fingerprint) of this node's shared keys. Fingerprints never reveal a secret: the
/// SRS key's is a SHA-256 of it under a fixed label, the others' are of public data.
///
/// # Errors
/// When a key cannot be read.
pub fn fingerprints(config: &Config) -> anyhow::Result<Vec<(&'static str, String)>> {
    let srs = crate::setup::srs_secret(config)?;
    let mut label = Sha256::new();
    label.update(b"ratspost shared-key fingerprint v1\0srs.key\0");
    label.update(&srs);
    let mut keys = vec![("srs.key", hex::encode(label.finalize()))];
    let dkim = crate::dkim::key(config)?;
    keys.push(("dkim.key", hex::encode(Sha256::digest(dkim.public_key()))));
    if config.tls.generated {
        let pem = std::fs::read(&config.tls.cert)
            .with_context(|| format!("reading {}", config.tls.cert.display()))?;
        keys.push(("tls.cert", hex::encode(Sha256::digest(pem))));
    }
    Ok(keys)
}

/// Where a shared key lives on this node, for the message that says what to copy.
fn file_of(config: &Config, name: &str) -> std::path::PathBuf {
    match name {
        "tls.cert" => config.tls.cert.clone(),
        _ => config.data_dir.join(name),
    }
}

/// Refuses to go on when this node's shared keys differ from the installation's (recording
/// them when this is the first node).
///
/// # Errors
/// The keys that differ, each with the file to copy from the node that recorded it.
pub async fn check(config: &Config, store: &Store) -> anyhow::Result<()> {
    if store.backend() != store::Backend::Postgres {
        return Ok(());
    }
    let keys = fingerprints(config)?;
    let mismatches = store
        .check_shared_keys(&config.smtp.hostname, &keys, store::now_millis())
        .await
        .context("comparing this node's keys with the other nodes'")?;
    if mismatches.is_empty() {
        return Ok(());
    }
    let dates = config.dates();
    let lines: Vec<String> = mismatches
        .iter()
        .map(|m| {
            let mut line = format!(
                "{} differs from the one the other nodes use (recorded by {} on {}): copy it from that node",
                file_of(config, &m.name).display(),
                m.recorded_by,
                dates.millis(m.recorded_at)
            );
            if m.name == "tls.cert" {
                line.push_str(" together with its key");
            }
            line
        })
        .collect();
    anyhow::bail!(
        "this node's keys differ from the installation's, so it does not start:\n  {}\n\
         (If the keys were replaced on every node on purpose, run `ratspost keys adopt --by ADMIN` \
         on one node with the new keys.)",
        lines.join("\n  ")
    )
}

/// `ratspost keys adopt`: makes this node's keys the installation's, audited.
///
/// # Errors
/// When the keys cannot be read or the database fails.
pub async fn adopt(config: &Config, store: &Store, by: &str) -> anyhow::Result<()> {
    let keys = fingerprints(config)?;
    store
        .adopt_shared_keys(&config.smtp.hostname, &keys, by, store::now_millis())
        .await?;
    for (name, _) in &keys {
        println!("adopted {}", file_of(config, name).display());
    }
    Ok(())
}
