//! The command line, run as the real binary: init, serve's own setup, users, messages and
//! configuration errors.

use std::net::IpAddr;

use rustls_pki_types::ServerName;
use store::testing::TestDb;

use ratspost_tests::client::{Client, connector, message};
use ratspost_tests::daemon::{
    Daemon, add_user, admin_password, enrol, ratspost, ratspost_as, ratspost_as_ok, ratspost_in,
    ratspost_ok, write_config,
};

fn password_in(stdout: &str) -> Option<String> {
    stdout
        .lines()
        .find_map(|l| l.trim().strip_prefix("password: "))
        .or_else(|| {
            stdout
                .lines()
                .find_map(|l| l.split("Password (shown only once): ").nth(1))
        })
        .map(str::to_owned)
}

/// Asserts that `out` failed with status 1 and the message `expected`, in the user's
/// terms: the last line of stderr is `error: EXPECTED`, and no database text is anywhere.
#[track_caller]
fn refused(out: &std::process::Output, expected: &str) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert_eq!(
        stderr.lines().last(),
        Some(format!("error: {expected}").as_str()),
        "{stderr}"
    );
    for raw in ["sqlx", "constraint", "code:", "rows returned", "database"] {
        assert!(!stderr.contains(raw), "{raw:?} reached the user: {stderr}");
    }
}

/// The last audit entry with `action` in the JSON of `audit list --json`.
fn audited(json: &str, action: &str) -> serde_json::Value {
    let entries: serde_json::Value = serde_json::from_str(json).expect("json");
    entries
        .as_array()
        .expect("array")
        .iter()
        .rev()
        .find(|e| e["action"] == action)
        .unwrap_or_else(|| panic!("no {action} in {json}"))
        .clone()
}

#[tokio::test]
async fn init_sets_everything_up_and_shows_the_admin_password_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("etc/ratspost.toml");
    let out = ratspost_ok(&config, &["init"], None);
    let password = password_in(&out).unwrap_or_else(|| panic!("no password in {out}"));
    assert!(password.len() >= 20, "{password}");

    // The written file is the commented default configuration, and it loads.
    let text = std::fs::read_to_string(&config).expect("config written");
    assert!(text.contains("# Only these networks may connect"), "{text}");
    relay::config::Config::load(&config).expect("written config loads");
    // Relative paths are anchored at the config file's directory.
    let data = dir.path().join("etc/data");
    assert!(data.join("ratspost.db").exists());
    assert!(data.join("tls/cert.pem").exists() && data.join("tls/key.pem").exists());

    // The bootstrap admin's password verifies, and it is an admin.
    let store = store::Store::open(
        &format!("sqlite://{}", data.join("ratspost.db").display()),
        &store::StoreOptions::default(),
    )
    .await
    .expect("open");
    let admin = store.user_by_login("admin").await.expect("admin");
    assert_eq!(admin.role, store::Role::Admin);
    assert!(store::password::verify(
        &password,
        &store.password_hash("admin").await.expect("hash")
    ));
    store.close().await;

    // The DKIM record to publish is shown at setup and on demand, for the same key.
    assert!(
        out.contains("ratspost._domainkey.localhost IN TXT \"v=DKIM1; k=ed25519; p="),
        "{out}"
    );
    let record = ratspost_ok(&config, &["dkim", "record"], None);
    assert!(
        out.contains(record.trim()),
        "{record} differs from what init printed"
    );

    // A second init keeps everything and shows no new password.
    let again = ratspost_ok(&config, &["init"], None);
    assert!(password_in(&again).is_none(), "{again}");
    assert!(
        again.contains("Keeping the existing configuration"),
        "{again}"
    );
}

#[tokio::test]
async fn serve_on_a_fresh_directory_sets_itself_up_with_a_certificate_real_clients_accept() {
    let dir = tempfile::tempdir().expect("tempdir");
    // Only the port is configured: no data directory, database or certificate exists yet.
    let config = write_config(
        dir.path(),
        &format!("sqlite://{}/data/r.db", dir.path().display()),
        "",
    );
    let daemon = Daemon::start(&config);
    let cert = dir.path().join("data/tls/cert.pem");
    assert!(cert.exists());
    // The certificate verifies for both names clients use: localhost and 127.0.0.1.
    for name in [
        ServerName::try_from("localhost").expect("dns"),
        ServerName::IpAddress("127.0.0.1".parse::<IpAddr>().expect("ip").into()),
    ] {
        let mut c = Client::greeted(daemon.smtp).await;
        c.cmd("STARTTLS").await.expect(220, "2.0.0");
        let tcp = c.into_inner();
        connector(&cert)
            .connect(name.clone(), tcp)
            .await
            .unwrap_or_else(|e| panic!("certificate rejected for {name:?}: {e}"));
    }
    assert!(daemon.terminate().success());
}

#[tokio::test]
async fn users_are_added_listed_and_given_new_passwords() {
    let db = TestDb::sqlite();
    let dir = tempfile::tempdir().expect("tempdir");
    let config = write_config(dir.path(), &db.url, "");

    let admin = admin_password(&config);
    let out = ratspost_as_ok(
        &config,
        &[
            "user",
            "add",
            "anna",
            "--name",
            "Anna Schmidt",
            "--address",
            "Anna@Stadt.Test",
            "--address",
            "a.schmidt@fraktion.test",
            "--by",
            "admin",
        ],
        &admin,
        None,
    );
    let generated = password_in(&out).unwrap_or_else(|| panic!("no password in {out}"));
    add_user(&config, "dora", "dpo", &[], "Datenschutz-2026");

    let listed = ratspost_ok(&config, &["user", "list", "--json"], None);
    let users: serde_json::Value = serde_json::from_str(&listed).expect("json");
    // The bootstrap admin comes first (ordered by login).
    assert_eq!(users[0]["login"], "admin");
    assert_eq!(users[1]["login"], "anna");
    assert_eq!(users[1]["role"], "staff");
    assert_eq!(
        users[1]["addresses"],
        serde_json::json!(["a.schmidt@fraktion.test", "anna@stadt.test"])
    );
    assert_eq!(users[2]["login"], "dora");
    assert_eq!(users[2]["role"], "dpo");
    assert!(
        !listed.contains("argon2"),
        "password hashes must not be listed"
    );
    let table = ratspost_ok(&config, &["user", "list"], None);
    assert!(
        table.contains("anna") && table.contains("Anna Schmidt"),
        "{table}"
    );

    let store = db.open().await;
    assert!(store::password::verify(
        &generated,
        &store.password_hash("anna").await.expect("hash")
    ));
    assert!(store::password::verify(
        "Datenschutz-2026",
        &store.password_hash("dora").await.expect("hash")
    ));

    // Her own password: the current one first, then the new one.
    ratspost_as_ok(
        &config,
        &["user", "passwd", "anna", "--password-stdin"],
        &generated,
        Some("Neues Passwort 1"),
    );
    assert!(store::password::verify(
        "Neues Passwort 1",
        &store.password_hash("anna").await.expect("hash")
    ));

    // A taken address is a clear error, not a crash; nothing is half-created.
    let dup = ratspost_as(
        &config,
        &[
            "user",
            "add",
            "eve",
            "--name",
            "Eve",
            "--address",
            "anna@stadt.test",
            "--by",
            "admin",
        ],
        &admin,
        None,
    );
    refused(&dup, "the address anna@stadt.test belongs to anna already");
    assert!(store.user_by_login("eve").await.is_err());
    let unknown = ratspost_as(
        &config,
        &["user", "passwd", "nobody", "--password-stdin"],
        "x",
        Some("y"),
    );
    refused(&unknown, "no user nobody");
    let bad_role = ratspost(
        &config,
        &[
            "user", "add", "x", "--name", "X", "--role", "root", "--by", "admin",
        ],
        None,
    );
    assert_eq!(
        bad_role.status.code(),
        Some(2),
        "clap rejects an unknown role"
    );
    store.close().await;
}

#[tokio::test]
async fn message_bodies_and_secrets_never_reach_the_log_even_at_trace_level() {
    let db = TestDb::sqlite();
    let dir = tempfile::tempdir().expect("tempdir");
    let config = write_config(dir.path(), &db.url, "");
    enrol(&config, "anna", "anna@stadt.test", "Geheim-Passwort-4711");
    let daemon = Daemon::start_logging(&config, "trace");
    let mut c = Client::greeted(daemon.smtp).await;
    c.ehlo().await;
    let body = "Befund: Diagnose F32.1, Steuer-ID 86095742719";
    c.send_mail(
        "s@upstream.test",
        &["anna@stadt.test"],
        &message("secret", body),
    )
    .await
    .expect(250, "2.0.0");
    c.cmd("QUIT").await;
    let (status, log) = daemon.terminate_with_log();
    assert!(status.success());
    // The dialogue is there at trace level, the content is not.
    assert!(
        log.contains("C:") && log.contains("message accepted"),
        "{log}"
    );
    for secret in ["F32.1", "86095742719", "Befund", "Geheim-Passwort-4711"] {
        assert!(!log.contains(secret), "{secret:?} appeared in the log");
    }
}

#[tokio::test]
async fn message_list_shows_metadata_and_never_content() {
    let db = TestDb::sqlite();
    let dir = tempfile::tempdir().expect("tempdir");
    let config = write_config(dir.path(), &db.url, "");
    enrol(&config, "anna", "anna@stadt.test", "Passwort-anna-1");
    enrol(&config, "bert", "bert@stadt.test", "Passwort-bert-1");
    let daemon = Daemon::start(&config);
    let mut c = Client::greeted(daemon.smtp).await;
    c.ehlo().await;
    let secret = "Diagnose F32.1 fuer Herrn Mustermann";
    c.send_mail(
        "s@upstream.test",
        &["anna@stadt.test"],
        &message("m1", secret),
    )
    .await
    .expect(250, "2.0.0");
    c.send_mail(
        "s@upstream.test",
        &["bert@stadt.test"],
        &message("m2", secret),
    )
    .await
    .expect(250, "2.0.0");

    let all = ratspost_ok(&config, &["message", "list", "--json"], None);
    let listed: serde_json::Value = serde_json::from_str(&all).expect("json");
    assert_eq!(listed.as_array().expect("array").len(), 2);
    let m = &listed[1];
    for key in [
        "sensitive",
        "categories",
        "id",
        "received_at",
        "mail_from",
        "recipients",
        "size",
        "sha256",
        "message_id",
        "state",
        "purged_at",
    ] {
        assert!(m.get(key).is_some(), "{key} missing in {m}");
    }
    assert!(m["purged_at"].is_null(), "{m}");
    assert_eq!(m["message_id"], "m1@upstream.test");
    assert!(m["received_at"].as_str().expect("time").ends_with('Z'));
    let annas = ratspost_ok(
        &config,
        &["message", "list", "--json", "--user", "anna"],
        None,
    );
    let annas: serde_json::Value = serde_json::from_str(&annas).expect("json");
    assert_eq!(annas.as_array().expect("array").len(), 1);
    let id = listed[1]["id"].as_i64().expect("id").to_string();
    let revoked = ratspost_as_ok(
        &config,
        &["message", "revoke-links", &id, "--by", "admin"],
        &admin_password(&config),
        None,
    );
    assert!(revoked.contains("notice link(s) of message"), "{revoked}");
    let audit = ratspost_ok(&config, &["audit", "list", "--json"], None);
    assert!(audit.contains("notice.links_revoked"), "{audit}");
    assert_eq!(
        audited(&audit, "notice.links_revoked")["actor"],
        "admin",
        "{audit}"
    );
    // Purged under retention.message_days (issue #15 §3): listed, with when.
    let store = db.open().await;
    for _ in 0..300 {
        let list = store
            .list_messages(&Default::default())
            .await
            .expect("list");
        if list.iter().all(|m| m.state == "processed") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let now = store::now_millis();
    let purged = store
        .purge_messages(now + 1, now + 100 * 86_400_000, 500)
        .await
        .expect("purge");
    assert_eq!(purged.count(), 2);
    store.close().await;
    let after = ratspost_ok(&config, &["message", "list", "--json"], None);
    let after: serde_json::Value = serde_json::from_str(&after).expect("json");
    for m in after.as_array().expect("array") {
        assert!(
            m["purged_at"].as_str().is_some_and(|t| t.ends_with('Z')),
            "{m}"
        );
    }
    let table = ratspost_ok(&config, &["message", "list"], None);
    assert!(table.contains(" purged "), "{table}");
    for out in [&all, &table] {
        assert!(
            !out.contains("Mustermann") && !out.contains("F32.1"),
            "content leaked: {out}"
        );
    }
    assert!(daemon.terminate().success());
}

#[test]
fn serve_writes_the_default_config_where_it_was_told_to_look() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("ratspost.toml");
    // No file yet: serve writes the commented defaults there and sets up data/ next to it.
    // It then listens on the default port (or fails to, if that is taken on this machine);
    // either way only the setup is checked, and the process is stopped afterwards.
    let mut child = std::process::Command::new(ratspost_tests::daemon::binary())
        .arg("--config")
        .arg(&config)
        .arg("serve")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn");
    let db = dir.path().join("data/ratspost.db");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !(config.exists() && db.exists()) && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
    assert!(config.exists(), "no config written");
    assert!(db.exists(), "no database created");
    assert!(
        dir.path().join("data/tls/cert.pem").exists(),
        "no certificate"
    );
    relay::config::Config::load(&config).expect("written config loads");
}

#[test]
fn configuration_errors_are_reported_together_with_file_and_key() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("bad.toml");
    std::fs::write(
        &config,
        "colour = \"blue\"\n[smtp]\nlisten = \"nowhere\"\nmax_recipients = -1\n[database]\nurl = \"mysql://x\"\n",
    )
    .expect("write");
    let out = ratspost(&config, &["user", "list"], None);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let file = config.display().to_string();
    for key in [
        "colour: unknown key",
        "smtp.listen:",
        "smtp.max_recipients:",
        "database.url:",
    ] {
        assert!(
            stderr.contains(&format!("{file}: {key}")),
            "{key} missing in:\n{stderr}"
        );
    }
    let missing = ratspost(&dir.path().join("absent.toml"), &["user", "list"], None);
    assert_eq!(missing.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("cannot read"));
}

/// Issue 9, part 4: run from a directory without a configuration, a command that needs the
/// installation fails, names where it looked and which database it expected, and creates
/// nothing (it once made `./data` and reported an intact, empty audit chain).
#[test]
fn commands_without_an_installation_say_where_they_looked_and_create_nothing() {
    if std::path::Path::new("/etc/ratspost/ratspost.toml").exists() {
        ratspost_tests::skip("a configuration in /etc/ratspost exists on this machine");
        return;
    }
    let cwd = tempfile::tempdir().expect("tempdir");
    for args in [
        &["audit", "verify"][..],
        &["user", "list"],
        &["exemption", "list"],
        &["queue", "list"],
        &["dkim", "record"],
    ] {
        let out = ratspost_in(cwd.path(), &[], args, None);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {stderr}");
        let expected = cwd.path().join("data/ratspost.db");
        for part in [
            format!("no database at {}", expected.display()),
            "./ratspost.toml".to_owned(),
            "/etc/ratspost/ratspost.toml".to_owned(),
            "ratspost init".to_owned(),
        ] {
            assert!(
                stderr.contains(&part),
                "{args:?}: {part:?} missing in {stderr}"
            );
        }
        assert!(
            std::fs::read_dir(cwd.path()).expect("dir").next().is_none(),
            "{args:?} created something in the working directory"
        );
    }
}

/// Issue 9, part 4: `RATSPOST_CONFIG`, then `--config` (which wins), then `./ratspost.toml`.
#[test]
fn the_configuration_is_found_by_option_environment_and_working_directory() {
    let install = tempfile::tempdir().expect("tempdir");
    let config = write_config(
        install.path(),
        &format!("sqlite://{}/data/r.db", install.path().display()),
        "",
    );
    admin_password(&config);
    let elsewhere = tempfile::tempdir().expect("tempdir");
    let listed = |out: std::process::Output| {
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success() && stdout.contains("admin"),
            "{stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    // The environment variable, from anywhere.
    listed(ratspost_in(
        elsewhere.path(),
        &[("RATSPOST_CONFIG", &config)],
        &["user", "list"],
        None,
    ));
    // The option, from anywhere, before a variable naming something else.
    let absent = elsewhere.path().join("absent.toml");
    listed(ratspost_in(
        elsewhere.path(),
        &[("RATSPOST_CONFIG", &absent)],
        &["--config", config.to_str().expect("utf-8"), "user", "list"],
        None,
    ));
    // ./ratspost.toml in the working directory.
    listed(ratspost_in(install.path(), &[], &["user", "list"], None));

    // A configuration whose database does not exist: named in the error, nothing created.
    let empty = tempfile::tempdir().expect("tempdir");
    let unset = write_config(
        empty.path(),
        &format!("sqlite://{}/state/r.db", empty.path().display()),
        "",
    );
    let out = ratspost_in(
        elsewhere.path(),
        &[("RATSPOST_CONFIG", &unset)],
        &["audit", "verify"],
        None,
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "no database at {} (configuration {})",
            empty.path().join("state/r.db").display(),
            unset.display()
        )),
        "{stderr}"
    );
    assert!(!empty.path().join("state").exists());
    assert!(!empty.path().join("data").exists());
    assert!(
        std::fs::read_dir(elsewhere.path())
            .expect("dir")
            .next()
            .is_none()
    );
}

/// Issue 9, parts 5 and 6: every `--by` names an existing user with the right role who
/// proves it with their password; missing objects and duplicates are said in the user's
/// terms; what succeeds is audited with the proven actor.
async fn actors_are_proven(db: TestDb) {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = write_config(dir.path(), &db.url, "");
    let admin = admin_password(&config);
    enrol(&config, "anna", "anna@stadt.test", "pw-anna");
    add_user(&config, "dora", "dpo", &[], "pw-dora");
    add_user(&config, "bert", "admin", &[], "pw-bert");

    // Unknown actors.
    refused(
        &ratspost_as(
            &config,
            &["queue", "drop", "7", "--by", "admin1"],
            "x",
            None,
        ),
        "no user admin1",
    );
    refused(
        &ratspost_as(
            &config,
            &["message", "revoke-links", "99", "--by", "nobody"],
            "x",
            None,
        ),
        "no user nobody",
    );
    // Wrong roles.
    refused(
        &ratspost_as(
            &config,
            &["queue", "drop", "7", "--by", "dora"],
            "pw-dora",
            None,
        ),
        "dora (dpo) may not drop jobs: only an admin may",
    );
    refused(
        &ratspost_as(
            &config,
            &["exemption", "approve", "1", "--by", "anna"],
            "pw-anna",
            None,
        ),
        "anna (staff) may not approve exemptions: only an admin or the data-protection officer may",
    );
    refused(
        &ratspost_as(
            &config,
            &["user", "add", "eve", "--name", "Eve", "--by", "anna"],
            "pw-anna",
            None,
        ),
        "anna (staff) may not add users: only an admin may",
    );
    // An app password opens a mailbox: only its owner or an admin may make one.
    refused(
        &ratspost_as(
            &config,
            &[
                "app-password",
                "create",
                "anna",
                "--label",
                "x",
                "--by",
                "dora",
            ],
            "pw-dora",
            None,
        ),
        "dora (dpo) may not create app passwords for anna: only anna themself or an admin may",
    );
    refused(
        &ratspost_as(
            &config,
            &[
                "app-password",
                "create",
                "anna",
                "--label",
                "x",
                "--by",
                "anna",
            ],
            "wrong",
            None,
        ),
        "wrong password for anna",
    );
    ratspost_as_ok(
        &config,
        &[
            "app-password",
            "create",
            "anna",
            "--label",
            "Handy",
            "--by",
            "anna",
        ],
        "pw-anna",
        None,
    );
    ratspost_as_ok(
        &config,
        &[
            "app-password",
            "revoke",
            "anna",
            "--label",
            "Handy",
            "--by",
            "admin",
        ],
        &admin,
        None,
    );
    refused(
        &ratspost_as(
            &config,
            &["user", "passwd", "dora", "--by", "anna", "--password-stdin"],
            "pw-anna",
            Some("neu"),
        ),
        "anna (staff) may not set other users' passwords: only an admin may",
    );
    // A wrong password: refused after a delay, and audited.
    let started = std::time::Instant::now();
    refused(
        &ratspost_as(
            &config,
            &["queue", "drop", "7", "--by", "admin"],
            "falsch",
            None,
        ),
        "wrong password for admin",
    );
    assert!(started.elapsed() >= std::time::Duration::from_secs(1));
    let audit = ratspost_ok(&config, &["audit", "list", "--json"], None);
    let attempt = audited(&audit, "cli.password_refused");
    assert_eq!(attempt["actor"], "admin");
    assert_eq!(attempt["details"]["command"], "drop jobs");
    assert!(
        !audit.contains("falsch"),
        "the password never reaches the log"
    );
    refused(
        &ratspost(&config, &["queue", "drop", "7", "--by", "admin"], None),
        "no password of admin on stdin",
    );
    // Missing objects.
    refused(
        &ratspost_as(
            &config,
            &["message", "revoke-links", "99", "--by", "admin"],
            &admin,
            None,
        ),
        "no message 99",
    );
    refused(
        &ratspost_as(
            &config,
            &["queue", "drop", "7", "--by", "admin"],
            &admin,
            None,
        ),
        "no queued job 7",
    );
    for (args, password) in [
        (
            &["exemption", "approve", "1", "--by", "dora"][..],
            "pw-dora",
        ),
        (
            &["exemption", "deny", "1", "--by", "bert", "--reason", "x"],
            "pw-bert",
        ),
        (
            &["exemption", "revoke", "1", "--by", "admin"],
            admin.as_str(),
        ),
    ] {
        refused(
            &ratspost_as(&config, args, password, None),
            "no exemption 1",
        );
    }
    refused(
        &ratspost(&config, &["exemption", "confirm", "1", "12345678"], None),
        "no exemption 1",
    );
    refused(
        &ratspost(&config, &["queue", "retry", "7"], None),
        "no queued or failed job 7",
    );
    refused(
        &ratspost_as(
            &config,
            &[
                "user",
                "passwd",
                "nobody",
                "--by",
                "admin",
                "--password-stdin",
            ],
            &admin,
            Some("neu"),
        ),
        "no user nobody",
    );
    // A duplicate login.
    refused(
        &ratspost_as(
            &config,
            &["user", "add", "anna", "--name", "Anna", "--by", "admin"],
            &admin,
            None,
        ),
        "a user with the login anna exists already",
    );

    // What succeeds is audited with the proven actor: bert asks for anna (as an admin may),
    // so he may neither approve nor deny; dora (DPO) approves; bert drops the confirmation
    // mail; anna revokes her own exemption.
    let request = [
        "exemption",
        "request",
        "--user",
        "anna",
        "--to",
        "a@example.net",
        "--days",
        "3",
        "--reason",
        "Elternzeit",
        "--by",
        "bert",
        "--json",
    ];
    let e: serde_json::Value =
        serde_json::from_str(&ratspost_as_ok(&config, &request, "pw-bert", None)).expect("json");
    let id = e["id"].as_i64().expect("id").to_string();
    refused(
        &ratspost_as(
            &config,
            &["exemption", "deny", &id, "--by", "bert", "--reason", "x"],
            "pw-bert",
            None,
        ),
        "four eyes: who denies must be neither the requester nor the user (they revoke instead)",
    );
    refused(
        &ratspost_as(
            &config,
            &["exemption", "approve", &id, "--by", "bert"],
            "pw-bert",
            None,
        ),
        "four eyes: the approver must be neither the requester nor the user",
    );
    // The DPO approves only where the policy asks for it (`exemptions.require_dpo`).
    refused(
        &ratspost_as(
            &config,
            &["exemption", "approve", &id, "--by", "dora"],
            "pw-dora",
            None,
        ),
        "approval by the data-protection officer is not required (exemptions.require_dpo = false)",
    );
    ratspost_as_ok(
        &config,
        &["exemption", "approve", &id, "--by", "admin"],
        &admin,
        None,
    );
    let jobs: serde_json::Value =
        serde_json::from_str(&ratspost_ok(&config, &["queue", "list", "--json"], None))
            .expect("json");
    let job = jobs[0]["id"].as_i64().expect("id").to_string();
    ratspost_as_ok(
        &config,
        &["queue", "drop", &job, "--by", "bert"],
        "pw-bert",
        None,
    );
    ratspost_as_ok(
        &config,
        &["exemption", "revoke", &id, "--by", "anna"],
        "pw-anna",
        None,
    );
    ratspost_as_ok(
        &config,
        &[
            "user",
            "passwd",
            "anna",
            "--by",
            "admin",
            "--password-stdin",
        ],
        &admin,
        Some("pw-anna-2"),
    );
    let audit = ratspost_ok(&config, &["audit", "list", "--json"], None);
    for (action, actor) in [
        ("exemption.requested", "bert"),
        ("exemption.approved", "admin"),
        ("queue.dropped", "bert"),
        ("exemption.revoked", "anna"),
        ("user.created", "admin"),
        ("user.password_changed", "admin"),
    ] {
        assert_eq!(audited(&audit, action)["actor"], actor, "{action}: {audit}");
    }
    assert!(ratspost_ok(&config, &["audit", "verify"], None).contains("intact"));
}

#[tokio::test]
async fn actors_are_proven_sqlite() {
    actors_are_proven(TestDb::sqlite()).await;
}

#[tokio::test]
async fn actors_are_proven_postgres() {
    if let Some(db) = TestDb::postgres("actors_are_proven").await {
        actors_are_proven(db).await;
    }
}

/// Issue #15 §2: whatever existed before — a data directory made 0755, a database and keys
/// made 0644 — every start leaves the directory 0700 and every file in it 0600, and the
/// database's write-ahead log is created private; a configuration that holds a secret and that
/// everyone may read is warned about.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn data_at_rest_is_private_whatever_existed_before() {
    use std::os::unix::fs::PermissionsExt as _;
    let mode = |p: &std::path::Path| {
        std::fs::metadata(p)
            .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
            .permissions()
            .mode()
            & 0o777
    };
    let open = |p: &std::path::Path, m: u32| {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(m)).expect("chmod");
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    std::fs::create_dir(&data).expect("mkdir");
    open(&data, 0o755);
    let config = dir.path().join("ratspost.toml");
    ratspost_ok(&config, &["init"], None);
    let private = |when: &str| {
        assert_eq!(mode(&data), 0o700, "{when}: data_dir");
        assert_eq!(mode(&data.join("tls")), 0o700, "{when}: tls/");
        for f in [
            "ratspost.db",
            "dkim.key",
            "srs.key",
            "tls/key.pem",
            "tls/cert.pem",
        ] {
            assert_eq!(mode(&data.join(f)), 0o600, "{when}: {f}");
        }
    };
    private("after init on a 0755 directory");

    // Opened up again by hand, with a relay password in a world-readable configuration.
    open(&data, 0o755);
    open(&data.join("ratspost.db"), 0o644);
    open(&data.join("dkim.key"), 0o644);
    let mut text = std::fs::read_to_string(&config).expect("config");
    text = text
        .replace("# username = \"ratspost\"", "username = \"ratspost\"")
        .replace("# password = \"…\"", "password = \"Relais-Geheimnis\"")
        .replace("listen = \"127.0.0.1:2525\"", "listen = \"127.0.0.1:0\"")
        .replace("listen = \"127.0.0.1:8080\"", "listen = \"127.0.0.1:0\"")
        .replace("listen = \"127.0.0.1:1143\"", "listen = \"127.0.0.1:0\"")
        .replace(
            "listen_tls = \"127.0.0.1:1993\"",
            "listen_tls = \"127.0.0.1:0\"",
        );
    std::fs::write(&config, text).expect("config");
    open(&config, 0o644);
    let daemon = Daemon::start(&config);
    private("after serve");
    let mut c = Client::greeted(daemon.smtp).await;
    c.ehlo().await;
    // The write-ahead log exists now and is as private as the database.
    let wal = data.join("ratspost.db-wal");
    assert!(wal.exists(), "no WAL");
    assert_eq!(mode(&wal), 0o600, "WAL");
    let (_, log) = daemon.terminate_with_log();
    assert!(
        log.contains("the configuration holds secrets and every local user may read it")
            && log.contains("delivery.password"),
        "{log}"
    );
    assert!(
        !log.contains("Relais-Geheimnis"),
        "the secret is in the log"
    );
}

/// A disabled check by another crate between two events must not swallow the next event:
/// sqlx asks `log::log_enabled!` after every query (through tracing-log's bridge, which
/// `ratspost` installs), and with the filter as a per-layer filter the stale decision
/// dropped ratspost's own lines on that thread (tokio-rs/tracing#2519) — on PostgreSQL the
/// audit checkpoint and "stopped" never reached the journal.
#[test]
fn a_disabled_check_by_another_crate_does_not_swallow_the_next_line() {
    let log = ratspost_tests::capture::Captured::default();
    let subscriber = relay::logging::subscriber(
        tracing_subscriber::EnvFilter::new(relay::logging::DEFAULT_FILTER),
        log.clone(),
        false,
    );
    // The bridge is process-wide; other tests log nothing through `log`.
    let _ = tracing_log::LogTracer::init();
    tracing::subscriber::with_default(subscriber, || {
        for n in 0..5 {
            // What sqlx's query logger does: ask, find it disabled, log nothing.
            let _ = log::log_enabled!(target: "sqlx::query", log::Level::Debug);
            tracing::info!(target: "relay::probe", n, "line kept");
        }
    });
    let text = log.text();
    assert_eq!(text.matches("line kept").count(), 5, "{text}");
}
