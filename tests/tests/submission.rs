//! Mail submission (issue #14 §1; RFC 6409, RFC 8314, RFC 4954) against the real daemon with
//! real clients: swaks, Python's smtplib, curl and neomutt over STARTTLS and implicit TLS with
//! a device's app password; what a device may not do (skip TLS or AUTH, borrow another
//! identity in the envelope or the header, exceed the limits, keep going once revoked);
//! submission off without a relay; the relay down; a crash right after `250`; sensitive mail
//! held by policy and released by an admin; the audit entry without content.
//!
//! Written from the specification before the implementation was seen: each reply code is the
//! one the issue and the RFCs name.

use std::net::{IpAddr, Ipv4Addr};
use std::process::Output;
use std::time::{Duration, Instant};

use ratspost_tests::client::Client;
use ratspost_tests::imap::Imap;
use ratspost_tests::sink::{Received, Sink, SinkOptions};
use ratspost_tests::submission::{
    ANNA, ANNA_ACCOUNT_PASSWORD, ANNA_ALIAS, ANNA_LOGIN, BERND, DEVICE, Setup, Submission,
    auth_mechanisms, create_app_password, free_port, header_values, message, offers, received_line,
};
use ratspost_tests::{have, skip};
use store::testing::TestDb;
use tokio::process::Command;

/// Citizens anna answers.
const BUERGER: &str = "buerger@example.org";
const PRESSE: &str = "presse@example.com";
const LANDKREIS: &str = "amt@landkreis.test";

/// A relay (the city's mail server) with STARTTLS and its own certificate.
async fn relay() -> Sink {
    Sink::start(SinkOptions {
        starttls: true,
        ..SinkOptions::default()
    })
    .await
}

/// A daemon on SQLite relaying to `sink` (trusting its certificate), with further
/// `[submission]` lines.
async fn with_relay(sink: &Sink, submission: &str) -> Submission {
    Submission::start(
        TestDb::sqlite(),
        Setup {
            relay: Some(sink.addr),
            submission: submission.to_owned(),
            ca_file: Some(sink.cert.clone()),
            ..Setup::default()
        },
    )
    .await
}

/// The messages at the relay whose Message-ID is `<ID@stadt.test>`.
fn at_relay(sink: &Sink, id: &str) -> Vec<Received> {
    let wanted = format!("<{id}@stadt.test>");
    sink.received()
        .into_iter()
        .filter(|m| {
            header_values(&m.data, "Message-ID")
                .iter()
                .any(|v| v.eq_ignore_ascii_case(&wanted))
        })
        .collect()
}

/// Waits until the message `<ID@stadt.test>` is at the relay; returns it (asserting that it
/// came once, in one transaction).
async fn relayed(sink: &Sink, id: &str) -> Received {
    let wanted = format!("<{id}@stadt.test>");
    let got = sink
        .wait_until(|m| {
            header_values(&m.data, "Message-ID")
                .iter()
                .any(|v| v.eq_ignore_ascii_case(&wanted))
        })
        .await;
    assert_eq!(
        at_relay(sink, id).len(),
        1,
        "{id} was relayed more than once"
    );
    got
}

/// Asserts what every relayed submission shows: anna's envelope sender, the recipients in
/// one transaction, TLS to the relay, and a Received line "with ESMTPSA" on top.
#[track_caller]
fn assert_relayed(got: &Received, from: &str, rcpt: &[&str]) {
    assert_eq!(got.from, from, "envelope sender changed");
    assert_eq!(got.rcpt, rcpt, "not all recipients in one transaction");
    assert!(
        got.tls,
        "relayed without TLS (relay_tls = required by default)"
    );
    let text = String::from_utf8_lossy(&got.data);
    assert!(text.starts_with("Received:"), "no Received on top:\n{text}");
    let received = header_values(&got.data, "Received");
    assert!(
        received[0].contains("with ESMTPSA"),
        "the trace line does not say ESMTPSA (RFC 3848): {received:?}"
    );
}

fn transcript(out: &Output) -> String {
    format!(
        "status {}\n--- stdout\n{}\n--- stderr\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The job id in a `250 2.0.0 Ok: queued as N` reply.
#[track_caller]
fn queued_as(reply: &ratspost_tests::client::Reply) -> i64 {
    reply.expect(250, "2.0.0");
    reply
        .text()
        .split("queued as ")
        .nth(1)
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("no \"queued as N\" in {reply:?}"))
}

// ---------------------------------------------------------------------------------------
// 1–4. Real clients.
// ---------------------------------------------------------------------------------------

/// swaks: STARTTLS on `listen` with AUTH PLAIN (the login as user name), and implicit TLS on
/// `listen_tls` with AUTH LOGIN (an address as user name), both verifying the certificate.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn swaks_submits_with_starttls_and_plain_and_with_implicit_tls_and_login() {
    if !have("swaks") {
        return skip("swaks");
    }
    let sink = relay().await;
    let s = with_relay(&sink, "").await;
    let cert = s.cert().display().to_string();
    let swaks = |port: u16, tls: &str, mechanism: &str, user: &str, id: &str| {
        let mut command = Command::new("swaks");
        command
            .args(["--server", "localhost", "--port", &port.to_string(), tls])
            .args(["--tls-verify", "--tls-ca-path", &cert])
            .args(["--auth", mechanism, "--auth-user", user])
            .args(["--auth-password", &s.app_password])
            .args(["--from", ANNA, "--to", &format!("{BUERGER},{LANDKREIS}")])
            .args(["--header", &format!("Message-Id: <{id}@stadt.test>")])
            .args(["--header", "Subject: Ihre Anfrage"])
            .args(["--body", "Antwort per swaks"]);
        command
    };

    let out = swaks(
        s.starttls.port(),
        "--tls",
        "PLAIN",
        ANNA_LOGIN,
        "swaks-starttls",
    )
    .output()
    .await
    .expect("swaks");
    let text = transcript(&out);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("235 2.7.0"), "{text}");
    assert!(text.contains("250 2.0.0 Ok: queued as "), "{text}");

    let out = swaks(
        s.implicit.port(),
        "--tls-on-connect",
        "LOGIN",
        ANNA,
        "swaks-implicit",
    )
    .output()
    .await
    .expect("swaks");
    let text = transcript(&out);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("235 2.7.0"), "{text}");
    assert!(text.contains("250 2.0.0 Ok: queued as "), "{text}");

    for id in ["swaks-starttls", "swaks-implicit"] {
        let got = relayed(&sink, id).await;
        assert_relayed(&got, ANNA, &[BUERGER, LANDKREIS]);
        assert!(
            String::from_utf8_lossy(&got.data).contains("Antwort per swaks"),
            "body lost"
        );
    }
    s.stop();
}

/// The message the smtplib script sends (its bytes, to compare with what the relay got).
fn python_message(id: &str) -> String {
    format!(
        "From: Anna Schmidt <anna@stadt.test>\r\nTo: {BUERGER}\r\nCc: {PRESSE}\r\nSubject: Ihre Anfrage\r\nDate: Tue, 01 Dec 2026 09:00:00 +0100\r\nMessage-ID: <{id}@stadt.test>\r\n\r\nSehr geehrte Damen und Herren,\r\nanbei die Antwort.\r\n"
    )
}

/// Python's smtplib: `SMTP` + `starttls` + `login` (PLAIN, picked by smtplib) and
/// `SMTP_SSL` + AUTH LOGIN, each to two recipients; the EHLO offers checked on the way.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_smtplib_submits_to_two_recipients_with_starttls_and_implicit_tls() {
    if !have("python3") {
        return skip("python3 (smtplib)");
    }
    let sink = relay().await;
    let s = with_relay(&sink, "").await;
    let script = r#"
import os, smtplib, ssl, sys
ctx = ssl.create_default_context(cafile=os.environ["CAFILE"])
user, password = os.environ["SUBMIT_USER"], os.environ["SUBMIT_PASSWORD"]
rcpts = [os.environ["RCPT1"], os.environ["RCPT2"]]
with smtplib.SMTP("localhost", int(os.environ["STARTTLS_PORT"]), timeout=20) as smtp:
    smtp.ehlo("laptop.test")
    assert smtp.has_extn("starttls"), smtp.esmtp_features
    assert not smtp.has_extn("auth"), ("AUTH offered before TLS", smtp.esmtp_features)
    smtp.starttls(context=ctx)
    smtp.ehlo("laptop.test")
    assert not smtp.has_extn("starttls"), ("STARTTLS offered twice", smtp.esmtp_features)
    mechanisms = sorted(smtp.esmtp_features.get("auth", "").upper().split())
    assert mechanisms == ["LOGIN", "PLAIN"], mechanisms
    code, text = smtp.login(user, password)
    assert code == 235, (code, text)
    refused = smtp.sendmail("anna@stadt.test", rcpts, os.environ["MSG_STARTTLS"].encode())
    assert refused == {}, refused
with smtplib.SMTP_SSL("localhost", int(os.environ["TLS_PORT"]), context=ctx, timeout=20) as smtp:
    smtp.ehlo("laptop.test")
    mechanisms = sorted(smtp.esmtp_features.get("auth", "").upper().split())
    assert mechanisms == ["LOGIN", "PLAIN"], mechanisms
    smtp.user, smtp.password = user, password
    code, text = smtp.auth("LOGIN", smtp.auth_login)
    assert code == 235 and text.startswith(b"2.7.0"), (code, text)
    code, text = smtp.mail("anna@stadt.test")
    assert code == 250, (code, text)
    for r in rcpts:
        code, text = smtp.rcpt(r)
        assert code == 250, (r, code, text)
    code, text = smtp.data(os.environ["MSG_IMPLICIT"].encode())
    assert code == 250 and text.startswith(b"2.0.0 Ok: queued as "), (code, text)
print("ok")
"#;
    let out = Command::new("python3")
        .arg("-c")
        .arg(script)
        .env("CAFILE", s.cert())
        .env("SUBMIT_USER", ANNA_LOGIN)
        .env("SUBMIT_PASSWORD", &s.app_password)
        .env("RCPT1", BUERGER)
        .env("RCPT2", PRESSE)
        .env("STARTTLS_PORT", s.starttls.port().to_string())
        .env("TLS_PORT", s.implicit.port().to_string())
        .env("MSG_STARTTLS", python_message("py-starttls"))
        .env("MSG_IMPLICIT", python_message("py-implicit"))
        .output()
        .await
        .expect("python3");
    assert!(out.status.success(), "{}", transcript(&out));
    for id in ["py-starttls", "py-implicit"] {
        let got = relayed(&sink, id).await;
        assert_relayed(&got, ANNA, &[BUERGER, PRESSE]);
        let _ = received_line(&got.data, python_message(id).as_bytes());
    }
    s.stop();
}

/// curl's SMTP client over `smtps://` (implicit TLS, certificate verified) with
/// `--mail-from`, two `--mail-rcpt`, `--user` and `--upload-file`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn curl_submits_over_smtps() {
    if !have("curl") {
        return skip("curl");
    }
    let sink = relay().await;
    let s = with_relay(&sink, "").await;
    let file = s.dir.path().join("antwort.eml");
    let body = message("curl", ANNA, &[BUERGER, PRESSE], "Antwort per curl");
    std::fs::write(&file, &body).expect("write mail");
    let out = Command::new("curl")
        .args(["--silent", "--show-error", "--max-time", "30"])
        .arg(format!("smtps://localhost:{}", s.implicit.port()))
        .arg("--cacert")
        .arg(s.cert())
        .args([
            "--mail-from",
            ANNA,
            "--mail-rcpt",
            BUERGER,
            "--mail-rcpt",
            PRESSE,
        ])
        .args(["--user", &format!("{ANNA_LOGIN}:{}", s.app_password)])
        .arg("--upload-file")
        .arg(&file)
        .output()
        .await
        .expect("curl");
    assert!(out.status.success(), "{}", transcript(&out));
    let got = relayed(&sink, "curl").await;
    assert_relayed(&got, ANNA, &[BUERGER, PRESSE]);
    let _ = received_line(&got.data, &body);
    s.stop();
}

/// neomutt in batch mode (stdin not a terminal: no editor, no prompt), sending through its
/// own SMTP client over `smtps://` with AUTH and the test certificate trusted through
/// `ssl_ca_certificates_file`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn neomutt_submits_over_smtps() {
    if !have("neomutt") {
        return skip("neomutt");
    }
    let sink = relay().await;
    let s = with_relay(&sink, "").await;
    let home = s.dir.path().join("home");
    std::fs::create_dir_all(home.join("Mail")).expect("home");
    let muttrc = home.join("muttrc");
    std::fs::write(
        &muttrc,
        format!(
            "set from = \"anna@stadt.test\"\n\
             set use_from = yes\n\
             set hostname = \"stadt.test\"\n\
             set smtp_url = \"smtps://{ANNA_LOGIN}@localhost:{port}/\"\n\
             set smtp_pass = \"{password}\"\n\
             set smtp_authenticators = \"plain:login\"\n\
             set ssl_ca_certificates_file = \"{cert}\"\n\
             set certificate_file = \"{home}/certificates\"\n\
             set ssl_force_tls = yes\n\
             set ssl_verify_host = yes\n\
             set send_charset = \"utf-8\"\n\
             set folder = \"{home}/Mail\"\n\
             set record = \"\"\n\
             set copy = no\n",
            port = s.implicit.port(),
            password = s.app_password,
            cert = s.cert().display(),
            home = home.display(),
        ),
    )
    .expect("muttrc");
    let mut child = Command::new("neomutt")
        .env("HOME", &home)
        .env("TMPDIR", &home)
        .env_remove("MAIL")
        .args(["-n", "-F"])
        .arg(&muttrc)
        .args(["-s", "Ihre Anfrage", "--", BUERGER, PRESSE])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("neomutt");
    {
        use tokio::io::AsyncWriteExt as _;
        let mut stdin = child.stdin.take().expect("stdin");
        stdin
            .write_all("Sehr geehrte Damen und Herren,\nGrüße aus dem Rathaus.\n".as_bytes())
            .await
            .expect("body");
    }
    let out = tokio::time::timeout(Duration::from_secs(60), child.wait_with_output())
        .await
        .expect("neomutt did not finish within 60 s (waiting for a prompt?)")
        .expect("neomutt");
    assert!(out.status.success(), "{}", transcript(&out));
    let got = sink
        .wait_until(|m| String::from_utf8_lossy(&m.data).contains("Ihre Anfrage"))
        .await;
    assert_relayed(&got, ANNA, &[BUERGER, PRESSE]);
    let text = String::from_utf8_lossy(&got.data);
    assert!(text.contains("Rathaus"), "body lost:\n{text}");
    assert_eq!(header_values(&got.data, "From").len(), 1, "{text}");
    assert_eq!(header_values(&got.data, "Message-ID").len(), 1, "{text}");
    assert_eq!(header_values(&got.data, "Date").len(), 1, "{text}");
    s.stop();
}

// ---------------------------------------------------------------------------------------
// What the relay gets.
// ---------------------------------------------------------------------------------------

/// The relayed message is the submitted one with one Received line on top; a Date and a
/// Message-ID are added only where the device left them out (RFC 6409 §8.2, §8.3); all
/// recipients go in one transaction with anna's envelope sender.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_relay_gets_the_submitted_message_with_a_received_line_on_top() {
    let sink = relay().await;
    let s = with_relay(&sink, "").await;
    // From a "home connection" of its own, which the trace line must not name (README:
    // GDPR Art. 5(1)(c)).
    let home = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 57));
    let (mut c, _) = s.implicit_from(home).await;
    c.auth_plain(ANNA_LOGIN, &s.app_password)
        .await
        .expect(235, "2.7.0");
    let complete = message(
        "complete",
        ANNA,
        &[BUERGER],
        "Mit Datum und Kennung.\r\n..Punkt",
    );
    let r = c
        .send_mail(ANNA, &[BUERGER, PRESSE, LANDKREIS], &complete)
        .await;
    let _ = queued_as(&r);
    let bare = format!(
        "From: {ANNA}\r\nTo: {BUERGER}\r\nSubject: Ohne Datum\r\n\r\nOhne Datum und Kennung.\r\n"
    );
    c.send_mail(ANNA, &[BUERGER], bare.as_bytes())
        .await
        .expect(250, "2.0.0");
    c.cmd("QUIT").await;

    let got = relayed(&sink, "complete").await;
    assert_relayed(&got, ANNA, &[BUERGER, PRESSE, LANDKREIS]);
    let trace = received_line(&got.data, &complete);
    assert!(trace.contains("with ESMTPSA"), "{trace}");
    assert!(
        !trace.contains("127.0.0.57"),
        "the device's address: {trace}"
    );

    let got = sink
        .wait_until(|m| String::from_utf8_lossy(&m.data).contains("Ohne Datum"))
        .await;
    assert_relayed(&got, ANNA, &[BUERGER]);
    assert_eq!(header_values(&got.data, "Date").len(), 1, "no Date added");
    let ids = header_values(&got.data, "Message-ID");
    assert_eq!(ids.len(), 1, "no Message-ID added");
    assert!(
        ids[0].starts_with('<') && ids[0].ends_with('>') && ids[0].contains('@'),
        "{ids:?}"
    );
    for name in ["From", "To", "Subject"] {
        assert_eq!(
            header_values(&got.data, name),
            header_values(bare.as_bytes(), name),
            "{name} changed"
        );
    }
    assert!(got.data.ends_with(b"\r\n\r\nOhne Datum und Kennung.\r\n"));
    assert_eq!(sink.received().len(), 2, "{:?}", sink.received());
    s.stop();
}

/// `relay_tls = "required"` is the default: a relay without STARTTLS gets nothing (the job
/// waits, saying why), in particular not the relay credentials in plaintext.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_without_starttls_gets_nothing_by_default() {
    relay_without_starttls_gets_nothing("", "TLS").await;
}

/// The relay password never crosses the network in plaintext: with `relay_tls =
/// "opportunistic"` and a relay that offers no STARTTLS (as when an attacker strips it),
/// ratspost does not authenticate — the job waits, saying why.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relay_credentials_never_go_without_tls() {
    relay_without_starttls_gets_nothing("relay_tls = \"opportunistic\"\n", "not sent without TLS")
        .await;
}

/// A relay offering AUTH but no STARTTLS, configured with credentials and `tls_line`: the
/// accepted message stays queued with an error containing `error`, the relay gets nothing,
/// and the password is not in the log.
async fn relay_without_starttls_gets_nothing(tls_line: &str, error: &str) {
    let sink = Sink::start(SinkOptions {
        auth: true,
        ..SinkOptions::default()
    })
    .await;
    let s = with_relay(
        &sink,
        &format!(
            "{tls_line}relay_username = \"ratspost\"\nrelay_password = \"Relais-Geheimnis\"\n"
        ),
    )
    .await;
    let mut c = s.authed().await;
    c.send_mail(ANNA, &[BUERGER], &message("notls", ANNA, &[BUERGER], "x"))
        .await
        .expect(250, "2.0.0");
    let queue = s
        .wait_queue(|q| q.len() == 1 && q[0]["attempts"].as_i64() >= Some(2))
        .await;
    assert_eq!(queue[0]["state"], "queued", "{queue:#?}");
    assert!(
        queue[0]["last_error"]
            .as_str()
            .is_some_and(|e| e.contains(error)),
        "{queue:#?}"
    );
    assert!(
        sink.received().is_empty(),
        "relayed without TLS: {:#?}",
        sink.received()
    );
    assert!(
        !s.log().contains("Relais-Geheimnis"),
        "the password is in the log"
    );
    s.stop();
}

/// With `relay_username` and `relay_password`, ratspost authenticates to the relay (after
/// STARTTLS).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_relay_credentials_are_used_over_tls() {
    let sink = Sink::start(SinkOptions {
        starttls: true,
        auth: true,
        ..SinkOptions::default()
    })
    .await;
    let s = with_relay(
        &sink,
        "relay_username = \"ratspost\"\nrelay_password = \"relay-geheim\"\n",
    )
    .await;
    let mut c = s.authed().await;
    c.send_mail(ANNA, &[BUERGER], &message("auth", ANNA, &[BUERGER], "x"))
        .await
        .expect(250, "2.0.0");
    let got = relayed(&sink, "auth").await;
    assert_relayed(&got, ANNA, &[BUERGER]);
    assert_eq!(
        got.auth,
        Some(("ratspost".to_owned(), "relay-geheim".to_owned()))
    );
    let log = s.log();
    assert!(!log.contains("relay-geheim"), "relay password logged");
    assert!(!log.contains(&s.app_password), "app password logged");
    s.stop();
}

/// Issue #15 §2: the relay password may live in a file of its own (so the configuration can
/// stay readable); the relay gets it as written there, without the line end.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_relay_password_may_come_from_a_file() {
    let sink = Sink::start(SinkOptions {
        starttls: true,
        auth: true,
        ..SinkOptions::default()
    })
    .await;
    let secrets = tempfile::tempdir().expect("tempdir");
    let file = secrets.path().join("relay.pw");
    std::fs::write(&file, "aus-der-Datei\n").expect("write");
    let s = with_relay(
        &sink,
        &format!(
            "relay_username = \"ratspost\"\nrelay_password_file = {:?}\n",
            file.display().to_string()
        ),
    )
    .await;
    let mut c = s.authed().await;
    c.send_mail(ANNA, &[BUERGER], &message("pwfile", ANNA, &[BUERGER], "x"))
        .await
        .expect(250, "2.0.0");
    let got = relayed(&sink, "pwfile").await;
    assert_eq!(
        got.auth,
        Some(("ratspost".to_owned(), "aus-der-Datei".to_owned()))
    );
    assert!(!s.log().contains("aus-der-Datei"), "relay password logged");
    s.stop();
}

// ---------------------------------------------------------------------------------------
// 5. Refusals.
// ---------------------------------------------------------------------------------------

/// Before STARTTLS no AUTH is offered and AUTH is refused with 538 (RFC 4954 §4); MAIL before
/// AUTH is refused with 530 on both ports; after TLS, AUTH PLAIN and LOGIN are offered and
/// STARTTLS is not offered again (RFC 3207 §4.2); a second AUTH is refused (RFC 4954 §4).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_comes_before_auth_and_auth_before_mail() {
    let sink = relay().await;
    let s = with_relay(&sink, "").await;

    let mut c = s.plain().await;
    let ehlo = c.ehlo().await;
    assert!(offers(&ehlo, "STARTTLS"), "{ehlo:?}");
    assert!(
        auth_mechanisms(&ehlo).is_empty(),
        "AUTH before TLS: {ehlo:?}"
    );
    c.auth_plain(ANNA_LOGIN, &s.app_password)
        .await
        .expect(538, "5.7.11");
    c.cmd(&format!("MAIL FROM:<{ANNA}>"))
        .await
        .expect(530, "5.7.0");
    let mut c = c.starttls(&s.cert()).await;
    let ehlo = c.ehlo().await;
    assert_eq!(auth_mechanisms(&ehlo), ["LOGIN", "PLAIN"], "{ehlo:?}");
    assert!(!offers(&ehlo, "STARTTLS"), "{ehlo:?}");
    c.cmd(&format!("MAIL FROM:<{ANNA}>"))
        .await
        .expect(530, "5.7.0");
    c.cmd(&format!("RCPT TO:<{BUERGER}>")).await;
    let data = c.cmd("DATA").await;
    assert!(data.code >= 500, "DATA without AUTH: {data:?}");
    c.auth_login(ANNA_LOGIN, &s.app_password)
        .await
        .expect(235, "2.7.0");
    let again = c.auth_plain(ANNA_LOGIN, &s.app_password).await;
    assert_eq!(again.code, 503, "a second AUTH: {again:?}");
    c.cmd(&format!("MAIL FROM:<{ANNA}>"))
        .await
        .expect(250, "2.1.0");
    c.cmd("QUIT").await;

    let (mut c, ehlo) = s.implicit().await;
    assert_eq!(auth_mechanisms(&ehlo), ["LOGIN", "PLAIN"], "{ehlo:?}");
    assert!(!offers(&ehlo, "STARTTLS"), "{ehlo:?}");
    c.cmd(&format!("MAIL FROM:<{ANNA}>"))
        .await
        .expect(530, "5.7.0");
    c.cmd("QUIT").await;
    assert!(sink.received().is_empty());
    assert!(s.queue().is_empty());
    s.stop();
}

/// The user name is the login or any of the user's addresses (in any case); the successful
/// login is in the user's history as `submission` with the device.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_login_or_any_address_authenticates_and_is_in_the_login_history() {
    let sink = relay().await;
    let s = with_relay(&sink, "").await;
    for user in [
        ANNA_LOGIN,
        ANNA,
        ANNA_ALIAS,
        &ANNA_ALIAS.to_ascii_lowercase(),
    ] {
        let (mut c, _) = s.implicit().await;
        c.auth_plain(user, &s.app_password)
            .await
            .expect(235, "2.7.0");
        c.cmd("QUIT").await;
    }
    // As neomutt sends it: the authorisation identity is the login itself (RFC 4616).
    let (mut c, _) = s.implicit().await;
    let plain = relay::encoding::base64(format!("anna\0anna\0{}", s.app_password).as_bytes());
    c.cmd(&format!("AUTH PLAIN {plain}"))
        .await
        .expect(235, "2.7.0");
    c.cmd("QUIT").await;
    // Anna's password for bernd's name, a name that names nobody, and anna asking to act
    // as bernd (an authorisation identity she may not assume): all refused alike.
    for user in [BERND, "niemand", "niemand@stadt.test"] {
        let (mut c, _) = s.implicit().await;
        c.auth_plain(user, &s.app_password)
            .await
            .expect(535, "5.7.8");
    }
    let store = s.store().await;
    let anna = store.user_by_login(ANNA_LOGIN).await.expect("anna");
    let logins = store.logins(anna.id, None, 50).await.expect("logins");
    store.close().await;
    assert!(
        logins
            .iter()
            .any(|l| l.via == "submission" && l.device.as_deref() == Some(DEVICE)),
        "no submission login with the device in the history: {logins:?}"
    );
    // Anna's right password, asking to act as bernd: not authenticated, and refused as an
    // authentication failure (RFC 4616 §2: the server fails the authentication; RFC 4954
    // §6: 535 5.7.8), not as a malformed response (501 is for what cannot be decoded).
    let (mut c, _) = s.implicit().await;
    let plain = relay::encoding::base64(format!("bernd\0anna\0{}", s.app_password).as_bytes());
    let r = c.cmd(&format!("AUTH PLAIN {plain}")).await;
    assert_ne!(r.code, 235, "anna was let in as bernd");
    c.cmd(&format!("MAIL FROM:<{BERND}>"))
        .await
        .expect(530, "5.7.0");
    assert_eq!(r.code, 535, "anna may not act as bernd: {r:?}");
    s.stop();
}

/// A wrong password and the account password are refused with 535 after a growing delay;
/// failures count together with IMAP's for the client address; once banned, the address gets
/// 421 and the connection closes, even with the right password (on IMAP too), while another
/// address still gets in.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_passwords_slow_down_and_ban_together_with_imap() {
    let sink = relay().await;
    let s = Submission::start(
        TestDb::sqlite(),
        Setup {
            relay: Some(sink.addr),
            ca_file: Some(sink.cert.clone()),
            extra: "[imap]\nlisten = \"127.0.0.1:0\"\nlisten_tls = \"127.0.0.1:0\"\n\
                    failure_delay_ms = 200\nban_after = 4\nban_secs = 60\n"
                .to_owned(),
            ..Setup::default()
        },
    )
    .await;
    let attacker = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));

    let (mut c, _) = s.implicit_from(attacker).await;
    let started = Instant::now();
    c.auth_plain(ANNA_LOGIN, "falsch")
        .await
        .expect(535, "5.7.8");
    let first = started.elapsed();
    let started = Instant::now();
    c.auth_plain(ANNA_LOGIN, ANNA_ACCOUNT_PASSWORD)
        .await
        .expect(535, "5.7.8");
    let second = started.elapsed();
    assert!(
        first >= Duration::from_millis(200) && second >= Duration::from_millis(400),
        "no growing delay: {first:?}, {second:?}"
    );
    c.cmd("QUIT").await;

    // The third failure on IMAP, from the same address.
    let imaps = s.daemon.as_ref().expect("daemon").imaps;
    let mut imap = Imap::connect_tls_from(attacker, imaps, &s.cert()).await;
    assert!(imap.line().await.starts_with("* OK"));
    imap.send("a1 LOGIN anna falsch-imap\r\n").await;
    let reply = imap.line().await;
    assert!(reply.starts_with("a1 NO"), "{reply}");

    // The fourth on submission (LOGIN this time): now the address is banned.
    let (mut c, _) = s.implicit_from(attacker).await;
    c.auth_login(ANNA, "noch-falscher")
        .await
        .expect(535, "5.7.8");
    c.cmd("QUIT").await;

    // Banned: 421 and the connection closes, whether at the greeting or at AUTH, even with
    // the right password.
    let mut c = Client::connect_from(attacker, s.implicit)
        .await
        .into_tls(&s.cert())
        .await
        .expect("TLS");
    let greeting = c.reply().await;
    if greeting.code == 220 {
        c.ehlo().await;
        c.auth_plain(ANNA_LOGIN, &s.app_password)
            .await
            .expect(421, "4.7.0");
    } else {
        greeting.expect(421, "4.7.0");
    }
    assert!(c.closed().await, "the connection stayed open after 421");

    // Banned on IMAP too.
    let mut imap = Imap::connect_tls_from(attacker, imaps, &s.cert()).await;
    imap.line().await;
    imap.send(&format!("b1 LOGIN anna {}\r\n", s.app_password))
        .await;
    let reply = imap.line().await;
    assert!(
        reply.starts_with("b1 NO"),
        "IMAP let a banned address in: {reply}"
    );

    // Another address is not banned.
    let (mut c, _) = s.implicit().await;
    c.auth_plain(ANNA_LOGIN, &s.app_password)
        .await
        .expect(235, "2.7.0");
    c.cmd("QUIT").await;
    s.stop();
}

/// A man in the middle appends AUTH to the plaintext STARTTLS (CVE-2011-0411): it is
/// discarded, and the TLS session starts unauthenticated.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commands_injected_before_the_tls_handshake_are_discarded() {
    let sink = relay().await;
    let s = with_relay(&sink, "").await;
    let mut c = s.plain().await;
    c.ehlo().await;
    let plain = relay::encoding::base64(format!("\0anna\0{}", s.app_password).as_bytes());
    c.send(format!("STARTTLS\r\nAUTH PLAIN {plain}\r\n").as_bytes())
        .await;
    c.reply().await.expect(220, "2.0.0");
    let mut c = c.into_tls(&s.cert()).await.expect("handshake");
    // Had the injected AUTH survived, this EHLO would see its reply first.
    let ehlo = c.cmd("EHLO client.test").await;
    assert_eq!(ehlo.code, 250, "{ehlo:?}");
    c.cmd(&format!("MAIL FROM:<{ANNA}>"))
        .await
        .expect(530, "5.7.0");
    s.stop();
}

/// `max_connections_per_ip` and `max_connections`: over the limit a client gets 421 and the
/// connection closes; another address still gets in.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_limits_give_421() {
    let sink = relay().await;
    let s = with_relay(&sink, "max_connections = 3\nmax_connections_per_ip = 2\n").await;
    let _a = s.plain().await;
    let _b = s.plain().await;
    let mut c = Client::connect(s.starttls).await;
    let r = c.reply().await;
    r.expect(421, "4.7.0");
    assert!(c.closed().await, "open after 421");
    let other = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 3));
    let mut d = Client::connect_from(other, s.starttls).await;
    assert_eq!(d.reply().await.code, 220);
    // Three sessions now: the fourth, from yet another address, is one too many.
    let mut e = Client::connect_from(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 4)), s.starttls).await;
    e.reply().await.expect(421, "4.7.0");
    assert!(e.closed().await, "open after 421");
    s.stop();
}

/// The envelope sender must be one of anna's addresses (in any case); another user's or the
/// null sender is refused with 553.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_envelope_sender_must_be_the_users_own_address() {
    let sink = relay().await;
    let s = with_relay(&sink, "").await;
    let mut c = s.authed().await;
    for foreign in [
        format!("<{BERND}>"),
        "<>".to_owned(),
        "<anna@stadt.test.example>".to_owned(),
        "<anna@stadt.tes>".to_owned(),
        "<\"anna@stadt.test\"@evil.example>".to_owned(),
    ] {
        c.cmd(&format!("MAIL FROM:{foreign}"))
            .await
            .expect(553, "5.7.1");
    }
    for own in [
        ANNA.to_ascii_uppercase(),
        ANNA_ALIAS.to_owned(),
        ANNA_ALIAS.to_ascii_lowercase(),
    ] {
        c.cmd(&format!("MAIL FROM:<{own}>"))
            .await
            .expect(250, "2.1.0");
        c.cmd("RSET").await.expect(250, "2.0.0");
    }
    let alias = ANNA_ALIAS.to_ascii_lowercase();
    let msg = message("alias", &alias, &[BUERGER], "Vom zweiten Postfach");
    c.send_mail(&alias, &[BUERGER], &msg)
        .await
        .expect(250, "2.0.0");
    let got = relayed(&sink, "alias").await;
    assert_relayed(&got, &alias, &[BUERGER]);
    s.stop();
}

/// A header naming someone else is refused at the end of DATA with 550 5.7.1 and nothing is
/// queued or relayed: another user in `From:` (alone, among others, folded, in a group, as
/// a comment's neighbour), no `From:` or two, and `Sender:`, `Resent-From:`,
/// `Resent-Sender:` of someone else. BDAT (when offered) is checked the same way.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_header_must_name_only_the_users_own_addresses() {
    let sink = relay().await;
    let s = with_relay(&sink, "").await;
    let mut c = s.authed().await;
    let rest = format!(
        "To: {BUERGER}\r\nSubject: Geheimplan\r\nDate: Tue, 1 Dec 2026 09:00:00 +0100\r\nMessage-ID: <spoof@stadt.test>\r\n\r\nVertraulicher Inhalt\r\n"
    );
    let spoofed_headers = [
        format!("From: Bernd <{BERND}>\r\n"),
        format!("From: {BERND}\r\n"),
        format!("FROM: {BERND}\r\n"),
        format!("From: {BERND} (Anna Schmidt)\r\n"),
        format!("From: Anna <{ANNA}>, Bernd <{BERND}>\r\n"),
        format!("From: Anna\r\n <{BERND}>\r\n"),
        format!("From: Rathaus: {BERND};\r\n"),
        format!("From: \"{ANNA}\" <{BERND}>\r\n"),
        String::new(),
        format!("From: {ANNA}\r\nFrom: {ANNA}\r\n"),
        format!("From: {ANNA}\r\nSender: {BERND}\r\n"),
        format!("From: {ANNA}\r\nResent-From: {BERND}\r\n"),
        format!("From: {ANNA}\r\nResent-Sender: {BERND}\r\n"),
        format!("From: {ANNA}\r\nSender: Bernd <{BERND}>\r\n"),
        // A line that is no header field: parsers differ on whether the header ends there
        // (independent trial of #14), so what follows it must not be relayed unchecked.
        format!("From: {ANNA}\r\nGarbage line without colon\r\nFrom: {BERND}\r\n"),
        // Bernd's address shown where phones show only the name.
        format!("From: \"Bernd <{BERND}>\" <{ANNA}>\r\n"),
        format!("From: ({BERND}) <{ANNA}>\r\n"),
        format!("From: =?utf-8?q?bernd=40stadt=2Etest?= <{ANNA}>\r\n"),
    ];
    for head in &spoofed_headers {
        let body = format!("{head}{rest}");
        let r = c.send_mail(ANNA, &[BUERGER], body.as_bytes()).await;
        assert!(
            r.code == 550 && r.text().starts_with("5.7.1"),
            "accepted or refused wrongly ({r:?}):\n{body}"
        );
    }
    let (_, ehlo) = s.implicit().await;
    if offers(&ehlo, "CHUNKING") {
        let body = format!("From: {BERND}\r\n{rest}");
        c.cmd(&format!("MAIL FROM:<{ANNA}>"))
            .await
            .expect(250, "2.1.0");
        c.cmd(&format!("RCPT TO:<{BUERGER}>"))
            .await
            .expect(250, "2.1.5");
        c.send(format!("BDAT {} LAST\r\n", body.len()).as_bytes())
            .await;
        c.send(body.as_bytes()).await;
        c.reply().await.expect(550, "5.7.1");
    }
    assert!(s.queue().is_empty(), "a refused message was queued");

    // The same session still sends as anna; with Sender/Resent-* of her own that is fine.
    let own = format!(
        "From: Anna <{ANNA}>\r\nSender: {}\r\nResent-From: {ANNA}\r\nTo: {BUERGER}\r\nSubject: Ok\r\nDate: Tue, 1 Dec 2026 09:00:00 +0100\r\nMessage-ID: <own@stadt.test>\r\n\r\nFrom: {BERND} steht nur im Text.\r\n",
        ANNA_ALIAS.to_ascii_uppercase()
    );
    c.send_mail(ANNA, &[BUERGER], own.as_bytes())
        .await
        .expect(250, "2.0.0");
    let got = relayed(&sink, "own").await;
    assert_relayed(&got, ANNA, &[BUERGER]);
    // Give a wrongly queued spoof the time to arrive too: the relay must have only one.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(sink.received().len(), 1, "{:#?}", sink.received());
    assert!(at_relay(&sink, "spoof").is_empty(), "a spoof was relayed");
    assert_eq!(s.queue().len(), 1, "{:#?}", s.queue());
    s.stop();
}

/// SMTP smuggling (CVE-2023-51766 and friends): a submitted body hiding `LF . LF` and a
/// second transaction in bernd's name must not become a second message at the relay. Over
/// DATA such a body is refused; over BDAT (length-delimited) it may be accepted, but then
/// it reaches the relay as one message in canonical CRLF form (RFC 5321 §2.3.8).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_smuggled_second_message_never_reaches_the_relay() {
    let sink = relay().await;
    let s = with_relay(&sink, "").await;
    let smuggled = format!(
        "\n.\nMAIL FROM:<{BERND}>\nRCPT TO:<{BUERGER}>\nDATA\nFrom: {BERND}\nMessage-ID: <smuggled@stadt.test>\n\nIm Namen von Bernd\n.\n"
    );
    let body = format!(
        "From: {ANNA}\r\nTo: {BUERGER}\r\nSubject: Harmlos\r\nMessage-ID: <carrier@stadt.test>\r\n\r\nHallo{smuggled}Rest\r\n"
    );
    let mut c = s.authed().await;
    c.cmd(&format!("MAIL FROM:<{ANNA}>"))
        .await
        .expect(250, "2.1.0");
    c.cmd(&format!("RCPT TO:<{BUERGER}>"))
        .await
        .expect(250, "2.1.5");
    assert_eq!(c.cmd("DATA").await.code, 354);
    c.send(body.as_bytes()).await;
    c.send(b"\r\n.\r\n").await;
    let r = c.reply().await;
    assert!(r.code >= 500, "DATA with bare LF accepted: {r:?}");

    let (_, ehlo) = s.implicit().await;
    assert!(offers(&ehlo, "CHUNKING"), "{ehlo:?}");
    c.cmd(&format!("MAIL FROM:<{ANNA}>"))
        .await
        .expect(250, "2.1.0");
    c.cmd(&format!("RCPT TO:<{BUERGER}>"))
        .await
        .expect(250, "2.1.5");
    c.send(format!("BDAT {} LAST\r\n", body.len()).as_bytes())
        .await;
    c.send(body.as_bytes()).await;
    let r = c.reply().await;
    if r.code == 250 {
        let got = relayed(&sink, "carrier").await;
        assert_relayed(&got, ANNA, &[BUERGER]);
        let bare = got
            .data
            .windows(2)
            .enumerate()
            .any(|(i, w)| (w[1] == b'\n' && w[0] != b'\r') || (i == 0 && w[0] == b'\n'));
        assert!(
            !bare,
            "relayed with bare LF: {}",
            String::from_utf8_lossy(&got.data)
        );
    } else {
        assert!(r.code >= 500, "{r:?}");
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(at_relay(&sink, "smuggled").is_empty(), "smuggled through");
    assert!(
        sink.received().iter().all(|m| m.from == ANNA),
        "{:#?}",
        sink.received()
    );
    s.stop();
}

/// More than `max_recipients` RCPTs get 452 4.5.3 (the others stay accepted, RFC 5321
/// §4.5.3.1.10); a message over `max_message_size` gets 552 5.3.4 and is not queued.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn too_many_recipients_and_too_large_messages_are_refused() {
    let sink = relay().await;
    let s = with_relay(&sink, "max_recipients = 3\nmax_message_size = 4096\n").await;
    let mut c = s.authed().await;
    c.cmd(&format!("MAIL FROM:<{ANNA}>"))
        .await
        .expect(250, "2.1.0");
    for r in [BUERGER, PRESSE, LANDKREIS] {
        c.cmd(&format!("RCPT TO:<{r}>")).await.expect(250, "2.1.5");
    }
    c.cmd("RCPT TO:<vierter@example.net>")
        .await
        .expect(452, "4.5.3");
    let r = c.cmd("DATA").await;
    assert_eq!(r.code, 354, "{r:?}");
    let mut data = ratspost_tests::client::dot_stuff(&message(
        "three",
        ANNA,
        &[BUERGER, PRESSE, LANDKREIS],
        "An drei",
    ));
    data.extend_from_slice(b".\r\n");
    c.send(&data).await;
    c.reply().await.expect(250, "2.0.0");
    let got = relayed(&sink, "three").await;
    assert_relayed(&got, ANNA, &[BUERGER, PRESSE, LANDKREIS]);

    // Over the size limit: 552 at the end of DATA, and with SIZE= at MAIL (RFC 1870) when
    // SIZE is offered (then with the limit).
    let big = message("big", ANNA, &[BUERGER], &"Anlage ".repeat(1000));
    assert!(big.len() > 4096);
    c.send_mail(ANNA, &[BUERGER], &big)
        .await
        .expect(552, "5.3.4");
    let (mut c, ehlo) = s.implicit().await;
    if let Some(size) = ehlo
        .lines
        .iter()
        .find_map(|l| l.strip_prefix("SIZE ").map(str::to_owned))
    {
        assert_eq!(size.trim(), "4096", "{ehlo:?}");
        c.auth_plain(ANNA_LOGIN, &s.app_password)
            .await
            .expect(235, "2.7.0");
        c.cmd(&format!("MAIL FROM:<{ANNA}> SIZE=5000"))
            .await
            .expect(552, "5.3.4");
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(s.queue().len(), 1, "{:#?}", s.queue());
    assert!(at_relay(&sink, "big").is_empty());
    s.stop();
}

/// The defaults the issue names: 25 MiB (advertised as SIZE, RFC 1870) and 50 recipients.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_default_limits_are_25_mib_and_50_recipients() {
    let sink = relay().await;
    let s = with_relay(&sink, "").await;
    let (mut c, ehlo) = s.implicit().await;
    assert!(ehlo.lines.iter().any(|l| l == "SIZE 26214400"), "{ehlo:?}");
    c.auth_plain(ANNA_LOGIN, &s.app_password)
        .await
        .expect(235, "2.7.0");
    c.cmd(&format!("MAIL FROM:<{ANNA}> SIZE=26214401"))
        .await
        .expect(552, "5.3.4");
    c.cmd(&format!("MAIL FROM:<{ANNA}> SIZE=26214400"))
        .await
        .expect(250, "2.1.0");
    for n in 0..50 {
        c.cmd(&format!("RCPT TO:<buerger{n}@example.org>"))
            .await
            .expect(250, "2.1.5");
    }
    c.cmd("RCPT TO:<buerger50@example.org>")
        .await
        .expect(452, "4.5.3");
    c.cmd("RSET").await.expect(250, "2.0.0");
    s.stop();
}

/// `max_messages_per_hour` per user: the third message in the hour gets 450 4.7.1 at MAIL,
/// in a new session too; another user is not affected.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_hourly_limit_counts_per_user() {
    let sink = relay().await;
    let s = with_relay(&sink, "max_messages_per_hour = 2\n").await;
    let mut c = s.authed().await;
    for n in 0..2 {
        let id = format!("hour-{n}");
        c.send_mail(ANNA, &[BUERGER], &message(&id, ANNA, &[BUERGER], "x"))
            .await
            .expect(250, "2.0.0");
    }
    c.cmd(&format!("MAIL FROM:<{ANNA}>"))
        .await
        .expect(450, "4.7.1");
    let mut c = s.authed().await;
    c.cmd(&format!("MAIL FROM:<{ANNA}>"))
        .await
        .expect(450, "4.7.1");

    let bernd_password = create_app_password(&s.config, "bernd", "Laptop");
    let (mut c, _) = s.implicit().await;
    c.auth_plain("bernd", &bernd_password)
        .await
        .expect(235, "2.7.0");
    c.send_mail(BERND, &[BUERGER], &message("bernd", BERND, &[BUERGER], "x"))
        .await
        .expect(250, "2.0.0");
    relayed(&sink, "bernd").await;
    relayed(&sink, "hour-1").await;
    assert_eq!(sink.received().len(), 3);
    s.stop();
}

/// A revoked device cannot AUTH any more (535) and its open session is refused at the next
/// MAIL (530); the user's other device keeps working.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_device_is_out_at_once() {
    let sink = relay().await;
    let s = with_relay(&sink, "").await;
    let laptop = create_app_password(&s.config, ANNA_LOGIN, "Laptop");
    let mut open = s.authed().await;
    open.send_mail(ANNA, &[BUERGER], &message("before", ANNA, &[BUERGER], "x"))
        .await
        .expect(250, "2.0.0");

    s.revoke(DEVICE);

    open.cmd(&format!("MAIL FROM:<{ANNA}>"))
        .await
        .expect(530, "5.7.0");
    let (mut c, _) = s.implicit().await;
    c.auth_plain(ANNA_LOGIN, &s.app_password)
        .await
        .expect(535, "5.7.8");
    let (mut c, _) = s.secured().await;
    c.auth_login(ANNA_LOGIN, &s.app_password)
        .await
        .expect(535, "5.7.8");
    let (mut c, _) = s.implicit().await;
    c.auth_plain(ANNA_LOGIN, &laptop).await.expect(235, "2.7.0");
    c.send_mail(ANNA, &[BUERGER], &message("laptop", ANNA, &[BUERGER], "x"))
        .await
        .expect(250, "2.0.0");
    relayed(&sink, "laptop").await;
    relayed(&sink, "before").await;
    assert_eq!(sink.received().len(), 2);
    s.stop();
}

// ---------------------------------------------------------------------------------------
// 6. Submission off.
// ---------------------------------------------------------------------------------------

/// The TCP ports process `pid` listens on (from its socket inodes and /proc/net/tcp).
fn listening_ports(pid: u32) -> Vec<u16> {
    let inodes: Vec<String> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .expect("fds")
        .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
        .filter_map(|l| {
            l.to_str()?
                .strip_prefix("socket:[")?
                .strip_suffix(']')
                .map(str::to_owned)
        })
        .collect();
    let table = std::fs::read_to_string("/proc/net/tcp").expect("/proc/net/tcp");
    table
        .lines()
        .skip(1)
        .filter_map(|line| {
            let cols: Vec<&str> = line.split_whitespace().collect();
            let port = u16::from_str_radix(cols.get(1)?.rsplit(':').next()?, 16).ok()?;
            (cols.get(3) == Some(&"0A") && inodes.iter().any(|i| Some(&i.as_str()) == cols.get(9)))
                .then_some(port)
        })
        .collect()
}

/// Without `submission.relay` neither submission port is opened: neither the configured
/// ones nor, without a `[submission]` section, the defaults 1587 and 1465 (checked on the
/// daemon's own sockets, so another program on those ports cannot confuse the test).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_relay_submission_is_off() {
    let s = Submission::start(TestDb::sqlite(), Setup::default()).await;
    for addr in [s.starttls, s.implicit] {
        let r = tokio::net::TcpStream::connect(addr).await;
        assert!(
            r.as_ref()
                .is_err_and(|e| e.kind() == std::io::ErrorKind::ConnectionRefused),
            "{addr} accepts connections without a relay: {r:?}"
        );
    }
    let daemon = s.daemon.as_ref().expect("daemon");
    let ports = listening_ports(daemon.pid());
    assert!(ports.contains(&daemon.smtp.port()), "{ports:?}");
    for port in [s.starttls.port(), s.implicit.port(), 1587, 1465] {
        assert!(!ports.contains(&port), "listens on {port}: {ports:?}");
    }
    s.stop();

    let dir = tempfile::tempdir().expect("tempdir");
    let db = TestDb::sqlite();
    let config = ratspost_tests::daemon::write_config(dir.path(), &db.url, "");
    let daemon = ratspost_tests::daemon::Daemon::start(&config);
    let ports = listening_ports(daemon.pid());
    assert!(ports.contains(&daemon.smtp.port()), "{ports:?}");
    for port in [1587, 1465] {
        assert!(!ports.contains(&port), "listens on {port}: {ports:?}");
    }
    assert!(daemon.terminate().success());
}

// ---------------------------------------------------------------------------------------
// 7. Relay down; crash after 250.
// ---------------------------------------------------------------------------------------

/// A certificate and key for a relay that goes away and comes back.
fn relay_identity(dir: &std::path::Path) -> (std::path::PathBuf, std::path::PathBuf) {
    let (cert, key) = (dir.join("relay-cert.pem"), dir.join("relay-key.pem"));
    relay::tls::generate_self_signed(&cert, &key).expect("relay certificate");
    (cert, key)
}

/// The relay down: the job stays queued with its last error and attempts, and goes once the
/// relay is back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_relay_down_queues_and_retries() {
    let keys = tempfile::tempdir().expect("tempdir");
    let (cert, key) = relay_identity(keys.path());
    let addr = free_port();
    let s = Submission::start(
        TestDb::sqlite(),
        Setup {
            relay: Some(addr),
            ca_file: Some(cert.clone()),
            ..Setup::default()
        },
    )
    .await;
    let mut c = s.authed().await;
    c.send_mail(
        ANNA,
        &[BUERGER, PRESSE],
        &message("down", ANNA, &[BUERGER], "x"),
    )
    .await
    .expect(250, "2.0.0");
    let queue = s
        .wait_queue(|q| q.len() == 1 && q[0]["attempts"].as_i64() >= Some(2))
        .await;
    assert_eq!(queue[0]["state"], "queued", "{queue:#?}");
    assert!(
        queue[0]["last_error"]
            .as_str()
            .is_some_and(|e| !e.trim().is_empty()),
        "{queue:#?}"
    );

    let sink = Sink::start_on(
        addr,
        SinkOptions {
            starttls: true,
            identity: Some((cert, key)),
            ..SinkOptions::default()
        },
    )
    .await;
    let got = relayed(&sink, "down").await;
    assert_relayed(&got, ANNA, &[BUERGER, PRESSE]);
    let queue = s.wait_queue(|q| q[0]["state"] == "delivered").await;
    assert_eq!(queue.len(), 1);
    s.stop();
}

/// Accepted means durable: SIGKILL the daemon the moment the client got `250` — first while
/// the relay is down (so it cannot have the messages yet), then with the relay up and
/// deliveries in flight — and after a restart every acknowledged message reaches the relay.
///
/// A job the killed daemon had leased (a delivery in flight) is taken up again when its lease
/// runs out (`delivery.lease_secs`, 600 s by default, 10 s here: at least twice the harness's
/// `delivery.timeout_secs` of 5 s).
async fn crash_after_250_loses_nothing(db: TestDb) {
    let keys = tempfile::tempdir().expect("tempdir");
    let (cert, key) = relay_identity(keys.path());
    let addr = free_port();
    let mut s = Submission::start(
        db,
        Setup {
            relay: Some(addr),
            ca_file: Some(cert.clone()),
            delivery: "lease_secs = 10\n".to_owned(),
            ..Setup::default()
        },
    )
    .await;
    let mut acked = Vec::new();
    let mut c = s.authed().await;
    for n in 0..5 {
        let id = format!("down-{n}");
        c.send_mail(
            ANNA,
            &[BUERGER, PRESSE],
            &message(&id, ANNA, &[BUERGER], "x"),
        )
        .await
        .expect(250, "2.0.0");
        acked.push(id);
    }
    s.kill();
    let sink = Sink::start_on(
        addr,
        SinkOptions {
            starttls: true,
            identity: Some((cert, key)),
            ..SinkOptions::default()
        },
    )
    .await;
    s.restart();
    let missing = missing_at_relay(&sink, &acked, 60).await;
    assert!(
        missing.is_empty(),
        "acknowledged but never relayed: {missing:?}\nqueue: {:#?}\nlog after restart:\n{}",
        s.queue(),
        s.log()
    );
    for id in &acked {
        let got = relayed(&sink, id).await;
        assert_relayed(&got, ANNA, &[BUERGER, PRESSE]);
    }

    // With the relay up: two devices' worth of sessions at once, killed after the last 250.
    let tasks: Vec<_> = (0..2)
        .map(|conn| {
            let (addr, cert, password) = (s.implicit, s.cert(), s.app_password.clone());
            tokio::spawn(async move {
                let mut c = Client::connect(addr)
                    .await
                    .into_tls(&cert)
                    .await
                    .expect("TLS");
                c.reply().await;
                c.ehlo().await;
                c.auth_plain(ANNA_LOGIN, &password)
                    .await
                    .expect(235, "2.7.0");
                let mut acked = Vec::new();
                for n in 0..10 {
                    let id = format!("up-{conn}-{n}");
                    c.send_mail(ANNA, &[BUERGER], &message(&id, ANNA, &[BUERGER], "x"))
                        .await
                        .expect(250, "2.0.0");
                    acked.push(id);
                }
                acked
            })
        })
        .collect();
    let mut up = Vec::new();
    for t in tasks {
        up.extend(t.await.expect("client"));
    }
    s.kill();
    s.restart();
    let missing = missing_at_relay(&sink, &up, 60).await;
    assert!(
        missing.is_empty(),
        "acknowledged but never relayed: {missing:?}\nqueue: {:#?}\nlog after restart:\n{}",
        s.queue(),
        s.log()
    );
    s.stop();
}

/// Waits up to `secs` seconds until every message `<ID@stadt.test>` of `ids` is at the
/// relay; returns those that are not.
async fn missing_at_relay(sink: &Sink, ids: &[String], secs: u64) -> Vec<String> {
    let mut missing = ids.to_vec();
    for _ in 0..secs * 10 {
        missing.retain(|id| at_relay(sink, id).is_empty());
        if missing.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    missing
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn submission_crash_after_250_loses_nothing_sqlite() {
    crash_after_250_loses_nothing(TestDb::sqlite()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn submission_crash_after_250_loses_nothing_postgres() {
    if let Some(db) = TestDb::postgres("submission_crash_after_250_loses_nothing").await {
        crash_after_250_loses_nothing(db).await;
    }
}

// ---------------------------------------------------------------------------------------
// 8. Classification, the hold policy, the audit.
// ---------------------------------------------------------------------------------------

const STEUER_ID: &str = "86095742719";

/// The `submission.accepted` entries of the audit.
fn accepted_entries(s: &Submission) -> Vec<serde_json::Value> {
    s.audit()
        .into_iter()
        .filter(|e| e["action"] == "submission.accepted")
        .collect()
}

/// The first value in `details` under a key containing `part` (the exact names are the
/// implementation's).
fn detail<'a>(entry: &'a serde_json::Value, part: &str) -> Option<&'a serde_json::Value> {
    entry["details"]
        .as_object()?
        .iter()
        .find(|(k, _)| k.to_ascii_lowercase().contains(part))
        .map(|(_, v)| v)
}

/// Asserts that an audit entry holds none of `secrets` (subject, body text, addresses).
#[track_caller]
fn assert_no_content(entry: &serde_json::Value, secrets: &[&str]) {
    let text = entry.to_string().to_ascii_lowercase();
    for secret in secrets {
        assert!(
            !text.contains(&secret.to_ascii_lowercase()),
            "the audit entry holds {secret:?}: {entry:#}"
        );
    }
}

/// `sensitive = "hold"`: a message with a tax id is accepted but held (not relayed; `held`
/// in the queue) until an admin releases it (audited); a clean one goes at once. Each
/// accepted message is audited as `submission.accepted` by anna with the device, the number
/// of recipients, whether sensitive and the categories — and no content.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hold_keeps_sensitive_mail_until_an_admin_releases_it() {
    let sink = relay().await;
    let s = with_relay(&sink, "sensitive = \"hold\"\n").await;
    let mut c = s.authed().await;
    let secret_subject = "Lohnsteuer Rueckfrage Kaempfer";
    let secret = format!(
        "From: Anna <{ANNA}>\r\nTo: {BUERGER}, {PRESSE}\r\nSubject: {secret_subject}\r\nDate: Tue, 1 Dec 2026 09:00:00 +0100\r\nMessage-ID: <held@stadt.test>\r\n\r\nIhre Steuer-ID lautet {STEUER_ID}. Bitte bestaetigen.\r\n"
    );
    c.send_mail(ANNA, &[BUERGER, PRESSE], secret.as_bytes())
        .await
        .expect(250, "2.0.0");
    c.send_mail(
        ANNA,
        &[LANDKREIS],
        &message(
            "clean",
            ANNA,
            &[LANDKREIS],
            "Die Sitzung beginnt um 18 Uhr.",
        ),
    )
    .await
    .expect(250, "2.0.0");
    relayed(&sink, "clean").await;
    // Past a retry or two: still held.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(at_relay(&sink, "held").is_empty(), "sensitive mail relayed");
    let queue = s.queue();
    let held: Vec<_> = queue.iter().filter(|j| j["state"] == "held").collect();
    assert_eq!(held.len(), 1, "{queue:#?}");
    assert_eq!(queue.len(), 2, "{queue:#?}");
    let id = held[0]["id"].as_i64().expect("id");
    // Mail programs do not show the SMTP reply: anna finds a note in her mailbox, which
    // names the message but repeats nothing of it.
    let notes: Vec<String> = mailbox_texts(&s)
        .await
        .into_iter()
        .filter(|t| t.contains("<held@stadt.test>"))
        .collect();
    assert_eq!(
        notes.len(),
        1,
        "no note that the message is held: {notes:#?}"
    );
    assert!(notes[0].contains("noch nicht versandt"), "{}", notes[0]);
    assert!(
        !notes[0].contains(STEUER_ID) && !notes[0].contains(secret_subject),
        "{}",
        notes[0]
    );

    // Anna cannot release her own held message, not even with her account password.
    let id_text = id.to_string();
    let by_anna = ratspost_tests::daemon::ratspost_as(
        &s.config,
        &["queue", "release", &id_text, "--by", ANNA_LOGIN],
        ANNA_ACCOUNT_PASSWORD,
        None,
    );
    assert!(
        !by_anna.status.success(),
        "staff released held mail: {}",
        String::from_utf8_lossy(&by_anna.stdout)
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(
        at_relay(&sink, "held").is_empty(),
        "relayed after a refused release"
    );

    let out = s.as_admin(&["queue", "release", &id_text]);
    let got = relayed(&sink, "held").await;
    assert_relayed(&got, ANNA, &[BUERGER, PRESSE]);
    let _ = received_line(&got.data, secret.as_bytes());
    s.wait_queue(|q| q.iter().all(|j| j["state"] == "delivered"))
        .await;
    let audit = s.audit();
    assert!(
        audit.iter().any(|e| e["action"] == "submission.released"),
        "release not audited ({out}): {audit:#?}"
    );

    let accepted = accepted_entries(&s);
    assert_eq!(accepted.len(), 2, "{accepted:#?}");
    for e in &accepted {
        assert_eq!(e["actor"], ANNA_LOGIN, "{e:#}");
        assert_no_content(
            e,
            &[
                secret_subject,
                "Antwort clean",
                STEUER_ID,
                "Steuer-ID lautet",
                "Sitzung beginnt",
                BUERGER,
                PRESSE,
                LANDKREIS,
            ],
        );
    }
    let sensitive: Vec<_> = accepted
        .iter()
        .filter(|e| detail(e, "sensitive") == Some(&serde_json::Value::Bool(true)))
        .collect();
    assert_eq!(sensitive.len(), 1, "{accepted:#?}");
    assert_eq!(
        detail(sensitive[0], "recipients").and_then(serde_json::Value::as_i64),
        Some(2),
        "{:#}",
        sensitive[0]
    );
    assert!(
        detail(sensitive[0], "categor").is_some_and(|c| c.to_string().contains("tax_id")),
        "{:#}",
        sensitive[0]
    );
    let clean: Vec<_> = accepted
        .iter()
        .filter(|e| detail(e, "sensitive") == Some(&serde_json::Value::Bool(false)))
        .collect();
    assert_eq!(clean.len(), 1, "{accepted:#?}");
    assert_eq!(
        detail(clean[0], "recipients").and_then(serde_json::Value::as_i64),
        Some(1)
    );
    // The device, as the data-protection officer reads it: its label (an app password's
    // row id says nothing once the device is revoked and gone).
    for e in &accepted {
        assert!(e.to_string().contains(DEVICE), "no device: {e:#}");
    }
    s.stop();
}

/// The default policy `relay`: sensitive submitted mail (a VS-NfD marking) is relayed (the
/// city's server decides), and audited as sensitive.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn by_default_sensitive_mail_is_relayed_and_audited_as_sensitive() {
    let sink = relay().await;
    let s = with_relay(&sink, "").await;
    let mut c = s.authed().await;
    let body = message(
        "vsnfd",
        ANNA,
        &[LANDKREIS],
        "VS - NUR FÜR DEN DIENSTGEBRAUCH\r\n\r\nEinsatzplanung Silvester.",
    );
    c.send_mail(ANNA, &[LANDKREIS], &body)
        .await
        .expect(250, "2.0.0");
    let got = relayed(&sink, "vsnfd").await;
    assert_relayed(&got, ANNA, &[LANDKREIS]);
    let _ = received_line(&got.data, &body);
    let accepted = accepted_entries(&s);
    assert_eq!(accepted.len(), 1, "{accepted:#?}");
    assert_eq!(
        detail(&accepted[0], "sensitive"),
        Some(&serde_json::Value::Bool(true)),
        "{:#}",
        accepted[0]
    );
    assert!(
        detail(&accepted[0], "categor").is_some_and(|c| c.to_string().contains("vs_nfd")),
        "{:#}",
        accepted[0]
    );
    assert_no_content(
        &accepted[0],
        &["Einsatzplanung", "Antwort vsnfd", LANDKREIS],
    );
    s.stop();
}

/// The relay refuses one recipient for good and defers another: the third gets the message
/// at once, the sender finds a non-delivery report naming the refused one in her mailbox
/// (and nothing of the message's content), and the deferred recipient gets it on a retry —
/// alone, so nobody receives it twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_recipients_are_reported_and_deferred_ones_retried() {
    let sink = relay().await;
    sink_refuses(
        &sink,
        &[
            (PRESSE, "550 5.1.1 no such user"),
            (LANDKREIS, "451 4.2.1 mailbox busy"),
        ],
    );
    let s = with_relay(&sink, "").await;
    let mut c = s.authed().await;
    c.send_mail(
        ANNA,
        &[BUERGER, PRESSE, LANDKREIS],
        &message("partial", ANNA, &[BUERGER], "Geheimer Inhalt der Antwort"),
    )
    .await
    .expect(250, "2.0.0");
    let first = sink.wait_for(1).await;
    assert_eq!(
        first[0].rcpt,
        [BUERGER],
        "only the accepted recipient in the first transaction"
    );

    // The deferred recipient stays in the job; the refused one is gone from it.
    let queue = s
        .wait_queue(|q| q[0]["attempts"].as_i64() >= Some(1) && q[0]["state"] == "queued")
        .await;
    assert_eq!(queue[0]["rcpt_to"], LANDKREIS, "{queue:#?}");

    let reports: Vec<String> = mailbox_texts(&s)
        .await
        .into_iter()
        .filter(|t| t.contains(PRESSE))
        .collect();
    assert_eq!(
        reports.len(),
        1,
        "one report for the refused recipient: {reports:#?}"
    );
    assert!(
        reports[0].contains("550 5.1.1 no such user"),
        "{}",
        reports[0]
    );
    assert!(
        !reports[0].contains(LANDKREIS),
        "the deferred recipient is not reported: {}",
        reports[0]
    );
    assert!(
        !reports[0].contains("Geheimer Inhalt"),
        "the report repeats content: {}",
        reports[0]
    );
    assert!(
        reports[0].contains("<partial@stadt.test>"),
        "the report does not say which message: {}",
        reports[0]
    );

    sink_refuses(&sink, &[(PRESSE, "550 5.1.1 no such user")]);
    let second = sink.wait_for(2).await;
    assert_eq!(
        second[1].rcpt,
        [LANDKREIS],
        "the retry goes to the deferred recipient alone"
    );
    let queue = s.wait_queue(|q| q[0]["state"] == "delivered").await;
    assert_eq!(queue.len(), 1);
    s.stop();
}

/// Makes `sink` refuse these (address, reply) pairs from now on.
fn sink_refuses(sink: &Sink, refusals: &[(&str, &str)]) {
    *sink.refusals.lock().expect("refusals") = refusals
        .iter()
        .map(|(a, r)| ((*a).to_owned(), (*r).to_owned()))
        .collect();
}

/// The trial's attacks on the session: connections that never log in are cut at the login
/// deadline (trickling bytes does not extend it); a long recipient list is cut at the limit
/// without ending the session; `*` cancels AUTH LOGIN at its first prompt; an authorisation
/// identity that names the same user (her address) is allowed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anonymous_connections_are_cut_and_long_lists_and_aliases_work() {
    let sink = relay().await;
    let s = with_relay(&sink, "login_timeout_secs = 2").await;

    // Idle, then trickling a byte every 300 ms without a line end: both cut at 2 s.
    let (mut idle, _) = s.implicit().await;
    let started = Instant::now();
    idle.reply().await.expect(421, "4.4.2");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    // Trickling a byte every 300 ms for 1.8 s: a deadline per read would now wait another
    // 2 s, the absolute one ends the session at 2 s from connecting.
    let (mut slow, _) = s.implicit().await;
    let started = Instant::now();
    for _ in 0..6 {
        slow.send(b"N").await;
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let r = slow.reply().await;
    assert_eq!(r.code, 421, "trickling kept the session: {r:?}");
    assert!(
        started.elapsed() < Duration::from_millis(3500),
        "the deadline moved with the input: {:?}",
        started.elapsed()
    );

    // `*` at the user-name prompt of LOGIN.
    let (mut c, _) = s.implicit().await;
    c.cmd("AUTH LOGIN").await.expect(334, "");
    c.cmd("*").await.expect(501, "5.7.0");

    // Acting as herself under her other address is no impersonation.
    let (mut c, _) = s.implicit().await;
    let plain = relay::encoding::base64(
        format!("{ANNA_ALIAS}\0{ANNA_LOGIN}\0{}", s.app_password).as_bytes(),
    );
    c.cmd(&format!("AUTH PLAIN {plain}"))
        .await
        .expect(235, "2.7.0");

    // 75 recipients: 50 taken, 25 told to come back (452), none of it an error that ends
    // the session; the message goes to the 50.
    c.cmd(&format!("MAIL FROM:<{ANNA}>"))
        .await
        .expect(250, "2.1.0");
    let mut taken = Vec::new();
    for n in 0..75 {
        let rcpt = format!("r{n}@example.org");
        let r = c.cmd(&format!("RCPT TO:<{rcpt}>")).await;
        if n < 50 {
            r.expect(250, "2.1.5");
            taken.push(rcpt);
        } else {
            r.expect(452, "4.5.3");
        }
    }
    c.cmd("DATA").await.expect(354, "");
    c.send(&ratspost_tests::client::dot_stuff(&message(
        "many",
        ANNA,
        &[BUERGER],
        "x",
    )))
    .await;
    c.send(b".\r\n").await;
    c.reply().await.expect(250, "2.0.0");
    let got = relayed(&sink, "many").await;
    assert_eq!(got.rcpt, taken);
    s.stop();
}

/// The texts (transfer encoding undone) of the messages in anna's INBOX.
async fn mailbox_texts(s: &Submission) -> Vec<String> {
    let store = s.store().await;
    let anna = store.user_by_login(ANNA_LOGIN).await.expect("anna");
    let inbox = store.mailbox(anna.id, "INBOX").await.expect("inbox");
    let mut texts = Vec::new();
    for e in store.mailbox_entries(inbox.id).await.expect("entries") {
        let raw = store.entry_content(inbox.id, e.uid).await.expect("content");
        texts.push(
            mail_parser::MessageParser::default()
                .parse(&raw)
                .and_then(|m| m.body_text(0).map(|t| t.into_owned()))
                .unwrap_or_default(),
        );
    }
    store.close().await;
    texts
}
