//! Any bytes as a whole history file: its form told from its first lines ($dump-sql TSV, a plain
//! pg_dump, YAML or JSON documents), table rows turned into JSON rows, which the fast path and
//! the serde_json::Value reading must read alike; nothing may panic or hang.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Err(e) = bulk_audit::hooks::check_history_file(data) {
        panic!("{e}");
    }
});
