//! One SMTP connection: the state machine over a stream.
//!
//! Generic over `AsyncRead + AsyncWrite`, so tests can drive it through `tokio::io::duplex`.
//! STARTTLS upgrades the stream in place: [`serve`] runs the state machine on the plain
//! stream until it asks for TLS, then again on the TLS stream, with the state reset as
//! RFC 3207 §4.2 demands and any bytes pipelined after STARTTLS thrown away (they arrived in
//! plaintext and could have been injected: CVE-2011-0411).
//!
//! Replies are buffered and flushed only before the session waits for more input, which is
//! what PIPELINING (RFC 2920) needs: a batch of commands gets a batch of replies.
//!
//! The same state machine serves intake (from the city's server) and, in [`Role::Submission`],
//! mail submission from staff devices (RFC 6409); `auth.rs` holds AUTH and `submit.rs` what
//! submission checks at MAIL, RCPT and the end of the message.

mod auth;
mod submit;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use smtp_proto::Request;
use store::Store;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::time::Instant;
use tokio_rustls::TlsAcceptor;

use super::codec::{Body, BodyLimits, CommandDecoder, CommandError, DataDecoder};
use super::data::{self, Client, Transfer};
use super::envelope::{self, Envelope};
use super::reply::Reply;
use crate::config::Config;
use crate::shutdown::Shutdown;

/// What every session shares.
#[derive(Clone)]
pub struct Context {
    /// The configuration.
    pub config: Arc<Config>,
    /// Where messages and users are.
    pub store: Store,
    /// For STARTTLS; `None` disables it.
    pub tls: Option<TlsAcceptor>,
    /// Stop and abort signals, task tracking.
    pub shutdown: Shutdown,
    /// Woken after each committed message (the pipeline waits on it).
    pub committed: Arc<tokio::sync::Notify>,
    /// Key of our SRS addresses: bounces to them are accepted for the mailbox owner.
    pub srs_secret: Arc<Vec<u8>>,
    /// Intake or submission.
    pub role: Role,
}

/// What a listener's sessions are for.
#[derive(Clone)]
pub enum Role {
    /// Intake from the city's server (`smtp.listen`): only upstream addresses, no AUTH,
    /// recipients are enrolled users.
    Intake,
    /// Mail submission from staff devices (`submission.listen`, `submission.listen_tls`):
    /// AUTH with an app password after TLS, the user's own sender addresses, any recipient.
    Submission(Arc<crate::submission::Submitter>),
}

/// Serves one connection to its end.
pub async fn serve<S>(ctx: &Context, stream: S, peer: SocketAddr)
where
    S: AsyncRead + AsyncWrite + Unpin + Send,
{
    let mut session = Session::new(ctx, peer);
    let mut conn = Conn::new(stream);
    conn.reply(&greeting(ctx));
    match session.run(&mut conn).await {
        Flow::Close => conn.close().await,
        Flow::StartTls => {
            let Some(acceptor) = &ctx.tls else { return };
            let timeout = session.read_timeout(ctx.config.smtp.command_timeout);
            match tokio::time::timeout(timeout, acceptor.accept(conn.stream)).await {
                Ok(Ok(tls)) => {
                    session.tls_started();
                    let mut conn = Conn::new(tls);
                    // STARTTLS is refused once in TLS, so this run can only end in Close.
                    let _ = session.run(&mut conn).await;
                    conn.close().await;
                }
                Ok(Err(err)) => tracing::debug!(error = %err, "TLS handshake failed"),
                Err(_) => tracing::debug!("TLS handshake timed out"),
            }
        }
    }
}

/// Serves a connection that is TLS from its first byte (RFC 8314 implicit TLS; the
/// handshake is done): STARTTLS is not offered.
pub async fn serve_tls<S>(ctx: &Context, stream: S, peer: SocketAddr)
where
    S: AsyncRead + AsyncWrite + Unpin + Send,
{
    let mut session = Session::new(ctx, peer);
    session.tls = true;
    let mut conn = Conn::new(stream);
    conn.reply(&greeting(ctx));
    // STARTTLS is refused in TLS, so the run can only end in Close.
    let _ = session.run(&mut conn).await;
    conn.close().await;
}

fn greeting(ctx: &Context) -> Reply {
    Reply::plain(220, format!("{} ESMTP ratspost", ctx.config.smtp.hostname))
}

/// Sends `reply` and closes: for connections refused before a session starts.
pub async fn refuse<S>(stream: S, reply: &Reply)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut conn = Conn::new(stream);
    conn.reply(reply);
    let _ = tokio::time::timeout(Duration::from_secs(10), conn.close()).await;
}

/// How a run of the state machine ended.
enum Flow {
    Close,
    StartTls,
}

/// Buffered I/O around the stream.
struct Conn<S> {
    stream: S,
    input: BytesMut,
    output: Vec<u8>,
}

/// What waiting for input produced.
enum Input {
    More,
    Eof,
    TimedOut,
    Stopped,
    Failed(std::io::Error),
}

const READ_CHUNK: usize = 16 * 1024;

impl<S: AsyncRead + AsyncWrite + Unpin> Conn<S> {
    fn new(stream: S) -> Self {
        Self {
            stream,
            input: BytesMut::with_capacity(READ_CHUNK),
            output: Vec::with_capacity(512),
        }
    }

    fn reply(&mut self, reply: &Reply) {
        tracing::trace!(code = reply.code, text = %reply.text, "S:");
        reply.encode(&mut self.output);
    }

    async fn flush(&mut self) -> std::io::Result<()> {
        if !self.output.is_empty() {
            self.stream.write_all(&self.output).await?;
            self.output.clear();
        }
        self.stream.flush().await
    }

    async fn close(&mut self) {
        let _ = self.flush().await;
        let _ = self.stream.shutdown().await;
    }

    /// Flushes pending replies, then waits up to `timeout` for more input. `stop` ends the
    /// wait early (shutdown).
    async fn fill(
        &mut self,
        timeout: Duration,
        stop: &tokio_util::sync::CancellationToken,
    ) -> Input {
        let io = async {
            self.flush().await?;
            self.input.reserve(READ_CHUNK);
            self.stream.read_buf(&mut self.input).await
        };
        tokio::select! {
            biased;
            () = stop.cancelled() => Input::Stopped,
            r = tokio::time::timeout(timeout, io) => match r {
                Err(_) => Input::TimedOut,
                Ok(Ok(0)) => Input::Eof,
                Ok(Ok(_)) => Input::More,
                Ok(Err(e)) => Input::Failed(e),
            },
        }
    }
}

/// The state of one SMTP session.
struct Session<'a> {
    ctx: &'a Context,
    peer: SocketAddr,
    tls: bool,
    helo: Option<String>,
    envelope: Option<Envelope>,
    /// A BDAT transfer in progress.
    bdat: Option<Body>,
    /// Submission: who authenticated, with which device.
    authed: Option<auth::Authed>,
    errors: u32,
    deadline: Instant,
    /// Submission: until a successful AUTH, the session ends at this instant.
    login_by: Option<Instant>,
    decoder: CommandDecoder,
}

impl<'a> Session<'a> {
    fn new(ctx: &'a Context, peer: SocketAddr) -> Self {
        let smtp = &ctx.config.smtp;
        Self {
            ctx,
            peer,
            tls: false,
            helo: None,
            envelope: None,
            bdat: None,
            authed: None,
            errors: 0,
            deadline: Instant::now() + smtp.max_session,
            login_by: match ctx.role {
                Role::Intake => None,
                Role::Submission(_) => Some(Instant::now() + ctx.config.submission.login_timeout),
            },
            decoder: CommandDecoder::new(smtp.max_command_line),
        }
    }

    fn tls_started(&mut self) {
        // RFC 3207 §4.2: everything learnt before TLS is forgotten (AUTH cannot have
        // happened: it needs TLS).
        self.tls = true;
        self.helo = None;
        self.envelope = None;
        self.bdat = None;
        self.authed = None;
        self.decoder = CommandDecoder::new(self.ctx.config.smtp.max_command_line);
    }

    fn limits(&self) -> BodyLimits {
        BodyLimits {
            max_size: self.max_message_size(),
            max_line: self.ctx.config.smtp.max_message_line,
        }
    }

    /// The size limit of this listener's messages (bytes).
    fn max_message_size(&self) -> usize {
        match self.ctx.role {
            Role::Intake => self.ctx.config.smtp.max_message_size,
            Role::Submission(_) => self.ctx.config.submission.max_message_size,
        }
    }

    /// `timeout`, cut short by the session's overall deadline and, before a submission
    /// client has logged in, by its login deadline.
    fn read_timeout(&self, timeout: Duration) -> Duration {
        let now = Instant::now();
        let mut timeout = timeout.min(self.deadline.saturating_duration_since(now));
        if let (Some(by), None) = (self.login_by, &self.authed) {
            timeout = timeout.min(by.saturating_duration_since(now));
        }
        timeout
    }

    fn reset(&mut self) {
        self.envelope = None;
        self.bdat = None;
    }

    async fn run<S>(&mut self, conn: &mut Conn<S>) -> Flow
    where
        S: AsyncRead + AsyncWrite + Unpin + Send,
    {
        let smtp = &self.ctx.config.smtp;
        loop {
            let Some(command) = self.decoder.decode(&mut conn.input) else {
                match conn
                    .fill(
                        self.read_timeout(smtp.command_timeout),
                        &self.ctx.shutdown.stop,
                    )
                    .await
                {
                    Input::More => continue,
                    Input::Stopped => {
                        conn.reply(&Reply::shutting_down());
                        return Flow::Close;
                    }
                    Input::TimedOut => {
                        conn.reply(&timeout_reply());
                        return Flow::Close;
                    }
                    Input::Eof => return Flow::Close,
                    Input::Failed(err) => {
                        tracing::debug!(error = %err, "read failed");
                        return Flow::Close;
                    }
                }
            };
            let step = match command {
                Ok(request) => {
                    // Commands only: message content never reaches the log, and AUTH's
                    // response (a password) is left out.
                    if let Request::Auth { mechanism, .. } = &request {
                        tracing::trace!(mechanism, "C: AUTH (response not logged)");
                    } else {
                        tracing::trace!(?request, "C:");
                    }
                    self.execute(request, conn).await
                }
                Err(err) => Step::Reply(command_error(&err)),
            };
            let reply = match step {
                Step::Reply(reply) => reply,
                Step::StartTls => {
                    conn.reply(&Reply::new(220, [2, 0, 0], "Ready to start TLS"));
                    if let Err(err) = conn.flush().await {
                        tracing::debug!(error = %err, "write failed");
                        return Flow::Close;
                    }
                    if !conn.input.is_empty() {
                        tracing::warn!(
                            bytes = conn.input.len(),
                            "discarding plaintext pipelined after STARTTLS"
                        );
                    }
                    return Flow::StartTls;
                }
                Step::Gone => return Flow::Close,
            };
            if reply.client_fault {
                self.errors += 1;
                tracing::debug!(code = reply.code, text = %reply.text, errors = self.errors, "client error");
            }
            let close = reply.disconnect;
            conn.reply(&reply);
            if close {
                return Flow::Close;
            }
            if self.errors >= smtp.max_errors {
                conn.reply(
                    &Reply::new(421, [4, 7, 0], "Too many errors, closing connection").and_close(),
                );
                return Flow::Close;
            }
        }
    }

    async fn execute<S>(&mut self, request: Request<String>, conn: &mut Conn<S>) -> Step
    where
        S: AsyncRead + AsyncWrite + Unpin + Send,
    {
        let smtp = &self.ctx.config.smtp;
        if self.bdat.is_some()
            && !matches!(
                request,
                Request::Bdat { .. } | Request::Rset | Request::Quit | Request::Noop { .. }
            )
        {
            // RFC 3030 §2: between BDAT chunks only BDAT, RSET, QUIT and NOOP are allowed.
            self.reset();
            return Step::Reply(Reply::bad_sequence(
                "BDAT transfer aborted by other command",
            ));
        }
        Step::Reply(match request {
            Request::Ehlo { host } => {
                self.reset();
                self.helo = Some(host);
                self.ehlo_reply()
            }
            Request::Helo { host } => {
                self.reset();
                self.helo = Some(host);
                Reply::plain(250, smtp.hostname.clone())
            }
            Request::Mail { from } => {
                if self.helo.is_none() {
                    Reply::bad_sequence("Send EHLO or HELO first")
                } else if self.envelope.is_some() {
                    Reply::bad_sequence("Nested MAIL command")
                } else if smtp.require_tls && !self.tls {
                    Reply::new(530, [5, 7, 0], "Must issue a STARTTLS command first")
                } else {
                    let checked = match envelope::mail(self.max_message_size(), &from) {
                        Ok(envelope) if matches!(self.ctx.role, Role::Submission(_)) => {
                            self.submission_mail(envelope).await
                        }
                        other => other,
                    };
                    match checked {
                        Ok(envelope) => {
                            self.envelope = Some(envelope);
                            Reply::new(250, [2, 1, 0], "Ok")
                        }
                        Err(reply) => reply,
                    }
                }
            }
            Request::Rcpt { to } => match (&mut self.envelope, &self.ctx.role) {
                (None, _) => Reply::bad_sequence("Send MAIL first"),
                (Some(envelope), Role::Intake) => {
                    envelope::rcpt(smtp, &self.ctx.store, &self.ctx.srs_secret, envelope, &to).await
                }
                (Some(envelope), Role::Submission(_)) => {
                    envelope::relay_rcpt(self.ctx.config.submission.max_recipients, envelope, &to)
                }
            },
            Request::Data => {
                if self.envelope.as_ref().is_none_or(Envelope::is_empty) {
                    Reply::bad_sequence("No valid recipients")
                } else {
                    // Intermediate replies carry no enhanced status code (RFC 2034 §3).
                    conn.reply(&Reply::plain(354, "End data with <CR><LF>.<CR><LF>"));
                    return self.receive_data(conn).await;
                }
            }
            Request::Bdat {
                chunk_size,
                is_last,
            } => {
                return self.receive_chunk(conn, chunk_size, is_last).await;
            }
            Request::Rset => {
                self.reset();
                Reply::ok()
            }
            Request::Noop { .. } => Reply::ok(),
            Request::Quit => Reply::new(221, [2, 0, 0], "Bye").and_close(),
            Request::StartTls => {
                if self.tls {
                    Reply::bad_sequence("Already in TLS")
                } else if self.ctx.tls.is_none() {
                    Reply::new(502, [5, 5, 1], "STARTTLS not available")
                } else {
                    return Step::StartTls;
                }
            }
            Request::Vrfy { .. } => Reply::new(
                252,
                [2, 5, 0],
                "Cannot VRFY user, but will accept message and attempt delivery",
            ),
            Request::Expn { .. } => Reply::new(502, [5, 5, 1], "EXPN not available"),
            Request::Help { .. } => Reply::new(214, [2, 0, 0], "See RFC 5321"),
            Request::Auth {
                mechanism,
                initial_response,
            } if matches!(self.ctx.role, Role::Submission(_)) => {
                return self.authenticate(conn, mechanism, initial_response).await;
            }
            Request::Lhlo { .. }
            | Request::Auth { .. }
            | Request::Etrn { .. }
            | Request::Atrn { .. }
            | Request::Burl { .. } => Reply::new(502, [5, 5, 1], "Command not implemented"),
        })
    }

    fn ehlo_reply(&self) -> Reply {
        let smtp = &self.ctx.config.smtp;
        let mut lines = vec![
            format!("{} greets {}", smtp.hostname, self.peer.ip()),
            "PIPELINING".to_owned(),
            format!("SIZE {}", self.max_message_size()),
            "8BITMIME".to_owned(),
            "SMTPUTF8".to_owned(),
            "ENHANCEDSTATUSCODES".to_owned(),
            "CHUNKING".to_owned(),
        ];
        if !self.tls && self.ctx.tls.is_some() {
            lines.push("STARTTLS".to_owned());
        }
        // RFC 4954 §4 leaves it to the server when to offer AUTH: only in TLS, so no client
        // ever sends a password in plaintext (RFC 8314 §3).
        if self.tls && matches!(self.ctx.role, Role::Submission(_)) {
            lines.push("AUTH PLAIN LOGIN".to_owned());
        }
        Reply::plain(250, lines.join("\n"))
    }

    fn client(&self) -> Client {
        Client {
            helo: self.helo.clone().unwrap_or_default(),
            ip: self.peer.ip().to_string(),
            tls: self.tls,
        }
    }

    /// Reads a DATA body to its terminator, then commits it.
    async fn receive_data<S>(&mut self, conn: &mut Conn<S>) -> Step
    where
        S: AsyncRead + AsyncWrite + Unpin + Send,
    {
        let mut decoder = DataDecoder::new(self.limits());
        let body = loop {
            if let Some(body) = decoder.decode(&mut conn.input) {
                break body;
            }
            if let Some(step) = self.wait_for_body(conn, decoder.total()).await {
                return step;
            }
        };
        self.commit(body, Transfer::Data).await
    }

    /// Ends the transaction: checks and commits `body` with the current envelope.
    async fn commit(&mut self, body: Body, transfer: Transfer) -> Step {
        let envelope = self
            .envelope
            .take()
            .expect("a body is only received within a transaction");
        let client = self.client();
        if let Role::Submission(submitter) = &self.ctx.role {
            let submitter = Arc::clone(submitter);
            return Step::Reply(
                self.submit(&submitter, &client, envelope, body, transfer)
                    .await,
            );
        }
        let reply = data::accept(
            &self.ctx.config.smtp,
            &self.ctx.store,
            &client,
            envelope,
            body,
            transfer,
        )
        .await;
        if reply.code == 250 {
            // The pipeline classifies it now, not at its next poll.
            self.ctx.committed.notify_one();
        }
        Step::Reply(reply)
    }

    /// Reads one BDAT chunk (RFC 3030); commits after the LAST one.
    async fn receive_chunk<S>(&mut self, conn: &mut Conn<S>, size: usize, last: bool) -> Step
    where
        S: AsyncRead + AsyncWrite + Unpin + Send,
    {
        let ready = self.envelope.as_ref().is_some_and(|e| !e.is_empty());
        let mut body = match self.bdat.take() {
            Some(body) => body,
            None => Body::new(self.limits()),
        };
        let mut left = size;
        while left > 0 {
            if conn.input.is_empty() {
                if let Some(step) = self.wait_for_body(conn, body.total()).await {
                    return step;
                }
                continue;
            }
            let take = left.min(conn.input.len());
            let chunk = conn.input.split_to(take);
            // Without a transaction the chunk must still be read (it is not a command), but
            // is thrown away.
            if ready {
                body.push(&chunk);
            }
            left -= take;
        }
        if !ready {
            self.reset();
            return Step::Reply(Reply::bad_sequence("No valid recipients"));
        }
        if !last {
            let received = body.total();
            self.bdat = Some(body);
            return Step::Reply(Reply::new(
                250,
                [2, 0, 0],
                format!("{received} octets received"),
            ));
        }
        self.commit(body, Transfer::Bdat).await
    }

    /// Waits for more message data. Shutdown does not interrupt a transfer (the message can
    /// still be committed within the grace period); only abort, timeout or EOF do.
    async fn wait_for_body<S>(&mut self, conn: &mut Conn<S>, received: usize) -> Option<Step>
    where
        S: AsyncRead + AsyncWrite + Unpin + Send,
    {
        let timeout = self.read_timeout(self.ctx.config.smtp.data_timeout);
        match conn.fill(timeout, &self.ctx.shutdown.abort).await {
            Input::More => None,
            Input::TimedOut => Some(Step::Reply(timeout_reply())),
            Input::Stopped => Some(Step::Gone),
            Input::Eof => {
                tracing::info!(
                    received,
                    "client disconnected during message transfer; nothing stored"
                );
                Some(Step::Gone)
            }
            Input::Failed(err) => {
                tracing::info!(received, error = %err, "read failed during message transfer; nothing stored");
                Some(Step::Gone)
            }
        }
    }
}

/// What executing a command asks the loop to do.
enum Step {
    Reply(Reply),
    StartTls,
    /// The connection is gone or must be dropped without a reply.
    Gone,
}

fn timeout_reply() -> Reply {
    Reply::new(421, [4, 4, 2], "Timeout, closing connection").and_close()
}

fn command_error(err: &CommandError) -> Reply {
    match err {
        CommandError::TooLong => Reply::new(500, [5, 5, 2], "Line too long"),
        CommandError::BareLf => Reply::new(500, [5, 5, 2], "Lines must end with CRLF"),
        CommandError::Nul => Reply::new(500, [5, 5, 2], "NUL byte in command"),
        CommandError::Unknown => Reply::new(500, [5, 5, 2], "Command unrecognized"),
        CommandError::Syntax(usage) => Reply::new(501, [5, 5, 4], format!("Syntax: {usage}")),
        CommandError::BadSender => Reply::new(553, [5, 1, 7], "Bad sender address syntax"),
        CommandError::BadRecipient => Reply::new(501, [5, 1, 3], "Bad recipient address syntax"),
        CommandError::BadParameter(p) => {
            Reply::new(501, [5, 5, 4], format!("Invalid {p} parameter"))
        }
        CommandError::UnsupportedParameter(_) => {
            Reply::new(555, [5, 5, 4], "Unsupported parameter")
        }
    }
}
