//! The store's contract, run against SQLite and against PostgreSQL (the latter when
//! `RATSPOST_TEST_PG_URL` is set; see `store::testing`).

use std::collections::{HashMap, HashSet};

use store::testing::{TestDb, raw_execute};
use store::{
    AuditCheck, FlagOp, MessageFilter, MessageState, NewAuditEntry, NewMessage, NewUser,
    NoticeAccess, NoticeView, RecipientLookup, Role, Store, StoredRecipient, VerdictGate,
    VerdictRecord, password,
};

/// Generates `sqlite::NAME` and `postgres::NAME` for every contract test `NAME(&TestDb)`.
macro_rules! contract {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let db = store::testing::TestDb::sqlite();
                    super::$name(&db).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    if let Some(db) = store::testing::TestDb::postgres(stringify!($name)).await {
                        super::$name(&db).await;
                    }
                }
            )*
        }
    };
}

/// One day in milliseconds.
const DAY: i64 = 24 * 60 * 60 * 1000;

contract!(
    users_are_created_listed_and_unique,
    invalid_users_are_refused,
    recipients_are_classified,
    passwords_can_be_changed,
    users_are_found_by_login_or_any_address,
    messages_roundtrip_with_recipients,
    concurrent_inserts_are_all_committed,
    a_failing_message_does_not_fail_its_batch,
    data_survives_reopening,
    audit_chain_verifies_and_detects_a_changed_row,
    audit_chain_detects_deleted_and_reordered_rows,
    audit_appends_are_serialised,
    audit_rewritten_with_consistent_hashes_is_found_by_anchors,
    audit_cut_by_retention_still_verifies,
    audit_cut_forged_after_the_newest_checkpoint_is_not_believed,
    audit_times_that_go_back_are_found,
    verdicts_move_messages_to_classified_once,
    exemption_full_lifecycle,
    exemption_four_eyes_and_dpo,
    exemption_policy_is_enforced,
    exemption_codes_lock_and_expire,
    exemption_follow_ups_continue_without_gap,
    queue_leases_deliver_each_job_once,
    queue_leases_expire_and_outcomes_are_recorded,
    exemption_reminders_are_queued_once,
    web_sessions_expire_and_end,
    notice_links_open_only_for_their_owner_and_every_attempt_is_audited,
    notice_downloads_follow_the_verdict_gate_and_refusals_are_audited,
    mailboxes_keep_uids_flags_and_modseqs,
    mailbox_entries_never_serve_a_sensitive_original,
    mailbox_hierarchy_recent_and_uidvalidity_issue_13,
    subscriptions_are_kept_by_name_and_outlive_delete,
    app_passwords_are_listed_used_and_revoked,
    app_passwords_are_issued_and_withdrawn_with_audit,
    length_limits_count_characters_not_bytes,
    failed_logins_are_counted_before_the_check_and_ban_addresses,
    parallel_login_attempts_each_get_their_own_count,
    login_names_are_counted_normalised_and_parallel_guesses_stop_at_the_ban,
    credential_changes_are_announced_and_devices_rechecked,
    login_history_flags_new_addresses_merges_repeats_and_is_bounded,
    users_list_and_end_their_own_web_sessions,
    exemption_links_find_their_request,
    held_notices_are_listed_and_links_reissued,
    users_are_disabled_and_enabled_with_audit,
    audit_is_searched_by_user_type_and_time,
    audit_counts_forwards_notices_and_views,
    messages_are_filtered_by_verdict_and_paged,
    queue_pages_and_forwards_per_exemption,
    submissions_are_queued_held_released_and_counted,
    retention_purges_only_messages_whose_time_has_come,
    retention_purges_in_batches_once_across_nodes,
    a_renewed_lease_keeps_the_job_and_a_lost_one_says_so,
    each_pending_message_is_claimed_by_one_node,
    shared_keys_are_recorded_once_and_differences_found,
    pending_messages_are_read_together_and_completed_in_one_commit,
    a_completion_expecting_another_state_changes_nothing,
    a_failing_completion_fails_its_whole_batch,
);

#[path = "contract/admin.rs"]
mod admin;
use admin::*;

#[path = "contract/retention.rs"]
mod retention;
use retention::*;

#[path = "contract/nodes.rs"]
mod nodes;
use nodes::*;

#[path = "contract/processing.rs"]
mod processing;
use processing::*;

fn staff(login: &str, addresses: &[&str]) -> NewUser {
    NewUser {
        login: login.to_owned(),
        name: format!("Name of {login}"),
        role: Role::Staff,
        // A real hash is slow on purpose; the contract only needs a stored string.
        password_hash: format!("$test${login}"),
        addresses: addresses.iter().map(|a| (*a).to_owned()).collect(),
    }
}

fn message(user_id: i64, to: &str, body: &str) -> NewMessage {
    let raw = format!("Message-ID: <{body}@example.org>\r\nSubject: t\r\n\r\n{body}\r\n");
    NewMessage {
        received_at: store::now_millis(),
        mail_from: "sender@example.org".into(),
        helo: "upstream.example.org".into(),
        peer_ip: "127.0.0.1".into(),
        tls: false,
        sha256: format!("sha-of-{body}"),
        message_id: Some(format!("{body}@example.org")),
        raw: raw.into_bytes(),
        recipients: vec![StoredRecipient {
            address: to.into(),
            user_id,
        }],
    }
}

/// Creates user anna with `addresses` and `count` messages to the first of them, with the
/// bodies `{prefix}0`, `{prefix}1`, …; returns her id and theirs, in order.
async fn anna_with_messages(
    store: &Store,
    addresses: &[&str],
    prefix: &str,
    count: usize,
) -> (i64, Vec<i64>) {
    let anna = store
        .create_user(&staff("anna", addresses))
        .await
        .expect("anna")
        .id;
    let mut ids = Vec::with_capacity(count);
    for n in 0..count {
        ids.push(
            store
                .insert_message(message(anna, addresses[0], &format!("{prefix}{n}")))
                .await
                .expect("insert"),
        );
    }
    (anna, ids)
}

async fn users_are_created_listed_and_unique(db: &TestDb) {
    let store = db.open().await;
    let anna = store
        .create_user(&staff(
            "Anna",
            &["Anna.Schmidt@Stadt.example", "a.s@fraktion.example"],
        ))
        .await
        .expect("create anna");
    assert_eq!(anna.login, "anna");
    assert_eq!(
        anna.addresses,
        vec!["a.s@fraktion.example", "anna.schmidt@stadt.example"]
    );
    store
        .create_user(&NewUser {
            role: Role::Admin,
            ..staff("bert", &["bert@stadt.example"])
        })
        .await
        .expect("create bert");

    let users = store.list_users().await.expect("list");
    assert_eq!(
        users.iter().map(|u| u.login.as_str()).collect::<Vec<_>>(),
        ["anna", "bert"]
    );
    assert_eq!(users[1].role, Role::Admin);
    assert_eq!(users[0].addresses.len(), 2);

    let dup_login = store
        .create_user(&staff("ANNA", &["other@stadt.example"]))
        .await;
    assert!(dup_login.expect_err("duplicate login").is_conflict());
    let dup_address = store
        .create_user(&staff("carla", &["bert@STADT.example"]))
        .await;
    assert!(dup_address.expect_err("duplicate address").is_conflict());
    // The failed insert left no half-created user behind.
    assert!(
        store
            .user_by_login("carla")
            .await
            .expect_err("absent")
            .is_not_found()
    );
    assert_eq!(store.count_users().await.expect("count"), 2);
}

async fn invalid_users_are_refused(db: &TestDb) {
    let store = db.open().await;
    for bad in ["", "has space", "semi;colon", &"x".repeat(65)] {
        let err = store.create_user(&staff(bad, &["x@stadt.example"])).await;
        assert_eq!(
            err.expect_err(bad).kind(),
            store::ErrorKind::Invalid,
            "{bad:?}"
        );
    }
    for bad in ["no-at-sign", "@stadt.example", "anna@", "a b@stadt.example"] {
        let err = store.create_user(&staff("anna", &[bad])).await;
        assert_eq!(
            err.expect_err(bad).kind(),
            store::ErrorKind::Invalid,
            "{bad:?}"
        );
    }
    assert_eq!(store.count_users().await.expect("count"), 0);
}

async fn recipients_are_classified(db: &TestDb) {
    let store = db.open().await;
    let anna = store
        .create_user(&staff("anna", &["anna@stadt.example"]))
        .await
        .expect("create");
    assert_eq!(
        store
            .lookup_recipient("ANNA@Stadt.Example")
            .await
            .expect("lookup"),
        RecipientLookup::Enrolled(anna.id)
    );
    assert_eq!(
        store
            .lookup_recipient("nobody@stadt.example")
            .await
            .expect("lookup"),
        RecipientLookup::UnknownLocal
    );
    assert_eq!(
        store
            .lookup_recipient("anna@elsewhere.example")
            .await
            .expect("lookup"),
        RecipientLookup::Foreign
    );
    assert!(store.lookup_recipient("not an address").await.is_err());
}

async fn passwords_can_be_changed(db: &TestDb) {
    let store = db.open().await;
    let first = password::hash("erstes Passwort").expect("hash");
    store
        .create_user(&NewUser {
            password_hash: first,
            ..staff("anna", &["anna@stadt.example"])
        })
        .await
        .expect("create");
    let stored = store.password_hash("anna").await.expect("hash");
    assert!(password::verify("erstes Passwort", &stored));
    // A web session opened with the first password, and one of another user.
    let anna = store.user_by_name("anna").await.expect("anna").id;
    store
        .create_user(&staff("bernd", &["bernd@stadt.example"]))
        .await
        .expect("bernd");
    let bernd = store.user_by_name("bernd").await.expect("bernd").id;
    let now = store::now_millis();
    for (token, user) in [("anna-session", anna), ("bernd-session", bernd)] {
        store
            .create_web_session(token, user, "csrf", "127.0.0.1", now, now + 3_600_000)
            .await
            .expect("session");
    }

    let second = password::hash("zweites Passwort").expect("hash");
    store.set_password_hash("Anna", &second).await.expect("set");
    // The change ends anna's sessions, not bernd's.
    assert!(
        store
            .web_session("anna-session", now)
            .await
            .expect("read")
            .is_none()
    );
    assert!(
        store
            .web_session("bernd-session", now)
            .await
            .expect("read")
            .is_some()
    );
    let stored = store.password_hash("anna").await.expect("hash");
    assert!(password::verify("zweites Passwort", &stored));
    assert!(!password::verify("erstes Passwort", &stored));

    assert!(
        store
            .set_password_hash("nobody", &second)
            .await
            .expect_err("nobody")
            .is_not_found()
    );
}

async fn users_are_found_by_login_or_any_address(db: &TestDb) {
    let store = db.open().await;
    let anna = store
        .create_user(&staff(
            "anna",
            &["anna.schmidt@stadt.example", "a.s@fraktion.example"],
        ))
        .await
        .expect("anna");
    store
        .create_user(&staff("bert", &["bert@stadt.example"]))
        .await
        .expect("bert");
    for name in [
        "anna",
        " ANNA ",
        "anna.schmidt@stadt.example",
        "Anna.Schmidt@STADT.example",
        "A.S@Fraktion.Example",
    ] {
        let found = store.user_by_name(name).await.expect(name);
        assert_eq!(found, anna, "{name}");
    }
    // Nobody, a foreign address, a near miss and garbage are all the same "not found".
    for name in [
        "nobody",
        "nobody@stadt.example",
        "anna@stadt.example",
        "anna.schmidt@stadt.example.evil",
        "@",
        "a b@c",
        "",
    ] {
        assert!(
            store
                .user_by_name(name)
                .await
                .expect_err(name)
                .is_not_found(),
            "{name}"
        );
    }
    // The login name still means the login, and the password is found through the user.
    let bert = store
        .user_by_name("bert@stadt.example")
        .await
        .expect("bert");
    assert_eq!(bert.login, "bert");
    assert_eq!(
        store.password_hash(&bert.login).await.expect("hash"),
        "$test$bert"
    );
}

async fn messages_roundtrip_with_recipients(db: &TestDb) {
    let store = db.open().await;
    let anna = store
        .create_user(&staff("anna", &["anna@stadt.example"]))
        .await
        .expect("anna");
    let bert = store
        .create_user(&staff("bert", &["bert@stadt.example"]))
        .await
        .expect("bert");
    let mut both = message(anna.id, "anna@stadt.example", "both");
    both.recipients.push(StoredRecipient {
        address: "bert@stadt.example".into(),
        user_id: bert.id,
    });
    let raw = both.raw.clone();
    let both_id = store.insert_message(both).await.expect("insert");
    let only_anna = store
        .insert_message(message(anna.id, "anna@stadt.example", "only-anna"))
        .await
        .expect("insert");

    assert_eq!(store.message_raw(both_id).await.expect("raw"), raw);
    assert!(
        store
            .message_raw(999_999)
            .await
            .expect_err("absent")
            .is_not_found()
    );

    let all = store
        .list_messages(&MessageFilter::default())
        .await
        .expect("list");
    assert_eq!(
        all.iter().map(|m| m.id).collect::<Vec<_>>(),
        [only_anna, both_id]
    );
    let listed = &all[1];
    assert_eq!(
        listed.recipients,
        ["anna@stadt.example", "bert@stadt.example"]
    );
    assert_eq!(listed.size, i64::try_from(raw.len()).expect("size"));
    assert_eq!(listed.sha256, "sha-of-both");
    assert_eq!(listed.message_id.as_deref(), Some("both@example.org"));
    assert_eq!(listed.state, "received");

    let berts = store
        .list_messages(&MessageFilter {
            user: Some("bert".into()),
            limit: None,
            ..Default::default()
        })
        .await
        .expect("list bert");
    assert_eq!(berts.iter().map(|m| m.id).collect::<Vec<_>>(), [both_id]);

    let newest = store
        .list_messages(&MessageFilter {
            user: None,
            limit: Some(1),
            ..Default::default()
        })
        .await
        .expect("limit");
    assert_eq!(newest.len(), 1);

    let pending = store
        .messages_in_state(MessageState::Received, 100)
        .await
        .expect("pending");
    assert_eq!(pending, [both_id, only_anna]);

    let mut none = message(anna.id, "anna@stadt.example", "none");
    none.recipients.clear();
    assert!(store.insert_message(none).await.is_err());
}

async fn concurrent_inserts_are_all_committed(db: &TestDb) {
    let store = db.open().await;
    let anna = store
        .create_user(&staff("anna", &["anna@stadt.example"]))
        .await
        .expect("anna");
    let tasks: Vec<_> = (0..200)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move {
                store
                    .insert_message(message(anna.id, "anna@stadt.example", &format!("m{i}")))
                    .await
            })
        })
        .collect();
    let mut ids = HashSet::new();
    let mut sent = HashMap::new();
    for (i, task) in tasks.into_iter().enumerate() {
        let id = task.await.expect("join").expect("insert");
        ids.insert(id);
        sent.insert(id, format!("sha-of-m{i}"));
    }
    assert_eq!(ids.len(), 200);
    let listed = store
        .list_messages(&MessageFilter::default())
        .await
        .expect("list");
    assert_eq!(listed.len(), 200);
    let shas: HashSet<_> = listed.iter().map(|m| m.sha256.clone()).collect();
    assert_eq!(shas.len(), 200);
    // Each caller got its own message's id, however the batches fell.
    for m in &listed {
        assert_eq!(Some(&m.sha256), sent.get(&m.id), "message {}", m.id);
        assert_eq!(m.recipients, ["anna@stadt.example"], "message {}", m.id);
        let raw = store.message_raw(m.id).await.expect("raw");
        let body = m.sha256.trim_start_matches("sha-of-");
        assert!(
            raw.ends_with(format!("\r\n\r\n{body}\r\n").as_bytes()),
            "message {}",
            m.id
        );
    }
}

async fn a_failing_message_does_not_fail_its_batch(db: &TestDb) {
    let store = db.open().await;
    let anna = store
        .create_user(&staff("anna", &["anna@stadt.example"]))
        .await
        .expect("anna");
    // Recipient rows reference users; an unknown user id violates the foreign key, so this
    // message's transaction fails — wherever it lands in a batch.
    let tasks: Vec<_> = (0..50)
        .map(|i| {
            let store = store.clone();
            let user_id = if i == 25 { anna.id + 1000 } else { anna.id };
            tokio::spawn(async move {
                store
                    .insert_message(message(user_id, "anna@stadt.example", &format!("m{i}")))
                    .await
            })
        })
        .collect();
    let mut failed = 0;
    for task in tasks {
        if task.await.expect("join").is_err() {
            failed += 1;
        }
    }
    assert_eq!(failed, 1);
    let listed = store
        .list_messages(&MessageFilter::default())
        .await
        .expect("list");
    assert_eq!(listed.len(), 49);
    // Nothing half-stored: no message row without its recipients.
    assert!(listed.iter().all(|m| !m.recipients.is_empty()));
    assert!(!listed.iter().any(|m| m.sha256 == "sha-of-m25"));
}

async fn data_survives_reopening(db: &TestDb) {
    let first: Store = db.open().await;
    let anna = first
        .create_user(&staff("anna", &["anna@stadt.example"]))
        .await
        .expect("anna");
    let id = first
        .insert_message(message(anna.id, "anna@stadt.example", "kept"))
        .await
        .expect("insert");
    first.close().await;

    // Opening again runs the migrations again: they must be idempotent.
    let second = db.open().await;
    assert_eq!(
        second.user_by_login("anna").await.expect("anna").id,
        anna.id
    );
    assert_eq!(
        second
            .list_messages(&MessageFilter::default())
            .await
            .expect("list")[0]
            .id,
        id
    );
}

fn audit(n: usize) -> NewAuditEntry {
    NewAuditEntry {
        actor: "admin".into(),
        action: "exemption.approved".into(),
        subjects: vec![format!("exemption:{n}"), "user:anna".into()],
        details: serde_json::json!({"until": "2026-12-24", "n": n, "target": "anna@example.net"}),
    }
}

async fn audit_chain_verifies_and_detects_a_changed_row(db: &TestDb) {
    let store = db.open().await;
    assert_eq!(
        store.verify_audit().await.expect("verify"),
        AuditCheck::Intact {
            entries: 0,
            head: store::audit::GENESIS.to_owned(),
            first: 1,
            anchors_matched: 0,
            anchors_before_start: 0,
        }
    );
    let mut last = None;
    for n in 1..=5 {
        let e = store.append_audit(&audit(n)).await.expect("append");
        assert_eq!(e.seq, i64::try_from(n).expect("n"));
        if let Some(prev) = &last {
            assert_eq!(&e.prev_hash, prev);
        }
        last = Some(e.hash.clone());
    }
    let listed = store.list_audit(0, 100).await.expect("list");
    assert_eq!(listed.len(), 5);
    assert_eq!(listed[2].details["n"], 3);
    assert_eq!(listed[2].subjects, ["exemption:3", "user:anna"]);
    assert_eq!(
        store.verify_audit().await.expect("verify"),
        AuditCheck::Intact {
            entries: 5,
            head: last.expect("hash"),
            first: 1,
            anchors_matched: 0,
            anchors_before_start: 0,
        }
    );
    assert!(
        store
            .append_audit(&NewAuditEntry {
                details: serde_json::json!([1]),
                ..audit(9)
            })
            .await
            .is_err()
    );

    // Someone edits entry 3 directly in the database.
    raw_execute(&store, r#"UPDATE audit_log SET details = '{"n":3,"target":"evil@example.net","until":"2027-12-24"}' WHERE seq = 3"#).await;
    match store.verify_audit().await.expect("verify") {
        AuditCheck::Broken { seq, reason } => {
            assert_eq!(seq, 3);
            assert!(reason.contains("changed"), "{reason}");
        }
        intact => panic!("tampering not detected: {intact:?}"),
    }
}

async fn audit_chain_detects_deleted_and_reordered_rows(db: &TestDb) {
    let store = db.open().await;
    for n in 1..=6 {
        store.append_audit(&audit(n)).await.expect("append");
    }
    // Deleting the newest entry: only the head notices.
    raw_execute(&store, "DELETE FROM audit_log WHERE seq = 6").await;
    assert!(matches!(
        store.verify_audit().await.expect("verify"),
        AuditCheck::Broken { seq: 6, .. }
    ));
    // Swapping the content of entries 2 and 3 (keeping their numbers).
    raw_execute(&store, "UPDATE audit_log SET seq = 100 WHERE seq = 2").await;
    raw_execute(&store, "UPDATE audit_log SET seq = 2 WHERE seq = 3").await;
    raw_execute(&store, "UPDATE audit_log SET seq = 3 WHERE seq = 100").await;
    assert!(matches!(
        store.verify_audit().await.expect("verify"),
        AuditCheck::Broken { seq: 2, .. }
    ));
    // Deleting a middle entry leaves a gap.
    raw_execute(&store, "DELETE FROM audit_log WHERE seq = 2").await;
    match store.verify_audit().await.expect("verify") {
        AuditCheck::Broken { seq, reason } => {
            assert_eq!(seq, 2);
            assert!(reason.contains("missing"), "{reason}");
        }
        intact => panic!("deletion not detected: {intact:?}"),
    }
}

async fn audit_rewritten_with_consistent_hashes_is_found_by_anchors(db: &TestDb) {
    let store = db.open().await;
    for n in 1..=10 {
        store.append_audit(&audit(n)).await.expect("append");
    }
    let original = store.list_audit(0, 100).await.expect("list");
    let anchor = |e: &store::AuditEntry, label: &str| store::Anchor {
        seq: e.seq,
        hash: e.hash.clone(),
        label: label.to_owned(),
        at: None,
        entry_at: None,
    };
    let early = anchor(&original[2], "checkpoint A");
    let late = anchor(&original[9], "checkpoint B");
    assert!(matches!(
        store
            .verify_audit_anchored(&[early.clone(), late.clone()])
            .await
            .expect("verify"),
        AuditCheck::Intact {
            entries: 10,
            anchors_matched: 2,
            ..
        }
    ));

    // Two entries deleted, the rest renumbered and rehashed: consistent in itself…
    let mut fewer = original.clone();
    fewer.drain(4..6);
    store::testing::rewrite_audit(&store, &fewer).await;
    assert!(matches!(
        store.verify_audit().await.expect("verify"),
        AuditCheck::Intact { entries: 8, .. }
    ));
    // …but not with what was anchored outside: the early anchor still fits, the late one
    // lies beyond the end.
    match store
        .verify_audit_anchored(&[early.clone(), late.clone()])
        .await
        .expect("verify")
    {
        AuditCheck::Broken { seq, reason } => {
            assert_eq!(seq, 10);
            assert!(
                reason.contains("checkpoint B") && reason.contains("removed from the end"),
                "{reason}"
            );
        }
        intact => panic!("rewrite not detected: {intact:?}"),
    }

    // Only the last entry's actor changed, everything rehashed: found at the late anchor.
    let mut changed = original.clone();
    changed[9].actor = "someone-else".into();
    store::testing::rewrite_audit(&store, &changed).await;
    match store
        .verify_audit_anchored(&[early.clone(), late.clone()])
        .await
        .expect("verify")
    {
        AuditCheck::Broken { seq, reason } => {
            assert_eq!(seq, 10);
            assert!(
                reason.contains("checkpoint B") && reason.contains("rewritten"),
                "{reason}"
            );
        }
        intact => panic!("rewrite not detected: {intact:?}"),
    }

    // Two early entries swapped: the first anchor after them reports it.
    let mut swapped = original.clone();
    swapped.swap(0, 1);
    store::testing::rewrite_audit(&store, &swapped).await;
    match store
        .verify_audit_anchored(&[late.clone(), early.clone()])
        .await
        .expect("verify")
    {
        AuditCheck::Broken { seq, reason } => {
            assert_eq!(
                seq, 3,
                "the first anchor in chain order, whatever the order given"
            );
            assert!(reason.contains("checkpoint A"), "{reason}");
        }
        intact => panic!("reordering not detected: {intact:?}"),
    }
}

async fn audit_cut_by_retention_still_verifies(db: &TestDb) {
    let store = db.open().await;
    for n in 1..=5 {
        store.append_audit(&audit(n)).await.expect("append");
    }
    // Written ten days ago (the chain rewritten with those times: as if it had been).
    let mut aged = store.list_audit(0, 100).await.expect("list");
    for e in &mut aged {
        e.at -= 10 * DAY;
    }
    store::testing::rewrite_audit(&store, &aged).await;
    let original = store.list_audit(0, 100).await.expect("list");
    // The evidence a cut ends at: a checkpoint of entry 4, which shows its age.
    let evidence = store::Anchor {
        seq: 4,
        hash: original[3].hash.clone(),
        label: "the checkpoint of entry 4".into(),
        at: Some(original[3].at + 1000),
        entry_at: Some(original[3].at),
    };
    // Without evidence there is no cut; with it, everything up to entry 4 goes (the newest
    // always stays).
    assert_eq!(
        store
            .prune_audit(store::now_millis() - DAY, 1, "system", &[])
            .await
            .expect("prune"),
        None
    );
    let cut = store
        .prune_audit(
            store::now_millis() - DAY,
            1,
            "system",
            std::slice::from_ref(&evidence),
        )
        .await
        .expect("prune");
    assert_eq!(cut, Some(4));
    let kept = store.list_audit(0, 100).await.expect("list");
    assert_eq!(kept.iter().map(|e| e.seq).collect::<Vec<_>>(), [5, 6]);
    assert_eq!(kept[1].action, "audit.pruned");
    assert_eq!(kept[1].details["through_seq"], 4);
    let old = store::Anchor {
        seq: 2,
        hash: original[1].hash.clone(),
        label: "old".into(),
        at: Some(original[1].at + 1000),
        entry_at: Some(original[1].at),
    };
    let recent = store::Anchor {
        seq: 5,
        hash: original[4].hash.clone(),
        label: "recent".into(),
        at: Some(original[4].at + 1000),
        entry_at: Some(original[4].at),
    };
    // The cut (entry 6) is believed only with its evidence…
    match store
        .verify_audit_anchored(&[old.clone(), recent.clone()])
        .await
        .expect("verify")
    {
        AuditCheck::Broken { seq: 6, reason } => {
            assert!(reason.contains("not evidenced"), "{reason}")
        }
        other => panic!("an unevidenced cut was believed: {other:?}"),
    }
    // …and when a checkpoint covers it, as the daemon writes one right after each cut.
    match store
        .verify_audit_anchored(&[old.clone(), evidence.clone(), recent.clone()])
        .await
        .expect("verify")
    {
        AuditCheck::Broken { seq: 6, reason } => {
            assert!(reason.contains("may have been forged"), "{reason}")
        }
        other => panic!("an uncovered cut was believed: {other:?}"),
    }
    let after_cut = store::Anchor {
        seq: 6,
        hash: kept[1].hash.clone(),
        label: "after the cut".into(),
        at: Some(store::now_millis()),
        entry_at: Some(kept[1].at),
    };
    assert!(matches!(
        store
            .verify_audit_anchored(&[old, evidence.clone(), recent, after_cut])
            .await
            .expect("verify"),
        AuditCheck::Intact {
            entries: 2,
            first: 5,
            anchors_matched: 3,
            anchors_before_start: 1,
            ..
        }
    ));
    // An installation that keeps its log for a year believes no cut after a day, and one
    // that keeps it for ever none at all.
    for (policy, why) in [
        (
            store::CutPolicy::Days(365),
            "keeps its audit log for 365 days",
        ),
        (store::CutPolicy::KeepForever, "keeps its log for ever"),
    ] {
        match store
            .verify_audit_policy(std::slice::from_ref(&evidence), policy)
            .await
            .expect("verify")
        {
            AuditCheck::Broken { seq: 6, reason } => assert!(reason.contains(why), "{reason}"),
            other => panic!("a cut against {policy:?} was believed: {other:?}"),
        }
    }
    // Nothing old enough: nothing happens.
    assert_eq!(
        store.prune_audit(0, 1, "system", &[]).await.expect("prune"),
        None
    );

    // Cutting more of the start by hand (moving the recorded start along) is found: no
    // audit.pruned entry records that cut.
    raw_execute(&store, "DELETE FROM audit_log WHERE seq = 5").await;
    raw_execute(
        &store,
        &format!(
            "UPDATE audit_base SET seq = 5, hash = '{}' WHERE id = 1",
            original[4].hash
        ),
    )
    .await;
    match store
        .verify_audit_anchored(std::slice::from_ref(&evidence))
        .await
        .expect("verify")
    {
        AuditCheck::Broken { reason, .. } => {
            assert!(reason.contains("removed from the start"), "{reason}")
        }
        intact => panic!("cut not detected: {intact:?}"),
    }
}

/// Someone with database access drops the log's start up to the newest checkpoint (whose
/// hash is public, in the checkpoint line) and appends an `audit.pruned` entry after it, so
/// that the rest looks like a retention cut: consistent in itself, but not believed.
async fn audit_cut_forged_after_the_newest_checkpoint_is_not_believed(db: &TestDb) {
    let store = db.open().await;
    for n in 1..=5 {
        store.append_audit(&audit(n)).await.expect("append");
    }
    let entries = store.list_audit(0, 100).await.expect("list");
    let newest = entries[4].clone();
    // Checkpoints of entries 3 and 5, made as they were written (minutes ago, not days).
    let checkpoint = |e: &store::AuditEntry, label: &str| store::Anchor {
        seq: e.seq,
        hash: e.hash.clone(),
        label: label.into(),
        at: Some(e.at + 1000),
        entry_at: Some(e.at),
    };
    let third = checkpoint(&entries[2], "the checkpoint of entry 3");
    let fifth = checkpoint(&newest, "the newest checkpoint");
    // A cut that looks like retention's in every field: a day's retention, `before` a day
    // before its own time.
    let at = newest.at + 2000;
    let details = serde_json::json!({"through_seq": 5, "through_hash": newest.hash, "removed": 5, "before": at - DAY, "audit_days": 1});
    let hash =
        store::audit::entry_hash(6, at, "system", "audit.pruned", &[], &details, &newest.hash);
    raw_execute(&store, "DELETE FROM audit_subjects").await;
    raw_execute(&store, "DELETE FROM audit_log").await;
    raw_execute(
        &store,
        &format!(
            "INSERT INTO audit_base (id, seq, hash) VALUES (1, 5, '{}')",
            newest.hash
        ),
    )
    .await;
    raw_execute(
        &store,
        &format!(
            "INSERT INTO audit_log (seq, at, actor, action, subjects, details, prev_hash, hash) \
             VALUES (6, {at}, 'system', 'audit.pruned', '[]', '{details}', '{}', '{hash}')",
            newest.hash
        ),
    )
    .await;
    raw_execute(
        &store,
        &format!("UPDATE audit_head SET seq = 6, hash = '{hash}' WHERE id = 1"),
    )
    .await;
    // Consistent in itself, but without a checkpoint to evidence it no cut is believed.
    match store.verify_audit().await.expect("verify") {
        AuditCheck::Broken { seq: 6, reason } => {
            assert!(reason.contains("not evidenced"), "{reason}")
        }
        other => panic!("a cut without evidence was believed: {other:?}"),
    }
    // With the newest checkpoint only: the cut is not covered.
    match store
        .verify_audit_anchored(std::slice::from_ref(&fifth))
        .await
        .expect("verify")
    {
        AuditCheck::Broken { seq: 6, reason } => {
            assert!(reason.contains("forged"), "{reason}")
        }
        other => panic!("a forged cut was believed: {other:?}"),
    }
    // With an older checkpoint: entries 4 and 5 were written after it, minutes ago, so no
    // retention of a day removed them — not even when signing, where a cut need not be
    // covered yet.
    for check in [
        store
            .verify_audit_anchored(&[third.clone(), fifth.clone()])
            .await,
        store
            .verify_audit_for_signing(
                &[third, fifth],
                store::now_millis(),
                store::CutPolicy::Days(1),
            )
            .await,
    ] {
        match check.expect("verify") {
            AuditCheck::Broken { seq: 6, reason } => {
                assert!(reason.contains("the cut was forged"), "{reason}")
            }
            other => panic!("a forged cut was believed: {other:?}"),
        }
    }
}

/// Entries are appended in time order: one dated back (a year before the entry before it,
/// all hashes recomputed), or dated before a checkpoint that was made while the log ended
/// before it, cannot be true.
async fn audit_times_that_go_back_are_found(db: &TestDb) {
    let store = db.open().await;
    for n in 1..=4 {
        store.append_audit(&audit(n)).await.expect("append");
    }
    let entries = store.list_audit(0, 100).await.expect("list");
    let checkpoint = store::Anchor {
        seq: 2,
        hash: entries[1].hash.clone(),
        label: "the checkpoint of entry 2".into(),
        at: Some(entries[1].at + 1000),
        entry_at: Some(entries[1].at),
    };
    let mut back = entries.clone();
    back[3].at -= 365 * DAY;
    store::testing::rewrite_audit(&store, &back).await;
    match store.verify_audit().await.expect("verify") {
        AuditCheck::Broken { seq: 4, reason } => {
            assert!(reason.contains("before the entry before it"), "{reason}")
        }
        other => panic!("a time going back was believed: {other:?}"),
    }
    // Entries 3 and 4 both dated back a day: in order among themselves, but before the
    // checkpoint of entry 2.
    let mut both = entries.clone();
    both[0].at -= 2 * DAY;
    both[1].at -= 2 * DAY;
    both[2].at -= DAY;
    both[3].at -= DAY;
    store::testing::rewrite_audit(&store, &both).await;
    let rewritten = store.list_audit(0, 100).await.expect("list");
    let checkpoint = store::Anchor {
        hash: rewritten[1].hash.clone(),
        at: Some(entries[1].at + 1000),
        ..checkpoint
    };
    match store
        .verify_audit_anchored(&[checkpoint])
        .await
        .expect("verify")
    {
        AuditCheck::Broken { seq: 3, reason } => {
            assert!(reason.contains("before a checkpoint"), "{reason}")
        }
        other => panic!("an entry dated before its checkpoint was believed: {other:?}"),
    }
}

async fn audit_appends_are_serialised(db: &TestDb) {
    let store = db.open().await;
    let tasks: Vec<_> = (0..50)
        .map(|n| {
            let store = store.clone();
            tokio::spawn(async move { store.append_audit(&audit(n)).await })
        })
        .collect();
    for t in tasks {
        t.await.expect("join").expect("append");
    }
    assert!(matches!(
        store.verify_audit().await.expect("verify"),
        AuditCheck::Intact { entries: 50, .. }
    ));
    // A second handle (another node on the same database) appends to the same chain.
    let other = db.open().await;
    other.append_audit(&audit(51)).await.expect("append");
    store.append_audit(&audit(52)).await.expect("append");
    assert!(matches!(
        store.verify_audit().await.expect("verify"),
        AuditCheck::Intact { entries: 52, .. }
    ));
}

async fn verdicts_move_messages_to_classified_once(db: &TestDb) {
    let store = db.open().await;
    let anna = store
        .create_user(&staff("anna", &["anna@stadt.example"]))
        .await
        .expect("anna");
    let first = store
        .insert_message(message(anna.id, "anna@stadt.example", "v1"))
        .await
        .expect("insert");
    let second = store
        .insert_message(message(anna.id, "anna@stadt.example", "v2"))
        .await
        .expect("insert");
    assert_eq!(store.verdict(first).await.expect("verdict"), None);

    let sensitive = VerdictRecord {
        sensitive: true,
        categories: vec!["health".into(), "tax_id".into()],
        findings: r#"[{"detector":"steuer_id"}]"#.into(),
    };
    store
        .record_verdict(first, &sensitive)
        .await
        .expect("record");
    // A second node recording another verdict for the same message changes nothing.
    let clean = VerdictRecord {
        sensitive: false,
        categories: vec![],
        findings: "[]".into(),
    };
    store
        .record_verdict(first, &clean)
        .await
        .expect("record again");
    assert_eq!(
        store.verdict(first).await.expect("verdict"),
        Some(sensitive)
    );

    assert_eq!(
        store
            .messages_in_state(MessageState::Received, 10)
            .await
            .expect("pending"),
        [second]
    );
    assert_eq!(
        store
            .messages_in_state(MessageState::Classified, 10)
            .await
            .expect("done"),
        [first]
    );
    let listed = store
        .list_messages(&MessageFilter::default())
        .await
        .expect("list");
    let row = listed.iter().find(|m| m.id == first).expect("listed");
    assert_eq!(row.state, "classified");
    assert_eq!(row.sensitive, Some(true));
    assert_eq!(row.categories, ["health", "tax_id"]);
    let pending = listed.iter().find(|m| m.id == second).expect("listed");
    assert_eq!(
        (pending.sensitive, pending.state.as_str()),
        (None, "received")
    );
}

mod exemption_contract {
    use store::testing::TestDb;
    use store::{
        AuditCheck, Confirmation, ExemptionPolicy, ExemptionRequest, ExemptionState, NewUser,
        QueuedMail, Role, Store,
    };

    use super::DAY;
    const T0: i64 = 1_800_000_000_000;

    pub(crate) fn policy() -> ExemptionPolicy {
        ExemptionPolicy {
            max_days: 30,
            require_dpo: false,
            code_ttl: DAY,
            max_code_attempts: 3,
            allowed_domains: vec![],
            denied_domains: vec!["verboten.example".into()],
        }
    }

    pub(crate) async fn people(store: &Store) {
        for (login, role, address) in [
            ("anna", Role::Staff, Some("anna@stadt.example")),
            ("bert", Role::Staff, Some("bert@stadt.example")),
            ("admin1", Role::Admin, None),
            ("admin2", Role::Admin, None),
            ("dora", Role::Dpo, None),
        ] {
            store
                .create_user(&NewUser {
                    login: login.into(),
                    name: login.into(),
                    role,
                    password_hash: "$unused$".into(),
                    addresses: address.into_iter().map(str::to_owned).collect(),
                })
                .await
                .expect("user");
        }
    }

    pub(crate) fn request(login: &str, by: &str, target: &str, days: i64) -> ExemptionRequest {
        ExemptionRequest {
            login: login.into(),
            target: target.into(),
            days,
            reason: "Elternzeit, kein Dienstgerät".into(),
            by: by.into(),
        }
    }

    pub(crate) fn mail(id: i64) -> QueuedMail {
        QueuedMail {
            kind: "confirmation".into(),
            mail_from: "ratspost@stadt.example".into(),
            rcpt_to: "anna.privat@example.net".into(),
            body: format!("Bestätigungscode für Ausnahme {id}: 12345678\r\n").into_bytes(),
        }
    }

    pub(super) async fn full_lifecycle(db: &TestDb) {
        let store = db.open().await;
        people(&store).await;
        let p = policy();
        let e = store
            .request_exemption(
                &request("anna", "anna", "Anna.Privat@Example.NET", 14),
                &p,
                "right-hash",
                mail,
                T0,
            )
            .await
            .expect("request");
        assert_eq!(
            (e.state, e.target.as_str(), e.days),
            (ExemptionState::Requested, "anna.privat@example.net", 14)
        );
        let jobs = store.list_outbound(10).await.expect("jobs");
        assert_eq!(jobs.len(), 1);
        assert_eq!(
            (
                jobs[0].kind.as_str(),
                jobs[0].exemption_id,
                jobs[0].state.as_str()
            ),
            ("confirmation", Some(e.id), "queued")
        );
        let body =
            String::from_utf8(store.outbound_body(jobs[0].id).await.expect("body")).expect("utf8");
        assert!(body.contains(&format!("Ausnahme {}", e.id)), "{body}");

        // Approval first: still not active, the target is not proven yet.
        let e = store
            .approve_exemption(e.id, "admin1", &p, T0 + 1000)
            .await
            .expect("approve");
        assert_eq!(e.state, ExemptionState::Requested);
        assert!(
            store
                .active_exemption(1, T0 + 2000)
                .await
                .expect("active")
                .is_none()
        );

        assert_eq!(
            store
                .confirm_exemption(e.id, "wrong", &p, T0 + 3000)
                .await
                .expect("confirm"),
            Confirmation::Wrong { remaining: 2 }
        );
        let Confirmation::Accepted(e) = store
            .confirm_exemption(e.id, "right-hash", &p, T0 + 4000)
            .await
            .expect("confirm")
        else {
            panic!("right code refused");
        };
        assert_eq!(e.state, ExemptionState::Active);
        assert_eq!(e.valid_until, Some(T0 + 4000 + 14 * DAY));
        let anna = store.user_by_login("anna").await.expect("anna");
        assert!(
            store
                .active_exemption(anna.id, T0 + 5000)
                .await
                .expect("active")
                .is_some()
        );
        // Past valid_until it is not active, whether or not expiry has run.
        assert!(
            store
                .active_exemption(anna.id, T0 + 4000 + 14 * DAY)
                .await
                .expect("active")
                .is_none()
        );
        assert!(!e.is_active_at(T0 + 4000 + 14 * DAY));

        let expired = store
            .expire_exemptions(T0 + 15 * DAY)
            .await
            .expect("expire");
        assert_eq!(expired.len(), 1);
        assert_eq!(
            (expired[0].state, expired[0].ended_by.as_deref()),
            (ExemptionState::Expired, Some("system"))
        );

        let actions: Vec<String> = store
            .list_audit(0, 100)
            .await
            .expect("audit")
            .into_iter()
            .map(|a| a.action)
            .collect();
        assert_eq!(
            actions,
            [
                "exemption.requested",
                "exemption.approved",
                "exemption.confirmation_failed",
                "exemption.confirmed",
                "exemption.activated",
                "exemption.expired"
            ]
        );
        assert!(matches!(
            store.verify_audit().await.expect("verify"),
            AuditCheck::Intact { entries: 6, .. }
        ));
        let all =
            serde_json::to_string(&store.list_exemptions().await.expect("list")).expect("json");
        assert!(
            !all.contains("right-hash"),
            "the code hash is never exposed"
        );
    }

    pub(super) async fn four_eyes_and_dpo(db: &TestDb) {
        let store = db.open().await;
        people(&store).await;
        let p = ExemptionPolicy {
            require_dpo: true,
            ..policy()
        };
        let e = store
            .request_exemption(
                &request("anna", "admin1", "a@example.net", 7),
                &p,
                "h",
                mail,
                T0,
            )
            .await
            .expect("request");
        assert_eq!(e.requested_by, "admin1");
        for (by, why) in [
            ("admin1", "requester"),
            ("anna", "the user"),
            ("bert", "staff"),
        ] {
            let err = store
                .approve_exemption(e.id, by, &p, T0)
                .await
                .expect_err(why);
            assert_eq!(err.kind(), store::ErrorKind::Forbidden, "{why}");
        }
        store
            .approve_exemption(e.id, "admin2", &p, T0)
            .await
            .expect("admin");
        // One approval per role: a second one does not replace the first.
        let err = store
            .approve_exemption(e.id, "admin2", &p, T0 + 1)
            .await
            .expect_err("twice");
        assert!(
            err.to_string().contains("approved by admin2 already"),
            "{err}"
        );
        let Confirmation::Accepted(e) = store
            .confirm_exemption(e.id, "h", &p, T0)
            .await
            .expect("confirm")
        else {
            panic!()
        };
        assert_eq!(
            e.state,
            ExemptionState::Confirmed,
            "the DPO has not approved yet"
        );
        assert_eq!(e.missing(&p), [store::Missing::DpoApproval]);
        let e = store
            .approve_exemption(e.id, "dora", &p, T0 + 10)
            .await
            .expect("dpo");
        assert_eq!(
            (e.state, e.dpo_approved_by.as_deref()),
            (ExemptionState::Active, Some("dora"))
        );
        // Without `require_dpo` there is no DPO approval to give, a forged one included.
        let plain = ExemptionPolicy {
            require_dpo: false,
            ..p.clone()
        };
        let other = store
            .request_exemption(
                &request("bert", "admin1", "b@example.net", 7),
                &plain,
                "h2",
                mail,
                T0 + 11,
            )
            .await
            .expect("request");
        assert_eq!(
            store
                .approve_exemption(other.id, "dora", &plain, T0 + 12)
                .await
                .expect_err("a DPO approval nobody asked for")
                .kind(),
            store::ErrorKind::Forbidden
        );
        assert_eq!(
            store.exemption(other.id).await.expect("e").dpo_approved_by,
            None
        );
        // Staff may revoke only their own; the user may end theirs at once.
        assert_eq!(
            store
                .revoke_exemption(e.id, "bert", T0 + 20)
                .await
                .expect_err("bert")
                .kind(),
            store::ErrorKind::Forbidden
        );
        let e = store
            .revoke_exemption(e.id, "anna", T0 + 30)
            .await
            .expect("revoke");
        assert_eq!(e.state, ExemptionState::Revoked);
        let anna = store.user_by_login("anna").await.expect("anna");
        assert!(
            store
                .active_exemption(anna.id, T0 + 40)
                .await
                .expect("active")
                .is_none()
        );
        assert!(
            store
                .revoke_exemption(e.id, "admin1", T0 + 50)
                .await
                .is_err(),
            "already ended"
        );
    }

    pub(super) async fn policy_is_enforced(db: &TestDb) {
        let store = db.open().await;
        people(&store).await;
        let p = ExemptionPolicy {
            allowed_domains: vec![],
            ..policy()
        };
        let cases = [
            (
                request("anna", "anna", "a@example.net", 31),
                store::ErrorKind::Invalid,
                "too long",
            ),
            (
                request("anna", "anna", "a@example.net", 0),
                store::ErrorKind::Invalid,
                "zero days",
            ),
            (
                request("anna", "anna", "a@verboten.example", 5),
                store::ErrorKind::Invalid,
                "denied domain",
            ),
            (
                request("anna", "anna", "bert@stadt.example", 5),
                store::ErrorKind::Invalid,
                "our own domain",
            ),
            (
                request("anna", "bert", "a@example.net", 5),
                store::ErrorKind::Forbidden,
                "staff for someone else",
            ),
            (
                request("nobody", "admin1", "a@example.net", 5),
                store::ErrorKind::NotFound,
                "unknown user",
            ),
        ];
        for (r, kind, why) in cases {
            let err = store
                .request_exemption(&r, &p, "h", mail, T0)
                .await
                .expect_err(why);
            assert_eq!(err.kind(), kind, "{why}: {err}");
        }
        let only = ExemptionPolicy {
            allowed_domains: vec!["posteo.example".into()],
            ..policy()
        };
        assert!(
            store
                .request_exemption(
                    &request("anna", "anna", "a@example.net", 5),
                    &only,
                    "h",
                    mail,
                    T0
                )
                .await
                .is_err()
        );
        store
            .request_exemption(
                &request("anna", "anna", "a@posteo.example", 5),
                &only,
                "h",
                mail,
                T0,
            )
            .await
            .expect("allowed");
        let again = store
            .request_exemption(
                &request("anna", "anna", "b@posteo.example", 5),
                &only,
                "h",
                mail,
                T0,
            )
            .await;
        assert!(again.expect_err("second open").is_conflict());
        // Nothing of the refused requests was kept: one exemption, one queued mail.
        assert_eq!(store.list_exemptions().await.expect("list").len(), 1);
        assert_eq!(store.list_outbound(10).await.expect("jobs").len(), 1);
    }

    pub(super) async fn codes_lock_and_expire(db: &TestDb) {
        let store = db.open().await;
        people(&store).await;
        let p = policy();
        let e = store
            .request_exemption(
                &request("anna", "anna", "a@example.net", 5),
                &p,
                "h",
                mail,
                T0,
            )
            .await
            .expect("request");
        assert_eq!(
            store.confirm_exemption(e.id, "x", &p, T0).await.expect("1"),
            Confirmation::Wrong { remaining: 2 }
        );
        assert_eq!(
            store.confirm_exemption(e.id, "y", &p, T0).await.expect("2"),
            Confirmation::Wrong { remaining: 1 }
        );
        assert_eq!(
            store
                .confirm_exemption(e.id, "h", &p, T0)
                .await
                .map(|c| matches!(c, Confirmation::Accepted(_)))
                .ok(),
            Some(true)
        );
        let f = store
            .request_exemption(
                &request("bert", "bert", "b@example.net", 5),
                &p,
                "h",
                mail,
                T0,
            )
            .await
            .expect("request");
        for _ in 0..2 {
            store
                .confirm_exemption(f.id, "x", &p, T0)
                .await
                .expect("wrong");
        }
        assert_eq!(
            store.confirm_exemption(f.id, "x", &p, T0).await.expect("3"),
            Confirmation::Locked
        );
        assert_eq!(
            store.exemption(f.id).await.expect("f").state,
            ExemptionState::Denied
        );
        assert!(
            store.confirm_exemption(f.id, "h", &p, T0).await.is_err(),
            "no more tries after the lock"
        );

        store
            .revoke_exemption(e.id, "admin1", T0)
            .await
            .expect("end anna's");
        let g = store
            .request_exemption(
                &request("anna", "anna", "c@example.net", 5),
                &p,
                "h",
                mail,
                T0,
            )
            .await
            .expect("request");
        assert_eq!(
            store
                .confirm_exemption(g.id, "h", &p, T0 + DAY)
                .await
                .expect("late"),
            Confirmation::Expired
        );
        assert_eq!(
            store.exemption(g.id).await.expect("g").state,
            ExemptionState::Expired
        );
    }
}

async fn exemption_reminders_are_queued_once(db: &TestDb) {
    use exemption_contract::{mail, people, policy, request};
    const DAY: i64 = 24 * 60 * 60 * 1000;
    const T0: i64 = 1_800_000_000_000;
    let store = db.open().await;
    people(&store).await;
    let p = policy();
    let e = store
        .request_exemption(
            &request("anna", "anna", "a@example.net", 7),
            &p,
            "h",
            mail,
            T0,
        )
        .await
        .expect("request");
    store
        .approve_exemption(e.id, "admin1", &p, T0)
        .await
        .expect("approve");
    store
        .confirm_exemption(e.id, "h", &p, T0)
        .await
        .expect("confirm");
    assert!(
        store
            .exemptions_to_remind(T0, 3 * DAY)
            .await
            .expect("due")
            .is_empty(),
        "7 days left"
    );
    let due = store
        .exemptions_to_remind(T0 + 5 * DAY, 3 * DAY)
        .await
        .expect("due");
    assert_eq!(due.iter().map(|e| e.id).collect::<Vec<_>>(), [e.id]);
    let reminder = store::QueuedMail {
        kind: "reminder".into(),
        mail_from: "r@x".into(),
        rcpt_to: "a@example.net".into(),
        body: b"x".to_vec(),
    };
    assert!(
        store
            .remind_exemption(e.id, &reminder, T0 + 5 * DAY)
            .await
            .expect("remind")
    );
    assert!(
        !store
            .remind_exemption(e.id, &reminder, T0 + 5 * DAY)
            .await
            .expect("again"),
        "only once"
    );
    assert!(
        store
            .exemptions_to_remind(T0 + 5 * DAY, 3 * DAY)
            .await
            .expect("due")
            .is_empty()
    );
    let jobs = store.list_outbound(10).await.expect("jobs");
    assert_eq!(jobs.iter().filter(|j| j.kind == "reminder").count(), 1);
    let last = store
        .list_audit(0, 100)
        .await
        .expect("audit")
        .pop()
        .expect("entry");
    assert_eq!(last.action, "exemption.reminder_sent");
    assert!(
        store
            .exemption(e.id)
            .await
            .expect("e")
            .reminded_at
            .is_some()
    );
}

async fn exemption_full_lifecycle(db: &TestDb) {
    exemption_contract::full_lifecycle(db).await;
}
async fn exemption_four_eyes_and_dpo(db: &TestDb) {
    exemption_contract::four_eyes_and_dpo(db).await;
}
async fn exemption_policy_is_enforced(db: &TestDb) {
    exemption_contract::policy_is_enforced(db).await;
}
async fn exemption_codes_lock_and_expire(db: &TestDb) {
    exemption_contract::codes_lock_and_expire(db).await;
}

/// Issue 9, part 7: a follow-up requested while an exemption is active starts when it ends —
/// no gap, no overlap — and the exemption that forwards is the one whose period holds "now".
async fn exemption_follow_ups_continue_without_gap(db: &TestDb) {
    use exemption_contract::{mail, people, policy, request};
    use store::{Confirmation, ExemptionState, Missing};
    const DAY: i64 = 24 * 60 * 60 * 1000;
    const T0: i64 = 1_800_000_000_000;
    let store = db.open().await;
    people(&store).await;
    let p = policy();
    let anna = store.user_by_login("anna").await.expect("anna");
    let activate = |id: i64, at: i64| {
        let store = store.clone();
        let p = p.clone();
        async move {
            store
                .approve_exemption(id, "admin1", &p, at)
                .await
                .expect("approve");
            let Confirmation::Accepted(e) = store
                .confirm_exemption(id, "h", &p, at)
                .await
                .expect("confirm")
            else {
                panic!("right code refused");
            };
            e
        }
    };
    let ask = |days: i64, at: i64| {
        let store = store.clone();
        let p = p.clone();
        async move {
            store
                .request_exemption(
                    &request("anna", "anna", "a@example.net", days),
                    &p,
                    "h",
                    mail,
                    at,
                )
                .await
        }
    };
    let first = ask(7, T0).await.expect("first");
    let first = activate(first.id, T0).await;
    assert_eq!(
        (first.state, first.valid_from, first.valid_until),
        (ExemptionState::Active, Some(T0), Some(T0 + 7 * DAY))
    );

    // While it is active, one follow-up may be asked for — but only one request at a time.
    let second = ask(10, T0 + DAY).await.expect("follow-up");
    assert_eq!(
        second.missing(&p),
        [Missing::Confirmation, Missing::AdminApproval]
    );
    let err = ask(5, T0 + DAY)
        .await
        .expect_err("a second pending request");
    assert!(err.is_conflict(), "{err}");
    assert!(err.to_string().contains("pending"), "{err}");
    assert_eq!(
        store
            .follow_up(first.id, T0 + DAY)
            .await
            .expect("follow-up")
            .map(|e| e.id),
        Some(second.id)
    );

    // Approved and confirmed, it starts exactly when the first ends and lasts its days.
    // (within the code's validity of a day)
    let second = activate(second.id, T0 + DAY + 1000).await;
    assert_eq!(
        (second.state, second.valid_from, second.valid_until),
        (
            ExemptionState::Active,
            Some(T0 + 7 * DAY),
            Some(T0 + 17 * DAY)
        )
    );
    assert!(second.is_scheduled_at(T0 + 2 * DAY));
    assert!(!second.is_active_at(T0 + 2 * DAY));
    // Scheduled, not active yet: the audit says so, and so does a late approval or denial.
    let audit = store.list_audit(0, 1000).await.expect("audit");
    let last = audit.last().expect("entries");
    assert_eq!(
        (last.action.as_str(), last.details["valid_from"].as_i64()),
        ("exemption.scheduled", Some(T0 + 7 * DAY))
    );
    let err = store
        .deny_exemption(second.id, "dora", "zu spät", T0 + 2 * DAY)
        .await
        .expect_err("not pending");
    assert!(err.to_string().contains("starts later"), "{err}");
    let err = ask(5, T0 + 2 * DAY)
        .await
        .expect_err("a third while a follow-up waits");
    assert!(err.is_conflict(), "{err}");
    assert!(err.to_string().contains("follow-up"), "{err}");

    let forwarding = |at: i64| {
        let store = store.clone();
        async move {
            store
                .active_exemption(anna.id, at)
                .await
                .expect("active")
                .map(|e| e.id)
        }
    };
    assert_eq!(forwarding(T0 + 7 * DAY - 1).await, Some(first.id));
    assert_eq!(forwarding(T0 + 7 * DAY).await, Some(second.id));
    assert_eq!(forwarding(T0 + 17 * DAY - 1).await, Some(second.id));
    assert_eq!(forwarding(T0 + 17 * DAY).await, None);

    // Only a started exemption is reminded of its end, even when the follow-up ends soon too.
    let due = store
        .exemptions_to_remind(T0 + 6 * DAY, 20 * DAY)
        .await
        .expect("due");
    assert_eq!(due.iter().map(|e| e.id).collect::<Vec<_>>(), [first.id]);

    // Revoking the current one stops forwarding now; the follow-up keeps its period.
    let revoked = store
        .revoke_exemption(first.id, "dora", T0 + 3 * DAY)
        .await
        .expect("revoke");
    assert_eq!(
        (revoked.state, revoked.ended_at, revoked.ended_by.as_deref()),
        (ExemptionState::Revoked, Some(T0 + 3 * DAY), Some("dora"))
    );
    let kept = store.exemption(second.id).await.expect("second");
    assert_eq!(
        (kept.state, kept.valid_from, kept.valid_until),
        (
            ExemptionState::Active,
            Some(T0 + 7 * DAY),
            Some(T0 + 17 * DAY)
        )
    );
    assert_eq!(forwarding(T0 + 3 * DAY + 1).await, None);
    assert_eq!(forwarding(T0 + 7 * DAY).await, Some(second.id));

    // The follow-up is now the one to follow: a third starts when the second ends.
    let third = ask(3, T0 + 4 * DAY)
        .await
        .expect("follow-up of the follow-up");
    let third = activate(third.id, T0 + 4 * DAY).await;
    assert_eq!(
        (third.valid_from, third.valid_until),
        (Some(T0 + 17 * DAY), Some(T0 + 20 * DAY))
    );
    // Expiry ends each at its own end.
    let expired = store
        .expire_exemptions(T0 + 17 * DAY)
        .await
        .expect("expire");
    assert_eq!(
        expired.iter().map(|e| e.id).collect::<Vec<_>>(),
        [second.id]
    );
    assert_eq!(forwarding(T0 + 17 * DAY).await, Some(third.id));
    assert!(matches!(
        store.verify_audit().await.expect("verify"),
        store::AuditCheck::Intact { .. }
    ));
}

fn queued(n: usize) -> store::QueuedMail {
    store::QueuedMail {
        kind: "confirmation".into(),
        mail_from: "ratspost@stadt.example".into(),
        rcpt_to: format!("r{n}@example.net"),
        body: format!("Subject: {n}\r\n\r\nx\r\n").into_bytes(),
    }
}

async fn queue_leases_deliver_each_job_once(db: &TestDb) {
    let first = db.open().await;
    let second = db.open().await;
    for n in 0..100 {
        first
            .enqueue(&queued(n), None, None, 1000)
            .await
            .expect("enqueue");
    }
    let node = |store: Store, name: &'static str| {
        tokio::spawn(async move {
            let mut mine = Vec::new();
            loop {
                let jobs = store
                    .lease_jobs(name, 2000, 60_000, 7)
                    .await
                    .expect("lease");
                if jobs.is_empty() {
                    return mine;
                }
                for job in jobs {
                    store
                        .finish_job(&job, name, &store::JobOutcome::Delivered, 2000)
                        .await
                        .expect("finish");
                    mine.push(job.id);
                }
            }
        })
    };
    let a = node(first.clone(), "node-a");
    let b = node(second.clone(), "node-b");
    let (a, b) = (a.await.expect("a"), b.await.expect("b"));
    let mut all: Vec<i64> = a.iter().chain(&b).copied().collect();
    all.sort_unstable();
    let before = all.len();
    all.dedup();
    assert_eq!(before, all.len(), "a job was delivered twice");
    assert_eq!(all.len(), 100);
    assert!(
        first
            .list_outbound(200)
            .await
            .expect("list")
            .iter()
            .all(|j| j.state == "delivered")
    );
}

async fn queue_leases_expire_and_outcomes_are_recorded(db: &TestDb) {
    let store = db.open().await;
    let id = store
        .enqueue(&queued(1), None, None, 1000)
        .await
        .expect("enqueue");
    let leased = store
        .lease_jobs("dead-node", 1000, 1010, 10)
        .await
        .expect("lease");
    assert_eq!(leased.len(), 1);
    assert!(
        store
            .lease_jobs("other", 1005, 2000, 10)
            .await
            .expect("lease")
            .is_empty(),
        "still leased"
    );
    let again = store
        .lease_jobs("other", 1011, 2000, 10)
        .await
        .expect("lease");
    assert_eq!(
        again.len(),
        1,
        "an expired lease is picked up by another node"
    );
    let lost = store
        .finish_job(&leased[0], "dead-node", &store::JobOutcome::Delivered, 1012)
        .await;
    assert!(lost.expect_err("lease lost").is_conflict());

    let retry = store::JobOutcome::Retry {
        at: 5000,
        error: "421 try later".into(),
        rcpt_to: None,
    };
    store
        .finish_job(&again[0], "other", &retry, 1012)
        .await
        .expect("retry");
    let job = &store.list_outbound(10).await.expect("list")[0];
    assert_eq!(
        (
            job.id,
            job.state.as_str(),
            job.attempts,
            job.next_attempt_at
        ),
        (id, "queued", 1, 5000)
    );
    assert_eq!(job.last_error.as_deref(), Some("421 try later"));
    assert!(
        store
            .lease_jobs("other", 4999, 9000, 10)
            .await
            .expect("lease")
            .is_empty(),
        "not due yet"
    );

    let due = store
        .lease_jobs("other", 5000, 9000, 10)
        .await
        .expect("lease");
    let drop = store::JobOutcome::Dropped {
        reason: "exemption revoked".into(),
    };
    store
        .finish_job(&due[0], "other", &drop, 5001)
        .await
        .expect("drop");
    let audit = store.list_audit(0, 10).await.expect("audit");
    assert_eq!(
        audit.last().map(|a| a.action.as_str()),
        Some("queue.dropped")
    );
    assert_eq!(
        audit.last().map(|a| a.details["error"].clone()),
        Some(serde_json::json!("exemption revoked"))
    );

    let manual = store
        .enqueue(&queued(2), None, None, 6000)
        .await
        .expect("enqueue");
    store
        .drop_job(manual, "admin1", 6001)
        .await
        .expect("drop by hand");
    assert!(
        store.drop_job(manual, "admin1", 6002).await.is_err(),
        "only queued jobs"
    );
    assert!(matches!(
        store.verify_audit().await.expect("verify"),
        AuditCheck::Intact { entries: 2, .. }
    ));
}

async fn web_sessions_expire_and_end(db: &TestDb) {
    let store = db.open().await;
    let anna = store.create_user(&staff("anna", &[])).await.expect("anna");
    let now = store::now_millis();
    store
        .create_web_session("h1", anna.id, "csrf1", "127.0.0.1", now, now + 1000)
        .await
        .expect("session");
    let s = store
        .web_session("h1", now)
        .await
        .expect("read")
        .expect("valid");
    assert_eq!(
        (s.login.as_str(), s.csrf.as_str(), s.role),
        ("anna", "csrf1", Role::Staff)
    );
    assert_eq!(
        store.web_session("h1", now + 1000).await.expect("read"),
        None,
        "expired session valid"
    );
    assert_eq!(store.web_session("other", now).await.expect("read"), None);
    store.delete_web_session("h1").await.expect("logout");
    assert_eq!(
        store.web_session("h1", now).await.expect("read"),
        None,
        "session survived logout"
    );
}

async fn notice_links_open_only_for_their_owner_and_every_attempt_is_audited(db: &TestDb) {
    let store = db.open().await;
    let anna = store
        .create_user(&staff("anna", &["anna@stadt.test"]))
        .await
        .expect("anna");
    let bert = store.create_user(&staff("bert", &[])).await.expect("bert");
    let id = store
        .insert_message(message(anna.id, "anna@stadt.test", "geheim"))
        .await
        .expect("message");
    let now = store::now_millis();
    for (hash, expires, revoked) in [
        ("valid", now + 60_000, "NULL"),
        ("old", now - 1, "NULL"),
        ("gone", now + 60_000, "1"),
    ] {
        raw_execute(
            &store,
            &format!(
                "INSERT INTO notice_tokens (token_hash, message_id, user_id, created_at, expires_at, revoked_at) \
                 VALUES ('{hash}', {id}, {}, {now}, {expires}, {revoked})",
                anna.id
            ),
        )
        .await;
    }
    let view = |token_hash, user_id, login| NoticeView {
        token_hash,
        user_id,
        login,
        ip: "192.0.2.7",
        what: "message",
        gate: VerdictGate::Open,
    };
    assert_eq!(
        store
            .open_notice(&view("valid", anna.id, "anna"), now)
            .await
            .expect("open"),
        NoticeAccess::Open { message_id: id }
    );
    for (hash, user, login, reason) in [
        ("valid", bert.id, "bert", "another user"),
        ("old", anna.id, "anna", "expired"),
        ("gone", anna.id, "anna", "revoked"),
    ] {
        match store
            .open_notice(&view(hash, user, login), now)
            .await
            .expect("open")
        {
            NoticeAccess::Refused { reason: r } => assert!(r.contains(reason), "{hash}: {r}"),
            other => panic!("{hash} by {login} gave {other:?}"),
        }
    }
    assert_eq!(
        store
            .open_notice(&view("nonsense", anna.id, "anna"), now)
            .await
            .expect("open"),
        NoticeAccess::Unknown
    );
    let audit = store.list_audit(0, 100).await.expect("audit");
    let seen: Vec<(&str, &str)> = audit
        .iter()
        .map(|a| (a.action.as_str(), a.actor.as_str()))
        .collect();
    assert_eq!(
        seen,
        [
            ("notice.viewed", "anna"),
            ("notice.view_refused", "bert"),
            ("notice.view_refused", "anna"),
            ("notice.view_refused", "anna"),
        ]
    );
    assert!(
        audit[0].subjects.contains(&format!("message:{id}")),
        "{:?}",
        audit[0]
    );
    assert_eq!(audit[0].details["ip"], "192.0.2.7");
    assert!(
        matches!(
            store.verify_audit().await.expect("verify"),
            AuditCheck::Intact { entries: 4, .. }
        ),
        "audit chain broken"
    );
}

/// The download policy's gate: decided on the stored verdict in the same transaction as the
/// audit entry; a closed gate is a refusal with its reason, an unclassified message never
/// passes a category gate (fail closed), and the owner check comes first.
async fn notice_downloads_follow_the_verdict_gate_and_refusals_are_audited(db: &TestDb) {
    let store = db.open().await;
    let anna = store
        .create_user(&staff("anna", &["anna@stadt.test"]))
        .await
        .expect("anna");
    let bert = store.create_user(&staff("bert", &[])).await.expect("bert");
    let now = store::now_millis();
    let mut ids = Vec::new();
    for (hash, categories) in [
        (
            "marked",
            Some(vec!["health".to_owned(), "vs_nfd".to_owned()]),
        ),
        ("plain", Some(vec!["tax_id".to_owned()])),
        ("unclassified", None),
    ] {
        let id = store
            .insert_message(message(anna.id, "anna@stadt.test", hash))
            .await
            .expect("message");
        if let Some(categories) = categories {
            let verdict = VerdictRecord {
                sensitive: true,
                categories,
                findings: "[]".into(),
            };
            store.record_verdict(id, &verdict).await.expect("verdict");
        }
        raw_execute(
            &store,
            &format!(
                "INSERT INTO notice_tokens (token_hash, message_id, user_id, created_at, expires_at) \
                 VALUES ('{hash}', {id}, {}, {now}, {})",
                anna.id,
                now + 60_000
            ),
        )
        .await;
        ids.push(id);
    }
    const MARKINGS: &[&str] = &["vs_nfd", "classified"];
    let unless = VerdictGate::Unless {
        categories: MARKINGS,
        reason: "downloads of classified messages are switched off",
    };
    let closed = VerdictGate::Closed {
        reason: "downloads are switched off",
    };
    let view = |token_hash, user_id, login, gate| NoticeView {
        token_hash,
        user_id,
        login,
        ip: "192.0.2.7",
        what: "original",
        gate,
    };
    let open = |id| NoticeAccess::Open { message_id: id };
    let refused = |reason| NoticeAccess::Refused { reason };
    for (hash, gate, expected) in [
        ("marked", VerdictGate::Open, open(ids[0])),
        (
            "marked",
            unless,
            refused("downloads of classified messages are switched off"),
        ),
        ("plain", unless, open(ids[1])),
        ("plain", closed, refused("downloads are switched off")),
        (
            "unclassified",
            unless,
            refused("downloads of classified messages are switched off"),
        ),
    ] {
        assert_eq!(
            store
                .open_notice(&view(hash, anna.id, "anna", gate), now)
                .await
                .expect("open"),
            expected,
            "{hash} with {gate:?}"
        );
    }
    // Someone else's link is refused for that, whatever the gate says.
    match store
        .open_notice(&view("plain", bert.id, "bert", unless), now)
        .await
        .expect("open")
    {
        NoticeAccess::Refused { reason } => assert!(reason.contains("another"), "{reason}"),
        other => panic!("bert opened anna's link: {other:?}"),
    }
    let audit = store.list_audit(0, 100).await.expect("audit");
    let seen: Vec<(&str, &str, &str)> = audit
        .iter()
        .map(|a| {
            (
                a.action.as_str(),
                a.actor.as_str(),
                a.details["reason"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            ("notice.viewed", "anna", ""),
            (
                "notice.view_refused",
                "anna",
                "downloads of classified messages are switched off"
            ),
            ("notice.viewed", "anna", ""),
            ("notice.view_refused", "anna", "downloads are switched off"),
            (
                "notice.view_refused",
                "anna",
                "downloads of classified messages are switched off"
            ),
            (
                "notice.view_refused",
                "bert",
                "the link belongs to another user's mailbox"
            ),
        ]
    );
    assert!(audit.iter().all(|a| a.details["what"] == "original"));
    assert!(
        audit[1].subjects.contains(&format!("message:{}", ids[0])),
        "{:?}",
        audit[1]
    );
    assert!(matches!(
        store.verify_audit().await.expect("verify"),
        AuditCheck::Intact { entries: 6, .. }
    ));
}

async fn mailboxes_keep_uids_flags_and_modseqs(db: &TestDb) {
    let store = db.open().await;
    let anna = store
        .create_user(&staff("anna", &["anna@stadt.test"]))
        .await
        .expect("anna");
    let now = store::now_millis();
    // A message ratspost itself puts into the mailbox lands in INBOX, created on the way.
    store
        .deliver_to_mailbox(
            anna.id,
            "anna@stadt.test",
            b"Subject: a\r\n\r\nhallo\r\n",
            now,
        )
        .await
        .expect("deliver");
    store.ensure_mailboxes(anna.id, now).await.expect("folders");
    let names: Vec<String> = store
        .mailboxes(anna.id)
        .await
        .expect("list")
        .into_iter()
        .map(|m| m.name)
        .collect();
    assert_eq!(
        names,
        ["Archive", "Drafts", "INBOX", "Junk", "Sent", "Trash"]
    );
    let inbox = store
        .mailbox(anna.id, "inbox")
        .await
        .expect("INBOX in any case");
    assert_eq!(inbox.uid_next, 2);
    let entries = store.mailbox_entries(inbox.id).await.expect("entries");
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0].uid, 1);
    assert_eq!(entries[0].size, 21);
    assert_eq!(
        store.entry_content(inbox.id, 1).await.expect("content"),
        b"Subject: a\r\n\r\nhallo\r\n"
    );

    // APPEND, STORE with CONDSTORE, EXPUNGE.
    let (validity, uid) = store
        .append_entry(&inbox, b"Subject: b\r\n\r\nx\r\n", &["\\Draft".into()], now)
        .await
        .expect("append");
    assert_eq!((validity, uid), (inbox.uid_validity, 2));
    let before = store
        .mailbox_by_id(inbox.id)
        .await
        .expect("mailbox")
        .highest_modseq;
    let update = store
        .set_flags(
            &inbox,
            &[1, 2],
            FlagOp::Add,
            &["\\Seen".into(), "\\seen".into()],
            None,
        )
        .await
        .expect("store");
    assert_eq!(update.changed.len(), 2);
    assert_eq!(update.changed[1].flags, "\\Draft \\Seen", "duplicates kept");
    let after = store
        .mailbox_by_id(inbox.id)
        .await
        .expect("mailbox")
        .highest_modseq;
    assert!(after > before && update.changed.iter().all(|e| e.modseq == after));
    let stale = store
        .set_flags(
            &inbox,
            &[1],
            FlagOp::Add,
            &["\\Deleted".into()],
            Some(before),
        )
        .await
        .expect("store");
    assert_eq!(stale.modified, [1], "UNCHANGEDSINCE ignored");
    store
        .set_flags(
            &inbox,
            &[1],
            FlagOp::Add,
            &["\\Deleted".into()],
            Some(after),
        )
        .await
        .expect("store");
    assert_eq!(store.expunge(&inbox, None).await.expect("expunge"), [1]);
    assert_eq!(
        store
            .expunged_since(inbox.id, after)
            .await
            .expect("vanished"),
        [1],
        "QRESYNC must learn of the expunge"
    );
    let now_modseq = store
        .mailbox_by_id(inbox.id)
        .await
        .expect("mailbox")
        .highest_modseq;
    assert!(
        store
            .expunged_since(inbox.id, now_modseq)
            .await
            .expect("vanished")
            .is_empty()
    );
    let left: Vec<i64> = store
        .mailbox_entries(inbox.id)
        .await
        .expect("entries")
        .iter()
        .map(|e| e.uid)
        .collect();
    assert_eq!(left, [2]);
    // UIDs are never reused.
    let (_, uid) = store
        .append_entry(&inbox, b"x", &[], now)
        .await
        .expect("append");
    assert_eq!(uid, 3);

    // COPY and MOVE keep flags and give new UIDs in the target.
    let trash = store.mailbox(anna.id, "Trash").await.expect("Trash");
    let (v, pairs) = store
        .copy_entries(&inbox, &[2, 99], &trash, true)
        .await
        .expect("move");
    assert_eq!((v, pairs), (trash.uid_validity, vec![(2, 1)]));
    assert_eq!(
        store.mailbox_entries(trash.id).await.expect("trash")[0].flags,
        "\\Draft \\Seen"
    );
    assert_eq!(
        store.mailbox_entries(inbox.id).await.expect("inbox").len(),
        1
    );

    // Folder management.
    store
        .create_mailbox(anna.id, "Projekte/2026", now)
        .await
        .expect("create");
    assert!(
        store
            .create_mailbox(anna.id, "Projekte/2026", now)
            .await
            .is_err()
    );
    store
        .rename_mailbox(anna.id, "Projekte/2026", "Projekte/2027")
        .await
        .expect("rename");
    assert!(store.mailbox(anna.id, "Projekte/2027").await.is_ok());
    assert!(store.delete_mailbox(anna.id, "INBOX").await.is_err());
    store
        .delete_mailbox(anna.id, "Projekte/2027")
        .await
        .expect("delete");
}

/// Issue #13 §1: `CREATE a/` and `CREATE a/b/c` (parents made), a new UIDVALIDITY for a
/// mailbox deleted and created again within one second, and `\Recent` claimed once.
/// Subscriptions are names (RFC 3501 §6.3.6): INBOX and the special-use folders start
/// subscribed, CREATE does not subscribe, and a subscription outlives DELETE so that
/// LIST (SUBSCRIBED) can show it as `\\NonExistent` (RFC 5258 §3.1).
async fn subscriptions_are_kept_by_name_and_outlive_delete(db: &TestDb) {
    let store = db.open().await;
    let anna = store
        .create_user(&staff("anna", &["anna@stadt.test"]))
        .await
        .expect("anna");
    let now = store::now_millis();
    store.ensure_mailboxes(anna.id, now).await.expect("folders");
    let defaults = store.subscriptions(anna.id).await.expect("subscriptions");
    assert!(defaults.iter().any(|n| n == "INBOX"), "{defaults:?}");
    assert!(
        store
            .mailbox(anna.id, "INBOX")
            .await
            .expect("INBOX")
            .subscribed
    );
    store
        .create_mailbox(anna.id, "Projekte/2026", now)
        .await
        .expect("create");
    let m = store
        .mailbox(anna.id, "Projekte/2026")
        .await
        .expect("mailbox");
    assert!(!m.subscribed, "CREATE does not subscribe");
    assert!(
        store
            .set_subscribed(anna.id, "Gibt es nicht", true)
            .await
            .is_err_and(|e| e.is_not_found())
    );
    store
        .set_subscribed(anna.id, "Projekte/2026", true)
        .await
        .expect("subscribe");
    store
        .set_subscribed(anna.id, "Projekte/2026", true)
        .await
        .expect("subscribing twice is fine");
    assert!(
        store
            .mailbox(anna.id, "Projekte/2026")
            .await
            .expect("mailbox")
            .subscribed
    );
    store
        .delete_mailbox(anna.id, "Projekte/2026")
        .await
        .expect("delete");
    let after = store.subscriptions(anna.id).await.expect("subscriptions");
    assert!(after.iter().any(|n| n == "Projekte/2026"), "{after:?}");
    store
        .set_subscribed(anna.id, "Projekte/2026", false)
        .await
        .expect("a deleted mailbox can be unsubscribed");
    assert!(
        !store
            .subscriptions(anna.id)
            .await
            .expect("subscriptions")
            .iter()
            .any(|n| n == "Projekte/2026")
    );
    assert!(
        store
            .set_subscribed(anna.id, "Projekte/2026", false)
            .await
            .is_err_and(|e| e.is_not_found())
    );
    // RENAME takes the subscriptions of the mailbox and its children along.
    store
        .create_mailbox(anna.id, "Alt/Kind", now)
        .await
        .expect("create");
    for name in ["Alt", "Alt/Kind"] {
        store
            .set_subscribed(anna.id, name, true)
            .await
            .expect("subscribe");
    }
    store
        .rename_mailbox(anna.id, "Alt", "Neu")
        .await
        .expect("rename");
    let renamed = store.subscriptions(anna.id).await.expect("subscriptions");
    assert!(
        renamed.iter().any(|n| n == "Neu") && renamed.iter().any(|n| n == "Neu/Kind"),
        "{renamed:?}"
    );
    assert!(!renamed.iter().any(|n| n.starts_with("Alt")), "{renamed:?}");
    // Unsubscribing INBOX holds when mail arrives.
    store
        .set_subscribed(anna.id, "inbox", false)
        .await
        .expect("unsubscribe INBOX");
    assert!(
        !store
            .mailbox(anna.id, "INBOX")
            .await
            .expect("INBOX")
            .subscribed
    );
}

async fn mailbox_hierarchy_recent_and_uidvalidity_issue_13(db: &TestDb) {
    let store = db.open().await;
    let anna = store
        .create_user(&staff("anna", &["anna@stadt.test"]))
        .await
        .expect("anna");
    let now = store::now_millis();
    store.ensure_mailboxes(anna.id, now).await.expect("folders");
    store
        .create_mailbox(anna.id, "Ablage/", now)
        .await
        .expect("a trailing separator is accepted");
    assert!(store.mailbox(anna.id, "Ablage").await.is_ok());
    store
        .create_mailbox(anna.id, "Eltern/Kind/Enkel", now)
        .await
        .expect("create with parents");
    for name in ["Eltern", "Eltern/Kind", "Eltern/Kind/Enkel"] {
        assert!(store.mailbox(anna.id, name).await.is_ok(), "{name}");
    }
    assert!(
        store
            .create_mailbox(anna.id, "Eltern/Kind", now)
            .await
            .is_err_and(|e| e.is_conflict())
    );
    // The same name, deleted and created again at the same millisecond.
    let before = store.mailbox(anna.id, "Ablage").await.expect("Ablage");
    store
        .delete_mailbox(anna.id, "Ablage")
        .await
        .expect("delete");
    store
        .create_mailbox(anna.id, "Ablage", now)
        .await
        .expect("again");
    let after = store.mailbox(anna.id, "Ablage").await.expect("Ablage");
    assert_ne!(before.uid_validity, after.uid_validity);
    let validities: HashSet<i64> = store
        .mailboxes(anna.id)
        .await
        .expect("list")
        .iter()
        .map(|m| m.uid_validity)
        .collect();
    assert_eq!(validities.len(), 10, "each mailbox its own UIDVALIDITY");

    // \Recent: the first claim gets the new UIDs, the next one nothing until more arrive.
    let box_ = after;
    store
        .append_entry(&box_, b"Subject: 1\r\n\r\nx\r\n", &[], now)
        .await
        .expect("append");
    store
        .append_entry(&box_, b"Subject: 2\r\n\r\nx\r\n", &[], now)
        .await
        .expect("append");
    assert_eq!(store.claim_recent(box_.id).await.expect("claim"), 1..3);
    assert_eq!(store.claim_recent(box_.id).await.expect("claim"), 3..3);
    store
        .append_entry(&box_, b"Subject: 3\r\n\r\nx\r\n", &[], now)
        .await
        .expect("append");
    let fresh = store.mailbox_by_id(box_.id).await.expect("mailbox");
    assert_eq!(fresh.recent_uid, 3);
    assert_eq!(store.claim_recent(box_.id).await.expect("claim"), 3..4);
    // Sessions claiming at once while mail arrives: each UID is recent in one session only,
    // and none is left out.
    let claims: Vec<_> = (0..8)
        .map(|n| {
            let store = store.clone();
            let box_ = box_.clone();
            tokio::spawn(async move {
                let mut ranges = Vec::new();
                for _ in 0..5 {
                    let subject = format!("Subject: {n}\r\n\r\nx\r\n");
                    store
                        .append_entry(&box_, subject.as_bytes(), &[], now)
                        .await
                        .expect("append");
                    ranges.push(store.claim_recent(box_.id).await.expect("claim"));
                }
                ranges
            })
        })
        .collect();
    let mut uids = Vec::new();
    for claim in claims {
        for range in claim.await.expect("join") {
            uids.extend(range);
        }
    }
    uids.extend(store.claim_recent(box_.id).await.expect("claim"));
    uids.sort_unstable();
    assert_eq!(uids, (4..44).collect::<Vec<i64>>());
    // What changed since a mod-sequence: new entries, flags set, and UIDs expunged.
    let since = store
        .mailbox_by_id(box_.id)
        .await
        .expect("mailbox")
        .highest_modseq;
    assert_eq!(
        store.changes_since(box_.id, since).await.expect("changes"),
        (Vec::new(), Vec::new())
    );
    let flagged = store.mailbox_by_id(box_.id).await.expect("mailbox");
    store
        .set_flags(
            &flagged,
            &[2, 5],
            FlagOp::Add,
            &["\\Deleted".to_owned()],
            None,
        )
        .await
        .expect("flags");
    let (changed, expunged) = store.changes_since(box_.id, since).await.expect("changes");
    assert_eq!(changed.iter().map(|e| e.uid).collect::<Vec<_>>(), [2, 5]);
    assert!(
        changed
            .iter()
            .all(|e| e.has("\\Deleted") && e.modseq > since)
    );
    assert!(expunged.is_empty());
    let flagged = store.mailbox_by_id(box_.id).await.expect("mailbox");
    assert_eq!(
        store.expunge(&flagged, Some(&[5])).await.expect("expunge"),
        [5]
    );
    store
        .append_entry(&box_, b"Subject: 45\r\n\r\nx\r\n", &[], now)
        .await
        .expect("append");
    let (changed, expunged) = store.changes_since(box_.id, since).await.expect("changes");
    assert_eq!(changed.iter().map(|e| e.uid).collect::<Vec<_>>(), [2, 44]);
    assert_eq!(expunged, [5]);
    assert_eq!(
        store
            .expunged_since(box_.id, since)
            .await
            .expect("expunged"),
        expunged
    );
    assert!(
        store
            .claim_recent(999_999)
            .await
            .is_err_and(|e| e.kind() == store::ErrorKind::NotFound)
    );
}

async fn mailbox_entries_never_serve_a_sensitive_original(db: &TestDb) {
    let store = db.open().await;
    let anna = store
        .create_user(&staff("anna", &["anna@stadt.test"]))
        .await
        .expect("anna");
    let id = store
        .insert_message(message(anna.id, "anna@stadt.test", "geheim"))
        .await
        .expect("message");
    let now = store::now_millis();
    store.ensure_mailboxes(anna.id, now).await.expect("folders");
    let inbox = store.mailbox(anna.id, "INBOX").await.expect("INBOX");
    // An entry for a sensitive message whose notice is missing (as a bug would leave it).
    raw_execute(
        &store,
        &format!(
            "INSERT INTO message_verdicts (message_id, sensitive, categories, findings, classified_at) \
             VALUES ({id}, {}, '[]', '[]', {now})",
            if db.url.starts_with("postgres") { "TRUE" } else { "1" }
        ),
    )
    .await;
    raw_execute(
        &store,
        &format!(
            "INSERT INTO mailbox_entries (mailbox_id, uid, message_id, modseq, internal_date, size) \
             VALUES ({}, 1, {id}, 1, {now}, 10)",
            inbox.id
        ),
    )
    .await;
    let err = store
        .entry_content(inbox.id, 1)
        .await
        .expect_err("served a sensitive original");
    assert_eq!(err.kind(), store::ErrorKind::Forbidden);
    // Copied elsewhere, it still serves nothing.
    let archive = store.mailbox(anna.id, "Archive").await.expect("Archive");
    store
        .copy_entries(&inbox, &[1], &archive, false)
        .await
        .expect("copy");
    assert!(store.entry_content(archive.id, 1).await.is_err());
    // With the notice in place, the notice is served.
    raw_execute(
        &store,
        &format!(
            "UPDATE message_recipients SET mailbox_notice = {} WHERE message_id = {id}",
            if db.url.starts_with("postgres") {
                "'\\x4e4f54494345'::bytea"
            } else {
                "X'4e4f54494345'"
            }
        ),
    )
    .await;
    assert_eq!(
        store.entry_content(archive.id, 1).await.expect("notice"),
        b"NOTICE"
    );
}

async fn app_passwords_are_listed_used_and_revoked(db: &TestDb) {
    let store = db.open().await;
    let anna = store.create_user(&staff("anna", &[])).await.expect("anna");
    let now = store::now_millis();
    let id = store
        .create_app_password(anna.id, "iPhone", "h1", now)
        .await
        .expect("create");
    store
        .create_app_password(anna.id, "Laptop", "h2", now)
        .await
        .expect("create");
    assert!(
        store
            .create_app_password(anna.id, "iPhone", "h3", now)
            .await
            .is_err(),
        "duplicate label"
    );
    assert!(
        store
            .create_app_password(anna.id, " ", "h3", now)
            .await
            .is_err(),
        "empty label"
    );
    assert_eq!(
        store
            .app_password_hashes(anna.id)
            .await
            .expect("hashes")
            .len(),
        2
    );
    // A login as credentials.rs makes it: asked whether the address is new, then recorded.
    let login = |ip: &'static str, at: i64| {
        let store = store.clone();
        async move {
            let new = store.app_password_used(id, ip, at).await.expect("used");
            store
                .record_login(
                    anna.id,
                    store::LoginVia::Imap {
                        app_password: Some(id),
                    },
                    ip,
                    at,
                    50,
                )
                .await
                .expect("record");
            new
        }
    };
    assert!(
        login("192.0.2.1", now).await,
        "the first login of a device is news"
    );
    assert!(
        !login("192.0.2.1", now).await,
        "the same address again is not"
    );
    assert!(login("192.0.2.2", now + 1).await, "a new IP");
    assert!(
        !login("192.0.2.1", now + 2).await,
        "back at a known address (home, then mobile data, then home) is no news"
    );
    let list = store.app_passwords(anna.id).await.expect("list");
    assert_eq!(list[0].label, "iPhone");
    assert_eq!(list[0].last_ip.as_deref(), Some("192.0.2.1"));
    store
        .revoke_app_password(anna.id, "iPhone", now)
        .await
        .expect("revoke");
    assert!(
        store
            .revoke_app_password(anna.id, "iPhone", now)
            .await
            .is_err()
    );
    let hashes = store.app_password_hashes(anna.id).await.expect("hashes");
    assert_eq!(hashes.len(), 1);
    assert_eq!(hashes[0].1, "h2");
}

async fn app_passwords_are_issued_and_withdrawn_with_audit(db: &TestDb) {
    let store = db.open().await;
    let anna = store.create_user(&staff("anna", &[])).await.expect("anna");
    let now = store::now_millis();
    let change = store::DeviceChange {
        user_id: anna.id,
        login: "anna",
        label: " iPad & <Büro> ",
        actor: "anna",
    };
    let password = store.issue_app_password(&change, now).await.expect("issue");
    assert_eq!(password.len(), store::APP_PASSWORD_LENGTH);
    let listed = store.app_passwords(anna.id).await.expect("list");
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].label, "iPad & <Büro>");
    assert!(
        store
            .issue_app_password(&change, now)
            .await
            .expect_err("same label twice")
            .is_conflict()
    );
    assert!(
        store
            .app_password_matches(anna.id, "iPad & <Büro>", &password)
            .await
            .expect("match")
    );
    assert!(
        !store
            .app_password_matches(anna.id, "iPad & <Büro>", "falsch")
            .await
            .expect("match")
    );
    assert!(
        !store
            .app_password_matches(anna.id, "Laptop", &password)
            .await
            .expect("match"),
        "another device's label"
    );
    store
        .withdraw_app_password(&change, now)
        .await
        .expect("withdraw");
    assert!(
        !store
            .app_password_matches(anna.id, "iPad & <Büro>", &password)
            .await
            .expect("match"),
        "revoked device still matches"
    );
    assert_eq!(
        store
            .withdraw_app_password(&change, now)
            .await
            .expect_err("twice")
            .kind(),
        store::ErrorKind::NotFound
    );
    let audit = store.list_audit(0, 100).await.expect("audit");
    let actions: Vec<_> = audit.iter().map(|e| e.action.as_str()).collect();
    assert_eq!(actions, ["app_password.created", "app_password.revoked"]);
    assert_eq!(audit[0].details["label"], "iPad & <Büro>");
}

fn limits(ban_after: u32) -> store::LoginLimits {
    store::LoginLimits {
        failure_delay: std::time::Duration::from_millis(100),
        ban_after,
        ban: std::time::Duration::from_secs(60),
    }
}

async fn failed_logins_are_counted_before_the_check_and_ban_addresses(db: &TestDb) {
    use store::Admission;
    let store = db.open().await;
    let l = limits(3);
    let now = store::now_millis();
    let delay = |ms| Admission::Check {
        delay_if_wrong: std::time::Duration::from_millis(ms),
    };
    // Three failures from one address: the delay doubles.
    for (i, ms) in [100, 200, 400].into_iter().enumerate() {
        let at = now + i as i64;
        assert_eq!(
            store
                .admit_login(&l, "192.0.2.1", "anna", at)
                .await
                .expect("admit"),
            delay(ms)
        );
    }
    // Banned now, whatever the account: refused without a check, until 60 s after the last.
    assert_eq!(
        store
            .admit_login(&l, "192.0.2.1", "bert", now + 10)
            .await
            .expect("admit"),
        Admission::Banned {
            until: now + 2 + 60_000
        }
    );
    assert_eq!(
        store
            .login_failures_of_ip("192.0.2.1", now + 10)
            .await
            .expect("n"),
        3
    );
    // The account's count goes on from another address (slowed, not banned).
    assert_eq!(
        store
            .admit_login(&l, "192.0.2.2", "anna", now + 20)
            .await
            .expect("admit"),
        delay(800)
    );
    // A success takes its own count back and forgets the account's failures.
    store
        .login_succeeded("192.0.2.2", "anna")
        .await
        .expect("success");
    assert_eq!(
        store
            .login_failures_of_ip("192.0.2.2", now + 20)
            .await
            .expect("n"),
        0
    );
    assert_eq!(
        store
            .admit_login(&l, "192.0.2.3", "anna", now + 30)
            .await
            .expect("admit"),
        delay(100)
    );
    // The ban ends; old counts are forgotten after the window.
    let later = now + 2 + 60_000;
    assert!(matches!(
        store
            .admit_login(&l, "192.0.2.1", "anna", later)
            .await
            .expect("admit"),
        Admission::Check { .. }
    ));
    let much_later = later + i64::try_from(store::FAILURE_WINDOW.as_millis()).expect("ms");
    assert_eq!(
        store
            .admit_login(&l, "192.0.2.1", "carl", much_later)
            .await
            .expect("admit"),
        delay(100)
    );
}

async fn parallel_login_attempts_each_get_their_own_count(db: &TestDb) {
    let store = db.open().await;
    let l = limits(5);
    let now = store::now_millis();
    let attempts: Vec<_> = (0..20)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move {
                store
                    .admit_login(&l, "198.51.100.7", &format!("user{i}"), now)
                    .await
                    .expect("admit")
            })
        })
        .collect();
    let mut checked = Vec::new();
    let mut banned = 0;
    for a in attempts {
        match a.await.expect("task") {
            store::Admission::Check { delay_if_wrong } => checked.push(delay_if_wrong.as_millis()),
            store::Admission::Banned { .. } => banned += 1,
        }
    }
    checked.sort_unstable();
    assert_eq!(
        checked,
        [100, 200, 400, 800, 1600],
        "each attempt its own count"
    );
    assert_eq!(banned, 15);
}

/// Issue #13 §3: `"alice "`, `"Alice"` and `"alice"` are one account for brute-force
/// counting, whoever calls; and 40 parallel guesses from one address with `ban_after = 10`
/// get exactly 10 checks (the ban check and the count are one step).
async fn login_names_are_counted_normalised_and_parallel_guesses_stop_at_the_ban(db: &TestDb) {
    let store = db.open().await;
    let l = limits(100);
    let now = store::now_millis();
    let mut delays = Vec::new();
    for (i, name) in ["alice ", "Alice", " ALICE\t", "alice"].iter().enumerate() {
        // A fresh address each time: only the account's count can grow.
        let ip = format!("192.0.2.{}", 10 + i);
        match store
            .admit_login(&l, &ip, name, now + i64::try_from(i).expect("small"))
            .await
            .expect("admit")
        {
            store::Admission::Check { delay_if_wrong } => delays.push(delay_if_wrong.as_millis()),
            store::Admission::Banned { .. } => panic!("banned"),
        }
    }
    assert_eq!(
        delays,
        [100, 200, 400, 800],
        "one counter for every spelling"
    );
    // A success under one spelling forgets the failures of all.
    store
        .login_succeeded("192.0.2.10", " Alice ")
        .await
        .expect("succeeded");
    assert_eq!(
        store
            .admit_login(&l, "192.0.2.20", "alice", now + 10)
            .await
            .expect("admit"),
        store::Admission::Check {
            delay_if_wrong: std::time::Duration::from_millis(100)
        }
    );

    let l = limits(10);
    let guesses: Vec<_> = (0..40)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move {
                store
                    .admit_login(&l, "198.51.100.9", &format!("guess{i}"), now)
                    .await
                    .expect("admit")
            })
        })
        .collect();
    let mut checked = 0;
    for g in guesses {
        if matches!(g.await.expect("task"), store::Admission::Check { .. }) {
            checked += 1;
        }
    }
    assert_eq!(checked, 10, "exactly ban_after guesses are checked");
}

/// Revoking a device, changing the password and disabling the account are announced (IMAP
/// ends the sessions); `app_password_live` tells other nodes the same.
async fn credential_changes_are_announced_and_devices_rechecked(db: &TestDb) {
    let store = db.open().await;
    let anna = store.create_user(&staff("anna", &[])).await.expect("anna");
    let now = store::now_millis();
    let phone = store
        .create_app_password(anna.id, "iPhone", "h", now)
        .await
        .expect("device");
    let mut heard = store.credential_changes();
    assert!(store.app_password_live(anna.id, phone).await.expect("live"));
    assert!(
        !store
            .app_password_live(anna.id + 1, phone)
            .await
            .expect("other user")
    );
    store
        .revoke_app_password(anna.id, "iPhone", now)
        .await
        .expect("revoke");
    assert_eq!(heard.try_recv().ok(), Some(anna.id));
    assert!(
        !store
            .app_password_live(anna.id, phone)
            .await
            .expect("revoked")
    );
    store
        .set_password_hash("anna", &password::hash("neu").expect("hash"))
        .await
        .expect("password");
    assert_eq!(heard.try_recv().ok(), Some(anna.id));
    let tablet = store
        .create_app_password(anna.id, "Tablet", "h2", now)
        .await
        .expect("device");
    store
        .create_user(&NewUser {
            login: "admin".to_owned(),
            role: Role::Admin,
            ..staff("admin", &[])
        })
        .await
        .expect("admin");
    store
        .set_user_disabled("anna", true, "admin", now)
        .await
        .expect("disable");
    assert_eq!(heard.try_recv().ok(), Some(anna.id));
    assert!(
        !store
            .app_password_live(anna.id, tablet)
            .await
            .expect("disabled"),
        "a disabled user's device is not live"
    );
}

async fn login_history_flags_new_addresses_merges_repeats_and_is_bounded(db: &TestDb) {
    use store::LoginVia;
    let store = db.open().await;
    let anna = store.create_user(&staff("anna", &[])).await.expect("anna");
    let bert = store.create_user(&staff("bert", &[])).await.expect("bert");
    let now = store::now_millis();
    let phone = store
        .create_app_password(anna.id, "iPhone", "h", now)
        .await
        .expect("device");
    let imap = LoginVia::Imap {
        app_password: Some(phone),
    };
    assert!(
        store
            .record_login(anna.id, LoginVia::Web, "192.0.2.1", now, 5)
            .await
            .expect("web")
    );
    // The same address from a device: not new for the user.
    assert!(
        !store
            .record_login(anna.id, imap, "192.0.2.1", now + 1, 5)
            .await
            .expect("imap")
    );
    // Repeats within the hour share the row.
    assert!(
        !store
            .record_login(anna.id, imap, "192.0.2.1", now + 60_000, 5)
            .await
            .expect("again")
    );
    assert!(
        store
            .record_login(anna.id, imap, "203.0.113.9", now + 120_000, 5)
            .await
            .expect("new")
    );
    // Another user's addresses are theirs.
    assert!(
        store
            .record_login(bert.id, LoginVia::Web, "203.0.113.9", now, 5)
            .await
            .expect("bert")
    );
    let rows = store.logins(anna.id, None, 50).await.expect("rows");
    let seen: Vec<_> = rows
        .iter()
        .map(|r| {
            (
                r.via.as_str(),
                r.device.as_deref(),
                r.ip.as_str(),
                r.count,
                r.new_address,
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            ("imap", Some("iPhone"), "203.0.113.9", 1, true),
            ("imap", Some("iPhone"), "192.0.2.1", 2, false),
            ("web", None, "192.0.2.1", 1, true),
        ]
    );
    assert_eq!(rows[1].last_at, now + 60_000);
    // Paging.
    let older = store
        .logins(anna.id, Some(rows[0].id), 1)
        .await
        .expect("page");
    assert_eq!(older.len(), 1);
    assert_eq!(older[0].id, rows[1].id);
    // Bounded: the newest `keep` rows stay.
    for i in 0..10 {
        store
            .record_login(
                anna.id,
                LoginVia::Web,
                &format!("10.0.0.{i}"),
                now + 200_000 + i,
                5,
            )
            .await
            .expect("more");
    }
    let rows = store.logins(anna.id, None, 50).await.expect("rows");
    assert_eq!(rows.len(), 5);
    assert_eq!(rows[0].ip, "10.0.0.9");
    assert_eq!(
        store.logins(bert.id, None, 50).await.expect("bert").len(),
        1
    );
}

async fn users_list_and_end_their_own_web_sessions(db: &TestDb) {
    let store = db.open().await;
    let anna = store.create_user(&staff("anna", &[])).await.expect("anna");
    let bert = store.create_user(&staff("bert", &[])).await.expect("bert");
    let now = store::now_millis();
    for (hash, user, ip, at) in [
        ("a1", anna.id, "192.0.2.1", now),
        ("a2", anna.id, "192.0.2.2", now + 1),
        ("a3", anna.id, "192.0.2.3", now + 2),
        ("b1", bert.id, "192.0.2.9", now),
    ] {
        store
            .create_web_session(hash, user, "csrf", ip, at, now + 10_000)
            .await
            .expect("session");
    }
    let mine = store
        .web_sessions_of(anna.id, "a2", now + 5)
        .await
        .expect("list");
    assert_eq!(
        mine.iter()
            .map(|s| (s.ip.as_str(), s.current))
            .collect::<Vec<_>>(),
        [
            ("192.0.2.3", false),
            ("192.0.2.2", true),
            ("192.0.2.1", false)
        ]
    );
    assert!(
        mine.iter()
            .all(|s| s.handle.len() == 32 && !s.handle.contains("a1"))
    );
    // Bert cannot end Anna's session with its handle.
    let handle = mine[2].handle.clone();
    assert_eq!(
        store
            .end_web_session(bert.id, &handle)
            .await
            .expect_err("foreign")
            .kind(),
        store::ErrorKind::NotFound
    );
    store.end_web_session(anna.id, &handle).await.expect("end");
    assert_eq!(store.web_session("a1", now + 5).await.expect("read"), None);
    assert_eq!(
        store
            .end_web_session(anna.id, &handle)
            .await
            .expect_err("twice")
            .kind(),
        store::ErrorKind::NotFound
    );
    assert_eq!(
        store
            .end_other_web_sessions(anna.id, "a2")
            .await
            .expect("others"),
        1
    );
    assert!(
        store
            .web_session("a2", now + 5)
            .await
            .expect("read")
            .is_some()
    );
    assert!(
        store
            .web_session("a3", now + 5)
            .await
            .expect("read")
            .is_none()
    );
    assert!(
        store
            .web_session("b1", now + 5)
            .await
            .expect("read")
            .is_some(),
        "bert's session ended"
    );
    // Expired sessions are not listed.
    assert!(
        store
            .web_sessions_of(anna.id, "a2", now + 10_000)
            .await
            .expect("list")
            .is_empty()
    );
}

/// Issue 12: the confirmation link's token is stored hashed with the request and finds it;
/// the user's own exemptions are listed newest first.
async fn exemption_links_find_their_request(db: &TestDb) {
    use exemption_contract::{mail, people, policy, request};
    const T0: i64 = 1_800_000_000_000;
    let store = db.open().await;
    people(&store).await;
    let p = policy();
    let e = store
        .request_exemption_with_link(
            &request("anna", "anna", "anna.privat@example.net", 7),
            &p,
            "code-hash",
            Some("link-hash"),
            mail,
            T0,
        )
        .await
        .expect("request");
    let found = store
        .exemption_by_link("link-hash")
        .await
        .expect("lookup")
        .expect("found by its link");
    assert_eq!((found.id, found.login.as_str()), (e.id, "anna"));
    assert_eq!(
        store.exemption_by_link("other").await.expect("lookup"),
        None
    );
    // Without a link (the CLI before, or tests): nothing to find, and a second request
    // without one does not collide with the first (NULLs are not unique).
    let b = store
        .request_exemption(
            &request("bert", "bert", "bert@example.net", 7),
            &p,
            "h",
            mail,
            T0,
        )
        .await
        .expect("request without link");
    let mine = store.exemptions_of("ANNA").await.expect("list");
    assert_eq!(mine.iter().map(|e| e.id).collect::<Vec<_>>(), [e.id]);
    assert_eq!(store.exemptions_of("bert").await.expect("list")[0].id, b.id);
    assert!(
        store
            .exemptions_of("nobody")
            .await
            .expect("list")
            .is_empty()
    );
}

/// Issue 12: "held messages" lists a user's notices newest first, paged, with categories,
/// and hands out a fresh link only while one of the user's own links is valid.
async fn held_notices_are_listed_and_links_reissued(db: &TestDb) {
    let store = db.open().await;
    let anna = store
        .create_user(&staff("anna", &["anna@stadt.test"]))
        .await
        .expect("anna");
    let bert = store.create_user(&staff("bert", &[])).await.expect("bert");
    let now = store::now_millis();
    let mut ids = Vec::new();
    for (i, (expires, revoked)) in [
        (now + 60_000, "NULL"),
        (now - 1, "NULL"),
        (now + 60_000, "1"),
    ]
    .into_iter()
    .enumerate()
    {
        let id = store
            .insert_message(message(anna.id, "anna@stadt.test", &format!("geheim {i}")))
            .await
            .expect("message");
        raw_execute(
            &store,
            &format!(
                "INSERT INTO notice_tokens (token_hash, message_id, user_id, created_at, expires_at, revoked_at) \
                 VALUES ('h{i}', {id}, {}, {now}, {expires}, {revoked})",
                anna.id
            ),
        )
        .await;
        ids.push(id);
    }
    store
        .record_verdict(
            ids[0],
            &VerdictRecord {
                sensitive: true,
                categories: vec!["health".into()],
                findings: "[]".into(),
            },
        )
        .await
        .expect("verdict");
    let all = store.held_notices(anna.id, 0, 10).await.expect("list");
    assert_eq!(
        all.iter().map(|n| n.message_id).collect::<Vec<_>>(),
        [ids[2], ids[1], ids[0]],
        "newest first"
    );
    assert_eq!(all[2].categories, ["health"]);
    assert_eq!(all[2].valid_until, Some(now + 60_000));
    assert_eq!(all[0].valid_until, None, "revoked: no valid link");
    let page = store.held_notices(anna.id, 2, 1).await.expect("page");
    assert_eq!(
        page.iter().map(|n| n.message_id).collect::<Vec<_>>(),
        [ids[0]]
    );
    assert!(
        store
            .held_notices(bert.id, 0, 10)
            .await
            .expect("bert")
            .is_empty()
    );

    // A fresh link for the valid one, with the same expiry; none for the others or for bert.
    assert!(
        store
            .reissue_notice_token(ids[0], anna.id, "fresh", now)
            .await
            .expect("reissue")
    );
    let opened = store
        .open_notice(
            &NoticeView {
                token_hash: "fresh",
                user_id: anna.id,
                login: "anna",
                ip: "192.0.2.7",
                what: "message",
                gate: VerdictGate::Open,
            },
            now,
        )
        .await
        .expect("open");
    assert_eq!(opened, NoticeAccess::Open { message_id: ids[0] });
    assert_eq!(
        store
            .open_notice(
                &NoticeView {
                    token_hash: "fresh",
                    user_id: anna.id,
                    login: "anna",
                    ip: "",
                    what: "message",
                    gate: VerdictGate::Open,
                },
                now + 60_000
            )
            .await
            .expect("open"),
        NoticeAccess::Refused {
            reason: "the link has expired"
        },
        "the fresh link never outlives the original"
    );
    for (id, user) in [(ids[1], anna.id), (ids[2], anna.id), (ids[0], bert.id)] {
        assert!(
            !store
                .reissue_notice_token(id, user, "never", now)
                .await
                .expect("reissue"),
            "message {id} for user {user}"
        );
    }
}

/// Limits are in characters, as every message says: 100 "ä" (200 bytes) are a label of 100;
/// labels and reasons refuse control and text-direction characters.
async fn length_limits_count_characters_not_bytes(db: &TestDb) {
    use exemption_contract::{mail, people, policy, request};
    let store = db.open().await;
    people(&store).await;
    let anna = store.user_by_login("anna").await.expect("anna");
    let now = store::now_millis();
    for (label, fits) in [("ä".repeat(100), true), ("ä".repeat(101), false)] {
        let made = store.create_app_password(anna.id, &label, "h", now).await;
        assert_eq!(made.is_ok(), fits, "label of {} ä", label.chars().count());
    }
    // Text-direction overrides would reorder what the audit trail shows: refused.
    for spoof in ["\u{202E}evil", "iPhone\u{2066}x", "a\u{200F}b", "bell\u{7}"] {
        assert!(
            store
                .create_app_password(anna.id, spoof, "h", now)
                .await
                .is_err(),
            "{spoof:?}"
        );
        let mut r = request("bert", "bert", "bert.privat@example.net", 3);
        r.reason = format!("Urlaub {spoof}");
        assert!(
            store
                .request_exemption(&r, &policy(), "h", mail, now)
                .await
                .is_err(),
            "{spoof:?}"
        );
    }
    // A reason may have several lines (it is a text area); a label not.
    let mut r = request("bert", "bert", "bert.privat@example.net", 3);
    r.reason = "Elternzeit\r\nohne Dienstgerät".into();
    let e = store
        .request_exemption(&r, &policy(), "h", mail, now)
        .await
        .expect("two lines");
    store
        .revoke_exemption(e.id, "bert", now)
        .await
        .expect("withdraw");
    assert!(
        store
            .create_app_password(anna.id, "a\tb", "h", now)
            .await
            .is_err()
    );
    // A forwarding target is an address at a domain name.
    for (target, fits) in [
        ("x@127.0.0.1", false),
        ("x@[::1]", false),
        ("x@localhost", false),
        ("<script>@x.de", false),
        ("x@-bad.de", false),
        ("Anna.Privat@Example.NET", true),
        ("anna@müller.example", true),
    ] {
        assert_eq!(store::is_mail_address(target), fits, "{target}");
        let made = store
            .request_exemption(
                &request("bert", "bert", target, 3),
                &policy(),
                "h",
                mail,
                now,
            )
            .await;
        assert_eq!(made.is_ok(), fits, "{target}: {made:?}");
        if let Ok(e) = made {
            store
                .revoke_exemption(e.id, "bert", now)
                .await
                .expect("withdraw");
        }
    }
    for (name, fits) in [("Ö".repeat(200), true), ("Ö".repeat(201), false)] {
        let made = store
            .create_user(&NewUser {
                login: format!("u{}", name.chars().count()),
                name,
                role: Role::Staff,
                password_hash: "x".into(),
                addresses: vec![],
            })
            .await;
        assert_eq!(made.is_ok(), fits);
    }
    for (reason, fits) in [("ü".repeat(1000), true), ("ü".repeat(1001), false)] {
        let mut r = request("bert", "bert", "bert.privat@example.net", 3);
        r.reason = reason;
        let made = store.request_exemption(&r, &policy(), "h", mail, now).await;
        assert_eq!(made.is_ok(), fits, "{made:?}");
        if let Ok(e) = made {
            store
                .revoke_exemption(e.id, "bert", now)
                .await
                .expect("withdraw");
        }
    }
}

mod submission {
    use super::*;

    fn submitted(user_id: i64, recipients: &[&str], hold: bool) -> store::Submission {
        store::Submission {
            user_id,
            login: "anna".into(),
            device: 1,
            mail_from: "anna@stadt.example".into(),
            recipients: recipients.iter().map(|r| (*r).to_owned()).collect(),
            body: b"From: anna@stadt.example\r\nSubject: vertraulich\r\n\r\nText\r\n".to_vec(),
            sensitive: hold,
            categories: if hold { vec!["tax_id".into()] } else { vec![] },
            hold,
        }
    }

    /// Issue #14: a submission is one job for all its recipients with its audit entry (no
    /// content, no addresses); held ones are not leased until released (audited); counts
    /// per user and hour; a retry keeps only the recipients still to try.
    pub(super) async fn submissions_are_queued_held_released_and_counted(db: &TestDb) {
        let store = db.open().await;
        let anna = store
            .create_user(&staff("anna", &["anna@stadt.example"]))
            .await
            .expect("user")
            .id;
        let device = store
            .create_app_password(anna, "iPhone", "hash", 900)
            .await
            .expect("device");
        assert_eq!(device, 1, "the submissions below name device 1");
        let clean = store
            .submit(
                &submitted(anna, &["b@example.org", "C@Example.org"], false),
                1000,
            )
            .await
            .expect("submit");
        let held = store
            .submit(&submitted(anna, &["d@example.org"], true), 1001)
            .await
            .expect("submit");
        assert!(
            store
                .submit(&submitted(anna, &["a b@example.org"], false), 1002)
                .await
                .is_err_and(|e| e.kind() == store::ErrorKind::Invalid),
            "whitespace in a recipient would split it"
        );
        assert!(
            store
                .submit(&submitted(anna, &[], false), 1002)
                .await
                .is_err()
        );
        assert_eq!(
            store
                .submissions_since(anna, 1000, 10)
                .await
                .expect("count"),
            2
        );
        assert_eq!(
            store
                .submissions_since(anna, 1001, 10)
                .await
                .expect("count"),
            1
        );
        assert_eq!(
            store
                .submissions_since(anna, 1002, 10)
                .await
                .expect("count"),
            0
        );
        assert_eq!(
            store.submissions_since(anna, 1000, 1).await.expect("count"),
            1,
            "counted up to the cap"
        );

        let jobs = store.list_outbound(10).await.expect("list");
        let state = |id: i64| jobs.iter().find(|j| j.id == id).expect("job").state.clone();
        assert_eq!(
            (state(clean), state(held)),
            ("queued".into(), "held".into())
        );

        let leased = store.lease_jobs("n", 2000, 3000, 10).await.expect("lease");
        assert_eq!(leased.len(), 1, "a held job is not leased");
        assert_eq!(leased[0].id, clean);
        assert_eq!(leased[0].rcpt_to, "b@example.org C@Example.org");
        assert_eq!(leased[0].user_id, Some(anna));
        let retry = store::JobOutcome::Retry {
            at: 2500,
            error: "C@Example.org: 451 later".into(),
            rcpt_to: Some("C@Example.org".into()),
        };
        store
            .finish_job(&leased[0], "n", &retry, 2001)
            .await
            .expect("retry");
        let again = store.lease_jobs("n", 2600, 3000, 10).await.expect("lease");
        assert_eq!(again.len(), 1);
        assert_eq!(
            again[0].rcpt_to, "C@Example.org",
            "only the deferred recipient is left"
        );

        assert!(
            store
                .release_job(clean, "root", 2700)
                .await
                .is_err_and(|e| e.is_not_found()),
            "only held jobs are released"
        );
        store
            .release_job(held, "root", 2700)
            .await
            .expect("release");
        let leased = store.lease_jobs("m", 2700, 3800, 10).await.expect("lease");
        assert_eq!(leased.iter().map(|j| j.id).collect::<Vec<_>>(), [held]);

        let audit = store.list_audit(0, 100).await.expect("audit");
        let accepted: Vec<_> = audit
            .iter()
            .filter(|e| e.action == "submission.accepted")
            .collect();
        assert_eq!(accepted.len(), 2);
        assert_eq!(accepted[0].actor, "anna");
        assert_eq!(accepted[0].details["recipients"], 2);
        assert_eq!(
            accepted[0].details["label"], "iPhone",
            "the device as people know it"
        );
        assert_eq!(accepted[1].details["held"], true);
        assert_eq!(accepted[1].details["categories"][0], "tax_id");
        let text = serde_json::to_string(&accepted).expect("json");
        for leak in ["example.org", "vertraulich", "Text"] {
            assert!(!text.contains(leak), "{leak} in {text}");
        }
        let released: Vec<_> = audit
            .iter()
            .filter(|e| e.action == "submission.released")
            .collect();
        assert_eq!(released.len(), 1);
        assert_eq!(released[0].actor, "root");
        assert_eq!(released[0].subjects, [format!("job:{held}")]);
        assert!(matches!(
            store.verify_audit().await.expect("verify"),
            store::AuditCheck::Intact { .. }
        ));
    }
}
use submission::submissions_are_queued_held_released_and_counted;
