//! The mapping from OpenTelemetry's HTTP semantic conventions to the event
//! columns, over the model of [`super::model`].
//!
//! Both the stable attribute names of semantic conventions 1.23 and later
//! (`http.request.method`, `url.path`, ...) and the older names that
//! instrumentations on version 1.20 or earlier emit (`http.method`,
//! `http.target`, ...) are read. When a span carries both, as
//! instrumentations do while they migrate, the stable name fills the column
//! and the older one stays an attribute.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use super::model::{AnyValue, KeyValue, LogRecordView, Scope, SpanKind, SpanView};
use crate::event::Event;
use crate::format::Format;
use crate::formats::capture::{is_blank, prefix_http_version, set_url};
use crate::text::{normalise_ip, split_host_port};

const CONSUMER_KIND: &str = "gateway";

/// Builds the event of an HTTP server span.
///
/// Returns `Ok(None)` for a span of another kind, and for a server span
/// without any `http.*` or `url.*` attribute, which served something other
/// than HTTP (gRPC, a message queue) or carries no request to record.
/// `time` is the span's start and `duration_ms` its end minus its start.
///
/// # Errors
///
/// A server span with HTTP attributes but without a start time.
pub fn span_to_event(
    span: &SpanView<'_>,
    resource_attributes: &[KeyValue<'_>],
    scope: &Scope<'_>,
) -> Result<Option<Event>, String> {
    if span.kind != SpanKind::Server || !has_http_attribute(&span.attributes) {
        return Ok(None);
    }
    if span.start_time_unix_nano == 0 {
        return Err("missing startTimeUnixNano".to_string());
    }

    let mut event = Event::new(
        Format::Otlp.name(),
        nanos_to_micros(span.start_time_unix_nano),
    );
    if span.end_time_unix_nano >= span.start_time_unix_nano {
        let nanos = span.end_time_unix_nano - span.start_time_unix_nano;
        event.duration_ms = Some(nanos as f64 / 1e6);
    }
    event.trace_id = span.trace_id.map(hex::encode);
    map_http_attributes(&mut event, &span.attributes);

    push_id(&mut event, "span_id", span.span_id.as_ref());
    push_id(&mut event, "parent_span_id", span.parent_span_id.as_ref());
    push_text(&mut event, "span_name", &span.name);
    push_text(&mut event, "trace_state", &span.trace_state);
    if let Some(code) = span.status_code.attribute_value() {
        push_text(&mut event, "otel.status_code", code);
    }
    push_text(&mut event, "otel.status_description", &span.status_message);
    push_origin(&mut event, resource_attributes, scope);
    Ok(Some(event))
}

/// Builds the event of a log record that describes an HTTP request, such
/// as an access-log line that a collector parsed into attributes.
///
/// Returns `Ok(None)` for a record without any `http.*` or `url.*`
/// attribute. `time` is the record's `time_unix_nano`, else its
/// `observed_time_unix_nano`, the time the collecting agent read it.
///
/// # Errors
///
/// An HTTP record with neither time.
pub fn log_record_to_event(
    record: &LogRecordView<'_>,
    resource_attributes: &[KeyValue<'_>],
    scope: &Scope<'_>,
) -> Result<Option<Event>, String> {
    if !has_http_attribute(&record.attributes) {
        return Ok(None);
    }
    let nanos = match record.time_unix_nano {
        0 => record.observed_time_unix_nano,
        time => time,
    };
    if nanos == 0 {
        return Err("missing timeUnixNano and observedTimeUnixNano".to_string());
    }

    let mut event = Event::new(Format::Otlp.name(), nanos_to_micros(nanos));
    event.trace_id = record.trace_id.map(hex::encode);
    map_http_attributes(&mut event, &record.attributes);

    push_id(&mut event, "span_id", record.span_id.as_ref());
    push_text(&mut event, "severity_text", &record.severity_text);
    push_text(&mut event, "event_name", &record.event_name);
    if let Some(body) = record
        .body
        .as_ref()
        .and_then(|body| value_text("body", body))
    {
        push_text(&mut event, "body", &body);
    }
    push_origin(&mut event, resource_attributes, scope);
    Ok(Some(event))
}

/// Returns whether any attribute belongs to the HTTP or URL semantic conventions.
pub fn has_http_attribute(attributes: &[KeyValue<'_>]) -> bool {
    attributes
        .iter()
        .any(|attribute| attribute.key.starts_with("http.") || attribute.key.starts_with("url."))
}

/// A column, or part of one, that an attribute can fill.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Slot {
    Method,
    MethodOriginal,
    Path,
    Query,
    Target,
    FullUrl,
    Scheme,
    Host,
    Status,
    Version,
    UserAgent,
    PeerAddress,
    PeerPort,
    ClientAddress,
    ClientPort,
    RequestBytes,
    ResponseBytes,
    Consumer,
    ForwardedFor,
    Referer,
}

const SLOT_COUNT: usize = 20;

/// Returns the slot an attribute fills and its rank. Of several attributes
/// for one slot, the lowest rank wins.
fn slot_of(key: &str) -> Option<(Slot, u8)> {
    let found = match key {
        "http.request.method" => (Slot::Method, 0),
        "http.method" => (Slot::Method, 1),
        "http.request.method_original" => (Slot::MethodOriginal, 0),
        "url.path" => (Slot::Path, 0),
        "url.query" => (Slot::Query, 0),
        "http.target" => (Slot::Target, 0),
        "url.full" => (Slot::FullUrl, 0),
        "http.url" => (Slot::FullUrl, 1),
        "url.scheme" => (Slot::Scheme, 0),
        "http.scheme" => (Slot::Scheme, 1),
        "server.address" => (Slot::Host, 0),
        "http.host" => (Slot::Host, 1),
        "net.host.name" => (Slot::Host, 2),
        "http.response.status_code" => (Slot::Status, 0),
        "http.status_code" => (Slot::Status, 1),
        "network.protocol.version" => (Slot::Version, 0),
        "http.flavor" => (Slot::Version, 1),
        "net.protocol.version" => (Slot::Version, 2),
        "user_agent.original" => (Slot::UserAgent, 0),
        "http.user_agent" => (Slot::UserAgent, 1),
        "network.peer.address" => (Slot::PeerAddress, 0),
        "net.sock.peer.addr" => (Slot::PeerAddress, 1),
        "net.peer.ip" => (Slot::PeerAddress, 2),
        "network.peer.port" => (Slot::PeerPort, 0),
        "net.sock.peer.port" => (Slot::PeerPort, 1),
        "net.peer.port" => (Slot::PeerPort, 2),
        "client.address" => (Slot::ClientAddress, 0),
        "http.client_ip" => (Slot::ClientAddress, 1),
        "client.port" => (Slot::ClientPort, 0),
        "http.request.body.size" => (Slot::RequestBytes, 0),
        "http.request_content_length" => (Slot::RequestBytes, 1),
        "http.response.body.size" => (Slot::ResponseBytes, 0),
        "http.response_content_length" => (Slot::ResponseBytes, 1),
        "enduser.id" => (Slot::Consumer, 0),
        "http.request.header.x-forwarded-for" => (Slot::ForwardedFor, 0),
        "http.request.header.referer" => (Slot::Referer, 0),
        _ => return None,
    };
    Some(found)
}

/// The winning attribute of each slot, and which attributes filled a column.
struct Slots<'v, 'a> {
    attributes: &'v [KeyValue<'a>],
    /// Per slot: rank and index of the best attribute seen.
    best: [Option<(u8, usize)>; SLOT_COUNT],
    /// Per attribute: whether it filled a column, so it is not repeated as an attribute.
    used: Vec<bool>,
}

impl<'v, 'a> Slots<'v, 'a> {
    fn new(attributes: &'v [KeyValue<'a>]) -> Self {
        let mut best = [None; SLOT_COUNT];
        for (index, attribute) in attributes.iter().enumerate() {
            let Some((slot, rank)) = slot_of(&attribute.key) else {
                continue;
            };
            let entry: &mut Option<(u8, usize)> = &mut best[slot as usize];
            if entry.is_none_or(|(best_rank, _)| rank < best_rank) {
                *entry = Some((rank, index));
            }
        }
        Slots {
            attributes,
            best,
            used: vec![false; attributes.len()],
        }
    }

    /// Returns the value of the winning attribute of `slot`, without marking it used.
    fn peek(&self, slot: Slot) -> Option<&'v AnyValue<'a>> {
        self.best[slot as usize].map(|(_, index)| &self.attributes[index].value)
    }

    /// Marks the winning attribute of `slot` as used for a column.
    fn take(&mut self, slot: Slot) {
        if let Some((_, index)) = self.best[slot as usize] {
            self.used[index] = true;
        }
    }

    /// Returns the text of the winning attribute of `slot`, if it is not blank.
    fn text(&self, slot: Slot) -> Option<String> {
        self.peek(slot)
            .and_then(|value| value_text("", value))
            .filter(|text| !is_blank(text))
    }

    /// Returns the integer value of the winning attribute of `slot`, from an
    /// int or a numeric string.
    fn integer(&self, slot: Slot) -> Option<i64> {
        match self.peek(slot)? {
            AnyValue::Int(number) => Some(*number),
            AnyValue::String(text) => text.trim().parse().ok(),
            AnyValue::Double(number) if number.fract() == 0.0 => Some(*number as i64),
            _ => None,
        }
    }
}

/// Fills the columns from the HTTP attributes and keeps every other attribute.
fn map_http_attributes(event: &mut Event, attributes: &[KeyValue<'_>]) {
    let mut slots = Slots::new(attributes);

    set_method(event, &mut slots);
    set_target(event, &mut slots);
    set_host(event, &mut slots);
    set_client(event, &mut slots);

    if let Some(status) = slots.integer(Slot::Status) {
        slots.take(Slot::Status);
        event.status = i32::try_from(status).ok().filter(|status| *status > 0);
    }
    if let Some(version) = slots.text(Slot::Version) {
        slots.take(Slot::Version);
        event.http_version = Some(prefix_http_version(&version));
    }
    if let Some(user_agent) = slots.text(Slot::UserAgent) {
        slots.take(Slot::UserAgent);
        event.user_agent = Some(user_agent);
    }
    if let Some(bytes) = slots.integer(Slot::RequestBytes) {
        slots.take(Slot::RequestBytes);
        event.request_bytes = (bytes >= 0).then_some(bytes);
    }
    if let Some(bytes) = slots.integer(Slot::ResponseBytes) {
        slots.take(Slot::ResponseBytes);
        event.response_bytes = (bytes >= 0).then_some(bytes);
    }
    if let Some(consumer) = slots.text(Slot::Consumer) {
        slots.take(Slot::Consumer);
        event.consumer = Some(consumer);
        event.consumer_kind = Some(CONSUMER_KIND.to_string());
    }
    if let Some(chain) = slots.text(Slot::ForwardedFor) {
        slots.take(Slot::ForwardedFor);
        event.forwarded_for = Some(chain);
    }
    if let Some(referer) = slots.text(Slot::Referer) {
        slots.take(Slot::Referer);
        event.referer = Some(referer);
    }

    for (attribute, used) in attributes.iter().zip(&slots.used) {
        if !used && let Some(text) = value_text(&attribute.key, &attribute.value) {
            push_text(event, &attribute.key, &text);
        }
    }
}

/// Sets `method`, reading `http.request.method_original` when the method is `_OTHER`.
fn set_method(event: &mut Event, slots: &mut Slots<'_, '_>) {
    let Some(method) = slots.text(Slot::Method) else {
        return;
    };
    slots.take(Slot::Method);
    if method == "_OTHER"
        && let Some(original) = slots.text(Slot::MethodOriginal)
    {
        slots.take(Slot::MethodOriginal);
        event.method = Some(original);
    } else {
        event.method = Some(method);
    }
}

/// Sets path and query from `url.path` and `url.query`, else `http.target`,
/// else the full URL. Sets the scheme from `url.scheme` or `http.scheme`, else
/// from the full URL.
fn set_target(event: &mut Event, slots: &mut Slots<'_, '_>) {
    let method = event.method.clone().unwrap_or_default();
    if let Some(path) = slots.text(Slot::Path) {
        slots.take(Slot::Path);
        event.path = Some(path);
        if let Some(query) = slots.text(Slot::Query) {
            slots.take(Slot::Query);
            event.query = Some(query);
        }
    } else if let Some(target) = slots.text(Slot::Target) {
        slots.take(Slot::Target);
        if !set_url(event, &method, &target) {
            event.malformed = true;
            event.attributes.push(("http.target".to_string(), target));
        }
    } else if let Some(url) = slots.text(Slot::FullUrl) {
        slots.take(Slot::FullUrl);
        if !set_url(event, &method, &url) {
            event.malformed = true;
            event.attributes.push(("url.full".to_string(), url));
        }
    }
    if event.query.is_none()
        && let Some(query) = slots.text(Slot::Query)
    {
        slots.take(Slot::Query);
        event.query = Some(query);
    }
    if let Some(scheme) = slots.text(Slot::Scheme) {
        slots.take(Slot::Scheme);
        event.scheme = Some(scheme);
    }
}

/// Sets `host` from `server.address`, `http.host` or `net.host.name`. A port
/// in `http.host` goes to attribute `port`.
fn set_host(event: &mut Event, slots: &mut Slots<'_, '_>) {
    let Some(host) = slots.text(Slot::Host) else {
        return;
    };
    slots.take(Slot::Host);
    let (name, port) = split_host_port(&host);
    event.host = Some(name.to_string());
    if let Some(port) = port {
        event
            .attributes
            .push(("port".to_string(), port.to_string()));
    }
}

/// Sets the client from the network peer, else from `client.address` or
/// `http.client_ip`, which name the original client behind proxies.
fn set_client(event: &mut Event, slots: &mut Slots<'_, '_>) {
    for (address_slot, port_slot) in [
        (Slot::PeerAddress, Slot::PeerPort),
        (Slot::ClientAddress, Slot::ClientPort),
    ] {
        let Some(ip) = slots
            .text(address_slot)
            .and_then(|text| normalise_ip(&text))
        else {
            continue;
        };
        slots.take(address_slot);
        event.client_ip = Some(ip);
        if let Some(port) = slots
            .integer(port_slot)
            .and_then(|port| u16::try_from(port).ok())
        {
            slots.take(port_slot);
            event.client_port = Some(i32::from(port));
        }
        return;
    }
}

/// Keeps the span or record's scope, then the attributes of its scope and
/// resource whose keys the event does not have yet.
fn push_origin(event: &mut Event, resource_attributes: &[KeyValue<'_>], scope: &Scope<'_>) {
    push_text(event, "otel.scope.name", &scope.name);
    push_text(event, "otel.scope.version", &scope.version);
    for attribute in scope.attributes.iter().chain(resource_attributes) {
        if event.attribute(&attribute.key).is_none()
            && let Some(text) = value_text(&attribute.key, &attribute.value)
        {
            push_text(event, &attribute.key, &text);
        }
    }
}

fn push_id(event: &mut Event, key: &str, id: Option<&[u8; 8]>) {
    if let Some(id) = id {
        event.attributes.push((key.to_string(), hex::encode(id)));
    }
}

fn push_text(event: &mut Event, key: &str, text: &str) {
    if !is_blank(text) {
        event.attributes.push((key.to_string(), text.to_string()));
    }
}

/// Writes a value as attribute text.
///
/// Strings are kept as they are, numbers and booleans written out, bytes as
/// base64. A list of strings is joined with `, `, or with `; ` under a key
/// that ends in `cookie`, as HTTP joins repeated headers. Other lists and
/// key-value lists are written as JSON.
pub(crate) fn value_text(key: &str, value: &AnyValue<'_>) -> Option<String> {
    match value {
        AnyValue::String(text) => Some(text.to_string()),
        AnyValue::Bool(flag) => Some(flag.to_string()),
        AnyValue::Int(number) => Some(number.to_string()),
        AnyValue::Double(number) => Some(number.to_string()),
        AnyValue::Bytes(bytes) => Some(STANDARD.encode(bytes)),
        AnyValue::Array(items) => {
            let strings: Option<Vec<&str>> = items
                .iter()
                .map(|item| match item {
                    AnyValue::String(text) => Some(text.as_ref()),
                    _ => None,
                })
                .collect();
            match strings {
                Some(strings) => {
                    let separator = if key.ends_with("cookie") { "; " } else { ", " };
                    Some(strings.join(separator))
                }
                None => Some(to_json(value).to_string()),
            }
        }
        AnyValue::KeyValueList(_) => Some(to_json(value).to_string()),
        AnyValue::Empty => None,
    }
}

fn to_json(value: &AnyValue<'_>) -> serde_json::Value {
    use serde_json::Value;
    match value {
        AnyValue::String(text) => Value::String(text.to_string()),
        AnyValue::Bool(flag) => Value::Bool(*flag),
        AnyValue::Int(number) => Value::from(*number),
        AnyValue::Double(number) => Value::from(*number),
        AnyValue::Bytes(bytes) => Value::String(STANDARD.encode(bytes)),
        AnyValue::Array(items) => Value::Array(items.iter().map(to_json).collect()),
        AnyValue::KeyValueList(pairs) => Value::Object(
            pairs
                .iter()
                .map(|pair| (pair.key.to_string(), to_json(&pair.value)))
                .collect(),
        ),
        AnyValue::Empty => Value::Null,
    }
}

fn nanos_to_micros(nanos: u64) -> i64 {
    // u64::MAX / 1000 is below i64::MAX, so the fallback never applies.
    i64::try_from(nanos / 1_000).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use std::borrow::Cow;

    use super::*;
    use crate::formats::otlp::model::StatusCode;

    fn string(key: &'static str, value: &'static str) -> KeyValue<'static> {
        KeyValue::new(key, AnyValue::String(Cow::Borrowed(value)))
    }

    fn int(key: &'static str, value: i64) -> KeyValue<'static> {
        KeyValue::new(key, AnyValue::Int(value))
    }

    fn server_span(attributes: Vec<KeyValue<'static>>) -> SpanView<'static> {
        SpanView {
            trace_id: Some([0x5b; 16]),
            span_id: Some([0x05; 8]),
            name: Cow::Borrowed("GET /orders/{id}"),
            kind: SpanKind::Server,
            start_time_unix_nano: 1_720_000_000_000_000_123,
            end_time_unix_nano: 1_720_000_000_150_500_000,
            attributes,
            ..SpanView::default()
        }
    }

    fn map_span(span: &SpanView<'_>) -> Option<Event> {
        span_to_event(span, &[], &Scope::default()).expect("valid span")
    }

    #[test]
    fn current_conventions() {
        let span = server_span(vec![
            string("http.request.method", "POST"),
            string("url.path", "/v1/orders/42"),
            string("url.query", "expand=items"),
            string("url.scheme", "https"),
            string("server.address", "api.example.com"),
            int("server.port", 443),
            int("http.response.status_code", 201),
            string("network.protocol.version", "2"),
            string("user_agent.original", "okhttp/4.12"),
            string("network.peer.address", "10.0.0.5"),
            int("network.peer.port", 51515),
            string("client.address", "198.51.100.7"),
            int("http.request.body.size", 120),
            int("http.response.body.size", 48),
            string("http.route", "/v1/orders/{id}"),
            string("enduser.id", "partner-7"),
        ]);
        let event = map_span(&span).expect("an HTTP server span");
        assert_eq!(event.source, "otlp");
        assert_eq!(event.time, 1_720_000_000_000_000);
        assert_eq!(event.duration_ms, Some(150.499877));
        assert_eq!(
            event.trace_id.as_deref(),
            Some("5b5b5b5b5b5b5b5b5b5b5b5b5b5b5b5b")
        );
        assert_eq!(event.method.as_deref(), Some("POST"));
        assert_eq!(event.path.as_deref(), Some("/v1/orders/42"));
        assert_eq!(event.query.as_deref(), Some("expand=items"));
        assert_eq!(event.scheme.as_deref(), Some("https"));
        assert_eq!(event.host.as_deref(), Some("api.example.com"));
        assert_eq!(event.status, Some(201));
        assert_eq!(event.http_version.as_deref(), Some("HTTP/2"));
        assert_eq!(event.user_agent.as_deref(), Some("okhttp/4.12"));
        assert_eq!(event.client_ip.as_deref(), Some("10.0.0.5"));
        assert_eq!(event.client_port, Some(51515));
        assert_eq!(event.request_bytes, Some(120));
        assert_eq!(event.response_bytes, Some(48));
        assert_eq!(event.consumer.as_deref(), Some("partner-7"));
        assert_eq!(event.consumer_kind.as_deref(), Some("gateway"));
        let expected = [
            ("server.port", "443"),
            ("client.address", "198.51.100.7"),
            ("http.route", "/v1/orders/{id}"),
            ("span_id", "0505050505050505"),
            ("span_name", "GET /orders/{id}"),
        ];
        let actual: Vec<(&str, &str)> = event
            .attributes
            .iter()
            .map(|(key, value)| (key.as_str(), value.as_str()))
            .collect();
        assert_eq!(actual, expected);
    }

    #[test]
    fn older_conventions() {
        let span = server_span(vec![
            string("http.target", "/customer?id=7"),
            string("net.sock.peer.addr", "0:0:0:0:0:0:0:1"),
            string("http.status_code", "200"),
            int("net.sock.peer.port", 56021),
            string("http.flavor", "1.1"),
            string("http.scheme", "http"),
            string("http.method", "GET"),
            string("http.host", "localhost:8080"),
            string("http.user_agent", "curl/8"),
            int("http.response_content_length", 13),
            int("http.request_content_length", 0),
        ]);
        let event = map_span(&span).expect("an HTTP server span");
        assert_eq!(event.method.as_deref(), Some("GET"));
        assert_eq!(event.path.as_deref(), Some("/customer"));
        assert_eq!(event.query.as_deref(), Some("id=7"));
        assert_eq!(event.scheme.as_deref(), Some("http"));
        assert_eq!(event.host.as_deref(), Some("localhost"));
        assert_eq!(event.attribute("port"), Some("8080"));
        assert_eq!(event.status, Some(200));
        assert_eq!(event.http_version.as_deref(), Some("HTTP/1.1"));
        assert_eq!(event.client_ip.as_deref(), Some("::1"));
        assert_eq!(event.client_port, Some(56021));
        assert_eq!(event.user_agent.as_deref(), Some("curl/8"));
        assert_eq!(event.request_bytes, Some(0));
        assert_eq!(event.response_bytes, Some(13));
    }

    #[test]
    fn current_name_wins_and_older_stays() {
        let span = server_span(vec![
            string("http.method", "GET"),
            string("http.request.method", "PUT"),
            string("http.url", "https://old.example/a"),
            string("url.full", "https://new.example/b?c=1"),
        ]);
        let event = map_span(&span).expect("an HTTP server span");
        assert_eq!(event.method.as_deref(), Some("PUT"));
        assert_eq!(event.host.as_deref(), Some("new.example"));
        assert_eq!(event.path.as_deref(), Some("/b"));
        assert_eq!(event.query.as_deref(), Some("c=1"));
        assert_eq!(event.attribute("http.method"), Some("GET"));
        assert_eq!(event.attribute("http.url"), Some("https://old.example/a"));
        assert_eq!(event.attribute("url.full"), None);
    }

    #[test]
    fn other_method() {
        let span = server_span(vec![
            string("http.request.method", "_OTHER"),
            string("http.request.method_original", "PROPFIND"),
        ]);
        let event = map_span(&span).expect("an HTTP server span");
        assert_eq!(event.method.as_deref(), Some("PROPFIND"));
        assert_eq!(event.attribute("http.request.method_original"), None);
    }

    #[test]
    fn client_address_when_no_peer() {
        let span = server_span(vec![
            string("http.request.method", "GET"),
            string("client.address", "2001:db8::7"),
            int("client.port", 4000),
        ]);
        let event = map_span(&span).expect("an HTTP server span");
        assert_eq!(event.client_ip.as_deref(), Some("2001:db8::7"));
        assert_eq!(event.client_port, Some(4000));
    }

    #[test]
    fn headers_and_lists() {
        let headers = |values: &[&'static str]| {
            AnyValue::Array(
                values
                    .iter()
                    .map(|value| AnyValue::String(Cow::Borrowed(*value)))
                    .collect(),
            )
        };
        let span = server_span(vec![
            string("http.request.method", "GET"),
            KeyValue::new(
                "http.request.header.x-forwarded-for",
                headers(&["203.0.113.1", "10.0.0.1"]),
            ),
            KeyValue::new(
                "http.request.header.referer",
                headers(&["https://app.example/"]),
            ),
            KeyValue::new(
                "http.request.header.authorization",
                headers(&["Bearer abc"]),
            ),
            KeyValue::new("http.request.header.cookie", headers(&["a=1", "b=2"])),
            KeyValue::new(
                "mixed",
                AnyValue::Array(vec![AnyValue::Int(1), AnyValue::Bool(true)]),
            ),
            KeyValue::new("raw", AnyValue::Bytes(Cow::Borrowed(b"\x00\xff"))),
            KeyValue::new("nothing", AnyValue::Empty),
        ]);
        let event = map_span(&span).expect("an HTTP server span");
        assert_eq!(
            event.forwarded_for.as_deref(),
            Some("203.0.113.1, 10.0.0.1")
        );
        assert_eq!(event.referer.as_deref(), Some("https://app.example/"));
        assert_eq!(
            event.attribute("http.request.header.authorization"),
            Some("Bearer abc")
        );
        assert_eq!(
            event.attribute("http.request.header.cookie"),
            Some("a=1; b=2")
        );
        assert_eq!(event.attribute("mixed"), Some("[1,true]"));
        assert_eq!(event.attribute("raw"), Some("AP8="));
        assert_eq!(event.attribute("nothing"), None);
    }

    #[test]
    fn status_and_origin() {
        let mut span = server_span(vec![string("http.route", "/health")]);
        span.status_code = StatusCode::Error;
        span.status_message = Cow::Borrowed("upstream slow");
        span.parent_span_id = Some([1; 8]);
        let scope = Scope {
            name: Cow::Borrowed("io.opentelemetry.tomcat-10.0"),
            version: Cow::Borrowed("1.26.0-alpha"),
            attributes: vec![string("scope.attr", "s")],
        };
        let resource = [
            string("service.name", "ms-one"),
            string("http.route", "/from-resource"),
        ];
        let event = span_to_event(&span, &resource, &scope)
            .expect("valid span")
            .expect("an HTTP server span");
        assert_eq!(event.path, None);
        assert_eq!(event.attribute("http.route"), Some("/health"));
        assert_eq!(event.attribute("parent_span_id"), Some("0101010101010101"));
        assert_eq!(event.attribute("otel.status_code"), Some("ERROR"));
        assert_eq!(
            event.attribute("otel.status_description"),
            Some("upstream slow")
        );
        assert_eq!(
            event.attribute("otel.scope.name"),
            Some("io.opentelemetry.tomcat-10.0")
        );
        assert_eq!(event.attribute("scope.attr"), Some("s"));
        assert_eq!(event.attribute("service.name"), Some("ms-one"));
        assert_eq!(
            event
                .attributes
                .iter()
                .filter(|(key, _)| key == "http.route")
                .count(),
            1,
            "a span attribute hides the resource attribute of the same key"
        );
    }

    #[test]
    fn spans_that_are_not_http_server_spans() {
        let mut client = server_span(vec![string("http.request.method", "GET")]);
        client.kind = SpanKind::Client;
        assert_eq!(map_span(&client), None);

        let rpc = server_span(vec![string("rpc.system", "grpc")]);
        assert_eq!(map_span(&rpc), None);

        let bare = server_span(vec![]);
        assert_eq!(map_span(&bare), None);
    }

    #[test]
    fn missing_start_time_is_an_error() {
        let mut span = server_span(vec![string("http.request.method", "GET")]);
        span.start_time_unix_nano = 0;
        assert_eq!(
            span_to_event(&span, &[], &Scope::default()),
            Err("missing startTimeUnixNano".to_string())
        );
    }

    #[test]
    fn end_before_start_has_no_duration() {
        let mut span = server_span(vec![string("http.request.method", "GET")]);
        span.end_time_unix_nano = 0;
        let event = map_span(&span).expect("an HTTP server span");
        assert_eq!(event.duration_ms, None);
    }

    #[test]
    fn access_log_record() {
        let record = LogRecordView {
            time_unix_nano: 0,
            observed_time_unix_nano: 1_700_000_000_500_000_000,
            severity_text: Cow::Borrowed("INFO"),
            body: Some(AnyValue::String(Cow::Borrowed("GET /v1/items 200 12ms"))),
            attributes: vec![
                string("http.request.method", "GET"),
                string("url.path", "/v1/items"),
                int("http.response.status_code", 200),
                string("client.address", "192.0.2.10"),
            ],
            trace_id: Some([0xab; 16]),
            span_id: None,
            ..LogRecordView::default()
        };
        let resource = [string("service.name", "edge")];
        let event = log_record_to_event(&record, &resource, &Scope::default())
            .expect("valid record")
            .expect("an HTTP record");
        assert_eq!(event.time, 1_700_000_000_500_000);
        assert_eq!(event.method.as_deref(), Some("GET"));
        assert_eq!(event.path.as_deref(), Some("/v1/items"));
        assert_eq!(event.status, Some(200));
        assert_eq!(event.client_ip.as_deref(), Some("192.0.2.10"));
        assert_eq!(event.trace_id.as_deref(), Some(&"ab".repeat(16)[..]));
        assert_eq!(event.attribute("severity_text"), Some("INFO"));
        assert_eq!(event.attribute("body"), Some("GET /v1/items 200 12ms"));
        assert_eq!(event.attribute("service.name"), Some("edge"));
    }

    #[test]
    fn log_records_without_http_or_time() {
        let plain = LogRecordView {
            time_unix_nano: 1,
            attributes: vec![string("logger", "main")],
            ..LogRecordView::default()
        };
        assert_eq!(
            log_record_to_event(&plain, &[], &Scope::default()),
            Ok(None)
        );
        let timeless = LogRecordView {
            attributes: vec![string("http.request.method", "GET")],
            ..LogRecordView::default()
        };
        assert_eq!(
            log_record_to_event(&timeless, &[], &Scope::default()),
            Err("missing timeUnixNano and observedTimeUnixNano".to_string())
        );
    }
}
