//! CSV output: RFC 4180 quoting where needed and `\n` line ends (what the csv crate writes),
//! rows formatted in parallel while the previous batch is written, numbers without `fmt`.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;

use super::{create_private, Cell, Rows};
use crate::error::{Error, Result};

/// Rows formatted per task when writing CSV; a few tasks run at once, so memory stays bounded.
const CSV_CHUNK: usize = 4 * 1024;

/// A whole (small) table as CSV text, header first: what [`write_csv`] writes to a file.
pub(crate) fn csv_text(table: &dyn Rows, buf: &mut Vec<u8>) {
    push_header(table, buf);
    table.csv_rows(0..table.len(), buf);
}

fn push_header(table: &dyn Rows, buf: &mut Vec<u8>) {
    for (i, (name, _)) in table.schema().iter().enumerate() {
        if i > 0 {
            buf.push(b',');
        }
        push_csv_field(buf, name.as_bytes());
    }
    buf.push(b'\n');
}

/// Writes a table as CSV (RFC 4180 quoting where needed, `\n` line ends — what the csv crate
/// writes). Batches of rows are formatted in parallel while the previous batch is written.
pub(super) fn write_csv(table: &dyn Rows, path: &Path) -> Result<()> {
    use rayon::prelude::*;
    let f = create_private(path)?;
    let mut out = BufWriter::with_capacity(1 << 20, f);
    let mut header = Vec::new();
    push_header(table, &mut header);
    out.write_all(&header).map_err(|e| Error::output(path, e))?;
    // Hashed as written, beside the formatting of the next rows: SHA256SUMS need not read the
    // file again.
    let mut sha = <sha2::Sha256 as sha2::Digest>::new();
    sha2::Digest::update(&mut sha, &header);
    let batch = CSV_CHUNK * 2 * rayon::current_num_threads().max(1);
    let format_batch = |start: usize| -> Vec<Vec<u8>> {
        let end = (start + batch).min(table.len());
        (start..end)
            .step_by(CSV_CHUNK)
            .collect::<Vec<_>>()
            .into_par_iter()
            .map(|from| {
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
            || {
                ready.iter().try_for_each(|chunk| {
                    sha2::Digest::update(&mut sha, chunk);
                    out.write_all(chunk)
                })
            },
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
    finish_file(out, path)?;
    super::checksums::record(path, sha2::Digest::finalize(sha).as_slice());
    Ok(())
}

/// Appends the CSV text of some rows of a table, cell by cell.
pub(crate) fn csv_rows_by_cell<T: Rows + ?Sized>(table: &T, rows: std::ops::Range<usize>, buf: &mut Vec<u8>) {
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
        Cell::List(items) => {
            let mut sep = [0u8; 4];
            push_csv_field(buf, items.join(super::LIST_SEPARATOR.encode_utf8(&mut sep)).as_bytes())
        }
    }
}

/// Whether a spreadsheet would read a text cell as a formula (or it starts with the quote that
/// marks one as neutralised): `=`, `+`, `-`, `@`, a tab, a carriage return or `'` first.
#[inline]
pub(crate) fn formula_like(field: &[u8]) -> bool {
    matches!(field.first(), Some(b'=' | b'+' | b'-' | b'@' | b'\t' | b'\r' | b'\''))
}

/// A text cell as a spreadsheet may open it: one `'` before a formula-like cell (Kibana's
/// convention), so `=HYPERLINK(…)` from a log is shown, never evaluated. Reversible: bulk-audit's
/// readers strip exactly one (`unneutralised`). The writers do it in place (`push_csv_field`);
/// this is the rule they are tested against.
#[cfg(test)]
pub(crate) fn neutralised(field: &str) -> std::borrow::Cow<'_, str> {
    if formula_like(field.as_bytes()) {
        format!("'{field}").into()
    } else {
        field.into()
    }
}

/// A cell read back from a CSV bulk-audit wrote: the one `'` it put before a formula-like cell
/// taken off.
pub(crate) fn unneutralised(field: &str) -> &str {
    field.strip_prefix('\'').unwrap_or(field)
}

/// One CSV text field: neutralised where a spreadsheet would evaluate it (one `'` before it), then
/// as it is, or quoted with inner quotes doubled when it holds a comma, quote or line break (the
/// csv crate's `QuoteStyle::Necessary`).
pub(crate) fn push_csv_field(buf: &mut Vec<u8>, field: &[u8]) {
    let quoted = needs_quotes(field);
    if quoted {
        buf.push(b'"');
    }
    if formula_like(field) {
        buf.push(b'\'');
    }
    if !quoted {
        buf.extend_from_slice(field);
        return;
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The hand-written CSV encoder writes what the csv crate writes.
    #[test]
    fn csv_fields_match_the_csv_crate() {
        let fields = [
            "plain",
            "",
            "a,b",
            "say \"hi\"",
            "two\nlines",
            "cr\rhere",
            "\"",
            ",",
            "caf\u{e9}",
            " spaced ",
            "=1+2",
            "-12",
            // Longer than one 16-byte chunk: the special byte in the first chunk, a later one, the tail.
            "0123456789abcde,0123456789abcdef",
            "0123456789abcdef0123456789abcdef\"x",
            "0123456789abcdef0123456789abcdef0123456789",
            "0123456789abcdef0123456789abcde\r",
            "\n123456789abcdef0123456789abcdef",
            "0123456789abcdef",
        ];
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
            // The csv crate writes cells as they are: ours neutralise formula-like ones first.
            theirs.write_record(row.iter().map(|f| neutralised(f).into_owned())).unwrap();
        }
        assert_eq!(String::from_utf8(ours).unwrap(), String::from_utf8(theirs.into_inner().unwrap()).unwrap());
    }

    #[test]
    fn formulas_get_one_quote_and_lose_exactly_one() {
        for (cell, written) in [
            ("=1+1", "'=1+1"),
            ("+49 30", "'+49 30"),
            ("-p1", "'-p1"),
            ("@SUM(A1)", "'@SUM(A1)"),
            ("\tx", "'\tx"),
            ("'quoted", "''quoted"),
            ("plain", "plain"),
            ("", ""),
        ] {
            assert_eq!(neutralised(cell), written);
            assert_eq!(unneutralised(written), cell);
        }
        let mut buf = Vec::new();
        push_csv_field(&mut buf, b"=a,b");
        assert_eq!(buf, b"\"'=a,b\"");
    }

    #[test]
    fn decimals() {
        for n in [0i64, 7, 9, 10, 99, 100, 101, 999, 1000, 12345, 1234567890, -1, -45, i64::MAX, i64::MIN] {
            let mut buf = Vec::new();
            push_decimal(&mut buf, n);
            assert_eq!(String::from_utf8(buf).unwrap(), n.to_string());
        }
    }
}
