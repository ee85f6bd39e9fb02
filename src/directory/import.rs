//! `mes directory import FILE`: the extract (a `.zip` holding the `.txt`, or
//! the `.txt` itself) read one line at a time, written in batches into a new
//! generation, which is put in force at the end in one transaction. Memory
//! is one batch and one line, whatever the size of the extract; a malformed
//! line is reported (its number and the reason) and skipped.

use std::io::{BufRead, BufReader, Read};
use std::path::Path;

use super::{HEADER_START, LineError, parse_line, search_text};
use crate::store::directory::{BATCH_ROWS, DirectoryRow};
use crate::store::{Store, StoreError};

/// The longest line accepted (a real line is well under 1 KiB).
const MAX_LINE: usize = 16 * 1024;

/// Why an import stopped (the directory in force is then unchanged).
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// The file could not be read.
    #[error("reading the extract: {0}")]
    Io(#[from] std::io::Error),
    /// The zip could not be read, or holds no `.txt`.
    #[error("reading the zip: {0}")]
    Zip(String),
    /// The first line is not the extract's header.
    #[error("not an Extraction_Correspondance_MSSante file (header expected)")]
    Header,
    /// No line could be imported: the directory in force is kept.
    #[error("no valid line: the directory in force is kept")]
    Empty,
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What an import did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    /// Data lines read (header excluded).
    pub lines: u64,
    /// Entries now in force.
    pub entries: i64,
    /// Lines refused.
    pub malformed: u64,
}

/// Imports the extract at `path` (zip or text); `report` hears of each
/// malformed line (1-based line number in the text, reason).
pub async fn import_file(
    store: &Store,
    path: &Path,
    report: &mut dyn FnMut(u64, &LineError),
) -> Result<Summary, ImportError> {
    let file = std::fs::File::open(path)?;
    let is_zip = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("zip"));
    if !is_zip {
        return import(store, BufReader::new(file), report).await;
    }
    let mut archive = zip::ZipArchive::new(file).map_err(|e| ImportError::Zip(e.to_string()))?;
    let index = (0..archive.len())
        .find(|&i| {
            archive
                .name_for_index(i)
                .is_some_and(|n| n.to_ascii_lowercase().ends_with(".txt"))
        })
        .ok_or_else(|| ImportError::Zip("no .txt entry".into()))?;
    let entry = archive
        .by_index(index)
        .map_err(|e| ImportError::Zip(e.to_string()))?;
    import(store, BufReader::new(entry), report).await
}

/// Reads one line into `buf` (without its end), at most [`MAX_LINE`] octets
/// kept; Ok(None) at the end, Ok(Some(false)) for a line too long.
fn next_line(reader: &mut impl BufRead, buf: &mut Vec<u8>) -> std::io::Result<Option<bool>> {
    buf.clear();
    let mut fits = true;
    let mut any = false;
    loop {
        let chunk = reader.fill_buf()?;
        if chunk.is_empty() {
            return Ok(any.then_some(fits));
        }
        any = true;
        let (part, done) = match memchr::memchr(b'\n', chunk) {
            Some(i) => (&chunk[..i], Some(i + 1)),
            None => (chunk, None),
        };
        if buf.len() + part.len() <= MAX_LINE {
            buf.extend_from_slice(part);
        } else {
            fits = false;
        }
        let used = done.unwrap_or(chunk.len());
        reader.consume(used);
        if done.is_some() {
            if buf.last() == Some(&b'\r') {
                buf.pop();
            }
            return Ok(Some(fits));
        }
    }
}

/// Imports the extract read from `reader` (see [`import_file`]).
pub async fn import<R: Read>(
    store: &Store,
    mut reader: BufReader<R>,
    report: &mut dyn FnMut(u64, &LineError),
) -> Result<Summary, ImportError> {
    let mut buf = Vec::with_capacity(1024);
    match next_line(&mut reader, &mut buf)? {
        Some(true) => {
            let header = String::from_utf8_lossy(&buf);
            let header = header.trim_start_matches('\u{feff}');
            let compact: String = header
                .split('|')
                .map(str::trim)
                .collect::<Vec<_>>()
                .join("|");
            if !compact.starts_with(HEADER_START) {
                return Err(ImportError::Header);
            }
        }
        _ => return Err(ImportError::Header),
    }
    let generation = store.directory_begin().await?;
    let mut summary = Summary::default();
    let mut batch: Vec<(DirectoryRow, String)> = Vec::with_capacity(BATCH_ROWS);
    let mut written = 0u64;
    let mut number = 1u64;
    while let Some(fits) = next_line(&mut reader, &mut buf)? {
        number += 1;
        if buf.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        summary.lines += 1;
        let parsed = if !fits {
            Err(LineError::TooLong)
        } else {
            std::str::from_utf8(&buf)
                .map_err(|_| LineError::Encoding)
                .and_then(parse_line)
        };
        match parsed {
            Ok(row) => {
                let search = search_text(&row);
                batch.push((row, search));
                if batch.len() == BATCH_ROWS {
                    written += store.directory_insert(generation, &batch).await?;
                    batch.clear();
                }
            }
            Err(e) => {
                summary.malformed += 1;
                report(number, &e);
            }
        }
    }
    written += store.directory_insert(generation, &batch).await?;
    if written == 0 {
        store.directory_begin().await?;
        return Err(ImportError::Empty);
    }
    summary.entries = store.directory_switch(generation).await?;
    Ok(summary)
}
