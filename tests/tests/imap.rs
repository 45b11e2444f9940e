//! The IMAP server with real clients over TLS: Python's imaplib on implicit TLS and with
//! STARTTLS, the content rule (a sensitive message is only ever served as its notice — by
//! FETCH, SEARCH and COPY alike), app passwords, brute-force delays, two sessions and IDLE
//! seeing a message that SMTP just accepted.

use std::time::{Duration, Instant};

use ratspost_tests::imap::Imap;
use ratspost_tests::server::Server;
use ratspost_tests::{have, skip};
use store::Role;
use store::testing::TestDb;

const ANNA: &str = "anna@stadt.test";
const STEUER_ID: &str = "86095742719";

fn mail(id: &str, subject: &str, body: &str) -> Vec<u8> {
    ratspost_tests::client::office_mail(id, ANNA, subject, body)
}

/// A server with anna, an app password for her iPhone (returned), a clean and a sensitive
/// message in her INBOX.
async fn setup(db: TestDb, imap_toml: &str) -> (Server, String) {
    let s = Server::start_full(
        db,
        "",
        &format!("[imap]\nlisten = \"127.0.0.1:0\"\nlisten_tls = \"127.0.0.1:0\"\n{imap_toml}"),
    )
    .await;
    let anna = s.add_user("anna", Role::Staff, &[ANNA]).await;
    let password = "iphone-app-password-1";
    s.give_app_password(anna, "iPhone", password).await;
    // One after the other: messages are filed (and get their UIDs) when their processing
    // ends, and the classifier works on several at once.
    s.deliver(
        ANNA,
        &mail("clean", "Sitzung", "Die Sitzung beginnt um 18 Uhr."),
    )
    .await;
    s.classified().await;
    s.deliver(
        ANNA,
        &mail(
            "secret",
            "Steuer",
            &format!("Ihre Steuer-ID {STEUER_ID} und Ihr Befund."),
        ),
    )
    .await;
    s.classified().await;
    (s, password.to_owned())
}

/// Runs a Python imaplib script with `PORT`, `CAFILE`, `USER`, `PASSWORD` set; returns
/// stdout (the script prints JSON).
async fn python(s: &Server, port: u16, password: &str, script: &str) -> serde_json::Value {
    let out = tokio::process::Command::new("python3")
        .arg("-c")
        .arg(script)
        .env("PORT", port.to_string())
        .env("CAFILE", s.cert())
        .env("USER", "anna")
        .env("PASSWORD", password)
        .output()
        .await
        .expect("python3");
    assert!(
        out.status.success(),
        "imaplib script failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!("{e}: {}", String::from_utf8_lossy(&out.stdout));
    })
}

const PRELUDE: &str = r#"
import imaplib, json, os, ssl
ctx = ssl.create_default_context(cafile=os.environ["CAFILE"])
def fetch_all(m, mailbox):
    typ, _ = m.select(mailbox)
    assert typ == "OK", typ
    typ, data = m.uid("FETCH", "1:*", "(UID FLAGS RFC822.SIZE BODY.PEEK[])")
    assert typ == "OK", (typ, data)
    out = []
    for item in data:
        if isinstance(item, tuple):
            out.append({"meta": item[0].decode(), "body": item[1].decode("utf-8", "replace")})
    return out
"#;

async fn content_rule(db: TestDb) {
    if !have("python3") {
        return skip("python3 (imaplib)");
    }
    let (s, password) = setup(db, "").await;
    // A third message whose text is only found decoded: quoted-printable ISO-8859-1.
    s.deliver(ANNA, b"From: amt@verwaltung.test\r\nTo: anna@stadt.test\r\nSubject: =?utf-8?q?Gr=C3=BC=C3=9Fe?=\r\n\
MIME-Version: 1.0\r\nContent-Type: text/plain; charset=iso-8859-1\r\n\
Content-Transfer-Encoding: quoted-printable\r\n\r\nSitzung f=FCr Montag\r\n",
    )
    .await;
    s.classified().await;
    let script = format!(
        r#"{PRELUDE}
m = imaplib.IMAP4_SSL("localhost", int(os.environ["PORT"]), ssl_context=ctx)
caps = m.capabilities
m.login(os.environ["USER"], os.environ["PASSWORD"])
inbox = fetch_all(m, "INBOX")
typ, hits = m.uid("SEARCH", None, "TEXT", "{STEUER_ID}")
typ, body_hits = m.uid("SEARCH", None, "BODY", "Sitzung")
typ, sent_hits = m.uid("SEARCH", None, "SENTON", "2-Nov-2026")
m.literal = "für".encode()
typ, utf8_hits = m.uid("SEARCH", "CHARSET", "UTF-8", "TEXT")
m.literal = "GRÜßE".encode()
typ, subject_hits = m.uid("SEARCH", "CHARSET", "UTF-8", "SUBJECT")
copied, _ = m.uid("COPY", "1:*", "Archive")
archive = fetch_all(m, "Archive")
m.select("INBOX")
typ, _ = m.uid("STORE", "1", "+FLAGS", "(\\Flagged)")
typ, flags = m.uid("FETCH", "1", "(FLAGS)")
typ, boxes = m.list()
typ, structure = m.uid("FETCH", "1", "(ENVELOPE BODYSTRUCTURE)")
m.logout()
print(json.dumps({{"caps": list(caps), "inbox": inbox, "hits": hits[0].decode(),
    "body_hits": body_hits[0].decode(), "utf8_hits": utf8_hits[0].decode(), "sent_hits": sent_hits[0].decode(),
    "subject_hits": subject_hits[0].decode(), "copied": copied, "archive": archive,
    "flags": flags[0].decode(), "boxes": [b.decode() for b in boxes],
    "structure": structure[0].decode() if isinstance(structure[0], bytes) else str(structure)}}))
"#
    );
    let r = python(&s, s.imaps.port(), &password, &script).await;
    let inbox = r["inbox"].as_array().expect("inbox");
    assert_eq!(inbox.len(), 3, "{r}");
    let clean = inbox[0]["body"].as_str().expect("body");
    assert!(clean.contains("Die Sitzung beginnt um 18 Uhr."), "{clean}");
    let notice = inbox[1]["body"].as_str().expect("body");
    assert!(
        notice.contains("Vertrauliche Nachricht"),
        "not a notice: {notice}"
    );
    for (what, text) in [
        ("INBOX", notice),
        (
            "Archive",
            r["archive"][1]["body"].as_str().expect("archive body"),
        ),
    ] {
        assert!(
            !text.contains(STEUER_ID),
            "the original leaked over IMAP from {what}:\n{text}"
        );
        assert!(
            !text.contains("Befund"),
            "the original leaked over IMAP from {what}"
        );
    }
    // RFC822.SIZE is the size of what is served.
    let meta = inbox[1]["meta"].as_str().expect("meta");
    assert!(
        meta.contains(&format!("RFC822.SIZE {}", notice.len())),
        "{meta}"
    );
    assert_eq!(r["hits"], "", "SEARCH revealed the original's text");
    assert_eq!(r["body_hits"], "1 3");
    assert_eq!(r["utf8_hits"], "3", "UTF-8 search in a decoded body");
    // SENTON looks at the Date header: only the clean message was written on 2 November (the
    // notice for the sensitive one carries its own date, the third message none).
    assert_eq!(r["sent_hits"], "1");
    assert_eq!(
        r["subject_hits"], "3",
        "case-insensitive search in an encoded subject"
    );
    assert_eq!(r["copied"], "OK");
    assert!(
        r["flags"].as_str().is_some_and(|f| f.contains("\\Flagged")),
        "{r}"
    );
    let structure = r["structure"].as_str().expect("structure");
    assert!(
        structure.contains("ENVELOPE (\"Mon, 2 Nov 2026 10:00:00 +0100\" \"Sitzung\"")
            && structure.contains("((\"Amt\" NIL \"amt\" \"verwaltung.test\"))")
            && structure.contains("\"<clean@verwaltung.test>\"")
            && structure.to_ascii_lowercase().contains(
                "bodystructure (\"text\" \"plain\" (\"charset\" \"us-ascii\") nil nil \"7bit\" 32 1"
            ),
        "{structure}"
    );
    let boxes = r["boxes"].to_string();
    for special in [
        "\\\\Sent",
        "\\\\Drafts",
        "\\\\Trash",
        "\\\\Junk",
        "\\\\Archive",
    ] {
        assert!(boxes.contains(special), "{special} missing: {boxes}");
    }
    for cap in [
        "IDLE",
        "UIDPLUS",
        "MOVE",
        "CONDSTORE",
        "ENABLE",
        "ID",
        "NAMESPACE",
        "UNSELECT",
    ] {
        assert!(
            r["caps"].as_array().expect("caps").iter().any(|c| c == cap),
            "{cap} not offered: {}",
            r["caps"]
        );
    }
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sensitive_mail_is_only_served_as_its_notice_sqlite() {
    content_rule(TestDb::sqlite()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sensitive_mail_is_only_served_as_its_notice_postgres() {
    if let Some(db) = TestDb::postgres("imap_content_rule").await {
        content_rule(db).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_needs_tls_and_pipelined_commands_before_starttls_are_dropped() {
    let (s, password) = setup(TestDb::sqlite(), "").await;
    // Raw: LOGIN before STARTTLS is refused, the capability says so.
    let mut c = Imap::connect(s.imap).await;
    let greeting = c.line().await;
    assert!(greeting.starts_with("* OK"), "{greeting}");
    c.send("a1 CAPABILITY\r\n").await;
    let caps = c.line().await;
    assert!(
        caps.contains("STARTTLS") && caps.contains("LOGINDISABLED"),
        "{caps}"
    );
    assert!(c.line().await.starts_with("a1 OK"));
    c.send(&format!("a2 LOGIN anna {password}\r\n")).await;
    let refused = c.line().await;
    assert!(
        refused.starts_with("a2 NO"),
        "login in plaintext: {refused}"
    );
    // STARTTLS with an injected command behind it in the same packet.
    c.send("a3 STARTTLS\r\na4 LOGIN anna x\r\n").await;
    assert!(c.line().await.starts_with("a3 OK"));
    let mut tls = c.starttls(&s.cert()).await;
    tls.send("a5 NOOP\r\n").await;
    let next = tls.line().await;
    assert!(
        next.starts_with("a5 OK"),
        "the injected command was run: {next}"
    );
    if have("python3") {
        let r = python(
            &s,
            s.imap.port(),
            &password,
            &format!(
                r#"{PRELUDE}
m = imaplib.IMAP4("localhost", int(os.environ["PORT"]))
m.starttls(ssl_context=ctx)
m.login(os.environ["USER"], os.environ["PASSWORD"])
print(json.dumps({{"n": len(fetch_all(m, "INBOX"))}}))
"#
            ),
        )
        .await;
        assert_eq!(r["n"], 2);
    } else {
        skip("python3 (imaplib)");
    }
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_logins_slow_down_then_ban_and_revoked_devices_are_out() {
    let (s, password) = setup(
        TestDb::sqlite(),
        "failure_delay_ms = 100\nban_after = 4\nban_secs = 60\n",
    )
    .await;
    let mut tls = Imap::connect_tls(s.imaps, &s.cert()).await;
    assert!(tls.line().await.starts_with("* OK"));
    let mut delays = Vec::new();
    for i in 0..4 {
        let started = Instant::now();
        tls.send(&format!("f{i} LOGIN anna falsch{i}\r\n")).await;
        let reply = tls.line().await;
        assert!(reply.starts_with(&format!("f{i} NO")), "{reply}");
        delays.push(started.elapsed());
    }
    // 100, 200, 400, 800 ms: each failure waits longer.
    assert!(
        delays[3] >= Duration::from_millis(800) && delays[1] >= Duration::from_millis(200),
        "{delays:?}"
    );
    // Banned now: even the right password is refused, at once.
    tls.send(&format!("g1 LOGIN anna {password}\r\n")).await;
    let reply = tls.line().await;
    assert!(
        reply.starts_with("g1 NO") && reply.contains("UNAVAILABLE"),
        "{reply}"
    );
    s.stop().await;

    // A revoked app password stops working; the account password is not accepted by default.
    let (s, password) = setup(TestDb::sqlite(), "").await;
    let anna = s.store.user_by_login("anna").await.expect("anna");
    s.store
        .set_password_hash(
            "anna",
            &store::password::hash("account-pass").expect("hash"),
        )
        .await
        .expect("password");
    let mut tls = Imap::connect_tls(s.imaps, &s.cert()).await;
    tls.line().await;
    tls.send("h1 LOGIN anna account-pass\r\n").await;
    assert!(
        tls.line().await.starts_with("h1 NO"),
        "account password accepted for IMAP"
    );
    tls.send(&format!("h2 LOGIN anna {password}\r\n")).await;
    assert!(tls.line().await.starts_with("h2 OK"));
    s.store
        .revoke_app_password(anna.id, "iPhone", store::now_millis())
        .await
        .expect("revoke");
    let mut again = Imap::connect_tls(s.imaps, &s.cert()).await;
    again.line().await;
    again.send(&format!("h3 LOGIN anna {password}\r\n")).await;
    assert!(
        again.line().await.starts_with("h3 NO"),
        "revoked app password still works"
    );
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_and_a_second_session_see_new_mail_and_flag_changes() {
    let (s, password) = setup(TestDb::sqlite(), "").await;
    let mut a = Imap::connect_tls(s.imaps, &s.cert()).await;
    let mut b = Imap::connect_tls(s.imaps, &s.cert()).await;
    for (c, t) in [(&mut a, "a"), (&mut b, "b")] {
        c.line().await;
        c.send(&format!("{t}1 LOGIN anna {password}\r\n")).await;
        c.until(&format!("{t}1 OK")).await;
        c.send(&format!("{t}2 SELECT INBOX\r\n")).await;
        let lines = c.until(&format!("{t}2 OK")).await;
        assert!(lines.iter().any(|l| l == "* 2 EXISTS"), "{lines:?}");
    }
    a.send("a3 IDLE\r\n").await;
    assert!(a.line().await.starts_with('+'));
    s.deliver(ANNA, &mail("third", "Neu", "Noch eine Nachricht."))
        .await;
    let exists = tokio::time::timeout(Duration::from_secs(30), a.line())
        .await
        .expect("IDLE did not report the new message");
    assert_eq!(exists, "* 3 EXISTS");
    a.send("DONE\r\n").await;
    a.until("a3 OK").await;
    // b changes a flag; a sees it at its next NOOP.
    b.send("b3 STORE 1 +FLAGS (\\Seen)\r\n").await;
    b.until("b3 OK").await;
    a.send("a4 NOOP\r\n").await;
    let lines = a.until("a4 OK").await;
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("* 1 FETCH") && l.contains("\\Seen")),
        "{lines:?}"
    );
    // UIDPLUS: COPY and MOVE say where the messages went.
    a.send("a5 UID COPY 1:2 Archive\r\n").await;
    let copied = a.until("a5 ").await;
    assert!(
        copied
            .last()
            .is_some_and(|l| l.starts_with("a5 OK [COPYUID ")
                && (l.contains(" 1:2 1:2]") || l.contains(" 1,2 1,2]"))),
        "{copied:?}"
    );
    a.send("a6 UID MOVE 3 Trash\r\n").await;
    let moved = a.until("a6 ").await;
    assert!(moved.iter().any(|l| l.contains("COPYUID")), "{moved:?}");
    assert!(moved.iter().any(|l| l == "* 3 EXPUNGE"), "{moved:?}");
    assert!(
        moved.last().is_some_and(|l| l.starts_with("a6 OK")),
        "{moved:?}"
    );
    // b expunges message 2; a is told at its next NOOP, not during a FETCH (RFC 3501
    // §7.4.1), and then once.
    b.send("b4 STORE 2 +FLAGS (\\Deleted)\r\nb5 EXPUNGE\r\n")
        .await;
    let expunged = b.until("b5 OK").await;
    assert!(expunged.iter().any(|l| l == "* 2 EXPUNGE"), "{expunged:?}");
    a.send("a61 FETCH 1:* (FLAGS)\r\n").await;
    let fetched = a.until("a61 OK").await;
    assert!(
        !fetched.iter().any(|l| l.contains("EXPUNGE")),
        "{fetched:?}"
    );
    a.send("a62 NOOP\r\n").await;
    let told = a.until("a62 OK").await;
    assert_eq!(
        told.iter()
            .filter(|l| l.ends_with(" EXPUNGE"))
            .collect::<Vec<_>>(),
        ["* 2 EXPUNGE"],
        "{told:?}"
    );
    a.send("a63 NOOP\r\n").await;
    let again = a.until("a63 OK").await;
    assert_eq!(again.len(), 1, "{again:?}");
    // Folder names travel in modified UTF-7 and are kept in UTF-8.
    a.send("a7 CREATE Entw&APw-rfe/Alt\r\na8 LIST \"\" Entw*\r\n")
        .await;
    a.until("a7 OK").await;
    let listed = a.until("a8 OK").await;
    assert!(
        listed.iter().any(|l| l.contains("Entw&APw-rfe/Alt")),
        "{listed:?}"
    );
    let anna = s.store.user_by_login("anna").await.expect("anna");
    assert!(s.store.mailbox(anna.id, "Entwürfe/Alt").await.is_ok());
    s.stop().await;
}

/// Files in the Maildir folder `dir` (new and cur).
fn maildir_files(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    for sub in ["new", "cur"] {
        if let Ok(entries) = std::fs::read_dir(dir.join(sub)) {
            files.extend(entries.flatten().map(|e| e.path()));
        }
    }
    files.sort();
    files
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mbsync_syncs_to_a_maildir_and_back() {
    if !have("mbsync") {
        return skip("mbsync (isync)");
    }
    let (s, password) = setup(TestDb::sqlite(), "").await;
    let dir = tempfile::tempdir().expect("tempdir");
    let maildir = dir.path().join("mail");
    std::fs::create_dir_all(&maildir).expect("maildir");
    let config = dir.path().join("mbsyncrc");
    std::fs::write(
        &config,
        format!(
            "IMAPAccount ratspost\nHost localhost\nPort {port}\nUser anna\nPass {password}\nSSLType IMAPS\n\
CertificateFile {cert}\n\nIMAPStore remote\nAccount ratspost\n\nMaildirStore local\nPath {maildir}/\n\
Inbox {maildir}/INBOX\nSubFolders Verbatim\n\nChannel sync\nFar :remote:\nNear :local:\nPatterns *\n\
Create Both\nSyncState *\nSync All\nExpunge Both\n",
            port = s.imaps.port(),
            cert = s.cert().display(),
            maildir = maildir.display(),
        ),
    )
    .expect("config");
    let sync = || async {
        let out = tokio::process::Command::new("mbsync")
            .arg("-c")
            .arg(&config)
            .arg("-a")
            .output()
            .await
            .expect("mbsync");
        assert!(
            out.status.success(),
            "mbsync failed:\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    };
    sync().await;
    let inbox = maildir_files(&maildir.join("INBOX"));
    assert_eq!(inbox.len(), 2, "{inbox:?}");
    let bodies: Vec<String> = inbox
        .iter()
        .map(|p| String::from_utf8_lossy(&std::fs::read(p).expect("read")).into_owned())
        .collect();
    assert!(
        bodies
            .iter()
            .any(|b| b.contains("Die Sitzung beginnt um 18 Uhr."))
    );
    assert!(bodies.iter().any(|b| b.contains("Vertrauliche Nachricht")));
    assert!(
        bodies.iter().all(|b| !b.contains(STEUER_ID)),
        "the original reached the device"
    );
    for special in ["Sent", "Drafts", "Trash", "Archive"] {
        assert!(maildir.join(special).is_dir(), "{special} not synced");
    }

    // On the device: read the clean message, delete the notice, file a draft.
    let clean = inbox
        .iter()
        .zip(&bodies)
        .find(|(_, b)| b.contains("Sitzung"))
        .map(|(p, _)| p.clone())
        .expect("clean file");
    let notice = inbox
        .iter()
        .find(|p| **p != clean)
        .expect("notice file")
        .clone();
    let mark = |path: &std::path::Path, flag: &str| {
        let name = path
            .file_name()
            .expect("name")
            .to_string_lossy()
            .into_owned();
        let base = name.split(":2,").next().expect("base").to_owned();
        let target = path
            .parent()
            .and_then(|p| p.parent())
            .expect("folder")
            .join("cur")
            .join(format!("{base}:2,{flag}"));
        std::fs::rename(path, target).expect("rename");
    };
    mark(&clean, "S");
    mark(&notice, "T");
    let draft = maildir
        .join("Drafts")
        .join("new")
        .join("1700000000.draft.host");
    std::fs::write(
        &draft,
        "From: anna@stadt.test\r\nSubject: Entwurf\r\n\r\nNoch nicht fertig.\r\n",
    )
    .expect("draft");
    sync().await;

    let anna = s.store.user_by_login("anna").await.expect("anna");
    let inbox = s.store.mailbox(anna.id, "INBOX").await.expect("INBOX");
    let entries = s.store.mailbox_entries(inbox.id).await.expect("entries");
    assert_eq!(
        entries.len(),
        1,
        "the deleted notice was not expunged: {entries:?}"
    );
    assert!(
        entries[0].has("\\Seen"),
        "the read flag did not reach the server: {entries:?}"
    );
    let drafts = s.store.mailbox(anna.id, "Drafts").await.expect("Drafts");
    let uploaded = s.store.mailbox_entries(drafts.id).await.expect("drafts");
    assert_eq!(uploaded.len(), 1, "the draft was not uploaded");
    let content = s
        .store
        .entry_content(drafts.id, uploaded[0].uid)
        .await
        .expect("content");
    assert!(String::from_utf8_lossy(&content).contains("Noch nicht fertig."));
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn curl_fetches_over_imaps() {
    if !have("curl") {
        return skip("curl");
    }
    let (s, password) = setup(TestDb::sqlite(), "").await;
    let fetch = |uid: u32| {
        let out = std::process::Command::new("curl")
            .args(["--silent", "--show-error", "--cacert"])
            .arg(s.cert())
            .args([
                "--resolve",
                &format!("localhost:{}:127.0.0.1", s.imaps.port()),
            ])
            .args(["--user", &format!("anna:{password}")])
            .arg(format!(
                "imaps://localhost:{}/INBOX/;UID={uid}",
                s.imaps.port()
            ))
            .output()
            .expect("curl");
        assert!(
            out.status.success(),
            "curl: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    assert!(fetch(1).contains("Die Sitzung beginnt um 18 Uhr."));
    let notice = fetch(2);
    assert!(
        notice.contains("Vertrauliche Nachricht") && !notice.contains(STEUER_ID),
        "{notice}"
    );
    s.stop().await;
}

/// The value of `[CODE n]` in `lines`.
fn code_value(lines: &[String], code: &str) -> u64 {
    lines
        .iter()
        .find_map(|l| l.split(&format!("[{code} ")).nth(1))
        .and_then(|rest| rest.split(']').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no {code} in {lines:?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn condstore_and_qresync_resynchronise_a_returning_device() {
    let (s, password) = setup(TestDb::sqlite(), "").await;
    let login = |tag: &'static str| {
        let (addr, cert, password) = (s.imaps, s.cert(), password.clone());
        async move {
            let mut c = Imap::connect_tls(addr, &cert).await;
            c.line().await;
            c.send(&format!("{tag}0 LOGIN anna {password}\r\n")).await;
            c.until(&format!("{tag}0 OK")).await;
            c
        }
    };
    // The phone syncs, remembers UIDVALIDITY and HIGHESTMODSEQ, and goes offline.
    let mut phone = login("p").await;
    phone.send("p1 ENABLE QRESYNC\r\n").await;
    let enabled = phone.until("p1 OK").await;
    assert!(
        enabled
            .iter()
            .any(|l| l.eq_ignore_ascii_case("* ENABLED QRESYNC")),
        "{enabled:?}"
    );
    phone.send("p2 SELECT INBOX\r\n").await;
    let lines = phone.until("p2 OK").await;
    let validity = code_value(&lines, "UIDVALIDITY");
    let modseq = code_value(&lines, "HIGHESTMODSEQ");
    phone.send("p3 LOGOUT\r\n").await;
    phone.until("p3 OK").await;

    // Meanwhile the laptop deletes message 1 (and sees VANISHED, as it enabled QRESYNC)
    // and flags message 2.
    let mut laptop = login("l").await;
    laptop
        .send("l1 ENABLE QRESYNC\r\nl2 SELECT INBOX\r\n")
        .await;
    laptop.until("l2 OK").await;
    laptop
        .send("l3 UID STORE 1 +FLAGS.SILENT (\\Deleted)\r\nl4 UID EXPUNGE 1\r\n")
        .await;
    let expunged = laptop.until("l4 ").await;
    assert!(expunged.iter().any(|l| l == "* VANISHED 1"), "{expunged:?}");
    assert!(
        !expunged.iter().any(|l| l.ends_with(" EXPUNGE")),
        "{expunged:?}"
    );
    laptop.send("l5 UID STORE 2 +FLAGS (\\Flagged)\r\n").await;
    laptop.until("l5 OK").await;
    // A STORE that lost the race is reported, not applied.
    laptop
        .send(&format!(
            "l6 UID STORE 2 (UNCHANGEDSINCE {modseq}) -FLAGS (\\Flagged)\r\n"
        ))
        .await;
    let raced = laptop.until("l6 ").await;
    assert!(
        raced
            .last()
            .is_some_and(|l| l.starts_with("l6 OK [MODIFIED 2]")),
        "{raced:?}"
    );

    // The phone comes back and learns exactly what changed.
    let mut phone = login("q").await;
    phone.send("q1 ENABLE QRESYNC\r\n").await;
    phone.until("q1 OK").await;
    phone
        .send(&format!(
            "q2 SELECT INBOX (QRESYNC ({validity} {modseq}))\r\n"
        ))
        .await;
    let lines = phone.until("q2 ").await;
    assert!(
        lines.iter().any(|l| l == "* VANISHED (EARLIER) 1"),
        "{lines:?}"
    );
    assert!(
        lines.iter().any(|l| l.starts_with("* 1 FETCH")
            && l.contains("UID 2")
            && l.contains("\\Flagged")
            && l.contains("MODSEQ")),
        "{lines:?}"
    );
    assert!(
        lines.last().is_some_and(|l| l.starts_with("q2 OK")),
        "{lines:?}"
    );
    phone
        .send(&format!(
            "q3 UID FETCH 1:* (FLAGS) (CHANGEDSINCE {modseq} VANISHED)\r\n"
        ))
        .await;
    let lines = phone.until("q3 ").await;
    let fetched: Vec<&String> = lines
        .iter()
        .filter(|l| l.starts_with("* ") && l.contains(" FETCH "))
        .collect();
    assert_eq!(fetched.len(), 1, "only the changed message: {lines:?}");
    assert!(
        fetched[0].contains("UID 2") && fetched[0].contains("MODSEQ ("),
        "{lines:?}"
    );
    assert!(
        lines.iter().any(|l| l == "* VANISHED (EARLIER) 1"),
        "{lines:?}"
    );
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_literal_is_refused_before_the_continuation() {
    let (s, password) = setup(TestDb::sqlite(), "max_message_bytes = 1000\n").await;
    let mut c = Imap::connect_tls(s.imaps, &s.cert()).await;
    c.line().await;
    c.send(&format!("a1 LOGIN anna {password}\r\n")).await;
    c.until("a1 OK").await;
    c.send("a2 APPEND Drafts {5000}\r\n").await;
    let reply = c.line().await;
    assert!(
        !reply.starts_with('+') && reply.starts_with("a2 "),
        "the server invited 5000 bytes over a 1000-byte limit: {reply}"
    );
    // Within the limit it is taken, and the session goes on.
    c.send("a3 APPEND Drafts {11}\r\n").await;
    assert!(c.line().await.starts_with('+'));
    c.send("Subject: x\r\n\r\n").await;
    let appended = c.until("a3 ").await;
    assert!(
        appended
            .last()
            .is_some_and(|l| l.starts_with("a3 OK [APPENDUID ")),
        "{appended:?}"
    );
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fetchmail_downloads_over_imaps() {
    if !have("fetchmail") {
        return skip("fetchmail");
    }
    let (s, password) = setup(TestDb::sqlite(), "").await;
    let dir = tempfile::tempdir().expect("tempdir");
    let rc = dir.path().join("fetchmailrc");
    let out = dir.path().join("delivered");
    std::fs::write(
        &rc,
        format!(
            "poll localhost proto IMAP service {port}\n  user anna password \"{password}\"\n  \
ssl sslcertck sslcertfile \"{cert}\"\n  keep fetchall\n  mda \"/bin/sh -c 'cat >> {out}'\"\n",
            port = s.imaps.port(),
            cert = s.cert().display(),
            out = out.display(),
        ),
    )
    .expect("rc");
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&rc, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    }
    let result = tokio::process::Command::new("fetchmail")
        .arg("-f")
        .arg(&rc)
        .args(["--nodetach", "--nosyslog", "-v"])
        .env("HOME", dir.path())
        .env("FETCHMAILHOME", dir.path())
        .output()
        .await
        .expect("fetchmail");
    let log = String::from_utf8_lossy(&result.stderr).into_owned()
        + &String::from_utf8_lossy(&result.stdout);
    assert!(
        result.status.success(),
        "fetchmail failed ({}):\n{log}",
        result.status
    );
    let delivered = std::fs::read_to_string(&out).expect("delivered mail");
    assert!(
        delivered.contains("Die Sitzung beginnt um 18 Uhr."),
        "{delivered}"
    );
    assert!(delivered.contains("Vertrauliche Nachricht"), "{delivered}");
    assert!(
        !delivered.contains(STEUER_ID),
        "the original reached fetchmail"
    );
    s.stop().await;
}

/// Arbitrary input to a logged-in session, in memory (the session is generic over the
/// stream): whatever arrives, the session answers, never panics, never serves the original
/// of a sensitive message, and still works afterwards.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn arbitrary_input_never_breaks_a_session() {
    use proptest::prelude::*;
    use proptest::strategy::ValueTree as _;
    use proptest::test_runner::TestRunner;
    use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _};

    let (s, password) = setup(TestDb::sqlite(), "").await;
    let ctx = relay::imap::session::Context::new(
        s.store.clone(),
        std::sync::Arc::clone(&s.config),
        s.shutdown.clone(),
    );
    // Commands with random arguments, random bytes, and broken literals.
    let words = prop::sample::select(vec![
        "FETCH",
        "UID FETCH",
        "STORE",
        "SEARCH",
        "COPY",
        "MOVE",
        "SELECT",
        "LIST",
        "STATUS",
        "APPEND",
        "EXPUNGE",
        "IDLE",
        "NOOP",
        "CREATE",
        "RENAME",
        "ENABLE",
        "AUTHENTICATE",
    ]);
    let args = prop::collection::vec(
        prop_oneof![
            Just("1:*".to_owned()),
            Just("(BODY[] BODYSTRUCTURE ENVELOPE)".to_owned()),
            Just("INBOX".to_owned()),
            Just("{5}".to_owned()),
            Just("{99999999999}".to_owned()),
            Just("\"unterminated".to_owned()),
            "[ -~]{0,12}",
        ],
        0..4,
    );
    let line = (words, args, prop::collection::vec(any::<u8>(), 0..40));
    let mut runner = TestRunner::default();
    for case in 0..60 {
        let (word, args, noise) = line.new_tree(&mut runner).expect("case").current();
        let (client, server) = tokio::io::duplex(64 * 1024);
        let peer: std::net::IpAddr = "127.0.0.1".parse().expect("ip");
        let ctx2 = ctx.clone();
        let task = tokio::spawn(async move {
            let login_by = tokio::time::Instant::now() + std::time::Duration::from_secs(60);
            relay::imap::session::run(server, true, true, peer, login_by, &ctx2).await;
        });
        let mut c = tokio::io::BufReader::new(client);
        let mut greeting = String::new();
        c.read_line(&mut greeting).await.expect("greeting");
        let mut input = format!(
            "a LOGIN anna {password}\r\nb SELECT INBOX\r\nc {word} {}\r\n",
            args.join(" ")
        )
        .into_bytes();
        input.extend_from_slice(&noise);
        input.extend_from_slice(b"\r\nz NOOP\r\n");
        c.get_mut().write_all(&input).await.expect("write");
        // The session either answers z or closes the connection; it never hangs, panics or
        // leaks the original.
        let mut seen = String::new();
        let outcome = tokio::time::timeout(Duration::from_secs(3), async {
            loop {
                let mut l = String::new();
                match c.read_line(&mut l).await {
                    Ok(0) | Err(_) => return,
                    Ok(_) => {
                        seen.push_str(&l);
                        if l.starts_with("z ") {
                            return;
                        }
                    }
                }
            }
        })
        .await;
        // Waiting for literal bytes or in IDLE is a legitimate state (outcome is a timeout
        // then). Either way, once the client is gone the session must end cleanly: a panic
        // would surface here as a join error.
        let _ = outcome;
        assert!(
            !seen.contains(STEUER_ID),
            "case {case}: the original leaked:\n{seen}"
        );
        drop(c);
        let ended = tokio::time::timeout(Duration::from_secs(10), task)
            .await
            .unwrap_or_else(|_| panic!("case {case}: the session outlived its client"));
        assert!(
            ended.is_ok(),
            "case {case}: the session panicked: {ended:?}\n{seen}"
        );
    }
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_quirks_authenticate_login_plain_and_commands_pipelined_after_idle() {
    let (s, password) = setup(TestDb::sqlite(), "").await;
    let b64 = |s: &str| relay::encoding::base64(s.as_bytes());
    // Outlook: AUTHENTICATE LOGIN (not advertised), answered step by step.
    let mut c = Imap::connect_tls(s.imaps, &s.cert()).await;
    c.line().await;
    c.send("a1 CAPABILITY\r\n").await;
    let caps = c.until("a1 OK").await;
    assert!(
        caps[0].contains("AUTH=PLAIN") && caps[0].contains("APPENDLIMIT=52428800"),
        "{caps:?}"
    );
    c.send("a2 AUTHENTICATE LOGIN\r\n").await;
    assert_eq!(c.line().await, format!("+ {}", b64("Username:")));
    c.send(&format!("{}\r\n", b64("anna"))).await;
    assert_eq!(c.line().await, format!("+ {}", b64("Password:")));
    c.send(&format!("{}\r\n", b64(&password))).await;
    assert!(
        c.line().await.starts_with("a2 OK"),
        "AUTHENTICATE LOGIN failed"
    );
    // iOS 18: DONE and the next command in one packet.
    c.send("a3 SELECT INBOX\r\n").await;
    c.until("a3 OK").await;
    c.send("a4 IDLE\r\n").await;
    assert!(c.line().await.starts_with('+'));
    c.send("DONE\r\na5 NOOP\r\n").await;
    let lines = c.until("a5 ").await;
    assert!(lines.iter().any(|l| l.starts_with("a4 OK")), "{lines:?}");
    assert!(
        lines.last().is_some_and(|l| l.starts_with("a5 OK")),
        "{lines:?}"
    );

    // A command the codec cannot parse gets a tagged BAD (the client waits for its tag), and
    // the session goes on: unknown commands, and iOS's `CHANGEDSINCE 0`.
    c.send("a6 XAPPLEPUSHSERVICE aps-version 2\r\n").await;
    let unknown = c.until("a6 ").await;
    assert!(
        unknown.last().is_some_and(|l| l.starts_with("a6 BAD")),
        "{unknown:?}"
    );
    c.send("a7 UID FETCH 1:* (FLAGS) (CHANGEDSINCE 0)\r\na8 NOOP\r\n")
        .await;
    let answered = c.until("a8 ").await;
    assert!(
        answered.iter().any(|l| l.starts_with("a7 ")),
        "{answered:?}"
    );
    assert!(
        answered.last().is_some_and(|l| l.starts_with("a8 OK")),
        "{answered:?}"
    );

    // PLAIN without an initial response.
    let mut d = Imap::connect_tls(s.imaps, &s.cert()).await;
    d.line().await;
    d.send("b1 AUTHENTICATE PLAIN\r\n").await;
    assert!(d.line().await.starts_with('+'));
    d.send(&format!("{}\r\n", b64(&format!("\0anna\0{password}"))))
        .await;
    assert!(d.line().await.starts_with("b1 OK"));

    // Before TLS, AUTHENTICATE is refused before any credential is sent.
    let mut p = Imap::connect(s.imap).await;
    p.line().await;
    p.send("c1 AUTHENTICATE LOGIN\r\n").await;
    let refused = p.line().await;
    assert!(
        refused.starts_with("c1 NO") && refused.contains("PRIVACYREQUIRED"),
        "{refused}"
    );
    s.stop().await;
}

/// Issue 9: Thunderbird, iOS Mail and Android offer the address as the user name first.
/// Any of the user's addresses, in any case, logs in (LOGIN, AUTHENTICATE PLAIN and LOGIN);
/// failures count against the account whichever name was tried; a missing address is
/// refused in the same words as a wrong password.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_address_is_a_user_name_and_failures_count_against_its_account() {
    let (s, password) = setup(TestDb::sqlite(), "failure_delay_ms = 300\nban_after = 50\n").await;
    let b64 = |s: &str| relay::encoding::base64(s.as_bytes());
    let address = "Anna@Stadt.Test";
    if have("python3") {
        let script = format!(
            "{PRELUDE}
m = imaplib.IMAP4_SSL('127.0.0.1', int(os.environ['PORT']), ssl_context=ctx)
typ, _ = m.login('{address}', os.environ['PASSWORD'])
print(json.dumps({{'login': typ, 'n': len(fetch_all(m, 'INBOX'))}}))
m.logout()
"
        );
        let r = python(&s, s.imaps.port(), &password, &script).await;
        assert_eq!(r["login"], "OK");
        assert_eq!(r["n"], 2);
    } else {
        skip("python3 (imaplib)");
    }
    let mut c = Imap::connect_tls(s.imaps, &s.cert()).await;
    c.line().await;
    c.send(&format!("a1 LOGIN {address} {password}\r\n")).await;
    assert!(
        c.line().await.starts_with("a1 OK"),
        "LOGIN with the address"
    );
    let mut c = Imap::connect_tls(s.imaps, &s.cert()).await;
    c.line().await;
    let plain = b64(&format!("\0{address}\0{password}"));
    c.send(&format!("b1 AUTHENTICATE PLAIN {plain}\r\n")).await;
    assert!(
        c.line().await.starts_with("b1 OK"),
        "PLAIN with the address"
    );
    let mut c = Imap::connect_tls(s.imaps, &s.cert()).await;
    c.line().await;
    c.send("c1 AUTHENTICATE LOGIN\r\n").await;
    c.line().await;
    c.send(&format!("{}\r\n", b64("anna@stadt.test"))).await;
    c.line().await;
    c.send(&format!("{}\r\n", b64(&password))).await;
    assert!(
        c.line().await.starts_with("c1 OK"),
        "LOGIN SASL with the address"
    );

    // Each failure from its own client address, so only the account's counter can add up:
    // two with the address, then the login waits as the account's third failure (4 × 300 ms).
    let fail = |from: [u8; 4], name: &'static str| {
        let (imaps, cert) = (s.imaps, s.cert());
        async move {
            let mut c = Imap::connect_tls_from(from.into(), imaps, &cert).await;
            c.line().await;
            let started = Instant::now();
            c.send(&format!("f LOGIN {name} falsch\r\n")).await;
            let reply = c.line().await;
            assert!(reply.starts_with("f NO"), "{name}: {reply}");
            (started.elapsed(), reply)
        }
    };
    fail([127, 0, 0, 2], "anna@stadt.test").await;
    fail([127, 0, 0, 3], "ANNA@stadt.test").await;
    let (third, wrong) = fail([127, 0, 0, 4], "anna").await;
    assert!(third >= Duration::from_millis(1200), "{third:?}");
    // A name that names nobody: refused alike, counted on its own (a first failure).
    let (first, missing) = fail([127, 0, 0, 5], "niemand@stadt.test").await;
    assert_eq!(missing, wrong, "a missing address reads differently");
    assert!(first < Duration::from_millis(1200), "{first:?}");
    s.stop().await;
}

/// Sends `command` with `literal` as a synchronizing literal (waiting for `+`); returns the
/// lines up to the tagged reply.
async fn with_literal<S>(c: &mut Imap<S>, tag: &str, command: &str, literal: &[u8]) -> Vec<String>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    c.send(&format!("{tag} {command} {{{}}}\r\n", literal.len()))
        .await;
    let go = c.line().await;
    assert!(go.starts_with('+'), "{tag}: {go}");
    c.send(&String::from_utf8_lossy(literal)).await;
    c.send("\r\n").await;
    c.until(&format!("{tag} ")).await
}

/// Issue #13 §1: what imaptest and client bug reports found (`tests/cases/imap/`), as a
/// client sees it: APPEND with Apple Mail's date, `\Recent`, BODYSTRUCTURE and ENVELOPE of
/// the reported messages, the mailbox hierarchy transcript, keywords announced in FLAGS,
/// `[TOOBIG]`, and a new UIDVALIDITY for a mailbox created again at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_reports_and_imaptest_failures_issue_13() {
    let cases = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("cases/imap");
    let case11 = std::fs::read(cases.join("11-bodystructure-8bit-params.eml")).expect("case 11");
    let case13 = std::fs::read(cases.join("13-envelope-folded-subject.eml")).expect("case 13");
    let (s, password) = setup(TestDb::sqlite(), "max_message_bytes = 2000\n").await;
    let mut c = Imap::connect_tls(s.imaps, &s.cert()).await;
    c.line().await;
    c.send(&format!("a1 LOGIN anna {password}\r\n")).await;
    c.until("a1 OK").await;

    // Older Apple Mail: a one-digit day without the leading space.
    for (tag, raw) in [("a2", &case11), ("a3", &case13)] {
        let lines = with_literal(
            &mut c,
            tag,
            "APPEND INBOX () \"6-Nov-2020 10:00:00 +0000\"",
            raw,
        )
        .await;
        assert!(
            lines
                .last()
                .is_some_and(|l| l.starts_with(&format!("{tag} OK [APPENDUID "))),
            "{lines:?}"
        );
    }

    // \Recent: EXAMINE shows it and leaves it; SELECT claims it; a second session then has
    // none.
    c.send("a4 EXAMINE INBOX\r\n").await;
    let lines = c.until("a4 OK").await;
    assert!(lines.iter().any(|l| l == "* 4 RECENT"), "{lines:?}");
    c.send("a5 SELECT INBOX\r\n").await;
    let lines = c.until("a5 OK").await;
    assert!(lines.iter().any(|l| l == "* 4 RECENT"), "{lines:?}");
    assert!(
        lines
            .iter()
            .any(|l| l.contains("[PERMANENTFLAGS (") && l.contains("\\*)")),
        "{lines:?}"
    );
    c.send("a6 SEARCH RECENT\r\n").await;
    assert_eq!(c.until("a6 OK").await[0], "* SEARCH 1 2 3 4");
    c.send("a7 FETCH 1 (FLAGS)\r\n").await;
    let lines = c.until("a7 OK").await;
    assert!(lines[0].contains("\\Recent"), "{lines:?}");
    let mut other = Imap::connect_tls(s.imaps, &s.cert()).await;
    other.line().await;
    other
        .send(&format!("b1 LOGIN anna {password}\r\nb2 SELECT INBOX\r\n"))
        .await;
    let lines = other.until("b2 OK").await;
    assert!(lines.iter().any(|l| l == "* 0 RECENT"), "{lines:?}");
    other.send("b3 SEARCH RECENT\r\n").await;
    assert_eq!(other.until("b3 OK").await[0], "* SEARCH");

    // Case 11: BODYSTRUCTURE in 7 bits, values as the message has them.
    c.send("a8 FETCH 3 (BODYSTRUCTURE INTERNALDATE)\r\n").await;
    let lines = c.until("a8 OK").await;
    let text = lines.join("\n");
    assert!(text.is_ascii(), "raw 8-bit in BODYSTRUCTURE: {text}");
    assert!(
        text.contains("\"=?iso-8859-1?Q?Termin=FCbersicht_M=E4rz.txt?=\"")
            && text.contains("\"=?utf-8?Q?Termin=C3=BCbersicht?=\""),
        "{text}"
    );
    assert!(
        text.contains("INTERNALDATE \"06-Nov-2020 10:00:00 +0000\""),
        "{text}"
    );

    // Case 13: ENVELOPE strings unfolded.
    c.send("a9 FETCH 4 (ENVELOPE)\r\n").await;
    let lines = c.until("a9 OK").await;
    assert_eq!(lines.len(), 2, "a CRLF inside the ENVELOPE: {lines:?}");
    assert!(
        lines[0].contains(
            "\"Einladung zur Sitzung des Ausschusses fuer Umwelt, Verkehr und Stadtentwicklung am Donnerstag\""
        ) && lines[0].contains("\"<case13@stadt.example>\""),
        "{lines:?}"
    );

    // Case 17: the hierarchy transcript.
    c.send("b1 CREATE \"Eltern/Kind\"\r\n").await;
    assert!(c.line().await.starts_with("b1 OK"));
    c.send("b2 LIST \"\" \"%\"\r\n").await;
    let lines = c.until("b2 OK").await;
    assert!(
        lines
            .iter()
            .any(|l| l == "* LIST (\\HasChildren) \"/\" Eltern"),
        "{lines:?}"
    );
    c.send("b3 CREATE \"Ablage/\"\r\n").await;
    let created = c.line().await;
    assert!(created.starts_with("b3 OK"), "{created}");

    // A new keyword is announced before it is used.
    c.send("b4 STORE 1 +FLAGS ($Erledigt)\r\n").await;
    let lines = c.until("b4 OK").await;
    let flags = lines.iter().position(|l| l.starts_with("* FLAGS ("));
    let fetch = lines.iter().position(|l| l.starts_with("* 1 FETCH"));
    assert!(
        flags.is_some_and(|f| lines[f].contains("$Erledigt") && fetch.is_some_and(|x| f < x)),
        "{lines:?}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.contains("[PERMANENTFLAGS (") && l.contains("$Erledigt \\*)")),
        "{lines:?}"
    );

    // Too big: refused before `+`, and with LITERAL+ after the bytes, both with [TOOBIG].
    c.send("b5 APPEND INBOX {5000}\r\n").await;
    let refused = c.line().await;
    assert!(
        refused.starts_with("b5 ") && refused.contains("[TOOBIG]"),
        "{refused}"
    );
    c.send(&format!(
        "b6 APPEND INBOX {{3000+}}\r\n{}\r\n",
        "x".repeat(3000)
    ))
    .await;
    let refused = c.line().await;
    assert!(refused.starts_with("b6 NO [TOOBIG]"), "{refused}");

    // DELETE and CREATE within the same second: a new UIDVALIDITY.
    c.send("b7 STATUS Ablage (UIDVALIDITY)\r\n").await;
    let first = c.until("b7 OK").await[0].clone();
    c.send("b8 DELETE Ablage\r\nb9 CREATE Ablage\r\nc1 STATUS Ablage (UIDVALIDITY)\r\n")
        .await;
    let second = c.until("c1 OK").await;
    assert!(
        second.iter().any(|l| l.starts_with("* STATUS")),
        "{second:?}"
    );
    assert!(!second.contains(&first), "{first} again: {second:?}");
    s.stop().await;
}

/// ESEARCH (RFC 4731) and MULTIAPPEND (RFC 3502), which imap-codec does not parse: read by
/// `imap::extended`. Synchronising literals across several messages, all or none.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn esearch_and_multiappend_over_tls() {
    let (s, password) = setup(TestDb::sqlite(), "").await;
    let mut c = Imap::connect_tls(s.imaps, &s.cert()).await;
    let greeting = c.line().await;
    assert!(greeting.starts_with("* OK"), "{greeting}");
    c.send(&format!("a1 LOGIN anna {password}\r\n")).await;
    let caps = c.until("a1 ").await;
    assert!(
        caps.last().is_some_and(|l| l.starts_with("a1 OK")),
        "{caps:?}"
    );
    c.send("a2 CAPABILITY\r\n").await;
    let caps = c.until("a2 OK").await;
    assert!(
        caps[0].contains(" ESEARCH") && caps[0].contains(" MULTIAPPEND"),
        "{caps:?}"
    );

    // Three messages in one APPEND, the first two with synchronising literals.
    let one = "Subject: eins\r\n\r\nerste\r\n";
    let two = "Subject: zwei\r\n\r\nzweite\r\n";
    let three = "Subject: drei\r\n\r\ndritte\r\n";
    c.send(&format!(
        "a3 APPEND Drafts (\\Seen) \"6-Nov-2020 10:00:00 +0000\" {{{}}}\r\n",
        one.len()
    ))
    .await;
    assert!(c.line().await.starts_with('+'));
    c.send(&format!("{one} {{{}}}\r\n", two.len())).await;
    assert!(c.line().await.starts_with('+'));
    c.send(&format!(
        "{two} (\\Flagged) {{{}+}}\r\n{three}\r\n",
        three.len()
    ))
    .await;
    let appended = c.until("a3 ").await;
    let ok = appended.last().expect("reply");
    assert!(ok.starts_with("a3 OK [APPENDUID "), "{appended:?}");
    assert!(ok.contains(" 1:3]"), "the set of new UIDs: {ok}");

    c.send("a4 SELECT Drafts\r\n").await;
    c.until("a4 OK").await;
    c.send("a5 FETCH 1:* (FLAGS BODY.PEEK[HEADER.FIELDS (SUBJECT)])\r\n")
        .await;
    let fetched = c.until("a5 OK").await.join("\n");
    for subject in ["eins", "zwei", "drei"] {
        assert!(fetched.contains(subject), "{fetched}");
    }

    // ESEARCH: MIN, MAX, COUNT, ALL; UID; nothing found; a bad option.
    c.send("a6 SEARCH RETURN (MIN MAX COUNT) ALL\r\n").await;
    let lines = c.until("a6 OK").await;
    assert_eq!(lines[0], "* ESEARCH (TAG \"a6\") MIN 1 MAX 3 COUNT 3");
    c.send("a7 UID SEARCH RETURN () UNSEEN\r\n").await;
    let lines = c.until("a7 OK").await;
    assert_eq!(lines[0], "* ESEARCH (TAG \"a7\") UID ALL 2:3");
    c.send("a8 SEARCH RETURN (COUNT MIN) SUBJECT nirgends\r\n")
        .await;
    let lines = c.until("a8 OK").await;
    assert_eq!(lines[0], "* ESEARCH (TAG \"a8\") COUNT 0");
    c.send("a9 SEARCH RETURN (SAVE) ALL\r\n").await;
    assert!(c.line().await.starts_with("a9 BAD"));
    // Plain SEARCH is unchanged.
    c.send("b1 SEARCH FLAGGED\r\n").await;
    let lines = c.until("b1 OK").await;
    assert_eq!(lines[0], "* SEARCH 3");

    // A MULTIAPPEND with a broken second message stores nothing.
    c.send(&format!(
        "b2 APPEND Drafts {{{}+}}\r\n{one} (\\Bogus-Flag-() {{1+}}\r\nx\r\n",
        one.len()
    ))
    .await;
    let reply = c.until("b2 ").await;
    assert!(
        reply.last().is_some_and(|l| l.starts_with("b2 BAD")),
        "{reply:?}"
    );
    c.send("b3 STATUS Drafts (MESSAGES)\r\n").await;
    let status = c.until("b3 OK").await;
    assert!(status[0].contains("MESSAGES 3"), "{status:?}");
    s.stop().await;
}

/// LIST-EXTENDED (RFC 5258) and LIST-STATUS (RFC 5819): several patterns, folder counts in
/// the same round trip, RECURSIVEMATCH with CHILDINFO, and a subscription that outlives its
/// mailbox shown as `\NonExistent`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_extended_and_list_status_over_tls() {
    let (s, password) = setup(TestDb::sqlite(), "").await;
    let mut c = Imap::connect_tls(s.imaps, &s.cert()).await;
    let greeting = c.line().await;
    assert!(greeting.starts_with("* OK"), "{greeting}");
    c.send(&format!("a1 LOGIN anna {password}\r\n")).await;
    c.until("a1 OK").await;
    c.send("a2 CAPABILITY\r\n").await;
    let caps = c.until("a2 OK").await;
    assert!(
        caps[0].contains(" LIST-EXTENDED") && caps[0].contains(" LIST-STATUS"),
        "{caps:?}"
    );
    let one = "Subject: eins\r\n\r\nerste\r\n";
    c.send(&format!(
        "a3 APPEND Drafts (\\Seen) {{{}+}}\r\n{one} {{{}+}}\r\n{one}\r\n",
        one.len(),
        one.len()
    ))
    .await;
    c.until("a3 OK").await;

    // Counts for several folders in one round trip.
    c.send("a4 LIST \"\" (INBOX Drafts) RETURN (STATUS (MESSAGES UNSEEN))\r\n")
        .await;
    let lines = c.until("a4 OK").await;
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("* LIST (") && l.ends_with(" \"/\" \"Drafts\"")),
        "{lines:?}"
    );
    assert!(
        lines.contains(&"* STATUS \"Drafts\" (MESSAGES 2 UNSEEN 1)".to_owned()),
        "{lines:?}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("* STATUS INBOX (MESSAGES ") && l.contains(" UNSEEN ")),
        "{lines:?}"
    );
    assert!(!lines.iter().any(|l| l.contains("Sent")), "{lines:?}");

    // A parent that is not subscribed, with a subscribed child the pattern misses.
    c.send("a5 CREATE Projekte/2026\r\n").await;
    c.until("a5 OK").await;
    c.send("a6 SUBSCRIBE Projekte/2026\r\n").await;
    c.until("a6 OK").await;
    c.send("a7 LIST (SUBSCRIBED RECURSIVEMATCH) \"\" Projekte RETURN (CHILDREN)\r\n")
        .await;
    let lines = c.until("a7 OK").await;
    assert_eq!(
        lines[0], "* LIST (\\HasChildren) \"/\" \"Projekte\" (\"CHILDINFO\" (\"SUBSCRIBED\"))",
        "{lines:?}"
    );
    // The child matches too: then no CHILDINFO for the parent.
    c.send("a8 LIST (SUBSCRIBED RECURSIVEMATCH) \"\" (Projekte Projekte/%)\r\n")
        .await;
    let lines = c.until("a8 OK").await;
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert!(
        lines[0].starts_with("* LIST (")
            && lines[0].ends_with("\\Subscribed) \"/\" \"Projekte/2026\""),
        "{lines:?}"
    );

    // Deleted but still subscribed.
    c.send("a9 DELETE Projekte/2026\r\n").await;
    c.until("a9 OK").await;
    c.send("b1 LIST (SUBSCRIBED) \"\" \"Projekte/*\"\r\n").await;
    let lines = c.until("b1 OK").await;
    assert_eq!(
        lines[0], "* LIST (\\NonExistent \\Subscribed) \"/\" \"Projekte/2026\"",
        "{lines:?}"
    );

    // A name that needs modified UTF-7 and escaping.
    c.send("b2 CREATE \"B&APw-ro \\\"alt\\\"\"\r\n").await;
    c.until("b2 OK").await;
    c.send("b3 LIST \"\" (\"B*\") RETURN (STATUS (MESSAGES))\r\n")
        .await;
    let lines = c.until("b3 OK").await;
    assert!(
        lines[0].ends_with(" \"/\" \"B&APw-ro \\\"alt\\\"\""),
        "{lines:?}"
    );
    assert_eq!(lines[1], "* STATUS \"B&APw-ro \\\"alt\\\"\" (MESSAGES 0)");

    // Many patterns in literals (a command may be as large as an APPEND): each name is
    // matched once against the distinct ones, and the answer comes.
    let mut many = String::from("b7 LIST \"\" (");
    for i in 0..20_000 {
        let p = format!("x{i}%");
        many.push_str(&format!("{{{}+}}\r\n{p} ", p.len()));
    }
    many.push_str("Drafts)\r\n");
    c.send(&many).await;
    let lines = c.until("b7 ").await;
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert!(lines[0].ends_with(" \"Drafts\""), "{lines:?}");
    assert!(lines[1].starts_with("b7 OK"), "{lines:?}");

    // Errors, and the plain LIST unchanged.
    c.send("b4 LIST (RECURSIVEMATCH) \"\" *\r\n").await;
    assert!(c.line().await.starts_with("b4 BAD"));
    c.send("b5 LIST \"\" \"\" RETURN (BOGUS)\r\n").await;
    assert!(c.line().await.starts_with("b5 BAD"));
    c.send("b6 LIST \"\" Drafts\r\n").await;
    let lines = c.until("b6 OK").await;
    assert!(lines[0].ends_with(" Drafts"), "{lines:?}");
}
