use std::path::PathBuf;
use apitrail_ingest::{Format, ParseContext, Redactor, detect_format, parse_chunk};

#[test]
fn dump_counts() {
    let files = [
        ("alb/elastic_integrations_test-alb.log", Format::AwsAlb),
        ("alb/beats_application-lb-http.log", Format::AwsAlb),
        ("alb/beats_example-alb-http.log", Format::AwsAlb),
        ("nginx/beats_nginx_access.log", Format::Clf),
        ("nginx/beats_nginx_test_xff_edgecases.log", Format::Clf),
        ("apache/beats_apache_access_mixed_common_combined.log", Format::Clf),
        ("apache/beats_apache_darwin_2.4.23_common.log", Format::Clf),
        ("apigateway/elastic_apigateway_rest_clf_json.log", Format::AwsApiGateway),
        ("apigateway/elastic_apigateway_websocket.log", Format::AwsApiGateway),
        ("apigateway/elastic_http_api_gateway_full.log", Format::AwsApiGateway),
        ("apigateway/elastic_rest_api_gateway_full.log", Format::AwsApiGateway),
        ("throughput/elastic_examples_apache_logs_10k.log", Format::Clf),
        ("throughput/zanbil_ir_nginx_combined_10k_via_logsentinelai.log", Format::Clf),
    ];
    let r = Redactor::new(b"test-key".to_vec(), 1);
    let ctx = ParseContext { sensor: None, redactor: &r };
    for (name, format) in files {
        let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/realdata").join(name);
        let data = std::fs::read(&path).unwrap();
        let detected = detect_format(&data[..data.len().min(8192)]);
        let start = std::time::Instant::now();
        let chunk = parse_chunk(format, &data, 1, &ctx);
        println!("{name}: detected={detected:?} accepted={} rejected={} skipped={} {:?} in {:?}", chunk.report.accepted, chunk.report.rejected, chunk.report.skipped, chunk.report.skipped_reasons, start.elapsed());
        for e in chunk.report.errors.iter().take(5) { println!("   line {}: {}", e.line, e.reason); }
    }
}

#[test]
fn dump_odd() {
    use apitrail_ingest::LineOutcome;
    let r = Redactor::new(b"test-key".to_vec(), 1);
    let ctx = ParseContext { sensor: None, redactor: &r };
    for name in ["throughput/elastic_examples_apache_logs_10k.log", "throughput/zanbil_ir_nginx_combined_10k_via_logsentinelai.log"] {
        let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/realdata").join(name);
        let data = std::fs::read_to_string(&path).unwrap();
        let mut keys = std::collections::BTreeMap::<String, usize>::new();
        for (i, line) in data.lines().enumerate() {
            if let LineOutcome::Event(e) = apitrail_ingest::formats::parse_line(Format::Clf, line, &ctx) {
                for (k, _) in &e.attributes { *keys.entry(k.clone()).or_default() += 1; }
                if e.malformed || e.client_ip.is_none() || e.attributes.iter().any(|(k, _)| k != "extra_1") || e.method.is_none() {
                    println!("{}:{} malformed={} m={:?} p={:?} q={:?} attrs={:?}", name, i + 1, e.malformed, e.method, e.path, e.query, e.attributes);
                }
            }
        }
        println!("{name} attribute keys {keys:?}");
    }
}

#[test]
fn dump_small() {
    use apitrail_ingest::LineOutcome;
    let r = Redactor::new(b"test-key".to_vec(), 1);
    let ctx = ParseContext { sensor: None, redactor: &r };
    for (name, format) in [("alb/elastic_integrations_test-alb.log", Format::AwsAlb), ("alb/beats_example-alb-http.log", Format::AwsAlb), ("nginx/beats_nginx_test_xff_edgecases.log", Format::Clf), ("apache/beats_apache_access_mixed_common_combined.log", Format::Clf), ("apigateway/elastic_http_api_gateway_full.log", Format::AwsApiGateway), ("apigateway/elastic_apigateway_websocket.log", Format::AwsApiGateway)] {
        let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/realdata").join(name);
        let data = std::fs::read_to_string(&path).unwrap();
        for (i, line) in data.lines().enumerate() {
            if let LineOutcome::Event(e) = apitrail_ingest::formats::parse_line(format, line, &ctx) {
                println!("{}:{} {:?}\n", name, i + 1, e);
            }
        }
    }
}
