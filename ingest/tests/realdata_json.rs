//! Detection and parsing of real JSON access logs of gateways, CDNs and
//! cloud load balancers, with field values read by hand from the files.
//!
//! The samples are public files that may not be redistributed, so they are
//! not part of the repository (see `realdata_dir`). Row numbers count
//! accepted records from 0, and each check names the line of the file it
//! was read from.

mod common;

use apitrail_ingest::{Format, ParseContext, Redactor, parse_chunk};
use common::*;

#[test]
fn nginx_json_blog_post() {
    let Some(chunk) = detect_and_parse(
        "nginx/nginx_json_escape_json_4lines_blogpost.json",
        Format::NginxJson,
    ) else {
        return;
    };
    assert_counts(&chunk, 4, 0, 0);
    let batch = &chunk.batch;

    // Line 1: `time_ms` contains $msec and `ip` is "-".
    assert_eq!(time(batch, 0), utc((2018, 8, 28), (16, 18, 51), 906_000));
    assert_eq!(text(batch, "client_ip", 0), None);
    assert_eq!(int32(batch, "client_port", 0), Some(59720));
    assert_eq!(text(batch, "method", 0), some("GET"));
    assert_eq!(text(batch, "scheme", 0), some("http"));
    assert_eq!(text(batch, "host", 0), some("local.application.com"));
    assert_eq!(
        text(batch, "path", 0),
        some("/themes/classic/images/fugue/stamp.png")
    );
    assert_eq!(text(batch, "query", 0), None);
    assert_eq!(int32(batch, "status", 0), Some(200));
    assert_eq!(text(batch, "http_version", 0), some("HTTP/1.1"));
    assert_eq!(duration_ms(batch, 0), Some(0.0));
    assert_eq!(
        text(batch, "referer", 0),
        some("http://local.application.com:8282/overview.html")
    );
    assert!(
        text(batch, "user_agent", 0).is_some_and(|agent| agent.contains("Chrome/68.0.3440.106"))
    );
    assert_eq!(attribute(batch, 0, "server_name"), some("localhost"));
    assert_eq!(attribute(batch, 0, "nginx_version"), some("1.15.2"));
    assert_eq!(attribute(batch, 0, "http_x_forwarded_proto"), None);
    assert_eq!(attribute(batch, 0, "remote_user"), None);

    // Line 3: an empty query, and an upstream that was tried twice.
    assert_eq!(time(batch, 2), utc((2018, 8, 28), (16, 18, 53), 710_000));
    assert_eq!(int32(batch, "status", 2), Some(302));
    assert_eq!(text(batch, "path", 2), some("/logout.html"));
    assert_eq!(text(batch, "query", 2), None);
    assert_eq!(duration_ms(batch, 2), Some(109.0));
    assert_eq!(
        attribute(batch, 2, "upstream_response_time"),
        some("0.000, 0.110")
    );
    assert_eq!(
        attribute(batch, 2, "upstream_connect_time"),
        some("0.000, 0.000")
    );

    // Line 4.
    assert_eq!(text(batch, "path", 3), some("/"));
    assert_eq!(duration_ms(batch, 3), Some(146.0));
}

#[test]
fn envoy_json_istio() {
    let Some(chunk) = detect_and_parse("envoy/elastic_istio_envoy_json.log", Format::EnvoyJson)
    else {
        return;
    };
    assert_counts(&chunk, 3, 0, 0);
    let batch = &chunk.batch;

    // Line 1.
    assert_eq!(time(batch, 0), utc((2022, 9, 8), (12, 51, 5), 656_000));
    assert_eq!(text(batch, "host", 0), some("reviews"));
    assert_eq!(attribute(batch, 0, "port"), some("9080"));
    assert_eq!(int64(batch, "request_bytes", 0), Some(0));
    assert_eq!(int64(batch, "response_bytes", 0), Some(358));
    assert_eq!(text(batch, "client_ip", 0), some("10.124.0.13"));
    assert_eq!(int32(batch, "client_port", 0), Some(43612));
    assert_eq!(duration_ms(batch, 0), Some(15.0));
    assert_eq!(text(batch, "method", 0), some("GET"));
    assert_eq!(text(batch, "path", 0), some("/reviews/0"));
    assert_eq!(text(batch, "http_version", 0), some("HTTP/1.1"));
    assert_eq!(
        text(batch, "request_id", 0),
        some("9fcc7101-13bd-9753-98d6-820806088d9d")
    );
    assert_eq!(int32(batch, "status", 0), Some(200));
    assert_eq!(text(batch, "upstream", 0), some("10.124.1.5:9080"));
    assert_eq!(text(batch, "user_agent", 0), some("curl/7.79.1"));
    assert_eq!(text(batch, "forwarded_for", 0), None);
    assert_eq!(attribute(batch, 0, "upstream_service_time"), some("14"));
    assert_eq!(
        attribute(batch, 0, "upstream_cluster"),
        some("inbound|9080||")
    );
    assert_eq!(attribute(batch, 0, "response_flags"), None);
    assert_eq!(attribute(batch, 0, "connection_termination_details"), None);
    assert!(!malformed(batch, 0));

    // Line 2: a bracketed IPv6 peer.
    assert_eq!(text(batch, "client_ip", 1), some("2a02:cf40::4e36"));
    assert_eq!(int32(batch, "client_port", 1), Some(5000));

    // Line 3: a request Envoy could not decode.
    assert_eq!(time(batch, 2), utc((2022, 9, 1), (9, 36, 33), 553_000));
    assert!(malformed(batch, 2));
    assert_eq!(text(batch, "method", 2), None);
    assert_eq!(text(batch, "path", 2), None);
    assert_eq!(text(batch, "host", 2), None);
    assert_eq!(int32(batch, "status", 2), Some(400));
    assert_eq!(attribute(batch, 2, "response_flags"), some("DPE"));
    assert_eq!(
        attribute(batch, 2, "response_code_details"),
        some("http1.codec_error")
    );
    assert_eq!(text(batch, "upstream", 2), None);
}

#[test]
fn kong_pretty_printed_record() {
    let Some(chunk) = detect_and_parse(
        "kong/kong_2.2.1_enterprise_http_log_record.json",
        Format::Kong,
    ) else {
        return;
    };
    assert_counts(&chunk, 1, 0, 0);
    let batch = &chunk.batch;

    assert_eq!(time(batch, 0), utc((2021, 2, 25), (5, 57, 48), 342_000));
    assert_eq!(text(batch, "method", 0), some("GET"));
    assert_eq!(text(batch, "scheme", 0), some("http"));
    assert_eq!(text(batch, "host", 0), some("localhost"));
    assert_eq!(attribute(batch, 0, "port"), some("8000"));
    assert_eq!(text(batch, "path", 0), some("/log"));
    assert_eq!(int64(batch, "request_bytes", 0), Some(138));
    assert_eq!(int32(batch, "status", 0), Some(200));
    assert_eq!(int64(batch, "response_bytes", 0), Some(827));
    assert_eq!(duration_ms(batch, 0), Some(515.0));
    assert_eq!(text(batch, "client_ip", 0), some("192.168.144.1"));
    assert_eq!(text(batch, "upstream", 0), some("18.211.130.98:80"));
    assert_eq!(text(batch, "user_agent", 0), some("HTTPie/2.4.0"));
    // No consumer is logged, so the driver falls back to the client IP.
    assert_eq!(text(batch, "consumer", 0), some("192.168.144.1"));
    assert_eq!(text(batch, "consumer_kind", 0), some("ip"));
    assert_eq!(attribute(batch, 0, "latencies.kong"), some("58"));
    assert_eq!(attribute(batch, 0, "latencies.proxy"), some("457"));
    assert_eq!(attribute(batch, 0, "service.host"), some("httpbin.org"));
    assert_eq!(attribute(batch, 0, "upstream_uri"), some("/anything"));
    assert_eq!(
        attribute(batch, 0, "workspace"),
        some("54baa5a9-23d6-41e0-9c9a-02434b010b25")
    );
    assert_eq!(
        attribute(batch, 0, "response.headers.via"),
        some("kong/2.2.1.0-enterprise-edition")
    );
    assert_eq!(
        attribute(batch, 0, "request.headers.host"),
        some("localhost:8000")
    );
    assert_eq!(attribute(batch, 0, "route.paths"), some(r#"["/log"]"#));
}

#[test]
fn caddy_real_entries() {
    let Some(chunk) = detect_and_parse("caddy/caddy_v2_access_real_2lines.json", Format::Caddy)
    else {
        return;
    };
    assert_counts(&chunk, 2, 0, 0);
    let batch = &chunk.batch;

    // Line 1.
    assert_eq!(time(batch, 0), utc((2026, 8, 6), (22, 14, 46), 193_625));
    assert_eq!(text(batch, "client_ip", 0), some("98.113.67.178"));
    assert_eq!(int32(batch, "client_port", 0), Some(55392));
    assert_eq!(text(batch, "http_version", 0), some("HTTP/1.1"));
    assert_eq!(text(batch, "method", 0), some("GET"));
    assert_eq!(text(batch, "host", 0), some("api.whitepapergrey.com"));
    assert_eq!(text(batch, "path", 0), some("/__logcheck-20260806T221446Z"));
    assert_eq!(text(batch, "scheme", 0), some("https"));
    assert_eq!(text(batch, "user_agent", 0), some("curl/8.17.0"));
    assert_eq!(int32(batch, "status", 0), Some(404));
    assert_eq!(int64(batch, "response_bytes", 0), Some(99));
    assert_eq!(int64(batch, "request_bytes", 0), Some(0));
    assert_eq!(duration_ms(batch, 0), Some(1.543878));
    assert_eq!(attribute(batch, 0, "logger"), some("http.log.access.log0"));
    assert_eq!(attribute(batch, 0, "request.tls.ech"), some("false"));
    assert_eq!(
        attribute(batch, 0, "resp_headers.Alt-Svc"),
        some("h3=\":443\"; ma=2592000")
    );
    assert_eq!(attribute(batch, 0, "user_id"), None);

    // Line 2.
    assert_eq!(text(batch, "path", 1), some("/health"));
    assert_eq!(int32(batch, "status", 1), Some(200));
}

#[test]
fn caddy_http2_example() {
    let Some(chunk) = detect_and_parse(
        "caddy/caddy_v2_access_h2_example_goaccess_preset.json",
        Format::Caddy,
    ) else {
        return;
    };
    assert_counts(&chunk, 1, 0, 0);
    let batch = &chunk.batch;

    assert_eq!(time(batch, 0), utc((2022, 3, 9), (21, 30, 1), 524_102));
    assert_eq!(text(batch, "http_version", 0), some("HTTP/2.0"));
    assert_eq!(text(batch, "host", 0), some("localhost"));
    assert_eq!(text(batch, "path", 0), some("/"));
    assert_eq!(duration_ms(batch, 0), Some(0.929675));
    assert_eq!(int64(batch, "response_bytes", 0), Some(10900));
    assert_eq!(attribute(batch, 0, "resp_headers.Server"), some("Caddy"));
    assert_eq!(attribute(batch, 0, "request.tls.proto"), some("h2"));
}

#[test]
fn cloudflare_logpull_mixed_timestamps() {
    let Some(chunk) = detect_and_parse(
        "cloudflare/elastic_logpull_mock_iter0_3records.ndjson",
        Format::Cloudflare,
    ) else {
        return;
    };
    assert_counts(&chunk, 3, 0, 0);
    let batch = &chunk.batch;

    // Line 1: RFC 3339 timestamps to the second give no duration.
    assert_eq!(time(batch, 0), utc((2019, 8, 2), (15, 29, 8), 0));
    assert_eq!(duration_ms(batch, 0), None);
    assert_eq!(text(batch, "client_ip", 0), some("35.232.161.245"));
    assert_eq!(int32(batch, "client_port", 0), Some(55028));
    assert_eq!(text(batch, "host", 0), some("cf-analytics.com"));
    assert_eq!(text(batch, "method", 0), some("POST"));
    assert_eq!(text(batch, "path", 0), some("/wp-cron.php"));
    assert_eq!(
        text(batch, "query", 0),
        some("doing_wp_cron=1564759748.3962020874023437500000")
    );
    assert_eq!(int32(batch, "status", 0), Some(403));
    assert_eq!(int64(batch, "request_bytes", 0), Some(2577));
    assert_eq!(int64(batch, "response_bytes", 0), Some(2848));
    assert_eq!(text(batch, "request_id", 0), some("500115ec386354d8"));
    assert_eq!(text(batch, "upstream", 0), None);
    assert_eq!(int32(batch, "upstream_status", 0), None);
    assert_eq!(
        text(batch, "user_agent", 0),
        some("WordPress/5.2.2;https://cf-analytics.com")
    );
    assert_eq!(attribute(batch, 0, "EdgePathingStatus"), some("captchaNew"));
    assert_eq!(
        attribute(batch, 0, "FirewallMatchesActions"),
        some(r#"["simulate","challenge"]"#)
    );

    // Line 2: integer nanoseconds, and a source port of 0.
    assert_eq!(time(batch, 1), utc((2021, 7, 8), (14, 2, 38), 812_000));
    assert_eq!(duration_ms(batch, 1), Some(63.0));
    assert_eq!(int32(batch, "client_port", 1), None);
    assert_eq!(attribute(batch, 1, "EdgeColoCode"), some("33.147.138.217"));

    // Line 3.
    assert_eq!(time(batch, 2), utc((2021, 7, 8), (14, 24, 24), 676_000));
    assert_eq!(duration_ms(batch, 2), Some(8.0));
    assert_eq!(text(batch, "http_version", 2), some("HTTP/2"));
}

#[test]
fn cloudflare_logpush_timestamp_formats() {
    let Some(chunk) = detect_and_parse(
        "cloudflare/elastic_logpush_http_requests_excerpt_lines1_3_4.ndjson",
        Format::Cloudflare,
    ) else {
        return;
    };
    assert_counts(&chunk, 3, 0, 0);
    let batch = &chunk.batch;

    // Lines 1 to 3: RFC 3339, Unix seconds and Unix nanoseconds as strings.
    for row in 0..3 {
        assert_eq!(
            time(batch, row),
            utc((2022, 5, 25), (13, 25, 26), 0),
            "row {row}"
        );
    }
    assert_eq!(duration_ms(batch, 0), None);
    assert_eq!(duration_ms(batch, 1), None);
    assert_eq!(duration_ms(batch, 2), Some(6000.0));

    // Line 1.
    assert_eq!(text(batch, "scheme", 0), some("https"));
    assert_eq!(text(batch, "host", 0), some("xyz.example.com"));
    assert_eq!(
        text(batch, "path", 0),
        some("/s/example/api/telemetry/v2/clusters/_stats")
    );
    assert_eq!(text(batch, "upstream", 0), some("67.43.156.0"));
    assert_eq!(int32(batch, "upstream_status", 0), Some(200));
    assert_eq!(text(batch, "request_id", 0), some("710e98d9367f357d"));
    assert_eq!(attribute(batch, 0, "ZoneName"), some("example.com"));
    assert_eq!(
        attribute(batch, 0, "ClientRequestPath"),
        some("/xyz/checkout")
    );
    assert_eq!(attribute(batch, 0, "BotDetectionIDs"), some("[7,8,9]"));
    // The Cookies object is stored as a Cookie header whose values are hashed.
    let cookie = attribute(batch, 0, "cookie").expect("cookie attribute");
    assert!(cookie.starts_with("key=h1:"), "cookie {cookie}");
}

#[test]
fn akamai_ds2_bench_1000() {
    let Some(chunk) = detect_and_parse(
        "akamai_datastream2/greptimedb_bench_akamai_ds2_1000.ndjson",
        Format::AkamaiDs2,
    ) else {
        return;
    };
    assert_counts(&chunk, 1000, 0, 0);
    let batch = &chunk.batch;

    // Line 1.
    assert_eq!(time(batch, 0), utc((2024, 6, 21), (3, 18, 19), 742_000));
    assert_eq!(text(batch, "client_ip", 0), some("114.5.147.45"));
    assert_eq!(
        text(batch, "user_agent", 0),
        some("Bilibili Freedoooooom/MarkII")
    );
    assert_eq!(
        text(batch, "host", 0),
        some("upos-bstar1-mirrorakam.akamaized.net")
    );
    assert_eq!(
        text(batch, "path", 0),
        some("/iupxcodeboss/pj/hn/m210909a23h30ojqbk0iny3seyjnhnpj-1-211220110000.m4s")
    );
    assert!(text(batch, "query", 0).is_some_and(|query| query.starts_with("e=ig8euxZM2rNc")));
    assert_eq!(text(batch, "method", 0), some("GET"));
    assert_eq!(text(batch, "http_version", 0), some("HTTP/1.1"));
    assert_eq!(int32(batch, "status", 0), Some(206));
    assert_eq!(text(batch, "request_id", 0), some("246ae032"));
    assert_eq!(int64(batch, "response_bytes", 0), Some(1_000_839));
    assert_eq!(duration_ms(batch, 0), Some(1416.0));
    assert_eq!(text(batch, "referer", 0), None);
    assert_eq!(text(batch, "forwarded_for", 0), None);
    assert_eq!(
        attribute(batch, 0, "errorCode"),
        some("ERR_CLIENT_ABORT|general")
    );
    assert_eq!(attribute(batch, 0, "totalBytes"), some("1059938"));
    assert_eq!(attribute(batch, 0, "accLang"), None);
    assert_eq!(attribute(batch, 0, "cookie"), None);

    // Line 1000.
    assert_eq!(time(batch, 999), utc((2024, 6, 21), (3, 18, 19), 754_000));
    assert_eq!(text(batch, "request_id", 999), some("246b3778"));
    assert_eq!(duration_ms(batch, 999), Some(9227.0));
}

#[test]
fn gcp_lb_requests() {
    let Some(chunk) = detect_and_parse("gcp_lb/elastic_gcp_http_lb_requests.log", Format::GcpLb)
    else {
        return;
    };
    assert_counts(&chunk, 3, 0, 0);
    let batch = &chunk.batch;

    // Line 1.
    assert_eq!(time(batch, 0), utc((2020, 6, 8), (23, 41, 30), 78_651));
    assert_eq!(text(batch, "method", 0), some("GET"));
    assert_eq!(text(batch, "scheme", 0), some("http"));
    assert_eq!(text(batch, "host", 0), some("81.2.69.193"));
    assert_eq!(text(batch, "path", 0), some("/static/us/three-cats.jpg"));
    assert_eq!(int64(batch, "request_bytes", 0), Some(577));
    assert_eq!(int64(batch, "response_bytes", 0), Some(157));
    assert_eq!(int32(batch, "status", 0), Some(304));
    assert_eq!(text(batch, "client_ip", 0), some("89.160.20.156"));
    assert_eq!(int32(batch, "client_port", 0), None);
    assert_eq!(
        text(batch, "trace_id", 0),
        some("241d69833e64b3bf83fabac8c873d992")
    );
    assert_eq!(
        attribute(batch, 0, "jsonPayload.statusDetails"),
        some("response_from_cache")
    );
    assert_eq!(
        attribute(batch, 0, "jsonPayload.cacheId"),
        some("SFO-fbae48ad")
    );
    assert_eq!(attribute(batch, 0, "httpRequest.cacheHit"), some("true"));
    assert_eq!(
        attribute(batch, 0, "resource.type"),
        some("http_load_balancer")
    );
    assert_eq!(attribute(batch, 0, "spanId"), some("7b6537d3672e08e1"));

    // Line 2: a host name in the URL.
    assert_eq!(text(batch, "host", 1), some("pictures.example.com"));

    // Line 3: ports on the URL, the client and the server.
    assert_eq!(attribute(batch, 2, "port"), some("8080"));
    assert_eq!(int32(batch, "client_port", 2), Some(9989));
    assert_eq!(text(batch, "upstream", 2), some("10.5.3.1:9090"));
    assert_eq!(text(batch, "http_version", 2), some("HTTP/2.0"));
    assert_eq!(
        text(batch, "referer", 2),
        some("https://developer.mozilla.org/en-US/docs/Web/JavaScript")
    );
}

#[test]
fn azure_appgw_mixed_categories() {
    let Some(chunk) = detect_and_parse(
        "azure/elastic_azure_appgw_access_waf_mixed.log",
        Format::AzureAppGw,
    ) else {
        return;
    };
    // Lines 3 to 5 are firewall records and line 6 is a ResourceHealth record.
    assert_counts(&chunk, 2, 1, 3);
    assert_eq!(chunk.report.skipped_reasons["not_access_log"], 3);
    assert_eq!(chunk.rejects[0].line, 6);
    let batch = &chunk.batch;

    // Line 1: a v1 record, `timeTaken` in milliseconds.
    assert_eq!(time(batch, 0), utc((2017, 4, 26), (19, 27, 38), 0));
    assert_eq!(text(batch, "client_ip", 0), some("67.43.156.7"));
    assert_eq!(int32(batch, "client_port", 0), Some(46886));
    assert_eq!(text(batch, "method", 0), some("GET"));
    assert_eq!(
        text(batch, "path", 0),
        some("/phpmyadmin/scripts/setup.php")
    );
    assert!(
        text(batch, "query", 0)
            .is_some_and(|query| query.starts_with("X-AzureApplicationGateway-CACHE-HIT=0"))
    );
    assert_eq!(text(batch, "user_agent", 0), None);
    assert_eq!(int32(batch, "status", 0), Some(404));
    assert_eq!(text(batch, "http_version", 0), some("HTTP/1.0"));
    assert_eq!(int64(batch, "request_bytes", 0), Some(65));
    assert_eq!(int64(batch, "response_bytes", 0), Some(553));
    assert_eq!(duration_ms(batch, 0), Some(205.0));
    assert_eq!(text(batch, "host", 0), some("www.contoso.com"));
    assert_eq!(text(batch, "scheme", 0), some("http"));
    assert_eq!(
        attribute(batch, 0, "properties.instanceId"),
        some("ApplicationGatewayRole_IN_0")
    );

    // Line 2: v2 properties (serverRouted, serverStatus, ...), so its
    // `timeTaken` of 205 is read as seconds.
    assert_eq!(duration_ms(batch, 1), Some(205_000.0));
    assert_eq!(text(batch, "upstream", 1), some("104.41.114.59:80"));
    assert_eq!(int32(batch, "upstream_status", 1), Some(200));
    assert_eq!(
        attribute(batch, 1, "properties.serverResponseLatency"),
        some("0.023")
    );
}

#[test]
fn azure_appgw_documentation_examples() {
    let Some(chunk) = detect_and_parse(
        "azure/msdocs_appgw_access_v2_v1_examples.ndjson",
        Format::AzureAppGw,
    ) else {
        return;
    };
    assert_counts(&chunk, 3, 0, 0);
    let batch = &chunk.batch;

    // Line 1: v2, `timeTaken` in seconds.
    assert_eq!(time(batch, 0), utc((2021, 10, 14), (22, 17, 11), 0));
    assert_eq!(duration_ms(batch, 0), Some(34.0));
    assert_eq!(text(batch, "client_ip", 0), some("185.42.129.24"));
    assert_eq!(int32(batch, "client_port", 0), Some(45057));
    assert_eq!(text(batch, "path", 0), some("/"));
    assert_eq!(text(batch, "query", 0), None);
    assert_eq!(
        text(batch, "request_id", 0),
        some("592d1649f75a8d480a3c4dc6a975309d")
    );
    assert_eq!(text(batch, "scheme", 0), some("https"));
    assert_eq!(text(batch, "upstream", 0), some("52.239.221.65:443"));
    assert_eq!(int32(batch, "upstream_status", 0), Some(200));
    assert_eq!(text(batch, "host", 0), some("20.110.30.194"));
    assert!(text(batch, "user_agent", 0).is_some_and(|agent| agent.starts_with("Mozilla/5.0")));
    assert_eq!(attribute(batch, 0, "listenerName"), some("HTTP-Listener"));
    assert_eq!(
        attribute(batch, 0, "properties.error_info"),
        some("ERRORINFO_NO_ERROR")
    );

    // Line 2: v1, `timeTaken` in milliseconds.
    assert_eq!(duration_ms(batch, 1), Some(205.0));
    assert_eq!(text(batch, "client_ip", 1), some("191.96.249.97"));

    // Line 3: every number is a string.
    assert_eq!(time(batch, 2), utc((2016, 4, 11), (4, 24, 37), 0));
    assert_eq!(text(batch, "method", 2), some("HEAD"));
    assert_eq!(int32(batch, "status", 2), Some(200));
    assert_eq!(int32(batch, "client_port", 2), Some(12345));
    assert_eq!(int64(batch, "response_bytes", 2), Some(202));
    assert_eq!(duration_ms(batch, 2), Some(359.0));
}

#[test]
fn azure_frontdoor_access() {
    let Some(chunk) = detect_and_parse(
        "azure/elastic_azure_frontdoor_access.log",
        Format::AzureFrontDoor,
    ) else {
        return;
    };
    assert_counts(&chunk, 3, 0, 0);
    let batch = &chunk.batch;

    // Line 1: seven fractional digits, truncated to microseconds.
    assert_eq!(time(batch, 0), utc((2021, 12, 15), (3, 10, 11), 647_971));
    assert_eq!(text(batch, "method", 0), some("POST"));
    assert_eq!(text(batch, "scheme", 0), some("https"));
    assert_eq!(text(batch, "host", 0), some("erp.testcloud.com"));
    assert_eq!(attribute(batch, 0, "port"), some("443"));
    assert_eq!(
        text(batch, "path", 0),
        some("/StockSetup/GetStockListByCir")
    );
    assert_eq!(text(batch, "http_version", 0), some("HTTP/2.0"));
    assert_eq!(int32(batch, "status", 0), Some(200));
    assert_eq!(int64(batch, "request_bytes", 0), Some(2545));
    assert_eq!(int64(batch, "response_bytes", 0), Some(1205));
    assert_eq!(duration_ms(batch, 0), Some(384.0));
    assert_eq!(text(batch, "client_ip", 0), some("89.160.20.128"));
    assert_eq!(int32(batch, "client_port", 0), Some(50382));
    assert_eq!(
        text(batch, "upstream", 0),
        some("samplev6erp.azurewebsites.net:443")
    );
    assert!(text(batch, "request_id", 0).is_some_and(|id| id.starts_with("0k1y5YQAAAAA")));
    assert_eq!(attribute(batch, 0, "properties.pop"), some("SIN"));
    assert_eq!(
        attribute(batch, 0, "properties.securityProtocol"),
        some("TLS 1.2")
    );

    // Line 3.
    assert_eq!(time(batch, 2), utc((2021, 12, 15), (3, 35, 50), 58_492));
    assert_eq!(duration_ms(batch, 2), Some(64.0));
    assert_eq!(
        text(batch, "path", 2),
        some("/Customer/searchContactList/2107050813256062892")
    );
}

/// The formats this file covers, with the real files of each.
const SAMPLES: [(Format, &[&str]); 9] = [
    (
        Format::NginxJson,
        &["nginx/nginx_json_escape_json_4lines_blogpost.json"],
    ),
    (Format::EnvoyJson, &["envoy/elastic_istio_envoy_json.log"]),
    (
        Format::Kong,
        &["kong/kong_2.2.1_enterprise_http_log_record.json"],
    ),
    (
        Format::Caddy,
        &[
            "caddy/caddy_v2_access_real_2lines.json",
            "caddy/caddy_v2_access_h2_example_goaccess_preset.json",
        ],
    ),
    (
        Format::Cloudflare,
        &[
            "cloudflare/elastic_logpull_mock_iter0_3records.ndjson",
            "cloudflare/elastic_logpush_http_requests_excerpt_lines1_3_4.ndjson",
        ],
    ),
    (
        Format::AkamaiDs2,
        &["akamai_datastream2/greptimedb_bench_akamai_ds2_1000.ndjson"],
    ),
    (Format::GcpLb, &["gcp_lb/elastic_gcp_http_lb_requests.log"]),
    (
        Format::AzureAppGw,
        &[
            "azure/elastic_azure_appgw_access_waf_mixed.log",
            "azure/msdocs_appgw_access_v2_v1_examples.ndjson",
        ],
    ),
    (
        Format::AzureFrontDoor,
        &["azure/elastic_azure_frontdoor_access.log"],
    ),
];

/// JSON files of other formats, which none of the formats above may accept.
const OTHER_JSON_FILES: [&str; 12] = [
    "apigateway/elastic_apigateway_rest_clf_json.log",
    "apigateway/elastic_apigateway_websocket.log",
    "apigateway/elastic_http_api_gateway_full.log",
    "apigateway/elastic_rest_api_gateway_full.log",
    "traefik/elastic_traefik_json_v1_v2.log",
    "zeek/elastic_zeek_http_json_realts.log",
    "suricata/beats_eve_small_mixed.json",
    "suricata/eve_http_ips_lab_2lines.json",
    "otlp/otel_proto_examples_trace.json",
    "otlp/openobserve_traces_seed_http_server_spans.json",
    "har/optic_petstore.swagger.io_chrome.har",
    "apiclarity_telemetry/apiclarity_httpbin_post_anything.json",
];

/// Checks that each format accepts or skips no record of another format's file.
#[test]
fn json_formats_reject_each_others_records() {
    let redactor = Redactor::new(b"test-key".to_vec(), 1);
    let ctx = ParseContext::new(&redactor);
    let foreign_files = SAMPLES
        .iter()
        .flat_map(|&(owner, files)| files.iter().map(move |file| (Some(owner), *file)))
        .chain(OTHER_JSON_FILES.iter().map(|file| (None, *file)));
    for (owner, file) in foreign_files {
        let Some(data) = read_sample(file) else {
            return;
        };
        for (format, _) in SAMPLES {
            if Some(format) == owner {
                continue;
            }
            let report = parse_chunk(format, &data, 1, &ctx).report;
            assert_eq!(
                (report.accepted, report.skipped),
                (0, 0),
                "{format} took records of {file}: {:?}",
                report.skipped_reasons
            );
        }
    }
}
