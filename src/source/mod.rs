//! Input files: expanding the paths given on the command line (files or folders, recursively, in
//! a fixed order), detecting compression by magic bytes (`.zst`, `.gz`, plain), hashing every byte
//! read for the manifest, and cutting the decompressed stream into blocks of whole lines.

mod blocks;
mod tally;

use blocks::cut_at_read_error;
pub(crate) use blocks::{
    blank_lines, count_lines, line_of_offset, lines_of, strip_bom, BufferPool, LineBlock, LineBlocks,
};
pub(crate) use tally::{InputRecord, LineRange, Role, Tally};

use std::collections::HashSet;
use std::fs::File;
use std::io::{self, BufReader, Read};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use sha2::{Digest as _, Sha256};

use crate::error::{Error, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Compression {
    Plain,
    Zstd,
    Gzip,
}

/// One input to read, as found under a path given on the command line: a regular file (its size
/// known), or a stream (`-` for standard input, a pipe, a FIFO) that can be read once.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub(crate) struct InputFile {
    pub(crate) path: PathBuf,
    /// The size of a regular file; `None` for a stream.
    pub(crate) size: Option<u64>,
}

impl InputFile {
    /// Whether it can be read only once.
    pub(crate) fn is_stream(&self) -> bool {
        self.size.is_none()
    }
}

/// The name standing for standard input.
pub(crate) const STDIN: &str = "-";

/// The longest line, document or table row read (`--max-line`), 256 MiB unless set: anything
/// longer is an input error naming the file, line and length, never an allocation the machine
/// cannot make (a compression bomb of one endless line).
static MAX_LINE: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(DEFAULT_MAX_LINE);

/// `--max-line`'s default: 256 MiB.
pub(crate) const DEFAULT_MAX_LINE: u64 = 256 << 20;

/// Sets the longest line, document or row read, in bytes.
pub(crate) fn set_max_line(bytes: u64) {
    MAX_LINE.store(bytes.max(1), std::sync::atomic::Ordering::Relaxed);
}

/// The longest line, document or row read, in bytes.
pub(crate) fn max_line() -> u64 {
    MAX_LINE.load(std::sync::atomic::Ordering::Relaxed)
}

/// Bytes as a person reads them: `256 MiB`, `1.5 GiB`, `300 bytes`.
pub(crate) fn size_text(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if bytes < 1024 {
        return format!("{bytes} bytes");
    }
    let mut v = bytes as f64 / 1024.0;
    let mut unit = 0;
    while v >= 1024.0 && unit < UNITS.len() - 1 {
        v /= 1024.0;
        unit += 1;
    }
    if v.fract() == 0.0 {
        format!("{v:.0} {}", UNITS[unit])
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}

/// The error for a line, document or row longer than `--max-line`: at least `len` bytes.
pub(crate) fn too_long(path: &Path, line: u64, offset: u64, what: &str, len: u64) -> Error {
    Error::input(
        path,
        line,
        offset,
        format!(
            "a {what} longer than the limit of {} (--max-line): at least {len} bytes{}; a damaged file or a \
             compression bomb (raise --max-line if it is real); the rest of the file is left out",
            size_text(max_line()),
            if what == "line" { " without a line break" } else { "" }
        ),
    )
}

const ZSTD_MAGIC: [u8; 4] = [0x28, 0xB5, 0x2F, 0xFD];
const GZIP_MAGIC: [u8; 2] = [0x1F, 0x8B];

/// Expands files and folders (recursively; entries sorted by name; hidden files skipped; symlink
/// loops detected) into the list of inputs to read. Regular files and FIFOs are read, inside
/// folders too; a socket or device inside a folder is an error naming it; a path given itself
/// may also be `-` (standard input, at most once) or a device such as `/dev/stdin`. Nothing is
/// opened here.
pub(crate) fn collect(paths: &[PathBuf]) -> Result<Vec<InputFile>> {
    let mut out = Vec::new();
    let mut seen_dirs = HashSet::new();
    for p in paths {
        walk(p, &mut out, &mut seen_dirs, true)?;
    }
    if out.iter().filter(|f| f.path.as_os_str() == STDIN).count() > 1 {
        return Err(Error::Usage("standard input (-) can be read only once: give it as one input".into()));
    }
    Ok(out)
}

/// [`collect`] for the paths of one option (`--logs`, `--history`): a path given that cannot be
/// read is named with its option (`--logs /nope: No such file or directory`).
pub(crate) fn collect_for(option: &str, paths: &[PathBuf]) -> Result<Vec<InputFile>> {
    collect(paths).map_err(|e| match e {
        Error::Io { path, source } if paths.contains(&path) => {
            Error::Io { path: PathBuf::from(format!("{option} {}", path.display())), source }
        }
        e => e,
    })
}

fn walk(path: &Path, out: &mut Vec<InputFile>, seen_dirs: &mut HashSet<PathBuf>, given: bool) -> Result<()> {
    if given && path.as_os_str() == STDIN {
        out.push(InputFile { path: path.to_path_buf(), size: None });
        return Ok(());
    }
    let meta = std::fs::metadata(path).map_err(|e| Error::io(path, e))?;
    let kind = meta.file_type();
    if kind.is_dir() {
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
    } else if kind.is_file() {
        out.push(InputFile { path: path.to_path_buf(), size: Some(meta.len()) });
    } else if is_fifo(&meta) || given {
        // A pipe or FIFO, or a device named on the command line (`/dev/stdin`): read once, as a
        // stream.
        out.push(InputFile { path: path.to_path_buf(), size: None });
    } else {
        return Err(Error::input(
            path,
            0,
            0,
            "neither a file, a folder nor a FIFO (a socket or a device inside an input folder): \
             name it on the command line if it is to be read, or move it out",
        ));
    }
    Ok(())
}

#[cfg(unix)]
fn is_fifo(meta: &std::fs::Metadata) -> bool {
    use std::os::unix::fs::FileTypeExt;
    meta.file_type().is_fifo()
}

#[cfg(not(unix))]
fn is_fifo(_meta: &std::fs::Metadata) -> bool {
    false
}

/// Counts and hashes every raw byte read, so hashing costs no second read.
struct HashingReader<R> {
    inner: R,
    state: Arc<Mutex<(Sha256, u64)>>,
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        let mut state = self.state.lock().expect("hasher lock");
        state.0.update(&buf[..n]);
        state.1 += n as u64;
        crate::progress::add_bytes(n as u64);
        Ok(n)
    }
}

/// What was read of an input: the SHA-256 and count of its raw bytes, and its compression.
#[derive(Debug, Clone)]
pub(crate) struct Digest {
    pub(crate) sha256: String,
    pub(crate) bytes: u64,
    pub(crate) compression: Compression,
}

/// An open input: the decompressed byte stream plus the running hash of the raw bytes.
pub(crate) struct OpenInput {
    pub(crate) reader: Box<dyn Read + Send>,
    state: Arc<Mutex<(Sha256, u64)>>,
    compression: Compression,
}

impl OpenInput {
    /// The hash and count of the raw bytes read so far (call after reading to the end).
    pub(crate) fn digest(&self) -> Digest {
        let state = self.state.lock().expect("hasher lock");
        let sha256 = hex(&state.0.clone().finalize());
        Digest { sha256, bytes: state.1, compression: self.compression }
    }
}

fn open_raw(file: &InputFile) -> Result<Box<dyn Read + Send>> {
    if file.path.as_os_str() == STDIN {
        return Ok(Box::new(io::stdin()));
    }
    Ok(Box::new(File::open(&file.path).map_err(|e| Error::io(&file.path, e))?))
}

/// Reads the first bytes of a stream (as many as a magic number needs, fewer at its end), and
/// tells its compression from them, whatever the input is called. The bytes are handed back to
/// be read again: a stream is never opened twice.
fn sniff(raw: &mut dyn Read, path: &Path) -> Result<(Compression, Vec<u8>)> {
    let mut head = [0u8; 4];
    let mut n = 0;
    while n < head.len() {
        match raw.read(&mut head[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(Error::io(path, e)),
        }
    }
    let compression = if n >= 4 && head == ZSTD_MAGIC {
        Compression::Zstd
    } else if n >= 2 && head[..2] == GZIP_MAGIC {
        Compression::Gzip
    } else {
        Compression::Plain
    };
    Ok((compression, head[..n].to_vec()))
}

fn decompressed(
    raw: impl io::BufRead + Send + 'static,
    compression: Compression,
    path: &Path,
) -> Result<Box<dyn Read + Send>> {
    Ok(match compression {
        Compression::Plain => Box::new(raw),
        Compression::Zstd => Box::new(zstd::stream::read::Decoder::with_buffer(raw).map_err(|e| Error::io(path, e))?),
        Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(raw)),
    })
}

/// Opens an input, decompressed, without hashing (for benchmarks and re-reading bodies).
pub(crate) fn open_unhashed(file: &InputFile) -> Result<Box<dyn Read + Send>> {
    let mut raw = open_raw(file)?;
    let (compression, head) = sniff(&mut raw, &file.path)?;
    decompressed(BufReader::with_capacity(1 << 20, io::Cursor::new(head).chain(raw)), compression, &file.path)
}

/// Opens an input, decompressed, hashing and counting every raw byte.
pub(crate) fn open(file: &InputFile) -> Result<OpenInput> {
    let state = Arc::new(Mutex::new((Sha256::new(), 0u64)));
    let mut raw = HashingReader { inner: open_raw(file)?, state: state.clone() };
    let (compression, head) = sniff(&mut raw, &file.path)?;
    let raw = BufReader::with_capacity(1 << 20, io::Cursor::new(head).chain(raw));
    Ok(OpenInput { reader: decompressed(raw, compression, &file.path)?, state, compression })
}

/// Reads a whole input, decompressed: its bytes, what was read of it, and the error that cut it
/// short, if any (the bytes then end at the last whole line before the cut).
/// A line longer than `--max-line` cuts the file there too (the bytes end at the last whole line
/// before it).
pub(crate) fn read_whole(file: &InputFile) -> Result<(Vec<u8>, Digest, Option<Error>)> {
    let mut input = open(file)?;
    let max = max_line();
    // Read in parts of 1 MiB, joined once at the end: no chain of ever larger buffers (which the
    // allocator would keep) while a long file or an endless line comes in.
    let mut parts: Vec<Vec<u8>> = Vec::new();
    let mut total = 0usize;
    // Where the current line starts (in the whole), and the lines before it.
    let (mut line_start, mut lines) = (0usize, 0u64);
    let mut too_long_line = None;
    let mut read_error = None;
    let mut at_end = false;
    while !at_end {
        // Each part filled whole (a pipe gives a few KiB a read), so parts waste no room.
        let mut part = vec![0u8; 1 << 20];
        let mut n = 0;
        while n < part.len() {
            match input.reader.read(&mut part[n..]) {
                Ok(0) => {
                    at_end = true;
                    break;
                }
                Ok(k) => n += k,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    read_error = Some(e);
                    at_end = true;
                    break;
                }
            }
        }
        part.truncate(n);
        // Every line that ends here, and the one still open, checked before the part is kept.
        for nl in memchr::memchr_iter(b'\n', &part) {
            let end = total + nl + 1;
            if (end - line_start) as u64 > max {
                too_long_line = Some((lines + 1, line_start, (end - line_start) as u64));
                break;
            }
            line_start = end;
            lines += 1;
        }
        if too_long_line.is_none() && (total + n - line_start) as u64 > max {
            too_long_line = Some((lines + 1, line_start, (total + n - line_start) as u64));
        }
        total += n;
        parts.push(part);
        if too_long_line.is_some() {
            break;
        }
    }
    // The whole lines before a line past the limit are kept.
    let keep = if too_long_line.is_some() { line_start } else { total };
    let mut buf = Vec::with_capacity(keep);
    for part in parts {
        let room = keep - buf.len();
        buf.extend_from_slice(&part[..part.len().min(room)]);
    }
    let cut = match (too_long_line, read_error) {
        (Some((line, at, len)), _) => Some(too_long(&file.path, line, at as u64, "line", len)),
        (None, Some(e)) => Some(cut_at_read_error(&file.path, 1, 0, &mut buf, e)),
        (None, None) => None,
    };
    Ok((buf, input.digest(), cut))
}

/// Bytes as lowercase hexadecimal, as SHA-256 sums are written (the manifest, `SHA256SUMS`, the
/// index).
pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The SHA-256 of a file's raw bytes, in hexadecimal: an output for `SHA256SUMS`, or an input
/// checked against what the manifest recorded (a stored index's files, before their bodies are
/// read again).
pub(crate) fn sha256_file(path: &Path) -> io::Result<String> {
    let mut hasher = Sha256::new();
    // `io::copy` reads through a `BufReader`'s buffer: 1 MiB per system call, not its own 8 KiB.
    io::copy(&mut BufReader::with_capacity(1 << 20, File::open(path)?), &mut hasher)?;
    Ok(hex(&hasher.finalize()))
}

/// Whether a regular file is stored uncompressed (its bytes are the decompressed stream, so a
/// part of it can be read from any byte offset).
pub(crate) fn plain_file(file: &InputFile) -> Result<bool> {
    if file.is_stream() {
        return Ok(false);
    }
    let mut raw = File::open(&file.path).map_err(|e| Error::io(&file.path, e))?;
    Ok(sniff(&mut raw, &file.path)?.0 == Compression::Plain)
}

/// The file's name as given, for messages and the `source` column.
pub(crate) fn display(path: &Path) -> String {
    path.display().to_string()
}
