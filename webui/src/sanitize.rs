//! HTML mail made safe to show inside our own page: sanitised with `ammonia`, after a pass
//! that makes what the sanitiser would silently drop visible to the reader.
//!
//! Two steps:
//! 1. [`mark`]: the mail's HTML is parsed (html5ever, through `scraper`) and rewritten so the
//!    reader sees what is not shown: every `<img>` becomes the text "[Externes Bild
//!    blockiert: alt]" (remote source) or "[Eingebettetes Bild nicht angezeigt: alt]"
//!    (`cid:`/`data:` or none) and is counted; every link gets its target appended as text
//!    ("Zahlung [https://bank.example/…]") unless its text already is the target; `<h1>`
//!    becomes `<h2>` (the page has one `<h1>`: the subject).
//! 2. `ammonia` with a strict allow-list: no scripts, styles sheets, forms, frames, media,
//!    images or event attributes; `style` attributes keep only text properties that cannot
//!    load anything or leave the mail's box; links only `http`, `https`, `mailto`, `tel`,
//!    never relative, with `rel="noopener noreferrer"`; no `id`/`class` from the sender.
//!
//! What comes out loads nothing by itself (no element or attribute that fetches remains),
//! and the page's CSP (`default-src 'none'`) would block it anyway.

use std::collections::{HashMap, HashSet};

use scraper::node::Text;
use scraper::{ElementRef, Html, Node, StrTendril};

use crate::i18n::Lang;

/// Sanitised HTML and what it no longer shows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Clean {
    /// Safe to insert into the page as is.
    pub(crate) html: String,
    /// Images whose source is outside the message (`http:`, `https:`, `//…`, …): blocked.
    pub(crate) external_images: usize,
    /// Images inside the message (`cid:`, `data:`) or without source: not shown.
    pub(crate) embedded_images: usize,
}

/// Largest HTML body sanitised, in bytes; beyond it the rest is cut (messages are already
/// bounded by the SMTP size limit, this bounds the work per page view).
const MAX_HTML_BYTES: usize = 4 * 1024 * 1024;

/// `html` (a mail's HTML body) sanitised for display, placeholders in `lang`.
pub(crate) fn clean(html: &str, lang: Lang) -> Clean {
    let html = cut(html, MAX_HTML_BYTES);
    let (marked, external_images, embedded_images) = mark(html, lang);
    Clean {
        html: sanitiser().clean(&marked).to_string(),
        external_images,
        embedded_images,
    }
}

/// `s` cut to at most `max` bytes, on a character boundary.
fn cut(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// Where an image's source points.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ImageSource {
    /// Outside the message: fetching it would tell the sender the mail was read.
    External,
    /// Inside the message (`cid:`, `data:`) or no source at all.
    Embedded,
}

fn image_source(src: Option<&str>) -> ImageSource {
    let Some(src) = src else {
        return ImageSource::Embedded;
    };
    let src = src.trim().to_ascii_lowercase();
    if src.is_empty() || src.starts_with("cid:") || src.starts_with("data:") {
        ImageSource::Embedded
    } else {
        ImageSource::External
    }
}

/// Whether `href` survives the sanitiser as a link (so its target is worth showing).
fn shown_scheme(href: &str) -> bool {
    let h = href.trim().to_ascii_lowercase();
    ["http:", "https:", "mailto:", "tel:"]
        .iter()
        .any(|s| h.starts_with(s))
}

/// Step 1: the body's HTML with images replaced by placeholders, link targets appended and
/// `<h1>` demoted; and the numbers of external and embedded images.
fn mark(html: &str, lang: Lang) -> (String, usize, usize) {
    let mut doc = Html::parse_document(html);
    let mut images = Vec::new();
    let mut links = Vec::new();
    let mut h1s = Vec::new();
    for node in doc.tree.nodes() {
        let Node::Element(el) = node.value() else {
            continue;
        };
        match el.name() {
            "img" => images.push((
                node.id(),
                image_source(el.attr("src")),
                el.attr("alt").unwrap_or("").trim().to_owned(),
            )),
            "a" => {
                if let Some(href) = el.attr("href").filter(|h| shown_scheme(h)) {
                    let text: String = ElementRef::wrap(node)
                        .map(|e| e.text().collect())
                        .unwrap_or_default();
                    let href = href.trim();
                    let bare = href.strip_prefix("mailto:").unwrap_or(href);
                    let text = text.trim();
                    if text != href && text != bare {
                        links.push((node.id(), href.to_owned()));
                    }
                }
            }
            "h1" => h1s.push(node.id()),
            _ => {}
        }
    }
    let (mut external, mut embedded) = (0, 0);
    for (id, source, alt) in images {
        let label = match source {
            ImageSource::External => {
                external += 1;
                lang.t("Externes Bild blockiert")
            }
            ImageSource::Embedded => {
                embedded += 1;
                lang.t("Eingebettetes Bild nicht angezeigt")
            }
        };
        // A space after each, so images side by side do not run together.
        let text = if alt.is_empty() {
            format!("[{label}] ")
        } else {
            format!("[{label}: {alt}] ")
        };
        if let Some(mut node) = doc.tree.get_mut(id) {
            *node.value() = text_node(&text);
        }
    }
    for (id, href) in links {
        if let Some(mut node) = doc.tree.get_mut(id) {
            node.append(text_node(&format!(" [{href}]")));
        }
    }
    for id in h1s {
        if let Some(mut node) = doc.tree.get_mut(id)
            && let Node::Element(el) = node.value()
        {
            el.name.local = "h2".into();
        }
    }
    let body = doc
        .root_element()
        .children()
        .filter_map(ElementRef::wrap)
        .find(|e| e.value().name() == "body")
        .map(|b| b.inner_html())
        .unwrap_or_default();
    (body, external, embedded)
}

fn text_node(text: &str) -> Node {
    Node::Text(Text {
        text: StrTendril::from(text),
    })
}

/// Step 2: the allow-list.
fn sanitiser() -> ammonia::Builder<'static> {
    let mut b = ammonia::Builder::default();
    // Images are placeholders by now; whatever is left of them (none) must not load. Areas
    // are links without text; landmarks would clash with the page's own.
    b.rm_tags([
        "img", "map", "area", "nav", "header", "footer", "aside", "article", "h1",
    ]);
    b.add_clean_content_tags(["title", "template", "noscript"]);
    let tag_attributes: HashMap<&str, HashSet<&str>> = [
        ("a", &["href", "hreflang"][..]),
        ("bdo", &["dir"]),
        ("blockquote", &["cite"]),
        ("col", &["align", "span"]),
        ("colgroup", &["align", "span"]),
        ("del", &["cite", "datetime"]),
        ("ins", &["cite", "datetime"]),
        ("ol", &["start"]),
        ("q", &["cite"]),
        ("table", &["align", "summary"]),
        ("tbody", &["align"]),
        ("thead", &["align"]),
        ("tfoot", &["align"]),
        ("tr", &["align"]),
        // No width/height (a 600-pixel layout table would not fit a phone), no `headers`
        // (the ids it names are removed).
        ("td", &["align", "colspan", "rowspan"]),
        ("th", &["align", "colspan", "rowspan", "scope"]),
    ]
    .into_iter()
    .map(|(tag, attrs)| (tag, attrs.iter().copied().collect()))
    .collect();
    b.tag_attributes(tag_attributes);
    b.generic_attributes(["lang", "title", "dir", "style"].into_iter().collect());
    // Only properties that can neither load anything nor move text out of the mail's box.
    b.filter_style_properties(
        ["font-weight", "font-style", "text-decoration", "text-align"]
            .into_iter()
            .collect(),
    );
    b.url_schemes(["http", "https", "mailto", "tel"].into_iter().collect());
    b.url_relative(ammonia::UrlRelative::Deny);
    b.link_rel(Some("noopener noreferrer"));
    b.strip_comments(true);
    b
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn de(html: &str) -> Clean {
        clean(html, Lang::German)
    }

    #[test]
    fn scripts_styles_forms_and_handlers_are_removed() {
        let c = de(
            r#"<html><head><title>T</title><style>body{display:none}</style>
<script>alert(1)</script><link rel="stylesheet" href="https://evil.example/x.css"></head>
<body onload="alert(2)"><p onclick="alert(3)" style="position:fixed;top:0;font-weight:bold">Betrag</p>
<form action="https://evil.example/"><input name="pw"><button>Senden</button></form>
<iframe src="https://evil.example/"></iframe><a href="javascript:alert(4)">klick</a>
<svg><script>alert(5)</script></svg><object data="x.swf"></object></body></html>"#,
        );
        let h = c.html.to_ascii_lowercase();
        for bad in [
            "<script",
            "alert",
            "<style",
            "<link",
            "onload",
            "onclick",
            "<form",
            "<input",
            "<iframe",
            "javascript:",
            "position",
            "<object",
            "<svg",
            "evil.example",
        ] {
            assert!(!h.contains(bad), "{bad} survived: {}", c.html);
        }
        assert!(
            c.html.contains("Betrag") && c.html.contains("font-weight:bold"),
            "{}",
            c.html
        );
        assert!(
            !c.html.contains(">T<"),
            "the title leaked into the body: {}",
            c.html
        );
    }

    #[test]
    fn paragraphs_stay_apart() {
        // The old viewer showed HTML-only mail as text run together ("Betrag312,00 €").
        let c = de("<table><tr><td>Betrag</td><td>312,00 €</td></tr></table><p>A</p><p>B</p>");
        assert!(
            c.html.contains("<td>Betrag</td><td>312,00 €</td>"),
            "{}",
            c.html
        );
        assert!(c.html.contains("<p>A</p><p>B</p>"), "{}", c.html);
    }

    #[test]
    fn images_become_counted_placeholders() {
        let c = de(r#"<p><img src="https://track.example/p.gif" alt="Logo">
<img src="//cdn.example/a.png"><img src="HTTP://x.example/b"><img src="cid:part1@x" alt="Unterschrift">
<img src="data:image/png;base64,AAAA"><img></p>"#);
        assert_eq!((c.external_images, c.embedded_images), (3, 3), "{}", c.html);
        assert!(!c.html.contains("<img"), "{}", c.html);
        assert!(
            c.html.contains("[Externes Bild blockiert: Logo]"),
            "{}",
            c.html
        );
        assert!(
            c.html
                .contains("[Eingebettetes Bild nicht angezeigt: Unterschrift]")
        );
        for gone in ["track.example", "cdn.example", "cid:", "data:"] {
            assert!(!c.html.contains(gone), "{gone}: {}", c.html);
        }
        let en = clean(r#"<img src="https://x.example/a">"#, Lang::English);
        assert!(en.html.contains("[External image blocked]"), "{}", en.html);
    }

    #[test]
    fn links_show_their_target_and_keep_no_referrer() {
        let c = de(
            r#"<a href="https://bank.example/zahlen?id=1&amp;x=2">Jetzt zahlen</a>
<a href="https://stadt.test/">https://stadt.test/</a> <a href="mailto:amt@stadt.test">amt@stadt.test</a>
<a href="/relativ">relativ</a>"#,
        );
        assert!(
            c.html.contains(
                r#"<a href="https://bank.example/zahlen?id=1&amp;x=2" rel="noopener noreferrer">Jetzt zahlen [https://bank.example/zahlen?id=1&amp;x=2]</a>"#
            ),
            "{}",
            c.html
        );
        // Text that is the target already is not repeated.
        assert!(c.html.contains(">https://stadt.test/</a>"), "{}", c.html);
        assert!(c.html.contains(">amt@stadt.test</a>"), "{}", c.html);
        // Relative links lead nowhere in a mail: no href.
        assert!(!c.html.contains("/relativ\""), "{}", c.html);
    }

    #[test]
    fn headings_stay_below_the_pages_own() {
        let c = de("<h1>Einladung</h1><h3>Tagesordnung</h3>");
        assert_eq!(c.html, "<h2>Einladung</h2><h3>Tagesordnung</h3>");
    }

    #[test]
    fn sender_ids_and_classes_are_dropped() {
        let c = de(r#"<div id="main" class="skip"><span class="x">t</span></div>"#);
        assert_eq!(c.html, "<div><span>t</span></div>");
    }

    /// Pieces of hostile HTML, for the property test.
    fn piece() -> impl Strategy<Value = String> {
        let scheme = prop_oneof![
            Just("javascript:"),
            Just("JaVaScRiPt:"),
            Just("java\tscript:"),
            Just("vbscript:"),
            Just("data:text/html,"),
            Just("https://evil.example/"),
            Just("//evil.example/"),
        ];
        let tag = prop_oneof![
            Just("script"),
            Just("style"),
            Just("iframe"),
            Just("object"),
            Just("embed"),
            Just("form"),
            Just("link"),
            Just("meta"),
            Just("base"),
            Just("svg"),
            Just("math"),
            Just("video"),
            Just("audio"),
            Just("img"),
            Just("input"),
            Just("p"),
            Just("a"),
            Just("div"),
            Just("table"),
            Just("td"),
        ];
        let attr = prop_oneof![
            Just("onerror"),
            Just("onload"),
            Just("onclick"),
            Just("OnMouseOver"),
            Just("src"),
            Just("href"),
            Just("style"),
            Just("srcset"),
            Just("background"),
            Just("poster"),
            Just("action"),
            Just("formaction"),
            Just("xlink:href"),
            Just("id"),
            Just("class"),
        ];
        let text = "[a-zA-Z0-9 <>\"'=/;:(){}-]{0,12}";
        prop_oneof![
            (tag.clone(), attr, scheme.clone(), text)
                .prop_map(|(t, a, s, x)| format!("<{t} {a}=\"{s}alert(1)\">{x}</{t}>")),
            (tag.clone(), scheme.clone()).prop_map(|(t, s)| format!(
                "<{t} style=\"background:url({s}x);position:fixed\">x</{t}>"
            )),
            tag.prop_map(|t| format!("<{t}>alert(1)")),
            Just("<![CDATA[<script>alert(1)</script>]]>".to_owned()),
            Just("<!--<script>alert(1)</script>-->".to_owned()),
            Just("<scr<script>ipt>alert(1)</script>".to_owned()),
            "[a-zA-Z0-9 äöü€<>&;\"'=/]{0,20}",
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        /// Whatever the mail holds: no element or attribute that runs code, styles the page
        /// or loads anything survives.
        #[test]
        fn nothing_active_survives(pieces in proptest::collection::vec(piece(), 1..8)) {
            let html = pieces.concat();
            let out = de(&html).html;
            let lower = out.to_ascii_lowercase();
            // What survives as markup (text is escaped: `&lt;script` is harmless).
            for bad in [
                "<script", "<style", "<iframe", "<object", "<embed", "<form", "<link",
                "<meta", "<base", "<svg", "<math", "<video", "<audio", "<img", "<input",
                " on", "javascript:", "vbscript:", "data:", "srcset", "background", "poster",
                "action", "url(", "position", " id=", " class=", "evil.example\"",
            ] {
                // A link target shown as text (" [https://evil.example/…]") is fine: it is
                // outside any tag. Check inside tags only.
                for tag in lower.split('<').skip(1).map(|t| t.split('>').next().unwrap_or("")) {
                    let tag = format!("<{tag}");
                    prop_assert!(!tag.contains(bad), "{} in {} (from {})", bad, tag, html);
                }
            }
        }
    }
}
