//! Contract tests of what the admin and data-protection pages read and change (issue #12
//! §2, §3).

use store::testing::{TestDb, raw_execute};
use store::{
    AuditCounts, AuditFilter, ErrorKind, MessageFilter, NewAuditEntry, Page, Role, VerdictKind,
    VerdictRecord,
};

use super::{message, queued, staff};

pub(super) async fn users_are_disabled_and_enabled_with_audit(db: &TestDb) {
    let store = db.open().await;
    let admin = store
        .create_user(&store::NewUser {
            role: Role::Admin,
            ..staff("root", &[])
        })
        .await
        .expect("admin");
    let anna = store
        .create_user(&staff("anna", &["anna@stadt.example"]))
        .await
        .expect("anna");
    assert_eq!(anna.disabled_at, None);
    let now = store::now_millis();
    store
        .create_web_session("s-anna", anna.id, "c", "127.0.0.1", now, now + 60_000)
        .await
        .expect("session");
    store
        .create_app_password(anna.id, "iPhone", "hash-iphone", now)
        .await
        .expect("device");
    store
        .create_app_password(anna.id, "Laptop", "hash-laptop", now)
        .await
        .expect("device");
    let counts = store.device_counts().await.expect("counts");
    assert_eq!(counts.get(&anna.id), Some(&2));
    assert_eq!(counts.get(&admin.id), None);

    let disabled = store
        .set_user_disabled("Anna", true, "root", now)
        .await
        .expect("disable");
    assert_eq!(disabled.disabled_at, Some(now));
    assert_eq!(
        store.web_session("s-anna", now).await.expect("read"),
        None,
        "a disabled user's session goes on"
    );
    assert_eq!(
        store.password_hash("anna").await.expect("hash"),
        store::password::dummy_hash(),
        "a disabled user's password still works"
    );
    assert!(
        store
            .app_password_hashes(anna.id)
            .await
            .expect("hashes")
            .is_empty(),
        "a disabled user's devices still log in"
    );
    let listed = store.list_users().await.expect("list");
    assert!(
        listed
            .iter()
            .any(|u| u.login == "anna" && u.disabled_at == Some(now))
    );
    assert_eq!(
        store
            .set_user_disabled("anna", true, "root", now)
            .await
            .expect_err("twice")
            .kind(),
        ErrorKind::Conflict
    );
    assert_eq!(
        store
            .set_user_disabled("root", true, "ROOT", now)
            .await
            .expect_err("self")
            .kind(),
        ErrorKind::Invalid
    );
    assert!(
        store
            .set_user_disabled("nobody", true, "root", now)
            .await
            .expect_err("unknown")
            .is_not_found()
    );

    let enabled = store
        .set_user_disabled("anna", false, "root", now + 1)
        .await
        .expect("enable");
    assert_eq!(enabled.disabled_at, None);
    assert_eq!(
        store.password_hash("anna").await.expect("hash"),
        "$test$anna"
    );
    assert_eq!(
        store
            .app_password_hashes(anna.id)
            .await
            .expect("hashes")
            .len(),
        2
    );
    let entries = store.list_audit(0, 100).await.expect("audit");
    let actions: Vec<_> = entries
        .iter()
        .map(|e| (e.actor.as_str(), e.action.as_str(), e.subjects.clone()))
        .collect();
    assert_eq!(
        actions,
        [
            ("root", "user.disabled", vec!["user:anna".to_owned()]),
            ("root", "user.enabled", vec!["user:anna".to_owned()]),
        ]
    );
    assert!(matches!(
        store.verify_audit().await.expect("verify"),
        store::AuditCheck::Intact { entries: 2, .. }
    ));
}

fn entry(
    actor: &str,
    action: &str,
    subjects: &[&str],
    details: serde_json::Value,
) -> NewAuditEntry {
    NewAuditEntry {
        actor: actor.to_owned(),
        action: action.to_owned(),
        subjects: subjects.iter().map(|s| (*s).to_owned()).collect(),
        details,
    }
}

pub(super) async fn audit_is_searched_by_user_type_and_time(db: &TestDb) {
    let store = db.open().await;
    let anna = store.create_user(&staff("anna", &[])).await.expect("anna");
    let start = store::now_millis();
    let none = serde_json::json!({});
    for e in [
        entry(
            "anna",
            "exemption.requested",
            &["exemption:1", "user:anna"],
            none.clone(),
        ),
        entry(
            "root",
            "exemption.approved",
            &["exemption:1", "user:anna"],
            none.clone(),
        ),
        entry("root", "user.created", &["user:bert"], none.clone()),
        entry(
            "anna",
            "notice.viewed",
            &["message:7", &format!("user:{}", anna.id)],
            none.clone(),
        ),
        entry(
            "bert",
            "notice.view_refused",
            &["message:7", "user:99"],
            none.clone(),
        ),
        // A subject that merely starts like anna's is not hers.
        entry("system", "queue.dropped", &["user:annabel"], none.clone()),
    ] {
        store.append_audit(&e).await.expect("append");
    }
    let search = |filter: AuditFilter, page: Page, limit: i64| {
        let store = store.clone();
        async move {
            store
                .search_audit(&filter, page, limit)
                .await
                .expect("search")
                .into_iter()
                .map(|e| e.seq)
                .collect::<Vec<_>>()
        }
    };
    let all = AuditFilter::default();
    assert_eq!(
        search(all.clone(), Page::Newest, 100).await,
        [6, 5, 4, 3, 2, 1]
    );
    // Pages: newest first, then older ones; "newer" reads upwards in chain order.
    assert_eq!(search(all.clone(), Page::Newest, 2).await, [6, 5]);
    assert_eq!(search(all.clone(), Page::Before(5), 2).await, [4, 3]);
    assert_eq!(search(all.clone(), Page::After(2), 2).await, [3, 4]);
    assert_eq!(
        search(all.clone(), Page::Newest, 0).await,
        Vec::<i64>::new()
    );

    let annas = AuditFilter {
        user: Some("Anna".into()),
        ..AuditFilter::default()
    };
    // Her own actions, entries about her by login and by id; not annabel's.
    assert_eq!(search(annas.clone(), Page::Newest, 100).await, [4, 2, 1]);
    assert_eq!(search(annas.clone(), Page::Before(4), 1).await, [2]);
    let berts = AuditFilter {
        user: Some("bert".into()),
        ..AuditFilter::default()
    };
    // bert is no user: his login as actor and subject still find his entries.
    assert_eq!(search(berts, Page::Newest, 100).await, [5, 3]);

    let approved = AuditFilter {
        action: Some("exemption.approved".into()),
        ..AuditFilter::default()
    };
    assert_eq!(search(approved, Page::Newest, 100).await, [2]);
    let annas_views = AuditFilter {
        action: Some("notice.viewed".into()),
        ..annas.clone()
    };
    assert_eq!(search(annas_views, Page::Newest, 100).await, [4]);

    let end = store::now_millis() + 1;
    let in_range = AuditFilter {
        from: Some(start),
        until: Some(end),
        ..AuditFilter::default()
    };
    assert_eq!(search(in_range, Page::Newest, 100).await.len(), 6);
    let later = AuditFilter {
        from: Some(end),
        ..AuditFilter::default()
    };
    assert!(search(later, Page::Newest, 100).await.is_empty());
    let earlier = AuditFilter {
        until: Some(start),
        ..AuditFilter::default()
    };
    assert!(search(earlier, Page::Newest, 100).await.is_empty());

    // A tampered subject column does not change what the index says was recorded, and the
    // chain check still finds the change.
    raw_execute(
        &store,
        r#"UPDATE audit_log SET subjects = '["user:carl"]' WHERE seq = 1"#,
    )
    .await;
    assert!(matches!(
        store.verify_audit().await.expect("verify"),
        store::AuditCheck::Broken { seq: 1, .. }
    ));

    assert_eq!(
        store.audit_actions().await.expect("actions"),
        [
            "exemption.approved",
            "exemption.requested",
            "notice.view_refused",
            "notice.viewed",
            "queue.dropped",
            "user.created"
        ]
    );
}

pub(super) async fn audit_counts_forwards_notices_and_views(db: &TestDb) {
    let store = db.open().await;
    let start = store::now_millis();
    for (action, outcome) in [
        ("forward.decided", Some("forward")),
        ("forward.decided", Some("forward")),
        ("forward.decided", Some("notice")),
        ("notice.viewed", None),
        ("notice.viewed", None),
        ("notice.viewed", None),
        ("notice.view_refused", None),
        ("exemption.approved", None),
    ] {
        let details = match outcome {
            Some(o) => serde_json::json!({"outcome": o, "sha256": "x", "target": "a@b.example"}),
            None => serde_json::json!({"what": "message"}),
        };
        store
            .append_audit(&entry("system", action, &["message:1"], details))
            .await
            .expect("append");
    }
    let end = store::now_millis() + 1;
    assert_eq!(
        store.count_audit(start, end).await.expect("count"),
        AuditCounts {
            forwards: 2,
            notices: 1,
            views: 3,
            refused: 1
        }
    );
    assert_eq!(
        store.count_audit(end, end + 1000).await.expect("count"),
        AuditCounts::default()
    );
}

pub(super) async fn messages_are_filtered_by_verdict_and_paged(db: &TestDb) {
    let store = db.open().await;
    let anna = store
        .create_user(&staff("anna", &["anna@stadt.example"]))
        .await
        .expect("anna");
    let bert = store
        .create_user(&staff("bert", &["bert@stadt.example"]))
        .await
        .expect("bert");
    let mut ids = Vec::new();
    for (n, (user, to)) in [
        (anna.id, "anna@stadt.example"),
        (anna.id, "anna@stadt.example"),
        (bert.id, "bert@stadt.example"),
        (anna.id, "anna@stadt.example"),
    ]
    .into_iter()
    .enumerate()
    {
        ids.push(
            store
                .insert_message(message(user, to, &format!("m{n}")))
                .await
                .expect("insert"),
        );
    }
    let verdict = |sensitive: bool, categories: &[&str]| VerdictRecord {
        sensitive,
        categories: categories.iter().map(|c| (*c).to_owned()).collect(),
        findings: "[]".into(),
    };
    for (id, v) in [
        (ids[0], verdict(true, &["health", "vs_nfd"])),
        (ids[1], verdict(false, &[])),
        (ids[2], verdict(true, &["health"])),
    ] {
        store.record_verdict(id, &v).await.expect("verdict");
    }
    let list = |filter: MessageFilter| {
        let store = store.clone();
        async move {
            store
                .list_messages(&filter)
                .await
                .expect("list")
                .into_iter()
                .map(|m| m.id)
                .collect::<Vec<_>>()
        }
    };
    let by = |verdict: VerdictKind| MessageFilter {
        verdict: Some(verdict),
        ..MessageFilter::default()
    };
    assert_eq!(list(by(VerdictKind::Clean)).await, [ids[1]]);
    assert_eq!(list(by(VerdictKind::Sensitive)).await, [ids[2], ids[0]]);
    assert_eq!(list(by(VerdictKind::Pending)).await, [ids[3]]);
    assert_eq!(
        list(by(VerdictKind::Category("vs_nfd".into()))).await,
        [ids[0]]
    );
    // A category id is matched whole, never as a part of another.
    assert!(
        list(by(VerdictKind::Category("vs".into())))
            .await
            .is_empty()
    );
    assert_eq!(
        list(MessageFilter {
            user: Some("anna".into()),
            verdict: Some(VerdictKind::Sensitive),
            ..MessageFilter::default()
        })
        .await,
        [ids[0]]
    );
    assert_eq!(
        list(MessageFilter {
            limit: Some(2),
            ..MessageFilter::default()
        })
        .await,
        [ids[3], ids[2]]
    );
    assert_eq!(
        list(MessageFilter {
            page: Page::Before(ids[2]),
            limit: Some(2),
            ..MessageFilter::default()
        })
        .await,
        [ids[1], ids[0]]
    );
    assert_eq!(
        list(MessageFilter {
            page: Page::After(ids[0]),
            limit: Some(2),
            ..MessageFilter::default()
        })
        .await,
        [ids[1], ids[2]],
        "the newer page reads upwards"
    );
}

pub(super) async fn queue_pages_and_forwards_per_exemption(db: &TestDb) {
    let store = db.open().await;
    let anna = store.create_user(&staff("anna", &[])).await.expect("anna");
    raw_execute(
        &store,
        &format!(
            "INSERT INTO exemptions (user_id, target, reason, days, state, requested_by,
                 requested_at, code_hash, code_expires_at)
             VALUES ({id}, 'a@privat.example', 'Urlaub', 7, 'active', 'anna', 1, 'h', 2),
                    ({id}, 'b@privat.example', 'Kur', 7, 'revoked', 'anna', 1, 'h', 2)",
            id = anna.id
        ),
    )
    .await;
    let exemptions = store.list_exemptions().await.expect("exemptions");
    let id = |target: &str| {
        exemptions
            .iter()
            .find(|e| e.target == target)
            .expect("inserted")
            .id
    };
    let (first, second) = (id("a@privat.example"), id("b@privat.example"));
    let mut jobs = Vec::new();
    for (n, (kind, exemption)) in [
        ("forward", Some(first)),
        ("forward", Some(first)),
        ("notice", Some(first)),
        ("forward", Some(second)),
        ("confirmation", Some(second)),
        ("forward", None),
    ]
    .into_iter()
    .enumerate()
    {
        let mail = store::QueuedMail {
            kind: kind.into(),
            ..queued(n)
        };
        jobs.push(
            store
                .enqueue(&mail, exemption, None, 1000)
                .await
                .expect("enqueue"),
        );
    }
    raw_execute(
        &store,
        &format!(
            "UPDATE outbound_jobs SET state = 'delivered' WHERE id IN ({}, {})",
            jobs[0], jobs[2]
        ),
    )
    .await;
    let counts = store.forward_counts().await.expect("counts");
    assert_eq!(
        counts.get(&first),
        Some(&store::ForwardCounts {
            forwards: 2,
            forwards_delivered: 1,
            notices: 1,
            notices_delivered: 1
        })
    );
    assert_eq!(
        counts.get(&second),
        Some(&store::ForwardCounts {
            forwards: 1,
            ..Default::default()
        })
    );
    assert_eq!(counts.len(), 2);

    let ids = |list: Vec<store::OutboundJob>| list.into_iter().map(|j| j.id).collect::<Vec<_>>();
    assert_eq!(
        ids(store.list_outbound(2).await.expect("list")),
        [jobs[5], jobs[4]]
    );
    assert_eq!(
        ids(store
            .list_outbound_page(Page::Before(jobs[4]), 3)
            .await
            .expect("page")),
        [jobs[3], jobs[2], jobs[1]]
    );
    assert!(
        store
            .list_outbound_page(Page::Before(jobs[0]), 3)
            .await
            .expect("page")
            .is_empty()
    );
}
