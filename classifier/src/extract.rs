//! Turning a message into the text a reader would see, part by part.
//!
//! Headers (subject and display names), every text part decoded (mail-parser handles
//! quoted-printable, base64 and charsets), HTML as text, and attachments: text, CSV, PDF,
//! Office Open XML and OpenDocument, ZIP archives and nested messages, each within the
//! limits of [`Inspect`].
//!
//! Whatever cannot be read — encrypted content (S/MIME, PGP, password-protected PDF or ZIP),
//! an unparseable part, an extraction error, a limit reached — becomes a [`Problem`]; the
//! classifier turns each into an `uninspectable` finding, so the message fails closed.

mod archive;
mod flowed;
mod header;
pub mod html;
mod office;
mod pdf;

use mail_parser::decoders::base64::base64_decode;
use mail_parser::decoders::quoted_printable::quoted_printable_decode;
use mail_parser::{Encoding, Message, MessageParser, MessagePart, MimeHeaders, PartType};

use crate::rules::Inspect;
use crate::verdict::Location;

/// A piece of readable text and where it came from.
#[derive(Debug, Clone)]
pub struct Segment {
    /// Where.
    pub location: Location,
    /// The text.
    pub text: String,
}

/// Something that could not be inspected, and why.
#[derive(Debug, Clone)]
pub struct Problem {
    /// Where.
    pub location: Location,
    /// A short reason, shown as the finding's hint.
    pub reason: String,
}

/// Everything extracted from one message.
#[derive(Debug, Default)]
pub struct Extracted {
    /// Readable text.
    pub segments: Vec<Segment>,
    /// Raw header fields `(location, name, value)` of the message and nested messages, for
    /// the sensitivity-label detectors.
    pub headers: Vec<(Location, String, String)>,
    /// What could not be inspected.
    pub problems: Vec<Problem>,
}

/// Extracts everything readable from `raw`.
///
/// Never panics: the third-party parsers underneath (mail-parser, lopdf, zip) have panicked
/// on malformed input (mail-parser 0.11.9 on nested `message/rfc822` parts), and a panic
/// must not take classification down. It makes the message uninspectable instead.
#[must_use]
pub fn extract(raw: &[u8], limits: &Inspect) -> Extracted {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        extract_unguarded(raw, limits)
    }))
    .unwrap_or_else(|_| Extracted {
        problems: vec![Problem {
            location: Location::default(),
            reason: "parser failure on malformed content".to_owned(),
        }],
        ..Extracted::default()
    })
}

fn extract_unguarded(raw: &[u8], limits: &Inspect) -> Extracted {
    let mut x = Extractor {
        limits,
        out: Extracted::default(),
        text_bytes: 0,
        parts: 0,
    };
    match MessageParser::default().parse(raw) {
        Some(message) => x.message(&message, 0, "", &Location::default()),
        None => x.problem(&Location::default(), "unparseable message"),
    }
    x.out
}

struct Extractor<'a> {
    limits: &'a Inspect,
    out: Extracted,
    text_bytes: usize,
    parts: usize,
}

/// What an attachment is, decided from its MIME type and file name.
enum Kind {
    Text,
    Html,
    Pdf,
    Office,
    Zip,
    Message,
    Encrypted(&'static str),
    Signature,
    Image,
    Opaque,
}

fn kind(mime: &str, name: &str) -> Kind {
    let ext = name
        .rsplit_once('.')
        .map(|(_, e)| e.to_ascii_lowercase())
        .unwrap_or_default();
    let mime = mime.to_ascii_lowercase();
    match (mime.as_str(), ext.as_str()) {
        (m, _) if m.contains("pkcs7-mime") => Kind::Encrypted("S/MIME encrypted"),
        (_, "p7m") => Kind::Encrypted("S/MIME encrypted"),
        ("application/pgp-encrypted", _) | (_, "pgp" | "gpg") => Kind::Encrypted("PGP encrypted"),
        (m, _) if m.contains("pkcs7-signature") || m == "application/pgp-signature" => {
            Kind::Signature
        }
        (_, "p7s" | "sig") => Kind::Signature,
        ("text/html", _) | (_, "html" | "htm") => Kind::Html,
        ("application/pdf", _) | (_, "pdf") => Kind::Pdf,
        (
            _,
            "docx" | "docm" | "dotx" | "xlsx" | "xlsm" | "pptx" | "pptm" | "odt" | "ods" | "odp"
            | "ott",
        ) => Kind::Office,
        (m, _)
            if m.starts_with("application/vnd.openxmlformats-officedocument")
                || m.starts_with("application/vnd.oasis.opendocument") =>
        {
            Kind::Office
        }
        ("application/zip" | "application/x-zip-compressed", _) | (_, "zip") => Kind::Zip,
        ("message/rfc822", _) | (_, "eml") => Kind::Message,
        (m, _) if m.starts_with("text/") => Kind::Text,
        (_, "txt" | "csv" | "tsv" | "json" | "xml" | "ics" | "vcf" | "md" | "log") => Kind::Text,
        (m, _) if m.starts_with("image/") => Kind::Image,
        (_, "png" | "jpg" | "jpeg" | "gif" | "bmp" | "tif" | "tiff" | "webp" | "heic") => {
            Kind::Image
        }
        _ => Kind::Opaque,
    }
}

impl Extractor<'_> {
    fn problem(&mut self, location: &Location, reason: &str) {
        self.out.problems.push(Problem {
            location: location.clone(),
            reason: reason.to_owned(),
        });
    }

    fn text(&mut self, location: &Location, text: String) {
        if text.contains("-----BEGIN PGP MESSAGE-----") {
            self.problem(location, "PGP encrypted");
        }
        self.text_bytes += text.len();
        if self.text_bytes > self.limits.max_text_bytes {
            // Reported once; the text itself is still scanned up to here.
            if self.text_bytes - text.len() <= self.limits.max_text_bytes {
                self.problem(location, "limit reached: too much text to inspect");
            }
            return;
        }
        self.out.segments.push(Segment {
            location: location.clone(),
            text,
        });
    }

    fn message(&mut self, message: &Message<'_>, depth: usize, path: &str, at: &Location) {
        if depth > self.limits.max_depth {
            return self.problem(at, "limit reached: messages nested too deeply");
        }
        // Each field from its raw bytes (not mail-parser's decoding, which decodes encoded
        // words one by one and turns undeclared 8-bit into U+FFFD).
        for field in message.headers() {
            let name = field.name().to_owned();
            let raw = message
                .raw_message
                .get(field.offset_start as usize..field.offset_end as usize)
                .unwrap_or_default();
            if header::carries_text(&name) {
                let location = Location {
                    header: Some(name.clone()),
                    ..at.clone()
                };
                self.text(&location, header::decode(raw));
            }
            let value = header::eight_bit(raw).trim().to_owned();
            self.out.headers.push((at.clone(), name, value));
        }
        self.part(message, 0, path, at, depth);
    }

    fn part(&mut self, message: &Message<'_>, id: u32, path: &str, at: &Location, depth: usize) {
        self.parts += 1;
        if self.parts > self.limits.max_parts {
            if self.parts == self.limits.max_parts + 1 {
                self.problem(at, "limit reached: too many MIME parts");
            }
            return;
        }
        let Some(part) = message.part(id) else {
            return self.problem(at, "unparseable MIME structure");
        };
        let part_path = if path.is_empty() {
            "1".to_owned()
        } else {
            path.to_owned()
        };
        let name = part.attachment_name().map(str::to_owned);
        let location = Location {
            part: Some(part_path.clone()),
            attachment: join(at.attachment.as_deref(), name.as_deref()),
            header: None,
            offset: None,
        };
        if part.is_encoding_problem {
            return self.problem(&location, "undecodable part");
        }
        // A file name leaves with the message and is shown by every client.
        if let Some(name) = &name {
            let named = Location {
                header: Some("filename".to_owned()),
                ..location.clone()
            };
            // "Bescheid_SteuerID_86095742719.png": an underscore separates words in a name.
            self.text(&named, name.replace('_', " "));
        }
        let mime = part
            .content_type()
            .map(|ct| format!("{}/{}", ct.c_type, ct.c_subtype.as_deref().unwrap_or("")))
            .unwrap_or_default();
        match &part.body {
            // From the part's own bytes: mail-parser turns undeclared 8-bit and unknown
            // charsets into U+FFFD and does not know UTF-16.
            PartType::Text(text) => {
                let mut text = body_text(message, part).unwrap_or_else(|| text.to_string());
                if parameter_is(part, "format", "flowed") {
                    text = flowed::unwrap(&text, parameter_is(part, "delsp", "yes"));
                }
                self.text(&location, text);
            }
            PartType::Html(html) => {
                let html = body_text(message, part).unwrap_or_else(|| html.to_string());
                self.text(&location, html::to_text(&html));
            }
            PartType::Binary(bytes) | PartType::InlineBinary(bytes) => {
                self.blob(
                    bytes,
                    &mime,
                    name.as_deref().unwrap_or(""),
                    &location,
                    depth,
                );
            }
            PartType::Message(nested) => {
                let nested_at = Location {
                    attachment: join(location.attachment.as_deref(), Some("message")),
                    ..location.clone()
                };
                self.message(nested, depth + 1, &part_path, &nested_at);
            }
            PartType::Multipart(children) => {
                if mime.eq_ignore_ascii_case("multipart/encrypted") {
                    return self.problem(&location, "PGP/MIME or S/MIME encrypted");
                }
                for (i, child) in children.iter().enumerate() {
                    let child_path = if path.is_empty() {
                        (i + 1).to_string()
                    } else {
                        format!("{path}.{}", i + 1)
                    };
                    self.part(message, *child, &child_path, at, depth);
                }
            }
        }
    }

    /// An attachment or archive entry.
    fn blob(&mut self, bytes: &[u8], mime: &str, name: &str, at: &Location, depth: usize) {
        if bytes.len() > self.limits.max_entry_size {
            return self.problem(at, "limit reached: attachment too large to inspect");
        }
        match kind(mime, name) {
            Kind::Text => self.text(at, decode_text(bytes, None)),
            Kind::Html => self.text(at, html::to_text(&decode_text(bytes, None))),
            Kind::Pdf => match pdf::text(bytes, self.limits) {
                Ok(pdf::Pdf::Text(text)) => self.text(at, text),
                Ok(pdf::Pdf::ImagesOnly) => {
                    if self.limits.images_sensitive {
                        self.problem(at, "PDF without text (scanned image)");
                    }
                }
                Err(reason) => self.problem(at, &reason),
            },
            Kind::Office => match office::text(bytes, self.limits) {
                Ok((text, embedded)) => {
                    self.text(at, text);
                    for (entry, data) in embedded {
                        self.nested(&data, "", &entry, at, depth);
                    }
                }
                Err(reason) => self.problem(at, &reason),
            },
            Kind::Zip => match archive::entries(bytes, self.limits) {
                Ok(entries) => {
                    for entry in entries {
                        match entry {
                            Ok((entry_name, data)) => {
                                self.nested(&data, "", &entry_name, at, depth)
                            }
                            Err((entry_name, reason)) => {
                                let loc = Location {
                                    attachment: join(at.attachment.as_deref(), Some(&entry_name)),
                                    ..at.clone()
                                };
                                self.problem(&loc, &reason);
                            }
                        }
                    }
                }
                Err(reason) => self.problem(at, &reason),
            },
            Kind::Message => {
                if depth + 1 > self.limits.max_depth {
                    return self.problem(at, "limit reached: messages nested too deeply");
                }
                match MessageParser::default().parse(bytes) {
                    Some(message) => {
                        self.message(&message, depth + 1, at.part.as_deref().unwrap_or(""), at)
                    }
                    None => self.problem(at, "unparseable attached message"),
                }
            }
            Kind::Encrypted(reason) => self.problem(at, reason),
            Kind::Signature => {}
            Kind::Image => {
                if self.limits.images_sensitive {
                    self.problem(at, "image");
                }
            }
            Kind::Opaque => {
                if self.limits.opaque_attachments_sensitive {
                    self.problem(at, "attachment type cannot be inspected");
                }
            }
        }
    }

    /// A file inside a container: one level deeper.
    fn nested(&mut self, data: &[u8], mime: &str, name: &str, at: &Location, depth: usize) {
        let loc = Location {
            attachment: join(at.attachment.as_deref(), Some(name)),
            ..at.clone()
        };
        if depth + 1 > self.limits.max_depth {
            return self.problem(&loc, "limit reached: archives nested too deeply");
        }
        self.blob(data, mime, name, &loc, depth + 1);
    }
}

fn join(outer: Option<&str>, inner: Option<&str>) -> Option<String> {
    match (outer, inner) {
        (Some(o), Some(i)) => Some(format!("{o}/{i}")),
        (Some(o), None) => Some(o.to_owned()),
        (None, Some(i)) => Some(i.to_owned()),
        (None, None) => None,
    }
}

/// Whether the part's Content-Type parameter `name` is `value` (case-insensitive).
fn parameter_is(part: &MessagePart<'_>, name: &str, value: &str) -> bool {
    part.content_type()
        .and_then(|ct| ct.attribute(name))
        .is_some_and(|v| v.trim().eq_ignore_ascii_case(value))
}

/// A text part's body, transfer-decoded from the message's bytes and read by
/// [`decode_text`] with its declared charset; `None` when the bytes cannot be had.
fn body_text(message: &Message<'_>, part: &MessagePart<'_>) -> Option<String> {
    let raw = message
        .raw_message
        .get(part.offset_body as usize..part.offset_end as usize)?;
    let bytes = match part.encoding {
        Encoding::None => raw.to_vec(),
        Encoding::QuotedPrintable => quoted_printable_decode(raw)?,
        Encoding::Base64 => base64_decode(raw)?,
    };
    let charset = part.content_type().and_then(|ct| ct.attribute("charset"));
    Some(decode_text(&bytes, charset))
}

/// Text bytes as a mail client reads them: a byte-order mark wins (UTF-32, UTF-16 — "Unicode
/// text" from spreadsheet programs — or UTF-8); then a declared UTF-16/32 or other known
/// charset; otherwise (none declared, `unknown-8bit`, an unknown name) UTF-8 when valid, else
/// Windows-1252. Never U+FFFD for a byte a client would show.
fn decode_text(bytes: &[u8], charset: Option<&str>) -> String {
    let declared = charset.map(|c| c.trim().to_ascii_lowercase());
    if let Some(rest) = bytes.strip_prefix(b"\xFF\xFE\x00\x00") {
        return utf32(rest, u32::from_le_bytes);
    }
    if let Some(rest) = bytes.strip_prefix(b"\x00\x00\xFE\xFF") {
        return utf32(rest, u32::from_be_bytes);
    }
    if let Some(rest) = bytes.strip_prefix(b"\xFF\xFE") {
        return utf16(rest, u16::from_le_bytes);
    }
    if let Some(rest) = bytes.strip_prefix(b"\xFE\xFF") {
        return utf16(rest, u16::from_be_bytes);
    }
    if let Some(rest) = bytes.strip_prefix(b"\xEF\xBB\xBF") {
        return header::eight_bit(rest);
    }
    match declared.as_deref() {
        Some("utf-16" | "utf-16be") => utf16(bytes, u16::from_be_bytes),
        Some("utf-16le") => utf16(bytes, u16::from_le_bytes),
        Some("utf-32" | "utf-32be") => utf32(bytes, u32::from_be_bytes),
        Some("utf-32le") => utf32(bytes, u32::from_le_bytes),
        Some(charset) => header::in_charset(charset, bytes),
        None => header::eight_bit(bytes),
    }
}

fn utf16(bytes: &[u8], unit: fn([u8; 2]) -> u16) -> String {
    let units = bytes.chunks_exact(2).map(|c| unit([c[0], c[1]]));
    char::decode_utf16(units)
        .map(|c| c.unwrap_or(char::REPLACEMENT_CHARACTER))
        .collect()
}

fn utf32(bytes: &[u8], unit: fn([u8; 4]) -> u32) -> String {
    bytes
        .chunks_exact(4)
        .map(|c| {
            char::from_u32(unit([c[0], c[1], c[2], c[3]])).unwrap_or(char::REPLACEMENT_CHARACTER)
        })
        .collect()
}
