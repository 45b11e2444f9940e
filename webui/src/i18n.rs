//! The pages' language: German first, English when `web.language = "en"`.
//!
//! Every text on a page is written in German in the template and passed through
//! [`Lang::t`] (in templates `{{ c.t("Geräte") }}`): in German it is returned as written, in
//! English it is looked up in the tables under `i18n/` (one per part of the UI, so the parts
//! are edited apart). A German text without an English entry stays German — and the test
//! `every_text_has_an_english_entry` fails, naming it.

mod accounts;
mod admin;
mod common;
mod dpo;
mod exemptions;
mod viewer;

use std::collections::HashMap;
use std::sync::LazyLock;

pub use crate::datetime::Language as Lang;

/// German text → English text, from all tables.
static ENGLISH: LazyLock<HashMap<&'static str, &'static str>> = LazyLock::new(|| {
    [
        common::EN,
        accounts::EN,
        exemptions::EN,
        admin::EN,
        dpo::EN,
        viewer::EN,
    ]
    .into_iter()
    .flatten()
    .copied()
    .collect()
});

impl Lang {
    /// `german` in this language (itself in German, and where no English entry exists).
    #[must_use]
    pub fn t(self, german: &'static str) -> &'static str {
        match self {
            Lang::German => german,
            Lang::English => ENGLISH.get(german).copied().unwrap_or(german),
        }
    }

    /// The `lang` attribute of the pages (BCP 47).
    #[must_use]
    pub fn tag(self) -> &'static str {
        match self {
            Lang::German => "de",
            Lang::English => "en",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The German texts passed to `t(…)` in templates and sources.
    fn texts_in(dir: &std::path::Path, found: &mut Vec<(String, String)>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                texts_in(&path, found);
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap();
            // `\x28` is `(`: written so, this line is not a text of its own.
            for (i, _) in text.match_indices("t\x28") {
                if i > 0 && text.as_bytes()[i - 1].is_ascii_alphanumeric() {
                    continue; // `get("…")`, `set("…")`: not ours
                }
                // rustfmt puts a long text on its own line: `t(\n    "…",\n)`.
                let Some(rest) = text[i + 2..].trim_start().strip_prefix('"') else {
                    continue;
                };
                if let Some(end) = rest.find('"') {
                    found.push((path.display().to_string(), rest[..end].to_owned()));
                }
            }
        }
    }

    #[test]
    fn every_text_has_an_english_entry() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut found = Vec::new();
        texts_in(&root.join("templates"), &mut found);
        texts_in(&root.join("src"), &mut found);
        let missing: Vec<_> = found
            .iter()
            .filter(|(_, de)| !de.is_empty() && !ENGLISH.contains_key(de.as_str()))
            .collect();
        assert!(missing.is_empty(), "no English entry for: {missing:#?}");
    }

    #[test]
    fn indirect_texts_have_english() {
        for de in accounts::INDIRECT {
            assert!(ENGLISH.contains_key(de), "no English entry for {de:?}");
        }
    }

    #[test]
    fn german_is_returned_as_written() {
        assert_eq!(Lang::German.t("Abmelden"), "Abmelden");
        assert_eq!(Lang::English.t("Abmelden"), "Log out");
    }
}
