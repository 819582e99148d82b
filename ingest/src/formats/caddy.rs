//! Caddy v2 access logs in JSON (`caddy`).
//!
//! Caddy writes one JSON object per request from a logger named
//! `http.log.access` or `http.log.access.<name>`. Nested objects are
//! flattened with `.`, so `{"request": {"method": ...}}` reads as
//! `request.method`. Header values are arrays, joined when a header is
//! repeated.
//!
//! | key | column |
//! |---|---|
//! | `ts` | `time` |
//! | `request.remote_ip`, `request.remote_port` (older versions: `request.remote_addr`) | `client_ip`, `client_port` |
//! | `request.proto` | `http_version` |
//! | `request.method` | `method` |
//! | `request.host` | `host` (a port goes to attribute `port`) |
//! | `request.uri` | `path` and `query` |
//! | `request.headers.User-Agent` | `user_agent` |
//! | `request.headers.Referer` | `referer` |
//! | `request.headers.X-Forwarded-For` | `forwarded_for` |
//! | `request.tls` present | `scheme` `https` |
//! | `status` | `status` |
//! | `size` | `response_bytes` |
//! | `bytes_read` | `request_bytes` |
//! | `duration` (seconds, or a Go duration such as `1.5ms`) | `duration_ms` |
//!
//! `time` is `ts`, when Caddy wrote the entry after the response was sent
//! (the END). It is a float of Unix seconds by default; the `time_format`
//! options `unix_milli_float`, `unix_nano` and ISO 8601 or RFC 3339 forms
//! are read too. `request.client_ip` (the client after trusted proxies),
//! `user_id`, `level`, `logger`, `msg`, the other request headers
//! (`request.headers.<Name>`), the response headers (`resp_headers.<Name>`)
//! and the TLS details (`request.tls.*`) go to attributes under their
//! flattened names. The driver hashes `Authorization`, `Cookie` and
//! `Set-Cookie` values by name, `REDACTED` placeholders included.
//!
//! Entries of Caddy's other loggers (`http.handlers.*`, `tls.*`, `admin`,
//! ...) are valid records but no requests, and are skipped as
//! `not_access_log`.

use crate::event::Event;
use crate::format::Format;
use crate::formats::json::Json;
use crate::formats::json_log::{
    Member, flatten_object, header_text, invalid_timestamp, member, member_str, parse_epoch,
    parse_object, parse_port, parse_seconds_as_millis, parse_size, parse_status, parse_timestamp,
    push_attribute, set_authority, set_target, value_text,
};
use crate::parse::{LineOutcome, ParseContext};
use crate::text::{quote_excerpt, set_client_address, set_client_endpoint};

const ACCESS_LOGGER: &str = "http.log.access";

/// First names of the loggers of Caddy and its standard modules.
const CADDY_LOGGERS: [&str; 6] = ["http", "tls", "admin", "pki", "events", "caddy"];

const REQUEST_HEADERS: &str = "request.headers.";
const RESPONSE_HEADERS: &str = "resp_headers.";

/// Parses one record of a Caddy access log.
pub fn parse_line(line: &str, _ctx: &ParseContext<'_>) -> LineOutcome {
    let members = match parse_object(line) {
        Ok(members) => members,
        Err(reason) => return LineOutcome::Rejected(reason),
    };
    if let Err(outcome) = check_access_entry(&members) {
        return outcome;
    }
    match build_event(&members) {
        Ok(event) => LineOutcome::Event(Box::new(event)),
        Err(reason) => LineOutcome::Rejected(reason),
    }
}

/// Returns the outcome for a record that is not an access log entry.
fn check_access_entry(members: &[Member<'_>]) -> Result<(), LineOutcome> {
    let logger = member_str(members, "logger");
    let is_access = match logger {
        Some(logger) => is_access_logger(logger),
        None => member_str(members, "msg") == Some("handled request"),
    };
    if !is_access {
        let is_caddy_entry = logger.is_some_and(is_caddy_logger)
            && member(members, "ts").is_some()
            && member(members, "level").is_some();
        return Err(if is_caddy_entry {
            LineOutcome::Skipped("not_access_log")
        } else {
            LineOutcome::Rejected(
                "not a Caddy access log record: expected logger http.log.access and a request object"
                    .to_string(),
            )
        });
    }
    if !matches!(member(members, "request"), Some(Json::Object(_))) {
        return Err(LineOutcome::Rejected(
            "not a Caddy access log record: the request object is missing".to_string(),
        ));
    }
    Ok(())
}

fn is_access_logger(logger: &str) -> bool {
    logger
        .strip_prefix(ACCESS_LOGGER)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('.'))
}

fn is_caddy_logger(logger: &str) -> bool {
    let first = logger.split('.').next().unwrap_or(logger);
    CADDY_LOGGERS.contains(&first)
}

fn build_event(members: &[Member<'_>]) -> Result<Event, String> {
    let leaves = flatten_object(members);
    let mut record = Record::default();
    for (key, value) in &leaves {
        record.apply(key, value)?;
    }
    record.finish()
}

/// The event being built, with the values that are only resolved after every key is seen.
#[derive(Default)]
struct Record {
    event: Event,
    time: Option<i64>,
    uri: Option<String>,
}

impl Record {
    /// Stores one flattened key in its column or as an attribute.
    fn apply(&mut self, key: &str, value: &Json<'_>) -> Result<(), String> {
        if let Some(name) = key.strip_prefix(REQUEST_HEADERS) {
            self.apply_request_header(key, name, value);
            return Ok(());
        }
        if key.starts_with(RESPONSE_HEADERS) {
            if let Some(text) = header_text(key, value) {
                push_attribute(&mut self.event, key, text);
            }
            return Ok(());
        }
        let Some(text) = value_text(value) else {
            return Ok(());
        };
        let event = &mut self.event;
        match key {
            "ts" => self.time = Some(parse_ts(key, value, &text)?),
            "request.remote_ip" => set_client_address(event, &text),
            "request.remote_port" => event.client_port = parse_port(key, &text)?,
            "request.remote_addr" => set_client_endpoint(event, &text),
            "request.proto" => event.http_version = Some(text.into_owned()),
            "request.method" => event.method = Some(text.into_owned()),
            "request.host" => set_authority(event, &text),
            "request.uri" => self.uri = Some(text.into_owned()),
            "status" => event.status = parse_status(key, &text)?,
            "size" => event.response_bytes = parse_size(key, &text)?,
            "bytes_read" => event.request_bytes = parse_size(key, &text)?,
            "duration" => event.duration_ms = parse_duration(key, value, &text)?,
            _ => {
                if key.starts_with("request.tls.") {
                    event.scheme = Some("https".to_string());
                }
                push_attribute(event, key, text);
            }
        }
        Ok(())
    }

    fn apply_request_header(&mut self, key: &str, name: &str, value: &Json<'_>) {
        let Some(text) = header_text(name, value) else {
            return;
        };
        let event = &mut self.event;
        if name.eq_ignore_ascii_case("user-agent") {
            event.user_agent = Some(text.into_owned());
        } else if name.eq_ignore_ascii_case("referer") {
            event.referer = Some(text.into_owned());
        } else if name.eq_ignore_ascii_case("x-forwarded-for") {
            event.forwarded_for = Some(text.into_owned());
        } else {
            push_attribute(event, key, text);
        }
    }

    fn finish(self) -> Result<Event, String> {
        let Record {
            mut event,
            time,
            uri,
        } = self;
        event.time = time.ok_or("missing the request time: ts is null or empty")?;
        event.source = Format::Caddy.name().to_string();
        if let Some(uri) = uri {
            set_target(&mut event, "request.uri", &uri);
        }
        Ok(event)
    }
}

/// Parses `ts`: an epoch number in any unit, or a timestamp string.
fn parse_ts(key: &str, value: &Json<'_>, text: &str) -> Result<i64, String> {
    match value {
        Json::Number(_) => parse_epoch(text)
            .map(|time| time.micros)
            .ok_or_else(|| invalid_timestamp(key, text)),
        _ => parse_timestamp(key, text),
    }
}

/// Parses `duration`: a number of seconds, or a Go duration string such as `1.5ms`.
fn parse_duration(key: &str, value: &Json<'_>, text: &str) -> Result<Option<f64>, String> {
    if matches!(value, Json::Number(_)) || text.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        return parse_seconds_as_millis(key, text);
    }
    parse_go_duration(text)
        .map(Some)
        .ok_or_else(|| format!("invalid duration {} in key {key}", quote_excerpt(text)))
}

/// Parses a Go duration such as `1h2m3.5s` or `929.675µs` into milliseconds.
fn parse_go_duration(text: &str) -> Option<f64> {
    let mut rest = text;
    let mut millis = 0.0;
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let number_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let number: f64 = rest[..number_end].parse().ok()?;
        rest = &rest[number_end..];
        let unit_end = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let scale = match &rest[..unit_end] {
            "ns" => 1e-6,
            "us" | "µs" | "μs" => 1e-3,
            "ms" => 1.0,
            "s" => 1e3,
            "m" => 60e3,
            "h" => 3600e3,
            _ => return None,
        };
        millis += number * scale;
        rest = &rest[unit_end..];
    }
    Some(millis)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::formats::test_support::{expect_event, expect_rejection};
    use crate::redact::Redactor;

    fn parse(line: &str) -> LineOutcome {
        let redactor = Redactor::new(b"test".to_vec(), 1);
        parse_line(line, &ParseContext::new(&redactor))
    }

    fn parse_event(line: &str) -> Event {
        expect_event(line, parse(line))
    }

    fn rejection(line: &str) -> String {
        expect_rejection(line, parse(line))
    }

    #[test]
    fn access_entry() {
        let event = parse_event(concat!(
            r#"{"level":"info","ts":1646861401.5241024,"logger":"http.log.access.log0","msg":"handled request","#,
            r#""request":{"remote_ip":"127.0.0.1","remote_port":"41342","client_ip":"198.51.100.3","proto":"HTTP/2.0","#,
            r#""method":"GET","host":"api.example.com:8443","uri":"/v1/items?page=2","#,
            r#""headers":{"User-Agent":["curl/7.82.0"],"Accept":["*/*"],"Cookie":["a=1","b=2"],"X-Forwarded-For":["203.0.113.1"]},"#,
            r#""tls":{"resumed":false,"version":772,"proto":"h2","server_name":"api.example.com"}},"#,
            r#""bytes_read": 12,"user_id":"","duration":0.000929675,"size":10900,"status":200,"#,
            r#""resp_headers":{"Server":["Caddy"],"Alt-Svc":["h3=\":443\"; ma=2592000"]}}"#
        ));

        assert_eq!(event.source, "caddy");
        assert_eq!(event.time, 1_646_861_401_524_102);
        assert_eq!(event.client_ip.as_deref(), Some("127.0.0.1"));
        assert_eq!(event.client_port, Some(41342));
        assert_eq!(event.http_version.as_deref(), Some("HTTP/2.0"));
        assert_eq!(event.method.as_deref(), Some("GET"));
        assert_eq!(event.host.as_deref(), Some("api.example.com"));
        assert_eq!(event.path.as_deref(), Some("/v1/items"));
        assert_eq!(event.query.as_deref(), Some("page=2"));
        assert_eq!(event.scheme.as_deref(), Some("https"));
        assert_eq!(event.user_agent.as_deref(), Some("curl/7.82.0"));
        assert_eq!(event.forwarded_for.as_deref(), Some("203.0.113.1"));
        assert_eq!(event.request_bytes, Some(12));
        assert_eq!(event.response_bytes, Some(10900));
        assert_eq!(event.status, Some(200));
        assert_eq!(event.duration_ms, Some(0.929675));

        assert_eq!(event.attribute("request.client_ip"), Some("198.51.100.3"));
        assert_eq!(event.attribute("request.headers.Cookie"), Some("a=1; b=2"));
        assert_eq!(event.attribute("request.tls.version"), Some("772"));
        assert_eq!(
            event.attribute("resp_headers.Alt-Svc"),
            Some("h3=\":443\"; ma=2592000")
        );
        assert_eq!(event.attribute("user_id"), None);
        assert_eq!(event.attribute("logger"), Some("http.log.access.log0"));
    }

    #[test]
    fn plain_http_and_old_remote_addr() {
        let event = parse_event(concat!(
            r#"{"level":"error","ts":"2024-05-01T10:00:00.25Z","logger":"http.log.access","msg":"handled request","#,
            r#""request":{"remote_addr":"[2001:db8::1]:50000","proto":"HTTP/1.1","method":"PUT","host":"example.com","uri":"/x"},"#,
            r#""duration":"1.5ms","size":0,"status":502}"#
        ));
        assert_eq!(event.time, 1_714_557_600_250_000);
        assert_eq!(event.client_ip.as_deref(), Some("2001:db8::1"));
        assert_eq!(event.client_port, Some(50000));
        assert_eq!(event.scheme, None);
        assert_eq!(event.duration_ms, Some(1.5));
        assert_eq!(event.response_bytes, Some(0));
    }

    #[test]
    fn other_loggers_are_skipped() {
        let outcome = parse(
            r#"{"level":"info","ts":1646861401.5,"logger":"tls.obtain","msg":"certificate obtained successfully"}"#,
        );
        assert!(
            matches!(outcome, LineOutcome::Skipped("not_access_log")),
            "{outcome:?}"
        );
    }

    #[test]
    fn rejects_other_records() {
        for line in [
            r#"{"level":"info","ts":1,"logger":"myapp","msg":"started"}"#,
            r#"{"request":{"method":"GET","uri":"/"},"started_at":1614232668342,"client_ip":"192.0.2.1"}"#,
            r#"{"logger":"http.log.access","ts":1,"request":"GET / HTTP/1.1"}"#,
        ] {
            let reason = rejection(line);
            assert!(
                reason.starts_with("not a Caddy access log record"),
                "{line}: {reason}"
            );
        }
        assert_eq!(
            rejection(r#"{"logger":"http.log.access","request":{"method":"GET"},"status":200}"#),
            "missing the request time: ts is null or empty"
        );
    }

    #[test]
    fn go_durations() {
        assert_eq!(parse_go_duration("1.5ms"), Some(1.5));
        assert_eq!(parse_go_duration("2m3s"), Some(123_000.0));
        assert_eq!(parse_go_duration("250µs"), Some(0.25));
        assert_eq!(parse_go_duration("5 ms"), None);
        assert_eq!(parse_go_duration(""), None);
        assert_eq!(parse_go_duration("ms"), None);
    }
}
