//! LOGIN and AUTHENTICATE (RFC 3501 §6.2.2, §6.2.3; SASL PLAIN, and LOGIN for Outlook).

#[allow(clippy::wildcard_imports)]
use super::*;

impl Session<'_> {
    pub(super) async fn login(
        &mut self,
        tag: Tag<'static>,
        login: &str,
        password: &str,
    ) -> Status<'static> {
        let config = &self.ctx.config.imap;
        if !self.tls {
            return no(
                tag,
                Some(code("PRIVACYREQUIRED")),
                "use STARTTLS or port 993 first (LOGINDISABLED)",
            );
        }
        let keep = self.ctx.config.web.login_history;
        let ctx = self.ctx;
        match auth::check(
            &ctx.store,
            &ctx.hashes,
            &auth::Policy::imap(config),
            login,
            password,
            &self.peer,
            keep,
        )
        .await
        {
            Ok(auth::Login::Busy) => {
                tracing::warn!(ip = %self.peer, "imap: login refused, password checks busy");
                no(
                    tag,
                    Some(code("UNAVAILABLE")),
                    "too many logins at once, try again shortly",
                )
            }
            Ok(auth::Login::Banned) => {
                tracing::warn!(ip = %self.peer, "imap: login refused, address banned");
                no(
                    tag,
                    Some(code("UNAVAILABLE")),
                    "too many failed logins from your address, try later",
                )
            }
            Ok(auth::Login::Accepted { user, device }) => {
                let prepared = match ctx
                    .store
                    .ensure_mailboxes(user.id, store::now_millis())
                    .await
                {
                    Ok(()) => ctx.store.password_hash(&user.login).await,
                    Err(err) => Err(err),
                };
                let password = match prepared {
                    Ok(hash) => store::token::hash(&hash),
                    Err(err) => {
                        tracing::error!(error = %err, "imap: cannot prepare the mailboxes");
                        return no(
                            tag,
                            Some(code("UNAVAILABLE")),
                            "mailbox unavailable, try later",
                        );
                    }
                };
                tracing::info!(user = %user.login, ip = %self.peer, "imap: logged in");
                self.user = Some(user);
                self.credential = Some(Credential {
                    device,
                    password,
                    checked: tokio::time::Instant::now(),
                });
                let caps = Vec1::try_from(self.capabilities()).expect("IMAP4rev1 is always there");
                ok(tag, Some(Code::Capability(caps)), "logged in")
            }
            Ok(auth::Login::Refused { delay }) => {
                tracing::warn!(login = %login, ip = %self.peer, delay_ms = delay.as_millis() as u64, "imap: login failed");
                tokio::time::sleep(delay).await;
                no(
                    tag,
                    Some(code("AUTHENTICATIONFAILED")),
                    "wrong login or app password",
                )
            }
            Err(err) => {
                tracing::error!(error = %err, "imap: cannot check a login");
                no(
                    tag,
                    Some(code("UNAVAILABLE")),
                    "login unavailable, try later",
                )
            }
        }
    }

    /// Sends a SASL challenge and waits for the client's answer.
    pub(super) fn challenge(&mut self, tag: Tag<'static>, next: Sasl, prompt: &'static [u8]) {
        self.pending_auth = Some((tag, next));
        let _ = self
            .server
            .authenticate_continue(CommandContinuationRequest::base64(prompt));
    }

    pub(super) async fn authenticate(&mut self, tag: Tag<'static>, data: &[u8]) -> Status<'static> {
        // SASL PLAIN: [authzid] NUL authcid NUL password
        let parts: Vec<&[u8]> = data.split(|&b| b == 0).collect();
        match parts.as_slice() {
            [authz, authc, password] if authz.is_empty() || authz == authc => {
                let login = String::from_utf8_lossy(authc).into_owned();
                let password = String::from_utf8_lossy(password).into_owned();
                self.login(tag, &login, &password).await
            }
            _ => bad(Some(tag), "malformed PLAIN response"),
        }
    }
}
