//! Special categories of personal data — health (Art. 9 GDPR), social data (§67 SGB X),
//! criminal matters (Art. 10 GDPR) — and personnel matters, but only when tied to an
//! identifiable person. "Der Ausschuss berät über die Kosten des Bürgergelds" is politics;
//! "Herr Meier bezieht Bürgergeld" is personal data, and so is "Sie ist seit Montag
//! krankgeschrieben" after a sentence that named her.
//!
//! Ties, strongest first:
//! - 85: a birth date, case number or file reference, an address of any German street shape,
//!   or a validated identifier within 300 characters; or the same row of a table that has a
//!   name column;
//! - 80: a person ([`super::person`]) in the same sentence, or a pronoun or role noun in it
//!   referring back to a person named in the two sentences before (same paragraph) — with a
//!   state verb ("bezieht", "ist krankgeschrieben", "ist wegen … in Behandlung") for health
//!   and social facts, which are otherwise often a topic ("Vortrag über Depression");
//! - 75: in the same sentence, the writer speaking of themselves ("ich", "mein", "meine").
//!
//! Facts and people in a signature, letterhead or disclaimer ([`super::boilerplate`]) do not
//! count: "Sozialamt, Rathausplatz 1" under a mail names an office, not a case.

use std::cell::OnceCell;
use std::sync::OnceLock;

use regex::Regex;

use super::keywords::Group;
use super::person::People;
use super::{Segment, boilerplate};
use crate::rules::Rules;
use crate::text::window;
use crate::verdict::{Finding, category};

const PROXIMITY: usize = 300;

/// How far back (bytes) a pronoun may refer to a named person.
const REFERENCE_REACH: usize = 600;

struct Patterns {
    address: Regex,
    case_number: Regex,
    icd: Regex,
    first_person: Regex,
}

fn patterns() -> &'static Patterns {
    static RES: OnceLock<Patterns> = OnceLock::new();
    RES.get_or_init(|| Patterns {
        // A street address of any German shape with a house number, or a postcode with town:
        // "Theodor-Heuss-Ring 31", "Am Markt 5", "An der Alster 12a", "Straße des 17. Juni 3".
        address: Regex::new(concat!(
            r"(?-u:\b)(?:[A-ZÄÖÜ][a-zäöüß]+-)*[A-ZÄÖÜ][a-zäöüß]*",
            r"(?:straße|strasse|str\.|weg|allee|platz|gasse|ring|damm|ufer|chaussee|pfad|steig|stieg|markt|graben|wall|kamp|twiete|zeile|promenade|berg|hof|garten|anger|brücke|park|siedlung|redder|höhe|grund|landstraße)",
            r"\s+\d{1,4}\s?[a-z]?(?-u:\b)",
            r"|(?-u:\b)(?:[A-ZÄÖÜ][a-zäöüß]+-)+(?:Straße|Str\.|Weg|Allee|Platz|Gasse|Ring|Damm|Ufer|Chaussee|Pfad|Markt|Graben|Wall|Berg|Hof|Garten|Park|Promenade|Kamp|Steig|Stieg)\s+\d{1,4}\s?[a-z]?(?-u:\b)",
            r"|(?-u:\b)(?:Am|An\s+der|An\s+den|An\s+dem|Auf\s+dem|Auf\s+der|Im|In\s+der|In\s+den|Zum|Zur|Unter\s+den|Hinter\s+der|Vor\s+dem)\s+([A-ZÄÖÜ][a-zäöüß]+)(?:-[A-ZÄÖÜ][a-zäöüß]+)*\s+\d{1,4}\s?[a-z]?(?-u:\b)(\s*Uhr)?",
            r"|(?-u:\b)Straße\s+des\s+\d{1,2}\.\s+[A-ZÄÖÜ][a-zäöü]+\s+\d{1,4}",
            r"|(?-u:\b)\d{5}\s+[A-ZÄÖÜ][a-zäöü]{2,}",
        ))
        .expect("address"),
        // File references of social offices and courts: Jobcenter BG-Nummer
        // ("29301//0048215", "29301BG0048215"), court Aktenzeichen ("5 C 123/24", "3 Ls 12/25").
        case_number: Regex::new(
            r"(?-u:\b)\d{5}(?://|BG)\d{7}(?-u:\b)|(?-u:\b)\d{1,3}\s+(?:[A-Z][a-z]{0,2}|UF|WF|OWi)\s+\d{1,5}/\d{2}(?-u:\b)",
        )
        .expect("case number"),
        // ICD-10-GM codes ("F32.1", "M54.5 G"), counted only next to a diagnosis word.
        icd: Regex::new(r"(?-u:\b)[A-TV-Z][0-9]{2}(?:\.[0-9]{1,2})?(?:\s?[GVAZ])?(?-u:\b)")
            .expect("icd"),
        first_person: Regex::new(
            r"(?i)(?-u:\b)(?:ich|mein|meine|meinen|meinem|meiner|meines|mir|mich)(?-u:\b)",
        )
        .expect("first person"),
    })
}

/// The facts looked for, each as its own detector.
const FACTS: [(&str, Group, &str, bool); 4] = [
    // (detector, keywords, category, needs a state verb for a person tie)
    ("health", Group::Health, category::HEALTH, true),
    ("social", Group::Social, category::SOCIAL, true),
    ("criminal", Group::Criminal, category::CRIMINAL, false),
    (
        "personnel_matter",
        Group::Personnel,
        category::PERSONNEL,
        false,
    ),
];

/// What is computed once per segment, and only when a fact word occurs.
struct Context {
    boilerplate: Vec<(usize, usize)>,
    people: People,
}

pub(super) fn run(seg: &Segment<'_>, identifiers: &[usize], rules: &Rules, out: &mut Vec<Finding>) {
    let context: OnceCell<Context> = OnceCell::new();
    let context = || {
        context.get_or_init(|| {
            let boilerplate = boilerplate::ranges(seg.text);
            let people = People::find(seg.text, &boilerplate);
            Context {
                boilerplate,
                people,
            }
        })
    };
    for (detector, group, cat, needs_state) in FACTS {
        if !rules.enabled(detector) {
            continue;
        }
        // (start, end, whether a person tie needs a state verb)
        let mut facts: Vec<(usize, usize, bool)> = seg
            .keywords
            .of(group)
            .map(|(s, e)| (s, e, needs_state))
            .collect();
        if group == Group::Health {
            // A diagnosis code is a fact about someone by itself.
            facts.extend(icd_codes(seg).into_iter().map(|(s, e)| (s, e, false)));
        }
        if group == Group::Criminal {
            facts.extend(
                records_with_entries(seg)
                    .into_iter()
                    .map(|(s, e)| (s, e, false)),
            );
        }
        // The strongest tie of any fact outside boilerplate decides; one finding per category.
        let best = facts
            .into_iter()
            .filter(|&(start, _, _)| !boilerplate::contains(&context().boilerplate, start))
            .filter_map(|(start, end, needs_state)| {
                tie(seg, context(), identifiers, start, end, needs_state).map(|c| (c, start))
            })
            .max_by_key(|&(c, start)| (c, std::cmp::Reverse(start)));
        if let Some((confidence, start)) = best {
            out.push(seg.finding(detector, cat, confidence, start, None));
        }
    }
}

/// "Führungszeugnis" with entries ("enthält zwei Eintragungen") — one without ("ohne
/// Eintrag", "keine Eintragungen") or a request to hand one in is no criminal data.
fn records_with_entries(seg: &Segment<'_>) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut at = 0;
    while let Some(i) = seg.lower[at..].find("führungszeugnis") {
        let start = at + i;
        let end = start + "führungszeugnis".len();
        let (from, to) = window(seg.lower, start, end, 80);
        let near = &seg.lower[from..to];
        if near.contains("eintr")
            && !near.contains("ohne eintr")
            && !near.contains("keine eintr")
            && !near.contains("keinen eintr")
        {
            out.push((start, end));
        }
        at = end;
    }
    out
}

/// ICD-10 codes with a diagnosis word within 80 characters.
fn icd_codes(seg: &Segment<'_>) -> Vec<(usize, usize)> {
    patterns()
        .icd
        .find_iter(seg.text)
        .filter(|m| {
            let (from, to) = window(seg.lower, m.start(), m.end(), 80);
            let near = &seg.lower[from..to];
            [
                "diagnose",
                "icd",
                "befund",
                "krank",
                "arbeitsunfähig",
                "au-",
            ]
            .iter()
            .any(|w| near.contains(w))
        })
        .map(|m| (m.start(), m.end()))
        .collect()
}

fn tie(
    seg: &Segment<'_>,
    context: &Context,
    identifiers: &[usize],
    start: usize,
    end: usize,
    needs_state: bool,
) -> Option<u8> {
    let p = patterns();
    let outside = |at: usize| !boilerplate::contains(&context.boilerplate, at);
    let (from, to) = window(seg.text, start, end, PROXIMITY);
    let near = &seg.text[from..to];
    let strong_keyword = seg
        .keywords
        .of(Group::PersonStrong)
        .any(|(s, e)| s >= from && e <= to && outside(s));
    let address = p.address.captures_iter(near).any(|c| {
        let at = from + c.get(0).expect("match").start();
        // "Am Montag 14 Uhr" is a time, not an address.
        let time = c.get(2).is_some() || c.get(1).is_some_and(|w| is_weekday_or_month(w.as_str()));
        !time && outside(at)
    });
    let case_number = p
        .case_number
        .find_iter(near)
        .any(|m| outside(from + m.start()));
    if strong_keyword
        || address
        || case_number
        || identifiers
            .iter()
            .any(|&i| i >= from && i < to && outside(i))
        || context.people.in_row(start)
    {
        return Some(85);
    }
    let (s_from, s_to) = sentence(seg.text, start, end);
    let stated = !needs_state || seg.keywords.within(Group::State, s_from, s_to);
    if stated {
        if context.people.mentioned(s_from, s_to) {
            return Some(80);
        }
        // A pronoun or role noun referring back to someone named shortly before, in the
        // same paragraph.
        if context.people.referred(s_from, s_to) {
            let paragraph = seg.text[..s_from]
                .rfind("\n\n")
                .map_or(0, |i| i + 2)
                .max(s_from.saturating_sub(REFERENCE_REACH));
            let two_back = previous_sentences(seg.text, s_from, 2).max(paragraph);
            if context.people.mentioned(two_back, s_from) {
                return Some(80);
            }
        }
    }
    if p.first_person.is_match(&seg.text[s_from..s_to]) {
        return Some(75);
    }
    None
}

fn is_weekday_or_month(word: &str) -> bool {
    const WORDS: [&str; 19] = [
        "Montag",
        "Dienstag",
        "Mittwoch",
        "Donnerstag",
        "Freitag",
        "Samstag",
        "Sonntag",
        "Januar",
        "Februar",
        "März",
        "April",
        "Mai",
        "Juni",
        "Juli",
        "August",
        "September",
        "Oktober",
        "November",
        "Dezember",
    ];
    WORDS.contains(&word)
}

/// The start of the sentence `n` sentences before the one starting at `from`.
fn previous_sentences(text: &str, from: usize, n: usize) -> usize {
    let mut at = from;
    for _ in 0..n {
        if at == 0 {
            break;
        }
        at = sentence(text, at - 1, at - 1).0;
    }
    at
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
