//! Classification rules: built-in defaults plus an admin's TOML.
//!
//! ```toml
//! threshold = 75                      # findings at or above count (0-100)
//! [inspect]
//! images_sensitive = false            # count images OCR cannot read as sensitive?
//! [labels]
//! sensitive = ["Vertraulich", "3c0c…-guid"]   # msip_labels names or ids that count
//! [detectors.kvnr]
//! enabled = true
//! threshold = 80
//! [[custom]]                          # admin regex detectors
//! name = "jugendamt_az"
//! category = "social_data"
//! pattern = 'JA-\d{4}/\d{2,6}'
//! confidence = 85
//! keywords = ["jugendamt"]            # optional: one must be within 300 characters
//! [[keywords]]                        # admin keyword lists
//! name = "projekt_adler"
//! category = "confidential_project"
//! words = ["Projekt Adler"]
//! confidence = 85
//! ```
//!
//! Everything is checked at load; all problems are reported together.

use std::collections::BTreeMap;

use aho_corasick::AhoCorasick;
use regex::Regex;
use serde::Deserialize;

/// Names of the built-in detectors, as used under `[detectors.NAME]`.
pub const BUILTIN_DETECTORS: &[&str] = &[
    "steuer_id",
    "iban",
    "payment_card",
    "rvnr",
    "kvnr",
    "personalausweis",
    "reisepass",
    "fuehrerschein",
    "vs_marking",
    "non_public",
    "personnel",
    "sensitivity_header",
    "msip_label",
    "health",
    "social",
    "criminal",
    "personnel_matter",
];

/// Longest admin pattern accepted, in bytes.
const MAX_PATTERN_LEN: usize = 2000;
/// Compiled size limit of an admin pattern (the regex crate's default is 10 MiB).
const REGEX_SIZE_LIMIT: usize = 1 << 20;

/// Limits on how much of a message is opened; reaching one makes it `uninspectable`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct Inspect {
    /// Count images that OCR cannot read (no OCR, an unknown format, a failure, a limit) as
    /// sensitive. Off by default: with OCR an image is classified by its text, and most
    /// images OCR cannot read are logos and photos (README, "Scanned documents"). A scanned
    /// PDF that cannot be read is uninspectable whatever this says.
    pub images_sensitive: bool,
    /// Count attachments of types we cannot read (legacy .doc, archives other than ZIP,
    /// binaries) as sensitive. Fail closed by default.
    pub opaque_attachments_sensitive: bool,
    /// Nesting of messages and archives.
    pub max_depth: usize,
    /// MIME parts per message.
    pub max_parts: usize,
    /// Entries per ZIP archive.
    pub max_zip_entries: usize,
    /// Decompressed size of one archive entry or attachment, in bytes.
    pub max_entry_size: usize,
    /// Text extracted from one message, in bytes.
    pub max_text_bytes: usize,
    /// Pages read from one PDF.
    pub max_pdf_pages: usize,
}

impl Default for Inspect {
    fn default() -> Self {
        Self {
            images_sensitive: false,
            opaque_attachments_sensitive: true,
            max_depth: 5,
            max_parts: 500,
            max_zip_entries: 1000,
            max_entry_size: 32 << 20,
            max_text_bytes: 16 << 20,
            max_pdf_pages: 500,
        }
    }
}

/// Per-detector switch and threshold.
#[derive(Debug, Clone, Default, Deserialize)]
struct DetectorToml {
    #[serde(default = "yes")]
    enabled: bool,
    threshold: Option<u8>,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Clone, Deserialize)]
struct CustomToml {
    name: String,
    category: String,
    pattern: String,
    #[serde(default = "default_confidence")]
    confidence: u8,
    #[serde(default)]
    keywords: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
struct KeywordsToml {
    name: String,
    category: String,
    words: Vec<String>,
    #[serde(default = "default_confidence")]
    confidence: u8,
}

fn default_confidence() -> u8 {
    85
}

#[derive(Debug, Clone, Default, Deserialize)]
struct LabelsToml {
    sensitive: Option<Vec<String>>,
}

/// The file as written, read section by section and entry by entry so that one bad value
/// does not hide the next: every syntax error, unknown key and bad value is reported.
#[derive(Debug, Default)]
struct RulesToml {
    threshold: Option<u8>,
    inspect: Inspect,
    labels: LabelsToml,
    detectors: BTreeMap<String, DetectorToml>,
    custom: Vec<CustomToml>,
    keywords: Vec<KeywordsToml>,
}

impl RulesToml {
    /// Reads `text`; every problem goes to `problems` (a bad entry is left out).
    fn read(text: &str, problems: &mut Vec<String>) -> Self {
        // The parser recovers after a syntax error and reports them all.
        let (_, syntax) = toml::de::DeTable::parse_recoverable(text);
        if !syntax.is_empty() {
            problems.extend(syntax.iter().map(|e| located(text, e)));
            return Self::default();
        }
        let table: toml::Table = match toml::from_str(text) {
            Ok(table) => table,
            Err(e) => {
                problems.push(located(text, &e));
                return Self::default();
            }
        };
        let mut raw = Self::default();
        for (key, value) in table {
            match key.as_str() {
                "threshold" => raw.threshold = entry(&key, value, problems),
                "inspect" => raw.inspect = entry(&key, value, problems).unwrap_or_default(),
                "labels" => raw.labels = entry(&key, value, problems).unwrap_or_default(),
                "detectors" => {
                    let Some(detectors) = entry::<toml::Table>(&key, value, problems) else {
                        continue;
                    };
                    for (name, d) in detectors {
                        if let Some(d) = entry(&format!("detectors.{name}"), d, problems) {
                            raw.detectors.insert(name, d);
                        }
                    }
                }
                "custom" => raw.custom = entries(&key, value, problems),
                "keywords" => raw.keywords = entries(&key, value, problems),
                _ => problems.push(format!("{key}: unknown key")),
            }
        }
        raw
    }
}

/// Reads one value at `key`; a bad value or unknown key inside it becomes a problem.
fn entry<T: serde::de::DeserializeOwned>(
    key: &str,
    value: toml::Value,
    problems: &mut Vec<String>,
) -> Option<T> {
    let mut unknown = Vec::new();
    let read = serde_ignored::deserialize(value, |path| unknown.push(path.to_string()));
    problems.extend(unknown.iter().map(|u| format!("{key}.{u}: unknown key")));
    match read {
        Ok(v) => Some(v),
        Err(e) => {
            problems.push(format!("{key}: {}", e.message()));
            None
        }
    }
}

/// Reads an array of tables (`[[custom]]`) entry by entry.
fn entries<T: serde::de::DeserializeOwned>(
    key: &str,
    value: toml::Value,
    problems: &mut Vec<String>,
) -> Vec<T> {
    match value {
        toml::Value::Array(items) => items
            .into_iter()
            .enumerate()
            .filter_map(|(i, v)| entry(&format!("{key}[{i}]"), v, problems))
            .collect(),
        _ => {
            problems.push(format!("{key}: expected a list of tables ([[{key}]])"));
            Vec::new()
        }
    }
}

/// A TOML error with its line number.
fn located(text: &str, err: &toml::de::Error) -> String {
    match err.span() {
        Some(span) => {
            let line = text[..span.start.min(text.len())].matches('\n').count() + 1;
            format!("line {line}: {}", err.message())
        }
        None => err.message().to_owned(),
    }
}

/// An admin regex detector, compiled.
#[derive(Debug, Clone)]
pub struct CustomDetector {
    /// Name (shown as the finding's detector).
    pub name: String,
    /// Category id.
    pub category: String,
    /// Compiled pattern.
    pub pattern: Regex,
    /// Confidence of a finding.
    pub confidence: u8,
    /// When not empty, one of these (lower-case) must be within 300 characters.
    pub keywords: Vec<String>,
}

/// An admin keyword list, compiled.
#[derive(Debug, Clone)]
pub struct KeywordList {
    /// Name.
    pub name: String,
    /// Category id.
    pub category: String,
    /// Matcher over the lower-cased words.
    pub matcher: AhoCorasick,
    /// Confidence of a finding.
    pub confidence: u8,
}

/// Rules ready to use: compile once, classify many messages.
#[derive(Debug, Clone)]
pub struct Rules {
    /// Default threshold.
    pub threshold: u8,
    /// Extraction limits.
    pub inspect: Inspect,
    /// Sensitivity label names and ids (lower-case) that count as sensitive.
    pub sensitive_labels: Vec<String>,
    disabled: Vec<String>,
    thresholds: BTreeMap<String, u8>,
    /// Admin regex detectors.
    pub custom: Vec<CustomDetector>,
    /// Admin keyword lists.
    pub keyword_lists: Vec<KeywordList>,
}

/// Label names that count as sensitive unless the admin says otherwise: the usual German and
/// English names of the upper Microsoft Purview / AIP sensitivity labels.
const DEFAULT_LABELS: &[&str] = &[
    "vertraulich",
    "streng vertraulich",
    "confidential",
    "highly confidential",
    "vs-nfd",
    "nur für den dienstgebrauch",
    "personenbezogen",
];

impl Default for Rules {
    fn default() -> Self {
        Self {
            threshold: 75,
            inspect: Inspect::default(),
            sensitive_labels: DEFAULT_LABELS.iter().map(|s| (*s).to_owned()).collect(),
            disabled: Vec::new(),
            thresholds: BTreeMap::new(),
            custom: Vec::new(),
            keyword_lists: Vec::new(),
        }
    }
}

/// Problems found in a rules file, all of them.
#[derive(Debug, thiserror::Error)]
#[error("invalid rules:\n  {}", problems.join("\n  "))]
pub struct RulesError {
    /// One line per problem.
    pub problems: Vec<String>,
}

impl Rules {
    /// Parses and compiles rules from TOML text.
    ///
    /// # Errors
    /// Every problem found: syntax, unknown keys, unknown detectors, bad patterns, bad ranges.
    pub fn from_toml(text: &str) -> Result<Self, RulesError> {
        let mut problems = Vec::new();
        let raw = RulesToml::read(text, &mut problems);
        let mut rules = Rules::default();
        if let Some(t) = raw.threshold {
            check_range(&mut problems, "threshold", t);
            rules.threshold = t;
        }
        rules.inspect = raw.inspect;
        if let Some(labels) = raw.labels.sensitive {
            rules.sensitive_labels = labels.iter().map(|l| l.trim().to_lowercase()).collect();
        }
        for (name, d) in raw.detectors {
            if !BUILTIN_DETECTORS.contains(&name.as_str()) {
                problems.push(format!(
                    "detectors.{name}: unknown detector (known: {})",
                    BUILTIN_DETECTORS.join(", ")
                ));
                continue;
            }
            if !d.enabled {
                rules.disabled.push(name.clone());
            }
            if let Some(t) = d.threshold {
                check_range(&mut problems, &format!("detectors.{name}.threshold"), t);
                rules.thresholds.insert(name, t);
            }
        }
        for (i, c) in raw.custom.into_iter().enumerate() {
            let key = format!("custom[{i}] ({})", c.name);
            check_name(&mut problems, &key, &c.name, &c.category);
            check_range(&mut problems, &format!("{key}.confidence"), c.confidence);
            if c.pattern.len() > MAX_PATTERN_LEN {
                problems.push(format!(
                    "{key}.pattern: longer than {MAX_PATTERN_LEN} bytes"
                ));
                continue;
            }
            match regex::RegexBuilder::new(&c.pattern)
                .size_limit(REGEX_SIZE_LIMIT)
                .dfa_size_limit(REGEX_SIZE_LIMIT)
                .build()
            {
                Ok(pattern) => rules.custom.push(CustomDetector {
                    name: c.name,
                    category: c.category,
                    pattern,
                    confidence: c.confidence,
                    keywords: c.keywords.iter().map(|k| k.to_lowercase()).collect(),
                }),
                Err(e) => problems.push(format!(
                    "{key}.pattern: {}",
                    e.to_string().replace('\n', " ")
                )),
            }
        }
        for (i, k) in raw.keywords.into_iter().enumerate() {
            let key = format!("keywords[{i}] ({})", k.name);
            check_name(&mut problems, &key, &k.name, &k.category);
            check_range(&mut problems, &format!("{key}.confidence"), k.confidence);
            let words: Vec<String> = k
                .words
                .iter()
                .map(|w| w.trim().to_lowercase())
                .filter(|w| !w.is_empty())
                .collect();
            if words.is_empty() {
                problems.push(format!("{key}.words: the list is empty"));
                continue;
            }
            match AhoCorasick::new(&words) {
                Ok(matcher) => rules.keyword_lists.push(KeywordList {
                    name: k.name,
                    category: k.category,
                    matcher,
                    confidence: k.confidence,
                }),
                Err(e) => problems.push(format!("{key}.words: {e}")),
            }
        }
        if problems.is_empty() {
            Ok(rules)
        } else {
            Err(RulesError { problems })
        }
    }

    /// Whether a built-in detector is switched on.
    #[must_use]
    pub fn enabled(&self, detector: &str) -> bool {
        !self.disabled.iter().any(|d| d == detector)
    }

    /// The threshold for `detector`.
    #[must_use]
    pub fn threshold(&self, detector: &str) -> u8 {
        self.thresholds
            .get(detector)
            .copied()
            .unwrap_or(self.threshold)
    }
}

fn check_range(problems: &mut Vec<String>, key: &str, value: u8) {
    if value > 100 {
        problems.push(format!("{key}: must be between 0 and 100, got {value}"));
    }
}

fn check_name(problems: &mut Vec<String>, key: &str, name: &str, category: &str) {
    for (what, v) in [("name", name), ("category", category)] {
        if v.is_empty()
            || v.len() > 64
            || !v
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"_-".contains(&b))
        {
            problems.push(format!("{key}.{what}: use 1-64 characters a-z 0-9 _ -"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_a_full_file_load() {
        let r = Rules::from_toml(
            r#"
            threshold = 80
            [inspect]
            images_sensitive = true
            [labels]
            sensitive = ["Intern-Vertraulich"]
            [detectors.kvnr]
            enabled = false
            [detectors.iban]
            threshold = 90
            [[custom]]
            name = "jugendamt_az"
            category = "social_data"
            pattern = 'JA-\d{4}/\d{2,6}'
            keywords = ["Jugendamt"]
            [[keywords]]
            name = "projekt_adler"
            category = "confidential_project"
            words = ["Projekt Adler"]
            "#,
        )
        .expect("valid rules");
        assert_eq!(r.threshold, 80);
        assert!(r.inspect.images_sensitive);
        assert!(!r.enabled("kvnr") && r.enabled("iban"));
        assert_eq!(r.threshold("iban"), 90);
        assert_eq!(r.threshold("rvnr"), 80);
        assert_eq!(r.custom[0].keywords, ["jugendamt"]);
        assert_eq!(r.sensitive_labels, ["intern-vertraulich"]);
    }

    #[test]
    fn every_problem_is_reported() {
        let err = Rules::from_toml(
            r#"
            threshold = 101
            [detectors.nonsense]
            enabled = false
            [[custom]]
            name = "bad regex"
            category = "x"
            pattern = '(unclosed'
            [[keywords]]
            name = "empty"
            category = "y"
            words = []
            "#,
        )
        .expect_err("invalid");
        let text = err.to_string();
        for needle in [
            "threshold: must be between",
            "detectors.nonsense: unknown detector",
            "custom[0] (bad regex).name",
            "custom[0] (bad regex).pattern",
            "keywords[0] (empty).words",
        ] {
            assert!(text.contains(needle), "{needle:?} missing in {text}");
        }
    }

    /// Issue #9.6: one bad value must not hide the next; each problem on its own line.
    #[test]
    fn unknown_keys_and_bad_values_are_reported_all_at_once() {
        let err = Rules::from_toml(
            r#"
            colour = 1
            threshold = "high"
            [inspect]
            max_depht = 3
            max_parts = "many"
            [detectors.iban]
            treshold = 90
            [[custom]]
            name = "a"
            category = "x"
            pattern = 'A\d+'
            weight = 3
            [[custom]]
            name = "b"
            category = "x"
            pattern = 'B\d+'
            confidence = "hoch"
            [[keywords]]
            name = "k"
            category = "y"
            "#,
        )
        .expect_err("invalid");
        let mut problems = err.problems.clone();
        problems.sort();
        assert_eq!(
            problems,
            [
                "colour: unknown key",
                "custom[0].weight: unknown key",
                "custom[1]: invalid type: string \"hoch\", expected u8",
                "detectors.iban.treshold: unknown key",
                "inspect.max_depht: unknown key",
                "inspect: invalid type: string \"many\", expected usize",
                "keywords[0]: missing field `words`",
                "threshold: invalid type: string \"high\", expected u8",
            ]
        );
        assert_eq!(err.to_string().lines().count(), 1 + problems.len());
    }

    #[test]
    fn every_syntax_error_is_reported_with_its_line() {
        let err =
            Rules::from_toml("threshold = \n[inspect]\nmax_depth = 3 3\n").expect_err("syntax");
        assert!(err.problems.len() >= 2, "{:?}", err.problems);
        assert!(err.problems[0].starts_with("line 1:"), "{:?}", err.problems);
        assert!(
            err.problems.iter().any(|p| p.starts_with("line 3:")),
            "{:?}",
            err.problems
        );
    }

    #[test]
    fn huge_patterns_are_refused() {
        let pattern = "a{1000}{1000}";
        let err = Rules::from_toml(&format!(
            "[[custom]]\nname = \"big\"\ncategory = \"x\"\npattern = '{pattern}'\n"
        ))
        .expect_err("too big");
        assert!(err.to_string().contains("custom[0] (big).pattern"), "{err}");
        let long = "x".repeat(3000);
        let err = Rules::from_toml(&format!(
            "[[custom]]\nname = \"long\"\ncategory = \"x\"\npattern = '{long}'\n"
        ))
        .expect_err("too long");
        assert!(err.to_string().contains("longer than"), "{err}");
    }

    #[test]
    fn unknown_keys_and_syntax_errors_are_reported() {
        assert!(Rules::from_toml("colour = 1").is_err());
        assert!(Rules::from_toml("threshold = ").is_err());
    }
}
