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
//! keys/audit-checkpoint.key
//! audit-checkpoints.txt  the checkpoint file, ending with one of the copy's own head
//! tls/cert.pem, key.pem  the certificate in use
//! ratspost.toml          the configuration in use (for reference; restore leaves yours)
//! ```
//!
//! On PostgreSQL the database is `pg_dump`'s (the README says how); `backup` keeps the rest,
//! and `restore` checks the database `pg_restore` brought back against the backup's
//! checkpoints.
//!
//! `restore` checks before it installs anything: the files' hashes, the copy's audit chain
//! against its checkpoints and key, and that the chain's head is the one the backup recorded.

use std::io::Write as _;
use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use sha2::{Digest as _, Sha256};
use store::{AuditCheck, Store, StoreOptions};

use super::readable::Readable as _;
use crate::checkpoint::{self, Signer};
use crate::config::Config;
use crate::setup::open_store;

const MANIFEST: &str = "backup.json";
const FORMAT: &str = "ratspost-backup 1";
const DATABASE: &str = "ratspost.db";
const CHECKPOINTS: &str = "audit-checkpoints.txt";
const CHECKPOINT_KEY: &str = "keys/audit-checkpoint.key";

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
}

/// The files besides the database: (where the installation keeps it, name in the backup).
fn key_files(config: &Config) -> Vec<(PathBuf, &'static str)> {
    vec![
        (config.data_dir.join("dkim.key"), "keys/dkim.key"),
        (config.data_dir.join("srs.key"), "keys/srs.key"),
        (config.audit.checkpoint_key.clone(), CHECKPOINT_KEY),
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

pub(super) async fn backup(config: &Config, dest: &Path) -> anyhow::Result<()> {
    if dest.exists() && std::fs::read_dir(dest)?.next().is_some() {
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
    let (seq, head) = if sqlite {
        let copy = dest.join(DATABASE);
        // The copy is created private; SQLite writes into the empty file and keeps its mode.
        write_private(&copy, b"")?;
        // The head of the copy, read from the copy: what restore must find there.
        let head = store.backup_into(&copy).await.readable()?;
        files.insert(DATABASE.to_owned(), sha256_file(&copy)?);
        head
    } else {
        store.audit_head().await.readable()?
    };
    // A checkpoint of exactly that head, in the installation's file and in the backup.
    let signer = Signer::load(config)?;
    let checkpoint = signer.sign(seq, &head);
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
    let manifest = Manifest {
        format: FORMAT.to_owned(),
        created_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        backend: if sqlite { "sqlite" } else { "postgres" }.to_owned(),
        audit_seq: seq,
        audit_head: head,
        files,
    };
    write_private(
        &dest.join(MANIFEST),
        format!("{}\n", serde_json::to_string_pretty(&manifest)?).as_bytes(),
    )?;
    println!("backup written to {}", dest.display());
    println!("audit head in the backup: entry {seq}; its checkpoint:");
    println!("{}", checkpoint.line());
    if !sqlite {
        println!(
            "PostgreSQL: the database itself is not in it. Dump it now as well, e.g.\n  pg_dump --format=custom --file={}/ratspost.dump DBNAME\n(see the README, Backups)",
            dest.display()
        );
    }
    Ok(())
}

/// Reads and checks the backup in `src`: the manifest and every file's hash.
fn read_manifest(src: &Path) -> anyhow::Result<Manifest> {
    let text = std::fs::read_to_string(src.join(MANIFEST))
        .with_context(|| format!("{} is not a ratspost backup (no {MANIFEST})", src.display()))?;
    let manifest: Manifest =
        serde_json::from_str(&text).with_context(|| format!("reading {MANIFEST}"))?;
    anyhow::ensure!(
        manifest.format == FORMAT,
        "{MANIFEST}: unknown format {:?}",
        manifest.format
    );
    for (name, expected) in &manifest.files {
        anyhow::ensure!(
            !name.contains("..") && !name.starts_with('/'),
            "{MANIFEST}: bad file name {name:?}"
        );
        let actual = sha256_file(&src.join(name))?;
        anyhow::ensure!(
            actual == *expected,
            "{name} in the backup was changed or damaged (SHA-256 {actual}, expected {expected})"
        );
    }
    Ok(manifest)
}

/// Verifies `store`'s audit chain against the backup's checkpoints, signed by the backup's
/// checkpoint key, and that its head is where the backup said.
async fn verify_against(store: &Store, src: &Path, manifest: &Manifest) -> anyhow::Result<String> {
    let key = match std::fs::read_to_string(src.join(CHECKPOINT_KEY)) {
        Ok(hex_key) => {
            let der = hex::decode(hex_key.trim()).context("the backup's checkpoint key")?;
            Some(checkpoint::public_key_of(&der)?)
        }
        Err(_) => None,
    };
    let text = std::fs::read_to_string(src.join(CHECKPOINTS)).unwrap_or_default();
    let mut anchors = Vec::new();
    for (line, found) in checkpoint::find_all(&text) {
        let c = found.map_err(|e| anyhow::anyhow!("{CHECKPOINTS}, line {line}: {e}"))?;
        if let Some(key) = &key {
            anyhow::ensure!(
                c.key_text() == *key,
                "{CHECKPOINTS}, line {line}: signed by another key than the backup's"
            );
        }
        anchors.push(c.anchor(&format!("{CHECKPOINTS}, line {line}")));
    }
    match store.verify_audit_anchored(&anchors).await.readable()? {
        AuditCheck::Broken { seq, reason } => {
            anyhow::bail!("the backup's audit chain is broken at entry {seq}: {reason}")
        }
        AuditCheck::Intact { .. } => {}
    }
    let (seq, head) = store.audit_head().await.readable()?;
    anyhow::ensure!(
        seq == manifest.audit_seq && head == manifest.audit_head,
        "the database's audit head (entry {seq}) is not the one the backup recorded (entry {}): it is another or a changed database",
        manifest.audit_seq
    );
    Ok(format!(
        "audit chain intact up to entry {seq}, {} checkpoints matched",
        anchors.len()
    ))
}

/// Moves `path` aside as `path.before-restore-STAMP` when it exists.
fn move_aside(path: &Path, stamp: &str) -> anyhow::Result<Option<PathBuf>> {
    if !path.exists() {
        return Ok(None);
    }
    let mut name = path.as_os_str().to_owned();
    name.push(format!(".before-restore-{stamp}"));
    let aside = PathBuf::from(name);
    std::fs::rename(path, &aside).with_context(|| format!("moving {} aside", path.display()))?;
    Ok(Some(aside))
}

pub(super) async fn restore(config: &Config, src: &Path, replace: bool) -> anyhow::Result<()> {
    let manifest = read_manifest(src)?;
    crate::tls::create_private_dir(&config.data_dir)?;
    let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%SZ").to_string();
    let target = store::sqlite_path(&config.database.url).map(Path::to_path_buf);
    let verdict = match (&target, manifest.backend.as_str()) {
        (Some(target), "sqlite") => {
            if target.exists() && !replace {
                anyhow::bail!(
                    "{} exists. Stop ratspost first; then restore with --replace (the present database is kept beside it as …before-restore-<time>)",
                    target.display()
                );
            }
            for suffix in ["-wal", "-journal"] {
                anyhow::ensure!(
                    !src.join(format!("{DATABASE}{suffix}")).exists(),
                    "{DATABASE}{suffix} lies beside the backup's database: a backup holds none (it was opened and changed after it was made)"
                );
            }
            // Checked in a private copy beside the target before it replaces anything.
            let mut trial = target.as_os_str().to_owned();
            trial.push(".restoring");
            let trial = PathBuf::from(trial);
            let _ = std::fs::remove_file(&trial);
            std::fs::copy(src.join(DATABASE), &trial)
                .with_context(|| format!("copying the backup to {}", trial.display()))?;
            std::fs::set_permissions(&trial, std::fs::Permissions::from_mode(0o600))?;
            let url = format!("sqlite://{}", trial.display());
            let store = Store::open(&url, &StoreOptions::default())
                .await
                .readable()?;
            let checked = verify_against(&store, src, &manifest).await;
            store.close().await;
            let verdict = match checked {
                Ok(v) => v,
                Err(e) => {
                    let _ = std::fs::remove_file(&trial);
                    return Err(e.context("nothing was restored"));
                }
            };
            for suffix in ["", "-wal", "-shm"] {
                let mut name = target.as_os_str().to_owned();
                name.push(suffix);
                move_aside(Path::new(&name), &stamp)?;
            }
            for suffix in ["-wal", "-shm"] {
                let mut name = trial.as_os_str().to_owned();
                name.push(suffix);
                let _ = std::fs::remove_file(Path::new(&name));
            }
            std::fs::rename(&trial, target).with_context(|| {
                format!("putting the database in place at {}", target.display())
            })?;
            verdict
        }
        (None, "postgres") => {
            // The database came back with pg_restore; it must be the one this backup saw.
            let store = open_store(config).await?;
            let checked = verify_against(&store, src, &manifest).await;
            store.close().await;
            checked.context("nothing was restored")?
        }
        (_, backend) => anyhow::bail!(
            "this is a backup of a {backend} installation, but the configuration names {}",
            if target.is_some() {
                "SQLite"
            } else {
                "PostgreSQL"
            }
        ),
    };
    // The keys and the checkpoints the restored chain is proved with.
    let mut restored = vec![];
    let mut files = key_files(config);
    files.push((config.audit.checkpoint_file.clone(), CHECKPOINTS));
    for (place, name) in files {
        if !manifest.files.contains_key(name) {
            continue;
        }
        if name.starts_with("tls/") && !config.tls.generated {
            // The operator's own certificate stays where they manage it.
            continue;
        }
        move_aside(&place, &stamp)?;
        let bytes = std::fs::read(src.join(name))?;
        write_private(&place, &bytes)?;
        restored.push(place.display().to_string());
    }
    // The restore itself goes on record in the restored chain.
    let store = open_store(config).await?;
    let entry = store::NewAuditEntry {
        actor: "cli".to_owned(),
        action: "backup.restored".to_owned(),
        subjects: Vec::new(),
        details: serde_json::json!({
            "backup_created_at": manifest.created_at,
            "backup_audit_seq": manifest.audit_seq,
        }),
    };
    let appended = store.append_audit(&entry).await.readable();
    store.close().await;
    appended?;
    println!(
        "restored from {} (made {}): {verdict}",
        src.display(),
        manifest.created_at
    );
    for path in restored {
        println!("  {path}");
    }
    println!(
        "Entries and mail after the backup are not in it; the old files were kept as …before-restore-{stamp}."
    );
    Ok(())
}
