//! Pure classification of mail: message bytes + rules in, a [`Verdict`] out.
//!
//! Layout:
//! - `extract.rs`: what a reader sees — headers, decoded text parts, HTML as text, and
//!   attachments (text, CSV, PDF, Office, ZIP, nested messages) within limits;
//! - `text.rs`: separator normalisation and keyword windows;
//! - `detect/`: identifiers with check digits (`ids.rs`), classification and council
//!   markings and sensitivity labels (`markings.rs`), Art. 9 health and social data tied to
//!   a person (`art9.rs`), admin rules (`custom.rs`);
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
pub mod ris;
pub mod rules;
mod text;
pub mod validate;
pub mod verdict;

pub use rules::{Rules, RulesError};
pub use verdict::{Finding, Location, Verdict, category};

/// Classifies one message.
#[must_use]
pub fn classify(raw: &[u8], rules: &Rules) -> Verdict {
    let extracted = extract::extract(raw, &rules.inspect);
    Verdict::from_findings(detect::run(&extracted, rules))
}
