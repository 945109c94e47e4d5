//! The parse floor: the time to read every line of the given files and parse it with serde_json
//! into `IgnoredAny` on all cores. A reader thread cuts the (decompressed) files into blocks of
//! whole lines (refilling the buffers rayon is done with) while rayon parses the previous block,
//! as bulk-audit does; nothing is hashed. With `--sha256` the reader also hashes every input as
//! bulk-audit does for its manifest (SPEC): the floor of any reader that meets the SPEC.
//!
//! cargo run --release --features hooks --example parse_floor -- [--sha256] PATH...

use std::path::PathBuf;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let hash = args.iter().any(|a| a == "--sha256");
    let paths: Vec<PathBuf> = args.iter().filter(|a| *a != "--sha256").map(PathBuf::from).collect();
    let t = std::time::Instant::now();
    let floor = bulk_audit::hooks::parse_floor(&paths, hash).unwrap_or_else(|e| panic!("{e}"));
    let s = t.elapsed().as_secs_f64();
    let mb = floor.bytes as f64 / 1e6;
    println!(
        "parse floor: {} lines, {mb:.1} MB in {s:.3}s = {:.0} MB/s on {} threads, {} files hashed",
        floor.lines,
        mb / s,
        rayon::current_num_threads(),
        floor.files_hashed
    );
}
