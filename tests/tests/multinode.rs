//! Two `ratspost serve` processes on one PostgreSQL share the queue: 500 queued jobs are
//! delivered exactly once between them.

use std::collections::HashSet;

use ratspost_tests::daemon::{Daemon, share_keys, write_config};
use ratspost_tests::sink::{Sink, SinkOptions};
use store::testing::TestDb;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_deliver_500_jobs_exactly_once() {
    let Some(db) = TestDb::postgres("two_nodes_deliver_500_jobs_exactly_once").await else {
        return;
    };
    let sink = Sink::start(SinkOptions::default()).await;
    let delivery = format!(
        "[delivery]\nsmarthost = \"{}\"\ntls = \"none\"\nconcurrency = 8\nretry_base_secs = 1\nretry_max_secs = 1\n",
        sink.addr
    );
    let mut nodes: Vec<(Daemon, tempfile::TempDir)> = Vec::new();
    for name in ["node-a", "node-b"] {
        let dir = tempfile::tempdir().expect("tempdir");
        let config = write_config(
            dir.path(),
            &db.url,
            &format!("hostname = \"{name}.test\"\n{delivery}"),
        );
        // The second node gets the first one's keys, as the README says (it refuses without).
        if let Some((_, first)) = nodes.first() {
            share_keys(&first.path().join("ratspost.toml"), &config);
        }
        nodes.push((Daemon::start(&config), dir));
    }
    let store = db.open().await;
    let now = store::now_millis();
    for n in 0..500 {
        let mail = store::QueuedMail {
            kind: "confirmation".into(),
            mail_from: "ratspost@stadt.test".into(),
            rcpt_to: format!("r{n}@example.net"),
            body: format!("Subject: job {n}\r\n\r\nx\r\n").into_bytes(),
        };
        store
            .enqueue(&mail, None, None, now)
            .await
            .expect("enqueue");
    }
    let got = sink.wait_for(500).await;
    // Give a second delivery of any job the chance to show up.
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    let got = if sink.received().len() > got.len() {
        sink.received()
    } else {
        got
    };
    let rcpts: Vec<String> = got.iter().flat_map(|r| r.rcpt.clone()).collect();
    let distinct: HashSet<&String> = rcpts.iter().collect();
    assert_eq!(rcpts.len(), 500, "{} deliveries for 500 jobs", rcpts.len());
    assert_eq!(distinct.len(), 500);
    let by_a = got.iter().filter(|r| r.helo == "node-a.test").count();
    let by_b = got.iter().filter(|r| r.helo == "node-b.test").count();
    assert_eq!(by_a + by_b, 500);
    assert!(by_a > 0 && by_b > 0, "both nodes deliver: {by_a} + {by_b}");
    let jobs = store.list_outbound(1000).await.expect("jobs");
    assert!(
        jobs.iter()
            .all(|j| j.state == "delivered" && j.attempts == 1),
        "every job delivered in one attempt"
    );
    store.close().await;
    for (node, _dir) in nodes {
        assert!(node.terminate().success());
    }
}
