//! Check-digit validators for German and international identifiers.
//!
//! Each takes the identifier with separators already removed and says whether its structure
//! and check digit are valid. Algorithms and test vectors: `reference/detectors-and-ris.md`
//! §1.3 (A1–A8), each vector checked against the published source it cites.

/// Steuerliche Identifikationsnummer (11 digits): first digit not 0; among the first ten
/// digits exactly one occurs twice or three times (a triple not on three adjacent
/// positions), all others at most once; ISO 7064 MOD 11,10 check digit (A1).
#[must_use]
pub fn steuer_id(id: &str) -> bool {
    let d = digits(id);
    if d.len() != 11 || d[0] == 0 {
        return false;
    }
    let mut counts = [0u8; 10];
    for &x in &d[..10] {
        counts[usize::from(x)] += 1;
    }
    let repeated: Vec<usize> = (0..10).filter(|&x| counts[x] > 1).collect();
    if repeated.len() != 1 || counts[repeated[0]] > 3 {
        return false;
    }
    if counts[repeated[0]] == 3 {
        let r = u8::try_from(repeated[0]).unwrap_or(0);
        if d[..10].windows(3).any(|w| w.iter().all(|&x| x == r)) {
            return false;
        }
    }
    mod_11_10_check(&d[..10]) == d[10]
}

/// ISO 7064 MOD 11,10 check digit over `digits`.
fn mod_11_10_check(digits: &[u8]) -> u8 {
    let mut product = 10u32;
    for &d in digits {
        let mut sum = (u32::from(d) + product) % 10;
        if sum == 0 {
            sum = 10;
        }
        product = (2 * sum) % 11;
    }
    let check = 11 - product;
    if check == 10 {
        0
    } else {
        u8::try_from(check).unwrap_or(0)
    }
}

/// German USt-IdNr (`DE` + 9 digits): MOD 11,10 over the first eight digits.
#[must_use]
pub fn ust_idnr(id: &str) -> bool {
    let Some(rest) = id.strip_prefix("DE") else {
        return false;
    };
    let d = digits(rest);
    d.len() == 9 && rest.len() == 9 && mod_11_10_check(&d[..8]) == d[8]
}

/// IBAN (ISO 13616): known country and length, MOD 97-10 remainder 1 (A7).
#[must_use]
pub fn iban(iban: &str) -> bool {
    let b = iban.as_bytes();
    if b.len() < 15
        || !b[..2].iter().all(u8::is_ascii_uppercase)
        || !b[2..4].iter().all(u8::is_ascii_digit)
    {
        return false;
    }
    let Some(&(_, length)) = IBAN_LENGTHS.iter().find(|(c, _)| c.as_bytes() == &b[..2]) else {
        return false;
    };
    if b.len() != length
        || !b
            .iter()
            .all(|c| c.is_ascii_digit() || c.is_ascii_uppercase())
    {
        return false;
    }
    let mut remainder = 0u32;
    for &c in b[4..].iter().chain(&b[..4]) {
        let value = if c.is_ascii_digit() {
            u32::from(c - b'0')
        } else {
            u32::from(c - b'A') + 10
        };
        remainder = if value >= 10 {
            (remainder * 100 + value) % 97
        } else {
            (remainder * 10 + value) % 97
        };
    }
    remainder == 1
}

/// The IBAN length of a country, if it has IBANs.
#[must_use]
pub fn iban_length(country: &str) -> Option<usize> {
    IBAN_LENGTHS
        .iter()
        .find(|(c, _)| *c == country)
        .map(|&(_, l)| l)
}

/// IBAN lengths per country (SWIFT IBAN registry).
const IBAN_LENGTHS: &[(&str, usize)] = &[
    ("AD", 24),
    ("AE", 23),
    ("AL", 28),
    ("AT", 20),
    ("AZ", 28),
    ("BA", 20),
    ("BE", 16),
    ("BG", 22),
    ("BH", 22),
    ("BI", 27),
    ("BR", 29),
    ("BY", 28),
    ("CH", 21),
    ("CR", 22),
    ("CY", 28),
    ("CZ", 24),
    ("DE", 22),
    ("DJ", 27),
    ("DK", 18),
    ("DO", 28),
    ("EE", 20),
    ("EG", 29),
    ("ES", 24),
    ("FI", 18),
    ("FK", 18),
    ("FO", 18),
    ("FR", 27),
    ("GB", 22),
    ("GE", 22),
    ("GI", 23),
    ("GL", 18),
    ("GR", 27),
    ("GT", 28),
    ("HN", 28),
    ("HR", 21),
    ("HU", 28),
    ("IE", 22),
    ("IL", 23),
    ("IQ", 23),
    ("IS", 26),
    ("IT", 27),
    ("JO", 30),
    ("KW", 30),
    ("KZ", 20),
    ("LB", 28),
    ("LC", 32),
    ("LI", 21),
    ("LT", 20),
    ("LU", 20),
    ("LV", 21),
    ("LY", 25),
    ("MC", 27),
    ("MD", 24),
    ("ME", 22),
    ("MK", 19),
    ("MN", 20),
    ("MR", 27),
    ("MT", 31),
    ("MU", 30),
    ("NI", 28),
    ("NL", 18),
    ("NO", 15),
    ("OM", 23),
    ("PK", 24),
    ("PL", 28),
    ("PS", 29),
    ("PT", 25),
    ("QA", 29),
    ("RO", 24),
    ("RS", 22),
    ("RU", 33),
    ("SA", 24),
    ("SC", 31),
    ("SD", 18),
    ("SE", 24),
    ("SI", 19),
    ("SK", 24),
    ("SM", 27),
    ("SO", 23),
    ("ST", 25),
    ("SV", 28),
    ("TL", 23),
    ("TN", 24),
    ("TR", 26),
    ("UA", 29),
    ("VA", 22),
    ("VG", 24),
    ("XK", 20),
    ("YE", 30),
];

/// Payment card number: 14–19 digits passing Luhn (A8).
#[must_use]
pub fn luhn(number: &str) -> bool {
    let d = digits(number);
    if !(14..=19).contains(&d.len()) || d.len() != number.len() {
        return false;
    }
    let sum: u32 = d
        .iter()
        .rev()
        .enumerate()
        .map(|(i, &x)| {
            let x = u32::from(x);
            if i % 2 == 1 {
                let y = x * 2;
                if y > 9 { y - 9 } else { y }
            } else {
                x
            }
        })
        .sum();
    sum.is_multiple_of(10)
}

/// Rentenversicherungsnummer (12 chars: area, TTMMJJ, initial, serial, check) per VKVV §2
/// (A2): weights 2,1,2,5,7,1,2,1,2,1,2,1 over the digits with the letter as two digits, sum
/// of digit sums mod 10.
#[must_use]
pub fn rvnr(id: &str) -> bool {
    let b = id.as_bytes();
    if b.len() != 12
        || !b[..8].iter().all(u8::is_ascii_digit)
        || !b[8].is_ascii_uppercase()
        || !b[9..].iter().all(u8::is_ascii_digit)
    {
        return false;
    }
    let n = |i: usize| u32::from(b[i] - b'0');
    let day = n(2) * 10 + n(3);
    let month = n(4) * 10 + n(5);
    // Day 51–81 marks a number assigned with a substitute birth date (VKVV §2(3)).
    if !((1..=31).contains(&day) || (51..=81).contains(&day)) || !(1..=12).contains(&month) {
        return false;
    }
    let letter = u32::from(b[8] - b'A') + 1;
    let sequence = [
        n(0),
        n(1),
        n(2),
        n(3),
        n(4),
        n(5),
        n(6),
        n(7),
        letter / 10,
        letter % 10,
        n(9),
        n(10),
    ];
    const WEIGHTS: [u32; 12] = [2, 1, 2, 5, 7, 1, 2, 1, 2, 1, 2, 1];
    let sum: u32 = sequence
        .iter()
        .zip(WEIGHTS)
        .map(|(d, w)| digit_sum(d * w))
        .sum();
    sum % 10 == n(11)
}

/// Krankenversichertennummer (10 chars: letter + 9 digits) per §290 SGB V (A3).
#[must_use]
pub fn kvnr(id: &str) -> bool {
    let b = id.as_bytes();
    if b.len() != 10 || !b[0].is_ascii_uppercase() || !b[1..].iter().all(u8::is_ascii_digit) {
        return false;
    }
    let letter = u32::from(b[0] - b'A') + 1;
    let mut sequence = vec![letter / 10, letter % 10];
    sequence.extend(b[1..9].iter().map(|&c| u32::from(c - b'0')));
    let sum: u32 = sequence
        .iter()
        .enumerate()
        .map(|(i, &d)| digit_sum(d * if i % 2 == 0 { 1 } else { 2 }))
        .sum();
    sum % 10 == u32::from(b[9] - b'0')
}

/// ICAO 9303 check digit (weights 7,3,1) over all characters but the last, which must be it
/// (A5): Personalausweis, Reisepass.
#[must_use]
pub fn icao_7_3_1(id: &str) -> bool {
    let b = id.as_bytes();
    if b.len() < 2 || !b[b.len() - 1].is_ascii_digit() {
        return false;
    }
    let mut sum = 0u32;
    for (i, &c) in b[..b.len() - 1].iter().enumerate() {
        let Some(v) = alnum_value(c) else {
            return false;
        };
        sum += v * [7, 3, 1][i % 3];
    }
    sum % 10 == u32::from(b[b.len() - 1] - b'0')
}

/// Führerscheinnummer (11 chars): weights 9..1 over the first nine, mod 11, 10 → `X` (A6).
#[must_use]
pub fn fuehrerschein(id: &str) -> bool {
    let b = id.as_bytes();
    if b.len() != 11
        || !b
            .iter()
            .all(|c| c.is_ascii_digit() || c.is_ascii_uppercase())
    {
        return false;
    }
    let mut sum = 0u32;
    for (i, &c) in b[..9].iter().enumerate() {
        let Some(v) = alnum_value(c) else {
            return false;
        };
        sum += v * (9 - u32::try_from(i).unwrap_or(0));
    }
    let check = match sum % 11 {
        10 => b'X',
        r => b'0' + u8::try_from(r).unwrap_or(0),
    };
    b[9] == check
}

fn alnum_value(c: u8) -> Option<u32> {
    match c {
        b'0'..=b'9' => Some(u32::from(c - b'0')),
        b'A'..=b'Z' => Some(u32::from(c - b'A') + 10),
        _ => None,
    }
}

fn digit_sum(n: u32) -> u32 {
    n / 100 + (n / 10) % 10 + n % 10
}

fn digits(s: &str) -> Vec<u8> {
    s.bytes()
        .filter(u8::is_ascii_digit)
        .map(|c| c - b'0')
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steuer_id_elster_vectors() {
        for ok in [
            "86095742719",
            "47036892816",
            "65929970489",
            "57549285017",
            "25768131411",
        ] {
            assert!(steuer_id(ok), "{ok} should be valid");
        }
        for bad in [
            "86095742711",
            "12345678901",
            "36554266806",
            "02476291358",
            "1234567890",
            "123456789012",
        ] {
            assert!(!steuer_id(bad), "{bad} should be invalid");
        }
    }

    #[test]
    fn ust_idnr_vectors() {
        // DE136695976 is the Bundeszentralamt's published example.
        assert!(ust_idnr("DE136695976"));
        assert!(!ust_idnr("DE136695975"));
        assert!(!ust_idnr("AT136695976"));
    }

    #[test]
    fn iban_vectors() {
        for ok in [
            "DE89370400440532013000",
            "GB82WEST12345698765432",
            "AT611904300234573201",
            "CH9300762011623852957",
            "NL91ABNA0417164300",
        ] {
            assert!(iban(ok), "{ok}");
        }
        for bad in [
            "DE89370400440532013001",
            "DE8937040044053201300",
            "XX89370400440532013000",
            "de89370400440532013000",
        ] {
            assert!(!iban(bad), "{bad}");
        }
    }

    #[test]
    fn luhn_vectors() {
        for ok in [
            "4111111111111111",
            "5500000000000004",
            "340000000000009",
            "4012888888881881",
        ] {
            assert!(luhn(ok), "{ok}");
        }
        for bad in ["4111111111111112", "1234567890123", "41111111111111111111"] {
            assert!(!luhn(bad), "{bad}");
        }
    }

    #[test]
    fn rvnr_vectors() {
        assert!(rvnr("15070649C103"));
        assert!(rvnr("50150256W493"));
        assert!(!rvnr("15070649C102"));
        assert!(!rvnr("15320649C103"), "day 32 does not exist");
        assert!(!rvnr("15071349C103"), "month 13 does not exist");
    }

    #[test]
    fn kvnr_vectors() {
        assert!(kvnr("A123456780"));
        assert!(kvnr("A000500015"));
        assert!(!kvnr("A123456781"));
        assert!(!kvnr("G995030567"), "HL7 example data fails the check");
    }

    #[test]
    fn icao_vectors() {
        for ok in [
            "C01X00T478",
            "CZ6311T472",
            "CZ63351X73",
            "LZ6311T475",
            "T220001293",
            "2406055684",
        ] {
            assert!(icao_7_3_1(ok), "{ok}");
        }
        assert!(!icao_7_3_1("C01X00T470"));
    }

    #[test]
    fn fuehrerschein_vectors() {
        assert!(fuehrerschein("B072RRE2I55"));
        assert!(!fuehrerschein("B072RRE3I55"));
    }
}
