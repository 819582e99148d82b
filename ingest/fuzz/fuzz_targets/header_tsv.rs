//! Header-driven tab-separated logs: aws_cloudfront, aws_cloudfront_realtime and zeek_http.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    apitrail_ingest_fuzz::fuzz_formats(&apitrail_ingest_fuzz::HEADER_DRIVEN, data);
});
