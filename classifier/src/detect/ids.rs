//! Identifiers: pattern, check digit, and context keywords within 300 characters.
//!
//! Confidence follows Microsoft Purview: 85 with check digit and keyword, 75 with check digit
//! alone for the specific formats (Steuer-ID, IBAN, RVNR), 65 for formats that are too broad
//! to stand alone (card numbers, KVNR, ID card numbers) — below the default threshold of 75.
//! Negative context lowers it: an IBAN among company-register data (HRB, USt-IdNr, …) is a
//! company's, and an 11-digit number right after "Tel." is a phone number.

use std::ops::Range;
use std::sync::OnceLock;

use regex_automata::Input;
use regex_automata::meta::Regex;

use super::Segment;
use super::keywords::Group;
use super::regions::Regions;
use crate::rules::Rules;
use crate::validate;
use crate::verdict::{Finding, category, mask};

const PROXIMITY: usize = 300;

/// The identifier patterns, in the order of the `P_*` indices. They are searched only in
/// the [`Regions`] where a match can stand. ASCII throughout (`(?-u)`): `normalise` has
/// turned every decimal digit into its ASCII digit and folded full-width letters, and a
/// Unicode `\b` would force the regex engine off its DFA on text with umlauts.
const PATTERNS: [&str; 8] = [
    // Steuer-ID: eleven digits in any grouping (2-3-3-3, 3-3-3-2, 4-4-3, single digits, …),
    // separated by spaces and dashes (every Zs and Pd character, after `normalise`), or by
    // dots, or by slashes — one kind per number.
    r"(?-u)\b[1-9](?:(?: {0,3}-? {0,3}\d){10}|(?:\.?\d){10}|(?:/?\d){10})\b",
    // IBAN start: country, check digits, first characters, in any case; the rest is taken by
    // length.
    r"(?-u)(?i)\b[A-Z]{2}\d{2}[ -]?[A-Z0-9]{2}",
    // Payment card: 14-19 digits, optionally grouped.
    r"(?-u)\b[2-6](?:[ -]?\d){13,18}\b",
    // Rentenversicherungsnummer, optionally spaced "15 070649 C103".
    r"(?-u)\b\d{2} ?\d{6} ?[A-Z] ?\d{3}\b",
    // Krankenversichertennummer.
    r"(?-u)\b[A-Z] ?\d{9}\b",
    // Personalausweis since 2010 / Reisepass, with optional check digit and "D".
    r"(?-u)\b[CFGHJKLMNPRTVWXYZ][0-9CFGHJKLMNPRTVWXYZ]{8}\d?D?\b",
    // Personalausweis before 2010: ten digits.
    r"(?-u)\b\d{10}\b",
    // Führerschein: eleven characters, check character at position ten.
    r"(?-u)\b[A-Z0-9]{9}[0-9X][A-Z0-9]\b",
];
const P_STEUER: usize = 0;
const P_IBAN: usize = 1;
const P_CARD: usize = 2;
const P_RVNR: usize = 3;
const P_KVNR: usize = 4;
const P_ID_NEW: usize = 5;
const P_ID_OLD: usize = 6;
const P_FS: usize = 7;

/// The patterns compiled. Without prefilters: most regions are a few dozen bytes, too short
/// for one to pay off.
fn compiled() -> &'static [Regex] {
    static COMPILED: OnceLock<Vec<Regex>> = OnceLock::new();
    COMPILED.get_or_init(|| {
        PATTERNS
            .iter()
            .map(|p| {
                Regex::builder()
                    .configure(Regex::config().auto_prefilter(false))
                    .build(p)
                    .expect("built-in pattern compiles")
            })
            .collect()
    })
}

/// The regions pattern `pattern` can match in: for the number patterns, the chains with as
/// many digits as the pattern has, and as long a run of them as it needs without a
/// separator (the RVNR's `\d{6}`, the KVNR's nine digits, the old ID card's ten).
fn regions_of(regions: &Regions, pattern: usize) -> Vec<Range<usize>> {
    let (digits, run) = match pattern {
        P_IBAN => return regions.ibans.clone(),
        P_ID_NEW | P_FS => return regions.codes.clone(),
        P_STEUER => (11, 1),
        P_CARD => (14, 1),
        P_RVNR => (11, 6),
        P_KVNR => (9, 9),
        P_ID_OLD => (10, 10),
        _ => unreachable!("every pattern has its regions"),
    };
    regions
        .numbers
        .iter()
        .filter(|n| n.digits >= digits && n.run >= run)
        .map(|n| n.range.clone())
        .collect()
}

/// A match: its span and text.
struct Found<'t> {
    start: usize,
    end: usize,
    text: &'t str,
}

impl Found<'_> {
    fn start(&self) -> usize {
        self.start
    }
    fn end(&self) -> usize {
        self.end
    }
    fn as_str(&self) -> &str {
        self.text
    }
}

/// Every match of `pattern` in `text`, in order, searched within its regions only; the
/// text around a region still counts for `\b`.
fn matches<'t>(
    text: &'t str,
    regions: &'t Regions,
    pattern: usize,
) -> impl Iterator<Item = Found<'t>> + 't {
    let re = &compiled()[pattern];
    regions_of(regions, pattern).into_iter().flat_map(move |r| {
        re.find_iter(Input::new(text).range(r)).map(move |m| Found {
            start: m.start(),
            end: m.end(),
            text: &text[m.range()],
        })
    })
}

pub(super) fn run(seg: &Segment<'_>, rules: &Rules, out: &mut Vec<Finding>) {
    let found = |pattern: usize| matches(seg.text, &seg.regions, pattern);
    let ibans = if rules.enabled("iban") {
        iban(seg, found(P_IBAN), out)
    } else {
        Vec::new()
    };
    if rules.enabled("steuer_id") {
        steuer_id(seg, found(P_STEUER), out);
    }
    if rules.enabled("payment_card") {
        card(seg, found(P_CARD), &ibans, out);
    }
    if rules.enabled("rvnr") {
        rvnr(seg, found(P_RVNR), out);
    }
    if rules.enabled("kvnr") {
        kvnr(seg, found(P_KVNR), out);
    }
    if rules.enabled("personalausweis") || rules.enabled("reisepass") {
        id_new(seg, found(P_ID_NEW), out);
    }
    if rules.enabled("personalausweis") {
        id_old(seg, found(P_ID_OLD), out);
    }
    if rules.enabled("fuehrerschein") {
        fuehrerschein(seg, found(P_FS), out);
    }
}

fn compact(s: &str) -> String {
    s.chars().filter(|c| c.is_ascii_alphanumeric()).collect()
}

/// The ways to read the number `m`, compacted: as it stands and, where digits of another
/// script stand in it (folded to ASCII by `normalise`), also without them — a reader who
/// does not know that script skips such a digit ("4111 1111 1111 ๑1111"), and so did the
/// classifier before it folded them. Fail closed: a number counts if one reading checks.
fn readings(seg: &Segment<'_>, m: &Found<'_>) -> Vec<String> {
    let mut readings = vec![compact(m.as_str())];
    let script_digit = |i: usize| seg.script_digits.binary_search(&(m.start() + i)).is_ok();
    if (0..m.as_str().len()).any(script_digit) {
        let without: String = m
            .as_str()
            .char_indices()
            .filter(|&(i, _)| !script_digit(i))
            .map(|(_, c)| c)
            .collect();
        readings.push(compact(&without));
    }
    readings
}

/// Whether the account's owner is named as a person right at the number ("Kontoinhaber:",
/// "mein Konto", "meine IBAN"), which outweighs a cash office mentioned further away.
fn owner_named(seg: &Segment<'_>, start: usize, end: usize) -> bool {
    const OWNER: [&str; 6] = [
        "kontoinhaber",
        "mein konto",
        "meine iban",
        "meine bankverbindung",
        "meiner bankverbindung",
        "auf mein",
    ];
    let (from, to) = crate::text::window(seg.lower, start, end, 100);
    let near = &seg.lower[from..to];
    // "Empfänger: Olaf Simmering" is a person; "Empfänger: Stadtkasse" is not.
    let payee_is_person = near.match_indices("empfänger:").any(|(i, m)| {
        let after: String = near[i + m.len()..].chars().take(40).collect();
        ![
            "stadt", "gemeinde", "kreis", "kasse", "amt", "land", "gmbh", "ag ", "e.v",
        ]
        .iter()
        .any(|body| after.contains(body))
    });
    payee_is_person || OWNER.iter().any(|w| near.contains(w))
}

fn keyword(seg: &Segment<'_>, group: Group, start: usize, end: usize) -> bool {
    seg.keywords.near(group, start, end, PROXIMITY)
}

fn steuer_id<'t>(
    seg: &Segment<'_>,
    found: impl Iterator<Item = Found<'t>>,
    out: &mut Vec<Finding>,
) {
    for m in found {
        if !readings(seg, &m).iter().any(|id| validate::steuer_id(id))
            || after_phone_label(seg, m.start())
            || part_of_longer_number(seg.text, m.start(), m.end())
        {
            continue;
        }
        let confidence = if keyword(seg, Group::Tax, m.start(), m.end()) {
            85
        } else {
            75
        };
        out.push(seg.finding(
            "steuer_id",
            category::TAX_ID,
            confidence,
            m.start(),
            Some(mask(m.as_str())),
        ));
    }
}

/// Whether the digits go on, right before `start` or after `end`, across separators of the
/// kind the number itself uses: then the eleven digits are a piece of something longer (an
/// ungrouped number has no separators, and `\b` already keeps it from touching digits).
fn part_of_longer_number(text: &str, start: usize, end: usize) -> bool {
    let Some(kind) = text[start..end].chars().find(|c| !c.is_ascii_digit()) else {
        return false;
    };
    let same_kind = |c: char| match kind {
        ' ' | '-' => matches!(c, ' ' | '-'),
        other => c == other,
    };
    let goes_on = |chars: &mut dyn Iterator<Item = char>| {
        let mut separators = 0;
        for c in chars {
            if same_kind(c) && separators < 3 {
                separators += 1;
            } else {
                return separators > 0 && c.is_ascii_digit();
            }
        }
        false
    };
    goes_on(&mut text[..start].chars().rev()) || goes_on(&mut text[end..].chars())
}

/// A phone label ("Tel.", "Fax", "+49") just before the number.
fn after_phone_label(seg: &Segment<'_>, start: usize) -> bool {
    let from = seg.text[..start]
        .char_indices()
        .rev()
        .nth(24)
        .map_or(0, |(i, _)| i);
    seg.keywords.within(Group::Phone, from, start) || seg.text[from..start].contains('+')
}

/// Returns the byte spans of the IBANs found, so card numbers inside them are not counted.
fn iban<'t>(
    seg: &Segment<'_>,
    found: impl Iterator<Item = Found<'t>>,
    out: &mut Vec<Finding>,
) -> Vec<(usize, usize)> {
    let mut spans = Vec::new();
    for m in found {
        // Take exactly as many characters as the country's IBAN has, allowing single
        // spaces between them (the printed 4-character groups).
        let country = seg.text[m.start()..m.start() + 2].to_ascii_uppercase();
        let Some(length) = validate::iban_length(&country) else {
            continue;
        };
        let mut id = String::with_capacity(length);
        let mut end = m.start();
        let mut last_space = false;
        for (i, c) in seg.text[m.start()..].char_indices() {
            if id.len() == length {
                break;
            }
            if c.is_ascii_alphanumeric() {
                id.push(c.to_ascii_uppercase());
                last_space = false;
                end = m.start() + i + 1;
            } else if matches!(c, ' ' | '-') && !last_space && !id.is_empty() {
                last_space = true;
            } else {
                break;
            }
        }
        let boundary = seg.text[end..]
            .chars()
            .next()
            .is_none_or(|c| !c.is_ascii_alphanumeric());
        if id.len() != length || !boundary || !validate::iban(&id) {
            continue;
        }
        spans.push((m.start(), end));
        // "Kontoinhaber: Frank Brinkmann" right at the number is a person's account even
        // when a Kassenzeichen or the Stadtkasse is mentioned further away.
        let confidence = if owner_named(seg, m.start(), end) {
            85
        } else if keyword(seg, Group::Company, m.start(), end) {
            50
        } else if keyword(seg, Group::PersonalAccount, m.start(), end) {
            85
        } else {
            75
        };
        let hint = format!("{} …{}", &id[..4], &id[id.len() - 4..]);
        out.push(seg.finding(
            "iban",
            category::BANK_ACCOUNT,
            confidence,
            m.start(),
            Some(hint),
        ));
    }
    spans
}

fn card<'t>(
    seg: &Segment<'_>,
    found: impl Iterator<Item = Found<'t>>,
    ibans: &[(usize, usize)],
    out: &mut Vec<Finding>,
) {
    for m in found {
        if ibans.iter().any(|&(s, e)| m.start() >= s && m.start() < e) {
            continue;
        }
        let Some(number) = readings(seg, &m).into_iter().find(|n| validate::luhn(n)) else {
            continue;
        };
        let confidence = if keyword(seg, Group::Card, m.start(), m.end()) {
            85
        } else {
            65
        };
        out.push(seg.finding(
            "payment_card",
            category::PAYMENT_CARD,
            confidence,
            m.start(),
            Some(mask(&number)),
        ));
    }
}

fn rvnr<'t>(seg: &Segment<'_>, found: impl Iterator<Item = Found<'t>>, out: &mut Vec<Finding>) {
    for m in found {
        if !readings(seg, &m).iter().any(|id| validate::rvnr(id)) {
            continue;
        }
        let confidence = if keyword(seg, Group::Rvnr, m.start(), m.end()) {
            85
        } else {
            75
        };
        out.push(seg.finding(
            "rvnr",
            category::SOCIAL_INSURANCE,
            confidence,
            m.start(),
            Some(mask(m.as_str())),
        ));
    }
}

fn kvnr<'t>(seg: &Segment<'_>, found: impl Iterator<Item = Found<'t>>, out: &mut Vec<Finding>) {
    for m in found {
        if !readings(seg, &m).iter().any(|id| validate::kvnr(id)) {
            continue;
        }
        let confidence = if keyword(seg, Group::Kvnr, m.start(), m.end()) {
            85
        } else {
            65
        };
        out.push(seg.finding(
            "kvnr",
            category::HEALTH_INSURANCE,
            confidence,
            m.start(),
            Some(mask(m.as_str())),
        ));
    }
}

/// Personalausweis (since 2010: first letter L M N P R T V W X Y) and Reisepass (C F G H J
/// K): nine characters from the ICAO alphabet plus check digit; the old ID card: ten digits.
fn id_new<'t>(seg: &Segment<'_>, found: impl Iterator<Item = Found<'t>>, out: &mut Vec<Finding>) {
    for m in found {
        let raw = m.as_str().trim_end_matches('D');
        let digits = raw.bytes().filter(u8::is_ascii_digit).count();
        if digits < 2 {
            continue;
        }
        let passport = raw.starts_with(['C', 'F', 'G', 'H', 'J', 'K']);
        let (detector, group) = if passport {
            ("reisepass", Group::Pass)
        } else {
            ("personalausweis", Group::Ausweis)
        };
        let context = keyword(seg, group, m.start(), m.end())
            || (passport && keyword(seg, Group::Ausweis, m.start(), m.end()));
        let checked = raw.len() == 10 && validate::icao_7_3_1(raw);
        let confidence = match (checked, context) {
            (true, true) => 85,
            (false, true) if raw.len() == 9 => 75,
            (true, false) => 65,
            _ => continue,
        };
        out.push(seg.finding(
            detector,
            category::IDENTITY_DOCUMENT,
            confidence,
            m.start(),
            Some(mask(raw)),
        ));
    }
}

/// The old ID card (1987-2010): ten digits, counted only with an ID card keyword nearby.
fn id_old<'t>(seg: &Segment<'_>, found: impl Iterator<Item = Found<'t>>, out: &mut Vec<Finding>) {
    for m in found {
        if readings(seg, &m).iter().any(|id| validate::icao_7_3_1(id))
            && keyword(seg, Group::Ausweis, m.start(), m.end())
            && !after_phone_label(seg, m.start())
        {
            out.push(seg.finding(
                "personalausweis",
                category::IDENTITY_DOCUMENT,
                85,
                m.start(),
                Some(mask(m.as_str())),
            ));
        }
    }
}

fn fuehrerschein<'t>(
    seg: &Segment<'_>,
    found: impl Iterator<Item = Found<'t>>,
    out: &mut Vec<Finding>,
) {
    for m in found {
        let s = m.as_str();
        let mixed =
            s.bytes().any(|b| b.is_ascii_digit()) && s.bytes().any(|b| b.is_ascii_uppercase());
        if mixed
            && validate::fuehrerschein(s)
            && keyword(seg, Group::Fuehrerschein, m.start(), m.end())
        {
            // Purview gives this format 75 at most: the check digit is weak.
            out.push(seg.finding(
                "fuehrerschein",
                category::IDENTITY_DOCUMENT,
                75,
                m.start(),
                Some(mask(s)),
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    type Spans = Vec<(usize, usize)>;

    /// The spans of every match of `pattern`, searched in its regions and in the whole text.
    fn both(text: &str, pattern: usize) -> (Spans, Spans) {
        let regions = Regions::find(text);
        let filtered = matches(text, &regions, pattern)
            .map(|m| (m.start(), m.end()))
            .collect();
        let whole = compiled()[pattern]
            .find_iter(text)
            .map(|m| (m.start(), m.end()))
            .collect();
        (filtered, whole)
    }

    /// Text made of the pieces identifiers are made of: digit groups, the separators the
    /// patterns allow (and others), letters of both cases, codes, umlauts and a non-ASCII
    /// digit.
    fn identifier_like() -> impl Strategy<Value = String> {
        let piece = prop_oneof![
            "[0-9]{1,11}",
            "[ .\\-/]{1,4}",
            " {0,3}-? {0,3}",
            "[,;:()+]",
            "[A-Za-zäÖß]{1,10}",
            "[A-Z0-9]{3,12}",
            "[CFGHJKLMNPRTVWXYZ0-9]{9,11}D?",
            "[A-Z]{2}[0-9]{2}",
            // The shapes of the numbers themselves, so that matches are not rare.
            "[1-9]( ?[0-9]){10}",
            "[0-9]{2} ?[0-9]{6} ?[A-Z] ?[0-9]{3}",
            "[A-Z] ?[0-9]{9}",
            "[2-6]([ -]?[0-9]){13,18}",
            "[\n٣]",
        ];
        prop::collection::vec(piece, 0..24).prop_map(|pieces| pieces.concat())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(4000))]

        #[test]
        fn searching_the_regions_finds_what_searching_everything_finds(
            text in identifier_like(),
        ) {
            for pattern in 0..PATTERNS.len() {
                let (filtered, whole) = both(&text, pattern);
                prop_assert_eq!(filtered, whole, "pattern {} in {:?}", pattern, text);
            }
        }
    }

    #[test]
    fn identifiers_at_the_edges_of_their_regions() {
        // Word boundaries at a region's edge see the text outside it.
        for text in [
            "86095742719",
            "x86095742719",
            "86095742719x",
            "Z 123456789",
            "AZ 123456789",
            "DE89370400440532013000",
            "xDE89 3704",
            "L01X00T471D",
            "ÄL01X00T471",
            "a-86 095 742 719-b",
            "8 6 0 9 5 7 4 2 7 1 9",
            "15 070649 C103",
            "4-1-1-1-1-1-1-1-1-1-1-1-1-1",
            // The widest gap a Steuer-ID allows.
            "8609   -   5742719",
            "4111 1111 1111 1111 1",
        ] {
            for pattern in 0..PATTERNS.len() {
                let (filtered, whole) = both(text, pattern);
                assert_eq!(filtered, whole, "pattern {pattern} in {text:?}");
            }
        }
    }
}
