//! `ratspost classify [--json] [--rules FILE] FILE...`: the verdict and findings for each
//! message file, scans read with OCR as `[ocr]` says. Exit status 0 whatever the verdicts; 1
//! when a file could not be read, 2 for bad rules. With `--evaluate LABELS.tsv`: see
//! [`super::evaluate`].

use std::path::PathBuf;

use anyhow::Context as _;
use classifier::{Ocr, Rules, Verdict};
use serde::Serialize;

use crate::config::OcrConfig;
use crate::ocr::Tesseract;

#[derive(Serialize)]
struct Report<'a> {
    file: String,
    #[serde(flatten)]
    verdict: &'a Verdict,
}

/// Loads rules from `path`, or the built-in defaults.
///
/// # Errors
/// When the file cannot be read or the rules are invalid (all problems listed).
pub(crate) fn load_rules(path: Option<&PathBuf>) -> anyhow::Result<Rules> {
    let Some(path) = path else {
        return Ok(Rules::default());
    };
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading rules {}", path.display()))?;
    Rules::from_toml(&text).with_context(|| format!("rules file {}", path.display()))
}

pub(super) fn run(
    json: bool,
    rules: Option<&PathBuf>,
    files: &[PathBuf],
    evaluate: Option<(&PathBuf, super::evaluate::Minimum)>,
    ocr: &OcrConfig,
) -> anyhow::Result<()> {
    let rules =
        load_rules(rules).map_err(|e| anyhow::anyhow!(super::UsageError(format!("{e:#}"))))?;
    let ocr = Tesseract::start(ocr);
    let ocr = ocr.as_ref().map(|o| o as &dyn Ocr);
    if let Some((labels, minimum)) = evaluate {
        return super::evaluate::run(labels, &rules, ocr, &minimum);
    }
    let mut failed = 0;
    for file in files {
        let raw = match std::fs::read(file) {
            Ok(raw) => raw,
            Err(err) => {
                eprintln!("error: {}: {err}", file.display());
                failed += 1;
                continue;
            }
        };
        let verdict = classifier::classify_with(&raw, &rules, ocr);
        let name = file.display().to_string();
        if json {
            println!(
                "{}",
                serde_json::to_string(&Report {
                    file: name,
                    verdict: &verdict
                })?
            );
        } else {
            print_text(&name, &verdict);
        }
    }
    anyhow::ensure!(failed == 0, "{failed} file(s) could not be read");
    Ok(())
}

/// Where a finding is, for people: `header Subject`, `part 2, attachment akte.zip`, `message`.
pub(super) fn place(location: &classifier::Location) -> String {
    let mut place = Vec::new();
    if let Some(h) = &location.header {
        place.push(format!("header {h}"));
    }
    if let Some(p) = &location.part {
        place.push(format!("part {p}"));
    }
    if let Some(a) = &location.attachment {
        place.push(format!("attachment {a}"));
    }
    if let Some(o) = location.offset {
        place.push(format!("offset {o}"));
    }
    if place.is_empty() {
        "message".to_owned()
    } else {
        place.join(", ")
    }
}

fn print_text(file: &str, verdict: &Verdict) {
    if !verdict.sensitive {
        println!("{file}: clean");
        return;
    }
    println!("{file}: SENSITIVE ({})", verdict.categories.join(", "));
    for f in &verdict.findings {
        println!(
            "  - {} [{}] confidence {} at {}{}",
            f.detector,
            f.category,
            f.confidence,
            place(&f.location),
            f.hint
                .as_ref()
                .map(|h| format!(": {h}"))
                .unwrap_or_default()
        );
    }
}
