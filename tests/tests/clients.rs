//! Real external SMTP clients against the in-process server: Python's smtplib, swaks and
//! curl. Under `CI=true` a missing client fails the test; elsewhere it is skipped visibly.

use tokio::process::Command;

use ratspost_tests::client::sha256;
use ratspost_tests::server::Server;
use ratspost_tests::{have, skip};

const ANNA: &str = "anna@stadt.test";

async fn server() -> Server {
    let s = Server::start("").await;
    s.enrol("anna", &[ANNA]).await;
    s
}

/// smtplib with STARTTLS, verifying the generated certificate against 127.0.0.1 (its IP SAN),
/// an 8-bit body (declared and undeclared) and an SMTPUTF8 sender; then a refused recipient.
#[tokio::test]
async fn python_smtplib_delivers_over_verified_starttls() {
    if !have("python3") {
        return skip("python3 (smtplib)");
    }
    let s = server().await;
    let script = r#"
import smtplib, ssl, sys
port, cafile = int(sys.argv[1]), sys.argv[2]
ctx = ssl.create_default_context(cafile=cafile)
with smtplib.SMTP("127.0.0.1", port, timeout=20) as smtp:
    smtp.ehlo("python.test")
    assert smtp.has_extn("starttls") and smtp.has_extn("pipelining") and smtp.has_extn("smtputf8")
    smtp.starttls(context=ctx)
    smtp.ehlo("python.test")
    body = "From: a@upstream.test\r\nSubject: Grüße\r\nMessage-ID: <py1@upstream.test>\r\n\r\nSehr geehrte Frau Schmidt,\r\n.punkt\r\n".encode()
    smtp.sendmail("a@upstream.test", ["anna@stadt.test"], body, mail_options=["BODY=8BITMIME"])
    smtp.sendmail("jörg@upstream.test", ["anna@stadt.test"], b"Message-ID: <py2@upstream.test>\r\n\r\nutf8\r\n", mail_options=["SMTPUTF8"])
    # Issue #9.9: German text without BODY=8BITMIME, as scripts send it: accepted, not bounced.
    smtp.sendmail("a@upstream.test", ["anna@stadt.test"], "Message-ID: <py3@upstream.test>\r\nSubject: Übergabe\r\n\r\nGrüße aus der Straßenverkehrsbehörde\r\n".encode())
    try:
        smtp.sendmail("a@upstream.test", ["x@elsewhere.test"], b"Subject: no\r\n\r\nno\r\n")
        sys.exit("relaying was allowed")
    except smtplib.SMTPRecipientsRefused as e:
        code, text = e.recipients["x@elsewhere.test"]
        assert code == 550 and text.startswith(b"5.7.1"), (code, text)
print("ok")
"#;
    let out = Command::new("python3")
        .arg("-c")
        .arg(script)
        .arg(s.smtp.port().to_string())
        .arg(s.cert())
        .output()
        .await
        .expect("run python3");
    assert!(
        out.status.success(),
        "smtplib failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let stored = s.messages().await;
    assert_eq!(stored.len(), 3);
    let first = "From: a@upstream.test\r\nSubject: Grüße\r\nMessage-ID: <py1@upstream.test>\r\n\r\nSehr geehrte Frau Schmidt,\r\n.punkt\r\n";
    assert_eq!(stored[0].1, first.as_bytes());
    assert_eq!(stored[0].0.sha256, sha256(first.as_bytes()));
    assert_eq!(stored[1].0.mail_from, "jörg@upstream.test");
    let third = "Message-ID: <py3@upstream.test>\r\nSubject: Übergabe\r\n\r\nGrüße aus der Straßenverkehrsbehörde\r\n";
    assert_eq!(stored[2].1, third.as_bytes(), "stored as received");
    s.stop().await;
}

/// swaks with STARTTLS and PIPELINING.
#[tokio::test]
async fn swaks_delivers_with_starttls_and_pipelining() {
    if !have("swaks") {
        return skip("swaks");
    }
    let s = server().await;
    let out = Command::new("swaks")
        .args(["--server", "127.0.0.1", "--port"])
        .arg(s.smtp.port().to_string())
        .args([
            "--from",
            "a@upstream.test",
            "--to",
            ANNA,
            "--tls",
            "--pipeline",
        ])
        .args([
            "--header",
            "Message-Id: <swaks1@upstream.test>",
            "--header",
            "Subject: swaks",
        ])
        .args(["--body", "Hallo aus swaks"])
        .output()
        .await
        .expect("run swaks");
    let transcript = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "swaks failed:\n{transcript}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        transcript.contains("250 2.0.0 Ok: queued as"),
        "{transcript}"
    );
    let stored = s.messages().await;
    assert_eq!(stored.len(), 1);
    assert_eq!(
        stored[0].0.message_id.as_deref(),
        Some("swaks1@upstream.test")
    );
    assert!(stored[0].0.recipients == [ANNA]);

    // swaks to a foreign domain: refused with 5.7.1, and swaks reports the failure.
    let out = Command::new("swaks")
        .args(["--server", "127.0.0.1", "--port"])
        .arg(s.smtp.port().to_string())
        .args([
            "--from",
            "a@upstream.test",
            "--to",
            "someone@elsewhere.test",
        ])
        .output()
        .await
        .expect("run swaks");
    let transcript = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success());
    assert!(
        transcript.contains("550 5.7.1 Relaying denied"),
        "{transcript}"
    );
    s.stop().await;
}

/// curl's SMTP client with STARTTLS required and the certificate verified.
#[tokio::test]
async fn curl_delivers_over_verified_starttls() {
    if !have("curl") {
        return skip("curl");
    }
    let s = server().await;
    let file = s.dir.path().join("mail.eml");
    let body = b"From: a@upstream.test\r\nSubject: curl\r\nMessage-ID: <curl1@upstream.test>\r\n\r\nper curl\r\n";
    std::fs::write(&file, body).expect("write mail");
    let out = Command::new("curl")
        .arg("--silent")
        .arg("--show-error")
        .arg(format!("smtp://localhost:{}", s.smtp.port()))
        .args(["--ssl-reqd", "--cacert"])
        .arg(s.cert())
        .args([
            "--mail-from",
            "a@upstream.test",
            "--mail-rcpt",
            ANNA,
            "--upload-file",
        ])
        .arg(&file)
        .output()
        .await
        .expect("run curl");
    assert!(
        out.status.success(),
        "curl failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stored = s.messages().await;
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].1, body);
    s.stop().await;
}
