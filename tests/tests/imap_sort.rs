//! SORT, SORT=DISPLAY and THREAD (issue #13 §2; RFC 5256, RFC 5957) over implicit TLS, as
//! a webmailer uses them: sorted by sent date (INTERNALDATE when there is no Date header),
//! base subject, display name and address; threaded by References/In-Reply-To and by
//! subject; UID variants; a search narrowing what is sorted; an unknown charset refused.

use ratspost_tests::imap::Imap;
use ratspost_tests::server::Server;
use store::Role;
use store::testing::TestDb;

/// (INTERNALDATE, message) appended in this order (sequence numbers 1–4).
const MAILS: [(&str, &str); 4] = [
    (
        "01-Nov-2026 10:00:00 +0000",
        "From: Zoe <zoe@stadt.test>\r\nSubject: Agenda\r\nDate: Tue, 3 Nov 2026 09:00:00 +0000\r\n\
Message-ID: <1@stadt.test>\r\n\r\nTagesordnung\r\n",
    ),
    (
        "02-Nov-2026 10:00:00 +0000",
        "From: adam@stadt.test\r\nSubject: Re: Agenda\r\nDate: Sun, 1 Nov 2026 09:00:00 +0000\r\n\
Message-ID: <2@stadt.test>\r\nReferences: <1@stadt.test>\r\n\r\nJa\r\n",
    ),
    (
        "03-Nov-2026 10:00:00 +0000",
        "From: \"Berta\" <berta@stadt.test>\r\nSubject: [rat] Zahlen\r\n\
Date: Mon, 2 Nov 2026 09:00:00 +0000\r\nMessage-ID: <3@stadt.test>\r\n\r\nHaushalt\r\n",
    ),
    (
        "02-Nov-2026 12:00:00 +0000",
        "From: carl@stadt.test\r\nSubject: Fwd: Agenda\r\nMessage-ID: <4@stadt.test>\r\n\
In-Reply-To: <1@stadt.test>\r\n\r\nWeitergeleitet\r\n",
    ),
];

async fn sort_and_thread(db: TestDb) {
    let s = Server::start_full(
        db,
        "",
        "[imap]\nlisten = \"127.0.0.1:0\"\nlisten_tls = \"127.0.0.1:0\"\n",
    )
    .await;
    let anna = s.add_user("anna", Role::Staff, &["anna@stadt.test"]).await;
    let password = "webmail-app-password-1";
    s.give_app_password(anna, "Webmail", password).await;
    let mut c = Imap::connect_tls(s.imaps, &s.cert()).await;
    c.line().await;
    c.send(&format!("a1 LOGIN anna {password}\r\na2 CAPABILITY\r\n"))
        .await;
    c.until("a1 OK").await;
    let caps = c.until("a2 OK").await.join(" ");
    for cap in [
        " SORT ",
        " SORT=DISPLAY ",
        " THREAD=REFERENCES ",
        " THREAD=ORDEREDSUBJECT ",
    ] {
        assert!(caps.contains(cap), "{cap}: {caps}");
    }
    let mut uids = Vec::new();
    for (i, (date, raw)) in MAILS.iter().enumerate() {
        let tag = format!("p{i}");
        c.send(&format!(
            "{tag} APPEND INBOX () \"{date}\" {{{}}}\r\n",
            raw.len()
        ))
        .await;
        assert!(c.line().await.starts_with('+'));
        c.send(&format!("{raw}\r\n")).await;
        let done = c.until(&format!("{tag} ")).await;
        let last = done.last().expect("tagged reply");
        // `pN OK [APPENDUID validity uid] …`
        let uid: u32 = last
            .split(['[', ']', ' '])
            .nth(5)
            .and_then(|u| u.parse().ok())
            .unwrap_or_else(|| panic!("{last}"));
        uids.push(uid);
    }
    c.send("a3 SELECT INBOX\r\n").await;
    c.until("a3 OK").await;

    let mut ask = async |tag: &str, command: &str| -> Vec<String> {
        c.send(&format!("{tag} {command}\r\n")).await;
        c.until(&format!("{tag} ")).await
    };
    for (tag, command, want) in [
        // Sent dates 3, 1, 2 Nov; the fourth has none: its INTERNALDATE, 2 Nov 12:00.
        ("s1", "SORT (DATE) UTF-8 ALL", "* SORT 2 3 4 1"),
        ("s2", "SORT (REVERSE DATE) US-ASCII ALL", "* SORT 1 4 3 2"),
        ("s3", "SORT (ARRIVAL) UTF-8 ALL", "* SORT 1 2 4 3"),
        // Base subjects AGENDA ×3 and ZAHLEN; ties by sequence number.
        ("s4", "SORT (SUBJECT) UTF-8 ALL", "* SORT 1 2 4 3"),
        (
            "s5",
            "SORT (SUBJECT REVERSE DATE) UTF-8 ALL",
            "* SORT 1 4 2 3",
        ),
        // Display names, else the address: ADAM@…, BERTA, CARL@…, ZOE.
        ("s6", "SORT (DISPLAYFROM) UTF-8 ALL", "* SORT 2 3 4 1"),
        // addr-mailbox: adam, berta, carl, zoe.
        ("s7", "SORT (FROM) UTF-8 ALL", "* SORT 2 3 4 1"),
        // Only what the search selects.
        ("s8", "SORT (DATE) UTF-8 SUBJECT agenda", "* SORT 2 4 1"),
        ("s9", "SORT (SIZE) UTF-8 UID 99", "* SORT"),
        // REFERENCES: 2 and 4 (In-Reply-To) answer 1; 3 stands alone and is older.
        (
            "t1",
            "THREAD REFERENCES UTF-8 ALL",
            "* THREAD (3)(1 (2)(4))",
        ),
        // ORDEREDSUBJECT: by base subject, the earliest sent first, the rest its children.
        (
            "t2",
            "THREAD ORDEREDSUBJECT UTF-8 ALL",
            "* THREAD (2 (4)(1))(3)",
        ),
    ] {
        let lines = ask(tag, command).await;
        assert_eq!(lines[0], want, "{command}: {lines:?}");
        assert!(lines[1].starts_with(&format!("{tag} OK")), "{lines:?}");
    }
    let u = |seq: usize| uids[seq - 1];
    let lines = ask("u1", "UID SORT (DISPLAYFROM) UTF-8 ALL").await;
    assert_eq!(
        lines[0],
        format!("* SORT {} {} {} {}", u(2), u(3), u(4), u(1)),
        "{lines:?}"
    );
    let lines = ask("u2", "UID THREAD REFERENCES UTF-8 ALL").await;
    assert_eq!(
        lines[0],
        format!("* THREAD ({})({} ({})({}))", u(3), u(1), u(2), u(4)),
        "{lines:?}"
    );
    let lines = ask("e1", "SORT (DATE) KOI8-R ALL").await;
    assert!(lines[0].starts_with("e1 NO [BADCHARSET"), "{lines:?}");
    let lines = ask("e2", "THREAD SPAGHETTI UTF-8 ALL").await;
    assert!(lines[0].starts_with("e2 BAD"), "{lines:?}");
    c.send("a9 LOGOUT\r\n").await;
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sort_and_thread_sqlite() {
    sort_and_thread(TestDb::sqlite()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sort_and_thread_postgres() {
    if let Some(db) = TestDb::postgres("imap_sort_thread").await {
        sort_and_thread(db).await;
    }
}
