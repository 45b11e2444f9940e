//! The delivery worker against an SMTP sink: verified STARTTLS, retries while the smarthost
//! is down, TLS held when required, permanent refusals, and the exemption re-checked when the
//! job is handed over.

use std::time::Duration;

use hickory_resolver::proto::rr::RecordType;
use ratspost_tests::dns::{Dns, Entry};
use ratspost_tests::server::Server;
use ratspost_tests::sink::{Sink, SinkOptions};
use store::testing::TestDb;
use store::{ExemptionRequest, OutboundJob, Role};

const TARGET: &str = "anna.privat@example.net";

async fn server(smarthost: &str, ca_file: Option<&std::path::Path>, tls: &str) -> Server {
    server_with(&format!("smarthost = {smarthost:?}\n"), ca_file, tls).await
}

/// A server whose `[delivery]` section holds `route` (smarthost or MX settings).
async fn server_with(route: &str, ca_file: Option<&std::path::Path>, tls: &str) -> Server {
    let ca = ca_file
        .map(|p| format!("ca_file = {:?}\n", p.display().to_string()))
        .unwrap_or_default();
    let extra = format!(
        "[delivery]\n{route}tls = {tls:?}\n{ca}retry_base_secs = 1\nretry_max_secs = 1\ntimeout_secs = 5\n"
    );
    let s = Server::start_full(TestDb::sqlite(), "", &extra).await;
    s.add_user("anna", Role::Staff, &["anna@stadt.test"]).await;
    s.add_user("admin1", Role::Admin, &[]).await;
    s
}

/// Requests an exemption for anna, which queues the confirmation mail; returns its id.
async fn request(s: &Server) -> i64 {
    request_to(s, TARGET).await
}

/// Like [`request`], for the private address `target`.
async fn request_to(s: &Server, target: &str) -> i64 {
    let config = &s.config;
    let e = s
        .store
        .request_exemption(
            &ExemptionRequest {
                login: "anna".into(),
                target: target.into(),
                days: 7,
                reason: "Test".into(),
                by: "anna".into(),
            },
            &config.exemptions.policy,
            "hash",
            |id| {
                relay::compose::confirmation(
                    &config.notices,
                    id,
                    "anna",
                    target,
                    "12345678",
                    7,
                    "morgen",
                    "https://ratspost.stadt.test/forwarding/confirm/x",
                )
            },
            store::now_millis(),
        )
        .await
        .expect("request");
    e.id
}

async fn job(s: &Server) -> OutboundJob {
    s.store
        .list_outbound(10)
        .await
        .expect("jobs")
        .into_iter()
        .next()
        .expect("a job")
}

/// Waits until the job satisfies `done`.
async fn wait_job(s: &Server, done: impl Fn(&OutboundJob) -> bool) -> OutboundJob {
    for _ in 0..300 {
        let j = job(s).await;
        if done(&j) {
            return j;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("job never reached the expected state: {:?}", job(s).await);
}

/// A port nothing listens on (yet).
async fn free_port() -> std::net::SocketAddr {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    l.local_addr().expect("addr")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn confirmation_is_delivered_over_verified_starttls() {
    let sink = Sink::start(SinkOptions {
        starttls: true,
        ..SinkOptions::default()
    })
    .await;
    let s = server(&sink.addr.to_string(), Some(&sink.cert), "required").await;
    request(&s).await;
    let got = sink.wait_for(1).await;
    assert!(got[0].tls, "delivered without TLS");
    assert_eq!(got[0].rcpt, [TARGET]);
    assert_eq!(got[0].from, "ratspost@localhost");
    let id = job(&s).await.id;
    let queued = s.store.outbound_body(id).await.expect("body");
    // Issue #16: the job's `X-Ratspost-Job` header is added after the first field; nothing
    // else changes.
    let data = String::from_utf8(got[0].data.clone()).expect("utf-8");
    let mark = format!("X-Ratspost-Job: {id}.");
    let start = data.find(&mark).expect("the job's header");
    let end = start + data[start..].find("\r\n").expect("line end") + 2;
    assert!(
        !data[..start].is_empty() && data[..start].matches("\r\n").count() == 1,
        "the job's header follows the first field: {data}"
    );
    let unmarked = format!("{}{}", &data[..start], &data[end..]);
    assert_eq!(unmarked.as_bytes(), queued, "the message arrived changed");
    let j = wait_job(&s, |j| j.state == "delivered").await;
    assert_eq!(j.attempts, 1);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_smarthost_is_retried_until_it_is_back() {
    let addr = free_port().await;
    let s = server(&addr.to_string(), None, "none").await;
    request(&s).await;
    let j = wait_job(&s, |j| j.attempts >= 1).await;
    assert_eq!(j.state, "queued");
    assert!(
        j.last_error
            .as_deref()
            .is_some_and(|e| e.contains("connect")),
        "{j:?}"
    );
    let sink = Sink::start_on(addr, SinkOptions::default()).await;
    sink.wait_for(1).await;
    let j = wait_job(&s, |j| j.state == "delivered").await;
    assert!(j.attempts >= 2, "{j:?}");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_required_holds_mail_for_a_hop_without_starttls() {
    let sink = Sink::start(SinkOptions::default()).await;
    let s = server(&sink.addr.to_string(), None, "required").await;
    request(&s).await;
    let j = wait_job(&s, |j| j.attempts >= 2).await;
    assert_eq!(j.state, "queued", "held, not failed");
    assert!(
        j.last_error
            .as_deref()
            .is_some_and(|e| e.contains("STARTTLS")),
        "{j:?}"
    );
    assert!(sink.received().is_empty(), "sent in plaintext");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_untrusted_certificate_holds_the_mail() {
    let sink = Sink::start(SinkOptions {
        starttls: true,
        ..SinkOptions::default()
    })
    .await;
    // No ca_file: the sink's self-signed certificate is not trusted.
    let s = server(&sink.addr.to_string(), None, "required").await;
    request(&s).await;
    let j = wait_job(&s, |j| j.attempts >= 1).await;
    assert_eq!(j.state, "queued");
    assert!(
        j.last_error.as_deref().is_some_and(|e| e.contains("TLS")),
        "{j:?}"
    );
    assert!(sink.received().is_empty());
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_permanent_refusal_fails_the_job_and_is_audited() {
    let sink = Sink::start(SinkOptions {
        rcpt_reply: Some("550 5.1.1 no such user".into()),
        ..SinkOptions::default()
    })
    .await;
    let s = server(&sink.addr.to_string(), None, "none").await;
    request(&s).await;
    let j = wait_job(&s, |j| j.state == "failed").await;
    assert!(
        j.last_error
            .as_deref()
            .is_some_and(|e| e.contains("550 5.1.1")),
        "{j:?}"
    );
    let audit = s.store.list_audit(0, 100).await.expect("audit");
    assert_eq!(
        audit.last().map(|a| a.action.as_str()),
        Some("queue.failed")
    );
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_confirmation_for_a_revoked_exemption_is_dropped_not_sent() {
    let addr = free_port().await;
    let s = server(&addr.to_string(), None, "none").await;
    let id = request(&s).await;
    wait_job(&s, |j| j.attempts >= 1).await;
    s.store
        .revoke_exemption(id, "admin1", store::now_millis())
        .await
        .expect("revoke");
    let sink = Sink::start_on(addr, SinkOptions::default()).await;
    let j = wait_job(&s, |j| j.state == "dropped").await;
    assert!(
        j.last_error
            .as_deref()
            .is_some_and(|e| e.contains("revoked")),
        "{j:?}"
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(sink.received().is_empty(), "sent although revoked");
    let actions: Vec<String> = s
        .store
        .list_audit(0, 100)
        .await
        .expect("audit")
        .into_iter()
        .map(|a| a.action)
        .collect();
    assert!(actions.contains(&"queue.dropped".to_owned()), "{actions:?}");
    s.stop().await;
}

// ---- direct MX delivery (no smarthost), against the loopback DNS server in `dns` ----

/// A server delivering directly to MX hosts found through `dns`, on the sink's port.
async fn mx_server(dns: &Dns, sink: &Sink, private_addresses: bool) -> Server {
    server_with(
        &format!(
            "{}mx_port = {}\nmx_private_addresses = {private_addresses}\n",
            dns.delivery_toml(),
            sink.addr.port()
        ),
        Some(&sink.cert),
        "required",
    )
    .await
}

fn mx(records: &[(u16, &str)]) -> Entry {
    Entry {
        mx: records.iter().map(|(p, h)| (*p, (*h).to_owned())).collect(),
        ips: Vec::new(),
    }
}

fn host(ip: &str) -> Entry {
    Entry {
        mx: Vec::new(),
        ips: vec![ip.parse().expect("ip")],
    }
}

fn last_error(j: &OutboundJob) -> &str {
    j.last_error.as_deref().unwrap_or("")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_smarthost_mail_goes_to_the_first_reachable_mx_over_verified_tls() {
    let sink = Sink::start(SinkOptions {
        starttls: true,
        names: vec!["mx2.privat.test".into()],
        ..SinkOptions::default()
    })
    .await;
    let dns = Dns::start().await;
    // The preferred exchanger's address has nothing listening: the next one must be tried.
    dns.set(
        "privat.test",
        mx(&[(20, "mx2.privat.test"), (10, "mx1.privat.test")]),
    );
    dns.set("mx1.privat.test", host("127.0.0.2"));
    dns.set("mx2.privat.test", host("127.0.0.1"));
    let s = mx_server(&dns, &sink, true).await;
    request_to(&s, "anna@privat.test").await;
    let got = sink.wait_for(1).await;
    assert!(got[0].tls, "delivered without TLS");
    assert_eq!(got[0].rcpt, ["anna@privat.test"]);
    let j = wait_job(&s, |j| j.state == "delivered").await;
    assert_eq!(j.attempts, 1, "{j:?}");
    let queries = dns.queries();
    let mx_query = queries
        .iter()
        .position(|q| q == &("privat.test".to_owned(), RecordType::MX))
        .expect("MX looked up");
    let first = queries
        .iter()
        .position(|(n, _)| n == "mx1.privat.test")
        .expect("mx1 looked up");
    let second = queries
        .iter()
        .position(|(n, _)| n == "mx2.privat.test")
        .expect("mx2 looked up");
    assert!(
        mx_query < first && first < second,
        "preference order not kept: {queries:?}"
    );
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_domain_without_mx_records_is_its_own_exchanger() {
    let sink = Sink::start(SinkOptions {
        starttls: true,
        names: vec!["privat.test".into()],
        ..SinkOptions::default()
    })
    .await;
    let dns = Dns::start().await;
    dns.set("privat.test", host("127.0.0.1"));
    let s = mx_server(&dns, &sink, true).await;
    request_to(&s, "anna@privat.test").await;
    assert_eq!(sink.wait_for(1).await[0].rcpt, ["anna@privat.test"]);
    wait_job(&s, |j| j.state == "delivered").await;
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_null_mx_or_a_missing_domain_fails_at_once_and_tells_the_owner() {
    let sink = Sink::start(SinkOptions::default()).await;
    let dns = Dns::start().await;
    dns.set("keine-post.test", mx(&[(0, ".")]));
    for (target, why) in [
        ("anna@keine-post.test", "accepts no mail (null MX)"),
        ("anna@gibt-es-nicht.test", "does not exist"),
    ] {
        let s = mx_server(&dns, &sink, true).await;
        request_to(&s, target).await;
        let j = wait_job(&s, |j| j.state != "queued").await;
        assert_eq!(j.state, "failed", "{j:?}");
        assert_eq!(j.attempts, 1, "{j:?}");
        assert!(last_error(&j).contains(why), "{j:?}");
        // The user learns it from a notice in the mailbox, not from silence.
        let notices = s.messages().await;
        assert_eq!(notices.len(), 1, "no failure notice for {target}");
        let text = mail_parser::MessageParser::default()
            .parse(&notices[0].1)
            .and_then(|m| m.body_text(0).map(|t| t.into_owned()))
            .expect("a readable notice");
        assert!(
            text.contains(target) && text.contains(why),
            "the notice does not say what failed: {text}"
        );
        s.stop().await;
    }
    assert!(sink.received().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_mx_pointing_into_private_networks_is_refused_by_default() {
    let sink = Sink::start(SinkOptions {
        starttls: true,
        names: vec!["mx.privat.test".into()],
        ..SinkOptions::default()
    })
    .await;
    let dns = Dns::start().await;
    dns.set("privat.test", mx(&[(10, "mx.privat.test")]));
    dns.set("mx.privat.test", host("127.0.0.1"));
    let s = mx_server(&dns, &sink, false).await;
    request_to(&s, "anna@privat.test").await;
    let j = wait_job(&s, |j| j.attempts >= 1).await;
    assert_eq!(j.state, "queued", "{j:?}");
    assert!(
        last_error(&j).contains("non-public address 127.0.0.1"),
        "{j:?}"
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        sink.received().is_empty(),
        "delivered into a private network"
    );
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_certificate_must_name_the_mx_host() {
    // The sink's certificate is trusted but made out for another name.
    let sink = Sink::start(SinkOptions {
        starttls: true,
        names: vec!["anderer.test".into()],
        ..SinkOptions::default()
    })
    .await;
    let dns = Dns::start().await;
    dns.set("privat.test", mx(&[(10, "mx.privat.test")]));
    dns.set("mx.privat.test", host("127.0.0.1"));
    let s = mx_server(&dns, &sink, true).await;
    request_to(&s, "anna@privat.test").await;
    let j = wait_job(&s, |j| j.attempts >= 1).await;
    assert_eq!(j.state, "queued", "held, not failed: {j:?}");
    assert!(last_error(&j).contains("TLS"), "{j:?}");
    assert!(
        sink.received().is_empty(),
        "sent to a host with the wrong certificate"
    );
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_dns_server_defers_the_mail() {
    let dead = free_port().await; // no DNS server there
    let s = server_with(
        &format!("resolvers = [\"{dead}\"]\nmx_private_addresses = true\n"),
        None,
        "none",
    )
    .await;
    request_to(&s, "anna@privat.test").await;
    let j = wait_job(&s, |j| j.attempts >= 1).await;
    assert_eq!(j.state, "queued", "a DNS outage must not fail mail: {j:?}");
    assert!(last_error(&j).contains("DNS lookup of MX"), "{j:?}");
    s.stop().await;
}
