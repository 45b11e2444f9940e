//! Storage limitation (issue #15 §3) with the real daemon: a message purged under
//! `retention.message_days` leaves a SELECTed INBOX as an ordinary EXPUNGE — at once for a
//! session in IDLE, at the next NOOP for another (as VANISHED once it enabled QRESYNC) — and
//! a new SELECT no longer shows it; its row, verdict and audit entries stay, the run is
//! audited and a checkpoint covers it.
//!
//! A notice link to a purged message says its content was deleted; with `audit_days`, the
//! run cuts the audit log's start and checkpoints the cut.
//!
//! No test waits 90 days: the store's purge is called with a cut-off in the future, and the
//! retention task's run with a clock 100 days ahead.

use std::time::Duration;

use ratspost_tests::imap::Imap;
use ratspost_tests::server::Server;
use store::testing::TestDb;
use store::{MessageFilter, Role};

const ANNA: &str = "anna@stadt.test";
const DAY: i64 = 86_400_000;

fn mail(id: &str, subject: &str, body: &str) -> Vec<u8> {
    ratspost_tests::client::office_mail(id, ANNA, subject, body)
}

/// The first message's text, which must leave the database files with it.
const PURGED_TEXT: &str = "Die Sitzung beginnt um 18 Uhr.";

async fn purged_messages_leave_a_selected_inbox_as_an_expunge(db: TestDb) {
    let s = Server::start_on(db, "").await;
    let anna = s.add_user("anna", Role::Staff, &[ANNA]).await;
    let password = "retention-app-password";
    s.give_app_password(anna, "Laptop", password).await;
    // One after the other, so they are filed (and numbered) in this order.
    s.deliver(ANNA, &mail("clean", "Sitzung", PURGED_TEXT))
        .await;
    s.classified().await;
    s.deliver(
        ANNA,
        &mail(
            "secret",
            "Steuer",
            "Ihre Steuer-ID 86095742719 und Ihr Befund.",
        ),
    )
    .await;
    let listed = s.classified().await;
    let (first, second) = (listed[1].clone(), listed[0].clone());
    assert_eq!(second.sensitive, Some(true), "{second:?}");

    // `idle` waits in IDLE; `poll` enabled QRESYNC and asks with NOOP.
    let mut idle = Imap::connect_tls(s.imaps, &s.cert()).await;
    let mut poll = Imap::connect_tls(s.imaps, &s.cert()).await;
    for (c, t, enable) in [(&mut idle, "i", ""), (&mut poll, "p", "ENABLE QRESYNC")] {
        c.line().await;
        c.send(&format!("{t}1 LOGIN anna {password}\r\n")).await;
        c.until(&format!("{t}1 OK")).await;
        if !enable.is_empty() {
            c.send(&format!("{t}e {enable}\r\n")).await;
            c.until(&format!("{t}e OK")).await;
        }
        c.send(&format!("{t}2 SELECT INBOX\r\n")).await;
        let lines = c.until(&format!("{t}2 OK")).await;
        assert!(lines.iter().any(|l| l == "* 2 EXISTS"), "{lines:?}");
    }
    idle.send("i3 IDLE\r\n").await;
    assert!(idle.line().await.starts_with('+'));

    let before = s.store.list_audit(0, 10_000).await.expect("audit");
    // The first message's time has come (its links, if it had any, long expired).
    let report = s
        .store
        .purge_messages(first.received_at + 1, store::now_millis() + 100 * DAY, 500)
        .await
        .expect("purge");
    assert_eq!(report.messages, [first.id]);
    assert_eq!(report.expunged, 1);
    // SQLite: the bytes are gone from the files, not only from the tables.
    if let Some(path) = store::sqlite_path(&s.config.database.url) {
        for suffix in ["", "-wal"] {
            let file = format!("{}{suffix}", path.display());
            let bytes = std::fs::read(&file).unwrap_or_default();
            assert!(
                !bytes
                    .windows(PURGED_TEXT.len())
                    .any(|w| w == PURGED_TEXT.as_bytes()),
                "the purged text is still in {file}"
            );
        }
    }

    let expunge = tokio::time::timeout(Duration::from_secs(30), idle.line())
        .await
        .expect("IDLE did not report the purge");
    assert_eq!(expunge, "* 1 EXPUNGE");
    idle.send("DONE\r\n").await;
    idle.until("i3 OK").await;
    poll.send("p3 NOOP\r\n").await;
    let lines = poll.until("p3 OK").await;
    assert!(
        lines.iter().any(|l| l.starts_with("* VANISHED 1")),
        "QRESYNC session: {lines:?}"
    );
    idle.send("i4 FETCH 1 (UID)\r\n").await;
    let lines = idle.until("i4 OK").await;
    assert!(
        lines.iter().any(|l| l.starts_with("* 1 FETCH (UID 2)")),
        "the second message is number 1 now: {lines:?}"
    );

    // The retention task's own run, with a clock 100 days ahead: the second message goes
    // (its notice link has expired by then), one batch, audited, a checkpoint written.
    let retention = relay::retention::Retention {
        store: s.store.clone(),
        config: s.config.clone(),
        checkpoints: s.checkpoints.clone(),
    };
    let run = retention
        .run_once(store::now_millis() + 100 * DAY, &s.shutdown.stop)
        .await
        .expect("retention run");
    assert_eq!((run.messages, run.expunged, run.batches), (1, 1, 1));
    assert!(run.checkpoint, "a checkpoint covers the purge");
    idle.send("i5 NOOP\r\n").await;
    let lines = idle.until("i5 OK").await;
    assert!(lines.iter().any(|l| l == "* 1 EXPUNGE"), "{lines:?}");

    // A new SELECT: nothing left; the message rows are.
    let mut again = Imap::connect_tls(s.imaps, &s.cert()).await;
    again.line().await;
    again
        .send(&format!("n1 LOGIN anna {password}\r\nn2 SELECT INBOX\r\n"))
        .await;
    again.until("n1 OK").await;
    let lines = again.until("n2 OK").await;
    assert!(lines.iter().any(|l| l == "* 0 EXISTS"), "{lines:?}");
    let listed = s
        .store
        .list_messages(&MessageFilter::default())
        .await
        .expect("list");
    assert_eq!(listed.len(), 2);
    assert!(listed.iter().all(|m| m.purged_at.is_some()), "{listed:?}");
    assert_eq!(listed[0].sensitive, Some(true), "the verdict stays");
    let err = s
        .store
        .message_raw(second.id)
        .await
        .expect_err("purged original read");
    assert!(err.is_purged(), "{err}");
    let audit = s.store.list_audit(0, 10_000).await.expect("audit");
    let purges: Vec<_> = audit
        .iter()
        .filter(|e| e.action == store::PURGED_ACTION)
        .collect();
    assert_eq!(purges.len(), 2, "one entry per batch");
    assert_eq!(purges[1].subjects, [format!("message:{}", second.id)]);
    assert_eq!(purges[1].details["message_days"], 90);
    assert_eq!(
        &audit[..before.len()],
        &before[..],
        "the entries recorded before stay as they were"
    );
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn purged_messages_leave_a_selected_inbox_as_an_expunge_sqlite() {
    purged_messages_leave_a_selected_inbox_as_an_expunge(TestDb::sqlite()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn purged_messages_leave_a_selected_inbox_as_an_expunge_postgres() {
    if let Some(db) = TestDb::postgres("retention_imap_expunge").await {
        purged_messages_leave_a_selected_inbox_as_an_expunge(db).await;
    }
}

/// The notice link of a purged message opens a page that says its content was deleted
/// (not "expired", which would send its owner looking in the mailbox), and the refusal is
/// audited with that reason.
async fn a_notice_link_to_a_purged_message_says_so(db: TestDb) {
    use crate::viewer::{Setup, actions, login, setup};
    use ratspost_tests::http::Http;

    let Setup { s, token, .. } = setup(db).await;
    let path = format!("/m/{token}");
    let mut anna = Http::new(s.web, &s.cert());
    let r = login(&mut anna, &path, "anna", "anna-pass-1").await;
    assert_eq!(r.status, 303, "{r:?}");
    assert_eq!(anna.get(&path).await.status, 200, "before the purge");

    // The link is valid today; purged a hundred days later, whatever it says.
    let now = store::now_millis();
    let report = s
        .store
        .purge_messages(now + 1, now + 100 * DAY, 500)
        .await
        .expect("purge");
    assert_eq!(report.count(), 1);
    for page in [path.clone(), format!("{path}/original")] {
        let r = anna.get(&page).await;
        assert_eq!(r.status, 410, "{page}: {}", r.text());
        let html = r.text();
        assert!(html.contains("Nachricht gelöscht"), "{html}");
        assert!(!html.contains("abgelaufen"), "{html}");
    }
    let (action, actor, details) = actions(&s).await.pop().expect("audited");
    assert_eq!(
        (action.as_str(), actor.as_str()),
        ("notice.view_refused", "anna")
    );
    assert_eq!(details["reason"], store::PURGED_REASON);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_notice_link_to_a_purged_message_says_so_sqlite() {
    a_notice_link_to_a_purged_message_says_so(TestDb::sqlite()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_notice_link_to_a_purged_message_says_so_postgres() {
    if let Some(db) = TestDb::postgres("retention_notice_link").await {
        a_notice_link_to_a_purged_message_says_so(db).await;
    }
}

/// With `retention.audit_days`, the task's run cuts the audit log's start, and a checkpoint
/// written at once covers the cut; the rest still verifies.
async fn the_run_cuts_the_audit_log_and_a_checkpoint_covers_the_cut(db: TestDb) {
    let s = Server::start_full(db, "", "[retention]\naudit_days = 1\n").await;
    for n in 0..3 {
        s.store
            .append_audit(&store::NewAuditEntry {
                actor: "test".into(),
                action: "test.entry".into(),
                subjects: vec![format!("test:{n}")],
                details: serde_json::json!({}),
            })
            .await
            .expect("append");
    }
    // As if the log had been written three days ago: the entries' times moved back (the
    // chain rewritten with them), a checkpoint made then (it shows the entries' age: the
    // evidence a cut ends at), and one entry since.
    let mut aged = s.store.list_audit(0, 100).await.expect("audit");
    for e in &mut aged {
        e.at -= 3 * DAY;
    }
    store::testing::rewrite_audit(&s.store, &aged).await;
    let _ = std::fs::remove_file(&s.config.audit.checkpoint_file);
    relay::checkpoint::Signer::load(&s.config)
        .expect("key")
        .write(&s.store)
        .await
        .expect("checkpoint of the old entries");
    let (head, _) = s.store.audit_head().await.expect("head");
    s.store
        .append_audit(&store::NewAuditEntry {
            actor: "test".into(),
            action: "test.entry".into(),
            subjects: vec!["test:new".into()],
            details: serde_json::json!({}),
        })
        .await
        .expect("append");
    let retention = relay::retention::Retention {
        store: s.store.clone(),
        config: s.config.clone(),
        checkpoints: s.checkpoints.clone(),
    };
    // Every old entry up to the checkpointed one goes; the new one stays.
    let run = retention
        .run_once(store::now_millis(), &s.shutdown.stop)
        .await
        .expect("retention run");
    assert_eq!(run.messages, 0);
    assert_eq!(run.audit_cut, Some(head));
    assert!(run.checkpoint, "no checkpoint after the cut");
    let kept = s.store.list_audit(0, 100).await.expect("audit");
    assert_eq!(
        kept.iter().map(|e| e.action.as_str()).collect::<Vec<_>>(),
        ["test.entry", "audit.pruned"]
    );
    let (new_head, hash) = s.store.audit_head().await.expect("head");
    let checkpoint = relay::checkpoint::last_in(&s.config.audit.checkpoint_file)
        .expect("checkpoint file")
        .expect("a checkpoint");
    assert_eq!((checkpoint.seq, checkpoint.head), (new_head, hash));
    // The cut verifies with the installation's checkpoints (the evidence, and the one
    // after the cut), and not without them.
    let anchors = relay::checkpoint::installed_anchors(&s.config);
    assert!(matches!(
        s.store.verify_audit_anchored(&anchors).await.expect("verify"),
        store::AuditCheck::Intact { first, .. } if first == head + 1
    ));
    assert!(matches!(
        s.store.verify_audit().await.expect("verify"),
        store::AuditCheck::Broken { .. }
    ));
    // Nothing left to cut: no entry, no checkpoint.
    let again = retention
        .run_once(store::now_millis(), &s.shutdown.stop)
        .await
        .expect("retention run");
    assert_eq!(again, relay::retention::RunReport::default());
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_run_cuts_the_audit_log_and_a_checkpoint_covers_the_cut_sqlite() {
    the_run_cuts_the_audit_log_and_a_checkpoint_covers_the_cut(TestDb::sqlite()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_run_cuts_the_audit_log_and_a_checkpoint_covers_the_cut_postgres() {
    if let Some(db) = TestDb::postgres("retention_audit_cut").await {
        the_run_cuts_the_audit_log_and_a_checkpoint_covers_the_cut(db).await;
    }
}
