//! Text load balancer logs: aws_alb, aws_elb, clf, ingress_nginx, haproxy, envoy and traefik.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    apitrail_ingest_fuzz::fuzz_formats(&apitrail_ingest_fuzz::TEXT_LOAD_BALANCERS, data);
});
