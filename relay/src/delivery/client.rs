//! A minimal SMTP client for the next hop: one message per transaction to one recipient (a
//! forward) or several (a submitted message), STARTTLS according to the configured mode,
//! optional AUTH PLAIN.
//!
//! Written here rather than with mail-send 0.7 because the next hop is usually the city's
//! smarthost with a certificate from the city's own CA: trust must be configurable
//! (`delivery.ca_file`), and mail-send only verifies against the platform's roots. Replies
//! are read by code and continuation marker; the message is dot-stuffed here.

use std::sync::Arc;
use std::time::Duration;

use rustls_pki_types::ServerName;
use rustls_pki_types::pem::PemObject;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use crate::config::{Secret, TlsMode};

/// Why a delivery attempt failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendError {
    /// Try again later (4xx, connection or TLS problems, timeouts).
    Temporary(String),
    /// The next hop refused for good (5xx).
    Permanent(String),
}

/// Where and how to deliver.
#[derive(Clone)]
pub struct Hop {
    /// `host:port`.
    pub address: String,
    /// Name the certificate must carry.
    pub host: String,
    /// STARTTLS policy.
    pub tls: TlsMode,
    /// Trust roots for the hop's certificate.
    pub connector: TlsConnector,
    /// Our EHLO name.
    pub helo: String,
    /// Limit for connecting, for each reply and for each chunk of the message sent.
    pub timeout: Duration,
    /// Limit for the reply to the final dot (RFC 5321 §4.5.3.2.6: ten minutes).
    pub data_end_timeout: Duration,
    /// AUTH PLAIN credentials.
    pub auth: Option<(String, Secret)>,
}

/// Builds a TLS connector trusting the public web roots plus, if given, the PEM certificates
/// in `ca_file`.
///
/// # Errors
/// When `ca_file` cannot be read or holds no certificate.
pub fn connector(ca_file: Option<&std::path::Path>) -> anyhow::Result<TlsConnector> {
    use anyhow::Context as _;
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    if let Some(path) = ca_file {
        let mut added = 0;
        for cert in rustls_pki_types::CertificateDer::pem_file_iter(path)
            .with_context(|| format!("delivery.ca_file: reading {}", path.display()))?
        {
            roots
                .add(cert.with_context(|| format!("delivery.ca_file: {}", path.display()))?)
                .with_context(|| format!("delivery.ca_file: {}", path.display()))?;
            added += 1;
        }
        anyhow::ensure!(
            added > 0,
            "delivery.ca_file: no certificate in {}",
            path.display()
        );
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(TlsConnector::from(Arc::new(config)))
}

trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

struct Session {
    stream: BufReader<Box<dyn Io>>,
    timeout: Duration,
}

/// A reply: code and text.
struct Reply {
    code: u16,
    text: String,
}

impl Reply {
    fn error(&self, stage: &str) -> SendError {
        let text = format!("{stage}: {} {}", self.code, self.text);
        if self.code >= 500 {
            SendError::Permanent(text)
        } else {
            SendError::Temporary(text)
        }
    }
}

fn temporary(stage: &str, err: impl std::fmt::Display) -> SendError {
    SendError::Temporary(format!("{stage}: {err}"))
}

/// How much of a message is written under one `timeout`: a slow but steady next hop gets a
/// large message through (RFC 5321 §4.5.3.2.5 bounds each send, not the whole transfer).
const CHUNK: usize = 64 * 1024;

impl Session {
    async fn reply(&mut self, stage: &str) -> Result<Reply, SendError> {
        self.reply_within(stage, self.timeout).await
    }

    async fn reply_within(&mut self, stage: &str, limit: Duration) -> Result<Reply, SendError> {
        let mut text = Vec::new();
        loop {
            let mut line = String::new();
            let n = tokio::time::timeout(limit, self.stream.read_line(&mut line))
                .await
                .map_err(|_| temporary(stage, "timeout waiting for the reply"))?
                .map_err(|e| temporary(stage, e))?;
            if n == 0 {
                return Err(temporary(stage, "connection closed"));
            }
            if line.len() < 4 || line.len() > 4096 {
                return Err(temporary(stage, "malformed reply"));
            }
            let code: u16 = line[..3]
                .parse()
                .map_err(|_| temporary(stage, "malformed reply"))?;
            text.push(line[4..].trim_end().to_owned());
            if line.as_bytes()[3] != b'-' {
                return Ok(Reply {
                    code,
                    text: text.join(" / "),
                });
            }
        }
    }

    /// Writes `bytes`, each [`CHUNK`] within `timeout`.
    async fn send(&mut self, stage: &str, bytes: &[u8]) -> Result<(), SendError> {
        for chunk in bytes.chunks(CHUNK) {
            tokio::time::timeout(self.timeout, self.stream.get_mut().write_all(chunk))
                .await
                .map_err(|_| temporary(stage, "timeout while sending"))?
                .map_err(|e| temporary(stage, e))?;
        }
        tokio::time::timeout(self.timeout, self.stream.get_mut().flush())
            .await
            .map_err(|_| temporary(stage, "timeout while sending"))?
            .map_err(|e| temporary(stage, e))
    }

    /// Sends a command and expects a reply in `ok`.
    async fn command(&mut self, stage: &str, line: &str, ok: &[u16]) -> Result<Reply, SendError> {
        self.send(stage, format!("{line}\r\n").as_bytes()).await?;
        let reply = self.reply(stage).await?;
        if ok.contains(&reply.code) {
            Ok(reply)
        } else {
            Err(reply.error(stage))
        }
    }

    async fn ehlo(&mut self, helo: &str) -> Result<Vec<String>, SendError> {
        let reply = self
            .command("EHLO", &format!("EHLO {helo}"), &[250])
            .await?;
        Ok(reply
            .text
            .split(" / ")
            .map(|l| l.to_ascii_uppercase())
            .collect())
    }
}

/// Asked right before the message's end (the final dot) is sent: whether it may be. The
/// delivery worker answers with its job's lease ([`super::lease::Lease`]).
pub trait EndGate: Sync {
    /// `Ok` to send the dot; `Err(why)` abandons the transaction without it (the next hop
    /// discards what it got, RFC 5321 §4.1.1.4). `reply_wait`: how long the reply to the dot
    /// may then take.
    fn confirm_end(
        &self,
        reply_wait: Duration,
    ) -> impl std::future::Future<Output = Result<(), String>> + Send;
}

/// Always sends the message's end (for callers without a lease).
pub struct Ungated;

impl EndGate for Ungated {
    async fn confirm_end(&self, _reply_wait: Duration) -> Result<(), String> {
        Ok(())
    }
}

/// Delivers `body` from `mail_from` to `rcpt` through `hop`; `gate` decides at the last
/// moment whether the message's end is sent.
///
/// # Errors
/// Temporary or permanent failure, with the stage and the hop's reply.
pub async fn send(
    hop: &Hop,
    mail_from: &str,
    rcpt: &str,
    body: &[u8],
    gate: &impl EndGate,
) -> Result<(), SendError> {
    match send_many(hop, mail_from, &[rcpt], body, gate).await?.pop() {
        Some((_, refused)) => Err(refused),
        None => Ok(()),
    }
}

/// Delivers `body` from `mail_from` to all of `rcpts` through `hop` in one transaction; the
/// recipients the hop refused, each with its reply (the rest got the message). When the hop
/// refuses every recipient, no message is sent.
///
/// # Errors
/// A failure of the whole transaction (connection, TLS, AUTH, MAIL, DATA), with the stage
/// and the hop's reply.
pub async fn send_many(
    hop: &Hop,
    mail_from: &str,
    rcpts: &[&str],
    body: &[u8],
    gate: &impl EndGate,
) -> Result<Vec<(String, SendError)>, SendError> {
    let tcp = tokio::time::timeout(hop.timeout, TcpStream::connect(&hop.address))
        .await
        .map_err(|_| temporary("connect", format!("{} did not answer", hop.address)))?
        .map_err(|e| temporary("connect", format!("{}: {e}", hop.address)))?;
    let _ = tcp.set_nodelay(true);
    let mut s = Session {
        stream: BufReader::new(Box::new(tcp) as Box<dyn Io>),
        timeout: hop.timeout,
    };
    let greeting = s.reply("greeting").await?;
    if greeting.code != 220 {
        // A refusing greeting is a problem of that server, not of the message.
        return Err(SendError::Temporary(format!(
            "greeting: {} {}",
            greeting.code, greeting.text
        )));
    }
    let mut caps = s.ehlo(&hop.helo).await?;
    let offers_tls = caps.iter().any(|c| c == "STARTTLS");
    let use_tls = match hop.tls {
        TlsMode::Required if !offers_tls => {
            return Err(SendError::Temporary(format!(
                "{} does not offer STARTTLS and TLS is required",
                hop.address
            )));
        }
        TlsMode::Required => true,
        TlsMode::Opportunistic => offers_tls,
        TlsMode::None => false,
    };
    if use_tls {
        s.command("STARTTLS", "STARTTLS", &[220]).await?;
        let name = ServerName::try_from(hop.host.clone()).map_err(|e| temporary("TLS", e))?;
        let plain = s.stream.into_inner();
        let tls = tokio::time::timeout(hop.timeout, hop.connector.connect(name, plain))
            .await
            .map_err(|_| temporary("TLS", "handshake timed out"))?
            .map_err(|e| {
                temporary(
                    "TLS",
                    format!("{e} (certificate of {} not trusted?)", hop.host),
                )
            })?;
        s = Session {
            stream: BufReader::new(Box::new(tls) as Box<dyn Io>),
            timeout: hop.timeout,
        };
        caps = s.ehlo(&hop.helo).await?;
    }
    if let Some((user, password)) = &hop.auth {
        // Fail closed: a password never crosses the network in plaintext, whatever the TLS
        // mode says (with "opportunistic", an attacker who strips STARTTLS would read it).
        if !use_tls {
            return Err(SendError::Temporary(format!(
                "{} offers no STARTTLS: the AUTH credentials are not sent without TLS",
                hop.address
            )));
        }
        let token = crate::encoding::base64(format!("\0{user}\0{}", password.expose()).as_bytes());
        s.command("AUTH", &format!("AUTH PLAIN {token}"), &[235])
            .await?;
    }
    let eight_bit = !body.is_ascii() && caps.iter().any(|c| c == "8BITMIME");
    let utf8 = !(mail_from.is_ascii() && rcpts.iter().all(|r| r.is_ascii()))
        && caps.iter().any(|c| c == "SMTPUTF8");
    let params = format!(
        "{}{}",
        if eight_bit { " BODY=8BITMIME" } else { "" },
        if utf8 { " SMTPUTF8" } else { "" }
    );
    s.command(
        "MAIL FROM",
        &format!("MAIL FROM:<{mail_from}>{params}"),
        &[250],
    )
    .await?;
    let mut refused = Vec::new();
    for rcpt in rcpts {
        s.send("RCPT TO", format!("RCPT TO:<{rcpt}>\r\n").as_bytes())
            .await?;
        let reply = s.reply("RCPT TO").await?;
        if !matches!(reply.code, 250 | 251) {
            refused.push(((*rcpt).to_owned(), reply.error("RCPT TO")));
        }
    }
    if refused.len() == rcpts.len() {
        let _ = s.command("QUIT", "QUIT", &[221]).await;
        return Ok(refused);
    }
    s.command("DATA", "DATA", &[354]).await?;
    s.send("DATA", &dot_stuff(body)).await?;
    // The last moment at which the transaction can still be given up without the next hop
    // taking the message: the dot goes out only while this node may deliver the job.
    if let Err(why) = gate.confirm_end(hop.timeout).await {
        return Err(SendError::Temporary(format!("end of data not sent: {why}")));
    }
    s.send("end of data", b".\r\n").await?;
    // From here on the next hop may have taken the message whatever happens: a failure is
    // retried, and says that a second copy may follow (the window in the README).
    let done = s
        .reply_within("end of data", hop.data_end_timeout)
        .await
        .map_err(|e| match e {
            SendError::Temporary(e) => SendError::Temporary(format!(
                "{e} (after the message's end was sent: the next hop may already have it)"
            )),
            permanent @ SendError::Permanent(_) => permanent,
        })?;
    if done.code != 250 {
        return Err(done.error("end of data"));
    }
    let _ = s.command("QUIT", "QUIT", &[221]).await;
    Ok(refused)
}

/// Dot-stuffs `body` with CRLF line ends, ending in CRLF.
fn dot_stuff(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len() + body.len() / 40 + 4);
    let mut line_start = true;
    let mut prev = 0u8;
    for &b in body {
        if b == b'\n' && prev != b'\r' {
            out.push(b'\r');
        }
        if line_start && b == b'.' {
            out.push(b'.');
        }
        out.push(b);
        line_start = b == b'\n';
        prev = b;
    }
    if !out.ends_with(b"\r\n") {
        out.extend_from_slice(b"\r\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dot_stuffing_and_line_ends() {
        assert_eq!(dot_stuff(b".a\n..b\r\nc"), b"..a\r\n...b\r\nc\r\n");
        assert_eq!(dot_stuff(b""), b"\r\n");
    }
}
