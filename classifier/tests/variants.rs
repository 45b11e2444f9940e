//! Issue #10.2: a Steuer-ID or IBAN stays one whatever a sender's keyboard, mail program or
//! intent does to it — any grouping, any Unicode space or dash between the groups, full-width
//! or mathematical digits, invisible format characters inside, lower case. Generated variants
//! of valid identifiers must all be found; the same variants of an identifier with a wrong
//! check digit must not be.

use classifier::Rules;
use proptest::prelude::*;

/// Valid Steuer-IDs (ISO 7064 MOD 11,10 check digit, digit-repetition rule).
const STEUER_IDS: [&str; 3] = ["86095742719", "47036892816", "65929970489"];
/// Valid German IBANs.
const IBANS: [&str; 2] = ["DE89370400440532013000", "DE02120300000000202051"];

const SEPARATORS: [&str; 12] = [
    " ",
    "  ",
    "\u{00A0}",
    "\u{202F}",
    "\u{2009}",
    "\u{3000}",
    "-",
    "\u{2013}",
    "\u{2014}",
    "\u{2011}",
    " \u{2014} ",
    "\u{2212}",
];
const INVISIBLE: [&str; 6] = [
    "\u{200B}", "\u{200E}", "\u{200F}", "\u{2060}", "\u{2063}", "\u{00AD}",
];

/// Digit `d` in one of the forms a reader reads as that digit.
fn digit_form(d: char, form: u8) -> String {
    let n = d as u32 - '0' as u32;
    let c = match form {
        1 => char::from_u32(0xFF10 + n),  // full-width
        2 => char::from_u32(0x1D7CE + n), // mathematical bold
        3 => char::from_u32(0x1D7EC + n), // mathematical sans-serif bold
        _ => Some(d),
    };
    c.expect("a digit form").to_string()
}

/// `id` with groups cut at `cuts`, joined by `separator`, digits in `forms`, and invisible
/// characters at `hidden` positions.
fn disguise(
    id: &str,
    cuts: &[usize],
    separator: &str,
    forms: &[u8],
    hidden: &[(usize, usize)],
) -> String {
    let mut out = String::new();
    for (i, c) in id.chars().enumerate() {
        if i > 0 && cuts.contains(&i) {
            out.push_str(separator);
        }
        if let Some(&(_, which)) = hidden.iter().find(|(at, _)| *at == i) {
            out.push_str(INVISIBLE[which % INVISIBLE.len()]);
        }
        if c.is_ascii_digit() {
            out.push_str(&digit_form(c, forms[i % forms.len()]));
        } else {
            out.push(c);
        }
    }
    out
}

fn message(body: &str) -> Vec<u8> {
    format!(
        "From: a@example.org\r\nTo: b@example.org\r\nSubject: Unterlagen\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\nGuten Tag,\r\nanbei die Angaben: {body}\r\nMit freundlichen Grüßen\r\n"
    )
    .into_bytes()
}

fn sensitive(body: &str) -> bool {
    classifier::classify(&message(body), &Rules::default()).sensitive
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn steuer_id_variants_are_found(
        which in 0..STEUER_IDS.len(),
        cuts in proptest::collection::vec(1usize..11, 0..6),
        separator in 0..SEPARATORS.len(),
        forms in proptest::collection::vec(0u8..4, 1..4),
        hidden in proptest::collection::vec((0usize..11, 0usize..6), 0..3),
        keyword in any::<bool>(),
    ) {
        let id = disguise(STEUER_IDS[which], &cuts, SEPARATORS[separator], &forms, &hidden);
        let body = if keyword { format!("Steuer-ID {id}") } else { id.clone() };
        prop_assert!(sensitive(&body), "missed {body:?}");
        // The same disguise of a number whose check digit is wrong is not a Steuer-ID.
        let mut wrong = STEUER_IDS[which].to_owned();
        let last = wrong.pop().expect("digit").to_digit(10).expect("digit");
        wrong.push(char::from_digit((last + 1) % 10, 10).expect("digit"));
        let fake = disguise(&wrong, &cuts, SEPARATORS[separator], &forms, &hidden);
        prop_assert!(!sensitive(&fake), "false alarm on {fake:?}");
    }

    #[test]
    fn iban_variants_are_found(
        which in 0..IBANS.len(),
        lower in any::<bool>(),
        separator in prop_oneof![Just(" "), Just("-"), Just("\u{00A0}"), Just("\u{2011}")],
        hidden in proptest::collection::vec((2usize..22, 0usize..6), 0..2),
    ) {
        let mut iban = IBANS[which].to_owned();
        if lower {
            iban = iban.to_lowercase();
        }
        let cuts: Vec<usize> = (1..6).map(|g| g * 4).collect();
        let text = disguise(&iban, &cuts, separator, &[0], &hidden);
        prop_assert!(sensitive(&format!("IBAN {text}")), "missed {text:?}");
    }
}

/// Issue #10.2: markings survive the same tricks as numbers.
#[test]
fn marking_variants_are_found() {
    for marking in [
        "VS-NfD",
        "VS\u{2014}NfD",
        "VS \u{2013} NfD",
        "V S - N f D",
        "VS\u{200B}-NfD",
        "ＶＳ－ＮｆＤ",
        "Nur fuer den Dienstgebrauch",
        "Nur fur den Dienstgebrauch",
        "Nur f\u{0075}\u{0308}r den Dienstgebrauch",
        "nur\u{00A0}für\u{2009}den Dienstgebrauch",
    ] {
        assert!(
            sensitive(&format!("Einstufung: {marking}")),
            "missed {marking:?}"
        );
    }
}

/// Issue #10.1: a marking split across two adjacent encoded words of a subject, base64 or Q,
/// and an undeclared 8-bit Latin-1 subject, read as a client shows them.
#[test]
fn subjects_are_decoded_as_clients_show_them() {
    for subject in [
        "=?UTF-8?Q?Nur_f=C3?= =?UTF-8?Q?=BCr_den_Dienstgebrauch?=",
        "=?UTF-8?B?TnVyIGbD?=\r\n =?UTF-8?B?vHIgZGVuIERpZW5zdGdlYnJhdWNo?=",
    ] {
        let raw = format!("From: a@example.org\r\nSubject: {subject}\r\n\r\nSiehe Betreff.\r\n");
        let v = classifier::classify(raw.as_bytes(), &Rules::default());
        assert!(v.sensitive, "missed {subject:?}");
    }
    let raw =
        b"From: a@example.org\r\nSubject: Nur f\xFCr den Dienstgebrauch\r\n\r\nSiehe Betreff.\r\n";
    assert!(classifier::classify(raw, &Rules::default()).sensitive);
}
