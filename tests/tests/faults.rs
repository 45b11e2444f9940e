//! Fault tests for delivery, written from the specification of issue #16 (not from the
//! implementation): real `ratspost serve` processes — two of them on one PostgreSQL where the
//! queue is shared — against a smarthost (the sink) that answers slowly, refuses at the dot,
//! drops the connection, hangs, or sits on the dot while the sending node is killed; a disk
//! that runs full; nodes with keys of their own.
//!
//! What the daemon must do (issue #16, numbered as there):
//! 1. a delivery in progress keeps its lease (renewed while the SMTP transaction runs), so
//!    a slow attempt is not taken over; a node that lost its lease never sends the final dot;
//!    only the lease holder records a result;
//! 2. `delivery.lease_secs` < 2 × `delivery.timeout_secs` is a configuration error;
//! 3. every forwarded copy carries `X-Ratspost-Job: <job id>` (the Message-ID stays);
//! 4. a `451` at the dot is retried: one accepted copy, `attempts` = tries, one
//!    `forward.delivered` audit entry;
//! 5. at-least-once window (dropped connection after the dot, SIGKILL between the smarthost's
//!    `250` and recording it): at most one extra copy per event, same job header, one
//!    `forward.delivered`;
//! 6. each received message is classified by one node;
//! 7. shutdown takes at most `shutdown.grace_secs` + 5 s even while a delivery hangs, and the
//!    cut-off job stays queued;
//! 8. store failures (a full disk) never loop: no duplicates, no log flood, no spinning;
//! 9. nodes on one database must share `srs.key` and `dkim.key`.
//!
//! Timings are short so that each test runs in well under a minute; every one is explained
//! where it is chosen. Run with `--test-threads=1`: the tests measure time and CPU.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use ratspost_tests::client::{Client, message};
use ratspost_tests::daemon::{
    Daemon, binary, data_dir, enrol, ratspost, ratspost_ok, share_keys, write_config,
};
use ratspost_tests::sink::{Received, Sink, SinkOptions};
use store::testing::TestDb;
use store::{OutboundJob, Store};

/// The envelope sender of queued forwards.
const FROM: &str = "ratspost@stadt.test";

/// One `ratspost serve` with its directory (which must outlive it).
struct Node {
    daemon: Daemon,
    config: PathBuf,
    _dir: tempfile::TempDir,
}

/// `[delivery]` through `sink` without TLS, with `lease_secs` and `timeout_secs`. Retries come
/// quickly (`retry_base_secs = 1`, at most 2 s apart) so that a retried job is done within
/// seconds.
fn delivery(sink: &Sink, lease_secs: u64, timeout_secs: u64) -> String {
    format!(
        "[delivery]\nsmarthost = \"{}\"\ntls = \"none\"\nconcurrency = 4\nretry_base_secs = 1\nretry_max_secs = 2\nlease_secs = {lease_secs}\ntimeout_secs = {timeout_secs}\n",
        sink.addr
    )
}

/// Writes the config of a node called `name` (its `smtp.hostname` is `NAME.test`, which the
/// sink sees as the EHLO name) on database `url` with `delivery` in a new directory.
fn node_config(url: &str, name: &str, delivery: &str) -> (PathBuf, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = write_config(
        dir.path(),
        url,
        &format!("hostname = \"{name}.test\"\n{delivery}"),
    );
    (config, dir)
}

/// Starts nodes `node-a`, `node-b`, … on `db`, each with `delivery`; the first one's keys
/// are shared with the others before they start.
fn start_nodes(db: &TestDb, names: &[&str], delivery: &str) -> Vec<Node> {
    let mut nodes: Vec<Node> = Vec::new();
    for name in names {
        let (config, dir) = node_config(&db.url, name, delivery);
        if let Some(first) = nodes.first() {
            share_keys(&first.config, &config);
        }
        nodes.push(Node {
            daemon: Daemon::start(&config),
            config,
            _dir: dir,
        });
    }
    nodes
}

/// A forward (no exemption: it is sent as it is) to `tag@privat.example` whose Message-ID is
/// `<tag@upstream.test>`.
fn forward(tag: &str) -> store::QueuedMail {
    store::QueuedMail {
        kind: "forward".into(),
        mail_from: FROM.into(),
        rcpt_to: format!("{tag}@privat.example"),
        body: format!(
            "From: Amt <amt@verwaltung.test>\r\nTo: anna@stadt.test\r\nSubject: Fault {tag}\r\nMessage-ID: <{tag}@upstream.test>\r\nDate: Mon, 2 Nov 2026 10:00:00 +0100\r\n\r\nInhalt {tag}.\r\n"
        )
        .into_bytes(),
    }
}

/// Queues [`forward`]`(tag)`; returns the job id.
async fn enqueue(store: &Store, tag: &str) -> i64 {
    store
        .enqueue(&forward(tag), None, None, store::now_millis())
        .await
        .expect("enqueue")
}

/// The job `id` as the queue lists it.
async fn job(store: &Store, id: i64) -> OutboundJob {
    store
        .list_outbound(10_000)
        .await
        .expect("list jobs")
        .into_iter()
        .find(|j| j.id == id)
        .unwrap_or_else(|| panic!("no job {id} in the queue"))
}

/// Waits up to `secs` seconds until job `id` is in `state`; returns it.
///
/// # Panics
/// When it does not get there.
async fn wait_state(store: &Store, id: i64, state: &str, secs: u64) -> OutboundJob {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        let j = job(store, id).await;
        if j.state == state {
            return j;
        }
        assert!(
            Instant::now() < deadline,
            "job {id} is not {state} after {secs} s: {j:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// How many `forward.delivered` audit entries concern job `id` (subject `job:ID`).
async fn delivered_entries(store: &Store, id: i64) -> usize {
    let subject = format!("job:{id}");
    store
        .list_audit(0, 100_000)
        .await
        .expect("audit")
        .iter()
        .filter(|e| e.action == "forward.delivered" && e.subjects.contains(&subject))
        .count()
}

/// The values of header `name` in the header section of `data` (unfolded, trimmed).
fn header_values(data: &[u8], name: &str) -> Vec<String> {
    let text = String::from_utf8_lossy(data);
    let head = text.split("\r\n\r\n").next().unwrap_or_default();
    let mut fields: Vec<String> = Vec::new();
    for line in head.split("\r\n") {
        if line.starts_with([' ', '\t']) {
            if let Some(last) = fields.last_mut() {
                last.push_str(line);
            }
        } else {
            fields.push(line.to_owned());
        }
    }
    fields
        .iter()
        .filter_map(|f| f.split_once(':'))
        .filter(|(n, _)| n.trim().eq_ignore_ascii_case(name))
        .map(|(_, v)| v.trim().to_owned())
        .collect()
}

/// Spec item 3: every copy of job `id` (each retry, each node's) carries exactly one
/// `X-Ratspost-Job: ID.QUEUED_AT` header, the same on all, and the original Message-ID
/// `<tag@upstream.test>` stays.
#[track_caller]
fn assert_job_header(copies: &[Received], id: i64, tag: &str) {
    assert!(!copies.is_empty(), "no copy to check the job header on");
    let first = header_values(&copies[0].data, "X-Ratspost-Job");
    let expected = first
        .first()
        .filter(|v| {
            v.strip_prefix(&format!("{id}."))
                .is_some_and(|t| !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()))
        })
        .cloned()
        .unwrap_or_else(|| format!("{id}.<queued at>"));
    for (n, copy) in copies.iter().enumerate() {
        let job = header_values(&copy.data, "X-Ratspost-Job");
        assert_eq!(
            job,
            std::slice::from_ref(&expected),
            "spec 3: copy {n} of job {id} (from {}) must carry exactly one `X-Ratspost-Job: {expected}`, the same on every copy; its header section:\n{}",
            copy.helo,
            String::from_utf8_lossy(&copy.data)
                .split("\r\n\r\n")
                .next()
                .unwrap_or_default()
        );
        assert_eq!(
            header_values(&copy.data, "Message-ID"),
            [format!("<{tag}@upstream.test>")],
            "spec 3: copy {n} of job {id} keeps the original Message-ID"
        );
    }
}

/// The EHLO names of `copies`.
fn helos(copies: &[Received]) -> Vec<String> {
    copies.iter().map(|c| c.helo.clone()).collect()
}

/// Stops every node with SIGTERM.
fn stop(nodes: Vec<Node>) {
    for node in nodes {
        let _ = node.daemon.terminate();
    }
}

// ---------------------------------------------------------------------------------------
// 1. A delivery in progress keeps its lease.
// ---------------------------------------------------------------------------------------

/// Spec item 1: an attempt that takes longer than `lease_secs` in total — every reply slow,
/// none slower than `timeout_secs` — keeps its lease; the other node does not take it over,
/// and exactly one copy reaches the sink.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_delivery_keeps_its_lease_and_is_sent_once() {
    let Some(db) = TestDb::postgres("a_slow_delivery_keeps_its_lease_and_is_sent_once").await
    else {
        return;
    };
    // Each reply comes after 2 s: half of `timeout_secs` (4), so no single reply times out,
    // while the transaction's at least six replies (greeting, EHLO, MAIL, RCPT, 354, the
    // dot's) take 12 s in all: longer than `lease_secs` (8, the smallest lease spec item 2
    // allows for a 4 s timeout). Without renewal the lease runs out 8 s in, and the other
    // node (scanning every second) takes the job over.
    let sink = Sink::start(SinkOptions {
        reply_delay: Duration::from_secs(2),
        ..SinkOptions::default()
    })
    .await;
    let nodes = start_nodes(&db, &["node-a", "node-b"], &delivery(&sink, 8, 4));
    let store = db.open().await;
    let id = enqueue(&store, "slow").await;

    let first = sink.wait_for_dots(1, 40).await;
    // A takeover starts at the latest when the first attempt ends (its lease ran out then)
    // and needs 12 s to reach its own dot: 16 s leave room for a second dot to show up.
    tokio::time::sleep(Duration::from_secs(16)).await;
    let dotted = sink.dotted();
    assert_eq!(
        dotted.len(),
        1,
        "spec 1: the slow delivery by {} lost its job to the other node: {} final dots, from {:?}",
        first[0].helo,
        dotted.len(),
        helos(&dotted)
    );
    assert_eq!(sink.received().len(), 1, "exactly one accepted copy");
    let j = wait_state(&store, id, "delivered", 10).await;
    assert_eq!(j.attempts, 1, "one attempt: {j:?}");
    assert_eq!(
        delivered_entries(&store, id).await,
        1,
        "one forward.delivered entry for job {id}"
    );
    assert_job_header(&dotted, id, "slow");
    store.close().await;
    stop(nodes);
}

/// Spec item 1, second half: a node that lost its lease never sends the message's end. The
/// node that leased the job is frozen (SIGSTOP) in the middle of the transaction until its
/// lease has run out and the other node has taken the job over; when it wakes up it must
/// not send its final dot, and only the other node's result counts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_that_lost_its_lease_never_sends_the_dot() {
    let Some(db) = TestDb::postgres("a_node_that_lost_its_lease_never_sends_the_dot").await else {
        return;
    };
    // Replies after 1 s (timeout 4 s): the frozen node is stopped right after its EHLO, with
    // MAIL, RCPT, DATA and the dot still to come, so it cannot have sent the dot before.
    let sink = Sink::start(SinkOptions {
        reply_delay: Duration::from_secs(1),
        ..SinkOptions::default()
    })
    .await;
    let nodes = start_nodes(&db, &["node-a", "node-b"], &delivery(&sink, 8, 4));
    let store = db.open().await;
    let id = enqueue(&store, "frozen").await;

    let deadline = Instant::now() + Duration::from_secs(30);
    let leaser = loop {
        if let Some(helo) = sink.ehlos().first() {
            break helo.clone();
        }
        assert!(Instant::now() < deadline, "no node started the delivery");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let (frozen, other) = if leaser == "node-a.test" {
        (&nodes[0], "node-b.test")
    } else {
        (&nodes[1], "node-a.test")
    };
    signal(frozen.daemon.pid(), "STOP");
    // The lease (8 s) runs out; the other node scans every second and takes the job over.
    let deadline = Instant::now() + Duration::from_secs(20);
    while !sink.ehlos().iter().any(|h| h == other) {
        if Instant::now() > deadline {
            signal(frozen.daemon.pid(), "CONT");
            panic!(
                "the other node did not take the job over within 20 s of the lease holder freezing: {:?}",
                sink.ehlos()
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    signal(frozen.daemon.pid(), "CONT");
    // The woken node would need 4 more replies (4 s) to reach its dot; the other node's
    // transaction needs about 6 s. 10 s cover both.
    tokio::time::sleep(Duration::from_secs(10)).await;
    let dotted = sink.dotted();
    assert!(
        dotted.iter().all(|c| c.helo == other),
        "spec 1: {leaser} lost its lease while frozen but still sent the final dot: dots from {:?}",
        helos(&dotted)
    );
    assert_eq!(
        dotted.len(),
        1,
        "one copy, from {other}: {:?}",
        helos(&dotted)
    );
    let j = wait_state(&store, id, "delivered", 10).await;
    assert_eq!(
        delivered_entries(&store, id).await,
        1,
        "one forward.delivered entry for job {id}: {j:?}"
    );
    assert_job_header(&dotted, id, "frozen");
    store.close().await;
    stop(nodes);
}

/// Sends `kill -SIG pid`.
fn signal(pid: u32, sig: &str) {
    let status = Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(pid.to_string())
        .status()
        .expect("kill");
    assert!(status.success(), "kill -{sig} {pid}");
}

// ---------------------------------------------------------------------------------------
// 2. lease_secs ≥ 2 × timeout_secs.
// ---------------------------------------------------------------------------------------

/// A config on a fresh SQLite database with `[delivery] lease_secs` and `timeout_secs`.
fn lease_config(dir: &Path, db: &TestDb, lease: u64, timeout: u64) -> PathBuf {
    write_config(
        dir,
        &db.url,
        &format!(
            "hostname = \"check.test\"\n[delivery]\nsmarthost = \"127.0.0.1:9\"\ntls = \"none\"\nlease_secs = {lease}\ntimeout_secs = {timeout}\n"
        ),
    )
}

/// Spec item 2 through `ratspost check`: a lease shorter than two timeouts is refused naming
/// `delivery.lease_secs` (10 < 2 × 15, and the edge 7 < 2 × 4); 8 with 4 is fine.
#[test]
fn check_refuses_a_lease_shorter_than_two_timeouts() {
    for (lease, timeout) in [(10, 15), (7, 4)] {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = TestDb::sqlite();
        let config = lease_config(dir.path(), &db, lease, timeout);
        let out = ratspost(&config, &["check"], None);
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            !out.status.success() && text.contains("delivery.lease_secs"),
            "spec 2: `check` with lease_secs = {lease}, timeout_secs = {timeout} must fail naming delivery.lease_secs; {}: {text}",
            out.status
        );
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let db = TestDb::sqlite();
    let config = lease_config(dir.path(), &db, 8, 4);
    let out = ratspost(&config, &["check"], None);
    assert!(
        out.status.success(),
        "spec 2: `check` accepts lease_secs = 8 with timeout_secs = 4; {}: {}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Spec item 2 through `ratspost serve`: it does not start with lease_secs = 10 and
/// timeout_secs = 15, and says why.
#[test]
fn serve_refuses_a_lease_shorter_than_two_timeouts() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = TestDb::sqlite();
    let config = lease_config(dir.path(), &db, 10, 15);
    match serve_until_exit(&config, Duration::from_secs(30)) {
        Ok((status, text)) => assert!(
            !status.success() && text.contains("delivery.lease_secs"),
            "spec 2: serve with lease_secs = 10, timeout_secs = 15 must exit non-zero naming delivery.lease_secs; {status}: {text}"
        ),
        Err(log) => panic!(
            "spec 2: serve started with lease_secs = 10, timeout_secs = 15 (shorter than two timeouts): {log}"
        ),
    }
}

/// Runs `ratspost --config CONFIG serve` until it exits (within `limit`): `Ok((status, its
/// output))`; or, when it starts listening (or is still running at `limit`), kills it and
/// returns `Err(its output)`.
fn serve_until_exit(
    config: &Path,
    limit: Duration,
) -> Result<(std::process::ExitStatus, String), String> {
    let out = config.with_file_name("serve.out");
    let file = std::fs::File::create(&out).expect("output file");
    let mut child = Command::new(binary())
        .arg("--config")
        .arg(config)
        .arg("serve")
        .env_remove(relay::cli::CONFIG_ENV)
        .env("RUST_LOG", "relay=info")
        .stdin(Stdio::null())
        .stdout(file.try_clone().expect("clone"))
        .stderr(file)
        .spawn()
        .expect("spawn serve");
    let deadline = Instant::now() + limit;
    loop {
        let text = std::fs::read_to_string(&out).unwrap_or_default();
        if let Some(status) = child.try_wait().expect("wait") {
            return Ok((status, std::fs::read_to_string(&out).unwrap_or_default()));
        }
        if text.contains("SMTP listening") || Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err(text);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

// ---------------------------------------------------------------------------------------
// 4. 451 at the dot.
// ---------------------------------------------------------------------------------------

/// Spec item 4 (and 3): the smarthost answers the first two dots with `451`; the job is
/// tried again (by either node) until the third try is accepted: one accepted copy, the job
/// `delivered` with 3 attempts, one `forward.delivered` entry; every try carries the same
/// job header.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_451_at_the_dot_is_retried_until_delivered_once() {
    let Some(db) = TestDb::postgres("a_451_at_the_dot_is_retried_until_delivered_once").await
    else {
        return;
    };
    let sink = Sink::start(SinkOptions {
        dot_replies: vec!["451 4.3.0 try again".into(), "451 4.3.0 try again".into()],
        ..SinkOptions::default()
    })
    .await;
    // The sink answers at once, so timeouts play no part: lease 8, timeout 4 as elsewhere.
    // Retries after 1 s and 2 s (retry_base_secs 1, retry_max_secs 2).
    let nodes = start_nodes(&db, &["node-a", "node-b"], &delivery(&sink, 8, 4));
    let store = db.open().await;
    let id = enqueue(&store, "refused").await;

    sink.wait_for_long(1, 30).await;
    let j = wait_state(&store, id, "delivered", 10).await;
    // A further try would come within a retry delay (≤ 2 s) plus a queue scan (1 s).
    tokio::time::sleep(Duration::from_secs(4)).await;
    let received = sink.received();
    let dotted = sink.dotted();
    assert_eq!(
        received.len(),
        1,
        "spec 4: one accepted copy; accepted from {:?}",
        helos(&received)
    );
    assert_eq!(
        dotted.len(),
        3,
        "two refused tries and one accepted, from {:?}",
        helos(&dotted)
    );
    assert_eq!(j.attempts, 3, "spec 4: attempts = number of tries: {j:?}");
    assert_eq!(
        delivered_entries(&store, id).await,
        1,
        "spec 4: one forward.delivered entry for job {id}"
    );
    assert_job_header(&dotted, id, "refused");
    store.close().await;
    stop(nodes);
}

// ---------------------------------------------------------------------------------------
// 5. The at-least-once window.
// ---------------------------------------------------------------------------------------

/// Spec item 5 (and 3): the smarthost takes the first message's dot and drops the
/// connection without answering (it may well have queued it). The job is tried again: at
/// most two copies in all (one extra for the one event), both with the same job header, the
/// job `delivered`, one `forward.delivered` entry.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_dropped_after_the_dot_costs_at_most_one_extra_copy() {
    let Some(db) =
        TestDb::postgres("a_connection_dropped_after_the_dot_costs_at_most_one_extra_copy").await
    else {
        return;
    };
    let sink = Sink::start(SinkOptions {
        drop_after_dot: 1,
        ..SinkOptions::default()
    })
    .await;
    let nodes = start_nodes(&db, &["node-a", "node-b"], &delivery(&sink, 8, 4));
    let store = db.open().await;
    let id = enqueue(&store, "dropped").await;

    sink.wait_for_long(1, 30).await;
    let j = wait_state(&store, id, "delivered", 10).await;
    // A further copy would come within a retry delay (≤ 2 s) plus a queue scan (1 s), or
    // after a lease (8 s) had run out: 10 s.
    tokio::time::sleep(Duration::from_secs(10)).await;
    let dotted = sink.dotted();
    assert!(
        dotted.len() <= 2,
        "spec 5: at most one extra copy for one dropped connection: {} copies from {:?}",
        dotted.len(),
        helos(&dotted)
    );
    assert_eq!(sink.received().len(), 1, "one copy answered 250");
    assert_eq!(
        delivered_entries(&store, id).await,
        1,
        "spec 5: one forward.delivered entry for job {id}: {j:?}"
    );
    assert_job_header(&dotted, id, "dropped");
    store.close().await;
    stop(nodes);
}

/// Spec item 5 (and 3): the node delivering the job is SIGKILLed while the smarthost sits on
/// the dot; the smarthost then accepts the message (its 250 goes nowhere). The other node
/// takes the job over when the lease runs out and sends it again: at most two copies, with
/// the same job header, one `forward.delivered` entry.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_killed_before_recording_the_250_costs_at_most_one_extra_copy() {
    let Some(db) =
        TestDb::postgres("a_node_killed_before_recording_the_250_costs_at_most_one_extra_copy")
            .await
    else {
        return;
    };
    // The sink sits 3 s on every dot: shorter than timeout_secs (4), so the surviving node's
    // attempt succeeds; long enough for the test to see the dot and kill the sender first.
    let sink = Sink::start(SinkOptions {
        dot_delay: Duration::from_secs(3),
        ..SinkOptions::default()
    })
    .await;
    let mut nodes = start_nodes(&db, &["node-a", "node-b"], &delivery(&sink, 8, 4));
    let store = db.open().await;
    let id = enqueue(&store, "killed").await;

    let first = sink.wait_for_dots(1, 30).await;
    let sender = first[0].helo.clone();
    let index = usize::from(sender == "node-b.test");
    assert!(
        sender == "node-a.test" || sender == "node-b.test",
        "unknown sender {sender}"
    );
    nodes.remove(index).daemon.kill();
    let survivor = if index == 0 {
        "node-b.test"
    } else {
        "node-a.test"
    };
    // The killed node's lease (8 s) runs out, the survivor scans every second and needs
    // 3 s at the dot: delivered within 20 s.
    let j = wait_state(&store, id, "delivered", 30).await;
    tokio::time::sleep(Duration::from_secs(4)).await;
    let received = sink.received();
    let dotted = sink.dotted();
    assert!(
        !received.is_empty(),
        "the smarthost accepted the message at least once"
    );
    assert!(
        dotted.len() <= 2 && received.len() <= 2,
        "spec 5: at most one extra copy for one SIGKILL: {} dots from {:?}, {} accepted",
        dotted.len(),
        helos(&dotted),
        received.len()
    );
    assert!(
        dotted.iter().skip(1).all(|c| c.helo == survivor),
        "after {sender} was killed only {survivor} sends: {:?}",
        helos(&dotted)
    );
    assert_eq!(
        delivered_entries(&store, id).await,
        1,
        "spec 5: one forward.delivered entry for job {id}: {j:?}"
    );
    assert_job_header(&dotted, id, "killed");
    store.close().await;
    stop(nodes);
}

// ---------------------------------------------------------------------------------------
// 6. One node classifies each message.
// ---------------------------------------------------------------------------------------

/// How often each message id was logged as `message classified` in `log`.
fn classified(log: &str, counts: &mut BTreeMap<i64, usize>) {
    for line in log.lines().filter(|l| l.contains("message classified")) {
        let id = line
            .split_whitespace()
            .find_map(|w| w.strip_prefix("id="))
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no id in {line:?}"));
        *counts.entry(id).or_default() += 1;
    }
}

/// Spec item 6: two nodes receive mail into one PostgreSQL; each message is classified by
/// one node — `message classified` appears once per message in both logs together.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_message_is_classified_by_one_node() {
    let Some(db) = TestDb::postgres("each_message_is_classified_by_one_node").await else {
        return;
    };
    const MESSAGES: usize = 20;
    // No smarthost: mail to anna stays in her mailbox (no exemption, nothing is forwarded).
    let (config_a, dir_a) = node_config(&db.url, "node-a", "");
    enrol(&config_a, "anna", "anna@stadt.test", "Sommer2026!");
    let a = Daemon::start(&config_a);
    let (config_b, dir_b) = node_config(&db.url, "node-b", "");
    share_keys(&config_a, &config_b);
    let b = Daemon::start(&config_b);

    // Both nodes receive at the same time, from two connections each.
    let tasks: Vec<_> = (0..4)
        .map(|conn| {
            let addr = if conn % 2 == 0 { a.smtp } else { b.smtp };
            tokio::spawn(async move {
                let mut c = Client::greeted(addr).await;
                c.ehlo().await;
                for n in 0..MESSAGES / 4 {
                    let body = message(&format!("classify-{conn}-{n}"), "Tagesordnung.");
                    c.send_mail("sender@upstream.test", &["anna@stadt.test"], &body)
                        .await
                        .expect(250, "2.0.0");
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.expect("client");
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let listed = ratspost_ok(&config_a, &["message", "list", "--json"], None);
        let listed: Vec<serde_json::Value> = serde_json::from_str(&listed).expect("json");
        let processed = listed.iter().filter(|m| m["state"] == "processed").count();
        if processed == MESSAGES {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{processed} of {MESSAGES} messages processed within 60 s"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    // A second classification by the other node would happen within its next scan.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let (_, log_a) = a.terminate_with_log();
    let (_, log_b) = b.terminate_with_log();
    let mut counts = BTreeMap::new();
    classified(&log_a, &mut counts);
    classified(&log_b, &mut counts);
    assert_eq!(
        counts.len(),
        MESSAGES,
        "every message classified (ids logged: {counts:?})"
    );
    let twice: Vec<_> = counts.iter().filter(|&(_, &n)| n != 1).collect();
    assert!(
        twice.is_empty(),
        "spec 6: messages classified more than once across both nodes (id, times): {twice:?}"
    );
    drop((dir_a, dir_b));
}

// ---------------------------------------------------------------------------------------
// 7. Shutdown while a delivery hangs.
// ---------------------------------------------------------------------------------------

/// Sets `shutdown.grace_secs` in a config [`write_config`] wrote (it writes 5).
fn set_grace(config: &Path, secs: u64) {
    let text = std::fs::read_to_string(config).expect("config");
    assert!(text.contains("grace_secs = 5\n"), "{text}");
    std::fs::write(
        config,
        text.replace("grace_secs = 5\n", &format!("grace_secs = {secs}\n")),
    )
    .expect("config");
}

/// Spec item 7: SIGTERM while a delivery hangs (the smarthost accepted the connection and
/// never answers): the daemon is gone within `grace_secs` + 5 s, the job stays `queued`, and
/// after a restart it is delivered, one copy.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_cuts_off_a_hanging_delivery_within_the_grace_time() {
    const GRACE: u64 = 2;
    let hang = Sink::start(SinkOptions {
        hang: true,
        ..SinkOptions::default()
    })
    .await;
    let db = TestDb::sqlite();
    let dir = tempfile::tempdir().expect("tempdir");
    // timeout_secs 15: the hanging greeting would time out only after 15 s, longer than
    // grace (2) + margin (5), so a shutdown that waits for the attempt to fail by itself is
    // too late. lease_secs 30 = 2 × 15, the smallest allowed.
    let config = write_config(
        dir.path(),
        &db.url,
        &format!("hostname = \"node-a.test\"\n{}", delivery(&hang, 30, 15)),
    );
    set_grace(&config, GRACE);
    let daemon = Daemon::start(&config);
    let store = db.open().await;
    let id = enqueue(&store, "hanging").await;
    let deadline = Instant::now() + Duration::from_secs(20);
    while hang.connections() == 0 {
        assert!(Instant::now() < deadline, "the delivery never connected");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Well inside the hang: the attempt waits for a greeting that never comes.
    tokio::time::sleep(Duration::from_secs(1)).await;

    let asked = Instant::now();
    let (status, log) = daemon.terminate_with_log();
    let took = asked.elapsed();
    assert!(
        took <= Duration::from_secs(GRACE + 5),
        "spec 7: shutdown took {took:?} with grace_secs = {GRACE} while a delivery hung; log:\n{log}"
    );
    assert!(status.success(), "{status}: {log}");
    let j = job(&store, id).await;
    assert_eq!(
        j.state, "queued",
        "spec 7: the cut-off delivery stays queued for a retry: {j:?}"
    );

    // Back with a smarthost that answers: the job goes out once, at the latest when the
    // cut-off attempt's lease (30 s) has run out.
    let sink = Sink::start(SinkOptions::default()).await;
    let text = std::fs::read_to_string(&config).expect("config");
    std::fs::write(
        &config,
        text.replace(&hang.addr.to_string(), &sink.addr.to_string()),
    )
    .expect("config");
    let daemon = Daemon::start(&config);
    wait_state(&store, id, "delivered", 45).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let received = sink.received();
    assert_eq!(received.len(), 1, "spec 7: one copy after the restart");
    assert_job_header(&received, id, "hanging");
    store.close().await;
    let _ = daemon.terminate();
}

// ---------------------------------------------------------------------------------------
// 8. A full disk.
// ---------------------------------------------------------------------------------------

/// A tmpfs mounted for the test; unmounted when dropped (also when the test fails).
struct Tmpfs {
    path: PathBuf,
}

impl Tmpfs {
    /// Mounts a tmpfs of `mib` MiB on `path`.
    fn mount(path: &Path, mib: u64) -> Self {
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={mib}m"), "tmpfs"])
            .arg(path)
            .status()
            .expect("mount");
        assert!(status.success(), "mount -t tmpfs on {}", path.display());
        Self {
            path: path.to_owned(),
        }
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        // Lazy: a daemon still holding files there cannot keep it mounted.
        let _ = Command::new("umount").arg("-l").arg(&self.path).status();
    }
}

/// Whether this process runs as root.
fn root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Uid:"))
                .and_then(|u| u.split_whitespace().nth(1).map(|e| e == "0"))
        })
        .unwrap_or(false)
}

/// CPU time (user + system) process `pid` has used so far, from `/proc/PID/stat` (clock
/// ticks of 1/100 s).
fn cpu_time(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("stat");
    // The fields after the command name, which ends with the last ')': state is field 3,
    // utime field 14 and stime field 15.
    let rest = &stat[stat.rfind(')').expect("comm") + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 =
        fields[11].parse::<u64>().expect("utime") + fields[12].parse::<u64>().expect("stime");
    Duration::from_millis(ticks * 10)
}

/// Fills the file system of `dir` with `dir/filler` until it is full.
fn fill(dir: &Path) -> PathBuf {
    use std::io::Write as _;
    let path = dir.join("filler");
    let mut file = std::fs::File::create(&path).expect("filler");
    let mb = vec![0x5a_u8; 1 << 20];
    while file.write_all(&mb).is_ok() {}
    let page = vec![0x5a_u8; 512];
    while file.write_all(&page).is_ok() {}
    let _ = file.sync_all();
    path
}

/// Spec item 8: the SQLite database on a disk that runs full just as the smarthost accepts
/// a forward. While it is full (20 s) the forward is not sent again and again, the log does
/// not flood (under 100 error lines) and the daemon does not spin (under 5 s CPU); once
/// there is space again the pending work completes — exactly one copy arrived.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_does_not_make_the_daemon_loop() {
    if !root() {
        ratspost_tests::skip("a_full_disk_does_not_make_the_daemon_loop (needs root for mount)");
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let disk = Tmpfs::mount(dir.path(), 64);
    let url = format!("sqlite://{}", disk.path.join("ratspost.db").display());
    // The sink sits 3 s on the dot (under timeout_secs 4): time to fill the disk after the
    // message went out and before the node records that the smarthost accepted it.
    let sink = Sink::start(SinkOptions {
        dot_delay: Duration::from_secs(3),
        ..SinkOptions::default()
    })
    .await;
    let config = write_config(
        &disk.path,
        &url,
        &format!("hostname = \"node-a.test\"\n{}", delivery(&sink, 8, 4)),
    );
    let daemon = Daemon::start(&config);
    let store = Store::open(&url, &store::StoreOptions::default())
        .await
        .expect("open store");
    let id = enqueue(&store, "fulldisk").await;
    sink.wait_for_dots(1, 30).await;
    let filler = fill(&disk.path);

    let (cpu_before, log_before) = (cpu_time(daemon.pid()), daemon.log().len());
    // 20 s: more than two leases (8 s) and twenty queue scans (1 s).
    tokio::time::sleep(Duration::from_secs(20)).await;
    let cpu = cpu_time(daemon.pid()) - cpu_before;
    let log = daemon.log();
    let window = &log[log_before..];
    let errors = window.lines().filter(|l| l.contains(" ERROR ")).count();
    let copies_while_full = sink.dots();
    std::fs::remove_file(&filler).expect("remove filler");

    assert!(
        errors > 0,
        "precondition: the full disk caused no store error at all (the test did not reach a failing write); log:\n{window}"
    );
    assert!(
        copies_while_full <= 1,
        "spec 8: the forward went out {copies_while_full} times while the disk was full"
    );
    assert!(
        errors < 100,
        "spec 8: {errors} error lines in 20 s on a full disk (repeating errors must be rate-limited); the first ones:\n{}",
        window.lines().take(20).collect::<Vec<_>>().join("\n")
    );
    assert!(
        cpu < Duration::from_secs(5),
        "spec 8: the daemon used {cpu:?} CPU in 20 s on a full disk"
    );
    eprintln!("full disk, 20 s: {errors} error lines, {cpu:?} CPU, {copies_while_full} copies");
    // With space again: the outcome is recorded (or the job retried) within a lease and a
    // few scans.
    let freed = daemon.log().len();
    let deadline = Instant::now() + Duration::from_secs(30);
    let j = loop {
        let j = job(&store, id).await;
        if j.state == "delivered" {
            break j;
        }
        if Instant::now() > deadline {
            let log = daemon.log();
            let tail: Vec<&str> = log[freed..].lines().rev().take(30).collect();
            panic!(
                "spec 8: the pending forward was not completed within 30 s of freeing the disk: {j:?}; {} dots at the sink; last lines logged since:\n{}",
                sink.dots(),
                tail.into_iter().rev().collect::<Vec<_>>().join("\n")
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    tokio::time::sleep(Duration::from_secs(3)).await;
    let dotted = sink.dotted();
    assert_eq!(
        dotted.len(),
        1,
        "spec 8: exactly one copy after the disk was full: {} ({j:?})",
        dotted.len()
    );
    assert_eq!(sink.received().len(), 1, "one accepted copy");
    assert_eq!(
        delivered_entries(&store, id).await,
        1,
        "one forward.delivered entry for job {id}"
    );
    store.close().await;
    let _ = daemon.terminate();
}

// ---------------------------------------------------------------------------------------
// 9. Shared keys.
// ---------------------------------------------------------------------------------------

/// Spec item 9: a second node on the same PostgreSQL whose `srs.key` or `dkim.key` differs
/// from the first node's refuses to start, naming the file; with both copied it starts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_with_other_keys_refuses_to_start() {
    let Some(db) = TestDb::postgres("a_node_with_other_keys_refuses_to_start").await else {
        return;
    };
    let (config_a, _dir_a) = node_config(&db.url, "node-a", "");
    let a = Daemon::start(&config_a);
    // Valid keys of another installation, made by `init` on a throwaway SQLite database.
    let other_db = TestDb::sqlite();
    let (config_x, _dir_x) = node_config(&other_db.url, "other", "");
    ratspost_ok(&config_x, &["init"], None);
    for key in ["srs.key", "dkim.key"] {
        assert_ne!(
            std::fs::read(data_dir(&config_a).join(key)).expect("a's key"),
            std::fs::read(data_dir(&config_x).join(key)).expect("other key"),
            "precondition: two installations made the same {key}"
        );
    }

    let (config_b, _dir_b) = node_config(&db.url, "node-b", "");
    let b_data = data_dir(&config_b);
    std::fs::create_dir_all(&b_data).expect("data dir");
    for (differs, same) in [("srs.key", "dkim.key"), ("dkim.key", "srs.key")] {
        std::fs::copy(data_dir(&config_x).join(differs), b_data.join(differs)).expect("copy");
        std::fs::copy(data_dir(&config_a).join(same), b_data.join(same)).expect("copy");
        match serve_until_exit(&config_b, Duration::from_secs(30)) {
            Ok((status, text)) => assert!(
                !status.success() && text.contains(differs),
                "spec 9: a node whose {differs} differs must exit non-zero naming {differs}; {status}: {text}"
            ),
            Err(log) => {
                panic!("spec 9: node-b started although its {differs} differs from node-a's: {log}")
            }
        }
    }
    share_keys(&config_a, &config_b);
    let b = Daemon::start(&config_b);
    assert!(b.terminate().success());
    assert!(a.terminate().success());
}
