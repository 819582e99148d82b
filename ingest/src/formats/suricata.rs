//! Suricata `eve.json` (`suricata_eve`): the `http` events of Suricata's
//! JSON event log.
//!
//! Each line is one JSON object with an `event_type`. Records of type `http`
//! become events. Every other type is skipped with the tag `not_http`,
//! including `alert` and `fileinfo` records that carry an `http` object.
//! Those describe a signature match or a file of a transaction, and the
//! transaction's own `http` record describes the request already, so
//! counting them would count the request twice.
//!
//! | field | column |
//! |---|---|
//! | `timestamp` | `time` (see below) |
//! | `src_ip`, `src_port` | `client_ip`, `client_port` |
//! | `http.http_method` | `method` |
//! | `http.hostname` | `host` |
//! | `http.url` | `path` and `query`; an absolute URI also fills `scheme` and `host` |
//! | `http.protocol` | `http_version` |
//! | `http.status` | `status` (often missing when Suricata saw no response) |
//! | `http.length` | `response_bytes` |
//! | `http.http_user_agent` | `user_agent` |
//! | `http.http_refer` | `referer` |
//! | `http.xff` | `forwarded_for` |
//! | `host` (the sensor name, when configured) | `sensor` |
//!
//! `time` is `timestamp`, the time of the packet on which Suricata logged
//! the transaction, which is normally when the response was complete, so
//! it is near the END of the request. It carries an offset such as `-0400`;
//! a timestamp without one is read as UTC.
//!
//! Suricata logs `src_ip` as the client of the transaction. `dest_ip`,
//! `dest_port`, `flow_id`, `tx_id`, `in_iface`, `proto`, `app_proto`,
//! `community_id`, `http.http_port`, `http.http_content_type`,
//! `http.redirect` and every other field go to attributes under their
//! flattened names. The headers that `dump-all-headers` adds
//! (`http.request_headers` and `http.response_headers`) go to attributes
//! `http.request.header.<name>` and `http.response.header.<name>`, with
//! the name lowercased and repeated headers joined, so the redactor hashes
//! `Authorization` and `Cookie` values and the identity rules find
//! `X-API-Key`. Logged bodies (`http_request_body`, `http_response_body`
//! and their `_printable` forms) are left out: they can hold passwords and
//! personal data.

use std::borrow::Cow;

use crate::event::Event;
use crate::format::Format;
use crate::formats::capture::{json_i64, member, push_header, push_json_attribute, set_url};
use crate::formats::json::{Json, flatten};
use crate::parse::{LineOutcome, ParseContext};
use crate::text::{normalise_ip, parse_iso8601, quote_excerpt};

const REQUEST_HEADER_PREFIX: &str = "http.request.header.";
const RESPONSE_HEADER_PREFIX: &str = "http.response.header.";

/// Fields of the `http` object that hold bodies, which are not stored.
const BODY_FIELDS: [&str; 4] = [
    "http_request_body",
    "http_response_body",
    "http_request_body_printable",
    "http_response_body_printable",
];

/// Parses one line of an `eve.json` log.
pub fn parse_line(line: &str, _ctx: &ParseContext<'_>) -> LineOutcome {
    parse_record(line)
}

/// Parses one line without the per-input settings, as format detection needs.
pub(crate) fn parse_record(line: &str) -> LineOutcome {
    let line = line.strip_prefix('\u{feff}').unwrap_or(line).trim();
    if !line.starts_with('{') || memchr::memmem::find(line.as_bytes(), b"\"event_type\"").is_none()
    {
        return LineOutcome::Rejected(
            "not a Suricata eve.json record: expected a JSON object with event_type".to_string(),
        );
    }
    match build_event(line) {
        Ok(Some(event)) => LineOutcome::Event(Box::new(event)),
        Ok(None) => LineOutcome::Skipped("not_http"),
        Err(reason) => LineOutcome::Rejected(reason),
    }
}

/// Builds the event of an `http` record, or returns `None` for another event type.
fn build_event(line: &str) -> Result<Option<Event>, String> {
    let value: Json<'_> =
        serde_json::from_str(line).map_err(|error| format!("invalid JSON: {error}"))?;
    let Json::Object(members) = &value else {
        return Err(format!("expected a JSON object, found {}", value.kind()));
    };
    let Some(Json::String(event_type)) = member(members, "event_type") else {
        return Err("not a Suricata eve.json record: event_type should be a string".to_string());
    };
    let Some(Json::String(timestamp)) = member(members, "timestamp") else {
        return Err("not a Suricata eve.json record: missing timestamp".to_string());
    };
    let time = parse_iso8601(timestamp)
        .ok_or_else(|| format!("invalid timestamp {}", quote_excerpt(timestamp)))?;
    if event_type != "http" {
        return Ok(None);
    }
    let Some(Json::Object(http)) = member(members, "http") else {
        return Err("http record without an http object".to_string());
    };

    let mut event = Event::new(Format::SuricataEve.name(), time);
    for (key, value) in members {
        match key.as_ref() {
            "timestamp" | "event_type" => {}
            "src_ip" => set_client_ip(&mut event, value),
            "src_port" => event.client_port = port(value),
            "host" => event.sensor = value.as_text().map(|text| text.into_owned()),
            "http" => apply_http(&mut event, http),
            _ => push_flattened(&mut event, key, value),
        }
    }
    Ok(Some(event))
}

fn apply_http(event: &mut Event, http: &[(Cow<'_, str>, Json<'_>)]) {
    let method = match member(http, "http_method") {
        Some(Json::String(method)) if !method.is_empty() => Some(method.as_ref()),
        _ => None,
    };
    event.method = method.map(str::to_string);
    for (key, value) in http {
        let text = value.as_text();
        let text = text.as_deref();
        match key.as_ref() {
            "http_method" => {}
            "hostname" => event.host = text.map(str::to_string),
            "url" => {
                if let Some(url) = text
                    && !set_url(event, method.unwrap_or_default(), url)
                {
                    event.malformed = true;
                    push_json_attribute(event, "http.url", value);
                }
            }
            "protocol" => event.http_version = text.map(str::to_string),
            "status" => {
                event.status = json_i64(value)
                    .filter(|status| *status > 0)
                    .and_then(|status| i32::try_from(status).ok());
            }
            "length" => event.response_bytes = json_i64(value).filter(|bytes| *bytes >= 0),
            "http_user_agent" => event.user_agent = text.map(str::to_string),
            "http_refer" => event.referer = text.map(str::to_string),
            "xff" => event.forwarded_for = text.map(str::to_string),
            "request_headers" => push_headers(event, REQUEST_HEADER_PREFIX, value),
            "response_headers" => push_headers(event, RESPONSE_HEADER_PREFIX, value),
            body if BODY_FIELDS.contains(&body) => {}
            _ => push_flattened(event, &format!("http.{key}"), value),
        }
    }
}

fn set_client_ip(event: &mut Event, value: &Json<'_>) {
    if let Json::String(address) = value {
        match normalise_ip(address) {
            Some(ip) => event.client_ip = Some(ip),
            None => push_json_attribute(event, "src_ip", value),
        }
    }
}

fn port(value: &Json<'_>) -> Option<i32> {
    json_i64(value)
        .filter(|port| (0..=65_535).contains(port))
        .and_then(|port| i32::try_from(port).ok())
}

/// Keeps the `name` and `value` of each header object as an attribute.
fn push_headers(event: &mut Event, prefix: &str, headers: &Json<'_>) {
    let Json::Array(items) = headers else {
        return;
    };
    let block_start = event.attributes.len();
    for header in items {
        let Json::Object(members) = header else {
            continue;
        };
        if let (Some(Json::String(name)), Some(Json::String(value))) =
            (member(members, "name"), member(members, "value"))
            && !name.is_empty()
        {
            push_header(event, block_start, prefix, name, value);
        }
    }
}

/// Keeps a value as attributes, nested objects under dotted keys.
fn push_flattened(event: &mut Event, key: &str, value: &Json<'_>) {
    match value {
        Json::Object(members) => {
            let mut leaves = Vec::with_capacity(members.len());
            flatten(Some(key), members, &mut leaves);
            for (leaf_key, leaf) in leaves {
                push_json_attribute(event, &leaf_key, leaf);
            }
        }
        _ => push_json_attribute(event, key, value),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::formats::capture::driver;
    use crate::formats::test_support::{expect_event, expect_rejection};

    fn parse_event(line: &str) -> Event {
        expect_event(line, parse_record(line))
    }

    fn rejection(line: &str) -> String {
        expect_rejection(line, parse_record(line))
    }

    #[test]
    fn http_record() {
        let event = parse_event(
            r#"{"timestamp":"2018-07-05T15:43:47.690014-0400","flow_id":2115002772430095,"in_iface":"en0","event_type":"http","src_ip":"192.168.86.85","src_port":56119,"dest_ip":"192.168.86.28","dest_port":63963,"proto":"TCP","tx_id":0,"http":{"hostname":"192.168.86.28","url":"\/dd.xml?a=1","http_user_agent":"Mozilla\/5.0","http_content_type":"text\/xml","http_method":"GET","protocol":"HTTP\/1.1","status":200,"length":1155}}"#,
        );
        assert_eq!(event.source, "suricata_eve");
        // 2018-07-05T19:43:47.690014Z
        assert_eq!(event.time, 1_530_819_827_690_014);
        assert_eq!(event.client_ip.as_deref(), Some("192.168.86.85"));
        assert_eq!(event.client_port, Some(56119));
        assert_eq!(event.method.as_deref(), Some("GET"));
        assert_eq!(event.host.as_deref(), Some("192.168.86.28"));
        assert_eq!(event.path.as_deref(), Some("/dd.xml"));
        assert_eq!(event.query.as_deref(), Some("a=1"));
        assert_eq!(event.http_version.as_deref(), Some("HTTP/1.1"));
        assert_eq!(event.status, Some(200));
        assert_eq!(event.response_bytes, Some(1155));
        assert_eq!(event.user_agent.as_deref(), Some("Mozilla/5.0"));
        let expected = [
            ("flow_id", "2115002772430095"),
            ("in_iface", "en0"),
            ("dest_ip", "192.168.86.28"),
            ("dest_port", "63963"),
            ("proto", "TCP"),
            ("tx_id", "0"),
            ("http.http_content_type", "text/xml"),
        ];
        let actual: Vec<(&str, &str)> = event
            .attributes
            .iter()
            .map(|(key, value)| (key.as_str(), value.as_str()))
            .collect();
        assert_eq!(actual, expected);
    }

    #[test]
    fn absolute_url_and_missing_status() {
        let event = parse_event(
            r#"{"timestamp":"2020-06-15T12:13:46.000256+0800","flow_id":885914039230876,"event_type":"http","src_ip":"192.168.122.193","src_port":48398,"dest_ip":"192.168.59.241","dest_port":8888,"proto":"TCP","tx_id":0,"http":{"hostname":"www.example.com","http_port":8888,"url":"http:\/\/www.example.com:8888\/index?x=1","http_user_agent":"Wget","http_method":"GET","protocol":"HTTP\/1.1","length":0}}"#,
        );
        assert_eq!(event.time, 1_592_194_426_000_256);
        assert_eq!(event.scheme.as_deref(), Some("http"));
        assert_eq!(event.host.as_deref(), Some("www.example.com"));
        assert_eq!(event.path.as_deref(), Some("/index"));
        assert_eq!(event.query.as_deref(), Some("x=1"));
        assert_eq!(event.status, None);
        assert_eq!(event.response_bytes, Some(0));
        assert_eq!(event.attribute("http.http_port"), Some("8888"));
        assert_eq!(event.attribute("port"), Some("8888"));
    }

    #[test]
    fn headers_referer_and_forwarded_for() {
        let event = parse_event(
            r#"{"timestamp":"2024-01-01T00:00:00.000000+0000","event_type":"http","src_ip":"2001:0db8:0000:0000:0000:0000:0000:0001","src_port":5000,"host":"sensor-a","http":{"hostname":"api.example.com","url":"/v1/orders","http_method":"POST","http_refer":"https://app.example.com/","xff":"198.51.100.1, 10.0.0.1","status":"201","request_headers":[{"name":"Authorization","value":"Bearer abc"},{"name":"X-API-Key","value":"k"},{"name":"Cookie","value":"a=1"},{"name":"cookie","value":"b=2"}],"response_headers":[{"name":"Set-Cookie","value":"s=1; Path=/"}],"http_request_body":"cGFzc3dvcmQ9eA==","http_response_body_printable":"secret"}}"#,
        );
        assert_eq!(event.client_ip.as_deref(), Some("2001:db8::1"));
        assert_eq!(event.sensor.as_deref(), Some("sensor-a"));
        assert_eq!(event.status, Some(201));
        assert_eq!(event.referer.as_deref(), Some("https://app.example.com/"));
        assert_eq!(
            event.forwarded_for.as_deref(),
            Some("198.51.100.1, 10.0.0.1")
        );
        assert_eq!(
            event.attribute("http.request.header.authorization"),
            Some("Bearer abc")
        );
        assert_eq!(event.attribute("http.request.header.x-api-key"), Some("k"));
        assert_eq!(
            event.attribute("http.request.header.cookie"),
            Some("a=1; b=2")
        );
        assert_eq!(
            event.attribute("http.response.header.set-cookie"),
            Some("s=1; Path=/")
        );
        assert!(
            event
                .attributes
                .iter()
                .all(|(key, _)| !key.contains("body")),
            "bodies are left out: {:?}",
            event.attributes
        );
    }

    #[test]
    fn driver_hashes_credentials() {
        let line = r#"{"timestamp":"2024-01-01T00:00:00+0000","event_type":"http","src_ip":"10.0.0.1","http":{"url":"/","request_headers":[{"name":"Authorization","value":"Basic YWxpY2U6czNjcmV0"},{"name":"Cookie","value":"sid=abc"}]}}"#;
        let rows = driver::stored_attributes(Format::SuricataEve, line);
        let hash = |secret: &str| driver::redactor().hash(secret);
        assert_eq!(
            driver::value(&rows[0], "http.request.header.authorization"),
            Some(format!("Basic {}", hash("YWxpY2U6czNjcmV0")).as_str())
        );
        assert_eq!(
            driver::value(&rows[0], "http.request.header.cookie"),
            Some(format!("sid={}", hash("abc")).as_str())
        );
    }

    #[test]
    fn other_event_types_are_skipped() {
        for line in [
            r#"{"timestamp":"2018-07-05T15:01:09.820360-0400","flow_id":1,"event_type":"ssh","src_ip":"192.168.86.85","ssh":{}}"#,
            r#"{"timestamp":"2018-07-05T15:07:20.910626-0400","event_type":"alert","src_ip":"192.168.86.85","alert":{"signature_id":1},"http":{"url":"/x","http_method":"GET"}}"#,
            r#"{"timestamp":"2018-07-05T15:44:33.222441-0400","event_type":"fileinfo","http":{"url":"/ssdp","http_method":"GET"},"fileinfo":{"size":1}}"#,
            r#"{"timestamp":"2018-07-05T15:51:23.009510-0400","event_type":"stats","stats":{"uptime":5400}}"#,
        ] {
            assert!(
                matches!(parse_record(line), LineOutcome::Skipped("not_http")),
                "{line}"
            );
        }
    }

    #[test]
    fn timestamp_without_offset_is_utc() {
        let event = parse_event(
            r#"{"timestamp":"2009-11-24T21:27:09.534255","event_type":"http","http":{"url":"/"}}"#,
        );
        assert_eq!(event.time, 1_259_098_029_534_255);
    }

    #[test]
    fn url_without_known_form_is_malformed() {
        let event = parse_event(
            r#"{"timestamp":"2024-01-01T00:00:00+0000","event_type":"http","http":{"http_method":"GET","url":"index.html"}}"#,
        );
        assert!(event.malformed);
        assert_eq!(event.path, None);
        assert_eq!(event.attribute("http.url"), Some("index.html"));
    }

    #[test]
    fn rejects_invalid_records() {
        assert_eq!(
            rejection(r#"{"timestamp":"yesterday","event_type":"http","http":{"url":"/"}}"#),
            r#"invalid timestamp "yesterday""#
        );
        assert_eq!(
            rejection(r#"{"timestamp":"2024-01-01T00:00:00+0000","event_type":"http"}"#),
            "http record without an http object"
        );
        assert_eq!(
            rejection(r#"{"event_type":"http","http":{}}"#),
            "not a Suricata eve.json record: missing timestamp"
        );
    }

    #[test]
    fn rejects_other_formats() {
        for line in [
            r#"{"ts":1547687130.172944,"uid":"C1","id.orig_h":"10.0.0.1","method":"GET"}"#,
            r#"{"requestId":"r1","requestTime":"10/Jun/2023:15:36:28 +0000"}"#,
            r#"127.0.0.1 - - [10/Oct/2000:13:55:36 -0700] "GET / HTTP/1.0" 200 1"#,
        ] {
            assert_eq!(
                rejection(line),
                "not a Suricata eve.json record: expected a JSON object with event_type"
            );
        }
        assert_eq!(
            rejection(r#"{"event_type":1,"timestamp":"2024-01-01T00:00:00Z"}"#),
            "not a Suricata eve.json record: event_type should be a string"
        );
        assert!(rejection(r#"{"event_type":"http""#).starts_with("invalid JSON: "));
    }

    #[test]
    fn odd_input_does_not_panic() {
        for sample in [
            "",
            "{\"event_type\"",
            r#"{"event_type":"http","timestamp":"2024-01-01T00:00:00Z","http":{"request_headers":[1,{"name":2}],"status":1e99,"length":-5},"src_port":99999}"#,
        ] {
            let _ = parse_record(sample);
        }
    }
}
