//! Forwards per second, end to end: SMTP intake → classification → forward decision →
//! queue → delivery to an SMTP sink standing in for the private provider. Half the messages
//! are clean (forwarded intact, ARC-sealed), half sensitive (a notice goes out instead).
//!
//! The daemon is the real release binary in its own process; the figure is messages
//! accepted by the sink per second of wall time, from the first SMTP connection to the last
//! delivery. `RATSPOST_BENCH_FORWARDS` sets the message count (default 2000); PostgreSQL is
//! measured when `RATSPOST_TEST_PG_URL` is set.
//!
//! Run: `cargo bench -p ratspost-tests --bench forwarding`

use std::net::SocketAddr;
use std::time::Instant;

use ratspost_tests::client::{Client, dot_stuff, message};
use ratspost_tests::daemon::{Daemon, add_user, enrol, exempt, write_config};
use ratspost_tests::sink::{Sink, SinkOptions};
use store::testing::TestDb;

const CONNECTIONS: usize = 10;

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let total: usize = std::env::var("RATSPOST_BENCH_FORWARDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2000);
    runtime.block_on(async {
        println!("forwarding end to end, {total} messages (half clean, half sensitive), {CONNECTIONS} SMTP connections");
        println!("{:<11} {:>10} {:>12} {:>10}", "backend", "messages", "forwards/s", "seconds");
        bench(TestDb::sqlite(), "sqlite", total).await;
        match TestDb::postgres("forwarding bench").await {
            Some(db) => bench(db, "postgres", total).await,
            None => println!("postgres    skipped: set RATSPOST_TEST_PG_URL"),
        }
    });
}

async fn bench(db: TestDb, name: &str, total: usize) {
    let sink = Sink::start(SinkOptions::default()).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let config = write_config(
        dir.path(),
        &db.url,
        &format!(
            "max_connections_per_ip = 64\n[delivery]\nsmarthost = \"{}\"\ntls = \"none\"\nconcurrency = 16\n[classifier]\nworkers = 4\n",
            sink.addr
        ),
    );
    enrol(&config, "anna", "anna@stadt.test", "bench");
    add_user(&config, "admin1", "admin", &[], "bench");
    exempt(&db.url, "anna", "anna@privat.example").await;
    let daemon = Daemon::start(&config);

    let start = Instant::now();
    let per = total.div_ceil(CONNECTIONS);
    let tasks: Vec<_> = (0..CONNECTIONS)
        .map(|c| tokio::spawn(session(daemon.smtp, c, per)))
        .collect();
    for t in tasks {
        t.await.expect("session");
    }
    let accepted = start.elapsed().as_secs_f64();
    // Where the time goes: when the pipeline has decided everything, when the sink has it all.
    let watch = store::Store::open(&db.url, &store::StoreOptions::default())
        .await
        .expect("open");
    let mut processed_at = None;
    for _ in 0..12_000 {
        let processed = watch
            .messages_in_state(store::MessageState::Processed, 1_000_000)
            .await
            .expect("count")
            .len();
        if processed_at.is_none() && processed >= per * CONNECTIONS {
            processed_at = Some(start.elapsed().as_secs_f64());
        }
        if sink.received().len() >= per * CONNECTIONS && processed_at.is_some() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    watch.close().await;
    sink.wait_for_long(per * CONNECTIONS, 600).await;
    let secs = start.elapsed().as_secs_f64();
    println!(
        "            accepted by SMTP after {accepted:.1} s, all decided after {:.1} s, all delivered after {secs:.1} s",
        processed_at.unwrap_or(f64::NAN)
    );
    println!(
        "{name:<11} {:>10} {:>12.0} {:>10.1}",
        per * CONNECTIONS,
        (per * CONNECTIONS) as f64 / secs,
        secs
    );
    assert!(daemon.terminate().success());
}

async fn session(addr: SocketAddr, conn: usize, messages: usize) {
    let mut c = Client::greeted(addr).await;
    c.ehlo().await;
    for n in 0..messages {
        let body = if n % 2 == 0 {
            format!(
                "Einladung zur Sitzung des Bauausschusses am 3. Dezember, Vorlage 25-2661{}. ",
                n % 10
            )
            .repeat(20)
        } else {
            format!(
                "Frau Peters, geb. 12.03.1975, Steuer-ID 86095742719, Diagnose F32.{}. ",
                n % 10
            )
            .repeat(20)
        };
        let mut data = dot_stuff(&message(&format!("fwd-{conn}-{n}"), &body));
        data.extend_from_slice(b".\r\n");
        c.send(b"MAIL FROM:<sender@upstream.test>\r\nRCPT TO:<anna@stadt.test>\r\nDATA\r\n")
            .await;
        c.reply().await.expect(250, "2.1.0");
        c.reply().await.expect(250, "2.1.5");
        assert_eq!(c.reply().await.code, 354);
        c.send(&data).await;
        c.reply().await.expect(250, "2.0.0");
    }
    c.cmd("QUIT").await;
}
