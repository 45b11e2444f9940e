//! Exemption state changes beyond the store call, shared by the CLI (`ratspost exemption …`)
//! and the web UI (through [`webui::Actions`], see `web.rs`), so a command and a click do the
//! same thing:
//!
//! - **request**: a fresh 8-digit code and a one-time confirmation link token, both stored
//!   only hashed; the confirmation mail is composed, classified *before* anything is stored
//!   (a flagged mail means nothing is requested), DKIM-signed and queued in the request's
//!   transaction.
//! - **confirm, approve, deny, revoke**: the store's transition (four-eyes rules, attempt
//!   limits, audit), then the mail to the people concerned ([`compose::exemption_event`]):
//!   the approvers when a request is confirmed and waits for them, the user when it is
//!   approved, denied or revoked by someone else.
//!
//! Approvers hear of a request only once its address is confirmed: before that the request
//! may be a typo or abandoned (most unconfirmed requests simply expire), and the approval
//! page shows the confirmation state anyway; a mail then asks for a decision that can lead
//! somewhere. Mails to people go to their first work address, through the outbound queue
//! like every mail ratspost writes, classified before queueing (a flagged one is withheld
//! and audited as `notice.withheld`) and signed. A failing notification never undoes the
//! transition: it is logged, the state change stands.

use std::sync::Arc;

use rand::Rng as _;
use sha2::{Digest as _, Sha256};
use store::{Confirmation, Exemption, ExemptionRequest, ExemptionState, QueuedMail, Role, Store};
use webui::ActionError;
use webui::datetime::Language;

use crate::compose::{self, Event};
use crate::config::{Config, Notify};
use crate::dkim::Signer;

/// Hash under which a confirmation code is stored and compared.
#[must_use]
pub fn code_hash(code: &str) -> String {
    hex::encode(Sha256::digest(
        format!("ratspost-exemption-code:{}", code.trim()).as_bytes(),
    ))
}

fn new_code() -> String {
    format!("{:08}", rand::rng().random_range(0..100_000_000u32))
}

/// The path of the confirmation page for link `token` (the web UI routes it).
#[must_use]
pub fn confirm_path(token: &str) -> String {
    format!("/forwarding/confirm/{token}")
}

/// What the exemption actions need: the configuration, the store, the classifier rules (for
/// the check before queueing) and the DKIM signer.
#[derive(Clone)]
pub struct Exemptions {
    /// The configuration.
    pub config: Arc<Config>,
    /// The store.
    pub store: Store,
    /// The classifier rules every outgoing mail is checked with.
    pub rules: Arc<classifier::Rules>,
    /// Signs every outgoing mail.
    pub dkim: Signer,
    /// Woken after a mail is queued (the daemon's delivery worker); `None` in the CLI, whose
    /// mails the daemon picks up at its next scan.
    pub queued: Option<Arc<tokio::sync::Notify>>,
}

impl Exemptions {
    /// For the CLI: loads the rules and the signer as the daemon does.
    ///
    /// # Errors
    /// When the rules or the DKIM key cannot be loaded.
    pub fn load(config: &Config, store: &Store) -> anyhow::Result<Self> {
        Ok(Self {
            config: Arc::new(config.clone()),
            store: store.clone(),
            rules: Arc::new(crate::server::load_rules(config)?),
            dkim: Signer::load(config)?,
            queued: None,
        })
    }

    /// Where links in mails lead (the web UI's origin).
    fn origin(&self) -> String {
        crate::web::site(&self.config).web_origin
    }

    /// Requests an exemption: the code and the link token are made here, the confirmation
    /// mail is classified first (with exemption number 0: the real number is ratspost's
    /// own), then the store records the request and queues the signed mail atomically.
    ///
    /// # Errors
    /// [`ActionError::Withheld`] when the classifier flags the mail (audited; nothing
    /// requested); the store's refusal otherwise.
    pub async fn request(
        &self,
        request: &ExemptionRequest,
        now: i64,
    ) -> Result<Exemption, ActionError> {
        let policy = &self.config.exemptions.policy;
        let code = new_code();
        let token = store::token::new();
        let link = format!("{}{}", self.origin(), confirm_path(&token));
        let target = request.target.trim().to_lowercase();
        let expires = self.config.dates().millis(now + policy.code_ttl);
        let compose = |id: i64| {
            compose::confirmation(
                &self.config.notices,
                id,
                &request.login,
                &target,
                &code,
                request.days,
                &expires,
                &link,
            )
        };
        if let Some(categories) = crate::outgoing::flagged(&compose(0).body, &self.rules) {
            crate::outgoing::withheld(
                &self.store,
                "confirmation",
                vec![format!(
                    "user:{}",
                    request.login.trim().to_ascii_lowercase()
                )],
                &categories,
            )
            .await;
            return Err(ActionError::Withheld);
        }
        let e = self
            .store
            .request_exemption_with_link(
                request,
                policy,
                &code_hash(&code),
                Some(&store::token::hash(&token)),
                |id| {
                    let mut mail = compose(id);
                    mail.body = self.dkim.sign(mail.body);
                    mail
                },
                now,
            )
            .await?;
        self.wake();
        Ok(e)
    }

    /// Checks the code of exemption `id`; when it is accepted and the request now waits for
    /// approval, the approvers are told.
    ///
    /// # Errors
    /// The store's refusal (`NotFound`, `Invalid` when not waiting for confirmation).
    pub async fn confirm(
        &self,
        id: i64,
        code: &str,
        now: i64,
    ) -> Result<Confirmation, ActionError> {
        let policy = &self.config.exemptions.policy;
        let outcome = self
            .store
            .confirm_exemption(id, &code_hash(code), policy, now)
            .await?;
        if let Confirmation::Accepted(e) = &outcome
            && e.state == ExemptionState::Confirmed
        {
            self.tell_approvers(e, now).await;
        }
        Ok(outcome)
    }

    /// Approves exemption `id` as `by`, then tells the user where it stands.
    ///
    /// # Errors
    /// The store's refusal (four eyes, not pending, …).
    pub async fn approve(&self, id: i64, by: &str, now: i64) -> Result<Exemption, ActionError> {
        let policy = &self.config.exemptions.policy;
        let e = self.store.approve_exemption(id, by, policy, now).await?;
        let standing =
            webui::standing::standing(&e, policy, now, self.config.dates(), self.mail_language());
        self.tell_user(
            &e,
            &Event::Approved {
                by: by.trim().to_ascii_lowercase(),
                standing,
            },
            now,
        )
        .await;
        Ok(e)
    }

    /// Denies exemption `id` as `by` for `reason`, then tells the user (with the reason).
    ///
    /// # Errors
    /// The store's refusal.
    pub async fn deny(
        &self,
        id: i64,
        by: &str,
        reason: &str,
        now: i64,
    ) -> Result<Exemption, ActionError> {
        let e = self.store.deny_exemption(id, by, reason, now).await?;
        let event = Event::Denied {
            by: by.trim().to_ascii_lowercase(),
            reason: reason.to_owned(),
        };
        self.tell_user(&e, &event, now).await;
        Ok(e)
    }

    /// Revokes exemption `id` as `by`; the user is told unless they revoked it themself.
    ///
    /// # Errors
    /// The store's refusal.
    pub async fn revoke(&self, id: i64, by: &str, now: i64) -> Result<Exemption, ActionError> {
        let e = self.store.revoke_exemption(id, by, now).await?;
        let by = by.trim().to_ascii_lowercase();
        if by != e.login {
            self.tell_user(&e, &Event::Revoked { by }, now).await;
        }
        Ok(e)
    }

    /// The language of mails (`notices.language`).
    fn mail_language(&self) -> Language {
        self.config.dates().language
    }

    /// Tells the approvers (`exemptions.notify`) that `e` waits for them.
    async fn tell_approvers(&self, e: &Exemption, now: i64) {
        let to: Vec<String> = match &self.config.exemptions.notify {
            Notify::Addresses(list) => list.clone(),
            Notify::Admins => match self.store.list_users().await {
                Ok(users) => {
                    let dpo = self.config.exemptions.policy.require_dpo;
                    users
                        .into_iter()
                        // Four eyes: neither the user nor the requester can approve it.
                        .filter(|u| u.login != e.login && u.login != e.requested_by)
                        .filter(|u| u.role == Role::Admin || (dpo && u.role == Role::Dpo))
                        .filter_map(|u| u.addresses.first().cloned())
                        .collect()
                }
                Err(err) => {
                    tracing::error!(id = e.id, error = %err, "cannot list the approvers to tell");
                    return;
                }
            },
        };
        if to.is_empty() {
            tracing::warn!(
                id = e.id,
                "no approver with an address to tell of a waiting request"
            );
        }
        let event = Event::Waiting {
            approvals: format!("{}/approvals", self.origin()),
        };
        for address in to {
            let mail =
                compose::exemption_event(&self.config.notices, &address, e.id, &e.login, &event);
            self.send(e, mail, now).await;
        }
    }

    /// Tells the user of `e` what happened, at their first work address.
    async fn tell_user(&self, e: &Exemption, event: &Event, now: i64) {
        let address = match self.store.user_by_login(&e.login).await {
            Ok(user) => user.addresses.first().cloned(),
            Err(err) => {
                tracing::error!(id = e.id, error = %err, "cannot find the user to tell");
                return;
            }
        };
        let Some(address) = address else {
            tracing::warn!(id = e.id, user = %e.login, "the user has no address to tell");
            return;
        };
        let mail = compose::exemption_event(&self.config.notices, &address, e.id, &e.login, event);
        self.send(e, mail, now).await;
    }

    /// Classifies, signs and queues `mail` about `e` (withheld and audited when flagged).
    async fn send(&self, e: &Exemption, mut mail: QueuedMail, now: i64) {
        if let Some(categories) = crate::outgoing::flagged(&mail.body, &self.rules) {
            crate::outgoing::withheld(
                &self.store,
                &mail.kind,
                vec![format!("exemption:{}", e.id), format!("user:{}", e.login)],
                &categories,
            )
            .await;
            return;
        }
        mail.body = self.dkim.sign(mail.body);
        // Not tied to the exemption: the delivery worker drops jobs of an exemption that is
        // not active, and a denial or revocation must still arrive.
        match self.store.enqueue(&mail, None, None, now).await {
            Ok(job) => {
                tracing::info!(id = e.id, job, kind = %mail.kind, "exemption mail queued");
                self.wake();
            }
            Err(err) => tracing::error!(id = e.id, error = %err, "cannot queue an exemption mail"),
        }
    }

    fn wake(&self) {
        if let Some(queued) = &self.queued {
            queued.notify_one();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_eight_digits_and_hashed_stably() {
        let code = new_code();
        assert_eq!(code.len(), 8);
        assert!(code.bytes().all(|b| b.is_ascii_digit()));
        assert_eq!(code_hash("12345678"), code_hash(" 12345678\n"));
        assert_ne!(code_hash("12345678"), code_hash("12345679"));
    }

    #[test]
    fn the_confirmation_link_leads_to_the_page_that_takes_the_code() {
        assert_eq!(confirm_path("ab12"), "/forwarding/confirm/ab12");
    }
}
