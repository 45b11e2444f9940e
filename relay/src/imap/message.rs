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

/// `bytes[start..start+len]`, clamped (RFC 3501 partial fetch).
#[must_use]
pub fn partial(bytes: &[u8], start: u32, len: u32) -> &[u8] {
    let start = (start as usize).min(bytes.len());
    let end = start.saturating_add(len as usize).min(bytes.len());
    &bytes[start..end]
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
    fn partial_ranges_are_clamped() {
        assert_eq!(partial(b"0123456789", 2, 3), b"234");
        assert_eq!(partial(b"0123", 2, 10), b"23");
        assert_eq!(partial(b"0123", 10, 10), b"");
    }
}
