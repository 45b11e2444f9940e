//! ZIP archives: every entry read within the limits; an encrypted or unreadable entry is a
//! problem of its own, so the rest of the archive is still inspected.

use std::io::{Cursor, Read};

use crate::rules::Inspect;

/// An entry's name and bytes, or its name and why it could not be read.
pub(super) type Entry = Result<(String, Vec<u8>), (String, String)>;

/// A ZIP package in memory.
pub(super) type Zip<'a> = zip::ZipArchive<Cursor<&'a [u8]>>;

/// Opens a ZIP package (`what` names it in errors) and checks its entry count.
pub(super) fn open<'a>(bytes: &'a [u8], limits: &Inspect, what: &str) -> Result<Zip<'a>, String> {
    let zip = zip::ZipArchive::new(Cursor::new(bytes)).map_err(|_| format!("unreadable {what}"))?;
    if zip.len() > limits.max_zip_entries {
        return Err(format!("limit reached: {what} has too many entries"));
    }
    Ok(zip)
}

/// The name of entry `index` (empty when not decodable).
pub(super) fn entry_name(zip: &mut Zip<'_>, index: usize) -> String {
    zip.name_for_index(index)
        .and_then(Result::ok)
        .map(|n| n.into_owned())
        .unwrap_or_default()
}

pub(super) fn entries(bytes: &[u8], limits: &Inspect) -> Result<Vec<Entry>, String> {
    let mut zip = open(bytes, limits, "ZIP archive")?;
    let mut out = Vec::new();
    for i in 0..zip.len() {
        let name = entry_name(&mut zip, i);
        match read_entry(&mut zip, i, limits.max_entry_size) {
            Ok(Some(data)) => out.push(Ok((name, data))),
            Ok(None) => {}
            Err(reason) => out.push(Err((name, reason))),
        }
    }
    Ok(out)
}

/// `Ok(None)` for a directory.
pub(super) fn read_entry(
    zip: &mut Zip<'_>,
    index: usize,
    max: usize,
) -> Result<Option<Vec<u8>>, String> {
    let entry = zip.by_index(index).map_err(|e| match e {
        zip::result::ZipError::UnsupportedArchive(m)
            if m.contains("assword") || m.contains("ncrypt") =>
        {
            "encrypted ZIP entry".to_owned()
        }
        _ => "unreadable ZIP entry".to_owned(),
    })?;
    if entry.encrypted() {
        return Err("encrypted ZIP entry".to_owned());
    }
    if entry.is_dir() {
        return Ok(None);
    }
    let mut data = Vec::new();
    // Never trust the declared size: read at most one byte past the limit.
    entry
        .take(max as u64 + 1)
        .read_to_end(&mut data)
        .map_err(|_| "unreadable ZIP entry".to_owned())?;
    if data.len() > max {
        return Err("limit reached: ZIP entry too large to inspect".to_owned());
    }
    Ok(Some(data))
}
