//! Which markings can occur in a segment at all, from literal searches over its lower-case
//! copy.
//!
//! Most marking patterns start with a letter or a case-insensitive word, so the regex engine
//! has no required literal to skip ahead to and reads every byte of every mail. Each marking
//! names instead the words (its *anchors*) one of which any match must contain; vectorised
//! substring searches find the anchors, and only the markings whose anchor occurs are
//! searched with their full pattern. Most mails contain none.
//!
//! An anchor must be a *necessary* condition of its pattern, or a marking is lost. It is
//! searched in the lower-case copy of the normalised text ([`crate::text`]), where:
//! - the regex's case-insensitive letters are plain lower-case letters: ASCII and the
//!   umlauts are lowered in place, and the other Unicode case variants of the anchors'
//!   letters (the long s `ſ`, the Kelvin sign) do not survive NFKC;
//! - every dash is `-`;
//! - a whitespace character is one of [`WHITESPACE`] — so a `\s?` inside an anchor, written
//!   as a space, is "nothing or one of these".
//!
//! The tests check both facts for every Unicode character, and that the filtered search finds
//! exactly what the full search finds.

use memchr::memmem;

/// The whitespace characters (regex `\s`) that remain after [`crate::text::normalise`]: it
/// turns every space separator and the tab into a space and line and paragraph separators
/// into a line feed, and drops CR.
pub(super) const WHITESPACE: [char; 5] = [' ', '\n', '\u{0B}', '\u{0C}', '\u{85}'];

/// The markings (indices into the anchor lists) whose anchors occur in a text, as a bit set.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Candidates(u64);

impl Candidates {
    pub(super) fn contains(self, marking: usize) -> bool {
        self.0 & (1 << marking) != 0
    }

    pub(super) fn is_empty(self) -> bool {
        self.0 == 0
    }
}

/// The anchors grouped by their head (the text before their first space), one substring
/// search per head. Not one Aho-Corasick automaton over all anchors: the whitespace variants
/// make too many literals for its vectorised prefilter, and it then stepped through every
/// byte as slowly as the regexes did. A memchr/memmem search per head skips most of the text
/// in vector instructions and stops at the first occurrence that completes an anchor.
pub(super) struct Prefilter {
    heads: Vec<Head>,
}

struct Head {
    finder: memmem::Finder<'static>,
    /// The rest of each anchor with this head (after the head; spaces as in the anchor), and
    /// the markings it admits.
    tails: Vec<(String, u64)>,
}

impl Prefilter {
    /// `anchors[i]` are the anchors of marking `i`.
    pub(super) fn new(anchors: &[&[&str]]) -> Self {
        assert!(anchors.len() <= 64, "one bit per marking");
        let mut heads: Vec<(String, Vec<(String, u64)>)> = Vec::new();
        for (marking, words) in anchors.iter().enumerate() {
            for word in *words {
                let (head, tail) = word.split_at(word.find(' ').unwrap_or(word.len()));
                assert!(!head.is_empty(), "an anchor starts with a letter");
                let at = match heads.iter().position(|(h, _)| h == head) {
                    Some(at) => at,
                    None => {
                        heads.push((head.to_owned(), Vec::new()));
                        heads.len() - 1
                    }
                };
                let tails = &mut heads[at].1;
                match tails.iter_mut().find(|(t, _)| t == tail) {
                    Some((_, mask)) => *mask |= 1 << marking,
                    None => tails.push((tail.to_owned(), 1 << marking)),
                }
            }
        }
        Self {
            heads: heads
                .into_iter()
                .map(|(head, tails)| Head {
                    finder: memmem::Finder::new(head.as_bytes()).into_owned(),
                    tails,
                })
                .collect(),
        }
    }

    /// The markings that may match the segment whose lower-case copy is `lower`.
    pub(super) fn candidates(&self, lower: &str) -> Candidates {
        let hay = lower.as_bytes();
        let mut found = 0u64;
        for head in &self.heads {
            // The markings this head's anchors admit that are not yet known to occur.
            let mut open: u64 = head.tails.iter().map(|t| t.1).fold(0, |a, m| a | m) & !found;
            for at in head.finder.find_iter(hay) {
                if open == 0 {
                    break;
                }
                let after = &hay[at + head.finder.needle().len()..];
                for (tail, mask) in &head.tails {
                    if open & mask != 0 && completes(after, tail.as_bytes()) {
                        found |= mask;
                        open &= !mask;
                    }
                }
            }
        }
        Candidates(found)
    }
}

/// Whether `hay` starts with `tail`, where each space in `tail` is nothing or one of the
/// [`WHITESPACE`] characters.
fn completes(hay: &[u8], tail: &[u8]) -> bool {
    match tail.split_first() {
        None => true,
        Some((b' ', rest)) => {
            completes(hay, rest)
                || WHITESPACE.iter().any(|w| {
                    let mut buf = [0; 4];
                    let w = w.encode_utf8(&mut buf).as_bytes();
                    hay.starts_with(w) && completes(&hay[w.len()..], rest)
                })
        }
        Some((b, rest)) => hay.first() == Some(b) && completes(&hay[1..], rest),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::text::{lower_same_offsets, normalise};
    use regex::Regex;

    /// Every Unicode scalar value, as one string (the regexes below search it at once).
    fn every_char() -> String {
        (0..=0x10FFFF).filter_map(char::from_u32).collect()
    }

    #[test]
    fn every_whitespace_char_normalises_to_a_listed_one_or_none() {
        let all = every_char();
        let space = Regex::new(r"\s").expect("compiles");
        let mut seen = 0;
        for m in space.find_iter(&all) {
            seen += 1;
            let n = normalise(m.as_str());
            let mut chars = n.chars();
            let listed = match (chars.next(), chars.next()) {
                (None, _) => true,
                (Some(c), None) => WHITESPACE.contains(&c),
                _ => false,
            };
            assert!(listed, "{:?} normalises to {n:?}", m.as_str());
        }
        assert!(
            seen >= 25,
            "the regex's \\s has the Unicode White_Space set"
        );
    }

    /// Whatever a case-insensitive regex letter of an anchor matches reads, after
    /// normalisation and lowering, as that letter.
    #[test]
    fn every_case_variant_of_an_anchor_letter_lowers_to_it() {
        let all = every_char();
        for letter in "abcdefghijklmnopqrstuvwxyzäöü".chars() {
            let re = Regex::new(&format!("(?i){letter}")).expect("compiles");
            for m in re.find_iter(&all) {
                let read = lower_same_offsets(&normalise(m.as_str()));
                assert_eq!(read, letter.to_string(), "{:?}", m.as_str());
            }
        }
    }

    #[test]
    fn a_space_in_an_anchor_is_an_optional_whitespace() {
        for hay in ["s", " s", "\ns", "\u{85}s"] {
            assert!(completes(hay.as_bytes(), b" s"), "{hay:?}");
        }
        for hay in ["", "  s", "-s", "\ts"] {
            assert!(!completes(hay.as_bytes(), b" s"), "{hay:?}");
        }
        let p = Prefilter::new(&[&["v s"], &["nicht ö", "nicht-oe"], &["top"]]);
        assert_eq!(p.candidates("das vs. die"), Candidates(0b001));
        assert_eq!(p.candidates("v\ns nicht-oeffentlich"), Candidates(0b011));
        assert_eq!(p.candidates("nicht\u{85}ö, nicht o"), Candidates(0b010));
        assert_eq!(p.candidates("topersonal"), Candidates(0b100));
        assert!(p.candidates("v - s, nicht  ö, to p").is_empty());
    }
}
