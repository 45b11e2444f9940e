//! The pipeline: every accepted message is classified, its verdict stored without values,
//! unfinished work is resumed after a restart, and the configured rules apply.

use ratspost_tests::client::{Client, message};
use ratspost_tests::server::Server;
use store::testing::TestDb;
use store::{NewMessage, NewUser, Role, StoredRecipient};

const ANNA: &str = "anna@stadt.test";

async fn send(s: &Server, id: &str, body: &str) {
    let mut c = Client::greeted(s.smtp).await;
    c.ehlo().await;
    c.send_mail("a@upstream.test", &[ANNA], &message(id, body))
        .await
        .expect(250, "2.0.0");
    c.cmd("QUIT").await;
}

async fn accepted_mail_is_classified(db: TestDb) {
    let s = Server::start_on(db, "").await;
    s.enrol("anna", &[ANNA]).await;
    send(&s, "clean", "Die Sitzung beginnt um 17 Uhr.").await;
    send(&s, "secret", "Ihre Steuer-ID lautet 86095742719.").await;
    send(
        &s,
        "agenda",
        "Nichtöffentlicher Teil: Unterlagen zu TOP N 3 anbei.",
    )
    .await;
    let list = s.classified().await;
    let by_id = |id: &str| {
        list.iter()
            .find(|m| m.message_id.as_deref() == Some(&format!("{id}@upstream.test")))
            .unwrap_or_else(|| panic!("{id} not listed"))
            .clone()
    };
    assert_eq!(by_id("clean").sensitive, Some(false));
    assert_eq!(by_id("secret").categories, ["tax_id"]);
    assert_eq!(by_id("agenda").categories, ["non_public_council"]);
    let secret_id = by_id("secret").id;
    let verdict = s
        .store
        .verdict(secret_id)
        .await
        .expect("verdict")
        .expect("classified");
    assert!(
        verdict.findings.contains("steuer_id"),
        "{}",
        verdict.findings
    );
    // What the mailbox serves: the notice for the sensitive message, the original otherwise.
    let anna = s.store.user_by_login("anna").await.expect("anna").id;
    let copy = s
        .store
        .mailbox_copy(secret_id, anna)
        .await
        .expect("copy")
        .expect("processed");
    let copy_text = String::from_utf8_lossy(&copy).into_owned();
    assert!(
        !copy_text.contains("86095742719"),
        "the mailbox copy holds the identifier:\n{copy_text}"
    );
    let parsed = mail_parser::MessageParser::default()
        .parse(copy.as_slice())
        .expect("MIME");
    assert!(
        parsed
            .subject()
            .is_some_and(|sub| sub.starts_with("Vertrauliche Nachricht von")),
        "{copy_text}"
    );
    assert!(
        parsed
            .body_text(0)
            .is_some_and(|t| t.contains("Steuer-Identifikationsnummer"))
    );
    let clean_id = by_id("clean").id;
    let original = s.store.message_raw(clean_id).await.expect("raw");
    assert_eq!(
        s.store.mailbox_copy(clean_id, anna).await.expect("copy"),
        Some(original)
    );
    assert_eq!(
        s.store
            .mailbox_copy(clean_id, anna + 999)
            .await
            .expect("copy"),
        None,
        "not a recipient"
    );
    assert!(
        !verdict.findings.contains("86095742719"),
        "the value leaked into the verdict"
    );
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accepted_mail_is_classified_sqlite() {
    accepted_mail_is_classified(TestDb::sqlite()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accepted_mail_is_classified_postgres() {
    if let Some(db) = TestDb::postgres("accepted_mail_is_classified").await {
        accepted_mail_is_classified(db).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_left_unclassified_are_resumed_at_start() {
    let db = TestDb::sqlite();
    // Messages committed by an earlier run that stopped before classifying them.
    let store = db.open().await;
    let user = store
        .create_user(&NewUser {
            login: "anna".into(),
            name: "Anna".into(),
            role: Role::Staff,
            password_hash: "$unused$".into(),
            addresses: vec![ANNA.into()],
        })
        .await
        .expect("user");
    for (i, body) in ["Guten Morgen", "VS-NfD Lagebild"].iter().enumerate() {
        let raw = message(&format!("old{i}"), body);
        store
            .insert_message(NewMessage {
                received_at: store::now_millis(),
                mail_from: "a@upstream.test".into(),
                helo: "x".into(),
                peer_ip: "127.0.0.1".into(),
                tls: false,
                sha256: String::new(),
                message_id: Some(format!("old{i}@upstream.test")),
                raw,
                recipients: vec![StoredRecipient {
                    address: ANNA.into(),
                    user_id: user.id,
                }],
            })
            .await
            .expect("insert");
    }
    store.close().await;

    let s = Server::start_on(db, "").await;
    let list = s.classified().await;
    assert_eq!(list.len(), 2);
    let vs = list
        .iter()
        .find(|m| m.message_id.as_deref() == Some("old1@upstream.test"))
        .expect("old1");
    assert_eq!(vs.categories, ["vs_nfd"]);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn configured_rules_apply() {
    let dir = tempfile::tempdir().expect("tempdir");
    let rules = dir.path().join("rules.toml");
    std::fs::write(
        &rules,
        "[detectors.steuer_id]\nenabled = false\n[[keywords]]\nname = \"projekt_adler\"\ncategory = \"confidential_project\"\nwords = [\"Projekt Adler\"]\n",
    )
    .expect("rules");
    let extra = format!("[classifier]\nrules = {:?}\n", rules.display().to_string());
    let s = Server::start_full(TestDb::sqlite(), "", &extra).await;
    s.enrol("anna", &[ANNA]).await;
    send(&s, "tax", "Steuer-ID 86095742719").await;
    send(&s, "adler", "Neues zum Projekt Adler").await;
    let list = s.classified().await;
    let tax = list
        .iter()
        .find(|m| m.message_id.as_deref() == Some("tax@upstream.test"))
        .expect("tax");
    assert_eq!(
        tax.sensitive,
        Some(false),
        "the switched-off detector still fired"
    );
    let adler = list
        .iter()
        .find(|m| m.message_id.as_deref() == Some("adler@upstream.test"))
        .expect("adler");
    assert_eq!(adler.categories, ["confidential_project"]);
    s.stop().await;
}

#[tokio::test]
async fn invalid_rules_stop_the_start_with_a_clear_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let rules = dir.path().join("rules.toml");
    std::fs::write(
        &rules,
        "[[custom]]\nname = \"x\"\ncategory = \"y\"\npattern = '(('\n",
    )
    .expect("rules");
    let config = ratspost_tests::daemon::write_config(
        dir.path(),
        &format!("sqlite://{}/r.db", dir.path().display()),
        "",
    );
    let mut text = std::fs::read_to_string(&config).expect("config");
    text.push_str(&format!(
        "[classifier]\nrules = {:?}\n",
        rules.display().to_string()
    ));
    std::fs::write(&config, text).expect("config");
    let out = ratspost_tests::daemon::ratspost(&config, &["serve"], None);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("classifier.rules") && stderr.contains("custom[0] (x).pattern"),
        "{stderr}"
    );
}

/// Issue #17: a pipeline killed (SIGKILL) at any moment while it works through a backlog
/// loses nothing and repeats nothing. 600 messages (every fifth with a tax ID) wait in the
/// database of a real `ratspost serve`; anna has an active exemption, so each message gets a
/// forward job (the original, or a notice) besides its inbox entry. The daemon is killed at
/// random moments three times, then left to finish. Every message must then be processed
/// with exactly one verdict, one inbox entry (its notice when sensitive, never the tax ID),
/// one forward job and one `forward.decided` audit entry, and the audit chain must verify.
async fn a_pipeline_killed_at_any_moment_loses_and_repeats_nothing(db: TestDb) {
    use ratspost_tests::daemon::{Daemon, add_user, enrol, exempt, write_config};
    const MESSAGES: usize = 600;
    let dir = tempfile::tempdir().expect("tempdir");
    let config = write_config(dir.path(), &db.url, "");
    enrol(&config, "anna", ANNA, "Sommer2026!");
    add_user(&config, "admin1", "admin", &[], "Winter2026!");
    exempt(&db.url, "anna", "anna@privat.example").await;
    let store = db.open().await;
    let anna = store.user_by_login("anna").await.expect("anna").id;
    let inserts: Vec<_> = (0..MESSAGES)
        .map(|n| {
            let store = store.clone();
            let body = if n.is_multiple_of(5) {
                format!("Steuer-ID der Antragstellerin: 86095742719 (Vorgang {n})")
            } else {
                format!("Einladung zur Sitzung, Vorgang {n}.")
            };
            // The serial also in the sender's name: a notice's subject names the sender.
            let raw = format!(
                "From: Sender crash-{n} <sender@upstream.test>\r\nTo: {ANNA}\r\nSubject: Test crash-{n}\r\n\
                 Message-ID: <crash-{n}@upstream.test>\r\nDate: Mon, 30 Nov 2026 10:00:00 +0100\r\n\r\n{body}\r\n"
            )
            .into_bytes();
            tokio::spawn(async move {
                store
                    .insert_message(NewMessage {
                        received_at: store::now_millis(),
                        mail_from: "a@upstream.test".into(),
                        helo: "upstream.test".into(),
                        peer_ip: "127.0.0.1".into(),
                        tls: false,
                        sha256: ratspost_tests::client::sha256(&raw),
                        message_id: Some(format!("crash-{n}@upstream.test")),
                        raw,
                        recipients: vec![StoredRecipient {
                            address: ANNA.into(),
                            user_id: anna,
                        }],
                    })
                    .await
                    .expect("insert")
            })
        })
        .collect();
    for insert in inserts {
        insert.await.expect("insert");
    }
    let processed = |store: store::Store| async move {
        store
            .messages_in_state(store::MessageState::Processed, i64::MAX)
            .await
            .expect("processed")
            .len()
    };
    // Kills at moments spread over the work; the seed is printed to repeat a failure.
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .subsec_nanos();
    let mut kills = Vec::new();
    for round in 0..3u32 {
        let daemon = Daemon::start(&config);
        let delay = u64::from(seed.rotate_left(round * 11) % 400);
        tokio::time::sleep(std::time::Duration::from_millis(delay)).await;
        daemon.kill();
        kills.push((delay, processed(store.clone()).await));
    }
    eprintln!("seed {seed}: killed after (ms, messages processed by then): {kills:?}");
    let daemon = Daemon::start(&config);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    while processed(store.clone()).await < MESSAGES {
        assert!(
            std::time::Instant::now() < deadline,
            "only {} of {MESSAGES} processed in 120 s after the kills {kills:?}",
            processed(store.clone()).await
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(daemon.terminate().success());

    // One inbox entry per message: the serial each entry shows, each exactly once.
    let inbox = store.mailbox(anna, "INBOX").await.expect("INBOX");
    let entries = store.mailbox_entries(inbox.id).await.expect("entries");
    let last = entries.last().expect("entries").uid;
    let mut shown = vec![0usize; MESSAGES];
    for (uid, served) in store
        .entry_contents(inbox.id, 1, last)
        .await
        .expect("contents")
    {
        let served = served.unwrap_or_else(|e| panic!("entry {uid} is not served: {e}"));
        let text = String::from_utf8_lossy(&served);
        assert!(
            !text.contains("86095742719"),
            "entry {uid} shows the tax ID"
        );
        let serial: usize = text
            .split("crash-")
            .nth(1)
            .and_then(|s| s.split(|c: char| !c.is_ascii_digit()).next())
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("entry {uid} names no message:\n{text}"));
        shown[serial] += 1;
    }
    let wrong: Vec<_> = shown.iter().enumerate().filter(|&(_, &n)| n != 1).collect();
    assert!(
        wrong.is_empty(),
        "(message, inbox entries) not once: {wrong:?}"
    );

    // One verdict each, sensitive exactly where the tax ID is.
    let listed = store
        .list_messages(&store::MessageFilter::default())
        .await
        .expect("list");
    assert_eq!(listed.len(), MESSAGES);
    for m in &listed {
        let n: usize = m
            .message_id
            .as_deref()
            .and_then(|id| id.strip_prefix("crash-"))
            .and_then(|id| id.strip_suffix("@upstream.test"))
            .and_then(|n| n.parse().ok())
            .expect("serial");
        assert_eq!(
            m.sensitive,
            Some(n.is_multiple_of(5)),
            "verdict of message {n}"
        );
    }

    // One forward decision, and one job, per message.
    let audit = store.list_audit(0, i64::MAX).await.expect("audit");
    let mut decided = std::collections::BTreeMap::<String, usize>::new();
    for e in audit.iter().filter(|e| e.action == "forward.decided") {
        let message = e
            .subjects
            .iter()
            .find(|s| s.starts_with("message:"))
            .expect("message subject");
        *decided.entry(message.clone()).or_default() += 1;
    }
    assert_eq!(
        decided.len(),
        MESSAGES,
        "a forward decision for every message"
    );
    let twice: Vec<_> = decided.iter().filter(|&(_, &n)| n != 1).collect();
    assert!(twice.is_empty(), "decided more than once: {twice:?}");
    let jobs = store.list_outbound(i64::MAX).await.expect("jobs");
    let forwards = jobs
        .iter()
        .filter(|j| j.kind == "forward" || j.kind == "notice")
        .count();
    assert_eq!(forwards, MESSAGES, "one forward job per message");
    let check = store.verify_audit().await.expect("verify");
    assert!(
        matches!(check, store::AuditCheck::Intact { .. }),
        "{check:?}"
    );
    store.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pipeline_killed_at_any_moment_loses_and_repeats_nothing_sqlite() {
    a_pipeline_killed_at_any_moment_loses_and_repeats_nothing(TestDb::sqlite()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pipeline_killed_at_any_moment_loses_and_repeats_nothing_postgres() {
    if let Some(db) = TestDb::postgres("pipeline_killed").await {
        a_pipeline_killed_at_any_moment_loses_and_repeats_nothing(db).await;
    }
}
