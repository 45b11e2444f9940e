//! `ratspost backup` and `ratspost restore` (issue #15 §4) through the real binary: a backup
//! made while mail arrives, restored on a fresh installation, verified, and served over IMAP
//! as the original served it; a backup changed after the fact is refused.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use ratspost_tests::client::{Client, message};
use ratspost_tests::daemon::{Daemon, app_password, enrol, ratspost, ratspost_ok, write_config};
use ratspost_tests::imap::Imap;
use store::testing::TestDb;

/// (UID, Message-ID) of every message in anna's INBOX, over IMAP with her app password.
async fn inbox(daemon: &Daemon, cert: &Path, password: &str) -> Vec<(u32, String)> {
    let mut c = Imap::connect_tls(daemon.imaps, cert).await;
    assert!(c.line().await.starts_with("* OK"));
    c.send(&format!("a LOGIN anna \"{password}\"\r\n")).await;
    let login = c.until("a ").await;
    assert!(
        login.last().is_some_and(|l| l.starts_with("a OK")),
        "{login:?}"
    );
    c.send("s SELECT INBOX\r\n").await;
    c.until("s OK").await;
    c.send("f UID FETCH 1:* (BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])\r\n")
        .await;
    let lines = c.until("f OK").await;
    let mut found = Vec::new();
    let mut uid = None;
    for line in lines {
        if let Some(rest) = line.split("UID ").nth(1) {
            uid = rest.split([' ', ')']).next().and_then(|u| u.parse().ok());
        }
        if let Some(id) = line.strip_prefix("Message-ID: <") {
            found.push((
                uid.expect("UID before the header"),
                id.trim_end_matches('>').to_owned(),
            ));
        }
    }
    c.send("l LOGOUT\r\n").await;
    found.sort();
    found
}

/// Waits until anna's INBOX holds at least `n` messages.
async fn wait_for(daemon: &Daemon, cert: &Path, password: &str, n: usize) -> Vec<(u32, String)> {
    for _ in 0..300 {
        let now = inbox(daemon, cert, password).await;
        if now.len() >= n {
            return now;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("fewer than {n} messages arrived");
}

async fn backup_while_mail_arrives_and_restore(db: TestDb) {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = write_config(dir.path(), &db.url, "");
    enrol(&config, "anna", "anna@stadt.test", "Erstes-Passwort-1");
    let password = app_password(&config, "anna", "Laptop");
    let daemon = Daemon::start(&config);
    let cert = dir.path().join("data/tls/cert.pem");
    let smtp = daemon.smtp;

    // Twenty messages first, then a steady stream while the backup runs.
    let sent = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let sender = {
        let (sent, stop) = (Arc::clone(&sent), Arc::clone(&stop));
        tokio::spawn(async move {
            let mut c = Client::greeted(smtp).await;
            c.ehlo().await;
            let mut n = 0;
            while n < 20 || !stop.load(Ordering::SeqCst) {
                let r = c
                    .send_mail(
                        "sender@upstream.test",
                        &["anna@stadt.test"],
                        &message(&format!("m{n}"), "Guten Tag"),
                    )
                    .await;
                assert_eq!(r.code, 250, "{r:?}");
                n += 1;
                sent.store(n, Ordering::SeqCst);
            }
            n
        })
    };
    while sent.load(Ordering::SeqCst) < 20 {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let before = wait_for(&daemon, &cert, &password, 20).await;
    let dest = dir.path().join("backup");
    let backup = {
        let (config, dest) = (config.clone(), dest.clone());
        tokio::task::spawn_blocking(move || {
            ratspost_ok(&config, &["backup", dest.to_str().expect("path")], None)
        })
    };
    let printed = backup.await.expect("backup");
    assert!(printed.contains("ratspost-checkpoint v1 "), "{printed}");
    let sqlite = store::sqlite_path(&db.url).is_some();
    if !sqlite {
        // PostgreSQL, as the README says: the dump right after `ratspost backup`.
        assert!(printed.contains("pg_dump"), "{printed}");
        pg_dump(&db.url, &dest.join("ratspost.dump"));
    }
    // A few more after the backup, which the backup cannot hold.
    let at_backup = sent.load(Ordering::SeqCst);
    while sent.load(Ordering::SeqCst) < at_backup + 5 {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    stop.store(true, Ordering::SeqCst);
    let total = sender.await.expect("sender");
    let original = wait_for(&daemon, &cert, &password, total).await;
    assert_eq!(original.len(), total);
    assert!(daemon.terminate().success());

    // Private, and complete.
    use std::os::unix::fs::PermissionsExt as _;
    let mode = |p: &Path| std::fs::metadata(p).expect("meta").permissions().mode() & 0o777;
    assert_eq!(mode(&dest), 0o700);
    for name in [
        "backup.json",
        "keys/dkim.key",
        "keys/srs.key",
        "audit-checkpoints.txt",
        "tls/cert.pem",
        "tls/key.pem",
        "ratspost.toml",
    ] {
        assert_eq!(mode(&dest.join(name)), 0o600, "{name}");
    }
    assert_eq!(dest.join("ratspost.db").exists(), sqlite);
    assert!(
        !dest.join("keys/audit-checkpoint.key").exists(),
        "the signing key never leaves the machine"
    );
    if !sqlite {
        return restore_postgres(&db, &config, &dest, &password, &before, &original).await;
    }

    // The key the backup must be signed with, as the DPO noted it from a checkpoint line.
    let key = key_in(&printed);
    let fresh = tempfile::tempdir().expect("tempdir");
    let fresh_config = write_config(
        fresh.path(),
        &format!(
            "sqlite://{}",
            fresh.path().join("data/ratspost.db").display()
        ),
        "",
    );
    let restore = |src: &Path, extra: &[&str]| {
        let mut args = vec!["restore", src.to_str().expect("path")];
        args.extend_from_slice(extra);
        ratspost(&fresh_config, &args, None)
    };
    let refused = |out: std::process::Output, why: &str| {
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert_eq!(out.status.code(), Some(1), "{stderr}");
        assert!(stderr.contains(why), "expected {why:?}: {stderr}");
        assert!(
            !fresh.path().join("data/ratspost.db").exists(),
            "nothing was put in place"
        );
    };
    // A new machine has no key of its own: one must be named.
    refused(restore(&dest, &[]), "no key to check the backup with");
    // A changed backup is refused before anything is touched: a damaged file…
    let damaged = fresh.path().join("damaged");
    copy_dir(&dest, &damaged);
    std::fs::write(damaged.join("keys/srs.key"), "00").expect("write");
    refused(restore(&damaged, &["--key", &key]), "changed or damaged");
    // …a file replaced by a link to someone else's…
    let linked = fresh.path().join("linked");
    copy_dir(&dest, &linked);
    std::fs::remove_file(linked.join("keys/srs.key")).expect("rm");
    std::os::unix::fs::symlink("/etc/hostname", linked.join("keys/srs.key")).expect("symlink");
    refused(restore(&linked, &["--key", &key]), "symbolic link");
    // …and a database whose audit log was rewritten consistently, with the manifest's
    // hashes and head fixed to match: the manifest's signature finds it.
    let rewritten = fresh.path().join("rewritten");
    copy_dir(&dest, &rewritten);
    let url = format!("sqlite://{}", rewritten.join("ratspost.db").display());
    let copy = store::Store::open(&url, &store::StoreOptions::default())
        .await
        .expect("open");
    let mut entries = copy.list_audit(0, 10_000).await.expect("list");
    entries.remove(0);
    store::testing::rewrite_audit(&copy, &entries).await;
    let (seq, head) = copy.audit_head().await.expect("head");
    // Folded back into the file, as a careful forger would, so only the content differs.
    store::testing::raw_execute(&copy, "PRAGMA wal_checkpoint(TRUNCATE)").await;
    copy.close().await;
    for suffix in ["-wal", "-shm"] {
        let _ = std::fs::remove_file(rewritten.join(format!("ratspost.db{suffix}")));
    }
    let manifest_path = rewritten.join("backup.json");
    let mut manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&manifest_path).expect("read"))
            .expect("json");
    manifest["audit_seq"] = seq.into();
    manifest["audit_head"] = head.into();
    manifest["files"]["ratspost.db"] = ratspost_tests::client::sha256(
        &std::fs::read(rewritten.join("ratspost.db")).expect("read"),
    )
    .into();
    std::fs::write(&manifest_path, manifest.to_string()).expect("write");
    refused(
        restore(&rewritten, &["--key", &key]),
        "signature does not verify",
    );
    refused(
        restore(&rewritten, &["--trust-backup-key"]),
        "signature does not verify",
    );

    // The real backup restores on the fresh installation, verifies, and serves the mail.
    let restored = ratspost_ok(
        &fresh_config,
        &["restore", dest.to_str().expect("path"), "--key", &key],
        None,
    );
    assert!(restored.contains("audit chain intact"), "{restored}");
    assert!(restored.contains("ratspost.db"), "{restored}");
    let verified = ratspost_ok(&fresh_config, &["audit", "verify"], None);
    assert!(verified.contains("audit chain intact"), "{verified}");
    assert!(verified.contains("matched"), "{verified}");
    let again = restore(&dest, &[]);
    assert_eq!(
        again.status.code(),
        Some(1),
        "an existing database is not overwritten without --replace"
    );
    let daemon = Daemon::start(&fresh_config);
    // Never under a running daemon, not even with --replace.
    let running = restore(&dest, &["--replace"]);
    assert_eq!(running.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&running.stderr).contains("is running"),
        "{}",
        String::from_utf8_lossy(&running.stderr)
    );
    let fresh_cert = fresh.path().join("data/tls/cert.pem");
    let served = wait_for(&daemon, &fresh_cert, &password, before.len()).await;
    assert!(daemon.terminate().success());
    same_mail(&before, &served, &original);
    // Stopped, --replace restores again (the old machine's key named: this one made its own)
    // and keeps the replaced files.
    let replaced = ratspost_ok(
        &fresh_config,
        &[
            "restore",
            dest.to_str().expect("path"),
            "--replace",
            "--key",
            &key,
        ],
        None,
    );
    assert!(replaced.contains("were kept"), "{replaced}");
    let data = fresh.path().join("data");
    let kept = |data: &Path| -> Vec<String> {
        std::fs::read_dir(data)
            .expect("data dir")
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .filter(|n| {
                n.starts_with("ratspost.db.before-restore-")
                    && !n.ends_with("-wal")
                    && !n.ends_with("-shm")
            })
            .collect()
    };
    // Again at once (within the same second): what the last one put in place is kept too,
    // under its own name.
    let before_again = kept(&data).len();
    ratspost_ok(
        &fresh_config,
        &[
            "restore",
            dest.to_str().expect("path"),
            "--replace",
            "--key",
            &key,
        ],
        None,
    );
    assert_eq!(kept(&data).len(), before_again + 1, "{:?}", kept(&data));
    // A restore that cannot finish (here: a key cannot be staged) replaces nothing.
    let database =
        ratspost_tests::client::sha256(&std::fs::read(data.join("ratspost.db")).expect("db"));
    std::fs::create_dir(data.join("srs.key.restoring")).expect("mkdir");
    let failed = restore(&dest, &["--replace", "--key", &key]);
    assert_eq!(failed.status.code(), Some(1));
    assert_eq!(
        ratspost_tests::client::sha256(&std::fs::read(data.join("ratspost.db")).expect("db")),
        database,
        "the database was not touched"
    );
    assert_eq!(kept(&data).len(), before_again + 1);
    assert!(!data.join("ratspost.db.restoring").exists());
}

/// The public key (`key=…`) of the checkpoint line in `text`.
fn key_in(text: &str) -> String {
    text.split(" key=")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .expect("a checkpoint line")
        .to_owned()
}

/// Everything in anna's INBOX before the backup began is served after the restore, under the
/// same UIDs; every other message served is one the original received, once. (Messages the
/// backup caught between intake and filing are filed after the restore, in that run's order,
/// so their UIDs may differ from the original's.)
fn same_mail(before: &[(u32, String)], served: &[(u32, String)], original: &[(u32, String)]) {
    for m in before {
        assert!(
            served.contains(m),
            "{m:?} missing after restore: {served:?}"
        );
    }
    let mut ids: Vec<&String> = served.iter().map(|(_, id)| id).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(
        ids.len(),
        served.len(),
        "a message served twice: {served:?}"
    );
    for (_, id) in served {
        assert!(
            original.iter().any(|(_, o)| o == id),
            "{id} was never received: {original:?}"
        );
    }
}

fn pg_dump(url: &str, file: &Path) {
    let status = std::process::Command::new("pg_dump")
        .args([
            "--format=custom",
            "--file",
            file.to_str().expect("path"),
            url,
        ])
        .status()
        .expect("pg_dump");
    assert!(status.success());
}

fn pg_restore(file: &Path, url: &str) {
    let status = std::process::Command::new("pg_restore")
        .args(["--no-owner", "--dbname", url, file.to_str().expect("path")])
        .status()
        .expect("pg_restore");
    assert!(status.success());
}

/// PostgreSQL: the database comes back with pg_restore into a new database, then `ratspost
/// restore` checks it against the backup and brings back the keys and checkpoints.
async fn restore_postgres(
    db: &TestDb,
    config: &Path,
    dest: &Path,
    password: &str,
    before: &[(u32, String)],
    original: &[(u32, String)],
) {
    let key = key_in(&std::fs::read_to_string(dest.join("audit-checkpoints.txt")).expect("read"));
    // A dump of another database (here: an empty installation's) is not the backup's:
    // refused.
    let Some(other) = TestDb::postgres("backup_restore_other").await else {
        return;
    };
    let elsewhere = tempfile::tempdir().expect("tempdir");
    let other_config = write_config(elsewhere.path(), &other.url, "");
    ratspost_ok(&other_config, &["init"], None);
    let refused = ratspost(
        &other_config,
        &["restore", dest.to_str().expect("path"), "--key", &key],
        None,
    );
    assert_eq!(refused.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains("does not match the backup") && stderr.contains("do not use it"),
        "{stderr}"
    );
    // pg_restore has put that database in place: serve stays off it until someone looked.
    let serve = ratspost(&other_config, &["serve"], None);
    assert_eq!(serve.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&serve.stderr).contains("a restore was refused"));
    // A dump taken after the audit log moved on (entries written between backup and dump)
    // still holds the backup's history: accepted.
    app_password(config, "anna", "Telefon");
    let later = dest.join("later.dump");
    pg_dump(&db.url, &later);
    let Some(moved) = TestDb::postgres("backup_restore_later").await else {
        return;
    };
    pg_restore(&later, &moved.url);
    let fresh = tempfile::tempdir().expect("tempdir");
    let moved_config = write_config(fresh.path(), &moved.url, "");
    let accepted = ratspost_ok(
        &moved_config,
        &["restore", dest.to_str().expect("path"), "--key", &key],
        None,
    );
    assert!(accepted.contains("audit chain intact"), "{accepted}");

    // The dump made with the backup restores, verifies and serves the mail.
    let Some(copy) = TestDb::postgres("backup_restore_copy").await else {
        return;
    };
    pg_restore(&dest.join("ratspost.dump"), &copy.url);
    let fresh = tempfile::tempdir().expect("tempdir");
    let fresh_config = write_config(fresh.path(), &copy.url, "");
    let restored = ratspost_ok(
        &fresh_config,
        &["restore", dest.to_str().expect("path"), "--key", &key],
        None,
    );
    assert!(restored.contains("audit chain intact"), "{restored}");
    assert!(fresh.path().join("data/dkim.key").exists(), "{restored}");
    let verified = ratspost_ok(&fresh_config, &["audit", "verify"], None);
    assert!(verified.contains("matched"), "{verified}");
    let daemon = Daemon::start(&fresh_config);
    let served = wait_for(
        &daemon,
        &fresh.path().join("data/tls/cert.pem"),
        password,
        before.len(),
    )
    .await;
    assert!(daemon.terminate().success());
    same_mail(before, &served, original);
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("read") {
        let entry = entry.expect("entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("type").is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backup_while_mail_arrives_and_restore_sqlite() {
    backup_while_mail_arrives_and_restore(TestDb::sqlite()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backup_while_mail_arrives_and_restore_postgres() {
    if let Some(db) = TestDb::postgres("backup_while_mail_arrives").await {
        backup_while_mail_arrives_and_restore(db).await;
    }
}
