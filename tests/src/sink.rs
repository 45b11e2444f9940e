//! A small SMTP server standing in for the smarthost or the private provider: it records
//! what it receives, offers STARTTLS with its own certificate (or not), and can refuse
//! recipients with a scripted reply.
//!
//! For fault tests it can also misbehave the way real servers do (see [`SinkOptions`]): answer
//! slowly, sit on the final dot, answer it with a scripted reply (`451` …), drop the connection
//! after the dot without answering, or accept connections and never say anything. By default
//! it does none of that.
//!
//! Two counts tell what reached it: [`Sink::received`] holds only the messages it *accepted*
//! (answered the dot with a `2xx` reply), [`Sink::dotted`] / [`Sink::dots`] every message whose
//! final dot arrived, whatever became of it (a real server that dropped the connection after
//! the dot may well have queued the message: for the at-least-once window both count).

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

/// One received message.
#[derive(Debug, Clone)]
pub struct Received {
    /// MAIL FROM.
    pub from: String,
    /// RCPT TO.
    pub rcpt: Vec<String>,
    /// The message, unstuffed.
    pub data: Vec<u8>,
    /// Whether it came over TLS.
    pub tls: bool,
    /// The client's EHLO name.
    pub helo: String,
    /// The user name and password it authenticated with (AUTH PLAIN or LOGIN), if it did.
    pub auth: Option<(String, String)>,
    /// When its final dot arrived (benchmarks measure latency with it).
    pub at: std::time::Instant,
}

/// How the sink behaves. The default is a well-behaved server that accepts everything at
/// once; the fault modes below are off by default.
#[derive(Debug, Clone, Default)]
pub struct SinkOptions {
    /// Offer STARTTLS.
    pub starttls: bool,
    /// Reply to every RCPT with this instead of `250` (e.g. `550 5.1.1 unknown`).
    pub rcpt_reply: Option<String>,
    /// Recipients refused with a reply of their own, as (address, reply); the test may change
    /// the list while the sink runs (it keeps a clone of the `Arc`).
    pub refusals: Arc<Mutex<Vec<(String, String)>>>,
    /// Names in the certificate (default: localhost, 127.0.0.1, ::1).
    pub names: Vec<String>,
    /// Offer AUTH PLAIN LOGIN (accepting any credentials, recorded in [`Received::auth`]).
    pub auth: bool,
    /// Use this certificate and key (PEM files) instead of generating a pair: a sink that
    /// comes back keeps the certificate a daemon was told to trust.
    pub identity: Option<(PathBuf, PathBuf)>,
    /// Wait this long before every reply of the dialogue (greeting, EHLO, MAIL, RCPT, `354`,
    /// the dot's reply, QUIT; not AUTH's `334` challenges): a slow server.
    pub reply_delay: Duration,
    /// Wait this long after the final dot before deciding on and sending its reply (on top of
    /// `reply_delay`): a server that scans or queues slowly. The message already counts in
    /// [`Sink::dotted`] while the sink waits.
    pub dot_delay: Duration,
    /// Answer the final dot of the first messages with these replies, one each, in order
    /// (e.g. `451 4.3.0 try again`), across all connections; then `250`. A scripted reply
    /// starting with `2` counts as accepted.
    pub dot_replies: Vec<String>,
    /// Drop the connection after the final dot of the first this-many messages without any
    /// reply (before `dot_replies` are used).
    pub drop_after_dot: usize,
    /// Accept connections and never answer anything (not even the greeting); the connection
    /// stays open until the client closes it.
    pub hang: bool,
}

/// What the sink does with a message whose final dot arrived.
enum Verdict {
    /// Close the connection without a reply.
    Drop,
    /// Send this reply (without CRLF); accepted when it starts with `2`.
    Reply(String),
}

/// What all sessions of a sink share.
struct State {
    options: SinkOptions,
    /// Accepted messages.
    received: Mutex<Vec<Received>>,
    /// Every message whose final dot arrived.
    dotted: Mutex<Vec<Received>>,
    /// Scripted replies to the dot not used yet.
    dot_replies: Mutex<VecDeque<String>>,
    /// Dots still to be answered by dropping the connection.
    drops_left: Mutex<usize>,
    /// Connections accepted.
    connections: Mutex<usize>,
    /// The EHLO names, as they arrived.
    ehlos: Mutex<Vec<String>>,
}

impl State {
    /// The fate of the next message whose dot arrived: a drop, a scripted reply, or `250`.
    fn verdict(&self) -> Verdict {
        let mut drops = self.drops_left.lock().expect("drops");
        if *drops > 0 {
            *drops -= 1;
            return Verdict::Drop;
        }
        drop(drops);
        let scripted = self.dot_replies.lock().expect("dot replies").pop_front();
        Verdict::Reply(scripted.unwrap_or_else(|| "250 2.0.0 queued".to_owned()))
    }
}

/// A running sink.
pub struct Sink {
    /// Where it listens.
    pub addr: SocketAddr,
    /// Its certificate (trust it as `delivery.ca_file`).
    pub cert: PathBuf,
    /// The recipients it refuses ([`SinkOptions::refusals`]), changeable while it runs.
    pub refusals: Arc<Mutex<Vec<(String, String)>>>,
    state: Arc<State>,
    task: tokio::task::JoinHandle<()>,
    _dir: tempfile::TempDir,
}

trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

impl Sink {
    /// A sink on an ephemeral port.
    pub async fn start(options: SinkOptions) -> Self {
        Self::start_on("127.0.0.1:0".parse().expect("addr"), options).await
    }

    /// A sink on `addr` (to bring a "dead" smarthost back).
    pub async fn start_on(addr: SocketAddr, options: SinkOptions) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let cert = dir.path().join("cert.pem");
        let key = dir.path().join("key.pem");
        if let Some((c, k)) = &options.identity {
            std::fs::copy(c, &cert).expect("sink certificate");
            std::fs::copy(k, &key).expect("sink key");
        } else if options.names.is_empty() {
            relay::tls::generate_self_signed(&cert, &key).expect("sink certificate");
        } else {
            let names: Vec<&str> = options.names.iter().map(String::as_str).collect();
            relay::tls::generate_self_signed_for(&cert, &key, &names).expect("sink certificate");
        }
        let acceptor = relay::tls::acceptor(&cert, &key).expect("sink TLS");
        let listener = TcpListener::bind(addr).await.expect("bind sink");
        let addr = listener.local_addr().expect("addr");
        let refusals = Arc::clone(&options.refusals);
        let state = Arc::new(State {
            dot_replies: Mutex::new(options.dot_replies.iter().cloned().collect()),
            drops_left: Mutex::new(options.drop_after_dot),
            options,
            received: Mutex::new(Vec::new()),
            dotted: Mutex::new(Vec::new()),
            connections: Mutex::new(0),
            ehlos: Mutex::new(Vec::new()),
        });
        let shared = Arc::clone(&state);
        let task = tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                *shared.connections.lock().expect("connections") += 1;
                let (acceptor, state) = (acceptor.clone(), Arc::clone(&shared));
                tokio::spawn(async move {
                    let _ = session(Box::new(tcp), false, acceptor, state).await;
                });
            }
        });
        Self {
            addr,
            cert,
            refusals,
            state,
            task,
            _dir: dir,
        }
    }

    /// What it accepted so far (answered the final dot with `2xx`).
    pub fn received(&self) -> Vec<Received> {
        self.state.received.lock().expect("lock").clone()
    }

    /// Every message whose final dot arrived so far, accepted or not, in order of the dots.
    pub fn dotted(&self) -> Vec<Received> {
        self.state.dotted.lock().expect("lock").clone()
    }

    /// How many final dots arrived so far (see [`Self::dotted`]).
    pub fn dots(&self) -> usize {
        self.state.dotted.lock().expect("lock").len()
    }

    /// How many connections it accepted so far.
    pub fn connections(&self) -> usize {
        *self.state.connections.lock().expect("lock")
    }

    /// The EHLO names clients gave so far, in order (who is talking to the sink right now,
    /// before any message of theirs arrived).
    pub fn ehlos(&self) -> Vec<String> {
        self.state.ehlos.lock().expect("lock").clone()
    }

    /// Waits up to `secs` seconds until `n` final dots arrived; returns the messages.
    ///
    /// # Panics
    /// When they do not.
    pub async fn wait_for_dots(&self, n: usize, secs: u64) -> Vec<Received> {
        for _ in 0..secs * 20 {
            let got = self.dotted();
            if got.len() >= n {
                return got;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("{} of {n} final dots reached the sink", self.dots());
    }

    /// Waits (up to 30 s) until `n` messages arrived.
    ///
    /// # Panics
    /// When they do not.
    pub async fn wait_for(&self, n: usize) -> Vec<Received> {
        for _ in 0..300 {
            let got = self.received();
            if got.len() >= n {
                return got;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!(
            "the sink received {} of {n} messages",
            self.received().len()
        );
    }

    /// Waits up to `secs` seconds until `n` messages arrived.
    ///
    /// # Panics
    /// When they do not.
    pub async fn wait_for_long(&self, n: usize, secs: u64) -> Vec<Received> {
        for _ in 0..secs * 20 {
            let got = self.received();
            if got.len() >= n {
                return got;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!(
            "the sink received {} of {n} messages",
            self.received().len()
        );
    }

    /// Waits up to 30 seconds until a message for which `wanted` holds arrived; returns it
    /// (when other mail may arrive too, in any order).
    ///
    /// # Panics
    /// When none does.
    pub async fn wait_until(&self, wanted: impl Fn(&Received) -> bool) -> Received {
        for _ in 0..300 {
            if let Some(found) = self.received().into_iter().find(|m| wanted(m)) {
                return found;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!(
            "none of the {} messages the sink received is the one wanted",
            self.received().len()
        );
    }

    /// Stops listening (the port is free again).
    pub fn stop(self) {
        self.task.abort();
    }
}

/// Sleeps `delay`, then writes `reply`.
async fn answer<S: AsyncWrite + Unpin>(
    s: &mut S,
    delay: Duration,
    reply: &[u8],
) -> std::io::Result<()> {
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    s.write_all(reply).await
}

fn session(
    stream: Box<dyn Io>,
    tls: bool,
    acceptor: TlsAcceptor,
    state: Arc<State>,
) -> std::pin::Pin<Box<dyn std::future::Future<Output = std::io::Result<()>> + Send>> {
    Box::pin(async move {
        let options = &state.options;
        let delay = options.reply_delay;
        let mut s = BufReader::new(stream);
        if options.hang {
            // Read (and ignore) whatever comes until the client gives up.
            let mut ignored = Vec::new();
            while s.read_until(b'\n', &mut ignored).await? > 0 {
                ignored.clear();
            }
            return Ok(());
        }
        if !tls {
            answer(s.get_mut(), delay, b"220 sink.test ESMTP\r\n").await?;
        }
        let (mut from, mut rcpt, mut helo) = (String::new(), Vec::new(), String::new());
        let mut auth = None;
        loop {
            let mut line = String::new();
            if s.read_line(&mut line).await? == 0 {
                return Ok(());
            }
            let upper = line.to_ascii_uppercase();
            let reply: Vec<u8> = if upper.starts_with("EHLO") {
                helo = line[4..].trim().to_owned();
                state.ehlos.lock().expect("lock").push(helo.clone());
                let starttls = if options.starttls && !tls {
                    "250-STARTTLS\r\n"
                } else {
                    ""
                };
                let mechanisms = if options.auth {
                    "250-AUTH PLAIN LOGIN\r\n"
                } else {
                    ""
                };
                format!("250-sink.test\r\n250-8BITMIME\r\n250-SMTPUTF8\r\n{starttls}{mechanisms}250 SIZE 100000000\r\n").into_bytes()
            } else if upper.starts_with("STARTTLS") && options.starttls && !tls {
                answer(s.get_mut(), delay, b"220 2.0.0 go ahead\r\n").await?;
                let plain = s.into_inner();
                let secured = acceptor.accept(plain).await?;
                return session(Box::new(secured), true, acceptor, Arc::clone(&state)).await;
            } else if upper.starts_with("MAIL FROM:") {
                from = line[10..]
                    .trim()
                    .trim_start_matches('<')
                    .split('>')
                    .next()
                    .unwrap_or("")
                    .to_owned();
                b"250 2.1.0 ok\r\n".to_vec()
            } else if upper.starts_with("RCPT TO:") {
                let address = line[8..]
                    .trim()
                    .trim_start_matches('<')
                    .trim_end_matches('>')
                    .to_owned();
                let refusal = options
                    .refusals
                    .lock()
                    .expect("refusals")
                    .iter()
                    .find(|(a, _)| a.eq_ignore_ascii_case(&address))
                    .map(|(_, reply)| reply.clone());
                match refusal.as_ref().or(options.rcpt_reply.as_ref()) {
                    Some(reply) => format!("{reply}\r\n").into_bytes(),
                    None => {
                        rcpt.push(address);
                        b"250 2.1.5 ok\r\n".to_vec()
                    }
                }
            } else if upper.starts_with("DATA") {
                answer(s.get_mut(), delay, b"354 go ahead\r\n").await?;
                let mut data = Vec::new();
                loop {
                    let mut l = Vec::new();
                    if s.read_until(b'\n', &mut l).await? == 0 {
                        return Ok(());
                    }
                    if l == b".\r\n" {
                        break;
                    }
                    let l = if l.starts_with(b"..") {
                        &l[1..]
                    } else {
                        &l[..]
                    };
                    data.extend_from_slice(l);
                }
                let message = Received {
                    from: from.clone(),
                    rcpt: std::mem::take(&mut rcpt),
                    data,
                    tls,
                    helo: helo.clone(),
                    auth: auth.clone(),
                    at: std::time::Instant::now(),
                };
                state.dotted.lock().expect("lock").push(message.clone());
                if !options.dot_delay.is_zero() {
                    tokio::time::sleep(options.dot_delay).await;
                }
                match state.verdict() {
                    // Dropping the stream closes the connection.
                    Verdict::Drop => return Ok(()),
                    Verdict::Reply(reply) => {
                        // Accepted before the reply goes out, as a real server commits the
                        // message before it says 250: a client gone by now does not undo it.
                        if reply.starts_with('2') {
                            state.received.lock().expect("lock").push(message);
                        }
                        format!("{reply}\r\n").into_bytes()
                    }
                }
            } else if upper.starts_with("QUIT") {
                answer(s.get_mut(), delay, b"221 2.0.0 bye\r\n").await?;
                return Ok(());
            } else if upper.starts_with("AUTH") {
                auth = Some(authenticate(&mut s, &line).await?);
                b"235 2.7.0 ok\r\n".to_vec()
            } else {
                b"250 2.0.0 ok\r\n".to_vec()
            };
            answer(s.get_mut(), delay, &reply).await?;
        }
    })
}

/// Reads the credentials of the AUTH command `line` (PLAIN with or without an initial
/// response, or LOGIN), asking for what is missing: (user name, password).
async fn authenticate<S: AsyncRead + AsyncWrite + Unpin>(
    s: &mut BufReader<S>,
    line: &str,
) -> std::io::Result<(String, String)> {
    async fn ask<S: AsyncRead + AsyncWrite + Unpin>(
        s: &mut BufReader<S>,
        challenge: &str,
    ) -> std::io::Result<Vec<u8>> {
        s.get_mut()
            .write_all(format!("334 {challenge}\r\n").as_bytes())
            .await?;
        let mut answer = String::new();
        s.read_line(&mut answer).await?;
        Ok(decode_base64(answer.trim()))
    }
    let words: Vec<&str> = line.split_whitespace().collect();
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    if words
        .get(1)
        .is_some_and(|m| m.eq_ignore_ascii_case("LOGIN"))
    {
        let user = match words.get(2) {
            Some(initial) => decode_base64(initial),
            None => ask(s, "VXNlcm5hbWU6").await?,
        };
        let password = ask(s, "UGFzc3dvcmQ6").await?;
        return Ok((text(&user), text(&password)));
    }
    let plain = match words.get(2) {
        Some(initial) => decode_base64(initial),
        None => ask(s, "").await?,
    };
    let mut parts = plain.split(|&b| b == 0).skip(1);
    let user = parts.next().unwrap_or_default();
    let password = parts.next().unwrap_or_default();
    Ok((text(user), text(password)))
}

/// Decodes standard base64, skipping anything outside the alphabet.
#[must_use]
pub fn decode_base64(text: &str) -> Vec<u8> {
    let value = |c: u8| match c {
        b'A'..=b'Z' => Some(c - b'A'),
        b'a'..=b'z' => Some(c - b'a' + 26),
        b'0'..=b'9' => Some(c - b'0' + 52),
        b'+' => Some(62),
        b'/' => Some(63),
        _ => None,
    };
    let (mut out, mut acc, mut bits) = (Vec::new(), 0u32, 0);
    for v in text.bytes().filter_map(value) {
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push(u8::try_from((acc >> bits) & 0xff).expect("one byte"));
        }
    }
    out
}
