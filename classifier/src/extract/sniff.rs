//! What a part is by its bytes, whatever its label says.
//!
//! A sender controls Content-Type and file name; the receiving program (a PDF viewer, an
//! unzip tool, a browser's download) goes by the content. So a PDF labelled `text/plain`, a
//! ZIP named `.txt` or a gzip labelled `image/png` is read as what it is. Signatures from
//! the formats' specifications (ISO 32000-1 §7.5.2, PKWARE APPNOTE §4.3.7, RFC 1952 §2.3.1,
//! [MS-CFB] §2.2, PNG §5.2, JFIF, GIF89a, TIFF 6.0 §2, WebP RIFF container).

use memchr::memmem;

/// A format recognised by its signature.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Format {
    /// `%PDF-` within the first 1024 bytes (readers accept leading junk).
    Pdf,
    /// A ZIP holding an Office Open XML or OpenDocument document.
    Office,
    /// Any other ZIP archive.
    Zip,
    /// gzip (RFC 1952).
    Gzip,
    /// An archive or compression format we cannot open: 7z, RAR, bzip2, xz, Zstandard.
    OtherArchive,
    /// A Compound File Binary (OLE2): legacy `.doc`, `.xls`, `.ppt`, `.msg`.
    Ole,
    /// PNG, JPEG, GIF, TIFF, BMP or WebP.
    Image,
}

/// The format of `bytes` by its signature, `None` for anything else (text, unknown binary).
#[must_use]
pub(super) fn format(bytes: &[u8]) -> Option<Format> {
    let starts = |magic: &[u8]| bytes.starts_with(magic);
    if starts(b"PK\x03\x04") || starts(b"PK\x05\x06") {
        // OOXML: a `[Content_Types].xml` entry; ODF: the stored `mimetype` entry first.
        let head = &bytes[..bytes.len().min(64 * 1024)];
        let office = memmem::find(head, b"[Content_Types].xml").is_some()
            || memmem::find(
                &head[..head.len().min(100)],
                b"mimetypeapplication/vnd.oasis",
            )
            .is_some();
        return Some(if office { Format::Office } else { Format::Zip });
    }
    if starts(b"\x1f\x8b") {
        return Some(Format::Gzip);
    }
    if starts(b"7z\xBC\xAF\x27\x1C")
        || starts(b"Rar!\x1A\x07")
        || starts(b"BZh") && bytes.get(3).is_some_and(|b| (b'1'..=b'9').contains(b))
        || starts(b"\xFD7zXZ\x00")
        || starts(b"\x28\xB5\x2F\xFD")
    {
        return Some(Format::OtherArchive);
    }
    if starts(b"\xD0\xCF\x11\xE0\xA1\xB1\x1A\xE1") {
        return Some(Format::Ole);
    }
    if starts(b"\x89PNG\r\n\x1a\n")
        || starts(b"\xFF\xD8\xFF")
        || starts(b"GIF87a")
        || starts(b"GIF89a")
        || starts(b"II*\x00")
        || starts(b"MM\x00*")
        || starts(b"BM") && bytes.len() > 26 && bytes[6..10] == [0; 4]
        || starts(b"RIFF") && bytes.get(8..12) == Some(b"WEBP")
    {
        return Some(Format::Image);
    }
    if memmem::find(&bytes[..bytes.len().min(1024)], b"%PDF-").is_some() {
        return Some(Format::Pdf);
    }
    None
}

/// Whether `bytes` read as text: a UTF-16/32 byte-order mark, or (in the first 8 KiB) no
/// control characters but tab, line breaks, form feed and escape — which binary formats
/// have within their first bytes, and text in any 8-bit charset or UTF-8 does not.
#[must_use]
pub(super) fn is_text(bytes: &[u8]) -> bool {
    if bytes.starts_with(b"\xFF\xFE") || bytes.starts_with(b"\xFE\xFF") {
        return true;
    }
    bytes[..bytes.len().min(8192)]
        .iter()
        .all(|&b| b >= 0x20 && b != 0x7F || matches!(b, b'\t' | b'\n' | b'\r' | 0x0C | 0x1B))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures() {
        assert_eq!(format(b"%PDF-1.7\n"), Some(Format::Pdf));
        assert_eq!(format(b"junk\r\n%PDF-1.4"), Some(Format::Pdf));
        assert_eq!(format(b"PK\x03\x04rest"), Some(Format::Zip));
        assert_eq!(
            format(b"PK\x03\x04....[Content_Types].xml"),
            Some(Format::Office)
        );
        assert_eq!(format(b"\x1f\x8b\x08\x00"), Some(Format::Gzip));
        assert_eq!(format(b"BZh91AY"), Some(Format::OtherArchive));
        assert_eq!(
            format(b"\xD0\xCF\x11\xE0\xA1\xB1\x1A\xE1"),
            Some(Format::Ole)
        );
        assert_eq!(format(b"\x89PNG\r\n\x1a\n"), Some(Format::Image));
        assert_eq!(format(b"Guten Tag, BM 12"), None);
        assert_eq!(format(b"PKW Kennzeichen"), None);
    }

    #[test]
    fn text_by_its_bytes() {
        assert!(is_text("Grüße\r\n\tEnde".as_bytes()));
        assert!(is_text(b"Gr\xFC\xDFe")); // Windows-1252
        assert!(is_text(b"\xFF\xFEG\x00r\x00"));
        assert!(!is_text(b"\x00\x01\x02binary"));
        assert!(!is_text(b"abc\x7Fdef"));
    }
}
