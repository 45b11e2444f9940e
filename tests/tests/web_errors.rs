//! Error pages of the web UI over real HTTPS (issue 9): whatever goes wrong — an unknown
//! path, a wrong method, a broken form or path, a foreign or revoked link, the database
//! gone — the answer is a German HTML page in the site layout with a link back to the start
//! page, never axum's English plain text.

use ratspost_tests::http::{Http, Response};
use store::testing::TestDb;

use crate::viewer::{Setup, login, setup};

/// Asserts that `r` is the error page with `status` and `title`.
fn assert_page(r: &Response, status: u16, title: &str) {
    let html = r.text();
    assert_eq!(r.status, status, "{html}");
    assert!(
        r.header("content-type")
            .is_some_and(|v| v.starts_with("text/html")),
        "{status}: {:?}",
        r.header("content-type")
    );
    assert!(
        html.contains("<html lang=\"de\">"),
        "not the site layout: {html}"
    );
    assert!(
        html.contains(&format!("<h1>{title}</h1>")),
        "{status}: {html}"
    );
    assert!(
        html.contains("<a href=\"/\">Zur Startseite</a>"),
        "{status}: no way back: {html}"
    );
    for english in [
        "Failed to",
        "Method Not Allowed",
        "Not Found",
        "Expected request",
    ] {
        assert!(
            !html.contains(english),
            "{status}: axum's text leaked: {html}"
        );
    }
    // The error pages are pages like any other: the same protective headers.
    assert_eq!(r.header("cache-control"), Some("no-store"));
    assert_eq!(r.header("referrer-policy"), Some("same-origin"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_error_is_a_german_page_with_a_way_back() {
    let Setup { s, token, .. } = setup(TestDb::sqlite()).await;
    let path = format!("/m/{token}");
    let mut http = Http::new(s.web, &s.cert());

    assert_page(
        &http.get("/gibt-es-nicht").await,
        404,
        "Seite nicht gefunden",
    );
    assert_page(&http.get("/m/").await, 404, "Seite nicht gefunden");
    let r = http.get("/logout").await;
    assert_page(&r, 405, "Aufruf nicht möglich");
    assert_eq!(r.header("allow"), Some("POST"));
    let r = http
        .send("PUT", "/login", Some(("text/plain", "login=anna")))
        .await;
    assert_page(&r, 405, "Aufruf nicht möglich");
    // Forms that are no forms: the wrong type, broken encoding.
    let r = http
        .send("POST", "/login", Some(("text/plain", "login=anna")))
        .await;
    assert_page(&r, 415, "Ungültige Anfrage");
    let r = http
        .send(
            "POST",
            "/login",
            Some(("application/x-www-form-urlencoded", "login=%ZZ&login=1&&=")),
        )
        .await;
    assert!(r.status >= 400 && r.status < 500, "{r:?}");
    assert!(r.text().contains("<a href=\"/\">"), "{}", r.text());

    // Logged in: a path the route cannot parse, a link of another mailbox, a revoked one.
    assert_eq!(
        login(&mut http, &path, "bert", "bert-pass-1").await.status,
        303
    );
    assert_page(
        &http.get(&format!("{path}/attachments/erstes")).await,
        400,
        "Ungültige Anfrage",
    );
    assert_page(&http.get(&path).await, 403, "Link nicht verfügbar");
    let message_id = s.classified().await[0].id;
    s.store
        .revoke_notice_tokens(message_id, "admin", store::now_millis())
        .await
        .expect("revoke");
    assert_page(&http.get(&path).await, 410, "Link nicht verfügbar");
    assert_page(
        &http.get(&format!("/m/{}", "0".repeat(64))).await,
        404,
        "Link unbekannt",
    );

    // The database gone: a page that says so, nothing else.
    s.store.close().await;
    assert_page(&http.get("/").await, 503, "Vorübergehend nicht verfügbar");
    s.stop().await;
}
