//! What submission checks beyond intake: at MAIL, that the session is authenticated, its
//! device not revoked, the sender the user's own and the hourly limit not reached; at the
//! end of the message, the originator fields, then classification, and the commit of job
//! and audit entry before `250`.

use std::sync::Arc;

use super::Session;
use super::auth::Authed;
use crate::config::SensitiveSubmission;
use crate::smtp::codec::Body;
use crate::smtp::data::{Client, Transfer, refusal};
use crate::smtp::envelope::Envelope;
use crate::smtp::reply::Reply;
use crate::submission::{Submitter, identity, trace};

/// Longest a message waits for a classification slot before the client is told to retry.
const CLASSIFY_QUEUE: std::time::Duration = std::time::Duration::from_secs(60);

impl Session<'_> {
    pub(super) fn submitter(&self) -> Option<Arc<Submitter>> {
        match &self.ctx.role {
            super::Role::Submission(s) => Some(Arc::clone(s)),
            super::Role::Intake => None,
        }
    }

    /// The authenticated user, still allowed to send: their device not revoked, the account
    /// not disabled. A revoked device ends the authentication (RFC 4954 §4: 530).
    async fn still_authed(&mut self) -> Result<Authed, Reply> {
        let Some(authed) = self.authed.clone() else {
            return Err(Reply::new(530, [5, 7, 0], "Authentication required"));
        };
        match self
            .ctx
            .store
            .app_password_live(authed.user.id, authed.device)
            .await
        {
            Ok(true) => Ok(authed),
            Ok(false) => {
                tracing::info!(user = %authed.user.login, device = authed.device, "submission: device revoked, authentication ended");
                self.authed = None;
                Err(Reply::new(
                    530,
                    [5, 7, 0],
                    "Authentication required: this device's app password was revoked or the account disabled",
                ))
            }
            Err(err) => {
                tracing::error!(error = %err, "submission: cannot check the device");
                Err(Reply::new(451, [4, 3, 0], "Temporary failure, try again later").fault(false))
            }
        }
    }

    /// MAIL FROM of a submission, after intake's syntax checks.
    pub(super) async fn submission_mail(&mut self, envelope: Envelope) -> Result<Envelope, Reply> {
        let authed = self.still_authed().await?;
        if !identity::is_own(&envelope.from, &authed.user.addresses) {
            return Err(Reply::new(
                553,
                [5, 7, 1],
                format!(
                    "Sender address <{}> is not one of yours ({})",
                    envelope.from, authed.user.login
                ),
            ));
        }
        let limit = self.ctx.config.submission.max_messages_per_hour;
        let since = store::now_millis() - 3_600_000;
        let cap = i64::try_from(limit).unwrap_or(i64::MAX);
        match self
            .ctx
            .store
            .submissions_since(authed.user.id, since, cap)
            .await
        {
            Ok(n) if usize::try_from(n).unwrap_or(usize::MAX) >= limit => {
                tracing::warn!(user = %authed.user.login, limit, "submission: hourly limit reached");
                Err(Reply::new(
                    450,
                    [4, 7, 1],
                    format!("Sending limit of {limit} messages per hour reached, try again later"),
                ))
            }
            Ok(_) => Ok(envelope),
            Err(err) => {
                tracing::error!(error = %err, "submission: cannot count recent messages");
                Err(Reply::new(451, [4, 3, 0], "Temporary failure, try again later").fault(false))
            }
        }
    }

    /// The end of a submitted message: checks, classification, commit, `250`.
    pub(super) async fn submit(
        &mut self,
        submitter: &Submitter,
        client: &Client,
        envelope: Envelope,
        body: Body,
        transfer: Transfer,
    ) -> Reply {
        let config = &self.ctx.config;
        let (raw, defects) = body.finish();
        if let Some(reply) = refusal(
            &config.smtp,
            config.submission.max_message_size,
            &envelope,
            &defects,
            transfer,
        ) {
            return reply;
        }
        let authed = match self.still_authed().await {
            Ok(a) => a,
            Err(reply) => return reply,
        };
        let login = authed.user.login.clone();
        // Header parsing and classification read the whole message: off the async workers,
        // a bounded number at once.
        let Ok(Ok(slot)) = tokio::time::timeout(
            CLASSIFY_QUEUE,
            Arc::clone(&submitter.classifying).acquire_owned(),
        )
        .await
        else {
            return Reply::new(451, [4, 3, 2], "Busy, try again later").fault(false);
        };
        let raw: Arc<[u8]> = raw.into();
        let own = authed.user.addresses.clone();
        let checked = {
            let raw = Arc::clone(&raw);
            tokio::task::spawn_blocking(move || identity::check(&raw, &own)).await
        };
        match checked {
            Ok(Ok(())) => {}
            Ok(Err(refusal)) => {
                drop(slot);
                tracing::info!(user = %login, reason = %refusal, "submission refused");
                return Reply::new(550, [5, 7, 1], refusal.to_string());
            }
            Err(_) => {
                return Reply::new(554, [5, 6, 0], "The message's header cannot be read");
            }
        }
        let verdict = crate::pipeline::classify_bounded(
            Arc::clone(&raw),
            Arc::clone(&submitter.rules),
            submitter.ocr.clone(),
            config.classifier.timeout,
        )
        .await;
        drop(slot);
        let now = store::now_millis();
        let token = hex::encode(rand::random::<[u8; 12]>());
        let hold = verdict.sensitive && config.submission.sensitive == SensitiveSubmission::Hold;
        let submission = store::Submission {
            user_id: authed.user.id,
            login: login.clone(),
            device: authed.device,
            mail_from: envelope.from,
            recipients: envelope.relay_to,
            body: trace::complete(&raw, &config.smtp.hostname, now, &token),
            sensitive: verdict.sensitive,
            categories: verdict.categories.clone(),
            hold,
        };
        let recipients = submission.recipients.len();
        match self.ctx.store.submit(&submission, now).await {
            Ok(job) => {
                tracing::info!(
                    user = %login,
                    device = authed.device,
                    job,
                    size = raw.len(),
                    recipients,
                    tls = client.tls,
                    sensitive = verdict.sensitive,
                    held = hold,
                    "message submitted"
                );
                if hold {
                    self.tell_held(&authed, &submission.mail_from, &submission.body, now)
                        .await;
                } else {
                    submitter.queued.notify_one();
                }
                let text = if hold {
                    format!("Ok: queued as {job}, held for review")
                } else {
                    format!("Ok: queued as {job}")
                };
                Reply::new(250, [2, 0, 0], text)
            }
            Err(err) => {
                tracing::error!(error = %err, user = %login, "submission commit failed");
                Reply::new(451, [4, 3, 0], "Temporary storage failure, try again later")
            }
        }
    }

    /// Puts the note that a message is held into the sender's mailbox (a failure is logged:
    /// the message is held either way, and the reply said so).
    async fn tell_held(&self, authed: &Authed, from: &str, body: &[u8], now: store::Millis) {
        let config = &self.ctx.config;
        let address = crate::submission::sender_address(&authed.user, from);
        let note = crate::compose::submission_held(
            &config.notices,
            &address,
            &config.dates().millis(now),
            crate::smtp::message_id(body).as_deref(),
        );
        if let Err(err) = self
            .ctx
            .store
            .deliver_to_mailbox(authed.user.id, &address, &note, now)
            .await
        {
            tracing::error!(error = %err, user = %authed.user.login, "cannot put the held note into the mailbox");
        }
    }
}
