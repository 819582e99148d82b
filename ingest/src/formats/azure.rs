//! Azure resource logs of Application Gateway (`azure_appgw`) and Front Door
//! (`azure_frontdoor`) access logs.
//!
//! Both are Azure Monitor resource-log records: top-level `time` (or
//! `timeStamp`, `timestamp`), `category`, `resourceId`, `operationName`,
//! and the request in a `properties` object. Records may also arrive in
//! the `{"records": [...]}` envelope that Event Hubs and older storage
//! exports use, and then every access record in it becomes an event.
//!
//! Property names are matched without regard to case, because Azure writes
//! some of them differently across versions (`clientIP`, `clientIp`).
//! Properties without a column go to attributes `properties.<name>`, and
//! the other top-level keys to attributes under their own names.
//!
//! # Application Gateway
//!
//! | property | column |
//! |---|---|
//! | `clientIP`, `clientPort` | `client_ip`, `client_port` |
//! | `httpMethod` | `method` |
//! | `requestUri` | `path` (and `query` if it has one) |
//! | `requestQuery` | `query` |
//! | `httpVersion` | `http_version` |
//! | `httpStatus` | `status` |
//! | `receivedBytes` | `request_bytes` |
//! | `sentBytes` | `response_bytes` |
//! | `timeTaken` | `duration_ms` |
//! | `originalHost`, else `host` | `host` |
//! | `userAgent` | `user_agent` |
//! | `sslEnabled` (`on`, `off`) | `scheme` (`https`, `http`) |
//! | `serverRouted` | `upstream` |
//! | `serverStatus` | `upstream_status` |
//! | `transactionId` | `request_id` |
//!
//! `timeTaken` is in milliseconds in v1 gateways and in seconds in v2. A
//! record is read as v2 when it has a property that only v2 writes
//! (`transactionId`, `serverRouted`, `serverStatus`, `serverResponseLatency`,
//! `WAFEvaluationTime`, `WAFMode`, `originalRequestUriWithArgs`,
//! `clientResponseTime`, `upstreamSourcePort`, `error_info`,
//! `sslClientVerify`) or when `timeTaken` has a fraction, and as v1
//! otherwise. v1 also writes its routing details into `requestQuery`
//! (`SERVER-ROUTED=...&SERVER-STATUS=...`), which is kept as the query.
//!
//! Records of the gateway's other categories (`ApplicationGatewayFirewallLog`,
//! `ApplicationGatewayPerformanceLog`) are skipped as `not_access_log`;
//! records of other Azure resources are rejected.
//!
//! # Front Door
//!
//! | property | column |
//! |---|---|
//! | `trackingReference` | `request_id` |
//! | `httpMethod` | `method` |
//! | `requestUri` (absolute) | `scheme`, `host`, `path`, `query` (a port goes to attribute `port`) |
//! | `hostName` | `host` when `requestUri` has none |
//! | `httpVersion` (`2.0.0.0`) | `http_version` (`HTTP/2.0`) |
//! | `httpStatusCode` | `status` |
//! | `requestBytes` | `request_bytes` |
//! | `responseBytes` | `response_bytes` |
//! | `timeTaken` (seconds) | `duration_ms` |
//! | `socketIp`, else `clientIp` | `client_ip` |
//! | `clientPort` | `client_port` |
//! | `userAgent` | `user_agent` |
//! | `referer`, `referrer` | `referer` |
//! | `backendHostname`, else `originName` | `upstream` |
//!
//! `socketIp` is the peer that connected to the edge, while `clientIp` may
//! come from an `X-Forwarded-For` header; when both are logged, `clientIp`
//! stays an attribute. Records of Front Door's other categories (health
//! probe and WAF logs) are skipped as `not_access_log`; records of other
//! Azure resources are rejected.
//!
//! For both, `time` is the record's `time`. Microsoft's field references do
//! not say whether it is the start or the end of the request. It is taken
//! as the END, because the record already contains the response size and
//! `timeTaken`; this is an assumption.

use std::borrow::Cow;

use crate::event::Event;
use crate::format::Format;
use crate::formats::json::{Json, flatten};
use crate::formats::json_log::{
    Leaf, Member, member_str, parse_millis, parse_object, parse_port, parse_seconds_as_millis,
    parse_size, parse_status, parse_timestamp, push_attribute, set_target, value_text,
};
use crate::parse::{LineOutcome, ParseContext};
use crate::text::set_client_address;

const PROPERTIES: &str = "properties";

/// Kind of a resource-log record, as one of these parsers classifies it.
enum RecordKind {
    /// An access log record, read into an event.
    Access,
    /// A record of another category of the same product.
    OtherCategory,
    /// A record of another product or no resource log at all, with the reason.
    Foreign(String),
}

/// One of the two products, as the shared reading code needs it.
struct Product {
    format: Format,
    classify: fn(&[Member<'_>]) -> RecordKind,
    build: fn(&[Member<'_>]) -> Result<Event, String>,
}

const APPLICATION_GATEWAY: Product = Product {
    format: Format::AzureAppGw,
    classify: classify_appgw,
    build: build_appgw_event,
};

const FRONT_DOOR: Product = Product {
    format: Format::AzureFrontDoor,
    classify: classify_frontdoor,
    build: build_frontdoor_event,
};

/// Parses one Application Gateway resource-log record or `records` envelope.
pub fn parse_appgw_line(line: &str, _ctx: &ParseContext<'_>) -> LineOutcome {
    parse_record(line, &APPLICATION_GATEWAY)
}

/// Parses one Front Door resource-log record or `records` envelope.
pub fn parse_frontdoor_line(line: &str, _ctx: &ParseContext<'_>) -> LineOutcome {
    parse_record(line, &FRONT_DOOR)
}

fn parse_record(line: &str, product: &Product) -> LineOutcome {
    let members = match parse_object(line) {
        Ok(members) => members,
        Err(reason) => return LineOutcome::Rejected(reason),
    };
    if let [(key, Json::Array(records))] = members.as_slice()
        && key.as_ref() == "records"
    {
        return parse_envelope(records, product);
    }
    match (product.classify)(&members) {
        RecordKind::Access => match (product.build)(&members) {
            Ok(event) => LineOutcome::Event(Box::new(event)),
            Err(reason) => LineOutcome::Rejected(reason),
        },
        RecordKind::OtherCategory => LineOutcome::Skipped("not_access_log"),
        RecordKind::Foreign(reason) => LineOutcome::Rejected(reason),
    }
}

/// Reads the access records of a `{"records": [...]}` envelope.
///
/// Records of other Azure resources in the envelope are ignored. One
/// invalid access record rejects the whole envelope, so that it is kept in
/// the rejects file instead of losing that record.
fn parse_envelope(records: &[Json<'_>], product: &Product) -> LineOutcome {
    let mut events = Vec::new();
    let mut other_categories = 0;
    for (index, record) in records.iter().enumerate() {
        let Json::Object(members) = record else {
            continue;
        };
        match (product.classify)(members) {
            RecordKind::Access => match (product.build)(members) {
                Ok(event) => events.push(event),
                Err(reason) => {
                    return LineOutcome::Rejected(format!(
                        "record {index} of the records array: {reason}"
                    ));
                }
            },
            RecordKind::OtherCategory => other_categories += 1,
            RecordKind::Foreign(_) => {}
        }
    }
    if !events.is_empty() {
        LineOutcome::Events(events)
    } else if other_categories > 0 {
        LineOutcome::Skipped("not_access_log")
    } else {
        LineOutcome::Rejected(format!(
            "the records array holds no {} records",
            product.format
        ))
    }
}

fn classify_appgw(members: &[Member<'_>]) -> RecordKind {
    match member_str(members, "category") {
        Some(category) if category.eq_ignore_ascii_case("ApplicationGatewayAccessLog") => {
            RecordKind::Access
        }
        Some(category) if starts_with_ignore_case(category, "ApplicationGateway") => {
            RecordKind::OtherCategory
        }
        Some(category) => RecordKind::Foreign(format!(
            "not an Application Gateway access log record: category {category:?}"
        )),
        None if member_str(members, "operationName") == Some("ApplicationGatewayAccess") => {
            RecordKind::Access
        }
        None => RecordKind::Foreign(
            "not an Application Gateway access log record: expected category ApplicationGatewayAccessLog"
                .to_string(),
        ),
    }
}

fn classify_frontdoor(members: &[Member<'_>]) -> RecordKind {
    match member_str(members, "category") {
        Some(category) if category.eq_ignore_ascii_case("FrontDoorAccessLog") => RecordKind::Access,
        Some(category) if starts_with_ignore_case(category, "FrontDoor") => {
            RecordKind::OtherCategory
        }
        Some(category) => RecordKind::Foreign(format!(
            "not a Front Door access log record: category {category:?}"
        )),
        None => RecordKind::Foreign(
            "not a Front Door access log record: expected category FrontDoorAccessLog".to_string(),
        ),
    }
}

fn starts_with_ignore_case(text: &str, prefix: &str) -> bool {
    text.len() >= prefix.len()
        && text.as_bytes()[..prefix.len()].eq_ignore_ascii_case(prefix.as_bytes())
}

/// A record split into its top-level leaves and its properties, keyed `properties.<name>`.
struct Split<'v> {
    time: Option<(Cow<'v, str>, &'v Json<'v>)>,
    top: Vec<Leaf<'v>>,
    properties: Vec<Leaf<'v>>,
}

fn split_record<'v>(members: &'v [Member<'v>]) -> Split<'v> {
    let mut split = Split {
        time: None,
        top: Vec::with_capacity(members.len()),
        properties: Vec::with_capacity(32),
    };
    for (key, value) in members {
        match value {
            Json::Object(nested) if key == PROPERTIES => {
                flatten(Some(PROPERTIES), nested, &mut split.properties);
            }
            Json::Object(nested) => flatten(Some(key), nested, &mut split.top),
            _ if is_time_key(key) && split.time.is_none() => {
                split.time = Some((Cow::Borrowed(key.as_ref()), value));
            }
            _ => split.top.push((Cow::Borrowed(key.as_ref()), value)),
        }
    }
    split
}

fn is_time_key(key: &str) -> bool {
    key == "time" || key.eq_ignore_ascii_case("timestamp")
}

/// Returns the property name of a `properties.<name>` key.
fn property_name(key: &str) -> &str {
    key.strip_prefix("properties.").unwrap_or(key)
}

/// Returns the value of the property `name`, compared without regard to case.
fn property<'v>(properties: &'v [Leaf<'v>], name: &str) -> Option<&'v Json<'v>> {
    properties
        .iter()
        .find(|(key, _)| property_name(key).eq_ignore_ascii_case(name))
        .map(|(_, value)| *value)
}

/// Sets `time` and `source`, and keeps the other top-level keys as attributes.
fn start_event(format: Format, split: &Split<'_>) -> Result<Event, String> {
    let (key, value) = split
        .time
        .as_ref()
        .ok_or("missing the request time: expected key time")?;
    let text = value_text(value).ok_or("missing the request time: time is null or empty")?;
    let mut event = Event::new(format.name(), parse_timestamp(key, &text)?);
    for (key, value) in &split.top {
        if let Some(text) = value_text(value) {
            push_attribute(&mut event, key, text);
        }
    }
    Ok(event)
}

// ---------------------------------------------------------------------------
// Application Gateway

/// Properties that only v2 gateways write.
const APPGW_V2_PROPERTIES: [&str; 11] = [
    "transactionId",
    "serverRouted",
    "serverStatus",
    "serverResponseLatency",
    "WAFEvaluationTime",
    "WAFMode",
    "originalRequestUriWithArgs",
    "clientResponseTime",
    "upstreamSourcePort",
    "error_info",
    "sslClientVerify",
];

#[derive(Clone, Copy, PartialEq, Eq)]
enum AppGwColumn {
    ClientIp,
    ClientPort,
    Method,
    RequestUri,
    Query,
    HttpVersion,
    Status,
    RequestBytes,
    ResponseBytes,
    TimeTaken,
    Host,
    OriginalHost,
    UserAgent,
    SslEnabled,
    Upstream,
    UpstreamStatus,
    RequestId,
}

const APPGW_COLUMNS: [(&str, AppGwColumn); 17] = [
    ("clientIP", AppGwColumn::ClientIp),
    ("clientPort", AppGwColumn::ClientPort),
    ("httpMethod", AppGwColumn::Method),
    ("requestUri", AppGwColumn::RequestUri),
    ("requestQuery", AppGwColumn::Query),
    ("httpVersion", AppGwColumn::HttpVersion),
    ("httpStatus", AppGwColumn::Status),
    ("receivedBytes", AppGwColumn::RequestBytes),
    ("sentBytes", AppGwColumn::ResponseBytes),
    ("timeTaken", AppGwColumn::TimeTaken),
    ("host", AppGwColumn::Host),
    ("originalHost", AppGwColumn::OriginalHost),
    ("userAgent", AppGwColumn::UserAgent),
    ("sslEnabled", AppGwColumn::SslEnabled),
    ("serverRouted", AppGwColumn::Upstream),
    ("serverStatus", AppGwColumn::UpstreamStatus),
    ("transactionId", AppGwColumn::RequestId),
];

fn column_of<C: Copy>(table: &[(&str, C)], key: &str) -> Option<C> {
    let name = property_name(key);
    table
        .iter()
        .find(|(property, _)| property.eq_ignore_ascii_case(name))
        .map(|&(_, column)| column)
}

fn build_appgw_event(members: &[Member<'_>]) -> Result<Event, String> {
    let split = split_record(members);
    let mut event = start_event(Format::AzureAppGw, &split)?;
    let is_v2 = is_appgw_v2(&split.properties);
    let has_original_host = property(&split.properties, "originalHost")
        .and_then(value_text)
        .is_some();
    let mut uri = None;
    let mut query = None;

    for (key, value) in &split.properties {
        let Some(text) = value_text(value) else {
            continue;
        };
        let Some(column) = column_of(&APPGW_COLUMNS, key) else {
            push_attribute(&mut event, key, text);
            continue;
        };
        match column {
            AppGwColumn::ClientIp => set_client_address(&mut event, &text),
            AppGwColumn::ClientPort => event.client_port = parse_port(key, &text)?,
            AppGwColumn::Method => event.method = Some(text.into_owned()),
            AppGwColumn::RequestUri => uri = Some(text),
            AppGwColumn::Query => query = Some(text),
            AppGwColumn::HttpVersion => event.http_version = Some(text.into_owned()),
            AppGwColumn::Status => event.status = parse_status(key, &text)?,
            AppGwColumn::RequestBytes => event.request_bytes = parse_size(key, &text)?,
            AppGwColumn::ResponseBytes => event.response_bytes = parse_size(key, &text)?,
            AppGwColumn::TimeTaken if is_v2 => {
                event.duration_ms = parse_seconds_as_millis(key, &text)?;
            }
            AppGwColumn::TimeTaken => event.duration_ms = parse_millis(key, &text)?,
            AppGwColumn::Host if has_original_host => push_attribute(&mut event, key, text),
            AppGwColumn::Host | AppGwColumn::OriginalHost => {
                event.host = Some(text.into_owned());
            }
            AppGwColumn::UserAgent => event.user_agent = Some(text.into_owned()),
            AppGwColumn::SslEnabled => set_ssl_scheme(&mut event, key, text),
            AppGwColumn::Upstream => event.upstream = Some(text.into_owned()),
            AppGwColumn::UpstreamStatus => event.upstream_status = parse_status(key, &text)?,
            AppGwColumn::RequestId => event.request_id = Some(text.into_owned()),
        }
    }

    if let Some(uri) = uri {
        set_target(&mut event, "properties.requestUri", &uri);
    }
    if let Some(query) = query {
        event.query = Some(query.into_owned());
    }
    Ok(event)
}

/// Returns whether the properties come from a v2 gateway, whose `timeTaken` is in seconds.
fn is_appgw_v2(properties: &[Leaf<'_>]) -> bool {
    let has_v2_property = APPGW_V2_PROPERTIES
        .iter()
        .any(|name| property(properties, name).is_some());
    let time_taken_has_fraction = property(properties, "timeTaken")
        .and_then(value_text)
        .is_some_and(|text| text.contains('.'));
    has_v2_property || time_taken_has_fraction
}

fn set_ssl_scheme(event: &mut Event, key: &str, text: Cow<'_, str>) {
    if text.eq_ignore_ascii_case("on") {
        event.scheme = Some("https".to_string());
    } else if text.eq_ignore_ascii_case("off") {
        event.scheme = Some("http".to_string());
    } else {
        push_attribute(event, key, text);
    }
}

// ---------------------------------------------------------------------------
// Front Door

#[derive(Clone, Copy, PartialEq, Eq)]
enum FrontDoorColumn {
    RequestId,
    Method,
    RequestUri,
    HostName,
    HttpVersion,
    Status,
    RequestBytes,
    ResponseBytes,
    TimeTaken,
    SocketIp,
    ClientIp,
    ClientPort,
    UserAgent,
    Referer,
    Upstream,
}

const FRONT_DOOR_COLUMNS: [(&str, FrontDoorColumn); 17] = [
    ("trackingReference", FrontDoorColumn::RequestId),
    ("httpMethod", FrontDoorColumn::Method),
    ("requestUri", FrontDoorColumn::RequestUri),
    ("hostName", FrontDoorColumn::HostName),
    ("httpVersion", FrontDoorColumn::HttpVersion),
    ("httpStatusCode", FrontDoorColumn::Status),
    ("requestBytes", FrontDoorColumn::RequestBytes),
    ("responseBytes", FrontDoorColumn::ResponseBytes),
    ("timeTaken", FrontDoorColumn::TimeTaken),
    ("socketIp", FrontDoorColumn::SocketIp),
    ("clientIp", FrontDoorColumn::ClientIp),
    ("clientPort", FrontDoorColumn::ClientPort),
    ("userAgent", FrontDoorColumn::UserAgent),
    ("referer", FrontDoorColumn::Referer),
    ("referrer", FrontDoorColumn::Referer),
    ("backendHostname", FrontDoorColumn::Upstream),
    ("originName", FrontDoorColumn::Upstream),
];

fn build_frontdoor_event(members: &[Member<'_>]) -> Result<Event, String> {
    let split = split_record(members);
    let mut event = start_event(Format::AzureFrontDoor, &split)?;
    let has_socket_ip = property(&split.properties, "socketIp")
        .and_then(value_text)
        .is_some();
    let mut uri = None;
    let mut host_name = None;

    for (key, value) in &split.properties {
        let Some(text) = value_text(value) else {
            continue;
        };
        let Some(column) = column_of(&FRONT_DOOR_COLUMNS, key) else {
            push_attribute(&mut event, key, text);
            continue;
        };
        match column {
            FrontDoorColumn::RequestId => event.request_id = Some(text.into_owned()),
            FrontDoorColumn::Method => event.method = Some(text.into_owned()),
            FrontDoorColumn::RequestUri => uri = Some(text),
            FrontDoorColumn::HostName => host_name = Some((key, text)),
            FrontDoorColumn::HttpVersion => event.http_version = Some(http_version(&text)),
            FrontDoorColumn::Status => event.status = parse_status(key, &text)?,
            FrontDoorColumn::RequestBytes => event.request_bytes = parse_size(key, &text)?,
            FrontDoorColumn::ResponseBytes => event.response_bytes = parse_size(key, &text)?,
            FrontDoorColumn::TimeTaken => event.duration_ms = parse_seconds_as_millis(key, &text)?,
            FrontDoorColumn::SocketIp => set_client_address(&mut event, &text),
            FrontDoorColumn::ClientIp if has_socket_ip => push_attribute(&mut event, key, text),
            FrontDoorColumn::ClientIp => set_client_address(&mut event, &text),
            FrontDoorColumn::ClientPort => event.client_port = parse_port(key, &text)?,
            FrontDoorColumn::UserAgent => event.user_agent = Some(text.into_owned()),
            FrontDoorColumn::Referer => event.referer = Some(text.into_owned()),
            FrontDoorColumn::Upstream if event.upstream.is_some() => {
                push_attribute(&mut event, key, text);
            }
            FrontDoorColumn::Upstream => event.upstream = Some(text.into_owned()),
        }
    }

    if let Some(uri) = uri {
        set_target(&mut event, "properties.requestUri", &uri);
    }
    if let Some((key, host_name)) = host_name {
        if event.host.is_none() {
            event.host = Some(host_name.into_owned());
        } else {
            push_attribute(&mut event, key, host_name);
        }
    }
    Ok(event)
}

/// Writes a .NET version such as `2.0.0.0` as `HTTP/2.0`, and other values as logged.
fn http_version(text: &str) -> String {
    let mut parts = text.split('.');
    let (Some(major), Some(minor)) = (parts.next(), parts.next()) else {
        return text.to_string();
    };
    let is_number = |part: &str| !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit());
    if is_number(major) && is_number(minor) && parts.all(|part| part == "0") {
        format!("HTTP/{major}.{minor}")
    } else {
        text.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::formats::test_support::{expect_event, expect_rejection};
    use crate::redact::Redactor;

    fn appgw(line: &str) -> LineOutcome {
        let redactor = Redactor::new(b"test".to_vec(), 1);
        parse_appgw_line(line, &ParseContext::new(&redactor))
    }

    fn frontdoor(line: &str) -> LineOutcome {
        let redactor = Redactor::new(b"test".to_vec(), 1);
        parse_frontdoor_line(line, &ParseContext::new(&redactor))
    }

    const APPGW_V2: &str = concat!(
        r#"{"timeStamp": "2021-10-14T22:17:11+00:00", "resourceId": "/SUBSCRIPTIONS/S/RESOURCEGROUPS/G/PROVIDERS/MICROSOFT.NETWORK/APPLICATIONGATEWAYS/GW", "#,
        r#""listenerName": "HTTP-Listener", "operationName": "ApplicationGatewayAccess", "category": "ApplicationGatewayAccessLog", "#,
        r#""properties": {"instanceId": "appgw_2", "clientIP": "185.42.129.24", "clientPort": 45057, "httpMethod": "GET", "#,
        r#""originalRequestUriWithArgs": "\/v1\/items?x=1", "requestUri": "\/v1\/items", "requestQuery": "x=1", "#,
        r#""userAgent": "curl\/8.0", "httpStatus": 200, "httpVersion": "HTTP\/1.1", "receivedBytes": 184, "sentBytes": 466, "#,
        r#""timeTaken": 0.034, "transactionId": "592d1649f75a8d480a3c4dc6a975309d", "sslEnabled": "on", "sslCipher": "", "#,
        r#""serverRouted": "52.239.221.65:443", "serverStatus": "200", "serverResponseLatency": "0.028", "#,
        r#""originalHost": "api.example.com", "host": "backend.internal"}}"#
    );

    #[test]
    fn appgw_v2_record() {
        let event = expect_event(APPGW_V2, appgw(APPGW_V2));

        assert_eq!(event.source, "azure_appgw");
        assert_eq!(event.time, 1_634_249_831_000_000);
        assert_eq!(event.client_ip.as_deref(), Some("185.42.129.24"));
        assert_eq!(event.client_port, Some(45057));
        assert_eq!(event.method.as_deref(), Some("GET"));
        assert_eq!(event.path.as_deref(), Some("/v1/items"));
        assert_eq!(event.query.as_deref(), Some("x=1"));
        assert_eq!(event.user_agent.as_deref(), Some("curl/8.0"));
        assert_eq!(event.status, Some(200));
        assert_eq!(event.http_version.as_deref(), Some("HTTP/1.1"));
        assert_eq!(event.request_bytes, Some(184));
        assert_eq!(event.response_bytes, Some(466));
        assert_eq!(event.duration_ms, Some(34.0));
        assert_eq!(
            event.request_id.as_deref(),
            Some("592d1649f75a8d480a3c4dc6a975309d")
        );
        assert_eq!(event.scheme.as_deref(), Some("https"));
        assert_eq!(event.upstream.as_deref(), Some("52.239.221.65:443"));
        assert_eq!(event.upstream_status, Some(200));
        assert_eq!(event.host.as_deref(), Some("api.example.com"));

        assert_eq!(event.attribute("properties.host"), Some("backend.internal"));
        assert_eq!(event.attribute("listenerName"), Some("HTTP-Listener"));
        assert_eq!(event.attribute("properties.instanceId"), Some("appgw_2"));
        assert_eq!(event.attribute("properties.sslCipher"), None);
        assert_eq!(
            event.attribute("category"),
            Some("ApplicationGatewayAccessLog")
        );
        assert_eq!(event.attribute("timeStamp"), None);
    }

    #[test]
    fn appgw_v1_milliseconds_and_string_numbers() {
        let line = concat!(
            r#"{"resourceId": "/SUBSCRIPTIONS/S", "operationName": "ApplicationGatewayAccess", "time": "2016-04-11T04:24:37Z", "#,
            r#""category": "ApplicationGatewayAccessLog", "properties": {"instanceId":"ApplicationGatewayRole_IN_0", "#,
            r#""clientIP":"37.186.113.170", "clientPort":"12345", "httpMethod":"HEAD", "requestUri":"/xyz/portal", "#,
            r#""requestQuery":"", "userAgent":"-", "httpStatus":"200", "httpVersion":"HTTP/1.0", "receivedBytes":"27", "#,
            r#""sentBytes":"202", "timeTaken":"359", "sslEnabled":"off"}}"#
        );
        let event = expect_event(line, appgw(line));
        assert_eq!(event.duration_ms, Some(359.0));
        assert_eq!(event.client_port, Some(12345));
        assert_eq!(event.status, Some(200));
        assert_eq!(event.scheme.as_deref(), Some("http"));
        assert_eq!(event.query, None);
        assert_eq!(event.user_agent, None);
        assert_eq!(event.response_bytes, Some(202));
    }

    #[test]
    fn appgw_other_categories() {
        let firewall = r#"{"category":"ApplicationGatewayFirewallLog","time":"2017-03-20T15:52:09Z","properties":{"clientIp":"1.2.3.4","ruleId":"920350"}}"#;
        assert!(matches!(
            appgw(firewall),
            LineOutcome::Skipped("not_access_log")
        ));
        let health = r#"{"category":"ResourceHealth","time":"2026-06-27T21:21:53Z","properties":{"title":"Stopping"}}"#;
        assert_eq!(
            expect_rejection(health, appgw(health)),
            r#"not an Application Gateway access log record: category "ResourceHealth""#
        );
        let frontdoor_record =
            r#"{"category":"FrontdoorAccessLog","time":"2021-12-15T03:10:11Z","properties":{}}"#;
        assert!(matches!(appgw(frontdoor_record), LineOutcome::Rejected(_)));
    }

    const FRONT_DOOR_RECORD: &str = concat!(
        r#"{"category":"FrontdoorAccessLog","operationName":"Microsoft.Network/FrontDoor/AccessLog/Write","#,
        r#""properties":{"ErrorInfo":"NoError","backendHostname":"app.azurewebsites.net:443","cacheStatus":"CONFIG_NOCACHE","#,
        r#""clientIp":"198.51.100.20","clientPort":"50382","httpMethod":"POST","httpStatusCode":"200","#,
        r#""httpVersion":"2.0.0.0","isReceivedFromClient":true,"requestBytes":"2545","requestProtocol":"HTTPS","#,
        r#""requestUri":"https://erp.example.com:443/Stock/List?page=2","responseBytes":"1205","rulesEngineMatchNames":[],"#,
        r#""socketIp":"203.0.113.20","timeTaken":"0.384","trackingReference":"0k1y5YQAAAAA=","#,
        r#""userAgent":"Mozilla/5.0"},"resourceId":"/SUBSCRIPTIONS/S/FRONTDOORS/F","time":"2021-12-15T03:10:11.6479719Z"}"#
    );

    #[test]
    fn frontdoor_record() {
        let event = expect_event(FRONT_DOOR_RECORD, frontdoor(FRONT_DOOR_RECORD));

        assert_eq!(event.source, "azure_frontdoor");
        assert_eq!(event.time, 1_639_537_811_647_971);
        assert_eq!(event.upstream.as_deref(), Some("app.azurewebsites.net:443"));
        assert_eq!(event.client_ip.as_deref(), Some("203.0.113.20"));
        assert_eq!(
            event.attribute("properties.clientIp"),
            Some("198.51.100.20")
        );
        assert_eq!(event.client_port, Some(50382));
        assert_eq!(event.method.as_deref(), Some("POST"));
        assert_eq!(event.status, Some(200));
        assert_eq!(event.http_version.as_deref(), Some("HTTP/2.0"));
        assert_eq!(event.request_bytes, Some(2545));
        assert_eq!(event.response_bytes, Some(1205));
        assert_eq!(event.scheme.as_deref(), Some("https"));
        assert_eq!(event.host.as_deref(), Some("erp.example.com"));
        assert_eq!(event.path.as_deref(), Some("/Stock/List"));
        assert_eq!(event.query.as_deref(), Some("page=2"));

        assert_eq!(event.attribute("port"), Some("443"));
        assert_eq!(event.duration_ms, Some(384.0));
        assert_eq!(event.request_id.as_deref(), Some("0k1y5YQAAAAA="));
        assert_eq!(event.user_agent.as_deref(), Some("Mozilla/5.0"));
        assert_eq!(
            event.attribute("properties.isReceivedFromClient"),
            Some("true")
        );
        assert_eq!(event.attribute("properties.rulesEngineMatchNames"), None);
        assert_eq!(
            event.attribute("resourceId"),
            Some("/SUBSCRIPTIONS/S/FRONTDOORS/F")
        );
    }

    #[test]
    fn frontdoor_other_records() {
        let waf = r#"{"category":"FrontDoorWebApplicationFirewallLog","time":"2021-12-15T03:10:11Z","properties":{}}"#;
        assert!(matches!(
            frontdoor(waf),
            LineOutcome::Skipped("not_access_log")
        ));
        assert!(matches!(frontdoor(APPGW_V2), LineOutcome::Rejected(_)));
        let no_category = r#"{"time":"2021-12-15T03:10:11Z","properties":{"httpMethod":"GET"}}"#;
        assert_eq!(
            expect_rejection(no_category, frontdoor(no_category)),
            "not a Front Door access log record: expected category FrontDoorAccessLog"
        );
    }

    #[test]
    fn records_envelope() {
        let envelope = format!(
            r#"{{"records":[{FRONT_DOOR_RECORD},{{"category":"FrontDoorHealthProbeLog","time":"2021-12-15T03:10:11Z"}},{APPGW_V2},{FRONT_DOOR_RECORD}]}}"#
        );
        match frontdoor(&envelope) {
            LineOutcome::Events(events) => assert_eq!(events.len(), 2),
            other => panic!("expected two events, got {other:?}"),
        }
        match appgw(&envelope) {
            LineOutcome::Events(events) => assert_eq!(events.len(), 1),
            other => panic!("expected one event, got {other:?}"),
        }
        let probes =
            r#"{"records":[{"category":"FrontDoorHealthProbeLog","time":"2021-12-15T03:10:11Z"}]}"#;
        assert!(matches!(
            frontdoor(probes),
            LineOutcome::Skipped("not_access_log")
        ));
        assert_eq!(
            expect_rejection(probes, appgw(probes)),
            "the records array holds no azure_appgw records"
        );
        let broken = r#"{"records":[{"category":"FrontDoorAccessLog","properties":{}}]}"#;
        assert_eq!(
            expect_rejection(broken, frontdoor(broken)),
            "record 0 of the records array: missing the request time: expected key time"
        );
    }

    #[test]
    fn dotnet_versions() {
        assert_eq!(http_version("2.0.0.0"), "HTTP/2.0");
        assert_eq!(http_version("1.1.0.0"), "HTTP/1.1");
        assert_eq!(http_version("HTTP/1.1"), "HTTP/1.1");
        assert_eq!(http_version("2.0.1.0"), "2.0.1.0");
    }
}
