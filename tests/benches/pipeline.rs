//! The processing pipeline end to end, side by side with Postfix (issue #17): how many
//! messages per second are *accepted* (`250` to the final dot) and how many are *processed*
//! — for ratspost: classified, filed with their decisions made and committed, and visible
//! over IMAP; for a Postfix relay: delivered to its next hop — and how long a message takes
//! from its `250` to being there.
//!
//! One load generator for both servers: `CONNECTIONS` SMTP sessions send `total` messages of
//! 2 KiB (the size of the table; one in ten carries a tax ID, so ratspost files a
//! notice for it), MAIL/RCPT/DATA pipelined, each `250` asserted and timed.
//! - **new connection per message** and **one connection per session** (`smtp-source`
//!   without and with `-d`): throughput, median of `RATSPOST_BENCH_RUNS` runs (default 3),
//!   each ratspost run on a fresh database and daemon.
//! - **latency**: `RATSPOST_BENCH_LATENCY_SECS` (default 10) of steady load at half the
//!   processed rate the same server reached over one connection per session, spread evenly
//!   over the sessions; the median, 99th percentile and maximum of the time from a
//!   message's `250` to its arrival.
//!
//! Arrival is observed the way users see it. For ratspost an IMAP client sits in `IDLE` on
//! the recipient's inbox (RFC 2177) and notes when each `EXISTS` arrives; afterwards one
//! `FETCH` maps each sequence number to the message it shows (the serial number in the
//! subject, and in the sender's name, which the subject of a notice repeats). For Postfix the next hop is the tests' SMTP sink, which
//! notes when each final dot arrived.
//!
//! Postfix is measured when `postfix` is installed (Debian package `postfix`; its relay is
//! started with `../shared/tools/postfix/start-postfix-relay.sh`, or the directory in
//! `RATSPOST_BENCH_POSTFIX_TOOLS`); PostgreSQL when `RATSPOST_TEST_PG_URL` is set.
//! `RATSPOST_BENCH_MESSAGES` sets the messages per run (default 2000);
//! `RATSPOST_BENCH_ONLY=postfix,sqlite,postgres` (any of them) measures only those.
//!
//! Run: `cargo bench -p ratspost-tests --bench pipeline`

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ratspost_tests::client::{Client, dot_stuff};
use ratspost_tests::daemon::{Daemon, app_password, enrol, write_config};
use ratspost_tests::imap::Imap;
use ratspost_tests::sink::{Sink, SinkOptions};
use store::testing::TestDb;
use tokio::io::{AsyncRead, AsyncWrite};

/// Payload bytes per message (`smtp-source -l 2048`), headers excluded.
const SIZE: usize = 2048;
/// Parallel SMTP sessions (`smtp-source -s 10`).
const CONNECTIONS: usize = 10;
/// Every this-many-th message carries a tax ID: sensitive, so ratspost files a notice.
const SENSITIVE_EVERY: usize = 10;
const FROM: &str = "sender@upstream.test";
const TO: &str = "anna@stadt.test";
/// How long a run may take before the bench gives up on it.
const RUN_LIMIT: Duration = Duration::from_secs(600);

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let total = env_usize("RATSPOST_BENCH_MESSAGES", 2000);
    let runs = env_usize("RATSPOST_BENCH_RUNS", 3).max(1);
    let latency_secs = env_usize("RATSPOST_BENCH_LATENCY_SECS", 10).max(1);
    runtime.block_on(async {
        println!(
            "pipeline end to end: {total} messages of {} KiB per run, {CONNECTIONS} sessions, median of {runs} runs; \
             latency at half the processed rate for {latency_secs} s",
            SIZE / 1024
        );
        println!(
            "{:<22} {:<26} {:>11} {:>12} {:>9} {:>9} {:>9}",
            "server", "connections", "accepted/s", "processed/s", "p50 ms", "p99 ms", "max ms"
        );
        let mut servers = Vec::new();
        match postfix_tools() {
            Some(tools) => servers.push(Server::Postfix(tools)),
            None => println!("{:<22} skipped: postfix is not installed", "postfix relay"),
        }
        servers.push(Server::Ratspost("sqlite"));
        servers.push(Server::Ratspost("postgres"));
        // RATSPOST_BENCH_ONLY=postfix|sqlite|postgres measures only the servers named.
        let only = std::env::var("RATSPOST_BENCH_ONLY").unwrap_or_default();
        servers.retain(|s| only.is_empty() || only.split(',').any(|o| s.name().contains(o.trim())));
        for server in &servers {
            if !server.available().await {
                println!(
                    "{:<22} skipped: set RATSPOST_TEST_PG_URL",
                    server.name()
                );
                continue;
            }
            let mut reuse_rate = 0.0;
            for reuse in [false, true] {
                let mut measured = Vec::new();
                for _ in 0..runs {
                    let mut target = server.start().await;
                    measured.push(flood(&mut target, reuse, total).await);
                    target.stop().await;
                }
                let accepted = median(measured.iter().map(|m| m.0).collect());
                let processed = median(measured.iter().map(|m| m.1).collect());
                if reuse {
                    reuse_rate = processed;
                }
                println!(
                    "{:<22} {:<26} {accepted:>11.0} {processed:>12.0}",
                    server.name(),
                    if reuse { "one per session" } else { "new per message" },
                );
            }
            let rate = reuse_rate / 2.0;
            let mut target = server.start().await;
            let (latencies, serials) = steady(&mut target, rate, latency_secs).await;
            let committed = target.committed(serials).await;
            target.stop().await;
            let line = |what: String, latencies: &[f64]| {
                println!(
                    "{:<22} {what:<26} {:>11} {:>12} {:>9.1} {:>9.1} {:>9.1}",
                    server.name(),
                    "",
                    "",
                    percentile(latencies, 0.50),
                    percentile(latencies, 0.99),
                    percentile(latencies, 1.0),
                );
            };
            line(format!("steady {rate:.0}/s, one per session"), &latencies);
            if let Some(committed) = committed {
                line("  of which until committed".to_owned(), &committed);
            }
        }
    });
}

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The directory of `start-postfix-relay.sh`, when Postfix is installed.
fn postfix_tools() -> Option<PathBuf> {
    let installed = Command::new("sh")
        .args(["-c", "command -v postfix && command -v smtp-sink"])
        .output()
        .is_ok_and(|o| o.status.success());
    let tools = std::env::var_os("RATSPOST_BENCH_POSTFIX_TOOLS").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/tools/postfix"),
        PathBuf::from,
    );
    (installed && tools.join("start-postfix-relay.sh").exists()).then_some(tools)
}

/// What is measured.
enum Server {
    /// A throw-away Postfix relay whose next hop is the tests' sink.
    Postfix(PathBuf),
    /// The ratspost release daemon on this backend.
    Ratspost(&'static str),
}

impl Server {
    fn name(&self) -> String {
        match self {
            Server::Postfix(_) => "postfix relay".to_owned(),
            Server::Ratspost(backend) => format!("ratspost {backend}"),
        }
    }

    async fn available(&self) -> bool {
        match self {
            Server::Ratspost("postgres") => std::env::var_os("RATSPOST_TEST_PG_URL").is_some(),
            _ => true,
        }
    }

    async fn start(&self) -> Target {
        match self {
            Server::Postfix(tools) => Target::postfix(tools).await,
            Server::Ratspost(backend) => Target::ratspost(backend).await,
        }
    }
}

/// A running server, with what tells when a message has arrived.
struct Target {
    smtp: SocketAddr,
    observer: Observer,
}

enum Observer {
    /// Postfix delivers to this sink; its arrival times are the sink's.
    Sink {
        sink: Sink,
        dir: PathBuf,
        tools: PathBuf,
    },
    /// ratspost: an IMAP session watches the inbox.
    Imap {
        daemon: Box<Daemon>,
        imaps: SocketAddr,
        cert: PathBuf,
        password: String,
        db: TestDb,
        _dir: tempfile::TempDir,
    },
}

impl Target {
    async fn ratspost(backend: &str) -> Self {
        let db = match backend {
            "sqlite" => TestDb::sqlite(),
            _ => TestDb::postgres("pipeline bench")
                .await
                .expect("RATSPOST_TEST_PG_URL"),
        };
        let dir = tempfile::tempdir().expect("tempdir");
        let config = write_config(dir.path(), &db.url, "max_connections_per_ip = 64");
        enrol(&config, "anna", TO, "bench-password");
        let password = app_password(&config, "anna", "bench");
        let cert = relay::config::Config::load(&config)
            .expect("config")
            .tls
            .cert;
        let daemon = Daemon::start(&config);
        Target {
            smtp: daemon.smtp,
            observer: Observer::Imap {
                imaps: daemon.imaps,
                daemon: Box::new(daemon),
                cert,
                password,
                db,
                _dir: dir,
            },
        }
    }

    async fn postfix(tools: &Path) -> Self {
        let sink = Sink::start(SinkOptions::default()).await;
        let dir =
            std::env::temp_dir().join(format!("ratspost-bench-postfix-{}", std::process::id()));
        let port = free_port();
        let status = Command::new(tools.join("start-postfix-relay.sh"))
            .env("PFT_DIR", &dir)
            .env("PFT_PORT", port.to_string())
            .env("PFT_RELAYHOST_PORT", sink.addr.port().to_string())
            .stdout(std::process::Stdio::null())
            .status()
            .expect("start-postfix-relay.sh");
        assert!(status.success(), "the Postfix relay did not start");
        let smtp: SocketAddr = format!("127.0.0.1:{port}").parse().expect("addr");
        for _ in 0..100 {
            if tokio::net::TcpStream::connect(smtp).await.is_ok() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Target {
            smtp,
            observer: Observer::Sink {
                sink,
                dir,
                tools: tools.to_owned(),
            },
        }
    }

    async fn stop(self) {
        match self.observer {
            Observer::Sink { sink, dir, tools } => {
                let _ = Command::new(tools.join("stop-postfix-relay.sh"))
                    .env("PFT_DIR", &dir)
                    .stdout(std::process::Stdio::null())
                    .status();
                let _ = std::fs::remove_dir_all(&dir);
                sink.stop();
            }
            Observer::Imap { daemon, .. } => {
                assert!(daemon.terminate().success());
            }
        }
    }

    /// For ratspost: how long the pipeline took for each of the messages `serials`, from
    /// the final dot to the commit that filed it (both by the daemon's clock, as the
    /// database has them: `received_at` and the inbox entry's INTERNALDATE), in milliseconds,
    /// sorted. What remains of the time to IMAP is telling the session in IDLE.
    async fn committed(&self, serials: std::ops::Range<usize>) -> Option<Vec<f64>> {
        let Observer::Imap { db, .. } = &self.observer else {
            return None;
        };
        let store = db.open().await;
        let anna = store.user_by_login("anna").await.expect("anna").id;
        let inbox = store.mailbox(anna, "INBOX").await.expect("INBOX");
        let entries = store.mailbox_entries(inbox.id).await.expect("entries");
        let last = entries.last().map_or(0, |e| e.uid);
        let mut filed_at = std::collections::HashMap::new();
        for (uid, served) in store
            .entry_contents(inbox.id, 1, last)
            .await
            .expect("contents")
        {
            let entry = entries.iter().find(|e| e.uid == uid).expect("entry");
            if let Some(serial) = served.ok().and_then(|m| serial_in(&m)) {
                filed_at.insert(serial, entry.internal_date);
            }
        }
        let listed = store
            .list_messages(&store::MessageFilter::default())
            .await
            .expect("messages");
        let mut latencies: Vec<f64> = listed
            .iter()
            .filter_map(|m| {
                let serial = serial_in(m.message_id.as_deref()?.as_bytes())?;
                let filed = filed_at.get(&serial)?;
                serials
                    .contains(&serial)
                    .then(|| (filed - m.received_at) as f64)
            })
            .collect();
        store.close().await;
        latencies.sort_by(f64::total_cmp);
        Some(latencies)
    }

    /// Watches until the messages with serial numbers in `serials` have all arrived; returns
    /// each one's arrival time, in the order of `serials`.
    async fn arrivals(&self, serials: std::ops::Range<usize>) -> Watch {
        match &self.observer {
            Observer::Sink { .. } => Watch::Sink(serials),
            Observer::Imap {
                imaps,
                cert,
                password,
                ..
            } => {
                let mut imap = Imap::connect_tls(*imaps, cert).await;
                imap.line().await;
                imap.send(&format!("a LOGIN anna {password}\r\n")).await;
                imap.until("a OK").await;
                imap.send("b SELECT INBOX\r\n").await;
                let lines = imap.until("b OK").await;
                let before = exists(&lines).unwrap_or(0);
                imap.send("c IDLE\r\n").await;
                let ready = imap.line().await;
                assert!(ready.starts_with('+'), "IDLE refused: {ready}");
                Watch::Imap(tokio::spawn(watch_inbox(imap, before, serials)))
            }
        }
    }
}

/// The arrival times being collected.
enum Watch {
    /// Read off the sink when the run is over.
    Sink(std::ops::Range<usize>),
    /// Collected by a task in IDLE.
    Imap(tokio::task::JoinHandle<Vec<Instant>>),
}

impl Watch {
    /// Waits until every message of the run has arrived at `target`; their arrival times.
    async fn done(self, target: &Target) -> Vec<Instant> {
        match (self, &target.observer) {
            (Watch::Imap(task), _) => task.await.expect("watch"),
            (Watch::Sink(serials), Observer::Sink { sink, .. }) => {
                let deadline = Instant::now() + RUN_LIMIT;
                loop {
                    let mut times = vec![None; serials.len()];
                    for m in sink.received() {
                        match serial_in(&m.data) {
                            Some(serial) if serials.contains(&serial) => {
                                times[serial - serials.start] = Some(m.at);
                            }
                            _ => {}
                        }
                    }
                    if let Some(times) = times.into_iter().collect::<Option<Vec<_>>>() {
                        return times;
                    }
                    assert!(
                        Instant::now() < deadline,
                        "Postfix did not deliver everything in time"
                    );
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
            (Watch::Sink(_), Observer::Imap { .. }) => unreachable!("a sink watch on ratspost"),
        }
    }
}

/// Sits in IDLE until `before + serials.len()` messages exist, noting when each sequence
/// number appeared; then maps sequence numbers to serials with one FETCH.
async fn watch_inbox<S: AsyncRead + AsyncWrite + Unpin>(
    mut imap: Imap<S>,
    before: usize,
    serials: std::ops::Range<usize>,
) -> Vec<Instant> {
    let wanted = before + serials.len();
    let mut seen = before;
    let mut appeared: Vec<Instant> = Vec::with_capacity(serials.len());
    let deadline = Instant::now() + RUN_LIMIT;
    while seen < wanted {
        // IDLE must be renewed before the server's 30-minute limit; a run is far shorter.
        let line = tokio::time::timeout_at(deadline.into(), imap.line())
            .await
            .expect("ratspost did not file everything in time");
        let now = Instant::now();
        if let Some(n) = line
            .strip_prefix("* ")
            .and_then(|l| l.strip_suffix(" EXISTS"))
            .and_then(|n| n.parse::<usize>().ok())
        {
            while seen < n {
                appeared.push(now);
                seen += 1;
            }
        }
    }
    imap.send("DONE\r\n").await;
    imap.until("c OK").await;
    imap.send(&format!(
        "d FETCH {}:{wanted} (BODY.PEEK[HEADER.FIELDS (SUBJECT)])\r\n",
        before + 1
    ))
    .await;
    let mut times = vec![None; serials.len()];
    let mut next = 0;
    loop {
        let line = imap.line().await;
        if line.starts_with("d OK") {
            break;
        }
        let Some(size) = line
            .rsplit_once('{')
            .and_then(|(_, n)| n.strip_suffix('}'))
            .and_then(|n| n.parse::<usize>().ok())
        else {
            continue;
        };
        let header = imap.exact(size).await;
        let serial = serial_in(&header).unwrap_or_else(|| {
            panic!(
                "a subject without its serial: {}",
                String::from_utf8_lossy(&header)
            )
        });
        assert!(
            serials.contains(&serial),
            "message {serial} is not from this run"
        );
        times[serial - serials.start] = Some(appeared[next]);
        next += 1;
    }
    times
        .into_iter()
        .map(|t| t.expect("every message of the run in the inbox"))
        .collect()
}

/// The number of an `* N EXISTS` among `lines`.
fn exists(lines: &[String]) -> Option<usize> {
    lines.iter().find_map(|l| {
        l.strip_prefix("* ")
            .and_then(|l| l.strip_suffix(" EXISTS"))
            .and_then(|n| n.parse().ok())
    })
}

/// The serial number after `bench-` in a message or header.
fn serial_in(bytes: &[u8]) -> Option<usize> {
    let at = bytes.windows(6).position(|w| w == b"bench-")? + 6;
    let digits: String = bytes[at..]
        .iter()
        .take_while(|b| b.is_ascii_digit())
        .map(|&b| char::from(b))
        .collect();
    digits.parse().ok()
}

/// Sends `total` messages as fast as `CONNECTIONS` sessions go; returns accepted/s and
/// processed/s, both counted from the first connection.
async fn flood(target: &mut Target, reuse: bool, total: usize) -> (f64, f64) {
    let per_session = total.div_ceil(CONNECTIONS);
    let serials = reserve(per_session * CONNECTIONS);
    let watch = target.arrivals(serials.clone()).await;
    let start = Instant::now();
    let accepted = send(target.smtp, serials.clone(), reuse, None).await;
    let last_250 = accepted.iter().max().copied().expect("messages");
    let arrived = watch.done(target).await;
    let last = arrived.iter().max().copied().expect("messages");
    let n = serials.len() as f64;
    (
        n / (last_250 - start).as_secs_f64(),
        n / (last - start).as_secs_f64(),
    )
}

/// `secs` seconds at `rate` messages/s over one connection per session; returns each
/// message's time from `250` to arrival in milliseconds (sorted), and the serials sent.
async fn steady(target: &mut Target, rate: f64, secs: usize) -> (Vec<f64>, std::ops::Range<usize>) {
    let per_session = ((rate * secs as f64) / CONNECTIONS as f64).ceil().max(1.0) as usize;
    let serials = reserve(per_session * CONNECTIONS);
    let watch = target.arrivals(serials.clone()).await;
    let gap = Duration::from_secs_f64(CONNECTIONS as f64 / rate.max(1.0));
    let accepted = send(target.smtp, serials.clone(), true, Some(gap)).await;
    let arrived = watch.done(target).await;
    let mut latencies: Vec<f64> = accepted
        .iter()
        .zip(&arrived)
        .map(|(a, b)| b.saturating_duration_since(*a).as_secs_f64() * 1e3)
        .collect();
    latencies.sort_by(f64::total_cmp);
    (latencies, serials)
}

/// Serial numbers unique in this process.
fn reserve(n: usize) -> std::ops::Range<usize> {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let start = NEXT.fetch_add(n, Ordering::Relaxed);
    start..start + n
}

/// Sends the messages `serials` over `CONNECTIONS` sessions (session `i` sends every
/// `CONNECTIONS`-th), each session starting a message every `gap` when given; returns when
/// each one's `250` arrived, in the order of `serials`.
async fn send(
    smtp: SocketAddr,
    serials: std::ops::Range<usize>,
    reuse: bool,
    gap: Option<Duration>,
) -> Vec<Instant> {
    let times = Arc::new(Mutex::new(vec![None; serials.len()]));
    let tasks: Vec<_> = (0..CONNECTIONS)
        .map(|session| {
            let mine: Vec<usize> = serials.clone().skip(session).step_by(CONNECTIONS).collect();
            let (times, first) = (Arc::clone(&times), serials.start);
            tokio::spawn(async move {
                // Sessions start spread over one gap, so the steady load is even.
                let offset =
                    gap.map_or(Duration::ZERO, |g| g * session as u32 / CONNECTIONS as u32);
                let mut next = tokio::time::Instant::now() + offset;
                let mut client = None;
                for serial in mine {
                    if let Some(gap) = gap {
                        tokio::time::sleep_until(next).await;
                        next += gap;
                    }
                    if client.is_none() {
                        let mut c = Client::greeted(smtp).await;
                        c.ehlo().await;
                        client = Some(c);
                    }
                    let c = client.as_mut().expect("connected");
                    transaction(c, serial).await;
                    times.lock().expect("times")[serial - first] = Some(Instant::now());
                    if !reuse {
                        c.cmd("QUIT").await;
                        client = None;
                    }
                }
                if let Some(mut c) = client {
                    c.cmd("QUIT").await;
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.expect("session");
    }
    let times = std::mem::take(&mut *times.lock().expect("times"));
    times
        .into_iter()
        .map(|t| t.expect("every message accepted"))
        .collect()
}

/// One pipelined transaction for message `serial`, asserted to end in `250`.
async fn transaction<S>(c: &mut Client<S>, serial: usize)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut body = dot_stuff(&message(serial));
    body.extend_from_slice(b".\r\n");
    c.send(format!("MAIL FROM:<{FROM}>\r\nRCPT TO:<{TO}>\r\nDATA\r\n").as_bytes())
        .await;
    c.reply().await.expect(250, "2.1.0");
    c.reply().await.expect(250, "2.1.5");
    assert_eq!(c.reply().await.code, 354);
    c.send(&body).await;
    let r = c.reply().await;
    assert_eq!(r.code, 250, "{r:?}");
}

/// Message `serial`: its number in the subject and in the sender's name (which the subject of
/// a notice repeats), 2 KiB of office prose; every `SENSITIVE_EVERY`-th names a tax ID.
fn message(serial: usize) -> Vec<u8> {
    let mut m = format!(
        "From: Amt bench-{serial} <{FROM}>\r\nTo: <{TO}>\r\nSubject: Sitzung bench-{serial}\r\n\
         Message-ID: <bench-{serial}-{}@upstream.test>\r\nDate: Mon, 30 Nov 2026 10:00:00 +0100\r\n\r\n",
        std::process::id()
    )
    .into_bytes();
    let body_start = m.len();
    if serial.is_multiple_of(SENSITIVE_EVERY) {
        m.extend_from_slice(b"Steuer-ID der Antragstellerin: 86095742719\r\n");
    }
    let line = b"Einladung zur oeffentlichen Sitzung des Ausschusses fuer Stadtentwicklung.\r\n";
    while m.len() - body_start + line.len() <= SIZE {
        m.extend_from_slice(line);
    }
    m
}

/// A loopback port free right now.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port()
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// The `q`-quantile of sorted `values` (nearest rank).
fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}
