//! MIME parameters as RFC 2231 defines them, for file names.
//!
//! A long or non-ASCII file name comes in continuations (`filename*0*=utf-8''Steuer%E2`,
//! `filename*1*=%80%93ID…`): the percent-decoded bytes of all segments are joined *before*
//! the charset is applied (RFC 2231 §3–§4), so a character split between two segments
//! survives. mail-parser 0.11 decodes each segment on its own and turns such a character
//! into U+FFFD. Quoted names holding encoded words (as Outlook writes them) are decoded like
//! any header text.

use super::header;

/// The value of parameter `name` (`filename`, `name`) in the raw header value `raw`
/// (the bytes after `Content-Disposition:`), decoded; `None` when absent.
#[must_use]
pub(super) fn parameter(raw: &[u8], name: &str) -> Option<String> {
    let raw: Vec<u8> = raw
        .iter()
        .copied()
        .filter(|&b| b != b'\r' && b != b'\n')
        .collect();
    let mut plain: Option<Vec<u8>> = None;
    // (index, extended, bytes) of `name*N` / `name*N*` / `name*`.
    let mut segments: Vec<(u32, bool, Vec<u8>)> = Vec::new();
    for (key, value) in pairs(&raw).into_iter().skip(1) {
        let key = String::from_utf8_lossy(key).trim().to_ascii_lowercase();
        let Some(rest) = key.strip_prefix(name) else {
            continue;
        };
        match rest {
            "" => plain = Some(value),
            "*" => segments.push((0, true, value)),
            _ => {
                let Some(rest) = rest.strip_prefix('*') else {
                    continue;
                };
                let (index, extended) = match rest.strip_suffix('*') {
                    Some(index) => (index, true),
                    None => (rest, false),
                };
                if let Ok(index) = index.parse::<u32>() {
                    segments.push((index, extended, value));
                }
            }
        }
    }
    if segments.is_empty() {
        return plain.map(|v| header::decode(&v));
    }
    segments.sort_by_key(|(index, _, _)| *index);
    let mut charset = String::new();
    let mut bytes = Vec::new();
    for (i, (index, extended, value)) in segments.iter().enumerate() {
        // Segments must count up from 0 without gaps (§3); stop where they do not.
        if usize::try_from(*index).ok() != Some(i) {
            break;
        }
        let mut value = value.as_slice();
        if *extended && i == 0 {
            // charset'language'text
            let mut parts = value.splitn(3, |&b| b == b'\'');
            if let (Some(cs), Some(_), Some(text)) = (parts.next(), parts.next(), parts.next()) {
                charset = String::from_utf8_lossy(cs).into_owned();
                value = text;
            }
        }
        if *extended {
            bytes.extend(percent_decode(value));
        } else {
            bytes.extend_from_slice(value);
        }
    }
    let text = if charset.is_empty() {
        header::eight_bit(&bytes)
    } else {
        header::in_charset(&charset, &bytes)
    };
    Some(if text.contains("=?") {
        header::decode(text.as_bytes())
    } else {
        text
    })
}

/// `;`-separated `key=value` pairs (the first item is the type or disposition), quoted
/// strings unquoted (RFC 2045 §5.1, RFC 5322 §3.2.4).
fn pairs(raw: &[u8]) -> Vec<(&[u8], Vec<u8>)> {
    let mut out = Vec::new();
    let mut i = 0;
    let mut first = true;
    while i <= raw.len() {
        let start = i;
        // The key (or the leading type) runs to `=` or `;`.
        while i < raw.len() && raw[i] != b'=' && raw[i] != b';' {
            i += 1;
        }
        let key = &raw[start..i];
        let mut value = Vec::new();
        if i < raw.len() && raw[i] == b'=' && !first {
            i += 1;
            while i < raw.len() && matches!(raw[i], b' ' | b'\t') {
                i += 1;
            }
            if raw.get(i) == Some(&b'"') {
                i += 1;
                while i < raw.len() && raw[i] != b'"' {
                    if raw[i] == b'\\' && i + 1 < raw.len() {
                        i += 1;
                    }
                    value.push(raw[i]);
                    i += 1;
                }
                // Past the closing quote, to the next `;`.
                while i < raw.len() && raw[i] != b';' {
                    i += 1;
                }
            } else {
                let begin = i;
                while i < raw.len() && raw[i] != b';' {
                    i += 1;
                }
                value.extend_from_slice(raw[begin..i].trim_ascii());
            }
        } else {
            while i < raw.len() && raw[i] != b';' {
                i += 1;
            }
        }
        out.push((key, value));
        first = false;
        i += 1;
    }
    out
}

fn percent_decode(text: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len());
    let mut i = 0;
    while i < text.len() {
        let hex = |b: u8| char::from(b).to_digit(16);
        if text[i] == b'%'
            && let (Some(hi), Some(lo)) = (
                text.get(i + 1).copied().and_then(hex),
                text.get(i + 2).copied().and_then(hex),
            )
        {
            out.push(u8::try_from(hi * 16 + lo).unwrap_or(b'?'));
            i += 3;
            continue;
        }
        out.push(text[i]);
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn continuations_join_before_the_charset() {
        let raw = b" attachment;\r\n filename*0*=utf-8''Steuer%E2;\r\n filename*1*=%80%93ID%20%EF%BC;\r\n filename*2*=%98.txt";
        assert_eq!(
            parameter(raw, "filename").as_deref(),
            Some("Steuer\u{2013}ID \u{ff18}.txt")
        );
    }

    #[test]
    fn plain_quoted_and_encoded_word_names() {
        assert_eq!(
            parameter(b" attachment; filename=\"a;b \\\"c\\\".pdf\"", "filename").as_deref(),
            Some("a;b \"c\".pdf")
        );
        assert_eq!(
            parameter(
                b" application/pdf; name=\"=?utf-8?Q?f=C3=BCr.pdf?=\"",
                "name"
            )
            .as_deref(),
            Some("f\u{fc}r.pdf")
        );
        assert_eq!(parameter(b" inline", "filename"), None);
        assert_eq!(
            parameter(
                b" attachment; filename*=iso-8859-1'de'f%FCr.txt",
                "filename"
            )
            .as_deref(),
            Some("f\u{fc}r.txt")
        );
    }
}
