//! AWS Classic Load Balancer access logs (`aws_elb`).
//!
//! Each line is one request, as space-separated fields in this order, quoted
//! where shown:
//!
//! ```text
//! timestamp elb client:port backend:port request_processing_time
//! backend_processing_time response_processing_time elb_status_code
//! backend_status_code received_bytes sent_bytes "request" "user_agent"
//! ssl_cipher ssl_protocol
//! ```
//!
//! Logs written before AWS added `user_agent` and the TLS fields end after
//! `request`. Fields after `ssl_protocol` are kept as attributes `extra_1`, `extra_2`, ...
//!
//! | field | column |
//! |---|---|
//! | `timestamp` | `time` |
//! | `client:port` | `client_ip`, `client_port` |
//! | `backend:port` | `upstream` |
//! | sum of the three processing times (seconds) | `duration_ms` |
//! | `elb_status_code` | `status` |
//! | `backend_status_code` | `upstream_status` |
//! | `received_bytes` | `request_bytes` |
//! | `sent_bytes` | `response_bytes` |
//! | `request` | `method`, `scheme`, `host`, `path`, `query`, `http_version` |
//! | `user_agent` | `user_agent` |
//!
//! `timestamp` is when the load balancer received the request, so the event
//! time is the START of the request (ALB logs the end instead). A time of
//! `-1` means the load balancer could not reach a backend, or the backend
//! closed the connection before responding: `duration_ms` is then unknown.
//! `elb`, the processing times, `ssl_cipher` and `ssl_protocol` go to
//! attributes of the same name, and `-` values are left out.
//!
//! A TCP or SSL listener logs connections, not HTTP requests: its lines have
//! the request `"- - - "` and no status, and are skipped. ALB lines start with
//! a type such as `http` or `h2` instead of a timestamp and are rejected.

use crate::event::Event;
use crate::format::Format;
use crate::formats::alb::parse_digits;
use crate::parse::{LineOutcome, ParseContext};
use crate::text::{
    Delimiter, Field, Fields, dash_as_none, parse_iso8601, parse_seconds_as_micros, quote_excerpt,
    set_client_endpoint, set_request, unescape_text,
};

/// Names of the fields up to `request`, which every layout has.
const REQUIRED_FIELDS: [&str; 12] = [
    "timestamp",
    "elb",
    "client:port",
    "backend:port",
    "request_processing_time",
    "backend_processing_time",
    "response_processing_time",
    "elb_status_code",
    "backend_status_code",
    "received_bytes",
    "sent_bytes",
    "request",
];

/// Attribute names of the fields after `user_agent`, in log order.
const TLS_FIELDS: [&str; 2] = ["ssl_cipher", "ssl_protocol"];

const TIMESTAMP: usize = 0;
const ELB: usize = 1;
const CLIENT: usize = 2;
const BACKEND: usize = 3;
const PROCESSING_TIMES: [usize; 3] = [4, 5, 6];
const ELB_STATUS_CODE: usize = 7;
const BACKEND_STATUS_CODE: usize = 8;
const RECEIVED_BYTES: usize = 9;
const SENT_BYTES: usize = 10;
const REQUEST: usize = 11;
const USER_AGENT: usize = 12;

/// Parses one line of a Classic Load Balancer access log.
pub fn parse_line(line: &str, _ctx: &ParseContext<'_>) -> LineOutcome {
    parse_record(line)
}

/// Parses one line without the per-input settings, as format detection needs.
pub(crate) fn parse_record(line: &str) -> LineOutcome {
    let line = line.strip_prefix('\u{feff}').unwrap_or(line);
    let mut fields = Vec::with_capacity(REQUIRED_FIELDS.len() + 1 + TLS_FIELDS.len());
    fields.extend(Fields::new(line));
    if fields.len() < REQUIRED_FIELDS.len() {
        return LineOutcome::Rejected(format!(
            "expected at least {} space-separated fields for aws_elb, found {}",
            REQUIRED_FIELDS.len(),
            fields.len()
        ));
    }
    let time = match parse_iso8601(fields[TIMESTAMP].text) {
        Some(time) => time,
        None => return LineOutcome::Rejected(invalid_field("timestamp", &fields, TIMESTAMP)),
    };
    if fields[REQUEST].delimiter != Delimiter::Quoted {
        return LineOutcome::Rejected(format!(
            "expected a quoted request line in field {} (request), found {}",
            REQUEST + 1,
            quote_excerpt(fields[REQUEST].text)
        ));
    }
    if is_tcp_connection(&fields) {
        return LineOutcome::Skipped("elb_tcp_connection");
    }
    match build_event(time, &fields) {
        Ok(event) => LineOutcome::Event(Box::new(event)),
        Err(reason) => LineOutcome::Rejected(reason),
    }
}

/// Returns whether the line is the record of a TCP or SSL listener connection:
/// no status and the request `- - -`.
fn is_tcp_connection(fields: &[Field<'_>]) -> bool {
    fields[ELB_STATUS_CODE].text == "-" && fields[REQUEST].text.trim_end() == "- - -"
}

fn build_event(time: i64, fields: &[Field<'_>]) -> Result<Event, String> {
    let mut event = Event::new(Format::AwsElb.name(), time);
    push_attribute(&mut event, "elb", fields[ELB].text);
    set_client_endpoint(&mut event, fields[CLIENT].text);
    event.upstream = dash_as_none(fields[BACKEND].text).map(str::to_string);
    set_processing_times(&mut event, fields)?;
    event.status = parse_status(fields, ELB_STATUS_CODE)?;
    event.upstream_status = parse_status(fields, BACKEND_STATUS_CODE)?;
    event.request_bytes = parse_byte_count(fields, RECEIVED_BYTES)?;
    event.response_bytes = parse_byte_count(fields, SENT_BYTES)?;
    set_request(&mut event, fields[REQUEST].text);
    set_optional_fields(&mut event, &fields[USER_AGENT..]);
    Ok(event)
}

/// Sets `duration_ms` and keeps each known processing time as an attribute.
fn set_processing_times(event: &mut Event, fields: &[Field<'_>]) -> Result<(), String> {
    let mut total_micros = Some(0);
    for index in PROCESSING_TIMES {
        let text = fields[index].text;
        if text == "-1" || text == "-" {
            total_micros = None;
            continue;
        }
        let micros =
            parse_seconds_as_micros(text).ok_or_else(|| invalid_field("number", fields, index))?;
        total_micros = total_micros.map(|total| total + micros);
        push_attribute(event, REQUIRED_FIELDS[index], text);
    }
    event.duration_ms = total_micros.map(|micros| micros as f64 / 1000.0);
    Ok(())
}

/// Parses a status code. A `-` (no response from a backend) is unknown.
fn parse_status(fields: &[Field<'_>], index: usize) -> Result<Option<i32>, String> {
    match fields[index].text {
        "-" => Ok(None),
        text => parse_digits(text)
            .and_then(|status| i32::try_from(status).ok())
            .map(Some)
            .ok_or_else(|| invalid_field("status", fields, index)),
    }
}

fn parse_byte_count(fields: &[Field<'_>], index: usize) -> Result<Option<i64>, String> {
    match fields[index].text {
        "-" => Ok(None),
        text => parse_digits(text)
            .map(Some)
            .ok_or_else(|| invalid_field("byte count", fields, index)),
    }
}

/// Stores `user_agent` in its column and the fields after it as attributes.
fn set_optional_fields(event: &mut Event, fields: &[Field<'_>]) {
    let Some((user_agent, rest)) = fields.split_first() else {
        return;
    };
    event.user_agent = dash_as_none(&unescape_text(user_agent.text)).map(str::to_string);
    for (index, field) in rest.iter().enumerate() {
        let value = unescape_text(field.text);
        match TLS_FIELDS.get(index) {
            Some(name) => push_attribute(event, name, &value),
            None => {
                let name = format!("extra_{}", index + 1 - TLS_FIELDS.len());
                push_attribute(event, &name, &value);
            }
        }
    }
}

fn push_attribute(event: &mut Event, name: &str, value: &str) {
    if let Some(value) = dash_as_none(value) {
        event.attributes.push((name.to_string(), value.to_string()));
    }
}

/// Reject reason for a field whose value is not a valid `value_kind`, naming the field by number and name.
fn invalid_field(value_kind: &str, fields: &[Field<'_>], index: usize) -> String {
    format!(
        "invalid {value_kind} {} in field {} ({})",
        quote_excerpt(fields[index].text),
        index + 1,
        REQUIRED_FIELDS[index]
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::formats::test_support::{expect_event, expect_rejection};

    const HTTP_LINE: &str = concat!(
        r#"2015-05-13T23:39:43.945958Z my-loadbalancer 192.168.131.39:2817 10.0.0.1:80 "#,
        r#"0.000073 0.001048 0.000057 200 200 0 29 "#,
        r#""GET http://www.example.com:80/api/items?page=2 HTTP/1.1" "curl/7.38.0" - -"#,
    );

    const HTTPS_LINE: &str = concat!(
        r#"2015-05-13T23:39:43.945958Z my-loadbalancer 192.168.131.39:2817 10.0.0.1:80 "#,
        r#"0.000086 0.001048 0.001337 200 200 0 57 "#,
        r#""GET https://www.example.com:443/ HTTP/1.1" "curl/7.38.0" DHE-RSA-AES128-SHA TLSv1.2"#,
    );

    fn parse_event(line: &str) -> Event {
        expect_event(line, parse_record(line))
    }

    fn rejection(line: &str) -> String {
        expect_rejection(line, parse_record(line))
    }

    #[test]
    fn http_line_maps_columns() {
        let event = parse_event(HTTP_LINE);
        assert_eq!(event.source, "aws_elb");
        // 2015-05-13T23:39:43.945958Z
        assert_eq!(event.time, 1_431_560_383_945_958);
        assert_eq!(event.client_ip.as_deref(), Some("192.168.131.39"));
        assert_eq!(event.client_port, Some(2817));
        assert_eq!(event.upstream.as_deref(), Some("10.0.0.1:80"));
        assert_eq!(event.status, Some(200));
        assert_eq!(event.upstream_status, Some(200));
        assert_eq!(event.request_bytes, Some(0));
        assert_eq!(event.response_bytes, Some(29));
        assert_eq!(event.duration_ms, Some(1.178));
        assert_eq!(event.method.as_deref(), Some("GET"));
        assert_eq!(event.scheme.as_deref(), Some("http"));
        assert_eq!(event.host.as_deref(), Some("www.example.com"));
        assert_eq!(event.path.as_deref(), Some("/api/items"));
        assert_eq!(event.query.as_deref(), Some("page=2"));
        assert_eq!(event.http_version.as_deref(), Some("HTTP/1.1"));
        assert_eq!(event.user_agent.as_deref(), Some("curl/7.38.0"));
        assert!(!event.malformed);
    }

    #[test]
    fn http_line_keeps_other_fields() {
        let event = parse_event(HTTP_LINE);
        let expected = [
            ("elb", "my-loadbalancer"),
            ("request_processing_time", "0.000073"),
            ("backend_processing_time", "0.001048"),
            ("response_processing_time", "0.000057"),
            ("port", "80"),
        ];
        let actual: Vec<(&str, &str)> = event
            .attributes
            .iter()
            .map(|(key, value)| (key.as_str(), value.as_str()))
            .collect();
        assert_eq!(actual, expected);
    }

    #[test]
    fn https_line_keeps_tls_fields() {
        let event = parse_event(HTTPS_LINE);
        assert_eq!(event.scheme.as_deref(), Some("https"));
        assert_eq!(event.attribute("ssl_cipher"), Some("DHE-RSA-AES128-SHA"));
        assert_eq!(event.attribute("ssl_protocol"), Some("TLSv1.2"));
        assert_eq!(event.attribute("port"), Some("443"));
    }

    #[test]
    fn no_backend_gives_no_duration() {
        let line = "2015-05-13T23:39:43.945958Z my-loadbalancer 192.168.131.39:2817 - -1 -1 -1 \
                    503 - 0 0 \"GET http://www.example.com:80/ HTTP/1.1\" \"curl/7.38.0\" - -";
        let event = parse_event(line);
        assert_eq!(event.status, Some(503));
        assert_eq!(event.upstream, None);
        assert_eq!(event.upstream_status, None);
        assert_eq!(event.duration_ms, None);
        assert_eq!(event.attribute("request_processing_time"), None);
    }

    #[test]
    fn tcp_listener_record_is_skipped() {
        let line = "2015-05-13T23:39:43.945958Z my-loadbalancer 192.168.131.39:2817 10.0.0.1:80 \
                    0.001069 0.000028 0.000041 - - 82 305 \"- - - \" \"-\" - -";
        assert!(matches!(
            parse_record(line),
            LineOutcome::Skipped("elb_tcp_connection")
        ));
        let ssl = line.replace("\"-\" - -", "\"-\" ECDHE-ECDSA-AES128-GCM-SHA256 TLSv1.2");
        assert!(matches!(
            parse_record(&ssl),
            LineOutcome::Skipped("elb_tcp_connection")
        ));
    }

    #[test]
    fn malformed_http_request_keeps_row() {
        let line = "2015-05-13T23:39:43.945958Z my-loadbalancer 192.168.131.39:2817 - -1 -1 -1 \
                    400 - 0 0 \"- - - \" \"-\" - -";
        let event = parse_event(line);
        assert!(event.malformed);
        assert_eq!(event.status, Some(400));
        assert_eq!(event.method, None);
        assert_eq!(event.attribute("request"), Some("- - - "));
    }

    #[test]
    fn oldest_layout_ends_at_request() {
        let line = "2014-02-15T23:39:43.945958Z my-test-loadbalancer 192.168.131.39:2817 \
                    10.0.0.1:80 0.000073 0.001048 0.000057 200 200 0 29 \
                    \"GET http://www.example.com:80/ HTTP/1.1\"";
        let event = parse_event(line);
        assert_eq!(event.status, Some(200));
        assert_eq!(event.path.as_deref(), Some("/"));
        assert_eq!(event.user_agent, None);
    }

    #[test]
    fn unknown_trailing_fields_become_extras() {
        let event = parse_event(&format!("{HTTPS_LINE} new - 7"));
        assert_eq!(event.attribute("extra_1"), Some("new"));
        assert_eq!(event.attribute("extra_2"), None);
        assert_eq!(event.attribute("extra_3"), Some("7"));
    }

    #[test]
    fn ipv6_client() {
        let line = HTTP_LINE.replace("192.168.131.39:2817", "2001:db8::1:2817");
        let event = parse_event(&line);
        assert_eq!(event.client_ip.as_deref(), Some("2001:db8::1"));
        assert_eq!(event.client_port, Some(2817));
    }

    #[test]
    fn leap_second_timestamp() {
        let line = HTTP_LINE.replace("2015-05-13T23:39:43.945958Z", "2016-12-31T23:59:60.5Z");
        // 2016-12-31T23:59:59.999999Z
        assert_eq!(parse_event(&line).time, 1_483_228_799_999_999);
    }

    #[test]
    fn alb_lines_are_rejected() {
        let alb = concat!(
            r#"http 2018-07-02T22:23:00.186641Z app/my-loadbalancer/50dc6c495c0c9188 "#,
            r#"192.168.131.39:2817 10.0.0.1:80 0.000 0.001 0.000 200 200 34 366 "#,
            r#""GET http://www.example.com:80/ HTTP/1.1" "curl/7.46.0" - - "#,
            r#"arn:aws:elasticloadbalancing:us-east-2:123456789012:targetgroup/my-targets/73e2d6bc24d8a067 "#,
            r#""Root=1-58337262-36d228ad5d99923122bbe354" "-" "-" 0 2018-07-02T22:22:48.364000Z "forward" "-" "-""#,
        );
        assert_eq!(
            rejection(alb),
            r#"invalid timestamp "http" in field 1 (timestamp)"#
        );
        let connection_log = "2024-10-04T17:05:15.514108Z 192.168.131.39 36280 443 TLSv1.2 \
                              ECDHE-RSA-AES128-GCM-SHA256 4.036 \"CN=amazondomains.com,O=endEntity\" \
                              NotBefore=2023-09-21T22:43:21Z;NotAfter=2026-06-17T22:43:21Z FEF257372D5C14D4 Success";
        assert_eq!(
            rejection(connection_log),
            "expected at least 12 space-separated fields for aws_elb, found 11"
        );
    }

    #[test]
    fn clf_line_is_rejected() {
        let line = r#"10.0.0.1 - - [10/Oct/2000:13:55:36 -0700] "GET /a HTTP/1.0" 200 2326 "-" "curl/8" x y z"#;
        assert_eq!(
            rejection(line),
            r#"invalid timestamp "10.0.0.1" in field 1 (timestamp)"#
        );
    }

    #[test]
    fn invalid_values_are_rejected() {
        assert_eq!(
            rejection("2015-05-13T23:39:43Z lb 1.2.3.4:5 -"),
            "expected at least 12 space-separated fields for aws_elb, found 4"
        );
        let line = HTTP_LINE.replace("0.001048", "fast");
        assert_eq!(
            rejection(&line),
            r#"invalid number "fast" in field 6 (backend_processing_time)"#
        );
        let line = HTTP_LINE.replace(" 200 200 ", " 200 OK ");
        assert_eq!(
            rejection(&line),
            r#"invalid status "OK" in field 9 (backend_status_code)"#
        );
        let line = HTTP_LINE.replace(" 0 29 ", " 0 29k ");
        assert_eq!(
            rejection(&line),
            r#"invalid byte count "29k" in field 11 (sent_bytes)"#
        );
        let line = "2015-05-13T23:39:43Z lb 1.2.3.4:5 - 0 0 0 200 200 0 29 GET / HTTP/1.1";
        assert_eq!(
            rejection(line),
            r#"expected a quoted request line in field 12 (request), found "GET""#
        );
    }

    #[test]
    fn odd_input_does_not_panic() {
        for sample in [
            "",
            "\"",
            "2015-05-13T23:39:43Z",
            "2015-05-13T23:39:43Z a b c d e f - - h i \"- - -",
            "ü ü ü ü ü ü ü ü ü ü ü ü ü ü ü",
        ] {
            let _ = parse_record(sample);
        }
    }
}
