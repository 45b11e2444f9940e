//! Pure classification of mail: message bytes + rules in, a [`Verdict`] out.
//!
//! Layout:
//! - `extract.rs`: what a reader sees — headers, decoded text parts, HTML as text, and
//!   attachments (text, CSV, PDF, Office, ZIP, nested messages) within limits;
//! - `text.rs`: separator normalisation and keyword windows;
//! - `detect/`: identifiers with check digits (`ids.rs`), classification and council
//!   markings and sensitivity labels (`markings.rs`), Art. 9 health and social data tied to
//!   a person (`art9.rs`), admin rules (`custom.rs`);
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
