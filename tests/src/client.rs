//! A raw SMTP client: exact bytes out, replies in. Generic over the stream so the same
//! helper speaks plaintext and TLS.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

/// A complete reply: code and its text lines (without the code prefix).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub code: u16,
    pub lines: Vec<String>,
}

impl Reply {
    /// All text joined, for `contains` checks.
    pub fn text(&self) -> String {
        self.lines.join("\n")
    }

    /// Asserts the code and that the text starts with `enhanced` (e.g. "5.1.1").
    #[track_caller]
    pub fn expect(&self, code: u16, enhanced: &str) {
        assert_eq!(self.code, code, "unexpected reply {self:?}");
        assert!(
            self.lines.last().is_some_and(|l| l.starts_with(enhanced)),
            "expected {enhanced} in {self:?}"
        );
    }
}

/// How long any single read may take before the test fails instead of hanging.
const READ_TIMEOUT: Duration = Duration::from_secs(20);

pub struct Client<S> {
    stream: BufReader<S>,
}

impl Client<TcpStream> {
    /// Connects; does not read the greeting.
    pub async fn connect(addr: SocketAddr) -> Self {
        let stream = TcpStream::connect(addr).await.expect("connect");
        // As MTAs do: small pipelined writes must not wait for delayed ACKs (Nagle).
        stream.set_nodelay(true).expect("nodelay");
        Self {
            stream: BufReader::new(stream),
        }
    }

    /// Connects from the loopback address `from` (any of 127.0.0.0/8), so that a test can
    /// play several clients the server counts apart; does not read the greeting.
    pub async fn connect_from(from: std::net::IpAddr, addr: SocketAddr) -> Self {
        let socket = tokio::net::TcpSocket::new_v4().expect("socket");
        socket.bind(SocketAddr::new(from, 0)).expect("bind");
        let stream = socket.connect(addr).await.expect("connect");
        stream.set_nodelay(true).expect("nodelay");
        Self {
            stream: BufReader::new(stream),
        }
    }

    /// Wraps an already connected stream.
    pub fn from_stream(stream: TcpStream) -> Self {
        Self {
            stream: BufReader::new(stream),
        }
    }

    /// Connects and expects the 220 greeting.
    pub async fn greeted(addr: SocketAddr) -> Self {
        let mut c = Self::connect(addr).await;
        let greeting = c.reply().await;
        assert_eq!(greeting.code, 220, "{greeting:?}");
        c
    }

    /// Connects with implicit TLS (RFC 8314, the submissions port), verifying the server
    /// against `cert` for `localhost`, and expects the 220 greeting.
    pub async fn greeted_tls(addr: SocketAddr, cert: &Path) -> Client<TlsStream<TcpStream>> {
        let mut c = Self::connect(addr)
            .await
            .into_tls(cert)
            .await
            .expect("TLS handshake");
        let greeting = c.reply().await;
        assert_eq!(greeting.code, 220, "{greeting:?}");
        c
    }

    /// Issues STARTTLS, checks the 220 and performs the handshake, verifying the server
    /// against `cert` for `localhost`.
    pub async fn starttls(mut self, cert: &Path) -> Client<TlsStream<TcpStream>> {
        self.cmd("STARTTLS").await.expect(220, "2.0.0");
        self.into_tls(cert).await.expect("TLS handshake")
    }

    /// The TCP stream, for a handshake done by the test itself.
    pub fn into_inner(self) -> TcpStream {
        assert!(self.stream.buffer().is_empty(), "unread bytes");
        self.stream.into_inner()
    }

    /// The TLS handshake alone (after the client sent STARTTLS some other way).
    pub async fn into_tls(self, cert: &Path) -> std::io::Result<Client<TlsStream<TcpStream>>> {
        assert!(self.stream.buffer().is_empty(), "unread bytes before TLS");
        let tcp = self.stream.into_inner();
        let tls = connector(cert)
            .connect(ServerName::try_from("localhost").expect("name"), tcp)
            .await?;
        Ok(Client {
            stream: BufReader::new(tls),
        })
    }
}

/// A TLS connector that trusts exactly `cert` (the daemon's generated certificate).
pub fn connector(cert: &Path) -> TlsConnector {
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_file_iter(cert).expect("cert file") {
        roots.add(c.expect("cert")).expect("add root");
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    TlsConnector::from(Arc::new(config))
}

impl<S: AsyncRead + AsyncWrite + Unpin> Client<S> {
    /// Writes raw bytes.
    pub async fn send(&mut self, bytes: &[u8]) {
        let s = self.stream.get_mut();
        s.write_all(bytes).await.expect("write");
        s.flush().await.expect("flush");
    }

    /// Reads one (possibly multi-line) reply.
    pub async fn reply(&mut self) -> Reply {
        self.try_reply().await.expect("a reply, got end of stream")
    }

    /// Reads one reply, or `None` at end of stream.
    pub async fn try_reply(&mut self) -> Option<Reply> {
        let mut lines = Vec::new();
        loop {
            let mut line = String::new();
            let n = tokio::time::timeout(READ_TIMEOUT, self.stream.read_line(&mut line))
                .await
                .expect("reply within timeout")
                .ok()?;
            if n == 0 {
                return None;
            }
            assert!(line.ends_with("\r\n"), "reply line without CRLF: {line:?}");
            let code: u16 = line[..3].parse().expect("reply code");
            lines.push(line[4..line.len() - 2].to_owned());
            if line.as_bytes()[3] == b' ' {
                return Some(Reply { code, lines });
            }
            assert_eq!(line.as_bytes()[3], b'-', "bad continuation {line:?}");
        }
    }

    /// Sends one command line (CRLF added) and reads its reply.
    pub async fn cmd(&mut self, line: &str) -> Reply {
        self.send(format!("{line}\r\n").as_bytes()).await;
        self.reply().await
    }

    /// True when the server closes the connection (end of stream, or reset) within the
    /// read timeout; whatever it still sends first (a TLS alert, say) is ignored.
    pub async fn closed(&mut self) -> bool {
        use tokio::io::AsyncReadExt as _;
        let mut rest = Vec::new();
        matches!(
            tokio::time::timeout(READ_TIMEOUT, self.stream.read_to_end(&mut rest)).await,
            Ok(Ok(_) | Err(_))
        )
    }

    /// EHLO and its reply.
    pub async fn ehlo(&mut self) -> Reply {
        let r = self.cmd("EHLO client.test").await;
        assert_eq!(r.code, 250, "{r:?}");
        r
    }

    /// `AUTH PLAIN` with an initial response (RFC 4954, RFC 4616); returns the reply.
    pub async fn auth_plain(&mut self, user: &str, password: &str) -> Reply {
        let response = relay::encoding::base64(format!("\0{user}\0{password}").as_bytes());
        self.cmd(&format!("AUTH PLAIN {response}")).await
    }

    /// `AUTH LOGIN`, answering both challenges (user name, then password); returns the final
    /// reply, or the first that is not a `334` challenge.
    pub async fn auth_login(&mut self, user: &str, password: &str) -> Reply {
        let r = self.cmd("AUTH LOGIN").await;
        if r.code != 334 {
            return r;
        }
        let r = self.cmd(&relay::encoding::base64(user.as_bytes())).await;
        if r.code != 334 {
            return r;
        }
        self.cmd(&relay::encoding::base64(password.as_bytes()))
            .await
    }

    /// One full transaction with DATA; returns the final reply. `body` is sent dot-stuffed.
    pub async fn send_mail(&mut self, from: &str, to: &[&str], body: &[u8]) -> Reply {
        // As an MTA does: declare 8-bit content (RFC 6152).
        let body_param = if body.is_ascii() {
            ""
        } else {
            " BODY=8BITMIME"
        };
        self.cmd(&format!("MAIL FROM:<{from}>{body_param}"))
            .await
            .expect(250, "2.1.0");
        for rcpt in to {
            self.cmd(&format!("RCPT TO:<{rcpt}>"))
                .await
                .expect(250, "2.1.5");
        }
        let r = self.cmd("DATA").await;
        assert_eq!(r.code, 354, "{r:?}");
        let mut data = dot_stuff(body);
        data.extend_from_slice(b".\r\n");
        self.send(&data).await;
        self.reply().await
    }
}

/// Dot-stuffs `body` and makes sure it ends with CRLF.
pub fn dot_stuff(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len() + 16);
    let mut at_line_start = true;
    for &b in body {
        if at_line_start && b == b'.' {
            out.push(b'.');
        }
        out.push(b);
        at_line_start = b == b'\n';
    }
    if !out.ends_with(b"\r\n") {
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// A small valid message with a unique Message-ID.
pub fn message(id: &str, body: &str) -> Vec<u8> {
    format!(
        "From: Sender <sender@upstream.test>\r\nTo: anna@stadt.test\r\nSubject: Test {id}\r\nMessage-ID: <{id}@upstream.test>\r\nDate: Sun, 22 Nov 2026 10:00:00 +0100\r\n\r\n{body}\r\n"
    )
    .into_bytes()
}

/// A small message from the town hall's office (`amt@verwaltung.test`) to `to`, with a
/// unique Message-ID from `id`.
pub fn office_mail(id: &str, to: &str, subject: &str, body: &str) -> Vec<u8> {
    format!(
        "From: Amt <amt@verwaltung.test>\r\nTo: {to}\r\nSubject: {subject}\r\nMessage-ID: <{id}@verwaltung.test>\r\n\
Date: Mon, 2 Nov 2026 10:00:00 +0100\r\n\r\n{body}\r\n"
    )
    .into_bytes()
}

/// Hex SHA-256.
pub fn sha256(bytes: &[u8]) -> String {
    use sha2::Digest as _;
    hex::encode(sha2::Sha256::digest(bytes))
}
