//! HTML to the text a reader sees: tags removed, entities decoded, scripts and styles
//! dropped. Inline tags vanish without a trace, so `Steuer<b>-ID</b>` reads `Steuer-ID`;
//! block tags become line breaks so words from different blocks do not run together.

/// Converts HTML to plain text.
#[must_use]
pub fn to_text(html: &str) -> String {
    let mut out = String::with_capacity(html.len() / 2);
    let mut rest = html;
    let mut skip_until: Option<&'static str> = None;
    while let Some(lt) = rest.find('<') {
        if skip_until.is_none() {
            out.push_str(&rest[..lt]);
        }
        rest = &rest[lt..];
        if rest.starts_with("<!--") {
            rest = rest.find("-->").map_or("", |end| &rest[end + 3..]);
            continue;
        }
        let Some(gt) = rest.find('>') else {
            // A lone '<' is text.
            if skip_until.is_none() {
                out.push_str(rest);
            }
            rest = "";
            break;
        };
        let tag = &rest[1..gt];
        rest = &rest[gt + 1..];
        let closing = tag.starts_with('/');
        let name: String = tag
            .trim_start_matches('/')
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric())
            .collect::<String>()
            .to_ascii_lowercase();
        if let Some(until) = skip_until {
            if closing && name == until {
                skip_until = None;
            }
            continue;
        }
        match name.as_str() {
            "script" | "style" | "head" | "title" if !closing && !tag.ends_with('/') => {
                skip_until = Some(match name.as_str() {
                    "script" => "script",
                    "style" => "style",
                    "head" => "head",
                    _ => "title",
                });
            }
            "br" | "p" | "div" | "li" | "tr" | "table" | "h1" | "h2" | "h3" | "h4" | "h5"
            | "h6" | "ul" | "ol" | "blockquote" | "pre" | "hr" | "section" | "article"
            | "header" | "footer" => out.push('\n'),
            "td" | "th" => out.push('\t'),
            _ => {}
        }
    }
    if skip_until.is_none() {
        out.push_str(rest);
    }
    html_escape::decode_html_entities(&out).into_owned()
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
    fn scripts_styles_and_comments_are_dropped() {
        let t = to_text(
            "<html><head><title>x</title><style>p{}</style></head><body><!-- 86095742719 -->Hallo<script>var x=1;</script></body>",
        );
        assert_eq!(t.trim(), "Hallo");
    }

    #[test]
    fn broken_html_does_not_lose_text() {
        assert_eq!(to_text("a < b und c"), "a < b und c");
        assert_eq!(to_text("<b>fett"), "fett");
    }
}
