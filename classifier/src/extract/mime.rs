//! A strict RFC 2046 reading of a message's MIME structure, to cross-check the parser we use.
//!
//! mail-parser (0.11) takes any `--boundary` it meets as a delimiter, even inside a line and
//! even when more text follows it (`--grenze--Ende`). RFC 2046 §5.1.1 allows only a line
//! that is `--boundary` (close: `--boundary--`) followed by optional linear whitespace, and
//! that is what mail clients show: text after a non-delimiter stays in the current part. Where
//! the two readings differ, the extractor would classify other text than a client shows, so
//! the caller fails closed. Header fields (Content-Type, its boundary) are read by mail-parser
//! in both readings: only the delimiter scan differs, which is what the RFC pins down.

use mail_parser::{Message, MessageParser, MimeHeaders, PartType};

/// One entity of the structure, in depth-first document order.
#[derive(Debug, PartialEq, Eq)]
enum Node {
    /// A multipart with this many children.
    Multipart(usize),
    /// An encapsulated message; its own structure is checked when it is read.
    Message,
    /// A leaf whose body is the bytes `start..end` of the message.
    Leaf(usize, usize),
}

/// Nesting deeper than this is left to mail-parser's own limits (and ours): the strict
/// reading stops comparing rather than recursing without bound.
const MAX_DEPTH: usize = 20;

/// What the strict reading found.
pub(super) struct Structure {
    /// Whether mail-parser's structure is the one the strict scan finds.
    pub(super) agrees: bool,
    /// Multipart preambles and epilogues (`start..end` byte ranges, with their name):
    /// clients do not show them, but they leave with the message.
    pub(super) unshown: Vec<(&'static str, usize, usize)>,
}

/// Compares mail-parser's structure of `message` — whose entity spans from its root part's
/// header to `end` of `message.raw_message` — with a strict RFC 2046 scan of the same bytes.
pub(super) fn structure(message: &Message<'_>, end: usize) -> Structure {
    let raw: &[u8] = message.raw_message.as_ref();
    let mut out = Structure {
        agrees: true,
        unshown: Vec::new(),
    };
    let Some(root) = message.parts.first() else {
        return out;
    };
    let start = root.offset_header as usize;
    let end = end.min(raw.len());
    if start > end {
        out.agrees = false;
        return out;
    }
    let mut strict = Vec::new();
    if !read(raw, start, end, 0, &mut strict, &mut out.unshown) {
        out.agrees = false;
        return out;
    }
    let mut parsed = Vec::new();
    walk(message, 0, 0, &mut parsed);
    out.agrees = strict == parsed;
    out
}

/// mail-parser's tree from part `id`, depth first.
fn walk(message: &Message<'_>, id: u32, depth: usize, out: &mut Vec<Node>) {
    let Some(part) = message.part(id) else {
        return;
    };
    match &part.body {
        PartType::Multipart(children) => {
            out.push(Node::Multipart(children.len()));
            if depth < MAX_DEPTH {
                for &child in children {
                    walk(message, child, depth + 1, out);
                }
            }
        }
        PartType::Message(_) => out.push(Node::Message),
        _ if is_message(part.content_type()) => out.push(Node::Message),
        _ => out.push(Node::Leaf(
            part.offset_body as usize,
            part.offset_end as usize,
        )),
    }
}

fn is_message(ct: Option<&mail_parser::ContentType<'_>>) -> bool {
    ct.is_some_and(|ct| {
        ct.c_type.eq_ignore_ascii_case("message")
            && ct.c_subtype.as_deref().is_some_and(|s| {
                s.eq_ignore_ascii_case("rfc822") || s.eq_ignore_ascii_case("global")
            })
    })
}

/// The strict tree of the entity `raw[start..end]`; `false` when the bytes cannot be read.
fn read(
    raw: &[u8],
    start: usize,
    end: usize,
    depth: usize,
    out: &mut Vec<Node>,
    unshown: &mut Vec<(&'static str, usize, usize)>,
) -> bool {
    let body = body_start(raw, start, end);
    let Some(headers) = MessageParser::default().parse_headers(&raw[start..body]) else {
        out.push(Node::Leaf(body, end));
        return true;
    };
    let ct = headers.content_type();
    let boundary = ct
        .filter(|ct| ct.c_type.eq_ignore_ascii_case("multipart"))
        .and_then(|ct| ct.attribute("boundary"))
        .filter(|b| !b.is_empty());
    if let Some(boundary) = boundary {
        let children = children(raw, body, end, boundary.as_bytes(), unshown);
        out.push(Node::Multipart(children.len()));
        if depth < MAX_DEPTH {
            for (child_start, child_end) in children {
                if !read(raw, child_start, child_end, depth + 1, out, unshown) {
                    return false;
                }
            }
        }
    } else if is_message(ct) {
        out.push(Node::Message);
    } else {
        out.push(Node::Leaf(body, end));
    }
    true
}

/// Where the body begins: after the first empty line (RFC 5322 §2.1), or `end` when the
/// entity has only header fields.
fn body_start(raw: &[u8], start: usize, end: usize) -> usize {
    lines(raw, start, end)
        .find(|&(_, _, content)| content.is_empty())
        .map_or(end, |(_, eol, _)| (eol + 1).min(end))
}

/// The lines of `raw[start..end]`: (start, position of the line feed or `end`, content
/// without CR LF).
fn lines(raw: &[u8], start: usize, end: usize) -> impl Iterator<Item = (usize, usize, &[u8])> {
    let mut line = start;
    std::iter::from_fn(move || {
        if line >= end {
            return None;
        }
        let eol = memchr::memchr(b'\n', &raw[line..end]).map_or(end, |i| line + i);
        let content = raw[line..eol]
            .strip_suffix(b"\r")
            .unwrap_or(&raw[line..eol]);
        let at = line;
        line = eol + 1;
        Some((at, eol, content))
    })
}

/// The body parts of a multipart body `raw[start..end]`: from after each delimiter line to
/// just before the line break that precedes the next delimiter (RFC 2046 §5.1.1: that line
/// break belongs to the delimiter). Preamble and epilogue are not parts: they go to
/// `unshown`.
fn children(
    raw: &[u8],
    start: usize,
    end: usize,
    boundary: &[u8],
    unshown: &mut Vec<(&'static str, usize, usize)>,
) -> Vec<(usize, usize)> {
    let mut parts = Vec::new();
    let mut open: Option<usize> = None;
    for (line, eol, content) in lines(raw, start, end) {
        if let Some(close) = delimiter(content, boundary) {
            if open.is_none() && parts.is_empty() && line > start {
                unshown.push(("MIME preamble", start, line));
            }
            if let Some(part_start) = open.take() {
                let before = if line > start && raw[line - 1] == b'\n' {
                    if line - 1 > start && raw[line - 2] == b'\r' {
                        line - 2
                    } else {
                        line - 1
                    }
                } else {
                    line
                };
                parts.push((part_start, before.max(part_start)));
            }
            if close {
                if eol + 1 < end {
                    unshown.push(("MIME epilogue", eol + 1, end));
                }
                return parts;
            }
            open = Some((eol + 1).min(end));
        }
    }
    // No close delimiter: clients show the last part up to the end.
    if let Some(part_start) = open {
        parts.push((part_start, end));
    }
    parts
}

/// `Some(is_close)` when `line` (without its line break) is a delimiter of `boundary`:
/// `--boundary` or `--boundary--`, then only spaces and tabs.
fn delimiter(line: &[u8], boundary: &[u8]) -> Option<bool> {
    let rest = line.strip_prefix(b"--")?.strip_prefix(boundary)?;
    let (close, rest) = match rest.strip_prefix(b"--") {
        Some(after) => (true, after),
        None => (false, rest),
    };
    rest.iter()
        .all(|b| matches!(b, b' ' | b'\t'))
        .then_some(close)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(raw: &str) -> bool {
        let message = MessageParser::default()
            .parse(raw.as_bytes())
            .expect("parses");
        structure(&message, raw.len()).agrees
    }

    const HEAD: &str = "From: a@b.example\r\nSubject: s\r\nMIME-Version: 1.0\r\n\
        Content-Type: multipart/mixed; boundary=\"grenze\"\r\n\r\n";

    #[test]
    fn well_formed_multipart_agrees() {
        let raw = format!(
            "{HEAD}preamble\r\n--grenze\r\nContent-Type: text/plain\r\n\r\none\r\n\
             --grenze \r\n\r\ntwo\r\n--grenze--\r\nepilogue\r\n"
        );
        assert!(check(&raw));
        let message = MessageParser::default()
            .parse(raw.as_bytes())
            .expect("parses");
        let unshown: Vec<&str> = structure(&message, raw.len())
            .unshown
            .iter()
            .map(|&(_, start, end)| &raw[start..end])
            .collect();
        assert_eq!(unshown, ["preamble\r\n", "epilogue\r\n"]);
    }

    #[test]
    fn a_line_that_only_starts_with_the_boundary_is_not_a_delimiter() {
        for suffix in ["--Ende", "x", "-", "--x", " x"] {
            let raw = format!(
                "{HEAD}--grenze\r\nContent-Type: text/plain\r\n\r\none\r\n\
                 --grenze{suffix}\r\nhidden\r\n--grenze--\r\n"
            );
            assert!(!check(&raw), "suffix {suffix:?}");
        }
    }

    #[test]
    fn a_boundary_inside_a_line_is_not_a_delimiter() {
        let raw = format!(
            "{HEAD}--grenze\r\nContent-Type: text/plain\r\n\r\nsee x--grenze\r\nhidden\r\n\
             --grenze--\r\n"
        );
        assert!(!check(&raw));
    }

    #[test]
    fn nested_multiparts_and_messages_agree() {
        let raw = format!(
            "{HEAD}--grenze\r\nContent-Type: multipart/alternative; boundary=\"innen\"\r\n\r\n\
             --innen\r\nContent-Type: text/plain\r\n\r\nplain\r\n--innen\r\n\
             Content-Type: text/html\r\n\r\n<p>html</p>\r\n--innen--\r\n\
             --grenze\r\nContent-Type: message/rfc822\r\n\r\nFrom: c@d.example\r\n\
             Subject: inner\r\n\r\nbody\r\n--grenze--\r\n"
        );
        assert!(check(&raw));
    }

    #[test]
    fn lf_only_line_breaks_agree() {
        let raw = format!(
            "{HEAD}--grenze\nContent-Type: text/plain\n\none\n--grenze\n\ntwo\n--grenze--\n"
        )
        .replace("\r\n", "\n");
        assert!(check(&raw));
    }
}
