//! The whole story of issue 12 §7 in Chromium, as the people in it would live it: anna asks
//! for forwarding and confirms her private address from the mail's link; an admin approves;
//! a clean message to anna reaches her private address; the data-protection officer finds
//! the entries in the audit trail and a verified chain; anna sets up a device, whose
//! password works over IMAP until she revokes it.
//!
//! Every page on the way is checked with axe-core (no serious or critical violation), for
//! overflow at a phone's width (390 px), and photographed at desktop and phone width
//! (`target/screenshots/story-*.png`).

use ratspost_tests::browser::Browser;
use ratspost_tests::client::{Client, message};
use ratspost_tests::imap::Imap;
use ratspost_tests::server::Server;
use ratspost_tests::sink::{Sink, SinkOptions};
use store::testing::TestDb;
use store::{ExemptionState, Role};

use crate::exemption_web::{browser_log_in, confirmation, mail_to, server};

const PRIVATE: &str = "anna.privat@example.net";

/// The page shown now: no serious accessibility violation (at desktop and phone width),
/// nothing wider than a phone,
/// photographed as `story-NAME`.
async fn checked(b: &Browser, name: &str) {
    let serious = b.axe_serious().await;
    assert!(serious.is_empty(), "{name}: axe-core found\n{serious}");
    let serious = b.axe_serious_at_phone().await;
    assert!(
        serious.is_empty(),
        "{name}: axe-core found at phone width\n{serious}"
    );
    if let Some(wide) = b.overflow().await {
        panic!("{name}: wider than a phone: {wide}");
    }
    b.screenshot(&format!("story-{name}")).await;
}

async fn log_out(b: &Browser) {
    b.click("form[action=\"/logout\"] button[type=submit]")
        .await;
}

/// The IMAP LOGIN reply of `login` with `password` over implicit TLS.
async fn imap_login(s: &Server, login: &str, password: &str) -> String {
    let mut c = Imap::connect_tls_from([127, 0, 0, 1].into(), s.imaps, &s.cert()).await;
    assert!(c.line().await.starts_with("* OK"));
    c.send(&format!("t LOGIN {login} \"{password}\"\r\n")).await;
    c.until("t ").await.pop().expect("reply")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn staff_admin_and_dpo_in_chromium_from_request_to_revoked_device() {
    let sink = Sink::start(SinkOptions::default()).await;
    let s = server(TestDb::sqlite(), &sink, "").await;
    s.add_user("dpo", Role::Dpo, &["datenschutz@stadt.test"])
        .await;
    s.store
        .set_password_hash("dpo", &store::password::hash("dpo-pass-1").expect("hash"))
        .await
        .expect("password");
    let Some(b) = Browser::start(s.web).await else {
        s.stop().await;
        return sink.stop();
    };

    // Anna opens the forwarding page: the login page first, then the form.
    b.open("/forwarding").await;
    checked(&b, "login").await;
    browser_log_in(&b, "anna").await;
    assert_eq!(b.path().await, "/forwarding");
    checked(&b, "forwarding").await;
    b.fill("target", PRIVATE).await;
    b.fill("days", "14").await;
    b.fill("reason", "Elternzeit ohne Dienstgerät").await;
    b.click("form[action=\"/forwarding\"] button[type=submit]")
        .await;
    assert_eq!(b.path().await, "/forwarding?done=requested");
    checked(&b, "forwarding-requested").await;

    // The confirmation mail, caught by the sink: its link leads to the code form.
    let (_, body) = mail_to(&sink, PRIVATE, "Bestätigung").await;
    let (code, path) = confirmation(&body);
    b.open(&path).await;
    assert_eq!(b.text("h1").await, "Zieladresse bestätigen");
    checked(&b, "confirm").await;
    b.fill("code", &code).await;
    b.click("form[action^=\"/forwarding/confirm/\"] button[type=submit]")
        .await;
    assert_eq!(b.path().await, "/forwarding?done=confirmed");
    let id = s.store.exemptions_of("anna").await.expect("list")[0].id;
    assert_eq!(
        s.store.exemption(id).await.expect("e").state,
        ExemptionState::Confirmed
    );
    log_out(&b).await;

    // An admin approves it in the browser.
    b.open("/approvals").await;
    browser_log_in(&b, "admin1").await;
    assert_eq!(b.path().await, "/approvals");
    checked(&b, "approvals").await;
    b.click(&format!(
        "form[action=\"/approvals/{id}/approve\"] button[type=submit]"
    ))
    .await;
    assert_eq!(b.path().await, "/approvals?done=approved");
    checked(&b, "approved").await;
    assert_eq!(
        s.store.exemption(id).await.expect("e").state,
        ExemptionState::Active
    );
    b.open("/admin/exemptions").await;
    assert!(b.source().await.contains(PRIVATE));
    checked(&b, "exemptions").await;
    log_out(&b).await;

    // A clean message to anna now reaches her private address, intact.
    let clean = message(
        "story1",
        "Die Fraktionssitzung beginnt am Donnerstag um 18 Uhr im Ratssaal.",
    );
    let mut c = Client::greeted(s.smtp).await;
    c.ehlo().await;
    c.send_mail("buergerbuero@verwaltung.test", &["anna@stadt.test"], &clean)
        .await
        .expect(250, "2.0.0");
    c.cmd("QUIT").await;
    let forwarded = sink
        .wait_until(|m| m.rcpt.iter().any(|r| r == PRIVATE) && m.data.ends_with(&clean))
        .await;
    assert!(forwarded.data.ends_with(&clean), "the message changed");

    // The DPO finds the story in the audit trail, in plain German, and a verified chain.
    b.open("/dpo/audit").await;
    browser_log_in(&b, "dpo").await;
    assert_eq!(b.path().await, "/dpo/audit");
    let wanted = [
        format!("für 14 Tage beantragt (Ausnahme Nr. {id})"),
        "mit dem Code bestätigt".to_owned(),
        format!("hat die Ausnahme Nr. {id} für"),
        format!("wird an {PRIVATE} weitergeleitet"),
    ];
    // The delivery is audited once the sink has answered: wait for it to be listed.
    let mut page = b.source().await;
    for _ in 0..50 {
        if page.contains(&format!("Die Weiterleitung an {PRIVATE} wurde zugestellt")) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        b.open("/dpo/audit").await;
        page = b.source().await;
    }
    for w in wanted
        .iter()
        .map(String::as_str)
        .chain([&*format!("Die Weiterleitung an {PRIVATE} wurde zugestellt")])
    {
        assert!(page.contains(w), "{w:?} not in the audit trail: {page}");
    }
    checked(&b, "dpo-audit").await;
    b.click("a[href=\"/dpo/audit/verify\"]").await;
    assert!(
        b.text("[role=status]")
            .await
            .contains("Die Protokollkette ist intakt."),
        "{}",
        b.source().await
    );
    checked(&b, "dpo-verify").await;
    b.open("/dpo/register").await;
    assert!(b.source().await.contains(PRIVATE));
    checked(&b, "dpo-register").await;
    b.open("/dpo/figures").await;
    checked(&b, "dpo-figures").await;
    log_out(&b).await;

    // Anna sets up her iPhone: the password is shown once and works over IMAP.
    b.open("/devices").await;
    browser_log_in(&b, "anna").await;
    assert_eq!(b.path().await, "/devices");
    checked(&b, "devices").await;
    b.fill("label", "iPhone").await;
    b.click("form[action=\"/devices\"] button[type=submit]")
        .await;
    let password = b.text("#password").await;
    assert_eq!(password.len(), store::APP_PASSWORD_LENGTH, "{password:?}");
    checked(&b, "device-created").await;
    let reply = imap_login(&s, "anna", &password).await;
    assert!(reply.starts_with("t OK"), "{reply}");

    // Revoked on the devices page, it is refused.
    b.open("/devices").await;
    b.click("form[action=\"/devices/revoke\"] button[type=submit]")
        .await;
    assert_eq!(b.path().await, "/devices?done=revoked");
    checked(&b, "device-revoked").await;
    let reply = imap_login(&s, "anna", &password).await;
    assert!(reply.starts_with("t NO"), "a revoked device: {reply}");

    // Her other pages, checked the same way.
    for (path, name) in [("/", "home"), ("/held", "held"), ("/logins", "logins")] {
        b.open(path).await;
        checked(&b, name).await;
    }
    log_out(&b).await;

    // The admin's remaining pages.
    b.open("/admin/users").await;
    browser_log_in(&b, "admin1").await;
    for (path, name) in [
        ("/admin/users", "users"),
        ("/admin/users/anna", "user"),
        ("/admin/queue", "queue"),
        ("/admin/messages", "messages"),
    ] {
        b.open(path).await;
        assert_eq!(b.path().await, path);
        checked(&b, name).await;
    }

    b.close().await;
    s.stop().await;
    sink.stop();
}
