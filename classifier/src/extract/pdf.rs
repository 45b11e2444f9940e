//! PDF text with lopdf. A password-protected PDF, or one lopdf cannot read, is a problem.

use crate::rules::Inspect;

/// What a PDF yielded.
pub(super) enum Pdf {
    /// The text of its pages.
    Text(String),
    /// Pages without any text: a scan.
    ImagesOnly,
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
    let text = doc
        .extract_text_with_limit(&pages, limits.max_entry_size)
        .map_err(|_| "PDF text could not be extracted".to_owned())?;
    if text.trim().is_empty() && !pages.is_empty() {
        return Ok(Pdf::ImagesOnly);
    }
    Ok(Pdf::Text(text))
}
