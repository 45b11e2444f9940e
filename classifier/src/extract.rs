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
mod ical;
mod inline;
mod mime;
mod office;
mod params;
mod pdf;
mod sniff;

use mail_parser::decoders::base64::base64_decode;
use mail_parser::decoders::quoted_printable::quoted_printable_decode;
use mail_parser::{Encoding, Message, MessageParser, MessagePart, MimeHeaders, PartType};

use crate::ocr::{self, Ocr, OcrError};
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

/// Extracts everything readable from `raw`, without OCR.
#[must_use]
pub fn extract(raw: &[u8], limits: &Inspect) -> Extracted {
    extract_with(raw, limits, None)
}

/// Extracts everything readable from `raw`; images and image-only PDFs are read with `ocr`
/// when given (see [`crate::ocr`]).
///
/// Never panics: the third-party parsers underneath (mail-parser, lopdf, zip) have panicked
/// on malformed input (mail-parser 0.11.9 on nested `message/rfc822` parts), and a panic
/// must not take classification down. It makes the message uninspectable instead.
#[must_use]
pub fn extract_with(raw: &[u8], limits: &Inspect, ocr: Option<&dyn Ocr>) -> Extracted {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        extract_unguarded(raw, limits, ocr)
    }))
    .unwrap_or_else(|_| Extracted {
        problems: vec![Problem {
            location: Location::default(),
            reason: "parser failure on malformed content".to_owned(),
        }],
        ..Extracted::default()
    })
}

fn extract_unguarded(raw: &[u8], limits: &Inspect, ocr: Option<&dyn Ocr>) -> Extracted {
    let mut x = Extractor {
        limits,
        ocr,
        out: Extracted::default(),
        text_bytes: 0,
        parts: 0,
    };
    match MessageParser::default().parse(raw) {
        Some(message) => x.message(&message, raw.len(), 0, "", &Location::default()),
        None => x.problem(&Location::default(), "unparseable message"),
    }
    x.out
}

struct Extractor<'a> {
    limits: &'a Inspect,
    /// Reads images and image-only PDFs; `None`: not available.
    ocr: Option<&'a dyn Ocr>,
    out: Extracted,
    text_bytes: usize,
    parts: usize,
}

/// What an attachment is: by its bytes where they have a known signature, else by its
/// MIME type and file name.
enum Kind {
    Text,
    Html,
    Pdf,
    Office,
    Zip,
    Gzip,
    Message,
    Encrypted(&'static str),
    Signature,
    Image,
    /// A format we recognise but cannot open: fails closed with this reason.
    Unreadable(&'static str),
    Opaque,
}

fn kind(bytes: &[u8], mime: &str, name: &str) -> Kind {
    match sniff::format(bytes) {
        Some(sniff::Format::Pdf) => return Kind::Pdf,
        Some(sniff::Format::Office) => return Kind::Office,
        Some(sniff::Format::Zip) => return Kind::Zip,
        Some(sniff::Format::Gzip) => return Kind::Gzip,
        Some(sniff::Format::Image) => return Kind::Image,
        Some(sniff::Format::OtherArchive) => {
            return Kind::Unreadable("archive format that cannot be inspected");
        }
        Some(sniff::Format::Ole) => {
            return Kind::Unreadable("legacy Office or Outlook file (OLE) cannot be inspected");
        }
        None => {}
    }
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
        // Unlabelled (`application/octet-stream`, no known extension): text if it reads as
        // text, as an editor would open it.
        _ if sniff::is_text(bytes) => Kind::Text,
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

    /// A message (or an encapsulated one) whose entity ends at byte `end` of its
    /// `raw_message`.
    fn message(
        &mut self,
        message: &Message<'_>,
        end: usize,
        depth: usize,
        path: &str,
        at: &Location,
    ) {
        if depth > self.limits.max_depth {
            return self.problem(at, "limit reached: messages nested too deeply");
        }
        let structure = mime::structure(message, end);
        if !structure.agrees {
            self.problem(
                at,
                "ambiguous MIME structure (boundary lines not as RFC 2046 §5.1.1 defines them)",
            );
        }
        // Not shown by clients, but part of every copy of the message that leaves.
        for (what, start, end) in structure.unshown {
            let bytes = message.raw_message.get(start..end).unwrap_or_default();
            if bytes.iter().any(|b| !b.is_ascii_whitespace()) {
                let location = Location {
                    header: Some(what.to_owned()),
                    ..at.clone()
                };
                self.text(&location, header::eight_bit(bytes));
            }
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
        let name = file_name(message, part).or_else(|| part.attachment_name().map(str::to_owned));
        let location = Location {
            part: Some(part_path.clone()),
            attachment: join(at.attachment.as_deref(), name.as_deref()),
            header: None,
            offset: None,
        };
        // mail-parser also flags a last part without a close delimiter, which clients show
        // up to the end: decoded from the bytes, it is read; truly undecodable, it fails.
        if part.is_encoding_problem && body_bytes(message, part).is_none() {
            return self.problem(&location, "undecodable part");
        }
        // Part header fields with words (Content-Description, X-…) leave with the part.
        if id != 0 {
            for field in &part.headers {
                let name = field.name.as_str();
                if header::carries_text(name) {
                    let raw = message
                        .raw_message
                        .get(field.offset_start as usize..field.offset_end as usize)
                        .unwrap_or_default();
                    let at_field = Location {
                        header: Some(name.to_owned()),
                        ..location.clone()
                    };
                    self.text(&at_field, header::decode(raw));
                }
            }
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
            // charsets into U+FFFD and does not know UTF-16; and a label is not the content.
            PartType::Text(text) | PartType::Html(text) => {
                let is_html = matches!(part.body, PartType::Html(_));
                let Some(bytes) = body_bytes(message, part) else {
                    let text = if is_html {
                        html::to_text(text)
                    } else {
                        text.to_string()
                    };
                    return self.text(&location, text);
                };
                if sniff::format(&bytes).is_some() {
                    return self.blob(
                        &bytes,
                        &mime,
                        name.as_deref().unwrap_or(""),
                        &location,
                        depth,
                    );
                }
                let text = Text {
                    charset: part.content_type().and_then(|ct| ct.attribute("charset")),
                    html: is_html,
                    flowed: parameter_is(part, "format", "flowed")
                        .then(|| parameter_is(part, "delsp", "yes")),
                    mime: &mime,
                };
                self.read_text(&bytes, &text, &location, depth);
            }
            PartType::Binary(bytes) | PartType::InlineBinary(bytes) => {
                let decoded = part
                    .is_encoding_problem
                    .then(|| body_bytes(message, part))
                    .flatten();
                self.blob(
                    decoded.as_deref().unwrap_or(bytes),
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
                // Unencoded, the nested message shares the outer bytes and ends with this
                // part; decoded (base64), it has bytes of its own.
                let end = if std::ptr::eq(nested.raw_message.as_ptr(), message.raw_message.as_ptr())
                {
                    part.offset_end as usize
                } else {
                    nested.raw_message.len()
                };
                self.message(nested, end, depth + 1, &part_path, &nested_at);
            }
            PartType::Multipart(children) => {
                if mime.eq_ignore_ascii_case("multipart/encrypted") {
                    return self.problem(&location, "PGP/MIME or S/MIME encrypted");
                }
                // Inline text parts of a mixed multipart are shown one after another, so
                // they are read as one text: what runs across the seam ("Steuer-ID 86 095" |
                // "742 719") is one number, and each part keeps the context of the others.
                let shown_in_sequence = !mime.eq_ignore_ascii_case("multipart/alternative");
                // The segment that consecutive inline text parts are being joined into.
                let mut joining: Option<usize> = None;
                for (i, child) in children.iter().enumerate() {
                    let child_path = if path.is_empty() {
                        (i + 1).to_string()
                    } else {
                        format!("{path}.{}", i + 1)
                    };
                    let before = self.out.segments.len();
                    self.part(message, *child, &child_path, at, depth);
                    let joinable = shown_in_sequence
                        && self.out.segments.len() == before + 1
                        && self.out.segments[before].location.header.is_none()
                        && message.part(*child).is_some_and(is_inline_text);
                    if !joinable {
                        joining = None;
                        continue;
                    }
                    match joining {
                        Some(into) if into + 1 == before => {
                            let next = self.out.segments.pop().expect("one was added");
                            let joined = &mut self.out.segments[into];
                            // A part ending in a line break and the next beginning a new one
                            // are still read across ("Steuer-ID: 41 926⏎" | "170 381"): the
                            // whitespace between becomes one space. Cut inside a word, the
                            // halves join as they are.
                            let apart = joined.text.ends_with(char::is_whitespace)
                                || next.text.starts_with(char::is_whitespace);
                            if apart {
                                let kept = joined.text.trim_end().len();
                                joined.text.truncate(kept);
                                joined.text.push(' ');
                                joined.text.push_str(next.text.trim_start());
                            } else {
                                // Or the cut fell between two words whose space was lost
                                // ("in der" | "Personalangelegenheit" in a client's display):
                                // the lines at the seam are read apart too, after the text.
                                let seam = format!(
                                    "\n{} {}",
                                    joined.text.rsplit('\n').next().unwrap_or_default(),
                                    next.text.split('\n').next().unwrap_or_default()
                                );
                                joined.text.push_str(&next.text);
                                joined.text.push_str(&seam);
                            }
                            // Located as "1+2": the parts read together.
                            let part = format!(
                                "{}+{}",
                                joined.location.part.as_deref().unwrap_or_default(),
                                next.location.part.as_deref().unwrap_or_default()
                            );
                            joined.location.part = Some(part);
                        }
                        _ => joining = Some(before),
                    }
                }
            }
        }
    }

    /// An attachment or archive entry.
    fn blob(&mut self, bytes: &[u8], mime: &str, name: &str, at: &Location, depth: usize) {
        if bytes.len() > self.limits.max_entry_size {
            return self.problem(at, "limit reached: attachment too large to inspect");
        }
        let kind = kind(bytes, mime, name);
        match kind {
            Kind::Text | Kind::Html => {
                let text = Text {
                    charset: None,
                    html: matches!(kind, Kind::Html),
                    flowed: None,
                    mime,
                };
                self.read_text(bytes, &text, at, depth);
            }
            Kind::Gzip => match gunzip(bytes, self.limits.max_entry_size) {
                Ok((inner, data)) => {
                    // The name gzip stored (RFC 1952 FNAME), else the outer one without `.gz`.
                    let inner = inner.unwrap_or_else(|| {
                        let lower = name.to_ascii_lowercase();
                        lower
                            .strip_suffix(".gz")
                            .map(|stem| name[..stem.len()].to_owned())
                            .unwrap_or_default()
                    });
                    self.nested(&data, "", &inner, at, depth);
                }
                Err(reason) => self.problem(at, reason),
            },
            Kind::Unreadable(reason) => self.problem(at, reason),
            Kind::Pdf => match pdf::text(bytes, self.limits) {
                Ok(pdf::Pdf::Text(text)) => self.text(at, text),
                // Scanned pages: their text only through OCR; unread, the PDF fails closed.
                Ok(pdf::Pdf::ImagesOnly { text, pages }) => {
                    if !text.trim().is_empty() {
                        self.text(at, text);
                    }
                    match self
                        .ocr
                        .map_or(Err(OcrError::Unavailable), |o| o.pdf(bytes, &pages))
                    {
                        Ok(text) => self.text(at, text),
                        Err(error) => self.problem(at, &ocr::pdf_problem(&error)),
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
                    Some(message) => self.message(
                        &message,
                        bytes.len(),
                        depth + 1,
                        at.part.as_deref().unwrap_or(""),
                        at,
                    ),
                    None => self.problem(at, "unparseable attached message"),
                }
            }
            Kind::Encrypted(reason) => self.problem(at, reason),
            Kind::Signature => {}
            // Mostly logos and photos; a photographed or scanned document is read by OCR.
            // One OCR cannot read counts as `images_sensitive` says.
            Kind::Image => match self.ocr.map(|o| o.image(bytes)) {
                Some(Ok(text)) => self.text(at, text),
                Some(Err(error)) if self.limits.images_sensitive => {
                    self.problem(at, &format!("image; {error}"));
                }
                None if self.limits.images_sensitive => self.problem(at, "image"),
                _ => {}
            },
            Kind::Opaque => {
                if self.limits.opaque_attachments_sensitive {
                    self.problem(at, "attachment type cannot be inspected");
                }
            }
        }
    }

    /// A text part or text attachment: decoded as a client reads it, then what a client
    /// turns into something else — HTML rendered, a calendar or vCard shown as entries,
    /// uuencoded and yEnc blocks shown as attachments.
    fn read_text(&mut self, bytes: &[u8], how: &Text<'_>, at: &Location, depth: usize) {
        let wide = is_wide(bytes, how.charset);
        let calendar = how.mime.eq_ignore_ascii_case("text/calendar")
            || how.mime.eq_ignore_ascii_case("text/vcard")
            || how.mime.eq_ignore_ascii_case("text/x-vcard")
            || (!wide && ical::starts_calendar(bytes));
        // Calendar folds may split a character: unfold the bytes before decoding them.
        let unfolded;
        let bytes = if calendar && !wide {
            unfolded = ical::unfold_bytes(bytes);
            &unfolded[..]
        } else {
            bytes
        };
        let mut text = decode_text(bytes, how.charset);
        if let Some(delsp) = how.flowed {
            text = flowed::unwrap(&text, delsp);
        }
        // uuencode and yEnc are byte-oriented: read them from the bytes, unless the text
        // came in a 16- or 32-bit encoding.
        let source = if wide { text.as_bytes() } else { bytes };
        if inline::may_contain(source) {
            let files = inline::files(source, INLINE_FILES, self.limits.max_entry_size);
            self.files(files, at, depth);
        }
        if calendar || ical::is_calendar(&text) {
            let (entries, files) = ical::read(&text);
            self.text(at, entries);
            self.files(files, at, depth);
        } else if how.html {
            self.text(at, html::to_text(&text));
        } else {
            self.text(at, text);
        }
    }

    /// Files a text carries (uuencode, yEnc, calendar attachments), each one level deeper.
    fn files(&mut self, files: Vec<inline::InlineFile>, at: &Location, depth: usize) {
        for (file, data) in files {
            match data {
                Ok(data) => self.nested(&data, "", &file, at, depth),
                Err(reason) => self.problem(at, reason),
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

/// How to read a piece of text.
struct Text<'a> {
    /// The declared charset, if any.
    charset: Option<&'a str>,
    /// Render as HTML.
    html: bool,
    /// `format=flowed` (RFC 3676), with whether `DelSp=yes`.
    flowed: Option<bool>,
    /// The MIME type as labelled (`text/calendar` is read as a calendar).
    mime: &'a str,
}

/// The part's file name from its raw header bytes (RFC 2231 continuations joined before
/// charset decoding): Content-Disposition `filename`, else Content-Type `name`.
fn file_name(message: &Message<'_>, part: &MessagePart<'_>) -> Option<String> {
    let raw_value = |field: &str| {
        part.headers
            .iter()
            .find(|h| h.name.as_str().eq_ignore_ascii_case(field))
            .and_then(|h| {
                message
                    .raw_message
                    .get(h.offset_start as usize..h.offset_end as usize)
            })
    };
    raw_value("Content-Disposition")
        .and_then(|raw| params::parameter(raw, "filename"))
        .or_else(|| raw_value("Content-Type").and_then(|raw| params::parameter(raw, "name")))
        .filter(|name| !name.trim().is_empty())
}

/// Whether a part is text a client shows inline (no attachment disposition, no file name).
fn is_inline_text(part: &MessagePart<'_>) -> bool {
    matches!(part.body, PartType::Text(_) | PartType::Html(_))
        && part.attachment_name().is_none()
        && part
            .content_disposition()
            .is_none_or(|d| !d.c_type.eq_ignore_ascii_case("attachment"))
}

/// At most this many uuencoded or yEnc files in one text (more: fail closed).
const INLINE_FILES: usize = 32;

/// The gzip members' content (RFC 1952), at most `max` bytes, and the file name stored in
/// the first member's header.
fn gunzip(bytes: &[u8], max: usize) -> Result<(Option<String>, Vec<u8>), &'static str> {
    use std::io::Read;
    let mut out = Vec::new();
    let limit = u64::try_from(max).unwrap_or(u64::MAX).saturating_add(1);
    let mut decoder = flate2::read::MultiGzDecoder::new(bytes);
    (&mut decoder)
        .take(limit)
        .read_to_end(&mut out)
        .map_err(|_| "undecodable gzip file")?;
    if out.len() > max {
        return Err("limit reached: compressed file too large to inspect");
    }
    let name = decoder
        .header()
        .and_then(|h| h.filename())
        .map(header::eight_bit);
    Ok((name, out))
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

/// A text part's body, transfer-decoded from the message's own bytes; `None` when the
/// bytes cannot be had.
fn body_bytes(message: &Message<'_>, part: &MessagePart<'_>) -> Option<Vec<u8>> {
    let raw = message
        .raw_message
        .get(part.offset_body as usize..part.offset_end as usize)?;
    match part.encoding {
        Encoding::None => Some(raw.to_vec()),
        Encoding::QuotedPrintable => quoted_printable_decode(raw),
        Encoding::Base64 => base64_decode(raw),
    }
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

/// Whether [`decode_text`] reads `bytes` as UTF-16 or UTF-32 (not ASCII-compatible).
fn is_wide(bytes: &[u8], charset: Option<&str>) -> bool {
    bytes.starts_with(b"\xFF\xFE")
        || bytes.starts_with(b"\xFE\xFF")
        || bytes.starts_with(b"\x00\x00\xFE\xFF")
        || charset.is_some_and(|c| {
            let c = c.trim().to_ascii_lowercase();
            c.starts_with("utf-16") || c.starts_with("utf-32")
        })
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
