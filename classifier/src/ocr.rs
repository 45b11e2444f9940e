//! Reading scans: the [`Ocr`] trait the classifier asks for the text of an image or an
//! image-only PDF.
//!
//! The classifier stays pure (no processes, no files), so it only declares what it needs;
//! the relay implements it with Tesseract in a bounded subprocess. Whatever the OCR returns
//! is classified like any other text, located at the attachment it came from.
//!
//! Fail closed: when the pages of a PDF that carry no text cannot be read (no OCR, an error,
//! a timeout), the PDF is `uninspectable`. A plain image that cannot be read follows
//! `inspect.images_sensitive`.

/// Why OCR gave no text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OcrError {
    /// OCR is switched off or its programs are not installed.
    #[error("OCR unavailable")]
    Unavailable,
    /// The content is not something the OCR can read (an unsupported or corrupt image).
    #[error("unreadable image")]
    Unreadable,
    /// A limit was reached: pages, image size, memory or output size.
    #[error("limit reached: {0}")]
    Limit(String),
    /// The OCR took longer than allowed.
    #[error("OCR timed out")]
    Timeout,
    /// The OCR program failed for another reason.
    #[error("OCR failed")]
    Failed,
}

/// Optical character recognition of attachments.
///
/// Implementations must bound their own time and memory: the classifier calls them
/// synchronously and once per image or image-only PDF.
pub trait Ocr: Send + Sync {
    /// The text of one image, given as sent (PNG, JPEG, TIFF, GIF, BMP, WebP).
    ///
    /// # Errors
    /// When the image cannot be read; see [`OcrError`].
    fn image(&self, bytes: &[u8]) -> Result<String, OcrError>;

    /// The text of `pages` (1-based, ascending) of a PDF: its pages that carry no text (a
    /// scan, or scanned pages behind a typed letter), in order.
    ///
    /// # Errors
    /// When any of the pages cannot be read; see [`OcrError`]. Never partial text.
    fn pdf(&self, bytes: &[u8], pages: &[u32]) -> Result<String, OcrError>;
}

/// The hint of the `uninspectable` finding for a PDF whose scanned pages could not be read.
pub(crate) fn pdf_problem(error: &OcrError) -> String {
    match error {
        OcrError::Unavailable => "PDF without text (scanned image); OCR unavailable".to_owned(),
        other => format!("PDF without text (scanned image); {other}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::Rules;
    use crate::{category, classify, classify_with};

    /// Answers every image and PDF with fixed text, or a fixed error; remembers the PDF
    /// pages it was asked for.
    struct Fake(Result<String, OcrError>, std::sync::Mutex<Vec<Vec<u32>>>);

    impl Fake {
        fn failing(error: OcrError) -> Self {
            Self(Err(error), std::sync::Mutex::default())
        }
        fn asked(&self) -> Vec<Vec<u32>> {
            self.1.lock().expect("lock").clone()
        }
    }

    impl Ocr for Fake {
        fn image(&self, _: &[u8]) -> Result<String, OcrError> {
            self.0.clone()
        }
        fn pdf(&self, _: &[u8], pages: &[u32]) -> Result<String, OcrError> {
            self.1.lock().expect("lock").push(pages.to_vec());
            self.0.clone()
        }
    }

    fn read(text: &str) -> Fake {
        Fake(Ok(text.to_owned()), std::sync::Mutex::default())
    }

    /// A message with one base64 attachment of `mime` named `name`.
    fn with_attachment(mime: &str, name: &str, bytes: &[u8]) -> Vec<u8> {
        let body = base64(bytes);
        format!(
            "From: a@b.test\r\nTo: c@d.test\r\nSubject: Unterlagen\r\nMIME-Version: 1.0\r\n\
             Content-Type: multipart/mixed; boundary=\"b\"\r\n\r\n--b\r\n\
             Content-Type: text/plain; charset=utf-8\r\n\r\nAnbei die Unterlagen.\r\n--b\r\n\
             Content-Type: {mime}\r\nContent-Disposition: attachment; filename=\"{name}\"\r\n\
             Content-Transfer-Encoding: base64\r\n\r\n{body}\r\n--b--\r\n"
        )
        .into_bytes()
    }

    fn base64(bytes: &[u8]) -> String {
        const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let mut out = String::new();
        for chunk in bytes.chunks(3) {
            let n = chunk
                .iter()
                .enumerate()
                .fold(0u32, |n, (i, b)| n | u32::from(*b) << (16 - 8 * i));
            for i in 0..4 {
                if i <= chunk.len() {
                    out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
                } else {
                    out.push('=');
                }
            }
        }
        out
    }

    /// A page of a test PDF.
    #[derive(Clone, Copy)]
    enum Sheet<'a> {
        /// Typed text only.
        Typed(&'a str),
        /// One image covering the page (2480 x 3508 pixels, A4 at 300 dpi), no text.
        Scan,
        /// The page-sized image with a line of text over it, as scanners stamp it.
        Stamped(&'a str),
        /// Typed text with a 300 x 100 pixel logo.
        WithLogo(&'a str),
    }

    /// A PDF of `sheets`; the images are declared, not drawn (a fake OCR does not look).
    fn pdf(sheets: &[Sheet<'_>]) -> Vec<u8> {
        use lopdf::{Document, Object, Stream, dictionary};
        let mut doc = Document::with_version("1.5");
        let root = doc.new_object_id();
        let image = |doc: &mut Document, width: i64, height: i64| {
            doc.add_object(Stream::new(
                dictionary! {
                    "Type" => "XObject", "Subtype" => "Image", "Width" => width,
                    "Height" => height, "ColorSpace" => "DeviceGray", "BitsPerComponent" => 8,
                },
                vec![0],
            ))
        };
        let scan = image(&mut doc, 2480, 3508);
        let logo = image(&mut doc, 300, 100);
        let font = doc.add_object(dictionary! {
            "Type" => "Font", "Subtype" => "Type1", "BaseFont" => "Helvetica",
        });
        let mut kids: Vec<Object> = Vec::new();
        for sheet in sheets {
            let typed = |text: &str| format!("BT /F1 12 Tf 10 50 Td ({text}) Tj ET");
            let (content, picture) = match sheet {
                Sheet::Typed(text) => (typed(text), None),
                Sheet::Scan => ("q 595 0 0 842 0 0 cm /Im1 Do Q".to_owned(), Some(scan)),
                Sheet::Stamped(text) => (
                    format!("q 595 0 0 842 0 0 cm /Im1 Do Q {}", typed(text)),
                    Some(scan),
                ),
                Sheet::WithLogo(text) => (
                    format!("q 90 0 0 30 10 800 cm /Im1 Do Q {}", typed(text)),
                    Some(logo),
                ),
            };
            let mut resources = dictionary! { "Font" => dictionary! { "F1" => font } };
            if let Some(picture) = picture {
                resources.set("XObject", dictionary! { "Im1" => picture });
            }
            let content = doc.add_object(Stream::new(dictionary! {}, content.into_bytes()));
            let page = doc.add_object(dictionary! {
                "Type" => "Page", "Parent" => root, "Contents" => content,
                "MediaBox" => vec![0.into(), 0.into(), 595.into(), 842.into()],
                "Resources" => resources,
            });
            kids.push(page.into());
        }
        let count = i64::try_from(kids.len()).expect("pages");
        doc.objects.insert(
            root,
            Object::Dictionary(dictionary! { "Type" => "Pages", "Kids" => kids, "Count" => count }),
        );
        let catalog = doc.add_object(dictionary! { "Type" => "Catalog", "Pages" => root });
        doc.trailer.set("Root", catalog);
        let mut out = Vec::new();
        doc.save_to(&mut out).expect("pdf");
        out
    }

    /// A one-page scan.
    fn scanned_pdf() -> Vec<u8> {
        pdf(&[Sheet::Scan])
    }

    const STEUER_ID: &str = "Steuer-ID: 86 095 742 719";

    #[test]
    fn ocr_text_of_a_scanned_pdf_is_classified_at_the_attachment() {
        let raw = with_attachment("application/pdf", "scan.pdf", &scanned_pdf());
        let ocr = read(STEUER_ID);
        let v = classify_with(&raw, &Rules::default(), Some(&ocr));
        assert!(v.sensitive, "{v:?}");
        assert_eq!(v.categories, [category::TAX_ID]);
        assert_eq!(
            v.findings[0].location.attachment.as_deref(),
            Some("scan.pdf")
        );
        assert_eq!(v.findings[0].location.part.as_deref(), Some("2"));
        assert_eq!(ocr.asked(), [[1]]);
    }

    #[test]
    fn scanned_pages_behind_typed_ones_are_read_too() {
        let mixed = pdf(&[
            Sheet::Typed("Anschreiben: anbei die Bescheinigung"),
            Sheet::Scan,
            Sheet::Typed("Mit freundlichen Gruessen"),
            Sheet::Scan,
        ]);
        let raw = with_attachment("application/pdf", "antrag.pdf", &mixed);
        let ocr = read(STEUER_ID);
        let v = classify_with(&raw, &Rules::default(), Some(&ocr));
        assert_eq!(v.categories, [category::TAX_ID], "{v:?}");
        assert_eq!(ocr.asked(), [[2, 4]], "only the pages without text");
        // Unread, the typed pages do not vouch for the scanned ones.
        let v = classify(&raw, &Rules::default());
        assert_eq!(v.categories, [category::UNINSPECTABLE], "{v:?}");
        // The typed text still counts when OCR reads nothing sensitive.
        let typed = pdf(&[Sheet::Typed("Steuer-ID 86095742719"), Sheet::Scan]);
        let raw = with_attachment("application/pdf", "antrag.pdf", &typed);
        let v = classify_with(&raw, &Rules::default(), Some(&read("")));
        assert_eq!(v.categories, [category::TAX_ID], "{v:?}");
        // A PDF typed throughout is not handed to OCR.
        let ocr = read("");
        let raw = with_attachment(
            "application/pdf",
            "brief.pdf",
            &pdf(&[Sheet::Typed("Hallo")]),
        );
        assert!(!classify_with(&raw, &Rules::default(), Some(&ocr)).sensitive);
        assert!(ocr.asked().is_empty());
    }

    #[test]
    fn a_scan_with_a_stamped_footer_is_read_but_a_letter_with_a_logo_is_not() {
        let long = "Sehr geehrte Damen und Herren, wir bestaetigen den Eingang Ihres Antrags \
                    vom 3. November und werden ihn in den naechsten Wochen bearbeiten. Bei \
                    Rueckfragen erreichen Sie uns montags bis freitags von 8 bis 12 Uhr.";
        let sheets = [
            Sheet::Stamped("Gescannt am 01.12.2026 - Seite 1"),
            Sheet::WithLogo("Kurzmitteilung"),
            Sheet::Stamped(long),
        ];
        let raw = with_attachment("application/pdf", "scan.pdf", &pdf(&sheets));
        let ocr = read(STEUER_ID);
        let v = classify_with(&raw, &Rules::default(), Some(&ocr));
        assert_eq!(v.categories, [category::TAX_ID], "{v:?}");
        // A short line over a page-sized image is a stamp; a logo beside a short note, and a
        // page-sized image under a full letter, are not scans.
        assert_eq!(ocr.asked(), [[1]]);
        assert_eq!(
            classify(&raw, &Rules::default()).categories,
            [category::UNINSPECTABLE]
        );
    }

    #[test]
    fn a_scanned_pdf_without_ocr_or_with_a_failing_ocr_is_uninspectable() {
        let raw = with_attachment("application/pdf", "scan.pdf", &scanned_pdf());
        let rules = Rules::default();
        let cases: [(Option<&dyn Ocr>, &str); 4] = [
            (None, "OCR unavailable"),
            (
                Some(&Fake::failing(OcrError::Unavailable)),
                "OCR unavailable",
            ),
            (Some(&Fake::failing(OcrError::Timeout)), "OCR timed out"),
            (Some(&Fake::failing(OcrError::Failed)), "OCR failed"),
        ];
        for (ocr, hint) in cases {
            let v = classify_with(&raw, &rules, ocr);
            assert!(v.sensitive, "{hint}: {v:?}");
            assert_eq!(v.categories, [category::UNINSPECTABLE], "{hint}");
            let found = v.findings[0].hint.as_deref().unwrap_or_default();
            assert!(found.contains(hint), "{found:?} lacks {hint:?}");
        }
        // `classify` is `classify_with` without OCR.
        assert_eq!(classify(&raw, &rules).categories, [category::UNINSPECTABLE]);
    }

    #[test]
    fn a_scan_whose_text_is_harmless_is_clean() {
        let raw = with_attachment("application/pdf", "scan.pdf", &scanned_pdf());
        let ocr = read("Einladung zum Stadtfest am Samstag");
        let v = classify_with(&raw, &Rules::default(), Some(&ocr));
        assert!(!v.sensitive, "{v:?}");
        // Empty OCR text (a blank page) is clean too, not a problem.
        let v = classify_with(&raw, &Rules::default(), Some(&read("")));
        assert!(!v.sensitive, "{v:?}");
    }

    #[test]
    fn ocr_text_of_an_image_is_classified() {
        let raw = with_attachment("image/png", "bescheid.png", b"\x89PNG\r\n\x1a\n");
        let v = classify_with(
            &raw,
            &Rules::default(),
            Some(&read(
                "Diagnose: Depression\nPatient: Max Muster, geb. 01.02.1980",
            )),
        );
        assert!(v.sensitive, "{v:?}");
        assert_eq!(v.categories, [category::HEALTH]);
        assert_eq!(
            v.findings[0].location.attachment.as_deref(),
            Some("bescheid.png")
        );
    }

    #[test]
    fn an_image_ocr_cannot_read_follows_images_sensitive() {
        let raw = with_attachment("image/jpeg", "foto.jpg", b"\xff\xd8\xff");
        let lenient = Rules::default();
        let strict = Rules::from_toml("[inspect]\nimages_sensitive = true\n").expect("rules");
        for failing in [None, Some(Fake::failing(OcrError::Unreadable))] {
            let ocr = failing.as_ref().map(|f| f as &dyn Ocr);
            assert!(!classify_with(&raw, &lenient, ocr).sensitive);
            let v = classify_with(&raw, &strict, ocr);
            assert_eq!(v.categories, [category::UNINSPECTABLE]);
        }
        // Read, an image counts by its text alone, whatever the setting.
        let v = classify_with(&raw, &strict, Some(&read("Viele Grüße vom Stadtfest")));
        assert!(!v.sensitive, "{v:?}");
    }

    #[test]
    fn an_image_in_a_zip_is_read_too() {
        let mut zip = Vec::new();
        {
            let mut w = zip::ZipWriter::new(std::io::Cursor::new(&mut zip));
            w.start_file("scan/seite1.png", zip::write::SimpleFileOptions::default())
                .expect("entry");
            std::io::Write::write_all(&mut w, b"\x89PNG\r\n\x1a\n").expect("write");
            w.finish().expect("zip");
        }
        let raw = with_attachment("application/zip", "akte.zip", &zip);
        let v = classify_with(&raw, &Rules::default(), Some(&read(STEUER_ID)));
        assert_eq!(v.categories, [category::TAX_ID]);
        assert_eq!(
            v.findings[0].location.attachment.as_deref(),
            Some("akte.zip/scan/seite1.png")
        );
    }
}
