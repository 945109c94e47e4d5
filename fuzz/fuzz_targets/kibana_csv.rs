//! Any bytes as the rows of a Kibana Discover CSV under a fixed header (so the CSV reader, not
//! the JSON one, is exercised): cells, quotes, formula escapes and dates.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut text = b"\"@timestamp\",ev,ctx,\"w_m\",\"w_url\",\"w_qs\",\"w_st\",\"w_cid\"\n".to_vec();
    text.extend_from_slice(data);
    bulk_audit::hooks::read_log_file(&text);
});
