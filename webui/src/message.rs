//! A message taken apart for display: the headers a reader needs, the body, and the
//! attachments by index.
//!
//! The body is the message's HTML, sanitised ([`crate::sanitize`]), whenever it has an HTML
//! part — also when a `multipart/alternative` carries a text part beside it, which is often
//! a stub ("Bitte HTML-Ansicht verwenden."); the text parts only when there is no HTML.
//!
//! mail-parser 0.11.9 can panic on some nested messages; a message it cannot take apart is
//! shown as "cannot be displayed" with the download of the original still offered.

use mail_parser::{MessageParser, MimeHeaders as _, PartType};

use crate::i18n::Lang;
use crate::sanitize;

/// What the viewer shows.
#[derive(Debug, Clone, Default)]
pub(crate) struct Shown {
    pub(crate) from: String,
    pub(crate) to: String,
    pub(crate) date: String,
    pub(crate) subject: String,
    /// The body parts, in order.
    pub(crate) body: Vec<Body>,
    pub(crate) attachments: Vec<Attachment>,
    /// Images from outside the message, blocked (all HTML parts together).
    pub(crate) external_images: usize,
    /// Images inside the message (`cid:`, `data:`), not shown.
    pub(crate) embedded_images: usize,
}

/// One body part as shown.
#[derive(Debug, Clone)]
pub(crate) enum Body {
    /// Plain text, shown escaped in `<pre>`.
    Text(String),
    /// Sanitised HTML, inserted as is.
    Html(String),
}

impl Body {
    /// The text of a text part (for the template).
    pub(crate) fn text(&self) -> Option<&str> {
        match self {
            Body::Text(t) => Some(t),
            Body::Html(_) => None,
        }
    }

    /// The sanitised HTML of an HTML part (for the template).
    pub(crate) fn html(&self) -> Option<&str> {
        match self {
            Body::Html(h) => Some(h),
            Body::Text(_) => None,
        }
    }
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

/// The body parts to show: the HTML body parts when one of them is HTML, else the text
/// body parts (mail-parser lists an HTML-only message's HTML part among the text parts too,
/// converted to text — that conversion ran words together); and the images not shown.
fn body(m: &mail_parser::Message<'_>, lang: Lang) -> (Vec<Body>, usize, usize) {
    let is_html = |id: &u32| m.part(*id).is_some_and(|p| p.is_text_html());
    let ids = if m.html_body.iter().any(is_html) {
        &m.html_body
    } else {
        &m.text_body
    };
    let (mut external, mut embedded) = (0, 0);
    let parts = ids
        .iter()
        .filter_map(|id| m.part(*id))
        .filter_map(|part| match &part.body {
            PartType::Html(html) => {
                let clean = sanitize::clean(html, lang);
                external += clean.external_images;
                embedded += clean.embedded_images;
                Some(Body::Html(clean.html))
            }
            PartType::Text(text) => Some(Body::Text(text.to_string())),
            _ => None,
        })
        .collect();
    (parts, external, embedded)
}

/// The message for display, in `lang`; its date in local time of `zone`.
pub(crate) fn show(raw: &[u8], zone: crate::datetime::Zone, lang: Lang) -> Shown {
    let dates = crate::datetime::Dates::new(zone, lang);
    parse_guarded(raw, |m| {
        let (body, external_images, embedded_images) = body(m, lang);
        Shown {
            from: addresses(m.from()),
            to: addresses(m.to()),
            date: m
                .date()
                .map(|d| dates.seconds(d.to_timestamp()))
                .unwrap_or_default(),
            subject: m
                .subject()
                .map_or_else(|| lang.t("(ohne Betreff)").to_owned(), str::to_owned),
            body,
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
            external_images,
            embedded_images,
        }
    })
    .unwrap_or_else(|| Shown {
        subject: lang.t("Nachricht kann nicht angezeigt werden").to_owned(),
        body: vec![Body::Text(
            lang.t("Diese Nachricht lässt sich nicht darstellen. Laden Sie das Original herunter, sofern Downloads erlaubt sind.")
                .to_owned(),
        )],
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
        let s = show(MAIL, crate::datetime::Zone::BERLIN, Lang::German);
        assert_eq!(s.from, "Amt <amt@stadt.test>");
        // Sent at 10:00 +0100: shown in Berlin time, not as an RFC date.
        assert_eq!(s.date, "2. November 2026, 10:00 Uhr");
        assert_eq!(s.subject, "Bescheid");
        assert!(
            matches!(&s.body[..], [Body::Text(t)] if t.contains("Steuer-ID 12345678903 <script>")),
            "{:?}",
            s.body
        );
        assert_eq!(s.attachments.len(), 1);
        assert_eq!(s.attachments[0].name, "akte.pdf");
        assert_eq!(s.attachments[0].mime, "application/pdf");
        let d = attachment(MAIL, 0).expect("attachment");
        assert_eq!(d.bytes, b"%PDF-");
        assert!(attachment(MAIL, 1).is_none());
    }

    fn mail(content_type: &str, body: &str) -> Vec<u8> {
        format!(
            "From: a@stadt.test\r\nTo: b@stadt.test\r\nSubject: Rechnung\r\nMIME-Version: 1.0\r\n\
Content-Type: {content_type}\r\n\r\n{body}"
        )
        .into_bytes()
    }

    fn html_of(s: &Shown) -> String {
        s.body
            .iter()
            .map(|b| match b {
                Body::Html(h) => format!("HTML:{h}"),
                Body::Text(t) => format!("TEXT:{t}"),
            })
            .collect()
    }

    #[test]
    fn html_is_preferred_over_a_stub_text_part() {
        let raw = mail(
            "multipart/alternative; boundary=a",
            "--a\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nBitte HTML-Ansicht verwenden.\r\n\
--a\r\nContent-Type: text/html; charset=utf-8\r\n\r\n<p>Betrag</p><p>312,00 \u{20ac}</p>\
<img src=\"https://track.example/p.gif\">\r\n--a--\r\n",
        );
        let s = show(&raw, crate::datetime::Zone::BERLIN, Lang::German);
        assert_eq!(
            html_of(&s),
            "HTML:<p>Betrag</p><p>312,00 \u{20ac}</p>[Externes Bild blockiert] "
        );
        assert_eq!((s.external_images, s.embedded_images), (1, 0));
    }

    #[test]
    fn html_only_mail_is_html_and_text_only_mail_is_text() {
        let raw = mail(
            "text/html; charset=utf-8",
            "<table><tr><td>Betrag</td><td>312,00</td></tr></table>",
        );
        let s = show(&raw, crate::datetime::Zone::BERLIN, Lang::German);
        assert_eq!(
            html_of(&s),
            "HTML:<table><tbody><tr><td>Betrag</td><td>312,00</td></tr></tbody></table>"
        );
        let raw = mail("text/plain; charset=utf-8", "<b>nicht fett</b>");
        let s = show(&raw, crate::datetime::Zone::BERLIN, Lang::English);
        assert_eq!(html_of(&s), "TEXT:<b>nicht fett</b>");
        let raw = b"From: a@stadt.test\r\n\r\nx".to_vec();
        assert_eq!(
            show(&raw, crate::datetime::Zone::BERLIN, Lang::English).subject,
            "(no subject)"
        );
    }
}
