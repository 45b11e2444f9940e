//! References to council documents in a message: paper numbers ("Vorlage 25-26613",
//! "DS 46/2024", "Drucksache 1234/2014") and page links of the common RIS products (ALLRIS
//! `vo020`/`to010`/…, SessionNet `vo0050`/`si0057`/…). A notice links to them so the reader
//! finds the documents in the RIS instead of in the mail.
//!
//! Only strict shapes are taken — a number after a document keyword, a URL to a known page
//! with a plain query — so nothing else of the message leaks into the notice. Document
//! download links (ALLRIS `do027`, SessionNet `getfile`) are skipped: they only work inside
//! a RIS session.

use std::sync::OnceLock;

use regex::Regex;

use crate::rules::Inspect;

/// A reference found in a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reference {
    /// A paper (Drucksache) number, e.g. `25-26613`.
    Paper(String),
    /// A link to a RIS page.
    Url(String),
}

fn patterns() -> &'static (Regex, Regex) {
    static RES: OnceLock<(Regex, Regex)> = OnceLock::new();
    RES.get_or_init(|| {
        (
            Regex::new(r"(?i)(?-u:\b)(?:Beschlussvorlage|Mitteilungsvorlage|Vorlage|Drucksache|Drs\.?|DS|Antrag|Anfrage)\s*(?:Nr\.?\s*)?((?:[A-Z]{1,4}[-/ ]?)?\d{1,4}[-/]\d{2,6}(?:-\d{1,3})?)(?-u:\b)")
                .expect("paper pattern"),
            Regex::new(r"https?://[A-Za-z0-9.-]{1,100}(?::\d{1,5})?/[A-Za-z0-9_./-]{0,80}(?:vo020|to010|to020|si010|kp020|au020|pa020|vo0050|si0057|si0050|to0040|to0050|kp0040|ag0050)(?:\.asp|\.php)?\?[A-Za-z0-9_=&%.-]{1,120}")
                .expect("url pattern"),
        )
    })
}

/// The references in `raw`, in order of appearance, without duplicates (at most 20).
#[must_use]
pub fn references(raw: &[u8], limits: &Inspect) -> Vec<Reference> {
    references_with(raw, limits, &patterns().0)
}

/// Like [`references`], with the municipality's own paper-number pattern: a regex whose first
/// capture group is the number (formats differ per RIS; see the reference notes).
#[must_use]
pub fn references_with(raw: &[u8], limits: &Inspect, paper: &Regex) -> Vec<Reference> {
    let url = &patterns().1;
    let mut out = Vec::new();
    for segment in crate::extract::extract(raw, limits).segments {
        for m in url.find_iter(&segment.text) {
            out.push(Reference::Url(
                m.as_str().trim_end_matches(['.', ',']).to_owned(),
            ));
        }
        for c in paper.captures_iter(&segment.text) {
            out.push(Reference::Paper(c[1].to_owned()));
        }
    }
    let mut seen = Vec::new();
    out.retain(|r| {
        let new = !seen.contains(r);
        seen.push(r.clone());
        new
    });
    out.truncate(20);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn papers_and_ris_pages_are_found() {
        let raw = b"Subject: Unterlagen zu Vorlage 25-26613\r\n\r\nSiehe auch DS 46/2024 und Drucksache Nr. 1234/2014, \
            https://ris.example.de/bi/vo020.asp?VOLFDNR=1001737 und \
            https://sessionnet.example.de/vo0050.php?__kvonr=4711. Dokument: https://ris.example.de/bi/do027.asp?DOLFDNR=5.\r\n";
        let refs = references(raw, &Inspect::default());
        assert_eq!(
            refs,
            [
                Reference::Paper("25-26613".into()),
                Reference::Url("https://ris.example.de/bi/vo020.asp?VOLFDNR=1001737".into()),
                Reference::Url("https://sessionnet.example.de/vo0050.php?__kvonr=4711".into()),
                Reference::Paper("46/2024".into()),
                Reference::Paper("1234/2014".into()),
            ]
        );
    }

    #[test]
    fn a_municipality_pattern_replaces_the_default() {
        let own = Regex::new(r"(?-u:\b)(BV/\d{4}/\d{4})").expect("pattern");
        let raw = b"Subject: x\r\n\r\nZu BV/2024/0123 und Vorlage 25-26613.\r\n";
        assert_eq!(
            references_with(raw, &Inspect::default(), &own),
            [Reference::Paper("BV/2024/0123".into())]
        );
    }

    #[test]
    fn ordinary_numbers_are_not_references() {
        let raw =
            b"Subject: x\r\n\r\nTel. 0531/470-2210, am 12/2024 bezahlt, Rechnung 2026-1184.\r\n";
        assert!(references(raw, &Inspect::default()).is_empty());
    }
}
