//! Any bytes as one file of a stored version index: the first byte picks the file (a table,
//! `index.json` or `SHA256SUMS` of the seed index in `fuzz/seed/stored_index`, the guide
//! fixture's), the rest replaces it. The index is then read as `audit --index` reads it
//! (verified first) and as a forger's re-summed index would be (not verified): either may be
//! refused, neither may panic, hang or load something the other does not.
#![no_main]

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use libfuzzer_sys::fuzz_target;

const FILES: [&str; 16] = [
    "versions.parquet",
    "version_patients.parquet",
    "version_references.parquet",
    "clients.parquet",
    "groups.parquet",
    "access_policies.parquet",
    "statuses.parquet",
    "kickoffs.parquet",
    "export_types.parquet",
    "export_patients.parquet",
    "planned_exports.parquet",
    "planned_findings.parquet",
    "status_counts.parquet",
    "inputs.parquet",
    "index.json",
    "SHA256SUMS",
];

fn seed() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("seed/stored_index")
}

static RUN: AtomicU64 = AtomicU64::new(0);

fuzz_target!(|data: &[u8]| {
    let Some((&pick, payload)) = data.split_first() else { return };
    let replaced = FILES[pick as usize % FILES.len()];
    // A fresh folder each time: nothing of one input is left for the next.
    let dir = std::env::temp_dir().join(format!("bulk-audit-fuzz-index-{}-{}", std::process::id(), RUN.fetch_add(1, Ordering::Relaxed)));
    std::fs::create_dir_all(&dir).unwrap();
    for f in FILES {
        if f == replaced {
            std::fs::write(dir.join(f), payload).unwrap();
        } else {
            std::fs::copy(seed().join(f), dir.join(f)).unwrap();
        }
    }
    let _ = bulk_audit::hooks::read_stored_index(&dir);
    std::fs::remove_dir_all(&dir).unwrap();
});
