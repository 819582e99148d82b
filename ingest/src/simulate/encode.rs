//! Writes simulated calls in the formats whose parsers apitrail has.
//!
//! Each format carries the consumer where its parser looks for it: the API
//! key id in `apiKeyId` (`aws_apigateway`), the consumer id in `consumer.id`
//! (`kong`), `enduser.id` on the span (`otlp`), and for `aws_alb`, which
//! logs no credential, the client address. The written time is the one the
//! parser reads as the event time: the start of the request everywhere but
//! `aws_alb`, whose `time` field is the end and whose `request_creation_time`
//! is set to that time minus the latency.
//!
//! OTLP records group the spans of up to five seconds, at most 64 of them,
//! as a collector's batch processor would export them.

use std::io::{self, Write};

use super::SimulateError;
use super::catalog::API_HOST;
use super::clock::{push_clf_time, push_rfc3339_micros};
use super::rng::mix64;
use super::traffic::SimEvent;
use super::world::World;
use crate::format::Format;

/// Formats the simulator writes.
pub const SUPPORTED_FORMATS: [Format; 4] = [
    Format::AwsApiGateway,
    Format::Kong,
    Format::Otlp,
    Format::AwsAlb,
];

/// Maximum time span, in milliseconds, and maximum number of spans of one OTLP record.
const OTLP_BATCH_MS: i64 = 5_000;
const OTLP_BATCH_SPANS: usize = 64;

/// Returns an error unless the simulator can write `format`.
pub fn check_format(format: Format) -> Result<(), SimulateError> {
    if SUPPORTED_FORMATS.contains(&format) {
        Ok(())
    } else {
        Err(SimulateError::UnsupportedFormat(format))
    }
}

/// Returns the consumer apitrail stores for a call written in `format`.
pub fn consumer_of(world: &World, format: Format, event: &SimEvent) -> String {
    let app = world.apps.get(event.app);
    match format {
        Format::AwsApiGateway => app.map(|app| app.api_key_id.clone()),
        Format::Kong => app.map(|app| app.kong_consumer_id.clone()),
        Format::Otlp => app.map(|app| app.name.clone()),
        _ => None,
    }
    .unwrap_or_else(|| ip_text(event.client_ip))
}

pub(crate) fn ip_text(ip: [u8; 4]) -> String {
    format!("{}.{}.{}.{}", ip[0], ip[1], ip[2], ip[3])
}

/// Writes calls, one record per line, in one format.
pub struct Encoder<'a> {
    format: Format,
    world: &'a World,
    line: String,
    /// Spans of the OTLP record being built, comma-separated.
    spans: String,
    span_count: usize,
    batch_start_ms: i64,
}

impl<'a> Encoder<'a> {
    pub fn new(format: Format, world: &'a World) -> Result<Self, SimulateError> {
        check_format(format)?;
        Ok(Encoder {
            format,
            world,
            line: String::with_capacity(1024),
            spans: String::new(),
            span_count: 0,
            batch_start_ms: 0,
        })
    }

    /// Writes one call and returns the number of whole records written:
    /// 1 for line formats, 0 or 1 for OTLP, which groups calls.
    pub fn write(&mut self, event: &SimEvent, out: &mut dyn Write) -> io::Result<u64> {
        self.line.clear();
        match self.format {
            Format::AwsApiGateway => write_apigateway(self.world, event, &mut self.line),
            Format::Kong => write_kong(self.world, event, &mut self.line),
            Format::AwsAlb => write_alb(event, &mut self.line),
            _ => return self.add_span(event, out),
        }
        self.line.push('\n');
        out.write_all(self.line.as_bytes())?;
        Ok(1)
    }

    /// Writes what is still buffered and returns the number of records written.
    pub fn finish(&mut self, out: &mut dyn Write) -> io::Result<u64> {
        self.flush_spans(out)
    }

    fn add_span(&mut self, event: &SimEvent, out: &mut dyn Write) -> io::Result<u64> {
        let mut written = 0;
        let full = self.span_count >= OTLP_BATCH_SPANS
            || (self.span_count > 0 && event.time_ms - self.batch_start_ms >= OTLP_BATCH_MS);
        if full {
            written = self.flush_spans(out)?;
        }
        if self.span_count == 0 {
            self.batch_start_ms = event.time_ms;
        } else {
            self.spans.push(',');
        }
        write_span(self.world, event, &mut self.spans);
        self.span_count += 1;
        Ok(written)
    }

    fn flush_spans(&mut self, out: &mut dyn Write) -> io::Result<u64> {
        if self.span_count == 0 {
            return Ok(0);
        }
        self.line.clear();
        self.line.push_str(
            r#"{"resourceSpans":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"tradehub-api"}},{"key":"service.version","value":{"stringValue":"2025.4.2"}},{"key":"deployment.environment.name","value":{"stringValue":"production"}}]},"scopeSpans":[{"scope":{"name":"io.opentelemetry.spring-webmvc-6.0","version":"2.10.0-alpha"},"spans":["#,
        );
        self.line.push_str(&self.spans);
        self.line.push_str("]}]}]}\n");
        out.write_all(self.line.as_bytes())?;
        self.spans.clear();
        self.span_count = 0;
        Ok(1)
    }
}

/// Appends `text` as a JSON string.
fn push_json_str(out: &mut String, text: &str) {
    use std::fmt::Write;
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if u32::from(c) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Appends `"key":"value",`.
fn push_field(out: &mut String, key: &str, value: &str) {
    push_json_str(out, key);
    out.push(':');
    push_json_str(out, value);
    out.push(',');
}

fn push_display(out: &mut String, value: impl std::fmt::Display) {
    use std::fmt::Write;
    let _ = write!(out, "{value}");
}

/// Formats random bits as a version 4 UUID, as API Gateway request ids are.
fn uuid_text(bits: u128) -> String {
    let bits = (bits & !(0xF << 76) & !(0x3 << 62)) | (0x4 << 76) | (0x2 << 62);
    format!(
        "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
        (bits >> 96) as u32,
        (bits >> 80) as u16,
        (bits >> 64) as u16,
        (bits >> 48) as u16,
        bits & 0xFFFF_FFFF_FFFF
    )
}

/// Path with its query string, when it has one.
fn target(event: &SimEvent) -> String {
    match &event.query {
        Some(query) => format!("{}?{query}", event.path),
        None => event.path.clone(),
    }
}

/// Returns the backend instance that served a call, from its request id.
fn upstream(event: &SimEvent) -> ([u8; 4], u16) {
    let hash = mix64(event.request_id as u64);
    (
        [10, 20, 1 + (hash % 4) as u8, 10 + ((hash >> 8) % 30) as u8],
        8080,
    )
}

fn write_apigateway(world: &World, event: &SimEvent, line: &mut String) {
    line.push('{');
    push_field(line, "requestId", &uuid_text(event.request_id));
    push_field(line, "ip", &ip_text(event.client_ip));
    line.push_str("\"requestTime\":\"");
    push_clf_time(line, event.time_ms);
    line.push_str("\",\"requestTimeEpoch\":\"");
    push_display(line, event.time_ms);
    line.push_str("\",");
    push_field(line, "httpMethod", event.method);
    push_field(line, "resourcePath", event.route);
    // API Gateway's $context.path carries no query string.
    push_field(line, "path", &event.path);
    push_field(line, "status", &event.status.to_string());
    push_field(line, "protocol", "HTTP/1.1");
    push_field(line, "responseLength", &event.response_bytes.to_string());
    push_field(line, "responseLatency", &event.latency_ms.to_string());
    let integration = event
        .latency_ms
        .saturating_sub(1 + (event.request_id % 4) as u32);
    push_field(line, "integrationLatency", &integration.to_string());
    push_field(line, "userAgent", &event.user_agent);
    if let Some(app) = world.apps.get(event.app) {
        push_field(line, "apiKeyId", &app.api_key_id);
    }
    push_field(line, "domainName", API_HOST);
    push_field(line, "stage", "prod");
    push_json_str(line, "apiId");
    line.push(':');
    push_json_str(line, &world.api_id);
    line.push('}');
}

fn write_kong(world: &World, event: &SimEvent, line: &mut String) {
    let target = target(event);
    line.push_str("{\"request\":{");
    push_field(line, "method", event.method);
    push_field(line, "uri", &target);
    push_field(line, "url", &format!("https://{API_HOST}:443{target}"));
    line.push_str("\"size\":");
    push_display(line, event.request_bytes);
    line.push_str(",\"querystring\":{");
    if let Some(query) = &event.query {
        for (index, pair) in query.split('&').enumerate() {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            if index > 0 {
                line.push(',');
            }
            push_json_str(line, key);
            line.push(':');
            push_json_str(line, value);
        }
    }
    line.push_str("},\"headers\":{");

    push_field(line, "host", API_HOST);
    push_field(line, "accept", "application/json");
    push_json_str(line, "user-agent");
    line.push(':');
    push_json_str(line, &event.user_agent);
    line.push_str("},");
    push_json_str(line, "id");
    line.push(':');
    push_json_str(line, &format!("{:032x}", event.request_id));
    line.push_str("},");

    push_field(line, "upstream_uri", &target);
    line.push_str("\"response\":{\"status\":");
    push_display(line, event.status);
    line.push_str(",\"size\":");
    push_display(line, event.response_bytes);
    line.push_str(",\"headers\":{\"content-type\":\"application/json\"}},");

    let kong_ms = (event.request_id % 3) as u32;
    line.push_str("\"latencies\":{\"request\":");
    push_display(line, event.latency_ms);
    line.push_str(",\"kong\":");
    push_display(line, kong_ms);
    line.push_str(",\"proxy\":");
    push_display(line, event.latency_ms.saturating_sub(kong_ms));
    let (upstream_ip, upstream_port) = upstream(event);
    line.push_str("},\"tries\":[{\"ip\":");
    push_json_str(line, &ip_text(upstream_ip));
    line.push_str(",\"port\":");
    push_display(line, upstream_port);
    line.push_str(",\"balancer_latency\":0}],");

    push_field(line, "client_ip", &ip_text(event.client_ip));
    line.push_str("\"started_at\":");
    push_display(line, event.time_ms);
    if let Some(app) = world.apps.get(event.app) {
        line.push_str(",\"consumer\":{");
        push_field(line, "id", &app.kong_consumer_id);
        push_json_str(line, "username");
        line.push(':');
        push_json_str(line, &app.name);
        line.push('}');
    }
    line.push_str(",\"service\":{\"name\":\"tradehub-api\",\"protocol\":\"http\",\"host\":\"tradehub-backend.internal\",\"port\":8080},\"route\":{\"name\":");
    let route_name = event
        .catalog_endpoint()
        .map_or("catch-all", |endpoint| endpoint.name);
    push_json_str(line, route_name);
    line.push_str("},\"workspace\":\"default\"}");
}

fn push_string_attribute(out: &mut String, key: &str, value: &str) {
    out.push_str("{\"key\":");
    push_json_str(out, key);
    out.push_str(",\"value\":{\"stringValue\":");
    push_json_str(out, value);
    out.push_str("}},");
}

fn push_int_attribute(out: &mut String, key: &str, value: u64) {
    out.push_str("{\"key\":");
    push_json_str(out, key);
    out.push_str(",\"value\":{\"intValue\":\"");
    push_display(out, value);
    out.push_str("\"}},");
}

fn write_span(world: &World, event: &SimEvent, out: &mut String) {
    use std::fmt::Write;
    let span_id = mix64(event.request_id as u64).max(1);
    let start_ns = i128::from(event.time_ms) * 1_000_000;
    let end_ns = start_ns + i128::from(event.latency_ms) * 1_000_000;
    let known_route = event.endpoint.is_some();
    let name = if known_route {
        format!("{} {}", event.method, event.route)
    } else {
        event.method.to_string()
    };
    let _ = write!(
        out,
        "{{\"traceId\":\"{:032x}\",\"spanId\":\"{span_id:016x}\",\"name\":",
        event.request_id.max(1)
    );
    push_json_str(out, &name);
    let _ = write!(
        out,
        ",\"kind\":2,\"startTimeUnixNano\":\"{start_ns}\",\"endTimeUnixNano\":\"{end_ns}\",\"attributes\":["
    );

    push_string_attribute(out, "http.request.method", event.method);
    push_string_attribute(out, "url.scheme", "https");
    push_string_attribute(out, "url.path", &event.path);
    if let Some(query) = &event.query {
        push_string_attribute(out, "url.query", query);
    }
    if known_route {
        push_string_attribute(out, "http.route", event.route);
    }
    push_string_attribute(out, "server.address", API_HOST);
    push_int_attribute(out, "http.response.status_code", u64::from(event.status));
    push_string_attribute(out, "network.protocol.version", "1.1");
    push_string_attribute(out, "user_agent.original", &event.user_agent);
    push_string_attribute(out, "client.address", &ip_text(event.client_ip));
    push_int_attribute(out, "client.port", u64::from(event.client_port));
    if event.request_bytes > 0 {
        push_int_attribute(out, "http.request.body.size", event.request_bytes);
    }
    push_int_attribute(out, "http.response.body.size", event.response_bytes);
    if let Some(app) = world.apps.get(event.app) {
        push_string_attribute(out, "enduser.id", &app.name);
    }

    // Every attribute above ends with a comma, and the last one is dropped.
    if out.ends_with(',') {
        out.pop();
    }
    out.push(']');
    if event.status >= 500 {
        out.push_str(",\"status\":{\"code\":2}}");
    } else {
        out.push_str(",\"status\":{}}");
    }
}

/// Seconds with three decimals, as ALB writes processing times.
fn seconds_text(millis: u32) -> String {
    format!("{}.{:03}", millis / 1000, millis % 1000)
}

fn write_alb(event: &SimEvent, line: &mut String) {
    use std::fmt::Write;
    let (upstream_ip, upstream_port) = upstream(event);
    let upstream = format!("{}:{upstream_port}", ip_text(upstream_ip));
    line.push_str("https ");
    push_rfc3339_micros(line, event.time_ms);
    let _ = write!(
        line,
        " app/tradehub-prod/4f6b2c9a1d3e5f70 {}:{} {upstream} 0.000 {} 0.000 {} {} {} {} \"{} https://{API_HOST}:443{} HTTP/1.1\" \"{}\" ECDHE-RSA-AES128-GCM-SHA256 TLSv1.2 arn:aws:elasticloadbalancing:eu-west-1:123456789012:targetgroup/tradehub-api/73e2d6bc24d8a067 \"Root=1-{:08x}-{:024x}\" \"{API_HOST}\" \"arn:aws:acm:eu-west-1:123456789012:certificate/9b1c7e52-4d3a-4f0e-8a61-2c5d9e7f1a30\" 1 ",
        ip_text(event.client_ip),
        event.client_port,
        seconds_text(event.latency_ms),
        event.status,
        event.status,
        event.request_bytes,
        event.response_bytes,
        event.method,
        target(event),
        event.user_agent.replace('"', "\\\""),
        (event.time_ms / 1000) as u32,
        event.request_id & ((1u128 << 96) - 1),
    );
    push_rfc3339_micros(line, event.time_ms - i64::from(event.latency_ms));
    let _ = write!(
        line,
        " \"forward\" \"-\" \"-\" \"{upstream}\" \"{}\" \"-\" \"-\" TID_{:032x}",
        event.status,
        mix64((event.request_id >> 64) as u64)
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_strings_escaped() {
        let mut out = String::new();
        push_json_str(&mut out, "a\"b\\c\u{1}");
        assert_eq!(out, r#""a\"b\\c\u0001""#);
    }

    #[test]
    fn seconds_have_three_decimals() {
        assert_eq!(seconds_text(45), "0.045");
        assert_eq!(seconds_text(29_500), "29.500");
    }

    #[test]
    fn unsupported_format_rejected() {
        assert!(check_format(Format::Clf).is_err());
        assert!(check_format(Format::Kong).is_ok());
    }
}
