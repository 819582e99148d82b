//! Documents with many requests each: har and otlp.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    apitrail_ingest_fuzz::fuzz_formats(&apitrail_ingest_fuzz::DOCUMENTS, data);
});
