//! Pure classification of mail: message bytes + rules in, a [`Verdict`] out.
//!
//! Layout:
//! - `extract.rs`: what a reader sees — headers, decoded text parts, HTML as text, and
//!   attachments (text, CSV, PDF, Office, ZIP, gzip, nested messages, calendars, uuencode and
//!   yEnc blocks) within limits; `extract/mime.rs` cross-checks the MIME structure against a
//!   strict RFC 2046 reading, `extract/sniff.rs` judges content by its bytes;
//! - `text.rs`: separator normalisation and keyword windows;
//! - `detect/`: identifiers with check digits (`ids.rs`), classification and council
//!   markings and sensitivity labels (`markings.rs`), health, social, criminal and personnel
//!   facts tied to a person (`art9.rs`) — people and references to them (`person.rs`),
//!   signatures and disclaimers that do not count (`boilerplate.rs`) — admin rules
//!   (`custom.rs`);
//! - [`ocr`]: the [`Ocr`] trait through which scans (images, image-only PDFs) are read;
//!   the relay implements it, this crate only asks;
//! - [`ris`]: references to council documents (paper numbers, RIS page links) for notices;
//! - [`validate`]: the check-digit algorithms; [`rules`]: built-in and admin rules;
//!   [`verdict`]: the result.
//!
//! Key decision: **fail closed**. Anything that cannot be inspected — encrypted content, an
//! unparseable part, an extraction error, a limit reached — makes the message sensitive
//! with category `uninspectable`. A finding never holds the matched value, at most a masked
//! hint. The crate does no I/O: no tokio, no files, no network.

mod detect;
pub mod extract;
pub mod ocr;
pub mod ris;
pub mod rules;
mod swar;
mod text;
pub mod validate;
pub mod verdict;

pub use ocr::{Ocr, OcrError};
pub use rules::{Rules, RulesError};
pub use verdict::{Finding, Location, Verdict, category};

/// Classifies one message without OCR: an image-only PDF is `uninspectable`, an image
/// follows `inspect.images_sensitive`.
#[must_use]
pub fn classify(raw: &[u8], rules: &Rules) -> Verdict {
    classify_with(raw, rules, None)
}

/// Classifies one message; images and image-only PDFs are read with `ocr` when given.
#[must_use]
pub fn classify_with(raw: &[u8], rules: &Rules, ocr: Option<&dyn Ocr>) -> Verdict {
    let extracted = extract::extract_with(raw, &rules.inspect, ocr);
    Verdict::from_findings(detect::run(&extracted, rules))
}

/// Classifies a short text a notice would repeat (a display name, a subject, a document
/// reference) with the same detectors as a message, and stricter: every candidate of an
/// enabled detector counts, also one below its threshold (a card number without its
/// keyword) — leaving a value out of a notice costs little, showing an identifier a lot.
#[must_use]
pub fn classify_text(text: &str, rules: &Rules) -> Verdict {
    let extracted = extract::Extracted {
        segments: vec![extract::Segment {
            location: Location::default(),
            text: text.to_owned(),
        }],
        ..extract::Extracted::default()
    };
    Verdict::from_findings(detect::candidates(&extracted, rules))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_short_text_counts_candidates_below_the_threshold() {
        let rules = Rules::default();
        assert!(classify_text("Max Mustermann", &rules).findings.is_empty());
        assert!(
            classify_text("Einladung zur Sitzung am 01.12.2026", &rules)
                .findings
                .is_empty()
        );
        let tax = classify_text("Steuer-ID 86095742719 Max Mustermann", &rules);
        assert_eq!(tax.categories, [category::TAX_ID]);
        // A card number without its keyword is below the message threshold (65 < 75), and
        // still too much for a notice.
        assert!(!classify(b"Subject: x\r\n\r\n4111 1111 1111 1111\r\n", &rules).sensitive);
        assert!(classify_text("4111 1111 1111 1111", &rules).sensitive);
    }

    /// Two inline text parts cut between letters are read as one word across the cut and,
    /// as a client may show them, as two (a metamorphic test found the second: flowed text
    /// loses the space at the end of a part).
    #[test]
    fn parts_cut_between_letters_are_read_both_ways() {
        let rules = Rules::default();
        for (first, second) in [
            (
                "in der",
                "Personalangelegenheit Herr K. bitte ich um Ihre Stellungnahme.",
            ),
            (
                "in der Persona",
                "langelegenheit Herr K. bitte ich um Ihre Stellungnahme.",
            ),
        ] {
            let part = |text: &str| {
                format!("--b\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{text}\r\n")
            };
            let raw = format!(
                "Subject: Unterlagen\r\nMIME-Version: 1.0\r\n\
                 Content-Type: multipart/mixed; boundary=b\r\n\r\n{}{}--b--\r\n",
                part(&format!("Liebe Kolleginnen und Kollegen,\r\n\r\n{first}")),
                part(second)
            );
            let verdict = classify(raw.as_bytes(), &rules);
            assert_eq!(
                verdict.categories,
                [category::PERSONNEL],
                "{first} | {second}"
            );
        }
    }

    /// Digits of other scripts are digits: a tax ID in Arabic-Indic or Devanagari digits is a
    /// tax ID. And one standing inside a number, where a reader who does not know the script
    /// skips it, does not hide the number (found by a differential test against the earlier
    /// classifier, which dropped such digits).
    #[test]
    fn identifiers_in_other_digits_are_found() {
        let rules = Rules::default();
        for id in ["٨٦ ٠٩٥ ٧٤٢ ٧١٩", "८६०९५७४२७१९", "86 ٠٩٥ 742 ७१९"]
        {
            let raw = format!(
                "Subject: Unterlagen\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n\
                 Meine Steuer-ID lautet {id}.\r\n"
            );
            let verdict = classify(raw.as_bytes(), &rules);
            assert_eq!(verdict.categories, [category::TAX_ID], "{id}");
        }
        // 65360750226193 checks (Luhn), 653610750226193 does not.
        for text in [
            "Kreditkarte\n6536๑0750226193",
            "Kreditkarte: 6536 ၁0750 2261 93",
        ] {
            let raw =
                format!("Subject: x\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{text}");
            let verdict = classify(raw.as_bytes(), &rules);
            assert_eq!(verdict.categories, [category::PAYMENT_CARD], "{text}");
        }
    }
}
