//! Input files: expanding the paths given on the command line (files or folders, recursively, in
//! a fixed order), detecting compression by magic bytes (`.zst`, `.gz`, plain), hashing every byte
//! read for the manifest, and cutting the decompressed stream into blocks of whole lines.

use std::collections::HashSet;
use std::fs::File;
use std::io::{self, BufReader, Read};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Compression {
    Plain,
    Zstd,
    Gzip,
}

/// One file to read, as found under a path given on the command line.
#[derive(Debug, Clone)]
pub struct InputFile {
    pub path: PathBuf,
    pub size: u64,
    pub compression: Compression,
}

/// What the manifest records of each input once it has been read.
#[derive(Debug, Clone, serde::Serialize)]
pub struct InputRecord {
    pub role: &'static str,
    pub path: String,
    pub size: u64,
    pub compression: Compression,
    pub sha256: String,
    /// Lines in the file (after decompression).
    pub lines: u64,
    /// Lines read, blank lines ignored, lines skipped (`--skip-invalid`):
    /// `lines_read + lines_blank + lines_skipped == lines`.
    pub lines_read: u64,
    pub lines_blank: u64,
    pub lines_skipped: u64,
}

/// What reading one file found, line by line: how many lines were read, blank or skipped, and
/// the skips. With `skip_invalid` off, the first unreadable line is an error.
#[derive(Debug, Default)]
pub struct Tally {
    pub skip_invalid: bool,
    pub read: u64,
    pub blank: u64,
    pub skipped: Vec<crate::error::Skipped>,
}

impl Tally {
    pub fn new(skip_invalid: bool) -> Tally {
        Tally { skip_invalid, ..Tally::default() }
    }

    /// An unreadable place: an error, or (with `--skip-invalid`) a noted skip.
    pub fn fail(&mut self, e: Error) -> Result<()> {
        if self.skip_invalid {
            if let Some(s) = crate::error::Skipped::of(&e) {
                self.skipped.push(s);
                return Ok(());
            }
        }
        Err(e)
    }

    /// An unreadable place that takes more than its line with it: `lines` lines from `line`
    /// (0 for a rest of a file that was never read), with a note added to the reason.
    pub fn fail_spanning(&mut self, e: Error, line: Option<u64>, lines: u64, note: Option<&str>) -> Result<()> {
        self.fail(e)?;
        if let Some(last) = self.skipped.last_mut() {
            if let Some(l) = line {
                last.line = l;
            }
            last.lines = lines;
            if let Some(n) = note {
                last.reason = format!("{} ({n})", last.reason);
            }
        }
        Ok(())
    }

    pub fn skipped_lines(&self) -> u64 {
        self.skipped.iter().map(|s| s.lines).sum()
    }

    /// Adds another tally (of a later part of the same file).
    pub fn absorb(&mut self, other: Tally) {
        self.read += other.read;
        self.blank += other.blank;
        self.skipped.extend(other.skipped);
    }

    /// The manifest record of a file read with this tally.
    pub fn record(&self, role: &'static str, file: &InputFile, sha256: String, lines: u64) -> InputRecord {
        InputRecord {
            role,
            path: display(&file.path),
            size: file.size,
            compression: file.compression,
            sha256,
            lines,
            lines_read: self.read,
            lines_blank: self.blank,
            lines_skipped: self.skipped_lines(),
        }
    }
}

const ZSTD_MAGIC: [u8; 4] = [0x28, 0xB5, 0x2F, 0xFD];
const GZIP_MAGIC: [u8; 2] = [0x1F, 0x8B];

/// Expands files and folders (recursively; entries sorted by name; hidden files skipped; symlink
/// loops detected) into the list of files to read.
pub fn collect(paths: &[PathBuf]) -> Result<Vec<InputFile>> {
    let mut out = Vec::new();
    let mut seen_dirs = HashSet::new();
    for p in paths {
        walk(p, &mut out, &mut seen_dirs, true)?;
    }
    Ok(out)
}

fn walk(path: &Path, out: &mut Vec<InputFile>, seen_dirs: &mut HashSet<PathBuf>, given: bool) -> Result<()> {
    let meta = std::fs::metadata(path).map_err(|e| Error::io(path, e))?;
    if meta.is_dir() {
        let canonical = std::fs::canonicalize(path).map_err(|e| Error::io(path, e))?;
        if !seen_dirs.insert(canonical) {
            // A symlink loop or the same folder given twice: read it once.
            return Ok(());
        }
        let mut entries: Vec<PathBuf> = std::fs::read_dir(path)
            .map_err(|e| Error::io(path, e))?
            .map(|e| e.map(|e| e.path()).map_err(|err| Error::io(path, err)))
            .collect::<Result<_>>()?;
        entries.sort();
        for e in entries {
            let hidden = e.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with('.'));
            if !hidden {
                walk(&e, out, seen_dirs, false)?;
            }
        }
    } else if meta.is_file() || given {
        let compression = sniff(path)?;
        out.push(InputFile { path: path.to_path_buf(), size: meta.len(), compression });
    }
    Ok(())
}

/// Detects compression from the first bytes, whatever the file is called.
pub fn sniff(path: &Path) -> Result<Compression> {
    let mut f = File::open(path).map_err(|e| Error::io(path, e))?;
    let mut head = [0u8; 4];
    let mut n = 0;
    while n < 4 {
        match f.read(&mut head[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(Error::io(path, e)),
        }
    }
    Ok(if n >= 4 && head == ZSTD_MAGIC {
        Compression::Zstd
    } else if n >= 2 && head[..2] == GZIP_MAGIC {
        Compression::Gzip
    } else {
        Compression::Plain
    })
}

/// Feeds every raw byte read from the file into a SHA-256, so hashing costs no second read.
struct HashingReader<R> {
    inner: R,
    hasher: Arc<Mutex<Sha256>>,
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.lock().expect("hasher lock").update(&buf[..n]);
        Ok(n)
    }
}

/// An open input: the decompressed byte stream plus the running hash of the raw bytes.
pub struct OpenInput {
    pub reader: Box<dyn Read + Send>,
    hasher: Arc<Mutex<Sha256>>,
}

impl OpenInput {
    /// The SHA-256 of the raw bytes read so far (call after reading to the end).
    pub fn sha256(&self) -> String {
        let h = self.hasher.lock().expect("hasher lock").clone().finalize();
        h.iter().map(|b| format!("{b:02x}")).collect()
    }
}

/// Opens an input, decompressed, without hashing (for benchmarks and re-reading bodies).
pub fn open_unhashed(file: &InputFile) -> Result<Box<dyn Read + Send>> {
    let f = File::open(&file.path).map_err(|e| Error::io(&file.path, e))?;
    let raw = BufReader::with_capacity(1 << 20, f);
    Ok(match file.compression {
        Compression::Plain => Box::new(raw),
        Compression::Zstd => Box::new(zstd::stream::read::Decoder::with_buffer(raw).map_err(|e| Error::io(&file.path, e))?),
        Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(raw)),
    })
}

pub fn open(file: &InputFile) -> Result<OpenInput> {
    let f = File::open(&file.path).map_err(|e| Error::io(&file.path, e))?;
    let hasher = Arc::new(Mutex::new(Sha256::new()));
    let raw = HashingReader { inner: BufReader::with_capacity(1 << 20, f), hasher: hasher.clone() };
    let reader: Box<dyn Read + Send> = match file.compression {
        Compression::Plain => Box::new(raw),
        Compression::Zstd => Box::new(zstd::stream::read::Decoder::new(raw).map_err(|e| Error::io(&file.path, e))?),
        Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(raw)),
    };
    Ok(OpenInput { reader, hasher })
}

/// Reads a whole input, decompressed: its bytes, the SHA-256 of the raw file, and the error
/// that cut it short, if any (the bytes then end at the last whole line before the cut).
pub fn read_whole(file: &InputFile) -> Result<(Vec<u8>, String, Option<Error>)> {
    let mut input = open(file)?;
    let mut buf = Vec::with_capacity(file.size as usize);
    let cut = input.reader.read_to_end(&mut buf).err().map(|e| cut_at_read_error(&file.path, 1, 0, &mut buf, e));
    Ok((buf, input.sha256(), cut))
}

/// A read error in a (decompressed) stream: keeps the whole lines of `buf` and returns the error
/// naming the cut line — `buf` starts at line `first_line`, byte `offset` of the stream.
fn cut_at_read_error(path: &Path, first_line: u64, offset: u64, buf: &mut Vec<u8>, e: io::Error) -> Error {
    let read_to = offset + buf.len() as u64;
    let whole = memrchr(b'\n', buf).map(|p| p + 1).unwrap_or(0);
    let line = first_line + bytecount(b'\n', &buf[..whole]) as u64;
    buf.truncate(whole);
    Error::input(
        path,
        line,
        offset + whole as u64,
        format!("the file could not be read past byte {read_to} of its decompressed content: {e} (truncated or corrupt?); line {line} and the rest of the file are left out"),
    )
}

/// Block buffers handed back by the parser for the reader to fill again, shared by every file of
/// a run: a fresh buffer costs a page fault per 4 KiB.
#[derive(Default)]
pub struct BufferPool(Mutex<Vec<Vec<u8>>>);

impl BufferPool {
    pub fn take(&self) -> Option<Vec<u8>> {
        self.0.lock().expect("buffer pool lock").pop()
    }

    pub fn give(&self, buf: Vec<u8>) {
        self.0.lock().expect("buffer pool lock").push(buf);
    }
}

/// A block of whole lines cut from an input: its bytes, the 1-based number of its first line and
/// the byte offset of its start in the decompressed stream.
pub struct LineBlock {
    pub bytes: Vec<u8>,
    pub first_line: u64,
    pub offset: u64,
    /// Lines in the block (a last line without a newline counts).
    pub lines: u64,
    /// Where each line ends: just after its newline, or at the block's end for a last line
    /// without one. Found once, by the reader, for the count and for the parser.
    pub ends: Vec<usize>,
}

/// Cuts a decompressed stream into blocks of about `block_size` bytes ending at a newline (the
/// last block may end without one).
pub struct LineBlocks<'a> {
    reader: &'a mut dyn Read,
    path: &'a Path,
    carry: Vec<u8>,
    next_line: u64,
    offset: u64,
    block_size: usize,
    done: bool,
    /// Buffers handed back by the consumer, reused instead of fresh (page-faulting) memory.
    spares: Option<&'a BufferPool>,
    /// A read error met after some whole lines: given out after those lines.
    pending_error: Option<Error>,
}

impl<'a> LineBlocks<'a> {
    pub fn new(reader: &'a mut dyn Read, path: &'a Path, block_size: usize) -> Self {
        LineBlocks { reader, path, carry: Vec::new(), next_line: 1, offset: 0, block_size, done: false, spares: None, pending_error: None }
    }

    /// Reuses the buffers the consumer gives back to `spares`.
    pub fn with_spares(mut self, spares: &'a BufferPool) -> Self {
        self.spares = Some(spares);
        self
    }
}

impl Iterator for LineBlocks<'_> {
    type Item = Result<LineBlock>;

    fn next(&mut self) -> Option<Result<LineBlock>> {
        if let Some(e) = self.pending_error.take() {
            return Some(Err(e));
        }
        if self.done {
            return None;
        }
        // A recycled buffer keeps its length: its bytes are initialised already, so growing it
        // to the block size zeroes only the few bytes past its last content (read_to_end would
        // zero the whole spare capacity before every read).
        let mut buf = self.spares.and_then(BufferPool::take).unwrap_or_default();
        let mut target = (self.block_size + self.carry.len() + 1).max(buf.len());
        if buf.len() < target {
            if buf.capacity() < target {
                // Room for the carried part of a line beyond the block size, reserved exactly:
                // a growing Vec would double (and copy) a block-sized buffer for a few bytes.
                buf.reserve_exact(target + self.block_size / 8 - buf.len());
            }
            buf.resize(target, 0);
        }
        buf[..self.carry.len()].copy_from_slice(&self.carry);
        let mut filled = self.carry.len();
        self.carry.clear();
        let mut searched = 0;
        loop {
            if filled == target {
                // One line longer than the buffer: keep reading until it ends.
                target += self.block_size;
                buf.resize(target, 0);
            }
            match self.reader.read(&mut buf[filled..target]) {
                Ok(0) => {
                    self.done = true;
                    break;
                }
                Ok(n) => filled += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    self.done = true;
                    // The whole lines read so far are given out first; the cut line and the
                    // rest are the error.
                    buf.truncate(filled);
                    let error = cut_at_read_error(self.path, self.next_line, self.offset, &mut buf, e);
                    if buf.is_empty() {
                        return Some(Err(error));
                    }
                    self.pending_error = Some(error);
                    filled = buf.len();
                    break;
                }
            }
            if filled >= self.block_size {
                if let Some(pos) = memrchr(b'\n', &buf[searched..filled]) {
                    let cut = searched + pos + 1;
                    self.carry.extend_from_slice(&buf[cut..filled]);
                    filled = cut;
                    break;
                }
                searched = filled;
            }
        }
        buf.truncate(filled);
        if buf.is_empty() {
            return None;
        }
        let mut ends = Vec::with_capacity(buf.len() / 256 + 1);
        ends.extend(memchr::memchr_iter(b'\n', &buf).map(|i| i + 1));
        if buf.last() != Some(&b'\n') {
            ends.push(buf.len());
        }
        let lines = ends.len() as u64;
        let block = LineBlock { bytes: buf, first_line: self.next_line, offset: self.offset, lines, ends };
        self.next_line += lines;
        self.offset += block.bytes.len() as u64;
        Some(Ok(block))
    }
}

fn memrchr(needle: u8, hay: &[u8]) -> Option<usize> {
    memchr::memrchr(needle, hay)
}

fn bytecount(needle: u8, hay: &[u8]) -> usize {
    memchr::memchr_iter(needle, hay).count()
}

/// The number of lines in a buffer (a last line without a newline counts).
pub fn count_lines(b: &[u8]) -> u64 {
    if b.is_empty() {
        return 0;
    }
    bytecount(b'\n', b) as u64 + u64::from(b.last() != Some(&b'\n'))
}

/// The lines of a block with their 1-based numbers and stream offsets; `\r\n` ends are trimmed.
pub fn lines_of(block: &LineBlock) -> impl Iterator<Item = (u64, u64, &[u8])> {
    let bytes = &block.bytes;
    let mut ends = block.ends.iter();
    let mut start = 0usize;
    let mut line_no = block.first_line;
    std::iter::from_fn(move || {
        let end = *ends.next()?;
        let raw = &bytes[start..end];
        let here = (line_no, (block.offset + start as u64));
        start = end;
        line_no += 1;
        let mut line = raw;
        if line.last() == Some(&b'\n') {
            line = &line[..line.len() - 1];
        }
        if line.last() == Some(&b'\r') {
            line = &line[..line.len() - 1];
        }
        Some((here.0, here.1, line))
    })
}

/// Strips a UTF-8 byte-order mark from the start of a stream's first line.
pub fn strip_bom(line: &[u8]) -> &[u8] {
    line.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(line)
}

/// The 1-based line number of a byte offset inside `bytes`.
pub fn line_of_offset(bytes: &[u8], offset: usize) -> u64 {
    bytecount(b'\n', &bytes[..offset.min(bytes.len())]) as u64 + 1
}

/// The file's name as given, for messages and the `source` column.
pub fn display(path: &Path) -> String {
    path.display().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_keep_lines_whole_and_count_them() {
        let text = b"a\nbb\r\nccc\nd".to_vec();
        let mut r: &[u8] = &text;
        let blocks: Vec<LineBlock> = LineBlocks::new(&mut r, Path::new("x"), 3).map(|b| b.unwrap()).collect();
        let mut all = Vec::new();
        for b in &blocks {
            for (n, off, l) in lines_of(b) {
                all.push((n, off, String::from_utf8(l.to_vec()).unwrap()));
            }
        }
        assert_eq!(
            all,
            vec![(1, 0, "a".into()), (2, 2, "bb".into()), (3, 6, "ccc".into()), (4, 10, "d".into())]
        );
    }

    #[test]
    fn blank_lines_count_and_a_final_newline_adds_none() {
        for (text, expected) in [("a\n\nb\n", vec!["a", "", "b"]), ("\n", vec![""]), ("x", vec!["x"]), ("a\r\n\r\n", vec!["a", ""])] {
            let mut r: &[u8] = text.as_bytes();
            let blocks: Vec<LineBlock> = LineBlocks::new(&mut r, Path::new("x"), 2).map(|b| b.unwrap()).collect();
            let lines: Vec<String> = blocks.iter().flat_map(|b| lines_of(b).map(|(_, _, l)| String::from_utf8(l.to_vec()).unwrap())).collect();
            assert_eq!(lines, expected, "{text:?}");
            assert_eq!(blocks.iter().map(|b| b.lines).sum::<u64>(), count_lines(text.as_bytes()), "{text:?}");
        }
    }
}
