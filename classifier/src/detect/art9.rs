//! Health and social data (Art. 9 GDPR, SGB I §35) — but only when tied to an identifiable
//! person. "Der Ausschuss berät über die Kosten des Bürgergelds" is politics; "Herr Meier
//! bezieht Bürgergeld" or a Bürgergeld notice with a birth date and an Aktenzeichen is
//! personal data.
//!
//! Ties, strongest first:
//! - 85: a birth date, case number, address or a validated identifier within 300 characters;
//! - 80: in the same sentence, a named person ("Herr/Frau Name") and a state verb
//!   ("bezieht", "ist erkrankt", "krankgeschrieben", …);
//! - 75: in the same sentence, the writer speaking of themselves ("ich", "mein", "meine").

use std::sync::OnceLock;

use regex::Regex;

use super::Segment;
use super::keywords::Group;
use crate::rules::Rules;
use crate::text::window;
use crate::verdict::{Finding, category};

const PROXIMITY: usize = 300;

fn patterns() -> &'static (Regex, Regex, Regex) {
    static RES: OnceLock<(Regex, Regex, Regex)> = OnceLock::new();
    RES.get_or_init(|| {
        (
            // A named person: "Herr Meier", "Frau Dr. Weber", "Herrn Müller-Lüdenscheidt".
            Regex::new(r"(?-u:\b)(?:Herrn?|Frau)\s+(?:Dr\.\s+|Prof\.\s+)?[A-ZÄÖÜ][a-zäöüß]+(?:-[A-ZÄÖÜ][a-zäöüß]+)?").expect("name"),
            // A street address or a postcode with town.
            Regex::new(r"(?-u:\b)[A-ZÄÖÜ][a-zäöüß]*(?:straße|strasse|str\.|weg|allee|platz|gasse|ring|damm|ufer)\s+\d{1,4}\s?[a-z]?(?-u:\b)|(?-u:\b)\d{5}\s+[A-ZÄÖÜ][a-zäöü]{2,}").expect("address"),
            // The writer about themselves.
            Regex::new(r"(?i)(?-u:\b)(?:ich|mein|meine|meinen|meinem|meiner|meines|mir|mich)(?-u:\b)").expect("first person"),
        )
    })
}

pub(super) fn run(seg: &Segment<'_>, identifiers: &[usize], rules: &Rules, out: &mut Vec<Finding>) {
    for (detector, group, cat) in [
        ("health", Group::Health, category::HEALTH),
        ("social", Group::Social, category::SOCIAL),
    ] {
        if !rules.enabled(detector) {
            continue;
        }
        // The strongest tie of any keyword occurrence decides; one finding per category.
        let best = seg
            .keywords
            .of(group)
            .filter_map(|(start, end)| tie(seg, identifiers, start, end).map(|c| (c, start)))
            .max_by_key(|&(c, start)| (c, std::cmp::Reverse(start)));
        if let Some((confidence, start)) = best {
            out.push(seg.finding(detector, cat, confidence, start, None));
        }
    }
}

fn tie(seg: &Segment<'_>, identifiers: &[usize], start: usize, end: usize) -> Option<u8> {
    let (name, address, first_person) = patterns();
    let (from, to) = window(seg.text, start, end, PROXIMITY);
    if seg.keywords.within(Group::PersonStrong, from, to)
        || identifiers.iter().any(|&i| i >= from && i < to)
        || address.is_match(&seg.text[from..to])
    {
        return Some(85);
    }
    let (s_from, s_to) = sentence(seg.text, start, end);
    let sentence_text = &seg.text[s_from..s_to];
    if name.is_match(sentence_text) && seg.keywords.within(Group::State, s_from, s_to) {
        return Some(80);
    }
    if first_person.is_match(sentence_text) {
        return Some(75);
    }
    None
}

/// The sentence around `start..end`: bounded by line breaks and by `.`, `!`, `?` followed by
/// a space — except after abbreviations common in letters (Dr., geb., Nr., Str., Az.).
fn sentence(text: &str, start: usize, end: usize) -> (usize, usize) {
    const ABBREVIATIONS: &[&str] = &[
        "dr", "geb", "nr", "str", "az", "prof", "hr", "fr", "bzw", "ca", "vgl", "abs",
    ];
    let is_end = |i: usize| -> bool {
        let b = text.as_bytes();
        match b[i] {
            b'\n' => true,
            b'!' | b'?' => b.get(i + 1).is_none_or(|c| c.is_ascii_whitespace()),
            b'.' => {
                if !b.get(i + 1).is_none_or(|c| c.is_ascii_whitespace()) {
                    return false;
                }
                let word: String = text[..i]
                    .chars()
                    .rev()
                    .take_while(|c| c.is_alphanumeric())
                    .collect::<String>()
                    .chars()
                    .rev()
                    .collect::<String>()
                    .to_lowercase();
                !(ABBREVIATIONS.contains(&word.as_str())
                    || word.chars().all(|c| c.is_ascii_digit()))
            }
            _ => false,
        }
    };
    let from = (0..start).rev().find(|&i| is_end(i)).map_or(0, |i| i + 1);
    let to = (end..text.len()).find(|&i| is_end(i)).unwrap_or(text.len());
    (from, to)
}

#[cfg(test)]
mod tests {
    use super::sentence;

    #[test]
    fn sentences_skip_abbreviations() {
        let t = "Erster Satz. Frau Dr. Weber, geb. 1970, bezieht Wohngeld. Dritter.";
        let at = t.find("Wohngeld").unwrap();
        let (a, b) = sentence(t, at, at + 8);
        assert_eq!(&t[a..b], " Frau Dr. Weber, geb. 1970, bezieht Wohngeld");
    }
}
