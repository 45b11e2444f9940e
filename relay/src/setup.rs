//! First-run setup, shared by `ratspost init` and a `ratspost serve` on a fresh directory:
//! data directory, self-signed certificate, database with migrations, bootstrap admin.
//! Each step only happens when its result is missing, so running it again is harmless.

use anyhow::Context as _;
use store::{NewUser, Role, Store, StoreOptions};

use crate::config::Config;
use crate::tls;

/// Login of the admin created on an empty database.
pub const BOOTSTRAP_ADMIN: &str = "admin";

/// What setup did.
#[derive(Debug, Default)]
pub struct Report {
    /// A self-signed certificate was generated.
    pub certificate_generated: bool,
    /// The bootstrap admin was created with this password (shown once, never stored).
    pub admin_password: Option<String>,
    /// The DKIM record to publish: (name, value).
    pub dkim_record: Option<(String, String)>,
    /// The public key of the audit checkpoints (base64), for the data-protection officer.
    pub checkpoint_key: Option<String>,
}

/// Opens the store the configuration names, with its pool options.
///
/// # Errors
/// When the database cannot be opened or migrated.
pub async fn open_store(config: &Config) -> anyhow::Result<Store> {
    let options = StoreOptions {
        max_connections: config.database.max_connections,
        acquire_timeout: config.database.acquire_timeout,
        ..StoreOptions::default()
    };
    Store::open(&config.database.url, &options)
        .await
        .with_context(|| {
            format!(
                "opening database {}",
                store::redact_url(&config.database.url)
            )
        })
}

/// The locks a running `serve` holds (advisory `flock`s): on its `data_dir`
/// (`data_dir/serve.lock`) and, for SQLite, on its database (`<database>.lock` beside it, so
/// that another configuration naming the same file is stopped too), so that `restore` never
/// replaces files under a running daemon. Released when the returned files are dropped or
/// the process ends, however it ends. Daemons on other nodes of a PostgreSQL installation
/// are not seen: stop them all before a restore.
///
/// # Errors
/// When another process holds one (a `serve` here), or a lock file cannot be made.
pub fn lock_data_dir(config: &Config) -> anyhow::Result<Vec<std::fs::File>> {
    use std::os::unix::fs::OpenOptionsExt as _;
    tls::create_private_dir(&config.data_dir)?;
    let mut paths = vec![config.data_dir.join("serve.lock")];
    if let Some(db) = store::sqlite_path(&config.database.url) {
        if let Some(dir) = db.parent().filter(|d| !d.as_os_str().is_empty()) {
            tls::create_private_dir(dir)?;
        }
        let mut name = db.as_os_str().to_owned();
        name.push(".lock");
        paths.push(name.into());
    }
    let mut held = Vec::new();
    for path in paths {
        let file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(&path)
            .with_context(|| format!("opening {}", path.display()))?;
        match file.try_lock() {
            Ok(()) => held.push(file),
            Err(std::fs::TryLockError::WouldBlock) => anyhow::bail!(
                "ratspost serve is running on this installation (it holds {}): stop it first",
                path.display()
            ),
            Err(std::fs::TryLockError::Error(e)) => {
                return Err(e).with_context(|| format!("locking {}", path.display()));
            }
        }
    }
    Ok(held)
}

/// Makes sure everything `serve` needs exists; returns the open store.
///
/// # Errors
/// When a directory, the certificate or the database cannot be created.
pub async fn prepare(config: &Config) -> anyhow::Result<(Store, Report)> {
    let mut report = Report::default();
    tls::create_private_dir(&config.data_dir)?;
    if config.tls.generated && !(config.tls.cert.exists() && config.tls.key.exists()) {
        tls::generate_self_signed(&config.tls.cert, &config.tls.key)?;
        report.certificate_generated = true;
    }
    srs_secret(config)?;
    report.dkim_record = Some(crate::dkim::record(config)?);
    // Made at setup, so the data-protection officer can note its public key from the start
    // (and again after a restore on a new machine: the key is never in a backup).
    let made = !config.audit.checkpoint_key.exists();
    let key = crate::checkpoint::Signer::load(config)?.public_key();
    report.checkpoint_key = made.then_some(key);
    // After everything setup creates, before the database is opened (which it may create).
    crate::at_rest::secure(config)?;
    crate::at_rest::warn_about_config(config);
    let store = open_store(config).await?;
    if store.count_users().await? == 0 {
        let password = store::password::generate(20);
        store
            .create_user(&NewUser {
                login: BOOTSTRAP_ADMIN.to_owned(),
                name: "Administrator".to_owned(),
                role: Role::Admin,
                password_hash: store::password::hash(&password)?,
                addresses: Vec::new(),
            })
            .await
            .context("creating the bootstrap admin")?;
        report.admin_password = Some(password);
    }
    // The first checkpoint at once: from now on the checkpoint file is never empty, so an
    // emptied or deleted one is a sign of tampering (audit verify says so).
    let checkpoints = &config.audit.checkpoint_file;
    if std::fs::metadata(checkpoints).map_or(true, |m| m.len() == 0) {
        crate::checkpoint::Signer::load(config)?
            .write(&store)
            .await
            .context("writing the first audit checkpoint")?;
    }
    Ok((store, report))
}

/// The key that signs SRS addresses, created on first use under `data_dir` (mode 0600).
///
/// # Errors
/// When it cannot be read or written.
pub fn srs_secret(config: &Config) -> anyhow::Result<Vec<u8>> {
    tls::secret_file(&config.data_dir.join("srs.key"), || {
        Ok(rand::random::<[u8; 32]>().to_vec())
    })
}

/// Prints what setup did, including the one-time admin password, to stdout (never to the
/// log).
pub fn print_report(report: &Report, config: &Config) {
    if report.certificate_generated {
        println!(
            "Generated a self-signed TLS certificate for localhost: {}",
            config.tls.cert.display()
        );
    }
    if let (Some((name, value)), true) = (&report.dkim_record, report.admin_password.is_some()) {
        println!("Publish this DKIM record so notices (DKIM) and forwards (ARC) verify:");
        println!("  {name} IN TXT \"{value}\"");
    }
    if let Some(key) = &report.checkpoint_key {
        println!(
            "Made the audit checkpoint key. Give its public key to the data-protection officer (ratspost audit verify --key):"
        );
        println!("  {key}");
    }
    if let Some(password) = &report.admin_password {
        println!("Created the bootstrap admin. Save this password now; it is shown only once:");
        println!("  login:    {BOOTSTRAP_ADMIN}");
        println!("  password: {password}");
    }
}
