//! IMAP throughput and the memory of idle connections, against the release daemon in its own
//! process (SQLite, and PostgreSQL when `RATSPOST_TEST_PG_URL` is set).
//!
//! 1. Mixed operations: each client repeats a mail-check cycle — connect over TLS, LOGIN
//!    with an app password, SELECT INBOX, `FETCH 1:100 (UID FLAGS BODY.PEEK[HEADER])`,
//!    LOGOUT — for `RATSPOST_BENCH_SECS` seconds (default 10) at 10 and 50 concurrent
//!    clients. Reported: cycles/s and operations/s (4 operations per cycle).
//! 2. Idle connections: `RATSPOST_BENCH_IDLE` (default 10000) clients log in, SELECT INBOX
//!    and IDLE; the daemon's resident memory (VmRSS) is read before and with all of them
//!    held.
//!
//! Run: `cargo bench -p ratspost-tests --bench imap`

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use ratspost_tests::client::{Client, dot_stuff, message};
use ratspost_tests::daemon::{Daemon, app_password, enrol, write_config};
use ratspost_tests::imap::Imap;
use store::testing::TestDb;

const MESSAGES: usize = 100;

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let secs: u64 = env("RATSPOST_BENCH_SECS", 10);
    let idle: usize = env("RATSPOST_BENCH_IDLE", 10_000);
    runtime.block_on(async {
        bench(TestDb::sqlite(), "sqlite", secs, idle).await;
        match TestDb::postgres("imap bench").await {
            Some(db) => bench(db, "postgres", secs, 0).await,
            None => println!("postgres skipped: set RATSPOST_TEST_PG_URL"),
        }
    });
}

fn env<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

async fn bench(db: TestDb, name: &str, secs: u64, idle: usize) {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = write_config(
        dir.path(),
        &db.url,
        "max_connections_per_ip = 64\n[imap]\nlisten = \"127.0.0.1:0\"\nlisten_tls = \"127.0.0.1:0\"\n\
max_connections = 20000\nmax_connections_per_ip = 20000\n",
    );
    enrol(&config, "anna", "anna@stadt.test", "bench");
    let password = app_password(&config, "anna", "bench");
    let daemon = Daemon::start(&config);
    let cert = relay::config::Config::load(&config)
        .expect("config")
        .tls
        .cert;
    let mut smtp = Client::greeted(daemon.smtp).await;
    smtp.ehlo().await;
    for i in 0..MESSAGES {
        let body = message(
            &format!("bench{i}"),
            &"Sitzungsunterlagen folgen. ".repeat(40),
        );
        smtp.send_mail(
            "amt@verwaltung.test",
            &["anna@stadt.test"],
            &dot_stuff(&body),
        )
        .await
        .expect(250, "2.0.0");
    }
    wait_for_inbox(daemon.imaps, &cert, &password).await;

    println!(
        "IMAP on {name}: cycle = TLS connect, LOGIN, SELECT INBOX, FETCH 1:{MESSAGES} headers, LOGOUT"
    );
    println!(
        "{:<8} {:>8} {:>10} {:>8}",
        "clients", "cycles/s", "ops/s", "seconds"
    );
    for clients in [10, 50] {
        let done = Arc::new(AtomicU64::new(0));
        let until = Instant::now() + Duration::from_secs(secs);
        let start = Instant::now();
        let tasks: Vec<_> = (0..clients)
            .map(|_| {
                let (done, cert, password) = (Arc::clone(&done), cert.clone(), password.clone());
                let addr = daemon.imaps;
                tokio::spawn(async move {
                    while Instant::now() < until {
                        cycle(addr, &cert, &password).await;
                        done.fetch_add(1, Ordering::Relaxed);
                    }
                })
            })
            .collect();
        for t in tasks {
            t.await.expect("client");
        }
        let elapsed = start.elapsed().as_secs_f64();
        let cycles = done.load(Ordering::Relaxed) as f64;
        println!(
            "{clients:<8} {:>8.0} {:>10.0} {elapsed:>8.1}",
            cycles / elapsed,
            4.0 * cycles / elapsed
        );
    }

    if idle > 0 {
        let before = rss_kib(daemon.pid());
        let mut held = Vec::with_capacity(idle);
        let start = Instant::now();
        for chunk in 0..idle.div_ceil(100) {
            let n = 100.min(idle - chunk * 100);
            let batch: Vec<_> = (0..n)
                .map(|_| {
                    let (cert, password) = (cert.clone(), password.clone());
                    let addr = daemon.imaps;
                    tokio::spawn(async move { idle_client(addr, &cert, &password).await })
                })
                .collect();
            for b in batch {
                held.push(b.await.expect("idle client"));
            }
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
        let after = rss_kib(daemon.pid());
        println!(
            "idle: {idle} connections in IDLE (set up in {:.1} s); daemon RSS {:.1} MiB before, {:.1} MiB with them: {:.1} KiB per connection",
            start.elapsed().as_secs_f64(),
            before as f64 / 1024.0,
            after as f64 / 1024.0,
            (after.saturating_sub(before)) as f64 / idle as f64
        );
        drop(held);
    }
    daemon.terminate();
}

async fn wait_for_inbox(addr: SocketAddr, cert: &Path, password: &str) {
    for _ in 0..600 {
        let mut c = Imap::connect_tls(addr, cert).await;
        c.line().await;
        c.send(&format!("s1 LOGIN anna {password}\r\n")).await;
        c.until("s1 ").await;
        c.send("s2 STATUS INBOX (MESSAGES)\r\n").await;
        let lines = c.until("s2 ").await;
        if lines
            .iter()
            .any(|l| l.contains(&format!("MESSAGES {MESSAGES}")))
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the messages never reached the INBOX");
}

async fn cycle(addr: SocketAddr, cert: &Path, password: &str) {
    let mut c = Imap::connect_tls(addr, cert).await;
    c.line().await;
    c.send(&format!("a1 LOGIN anna {password}\r\n")).await;
    assert!(
        c.until("a1 ")
            .await
            .last()
            .is_some_and(|l| l.starts_with("a1 OK"))
    );
    c.send("a2 SELECT INBOX\r\n").await;
    c.until("a2 ").await;
    c.send(&format!(
        "a3 FETCH 1:{MESSAGES} (UID FLAGS BODY.PEEK[HEADER])\r\n"
    ))
    .await;
    let lines = c.until("a3 ").await;
    assert!(
        lines.last().is_some_and(|l| l.starts_with("a3 OK")),
        "{:?}",
        lines.last()
    );
    c.send("a4 LOGOUT\r\n").await;
    c.until("a4 ").await;
}

/// A client logged in, with INBOX selected, in IDLE; kept open by holding the value.
async fn idle_client(
    addr: SocketAddr,
    cert: &Path,
    password: &str,
) -> Imap<tokio_rustls::client::TlsStream<tokio::net::TcpStream>> {
    let mut c = Imap::connect_tls(addr, cert).await;
    c.line().await;
    c.send(&format!("i1 LOGIN anna {password}\r\n")).await;
    c.until("i1 ").await;
    c.send("i2 SELECT INBOX\r\n").await;
    c.until("i2 ").await;
    c.send("i3 IDLE\r\n").await;
    c.until("+").await;
    c
}

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
