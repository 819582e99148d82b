//! AWS API Gateway access logs (`aws_apigateway`), for REST, HTTP and WebSocket
//! APIs, in JSON or in the CLF-style formats that the API Gateway console offers.
//!
//! In JSON, each line is one object whose keys the operator chose when writing
//! the log format from `$context` variables, so any key may be missing. Nested
//! objects are flattened with `.`, so `{"identity": {"sourceIp": ...}}` reads
//! as `identity.sourceIp`. Keys with a column of their own:
//!
//! | key | column |
//! |---|---|
//! | `requestId` (else `extendedRequestId`) | `request_id` |
//! | `ip`, `sourceIp`, `identity.sourceIp` | `client_ip` |
//! | `requestTimeEpoch`, else `requestTime` | `time` |
//! | `httpMethod` | `method` |
//! | `path` | `path` and `query` |
//! | `protocol` | `http_version` |
//! | `status` | `status` |
//! | `responseLength` | `response_bytes` |
//! | `responseLatency` (ms) | `duration_ms` |
//! | `integrationStatus`, `integration.status` | `upstream_status` |
//! | `domainName` | `host` |
//! | `userAgent`, `identity.userAgent` | `user_agent` |
//! | `xrayTraceId` | `trace_id` |
//! | `apiKeyId`, `identity.apiKeyId`, else `authorizer.principalId`, `principalId` | `consumer` (kind `gateway`) |
//!
//! `time` is when API Gateway received the request (the START).
//! `requestTime` is `10/Jun/2023:15:36:28 +0000`. `requestTimeEpoch` is in
//! milliseconds for REST and WebSocket APIs and in seconds for HTTP APIs, and
//! `resolve_epoch` describes how the unit is chosen. `resourcePath`, `routeKey`,
//! `eventType`, `connectionId` and `integrationLatency` go to attributes
//! `resource_path`, `route_key`, `event_type`, `connection_id` and
//! `integration_latency`. Every other key goes to an attribute under its
//! flattened name. Values `-`, empty and `null` are left out, and other values
//! are kept as text. Numbers sent as strings (`"status": "200"`) are read as
//! numbers.
//!
//! API Gateway fills the log format template without escaping, so a value that
//! contains `"` or `\` makes the line invalid JSON. Such a line is read by its
//! key names instead (see the `recover` module) and gets attribute
//! `invalid_json` = `true`.
//!
//! The CLF-style formats (see the `clf` module) give the same columns, read
//! from their positions.
//!
//! WebSocket records (`eventType` CONNECT, MESSAGE or DISCONNECT) are API calls
//! too. They usually have no method or path.

mod clf;
mod recover;

use std::borrow::Cow;

use crate::event::Event;
use crate::format::Format;
use crate::formats::json::{Json, flatten};
use crate::parse::{LineOutcome, ParseContext};
use crate::text::{parse_clf_time, parse_iso8601, quote_excerpt, set_client_address};

/// Epoch values at or above this are milliseconds. As seconds it is the year
/// 5138, while as milliseconds it is March 1973, before API Gateway existed.
const EPOCH_MILLIS_THRESHOLD: f64 = 1e11;

/// Times, in microseconds, that the unit of the API kind must give for
/// [`resolve_epoch`] to use it: from 2000-01-01 to 2100-01-01.
const PLAUSIBLE_MICROS: std::ops::Range<f64> = 946_684_800e6..4_102_444_800e6;

const CONSUMER_KIND: &str = "gateway";

/// Attribute that marks a record read from invalid JSON by its key names.
const INVALID_JSON_ATTRIBUTE: &str = "invalid_json";

/// Parses one line of an API Gateway access log.
pub fn parse_line(line: &str, _ctx: &ParseContext<'_>) -> LineOutcome {
    parse_record(line)
}

/// Parses one line without the per-input settings, as format detection needs.
pub(crate) fn parse_record(line: &str) -> LineOutcome {
    let line = line.strip_prefix('\u{feff}').unwrap_or(line);
    match build_event(line.trim()) {
        Ok(event) => LineOutcome::Event(Box::new(event)),
        Err(reason) => LineOutcome::Rejected(reason),
    }
}

fn build_event(line: &str) -> Result<Event, String> {
    if clf::looks_like_clf(line) {
        return clf::build_event(line);
    }
    match serde_json::from_str::<Json<'_>>(line) {
        Ok(value) => build_json_event(&value),
        Err(error) => {
            recover::build_event(line).unwrap_or_else(|| Err(format!("invalid JSON: {error}")))
        }
    }
}

fn build_json_event(value: &Json<'_>) -> Result<Event, String> {
    let Json::Object(members) = value else {
        return Err(format!("expected a JSON object, found {}", value.kind()));
    };
    let mut leaves = Vec::with_capacity(members.len());
    flatten(None, members, &mut leaves);
    if !leaves.iter().any(|(key, _)| is_api_gateway_key(key)) {
        return Err("not an API Gateway access log record".to_string());
    }

    let mut record = Record::default();
    for (key, value) in &leaves {
        if let Some(text) = value.as_text() {
            record.apply(key, text)?;
        }
    }
    record.finish()
}

/// Returns whether a flattened key is one of the `$context` variables that mark an API Gateway record.
fn is_api_gateway_key(key: &str) -> bool {
    const KEYS: [&str; 19] = [
        "requestId",
        "extendedRequestId",
        "requestTime",
        "requestTimeEpoch",
        "httpMethod",
        "resourcePath",
        "resourceId",
        "routeKey",
        "apiId",
        "stage",
        "domainName",
        "domainPrefix",
        "connectionId",
        "eventType",
        "responseLength",
        "responseLatency",
        "integrationLatency",
        "integrationStatus",
        "xrayTraceId",
    ];
    KEYS.contains(&key)
        || key.starts_with("identity.")
        || key.starts_with("authorizer.")
        || key.starts_with("integration.")
}

/// The kind of API a record comes from, as far as its keys tell.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
enum ApiKind {
    #[default]
    Unknown,
    /// REST APIs log `resourcePath` and `resourceId`.
    Rest,
    /// HTTP APIs log `routeKey` without the WebSocket keys.
    Http,
    /// WebSocket APIs log `eventType` and `connectionId`.
    WebSocket,
}

/// The event being built, with the values that are only resolved after every key is seen.
#[derive(Default)]
struct Record {
    event: Event,
    /// `requestTimeEpoch` as logged, in an undecided unit.
    time_epoch: Option<f64>,
    time_text: Option<i64>,
    has_route_key: bool,
    kind: ApiKind,
    extended_request_id: Option<String>,
    api_key_id: Option<String>,
    /// Key and value of the authorizer's principal.
    principal: Option<(String, String)>,
}

impl Record {
    /// Stores one flattened key in its column or as an attribute.
    fn apply(&mut self, key: &str, text: Cow<'_, str>) -> Result<(), String> {
        if text.is_empty() || text == "-" {
            return Ok(());
        }
        self.note_api_kind(key);
        let event = &mut self.event;
        match key {
            "requestId" => event.request_id = Some(text.into_owned()),
            "extendedRequestId" => {
                self.extended_request_id = Some(text.to_string());
                push_attribute(event, key, text);
            }
            "ip" | "sourceIp" | "identity.sourceIp" => set_client_address(event, &text),
            "requestTimeEpoch" => self.time_epoch = Some(parse_epoch(key, &text)?),
            "requestTime" => self.time_text = Some(parse_request_time(key, &text)?),
            "httpMethod" => event.method = Some(text.into_owned()),
            "path" => set_path(event, &text),
            "protocol" => event.http_version = Some(text.into_owned()),
            "status" => event.status = Some(parse_integer(key, &text)?),
            "responseLength" => event.response_bytes = Some(parse_integer(key, &text)?),
            "responseLatency" => event.duration_ms = Some(parse_float(key, &text)?),
            "integrationStatus" | "integration.status" => {
                event.upstream_status = Some(parse_integer(key, &text)?);
            }
            "domainName" => event.host = Some(text.into_owned()),
            "userAgent" | "identity.userAgent" => event.user_agent = Some(text.into_owned()),
            "xrayTraceId" => event.trace_id = Some(text.into_owned()),
            "apiKeyId" | "identity.apiKeyId" => self.api_key_id = Some(text.into_owned()),
            "authorizer.principalId" | "principalId" => {
                self.principal = Some((key.to_string(), text.into_owned()));
            }
            "resourcePath" => push_attribute(event, "resource_path", text),
            "routeKey" => push_attribute(event, "route_key", text),
            "eventType" => push_attribute(event, "event_type", text),
            "connectionId" => push_attribute(event, "connection_id", text),
            "integrationLatency" => push_attribute(event, "integration_latency", text),
            _ => push_attribute(event, key, text),
        }
        Ok(())
    }

    /// Updates the API kind from a key that only one kind of API logs.
    fn note_api_kind(&mut self, key: &str) {
        match key {
            "eventType" | "connectionId" => self.kind = ApiKind::WebSocket,
            "resourcePath" | "resourceId" if self.kind != ApiKind::WebSocket => {
                self.kind = ApiKind::Rest;
            }
            "routeKey" => self.has_route_key = true,
            _ => {}
        }
    }

    /// Resolves time, request id and consumer, rejecting a record without a time.
    ///
    /// When both an API key and a principal are logged, the principal stays an attribute.
    fn finish(self) -> Result<Event, String> {
        let Record {
            mut event,
            time_epoch,
            time_text,
            has_route_key,
            kind,
            extended_request_id,
            api_key_id,
            principal,
        } = self;
        let kind = match kind {
            ApiKind::Unknown if has_route_key => ApiKind::Http,
            kind => kind,
        };
        event.time = time_epoch
            .map(|epoch| resolve_epoch(epoch, time_text, kind))
            .or(time_text)
            .ok_or("missing the request time: add $context.requestTime or $context.requestTimeEpoch to the access log format")?;
        event.source = Format::AwsApiGateway.name().to_string();
        if event.request_id.is_none() {
            event.request_id = extended_request_id;
        }
        match (api_key_id, principal) {
            (Some(api_key), principal) => {
                event.consumer = Some(api_key);
                event.attributes.extend(principal);
            }
            (None, Some((_, principal))) => event.consumer = Some(principal),
            (None, None) => {}
        }
        if event.consumer.is_some() {
            event.consumer_kind = Some(CONSUMER_KIND.to_string());
        }
        Ok(event)
    }
}

fn push_attribute(event: &mut Event, key: &str, value: Cow<'_, str>) {
    event.attributes.push((key.to_string(), value.into_owned()));
}

/// Sets `path` and `query` from a path that may carry a query string.
fn set_path(event: &mut Event, text: &str) {
    match text.split_once('?') {
        Some((path, query)) => {
            event.path = Some(path.to_string());
            event.query = Some(query.to_string());
        }
        None => event.path = Some(text.to_string()),
    }
}

/// Parses `requestTimeEpoch`, a non-negative number in seconds or milliseconds.
fn parse_epoch(key: &str, text: &str) -> Result<f64, String> {
    let invalid = || format!("invalid timestamp {} in key {key}", quote_excerpt(text));
    let value: f64 = text.trim().parse().map_err(|_| invalid())?;
    // Times past the year 294,000 do not fit in i64 microseconds, in either unit.
    if !value.is_finite() || value < 0.0 || value * 1e6 >= i64::MAX as f64 {
        return Err(invalid());
    }
    Ok(value)
}

/// Converts `requestTimeEpoch` to microseconds, choosing its unit.
///
/// REST and WebSocket APIs log milliseconds and HTTP APIs seconds, so:
/// 1. When the record also has `requestTime`, the unit that lands closer to it wins.
/// 2. Otherwise the unit of the API kind, shown by its keys (`resourcePath` or
///    `resourceId` for REST, `eventType` or `connectionId` for WebSocket,
///    `routeKey` alone for HTTP), when that gives a time from 2000 to 2100.
/// 3. Otherwise the magnitude: at least [`EPOCH_MILLIS_THRESHOLD`] is milliseconds.
fn resolve_epoch(value: f64, request_time: Option<i64>, kind: ApiKind) -> i64 {
    let from_seconds = value * 1e6;
    let from_millis = value * 1e3;
    let micros = if let Some(request_time) = request_time {
        let request_time = request_time as f64;
        if (from_millis - request_time).abs() < (from_seconds - request_time).abs() {
            from_millis
        } else {
            from_seconds
        }
    } else {
        let by_kind = match kind {
            ApiKind::Rest | ApiKind::WebSocket => Some(from_millis),
            ApiKind::Http => Some(from_seconds),
            ApiKind::Unknown => None,
        };
        match by_kind.filter(|micros| PLAUSIBLE_MICROS.contains(micros)) {
            Some(micros) => micros,
            None if value >= EPOCH_MILLIS_THRESHOLD => from_millis,
            None => from_seconds,
        }
    };
    micros.round() as i64
}

/// Parses `requestTime`, which is a CLF time (`10/Jun/2023:15:36:28 +0000`) or ISO 8601.
fn parse_request_time(key: &str, text: &str) -> Result<i64, String> {
    parse_clf_time(text)
        .or_else(|| parse_iso8601(text))
        .ok_or_else(|| format!("invalid timestamp {} in key {key}", quote_excerpt(text)))
}

fn parse_integer<T: std::str::FromStr>(key: &str, text: &str) -> Result<T, String> {
    text.trim()
        .parse()
        .map_err(|_| format!("invalid number {} in key {key}", quote_excerpt(text)))
}

fn parse_float(key: &str, text: &str) -> Result<f64, String> {
    text.trim()
        .parse::<f64>()
        .ok()
        .filter(|value| value.is_finite())
        .ok_or_else(|| format!("invalid number {} in key {key}", quote_excerpt(text)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::formats::test_support::{expect_event, expect_rejection};

    fn parse_event(line: &str) -> Event {
        expect_event(line, parse_record(line))
    }

    fn rejection(line: &str) -> String {
        expect_rejection(line, parse_record(line))
    }

    fn attribute<'a>(event: &'a Event, name: &str) -> Option<&'a str> {
        event.attribute(name)
    }

    #[test]
    fn rest_json_preset() {
        let event = parse_event(
            r#"{"requestId":"48752d0f-c99d-4cfa-a5a7-f3c6834d19e5","ip":"1.128.0.0","caller":"-","user":"-","requestTime":"10/Jun/2023:15:36:28 +0000","httpMethod":"GET","resourcePath":"/pets","status":"200","protocol":"HTTP/1.1","responseLength":"184"}"#,
        );
        assert_eq!(event.source, "aws_apigateway");
        assert_eq!(
            event.request_id.as_deref(),
            Some("48752d0f-c99d-4cfa-a5a7-f3c6834d19e5")
        );
        assert_eq!(event.client_ip.as_deref(), Some("1.128.0.0"));
        // 2023-06-10T15:36:28Z
        assert_eq!(event.time, 1_686_411_388_000_000);
        assert_eq!(event.method.as_deref(), Some("GET"));
        assert_eq!(event.path, None);
        assert_eq!(event.status, Some(200));
        assert_eq!(event.http_version.as_deref(), Some("HTTP/1.1"));
        assert_eq!(event.response_bytes, Some(184));
        assert_eq!(
            event.attributes,
            vec![("resource_path".to_string(), "/pets".to_string())]
        );
    }

    #[test]
    fn epoch_seconds_and_millis() {
        let seconds = parse_event(r#"{"requestTimeEpoch":"1663811436","path":"/asdf"}"#);
        assert_eq!(seconds.time, 1_663_811_436_000_000);
        let millis = parse_event(r#"{"requestTimeEpoch":1663964129948,"path":"/test/pets/1"}"#);
        assert_eq!(millis.time, 1_663_964_129_948_000);
    }

    #[test]
    fn epoch_wins_over_request_time() {
        let event = parse_event(
            r#"{"requestTime":"23/Sep/2022:20:15:29 +0000","requestTimeEpoch":1663964129948}"#,
        );
        assert_eq!(event.time, 1_663_964_129_948_000);
    }

    #[test]
    fn path_keeps_encoding_and_splits_query() {
        let event = parse_event(
            r#"{"requestTimeEpoch":1663964860060,"path":"/test/pets/%7BpetId%7D?limit=5&page=2"}"#,
        );
        assert_eq!(event.path.as_deref(), Some("/test/pets/%7BpetId%7D"));
        assert_eq!(event.query.as_deref(), Some("limit=5&page=2"));
    }

    #[test]
    fn http_api_fields() {
        let event = parse_event(concat!(
            r#"{"requestId":"Y1qkyit4CYcEP2g=","sourceIp":"2001:0db8::0001","requestTime":"22/Sep/2022:01:45:02 +0000","#,
            r#""httpMethod":"POST","routeKey":"POST /orders","status":201,"responseLatency":87,"#,
            r#""integrationLatency":80,"integrationStatus":"201","domainName":"api.example.com","#,
            r#""userAgent":"curl/8.0","xrayTraceId":"Root=1-632bbf8e-1a2b","protocol":"HTTP/1.1"}"#
        ));
        assert_eq!(event.client_ip.as_deref(), Some("2001:db8::1"));
        assert_eq!(event.status, Some(201));
        assert_eq!(event.duration_ms, Some(87.0));
        assert_eq!(event.upstream_status, Some(201));
        assert_eq!(event.host.as_deref(), Some("api.example.com"));
        assert_eq!(event.user_agent.as_deref(), Some("curl/8.0"));
        assert_eq!(event.trace_id.as_deref(), Some("Root=1-632bbf8e-1a2b"));
        assert_eq!(attribute(&event, "route_key"), Some("POST /orders"));
        assert_eq!(attribute(&event, "integration_latency"), Some("80"));
    }

    #[test]
    fn nested_keys_are_flattened() {
        let event = parse_event(concat!(
            r#"{"requestId":"r1","requestTime":"22/Sep/2022:01:45:02 +0000","#,
            r#""identity":{"sourceIp":"10.1.2.3","userAgent":"ua/1","caller":null},"#,
            r#""authorizer":{"principalId":"user-42","claims":{"scope":"read"}},"#,
            r#""error":{"message":"Unauthorized","responseType":"-"},"tags":["a",1,true]}"#
        ));
        assert_eq!(event.client_ip.as_deref(), Some("10.1.2.3"));
        assert_eq!(event.user_agent.as_deref(), Some("ua/1"));
        assert_eq!(event.consumer.as_deref(), Some("user-42"));
        assert_eq!(event.consumer_kind.as_deref(), Some("gateway"));
        let expected = [
            ("authorizer.claims.scope", "read"),
            ("error.message", "Unauthorized"),
            ("tags", r#"["a",1,true]"#),
        ];
        let actual: Vec<(&str, &str)> = event
            .attributes
            .iter()
            .map(|(key, value)| (key.as_str(), value.as_str()))
            .collect();
        assert_eq!(actual, expected);
    }

    #[test]
    fn api_key_wins_consumer() {
        let event = parse_event(
            r#"{"requestTimeEpoch":1663965474565,"apiKeyId":"qqvqzk33df","principalId":"user-42"}"#,
        );
        assert_eq!(event.consumer.as_deref(), Some("qqvqzk33df"));
        assert_eq!(event.consumer_kind.as_deref(), Some("gateway"));
        assert_eq!(attribute(&event, "principalId"), Some("user-42"));

        let event = parse_event(
            r#"{"requestTimeEpoch":1663965474565,"identity":{"apiKeyId":"k2"},"userAccountId":"-"}"#,
        );
        assert_eq!(event.consumer.as_deref(), Some("k2"));
        assert_eq!(attribute(&event, "userAccountId"), None);
    }

    #[test]
    fn no_consumer_without_key_or_principal() {
        let event =
            parse_event(r#"{"requestTimeEpoch":1663965474565,"apiKeyId":"-","user":"AIDA"}"#);
        assert_eq!(event.consumer, None);
        assert_eq!(event.consumer_kind, None);
        assert_eq!(attribute(&event, "user"), Some("AIDA"));
    }

    #[test]
    fn websocket_connect() {
        let event = parse_event(
            r#"{"requestId":"Iq9gwFDNoAMFo1A=","ip":"1.128.0.0","requestTime":"26/Jul/2023:12:20:46 +0000","eventType":"CONNECT","routeKey":"$connect","status":"500","connectionId":"Iq8gj1UmIAMCKpA="}"#,
        );
        assert_eq!(event.method, None);
        assert_eq!(event.path, None);
        assert_eq!(event.status, Some(500));
        assert_eq!(attribute(&event, "event_type"), Some("CONNECT"));
        assert_eq!(attribute(&event, "route_key"), Some("$connect"));
        assert_eq!(attribute(&event, "connection_id"), Some("Iq8gj1UmIAMCKpA="));
    }

    #[test]
    fn redacted_values_are_kept() {
        let event = parse_event(
            r#"{"requestId": "REDACTED","ip": "1.128.0.0","requestTime": "25/Jul/2023:16:26:02 +0000","connectionId": "REDACTED"}"#,
        );
        assert_eq!(event.request_id.as_deref(), Some("REDACTED"));
        assert_eq!(attribute(&event, "connection_id"), Some("REDACTED"));
    }

    #[test]
    fn extended_request_id_fills_missing_request_id() {
        let event = parse_event(
            r#"{"extendedRequestId":"Y1rY6giPiYcEPbQ=","requestTimeEpoch":"1663811436"}"#,
        );
        assert_eq!(event.request_id.as_deref(), Some("Y1rY6giPiYcEPbQ="));
        assert_eq!(
            attribute(&event, "extendedRequestId"),
            Some("Y1rY6giPiYcEPbQ=")
        );
    }

    #[test]
    fn dash_and_null_values_are_unknown() {
        let event = parse_event(
            r#"{"requestTimeEpoch":"1663811436","status":"-","responseLength":null,"ip":"-","resourcePath":"-"}"#,
        );
        assert_eq!(event.status, None);
        assert_eq!(event.response_bytes, None);
        assert_eq!(event.client_ip, None);
        assert!(event.attributes.is_empty());
    }

    #[test]
    fn non_ip_source_goes_to_remote_host() {
        let event =
            parse_event(r#"{"requestTimeEpoch":"1663811436","ip":"test-invoke-source-ip"}"#);
        assert_eq!(event.client_ip, None);
        assert_eq!(
            attribute(&event, "remote_host"),
            Some("test-invoke-source-ip")
        );
    }

    #[test]
    fn escaped_keys_and_values() {
        let event =
            parse_event(r#"{"requestTimeEpoch":1,"user\u0041gent":"a\"b","path":"/caf\u00e9"}"#);
        assert_eq!(event.user_agent.as_deref(), Some("a\"b"));
        assert_eq!(event.path.as_deref(), Some("/café"));
        assert_eq!(event.time, 1_000_000);
    }

    #[test]
    fn rejects_missing_time() {
        assert_eq!(
            rejection(r#"{"requestId":"r1","status":"200"}"#),
            "missing the request time: add $context.requestTime or $context.requestTimeEpoch to the access log format"
        );
        assert_eq!(
            rejection(r#"{"requestId":"r1","requestTime":"-"}"#),
            "missing the request time: add $context.requestTime or $context.requestTimeEpoch to the access log format"
        );
    }

    #[test]
    fn rejects_invalid_values() {
        assert_eq!(
            rejection(r#"{"requestTime":"10/Jun/2023:25:36:28 +0000"}"#),
            r#"invalid timestamp "10/Jun/2023:25:36:28 +0000" in key requestTime"#
        );
        assert_eq!(
            rejection(r#"{"requestTimeEpoch":"soon"}"#),
            r#"invalid timestamp "soon" in key requestTimeEpoch"#
        );
        assert_eq!(
            rejection(r#"{"requestTimeEpoch":"1e300"}"#),
            r#"invalid timestamp "1e300" in key requestTimeEpoch"#
        );
        assert_eq!(
            rejection(r#"{"requestTimeEpoch":1,"status":"OK"}"#),
            r#"invalid number "OK" in key status"#
        );
    }

    #[test]
    fn rejects_other_json() {
        assert_eq!(
            rejection(r#"{"level":"info","msg":"started","status":200}"#),
            "not an API Gateway access log record"
        );
        assert_eq!(rejection("[1,2]"), "expected a JSON object, found an array");
        assert_eq!(rejection("{}"), "not an API Gateway access log record");
    }

    #[test]
    fn rejects_non_json() {
        let reason = rejection("GET / HTTP/1.0 200 1");
        assert!(reason.starts_with("invalid JSON: "), "reason {reason:?}");
        let reason = rejection(r#"{"requestId":"r1""#);
        assert!(reason.starts_with("invalid JSON: "), "reason {reason:?}");
    }

    #[test]
    fn empty_values_are_unknown() {
        let event = parse_event(
            r#"{"requestTimeEpoch":"1663811436","status":"","responseLength":"","responseLatency":"","ip":""}"#,
        );
        assert_eq!(event.status, None);
        assert_eq!(event.response_bytes, None);
        assert_eq!(event.duration_ms, None);
        assert_eq!(event.client_ip, None);
        assert!(event.attributes.is_empty());
    }

    #[test]
    fn numbers_sent_as_strings_are_cast() {
        let event = parse_event(concat!(
            r#"{"requestTimeEpoch":"1663964129948","status":" 404 ","responseLength":"184","#,
            r#""responseLatency":"87.5","integrationStatus":"200","integrationLatency":"80"}"#
        ));
        assert_eq!(event.time, 1_663_964_129_948_000);
        assert_eq!(event.status, Some(404));
        assert_eq!(event.response_bytes, Some(184));
        assert_eq!(event.duration_ms, Some(87.5));
        assert_eq!(event.upstream_status, Some(200));
        assert_eq!(attribute(&event, "integration_latency"), Some("80"));

        let event = parse_event(
            r#"{"requestTimeEpoch":1663964129948,"status":404,"responseLength":184,"responseLatency":87.5}"#,
        );
        assert_eq!(event.status, Some(404));
        assert_eq!(event.response_bytes, Some(184));
        assert_eq!(event.duration_ms, Some(87.5));
    }

    #[test]
    fn epoch_unit_follows_request_time() {
        // 2022-09-23T20:15:29Z, logged in seconds next to requestTime.
        let event = parse_event(
            r#"{"requestTime":"23/Sep/2022:20:15:29 +0000","requestTimeEpoch":1663964129,"resourcePath":"/a"}"#,
        );
        assert_eq!(event.time, 1_663_964_129_000_000);
        let event = parse_event(
            r#"{"requestTime":"23/Sep/2022:20:15:29 +0000","requestTimeEpoch":1663964129948,"routeKey":"$default"}"#,
        );
        assert_eq!(event.time, 1_663_964_129_948_000);
    }

    #[test]
    fn epoch_unit_follows_api_kind() {
        let http = parse_event(r#"{"requestTimeEpoch":"1663811436","routeKey":"GET /pets"}"#);
        assert_eq!(http.time, 1_663_811_436_000_000);
        let rest = parse_event(r#"{"requestTimeEpoch":"1663964129948","resourceId":"abc123"}"#);
        assert_eq!(rest.time, 1_663_964_129_948_000);
        let websocket = parse_event(
            r#"{"requestTimeEpoch":"1663964129948","eventType":"MESSAGE","routeKey":"$default"}"#,
        );
        assert_eq!(websocket.time, 1_663_964_129_948_000);
    }

    #[test]
    fn epoch_magnitude_overrides_implausible_kind() {
        // Milliseconds in a record that looks like an HTTP API's: as seconds it would be year 54,700.
        let event = parse_event(r#"{"requestTimeEpoch":1663964129948,"routeKey":"GET /pets"}"#);
        assert_eq!(event.time, 1_663_964_129_948_000);
        // Seconds in a record that looks like a REST API's: as milliseconds it would be 1970.
        let event = parse_event(r#"{"requestTimeEpoch":1663964129,"resourcePath":"/pets"}"#);
        assert_eq!(event.time, 1_663_964_129_000_000);
    }

    #[test]
    fn invalid_json_is_recovered_by_key() {
        let line = concat!(
            r#"{"requestId":"c6af9ac6-7b61-11e6-9a41-93e8deadbeef","ip":"192.0.2.1","#,
            r#""requestTime":"10/Jun/2023:15:36:28 +0000","httpMethod":"GET","#,
            r#""path":"/files/C:\temp\a.txt","userAgent":"Mozilla/5.0 "Bot", like Gecko","#,
            r#""status":"200","responseLength":"-","custom":"x"}"#
        );
        assert!(serde_json::from_str::<serde_json::Value>(line).is_err());
        let event = parse_event(line);
        assert_eq!(
            event.request_id.as_deref(),
            Some("c6af9ac6-7b61-11e6-9a41-93e8deadbeef")
        );
        assert_eq!(event.client_ip.as_deref(), Some("192.0.2.1"));
        assert_eq!(event.time, 1_686_411_388_000_000);
        assert_eq!(event.method.as_deref(), Some("GET"));
        assert_eq!(event.path.as_deref(), Some(r"/files/C:\temp\a.txt"));
        assert_eq!(
            event.user_agent.as_deref(),
            Some(r#"Mozilla/5.0 "Bot", like Gecko"#)
        );
        assert_eq!(event.status, Some(200));
        assert_eq!(event.response_bytes, None);
        assert_eq!(attribute(&event, "custom"), Some("x"));
        assert_eq!(attribute(&event, "invalid_json"), Some("true"));
    }

    #[test]
    fn valid_json_has_no_invalid_json_mark() {
        let event = parse_event(r#"{"requestTimeEpoch":1663964129948,"userAgent":"a \"b\""}"#);
        assert_eq!(event.user_agent.as_deref(), Some(r#"a "b""#));
        assert_eq!(attribute(&event, "invalid_json"), None);
    }

    #[test]
    fn invalid_json_without_gateway_keys_is_rejected() {
        let reason = rejection(r#"{"level":"info","msg":"said "hi""}"#);
        assert!(reason.starts_with("invalid JSON: "), "reason {reason:?}");
        let reason = rejection(r#"{"requestId":"r1","msg":"said "hi""#);
        assert!(reason.starts_with("invalid JSON: "), "reason {reason:?}");
    }

    #[test]
    fn recovered_record_still_needs_time() {
        assert_eq!(
            rejection(r#"{"requestId":"r1","userAgent":"a "b""}"#),
            "missing the request time: add $context.requestTime or $context.requestTimeEpoch to the access log format"
        );
        assert_eq!(
            rejection(r#"{"requestTime":"10/Jun/2023:15:36:28 +0000","status":"2"00"}"#),
            r#"invalid number "2\"00" in key status"#
        );
    }

    #[test]
    fn clf_rest_preset() {
        let event = parse_event(
            r#"192.0.2.1 - - [10/Jun/2023:15:36:28 +0000] "GET /pets/{petId} HTTP/1.1" 200 49 48752d0f-c99d-4cfa-a5a7-f3c6834d19e5"#,
        );
        assert_eq!(event.source, "aws_apigateway");
        assert_eq!(event.time, 1_686_411_388_000_000);
        assert_eq!(event.client_ip.as_deref(), Some("192.0.2.1"));
        assert_eq!(event.method.as_deref(), Some("GET"));
        assert_eq!(event.path, None);
        assert_eq!(event.http_version.as_deref(), Some("HTTP/1.1"));
        assert_eq!(event.status, Some(200));
        assert_eq!(event.response_bytes, Some(49));
        assert_eq!(
            event.request_id.as_deref(),
            Some("48752d0f-c99d-4cfa-a5a7-f3c6834d19e5")
        );
        assert_eq!(
            event.attributes,
            vec![("resource_path".to_string(), "/pets/{petId}".to_string())]
        );
    }

    #[test]
    fn clf_rest_preset_with_extended_id() {
        let event = parse_event(concat!(
            r#"192.0.2.1 AIDACKCEVSQ6C2EXAMPLE arn:aws:iam::123456789012:user/alice "#,
            r#"[10/Jun/2023:15:36:28 +0000]"POST /orders HTTP/1.1" 201 - "#,
            r#"48752d0f-c99d-4cfa-a5a7-f3c6834d19e5 Y1rY6giPiYcEPbQ="#
        ));
        assert_eq!(event.method.as_deref(), Some("POST"));
        assert_eq!(event.status, Some(201));
        assert_eq!(event.response_bytes, None);
        assert_eq!(
            event.request_id.as_deref(),
            Some("48752d0f-c99d-4cfa-a5a7-f3c6834d19e5")
        );
        let expected = [
            ("caller", "AIDACKCEVSQ6C2EXAMPLE"),
            ("user", "arn:aws:iam::123456789012:user/alice"),
            ("resource_path", "/orders"),
            ("extendedRequestId", "Y1rY6giPiYcEPbQ="),
        ];
        let actual: Vec<(&str, &str)> = event
            .attributes
            .iter()
            .map(|(key, value)| (key.as_str(), value.as_str()))
            .collect();
        assert_eq!(actual, expected);
    }

    #[test]
    fn clf_http_api_preset() {
        let event = parse_event(
            r#"2001:db8::1 - - [22/Sep/2022:01:45:02 +0000] "POST POST /orders/{id} HTTP/1.1" 201 23 Y1qkyit4CYcEP2g="#,
        );
        assert_eq!(event.client_ip.as_deref(), Some("2001:db8::1"));
        assert_eq!(event.method.as_deref(), Some("POST"));
        assert_eq!(event.http_version.as_deref(), Some("HTTP/1.1"));
        assert_eq!(event.request_id.as_deref(), Some("Y1qkyit4CYcEP2g="));
        assert_eq!(attribute(&event, "route_key"), Some("POST /orders/{id}"));

        let event = parse_event(
            r#"198.51.100.7 - - [22/Sep/2022:01:45:02 +0000] "GET $default HTTP/2.0" 404 - Y1qkyit4CYcEP2g="#,
        );
        assert_eq!(attribute(&event, "route_key"), Some("$default"));
        assert_eq!(event.status, Some(404));
    }

    #[test]
    fn clf_websocket_request() {
        let event = parse_event(
            r#"192.0.2.1 - - [26/Jul/2023:12:20:46 +0000] "CONNECT $connect Iq8gj1UmIAMCKpA=" 500 Iq9gwFDNoAMFo1A="#,
        );
        assert_eq!(event.method, None);
        assert_eq!(event.status, Some(500));
        assert_eq!(event.request_id.as_deref(), Some("Iq9gwFDNoAMFo1A="));
        assert_eq!(attribute(&event, "event_type"), Some("CONNECT"));
        assert_eq!(attribute(&event, "connection_id"), Some("Iq8gj1UmIAMCKpA="));
    }

    #[test]
    fn clf_leap_second() {
        let event = parse_event(
            r#"192.0.2.1 - - [31/Dec/2016:23:59:60 +0000] "GET /a HTTP/1.1" 200 1 48752d0f-c99d-4cfa-a5a7-f3c6834d19e5"#,
        );
        // 2016-12-31T23:59:59.999999Z
        assert_eq!(event.time, 1_483_228_799_999_999);
    }

    #[test]
    fn clf_rejects_web_server_lines() {
        assert_eq!(
            rejection(r#"1.2.3.4 - - [10/Oct/2000:13:55:36 -0700] "GET / HTTP/1.0" 200 1"#),
            "missing the request id after the status and byte count, which API Gateway's CLF format ends with"
        );
        assert_eq!(
            rejection(
                r#"1.2.3.4 - - [10/Oct/2000:13:55:36 -0700] "GET / HTTP/1.0" 200 1 "-" "curl/8.0""#
            ),
            r#"invalid request id "\"-\"" after the status: expected a UUID or an API Gateway id"#
        );
        assert_eq!(
            rejection(
                r#"1.2.3.4 - - [10/Oct/2000:13:55:36 -0700] "GET / HTTP/1.0" 200 1 "curl/8.0""#
            ),
            r#"invalid request id "\"curl/8.0\"" after the status: expected a UUID or an API Gateway id"#
        );
        assert_eq!(
            rejection(r#"1.2.3.4 - - [10/Oct/2000:13:55:36 -0700] GET / HTTP/1.0 200 1 r"#),
            r#"expected a quoted request after the [requestTime] field, found "GET / HTTP/1.0 200 1 r""#
        );
        assert_eq!(
            rejection(
                r#"1.2.3.4 - - [10/Oct/2000:13:55:36 -0700] "GET / HTTP/1.0" OK 1 Y1qkyit4CYcEP2g="#
            ),
            r#"invalid number "OK" in key status"#
        );
    }

    #[test]
    fn clf_detection_prefers_api_gateway() {
        let gateway = concat!(
            "192.0.2.1 - - [10/Jun/2023:15:36:28 +0000] \"GET /pets HTTP/1.1\" 200 49 48752d0f-c99d-4cfa-a5a7-f3c6834d19e5\n",
            "192.0.2.2 - - [10/Jun/2023:15:36:29 +0000] \"GET /pets/{petId} HTTP/1.1\" 404 23 c6af9ac6-7b61-11e6-9a41-93e8deadbeef\n",
        );
        assert_eq!(
            crate::detect::detect_format(gateway.as_bytes()),
            Some(Format::AwsApiGateway)
        );
        let web_server = concat!(
            "192.0.2.1 - - [10/Jun/2023:15:36:28 +0000] \"GET /pets HTTP/1.1\" 200 49\n",
            "192.0.2.2 - - [10/Jun/2023:15:36:29 +0000] \"GET /pets/1 HTTP/1.1\" 404 23 \"-\" \"curl/8.0\"\n",
        );
        assert_eq!(
            crate::detect::detect_format(web_server.as_bytes()),
            Some(Format::Clf)
        );
    }

    #[test]
    fn odd_input_does_not_panic() {
        for sample in [
            "",
            "{",
            "\"",
            "null",
            "{\"a\":{\"b\":{\"c\":[{}]}}}",
            "{\"requestTimeEpoch\":-5}",
        ] {
            let _ = parse_record(sample);
        }
    }
}
