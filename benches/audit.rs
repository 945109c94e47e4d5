//! Criterion benches of the three hot stages, on a generated world (20 Synthea patients, every
//! resource, history in the peer's simple form): the history reader (parse + index, and per line:
//! serde_json's IgnoredAny beside the quick reader and the whole fast path), the as-of lookup,
//! and the resolver. Run with `cargo bench --features hooks --bench audit`; the end-to-end
//! comparison with the parse floor and the DuckDB peer is `benches/reference.sh`.

use std::path::PathBuf;

use bulk_audit::hooks::Bench;
use bulk_audit_world::{self as world, WorldFormat, WorldSpec};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};

fn world_dir() -> PathBuf {
    let dir = std::env::temp_dir().join("bulk-audit-bench-world");
    if !dir.join("truth/expected_resources.csv").exists() {
        let spec = WorldSpec {
            synthea: PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("data/synthea-r4"),
            clones: 1,
            patients: Some(20),
            max_per_type: None,
            noise_requests: 1000,
            seed: 42,
            format: WorldFormat::Fhir,
        };
        let w = world::generate(&spec).expect("generate");
        world::write(&w, &dir, WorldFormat::Fhir).expect("write");
    }
    dir
}

fn benches(c: &mut Criterion) {
    let mut bench = Bench::new(&world_dir()).expect("the bench world");

    let mut g = c.benchmark_group("history");
    g.throughput(Throughput::Bytes(bench.history_bytes()));
    g.sample_size(10);
    g.bench_function("read_and_index", |b| b.iter(|| bench.read_and_index()));
    g.finish();

    // One thread, lines in memory: the parse floor's serde_json IgnoredAny, the quick reader
    // alone (history/fast/skim.rs), and the whole fast path of a line (fields, meta, patients).
    let text = bench.history_text();
    let lines: Vec<&[u8]> = text.split(|&b| b == b'\n').filter(|l| !l.is_empty()).collect();
    let mut g = c.benchmark_group("history_line");
    g.throughput(Throughput::Bytes(text.len() as u64));
    g.sample_size(20);
    g.bench_function("serde_ignored_any", |b| {
        b.iter(|| lines.iter().filter(|l| serde_json::from_slice::<serde::de::IgnoredAny>(l).is_ok()).count())
    });
    g.bench_function("quick_reader", |b| b.iter(|| lines.iter().filter(|l| bench.quick_reader_accepts(l)).count()));
    g.bench_function("fast_path", |b| b.iter(|| bench.fast_path_versions(&lines)));
    g.finish();

    bench.index();
    let mut g = c.benchmark_group("index");
    g.bench_function("as_of_every_resource", |b| b.iter(|| bench.as_of_every_resource(1_674_000_000_000_000_000)));
    g.finish();

    let mut g = c.benchmark_group("resolve");
    g.throughput(Throughput::Elements(bench.exports() as u64));
    g.bench_function("every_export", |b| b.iter(|| bench.resolve_every_export()));
    g.finish();
}

criterion_group!(audit, benches);
criterion_main!(audit);
