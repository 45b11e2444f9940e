//! Contract tests of what several nodes share (issue #16): a delivery's lease renewed while it
//! runs, the pipeline's claims on messages, the keys every node must have.

use store::testing::TestDb;
use store::{MessageState, VerdictRecord};

use super::{anna_with_messages, message, queued};

pub(super) async fn a_renewed_lease_keeps_the_job_and_a_lost_one_says_so(db: &TestDb) {
    let store = db.open().await;
    store
        .enqueue(&queued(1), None, None, 1000)
        .await
        .expect("enqueue");
    let job = store
        .lease_jobs("slow-node", 1000, 1010, 10)
        .await
        .expect("lease");
    assert_eq!(job.len(), 1);
    let id = job[0].id;
    // Renewed before it ran out: another node finds nothing to take after the first end.
    assert!(
        store
            .renew_lease(id, "slow-node", 2000)
            .await
            .expect("renew")
    );
    assert!(
        store
            .lease_jobs("other", 1500, 9000, 10)
            .await
            .expect("lease")
            .is_empty(),
        "a renewed lease holds past its first end"
    );
    assert!(
        !store.renew_lease(id, "other", 9000).await.expect("renew"),
        "only the holder renews"
    );
    // Run out and taken: the slow node's renewal and result are refused.
    let taken = store
        .lease_jobs("other", 2001, 9000, 10)
        .await
        .expect("lease");
    assert_eq!(taken.len(), 1);
    assert!(
        !store
            .renew_lease(id, "slow-node", 9999)
            .await
            .expect("renew"),
        "lost"
    );
    let late = store
        .finish_job(&job[0], "slow-node", &store::JobOutcome::Delivered, 2002)
        .await;
    assert!(late.expect_err("lease lost").is_conflict());
    store
        .finish_job(&taken[0], "other", &store::JobOutcome::Delivered, 2003)
        .await
        .expect("the holder records");
    assert!(
        !store.renew_lease(id, "other", 9999).await.expect("renew"),
        "a finished job has no lease to renew"
    );
    let jobs = store.list_outbound(10).await.expect("list");
    assert_eq!((jobs[0].state.as_str(), jobs[0].attempts), ("delivered", 1));
    // A job in delivery is not dropped by hand (its end may be on the way); once its lease
    // is over it is, and a late renewal of the old lease then fails.
    store
        .enqueue(&queued(2), None, None, 3000)
        .await
        .expect("enqueue");
    let second = store
        .lease_jobs("node", 3000, 9000, 10)
        .await
        .expect("lease");
    let busy = store.drop_job(second[0].id, "admin", 3001).await;
    assert!(busy.expect_err("in delivery").is_conflict());
    store
        .drop_job(second[0].id, "admin", 9001)
        .await
        .expect("drop");
    assert!(
        !store
            .renew_lease(second[0].id, "node", 99_999)
            .await
            .expect("renew")
    );
    store.close().await;
}

pub(super) async fn each_pending_message_is_claimed_by_one_node(db: &TestDb) {
    let a = db.open().await;
    let b = db.open().await;
    let (user, ids) = anna_with_messages(&a, &["anna@stadt.test"], "claim", 40).await;
    let now = store::now_millis();
    if db.url.starts_with("sqlite:") {
        // One daemon serves an SQLite database (it holds `<database>.lock`): nothing is
        // claimed, the pending messages are read, oldest first, up to the limit.
        assert_eq!(
            a.claim_messages("node-a:1:x", now, now + 60_000, 7)
                .await
                .expect("pending"),
            ids[..7]
        );
        a.record_verdict(ids[0], &clean()).await.expect("verdict");
        raw_processed(&a, ids[0]).await;
        assert_eq!(
            a.claim_messages("node-a:1:x", now, now + 60_000, 100)
                .await
                .expect("pending"),
            ids[1..]
        );
        a.close().await;
        b.close().await;
        return;
    }
    // Both nodes claim at once, in rounds, as their pipelines do.
    let (mut by_a, mut by_b) = (Vec::new(), Vec::new());
    loop {
        let (x, y) = tokio::join!(
            a.claim_messages("node-a:1:x", now, now + 60_000, 7),
            b.claim_messages("node-b:2:y", now, now + 60_000, 7),
        );
        let (x, y) = (x.expect("claim"), y.expect("claim"));
        if x.is_empty() && y.is_empty() {
            break;
        }
        // A claimed message counts as done for this test: take it out of the pending set.
        for id in x.iter().chain(&y) {
            a.record_verdict(*id, &clean()).await.expect("verdict");
            raw_processed(&a, *id).await;
        }
        by_a.extend(x);
        by_b.extend(y);
    }
    let mut all: Vec<i64> = by_a.iter().chain(&by_b).copied().collect();
    all.sort_unstable();
    let n = all.len();
    all.dedup();
    assert_eq!(n, all.len(), "a message was claimed by both nodes");
    assert_eq!(all, ids, "every message was claimed");

    // A claim holds against others until it runs out; the owner claims its own again.
    let late = a
        .insert_message(message(user, "anna@stadt.test", "late"))
        .await
        .expect("message");
    let now = store::now_millis();
    assert_eq!(
        a.claim_messages("node-a:1:x", now, now + 1000, 10)
            .await
            .expect("claim"),
        [late]
    );
    assert!(
        b.claim_messages("node-b:2:y", now, now + 1000, 10)
            .await
            .expect("claim")
            .is_empty()
    );
    assert_eq!(
        a.claim_messages("node-a:1:x", now, now + 1000, 10)
            .await
            .expect("claim"),
        [late],
        "a node takes up again what it claimed (a retry after a failure)"
    );
    assert_eq!(
        b.claim_messages("node-b:2:y", now + 1001, now + 9000, 10)
            .await
            .expect("claim"),
        [late],
        "a dead node's claim runs out"
    );
    // Released by prefix: a restarted node gives up its earlier run's claims, not others'.
    assert_eq!(
        a.release_message_claims("node-a:").await.expect("release"),
        0
    );
    assert_eq!(
        a.release_message_claims("node-b:").await.expect("release"),
        1
    );
    assert_eq!(
        a.claim_messages("node-a:3:z", now + 1002, now + 9000, 10)
            .await
            .expect("claim"),
        [late]
    );
    // `%` and `_` in a name are no wildcards.
    assert_eq!(
        a.release_message_claims("node_a").await.expect("release"),
        0
    );
    assert_eq!(a.release_message_claims("%").await.expect("release"), 0);
    a.close().await;
    b.close().await;
}

pub(super) async fn shared_keys_are_recorded_once_and_differences_found(db: &TestDb) {
    let store = db.open().await;
    let keys = [("srs.key", "aa".to_owned()), ("dkim.key", "bb".to_owned())];
    assert!(
        store
            .check_shared_keys("node-a", &keys, 1000)
            .await
            .expect("check")
            .is_empty()
    );
    assert!(
        store
            .check_shared_keys("node-b", &keys, 2000)
            .await
            .expect("check")
            .is_empty(),
        "the same keys on another node"
    );
    let other = [("srs.key", "aa".to_owned()), ("dkim.key", "cc".to_owned())];
    let found = store
        .check_shared_keys("node-c", &other, 3000)
        .await
        .expect("check");
    assert_eq!(found.len(), 1);
    assert_eq!(
        (
            found[0].name.as_str(),
            found[0].recorded_by.as_str(),
            found[0].recorded_at
        ),
        ("dkim.key", "node-a", 1000)
    );
    // A key that appears later (a generated certificate) is recorded by whoever has it first.
    let more = [
        ("srs.key", "aa".to_owned()),
        ("dkim.key", "bb".to_owned()),
        ("tls.cert", "dd".to_owned()),
    ];
    assert!(
        store
            .check_shared_keys("node-b", &more, 4000)
            .await
            .expect("check")
            .is_empty()
    );
    // Adopted on purpose: the new keys are the installation's, audited.
    store
        .adopt_shared_keys("node-c", &other, "admin", 5000)
        .await
        .expect("adopt");
    assert!(
        store
            .check_shared_keys("node-c", &other, 6000)
            .await
            .expect("check")
            .is_empty()
    );
    assert_eq!(
        store
            .check_shared_keys("node-a", &keys, 7000)
            .await
            .expect("check")
            .len(),
        1
    );
    let audit = store.list_audit(0, 10).await.expect("audit");
    assert!(
        audit
            .iter()
            .any(|e| e.action == "keys.adopted" && e.actor == "admin")
    );
    store.close().await;
}

fn clean() -> VerdictRecord {
    VerdictRecord {
        sensitive: false,
        categories: Vec::new(),
        findings: "[]".into(),
    }
}

/// Moves a classified message on to `processed` the way the forward decisions do.
async fn raw_processed(store: &store::Store, id: i64) {
    let done = store
        .complete_processing(id, "sha", &[], &[], &[], store::now_millis())
        .await
        .expect("processed");
    assert!(done);
    assert!(
        store
            .messages_in_state(MessageState::Classified, 100)
            .await
            .expect("list")
            .iter()
            .all(|m| *m != id)
    );
}
