//! Forward decisions: after a message is classified, each recipient whose exemption is
//! active *now* gets a forward job — the original (with an ARC set, a `Received` line and an
//! SRS envelope) when it is clean, a notice with a link when it is sensitive or policy says
//! `notices_only`. Notices are ratspost's own mail and DKIM-signed ([`crate::dkim`]); the
//! original keeps its own DKIM signature and is ARC-sealed ([`crate::arc`]), never signed
//! with ratspost's key. Decisions, jobs, link tokens and their audit entries are committed
//! together (`Store::complete_processing`).
//!
//! Whether the job may still leave is checked again by the delivery worker when it hands
//! the job over (invariant 2).

use std::sync::Arc;

use classifier::Rules;
use store::{ForwardDecision, MailboxNotice, QueuedMail, Store};

use crate::compose::{self, NoticeFacts, Subject};
use crate::config::Config;
use crate::{outgoing, shown};

/// Makes the forward decisions for classified messages.
#[derive(Clone)]
pub struct Forwarder {
    /// The store.
    pub store: Store,
    /// The configuration.
    pub config: Arc<Config>,
    /// The classifier rules: notices are classified before they are queued.
    pub rules: Arc<Rules>,
    /// Key of the SRS signatures.
    pub srs_secret: Arc<Vec<u8>>,
    /// Signs the notices (mail ratspost writes itself).
    pub dkim: crate::dkim::Signer,
    /// Seals the intact forwards (mail someone else wrote).
    pub arc: crate::arc::Sealer,
    /// Wakes the delivery worker when jobs were queued.
    pub queued: Arc<tokio::sync::Notify>,
}

impl Forwarder {
    /// Decides, queues and marks message `id` processed.
    ///
    /// # Errors
    /// When the store fails; the message stays `classified` and is taken up again.
    pub async fn process(&self, id: i64) -> anyhow::Result<()> {
        let raw = self.store.message_raw(id).await?;
        let verdict = self
            .store
            .verdict(id)
            .await?
            .ok_or_else(|| anyhow::anyhow!("message {id} has no verdict"))?;
        self.decide(id, &raw, &verdict).await
    }

    /// Like [`Self::process`], with the message's bytes and stored verdict already in hand.
    ///
    /// # Errors
    /// When the store fails; the message stays `classified` and is taken up again.
    pub async fn decide(
        &self,
        id: i64,
        raw: &[u8],
        verdict: &store::VerdictRecord,
    ) -> anyhow::Result<()> {
        let now = store::now_millis();
        let envelope = self.store.message_envelope(id).await?;
        let as_notice = verdict.sensitive || self.config.exemptions.notices_only;
        // What every notice about this message says (without its link). Finding references
        // reads the whole message and every value is classified: on the blocking pool.
        let facts = if as_notice {
            let (this, raw, verdict) = (self.clone(), raw.to_vec(), verdict.clone());
            let received = envelope.received_at;
            Some(tokio::task::spawn_blocking(move || this.facts(&raw, &verdict, received)).await?)
        } else {
            None
        };
        // `reduce`: when the notice would carry something, make the one that repeats nothing
        // of the message instead (for the mailbox, which must show something).
        let notice = |to: &str, reduce: bool| {
            let facts = facts
                .as_ref()
                .expect("facts exist whenever a notice is made");
            let token = store::token::new();
            let expires = now
                + i64::try_from(self.config.notices.link_validity.as_millis()).unwrap_or(i64::MAX);
            let facts = NoticeFacts {
                link: format!("{}/{token}", self.config.notices.link_base),
                expires: self.config.dates().millis(expires),
                ..facts.clone()
            };
            let mut body = compose::notice(&self.config.notices, to, &facts);
            // The notice is classified itself before it is used. Its category names are
            // ratspost's own words, and some of them are markings ("Nur für den
            // Dienstgebrauch"): the check reads the notice without them.
            let check = NoticeFacts {
                categories: Vec::new(),
                ..facts.clone()
            };
            let flagged = outgoing::flagged(
                &compose::notice(&self.config.notices, to, &check),
                &self.rules,
            );
            if flagged.is_some() && reduce {
                let bare = NoticeFacts {
                    sender: match self.config.notices.language {
                        crate::config::Language::De => "(Absender nicht angezeigt)",
                        crate::config::Language::En => "(sender not shown)",
                    }
                    .to_owned(),
                    subject: Subject::Omitted,
                    documents: Vec::new(),
                    ..facts
                };
                body = compose::notice(&self.config.notices, to, &bare);
            }
            (body, (store::token::hash(&token), expires), flagged)
        };
        let mut decisions = Vec::new();
        let mut mailbox = Vec::new();
        let mut seen = Vec::new();
        let mut withheld = Vec::new();
        // The ARC set of this message's intact forwards: checked and sealed once, for the
        // first of them (`Some(None)`: none could be made).
        let mut arc_set: Option<Option<Vec<u8>>> = None;
        for (address, user_id, login) in self.store.message_recipients(id).await? {
            if seen.contains(&user_id) {
                continue;
            }
            seen.push(user_id);
            if verdict.sensitive {
                // The mailbox (IMAP) shows the notice, never the original — and when even the
                // notice would carry something, the one that repeats nothing of the message.
                let (body, token, flagged) = notice(&address, true);
                if let Some(categories) = flagged {
                    tracing::warn!(id, user_id, categories = %categories.join(","), "mailbox notice reduced: it would carry sensitive data");
                }
                mailbox.push(MailboxNotice {
                    user_id,
                    body,
                    token,
                });
            }
            let Some(exemption) = self.store.active_exemption(user_id, now).await? else {
                continue;
            };
            let decision = if as_notice {
                let (body, token, flagged) = notice(&exemption.target, false);
                if let Some(categories) = flagged {
                    // Fail closed: this notice does not leave.
                    withheld.push((exemption.id, login, categories));
                    continue;
                }
                ForwardDecision {
                    user_id,
                    login,
                    exemption_id: exemption.id,
                    kind: "notice".to_owned(),
                    mail: QueuedMail {
                        kind: "notice".to_owned(),
                        mail_from: self.config.notices.from.clone(),
                        rcpt_to: exemption.target.clone(),
                        body: self.dkim.sign(body),
                    },
                    token: Some(token),
                }
            } else {
                if arc_set.is_none() {
                    let peer = envelope.peer_ip.parse().ok();
                    arc_set = Some(self.arc.seal(raw.to_vec(), peer).await);
                }
                // The ARC set, ratspost's trace line, then the original byte for byte: its own
                // DKIM signature stays valid, and no signature of ours claims its `From:`.
                let mut body = arc_set.clone().flatten().unwrap_or_default();
                body.extend_from_slice(
                    received_line(
                        &self.config.smtp.hostname,
                        id,
                        &envelope,
                        &exemption.target,
                        now,
                    )
                    .as_bytes(),
                );
                body.extend_from_slice(raw);
                ForwardDecision {
                    user_id,
                    login,
                    exemption_id: exemption.id,
                    kind: "forward".to_owned(),
                    mail: QueuedMail {
                        kind: "forward".to_owned(),
                        mail_from: crate::srs::rewrite(
                            &envelope.mail_from,
                            user_id,
                            &self.config.smtp.hostname,
                            &self.srs_secret,
                            now,
                        ),
                        rcpt_to: exemption.target.clone(),
                        body,
                    },
                    token: None,
                }
            };
            decisions.push(decision);
        }
        let categories = if verdict.sensitive {
            verdict.categories.clone()
        } else {
            Vec::new()
        };
        let completed = self
            .store
            .complete_processing(id, &envelope.sha256, &categories, &decisions, &mailbox, now)
            .await?;
        if completed {
            for (exemption, login, categories) in withheld {
                outgoing::withheld(
                    &self.store,
                    "notice",
                    vec![
                        format!("message:{id}"),
                        format!("exemption:{exemption}"),
                        format!("user:{login}"),
                    ],
                    &categories,
                )
                .await;
            }
        }
        if !decisions.is_empty() {
            self.queued.notify_one();
        }
        for d in &decisions {
            tracing::info!(id, user = %d.login, exemption = d.exemption_id, outcome = %d.kind, "forward queued");
        }
        Ok(())
    }

    /// What every notice about this message says. Every value taken from the message
    /// passes [`crate::shown`]: cleaned, and shown only when it carries nothing itself.
    /// `received`: when ratspost took the message, the date a notice gives when the message
    /// has no readable `Date:` of its own.
    fn facts(
        &self,
        raw: &[u8],
        verdict: &store::VerdictRecord,
        received: store::Millis,
    ) -> NoticeFacts {
        let notices = &self.config.notices;
        let shown = shown::Shown {
            notices,
            rules: &self.rules,
        };
        let parsed = mail_parser::MessageParser::default().parse_headers(raw);
        let from = parsed
            .as_ref()
            .and_then(|m| m.from())
            .and_then(|a| a.first());
        let sender = match from {
            Some(a) if a.address().is_some() || a.name().is_some() => {
                shown.sender(a.name(), a.address())
            }
            _ => match notices.language {
                crate::config::Language::De => "(unbekannt)",
                crate::config::Language::En => "(unknown)",
            }
            .to_owned(),
        };
        let date = parsed.as_ref().and_then(|m| m.date()).map_or_else(
            || self.config.dates().millis(received),
            |d| self.config.dates().seconds(d.to_timestamp()),
        );
        let classified = verdict
            .categories
            .iter()
            .any(|c| c == classifier::category::VS_NFD || c == classifier::category::CLASSIFIED);
        let subject = if notices.show_subject && !classified {
            shown.subject(parsed.as_ref().and_then(|m| m.subject()), &sender)
        } else {
            Subject::Omitted
        };
        let limits = &self.rules.inspect;
        let references = match &notices.paper_pattern {
            Some(own) => classifier::ris::references_with(raw, limits, own),
            None => classifier::ris::references(raw, limits),
        };
        NoticeFacts {
            sender,
            date,
            subject,
            categories: if verdict.sensitive {
                verdict.categories.clone()
            } else {
                Vec::new()
            },
            link: String::new(),
            expires: String::new(),
            documents: shown.documents(references),
        }
    }
}

/// The trace line ratspost adds on top of a forwarded message (RFC 5321 §4.4).
fn received_line(
    hostname: &str,
    id: i64,
    e: &store::MessageEnvelope,
    target: &str,
    now: i64,
) -> String {
    let tls = if e.tls { "ESMTPS" } else { "ESMTP" };
    format!(
        "Received: from {} ([{}])\r\n\tby {hostname} (ratspost) with {tls} id {id}\r\n\tfor <{target}>; {}\r\n",
        e.helo,
        e.peer_ip,
        webui::datetime::rfc2822(now)
    )
}
