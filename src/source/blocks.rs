//! Cutting a decompressed stream into blocks of whole lines (numbered, with their byte offsets),
//! the buffers they reuse, and the line arithmetic the readers share.

use std::io::{self, Read};
use std::path::Path;
use std::sync::Mutex;

use crate::error::{Error, Result};

/// A read error in a (decompressed) stream: keeps the whole lines of `buf` and returns the error
/// naming the cut line — `buf` starts at line `first_line`, byte `offset` of the stream.
pub(super) fn cut_at_read_error(path: &Path, first_line: u64, offset: u64, buf: &mut Vec<u8>, e: io::Error) -> Error {
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
pub(crate) struct BufferPool(Mutex<Vec<Vec<u8>>>);

impl BufferPool {
    pub(crate) fn take(&self) -> Option<Vec<u8>> {
        self.0.lock().expect("buffer pool lock").pop()
    }

    pub(crate) fn give(&self, buf: Vec<u8>) {
        self.0.lock().expect("buffer pool lock").push(buf);
    }
}

/// A block of whole lines cut from an input: its bytes, the 1-based number of its first line and
/// the byte offset of its start in the decompressed stream.
pub(crate) struct LineBlock {
    pub(crate) bytes: Vec<u8>,
    pub(crate) first_line: u64,
    pub(crate) offset: u64,
    /// Lines in the block (a last line without a newline counts).
    pub(crate) lines: u64,
    /// Where each line ends: just after its newline, or at the block's end for a last line
    /// without one. Found once, by the reader, for the count and for the parser.
    pub(crate) ends: Vec<usize>,
}

/// Cuts a decompressed stream into blocks of about `block_size` bytes ending at a newline (the
/// last block may end without one).
pub(crate) struct LineBlocks<'a> {
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
    pub(crate) fn new(reader: &'a mut dyn Read, path: &'a Path, block_size: usize) -> Self {
        LineBlocks {
            reader,
            path,
            carry: Vec::new(),
            next_line: 1,
            offset: 0,
            block_size,
            done: false,
            spares: None,
            pending_error: None,
        }
    }

    /// Reuses the buffers the consumer gives back to `spares`.
    pub(crate) fn with_spares(mut self, spares: &'a BufferPool) -> Self {
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
                // One line longer than the buffer: keep reading until it ends, up to the limit
                // (the buffer holds no line break: it was searched up to `filled`). The buffer
                // grows by doubling, but never past the limit and a block.
                let max = super::max_line();
                if filled as u64 > max {
                    self.done = true;
                    return Some(Err(super::too_long(self.path, self.next_line, self.offset, "line", filled as u64)));
                }
                target += self.block_size;
                if buf.capacity() < target {
                    // Room up to the limit at once: the pages are only touched as the line is
                    // read, and no chain of ever larger buffers is left behind for the
                    // allocator to keep.
                    // (A limit raised past 1 GiB: doubling instead, up to it.)
                    let cap = usize::try_from(max).unwrap_or(usize::MAX).saturating_add(self.block_size + 1);
                    let want = if cap <= 1 << 30 { cap } else { buf.capacity().saturating_mul(2).min(cap) };
                    buf.reserve_exact(want.max(target) - buf.len());
                }
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
                // No line break in the whole buffer: it is all one line, which may not grow
                // past the limit (a bomb of one endless line).
                if filled as u64 > super::max_line() {
                    self.done = true;
                    return Some(Err(super::too_long(self.path, self.next_line, self.offset, "line", filled as u64)));
                }
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
        // A line longer than the limit (set below the block size): the lines before it are given
        // out, then the error; the rest of the stream is not read.
        let max = super::max_line();
        if max < buf.len() as u64 {
            let mut start = 0;
            if let Some(i) = ends.iter().position(|&end| {
                let long = (end - start) as u64 > max;
                start = end;
                long
            }) {
                let line_start = if i == 0 { 0 } else { ends[i - 1] };
                let len = (ends[i] - line_start) as u64;
                self.done = true;
                self.carry.clear();
                let error =
                    super::too_long(self.path, self.next_line + i as u64, self.offset + line_start as u64, "line", len);
                if i == 0 {
                    return Some(Err(error));
                }
                self.pending_error = Some(error);
                ends.truncate(i);
                buf.truncate(line_start);
            }
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
pub(crate) fn count_lines(b: &[u8]) -> u64 {
    if b.is_empty() {
        return 0;
    }
    bytecount(b'\n', b) as u64 + u64::from(b.last() != Some(&b'\n'))
}

/// Lines holding nothing but whitespace.
pub(crate) fn blank_lines(bytes: &[u8]) -> u64 {
    if bytes.is_empty() {
        return 0;
    }
    let body = bytes.strip_suffix(b"\n").unwrap_or(bytes);
    body.split(|&b| b == b'\n').filter(|l| l.iter().all(|b| b.is_ascii_whitespace())).count() as u64
}

/// The lines of a block with their 1-based numbers and stream offsets; `\r\n` ends are trimmed.
pub(crate) fn lines_of(block: &LineBlock) -> impl Iterator<Item = (u64, u64, &[u8])> {
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
pub(crate) fn strip_bom(line: &[u8]) -> &[u8] {
    line.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(line)
}

/// The 1-based line number of a byte offset inside `bytes`.
pub(crate) fn line_of_offset(bytes: &[u8], offset: usize) -> u64 {
    bytecount(b'\n', &bytes[..offset.min(bytes.len())]) as u64 + 1
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
        assert_eq!(all, vec![(1, 0, "a".into()), (2, 2, "bb".into()), (3, 6, "ccc".into()), (4, 10, "d".into())]);
    }

    #[test]
    fn blank_lines_count_and_a_final_newline_adds_none() {
        for (text, expected) in
            [("a\n\nb\n", vec!["a", "", "b"]), ("\n", vec![""]), ("x", vec!["x"]), ("a\r\n\r\n", vec!["a", ""])]
        {
            let mut r: &[u8] = text.as_bytes();
            let blocks: Vec<LineBlock> = LineBlocks::new(&mut r, Path::new("x"), 2).map(|b| b.unwrap()).collect();
            let lines: Vec<String> = blocks
                .iter()
                .flat_map(|b| lines_of(b).map(|(_, _, l)| String::from_utf8(l.to_vec()).unwrap()))
                .collect();
            assert_eq!(lines, expected, "{text:?}");
            assert_eq!(blocks.iter().map(|b| b.lines).sum::<u64>(), count_lines(text.as_bytes()), "{text:?}");
        }
    }
}
