//! PDF text with lopdf. A password-protected PDF, or one lopdf cannot read, is a problem.

use crate::rules::Inspect;

/// What a PDF yielded.
pub(super) enum Pdf {
    /// The text of its pages; every page has some.
    Text(String),
    /// Pages without any text — scans, or text drawn as shapes — whose content only OCR can
    /// read, and the text of the other pages (empty for a scan throughout).
    ImagesOnly {
        /// Text of the pages that have some.
        text: String,
        /// The pages without text, 1-based, ascending.
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
    let pages: Vec<u32> = doc.get_pages().keys().copied().collect();
    if pages.len() > limits.max_pdf_pages {
        return Err("limit reached: PDF has too many pages".to_owned());
    }
    // Page by page: a scanned page between typed ones (a cover letter with a scanned
    // certificate behind it) must not hide behind the text of the others.
    let mut text = String::new();
    let mut without_text = Vec::new();
    for page in pages {
        let page_text = doc
            .extract_text_with_limit(&[page], limits.max_entry_size)
            .map_err(|_| "PDF text could not be extracted".to_owned())?;
        if page_text.trim().is_empty() {
            without_text.push(page);
        } else {
            text.push_str(&page_text);
        }
    }
    if without_text.is_empty() {
        Ok(Pdf::Text(text))
    } else {
        Ok(Pdf::ImagesOnly {
            text,
            pages: without_text,
        })
    }
}
