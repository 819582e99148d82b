//! Envoy's default text access log, and Istio's (`envoy`).
//!
//! Envoy's default format is
//!
//! ```text
//! [%START_TIME%] "%REQ(:METHOD)% %REQ(X-ENVOY-ORIGINAL-PATH?:PATH)% %PROTOCOL%"
//! %RESPONSE_CODE% %RESPONSE_FLAGS% %RESPONSE_CODE_DETAILS% %CONNECTION_TERMINATION_DETAILS%
//! "%UPSTREAM_TRANSPORT_FAILURE_REASON%" %BYTES_RECEIVED% %BYTES_SENT% %DURATION%
//! %RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)% "%REQ(X-FORWARDED-FOR)%" "%REQ(USER-AGENT)%"
//! "%REQ(X-REQUEST-ID)%" "%REQ(:AUTHORITY)%" "%UPSTREAM_HOST%"
//! ```
//!
//! Three variants are accepted as well. Older Envoy releases have no fields
//! between `%RESPONSE_FLAGS%` and `%BYTES_RECEIVED%`. Older Istio releases
//! write `"%DYNAMIC_METADATA(istio.mixer:status)%"
//! "%UPSTREAM_TRANSPORT_FAILURE_REASON%"` in place of the three details fields.
//! Istio appends `%UPSTREAM_CLUSTER% %UPSTREAM_LOCAL_ADDRESS%
//! %DOWNSTREAM_LOCAL_ADDRESS% %DOWNSTREAM_REMOTE_ADDRESS%
//! %REQUESTED_SERVER_NAME% %ROUTE_NAME%`.
//!
//! | field | column |
//! |---|---|
//! | `START_TIME` | `time` (the START of the request) |
//! | method, path, `PROTOCOL` | `method`, `path`, `query`, `http_version` |
//! | `RESPONSE_CODE` | `status`, unknown for the 0 written when no response was sent |
//! | `BYTES_RECEIVED`, `BYTES_SENT` (bodies only) | `request_bytes`, `response_bytes` |
//! | `DURATION` (ms) | `duration_ms` |
//! | `X-FORWARDED-FOR` | `forwarded_for` |
//! | `USER-AGENT` | `user_agent` |
//! | `X-REQUEST-ID` | `request_id` |
//! | `:AUTHORITY` | `host`, and its port as attribute `port` |
//! | `UPSTREAM_HOST` | `upstream` |
//! | `DOWNSTREAM_REMOTE_ADDRESS` (Istio) | `client_ip`, `client_port` |
//!
//! The other fields go to attributes named like the command operators in
//! lower case: `response_flags`, `response_code_details`,
//! `connection_termination_details`, `upstream_transport_failure_reason`,
//! `istio_mixer_status`, `upstream_service_time`, `upstream_cluster`,
//! `upstream_local_address`, `downstream_local_address`,
//! `requested_server_name` and `route_name`. Fields after the last known one
//! become `extra_1`, `extra_2`, ... The default format carries no client
//! address, so `client_ip` stays unknown outside Istio.
//!
//! Envoy does not escape quotes in the values it logs. A user agent with a
//! quote therefore breaks the field layout, and such a line is rejected
//! rather than read with its fields shifted.
//!
//! Lines may start with `ACCESS ` (Ambassador and Emissary). A line may also be
//! wrapped by the container runtime, as a Docker json-file or Kubernetes object
//! whose `log` or `message` string contains the access log line, or as a CRI log
//! line (`<time> stdout F <line>`). The wrapped line is parsed, and the
//! wrapper's other fields go to attributes (`stream`, `time`, and nested keys
//! joined with `.`). TCP proxy lines (request `- - -`, status 0) are valid
//! records but not HTTP requests, so they are skipped.

use crate::event::Event;
use crate::format::Format;
use crate::formats::json::{Json, flatten};
use crate::parse::{LineOutcome, ParseContext};
use crate::text::{
    Delimiter, Field, Fields, dash_as_none, parse_iso8601, quote_excerpt, set_client_endpoint,
    set_request, split_host_port,
};

/// Field count of an Istio line, to size the field list once.
const TYPICAL_FIELD_COUNT: usize = 24;

/// Names of the fields from `BYTES_RECEIVED` to the end of the default format.
const TAIL_FIELDS: [&str; 9] = [
    "bytes_received",
    "bytes_sent",
    "duration",
    "upstream_service_time",
    "x_forwarded_for",
    "user_agent",
    "request_id",
    "authority",
    "upstream_host",
];

/// Attribute names of the fields that Istio appends to the default format.
const ISTIO_FIELDS: [&str; 6] = [
    "upstream_cluster",
    "upstream_local_address",
    "downstream_local_address",
    "downstream_remote_address",
    "requested_server_name",
    "route_name",
];

/// Keys of a container runtime's JSON wrapper that can contain the access log line.
const WRAPPER_LINE_KEYS: [&str; 2] = ["log", "message"];

/// Parses one line of an Envoy or Istio text access log.
pub fn parse_line(line: &str, _ctx: &ParseContext<'_>) -> LineOutcome {
    parse_record(line)
}

/// Parses one line without the per-input settings, as format detection needs.
pub(crate) fn parse_record(line: &str) -> LineOutcome {
    let line = line.strip_prefix('\u{feff}').unwrap_or(line).trim();
    if line.starts_with('{') {
        return parse_json_wrapper(line);
    }
    if let Some((stream, inner)) = split_cri_line(line) {
        return with_wrapper_attributes(parse_text(inner), |event| {
            event
                .attributes
                .push(("stream".to_string(), stream.to_string()));
        });
    }
    parse_text(line)
}

/// Parses a line wrapped in a Docker json-file or Kubernetes JSON object.
fn parse_json_wrapper(record: &str) -> LineOutcome {
    let value: Json<'_> = match serde_json::from_str(record) {
        Ok(value) => value,
        Err(error) => return LineOutcome::Rejected(format!("invalid JSON: {error}")),
    };
    let Json::Object(members) = &value else {
        return LineOutcome::Rejected(format!("expected a JSON object, found {}", value.kind()));
    };
    let Some((line_key, inner)) = members.iter().find_map(|(key, value)| match value {
        Json::String(text) if WRAPPER_LINE_KEYS.contains(&key.as_ref()) => Some((key, text)),
        _ => None,
    }) else {
        return LineOutcome::Rejected(
            "expected an Envoy text line, or a JSON object whose `log` or `message` string contains one"
                .to_string(),
        );
    };

    let outcome = match parse_text(inner.trim()) {
        LineOutcome::Rejected(reason) => {
            return LineOutcome::Rejected(format!("in the JSON key `{line_key}`: {reason}"));
        }
        outcome => outcome,
    };
    with_wrapper_attributes(outcome, |event| {
        let mut leaves = Vec::with_capacity(members.len());
        flatten(None, members, &mut leaves);
        for (key, value) in leaves {
            if key == *line_key {
                continue;
            }
            if let Some(text) = value.as_text() {
                push_attribute(event, &key, &text);
            }
        }
    })
}

/// Splits a CRI log line `<RFC 3339 time> <stream> <F|P> <line>` into its stream and line.
fn split_cri_line(line: &str) -> Option<(&str, &str)> {
    let mut parts = line.splitn(4, ' ');
    let time = parts.next()?;
    let stream = parts.next()?;
    let tag = parts.next()?;
    let inner = parts.next()?;
    let is_cri = matches!(stream, "stdout" | "stderr")
        && matches!(tag, "F" | "P")
        && parse_iso8601(time).is_some();
    is_cri.then_some((stream, inner))
}

/// Applies `add` to the event of `outcome`, leaving skips and rejections as they are.
fn with_wrapper_attributes(outcome: LineOutcome, add: impl FnOnce(&mut Event)) -> LineOutcome {
    match outcome {
        LineOutcome::Event(mut event) => {
            add(&mut event);
            LineOutcome::Event(event)
        }
        other => other,
    }
}

/// Parses one access log line, with or without the `ACCESS ` prefix.
fn parse_text(line: &str) -> LineOutcome {
    let line = line.strip_prefix("ACCESS ").unwrap_or(line);
    let mut fields = Vec::with_capacity(TYPICAL_FIELD_COUNT);
    fields.extend(Fields::new(line));
    match build_event(&fields) {
        Ok(Some(event)) => LineOutcome::Event(Box::new(event)),
        Ok(None) => LineOutcome::Skipped("tcp_connection"),
        Err(reason) => LineOutcome::Rejected(reason),
    }
}

/// Builds the event, or returns `None` for a TCP proxy line.
fn build_event(fields: &[Field<'_>]) -> Result<Option<Event>, String> {
    let [time, request, status, flags, rest @ ..] = fields else {
        return Err(format!(
            "expected [START_TIME] \"request\" RESPONSE_CODE RESPONSE_FLAGS at the start of an Envoy line, found {} fields",
            fields.len()
        ));
    };
    if time.delimiter != Delimiter::Bracketed {
        return Err(format!(
            "expected the [START_TIME] field of an Envoy access log, found {}",
            quote_excerpt(time.text)
        ));
    }
    let time = parse_iso8601(time.text).ok_or_else(|| {
        format!(
            "invalid timestamp {} in field 1 (START_TIME)",
            quote_excerpt(time.text)
        )
    })?;
    expect_delimiter(request, Delimiter::Quoted, 1, "request")?;
    expect_delimiter(status, Delimiter::Bare, 2, "RESPONSE_CODE")?;
    let status = parse_count(status.text)
        .and_then(|code| i32::try_from(code).ok())
        .ok_or_else(|| invalid_field("status", status, 2, "RESPONSE_CODE"))?;
    expect_delimiter(flags, Delimiter::Bare, 3, "RESPONSE_FLAGS")?;
    if request.text == "- - -" && status == 0 {
        return Ok(None);
    }

    let mut event = Event::new(Format::Envoy.name(), time);
    set_request(&mut event, request.text);
    event.status = (status != 0).then_some(status);
    push_attribute(&mut event, "response_flags", flags.text);
    let tail_start = set_details(&mut event, rest)?;
    let tail = &rest[tail_start..];
    let first_tail_field = 4 + tail_start;
    if tail.len() < TAIL_FIELDS.len() {
        return Err(format!(
            "expected {} fields from BYTES_RECEIVED to UPSTREAM_HOST, found {}",
            TAIL_FIELDS.len(),
            tail.len()
        ));
    }
    set_tail(&mut event, &tail[..TAIL_FIELDS.len()], first_tail_field)?;
    set_trailing_fields(
        &mut event,
        &tail[TAIL_FIELDS.len()..],
        first_tail_field + TAIL_FIELDS.len(),
    )?;
    Ok(Some(event))
}

/// Stores the fields between `RESPONSE_FLAGS` and `BYTES_RECEIVED`, and
/// returns how many there are.
///
/// `BYTES_RECEIVED` is the first unquoted number, because no details field is one.
fn set_details(event: &mut Event, fields: &[Field<'_>]) -> Result<usize, String> {
    let count = fields
        .iter()
        .position(|field| field.delimiter == Delimiter::Bare && parse_count(field.text).is_some())
        .unwrap_or(fields.len());
    let is_quoted = |index: usize| fields[index].delimiter == Delimiter::Quoted;
    let names: &[&str] = match count {
        0 => &[],
        3 if !is_quoted(0) && !is_quoted(1) && is_quoted(2) => &[
            "response_code_details",
            "connection_termination_details",
            "upstream_transport_failure_reason",
        ],
        2 if is_quoted(0) && is_quoted(1) => {
            &["istio_mixer_status", "upstream_transport_failure_reason"]
        }
        _ => {
            return Err(format!(
                "expected BYTES_RECEIVED or RESPONSE_CODE_DETAILS in field 5, found {}",
                fields.first().map_or_else(
                    || "the end of the line".to_string(),
                    |f| quote_excerpt(f.text)
                )
            ));
        }
    };
    for (name, field) in names.iter().zip(fields) {
        push_attribute(event, name, field.text);
    }
    Ok(count)
}

/// Fills sizes, duration, client headers and upstream from the nine fields
/// that end the default format.
fn set_tail(event: &mut Event, fields: &[Field<'_>], first: usize) -> Result<(), String> {
    for (offset, field) in fields.iter().enumerate() {
        let expected = if offset < 4 {
            Delimiter::Bare
        } else {
            Delimiter::Quoted
        };
        expect_delimiter(field, expected, first + offset, TAIL_FIELDS[offset])?;
    }
    let count = |offset: usize| -> Result<Option<i64>, String> {
        let field = &fields[offset];
        match field.text {
            "-" => Ok(None),
            text => parse_count(text)
                .map(Some)
                .ok_or_else(|| invalid_field("number", field, first + offset, TAIL_FIELDS[offset])),
        }
    };

    event.request_bytes = count(0)?;
    event.response_bytes = count(1)?;
    event.duration_ms = count(2)?.map(|millis| millis as f64);
    push_attribute(event, "upstream_service_time", fields[3].text);
    event.forwarded_for = dash_as_none(fields[4].text).map(str::to_string);
    event.user_agent = dash_as_none(fields[5].text).map(str::to_string);
    event.request_id = dash_as_none(fields[6].text).map(str::to_string);
    if let Some(authority) = dash_as_none(fields[7].text).filter(|text| !text.is_empty()) {
        let (host, port) = split_host_port(authority);
        event.host = Some(host.to_string());
        if let Some(port) = port {
            event
                .attributes
                .push(("port".to_string(), port.to_string()));
        }
    }
    event.upstream = dash_as_none(fields[8].text).map(str::to_string);
    Ok(())
}

/// Stores Istio's appended fields, or numbered extras for any other layout.
fn set_trailing_fields(
    event: &mut Event,
    fields: &[Field<'_>],
    first: usize,
) -> Result<(), String> {
    if let Some(field) = fields
        .iter()
        .position(|field| field.delimiter == Delimiter::Quoted)
    {
        return Err(format!(
            "unexpected quoted field {} {} after UPSTREAM_HOST, as when a logged value contains a quote",
            first + field + 1,
            quote_excerpt(fields[field].text)
        ));
    }
    if fields.len() == ISTIO_FIELDS.len() {
        for (name, field) in ISTIO_FIELDS.iter().zip(fields) {
            if *name == "downstream_remote_address" {
                set_client_endpoint(event, field.text);
            } else {
                push_attribute(event, name, field.text);
            }
        }
        return Ok(());
    }
    for (index, field) in fields.iter().enumerate() {
        push_attribute(event, &format!("extra_{}", index + 1), field.text);
    }
    Ok(())
}

fn expect_delimiter(
    field: &Field<'_>,
    expected: Delimiter,
    index: usize,
    name: &str,
) -> Result<(), String> {
    if field.delimiter == expected && field.closed {
        return Ok(());
    }
    let kind = match expected {
        Delimiter::Quoted => "a quoted",
        Delimiter::Bare => "an unquoted",
        Delimiter::Bracketed => "a bracketed",
    };
    Err(format!(
        "expected {kind} value in field {} ({name}), found {}",
        index + 1,
        quote_excerpt(field.text)
    ))
}

/// Parses a non-negative integer.
fn parse_count(text: &str) -> Option<i64> {
    if text.is_empty() || text.len() > 18 || !text.bytes().all(|byte| byte.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

fn invalid_field(value_kind: &str, field: &Field<'_>, index: usize, name: &str) -> String {
    format!(
        "invalid {value_kind} {} in field {} ({name})",
        quote_excerpt(field.text),
        index + 1
    )
}

fn push_attribute(event: &mut Event, name: &str, value: &str) {
    if let Some(value) = dash_as_none(value).filter(|value| !value.is_empty()) {
        event.attributes.push((name.to_string(), value.to_string()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::formats::test_support::{expect_event, expect_rejection};

    /// A line of the current default format.
    const DEFAULT_LINE: &str = concat!(
        r#"[2023-05-04T10:11:12.345Z] "POST /v1/orders?dry_run=1 HTTP/1.1" 201 - via_upstream - "-" "#,
        r#"120 45 12 10 "203.0.113.9" "curl/8.0.1" "6f1c2d3e-0000-4000-8000-00000000abcd" "#,
        r#""api.example.com:8443" "10.0.0.5:8080""#
    );

    /// A line of the default format of older Envoy releases, without the details fields.
    const LEGACY_LINE: &str = concat!(
        r#"[2019-04-08T16:16:55.931Z] "GET /service/1 HTTP/1.1" 200 - 0 89 5 4 "-" "curl/7.54.0" "#,
        r#""c219f6da-0000-4000-8000-00000000beef" "localhost:8000" "172.27.0.3:80""#
    );

    /// A line of Istio's default proxy format.
    const ISTIO_LINE: &str = concat!(
        r#"[2022-08-22T13:08:23.188Z] "GET /reviews/0 HTTP/1.1" 200 - via_upstream - "-" 0 442 12 11 "#,
        r#""-" "curl/7.79.1" "00bcf1d7-0000-4000-8000-00000000c0de" "reviews:9080" "10.124.1.5:9080" "#,
        r#"outbound|9080||reviews.default.svc.cluster.local 10.124.2.6:50960 10.0.18.132:9080 "#,
        r#"10.124.2.6:52930 - default"#
    );

    fn parse_event(line: &str) -> Event {
        expect_event(line, parse_record(line))
    }

    fn rejection(line: &str) -> String {
        expect_rejection(line, parse_record(line))
    }

    fn attributes(event: &Event) -> Vec<(&str, &str)> {
        event
            .attributes
            .iter()
            .map(|(key, value)| (key.as_str(), value.as_str()))
            .collect()
    }

    #[test]
    fn default_line_maps_columns() {
        let event = parse_event(DEFAULT_LINE);
        assert_eq!(event.source, "envoy");
        assert_eq!(event.time, 1_683_195_072_345_000);
        assert_eq!(event.method.as_deref(), Some("POST"));
        assert_eq!(event.path.as_deref(), Some("/v1/orders"));
        assert_eq!(event.query.as_deref(), Some("dry_run=1"));
        assert_eq!(event.http_version.as_deref(), Some("HTTP/1.1"));
        assert_eq!(event.status, Some(201));
        assert_eq!(event.request_bytes, Some(120));
        assert_eq!(event.response_bytes, Some(45));
        assert_eq!(event.duration_ms, Some(12.0));
        assert_eq!(event.forwarded_for.as_deref(), Some("203.0.113.9"));
        assert_eq!(event.user_agent.as_deref(), Some("curl/8.0.1"));
        assert_eq!(
            event.request_id.as_deref(),
            Some("6f1c2d3e-0000-4000-8000-00000000abcd")
        );
        assert_eq!(event.host.as_deref(), Some("api.example.com"));
        assert_eq!(event.upstream.as_deref(), Some("10.0.0.5:8080"));
        assert_eq!(event.client_ip, None);
        assert!(!event.malformed);
        assert_eq!(
            attributes(&event),
            [
                ("response_code_details", "via_upstream"),
                ("upstream_service_time", "10"),
                ("port", "8443"),
            ]
        );
    }

    #[test]
    fn legacy_line_maps_columns() {
        let event = parse_event(LEGACY_LINE);
        assert_eq!(event.time, 1_554_740_215_931_000);
        assert_eq!(event.path.as_deref(), Some("/service/1"));
        assert_eq!(event.status, Some(200));
        assert_eq!(event.request_bytes, Some(0));
        assert_eq!(event.response_bytes, Some(89));
        assert_eq!(event.duration_ms, Some(5.0));
        assert_eq!(event.forwarded_for, None);
        assert_eq!(event.host.as_deref(), Some("localhost"));
        assert_eq!(event.upstream.as_deref(), Some("172.27.0.3:80"));
        assert_eq!(
            attributes(&event),
            [("upstream_service_time", "4"), ("port", "8000")]
        );
    }

    #[test]
    fn istio_line_names_appended_fields() {
        let event = parse_event(ISTIO_LINE);
        assert_eq!(event.client_ip.as_deref(), Some("10.124.2.6"));
        assert_eq!(event.client_port, Some(52930));
        assert_eq!(event.host.as_deref(), Some("reviews"));
        assert_eq!(event.upstream.as_deref(), Some("10.124.1.5:9080"));
        assert_eq!(
            attributes(&event),
            [
                ("response_code_details", "via_upstream"),
                ("upstream_service_time", "11"),
                ("port", "9080"),
                (
                    "upstream_cluster",
                    "outbound|9080||reviews.default.svc.cluster.local"
                ),
                ("upstream_local_address", "10.124.2.6:50960"),
                ("downstream_local_address", "10.0.18.132:9080"),
                ("route_name", "default"),
            ]
        );
    }

    #[test]
    fn istio_ipv6_client() {
        let line = ISTIO_LINE.replace("10.124.2.6:52930", "[2a02:cf40::4e36]:5000");
        let event = parse_event(&line);
        assert_eq!(event.client_ip.as_deref(), Some("2a02:cf40::4e36"));
        assert_eq!(event.client_port, Some(5000));
    }

    #[test]
    fn istio_mixer_layout() {
        let line = ISTIO_LINE.replace(
            r#"200 - via_upstream - "-" 0"#,
            r#"503 UF "-" "connection failure" 0"#,
        );
        let event = parse_event(&line);
        assert_eq!(event.status, Some(503));
        assert_eq!(event.attribute("response_flags"), Some("UF"));
        assert_eq!(
            event.attribute("upstream_transport_failure_reason"),
            Some("connection failure")
        );
        assert_eq!(event.response_bytes, Some(442));
        assert_eq!(event.client_ip.as_deref(), Some("10.124.2.6"));
    }

    #[test]
    fn tcp_proxy_line_is_skipped() {
        for line in [
            r#"[2019-04-08T16:50:12.533Z] "- - -" 0 - 87 254 4 - "-" "-" "-" "-" "172.27.0.2:80""#,
            r#"ACCESS [2019-04-06T06:20:05.972Z] "- - -" 0 UF,URX 0 0 0 - "-" "-" "-" "-" "127.0.0.1:9200""#,
        ] {
            assert!(
                matches!(parse_record(line), LineOutcome::Skipped("tcp_connection")),
                "{line}"
            );
        }
    }

    #[test]
    fn access_prefix_is_removed() {
        let event = parse_event(&format!("ACCESS {LEGACY_LINE}"));
        assert_eq!(event.path.as_deref(), Some("/service/1"));
        assert_eq!(event.status, Some(200));
    }

    #[test]
    fn docker_wrapper_is_unwrapped() {
        let inner = serde_json::to_string(&format!("{DEFAULT_LINE}\n")).expect("JSON string");
        let line = format!(
            r#"{{"log":{inner},"stream":"stdout","time":"2023-05-04T10:11:12.400123456Z"}}"#
        );
        let event = parse_event(&line);
        assert_eq!(event.time, 1_683_195_072_345_000);
        assert_eq!(event.status, Some(201));
        assert_eq!(event.user_agent.as_deref(), Some("curl/8.0.1"));
        assert_eq!(event.upstream.as_deref(), Some("10.0.0.5:8080"));
        assert_eq!(event.attribute("stream"), Some("stdout"));
        assert_eq!(
            event.attribute("time"),
            Some("2023-05-04T10:11:12.400123456Z")
        );
    }

    #[test]
    fn kubernetes_wrapper_is_unwrapped() {
        let inner = serde_json::to_string(&format!("ACCESS {LEGACY_LINE}")).expect("JSON string");
        let line = format!(
            r#"{{"message":{inner},"stream":"stdout","kubernetes":{{"pod":{{"name":"ambassador-1"}}}}}}"#
        );
        let event = parse_event(&line);
        assert_eq!(event.status, Some(200));
        assert_eq!(
            event.request_id.as_deref(),
            Some("c219f6da-0000-4000-8000-00000000beef")
        );
        assert_eq!(event.attribute("kubernetes.pod.name"), Some("ambassador-1"));
        assert_eq!(event.attribute("message"), None);
    }

    #[test]
    fn wrapped_tcp_line_is_skipped() {
        let line = r#"{"log":"[2019-04-06T06:20:05.972Z] \"- - -\" 0 UF,URX 0 0 0 - \"-\" \"-\" \"-\" \"-\" \"127.0.0.1:9200\"\n","stream":"stdout"}"#;
        assert!(matches!(
            parse_record(line),
            LineOutcome::Skipped("tcp_connection")
        ));
    }

    #[test]
    fn cri_line_is_unwrapped() {
        let line = format!("2023-05-04T10:11:12.400123456Z stdout F {DEFAULT_LINE}");
        let event = parse_event(&line);
        assert_eq!(event.status, Some(201));
        assert_eq!(event.attribute("stream"), Some("stdout"));
    }

    #[test]
    fn codec_error_is_malformed_row() {
        let line = concat!(
            r#"[2022-09-01T09:36:33.553Z] "- - HTTP/1.1" 400 DPE http1.codec_error - "-" 0 11 46 - "#,
            r#""-" "-" "-" "-" "-""#
        );
        let event = parse_event(line);
        assert!(event.malformed);
        assert_eq!(event.method, None);
        assert_eq!(event.status, Some(400));
        assert_eq!(event.attribute("response_flags"), Some("DPE"));
        assert_eq!(
            event.attribute("response_code_details"),
            Some("http1.codec_error")
        );
        assert_eq!(event.host, None);
        assert_eq!(event.upstream, None);
    }

    #[test]
    fn status_zero_is_unknown() {
        let line = DEFAULT_LINE.replace("201 - via_upstream", "0 DC downstream_remote_disconnect");
        let event = parse_event(&line);
        assert_eq!(event.status, None);
        assert_eq!(event.attribute("response_flags"), Some("DC"));
    }

    #[test]
    fn quote_in_user_agent_is_rejected_not_shifted() {
        let line = DEFAULT_LINE.replace("curl/8.0.1", r#"Bot "quoted" x"#);
        assert_eq!(
            rejection(&line),
            r#"expected a quoted value in field 14 (request_id), found "quoted\"""#
        );
        let line = DEFAULT_LINE.replace("curl/8.0.1", r#"a" "b"#);
        assert_eq!(
            rejection(&line),
            r#"unexpected quoted field 17 "10.0.0.5:8080" after UPSTREAM_HOST, as when a logged value contains a quote"#
        );
    }

    #[test]
    fn unknown_trailing_fields_become_extras() {
        let event = parse_event(&format!("{LEGACY_LINE} custom-1 -"));
        assert_eq!(event.attribute("extra_1"), Some("custom-1"));
        assert_eq!(event.attribute("extra_2"), None);
    }

    #[test]
    fn rejects_other_formats() {
        assert_eq!(
            rejection(
                r#"127.0.0.1 - frank [10/Oct/2000:13:55:36 -0700] "GET /apache_pb.gif HTTP/1.0" 200 2326"#
            ),
            r#"expected the [START_TIME] field of an Envoy access log, found "127.0.0.1""#
        );
        assert_eq!(
            rejection(
                r#"Dec 10 12:01:46 voyager haproxy[19312]: 127.0.0.1:35982 [10/Dec/2018:12:01:46.395] fe be/<NOSRV> 0/-1/-1/-1/0 503 213 - - SC-- 1/1/0/0/0 0/0 "GET / HTTP/1.1""#
            ),
            r#"expected the [START_TIME] field of an Envoy access log, found "Dec""#
        );
        assert_eq!(
            rejection(
                r#"{"authority":"reviews:9080","bytes_received":0,"method":"GET","path":"/reviews/0","response_code":200,"start_time":"2022-09-08T12:51:05.656Z"}"#
            ),
            "expected an Envoy text line, or a JSON object whose `log` or `message` string contains one"
        );
        assert_eq!(
            rejection(
                r#"{"log":"127.0.0.1 - - [10/Oct/2000:13:55:36 -0700] \"GET / HTTP/1.0\" 200 1\n","stream":"stdout"}"#
            ),
            r#"in the JSON key `log`: expected the [START_TIME] field of an Envoy access log, found "127.0.0.1""#
        );
    }

    #[test]
    fn rejects_broken_layouts() {
        assert_eq!(
            rejection(r#"[2023-05-04T10:11:12.345Z] "GET / HTTP/1.1" 200"#),
            r#"expected [START_TIME] "request" RESPONSE_CODE RESPONSE_FLAGS at the start of an Envoy line, found 3 fields"#
        );
        assert_eq!(
            rejection(&DEFAULT_LINE.replace("2023-05-04T10", "2023-05-04X10")),
            r#"invalid timestamp "2023-05-04X10:11:12.345Z" in field 1 (START_TIME)"#
        );
        assert_eq!(
            rejection(&DEFAULT_LINE.replace(" 201 ", " OK ")),
            r#"invalid status "OK" in field 3 (RESPONSE_CODE)"#
        );
        assert_eq!(
            rejection(&LEGACY_LINE.replace(r#" "172.27.0.3:80""#, "")),
            "expected 9 fields from BYTES_RECEIVED to UPSTREAM_HOST, found 8"
        );
        assert_eq!(
            rejection(&LEGACY_LINE.replace(" 0 89 ", " 0 8k9 ")),
            r#"invalid number "8k9" in field 6 (bytes_sent)"#
        );
    }

    #[test]
    fn odd_input_does_not_panic() {
        let samples = [
            "",
            "{",
            "{}",
            r#"{"log":1}"#,
            r#"{"log":""}"#,
            "ACCESS ",
            "[2023-05-04T10:11:12.345Z]",
            r#"[2023-05-04T10:11:12.345Z] "" 0 -"#,
            r#"[2023-05-04T10:11:12.345Z] "GET / HTTP/1.1" 200 - "a" "b""#,
            r#"[2023-05-04T10:11:12.345Z] "GET / HTTP/1.1" 200 - x y "z"#,
            "2023-05-04T10:11:12Z stdout F",
            "2023-05-04T10:11:12Z stdout F ",
        ];
        for sample in samples {
            let _ = parse_record(sample);
        }
    }
}
