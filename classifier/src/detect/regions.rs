//! Where in a segment an identifier or an ICD-10 code can stand at all, from one pass over
//! its bytes.
//!
//! The identifier patterns start with a character class (`[1-9]`, `[A-Z]`), so the regex
//! engine has no literal to skip ahead to and steps through every byte of every mail; that
//! was a quarter of the classifier's time on plain text. Every pattern needs something
//! prose rarely has, though, and a word-at-a-time test over eight bytes finds it:
//! - **numbers** (Steuer-ID, card, RVNR, KVNR, the old ID card): at least nine ASCII digits,
//!   no two of them more than seven bytes apart (the widest gap a pattern allows is the
//!   Steuer-ID's ` {0,3}-? {0,3}`). A match starts at its first digit or, for the KVNR's
//!   `[A-Z] ?`, at most two bytes before it, and ends with a digit;
//! - **IBANs**: two ASCII letters followed by two ASCII digits; the match
//!   `[A-Z]{2}\d{2}[ -]?[A-Z0-9]{2}` ends at most five bytes after the letters' end;
//! - **codes** (ID card and passport since 2010, driving licence): a run of at least nine
//!   bytes of `[A-Z0-9]`, of which the whole match consists;
//! - **ICD-10 codes** (for the health facts): a capital letter but U, two digits after it,
//!   and no word byte before it.
//!
//! Each is a *necessary* condition of its patterns, so every match of a pattern over the
//! whole text lies inside one region of its kind; overlapping regions are merged, so no
//! match crosses from one to the next. Searching the regions (with the whole text as
//! context for `\b`) therefore finds exactly the matches a search of the whole text finds —
//! the tests check that on generated text.

use std::ops::Range;

use crate::swar::{in_range, is_word_byte, runs, words};

/// The byte ranges of a text where identifiers of each kind may stand, ascending and
/// disjoint within each kind.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Regions {
    /// Chains of at least [`NUMBER_DIGITS`] digits.
    pub(crate) numbers: Vec<Number>,
    /// Two letters and two digits, with room for the IBAN pattern around them.
    pub(crate) ibans: Vec<Range<usize>>,
    /// Runs of at least [`CODE_LEN`] bytes of `[A-Z0-9]`.
    pub(crate) codes: Vec<Range<usize>>,
    /// Where an ICD-10 code may start, ascending.
    pub(crate) icd: Vec<usize>,
}

/// A chain of digits, none more than [`NUMBER_GAP`] bytes from the next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Number {
    /// From [`NUMBER_LEAD`] bytes before the first digit to the end of the last.
    pub(crate) range: Range<usize>,
    /// How many digits it has.
    pub(crate) digits: usize,
    /// Its longest run of digits without anything between them.
    pub(crate) run: usize,
}

/// The fewest digits of a number pattern: the KVNR's nine.
const NUMBER_DIGITS: usize = 9;
/// The widest gap between two digits of one number: the Steuer-ID's ` {0,3}-? {0,3}`.
const NUMBER_GAP: usize = 7;
/// Bytes a number match may start before its first digit: the KVNR's `[A-Z] ?`.
const NUMBER_LEAD: usize = 2;
/// The shortest code: nine characters (ID card and passport without check digit).
const CODE_LEN: usize = 9;

/// The bytes of `mask` (high bits of bytes) that begin four set bytes in a row.
#[inline(always)]
fn four_in_a_row(mask: u64) -> u64 {
    mask & (mask >> 8) & (mask >> 16) & (mask >> 24)
}

fn is_code(b: u8) -> bool {
    b.is_ascii_uppercase() || b.is_ascii_digit()
}

impl Regions {
    /// Finds the regions of `text`: a few instructions per eight bytes where there is no
    /// digit and no four capitals or digits in a row, which is most of prose.
    pub(crate) fn find(text: &str) -> Self {
        let bytes = text.as_bytes();
        let mut scan = Scan {
            bytes,
            regions: Self::default(),
            chain: None,
            codes_until: 0,
        };
        // A tight loop that only tests words; what it finds is looked at out of line (a
        // loop that did both kept its state on the stack).
        for (at, word) in words(bytes) {
            scan.word(at, word);
        }
        scan.end_chain();
        scan.regions
    }
}

struct Scan<'a> {
    bytes: &'a [u8],
    regions: Regions,
    /// The open digit chain, its last digit and the run of digits ending there.
    chain: Option<(Number, usize, usize)>,
    /// Code runs before this offset are already looked at.
    codes_until: usize,
}

impl Scan<'_> {
    /// Looks at the eight bytes from `at` (zero-padded past the end).
    #[inline(always)]
    fn word(&mut self, at: usize, word: u64) {
        let digits = in_range(word, b'0', b'9');
        let codes = digits | in_range(word, b'A', b'Z');
        // A run of nine has at least five bytes in one of the two words it touches; a word
        // holds at most one run of four.
        let fours = four_in_a_row(codes);
        if digits | fours != 0 {
            self.found(at, digits, fours);
        }
    }

    /// A word from `at` with `digits` and the starts of four `[A-Z0-9]` in a row, `fours`.
    #[inline(never)]
    fn found(&mut self, at: usize, digits: u64, fours: u64) {
        if fours != 0 {
            self.code_run(at + (fours.trailing_zeros() / 8) as usize);
        }
        // Each run of digits in the word at once: dates and amounts are runs of two to four.
        for (first, len) in runs(digits) {
            self.digits(at + first, len);
        }
    }

    /// A run of `len` digits from `p` (it may go on a run that ended the previous word).
    fn digits(&mut self, p: usize, len: usize) {
        let last = p + len - 1;
        match &mut self.chain {
            Some((number, chain_last, run)) if p - *chain_last <= NUMBER_GAP + 1 => {
                *run = if p == *chain_last + 1 {
                    *run + len
                } else {
                    len
                };
                *chain_last = last;
                number.digits += len;
                number.run = number.run.max(*run);
            }
            _ => {
                self.end_chain();
                let number = Number {
                    range: p.saturating_sub(NUMBER_LEAD)..last + 1,
                    digits: len,
                    run: len,
                };
                self.chain = Some((number, last, len));
            }
        }
        let b = self.bytes;
        // An ICD-10 code: a capital but U right before the run, two digits, and no word
        // byte before the capital. (A run going on from the word before has a digit there.)
        if p >= 1
            && b[p - 1].is_ascii_uppercase()
            && b[p - 1] != b'U'
            && b.get(p + 1).is_some_and(u8::is_ascii_digit)
            && (p == 1 || !is_word_byte(b[p - 2]))
        {
            self.regions.icd.push(p - 1);
        }
        // An IBAN: two letters right before the run, and two digits.
        if p >= 2
            && b.get(p + 1).is_some_and(u8::is_ascii_digit)
            && b[p - 2].is_ascii_alphabetic()
            && b[p - 1].is_ascii_alphabetic()
        {
            push_merged(&mut self.regions.ibans, p - 2..(p + 5).min(b.len()));
        }
    }

    fn end_chain(&mut self) {
        if let Some((mut number, last, _)) = self.chain.take()
            && number.digits >= NUMBER_DIGITS
        {
            // Chains are more than NUMBER_GAP > NUMBER_LEAD bytes apart: they never overlap.
            number.range.end = last + 1;
            self.regions.numbers.push(number);
        }
    }

    /// The whole run of code bytes around `p`, if it is not looked at yet.
    fn code_run(&mut self, p: usize) {
        if p < self.codes_until {
            return;
        }
        let b = self.bytes;
        let start = b[..p]
            .iter()
            .rposition(|&c| !is_code(c))
            .map_or(0, |i| i + 1);
        let end = b[p..]
            .iter()
            .position(|&c| !is_code(c))
            .map_or(b.len(), |i| p + i);
        self.codes_until = end;
        if end - start >= CODE_LEN {
            push_merged(&mut self.regions.codes, start..end);
        }
    }
}

/// Appends `range` to ascending `ranges`, merged with the last one where they overlap.
fn push_merged(ranges: &mut Vec<Range<usize>>, range: Range<usize>) {
    match ranges.last_mut() {
        Some(last) if range.start < last.end => last.end = last.end.max(range.end),
        _ => ranges.push(range),
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        /// Every place with an ICD-10 code's shape is found, as a byte-by-byte test finds it.
        #[test]
        fn icd_shapes_are_found_wherever_they_stand(
            text in "([A-Z]{1,2}|[0-9]{1,4}|[a-zä .:,]{1,3}|U|\\n){0,40}",
        ) {
            let b = text.as_bytes();
            let expected: Vec<usize> = (0..b.len().saturating_sub(2))
                .filter(|&at| {
                    b[at].is_ascii_uppercase()
                        && b[at] != b'U'
                        && b[at + 1].is_ascii_digit()
                        && b[at + 2].is_ascii_digit()
                        && (at == 0 || !is_word_byte(b[at - 1]))
                })
                .collect();
            prop_assert_eq!(Regions::find(&text).icd, expected);
        }
    }

    #[test]
    fn regions_of_each_kind() {
        let text = "Tel. 0531 470-2210, Steuer-ID 86 095 742 719, am 12.11.2026; IBAN DE89 3704 \
                    0044 0532 0130 00; Ausweis L01X00T471 und VERTRAULICH; Ende 123456789";
        let r = Regions::find(text);
        let at = |s: &str| text.find(s).unwrap();
        let number = |range: Range<usize>, digits, run| Number { range, digits, run };
        assert_eq!(r.numbers[0], number(at("0531") - 2..at(", Steuer"), 11, 4));
        // Digits at most seven bytes apart chain, whatever stands between them.
        assert_eq!(r.numbers[1], number(at("86 095") - 2..at("; IBAN"), 19, 4));
        assert_eq!(
            Regions::find("am 12.11.2026 um zehn Uhr"),
            Regions::default()
        );
        assert_eq!(r.ibans, vec![at("DE89")..at("DE89") + 7]);
        assert_eq!(
            r.codes,
            [
                at("L01X")..at(" und"),
                at("VERTRAULICH")..at("; Ende"),
                at("123456789")..text.len()
            ]
        );
        assert_eq!(
            *r.numbers.last().unwrap(),
            number(at("123456789") - 2..text.len(), 9, 9)
        );
    }
}
