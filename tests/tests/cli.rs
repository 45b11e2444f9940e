//! The command line, run as the real binary: init, serve's own setup, users, messages and
//! configuration errors.

use std::net::IpAddr;

use rustls_pki_types::ServerName;
use store::testing::TestDb;

use ratspost_tests::client::{Client, connector, message};
use ratspost_tests::daemon::{Daemon, enrol, ratspost, ratspost_ok, write_config};

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

    let out = ratspost_ok(
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
        ],
        None,
    );
    let generated = password_in(&out).unwrap_or_else(|| panic!("no password in {out}"));
    ratspost_ok(
        &config,
        &[
            "user",
            "add",
            "dora",
            "--name",
            "Dora DSB",
            "--role",
            "dpo",
            "--password-stdin",
        ],
        Some("Datenschutz-2026\n"),
    );

    let listed = ratspost_ok(&config, &["user", "list", "--json"], None);
    let users: serde_json::Value = serde_json::from_str(&listed).expect("json");
    assert_eq!(users[0]["login"], "anna");
    assert_eq!(users[0]["role"], "staff");
    assert_eq!(
        users[0]["addresses"],
        serde_json::json!(["a.schmidt@fraktion.test", "anna@stadt.test"])
    );
    assert_eq!(users[1]["login"], "dora");
    assert_eq!(users[1]["role"], "dpo");
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

    ratspost_ok(
        &config,
        &["user", "passwd", "anna", "--password-stdin"],
        Some("Neues Passwort 1\n"),
    );
    assert!(store::password::verify(
        "Neues Passwort 1",
        &store.password_hash("anna").await.expect("hash")
    ));

    // A taken address is a clear error, not a crash; nothing is half-created.
    let dup = ratspost(
        &config,
        &[
            "user",
            "add",
            "eve",
            "--name",
            "Eve",
            "--address",
            "anna@stadt.test",
        ],
        None,
    );
    assert_eq!(dup.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&dup.stderr).contains("already exists"),
        "{dup:?}"
    );
    assert!(store.user_by_login("eve").await.is_err());
    let unknown = ratspost(
        &config,
        &["user", "passwd", "nobody", "--password-stdin"],
        Some("x\n"),
    );
    assert_eq!(unknown.status.code(), Some(1));
    let bad_role = ratspost(
        &config,
        &["user", "add", "x", "--name", "X", "--role", "root"],
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
    ] {
        assert!(m.get(key).is_some(), "{key} missing in {m}");
    }
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
    let revoked = ratspost_ok(
        &config,
        &["message", "revoke-links", &id, "--by", "admin"],
        None,
    );
    assert!(revoked.contains("notice link(s) of message"), "{revoked}");
    let audit = ratspost_ok(&config, &["audit", "list", "--json"], None);
    assert!(audit.contains("notice.links_revoked"), "{audit}");
    let table = ratspost_ok(&config, &["message", "list"], None);
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
