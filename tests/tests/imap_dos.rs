//! Issue #13 §3: no IMAP command holds a core, no client exhausts memory. Huge sequence sets
//! and wildcard patterns while SMTP and other users' logins stay prompt, the limits before
//! login, sessions ending when their credentials go, and no credentials or mail in a trace
//! log.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use ratspost_tests::client::Client;
use ratspost_tests::imap::Imap;
use ratspost_tests::server::Server;
use store::Role;
use store::testing::TestDb;

const PHONE: &str = "phone-app-password-1";
const TABLET: &str = "tablet-app-password-2";
const BERT: &str = "bert-app-password-3";

/// A server with anna (devices iPhone and iPad) and bert (one device), `n` messages of
/// about `size` bytes in anna's INBOX (stored directly: the classifier is not under test).
async fn setup(imap_toml: &str, n: usize, size: usize) -> Server {
    setup_on(TestDb::sqlite(), imap_toml, n, size).await
}

async fn setup_on(db: TestDb, imap_toml: &str, n: usize, size: usize) -> Server {
    let s = Server::start_full(
        db,
        "",
        &format!("[imap]\nlisten = \"127.0.0.1:0\"\nlisten_tls = \"127.0.0.1:0\"\n{imap_toml}"),
    )
    .await;
    let now = store::now_millis();
    let anna = s.add_user("anna", Role::Staff, &["anna@stadt.test"]).await;
    let bert = s.add_user("bert", Role::Staff, &["bert@stadt.test"]).await;
    for (user, label, password) in [
        (anna, "iPhone", PHONE),
        (anna, "iPad", TABLET),
        (bert, "Laptop", BERT),
    ] {
        s.store
            .create_app_password(user, label, &store::token::hash(password), now)
            .await
            .expect("app password");
    }
    s.store
        .ensure_mailboxes(anna, now)
        .await
        .expect("mailboxes");
    let inbox = s.store.mailbox(anna, "INBOX").await.expect("inbox");
    let line = "Sehr geehrte Damen und Herren, anbei die Unterlagen zur Sitzung.\r\n";
    let body = line.repeat(size / line.len() + 1);
    for i in 0..n {
        let raw = format!(
            "From: Amt <amt@verwaltung.test>\r\nTo: anna@stadt.test\r\nSubject: Vorgang {i}\r\n\
Message-ID: <{i}@verwaltung.test>\r\nMIME-Version: 1.0\r\n\
Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\n{body}\r\n--b\r\n\
Content-Type: text/html\r\n\r\n<p>{body}</p>\r\n--b--\r\n"
        );
        s.store
            .append_entry(&inbox, raw.as_bytes(), &[], now)
            .await
            .expect("append");
    }
    s
}

type Tls = tokio_rustls::client::TlsStream<tokio::net::TcpStream>;

async fn logged_in(s: &Server, from: IpAddr, user: &str, password: &str) -> Imap<Tls> {
    let mut c = Imap::connect_tls_from(from, s.imaps, &s.cert()).await;
    assert!(c.line().await.starts_with("* OK"));
    c.send(&format!("l LOGIN {user} {password}\r\n")).await;
    let reply = c.until("l ").await;
    assert!(
        reply.last().is_some_and(|l| l.starts_with("l OK")),
        "{reply:?}"
    );
    c
}

fn ip(last: u8) -> IpAddr {
    IpAddr::from([127, 0, 0, last])
}

/// The answers to the worst commands are right, and come at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn huge_sets_and_deep_patterns_cost_what_the_mailbox_holds() {
    let s = setup("", 5, 200).await;
    let mut c = logged_in(&s, ip(1), "anna", PHONE).await;
    c.send("s SELECT INBOX\r\n").await;
    c.until("s OK").await;
    let started = Instant::now();
    for (command, want) in [
        ("a UID SEARCH UID 1:4294967295", "* SEARCH 1 2 3 4 5"),
        ("b SEARCH 1:4294967295", "* SEARCH 1 2 3 4 5"),
        ("c UID SEARCH UID 4:4294967295,2", "* SEARCH 2 4 5"),
        ("d SEARCH NOT UID 2:4294967295", "* SEARCH 1"),
        ("e UID SEARCH 3:* TEXT Unterlagen", "* SEARCH 3 4 5"),
    ] {
        c.send(&format!("{command}\r\n")).await;
        let tag = &command[..1];
        let lines = c.until(&format!("{tag} ")).await;
        assert!(lines.iter().any(|l| l == want), "{command}: {lines:?}");
        assert!(
            lines
                .last()
                .is_some_and(|l| l.starts_with(&format!("{tag} OK")))
        );
    }
    c.send("f FETCH 1:4294967295 (UID)\r\n").await;
    let lines = c.until("f ").await;
    assert_eq!(
        lines.iter().filter(|l| l.starts_with("* ")).count(),
        5,
        "{lines:?}"
    );
    c.send("g UID FETCH 4294967295:1 (FLAGS)\r\n").await;
    let lines = c.until("g ").await;
    assert_eq!(lines.len(), 6, "{lines:?}");
    c.send(&format!("h LIST \"\" \"{}Z\"\r\n", "*".repeat(30)))
        .await;
    assert_eq!(c.until("h ").await, ["h OK LIST done"]);
    c.send(&format!("i LIST \"\" \"{}Q\"\r\n", "%*".repeat(40)))
        .await;
    assert_eq!(c.until("i ").await, ["i OK LIST done"]);
    // Expanding 1:4294967295 alone takes minutes; the backtracking LIST far longer.
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "{:?}",
        started.elapsed()
    );
    s.stop().await;
}

/// The issue's own requirement: while attackers run the worst commands, an SMTP greeting and
/// another user's IMAP login answer within one second.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attackers_do_not_stall_smtp_or_another_users_login() {
    let s = setup("", 150, 40_000).await;
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut attackers = Vec::new();
    for (n, commands) in [
        (
            2u8,
            vec!["UID SEARCH UID 1:4294967295", "SEARCH TEXT nirgendwo"],
        ),
        (
            3,
            vec![
                "UID SEARCH UID 1:4294967295 BODY nirgends",
                "FETCH 1:* BODYSTRUCTURE",
            ],
        ),
        (
            4,
            vec![
                "LIST \"\" \"*************************Z\"",
                "UID SEARCH OR TEXT a TEXT b",
            ],
        ),
        (
            5,
            vec![
                "THREAD REFERENCES UTF-8 ALL",
                "SORT (SUBJECT REVERSE DISPLAYFROM) UTF-8 TEXT Sitzung",
            ],
        ),
    ] {
        let mut c = logged_in(&s, ip(n), "anna", PHONE).await;
        c.send("s SELECT INBOX\r\n").await;
        c.until("s OK").await;
        let stop = std::sync::Arc::clone(&stop);
        attackers.push(tokio::spawn(async move {
            let mut rounds = 0u32;
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                for (i, command) in commands.iter().enumerate() {
                    c.send(&format!("x{i} {command}\r\n")).await;
                    c.until(&format!("x{i} ")).await;
                }
                rounds += 1;
            }
            rounds
        }));
    }
    // Let the attack get going.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut worst = Duration::ZERO;
    for round in 0..5u8 {
        let started = Instant::now();
        let greeting = Client::connect(s.smtp).await.reply().await;
        assert_eq!(greeting.code, 220);
        let smtp = started.elapsed();
        let started = Instant::now();
        let mut bert = Imap::connect_tls_from(ip(10 + round), s.imaps, &s.cert()).await;
        assert!(bert.line().await.starts_with("* OK"));
        bert.send(&format!("b LOGIN bert {BERT}\r\n")).await;
        let reply = bert.until("b ").await;
        assert!(
            reply.last().is_some_and(|l| l.starts_with("b OK")),
            "{reply:?}"
        );
        let login = started.elapsed();
        worst = worst.max(smtp).max(login);
        assert!(
            smtp < Duration::from_secs(1) && login < Duration::from_secs(1),
            "round {round}: SMTP greeting after {smtp:?}, IMAP login after {login:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    for a in attackers {
        let rounds = tokio::time::timeout(Duration::from_secs(120), a)
            .await
            .expect("attackers finish")
            .expect("attacker");
        assert!(rounds >= 1, "the attack ran");
    }
    eprintln!("worst latency under attack: {worst:?}");
    s.stop().await;
}

/// Before login, a literal is at most `imap.max_login_literal` bytes: refused before `+`.
/// After login the message limit applies, and commands pipelined behind LOGIN survive the
/// change of limits.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn before_login_literals_are_small_and_after_it_messages_fit() {
    let s = setup("", 1, 100).await;
    let mut c = Imap::connect_tls(s.imaps, &s.cert()).await;
    c.line().await;
    c.send("a LOGIN {52428800}\r\n").await;
    let reply = c.line().await;
    assert!(
        reply.starts_with("a BAD") && reply.contains("max_login_literal"),
        "50 MiB literal before login: {reply}"
    );
    c.send("b LOGIN {9000}\r\n").await;
    assert!(c.line().await.starts_with("b BAD"));
    // A name as a literal, within the limit, is fine.
    c.send("c LOGIN {4}\r\n").await;
    assert!(c.line().await.starts_with('+'));
    c.send(&format!("anna {PHONE}\r\nd SELECT INBOX\r\n")).await;
    let lines = c.until("d ").await;
    assert!(lines.iter().any(|l| l.starts_with("c OK")), "{lines:?}");
    assert!(
        lines.last().is_some_and(|l| l.starts_with("d OK")),
        "the command pipelined behind LOGIN was lost: {lines:?}"
    );
    let message = format!("Subject: gross\r\n\r\n{}\r\n", "x".repeat(20_000));
    c.send(&format!("e APPEND Drafts {{{}}}\r\n", message.len()))
        .await;
    assert!(
        c.line().await.starts_with('+'),
        "after login a message fits"
    );
    c.send(&format!("{message}\r\n")).await;
    let lines = c.until("e ").await;
    assert!(
        lines.last().is_some_and(|l| l.starts_with("e OK")),
        "{lines:?}"
    );
    s.stop().await;
}

/// The login deadline is absolute: a byte every 300 ms does not extend it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_trickling_bytes_is_out_at_the_login_deadline() {
    let s = setup("login_timeout_secs = 2\n", 0, 0).await;
    let mut c = Imap::connect_tls(s.imaps, &s.cert()).await;
    c.line().await;
    let started = Instant::now();
    let closed = loop {
        if started.elapsed() > Duration::from_secs(15) {
            break false;
        }
        c.send("a").await;
        if let Ok(line) = tokio::time::timeout(Duration::from_millis(300), c.line_or_eof()).await {
            match line {
                Some(l) if l.starts_with("* BYE") => continue,
                Some(l) => panic!("unexpected {l}"),
                None => break true,
            }
        }
    };
    assert!(closed, "still connected after {:?}", started.elapsed());
    assert!(started.elapsed() < Duration::from_secs(10));
    s.stop().await;
}

/// Revoking a device ends its open sessions at once (`* BYE`), not the user's others;
/// changing the password ends every session of the user.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoking_a_device_or_changing_the_password_ends_sessions() {
    for db in [
        Some(TestDb::sqlite()),
        TestDb::postgres("imap_dos_revoke").await,
    ] {
        let Some(db) = db else { continue };
        let s = setup_on(db, "", 1, 100).await;
        let anna = s.store.user_by_login("anna").await.expect("anna");
        let mut phone = logged_in(&s, ip(1), "anna", PHONE).await;
        let mut tablet = logged_in(&s, ip(1), "anna", TABLET).await;
        let mut bert = logged_in(&s, ip(2), "bert", BERT).await;
        tablet.send("i SELECT INBOX\r\ni IDLE\r\n").await;
        tablet.until("+ ").await;
        s.store
            .revoke_app_password(anna.id, "iPhone", store::now_millis())
            .await
            .expect("revoke");
        let bye = phone.line().await;
        assert!(bye.starts_with("* BYE"), "{bye}");
        assert_eq!(phone.line_or_eof().await, None);
        // The tablet, idling, goes on.
        tablet.send("DONE\r\n").await;
        tablet.until("i OK").await;
        tablet.send("n NOOP\r\n").await;
        tablet.until("n OK").await;
        s.store
            .set_password_hash("anna", &store::password::hash("neu-1234").expect("hash"))
            .await
            .expect("password");
        let bye = tablet.line().await;
        assert!(bye.starts_with("* BYE"), "{bye}");
        // bert is not touched.
        bert.send("n NOOP\r\n").await;
        bert.until("n OK").await;
        s.stop().await;
    }
}

/// `RUST_LOG=trace` logs neither the password (LOGIN, AUTHENTICATE PLAIN) nor a fetched
/// body. One thread runs the whole server, so the test's subscriber sees all its events.
#[test]
fn a_trace_log_holds_no_credentials_and_no_mail() {
    let log = ratspost_tests::capture::Captured::default();
    let subscriber = relay::logging::subscriber(
        tracing_subscriber::EnvFilter::new("trace"),
        log.clone(),
        false,
    );
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    tracing::subscriber::with_default(subscriber, || {
        rt.block_on(async {
            let s = setup("", 1, 100).await;
            let mut c = logged_in(&s, ip(1), "anna", PHONE).await;
            c.send("s SELECT INBOX\r\nf FETCH 1 BODY[]\r\n").await;
            let lines = c.until("f ").await;
            assert!(lines.iter().any(|l| l.contains("Damen und Herren")));
            c.send("o LOGOUT\r\n").await;
            c.until("o ").await;
            let mut c = Imap::connect_tls(s.imaps, &s.cert()).await;
            c.line().await;
            let plain = base64(format!("\0bert\0{BERT}").as_bytes());
            c.send(&format!("p AUTHENTICATE PLAIN {plain}\r\n")).await;
            let reply = c.until("p ").await;
            assert!(
                reply.last().is_some_and(|l| l.starts_with("p OK")),
                "{reply:?}"
            );
            s.stop().await;
        });
    });
    let text = log.text();
    assert!(text.contains("imap: logged in"), "nothing captured: {text}");
    for secret in [PHONE, BERT, "Damen und Herren", "AGJlcnQA"] {
        assert!(!text.contains(secret), "{secret:?} in the trace log");
    }
}

fn base64(bytes: &[u8]) -> String {
    relay::encoding::base64(bytes)
}

/// Resident memory of process `pid`, KiB.
fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

/// A FETCH of a whole large mailbox goes out batch by batch: a client that asks for
/// 128 MiB of bodies and does not read them holds the daemon at about one batch, not at
/// the whole answer (the real binary as its own process, so its memory is its own).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_big_fetch_goes_out_batch_by_batch() {
    use ratspost_tests::daemon::{Daemon, admin_password, enrol, ratspost_as_ok, write_config};
    const MESSAGES: usize = 512;
    const SIZE: usize = 256 * 1024;
    let db = TestDb::sqlite();
    let dir = tempfile::tempdir().expect("tempdir");
    let config = write_config(dir.path(), &db.url, "");
    enrol(&config, "anna", "anna@stadt.test", "anna-pass-1");
    let created = ratspost_as_ok(
        &config,
        &[
            "app-password",
            "create",
            "anna",
            "--label",
            "phone",
            "--by",
            "admin",
            "--json",
        ],
        &admin_password(&config),
        None,
    );
    let password = serde_json::from_str::<serde_json::Value>(&created).expect("json")["password"]
        .as_str()
        .expect("password")
        .to_owned();
    // The messages go straight into the store (the intake is not under test).
    let store = db.open().await;
    let anna = store.user_by_login("anna").await.expect("anna");
    let now = store::now_millis();
    store
        .ensure_mailboxes(anna.id, now)
        .await
        .expect("mailboxes");
    let inbox = store.mailbox(anna.id, "INBOX").await.expect("inbox");
    let line = "Sehr geehrte Damen und Herren, anbei die Unterlagen zur Sitzung.\r\n";
    let body = line.repeat(SIZE / line.len());
    for i in 0..MESSAGES {
        let raw = format!("Subject: Vorgang {i}\r\nMessage-ID: <{i}@amt.test>\r\n\r\n{body}");
        store
            .append_entry(&inbox, raw.as_bytes(), &[], now)
            .await
            .expect("append");
    }
    let daemon = Daemon::start(&config);
    let cert = relay::config::Config::load(&config)
        .expect("config")
        .tls
        .cert;
    let mut c = Imap::connect_tls(daemon.imaps, &cert).await;
    assert!(c.line().await.starts_with("* OK"));
    c.send(&format!("l LOGIN anna {password}\r\n")).await;
    assert!(
        c.until("l ")
            .await
            .last()
            .is_some_and(|l| l.starts_with("l OK"))
    );
    c.send("s SELECT INBOX\r\n").await;
    c.until("s OK").await;
    let before = rss_kib(daemon.pid());
    c.send("f FETCH 1:* BODY.PEEK[]\r\n").await;
    // The client reads nothing for a while; the daemon's memory is sampled meanwhile.
    let mut peak = before;
    for _ in 0..30 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        peak = peak.max(rss_kib(daemon.pid()));
    }
    let grown_mib = peak.saturating_sub(before) / 1024;
    let total_mib = (MESSAGES * SIZE / (1024 * 1024)) as u64;
    println!("FETCH of {total_mib} MiB, not read: the daemon grew by {grown_mib} MiB");
    assert!(
        grown_mib < total_mib / 2,
        "the daemon grew by {grown_mib} MiB while a {total_mib} MiB answer waited to be read"
    );
    // Then everything arrives, in order, with the tagged OK last.
    let mut fetched = 0;
    loop {
        let l = c.line().await;
        if l.starts_with("* ") && l.contains(" FETCH ") {
            fetched += 1;
        }
        if l.starts_with("f ") {
            assert!(l.starts_with("f OK"), "{l}");
            break;
        }
    }
    assert_eq!(fetched, MESSAGES);
    drop(c);
    daemon.terminate();
}

/// A burst of devices behind one address (an office's NAT after a restart) all log in: a
/// right app password is checked without being counted as a possible failure, so even 30
/// at once with `ban_after = 5` are not banned; wrong ones still are.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_right_logins_from_one_address_is_not_banned() {
    let s = setup("ban_after = 5\nfailure_delay_ms = 10\n", 0, 0).await;
    let tasks: Vec<_> = (0..30)
        .map(|_| {
            let (imaps, cert) = (s.imaps, s.cert());
            tokio::spawn(async move {
                let mut c = Imap::connect_tls(imaps, &cert).await;
                c.line().await;
                c.send(&format!("l LOGIN anna {PHONE}\r\n")).await;
                c.until("l ").await.pop().expect("reply")
            })
        })
        .collect();
    for t in tasks {
        let reply = t.await.expect("task");
        assert!(reply.starts_with("l OK"), "a right login refused: {reply}");
    }
    // Wrong passwords count as before: five, and the address is banned, right password or not.
    for _ in 0..5 {
        let mut c = Imap::connect_tls(s.imaps, &s.cert()).await;
        c.line().await;
        c.send("l LOGIN anna falsch\r\n").await;
        assert!(
            c.until("l ")
                .await
                .pop()
                .expect("reply")
                .starts_with("l NO")
        );
    }
    let mut c = Imap::connect_tls(s.imaps, &s.cert()).await;
    c.line().await;
    c.send(&format!("l LOGIN anna {PHONE}\r\n")).await;
    let reply = c.until("l ").await.pop().expect("reply");
    assert!(reply.starts_with("l NO"), "banned, yet let in: {reply}");
    s.stop().await;
}
