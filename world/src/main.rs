//! `make-world`: builds a synthetic world from the Synthea population (see the library).
//!
//! cargo run --release -p bulk-audit-world -- OUT_DIR [--clones K] [--patients N]
//!     [--max-per-type N] [--requests N] [--seed S] [--format fhir|mixed] [--synthea DIR]

use std::path::PathBuf;

use bulk_audit_world::{self as world, WorldFormat, WorldSpec};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut spec = WorldSpec {
        synthea: PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../data/synthea-r4")),
        clones: 1,
        patients: None,
        max_per_type: None,
        noise_requests: 5000,
        seed: 42,
        format: WorldFormat::Fhir,
    };
    let mut out = None;
    let mut i = 0;
    while i < args.len() {
        let val = || args.get(i + 1).cloned().unwrap_or_else(|| panic!("{} needs a value", args[i]));
        match args[i].as_str() {
            "--clones" | "-k" => spec.clones = val().parse().expect("--clones N"),
            "--patients" => spec.patients = Some(val().parse().expect("--patients N")),
            "--max-per-type" => spec.max_per_type = Some(val().parse().expect("--max-per-type N")),
            "--requests" => spec.noise_requests = val().parse().expect("--requests N"),
            "--seed" => spec.seed = val().parse().expect("--seed S"),
            "--synthea" => spec.synthea = PathBuf::from(val()),
            "--format" => {
                spec.format = match val().as_str() {
                    "fhir" => WorldFormat::Fhir,
                    "mixed" => WorldFormat::Mixed,
                    other => panic!("--format fhir|mixed, not {other}"),
                }
            }
            other if out.is_none() && !other.starts_with("--") => {
                out = Some(PathBuf::from(other));
                i += 1;
                continue;
            }
            other => panic!("unknown argument {other}"),
        }
        i += 2;
    }
    let out = out.expect("usage: make-world OUT_DIR [options]");
    let t = std::time::Instant::now();
    let w = world::generate(&spec).expect("generate");
    let bytes = world::write(&w, &out, spec.format).expect("write");
    let versions: usize = w.resources.iter().map(|r| r.versions.len()).sum();
    // Written without panicking when stdout is closed early (e.g. piped into `head`).
    use std::io::Write;
    let mut stdout = std::io::stdout();
    let _ = writeln!(
        stdout,
        "{} resources, {versions} versions, {} kickoffs, {} other requests, {} truth rows, {:.1} MB of history in \
         {:.1}s -> {}",
        w.resources.len(),
        w.kickoffs.len(),
        w.noise.len(),
        w.truth.len(),
        bytes as f64 / 1e6,
        t.elapsed().as_secs_f64(),
        out.display()
    );
    let _ = write!(stdout, "{}", world::story(&w));
}
