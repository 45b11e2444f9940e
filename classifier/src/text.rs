//! Text as the detectors see it: normalised the way a reader reads it, a same-length
//! lower-case copy for keyword search, and character windows around a match.

use unicode_normalization::UnicodeNormalization as _;
use unicode_normalization::char::{canonical_combining_class, compose};
use unicode_properties::{GeneralCategory, UnicodeGeneralCategory as _};

/// The text a reader sees, in the forms the detectors match:
/// - Unicode compatibility forms folded (NFKC): full-width and mathematical digits and
///   letters, superscripts, ligatures become their plain forms; combining marks compose with
///   the character before them ("u" + U+0308 is "ü");
/// - every format character (category Cf: soft hyphen, LRM/RLM, ZWSP/ZWJ/ZWNJ, U+2060–U+2064,
///   BOM, …) and the combining grapheme joiner removed — a reader does not see them;
/// - every space separator (category Zs: NBSP, narrow NBSP, figure, thin, ideographic spaces)
///   and the tab become a space; line and paragraph separators a line feed; CR is dropped;
/// - every dash (category Pd: hyphen, non-breaking hyphen, en and em dash, …), the minus sign
///   and the middle dot become `-`, so identifiers may be grouped with any of them.
#[must_use]
pub(crate) fn normalise(text: &str) -> String {
    // ASCII (but tab and CR) and the Latin-1 letters U+00C0–U+00FF (lead byte C3: umlauts,
    // ß, accented letters — all NFKC-stable) are copied in runs; only the rest is looked at
    // character by character, so German text stays fast.
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < bytes.len() {
        let run = i;
        loop {
            i += plain_ascii_len(&bytes[i..]);
            match bytes.get(i) {
                // A combining mark after the letter must still compose with it: stop before it.
                Some(0xC3) if !bytes.get(i + 2).is_some_and(|&b| b == 0xCC || b == 0xCD) => {
                    i += 2;
                }
                _ => break,
            }
        }
        out.push_str(&text[run..i]);
        let Some(c) = text[i..].chars().next() else {
            break;
        };
        i += c.len_utf8();
        if c.is_ascii() {
            push_mapped(&mut out, c);
        } else {
            // Compatibility decomposition and composition of this character; the parts are
            // mapped again (a full-width hyphen-minus is a dash, a compatibility space a space).
            for d in std::iter::once(c).nfkc() {
                push_mapped(&mut out, d);
            }
        }
    }
    out
}

/// The length of the leading run of ASCII bytes other than tab and CR: the bytes
/// [`normalise`] copies unchanged. Checked 16 bytes at a time (a branch-free test the
/// compiler vectorises): mail is mostly such runs, and a byte-by-byte loop was a tenth of
/// the time spent on plain text.
fn plain_ascii_len(bytes: &[u8]) -> usize {
    let copied = |b: u8| b < 0x80 && b != b'\t' && b != b'\r';
    let mut n = 0;
    for chunk in bytes.chunks_exact(16) {
        if !chunk.iter().fold(true, |all, &b| all & copied(b)) {
            break;
        }
        n += 16;
    }
    n + bytes[n..].iter().take_while(|&&b| copied(b)).count()
}

/// Appends `c` as [`normalise`] maps it (after NFKC).
fn push_mapped(out: &mut String, c: char) {
    match c {
        '\t' => out.push(' '),
        '\r' | '\u{034F}' => {}
        '\u{2028}' | '\u{2029}' => out.push('\n'),
        '\u{00B7}' | '\u{2212}' | '\u{2027}' | '\u{30FB}' => out.push('-'),
        c if c.is_ascii() => out.push(c),
        c => match c.general_category() {
            GeneralCategory::Format => {}
            GeneralCategory::SpaceSeparator => out.push(' '),
            GeneralCategory::DashPunctuation => out.push('-'),
            _ if canonical_combining_class(c) != 0 => {
                // A combining mark: compose it with the character before where Unicode has a
                // precomposed form (as NFKC over the whole text would).
                match out.pop() {
                    Some(base) => match compose(base, c) {
                        Some(composed) => out.push(composed),
                        None => {
                            out.push(base);
                            out.push(c);
                        }
                    },
                    None => out.push(c),
                }
            }
            _ => out.push(c),
        },
    }
}

/// A lower-case copy with the same byte offsets: ASCII and the German umlauts change case in
/// place (their upper and lower forms have equal UTF-8 lengths); other characters stay.
#[must_use]
pub(crate) fn lower_same_offsets(text: &str) -> String {
    let mut lower = text.to_ascii_lowercase();
    // Ä Ö Ü are C3 84, C3 96, C3 9C in UTF-8; ä ö ü are the same plus 0x20 in the second byte.
    // Capital umlauts are rare: find the lead bytes with memchr and rewrite only those (no
    // byte loop, and no second UTF-8 validation of the whole text).
    let mut at = 0;
    while let Some(i) = memchr::memchr(0xC3, &lower.as_bytes()[at..]) {
        let lead = at + i;
        let small = match lower.as_bytes().get(lead + 1) {
            Some(0x84) => "ä",
            Some(0x96) => "ö",
            Some(0x9C) => "ü",
            _ => "",
        };
        if !small.is_empty() {
            lower.replace_range(lead..lead + 2, small);
        }
        at = lead + 1;
    }
    lower
}

/// The byte range `chars` characters before `start` and after `end`, on char boundaries.
#[must_use]
pub(crate) fn window(text: &str, start: usize, end: usize, chars: usize) -> (usize, usize) {
    let from = text[..start]
        .char_indices()
        .rev()
        .nth(chars.saturating_sub(1))
        .map_or(0, |(i, _)| i);
    let to = text[end..]
        .char_indices()
        .nth(chars)
        .map_or(text.len(), |(i, _)| end + i);
    (from, to)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The definition `normalise` must keep: map, NFKC over the whole text, map again.
    fn reference(text: &str) -> String {
        fn map(c: char) -> Option<char> {
            match c {
                '\t' => Some(' '),
                '\r' | '\u{034F}' => None,
                '\u{2028}' | '\u{2029}' => Some('\n'),
                '\u{00B7}' | '\u{2212}' | '\u{2027}' | '\u{30FB}' => Some('-'),
                c if c.is_ascii() => Some(c),
                c => match c.general_category() {
                    GeneralCategory::Format => None,
                    GeneralCategory::SpaceSeparator => Some(' '),
                    GeneralCategory::DashPunctuation => Some('-'),
                    _ => Some(c),
                },
            }
        }
        let mapped: String = text.chars().filter_map(map).collect();
        mapped.nfkc().filter_map(map).collect()
    }

    proptest! {
        #[test]
        fn normalise_matches_its_definition(text in "[a-zA-ZäöüÄÖÜß0-9 .\t\r\n\u{00A0}\u{00AD}\u{00B2}\u{00B7}\u{200B}\u{200E}\u{2060}\u{2063}\u{202F}\u{2013}\u{2014}\u{2212}\u{20AC}\u{FEFF}\u{00E9}\u{0308}\u{3000}\u{FF10}-\u{FF19}\u{FF21}-\u{FF3A}\u{FF0D}\u{1D7CE}-\u{1D7D7}\u{FB01}\u{2028}]{0,200}") {
            let n = normalise(&text);
            prop_assert_eq!(&n, &reference(&text));
            prop_assert_eq!(normalise(&n), n.clone(), "idempotent");
            let lower = lower_same_offsets(&text);
            prop_assert_eq!(lower.len(), text.len());
            let reference_lower: String = text
                .chars()
                .map(|c| match c {
                    'Ä' => 'ä',
                    'Ö' => 'ö',
                    'Ü' => 'ü',
                    c => c.to_ascii_lowercase(),
                })
                .collect();
            prop_assert_eq!(lower, reference_lower);
        }
    }

    /// Issue #10.2: what a reader reads as the same number is the same number.
    #[test]
    fn compatibility_forms_invisible_marks_and_dashes_are_read_as_a_reader_does() {
        assert_eq!(normalise("８６０９５７４２７１９"), "86095742719");
        assert_eq!(normalise("𝟖𝟔𝟎𝟗𝟓"), "86095");
        assert_eq!(
            normalise("86\u{200E}095\u{2063}742\u{FEFF}719"),
            "86095742719"
        );
        assert_eq!(normalise("86—095–742‑719"), "86-095-742-719");
        assert_eq!(normalise("VS\u{2014}NfD"), "VS-NfD");
        assert_eq!(normalise("fu\u{0308}r"), "für");
        assert_eq!(normalise("ﬁnanzamt\u{3000}m²"), "finanzamt m2");
    }

    #[test]
    fn separators_are_normalised() {
        assert_eq!(
            normalise("86\u{00A0}095\u{202F}742 7\u{00AD}19"),
            "86 095 742 719"
        );
        assert_eq!(normalise("a\r\nb"), "a\nb");
    }

    #[test]
    fn lower_case_keeps_offsets() {
        let t = "FÜHRERSCHEIN Äpfel Straße";
        let l = lower_same_offsets(t);
        assert_eq!(l.len(), t.len());
        assert_eq!(l, "führerschein äpfel straße");
    }

    #[test]
    fn windows_count_characters() {
        let t = "äääää12345äääää";
        let start = t.find('1').unwrap();
        let (a, b) = window(t, start, start + 5, 2);
        assert_eq!(&t[a..b], "ää12345ää");
        assert_eq!(window(t, 0, t.len(), 10), (0, t.len()));
    }
}
