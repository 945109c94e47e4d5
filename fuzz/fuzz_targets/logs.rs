//! Any bytes as a log file: Aidbox NDJSON, Elasticsearch responses and hits, Kibana CSV. The
//! reader must return lines or an error, never panic or hang; merging and kickoff detection run
//! on whatever it read.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    bulk_audit::hooks::read_log_file(data);
});
