//! Forwarding exemptions through the real binary: request, the code that only the private
//! mailbox receives, four-eyes approval, activation, revocation — all audited.

use ratspost_tests::daemon::{
    add_user, admin_password, enrol, ratspost, ratspost_as, ratspost_as_ok, ratspost_ok,
    write_config,
};
use store::testing::TestDb;

/// What the private mailbox would receive: the queued confirmation mail for `id`, decoded
/// as a mail client would: (subject, to, from, text body).
async fn confirmation_mail(db: &TestDb, id: i64) -> (String, String, String, String) {
    let store = store::Store::open(&db.url, &store::StoreOptions::default())
        .await
        .expect("open");
    let job = store
        .list_outbound(100)
        .await
        .expect("jobs")
        .into_iter()
        .find(|j| j.exemption_id == Some(id) && j.kind == "confirmation")
        .expect("a queued confirmation mail");
    let raw = store.outbound_body(job.id).await.expect("body");
    store.close().await;
    let mail = mail_parser::MessageParser::default()
        .parse(&raw)
        .expect("a valid MIME message");
    let address = |a: Option<&mail_parser::Address<'_>>| {
        a.and_then(|a| a.first())
            .and_then(|a| a.address())
            .unwrap_or_default()
            .to_owned()
    };
    (
        mail.subject().unwrap_or_default().to_owned(),
        address(mail.to()),
        address(mail.from()),
        mail.body_text(0).unwrap_or_default().into_owned(),
    )
}

fn code_in(text: &str, label: &str) -> String {
    let at = text
        .find(label)
        .unwrap_or_else(|| panic!("no {label:?} in {text}"));
    text[at + label.len()..]
        .trim_start()
        .chars()
        .take(8)
        .collect()
}

async fn flow(db: TestDb) {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = write_config(dir.path(), &db.url, "");
    enrol(&config, "anna", "anna@stadt.test", "pw-anna-1");
    for admin in ["admin1", "admin2"] {
        add_user(&config, admin, "admin", &[], "pw-admin");
    }

    let out = ratspost_as_ok(
        &config,
        &[
            "exemption",
            "request",
            "--user",
            "anna",
            "--to",
            "Anna.Privat@example.net",
            "--days",
            "14",
            "--reason",
            "Elternzeit ohne Dienstgerät",
            "--by",
            "anna",
            "--json",
        ],
        "pw-anna-1",
        None,
    );
    let e: serde_json::Value = serde_json::from_str(&out).expect("json");
    let id = e["id"].as_i64().expect("id");
    assert_eq!(e["state"], "requested");
    assert!(
        !out.contains("code_hash") && !out.contains("Bestätigungscode"),
        "the code is never shown: {out}"
    );

    let (subject, to, from, text) = confirmation_mail(&db, id).await;
    assert_eq!(subject, "Bestätigung Ihrer Weiterleitungsadresse");
    assert_eq!(to, "anna.privat@example.net");
    assert_eq!(from, "ratspost@localhost");
    assert!(text.contains("14 Tage"), "{text}");
    let code = code_in(&text, "Bestätigungscode:");
    assert!(
        code.len() == 8 && code.bytes().all(|b| b.is_ascii_digit()),
        "{code:?}"
    );

    let wrong = ratspost(
        &config,
        &["exemption", "confirm", &id.to_string(), "00000000"],
        None,
    );
    assert_eq!(wrong.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&wrong.stderr).contains("tries left"));
    let self_approval = ratspost_as(
        &config,
        &["exemption", "approve", &id.to_string(), "--by", "anna"],
        "pw-anna-1",
        None,
    );
    assert_eq!(
        self_approval.status.code(),
        Some(1),
        "the user cannot approve their own exemption"
    );

    ratspost_as_ok(
        &config,
        &["exemption", "approve", &id.to_string(), "--by", "admin1"],
        "pw-admin",
        None,
    );
    let confirmed = ratspost_ok(
        &config,
        &["exemption", "confirm", &id.to_string(), &code],
        None,
    );
    assert!(confirmed.contains("now active"), "{confirmed}");

    let list: serde_json::Value = serde_json::from_str(&ratspost_ok(
        &config,
        &["exemption", "list", "--json"],
        None,
    ))
    .expect("json");
    assert_eq!(list[0]["state"], "active");
    assert_eq!(list[0]["approved_by"], "admin1");
    assert!(
        list[0]["valid_until"].as_i64().expect("until")
            > list[0]["valid_from"].as_i64().expect("from")
    );

    ratspost_as_ok(
        &config,
        &["exemption", "revoke", &id.to_string(), "--by", "admin2"],
        "pw-admin",
        None,
    );
    let list: serde_json::Value = serde_json::from_str(&ratspost_ok(
        &config,
        &["exemption", "list", "--json"],
        None,
    ))
    .expect("json");
    assert_eq!(list[0]["state"], "revoked");

    let audit: serde_json::Value =
        serde_json::from_str(&ratspost_ok(&config, &["audit", "list", "--json"], None))
            .expect("json");
    let actions: Vec<&str> = audit
        .as_array()
        .expect("array")
        .iter()
        .filter_map(|a| a["action"].as_str())
        .filter(|a| a.starts_with("exemption."))
        .collect();
    assert_eq!(
        actions,
        [
            "exemption.requested",
            "exemption.confirmation_failed",
            "exemption.approved",
            "exemption.confirmed",
            "exemption.activated",
            "exemption.revoked"
        ]
    );
    assert!(
        !audit.to_string().contains(&code),
        "the code never reaches the audit log"
    );
    assert!(ratspost_ok(&config, &["audit", "verify"], None).contains("intact"));
}

#[tokio::test]
async fn exemption_flow_sqlite() {
    flow(TestDb::sqlite()).await;
}

#[tokio::test]
async fn exemption_flow_postgres() {
    if let Some(db) = TestDb::postgres("exemption_flow").await {
        flow(db).await;
    }
}

#[tokio::test]
async fn confirmation_mail_in_english_when_configured() {
    let db = TestDb::sqlite();
    let dir = tempfile::tempdir().expect("tempdir");
    let config = write_config(dir.path(), &db.url, "");
    let mut text = std::fs::read_to_string(&config).expect("config");
    text.push_str("[notices]\nlanguage = \"en\"\nfrom = \"ratspost@stadt.test\"\n[exemptions]\nmax_days = 10\n");
    std::fs::write(&config, text).expect("config");
    enrol(&config, "anna", "anna@stadt.test", "pw");
    let too_long = ratspost_as(
        &config,
        &[
            "exemption",
            "request",
            "--user",
            "anna",
            "--to",
            "a@example.net",
            "--days",
            "11",
            "--reason",
            "x",
            "--by",
            "anna",
        ],
        "pw",
        None,
    );
    assert_eq!(too_long.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&too_long.stderr).contains("between 1 and 10"),
        "{too_long:?}"
    );
    let out = ratspost_as_ok(
        &config,
        &[
            "exemption",
            "request",
            "--user",
            "anna",
            "--to",
            "a@example.net",
            "--days",
            "10",
            "--reason",
            "x",
            "--by",
            "anna",
            "--json",
        ],
        "pw",
        None,
    );
    let id = serde_json::from_str::<serde_json::Value>(&out).expect("json")["id"]
        .as_i64()
        .expect("id");
    let (subject, _, from, text) = confirmation_mail(&db, id).await;
    assert_eq!(subject, "Confirm your forwarding address");
    assert_eq!(from, "ratspost@stadt.test");
    assert_eq!(code_in(&text, "Confirmation code:").len(), 8);
}

#[tokio::test]
async fn queue_list_retry_and_drop() {
    let db = TestDb::sqlite();
    let dir = tempfile::tempdir().expect("tempdir");
    let config = write_config(dir.path(), &db.url, "");
    enrol(&config, "anna", "anna@stadt.test", "pw");
    ratspost_as_ok(
        &config,
        &[
            "exemption",
            "request",
            "--user",
            "anna",
            "--to",
            "a@example.net",
            "--days",
            "3",
            "--reason",
            "x",
            "--by",
            "anna",
        ],
        "pw",
        None,
    );
    let jobs: serde_json::Value =
        serde_json::from_str(&ratspost_ok(&config, &["queue", "list", "--json"], None))
            .expect("json");
    assert_eq!(jobs[0]["kind"], "confirmation");
    assert_eq!(jobs[0]["state"], "queued");
    assert!(
        !jobs.to_string().contains("Bestätigungscode"),
        "the queue listing never shows content"
    );
    let id = jobs[0]["id"].as_i64().expect("id").to_string();
    ratspost_ok(&config, &["queue", "retry", &id], None);
    let admin = admin_password(&config);
    ratspost_as_ok(
        &config,
        &["queue", "drop", &id, "--by", "admin"],
        &admin,
        None,
    );
    let again = ratspost_as(
        &config,
        &["queue", "drop", &id, "--by", "admin"],
        &admin,
        None,
    );
    assert_eq!(
        again.status.code(),
        Some(1),
        "only queued jobs can be dropped"
    );
    let table = ratspost_ok(&config, &["queue", "list"], None);
    assert!(table.contains("dropped"), "{table}");
    let audit = ratspost_ok(&config, &["audit", "list", "--json"], None);
    assert!(audit.contains("queue.dropped"), "{audit}");
}

/// `exemption list --json`, as a map from id to exemption.
fn listed(config: &std::path::Path) -> std::collections::HashMap<i64, serde_json::Value> {
    let list: serde_json::Value =
        serde_json::from_str(&ratspost_ok(config, &["exemption", "list", "--json"], None))
            .expect("json");
    list.as_array()
        .expect("array")
        .iter()
        .map(|e| (e["id"].as_i64().expect("id"), e.clone()))
        .collect()
}

/// `exemption request` for anna to `to`, by anna (with her password); its text output.
fn request(config: &std::path::Path, to: &str, days: &str) -> std::process::Output {
    ratspost_as(
        config,
        &[
            "exemption",
            "request",
            "--user",
            "anna",
            "--to",
            to,
            "--days",
            days,
            "--reason",
            "Elternzeit",
            "--by",
            "anna",
        ],
        "pw-anna-1",
        None,
    )
}

/// Issue 9, parts 6 and 7: every state change says what is still missing, dates are German
/// local time (never RFC 3339) in text and mails, the list shows the DPO's approval and when
/// a revoked exemption really ended; a follow-up requested while one is active starts when
/// it ends, and revoking the current one leaves the follow-up as approved.
async fn states_dates_and_follow_ups(db: TestDb) {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = write_config(dir.path(), &db.url, "");
    let mut text = std::fs::read_to_string(&config).expect("config");
    text.push_str("[exemptions]\nrequire_dpo = true\n");
    std::fs::write(&config, text).expect("config");
    enrol(&config, "anna", "anna@stadt.test", "pw-anna-1");
    for (login, role) in [("admin1", "admin"), ("admin2", "admin"), ("dora", "dpo")] {
        add_user(&config, login, role, &[], "pw-staff");
    }
    // Commands acting `--by` someone get that user's password on stdin.
    let run = |args: &[&str]| {
        let by = args.iter().skip_while(|a| **a != "--by").nth(1);
        let password = if by == Some(&"anna") {
            "pw-anna-1"
        } else {
            "pw-staff"
        };
        ratspost_as_ok(&config, args, password, None)
    };

    // Request: everything still missing.
    let out = request(&config, "anna.privat@example.net", "14");
    let said = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{out:?}");
    assert!(
        said.contains(
            "waiting for the address to be confirmed and for approval by an admin and by the \
             data-protection officer"
        ),
        "{said}"
    );
    let first = *listed(&config).keys().next().expect("one exemption");
    let id1 = first.to_string();
    let (_, _, _, mail) = confirmation_mail(&db, first).await;
    assert!(
        mail.contains("Code und Link gelten bis ") && mail.contains(" Uhr."),
        "the code's validity in local time: {mail}"
    );
    assert!(!ratspost_tests::contains_rfc3339(&mail), "{mail}");
    let code = code_in(&mail, "Bestätigungscode:");

    let said = run(&["exemption", "approve", &id1, "--by", "admin1"]);
    assert!(
        said.contains(
            "approved by admin1; waiting for the address to be confirmed and for approval by \
             the data-protection officer"
        ),
        "{said}"
    );
    let said = run(&["exemption", "confirm", &id1, &code]);
    assert!(
        said.contains("address confirmed; waiting for approval by the data-protection officer"),
        "{said}"
    );
    let said = run(&["exemption", "approve", &id1, "--by", "dora"]);
    assert!(
        said.contains("approved by dora; active until ") && said.contains(" Uhr"),
        "{said}"
    );
    assert!(!ratspost_tests::contains_rfc3339(&said), "{said}");

    let e1 = listed(&config)[&first].clone();
    assert_eq!(e1["state"], "active");
    assert_eq!(e1["dpo_approved_by"], "dora");
    assert_eq!(e1["waiting_for"], serde_json::json!([]));
    assert!(
        e1["dpo_approved_at_rfc3339"]
            .as_str()
            .is_some_and(|t| t.ends_with('Z')),
        "{e1}"
    );
    let table = run(&["exemption", "list"]);
    assert!(
        table.contains("dora (data-protection officer) on ")
            && table.contains("admin1 (admin) on "),
        "the list shows both approvals: {table}"
    );
    assert!(!ratspost_tests::contains_rfc3339(&table), "{table}");

    // A follow-up while the first is active; one pending request at a time.
    let out = request(&config, "anna.neu@example.org", "5");
    let said = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{out:?}");
    assert!(
        said.contains(&format!("follow-up of exemption {first}")),
        "{said}"
    );
    let second = listed(&config)
        .keys()
        .copied()
        .max()
        .expect("the follow-up");
    assert_ne!(second, first);
    let third = request(&config, "anna.dritte@example.org", "5");
    assert_eq!(third.status.code(), Some(1), "{third:?}");
    assert!(
        String::from_utf8_lossy(&third.stderr).contains("pending exemption request"),
        "{third:?}"
    );

    let id2 = second.to_string();
    let (_, _, _, mail) = confirmation_mail(&db, second).await;
    run(&[
        "exemption",
        "confirm",
        &id2,
        &code_in(&mail, "Bestätigungscode:"),
    ]);
    run(&["exemption", "approve", &id2, "--by", "admin2"]);
    let said = run(&["exemption", "approve", &id2, "--by", "dora"]);
    assert!(
        said.contains("approved as a follow-up: active from "),
        "{said}"
    );
    let all = listed(&config);
    let (e1, e2) = (&all[&first], &all[&second]);
    assert_eq!(e2["state"], "active");
    assert_eq!(e2["scheduled"], true);
    assert_eq!(e2["follows"], first);
    assert_eq!(e1["follow_up"], second);
    assert_eq!(
        e2["valid_from"], e1["valid_until"],
        "the follow-up starts exactly when the first ends"
    );
    assert_eq!(
        e2["valid_until"].as_i64().expect("until") - e2["valid_from"].as_i64().expect("from"),
        5 * 24 * 60 * 60 * 1000
    );

    // Revoking the first stops it now; the follow-up keeps its period.
    let said = run(&["exemption", "revoke", &id1, "--by", "admin2"]);
    assert!(
        said.contains(&format!("Exemption {first} revoked by admin2 on ")),
        "{said}"
    );
    assert!(
        said.contains(&format!(
            "Its follow-up, exemption {second}, is not affected"
        )),
        "{said}"
    );
    let all = listed(&config);
    let (e1, e2) = (&all[&first], &all[&second]);
    assert_eq!(e1["state"], "revoked");
    assert_eq!(e1["ended_by"], "admin2");
    assert_ne!(e1["ended_at"], e1["valid_until"]);
    assert!(
        e1["ends_rfc3339"]
            .as_str()
            .is_some_and(|t| t.ends_with('Z')),
        "{e1}"
    );
    assert_eq!(
        (e2["state"].as_str(), e2["scheduled"].as_bool()),
        (Some("active"), Some(true))
    );
    let table = run(&["exemption", "list"]);
    let block = table
        .split("Exemption ")
        .find(|b| b.starts_with(&format!("{first}:")))
        .expect("the first in the list");
    assert!(block.contains("revoked by admin2 on "), "{block}");
    let planned_end = e1["valid_until"].as_i64().expect("until");
    let (_, period) = block.split_once("period:").expect("period");
    let ended_shown = period.lines().next().unwrap_or_default();
    assert!(
        !ended_shown.contains(&webui_date(planned_end)),
        "a revoked exemption shows when it ended, not its planned end: {block}"
    );
    assert!(!ratspost_tests::contains_rfc3339(&table), "{table}");

    // The other text listings write local time too; their --json keeps RFC 3339 or numbers.
    for listing in [
        &["user", "list"][..],
        &["audit", "list"],
        &["queue", "list"],
        &["message", "list"],
    ] {
        let text = run(listing);
        assert!(
            !ratspost_tests::contains_rfc3339(&text),
            "{listing:?}: {text}"
        );
    }
    assert!(run(&["user", "list"]).contains(" Uhr"));
    assert!(run(&["audit", "list"]).contains(" Uhr"));
}

/// A date as the CLI writes it by default.
fn webui_date(millis: i64) -> String {
    webui::datetime::Dates::default().millis(millis)
}

#[tokio::test]
async fn state_changes_dates_and_follow_ups_sqlite() {
    states_dates_and_follow_ups(TestDb::sqlite()).await;
}

#[tokio::test]
async fn state_changes_dates_and_follow_ups_postgres() {
    if let Some(db) = TestDb::postgres("exemption_states_follow_ups").await {
        states_dates_and_follow_ups(db).await;
    }
}

/// Issue #10 §6: the confirmation mail is classified before it is queued. An address that
/// holds a Steuer-ID would put it into the mail: nothing is requested, nothing queued, and
/// the refusal is audited (`notice.withheld`) without the address.
#[tokio::test]
async fn a_confirmation_that_would_be_sensitive_is_not_sent() {
    let db = TestDb::sqlite();
    let dir = tempfile::tempdir().expect("tempdir");
    let config = write_config(dir.path(), &db.url, "");
    enrol(&config, "anna", "anna@stadt.test", "pw");
    let out = ratspost_as(
        &config,
        &[
            "exemption",
            "request",
            "--user",
            "anna",
            "--to",
            "86095742719@example.net",
            "--days",
            "3",
            "--reason",
            "x",
            "--by",
            "anna",
        ],
        "pw",
        None,
    );
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("classifier flags"), "{stderr}");
    let store = store::Store::open(&db.url, &store::StoreOptions::default())
        .await
        .expect("open");
    assert!(store.list_exemptions().await.expect("list").is_empty());
    assert!(store.list_outbound(10).await.expect("jobs").is_empty());
    let audit = store.list_audit(0, 100).await.expect("audit");
    let withheld = audit
        .iter()
        .find(|a| a.action == "notice.withheld")
        .expect("audited");
    assert_eq!(withheld.details["kind"], "confirmation");
    assert_eq!(withheld.subjects, ["user:anna"]);
    assert!(!withheld.details.to_string().contains("86095742719"));
    store.close().await;
}
