//! Any bytes as a log file: Aidbox NDJSON, Elasticsearch responses and hits, Kibana CSV. The
//! reader must return lines or an error, never panic or hang; merging and kickoff detection run
//! on whatever it read.
#![no_main]

use bulk_audit::inputs::Tally;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut lines = Vec::new();
    for skip in [false, true] {
        lines.clear();
        let mut tally = Tally::new(skip);
        if bulk_audit::logs::read_one(std::path::Path::new("fuzz.log"), 0, data, &chrono_tz::Tz::UTC, &mut lines, &mut tally).is_ok() {
            let requests = bulk_audit::logs::merge(lines.clone(), &["fuzz.log".to_string()]);
            let _ = bulk_audit::kickoff::find(&requests, &chrono_tz::Tz::UTC);
        }
    }
});
