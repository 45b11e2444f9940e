//! Text as the detectors see it: separators normalised, a same-length lower-case copy for
//! keyword search, and character windows around a match.

/// Replaces the spacing characters that hide identifiers from a naive pattern (NBSP, narrow
/// NBSP, figure and thin spaces, tabs) by a plain space, and removes soft hyphens and
/// zero-width characters, which a reader does not see at all.
#[must_use]
pub(crate) fn normalise(text: &str) -> String {
    // Every character changed here starts with one of these bytes: tab, CR, C2 (U+00A0,
    // U+00AD), E2 (U+20xx), EF (U+FEFF). Umlauts (C3 xx) do not, so most text is copied in
    // long runs found with SIMD, and only the trigger bytes are looked at.
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    let mut next_a = memchr::memchr3(b'\t', b'\r', 0xC2, bytes);
    let mut next_b = memchr::memchr2(0xE2, 0xEF, bytes);
    loop {
        let at = match (next_a, next_b) {
            (None, None) => break,
            (Some(a), None) => a,
            (None, Some(b)) => b,
            (Some(a), Some(b)) => a.min(b),
        };
        out.extend_from_slice(&bytes[i..at]);
        let c = text[at..]
            .chars()
            .next()
            .expect("a trigger byte starts a character");
        match c {
            '\u{00A0}' | '\u{202F}' | '\u{2007}' | '\u{2009}' | '\u{2002}' | '\u{2003}' | '\t' => {
                out.push(b' ')
            }
            '\u{00AD}' | '\u{200B}' | '\u{200C}' | '\u{200D}' | '\u{2060}' | '\u{FEFF}' | '\r' => {}
            '\u{2010}' | '\u{2011}' | '\u{2012}' | '\u{2013}' => out.push(b'-'),
            other => out.extend_from_slice(other.encode_utf8(&mut [0; 4]).as_bytes()),
        }
        i = at + c.len_utf8();
        if next_a.is_some_and(|a| a < i) {
            next_a = memchr::memchr3(b'\t', b'\r', 0xC2, &bytes[i..]).map(|p| p + i);
        }
        if next_b.is_some_and(|b| b < i) {
            next_b = memchr::memchr2(0xE2, 0xEF, &bytes[i..]).map(|p| p + i);
        }
    }
    out.extend_from_slice(&bytes[i..]);
    String::from_utf8(out).expect("whole characters were copied or replaced by ASCII")
}

/// A lower-case copy with the same byte offsets: ASCII and the German umlauts change case in
/// place (their upper and lower forms have equal UTF-8 lengths); other characters stay.
#[must_use]
pub(crate) fn lower_same_offsets(text: &str) -> String {
    let mut bytes = text.as_bytes().to_ascii_lowercase();
    // Ä Ö Ü are C3 84, C3 96, C3 9C in UTF-8; ä ö ü are the same plus 0x20 in the second byte.
    let mut i = 0;
    while i + 1 < bytes.len() {
        if bytes[i] == 0xC3 && matches!(bytes[i + 1], 0x84 | 0x96 | 0x9C) {
            bytes[i + 1] += 0x20;
            i += 2;
        } else {
            i += 1;
        }
    }
    String::from_utf8(bytes).expect("case changes within UTF-8 sequences keep it valid")
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

    /// The definition `normalise` must keep, character by character.
    fn reference(text: &str) -> String {
        text.chars()
            .filter_map(|c| match c {
                '\u{00A0}' | '\u{202F}' | '\u{2007}' | '\u{2009}' | '\u{2002}' | '\u{2003}'
                | '\t' => Some(' '),
                '\u{00AD}' | '\u{200B}' | '\u{200C}' | '\u{200D}' | '\u{2060}' | '\u{FEFF}'
                | '\r' => None,
                '\u{2010}' | '\u{2011}' | '\u{2012}' | '\u{2013}' => Some('-'),
                c => Some(c),
            })
            .collect()
    }

    proptest! {
        #[test]
        fn normalise_matches_its_definition(text in "[a-zäöüß0-9 .\t\r\n\u{00A0}\u{00AD}\u{202F}\u{2013}\u{2014}\u{20AC}\u{FEFF}\u{00E9}]{0,200}") {
            prop_assert_eq!(normalise(&text), reference(&text));
            let lower = lower_same_offsets(&text);
            prop_assert_eq!(lower.len(), text.len());
        }
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
