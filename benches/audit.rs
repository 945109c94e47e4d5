//! Criterion benches of the three hot stages, on a generated world (20 Synthea patients, every
//! resource, history in the peer's simple form): the history reader (parse + index, and per line:
//! serde_json's IgnoredAny beside the quick reader and the whole fast path), the as-of lookup,
//! and the resolver. Run with `cargo bench --bench audit`; the end-to-end comparison
//! with the parse floor and the DuckDB peer is `benches/reference.sh`.

use std::path::PathBuf;

use bulk_audit::compartment::{Compartment, FhirVersion};
use bulk_audit::history::{self, ParseOptions};
use bulk_audit::index::Boundary;
use bulk_audit::resolve::{self, NonCompartment, ResolveOptions};
use bulk_audit::scopes::Wildcard;
use bulk_audit::timestamp::Instant;
use bulk_audit::world::{self, WorldFormat, WorldSpec};
use chrono_tz::Tz;
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
    let dir = world_dir();
    let files = bulk_audit::inputs::collect(&[dir.join("history")]).expect("inputs");
    let bytes: u64 = files.iter().map(|f| f.size).sum();
    let compartment = Compartment::load(FhirVersion::R4);
    let opts = ParseOptions::new(&compartment, Tz::UTC, false);

    let mut g = c.benchmark_group("history");
    g.throughput(Throughput::Bytes(bytes));
    g.sample_size(10);
    g.bench_function("read_and_index", |b| b.iter(|| history::read(&files, &opts).expect("read")));
    g.finish();

    // One thread, lines in memory: the parse floor's serde_json IgnoredAny, the quick reader
    // alone (history/skim.rs), and the whole fast path of a line (fields, meta, patients).
    let text: Vec<u8> = files.iter().flat_map(|f| std::fs::read(&f.path).expect("read")).collect();
    let lines: Vec<&[u8]> = text.split(|&b| b == b'\n').filter(|l| !l.is_empty()).collect();
    let mut g = c.benchmark_group("history_line");
    g.throughput(Throughput::Bytes(text.len() as u64));
    g.sample_size(20);
    g.bench_function("serde_ignored_any", |b| {
        b.iter(|| lines.iter().filter(|l| serde_json::from_slice::<serde::de::IgnoredAny>(l).is_ok()).count())
    });
    g.bench_function("quick_reader", |b| b.iter(|| lines.iter().filter(|l| history::skim_for_bench(l, &opts)).count()));
    g.bench_function("fast_path", |b| b.iter(|| history::scan_for_bench(&lines, &opts)));
    g.finish();

    let (h, _, _) = history::read(&files, &opts).expect("read");
    let t = Instant(1_674_000_000_000_000_000);
    let mut g = c.benchmark_group("index");
    g.throughput(Throughput::Elements(h.resources.len() as u64));
    g.bench_function("as_of_every_resource", |b| {
        b.iter(|| h.resources.iter().filter(|r| r.live_at(t, Boundary::Strict).is_some()).count())
    });
    g.finish();

    let (events, _) = bulk_audit::audit::read_exports(&[dir.join("logs")], &Tz::UTC, i64::MAX, false).expect("logs");
    let ropts = ResolveOptions {
        boundary: Boundary::Strict,
        wildcard_types: Wildcard::Smartbox.expand(&h.present_types()).expect("wildcard"),
        non_compartment: NonCompartment::All,
        skip_inactive_members: false,
        compartment: &compartment,
    };
    let mut g = c.benchmark_group("resolve");
    g.throughput(Throughput::Elements(events.len() as u64));
    g.bench_function("every_export", |b| b.iter(|| events.iter().map(|e| resolve::resolve(e, &h, &ropts).rows.len()).sum::<usize>()));
    g.finish();
}

criterion_group!(audit, benches);
criterion_main!(audit);
