//! Forwarding exemptions in the web UI over real HTTPS (issue 12): a staff member requests
//! one, the confirmation mail (caught by the smarthost sink) carries the code and a one-time
//! link, which only she can open; a wrong code costs a try, the right one confirms; the
//! approvers get a mail; an admin cannot decide on his own request, another admin can;
//! a denial reaches the user with its reason; revoking too. Then: the held-messages page,
//! and the pages in English.

use ratspost_tests::http::{Http, Response};
use ratspost_tests::server::Server;
use ratspost_tests::sink::{Received, Sink, SinkOptions};
use store::testing::TestDb;
use store::{ExemptionState, Role};

use crate::viewer::login;

const ANNA: &str = "anna@stadt.test";
const PRIVATE: &str = "anna.privat@example.net";

/// A server whose outgoing mail goes to `sink`, with anna and bert (staff) and two admins,
/// each with a work address and the password `{login}-pass-1`.
pub(crate) async fn server(db: TestDb, sink: &Sink, extra: &str) -> Server {
    let config = format!(
        "[delivery]\nsmarthost = \"{}\"\ntls = \"none\"\nretry_base_secs = 1\nretry_max_secs = 1\ntimeout_secs = 5\n\
         [notices]\nlink_base = \"https://ratspost.stadt.test/m\"\n\
         [web]\nlisten = \"127.0.0.1:0\"\nlogin_failure_delay_ms = 10\n{extra}",
        sink.addr
    );
    let s = Server::start_full(db, "", &config).await;
    for (login, role, address) in [
        ("anna", Role::Staff, ANNA),
        ("bert", Role::Staff, "bert@stadt.test"),
        ("admin1", Role::Admin, "admin1@stadt.test"),
        ("admin2", Role::Admin, "admin2@stadt.test"),
    ] {
        s.add_user(login, role, &[address]).await;
        s.store
            .set_password_hash(
                login,
                &store::password::hash(&format!("{login}-pass-1")).expect("hash"),
            )
            .await
            .expect("password");
    }
    s
}

/// A client logged in as `login`, starting from `path`.
async fn logged_in(s: &Server, login_name: &str, path: &str) -> Http {
    let mut http = Http::new(s.web, &s.cert());
    let r = login(&mut http, path, login_name, &format!("{login_name}-pass-1")).await;
    assert_eq!(r.status, 303, "login of {login_name}: {r:?}");
    http
}

/// Subject and text of a received mail, decoded as a mail client would.
fn decoded(m: &Received) -> (String, String) {
    let mail = mail_parser::MessageParser::default()
        .parse(&m.data)
        .expect("a valid MIME message");
    (
        mail.subject().unwrap_or_default().to_owned(),
        mail.body_text(0).unwrap_or_default().into_owned(),
    )
}

/// Waits for the mail to `rcpt` whose subject contains `subject`.
pub(crate) async fn mail_to(sink: &Sink, rcpt: &str, subject: &str) -> (String, String) {
    let m = sink
        .wait_until(|m| m.rcpt.iter().any(|r| r == rcpt) && decoded(m).0.contains(subject))
        .await;
    decoded(&m)
}

/// The code and the link's path (`/forwarding/confirm/TOKEN`) in a confirmation mail's text.
pub(crate) fn confirmation(body: &str) -> (String, String) {
    let at = body.find("Bestätigungscode:").expect("code label");
    let code: String = body[at + "Bestätigungscode:".len()..]
        .trim_start()
        .chars()
        .take(8)
        .collect();
    let link = body
        .split_whitespace()
        .find(|w| w.starts_with("https://ratspost.stadt.test/forwarding/confirm/"))
        .expect("the link in the mail");
    let path = link.trim_start_matches("https://ratspost.stadt.test");
    (code, path.to_owned())
}

/// A POST of `fields` with the page's CSRF token from `page`.
async fn post_form(
    http: &mut Http,
    page: &Response,
    path: &str,
    fields: &[(&str, &str)],
) -> Response {
    let csrf = page.hidden("csrf").expect("csrf field");
    let mut all = vec![("csrf", csrf.as_str())];
    all.extend_from_slice(fields);
    http.post(path, &all).await
}

/// Follows the redirect of a POST and returns the page it leads to.
async fn followed(http: &mut Http, r: &Response, expected: &str) -> Response {
    assert_eq!(r.status, 303, "{r:?}");
    let to = r.header("location").expect("location").to_owned();
    assert_eq!(to, expected);
    let page = http.get(&to).await;
    assert_eq!(page.status, 200, "{page:?}");
    page
}

async fn flow(db: TestDb) {
    let sink = Sink::start(SinkOptions::default()).await;
    let s = server(db, &sink, "").await;

    // Anna requests forwarding in the web UI.
    let mut anna = logged_in(&s, "anna", "/forwarding").await;
    let page = anna.get("/forwarding").await;
    assert_eq!(page.status, 200);
    assert!(
        page.text().contains("Weiterleitung beantragen"),
        "{}",
        page.text()
    );
    // Bad input is refused by the page without a request.
    let r = post_form(
        &mut anna,
        &page,
        "/forwarding",
        &[("target", PRIVATE), ("days", "9999"), ("reason", "x")],
    )
    .await;
    assert_eq!(r.status, 422);
    assert!(r.text().contains("role=\"alert\""), "{}", r.text());
    assert!(
        s.store
            .exemptions_of("anna")
            .await
            .expect("list")
            .is_empty()
    );
    let r = post_form(
        &mut anna,
        &page,
        "/forwarding",
        &[
            ("target", "Anna.Privat@example.net"),
            ("days", "14"),
            ("reason", "Elternzeit ohne Dienstgerät"),
        ],
    )
    .await;
    let page = followed(&mut anna, &r, "/forwarding?done=requested").await;
    let text = page.text();
    assert!(text.contains("Der Antrag ist gestellt"), "{text}");
    assert!(
        text.contains(
            "wartet auf die Bestätigung der Adresse und auf die Freigabe durch die Administration"
        ),
        "{text}"
    );
    let id = s.store.exemptions_of("anna").await.expect("list")[0].id;

    // The confirmation mail: code and one-time link, no "give it to the administration".
    let (subject, body) = mail_to(&sink, PRIVATE, "Bestätigung Ihrer Weiterleitungsadresse").await;
    assert_eq!(subject, "Bestätigung Ihrer Weiterleitungsadresse");
    assert!(!body.contains("bei Ihrer Verwaltung an"), "{body}");
    let (code, path) = confirmation(&body);
    let path = path.as_str();
    assert!(
        code.len() == 8 && code.bytes().all(|b| b.is_ascii_digit()),
        "{code:?}"
    );
    assert_eq!(path.len(), "/forwarding/confirm/".len() + 64, "{path}");

    // The link is anna's only: bert is refused, an unknown token is not found.
    let mut bert = logged_in(&s, "bert", "/forwarding").await;
    assert_eq!(bert.get(path).await.status, 403);
    assert_eq!(
        bert.get(&format!("/forwarding/confirm/{}", "0".repeat(64)))
            .await
            .status,
        404
    );

    // Opened logged out, it leads through the login page back to the code form.
    let mut fresh = Http::new(s.web, &s.cert());
    let r = login(&mut fresh, path, "anna", "anna-pass-1").await;
    assert_eq!(r.header("location"), Some(path));
    let form = fresh.get(path).await;
    assert_eq!(form.status, 200);
    assert!(
        form.text().contains("anna.privat@example.net"),
        "{}",
        form.text()
    );
    // A wrong code costs a try and says how many are left; the right one confirms.
    let wrong = if code == "00000000" {
        "11111111"
    } else {
        "00000000"
    };
    let r = post_form(&mut fresh, &form, path, &[("code", wrong)]).await;
    assert_eq!(r.status, 422);
    assert!(
        r.text()
            .contains("Der Code ist falsch. Verbleibende Versuche: 4"),
        "{}",
        r.text()
    );
    let r = post_form(&mut fresh, &form, path, &[("code", &code)]).await;
    let page = followed(&mut fresh, &r, "/forwarding?done=confirmed").await;
    assert!(
        page.text()
            .contains("wartet auf die Freigabe durch die Administration"),
        "{}",
        page.text()
    );
    assert_eq!(
        s.store.exemption(id).await.expect("e").state,
        ExemptionState::Confirmed
    );
    // One-time: the link now only says so.
    assert_eq!(fresh.get(path).await.status, 410);

    // Both admins are told, without the private address or the code; staff are not.
    for admin in ["admin1@stadt.test", "admin2@stadt.test"] {
        let (_, body) = mail_to(&sink, admin, "wartet auf Freigabe").await;
        assert!(
            body.contains("https://ratspost.stadt.test/approvals"),
            "{body}"
        );
        assert!(!body.contains(PRIVATE) && !body.contains(&code), "{body}");
    }
    assert!(
        !sink
            .received()
            .iter()
            .any(|m| m.rcpt.iter().any(|r| r == "bert@stadt.test"))
    );

    // Staff have no approvals or exemptions pages, not even by POST.
    assert_eq!(anna.get("/approvals").await.status, 403);
    assert_eq!(anna.get("/admin/exemptions").await.status, 403);
    let page = anna.get("/forwarding").await;
    let r = post_form(&mut anna, &page, &format!("/approvals/{id}/approve"), &[]).await;
    assert_eq!(r.status, 403);

    // admin1 approves anna's request: active; anna is told at her work address.
    let mut admin1 = logged_in(&s, "admin1", "/approvals").await;
    let page = admin1.get("/approvals").await;
    let text = page.text();
    assert!(
        text.contains("Elternzeit ohne Dienstgerät") && text.contains(PRIVATE),
        "{text}"
    );
    assert!(text.contains("Vier-Augen-Prinzip"), "{text}");
    let r = post_form(&mut admin1, &page, &format!("/approvals/{id}/approve"), &[]).await;
    followed(&mut admin1, &r, "/approvals?done=approved").await;
    assert_eq!(
        s.store.exemption(id).await.expect("e").state,
        ExemptionState::Active
    );
    let (_, body) = mail_to(&sink, ANNA, "genehmigt").await;
    assert!(
        body.contains("admin1") && body.contains("aktiv bis"),
        "{body}"
    );

    // admin1 asks forwarding for his own mailbox: he cannot decide on it, admin2 can.
    let page = admin1.get("/forwarding").await;
    let r = post_form(
        &mut admin1,
        &page,
        "/forwarding",
        &[
            ("target", "admin1@example.org"),
            ("days", "3"),
            ("reason", "Dienstreise"),
        ],
    )
    .await;
    followed(&mut admin1, &r, "/forwarding?done=requested").await;
    let own = s.store.exemptions_of("admin1").await.expect("list")[0].id;
    let page = admin1.get("/approvals").await;
    assert!(
        page.text().contains("Es geht um Ihr eigenes Postfach"),
        "{}",
        page.text()
    );
    assert!(
        !page.text().contains(&format!("/approvals/{own}/approve")),
        "{}",
        page.text()
    );
    let r = post_form(
        &mut admin1,
        &page,
        &format!("/approvals/{own}/approve"),
        &[],
    )
    .await;
    followed(&mut admin1, &r, "/approvals?error=forbidden").await;
    assert_eq!(s.store.exemption(own).await.expect("e").approved_by, None);

    let mut admin2 = logged_in(&s, "admin2", "/approvals").await;
    let page = admin2.get("/approvals").await;
    assert!(
        page.text().contains(&format!("/approvals/{own}/approve")),
        "{}",
        page.text()
    );
    // A denial needs a reason.
    let r = post_form(
        &mut admin2,
        &page,
        &format!("/approvals/{own}/deny"),
        &[("reason", " ")],
    )
    .await;
    followed(&mut admin2, &r, "/approvals?error=reason").await;
    let r = post_form(
        &mut admin2,
        &page,
        &format!("/approvals/{own}/deny"),
        &[("reason", "Kein dienstlicher Bedarf")],
    )
    .await;
    followed(&mut admin2, &r, "/approvals?done=denied").await;
    assert_eq!(
        s.store.exemption(own).await.expect("e").state,
        ExemptionState::Denied
    );
    let (_, body) = mail_to(&sink, "admin1@stadt.test", "abgelehnt").await;
    assert!(
        body.contains("Begründung: Kein dienstlicher Bedarf") && body.contains("admin2"),
        "{body}"
    );

    // admin2 revokes anna's exemption on the exemptions page; anna is told.
    let page = admin2.get("/admin/exemptions").await;
    let text = page.text();
    assert!(
        text.contains(PRIVATE) && text.contains("Resttage"),
        "{text}"
    );
    let r = post_form(
        &mut admin2,
        &page,
        &format!("/admin/exemptions/{id}/revoke"),
        &[],
    )
    .await;
    let page = followed(&mut admin2, &r, "/admin/exemptions?done=revoked").await;
    assert!(
        page.text().contains("Keine aktiven Ausnahmen."),
        "{}",
        page.text()
    );
    assert_eq!(
        s.store.exemption(id).await.expect("e").state,
        ExemptionState::Revoked
    );
    let (_, body) = mail_to(&sink, ANNA, "widerrufen").await;
    assert!(body.contains("von admin2 widerrufen"), "{body}");

    // Anna sees where each stands; revoking her own (new) request works, bert cannot.
    let page = anna.get("/forwarding").await;
    assert!(
        page.text().contains("widerrufen von admin2"),
        "{}",
        page.text()
    );
    let r = post_form(
        &mut anna,
        &page,
        "/forwarding",
        &[
            ("target", PRIVATE),
            ("days", "2"),
            ("reason", "Noch einmal"),
        ],
    )
    .await;
    followed(&mut anna, &r, "/forwarding?done=requested").await;
    let again = s.store.exemptions_of("anna").await.expect("list")[0].id;
    let page = bert.get("/forwarding").await;
    let r = post_form(
        &mut bert,
        &page,
        &format!("/forwarding/{again}/revoke"),
        &[],
    )
    .await;
    followed(&mut bert, &r, "/forwarding?error=not_found").await;
    let page = anna.get("/forwarding").await;
    let r = post_form(
        &mut anna,
        &page,
        &format!("/forwarding/{again}/revoke"),
        &[],
    )
    .await;
    followed(&mut anna, &r, "/forwarding?done=revoked").await;
    assert_eq!(
        s.store.exemption(again).await.expect("e").state,
        ExemptionState::Revoked
    );

    // Every step is in the audit chain.
    let actions: Vec<String> = s
        .store
        .list_audit(0, 1000)
        .await
        .expect("audit")
        .into_iter()
        .map(|a| a.action)
        .collect();
    for wanted in [
        "exemption.requested",
        "exemption.confirmation_failed",
        "exemption.confirmed",
        "exemption.approved",
        "exemption.activated",
        "exemption.denied",
        "exemption.revoked",
    ] {
        assert!(
            actions.iter().any(|a| a == wanted),
            "{wanted} missing: {actions:?}"
        );
    }
    s.stop().await;
    sink.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn exemptions_are_requested_confirmed_and_decided_in_the_web_ui_sqlite() {
    flow(TestDb::sqlite()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn exemptions_are_requested_confirmed_and_decided_in_the_web_ui_postgres() {
    if let Some(db) = TestDb::postgres("exemption_web_flow").await {
        flow(db).await;
    }
}

/// Held messages: anna's notice is listed (date, sender, category) with a link that opens
/// the message through the audited viewer; bert gets no link to it.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn held_messages_list_notices_with_working_links() {
    let setup = crate::viewer::setup(TestDb::sqlite()).await;
    let s = &setup.s;
    let mut anna = Http::new(s.web, &s.cert());
    let r = login(&mut anna, "/held", "anna", "anna-pass-1").await;
    assert_eq!(r.status, 303);
    let page = anna.get("/held").await;
    assert_eq!(page.status, 200);
    let text = page.text();
    assert!(text.contains("personal@verwaltung.test"), "{text}");
    let message = s.classified().await[0].id;
    let href = format!("/held/{message}");
    assert!(text.contains(&href), "{text}");
    let r = anna.get(&href).await;
    assert_eq!(r.status, 303, "{r:?}");
    let to = r.header("location").expect("location").to_owned();
    assert!(to.starts_with("/m/") && to.len() == 3 + 64, "{to}");
    let view = anna.get(&to).await;
    assert_eq!(view.status, 200);
    assert!(view.text().contains("Ihre Unterlagen"), "{}", view.text());
    let viewed = crate::viewer::actions(s).await;
    assert!(
        viewed
            .iter()
            .any(|(action, actor, _)| action == "notice.viewed" && actor == "anna"),
        "{viewed:?}"
    );

    let mut bert = Http::new(s.web, &s.cert());
    login(&mut bert, "/held", "bert", "bert-pass-1").await;
    assert!(!bert.get("/held").await.text().contains(&href));
    let r = bert.get(&href).await;
    assert_eq!(r.header("location"), Some("/held?gone=1"));
    // Paging is bounded: a huge page number is an empty page, not an error.
    assert_eq!(anna.get("/held?page=999999999").await.status, 200);
}

/// The pages in English (`web.language = "en"`).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_exemption_pages_speak_english() {
    let sink = Sink::start(SinkOptions::default()).await;
    let s = server(TestDb::sqlite(), &sink, "language = \"en\"\n").await;
    let mut anna = logged_in(&s, "anna", "/forwarding").await;
    let page = anna.get("/forwarding").await;
    let text = page.text();
    assert!(text.contains("lang=\"en\""), "{text}");
    assert!(
        text.contains("Request forwarding") && text.contains("Private e-mail address (target)"),
        "{text}"
    );
    assert!(!text.contains("Weiterleitung beantragen"), "{text}");
    let r = post_form(
        &mut anna,
        &page,
        "/forwarding",
        &[
            ("target", PRIVATE),
            ("days", "3"),
            ("reason", "Parental leave"),
        ],
    )
    .await;
    let page = followed(&mut anna, &r, "/forwarding?done=requested").await;
    assert!(
        page.text()
            .contains("waiting for the address to be confirmed and for approval by an admin"),
        "{}",
        page.text()
    );
    let mut admin1 = logged_in(&s, "admin1", "/approvals").await;
    let text = admin1.get("/approvals").await.text();
    assert!(
        text.contains("Open requests, oldest first") && text.contains("Four eyes"),
        "{text}"
    );
    let text = anna.get("/held").await.text();
    assert!(text.contains("No held messages."), "{text}");
    s.stop().await;
    sink.stop();
}

/// Fills in and sends the login form shown now.
pub(crate) async fn browser_log_in(b: &ratspost_tests::browser::Browser, name: &str) {
    b.fill("login", name).await;
    b.fill("password", &format!("{name}-pass-1")).await;
    b.click("form[action=\"/login\"] button[type=submit]").await;
}

/// The forms in Chromium: anna requests, opens the link from the mail, enters a wrong and
/// then the right code; admin1 approves.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chromium_requests_confirms_by_link_and_approves() {
    let sink = Sink::start(SinkOptions::default()).await;
    let s = server(TestDb::sqlite(), &sink, "").await;
    let Some(b) = ratspost_tests::browser::Browser::start(s.web).await else {
        s.stop().await;
        return sink.stop();
    };
    b.open("/forwarding").await;
    browser_log_in(&b, "anna").await;
    assert_eq!(b.path().await, "/forwarding");
    b.fill("target", PRIVATE).await;
    b.fill("days", "14").await;
    b.fill("reason", "Elternzeit ohne Dienstgerät").await;
    b.click("form[action=\"/forwarding\"] button[type=submit]")
        .await;
    assert_eq!(b.path().await, "/forwarding?done=requested");
    assert!(
        b.text("[role=status]")
            .await
            .contains("Der Antrag ist gestellt")
    );

    let (_, body) = mail_to(&sink, PRIVATE, "Bestätigung").await;
    let (code, path) = confirmation(&body);
    b.open(&path).await;
    assert_eq!(b.text("h1").await, "Zieladresse bestätigen");
    let wrong = if code == "00000000" {
        "11111111"
    } else {
        "00000000"
    };
    b.fill("code", wrong).await;
    b.click("form[action^=\"/forwarding/confirm/\"] button[type=submit]")
        .await;
    assert!(
        b.text("[role=alert]")
            .await
            .contains("Verbleibende Versuche: 4")
    );
    b.fill("code", &code).await;
    b.click("form[action^=\"/forwarding/confirm/\"] button[type=submit]")
        .await;
    assert_eq!(b.path().await, "/forwarding?done=confirmed");

    b.click("form[action=\"/logout\"] button[type=submit]")
        .await;
    b.open("/approvals").await;
    browser_log_in(&b, "admin1").await;
    assert_eq!(b.path().await, "/approvals");
    let id = s.store.exemptions_of("anna").await.expect("list")[0].id;
    b.click(&format!(
        "form[action=\"/approvals/{id}/approve\"] button[type=submit]"
    ))
    .await;
    assert_eq!(b.path().await, "/approvals?done=approved");
    assert_eq!(b.text("[role=status]").await, "Die Freigabe ist erteilt.");
    assert_eq!(
        s.store.exemption(id).await.expect("e").state,
        ExemptionState::Active
    );
    b.close().await;
    s.stop().await;
    sink.stop();
}
