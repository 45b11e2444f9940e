//! Issue #12 §5: the web listener cannot be starved. Connections beyond the per-address cap
//! are closed at once while the others keep working, and a request whose body never arrives
//! is answered 408 after the request timeout instead of holding its connection open.

use std::time::{Duration, Instant};

use ratspost_tests::server::Server;
use rustls_pki_types::ServerName;
use store::testing::TestDb;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

async fn tls(s: &Server) -> tokio_rustls::client::TlsStream<TcpStream> {
    let tcp = TcpStream::connect(s.web).await.expect("connect");
    ratspost_tests::client::connector(&s.cert())
        .connect(ServerName::try_from("localhost").expect("name"), tcp)
        .await
        .expect("TLS handshake")
}

/// What the server answers to `request` on a fresh connection (empty when it closes).
async fn answer(stream: &mut tokio_rustls::client::TlsStream<TcpStream>, request: &[u8]) -> String {
    stream.write_all(request).await.expect("write");
    let mut buf = vec![0u8; 4096];
    let n = tokio::time::timeout(Duration::from_secs(30), stream.read(&mut buf))
        .await
        .expect("an answer in time")
        .unwrap_or(0);
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_are_capped_per_address_and_slow_bodies_time_out() {
    let s = Server::start_full(
        TestDb::sqlite(),
        "",
        "[web]\nlisten = \"127.0.0.1:0\"\nmax_connections_per_ip = 2\nrequest_timeout_secs = 3\n",
    )
    .await;
    // Two idle connections from this address are allowed …
    let mut first = tls(&s).await;
    let _second = tls(&s).await;
    // … a third is closed before TLS completes.
    let tcp = TcpStream::connect(s.web).await.expect("connect");
    let third = ratspost_tests::client::connector(&s.cert())
        .connect(ServerName::try_from("localhost").expect("name"), tcp)
        .await;
    assert!(
        third.is_err(),
        "a third connection from one address was served"
    );

    // The allowed ones still work.
    let page = answer(
        &mut first,
        b"GET /login HTTP/1.1\r\nHost: localhost\r\n\r\n",
    )
    .await;
    assert!(page.starts_with("HTTP/1.1 200"), "{page}");

    // A body announced but never sent: 408 after the request timeout, not a hung connection.
    let mut slow = {
        drop(first);
        tokio::time::sleep(Duration::from_millis(200)).await;
        tls(&s).await
    };
    let started = Instant::now();
    let reply = answer(
        &mut slow,
        b"POST /login HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 1000\r\n\r\nlogin=a",
    )
    .await;
    assert!(reply.starts_with("HTTP/1.1 408"), "{reply}");
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "took {:?}",
        started.elapsed()
    );
    s.stop().await;
}
