//! Detection and parsing of real access-log samples, with counts and field values read by hand.
//!
//! The samples are public files that may not be redistributed, so they are not
//! part of the repository. They are read from the directory that
//! `realdata_dir` returns, and a missing directory fails every test here.
//!
//! Row numbers below count accepted lines from 0, and each check names the
//! line of the file it was read from.

mod common;

use apitrail_ingest::Format;
use common::*;

#[test]
fn alb_elastic_mixed_records() {
    let Some(chunk) = detect_and_parse("alb/elastic_integrations_test-alb.log", Format::AwsAlb)
    else {
        return;
    };
    // Lines 1, 2 and 10 are HTTP requests, lines 3-6 NLB TLS records and
    // lines 7-9 ALB connection-log records.
    assert_counts(&chunk, 3, 0, 7);
    assert_eq!(chunk.report.skipped_reasons["nlb_tls_record"], 4);
    assert_eq!(chunk.report.skipped_reasons["alb_connection_log_record"], 3);
    let batch = &chunk.batch;

    // Line 1.
    assert_eq!(time(batch, 0), utc((2018, 7, 2), (22, 23, 0), 186_641));
    assert_eq!(text(batch, "client_ip", 0), some("192.168.131.39"));
    assert_eq!(int32(batch, "client_port", 0), Some(2817));
    assert_eq!(text(batch, "host", 0), some("www.example.com"));
    assert_eq!(text(batch, "path", 0), some("/"));
    assert_eq!(int32(batch, "status", 0), Some(200));
    assert_eq!(duration_ms(batch, 0), Some(1.0));
    assert_eq!(
        attribute(batch, 0, "actions_executed"),
        some("forward,redirect")
    );
    assert_eq!(attribute(batch, 0, "target_port_list"), some("10.0.0.1:80"));
    assert_eq!(attribute(batch, 0, "target_status_code_list"), some("200"));

    // Line 2: a space inside the URI, with a response from the load balancer itself.
    assert_eq!(int32(batch, "status", 1), Some(301));
    assert_eq!(int32(batch, "upstream_status", 1), None);
    assert_eq!(duration_ms(batch, 1), None);
    assert_eq!(text(batch, "method", 1), some("GET"));
    assert_eq!(text(batch, "path", 1), some("/shell"));
    assert!(malformed(batch, 1));
    assert_eq!(text(batch, "user_agent", 1), some("Hello, world"));
    assert_eq!(attribute(batch, 1, "classification"), some("Acceptable"));
    assert_eq!(
        attribute(batch, 1, "classification_reason"),
        some("SpaceInUri")
    );

    // Line 10: request line "- http://internal-service-alb.example.com:80-/ ".
    assert_eq!(time(batch, 2), utc((2025, 5, 1), (11, 24, 32), 748_149));
    assert!(malformed(batch, 2));
    assert_eq!(text(batch, "method", 2), None);
    assert_eq!(text(batch, "path", 2), None);
    assert_eq!(int32(batch, "status", 2), Some(200));
    assert_eq!(int64(batch, "response_bytes", 2), Some(272));
    assert_eq!(
        attribute(batch, 2, "conn_trace_id"),
        some("TID_00000000000000000000000000000000")
    );
}

#[test]
fn alb_beats_application_lb() {
    let Some(chunk) = detect_and_parse("alb/beats_application-lb-http.log", Format::AwsAlb) else {
        return;
    };
    assert_counts(&chunk, 10, 0, 0);
    let batch = &chunk.batch;

    // Line 1: 460 with -1 timings and no target status.
    assert_eq!(time(batch, 0), utc((2019, 10, 11), (15, 1, 12), 376_735));
    assert_eq!(int32(batch, "status", 0), Some(460));
    assert_eq!(int32(batch, "upstream_status", 0), None);
    assert_eq!(duration_ms(batch, 0), None);
    assert_eq!(text(batch, "client_ip", 0), some("77.227.156.41"));
    assert_eq!(int32(batch, "client_port", 0), Some(56398));
    assert_eq!(int64(batch, "request_bytes", 0), Some(125));
    assert_eq!(int64(batch, "response_bytes", 0), Some(0));
    assert_eq!(
        text(batch, "host", 0),
        some("filebeat-aws-elb-test-12030537.eu-central-1.elb.amazonaws.com")
    );
    assert_eq!(attribute(batch, 0, "port"), some("80"));
    assert_eq!(text(batch, "user_agent", 0), some("curl/7.58.0"));
    assert_eq!(
        text(batch, "trace_id", 0),
        some("Root=1-5da09932-2c342a443bfb96249aa50ed7")
    );

    // Lines 2 and 3 are out of order and stay so.
    assert_eq!(time(batch, 1), utc((2019, 10, 11), (15, 1, 50), 492_440));
    assert_eq!(time(batch, 2), utc((2019, 10, 11), (15, 1, 22), 915_238));

    // Line 8: a forwarded 200.
    assert_eq!(int32(batch, "status", 7), Some(200));
    assert_eq!(int32(batch, "upstream_status", 7), Some(200));
    assert_eq!(duration_ms(batch, 7), Some(1.0));
    assert_eq!(text(batch, "upstream", 7), some("10.0.0.192:80"));
    assert_eq!(int64(batch, "response_bytes", 7), Some(859));
}

#[test]
fn alb_beats_aws_examples() {
    let Some(chunk) = detect_and_parse("alb/beats_example-alb-http.log", Format::AwsAlb) else {
        return;
    };
    // Line 5 (wss) has no space between chosen_cert_arn "-" and priority 1.
    // The quote ends the field, so the line is kept whole.
    assert_counts(&chunk, 9, 0, 0);
    let batch = &chunk.batch;

    // Line 2: https, 0.086 + 0.048 + 0.037 seconds.
    assert_eq!(text(batch, "scheme", 1), some("https"));
    assert_eq!(duration_ms(batch, 1), Some(171.0));
    assert_eq!(attribute(batch, 1, "ssl_protocol"), some("TLSv1.2"));
    assert_eq!(attribute(batch, 1, "domain_name"), some("www.example.com"));
    assert_eq!(
        attribute(batch, 1, "actions_executed"),
        some("authenticate,forward")
    );

    // Line 3: h2.
    assert_eq!(text(batch, "http_version", 2), some("HTTP/2.0"));
    assert_eq!(text(batch, "host", 2), some("10.0.2.105"));
    assert_eq!(attribute(batch, 2, "port"), some("773"));
    assert_eq!(
        attribute(batch, 2, "redirect_url"),
        some("https://example.com:80/")
    );

    // Line 5: wss.
    assert_eq!(attribute(batch, 4, "type"), some("wss"));
    assert_eq!(int32(batch, "status", 4), Some(101));
    assert_eq!(int64(batch, "response_bytes", 4), Some(786));
    assert_eq!(text(batch, "user_agent", 4), None);
    assert_eq!(attribute(batch, 4, "chosen_cert_arn"), None);
    assert_eq!(attribute(batch, 4, "matched_rule_priority"), some("1"));
    assert_eq!(
        attribute(batch, 4, "request_creation_time"),
        some("2018-07-02T22:22:48.364000Z")
    );

    // Line 7: Lambda target.
    assert_eq!(time(batch, 6), utc((2018, 11, 30), (22, 23, 0), 186_641));
    assert_eq!(int32(batch, "status", 6), Some(502));
    assert_eq!(text(batch, "upstream", 6), None);
    assert_eq!(int32(batch, "upstream_status", 6), None);
    assert_eq!(
        attribute(batch, 6, "error_reason"),
        some("LambdaInvalidResponse")
    );

    // Lines 8 and 9: request lines "- http://www.example.com:80- -" and "- - -".
    for row in [7, 8] {
        assert!(malformed(batch, row), "row {row}");
        assert_eq!(int32(batch, "status", row), Some(400), "row {row}");
        assert_eq!(text(batch, "method", row), None, "row {row}");
    }
    assert_eq!(attribute(batch, 8, "request"), some("- - -"));
}

#[test]
fn nginx_beats_access() {
    let Some(chunk) = detect_and_parse("nginx/beats_nginx_access.log", Format::Clf) else {
        return;
    };
    assert_counts(&chunk, 13, 0, 0);
    let batch = &chunk.batch;

    // Line 1, logged at +0200.
    assert_eq!(time(batch, 0), utc((2016, 10, 25), (12, 49, 33), 0));
    assert_eq!(text(batch, "client_ip", 0), some("77.179.66.156"));
    assert_eq!(text(batch, "method", 0), some("GET"));
    assert_eq!(text(batch, "path", 0), some("/"));
    assert_eq!(int32(batch, "status", 0), Some(200));
    assert_eq!(int64(batch, "response_bytes", 0), Some(612));
    assert_eq!(
        text(batch, "user_agent", 0),
        some(
            "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_12_0) AppleWebKit/537.36 \
             (KHTML, like Gecko) Chrome/54.0.2840.59 Safari/537.36"
        )
    );

    // Line 2.
    assert_eq!(text(batch, "referer", 1), some("http://localhost:8080/"));
    assert_eq!(text(batch, "path", 1), some("/favicon.ico"));

    // Line 4, logged at +0100 after the change from summer time.
    assert_eq!(time(batch, 3), utc((2016, 12, 7), (9, 34, 43), 0));

    // Line 10: 304 with 0 bytes.
    assert_eq!(int32(batch, "status", 9), Some(304));
    assert_eq!(int64(batch, "response_bytes", 9), Some(0));

    // Line 13: a leading virtual host.
    assert_eq!(time(batch, 12), utc((2020, 6, 9), (19, 10, 39), 0));
    assert_eq!(text(batch, "host", 12), some("lessons.example.com"));
    assert_eq!(text(batch, "client_ip", 12), some("192.168.0.1"));
    assert_eq!(int32(batch, "status", 12), Some(206));
    assert_eq!(
        text(batch, "path", 12),
        some("/A Beka G1 Howe/029_AND_30/15 reading elephants.mp4")
    );
}

#[test]
fn nginx_forwarded_for_edge_cases() {
    let Some(chunk) = detect_and_parse("nginx/beats_nginx_test_xff_edgecases.log", Format::Clf)
    else {
        return;
    };
    assert_counts(&chunk, 7, 0, 0);
    let batch = &chunk.batch;

    // Line 1: the remote field is a list.
    assert_eq!(
        text(batch, "forwarded_for", 0),
        some("10.0.0.2, 10.0.0.1, 127.0.0.1")
    );
    assert_eq!(text(batch, "client_ip", 0), some("127.0.0.1"));
    assert_eq!(text(batch, "path", 0), some("/ocelot"));

    // Line 2: a trailing "-" field.
    assert_eq!(int32(batch, "status", 1), Some(404));
    assert_eq!(attribute(batch, 1, "extra_1"), None);

    // Line 3.
    assert_eq!(text(batch, "client_ip", 2), some("85.181.35.98"));

    // Line 5: a quoted list before the remote address.
    assert_eq!(
        text(batch, "forwarded_for", 4),
        some("10.5.102.222, 199.96.1.1, 204.246.1.1")
    );
    assert_eq!(text(batch, "client_ip", 4), some("10.2.1.185"));
    assert_eq!(text(batch, "path", 4), some("/assets/xxxx"));
    assert_eq!(text(batch, "query", 4), some("q=100"));
    assert_eq!(time(batch, 4), utc((2016, 1, 22), (13, 18, 29), 0));

    // Line 6: an unquoted list with an IPv6 address before the remote address.
    assert_eq!(
        text(batch, "forwarded_for", 5),
        some("2a03:0000:10ff:f00f:0000:0000:0:8000, 10.225.192.17")
    );
    assert_eq!(text(batch, "client_ip", 5), some("10.2.2.121"));

    // Line 7: an empty request line.
    assert!(malformed(batch, 6));
    assert_eq!(int32(batch, "status", 6), Some(400));
    assert_eq!(text(batch, "method", 6), None);
    assert_eq!(text(batch, "client_ip", 6), some("127.0.0.1"));
}

#[test]
fn apache_mixed_common_combined() {
    let Some(chunk) = detect_and_parse(
        "apache/beats_apache_access_mixed_common_combined.log",
        Format::Clf,
    ) else {
        return;
    };
    assert_counts(&chunk, 7, 0, 0);
    let batch = &chunk.batch;

    // Line 1: common format from an IPv6 client.
    assert_eq!(time(batch, 0), utc((2016, 12, 26), (14, 16, 29), 0));
    assert_eq!(text(batch, "client_ip", 0), some("::1"));
    assert_eq!(int32(batch, "status", 0), Some(404));
    assert_eq!(int64(batch, "response_bytes", 0), Some(209));
    assert_eq!(text(batch, "user_agent", 0), None);

    // Line 3: 408 with request "-" and bytes "-".
    assert!(malformed(batch, 2));
    assert_eq!(int32(batch, "status", 2), Some(408));
    assert_eq!(int64(batch, "response_bytes", 2), None);
    assert_eq!(attribute(batch, 2, "request"), some("-"));

    // Line 5: a host name instead of an address.
    assert_eq!(text(batch, "client_ip", 4), None);
    assert_eq!(
        attribute(batch, 4, "remote_host"),
        some("monitoring-server")
    );
    assert_eq!(text(batch, "consumer", 4), None);
    assert_eq!(text(batch, "path", 4), some("/status"));

    // Line 7: a leading virtual host.
    assert_eq!(text(batch, "host", 6), some("vhost1.domaine.fr"));
    assert_eq!(text(batch, "client_ip", 6), some("123.123.123.123"));
    assert_eq!(int64(batch, "response_bytes", 6), Some(32953));
}

#[test]
fn apache_darwin_common() {
    let Some(chunk) = detect_and_parse("apache/beats_apache_darwin_2.4.23_common.log", Format::Clf)
    else {
        return;
    };
    assert_counts(&chunk, 6, 0, 0);
    let batch = &chunk.batch;

    // Line 1.
    assert_eq!(time(batch, 0), utc((2016, 12, 26), (14, 16, 28), 0));
    assert_eq!(text(batch, "client_ip", 0), some("::1"));
    assert_eq!(int64(batch, "response_bytes", 0), Some(45));

    // Line 3.
    assert!(malformed(batch, 2));
    assert_eq!(int32(batch, "status", 2), Some(408));
    assert_eq!(int64(batch, "response_bytes", 2), None);

    // Line 6.
    assert_eq!(time(batch, 5), utc((2016, 12, 26), (16, 23, 45), 0));
    assert_eq!(text(batch, "client_ip", 5), some("77.179.66.156"));
    assert_eq!(text(batch, "path", 5), some("/hmm"));
    assert_eq!(int32(batch, "status", 5), Some(404));
    assert_eq!(int64(batch, "response_bytes", 5), Some(201));
}

#[test]
fn apigateway_rest_json_preset() {
    let Some(chunk) = detect_and_parse(
        "apigateway/elastic_apigateway_rest_clf_json.log",
        Format::AwsApiGateway,
    ) else {
        return;
    };
    assert_counts(&chunk, 5, 0, 0);
    let batch = &chunk.batch;

    // Line 1.
    assert_eq!(
        text(batch, "request_id", 0),
        some("48752d0f-c99d-4cfa-a5a7-f3c6834d19e5")
    );
    assert_eq!(time(batch, 0), utc((2023, 6, 10), (15, 36, 28), 0));
    assert_eq!(text(batch, "client_ip", 0), some("1.128.0.0"));
    assert_eq!(text(batch, "method", 0), some("GET"));
    assert_eq!(int32(batch, "status", 0), Some(200));
    assert_eq!(int64(batch, "response_bytes", 0), Some(184));
    assert_eq!(text(batch, "http_version", 0), some("HTTP/1.1"));
    assert_eq!(attribute(batch, 0, "resource_path"), some("/pets"));

    // Line 2, written with a space after each colon.
    assert_eq!(time(batch, 1), utc((2023, 7, 19), (16, 15, 46), 0));
    assert_eq!(attribute(batch, 1, "resource_path"), some("/pets/{petId}"));
    assert_eq!(int64(batch, "response_bytes", 1), Some(49));

    // Line 4.
    assert_eq!(
        text(batch, "host", 3),
        some("asad15n3p0.execute-api.us-east-1.amazonaws.com")
    );
    assert_eq!(attribute(batch, 3, "stage"), some("prod"));
    assert_eq!(attribute(batch, 3, "apiId"), some("asad15n3p0"));
}

#[test]
fn apigateway_websocket() {
    let Some(chunk) = detect_and_parse(
        "apigateway/elastic_apigateway_websocket.log",
        Format::AwsApiGateway,
    ) else {
        return;
    };
    assert_counts(&chunk, 4, 0, 0);
    let batch = &chunk.batch;

    // Line 1.
    assert_eq!(text(batch, "request_id", 0), some("REDACTED"));
    assert_eq!(time(batch, 0), utc((2023, 7, 25), (16, 26, 2), 0));
    assert_eq!(int32(batch, "status", 0), Some(500));
    assert_eq!(text(batch, "method", 0), None);
    assert_eq!(attribute(batch, 0, "event_type"), some("CONNECT"));
    assert_eq!(attribute(batch, 0, "route_key"), some("$connect"));

    // Line 2: every WebSocket field is "-".
    assert_eq!(int32(batch, "status", 1), Some(403));
    assert_eq!(attribute(batch, 1, "event_type"), None);
    assert_eq!(attribute(batch, 1, "connection_id"), None);

    // Line 3.
    assert_eq!(
        attribute(batch, 2, "connection_id"),
        some("Iq8gj1UmIAMCKpA=")
    );
    assert_eq!(
        text(batch, "host", 2),
        some("z1ctxygne5.execute-api.us-east-1.amazonaws.com")
    );
    assert_eq!(attribute(batch, 2, "stage"), some("production"));
}

#[test]
fn apigateway_http_api_full() {
    let Some(chunk) = detect_and_parse(
        "apigateway/elastic_http_api_gateway_full.log",
        Format::AwsApiGateway,
    ) else {
        return;
    };
    assert_counts(&chunk, 5, 0, 0);
    let batch = &chunk.batch;

    // Line 1: epoch in seconds and no requestId.
    assert_eq!(time(batch, 0), 1_663_811_436_000_000);
    assert_eq!(text(batch, "request_id", 0), some("Y1rY6giPiYcEPbQ="));
    assert_eq!(text(batch, "path", 0), some("/asdf"));
    assert_eq!(text(batch, "client_ip", 0), some("81.2.69.142"));
    assert_eq!(text(batch, "user_agent", 0), some("PostmanRuntime/7.29.2"));
    assert_eq!(attribute(batch, 0, "stage"), some("$default"));

    // Line 2: resourcePath "-" and no path.
    assert_eq!(text(batch, "request_id", 1), some("Y1qkyit4CYcEP2g="));
    assert_eq!(text(batch, "path", 1), None);
    assert_eq!(attribute(batch, 1, "resource_path"), None);

    // Line 3.
    assert_eq!(int32(batch, "status", 2), Some(403));
    assert_eq!(int64(batch, "response_bytes", 2), Some(23));

    // Line 4: an IAM user.
    assert_eq!(
        attribute(batch, 3, "userArn"),
        some("arn:aws:iam::497487485332:user/kaos-demo")
    );

    // Line 5: a client certificate.
    assert_eq!(attribute(batch, 4, "clientserialNumber"), some("asdfasdf"));
    assert_eq!(
        attribute(batch, 4, "clientnotAfter"),
        some("2020-07-16T03:15:39Z")
    );
}

#[test]
fn apigateway_rest_api_full() {
    let Some(chunk) = detect_and_parse(
        "apigateway/elastic_rest_api_gateway_full.log",
        Format::AwsApiGateway,
    ) else {
        return;
    };
    assert_counts(&chunk, 4, 0, 0);
    let batch = &chunk.batch;

    // Line 1: epoch in milliseconds.
    assert_eq!(time(batch, 0), 1_663_964_129_948_000);
    assert_eq!(
        text(batch, "request_id", 0),
        some("cc9eaefb-0c97-45db-840c-6f206dce8c5b")
    );
    assert_eq!(text(batch, "path", 0), some("/test/pets/1"));
    assert_eq!(int64(batch, "response_bytes", 0), Some(49));

    // Line 3: the path is decoded once.
    assert_eq!(text(batch, "path", 2), some("/test/pets/{petId}"));
    assert_eq!(int32(batch, "status", 2), Some(403));

    // Line 4: an API key is the consumer.
    assert_eq!(text(batch, "consumer", 3), some("qqvqzk33df"));
    assert_eq!(text(batch, "consumer_kind", 3), some("gateway"));
    assert_eq!(text(batch, "user_agent", 3), some("PostmanRuntime/7.29.2"));
}

#[test]
fn apache_throughput_10k() {
    let Some(chunk) = detect_and_parse(
        "throughput/elastic_examples_apache_logs_10k.log",
        Format::Clf,
    ) else {
        return;
    };
    assert_counts(&chunk, 10_000, 0, 0);
    let batch = &chunk.batch;

    // Line 1.
    assert_eq!(time(batch, 0), utc((2015, 5, 17), (10, 5, 3), 0));
    assert_eq!(text(batch, "client_ip", 0), some("83.149.9.216"));
    assert_eq!(
        text(batch, "path", 0),
        some("/presentations/logstash-monitorama-2013/images/kibana-search.png")
    );
    assert_eq!(int64(batch, "response_bytes", 0), Some(203_023));

    // Line 5851: a referer with \x escapes of bytes that are not UTF-8 stays as logged.
    assert_eq!(text(batch, "http_version", 5850), some("HTTP/1.0"));
    assert_eq!(
        text(batch, "referer", 5850),
        some(r"http://\xe4\xe5\xe3\xf2\xff\xf0\xed\xee\xe5-\xec\xfb\xeb\xee.\xf0\xf4/")
    );

    // Line 8899: the user agent lacks its closing quote, and is kept.
    assert_eq!(text(batch, "client_ip", 8898), some("46.118.127.106"));
    assert_eq!(int64(batch, "response_bytes", 8898), Some(235));
    assert_eq!(
        text(batch, "user_agent", 8898),
        some("Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html")
    );

    // Line 10000.
    assert_eq!(time(batch, 9999), utc((2015, 5, 20), (21, 5, 15), 0));
    assert_eq!(text(batch, "path", 9999), some("/blog/tags/puppet"));
    assert_eq!(text(batch, "query", 9999), some("flav=rss20"));
}

#[test]
fn nginx_throughput_10k() {
    let Some(chunk) = detect_and_parse(
        "throughput/zanbil_ir_nginx_combined_10k_via_logsentinelai.log",
        Format::Clf,
    ) else {
        return;
    };
    assert_counts(&chunk, 10_000, 0, 0);
    let batch = &chunk.batch;

    // Line 2, logged at +0330.
    assert_eq!(time(batch, 1), utc((2019, 1, 22), (0, 26, 16), 0));
    assert_eq!(text(batch, "client_ip", 1), some("31.56.96.51"));
    assert_eq!(
        text(batch, "path", 1),
        some("/image/60844/productModel/200x200")
    );
    assert_eq!(int64(batch, "response_bytes", 1), Some(5667));
    assert_eq!(
        text(batch, "referer", 1),
        some("https://www.zanbil.ir/m/filter/b113")
    );
    assert_eq!(attribute(batch, 1, "extra_1"), None);

    // Line 648: the trailing X-Forwarded-For field contains an address.
    assert_eq!(attribute(batch, 647, "extra_1"), some("103.28.132.65"));

    // Line 1304: nginx wrote the quotes in the user agent as \x22.
    assert_eq!(int32(batch, "status", 1303), Some(301));
    assert_eq!(
        text(batch, "user_agent", 1303),
        some("\"nlpproject.info research\"")
    );

    // Line 1809: 499, the client closed the connection.
    assert_eq!(int32(batch, "status", 1808), Some(499));
    assert_eq!(text(batch, "client_ip", 1808), some("66.111.54.249"));

    // Line 2969: raw UTF-8 bytes in the query, escaped by nginx.
    assert_eq!(text(batch, "path", 2968), some("/image/29201"));
    assert_eq!(text(batch, "client_ip", 2968), some("157.55.39.245"));
}
