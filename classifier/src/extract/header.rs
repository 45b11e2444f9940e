//! Header field values as a mail client shows them.
//!
//! - RFC 2047 encoded words are decoded, and adjacent ones (separated only by folding
//!   whitespace, §6.2) of the same charset are joined *before* charset decoding, so a
//!   character split across two words ("f=C3?= =?UTF-8?Q?=BCr") survives.
//! - Undeclared 8-bit bytes, unknown charsets and `unknown-8bit` are read as UTF-8 when they
//!   are valid UTF-8, else as Windows-1252 — as mail clients do; never as U+FFFD.

use mail_parser::decoders::base64::base64_decode;
use mail_parser::decoders::charsets::map::charset_decoder;

/// The decoded, unfolded text of a raw header value (the bytes after `Name:`).
#[must_use]
pub(crate) fn decode(raw: &[u8]) -> String {
    let raw = unfold(raw);
    let mut out = String::with_capacity(raw.len());
    // Bytes of adjacent encoded words of one charset, not yet decoded.
    let mut pending: Option<(String, Vec<u8>)> = None;
    let mut plain_start = 0;
    let mut after_word = false;
    let mut i = 0;
    while i < raw.len() {
        let word = raw[i..]
            .starts_with(b"=?")
            .then(|| encoded_word(&raw[i..]))
            .flatten();
        let Some(word) = word else {
            i += 1;
            continue;
        };
        let between = &raw[plain_start..i];
        if after_word && between.iter().all(|b| matches!(b, b' ' | b'\t')) {
            // Whitespace between adjacent encoded words is not shown (§6.2); words of one
            // charset are joined into one byte string.
            let same = pending
                .as_ref()
                .is_some_and(|(charset, _)| charset.eq_ignore_ascii_case(&word.charset));
            if !same {
                flush(&mut out, pending.take());
            }
        } else {
            flush(&mut out, pending.take());
            out.push_str(&eight_bit(between));
        }
        match &mut pending {
            Some((_, bytes)) => bytes.extend_from_slice(&word.bytes),
            None => pending = Some((word.charset, word.bytes)),
        }
        i += word.len;
        plain_start = i;
        after_word = true;
    }
    flush(&mut out, pending);
    out.push_str(&eight_bit(&raw[plain_start..]));
    out.trim().to_owned()
}

/// Header fields whose value is text a reader sees (or that leaves with the message):
/// the subject, every address field (display names), free-text fields, and `X-…` fields —
/// except the machine-written families of mail servers and filters, whose ids and scores are
/// no one's words.
#[must_use]
pub(crate) fn carries_text(name: &str) -> bool {
    const TEXT: [&str; 13] = [
        "subject",
        "from",
        "to",
        "cc",
        "bcc",
        "reply-to",
        "sender",
        "comments",
        "keywords",
        "organization",
        "thread-topic",
        "content-description",
        "disposition-notification-to",
    ];
    const MACHINE: [&str; 14] = [
        "x-ms-",
        "x-microsoft-",
        "x-forefront-",
        "x-exchange-",
        "x-eopattributedmessage",
        "x-spam",
        "x-virus",
        "x-originating-ip",
        "x-mailer",
        "x-google-",
        "x-gm-",
        "x-received",
        "x-mimeole",
        "x-field-expected",
    ];
    let lower = name.to_ascii_lowercase();
    TEXT.contains(&lower.as_str())
        || (lower.starts_with("x-") && !MACHINE.iter().any(|m| lower.starts_with(m)))
}

/// Bytes read as a mail client does when no charset is declared: UTF-8 if valid, else
/// Windows-1252.
#[must_use]
pub(crate) fn eight_bit(bytes: &[u8]) -> String {
    match std::str::from_utf8(bytes) {
        Ok(s) => s.to_owned(),
        Err(_) => windows_1252(bytes),
    }
}

/// Bytes in `charset`; unknown charsets (and `unknown-8bit`) as undeclared 8-bit.
#[must_use]
pub(crate) fn in_charset(charset: &str, bytes: &[u8]) -> String {
    let label = charset.trim().to_ascii_lowercase();
    if matches!(
        label.as_str(),
        "utf-8" | "utf8" | "us-ascii" | "ascii" | "unknown-8bit"
    ) {
        return eight_bit(bytes);
    }
    match charset_decoder(label.as_bytes()) {
        Some(decode) => decode(bytes),
        None => eight_bit(bytes),
    }
}

fn windows_1252(bytes: &[u8]) -> String {
    charset_decoder(b"cp1252").expect("mail-parser knows cp1252")(bytes)
}

fn flush(out: &mut String, pending: Option<(String, Vec<u8>)>) {
    if let Some((charset, bytes)) = pending {
        out.push_str(&in_charset(&charset, &bytes));
    }
}

/// Removes CRLF (or LF) followed by whitespace: RFC 5322 §2.2.3 unfolding.
fn unfold(raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(raw.len());
    out.extend(raw.iter().filter(|&&b| b != b'\r' && b != b'\n'));
    out
}

struct Word {
    charset: String,
    bytes: Vec<u8>,
    /// Length of the whole `=?…?=` token.
    len: usize,
}

/// Parses `=?charset[*lang]?B|Q?text?=` at the start of `s`.
fn encoded_word(s: &[u8]) -> Option<Word> {
    let rest = &s[2..];
    let q1 = rest.iter().position(|&b| b == b'?')?;
    let charset = std::str::from_utf8(&rest[..q1]).ok()?;
    // RFC 2231 §5: a language may follow the charset after '*'.
    let charset = charset.split('*').next().unwrap_or(charset);
    if charset.is_empty() || charset.contains([' ', '\t']) {
        return None;
    }
    let encoding = *rest.get(q1 + 1)?;
    if rest.get(q1 + 2) != Some(&b'?') {
        return None;
    }
    let text_start = q1 + 3;
    let text_len = rest[text_start..].windows(2).position(|w| w == b"?=")?;
    let text = &rest[text_start..text_start + text_len];
    if text.contains(&b' ') {
        return None;
    }
    let bytes = match encoding.to_ascii_uppercase() {
        b'B' => base64_decode(text)?,
        b'Q' => q_decode(text),
        _ => return None,
    };
    Some(Word {
        charset: charset.to_owned(),
        bytes,
        len: 2 + text_start + text_len + 2,
    })
}

/// RFC 2047 §4.2 "Q": `_` is a space, `=XX` a byte.
fn q_decode(text: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len());
    let mut i = 0;
    while i < text.len() {
        match text[i] {
            b'_' => out.push(b' '),
            b'=' => match text.get(i + 1..i + 3) {
                Some(&[h, l]) if h.is_ascii_hexdigit() && l.is_ascii_hexdigit() => {
                    out.push(hex_value(h) << 4 | hex_value(l));
                    i += 3;
                    continue;
                }
                _ => out.push(b'='),
            },
            b => out.push(b),
        }
        i += 1;
    }
    out
}

fn hex_value(digit: u8) -> u8 {
    match digit {
        b'0'..=b'9' => digit - b'0',
        _ => (digit | 0x20) - b'a' + 10,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adjacent_encoded_words_are_joined_before_charset_decoding() {
        assert_eq!(
            decode(b" =?UTF-8?Q?Vermerk_VS_=E2=80=93_Nur_f=C3?=\r\n =?UTF-8?Q?=BCr_den_Dienstgebrauch?="),
            "Vermerk VS \u{2013} Nur für den Dienstgebrauch"
        );
        assert_eq!(
            decode(b"=?utf-8?B?TnVyIGbD?= =?utf-8?B?vHIgZGVu?= Dienstgebrauch"),
            "Nur für den Dienstgebrauch"
        );
        // Different charsets are decoded apart; the space between them is not shown.
        assert_eq!(
            decode(b"=?ISO-8859-1?Q?Gr=FC=DFe?= =?UTF-8?Q?_aus_K=C3=B6ln?="),
            "Grüße aus Köln"
        );
        // Text between words stays; a word next to text keeps that text's spaces.
        assert_eq!(
            decode(b"Re: =?UTF-8?Q?Pr=C3=BCfung?= morgen"),
            "Re: Prüfung morgen"
        );
    }

    #[test]
    fn undeclared_8bit_and_unknown_charsets_never_become_replacement_characters() {
        assert_eq!(
            decode(b"Nur f\xFCr den Dienstgebrauch"),
            "Nur für den Dienstgebrauch"
        );
        assert_eq!(decode("Nur für".as_bytes()), "Nur für");
        assert_eq!(decode(b"=?x-unknown?Q?f=FCr?="), "für");
        assert_eq!(decode(b"=?unknown-8bit?Q?f=C3=BCr?="), "für");
        assert_eq!(eight_bit(b"\x80 \x84Zitat\x93 \x96"), "€ „Zitat“ –");
    }

    #[test]
    fn broken_encoded_words_are_kept_as_text() {
        assert_eq!(
            decode(b"=?UTF-8?X?abc?= =?UTF-8?Q?a b?="),
            "=?UTF-8?X?abc?= =?UTF-8?Q?a b?="
        );
    }
}
