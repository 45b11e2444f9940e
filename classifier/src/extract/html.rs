//! HTML to the text that leaves with it, parsed as a browser parses it.
//!
//! The HTML5 parsing algorithm (html5ever, through scraper) decides what is text: an unclosed
//! `<head>`, comments closed with `--!>`, a raw `<` before a digit, entities without a
//! semicolon, CDATA and `<template>` all come out as a browser's DOM has them. Then every text
//! node counts — also hidden ones (`display:none`, `font-size:0`, white on white, `hidden`):
//! hidden text still leaves with the message — and so do comments and the attributes that
//! carry words (`alt`, `title`, `aria-label`, form `value`s, …). Only script and style
//! content is left out: no mail client runs or shows it. Inline elements vanish without a
//! trace, so `Steuer<b>-ID</b>` reads `Steuer-ID`; block elements become line breaks so words
//! from different blocks do not run together.

use ego_tree::iter::Edge;
use scraper::{Html, Node};

/// Attributes whose values are words a reader can see (tooltips, replacement text, labels,
/// prefilled form fields).
const WORD_ATTRIBUTES: [&str; 7] = [
    "alt",
    "title",
    "aria-label",
    "aria-description",
    "value",
    "placeholder",
    "label",
];

/// Elements that start a new line where a browser breaks the flow.
const BLOCKS: [&str; 29] = [
    "address",
    "article",
    "aside",
    "blockquote",
    "br",
    "dd",
    "div",
    "dl",
    "dt",
    "fieldset",
    "figcaption",
    "footer",
    "form",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "header",
    "hr",
    "li",
    "ol",
    "p",
    "pre",
    "section",
    "table",
    "title",
    "tr",
];

/// Converts HTML to the text in it.
#[must_use]
pub fn to_text(html: &str) -> String {
    let document = Html::parse_document(html);
    let mut out = String::with_capacity(html.len() / 2);
    // Comments and word attributes: read after the flow text, so that a comment inside a
    // number (`34<!-- -->519`) does not cut it, as it does not for a reader.
    let mut aside = String::new();
    // Inside <script> or <style>: how many open.
    let mut code = 0usize;
    for edge in document.tree.root().traverse() {
        let (node, open) = match edge {
            Edge::Open(node) => (node, true),
            Edge::Close(node) => (node, false),
        };
        match node.value() {
            Node::Text(text) if open && code == 0 => out.push_str(&text.text),
            Node::Comment(comment) if open => {
                aside.push('\n');
                aside.push_str(&comment.comment);
            }
            Node::Element(element) => {
                let name = element.name();
                if matches!(name, "script" | "style") {
                    code = if open {
                        code + 1
                    } else {
                        code.saturating_sub(1)
                    };
                } else if BLOCKS.contains(&name) {
                    out.push('\n');
                } else if open && matches!(name, "td" | "th") {
                    out.push('\t');
                }
                if open {
                    for (attribute, value) in element.attrs() {
                        if WORD_ATTRIBUTES.contains(&attribute) && !value.trim().is_empty() {
                            aside.push('\n');
                            aside.push_str(value);
                        }
                    }
                }
            }
            _ => {}
        }
    }
    if !aside.is_empty() {
        out.push('\n');
        out.push_str(&aside);
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::to_text;

    #[test]
    fn inline_tags_vanish_and_entities_decode() {
        assert_eq!(
            to_text("Ihre Steuer<b>-ID</b>: 86&nbsp;095&#160;742&#x20;719"),
            "Ihre Steuer-ID: 86\u{a0}095\u{a0}742 719"
        );
        assert_eq!(
            to_text("<p>Gr&uuml;&szlig;e</p><p>Anna</p>"),
            "\nGrüße\n\nAnna\n"
        );
    }

    #[test]
    fn scripts_and_styles_are_dropped_comments_kept() {
        let t = to_text(
            "<html><head><title>x</title><style>p{}</style></head><body><!-- 86095742719 -->Hallo<script>var x=1;</script></body>",
        );
        assert_eq!(
            t.split_whitespace().collect::<Vec<_>>(),
            ["x", "Hallo", "86095742719"]
        );
    }

    /// Issue #10.3: what a browser makes of broken or tricky markup.
    #[test]
    fn html_is_parsed_as_a_browser_parses_it() {
        let words = |html: &str| {
            to_text(html)
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" ")
        };
        // <head> never closed: the body is still shown.
        assert!(
            words("<html><head><meta charset=utf-8><body><p>Steuer-ID: 86095742719</p>")
                .contains("Steuer-ID: 86095742719")
        );
        // A comment inside a number does not cut it.
        assert!(words("ID 34<span>519</span>8<!-- -->70<b>328</b>").contains("34519870328"));
        // A comment closed with --!> ends there.
        assert!(
            words("<!-- x --!>Nur f&uuml;r den Dienstgebrauch")
                .contains("Nur für den Dienstgebrauch")
        );
        // A raw '<' before a digit is text.
        assert_eq!(words("a<3 und 86095742719"), "a<3 und 86095742719");
        // Entities without a semicolon, as browsers read them.
        assert_eq!(words("Gr&uumlße &amp Dank"), "Grüße & Dank");
        // Template content and hidden text count.
        assert!(words("<template><p>VS-NfD</p></template>").contains("VS-NfD"));
        assert!(words("<span style=\"display:none\">VS-NfD</span>").contains("VS-NfD"));
        // Attributes that carry words.
        assert!(
            words("<img alt=\"Steuer-ID 86095742719\"><input value=\"VS-NfD\">")
                .contains("Steuer-ID 86095742719 VS-NfD")
        );
    }

    #[test]
    fn broken_html_does_not_lose_text() {
        assert_eq!(to_text("a < b und c"), "a < b und c");
        assert_eq!(to_text("<b>fett"), "fett");
    }
}
