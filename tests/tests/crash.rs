//! Accepted means durable: SIGKILL the daemon right after the last `250` and find every
//! message after a restart (on SQLite and on PostgreSQL).

use std::collections::BTreeSet;

use store::testing::TestDb;

use ratspost_tests::client::{Client, message, sha256};
use ratspost_tests::daemon::{Daemon, enrol, ratspost_ok, write_config};

const CONNECTIONS: usize = 10;
const PER_CONNECTION: usize = 20;

async fn crash_after_250_loses_nothing(db: TestDb) {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = write_config(dir.path(), &db.url, "");
    // enrol sets the installation up with `ratspost init` first.
    enrol(&config, "anna", "anna@stadt.test", "Sommer2026!");
    let daemon = Daemon::start(&config);

    let tasks: Vec<_> = (0..CONNECTIONS)
        .map(|conn| {
            let addr = daemon.smtp;
            tokio::spawn(async move {
                let mut acked = Vec::new();
                let mut c = Client::greeted(addr).await;
                c.ehlo().await;
                for n in 0..PER_CONNECTION {
                    let id = format!("crash-{conn}-{n}");
                    // Sizes vary so that no two messages share a hash by accident.
                    let body =
                        message(&id, &"Inhalt einer Ratsvorlage. ".repeat(10 + conn * 7 + n));
                    let r = c
                        .send_mail("sender@upstream.test", &["anna@stadt.test"], &body)
                        .await;
                    r.expect(250, "2.0.0");
                    acked.push((format!("{id}@upstream.test"), sha256(&body)));
                }
                acked
            })
        })
        .collect();
    let mut acked = BTreeSet::new();
    for task in tasks {
        acked.extend(task.await.expect("client task"));
    }
    // Right after the last 250: no shutdown code runs.
    daemon.kill();
    assert_eq!(acked.len(), CONNECTIONS * PER_CONNECTION);

    let restarted = Daemon::start(&config);
    let listed = ratspost_ok(&config, &["message", "list", "--json"], None);
    let listed: Vec<serde_json::Value> = serde_json::from_str(&listed).expect("json");
    let found: BTreeSet<(String, String)> = listed
        .iter()
        .map(|m| {
            (
                m["message_id"].as_str().expect("message_id").to_owned(),
                m["sha256"].as_str().expect("sha256").to_owned(),
            )
        })
        .collect();
    let missing: Vec<_> = acked.difference(&found).collect();
    assert!(missing.is_empty(), "lost after SIGKILL: {missing:?}");
    assert_eq!(listed.len(), acked.len(), "extra or duplicate messages");
    // The restarted daemon resumes: every message gets classified and processed.
    let mut states = Vec::new();
    for _ in 0..300 {
        let now = ratspost_ok(&config, &["message", "list", "--json"], None);
        let now: Vec<serde_json::Value> = serde_json::from_str(&now).expect("json");
        states = now
            .iter()
            .map(|m| m["state"].as_str().unwrap_or("").to_owned())
            .collect();
        if states.iter().all(|s| s == "processed") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(
        states.iter().all(|s| s == "processed"),
        "not all classified after restart: {states:?}"
    );
    assert!(
        listed
            .iter()
            .all(|m| m["recipients"] == serde_json::json!(["anna@stadt.test"]))
    );

    // The restarted daemon takes mail again.
    let mut c = Client::greeted(restarted.smtp).await;
    c.ehlo().await;
    c.send_mail(
        "sender@upstream.test",
        &["anna@stadt.test"],
        &message("after-restart", "x"),
    )
    .await
    .expect(250, "2.0.0");
    assert!(restarted.terminate().success(), "clean exit on SIGTERM");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_after_250_loses_nothing_sqlite() {
    crash_after_250_loses_nothing(TestDb::sqlite()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_after_250_loses_nothing_postgres() {
    if let Some(db) = TestDb::postgres("crash_after_250_loses_nothing").await {
        crash_after_250_loses_nothing(db).await;
    }
}
