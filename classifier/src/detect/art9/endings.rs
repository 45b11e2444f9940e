//! Where the diagnosis endings of compound words occur: exactly the matches of one
//! Aho-Corasick search over the whole lower-case text, found without stepping through every
//! byte.
//!
//! The automaton has no prefilter for these fourteen words (their first bytes are common
//! German syllables), so it read every byte of every mail. Instead a vectorised search
//! (Teddy) looks for a rarer piece of each ending, and the automaton runs only over the
//! letter run around each hit. That gives the same matches because every byte of an ending
//! is one of [`is_ending_byte`]'s, and at any other byte the automaton is back in its start
//! state with no match open: its matches in the whole text are the matches of the runs
//! between such bytes, and a run without a rare piece holds no ending.

use std::sync::OnceLock;

use aho_corasick::{AhoCorasick, Span, packed};

/// Words that close a diagnosis compound ("Becken|fraktur", "Lungen|entzündung").
const ENDINGS: [&str; 14] = [
    "fraktur",
    "trauma",
    "entzündung",
    "erkrankung",
    "infektion",
    "karzinom",
    "syndrom",
    "insuffizienz",
    "infarkt",
    "blutung",
    "lähmung",
    "tuberkulose",
    "allergie",
    "depression",
];

/// A piece of each ending (same order) whose first three bytes are rare in German prose: the
/// vectorised search tests those first.
const RARE: [&str; 14] = [
    "raktur", "uma", "tzünd", "rkrank", "fektion", "rzinom", "yndrom", "suffiz", "farkt", "blutu",
    "hmung", "rkulos", "lergie", "epress",
];

struct Search {
    ends: AhoCorasick,
    /// `None` where the vectorised search is not available: then the whole text is searched.
    rare: Option<packed::Searcher>,
    /// The bytes that occur in some ending.
    ending_byte: [bool; 256],
}

fn search() -> &'static Search {
    static SEARCH: OnceLock<Search> = OnceLock::new();
    SEARCH.get_or_init(|| {
        let mut ending_byte = [false; 256];
        for b in ENDINGS.iter().flat_map(|e| e.bytes()) {
            ending_byte[usize::from(b)] = true;
        }
        Search {
            ends: AhoCorasick::new(ENDINGS).expect("built-in endings compile"),
            rare: packed::Searcher::new(RARE),
            ending_byte,
        }
    })
}

/// The spans of the endings in `lower`, as `AhoCorasick::new(ENDINGS).find_iter(lower)`
/// reports them.
pub(super) fn find(lower: &str) -> Vec<(usize, usize)> {
    let s = search();
    let hay = lower.as_bytes();
    let Some(rare) = &s.rare else {
        return s
            .ends
            .find_iter(hay)
            .map(|m| (m.start(), m.end()))
            .collect();
    };
    let mut out = Vec::new();
    let mut at = 0;
    while let Some(hit) = rare.find_in(hay, Span::from(at..hay.len())) {
        // The run of ending bytes around the hit, searched as a whole.
        let start = hay[..hit.start()]
            .iter()
            .rposition(|&b| !s.ending_byte[usize::from(b)])
            .map_or(0, |i| i + 1);
        let end = hay[hit.end()..]
            .iter()
            .position(|&b| !s.ending_byte[usize::from(b)])
            .map_or(hay.len(), |i| hit.end() + i);
        out.extend(
            s.ends
                .find_iter(&hay[start..end])
                .map(|m| (start + m.start(), start + m.end())),
        );
        at = end;
    }
    out
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn full(lower: &str) -> Vec<(usize, usize)> {
        search()
            .ends
            .find_iter(lower)
            .map(|m| (m.start(), m.end()))
            .collect()
    }

    #[test]
    fn every_rare_piece_is_part_of_its_ending() {
        for (ending, rare) in ENDINGS.iter().zip(RARE) {
            assert!(ending.contains(rare), "{rare} in {ending}");
        }
    }

    #[test]
    fn endings_are_found_as_the_whole_search_finds_them() {
        for text in [
            "beckenfraktur und lungenentzündung, schädel-hirn-trauma.",
            "traumallergie: the automaton reports trauma and not the overlapping allergie",
            "frakturtrauma infarktblutung",
            "",
            "uma",
        ] {
            assert_eq!(find(text), full(text), "{text:?}");
        }
        assert_eq!(find("eine beckenfraktur").len(), 1);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(3000))]

        #[test]
        fn find_is_the_whole_search(
            text in "((fraktur|trauma|entzündung|erkrankung|infektion|karzinom|syndrom|insuffizienz|infarkt|blutung|lähmung|tuberkulose|allergie|depression|raktu|uma|rkrank|lergie|ä|ü|ö|ß|[a-z]{1,4}|[ .,\n-]|\u{00E9}|\u{0308}){0,30})",
        ) {
            prop_assert_eq!(find(&text), full(&text));
        }
    }
}
