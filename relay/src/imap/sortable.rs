//! What SORT (RFC 5256 §3, RFC 5957) and THREAD (RFC 5256 §3) read from a message header:
//! the sent date, the first address of From/To/Cc (its mailbox, and its display name),
//! the base subject, Message-ID and References. Strings are case-mapped
//! ([`casemap`], i;unicode-casemap) so comparing them is comparing with the RFC's
//! comparator. Addresses are read as ENVELOPE reads them ([`envelope`]), so
//! a group's name counts as the first address (Dovecot does the same).

use super::base_subject::{self, casemap};
use super::{envelope, message};

/// The sort and thread keys of one message.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Sortable {
    /// The Date header in UTC, ms (`None` when missing or unparsable).
    pub sent: Option<i64>,
    /// addr-mailbox of the first From address.
    pub from: String,
    /// addr-mailbox of the first To address.
    pub to: String,
    /// addr-mailbox of the first Cc address.
    pub cc: String,
    /// RFC 5957 display of the first From address: its decoded display name, else
    /// `mailbox@host`.
    pub display_from: String,
    /// The same for To.
    pub display_to: String,
    /// The base subject (RFC 5256 §2.1).
    pub subject: String,
    /// Whether the subject is a reply's or forward's.
    pub reply: bool,
    /// Message-ID, without angle brackets.
    pub message_id: Option<String>,
    /// References, else the first In-Reply-To id.
    pub references: Vec<String>,
}

impl Sortable {
    /// The keys of `raw` (a message or just its header).
    #[must_use]
    pub fn new(raw: &[u8]) -> Self {
        let head = message::header(raw);
        let sent = message::field(head, "date")
            .and_then(|d| mail_parser::DateTime::parse_rfc822(&d))
            .filter(mail_parser::DateTime::is_valid)
            .map(|d| d.to_timestamp().saturating_mul(1000));
        let subject = message::field(head, "subject").map_or_else(String::new, |s| decode(&s));
        let (subject, reply) = base_subject::base_subject(&subject);
        let first = |name: &str| {
            message::field(head, name).and_then(|v| envelope::parse_list(&v).into_iter().next())
        };
        let (from, display_from) = keys(first("from"));
        let (to, display_to) = keys(first("to"));
        let (cc, _) = keys(first("cc"));
        let message_id = message::field(head, "message-id").and_then(|v| ids(&v).next());
        let mut references: Vec<String> = message::field(head, "references")
            .map(|v| ids(&v).collect())
            .unwrap_or_default();
        if references.is_empty()
            && let Some(r) = message::field(head, "in-reply-to").and_then(|v| ids(&v).next())
        {
            references.push(r);
        }
        Self {
            sent,
            from,
            to,
            cc,
            display_from,
            display_to,
            subject,
            reply,
            message_id,
            references,
        }
    }
}

/// (addr-mailbox, display) of an address-list item.
fn keys(item: Option<envelope::Item>) -> (String, String) {
    match item {
        Some(envelope::Item::Addr {
            name,
            mailbox,
            host,
            ..
        }) => {
            let mailbox = mailbox.unwrap_or_default();
            let display = match (name.map(|n| decode(&n)), host) {
                (Some(n), _) if !n.trim().is_empty() => n,
                (_, Some(h)) if !mailbox.is_empty() && !h.is_empty() => format!("{mailbox}@{h}"),
                _ => mailbox.clone(),
            };
            (casemap(&mailbox), casemap(display.trim()))
        }
        Some(envelope::Item::GroupStart(name)) => {
            let name = casemap(decode(&name).trim());
            (name.clone(), name)
        }
        Some(envelope::Item::GroupEnd) | None => (String::new(), String::new()),
    }
}

/// `text` with its RFC 2047 encoded words decoded.
fn decode(text: &str) -> String {
    if !text.contains("=?") {
        return text.to_owned();
    }
    let header = format!("Subject: {text}\r\n\r\n");
    mail_parser::MessageParser::default()
        .parse_headers(header.as_bytes())
        .and_then(|m| m.subject().map(str::to_owned))
        .unwrap_or_else(|| text.to_owned())
}

/// The `<…>` message ids in `value`, without brackets and whitespace.
fn ids(value: &str) -> impl Iterator<Item = String> + '_ {
    value.split('<').skip(1).filter_map(|part| {
        let id: String = part
            .split_once('>')?
            .0
            .chars()
            .filter(|c| !c.is_whitespace())
            .collect();
        (!id.is_empty()).then_some(id)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_as_imaptest_expects() {
        let s = Sortable::new(
            b"From: =?iso-8859-1?q?foo_aar?= <e@f.g>\r\nTo: a: xx@xx.org, yy@yy.org;\r\n\
Cc: user2@domain2.org (foo bar)\r\nDate: Fri, 22 Feb 2008 02:00:00 +0200\r\n\
Subject: Re: =?utf-8?q?b?=\r\nMessage-ID: <a@b>\r\nIn-Reply-To: <x@y> (comment)\r\n\r\nbody\r\n",
        );
        assert_eq!(s.display_from, "FOO AAR");
        assert_eq!(s.from, "E");
        assert_eq!((s.to.as_str(), s.display_to.as_str()), ("A", "A"));
        assert_eq!(s.cc, "USER2");
        assert_eq!(s.sent, Some(1_203_638_400_000));
        assert_eq!((s.subject.as_str(), s.reply), ("B", true));
        assert_eq!(s.message_id.as_deref(), Some("a@b"));
        assert_eq!(s.references, vec!["x@y".to_owned()]);
        let plain = Sortable::new(b"From: b@c.d\r\nTo: d\r\nReferences: <1@x>\r\n <2@x>\r\n\r\n");
        assert_eq!(plain.display_from, "B@C.D");
        assert_eq!(plain.display_to, "D");
        assert_eq!(plain.references, vec!["1@x".to_owned(), "2@x".to_owned()]);
        assert_eq!(plain.sent, None);
        assert_eq!(Sortable::new(b"To: empty:;\r\n\r\n").display_to, "EMPTY");
    }
}
