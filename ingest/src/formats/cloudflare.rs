//! Cloudflare Logpush and Logpull `http_requests` records (`cloudflare`).
//!
//! | field | column |
//! |---|---|
//! | `EdgeStartTimestamp`, else `EdgeEndTimestamp` | `time` |
//! | `EdgeEndTimestamp` minus `EdgeStartTimestamp` | `duration_ms` |
//! | `ClientRequestMethod` | `method` |
//! | `ClientRequestScheme` | `scheme` |
//! | `ClientRequestHost` | `host` |
//! | `ClientRequestURI` | `path` and `query` |
//! | `ClientRequestProtocol` | `http_version` |
//! | `ClientRequestBytes` | `request_bytes` |
//! | `ClientRequestUserAgent` | `user_agent` |
//! | `ClientRequestReferer` | `referer` |
//! | `ClientIP`, `ClientSrcPort` | `client_ip`, `client_port` |
//! | `EdgeResponseStatus` | `status` |
//! | `EdgeResponseBytes` | `response_bytes` |
//! | `OriginIP` | `upstream` |
//! | `OriginResponseStatus` | `upstream_status` |
//! | `RayID` | `request_id` |
//!
//! `time` is `EdgeStartTimestamp`, when the edge received the request (the
//! START); a record that only has `EdgeEndTimestamp` uses it (the END).
//! Both are read in every `timestamp_format` of Logpush: RFC 3339 strings,
//! and Unix seconds or nanoseconds as numbers or strings. `duration_ms` is
//! set only when both have a resolution finer than one second, because the
//! difference of two whole seconds is too coarse to time a request.
//!
//! `OriginResponseStatus` and `ClientSrcPort` of 0 mean the request never
//! reached the origin, or the port is not known, and are unknown.
//! `ClientRequestPath` (the path without the query) and every other field
//! go to attributes under their own names. Arrays such as
//! `FirewallMatchesActions` become JSON text and are left out when empty.
//! The objects `RequestHeaders` and `ResponseHeaders` (custom fields) are
//! flattened to `RequestHeaders.<name>`, so the driver hashes credential
//! headers by name. The `Cookies` object (cookie values the zone chose to
//! log) becomes one attribute `cookie` in `Cookie` header form, so the
//! driver hashes every value.
//!
//! A record needs two of `ClientRequestMethod`, `ClientRequestURI`,
//! `ClientRequestHost`, `ClientRequestPath` and `ClientIP`, and one of
//! `EdgeStartTimestamp`, `EdgeEndTimestamp`, `RayID` and `EdgeResponseStatus`.

use std::borrow::Cow;

use crate::event::Event;
use crate::format::Format;
use crate::formats::json::{Json, flatten};
use crate::formats::json_log::{
    EpochTime, Member, count_present, invalid_timestamp, parse_epoch, parse_object, parse_port,
    parse_size, parse_status, push_attribute, set_target, value_text,
};
use crate::parse::{LineOutcome, ParseContext};
use crate::text::{parse_iso8601, set_client_address};

const REQUEST_FIELDS: [&str; 5] = [
    "ClientRequestMethod",
    "ClientRequestURI",
    "ClientRequestHost",
    "ClientRequestPath",
    "ClientIP",
];

const EDGE_FIELDS: [&str; 4] = [
    "EdgeStartTimestamp",
    "EdgeEndTimestamp",
    "RayID",
    "EdgeResponseStatus",
];

/// Parses one Cloudflare `http_requests` record.
pub fn parse_line(line: &str, _ctx: &ParseContext<'_>) -> LineOutcome {
    match build_event(line) {
        Ok(event) => LineOutcome::Event(Box::new(event)),
        Err(reason) => LineOutcome::Rejected(reason),
    }
}

fn build_event(line: &str) -> Result<Event, String> {
    let members = parse_object(line)?;
    if count_present(&members, &REQUEST_FIELDS) < 2 || count_present(&members, &EDGE_FIELDS) == 0 {
        return Err(
            "not a Cloudflare http_requests record: expected fields such as \
             ClientRequestHost, ClientRequestURI and EdgeStartTimestamp"
                .to_string(),
        );
    }
    let mut record = Record::default();
    for (key, value) in &members {
        record.apply_member(key, value)?;
    }
    record.finish()
}

/// The event being built, with the values that are only resolved after every field is seen.
#[derive(Default)]
struct Record {
    event: Event,
    start: Option<EpochTime>,
    end: Option<EpochTime>,
    uri: Option<String>,
}

impl Record {
    /// Stores one top-level field, flattening nested objects.
    fn apply_member(&mut self, key: &str, value: &Json<'_>) -> Result<(), String> {
        match value {
            Json::Object(members) if key == "Cookies" => {
                if let Some(cookies) = cookie_header(members) {
                    push_attribute(&mut self.event, "cookie", Cow::Owned(cookies));
                }
                Ok(())
            }
            Json::Object(members) => {
                let mut leaves = Vec::with_capacity(members.len());
                flatten(Some(key), members, &mut leaves);
                for (key, value) in &leaves {
                    if let Some(text) = value_text(value) {
                        push_attribute(&mut self.event, key, text);
                    }
                }
                Ok(())
            }
            _ => self.apply(key, value),
        }
    }

    /// Stores one scalar or array field in its column or as an attribute.
    fn apply(&mut self, key: &str, value: &Json<'_>) -> Result<(), String> {
        let Some(text) = value_text(value) else {
            return Ok(());
        };
        let event = &mut self.event;
        match key {
            "EdgeStartTimestamp" => self.start = Some(parse_edge_time(key, &text)?),
            "EdgeEndTimestamp" => self.end = Some(parse_edge_time(key, &text)?),
            "ClientRequestMethod" => event.method = Some(text.into_owned()),
            "ClientRequestScheme" => event.scheme = Some(text.into_owned()),
            "ClientRequestHost" => event.host = Some(text.into_owned()),
            "ClientRequestURI" => self.uri = Some(text.into_owned()),
            "ClientRequestProtocol" => event.http_version = Some(text.into_owned()),
            "ClientRequestBytes" => event.request_bytes = parse_size(key, &text)?,
            "ClientRequestUserAgent" => event.user_agent = Some(text.into_owned()),
            "ClientRequestReferer" => event.referer = Some(text.into_owned()),
            "ClientIP" => set_client_address(event, &text),
            "ClientSrcPort" => event.client_port = parse_port(key, &text)?,
            "EdgeResponseStatus" => event.status = parse_status(key, &text)?,
            "EdgeResponseBytes" => event.response_bytes = parse_size(key, &text)?,
            "OriginIP" => event.upstream = Some(text.into_owned()),
            "OriginResponseStatus" => event.upstream_status = parse_status(key, &text)?,
            "RayID" => event.request_id = Some(text.into_owned()),
            _ => push_attribute(event, key, text),
        }
        Ok(())
    }

    fn finish(self) -> Result<Event, String> {
        let Record {
            mut event,
            start,
            end,
            uri,
        } = self;
        let time = start.or(end).ok_or(
            "missing the request time: add EdgeStartTimestamp to the Logpush job's fields",
        )?;
        event.time = time.micros;
        event.source = Format::Cloudflare.name().to_string();
        if let (Some(start), Some(end)) = (start, end)
            && start.subsecond
            && end.subsecond
            && end.micros >= start.micros
        {
            event.duration_ms = Some((end.micros - start.micros) as f64 / 1e3);
        }
        if let Some(uri) = uri {
            set_target(&mut event, "ClientRequestURI", &uri);
        }
        Ok(event)
    }
}

/// Parses an edge timestamp: RFC 3339, or Unix seconds or nanoseconds.
fn parse_edge_time(key: &str, text: &str) -> Result<EpochTime, String> {
    if let Some(micros) = parse_iso8601(text) {
        return Ok(EpochTime {
            micros,
            subsecond: text.contains('.'),
        });
    }
    parse_epoch(text).ok_or_else(|| invalid_timestamp(key, text))
}

/// Writes the `Cookies` object as a `Cookie` header: `name=value; name=value`.
fn cookie_header(members: &[Member<'_>]) -> Option<String> {
    let mut header = String::new();
    for (name, value) in members {
        let Some(value) = value_text(value) else {
            continue;
        };
        if !header.is_empty() {
            header.push_str("; ");
        }
        header.push_str(name);
        header.push('=');
        header.push_str(&value);
    }
    (!header.is_empty()).then_some(header)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::formats::test_support::{expect_event, expect_rejection};
    use crate::redact::Redactor;

    fn parse_event(line: &str) -> Event {
        let redactor = Redactor::new(b"test".to_vec(), 1);
        expect_event(line, parse_line(line, &ParseContext::new(&redactor)))
    }

    fn rejection(line: &str) -> String {
        let redactor = Redactor::new(b"test".to_vec(), 1);
        expect_rejection(line, parse_line(line, &ParseContext::new(&redactor)))
    }

    #[test]
    fn nanosecond_timestamps() {
        let event = parse_event(concat!(
            r#"{"CacheCacheStatus":"hit","ClientIP":"203.0.113.7","ClientRequestBytes":5324,"ClientRequestHost":"api.example.com","#,
            r#""ClientRequestMethod":"GET","ClientRequestPath":"/v1/items","ClientRequestProtocol":"HTTP/2","#,
            r#""ClientRequestReferer":"","ClientRequestURI":"/v1/items?page=3","ClientRequestUserAgent":"curl/8.0","#,
            r#""ClientSrcPort":61593,"EdgeEndTimestamp":1625752958875000000,"EdgeResponseBytes":24743,"#,
            r#""EdgeResponseStatus":200,"EdgeStartTimestamp":1625752958812000000,"FirewallMatchesActions":[],"#,
            r#""OriginIP":"","OriginResponseStatus":0,"RayID":"66b9d9f890ae4c4f","ZoneID":393347122}"#
        ));
        assert_eq!(event.source, "cloudflare");
        assert_eq!(event.time, 1_625_752_958_812_000);
        assert_eq!(event.duration_ms, Some(63.0));
        assert_eq!(event.client_ip.as_deref(), Some("203.0.113.7"));
        assert_eq!(event.client_port, Some(61593));
        assert_eq!(event.method.as_deref(), Some("GET"));
        assert_eq!(event.host.as_deref(), Some("api.example.com"));
        assert_eq!(event.path.as_deref(), Some("/v1/items"));
        assert_eq!(event.query.as_deref(), Some("page=3"));
        assert_eq!(event.http_version.as_deref(), Some("HTTP/2"));
        assert_eq!(event.request_bytes, Some(5324));
        assert_eq!(event.response_bytes, Some(24743));
        assert_eq!(event.status, Some(200));
        assert_eq!(event.upstream, None);
        assert_eq!(event.upstream_status, None);
        assert_eq!(event.referer, None);
        assert_eq!(event.request_id.as_deref(), Some("66b9d9f890ae4c4f"));
        assert_eq!(event.attribute("ClientRequestPath"), Some("/v1/items"));
        assert_eq!(event.attribute("FirewallMatchesActions"), None);
        assert_eq!(event.attribute("OriginResponseStatus"), None);
    }

    #[test]
    fn whole_second_timestamps_give_no_duration() {
        for (start, end) in [
            (r#""2022-05-25T13:25:26Z""#, r#""2022-05-25T13:25:32Z""#),
            (r#""1653485126""#, r#""1653485132""#),
        ] {
            let line = format!(
                r#"{{"ClientRequestHost":"a.example.com","ClientRequestMethod":"POST","EdgeStartTimestamp":{start},"EdgeEndTimestamp":{end}}}"#
            );
            let event = parse_event(&line);
            assert_eq!(event.time, 1_653_485_126_000_000, "{line}");
            assert_eq!(event.duration_ms, None, "{line}");
        }
        let event = parse_event(
            r#"{"ClientRequestHost":"a.example.com","ClientRequestMethod":"POST","EdgeStartTimestamp":"1653485126000000000","EdgeEndTimestamp":"1653485132000000000"}"#,
        );
        assert_eq!(event.duration_ms, Some(6000.0));
    }

    #[test]
    fn nested_objects_and_cookies() {
        let event = parse_event(concat!(
            r#"{"ClientRequestHost":"a.example.com","ClientRequestURI":"/","RayID":"r1","EdgeEndTimestamp":"2022-05-25T13:25:32Z","#,
            r#""Cookies":{"session":"s3cr3t","theme":"dark"},"RequestHeaders":{"authorization":"Bearer t0k3n"},"#,
            r#""BotTags":["bing"]}"#
        ));
        assert_eq!(event.time, 1_653_485_132_000_000);
        assert_eq!(
            event.attribute("cookie"),
            Some("session=s3cr3t; theme=dark")
        );
        assert_eq!(
            event.attribute("RequestHeaders.authorization"),
            Some("Bearer t0k3n")
        );
        assert_eq!(event.attribute("BotTags"), Some(r#"["bing"]"#));
    }

    #[test]
    fn rejects_other_records() {
        for line in [
            r#"{"ClientIP":"192.0.2.1","EdgeStartTimestamp":1}"#,
            r#"{"reqTimeSec":"1718939899.742","reqHost":"a.example.com","reqMethod":"GET","statusCode":"206"}"#,
            r#"{"requestId":"r1","requestTime":"10/Jun/2023:15:36:28 +0000","httpMethod":"GET","status":"200"}"#,
        ] {
            let reason = rejection(line);
            assert!(
                reason.starts_with("not a Cloudflare http_requests record"),
                "{line}: {reason}"
            );
        }
        assert_eq!(
            rejection(r#"{"ClientIP":"192.0.2.1","ClientRequestHost":"a","RayID":"r"}"#),
            "missing the request time: add EdgeStartTimestamp to the Logpush job's fields"
        );
        assert_eq!(
            rejection(
                r#"{"ClientIP":"192.0.2.1","ClientRequestHost":"a","EdgeStartTimestamp":"noon"}"#
            ),
            r#"invalid timestamp "noon" in key EdgeStartTimestamp"#
        );
    }
}
