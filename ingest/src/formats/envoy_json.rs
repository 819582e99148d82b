//! Envoy and Istio access logs written as JSON (`envoy_json`).
//!
//! Envoy's `json_format` maps keys chosen by the operator to command
//! operators such as `%START_TIME%`. Istio and most guides use the names of
//! Envoy's default text format in snake case, and Envoy Gateway uses header
//! names; the parser reads both.
//!
//! | key | column |
//! |---|---|
//! | `start_time` | `time` |
//! | `method`, `:method` | `method` |
//! | `path`, `x-envoy-origin-path`, `:path` | `path` and `query` |
//! | `protocol` | `http_version` |
//! | `response_code` | `status` |
//! | `bytes_received` | `request_bytes` |
//! | `bytes_sent` | `response_bytes` |
//! | `duration` (ms) | `duration_ms` |
//! | `downstream_direct_remote_address`, else `downstream_remote_address` | `client_ip`, `client_port` |
//! | `x_forwarded_for`, `x-forwarded-for` | `forwarded_for` |
//! | `user_agent`, `user-agent` | `user_agent` |
//! | `referer` | `referer` |
//! | `request_id`, `x-request-id` | `request_id` |
//! | `authority`, `:authority` | `host` (a port goes to attribute `port`) |
//! | `upstream_host` | `upstream` |
//!
//! `time` is `%START_TIME%`, when Envoy received the first byte of the
//! request (the START). `upstream_service_time` (the upstream's time in ms,
//! often logged as a string), `response_flags`, `upstream_cluster` and
//! every other key go to attributes under their own names; JSON nulls and
//! `-` are left out.
//!
//! Envoy writes `-` for the method and path of a request it could not
//! decode (response flag `DPE`, details `http1.codec_error`). Such a record
//! is kept with `malformed` set and no method or path. A `response_code` of
//! 0, which Envoy logs when no response was sent, is unknown.
//!
//! A record needs `start_time` and `response_code` and at least one more key
//! of Envoy's default format to be read as Envoy.

use std::borrow::Cow;

use crate::event::Event;
use crate::format::Format;
use crate::formats::json::Json;
use crate::formats::json_log::{
    Member, count_present, flatten_object, member, parse_millis, parse_object, parse_size,
    parse_status, parse_timestamp, push_attribute, set_authority, set_target, value_text,
};
use crate::parse::{LineOutcome, ParseContext};
use crate::text::set_client_endpoint;

/// Keys of Envoy's default format besides `start_time` and `response_code`;
/// a record needs at least one of them.
const ENVOY_KEYS: [&str; 12] = [
    "response_flags",
    "response_code_details",
    "bytes_received",
    "bytes_sent",
    "duration",
    "upstream_host",
    "upstream_cluster",
    "upstream_service_time",
    "downstream_remote_address",
    "downstream_local_address",
    "requested_server_name",
    "route_name",
];

/// Parses one record of an Envoy JSON access log.
pub fn parse_line(line: &str, _ctx: &ParseContext<'_>) -> LineOutcome {
    match build_event(line) {
        Ok(event) => LineOutcome::Event(Box::new(event)),
        Err(reason) => LineOutcome::Rejected(reason),
    }
}

fn build_event(line: &str) -> Result<Event, String> {
    let members = parse_object(line)?;
    check_envoy_keys(&members)?;
    let leaves = flatten_object(&members);
    let mut record = Record::default();
    for (key, value) in &leaves {
        record.apply(key, value)?;
    }
    record.finish()
}

fn check_envoy_keys(members: &[Member<'_>]) -> Result<(), String> {
    if member(members, "start_time").is_none()
        || member(members, "response_code").is_none()
        || count_present(members, &ENVOY_KEYS) == 0
    {
        return Err(
            "not an Envoy JSON access log record: expected keys start_time, response_code \
             and others of Envoy's default format such as response_flags, bytes_sent and duration"
                .to_string(),
        );
    }
    Ok(())
}

/// The event being built, with the values that are only resolved after every key is seen.
#[derive(Default)]
struct Record {
    event: Event,
    time: Option<i64>,
    target: Option<String>,
    direct_peer: Option<String>,
    peer: Option<String>,
}

impl Record {
    /// Stores one key in its column or as an attribute.
    fn apply(&mut self, key: &str, value: &Json<'_>) -> Result<(), String> {
        if matches!(key, "method" | ":method" | "path" | ":path") && is_dash(value) {
            self.event.malformed = true;
            return Ok(());
        }
        let Some(text) = value_text(value) else {
            return Ok(());
        };
        let event = &mut self.event;
        match key {
            "start_time" => self.time = Some(parse_timestamp(key, &text)?),
            "method" | ":method" => event.method = Some(text.into_owned()),
            "path" | "x-envoy-origin-path" | ":path" => {
                if self.target.is_none() {
                    self.target = Some(text.into_owned());
                } else {
                    push_attribute(event, key, text);
                }
            }
            "protocol" => event.http_version = Some(text.into_owned()),
            "response_code" => event.status = parse_status(key, &text)?,
            "bytes_received" => event.request_bytes = parse_size(key, &text)?,
            "bytes_sent" => event.response_bytes = parse_size(key, &text)?,
            "duration" => event.duration_ms = parse_millis(key, &text)?,
            "downstream_direct_remote_address" => self.direct_peer = Some(text.into_owned()),
            "downstream_remote_address" => self.peer = Some(text.into_owned()),
            "x_forwarded_for" | "x-forwarded-for" => event.forwarded_for = Some(text.into_owned()),
            "user_agent" | "user-agent" => event.user_agent = Some(text.into_owned()),
            "referer" => event.referer = Some(text.into_owned()),
            "request_id" | "x-request-id" => event.request_id = Some(text.into_owned()),
            "authority" | ":authority" => set_authority(event, &text),
            "upstream_host" => event.upstream = Some(text.into_owned()),
            _ => push_attribute(event, key, text),
        }
        Ok(())
    }

    fn finish(self) -> Result<Event, String> {
        let Record {
            mut event,
            time,
            target,
            direct_peer,
            peer,
        } = self;
        event.time = time.ok_or("missing the request time: start_time is null or empty")?;
        event.source = Format::EnvoyJson.name().to_string();
        if let Some(target) = target {
            set_target(&mut event, "path", &target);
        }
        match (direct_peer, peer) {
            (Some(direct), peer) => {
                set_client_endpoint(&mut event, &direct);
                if let Some(peer) = peer {
                    push_attribute(&mut event, "downstream_remote_address", Cow::Owned(peer));
                }
            }
            (None, Some(peer)) => set_client_endpoint(&mut event, &peer),
            (None, None) => {}
        }
        Ok(event)
    }
}

fn is_dash(value: &Json<'_>) -> bool {
    matches!(value, Json::String(text) if text == "-")
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
    fn istio_record() {
        let event = parse_event(concat!(
            r#"{"authority":"orders:9080","bytes_received":12,"bytes_sent":358,"connection_termination_details":null,"#,
            r#""downstream_remote_address":"[2001:db8::7]:5000","duration":15,"method":"POST","path":"/orders/7?full=1","#,
            r#""protocol":"HTTP/1.1","request_id":"9fcc7101","response_code":201,"response_flags":"-","#,
            r#""start_time":"2022-09-08T12:51:05.656Z","upstream_cluster":"inbound|9080||","#,
            r#""upstream_host":"10.124.1.5:9080","upstream_service_time":"14","user_agent":"curl/7.79.1","#,
            r#""x_forwarded_for":"198.51.100.4"}"#
        ));

        assert_eq!(event.source, "envoy_json");
        assert_eq!(event.time, 1_662_641_465_656_000);
        assert_eq!(event.host.as_deref(), Some("orders"));

        assert_eq!(event.attribute("port"), Some("9080"));
        assert_eq!(event.request_bytes, Some(12));
        assert_eq!(event.response_bytes, Some(358));
        assert_eq!(event.client_ip.as_deref(), Some("2001:db8::7"));
        assert_eq!(event.client_port, Some(5000));
        assert_eq!(event.duration_ms, Some(15.0));
        assert_eq!(event.method.as_deref(), Some("POST"));
        assert_eq!(event.path.as_deref(), Some("/orders/7"));
        assert_eq!(event.query.as_deref(), Some("full=1"));
        assert_eq!(event.http_version.as_deref(), Some("HTTP/1.1"));
        assert_eq!(event.request_id.as_deref(), Some("9fcc7101"));
        assert_eq!(event.status, Some(201));
        assert_eq!(event.upstream.as_deref(), Some("10.124.1.5:9080"));
        assert_eq!(event.user_agent.as_deref(), Some("curl/7.79.1"));
        assert_eq!(event.forwarded_for.as_deref(), Some("198.51.100.4"));
        assert!(!event.malformed);
        let keys: Vec<&str> = event
            .attributes
            .iter()
            .map(|(key, _)| key.as_str())
            .collect();
        assert_eq!(keys, ["port", "upstream_cluster", "upstream_service_time"]);
    }

    #[test]
    fn codec_error_is_malformed() {
        let event = parse_event(concat!(
            r#"{"authority":"-","bytes_received":0,"bytes_sent":11,"downstream_remote_address":"10.128.0.60:51643","#,
            r#""duration":46,"method":"-","path":"-","protocol":"HTTP/1.1","request_id":"-","response_code":400,"#,
            r#""response_code_details":"http1.codec_error","response_flags":"DPE","start_time":"2022-09-01T09:36:33.553Z","#,
            r#""upstream_host":"-","upstream_service_time":null}"#
        ));
        assert!(event.malformed);
        assert_eq!(event.method, None);
        assert_eq!(event.path, None);
        assert_eq!(event.host, None);
        assert_eq!(event.status, Some(400));
        assert_eq!(event.attribute("response_flags"), Some("DPE"));
        assert_eq!(
            event.attribute("response_code_details"),
            Some("http1.codec_error")
        );
    }

    #[test]
    fn envoy_gateway_header_keys() {
        let event = parse_event(concat!(
            r#"{"start_time":"2024-05-01T00:00:00.000Z",":authority":"api.example.com","method":"GET","#,
            r#""x-envoy-origin-path":"/v1/items","response_code":"200","bytes_sent":"5","duration":"3","#,
            r#""user-agent":"Go-http-client/1.1","x-request-id":"abc","x-forwarded-for":"192.0.2.9","#,
            r#""downstream_remote_address":"10.0.0.1:4000","downstream_direct_remote_address":"10.0.0.2:4001"}"#
        ));
        assert_eq!(event.host.as_deref(), Some("api.example.com"));
        assert_eq!(event.path.as_deref(), Some("/v1/items"));
        assert_eq!(event.status, Some(200));
        assert_eq!(event.user_agent.as_deref(), Some("Go-http-client/1.1"));
        assert_eq!(event.request_id.as_deref(), Some("abc"));
        assert_eq!(event.forwarded_for.as_deref(), Some("192.0.2.9"));
        assert_eq!(event.client_ip.as_deref(), Some("10.0.0.2"));
        assert_eq!(event.client_port, Some(4001));
        assert_eq!(
            event.attribute("downstream_remote_address"),
            Some("10.0.0.1:4000")
        );
    }

    #[test]
    fn zero_response_code_is_unknown() {
        let event = parse_event(
            r#"{"start_time":"2024-05-01T00:00:00Z","response_code":0,"response_flags":"UC","duration":-1}"#,
        );
        assert_eq!(event.status, None);
        assert_eq!(event.duration_ms, None);
    }

    #[test]
    fn rejects_other_records() {
        for line in [
            r#"{"time_iso8601":"2018-08-28T19:18:51+03:00","status":"200","method":"GET","path":"/"}"#,
            r#"{"start_time":"2022-09-08T12:51:05.656Z","method":"GET","path":"/"}"#,
            r#"{"requestId":"r1","requestTime":"10/Jun/2023:15:36:28 +0000","httpMethod":"GET","status":"200"}"#,
        ] {
            let reason = rejection(line);
            assert!(
                reason.starts_with("not an Envoy JSON access log record"),
                "{line}: {reason}"
            );
        }
    }

    #[test]
    fn rejects_missing_or_invalid_time() {
        assert_eq!(
            rejection(r#"{"start_time":null,"response_code":200,"duration":1}"#),
            "missing the request time: start_time is null or empty"
        );
        assert_eq!(
            rejection(r#"{"start_time":"later","response_code":200,"duration":1}"#),
            r#"invalid timestamp "later" in key start_time"#
        );
    }
}
