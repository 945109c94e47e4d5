//! The parse floor: the time to read every line of the given files and parse it with serde_json
//! into `IgnoredAny` on all cores. A reader thread cuts the (decompressed) files into blocks of
//! whole lines (refilling the buffers rayon is done with) while rayon parses the previous block,
//! as bulk-audit does; nothing is hashed. With `--sha256` the reader also hashes every input as
//! bulk-audit does for its manifest (SPEC): the floor of any reader that meets the SPEC.
//!
//! cargo run --release --example parse_floor -- [--sha256] PATH...

use std::path::PathBuf;
use std::sync::mpsc::sync_channel;

use rayon::prelude::*;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let hash = args.iter().any(|a| a == "--sha256");
    let paths: Vec<PathBuf> = args.iter().filter(|a| *a != "--sha256").map(PathBuf::from).collect();
    let files = bulk_audit::inputs::collect(&paths).expect("inputs");
    let t = std::time::Instant::now();
    let (tx, rx) = sync_channel::<bulk_audit::inputs::LineBlock>(2);
    // Parsed blocks go back to the reader to be filled again, as in bulk-audit.
    let spares = std::sync::Arc::new(bulk_audit::inputs::BufferPool::default());
    let reader_spares = spares.clone();
    let reader = std::thread::spawn(move || {
        let mut bytes = 0u64;
        let mut digests = Vec::new();
        for f in &files {
            let mut hashed = hash.then(|| bulk_audit::inputs::open(f).expect("open"));
            let mut plain = (!hash).then(|| bulk_audit::inputs::open_unhashed(f).expect("open"));
            let reader: &mut dyn std::io::Read = match (hashed.as_mut(), plain.as_mut()) {
                (Some(h), _) => &mut h.reader,
                (None, Some(p)) => p,
                (None, None) => unreachable!("one of the two is open"),
            };
            for block in bulk_audit::inputs::LineBlocks::new(reader, &f.path, 8 << 20).with_spares(&reader_spares) {
                let block = block.expect("read");
                bytes += block.bytes.len() as u64;
                tx.send(block).expect("send");
            }
            digests.extend(hashed.map(|h| h.sha256()));
        }
        (bytes, digests.len())
    });
    let mut lines = 0u64;
    for block in rx {
        // The line ends the reader found, as bulk-audit uses them (splitting the block again
        // byte by byte, as rayon's `par_split` does, cost a quarter of this floor's time).
        let texts: Vec<&[u8]> = bulk_audit::inputs::lines_of(&block).map(|(_, _, text)| text).collect();
        lines += texts
            .par_chunks(256)
            .map(|chunk| {
                let mut n = 0u64;
                for l in chunk.iter().filter(|l| !l.is_empty()) {
                    serde_json::from_slice::<serde::de::IgnoredAny>(l).expect("valid JSON");
                    n += 1;
                }
                n
            })
            .sum::<u64>();
        spares.give(block.bytes);
    }
    let (bytes, hashed) = reader.join().expect("reader");
    let s = t.elapsed().as_secs_f64();
    println!("parse floor: {lines} lines, {:.1} MB in {s:.3}s = {:.0} MB/s on {} threads, {hashed} files hashed", bytes as f64 / 1e6, bytes as f64 / 1e6 / s, rayon::current_num_threads());
}
