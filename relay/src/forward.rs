//! Forward decisions: after a message is classified, each recipient whose exemption is
//! active *now* gets a forward job — the original (with an ARC set, a `Received` line and an
//! SRS envelope) when it is clean, a notice with a link when it is sensitive or policy says
//! `notices_only`. Notices are ratspost's own mail and DKIM-signed ([`crate::dkim`]); the
//! original keeps its own DKIM signature and is ARC-sealed ([`crate::arc`]), never signed
//! with ratspost's key. The pipeline commits decisions, jobs, link tokens and their audit
//! entries together with the verdict (`Store::complete_messages`).
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

/// What the forwarder decided for one message, not yet committed.
#[derive(Debug, Default)]
pub struct Decided {
    /// The forward jobs to queue.
    pub decisions: Vec<ForwardDecision>,
    /// The notices the recipients' mailboxes show instead of a sensitive original.
    pub mailbox: Vec<MailboxNotice>,
    /// Notices held back because they would carry sensitive data themselves: audited once
    /// the message is committed.
    pub withheld: Vec<Withheld>,
}

/// A notice held back: (exemption, login, the categories it would have carried).
pub type Withheld = (i64, String, Vec<String>);

/// A forward job as logged once it is committed.
#[derive(Debug, Clone)]
pub struct Queued {
    /// Whose mail.
    pub login: String,
    /// Under which exemption.
    pub exemption: i64,
    /// `forward` or `notice`.
    pub kind: String,
}

impl Queued {
    /// What is logged of each of `decisions`.
    #[must_use]
    pub fn of(decisions: &[ForwardDecision]) -> Vec<Self> {
        decisions
            .iter()
            .map(|d| Self {
                login: d.login.clone(),
                exemption: d.exemption_id,
                kind: d.kind.clone(),
            })
            .collect()
    }
}

/// The exemption each user's mail may be forwarded under at the time of reading (`None`: no
/// active one), by user id.
pub type ActiveExemptions = std::collections::HashMap<i64, Option<store::Exemption>>;

impl Forwarder {
    /// Decides for `message` with verdict `verdict`: the notice each recipient's mailbox
    /// shows when it is sensitive, and a forward (the original, or a notice) for each
    /// recipient with an exemption in `exemptions`. Nothing is stored here: the pipeline
    /// commits the result with the verdict ([`store::Completion`]), then calls
    /// [`Self::committed`].
    ///
    /// # Errors
    /// When the blocking pool is gone (shutdown).
    pub async fn decide(
        &self,
        message: &store::PendingMessage,
        verdict: &store::VerdictRecord,
        exemptions: &ActiveExemptions,
        now: store::Millis,
    ) -> anyhow::Result<Decided> {
        let (id, raw, envelope) = (message.id, message.raw.as_slice(), &message.envelope);
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
        for (address, user_id, login) in &message.recipients {
            let (user_id, login) = (*user_id, login.clone());
            if seen.contains(&user_id) {
                continue;
            }
            seen.push(user_id);
            if verdict.sensitive {
                // The mailbox (IMAP) shows the notice, never the original — and when even the
                // notice would carry something, the one that repeats nothing of the message.
                let (body, token, flagged) = notice(address, true);
                if let Some(categories) = flagged {
                    tracing::warn!(id, user_id, categories = %categories.join(","), "mailbox notice reduced: it would carry sensitive data");
                }
                mailbox.push(MailboxNotice {
                    user_id,
                    body,
                    token,
                });
            }
            let Some(Some(exemption)) = exemptions.get(&user_id) else {
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
                        envelope,
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
        Ok(Decided {
            decisions,
            mailbox,
            withheld,
        })
    }

    /// After the decisions for message `id` were committed: audits the notices `withheld`,
    /// wakes the delivery worker when jobs were `queued`, and logs each of them.
    pub async fn committed(&self, id: i64, withheld: &[Withheld], queued: &[Queued]) {
        for (exemption, login, categories) in withheld {
            outgoing::withheld(
                &self.store,
                "notice",
                vec![
                    format!("message:{id}"),
                    format!("exemption:{exemption}"),
                    format!("user:{login}"),
                ],
                categories,
            )
            .await;
        }
        if !queued.is_empty() {
            self.queued.notify_one();
        }
        for q in queued {
            tracing::info!(id, user = %q.login, exemption = q.exemption, outcome = %q.kind, "forward queued");
        }
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
