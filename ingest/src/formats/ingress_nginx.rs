//! The default access log of the Kubernetes ingress-nginx controller (`ingress_nginx`).
//!
//! The controller's `log-format-upstream` default is the combined format
//! followed by request and upstream fields:
//!
//! ```text
//! $remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent
//! "$http_referer" "$http_user_agent" $request_length $request_time
//! [$proxy_upstream_name] [$proxy_alternative_upstream_name] $upstream_addr
//! $upstream_response_length $upstream_response_time $upstream_status $req_id
//! ```
//!
//! Controllers before the alternative (canary) backends lack
//! `[$proxy_alternative_upstream_name]`, and older ones write
//! `$remote_addr - [$the_real_ip] - $remote_user`. Both layouts are accepted.
//!
//! | field | column |
//! |---|---|
//! | `$remote_addr` | `client_ip` |
//! | `$time_local` | `time` (the END: nginx writes it when the request finishes) |
//! | `$request` | `method`, `path`, `query`, `http_version` |
//! | `$status` | `status` |
//! | `$body_bytes_sent` | `response_bytes` |
//! | `$http_referer`, `$http_user_agent` | `referer`, `user_agent` |
//! | `$request_length` | `request_bytes` |
//! | `$request_time` (seconds) | `duration_ms` |
//! | `$upstream_addr` | `upstream`, as logged |
//! | `$upstream_status` | `upstream_status`: the last status of the list |
//! | `$req_id` | `request_id` |
//!
//! `$remote_user` goes to attribute `remote_user`, and `$proxy_upstream_name`,
//! `$proxy_alternative_upstream_name`, `$upstream_response_length` and
//! `$upstream_response_time` to attributes named after the variables.
//!
//! When nginx tried several upstream servers, the upstream variables are lists:
//! `, ` separates the servers of one group and ` : ` the groups of an internal
//! redirect (`10.0.0.1:80, 10.0.0.2:80 : 10.0.0.9:80`), so one value can span
//! several space-separated tokens. Such a list of statuses is also kept as
//! attribute `upstream_status`, since the column holds only the last one.
//!
//! The controller also writes TCP and UDP stream sessions
//! (`[$remote_addr] [$time_local] $protocol $status ...`) to the same log.
//! They are skipped as `stream_session`.

use crate::event::Event;
use crate::format::Format;
use crate::parse::{LineOutcome, ParseContext};
use crate::text::{
    Delimiter, Field, Fields, dash_as_none, normalise_ip, parse_clf_time, parse_seconds_as_micros,
    quote_excerpt, set_client_address, set_request, unescape_text,
};

/// Field count of the current default layout with single upstream values.
const TYPICAL_FIELD_COUNT: usize = 18;

/// Names of the fields from the request line to `$request_time`, for reject reasons.
const MIDDLE_FIELDS: [&str; 7] = [
    "request",
    "status",
    "body_bytes_sent",
    "http_referer",
    "http_user_agent",
    "request_length",
    "request_time",
];

/// Parses one line of an ingress-nginx access log.
pub fn parse_line(line: &str, _ctx: &ParseContext<'_>) -> LineOutcome {
    parse_record(line)
}

/// Parses one line without the per-input settings, as format detection needs.
pub(crate) fn parse_record(line: &str) -> LineOutcome {
    let line = line.strip_prefix('\u{feff}').unwrap_or(line);
    let mut fields = Vec::with_capacity(TYPICAL_FIELD_COUNT);
    fields.extend(Fields::new(line));
    if is_stream_session(&fields) {
        return LineOutcome::Skipped("stream_session");
    }
    match build_event(line, &fields) {
        Ok(event) => LineOutcome::Event(Box::new(event)),
        Err(reason) => LineOutcome::Rejected(reason),
    }
}

/// Returns whether the fields are a stream log line: `[address] [time] TCP|UDP ...`.
fn is_stream_session(fields: &[Field<'_>]) -> bool {
    let [address, time, protocol, ..] = fields else {
        return false;
    };
    address.delimiter == Delimiter::Bracketed
        && normalise_ip(address.text).is_some()
        && time.delimiter == Delimiter::Bracketed
        && parse_clf_time(time.text).is_some()
        && matches!(protocol.text, "TCP" | "UDP")
}

fn build_event(line: &str, fields: &[Field<'_>]) -> Result<Event, String> {
    let time_index = fields
        .iter()
        .position(|field| field.delimiter == Delimiter::Bracketed && field.text.contains('/'))
        .ok_or("missing the [$time_local] field of an ingress-nginx access log")?;
    let time = parse_clf_time(fields[time_index].text).ok_or_else(|| {
        format!(
            "invalid timestamp {} in field {} ($time_local)",
            quote_excerpt(fields[time_index].text),
            time_index + 1
        )
    })?;

    let mut event = Event::new(Format::IngressNginx.name(), time);
    set_remote(&mut event, &fields[..time_index])?;
    let request = time_index + 1;
    let middle = fields
        .get(request..request + MIDDLE_FIELDS.len())
        .and_then(|middle| <&[Field<'_>; MIDDLE_FIELDS.len()]>::try_from(middle).ok())
        .ok_or(
            "expected the combined format, $request_length and $request_time after [$time_local]",
        )?;
    set_middle(&mut event, middle, request)?;
    set_upstream(&mut event, line, &fields[request + MIDDLE_FIELDS.len()..])?;
    Ok(event)
}

/// Fills the client and remote user from `addr - user` or `addr - [real_ip] - user`.
fn set_remote(event: &mut Event, fields: &[Field<'_>]) -> Result<(), String> {
    let user = match fields {
        [address, dash, user] if dash.text == "-" => {
            set_client_address(event, address.text);
            user
        }
        [address, dash, real_ip, dash_after, user]
            if dash.text == "-"
                && dash_after.text == "-"
                && real_ip.delimiter == Delimiter::Bracketed =>
        {
            set_client_address(event, address.text);
            if real_ip.text != address.text {
                push_attribute(event, "the_real_ip", real_ip.text);
            }
            user
        }
        _ => {
            return Err(format!(
                "expected `$remote_addr - $remote_user` before [$time_local], found {} fields",
                fields.len()
            ));
        }
    };
    push_attribute(event, "remote_user", &unescape_text(user.text));
    Ok(())
}

/// Fills the request, status, sizes, referer, user agent and duration.
///
/// `first` is the index of the request field in the line, for reject reasons.
fn set_middle(
    event: &mut Event,
    fields: &[Field<'_>; MIDDLE_FIELDS.len()],
    first: usize,
) -> Result<(), String> {
    let [
        request,
        status,
        bytes_sent,
        referer,
        user_agent,
        request_length,
        request_time,
    ] = fields;
    let invalid = |value_kind: &str, offset: usize| {
        format!(
            "invalid {value_kind} {} in field {} (${})",
            quote_excerpt(fields[offset].text),
            first + offset + 1,
            MIDDLE_FIELDS[offset]
        )
    };
    for (offset, field) in fields.iter().enumerate() {
        let quoted = matches!(offset, 0 | 3 | 4);
        if quoted != (field.delimiter == Delimiter::Quoted) {
            return Err(format!(
                "expected {} value in field {} (${}), found {}",
                if quoted { "a quoted" } else { "an unquoted" },
                first + offset + 1,
                MIDDLE_FIELDS[offset],
                quote_excerpt(field.text)
            ));
        }
    }

    set_request(event, request.text);
    let status_code = parse_count(status.text).and_then(|code| i32::try_from(code).ok());
    event.status = Some(status_code.ok_or_else(|| invalid("status", 1))?);
    event.response_bytes =
        parse_optional_count(bytes_sent).ok_or_else(|| invalid("byte count", 2))?;
    event.referer = dash_as_none(&unescape_text(referer.text)).map(str::to_string);
    event.user_agent = dash_as_none(&unescape_text(user_agent.text)).map(str::to_string);
    event.request_bytes =
        parse_optional_count(request_length).ok_or_else(|| invalid("byte count", 5))?;
    event.duration_ms = match request_time.text {
        "-" => None,
        text => Some(
            parse_seconds_as_micros(text).ok_or_else(|| invalid("duration", 6))? as f64 / 1000.0,
        ),
    };
    Ok(())
}

/// Fills the upstream columns and attributes from the fields after `$request_time`.
fn set_upstream(event: &mut Event, line: &str, fields: &[Field<'_>]) -> Result<(), String> {
    let names = fields
        .iter()
        .take(2)
        .take_while(|field| field.delimiter == Delimiter::Bracketed)
        .count();
    if names == 0 {
        return Err(format!(
            "expected [$proxy_upstream_name] after $request_time, found {}",
            fields.first().map_or_else(
                || "the end of the line".to_string(),
                |f| quote_excerpt(f.text)
            )
        ));
    }
    push_attribute(event, "proxy_upstream_name", fields[0].text);
    if names == 2 {
        push_attribute(event, "proxy_alternative_upstream_name", fields[1].text);
    }

    let values = group_lists(line, &fields[names..]);
    let [addresses, lengths, times, statuses, request_id] = values[..] else {
        return Err(format!(
            "expected $upstream_addr, $upstream_response_length, $upstream_response_time, \
             $upstream_status and $req_id after the upstream name, found {} values",
            values.len()
        ));
    };

    event.upstream = dash_as_none(addresses).map(str::to_string);
    push_attribute(event, "upstream_response_length", lengths);
    push_attribute(event, "upstream_response_time", times);
    set_upstream_status(event, statuses)?;
    event.request_id = dash_as_none(request_id).map(str::to_string);
    Ok(())
}

/// Groups fields into values, joining the tokens of a list such as `a:80, b:80 : c:80`.
fn group_lists<'a>(line: &'a str, fields: &[Field<'a>]) -> Vec<&'a str> {
    let mut values = Vec::with_capacity(5);
    let mut index = 0;
    while index < fields.len() {
        let first = index;
        loop {
            let continues_after_comma =
                fields[index].text.ends_with(',') && index + 1 < fields.len();
            let continues_after_colon = index + 2 < fields.len() && fields[index + 1].text == ":";
            if continues_after_comma {
                index += 1;
            } else if continues_after_colon {
                index += 2;
            } else {
                break;
            }
        }
        let text = if first == index {
            fields[first].text
        } else {
            &line[fields[first].start..fields[index].end]
        };
        values.push(text);
        index += 1;
    }
    values
}

/// Sets `upstream_status` to the last status of the list, keeping a list of several as an attribute.
fn set_upstream_status(event: &mut Event, statuses: &str) -> Result<(), String> {
    let last = statuses
        .rsplit([',', ':'])
        .next()
        .unwrap_or_default()
        .trim();
    event.upstream_status = match last {
        "-" => None,
        text => Some(
            parse_count(text)
                .and_then(|status| i32::try_from(status).ok())
                .ok_or_else(|| format!("invalid $upstream_status {}", quote_excerpt(statuses)))?,
        ),
    };
    if statuses.contains([',', ':']) {
        push_attribute(event, "upstream_status", statuses);
    }
    Ok(())
}

/// Parses a non-negative integer.
fn parse_count(text: &str) -> Option<i64> {
    if text.is_empty() || !text.bytes().all(|byte| byte.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

/// Parses a non-negative integer with `-` as unknown, or returns `None` when the field is neither.
fn parse_optional_count(field: &Field<'_>) -> Option<Option<i64>> {
    match field.text {
        "-" => Some(None),
        text => parse_count(text).map(Some),
    }
}

fn push_attribute(event: &mut Event, name: &str, value: &str) {
    if let Some(value) = dash_as_none(value).filter(|value| !value.is_empty()) {
        event.attributes.push((name.to_string(), value.to_string()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::detect_format;
    use crate::formats::test_support::{expect_event, expect_rejection};

    /// A line of the current default layout, with one upstream server.
    const LINE: &str = concat!(
        r#"192.168.65.3 - - [24/Jan/2021:19:25:33 +0000] "GET /api/orders?id=7 HTTP/1.1" 200 612 "#,
        r#""https://shop.example/" "curl/7.64.1" 95 0.003 [default-orders-80] [] "#,
        r#"10.1.0.7:8080 612 0.002 200 5a2b3c4d5e6f708192a3b4c5d6e7f809"#
    );

    /// 2021-01-24T19:25:33Z, the time of [`LINE`].
    const JAN_24_2021: i64 = 1_611_516_333_000_000;

    /// Replaces the upstream part of [`LINE`], from the upstream name to the request id.
    fn with_upstream(upstream: &str) -> String {
        let start = LINE
            .find("[default-orders-80]")
            .expect("upstream name in LINE");
        format!("{}{upstream}", &LINE[..start])
    }

    fn parse_event(line: &str) -> Event {
        expect_event(line, parse_record(line))
    }

    fn rejection(line: &str) -> String {
        expect_rejection(line, parse_record(line))
    }

    #[test]
    fn default_line_maps_columns() {
        let event = parse_event(LINE);
        assert_eq!(event.source, "ingress_nginx");
        assert_eq!(event.time, JAN_24_2021);
        assert_eq!(event.client_ip.as_deref(), Some("192.168.65.3"));
        assert_eq!(event.method.as_deref(), Some("GET"));
        assert_eq!(event.path.as_deref(), Some("/api/orders"));
        assert_eq!(event.query.as_deref(), Some("id=7"));
        assert_eq!(event.http_version.as_deref(), Some("HTTP/1.1"));
        assert_eq!(event.status, Some(200));
        assert_eq!(event.response_bytes, Some(612));
        assert_eq!(event.referer.as_deref(), Some("https://shop.example/"));
        assert_eq!(event.user_agent.as_deref(), Some("curl/7.64.1"));
        assert_eq!(event.request_bytes, Some(95));
        assert_eq!(event.duration_ms, Some(3.0));
        assert_eq!(event.upstream.as_deref(), Some("10.1.0.7:8080"));
        assert_eq!(event.upstream_status, Some(200));
        assert_eq!(
            event.request_id.as_deref(),
            Some("5a2b3c4d5e6f708192a3b4c5d6e7f809")
        );
        assert!(!event.malformed);
    }

    #[test]
    fn default_line_keeps_upstream_attributes() {
        let event = parse_event(LINE);
        let expected = [
            ("proxy_upstream_name", "default-orders-80"),
            ("upstream_response_length", "612"),
            ("upstream_response_time", "0.002"),
        ];
        let actual: Vec<(&str, &str)> = event
            .attributes
            .iter()
            .map(|(key, value)| (key.as_str(), value.as_str()))
            .collect();
        assert_eq!(actual, expected);
    }

    #[test]
    fn retried_upstreams_are_lists() {
        let event = parse_event(&with_upstream(
            "[default-orders-80] [] 10.1.0.7:8080, 10.1.0.8:8080 0, 612 0.001, 0.002 502, 200 abc123",
        ));
        assert_eq!(
            event.upstream.as_deref(),
            Some("10.1.0.7:8080, 10.1.0.8:8080")
        );
        assert_eq!(event.upstream_status, Some(200));
        assert_eq!(event.attribute("upstream_status"), Some("502, 200"));
        assert_eq!(event.attribute("upstream_response_length"), Some("0, 612"));
        assert_eq!(
            event.attribute("upstream_response_time"),
            Some("0.001, 0.002")
        );
        assert_eq!(event.request_id.as_deref(), Some("abc123"));
    }

    #[test]
    fn internal_redirect_upstreams_are_lists() {
        let event = parse_event(&with_upstream(concat!(
            "[default-orders-80] [] 10.1.0.7:8080, 10.1.0.8:8080 : 10.2.0.1:80 ",
            "0, 0 : 15 0.001, 0.000 : 0.004 502, 502 : 404 abc123"
        )));
        assert_eq!(
            event.upstream.as_deref(),
            Some("10.1.0.7:8080, 10.1.0.8:8080 : 10.2.0.1:80")
        );
        assert_eq!(event.upstream_status, Some(404));
        assert_eq!(event.attribute("upstream_status"), Some("502, 502 : 404"));
        assert_eq!(
            event.attribute("upstream_response_time"),
            Some("0.001, 0.000 : 0.004")
        );
        assert_eq!(event.request_id.as_deref(), Some("abc123"));
    }

    #[test]
    fn missing_upstream_is_unknown() {
        let event = parse_event(&with_upstream("[default-orders-80] [] - - - - abc123"));
        assert_eq!(event.upstream, None);
        assert_eq!(event.upstream_status, None);
        assert_eq!(event.attribute("upstream_response_time"), None);
        assert_eq!(event.request_id.as_deref(), Some("abc123"));
    }

    #[test]
    fn canary_upstream_name_is_kept() {
        let event = parse_event(&with_upstream(
            "[default-orders-80] [default-orders-canary-80] 10.1.0.9:8080 612 0.002 200 abc123",
        ));
        assert_eq!(
            event.attribute("proxy_alternative_upstream_name"),
            Some("default-orders-canary-80")
        );
        assert_eq!(event.upstream.as_deref(), Some("10.1.0.9:8080"));
    }

    #[test]
    fn layout_without_alternative_name() {
        let event = parse_event(&with_upstream(
            "[default-orders-80] 10.1.0.7:8080 612 0.002 201 abc123",
        ));
        assert_eq!(event.upstream.as_deref(), Some("10.1.0.7:8080"));
        assert_eq!(event.upstream_status, Some(201));
        assert_eq!(event.request_id.as_deref(), Some("abc123"));
        assert_eq!(event.attribute("proxy_alternative_upstream_name"), None);
    }

    #[test]
    fn layout_with_real_ip() {
        let line = LINE.replacen(
            "192.168.65.3 - -",
            "192.168.65.3 - [203.0.113.5] - alice",
            1,
        );
        let event = parse_event(&line);
        assert_eq!(event.client_ip.as_deref(), Some("192.168.65.3"));
        assert_eq!(event.attribute("the_real_ip"), Some("203.0.113.5"));
        assert_eq!(event.attribute("remote_user"), Some("alice"));
        assert_eq!(event.status, Some(200));
    }

    #[test]
    fn remote_user_is_attribute() {
        let event = parse_event(&LINE.replacen("- -", "- bob", 1));
        assert_eq!(event.attribute("remote_user"), Some("bob"));
        assert_eq!(event.consumer, None);
    }

    #[test]
    fn ipv6_client_and_upstream() {
        let line = LINE.replacen("192.168.65.3", "2001:db8::7", 1).replacen(
            "10.1.0.7:8080",
            "[fd00::1]:8080",
            1,
        );
        let event = parse_event(&line);
        assert_eq!(event.client_ip.as_deref(), Some("2001:db8::7"));
        assert_eq!(event.upstream.as_deref(), Some("[fd00::1]:8080"));
    }

    #[test]
    fn escaped_user_agent_is_unescaped() {
        let event = parse_event(&LINE.replacen("curl/7.64.1", r"say \x22hi\x22", 1));
        assert_eq!(event.user_agent.as_deref(), Some(r#"say "hi""#));
        assert_eq!(event.request_bytes, Some(95));
    }

    #[test]
    fn tls_handshake_is_malformed_row() {
        let line = LINE.replacen("GET /api/orders?id=7 HTTP/1.1", r"\x16\x03\x01\x00\xA5", 1);
        let event = parse_event(&line);
        assert!(event.malformed);
        assert_eq!(event.method, None);
        assert_eq!(event.status, Some(200));
    }

    #[test]
    fn stream_session_is_skipped() {
        let line = "[10.0.0.5] [24/Jan/2021:19:25:33 +0000] TCP 200 1024 512 0.120";
        assert!(matches!(
            parse_record(line),
            LineOutcome::Skipped("stream_session")
        ));
    }

    #[test]
    fn rejects_common_and_combined_lines() {
        assert_eq!(
            rejection(
                r#"127.0.0.1 - frank [10/Oct/2000:13:55:36 -0700] "GET /apache_pb.gif HTTP/1.0" 200 2326"#
            ),
            "expected the combined format, $request_length and $request_time after [$time_local]"
        );
        assert_eq!(
            rejection(concat!(
                r#"172.17.0.1 - - [29/May/2017:19:02:48 +0000] "GET /a HTTP/1.1" 404 612 "-" "Firefox" "#,
                r#""-" 0.005 "up:80""#
            )),
            r#"expected an unquoted value in field 10 ($request_length), found "-""#
        );
    }

    #[test]
    fn rejects_traefik_and_envoy_lines() {
        let traefik = concat!(
            r#"192.168.33.1 - - [02/Oct/2017:20:22:07 +0000] "GET /ui HTTP/1.1" 304 0 "-" "Mozilla/5.0" "#,
            r#"262 "Host-host-1" "http://172.19.0.3:5601" 2ms"#
        );
        assert_eq!(
            rejection(traefik),
            r#"expected an unquoted value in field 11 ($request_time), found "Host-host-1""#
        );
        let envoy = r#"[2019-04-08T16:16:55.931Z] "GET /service/1 HTTP/1.1" 200 - 0 89 5 4 "-" "curl/7.54.0" "c219" "localhost:8000" "172.27.0.3:80""#;
        assert_eq!(
            rejection(envoy),
            "missing the [$time_local] field of an ingress-nginx access log"
        );
    }

    #[test]
    fn rejects_broken_upstream_part() {
        assert_eq!(
            rejection(&with_upstream(
                "default-orders-80 10.1.0.7:8080 612 0.002 200 abc"
            )),
            r#"expected [$proxy_upstream_name] after $request_time, found "default-orders-80""#
        );
        assert_eq!(
            rejection(&with_upstream(
                "[default-orders-80] [] 10.1.0.7:8080 612 0.002 200"
            )),
            "expected $upstream_addr, $upstream_response_length, $upstream_response_time, \
             $upstream_status and $req_id after the upstream name, found 4 values"
        );
        assert_eq!(
            rejection(&with_upstream(
                "[default-orders-80] [] 10.1.0.7:8080 612 0.002 OK abc"
            )),
            r#"invalid $upstream_status "OK""#
        );
    }

    #[test]
    fn detection_prefers_ingress_over_clf() {
        let retried = with_upstream(
            "[default-orders-80] [] 10.1.0.7:8080, 10.1.0.8:8080 0, 612 0.001, 0.002 502, 200 abc123",
        );
        let sample = format!("{LINE}\n{retried}\n{LINE}\n");
        assert_eq!(detect_format(sample.as_bytes()), Some(Format::IngressNginx));
    }

    #[test]
    fn odd_input_does_not_panic() {
        let samples = [
            "",
            "[",
            "[] [] TCP",
            "a - - [24/Jan/2021:19:25:33 +0000]",
            "a - - [24/Jan/2021:19:25:33 +0000] \"GET / HTTP/1.1\" 200 1 \"-\" \"-\" 1 0.1 [x] [] a, b : c, : ,",
            "a - - [24/Jan/2021:19:25:33 +0000] \"GET / HTTP/1.1\" 200 1 \"-\" \"-\" 1 0.1 [x] [] , , , , ,",
            "a - - [24/Jan/2021:19:25:33 +0000] \"GET / HTTP/1.1\" 200 1 \"-\" \"-\" 1 0.1 [x] [] : : : : :",
            "ü - - [24/Jan/2021:19:25:33 +0000] \"ü\" 99999999999 ü \"ü\" \"ü\" ü ü [ü] ü ü ü ü ü",
        ];
        for sample in samples {
            let _ = parse_record(sample);
        }
    }
}
