//! Mails ratspost writes itself (confirmation codes, notices, reminders, and what happened to
//! an exemption request), in German or English, built with mail-builder.

use mail_builder::MessageBuilder;
use store::QueuedMail;

use crate::config::{Language, NoticesConfig};

/// A mail from ratspost itself: marked `Auto-Submitted` (RFC 3834) so that no auto-responder
/// answers it, with a text part and optionally an HTML alternative.
fn build(
    notices: &NoticesConfig,
    to: &str,
    subject: impl Into<String>,
    text: String,
    html: Option<String>,
) -> Vec<u8> {
    let mut builder = MessageBuilder::new()
        .from(("ratspost", notices.from.as_str()))
        .to(to)
        .subject(subject.into())
        .header(
            "Auto-Submitted",
            mail_builder::headers::raw::Raw::new("auto-generated"),
        )
        .text_body(text);
    if let Some(html) = html {
        builder = builder.html_body(html);
    }
    builder.write_to_vec().unwrap_or_default()
}

/// The mail that proves a private address: it carries the confirmation code, the one-time
/// `link` to the page that takes it (after login, for the requesting user only), and says
/// what confirming will allow. No administration is involved: the user enters the code.
#[must_use]
#[allow(clippy::too_many_arguments)]
pub fn confirmation(
    notices: &NoticesConfig,
    id: i64,
    login: &str,
    target: &str,
    code: &str,
    days: i64,
    expires: &str,
    link: &str,
) -> QueuedMail {
    let (subject, body) = match notices.language {
        Language::De => (
            "Bestätigung Ihrer Weiterleitungsadresse".to_owned(),
            format!(
                "Guten Tag,\r\n\r\nfür das Postfach \"{login}\" wurde beantragt, dienstliche E-Mails für {days} Tage an diese Adresse \
                 ({target}) weiterzuleiten (Ausnahme Nr. {id}). Vertrauliche Nachrichten werden dabei nie weitergeleitet, nur ein \
                 Hinweis mit einem Link.\r\n\r\nBestätigungscode: {code}\r\n\r\nUm diese Adresse zu bestätigen, öffnen Sie \
                 diesen Link, melden Sie sich mit Ihrem dienstlichen Zugang an und geben Sie dort den Code ein:\r\n{link}\r\n\r\n\
                 Code und Link gelten bis {expires}. Geben Sie den Code niemandem weiter, auch nicht der Verwaltung. Wenn Sie \
                 das nicht beantragt haben, ignorieren Sie diese Nachricht; ohne Bestätigung wird nichts weitergeleitet.\r\n\r\n\
                 -- \r\nratspost\r\n"
            ),
        ),
        Language::En => (
            "Confirm your forwarding address".to_owned(),
            format!(
                "Hello,\r\n\r\nit was requested to forward work mail of the mailbox \"{login}\" to this address ({target}) for \
                 {days} days (exemption no. {id}). Confidential messages are never forwarded, only a notice with a link.\r\n\r\n\
                 Confirmation code: {code}\r\n\r\nTo confirm this address, open this link, log in with your work account and \
                 enter the code there:\r\n{link}\r\n\r\nThe code and the link are valid until {expires}. Do not give the code \
                 to anyone, not even the administration. If you did not ask for this, ignore this message; nothing is \
                 forwarded without confirmation.\r\n\r\n-- \r\nratspost\r\n"
            ),
        ),
    };
    let body = build(notices, target, subject, body, None);
    QueuedMail {
        kind: "confirmation".to_owned(),
        mail_from: notices.from.clone(),
        rcpt_to: target.to_owned(),
        body,
    }
}

/// What happened to an exemption request, for the mail to the people concerned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// It is confirmed and waits for approval (to the approvers; `approvals` is the page).
    Waiting {
        /// The page where it is approved.
        approvals: String,
    },
    /// Approved by `by`; `standing` says what now holds ("aktiv bis …", "wartet noch auf …").
    Approved {
        /// The approver's login.
        by: String,
        /// The state in words, in the mail's language.
        standing: String,
    },
    /// Denied by `by` for `reason`.
    Denied {
        /// Who denied.
        by: String,
        /// Their reason.
        reason: String,
    },
    /// Revoked by `by`: forwarding stopped.
    Revoked {
        /// Who revoked.
        by: String,
    },
}

/// A mail about exemption `id` of mailbox `login` to `to` (a work address): to approvers
/// that a request waits, to the user that it was approved, denied or revoked. It names the
/// mailbox and the number, never the private address, the reason of the request or a code.
#[must_use]
pub fn exemption_event(
    notices: &NoticesConfig,
    to: &str,
    id: i64,
    login: &str,
    event: &Event,
) -> QueuedMail {
    let de = notices.language == Language::De;
    let (subject, text) = match (event, de) {
        (Event::Waiting { approvals }, true) => (
            format!("Weiterleitung wartet auf Freigabe (Ausnahme Nr. {id})"),
            format!(
                "der Antrag auf Weiterleitung dienstlicher E-Mails des Postfachs \"{login}\" (Ausnahme Nr. {id}) ist \
                 bestätigt und wartet auf Freigabe.\r\n\r\nAntrag prüfen, freigeben oder ablehnen:\r\n{approvals}"
            ),
        ),
        (Event::Waiting { approvals }, false) => (
            format!("Forwarding waits for approval (exemption no. {id})"),
            format!(
                "the request to forward work mail of the mailbox \"{login}\" (exemption no. {id}) is confirmed and \
                 waits for approval.\r\n\r\nReview, approve or deny it:\r\n{approvals}"
            ),
        ),
        (Event::Approved { by, standing }, true) => (
            format!("Ihre Weiterleitung wurde genehmigt (Ausnahme Nr. {id})"),
            format!(
                "Ihr Antrag auf Weiterleitung des Postfachs \"{login}\" (Ausnahme Nr. {id}) wurde von {by} genehmigt.\r\n\
                 Stand: {standing}."
            ),
        ),
        (Event::Approved { by, standing }, false) => (
            format!("Your forwarding was approved (exemption no. {id})"),
            format!(
                "your request to forward the mailbox \"{login}\" (exemption no. {id}) was approved by {by}.\r\n\
                 State: {standing}."
            ),
        ),
        (Event::Denied { by, reason }, true) => (
            format!("Ihre Weiterleitung wurde abgelehnt (Ausnahme Nr. {id})"),
            format!(
                "Ihr Antrag auf Weiterleitung des Postfachs \"{login}\" (Ausnahme Nr. {id}) wurde von {by} abgelehnt. \
                 Es wird nichts weitergeleitet.\r\n\r\nBegründung: {}",
                one_line(reason)
            ),
        ),
        (Event::Denied { by, reason }, false) => (
            format!("Your forwarding was denied (exemption no. {id})"),
            format!(
                "your request to forward the mailbox \"{login}\" (exemption no. {id}) was denied by {by}. Nothing is \
                 forwarded.\r\n\r\nReason: {}",
                one_line(reason)
            ),
        ),
        (Event::Revoked { by }, true) => (
            format!("Ihre Weiterleitung wurde widerrufen (Ausnahme Nr. {id})"),
            format!(
                "die Weiterleitung des Postfachs \"{login}\" (Ausnahme Nr. {id}) wurde von {by} widerrufen. Ab sofort \
                 wird darunter nichts mehr weitergeleitet."
            ),
        ),
        (Event::Revoked { by }, false) => (
            format!("Your forwarding was revoked (exemption no. {id})"),
            format!(
                "forwarding of the mailbox \"{login}\" (exemption no. {id}) was revoked by {by}. From now on nothing \
                 is forwarded under it."
            ),
        ),
    };
    let greeting = if de {
        "Guten Tag,\r\n\r\n"
    } else {
        "Hello,\r\n\r\n"
    };
    let body = format!("{greeting}{text}\r\n\r\n-- \r\nratspost\r\n");
    QueuedMail {
        kind: "notification".to_owned(),
        mail_from: notices.from.clone(),
        rcpt_to: to.to_owned(),
        body: build(notices, to, subject, body, None),
    }
}

/// The original subject as a notice shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Subject {
    /// Not mentioned: policy (`notices.show_subject = false`, classified material) or no
    /// subject.
    Omitted,
    /// Policy allows it, but it carries something: "(Betreff nicht angezeigt)".
    Withheld,
    /// The subject, cleaned (see [`crate::shown`]).
    Shown(String),
}

/// What a notice says about the message it stands for — never its content. Every value
/// taken from the message has passed [`crate::shown`].
#[derive(Debug, Clone)]
pub struct NoticeFacts {
    /// The original sender as shown (`Name <address>`, or the address alone).
    pub sender: String,
    /// The original date.
    pub date: String,
    /// The original subject, when policy allows showing it.
    pub subject: Subject,
    /// Category ids of the verdict (empty for a clean message under `notices_only`).
    pub categories: Vec<String>,
    /// The link to the original.
    pub link: String,
    /// Until when the link works.
    pub expires: String,
    /// Council documents the message refers to: (label, optional URL).
    pub documents: Vec<(String, Option<String>)>,
}

/// The notice that goes out (or into the mailbox) instead of a sensitive message: a valid
/// MIME message with text and HTML parts.
#[must_use]
pub fn notice(notices: &NoticesConfig, to: &str, facts: &NoticeFacts) -> Vec<u8> {
    let de = notices.language == Language::De;
    let names: Vec<&str> = facts
        .categories
        .iter()
        .map(|c| {
            if de {
                classifier::category::name_de(c)
            } else {
                classifier::category::name_en(c)
            }
        })
        .collect();
    // Facts are cleaned by `shown` already; one line each again here, so that no value can
    // ever add lines (or headers) to a notice.
    let sender = one_line(&facts.sender);
    let mut subject = if de {
        format!("Vertrauliche Nachricht von {sender}")
    } else {
        format!("Confidential message from {sender}")
    };
    match (&facts.subject, de) {
        (Subject::Omitted, _) => {}
        (Subject::Withheld, true) => subject.push_str(": (Betreff nicht angezeigt)"),
        (Subject::Withheld, false) => subject.push_str(": (subject not shown)"),
        (Subject::Shown(original), _) => subject.push_str(&format!(": {}", one_line(original))),
    }
    let reason = if names.is_empty() {
        if de {
            "Weiterleitung nur als Hinweis (Richtlinie)".to_owned()
        } else {
            "forwarded as a notice only (policy)".to_owned()
        }
    } else {
        names.join(", ")
    };
    let (intro, l_from, l_date, l_why, l_open, l_valid, l_docs) = if de {
        (
            "Sie haben eine Nachricht erhalten, deren Inhalt nicht weitergeleitet wird.",
            "Von",
            "Datum",
            "Grund",
            "Die Nachricht ist nach Anmeldung hier abrufbar:",
            "Der Link gilt bis",
            "Dokumente im Ratsinformationssystem, auf die die Nachricht verweist:",
        )
    } else {
        (
            "You have received a message whose content is not forwarded.",
            "From",
            "Date",
            "Reason",
            "After signing in, the message is available here:",
            "The link is valid until",
            "Council documents the message refers to:",
        )
    };
    let mut text = format!(
        "{intro}\r\n\r\n{l_from}: {sender}\r\n{l_date}: {}\r\n{l_why}: {reason}\r\n\r\n{l_open}\r\n{}\r\n{l_valid} {}.\r\n",
        facts.date, facts.link, facts.expires
    );
    let esc = |s: &str| html_escape(s);
    let mut html = format!(
        "<html><body><p>{}</p><table><tr><td>{l_from}:</td><td>{}</td></tr><tr><td>{l_date}:</td><td>{}</td></tr>\
         <tr><td>{l_why}:</td><td>{}</td></tr></table><p>{l_open}<br><a href=\"{}\">{}</a><br>{l_valid} {}.</p>",
        esc(intro),
        esc(&sender),
        esc(&facts.date),
        esc(&reason),
        esc(&facts.link),
        esc(&facts.link),
        esc(&facts.expires)
    );
    if !facts.documents.is_empty() {
        text.push_str(&format!("\r\n{l_docs}\r\n"));
        html.push_str(&format!("<p>{l_docs}</p><ul>"));
        for (label, url) in &facts.documents {
            let (label, url) = (one_line(label), url.as_deref().map(one_line));
            match url {
                Some(url) => {
                    text.push_str(&format!("- {label}: {url}\r\n"));
                    html.push_str(&format!(
                        "<li><a href=\"{}\">{}</a></li>",
                        esc(&url),
                        esc(&label)
                    ));
                }
                None => {
                    text.push_str(&format!("- {label}\r\n"));
                    html.push_str(&format!("<li>{}</li>", esc(&label)));
                }
            }
        }
        html.push_str("</ul>");
    }
    text.push_str("\r\n-- \r\nratspost\r\n");
    html.push_str("<p>-- <br>ratspost</p></body></html>");
    build(notices, to, subject, text, Some(html))
}

/// `s` with every control character replaced by a space.
fn one_line(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The end of a failure notice for a forward or a notice: the original is not lost.
const STILL_THERE_DE: &str = "Die Nachricht liegt weiterhin in Ihrem Postfach. Bitte prüfen Sie \
                              die Adresse oder wenden Sie sich an Ihre Verwaltung.";
const STILL_THERE_EN: &str = "The message is still in your mailbox. Please check the address \
                              or contact your administration.";

/// Tells the mailbox owner that something could not be sent to their private address. It
/// goes into their mailbox — never to the original sender. `queued` is when the forward was
/// queued, as people read it (local time).
#[must_use]
pub fn delivery_failure(
    notices: &NoticesConfig,
    to: &str,
    kind: &str,
    target: &str,
    queued: &str,
    error: &str,
) -> Vec<u8> {
    let (subject, body) = match notices.language {
        Language::De => {
            let (what, then) = match kind {
                "confirmation" => (
                    "Die Bestätigungsnachricht",
                    "Bitte prüfen Sie die Adresse und beantragen Sie die Weiterleitung erneut.",
                ),
                "notice" => (
                    "Ein Hinweis auf eine vertrauliche Nachricht",
                    STILL_THERE_DE,
                ),
                _ => ("Eine weitergeleitete Nachricht", STILL_THERE_DE),
            };
            (
                "Weiterleitung fehlgeschlagen",
                format!(
                    "Guten Tag,\r\n\r\n{what} vom {queued} konnte nicht an Ihre private Adresse \
                     {target} zugestellt werden.\r\n\r\nGrund (Meldung des Mailservers): {error}\r\n\r\n\
                     {then}\r\n\r\n-- \r\nratspost\r\n"
                ),
            )
        }
        Language::En => {
            let (what, then) = match kind {
                "confirmation" => (
                    "The confirmation message",
                    "Please check the address and request forwarding again.",
                ),
                "notice" => ("A notice about a confidential message", STILL_THERE_EN),
                _ => ("A forwarded message", STILL_THERE_EN),
            };
            (
                "Forwarding failed",
                format!(
                    "Hello,\r\n\r\n{what} of {queued} could not be delivered to your private \
                     address {target}.\r\n\r\nReason (from the mail server): {error}\r\n\r\n{then}\r\n\r\n\
                     -- \r\nratspost\r\n"
                ),
            )
        }
    };
    build(notices, to, subject, body, None)
}

/// The non-delivery report for a message the user submitted (RFC 6409) into their own
/// mailbox: which recipients the city's server refused for good, with its reply, the date the
/// message was sent (`queued`, readable) and its `Message-ID` (to find it in *Sent*). No
/// content of the message is repeated.
#[must_use]
pub fn submission_failure(
    notices: &NoticesConfig,
    to: &str,
    refused: &[(String, String)],
    queued: &str,
    message_id: Option<&str>,
) -> Vec<u8> {
    let list = refused
        .iter()
        .map(|(rcpt, error)| format!("  {rcpt}: {error}"))
        .collect::<Vec<_>>()
        .join("\r\n");
    let id = message_id.map_or_else(String::new, |id| format!(" (Message-ID <{id}>)"));
    let (subject, body) = match notices.language {
        Language::De => (
            "Unzustellbar: Ihre Nachricht",
            format!(
                "Guten Tag,\r\n\r\nIhre Nachricht vom {queued}{id} konnte an diese Empfänger \
                 nicht zugestellt werden (Meldung des Mailservers):\r\n\r\n{list}\r\n\r\n\
                 Bitte prüfen Sie die Adressen. Diese Meldung betrifft nur die genannten \
                 Empfänger.\r\n\r\n-- \r\nratspost\r\n"
            ),
        ),
        Language::En => (
            "Undeliverable: your message",
            format!(
                "Hello,\r\n\r\nYour message of {queued}{id} could not be delivered to these \
                 recipients (from the mail server):\r\n\r\n{list}\r\n\r\n\
                 Please check the addresses. This report concerns only the recipients named \
                 here.\r\n\r\n-- \r\nratspost\r\n"
            ),
        ),
    };
    build(notices, to, subject, body, None)
}

/// The note in the sender's mailbox that a message they submitted is held for review
/// (`submission.sensitive = "hold"`): when it was sent and its `Message-ID`; nothing of its
/// content. Mail programs do not show the SMTP reply that says so.
#[must_use]
pub fn submission_held(
    notices: &NoticesConfig,
    to: &str,
    queued: &str,
    message_id: Option<&str>,
) -> Vec<u8> {
    let id = message_id.map_or_else(String::new, |id| format!(" (Message-ID <{id}>)"));
    let (subject, body) = match notices.language {
        Language::De => (
            "Zurückgehalten: Ihre Nachricht",
            format!(
                "Guten Tag,\r\n\r\nIhre Nachricht vom {queued}{id} enthält nach der \
                 automatischen Prüfung vertrauliche Inhalte. Sie wurde noch nicht versandt: \
                 Die Verwaltung prüft sie und gibt sie frei oder verwirft sie.\r\n\r\n\
                 -- \r\nratspost\r\n"
            ),
        ),
        Language::En => (
            "Held: your message",
            format!(
                "Hello,\r\n\r\nYour message of {queued}{id} contains confidential content \
                 according to the automatic check. It has not been sent yet: the \
                 administration reviews it and releases or drops it.\r\n\r\n\
                 -- \r\nratspost\r\n"
            ),
        ),
    };
    build(notices, to, subject, body, None)
}

/// The audit checkpoint for the data-protection officer (`audit.checkpoint_to`, issue #15
/// §1): the signed line to keep, and what to do with it. Keeping these mails outside the
/// administrators' reach is what makes a rewritten audit log detectable.
#[must_use]
pub fn audit_checkpoint(notices: &NoticesConfig, to: &str, line: &str, entries: i64) -> QueuedMail {
    let (subject, body) = match notices.language {
        Language::De => (
            format!("Prüfpunkt des Audit-Protokolls (Eintrag {entries})"),
            format!(
                "Guten Tag,\r\n\r\nder folgende signierte Prüfpunkt hält den Stand des \
                 Audit-Protokolls von ratspost fest ({entries} Einträge). Bewahren Sie diese \
                 E-Mail auf, außerhalb der Reichweite der Administration:\r\n\r\n{line}\r\n\r\n\
                 Zur Prüfung speichern Sie eine oder mehrere dieser E-Mails als Textdatei und \
                 lassen Sie ausführen:\r\n  ratspost audit verify --checkpoints DATEI\r\n\
                 Wurde das Protokoll bis zu diesem Eintrag nachträglich geändert, gekürzt oder \
                 umsortiert, meldet die Prüfung diesen Prüfpunkt.\r\n\r\n-- \r\nratspost\r\n"
            ),
        ),
        Language::En => (
            format!("Audit log checkpoint (entry {entries})"),
            format!(
                "Hello,\r\n\r\nthe signed checkpoint below records the state of ratspost's \
                 audit log ({entries} entries). Keep this mail, out of the administrators' \
                 reach:\r\n\r\n{line}\r\n\r\n\
                 To check, save one or more of these mails as a text file and run:\r\n  \
                 ratspost audit verify --checkpoints FILE\r\n\
                 If the log up to this entry was changed, cut or reordered later, the check \
                 reports this checkpoint.\r\n\r\n-- \r\nratspost\r\n"
            ),
        ),
    };
    QueuedMail {
        kind: "checkpoint".to_owned(),
        mail_from: notices.from.clone(),
        rcpt_to: to.to_owned(),
        body: build(notices, to, subject, body, None),
    }
}

/// A follow-up exemption the reminder mentions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FollowUp {
    /// Requested, not yet confirmed and approved.
    Pending {
        /// Its id.
        id: i64,
    },
    /// Approved: forwarding goes on without a gap until `until`.
    Approved {
        /// Its id.
        id: i64,
        /// Its end, as people read it.
        until: String,
    },
}

/// Reminds the user, at the private address, that forwarding ends soon — and says so when a
/// follow-up already exists, instead of asking for one.
#[must_use]
pub fn reminder(
    notices: &NoticesConfig,
    login: &str,
    target: &str,
    id: i64,
    until: &str,
    follow_up: Option<&FollowUp>,
) -> QueuedMail {
    let (subject, body) = match notices.language {
        Language::De => {
            let next = match follow_up {
                None => "Danach wird nichts mehr weitergeleitet. Wenn Sie die Weiterleitung weiter brauchen, beantragen Sie bitte rechtzeitig eine neue \
                         Ausnahme; sie schließt dann ohne Unterbrechung an."
                    .to_owned(),
                Some(FollowUp::Pending { id: next }) => format!(
                    "Eine Anschlussausnahme (Nr. {next}) ist bereits beantragt. Sobald sie bestätigt und genehmigt \
                     ist, geht die Weiterleitung ohne Unterbrechung weiter."
                ),
                Some(FollowUp::Approved { id: next, until: next_until }) => format!(
                    "Eine Anschlussausnahme (Nr. {next}) ist bereits genehmigt: die Weiterleitung geht ohne \
                     Unterbrechung weiter bis {next_until}."
                ),
            };
            (
                "Ihre Weiterleitung endet bald",
                format!(
                    "Guten Tag,\r\n\r\ndie Weiterleitung dienstlicher E-Mails des Postfachs \"{login}\" an diese Adresse \
                     ({target}, Ausnahme Nr. {id}) endet am {until}. {next}\r\n\r\n-- \r\nratspost\r\n"
                ),
            )
        }
        Language::En => {
            let next = match follow_up {
                None => "Nothing is forwarded after that. If you still need it, please request a new exemption \
                         in time; it then follows on without a gap."
                    .to_owned(),
                Some(FollowUp::Pending { id: next }) => format!(
                    "A follow-up exemption (no. {next}) has already been requested. Once it is confirmed and \
                     approved, forwarding goes on without a gap."
                ),
                Some(FollowUp::Approved { id: next, until: next_until }) => format!(
                    "A follow-up exemption (no. {next}) has already been approved: forwarding goes on without a \
                     gap until {next_until}."
                ),
            };
            (
                "Your forwarding ends soon",
                format!(
                    "Hello,\r\n\r\nforwarding of work mail of the mailbox \"{login}\" to this address ({target}, exemption \
                     no. {id}) ends on {until}. {next}\r\n\r\n-- \r\nratspost\r\n"
                ),
            )
        }
    };
    let body = build(notices, target, subject, body, None);
    QueuedMail {
        kind: "reminder".to_owned(),
        mail_from: notices.from.clone(),
        rcpt_to: target.to_owned(),
        body,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(mail: &[u8]) -> String {
        mail_parser::MessageParser::default()
            .parse(mail)
            .and_then(|m| m.body_text(0).map(|t| t.into_owned()))
            .expect("a text part")
    }

    #[test]
    fn mails_about_a_request_say_what_happened_in_both_languages() {
        let mut notices = crate::config::Config::builtin().notices;
        let denied = Event::Denied {
            by: "admin2".into(),
            reason: "Kein Bedarf\r\nBcc: x@evil.example".into(),
        };
        let mail = exemption_event(&notices, "anna@stadt.example", 7, "anna", &denied);
        assert_eq!(
            (mail.kind.as_str(), mail.rcpt_to.as_str()),
            ("notification", "anna@stadt.example")
        );
        let said = text(&mail.body);
        assert!(
            said.contains("(Ausnahme Nr. 7) wurde von admin2 abgelehnt"),
            "{said}"
        );
        assert!(
            said.contains("Begründung: Kein Bedarf  Bcc: x@evil.example"),
            "{said}"
        );
        let raw = String::from_utf8_lossy(&mail.body);
        assert!(
            !raw.contains("\r\nBcc:"),
            "the reason added a header: {raw}"
        );
        let waiting = Event::Waiting {
            approvals: "https://ratspost.stadt.example/approvals".into(),
        };
        let said =
            text(&exemption_event(&notices, "admin1@stadt.example", 7, "anna", &waiting).body);
        assert!(
            said.contains("wartet auf Freigabe") && said.contains("/approvals"),
            "{said}"
        );
        notices.language = Language::En;
        let revoked = Event::Revoked { by: "dora".into() };
        let said = text(&exemption_event(&notices, "anna@stadt.example", 7, "anna", &revoked).body);
        assert!(
            said.contains("(exemption no. 7) was revoked by dora"),
            "{said}"
        );
        let link = "https://ratspost.stadt.example/forwarding/confirm/abc";
        let said = text(
            &confirmation(
                &notices,
                7,
                "anna",
                "a@example.net",
                "12345678",
                3,
                "morgen",
                link,
            )
            .body,
        );
        assert!(
            said.contains(link) && !said.contains("Give this code to your administration"),
            "{said}"
        );
    }

    #[test]
    fn the_reminder_says_whether_a_follow_up_exists() {
        let mut notices = crate::config::Config::builtin().notices;
        let until = "30. Dezember 2026, 20:28 Uhr";
        let none = text(&reminder(&notices, "anna", "a@example.net", 3, until, None).body);
        assert!(
            none.contains("endet am 30. Dezember 2026, 20:28 Uhr."),
            "{none}"
        );
        assert!(none.contains("beantragen Sie bitte rechtzeitig"), "{none}");
        let pending = FollowUp::Pending { id: 4 };
        let said =
            text(&reminder(&notices, "anna", "a@example.net", 3, until, Some(&pending)).body);
        assert!(
            said.contains("Anschlussausnahme (Nr. 4) ist bereits beantragt"),
            "{said}"
        );
        assert!(!said.contains("rechtzeitig"), "{said}");
        let approved = FollowUp::Approved {
            id: 4,
            until: "4. Januar 2027, 20:28 Uhr".into(),
        };
        let said =
            text(&reminder(&notices, "anna", "a@example.net", 3, until, Some(&approved)).body);
        assert!(
            said.contains("ohne Unterbrechung weiter bis 4. Januar 2027, 20:28 Uhr."),
            "{said}"
        );
        notices.language = Language::En;
        let said =
            text(&reminder(&notices, "anna", "a@example.net", 3, until, Some(&pending)).body);
        assert!(
            said.contains("A follow-up exemption (no. 4) has already been requested"),
            "{said}"
        );
    }

    fn facts(categories: &[&str]) -> NoticeFacts {
        NoticeFacts {
            sender: "Max Mustermann <max@example.net>".into(),
            date: "1. Dezember 2026, 10:00 Uhr".into(),
            subject: Subject::Shown("Einladung zur Sitzung am 01.12.2026".into()),
            categories: categories.iter().map(|c| (*c).to_owned()).collect(),
            link: format!("https://ris.stadt.test/m/{}", store::token::new()),
            expires: "31. Dezember 2026, 10:00 Uhr".into(),
            documents: vec![(
                "Vorlage 25-26613".into(),
                Some("https://ris.stadt.test/bi/suche?q=25-26613".into()),
            )],
        }
    }

    #[test]
    fn an_ordinary_notice_passes_its_own_check() {
        let rules = classifier::Rules::default();
        for language in [Language::De, Language::En] {
            let mut notices = crate::config::Config::builtin().notices;
            notices.language = language;
            // What the forwarder classifies: the notice without its category names.
            let mail = notice(&notices, "anna@example.net", &facts(&[]));
            assert_eq!(
                crate::outgoing::flagged(&mail, &rules),
                None,
                "{language:?}"
            );
        }
        // Why the category names are left out of the check: some are markings themselves.
        let notices = crate::config::Config::builtin().notices;
        let named = notice(
            &notices,
            "anna@example.net",
            &facts(&["vs_nfd", "personnel"]),
        );
        assert!(crate::outgoing::flagged(&named, &rules).is_some());
    }

    #[test]
    fn no_fact_adds_a_line_to_a_notice() {
        let notices = crate::config::Config::builtin().notices;
        let mut f = facts(&["tax_id"]);
        f.sender = "Max\r\nBcc: evil@example.net".into();
        f.subject = Subject::Shown("x\r\n\r\nInjected body".into());
        f.documents = vec![("a\r\nb".into(), Some("https://x\r\ny".into()))];
        let mail = notice(&notices, "anna@example.net", &f);
        let parsed = mail_parser::MessageParser::default()
            .parse(mail.as_slice())
            .expect("MIME");
        assert!(parsed.header("Bcc").is_none());
        let body = text(&mail);
        assert!(
            body.contains("Von: Max  Bcc: evil@example.net\r\n"),
            "{body}"
        );
        assert!(
            !body.contains("\na\r\n") && !body.contains("\ny\r\n"),
            "{body}"
        );
        f.subject = Subject::Withheld;
        let withheld = notice(&notices, "anna@example.net", &f);
        let parsed = mail_parser::MessageParser::default()
            .parse(withheld.as_slice())
            .expect("MIME");
        assert!(
            parsed
                .subject()
                .is_some_and(|s| s.ends_with(": (Betreff nicht angezeigt)")),
            "{:?}",
            parsed.subject()
        );
    }
}
