//! AUTH (RFC 4954) for submission: SASL PLAIN (RFC 4616) and LOGIN (what Outlook and older
//! phones send), only in TLS, checked like an IMAP login ([`crate::credentials`]): app
//! passwords only, the same failure counters, delays and ban.

use super::{Conn, Input, Session, Step, timeout_reply};
use crate::credentials::{self, Login, Policy};
use crate::smtp::reply::Reply;
use crate::submission::sasl::{self, Mechanism, SaslError};
use tokio::io::{AsyncRead, AsyncWrite};

/// Who authenticated in this session.
#[derive(Debug, Clone)]
pub(super) struct Authed {
    /// The user.
    pub(super) user: store::User,
    /// The app password (device) used.
    pub(super) device: i64,
}

/// Base64 of the LOGIN mechanism's prompts, "Username:" and "Password:".
const USERNAME: &str = "VXNlcm5hbWU6";
const PASSWORD: &str = "UGFzc3dvcmQ6";

impl Session<'_> {
    /// Runs one AUTH exchange to its reply.
    pub(super) async fn authenticate<S>(
        &mut self,
        conn: &mut Conn<S>,
        mechanism: u64,
        initial: String,
    ) -> Step
    where
        S: AsyncRead + AsyncWrite + Unpin + Send,
    {
        if !self.tls {
            return Step::Reply(Reply::new(
                538,
                [5, 7, 11],
                "Encryption required for requested authentication mechanism",
            ));
        }
        if self.authed.is_some() {
            return Step::Reply(Reply::bad_sequence("Already authenticated"));
        }
        if self.envelope.is_some() {
            return Step::Reply(Reply::bad_sequence(
                "AUTH not permitted during a mail transaction",
            ));
        }
        let Some(mechanism) = Mechanism::from_flags(mechanism) else {
            return Step::Reply(Reply::new(
                504,
                [5, 5, 4],
                "Unrecognized authentication type; use PLAIN or LOGIN",
            ));
        };
        let credentials = match mechanism {
            Mechanism::Plain => {
                let response = if initial.is_empty() {
                    match self.challenge(conn, "").await {
                        Ok(line) => line,
                        Err(step) => return step,
                    }
                } else {
                    initial
                };
                sasl::decode(&response)
                    .and_then(|bytes| sasl::plain(&bytes))
                    .map(|p| (p.authzid, p.name, p.password))
            }
            Mechanism::Login => {
                let name = if initial.is_empty() {
                    match self.challenge(conn, USERNAME).await {
                        Ok(line) => line,
                        Err(step) => return step,
                    }
                } else {
                    initial
                };
                let name = sasl::decode(&name).and_then(sasl::text);
                // `*` cancels at any prompt (RFC 4954 §4), not only at the last.
                if name == Err(SaslError::Cancelled) {
                    return Step::Reply(Reply::new(501, [5, 7, 0], "Authentication cancelled"));
                }
                let password = match self.challenge(conn, PASSWORD).await {
                    Ok(line) => line,
                    Err(step) => return step,
                };
                name.and_then(|name| {
                    sasl::decode(&password)
                        .and_then(sasl::text)
                        .map(|password| (None, name, password))
                })
            }
        };
        let (authzid, name, password) = match credentials {
            Ok(parts) => parts,
            Err(SaslError::Cancelled) => {
                return Step::Reply(Reply::new(501, [5, 7, 0], "Authentication cancelled"));
            }
            Err(err) => {
                return Step::Reply(Reply::new(
                    501,
                    [5, 5, 2],
                    format!("Invalid authentication response: {err}"),
                ));
            }
        };
        if let Some(authzid) = authzid
            && !self.same_user(&authzid, &name).await
        {
            // RFC 4616 §2: the server fails an authentication whose identity the credentials
            // do not allow (RFC 4954 §6: 535). Refused before any password is looked at.
            return Step::Reply(
                Reply::new(
                    535,
                    [5, 7, 8],
                    "Authentication credentials invalid: you cannot act as somebody else",
                )
                .fault(true),
            );
        }
        Step::Reply(self.login(&name, &password).await)
    }

    /// Whether `authzid` names the same user as `name` (each a login or an address, as the
    /// client may write either).
    async fn same_user(&self, authzid: &str, name: &str) -> bool {
        if authzid.eq_ignore_ascii_case(name) {
            return true;
        }
        let store = &self.ctx.store;
        match (
            store.user_by_name(authzid).await,
            store.user_by_name(name).await,
        ) {
            (Ok(a), Ok(b)) => a.id == b.id,
            _ => false,
        }
    }

    /// Checks `name` and `password` and remembers who logged in.
    async fn login(&mut self, name: &str, password: &str) -> Reply {
        let Some(submitter) = self.submitter() else {
            return Reply::new(502, [5, 5, 1], "Command not implemented");
        };
        let config = &self.ctx.config;
        let ip = self.peer.ip().to_string();
        let checked = credentials::check(
            &self.ctx.store,
            &submitter.hashes,
            &Policy::submission(&config.imap),
            name,
            password,
            &ip,
            config.web.login_history,
        )
        .await;
        match checked {
            Ok(Login::Accepted {
                user,
                device: Some(device),
            }) => {
                tracing::info!(user = %user.login, device, "submission: authenticated");
                self.authed = Some(Authed { user, device });
                Reply::new(235, [2, 7, 0], "Authentication successful")
            }
            Ok(Login::Refused { delay }) => {
                tracing::info!(%ip, "submission: authentication failed");
                tokio::time::sleep(delay).await;
                Reply::new(535, [5, 7, 8], "Authentication credentials invalid").fault(true)
            }
            Ok(Login::Banned) => {
                tracing::warn!(%ip, "submission: login refused, address banned");
                Reply::new(
                    421,
                    [4, 7, 0],
                    "Too many failed logins from your address, try again later",
                )
                .and_close()
            }
            Ok(Login::Busy | Login::Accepted { device: None, .. }) => {
                Reply::new(454, [4, 7, 0], "Temporary authentication failure")
            }
            Err(err) => {
                tracing::error!(error = %err, "submission: login check failed");
                Reply::new(454, [4, 7, 0], "Temporary authentication failure")
            }
        }
    }

    /// Sends a `334` challenge and reads the client's one-line response (bounded like a
    /// command line). `Err` carries what ends the exchange: a timeout, the connection gone.
    async fn challenge<S>(&mut self, conn: &mut Conn<S>, text: &'static str) -> Result<String, Step>
    where
        S: AsyncRead + AsyncWrite + Unpin + Send,
    {
        conn.reply(&Reply::plain(334, text));
        let max = self.ctx.config.smtp.max_command_line;
        loop {
            if let Some(lf) = conn.input.iter().take(max).position(|&b| b == b'\n') {
                let line = conn.input.split_to(lf + 1);
                let line = line.strip_suffix(b"\r\n").unwrap_or(&line[..lf]);
                return String::from_utf8(line.to_vec()).map_err(|_| {
                    Step::Reply(Reply::new(
                        501,
                        [5, 5, 2],
                        "Invalid authentication response",
                    ))
                });
            }
            if conn.input.len() >= max {
                conn.input.clear();
                return Err(Step::Reply(
                    Reply::new(500, [5, 5, 6], "Authentication exchange line is too long")
                        .and_close(),
                ));
            }
            let timeout = self.read_timeout(self.ctx.config.smtp.command_timeout);
            match conn.fill(timeout, &self.ctx.shutdown.stop).await {
                Input::More => {}
                Input::TimedOut => return Err(Step::Reply(timeout_reply())),
                Input::Stopped => return Err(Step::Reply(Reply::shutting_down())),
                Input::Eof | Input::Failed(_) => return Err(Step::Gone),
            }
        }
    }
}
