//! Real-file tests of the AWS formats that have no test in `realdata.rs`:
//! `aws_elb` and `aws_cloudfront`.
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

#[test]
fn cloudfront_elastic_standard_log() {
    let Some(chunk) = detect_and_parse(
        "cloudfront/elastic_test-cloudfront.log",
        Format::AwsCloudFront,
    ) else {
        return;
    };
    // Lines 1 and 2 are the #Version and #Fields lines. Line 14 lacks its last two fields.
    assert_counts(&chunk, 11, 1, 2);
    assert_eq!(chunk.report.skipped_reasons["header"], 2);
    assert_eq!(
        chunk.rejects[0].reason,
        "truncated record: expected 33 tab-separated fields as the #Fields line lists, found 31"
    );
    assert_eq!(chunk.rejects[0].line, 14);
    let batch = &chunk.batch;

    // Line 3.
    assert_eq!(time(batch, 0), utc((2019, 12, 4), (21, 2, 31), 0));
    assert_eq!(text(batch, "source", 0), some("aws_cloudfront"));
    assert_eq!(text(batch, "client_ip", 0), some("89.160.20.112"));
    assert_eq!(int32(batch, "client_port", 0), Some(11040));
    assert_eq!(text(batch, "method", 0), some("GET"));
    assert_eq!(text(batch, "scheme", 0), some("https"));
    assert_eq!(
        text(batch, "host", 0),
        some("d111111abcdef8.cloudfront.net")
    );
    assert_eq!(text(batch, "path", 0), some("/index.html"));
    assert_eq!(int32(batch, "status", 0), Some(200));
    assert_eq!(int64(batch, "request_bytes", 0), Some(23));
    assert_eq!(int64(batch, "response_bytes", 0), Some(392));
    assert_eq!(duration_ms(batch, 0), Some(1.0));
    assert_eq!(text(batch, "http_version", 0), some("HTTP/2.0"));
    assert_eq!(
        text(batch, "user_agent", 0),
        some(
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) \
             Chrome/78.0.3904.108 Safari/537.36"
        )
    );
    assert_eq!(attribute(batch, 0, "x-edge-location"), some("LAX1"));

    // Line 4: an IPv6 viewer.
    assert_eq!(
        text(batch, "client_ip", 1),
        some("2a02:cf40:add:4002:91f2:a9b2:e09a:6fc6")
    );

    // Line 6: an origin DNS error over http, with a referer and the viewer's Host.
    assert_eq!(int32(batch, "status", 3), Some(502));
    assert_eq!(text(batch, "host", 3), some("www.example.com"));
    assert_eq!(text(batch, "referer", 3), some("http://www.example.com/"));
    assert_eq!(
        attribute(batch, 3, "x-edge-detailed-result-type"),
        some("OriginDnsError")
    );
    assert_eq!(attribute(batch, 3, "ssl-protocol"), None);

    // Line 9: a POST with a query string.
    assert_eq!(text(batch, "method", 6), some("POST"));
    assert_eq!(text(batch, "query", 6), some("source=global"));
    assert_eq!(
        attribute(batch, 6, "sc-content-type"),
        some("application/json;charset=UTF-8")
    );

    // Line 10: status 000, the viewer left before the response.
    assert_eq!(int32(batch, "status", 7), None);
    assert_eq!(attribute(batch, 7, "sc-status"), some("000"));

    // Lines 11 to 13: X-Forwarded-For with and without a space, and a host:port value.
    assert_eq!(
        text(batch, "forwarded_for", 8),
        some("81.2.69.142,216.160.83.56")
    );
    assert_eq!(
        text(batch, "forwarded_for", 9),
        some("81.2.69.142, 216.160.83.56")
    );
    assert_eq!(text(batch, "forwarded_for", 10), some("localhost:8080"));
    assert_eq!(time(batch, 10), utc((2022, 11, 15), (8, 43, 4), 0));
}
