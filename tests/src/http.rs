//! A small HTTPS/1.1 client for the web UI tests: verified TLS against the daemon's
//! certificate, one connection per request (`Connection: close`), a cookie jar, and
//! form posts. Redirects are not followed, so tests see them.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;

use rustls_pki_types::ServerName;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

/// A response.
#[derive(Debug, Clone)]
pub struct Response {
    /// Status code.
    pub status: u16,
    /// Headers, names in lower case, in order.
    pub headers: Vec<(String, String)>,
    /// The body (de-chunked).
    pub body: Vec<u8>,
}

impl Response {
    /// The first value of header `name` (lower case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The body as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The value of the hidden form field `name` in an HTML body.
    pub fn hidden(&self, name: &str) -> Option<String> {
        let text = self.text();
        let at = text.find(&format!("name=\"{name}\" value=\""))?;
        let rest = &text[at + name.len() + 15..];
        Some(rest[..rest.find('"')?].to_owned())
    }
}

/// A browser-like client with a cookie jar.
pub struct Http {
    addr: SocketAddr,
    connector: TlsConnector,
    /// Cookies set by the server (name → value).
    pub cookies: BTreeMap<String, String>,
    /// The `Origin` header to send with POSTs (`None`: none, as some clients do).
    pub origin: Option<String>,
}

impl Http {
    /// A client for the server at `addr` whose certificate is in `cert`.
    pub fn new(addr: SocketAddr, cert: &Path) -> Self {
        Self {
            addr,
            connector: crate::client::connector(cert),
            cookies: BTreeMap::new(),
            origin: Some(format!("https://{addr}")),
        }
    }

    /// `POST path` with an url-encoded form.
    pub async fn post(&mut self, path: &str, fields: &[(&str, &str)]) -> Response {
        let body = fields
            .iter()
            .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
            .collect::<Vec<_>>()
            .join("&");
        self.send(
            "POST",
            path,
            Some(("application/x-www-form-urlencoded", &body)),
        )
        .await
    }

    /// `GET path`.
    pub async fn get(&mut self, path: &str) -> Response {
        self.send("GET", path, None).await
    }

    /// Any `method` on `path`, with a body of the given content type (what a browser would
    /// not send: wrong methods, broken forms).
    pub async fn send(&mut self, method: &str, path: &str, body: Option<(&str, &str)>) -> Response {
        let tcp = TcpStream::connect(self.addr).await.expect("connect");
        let name = ServerName::try_from("localhost").expect("name");
        let mut tls = self
            .connector
            .connect(name, tcp)
            .await
            .expect("TLS handshake");
        let mut head = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\nUser-Agent: ratspost-tests\r\n",
            self.addr
        );
        if !self.cookies.is_empty() {
            let jar: Vec<String> = self
                .cookies
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            head.push_str(&format!("Cookie: {}\r\n", jar.join("; ")));
        }
        if let Some((content_type, body)) = body {
            head.push_str(&format!(
                "Content-Type: {content_type}\r\nContent-Length: {}\r\n",
                body.len()
            ));
            if let Some(origin) = &self.origin {
                head.push_str(&format!("Origin: {origin}\r\n"));
            }
        }
        head.push_str("\r\n");
        head.push_str(body.map_or("", |(_, b)| b));
        tls.write_all(head.as_bytes()).await.expect("send");
        let mut raw = Vec::new();
        // A TLS close without close_notify is fine for a Connection: close response.
        let _ = tls.read_to_end(&mut raw).await;
        let response = parse(&raw);
        for (name, value) in &response.headers {
            if name == "set-cookie"
                && let Some((k, v)) = value.split(';').next().and_then(|c| c.split_once('='))
            {
                if v.is_empty() {
                    self.cookies.remove(k.trim());
                } else {
                    self.cookies.insert(k.trim().to_owned(), v.to_owned());
                }
            }
        }
        response
    }
}

fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

fn parse(raw: &[u8]) -> Response {
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no HTTP header in {:?}", String::from_utf8_lossy(raw)));
    let head = String::from_utf8_lossy(&raw[..end]);
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|c| c.parse().ok())
        .expect("status line");
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let mut body = raw[end + 4..].to_vec();
    if headers
        .iter()
        .any(|(n, v)| n == "transfer-encoding" && v.eq_ignore_ascii_case("chunked"))
    {
        body = dechunk(&body);
    }
    Response {
        status,
        headers,
        body,
    }
}

fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(line_end) = data.windows(2).position(|w| w == b"\r\n") {
        let size = usize::from_str_radix(
            String::from_utf8_lossy(&data[..line_end])
                .split(';')
                .next()
                .unwrap_or("0")
                .trim(),
            16,
        )
        .expect("chunk size");
        if size == 0 {
            break;
        }
        let start = line_end + 2;
        out.extend_from_slice(&data[start..start + size]);
        data = &data[start + size + 2..];
    }
    out
}
