//! Running every detector over what was extracted, and keeping the findings that count.

mod art9;
mod boilerplate;
mod custom;
mod ids;
mod keywords;
mod markings;
mod person;

use crate::extract::Extracted;
use crate::rules::Rules;
use crate::text::{lower_same_offsets, normalise};
use crate::verdict::{Finding, Location, category};

/// One segment prepared for the detectors.
pub(crate) struct Segment<'a> {
    /// Normalised text.
    pub(crate) text: &'a str,
    /// Same-offset lower-case copy.
    pub(crate) lower: &'a str,
    /// Where it came from.
    pub(crate) location: &'a Location,
    /// Keyword hits in `lower`.
    pub(crate) keywords: keywords::Hits<'a>,
}

impl Segment<'_> {
    /// A finding at `offset` in this segment.
    pub(crate) fn finding(
        &self,
        detector: &str,
        category: &str,
        confidence: u8,
        offset: usize,
        hint: Option<String>,
    ) -> Finding {
        Finding {
            detector: detector.to_owned(),
            category: category.to_owned(),
            confidence,
            location: Location {
                offset: Some(offset),
                ..self.location.clone()
            },
            hint,
        }
    }
}

/// All findings at or above their detector's threshold.
pub(crate) fn run(extracted: &Extracted, rules: &Rules) -> Vec<Finding> {
    candidates(extracted, rules)
        .into_iter()
        .filter(|f| {
            f.category == category::UNINSPECTABLE || f.confidence >= rules.threshold(&f.detector)
        })
        .collect()
}

/// Every finding of an enabled detector, whatever its confidence.
pub(crate) fn candidates(extracted: &Extracted, rules: &Rules) -> Vec<Finding> {
    let mut candidates = Vec::new();
    let uninspectable = |location: &Location, reason: &str| Finding {
        detector: "inspection".to_owned(),
        category: category::UNINSPECTABLE.to_owned(),
        confidence: 100,
        location: location.clone(),
        hint: Some(reason.to_owned()),
    };
    for problem in &extracted.problems {
        candidates.push(uninspectable(&problem.location, &problem.reason));
    }
    markings::headers(&extracted.headers, rules, &mut candidates);
    for segment in &extracted.segments {
        let text = normalise(&segment.text);
        // Inline PGP (RFC 4880 §6.2 armor), also when dashes or spaces were disguised.
        if text.contains("-----BEGIN PGP MESSAGE-----") {
            candidates.push(uninspectable(&segment.location, "PGP encrypted"));
        }
        let lower = lower_same_offsets(&text);
        let seg = Segment {
            keywords: keywords::Hits::new(&lower),
            text: &text,
            lower: &lower,
            location: &segment.location,
        };
        let before = candidates.len();
        ids::run(&seg, rules, &mut candidates);
        let identifiers: Vec<usize> = candidates[before..]
            .iter()
            .filter_map(|f| f.location.offset)
            .collect();
        markings::run(&seg, rules, &mut candidates);
        art9::run(&seg, &identifiers, rules, &mut candidates);
        custom::run(&seg, rules, &mut candidates);
    }
    candidates
        .into_iter()
        .filter(|f| f.category == category::UNINSPECTABLE || rules.enabled(&f.detector))
        .collect()
}
