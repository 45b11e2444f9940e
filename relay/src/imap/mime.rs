//! The MIME structure of a served message, for BODYSTRUCTURE, ENVELOPE and numbered body
//! sections (`BODY[1.2]`, `BODY[2.MIME]`, `BODY[3.HEADER]`).
//!
//! mail-parser finds the parts and their byte ranges; a message/rfc822 part is parsed again
//! from its own body, so its ranges are exact too. Whatever cannot be parsed (mail-parser can
//! panic on some nested messages) is treated as one text/plain part — the client still gets
//! the bytes, just not a finer structure.

use std::ops::Range;

use imap_next::imap_types::body::{
    BasicFields, Body, BodyStructure, Disposition, SinglePartExtensionData, SpecificFields,
};
use imap_next::imap_types::core::{IString, NString, Vec1};
use imap_next::imap_types::envelope::{Address, Envelope};
use mail_parser::{MessageParser, MimeHeaders as _, PartType};

/// Parts nested deeper than this are not broken down further.
const MAX_DEPTH: usize = 16;

/// One MIME part with absolute byte ranges into the message.
#[derive(Debug, Clone)]
pub struct Part {
    /// The part's header (for `.MIME`).
    pub header: Range<usize>,
    /// The part's body, still transfer-encoded.
    pub body: Range<usize>,
    ctype: String,
    subtype: String,
    params: Vec<(String, String)>,
    id: Option<String>,
    description: Option<String>,
    encoding: String,
    disposition: Option<(String, Vec<(String, String)>)>,
    lines: usize,
    kind: Kind,
}

#[derive(Debug, Clone)]
enum Kind {
    Leaf,
    Multi(Vec<Part>),
    /// message/rfc822 with the root part of the enclosed message.
    Message(Box<Part>),
}

/// The structure of `raw`.
#[must_use]
pub fn parse(raw: &[u8]) -> Part {
    parse_at(raw, 0, 0).unwrap_or_else(|| Part {
        header: 0..super::message::header_end(raw),
        body: super::message::header_end(raw)..raw.len(),
        ctype: "text".into(),
        subtype: "plain".into(),
        params: vec![("charset".into(), "us-ascii".into())],
        id: None,
        description: None,
        encoding: "7bit".into(),
        disposition: None,
        lines: count_lines(raw),
        kind: Kind::Leaf,
    })
}

fn count_lines(b: &[u8]) -> usize {
    b.iter().filter(|&&c| c == b'\n').count()
}

fn parse_at(raw: &[u8], base: usize, depth: usize) -> Option<Part> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let message = MessageParser::default().parse(raw)?;
        Some(build(&message, 0, raw, base, depth))
    }))
    .ok()
    .flatten()
}

fn build(
    message: &mail_parser::Message<'_>,
    id: usize,
    raw: &[u8],
    base: usize,
    depth: usize,
) -> Part {
    let p = &message.parts[id];
    let clamp = |n: u32| (n as usize).min(raw.len());
    let header = clamp(p.offset_header)..clamp(p.offset_body);
    let body = clamp(p.offset_body)..clamp(p.offset_end).max(clamp(p.offset_body));
    let (ctype, subtype, params) = match p.content_type() {
        Some(ct) => (
            ct.ctype().to_ascii_lowercase(),
            ct.subtype()
                .map_or_else(|| "plain".to_owned(), str::to_ascii_lowercase),
            ct.attributes()
                .map(|a| {
                    a.iter()
                        .map(|at| (at.name.to_string(), at.value.to_string()))
                        .collect()
                })
                .unwrap_or_default(),
        ),
        None if matches!(p.body, PartType::Message(_)) => {
            ("message".into(), "rfc822".into(), Vec::new())
        }
        None => (
            "text".into(),
            "plain".into(),
            vec![("charset".into(), "us-ascii".into())],
        ),
    };
    let encoding = p
        .headers
        .iter()
        .find(|h| {
            h.name
                .as_str()
                .eq_ignore_ascii_case("Content-Transfer-Encoding")
        })
        .and_then(|h| h.value.as_text().map(|t| t.trim().to_ascii_lowercase()))
        .unwrap_or_else(|| "7bit".to_owned());
    let disposition = p.content_disposition().map(|d| {
        (
            d.ctype().to_ascii_lowercase(),
            d.attributes()
                .map(|a| {
                    a.iter()
                        .map(|at| (at.name.to_string(), at.value.to_string()))
                        .collect()
                })
                .unwrap_or_default(),
        )
    });
    let kind = match &p.body {
        PartType::Multipart(children) if depth < MAX_DEPTH => Kind::Multi(
            children
                .iter()
                .map(|&c| build(message, c as usize, raw, base, depth + 1))
                .collect(),
        ),
        PartType::Message(_) if depth < MAX_DEPTH => {
            match parse_at(&raw[body.clone()], base + body.start, depth + 1) {
                Some(inner) => Kind::Message(Box::new(inner)),
                None => Kind::Leaf,
            }
        }
        _ => Kind::Leaf,
    };
    Part {
        header: header.start + base..header.end + base,
        body: body.start + base..body.end + base,
        ctype,
        subtype,
        params,
        id: p.content_id().map(str::to_owned),
        description: p.content_description().map(str::to_owned),
        encoding,
        disposition,
        lines: count_lines(&raw[body]),
        kind,
    }
}

/// What a numbered section asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SectionKind {
    /// `BODY[1.2]`: the part's body.
    Body,
    /// `BODY[1.2.MIME]`: the part's own header.
    Mime,
    /// `BODY[3.HEADER]`: the header of an enclosed message.
    Header,
    /// `BODY[3.TEXT]`: the body of an enclosed message.
    Text,
}

impl Part {
    /// The part at `path` (`[1, 2]` for `1.2`).
    #[must_use]
    pub fn find(&self, path: &[u32]) -> Option<&Part> {
        let Some((&n, rest)) = path.split_first() else {
            return Some(self);
        };
        let index = usize::try_from(n).ok()?.checked_sub(1)?;
        let next = match &self.kind {
            Kind::Multi(children) => children.get(index)?,
            Kind::Message(inner) => match &inner.kind {
                Kind::Multi(children) => children.get(index)?,
                _ if index == 0 => inner,
                _ => return None,
            },
            Kind::Leaf if index == 0 => self,
            Kind::Leaf => return None,
        };
        if std::ptr::eq(next, self) && !rest.is_empty() {
            return None;
        }
        next.find(rest)
    }

    /// The bytes of `kind` of this part.
    #[must_use]
    pub fn bytes<'r>(&self, raw: &'r [u8], kind: SectionKind) -> &'r [u8] {
        let range = match (kind, &self.kind) {
            (SectionKind::Body, _) => self.body.clone(),
            (SectionKind::Mime, _) => self.header.clone(),
            (SectionKind::Header, Kind::Message(inner)) => inner.header.clone(),
            (SectionKind::Text, Kind::Message(inner)) => inner.body.clone(),
            _ => 0..0,
        };
        raw.get(range).unwrap_or_default()
    }

    /// BODYSTRUCTURE (with `extended`) or BODY.
    #[must_use]
    pub fn structure(&self, raw: &[u8], extended: bool) -> BodyStructure<'static> {
        if let Kind::Multi(children) = &self.kind
            && let Ok(bodies) = Vec1::try_from(
                children
                    .iter()
                    .map(|c| c.structure(raw, extended))
                    .collect::<Vec<_>>(),
            )
        {
            return BodyStructure::Multi {
                bodies,
                subtype: istr(&self.subtype),
                extension_data: extended.then(|| {
                    imap_next::imap_types::body::MultiPartExtensionData {
                        parameter_list: self.param_list(),
                        tail: Some(self.disposition_data()),
                    }
                }),
            };
        }
        let lines = u32::try_from(self.lines).unwrap_or(u32::MAX);
        let specific = match (&self.kind, self.ctype.as_str()) {
            (Kind::Message(inner), _) => SpecificFields::Message {
                envelope: Box::new(envelope(raw.get(inner.header.clone()).unwrap_or_default())),
                body_structure: Box::new(inner.structure(raw, extended)),
                number_of_lines: lines,
            },
            (_, "text") => SpecificFields::Text {
                subtype: istr(&self.subtype),
                number_of_lines: lines,
            },
            _ => SpecificFields::Basic {
                r#type: istr(&self.ctype),
                subtype: istr(&self.subtype),
            },
        };
        BodyStructure::Single {
            body: Body {
                basic: BasicFields {
                    parameter_list: self.param_list(),
                    id: nstr(self.id.as_deref()),
                    description: nstr(self.description.as_deref()),
                    content_transfer_encoding: istr(&self.encoding),
                    size: u32::try_from(self.body.len()).unwrap_or(u32::MAX),
                },
                specific,
            },
            extension_data: extended.then(|| SinglePartExtensionData {
                md5: NString(None),
                tail: Some(self.disposition_data()),
            }),
        }
    }

    fn param_list(&self) -> Vec<(IString<'static>, IString<'static>)> {
        self.params
            .iter()
            .map(|(k, v)| (istr(k), istr(v)))
            .collect()
    }

    fn disposition_data(&self) -> Disposition<'static> {
        Disposition {
            disposition: self.disposition.as_ref().map(|(kind, params)| {
                (
                    istr(kind),
                    params.iter().map(|(k, v)| (istr(k), istr(v))).collect(),
                )
            }),
            tail: None,
        }
    }
}

/// A string for IMAP: quoted when it can be, a literal otherwise.
fn istr(s: &str) -> IString<'static> {
    IString::try_from(s.to_owned()).unwrap_or_else(|_| {
        IString::try_from(s.replace('\0', ""))
            .unwrap_or_else(|_| IString::try_from("").expect("empty"))
    })
}

fn nstr(s: Option<&str>) -> NString<'static> {
    NString(s.map(istr))
}

/// RFC 2047-encodes `s` when it is not ASCII (ENVELOPE carries header values as they were).
fn encoded(s: &str) -> String {
    if s.is_ascii() {
        s.to_owned()
    } else {
        format!("=?utf-8?b?{}?=", crate::encoding::base64(s.as_bytes()))
    }
}

/// ENVELOPE of the message whose header is `header`.
#[must_use]
pub fn envelope(header: &[u8]) -> Envelope<'static> {
    let parsed = std::panic::catch_unwind(|| {
        let m = MessageParser::default().parse_headers(header)?;
        let raw = |name: &str| {
            m.header_raw(name)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        let list = |a: Option<&mail_parser::Address<'_>>| -> Vec<Address<'static>> {
            a.map(|a| {
                a.iter()
                    .map(|addr| {
                        let email = addr.address().unwrap_or_default();
                        let (mailbox, host) = email.rsplit_once('@').unwrap_or((email, ""));
                        Address {
                            name: nstr(addr.name().map(encoded).as_deref()),
                            adl: NString(None),
                            mailbox: nstr(Some(mailbox)),
                            host: nstr(Some(host)),
                        }
                    })
                    .collect()
            })
            .unwrap_or_default()
        };
        let from = list(m.from());
        let sender = list(m.sender());
        let reply_to = list(m.reply_to());
        Some(Envelope {
            date: nstr(raw("Date").as_deref()),
            subject: nstr(raw("Subject").as_deref()),
            sender: if sender.is_empty() {
                from.clone()
            } else {
                sender
            },
            reply_to: if reply_to.is_empty() {
                from.clone()
            } else {
                reply_to
            },
            from,
            to: list(m.to()),
            cc: list(m.cc()),
            bcc: list(m.bcc()),
            in_reply_to: nstr(raw("In-Reply-To").as_deref()),
            message_id: nstr(raw("Message-ID").as_deref()),
        })
    });
    parsed.ok().flatten().unwrap_or(Envelope {
        date: NString(None),
        subject: NString(None),
        from: Vec::new(),
        sender: Vec::new(),
        reply_to: Vec::new(),
        to: Vec::new(),
        cc: Vec::new(),
        bcc: Vec::new(),
        in_reply_to: NString(None),
        message_id: NString(None),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAIL: &[u8] = b"From: Amt <amt@stadt.test>\r\nTo: anna@stadt.test\r\nSubject: Test\r\n\
MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b\"\r\n\r\n--b\r\n\
Content-Type: text/plain; charset=utf-8\r\n\r\nHallo\r\n--b\r\nContent-Type: message/rfc822\r\n\r\n\
Subject: Innen\r\nContent-Type: multipart/alternative; boundary=\"c\"\r\n\r\n--c\r\n\
Content-Type: text/plain\r\n\r\ninnen text\r\n--c\r\nContent-Type: text/html\r\n\r\n<p>innen</p>\r\n--c--\r\n\
\r\n--b\r\nContent-Type: application/pdf; name=\"a.pdf\"\r\nContent-Disposition: attachment; filename=\"a.pdf\"\r\n\
Content-Transfer-Encoding: base64\r\n\r\nJVBERi0=\r\n--b--\r\n";

    fn text(b: &[u8]) -> String {
        String::from_utf8_lossy(b).into_owned()
    }

    #[test]
    fn numbered_sections_find_their_bytes() {
        let root = parse(MAIL);
        let body = |path: &[u32], kind| text(root.find(path).expect("part").bytes(MAIL, kind));
        assert!(body(&[1], SectionKind::Body).starts_with("Hallo"));
        assert!(body(&[1], SectionKind::Mime).starts_with("Content-Type: text/plain"));
        assert!(body(&[2], SectionKind::Header).starts_with("Subject: Innen"));
        assert!(body(&[2, 1], SectionKind::Body).starts_with("innen text"));
        assert!(body(&[2, 2], SectionKind::Body).starts_with("<p>innen</p>"));
        assert!(body(&[3], SectionKind::Body).starts_with("JVBERi0="));
        assert!(root.find(&[4]).is_none());
        // A leaf is its own part 1 (as for a single-part message), and nothing below that.
        assert!(std::ptr::eq(
            root.find(&[1, 1]).expect("1.1"),
            root.find(&[1]).expect("1")
        ));
        assert!(root.find(&[1, 2]).is_none());
    }

    #[test]
    fn a_single_part_message_is_part_one() {
        let raw = b"Subject: x\r\n\r\nbody\r\n";
        let root = parse(raw);
        assert_eq!(
            text(
                root.find(&[1])
                    .expect("part 1")
                    .bytes(raw, SectionKind::Body)
            ),
            "body\r\n"
        );
    }

    #[test]
    fn envelope_defaults_sender_and_reply_to_to_from() {
        let e =
            envelope(b"From: Amt <amt@stadt.test>\r\nSubject: Test\r\nMessage-ID: <x@y>\r\n\r\n");
        assert_eq!(e.from.len(), 1);
        assert_eq!(e.sender, e.from);
        assert_eq!(e.reply_to, e.from);
        assert_eq!(e.message_id, nstr(Some("<x@y>")));
    }
}
