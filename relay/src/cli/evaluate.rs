//! `ratspost classify --evaluate LABELS.tsv`: how ratspost would judge a town hall's own,
//! hand-labelled mail — recall and precision overall and per category, every miss and every
//! false alarm with its findings (never the matched values).
//!
//! LABELS.tsv: one message per line, tab-separated: the file (relative to the TSV's
//! directory), `S` (sensitive) or `N` (not sensitive), and optionally the expected category
//! (`health`, `tax_id`, …). A first line starting with `file` is a header; empty lines and
//! lines starting with `#` are skipped.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use classifier::{Ocr, Rules, Verdict};

/// One labelled message.
struct Label {
    file: PathBuf,
    sensitive: bool,
    category: Option<String>,
}

/// Counts of one evaluation.
#[derive(Default, Clone, Copy)]
struct Counts {
    /// Sensitive, found sensitive.
    tp: usize,
    /// Not sensitive, found sensitive.
    fp: usize,
    /// Sensitive, found not sensitive.
    fn_: usize,
    /// Not sensitive, found not sensitive.
    tn: usize,
}

impl Counts {
    fn recall(self) -> f64 {
        ratio(self.tp, self.tp + self.fn_)
    }

    fn precision(self) -> f64 {
        ratio(self.tp, self.tp + self.fp)
    }
}

/// `part / whole`, and 1.0 for an empty whole (nothing to miss, no false alarm).
fn ratio(part: usize, whole: usize) -> f64 {
    if whole == 0 {
        1.0
    } else {
        #[allow(clippy::cast_precision_loss)] // counts of messages, far below 2^52
        {
            part as f64 / whole as f64
        }
    }
}

/// Thresholds below which the command fails (fractions, 0.0–1.0).
pub(super) struct Minimum {
    pub(super) recall: Option<f64>,
    pub(super) precision: Option<f64>,
}

/// Reads `labels`, classifies every message (scans read with `ocr`), prints the report; fails
/// when a file cannot be read or recall/precision fall below `minimum`.
pub(super) fn run(
    labels: &Path,
    rules: &Rules,
    ocr: Option<&dyn Ocr>,
    minimum: &Minimum,
) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(labels)
        .with_context(|| format!("reading labels {}", labels.display()))?;
    let base = labels.parent().unwrap_or(Path::new("."));
    let labels = parse(&text, base)
        .map_err(|e| anyhow::anyhow!(super::UsageError(format!("{}: {e}", labels.display()))))?;
    let mut judged = Vec::with_capacity(labels.len());
    for label in labels {
        let raw = std::fs::read(&label.file)
            .with_context(|| format!("reading {}", label.file.display()))?;
        let verdict = classifier::classify_with(&raw, rules, ocr);
        judged.push((label, verdict));
    }
    let report = report(&judged);
    print!("{report}");
    let overall = counts(judged.iter().map(|(l, v)| (l.sensitive, v.sensitive)));
    let mut failures = Vec::new();
    if let Some(min) = minimum.recall
        && overall.recall() < min
    {
        failures.push(format!(
            "recall {} below --min-recall {}",
            percent(overall.recall()),
            percent(min)
        ));
    }
    if let Some(min) = minimum.precision
        && overall.precision() < min
    {
        failures.push(format!(
            "precision {} below --min-precision {}",
            percent(overall.precision()),
            percent(min)
        ));
    }
    anyhow::ensure!(failures.is_empty(), "{}", failures.join("; "));
    Ok(())
}

fn parse(text: &str, base: &Path) -> Result<Vec<Label>, String> {
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim_end_matches('\r');
        if line.trim().is_empty() || line.starts_with('#') || (n == 0 && line.starts_with("file")) {
            continue;
        }
        let mut columns = line.split('\t');
        let file = columns.next().unwrap_or_default().trim();
        let label = columns.next().map(str::trim).unwrap_or_default();
        let sensitive = match label.to_ascii_lowercase().as_str() {
            "s" | "sensitive" => true,
            "n" | "clean" | "not sensitive" => false,
            other => {
                return Err(format!(
                    "line {}: label {other:?}: expected S or N (tab-separated after the file)",
                    n + 1
                ));
            }
        };
        if file.is_empty() {
            return Err(format!("line {}: no file", n + 1));
        }
        let category = columns
            .next()
            .map(str::trim)
            .filter(|c| !c.is_empty())
            .map(str::to_owned);
        out.push(Label {
            file: base.join(file),
            sensitive,
            category,
        });
    }
    if out.is_empty() {
        return Err("no labelled messages".to_owned());
    }
    Ok(out)
}

fn counts(pairs: impl Iterator<Item = (bool, bool)>) -> Counts {
    let mut c = Counts::default();
    for (expected, found) in pairs {
        match (expected, found) {
            (true, true) => c.tp += 1,
            (false, true) => c.fp += 1,
            (true, false) => c.fn_ += 1,
            (false, false) => c.tn += 1,
        }
    }
    c
}

fn percent(x: f64) -> String {
    format!("{:.1} %", x * 100.0)
}

/// The report as text: totals, per category, then misses and false alarms with findings.
fn report(judged: &[(Label, Verdict)]) -> String {
    let mut out = String::new();
    let all = counts(judged.iter().map(|(l, v)| (l.sensitive, v.sensitive)));
    let _ = writeln!(
        out,
        "{} messages: {} sensitive, {} not sensitive\n\
         recall {} ({} of {} sensitive found), precision {} ({} of {} flagged were sensitive)\n\
         missed {}, false alarms {}",
        judged.len(),
        all.tp + all.fn_,
        all.fp + all.tn,
        percent(all.recall()),
        all.tp,
        all.tp + all.fn_,
        percent(all.precision()),
        all.tp,
        all.tp + all.fp,
        all.fn_,
        all.fp
    );
    // Recall per labelled category; precision per category the classifier reported.
    let mut labelled: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
    let mut reported: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
    for (label, verdict) in judged {
        if let (true, Some(c)) = (label.sensitive, &label.category) {
            let e = labelled.entry(c).or_default();
            e.0 += 1;
            e.1 += usize::from(verdict.sensitive);
        }
        for c in &verdict.categories {
            let e = reported.entry(c).or_default();
            e.0 += 1;
            e.1 += usize::from(label.sensitive);
        }
    }
    if !labelled.is_empty() {
        let _ = writeln!(out, "\nby labelled category (recall):");
        for (c, (n, found)) in &labelled {
            let _ = writeln!(
                out,
                "  {c:<26} {found:>4} of {n:<4} {}",
                percent(ratio(*found, *n))
            );
        }
    }
    if !reported.is_empty() {
        let _ = writeln!(out, "\nby reported category (precision):");
        for (c, (n, right)) in &reported {
            let _ = writeln!(
                out,
                "  {c:<26} {right:>4} of {n:<4} {}",
                percent(ratio(*right, *n))
            );
        }
    }
    let misses: Vec<_> = judged
        .iter()
        .filter(|(l, v)| l.sensitive && !v.sensitive)
        .collect();
    if !misses.is_empty() {
        let _ = writeln!(out, "\nmissed (labelled S, judged not sensitive):");
        for (label, _) in misses {
            let _ = writeln!(
                out,
                "  {}{}",
                label.file.display(),
                label
                    .category
                    .as_ref()
                    .map(|c| format!(" [{c}]"))
                    .unwrap_or_default()
            );
        }
    }
    let alarms: Vec<_> = judged
        .iter()
        .filter(|(l, v)| !l.sensitive && v.sensitive)
        .collect();
    if !alarms.is_empty() {
        let _ = writeln!(out, "\nfalse alarms (labelled N, judged sensitive):");
        for (label, verdict) in alarms {
            let _ = writeln!(out, "  {}", label.file.display());
            for f in &verdict.findings {
                // The hint is masked by the classifier (never the matched value).
                let _ = writeln!(
                    out,
                    "    - {} [{}] confidence {} at {}{}",
                    f.detector,
                    f.category,
                    f.confidence,
                    super::classify::place(&f.location),
                    f.hint
                        .as_ref()
                        .map(|h| format!(": {h}"))
                        .unwrap_or_default()
                );
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_parse_with_header_comments_and_categories() {
        let labels = parse(
            "file\tlabel\tcategory\n# comment\n\na.eml\tS\thealth\nb.eml\tn\n",
            Path::new("/x"),
        )
        .expect("parses");
        assert_eq!(labels.len(), 2);
        assert_eq!(labels[0].file, Path::new("/x/a.eml"));
        assert!(labels[0].sensitive);
        assert_eq!(labels[0].category.as_deref(), Some("health"));
        assert!(!labels[1].sensitive && labels[1].category.is_none());
        assert!(parse("a.eml\tmaybe\n", Path::new(".")).is_err());
        assert!(parse("# nothing\n", Path::new(".")).is_err());
    }

    #[test]
    fn recall_and_precision() {
        let c = counts([(true, true), (true, false), (false, true), (false, false)].into_iter());
        assert!((c.recall() - 0.5).abs() < 1e-9 && (c.precision() - 0.5).abs() < 1e-9);
        let none = counts(std::iter::empty());
        assert!((none.recall() - 1.0).abs() < 1e-9);
    }
}
