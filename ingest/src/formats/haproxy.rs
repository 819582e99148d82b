//! HAProxy HTTP logs (`option httplog`), bare or inside syslog (`haproxy`).
//!
//! The message has these space-separated fields:
//!
//! ```text
//! client_ip:client_port [request_date] frontend_name backend_name/server_name
//! TR/Tw/Tc/Tr/Ta status_code bytes_read captured_request_cookie
//! captured_response_cookie termination_state actconn/feconn/beconn/srv_conn/retries
//! srv_queue/backend_queue {captured_request_headers} {captured_response_headers}
//! "http_request"
//! ```
//!
//! The header blocks appear only when the configuration captures headers.
//! Fields between `backend_name/server_name` and the timers, or after the
//! request, which some configurations add, become attributes `extra_1`,
//! `extra_2`, ... The message
//! may follow a BSD syslog header (`<134>Jan  1 12:00:00 host haproxy[123]: `,
//! with or without the priority), an RFC 5424 header, or nothing.
//!
//! | field | column |
//! |---|---|
//! | `request_date` (`accept_date` in older versions) | `time` (the START of the request) |
//! | `client_ip:client_port` | `client_ip`, `client_port` |
//! | `~` after `frontend_name` | `scheme`: `https` with it, `http` without |
//! | `backend_name/server_name` | `upstream`, when a server was chosen |
//! | `Ta` (`Tt` in older versions), in ms | `duration_ms` |
//! | `status_code` | `status` |
//! | `bytes_read` (bytes sent to the client) | `response_bytes` |
//! | `http_request` | `method`, `scheme`, `host`, `path`, `query`, `http_version` |
//!
//! The syslog timestamp has no year, so `time` comes from `request_date`,
//! which has one. NOTE: `request_date` carries no UTC offset. It is the
//! HAProxy host's local time and is read as UTC, so hosts that do not log in
//! UTC give shifted times. The syslog header goes to attributes
//! `syslog_priority`, `syslog_timestamp`, `syslog_hostname`, `process_name`
//! and `pid`.
//!
//! A timer or status of `-1` is unknown. With `option logasap`, `Ta` and
//! `bytes_read` start with `+` and count only up to the log time, so they
//! stay attributes and `duration_ms` and `response_bytes` are unknown. The
//! other fields go to attributes named as above: each timer (`TR`, `Tw`,
//! `Tc`, `Tr`, `Ta`), each connection count, `frontend_name`, `backend_name`,
//! `server_name` (left out for `<NOSRV>`), the captured cookies,
//! `termination_state`, and the header blocks as logged without their braces.
//! A single header block is taken as the request headers, because the log
//! does not say which side it captured. A client logged as `-:port` has an
//! unknown address, and a client that is no IP address, such as a unix
//! socket, goes to attribute `client`.
//!
//! HAProxy writes `"`, `#` and non-printable bytes of the request line as
//! `#XX`. The request is decoded before it is split: `#22` becomes a quote
//! and other escapes become `%XX`. A request with escapes is also kept as
//! logged, in attribute `request`.
//!
//! Lines of `option tcplog` (three timers) are skipped as `tcp_connection`,
//! connection errors (`frontend/bind: message`) as `connection_error`, and
//! other messages of a process named `haproxy` as `haproxy_message`.

use std::borrow::Cow;

use crate::event::Event;
use crate::format::Format;
use crate::parse::{LineOutcome, ParseContext};
use crate::text::{
    Delimiter, Field, Fields, dash_as_none, normalise_ip, parse_clf_time, quote_excerpt,
    set_request, split_host_port,
};

/// Fields read by token, enough for the longest syslog header, three extra
/// fields and the message up to `srv_queue/backend_queue`.
const MAX_TOKEN_FIELDS: usize = 24;

/// Maximum number of syslog header fields before the client address.
const MAX_HEADER_FIELDS: usize = 9;

/// Maximum number of unknown fields between `backend_name/server_name` and the timers.
const MAX_EXTRA_FIELDS: usize = 3;

const TIMER_NAMES: [&str; 5] = ["TR", "Tw", "Tc", "Tr", "Ta"];
const CONNECTION_NAMES: [&str; 5] = ["actconn", "feconn", "beconn", "srv_conn", "retries"];
const QUEUE_NAMES: [&str; 2] = ["srv_queue", "backend_queue"];
const HEADER_BLOCK_NAMES: [&str; 2] = ["captured_request_headers", "captured_response_headers"];

/// Parses one line of an HAProxy log.
pub fn parse_line(line: &str, _ctx: &ParseContext<'_>) -> LineOutcome {
    parse_record(line)
}

/// Parses one line without the per-input settings, as format detection needs.
pub(crate) fn parse_record(line: &str) -> LineOutcome {
    let line = line.strip_prefix('\u{feff}').unwrap_or(line).trim_end();
    let (priority, text) = split_priority(line);
    let mut fields = Vec::with_capacity(MAX_TOKEN_FIELDS);
    fields.extend(Fields::new(text).take(MAX_TOKEN_FIELDS));

    let Some(client) = find_client(&fields) else {
        if has_haproxy_tag(&fields) {
            return LineOutcome::Skipped("haproxy_message");
        }
        return LineOutcome::Rejected(
            "missing the client_ip:port [date] start of an HAProxy log message".to_string(),
        );
    };
    let message = Message {
        text,
        fields: &fields[client..],
    };
    let mut event = match message.kind() {
        MessageKind::Http => match message.start_event() {
            Ok(event) => event,
            Err(reason) => return LineOutcome::Rejected(reason),
        },
        MessageKind::Tcp => return LineOutcome::Skipped("tcp_connection"),
        MessageKind::ConnectionError => return LineOutcome::Skipped("connection_error"),
    };
    push_syslog_header(&mut event, priority, text, &fields[..client]);
    match message.fill(&mut event) {
        Ok(()) => LineOutcome::Event(Box::new(event)),
        Err(reason) => LineOutcome::Rejected(reason),
    }
}

/// Splits a leading syslog priority `<134>` from the line.
fn split_priority(line: &str) -> (Option<&str>, &str) {
    let Some(after) = line.strip_prefix('<') else {
        return (None, line);
    };
    match after.split_once('>') {
        Some((priority, rest))
            if !priority.is_empty()
                && priority.len() <= 3
                && priority.bytes().all(|b| b.is_ascii_digit()) =>
        {
            (Some(priority), rest)
        }
        _ => (None, line),
    }
}

/// Returns the index of the client field: an `address:port` followed by a bracketed date.
fn find_client(fields: &[Field<'_>]) -> Option<usize> {
    fields
        .windows(2)
        .take(MAX_HEADER_FIELDS + 1)
        .position(|pair| {
            pair[0].delimiter == Delimiter::Bare
                && pair[0].text.contains(':')
                && pair[1].delimiter == Delimiter::Bracketed
                && parse_clf_time(pair[1].text).is_some()
        })
}

/// Returns whether a syslog tag of the line names a `haproxy` process.
fn has_haproxy_tag(fields: &[Field<'_>]) -> bool {
    fields.iter().take(MAX_HEADER_FIELDS).any(|field| {
        field.text.ends_with(':')
            && field
                .text
                .get(..7)
                .is_some_and(|name| name.eq_ignore_ascii_case("haproxy"))
    })
}

/// Stores the syslog header before the message as attributes.
fn push_syslog_header(event: &mut Event, priority: Option<&str>, text: &str, header: &[Field<'_>]) {
    if let Some(priority) = priority {
        push_attribute(event, "syslog_priority", priority);
    }
    match header {
        [] => {}
        // RFC 5424: VERSION TIMESTAMP HOSTNAME APP-NAME PROCID MSGID STRUCTURED-DATA
        [version, timestamp, hostname, app_name, process_id, _, _] if version.text == "1" => {
            push_attribute(event, "syslog_timestamp", timestamp.text);
            push_attribute(event, "syslog_hostname", hostname.text);
            push_attribute(event, "process_name", app_name.text);
            push_attribute(event, "pid", process_id.text);
        }
        // RFC 3164: TIMESTAMP (one or more fields) HOSTNAME TAG:
        [first, .., hostname, tag] if header.len() >= 3 && tag.text.ends_with(':') => {
            let timestamp_end = header[header.len() - 3].end;
            push_attribute(event, "syslog_timestamp", &text[first.start..timestamp_end]);
            push_attribute(event, "syslog_hostname", hostname.text);
            let tag = tag.text.trim_end_matches(':');
            match tag.split_once('[') {
                Some((name, pid)) => {
                    push_attribute(event, "process_name", name);
                    push_attribute(event, "pid", pid.trim_end_matches(']'));
                }
                None => push_attribute(event, "process_name", tag),
            }
        }
        [first, ..] => {
            let end = header[header.len() - 1].end;
            push_attribute(event, "syslog_header", &text[first.start..end]);
        }
    }
}

/// Kind of a message that starts with a client and a date.
enum MessageKind {
    Http,
    Tcp,
    ConnectionError,
}

/// The HAProxy message of a line, from the client field on.
struct Message<'a, 'f> {
    /// The line after the syslog priority, which the field offsets refer to.
    text: &'a str,
    fields: &'f [Field<'a>],
}

impl<'a> Message<'a, '_> {
    fn kind(&self) -> MessageKind {
        if self
            .fields
            .get(2)
            .is_some_and(|frontend| frontend.text.ends_with(':'))
        {
            return MessageKind::ConnectionError;
        }
        match self.timers_index().map(|index| self.fields[index].text) {
            Some(timers) if timers.split('/').count() == 3 => MessageKind::Tcp,
            _ => MessageKind::Http,
        }
    }

    /// Index of the timers field: the first field after `backend/server` that is a list of 3 or 5 timers.
    fn timers_index(&self) -> Option<usize> {
        (4..self.fields.len().min(5 + MAX_EXTRA_FIELDS)).find(|&index| {
            let text = self.fields[index].text;
            matches!(text.split('/').count(), 3 | 5) && text.split('/').all(is_signed_count)
        })
    }

    /// Creates the event with its time from the request date.
    fn start_event(&self) -> Result<Event, String> {
        let date = self.fields[1].text;
        let time = parse_clf_time(date).ok_or_else(|| {
            format!(
                "invalid timestamp {} in the request date",
                quote_excerpt(date)
            )
        })?;
        Ok(Event::new(Format::Haproxy.name(), time))
    }

    /// Fills the event from every field after the date.
    fn fill(&self, event: &mut Event) -> Result<(), String> {
        set_client(event, self.fields[0].text);
        let fields = self.fields;
        let Some(frontend) = fields.get(2) else {
            return Err("missing frontend_name after the request date".to_string());
        };
        let (frontend_name, tls) = match frontend.text.strip_suffix('~') {
            Some(name) => (name, true),
            None => (frontend.text, false),
        };
        push_attribute(event, "frontend_name", frontend_name);
        event.scheme = Some(if tls { "https" } else { "http" }.to_string());

        let Some(backend_server) = fields.get(3).filter(|field| field.text.contains('/')) else {
            return Err(format!(
                "expected backend_name/server_name after the frontend name, found {}",
                fields.get(3).map_or_else(
                    || "the end of the line".to_string(),
                    |f| quote_excerpt(f.text)
                )
            ));
        };
        set_backend_server(event, backend_server.text);

        let Some(timers) = self.timers_index() else {
            return Err(format!(
                "expected the timers TR/Tw/Tc/Tr/Ta after backend_name/server_name, found {}",
                fields.get(4).map_or_else(
                    || "the end of the line".to_string(),
                    |f| quote_excerpt(f.text)
                )
            ));
        };
        for (index, extra) in fields[4..timers].iter().enumerate() {
            push_attribute(event, &format!("extra_{}", index + 1), extra.text);
        }
        set_timers(event, fields[timers].text);

        let after_timers = fields.get(timers + 1..timers + 8).ok_or_else(|| {
            format!(
                "expected status_code, bytes_read, cookies, termination_state and connection counts after the timers, found {} fields",
                fields.len() - timers - 1
            )
        })?;
        set_counters(event, after_timers)?;

        let rest = &self.text[after_timers[6].end..];
        set_headers_and_request(event, rest, timers - 4)
    }
}

/// Fills the client from `ip:port`, `-:port` or another address such as a unix socket.
fn set_client(event: &mut Event, text: &str) {
    let (host, port) = split_host_port(text);
    if let Some(ip) = normalise_ip(host) {
        event.client_ip = Some(ip);
        event.client_port = port.map(i32::from);
    } else if host == "-" {
        event.client_port = port.map(i32::from);
    } else {
        push_attribute(event, "client", text);
    }
}

/// Stores backend and server, and the upstream when a real server was chosen.
///
/// Names in angle brackets mark no server (`<NOSRV>`) or an internal service
/// (`<STATS>`, `<CACHE>`), so they are no upstream.
fn set_backend_server(event: &mut Event, text: &str) {
    let (backend, server) = text.split_once('/').unwrap_or((text, ""));
    push_attribute(event, "backend_name", backend);
    if server != "<NOSRV>" {
        push_attribute(event, "server_name", server);
    }
    if !server.is_empty() && !server.starts_with('<') {
        event.upstream = Some(text.to_string());
    }
}

/// Keeps each timer as an attribute and sets `duration_ms` from the last one.
fn set_timers(event: &mut Event, text: &str) {
    let mut last = "";
    for (name, value) in TIMER_NAMES.iter().zip(text.split('/')) {
        if value != "-1" {
            push_attribute(event, name, value);
        }
        last = value;
    }
    event.duration_ms = parse_count(last).map(|millis| millis as f64);
}

/// Fills status and size, and keeps cookies, termination state and counts as attributes.
fn set_counters(event: &mut Event, fields: &[Field<'_>]) -> Result<(), String> {
    let [
        status,
        bytes_read,
        request_cookie,
        response_cookie,
        termination_state,
        connections,
        queues,
    ] = fields
    else {
        return Err("expected 7 fields after the timers".to_string());
    };

    event.status = match status.text {
        "-1" => None,
        text => Some(
            parse_count(text)
                .and_then(|code| i32::try_from(code).ok())
                .ok_or_else(|| format!("invalid status_code {}", quote_excerpt(text)))?,
        ),
    };
    if !is_signed_count(bytes_read.text) {
        return Err(format!(
            "invalid bytes_read {}",
            quote_excerpt(bytes_read.text)
        ));
    }
    event.response_bytes = parse_count(bytes_read.text);
    if event.response_bytes.is_none() {
        push_attribute(event, "bytes_read", bytes_read.text);
    }
    push_attribute(event, "captured_request_cookie", request_cookie.text);
    push_attribute(event, "captured_response_cookie", response_cookie.text);
    push_attribute(event, "termination_state", termination_state.text);
    push_slash_list(event, &CONNECTION_NAMES, connections)?;
    push_slash_list(event, &QUEUE_NAMES, queues)
}

/// Stores a `a/b/c` list of counts as one attribute per name.
fn push_slash_list(event: &mut Event, names: &[&str], field: &Field<'_>) -> Result<(), String> {
    let values = field.text.split('/');
    if values.clone().count() != names.len() || !values.clone().all(is_signed_count) {
        return Err(format!(
            "expected {} in field {}",
            names.join("/"),
            quote_excerpt(field.text)
        ));
    }
    for (name, value) in names.iter().zip(values) {
        push_attribute(event, name, value);
    }
    Ok(())
}

/// Reads the optional `{...}` header blocks and the quoted request after the
/// queue counts. Fields after the request continue the numbering of the
/// `extra_count` extra fields before the timers.
fn set_headers_and_request(
    event: &mut Event,
    rest: &str,
    extra_count: usize,
) -> Result<(), String> {
    let mut rest = rest.trim_start_matches(' ');
    let mut blocks = 0;
    while let Some(block) = rest.strip_prefix('{') {
        let Some(end) = block.find('}') else {
            return Err(format!(
                "unclosed captured header block {}",
                quote_excerpt(rest)
            ));
        };
        let Some(name) = HEADER_BLOCK_NAMES.get(blocks) else {
            return Err(format!(
                "expected at most two captured header blocks, found a third {}",
                quote_excerpt(rest)
            ));
        };
        let content = &block[..end];
        if content.bytes().any(|byte| byte != b'|') {
            push_attribute(event, name, content);
        }
        blocks += 1;
        rest = block[end + 1..].trim_start_matches(' ');
    }

    let Some(quoted) = rest.strip_prefix('"') else {
        return Err(format!(
            "expected the quoted http_request, found {}",
            quote_excerpt(rest)
        ));
    };
    // HAProxy writes a quote inside the request as `#22`, so the first quote
    // ends it. A request cut by the maximum log line length has no closing quote.
    let (request, trailing) = quoted.split_once('"').unwrap_or((quoted, ""));
    set_haproxy_request(event, request);
    for (index, field) in Fields::new(trailing).enumerate() {
        let name = format!("extra_{}", extra_count + index + 1);
        push_attribute(event, &name, field.text);
    }
    Ok(())
}

/// Decodes HAProxy's `#XX` escapes in the request line and splits it.
fn set_haproxy_request(event: &mut Event, logged: &str) {
    let decoded = decode_hash_escapes(logged);
    set_request(event, &decoded);
    if matches!(decoded, Cow::Owned(_)) && event.attribute("request").is_none() {
        push_attribute(event, "request", logged);
    }
}

/// Turns `#22` into a quote and other `#XX` escapes into `%XX`. Text without
/// escapes is returned borrowed.
fn decode_hash_escapes(text: &str) -> Cow<'_, str> {
    let bytes = text.as_bytes();
    let is_escape = |index: usize| {
        bytes[index] == b'#'
            && bytes.get(index + 1).is_some_and(u8::is_ascii_hexdigit)
            && bytes.get(index + 2).is_some_and(u8::is_ascii_hexdigit)
    };
    if !(0..bytes.len()).any(is_escape) {
        return Cow::Borrowed(text);
    }

    let mut out = String::with_capacity(text.len() + 4);
    let mut copied_up_to = 0;
    let mut index = 0;
    while index < bytes.len() {
        if !is_escape(index) {
            index += 1;
            continue;
        }
        out.push_str(&text[copied_up_to..index]);
        let hex = &text[index + 1..index + 3];
        if hex == "22" {
            out.push('"');
        } else {
            out.push('%');
            out.push_str(hex);
        }
        index += 3;
        copied_up_to = index;
    }
    out.push_str(&text[copied_up_to..]);
    Cow::Owned(out)
}

/// Parses a non-negative integer.
fn parse_count(text: &str) -> Option<i64> {
    if text.is_empty() || text.len() > 18 || !text.bytes().all(|byte| byte.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

/// Returns whether `text` is a count as HAProxy logs it: digits, `-1`, or `+` and digits.
fn is_signed_count(text: &str) -> bool {
    text == "-1" || parse_count(text.strip_prefix('+').unwrap_or(text)).is_some()
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

    /// The syslog header of the test lines.
    const HEADER: &str = "Mar  4 09:15:02 lb-1 haproxy[2211]: ";

    /// An httplog message with both header blocks.
    const MESSAGE: &str = concat!(
        "198.51.100.7:40022 [04/Mar/2024:09:15:01.250] api-in~ orders/app-2 3/0/1/40/44 ",
        r#"201 512 - - ---- 12/10/4/2/0 0/0 {api.example.com|Mozilla/5.0 (X11; Linux)} {|} "#,
        r#""POST /v1/orders?source=web HTTP/1.1""#
    );

    /// 2024-03-04T09:15:01.250Z, the request date of [`MESSAGE`].
    const MAR_4_2024: i64 = 1_709_543_701_250_000;

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

    /// Replaces the part of [`MESSAGE`] from the timers to the end.
    fn with_tail(tail: &str) -> String {
        let start = MESSAGE.find("3/0/1/40/44").expect("timers in MESSAGE");
        format!("{HEADER}{}{tail}", &MESSAGE[..start])
    }

    #[test]
    fn syslog_line_maps_columns() {
        let event = parse_event(&format!("{HEADER}{MESSAGE}"));
        assert_eq!(event.source, "haproxy");
        assert_eq!(event.time, MAR_4_2024);
        assert_eq!(event.client_ip.as_deref(), Some("198.51.100.7"));
        assert_eq!(event.client_port, Some(40022));
        assert_eq!(event.scheme.as_deref(), Some("https"));
        assert_eq!(event.upstream.as_deref(), Some("orders/app-2"));
        assert_eq!(event.duration_ms, Some(44.0));
        assert_eq!(event.status, Some(201));
        assert_eq!(event.response_bytes, Some(512));
        assert_eq!(event.method.as_deref(), Some("POST"));
        assert_eq!(event.path.as_deref(), Some("/v1/orders"));
        assert_eq!(event.query.as_deref(), Some("source=web"));
        assert_eq!(event.http_version.as_deref(), Some("HTTP/1.1"));
        assert_eq!(event.upstream_status, None);
        assert!(!event.malformed);
    }

    #[test]
    fn syslog_line_keeps_other_fields() {
        let event = parse_event(&format!("{HEADER}{MESSAGE}"));
        let expected = [
            ("syslog_timestamp", "Mar  4 09:15:02"),
            ("syslog_hostname", "lb-1"),
            ("process_name", "haproxy"),
            ("pid", "2211"),
            ("frontend_name", "api-in"),
            ("backend_name", "orders"),
            ("server_name", "app-2"),
            ("TR", "3"),
            ("Tw", "0"),
            ("Tc", "1"),
            ("Tr", "40"),
            ("Ta", "44"),
            ("termination_state", "----"),
            ("actconn", "12"),
            ("feconn", "10"),
            ("beconn", "4"),
            ("srv_conn", "2"),
            ("retries", "0"),
            ("srv_queue", "0"),
            ("backend_queue", "0"),
            (
                "captured_request_headers",
                "api.example.com|Mozilla/5.0 (X11; Linux)",
            ),
        ];
        assert_eq!(attributes(&event), expected);
    }

    #[test]
    fn priority_and_bare_forms() {
        let event = parse_event(&format!("<134>{HEADER}{MESSAGE}"));
        assert_eq!(event.attribute("syslog_priority"), Some("134"));
        assert_eq!(event.attribute("process_name"), Some("haproxy"));
        assert_eq!(event.time, MAR_4_2024);

        let event = parse_event(MESSAGE);
        assert_eq!(event.time, MAR_4_2024);
        assert_eq!(event.attribute("syslog_hostname"), None);
        assert_eq!(event.attributes[0].0, "frontend_name");

        let event = parse_event(&format!("<134>{MESSAGE}"));
        assert_eq!(event.attribute("syslog_priority"), Some("134"));
        assert_eq!(event.client_ip.as_deref(), Some("198.51.100.7"));
    }

    #[test]
    fn rfc5424_header() {
        let line = format!("<134>1 2024-03-04T09:15:02.001Z lb-1 haproxy 2211 - - {MESSAGE}");
        let event = parse_event(&line);
        assert_eq!(
            event.attribute("syslog_timestamp"),
            Some("2024-03-04T09:15:02.001Z")
        );
        assert_eq!(event.attribute("syslog_hostname"), Some("lb-1"));
        assert_eq!(event.attribute("process_name"), Some("haproxy"));
        assert_eq!(event.attribute("pid"), Some("2211"));
        assert_eq!(event.time, MAR_4_2024);
    }

    #[test]
    fn iso_syslog_timestamp() {
        let line = format!("2024-03-04T09:15:02+01:00 lb-1 haproxy[2211]: {MESSAGE}");
        let event = parse_event(&line);
        assert_eq!(
            event.attribute("syslog_timestamp"),
            Some("2024-03-04T09:15:02+01:00")
        );
        assert_eq!(event.attribute("pid"), Some("2211"));
    }

    #[test]
    fn no_server_and_minus_one_timers() {
        let event = parse_event(&format!(
            "{HEADER}127.0.0.1:35982 [04/Mar/2024:09:15:01.250] web web/<NOSRV> 0/-1/-1/-1/0 503 217 - - SC-- 1/1/0/0/0 0/0 \"GET / HTTP/1.1\""
        ));
        assert_eq!(event.status, Some(503));
        assert_eq!(event.upstream, None);
        assert_eq!(event.duration_ms, Some(0.0));
        assert_eq!(event.scheme.as_deref(), Some("http"));
        assert_eq!(event.attribute("backend_name"), Some("web"));
        assert_eq!(event.attribute("server_name"), None);
        assert_eq!(event.attribute("Tw"), None);
        assert_eq!(event.attribute("Tr"), None);
        assert_eq!(event.attribute("termination_state"), Some("SC--"));
    }

    #[test]
    fn aborted_request_has_unknown_status_and_duration() {
        let event = parse_event(&with_tail(
            r#"5/0/1/-1/-1 -1 0 - - CD-- 1/1/0/0/0 0/0 "GET /slow HTTP/1.1""#,
        ));
        assert_eq!(event.status, None);
        assert_eq!(event.duration_ms, None);
        assert_eq!(event.response_bytes, Some(0));
        assert_eq!(event.attribute("Ta"), None);
    }

    #[test]
    fn logasap_values_stay_attributes() {
        let event = parse_event(&with_tail(
            r#"3/0/1/40/+44 200 +2750 - - ---- 1/1/0/0/+1 0/0 "GET /big HTTP/1.1""#,
        ));
        assert_eq!(event.duration_ms, None);
        assert_eq!(event.response_bytes, None);
        assert_eq!(event.attribute("Ta"), Some("+44"));
        assert_eq!(event.attribute("bytes_read"), Some("+2750"));
        assert_eq!(event.attribute("retries"), Some("+1"));
    }

    #[test]
    fn hidden_unix_and_ipv6_clients() {
        let hidden = MESSAGE.replacen("198.51.100.7:40022", "-:22222", 1);
        let event = parse_event(&hidden);
        assert_eq!(event.client_ip, None);
        assert_eq!(event.client_port, Some(22222));

        let unix = MESSAGE.replacen("198.51.100.7:40022", "unix:1", 1);
        let event = parse_event(&unix);
        assert_eq!(event.client_ip, None);
        assert_eq!(event.client_port, None);
        assert_eq!(event.attribute("client"), Some("unix:1"));

        let ipv6 = MESSAGE.replacen("198.51.100.7:40022", "2001:db8::7:40022", 1);
        let event = parse_event(&ipv6);
        assert_eq!(event.client_ip.as_deref(), Some("2001:db8::7"));
        assert_eq!(event.client_port, Some(40022));
    }

    #[test]
    fn header_blocks_zero_one_two() {
        let none = with_tail(r#"3/0/1/40/44 200 5 - - ---- 1/1/0/0/0 0/0 "GET / HTTP/1.1""#);
        let event = parse_event(&none);
        assert_eq!(event.attribute("captured_request_headers"), None);
        assert_eq!(event.path.as_deref(), Some("/"));

        let one = with_tail(r#"3/0/1/40/44 200 5 - - ---- 1/1/0/0/0 0/0 {h1||x} "GET / HTTP/1.1""#);
        let event = parse_event(&one);
        assert_eq!(event.attribute("captured_request_headers"), Some("h1||x"));
        assert_eq!(event.attribute("captured_response_headers"), None);

        let two = with_tail(
            r#"3/0/1/40/44 200 5 - - ---- 1/1/0/0/0 0/0 {h1} {text/html|nginx 1.2} "GET / HTTP/1.1""#,
        );
        let event = parse_event(&two);
        assert_eq!(event.attribute("captured_request_headers"), Some("h1"));
        assert_eq!(
            event.attribute("captured_response_headers"),
            Some("text/html|nginx 1.2")
        );
    }

    #[test]
    fn captured_cookies_are_kept() {
        let event = parse_event(&with_tail(
            r#"3/0/1/40/44 200 5 sid=abc lang=en ---- 1/1/0/0/0 0/0 "GET / HTTP/1.1""#,
        ));
        assert_eq!(event.attribute("captured_request_cookie"), Some("sid=abc"));
        assert_eq!(event.attribute("captured_response_cookie"), Some("lang=en"));
    }

    #[test]
    fn hash_escapes_are_decoded() {
        let event = parse_event(&with_tail(
            r#"3/0/1/40/44 200 5 - - ---- 1/1/0/0/0 0/0 "GET /search?q=#22a b#22&x=#E4#23 HTTP/1.1""#,
        ));
        assert_eq!(event.path.as_deref(), Some("/search"));
        assert_eq!(event.query.as_deref(), Some(r#"q="a b"&x=%E4%23"#));
        assert_eq!(
            event.attribute("request"),
            Some("GET /search?q=#22a b#22&x=#E4#23 HTTP/1.1")
        );
    }

    #[test]
    fn cut_request_is_kept() {
        let event = parse_event(&with_tail(
            r#"3/0/1/40/44 200 5 - - ---- 1/1/0/0/0 0/0 "GET /very/long/path?a=1"#,
        ));
        assert_eq!(event.method.as_deref(), Some("GET"));
        assert_eq!(event.path.as_deref(), Some("/very/long/path"));
        assert_eq!(event.http_version, None);
    }

    #[test]
    fn bad_request_is_malformed_row() {
        let event = parse_event(&with_tail(
            r#"-1/-1/-1/-1/0 400 187 - - PR-- 1/1/0/0/0 0/0 "<BADREQ>""#,
        ));
        assert!(event.malformed);
        assert_eq!(event.status, Some(400));
        assert_eq!(event.attribute("request"), Some("<BADREQ>"));
        assert_eq!(event.attribute("TR"), None);
    }

    #[test]
    fn absolute_uri_of_http2_request() {
        let event = parse_event(&with_tail(
            r#"3/0/1/40/44 200 5 - - ---- 1/1/0/0/0 0/0 "GET https://api.example.com/v1/a HTTP/2.0""#,
        ));
        assert_eq!(event.host.as_deref(), Some("api.example.com"));
        assert_eq!(event.scheme.as_deref(), Some("https"));
        assert_eq!(event.path.as_deref(), Some("/v1/a"));
        assert_eq!(event.http_version.as_deref(), Some("HTTP/2.0"));
    }

    #[test]
    fn extra_fields_are_numbered() {
        let line = MESSAGE.replacen("orders/app-2 ", "orders/app-2 api.example.com ", 1);
        let event = parse_event(&format!("{line} tail-value"));
        assert_eq!(event.attribute("extra_1"), Some("api.example.com"));
        assert_eq!(event.attribute("extra_2"), Some("tail-value"));
        assert_eq!(event.duration_ms, Some(44.0));
    }

    #[test]
    fn other_haproxy_records_are_skipped() {
        let tcp = format!(
            "{HEADER}198.51.100.7:40022 [04/Mar/2024:09:15:01.250] db-in db/pg-1 0/0/5007 212 -- 1/1/1/1/0 0/0"
        );
        assert!(matches!(
            parse_record(&tcp),
            LineOutcome::Skipped("tcp_connection")
        ));
        let error = format!(
            "{HEADER}198.51.100.7:40022 [04/Mar/2024:09:15:01.250] api-in/1: SSL handshake failure"
        );
        assert!(matches!(
            parse_record(&error),
            LineOutcome::Skipped("connection_error")
        ));
        let started = "Mar  4 09:15:02 lb-1 haproxy[2211]: Proxy api-in started.";
        assert!(matches!(
            parse_record(started),
            LineOutcome::Skipped("haproxy_message")
        ));
    }

    #[test]
    fn rejects_other_formats() {
        let missing = "missing the client_ip:port [date] start of an HAProxy log message";
        assert_eq!(
            rejection("Mar  4 09:15:02 lb-1 sshd[88]: Accepted publickey for root"),
            missing
        );
        assert_eq!(
            rejection(
                r#"127.0.0.1 - frank [10/Oct/2000:13:55:36 -0700] "GET /apache_pb.gif HTTP/1.0" 200 2326"#
            ),
            missing
        );
        assert_eq!(
            rejection(
                r#"[2019-04-08T16:16:55.931Z] "GET /service/1 HTTP/1.1" 200 - 0 89 5 4 "-" "curl/7.54.0" "c2" "localhost:8000" "172.27.0.3:80""#
            ),
            missing
        );
        assert_eq!(
            rejection(r#"{"DownstreamStatus":200,"StartUTC":"2021-03-16T18:56:54.735539596Z"}"#),
            missing
        );
    }

    #[test]
    fn rejects_broken_layouts() {
        assert_eq!(
            rejection(&with_tail("3/0/1/40 200 5")),
            r#"expected the timers TR/Tw/Tc/Tr/Ta after backend_name/server_name, found "3/0/1/40""#
        );
        assert_eq!(
            rejection(&with_tail("3/0/1/40/44 200 5 - -")),
            "expected status_code, bytes_read, cookies, termination_state and connection counts after the timers, found 4 fields"
        );
        assert_eq!(
            rejection(&with_tail(
                r#"3/0/1/40/44 OK 5 - - ---- 1/1/0/0/0 0/0 "GET / HTTP/1.1""#
            )),
            r#"invalid status_code "OK""#
        );
        assert_eq!(
            rejection(&with_tail(
                r#"3/0/1/40/44 200 5 - - ---- 1/1/0/0 0/0 "GET / HTTP/1.1""#
            )),
            r#"expected actconn/feconn/beconn/srv_conn/retries in field "1/1/0/0""#
        );
        assert_eq!(
            rejection(&with_tail(
                r#"3/0/1/40/44 200 5 - - ---- 1/1/0/0/0 0/0 {a|b "GET / HTTP/1.1""#
            )),
            r#"unclosed captured header block "{a|b \"GET / HTTP/1.1\"""#
        );
        assert_eq!(
            rejection(&with_tail("3/0/1/40/44 200 5 - - ---- 1/1/0/0/0 0/0 GET")),
            r#"expected the quoted http_request, found "GET""#
        );
    }

    #[test]
    fn odd_input_does_not_panic() {
        let samples = [
            "",
            "<",
            "<134>",
            "<1345>x",
            "a:1 [04/Mar/2024:09:15:01.250]",
            "a:1 [04/Mar/2024:09:15:01.250] f",
            "a:1 [04/Mar/2024:09:15:01.250] f b/s 1/2/3/4/5",
            "a:1 [04/Mar/2024:09:15:01.250] f b/s 1/2/3/4/5 1 1 - - ---- 1/1/1/1/1 0/0 {",
            "a:1 [04/Mar/2024:09:15:01.250] f b/s 1/2/3/4/5 1 1 - - ---- 1/1/1/1/1 0/0 \"#",
            "a:1 [04/Mar/2024:09:15:01.250] f b/s 1/2/3/4/5 1 1 - - ---- 1/1/1/1/1 0/0 \"#2",
            "a:1 [04/Mar/2024:09:15:01.250] f b/s 1/2/3/4/5 1 1 - - ---- 1/1/1/1/1 0/0 \"ü#ü\"",
            "haproxy: x",
        ];
        for sample in samples {
            let _ = parse_record(sample);
        }
    }
}
