//! The admin's own rules: regex detectors (optionally requiring a keyword nearby) and
//! keyword lists.

use super::Segment;
use crate::rules::Rules;
use crate::text::window;
use crate::verdict::Finding;

const PROXIMITY: usize = 300;

pub(super) fn run(seg: &Segment<'_>, rules: &Rules, out: &mut Vec<Finding>) {
    for d in &rules.custom {
        // `find_iter` could be slow on pathological admin patterns; the first hit that
        // satisfies the keyword condition is enough for the verdict.
        for m in d.pattern.find_iter(seg.text) {
            let ok = d.keywords.is_empty() || {
                let (from, to) = window(seg.lower, m.start(), m.end(), PROXIMITY);
                d.keywords
                    .iter()
                    .any(|k| seg.lower[from..to].contains(k.as_str()))
            };
            if ok {
                out.push(seg.finding(&d.name, &d.category, d.confidence, m.start(), None));
                break;
            }
        }
    }
    for list in &rules.keyword_lists {
        if let Some(m) = list.matcher.find(seg.lower) {
            out.push(seg.finding(&list.name, &list.category, list.confidence, m.start(), None));
        }
    }
}
