//! Entry points for the fuzz targets, the criterion benches and the parse-floor example (the
//! `hooks` feature): plain types in, plain answers out. Not the library's API.

use std::path::{Path, PathBuf};
use std::sync::mpsc::sync_channel;

use crate::timestamp::Zone;
use rayon::prelude::*;

use crate::fhir::compartment::{Compartment, FhirVersion};
use crate::history::{self, ParseOptions};
use crate::index::{self, Boundary, History};
use crate::logs;
use crate::rules::kickoff::{self, ExportEvent};
use crate::rules::resolve::{self, NonCompartment, ResolveOptions};
use crate::rules::scopes::Wildcard;
use crate::source::{self, BufferPool, InputFile, LineBlock, LineBlocks, Tally};
use crate::timestamp::Instant;

/// Fuzz target `history`: any bytes as one history line. `Err` when the fast path and the
/// reference reading disagree, or the quick reader accepts what serde_json refuses.
pub fn check_history_line(line: &[u8]) -> Result<(), String> {
    let c = Compartment::load(FhirVersion::R4);
    let opts = ParseOptions::new(&c, Zone::UTC, true);
    history::fuzzing::check_line(line, &opts)
}

/// Fuzz target `history_file`: any bytes as a whole history file ($dump-sql TSV, a pg_dump,
/// YAML or JSON documents). `Err` when the fast path and the reference reading disagree on a row.
pub fn check_history_file(bytes: &[u8]) -> Result<(), String> {
    let c = Compartment::load(FhirVersion::R4);
    let opts = ParseOptions::new(&c, Zone::UTC, true);
    history::fuzzing::check_file(bytes, &opts)
}

/// Fuzz targets `logs` and `kibana_csv`: any bytes as a log file, read strictly and with
/// `--skip-invalid`; what is read is merged into requests and searched for kickoffs. Returns
/// the kickoffs found by the lenient reading.
pub fn read_log_file(bytes: &[u8]) -> usize {
    let mut found = 0;
    for skip in [false, true] {
        let mut lines = Vec::new();
        let mut tally = Tally::new(skip);
        if logs::read_one(Path::new("fuzz.log"), 0, bytes, &Zone::UTC, &mut lines, &mut tally).is_ok() {
            let requests = logs::merge(lines, &["fuzz.log".to_string()]);
            found = kickoff::find(&requests, &Zone::UTC).map_or(0, |events| events.len());
        }
    }
    found
}

/// Fuzz target `stored_index`: the version index in `dir`, read as `audit --index` reads it
/// (verified first) and as an index re-summed by a forger would be (not verified). Neither may
/// panic; a verified read that succeeds must load what the unverified one loads. Returns the
/// versions the unverified read loaded, or its error.
#[cfg(feature = "parquet")]
pub fn read_stored_index(dir: &Path) -> Result<u64, String> {
    let verified = crate::index_files::load_for_fuzzing(dir, true).map_err(|e| e.to_string());
    let unverified = crate::index_files::load_for_fuzzing(dir, false).map_err(|e| e.to_string());
    if let (Ok(a), Ok(b)) = (&verified, &unverified) {
        assert_eq!(a, b, "the verified and unverified reads of one index differ");
    }
    unverified
}

/// What the parse floor read.
pub struct Floor {
    pub lines: u64,
    pub bytes: u64,
    pub files_hashed: usize,
}

/// The parse floor: every line of the files parsed by serde_json into `IgnoredAny` on all
/// cores, the files cut into blocks of whole lines by a reader thread as bulk-audit does
/// (refilling the buffers the parser is done with); with `hash`, every input hashed as the
/// manifest needs.
pub fn parse_floor(paths: &[PathBuf], hash: bool) -> Result<Floor, String> {
    let files = source::collect(paths).map_err(|e| e.to_string())?;
    let (tx, rx) = sync_channel::<LineBlock>(2);
    let spares = std::sync::Arc::new(BufferPool::default());
    let reader_spares = spares.clone();
    let reader = std::thread::spawn(move || -> Result<(u64, usize), String> {
        let (mut bytes, mut hashed_files) = (0u64, 0);
        for f in &files {
            let mut hashed = if hash { Some(source::open(f).map_err(|e| e.to_string())?) } else { None };
            let mut plain = if hash { None } else { Some(source::open_unhashed(f).map_err(|e| e.to_string())?) };
            let reader: &mut dyn std::io::Read = match (hashed.as_mut(), plain.as_mut()) {
                (Some(h), _) => &mut h.reader,
                (None, Some(p)) => p,
                (None, None) => unreachable!("one of the two is open"),
            };
            for block in LineBlocks::new(reader, &f.path, 8 << 20).with_spares(&reader_spares) {
                let block = block.map_err(|e| e.to_string())?;
                bytes += block.bytes.len() as u64;
                if tx.send(block).is_err() {
                    return Err("the parser stopped".into());
                }
            }
            if let Some(h) = hashed {
                let _ = h.digest();
                hashed_files += 1;
            }
        }
        Ok((bytes, hashed_files))
    });
    let mut lines = 0u64;
    for block in rx {
        let texts: Vec<&[u8]> = source::lines_of(&block).map(|(_, _, text)| text).collect();
        lines += texts
            .par_chunks(256)
            .map(|chunk| {
                chunk
                    .iter()
                    .filter(|l| !l.is_empty() && serde_json::from_slice::<serde::de::IgnoredAny>(l).is_ok())
                    .count() as u64
            })
            .sum::<u64>();
        spares.give(block.bytes);
    }
    let (bytes, files_hashed) = reader.join().map_err(|_| "the reader thread failed".to_string())??;
    Ok(Floor { lines, bytes, files_hashed })
}

/// The criterion benches' world: its history files, read and indexed on demand, and its
/// kickoffs.
pub struct Bench {
    files: Vec<InputFile>,
    compartment: Compartment,
    history: Option<History>,
    events: Vec<ExportEvent>,
}

impl Bench {
    /// The world written by the generator into `dir` (`history/`, `logs/`).
    pub fn new(dir: &Path) -> Result<Bench, String> {
        let files = source::collect(&[dir.join("history")]).map_err(|e| e.to_string())?;
        let log_files = source::collect(&[dir.join("logs")]).map_err(|e| e.to_string())?;
        let logs = logs::read(&log_files, &Zone::UTC, i64::MAX, false).map_err(|e| e.to_string())?;
        let events = kickoff::find(&logs.requests, &Zone::UTC).map_err(|e| e.to_string())?;
        Ok(Bench { files, compartment: Compartment::load(FhirVersion::R4), history: None, events })
    }

    /// Bytes of history.
    pub fn history_bytes(&self) -> u64 {
        self.files.iter().filter_map(|f| f.size).sum()
    }

    /// The history files' text, decompressed, one after another.
    pub fn history_text(&self) -> Vec<u8> {
        self.files.iter().flat_map(|f| source::read_whole(f).map(|(b, _, _)| b).unwrap_or_default()).collect()
    }

    fn options(&self) -> ParseOptions<'_> {
        ParseOptions::new(&self.compartment, Zone::UTC, false)
    }

    /// Reads and indexes the history as the audit does; returns the number of resources.
    pub fn read_and_index(&self) -> usize {
        read_history(&self.files, &self.options()).resources.len()
    }

    /// Whether the quick reader accepts a line.
    pub fn quick_reader_accepts(&self, line: &[u8]) -> bool {
        history::fuzzing::skims(line, &self.options())
    }

    /// The versions the whole fast path reads from the lines.
    pub fn fast_path_versions(&self, lines: &[&[u8]]) -> usize {
        history::fuzzing::versions_read(lines, &self.options())
    }

    /// Indexes the history once for [`Bench::as_of_every_resource`] and
    /// [`Bench::resolve_every_export`].
    pub fn index(&mut self) {
        self.history = Some(read_history(&self.files, &self.options()));
    }

    fn history(&self) -> &History {
        self.history.as_ref().expect("Bench::index first")
    }

    /// Resources live at an instant (nanoseconds since the epoch).
    pub fn as_of_every_resource(&self, t: i64) -> usize {
        self.history().resources.iter().filter(|r| r.live_at(Instant(t), Boundary::Strict).is_some()).count()
    }

    /// Kickoffs in the logs.
    pub fn exports(&self) -> usize {
        self.events.len()
    }

    /// Resolves every kickoff with the default options; returns the rows.
    pub fn resolve_every_export(&self) -> usize {
        let h = self.history();
        let o = ResolveOptions {
            boundary: Boundary::Strict,
            wildcard_types: Wildcard::Smartbox.expand(&[]),
            fhir_types: crate::fhir::types::fhir_types(FhirVersion::R4),
            fhir_version_name: FhirVersion::R4.name(),
            non_compartment: NonCompartment::All,
            skip_inactive_members: false,
            compartment: &self.compartment,
            named_types: &Default::default(),
            present_types: None,
            selection_only: false,
        };
        self.events.iter().map(|e| resolve::resolve(e, h, &o).rows.len()).sum()
    }
}

fn read_history(files: &[InputFile], opts: &ParseOptions) -> History {
    let (h, _) = index::build(|to_index| history::read(files, opts, to_index)).expect("read the history");
    h
}
