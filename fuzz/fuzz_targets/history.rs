//! Any bytes as one history line: the fast scanner and the serde_json::Value reference path must
//! agree (same versions, or both an error), and neither may panic; and whatever the quick reader
//! (history/fast/skim.rs) accepts, serde_json must accept with the same fields.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Err(e) = bulk_audit::hooks::check_history_line(data) {
        panic!("{e}");
    }
});
