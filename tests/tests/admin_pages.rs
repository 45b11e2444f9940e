//! The admin's and the data-protection officer's pages (issue #12 §2, §3) over real HTTPS
//! against the running daemon: users (add with a password shown once, disable/enable with
//! web and IMAP refusing, password reset ending sessions, devices revoked), queue (retry,
//! drop audited, no content), messages (metadata only, filtered, paged), the audit trail
//! (filtered, verified — intact, then broken after a row is tampered with — and exported as
//! CSV and JSON Lines that parse), the register of exemptions, and the figures. Every page
//! refuses the other roles (403), GET and POST.

use ratspost_tests::client::Client;
use ratspost_tests::http::{Http, Response};
use ratspost_tests::imap::Imap;
use ratspost_tests::server::Server;
use store::testing::{TestDb, raw_execute};
use store::{AuditCheck, Role};

use crate::viewer::login;

const ANNA: &str = "anna@stadt.test";

/// A server with root (admin), dora (dpo), anna and bert (staff), each with password
/// `LOGIN-pass-1`.
async fn setup(extra: &str) -> Server {
    let s = Server::start_full(
        TestDb::sqlite(),
        "",
        &format!("[web]\nlisten = \"127.0.0.1:0\"\nlogin_failure_delay_ms = 10\n{extra}"),
    )
    .await;
    for (login, role, addresses) in [
        ("root", Role::Admin, vec![]),
        ("dora", Role::Dpo, vec![]),
        ("anna", Role::Staff, vec![ANNA]),
        ("bert", Role::Staff, vec!["bert@stadt.test"]),
    ] {
        s.add_user(login, role, &addresses).await;
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

/// A client logged in as `who` (starting at `path`, which needs a login).
async fn session(s: &Server, who: &str, path: &str) -> Http {
    let mut http = Http::new(s.web, &s.cert());
    let r = login(&mut http, path, who, &format!("{who}-pass-1")).await;
    assert_eq!(r.status, 303, "{who} could not log in: {}", r.text());
    http
}

/// GETs `path` and expects a 200 page; returns its HTML.
async fn page(http: &mut Http, path: &str) -> String {
    let r = http.get(path).await;
    assert_eq!(r.status, 200, "{path}: {}", r.text());
    r.text()
}

/// POSTs a form (with the page's CSRF token from `csrf`) to `path`.
async fn submit(http: &mut Http, csrf: &str, path: &str, fields: &[(&str, &str)]) -> Response {
    let mut all = vec![("csrf", csrf)];
    all.extend_from_slice(fields);
    http.post(path, &all).await
}

/// Follows a redirect answer; returns the page's HTML.
async fn follow(http: &mut Http, r: &Response) -> String {
    assert_eq!(r.status, 303, "{}", r.text());
    let to = r.header("location").expect("location").to_owned();
    page(http, &to).await
}

/// The CSRF token of the page at `path`.
async fn csrf(http: &mut Http, path: &str) -> String {
    http.get(path).await.hidden("csrf").expect("csrf field")
}

/// Whether a web login of `who` with `password` succeeds.
async fn web_login_works(s: &Server, who: &str, password: &str) -> bool {
    let mut http = Http::new(s.web, &s.cert());
    login(&mut http, "/", who, password).await.status == 303
}

/// Whether an IMAP login of `who` with `password` succeeds.
async fn imap_login_works(s: &Server, who: &str, password: &str) -> bool {
    let mut imap = Imap::connect_tls(s.imaps, &s.cert()).await;
    imap.line().await;
    imap.send(&format!("a1 LOGIN {who} {password}\r\n")).await;
    let reply = imap.line().await;
    reply.starts_with("a1 OK")
}

/// The audit actions (with actor) appended so far.
async fn audited(s: &Server) -> Vec<(String, String)> {
    s.store
        .list_audit(0, 10_000)
        .await
        .expect("audit")
        .into_iter()
        .map(|e| (e.actor, e.action))
        .collect()
}

/// The text between `<p class="secret" id="password">` and `</p>`.
fn shown_password(html: &str) -> String {
    let start = html
        .find("<p class=\"secret\" id=\"password\">")
        .unwrap_or_else(|| panic!("no password shown: {html}"))
        + 32;
    html[start..start + html[start..].find("</p>").expect("end")].to_owned()
}

/// Asserts that `r` is the 403 page.
fn refused(r: &Response, what: &str) {
    assert_eq!(r.status, 403, "{what}: {}", r.text());
    assert!(r.text().contains("Keine Berechtigung"), "{what}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admins_manage_users_devices_and_passwords() {
    let s = setup("").await;
    let mut root = session(&s, "root", "/admin/users").await;
    let list = page(&mut root, "/admin/users").await;
    for text in [
        "<h1>Benutzer</h1>",
        ">anna</a>",
        ANNA,
        "Datenschutzbeauftragte/r",
        "aktiv",
    ] {
        assert!(list.contains(text), "{text} missing: {list}");
    }
    let token = csrf(&mut root, "/admin/users").await;

    // Add carla: the generated password is shown once and works.
    let r = submit(
        &mut root,
        &token,
        "/admin/users",
        &[
            ("login", "carla"),
            ("name", "Carla Neu"),
            ("addresses", "carla@stadt.test\r\nCarla.Neu@Stadt.test"),
            ("role", "staff"),
        ],
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let carla_password = shown_password(&r.text());
    assert_eq!(carla_password.len(), 20);
    assert!(web_login_works(&s, "carla", &carla_password).await);
    let carla = s.store.user_by_login("carla").await.expect("carla");
    assert_eq!(
        carla.addresses,
        ["carla.neu@stadt.test", "carla@stadt.test"]
    );
    assert_eq!(carla.role, Role::Staff);
    assert!(
        audited(&s)
            .await
            .contains(&("root".into(), "user.created".into()))
    );
    // The password is in no log line, audit entry or later page.
    let all =
        serde_json::to_string(&s.store.list_audit(0, 1000).await.expect("audit")).expect("json");
    assert!(!all.contains(&carla_password));
    assert!(
        !page(&mut root, "/admin/users")
            .await
            .contains(&carla_password)
    );

    // Bad input and conflicts come back with the form and an alert; nothing is created.
    for (fields, status, says) in [
        (
            [
                ("login", "Bad Login!"),
                ("name", "X"),
                ("addresses", ""),
                ("role", "staff"),
            ],
            400,
            "Bitte prüfen Sie die Angaben",
        ),
        (
            [
                ("login", "dora2"),
                ("name", "X"),
                ("addresses", ANNA),
                ("role", "dpo"),
            ],
            409,
            "bereits vergeben",
        ),
        (
            [
                ("login", "emil"),
                ("name", "X"),
                ("addresses", ""),
                ("role", "root"),
            ],
            400,
            "Bitte prüfen Sie die Angaben",
        ),
    ] {
        let r = submit(&mut root, &token, "/admin/users", &fields).await;
        assert_eq!(r.status, status, "{fields:?}: {}", r.text());
        assert!(r.text().contains("role=\"alert\""), "{fields:?}");
        assert!(r.text().contains(says), "{fields:?}: {}", r.text());
    }
    let long = "x".repeat(300);
    let r = submit(
        &mut root,
        &token,
        "/admin/users",
        &[("login", "emil"), ("name", &long), ("role", "staff")],
    )
    .await;
    assert_eq!(r.status, 400);
    // Without the form's token nothing happens.
    let r = submit(
        &mut root,
        "wrong",
        "/admin/users",
        &[("login", "emil"), ("name", "Emil"), ("role", "admin")],
    )
    .await;
    assert_eq!(r.status, 400);
    assert!(
        s.store.user_by_login("emil").await.is_err(),
        "a user was created without the token"
    );

    // anna has a web session and a device.
    let mut anna = session(&s, "anna", "/").await;
    assert_eq!(anna.get("/").await.status, 200);
    let anna_id = s.store.user_by_login("anna").await.expect("anna").id;
    let device = "Ab3dEf6hJk9mNp2qRs5tUv8w";
    s.store
        .create_app_password(
            anna_id,
            "iPhone",
            &store::token::hash(device),
            store::now_millis(),
        )
        .await
        .expect("device");
    assert!(imap_login_works(&s, "anna", device).await);
    let detail = page(&mut root, "/admin/users/anna").await;
    assert!(
        detail.contains("iPhone") && detail.contains("Benutzerkonto sperren"),
        "{detail}"
    );
    assert!(
        page(&mut root, "/admin/users").await.contains("<td>1</td>"),
        "device count"
    );

    // Disable: her session ends, the web and IMAP refuse her.
    let r = submit(&mut root, &token, "/admin/users/anna/disable", &[]).await;
    assert_eq!(
        r.header("location"),
        Some("/admin/users/anna?done=disabled")
    );
    let shown = follow(&mut root, &r).await;
    assert!(
        shown.contains("Das Benutzerkonto ist gesperrt") && shown.contains("gesperrt"),
        "{shown}"
    );
    assert!(shown.contains("Benutzerkonto freigeben"));
    assert_eq!(
        anna.get("/").await.status,
        303,
        "a disabled user's session goes on"
    );
    assert!(!web_login_works(&s, "anna", "anna-pass-1").await);
    assert!(!imap_login_works(&s, "anna", device).await);
    assert!(page(&mut root, "/admin/users").await.contains("gesperrt"));
    // Enable: she can log in again.
    let r = submit(&mut root, &token, "/admin/users/anna/enable", &[]).await;
    assert!(follow(&mut root, &r).await.contains("wieder freigegeben"));
    assert!(web_login_works(&s, "anna", "anna-pass-1").await);
    assert!(imap_login_works(&s, "anna", device).await);
    let actions = audited(&s).await;
    for a in ["user.disabled", "user.enabled"] {
        assert!(
            actions.contains(&("root".into(), a.into())),
            "{a}: {actions:?}"
        );
    }

    // An admin cannot disable themselves (no button, and the POST is refused).
    assert!(
        !page(&mut root, "/admin/users/root")
            .await
            .contains("Benutzerkonto sperren")
    );
    let r = submit(&mut root, &token, "/admin/users/root/disable", &[]).await;
    assert_eq!(r.status, 400);
    assert!(r.text().contains("eigenes Benutzerkonto nicht sperren"));
    assert!(web_login_works(&s, "root", "root-pass-1").await);
    assert_eq!(
        submit(&mut root, &token, "/admin/users/nobody/disable", &[])
            .await
            .status,
        404
    );

    // Reset anna's password: shown once, her sessions end, the old one stops working.
    let mut anna = session(&s, "anna", "/").await;
    let r = submit(&mut root, &token, "/admin/users/anna/password", &[]).await;
    assert_eq!(r.status, 200);
    let new_password = shown_password(&r.text());
    assert_eq!(
        anna.get("/").await.status,
        303,
        "the session survived the reset"
    );
    assert!(!web_login_works(&s, "anna", "anna-pass-1").await);
    assert!(web_login_works(&s, "anna", &new_password).await);
    assert!(
        audited(&s)
            .await
            .contains(&("root".into(), "user.password_changed".into()))
    );

    // Revoke her device.
    let r = submit(
        &mut root,
        &token,
        "/admin/users/anna/devices/revoke",
        &[("label", "iPhone")],
    )
    .await;
    let shown = follow(&mut root, &r).await;
    assert!(
        shown.contains("Das Gerätepasswort wurde widerrufen")
            && shown.contains("Keine Gerätepasswörter"),
        "{shown}"
    );
    assert!(!imap_login_works(&s, "anna", device).await);
    assert!(
        audited(&s)
            .await
            .contains(&("root".into(), "app_password.revoked".into()))
    );

    // Other roles: 403 for every page and form, and nothing changes.
    for who in ["bert", "dora"] {
        let mut other = session(&s, who, "/").await;
        let their = csrf(&mut other, "/").await;
        for path in [
            "/admin/users",
            "/admin/users/anna",
            "/admin/queue",
            "/admin/messages",
        ] {
            refused(&other.get(path).await, &format!("{who} GET {path}"));
        }
        for path in [
            "/admin/users/anna/disable",
            "/admin/users/anna/password",
            "/admin/users",
        ] {
            let r = submit(
                &mut other,
                &their,
                path,
                &[
                    ("login", "x"),
                    ("name", "x"),
                    ("role", "admin"),
                    ("label", "x"),
                ],
            )
            .await;
            refused(&r, &format!("{who} POST {path}"));
        }
    }
    assert!(
        web_login_works(&s, "anna", &new_password).await,
        "anna was changed by a refused POST"
    );
    assert!(s.store.user_by_login("x").await.is_err());
    s.stop().await;
}

/// A message to anna with `body` (clean unless it holds something sensitive).
fn mail(id: &str, subject: &str, body: &str) -> Vec<u8> {
    format!(
        "From: Amt <amt@verwaltung.test>\r\nTo: {ANNA}\r\nSubject: {subject}\r\nMessage-ID: <{id}@verwaltung.test>\r\n\
Date: Mon, 2 Nov 2026 10:00:00 +0100\r\n\r\n{body}\r\n"
    )
    .into_bytes()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admins_see_queue_and_message_metadata_only() {
    let s = setup("").await;
    let mut c = Client::greeted(s.smtp).await;
    c.ehlo().await;
    for (id, subject, body) in [
        ("clean", "Sitzungstermine", "Die Sitzung beginnt um 18 Uhr."),
        (
            "secret",
            "Geheimer Betreff",
            "Ihre Steuer-ID 86095742719 ist hinterlegt.",
        ),
    ] {
        c.send_mail("amt@verwaltung.test", &[ANNA], &mail(id, subject, body))
            .await
            .expect(250, "2.0.0");
    }
    s.classified().await;

    let mut root = session(&s, "root", "/admin/messages").await;
    let all = page(&mut root, "/admin/messages").await;
    for text in [
        "amt@verwaltung.test",
        ANNA,
        "Unauffällig",
        "Steuer-Identifikationsnummer",
    ] {
        assert!(all.contains(text), "{text} missing: {all}");
    }
    for secret in [
        "Geheimer Betreff",
        "Sitzungstermine",
        "86095742719",
        // The body's words, not "18 Uhr" alone: a page's own times read "…:18 Uhr" at
        // eighteen minutes past any hour.
        "beginnt um 18 Uhr",
    ] {
        assert!(!all.contains(secret), "content shown: {secret}");
    }
    let clean = page(&mut root, "/admin/messages?verdict=clean").await;
    assert!(
        clean.contains("Unauffällig") && !clean.contains("<td>Steuer-Identifikationsnummer</td>"),
        "{clean}"
    );
    let sensitive = page(&mut root, "/admin/messages?verdict=cat:tax_id&user=anna").await;
    assert!(
        sensitive.contains("<td>Steuer-Identifikationsnummer</td>")
            && !sensitive.contains("Unauffällig</td>"),
        "{sensitive}"
    );
    let berts = page(&mut root, "/admin/messages?user=bert").await;
    assert!(berts.contains("Keine Nachrichten."), "{berts}");
    // A filter that is no choice shows all rather than failing; a bad cursor is a 400.
    assert!(
        page(&mut root, "/admin/messages?verdict=%27%20OR%201%3D1")
            .await
            .contains(ANNA)
    );
    assert_eq!(root.get("/admin/messages?before=abc").await.status, 400);
    // Purged under retention.message_days (issue #15 §3): still listed, marked as such.
    const PURGED: &str = "Inhalt nach Ablauf der Aufbewahrungsfrist gelöscht";
    assert!(!all.contains(PURGED), "{all}");
    let now = store::now_millis();
    let purged = s
        .store
        .purge_messages(now + 1, now + 100 * 86_400_000, 500)
        .await
        .expect("purge");
    assert_eq!(purged.count(), 2);
    let after = page(&mut root, "/admin/messages").await;
    assert_eq!(after.matches(PURGED).count(), 2, "{after}");
    assert!(after.contains("Steuer-Identifikationsnummer"), "{after}");

    // The queue: jobs due tomorrow (so the delivery worker leaves them alone).
    let tomorrow = store::now_millis() + 24 * 3600 * 1000;
    let mut jobs = Vec::new();
    for n in 0..55 {
        let mail = store::QueuedMail {
            kind: "confirmation".into(),
            mail_from: "ratspost@stadt.test".into(),
            rcpt_to: format!("ziel{n}@privat.test"),
            body: b"Subject: Ihr Code\r\n\r\nGeheimcode 424242\r\n".to_vec(),
        };
        jobs.push(
            s.store
                .enqueue(&mail, None, None, tomorrow)
                .await
                .expect("enqueue"),
        );
    }
    let queue = page(&mut root, "/admin/queue").await;
    assert!(
        queue.contains("ziel54@privat.test") && queue.contains("wartet"),
        "{queue}"
    );
    assert!(
        !queue.contains("424242") && !queue.contains("Ihr Code"),
        "content shown"
    );
    assert!(!queue.contains("ziel0@privat.test"), "more than a page");
    let older = queue
        .split("href=\"")
        .find_map(|p| p.strip_prefix("/admin/queue?before="))
        .map(|p| format!("/admin/queue?before={}", &p[..p.find('"').expect("end")]))
        .expect("a link to older jobs");
    let second = page(&mut root, &older).await;
    assert!(
        second.contains("ziel0@privat.test") && second.contains(">Neuere</a>"),
        "{second}"
    );

    let token = csrf(&mut root, "/admin/queue").await;
    let target = jobs[3];
    let r = submit(
        &mut root,
        &token,
        &format!("/admin/queue/{target}/drop"),
        &[],
    )
    .await;
    assert!(
        follow(&mut root, &r)
            .await
            .contains(&format!("Auftrag {target} wurde verworfen."))
    );
    let entry = s
        .store
        .list_audit(0, 1000)
        .await
        .expect("audit")
        .into_iter()
        .find(|e| e.action == "queue.dropped")
        .expect("drop audited");
    assert_eq!(
        (entry.actor.as_str(), entry.subjects.clone()),
        ("root", vec![format!("job:{target}")])
    );
    // Dropped already: nothing to do, and the page says so.
    let r = submit(
        &mut root,
        &token,
        &format!("/admin/queue/{target}/drop"),
        &[],
    )
    .await;
    assert!(follow(&mut root, &r).await.contains("wartet nicht mehr"));
    let r = submit(
        &mut root,
        &token,
        &format!("/admin/queue/{}/retry", jobs[4]),
        &[],
    )
    .await;
    assert!(
        follow(&mut root, &r)
            .await
            .contains("wird sofort erneut versucht")
    );
    let job = s
        .store
        .list_outbound(100)
        .await
        .expect("jobs")
        .into_iter()
        .find(|j| j.id == jobs[4])
        .expect("job");
    assert!(job.next_attempt_at < tomorrow, "not due now: {job:?}");

    // Other roles cannot see or change the queue.
    let mut anna = session(&s, "anna", "/").await;
    let theirs = csrf(&mut anna, "/").await;
    refused(
        &submit(
            &mut anna,
            &theirs,
            &format!("/admin/queue/{}/drop", jobs[5]),
            &[],
        )
        .await,
        "staff drop",
    );
    let mut dora = session(&s, "dora", "/").await;
    let theirs = csrf(&mut dora, "/").await;
    refused(
        &submit(
            &mut dora,
            &theirs,
            &format!("/admin/queue/{}/retry", jobs[5]),
            &[],
        )
        .await,
        "dpo retry",
    );
    let job = s
        .store
        .list_outbound(100)
        .await
        .expect("jobs")
        .into_iter()
        .find(|j| j.id == jobs[5])
        .expect("job");
    assert_eq!(
        (job.state.as_str(), job.next_attempt_at),
        ("queued", tomorrow)
    );
    s.stop().await;
}

/// The fields of one CSV record (RFC 4180 quoting).
fn csv_fields(line: &str) -> Vec<String> {
    let mut fields = vec![String::new()];
    let (mut quoted, mut chars) = (false, line.chars().peekable());
    while let Some(ch) = chars.next() {
        match (ch, quoted) {
            ('"', true) if chars.peek() == Some(&'"') => {
                chars.next();
                fields.last_mut().expect("field").push('"');
            }
            ('"', _) => quoted = !quoted,
            (',', false) => fields.push(String::new()),
            (ch, _) => fields.last_mut().expect("field").push(ch),
        }
    }
    fields
}

/// Issue #14: a submission held for review (`submission.sensitive = "hold"`) shows as held
/// with a release button; releasing it is audited with the admin's login; staff cannot.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admins_release_held_submissions() {
    let s = setup("").await;
    let anna = s.store.user_by_login("anna").await.expect("anna");
    let held = s
        .store
        .submit(
            &store::Submission {
                user_id: anna.id,
                login: "anna".into(),
                device: 1,
                mail_from: ANNA.into(),
                recipients: vec!["presse@example.com".into()],
                body: b"Subject: Vorlage\r\n\r\nSteuer-ID 86095742719\r\n".to_vec(),
                sensitive: true,
                categories: vec!["tax_id".into()],
                hold: true,
            },
            store::now_millis(),
        )
        .await
        .expect("submit");
    let mut root = session(&s, "root", "/admin/queue").await;
    let queue = page(&mut root, "/admin/queue").await;
    for text in [
        "Gesendete Nachricht",
        "zurückgehalten",
        &format!("/admin/queue/{held}/release"),
    ] {
        assert!(queue.contains(text), "{text} missing:\n{queue}");
    }
    assert!(
        !queue.contains("86095742719") && !queue.contains("Vorlage"),
        "content shown"
    );

    let mut anna_web = session(&s, "anna", "/").await;
    let theirs = csrf(&mut anna_web, "/").await;
    refused(
        &submit(
            &mut anna_web,
            &theirs,
            &format!("/admin/queue/{held}/release"),
            &[],
        )
        .await,
        "staff release",
    );
    let token = csrf(&mut root, "/admin/queue").await;
    let r = submit(
        &mut root,
        &token,
        &format!("/admin/queue/{held}/nonsense"),
        &[],
    )
    .await;
    assert_eq!(r.status, 404, "an unknown action");
    let r = submit(
        &mut root,
        &token,
        &format!("/admin/queue/{held}/release"),
        &[],
    )
    .await;
    assert!(
        follow(&mut root, &r)
            .await
            .contains(&format!("Auftrag {held} wurde freigegeben")),
    );
    let entry = s
        .store
        .list_audit(0, 1000)
        .await
        .expect("audit")
        .into_iter()
        .find(|e| e.action == "submission.released")
        .expect("release audited");
    assert_eq!(
        (entry.actor.as_str(), entry.subjects.clone()),
        ("root", vec![format!("job:{held}")])
    );
    // Released already: nothing to release, and the page says so.
    let r = submit(
        &mut root,
        &token,
        &format!("/admin/queue/{held}/release"),
        &[],
    )
    .await;
    assert!(follow(&mut root, &r).await.contains("wartet nicht mehr"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dpo_filters_verifies_and_exports_the_audit_trail() {
    let s = setup("").await;
    let exemption = s.exempt("anna", "anna@privat.test", "root").await;
    s.store
        .set_user_disabled("bert", true, "root", store::now_millis())
        .await
        .expect("disable");
    let mut dora = session(&s, "dora", "/dpo/audit").await;
    let trail = page(&mut dora, "/dpo/audit").await;
    for text in [
        &format!(
            "anna (anna) hat die Weiterleitung der Post von anna (anna) an anna@privat.test für 7 Tage beantragt (Ausnahme Nr. {exemption})."
        ),
        &format!("root (root) hat die Ausnahme Nr. {exemption} für anna (anna) genehmigt."),
        "root (root) hat das Benutzerkonto bert (bert) gesperrt.",
        "Protokollkette jetzt prüfen",
    ] {
        assert!(trail.contains(text), "{text} missing: {trail}");
    }
    let approved = page(&mut dora, "/dpo/audit?action=exemption.approved").await;
    assert!(
        approved.contains("genehmigt.") && !approved.contains("beantragt ("),
        "{approved}"
    );
    let berts = page(&mut dora, "/dpo/audit?user=bert").await;
    assert!(
        berts.contains("gesperrt.") && !berts.contains("Ausnahme Nr."),
        "{berts}"
    );
    // Dates are local (Berlin); two days ahead is in the future whatever the hour.
    let today = webui::datetime::Zone::BERLIN
        .date_of(store::now_millis())
        .expect("today");
    let tomorrow = today
        .succ_opt()
        .and_then(|d| d.succ_opt())
        .expect("the day after tomorrow");
    let later = page(&mut dora, &format!("/dpo/audit?from={tomorrow}")).await;
    assert!(later.contains("Keine Einträge."), "{later}");
    let r = dora.get("/dpo/audit?from=31.12.2026").await;
    assert_eq!(r.status, 400);
    assert!(r.text().contains("role=\"alert\"") && r.text().contains("JJJJ-MM-TT"));

    // The chain verifies, against the installation's signed checkpoints as well.
    relay::checkpoint::Signer::load(&s.config)
        .expect("checkpoint key")
        .write(&s.store)
        .await
        .expect("checkpoint");
    let verify = page(&mut dora, "/dpo/audit/verify").await;
    assert!(
        verify.contains("Die Protokollkette ist intakt."),
        "{verify}"
    );
    assert!(
        verify
            .contains("signierte Prüfpunkte dieser Installation stimmen mit dem Protokoll überein"),
        "{verify}"
    );

    // Exports parse and hold every entry of the range, with the chain's hashes.
    let range = format!(
        "from={}&until={}",
        today.pred_opt().expect("yesterday"),
        tomorrow
    );
    let r = dora.get(&format!("/dpo/audit/export/csv?{range}")).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("content-type"), Some("text/csv; charset=utf-8"));
    assert!(
        r.header("content-disposition")
            .is_some_and(|v| v.starts_with("attachment;"))
    );
    let stored = s.store.list_audit(0, 10_000).await.expect("audit");
    assert_eq!(
        stored.last().map(|e| e.action.as_str()),
        Some("audit.exported"),
        "the export is audited"
    );
    let csv = r.text();
    let mut lines = csv.split("\r\n").filter(|l| !l.is_empty());
    assert_eq!(
        lines.next(),
        Some("seq,time,actor,action,subjects,details,prev_hash,hash")
    );
    let rows: Vec<Vec<String>> = lines.map(csv_fields).collect();
    assert_eq!(rows.len(), stored.len(), "{csv}");
    for (row, entry) in rows.iter().zip(&stored) {
        assert_eq!(row.len(), 8, "{row:?}");
        assert_eq!(row[0], entry.seq.to_string());
        assert_eq!(row[3], entry.action);
        assert_eq!(
            serde_json::from_str::<serde_json::Value>(&row[5]).expect("details"),
            entry.details
        );
        assert_eq!(row[7], entry.hash);
    }
    let r = dora.get(&format!("/dpo/audit/export/jsonl?{range}")).await;
    assert_eq!(r.status, 200);
    let stored = s.store.list_audit(0, 10_000).await.expect("audit");
    let lines: Vec<serde_json::Value> = r
        .text()
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect();
    assert_eq!(lines.len(), stored.len());
    for (line, entry) in lines.iter().zip(&stored) {
        assert_eq!(line["seq"], entry.seq);
        assert_eq!(line["hash"], entry.hash.as_str());
        assert_eq!(line["prev_hash"], entry.prev_hash.as_str());
    }
    // A range in the future holds nothing but the header.
    let r = dora
        .get(&format!("/dpo/audit/export/csv?from={tomorrow}"))
        .await;
    assert_eq!(
        r.text().trim_end(),
        "seq,time,actor,action,subjects,details,prev_hash,hash"
    );
    assert_eq!(dora.get("/dpo/audit/export/xml").await.status, 404);
    assert_eq!(
        dora.get("/dpo/audit/export/csv?from=gestern").await.status,
        400
    );

    // Someone with database access rewrites an entry: the check shows the break.
    raw_execute(
        &s.store,
        "UPDATE audit_log SET actor = 'someone-else' WHERE seq = 2",
    )
    .await;
    assert!(matches!(
        s.store.verify_audit().await.expect("verify"),
        AuditCheck::Broken { seq: 2, .. }
    ));
    let verify = page(&mut dora, "/dpo/audit/verify").await;
    assert!(
        verify.contains("Die Protokollkette ist unterbrochen.") && verify.contains("Nr. 2."),
        "{verify}"
    );
    assert!(
        verify.contains("role=\"alert\"") && !verify.contains("intakt"),
        "{verify}"
    );

    // Admins and staff get 403 on every DPO page.
    for who in ["root", "anna"] {
        let mut other = session(&s, who, "/").await;
        for path in [
            "/dpo/audit",
            "/dpo/audit/verify",
            "/dpo/audit/export/csv",
            "/dpo/register",
            "/dpo/figures",
        ] {
            refused(&other.get(path).await, &format!("{who} GET {path}"));
        }
    }
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dpo_sees_the_register_and_the_figures() {
    let s = setup("").await;
    let exemption = s.exempt("anna", "anna@privat.test", "root").await;
    let mut c = Client::greeted(s.smtp).await;
    c.ehlo().await;
    c.send_mail(
        "amt@verwaltung.test",
        &[ANNA],
        &mail("f1", "Termine", "Die Sitzung beginnt um 18 Uhr."),
    )
    .await
    .expect(250, "2.0.0");
    s.classified().await;
    let mut dora = session(&s, "dora", "/dpo/register").await;
    let register = page(&mut dora, "/dpo/register").await;
    for text in [
        &format!("<th scope=\"row\">{exemption}</th>"),
        "anna@privat.test",
        "<td>Test</td>",
        "root (root)",
        "<td>aktiv</td>",
        "<td>1 (",
    ] {
        assert!(register.contains(text), "{text} missing: {register}");
    }

    let figures = page(&mut dora, "/dpo/figures").await;
    for text in [
        "<svg",
        "role=\"img\"",
        "<title id=\"chart-title\">",
        "<desc id=\"chart-desc\">",
        "<caption>Kennzahlen je Woche</caption>",
    ] {
        assert!(figures.contains(text), "{text} missing: {figures}");
    }
    assert_eq!(
        figures.matches("<th scope=\"row\">KW ").count(),
        12,
        "{figures}"
    );
    // This week: one forward decided, nothing else.
    let this_week = figures.rsplit("<th scope=\"row\">KW ").next().expect("row");
    assert!(
        this_week.contains("<td>1</td>\n<td>0</td>\n<td>0</td>\n<td>0</td>"),
        "{this_week}"
    );
    assert_eq!(
        page(&mut dora, "/dpo/figures?weeks=3")
            .await
            .matches("<th scope=\"row\">KW ")
            .count(),
        3
    );
    assert_eq!(
        page(&mut dora, "/dpo/figures?weeks=9999")
            .await
            .matches("<th scope=\"row\">KW ")
            .count(),
        52
    );
    assert_eq!(dora.get("/dpo/figures?weeks=zwölf").await.status, 400);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pages_speak_english_when_configured() {
    let s = setup("language = \"en\"\n").await;
    let mut root = session(&s, "root", "/admin/users").await;
    let users = page(&mut root, "/admin/users").await;
    assert!(
        users.contains("Add an account") && !users.contains("Benutzerkonto anlegen"),
        "{users}"
    );
    let mut dora = session(&s, "dora", "/dpo/audit").await;
    let verify = page(&mut dora, "/dpo/audit/verify").await;
    assert!(verify.contains("The audit chain is intact."), "{verify}");
    let figures = page(&mut dora, "/dpo/figures").await;
    assert!(
        figures.contains("Figures per week") && figures.contains("Forwards"),
        "{figures}"
    );
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chromium_adds_and_disables_a_user_and_the_dpo_verifies_the_chain() {
    let s = setup("").await;
    let Some(b) = ratspost_tests::browser::Browser::start(s.web).await else {
        return s.stop().await;
    };
    let log_in = |who: &'static str| {
        let b = &b;
        async move {
            b.fill("login", who).await;
            b.fill("password", &format!("{who}-pass-1")).await;
            b.click("form[action=\"/login\"] button[type=submit]").await;
        }
    };
    b.open("/admin/users").await;
    log_in("root").await;
    assert_eq!(b.path().await, "/admin/users");
    b.fill("login", "carla").await;
    b.fill("name", "Carla Neu").await;
    b.fill("addresses", "carla@stadt.test").await;
    b.click("form[action=\"/admin/users\"] button[type=submit]")
        .await;
    assert_eq!(b.text("h1").await, "Benutzerkonto angelegt");
    let password = b.text("#password").await;
    assert!(web_login_works(&s, "carla", &password).await);

    b.open("/admin/users/bert").await;
    b.click("form[action=\"/admin/users/bert/disable\"] button")
        .await;
    assert_eq!(b.path().await, "/admin/users/bert?done=disabled");
    assert!(b.text("[role=status]").await.contains("gesperrt"));
    assert!(!web_login_works(&s, "bert", "bert-pass-1").await);
    b.click("form[action=\"/logout\"] button[type=submit]")
        .await;

    b.open("/dpo/audit").await;
    log_in("dora").await;
    assert_eq!(b.path().await, "/dpo/audit");
    assert!(
        b.source()
            .await
            .contains("root (root) hat das Benutzerkonto bert (bert) gesperrt.")
    );
    b.click("a[href=\"/dpo/audit/verify\"]").await;
    assert_eq!(
        b.text("[role=status] strong").await,
        "Die Protokollkette ist intakt."
    );
    b.close().await;
    s.stop().await;
}

#[test]
fn the_cli_disables_and_enables_users_as_the_page_does() {
    use ratspost_tests::daemon::{
        admin_password, enrol, ratspost_as, ratspost_as_ok, write_config,
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let db = TestDb::sqlite();
    let config = write_config(dir.path(), &db.url, "");
    enrol(&config, "anna", "anna@stadt.test", "Erstes-Passwort-1");
    let admin = admin_password(&config);
    let out = ratspost_as_ok(
        &config,
        &["user", "disable", "anna", "--by", "admin"],
        &admin,
        None,
    );
    assert!(out.contains("anna disabled"), "{out}");
    // anna cannot prove herself any more (her password fails as a wrong one would).
    let refused = ratspost_as(
        &config,
        &["user", "passwd", "anna", "--password-stdin"],
        "Erstes-Passwort-1",
        Some("Neu-Passwort-1"),
    );
    assert_eq!(refused.status.code(), Some(1), "a disabled user acted");
    // An admin cannot disable themselves; a second disable changes nothing.
    let own = ratspost_as(
        &config,
        &["user", "disable", "admin", "--by", "admin"],
        &admin,
        None,
    );
    assert_eq!(own.status.code(), Some(1));
    assert!(
        ratspost_as_ok(
            &config,
            &["user", "disable", "anna", "--by", "admin"],
            &admin,
            None
        )
        .contains("already")
    );
    let out = ratspost_as_ok(
        &config,
        &["user", "enable", "anna", "--by", "admin"],
        &admin,
        None,
    );
    assert!(out.contains("anna enabled"), "{out}");
    ratspost_as_ok(
        &config,
        &["user", "passwd", "anna", "--password-stdin"],
        "Erstes-Passwort-1",
        Some("Neu-Passwort-1"),
    );
    let listed = ratspost_as_ok(&config, &["audit", "list", "--json"], "", None);
    let entries: serde_json::Value = serde_json::from_str(&listed).expect("json");
    let actions: Vec<(&str, &str)> = entries
        .as_array()
        .expect("array")
        .iter()
        .map(|e| {
            (
                e["actor"].as_str().expect("actor"),
                e["action"].as_str().expect("action"),
            )
        })
        .filter(|(_, a)| a.starts_with("user.") && *a != "user.created")
        .collect();
    assert_eq!(
        actions,
        [
            ("admin", "user.disabled"),
            ("admin", "user.enabled"),
            ("anna", "user.password_changed")
        ]
    );
}
