//! What a notice may repeat of the message it stands for: the sender's address and display
//! name, the subject (with `notices.show_subject`), and references to council documents.
//!
//! Every such value comes from the sender, who may put anything into it — a display name
//! "Steuer-ID 86095742719 Max Mustermann", a subject with a diagnosis, a CR/LF that adds
//! lines to the notice, a "document link" whose query carries an IBAN. So each value is
//! - cleaned: control characters (Cc: CR, LF, tab, …) become a space, format characters (Cf:
//!   bidi controls, zero-width characters, soft hyphen) and unassigned or private-use code
//!   points are removed, spaces collapsed, the length bounded (`notices.name_chars`,
//!   `notices.subject_chars`);
//! - shown only when it is *repeatable*: the classifier finds nothing in it, not even a
//!   candidate below its threshold ([`classifier::classify_text`]), and it holds no run of
//!   more than `notices.max_digit_run` digits (at most [`MAX_DIGIT_RUN`]) — counted across
//!   any separators, so that an identifier written with separators no detector knows
//!   ("8_6_0_9…", "8609·5742·719") is refused too. Otherwise it is left out: the address
//!   alone, "(Betreff nicht angezeigt)", no reference.
//!
//! Document links are shown only for the configured RIS hosts and only rebuilt from a known
//! shape ([`classifier::ris::parse_link`]); paper numbers only with their digits within the
//! limit, and then linked through `notices.paper_url` with the number percent-encoded.

use classifier::Rules;
use classifier::ris::Reference;
use unicode_properties::{GeneralCategory, UnicodeGeneralCategory as _};

use crate::compose::Subject;
use crate::config::{Language, NoticesConfig};

/// Characters of an address (RFC 5321 §4.5.3.1.3: a path holds at most 256 octets).
pub const MAX_ADDRESS_CHARS: usize = 254;
/// Characters of a paper number.
pub const MAX_PAPER_CHARS: usize = 40;
/// The most `notices.max_digit_run` may allow: digits in a row, separators between them not
/// counting. Eight keeps dates ("01.12.2026") and paper numbers ("1234/2014",
/// "TVO-BSV/25/61736-2") and refuses every identifier the classifier knows by its digits: a
/// Personalausweis (10), a Steuer-ID (11), the nine digits of a Krankenversichertennummer,
/// card numbers and IBANs.
pub const MAX_DIGIT_RUN: usize = 8;

/// `value` on one line: control characters as spaces, invisible characters removed, spaces
/// collapsed, trimmed, and at most `max_chars` characters (the last one then `…`).
#[must_use]
pub fn clean(value: &str, max_chars: usize) -> String {
    let mut out = String::with_capacity(value.len().min(max_chars.saturating_mul(4)));
    let mut space = false;
    for c in value.chars() {
        let as_space = c.is_control() || c.is_whitespace();
        let dropped = !as_space
            && matches!(
                c.general_category(),
                GeneralCategory::Format
                    | GeneralCategory::PrivateUse
                    | GeneralCategory::Unassigned
                    | GeneralCategory::Surrogate
            );
        if dropped {
            continue;
        }
        if as_space {
            space = !out.is_empty();
            continue;
        }
        if space {
            out.push(' ');
            space = false;
        }
        out.push(c);
    }
    if out.chars().count() > max_chars {
        out = out.chars().take(max_chars.saturating_sub(1)).collect();
        out.truncate(out.trim_end().len());
        out.push('…');
    }
    out
}

/// Whether `value` has more than `max` digits (any Unicode number character) in a row,
/// whatever separates them; only a letter ends a run.
#[must_use]
pub fn long_digit_run(value: &str, max: usize) -> bool {
    let mut run = 0;
    for c in value.chars() {
        if c.is_numeric() {
            run += 1;
            if run > max {
                return true;
            }
        } else if c.is_alphabetic() {
            run = 0;
        }
    }
    false
}

/// Decides what a notice shows, under `[notices]` and the classifier rules.
#[derive(Clone, Copy)]
pub struct Shown<'a> {
    /// `[notices]`: limits, language, RIS hosts, paper URL.
    pub notices: &'a NoticesConfig,
    /// The classifier rules.
    pub rules: &'a Rules,
}

impl Shown<'_> {
    /// Whether a notice may show `value`: not empty, no long digit run, and nothing the
    /// classifier would find in it at any confidence.
    #[must_use]
    pub fn repeatable(&self, value: &str) -> bool {
        !value.is_empty()
            && !long_digit_run(value, self.notices.max_digit_run.min(MAX_DIGIT_RUN))
            && classifier::classify_text(value, self.rules)
                .findings
                .is_empty()
    }

    /// `value` cleaned and bounded, when both it and the whole (unbounded) value are
    /// repeatable: a long value must not be cut in a way that hides what it carries.
    fn value(&self, value: &str, max_chars: usize) -> Option<String> {
        let whole = clean(value, usize::MAX);
        let bounded = clean(value, max_chars);
        (self.repeatable(&whole) && self.repeatable(&bounded)).then_some(bounded)
    }

    /// The sender as a notice shows it: `Name <address>`; the address alone when the name
    /// carries anything (or is missing), the name alone when the address does, and a
    /// placeholder when neither can be shown.
    #[must_use]
    pub fn sender(&self, name: Option<&str>, address: Option<&str>) -> String {
        let address = address.and_then(|a| self.value(a, MAX_ADDRESS_CHARS));
        // Angle brackets and quotes would let a name pose as another address.
        let name = name
            .map(|n| n.replace(['<', '>', '"'], " "))
            .and_then(|n| self.value(&n, self.notices.name_chars));
        let both = match (&name, &address) {
            (Some(name), Some(address)) => Some(format!("{name} <{address}>")),
            _ => None,
        };
        // The two together must not form what neither holds alone ("8609574" + "2719@…").
        if let Some(both) = both.filter(|b| self.repeatable(b)) {
            return both;
        }
        if address.is_none()
            && let Some(name) = name
        {
            return name;
        }
        address.unwrap_or_else(|| {
            match self.notices.language {
                Language::De => "(Absender nicht angezeigt)",
                Language::En => "(sender not shown)",
            }
            .to_owned()
        })
    }

    /// The subject line a notice shows, when policy allows one: the original when it is
    /// repeatable (also next to the sender it follows), else withheld.
    #[must_use]
    pub fn subject(&self, original: Option<&str>, sender: &str) -> Subject {
        let Some(original) = original.filter(|s| !s.trim().is_empty()) else {
            return Subject::Omitted;
        };
        match self.value(original, self.notices.subject_chars) {
            Some(s) if self.repeatable(&format!("{sender}: {s}")) => Subject::Shown(s),
            _ => Subject::Withheld,
        }
    }

    /// The council documents a notice lists, as (label, link): papers whose number is
    /// repeatable (linked through `paper_url` when set), and links to the configured RIS
    /// hosts, rebuilt from their parts.
    #[must_use]
    pub fn documents(&self, references: Vec<Reference>) -> Vec<(String, Option<String>)> {
        references
            .into_iter()
            .filter_map(|r| match r {
                Reference::Paper(number) => {
                    let shown = clean(&number, MAX_PAPER_CHARS);
                    if shown != number || !self.repeatable(&number) {
                        return None;
                    }
                    let url = self
                        .notices
                        .paper_url
                        .as_ref()
                        .map(|u| u.replace("{reference}", &percent_encode(&number)));
                    Some((format!("Vorlage {number}"), url))
                }
                Reference::Url(link) => {
                    if !self.notices.ris_hosts.contains(&link.host) {
                        return None;
                    }
                    let url = link.url();
                    self.repeatable(&url).then(|| (url.clone(), Some(url)))
                }
            })
            .collect()
    }
}

/// `value` percent-encoded for a URL query (RFC 3986 §2.3: unreserved characters stay).
fn percent_encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len() * 3);
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use classifier::ris::parse_link;
    use proptest::prelude::*;

    use super::*;
    use crate::compose::{self, NoticeFacts};
    use crate::config::Config;

    const TAX_ID: &str = "86095742719";

    fn rules() -> Rules {
        Rules::default()
    }

    fn sender(name: Option<&str>, address: Option<&str>, r: &Rules, language: Language) -> String {
        let mut n = notices("");
        n.language = language;
        Shown {
            notices: &n,
            rules: r,
        }
        .sender(name, address)
    }

    fn subject(original: Option<&str>, sender: &str, r: &Rules) -> Subject {
        Shown {
            notices: &notices(""),
            rules: r,
        }
        .subject(original, sender)
    }

    fn documents(
        refs: Vec<Reference>,
        n: &NoticesConfig,
        r: &Rules,
    ) -> Vec<(String, Option<String>)> {
        Shown {
            notices: n,
            rules: r,
        }
        .documents(refs)
    }

    fn long_digit_run(value: &str) -> bool {
        super::long_digit_run(value, MAX_DIGIT_RUN)
    }

    fn notices(extra: &str) -> NoticesConfig {
        Config::parse(
            &format!(
                "[notices]\npaper_url = \"https://ris.stadt.test/bi/suche?q={{reference}}\"\nshow_subject = true\n{extra}"
            ),
            None,
        )
        .expect("valid")
        .notices
    }

    #[test]
    fn values_are_put_on_one_clean_line() {
        assert_eq!(
            clean("Max\r\nBcc: x@y\tMustermann", 64),
            "Max Bcc: x@y Mustermann"
        );
        assert_eq!(
            clean("\u{202E}Anna\u{200B} \u{00AD}Weber\u{2066}", 64),
            "Anna Weber"
        );
        assert_eq!(clean("  Anna \u{0007}\u{0085} Weber  ", 64), "Anna Weber");
        assert_eq!(clean("Abcdefghij", 5), "Abcd…");
    }

    #[test]
    fn digit_runs_count_across_any_separator() {
        assert!(!long_digit_run("Sitzung am 01.12.2026"));
        assert!(!long_digit_run("Vorlage TVO-BSV/25/61736-2"));
        assert!(long_digit_run("8609-574271-9"));
        assert!(long_digit_run("8_6_0_9_5_7_4_2_7_1_9"));
        assert!(long_digit_run("８６０９５７４２７１９"));
        assert!(
            !long_digit_run("Tel 0531 und 4702210 x"),
            "a letter ends a run"
        );
    }

    #[test]
    fn a_display_name_with_an_identifier_leaves_the_address_alone() {
        let r = rules();
        assert_eq!(
            sender(
                Some("Max Mustermann"),
                Some("max@example.net"),
                &r,
                Language::De
            ),
            "Max Mustermann <max@example.net>"
        );
        for name in [
            "Steuer-ID 86095742719 Max Mustermann",
            "Max 8609 5742 719",
            "Frau Weber ist an Depression erkrankt",
            "IBAN DE89370400440532013000",
        ] {
            assert_eq!(
                sender(Some(name), Some("max@example.net"), &r, Language::De),
                "max@example.net",
                "{name}"
            );
        }
        assert_eq!(
            sender(
                Some("Max\r\nX-Evil: 1"),
                Some("max@example.net"),
                &r,
                Language::De
            ),
            "Max X-Evil: 1 <max@example.net>"
        );
        assert_eq!(
            sender(
                Some("Max"),
                Some("86095742719@example.net"),
                &r,
                Language::De
            ),
            "Max",
            "an address that carries something is left out; the name stands alone"
        );
        assert_eq!(
            sender(None, Some("86095742719@example.net"), &r, Language::De),
            "(Absender nicht angezeigt)"
        );
        assert_eq!(
            sender(Some("Stadtwerke"), None, &r, Language::De),
            "Stadtwerke"
        );
        assert_eq!(
            sender(Some("86095742719"), None, &r, Language::En),
            "(sender not shown)"
        );
        // Neither part alone holds the eleven digits; together they do.
        assert_eq!(
            sender(
                Some("Max 8609574"),
                Some("2719@example.net"),
                &r,
                Language::En
            ),
            "2719@example.net"
        );
    }

    #[test]
    fn a_subject_is_shown_only_when_it_carries_nothing() {
        let r = rules();
        let from = "max@example.net";
        assert_eq!(
            subject(Some("Einladung zur Sitzung am 01.12.2026"), from, &r),
            Subject::Shown("Einladung zur Sitzung am 01.12.2026".into())
        );
        for bad in [
            "Befund: Herr Meier ist an Diabetes erkrankt",
            "Antrag 8609-574271-9",
            "Rückfrage Steuer-ID 86095742719",
        ] {
            assert_eq!(subject(Some(bad), from, &r), Subject::Withheld, "{bad}");
        }
        assert_eq!(subject(None, from, &r), Subject::Omitted);
        // The configured bounds apply.
        let mut short = notices("subject_chars = 12\nmax_digit_run = 4");
        let strict = Shown {
            notices: &short,
            rules: &r,
        };
        assert_eq!(
            strict.subject(Some("Einladung zur Sitzung"), from),
            Subject::Shown("Einladung z…".into())
        );
        assert_eq!(
            strict.subject(Some("Termin 01.12.2026"), from),
            Subject::Withheld
        );
        short.max_digit_run = 100;
        let loose = Shown {
            notices: &short,
            rules: &r,
        };
        assert_eq!(
            loose.subject(Some("Antrag 8609-574271-9x"), from),
            Subject::Withheld,
            "never more than {MAX_DIGIT_RUN} digits, whatever the configuration says"
        );
        // A long subject is not cut so as to hide what its end carries.
        let long = format!("{} Steuer-ID {TAX_ID}", "Sitzung ".repeat(20));
        assert_eq!(subject(Some(&long), from, &r), Subject::Withheld);
    }

    #[test]
    fn documents_only_for_the_ris_hosts_and_clean_numbers() {
        let r = rules();
        let link = |s: &str| Reference::Url(parse_link(s).expect("known shape"));
        let refs = vec![
            Reference::Paper("25-26613".into()),
            Reference::Paper("46/2024".into()),
            Reference::Paper("8609-574271-9".into()),
            link("http://RIS.stadt.test/bi/vo020.asp?VOLFDNR=1001737#x"),
            link("https://evil.example/bi/vo020.asp?VOLFDNR=1001737"),
        ];
        let docs = documents(refs.clone(), &notices(""), &r);
        assert_eq!(
            docs,
            [
                (
                    "Vorlage 25-26613".to_owned(),
                    Some("https://ris.stadt.test/bi/suche?q=25-26613".to_owned())
                ),
                (
                    "Vorlage 46/2024".to_owned(),
                    Some("https://ris.stadt.test/bi/suche?q=46%2F2024".to_owned())
                ),
                (
                    "https://ris.stadt.test/bi/vo020.asp?VOLFDNR=1001737".to_owned(),
                    Some("https://ris.stadt.test/bi/vo020.asp?VOLFDNR=1001737".to_owned())
                ),
            ]
        );
        // Listed hosts replace the derived one.
        let other = documents(refs.clone(), &notices("ris_hosts = [\"evil.example\"]"), &r);
        assert!(
            other
                .iter()
                .any(|(l, _)| l.starts_with("https://evil.example/"))
        );
        assert!(
            !other
                .iter()
                .any(|(l, _)| l.contains("ris.stadt.test/bi/vo020"))
        );
        // Without paper_url nor ris_hosts: no links at all, paper numbers unlinked.
        let none = Config::builtin().notices;
        assert_eq!(
            documents(refs, &none, &r),
            [
                ("Vorlage 25-26613".to_owned(), None),
                ("Vorlage 46/2024".to_owned(), None)
            ]
        );
    }

    /// Valid Steuer-IDs: the ten digits 0–9 shuffled, one of them overwritten by another
    /// (so exactly one digit occurs twice), a non-zero digit first, and the check digit
    /// that the classifier's validator accepts.
    fn steuer_id() -> impl Strategy<Value = String> {
        (
            Just((0u8..10).collect::<Vec<u8>>()).prop_shuffle(),
            0usize..10,
            0usize..9,
        )
            .prop_map(|(mut d, to, from)| {
                let from = if from >= to { from + 1 } else { from };
                d[to] = d[from];
                let k = d.iter().position(|&x| x != 0).unwrap_or(0);
                d.swap(0, k);
                let head: String = d.iter().map(|x| char::from(b'0' + x)).collect();
                (0..10)
                    .map(|c| format!("{head}{c}"))
                    .find(|id| classifier::validate::steuer_id(id))
                    .expect("one check digit fits")
            })
    }

    fn separator() -> impl Strategy<Value = String> {
        prop::collection::vec(
            prop::sample::select(vec![
                "", "", " ", "-", ".", "/", "_", "\u{00A0}", "\u{2013}", "\r\n", "\t", "\u{200B}",
                "\u{202E}", "\u{2066}", "\u{00AD}", "\u{0007}", "·", "  ", ",", "'",
            ]),
            1..3,
        )
        .prop_map(|v| v.concat())
    }

    fn digits_of(text: &str) -> String {
        text.chars().filter(char::is_ascii_digit).collect()
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]

        /// Whatever separates the digits of a Steuer-ID in a display name or a subject, the
        /// notice never carries its digits in sequence.
        #[test]
        fn identifiers_never_reach_a_notice(
            id in steuer_id(),
            seps in prop::collection::vec(separator(), 10),
            before in "[A-Za-zäöü ]{0,12}",
            after in "[A-Za-zäöü ]{0,12}",
            in_subject in any::<bool>(),
        ) {
            let mut spread = String::new();
            for (i, d) in id.chars().enumerate() {
                spread.push(d);
                if i < 10 {
                    spread.push_str(&seps[i]);
                }
            }
            let value = format!("{before}{spread}{after}");
            let r = rules();
            let (name, subj) = if in_subject {
                ("Max Mustermann", value.as_str())
            } else {
                (value.as_str(), "Einladung")
            };
            let sender = sender(Some(name), Some("max@example.net"), &r, Language::De);
            let facts = NoticeFacts {
                subject: subject(Some(subj), &sender, &r),
                sender,
                date: "1. Dezember 2026, 10:00 Uhr".into(),
                categories: vec!["tax_id".into()],
                link: "https://ris.stadt.test/m/abc".into(),
                expires: "31. Dezember 2026".into(),
                documents: Vec::new(),
            };
            let mail = compose::notice(&notices(""), "anna@example.net", &facts);
            let parsed = mail_parser::MessageParser::default().parse(&mail).expect("MIME");
            let shown = format!(
                "{}\n{}\n{}",
                parsed.subject().unwrap_or_default(),
                parsed.body_text(0).unwrap_or_default(),
                parsed.body_html(0).unwrap_or_default()
            );
            // Digits of the whole notice, in the order they appear: the identifier's must not
            // be among them in sequence.
            prop_assert!(!digits_of(&shown).contains(&id), "{id} in {shown}");
            prop_assert!(!String::from_utf8_lossy(&mail).contains(&id));
            // And nothing of it adds a line.
            prop_assert!(!parsed.subject().unwrap_or_default().contains(['\r', '\n']));
        }
    }
}
