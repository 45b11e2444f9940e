//! `ratspost audit` through the real binary: entries written by user administration, list,
//! export, and verify failing after a row is edited in the database.

use ratspost_tests::daemon::{enrol, ratspost, ratspost_as_ok, ratspost_ok, write_config};
use store::testing::{TestDb, raw_execute};

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
    assert_eq!(jsonl.lines().count(), 3);
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
