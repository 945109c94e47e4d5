//! Input files: expanding the paths given on the command line (files or folders, recursively, in
//! a fixed order), detecting compression by magic bytes (`.zst`, `.gz`, plain), hashing every byte
//! read for the manifest, and cutting the decompressed stream into blocks of whole lines.

mod blocks;
mod tally;

use blocks::cut_at_read_error;
pub(crate) use blocks::{count_lines, line_of_offset, lines_of, strip_bom, BufferPool, LineBlock, LineBlocks};
pub(crate) use tally::{InputRecord, Tally};

use std::collections::HashSet;
use std::fs::File;
use std::io::{self, BufReader, Read};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Compression {
    Plain,
    Zstd,
    Gzip,
}

/// One file to read, as found under a path given on the command line.
#[derive(Debug, Clone)]
pub(crate) struct InputFile {
    pub(crate) path: PathBuf,
    pub(crate) size: u64,
    pub(crate) compression: Compression,
}

const ZSTD_MAGIC: [u8; 4] = [0x28, 0xB5, 0x2F, 0xFD];
const GZIP_MAGIC: [u8; 2] = [0x1F, 0x8B];

/// Expands files and folders (recursively; entries sorted by name; hidden files skipped; symlink
/// loops detected) into the list of files to read.
pub(crate) fn collect(paths: &[PathBuf]) -> Result<Vec<InputFile>> {
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
pub(crate) fn sniff(path: &Path) -> Result<Compression> {
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
pub(crate) struct OpenInput {
    pub(crate) reader: Box<dyn Read + Send>,
    hasher: Arc<Mutex<Sha256>>,
}

impl OpenInput {
    /// The SHA-256 of the raw bytes read so far (call after reading to the end).
    pub(crate) fn sha256(&self) -> String {
        let h = self.hasher.lock().expect("hasher lock").clone().finalize();
        h.iter().map(|b| format!("{b:02x}")).collect()
    }
}

/// Opens an input, decompressed, without hashing (for benchmarks and re-reading bodies).
pub(crate) fn open_unhashed(file: &InputFile) -> Result<Box<dyn Read + Send>> {
    let f = File::open(&file.path).map_err(|e| Error::io(&file.path, e))?;
    let raw = BufReader::with_capacity(1 << 20, f);
    Ok(match file.compression {
        Compression::Plain => Box::new(raw),
        Compression::Zstd => {
            Box::new(zstd::stream::read::Decoder::with_buffer(raw).map_err(|e| Error::io(&file.path, e))?)
        }
        Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(raw)),
    })
}

pub(crate) fn open(file: &InputFile) -> Result<OpenInput> {
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
pub(crate) fn read_whole(file: &InputFile) -> Result<(Vec<u8>, String, Option<Error>)> {
    let mut input = open(file)?;
    let mut buf = Vec::with_capacity(file.size as usize);
    let cut = input.reader.read_to_end(&mut buf).err().map(|e| cut_at_read_error(&file.path, 1, 0, &mut buf, e));
    Ok((buf, input.sha256(), cut))
}

/// The file's name as given, for messages and the `source` column.
pub(crate) fn display(path: &Path) -> String {
    path.display().to_string()
}
