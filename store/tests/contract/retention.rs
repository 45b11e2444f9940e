//! Contract tests of storage limitation (issue #15 §3): which messages are purged, what goes
//! with them and what stays.

use std::collections::HashSet;

use store::testing::{TestDb, raw_execute};
use store::{
    AuditCheck, MailboxNotice, MessageFilter, Millis, NoticeAccess, NoticeView, PURGED_ACTION,
    PURGED_REASON, Store, VerdictGate, VerdictRecord,
};

use super::{message, queued, staff};

const DAY: Millis = 86_400_000;

/// How a test message ends up.
#[derive(Clone, Copy)]
enum Made {
    /// Only committed by SMTP intake.
    Received,
    /// Classified, but its forward decisions not made yet.
    Classified,
    /// Processed as sensitive, with a mailbox notice whose link expires at this time.
    Notice(Millis),
    /// Processed as clean: the original is in the mailbox, there is no link.
    Clean,
}

/// A message for `user_id` received at `received_at`, brought as far as `made` says.
async fn make(store: &Store, user_id: i64, name: &str, received_at: Millis, made: Made) -> i64 {
    let mut m = message(user_id, "anna@stadt.test", name);
    m.received_at = received_at;
    let id = store.insert_message(m).await.expect("message");
    if matches!(made, Made::Received) {
        return id;
    }
    let sensitive = matches!(made, Made::Notice(_));
    let categories: Vec<String> = if sensitive {
        vec!["health".into()]
    } else {
        Vec::new()
    };
    store
        .record_verdict(
            id,
            &VerdictRecord {
                sensitive,
                categories: categories.clone(),
                findings: "[]".into(),
            },
        )
        .await
        .expect("verdict");
    let notices = match made {
        Made::Notice(expires) => vec![MailboxNotice {
            user_id,
            body: format!("Subject: notice {name}\r\n\r\nlink\r\n").into_bytes(),
            token: (format!("token-{name}"), expires),
        }],
        Made::Clean => Vec::new(),
        Made::Received | Made::Classified => return id,
    };
    assert!(
        store
            .complete_processing(id, "sha", &categories, &[], &notices, store::now_millis())
            .await
            .expect("processed")
    );
    id
}

/// A job of message `id` in `state` (`held`: queued and held for review); its id.
async fn job(store: &Store, id: i64, n: usize, state: &str) -> i64 {
    let job = store
        .enqueue(&queued(n), None, Some(id), store::now_millis())
        .await
        .expect("job");
    let set = match state {
        "queued" => return job,
        "held" => "held_at = 1".to_owned(),
        other => format!("state = '{other}'"),
    };
    raw_execute(
        store,
        &format!("UPDATE outbound_jobs SET {set} WHERE id = {job}"),
    )
    .await;
    job
}

async fn purged_entries(store: &Store) -> Vec<store::AuditEntry> {
    store
        .list_audit(0, 10_000)
        .await
        .expect("audit")
        .into_iter()
        .filter(|e| e.action == PURGED_ACTION)
        .collect()
}

pub(super) async fn retention_purges_only_messages_whose_time_has_come(db: &TestDb) {
    let store = db.open().await;
    let anna = store
        .create_user(&staff("anna", &["anna@stadt.test"]))
        .await
        .expect("anna");
    let now = store::now_millis();
    let old = now - 100 * DAY;
    let cut = now - 90 * DAY;
    let expired = Made::Notice(now - 1);
    let valid = Made::Notice(now + DAY);

    // Due: links expired, revoked, or none; jobs finished.
    let expired_link = make(&store, anna.id, "expired", old, expired).await;
    let revoked_link = make(&store, anna.id, "revoked", old, valid).await;
    store
        .revoke_notice_tokens(revoked_link, "admin", now)
        .await
        .expect("revoke");
    let clean = make(&store, anna.id, "clean", old, Made::Clean).await;
    let delivered = job(&store, clean, 1, "delivered").await;
    let failed_forward = make(&store, anna.id, "failed", old, expired).await;
    let failed = job(&store, failed_forward, 2, "failed").await;
    let due = [expired_link, revoked_link, clean, failed_forward];

    // Not due, each for one reason.
    let young = make(&store, anna.id, "young", now - 10 * DAY, expired).await;
    let link_valid = make(&store, anna.id, "valid", old, valid).await;
    let forward_queued = make(&store, anna.id, "queued", old, expired).await;
    let queued_job = job(&store, forward_queued, 3, "queued").await;
    let forward_held = make(&store, anna.id, "held", old, expired).await;
    job(&store, forward_held, 4, "held").await;
    let received = make(&store, anna.id, "received", old, Made::Received).await;
    let classified = make(&store, anna.id, "classified", old, Made::Classified).await;
    let kept = [
        young,
        link_valid,
        forward_queued,
        forward_held,
        received,
        classified,
    ];

    let inbox = store.mailbox(anna.id, "INBOX").await.expect("INBOX");
    let before = store.mailbox_entries(inbox.id).await.expect("entries");
    assert_eq!(before.len(), 8, "every processed message was filed");
    let mut changes = store.mailbox_changes();
    let audit_before = store.list_audit(0, 10_000).await.expect("audit").len();

    let report = store.purge_messages(cut, now, 100).await.expect("purge");
    let mut expected = due.to_vec();
    expected.sort_unstable();
    assert_eq!(report.messages, expected);
    assert_eq!(report.expunged, 4, "one INBOX entry each");
    assert_eq!(report.job_bodies, 2, "the delivered and the failed job");
    assert_eq!(
        changes.try_recv().ok(),
        Some(anna.id),
        "IMAP sessions woken"
    );

    // The content is gone, and says so.
    for id in due {
        let err = store.message_raw(id).await.expect_err("purged original");
        assert!(err.is_purged(), "{id}: {err}");
        assert!(err.to_string().contains("retention.message_days"), "{err}");
        let err = store
            .mailbox_copy(id, anna.id)
            .await
            .expect_err("notice or original still there");
        assert!(err.is_purged(), "{err}");
    }
    for id in kept {
        store.message_raw(id).await.expect("kept original");
    }
    assert!(
        store
            .outbound_body(delivered)
            .await
            .expect("job")
            .is_empty()
    );
    assert!(store.outbound_body(failed).await.expect("job").is_empty());
    assert!(
        !store
            .outbound_body(queued_job)
            .await
            .expect("job")
            .is_empty()
    );
    let err = store
        .retry_job(failed, now)
        .await
        .expect_err("an emptied job sent again");
    assert!(err.is_purged(), "{err}");

    // The mailbox lost exactly those entries, as by EXPUNGE: a new HIGHESTMODSEQ and the
    // UIDs recorded for QRESYNC.
    let after = store.mailbox_entries(inbox.id).await.expect("entries");
    assert_eq!(after.len(), 4);
    let gone: Vec<i64> = before
        .iter()
        .map(|e| e.uid)
        .filter(|uid| !after.iter().any(|a| a.uid == *uid))
        .collect();
    assert_eq!(gone.len(), 4);
    let fresh = store.mailbox_by_id(inbox.id).await.expect("INBOX");
    assert!(fresh.highest_modseq > inbox.highest_modseq);
    assert_eq!(
        store
            .expunged_since(inbox.id, inbox.highest_modseq)
            .await
            .expect("expunged"),
        gone
    );
    for uid in &gone {
        assert!(store.entry_content(inbox.id, *uid).await.is_err());
    }

    // Metadata, verdicts, recipients and the audit trail stay.
    let listed = store
        .list_messages(&MessageFilter::default())
        .await
        .expect("list");
    assert_eq!(listed.len(), 10, "no message row removed");
    for m in &listed {
        assert_eq!(
            m.purged_at.is_some(),
            due.contains(&m.id),
            "message {}",
            m.id
        );
        assert_eq!(m.recipients, ["anna@stadt.test"]);
    }
    let expired_row = listed.iter().find(|m| m.id == expired_link).expect("row");
    assert_eq!(expired_row.state, "processed");
    assert_eq!(expired_row.sensitive, Some(true));
    assert_eq!(expired_row.categories, ["health"]);
    assert!(
        expired_row
            .purged_at
            .is_some_and(|t| (store::now_millis() - t).abs() < 60_000),
        "purged_at records the run, by the wall clock: {:?}",
        expired_row.purged_at
    );
    assert!(
        store
            .verdict(expired_link)
            .await
            .expect("verdict")
            .is_some()
    );
    let audit = store.list_audit(0, 10_000).await.expect("audit");
    assert_eq!(audit.len(), audit_before + 1, "one entry for the batch");
    assert!(
        audit.iter().any(|e| e.action == "notice.links_revoked"
            && e.subjects == [format!("message:{revoked_link}")]),
        "earlier entries about a purged message stay"
    );
    let entry = audit.last().expect("entry");
    assert_eq!(entry.action, PURGED_ACTION);
    assert_eq!(entry.actor, "system");
    assert_eq!(
        entry.subjects,
        expected
            .iter()
            .map(|id| format!("message:{id}"))
            .collect::<Vec<_>>()
    );
    assert_eq!(entry.details["count"], 4);
    assert_eq!(entry.details["message_days"], 90);
    assert_eq!(report.audit_seq, Some(entry.seq));
    assert!(matches!(
        store.verify_audit().await.expect("verify"),
        AuditCheck::Intact { .. }
    ));

    // Its link says why it opens nothing (rather than "expired": the original is not in
    // the mailbox any more), and that is audited like every refusal.
    let opened = store
        .open_notice(
            &NoticeView {
                token_hash: "token-expired",
                user_id: anna.id,
                login: "anna",
                ip: "192.0.2.1",
                what: "message",
                gate: VerdictGate::Open,
            },
            now,
        )
        .await
        .expect("open");
    assert_eq!(
        opened,
        NoticeAccess::Refused {
            reason: PURGED_REASON
        }
    );
    let refusal = store.list_audit(0, 10_000).await.expect("audit");
    let refusal = refusal.last().expect("entry");
    assert_eq!(refusal.action, "notice.view_refused");
    assert_eq!(refusal.details["reason"], PURGED_REASON);

    // Already purged: nothing again, no second entry.
    let again = store.purge_messages(cut, now, 100).await.expect("purge");
    assert_eq!(again, store::PurgeReport::default());
    assert_eq!(purged_entries(&store).await.len(), 1);

    // Each kept message goes once its reason is gone.
    let later = now + 2 * DAY;
    raw_execute(
        &store,
        &format!("UPDATE outbound_jobs SET state = 'delivered' WHERE id = {queued_job}"),
    )
    .await;
    let report = store.purge_messages(cut, later, 100).await.expect("purge");
    let mut expected = vec![link_valid, forward_queued];
    expected.sort_unstable();
    assert_eq!(report.messages, expected, "link expired, forward delivered");
    let report = store
        .purge_messages(later - 5 * DAY, later, 100)
        .await
        .expect("purge");
    assert_eq!(report.messages, [young], "old enough now");
    for id in [forward_held, received, classified] {
        store.message_raw(id).await.expect("still kept");
    }
}

pub(super) async fn retention_purges_in_batches_once_across_nodes(db: &TestDb) {
    let first = db.open().await;
    let second = db.open().await;
    let anna = first
        .create_user(&staff("anna", &["anna@stadt.test"]))
        .await
        .expect("anna");
    let now = store::now_millis();
    let mut ids = HashSet::new();
    for n in 0..9 {
        ids.insert(
            make(
                &first,
                anna.id,
                &format!("m{n}"),
                now - 100 * DAY,
                Made::Notice(now - 1),
            )
            .await,
        );
    }
    // Both nodes run their retention task at the same moment, in batches of two.
    let run = |store: Store| async move {
        let mut batches = Vec::new();
        loop {
            let report = store
                .purge_messages(now - 90 * DAY, now, 2)
                .await
                .expect("purge");
            if report.messages.is_empty() {
                return batches;
            }
            assert!(report.count() <= 2);
            batches.push(report.messages);
        }
    };
    let (a, b) = tokio::join!(
        tokio::spawn(run(first.clone())),
        tokio::spawn(run(second.clone()))
    );
    let batches: Vec<Vec<i64>> = a
        .expect("first")
        .into_iter()
        .chain(b.expect("second"))
        .collect();
    let purged: Vec<i64> = batches.iter().flatten().copied().collect();
    assert_eq!(purged.len(), 9, "each message purged once: {batches:?}");
    assert_eq!(purged.iter().copied().collect::<HashSet<_>>(), ids);
    let entries = purged_entries(&first).await;
    assert_eq!(entries.len(), batches.len(), "one audit entry per batch");
    let audited: Vec<String> = entries.iter().flat_map(|e| e.subjects.clone()).collect();
    assert_eq!(audited.len(), 9, "no message audited twice");
    let inbox = first.mailbox(anna.id, "INBOX").await.expect("INBOX");
    assert!(
        first
            .mailbox_entries(inbox.id)
            .await
            .expect("entries")
            .is_empty()
    );
    assert_eq!(
        first
            .expunged_since(inbox.id, 0)
            .await
            .expect("expunged")
            .len(),
        9
    );
    assert!(matches!(
        first.verify_audit().await.expect("verify"),
        AuditCheck::Intact { .. }
    ));
}
