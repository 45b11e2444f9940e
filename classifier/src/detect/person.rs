//! People in a text, as a data-protection officer reads them (issue #11 §1).
//!
//! A **person** is mentioned by
//! - a salutation or title and a name: "Frau Meier", "Herrn Dr. Yilmaz";
//! - a given name (from `data/vornamen.txt`, an open-data list) and a capitalised word:
//!   "Anna Schmidt", "Mehmet Kaya";
//! - a role noun pointing at one person: "der Antragsteller", "die Kollegin", "das Kind";
//! - a row of a table with a name column.
//!
//! A later sentence **refers back** to a person with a pronoun ("Sie ist seit …", "sein
//! Antrag") or a role noun. Special-category facts are tied to a person in the same sentence,
//! in the sentences that refer back, or in the same table row (see `art9.rs`).

use std::collections::HashSet;
use std::sync::OnceLock;

use regex::Regex;

/// The given-name list: German and other common given names (see the file's header for the
/// source and licence).
const GIVEN_NAMES: &str = include_str!("../../data/vornamen.txt");

fn given_names() -> &'static HashSet<&'static str> {
    static NAMES: OnceLock<HashSet<&'static str>> = OnceLock::new();
    NAMES.get_or_init(|| {
        GIVEN_NAMES
            .lines()
            .filter(|l| !l.starts_with('#') && !l.is_empty())
            .collect()
    })
}

struct Patterns {
    titled: Regex,
    initial: Regex,
    two_names: Regex,
    role: Regex,
    pronoun: Regex,
}

fn patterns() -> &'static Patterns {
    static RES: OnceLock<Patterns> = OnceLock::new();
    RES.get_or_init(|| Patterns {
        titled: Regex::new(
            r"(?-u:\b)(?:Herrn?|Frau|Fr\.|Hr\.|Dr\.|Prof\.|Familie|Eheleute)\s+(?:Dr\.\s+|Prof\.\s+)?[A-ZÄÖÜ][a-zäöüßçğışéèáà]+(?:-[A-ZÄÖÜ][a-zäöüßçğışéèáà]+)?",
        )
        .expect("titled"),
        initial: Regex::new(r"\b[A-ZÄÖÜ]\.\s?[A-ZÄÖÜ][a-zäöüß]{2,}(?:-[A-ZÄÖÜ][a-zäöüß]+)?(?-u:\b)")
            .expect("initial"),
        two_names: Regex::new(
            r"(?-u:\b)([A-ZÄÖÜ][a-zäöüßçğışéèáà]+)(?:-[A-ZÄÖÜ][a-zäöüß]+)?\s+[A-ZÄÖÜ][a-zäöüßçğışéèáà]+(?:-[A-ZÄÖÜ][a-zäöüß]+)?",
        )
        .expect("two names"),
        // Singular forms only: "die Beschäftigten" are many people, "der Beschäftigte" one.
        role: Regex::new(
            r"(?i)(?-u:\b)(?:der|die|das|dem|den|des|unsere[mnrs]?|unser|ihre[mnrs]?|seine[mnrs]?|ihr|sein)\s+(?:antragsteller(?:in)?|kollegin|kollegen|kollege|mitarbeiterin|mitarbeiters?|beschäftigter?|angestellter?|beamtin|beamten?|auszubildender?|kind(?:es)?|jugendlichen?|schüler(?:in|s)?|patient(?:in|en)?|klient(?:in|en)?|betroffener?|leistungsberechtigter?|bewerber(?:in|s)?|mieter(?:in|s)?|petent(?:in|en)?|kindesmutter|kindesvater|mutter|vaters?|tochter|sohn(?:es)?|ehefrau|ehemann(?:es)?|bewohner(?:in|s)?|bürger(?:in|s)?)(?-u:\b)",
        )
        .expect("role"),
        pronoun: Regex::new(
            r"(?-u:\b)(?:[Ss]ie|[Ee]r|[Ii]hr|[Ii]hm|[Ii]hn|[Ii]hre[mnrs]?|[Ss]eine?[mnrs]?|[Dd]essen|[Dd]eren)(?-u:\b)",
        )
        .expect("pronoun"),
    })
}

/// Where people are mentioned and referred back to in one text (byte offsets).
pub(super) struct People {
    /// Starts of person mentions (titled names, given name + surname, role nouns).
    pub(super) mentions: Vec<usize>,
    /// Starts of back-references (pronouns, role nouns).
    pub(super) references: Vec<usize>,
    /// Byte ranges of rows of tables that have a name column.
    pub(super) rows: Vec<(usize, usize)>,
}

impl People {
    /// Finds them, ignoring mentions inside `ignored` ranges (signatures, letterheads).
    pub(super) fn find(text: &str, ignored: &[(usize, usize)]) -> Self {
        let p = patterns();
        let outside = |at: usize| !ignored.iter().any(|&(s, e)| at >= s && at < e);
        let mut mentions: Vec<usize> = p
            .titled
            .find_iter(text)
            .map(|m| m.start())
            .filter(|&at| outside(at))
            .collect();
        let names = given_names();
        let mut at = 0;
        // Overlapping pairs matter ("Sehr geehrte Anna Schmidt": "Sehr geehrte" is no name,
        // "Anna Schmidt" is), so the search restarts after the first word of each pair.
        while let Some(c) = p.two_names.captures_at(text, at) {
            let first = c.get(1).expect("group 1");
            if names.contains(first.as_str()) && outside(first.start()) {
                mentions.push(first.start());
            }
            at = first.end();
        }
        // "J. Pfeiffer": an initial and a surname.
        mentions.extend(
            p.initial
                .find_iter(text)
                .map(|m| m.start())
                .filter(|&at| outside(at)),
        );
        let roles: Vec<usize> = p
            .role
            .find_iter(text)
            .map(|m| m.start())
            .filter(|&at| outside(at))
            .collect();
        mentions.extend(&roles);
        mentions.sort_unstable();
        let mut references: Vec<usize> = p.pronoun.find_iter(text).map(|m| m.start()).collect();
        references.extend(roles);
        references.sort_unstable();
        Self {
            mentions,
            references,
            rows: name_table_rows(text),
        }
    }

    /// Whether a person is mentioned within `from..to`.
    pub(super) fn mentioned(&self, from: usize, to: usize) -> bool {
        self.mentions.iter().any(|&m| m >= from && m < to)
    }

    /// Whether `from..to` refers back to someone.
    pub(super) fn referred(&self, from: usize, to: usize) -> bool {
        self.references.iter().any(|&r| r >= from && r < to)
    }

    /// Whether `at` lies in a row of a table with a name column.
    pub(super) fn in_row(&self, at: usize) -> bool {
        self.rows.iter().any(|&(s, e)| at >= s && at < e)
    }
}

/// Whether the first lines of `text` (its first 400 bytes, after a salutation line) name
/// someone.
pub(crate) fn names_someone_early(text: &str) -> bool {
    let opening = &text[..floor(text, 400)];
    // The writer's name in the signature is no one the subject is about.
    let p = People::find(opening, &super::boilerplate::ranges(opening));
    // "Sehr geehrte Frau Meier," addresses the reader; who else is named counts.
    let salutation_end = opening
        .trim_start()
        .lines()
        .next()
        .filter(|l| l.trim_end().ends_with(','))
        .map_or(0, |l| opening.len() - opening.trim_start().len() + l.len());
    // In a sentence: not a name alone on a line (a signature without a closing formula), not
    // a header line of quoted mail ("Von: Böhm, Katrin").
    let in_a_sentence = |at: usize| {
        let start = opening[..at].rfind('\n').map_or(0, |i| i + 1);
        let end = opening[at..].find('\n').map_or(opening.len(), |i| at + i);
        let line = opening[start..end].trim();
        let quoted_header = [
            "von:",
            "an:",
            "cc:",
            "gesendet:",
            "betreff:",
            "from:",
            "to:",
        ]
        .iter()
        .any(|h| line.to_lowercase().starts_with(h));
        !quoted_header
            && line.split_whitespace().count() >= 6
            && !super::art9::is_topic_sentence(&line.to_lowercase())
    };
    p.mentions
        .iter()
        .any(|&m| m > salutation_end && in_a_sentence(m))
}

/// The largest char boundary at or below `at`.
fn floor(text: &str, at: usize) -> usize {
    let mut at = at.min(text.len());
    while !text.is_char_boundary(at) {
        at -= 1;
    }
    at
}

/// Whether `text` holds a table of people (a name column with rows of names).
pub(super) fn has_name_table(text: &str) -> bool {
    may_be_name_header(text) && !name_table_rows(text).is_empty()
}

/// Header words of a name column.
const NAME_COLUMNS: [&str; 13] = [
    "name",
    "kind",
    "patient",
    "patientin",
    "schüler",
    "teilnehmer",
    "klient",
    "nachname",
    "vorname",
    "familienname",
    "mitarbeiter",
    "beschäftigte",
    "person",
];

/// Whether a line could be a table header with a name column (a cheap test before splitting
/// it into cells: most lines of most mails are not).
fn may_be_name_header(line: &str) -> bool {
    static WORDS: OnceLock<aho_corasick::AhoCorasick> = OnceLock::new();
    WORDS
        .get_or_init(|| {
            aho_corasick::AhoCorasick::builder()
                .ascii_case_insensitive(true)
                .build(NAME_COLUMNS)
                .expect("built-in column names compile")
        })
        .is_match(line)
}

/// Rows of delimited tables (CSV, TSV, `;`-separated as German spreadsheets export) whose
/// header has a name column, and whose cell in it looks like a person's name (not an office:
/// a phone list of "Bürgerbüro", "Sozialamt" is no list of people).
fn name_table_rows(text: &str) -> Vec<(usize, usize)> {
    let mut rows = Vec::new();
    let mut offset = 0;
    // (separator, columns, index of the name column, the header's range until its first row)
    let mut header: Option<(char, usize, usize)> = None;
    let mut header_range: Option<(usize, usize)> = None;
    for line in text.split_inclusive('\n') {
        let start = offset;
        offset += line.len();
        let content = line.trim_end();
        // Blank lines between rows (as HTML tables come out) do not end a table.
        if content.trim().is_empty() {
            continue;
        }
        // `;` and `,` (CSV), tab (TSV; a space after normalising), `|` (HTML table cells).
        // `;` and `,` (CSV), `|` (HTML table cells), or columns aligned with runs of spaces
        // (a plain-text table; TSV after its tabs were normalised to spaces). A NUL stands for
        // "two or more spaces".
        let aligned = content.trim().contains("  ");
        let separator = [';', '|']
            .into_iter()
            .find(|&s| content.contains(s))
            .or(aligned.then_some('\0'))
            .or_else(|| content.contains(',').then_some(','));
        let cells = |sep: char| -> Vec<String> {
            let split: Vec<&str> = if sep == '\0' {
                content
                    .trim()
                    .split("  ")
                    .filter(|c| !c.trim().is_empty())
                    .collect()
            } else {
                content.split(sep).collect()
            };
            split
                .into_iter()
                .map(|c| c.trim().trim_matches('"').to_owned())
                .collect()
        };
        match (header, separator) {
            (Some((sep, columns, name_at)), Some(s)) if s == sep && cells(sep).len() >= columns => {
                if cells(sep)
                    .get(name_at)
                    .is_some_and(|c| looks_like_a_name(c))
                {
                    // The header names what every row holds ("GdB", "Diagnose"): it
                    // belongs to the rows once there is one.
                    if let Some(range) = header_range.take() {
                        rows.push(range);
                    }
                    rows.push((start, offset));
                }
            }
            (_, Some(_)) if !may_be_name_header(content) => header = None,
            (_, Some(sep)) => {
                let cells = cells(sep);
                let name_at = cells.iter().position(|c| {
                    let c = c.to_lowercase();
                    NAME_COLUMNS
                        .iter()
                        .any(|n| c.split([' ', '/', '_', '-']).any(|w| w == *n))
                });
                header = name_at
                    .filter(|_| cells.len() >= 2)
                    .map(|at| (sep, cells.len(), at));
                header_range = header.map(|_| (start, offset));
            }
            _ => header = None,
        }
    }
    rows
}

/// "Meier", "Meier, Anna", "Anna Meier", "Müller-Lüdenscheidt" — but not an office
/// ("Sozialamt", "Bürgerbüro", "Team Kita").
fn looks_like_a_name(cell: &str) -> bool {
    const OFFICE_ENDINGS: [&str; 12] = [
        "amt",
        "büro",
        "stelle",
        "dienst",
        "zentrale",
        "verwaltung",
        "abteilung",
        "referat",
        "bereich",
        "team",
        "kasse",
        "center",
    ];
    let words: Vec<&str> = cell.split([' ', ',']).filter(|w| !w.is_empty()).collect();
    !words.is_empty()
        && words.len() <= 4
        && words.iter().all(|w| {
            let mut chars = w.chars();
            chars.next().is_some_and(char::is_uppercase)
                && chars.all(|c| c.is_lowercase() || c == '-' || c == '.')
        })
        && !words.iter().any(|w| {
            let w = w.to_lowercase();
            OFFICE_ENDINGS.iter().any(|e| w.ends_with(e))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn people_are_found_by_title_given_name_and_role() {
        let text = "Sehr geehrte Frau Dr. Weber, Anna Schmidt und der Antragsteller waren da. Sie ist krank.";
        let p = People::find(text, &[]);
        assert!(p.mentioned(0, text.find(',').unwrap()), "titled");
        let anna = text.find("Anna").unwrap();
        assert!(p.mentions.contains(&anna), "given name");
        let role = text.find("der Antragsteller").unwrap();
        assert!(p.mentions.contains(&role), "role noun");
        let sie = text.find("Sie ist").unwrap();
        assert!(p.referred(sie, text.len()));
        // Capitalised nouns are not names.
        let nouns = People::find("Die Sitzung beginnt. Bauamt Unterlagen folgen.", &[]);
        assert!(nouns.mentions.is_empty());
    }

    #[test]
    fn ignored_ranges_hide_signature_names() {
        let text = "Hallo.\n-- \nAnna Schmidt\nSozialamt";
        let sig = text.find("-- ").unwrap();
        assert!(People::find(text, &[(sig, text.len())]).mentions.is_empty());
    }

    #[test]
    fn table_rows_with_a_name_column() {
        let csv =
            "Personalnr;Name;Vorname;GdB\n1001;Meier;Anna;50\n1002;Kaya;Mehmet;30\n\nSumme: 2\n";
        let p = People::find(csv, &[]);
        assert_eq!(p.rows.len(), 3, "header and two rows");
        assert!(p.in_row(csv.find("GdB").unwrap()));
        assert!(p.in_row(csv.find("50").unwrap()));
        assert!(!p.in_row(csv.find("Summe").unwrap()));
        let no_names = People::find("Monat;Betrag\nJanuar;50\n", &[]);
        assert!(no_names.rows.is_empty());
        let offices = People::find("Name;Zimmer\nSozialamt;1.07\nBürgerbüro;0.12\n", &[]);
        assert!(offices.rows.is_empty());
    }
}
