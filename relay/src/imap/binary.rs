//! BINARY (RFC 3516): body sections with their content-transfer-encoding undone.
//!
//! The decoders are mail-parser's (the same that decode parts for the classifier): base64
//! ignores whitespace and line breaks, quoted-printable drops trailing whitespace and soft
//! line breaks. An encoding the server does not know fails the FETCH with
//! `NO [UNKNOWN-CTE]` (RFC 3516 §4.2).

use std::borrow::Cow;
use std::num::NonZeroU32;

use mail_parser::decoders::base64::base64_decode;
use mail_parser::decoders::quoted_printable::quoted_printable_decode;

use super::mime;

/// The part's transfer encoding is none the server can undo.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownCte(pub String);

/// `body` with the transfer encoding `encoding` (lower case) undone. Content that does not
/// decode (broken base64) is served as it is stored, as Dovecot does for a damaged part.
///
/// # Errors
/// [`UnknownCte`] for an encoding other than 7bit, 8bit, binary, base64, quoted-printable.
pub fn decode<'b>(encoding: &str, body: &'b [u8]) -> Result<Cow<'b, [u8]>, UnknownCte> {
    let decoded = match encoding.trim() {
        "" | "7bit" | "8bit" | "binary" => None,
        "base64" => base64_decode(body),
        "quoted-printable" => quoted_printable_decode(body),
        other => return Err(UnknownCte(other.to_owned())),
    };
    Ok(decoded.map_or(Cow::Borrowed(body), Cow::Owned))
}

/// The bytes of `BINARY[path]` of `raw`: the whole message for an empty path (as stored), a
/// leaf part's body decoded, a multipart or enclosed message as it is (their encoding can only
/// be 7bit, 8bit or binary). A part that does not exist is empty.
///
/// # Errors
/// [`UnknownCte`] as [`decode`].
pub fn section(
    raw: &[u8],
    path: &[u32],
    tree: &mut Option<mime::Part>,
) -> Result<Vec<u8>, UnknownCte> {
    if path.is_empty() {
        return Ok(raw.to_vec());
    }
    let root = tree.get_or_insert_with(|| mime::parse(raw));
    let Some(part) = root.find(path) else {
        return Ok(Vec::new());
    };
    let body = part.bytes(raw, mime::SectionKind::Body);
    if part.is_leaf() {
        decode(part.encoding(), body).map(Cow::into_owned)
    } else {
        Ok(body.to_vec())
    }
}

/// Whether `data` must go out as a literal8 (`~{n}`): it holds NUL, which a plain literal
/// cannot carry (RFC 3516 §4.3).
#[must_use]
pub fn needs_literal8(data: &[u8]) -> bool {
    data.contains(&0)
}

/// The section number that marks where a partial `BINARY` section's origin follows.
///
/// imap-types' `BINARY[...]` response item has no `<origin>`, which RFC 3516 requires after a
/// partial fetch: the session names the section `path.MARK.origin+1`, and the driver
/// rewrites that to `path]<origin>` on the way out ([`mend_origins`]).
const MARK: u32 = u32::MAX;

/// The section to put in a `BINARY` item for `path` fetched from `origin`.
#[must_use]
pub fn section_with_origin(path: &[NonZeroU32], origin: u32) -> Vec<NonZeroU32> {
    let mut section = path.to_vec();
    section.push(NonZeroU32::MAX);
    section.push(NonZeroU32::new(origin.saturating_add(1)).unwrap_or(NonZeroU32::MAX));
    section
}

/// `response` (one encoded response) with every marked `BINARY[path.MARK.n]` turned into
/// `BINARY[path]<n-1>`, or `None` when it has none. Only the response's own syntax is looked
/// at: literals (skipped by their announced length) and quoted strings are never touched, so
/// message contents cannot forge a marker.
#[must_use]
pub fn mend_origins(response: &[u8]) -> Option<Vec<u8>> {
    if !response.starts_with(b"* ") {
        return None;
    }
    let marker = format!(".{MARK}.");
    let mut out: Option<Vec<u8>> = None;
    let mut copied = 0;
    let mut i = 0;
    while i < response.len() {
        match response[i] {
            b'"' => {
                i += 1;
                while i < response.len() && response[i] != b'"' {
                    i += if response[i] == b'\\' { 2 } else { 1 };
                }
                i += 1;
            }
            b'{' => {
                let close = response[i..].iter().position(|&b| b == b'}');
                let length = close.and_then(|c| {
                    let digits = &response[i + 1..i + c];
                    let digits = digits.strip_suffix(b"+").unwrap_or(digits);
                    std::str::from_utf8(digits).ok()?.parse::<usize>().ok()
                });
                match (close, length) {
                    (Some(c), Some(n)) if response[i + c + 1..].starts_with(b"\r\n") => {
                        i += c + 3 + n;
                    }
                    _ => i += 1,
                }
            }
            b'B' if response[i..].starts_with(b"BINARY[") => {
                let open = i + b"BINARY[".len();
                let Some(close) = response[open..].iter().position(|&b| b == b']') else {
                    return out;
                };
                let inner = &response[open..open + close];
                let dotted = [b".", inner].concat();
                if let Some(at) = dotted
                    .windows(marker.len())
                    .position(|w| w == marker.as_bytes())
                {
                    let path = &dotted[1.min(at)..at];
                    let origin = std::str::from_utf8(&dotted[at + marker.len()..])
                        .ok()
                        .and_then(|n| n.parse::<u64>().ok())
                        .map_or(0, |n| n.saturating_sub(1));
                    let buf = out.get_or_insert_with(|| Vec::with_capacity(response.len()));
                    buf.extend_from_slice(&response[copied..open]);
                    buf.extend_from_slice(path);
                    buf.extend_from_slice(format!("]<{origin}>").as_bytes());
                    copied = open + close + 1;
                }
                i = open + close + 1;
            }
            _ => i += 1,
        }
    }
    let mut buf = out?;
    buf.extend_from_slice(&response[copied.min(response.len())..]);
    Some(buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nz(n: u32) -> NonZeroU32 {
        NonZeroU32::new(n).unwrap()
    }

    #[test]
    fn origins_are_put_in_and_contents_left_alone() {
        let five = section_with_origin(&[nz(5)], 10);
        assert_eq!(five, [nz(5), NonZeroU32::MAX, nz(11)]);
        let wire = b"* 1 FETCH (BINARY[5.4294967295.11] {3}\r\nabc BINARY[4294967295.1] ~{26}\r\nBINARY[1.4294967295.9] x\0 BINARY[2] \"BINARY[4294967295.2]\")\r\n";
        let mended = mend_origins(wire).unwrap();
        assert_eq!(
            String::from_utf8_lossy(&mended),
            "* 1 FETCH (BINARY[5]<10> {3}\r\nabc BINARY[]<0> ~{26}\r\nBINARY[1.4294967295.9] x\0 BINARY[2] \"BINARY[4294967295.2]\")\r\n"
        );
        assert_eq!(mend_origins(b"* 1 FETCH (BINARY[1] {1}\r\nx)\r\n"), None);
        assert_eq!(mend_origins(b"a1 OK BINARY[4294967295.1]\r\n"), None);
    }

    const MESSAGE: &[u8] = b"From: a@example.org\r\n\
Content-Type: multipart/mixed; boundary=\"b\"\r\n\
\r\n\
--b\r\n\
Content-Type: text/plain\r\n\
Content-Transfer-Encoding: quoted-printable\r\n\
\r\n\
Gr=C3=BC=C3=9Fe  \r\n\
soft=\r\n\
break\r\n\
--b\r\n\
Content-Type: application/octet-stream\r\n\
Content-Transfer-Encoding: base64\r\n\
\r\n\
  AAEC\r\n\
 /wBh\r\n\
--b\r\n\
Content-Type: application/x-thing\r\n\
Content-Transfer-Encoding: x-uuencode\r\n\
\r\n\
begin 644 x\r\n\
--b--\r\n";

    #[test]
    fn sections_are_decoded() {
        let mut tree = None;
        assert_eq!(
            section(MESSAGE, &[1], &mut tree).unwrap(),
            "Grüße\r\nsoftbreak".as_bytes()
        );
        let bin = section(MESSAGE, &[2], &mut tree).unwrap();
        assert_eq!(bin, [0, 1, 2, 0xff, 0, b'a']);
        assert!(needs_literal8(&bin));
        assert_eq!(section(MESSAGE, &[], &mut tree).unwrap(), MESSAGE);
        assert!(section(MESSAGE, &[9], &mut tree).unwrap().is_empty());
    }

    #[test]
    fn an_unknown_encoding_is_refused() {
        let mut tree = None;
        assert_eq!(
            section(MESSAGE, &[3], &mut tree),
            Err(UnknownCte("x-uuencode".into()))
        );
        assert_eq!(decode("8bit", b"\0x").unwrap().as_ref(), b"\0x");
        assert!(!needs_literal8(b"text\r\n"));
    }
}
