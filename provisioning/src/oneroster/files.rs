//! Pure CSV parsing and writing, and the atomic folder swap of the OneRoster target.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::Path;

use crate::model::TargetName;
use crate::record::{bounded_name, ScannedEntry, MAX_ATTRIBUTE_NAME_BYTES};
use crate::target::ParseError;

use super::Row;

/// Files larger than this are not read (a leak scan reports the error).
const MAX_FILE_BYTES: u64 = 64 * 1024 * 1024;

/// Parses one CSV file with a header row into rows (column → value). Pure, for fuzzing.
pub fn parse_csv(bytes: &[u8]) -> Result<Vec<BTreeMap<String, String>>, ParseError> {
    let mut rdr = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(false)
        .from_reader(bytes);
    let headers: Vec<String> = rdr
        .headers()
        .map_err(|_| ParseError("CSV header"))?
        .iter()
        .map(|h| h.trim_start_matches('\u{feff}').to_string())
        .collect();
    // Each row gets a copy of the column names: a name longer than any OneRoster column
    // over many rows would be quadratic.
    if headers.iter().any(|h| h.len() > MAX_ATTRIBUTE_NAME_BYTES) {
        return Err(ParseError("CSV header"));
    }
    let mut out = Vec::new();
    for rec in rdr.records() {
        let rec = rec.map_err(|_| ParseError("CSV row"))?;
        out.push(
            headers
                .iter()
                .cloned()
                .zip(rec.iter().map(str::to_string))
                .collect(),
        );
    }
    Ok(out)
}

/// Writes rows under a header. Pure.
pub fn write_csv(columns: &[&str], rows: &[&Row]) -> Result<Vec<u8>, ParseError> {
    let mut w = csv::WriterBuilder::new()
        .terminator(csv::Terminator::CRLF)
        .from_writer(Vec::new());
    w.write_record(columns)
        .map_err(|_| ParseError("CSV output"))?;
    for r in rows {
        w.write_record(
            columns
                .iter()
                .map(|c| r.get(*c).map(String::as_str).unwrap_or("")),
        )
        .map_err(|_| ParseError("CSV output"))?;
    }
    w.into_inner().map_err(|_| ParseError("CSV output"))
}

pub(super) fn read_limited(path: &Path) -> std::io::Result<Vec<u8>> {
    let meta = std::fs::metadata(path)?;
    if meta.len() > MAX_FILE_BYTES {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "file too large",
        ));
    }
    std::fs::read(path)
}

pub(super) enum SwapError {
    Io(std::io::Error),
    NotOurs,
}

impl From<std::io::Error> for SwapError {
    fn from(e: std::io::Error) -> Self {
        SwapError::Io(e)
    }
}

fn fsync_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}

/// Writes `files` into a new sibling version folder and swaps the `dir` link to it.
pub(super) fn swap_in(dir: &Path, files: &[(String, Vec<u8>)]) -> Result<(), SwapError> {
    let parent = dir
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = dir
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or(SwapError::NotOurs)?;
    std::fs::create_dir_all(parent)?;
    let old_target = match std::fs::symlink_metadata(dir) {
        Ok(m) if m.file_type().is_symlink() => Some(std::fs::read_link(dir)?),
        Ok(m) if m.is_dir() => {
            // An empty directory made by an operator is taken over; anything else is not ours.
            if std::fs::read_dir(dir)?.next().is_some() {
                return Err(SwapError::NotOurs);
            }
            std::fs::remove_dir(dir)?;
            None
        }
        Ok(_) => return Err(SwapError::NotOurs),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(e.into()),
    };
    let tag = uuid::Uuid::new_v4().simple().to_string();
    let version = format!(".{name}.v-{tag}");
    let vdir = parent.join(&version);
    std::fs::create_dir(&vdir)?;
    for (file, bytes) in files {
        let mut f = std::fs::File::create(vdir.join(file))?;
        f.write_all(bytes)?;
        f.sync_all()?;
    }
    fsync_dir(&vdir)?;
    let link = parent.join(format!(".{name}.link-{tag}"));
    std::os::unix::fs::symlink(&version, &link)?;
    std::fs::rename(&link, dir)?;
    fsync_dir(parent)?;
    // Remove the previous version and any left behind by an interrupted write.
    let prefix = format!(".{name}.v-");
    for entry in std::fs::read_dir(parent)? {
        let entry = entry?;
        let fname = entry.file_name();
        let Some(f) = fname.to_str() else { continue };
        let old = old_target.as_deref().and_then(|p| p.to_str()) == Some(f);
        if f.starts_with(&prefix) && f != version && (old || entry.file_type()?.is_dir()) {
            std::fs::remove_dir_all(entry.path())?;
        }
    }
    Ok(())
}

/// One CSV file as scan entries, one per row (`file:row N`, N the line the row starts
/// on): every cell under `file.column`. The header is the first non-blank row. Rows that
/// do not parse as CSV with the header's width are still scanned cell by cell (the
/// reader is flexible here: a malformed row must not hide a leak). Pure, for fuzzing.
pub fn scan_csv_file(
    target: &TargetName,
    file: &str,
    bytes: &[u8],
    out: &mut Vec<ScannedEntry>,
) -> Result<(), ParseError> {
    let mut rdr = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(bytes);
    let stem = file.trim_end_matches(".csv");
    let header_col = format!("{stem}.header");
    // Column names, made once from the header (not once per row: a long header cell
    // over many rows would be quadratic) and bounded like every attribute name.
    let mut columns: Vec<String> = Vec::new();
    // The line a row starts on, and the byte up to which line ends were counted.
    let (mut line, mut counted_to) = (1usize, 0usize);
    for (n, rec) in rdr.byte_records().enumerate() {
        let rec = rec.map_err(|_| ParseError("CSV file"))?;
        let cells: Vec<String> = rec
            .iter()
            .map(|c| String::from_utf8_lossy(c).into_owned())
            .collect();
        if n == 0 {
            columns = cells
                .iter()
                .map(|h| {
                    let col = format!("{stem}.{}", h.trim_start_matches('\u{feff}'));
                    bounded_name(&col).to_string()
                })
                .collect();
            // The header itself is scanned too: anything can be planted anywhere.
        }
        // The row is named by the line it starts on, as an editor or a spreadsheet
        // shows it: the reader skips blank lines (a file may start with one) and a
        // quoted cell may span lines, so the record count is not the line. A record's
        // position is where the one before it ended (before any blank lines, which the
        // reader's own line count then misses): the line is counted here, from the
        // record's first byte that is not a line end.
        let mut start = rec
            .position()
            .and_then(|p| usize::try_from(p.byte()).ok())
            .unwrap_or(counted_to)
            .max(counted_to);
        while matches!(bytes.get(start), Some(b'\r' | b'\n')) {
            start += 1;
        }
        line += bytes
            .get(counted_to..start)
            .map_or(0, |b| b.iter().filter(|&&c| c == b'\n').count());
        counted_to = start;
        let mut e = ScannedEntry::new(target.clone(), format!("{file}:row {line}"));
        e.label_attribute = Some(bounded_name(&format!("{stem}.sourcedId")).to_string());
        for (i, v) in cells.iter().enumerate() {
            let other;
            let col: &str = match (n, columns.get(i)) {
                (0, _) => &header_col,
                (_, Some(c)) => c,
                (_, None) => {
                    other = format!("{stem}.column{}", i + 1);
                    &other
                }
            };
            e.push(col, v);
        }
        out.push(e);
    }
    Ok(())
}
