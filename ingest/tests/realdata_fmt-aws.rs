//! Real-file tests of the AWS formats that have no test in `realdata.rs`:
//! `aws_elb`, `aws_cloudfront` and the API Gateway CLF forms.
//!
//! The samples are read from the directory that `realdata_dir` returns, as in
//! `realdata.rs`. Row numbers count accepted lines from 0, and each check names
//! the line of the file it was read from.

mod common;

use apitrail_ingest::Format;
use common::*;

#[test]
fn elb_beats_http_listener() {
    let Some(chunk) = detect_and_parse("elb/beats_elb-http.log", Format::AwsElb) else {
        return;
    };
    assert_counts(&chunk, 5, 0, 0);
    let batch = &chunk.batch;

    // Line 1.
    assert_eq!(time(batch, 0), utc((2019, 10, 14), (12, 0, 20), 694_172));
    assert_eq!(text(batch, "source", 0), some("aws_elb"));
    assert_eq!(text(batch, "client_ip", 0), some("175.16.199.1"));
    assert_eq!(int32(batch, "client_port", 0), Some(54106));
    assert_eq!(text(batch, "upstream", 0), some("10.0.1.185:80"));
    assert_eq!(int32(batch, "status", 0), Some(200));
    assert_eq!(int32(batch, "upstream_status", 0), Some(200));
    assert_eq!(int64(batch, "request_bytes", 0), Some(0));
    assert_eq!(int64(batch, "response_bytes", 0), Some(612));
    assert_eq!(duration_ms(batch, 0), Some(0.851));
    assert_eq!(text(batch, "host", 0), some("18.194.223.56"));
    assert_eq!(text(batch, "path", 0), some("/"));
    assert_eq!(attribute(batch, 0, "elb"), some("filebeat-aws-elb-test"));
    assert_eq!(attribute(batch, 0, "ssl_cipher"), None);

    // Line 3: the load balancer's own DNS name as host, and curl.
    assert_eq!(
        text(batch, "host", 2),
        some("filebeat-aws-elb-test-1703142762.eu-central-1.elb.amazonaws.com")
    );
    assert_eq!(text(batch, "user_agent", 2), some("curl/7.58.0"));
}

#[test]
fn elb_beats_backend_unreachable() {
    let Some(chunk) = detect_and_parse("elb/beats_example-http.log", Format::AwsElb) else {
        return;
    };
    assert_counts(&chunk, 2, 0, 0);
    let batch = &chunk.batch;

    // Line 1.
    assert_eq!(time(batch, 0), utc((2015, 5, 13), (23, 39, 43), 945_958));
    assert_eq!(int64(batch, "response_bytes", 0), Some(29));

    // Line 2: 503 with backend "-" and -1 timings.
    assert_eq!(int32(batch, "status", 1), Some(503));
    assert_eq!(text(batch, "upstream", 1), None);
    assert_eq!(int32(batch, "upstream_status", 1), None);
    assert_eq!(duration_ms(batch, 1), None);
    assert_eq!(text(batch, "consumer", 1), some("192.168.131.39"));
}
