//! Files encoded inside a text body, which mail clients show as attachments: uuencode
//! (`begin 644 name` … `end`, and the `begin-base64` variant of POSIX `uuencode -m`) and
//! yEnc (`=ybegin … name=…` … `=yend`, yEnc 1.3). Each block is decoded and returned as a
//! file, so it is inspected like any attachment.

use mail_parser::decoders::base64::base64_decode;
use memchr::memmem;

/// A file found in a text body: its name and its bytes, or why it could not be decoded.
pub(super) type InlineFile = (String, Result<Vec<u8>, &'static str>);

/// Every uuencoded and yEnc block in `body`, in order; at most `max_files`, each decoded to
/// at most `max_size` bytes (beyond that: an error, so the caller fails closed).
#[must_use]
pub(super) fn files(body: &[u8], max_files: usize, max_size: usize) -> Vec<InlineFile> {
    let mut out = Vec::new();
    // Both markers begin a line; memmem finds candidates fast in ordinary text.
    let mut lines = Lines { body, at: 0 };
    while let Some(line) = lines.next() {
        if out.len() >= max_files {
            out.push((String::new(), Err("too many encoded files in one text")));
            break;
        }
        if let Some(rest) = line.strip_prefix(b"begin-base64 ") {
            let name = name_after_mode(rest);
            out.push((name, base64_block(&mut lines, max_size)));
        } else if let Some(rest) = line.strip_prefix(b"begin ") {
            if is_mode(rest) {
                let name = name_after_mode(rest);
                out.push((name, uu_block(&mut lines, max_size)));
            }
        } else if line.starts_with(b"=ybegin ") {
            let name = yenc_name(line);
            out.push((name, yenc_block(&mut lines, max_size)));
        }
    }
    out
}

/// Whether `body` may hold a block at all (a quick pre-check for ordinary text).
#[must_use]
pub(super) fn may_contain(body: &[u8]) -> bool {
    memmem::find(body, b"begin ").is_some()
        || memmem::find(body, b"begin-base64 ").is_some()
        || memmem::find(body, b"=ybegin ").is_some()
}

struct Lines<'a> {
    body: &'a [u8],
    at: usize,
}

impl<'a> Iterator for Lines<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        if self.at >= self.body.len() {
            return None;
        }
        let rest = &self.body[self.at..];
        let len = memchr::memchr(b'\n', rest).unwrap_or(rest.len());
        self.at += len + 1;
        let line = &rest[..len];
        Some(line.strip_suffix(b"\r").unwrap_or(line))
    }
}

/// `644 name` — an octal mode, as uuencode writes it.
fn is_mode(rest: &[u8]) -> bool {
    let mode = rest.split(|&b| b == b' ').next().unwrap_or_default();
    (3..=4).contains(&mode.len()) && mode.iter().all(|b| (b'0'..=b'7').contains(b))
}

fn name_after_mode(rest: &[u8]) -> String {
    let name = rest
        .splitn(2, |&b| b == b' ')
        .nth(1)
        .unwrap_or_default()
        .trim_ascii();
    String::from_utf8_lossy(name).into_owned()
}

/// Historic uuencode: each line starts with its byte count (`' ' + n`), then groups of
/// four characters `' ' + six bits` (`` ` `` for zero), ended by a count-zero line and `end`.
fn uu_block(lines: &mut Lines<'_>, max_size: usize) -> Result<Vec<u8>, &'static str> {
    let mut out = Vec::new();
    for line in lines.by_ref() {
        if line == b"end" {
            return Ok(out);
        }
        let Some((&count, data)) = line.split_first() else {
            continue;
        };
        let count = usize::from(count.wrapping_sub(b' ') & 0x3f);
        if count == 0 {
            continue;
        }
        let sextet = |i: usize| data.get(i).map_or(0, |c| c.wrapping_sub(b' ') & 0x3f);
        let mut bytes = Vec::with_capacity(count);
        let mut i = 0;
        while bytes.len() < count {
            let (a, b, c, d) = (sextet(i), sextet(i + 1), sextet(i + 2), sextet(i + 3));
            for byte in [a << 2 | b >> 4, b << 4 | c >> 2, c << 6 | d] {
                if bytes.len() < count {
                    bytes.push(byte);
                }
            }
            i += 4;
        }
        out.extend_from_slice(&bytes);
        if out.len() > max_size {
            return Err("encoded file too large to inspect");
        }
    }
    // No `end`: a client still shows what was there.
    Ok(out)
}

/// `begin-base64 644 name`, base64 lines, `====`.
fn base64_block(lines: &mut Lines<'_>, max_size: usize) -> Result<Vec<u8>, &'static str> {
    let mut encoded = Vec::new();
    for line in lines.by_ref() {
        if line == b"====" {
            break;
        }
        encoded.extend_from_slice(line.trim_ascii());
        if encoded.len() / 4 * 3 > max_size {
            return Err("encoded file too large to inspect");
        }
    }
    base64_decode(&encoded).ok_or("undecodable base64 block")
}

/// The `name=` of a `=ybegin` line: the rest of the line (names may hold spaces).
fn yenc_name(line: &[u8]) -> String {
    let name = memmem::find(line, b" name=").map_or(&b""[..], |i| &line[i + 6..]);
    String::from_utf8_lossy(name.trim_ascii()).into_owned()
}

/// yEnc: every byte is `(c - 42) mod 256`, `=` escapes the next as `(c - 106) mod 256`;
/// line breaks are not data. `=ypart` lines are headers; `=yend` ends the block.
fn yenc_block(lines: &mut Lines<'_>, max_size: usize) -> Result<Vec<u8>, &'static str> {
    let mut out = Vec::new();
    for line in lines.by_ref() {
        if line.starts_with(b"=yend") {
            return Ok(out);
        }
        if line.starts_with(b"=ypart ") {
            continue;
        }
        let mut bytes = line.iter();
        while let Some(&c) = bytes.next() {
            if c == b'=' {
                if let Some(&e) = bytes.next() {
                    out.push(e.wrapping_sub(64).wrapping_sub(42));
                }
            } else {
                out.push(c.wrapping_sub(42));
            }
        }
        if out.len() > max_size {
            return Err("encoded file too large to inspect");
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn uuencode(name: &str, data: &[u8]) -> String {
        let enc = |s: u8| if s == 0 { '`' } else { char::from(s + b' ') };
        let mut out = format!("begin 644 {name}\n");
        for chunk in data.chunks(45) {
            out.push(enc(u8::try_from(chunk.len()).expect("<= 45")));
            for triple in chunk.chunks(3) {
                let t = [
                    triple[0],
                    *triple.get(1).unwrap_or(&0),
                    *triple.get(2).unwrap_or(&0),
                ];
                for s in [
                    t[0] >> 2,
                    (t[0] << 4 | t[1] >> 4) & 63,
                    (t[1] << 2 | t[2] >> 6) & 63,
                    t[2] & 63,
                ] {
                    out.push(enc(s));
                }
            }
            out.push('\n');
        }
        out.push_str("`\nend\n");
        out
    }

    fn yencode(name: &str, data: &[u8]) -> Vec<u8> {
        let mut out = format!("=ybegin line=128 size={} name={name}\r\n", data.len()).into_bytes();
        for (i, &b) in data.iter().enumerate() {
            let c = b.wrapping_add(42);
            if matches!(c, 0 | b'\n' | b'\r' | b'=') {
                out.extend([b'=', c.wrapping_add(64)]);
            } else {
                out.push(c);
            }
            if i % 60 == 59 {
                out.extend(b"\r\n");
            }
        }
        out.extend(format!("\r\n=yend size={}\r\n", data.len()).into_bytes());
        out
    }

    #[test]
    fn uuencoded_blocks_decode() {
        let data: Vec<u8> = (0..=255)
            .chain(b"Steuer-ID 86095742719".iter().copied())
            .collect();
        let body = format!(
            "Hallo,\nanbei:\n\n{}\nGruss\n",
            uuencode("liste.txt", &data)
        );
        let files = files(body.as_bytes(), 10, 1 << 20);
        assert_eq!(files, vec![("liste.txt".to_owned(), Ok(data))]);
    }

    #[test]
    fn yenc_blocks_decode() {
        let data: Vec<u8> = (0..=255).rev().chain(b"VS-NfD".iter().copied()).collect();
        let mut body = b"Text davor\r\n".to_vec();
        body.extend(yencode("vermerk 1.txt", &data));
        let files = files(&body, 10, 1 << 20);
        assert_eq!(files, vec![("vermerk 1.txt".to_owned(), Ok(data))]);
    }

    #[test]
    fn ordinary_text_has_no_files() {
        let body = b"Wir begin 10 Uhr. begin 644 is not at a line start.\nbegin morgen\n";
        assert!(files(body, 10, 1 << 20).is_empty());
    }

    #[test]
    fn limits_fail_closed() {
        let body = uuencode("big.bin", &[7; 1000]);
        assert!(files(body.as_bytes(), 10, 100)[0].1.is_err());
        let many = uuencode("a", b"x").repeat(3);
        assert!(
            files(many.as_bytes(), 2, 100)
                .last()
                .expect("some")
                .1
                .is_err()
        );
    }
}
