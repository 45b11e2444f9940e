//! A message taken apart for display: the headers a reader needs, the text (an HTML-only
//! message as its text rendering — never as HTML), and the attachments by index.
//!
//! mail-parser 0.11.9 can panic on some nested messages; a message it cannot take apart is
//! shown as "cannot be displayed" with the download of the original still offered.

use mail_parser::{MessageParser, MimeHeaders as _};

/// What the viewer shows.
#[derive(Debug, Clone, Default)]
pub(crate) struct Shown {
    pub(crate) from: String,
    pub(crate) to: String,
    pub(crate) date: String,
    pub(crate) subject: String,
    pub(crate) text: String,
    pub(crate) attachments: Vec<Attachment>,
}

/// One attachment in the list.
#[derive(Debug, Clone)]
pub(crate) struct Attachment {
    pub(crate) index: usize,
    pub(crate) name: String,
    pub(crate) mime: String,
    pub(crate) size: usize,
}

/// An attachment's bytes for download.
pub(crate) struct Download {
    pub(crate) name: String,
    pub(crate) mime: String,
    pub(crate) bytes: Vec<u8>,
}

fn parse_guarded<T>(raw: &[u8], f: impl FnOnce(&mail_parser::Message<'_>) -> T) -> Option<T> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        MessageParser::default().parse(raw).map(|m| f(&m))
    }))
    .ok()
    .flatten()
}

fn addresses(a: Option<&mail_parser::Address<'_>>) -> String {
    a.map(|a| {
        a.iter()
            .map(|addr| match (addr.name(), addr.address()) {
                (Some(n), Some(e)) => format!("{n} <{e}>"),
                (None, Some(e)) => e.to_owned(),
                (Some(n), None) => n.to_owned(),
                (None, None) => String::new(),
            })
            .collect::<Vec<_>>()
            .join(", ")
    })
    .unwrap_or_default()
}

fn attachment_name(part: &mail_parser::MessagePart<'_>, index: usize) -> String {
    part.attachment_name()
        .map_or_else(|| format!("anhang-{}", index + 1), str::to_owned)
}

fn mime(part: &mail_parser::MessagePart<'_>) -> String {
    part.content_type().map_or_else(
        || "application/octet-stream".to_owned(),
        |ct| match ct.subtype() {
            Some(sub) => format!("{}/{sub}", ct.ctype()),
            None => ct.ctype().to_owned(),
        },
    )
}

/// The message for display; its date in local time of `zone`.
pub(crate) fn show(raw: &[u8], zone: crate::datetime::Zone) -> Shown {
    let dates = crate::datetime::Dates::new(zone, crate::datetime::Language::German);
    parse_guarded(raw, |m| Shown {
        from: addresses(m.from()),
        to: addresses(m.to()),
        date: m
            .date()
            .map(|d| dates.seconds(d.to_timestamp()))
            .unwrap_or_default(),
        subject: m.subject().unwrap_or("(ohne Betreff)").to_owned(),
        text: m.body_text(0).map(|t| t.into_owned()).unwrap_or_default(),
        attachments: m
            .attachments()
            .enumerate()
            .map(|(index, part)| Attachment {
                index,
                name: attachment_name(part, index),
                mime: mime(part),
                size: part.contents().len(),
            })
            .collect(),
    })
    .unwrap_or_else(|| Shown {
        subject: "Nachricht kann nicht angezeigt werden".to_owned(),
        text: "Diese Nachricht lässt sich nicht darstellen. Laden Sie das Original herunter."
            .to_owned(),
        ..Shown::default()
    })
}

/// Attachment `index` (as listed by [`show`]).
pub(crate) fn attachment(raw: &[u8], index: usize) -> Option<Download> {
    parse_guarded(raw, |m| {
        m.attachments().nth(index).map(|part| Download {
            name: attachment_name(part, index),
            mime: mime(part),
            bytes: part.contents().to_vec(),
        })
    })
    .flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAIL: &[u8] = b"From: Amt <amt@stadt.test>\r\nTo: anna@stadt.test\r\nSubject: Bescheid\r\n\
Date: Mon, 2 Nov 2026 10:00:00 +0100\r\nMIME-Version: 1.0\r\n\
Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n\
Steuer-ID 12345678903 <script>\r\n--b\r\nContent-Type: application/pdf\r\n\
Content-Disposition: attachment; filename=\"akte.pdf\"\r\nContent-Transfer-Encoding: base64\r\n\r\nJVBERi0=\r\n--b--\r\n";

    #[test]
    fn headers_text_and_attachments_are_shown() {
        let s = show(MAIL, crate::datetime::Zone::BERLIN);
        assert_eq!(s.from, "Amt <amt@stadt.test>");
        // Sent at 10:00 +0100: shown in Berlin time, not as an RFC date.
        assert_eq!(s.date, "2. November 2026, 10:00 Uhr");
        assert_eq!(s.subject, "Bescheid");
        assert!(s.text.contains("Steuer-ID 12345678903 <script>"));
        assert_eq!(s.attachments.len(), 1);
        assert_eq!(s.attachments[0].name, "akte.pdf");
        assert_eq!(s.attachments[0].mime, "application/pdf");
        let d = attachment(MAIL, 0).expect("attachment");
        assert_eq!(d.bytes, b"%PDF-");
        assert!(attachment(MAIL, 1).is_none());
    }
}
