//! PDF text with lopdf. A password-protected PDF, or one lopdf cannot read, is a problem.

use crate::rules::Inspect;

/// A page with less text than this (characters, without surrounding white space) and a large
/// image is a scan with a stamp: scanners and fax software print a footer ("Gescannt am …",
/// a page number) over the image. A letter with a logo has far more text.
const SHORT_TEXT: usize = 200;
/// An image of at least this many pixels is large enough to hold a document: a third of an
/// A4 page at 150 dpi. Logos and signature images are far smaller.
const LARGE_IMAGE: i64 = 700_000;

/// What a PDF yielded.
pub(super) enum Pdf {
    /// The text of its pages; every page has some.
    Text(String),
    /// Pages whose content only OCR can read — without any text (a scan, or text drawn as
    /// shapes), or a large image under a line or two of text (a scan with a stamped footer)
    /// — and the text of all pages (empty for a plain scan throughout).
    ImagesOnly {
        /// Text of the pages that have some.
        text: String,
        /// The pages to read with OCR, 1-based, ascending.
        pages: Vec<u32>,
    },
}

pub(super) fn text(bytes: &[u8], limits: &Inspect) -> Result<Pdf, String> {
    let doc = lopdf::Document::load_mem(bytes).map_err(|e| match e {
        lopdf::Error::Decryption(_) | lopdf::Error::InvalidPassword => {
            "password-protected PDF".to_owned()
        }
        _ => "unreadable PDF".to_owned(),
    })?;
    if doc.is_encrypted() && doc.authenticate_password("").is_err() {
        return Err("password-protected PDF".to_owned());
    }
    let pages = doc.get_pages();
    if pages.len() > limits.max_pdf_pages {
        return Err("limit reached: PDF has too many pages".to_owned());
    }
    // Page by page: a scanned page between typed ones (a cover letter with a scanned
    // certificate behind it) must not hide behind the text of the others.
    let mut text = String::new();
    let mut scanned = Vec::new();
    for (&page, &id) in &pages {
        let page_text = doc
            .extract_text_with_limit(&[page], limits.max_entry_size)
            .map_err(|_| "PDF text could not be extracted".to_owned())?;
        let length = page_text.trim().chars().count();
        if length == 0 || (length < SHORT_TEXT && has_large_image(&doc, id)) {
            scanned.push(page);
        }
        text.push_str(&page_text);
    }
    if scanned.is_empty() {
        Ok(Pdf::Text(text))
    } else {
        Ok(Pdf::ImagesOnly {
            text,
            pages: scanned,
        })
    }
}

/// Whether the page draws an image of at least [`LARGE_IMAGE`] pixels (as declared; the
/// image is not decoded). Resources lopdf cannot list count as none: the page has text then.
fn has_large_image(doc: &lopdf::Document, page: lopdf::ObjectId) -> bool {
    doc.get_page_images(page).is_ok_and(|images| {
        images
            .iter()
            .any(|i| i.width.saturating_mul(i.height) >= LARGE_IMAGE)
    })
}
