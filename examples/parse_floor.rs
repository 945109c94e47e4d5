//! The parse floor: the time to read every line of the given files and parse it with serde_json
//! into `IgnoredAny` on all cores. A reader thread cuts the (decompressed) files into blocks of
//! whole lines (refilling the buffers rayon is done with) while rayon parses the previous block,
//! as bulk-audit does; nothing is hashed.
//!
//! cargo run --release --example parse_floor -- PATH...

use std::path::PathBuf;
use std::sync::mpsc::sync_channel;

use rayon::prelude::*;

fn main() {
    let paths: Vec<PathBuf> = std::env::args().skip(1).map(PathBuf::from).collect();
    let files = bulk_audit::inputs::collect(&paths).expect("inputs");
    let t = std::time::Instant::now();
    let (tx, rx) = sync_channel::<Vec<u8>>(2);
    // Parsed blocks go back to the reader to be filled again, as in bulk-audit.
    let spares = std::sync::Arc::new(bulk_audit::inputs::BufferPool::default());
    let reader_spares = spares.clone();
    let reader = std::thread::spawn(move || {
        let mut bytes = 0u64;
        for f in &files {
            let mut input = bulk_audit::inputs::open_unhashed(f).expect("open");
            for block in bulk_audit::inputs::LineBlocks::new(&mut input, &f.path, 8 << 20).with_spares(&reader_spares) {
                let block = block.expect("read");
                bytes += block.bytes.len() as u64;
                tx.send(block.bytes).expect("send");
            }
        }
        bytes
    });
    let mut lines = 0u64;
    for block in rx {
        lines += block
            .par_split(|&b| b == b'\n')
            .filter(|l| !l.is_empty())
            .map(|l| {
                serde_json::from_slice::<serde::de::IgnoredAny>(l).expect("valid JSON");
                1u64
            })
            .sum::<u64>();
        spares.give(block);
    }
    let bytes = reader.join().expect("reader");
    let s = t.elapsed().as_secs_f64();
    println!("parse floor: {lines} lines, {:.1} MB in {s:.3}s = {:.0} MB/s on {} threads", bytes as f64 / 1e6, bytes as f64 / 1e6 / s, rayon::current_num_threads());
}
