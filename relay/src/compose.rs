//! Mails ratspost writes itself (confirmation codes now; notices and reminders later), in
//! German or English, built with mail-builder.

use mail_builder::MessageBuilder;
use store::QueuedMail;

use crate::config::{Language, NoticesConfig};

/// The mail that proves a private address: it carries the confirmation code and says what
/// confirming will allow.
#[must_use]
pub fn confirmation(
    notices: &NoticesConfig,
    id: i64,
    login: &str,
    target: &str,
    code: &str,
    days: i64,
    expires: &str,
) -> QueuedMail {
    let (subject, body) = match notices.language {
        Language::De => (
            "Bestätigung Ihrer Weiterleitungsadresse".to_owned(),
            format!(
                "Guten Tag,\r\n\r\nfür das Postfach \"{login}\" wurde beantragt, dienstliche E-Mails für {days} Tage an diese Adresse \
                 ({target}) weiterzuleiten (Ausnahme Nr. {id}). Vertrauliche Nachrichten werden dabei nie weitergeleitet, nur ein \
                 Hinweis mit einem Link.\r\n\r\nBestätigungscode: {code}\r\n\r\nGeben Sie den Code bei Ihrer Verwaltung an, um \
                 diese Adresse zu bestätigen. Er gilt bis {expires}. Wenn Sie das nicht beantragt haben, ignorieren Sie diese \
                 Nachricht; ohne Bestätigung wird nichts weitergeleitet.\r\n\r\n-- \r\nratspost\r\n"
            ),
        ),
        Language::En => (
            "Confirm your forwarding address".to_owned(),
            format!(
                "Hello,\r\n\r\nit was requested to forward work mail of the mailbox \"{login}\" to this address ({target}) for \
                 {days} days (exemption no. {id}). Confidential messages are never forwarded, only a notice with a link.\r\n\r\n\
                 Confirmation code: {code}\r\n\r\nGive this code to your administration to confirm this address. It is valid \
                 until {expires}. If you did not ask for this, ignore this message; nothing is forwarded without \
                 confirmation.\r\n\r\n-- \r\nratspost\r\n"
            ),
        ),
    };
    let body = MessageBuilder::new()
        .from(("ratspost", notices.from.as_str()))
        .to(target)
        .subject(subject)
        .text_body(body)
        .write_to_vec()
        .unwrap_or_default();
    QueuedMail {
        kind: "confirmation".to_owned(),
        mail_from: notices.from.clone(),
        rcpt_to: target.to_owned(),
        body,
    }
}
