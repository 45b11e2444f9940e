//! `ratspost backup DEST` and `ratspost restore SRC` (issue #15 §4): a copy that keeps the
//! audit chain provable.
//!
//! A backup is a directory (mode 0700, files 0600):
//!
//! ```text
//! backup.json            what is in it: time, backend, the audit head, SHA-256 of each file
//! ratspost.db            the SQLite database (VACUUM INTO: consistent while mail arrives)
//! keys/dkim.key          DKIM/ARC key
//! keys/srs.key           SRS secret (bounces to forwards)
//! audit-checkpoints.txt  the checkpoint file, ending with one of the copy's own head
//! tls/cert.pem, key.pem  the certificate in use
//! ratspost.toml          the configuration in use (for reference; restore leaves yours)
//! ```
//!
//! On PostgreSQL the database is `pg_dump`'s (the README says how); `backup` keeps the rest,
//! and `restore` checks the database `pg_restore` brought back against the backup's
//! checkpoints.
//!
//! The audit checkpoint key is not in it: whoever could read a backup could otherwise sign
//! a changed one, and checkpoints of a rewritten log. It never leaves the machine (a restore
//! elsewhere makes a new one, whose public key the DPO notes).
//!
//! `backup.json` is signed with the installation's audit checkpoint key (Ed25519, the
//! `signature` over the manifest with an empty `signature`). `restore` checks before it
//! installs anything: that signature against a key it trusts from outside the backup
//! (`--key`, or the installation's own key; `--trust-backup-key` only by explicit choice),
//! every file's hash, that no file is a symbolic link, the copy's audit chain against the
//! backup's checkpoints, and that the chain holds the head the backup recorded. A backup
//! changed after the fact — any file, the manifest, the key in it — is refused.

use std::io::Write as _;
use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use sha2::{Digest as _, Sha256};
use store::Store;

use super::readable::Readable as _;
use crate::checkpoint::{self, Signer};
use crate::config::Config;
use crate::setup::open_store;

mod restore;
pub(super) use restore::{REFUSED_MARK, restore};

const MANIFEST: &str = "backup.json";
const FORMAT: &str = "ratspost-backup 1";
const DATABASE: &str = "ratspost.db";
const CHECKPOINTS: &str = "audit-checkpoints.txt";

/// What `backup.json` records.
#[derive(serde::Serialize, serde::Deserialize)]
struct Manifest {
    format: String,
    created_at: String,
    backend: String,
    /// The audit chain's head in the copy (SQLite) or at the time of the backup (PostgreSQL).
    audit_seq: i64,
    audit_head: String,
    /// Relative path → SHA-256 (hex).
    files: std::collections::BTreeMap<String, String>,
    /// The public key that signed it (base64, as in checkpoint lines).
    key: String,
    /// Ed25519 signature (base64) over the manifest as JSON with this field empty.
    signature: String,
}

impl Manifest {
    /// The bytes the signature covers.
    fn signed_bytes(&self) -> anyhow::Result<Vec<u8>> {
        let unsigned = Self {
            signature: String::new(),
            files: self.files.clone(),
            format: self.format.clone(),
            created_at: self.created_at.clone(),
            backend: self.backend.clone(),
            audit_seq: self.audit_seq,
            audit_head: self.audit_head.clone(),
            key: self.key.clone(),
        };
        Ok(serde_json::to_vec(&unsigned)?)
    }
}

/// The files besides the database: (where the installation keeps it, name in the backup).
fn key_files(config: &Config) -> Vec<(PathBuf, &'static str)> {
    vec![
        (config.data_dir.join("dkim.key"), "keys/dkim.key"),
        (config.data_dir.join("srs.key"), "keys/srs.key"),
        (config.tls.cert.clone(), "tls/cert.pem"),
        (config.tls.key.clone(), "tls/key.pem"),
    ]
}

fn sha256_file(path: &Path) -> anyhow::Result<String> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    Ok(hex::encode(Sha256::digest(&bytes)))
}

/// A new private file (0600) with `bytes`.
fn write_private(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    if let Some(dir) = path.parent() {
        crate::tls::create_private_dir(dir)?;
    }
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    file.write_all(bytes)
        .and_then(|()| file.sync_all())
        .with_context(|| format!("writing {}", path.display()))
}

/// Refuses when a restore was refused here (`data_dir/restore-refused`): nothing may sign,
/// back up or serve a database that does not match its backup until someone looked.
///
/// # Errors
/// When the note exists.
pub(super) fn not_refused(config: &Config) -> anyhow::Result<()> {
    let refused = config.data_dir.join(REFUSED_MARK);
    anyhow::ensure!(
        !refused.exists(),
        "a restore was refused on this installation: the database does not match its backup ({}). Investigate, restore again, then remove that file",
        refused.display()
    );
    Ok(())
}

pub(super) async fn backup(config: &Config, dest: &Path) -> anyhow::Result<()> {
    not_refused(config)?;
    if dest.exists()
        && std::fs::read_dir(dest)
            .with_context(|| format!("{} is not a directory", dest.display()))?
            .next()
            .is_some()
    {
        anyhow::bail!(
            "{} exists and is not empty: back up into a new directory",
            dest.display()
        );
    }
    crate::tls::create_private_dir(dest)?;
    std::fs::set_permissions(dest, std::fs::Permissions::from_mode(0o700))?;
    let store = open_store(config).await?;
    let result = backup_with(config, &store, dest).await;
    store.close().await;
    result
}

async fn backup_with(config: &Config, store: &Store, dest: &Path) -> anyhow::Result<()> {
    let mut files = std::collections::BTreeMap::new();
    let sqlite = store::sqlite_path(&config.database.url).is_some();
    // Never back up (and sign) a log that no longer fits its checkpoints.
    let signer = Signer::load(config)?;
    signer.verified_head(store).await?;
    let (seq, head, head_at) = if sqlite {
        let copy = dest.join(DATABASE);
        // The copy is created private; SQLite writes into the empty file and keeps its mode.
        write_private(&copy, b"")?;
        // The head of the copy, read from the copy: what restore must find there.
        let head = store.backup_into(&copy).await.readable()?;
        files.insert(DATABASE.to_owned(), sha256_file(&copy)?);
        head
    } else {
        let (seq, head) = store.audit_head().await.readable()?;
        (
            seq,
            head.clone(),
            store.audit_entry_at(seq).await.readable()?,
        )
    };
    // A checkpoint of exactly that head, in the installation's file and in the backup.
    let checkpoint = signer.sign(seq, &head, head_at);
    checkpoint::append(signer.file(), &checkpoint.line())?;
    let checkpoints = std::fs::read(signer.file())
        .with_context(|| format!("reading {}", signer.file().display()))?;
    write_private(&dest.join(CHECKPOINTS), &checkpoints)?;
    files.insert(
        CHECKPOINTS.to_owned(),
        sha256_file(&dest.join(CHECKPOINTS))?,
    );
    for (source, name) in key_files(config) {
        match std::fs::read(&source) {
            Ok(bytes) => {
                write_private(&dest.join(name), &bytes)?;
                files.insert(name.to_owned(), hex::encode(Sha256::digest(&bytes)));
            }
            // A key not made yet (no daemon has run): nothing to keep.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                return Err(e).with_context(|| format!("reading {}", source.display()));
            }
        }
    }
    if let Some(source) = &config.source {
        let bytes =
            std::fs::read(source).with_context(|| format!("reading {}", source.display()))?;
        write_private(&dest.join("ratspost.toml"), &bytes)?;
        files.insert(
            "ratspost.toml".to_owned(),
            hex::encode(Sha256::digest(&bytes)),
        );
    }
    let mut manifest = Manifest {
        format: FORMAT.to_owned(),
        created_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        backend: if sqlite { "sqlite" } else { "postgres" }.to_owned(),
        audit_seq: seq,
        audit_head: head,
        files,
        key: signer.public_key(),
        signature: String::new(),
    };
    manifest.signature = signer.sign_detached(&manifest.signed_bytes()?);
    write_private(
        &dest.join(MANIFEST),
        format!("{}\n", serde_json::to_string_pretty(&manifest)?).as_bytes(),
    )?;
    println!("backup written to {}", dest.display());
    println!("audit head in the backup: entry {seq}; its checkpoint:");
    println!("{}", checkpoint.line());
    if !sqlite {
        println!(
            "PostgreSQL: the database itself is not in it. Dump it now as well:\n  pg_dump --format=custom --file={}/ratspost.dump '{}'\n(with the password as PGPASSWORD or in ~/.pgpass; see the README, Backups)",
            dest.display(),
            store::redact_url(&config.database.url)
        );
    }
    Ok(())
}
