//! SMTP intake throughput: messages per second at 10 and 50 concurrent connections with
//! 10 KiB messages, every one acknowledged only after its commit (the durability of the real
//! thing: SQLite `synchronous = FULL`, PostgreSQL `synchronous_commit = on`).
//!
//! The daemon is the real binary (release build) in its own process; the load generator
//! pipelines MAIL/RCPT/DATA as an upstream MTA does. PostgreSQL is measured when
//! `RATSPOST_TEST_PG_URL` is set. `RATSPOST_BENCH_MESSAGES` sets the messages per run
//! (default 6000).
//!
//! Run: `cargo bench -p ratspost-tests --bench smtp_intake`

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use ratspost_tests::client::{Client, dot_stuff};
use ratspost_tests::daemon::{Daemon, enrol, write_config};
use store::testing::TestDb;

const MESSAGE_SIZE: usize = 10 * 1024;

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
            "SMTP intake, {} KiB messages, {total} messages per run",
            MESSAGE_SIZE / 1024
        );
        println!(
            "{:<11} {:>11} {:>10} {:>12} {:>9}",
            "backend", "connections", "messages", "messages/s", "MB/s"
        );
        bench(TestDb::sqlite(), "sqlite", total).await;
        match TestDb::postgres("smtp_intake bench").await {
            Some(db) => bench(db, "postgres", total).await,
            None => println!("postgres    skipped: set RATSPOST_TEST_PG_URL"),
        }
    });
}

async fn bench(db: TestDb, name: &str, total: usize) {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = write_config(dir.path(), &db.url, "max_connections_per_ip = 64");
    enrol(&config, "anna", "anna@stadt.test", "bench-password");
    let daemon = Daemon::start(&config);
    // Warm up: connections, statement caches, page cache.
    run(daemon.smtp, 10, 500).await;
    for connections in [10, 50] {
        let elapsed = run(daemon.smtp, connections, total).await;
        let rate = total as f64 / elapsed.as_secs_f64();
        println!(
            "{name:<11} {connections:>11} {total:>10} {rate:>12.0} {:>9.1}",
            rate * MESSAGE_SIZE as f64 / 1e6
        );
    }
    assert!(daemon.terminate().success());
}

/// Sends `total` messages over `connections` parallel sessions; returns the wall time.
async fn run(addr: SocketAddr, connections: usize, total: usize) -> Duration {
    let per_connection = total.div_ceil(connections);
    let start = Instant::now();
    let tasks: Vec<_> = (0..connections)
        .map(|conn| tokio::spawn(session(addr, conn, per_connection)))
        .collect();
    for task in tasks {
        task.await.expect("session");
    }
    start.elapsed()
}

async fn session(addr: SocketAddr, conn: usize, messages: usize) {
    let mut c = Client::greeted(addr).await;
    c.ehlo().await;
    for n in 0..messages {
        let mut body = dot_stuff(&message(conn, n));
        body.extend_from_slice(b".\r\n");
        // PIPELINING: the envelope in one write, as Postfix and Exchange send it.
        c.send(
            b"MAIL FROM:<sender@upstream.test> SIZE=10240\r\nRCPT TO:<anna@stadt.test>\r\nDATA\r\n",
        )
        .await;
        c.reply().await.expect(250, "2.1.0");
        c.reply().await.expect(250, "2.1.5");
        assert_eq!(c.reply().await.code, 354);
        c.send(&body).await;
        c.reply().await.expect(250, "2.0.0");
    }
    c.cmd("QUIT").await;
}

/// A 10 KiB message with a unique Message-ID.
fn message(conn: usize, n: usize) -> Vec<u8> {
    let mut m = format!(
        "From: sender@upstream.test\r\nTo: anna@stadt.test\r\nSubject: Sitzung {conn}-{n}\r\nMessage-ID: <bench-{conn}-{n}-{}@upstream.test>\r\n\r\n",
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
