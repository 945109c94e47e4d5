//! Re-reading version bodies by their source position, for `--with-resource` and
//! `--reconstruct`: only the files that hold a wanted version are read again, and only the
//! wanted lines are parsed.

use std::collections::{BTreeMap, HashMap};

use serde_json::Value;

use crate::error::{describe_json_error, Error, Result};
use crate::history::{self, Source};
use crate::index::History;
use crate::inputs::{self, InputFile, LineBlocks};

/// A wanted version: (resource index, version index).
pub type VersionKey = (u32, u32);

/// Reads the bodies of the wanted versions; returns them as compact JSON text.
pub fn read(files: &[InputFile], h: &History, wanted: &[VersionKey]) -> Result<HashMap<VersionKey, String>> {
    // file → offset → the versions whose document starts there.
    let mut by_file: BTreeMap<u32, BTreeMap<u64, Vec<VersionKey>>> = BTreeMap::new();
    for &k in wanted {
        let v = &h.resources[k.0 as usize].versions[k.1 as usize];
        by_file.entry(v.source.file).or_default().entry(v.source.offset).or_default().push(k);
    }
    let mut out = HashMap::new();
    for (file, offsets) in by_file {
        let f = &files[file as usize];
        let mut input = inputs::open(f)?;
        let path = f.path.clone();
        let mut blocks = LineBlocks::new(&mut input.reader, &path, 8 << 20);
        let mut pending = offsets.into_iter().peekable();
        // Bytes carried over when a document spans blocks (pretty-printed Bundles).
        let mut carry: Vec<u8> = Vec::new();
        let mut carry_start = 0u64;
        while pending.peek().is_some() {
            let Some(block) = blocks.next() else { break };
            let block = block?;
            let (bytes, start) = if carry.is_empty() {
                (block.bytes, block.offset)
            } else {
                let mut b = std::mem::take(&mut carry);
                b.extend_from_slice(&block.bytes);
                (b, carry_start)
            };
            let end = start + bytes.len() as u64;
            while let Some(&(offset, _)) = pending.peek() {
                if offset >= end {
                    break;
                }
                let at = (offset - start) as usize;
                let mut stream = serde_json::Deserializer::from_slice(&bytes[at..]).into_iter::<Value>();
                match stream.next() {
                    Some(Ok(doc)) => {
                        let (_, keys) = pending.next().expect("peeked");
                        for k in keys {
                            out.insert(k, body_text(h, k, &doc));
                        }
                    }
                    Some(Err(e)) if e.is_eof() => {
                        // The document goes on in the next block.
                        carry = bytes[at..].to_vec();
                        carry_start = offset;
                        break;
                    }
                    Some(Err(e)) => {
                        let line = inputs::line_of_offset(&bytes, at);
                        return Err(Error::input(&path, line, offset, format!("on re-reading a body: {}", describe_json_error(&e))));
                    }
                    None => break,
                }
            }
        }
        if let Some(&(offset, _)) = pending.peek() {
            return Err(Error::input(&path, 0, offset, "on re-reading a body: the file changed since it was indexed"));
        }
    }
    Ok(out)
}

fn body_text(h: &History, k: VersionKey, doc: &Value) -> String {
    let r = &h.resources[k.0 as usize];
    let v = &r.versions[k.1 as usize];
    let src: &Source = &v.source;
    history::read_body(doc, src, h.type_name(r.resource_type), &r.id, &v.version_id, v.last_updated)
        .map(|b| serde_json::to_string(&b).unwrap_or_default())
        .unwrap_or_default()
}
