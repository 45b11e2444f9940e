//! Office Open XML (docx, xlsx, pptx) and OpenDocument (odt, ods, odp): the text of the
//! document parts, read with quick-xml from the ZIP package. Embedded files (an xlsx inside
//! a docx) are handed back to be inspected like attachments.

use quick_xml::events::Event;

use super::archive::{self, read_entry};
use crate::rules::Inspect;

/// Parts that hold text a reader sees.
fn is_text_part(name: &str) -> bool {
    let xml = name.ends_with(".xml");
    xml && (name.starts_with("word/document")
        || name.starts_with("word/header")
        || name.starts_with("word/footer")
        || name.starts_with("word/footnotes")
        || name.starts_with("word/endnotes")
        || name.starts_with("word/comments")
        || name == "xl/sharedStrings.xml"
        || name.starts_with("xl/worksheets/sheet")
        || name.starts_with("xl/comments")
        || name.starts_with("ppt/slides/slide")
        || name.starts_with("ppt/notesSlides/")
        || name == "content.xml"
        || name == "styles.xml"
        || name == "docProps/core.xml"
        || name == "meta.xml")
}

fn is_embedded(name: &str) -> bool {
    [
        "word/embeddings/",
        "xl/embeddings/",
        "ppt/embeddings/",
        "Object ",
    ]
    .iter()
    .any(|p| name.starts_with(p))
}

/// An embedded file: its path in the package and its bytes.
pub(super) type Embedded = (String, Vec<u8>);

/// The document's text and its embedded files.
pub(super) fn text(bytes: &[u8], limits: &Inspect) -> Result<(String, Vec<Embedded>), String> {
    // An encrypted Office document is an OLE container, not a ZIP: it fails here.
    let mut zip = archive::open(bytes, limits, "Office document").map_err(|e| {
        if e.starts_with("unreadable") {
            "unreadable or password-protected Office document".to_owned()
        } else {
            e
        }
    })?;
    let mut text = String::new();
    let mut embedded = Vec::new();
    let mut found = false;
    for i in 0..zip.len() {
        let name = archive::entry_name(&mut zip, i);
        if is_text_part(&name) {
            found = true;
            if let Some(xml) = read_entry(&mut zip, i, limits.max_entry_size)? {
                xml_text(&xml, &mut text)
                    .map_err(|_| "unreadable Office document part".to_owned())?;
                text.push('\n');
            }
        } else if is_embedded(&name)
            && let Some(data) = read_entry(&mut zip, i, limits.max_entry_size)?
        {
            embedded.push((name, data));
        }
    }
    if !found {
        return Err("unreadable Office document".to_owned());
    }
    Ok((text, embedded))
}

/// Appends the character data of `xml`; paragraph, row and cell ends become separators so
/// that words of different cells do not merge, while runs inside a paragraph (`Steuer` `-ID`)
/// join as the reader sees them.
fn xml_text(xml: &[u8], out: &mut String) -> Result<(), quick_xml::Error> {
    let mut reader = quick_xml::Reader::from_reader(xml);
    let mut buf = Vec::new();
    loop {
        match reader.read_event_into(&mut buf)? {
            Event::Text(t) => out.push_str(&t.into_inner()),
            Event::CData(t) => out.push_str(&t.into_inner()),
            Event::GeneralRef(r) => match r.resolve_char_ref() {
                Ok(Some(c)) => out.push(c),
                _ => out.push_str(match r.into_inner().as_ref() {
                    "amp" => "&",
                    "lt" => "<",
                    "gt" => ">",
                    "quot" => "\"",
                    "apos" => "'",
                    _ => " ",
                }),
            },
            Event::End(e) => {
                let name = e.local_name();
                match name.as_ref() {
                    "p" | "h" | "row" | "tr" | "si" | "br" => out.push('\n'),
                    "c" | "tc" | "table-cell" | "tab" | "v" => out.push('\t'),
                    _ => {}
                }
            }
            Event::Empty(e) => {
                if matches!(e.local_name().as_ref(), "br" | "tab" | "s" | "line-break") {
                    out.push(' ');
                }
            }
            Event::Eof => break,
            _ => {}
        }
        buf.clear();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::xml_text;

    #[test]
    fn runs_join_and_paragraphs_separate() {
        let xml = br#"<w:document xmlns:w="x"><w:body><w:p><w:r><w:t>Steuer</w:t></w:r><w:r><w:t>-ID: 86 095</w:t></w:r></w:p><w:p><w:r><w:t>Zweite &amp; Zeile</w:t></w:r></w:p></w:body></w:document>"#;
        let mut out = String::new();
        xml_text(xml, &mut out).expect("xml");
        assert_eq!(out, "Steuer-ID: 86 095\nZweite & Zeile\n");
    }
}
