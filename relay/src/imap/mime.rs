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
    let part_header = &raw[header.clone()];
    let raw_field = |name: &str| super::message::field(part_header, name);
    // Parameters and descriptions as the message has them, 7-bit (see `params`); only the
    // type and subtype come from mail-parser, which knows the defaults (digest parts).
    let (ctype, subtype, param_list) = match p.content_type() {
        Some(ct) => (
            ct.ctype().to_ascii_lowercase(),
            ct.subtype()
                .map_or_else(|| "plain".to_owned(), str::to_ascii_lowercase),
            raw_field("Content-Type")
                .map(|v| params(&v).1)
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
    let encoding = raw_field("Content-Transfer-Encoding")
        .map(|t| t.to_ascii_lowercase())
        .filter(|t| !t.is_empty())
        .unwrap_or_else(|| "7bit".to_owned());
    let disposition = raw_field("Content-Disposition")
        .filter(|v| !v.is_empty())
        .map(|v| {
            let (kind, list) = params(&v);
            (seven_bit(&kind.to_ascii_lowercase()), list)
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
        params: param_list,
        id: raw_field("Content-ID")
            .filter(|v| !v.is_empty())
            .map(|v| seven_bit(&v)),
        description: raw_field("Content-Description")
            .filter(|v| !v.is_empty())
            .map(|v| seven_bit(&v)),
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
    /// The part at `path` (`[1, 2]` for `1.2`) of the message whose root this is: the
    /// children of a multipart root, else the root itself as part 1 (RFC 3501 §6.4.5 — so for
    /// a message whose type is message/rfc822, `1` is the whole attached message).
    #[must_use]
    pub fn find(&self, path: &[u32]) -> Option<&Part> {
        let Some((&n, rest)) = path.split_first() else {
            return Some(self);
        };
        let index = usize::try_from(n).ok()?.checked_sub(1)?;
        match &self.kind {
            Kind::Multi(children) => children.get(index)?.descend(rest),
            _ if index == 0 => self.descend(rest),
            _ => None,
        }
    }

    /// The part at `path` below this (already numbered) part: the children of a multipart,
    /// the parts of an enclosed message (numbered as in its own root), and a leaf as its own
    /// part 1.
    fn descend(&self, path: &[u32]) -> Option<&Part> {
        let Some((&n, rest)) = path.split_first() else {
            return Some(self);
        };
        let index = usize::try_from(n).ok()?.checked_sub(1)?;
        match &self.kind {
            Kind::Multi(children) => children.get(index)?.descend(rest),
            Kind::Message(inner) => inner.find(path),
            Kind::Leaf if index == 0 && rest.is_empty() => Some(self),
            Kind::Leaf => None,
        }
    }

    /// The Content-Transfer-Encoding, lower case (`7bit` when there is none).
    #[must_use]
    pub fn encoding(&self) -> &str {
        &self.encoding
    }

    /// Whether this part is a leaf: neither multipart nor an enclosed message.
    #[must_use]
    pub fn is_leaf(&self) -> bool {
        matches!(self.kind, Kind::Leaf)
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

/// `s` in 7 bits: as it is when ASCII, else RFC 2047-encoded (UTF-8, base64). A client that
/// did not enable UTF8=ACCEPT must not get raw 8-bit strings (RFC 6855 §3).
fn seven_bit(s: &str) -> String {
    if s.is_ascii() {
        s.to_owned()
    } else {
        format!("=?utf-8?b?{}?=", crate::encoding::base64(s.as_bytes()))
    }
}

/// The value before the first `;` and the parameters of a Content-Type or
/// Content-Disposition value (RFC 2045 §5.1), as the message has them: quoted strings
/// unquoted, encoded words kept as sent, RFC 2231 continuations merged and their
/// `charset'lang'%XX` values re-encoded as one RFC 2047 word, raw 8-bit values encoded.
#[must_use]
pub fn params(value: &str) -> (String, Vec<(String, String)>) {
    let mut pieces: Vec<String> = vec![String::new()];
    let mut quoted = false;
    let mut escaped = false;
    for c in value.chars() {
        let last = pieces.last_mut().expect("one piece at least");
        if escaped {
            last.push(c);
            escaped = false;
        } else if quoted && c == '\\' {
            escaped = true;
        } else if c == '"' {
            quoted = !quoted;
            last.push(c);
        } else if c == ';' && !quoted {
            pieces.push(String::new());
        } else {
            last.push(c);
        }
    }
    let head = pieces.remove(0).trim().to_owned();
    // name → (section, extended, value), in order of first appearance.
    let mut order: Vec<String> = Vec::new();
    let mut sections: std::collections::HashMap<String, Vec<(u32, bool, String)>> =
        std::collections::HashMap::new();
    for piece in pieces {
        let Some((name, v)) = piece.split_once('=') else {
            continue;
        };
        let name = name.trim().to_ascii_lowercase();
        let v = v.trim();
        let v = v
            .strip_prefix('"')
            .and_then(|v| v.strip_suffix('"'))
            .unwrap_or(v)
            .to_owned();
        if name.is_empty() {
            continue;
        }
        let (base, section, extended) = match name.split_once('*') {
            None => (name.clone(), 0, false),
            Some((base, "")) => (base.to_owned(), 0, true),
            Some((base, rest)) => {
                let (num, ext) = match rest.strip_suffix('*') {
                    Some(num) => (num, true),
                    None => (rest, false),
                };
                (base.to_owned(), num.parse().unwrap_or(0), ext)
            }
        };
        if !sections.contains_key(&base) {
            order.push(base.clone());
        }
        sections
            .entry(base)
            .or_default()
            .push((section, extended, v));
    }
    let list = order
        .into_iter()
        .map(|name| {
            let mut parts = sections.remove(&name).unwrap_or_default();
            parts.sort_by_key(|p| p.0);
            let value = if parts.iter().any(|p| p.1) {
                let mut charset = String::new();
                let mut bytes = Vec::new();
                for (i, (_, extended, v)) in parts.iter().enumerate() {
                    let mut v = v.as_str();
                    if i == 0 && *extended {
                        let mut it = v.splitn(3, '\'');
                        if let (Some(cs), Some(_lang), Some(rest)) =
                            (it.next(), it.next(), it.next())
                        {
                            charset = cs.to_owned();
                            v = rest;
                        }
                    }
                    if *extended {
                        bytes.extend(percent_decode(v));
                    } else {
                        bytes.extend_from_slice(v.as_bytes());
                    }
                }
                if bytes.is_ascii() {
                    String::from_utf8_lossy(&bytes).into_owned()
                } else {
                    let charset = if charset.is_empty() {
                        "utf-8"
                    } else {
                        &charset
                    };
                    format!("=?{charset}?b?{}?=", crate::encoding::base64(&bytes))
                }
            } else {
                let joined: String = parts.into_iter().map(|p| p.2).collect();
                seven_bit(&joined)
            };
            (name, value)
        })
        .collect();
    (head, list)
}

fn percent_decode(s: &str) -> Vec<u8> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && i + 2 < b.len()
            && let Ok(v) =
                u8::from_str_radix(std::str::from_utf8(&b[i + 1..i + 3]).unwrap_or("zz"), 16)
        {
            out.push(v);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    out
}

/// ENVELOPE of the message whose header is `header` (see [`super::envelope`]).
#[must_use]
pub fn envelope(header: &[u8]) -> imap_next::imap_types::envelope::Envelope<'static> {
    super::envelope::envelope(header)
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

    /// Issue #13: for a message whose type is message/rfc822, part 1 is the whole attached
    /// message and `1.HEADER`/`1.TEXT` its header and body; nested ones likewise.
    #[test]
    fn a_message_rfc822_message_is_its_own_part_one() {
        let raw = b"From: user@domain.org\r\nContent-Type: message/rfc822\r\n\r\n\
From: user2@domain.org\r\nContent-Type: message/rfc822\r\n\r\n\
From: sub@domain.org\r\nSubject: submsg\r\n\r\nHello world\r\n";
        let root = parse(raw);
        let get = |path: &[u32], kind| text(root.find(path).expect("part").bytes(raw, kind));
        assert!(get(&[1], SectionKind::Body).starts_with("From: user2@domain.org"));
        assert!(get(&[1], SectionKind::Header).starts_with("From: user2@domain.org"));
        assert!(get(&[1], SectionKind::Text).starts_with("From: sub@domain.org"));
        assert!(get(&[1, 1], SectionKind::Body).starts_with("From: sub@domain.org"));
        assert_eq!(get(&[1, 1, 1], SectionKind::Body), "Hello world\r\n");
        assert!(get(&[1, 1], SectionKind::Header).starts_with("From: sub@domain.org"));
        assert_eq!(get(&[1, 1], SectionKind::Text), "Hello world\r\n");
        let structure = format!("{:?}", root.structure(raw, true));
        assert!(structure.contains("submsg"), "{structure}");
    }

    /// Case 11 of the client reports: parameters and Content-Description stay 7-bit.
    #[test]
    fn bodystructure_parameters_stay_seven_bit() {
        let raw = include_bytes!("../../../tests/cases/imap/11-bodystructure-8bit-params.eml");
        let root = parse(raw);
        let part = root.find(&[2]).expect("part 2");
        assert_eq!(
            part.params,
            [
                ("charset".to_owned(), "utf-8".to_owned()),
                (
                    "name".to_owned(),
                    "=?iso-8859-1?Q?Termin=FCbersicht_M=E4rz.txt?=".to_owned()
                )
            ]
        );
        assert_eq!(
            part.description.as_deref(),
            Some("=?utf-8?Q?Termin=C3=BCbersicht?=")
        );
        let (kind, list) = part.disposition.clone().expect("disposition");
        assert_eq!(kind, "attachment");
        assert_eq!(list[0].1, "=?iso-8859-1?Q?Termin=FCbersicht_M=E4rz.txt?=");
        // RFC 2231 (continued, percent-encoded) and raw 8-bit values come re-encoded.
        let (_, list) = params(
            "attachment; filename*0*=utf-8''Termin%C3%BC; filename*1=bersicht.txt; size=3; title=\"Größe\"",
        );
        assert_eq!(
            list,
            [
                (
                    "filename".to_owned(),
                    format!(
                        "=?utf-8?b?{}?=",
                        crate::encoding::base64("Terminübersicht.txt".as_bytes())
                    )
                ),
                ("size".to_owned(), "3".to_owned()),
                (
                    "title".to_owned(),
                    format!(
                        "=?utf-8?b?{}?=",
                        crate::encoding::base64("Größe".as_bytes())
                    )
                ),
            ]
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
