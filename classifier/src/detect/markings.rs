//! Markings: Verschlusssachen grades, non-public council material, personnel matters, and
//! the sensitivity a sender's mail client declared (`Sensitivity:`, Microsoft `msip_labels`).
//!
//! A published agenda names its non-public part ("Nichtöffentlicher Teil", "TOP N 3
//! Personalangelegenheiten") without being confidential itself; inside a text that reads as
//! an agenda or invitation those markers are only a hint (60), below the threshold.

use std::sync::OnceLock;

use regex::{Regex, RegexSet};

use super::Segment;
use super::keywords::Group;
use crate::rules::Rules;
use crate::verdict::{Finding, Location, category};

struct Marking {
    detector: &'static str,
    category: &'static str,
    name: &'static str,
    pattern: &'static str,
    /// Only a hint inside a published agenda.
    agenda_item: bool,
}

const MARKINGS: &[Marking] = &[
    Marking {
        detector: "vs_marking",
        category: category::VS_NFD,
        name: "VS-NfD",
        // Also spelt out letter by letter ("V S - N f D"); every dash is `-` after `normalise`.
        pattern: r"(?i)(?-u:\b)V\s?S\s*-?\s*(?:N\s?f\s?D(?-u:\b)|nur\s+f(?:ü|ue|u)r\s+den\s+dienstgebrauch)",
        agenda_item: false,
    },
    Marking {
        detector: "vs_marking",
        category: category::VS_NFD,
        name: "Nur für den Dienstgebrauch",
        pattern: r"(?i)(?-u:\b)nur\s+f(?:ü|ue|u)r\s+den\s+dienstgebrauch(?-u:\b)",
        agenda_item: false,
    },
    Marking {
        detector: "vs_marking",
        category: category::CLASSIFIED,
        name: "VS-Vertraulich",
        pattern: r"(?i)(?-u:\b)V\s?S\s*-?\s*vertraulich(?-u:\b)",
        agenda_item: false,
    },
    Marking {
        detector: "vs_marking",
        category: category::CLASSIFIED,
        name: "GEHEIM",
        pattern: r"(?-u:\b)(?:STRENG\s+)?GEHEIM(?-u:\b)",
        agenda_item: false,
    },
    Marking {
        detector: "vs_marking",
        category: category::CLASSIFIED,
        name: "amtlich geheim gehalten",
        pattern: r"(?i)(?-u:\b)amtlich\s+geheim\s*gehalten(?-u:\b)",
        agenda_item: false,
    },
    Marking {
        detector: "non_public",
        category: category::NON_PUBLIC,
        name: "nichtöffentlich",
        pattern: r"(?i)(?-u:\b)nicht[\s-]?(?:ö|oe)ffentlich(?:e[nrsm]?)?(?-u:\b)",
        agenda_item: true,
    },
    Marking {
        detector: "non_public",
        category: category::NON_PUBLIC,
        name: "N-Teil",
        pattern: r"(?-u:\b)N-Teil(?-u:\b)",
        agenda_item: true,
    },
    Marking {
        detector: "non_public",
        category: category::NON_PUBLIC,
        name: "TOP N",
        pattern: r"(?-u:\b)TOP\s*N\s*\d+",
        agenda_item: true,
    },
    Marking {
        detector: "non_public",
        category: category::NON_PUBLIC,
        name: "NÖ",
        pattern: r"(?-u:\b)NÖ(?-u:\b)",
        agenda_item: true,
    },
    Marking {
        detector: "personnel",
        category: category::PERSONNEL,
        name: "Personalangelegenheit",
        pattern: r"(?i)(?-u:\b)Personal(?:angelegenheit(?:en)?|akte|sache)(?-u:\b)",
        agenda_item: true,
    },
];

/// One `RegexSet` pass finds which markings occur at all (usually none); only those are
/// searched again for their position.
fn compiled() -> &'static (RegexSet, Vec<Regex>) {
    static RES: OnceLock<(RegexSet, Vec<Regex>)> = OnceLock::new();
    RES.get_or_init(|| {
        let patterns = MARKINGS.iter().map(|m| m.pattern);
        (
            RegexSet::new(patterns.clone()).expect("built-in patterns compile"),
            patterns
                .map(|p| Regex::new(p).expect("built-in pattern compiles"))
                .collect(),
        )
    })
}

pub(super) fn run(seg: &Segment<'_>, rules: &Rules, out: &mut Vec<Finding>) {
    let (set, each) = compiled();
    let present = set.matches(seg.text);
    if !present.matched_any() {
        return;
    }
    let agenda = seg.keywords.of(Group::Agenda).count() >= 2;
    for i in present.iter() {
        let marking = &MARKINGS[i];
        if !rules.enabled(marking.detector) {
            continue;
        }
        if let Some(m) = each[i].find(seg.text) {
            let confidence = if agenda && marking.agenda_item {
                60
            } else {
                85
            };
            out.push(seg.finding(
                marking.detector,
                marking.category,
                confidence,
                m.start(),
                Some(marking.name.to_owned()),
            ));
        }
    }
}

/// `Sensitivity: Private | Company-Confidential` (RFC 2156) and `msip_labels` whose name or
/// id is in the configured list.
pub(super) fn headers(
    headers: &[(Location, String, String)],
    rules: &Rules,
    out: &mut Vec<Finding>,
) {
    for (at, name, value) in headers {
        let location = Location {
            header: Some(name.clone()),
            ..at.clone()
        };
        if name.eq_ignore_ascii_case("Sensitivity") {
            let v = value.trim().to_ascii_lowercase();
            if v == "private" || v == "company-confidential" {
                out.push(Finding {
                    detector: "sensitivity_header".to_owned(),
                    category: category::LABEL.to_owned(),
                    confidence: 85,
                    location,
                    hint: Some(value.trim().to_owned()),
                });
            }
        } else if name.eq_ignore_ascii_case("msip_labels") {
            for label in msip_labels(value) {
                let hit = rules
                    .sensitive_labels
                    .iter()
                    .find(|l| **l == label.id || **l == label.name);
                if let Some(_configured) = hit {
                    out.push(Finding {
                        detector: "msip_label".to_owned(),
                        category: category::LABEL.to_owned(),
                        confidence: 85,
                        location: location.clone(),
                        hint: Some(label.display),
                    });
                }
            }
        }
    }
}

struct Label {
    id: String,
    name: String,
    display: String,
}

/// Enabled labels of an `msip_labels` header:
/// `MSIP_Label_<id>_Enabled=true; MSIP_Label_<id>_Name=Vertraulich; …`.
fn msip_labels(value: &str) -> Vec<Label> {
    let unfolded: String = value.split_whitespace().collect::<Vec<_>>().join(" ");
    let mut labels: Vec<(String, bool, String)> = Vec::new();
    for pair in unfolded.split(';') {
        let Some((key, val)) = pair.trim().split_once('=') else {
            continue;
        };
        let Some(rest) = key.trim().strip_prefix("MSIP_Label_") else {
            continue;
        };
        let Some((id, attribute)) = rest.rsplit_once('_') else {
            continue;
        };
        let id = id.to_ascii_lowercase();
        let entry = match labels.iter_mut().position(|l| l.0 == id) {
            Some(i) => &mut labels[i],
            None => {
                labels.push((id.clone(), false, String::new()));
                labels.last_mut().expect("just pushed")
            }
        };
        match attribute {
            "Enabled" => entry.1 = val.trim().eq_ignore_ascii_case("true"),
            "Name" => entry.2 = val.trim().to_owned(),
            _ => {}
        }
    }
    labels
        .into_iter()
        .filter(|l| l.1)
        .map(|(id, _, name)| Label {
            display: if name.is_empty() {
                id.clone()
            } else {
                name.clone()
            },
            name: name.to_lowercase(),
            id,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::msip_labels;

    #[test]
    fn msip_labels_are_parsed() {
        let labels = msip_labels(
            "MSIP_Label_3c0c5a3e-1111-2222-3333-444455556666_Enabled=true;\r\n MSIP_Label_3c0c5a3e-1111-2222-3333-444455556666_Name=Vertraulich; MSIP_Label_aaaa_Enabled=false; MSIP_Label_aaaa_Name=Öffentlich",
        );
        assert_eq!(labels.len(), 1);
        assert_eq!(labels[0].name, "vertraulich");
        assert_eq!(labels[0].id, "3c0c5a3e-1111-2222-3333-444455556666");
    }
}
