//! `ratspost audit` through the real binary: entries written by user administration, list,
//! export, and verify failing after a row is edited in the database.

use ratspost_tests::daemon::{
    Daemon, enrol, ratspost, ratspost_as_ok, ratspost_in, ratspost_ok, write_config,
};
use store::testing::{TestDb, raw_execute};

/// Runs `ratspost ARGS` and asserts that it fails with status 1 saying `why`.
#[track_caller]
fn fails(config: &std::path::Path, args: &[&str], why: &str) {
    let out = ratspost(config, args, None);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(1), "{args:?}: {stderr}");
    assert!(stderr.contains(why), "{args:?}: expected {why:?}: {stderr}");
}

async fn audit_cli(db: TestDb) {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = write_config(dir.path(), &db.url, "");
    enrol(&config, "anna", "anna@stadt.test", "Erstes-Passwort-1");
    enrol(&config, "bert", "bert@stadt.test", "Erstes-Passwort-2");
    ratspost_as_ok(
        &config,
        &["user", "passwd", "anna", "--password-stdin"],
        "Erstes-Passwort-1",
        Some("Zweites-Passwort-1"),
    );

    let listed: serde_json::Value =
        serde_json::from_str(&ratspost_ok(&config, &["audit", "list", "--json"], None))
            .expect("json");
    let actions: Vec<&str> = listed
        .as_array()
        .expect("array")
        .iter()
        .map(|e| e["action"].as_str().expect("action"))
        .collect();
    assert_eq!(
        actions,
        ["user.created", "user.created", "user.password_changed"]
    );
    assert_eq!(listed[0]["subjects"], serde_json::json!(["user:anna"]));
    // Each change names who proved it: the admin who added, anna who changed her own.
    assert_eq!(listed[0]["actor"], "admin");
    assert_eq!(listed[2]["actor"], "anna");
    assert_eq!(listed[2]["prev_hash"], listed[1]["hash"]);
    let all = ratspost_ok(&config, &["audit", "list"], None);
    assert!(
        !all.contains("Passwort"),
        "passwords never reach the audit log: {all}"
    );

    let ok = ratspost_ok(&config, &["audit", "verify"], None);
    assert!(ok.contains("audit chain intact: 3 entries"), "{ok}");

    let jsonl = ratspost_ok(&config, &["audit", "export", "--format", "jsonl"], None);
    // The three entries, and the checkpoint setup wrote.
    assert_eq!(jsonl.lines().count(), 3 + 1);
    let csv = ratspost_ok(&config, &["audit", "export", "--format", "csv"], None);
    let mut lines = csv.lines();
    assert_eq!(
        lines.next(),
        Some("seq,time,actor,action,subjects,details,prev_hash,hash")
    );
    assert!(lines.next().expect("row").starts_with("1,"), "{csv}");

    // An administrator with database access rewrites history.
    let store = store::Store::open(&db.url, &store::StoreOptions::default())
        .await
        .expect("open");
    raw_execute(
        &store,
        "UPDATE audit_log SET actor = 'someone-else' WHERE seq = 2",
    )
    .await;
    store.close().await;
    let broken = ratspost(&config, &["audit", "verify"], None);
    assert_eq!(broken.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&broken.stderr);
    assert!(stderr.contains("audit chain broken at entry 2"), "{stderr}");
}

#[tokio::test]
async fn audit_list_export_and_verify_sqlite() {
    audit_cli(TestDb::sqlite()).await;
}

#[tokio::test]
async fn audit_list_export_and_verify_postgres() {
    if let Some(db) = TestDb::postgres("audit_list_export_and_verify").await {
        audit_cli(db).await;
    }
}

/// Issue #15 §1: an administrator with database access rewrites the log with consistent
/// hashes and a new head; the signed checkpoints the daemon wrote outside the database find
/// it, on this machine and on another one from an export.
async fn checkpoints_find_a_consistent_rewrite(db: TestDb) {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = write_config(dir.path(), &db.url, "");
    enrol(&config, "anna", "anna@stadt.test", "Erstes-Passwort-1");
    enrol(&config, "bert", "bert@stadt.test", "Erstes-Passwort-2");
    // Setup (init) wrote the first checkpoint with the key.
    let checkpoints = dir.path().join("data/audit-checkpoints.txt");
    let first = std::fs::read_to_string(&checkpoints).expect("checkpoint file");
    assert!(
        first.starts_with("ratspost-checkpoint v1 seq=0 "),
        "{first}"
    );

    // The daemon writes one at start (the log moved since the file's last) and logs it; at
    // shutdown nothing moved, so no third one.
    let daemon = Daemon::start(&config);
    let (status, log) = daemon.terminate_with_log();
    assert!(status.success(), "{log}");
    let written = std::fs::read_to_string(&checkpoints).expect("checkpoint file");
    assert_eq!(written.lines().count(), 2, "{written}");
    let line = written.lines().last().expect("line");
    assert!(
        line.starts_with("ratspost-checkpoint v1 seq=2 head="),
        "{line}"
    );
    assert!(
        log.contains(line),
        "the checkpoint is in the log for journald: {log}"
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode =
            |p: &std::path::Path| std::fs::metadata(p).expect("meta").permissions().mode() & 0o777;
        assert_eq!(mode(&checkpoints), 0o600);
        assert_eq!(mode(&dir.path().join("data/audit-checkpoint.key")), 0o600);
    }

    // More history, and a checkpoint on demand.
    ratspost_as_ok(
        &config,
        &["user", "passwd", "anna", "--password-stdin"],
        "Erstes-Passwort-1",
        Some("Zweites-Passwort-1"),
    );
    let on_demand = ratspost_ok(&config, &["audit", "checkpoint"], None);
    assert!(
        on_demand.starts_with("ratspost-checkpoint v1 seq=3 "),
        "{on_demand}"
    );
    let ok = ratspost_ok(&config, &["audit", "verify"], None);
    assert!(ok.contains("audit chain intact: 3 entries"), "{ok}");
    assert!(ok.contains("checkpoints: 3 matched"), "{ok}");

    // The export carries the checkpoints and verifies where there is no installation.
    let export = ratspost_ok(&config, &["audit", "export"], None);
    assert_eq!(export.lines().count(), 3 + 3, "{export}");
    let elsewhere = tempfile::tempdir().expect("tempdir");
    let file = elsewhere.path().join("audit.jsonl");
    std::fs::write(&file, &export).expect("write");
    let key = line
        .split(" key=")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .expect("key")
        .to_owned();
    let file_arg = file.to_str().expect("path");
    let there = ratspost_in(
        elsewhere.path(),
        &[],
        &["audit", "verify", "--export", file_arg, "--key", &key],
        None,
    );
    let out = String::from_utf8_lossy(&there.stdout);
    assert!(
        there.status.success(),
        "{out}{}",
        String::from_utf8_lossy(&there.stderr)
    );
    assert!(out.contains("checkpoints: 3 matched"), "{out}");
    // The DPO keeps only the first checkpoint (mailed to them): enough to anchor.
    let kept = elsewhere.path().join("kept.txt");
    std::fs::write(&kept, format!("> {line}\n")).expect("write");

    // The attack: entry 2 deleted, the rest renumbered and rehashed, the head moved.
    let store = store::Store::open(&db.url, &store::StoreOptions::default())
        .await
        .expect("open");
    let mut entries = store.list_audit(0, 100).await.expect("list");
    entries.remove(1);
    store::testing::rewrite_audit(&store, &entries).await;
    assert!(
        matches!(
            store.verify_audit().await.expect("verify"),
            store::AuditCheck::Intact { entries: 2, .. }
        ),
        "consistent in itself: the hash chain alone cannot see it"
    );
    store.close().await;

    let broken = ratspost(&config, &["audit", "verify"], None);
    assert_eq!(broken.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&broken.stderr);
    assert!(stderr.contains("audit chain broken at entry 2"), "{stderr}");
    assert!(stderr.contains("checkpoint of"), "{stderr}");
    assert!(stderr.contains("rewritten"), "{stderr}");
    // Even with the file on this machine gone, the DPO's copy finds it.
    std::fs::remove_file(&checkpoints).expect("rm");
    fails(
        &config,
        &[
            "audit",
            "verify",
            "--checkpoints",
            kept.to_str().expect("path"),
        ],
        "kept.txt, line 1",
    );
    // A copy whose line was edited to fit the rewrite is refused, not trusted.
    let forged = elsewhere.path().join("forged.txt");
    std::fs::write(&forged, line.replace(" seq=2 ", " seq=1 ")).expect("write");
    fails(
        &config,
        &[
            "audit",
            "verify",
            "--checkpoints",
            forged.to_str().expect("path"),
        ],
        "does not verify",
    );
    // A checkpoint by another key (a new one made by whoever rewrote the log) is refused:
    // the installation's key is trusted by default.
    let other = dir.path().join("other.toml");
    std::fs::write(
        &other,
        std::fs::read_to_string(&config).expect("config")
            + "\n[audit]\ncheckpoint_key = \"other.key\"\ncheckpoint_file = \"other-checkpoints.txt\"\n",
    )
    .expect("write");
    let forger = ratspost_ok(&other, &["audit", "checkpoint"], None);
    let forged_file = elsewhere.path().join("by-other-key.txt");
    std::fs::write(&forged_file, &forger).expect("write");
    fails(
        &config,
        &[
            "audit",
            "verify",
            "--checkpoints",
            forged_file.to_str().expect("path"),
        ],
        "not by a trusted key",
    );
}

#[tokio::test]
async fn checkpoints_find_a_consistent_rewrite_sqlite() {
    checkpoints_find_a_consistent_rewrite(TestDb::sqlite()).await;
}

#[tokio::test]
async fn checkpoints_find_a_consistent_rewrite_postgres() {
    if let Some(db) = TestDb::postgres("checkpoints_find_a_consistent_rewrite").await {
        checkpoints_find_a_consistent_rewrite(db).await;
    }
}

/// With `audit.checkpoint_to`, the daemon mails its checkpoint to the data-protection officer
/// through the smarthost, DKIM-signed, and the mail as received proves the log.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_checkpoint_is_mailed_to_the_dpo_and_proves_the_log() {
    use ratspost_tests::sink::{Sink, SinkOptions};
    let sink = Sink::start(SinkOptions::default()).await;
    let config = format!(
        "[delivery]\nsmarthost = \"{}\"\ntls = \"none\"\nretry_base_secs = 1\nretry_max_secs = 1\ntimeout_secs = 5\n\
         [audit]\ncheckpoint_to = \"datenschutz@stadt.test\"\n",
        sink.addr
    );
    let s = ratspost_tests::server::Server::start_full(TestDb::sqlite(), "", &config).await;
    let mail = sink
        .wait_until(|m| m.rcpt == ["datenschutz@stadt.test"])
        .await;
    let text = String::from_utf8_lossy(&mail.data).into_owned();
    assert!(
        text.contains("Subject: =?utf-8?") || text.contains("Prüfpunkt"),
        "{text}"
    );
    assert!(text.contains("DKIM-Signature:"), "{text}");
    let found = relay::checkpoint::find_in_file(&mail.data);
    let checkpoint = found
        .iter()
        .find_map(|(_, c)| c.as_ref().ok())
        .unwrap_or_else(|| panic!("no valid checkpoint in the mail: {found:?}\n{text}"));
    let anchor = checkpoint.anchor("the DPO's mail");
    assert!(matches!(
        s.store
            .verify_audit_anchored(&[anchor])
            .await
            .expect("verify"),
        store::AuditCheck::Intact {
            anchors_matched: 1,
            ..
        }
    ));
    // Only one mail however often checkpoints are written within checkpoint_mail_hours.
    s.add_user("anna", store::Role::Staff, &["anna@stadt.test"])
        .await;
    relay::checkpoint::Signer::load(&s.config)
        .expect("key")
        .write(&s.store)
        .await
        .expect("checkpoint");
    s.stop().await;
    assert_eq!(
        sink.received()
            .iter()
            .filter(|m| m.rcpt == ["datenschutz@stadt.test"])
            .count(),
        1
    );
    sink.stop();
}

/// What an independent attack on the checkpoints found, each refused now: a checkpoint key
/// that is missing or junk beside a checkpoint file, a file with no checkpoint in it, an
/// export without a trusted key or with a changed time, the key signing a rewritten log.
#[tokio::test]
async fn verification_fails_closed() {
    let db = TestDb::sqlite();
    let dir = tempfile::tempdir().expect("tempdir");
    let config = write_config(dir.path(), &db.url, "");
    enrol(&config, "anna", "anna@stadt.test", "Erstes-Passwort-1");
    let line = ratspost_ok(&config, &["audit", "checkpoint"], None);
    let key = line
        .split(" key=")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .expect("key")
        .to_owned();
    // `key=` as grep prints it, and a second key after a key change, are fine.
    let prefixed = format!("key={key}");
    let other = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";
    let ok = ratspost_ok(
        &config,
        &["audit", "verify", "--key", &prefixed, "--key", other],
        None,
    );
    assert!(ok.contains("checkpoints: 2 matched"), "{ok}");
    let usage = ratspost(&config, &["audit", "verify", "--key", "nonsense"], None);
    assert_eq!(usage.status.code(), Some(2), "a usage error");
    assert!(String::from_utf8_lossy(&usage.stderr).contains("is not a public key"));
    // A file with nothing in it that looks like a checkpoint is no pass.
    let junk = dir.path().join("junk.bin");
    std::fs::write(&junk, [0u8, 159, 146, 150, 10, 13, 255]).expect("write");
    fails(
        &config,
        &[
            "audit",
            "verify",
            "--checkpoints",
            junk.to_str().expect("path"),
        ],
        "holds no checkpoint",
    );

    // The export, elsewhere: without a key to trust, or with a time changed, refused.
    let export = ratspost_ok(&config, &["audit", "export"], None);
    let elsewhere = tempfile::tempdir().expect("tempdir");
    let file = elsewhere.path().join("audit.jsonl");
    std::fs::write(&file, &export).expect("write");
    let unpinned = ratspost_in(
        elsewhere.path(),
        &[],
        &["audit", "verify", "--export", file.to_str().expect("path")],
        None,
    );
    assert_eq!(unpinned.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&unpinned.stderr).contains("key you trust"));
    let first_time = export
        .split("\"time\":\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("time")
        .to_owned();
    std::fs::write(
        &file,
        export.replacen(&first_time, "2025-01-01T00:00:00Z", 1),
    )
    .expect("write");
    let retimed = ratspost_in(
        elsewhere.path(),
        &[],
        &[
            "audit",
            "verify",
            "--export",
            file.to_str().expect("path"),
            "--key",
            &key,
        ],
        None,
    );
    assert_eq!(retimed.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&retimed.stderr).contains("is not its hashed time"));

    // The key never signs a log that no longer fits its last checkpoint.
    let store = store::Store::open(&db.url, &store::StoreOptions::default())
        .await
        .expect("open");
    let mut entries = store.list_audit(0, 100).await.expect("list");
    entries[0].actor = "someone-else".into();
    store::testing::rewrite_audit(&store, &entries).await;
    store.close().await;
    fails(&config, &["audit", "checkpoint"], "refusing to sign");
    fails(
        &config,
        &["backup", dir.path().join("b").to_str().expect("path")],
        "refusing to sign",
    );

    // Checkpoints beside a missing or broken key prove nothing: an error, not a pass.
    // An emptied checkpoint file beside the key is no pass either.
    let file = dir.path().join("data/audit-checkpoints.txt");
    let kept = std::fs::read(&file).expect("checkpoints");
    std::fs::write(&file, "").expect("empty");
    fails(&config, &["audit", "verify"], "was removed or emptied");
    std::fs::write(&file, kept).expect("restore");
    let key_file = dir.path().join("data/audit-checkpoint.key");
    std::fs::write(&key_file, "not hex").expect("write");
    fails(&config, &["audit", "verify"], "is not a checkpoint key");
    std::fs::remove_file(&key_file).expect("rm");
    fails(&config, &["audit", "verify"], "is missing");
}
