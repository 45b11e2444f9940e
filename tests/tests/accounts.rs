//! Issue #12 §1 and §5 over real HTTPS and IMAP: devices created in the web UI log in over
//! IMAP until revoked there; the .mobileconfig is a plist with the device's password; the
//! Thunderbird autoconfig names both IMAP ports; failed logins count across web and IMAP and
//! parallel guesses are bounded; the login history shows web and IMAP logins with new
//! addresses flagged; users end their own sessions.

use std::time::{Duration, Instant};

use ratspost_tests::http::{Http, Response};
use ratspost_tests::imap::Imap;
use ratspost_tests::server::Server;
use ratspost_tests::{have, skip};
use store::Role;
use store::testing::TestDb;

const PASSWORD: &str = "anna-pass-1";

/// A server (web and IMAP, failures answered after `delay_ms`, a ban after `ban_after`)
/// with anna (account password [`PASSWORD`]) and bert (`bert-pass-1`).
async fn setup(delay_ms: u64, ban_after: u32) -> Server {
    let s = Server::start_full(
        TestDb::sqlite(),
        "local_domains = [\"stadt.test\"]\n",
        &format!(
            "[web]\nlisten = \"127.0.0.1:0\"\nlogin_failure_delay_ms = {delay_ms}\n\
             [imap]\nlisten = \"127.0.0.1:0\"\nlisten_tls = \"127.0.0.1:0\"\n\
             failure_delay_ms = {delay_ms}\nban_after = {ban_after}\nban_secs = 60\n"
        ),
    )
    .await;
    s.add_user("anna", Role::Staff, &["anna@stadt.test"]).await;
    s.add_user("bert", Role::Staff, &["bert@stadt.test"]).await;
    for (login, password) in [("anna", PASSWORD), ("bert", "bert-pass-1")] {
        s.store
            .set_password_hash(login, &store::password::hash(password).expect("hash"))
            .await
            .expect("password");
    }
    s
}

/// The login form's POST for `login`/`password` (after fetching the form for its token).
async fn try_login(http: &mut Http, login: &str, password: &str) -> Response {
    let form = http.get("/login?next=/logins").await;
    assert_eq!(form.status, 200);
    let csrf = form.hidden("csrf").expect("csrf field");
    http.post(
        "/login",
        &[
            ("login", login),
            ("password", password),
            ("csrf", &csrf),
            ("next", "/logins"),
        ],
    )
    .await
}

/// A logged-in client.
async fn logged_in(s: &Server, login: &str, password: &str) -> Http {
    let mut http = Http::new(s.web, &s.cert());
    let r = try_login(&mut http, login, password).await;
    assert_eq!(r.status, 303, "{}", r.text());
    http
}

/// The CSRF token of the page at `path`.
async fn csrf(http: &mut Http, path: &str) -> String {
    let page = http.get(path).await;
    assert_eq!(page.status, 200, "{}", page.text());
    page.hidden("csrf").expect("csrf")
}

/// The IMAP LOGIN reply for `name`/`password` (implicit TLS, from loopback address `from`).
async fn imap_login(s: &Server, from: [u8; 4], name: &str, password: &str) -> String {
    let mut c = Imap::connect_tls_from(from.into(), s.imaps, &s.cert()).await;
    assert!(c.line().await.starts_with("* OK"));
    c.send(&format!("t LOGIN {name} \"{password}\"\r\n")).await;
    c.until("t ").await.pop().expect("reply")
}

/// Runs python3 with `stdin`; its stdout as JSON.
fn python(script: &str, stdin: &[u8]) -> serde_json::Value {
    use std::io::Write as _;
    let mut child = std::process::Command::new("python3")
        .arg("-c")
        .arg(script)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("python3");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(stdin)
        .expect("write");
    let out = child.wait_with_output().expect("python3");
    assert!(out.status.success(), "python3 failed");
    serde_json::from_slice(&out.stdout).expect("json")
}

/// The password shown on the creation page.
fn shown_password(page: &str) -> String {
    let at = page.find("id=\"password\"").expect("the password element");
    let rest = &page[at..];
    let start = rest.find('>').expect(">") + 1;
    let end = rest.find("</output>").expect("</output>");
    rest[start..end].to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_created_in_the_web_logs_in_over_imap_until_revoked_there() {
    let s = setup(10, 50).await;
    let mut anna = logged_in(&s, "anna", PASSWORD).await;
    let token = csrf(&mut anna, "/devices").await;
    let label = "iPad \"Büro\" & <Home>";

    // Without the form token nothing is created.
    let r = anna
        .post("/devices", &[("label", label), ("csrf", "x")])
        .await;
    assert_eq!(r.status, 400);
    let r = anna
        .post("/devices", &[("label", &"x".repeat(101)), ("csrf", &token)])
        .await;
    assert_eq!(r.status, 400, "an overlong label");

    let r = anna
        .post("/devices", &[("label", label), ("csrf", &token)])
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("cache-control"), Some("no-store"));
    let page = r.text();
    let password = shown_password(&page);
    assert_eq!(password.len(), store::APP_PASSWORD_LENGTH, "{password:?}");
    assert!(
        page.contains("iPad &#34;Büro&#34; &#38; &#60;Home&#62;"),
        "label not escaped: {page}"
    );
    assert!(!page.contains(label), "label not escaped");
    // The instructions: host, both ports, the user name; no submission yet, said plainly.
    for expected in [
        "<code>mx.test</code>",
        &format!("{} – SSL/TLS", s.imaps.port()),
        &format!("{} – STARTTLS", s.imap.port()),
        "<code>anna</code>",
        "Das Versenden über ratspost ist noch nicht eingerichtet.",
        "iPhone und iPad",
        "Android",
        "Thunderbird",
        "Outlook",
        "macOS Mail",
    ] {
        assert!(page.contains(expected), "{expected:?} missing: {page}");
    }
    // The same label twice: refused, the first stays.
    let r = anna
        .post("/devices", &[("label", label), ("csrf", &token)])
        .await;
    assert_eq!(r.status, 409);

    // The password works over IMAP (by login and by address).
    let reply = imap_login(&s, [127, 0, 0, 1], "anna", &password).await;
    assert!(reply.starts_with("t OK"), "{reply}");
    let reply = imap_login(&s, [127, 0, 0, 1], "anna@stadt.test", &password).await;
    assert!(reply.starts_with("t OK"), "{reply}");

    // The Apple profile: only with the device's own password.
    let r = anna
        .post(
            "/devices/mobileconfig",
            &[("label", label), ("password", "falsch"), ("csrf", &token)],
        )
        .await;
    assert_eq!(r.status, 403);
    let r = anna
        .post(
            "/devices/mobileconfig",
            &[("label", label), ("password", &password), ("csrf", &token)],
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        r.header("content-type"),
        Some("application/x-apple-aspen-config")
    );
    assert!(
        r.header("content-disposition")
            .is_some_and(|d| d.starts_with("attachment;"))
    );
    if have("python3") {
        let p = python(
            "import plistlib,sys,json,io\n\
             p = plistlib.load(io.BytesIO(sys.stdin.buffer.read()))\n\
             m = p['PayloadContent'][0]\n\
             print(json.dumps({'top': {k: p[k] for k in p if k != 'PayloadContent'}, 'mail': m}))",
            &r.body,
        );
        let (top, mail) = (&p["top"], &p["mail"]);
        assert_eq!(top["PayloadType"], "Configuration");
        assert_eq!(top["PayloadVersion"], 1);
        assert_eq!(mail["PayloadType"], "com.apple.mail.managed");
        assert_eq!(mail["EmailAccountType"], "EmailTypeIMAP");
        assert_eq!(mail["EmailAddress"], "anna@stadt.test");
        assert_eq!(mail["IncomingMailServerHostName"], "mx.test");
        assert_eq!(mail["IncomingMailServerPortNumber"], s.imaps.port());
        assert_eq!(mail["IncomingMailServerUseSSL"], true);
        assert_eq!(mail["IncomingMailServerUsername"], "anna");
        assert_eq!(
            mail["IncomingMailServerAuthentication"],
            "EmailAuthPassword"
        );
        assert_eq!(mail["IncomingPassword"], password.as_str());
        assert!(
            mail["EmailAccountDescription"]
                .as_str()
                .is_some_and(|d| d.contains(label))
        );
        assert!(
            mail.get("OutgoingMailServerHostName").is_none(),
            "no submission yet"
        );
        let uuids = [&top["PayloadUUID"], &mail["PayloadUUID"]];
        assert_ne!(uuids[0], uuids[1]);
        assert!(
            uuids
                .iter()
                .all(|u| u.as_str().is_some_and(|u| u.len() == 36))
        );
        assert_ne!(top["PayloadIdentifier"], mail["PayloadIdentifier"]);
    } else {
        skip("python3 (plistlib)");
    }
    // Another user cannot fetch a profile for anna's device, even knowing its password.
    let mut bert = logged_in(&s, "bert", "bert-pass-1").await;
    let bert_token = csrf(&mut bert, "/devices").await;
    let r = bert
        .post(
            "/devices/mobileconfig",
            &[
                ("label", label),
                ("password", &password),
                ("csrf", &bert_token),
            ],
        )
        .await;
    assert_eq!(r.status, 403);
    // Nor revoke it.
    let r = bert
        .post(
            "/devices/revoke",
            &[("label", label), ("csrf", &bert_token)],
        )
        .await;
    assert_eq!(r.status, 404);

    // Listed (escaped), with its last use; revoked in the web UI, refused over IMAP.
    let list = anna.get("/devices").await.text();
    assert!(list.contains("127.0.0.1"), "{list}");
    assert!(!list.contains(label));
    let r = anna
        .post("/devices/revoke", &[("label", label), ("csrf", &token)])
        .await;
    assert_eq!(r.status, 303);
    assert_eq!(r.header("location"), Some("/devices?done=revoked"));
    let list = anna.get("/devices?done=revoked").await.text();
    assert!(
        list.contains("role=\"status\">Das Gerät wurde gesperrt"),
        "{list}"
    );
    assert!(
        list.contains("Sie haben noch kein Gerät eingerichtet."),
        "{list}"
    );
    let reply = imap_login(&s, [127, 0, 0, 1], "anna", &password).await;
    assert!(
        reply.starts_with("t NO"),
        "revoked device still logs in: {reply}"
    );
    // The profile is gone with it.
    let r = anna
        .post(
            "/devices/mobileconfig",
            &[("label", label), ("password", &password), ("csrf", &token)],
        )
        .await;
    assert_eq!(r.status, 403);

    // The same audit entries as the CLI's.
    let audit = s.store.list_audit(0, 1000).await.expect("audit");
    let entries: Vec<_> = audit
        .iter()
        .filter(|e| e.action.starts_with("app_password."))
        .map(|e| {
            (
                e.action.as_str(),
                e.actor.as_str(),
                e.details["label"].clone(),
            )
        })
        .collect();
    assert_eq!(
        entries,
        [
            ("app_password.created", "anna", serde_json::json!(label)),
            ("app_password.revoked", "anna", serde_json::json!(label)),
        ]
    );
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thunderbird_autoconfig_is_served_without_login() {
    let s = setup(10, 50).await;
    let mut http = Http::new(s.web, &s.cert());
    for path in [
        "/mail/config-v1.1.xml?emailaddress=anna%40stadt.test",
        "/.well-known/autoconfig/mail/config-v1.1.xml?emailaddress=Anna%40Stadt.Test",
    ] {
        let r = http.get(path).await;
        assert_eq!(r.status, 200, "{path}: {}", r.text());
        assert_eq!(r.header("content-type"), Some("text/xml; charset=utf-8"));
        if !have("python3") {
            skip("python3 (xml.etree)");
            continue;
        }
        let x = python(
            "import sys,json\nimport xml.etree.ElementTree as E\n\
             r = E.parse(sys.stdin.buffer).getroot()\n\
             p = r.find('emailProvider')\n\
             print(json.dumps({'version': r.get('version'), 'id': p.get('id'),\n\
               'domains': [d.text for d in p.findall('domain')],\n\
               'outgoing': len(p.findall('outgoingServer')),\n\
               'in': [{'type': i.get('type'), **{c.tag: c.text for c in i}} for i in p.findall('incomingServer')]}))",
            &r.body,
        );
        assert_eq!(x["version"], "1.1");
        assert_eq!(x["id"], "stadt.test");
        assert!(
            x["domains"]
                .as_array()
                .is_some_and(|d| d.contains(&serde_json::json!("stadt.test")))
        );
        assert_eq!(x["outgoing"], 0, "no submission yet");
        let incoming: Vec<_> = x["in"]
            .as_array()
            .expect("incoming")
            .iter()
            .map(|i| {
                (
                    i["type"].as_str().unwrap_or_default().to_owned(),
                    i["hostname"].as_str().unwrap_or_default().to_owned(),
                    i["port"].as_str().unwrap_or_default().to_owned(),
                    i["socketType"].as_str().unwrap_or_default().to_owned(),
                    i["username"].as_str().unwrap_or_default().to_owned(),
                    i["authentication"].as_str().unwrap_or_default().to_owned(),
                )
            })
            .collect();
        let server = |port: u16, socket: &str| {
            (
                "imap".to_owned(),
                "mx.test".to_owned(),
                port.to_string(),
                socket.to_owned(),
                "%EMAILADDRESS%".to_owned(),
                "password-cleartext".to_owned(),
            )
        };
        assert_eq!(
            incoming,
            [
                server(s.imaps.port(), "SSL"),
                server(s.imap.port(), "STARTTLS")
            ]
        );
    }
    // No address: the served domain of the host asked, else the first.
    assert_eq!(
        http.get("/.well-known/autoconfig/mail/config-v1.1.xml")
            .await
            .status,
        200
    );
    // A domain not served, a malformed or overlong address: refused.
    let long = format!(
        "/mail/config-v1.1.xml?emailaddress={}%40stadt.test",
        "a".repeat(300)
    );
    for (path, status) in [
        (
            "/mail/config-v1.1.xml?emailaddress=anna%40evil.example",
            404,
        ),
        ("/mail/config-v1.1.xml?emailaddress=stadt.test", 400),
        ("/mail/config-v1.1.xml?emailaddress=%40stadt.test", 400),
        (long.as_str(), 400),
    ] {
        assert_eq!(http.get(path).await.status, status, "{path}");
    }
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_logins_count_across_web_and_imap_and_bans_hold_for_both() {
    let s = setup(100, 4).await;
    let app = "imap-app-password-1";
    let anna = s.store.user_by_login("anna").await.expect("anna");
    s.store
        .create_app_password(
            anna.id,
            "iPhone",
            &store::token::hash(app),
            store::now_millis(),
        )
        .await
        .expect("device");
    // Two IMAP failures, then the web's failure is the third: 4 × 100 ms.
    for _ in 0..2 {
        assert!(
            imap_login(&s, [127, 0, 0, 1], "anna", "falsch")
                .await
                .starts_with("t NO")
        );
    }
    let mut web = Http::new(s.web, &s.cert());
    let started = Instant::now();
    let r = try_login(&mut web, "anna", "falsch").await;
    assert_eq!(r.status, 401);
    assert!(
        started.elapsed() >= Duration::from_millis(400),
        "{:?}",
        started.elapsed()
    );
    // The fourth (web) failure bans the address for IMAP too.
    assert_eq!(
        try_login(&mut web, "anna@stadt.test", "falsch")
            .await
            .status,
        401
    );
    let reply = imap_login(&s, [127, 0, 0, 1], "anna", app).await;
    assert!(
        reply.starts_with("t NO") && reply.contains("UNAVAILABLE"),
        "{reply}"
    );
    // And the right password on the web is refused too, with a page that says to wait.
    let r = try_login(&mut web, "anna", PASSWORD).await;
    assert_eq!(r.status, 429, "{}", r.text());
    let page = r.text();
    assert!(
        page.contains("<h1>Anmeldung vorübergehend gesperrt</h1>"),
        "{page}"
    );
    assert!(page.contains("Die Anmeldung ist gesperrt bis"), "{page}");
    assert!(!web.cookies.contains_key("__Host-ratspost"));
    // Another address is not banned: anna logs in from there over IMAP.
    let reply = imap_login(&s, [127, 0, 0, 2], "anna", app).await;
    assert!(reply.starts_with("t OK"), "{reply}");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parallel_web_guesses_are_bounded_by_the_ban() {
    let s = setup(50, 5).await;
    let mut clients = Vec::new();
    for _ in 0..20 {
        let mut http = Http::new(s.web, &s.cert());
        let form = http.get("/login").await;
        let token = form.hidden("csrf").expect("csrf");
        clients.push((http, token));
    }
    let started = Instant::now();
    let guesses: Vec<_> = clients
        .into_iter()
        .enumerate()
        .map(|(i, (mut http, token))| {
            tokio::spawn(async move {
                let guess = format!("guess-{i}");
                http.post(
                    "/login",
                    &[
                        ("login", "anna"),
                        ("password", &guess),
                        ("csrf", &token),
                        ("next", "/"),
                    ],
                )
                .await
                .status
            })
        })
        .collect();
    let mut statuses = Vec::new();
    for g in guesses {
        statuses.push(g.await.expect("task"));
    }
    statuses.sort_unstable();
    // Only `ban_after` guesses were checked; the rest were refused unchecked.
    assert_eq!(
        statuses.iter().filter(|&&s| s == 401).count(),
        5,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|&&s| s == 429).count(),
        15,
        "{statuses:?}"
    );
    // The checked ones did not each sleep the first delay alone: the slowest waited 16 × 50 ms.
    assert!(
        started.elapsed() >= Duration::from_millis(800),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(
        s.store
            .login_failures_of_ip("127.0.0.1", store::now_millis())
            .await
            .expect("count"),
        5
    );
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_login_history_shows_web_and_imap_and_users_end_their_own_sessions() {
    let s = setup(10, 50).await;
    let mut a = logged_in(&s, "anna", PASSWORD).await;
    let token = csrf(&mut a, "/devices").await;
    let r = a
        .post("/devices", &[("label", "Diensthandy"), ("csrf", &token)])
        .await;
    let password = shown_password(&r.text());
    assert!(
        imap_login(&s, [127, 0, 0, 1], "anna", &password)
            .await
            .starts_with("t OK")
    );
    assert!(
        imap_login(&s, [127, 0, 0, 7], "anna", &password)
            .await
            .starts_with("t OK")
    );
    let mut b = logged_in(&s, "anna", PASSWORD).await;

    let page = a.get("/logins").await.text();
    let rows: Vec<&str> = page.split("<tr>").filter(|r| r.contains("<td>")).collect();
    let row = |device: &str, ip: &str| {
        rows.iter()
            .find(|r| r.contains(&format!("<td>{device}</td>")) && r.contains(&format!("<td>{ip}")))
            .unwrap_or_else(|| panic!("no row {device} {ip}: {page}"))
            .to_owned()
    };
    // The first web login from 127.0.0.1 was new; the device from there was not; from
    // 127.0.0.7 it was.
    assert!(
        row("Web (Browser)", "127.0.0.1").contains("neue Adresse"),
        "{page}"
    );
    assert!(
        !row("Diensthandy", "127.0.0.1").contains("neue Adresse"),
        "{page}"
    );
    assert!(
        row("Diensthandy", "127.0.0.7").contains("neue Adresse"),
        "{page}"
    );
    // Bert sees none of it.
    let mut bert = logged_in(&s, "bert", "bert-pass-1").await;
    let bert_page = bert.get("/logins").await.text();
    assert!(!bert_page.contains("Diensthandy") && !bert_page.contains("127.0.0.7"));

    // Two sessions of anna's, this one marked; the other can be ended from here.
    assert_eq!(page.matches("name=\"session\"").count(), 1, "{page}");
    assert!(page.contains("<strong>diese Sitzung</strong>"));
    let handle = a.get("/logins").await.hidden("session").expect("handle");
    // Bert cannot end it.
    let bert_token = csrf(&mut bert, "/logins").await;
    let r = bert
        .post(
            "/logins/sessions/end",
            &[("session", &handle), ("csrf", &bert_token)],
        )
        .await;
    assert_eq!(r.status, 404);
    assert_eq!(
        b.get("/logins").await.status,
        200,
        "bert ended anna's session"
    );
    let token = csrf(&mut a, "/logins").await;
    let r = a
        .post(
            "/logins/sessions/end",
            &[("session", &handle), ("csrf", &token)],
        )
        .await;
    assert_eq!(r.status, 303);
    assert_eq!(r.header("location"), Some("/logins?done=one"));
    assert!(
        a.get("/logins?done=one")
            .await
            .text()
            .contains("Die Sitzung wurde beendet.")
    );
    assert_eq!(
        b.get("/logins").await.status,
        303,
        "the ended session still works"
    );
    // All others: b logs in again (twice), a ends them, a stays.
    let mut b = logged_in(&s, "anna", PASSWORD).await;
    let mut c = logged_in(&s, "anna", PASSWORD).await;
    let r = a
        .post("/logins/sessions/end-others", &[("csrf", &token)])
        .await;
    assert_eq!(r.header("location"), Some("/logins?done=others"));
    assert_eq!(b.get("/logins").await.status, 303);
    assert_eq!(c.get("/logins").await.status, 303);
    assert_eq!(a.get("/logins").await.status, 200);
    assert_eq!(
        bert.get("/logins").await.status,
        200,
        "another user's session ended"
    );
    // Without the form token nothing ends.
    let r = a
        .post("/logins/sessions/end-others", &[("csrf", "x")])
        .await;
    assert_eq!(r.status, 400);
    s.stop().await;
}
