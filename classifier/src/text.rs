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
///   and the middle dot become `-`, so identifiers may be grouped with any of them;
/// - every decimal digit (category Nd: Arabic-Indic, Devanagari, … — NFKC folds only the
///   compatibility forms) becomes its ASCII digit: a reader reads a digit, and the
///   identifier patterns look for ASCII ones.
#[cfg(test)]
#[must_use]
pub(crate) fn normalise(text: &str) -> String {
    normalise_noting_digits(text).0
}

/// [`normalise`], and where in its result stand the digits it folded from another script
/// (category Nd beyond ASCII and its compatibility forms), ascending: the identifier
/// detectors also read a number without them.
#[must_use]
pub(crate) fn normalise_noting_digits(text: &str) -> (String, Vec<usize>) {
    // ASCII (but tab and CR) and the Latin-1 letters U+00C0–U+00FF (lead byte C3: umlauts,
    // ß, accented letters — all NFKC-stable) are copied in runs; only the rest is looked at
    // character by character, so German text stays fast.
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut digits = Vec::new();
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
                if !d.is_ascii() && d.general_category() == GeneralCategory::DecimalNumber {
                    digits.push(out.len());
                }
                push_mapped(&mut out, d);
            }
        }
    }
    (out, digits)
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
            GeneralCategory::DecimalNumber => out.push(ascii_digit(c)),
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

/// The first digit (zero) of every run of decimal digits (category Nd) beyond ASCII, in
/// ascending order. Unicode encodes each script's digits as one run from 0 to 9 (Unicode
/// Standard §4.6), so a digit's value is its distance from the zero before it; the tests
/// check this list against the general category of every character.
const DIGIT_ZEROS: [u32; 76] = [
    0x660, 0x6F0, 0x7C0, 0x966, 0x9E6, 0xA66, 0xAE6, 0xB66, 0xBE6, 0xC66, 0xCE6, 0xD66, 0xDE6,
    0xE50, 0xED0, 0xF20, 0x1040, 0x1090, 0x17E0, 0x1810, 0x1946, 0x19D0, 0x1A80, 0x1A90, 0x1B50,
    0x1BB0, 0x1C40, 0x1C50, 0xA620, 0xA8D0, 0xA900, 0xA9D0, 0xA9F0, 0xAA50, 0xABF0, 0xFF10,
    0x104A0, 0x10D30, 0x10D40, 0x11066, 0x110F0, 0x11136, 0x111D0, 0x112F0, 0x11450, 0x114D0,
    0x11650, 0x116C0, 0x116D0, 0x116DA, 0x11730, 0x118E0, 0x11950, 0x11BF0, 0x11C50, 0x11D50,
    0x11DA0, 0x11DE0, 0x11F50, 0x16130, 0x16A60, 0x16AC0, 0x16B50, 0x16D70, 0x1CCF0, 0x1D7CE,
    0x1D7D8, 0x1D7E2, 0x1D7EC, 0x1D7F6, 0x1E140, 0x1E2F0, 0x1E4F0, 0x1E5F1, 0x1E950, 0x1FBF0,
];

/// The ASCII digit a decimal digit (category Nd) stands for.
fn ascii_digit(c: char) -> char {
    let at = DIGIT_ZEROS.partition_point(|&zero| zero <= u32::from(c));
    let value = at
        .checked_sub(1)
        .map(|i| u32::from(c) - DIGIT_ZEROS[i])
        .filter(|&value| value < 10);
    // A digit of a script newer than the list stays as it is (and is no digit to the
    // identifier patterns); the tests keep the list complete.
    value.map_or(c, |value| char::from(b'0' + value as u8))
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
                    GeneralCategory::DecimalNumber => char::from_digit(digit_value(c), 10),
                    _ => Some(c),
                },
            }
        }
        let mapped: String = text.chars().filter_map(map).collect();
        mapped.nfkc().filter_map(map).collect()
    }

    proptest! {
        #[test]
        fn normalise_matches_its_definition(text in "[a-zA-ZäöüÄÖÜß0-9 .\t\r\n\u{00A0}\u{00AD}\u{00B2}\u{00B7}\u{200B}\u{200E}\u{2060}\u{2063}\u{202F}\u{2013}\u{2014}\u{2212}\u{20AC}\u{FEFF}\u{00E9}\u{0308}\u{3000}\u{FF10}-\u{FF19}\u{FF21}-\u{FF3A}\u{FF0D}\u{1D7CE}-\u{1D7D7}\u{FB01}\u{2028}\u{0660}-\u{0669}\u{0966}-\u{096F}\u{1040}-\u{1049}]{0,200}") {
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

    /// A decimal digit's value by the rule Unicode keeps: digits come in runs of ten, from
    /// zero up, one after another where they follow each other without a gap.
    fn digit_value(c: char) -> u32 {
        let is_digit = |code: u32| {
            char::from_u32(code)
                .is_some_and(|c| c.general_category() == GeneralCategory::DecimalNumber)
        };
        let code = u32::from(c);
        let first = (0..=code)
            .rev()
            .take_while(|&b| is_digit(b))
            .last()
            .unwrap_or(code);
        (code - first) % 10
    }

    #[test]
    fn every_decimal_digit_is_read_as_its_ascii_digit() {
        let mut digits = 0;
        for c in (0x80..=0x10FFFF).filter_map(char::from_u32) {
            if c.general_category() == GeneralCategory::DecimalNumber {
                digits += 1;
                assert_eq!(
                    ascii_digit(c).to_digit(10),
                    Some(digit_value(c)),
                    "{c:?} U+{:04X}",
                    u32::from(c)
                );
            }
        }
        assert!(digits > 600, "{digits} decimal digits beyond ASCII");
        assert_eq!(normalise("٨٦٠٩٥٧٤٢٧١٩"), "86095742719");
        assert_eq!(
            normalise_noting_digits("a٨b８c९"),
            ("a8b8c9".to_owned(), vec![1, 5])
        );
        assert_eq!(normalise("८६०९५ ७४२ ७१९"), "86095 742 719");
        assert_eq!(ascii_digit('x'), 'x');
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
