//! SMTP intake over real TCP against the in-process server: extensions, STARTTLS,
//! pipelining, every rejection path and every limit.

use std::time::Duration;

use store::testing::TestDb;

use ratspost_tests::client::{Client, message, sha256};
use ratspost_tests::server::Server;

const ANNA: &str = "anna@stadt.test";

async fn server(smtp_toml: &str) -> Server {
    let s = Server::start(smtp_toml).await;
    s.enrol("anna", &[ANNA]).await;
    s
}

#[tokio::test]
async fn ehlo_advertises_every_extension_and_starttls_only_before_tls() {
    let s = server("").await;
    let mut c = Client::greeted(s.smtp).await;
    let ehlo = c.ehlo().await;
    for ext in [
        "PIPELINING",
        "SIZE 26214400",
        "8BITMIME",
        "SMTPUTF8",
        "ENHANCEDSTATUSCODES",
        "CHUNKING",
        "STARTTLS",
    ] {
        assert!(
            ehlo.lines.iter().any(|l| l == ext),
            "{ext} missing in {ehlo:?}"
        );
    }
    let mut c = c.starttls(&s.cert()).await;
    let ehlo = c.ehlo().await;
    assert!(!ehlo.lines.iter().any(|l| l == "STARTTLS"), "{ehlo:?}");
    c.cmd("STARTTLS").await.expect(503, "5.5.1");
    let r = c
        .send_mail("a@upstream.test", &[ANNA], &message("tls1", "ueber TLS"))
        .await;
    r.expect(250, "2.0.0");
    let stored = s.messages().await;
    assert_eq!(stored.len(), 1);
    s.stop().await;
}

async fn accepted_message_is_stored_exactly(s: Server) {
    let anna_id = s.store.lookup_recipient(ANNA).await.expect("lookup");
    let bert = s.enrol("bert", &["bert@stadt.test"]).await;
    let mut c = Client::greeted(s.smtp).await;
    c.ehlo().await;
    // Lines starting with a dot are stuffed on the wire and must be stored unstuffed.
    let body = message("exact", ".hidden dot line\r\n..two dots\r\nend");
    let r = c
        .send_mail(
            "sender@upstream.test",
            &[ANNA, "BERT@Stadt.Test", ANNA],
            &body,
        )
        .await;
    r.expect(250, "2.0.0");
    assert!(r.text().contains("queued as"), "{r:?}");
    c.cmd("QUIT").await.expect(221, "2.0.0");

    let stored = s.messages().await;
    assert_eq!(stored.len(), 1);
    let (meta, raw) = &stored[0];
    assert_eq!(raw, &body, "stored bytes differ from the message sent");
    assert_eq!(meta.sha256, sha256(&body));
    assert_eq!(meta.message_id.as_deref(), Some("exact@upstream.test"));
    assert_eq!(meta.mail_from, "sender@upstream.test");
    assert_eq!(
        meta.recipients,
        [ANNA, "bert@stadt.test"],
        "duplicates collapse"
    );
    assert_eq!(meta.size, body.len() as i64);
    assert_eq!(meta.state, "received");
    assert!(matches!(anna_id, store::RecipientLookup::Enrolled(_)));
    assert!(bert > 0);
    s.stop().await;
}

#[tokio::test]
async fn accepted_message_is_stored_exactly_sqlite() {
    accepted_message_is_stored_exactly(server("").await).await;
}

#[tokio::test]
async fn accepted_message_is_stored_exactly_postgres() {
    let Some(db) = TestDb::postgres("accepted_message_is_stored_exactly").await else {
        return;
    };
    let s = Server::start_on(db, "").await;
    s.enrol("anna", &[ANNA]).await;
    accepted_message_is_stored_exactly(s).await;
}

#[tokio::test]
async fn pipelined_commands_get_their_replies_in_order() {
    let s = server("").await;
    let mut c = Client::greeted(s.smtp).await;
    // The whole transaction's envelope in one write, as a PIPELINING client sends it.
    c.send(
        b"EHLO client.test\r\nMAIL FROM:<a@upstream.test>\r\nRCPT TO:<anna@stadt.test>\r\nRCPT TO:<nobody@stadt.test>\r\nDATA\r\n",
    )
    .await;
    assert_eq!(c.reply().await.code, 250);
    c.reply().await.expect(250, "2.1.0");
    c.reply().await.expect(250, "2.1.5");
    c.reply().await.expect(550, "5.1.1");
    assert_eq!(c.reply().await.code, 354);
    // Message end, a second transaction and QUIT, all in one write.
    let mut rest = message("p1", "eins");
    rest.extend_from_slice(
        b".\r\nMAIL FROM:<> BODY=8BITMIME\r\nRCPT TO:<anna@stadt.test>\r\nDATA\r\n",
    );
    c.send(&rest).await;
    c.reply().await.expect(250, "2.0.0");
    c.reply().await.expect(250, "2.1.0");
    c.reply().await.expect(250, "2.1.5");
    assert_eq!(c.reply().await.code, 354);
    let mut second = message("p2", "zwei ä");
    second.extend_from_slice(b".\r\nQUIT\r\n");
    c.send(&second).await;
    c.reply().await.expect(250, "2.0.0");
    c.reply().await.expect(221, "2.0.0");
    let stored = s.messages().await;
    assert_eq!(stored.len(), 2);
    assert_eq!(stored[1].0.mail_from, "", "null sender is kept as empty");
    s.stop().await;
}

#[tokio::test]
async fn recipients_outside_enrolment_are_refused_without_relaying() {
    let s = server("local_domains = [\"rat.test\"]").await;
    let mut c = Client::greeted(s.smtp).await;
    c.ehlo().await;
    c.cmd("MAIL FROM:<a@upstream.test>")
        .await
        .expect(250, "2.1.0");
    c.cmd("RCPT TO:<unknown@stadt.test>")
        .await
        .expect(550, "5.1.1");
    c.cmd("RCPT TO:<nobody@rat.test>")
        .await
        .expect(550, "5.1.1");
    c.cmd("RCPT TO:<victim@gmail.test>")
        .await
        .expect(550, "5.7.1");
    // Classic relay tricks through a local domain: source route, %-hack, quoted local part.
    c.cmd("RCPT TO:<@stadt.test:victim@gmail.test>")
        .await
        .expect(550, "5.7.1");
    c.cmd("RCPT TO:<victim%gmail.test@stadt.test>")
        .await
        .expect(550, "5.1.1");
    c.cmd("RCPT TO:<\"victim@gmail.test\"@stadt.test>")
        .await
        .expect(550, "5.1.1");
    c.cmd("RCPT TO:<anna@stadt.test@gmail.test>")
        .await
        .expect(501, "5.1.3");
    c.cmd("RCPT TO:<not an address>").await.expect(501, "5.1.3");
    c.cmd("DATA").await.expect(503, "5.5.1");
    assert!(s.messages().await.is_empty());
    s.stop().await;
}

#[tokio::test]
async fn hosts_outside_the_upstream_networks_are_refused() {
    let s = server("upstream_networks = [\"192.0.2.0/24\"]").await;
    let mut c = Client::connect(s.smtp).await;
    c.reply().await.expect(554, "5.7.1");
    assert!(c.closed().await);
    s.stop().await;
}

#[tokio::test]
async fn commands_out_of_sequence_are_refused() {
    let s = server("").await;
    let mut c = Client::greeted(s.smtp).await;
    c.cmd("MAIL FROM:<a@upstream.test>")
        .await
        .expect(503, "5.5.1");
    c.ehlo().await;
    c.cmd("RCPT TO:<anna@stadt.test>")
        .await
        .expect(503, "5.5.1");
    c.cmd("DATA").await.expect(503, "5.5.1");
    c.cmd("MAIL FROM:<a@upstream.test>")
        .await
        .expect(250, "2.1.0");
    c.cmd("MAIL FROM:<a@upstream.test>")
        .await
        .expect(503, "5.5.1");
    c.cmd("RSET").await.expect(250, "2.0.0");
    c.cmd("RCPT TO:<anna@stadt.test>")
        .await
        .expect(503, "5.5.1");
    c.cmd("NOOP").await.expect(250, "2.0.0");
    c.cmd("VRFY anna").await.expect(252, "2.5.0");
    c.cmd("EXPN staff").await.expect(502, "5.5.1");
    c.cmd("HELP").await.expect(214, "2.0.0");
    c.cmd("AUTH PLAIN AGFhAGI=").await.expect(502, "5.5.1");
    c.cmd("QUIT").await.expect(221, "2.0.0");
    assert!(c.closed().await);
    s.stop().await;
}

#[tokio::test]
async fn malformed_commands_get_syntax_replies_and_the_session_goes_on() {
    let s = server("").await;
    let mut c = Client::greeted(s.smtp).await;
    c.ehlo().await;
    c.cmd("FROBNICATE").await.expect(500, "5.5.2");
    c.cmd("MAIL TO:<a@b>").await.expect(501, "5.5.4");
    c.cmd("MAIL FROM:<a@upstream.test> FOO=BAR")
        .await
        .expect(555, "5.5.4");
    c.cmd("MAIL FROM:<a@upstream.test> RET=FULL")
        .await
        .expect(555, "5.5.4");
    c.send(b"NOOP\n").await;
    c.reply().await.expect(500, "5.5.2");
    c.send(b"NOOP \0\r\n").await;
    c.reply().await.expect(500, "5.5.2");
    c.cmd("MAIL FROM:<jörg@upstream.test>")
        .await
        .expect(553, "5.6.7");
    c.cmd("MAIL FROM:<jörg@upstream.test> SMTPUTF8")
        .await
        .expect(250, "2.1.0");
    c.cmd("RCPT TO:<anna@stadt.test>")
        .await
        .expect(250, "2.1.5");
    c.cmd("RSET").await.expect(250, "2.0.0");
    c.cmd("NOOP").await.expect(250, "2.0.0");
    s.stop().await;
}

#[tokio::test]
async fn over_long_command_lines_are_refused_and_the_session_goes_on() {
    let s = server("max_command_line = 600").await;
    let mut c = Client::greeted(s.smtp).await;
    c.ehlo().await;
    let long = format!("NOOP {}\r\n", "x".repeat(5000));
    c.send(long.as_bytes()).await;
    c.reply().await.expect(500, "5.5.2");
    c.cmd("NOOP").await.expect(250, "2.0.0");
    s.stop().await;
}

#[tokio::test]
async fn size_limit_is_announced_checked_at_mail_and_after_data() {
    let s = server("max_message_size = 2000").await;
    let mut c = Client::greeted(s.smtp).await;
    let ehlo = c.ehlo().await;
    assert!(ehlo.lines.iter().any(|l| l == "SIZE 2000"), "{ehlo:?}");
    c.cmd("MAIL FROM:<a@upstream.test> SIZE=5000")
        .await
        .expect(552, "5.3.4");
    c.cmd("MAIL FROM:<a@upstream.test> SIZE=1000")
        .await
        .expect(250, "2.1.0");
    c.cmd("RCPT TO:<anna@stadt.test>")
        .await
        .expect(250, "2.1.5");
    assert_eq!(c.cmd("DATA").await.code, 354);
    // Lied about the size: the whole body is read, then refused.
    let big = message("big", &"0123456789 ".repeat(400));
    c.send(&big).await;
    c.send(b".\r\n").await;
    c.reply().await.expect(552, "5.3.4");
    // The session is in sync and usable.
    let r = c
        .send_mail("a@upstream.test", &[ANNA], &message("small", "klein"))
        .await;
    r.expect(250, "2.0.0");
    let stored = s.messages().await;
    assert_eq!(stored.len(), 1);
    assert_eq!(
        stored[0].0.message_id.as_deref(),
        Some("small@upstream.test")
    );
    s.stop().await;
}

#[tokio::test]
async fn message_content_defects_are_refused_after_data() {
    let s = server("max_message_line = 1000").await;
    let mut c = Client::greeted(s.smtp).await;
    c.ehlo().await;
    let cases: [(&str, &[u8], u16, &str); 4] = [
        ("bare LF", b"Subject: a\r\n\r\nline\nnext\r\n", 554, "5.6.0"),
        ("bare CR", b"Subject: a\r\n\r\nline\rnext\r\n", 554, "5.6.0"),
        ("NUL", b"Subject: a\r\n\r\nnul \0 here\r\n", 554, "5.6.0"),
        ("long line", &[b'x'; 1200], 554, "5.6.0"),
    ];
    for (what, body, code, enhanced) in cases {
        c.cmd("MAIL FROM:<a@upstream.test>")
            .await
            .expect(250, "2.1.0");
        c.cmd("RCPT TO:<anna@stadt.test>")
            .await
            .expect(250, "2.1.5");
        assert_eq!(c.cmd("DATA").await.code, 354);
        c.send(body).await;
        c.send(b"\r\n.\r\n").await;
        let r = c.reply().await;
        assert_eq!(r.code, code, "{what}: {r:?}");
        r.expect(code, enhanced);
    }
    // Declared 8-bit is fine (undeclared 8-bit too, by default: see below).
    c.cmd("MAIL FROM:<a@upstream.test> BODY=8BITMIME")
        .await
        .expect(250, "2.1.0");
    c.cmd("RCPT TO:<anna@stadt.test>")
        .await
        .expect(250, "2.1.5");
    assert_eq!(c.cmd("DATA").await.code, 354);
    c.send("Subject: a\r\n\r\nGrüße aus dem Rathaus\r\n.\r\n".as_bytes())
        .await;
    c.reply().await.expect(250, "2.0.0");
    assert_eq!(s.messages().await.len(), 1);
    s.stop().await;
}

/// Issue #9.9: Python's smtplib (and many scripts and appliances) send German text without
/// `BODY=8BITMIME`. Postfix, Exim and Exchange accept it; a refusal would bounce work mail back
/// to its sender. This is smtplib's `sendmail` session: EHLO, MAIL with only SIZE, RCPT, DATA.
#[tokio::test]
async fn undeclared_8bit_data_is_accepted_and_stored_as_received_by_default() {
    let s = server("").await;
    let mut c = Client::greeted(s.smtp).await;
    c.cmd("ehlo [127.0.0.1]").await.expect(250, "");
    let body = "From: rathaus@upstream.test\r\nTo: anna@stadt.test\r\nSubject: Grüße\r\n\r\nSehr geehrte Frau Schmidt, die Sitzung beginnt um 18 Uhr. Straße, Übergabe, ß.\r\n";
    c.cmd(&format!(
        "mail FROM:<rathaus@upstream.test> size={}",
        body.len()
    ))
    .await
    .expect(250, "2.1.0");
    c.cmd("rcpt TO:<anna@stadt.test>")
        .await
        .expect(250, "2.1.5");
    assert_eq!(c.cmd("data").await.code, 354);
    c.send(body.as_bytes()).await;
    c.send(b".\r\n").await;
    c.reply().await.expect(250, "2.0.0");
    let stored = s.messages().await;
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].1, body.as_bytes(), "stored exactly as received");
    s.stop().await;
}

/// Issue #9.9: the strict behaviour stays available as an option.
#[tokio::test]
async fn undeclared_8bit_data_is_refused_when_configured_strict() {
    let s = server("reject_undeclared_8bit = true").await;
    let mut c = Client::greeted(s.smtp).await;
    c.ehlo().await;
    c.cmd("MAIL FROM:<a@upstream.test>")
        .await
        .expect(250, "2.1.0");
    c.cmd("RCPT TO:<anna@stadt.test>")
        .await
        .expect(250, "2.1.5");
    assert_eq!(c.cmd("DATA").await.code, 354);
    c.send("Subject: a\r\n\r\nGrüße\r\n.\r\n".as_bytes()).await;
    c.reply().await.expect(554, "5.6.1");
    assert!(s.messages().await.is_empty());
    s.stop().await;
}

/// Issue #9.9: Exchange Online sends over BDAT, pipelined (MAIL, RCPT, BDAT … LAST in one
/// write), and its messages can hold bare LFs. BDAT is length-delimited, so a bare LF cannot
/// end the message: it is accepted and stored byte for byte. Bare LFs are also accepted when
/// they fall on a chunk boundary; a bare CR and every non-CRLF end of DATA stay refused.
#[tokio::test]
async fn bare_lf_in_bdat_is_accepted_as_exchange_online_sends_it() {
    let s = server("").await;
    let mut c = Client::greeted(s.smtp).await;
    c.cmd("EHLO DB8PR01MB1234.eurprd01.prod.exchangelabs.com")
        .await
        .expect(250, "");
    let body: &[u8] = b"Received: from DB8PR01MB1234.eurprd01.prod.exchangelabs.com\r\nFrom: buergerbuero@upstream.test\r\nSubject: Termin\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=\"utf-8\"\r\n\r\nZeile eins\nZeile zwei\n.\nMAIL FROM:<ceo@stadt.test>\r\nEnde\r\n";
    let mut pipelined = format!(
        "MAIL FROM:<buergerbuero@upstream.test> SIZE={} BODY=8BITMIME\r\nRCPT TO:<anna@stadt.test>\r\nBDAT {} LAST\r\n",
        body.len(),
        body.len()
    )
    .into_bytes();
    pipelined.extend_from_slice(body);
    c.send(&pipelined).await;
    c.reply().await.expect(250, "2.1.0");
    c.reply().await.expect(250, "2.1.5");
    c.reply().await.expect(250, "2.0.0");
    // A bare LF split across two chunks ("\r" never precedes it).
    c.cmd("MAIL FROM:<buergerbuero@upstream.test>")
        .await
        .expect(250, "2.1.0");
    c.cmd("RCPT TO:<anna@stadt.test>")
        .await
        .expect(250, "2.1.5");
    c.send(b"BDAT 15\r\nSubject: b\r\n\r\nx").await;
    c.reply().await.expect(250, "2.0.0");
    c.send(b"BDAT 3 LAST\r\n\ny\n").await;
    c.reply().await.expect(250, "2.0.0");
    // A bare CR is still refused, also in BDAT.
    c.cmd("MAIL FROM:<buergerbuero@upstream.test>")
        .await
        .expect(250, "2.1.0");
    c.cmd("RCPT TO:<anna@stadt.test>")
        .await
        .expect(250, "2.1.5");
    c.send(b"BDAT 19 LAST\r\nSubject: c\r\n\r\na\rb\r\n").await;
    c.reply().await.expect(554, "5.6.0");
    let stored = s.messages().await;
    assert_eq!(stored.len(), 2);
    assert_eq!(stored[0].1, body, "stored exactly as received");
    assert_eq!(stored[1].1, b"Subject: b\r\n\r\nx\ny\n");
    s.stop().await;
}

#[tokio::test]
async fn smuggled_end_of_data_does_not_start_a_second_message() {
    let s = server("").await;
    s.enrol("mallory", &["mallory@stadt.test"]).await;
    let mut c = Client::greeted(s.smtp).await;
    c.ehlo().await;
    c.cmd("MAIL FROM:<a@upstream.test>")
        .await
        .expect(250, "2.1.0");
    c.cmd("RCPT TO:<anna@stadt.test>")
        .await
        .expect(250, "2.1.5");
    assert_eq!(c.cmd("DATA").await.code, 354);
    c.send(
        b"Subject: harmless\r\n\r\nhello\n.\nMAIL FROM:<ceo@stadt.test>\r\nRCPT TO:<mallory@stadt.test>\r\nDATA\r\nSubject: forged\r\n\r\nsmuggled\r\n.\r\n",
    )
    .await;
    // Exactly one reply: the smuggled commands were message content, and the message with
    // its bare LF is refused.
    c.reply().await.expect(554, "5.6.0");
    c.cmd("NOOP").await.expect(250, "2.0.0");
    assert!(s.messages().await.is_empty());
    s.stop().await;
}

#[tokio::test]
async fn recipient_limit_gives_452() {
    let s = server("max_recipients = 2").await;
    s.enrol("b", &["b@stadt.test"]).await;
    s.enrol("c", &["c@stadt.test"]).await;
    let mut c = Client::greeted(s.smtp).await;
    c.ehlo().await;
    c.cmd("MAIL FROM:<a@upstream.test>")
        .await
        .expect(250, "2.1.0");
    c.cmd("RCPT TO:<anna@stadt.test>")
        .await
        .expect(250, "2.1.5");
    c.cmd("RCPT TO:<b@stadt.test>").await.expect(250, "2.1.5");
    c.cmd("RCPT TO:<c@stadt.test>").await.expect(452, "4.5.3");
    s.stop().await;
}

/// Connects from `source` (any 127.x.y.z address works on Linux loopback).
async fn connect_from(source: &str, server: std::net::SocketAddr) -> Client<tokio::net::TcpStream> {
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket
        .bind(format!("{source}:0").parse().expect("source address"))
        .expect("bind source");
    Client::from_stream(socket.connect(server).await.expect("connect"))
}

#[tokio::test]
async fn connection_limit_per_ip_gives_421_and_other_hosts_still_get_in() {
    let s = server("max_connections = 3\nmax_connections_per_ip = 2").await;
    let a = Client::greeted(s.smtp).await;
    let _b = Client::greeted(s.smtp).await;
    let mut c = Client::connect(s.smtp).await;
    let r = c.reply().await;
    r.expect(421, "4.7.0");
    assert!(r.text().contains("from your address"), "{r:?}");
    assert!(c.closed().await);
    // Another upstream host is not affected by the first one's limit.
    let mut other = connect_from("127.0.0.2", s.smtp).await;
    assert_eq!(other.reply().await.code, 220);
    other.ehlo().await;
    drop(a);
    // The slot comes back once the first session has ended.
    let mut again = None;
    for _ in 0..50 {
        let mut d = Client::connect(s.smtp).await;
        if d.reply().await.code == 220 {
            again = Some(d);
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(again.is_some(), "slot was not released");
    s.stop().await;
}

#[tokio::test]
async fn connection_limit_in_total_gives_421() {
    let s = server("max_connections = 2\nmax_connections_per_ip = 2").await;
    let _a = Client::greeted(s.smtp).await;
    let _b = connect_from("127.0.0.2", s.smtp).await;
    let mut c = connect_from("127.0.0.3", s.smtp).await;
    let r = c.reply().await;
    r.expect(421, "4.7.0");
    assert!(
        r.text().contains("Too many connections, try again later"),
        "{r:?}"
    );
    s.stop().await;
}

#[tokio::test]
async fn storage_failure_gives_451_and_acknowledges_nothing() {
    let s = server("").await;
    let mut c = Client::greeted(s.smtp).await;
    c.ehlo().await;
    c.cmd("MAIL FROM:<a@upstream.test>")
        .await
        .expect(250, "2.1.0");
    c.cmd("RCPT TO:<anna@stadt.test>")
        .await
        .expect(250, "2.1.5");
    assert_eq!(c.cmd("DATA").await.code, 354);
    // The database goes away between RCPT and the end of DATA.
    s.store.close().await;
    c.send(&message("lost", "nicht gespeichert")).await;
    c.send(b".\r\n").await;
    // A temporary failure: the upstream keeps the message and retries.
    c.reply().await.expect(451, "4.3.0");
    c.cmd("MAIL FROM:<a@upstream.test>")
        .await
        .expect(250, "2.1.0");
    c.cmd("RCPT TO:<anna@stadt.test>")
        .await
        .expect(451, "4.3.0");
    s.shutdown.run(Duration::from_secs(5)).await;
}

#[tokio::test]
async fn idle_clients_time_out_with_421() {
    let s = server("command_timeout_secs = 1").await;
    let mut c = Client::greeted(s.smtp).await;
    c.ehlo().await;
    let r = c.reply().await;
    r.expect(421, "4.4.2");
    assert!(c.closed().await);
    s.stop().await;
}

#[tokio::test]
async fn stalled_data_times_out_and_stores_nothing() {
    let s = server("data_timeout_secs = 1").await;
    let mut c = Client::greeted(s.smtp).await;
    c.ehlo().await;
    c.cmd("MAIL FROM:<a@upstream.test>")
        .await
        .expect(250, "2.1.0");
    c.cmd("RCPT TO:<anna@stadt.test>")
        .await
        .expect(250, "2.1.5");
    assert_eq!(c.cmd("DATA").await.code, 354);
    c.send(b"Subject: stalled\r\n\r\nhalf a mess").await;
    c.reply().await.expect(421, "4.4.2");
    assert!(s.messages().await.is_empty());
    s.stop().await;
}

#[tokio::test]
async fn too_many_errors_close_the_session() {
    let s = server("max_errors = 3").await;
    let mut c = Client::greeted(s.smtp).await;
    c.cmd("BAD1").await.expect(500, "5.5.2");
    c.cmd("BAD2").await.expect(500, "5.5.2");
    c.send(b"BAD3\r\n").await;
    c.reply().await.expect(500, "5.5.2");
    c.reply().await.expect(421, "4.7.0");
    assert!(c.closed().await);
    s.stop().await;
}

#[tokio::test]
async fn client_vanishing_mid_data_stores_nothing_and_the_server_goes_on() {
    let s = server("").await;
    {
        let mut c = Client::greeted(s.smtp).await;
        c.ehlo().await;
        c.cmd("MAIL FROM:<a@upstream.test>")
            .await
            .expect(250, "2.1.0");
        c.cmd("RCPT TO:<anna@stadt.test>")
            .await
            .expect(250, "2.1.5");
        assert_eq!(c.cmd("DATA").await.code, 354);
        c.send(b"Subject: cut\r\n\r\nthe connection drops here")
            .await;
    }
    let mut c = Client::greeted(s.smtp).await;
    c.ehlo().await;
    c.send_mail("a@upstream.test", &[ANNA], &message("after", "danach"))
        .await
        .expect(250, "2.0.0");
    let stored = s.messages().await;
    assert_eq!(stored.len(), 1);
    assert_eq!(
        stored[0].0.message_id.as_deref(),
        Some("after@upstream.test")
    );
    s.stop().await;
}

#[tokio::test]
async fn garbage_instead_of_a_tls_handshake_is_survived() {
    let s = server("").await;
    let mut c = Client::greeted(s.smtp).await;
    c.ehlo().await;
    c.cmd("STARTTLS").await.expect(220, "2.0.0");
    c.send(b"this is not a TLS client hello\r\n\r\n\x16\x03\x01garbage")
        .await;
    assert!(c.closed().await);
    // And a client that hangs up in the middle of the handshake.
    let mut c = Client::greeted(s.smtp).await;
    c.cmd("STARTTLS").await.expect(220, "2.0.0");
    drop(c);
    let mut c = Client::greeted(s.smtp).await;
    c.ehlo().await;
    let c = c.starttls(&s.cert()).await;
    drop(c);
    s.stop().await;
}

#[tokio::test]
async fn commands_injected_before_the_tls_handshake_are_discarded() {
    let s = server("").await;
    let mut c = Client::greeted(s.smtp).await;
    c.ehlo().await;
    // A man in the middle appends a command to the plaintext STARTTLS (CVE-2011-0411).
    c.send(b"STARTTLS\r\nMAIL FROM:<attacker@evil.test>\r\n")
        .await;
    c.reply().await.expect(220, "2.0.0");
    let mut c = c.into_tls(&s.cert()).await.expect("handshake");
    // Had the injected MAIL survived, this EHLO would see its 250 2.1.0 first.
    let ehlo = c.cmd("EHLO client.test").await;
    assert_eq!(ehlo.code, 250);
    assert!(ehlo.lines[0].starts_with("mx.test"), "{ehlo:?}");
    // And the TLS session starts with a clean state: no transaction.
    c.cmd("RCPT TO:<anna@stadt.test>")
        .await
        .expect(503, "5.5.1");
    s.stop().await;
}

#[tokio::test]
async fn require_tls_refuses_mail_before_starttls() {
    let s = server("require_tls = true").await;
    let mut c = Client::greeted(s.smtp).await;
    c.ehlo().await;
    c.cmd("MAIL FROM:<a@upstream.test>")
        .await
        .expect(530, "5.7.0");
    let mut c = c.starttls(&s.cert()).await;
    c.ehlo().await;
    c.send_mail("a@upstream.test", &[ANNA], &message("req", "ok"))
        .await
        .expect(250, "2.0.0");
    s.stop().await;
}

#[tokio::test]
async fn chunking_with_bdat_stores_the_exact_bytes() {
    let s = server("").await;
    let mut c = Client::greeted(s.smtp).await;
    c.ehlo().await;
    let body = message("bdat", "Zeile eins\r\n.Punkt am Anfang bleibt\r\nEnde");
    let (a, b) = body.split_at(40);
    c.cmd("MAIL FROM:<a@upstream.test>")
        .await
        .expect(250, "2.1.0");
    c.cmd("RCPT TO:<anna@stadt.test>")
        .await
        .expect(250, "2.1.5");
    c.send(format!("BDAT {}\r\n", a.len()).as_bytes()).await;
    c.send(a).await;
    c.reply().await.expect(250, "2.0.0");
    // The last chunk and the next command pipelined together.
    let mut last = format!("BDAT {} LAST\r\n", b.len()).into_bytes();
    last.extend_from_slice(b);
    last.extend_from_slice(b"NOOP\r\n");
    c.send(&last).await;
    c.reply().await.expect(250, "2.0.0");
    c.reply().await.expect(250, "2.0.0");
    // BDAT without a transaction: the chunk is consumed, not run as commands.
    c.send(b"BDAT 6 LAST\r\nQUIT\r\n").await;
    c.reply().await.expect(503, "5.5.1");
    c.cmd("NOOP").await.expect(250, "2.0.0");
    let stored = s.messages().await;
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].1, body);
    s.stop().await;
}

#[tokio::test]
async fn shutdown_says_421_to_idle_sessions_and_lets_a_transfer_finish() {
    let s = server("").await;
    let mut idle = Client::greeted(s.smtp).await;
    idle.ehlo().await;
    let mut busy = Client::greeted(s.smtp).await;
    busy.ehlo().await;
    busy.cmd("MAIL FROM:<a@upstream.test>")
        .await
        .expect(250, "2.1.0");
    busy.cmd("RCPT TO:<anna@stadt.test>")
        .await
        .expect(250, "2.1.5");
    assert_eq!(busy.cmd("DATA").await.code, 354);
    busy.send(b"Subject: in flight\r\n\r\nfirst half ").await;

    let shutdown = s.shutdown.clone();
    let stopping = tokio::spawn(async move { shutdown.run(Duration::from_secs(10)).await });
    idle.reply().await.expect(421, "4.3.0");
    assert!(idle.closed().await);
    // New connections are no longer accepted.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let refused = tokio::net::TcpStream::connect(s.smtp).await;
    if let Ok(stream) = refused {
        let mut probe = Client::from_stream(stream);
        assert!(
            probe.try_reply().await.is_none(),
            "a new session started during shutdown"
        );
    }
    // The transfer in progress completes and is acknowledged, then the session ends.
    busy.send(b"second half\r\n.\r\n").await;
    busy.reply().await.expect(250, "2.0.0");
    busy.reply().await.expect(421, "4.3.0");
    stopping.await.expect("shutdown");
    assert_eq!(s.messages().await.len(), 1);
    s.store.close().await;
}
