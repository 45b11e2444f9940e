//! The web UI in a real browser (issue 9): headless Chromium over WebDriver logs in through
//! the form, opens a notice link, sees the original, logs out — and the session is gone on
//! the server, not only in the browser. Our own HTTP client always sent a proper `Origin`,
//! so it never saw that Chromium posted our forms with `Origin: null`.

use ratspost_tests::browser::Browser;
use ratspost_tests::http::Http;
use store::testing::TestDb;

use crate::viewer::{STEUER_ID, Setup, actions, setup};

const WRONG: &str = "Benutzername oder Passwort ist falsch.";

/// Fills in and sends the login form shown now.
pub(crate) async fn log_in(b: &Browser, name: &str, password: &str) {
    b.fill("login", name).await;
    b.fill("password", password).await;
    b.click("form[action=\"/login\"] button[type=submit]").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chromium_logs_in_opens_the_link_and_logs_out() {
    let Setup { s, token, .. } = setup(TestDb::sqlite()).await;
    let Some(b) = Browser::start(s.web).await else {
        return s.stop().await;
    };
    let link = format!("/m/{token}");

    // The notice link, as clicked in a mail program: first the login form.
    b.open(&link).await;
    assert_eq!(b.text("h1").await, "Anmelden");
    assert!(
        b.path().await.starts_with("/login?next="),
        "{}",
        b.path().await
    );

    // A wrong password: the German error, still on the form, no session.
    log_in(&b, "anna", "falsch").await;
    assert_eq!(b.text("[role=alert]").await, WRONG);
    assert_eq!(b.cookie("__Host-ratspost").await, None);

    // The e-mail address as the user name (what mail programs suggest), the right password:
    // back at the link, the original shown.
    log_in(&b, "anna@stadt.test", "anna-pass-1").await;
    assert_eq!(b.path().await, link, "not sent back to the link");
    assert_eq!(b.text("h1").await, "Ihre Unterlagen");
    assert!(b.text("pre.body").await.contains(STEUER_ID));
    let session = b.cookie("__Host-ratspost").await.expect("session cookie");
    let seen = actions(&s).await;
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!(
        (seen[0].0.as_str(), seen[0].1.as_str()),
        ("notice.viewed", "anna")
    );

    // Logout: the login form again, the cookie gone from the browser…
    b.click("form[action=\"/logout\"] button[type=submit]")
        .await;
    assert_eq!(b.path().await, "/login");
    assert_eq!(b.cookie("__Host-ratspost").await, None);
    // …and from the server: the link asks for a login again, even with the old cookie.
    b.open(&link).await;
    assert_eq!(b.text("h1").await, "Anmelden");
    let mut replay = Http::new(s.web, &s.cert());
    replay.cookies.insert("__Host-ratspost".into(), session);
    assert_eq!(
        replay.get(&link).await.status,
        303,
        "the session survived logout"
    );
    assert_eq!(actions(&s).await.len(), 1, "a view without a session");

    // An unknown page: the German error page, and its link leads back to the start.
    b.open("/gibt-es-nicht").await;
    assert_eq!(b.text("h1").await, "Seite nicht gefunden");
    b.click("main a[href=\"/\"]").await;
    assert_eq!(
        b.text("h1").await,
        "Anmelden",
        "the start page asks for a login"
    );

    b.close().await;
    s.stop().await;
}
