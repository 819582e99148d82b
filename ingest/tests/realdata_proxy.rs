//! Detection and parsing of real Envoy, HAProxy and Traefik samples, with
//! field values read by hand.
//!
//! Row numbers below count accepted lines from 0, and each check names the
//! line of the file it was read from. See `realdata.rs` for where the
//! samples come from.

mod common;

use apitrail_ingest::{Format, ParseContext, Redactor, parse_chunk};
use common::*;

/// Parses a whole sample as `format` without detection, for samples of other formats.
fn parse_as(name: &str, format: Format) -> Option<apitrail_ingest::ParsedChunk> {
    let data = read_sample(name)?;
    let redactor = Redactor::new(b"test-key".to_vec(), 1);
    let ctx = ParseContext::new(&redactor);
    Some(parse_chunk(format, &data, 1, &ctx))
}

#[test]
fn envoy_legacy_and_wrapped() {
    let Some(chunk) = detect_and_parse(
        "envoy/elastic_envoyproxy_legacy_and_k8s_wrapped.log",
        Format::Envoy,
    ) else {
        return;
    };
    // Lines 1 and 7 are TCP proxy lines.
    assert_counts(&chunk, 5, 0, 2);
    assert_eq!(chunk.report.skipped_reasons["tcp_connection"], 2);
    let batch = &chunk.batch;

    // Line 2.
    assert_eq!(time(batch, 0), utc((2019, 4, 8), (16, 16, 55), 931_000));
    assert_eq!(text(batch, "method", 0), some("GET"));
    assert_eq!(text(batch, "path", 0), some("/service/1"));
    assert_eq!(int32(batch, "status", 0), Some(200));
    assert_eq!(int64(batch, "request_bytes", 0), Some(0));
    assert_eq!(int64(batch, "response_bytes", 0), Some(89));
    assert_eq!(duration_ms(batch, 0), Some(5.0));
    assert_eq!(attribute(batch, 0, "upstream_service_time"), some("4"));
    assert_eq!(text(batch, "user_agent", 0), some("curl/7.54.0"));
    assert_eq!(
        text(batch, "request_id", 0),
        some("c219f6da-2b7f-483e-9ced-ec323d9330a9")
    );
    assert_eq!(text(batch, "host", 0), some("localhost"));
    assert_eq!(attribute(batch, 0, "port"), some("8000"));
    assert_eq!(text(batch, "upstream", 0), some("172.27.0.3:80"));
    assert_eq!(text(batch, "client_ip", 0), None);

    // Line 3: no route (NR), no upstream.
    assert_eq!(int32(batch, "status", 1), Some(404));
    assert_eq!(attribute(batch, 1, "response_flags"), some("NR"));
    assert_eq!(attribute(batch, 1, "upstream_service_time"), None);
    assert_eq!(text(batch, "forwarded_for", 1), some("172.17.0.3"));
    assert_eq!(text(batch, "upstream", 1), None);

    // Line 5: the ACCESS prefix.
    assert_eq!(time(batch, 3), utc((2024, 4, 25), (17, 51, 55), 294_000));
    assert_eq!(text(batch, "path", 3), some("/backend/"));
    assert_eq!(text(batch, "upstream", 3), some("192.168.96.113:80"));

    // Line 6: an ACCESS line inside a Kubernetes JSON object.
    assert_eq!(time(batch, 4), utc((2019, 4, 10), (3, 49, 34), 451_000));
    assert_eq!(text(batch, "path", 4), some("/httpbin/status/501"));
    assert_eq!(int32(batch, "status", 4), Some(501));
    assert_eq!(duration_ms(batch, 4), Some(180.0));
    assert_eq!(text(batch, "host", 4), some("httpbin.org"));
    assert_eq!(text(batch, "upstream", 4), some("67.43.156.18:80"));
    assert_eq!(attribute(batch, 4, "stream"), some("stdout"));
    assert_eq!(
        attribute(batch, 4, "kubernetes.pod.name"),
        some("ambassador-76c58d9df4-jwhsg")
    );
}

#[test]
fn envoy_istio_default_text() {
    let Some(chunk) = detect_and_parse("envoy/elastic_istio_envoy_default_text.log", Format::Envoy)
    else {
        return;
    };
    assert_counts(&chunk, 8, 0, 0);
    let batch = &chunk.batch;

    // Line 1: inbound.
    assert_eq!(time(batch, 0), utc((2022, 7, 20), (9, 52, 24), 955_000));
    assert_eq!(text(batch, "path", 0), some("/details/0"));
    assert_eq!(int32(batch, "status", 0), Some(200));
    assert_eq!(int64(batch, "response_bytes", 0), Some(178));
    assert_eq!(duration_ms(batch, 0), Some(2.0));
    assert_eq!(
        attribute(batch, 0, "response_code_details"),
        some("via_upstream")
    );
    assert_eq!(
        attribute(batch, 0, "upstream_cluster"),
        some("inbound|9080||")
    );
    assert_eq!(text(batch, "client_ip", 0), some("10.68.1.7"));
    assert_eq!(int32(batch, "client_port", 0), Some(39696));
    assert_eq!(
        attribute(batch, 0, "requested_server_name"),
        some("outbound_.9080_._.details.default.svc.cluster.local")
    );
    assert_eq!(attribute(batch, 0, "route_name"), some("default"));

    // Line 4: outbound, no server name.
    assert_eq!(
        attribute(batch, 3, "upstream_cluster"),
        some("outbound|9080||reviews.default.svc.cluster.local")
    );
    assert_eq!(attribute(batch, 3, "requested_server_name"), None);
    assert_eq!(text(batch, "client_ip", 3), some("10.124.2.6"));

    // Line 8: IPv6 upstream and client.
    assert_eq!(text(batch, "upstream", 7), some("[2a02:cf40::7]:3000"));
    assert_eq!(text(batch, "client_ip", 7), some("2a02:cf40::4e36"));
    assert_eq!(int32(batch, "client_port", 7), Some(5000));
}

#[test]
fn haproxy_syslog_httplog() {
    let Some(chunk) = detect_and_parse("haproxy/beats_haproxy_httplog_syslog.log", Format::Haproxy)
    else {
        return;
    };
    assert_counts(&chunk, 10, 0, 0);
    let batch = &chunk.batch;

    // Line 1: both header blocks, the first not empty.
    assert_eq!(time(batch, 0), utc((2018, 7, 30), (9, 3, 52), 726_000));
    assert_eq!(text(batch, "client_ip", 0), some("1.2.3.4"));
    assert_eq!(int32(batch, "client_port", 0), Some(38862));
    assert_eq!(text(batch, "scheme", 0), some("https"));
    assert_eq!(attribute(batch, 0, "frontend_name"), some("incoming"));
    assert_eq!(text(batch, "upstream", 0), some("docs_microservice/docs"));
    assert_eq!(int32(batch, "status", 0), Some(304));
    assert_eq!(int64(batch, "response_bytes", 0), Some(168));
    assert_eq!(duration_ms(batch, 0), Some(2.0));
    assert_eq!(
        attribute(batch, 0, "captured_request_headers"),
        some("docs.example.internal||")
    );
    assert_eq!(attribute(batch, 0, "captured_response_headers"), None);
    assert_eq!(attribute(batch, 0, "syslog_hostname"), some("localhost"));
    assert_eq!(attribute(batch, 0, "pid"), some("32450"));
    assert_eq!(
        text(batch, "path", 0),
        some("/component---src-pages-index-js-4b15624544f97cf0bb8f.js")
    );

    // Line 2: a hidden client and a field before the timers.
    assert_eq!(time(batch, 1), utc((2021, 5, 22), (2, 22, 22), 222_000));
    assert_eq!(text(batch, "client_ip", 1), None);
    assert_eq!(int32(batch, "client_port", 1), Some(22222));
    assert_eq!(text(batch, "scheme", 1), some("https"));
    assert_eq!(attribute(batch, 1, "frontend_name"), some("www-https"));
    assert_eq!(attribute(batch, 1, "extra_1"), some("site.domain.com"));
    assert_eq!(text(batch, "method", 1), some("OPTIONS"));
    assert_eq!(text(batch, "path", 1), some("/api/v2/app/"));
    assert_eq!(duration_ms(batch, 1), Some(18.0));
    assert_eq!(attribute(batch, 1, "actconn"), some("222"));

    // Line 7: the syslog time (12:02:57) is after the request date (12:02:55).
    assert_eq!(time(batch, 6), utc((2021, 6, 22), (12, 2, 55), 202_000));
    assert_eq!(
        attribute(batch, 6, "syslog_timestamp"),
        some("Jun 22 12:02:57")
    );
    assert_eq!(duration_ms(batch, 6), Some(2606.0));
    assert_eq!(int64(batch, "response_bytes", 6), Some(325_791));
}

#[test]
fn haproxy_no_server() {
    let Some(chunk) = detect_and_parse(
        "haproxy/beats_haproxy_httplog_nosrv_503.log",
        Format::Haproxy,
    ) else {
        return;
    };
    assert_counts(&chunk, 3, 0, 0);
    let batch = &chunk.batch;
    for row in 0..3 {
        assert_eq!(int32(batch, "status", row), Some(503), "row {row}");
        assert_eq!(text(batch, "upstream", row), None, "row {row}");
        assert_eq!(duration_ms(batch, row), Some(0.0), "row {row}");
        assert_eq!(attribute(batch, row, "Tw"), None, "row {row}");
        assert_eq!(attribute(batch, row, "termination_state"), some("SC--"));
        assert_eq!(
            attribute(batch, row, "backend_name"),
            some("http-webservices")
        );
        assert_eq!(attribute(batch, row, "server_name"), None, "row {row}");
    }

    // Line 1: no header blocks.
    assert_eq!(time(batch, 0), utc((2018, 12, 10), (12, 1, 46), 395_000));
    assert_eq!(text(batch, "path", 0), some("/"));
    assert_eq!(attribute(batch, 0, "captured_request_headers"), None);

    // Line 2: one block, read as the request headers.
    assert_eq!(
        attribute(batch, 1, "captured_request_headers"),
        some("localhost:8888||")
    );
    assert_eq!(text(batch, "path", 1), some("/foo"));

    // Line 3: two blocks, the second empty.
    assert_eq!(
        attribute(batch, 2, "captured_request_headers"),
        some("localhost:8888||")
    );
    assert_eq!(attribute(batch, 2, "captured_response_headers"), None);
    assert_eq!(text(batch, "path", 2), some("/foo"));
}

#[test]
fn traefik_common_log() {
    let Some(chunk) = detect_and_parse("traefik/beats_traefik_clf_access.log", Format::Traefik)
    else {
        return;
    };
    assert_counts(&chunk, 2, 0, 0);
    let batch = &chunk.batch;

    // Line 1.
    assert_eq!(time(batch, 0), utc((2017, 10, 2), (20, 22, 7), 0));
    assert_eq!(text(batch, "client_ip", 0), some("192.168.33.1"));
    assert_eq!(
        text(batch, "path", 0),
        some("/ui/favicons/favicon-16x16.png")
    );
    assert_eq!(int32(batch, "status", 0), Some(304));
    assert_eq!(int64(batch, "response_bytes", 0), Some(0));
    assert_eq!(text(batch, "referer", 0), some("http://example.com/login"));
    assert_eq!(attribute(batch, 0, "request_count"), some("262"));
    assert_eq!(attribute(batch, 0, "router_name"), some("Host-host-1"));
    assert_eq!(
        attribute(batch, 0, "service_url"),
        some("http://172.19.0.3:5601")
    );
    assert_eq!(duration_ms(batch, 0), Some(2.0));

    // Line 2: the frontend name lacks its closing quote; no field shifts.
    assert_eq!(time(batch, 1), utc((2017, 10, 2), (20, 22, 8), 0));
    assert_eq!(text(batch, "client_ip", 1), some("85.181.35.98"));
    assert_eq!(
        text(batch, "user_agent", 1),
        some(
            "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) \
             Chrome/61.0.3163.100 Safari/537.36"
        )
    );
    assert_eq!(attribute(batch, 1, "request_count"), some("271"));
    assert_eq!(attribute(batch, 1, "router_name"), some("Host-host1"));
    assert_eq!(
        attribute(batch, 1, "service_url"),
        some("http://172.19.0.3:5601")
    );
    assert_eq!(duration_ms(batch, 1), Some(3.0));
}

#[test]
fn traefik_json_v1_v2() {
    let Some(chunk) = detect_and_parse("traefik/elastic_traefik_json_v1_v2.log", Format::Traefik)
    else {
        return;
    };
    assert_counts(&chunk, 7, 0, 0);
    let batch = &chunk.batch;

    // Line 1: Traefik v1, no backend.
    assert_eq!(time(batch, 0), utc((2021, 3, 16), (18, 56, 54), 735_539));
    assert_eq!(text(batch, "client_ip", 0), some("127.0.0.1"));
    assert_eq!(int32(batch, "client_port", 0), Some(48658));
    assert_eq!(int32(batch, "status", 0), Some(404));
    assert_eq!(duration_ms(batch, 0), Some(0.040356));
    assert_eq!(text(batch, "upstream", 0), None);
    assert_eq!(
        attribute(batch, 0, "FrontendName"),
        some("backend not found")
    );
    assert_eq!(attribute(batch, 0, "BackendURL"), some("/"));
    assert_eq!(text(batch, "user_agent", 0), some("curl/7.67.0"));
    assert_eq!(attribute(batch, 0, "ClientHost"), None);

    // Line 2: Traefik v1 with a backend.
    assert_eq!(text(batch, "upstream", 1), some("10.10.10.10:80"));
    assert_eq!(
        attribute(batch, 1, "BackendURL"),
        some("http://10.10.10.20:80")
    );
    assert_eq!(
        attribute(batch, 1, "downstream_Date"),
        some("Tue, 16 Mar 2021 19:08:41 GMT")
    );

    // Line 3: Traefik v2, the ping entry point.
    assert_eq!(time(batch, 2), utc((2024, 2, 1), (15, 43, 38), 669_746));
    assert_eq!(text(batch, "path", 2), some("/ping"));
    assert_eq!(text(batch, "scheme", 2), some("http"));
    assert_eq!(attribute(batch, 2, "RouterName"), some("ping@internal"));
    assert_eq!(attribute(batch, 2, "entryPointName"), some("ping"));
    assert_eq!(attribute(batch, 2, "RequestPort"), some("4567"));

    // Line 4: no StartUTC, so the time is StartLocal.
    assert_eq!(time(batch, 3), utc((2024, 2, 2), (17, 7, 8), 48_870));
    assert_eq!(int64(batch, "request_bytes", 3), Some(814));
    assert_eq!(text(batch, "upstream", 3), some("10.10.10.40:1234"));
    assert_eq!(
        attribute(batch, 3, "ServiceURL"),
        some("http://10.10.10.60:5678")
    );

    // Line 6: ClientHost from forwarded headers differs from ClientAddr.
    assert_eq!(text(batch, "client_ip", 5), some("10.10.8.105"));
    assert_eq!(attribute(batch, 5, "ClientHost"), some("175.16.199.10"));
    assert_eq!(text(batch, "http_version", 5), some("HTTP/1.0"));
    assert_eq!(duration_ms(batch, 5), Some(59.518533));

    // Line 7: an IPv6 client.
    assert_eq!(text(batch, "client_ip", 6), some("::1"));
    assert_eq!(int32(batch, "client_port", 6), Some(56348));
}

/// Sample files of the format, which the other files are checked against.
const OWN_SAMPLES: [(Format, &[&str]); 4] = [
    (Format::IngressNginx, &[]),
    (
        Format::Envoy,
        &[
            "envoy/elastic_envoyproxy_legacy_and_k8s_wrapped.log",
            "envoy/elastic_istio_envoy_default_text.log",
        ],
    ),
    (
        Format::Haproxy,
        &[
            "haproxy/beats_haproxy_httplog_nosrv_503.log",
            "haproxy/beats_haproxy_httplog_syslog.log",
        ],
    ),
    (
        Format::Traefik,
        &[
            "traefik/beats_traefik_clf_access.log",
            "traefik/elastic_traefik_json_v1_v2.log",
        ],
    ),
];

/// Lists every sample file below `realdata_dir`, as paths relative to it.
fn all_samples() -> Vec<String> {
    let root = realdata_dir();
    let mut samples = Vec::new();
    let mut dirs = vec![root.clone()];
    while let Some(dir) = dirs.pop() {
        let entries = std::fs::read_dir(&dir)
            .unwrap_or_else(|error| panic!("failed to list {}: {error}", dir.display()));
        for entry in entries {
            let path = entry.expect("directory entry").path();
            if path.is_dir() {
                dirs.push(path);
            } else if path
                .extension()
                .is_some_and(|ext| ext != "md" && ext != "txt")
            {
                let relative = path.strip_prefix(&root).expect("path below the root");
                samples.push(relative.to_string_lossy().into_owned());
            }
        }
    }
    samples.sort();
    samples
}

#[test]
fn other_samples_are_rejected() {
    let samples = all_samples();
    assert!(samples.len() > 40, "found only {} samples", samples.len());
    for (format, own) in OWN_SAMPLES {
        for name in samples.iter().filter(|name| !own.contains(&name.as_str())) {
            let Some(chunk) = parse_as(name, format) else {
                return;
            };
            assert_eq!(
                (chunk.report.accepted, chunk.report.skipped),
                (0, 0),
                "{format} should reject every record of {name}, skipped reasons {:?}",
                chunk.report.skipped_reasons
            );
        }
    }
}
