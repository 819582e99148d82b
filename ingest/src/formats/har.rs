//! HTTP Archive captures (`har`): HAR 1.2 files that browsers, proxies and
//! API tools export.
//!
//! A capture is one JSON document, whether on one line or pretty-printed over
//! thousands, and the framer hands it to the parser as one record. Every item
//! of `log.entries` becomes one event:
//!
//! | HAR field | column |
//! |---|---|
//! | `startedDateTime` | `time` (the START of the request) |
//! | `time` (total ms) | `duration_ms` |
//! | `request.method` | `method` |
//! | `request.url` (absolute) | `scheme`, `host`, `path`, `query`; its port goes to attribute `port` |
//! | `request.httpVersion`, else `response.httpVersion` | `http_version` |
//! | `request.bodySize` | `request_bytes` |
//! | `response.status` | `status` (`0`, written for a request that got no response, is NULL) |
//! | `response.bodySize`, else `response.content.size` | `response_bytes` |
//! | request header `User-Agent` | `user_agent` |
//! | request header `Referer` | `referer` |
//! | request header `X-Forwarded-For` | `forwarded_for` |
//!
//! Other request headers go to attributes `request.headers.<name>` and
//! response headers to `response.headers.<name>`, with the name lowercased
//! and repeated headers joined. So `Authorization`, `Cookie` and
//! `Set-Cookie` land in attributes whose names the redactor hashes, and
//! `request.headers.x-api-key` is one the identity rules read. HTTP/2
//! pseudo-headers (`:method`, `:path`, ...) repeat the URL and are left out.
//!
//! The `cookies` and `queryString` lists repeat the headers and the URL, so
//! they are left out. Request and response bodies (`postData.text`,
//! `postData.params`, `content.text`) are left out because they can hold
//! passwords and personal data, and so is `cache`. Timings go to attributes `timings.<phase>`, where `-1`
//! (not applicable) is left out. `serverIPAddress`, `connection`, `pageref`,
//! `comment`, `request.headersSize`, `response.headersSize`,
//! `response.statusText`, `response.redirectURL`, `request.postData.mimeType`
//! and `response.content.mimeType` go to attributes under those names.
//! Fields that browsers add, such as Chrome's `_resourceType`, `_priority`
//! or `response._transferSize`, go to attributes as well. Of an object such
//! as `_initiator`, only its scalar members are kept (`_initiator.type`),
//! not the nested call stacks. Sizes of `-1` mean unknown.
//!
//! A capture yields its events or one rejection. An entry without a valid
//! `startedDateTime` rejects the whole capture, with a reason that names the
//! entry's index, rather than dropping that entry unseen. A capture with no
//! entries is skipped.

use crate::event::Event;
use crate::format::Format;
use crate::formats::capture::{
    json_f64, json_i64, member, push_attribute, push_header, push_json_attribute, set_url,
};
use crate::formats::json::Json;
use crate::parse::{LineOutcome, ParseContext};
use crate::text::{parse_iso8601, quote_excerpt};

const REQUEST_HEADER_PREFIX: &str = "request.headers.";
const RESPONSE_HEADER_PREFIX: &str = "response.headers.";

/// Parses one HAR document.
pub fn parse_line(record: &str, _ctx: &ParseContext<'_>) -> LineOutcome {
    parse_record(record)
}

/// Parses one HAR document without the per-input settings, as format detection needs.
pub(crate) fn parse_record(record: &str) -> LineOutcome {
    let record = record.strip_prefix('\u{feff}').unwrap_or(record).trim();
    // Most records of other formats are not JSON objects, or are JSON
    // without the `entries` key: both are rejected before parsing any JSON.
    if !record.starts_with('{') || memchr::memmem::find(record.as_bytes(), b"\"entries\"").is_none()
    {
        return LineOutcome::Rejected(
            "not a HAR capture: expected a JSON object with log.entries".to_string(),
        );
    }
    match build_events(record) {
        Ok(events) if events.is_empty() => LineOutcome::Skipped("har_without_entries"),
        Ok(events) => LineOutcome::Events(events),
        Err(reason) => LineOutcome::Rejected(reason),
    }
}

fn build_events(record: &str) -> Result<Vec<Event>, String> {
    let document: Json<'_> =
        serde_json::from_str(record).map_err(|error| format!("invalid JSON: {error}"))?;
    let Json::Object(members) = &document else {
        return Err(format!("expected a JSON object, found {}", document.kind()));
    };
    let Some(Json::Object(log)) = member(members, "log") else {
        return Err("not a HAR capture: missing the log object".to_string());
    };
    let entries = match member(log, "entries") {
        Some(Json::Array(entries)) => entries,
        Some(other) => {
            return Err(format!(
                "log.entries should be an array, found {}",
                other.kind()
            ));
        }
        None => return Err("not a HAR capture: missing log.entries".to_string()),
    };

    let mut events = Vec::with_capacity(entries.len());
    for (index, entry) in entries.iter().enumerate() {
        let event = entry_to_event(entry).map_err(|reason| {
            format!("log.entries[{index}]: {reason}; no entry of this capture was imported")
        })?;
        events.push(event);
    }
    Ok(events)
}

/// Builds the event of one entry.
fn entry_to_event(entry: &Json<'_>) -> Result<Event, String> {
    let Json::Object(members) = entry else {
        return Err(format!("expected an object, found {}", entry.kind()));
    };
    let mut event = Event::new(Format::Har.name(), 0);
    let mut time = None;
    for (key, value) in members {
        match key.as_ref() {
            "startedDateTime" => time = Some(parse_started(value)?),
            "time" => event.duration_ms = json_f64(value).filter(|ms| *ms >= 0.0),
            "request" => apply_request(&mut event, value),
            "response" => apply_response(&mut event, value),
            "timings" => push_timings(&mut event, value),
            "cache" => {}
            _ => push_extra(&mut event, "", key, value),
        }
    }
    event.time = time.ok_or("missing startedDateTime")?;
    Ok(event)
}

/// Parses `startedDateTime`, an ISO 8601 time with or without fractions and with `Z` or an offset.
fn parse_started(value: &Json<'_>) -> Result<i64, String> {
    let Json::String(text) = value else {
        return Err(format!(
            "startedDateTime should be a string, found {}",
            value.kind()
        ));
    };
    parse_iso8601(text).ok_or_else(|| format!("invalid startedDateTime {}", quote_excerpt(text)))
}

fn apply_request(event: &mut Event, request: &Json<'_>) {
    let Json::Object(members) = request else {
        return;
    };
    let method = member(members, "method").and_then(string);
    if let Some(method) = method.filter(|method| !method.is_empty()) {
        event.method = Some(method.to_string());
    }
    for (key, value) in members {
        match key.as_ref() {
            "method" | "cookies" | "queryString" => {}
            "url" => {
                if let Some(url) = string(value)
                    && !set_url(event, method.unwrap_or_default(), url)
                {
                    event.malformed = true;
                    push_attribute(event, "request.url", url);
                }
            }
            "httpVersion" => {
                if let Some(version) = string(value).filter(|version| !version.is_empty()) {
                    event.http_version = Some(version.to_string());
                }
            }
            "headers" => push_request_headers(event, value),
            "postData" => {
                if let Json::Object(post_data) = value
                    && let Some(mime_type) = member(post_data, "mimeType")
                {
                    push_json_attribute(event, "request.postData.mimeType", mime_type);
                }
            }
            "bodySize" => event.request_bytes = size(value),
            "headersSize" => push_size(event, "request.headersSize", value),
            _ => push_extra(event, "request.", key, value),
        }
    }
}

fn apply_response(event: &mut Event, response: &Json<'_>) {
    let Json::Object(members) = response else {
        return;
    };
    let mut content_size = None;
    for (key, value) in members {
        match key.as_ref() {
            "cookies" => {}
            "status" => {
                event.status = json_i64(value)
                    .filter(|status| *status > 0)
                    .and_then(|status| i32::try_from(status).ok());
            }
            "httpVersion" => {
                if let Some(version) = string(value).filter(|version| !version.is_empty()) {
                    match &event.http_version {
                        None => event.http_version = Some(version.to_string()),
                        Some(request_version) if request_version != version => {
                            push_attribute(event, "response.httpVersion", version);
                        }
                        Some(_) => {}
                    }
                }
            }
            "headers" => push_headers(event, RESPONSE_HEADER_PREFIX, value),
            "content" => content_size = push_content(event, value),
            "bodySize" => event.response_bytes = size(value),
            "headersSize" => push_size(event, "response.headersSize", value),
            _ => push_extra(event, "response.", key, value),
        }
    }
    if event.response_bytes.is_none() {
        event.response_bytes = content_size;
    }
}

/// Keeps the content's size and MIME type, leaving the body text out, and returns the size.
fn push_content(event: &mut Event, content: &Json<'_>) -> Option<i64> {
    let Json::Object(members) = content else {
        return None;
    };
    let mut content_size = None;
    for (key, value) in members {
        match key.as_ref() {
            "size" => {
                content_size = size(value);
                push_size(event, "response.content.size", value);
            }
            "mimeType" | "compression" => {
                push_json_attribute(event, &format!("response.content.{key}"), value);
            }
            _ => {}
        }
    }
    content_size
}

/// Fills `user_agent`, `referer` and `forwarded_for` from their headers and
/// keeps every other request header as an attribute.
fn push_request_headers(event: &mut Event, headers: &Json<'_>) {
    let block_start = event.attributes.len();
    for (name, value) in header_pairs(headers) {
        if name.eq_ignore_ascii_case("user-agent") && event.user_agent.is_none() {
            event.user_agent = Some(value.to_string());
        } else if name.eq_ignore_ascii_case("referer") && event.referer.is_none() {
            event.referer = Some(value.to_string());
        } else if name.eq_ignore_ascii_case("x-forwarded-for") {
            match &mut event.forwarded_for {
                Some(chain) => {
                    chain.push_str(", ");
                    chain.push_str(value);
                }
                None => event.forwarded_for = Some(value.to_string()),
            }
        } else {
            push_header(event, block_start, REQUEST_HEADER_PREFIX, name, value);
        }
    }
}

fn push_headers(event: &mut Event, prefix: &str, headers: &Json<'_>) {
    let block_start = event.attributes.len();
    for (name, value) in header_pairs(headers) {
        push_header(event, block_start, prefix, name, value);
    }
}

/// Lists the `name` and `value` of each header object, without HTTP/2 pseudo-headers.
fn header_pairs<'v>(headers: &'v Json<'_>) -> impl Iterator<Item = (&'v str, &'v str)> {
    let items: &[Json<'_>] = match headers {
        Json::Array(items) => items,
        _ => &[],
    };
    items.iter().filter_map(|header| {
        let Json::Object(members) = header else {
            return None;
        };
        let name = member(members, "name").and_then(string)?;
        let value = member(members, "value").and_then(string)?;
        (!name.is_empty() && !name.starts_with(':')).then_some((name, value))
    })
}

/// Keeps each timing phase that applied, in milliseconds; `-1` means the phase did not apply.
fn push_timings(event: &mut Event, timings: &Json<'_>) {
    let Json::Object(members) = timings else {
        return;
    };
    for (key, value) in members {
        let not_applicable = json_f64(value).is_some_and(|ms| ms < 0.0);
        if !not_applicable {
            push_json_attribute(event, &format!("timings.{key}"), value);
        }
    }
}

/// Keeps a field without a column: a scalar as it is, an object by its scalar
/// members, and nothing of an array or of deeper objects.
fn push_extra(event: &mut Event, prefix: &str, key: &str, value: &Json<'_>) {
    match value {
        Json::Array(_) => {}
        Json::Object(members) => {
            for (inner_key, inner) in members {
                if !matches!(inner, Json::Array(_) | Json::Object(_)) {
                    push_json_attribute(event, &format!("{prefix}{key}.{inner_key}"), inner);
                }
            }
        }
        _ => push_json_attribute(event, &format!("{prefix}{key}"), value),
    }
}

/// Keeps a size attribute unless it is `-1` (unknown).
fn push_size(event: &mut Event, key: &str, value: &Json<'_>) {
    if let Some(bytes) = size(value) {
        push_attribute(event, key, &bytes.to_string());
    }
}

/// Reads a size in bytes; negative sizes mean unknown.
fn size(value: &Json<'_>) -> Option<i64> {
    json_i64(value).filter(|bytes| *bytes >= 0)
}

fn string<'v>(value: &'v Json<'_>) -> Option<&'v str> {
    match value {
        Json::String(text) => Some(text.as_ref()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::formats::capture::driver;
    use crate::formats::test_support::expect_rejection;

    fn parse_events(record: &str) -> Vec<Event> {
        match parse_record(record) {
            LineOutcome::Events(events) => events,
            other => panic!("expected events for {record:?}, got {other:?}"),
        }
    }

    fn rejection(record: &str) -> String {
        expect_rejection(record, parse_record(record))
    }

    /// Wraps entries into a HAR document.
    fn har(entries: &[&str]) -> String {
        format!(
            r#"{{"log":{{"version":"1.2","creator":{{"name":"test","version":"1"}},"entries":[{}]}}}}"#,
            entries.join(",")
        )
    }

    const API_ENTRY: &str = r#"{
        "startedDateTime": "2024-03-01T10:15:30.250+01:00",
        "time": 42.5,
        "request": {
            "method": "POST",
            "url": "https://api.example.com:8443/v1/orders?expand=items&api_key=k1",
            "httpVersion": "HTTP/1.1",
            "headers": [
                {"name": "Host", "value": "api.example.com:8443"},
                {"name": "User-Agent", "value": "curl/8.5.0"},
                {"name": "Referer", "value": "https://app.example.com/"},
                {"name": "Authorization", "value": "Bearer abc.def.ghi"},
                {"name": "Cookie", "value": "sid=1"},
                {"name": "cookie", "value": "theme=dark"},
                {"name": "X-API-Key", "value": "key-123"}
            ],
            "cookies": [{"name": "sid", "value": "1"}],
            "queryString": [{"name": "expand", "value": "items"}],
            "postData": {"mimeType": "application/json", "text": "{\"password\":\"p\"}"},
            "headersSize": 310,
            "bodySize": 16
        },
        "response": {
            "status": 201,
            "statusText": "Created",
            "httpVersion": "HTTP/1.1",
            "headers": [
                {"name": "Content-Type", "value": "application/json"},
                {"name": "Set-Cookie", "value": "sid=2; Path=/"}
            ],
            "cookies": [],
            "content": {"size": 120, "mimeType": "application/json", "text": "{\"id\":1}"},
            "redirectURL": "",
            "headersSize": 98,
            "bodySize": 80
        },
        "cache": {},
        "timings": {"blocked": 0.5, "dns": -1, "connect": -1, "send": 0.1, "wait": 40.9, "receive": 1.0, "ssl": -1},
        "serverIPAddress": "203.0.113.7",
        "connection": "5123"
    }"#;

    #[test]
    fn entry_fields_map_to_columns() {
        let events = parse_events(&har(&[API_ENTRY]));
        assert_eq!(events.len(), 1);
        let event = &events[0];
        assert_eq!(event.source, "har");
        // 2024-03-01T09:15:30.250Z
        assert_eq!(event.time, 1_709_284_530_250_000);
        assert_eq!(event.duration_ms, Some(42.5));
        assert_eq!(event.method.as_deref(), Some("POST"));
        assert_eq!(event.scheme.as_deref(), Some("https"));
        assert_eq!(event.host.as_deref(), Some("api.example.com"));
        assert_eq!(event.path.as_deref(), Some("/v1/orders"));
        assert_eq!(event.query.as_deref(), Some("expand=items&api_key=k1"));
        assert_eq!(event.http_version.as_deref(), Some("HTTP/1.1"));
        assert_eq!(event.request_bytes, Some(16));
        assert_eq!(event.status, Some(201));
        assert_eq!(event.response_bytes, Some(80));
        assert_eq!(event.user_agent.as_deref(), Some("curl/8.5.0"));
        assert_eq!(event.referer.as_deref(), Some("https://app.example.com/"));
        assert_eq!(event.client_ip, None);
    }

    #[test]
    fn entry_attributes() {
        let event = &parse_events(&har(&[API_ENTRY]))[0];
        let attribute = |name| event.attribute(name);
        assert_eq!(attribute("port"), Some("8443"));
        assert_eq!(
            attribute("request.headers.host"),
            Some("api.example.com:8443")
        );
        assert_eq!(
            attribute("request.headers.authorization"),
            Some("Bearer abc.def.ghi")
        );
        assert_eq!(
            attribute("request.headers.cookie"),
            Some("sid=1; theme=dark")
        );
        assert_eq!(attribute("request.headers.x-api-key"), Some("key-123"));
        assert_eq!(attribute("request.headers.user-agent"), None);
        assert_eq!(
            attribute("request.postData.mimeType"),
            Some("application/json")
        );
        assert_eq!(attribute("request.headersSize"), Some("310"));
        assert_eq!(attribute("response.statusText"), Some("Created"));
        assert_eq!(attribute("response.httpVersion"), None);
        assert_eq!(
            attribute("response.headers.set-cookie"),
            Some("sid=2; Path=/")
        );
        assert_eq!(attribute("response.content.size"), Some("120"));
        assert_eq!(attribute("response.redirectURL"), None);
        assert_eq!(attribute("timings.wait"), Some("40.9"));
        assert_eq!(attribute("timings.dns"), None);
        assert_eq!(attribute("serverIPAddress"), Some("203.0.113.7"));
        assert_eq!(attribute("connection"), Some("5123"));
        for (key, value) in &event.attributes {
            assert!(
                !key.contains("cookies") && !key.contains("queryString"),
                "{key} repeats a header or the URL"
            );
            assert!(!value.contains("password"), "{key} holds a body: {value}");
        }
    }

    #[test]
    fn driver_hashes_credentials() {
        let rows = driver::stored_attributes(Format::Har, &har(&[API_ENTRY]));
        let row = &rows[0];
        let hash = |secret: &str| driver::redactor().hash(secret);
        assert_eq!(
            driver::value(row, "request.headers.authorization"),
            Some(format!("Bearer {}", hash("abc.def.ghi")).as_str())
        );
        assert_eq!(
            driver::value(row, "request.headers.cookie"),
            Some(format!("sid={}; theme={}", hash("1"), hash("dark")).as_str())
        );
        assert_eq!(
            driver::value(row, "request.headers.x-api-key"),
            Some(hash("key-123").as_str())
        );
        assert_eq!(
            driver::value(row, "response.headers.set-cookie"),
            Some(format!("sid={}; Path=/", hash("2")).as_str())
        );
    }

    #[test]
    fn identity_rules_read_api_key_header() {
        let redactor = driver::redactor();
        let identity = crate::identity::IdentityConfig::default();
        let mut ctx = ParseContext::new(&redactor);
        ctx.identity = Some(&identity);
        let chunk = crate::parse::parse_chunk(Format::Har, har(&[API_ENTRY]).as_bytes(), 1, &ctx);
        let column = |name: &str| {
            chunk
                .batch
                .column_by_name(name)
                .and_then(|column| column.as_any().downcast_ref::<arrow::array::StringArray>())
                .map(|values| values.value(0).to_string())
        };
        assert_eq!(column("consumer"), Some(redactor.hash("key-123")));
        assert_eq!(column("consumer_kind").as_deref(), Some("api_key"));
    }

    #[test]
    fn time_forms() {
        let entry = |started: &str| {
            format!(
                r#"{{"startedDateTime":"{started}","request":{{"method":"GET","url":"http://h/"}},"response":{{"status":200}}}}"#
            )
        };
        let times: Vec<i64> = [
            "2022-02-04T09:34:35.225+0530",
            "2022-02-04T04:04:35.225Z",
            "2022-02-04T04:04:35.225000123Z",
            "2022-02-04T04:04:35Z",
            "2022-02-04T06:04:35+02:00",
        ]
        .iter()
        .map(|started| parse_events(&har(&[&entry(started)]))[0].time)
        .collect();
        assert_eq!(
            times,
            [
                1_643_947_475_225_000,
                1_643_947_475_225_000,
                1_643_947_475_225_000,
                1_643_947_475_000_000,
                1_643_947_475_000_000,
            ]
        );
    }

    #[test]
    fn one_event_per_entry() {
        let first = r#"{"startedDateTime":"2024-01-01T00:00:00Z","request":{"method":"GET","url":"https://a.example/x"},"response":{"status":200}}"#;
        let second = r#"{"startedDateTime":"2024-01-01T00:00:01Z","request":{"method":"DELETE","url":"https://a.example/y/9223372036854017000"},"response":{"status":404}}"#;
        let events = parse_events(&har(&[first, second]));
        assert_eq!(events.len(), 2);
        assert_eq!(events[0].path.as_deref(), Some("/x"));
        assert_eq!(
            events[1].path.as_deref(),
            Some("/y/9223372036854017000"),
            "ids beyond i64 stay text"
        );
        assert_eq!(events[1].status, Some(404));
    }

    #[test]
    fn chrome_entry() {
        let entry = r#"{"_initiator":{"type":"script","stack":{"callFrames":[{"url":"https://x/app.js"}]}},
            "_priority":"High","_resourceType":"fetch","cache":{},"connection":"418","pageref":"page_1",
            "request":{"method":"GET","url":"https://petstore.example/v2/pet/1","httpVersion":"http/2.0",
                "headers":[{"name":":authority","value":"petstore.example"},{"name":":path","value":"/v2/pet/1"},
                    {"name":"user-agent","value":"Mozilla/5.0"}],
                "queryString":[],"cookies":[],"headersSize":-1,"bodySize":0},
            "response":{"status":200,"statusText":"","httpVersion":"http/2.0","headers":[],"cookies":[],
                "content":{"size":96,"mimeType":"application/json"},"redirectURL":"","headersSize":-1,
                "bodySize":-1,"_transferSize":227,"_error":null},
            "serverIPAddress":"52.70.147.42","startedDateTime":"2022-05-11T11:49:24.973Z","time":96.128,
            "timings":{"blocked":1.31,"dns":-1,"ssl":-1,"connect":-1,"send":0.086,"wait":94.17,"receive":0.55,"_blocked_queueing":0.91}}"#;
        let event = &parse_events(&har(&[entry]))[0];
        assert_eq!(event.http_version.as_deref(), Some("http/2.0"));
        assert_eq!(event.request_bytes, Some(0));
        assert_eq!(
            event.response_bytes,
            Some(96),
            "content.size stands in for bodySize -1"
        );
        assert_eq!(event.attribute("_initiator.type"), Some("script"));
        assert_eq!(event.attribute("_priority"), Some("High"));
        assert_eq!(event.attribute("_resourceType"), Some("fetch"));
        assert_eq!(event.attribute("pageref"), Some("page_1"));
        assert_eq!(event.attribute("response._transferSize"), Some("227"));
        assert_eq!(event.attribute("response._error"), None);
        assert_eq!(event.attribute("request.headersSize"), None);
        assert_eq!(event.attribute("timings._blocked_queueing"), Some("0.91"));
        assert!(
            event
                .attributes
                .iter()
                .all(|(key, _)| !key.contains(':') && !key.contains("stack")),
            "pseudo-headers and call stacks are left out: {:?}",
            event.attributes
        );
    }

    #[test]
    fn failed_request_has_no_status() {
        let entry = r#"{"startedDateTime":"2024-01-01T00:00:00Z","time":-1,"request":{"method":"GET","url":"https://a.example/x","bodySize":-1},"response":{"status":0,"bodySize":-1,"_error":"net::ERR_CONNECTION_REFUSED","content":{"size":-1}}}"#;
        let event = &parse_events(&har(&[entry]))[0];
        assert_eq!(event.status, None);
        assert_eq!(event.duration_ms, None);
        assert_eq!(event.request_bytes, None);
        assert_eq!(event.response_bytes, None);
        assert_eq!(
            event.attribute("response._error"),
            Some("net::ERR_CONNECTION_REFUSED")
        );
    }

    #[test]
    fn response_version_fills_missing_request_version() {
        let entry = r#"{"startedDateTime":"2024-01-01T00:00:00Z","request":{"method":"GET","url":"https://a.example/","httpVersion":""},"response":{"status":200,"httpVersion":"h3"}}"#;
        let event = &parse_events(&har(&[entry]))[0];
        assert_eq!(event.http_version.as_deref(), Some("h3"));
        assert_eq!(event.path.as_deref(), Some("/"));
    }

    #[test]
    fn forwarded_for_header() {
        let entry = r#"{"startedDateTime":"2024-01-01T00:00:00Z","request":{"method":"GET","url":"http://a.example/","headers":[{"name":"X-Forwarded-For","value":"198.51.100.1"},{"name":"x-forwarded-for","value":"10.0.0.1"}]},"response":{"status":200}}"#;
        let event = &parse_events(&har(&[entry]))[0];
        assert_eq!(
            event.forwarded_for.as_deref(),
            Some("198.51.100.1, 10.0.0.1")
        );
    }

    #[test]
    fn url_without_known_form_is_malformed() {
        let entry = r#"{"startedDateTime":"2024-01-01T00:00:00Z","request":{"method":"GET","url":"data:text/plain,hi"},"response":{"status":200}}"#;
        let event = &parse_events(&har(&[entry]))[0];
        assert!(event.malformed);
        assert_eq!(event.path, None);
        assert_eq!(event.attribute("request.url"), Some("data:text/plain,hi"));
    }

    #[test]
    fn empty_capture_is_skipped() {
        assert!(matches!(
            parse_record(&har(&[])),
            LineOutcome::Skipped("har_without_entries")
        ));
    }

    #[test]
    fn invalid_entry_rejects_capture() {
        let good = r#"{"startedDateTime":"2024-01-01T00:00:00Z","request":{"method":"GET","url":"http://a/"},"response":{"status":200}}"#;
        let bad_time = r#"{"startedDateTime":"yesterday","request":{"method":"GET","url":"http://a/"},"response":{"status":200}}"#;
        let no_time = r#"{"request":{"method":"GET","url":"http://a/"},"response":{"status":200}}"#;
        assert_eq!(
            rejection(&har(&[good, bad_time])),
            r#"log.entries[1]: invalid startedDateTime "yesterday"; no entry of this capture was imported"#
        );
        assert_eq!(
            rejection(&har(&[no_time, good, good])),
            "log.entries[0]: missing startedDateTime; no entry of this capture was imported"
        );
        assert_eq!(
            rejection(&har(&["42"])),
            "log.entries[0]: expected an object, found a number; no entry of this capture was imported"
        );
    }

    #[test]
    fn rejects_other_records() {
        assert_eq!(
            rejection(r#"127.0.0.1 - - [10/Oct/2000:13:55:36 -0700] "GET / HTTP/1.0" 200 1"#),
            "not a HAR capture: expected a JSON object with log.entries"
        );
        assert_eq!(
            rejection(r#"{"resourceSpans":[]}"#),
            "not a HAR capture: expected a JSON object with log.entries"
        );
        assert_eq!(
            rejection(r#"{"entries":[]}"#),
            "not a HAR capture: missing the log object"
        );
        assert_eq!(
            rejection(r#"{"log":{"entries":{}}}"#),
            "log.entries should be an array, found an object"
        );
        let cut = rejection(r#"{"log":{"entries":[{"startedDateTime""#);
        assert!(cut.starts_with("invalid JSON: "), "{cut}");
    }

    #[test]
    fn odd_input_does_not_panic() {
        for sample in [
            "",
            "{",
            r#"{"entries""#,
            r#"{"log":{"entries":[null,{"request":1,"response":"x","timings":[1]}]}}"#,
            r#"{"log":{"entries":[{"startedDateTime":"2024-01-01T00:00:00Z","request":{"headers":[1,{"name":1}],"url":7},"response":{"headers":{},"content":[]}}]}}"#,
        ] {
            let _ = parse_record(sample);
        }
    }

    #[test]
    fn escaped_keys_match() {
        let entry = r#"{"started\u0044ateTime":"2024-01-01T00:00:00Z","request":{"method":"GET","url":"http://a/"},"response":{"status":200}}"#;
        let events = parse_events(&har(&[entry]));
        assert_eq!(events[0].time, 1_704_067_200_000_000);
    }
}
