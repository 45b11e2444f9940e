//! Markings: Verschlusssachen grades, non-public council material, personnel matters, and
//! the sensitivity a sender's mail client declared (`Sensitivity:`, Microsoft `msip_labels`).
//!
//! A published agenda names its non-public part ("Nichtöffentlicher Teil", "TOP N 3
//! Personalangelegenheiten") without being confidential itself; inside a text that reads as
//! an agenda or invitation those markers are only a hint (60), below the threshold.

use std::sync::OnceLock;

use regex::Regex;

use super::Segment;
use crate::rules::Rules;
use crate::verdict::{Finding, Location, category};

mod prefilter;

use prefilter::Prefilter;

struct Marking {
    detector: &'static str,
    category: &'static str,
    name: &'static str,
    pattern: &'static str,
    /// Lower-case words one of which every match of `pattern` contains (a space stands for
    /// the pattern's `\s?`): the literal prefilter ([`prefilter`]) skips the pattern on a
    /// text without any of them.
    anchors: &'static [&'static str],
    /// Only a hint inside a published agenda.
    agenda_item: bool,
    /// What else the text around must show for the words to be a marking.
    needs: Needs,
}

/// Context a marking needs (issue #11 §3: a marking mentioned as a topic is none).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Needs {
    /// The words are a marking wherever they stand.
    Nothing,
    /// Not a topic: "Schulung zum Umgang mit VS-NfD" marks nothing, unless the marking
    /// stands on its own line or something is marked with it ("anbei", "eingestuft").
    NotATopic,
    /// Council context ("Sitzung", "Vorlage", "Ausschuss" …) near: "nicht öffentlicher
    /// Parkplatz" is no council material.
    Council,
}

const MARKINGS: &[Marking] = &[
    Marking {
        detector: "vs_marking",
        category: category::VS_NFD,
        name: "VS-NfD",
        // Also spelt out letter by letter ("V S - N f D"); every dash is `-` after `normalise`.
        pattern: r"(?i)(?-u:\b)V\s?S\s*-?\s*(?:N\s?f\s?D(?-u:\b)|nur\s+f(?:ü|ue|u)r\s+den\s+dienstgebrauch)",
        anchors: &["v s"],
        agenda_item: false,
        needs: Needs::NotATopic,
    },
    Marking {
        detector: "vs_marking",
        category: category::VS_NFD,
        name: "Nur für den Dienstgebrauch",
        pattern: r"(?i)(?-u:\b)nur\s+f(?:ü|ue|u)r\s+den\s+dienstgebrauch(?-u:\b)",
        anchors: &["dienstgebrauch"],
        agenda_item: false,
        needs: Needs::NotATopic,
    },
    Marking {
        detector: "vs_marking",
        category: category::CLASSIFIED,
        name: "VS-Vertraulich",
        pattern: r"(?i)(?-u:\b)V\s?S\s*-?\s*vertraulich(?-u:\b)",
        anchors: &["v s"],
        agenda_item: false,
        needs: Needs::NotATopic,
    },
    Marking {
        detector: "vs_marking",
        category: category::CLASSIFIED,
        name: "GEHEIM",
        pattern: r"(?-u:\b)(?:STRENG\s+)?GEHEIM(?-u:\b)",
        anchors: &["geheim"],
        agenda_item: false,
        needs: Needs::NotATopic,
    },
    Marking {
        detector: "vs_marking",
        category: category::CLASSIFIED,
        name: "amtlich geheim gehalten",
        pattern: r"(?i)(?-u:\b)amtlich\s+geheim\s*gehalten(?-u:\b)",
        anchors: &["geheim"],
        agenda_item: false,
        needs: Needs::NotATopic,
    },
    Marking {
        detector: "non_public",
        category: category::NON_PUBLIC,
        name: "nichtöffentlich",
        pattern: r"(?i)(?-u:\b)nicht[\s-]?(?:ö|oe)ffentlich(?:e[nrsm]?)?(?-u:\b)",
        anchors: &["nicht ö", "nicht-ö", "nicht oe", "nicht-oe"],
        agenda_item: true,
        needs: Needs::Council,
    },
    Marking {
        detector: "non_public",
        category: category::NON_PUBLIC,
        name: "N-Teil",
        pattern: r"(?-u:\b)N-Teil(?-u:\b)",
        anchors: &["n-teil"],
        agenda_item: true,
        needs: Needs::Nothing,
    },
    Marking {
        detector: "non_public",
        category: category::NON_PUBLIC,
        name: "TOP N",
        pattern: r"(?-u:\b)TOP\s*N\s*\d+",
        anchors: &["top"],
        agenda_item: true,
        needs: Needs::Nothing,
    },
    Marking {
        detector: "non_public",
        category: category::NON_PUBLIC,
        name: "NÖ",
        pattern: r"(?-u:\b)NÖ(?-u:\b)",
        anchors: &["nö"],
        agenda_item: true,
        needs: Needs::Nothing,
    },
    Marking {
        detector: "personnel",
        category: category::PERSONNEL,
        name: "Personalangelegenheit",
        pattern: r"(?i)(?-u:\b)Personal(?:angelegenheit(?:en)?|akte|sache)(?-u:\b)",
        anchors: &["personal"],
        agenda_item: true,
        needs: Needs::NotATopic,
    },
];

/// The markings' patterns and their literal prefilter, compiled once.
fn compiled() -> &'static (Vec<Regex>, Prefilter) {
    static RES: OnceLock<(Vec<Regex>, Prefilter)> = OnceLock::new();
    RES.get_or_init(|| {
        let anchors: Vec<_> = MARKINGS.iter().map(|m| m.anchors).collect();
        (
            MARKINGS
                .iter()
                .map(|m| Regex::new(m.pattern).expect("built-in pattern compiles"))
                .collect(),
            Prefilter::new(&anchors),
        )
    })
}

pub(super) fn run(seg: &Segment<'_>, rules: &Rules, out: &mut Vec<Finding>) {
    // One literal pass over the lower-case copy finds which markings can occur (usually
    // none); only those are searched with their pattern.
    let candidates = compiled().1.candidates(seg.lower);
    if candidates.is_empty() {
        return;
    }
    find(seg, rules, out, |i| candidates.contains(i));
}

/// Searches the markings `searched` admits, each for every occurrence.
fn find(
    seg: &Segment<'_>,
    rules: &Rules,
    out: &mut Vec<Finding>,
    searched: impl Fn(usize) -> bool,
) {
    let each = &compiled().0;
    let agenda = seg.message.agenda;
    for (i, marking) in MARKINGS.iter().enumerate() {
        if !searched(i) || !rules.enabled(marking.detector) {
            continue;
        }
        // Every occurrence: a first one mentioned as a topic must not hide a real marking.
        let best = each[i]
            .find_iter(seg.text)
            .map(|m| {
                let hint_only = (agenda
                    && marking.agenda_item
                    && !is_document_marking(seg, m.start(), m.end()))
                    || (marking.needs == Needs::NotATopic && is_topic(seg, m.start(), m.end()))
                    || (marking.needs == Needs::Council
                        && (!is_council(seg, m.start(), m.end())
                            || is_topic(seg, m.start(), m.end())));
                (if hint_only { 60 } else { 85 }, m.start())
            })
            .max_by_key(|&(confidence, start)| (confidence, std::cmp::Reverse(start)));
        if let Some((confidence, start)) = best {
            out.push(seg.finding(
                marking.detector,
                marking.category,
                confidence,
                start,
                Some(marking.name.to_owned()),
            ));
        }
    }
}

/// Whether the marking at `start..end` is talked about rather than applied: in running text
/// (not a line of its own) with a word of teaching or policy near, and nothing near that marks
/// something with it.
fn is_topic(seg: &Segment<'_>, start: usize, end: usize) -> bool {
    const TOPIC: [&str; 27] = [
        "umgang mit",
        "schulung",
        "seminar",
        "fortbildung",
        "unterweisung",
        "handhabung",
        "merkblatt",
        "richtlinie",
        "verschlusssachenanweisung",
        "leitfaden",
        "workshop",
        "informationsveranstaltung",
        "was bedeutet",
        "einstufung von",
        "sensibilisierung",
        "dienstanweisung",
        "grundsätzlich",
        "äußern uns",
        "keine auskunft",
        "keine auskünfte",
        "presseanfrage",
        "ihre anfrage",
        "verschwiegenheit",
        "umzugehen",
        "referent",
        "inhalt:",
        "dienstvereinbarung",
    ];
    const APPLIED: [&str; 10] = [
        "anbei",
        "beigefügt",
        "anliegend",
        "im anhang",
        "eingestuft als",
        "ist als",
        "gekennzeichnet",
        "einstufung:",
        "übersende",
        "übermittle",
    ];
    let line_start = seg.text[..start].rfind('\n').map_or(0, |i| i + 1);
    let line_end = seg.text[end..]
        .find('\n')
        .map_or(seg.text.len(), |i| end + i);
    let rest = seg.text[line_start..start].split_whitespace().count()
        + seg.text[end..line_end].split_whitespace().count();
    if rest <= 3 {
        return false;
    }
    let (from, to) = crate::text::window(seg.lower, start, end, 150);
    let near = &seg.lower[from..to];
    TOPIC.iter().any(|w| near.contains(w)) && !APPLIED.iter().any(|w| near.contains(w))
}

/// Whether a marking inside an agenda or minutes marks a document being sent rather than
/// naming a part of the session: a document noun before it on its line ("Niederschrift über
/// den nichtöffentlichen Teil", "Beschlussvorlage 2026/209 – NICHTÖFFENTLICH"), or written in
/// capitals as a stamp.
fn is_document_marking(seg: &Segment<'_>, start: usize, end: usize) -> bool {
    const DOCUMENTS: [&str; 7] = [
        "niederschrift",
        "protokoll",
        "vorlage",
        "drucksache",
        "anlage",
        "beschlussvorlage",
        "vermerk",
    ];
    let marked = &seg.text[start..end];
    let stamp = marked.chars().filter(|c| c.is_alphabetic()).count() >= 8
        && !marked.chars().any(char::is_lowercase);
    let line_start = seg.lower[..start].rfind('\n').map_or(0, |i| i + 1);
    let (from, _) = crate::text::window(seg.lower, start, start, 35);
    let before = &seg.lower[from.max(line_start)..start];
    // Not across an item of a list ("… (Vorlage 25-26610) 3. Sanierung … Nichtöffentlicher
    // Teil" is an agenda flattened into one line).
    let list_item = before
        .as_bytes()
        .windows(3)
        .any(|w| w[0].is_ascii_digit() && w[1] == b'.' && w[2] == b' ');
    stamp
        || (!list_item
            && before
                .split(|c: char| !c.is_alphabetic())
                .any(|w| DOCUMENTS.iter().any(|d| w.ends_with(d))))
}

/// Whether "nichtöffentlich" qualifies council business: a council noun within 80 characters
/// ("nichtöffentliche Sitzung", "Vorlage – nichtöffentlich", "im nicht öffentlichen Teil") —
/// not a place that is "nicht öffentlich" ("der Parkplatz … ist nicht öffentlich").
fn is_council(seg: &Segment<'_>, start: usize, end: usize) -> bool {
    const COUNCIL: [&str; 27] = [
        "sitzung",
        "vorlage",
        "beschluss",
        "beschlüsse",
        "tagesordnung",
        "top",
        "ausschuss",
        "beratung",
        "drucksache",
        "teil",
        "unterlagen",
        "protokoll",
        "niederschrift",
        "sache",
        "angelegenheit",
        "punkt",
        "behandlung",
        "anlage",
        "sitzungsteil",
        "vertraulich",
        "ratsmitglied",
        "mandat",
        "fraktion",
        "gremi",
        "stadtrat",
        "gemeinderat",
        "kreistag",
    ];
    // A place that is "nicht öffentlich" (a car park, a building) is no council matter.
    const PLACES: [&str; 12] = [
        "parkplatz",
        "parkhaus",
        "gelände",
        "zufahrt",
        "zugang",
        "gebäude",
        "toilette",
        "weg",
        "raum",
        "bereich",
        "garage",
        "spielplatz",
    ];
    let (from, to) = crate::text::window(seg.lower, start, end, 80);
    let council = seg.lower[from..to]
        .split(|c: char| !c.is_alphabetic())
        .any(|w| COUNCIL.iter().any(|c| w.starts_with(c) || w.ends_with(c)));
    let (before, _) = crate::text::window(seg.lower, start, start, 60);
    let words_before = || seg.lower[before..start].split(|c: char| !c.is_alphabetic());
    // "die Vorlage zum Tausch am Mühlenweg ist nichtöffentlich": the council noun decides.
    let place = words_before().any(|w| PLACES.iter().any(|p| w.ends_with(p)))
        && !words_before().any(|w| COUNCIL.iter().any(|c| w.starts_with(c) || w.ends_with(c)));
    council && !place
}

/// `Sensitivity: Private | Company-Confidential` (RFC 2156) and `msip_labels` whose name or
/// id is in the configured list.
pub(super) fn headers(
    headers: &[(Location, String, String)],
    rules: &Rules,
    out: &mut Vec<Finding>,
) {
    for (at, name, value) in headers {
        let location = Location {
            header: Some(name.clone()),
            ..at.clone()
        };
        if name.eq_ignore_ascii_case("Sensitivity") {
            let v = value.trim().to_ascii_lowercase();
            if v == "private" || v == "company-confidential" {
                out.push(Finding {
                    detector: "sensitivity_header".to_owned(),
                    category: category::LABEL.to_owned(),
                    confidence: 85,
                    location,
                    hint: Some(value.trim().to_owned()),
                });
            }
        } else if name.eq_ignore_ascii_case("msip_labels") {
            for label in msip_labels(value) {
                let hit = rules
                    .sensitive_labels
                    .iter()
                    .find(|l| **l == label.id || **l == label.name);
                if let Some(_configured) = hit {
                    out.push(Finding {
                        detector: "msip_label".to_owned(),
                        category: category::LABEL.to_owned(),
                        confidence: 85,
                        location: location.clone(),
                        hint: Some(label.display),
                    });
                }
            }
        }
    }
}

struct Label {
    id: String,
    name: String,
    display: String,
}

/// Enabled labels of an `msip_labels` header:
/// `MSIP_Label_<id>_Enabled=true; MSIP_Label_<id>_Name=Vertraulich; …`.
fn msip_labels(value: &str) -> Vec<Label> {
    let unfolded: String = value.split_whitespace().collect::<Vec<_>>().join(" ");
    let mut labels: Vec<(String, bool, String)> = Vec::new();
    for pair in unfolded.split(';') {
        let Some((key, val)) = pair.trim().split_once('=') else {
            continue;
        };
        let Some(rest) = key.trim().strip_prefix("MSIP_Label_") else {
            continue;
        };
        let Some((id, attribute)) = rest.rsplit_once('_') else {
            continue;
        };
        let id = id.to_ascii_lowercase();
        let entry = match labels.iter_mut().position(|l| l.0 == id) {
            Some(i) => &mut labels[i],
            None => {
                labels.push((id.clone(), false, String::new()));
                labels.last_mut().expect("just pushed")
            }
        };
        match attribute {
            "Enabled" => entry.1 = val.trim().eq_ignore_ascii_case("true"),
            "Name" => entry.2 = val.trim().to_owned(),
            _ => {}
        }
    }
    labels
        .into_iter()
        .filter(|l| l.1)
        .map(|(id, _, name)| Label {
            display: if name.is_empty() {
                id.clone()
            } else {
                name.clone()
            },
            name: name.to_lowercase(),
            id,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::msip_labels;

    #[test]
    fn msip_labels_are_parsed() {
        let labels = msip_labels(
            "MSIP_Label_3c0c5a3e-1111-2222-3333-444455556666_Enabled=true;\r\n MSIP_Label_3c0c5a3e-1111-2222-3333-444455556666_Name=Vertraulich; MSIP_Label_aaaa_Enabled=false; MSIP_Label_aaaa_Name=Öffentlich",
        );
        assert_eq!(labels.len(), 1);
        assert_eq!(labels[0].name, "vertraulich");
        assert_eq!(labels[0].id, "3c0c5a3e-1111-2222-3333-444455556666");
    }
}

/// The literal prefilter loses nothing: on texts around every marking's phrase variants, the
/// filtered search finds exactly what the full search of every pattern finds.
#[cfg(test)]
mod prefiltered {
    use std::cell::OnceCell;

    use proptest::prelude::*;

    use super::*;
    use crate::detect::Message;
    use crate::detect::keywords::Hits;
    use crate::text::{lower_same_offsets, normalise};

    /// Findings for `raw` (normalised as a message's text is), filtered or with every pattern
    /// searched.
    fn findings(raw: &str, agenda: bool, filtered: bool) -> Vec<Finding> {
        let text = normalise(raw);
        let lower = lower_same_offsets(&text);
        let texts = [(text.clone(), lower.clone())];
        let message = Message {
            texts: &texts,
            body: Some(&text),
            agenda,
            roster: OnceCell::new(),
        };
        let location = Location::default();
        let seg = Segment {
            text: &text,
            lower: &lower,
            script_digits: &[],
            location: &location,
            keywords: Hits::new(&lower),
            regions: crate::detect::regions::Regions::find(&text),
            message: &message,
        };
        let rules = Rules::default();
        let mut out = Vec::new();
        if filtered {
            run(&seg, &rules, &mut out);
        } else {
            find(&seg, &rules, &mut out, |_| true);
        }
        out
    }

    /// Every pattern that matches the normalised `raw` is a candidate of the prefilter.
    fn anchors_hold(raw: &str) -> Result<(), TestCaseError> {
        let text = normalise(raw);
        let candidates = compiled().1.candidates(&lower_same_offsets(&text));
        for (i, re) in compiled().0.iter().enumerate() {
            prop_assert!(
                !re.is_match(&text) || candidates.contains(i),
                "{} matches {text:?} without an anchor",
                MARKINGS[i].name
            );
        }
        Ok(())
    }

    /// Phrases each marking's pattern matches, in every case, spacing, dash and line break
    /// the pattern allows (generated from the pattern itself, without its word boundaries).
    fn phrase() -> impl Strategy<Value = String> {
        let each: Vec<_> = MARKINGS
            .iter()
            .map(|m| {
                proptest::string::string_regex(&m.pattern.replace("(?-u:\\b)", ""))
                    .expect("the pattern generates")
            })
            .collect();
        proptest::strategy::Union::new(each)
    }

    /// Text around a phrase: words, punctuation, and the characters normalisation folds
    /// (NBSP, soft hyphen, en dash, line separator, long s, Kelvin sign, combining diaeresis).
    const AROUND: &str = "[a-zA-ZäöüÄÖÜß0-9 .,:;()\n\t\r\u{00A0}\u{00AD}\u{2013}\u{2028}\u{017F}\u{212A}\u{0308}-]{0,30}";

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        #[test]
        fn filtered_finds_what_the_full_search_finds(
            before in AROUND,
            phrase in phrase(),
            after in AROUND,
            agenda: bool,
        ) {
            let raw = format!("{before}{phrase}{after}");
            anchors_hold(&raw)?;
            prop_assert_eq!(findings(&raw, agenda, true), findings(&raw, agenda, false));
        }

        #[test]
        fn filtered_finds_what_the_full_search_finds_in_any_text(
            raw in "[a-zA-ZäöüÄÖÜ0-9 \n\u{00A0}\u{2013}-]{0,80}",
        ) {
            anchors_hold(&raw)?;
            prop_assert_eq!(findings(&raw, false, true), findings(&raw, false, false));
        }
    }

    /// Known spellings, each of which must be found (so a prefilter that drops one fails
    /// here even if the full search were also broken the same way).
    #[test]
    fn every_spelling_is_found_through_the_prefilter() {
        let spellings = [
            "VS-NfD",
            "VS – NfD",
            "V S - N f D",
            "vs\u{00A0}nfd",
            "VS\u{2014}NfD",
            "VS-Nur für den Dienstgebrauch",
            "Nur fuer den\u{2028}Dienstgebrauch",
            "NUR FU\u{0308}R DEN DIENSTGEBRAUCH",
            "VS-Vertraulich",
            "V\nS vertraulich",
            "STRENG GEHEIM",
            "amtlich geheimgehalten",
            "Nichtöffentlich",
            "nicht öffentliche Sitzung",
            "NICHT-OEFFENTLICH",
            "nicht\u{00AD}öffentlich",
            "N-Teil",
            "N\u{2011}Teil",
            "TOP N 3",
            "TOP\nN12",
            // "NÖ" is left out: its pattern's ASCII `\b` after "Ö" needs an ASCII letter or
            // digit to follow, so "NÖ" on its own is not matched (filtered or not).
            "Personalakte",
            "PERSONALANGELEGENHEITEN",
        ];
        for s in spellings {
            let raw = format!("Anbei die Sitzungsunterlage {s} zur Vorlage.\n");
            let filtered = findings(&raw, false, true);
            assert!(!filtered.is_empty(), "{s:?} not found");
            assert_eq!(filtered, findings(&raw, false, false), "{s:?}");
        }
    }
}
