//! Re-reading version bodies by their source position, for `--with-resource` and
//! `--reconstruct`: only the files that hold a wanted version are read again (not hashed a
//! second time), and only the wanted documents are parsed. A body that cannot be found again
//! where it was indexed is an error naming the file and line: the file changed during the run.

mod raw;

use std::collections::{BTreeMap, HashMap};

use serde_json::Value;

use crate::error::{describe_json_error, Error, Result};
use crate::history::forms::Layout;
use crate::history::{self, pg_text};
use crate::index::History;
use crate::source::{self, InputFile, LineBlocks};

/// A wanted version: (resource index, version index).
pub(crate) type VersionKey = (u32, u32);

/// The versions whose document starts at one byte offset of a file, and that document's line.
struct At {
    line: u64,
    keys: Vec<VersionKey>,
}

/// The re-read bodies, kept in files rather than in memory: a spill file per history file,
/// written in that file's order, and where each version's body is. Reading a body back is
/// a positioned read, safe from many threads at once. The file is removed when this is dropped.
pub(crate) struct Bodies {
    /// The spill files and their paths.
    files: Vec<(std::fs::File, std::path::PathBuf)>,
    /// (spill file, offset, length) of each body.
    at: HashMap<VersionKey, (u32, u64, u64)>,
    /// The first failure of [`Bodies::cell`], which cannot return it.
    failed: std::sync::Mutex<Option<Error>>,
}

impl Bodies {
    /// The body for a table cell: a failure to read it back is kept for [`Bodies::check`]
    /// (the table is then discarded, never committed).
    pub(crate) fn cell<'b>(&self, k: VersionKey, buf: &'b mut String) -> Option<&'b str> {
        match self.get(k, buf) {
            Ok(body) => body,
            Err(e) => {
                self.failed.lock().unwrap_or_else(|p| p.into_inner()).get_or_insert(e);
                None
            }
        }
    }

    /// The first failure of [`Bodies::cell`], if any.
    pub(crate) fn check(&self) -> Result<()> {
        match self.failed.lock().unwrap_or_else(|p| p.into_inner()).take() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// The body of a version as compact JSON, read into `buf`; `None` for one not re-read.
    pub(crate) fn get<'b>(&self, k: VersionKey, buf: &'b mut String) -> Result<Option<&'b str>> {
        let Some(&(i, offset, len)) = self.at.get(&k) else { return Ok(None) };
        let (file, path) = &self.files[i as usize];
        let mut bytes = std::mem::take(buf).into_bytes();
        bytes.clear();
        bytes.resize(usize::try_from(len).map_err(|_| Error::Internal("a body beyond memory".into()))?, 0);
        read_at(file, &mut bytes, offset).map_err(|e| Error::output(path, e))?;
        // Written from a String a moment ago.
        *buf = String::from_utf8(bytes).map_err(|_| Error::Internal(format!("{}: not UTF-8", path.display())))?;
        Ok(Some(buf.as_str()))
    }
}

impl Bodies {
    /// Removes the spill files, reporting one that cannot be (it would otherwise be committed
    /// with the output).
    pub(crate) fn remove(mut self) -> Result<()> {
        for (_, path) in std::mem::take(&mut self.files) {
            std::fs::remove_file(&path).map_err(|e| Error::output(&path, e))?;
        }
        Ok(())
    }
}

impl Drop for Bodies {
    /// On failure or early return: the staging folder holding the spill files is removed too.
    fn drop(&mut self) {
        for (_, path) in &self.files {
            let _ = std::fs::remove_file(path);
        }
    }
}

#[cfg(unix)]
fn read_at(f: &std::fs::File, buf: &mut [u8], offset: u64) -> std::io::Result<()> {
    std::os::unix::fs::FileExt::read_exact_at(f, buf, offset)
}

#[cfg(not(unix))]
fn read_at(f: &std::fs::File, buf: &mut [u8], offset: u64) -> std::io::Result<()> {
    use std::io::{Read, Seek};
    // A seek and a read are two calls on a shared file position: one thread at a time.
    static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    let mut f = f;
    f.seek(std::io::SeekFrom::Start(offset))?;
    f.read_exact(buf)
}

/// One history file's spill: the file, its path, and (version, offset, length) of each body.
type Spill = (std::fs::File, std::path::PathBuf, Vec<(VersionKey, u64, u64)>);

/// Reads the bodies of the wanted versions as compact JSON text into spill files named after
/// `spill` (`<spill>.spillN`, created readable by the owner only, removed with the result), the
/// history files in parallel: memory holds a body per thread and where each is, not the bodies.
pub(crate) fn read(
    files: &[InputFile],
    layouts: &[Layout],
    h: &History,
    wanted: &[VersionKey],
    spill: &std::path::Path,
) -> Result<Bodies> {
    use rayon::prelude::*;
    use std::io::Write;
    // One spill file per history file, the history files read in parallel.
    let spills: Vec<Spill> = parts(files, layouts, h, wanted)?
        .into_par_iter()
        .enumerate()
        .map(|(i, (n, base, offsets))| {
            let path = spill.with_extension(format!("spill{i}"));
            let file = crate::output::create_private_scratch(&path)?;
            let mut w = std::io::BufWriter::with_capacity(1 << 20, &file);
            let (mut at, mut end, mut failed) = (Vec::new(), 0u64, None);
            read_file(&files[n as usize], layouts.get(n as usize), h, base, offsets, &mut |k, text| {
                if failed.is_none() {
                    match w.write_all(text.as_bytes()) {
                        Ok(()) => {
                            at.push((k, end, text.len() as u64));
                            end += text.len() as u64;
                        }
                        Err(e) => failed = Some(e),
                    }
                }
            })?;
            if let Some(e) = failed {
                return Err(Error::output(&path, e));
            }
            w.flush().map_err(|e| Error::output(&path, e))?;
            drop(w);
            Ok((file, path, at))
        })
        .collect::<Result<_>>()?;
    let mut bodies = Bodies {
        files: Vec::with_capacity(spills.len()),
        at: HashMap::with_capacity(wanted.len()),
        failed: std::sync::Mutex::new(None),
    };
    for (i, (file, path, at)) in spills.into_iter().enumerate() {
        bodies.files.push((file, path));
        bodies.at.extend(at.into_iter().map(|(k, offset, len)| (k, (i as u32, offset, len))));
    }
    Ok(bodies)
}

/// The SHA-256 of each wanted version's body as [`read`] gives it (the `resource` column's
/// text): the files read in parallel, no body kept.
pub(crate) fn digests(
    files: &[InputFile],
    layouts: &[Layout],
    h: &History,
    wanted: &[VersionKey],
) -> Result<Vec<(VersionKey, [u8; 32])>> {
    use rayon::prelude::*;
    use sha2::Digest as _;
    let per_file: Vec<Vec<(VersionKey, [u8; 32])>> = parts(files, layouts, h, wanted)?
        .into_par_iter()
        .map(|(file, base, offsets)| {
            let mut sums = Vec::new();
            read_file(&files[file as usize], layouts.get(file as usize), h, base, offsets, &mut |k, text| {
                sums.push((k, sha2::Sha256::digest(text.as_bytes()).into()));
            })?;
            Ok(sums)
        })
        .collect::<Result<_>>()?;
    Ok(per_file.into_iter().flatten().collect())
}

/// Wanted documents per part of a file read on its own: an uncompressed file of lines with many
/// wanted documents is cut into parts at document starts, so one big file is re-read on every
/// core. (file, the byte offset the part starts at, its documents.)
type Part = (u32, u64, BTreeMap<u64, At>);

/// Documents per part: about this many.
const PART: usize = 16 * 1024;

fn parts(files: &[InputFile], layouts: &[Layout], h: &History, wanted: &[VersionKey]) -> Result<Vec<Part>> {
    let mut out = Vec::new();
    for (n, offsets) in by_file(h, wanted) {
        let layout = layouts.get(n as usize);
        let lines = layout.is_none_or(|l| l.runs.is_empty() && !l.yaml);
        if offsets.len() < 2 * PART || !lines || !source::plain_file(&files[n as usize])? {
            out.push((n, 0, offsets));
            continue;
        }
        let mut part = BTreeMap::new();
        for (offset, at) in offsets {
            if part.len() >= PART {
                let done = std::mem::take(&mut part);
                let base = *done.keys().next().expect("a part holds documents");
                out.push((n, if out.last().is_some_and(|p: &Part| p.0 == n) { base } else { 0 }, done));
            }
            part.insert(offset, at);
        }
        let base = *part.keys().next().expect("a part holds documents");
        out.push((n, if out.last().is_some_and(|p: &Part| p.0 == n) { base } else { 0 }, part));
    }
    Ok(out)
}

/// file → offset → the versions whose document starts there.
fn by_file(h: &History, wanted: &[VersionKey]) -> BTreeMap<u32, BTreeMap<u64, At>> {
    let mut by_file: BTreeMap<u32, BTreeMap<u64, At>> = BTreeMap::new();
    for &k in wanted {
        let v = &h.resources[k.0 as usize].versions[k.1 as usize];
        by_file
            .entry(v.source.file)
            .or_default()
            .entry(v.source.offset)
            .or_insert_with(|| At { line: v.source.line, keys: Vec::new() })
            .keys
            .push(k);
    }
    by_file
}

/// Reads the wanted bodies of one file (from byte `base` on, in an uncompressed file of lines),
/// in the file's order.
fn read_file(
    f: &InputFile,
    layout: Option<&Layout>,
    h: &History,
    base: u64,
    offsets: BTreeMap<u64, At>,
    out: &mut dyn FnMut(VersionKey, String),
) -> Result<()> {
    let path = f.path.as_path();
    if let Some(layout) = layout.filter(|l| !l.runs.is_empty()) {
        return read_rows(f, layout, h, offsets, out);
    }
    if layout.is_some_and(|l| l.yaml) {
        return read_yaml(f, h, offsets, out);
    }
    let mut reader: Box<dyn std::io::Read + Send> = if base == 0 {
        source::open_unhashed(f)?
    } else {
        let mut file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
        std::io::Seek::seek(&mut file, std::io::SeekFrom::Start(base)).map_err(|e| Error::io(path, e))?;
        Box::new(file)
    };
    let mut blocks = LineBlocks::new(&mut reader, path, 8 << 20);
    let mut pending = offsets.into_iter().peekable();
    // Bytes carried over when a document spans blocks (pretty-printed Bundles).
    let mut carry: Vec<u8> = Vec::new();
    let mut carry_start = 0u64;
    while pending.peek().is_some() {
        let Some(block) = blocks.next() else { break };
        let block = block?;
        let (bytes, start) = if carry.is_empty() {
            // Offsets in the file: a part read from `base` counts its blocks from there.
            (block.bytes, block.offset + base)
        } else {
            let mut b = std::mem::take(&mut carry);
            b.extend_from_slice(&block.bytes);
            (b, carry_start)
        };
        let end = start + bytes.len() as u64;
        while let Some(&(offset, ref at)) = pending.peek() {
            if offset >= end {
                break;
            }
            let line = at.line;
            let from = (offset - start) as usize;
            // The file's first document may follow a byte-order mark (the audit skipped it too).
            let doc_bytes = if offset == 0 { source::strip_bom(&bytes[from..]) } else { &bytes[from..] };
            let mut stream = serde_json::Deserializer::from_slice(doc_bytes).into_iter::<Value>();
            match stream.next() {
                Some(Ok(doc)) => {
                    let (_, at) = pending.next().expect("peeked");
                    for k in at.keys {
                        let text = body_text(h, k, &doc)
                            .ok_or_else(|| changed(path, line, offset, "the document there holds no such version"))?;
                        out(k, text);
                    }
                }
                Some(Err(e)) if e.is_eof() => {
                    // The document goes on in the next block.
                    carry = bytes[from..].to_vec();
                    carry_start = offset;
                    break;
                }
                // What serde_json's values cannot hold (a number beyond f64, a lone surrogate,
                // deep nesting) but the audit read: the document's raw text.
                Some(Err(e)) => match serde_json::Deserializer::from_slice(doc_bytes)
                    .into_iter::<&serde_json::value::RawValue>()
                    .next()
                {
                    Some(Ok(doc)) => {
                        let (_, at) = pending.next().expect("peeked");
                        for k in at.keys {
                            let text = raw_body_text(h, k, doc.get()).ok_or_else(|| {
                                changed(path, line, offset, "the document there holds no such version")
                            })?;
                            out(k, text);
                        }
                    }
                    // A document that goes on in the next block.
                    Some(Err(raw)) if raw.is_eof() => {
                        carry = bytes[from..].to_vec();
                        carry_start = offset;
                        break;
                    }
                    _ => return Err(changed(path, line, offset, &describe_json_error(&e))),
                },
                // Only white space to the end of the block: the document, if any, is in the next
                // one (and the file ending first is reported below).
                None => {
                    carry = bytes[from..].to_vec();
                    carry_start = offset;
                    break;
                }
            }
        }
    }
    if let Some(&(offset, ref at)) = pending.peek() {
        return Err(changed(path, at.line, offset, "the file ends before it"));
    }
    Ok(())
}

/// The bodies of table rows (a `$dump-sql` TSV, a `pg_dump`'s COPY blocks): each wanted line
/// turned into its JSON history row again.
fn read_rows(
    f: &InputFile,
    layout: &Layout,
    h: &History,
    offsets: BTreeMap<u64, At>,
    out: &mut dyn FnMut(VersionKey, String),
) -> Result<()> {
    let path = f.path.as_path();
    let mut reader = source::open_unhashed(f)?;
    let mut pending = offsets.into_iter().peekable();
    for block in LineBlocks::new(&mut reader, path, 8 << 20) {
        let block = block?;
        for (line, offset, text) in source::lines_of(&block) {
            let text = if line == 1 { source::strip_bom(text) } else { text };
            let Some(&(want, _)) = pending.peek() else { return Ok(()) };
            if offset != want {
                continue;
            }
            let (_, at) = pending.next().expect("peeked");
            let columns = layout
                .columns_at(line)
                .ok_or_else(|| changed(path, at.line, offset, "the line there is no table row"))?;
            let json = pg_text::fields(text)
                .and_then(|f| pg_text::row_json(columns, &f))
                .map_err(|what| changed(path, at.line, offset, &what))?;
            let doc: std::result::Result<Value, _> = serde_json::from_str(&json);
            for k in at.keys {
                let text = match &doc {
                    Ok(doc) => body_text(h, k, doc),
                    // What serde_json's values cannot hold but the audit read: the raw row.
                    Err(e) => Some(
                        raw_body_text(h, k, &json)
                            .ok_or_else(|| changed(path, at.line, offset, &describe_json_error(e)))?,
                    ),
                }
                .ok_or_else(|| changed(path, at.line, offset, "the row there holds no such version"))?;
                out(k, text);
            }
        }
    }
    match pending.peek() {
        Some(&(offset, ref at)) => Err(changed(path, at.line, offset, "the file ends before it")),
        None => Ok(()),
    }
}

/// The bodies of YAML documents: the file read again and split the same way.
fn read_yaml(
    f: &InputFile,
    h: &History,
    offsets: BTreeMap<u64, At>,
    out: &mut dyn FnMut(VersionKey, String),
) -> Result<()> {
    let path = f.path.as_path();
    let mut all = Vec::new();
    std::io::Read::read_to_end(
        &mut std::io::Read::take(source::open_unhashed(f)?, source::max_line().saturating_add(1)),
        &mut all,
    )
    .map_err(|e| Error::io(path, e))?;
    if all.len() as u64 > source::max_line() {
        return Err(source::too_long(path, 1, 0, "document", all.len() as u64));
    }
    let body = source::strip_bom(&all);
    let bom = (all.len() - body.len()) as u64;
    let text = std::str::from_utf8(body).unwrap_or("");
    let docs = history::yaml::documents(text);
    for (offset, at) in offsets {
        let doc = docs
            .iter()
            .find(|d| d.offset as u64 + bom == offset)
            .ok_or_else(|| changed(path, at.line, offset, "no YAML document starts there"))?;
        let value = history::yaml::to_json(doc.text).map_err(|(_, what)| changed(path, at.line, offset, &what))?;
        for k in at.keys {
            let text = body_text(h, k, &value)
                .ok_or_else(|| changed(path, at.line, offset, "the document there holds no such version"))?;
            out(k, text);
        }
    }
    Ok(())
}

fn changed(path: &std::path::Path, line: u64, offset: u64, what: &str) -> Error {
    Error::input(path, line, offset, format!("on re-reading a body: {what} (the file changed since it was indexed)"))
}

/// The wanted version's body in the document, completed, as compact JSON; `None` when the
/// document does not hold it.
fn body_text(h: &History, k: VersionKey, doc: &Value) -> Option<String> {
    let r = &h.resources[k.0 as usize];
    let v = &r.versions[k.1 as usize];
    let body = history::read_body(doc, &v.source, h.type_name(r.resource_type), &r.id, &v.version_id, v.last_updated)?;
    // A Value always serialises.
    serde_json::to_string(&body).ok()
}

/// As [`body_text`], from a document's raw text that `serde_json::Value` cannot hold.
fn raw_body_text(h: &History, k: VersionKey, doc: &str) -> Option<String> {
    let r = &h.resources[k.0 as usize];
    let v = &r.versions[k.1 as usize];
    raw::body_text(doc, v.source.entry, h.type_name(r.resource_type), &r.id, &v.version_id, v.last_updated)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fhir::compartment::{Compartment, FhirVersion};
    use crate::history::{self, ParseOptions};
    use crate::index;

    fn line(id: &str, v: u32) -> String {
        format!(
            r#"{{"resourceType":"Observation","id":"{id}","meta":{{"versionId":"{v}","lastUpdated":"2023-01-0{v}T00:00:00Z"}},"status":"final"}}"#
        ) + "\n"
    }

    /// Indexes `text` written to a file, then lets `change` rewrite the file before the bodies of
    /// every version are re-read.
    fn reread(text: &str, change: impl FnOnce(&std::path::Path)) -> Result<HashMap<VersionKey, String>> {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("h.ndjson");
        std::fs::write(&path, text).unwrap();
        let files = source::collect(std::slice::from_ref(&path)).unwrap();
        let c = Compartment::load(FhirVersion::R4);
        let opts = ParseOptions::new(&c, crate::timestamp::Zone::UTC, false);
        let (h, reading) = index::build(|to| history::read(&files, &opts, to)).unwrap();
        let wanted: Vec<VersionKey> = (0..h.resources.len() as u32)
            .flat_map(|r| (0..h.resources[r as usize].versions.len() as u32).map(move |v| (r, v)))
            .collect();
        change(&path);
        let bodies = read(&files, &reading.layouts, &h, &wanted, &tmp.path().join(".bodies"))?;
        let mut out = HashMap::new();
        for k in wanted {
            let mut buf = String::new();
            if let Some(b) = bodies.get(k, &mut buf)? {
                out.insert(k, b.to_string());
            }
        }
        drop(bodies);
        let left: Vec<_> = std::fs::read_dir(tmp.path())
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().starts_with(".bodies"))
            .collect();
        assert!(left.is_empty(), "the spill files are removed with the bodies");
        Ok(out)
    }

    /// A big uncompressed file is re-read in parts from their own byte offsets: every body comes
    /// back, each its own, and a change in a later part is still found at its line.
    #[test]
    fn a_big_file_read_in_parts_gives_every_body() {
        let n = 2 * PART + 123;
        let text: String = (0..n).map(|i| line(&format!("o{i}"), 1 + (i % 9) as u32)).collect();
        let bodies = reread(&text, |_| {}).unwrap();
        assert_eq!(bodies.len(), n);
        for i in [0, PART - 1, PART, 2 * PART, n - 1] {
            let id = format!("\"id\":\"o{i}\"");
            assert_eq!(bodies.values().filter(|b| b.contains(&id)).count(), 1, "{id}");
        }
        let broken = reread(&text, |p| {
            let t = std::fs::read_to_string(p).unwrap();
            let mut lines: Vec<String> = t.lines().map(str::to_string).collect();
            let at = 2 * PART + 7;
            let len = lines[at].len();
            lines[at] = format!("{{\"resourceType\": oops{}", " ".repeat(len - 23));
            std::fs::write(p, lines.join("\n") + "\n").unwrap();
        })
        .unwrap_err()
        .to_string();
        assert!(broken.contains(&format!("h.ndjson:{} (byte ", 2 * PART + 8)), "{broken}");
    }

    #[test]
    fn bodies_come_back_completed() {
        let text = line("a", 1) + &line("b", 2);
        let bodies = reread(&text, |_| {}).unwrap();
        assert_eq!(bodies.len(), 2);
        assert!(bodies.values().all(|b| b.contains(r#""status":"final""#)));
    }

    /// A body that is no longer where it was indexed is an error naming the version's own line
    /// (counted from the start of the file), never an empty cell or `{}`.
    #[test]
    fn a_body_changed_since_indexing_is_an_error_at_its_line() {
        let text: String = (1..=5).map(|i| line(&format!("o{i}"), 1)).collect();
        let broken = reread(&text, |p| {
            let t = std::fs::read_to_string(p).unwrap();
            let lines: Vec<&str> = t.lines().collect();
            let mut out = lines[..3].join("\n") + "\n{\"resourceType\": oops\n";
            out += &(lines[4].to_string() + "\n");
            std::fs::write(p, out).unwrap();
        })
        .unwrap_err()
        .to_string();
        assert!(broken.contains("h.ndjson:4 (byte "), "{broken}");
        assert!(broken.contains("on re-reading a body") && broken.contains("changed since it was indexed"), "{broken}");
        let other = reread(&text, |p| std::fs::write(p, line("zz", 1).repeat(5)).unwrap()).unwrap_err().to_string();
        assert!(
            other.contains("h.ndjson:1 (byte 0): on re-reading a body: the document there holds no such version"),
            "{other}"
        );
        let cut = reread(&text, |p| std::fs::write(p, line("o1", 1)).unwrap()).unwrap_err().to_string();
        assert!(cut.contains("h.ndjson:2 (byte ") && cut.contains("the file ends before it"), "{cut}");
    }
}
