//! iCalendar (RFC 5545) and vCard (RFC 6350) content lines as a calendar or address book
//! shows them.
//!
//! Both formats fold long lines (RFC 5545 §3.1: a line break followed by one space or tab is
//! removed), escape `\n`, `\,`, `\;` and `\\` in text values (§3.3.11), and carry words in
//! parameters too (`ATTENDEE;CN="Anna Schmidt"`, `ATTACH;FILENAME=…`). A secret split by a
//! fold or written with escapes is read whole. Inline attachments
//! (`ATTACH;ENCODING=BASE64;VALUE=BINARY:…`, §3.2.7) are returned as files.

use mail_parser::decoders::base64::base64_decode;

use super::inline::InlineFile;

/// Properties whose values are text a person reads (RFC 5545 §3.8, RFC 6350 §6, and the
/// HTML description Outlook adds).
const TEXT_PROPERTIES: &[&str] = &[
    "SUMMARY",
    "DESCRIPTION",
    "LOCATION",
    "COMMENT",
    "CONTACT",
    "RESOURCES",
    "CATEGORIES",
    "X-ALT-DESC",
    "X-WR-CALNAME",
    "X-WR-CALDESC",
    // vCard: everything in an address book entry is about a person.
    "FN",
    "N",
    "NICKNAME",
    "NOTE",
    "ADR",
    "LABEL",
    "TEL",
    "EMAIL",
    "ORG",
    "TITLE",
    "ROLE",
    "BDAY",
];

/// Parameters whose values are names or words (RFC 5545 §3.2.2 CN, file names of
/// attachments as Outlook and Apple write them).
const TEXT_PARAMETERS: &[&str] = &[
    "CN",
    "FILENAME",
    "X-FILENAME",
    "X-APPLE-FILENAME",
    "X-LABEL",
];

/// Whether `text` is an iCalendar or vCard object (by its first content line).
#[must_use]
pub(super) fn is_calendar(text: &str) -> bool {
    let first = text
        .trim_start_matches('\u{feff}')
        .trim_start()
        .lines()
        .next()
        .unwrap_or("");
    let first = first.trim_end().to_ascii_uppercase();
    first == "BEGIN:VCALENDAR" || first == "BEGIN:VCARD"
}

/// The readable text of a calendar or vCard object, one value per line, and its inline
/// attachments (undecodable ones as an error, so the caller fails closed).
#[must_use]
pub(super) fn read(text: &str) -> (String, Vec<InlineFile>) {
    let unfolded = unfold(text);
    let mut out = String::with_capacity(unfolded.len() / 2);
    let mut files = Vec::new();
    for line in unfolded.lines() {
        let Some(line) = ContentLine::parse(line) else {
            continue;
        };
        for (name, value) in &line.parameters {
            if name.eq_ignore_ascii_case("CN") {
                out.push_str(value);
                out.push('\n');
            } else if TEXT_PARAMETERS.iter().any(|p| name.eq_ignore_ascii_case(p)) {
                // A file name, read as words like any attachment's ("Steuer-ID_86…").
                out.push_str(&value.replace('_', " "));
                out.push('\n');
            }
        }
        let is_binary = line
            .parameter("ENCODING")
            .is_some_and(|e| e.eq_ignore_ascii_case("BASE64") || e.eq_ignore_ascii_case("B"));
        if line.name.eq_ignore_ascii_case("ATTACH") && is_binary {
            let name = line
                .parameters
                .iter()
                .find(|(n, _)| {
                    TEXT_PARAMETERS[1..]
                        .iter()
                        .any(|p| n.eq_ignore_ascii_case(p))
                })
                .map_or_else(|| "attachment".to_owned(), |(_, v)| v.clone());
            let data =
                base64_decode(line.value.as_bytes()).ok_or("undecodable calendar attachment");
            files.push((name, data));
        } else if TEXT_PROPERTIES
            .iter()
            .any(|p| line.name.eq_ignore_ascii_case(p))
        {
            out.push_str(&unescape(line.value));
            out.push('\n');
        }
    }
    (out, files)
}

/// [`unfold`] on bytes, before charset decoding: a fold may split a UTF-8 character
/// (RFC 5545 §3.1 folds at 75 octets), which only joins again as bytes.
#[must_use]
pub(super) fn unfold_bytes(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let fold = match &bytes[i..] {
            [b'\r', b'\n', b' ' | b'\t', ..] => 3,
            [b'\n', b' ' | b'\t', ..] => 2,
            _ => 0,
        };
        if fold > 0 {
            i += fold;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    out
}

/// Whether `bytes` (ASCII-compatible) begin an iCalendar or vCard object.
#[must_use]
pub(super) fn starts_calendar(bytes: &[u8]) -> bool {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let start = bytes
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(0);
    let head = &bytes[start..bytes.len().min(start + 15)];
    head.eq_ignore_ascii_case(b"BEGIN:VCALENDAR")
        || head[..head.len().min(11)].eq_ignore_ascii_case(b"BEGIN:VCARD")
}

/// RFC 5545 §3.1: a line break followed by a single space or tab continues the line.
fn unfold(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find('\n') {
        let (line, after) = rest.split_at(i);
        out.push_str(line.strip_suffix('\r').unwrap_or(line));
        let after = &after[1..];
        match after.as_bytes().first() {
            Some(b' ' | b'\t') => rest = &after[1..],
            _ => {
                out.push('\n');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// RFC 5545 §3.3.11 text escapes; a lone backslash stays.
fn unescape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let mut chars = value.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n' | 'N') => out.push('\n'),
            Some(other) => out.push(other),
            None => out.push('\\'),
        }
    }
    out
}

/// `name *(";" param) ":" value` (RFC 5545 §3.1), parameter values possibly quoted.
struct ContentLine<'a> {
    name: &'a str,
    parameters: Vec<(&'a str, String)>,
    value: &'a str,
}

impl<'a> ContentLine<'a> {
    fn parse(line: &'a str) -> Option<Self> {
        let end_of_name = line.find([';', ':'])?;
        let name = line[..end_of_name].trim();
        // vCard groups: "item1.ADR" is ADR.
        let name = name.rsplit_once('.').map_or(name, |(_, n)| n);
        let mut parameters = Vec::new();
        let mut rest = &line[end_of_name..];
        while let Some(after) = rest.strip_prefix(';') {
            let eq = after.find(['=', ';', ':'])?;
            let pname = &after[..eq];
            if after.as_bytes()[eq] != b'=' {
                // A vCard 2.1 bare parameter ("TEL;HOME:…").
                rest = &after[eq..];
                continue;
            }
            let mut value = String::new();
            let mut v = &after[eq + 1..];
            loop {
                if let Some(quoted) = v.strip_prefix('"') {
                    let close = quoted.find('"')?;
                    value.push_str(&quoted[..close]);
                    v = &quoted[close + 1..];
                } else {
                    let stop = v.find([',', ';', ':']).unwrap_or(v.len());
                    value.push_str(&v[..stop]);
                    v = &v[stop..];
                }
                match v.strip_prefix(',') {
                    Some(more) => {
                        value.push(' ');
                        v = more;
                    }
                    None => break,
                }
            }
            parameters.push((pname, value));
            rest = v;
        }
        let value = rest.strip_prefix(':')?;
        Some(Self {
            name,
            parameters,
            value,
        })
    }

    fn parameter(&self, name: &str) -> Option<&str> {
        self.parameters
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folded_and_escaped_values_are_read_whole() {
        let ics = "BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nUID:1@x\r\nSUMMARY:Gespr\u{e4}ch Steuer-ID 860\r\n 957 42719\r\n\
                   DESCRIPTION:Nur f\u{fc}r den\\nDienstgebrauch\\, bitte\r\n\
                   ATTENDEE;CN=\"Meier\\, Anna; Krank\";ROLE=REQ-PARTICIPANT:mailto:a@b.example\r\n\
                   END:VEVENT\r\nEND:VCALENDAR\r\n";
        assert!(is_calendar(ics));
        let (text, files) = read(ics);
        assert!(text.contains("Steuer-ID 860957 42719"), "{text}");
        assert!(
            text.contains("Nur f\u{fc}r den\nDienstgebrauch, bitte"),
            "{text}"
        );
        assert!(text.contains("Meier\\, Anna; Krank"), "{text}");
        assert!(!text.contains("1@x"));
        assert!(files.is_empty());
    }

    #[test]
    fn folds_inside_a_character_join_as_bytes() {
        let bytes = "SUMMARY:Nur f\u{fc}r".as_bytes();
        let (a, b) = bytes.split_at(14); // inside the two bytes of 'ü'
        let folded = [a, b"\r\n ", b].concat();
        assert!(starts_calendar(b"\r\nBEGIN:VCALENDAR\r\n"));
        assert_eq!(unfold_bytes(&folded), bytes);
    }

    #[test]
    fn inline_attachments_are_files() {
        let ics = "BEGIN:VCALENDAR\nBEGIN:VEVENT\nATTACH;FMTTYPE=text/plain;ENCODING=BASE64;VALUE=BINARY;\n X-FILENAME=notiz.txt:SGFsbG8=\nEND:VEVENT\nEND:VCALENDAR\n";
        let (text, files) = read(ics);
        assert!(text.contains("notiz.txt"));
        assert_eq!(files, vec![("notiz.txt".to_owned(), Ok(b"Hallo".to_vec()))]);
    }
}
