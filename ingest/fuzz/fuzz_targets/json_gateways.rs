//! JSON access logs of gateways and CDNs, from aws_apigateway to suricata_eve.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    apitrail_ingest_fuzz::fuzz_formats(&apitrail_ingest_fuzz::JSON_GATEWAYS, data);
});
