//! Google Cloud HTTP(S) load balancer request logs (`gcp_lb`), as Cloud
//! Logging `LogEntry` objects exported to Cloud Storage, Pub/Sub or files.
//!
//! Nested objects are flattened with `.`, so `{"httpRequest": {"status": ...}}`
//! reads as `httpRequest.status`.
//!
//! | key | column |
//! |---|---|
//! | `timestamp` | `time` |
//! | `httpRequest.requestMethod` | `method` |
//! | `httpRequest.requestUrl` | `scheme`, `host`, `path`, `query` (a port goes to attribute `port`) |
//! | `httpRequest.protocol` | `http_version` |
//! | `httpRequest.status` | `status` |
//! | `httpRequest.requestSize` | `request_bytes` |
//! | `httpRequest.responseSize` | `response_bytes` |
//! | `httpRequest.latency` (`0.123456s`) | `duration_ms` |
//! | `httpRequest.remoteIp` (may carry `:port`) | `client_ip`, `client_port` |
//! | `httpRequest.serverIp` | `upstream` |
//! | `httpRequest.userAgent` | `user_agent` |
//! | `httpRequest.referer` | `referer` |
//! | `trace` (`projects/<id>/traces/<trace id>`) | `trace_id` (the trace id) |
//!
//! `time` is the entry's `timestamp`. The Cloud Logging API reference
//! (`LogEntry`, logging v2) calls it the time the event occurred, and does
//! not say whether that is the start or the end of the request.
//! `httpRequest.latency` gives the duration. `jsonPayload.*` (such as `statusDetails` and `cacheId`),
//! `resource.*`, `insertId`, `severity`, `logName`, `spanId`,
//! `receiveTimestamp` and the cache flags of `httpRequest` go to attributes
//! under their flattened names. Sizes are strings in `LogEntry` JSON and are
//! read as numbers.
//!
//! Other entries with an `httpRequest` object, such as Cloud Run request
//! logs, are read the same way, and attribute `resource.type` distinguishes
//! them. A `LogEntry` without `httpRequest` is skipped as `not_http_request`.

use crate::event::Event;
use crate::format::Format;
use crate::formats::json::Json;
use crate::formats::json_log::{
    Member, flatten_object, member, parse_object, parse_seconds_as_millis, parse_size,
    parse_status, parse_timestamp, push_attribute, set_target, value_text,
};
use crate::parse::{LineOutcome, ParseContext};
use crate::text::{quote_excerpt, set_client_endpoint};

/// Parses one Cloud Logging entry of a load balancer request log.
pub fn parse_line(line: &str, _ctx: &ParseContext<'_>) -> LineOutcome {
    let members = match parse_object(line) {
        Ok(members) => members,
        Err(reason) => return LineOutcome::Rejected(reason),
    };
    if !matches!(member(&members, "httpRequest"), Some(Json::Object(_))) {
        return if is_log_entry(&members) {
            LineOutcome::Skipped("not_http_request")
        } else {
            LineOutcome::Rejected(
                "not a Cloud Logging request log entry: expected an httpRequest object and a timestamp"
                    .to_string(),
            )
        };
    }
    match build_event(&members) {
        Ok(event) => LineOutcome::Event(Box::new(event)),
        Err(reason) => LineOutcome::Rejected(reason),
    }
}

/// Returns whether `members` look like a Cloud Logging `LogEntry`.
fn is_log_entry(members: &[Member<'_>]) -> bool {
    member(members, "logName").is_some()
        && (member(members, "insertId").is_some() || member(members, "resource").is_some())
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
    url: Option<String>,
}

impl Record {
    /// Stores one flattened key in its column or as an attribute.
    fn apply(&mut self, key: &str, value: &Json<'_>) -> Result<(), String> {
        let Some(text) = value_text(value) else {
            return Ok(());
        };
        let event = &mut self.event;
        match key {
            "timestamp" => self.time = Some(parse_timestamp(key, &text)?),
            "httpRequest.requestMethod" => event.method = Some(text.into_owned()),
            "httpRequest.requestUrl" => self.url = Some(text.into_owned()),
            "httpRequest.protocol" => event.http_version = Some(text.into_owned()),
            "httpRequest.status" => event.status = parse_status(key, &text)?,
            "httpRequest.requestSize" => event.request_bytes = parse_size(key, &text)?,
            "httpRequest.responseSize" => event.response_bytes = parse_size(key, &text)?,
            "httpRequest.latency" => event.duration_ms = parse_latency(key, &text)?,
            "httpRequest.remoteIp" => set_client_endpoint(event, &text),
            "httpRequest.serverIp" => event.upstream = Some(text.into_owned()),
            "httpRequest.userAgent" => event.user_agent = Some(text.into_owned()),
            "httpRequest.referer" => event.referer = Some(text.into_owned()),
            "trace" => event.trace_id = Some(trace_id(&text).to_string()),
            _ => push_attribute(event, key, text),
        }
        Ok(())
    }

    fn finish(self) -> Result<Event, String> {
        let Record {
            mut event,
            time,
            url,
        } = self;
        event.time = time.ok_or("missing the request time: the entry has no timestamp")?;
        event.source = Format::GcpLb.name().to_string();
        if let Some(url) = url {
            set_target(&mut event, "httpRequest.requestUrl", &url);
        }
        Ok(event)
    }
}

/// Parses a `google.protobuf.Duration` in JSON form, such as `0.123456s`, into milliseconds.
fn parse_latency(key: &str, text: &str) -> Result<Option<f64>, String> {
    let seconds = text
        .strip_suffix('s')
        .ok_or_else(|| format!("invalid duration {} in key {key}", quote_excerpt(text)))?;
    parse_seconds_as_millis(key, seconds)
}

/// Returns the trace id of a `projects/<project>/traces/<trace id>` name, or the value itself.
fn trace_id(trace: &str) -> &str {
    match trace.rsplit_once("/traces/") {
        Some((_, id)) if !id.is_empty() => id,
        _ => trace,
    }
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
    fn load_balancer_entry() {
        let event = parse_event(concat!(
            r#"{"insertId":"1oek5rg3l3fxj7","jsonPayload":{"@type":"type.googleapis.com/google.cloud.loadbalancing.type.LoadBalancerLogEntry","#,
            r#""cacheId":"SFO-fbae48ad","statusDetails":"response_from_cache"},"httpRequest":{"requestMethod":"GET","#,
            r#""requestUrl":"https://api.example.com:8443/v1/cats?size=2","requestSize":"577","status":304,"responseSize":"157","#,
            r#""userAgent":"Mozilla/5.0","remoteIp":"192.0.2.156:9989","serverIp":"10.5.3.1:9090","latency":"0.058927s","#,
            r#""protocol":"HTTP/2.0","cacheHit":true},"resource":{"type":"http_load_balancer","labels":{"zone":"global","#,
            r#""backend_service_name":""}},"timestamp":"2020-06-08T23:41:30.078651Z","severity":"INFO","#,
            r#""logName":"projects/p1/logs/requests","trace":"projects/p1/traces/241d69833e64b3bf83fabac8c873d992"}"#
        ));

        assert_eq!(event.source, "gcp_lb");
        assert_eq!(event.time, 1_591_659_690_078_651);
        assert_eq!(event.method.as_deref(), Some("GET"));
        assert_eq!(event.scheme.as_deref(), Some("https"));
        assert_eq!(event.host.as_deref(), Some("api.example.com"));
        assert_eq!(event.path.as_deref(), Some("/v1/cats"));
        assert_eq!(event.query.as_deref(), Some("size=2"));

        assert_eq!(event.attribute("port"), Some("8443"));
        assert_eq!(event.request_bytes, Some(577));
        assert_eq!(event.response_bytes, Some(157));
        assert_eq!(event.status, Some(304));
        assert_eq!(event.client_ip.as_deref(), Some("192.0.2.156"));
        assert_eq!(event.client_port, Some(9989));
        assert_eq!(event.upstream.as_deref(), Some("10.5.3.1:9090"));
        assert_eq!(event.duration_ms, Some(58.927));
        assert_eq!(event.http_version.as_deref(), Some("HTTP/2.0"));
        assert_eq!(
            event.trace_id.as_deref(),
            Some("241d69833e64b3bf83fabac8c873d992")
        );
        assert_eq!(
            event.attribute("jsonPayload.statusDetails"),
            Some("response_from_cache")
        );
        assert_eq!(event.attribute("httpRequest.cacheHit"), Some("true"));
        assert_eq!(event.attribute("resource.labels.zone"), Some("global"));
        assert_eq!(
            event.attribute("resource.labels.backend_service_name"),
            None
        );
        assert_eq!(event.attribute("insertId"), Some("1oek5rg3l3fxj7"));
    }

    #[test]
    fn entry_without_http_request_is_skipped() {
        let outcome = parse(
            r#"{"insertId":"x1","jsonPayload":{"message":"started"},"logName":"projects/p1/logs/app","timestamp":"2020-06-08T23:41:30Z"}"#,
        );
        assert!(
            matches!(outcome, LineOutcome::Skipped("not_http_request")),
            "{outcome:?}"
        );
    }

    #[test]
    fn rejects_other_records() {
        for line in [
            r#"{"timestamp":"2020-06-15T10:16:53.052013+0800","event_type":"http","http":{"hostname":"a","url":"/"}}"#,
            r#"{"requestId":"r1","requestTime":"10/Jun/2023:15:36:28 +0000","httpMethod":"GET","status":"200"}"#,
        ] {
            let reason = rejection(line);
            assert!(
                reason.starts_with("not a Cloud Logging request log entry"),
                "{line}: {reason}"
            );
        }
        assert_eq!(
            rejection(
                r#"{"httpRequest":{"requestMethod":"GET","latency":"5"},"timestamp":"2020-06-08T23:41:30Z"}"#
            ),
            r#"invalid duration "5" in key httpRequest.latency"#
        );
        assert_eq!(
            rejection(r#"{"httpRequest":{"requestMethod":"GET"}}"#),
            "missing the request time: the entry has no timestamp"
        );
    }
}
