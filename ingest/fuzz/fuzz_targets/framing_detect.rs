//! The record framer, the chunker and format detection.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    apitrail_ingest_fuzz::fuzz_framing_and_detection(data);
});
