//! Synthetic worlds for fixtures, tests and benchmarks: the Synthea population cloned K times
//! with new ids, a generated history (updates, deletions, recreations, resources moving between
//! patients), Groups and Clients that change, BulkExportStatus resources, request logs with a few
//! dozen export kickoffs among other requests, and the truth: the rows each export must give,
//! computed from the generator's own model of the world. Nothing here uses the audit's code: the
//! compartment table, references, scopes and dates are read and written by this crate itself.
//!
//! Written in the simple form the DuckDB peer reads (`fhir`) or in a mix of every input form
//! (`mixed`: Aidbox rows, history Bundles, resources with meta, `.zst`/`.gz`, Elasticsearch hits,
//! Kibana CSV).
//!
//! This file owns the public types; `generate` builds a world in memory and `write` puts it on
//! disk.

mod compartment;
mod generate;
mod kickoffs;
mod population;
mod time;
mod truth;
mod write;

use std::path::PathBuf;

pub use generate::generate;
pub use write::write;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WorldFormat {
    /// `logs/*.ndjson` (Aidbox lines) and `history/*.ndjson` (resources with meta, DELETE
    /// entries): what `duckdb_peer.py` reads.
    Fhir,
    /// Every input form at once.
    Mixed,
}

#[derive(Debug, Clone)]
pub struct WorldSpec {
    /// Folder of `<Type>.ndjson.zst` Synthea files.
    pub synthea: PathBuf,
    pub clones: usize,
    /// Patients taken from the population (None: all).
    pub patients: Option<usize>,
    /// At most this many resources of one type per patient (None: all).
    pub max_per_type: Option<usize>,
    /// Requests that are not kickoffs.
    pub noise_requests: usize,
    pub seed: u64,
    pub format: WorldFormat,
}

/// Deterministic pseudo-random numbers (SplitMix64).
#[derive(Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            0
        } else {
            self.next_u64() % n
        }
    }
}

/// One version in the generated history.
#[derive(Clone, Debug)]
pub struct GenVersion {
    pub time: i64,
    pub txid: u64,
    pub deleted: bool,
    /// The body (None for a deletion).
    pub body: Option<String>,
    pub patients: Vec<String>,
}

#[derive(Clone, Debug)]
pub struct GenResource {
    pub rtype: String,
    pub id: String,
    pub versions: Vec<GenVersion>,
}

/// A kickoff in the generated logs.
#[derive(Clone, Debug)]
pub struct GenKickoff {
    pub ctx: String,
    pub client: String,
    pub time: i64,
    pub response: i64,
    pub method: &'static str,
    pub url: String,
    /// Query string logged in `w_qs` (else it is part of the URL).
    pub qs: Option<String>,
    pub status: u16,
    pub level: &'static str,
    pub group: Option<String>,
    pub types: Option<Vec<String>>,
    pub patients: Vec<String>,
    pub since: Option<i64>,
    pub until: Option<i64>,
    /// Why this kickoff is in the story.
    pub story: String,
}

/// The whole world in memory.
pub struct World {
    pub resources: Vec<GenResource>,
    pub kickoffs: Vec<GenKickoff>,
    /// Other requests: (time, method, url, client, status).
    pub noise: Vec<(i64, &'static str, String, String, u16)>,
    /// Expected rows: (export_id, client_id, patient_id, type, id, version).
    pub truth: Vec<[String; 6]>,
    pub story: Vec<String>,
}

/// The story of the world, one line per kickoff, for a fixture's README.
pub fn story(world: &World) -> String {
    world.story.join("\n") + "\n"
}

const DAY: i64 = 86_400 * 1_000_000_000;
const MS: i64 = 1_000_000;
/// 2023-01-01T00:00:00Z.
const EPOCH: i64 = 1_672_531_200 * 1_000_000_000;

/// The instant `d` days after the world's epoch.
fn day(d: f64) -> i64 {
    EPOCH + (d * DAY as f64) as i64
}
