//! A raw line-oriented IMAP client for protocol-level tests (what real clients cannot be
//! made to do: plaintext LOGIN, injected commands, exact timing).

use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::time::Duration;

use rustls_pki_types::ServerName;
use tokio::io::{
    AsyncBufReadExt as _, AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _, BufReader,
};
use tokio::net::{TcpSocket, TcpStream};
use tokio_rustls::client::TlsStream;

/// How long any single read may take before the test fails instead of hanging.
const READ_TIMEOUT: Duration = Duration::from_secs(20);

/// A connection.
pub struct Imap<S> {
    stream: BufReader<S>,
}

impl Imap<TcpStream> {
    /// Connects in plaintext (the STARTTLS port); does not read the greeting.
    pub async fn connect(addr: SocketAddr) -> Self {
        let stream = TcpStream::connect(addr).await.expect("connect");
        stream.set_nodelay(true).expect("nodelay");
        Self {
            stream: BufReader::new(stream),
        }
    }

    /// The TLS handshake after the server said OK to STARTTLS. Bytes the client sent
    /// behind STARTTLS stay unanswered in plaintext.
    pub async fn starttls(self, cert: &Path) -> Imap<TlsStream<TcpStream>> {
        let tcp = self.stream.into_inner();
        let tls = crate::client::connector(cert)
            .connect(ServerName::try_from("localhost").expect("name"), tcp)
            .await
            .expect("TLS handshake");
        Imap {
            stream: BufReader::new(tls),
        }
    }

    /// Connects with implicit TLS (port 993 style), verifying `cert`.
    pub async fn connect_tls(addr: SocketAddr, cert: &Path) -> Imap<TlsStream<TcpStream>> {
        Self::connect(addr).await.starttls(cert).await
    }

    /// Connects with implicit TLS from the loopback address `from` (any of 127.0.0.0/8), so
    /// a test can play several clients that the server counts apart.
    pub async fn connect_tls_from(
        from: IpAddr,
        addr: SocketAddr,
        cert: &Path,
    ) -> Imap<TlsStream<TcpStream>> {
        let socket = TcpSocket::new_v4().expect("socket");
        socket.bind(SocketAddr::new(from, 0)).expect("bind");
        let stream = socket.connect(addr).await.expect("connect");
        stream.set_nodelay(true).expect("nodelay");
        Imap {
            stream: BufReader::new(stream),
        }
        .starttls(cert)
        .await
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> Imap<S> {
    /// Writes `text` as is.
    pub async fn send(&mut self, text: &str) {
        let s = self.stream.get_mut();
        s.write_all(text.as_bytes()).await.expect("write");
        s.flush().await.expect("flush");
    }

    /// One line without CRLF.
    pub async fn line(&mut self) -> String {
        let mut line = String::new();
        let n = tokio::time::timeout(READ_TIMEOUT, self.stream.read_line(&mut line))
            .await
            .expect("the server did not answer in time")
            .expect("read");
        assert!(n > 0, "the server closed the connection");
        line.trim_end_matches(['\r', '\n']).to_owned()
    }

    /// One line without CRLF, or `None` when the server closed the connection.
    pub async fn line_or_eof(&mut self) -> Option<String> {
        let mut line = String::new();
        let n = tokio::time::timeout(READ_TIMEOUT, self.stream.read_line(&mut line))
            .await
            .expect("the server did not answer in time")
            .unwrap_or(0);
        (n > 0).then(|| line.trim_end_matches(['\r', '\n']).to_owned())
    }

    /// One line with its line end, as bytes (for literals that are not text).
    pub async fn raw_line(&mut self) -> Vec<u8> {
        let mut line = Vec::new();
        let n = tokio::time::timeout(READ_TIMEOUT, self.stream.read_until(b'\n', &mut line))
            .await
            .expect("the server did not answer in time")
            .expect("read");
        assert!(n > 0, "the server closed the connection");
        line
    }

    /// Exactly `n` bytes (a literal's contents).
    pub async fn exact(&mut self, n: usize) -> Vec<u8> {
        let mut bytes = vec![0; n];
        tokio::time::timeout(READ_TIMEOUT, self.stream.read_exact(&mut bytes))
            .await
            .expect("the server did not answer in time")
            .expect("read");
        bytes
    }

    /// A connection on `stream` (given back by [`Imap::into_inner`]).
    pub fn from_stream(stream: S) -> Self {
        Self {
            stream: BufReader::new(stream),
        }
    }

    /// The stream, for a test that takes over (COMPRESS). Nothing may be buffered.
    pub fn into_inner(self) -> S {
        assert!(
            self.stream.buffer().is_empty(),
            "bytes left unread in the buffer"
        );
        self.stream.into_inner()
    }

    /// Lines up to and including the one starting with `prefix` (a tagged reply).
    pub async fn until(&mut self, prefix: &str) -> Vec<String> {
        let mut lines = Vec::new();
        loop {
            let line = self.line().await;
            let done = line.starts_with(prefix);
            lines.push(line);
            if done {
                return lines;
            }
        }
    }
}
