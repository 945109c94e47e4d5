//! Any bytes as one history line: the fast scanner and the serde_json::Value reference path must
//! agree (same versions, or both an error), and neither may panic; and whatever the quick reader
//! (history/skim.rs) accepts, serde_json must accept with the same fields.
#![no_main]

use bulk_audit::compartment::{Compartment, FhirVersion};
use bulk_audit::history::{self, ParseOptions, Source};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let c = Compartment::load(FhirVersion::R4);
    let opts = ParseOptions::new(&c, chrono_tz::Tz::UTC, true);
    let src = Source { file: 0, line: 1, offset: 0, entry: None };
    if let Err(e) = history::check_skim_for_fuzzing(data, &opts) {
        panic!("{e}");
    }
    let fast = history::scan_for_fuzzing(data, src, &opts);
    let slow = match serde_json::from_slice::<serde_json::Value>(data) {
        Ok(v) => history::versions_of_document(v, src, &opts).map(|v| format!("{v:?}")).ok(),
        Err(_) => None,
    };
    match (&fast, &slow) {
        (Some(f), Some(s)) => assert_eq!(f, s, "the two parsers disagree"),
        (None, None) => {}
        // Deeply nested fields the fast path skips are fine for it and too deep for Value.
        (Some(_), None) => {}
        (None, Some(_)) => panic!("the fast path rejects what the reference path reads"),
    }
});
