//! Traefik access logs, in the common log form and in JSON (`traefik`).
//!
//! # Common log form
//!
//! ```text
//! client_host - username [start_time] "method path protocol" status size
//! "referer" "user_agent" request_count "router" "service_url" duration_msms
//! ```
//!
//! Traefik v1 writes the frontend name and backend URL in place of the
//! router and service URL. Traefik puts quotes around these values without
//! escaping quotes inside them. The quoted fields are therefore found from
//! the fixed fields around them rather than by scanning for quotes. The
//! request ends before the first `" status size "`, and the user agent before
//! the last `" request_count "`. The service URL, which has no spaces, starts
//! after the last ` "`. A value with quotes inside is thus read whole, and a
//! line whose fields cannot be separated this way is rejected.
//!
//! | field | column |
//! |---|---|
//! | `client_host` | `client_ip` |
//! | `start_time` | `time` (the START of the request) |
//! | request | `method`, `path`, `query`, `http_version` |
//! | `status`, `size` | `status`, `response_bytes` |
//! | `referer`, `user_agent` | `referer`, `user_agent` |
//! | `duration_ms` | `duration_ms` |
//!
//! The username goes to attribute `remote_user`, and the other fields to
//! attributes `request_count`, `router_name` and `service_url`.
//!
//! # JSON form
//!
//! One object per line with Traefik's field names. Traefik v1 names the
//! routing fields `FrontendName`, `BackendName`, `BackendURL` and
//! `BackendAddr`, and v2 and v3 name them `RouterName`, `ServiceName`,
//! `ServiceURL`, `ServiceAddr` and `entryPointName`. Headers are flattened
//! into keys such as `request_User-Agent`, `origin_Content-Type` and
//! `downstream_Content-Type`.
//!
//! | key | column |
//! |---|---|
//! | `StartUTC`, else `StartLocal` (the START), else `time` (when the line was written, the END) | `time` |
//! | `RequestMethod`, `RequestPath`, `RequestProtocol` (else `RequestLine`) | `method`, `path`, `query`, `http_version` |
//! | `RequestScheme`, `RequestHost` | `scheme`, `host` |
//! | `DownstreamStatus`, `DownstreamContentSize` | `status`, `response_bytes` |
//! | `OriginStatus` (0 when no server answered) | `upstream_status` |
//! | `RequestContentSize` | `request_bytes` |
//! | `Duration` (nanoseconds) | `duration_ms` |
//! | `ClientAddr`, else `ClientHost` and `ClientPort` | `client_ip`, `client_port` |
//! | `ServiceAddr`, else `BackendAddr` | `upstream` |
//! | `TraceId` | `trace_id` |
//! | `request_User-Agent`, `request_Referer`, `request_X-Forwarded-For`, `request_X-Request-Id` | `user_agent`, `referer`, `forwarded_for`, `request_id` |
//!
//! `ServiceURL` and `BackendURL`, which Traefik logs as URL objects, become
//! one attribute each (`http://10.0.0.5:80`). `ClientHost` and `ClientPort`
//! stay attributes when they differ from the `ClientAddr` they come from,
//! which happens when Traefik takes the client from forwarded headers. Every
//! other key goes to an attribute under its name, with nested objects joined
//! by `.`. Values `-`, empty and `null` are left out. `RequestLine` is left
//! out when the separate request fields are present.

use std::borrow::Cow;

use crate::event::Event;
use crate::format::Format;
use crate::formats::json::{Json, flatten};
use crate::parse::{LineOutcome, ParseContext};
use crate::text::{
    Delimiter, Fields, dash_as_none, normalise_ip, parse_clf_time, parse_iso8601, quote_excerpt,
    set_client_address, set_client_endpoint, set_request,
};

/// Nanoseconds in one millisecond, for `Duration`.
const NANOS_PER_MILLI: f64 = 1e6;

/// Keys that only Traefik's JSON access log has. A record needs one of them.
const TRAEFIK_KEYS: [&str; 10] = [
    "DownstreamStatus",
    "DownstreamContentSize",
    "OriginStatus",
    "RouterName",
    "ServiceName",
    "FrontendName",
    "BackendName",
    "entryPointName",
    "RequestCount",
    "RetryAttempts",
];

/// Parses one line of a Traefik access log.
pub fn parse_line(line: &str, _ctx: &ParseContext<'_>) -> LineOutcome {
    parse_record(line)
}

/// Parses one line without the per-input settings, as format detection needs.
pub(crate) fn parse_record(line: &str) -> LineOutcome {
    let line = line.strip_prefix('\u{feff}').unwrap_or(line).trim();
    let result = if line.starts_with('{') {
        parse_json(line)
    } else {
        parse_common(line)
    };
    match result {
        Ok(event) => LineOutcome::Event(Box::new(event)),
        Err(reason) => LineOutcome::Rejected(reason),
    }
}

// ---------------------------------------------------------------------------
// Common log form
// ---------------------------------------------------------------------------

/// The parts of a common-form line after `[start_time]`, as logged.
struct CommonTail<'a> {
    request: &'a str,
    status: &'a str,
    size: &'a str,
    referer: &'a str,
    user_agent: &'a str,
    request_count: &'a str,
    router: &'a str,
    service_url: &'a str,
    duration_ms: &'a str,
}

fn parse_common(line: &str) -> Result<Event, String> {
    let mut fields = Fields::new(line);
    let (Some(client), Some(dash), Some(user), Some(time)) =
        (fields.next(), fields.next(), fields.next(), fields.next())
    else {
        return Err(
            "expected `client - username [time]` at the start of a Traefik access log line"
                .to_string(),
        );
    };
    if dash.text != "-" || time.delimiter != Delimiter::Bracketed {
        return Err(
            "expected `client - username [time]` at the start of a Traefik access log line"
                .to_string(),
        );
    }
    let start = parse_clf_time(time.text).ok_or_else(|| {
        format!(
            "invalid timestamp {} in field 4 (time)",
            quote_excerpt(time.text)
        )
    })?;
    let tail = split_common_tail(&line[time.end..])?;

    let mut event = Event::new(Format::Traefik.name(), start);
    set_client_address(&mut event, client.text);
    push_attribute(&mut event, "remote_user", user.text);
    set_request(&mut event, tail.request);
    event.status = Some(
        parse_count(tail.status)
            .and_then(|status| i32::try_from(status).ok())
            .ok_or_else(|| format!("invalid status {}", quote_excerpt(tail.status)))?,
    );
    event.response_bytes = match tail.size {
        "-" => None,
        size => Some(
            parse_count(size)
                .ok_or_else(|| format!("invalid response size {}", quote_excerpt(size)))?,
        ),
    };
    event.referer = dash_as_none(tail.referer).map(str::to_string);
    event.user_agent = dash_as_none(tail.user_agent).map(str::to_string);
    push_attribute(&mut event, "request_count", tail.request_count);
    push_attribute(&mut event, "router_name", tail.router);
    push_attribute(&mut event, "service_url", tail.service_url);
    event.duration_ms = parse_count(tail.duration_ms).map(|millis| millis as f64);
    Ok(event)
}

/// Splits the text after `[start_time]` into its fields, from the fixed
/// fields inward, so that quotes inside values cannot shift them.
fn split_common_tail(text: &str) -> Result<CommonTail<'_>, String> {
    let text = text.trim_start_matches(' ');
    let Some(after_quote) = text.strip_prefix('"') else {
        return Err(format!(
            "expected the quoted request after the time, found {}",
            quote_excerpt(text)
        ));
    };
    let (request, status, size, after_size) = split_request(after_quote)
        .ok_or("expected `\"request\" status size \"referer\"` after the time")?;

    let (rest, duration_ms) = after_size
        .strip_suffix("ms")
        .and_then(|rest| rest.rsplit_once(' '))
        .filter(|(_, millis)| parse_count(millis).is_some())
        .ok_or("expected the duration in milliseconds, such as `12ms`, at the end of the line")?;
    let (agent_part, request_count, routing_part) = split_request_count(rest).ok_or(
        "expected `\"user_agent\" request_count \"router\" \"service_url\"` at the end of the line",
    )?;

    let (referer, user_agent) = unquote(agent_part)
        .and_then(|inner| inner.split_once("\" \""))
        .ok_or_else(|| {
            format!(
                "cannot separate the quoted referer and user agent in {}",
                quote_excerpt(agent_part)
            )
        })?;
    let (router, service_url) = split_routing(routing_part).ok_or_else(|| {
        format!(
            "cannot separate the quoted router and service URL in {}",
            quote_excerpt(routing_part)
        )
    })?;
    Ok(CommonTail {
        request,
        status,
        size,
        referer,
        user_agent,
        request_count,
        router,
        service_url,
        duration_ms,
    })
}

/// Splits `request" status size "rest` at the first quote followed by a
/// status and a size, returning the request, status, size and the rest
/// starting at the quote of the referer.
fn split_request(text: &str) -> Option<(&str, &str, &str, &str)> {
    for (quote, _) in text.match_indices("\" ") {
        let mut parts = text[quote + 2..].splitn(3, ' ');
        let (Some(status), Some(size), Some(rest)) = (parts.next(), parts.next(), parts.next())
        else {
            continue;
        };
        let is_size = size == "-" || parse_count(size).is_some();
        if parse_count(status).is_some() && is_size && rest.starts_with('"') {
            return Some((&text[..quote], status, size, rest));
        }
    }
    None
}

/// Splits `"referer" "user_agent" count "router" "service_url"` at the last
/// ` count ` between two quotes.
fn split_request_count(text: &str) -> Option<(&str, &str, &str)> {
    text.rmatch_indices("\" ").find_map(|(quote, _)| {
        let after = &text[quote + 2..];
        let (count, routing) = after.split_once(' ')?;
        (parse_count(count).is_some() && routing.starts_with('"'))
            .then(|| (&text[..=quote], count, routing))
    })
}

/// Splits `"router" "service_url"` at the last ` "`, since the service URL has
/// no spaces. The router may lack its closing quote.
fn split_routing(text: &str) -> Option<(&str, &str)> {
    let inner = unquote(text)?;
    let (router, service_url) = inner.rsplit_once(" \"")?;
    let router = router.strip_suffix('"').unwrap_or(router);
    Some((router, service_url))
}

/// Returns the text between a leading and a trailing quote.
fn unquote(text: &str) -> Option<&str> {
    text.strip_prefix('"')?.strip_suffix('"')
}

// ---------------------------------------------------------------------------
// JSON form
// ---------------------------------------------------------------------------

fn parse_json(line: &str) -> Result<Event, String> {
    let value: Json<'_> =
        serde_json::from_str(line).map_err(|error| format!("invalid JSON: {error}"))?;
    let Json::Object(members) = &value else {
        return Err(format!("expected a JSON object, found {}", value.kind()));
    };
    if !members
        .iter()
        .any(|(key, _)| TRAEFIK_KEYS.contains(&key.as_ref()))
    {
        return Err("not a Traefik access log record: none of DownstreamStatus, OriginStatus, RouterName, FrontendName or RequestCount is present".to_string());
    }

    let mut record = JsonRecord::default();
    for (key, value) in members {
        record.apply(key, value)?;
    }
    record.finish()
}

/// The event being built from a JSON record, with the values resolved after every key is seen.
#[derive(Default)]
struct JsonRecord {
    event: Event,
    start_utc: Option<i64>,
    start_local: Option<i64>,
    written: Option<i64>,
    request_line: Option<String>,
    client_host: Option<String>,
    client_port: Option<String>,
    backend_address: Option<String>,
}

impl JsonRecord {
    /// Stores one top-level key in its column or as attributes.
    fn apply(&mut self, key: &str, value: &Json<'_>) -> Result<(), String> {
        if let Json::Object(members) = value {
            self.apply_object(key, members);
            return Ok(());
        }
        let Some(text) = value.as_text() else {
            return Ok(());
        };
        if text.is_empty() || text == "-" {
            return Ok(());
        }
        let event = &mut self.event;
        match key {
            "StartUTC" => self.start_utc = Some(parse_time(key, &text)?),
            "StartLocal" => self.start_local = Some(parse_time(key, &text)?),
            "time" => self.written = Some(parse_time(key, &text)?),
            "RequestMethod" => event.method = Some(text.into_owned()),
            "RequestPath" => set_path(event, &text),
            "RequestProtocol" => event.http_version = Some(text.into_owned()),
            "RequestScheme" => event.scheme = Some(text.into_owned()),
            "RequestHost" => event.host = Some(text.into_owned()),
            "RequestLine" => self.request_line = Some(text.into_owned()),
            "RequestContentSize" => event.request_bytes = Some(parse_integer(key, &text)?),
            "DownstreamStatus" => event.status = Some(parse_integer(key, &text)?),
            "DownstreamContentSize" => event.response_bytes = Some(parse_integer(key, &text)?),
            "OriginStatus" => {
                event.upstream_status = Some(parse_integer(key, &text)?).filter(|&s| s != 0);
            }
            "Duration" => event.duration_ms = Some(parse_number(key, &text)? / NANOS_PER_MILLI),
            "ClientAddr" => set_client_endpoint(event, &text),
            "ClientHost" => self.client_host = Some(text.into_owned()),
            "ClientPort" => self.client_port = Some(text.into_owned()),
            "ServiceAddr" => event.upstream = Some(text.into_owned()),
            "BackendAddr" => self.backend_address = Some(text.into_owned()),
            "TraceId" => event.trace_id = Some(text.into_owned()),
            _ => {
                if !apply_request_header(event, key, &text) {
                    push_attribute(event, key, &text);
                }
            }
        }
        Ok(())
    }

    /// Stores a URL object as one attribute and flattens any other object.
    fn apply_object(&mut self, key: &str, members: &[(Cow<'_, str>, Json<'_>)]) {
        if matches!(key, "ServiceURL" | "BackendURL") {
            if let Some(url) = format_url(members) {
                push_attribute(&mut self.event, key, &url);
            }
            return;
        }
        let mut leaves = Vec::with_capacity(members.len());
        flatten(Some(key), members, &mut leaves);
        for (leaf_key, value) in leaves {
            if let Some(text) = value.as_text() {
                push_attribute(&mut self.event, &leaf_key, &text);
            }
        }
    }

    /// Resolves time, request line, client and upstream, rejecting a record without a time.
    fn finish(self) -> Result<Event, String> {
        let JsonRecord {
            mut event,
            start_utc,
            start_local,
            written,
            request_line,
            client_host,
            client_port,
            backend_address,
        } = self;
        event.time = start_utc
            .or(start_local)
            .or(written)
            .ok_or("missing the request time: none of StartUTC, StartLocal or time is present")?;
        event.source = Format::Traefik.name().to_string();

        if let Some(line) = request_line
            && event.method.is_none()
            && event.path.is_none()
        {
            set_request(&mut event, &line);
        }
        if event.upstream.is_none() {
            event.upstream = backend_address;
        }
        set_json_client(&mut event, client_host, client_port);
        Ok(event)
    }
}

/// Fills the client from `ClientHost` and `ClientPort` when `ClientAddr` was
/// missing, and keeps them as attributes when they differ from it.
fn set_json_client(event: &mut Event, host: Option<String>, port: Option<String>) {
    if event.client_ip.is_none() && event.client_port.is_none() {
        if let Some(host) = &host {
            set_client_address(event, host);
        }
        if event.client_port.is_none() {
            event.client_port = port.as_deref().and_then(|port| port.parse().ok());
        }
    }
    if let Some(host) = host
        && event.client_ip.as_deref() != normalise_ip(&host).as_deref()
    {
        event.attributes.push(("ClientHost".to_string(), host));
    }
    if let Some(port) = port
        && event.client_port.map(|p| p.to_string()).as_deref() != Some(port.as_str())
    {
        event.attributes.push(("ClientPort".to_string(), port));
    }
}

/// Sets the columns of the request headers Traefik logs as `request_<Name>`,
/// and returns whether `key` was one of them.
fn apply_request_header(event: &mut Event, key: &str, value: &str) -> bool {
    let Some(name) = key.strip_prefix("request_") else {
        return false;
    };
    let column = if name.eq_ignore_ascii_case("User-Agent") {
        &mut event.user_agent
    } else if name.eq_ignore_ascii_case("Referer") {
        &mut event.referer
    } else if name.eq_ignore_ascii_case("X-Forwarded-For") {
        &mut event.forwarded_for
    } else if name.eq_ignore_ascii_case("X-Request-Id") {
        &mut event.request_id
    } else {
        return false;
    };
    *column = Some(value.to_string());
    true
}

/// Writes a Go `url.URL` object as `scheme://host/path?query`, or returns
/// `None` when it has no host and no path.
fn format_url(members: &[(Cow<'_, str>, Json<'_>)]) -> Option<String> {
    let part = |name: &str| {
        members.iter().find_map(|(key, value)| match value {
            Json::String(text) if key == name && !text.is_empty() => Some(text.as_ref()),
            _ => None,
        })
    };
    let host = part("Host");
    let path = part("Path");
    if host.is_none() && path.is_none() {
        return None;
    }
    let mut url = String::new();
    if let Some(host) = host {
        if let Some(scheme) = part("Scheme") {
            url.push_str(scheme);
            url.push_str("://");
        }
        url.push_str(host);
    }
    url.push_str(path.unwrap_or_default());
    if let Some(query) = part("RawQuery") {
        url.push('?');
        url.push_str(query);
    }
    Some(url)
}

/// Sets `path` and `query` from `RequestPath`, which carries the query string.
fn set_path(event: &mut Event, text: &str) {
    match text.split_once('?') {
        Some((path, query)) => {
            event.path = Some(path.to_string());
            event.query = Some(query.to_string());
        }
        None => event.path = Some(text.to_string()),
    }
}

fn parse_time(key: &str, text: &str) -> Result<i64, String> {
    parse_iso8601(text)
        .ok_or_else(|| format!("invalid timestamp {} in key {key}", quote_excerpt(text)))
}

fn parse_integer<T: std::str::FromStr>(key: &str, text: &str) -> Result<T, String> {
    text.trim()
        .parse()
        .map_err(|_| format!("invalid number {} in key {key}", quote_excerpt(text)))
}

fn parse_number(key: &str, text: &str) -> Result<f64, String> {
    text.trim()
        .parse::<f64>()
        .ok()
        .filter(|value| value.is_finite() && *value >= 0.0)
        .ok_or_else(|| format!("invalid number {} in key {key}", quote_excerpt(text)))
}

/// Parses a non-negative integer.
fn parse_count(text: &str) -> Option<i64> {
    if text.is_empty() || text.len() > 18 || !text.bytes().all(|byte| byte.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
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

    /// A common-form line of Traefik v2.
    const COMMON_LINE: &str = concat!(
        r#"203.0.113.4 - - [12/Mar/2024:08:01:02 +0000] "GET /api/v2/items?page=3 HTTP/1.1" 200 1532 "#,
        r#""https://app.example/" "Mozilla/5.0 (X11)" 4711 "api@docker" "http://10.0.0.12:8080" 37ms"#
    );

    /// 2024-03-12T08:01:02Z, the time of [`COMMON_LINE`].
    const MAR_12_2024: i64 = 1_710_230_462_000_000;

    /// A JSON record of Traefik v2.
    const JSON_LINE: &str = concat!(
        r#"{"ClientAddr":"10.0.0.8:51234","ClientHost":"198.51.100.20","ClientPort":"51234","#,
        r#""ClientUsername":"-","DownstreamContentSize":88,"DownstreamStatus":201,"Duration":59518533,"#,
        r#""OriginContentSize":88,"OriginDuration":59428568,"OriginStatus":201,"Overhead":89965,"#,
        r#""RequestAddr":"api.example.com","RequestContentSize":42,"RequestCount":75,"#,
        r#""RequestHost":"api.example.com","RequestMethod":"POST","RequestPath":"/v1/orders?dry=1","#,
        r#""RequestPort":"-","RequestProtocol":"HTTP/2.0","RequestScheme":"https","RetryAttempts":0,"#,
        r#""RouterName":"orders@kubernetescrd","ServiceAddr":"10.1.25.243:80","#,
        r#""ServiceName":"orders-80@kubernetescrd","ServiceURL":{"Scheme":"http","Opaque":"","User":null,"#,
        r#""Host":"10.1.25.243:80","Path":"","RawPath":"","ForceQuery":false,"RawQuery":"","Fragment":""},"#,
        r#""StartLocal":"2024-02-09T12:53:32.609696286+01:00","StartUTC":"2024-02-09T11:53:32.609696286Z","#,
        r#""entryPointName":"websecure","level":"info","msg":"","#,
        r#""request_User-Agent":"okhttp/4.12","request_X-Request-Id":"req-77","#,
        r#""downstream_Content-Type":"application/json","time":"2024-02-09T11:53:32Z"}"#
    );

    /// 2024-02-09T11:53:32.609696Z, the start time of [`JSON_LINE`].
    const FEB_9_2024: i64 = 1_707_479_612_609_696;

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
    fn common_line_maps_columns() {
        let event = parse_event(COMMON_LINE);
        assert_eq!(event.source, "traefik");
        assert_eq!(event.time, MAR_12_2024);
        assert_eq!(event.client_ip.as_deref(), Some("203.0.113.4"));
        assert_eq!(event.method.as_deref(), Some("GET"));
        assert_eq!(event.path.as_deref(), Some("/api/v2/items"));
        assert_eq!(event.query.as_deref(), Some("page=3"));
        assert_eq!(event.http_version.as_deref(), Some("HTTP/1.1"));
        assert_eq!(event.status, Some(200));
        assert_eq!(event.response_bytes, Some(1532));
        assert_eq!(event.referer.as_deref(), Some("https://app.example/"));
        assert_eq!(event.user_agent.as_deref(), Some("Mozilla/5.0 (X11)"));
        assert_eq!(event.duration_ms, Some(37.0));
        assert_eq!(
            attributes(&event),
            [
                ("request_count", "4711"),
                ("router_name", "api@docker"),
                ("service_url", "http://10.0.0.12:8080"),
            ]
        );
    }

    #[test]
    fn quotes_in_user_agent_do_not_shift_fields() {
        for agent in [
            r#"Bot "quoted" agent"#,
            r#"a" "b"#,
            r#"x" 12 "y"#,
            "\"",
            r#"" 5 ""#,
        ] {
            let line = COMMON_LINE.replacen("Mozilla/5.0 (X11)", agent, 1);
            let event = parse_event(&line);
            assert_eq!(event.user_agent.as_deref(), Some(agent), "agent {agent:?}");
            assert_eq!(
                event.referer.as_deref(),
                Some("https://app.example/"),
                "agent {agent:?}"
            );
            assert_eq!(
                event.attribute("request_count"),
                Some("4711"),
                "agent {agent:?}"
            );
            assert_eq!(
                event.attribute("router_name"),
                Some("api@docker"),
                "agent {agent:?}"
            );
            assert_eq!(
                event.attribute("service_url"),
                Some("http://10.0.0.12:8080"),
                "agent {agent:?}"
            );
            assert_eq!(event.duration_ms, Some(37.0), "agent {agent:?}");
        }
    }

    #[test]
    fn router_without_closing_quote() {
        let line = COMMON_LINE.replacen(r#""api@docker" "#, r#""api@docker "#, 1);
        let event = parse_event(&line);
        assert_eq!(event.attribute("router_name"), Some("api@docker"));
        assert_eq!(
            event.attribute("service_url"),
            Some("http://10.0.0.12:8080")
        );
        assert_eq!(event.duration_ms, Some(37.0));
    }

    #[test]
    fn v1_frontend_with_spaces() {
        let line = COMMON_LINE.replacen(
            r#""api@docker" "http://10.0.0.12:8080""#,
            r#""backend not found" "-""#,
            1,
        );
        let event = parse_event(&line);
        assert_eq!(event.attribute("router_name"), Some("backend not found"));
        assert_eq!(event.attribute("service_url"), None);
    }

    #[test]
    fn quote_in_request_path() {
        let line = COMMON_LINE.replacen("/api/v2/items?page=3", r#"/q?x="a b""#, 1);
        let event = parse_event(&line);
        assert_eq!(event.path.as_deref(), Some("/q"));
        assert_eq!(event.query.as_deref(), Some(r#"x="a b""#));
        assert_eq!(event.status, Some(200));
    }

    #[test]
    fn dashes_are_unknown() {
        let line = COMMON_LINE
            .replacen("- -", "- alice", 1)
            .replacen(" 1532 ", " - ", 1)
            .replacen(r#""https://app.example/""#, r#""-""#, 1);
        let event = parse_event(&line);
        assert_eq!(event.response_bytes, None);
        assert_eq!(event.referer, None);
        assert_eq!(event.attribute("remote_user"), Some("alice"));
    }

    #[test]
    fn json_record_maps_columns() {
        let event = parse_event(JSON_LINE);
        assert_eq!(event.source, "traefik");
        assert_eq!(event.time, FEB_9_2024);
        assert_eq!(event.client_ip.as_deref(), Some("10.0.0.8"));
        assert_eq!(event.client_port, Some(51234));
        assert_eq!(event.method.as_deref(), Some("POST"));
        assert_eq!(event.path.as_deref(), Some("/v1/orders"));
        assert_eq!(event.query.as_deref(), Some("dry=1"));
        assert_eq!(event.http_version.as_deref(), Some("HTTP/2.0"));
        assert_eq!(event.scheme.as_deref(), Some("https"));
        assert_eq!(event.host.as_deref(), Some("api.example.com"));
        assert_eq!(event.status, Some(201));
        assert_eq!(event.upstream_status, Some(201));
        assert_eq!(event.request_bytes, Some(42));
        assert_eq!(event.response_bytes, Some(88));
        assert_eq!(event.duration_ms, Some(59.518533));
        assert_eq!(event.upstream.as_deref(), Some("10.1.25.243:80"));
        assert_eq!(event.user_agent.as_deref(), Some("okhttp/4.12"));
        assert_eq!(event.request_id.as_deref(), Some("req-77"));
    }

    #[test]
    fn json_record_keeps_other_keys() {
        let event = parse_event(JSON_LINE);
        let expected = [
            ("OriginContentSize", "88"),
            ("OriginDuration", "59428568"),
            ("Overhead", "89965"),
            ("RequestAddr", "api.example.com"),
            ("RequestCount", "75"),
            ("RetryAttempts", "0"),
            ("RouterName", "orders@kubernetescrd"),
            ("ServiceName", "orders-80@kubernetescrd"),
            ("ServiceURL", "http://10.1.25.243:80"),
            ("entryPointName", "websecure"),
            ("level", "info"),
            ("downstream_Content-Type", "application/json"),
            ("ClientHost", "198.51.100.20"),
        ];
        assert_eq!(attributes(&event), expected);
    }

    #[test]
    fn json_start_local_and_time_fallbacks() {
        let without_utc =
            JSON_LINE.replacen(r#""StartUTC":"2024-02-09T11:53:32.609696286Z","#, "", 1);
        assert_eq!(parse_event(&without_utc).time, FEB_9_2024);

        let only_time = without_utc.replacen(
            r#""StartLocal":"2024-02-09T12:53:32.609696286+01:00","#,
            "",
            1,
        );
        assert_eq!(parse_event(&only_time).time, 1_707_479_612_000_000);

        let no_time = only_time.replacen(r#","time":"2024-02-09T11:53:32Z""#, "", 1);
        assert_eq!(
            rejection(&no_time),
            "missing the request time: none of StartUTC, StartLocal or time is present"
        );
    }

    #[test]
    fn json_v1_record() {
        let line = concat!(
            r#"{"BackendAddr":"10.10.10.10:80","BackendName":"backend-web","BackendURL":{"Scheme":"http","#,
            r#""Host":"10.10.10.10:80","Path":""},"ClientAddr":"[::1]:56348","ClientHost":"::1","#,
            r#""ClientPort":"56348","DownstreamStatus":404,"FrontendName":"backend not found","#,
            r#""RequestLine":"GET /missing HTTP/1.1","OriginStatus":0,"#,
            r#""StartUTC":"2021-03-16T18:56:54.735539596Z"}"#
        );
        let event = parse_event(line);
        assert_eq!(event.client_ip.as_deref(), Some("::1"));
        assert_eq!(event.client_port, Some(56348));
        assert_eq!(event.upstream.as_deref(), Some("10.10.10.10:80"));
        assert_eq!(event.upstream_status, None);
        assert_eq!(event.method.as_deref(), Some("GET"));
        assert_eq!(event.path.as_deref(), Some("/missing"));
        assert_eq!(
            attributes(&event),
            [
                ("BackendName", "backend-web"),
                ("BackendURL", "http://10.10.10.10:80"),
                ("FrontendName", "backend not found"),
            ]
        );
    }

    #[test]
    fn json_client_from_host_and_port() {
        let line = r#"{"ClientHost":"192.0.2.1","ClientPort":"4000","DownstreamStatus":200,"time":"2024-02-09T11:53:32Z"}"#;
        let event = parse_event(line);
        assert_eq!(event.client_ip.as_deref(), Some("192.0.2.1"));
        assert_eq!(event.client_port, Some(4000));
        assert!(event.attributes.is_empty());
    }

    #[test]
    fn json_headers_and_nested_objects() {
        let line = concat!(
            r#"{"DownstreamStatus":200,"time":"2024-02-09T11:53:32Z","request_Referer":"https://a.example/","#,
            r#""request_X-Forwarded-For":"198.51.100.1, 10.0.0.1","request_Authorization":"Bearer abc","#,
            r#""TLS":{"Version":"1.3","Cipher":"TLS_AES_128_GCM_SHA256"}}"#
        );
        let event = parse_event(line);
        assert_eq!(event.referer.as_deref(), Some("https://a.example/"));
        assert_eq!(
            event.forwarded_for.as_deref(),
            Some("198.51.100.1, 10.0.0.1")
        );
        assert_eq!(
            attributes(&event),
            [
                ("request_Authorization", "Bearer abc"),
                ("TLS.Version", "1.3"),
                ("TLS.Cipher", "TLS_AES_128_GCM_SHA256"),
            ]
        );
    }

    #[test]
    fn rejects_other_formats() {
        assert_eq!(
            rejection(
                r#"127.0.0.1 - frank [10/Oct/2000:13:55:36 -0700] "GET /apache_pb.gif HTTP/1.0" 200 2326"#
            ),
            "expected `\"request\" status size \"referer\"` after the time"
        );
        assert_eq!(
            rejection(
                r#"1.2.3.4 - - [10/Oct/2000:13:55:36 -0700] "GET / HTTP/1.0" 200 2326 "-" "curl/8""#
            ),
            "expected the duration in milliseconds, such as `12ms`, at the end of the line"
        );
        assert_eq!(
            rejection(concat!(
                r#"192.168.65.3 - - [24/Jan/2021:19:25:33 +0000] "GET / HTTP/1.1" 200 612 "-" "curl/7.64.1" "#,
                r#"95 0.003 [default-orders-80] [] 10.1.0.7:8080 612 0.002 200 5a2b3c4d"#
            )),
            "expected the duration in milliseconds, such as `12ms`, at the end of the line"
        );
        assert_eq!(
            rejection(
                r#"[2019-04-08T16:16:55.931Z] "GET /service/1 HTTP/1.1" 200 - 0 89 5 4 "-" "curl/7.54.0" "c2" "localhost:8000" "172.27.0.3:80""#
            ),
            "expected `client - username [time]` at the start of a Traefik access log line"
        );
        assert_eq!(
            rejection(
                r#"{"authority":"reviews:9080","response_code":200,"start_time":"2022-09-08T12:51:05.656Z"}"#
            ),
            "not a Traefik access log record: none of DownstreamStatus, OriginStatus, RouterName, FrontendName or RequestCount is present"
        );
    }

    #[test]
    fn rejects_broken_records() {
        assert_eq!(
            rejection(&COMMON_LINE.replacen("12/Mar/2024", "12/Foo/2024", 1)),
            r#"invalid timestamp "12/Foo/2024:08:01:02 +0000" in field 4 (time)"#
        );
        assert_eq!(
            rejection(&COMMON_LINE.replacen(r#" 4711 "#, " x ", 1)),
            "expected `\"user_agent\" request_count \"router\" \"service_url\"` at the end of the line"
        );
        assert_eq!(
            rejection(&COMMON_LINE.replacen(r#""https://app.example/" "#, "", 1)),
            r#"cannot separate the quoted referer and user agent in "\"Mozilla/5.0 (X11)\"""#
        );
        assert_eq!(
            rejection(r#"{"DownstreamStatus":"OK","time":"2024-02-09T11:53:32Z"}"#),
            r#"invalid number "OK" in key DownstreamStatus"#
        );
        assert_eq!(
            rejection(r#"{"DownstreamStatus":200,"StartUTC":"yesterday"}"#),
            r#"invalid timestamp "yesterday" in key StartUTC"#
        );
    }

    #[test]
    fn odd_input_does_not_panic() {
        let samples = [
            "",
            "{",
            "[]",
            "a - - [12/Mar/2024:08:01:02 +0000]",
            "a - - [12/Mar/2024:08:01:02 +0000] \"",
            "a - - [12/Mar/2024:08:01:02 +0000] \"\" 200 1 \"",
            "a - - [12/Mar/2024:08:01:02 +0000] \"\" 200 1 \"\" 1 \"\" 1ms",
            "a - - [12/Mar/2024:08:01:02 +0000] \"\" 200 1 \"\" \"\" 1 \"\" \"\" ms",
            "a - - [12/Mar/2024:08:01:02 +0000] \"\" 200 1 \"\" \"\" 1 \" \" 1ms",
            "a - - [12/Mar/2024:08:01:02 +0000] \"ü\" 200 1 \"ü\" \"ü\" 1 \"ü\" \"ü\" 1ms",
            r#"{"DownstreamStatus":200,"Duration":1e400,"time":"2024-02-09T11:53:32Z"}"#,
            r#"{"DownstreamStatus":99999999999,"time":"2024-02-09T11:53:32Z"}"#,
            r#"{"DownstreamStatus":200,"ServiceURL":{},"time":"2024-02-09T11:53:32Z"}"#,
        ];
        for sample in samples {
            let _ = parse_record(sample);
        }
    }
}
