//! The generic json format with fixed mappings and one that the input defines.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    apitrail_ingest_fuzz::fuzz_generic_json(data);
});
