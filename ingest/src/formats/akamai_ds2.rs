//! Akamai DataStream 2 logs in JSON (`akamai_ds2`).
//!
//! Every value is a string. `-` and `^` are placeholders for a value that
//! is not available and are left out.
//!
//! | field | column |
//! |---|---|
//! | `reqTimeSec` (seconds, such as `1718939899.742`) | `time` |
//! | `reqId` | `request_id` |
//! | `reqMethod` | `method` |
//! | `reqHost` | `host` |
//! | `reqPath` | `path` (with a leading `/` added) |
//! | `queryStr` | `query` |
//! | `proto` | `http_version` |
//! | `statusCode` | `status` |
//! | `cliIP` | `client_ip` |
//! | `UA` (percent-encoded) | `user_agent`, decoded |
//! | `referer` | `referer` |
//! | `xForwardedFor` | `forwarded_for` |
//! | `bytes`, else `totalBytes` | `response_bytes` |
//! | `reqEndTimeMSec` + `turnAroundTimeMSec` + `transferTimeMSec` | `duration_ms` |
//!
//! `time` is `reqTimeSec`, when the edge received the request (the START).
//! DataStream 2 logs `reqPath` without its leading slash, which is added.
//! `duration_ms` is the time to read the request, plus the time to the first
//! byte of the response, plus the transfer time. It is set when at least the
//! last two are logged. Those three fields, `totalBytes` and every other
//! field also go to attributes under their own names.
//!
//! A record needs `reqTimeSec` and two of `reqHost`, `reqMethod`, `reqPath`,
//! `statusCode`, `cliIP` and `reqId`.

use std::borrow::Cow;

use crate::event::Event;
use crate::format::Format;
use crate::formats::json::Json;
use crate::formats::json_log::{
    count_present, invalid_timestamp, member, parse_epoch, parse_millis, parse_object, parse_size,
    parse_status, push_attribute, value_text,
};
use crate::parse::{LineOutcome, ParseContext};
use crate::text::set_client_address;

const REQUEST_FIELDS: [&str; 6] = [
    "reqHost",
    "reqMethod",
    "reqPath",
    "statusCode",
    "cliIP",
    "reqId",
];

/// Placeholder DataStream 2 writes for a field that is not available.
const NOT_AVAILABLE: &str = "^";

/// Parses one DataStream 2 JSON record.
pub fn parse_line(line: &str, _ctx: &ParseContext<'_>) -> LineOutcome {
    match build_event(line) {
        Ok(event) => LineOutcome::Event(Box::new(event)),
        Err(reason) => LineOutcome::Rejected(reason),
    }
}

fn build_event(line: &str) -> Result<Event, String> {
    let members = parse_object(line)?;
    if member(&members, "reqTimeSec").is_none() || count_present(&members, &REQUEST_FIELDS) < 2 {
        return Err(
            "not an Akamai DataStream 2 record: expected fields reqTimeSec, reqHost, reqPath and statusCode"
                .to_string(),
        );
    }
    let mut record = Record::default();
    for (key, value) in &members {
        record.apply(key, value)?;
    }
    record.finish()
}

/// The event being built, with the values that are only resolved after every field is seen.
#[derive(Default)]
struct Record {
    event: Event,
    time: Option<i64>,
    total_bytes: Option<i64>,
    read_ms: Option<f64>,
    turnaround_ms: Option<f64>,
    transfer_ms: Option<f64>,
}

impl Record {
    /// Stores one field in its column or as an attribute.
    fn apply(&mut self, key: &str, value: &Json<'_>) -> Result<(), String> {
        let Some(text) = value_text(value).filter(|text| text != NOT_AVAILABLE) else {
            return Ok(());
        };
        let event = &mut self.event;
        match key {
            "reqTimeSec" => {
                let time = parse_epoch(&text).ok_or_else(|| invalid_timestamp(key, &text))?;
                self.time = Some(time.micros);
            }
            "reqId" => event.request_id = Some(text.into_owned()),
            "reqMethod" => event.method = Some(text.into_owned()),
            "reqHost" => event.host = Some(text.into_owned()),
            "reqPath" => {
                event.path = Some(if text.starts_with('/') {
                    text.into_owned()
                } else {
                    format!("/{text}")
                });
            }
            "queryStr" => event.query = Some(text.into_owned()),
            "proto" => event.http_version = Some(text.into_owned()),
            "statusCode" => event.status = parse_status(key, &text)?,
            "cliIP" => set_client_address(event, &text),
            "UA" => event.user_agent = Some(percent_decoded(&text).into_owned()),
            "referer" => event.referer = Some(text.into_owned()),
            "xForwardedFor" => event.forwarded_for = Some(text.into_owned()),
            "bytes" => event.response_bytes = parse_size(key, &text)?,
            "totalBytes" => {
                self.total_bytes = parse_size(key, &text)?;
                push_attribute(event, key, text);
            }
            "reqEndTimeMSec" => {
                self.read_ms = parse_millis(key, &text)?;
                push_attribute(event, key, text);
            }
            "turnAroundTimeMSec" => {
                self.turnaround_ms = parse_millis(key, &text)?;
                push_attribute(event, key, text);
            }
            "transferTimeMSec" => {
                self.transfer_ms = parse_millis(key, &text)?;
                push_attribute(event, key, text);
            }
            _ => push_attribute(event, key, text),
        }
        Ok(())
    }

    fn finish(self) -> Result<Event, String> {
        let Record {
            mut event,
            time,
            total_bytes,
            read_ms,
            turnaround_ms,
            transfer_ms,
        } = self;
        event.time = time.ok_or("missing the request time: reqTimeSec is a placeholder")?;
        event.source = Format::AkamaiDs2.name().to_string();
        if event.response_bytes.is_none() {
            event.response_bytes = total_bytes;
        }
        if let (Some(turnaround), Some(transfer)) = (turnaround_ms, transfer_ms) {
            event.duration_ms = Some(read_ms.unwrap_or(0.0) + turnaround + transfer);
        }
        Ok(event)
    }
}

/// Percent-decodes a value that DataStream 2 encodes, keeping it as logged
/// when the decoded bytes are not UTF-8.
fn percent_decoded(text: &str) -> Cow<'_, str> {
    if !text.contains('%') {
        return Cow::Borrowed(text);
    }
    match percent_encoding::percent_decode_str(text).decode_utf8() {
        Ok(decoded) => decoded,
        Err(_) => Cow::Borrowed(text),
    }
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
    fn record_with_placeholders() {
        let event = parse_event(concat!(
            r#"{"UA": "Video%20Player/2.0", "accLang": "^", "bytes": "1000839", "cacheStatus": "1", "city": "-", "#,
            r#""cliIP": "198.51.100.45", "cookie": "^", "errorCode": "ERR_CLIENT_ABORT|general", "proto": "HTTP/1.1", "#,
            r#""queryStr": "e=abc&deadline=1640631032", "referer": "-", "reqEndTimeMSec": "13", "#,
            r#""reqHost": "cdn.example.net", "reqId": "246ae032", "reqMethod": "GET", "reqPath": "video/seg-1.m4s", "#,
            r#""reqPort": "80", "reqTimeSec": "1718939899.742", "statusCode": "206", "totalBytes": "1059938", "#,
            r#""transferTimeMSec": "1261", "turnAroundTimeMSec": "142", "xForwardedFor": "-"}"#
        ));

        assert_eq!(event.source, "akamai_ds2");
        assert_eq!(event.time, 1_718_939_899_742_000);
        assert_eq!(event.user_agent.as_deref(), Some("Video Player/2.0"));
        assert_eq!(event.response_bytes, Some(1_000_839));
        assert_eq!(event.client_ip.as_deref(), Some("198.51.100.45"));
        assert_eq!(event.http_version.as_deref(), Some("HTTP/1.1"));
        assert_eq!(event.query.as_deref(), Some("e=abc&deadline=1640631032"));
        assert_eq!(event.referer, None);
        assert_eq!(event.host.as_deref(), Some("cdn.example.net"));
        assert_eq!(event.request_id.as_deref(), Some("246ae032"));
        assert_eq!(event.method.as_deref(), Some("GET"));
        assert_eq!(event.path.as_deref(), Some("/video/seg-1.m4s"));
        assert_eq!(event.status, Some(206));
        assert_eq!(event.forwarded_for, None);
        assert_eq!(event.duration_ms, Some(1416.0));

        assert_eq!(event.attribute("accLang"), None);
        assert_eq!(event.attribute("cookie"), None);
        assert_eq!(event.attribute("city"), None);
        assert_eq!(event.attribute("totalBytes"), Some("1059938"));
        assert_eq!(
            event.attribute("errorCode"),
            Some("ERR_CLIENT_ABORT|general")
        );
    }

    #[test]
    fn total_bytes_fills_missing_body_bytes() {
        let event = parse_event(
            r#"{"reqTimeSec":"1718939899","reqHost":"a.example.net","reqPath":"/x","totalBytes":"10","UA":"bad%FFagent"}"#,
        );
        assert_eq!(event.response_bytes, Some(10));
        assert_eq!(event.path.as_deref(), Some("/x"));
        assert_eq!(event.user_agent.as_deref(), Some("bad%FFagent"));
        assert_eq!(event.duration_ms, None);
    }

    #[test]
    fn rejects_other_records() {
        for line in [
            r#"{"reqTimeSec":"1718939899.742","reqHost":"a.example.net"}"#,
            r#"{"ClientRequestHost":"a","ClientRequestMethod":"GET","EdgeStartTimestamp":1}"#,
            r#"{"requestId":"r1","requestTime":"10/Jun/2023:15:36:28 +0000","httpMethod":"GET","status":"200"}"#,
        ] {
            let reason = rejection(line);
            assert!(
                reason.starts_with("not an Akamai DataStream 2 record"),
                "{line}: {reason}"
            );
        }
        assert_eq!(
            rejection(r#"{"reqTimeSec":"^","reqHost":"a","reqPath":"b"}"#),
            "missing the request time: reqTimeSec is a placeholder"
        );
        assert_eq!(
            rejection(r#"{"reqTimeSec":"x","reqHost":"a","reqPath":"b"}"#),
            r#"invalid timestamp "x" in key reqTimeSec"#
        );
    }
}
