//! The notice-link viewer over real HTTPS: login, the original shown to its mailbox owner
//! only, every view and refusal in the audit chain, CSRF and origin checks, logout, and a
//! real client (curl) going through the same flow.

use ratspost_tests::client::Client;
use ratspost_tests::http::{Http, Response};
use ratspost_tests::server::Server;
use store::testing::TestDb;
use store::{AuditCheck, Role};

pub(crate) const ANNA: &str = "anna@stadt.test";
const LINK_BASE: &str = "https://ratspost.stadt.test/m/";
pub(crate) const STEUER_ID: &str = "86095742719";

/// A sensitive message with markup in its text and a PDF attachment.
fn secret() -> Vec<u8> {
    format!(
        "From: Personalamt <personal@verwaltung.test>\r\nTo: {ANNA}\r\nSubject: Ihre Unterlagen\r\n\
Message-ID: <secret@verwaltung.test>\r\nDate: Mon, 2 Nov 2026 10:00:00 +0100\r\nMIME-Version: 1.0\r\n\
Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n\
Ihre Steuer-ID {STEUER_ID} ist hinterlegt. <script>alert(1)</script>\r\n--b\r\n\
Content-Type: application/pdf\r\nContent-Disposition: attachment; filename=\"bescheid.pdf\"\r\n\
Content-Transfer-Encoding: base64\r\n\r\nJVBERi0xLjQK\r\n--b--\r\n"
    )
    .into_bytes()
}

/// A server with anna (password `anna-pass-1`) and bert (`bert-pass-1`), and a sensitive
/// message to anna whose notice holds `token`.
pub(crate) struct Setup {
    pub(crate) s: Server,
    pub(crate) token: String,
    pub(crate) raw: Vec<u8>,
}

pub(crate) async fn setup(db: TestDb) -> Setup {
    let s = Server::start_full(
        db,
        "",
        &format!(
            "[notices]\nlink_base = \"{}\"\n[web]\nlisten = \"127.0.0.1:0\"\nlogin_failure_delay_ms = 10\n",
            LINK_BASE.trim_end_matches('/')
        ),
    )
    .await;
    let anna = s.add_user("anna", Role::Staff, &[ANNA]).await;
    s.add_user("bert", Role::Staff, &["bert@stadt.test"]).await;
    for (login, password) in [("anna", "anna-pass-1"), ("bert", "bert-pass-1")] {
        s.store
            .set_password_hash(login, &store::password::hash(password).expect("hash"))
            .await
            .expect("password");
    }
    let raw = secret();
    let mut c = Client::greeted(s.smtp).await;
    c.ehlo().await;
    c.send_mail("personal@verwaltung.test", &[ANNA], &raw)
        .await
        .expect(250, "2.0.0");
    let list = s.classified().await;
    let notice = s
        .store
        .mailbox_copy(list[0].id, anna)
        .await
        .expect("copy")
        .expect("a copy in anna's mailbox");
    let text = mail_parser::MessageParser::default()
        .parse(notice.as_slice())
        .and_then(|m| m.body_text(0).map(|t| t.into_owned()))
        .expect("notice text");
    assert!(
        !text.contains(STEUER_ID),
        "the mailbox copy is not a notice"
    );
    let token = text
        .lines()
        .find_map(|l| l.trim().strip_prefix(LINK_BASE))
        .expect("the link in the notice")
        .to_owned();
    let stored = s.store.message_raw(list[0].id).await.expect("raw");
    Setup {
        s,
        token,
        raw: stored,
    }
}

/// Logs in as `login`, starting from `path`; returns the response to the login POST.
pub(crate) async fn login(http: &mut Http, path: &str, login: &str, password: &str) -> Response {
    let r = http.get(path).await;
    assert_eq!(r.status, 303, "not sent to the login page: {r:?}");
    let to = r.header("location").expect("location").to_owned();
    assert!(to.starts_with("/login?next="), "{to}");
    let form = http.get(&to).await;
    assert_eq!(form.status, 200);
    let csrf = form.hidden("csrf").expect("csrf field");
    let next = form.hidden("next").expect("next field");
    assert_eq!(next, path, "the login page forgot where to return");
    http.post(
        "/login",
        &[
            ("login", login),
            ("password", password),
            ("csrf", &csrf),
            ("next", &next),
        ],
    )
    .await
}

pub(crate) async fn actions(s: &Server) -> Vec<(String, String, serde_json::Value)> {
    s.store
        .list_audit(0, 1000)
        .await
        .expect("audit")
        .into_iter()
        .filter(|a| a.action.starts_with("notice.view"))
        .map(|a| (a.action, a.actor, a.details))
        .collect()
}

async fn owner_opens_others_are_refused_and_everything_is_audited(db: TestDb) {
    let Setup { s, token, raw } = setup(db).await;
    let path = format!("/m/{token}");
    let mut anna = Http::new(s.web, &s.cert());

    // Wrong password: no session, a clear message.
    let r = login(&mut anna, &path, "anna", "falsch").await;
    assert_eq!(r.status, 401);
    assert!(r.text().contains("Benutzername oder Passwort ist falsch"));
    assert!(!anna.cookies.contains_key("__Host-ratspost"));

    let r = login(&mut anna, &path, "anna", "anna-pass-1").await;
    assert_eq!(r.status, 303, "{r:?}");
    assert_eq!(r.header("location"), Some(path.as_str()));
    let cookie = r
        .headers
        .iter()
        .find(|(n, v)| n == "set-cookie" && v.starts_with("__Host-ratspost="))
        .map(|(_, v)| v.clone())
        .expect("session cookie");
    for attribute in ["Secure", "HttpOnly", "SameSite=Lax", "Path=/"] {
        assert!(cookie.contains(attribute), "{attribute} missing: {cookie}");
    }

    // The owner sees the original, escaped, with its attachment.
    let page = anna.get(&path).await;
    assert_eq!(page.status, 200, "{}", page.text());
    let html = page.text();
    assert!(html.contains(STEUER_ID), "the original is not shown");
    assert!(html.contains("Ihre Unterlagen") && html.contains("bescheid.pdf"));
    assert!(
        !html.contains("<script>alert(1)")
            && (html.contains("&lt;script&gt;") || html.contains("&#60;script&#62;")),
        "message text must be escaped"
    );
    for (name, value) in [
        ("cache-control", "no-store"),
        // Not no-referrer: under it Chromium posts our forms with `Origin: null` (issue 9).
        ("referrer-policy", "same-origin"),
        ("x-frame-options", "DENY"),
    ] {
        assert_eq!(page.header(name), Some(value), "{name}");
    }
    assert!(
        page.header("content-security-policy")
            .is_some_and(|v| v.contains("default-src 'none'"))
    );

    let original = anna.get(&format!("{path}/original")).await;
    assert_eq!(original.status, 200);
    assert_eq!(original.body, raw, "the download is not the original");
    let pdf = anna.get(&format!("{path}/attachments/0")).await;
    assert_eq!(pdf.status, 200);
    assert_eq!(pdf.body, b"%PDF-1.4\n");
    assert!(
        pdf.header("content-disposition")
            .is_some_and(|v| v.contains("bescheid.pdf"))
    );

    // Another user, logged in, is refused — and that is audited too.
    let mut bert = Http::new(s.web, &s.cert());
    assert_eq!(
        login(&mut bert, &path, "bert", "bert-pass-1").await.status,
        303
    );
    let r = bert.get(&path).await;
    assert_eq!(r.status, 403);
    assert!(!r.text().contains(STEUER_ID));

    // Unknown and malformed tokens: 404, nothing looked up or shown.
    let unknown = "0".repeat(64);
    assert_eq!(anna.get(&format!("/m/{unknown}")).await.status, 404);
    assert_eq!(anna.get("/m/..%2f..%2fetc").await.status, 404);

    let seen = actions(&s).await;
    let summary: Vec<(&str, &str, &str)> = seen
        .iter()
        .map(|(a, who, d)| (a.as_str(), who.as_str(), d["what"].as_str().unwrap_or("")))
        .collect();
    assert_eq!(
        summary,
        [
            ("notice.viewed", "anna", "message"),
            ("notice.viewed", "anna", "original"),
            ("notice.viewed", "anna", "attachment 0"),
            ("notice.view_refused", "bert", "message"),
        ]
    );
    assert_eq!(seen[0].2["ip"], "127.0.0.1");

    // Revoked links stop working at once.
    let message_id = s.classified().await[0].id;
    s.store
        .revoke_notice_tokens(message_id, "admin", store::now_millis())
        .await
        .expect("revoke");
    let r = anna.get(&path).await;
    assert_eq!(r.status, 410);
    assert!(r.text().contains("widerrufen"));

    // Logout ends the session on the server, not only in the browser.
    let csrf = anna.get("/").await.hidden("csrf").expect("logout form");
    let saved = anna.cookies.clone();
    let r = anna.post("/logout", &[("csrf", &csrf)]).await;
    assert_eq!(r.status, 303);
    anna.cookies = saved;
    assert_eq!(
        anna.get("/").await.status,
        303,
        "the session survived logout"
    );

    assert!(matches!(
        s.store.verify_audit().await.expect("verify"),
        AuditCheck::Intact { .. }
    ));
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn viewer_sqlite() {
    owner_opens_others_are_refused_and_everything_is_audited(TestDb::sqlite()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn viewer_postgres() {
    if let Some(db) = TestDb::postgres("viewer_postgres").await {
        owner_opens_others_are_refused_and_everything_is_audited(db).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_forms_are_refused() {
    let Setup { s, token, .. } = setup(TestDb::sqlite()).await;
    let path = format!("/m/{token}");
    // A login form posted from another site.
    let mut http = Http::new(s.web, &s.cert());
    http.origin = Some("https://evil.example".into());
    assert_eq!(
        login(&mut http, &path, "anna", "anna-pass-1").await.status,
        400
    );
    assert!(!http.cookies.contains_key("__Host-ratspost"));
    // A login without the form's token (login CSRF).
    let mut http = Http::new(s.web, &s.cert());
    let r = http
        .post(
            "/login",
            &[
                ("login", "anna"),
                ("password", "anna-pass-1"),
                ("csrf", "x"),
                ("next", "/"),
            ],
        )
        .await;
    assert_eq!(r.status, 400);
    // After a real login, a logout without the session's token does nothing.
    assert_eq!(
        login(&mut http, &path, "anna", "anna-pass-1").await.status,
        303
    );
    assert_eq!(http.post("/logout", &[("csrf", "wrong")]).await.status, 400);
    assert_eq!(
        http.get(&path).await.status,
        200,
        "forged logout took effect"
    );
    // The login page never sends the browser elsewhere — also not with what a browser cleans
    // up before it follows a Location (a tab or line break inside `//`, a backslash).
    let form = http.get("/login?next=https://evil.example/").await;
    assert_eq!(form.hidden("next").as_deref(), Some("/"));
    for evil in [
        "/%09/evil.example",
        "/%0A/evil.example",
        "/%5Cevil.example",
        "%5C%5Cevil.example",
    ] {
        let form = http.get(&format!("/login?next={evil}")).await;
        assert_eq!(form.hidden("next").as_deref(), Some("/"), "{evil}");
    }
    assert!(actions(&s).await.len() == 1, "one view, by anna");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn curl_logs_in_and_opens_the_link() {
    if !ratspost_tests::have("curl") {
        return ratspost_tests::skip("curl");
    }
    let Setup { s, token, .. } = setup(TestDb::sqlite()).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let jar = dir.path().join("cookies");
    let base = format!("https://localhost:{}", s.web.port());
    let run = |args: &[&str]| {
        let out = std::process::Command::new("curl")
            .args(["--silent", "--show-error", "--cacert"])
            .arg(s.cert())
            .args([
                "--resolve",
                &format!("localhost:{}:127.0.0.1", s.web.port()),
            ])
            .arg("--cookie-jar")
            .arg(&jar)
            .arg("--cookie")
            .arg(&jar)
            .args(args)
            .output()
            .expect("curl");
        assert!(
            out.status.success(),
            "curl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let form = run(&[&format!("{base}/login?next=/m/{token}")]);
    let csrf = form
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .expect("csrf")
        .to_owned();
    // Log in and follow the redirect back to the link, as a browser does.
    let page = run(&[
        "--location",
        "--data-urlencode",
        "login=anna",
        "--data-urlencode",
        "password=anna-pass-1",
        "--data-urlencode",
        &format!("csrf={csrf}"),
        "--data-urlencode",
        &format!("next=/m/{token}"),
        &format!("{base}/login"),
    ]);
    assert!(
        page.contains(STEUER_ID),
        "curl did not reach the message:\n{page}"
    );
    assert_eq!(actions(&s).await.len(), 1);
    s.stop().await;
}

/// Issue 9: the e-mail address works as the user name, in any case; a missing address is
/// refused in the same words and with the same status as a wrong password.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_address_logs_in_like_the_login() {
    let Setup { s, token, .. } = setup(TestDb::sqlite()).await;
    let path = format!("/m/{token}");
    let mut http = Http::new(s.web, &s.cert());
    let wrong = login(&mut http, &path, "anna@stadt.test", "falsch").await;
    let missing = login(&mut http, &path, "niemand@stadt.test", "anna-pass-1").await;
    for r in [&wrong, &missing] {
        assert_eq!(r.status, 401);
        assert!(r.text().contains("Benutzername oder Passwort ist falsch"));
    }
    assert!(!http.cookies.contains_key("__Host-ratspost"));
    let r = login(&mut http, &path, " Anna@Stadt.TEST ", "anna-pass-1").await;
    assert_eq!(r.status, 303, "{}", r.text());
    let page = http.get(&path).await;
    assert_eq!(page.status, 200);
    assert!(page.text().contains(STEUER_ID));
    // The session is anna's, whichever name she used: the view is audited under her login.
    let seen = actions(&s).await;
    assert_eq!(seen.len(), 1);
    assert_eq!(
        (seen[0].0.as_str(), seen[0].1.as_str()),
        ("notice.viewed", "anna")
    );
    s.stop().await;
}
