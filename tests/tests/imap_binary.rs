//! IMAP BINARY (RFC 3516) and COMPRESS=DEFLATE (RFC 4978) over real TLS: a base64
//! attachment comes back decoded (as a literal8, since it holds NUL), an APPEND with a
//! literal8 is stored as sent, an unknown transfer encoding gets `NO [UNKNOWN-CTE]`; after
//! `COMPRESS DEFLATE` both directions are raw DEFLATE, and a second COMPRESS is refused.

use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress};
use ratspost_tests::imap::Imap;
use ratspost_tests::server::Server;
use store::Role;
use store::testing::TestDb;
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _};

const PASSWORD: &str = "iphone-app-password-1";

/// The attachment: every byte value, NUL included.
fn attachment() -> Vec<u8> {
    (0..=255u8).cycle().take(1000).collect()
}

/// A message with a text part and the attachment in base64 (76 columns), and a part in an
/// encoding nobody knows.
fn message() -> Vec<u8> {
    let b64 = relay::encoding::base64(&attachment());
    let folded: Vec<&str> = b64
        .as_bytes()
        .chunks(76)
        .map(|c| std::str::from_utf8(c).expect("ascii"))
        .collect();
    format!(
        "From: Amt <amt@verwaltung.test>\r\nTo: anna@stadt.test\r\nSubject: Anlage\r\n\
MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n\
--b\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n\
Gr=C3=BC=C3=9Fe aus dem Amt\r\n\
--b\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n{}\r\n\
--b\r\nContent-Type: application/x-alt\r\nContent-Transfer-Encoding: x-uuencode\r\n\r\nbegin 644 x\r\n\
--b--\r\n",
        folded.join("\r\n")
    )
    .into_bytes()
}

async fn setup() -> Server {
    let s = Server::start_full(
        TestDb::sqlite(),
        "",
        "[imap]\nlisten = \"127.0.0.1:0\"\nlisten_tls = \"127.0.0.1:0\"\n",
    )
    .await;
    let now = store::now_millis();
    let anna = s.add_user("anna", Role::Staff, &["anna@stadt.test"]).await;
    s.store
        .create_app_password(anna, "iPhone", &store::token::hash(PASSWORD), now)
        .await
        .expect("app password");
    s.store
        .ensure_mailboxes(anna, now)
        .await
        .expect("mailboxes");
    let inbox = s.store.mailbox(anna, "INBOX").await.expect("inbox");
    s.store
        .append_entry(&inbox, &message(), &[], now)
        .await
        .expect("append");
    s
}

type Tls = tokio_rustls::client::TlsStream<tokio::net::TcpStream>;

async fn logged_in(s: &Server) -> Imap<Tls> {
    let mut c = Imap::connect_tls(s.imaps, &s.cert()).await;
    assert!(c.line().await.starts_with("* OK"));
    c.send(&format!("l LOGIN anna {PASSWORD}\r\n")).await;
    let lines = c.until("l ").await;
    assert!(
        lines.last().is_some_and(|l| l.starts_with("l OK")),
        "{lines:?}"
    );
    c
}

/// `* 1 FETCH (BINARY[2] ~{n}` + n bytes + `)`: the announcement and the bytes.
async fn literal_item<S: AsyncRead + AsyncWrite + Unpin>(c: &mut Imap<S>) -> (String, Vec<u8>) {
    let head = String::from_utf8(c.raw_line().await).expect("utf-8 head");
    let open = head.rfind('{').expect("a literal");
    let n: usize = head[open + 1..head.len() - 3].parse().expect("length");
    let data = c.exact(n).await;
    (head, data)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binary_sections_are_decoded() {
    let s = setup().await;
    let mut c = logged_in(&s).await;
    c.send("c CAPABILITY\r\n").await;
    let caps = c.until("c ").await.join(" ");
    assert!(caps.contains(" BINARY"), "{caps}");
    assert!(caps.contains("COMPRESS=DEFLATE"), "{caps}");
    c.send("s SELECT INBOX\r\n").await;
    c.until("s ").await;

    c.send("f FETCH 1 (BINARY.SIZE[2] BINARY.PEEK[2])\r\n")
        .await;
    let (head, data) = literal_item(&mut c).await;
    assert!(
        head.starts_with("* 1 FETCH (BINARY.SIZE[2] 1000 BINARY[2] ~{1000}"),
        "NUL in the data: a literal8 — {head}"
    );
    assert_eq!(data, attachment(), "the attachment decoded");
    assert_eq!(c.line().await, ")");
    assert!(c.line().await.starts_with("f OK"));

    // A partial fetch names its origin; a text part is decoded and needs no literal8.
    c.send("g FETCH 1 (BINARY.PEEK[2]<10.5> BINARY[1])\r\n")
        .await;
    let (head, data) = literal_item(&mut c).await;
    assert!(head.starts_with("* 1 FETCH (BINARY[2]<10> {5}"), "{head}");
    assert_eq!(data, &attachment()[10..15]);
    let rest = c.until("g ").await;
    assert!(
        rest[0].starts_with(" BINARY[1] {"),
        "no NUL: a plain literal — {rest:?}"
    );
    assert_eq!(rest[1], "Grüße aus dem Amt)", "{rest:?}");
    assert!(rest.last().unwrap().starts_with("g OK"));

    c.send("h FETCH 1 (BINARY.PEEK[3])\r\n").await;
    let lines = c.until("h ").await;
    assert!(
        lines.last().unwrap().starts_with("h NO [UNKNOWN-CTE]"),
        "{lines:?}"
    );

    // APPEND with a literal8: stored and served as sent.
    let raw = b"Subject: roh\r\nContent-Type: application/octet-stream\r\n\
Content-Transfer-Encoding: binary\r\n\r\n\0\x01\xff\r\n";
    c.send(&format!("a APPEND INBOX ~{{{}}}\r\n", raw.len()))
        .await;
    assert!(c.line().await.starts_with('+'));
    let mut stream = c.into_inner();
    stream.write_all(raw).await.expect("write");
    stream.write_all(b"\r\n").await.expect("write");
    let mut c = Imap::from_stream(stream);
    let lines = c.until("a ").await;
    assert!(lines.last().unwrap().starts_with("a OK"), "{lines:?}");
    c.send("b FETCH 2 (BINARY.PEEK[1])\r\n").await;
    let (head, data) = literal_item(&mut c).await;
    assert!(head.contains("BINARY[1] ~{5}"), "{head}");
    assert_eq!(data, b"\0\x01\xff\r\n");
    s.stop().await;
}

/// A client side of COMPRESS: raw DEFLATE with a sync flush per command.
struct Deflated<S> {
    stream: S,
    deflate: Compress,
    inflate: Decompress,
    plain: Vec<u8>,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Deflated<S> {
    async fn send(&mut self, text: &str) {
        let mut wire = Vec::with_capacity(text.len() + 64);
        self.deflate
            .compress_vec(text.as_bytes(), &mut wire, FlushCompress::Sync)
            .expect("deflate");
        self.stream.write_all(&wire).await.expect("write");
        self.stream.flush().await.expect("flush");
    }

    async fn line(&mut self) -> String {
        loop {
            if let Some(end) = self.plain.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = self.plain.drain(..=end).collect();
                return String::from_utf8_lossy(&line)
                    .trim_end_matches(['\r', '\n'])
                    .to_owned();
            }
            let mut chunk = vec![0; 4096];
            let n = tokio::time::timeout(
                std::time::Duration::from_secs(20),
                self.stream.read(&mut chunk),
            )
            .await
            .expect("the server did not answer in time")
            .expect("read");
            assert!(n > 0, "the server closed the connection");
            let mut data = &chunk[..n];
            while !data.is_empty() {
                self.plain.reserve(16 * 1024);
                let before = self.inflate.total_in();
                self.inflate
                    .decompress_vec(data, &mut self.plain, FlushDecompress::Sync)
                    .expect("the server's output is raw DEFLATE");
                let used = usize::try_from(self.inflate.total_in() - before).expect("usize");
                data = &data[used..];
            }
        }
    }

    async fn until(&mut self, prefix: &str) -> Vec<String> {
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compress_deflate_then_commands_work_compressed() {
    let s = setup().await;
    // Not before login.
    let mut early = Imap::connect_tls(s.imaps, &s.cert()).await;
    early.line().await;
    early.send("z COMPRESS DEFLATE\r\n").await;
    assert!(early.line().await.starts_with("z BAD"));

    let mut c = logged_in(&s).await;
    c.send("z COMPRESS DEFLATE\r\n").await;
    assert!(c.line().await.starts_with("z OK"));
    let mut z = Deflated {
        stream: c.into_inner(),
        deflate: Compress::new(Compression::default(), false),
        inflate: Decompress::new(false),
        plain: Vec::new(),
    };
    z.send("a SELECT INBOX\r\n").await;
    let lines = z.until("a ").await;
    assert!(lines.iter().any(|l| l == "* 1 EXISTS"), "{lines:?}");
    assert!(lines.last().unwrap().starts_with("a OK"), "{lines:?}");

    z.send("b FETCH 1 (BODY.PEEK[1] BINARY.SIZE[2])\r\n").await;
    let lines = z.until("b ").await;
    assert!(
        lines[0].starts_with("* 1 FETCH (BODY[1] {") && lines[1].starts_with("Gr=C3=BC"),
        "{lines:?}"
    );
    assert!(
        lines.iter().any(|l| l.contains("BINARY.SIZE[2] 1000")),
        "{lines:?}"
    );
    assert!(lines.last().unwrap().starts_with("b OK"));

    z.send("c COMPRESS DEFLATE\r\n").await;
    let lines = z.until("c ").await;
    assert!(
        lines
            .last()
            .unwrap()
            .starts_with("c NO [COMPRESSIONACTIVE]"),
        "{lines:?}"
    );
    z.send("d CAPABILITY\r\n").await;
    let lines = z.until("d ").await;
    assert!(
        !lines[0].contains("COMPRESS"),
        "not offered again: {lines:?}"
    );
    z.send("e LOGOUT\r\n").await;
    let lines = z.until("e ").await;
    assert!(lines[0].starts_with("* BYE"), "{lines:?}");
    assert!(lines.last().unwrap().starts_with("e OK"));
    s.stop().await;
}
