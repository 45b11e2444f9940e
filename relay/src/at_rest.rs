//! Data at rest stays private to the service account (issue #15 §2): at every start
//! `data_dir` becomes 0700 and every file in it 0600 (subdirectories 0700), whatever existed
//! before — a `data_dir` made 0755 by hand or by an older version is closed, not kept — and
//! the SQLite database with its `-wal`, `-shm` and `-journal` files is 0600 wherever it lives.
//! The database file is created 0600 before SQLite opens it: SQLite gives the files it makes
//! beside a database the database file's mode, so the write-ahead log is never readable by
//! others, not even for a moment.
//!
//! A configuration file that others may read and that holds a secret (a relay password, a
//! database URL with a password) gets a warning at start: the secret is as private as the
//! file.

use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
use std::path::Path;

use anyhow::Context as _;

use crate::config::Config;

/// Closes `data_dir` and the SQLite files, creating the database file (empty, 0600) when it
/// does not exist yet.
///
/// # Errors
/// When a mode cannot be set (another owner, a read-only file system): ratspost refuses to
/// start rather than run with readable data, and says which path.
pub fn secure(config: &Config) -> anyhow::Result<()> {
    crate::tls::create_private_dir(&config.data_dir)?;
    close_tree(&config.data_dir)?;
    if let Some(db) = store::sqlite_path(&config.database.url) {
        if !db.exists() {
            std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(db)
                .with_context(|| format!("creating the database file {}", db.display()))?;
        }
        for suffix in ["", "-wal", "-shm", "-journal"] {
            let mut name = db.as_os_str().to_owned();
            name.push(suffix);
            let path = Path::new(&name);
            if path.exists() {
                set_mode(path, 0o600)?;
            }
        }
    }
    Ok(())
}

/// `dir` 0700, its files 0600, its subdirectories likewise (symbolic links are left alone:
/// their targets are not ours to change).
fn close_tree(dir: &Path) -> anyhow::Result<()> {
    set_mode(dir, 0o700)?;
    let entries = std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))?;
    for entry in entries {
        let entry = entry.with_context(|| format!("reading {}", dir.display()))?;
        let kind = entry
            .file_type()
            .with_context(|| format!("reading {}", entry.path().display()))?;
        if kind.is_dir() {
            close_tree(&entry.path())?;
        } else if kind.is_file() {
            set_mode(&entry.path(), 0o600)?;
        }
    }
    Ok(())
}

fn set_mode(path: &Path, mode: u32) -> anyhow::Result<()> {
    let current = std::fs::metadata(path)
        .with_context(|| format!("reading {}", path.display()))?
        .permissions()
        .mode()
        & 0o777;
    if current != mode {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).with_context(
            || {
                format!(
                    "refusing to start: cannot make {} mode {mode:o} (it is {current:o})",
                    path.display()
                )
            },
        )?;
    }
    Ok(())
}

/// Warns when the configuration file holds a secret and others may read it.
pub fn warn_about_config(config: &Config) {
    let Some(path) = &config.source else { return };
    let Ok(meta) = std::fs::metadata(path) else {
        return;
    };
    let held = &config.inline_secrets;
    if meta.permissions().mode() & 0o004 != 0 && !held.is_empty() {
        tracing::warn!(
            file = %path.display(),
            secrets = %held.join(", "),
            "the configuration holds secrets and every local user may read it: chmod o-r"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path).expect("meta").permissions().mode() & 0o777
    }

    #[test]
    fn an_open_data_dir_and_database_are_closed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let data = dir.path().join("data");
        std::fs::create_dir(&data).expect("mkdir");
        std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        std::fs::create_dir(data.join("tls")).expect("mkdir");
        for f in ["tls/key.pem", "dkim.key", "ratspost.db", "ratspost.db-wal"] {
            std::fs::write(data.join(f), b"x").expect("write");
            std::fs::set_permissions(data.join(f), std::fs::Permissions::from_mode(0o644))
                .expect("chmod");
        }
        let text = format!("data_dir = {:?}\n", data.display().to_string());
        let config = Config::parse(&text, Some(&dir.path().join("ratspost.toml"))).expect("config");
        secure(&config).expect("secure");
        assert_eq!(mode(&data), 0o700);
        assert_eq!(mode(&data.join("tls")), 0o700);
        for f in ["tls/key.pem", "dkim.key", "ratspost.db", "ratspost.db-wal"] {
            assert_eq!(mode(&data.join(f)), 0o600, "{f}");
        }
    }

    #[test]
    fn a_new_database_file_is_created_private() {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = dir.path().join("elsewhere.db");
        let text = format!(
            "data_dir = {:?}\n[database]\nurl = \"sqlite://{}\"\n",
            dir.path().join("data").display().to_string(),
            db.display()
        );
        let config = Config::parse(&text, Some(&dir.path().join("ratspost.toml"))).expect("config");
        secure(&config).expect("secure");
        assert_eq!(mode(&db), 0o600);
        assert_eq!(mode(&dir.path().join("data")), 0o700);
    }
}
