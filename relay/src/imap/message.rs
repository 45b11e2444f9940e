//! The parts of a message that FETCH serves: the header and text split, selected header
//! fields, and partial ranges. Works on the bytes an entry serves (a notice for a sensitive
//! message), never on anything else.

/// Where the header ends: the offset just after the empty line (or the end).
#[must_use]
pub fn header_end(raw: &[u8]) -> usize {
    if let Some(p) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
        return p + 4;
    }
    if let Some(p) = raw.windows(2).position(|w| w == b"\n\n") {
        return p + 2;
    }
    raw.len()
}

/// The header (with the empty line that ends it).
#[must_use]
pub fn header(raw: &[u8]) -> &[u8] {
    &raw[..header_end(raw)]
}

/// The body after the header.
#[must_use]
pub fn text(raw: &[u8]) -> &[u8] {
    &raw[header_end(raw)..]
}

/// The header fields named in `names` (or, with `exclude`, all others), unfolded lines kept
/// as they are, followed by the empty line.
#[must_use]
pub fn header_fields(raw: &[u8], names: &[String], exclude: bool) -> Vec<u8> {
    let head = header(raw);
    let mut out = Vec::new();
    let mut keep = false;
    for line in head.split_inclusive(|&b| b == b'\n') {
        if line == b"\r\n" || line == b"\n" {
            break;
        }
        if !line.starts_with(b" ") && !line.starts_with(b"\t") {
            let name = line
                .iter()
                .position(|&b| b == b':')
                .map_or(&line[..0], |p| &line[..p]);
            let listed = names
                .iter()
                .any(|n| n.as_bytes().eq_ignore_ascii_case(name.trim_ascii()));
            keep = listed != exclude;
        }
        if keep {
            out.extend_from_slice(line);
        }
    }
    out.extend_from_slice(b"\r\n");
    out
}

/// The value of the first header field `name`, unfolded (each CRLF before whitespace
/// removed, RFC 5322 §2.2.3) and trimmed; 8-bit bytes are read as UTF-8 (lossy).
#[must_use]
pub fn field(raw: &[u8], name: &str) -> Option<String> {
    let head = header(raw);
    let mut value: Option<Vec<u8>> = None;
    for line in head.split_inclusive(|&b| b == b'\n') {
        if line == b"\r\n" || line == b"\n" {
            break;
        }
        let folded = line.starts_with(b" ") || line.starts_with(b"\t");
        match (&mut value, folded) {
            (Some(v), true) => v.extend_from_slice(line),
            (Some(_), false) => break,
            (None, false) => {
                if let Some(p) = line.iter().position(|&b| b == b':')
                    && line[..p].trim_ascii().eq_ignore_ascii_case(name.as_bytes())
                {
                    value = Some(line[p + 1..].to_vec());
                }
            }
            (None, true) => {}
        }
    }
    let value = value?;
    let unfolded: Vec<u8> = value
        .into_iter()
        .filter(|&b| b != b'\r' && b != b'\n')
        .collect();
    Some(String::from_utf8_lossy(&unfolded).trim().to_owned())
}

/// `bytes[start..start+len]`, clamped (RFC 3501 partial fetch).
#[must_use]
pub fn partial(bytes: &[u8], start: u32, len: u32) -> &[u8] {
    let start = (start as usize).min(bytes.len());
    let end = start.saturating_add(len as usize).min(bytes.len());
    &bytes[start..end]
}

/// A message decoded for SEARCH: header values with encoded words decoded, and the text of
/// every text part with its transfer encoding and charset undone, all lower-cased. So
/// `SEARCH TEXT "für"` finds "für" in a quoted-printable ISO-8859-1 body or a base64 UTF-8
/// subject.
#[derive(Debug, Clone, Default)]
pub struct Searchable {
    headers: Vec<(String, String)>,
    body: String,
    sent: Option<chrono::NaiveDate>,
}

impl Searchable {
    /// Decodes `raw` (a message that cannot be parsed is searched as raw text).
    #[must_use]
    pub fn new(raw: &[u8]) -> Self {
        std::panic::catch_unwind(|| {
            let m = mail_parser::MessageParser::default().parse(raw)?;
            let headers = m
                .headers()
                .iter()
                .map(|h| {
                    (
                        h.name.as_str().to_lowercase(),
                        header_text(&h.value).to_lowercase(),
                    )
                })
                .collect();
            let mut body = String::new();
            for i in 0..m.text_body_count().max(m.html_body_count()) {
                if let Some(t) = m.body_text(i) {
                    body.push_str(&t);
                    body.push('\n');
                }
            }
            // The date as written, in the Date header's own zone (RFC 3501 §6.4.4: "the
            // date of the message's Date: header, disregarding time and timezone").
            let sent = m.date().and_then(|d| {
                chrono::NaiveDate::from_ymd_opt(
                    i32::from(d.year),
                    u32::from(d.month),
                    u32::from(d.day),
                )
            });
            Some(Self {
                headers,
                body: body.to_lowercase(),
                sent,
            })
        })
        .ok()
        .flatten()
        .unwrap_or_else(|| Self {
            headers: Vec::new(),
            body: String::from_utf8_lossy(raw).to_lowercase(),
            sent: None,
        })
    }

    /// The day of the Date header (in its own zone), for SENTBEFORE/SENTON/SENTSINCE.
    #[must_use]
    pub fn sent(&self) -> Option<chrono::NaiveDate> {
        self.sent
    }

    /// Whether header `name` contains `needle` (both compared lower-case).
    #[must_use]
    pub fn header_contains(&self, name: &str, needle: &str) -> bool {
        let (name, needle) = (name.to_lowercase(), needle.to_lowercase());
        self.headers
            .iter()
            .any(|(n, v)| *n == name && v.contains(&needle))
    }

    /// Whether the body text contains `needle`.
    #[must_use]
    pub fn body_contains(&self, needle: &str) -> bool {
        self.body.contains(&needle.to_lowercase())
    }

    /// Whether any header or the body contains `needle` (SEARCH TEXT).
    #[must_use]
    pub fn text_contains(&self, needle: &str) -> bool {
        let needle = needle.to_lowercase();
        self.body.contains(&needle) || self.headers.iter().any(|(_, v)| v.contains(&needle))
    }
}

fn address_text(addr: &mail_parser::Addr<'_>) -> String {
    format!(
        "{} <{}>",
        addr.name().unwrap_or_default(),
        addr.address().unwrap_or_default()
    )
}

fn header_text(value: &mail_parser::HeaderValue<'_>) -> String {
    use mail_parser::HeaderValue;
    match value {
        HeaderValue::Text(t) => t.to_string(),
        HeaderValue::TextList(l) => l.join(", "),
        HeaderValue::Address(mail_parser::Address::Group(groups)) => groups
            .iter()
            .map(|g| {
                // The group's name is searched too (`SEARCH TO "undisclosed-recipients"`).
                let members = g
                    .addresses
                    .iter()
                    .map(address_text)
                    .collect::<Vec<_>>()
                    .join(", ");
                format!("{}: {members};", g.name.as_deref().unwrap_or_default())
            })
            .collect::<Vec<_>>()
            .join(", "),
        HeaderValue::Address(a) => a.iter().map(address_text).collect::<Vec<_>>().join(", "),
        HeaderValue::DateTime(d) => d.to_rfc822(),
        HeaderValue::ContentType(c) => format!("{}/{}", c.ctype(), c.subtype().unwrap_or_default()),
        HeaderValue::Received(_) | HeaderValue::Empty => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAIL: &[u8] = b"From: a@b\r\nSubject: Hallo\r\n Welt\r\nTo: c@d\r\n\r\nText\r\n";

    #[test]
    fn header_and_text_split() {
        assert_eq!(
            header(MAIL),
            b"From: a@b\r\nSubject: Hallo\r\n Welt\r\nTo: c@d\r\n\r\n"
        );
        assert_eq!(text(MAIL), b"Text\r\n");
        assert_eq!(text(b"no header end"), b"");
    }

    #[test]
    fn fields_are_selected_with_their_continuations() {
        let subject = header_fields(MAIL, &["SUBJECT".into()], false);
        assert_eq!(subject, b"Subject: Hallo\r\n Welt\r\n\r\n");
        let others = header_fields(MAIL, &["subject".into()], true);
        assert_eq!(others, b"From: a@b\r\nTo: c@d\r\n\r\n");
    }

    #[test]
    fn search_sees_decoded_text() {
        let raw = b"From: =?utf-8?q?J=C3=BCrgen?= <j@stadt.test>\r\nSubject: =?utf-8?b?R3LDvMOfZQ==?=\r\n\
MIME-Version: 1.0\r\nContent-Type: text/plain; charset=iso-8859-1\r\n\
Content-Transfer-Encoding: quoted-printable\r\n\r\nSitzung f=FCr Montag\r\n";
        let s = Searchable::new(raw);
        assert!(s.header_contains("subject", "GRÜßE"), "{s:?}");
        assert!(s.header_contains("From", "jürgen"));
        assert!(s.body_contains("für montag"));
        assert!(s.text_contains("jürgen") && s.text_contains("für"));
        assert!(!s.body_contains("f=fcr"));
        assert_eq!(s.sent(), None);
        let dated = Searchable::new(b"Date: Mon, 2 Nov 2026 10:00:00 +0100\r\n\r\nx\r\n");
        assert_eq!(dated.sent(), chrono::NaiveDate::from_ymd_opt(2026, 11, 2));
        // Issue #13: the day as written in its own zone, not the UTC day.
        for (date, day) in [
            ("Mon, 2 Nov 2026 00:30:00 +0200", 2),
            ("Mon, 2 Nov 2026 23:30:00 -0500", 2),
        ] {
            let s = Searchable::new(format!("Date: {date}\r\n\r\nx\r\n").as_bytes());
            assert_eq!(
                s.sent(),
                chrono::NaiveDate::from_ymd_opt(2026, 11, day),
                "{date}"
            );
        }
        // Issue #13: a group's name is found by SEARCH TO.
        let grouped =
            Searchable::new(b"To: undisclosed-recipients: a@b.test, c@d.test;\r\n\r\nx\r\n");
        assert!(grouped.header_contains("to", "undisclosed-recipients"));
        assert!(grouped.header_contains("to", "c@d.test"));
    }

    #[test]
    fn fields_are_unfolded() {
        assert_eq!(field(MAIL, "subject").as_deref(), Some("Hallo Welt"));
        assert_eq!(field(MAIL, "To").as_deref(), Some("c@d"));
        assert_eq!(field(MAIL, "Cc"), None);
    }

    #[test]
    fn partial_ranges_are_clamped() {
        assert_eq!(partial(b"0123456789", 2, 3), b"234");
        assert_eq!(partial(b"0123", 2, 10), b"23");
        assert_eq!(partial(b"0123", 10, 10), b"");
    }
}
