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
//!   referring back to a person named in the three sentences before — for health and social
//!   facts, which are otherwise often a topic ("Vortrag über Depression"), with a state verb
//!   ("bezieht", "ist krankgeschrieben", "ist wegen … in Behandlung") or a sentence that opens
//!   with the person ("Er hat Pflegegrad 3");
//! - 75: in the same sentence, the writer speaking of themselves ("ich", "mein", "meine").
//!
//! No tie at all in a sentence that presents a topic or an office ("spricht über",
//! "Ansprechpartnerin", "Kategorien personenbezogener Daten", "Pressemitteilung").
//!
//! Facts and people in a signature, letterhead or disclaimer ([`super::boilerplate`]) do not
//! count: "Sozialamt, Rathausplatz 1" under a mail names an office, not a case.

use std::cell::OnceCell;
use std::sync::OnceLock;

use regex::Regex;
use regex_automata::{Anchored, Input};

use super::keywords::Group;
use super::person::People;
use super::{Segment, boilerplate};
use crate::rules::Rules;
use crate::text::window;
use crate::verdict::{Finding, category};

mod endings;

const PROXIMITY: usize = 300;

/// How far into a text its title runs (bytes).
const TITLE: usize = 200;

/// How far back (bytes) a pronoun may refer to a named person.
const REFERENCE_REACH: usize = 600;

struct Patterns {
    address: Regex,
    case_number: Regex,
    /// Searched anchored at each place with a code's shape: unanchored, a shape without a
    /// code ("F123") would search on to the end of the text, once per shape.
    icd: regex_automata::meta::Regex,
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
            r"\s+\d{1,3}\s?[a-z]?(?-u:\b)",
            r"|(?-u:\b)(?:[A-ZÄÖÜ][a-zäöüß]+-)+(?:Straße|Str\.|Weg|Allee|Platz|Gasse|Ring|Damm|Ufer|Chaussee|Pfad|Markt|Graben|Wall|Berg|Hof|Garten|Park|Promenade|Kamp|Steig|Stieg)\s+\d{1,3}\s?[a-z]?(?-u:\b)",
            r"|(?-u:\b)(?:Am|An\s+der|An\s+den|An\s+dem|Auf\s+dem|Auf\s+der|Im|In\s+der|In\s+den|Zum|Zur|Unter\s+den|Hinter\s+der|Vor\s+dem)\s+([A-ZÄÖÜ][a-zäöüß]+)(?:-[A-ZÄÖÜ][a-zäöüß]+)*\s+\d{1,3}\s?[a-z]?(?-u:\b)(\s*Uhr)?",
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
        // ICD-10-GM codes ("F32.1", "M54.5 G"); see `icd_codes` for when they count.
        icd: regex_automata::meta::Regex::new(
            r"(?-u:\b)[A-TV-Z][0-9]{2}(?:\.[0-9]{1,2})?(?:\s?[GVAZ])?(?-u:\b)",
        )
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
        let whole_word = matches!(group, Group::Criminal | Group::Personnel);
        let mut facts: Vec<(usize, usize, bool)> = seg
            .keywords
            .of(group)
            .filter(|&(_, e)| is_fact_word(seg.lower, e, whole_word))
            .map(|(s, e)| (s, e, needs_state))
            .collect();
        let with = |spans: Vec<(usize, usize)>, state: bool| {
            spans.into_iter().map(move |(s, e)| (s, e, state))
        };
        match group {
            Group::Health => {
                // A diagnosis code is a fact about someone by itself; a compound diagnosis
                // word is a health word like the keywords.
                facts.extend(with(icd_codes(seg), false));
                facts.extend(with(medical_compounds(seg), needs_state));
            }
            Group::Criminal => facts.extend(with(records_with_entries(seg), false)),
            _ => {}
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

/// Whether the word a keyword starts is a fact, not an office or a topic compound:
/// "Wohngeldstelle", "Sozialamt" name offices; for criminal and personnel words
/// ("Kündigungsschutz", "Probezeitregelung") only the word itself with an inflection counts.
fn is_fact_word(lower: &str, keyword_end: usize, whole_word: bool) -> bool {
    const OFFICE: [&str; 9] = [
        "stelle",
        "amt",
        "ämter",
        "behörde",
        "abteilung",
        "team",
        "dezernat",
        "dezernent",
        "sachbearbeit",
    ];
    let rest: String = lower[keyword_end..]
        .chars()
        .take_while(|c| c.is_alphabetic())
        .collect();
    if OFFICE
        .iter()
        .any(|o| rest.starts_with(o) || rest.strip_prefix('s').is_some_and(|r| r.starts_with(o)))
    {
        return false;
    }
    // A personnel word in a compound that is still about the matter ("Nebentätigkeits-
    // genehmigung", "Abmahnungsentwurf") counts too.
    const MATTER: [&str; 9] = [
        "genehmigung",
        "antrag",
        "anzeige",
        "verfahren",
        "gespräch",
        "schreiben",
        "entwurf",
        "bescheid",
        "vermerk",
    ];
    !whole_word
        || rest.chars().count() <= 2
        || MATTER
            .iter()
            .any(|m| rest.trim_start_matches('s').starts_with(m))
}

/// Compounds that end in a diagnosis word ("Beckenfraktur", "Lungenentzündung",
/// "Schädel-Hirn-Trauma"): German builds diagnoses by compounding, so a list of words cannot
/// hold them all.
fn medical_compounds(seg: &Segment<'_>) -> Vec<(usize, usize)> {
    let lower = seg.lower;
    let is_letter = |c: char| c.is_alphabetic() || c == '-';
    endings::find(lower)
        .into_iter()
        .filter_map(|(m_start, m_end)| {
            // The ending closes a word that has something before it ("Becken|fraktur"; a
            // bare "Infektion" is a keyword already).
            let at_word_end = lower[m_end..]
                .chars()
                .next()
                .is_none_or(|c| !c.is_alphabetic());
            let start = lower[..m_start]
                .char_indices()
                .rev()
                .take_while(|&(_, c)| is_letter(c))
                .last()
                .map(|(i, _)| i)?;
            at_word_end.then_some((start, m_end))
        })
        .collect()
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

/// ICD-10 codes: with a decimal ("F33.1") as they are, without one ("F32") only with a
/// diagnosis word within 80 characters.
fn icd_codes(seg: &Segment<'_>) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    for &at in &seg.regions.icd {
        let code = Input::new(seg.text).range(at..).anchored(Anchored::Yes);
        let Some(m) = patterns().icd.find(code) else {
            continue;
        };
        // "F33.1" has the shape of a diagnosis; "F32" alone needs a diagnosis word.
        let coded = seg.text[m.range()].contains('.') || {
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
        };
        if coded {
            out.push((m.start(), m.end()));
        }
    }
    out
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
    let (s_from, s_to) = sentence(seg.text, start, end);
    // "Dr. Lenz spricht über Demenz", "Kategorien personenbezogener Daten: Gesundheitsdaten",
    // "Ansprechpartnerin für Wohngeld ist Frau Meier": a topic or an office, not a fact about
    // someone.
    let sentence_lower = &seg.lower[s_from..s_to];
    if is_topic_sentence(sentence_lower) {
        return None;
    }

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
        let time = c.get(2).is_some() || c.get(1).is_some_and(|w| is_time_word(w.as_str()));
        !time && outside(at) && !is_office_address(seg.lower, at)
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
    // The sentence is about someone when it opens with them: "Er hat Pflegegrad 3", "Frau
    // Kurz kommt nach ihrer Chemotherapie …", "Die Kindesmutter war alkoholisiert".
    let opening = {
        let text = &seg.text[s_from..s_to];
        let skipped = text.len() - text.trim_start_matches(|c: char| !c.is_alphabetic()).len();
        let at = s_from + skipped;
        (at, (at + 24).min(s_to))
    };
    let about_someone = context.people.mentioned(opening.0, opening.1)
        || context.people.referred(opening.0, opening.1);
    // A document's title naming the matter, with the person in its first lines ("Dienstliche
    // Beurteilung ⏎ Beamtin: Carina Wendland"); or a message whose attached list of people
    // the facts are about.
    let document = seg.location.attachment.is_some() && seg.location.header.is_none();
    let points_to_attachment = ["anbei", "anlage", "beigefügt", "im anhang", "liste"]
        .iter()
        .any(|w| sentence_lower.contains(w));
    // A table of people right after the sentence ("folgende Stufenaufstiege stehen an:").
    let introduces_table = context
        .people
        .rows
        .first()
        .is_some_and(|&(row, _)| row >= end && row - end < TITLE);
    // The subject names the matter, the body's opening the person ("Einleitung
    // Disziplinarverfahren" ⏎ "… gegen Stadtoberinspektor Kai-Uwe Dressler"); last, as it
    // reads the body.
    let subject = || {
        seg.location.header.as_deref() == Some("Subject")
            && seg
                .message
                .body
                .is_some_and(super::person::names_someone_early)
    };
    if (document && start < TITLE && context.people.mentioned(0, (2 * TITLE).min(seg.text.len())))
        || (points_to_attachment && context.people.rows.is_empty() && seg.message.roster())
        || introduces_table
        || subject()
    {
        return Some(80);
    }
    let stated = !needs_state || about_someone || seg.keywords.within(Group::State, s_from, s_to);
    if stated {
        if context.people.mentioned(s_from, s_to) {
            return Some(80);
        }
        // A pronoun or role noun referring back to someone named in the three sentences
        // before.
        if context.people.referred(s_from, s_to) {
            let back =
                previous_sentences(seg.text, s_from, 3).max(s_from.saturating_sub(REFERENCE_REACH));
            if context.people.mentioned(back, s_from) {
                return Some(80);
            }
        }
    }
    if p.first_person.is_match(&seg.text[s_from..s_to]) {
        return Some(75);
    }
    None
}

/// Whether `needle` occurs in `haystack` at the start of a word ("spricht" in "spricht
/// über", not in "entspricht").
fn contains_word(haystack: &str, needle: &str) -> bool {
    haystack.match_indices(needle).any(|(at, _)| {
        haystack[..at]
            .chars()
            .next_back()
            .is_none_or(|c| !c.is_alphanumeric())
    })
}

/// Whether a sentence presents a topic or an office rather than a person's circumstances.
pub(super) fn is_topic_sentence(lower: &str) -> bool {
    const TOPIC: [&str; 57] = [
        "spricht über",
        "sprechen über",
        "referiert",
        "vortrag",
        "informiert über",
        "informieren über",
        "zum thema",
        "webinar",
        "fortbildung",
        "seminar",
        "schulung",
        "veranstaltung",
        "ansprechpartner",
        "zuständig für",
        "ist zuständig",
        "erreichen sie",
        "sprechzeiten",
        "beratung bietet",
        "berät ",
        "pressemitteilung",
        "stellenausschreibung",
        "wir suchen",
        "sucht für",
        "bewerbungsschluss",
        "kategorien personenbezogener",
        "datenschutzhinweis",
        "art. 9 abs",
        "art. 13 dsgvo",
        "rechtsgrundlage",
        "statistik",
        "im jahr 20",
        "spricht ",
        "referent",
        "fachvortrag",
        "selbsthilfegruppe",
        "gesundheitstag",
        "aktionstag",
        "informationsstand",
        "wir verarbeiten",
        "werden verarbeitet",
        "datenschutzinformation",
        "§ 26 bdsg",
        "ausgeschrieben",
        "stellenangebot",
        "einladung:",
        "fragt nach",
        "kosten der",
        "stellt die zahlen",
        "die zahlen vor",
        "m/w/d",
        "ihre bewerbung",
        "bewerbungen",
        "die stelle ist",
        "fachtag",
        "pm:",
        "netzwerktreffen",
        "wahlausschreiben",
    ];
    TOPIC.iter().any(|t| contains_word(lower, t))
}

/// Whether the address at `at` is an office's: an office word just before it ("die
/// Wohngeldstelle im Sozialamt, Lindenstraße 12", "Stadt Wiesenau – Personalamt⏎Marktplatz
/// 1").
fn is_office_address(lower: &str, at: usize) -> bool {
    const OFFICE: [&str; 25] = [
        "amt",
        "stelle",
        "rathaus",
        "büro",
        "verwaltung",
        "behörde",
        "zentrum",
        "schule",
        "kita",
        "dienst",
        "abteilung",
        "jobcenter",
        "gericht",
        "beratung",
        "saal",
        "stadt",
        "halle",
        "gebäude",
        "bad",
        "kirche",
        "bibliothek",
        "bücherei",
        "museum",
        "friedhof",
        "bahnhof",
    ];
    let mut from = at.saturating_sub(60);
    while !lower.is_char_boundary(from) {
        from += 1;
    }
    lower[from..at]
        .split(|c: char| !c.is_alphabetic())
        .filter(|w| !w.is_empty())
        .rev()
        .take(4)
        .any(|w| {
            // With a genitive or plural ending: "im Ratssaal des Rathauses, Markt 1".
            let stem = ["es", "s", "en", "n"]
                .iter()
                .find_map(|e| w.strip_suffix(e))
                .unwrap_or(w);
            OFFICE.iter().any(|o| w.ends_with(o) || stem.ends_with(o))
        })
}

fn is_time_word(word: &str) -> bool {
    const WORDS: [&str; 28] = [
        "Jahr",
        "Jahre",
        "Monat",
        "Quartal",
        "Zeitraum",
        "Frühjahr",
        "Sommer",
        "Herbst",
        "Winter",
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
        "dr",
        "geb",
        "nr",
        "str",
        "az",
        "prof",
        "hr",
        "fr",
        "bzw",
        "ca",
        "vgl",
        "abs",
        "bspw",
        "ggf",
        "evtl",
        "usw",
        "etc",
        "inkl",
        "lt",
        "gem",
        "tel",
        "jur",
        "med",
        "dipl",
        "sozialpäd",
        "päd",
        "ing",
        "kfm",
        "verw",
        "rer",
        "nat",
        "phil",
        "oec",
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
                let start = text[..i]
                    .char_indices()
                    .rev()
                    .take_while(|(_, c)| c.is_alphanumeric())
                    .last()
                    .map_or(i, |(at, _)| at);
                let original = &text[start..i];
                let word = original.to_lowercase();
                // "z. B.", "u. a.", "d. h.": a single letter before a full stop is short;
                // "Dipl.-Psych.": a word after ".-" is part of a title. A date's day or month
                // ("am 12.11. um") does not end a sentence, a year ("zum 01.02.2027. Die") does.
                let title_part = text[..start].ends_with(".-");
                let digits = !original.is_empty() && original.chars().all(|c| c.is_ascii_digit());
                !(ABBREVIATIONS.contains(&word.as_str())
                    || title_part
                    || original.chars().count() == 1
                    || (digits && original.len() != 4))
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
