//! The web UI as the server runs it: its settings from the configuration, and
//! [`WebActions`], the state changes that need more than the store (composing, classifying,
//! signing and queueing mail), done by the same code as the CLI's.

use std::sync::Arc;

use crate::config::{Config, Language};

/// The web UI's shared state for `config` and `store`.
#[must_use]
pub fn web(config: &Arc<Config>, store: store::Store, actions: WebActions) -> webui::Web {
    webui::Web {
        store,
        session_ttl: config.web.session,
        login_limits: store::LoginLimits {
            failure_delay: config.web.login_failure_delay,
            ..config.imap.login_limits()
        },
        login_history: config.web.login_history,
        time_zone: config.time_zone,
        language: match config.web.language {
            Language::De => webui::i18n::Lang::German,
            Language::En => webui::i18n::Lang::English,
        },
        site: site(config),
        exemption_policy: config.exemptions.policy.clone(),
        actions: Arc::new(actions),
        downloads: config.web.downloads,
    }
}

/// Where clients find this server.
pub(crate) fn site(config: &Config) -> webui::Site {
    let mut domains = vec![config.smtp.hostname.to_ascii_lowercase()];
    for d in &config.smtp.local_domains {
        if !domains.contains(d) {
            domains.push(d.clone());
        }
    }
    // Links in mails lead to the web UI the notices already point at.
    let web_origin = url::Url::parse(&config.notices.link_base)
        .map(|u| u.origin().ascii_serialization())
        .unwrap_or_else(|_| {
            format!(
                "https://{}:{}",
                config.smtp.hostname,
                config.web.listen.port()
            )
        });
    webui::Site {
        host: config.smtp.hostname.clone(),
        imap_port: config.imap.listen.port(),
        imaps_port: config.imap.listen_tls.port(),
        // Only where submission is on (a relay is configured): devices are never told of a
        // port that is closed.
        submissions_port: config
            .submission
            .relay
            .as_ref()
            .map(|_| config.submission.listen_tls.port()),
        submission_port: config
            .submission
            .relay
            .as_ref()
            .map(|_| config.submission.listen.port()),
        domains,
        web_origin,
    }
}

/// What the web UI asks of the server (see [`webui::Actions`]): the same exemption actions
/// as the CLI's ([`crate::exemptions::Exemptions`]).
pub struct WebActions {
    /// The exemption actions.
    pub exemptions: crate::exemptions::Exemptions,
}

impl webui::Actions for WebActions {
    fn request_exemption(
        &self,
        request: store::ExemptionRequest,
    ) -> webui::Acting<'_, store::Exemption> {
        Box::pin(async move { self.exemptions.request(&request, store::now_millis()).await })
    }

    fn confirm_exemption(&self, id: i64, code: String) -> webui::Acting<'_, store::Confirmation> {
        Box::pin(async move {
            self.exemptions
                .confirm(id, &code, store::now_millis())
                .await
        })
    }

    fn approve_exemption(&self, id: i64, by: String) -> webui::Acting<'_, store::Exemption> {
        Box::pin(async move { self.exemptions.approve(id, &by, store::now_millis()).await })
    }

    fn deny_exemption(
        &self,
        id: i64,
        by: String,
        reason: String,
    ) -> webui::Acting<'_, store::Exemption> {
        Box::pin(async move {
            self.exemptions
                .deny(id, &by, &reason, store::now_millis())
                .await
        })
    }

    fn revoke_exemption(&self, id: i64, by: String) -> webui::Acting<'_, store::Exemption> {
        Box::pin(async move { self.exemptions.revoke(id, &by, store::now_millis()).await })
    }

    fn audit_anchors(&self) -> Vec<store::Anchor> {
        crate::checkpoint::installed_anchors(&self.exemptions.config)
    }
}
