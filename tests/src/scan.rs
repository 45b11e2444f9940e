//! Scans the tests make themselves (issue #10 §5): lines of text typeset in a PDF with a
//! real font, rasterised by `pdftoppm` into a PNG as a scanner or phone camera delivers it,
//! and PDFs of scanned pages (one grey-scale image per page, no text at all) built around the
//! raster as a multifunction device sends them, alone or behind a typed page.
//!
//! Needs `pdftoppm` (poppler-utils), the program the relay rasterises PDFs with as well.

use std::process::Command;

use lopdf::{Document, Object, Stream, dictionary};

/// Resolution of the rendered scans, in dots per inch.
const DPI: u32 = 300;
/// Font size of the text, in points: about 100 pixels high at 300 dpi, crisp for OCR.
const FONT_SIZE: i64 = 24;
/// Page width and height of one line, in points.
const WIDTH: i64 = 560;
const LINE: i64 = 40;

/// A page of a test PDF.
#[derive(Debug, Clone, Copy)]
pub enum Sheet<'a> {
    /// These lines as real text in Helvetica (the PDF standard font, which poppler draws
    /// with an installed substitute), as a word processor writes them.
    Typed(&'a [&'a str]),
    /// These lines rendered at 300 dpi into one grey-scale image (FlateDecode) covering the
    /// page, without any text, as a scanner writes them.
    Scanned(&'a [&'a str]),
}

/// A PDF of `sheets`, in order.
///
/// # Panics
/// For a scanned sheet, when pdftoppm is missing or fails.
#[must_use]
pub fn pdf(sheets: &[Sheet<'_>]) -> Vec<u8> {
    let mut doc = Document::with_version("1.5");
    let pages = sheets
        .iter()
        .map(|sheet| match sheet {
            Sheet::Typed(lines) => typed_page(&mut doc, lines),
            Sheet::Scanned(lines) => scanned_page(&mut doc, lines),
        })
        .collect();
    document(doc, pages)
}

/// A one-page PDF with `lines` as real text.
#[must_use]
pub fn text_pdf(lines: &[&str]) -> Vec<u8> {
    pdf(&[Sheet::Typed(lines)])
}

/// An image-only PDF with one scanned page per entry of `pages`.
///
/// # Panics
/// When pdftoppm is missing or fails.
#[must_use]
pub fn scanned_pdf(pages: &[&[&str]]) -> Vec<u8> {
    let sheets: Vec<Sheet<'_>> = pages.iter().map(|lines| Sheet::Scanned(lines)).collect();
    pdf(&sheets)
}

/// `lines` rendered as a grey-scale PNG at 300 dpi.
///
/// # Panics
/// When pdftoppm is missing or fails.
#[must_use]
pub fn png(lines: &[&str]) -> Vec<u8> {
    rasterise(&text_pdf(lines), Some("-png"), "png")
}

fn typed_page(doc: &mut Document, lines: &[&str]) -> Page {
    let height = LINE * (i64::try_from(lines.len()).expect("lines") + 1);
    let mut content = format!("BT /F1 {FONT_SIZE} Tf {LINE} TL 20 {} Td\n", height - LINE);
    for line in lines {
        let escaped = line
            .replace('\\', "\\\\")
            .replace('(', "\\(")
            .replace(')', "\\)");
        content.push_str(&format!("({escaped}) Tj T*\n"));
    }
    content.push_str("ET\n");
    // WinAnsiEncoding: Latin-1 for the German letters (ä ö ü ß are the same code points).
    let content: Vec<u8> = content
        .chars()
        .map(|c| u8::try_from(u32::from(c)).unwrap_or(b'?'))
        .collect();
    let font = doc.add_object(dictionary! {
        "Type" => "Font", "Subtype" => "Type1", "BaseFont" => "Helvetica",
        "Encoding" => "WinAnsiEncoding",
    });
    Page {
        content,
        resources: dictionary! { "Font" => dictionary! { "F1" => font } },
        width: WIDTH,
        height,
    }
}

fn scanned_page(doc: &mut Document, lines: &[&str]) -> Page {
    let pgm = rasterise(&text_pdf(lines), None, "pgm");
    let (width, height, pixels) = parse_pgm(&pgm);
    let mut image = Stream::new(
        dictionary! {
            "Type" => "XObject", "Subtype" => "Image",
            "Width" => width, "Height" => height,
            "ColorSpace" => "DeviceGray", "BitsPerComponent" => 8,
        },
        pixels,
    );
    image.compress().expect("compress");
    let image = doc.add_object(image);
    // Points from pixels at 300 dpi.
    let (w, h) = (width * 72 / i64::from(DPI), height * 72 / i64::from(DPI));
    Page {
        content: format!("q {w} 0 0 {h} 0 0 cm /Scan Do Q\n").into_bytes(),
        resources: dictionary! { "XObject" => dictionary! { "Scan" => image } },
        width: w,
        height: h,
    }
}

/// A message from the upstream to `to` with a text part and `attachment` (base64) of type
/// `mime` named `name`; `id` makes its Message-ID `<id@upstream.test>`.
#[must_use]
pub fn message_with_attachment(
    id: &str,
    to: &str,
    mime: &str,
    name: &str,
    attachment: &[u8],
) -> Vec<u8> {
    format!(
        "From: Buergerbuero <buergerbuero@upstream.test>\r\nTo: {to}\r\nSubject: Unterlagen {id}\r\n\
         Message-ID: <{id}@upstream.test>\r\nDate: Sun, 22 Nov 2026 10:00:00 +0100\r\n\
         MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"scan-boundary\"\r\n\r\n\
         --scan-boundary\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n\
         Anbei die eingescannten Unterlagen.\r\n--scan-boundary\r\nContent-Type: {mime}\r\n\
         Content-Disposition: attachment; filename=\"{name}\"\r\n\
         Content-Transfer-Encoding: base64\r\n\r\n{body}--scan-boundary--\r\n",
        body = base64_lines(attachment),
    )
    .into_bytes()
}

/// One page: its content stream, resources and size in points.
struct Page {
    content: Vec<u8>,
    resources: lopdf::Dictionary,
    width: i64,
    height: i64,
}

/// `doc` with `pages` in order, saved.
fn document(mut doc: Document, pages: Vec<Page>) -> Vec<u8> {
    let root = doc.new_object_id();
    let count = i64::try_from(pages.len()).expect("pages");
    let kids: Vec<Object> = pages
        .into_iter()
        .map(|page| {
            let content = doc.add_object(Stream::new(dictionary! {}, page.content));
            doc.add_object(dictionary! {
                "Type" => "Page", "Parent" => root, "Contents" => content,
                "MediaBox" => vec![0.into(), 0.into(), page.width.into(), page.height.into()],
                "Resources" => page.resources,
            })
            .into()
        })
        .collect();
    doc.objects.insert(
        root,
        Object::Dictionary(dictionary! { "Type" => "Pages", "Kids" => kids, "Count" => count }),
    );
    let catalog = doc.add_object(dictionary! { "Type" => "Catalog", "Pages" => root });
    doc.trailer.set("Root", catalog);
    let mut out = Vec::new();
    doc.save_to(&mut out).expect("save PDF");
    out
}

/// `pdf` rasterised by `pdftoppm -r 300 -gray [FORMAT]` (without a format: PGM); returns
/// the one page's file.
fn rasterise(pdf: &[u8], format: Option<&str>, extension: &str) -> Vec<u8> {
    let dir = tempfile::tempdir().expect("tempdir");
    let input = dir.path().join("text.pdf");
    std::fs::write(&input, pdf).expect("write PDF");
    let prefix = dir.path().join("page");
    let out = Command::new("pdftoppm")
        .args(["-r", &DPI.to_string(), "-gray", "-singlefile"])
        .args(format)
        .arg(&input)
        .arg(&prefix)
        .output()
        .expect("run pdftoppm (poppler-utils)");
    assert!(
        out.status.success(),
        "pdftoppm failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::read(prefix.with_extension(extension)).expect("rendered page")
}

/// Width, height and pixels of a binary 8-bit PGM (`P5`), as pdftoppm writes it.
fn parse_pgm(pgm: &[u8]) -> (i64, i64, Vec<u8>) {
    // Header: "P5", width, height, maxval, each after white space; one byte of white space
    // before the pixels.
    let mut fields = Vec::new();
    let mut at = 0;
    while fields.len() < 4 {
        while pgm[at].is_ascii_whitespace() {
            at += 1;
        }
        let start = at;
        while !pgm[at].is_ascii_whitespace() {
            at += 1;
        }
        fields.push(
            std::str::from_utf8(&pgm[start..at])
                .expect("header")
                .to_owned(),
        );
    }
    assert_eq!(fields[0], "P5", "not a binary PGM");
    assert_eq!(fields[3], "255", "not 8-bit");
    let width: i64 = fields[1].parse().expect("width");
    let height: i64 = fields[2].parse().expect("height");
    let pixels = pgm[at + 1..].to_vec();
    assert_eq!(pixels.len() as i64, width * height, "PGM size");
    (width, height, pixels)
}

/// Base64 (RFC 4648) in lines of 76 characters, each ended by CRLF (RFC 2045 §6.8).
fn base64_lines(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut encoded = String::with_capacity(bytes.len() * 4 / 3 + 4);
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, &b)| n | u32::from(b) << (16 - 8 * i));
        for i in 0..4 {
            if i <= chunk.len() {
                encoded.push(char::from(ALPHABET[(n >> (18 - 6 * i) & 63) as usize]));
            } else {
                encoded.push('=');
            }
        }
    }
    let mut out = String::with_capacity(encoded.len() + encoded.len() / 38);
    for line in encoded.as_bytes().chunks(76) {
        out.push_str(std::str::from_utf8(line).expect("ASCII"));
        out.push_str("\r\n");
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn base64_matches_rfc_4648_test_vectors() {
        for (plain, encoded) in [
            ("", ""),
            ("f", "Zg==\r\n"),
            ("fo", "Zm8=\r\n"),
            ("foo", "Zm9v\r\n"),
            ("foob", "Zm9vYg==\r\n"),
            ("fooba", "Zm9vYmE=\r\n"),
            ("foobar", "Zm9vYmFy\r\n"),
        ] {
            assert_eq!(super::base64_lines(plain.as_bytes()), encoded);
        }
    }
}
