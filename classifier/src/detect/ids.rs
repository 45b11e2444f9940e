//! Identifiers: pattern, check digit, and context keywords within 300 characters.
//!
//! Confidence follows Microsoft Purview: 85 with check digit and keyword, 75 with check digit
//! alone for the specific formats (Steuer-ID, IBAN, RVNR), 65 for formats that are too broad
//! to stand alone (card numbers, KVNR, ID card numbers) — below the default threshold of 75.
//! Negative context lowers it: an IBAN among company-register data (HRB, USt-IdNr, …) is a
//! company's, and an 11-digit number right after "Tel." is a phone number.

use std::sync::OnceLock;

use regex::{Regex, RegexSet};

use super::Segment;
use super::keywords::Group;
use crate::rules::Rules;
use crate::validate;
use crate::verdict::{Finding, category, mask};

const PROXIMITY: usize = 300;

/// The identifier patterns, in the order of the `P_*` indices. One `RegexSet` pass over a
/// segment tells which of them occur at all; only those are then searched for positions.
/// ASCII word boundaries (`(?-u:\b)`): identifiers are ASCII, and a Unicode boundary would
/// force the regex engine off its DFA on any text with umlauts.
const PATTERNS: [&str; 8] = [
    // Steuer-ID: eleven digits in any grouping (2-3-3-3, 3-3-3-2, 4-4-3, single digits, …),
    // separated by spaces and dashes (every Zs and Pd character, after `normalise`), or by
    // dots, or by slashes — one kind per number.
    r"(?-u:\b)[1-9](?:(?: {0,3}-? {0,3}\d){10}|(?:\.?\d){10}|(?:/?\d){10})(?-u:\b)",
    // IBAN start: country, check digits, first characters, in any case; the rest is taken by
    // length.
    r"(?i)(?-u:\b)[A-Z]{2}\d{2}[ -]?[A-Z0-9]{2}",
    // Payment card: 14-19 digits, optionally grouped.
    r"(?-u:\b)[2-6](?:[ -]?\d){13,18}(?-u:\b)",
    // Rentenversicherungsnummer, optionally spaced "15 070649 C103".
    r"(?-u:\b)\d{2} ?\d{6} ?[A-Z] ?\d{3}(?-u:\b)",
    // Krankenversichertennummer.
    r"(?-u:\b)[A-Z] ?\d{9}(?-u:\b)",
    // Personalausweis since 2010 / Reisepass, with optional check digit and "D".
    r"(?-u:\b)[CFGHJKLMNPRTVWXYZ][0-9CFGHJKLMNPRTVWXYZ]{8}\d?D?(?-u:\b)",
    // Personalausweis before 2010: ten digits.
    r"(?-u:\b)\d{10}(?-u:\b)",
    // Führerschein: eleven characters, check character at position ten.
    r"(?-u:\b)[A-Z0-9]{9}[0-9X][A-Z0-9](?-u:\b)",
];
const P_STEUER: usize = 0;
const P_IBAN: usize = 1;
const P_CARD: usize = 2;
const P_RVNR: usize = 3;
const P_KVNR: usize = 4;
const P_ID_NEW: usize = 5;
const P_ID_OLD: usize = 6;
const P_FS: usize = 7;

struct Compiled {
    set: RegexSet,
    each: Vec<Regex>,
}

fn compiled() -> &'static Compiled {
    static COMPILED: OnceLock<Compiled> = OnceLock::new();
    COMPILED.get_or_init(|| Compiled {
        set: RegexSet::new(PATTERNS).expect("built-in patterns compile"),
        each: PATTERNS
            .iter()
            .map(|p| Regex::new(p).expect("built-in pattern compiles"))
            .collect(),
    })
}

pub(super) fn run(seg: &Segment<'_>, rules: &Rules, out: &mut Vec<Finding>) {
    let c = compiled();
    let present = c.set.matches(seg.text);
    let on = |i: usize, detector: &str| present.matched(i) && rules.enabled(detector);
    let ibans = if on(P_IBAN, "iban") {
        iban(seg, &c.each[P_IBAN], out)
    } else {
        Vec::new()
    };
    if on(P_STEUER, "steuer_id") {
        steuer_id(seg, &c.each[P_STEUER], out);
    }
    if on(P_CARD, "payment_card") {
        card(seg, &c.each[P_CARD], &ibans, out);
    }
    if on(P_RVNR, "rvnr") {
        rvnr(seg, &c.each[P_RVNR], out);
    }
    if on(P_KVNR, "kvnr") {
        kvnr(seg, &c.each[P_KVNR], out);
    }
    if on(P_ID_NEW, "personalausweis") || on(P_ID_NEW, "reisepass") {
        id_new(seg, &c.each[P_ID_NEW], out);
    }
    if on(P_ID_OLD, "personalausweis") {
        id_old(seg, &c.each[P_ID_OLD], out);
    }
    if on(P_FS, "fuehrerschein") {
        fuehrerschein(seg, &c.each[P_FS], out);
    }
}

fn compact(s: &str) -> String {
    s.chars().filter(|c| c.is_ascii_alphanumeric()).collect()
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

fn steuer_id(seg: &Segment<'_>, re: &Regex, out: &mut Vec<Finding>) {
    for m in re.find_iter(seg.text) {
        let id = compact(m.as_str());
        if !validate::steuer_id(&id)
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
fn iban(seg: &Segment<'_>, re: &Regex, out: &mut Vec<Finding>) -> Vec<(usize, usize)> {
    let mut spans = Vec::new();
    for m in re.find_iter(seg.text) {
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

fn card(seg: &Segment<'_>, re: &Regex, ibans: &[(usize, usize)], out: &mut Vec<Finding>) {
    for m in re.find_iter(seg.text) {
        if ibans.iter().any(|&(s, e)| m.start() >= s && m.start() < e) {
            continue;
        }
        let number = compact(m.as_str());
        if !validate::luhn(&number) {
            continue;
        }
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

fn rvnr(seg: &Segment<'_>, re: &Regex, out: &mut Vec<Finding>) {
    for m in re.find_iter(seg.text) {
        if !validate::rvnr(&compact(m.as_str())) {
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

fn kvnr(seg: &Segment<'_>, re: &Regex, out: &mut Vec<Finding>) {
    for m in re.find_iter(seg.text) {
        if !validate::kvnr(&compact(m.as_str())) {
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
fn id_new(seg: &Segment<'_>, new: &Regex, out: &mut Vec<Finding>) {
    for m in new.find_iter(seg.text) {
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
fn id_old(seg: &Segment<'_>, old: &Regex, out: &mut Vec<Finding>) {
    for m in old.find_iter(seg.text) {
        if validate::icao_7_3_1(m.as_str())
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

fn fuehrerschein(seg: &Segment<'_>, re: &Regex, out: &mut Vec<Finding>) {
    for m in re.find_iter(seg.text) {
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
