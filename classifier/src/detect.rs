//! Running every detector over what was extracted, and keeping the findings that count.

mod art9;
mod boilerplate;
mod custom;
mod ids;
mod keywords;
mod markings;
mod person;
mod regions;

use crate::extract::Extracted;
use crate::rules::Rules;
use crate::text::{lower_same_offsets, normalise_noting_digits};
use crate::verdict::{Finding, Location, category};

/// One segment prepared for the detectors.
pub(crate) struct Segment<'a> {
    /// Normalised text.
    pub(crate) text: &'a str,
    /// Same-offset lower-case copy.
    pub(crate) lower: &'a str,
    /// Where in `text` stand digits folded from another script (see
    /// [`crate::text::normalise_noting_digits`]), ascending; usually none.
    pub(crate) script_digits: &'a [usize],
    /// Where it came from.
    pub(crate) location: &'a Location,
    /// Keyword hits in `lower`.
    pub(crate) keywords: keywords::Hits<'a>,
    /// Where identifiers and ICD-10 codes may stand in `text`.
    pub(crate) regions: regions::Regions,
    /// What the detectors know about the whole message.
    pub(crate) message: &'a Message<'a>,
}

/// What holds for the whole message, across its segments.
pub(crate) struct Message<'a> {
    /// Every segment's normalised text and its lower-case copy.
    texts: &'a [(String, String)],
    /// The first body text (for a subject's facts: does its opening name someone?).
    pub(crate) body: Option<&'a str>,
    /// Whether the message reads as a published agenda, minutes or public notice.
    pub(crate) agenda: bool,
    /// Whether some part is a table of people; looked for only when a fact asks.
    roster: std::cell::OnceCell<bool>,
}

impl Message<'_> {
    /// Whether some part of the message is a table of people (a CSV list with names): a list
    /// of people attached to a message about their health ("anbei die Kontaktpersonen des
    /// Indexfalls") ties the message's facts to them.
    pub(crate) fn roster(&self) -> bool {
        *self.roster.get_or_init(|| {
            self.texts
                .iter()
                .any(|(text, _)| person::has_name_table(text))
        })
    }
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
    let (texts, script_digits): (Vec<(String, String)>, Vec<Vec<usize>>) = extracted
        .segments
        .iter()
        .map(|segment| {
            let (text, digits) = normalise_noting_digits(&segment.text);
            let lower = lower_same_offsets(&text);
            ((text, lower), digits)
        })
        .unzip();
    let hits: Vec<keywords::Hits<'_>> = texts
        .iter()
        .map(|(_, lower)| keywords::Hits::new(lower))
        .collect();
    // A published agenda, minutes or notice is one across its parts: the subject may say
    // "Tagesordnung", the body hold the items.
    let agenda = hits
        .iter()
        .map(|h| h.of(keywords::Group::Agenda).count())
        .sum::<usize>()
        >= 2;
    let message = Message {
        texts: &texts,
        body: extracted
            .segments
            .iter()
            .zip(&texts)
            .find(|(s, _)| s.location.header.is_none() && s.location.attachment.is_none())
            .map(|(_, (text, _))| text.as_str()),
        agenda,
        roster: std::cell::OnceCell::new(),
    };
    let segments = extracted.segments.iter().zip(&texts).zip(&script_digits);
    for (((segment, (text, lower)), script_digits), keywords) in segments.zip(hits) {
        // Inline PGP (RFC 4880 §6.2 armor), also when dashes or spaces were disguised.
        if text.contains("-----BEGIN PGP MESSAGE-----") {
            candidates.push(uninspectable(&segment.location, "PGP encrypted"));
        }
        let seg = Segment {
            keywords,
            regions: regions::Regions::find(text),
            text,
            lower,
            script_digits,
            location: &segment.location,
            message: &message,
        };
        let before = candidates.len();
        ids::run(&seg, rules, &mut candidates);
        // Identifiers that count (a company's or a town's account does not tie anyone).
        let identifiers: Vec<usize> = candidates[before..]
            .iter()
            .filter(|f| f.confidence >= rules.threshold(&f.detector))
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
