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
    setup_with(db, "").await
}

/// [`setup`] with `web` added to the `[web]` section of the configuration.
pub(crate) async fn setup_with(db: TestDb, web: &str) -> Setup {
    let s = Server::start_full(
        db,
        "",
        &format!(
            "[notices]\nlink_base = \"{}\"\n[web]\nlisten = \"127.0.0.1:0\"\nlogin_failure_delay_ms = 10\n{web}\n",
            LINK_BASE.trim_end_matches('/')
        ),
    )
    .await;
    s.add_user("anna", Role::Staff, &[ANNA]).await;
    s.add_user("bert", Role::Staff, &["bert@stadt.test"]).await;
    for (login, password) in [("anna", "anna-pass-1"), ("bert", "bert-pass-1")] {
        s.store
            .set_password_hash(login, &store::password::hash(password).expect("hash"))
            .await
            .expect("password");
    }
    let raw = secret();
    let token = held(&s, &raw, "secret@verwaltung.test").await;
    let id = message_id(&s, "secret@verwaltung.test").await;
    let stored = s.store.message_raw(id).await.expect("raw");
    Setup {
        s,
        token,
        raw: stored,
    }
}

/// The database id of the message with `Message-ID` `mid`, once classified.
pub(crate) async fn message_id(s: &Server, mid: &str) -> i64 {
    s.classified()
        .await
        .iter()
        .find(|m| m.message_id.as_deref() == Some(mid))
        .unwrap_or_else(|| panic!("no message {mid}"))
        .id
}

/// Sends `raw` (with `Message-ID` `mid`) to anna and returns the token of the notice in her
/// mailbox (the message must be held back).
pub(crate) async fn held(s: &Server, raw: &[u8], mid: &str) -> String {
    let mut c = Client::greeted(s.smtp).await;
    c.ehlo().await;
    c.send_mail("personal@verwaltung.test", &[ANNA], raw)
        .await
        .expect(250, "2.0.0");
    let id = message_id(s, mid).await;
    let anna = s.store.user_by_login("anna").await.expect("anna").id;
    let notice = s
        .store
        .mailbox_copy(id, anna)
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
    text.lines()
        .find_map(|l| l.trim().strip_prefix(LINK_BASE))
        .expect("the link in the notice")
        .to_owned()
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

/// `Message-ID` of [`marked_html`].
pub(crate) const MARKED: &str = "pruefbericht@verwaltung.test";
/// `Message-ID` of [`long_names`].
pub(crate) const LONG: &str = "lang@verwaltung.test";

/// An HTML mail marked VS-NfD: a stub text part beside the HTML, a style sheet and a script,
/// three remote images and one embedded, a link, a table, an `<h1>`; the embedded image and
/// a PDF as attachments (0 and 1).
pub(crate) fn marked_html() -> Vec<u8> {
    format!(
        "From: Rechnungspruefung <rpa@verwaltung.test>\r\nTo: {ANNA}\r\nSubject: Pruefbericht Kasse\r\n\
Message-ID: <{MARKED}>\r\nDate: Mon, 2 Nov 2026 10:00:00 +0100\r\nMIME-Version: 1.0\r\n\
Content-Type: multipart/mixed; boundary=m\r\n\r\n\
--m\r\nContent-Type: multipart/alternative; boundary=a\r\n\r\n\
--a\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nBitte HTML-Ansicht verwenden.\r\n\
--a\r\nContent-Type: text/html; charset=utf-8\r\n\r\n\
<html><head><title>Intern</title><style>body {{ display: none }}</style></head><body>\r\n\
<p>VS &ndash; NUR F&Uuml;R DEN DIENSTGEBRAUCH</p>\r\n<h1>Pr&uuml;fbericht</h1>\r\n\
<p onclick=\"alert(2)\">Anbei der Pr&uuml;fbericht zur Kasse.<script>alert(1)</script></p>\r\n\
<table width=\"900\"><tr><td>Betrag</td><td>312,00 &euro;</td></tr></table>\r\n\
<p><img src=\"https://track.example/pixel.gif\" alt=\"Logo\"><img src=\"http://bilder.example/a.png\">\
<img src=\"//cdn.example/b.png\" alt=\"Banner\"><img src=\"cid:sig@verwaltung.test\" alt=\"Unterschrift\"></p>\r\n\
<p><a href=\"https://portal.example/bericht?id=7\">Bericht im Portal</a></p>\r\n</body></html>\r\n\
--a--\r\n\
--m\r\nContent-Type: image/png\r\nContent-ID: <sig@verwaltung.test>\r\nContent-Disposition: inline; filename=\"unterschrift.png\"\r\n\
Content-Transfer-Encoding: base64\r\n\r\niVBORw0KGgo=\r\n\
--m\r\nContent-Type: application/pdf\r\nContent-Disposition: attachment; filename=\"bericht.pdf\"\r\n\
Content-Transfer-Encoding: base64\r\n\r\nJVBERi0xLjQK\r\n--m--\r\n"
    )
    .into_bytes()
}

/// A held text mail whose sender, subject, URL, attachment names and MIME types are long
/// and unbroken (what must wrap at a phone's width).
pub(crate) fn long_names() -> Vec<u8> {
    let url = format!(
        "https://bauportal.landkreis-beispiel.test/{}",
        "verfahren/".repeat(15)
    );
    let name = "Antrag_auf_Erteilung_einer_Baugenehmigung_fuer_das_Grundstueck_Flurstueck_1234_5678_Anlage_7_Lageplan_endgueltig";
    format!(
        "From: Sehr langer Absendername <ein.sehr.langer.absender.name.mit.vielen.teilen@unterabteilung.verwaltung.landkreis-beispiel.test>\r\n\
To: {ANNA}\r\nSubject: Unterlagen_zum_Bauantrag_Flurstueck_1234_5678_Gemarkung_Beispielstadt_Nord\r\n\
Message-ID: <{LONG}>\r\nDate: Mon, 2 Nov 2026 10:00:00 +0100\r\nMIME-Version: 1.0\r\n\
Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n\
Die Steuer-ID des Antragstellers ist {STEUER_ID}. Unterlagen: {url}\r\n\
--b\r\nContent-Type: application/pdf\r\nContent-Disposition: attachment; filename=\"{name}.pdf\"\r\n\
Content-Transfer-Encoding: base64\r\n\r\nJVBERi0xLjQK\r\n\
--b\r\nContent-Type: application/vnd.openxmlformats-officedocument.wordprocessingml.document\r\n\
Content-Disposition: attachment; filename=\"{name}_Stellungnahme.docx\"\r\n\
Content-Transfer-Encoding: base64\r\n\r\nUEsDBA==\r\n--b--\r\n"
    )
    .into_bytes()
}

/// The `notice.view*` entries as (action, what, reason).
async fn views(s: &Server) -> Vec<(String, String, String)> {
    actions(s)
        .await
        .into_iter()
        .map(|(action, _, d)| {
            (
                action,
                d["what"].as_str().unwrap_or("").to_owned(),
                d["reason"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect()
}

/// Issue #12 §4: HTML mail as sanitised HTML (not the stub text part, not text run
/// together), images never loaded but counted, links with their target, the banner with
/// the categories; and by default no downloads of a VS-NfD message — refusals audited.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn html_mail_is_shown_sanitised_under_its_banner() {
    let Setup { s, .. } = setup(TestDb::sqlite()).await;
    let token = held(&s, &marked_html(), MARKED).await;
    let path = format!("/m/{token}");
    let mut anna = Http::new(s.web, &s.cert());
    assert_eq!(
        login(&mut anna, &path, "anna", "anna-pass-1").await.status,
        303
    );
    let page = anna.get(&path).await;
    assert_eq!(page.status, 200);
    let html = page.text();
    assert_eq!(
        page.header("content-security-policy"),
        Some(
            "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
        ),
        "the viewer loosened the CSP"
    );
    // The banner, with the marking flagged.
    assert!(
        html.contains("Warum diese Nachricht zurückgehalten wurde"),
        "{html}"
    );
    assert!(
        html.contains("<li class=\"marking\">VS – Nur für den Dienstgebrauch</li>"),
        "{html}"
    );
    // The HTML, not the stub; cells and paragraphs apart; the subject the only <h1>.
    assert!(
        !html.contains("Bitte HTML-Ansicht verwenden"),
        "the stub was shown"
    );
    assert!(html.contains("<td>Betrag</td><td>312,00 €</td>"), "{html}");
    assert!(html.contains("<h2>Prüfbericht</h2>"), "{html}");
    assert_eq!(html.matches("<h1").count(), 1);
    // The subject is on the page, never in its title (which the browser's history keeps).
    assert!(
        html.contains("<title>Nachricht – ratspost</title>"),
        "{html}"
    );
    assert!(!html[..html.find("</title>").expect("title")].contains("Pruefbericht"));
    // Images: none in the page, counted, placeholders with their alt text.
    assert!(!html.contains("<img"), "{html}");
    assert!(html.contains("3 externe Bilder blockiert."), "{html}");
    assert!(
        html.contains("1 eingebettetes Bild nicht angezeigt."),
        "{html}"
    );
    assert!(html.contains("[Externes Bild blockiert: Logo]"));
    assert!(html.contains("[Eingebettetes Bild nicht angezeigt: Unterschrift]"));
    for gone in [
        "track.example",
        "bilder.example",
        "cdn.example",
        "cid:",
        "<script",
        "alert(",
        "onclick",
        "display: none",
        "width=\"900\"",
        ">Intern<",
    ] {
        assert!(!html.contains(gone), "{gone} survived:\n{html}");
    }
    // The link, its target visible, no referrer.
    assert!(
        html.contains(
            "<a href=\"https://portal.example/bericht?id=7\" rel=\"noopener noreferrer\">Bericht im Portal [https://portal.example/bericht?id=7]</a>"
        ),
        "{html}"
    );
    // Attachments listed without links; why, said on the page.
    assert!(html.contains("bericht.pdf") && html.contains("unterschrift.png"));
    assert!(
        !html.contains("/attachments/") && !html.contains("/original\""),
        "{html}"
    );
    assert!(html.contains("als Verschlusssache eingestuft"), "{html}");
    // Asked for anyway: refused, said why, audited.
    for what in ["original", "attachments/1"] {
        let r = anna.get(&format!("{path}/{what}")).await;
        assert_eq!(r.status, 403, "{what}");
        assert!(r.text().contains("Download nicht erlaubt"), "{what}");
        assert!(!r.text().contains("Prüfbericht zur Kasse"));
    }
    // Indexes that are no attachment: answered without looking anything up.
    for (index, status) in [
        ("-1", 400),
        ("99999", 404),
        ("99999999999999999999999", 400),
    ] {
        let r = anna.get(&format!("{path}/attachments/{index}")).await;
        assert_eq!(r.status, status, "attachment {index}");
    }
    // An administrator is no owner: neither the page nor a download, both audited as such.
    s.add_user("carla", Role::Admin, &["carla@stadt.test"])
        .await;
    s.store
        .set_password_hash(
            "carla",
            &store::password::hash("carla-pass-1").expect("hash"),
        )
        .await
        .expect("password");
    let mut carla = Http::new(s.web, &s.cert());
    assert_eq!(
        login(&mut carla, &path, "carla", "carla-pass-1")
            .await
            .status,
        303
    );
    for what in ["", "/original"] {
        let r = carla.get(&format!("{path}{what}")).await;
        assert_eq!(r.status, 403, "carla: {what}");
        assert!(r.text().contains("anderen Postfach"), "carla: {what}");
        assert!(!r.text().contains("Betrag"));
    }
    let classified =
        "downloads of classified messages are switched off (web.downloads = not_classified)";
    let other = "the link belongs to another user's mailbox";
    let expected: Vec<(String, String, String)> = [
        ("notice.viewed", "message", ""),
        ("notice.view_refused", "original", classified),
        ("notice.view_refused", "attachment 1", classified),
        ("notice.view_refused", "message", other),
        ("notice.view_refused", "original", other),
    ]
    .iter()
    .map(|(a, w, r)| ((*a).to_owned(), (*w).to_owned(), (*r).to_owned()))
    .collect();
    assert_eq!(views(&s).await, expected);
    assert!(matches!(
        s.store.verify_audit().await.expect("verify"),
        AuditCheck::Intact { .. }
    ));
    s.stop().await;
}

/// `web.downloads` for each of its three settings, for a VS-NfD message and one that is
/// sensitive without a marking (a Steuer-ID): what the page offers, what the downloads
/// answer, and the audit entry of each attempt. `none` runs in English.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn downloads_follow_web_downloads() {
    for (policy, plain_allowed, marked_allowed) in [
        ("all", true, true),
        ("not_classified", true, false),
        ("none", false, false),
    ] {
        let english = policy == "none";
        let web = format!(
            "downloads = \"{policy}\"\n{}",
            if english { "language = \"en\"\n" } else { "" }
        );
        let Setup { s, token, raw } = setup_with(TestDb::sqlite(), &web).await;
        let marked = held(&s, &marked_html(), MARKED).await;
        let mut anna = Http::new(s.web, &s.cert());
        assert_eq!(
            login(&mut anna, &format!("/m/{token}"), "anna", "anna-pass-1")
                .await
                .status,
            303
        );
        let mut expected = Vec::new();
        for (token, allowed, attachment, plain) in [
            (&token, plain_allowed, 0, true),
            (&marked, marked_allowed, 1, false),
        ] {
            let path = format!("/m/{token}");
            let page = anna.get(&path).await;
            assert_eq!(page.status, 200);
            let html = page.text();
            assert_eq!(
                html.contains(&format!("{path}/original\"")),
                allowed,
                "{policy}: original link\n{html}"
            );
            assert_eq!(
                html.contains(&format!("{path}/attachments/{attachment}\"")),
                allowed,
                "{policy}: attachment link"
            );
            expected.push(("notice.viewed", "message".to_owned(), ""));
            for what in ["original".to_owned(), format!("attachments/{attachment}")] {
                let r = anna.get(&format!("{path}/{what}")).await;
                let audited = what.replace("attachments/", "attachment ");
                if allowed {
                    assert_eq!(r.status, 200, "{policy}: {what}");
                    assert!(
                        r.header("content-disposition")
                            .is_some_and(|v| v.starts_with("attachment"))
                    );
                    expected.push(("notice.viewed", audited, ""));
                } else {
                    assert_eq!(r.status, 403, "{policy}: {what}");
                    let refused = if english {
                        "Download not allowed"
                    } else {
                        "Download nicht erlaubt"
                    };
                    assert!(r.text().contains(refused), "{policy}: {what}: {}", r.text());
                    expected.push((
                        "notice.view_refused",
                        audited,
                        if policy == "none" {
                            "off"
                        } else {
                            "classified"
                        },
                    ));
                }
                if allowed && plain && what == "original" {
                    assert_eq!(r.body, raw, "the download is not the original");
                }
            }
            if english {
                assert!(html.contains("Why this message was held back"), "{html}");
                assert!(
                    html.contains("Downloads are switched off on this server."),
                    "{html}"
                );
            }
        }
        if english {
            let html = anna.get(&format!("/m/{marked}")).await.text();
            assert!(html.contains("Classified: restricted (VS-NfD)"), "{html}");
            assert!(html.contains("3 external images blocked."), "{html}");
            assert!(html.contains("[External image blocked: Logo]"), "{html}");
            expected.push(("notice.viewed", "message".to_owned(), ""));
        }
        let seen = views(&s).await;
        assert_eq!(seen.len(), expected.len(), "{policy}: {seen:?}");
        for ((action, what, reason), (want_action, want_what, want_reason)) in
            seen.iter().zip(&expected)
        {
            assert_eq!(
                (action.as_str(), what),
                (*want_action, want_what),
                "{policy}"
            );
            assert!(
                reason.contains(want_reason),
                "{policy}: {what} refused for {reason:?}"
            );
        }
        assert!(matches!(
            s.store.verify_audit().await.expect("verify"),
            AuditCheck::Intact { .. }
        ));
        s.stop().await;
    }
}
