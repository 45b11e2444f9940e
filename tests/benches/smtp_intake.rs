//! SMTP intake and mail submission throughput: messages per second at 10 and 50 concurrent
//! connections with 10 KiB messages, every one acknowledged only after its commit (the
//! durability of the real thing: SQLite `synchronous = FULL`, PostgreSQL
//! `synchronous_commit = on`). Every reply is asserted: a refusal fails the run.
//!
//! - **intake**: plaintext on `smtp.listen`, MAIL/RCPT/DATA pipelined as an upstream MTA
//!   sends them, to a local user.
//! - **submission**: implicit TLS on `submission.listen_tls` (RFC 8314, port 465 style), one
//!   AUTH PLAIN per connection with an app password (connection `i` is device `i mod 8` of
//!   4 users, 2 devices each), then the same pipelined transactions from the user's own
//!   address to an outside recipient. The daemon relays every message to an SMTP sink that
//!   stands in for the city's mail server (STARTTLS required, its certificate checked, as by
//!   default); after the run the benchmark waits until the sink has every message, checks
//!   that it got each exactly once, and prints how much longer that took.
//!
//! The daemon is the real binary (release build) in its own process, with the defaults
//! except the limits a single load generator on 127.0.0.1 would hit: `smtp.` and
//! `submission.max_connections_per_ip` 64 (defaults 32 and 20: all 50 connections come
//! from one address) and `submission.max_messages_per_hour` 1 000 000 (default 100 per user:
//! a run sends thousands). Each row gets a fresh database and daemon and a warm-up of 500
//! messages, so no run pays for another's background work (intake's classification and
//! mailbox delivery, submission's relaying) or data: submission counts each user's messages
//! of the last hour at every MAIL, and with the raised limit that count grows with every run
//! (a second run on the same daemon was a third slower, whichever came first). PostgreSQL is
//! measured when `RATSPOST_TEST_PG_URL` is set. `RATSPOST_BENCH_MESSAGES` sets the messages
//! per run (default 6000).
//!
//! Run: `cargo bench -p ratspost-tests --bench smtp_intake`

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use ratspost_tests::client::{Client, dot_stuff};
use ratspost_tests::daemon::{Daemon, app_password, enrol, write_config};
use ratspost_tests::sink::{Sink, SinkOptions};
use store::testing::TestDb;
use tokio::io::{AsyncRead, AsyncWrite};

const MESSAGE_SIZE: usize = 10 * 1024;
/// Messages of the warm-up run (connections, statement caches, page cache).
const WARM_UP: usize = 500;
/// The staff who submit, each from `DEVICES` devices.
const USERS: [&str; 4] = ["anna", "bert", "carla", "dieter"];
const DEVICES: usize = 2;
/// Where intake mail comes from and goes to, and where submitted mail goes.
const UPSTREAM: &str = "sender@upstream.test";
const LOCAL: &str = "anna@stadt.test";
const OUTSIDE: &str = "buerger@extern.test";

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let total: usize = std::env::var("RATSPOST_BENCH_MESSAGES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(6000);
    runtime.block_on(async {
        println!(
            "SMTP intake (plaintext) and submission (implicit TLS, AUTH PLAIN), {} KiB messages, {total} messages per run",
            MESSAGE_SIZE / 1024
        );
        println!(
            "{:<11} {:<11} {:>11} {:>10} {:>12} {:>9}",
            "backend", "path", "connections", "messages", "messages/s", "MB/s"
        );
        'backends: for backend in ["sqlite", "postgres"] {
            for path in [Kind::Intake, Kind::Submission] {
                for connections in [10, 50] {
                    let Some(db) = fresh(backend).await else {
                        println!("{backend:<11} skipped: set RATSPOST_TEST_PG_URL");
                        continue 'backends;
                    };
                    match path {
                        Kind::Intake => intake(db, backend, connections, total).await,
                        Kind::Submission => submission(db, backend, connections, total).await,
                    }
                }
            }
        }
    });
}

/// A fresh database on `backend`; `None` for PostgreSQL without `RATSPOST_TEST_PG_URL`.
async fn fresh(backend: &str) -> Option<TestDb> {
    match backend {
        "sqlite" => Some(TestDb::sqlite()),
        _ => TestDb::postgres("smtp_intake bench").await,
    }
}

/// What a row measures.
#[derive(Clone, Copy)]
enum Kind {
    Intake,
    Submission,
}

/// Where a run's connections go and as whom they send.
#[derive(Clone)]
enum Target {
    /// Intake: plaintext, no AUTH, from upstream to a local user.
    Intake(SocketAddr),
    /// Submission: implicit TLS verified against `cert`, AUTH PLAIN as one of `devices`.
    Submission {
        addr: SocketAddr,
        cert: Arc<Path>,
        devices: Arc<[Device]>,
    },
}

/// A user's device: the login, its own address and the device's app password.
struct Device {
    login: String,
    address: String,
    password: String,
}

/// One intake row: a warm-up, then `total` messages over `connections`.
async fn intake(db: TestDb, backend: &str, connections: usize, total: usize) {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = write_config(dir.path(), &db.url, "max_connections_per_ip = 64");
    enrol(&config, "anna", LOCAL, "bench-password");
    let daemon = Daemon::start(&config);
    let target = Target::Intake(daemon.smtp);
    run(&target, 10, WARM_UP).await;
    let (sent, elapsed) = run(&target, connections, total).await;
    row(backend, "intake", connections, sent, elapsed, "");
    assert!(daemon.terminate().success());
}

/// One submission row: a warm-up, then `total` messages over `connections`; every one
/// must reach the sink, exactly once and over TLS.
async fn submission(db: TestDb, backend: &str, connections: usize, total: usize) {
    let sink = Sink::start(SinkOptions {
        starttls: true,
        ..SinkOptions::default()
    })
    .await;
    let dir = tempfile::tempdir().expect("tempdir");
    let config = write_config(
        dir.path(),
        &db.url,
        &format!(
            "[delivery]\nresolvers = [\"127.0.0.1:9\"]\nca_file = {cert:?}\n\
[submission]\nlisten = \"127.0.0.1:0\"\nlisten_tls = \"127.0.0.1:0\"\nrelay = \"{relay}\"\n\
max_messages_per_hour = 1000000\nmax_connections_per_ip = 64\n",
            cert = sink.cert,
            relay = sink.addr,
        ),
    );
    let mut devices = Vec::new();
    for login in USERS {
        let address = format!("{login}@stadt.test");
        enrol(&config, login, &address, "bench-password");
        for device in 0..DEVICES {
            devices.push(Device {
                login: login.to_owned(),
                address: address.clone(),
                password: app_password(&config, login, &format!("device {device}")),
            });
        }
    }
    let daemon = Daemon::start(&config);
    let cert: PathBuf = relay::config::Config::load(&config)
        .expect("config")
        .tls
        .cert;
    let target = Target::Submission {
        addr: daemon
            .submission
            .expect("submission listening")
            .implicit_tls,
        cert: cert.into(),
        devices: devices.into(),
    };
    let (warm_up, _) = run(&target, 10, WARM_UP).await;
    sink.wait_for_long(warm_up, 600).await;
    let (sent, elapsed) = run(&target, connections, total).await;
    let last_250 = Instant::now();
    sink.wait_for_long(warm_up + sent, 600).await;
    let drained = last_250.elapsed().as_secs_f64();
    assert!(daemon.terminate().success());
    let received = sink.received();
    assert_eq!(
        received.len(),
        warm_up + sent,
        "each message relayed exactly once"
    );
    assert!(received.iter().all(|m| m.tls), "relayed over TLS");
    let relayed = format!(
        "  sink: {} of {} over TLS, the last {drained:.1} s after the last 250",
        received.len(),
        warm_up + sent
    );
    row(backend, "submission", connections, sent, elapsed, &relayed);
}

fn row(backend: &str, path: &str, connections: usize, sent: usize, elapsed: Duration, note: &str) {
    let rate = sent as f64 / elapsed.as_secs_f64();
    println!(
        "{backend:<11} {path:<11} {connections:>11} {sent:>10} {rate:>12.0} {:>9.1}{note}",
        rate * MESSAGE_SIZE as f64 / 1e6
    );
}

/// Sends about `total` messages over `connections` parallel sessions; returns how many were
/// accepted (all of them, or the run fails) and the wall time.
async fn run(target: &Target, connections: usize, total: usize) -> (usize, Duration) {
    let per_connection = total.div_ceil(connections);
    let start = Instant::now();
    let tasks: Vec<_> = (0..connections)
        .map(|conn| tokio::spawn(session(target.clone(), conn, per_connection)))
        .collect();
    for task in tasks {
        task.await.expect("session");
    }
    (per_connection * connections, start.elapsed())
}

/// Connection number `conn`: set up as `target` says, then `messages` transactions and QUIT.
async fn session(target: Target, conn: usize, messages: usize) {
    match target {
        Target::Intake(addr) => {
            let mut c = Client::greeted(addr).await;
            c.ehlo().await;
            transactions(&mut c, UPSTREAM, LOCAL, messages).await;
            c.cmd("QUIT").await;
        }
        Target::Submission {
            addr,
            cert,
            devices,
        } => {
            let device = &devices[conn % devices.len()];
            let mut c = Client::greeted_tls(addr, &cert).await;
            c.ehlo().await;
            c.auth_plain(&device.login, &device.password)
                .await
                .expect(235, "2.7.0");
            transactions(&mut c, &device.address, OUTSIDE, messages).await;
            c.cmd("QUIT").await;
        }
    }
}

/// `messages` transactions from `from` to `to`, each asserted to end in `250`.
async fn transactions<S>(c: &mut Client<S>, from: &str, to: &str, messages: usize)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    for _ in 0..messages {
        let mut body = dot_stuff(&message(from, to));
        body.extend_from_slice(b".\r\n");
        // PIPELINING: the envelope in one write, as Postfix, Exchange and Thunderbird send it.
        c.send(
            format!("MAIL FROM:<{from}> SIZE={MESSAGE_SIZE}\r\nRCPT TO:<{to}>\r\nDATA\r\n")
                .as_bytes(),
        )
        .await;
        c.reply().await.expect(250, "2.1.0");
        c.reply().await.expect(250, "2.1.5");
        assert_eq!(c.reply().await.code, 354);
        c.send(&body).await;
        c.reply().await.expect(250, "2.0.0");
    }
}

/// A 10 KiB message with a Message-ID unique across runs.
fn message(from: &str, to: &str) -> Vec<u8> {
    static SERIAL: AtomicUsize = AtomicUsize::new(0);
    let n = SERIAL.fetch_add(1, Ordering::Relaxed);
    let mut m = format!(
        "From: {from}\r\nTo: {to}\r\nSubject: Sitzung {n}\r\nMessage-ID: <bench-{n}-{}@bench.test>\r\n\r\n",
        std::process::id()
    )
    .into_bytes();
    let line = b"Einladung zur oeffentlichen Sitzung des Ausschusses fuer Stadtentwicklung.\r\n";
    while m.len() + line.len() <= MESSAGE_SIZE {
        m.extend_from_slice(line);
    }
    m.resize(MESSAGE_SIZE - 2, b'x');
    m.extend_from_slice(b"\r\n");
    m
}
