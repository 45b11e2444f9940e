//! Signatures, letterheads and disclaimers: text that names an office, not a case
//! (issue #11 §3). "Sozialamt – Wohngeldstelle, Rathausplatz 1" under a mail about the
//! canteen says where the writer works, nothing about anyone's benefits; a disclaimer that
//! mentions "vertrauliche Informationen" marks nothing.
//!
//! A signature begins at the `-- ` separator (RFC 3676 §4.3) or a closing formula ("Mit
//! freundlichen Grüßen", "Viele Grüße", "MfG") and runs at most [`SIGNATURE_LINES`] lines, and
//! never past the start of quoted or forwarded text, which is the message's content again.
//! A disclaimer is a paragraph that starts like one ("Diese E-Mail enthält …",
//! "Datenschutzhinweis", "Hinweis:" about confidentiality).

use std::sync::OnceLock;

use regex::Regex;

/// How many lines after a closing formula belong to the signature.
const SIGNATURE_LINES: usize = 14;

struct Patterns {
    closing: Regex,
    quote_start: Regex,
    disclaimer: Regex,
}

fn patterns() -> &'static Patterns {
    static RES: OnceLock<Patterns> = OnceLock::new();
    RES.get_or_init(|| Patterns {
        closing: Regex::new(
            r"(?i)^\s*(?:--\s*|(?:mit\s+)?(?:(?:sehr\s+)?(?:freundlich|herzlich|best|lieb|schön|kollegial|viel|sonnig)(?:e|en|er)?\s+)?gr(?:ü|ue|u)(?:ß|ss)(?:e|en)?(?:\s+(?:aus|von|in)\s+.{0,40})?\s*[,!.]?\s*|mfg|lg|vg|bg|hochachtungsvoll|i\.\s?a\.\s?.{0,40}|im\s+auftrag)\s*$",
        )
        .expect("closing"),
        quote_start: Regex::new(
            r"(?i)^\s*(?:>|-{3,}\s*(?:ursprüngliche\s+nachricht|original\s+message|weitergeleitete\s+nachricht|forwarded\s+message)|von:\s|from:\s|am\s.{4,80}schrieb|on\s.{4,80}wrote)",
        )
        .expect("quote start"),
        disclaimer: Regex::new(
            r"(?i)^\s*(?:diese\s+(?:e-?mail|nachricht)\s+(?:enthält|kann|ist\s+ausschließlich|ist\s+nur)|this\s+(?:e-?mail|message)\s+(?:contains|may|is\s+intended)|datenschutzhinweis|hinweis\s+zum\s+datenschutz|informationen\s+zum\s+datenschutz|haftungsausschluss|disclaimer)",
        )
        .expect("disclaimer"),
    })
}

/// Byte ranges of `text` that are signature, letterhead or disclaimer.
pub(super) fn ranges(text: &str) -> Vec<(usize, usize)> {
    let p = patterns();
    let mut out = Vec::new();
    // (start, lines left) of the open signature block.
    let mut signature: Option<(usize, usize)> = None;
    // Start of an open disclaimer paragraph.
    let mut disclaimer: Option<usize> = None;
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        let start = offset;
        offset += line.len();
        let content = line.trim_end_matches(['\r', '\n']);
        if p.quote_start.is_match(content) {
            if let Some((s, _)) = signature.take() {
                out.push((s, start));
            }
            if let Some(s) = disclaimer.take() {
                out.push((s, start));
            }
            continue;
        }
        if let Some(s) = disclaimer {
            if content.trim().is_empty() {
                out.push((s, start));
                disclaimer = None;
            }
        } else if p.disclaimer.is_match(content) {
            disclaimer = Some(start);
        }
        match signature {
            Some((s, left)) => {
                if left == 0 {
                    out.push((s, start));
                    signature = None;
                } else if !content.trim().is_empty() {
                    signature = Some((s, left - 1));
                }
            }
            None => {
                if p.closing.is_match(content) {
                    signature = Some((start, SIGNATURE_LINES));
                }
            }
        }
    }
    if let Some((s, _)) = signature {
        out.push((s, text.len()));
    }
    if let Some(s) = disclaimer {
        out.push((s, text.len()));
    }
    out
}

/// Whether `at` lies in one of `ranges`.
pub(super) fn contains(ranges: &[(usize, usize)], at: usize) -> bool {
    ranges.iter().any(|&(s, e)| at >= s && at < e)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn boilerplate(text: &str) -> Vec<&str> {
        ranges(text).into_iter().map(|(s, e)| &text[s..e]).collect()
    }

    #[test]
    fn signatures_end_at_quoted_text() {
        let text = "Die Kantine ist zu.\n\nMit freundlichen Grüßen\nAnna Schmidt\nSozialamt – Wohngeldstelle\n\n\
                    -----Ursprüngliche Nachricht-----\nVon: Meier\nHerr Kaya bezieht Wohngeld.\n";
        let found = boilerplate(text);
        assert_eq!(found.len(), 1);
        assert!(
            found[0].starts_with("Mit freundlichen Grüßen") && found[0].contains("Wohngeldstelle")
        );
        assert!(!found[0].contains("Kaya"));
    }

    #[test]
    fn separator_closings_and_disclaimers() {
        let text = "Text.\n-- \nJobcenter Musterstadt\n";
        assert_eq!(boilerplate(text), ["-- \nJobcenter Musterstadt\n"]);
        let text = "Text.\nViele Grüße aus dem Rathaus\nA.\n";
        assert_eq!(boilerplate(text).len(), 1);
        let text = "Text.\n\nDiese E-Mail enthält vertrauliche Informationen.\nBitte löschen.\n\nWeiter.\n";
        assert_eq!(
            boilerplate(text),
            ["Diese E-Mail enthält vertrauliche Informationen.\nBitte löschen.\n"]
        );
        // A greeting inside a sentence is not a closing.
        assert!(
            boilerplate("Ich soll Grüße von Frau Meier ausrichten, sie ist krank.\n").is_empty()
        );
    }
}
