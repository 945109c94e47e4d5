//! Output: the `resources`, `exports` and `findings` tables as Parquet (typed columns, UTC
//! timestamps, written with polars) or CSV, `manifest.json`, and the `--reconstruct` folders.
//! Everything is written into a staging folder, readable by the owner only, and renamed into
//! place once complete, so a failed run never leaves a mix of old and new files.

use std::fs::{self, File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};


use crate::error::{Error, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    Parquet,
    Csv,
}

impl Format {
    pub fn extension(self) -> &'static str {
        match self {
            Format::Parquet => "parquet",
            Format::Csv => "csv",
        }
    }
}

/// The type of a column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Text,
    /// Nanoseconds since the epoch, UTC.
    Time,
    Int,
    Bool,
}

/// One cell, borrowed from the table or from a scratch buffer.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Cell<'a> {
    Null,
    Text(&'a str),
    Time(i64),
    Int(i64),
    Bool(bool),
}

/// Anything that can be written as a table: a schema and cells by (row, column). The big
/// `resources` table is computed cell by cell from the audit, never stored as strings.
pub trait Rows: Sync {
    fn schema(&self) -> &[(&'static str, Kind)];
    fn len(&self) -> usize;
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// The cell at (row, col); text built on the fly goes into `scratch`.
    fn cell<'a>(&'a self, row: usize, col: usize, scratch: &'a mut String) -> Cell<'a>;
    /// Appends the CSV text of some rows: by default cell by cell; a big table may do the same
    /// faster, byte for byte.
    fn csv_rows(&self, rows: std::ops::Range<usize>, buf: &mut Vec<u8>) {
        csv_rows_by_cell(self, rows, buf)
    }
    /// A hint that `row` will be read soon (its cells may be costly to reach); by default nothing.
    fn prefetch_row(&self, _row: usize) {}
}

/// A column's values, stored (for the small tables).
#[derive(Debug, Clone)]
pub enum Values {
    Text(Vec<Option<String>>),
    Time(Vec<Option<i64>>),
    Int(Vec<Option<i64>>),
    Bool(Vec<Option<bool>>),
}

#[derive(Debug, Clone)]
pub struct ColumnData {
    pub name: &'static str,
    pub values: Values,
}

/// A stored table.
#[derive(Debug, Clone, Default)]
pub struct Table {
    pub columns: Vec<ColumnData>,
    schema: Vec<(&'static str, Kind)>,
}

impl Table {
    pub fn new(columns: Vec<ColumnData>) -> Table {
        let schema = columns
            .iter()
            .map(|c| {
                let k = match c.values {
                    Values::Text(_) => Kind::Text,
                    Values::Time(_) => Kind::Time,
                    Values::Int(_) => Kind::Int,
                    Values::Bool(_) => Kind::Bool,
                };
                (c.name, k)
            })
            .collect();
        Table { columns, schema }
    }
}

impl Values {
    pub fn len(&self) -> usize {
        match self {
            Values::Text(v) => v.len(),
            Values::Time(v) | Values::Int(v) => v.len(),
            Values::Bool(v) => v.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Rows for Table {
    fn schema(&self) -> &[(&'static str, Kind)] {
        &self.schema
    }
    fn len(&self) -> usize {
        self.columns.first().map(|c| c.values.len()).unwrap_or(0)
    }
    fn cell<'a>(&'a self, row: usize, col: usize, _scratch: &'a mut String) -> Cell<'a> {
        match &self.columns[col].values {
            Values::Text(v) => v[row].as_deref().map(Cell::Text).unwrap_or(Cell::Null),
            Values::Time(v) => v[row].map(Cell::Time).unwrap_or(Cell::Null),
            Values::Int(v) => v[row].map(Cell::Int).unwrap_or(Cell::Null),
            Values::Bool(v) => v[row].map(Cell::Bool).unwrap_or(Cell::Null),
        }
    }
}

/// Creates a file readable and writable by the owner only.
pub fn create_private(path: &Path) -> Result<File> {
    let _creating = IN_PROGRESS.lock().unwrap_or_else(|p| p.into_inner());
    let mut o = OpenOptions::new();
    o.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        o.mode(0o600);
    }
    o.open(path).map_err(|e| Error::output(path, e))
}

/// Creates a folder accessible by the owner only.
pub fn create_private_dir(path: &Path) -> Result<()> {
    let _creating = IN_PROGRESS.lock().unwrap_or_else(|p| p.into_inner());
    let mut b = fs::DirBuilder::new();
    b.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        b.mode(0o700);
    }
    b.create(path).map_err(|e| Error::output(path, e))
}

pub fn write_table(table: &dyn Rows, path: &Path, format: Format) -> Result<()> {
    match format {
        Format::Csv => write_csv(table, path),
        Format::Parquet => write_parquet(table, path),
    }
}

/// Rows formatted per task when writing CSV; a few tasks run at once, so memory stays bounded.
const CSV_CHUNK: usize = 4 * 1024;

/// Writes a table as CSV (RFC 4180 quoting where needed, `\n` line ends — what the csv crate
/// writes). Batches of rows are formatted in parallel while the previous batch is written.
fn write_csv(table: &dyn Rows, path: &Path) -> Result<()> {
    use rayon::prelude::*;
    let f = create_private(path)?;
    let mut out = BufWriter::with_capacity(1 << 20, f);
    let mut header = Vec::new();
    for (i, (name, _)) in table.schema().iter().enumerate() {
        if i > 0 {
            header.push(b',');
        }
        push_csv_field(&mut header, name.as_bytes());
    }
    header.push(b'\n');
    out.write_all(&header).map_err(|e| Error::output(path, e))?;
    let batch = CSV_CHUNK * 2 * rayon::current_num_threads().max(1);
    let format_batch = |start: usize| -> Vec<Vec<u8>> {
        let end = (start + batch).min(table.len());
        (start..end).step_by(CSV_CHUNK).collect::<Vec<_>>().into_par_iter().map(|from| {
            let rows = from..(from + CSV_CHUNK).min(end);
            let mut buf = Vec::with_capacity(rows.len() * 256);
            table.csv_rows(rows, &mut buf);
            buf
        })
        .collect()
    };
    let mut ready = format_batch(0);
    let mut next = batch;
    loop {
        let more = next < table.len();
        let (written, following) = rayon::join(
            || ready.iter().try_for_each(|chunk| out.write_all(chunk)),
            || if more { format_batch(next) } else { Vec::new() },
        );
        written.map_err(|e| Error::output(path, e))?;
        start_writeback(&out);
        if !more {
            break;
        }
        ready = following;
        next += batch;
    }
    finish_file(out, path)
}

/// Appends the CSV text of some rows of a table, cell by cell.
pub fn csv_rows_by_cell<T: Rows + ?Sized>(table: &T, rows: std::ops::Range<usize>, buf: &mut Vec<u8>) {
    let mut scratch = String::new();
    let columns = table.schema().len();
    for row in rows {
        for col in 0..columns {
            if col > 0 {
                buf.push(b',');
            }
            scratch.clear();
            push_csv_cell(buf, table.cell(row, col, &mut scratch));
        }
        buf.push(b'\n');
    }
}

/// One cell as a CSV field.
pub(crate) fn push_csv_cell(buf: &mut Vec<u8>, cell: Cell) {
    match cell {
        Cell::Null => {}
        Cell::Text(t) => push_csv_field(buf, t.as_bytes()),
        Cell::Time(t) => crate::timestamp::push_rfc3339(t, buf),
        Cell::Int(n) => push_decimal(buf, n),
        Cell::Bool(b) => buf.extend_from_slice(if b { b"true" } else { b"false" }),
    }
}

/// One CSV field: as it is, or quoted with inner quotes doubled when it holds a comma, quote or
/// line break (the csv crate's `QuoteStyle::Necessary`).
pub(crate) fn push_csv_field(buf: &mut Vec<u8>, field: &[u8]) {
    if !needs_quotes(field) {
        buf.extend_from_slice(field);
        return;
    }
    buf.push(b'"');
    for &b in field {
        if b == b'"' {
            buf.push(b'"');
        }
        buf.push(b);
    }
    buf.push(b'"');
}

/// Whether a field holds a comma, quote or line break.
#[inline]
fn needs_quotes(field: &[u8]) -> bool {
    let special = |b: &u8| matches!(b, b',' | b'"' | b'\n' | b'\r');
    let mut chunks = field.chunks_exact(16);
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::*;
        for chunk in &mut chunks {
            // SAFETY: SSE2 is part of x86_64; the chunk holds 16 bytes for the unaligned load.
            let found = unsafe {
                let v = _mm_loadu_si128(chunk.as_ptr() as *const __m128i);
                let eq = |c: u8| _mm_cmpeq_epi8(v, _mm_set1_epi8(c as i8));
                _mm_movemask_epi8(_mm_or_si128(_mm_or_si128(eq(b','), eq(b'"')), _mm_or_si128(eq(b'\n'), eq(b'\r'))))
            };
            if found != 0 {
                return true;
            }
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    for chunk in &mut chunks {
        if chunk.iter().any(special) {
            return true;
        }
    }
    chunks.remainder().iter().any(special)
}

/// A decimal integer, without going through `fmt`.
pub(crate) fn push_decimal(buf: &mut Vec<u8>, n: i64) {
    if n < 0 {
        buf.push(b'-');
    }
    buf.extend_from_slice(Decimal::of(n.unsigned_abs()).as_bytes());
}

/// The decimal digits of a number, formatted on the stack (the resources table writes two per
/// row; `fmt` is several times slower).
pub(crate) struct Decimal {
    digits: [u8; 20],
    start: usize,
}

impl Decimal {
    pub(crate) fn of(mut v: u64) -> Decimal {
        const PAIRS: &[u8; 200] = b"0001020304050607080910111213141516171819\
            2021222324252627282930313233343536373839\
            4041424344454647484950515253545556575859\
            6061626364656667686970717273747576777879\
            8081828384858687888990919293949596979899";
        let mut digits = [0u8; 20];
        let mut start = digits.len();
        // Two digits per division.
        while v >= 100 {
            let pair = (v % 100) as usize * 2;
            v /= 100;
            start -= 2;
            digits[start..start + 2].copy_from_slice(&PAIRS[pair..pair + 2]);
        }
        if v >= 10 {
            start -= 2;
            digits[start..start + 2].copy_from_slice(&PAIRS[v as usize * 2..v as usize * 2 + 2]);
        } else {
            start -= 1;
            digits[start] = b'0' + v as u8;
        }
        Decimal { digits, start }
    }

    pub(crate) fn as_bytes(&self) -> &[u8] {
        &self.digits[self.start..]
    }

    /// Appends the digits to a string (char by char: no UTF-8 check of bytes known to be digits).
    pub(crate) fn push_to(&self, s: &mut String) {
        s.extend(self.as_bytes().iter().map(|&d| d as char));
    }
}

/// Asks the kernel to start writing what reached the file so far (not waiting for it), so the
/// fsync at the end finds most of a big table on disk already. Linux only; a hint, so a
/// failure is ignored (the fsync still decides).
fn start_writeback(out: &BufWriter<File>) {
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::AsRawFd;
        // SAFETY: the descriptor is open for the life of `out`; the call reads no memory.
        unsafe {
            libc::sync_file_range(out.get_ref().as_raw_fd(), 0, 0, libc::SYNC_FILE_RANGE_WRITE);
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = out;
}

pub(crate) fn finish_file(mut w: BufWriter<File>, path: &Path) -> Result<()> {
    w.flush().map_err(|e| Error::output(path, e))?;
    let f = w.into_inner().map_err(|e| Error::output(path, e.error()))?;
    f.sync_all().map_err(|e| Error::output(path, e))
}

#[cfg(feature = "parquet")]
mod parquet;
#[cfg(feature = "parquet")]
pub use parquet::to_dataframe;

#[cfg(feature = "parquet")]
fn write_parquet(table: &dyn Rows, path: &Path) -> Result<()> {
    parquet::write(table, path)
}

#[cfg(not(feature = "parquet"))]
fn write_parquet(_table: &dyn Rows, path: &Path) -> Result<()> {
    Err(Error::output(path, "this build has no Parquet support (the `parquet` feature is off): use --format csv"))
}

/// A folder being written: created under a temporary name beside its destination and renamed
/// into place by [`Staging::commit`]. Dropped without commit, it is removed.
pub struct Staging {
    pub dir: PathBuf,
    dest: PathBuf,
    committed: bool,
}

/// Staging folders being written, removed by the interrupt handler.
static IN_PROGRESS: std::sync::Mutex<Vec<PathBuf>> = std::sync::Mutex::new(Vec::new());

/// On SIGINT/SIGTERM: remove every staging folder, so an interrupted run leaves the previous
/// output or none, and exit with status 130.
pub fn remove_staging_on_interrupt() {
    let _ = ctrlc::set_handler(|| {
        // The lock is held until exit: no file can be created in a staging folder meanwhile
        // (creation takes the same lock), so removal cannot race with writing.
        let dirs = IN_PROGRESS.lock().unwrap_or_else(|p| p.into_inner());
        for d in dirs.iter() {
            let _ = fs::remove_dir_all(d);
        }
        eprintln!("bulk-audit: interrupted; no output was written");
        std::process::exit(130);
    });
}

fn forget(dir: &Path) {
    if let Ok(mut dirs) = IN_PROGRESS.lock() {
        dirs.retain(|d| d != dir);
    }
}

/// The file that marks a folder as bulk-audit's own output, safe to replace.
pub const MARKER: &str = "manifest.json";

impl Staging {
    /// Checks that `dest` may be written (absent, empty, a previous bulk-audit output, or
    /// `force`), then creates the staging folder.
    pub fn begin(dest: &Path, force: bool) -> Result<Staging> {
        if dest.exists() {
            if !dest.is_dir() {
                return Err(Error::Usage(format!("{} exists and is not a folder", dest.display())));
            }
            let empty = fs::read_dir(dest).map_err(|e| Error::output(dest, e))?.next().is_none();
            let ours = dest.join(MARKER).is_file() || dest.join(".bulk-audit").is_file();
            if !empty && !ours && !force {
                return Err(Error::Usage(format!(
                    "{} is not empty and holds no previous bulk-audit output: choose another folder or pass --force to replace it",
                    dest.display()
                )));
            }
        }
        let name = dest.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "out".into());
        let parent = dest.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
        create_private_dir(parent)?;
        let dir = parent.join(format!(".{name}.partial-{}", std::process::id()));
        if dir.exists() {
            fs::remove_dir_all(&dir).map_err(|e| Error::output(&dir, e))?;
        }
        if let Ok(mut dirs) = IN_PROGRESS.lock() {
            dirs.push(dir.clone());
        }
        create_private_dir(&dir)?;
        Ok(Staging { dir, dest: dest.to_path_buf(), committed: false })
    }

    /// Moves the finished folder into place, replacing what was there.
    pub fn commit(mut self) -> Result<()> {
        let old = self.dir.with_file_name(format!(".{}.old-{}", self.dest.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default(), std::process::id()));
        let had_old = self.dest.exists();
        {
            // An interrupt waits for both renames: it sees the old output or the new one.
            let mut dirs = IN_PROGRESS.lock().unwrap_or_else(|p| p.into_inner());
            if had_old {
                fs::rename(&self.dest, &old).map_err(|e| Error::output(&self.dest, e))?;
            }
            fs::rename(&self.dir, &self.dest).map_err(|e| Error::output(&self.dest, e))?;
            self.committed = true;
            dirs.retain(|d| d != &self.dir);
        }
        if had_old {
            fs::remove_dir_all(&old).map_err(|e| Error::output(&old, e))?;
        }
        Ok(())
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        if !self.committed {
            let _ = fs::remove_dir_all(&self.dir);
            forget(&self.dir);
        }
    }
}

/// Writes `text` to a new private file.
pub fn write_text(path: &Path, text: &str) -> Result<()> {
    let f = create_private(path)?;
    let mut w = BufWriter::new(f);
    w.write_all(text.as_bytes()).map_err(|e| Error::output(path, e))?;
    finish_file(w, path)
}

/// A name safe for a folder: letters, digits, `.`, `-`, `_`; anything else becomes `_`.
pub fn safe_name(s: &str) -> String {
    let mut out: String = s.chars().map(|c| if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') { c } else { '_' }).collect();
    if out.is_empty() || out.starts_with('.') {
        out.insert(0, '_');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The hand-written CSV encoder writes what the csv crate writes.
    #[test]
    fn csv_fields_match_the_csv_crate() {
        let fields = ["plain", "", "a,b", "say \"hi\"", "two\nlines", "cr\rhere", "\"", ",", "caf\u{e9}", " spaced ", "=1+2", "-12",
            // Longer than one 16-byte chunk: the special byte in the first chunk, a later one, the tail.
            "0123456789abcde,0123456789abcdef", "0123456789abcdef0123456789abcdef\"x", "0123456789abcdef0123456789abcdef0123456789",
            "0123456789abcdef0123456789abcde\r", "\n123456789abcdef0123456789abcdef", "0123456789abcdef"];
        let mut ours = Vec::new();
        let mut theirs = csv::WriterBuilder::new().terminator(csv::Terminator::Any(b'\n')).from_writer(Vec::new());
        for row in fields.chunks(3) {
            for (i, f) in row.iter().enumerate() {
                if i > 0 {
                    ours.push(b',');
                }
                push_csv_field(&mut ours, f.as_bytes());
            }
            ours.push(b'\n');
            theirs.write_record(row).unwrap();
        }
        assert_eq!(String::from_utf8(ours).unwrap(), String::from_utf8(theirs.into_inner().unwrap()).unwrap());
    }

    #[test]
    fn decimals() {
        for n in [0i64, 7, 9, 10, 99, 100, 101, 999, 1000, 12345, 1234567890, -1, -45, i64::MAX, i64::MIN] {
            let mut buf = Vec::new();
            push_decimal(&mut buf, n);
            assert_eq!(String::from_utf8(buf).unwrap(), n.to_string());
        }
    }

    #[test]
    fn safe_names() {
        assert_eq!(safe_name("a/b:c"), "a_b_c");
        assert_eq!(safe_name(".."), "_..");
    }
}
