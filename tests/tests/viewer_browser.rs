//! The viewer and the pages around it in a real browser (issue #12 §4, §6, §7): headless
//! Chromium shows HTML mail without loading anything from outside, the banner is visible,
//! and the login page, the start page and the viewer (text mail, HTML mail, long names)
//! have no serious or critical axe-core violations and fit a phone's width (390 px).
//! Screenshots at desktop and phone size go to `target/screenshots/`.

use ratspost_tests::browser::Browser;
use serde_json::json;
use store::testing::TestDb;

use crate::browser::log_in;
use crate::viewer::{LONG, MARKED, Setup, held, long_names, marked_html, setup};

/// Screenshots of the page shown as `name`, then: nothing wider than a phone, no serious
/// or critical axe-core violation.
async fn check_page(b: &Browser, name: &str) {
    b.screenshot(name).await;
    if let Some(overflow) = b.overflow().await {
        panic!("{name} is wider than a phone: {overflow}");
    }
    let serious = b.axe_serious().await;
    assert!(serious.is_empty(), "{name}: axe-core found\n{serious}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chromium_viewer_pages_pass_axe_and_fit_a_phone() {
    let Setup { s, token, .. } = setup(TestDb::sqlite()).await;
    let marked = held(&s, &marked_html(), MARKED).await;
    let long = held(&s, &long_names(), LONG).await;
    let Some(b) = Browser::start(s.web).await else {
        return s.stop().await;
    };

    b.open("/login").await;
    assert_eq!(b.text("h1").await, "Anmelden");
    check_page(&b, "login").await;
    log_in(&b, "anna", "anna-pass-1").await;
    assert_eq!(b.path().await, "/");
    check_page(&b, "start").await;

    b.open(&format!("/m/{token}")).await;
    assert_eq!(b.text("h1").await, "Ihre Unterlagen");
    assert!(b.text("pre.body").await.contains(crate::viewer::STEUER_ID));
    check_page(&b, "viewer-text").await;

    // HTML mail: the banner as it is stamped, the images counted — and nothing fetched.
    b.open(&format!("/m/{marked}")).await;
    assert_eq!(b.text("h1").await, "Pruefbericht Kasse");
    let banner = b.text(".banner").await;
    assert!(
        banner.contains("Warum diese Nachricht zurückgehalten wurde")
            && banner.contains("VS – NUR FÜR DEN DIENSTGEBRAUCH"),
        "{banner}"
    );
    let images = b.text("#images").await;
    assert!(images.contains("3 externe Bilder blockiert."), "{images}");
    let mail = b.text(".mail").await;
    assert!(
        mail.contains("Betrag") && mail.contains("312,00 €"),
        "{mail}"
    );
    assert!(
        mail.contains("Bericht im Portal [https://portal.example/bericht?id=7]"),
        "{mail}"
    );
    let loaded = b
        .client
        .execute(
            "return { images: document.images.length,
                      fetched: performance.getEntriesByType('resource').map(e => e.name) };",
            Vec::new(),
        )
        .await
        .expect("count");
    assert_eq!(loaded, json!({ "images": 0, "fetched": [] }));
    check_page(&b, "viewer-html").await;
    // Its download, asked for anyway: the refusal page, accessible too.
    b.open(&format!("/m/{marked}/original")).await;
    assert_eq!(b.text("h1").await, "Download nicht erlaubt");
    check_page(&b, "download-refused").await;

    b.open(&format!("/m/{long}")).await;
    assert!(b.text("h1").await.starts_with("Unterlagen_zum_Bauantrag"));
    assert!(
        b.text("ul.attachments")
            .await
            .contains("Lageplan_endgueltig_Stellungnahme.docx")
    );
    check_page(&b, "viewer-long-names").await;

    b.close().await;
    s.stop().await;
}

/// axe-core runs although the page's CSP forbids scripts (WebDriver's script execution is
/// not the page's), the CSP still stops a script the page would run — and axe does report
/// what is wrong, so the check above can fail.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn axe_runs_under_the_pages_csp_and_finds_faults() {
    let Setup { s, .. } = setup(TestDb::sqlite()).await;
    let Some(b) = Browser::start(s.web).await else {
        return s.stop().await;
    };
    b.open("/login").await;
    let ran = b
        .client
        .execute(
            "const s = document.createElement('script');
             s.textContent = 'window.pageScriptRan = true;';
             document.head.appendChild(s);
             return window.pageScriptRan === true;",
            Vec::new(),
        )
        .await
        .expect("insert a script");
    assert_eq!(ran, json!(false), "the CSP let an inline script run");
    assert_eq!(b.axe_serious().await, "", "the login page");
    b.client
        .execute(
            "document.querySelector('main').insertAdjacentHTML('beforeend',
               '<img src=\"x.png\"><input type=\"text\" name=\"unlabelled\">');",
            Vec::new(),
        )
        .await
        .expect("break the page");
    let found = b.axe().await;
    for rule in ["image-alt", "label"] {
        assert!(
            found.iter().any(|v| v.id == rule && v.serious()),
            "axe-core missed {rule}: {found:?}"
        );
    }
    b.close().await;
    s.stop().await;
}
