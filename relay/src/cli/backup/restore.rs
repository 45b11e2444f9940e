//! `ratspost restore SRC`: a backup checked before it is used, then put in place (see the
//! parent module for what a backup holds and how it is signed).

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use store::{AuditCheck, Store, StoreOptions};

use super::{
    CHECKPOINTS, DATABASE, FORMAT, MANIFEST, Manifest, key_files, sha256_file, write_private,
};
use crate::checkpoint::{self, Signer};
use crate::cli::readable::Readable as _;
use crate::config::Config;
use crate::setup::open_store;

/// Reads and checks the backup in `src`: the manifest's signature by the trusted key, every
/// file's hash, and that nothing is reached through a symbolic link.
fn read_manifest(src: &Path, trusted: &Trust) -> anyhow::Result<Manifest> {
    let path = src.join(MANIFEST);
    no_links(src, MANIFEST)
        .with_context(|| format!("{} is not a ratspost backup", src.display()))?;
    let size = std::fs::metadata(&path)
        .with_context(|| format!("reading {}", path.display()))?
        .len();
    anyhow::ensure!(
        size <= 1 << 20,
        "{MANIFEST} is larger than 1 MiB: not a ratspost backup"
    );
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    let manifest: Manifest =
        serde_json::from_str(&text).with_context(|| format!("reading {MANIFEST}"))?;
    anyhow::ensure!(
        manifest.format == FORMAT,
        "{MANIFEST}: unknown format {:?}",
        manifest.format
    );
    let key = match trusted {
        Trust::Key(key) => {
            anyhow::ensure!(
                manifest.key == *key,
                "the backup is signed by key {}, not by the trusted key {key}: it was not made by this installation, or it was changed",
                manifest.key
            );
            key.clone()
        }
        Trust::Backup => manifest.key.clone(),
    };
    anyhow::ensure!(
        checkpoint::verify_detached(&key, &manifest.signed_bytes()?, &manifest.signature),
        "{MANIFEST}: its signature does not verify: the backup was changed after it was made"
    );
    for (name, expected) in &manifest.files {
        anyhow::ensure!(
            !name
                .split('/')
                .any(|part| part.is_empty() || part == "." || part == ".."),
            "{MANIFEST}: bad file name {name:?}"
        );
        no_links(src, name)?;
        let actual = sha256_file(&src.join(name))?;
        anyhow::ensure!(
            actual == *expected,
            "{name} in the backup was changed or damaged (SHA-256 {actual}, expected {expected})"
        );
    }
    Ok(manifest)
}

/// Refuses `name` under `src` when it, or a directory on the way to it, is a symbolic link:
/// a restore copies the backup's own files, never what a link points to.
fn no_links(src: &Path, name: &str) -> anyhow::Result<()> {
    let mut path = src.to_path_buf();
    for part in name.split('/') {
        path.push(part);
        let meta = std::fs::symlink_metadata(&path)
            .with_context(|| format!("{name} is missing from the backup"))?;
        anyhow::ensure!(
            !meta.file_type().is_symlink(),
            "{} in the backup is a symbolic link: refused",
            path.display()
        );
    }
    Ok(())
}

/// Whose signature a restore accepts.
enum Trust {
    /// This public key's (base64).
    Key(String),
    /// The key the backup names (`--trust-backup-key`): proves nothing against whoever
    /// could change the backup.
    Backup,
}

/// The key a restore trusts: `--key`, else the installation's own checkpoint key (restoring
/// where it was made), else only with `--trust-backup-key`.
fn trust(config: &Config, key: Option<String>, trust_backup_key: bool) -> anyhow::Result<Trust> {
    let installed = checkpoint::installed_key(config)?;
    match (key, installed) {
        // Named by the operator: authoritative (a backup from the old machine after a move,
        // whose key differs from the one made here).
        (Some(key), _) => Ok(Trust::Key(key)),
        (None, Some(installed)) => Ok(Trust::Key(installed)),
        (None, None) if trust_backup_key => Ok(Trust::Backup),
        (None, None) => anyhow::bail!(
            "no key to check the backup with: pass --key KEY (the public key of the audit checkpoints, as the data-protection officer noted it; every checkpoint line shows it as key=…), or --trust-backup-key to accept the key the backup names"
        ),
    }
}

/// Verifies `store`'s audit chain against the backup's checkpoints, each signed by the
/// backup's (checked) key, among them the closing one of the head the backup recorded. With
/// `exact` (SQLite: the copy is the backup) the database must end there; else (PostgreSQL:
/// the dump is taken after the backup) it may go on from there.
async fn verify_against(
    store: &Store,
    src: &Path,
    manifest: &Manifest,
    exact: bool,
) -> anyhow::Result<String> {
    let text = std::fs::read_to_string(src.join(CHECKPOINTS)).unwrap_or_default();
    let mut anchors = Vec::new();
    let mut closing = false;
    for (line, found) in checkpoint::find_all(&text) {
        let c = found.map_err(|e| anyhow::anyhow!("{CHECKPOINTS}, line {line}: {e}"))?;
        anyhow::ensure!(
            c.key_text() == manifest.key,
            "{CHECKPOINTS}, line {line}: signed by another key than the backup's"
        );
        closing |= c.seq == manifest.audit_seq && c.head == manifest.audit_head;
        anchors.push(c.anchor(&format!("{CHECKPOINTS}, line {line}")));
    }
    anyhow::ensure!(
        closing,
        "{CHECKPOINTS} lacks the checkpoint of the head the backup recorded (entry {})",
        manifest.audit_seq
    );
    if let AuditCheck::Broken { seq, reason } =
        store.verify_audit_anchored(&anchors).await.readable()?
    {
        anyhow::bail!("the backup's audit chain is broken at entry {seq}: {reason}")
    }
    let (seq, _) = store.audit_head().await.readable()?;
    anyhow::ensure!(
        seq == manifest.audit_seq || (!exact && seq > manifest.audit_seq),
        "the database's audit head (entry {seq}) is not the one the backup recorded (entry {}): it is another or a changed database",
        manifest.audit_seq
    );
    Ok(format!(
        "audit chain intact up to entry {seq}, {} checkpoints matched",
        anchors.len()
    ))
}

/// A name beside `path` that is free: `path.before-restore-STAMP`, else with `-2`, `-3`, …
/// (two restores within a second must not overwrite what the first kept).
fn aside_name(path: &Path, stamp: &str) -> PathBuf {
    let mut n = 1;
    loop {
        let mut name = path.as_os_str().to_owned();
        name.push(format!(".before-restore-{stamp}"));
        if n > 1 {
            name.push(format!("-{n}"));
        }
        let aside = PathBuf::from(name);
        if std::fs::symlink_metadata(&aside).is_err() {
            return aside;
        }
        n += 1;
    }
}

/// Moves `path` aside under [`aside_name`] when it exists; returns where.
fn move_aside(path: &Path, stamp: &str) -> anyhow::Result<Option<PathBuf>> {
    if std::fs::symlink_metadata(path).is_err() {
        return Ok(None);
    }
    let aside = aside_name(path, stamp);
    std::fs::rename(path, &aside).with_context(|| format!("moving {} aside", path.display()))?;
    Ok(Some(aside))
}

/// Moves `path` aside (see [`move_aside`]) with its `-wal` and `-shm` beside it, if any,
/// under the aside name (where SQLite looks for them).
fn move_with_journal(path: &Path, stamp: &str) -> anyhow::Result<Option<PathBuf>> {
    let Some(aside) = move_aside(path, stamp)? else {
        return Ok(None);
    };
    for suffix in ["-wal", "-shm"] {
        let from = with_suffix(path, suffix);
        if from.exists()
            && let Err(err) = std::fs::rename(&from, with_suffix(&aside, suffix))
        {
            let _ = put_back(&aside, path);
            return Err(err).with_context(|| format!("moving {} aside", from.display()));
        }
    }
    Ok(Some(aside))
}

/// Undoes [`move_with_journal`].
fn put_back(aside: &Path, place: &Path) -> std::io::Result<()> {
    for suffix in ["-wal", "-shm"] {
        let from = with_suffix(aside, suffix);
        if from.exists() {
            std::fs::rename(&from, with_suffix(place, suffix))?;
        }
    }
    std::fs::rename(aside, place)
}

/// `path` with `suffix` appended to its name.
fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

/// The keys, certificate and checkpoint file of the backup, each written beside its place
/// as `….restoring`: (place, staged file). Nothing is replaced yet.
fn stage_files(
    config: &Config,
    src: &Path,
    manifest: &Manifest,
    cleanup: &mut Cleanup,
) -> anyhow::Result<Vec<(PathBuf, PathBuf)>> {
    let mut files = key_files(config);
    files.push((config.audit.checkpoint_file.clone(), CHECKPOINTS));
    let mut staged = Vec::new();
    for (place, name) in files {
        if !manifest.files.contains_key(name) {
            continue;
        }
        if name.starts_with("tls/") && !config.tls.generated {
            // The operator's own certificate stays where they manage it.
            continue;
        }
        let stage = with_suffix(&place, ".restoring");
        let _ = std::fs::remove_file(&stage);
        let bytes = std::fs::read(src.join(name))?;
        write_private(&stage, &bytes)?;
        cleanup.0.push(stage.clone());
        staged.push((place, stage));
    }
    Ok(staged)
}

/// Staged files, removed when the restore stops before it used them.
struct Cleanup(Vec<PathBuf>);

impl Cleanup {
    fn clear(&mut self) {
        self.0.clear();
    }
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        for path in &self.0 {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// Where a refused restore leaves its note: `serve` does not start while it exists.
pub(in crate::cli) const REFUSED_MARK: &str = "restore-refused";

/// `ratspost restore`: what the backup in `src` holds, checked, put where `config` expects
/// it.
pub(in crate::cli) async fn restore(
    config: &Config,
    src: &Path,
    replace: bool,
    key: Option<String>,
    trust_backup_key: bool,
) -> anyhow::Result<()> {
    crate::tls::create_private_dir(&config.data_dir)?;
    // Held while files are replaced: no daemon may run on them.
    let _running = crate::setup::lock_data_dir(config)?;
    let trusted = trust(config, key, trust_backup_key)?;
    let manifest = read_manifest(src, &trusted).context("nothing was restored")?;
    if let Trust::Backup = trusted {
        eprintln!(
            "warning: trusting the key the backup names, {}: compare it with the one the data-protection officer noted",
            manifest.key
        );
    }
    let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%SZ").to_string();
    let mut kept: Vec<String> = Vec::new();
    let mut restored: Vec<String> = Vec::new();
    let target = store::sqlite_path(&config.database.url).map(Path::to_path_buf);
    // Staged files to remove if the restore stops half-way.
    let mut cleanup = Cleanup(Vec::new());
    // (place, staged file) for everything that is put in place.
    let (verdict, staged) = match (&target, manifest.backend.as_str()) {
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
            let checked = verify_against(&store, src, &manifest, true).await;
            store.close().await;
            let verdict = match checked {
                Ok(v) => v,
                Err(e) => {
                    let _ = std::fs::remove_file(&trial);
                    return Err(e.context("nothing was restored"));
                }
            };
            cleanup.0.push(trial.clone());
            cleanup.0.push(with_suffix(&trial, "-wal"));
            cleanup.0.push(with_suffix(&trial, "-shm"));
            // Staged beside their places first: a failure here replaces nothing.
            let staged = stage_files(config, src, &manifest, &mut cleanup)?;
            // The present database with every commit folded in, so the copy kept aside
            // opens as it is.
            store::fold_sqlite_wal(target).await.readable()?;
            for suffix in ["-wal", "-shm"] {
                let _ = std::fs::remove_file(with_suffix(&trial, suffix));
            }
            let mut swaps = vec![(target.clone(), trial.clone())];
            swaps.extend(staged);
            (verdict, swaps)
        }
        (None, "postgres") => {
            // The database came back with pg_restore; it must be the one this backup saw.
            let store = open_store(config).await?;
            let checked = verify_against(&store, src, &manifest, false).await;
            store.close().await;
            if let Err(err) = checked {
                // pg_restore has put it in place already: say so, and keep serve off it.
                let mark = config.data_dir.join(REFUSED_MARK);
                let _ = std::fs::remove_file(&mark);
                write_private(&mark, format!("{err:#}\n").as_bytes())?;
                return Err(err.context(format!(
                    "the database {} does not match the backup; pg_restore put it in place, so do not use it: drop it or investigate. Keys and checkpoints were not restored, and `ratspost serve` refuses to start until {} is removed",
                    store::redact_url(&config.database.url),
                    mark.display()
                )));
            }
            let verdict = checked?;
            (verdict, stage_files(config, src, &manifest, &mut cleanup)?)
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
    // Everything present moved aside first, undone if one cannot be; then the staged files
    // put in place.
    let mut moved: Vec<(PathBuf, PathBuf)> = Vec::new();
    for (place, _) in &staged {
        match move_with_journal(place, &stamp) {
            Ok(Some(aside)) => moved.push((place.clone(), aside)),
            Ok(None) => {}
            Err(err) => {
                for (place, aside) in moved.iter().rev() {
                    let _ = put_back(aside, place);
                }
                return Err(err.context("nothing was replaced"));
            }
        }
    }
    kept.extend(moved.iter().map(|(_, aside)| aside.display().to_string()));
    for (place, file) in staged {
        std::fs::rename(&file, &place)
            .with_context(|| format!("putting {} in place", place.display()))?;
        restored.push(place.display().to_string());
    }
    cleanup.clear();
    let _ = std::fs::remove_file(config.data_dir.join(REFUSED_MARK));
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
    let made = !config.audit.checkpoint_key.exists();
    let signed = async {
        store.append_audit(&entry).await.readable()?;
        // A checkpoint of the restored log, by this installation's key (made now on a new
        // machine: the key is never in a backup), so that it is anchored from the start.
        let signer = Signer::load(config)?;
        let checkpoint = signer.write(&store).await?;
        anyhow::Ok((signer.public_key(), checkpoint))
    }
    .await;
    store.close().await;
    let (key, checkpoint) = signed?;
    println!(
        "restored from {} (made {}): {verdict}",
        src.display(),
        manifest.created_at
    );
    for path in restored {
        println!("  {path}");
    }
    println!("Entries and mail after the backup are not in it.");
    println!("checkpoint of the restored log: {}", checkpoint.line());
    if made {
        println!(
            "Made a new audit checkpoint key (the old one stays on the old machine). Give its public key to the data-protection officer; checkpoints before the restore verify with the old key (audit verify --key OLD --key NEW):\n  {key}"
        );
    }
    if !kept.is_empty() {
        println!("The files it replaced were kept:");
        for path in kept {
            println!("  {path}");
        }
    }
    Ok(())
}
