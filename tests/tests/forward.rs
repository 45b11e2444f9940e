//! Forwarding end to end: SMTP intake → classification → forward decision → queue → delivery
//! to the private provider (an SMTP sink), only under an active exemption; sensitive mail
//! leaves only as a notice; a revoked exemption stops mail already queued; bounces to the SRS
//! address reach the mailbox owner.

use std::time::Duration;

use mail_auth::arc::ArcSealer;
use mail_auth::common::crypto::Ed25519Key;
use mail_auth::common::headers::HeaderWriter as _;
use mail_auth::dkim::DkimSigner;
use mail_auth::{
    AuthenticatedMessage, AuthenticationResults, DkimResult, MessageAuthenticator, Parameters,
};
use ratspost_tests::client::{Client, message};
use ratspost_tests::dns::Dns;
use ratspost_tests::server::Server;
use ratspost_tests::sink::{Sink, SinkOptions};
use store::testing::TestDb;
use store::{Confirmation, ExemptionRequest, Role};

const ANNA: &str = "anna@stadt.test";
const PRIVATE: &str = "anna.privat@example.net";

async fn server(db: TestDb, smarthost: &str, extra: &str) -> Server {
    server_with_dns(db, smarthost, None, extra).await
}

/// A server whose DNS lookups (the DKIM and ARC checks of forwarded mail) go to `dns`, which
/// publishes ratspost's key record as `ratspost dkim record` prints it.
async fn server_with_dns(db: TestDb, smarthost: &str, dns: Option<&Dns>, extra: &str) -> Server {
    let resolvers = dns.map(Dns::delivery_toml).unwrap_or_default();
    let config = format!(
        "[delivery]\nsmarthost = {smarthost:?}\ntls = \"none\"\nretry_base_secs = 1\nretry_max_secs = 1\ntimeout_secs = 5\n{resolvers}\
         [notices]\nlink_base = \"https://ris.stadt.test/ratspost/m\"\npaper_url = \"https://ris.stadt.test/bi/suche?q={{reference}}\"\n{extra}"
    );
    let s = Server::start_full(db, "", &config).await;
    if let Some(dns) = dns {
        let (name, value) = relay::dkim::record(&s.config).expect("record");
        dns.set_txt(&name, &value);
    }
    s.add_user("anna", Role::Staff, &[ANNA]).await;
    s.add_user("admin1", Role::Admin, &[]).await;
    s
}

/// An active exemption for anna → PRIVATE; returns its id.
async fn exempt(s: &Server) -> i64 {
    s.exempt("anna", PRIVATE, "admin1").await
}

/// The private provider's view: mail-auth resolving keys through `dns`, as a receiver
/// resolves them on the internet.
fn receiver(dns: &Dns) -> MessageAuthenticator {
    MessageAuthenticator(
        relay::resolver::resolver(&[dns.addr], Duration::from_secs(2)).expect("resolver"),
    )
}

/// The `d=` of every DKIM signature in `message` that verifies.
async fn dkim_passes(dns: &Dns, message: &[u8]) -> Vec<String> {
    let parsed = AuthenticatedMessage::parse(message).expect("parse");
    receiver(dns)
        .verify_dkim(Parameters::new(&parsed))
        .await
        .iter()
        .filter(|r| r.result() == &DkimResult::Pass)
        .filter_map(|r| r.signature().map(|s| s.d.clone()))
        .collect()
}

/// The ARC chain's result and the number of its sets.
async fn arc_result(dns: &Dns, message: &[u8]) -> (DkimResult, usize) {
    let parsed = AuthenticatedMessage::parse(message).expect("parse");
    let out = receiver(dns).verify_arc(Parameters::new(&parsed)).await;
    (out.result().clone(), out.sets().len())
}

/// The values of the header `name` in `message`, unfolded (whitespace runs made one space).
fn header_values(message: &[u8], name: &str) -> Vec<String> {
    let parsed = mail_parser::MessageParser::default()
        .parse_headers(message)
        .expect("headers");
    parsed
        .headers_raw()
        .filter(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect()
}

/// Every `d=` of the DKIM-Signature headers in `message`, verifying or not.
fn dkim_domains(message: &[u8]) -> Vec<String> {
    header_values(message, "DKIM-Signature")
        .iter()
        .filter_map(|v| {
            v.split(';')
                .find_map(|tag| tag.trim().strip_prefix("d="))
                .map(|d| d.trim().to_ascii_lowercase())
        })
        .collect()
}

/// Whether `d` is aligned with `from_domain` under DMARC's relaxed rule (same organisational
/// domain; in the test zone every registered domain has two labels).
fn relaxed_aligned(d: &str, from_domain: &str) -> bool {
    let org = |name: &str| {
        let labels: Vec<&str> = name.rsplitn(3, '.').collect();
        labels
            .iter()
            .take(2)
            .rev()
            .copied()
            .collect::<Vec<_>>()
            .join(".")
    };
    org(d) == org(from_domain)
}

async fn send(s: &Server, body: &[u8]) {
    let mut c = Client::greeted(s.smtp).await;
    c.ehlo().await;
    c.send_mail("buergerbuero@verwaltung.test", &[ANNA], body)
        .await
        .expect(250, "2.0.0");
    c.cmd("QUIT").await;
}

async fn flow(db: TestDb) {
    let sink = Sink::start(SinkOptions::default()).await;
    let dns = Dns::start().await;
    let s = server_with_dns(db, &sink.addr.to_string(), Some(&dns), "").await;
    exempt(&s).await;

    // A clean message leaves intact: a Received line on top, then the original bytes.
    let clean = message(
        "clean1",
        "Die Sitzung beginnt um 17 Uhr. Siehe Vorlage 25-26613.",
    );
    send(&s, &clean).await;
    let got = sink.wait_for(1).await;
    assert_eq!(got[0].rcpt, [PRIVATE]);
    assert!(
        got[0].from.starts_with("SRS0=") && got[0].from.ends_with("@mx.test"),
        "{}",
        got[0].from
    );
    // Issue #14 §2: an intact forward is ARC-sealed, not DKIM-signed by ratspost.
    let forwarded = String::from_utf8_lossy(&got[0].data).into_owned();
    assert!(forwarded.starts_with("ARC-Seal: i=1;"), "{forwarded}");
    assert!(got[0].data.ends_with(&clean), "the body changed on the way");
    let added = &forwarded[..got[0].data.len() - clean.len()];
    assert!(
        added.contains("\r\nReceived: from client.test"),
        "a Received line above the original: {added}"
    );
    assert!(
        !added.starts_with("DKIM-Signature:") && !added.contains("\nDKIM-Signature:"),
        "ratspost DKIM-signed a forward: {added}"
    );
    assert!(dkim_domains(&got[0].data).is_empty(), "{added}");
    assert_eq!(
        arc_result(&dns, &got[0].data).await,
        (DkimResult::Pass, 1),
        "the forward's ARC chain does not verify:\n{added}"
    );
    let aar = header_values(&got[0].data, "ARC-Authentication-Results");
    assert_eq!(aar.len(), 1, "{aar:?}");
    assert!(aar[0].starts_with("i=1; mx.test;"), "{aar:?}");
    assert!(aar[0].contains("arc=none"), "{aar:?}");
    let mut tampered = got[0].data.clone();
    let at = forwarded.find("Die Sitzung").expect("body");
    tampered[at] = b'd';
    assert!(
        matches!(
            arc_result(&dns, &tampered).await.0,
            DkimResult::Fail(_) | DkimResult::Neutral(_)
        ),
        "a changed forward must not pass ARC"
    );

    // A sensitive message leaves only as a notice.
    let secret = message(
        "secret1",
        "Frau Claudia Peters, geb. 12.03.1975, Steuer-ID 86095742719, Diagnose F32.1. Siehe Vorlage 25-26613.",
    );
    send(&s, &secret).await;
    let got = sink.wait_for(2).await;
    let notice = String::from_utf8_lossy(&got[1].data).into_owned();
    for leak in ["86095742719", "Peters", "12.03.1975", "F32.1", "Diagnose"] {
        assert!(
            !notice.contains(leak),
            "{leak:?} leaked into the notice:\n{notice}"
        );
    }
    // ratspost wrote the notice: it carries ratspost's DKIM signature, which verifies
    // against the published record, and no ARC set.
    assert!(notice.starts_with("DKIM-Signature:"), "{notice}");
    assert_eq!(
        dkim_passes(&dns, &got[1].data).await,
        [s.config.dkim.domain.as_str()],
        "the notice's DKIM signature does not verify"
    );
    assert!(!notice.contains("ARC-Seal"), "{notice}");
    let mut tampered = got[1].data.clone();
    let at = notice.find("Vertrauliche").expect("subject");
    tampered[at] = b'v';
    assert!(
        dkim_passes(&dns, &tampered).await.is_empty(),
        "a changed notice must not verify"
    );
    let parsed = mail_parser::MessageParser::default()
        .parse(got[1].data.as_slice())
        .expect("notice is valid MIME");
    assert_eq!(
        parsed.subject(),
        Some("Vertrauliche Nachricht von Sender <sender@upstream.test>")
    );
    let text = parsed.body_text(0).expect("text part").into_owned();
    assert!(parsed.body_html(0).is_some(), "an HTML part too");
    assert!(
        text.contains("Steuer-Identifikationsnummer") && text.contains("Gesundheitsdaten"),
        "{text}"
    );
    assert!(
        text.contains("https://ris.stadt.test/bi/suche?q=25-26613"),
        "RIS link missing:\n{text}"
    );
    let link = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("https://ris.stadt.test/ratspost/m/"))
        .expect("the notice link");
    assert_eq!(link.len(), 64, "256-bit token");
    let (message_id, user_id) = s
        .store
        .resolve_notice_token(&store::token::hash(link), store::now_millis())
        .await
        .expect("resolve")
        .expect("the token opens the message");
    assert!(message_id > 0 && user_id > 0);
    // Links can be revoked at once (audited).
    let revoked = s
        .store
        .revoke_notice_tokens(message_id, "admin1", store::now_millis())
        .await
        .expect("revoke");
    assert!(
        revoked >= 2,
        "the forward's and the mailbox copy's links: {revoked}"
    );
    assert!(
        s.store
            .resolve_notice_token(&store::token::hash(link), store::now_millis())
            .await
            .expect("resolve")
            .is_none(),
        "a revoked link must not open the message"
    );
    assert!(
        s.store
            .resolve_notice_token(link, store::now_millis())
            .await
            .expect("resolve")
            .is_none(),
        "tokens are stored hashed"
    );

    // Every decision and delivery is in the audit chain.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let audit = s.store.list_audit(0, 200).await.expect("audit");
    let decided: Vec<&str> = audit
        .iter()
        .filter(|a| a.action == "forward.decided")
        .filter_map(|a| a.details["outcome"].as_str())
        .collect();
    assert_eq!(decided, ["forward", "notice"]);
    let sensitive_decision = audit
        .iter()
        .rfind(|a| a.action == "forward.decided")
        .expect("decision");
    assert_eq!(sensitive_decision.details["sensitive"], true);
    assert_eq!(sensitive_decision.details["target"], PRIVATE);
    assert!(
        sensitive_decision.details["sha256"]
            .as_str()
            .is_some_and(|h| h.len() == 64)
    );
    assert!(
        audit
            .iter()
            .filter(|a| a.action == "forward.delivered")
            .count()
            >= 1
    );
    assert!(matches!(
        s.store.verify_audit().await.expect("verify"),
        store::AuditCheck::Intact { .. }
    ));
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forwards_and_notices_sqlite() {
    flow(TestDb::sqlite()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forwards_and_notices_postgres() {
    if let Some(db) = TestDb::postgres("forwards_and_notices").await {
        flow(db).await;
    }
}

/// Issue #14 §2: a message with a spoofed `From:` in the town hall's own domain used to leave
/// with ratspost's DKIM signature for that domain, which DMARC's relaxed alignment accepts.
/// It must leave with no signature of ours that aligns with that `From:` — only the ARC set.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spoofed_sender_in_our_domain_borrows_no_signature_of_ours() {
    let sink = Sink::start(SinkOptions::default()).await;
    let dns = Dns::start().await;
    // As deployed: ratspost signs for the town hall's domain, whose addresses it serves.
    let s = server_with_dns(
        TestDb::sqlite(),
        &sink.addr.to_string(),
        Some(&dns),
        "[dkim]\ndomain = \"stadt.test\"\n",
    )
    .await;
    exempt(&s).await;
    let spoofed =
        b"From: Der Buergermeister <buergermeister@stadt.test>\r\nTo: anna@stadt.test\r\n\
        Subject: Kurze Bitte\r\nMessage-ID: <spoof1@attacker.test>\r\n\
        Date: Sun, 22 Nov 2026 10:00:00 +0100\r\n\r\nBitte rufen Sie mich heute noch an.\r\n";
    send(&s, spoofed).await;
    let got = sink.wait_for(1).await;
    let data = &got[0].data;
    assert!(data.ends_with(spoofed), "the original changed on the way");
    let domains = dkim_domains(data);
    assert!(
        domains.iter().all(|d| !relaxed_aligned(d, "stadt.test")),
        "a DKIM signature aligned with the spoofed From: {domains:?}"
    );
    assert!(
        domains.is_empty(),
        "ratspost added a DKIM signature: {domains:?}"
    );
    let passing = dkim_passes(&dns, data).await;
    assert!(
        passing.iter().all(|d| !relaxed_aligned(d, "stadt.test")),
        "{passing:?}"
    );
    // The ARC set is ratspost's (d=stadt.test) and verifies; DMARC does not take an ARC
    // seal's domain for alignment, and the results claim no DKIM pass.
    assert_eq!(arc_result(&dns, data).await, (DkimResult::Pass, 1));
    let seal = header_values(data, "ARC-Seal");
    assert!(seal[0].contains("d=stadt.test"), "{seal:?}");
    let aar = header_values(data, "ARC-Authentication-Results");
    assert!(!aar[0].contains("dkim=pass"), "{aar:?}");
    s.stop().await;
}

/// A signing key of the sending domain `upstream.test`, published in `dns`.
fn upstream_key(dns: &Dns) -> impl Fn() -> Ed25519Key {
    let der = Ed25519Key::generate_pkcs8().expect("key");
    let key = move || Ed25519Key::from_pkcs8_der(&der).expect("key");
    dns.set_txt(
        "upstream-key._domainkey.upstream.test",
        &format!(
            "v=DKIM1; k=ed25519; p={}",
            relay::encoding::base64(&key().public_key())
        ),
    );
    key
}

/// `original` with upstream.test's DKIM signature on top.
fn upstream_signed(key: &impl Fn() -> Ed25519Key, original: &[u8]) -> Vec<u8> {
    let signature = DkimSigner::from_key(key())
        .domain("upstream.test")
        .selector("upstream-key")
        .headers(["From", "To", "Subject", "Date", "Message-ID"])
        .sign(original)
        .expect("sign");
    [signature.to_header().into_bytes(), original.to_vec()].concat()
}

/// The original's own DKIM signature still verifies after the forward, and ratspost's
/// results say so; a message that already carries an ARC chain gets the next set, with
/// `cv=pass`, and the whole chain verifies.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_original_signature_and_chain_survive_and_are_reported() {
    let sink = Sink::start(SinkOptions::default()).await;
    let dns = Dns::start().await;
    let s = server_with_dns(TestDb::sqlite(), &sink.addr.to_string(), Some(&dns), "").await;
    exempt(&s).await;
    let key = upstream_key(&dns);

    let signed = upstream_signed(&key, &message("signed1", "Die Sitzung beginnt um 17 Uhr."));
    send(&s, &signed).await;
    let got = sink.wait_for(1).await;
    let data = &got[0].data;
    assert!(data.ends_with(&signed), "the original's bytes changed");
    assert_eq!(
        dkim_passes(&dns, data).await,
        ["upstream.test"],
        "the original's signature must verify after the forward, and be the only one"
    );
    assert_eq!(arc_result(&dns, data).await, (DkimResult::Pass, 1));
    let aar = header_values(data, "ARC-Authentication-Results");
    assert!(
        aar[0].contains("dkim=pass header.d=upstream.test header.s=upstream-key"),
        "{aar:?}"
    );

    // A list on the way has already sealed it (i=1).
    let signed = upstream_signed(&key, &message("sealed1", "Die Sitzung beginnt um 18 Uhr."));
    let parsed = AuthenticatedMessage::parse(&signed).expect("parse");
    let dkim = receiver(&dns).verify_dkim(Parameters::new(&parsed)).await;
    let chain = receiver(&dns).verify_arc(Parameters::new(&parsed)).await;
    let results =
        AuthenticationResults::new("list.upstream.test").with_dkim_results(&dkim, parsed.from());
    let set = ArcSealer::from_key(key())
        .domain("upstream.test")
        .selector("upstream-key")
        .headers(["From", "To", "Subject", "DKIM-Signature"])
        .seal(&parsed, &results, &chain)
        .expect("seal");
    let sealed = [set.to_header().into_bytes(), signed.clone()].concat();
    assert_eq!(arc_result(&dns, &sealed).await, (DkimResult::Pass, 1));
    send(&s, &sealed).await;
    let got = sink.wait_for(2).await;
    let data = &got[1].data;
    assert!(data.ends_with(&sealed), "the original's bytes changed");
    assert!(
        String::from_utf8_lossy(data).starts_with("ARC-Seal: i=2;"),
        "{}",
        String::from_utf8_lossy(data)
    );
    assert_eq!(arc_result(&dns, data).await, (DkimResult::Pass, 2));
    let seals = header_values(data, "ARC-Seal");
    assert!(
        seals
            .iter()
            .any(|v| v.starts_with("i=2;") && v.contains("cv=pass") && v.contains("d=mx.test")),
        "{seals:?}"
    );
    let aar = header_values(data, "ARC-Authentication-Results");
    let ours = aar
        .iter()
        .find(|v| v.starts_with("i=2;"))
        .expect("our results");
    assert!(
        ours.contains("arc=pass") && ours.contains("dkim=pass header.d=upstream.test"),
        "{ours}"
    );
    assert_eq!(dkim_passes(&dns, data).await, ["upstream.test"]);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_an_exemption_nothing_is_sent() {
    let sink = Sink::start(SinkOptions::default()).await;
    let s = server(TestDb::sqlite(), &sink.addr.to_string(), "").await;
    send(&s, &message("plain", "Guten Morgen")).await;
    s.classified().await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(sink.received().is_empty());
    assert!(s.store.list_outbound(10).await.expect("jobs").is_empty());
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoked_while_queued_is_not_sent() {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = l.local_addr().expect("addr");
    drop(l);
    let s = server(TestDb::sqlite(), &addr.to_string(), "").await;
    let id = exempt(&s).await;
    send(&s, &message("queued", "Termin morgen")).await;
    s.classified().await;
    // The provider is down: the forward waits in the queue. Then the exemption is revoked.
    for _ in 0..100 {
        if s.store
            .list_outbound(10)
            .await
            .expect("jobs")
            .iter()
            .any(|j| j.kind == "forward" && j.attempts >= 1)
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    s.store
        .revoke_exemption(id, "admin1", store::now_millis())
        .await
        .expect("revoke");
    let sink = Sink::start_on(addr, SinkOptions::default()).await;
    for _ in 0..100 {
        if s.store
            .list_outbound(10)
            .await
            .expect("jobs")
            .iter()
            .any(|j| j.kind == "forward" && j.state == "dropped")
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let forward = s
        .store
        .list_outbound(10)
        .await
        .expect("jobs")
        .into_iter()
        .find(|j| j.kind == "forward")
        .expect("job");
    assert_eq!(forward.state, "dropped", "{forward:?}");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        sink.received()
            .iter()
            .all(|r| r.rcpt != [PRIVATE] || !String::from_utf8_lossy(&r.data).contains("Termin"))
    );
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notices_only_policy_turns_clean_mail_into_notices() {
    let sink = Sink::start(SinkOptions::default()).await;
    let s = server(
        TestDb::sqlite(),
        &sink.addr.to_string(),
        "[exemptions]\nnotices_only = true\n",
    )
    .await;
    exempt(&s).await;
    send(
        &s,
        &message("clean2", "Ganz harmlos: Einladung zum Sommerfest"),
    )
    .await;
    let got = sink.wait_for(1).await;
    let text = String::from_utf8_lossy(&got[0].data);
    assert!(!text.contains("Sommerfest"), "{text}");
    assert!(text.contains("ratspost/m/"), "{text}");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_forward_tells_the_mailbox_owner_never_the_sender() {
    let sink = Sink::start(SinkOptions {
        rcpt_reply: Some("550 5.1.1 mailbox unknown".into()),
        ..SinkOptions::default()
    })
    .await;
    let s = server(TestDb::sqlite(), &sink.addr.to_string(), "").await;
    exempt(&s).await;
    send(&s, &message("refused", "Guten Tag")).await;
    let mut notice = None;
    for _ in 0..300 {
        let annas = s
            .store
            .list_messages(&store::MessageFilter {
                user: Some("anna".into()),
                limit: None,
                ..Default::default()
            })
            .await
            .expect("list");
        notice = annas.into_iter().find(|m| m.mail_from.is_empty());
        if notice.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let notice = notice.expect("a failure notice in anna's mailbox");
    assert_eq!(notice.state, "processed", "never forwarded itself");
    let raw = s.store.message_raw(notice.id).await.expect("raw");
    let parsed = mail_parser::MessageParser::default()
        .parse(raw.as_slice())
        .expect("MIME");
    assert_eq!(parsed.subject(), Some("Weiterleitung fehlgeschlagen"));
    let text = parsed.body_text(0).expect("text").into_owned();
    assert!(
        text.contains(PRIVATE) && text.contains("550 5.1.1"),
        "{text}"
    );
    // When it was, in German local time (issue #9.6), never RFC 3339.
    assert!(
        text.contains(" vom ") && text.contains(" Uhr konnte nicht"),
        "{text}"
    );
    assert!(!ratspost_tests::contains_rfc3339(&text), "{text}");
    // Nothing went to the original sender.
    let jobs = s.store.list_outbound(50).await.expect("jobs");
    assert!(
        jobs.iter().all(|j| !j.rcpt_to.contains("buergerbuero")),
        "{jobs:?}"
    );
    assert!(
        jobs.iter()
            .any(|j| j.kind == "forward" && j.state == "failed")
    );
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reminder_reaches_the_private_address_before_the_end() {
    let sink = Sink::start(SinkOptions::default()).await;
    // A 7-day exemption is within a 60-day reminder window at once.
    let s = server(
        TestDb::sqlite(),
        &sink.addr.to_string(),
        "[exemptions]
reminder_days = 60
check_interval_secs = 1
",
    )
    .await;
    exempt(&s).await;
    let got = sink.wait_for(1).await;
    let parsed = mail_parser::MessageParser::default()
        .parse(got[0].data.as_slice())
        .expect("MIME");
    assert_eq!(parsed.subject(), Some("Ihre Weiterleitung endet bald"));
    assert_eq!(got[0].rcpt, [PRIVATE]);
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(sink.received().len(), 1, "reminded once only");
    let actions: Vec<String> = s
        .store
        .list_audit(0, 100)
        .await
        .expect("audit")
        .into_iter()
        .map(|a| a.action)
        .collect();
    assert!(
        actions.contains(&"exemption.reminder_sent".to_owned()),
        "{actions:?}"
    );
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bounces_to_the_srs_address_reach_the_mailbox_owner() {
    let sink = Sink::start(SinkOptions::default()).await;
    let s = server(TestDb::sqlite(), &sink.addr.to_string(), "").await;
    exempt(&s).await;
    send(&s, &message("tobounce", "Hallo")).await;
    let srs = sink.wait_for(1).await[0].from.clone();
    // The private provider bounces to the SRS address.
    let mut c = Client::greeted(s.smtp).await;
    c.ehlo().await;
    c.send_mail("", &[&srs], &message("bounce", "Delivery failed"))
        .await
        .expect(250, "2.0.0");
    let list = s
        .store
        .list_messages(&store::MessageFilter {
            user: Some("anna".into()),
            limit: None,
            ..Default::default()
        })
        .await
        .expect("list");
    assert!(
        list.iter()
            .any(|m| m.message_id.as_deref() == Some("bounce@upstream.test")),
        "the bounce is in anna's mailbox"
    );
    // A forged SRS address is refused like any unknown address.
    let forged = srs.replacen("SRS0=", "SRS0=0", 1);
    c.cmd("MAIL FROM:<>").await.expect(250, "2.1.0");
    let r = c.cmd(&format!("RCPT TO:<{forged}>")).await;
    assert_eq!(r.code, 550, "{r:?}");
    s.stop().await;
}

/// Issue 9, parts 6 and 7: the reminder says that a follow-up exists, dates in the reminder
/// and in notices are German local time (never RFC 3339), and when the current exemption
/// ends its approved follow-up forwards at once — decided at the moment a message arrives.
/// The passing of days is simulated by moving the stored periods (raw SQL), as the daemon
/// reads the real clock.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follow_up_forwards_without_gap_and_dates_are_local() {
    const NEXT: &str = "anna.neu@example.org";
    const DAY: i64 = 24 * 60 * 60 * 1000;
    let sink = Sink::start(SinkOptions::default()).await;
    let s = server(
        TestDb::sqlite(),
        &sink.addr.to_string(),
        "[exemptions]\nreminder_days = 3\ncheck_interval_secs = 1\n",
    )
    .await;
    let first = exempt(&s).await;
    let policy = &s.config.exemptions.policy;
    let now = store::now_millis();
    let second = s
        .store
        .request_exemption(
            &ExemptionRequest {
                login: "anna".into(),
                target: NEXT.into(),
                days: 5,
                reason: "Test".into(),
                by: "anna".into(),
            },
            policy,
            "code-2",
            |id| {
                relay::compose::confirmation(&s.config.notices, id, "anna", NEXT, "0", 5, "-", "-")
            },
            now,
        )
        .await
        .expect("a follow-up while the first is active")
        .id;

    // The first ends within a day: the reminder says a follow-up is already requested.
    let end = now + DAY;
    store::testing::raw_execute(
        &s.store,
        &format!("UPDATE exemptions SET valid_until = {end} WHERE id = {first}"),
    )
    .await;
    let got = sink
        .wait_until(|m| {
            String::from_utf8_lossy(&m.data).contains("Subject: Ihre Weiterleitung endet bald")
        })
        .await;
    assert_eq!(got.rcpt, [PRIVATE]);
    let reminder = mail_parser::MessageParser::default()
        .parse(got.data.as_slice())
        .expect("MIME");
    let text = reminder.body_text(0).expect("text").into_owned();
    let local_end = webui::datetime::Dates::default().millis(end);
    assert!(
        text.contains(&format!("endet am {local_end}.")),
        "{local_end:?} missing: {text}"
    );
    assert!(
        text.contains(&format!(
            "Anschlussausnahme (Nr. {second}) ist bereits beantragt"
        )),
        "{text}"
    );
    assert!(!ratspost_tests::contains_rfc3339(&text), "{text}");

    // Approved, the follow-up waits for the first's end; until then the first forwards.
    s.store
        .approve_exemption(second, "admin1", policy, now)
        .await
        .expect("approve");
    let Confirmation::Accepted(e) = s
        .store
        .confirm_exemption(second, "code-2", policy, now)
        .await
        .expect("confirm")
    else {
        panic!("right code refused");
    };
    assert_eq!(
        (e.valid_from, e.valid_until),
        (Some(end), Some(end + 5 * DAY))
    );
    let secret = message(
        "secret9",
        "Frau Claudia Peters, geb. 12.03.1975, Steuer-ID 86095742719, Diagnose F32.1.",
    );
    send(&s, &secret).await;
    let got = sink
        .wait_until(|m| {
            String::from_utf8_lossy(&m.data).contains("Subject: Vertrauliche Nachricht von")
        })
        .await;
    assert_eq!(got.rcpt, [PRIVATE], "the first still forwards");
    let notice = mail_parser::MessageParser::default()
        .parse(got.data.as_slice())
        .expect("MIME");
    let text = notice.body_text(0).expect("text").into_owned();
    let html = notice.body_html(0).expect("html").into_owned();
    assert!(
        text.contains("Datum: 22. November 2026, 10:00 Uhr"),
        "the original's date in local time: {text}"
    );
    assert!(
        text.contains("Der Link gilt bis ") && text.contains(" Uhr."),
        "{text}"
    );
    assert!(!ratspost_tests::contains_rfc3339(&text), "{text}");
    assert!(!ratspost_tests::contains_rfc3339(&html), "{html}");
    // Without a Date header of its own, the notice gives when ratspost took the message.
    send(
        &s,
        b"From: Amt <amt@upstream.test>\r\nTo: anna@stadt.test\r\nSubject: ohne Datum\r\n\
Message-ID: <nodate@upstream.test>\r\n\r\nSteuer-ID 86095742719\r\n",
    )
    .await;
    let got = sink
        .wait_until(|m| {
            let data = String::from_utf8_lossy(&m.data);
            data.contains("Subject: Vertrauliche Nachricht von") && !data.contains("22. November")
        })
        .await;
    let undated = mail_parser::MessageParser::default()
        .parse(got.data.as_slice())
        .expect("MIME")
        .body_text(0)
        .expect("text")
        .into_owned();
    let line = undated
        .lines()
        .find(|l| l.starts_with("Datum:"))
        .expect("a date line");
    assert!(line.ends_with(" Uhr"), "no date given: {line:?}");

    // A day later (simulated: both periods moved back by the same amount, keeping them
    // adjacent): the first has ended and the follow-up forwards — no gap.
    let shift = end - store::now_millis() + 1000;
    store::testing::raw_execute(
        &s.store,
        &format!(
            "UPDATE exemptions SET valid_from = valid_from - {shift}, valid_until = valid_until - {shift} \
             WHERE id IN ({first}, {second})"
        ),
    )
    .await;
    send(&s, &message("clean9", "Die Sitzung beginnt um 17 Uhr.")).await;
    let forwarded = sink
        .wait_until(|m| String::from_utf8_lossy(&m.data).contains("clean9@upstream.test"))
        .await;
    assert_eq!(forwarded.rcpt, [NEXT], "the follow-up forwards now");
    let decided = s
        .store
        .list_audit(0, 500)
        .await
        .expect("audit")
        .into_iter()
        .rfind(|a| a.action == "forward.decided")
        .expect("decision");
    assert_eq!(decided.details["target"], NEXT);
    assert!(
        decided.subjects.contains(&format!("exemption:{second}")),
        "{decided:?}"
    );
    s.stop().await;
}

/// Issue 9, part 7: a forward queued under an exemption just before it ran out, and retried
/// after the end, still leaves when the follow-up to the same address took over without a
/// gap (the delivery worker's re-check at delivery time).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retried_forward_leaves_under_the_follow_up() {
    let sink = Sink::start(SinkOptions::default()).await;
    let addr = sink.addr;
    let s = server(TestDb::sqlite(), &addr.to_string(), "").await;
    let first = exempt(&s).await;
    let policy = &s.config.exemptions.policy;
    let now = store::now_millis();
    let second = s
        .store
        .request_exemption(
            &ExemptionRequest {
                login: "anna".into(),
                target: PRIVATE.into(),
                days: 5,
                reason: "Test".into(),
                by: "anna".into(),
            },
            policy,
            "code-2",
            |id| {
                relay::compose::confirmation(
                    &s.config.notices,
                    id,
                    "anna",
                    PRIVATE,
                    "0",
                    5,
                    "-",
                    "-",
                )
            },
            now,
        )
        .await
        .expect("follow-up")
        .id;
    s.store
        .approve_exemption(second, "admin1", policy, now)
        .await
        .expect("approve");
    s.store
        .confirm_exemption(second, "code-2", policy, now)
        .await
        .expect("confirm");
    // The provider is down: the forward waits in the queue under the first exemption.
    sink.stop();
    send(&s, &message("late9", "Die Sitzung beginnt um 17 Uhr.")).await;
    let queued = || async {
        s.store
            .list_outbound(50)
            .await
            .expect("jobs")
            .into_iter()
            .find(|j| j.kind == "forward")
    };
    for _ in 0..100 {
        if queued().await.is_some_and(|j| j.attempts > 0) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let job = queued().await.expect("the forward is queued");
    assert_eq!(job.exemption_id, Some(first));
    // Days pass (simulated): the first ran out, the follow-up took over without a gap.
    let end = s
        .store
        .exemption(first)
        .await
        .expect("first")
        .valid_until
        .expect("until");
    let shift = end - store::now_millis() + 1000;
    store::testing::raw_execute(
        &s.store,
        &format!(
            "UPDATE exemptions SET valid_from = valid_from - {shift}, valid_until = valid_until - {shift} \
             WHERE id IN ({first}, {second})"
        ),
    )
    .await;
    let sink = Sink::start_on(addr, SinkOptions::default()).await;
    let got = sink
        .wait_until(|m| String::from_utf8_lossy(&m.data).contains("late9@upstream.test"))
        .await;
    assert_eq!(got.rcpt, [PRIVATE]);
    s.stop().await;
}

/// The notice a sink received: subject, text and HTML part, decoded.
fn notice_parts(data: &[u8]) -> (String, String, String) {
    let parsed = mail_parser::MessageParser::default()
        .parse(data)
        .expect("notice is valid MIME");
    (
        parsed.subject().unwrap_or_default().to_owned(),
        parsed.body_text(0).expect("text part").into_owned(),
        parsed.body_html(0).expect("HTML part").into_owned(),
    )
}

/// Issue #10 §6: a notice repeats nothing of the original that carries something itself —
/// not the display name (identifier, CR/LF), not the subject (a diagnosis), not a link to
/// another host or with another query — and rebuilds the RIS links it does show.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_notice_carries_nothing_of_the_original() {
    let sink = Sink::start(SinkOptions::default()).await;
    let s = server(
        TestDb::sqlite(),
        &sink.addr.to_string(),
        "show_subject = true\nris_hosts = [\"ris.stadt.test\", \"sessionnet.stadt.test\"]\n",
    )
    .await;
    exempt(&s).await;
    // The display name holds a Steuer-ID and, decoded, a CR/LF with a header line.
    let mail = "From: =?UTF-8?Q?Steuer-ID_8609_5742_719=0D=0AX-Injected=3A_yes_Max_Mustermann?= <max@upstream.test>\r\n\
        To: anna@stadt.test\r\n\
        Subject: Herr Meier ist an Depression erkrankt (Diagnose F32.1)\r\n\
        Message-ID: <leaky@upstream.test>\r\n\
        Date: Sun, 22 Nov 2026 10:00:00 +0100\r\n\r\n\
        Zu Antrag 8609-574271-9 und Vorlage 25-26613, IBAN DE89 3704 0044 0532 0130 00.\r\n\
        https://evil.example/bi/vo020.asp?VOLFDNR=1001737\r\n\
        https://ris.stadt.test/bi/vo020.asp?VOLFDNR=1001738&iban=DE89370400440532013000\r\n\
        https://ris.stadt.test/bi/vo020.asp?VOLFDNR=4711#diagnose-F32\r\n\
        http://SessionNet.Stadt.Test:443/vo0050.php?__kvonr=2233\r\n\
        https://ris.stadt.test/oparl/v1/paper/86095742719\r\n"
        .as_bytes()
        .to_vec();
    send(&s, &mail).await;
    let got = sink.wait_for(1).await;
    assert_eq!(got[0].rcpt, [PRIVATE]);
    let raw = String::from_utf8_lossy(&got[0].data).into_owned();
    let (subject, text, html) = notice_parts(&got[0].data);
    assert_eq!(
        subject,
        "Vertrauliche Nachricht von max@upstream.test: (Betreff nicht angezeigt)"
    );
    for part in [&raw, &subject, &text, &html] {
        for leak in [
            "86095742719",
            "8609",
            "574271",
            "Mustermann",
            "Injected",
            "Meier",
            "Depression",
            "F32",
            "iban",
            "DE89",
            "0532",
            "evil.example",
            "1001737",
            "1001738",
            "diagnose",
            ":443",
        ] {
            assert!(
                !part.contains(leak),
                "{leak:?} leaked into the notice:\n{part}"
            );
        }
    }
    assert!(text.contains("Von: max@upstream.test\r\n"), "{text}");
    for link in [
        "https://ris.stadt.test/bi/vo020.asp?VOLFDNR=4711",
        "https://sessionnet.stadt.test/vo0050.php?__kvonr=2233",
        "https://ris.stadt.test/bi/suche?q=25-26613",
    ] {
        assert!(text.contains(link), "{link} missing:\n{text}");
        assert!(
            html.contains(&format!("href=\"{link}\"")),
            "{link} missing:\n{html}"
        );
    }
    // The mailbox copy is cleaned the same way.
    let anna = s.store.user_by_login("anna").await.expect("anna");
    let message = s
        .store
        .list_messages(&store::MessageFilter {
            user: Some("anna".into()),
            limit: None,
            ..Default::default()
        })
        .await
        .expect("list")
        .into_iter()
        .find(|m| !m.mail_from.is_empty())
        .expect("the message");
    let copy = s
        .store
        .mailbox_copy(message.id, anna.id)
        .await
        .expect("copy")
        .expect("processed");
    let (subject, text, _) = notice_parts(&copy);
    assert!(
        subject.ends_with("max@upstream.test: (Betreff nicht angezeigt)"),
        "{subject}"
    );
    for leak in ["8609", "Mustermann", "Meier", "evil.example", "DE89"] {
        assert!(
            !text.contains(leak),
            "{leak:?} in the mailbox copy:\n{text}"
        );
    }
    assert!(
        text.contains("https://ris.stadt.test/bi/vo020.asp?VOLFDNR=4711"),
        "{text}"
    );
    let audit = s.store.list_audit(0, 200).await.expect("audit");
    assert!(
        !audit.iter().any(|a| a.action == "notice.withheld"),
        "{audit:?}"
    );
    s.stop().await;
}

/// A notice the classifier flags itself does not leave (fail closed, audited): here the
/// admin's rules count links to the secure area as sensitive.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_notice_that_would_be_sensitive_is_withheld() {
    let sink = Sink::start(SinkOptions::default()).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let rules = dir.path().join("rules.toml");
    std::fs::write(
        &rules,
        "[[custom]]\nname = \"secure_area\"\ncategory = \"secure_area_link\"\npattern = 'ris\\.stadt\\.test/ratspost/m/'\n",
    )
    .expect("rules");
    let s = server(
        TestDb::sqlite(),
        &sink.addr.to_string(),
        &format!("[classifier]\nrules = {:?}\n", rules.display().to_string()),
    )
    .await;
    let exemption = exempt(&s).await;
    send(
        &s,
        &message("flagged", "Steuer-ID 86095742719, bitte prüfen."),
    )
    .await;
    let mut entry = None;
    for _ in 0..300 {
        let audit = s.store.list_audit(0, 200).await.expect("audit");
        entry = audit.into_iter().find(|a| a.action == "notice.withheld");
        if entry.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let entry = entry.expect("the withheld notice is audited");
    assert_eq!(entry.details["kind"], "notice");
    assert_eq!(
        entry.details["categories"],
        serde_json::json!(["secure_area_link"])
    );
    assert!(
        entry.subjects.contains(&format!("exemption:{exemption}"))
            && entry.subjects.contains(&"user:anna".to_owned()),
        "{:?}",
        entry.subjects
    );
    let jobs = s.store.list_outbound(50).await.expect("jobs");
    assert!(jobs.iter().all(|j| j.kind != "notice"), "{jobs:?}");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(sink.received().is_empty());
    s.stop().await;
}

/// A reminder the classifier flags is not queued; it is audited once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reminder_that_would_be_sensitive_is_withheld() {
    let sink = Sink::start(SinkOptions::default()).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let rules = dir.path().join("rules.toml");
    std::fs::write(
        &rules,
        "[[keywords]]\nname = \"private_address\"\ncategory = \"private_address\"\nwords = [\"anna.privat@example.net\"]\n",
    )
    .expect("rules");
    let s = server(
        TestDb::sqlite(),
        &sink.addr.to_string(),
        &format!(
            "[classifier]\nrules = {:?}\n[exemptions]\nreminder_days = 60\ncheck_interval_secs = 1\n",
            rules.display().to_string()
        ),
    )
    .await;
    exempt(&s).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let audit = s.store.list_audit(0, 200).await.expect("audit");
    let withheld: Vec<_> = audit
        .iter()
        .filter(|a| a.action == "notice.withheld")
        .collect();
    assert_eq!(withheld.len(), 1, "audited once: {audit:?}");
    assert_eq!(withheld[0].details["kind"], "reminder");
    assert!(!audit.iter().any(|a| a.action == "exemption.reminder_sent"));
    assert!(sink.received().is_empty());
    s.stop().await;
}
