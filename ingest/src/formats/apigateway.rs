//! AWS API Gateway access logs in JSON (`aws_apigateway`), for REST, HTTP and WebSocket APIs.
//!
//! Each line is one JSON object whose keys the operator chose when writing the
//! log format from `$context` variables, so any key may be missing. Nested
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
//! `requestTimeEpoch` is in seconds for HTTP APIs and in milliseconds for REST
//! APIs, distinguished by magnitude. `requestTime` is `10/Jun/2023:15:36:28 +0000`.
//! `resourcePath`, `routeKey`, `eventType`, `connectionId` and
//! `integrationLatency` go to attributes `resource_path`, `route_key`,
//! `event_type`, `connection_id` and `integration_latency`. Every other key
//! goes to an attribute under its flattened name. Values `-` and `null` are
//! left out, and other values are kept as text.
//!
//! WebSocket records (`eventType` CONNECT, MESSAGE or DISCONNECT) are API calls
//! too. They usually have no method or path.

use std::borrow::Cow;

use crate::event::Event;
use crate::format::Format;
use crate::formats::json::{Json, flatten};
use crate::parse::{LineOutcome, ParseContext};
use crate::text::{parse_clf_time, parse_iso8601, quote_excerpt, set_client_address};

/// Epoch values at or above this are milliseconds. As seconds it is the year
/// 5138, while as milliseconds it is March 1973, before API Gateway existed.
const EPOCH_MILLIS_THRESHOLD: f64 = 1e11;

const CONSUMER_KIND: &str = "gateway";

/// Parses one line of an API Gateway JSON access log.
pub fn parse_line(line: &str, _ctx: &ParseContext<'_>) -> LineOutcome {
    parse_record(line)
}

/// Parses one line without the per-input settings, as format detection needs.
pub(crate) fn parse_record(line: &str) -> LineOutcome {
    let line = line.strip_prefix('\u{feff}').unwrap_or(line);
    match build_event(line) {
        Ok(event) => LineOutcome::Event(Box::new(event)),
        Err(reason) => LineOutcome::Rejected(reason),
    }
}

fn build_event(line: &str) -> Result<Event, String> {
    let value: Json<'_> =
        serde_json::from_str(line.trim()).map_err(|error| format!("invalid JSON: {error}"))?;
    let Json::Object(members) = &value else {
        return Err(format!("expected a JSON object, found {}", value.kind()));
    };
    let mut leaves = Vec::with_capacity(members.len());
    flatten(None, members, &mut leaves);
    if !leaves.iter().any(|(key, _)| is_api_gateway_key(key)) {
        return Err("not an API Gateway access log record".to_string());
    }

    let mut record = Record::default();
    for (key, value) in &leaves {
        record.apply(key, value)?;
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

/// The event being built, with the values that are only resolved after every key is seen.
#[derive(Default)]
struct Record {
    event: Event,
    time_epoch: Option<i64>,
    time_text: Option<i64>,
    extended_request_id: Option<String>,
    api_key_id: Option<String>,
    /// Key and value of the authorizer's principal.
    principal: Option<(String, String)>,
}

impl Record {
    /// Stores one flattened key in its column or as an attribute.
    fn apply(&mut self, key: &str, value: &Json<'_>) -> Result<(), String> {
        let Some(text) = value.as_text() else {
            return Ok(());
        };
        if text == "-" {
            return Ok(());
        }
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

    /// Resolves time, request id and consumer, rejecting a record without a time.
    ///
    /// When both an API key and a principal are logged, the principal stays an attribute.
    fn finish(self) -> Result<Event, String> {
        let Record {
            mut event,
            time_epoch,
            time_text,
            extended_request_id,
            api_key_id,
            principal,
        } = self;
        event.time = time_epoch
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

/// Parses `requestTimeEpoch` in seconds or milliseconds into microseconds.
fn parse_epoch(key: &str, text: &str) -> Result<i64, String> {
    let invalid = || format!("invalid timestamp {} in key {key}", quote_excerpt(text));
    let value: f64 = text.parse().map_err(|_| invalid())?;
    if !value.is_finite() || value < 0.0 {
        return Err(invalid());
    }
    let micros = if value >= EPOCH_MILLIS_THRESHOLD {
        value * 1e3
    } else {
        value * 1e6
    };
    // Times past the year 294,000 do not fit in i64 microseconds.
    if micros >= i64::MAX as f64 {
        return Err(invalid());
    }
    Ok(micros.round() as i64)
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
        let reason =
            rejection(r#"1.2.3.4 - - [10/Oct/2000:13:55:36 -0700] "GET / HTTP/1.0" 200 1"#);
        assert!(reason.starts_with("invalid JSON: "), "reason {reason:?}");
        let reason = rejection(r#"{"requestId":"r1""#);
        assert!(reason.starts_with("invalid JSON: "), "reason {reason:?}");
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
