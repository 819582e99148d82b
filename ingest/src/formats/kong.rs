//! Kong Gateway's log serializer (`kong`), the JSON object that the
//! http-log, file-log, udp-log and tcp-log plugins send for each request.
//!
//! Nested objects are flattened with `.`, so `{"request": {"method": ...}}`
//! reads as `request.method`.
//!
//! | key | column |
//! |---|---|
//! | `started_at` (ms) | `time` |
//! | `request.method` | `method` |
//! | `request.uri` | `path` and `query` |
//! | `request.url` | `scheme`, `host` (a port goes to attribute `port`) |
//! | `request.size` | `request_bytes` |
//! | `request.id`, else header `x-request-id`, else `kong-request-id` | `request_id` |
//! | `request.headers.user-agent` | `user_agent` |
//! | `request.headers.referer` | `referer` |
//! | `request.headers.x-forwarded-for` | `forwarded_for` |
//! | `response.status` | `status` |
//! | `response.size` | `response_bytes` |
//! | `latencies.request` (ms) | `duration_ms` |
//! | `client_ip` | `client_ip` |
//! | the last entry of `tries` (`ip`, `port`) | `upstream` |
//! | `upstream_status` | `upstream_status` |
//! | `consumer.id`, else `consumer.username`, `consumer.custom_id`, `authenticated_entity.consumer_id`, `authenticated_entity.id` | `consumer` (kind `gateway`) |
//!
//! `time` is `started_at`, when Kong started to process the request (the
//! START). `latencies.kong`, `latencies.proxy` and `latencies.receive` go to
//! attributes; Kong writes `-1` for a latency it did not measure, as for
//! `latencies.proxy` when Kong sent the response without calling an upstream, and
//! such a latency is left out.
//!
//! Request headers go to attributes `request.headers.<name>` and response
//! headers to `response.headers.<name>`; the values of a repeated header
//! are joined. The driver hashes `Authorization`, `Cookie`, `Set-Cookie`
//! and API-key headers by these names before anything is stored.
//! `request.querystring`, the decoded copy of the query, is not kept because
//! `query` contains the same parameters, redacted. `service.*`, `route.*`,
//! `workspace`, `upstream_uri`, `tries` and every other key go to attributes
//! under their flattened names.
//!
//! A record needs a `request` object, `started_at`, and one of `latencies`,
//! `response`, `client_ip` or `tries`.

use std::borrow::Cow;

use crate::event::Event;
use crate::format::Format;
use crate::formats::json::Json;
use crate::formats::json_log::{
    Leaf, Member, flatten_object, header_text, invalid_timestamp, is_list, last_list_item, member,
    parse_epoch, parse_millis, parse_number, parse_object, parse_size, parse_status,
    push_attribute, set_authority, set_target, value_text,
};
use crate::parse::{LineOutcome, ParseContext};
use crate::text::set_client_address;

const CONSUMER_KIND: &str = "gateway";

/// Keys that name the consumer, in order of preference.
const CONSUMER_KEYS: [&str; 5] = [
    "consumer.id",
    "consumer.username",
    "consumer.custom_id",
    "authenticated_entity.consumer_id",
    "authenticated_entity.id",
];

/// Keys that carry a request id, in order of preference.
const REQUEST_ID_KEYS: [&str; 3] = [
    "request.id",
    "request.headers.x-request-id",
    "request.headers.kong-request-id",
];

const REQUEST_HEADERS: &str = "request.headers.";
const RESPONSE_HEADERS: &str = "response.headers.";
const QUERY_STRING: &str = "request.querystring.";

/// Parses one Kong log serializer record.
pub fn parse_line(line: &str, _ctx: &ParseContext<'_>) -> LineOutcome {
    match build_event(line) {
        Ok(event) => LineOutcome::Event(Box::new(event)),
        Err(reason) => LineOutcome::Rejected(reason),
    }
}

fn build_event(line: &str) -> Result<Event, String> {
    let members = parse_object(line)?;
    check_kong_keys(&members)?;
    let leaves = flatten_object(&members);
    let mut record = Record {
        consumer_key: first_present(&leaves, &CONSUMER_KEYS),
        request_id_key: first_present(&leaves, &REQUEST_ID_KEYS),
        ..Record::default()
    };
    for (key, value) in &leaves {
        record.apply(key, value)?;
    }
    record.finish()
}

fn check_kong_keys(members: &[Member<'_>]) -> Result<(), String> {
    let has_request = matches!(member(members, "request"), Some(Json::Object(_)));
    let has_detail = matches!(member(members, "latencies"), Some(Json::Object(_)))
        || matches!(member(members, "response"), Some(Json::Object(_)))
        || member(members, "client_ip").is_some()
        || member(members, "tries").is_some();
    if !has_request || member(members, "started_at").is_none() || !has_detail {
        return Err(
            "not a Kong log record: expected a request object, started_at, \
             and latencies, response or client_ip"
                .to_string(),
        );
    }
    Ok(())
}

/// Returns the first of `candidates` that names a leaf with a known value.
fn first_present(leaves: &[Leaf<'_>], candidates: &[&'static str]) -> Option<&'static str> {
    candidates.iter().copied().find(|candidate| {
        leaves
            .iter()
            .any(|(key, value)| key == candidate && value_text(value).is_some())
    })
}

/// The event being built, with the values that are only resolved after every key is seen.
#[derive(Default)]
struct Record {
    event: Event,
    consumer_key: Option<&'static str>,
    request_id_key: Option<&'static str>,
    time: Option<i64>,
    uri: Option<String>,
    url: Option<String>,
    host_header: Option<String>,
}

impl Record {
    /// Stores one flattened key in its column or as an attribute.
    fn apply(&mut self, key: &str, value: &Json<'_>) -> Result<(), String> {
        if key.starts_with(QUERY_STRING) {
            return Ok(());
        }
        if let Some(name) = key.strip_prefix(REQUEST_HEADERS) {
            self.apply_request_header(key, name, value);
            return Ok(());
        }
        if key.starts_with(RESPONSE_HEADERS) {
            if let Some(text) = header_text(key, value) {
                push_attribute(&mut self.event, key, text);
            }
            return Ok(());
        }
        if key == "tries" {
            self.apply_tries(value);
        }
        let Some(text) = value_text(value) else {
            return Ok(());
        };
        if Some(key) == self.consumer_key {
            self.event.consumer = Some(text.into_owned());
            self.event.consumer_kind = Some(CONSUMER_KIND.to_string());
            return Ok(());
        }
        if Some(key) == self.request_id_key {
            self.event.request_id = Some(text.into_owned());
            return Ok(());
        }
        let event = &mut self.event;
        match key {
            "started_at" => {
                let time = parse_epoch(&text).ok_or_else(|| invalid_timestamp(key, &text))?;
                self.time = Some(time.micros);
            }
            "request.method" => event.method = Some(text.into_owned()),
            "request.uri" => self.uri = Some(text.into_owned()),
            "request.url" => self.url = Some(text.into_owned()),
            "request.size" => event.request_bytes = parse_size(key, &text)?,
            "response.status" => event.status = parse_status(key, &text)?,
            "response.size" => event.response_bytes = parse_size(key, &text)?,
            "latencies.request" => event.duration_ms = parse_millis(key, &text)?,
            "client_ip" => set_client_address(event, &text),
            "upstream_status" => {
                event.upstream_status = parse_status(key, last_list_item(&text))?;
                if is_list(&text) {
                    push_attribute(event, key, text);
                }
            }
            _ if key.starts_with("latencies.") => {
                if parse_number(key, &text)? >= 0.0 {
                    push_attribute(event, key, text);
                }
            }
            _ => push_attribute(event, key, text),
        }
        Ok(())
    }

    fn apply_request_header(&mut self, key: &str, name: &str, value: &Json<'_>) {
        if Some(key) == self.request_id_key {
            self.event.request_id = header_text(name, value).map(Cow::into_owned);
            return;
        }
        let Some(text) = header_text(name, value) else {
            return;
        };
        let event = &mut self.event;
        if name.eq_ignore_ascii_case("user-agent") {
            event.user_agent = Some(text.into_owned());
        } else if name.eq_ignore_ascii_case("referer") {
            event.referer = Some(text.into_owned());
        } else if name.eq_ignore_ascii_case("x-forwarded-for") {
            event.forwarded_for = Some(text.into_owned());
        } else if name.eq_ignore_ascii_case("host") {
            self.host_header = Some(text.into_owned());
        } else {
            push_attribute(event, key, text);
        }
    }

    /// Sets `upstream` to the address of the last try, which sent the response.
    fn apply_tries(&mut self, value: &Json<'_>) {
        let Json::Array(tries) = value else {
            return;
        };
        let Some(Json::Object(last)) = tries.last() else {
            return;
        };
        let Some(ip) = member(last, "ip").and_then(value_text) else {
            return;
        };
        let port = member(last, "port").and_then(value_text);
        self.event.upstream = Some(match port {
            Some(port) if ip.contains(':') => format!("[{ip}]:{port}"),
            Some(port) => format!("{ip}:{port}"),
            None => ip.into_owned(),
        });
    }

    fn finish(self) -> Result<Event, String> {
        let Record {
            mut event,
            time,
            uri,
            url,
            host_header,
            ..
        } = self;
        event.time = time.ok_or("missing the request time: started_at is null or empty")?;
        event.source = Format::Kong.name().to_string();

        if let Some(url) = &url {
            set_target(&mut event, "request.url", url);
        }
        if let Some(uri) = &uri {
            set_target(&mut event, "request.uri", uri);
        }
        if let Some(host) = host_header {
            if event.host.is_none() {
                set_authority(&mut event, &host);
            } else {
                push_attribute(&mut event, "request.headers.host", Cow::Owned(host));
            }
        }
        Ok(event)
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

    const PROXIED: &str = concat!(
        r#"{"latencies":{"request":515,"kong":58,"proxy":457},"service":{"host":"orders.internal","name":"orders"},"#,
        r#""request":{"querystring":{"limit":"5"},"size":138,"uri":"/v1/orders?limit=5","url":"https://api.example.com:8443/v1/orders?limit=5","#,
        r#""headers":{"host":"api.example.com:8443","user-agent":"HTTPie/2.4.0","authorization":"Bearer abc.def.ghi","#,
        r#""x-request-id":"req-1","accept":["application/json","text/plain"]},"method":"GET"},"#,
        r#""tries":[{"balancer_latency":0,"port":80,"ip":"10.0.0.1"},{"balancer_latency":1,"port":8080,"ip":"10.0.0.2"}],"#,
        r#""client_ip":"192.168.144.1","workspace":"ws-1","upstream_uri":"/orders?limit=5","#,
        r#""response":{"headers":{"content-type":"application/json","set-cookie":["a=1","b=2"]},"status":200,"size":827},"#,
        r#""consumer":{"id":"c-42","username":"partner-a"},"route":{"paths":["/v1"]},"started_at":1614232668342}"#
    );

    #[test]
    fn proxied_request() {
        let event = parse_event(PROXIED);

        assert_eq!(event.source, "kong");
        assert_eq!(event.time, 1_614_232_668_342_000);
        assert_eq!(event.method.as_deref(), Some("GET"));
        assert_eq!(event.scheme.as_deref(), Some("https"));
        assert_eq!(event.host.as_deref(), Some("api.example.com"));
        assert_eq!(event.path.as_deref(), Some("/v1/orders"));
        assert_eq!(event.query.as_deref(), Some("limit=5"));
        assert_eq!(event.request_bytes, Some(138));
        assert_eq!(event.response_bytes, Some(827));
        assert_eq!(event.status, Some(200));
        assert_eq!(event.duration_ms, Some(515.0));
        assert_eq!(event.client_ip.as_deref(), Some("192.168.144.1"));
        assert_eq!(event.user_agent.as_deref(), Some("HTTPie/2.4.0"));
        assert_eq!(event.request_id.as_deref(), Some("req-1"));
        assert_eq!(event.upstream.as_deref(), Some("10.0.0.2:8080"));
        assert_eq!(event.consumer.as_deref(), Some("c-42"));
        assert_eq!(event.consumer_kind.as_deref(), Some("gateway"));

        assert_eq!(event.attribute("consumer.username"), Some("partner-a"));
        assert_eq!(event.attribute("latencies.proxy"), Some("457"));
        assert_eq!(event.attribute("service.host"), Some("orders.internal"));
        assert_eq!(event.attribute("route.paths"), Some(r#"["/v1"]"#));
        assert_eq!(event.attribute("port"), Some("8443"));
        assert_eq!(
            event.attribute("request.headers.accept"),
            Some("application/json, text/plain")
        );
        assert_eq!(
            event.attribute("request.headers.authorization"),
            Some("Bearer abc.def.ghi")
        );
        assert_eq!(
            event.attribute("response.headers.set-cookie"),
            Some("a=1; b=2")
        );
        assert_eq!(
            event.attribute("request.headers.host"),
            Some("api.example.com:8443")
        );
        assert_eq!(event.attribute("request.querystring.limit"), None);
        assert!(
            event
                .attribute("tries")
                .is_some_and(|tries| tries.starts_with('['))
        );
    }

    #[test]
    fn kong_answered_itself() {
        let event = parse_event(concat!(
            r#"{"request":{"method":"POST","uri":"/v1/login","headers":{"host":"api.example.com"}},"#,
            r#""response":{"status":401,"size":-1},"latencies":{"request":3,"kong":3,"proxy":-1},"#,
            r#""client_ip":"203.0.113.5","tries":[],"started_at":1700000000000,"#,
            r#""authenticated_entity":{"id":"cred-9","consumer_id":"c-9"}}"#
        ));
        assert_eq!(event.status, Some(401));
        assert_eq!(event.response_bytes, None);
        assert_eq!(event.upstream, None);
        assert_eq!(event.host.as_deref(), Some("api.example.com"));
        assert_eq!(event.attribute("latencies.proxy"), None);
        assert_eq!(event.attribute("latencies.kong"), Some("3"));
        assert_eq!(event.consumer.as_deref(), Some("c-9"));
        assert_eq!(event.attribute("authenticated_entity.id"), Some("cred-9"));
    }

    #[test]
    fn request_id_field_wins_over_header() {
        let event = parse_event(concat!(
            r#"{"request":{"id":"kong-7","method":"GET","uri":"/","headers":{"x-request-id":"hdr-7"}},"#,
            r#""started_at":1700000000000,"client_ip":"192.0.2.1","upstream_status":"502, 200"}"#
        ));
        assert_eq!(event.request_id.as_deref(), Some("kong-7"));
        assert_eq!(
            event.attribute("request.headers.x-request-id"),
            Some("hdr-7")
        );
        assert_eq!(event.upstream_status, Some(200));
        assert_eq!(event.attribute("upstream_status"), Some("502, 200"));
    }

    #[test]
    fn ipv6_try_is_bracketed() {
        let event = parse_event(
            r#"{"request":{"method":"GET","uri":"/"},"started_at":1700000000000,"tries":[{"ip":"2001:db8::5","port":443}]}"#,
        );
        assert_eq!(event.upstream.as_deref(), Some("[2001:db8::5]:443"));
    }

    #[test]
    fn rejects_other_records() {
        for line in [
            r#"{"level":"info","ts":1646861401.52,"logger":"http.log.access","request":{"method":"GET","uri":"/"},"status":200}"#,
            r#"{"requestId":"r1","requestTime":"10/Jun/2023:15:36:28 +0000","httpMethod":"GET","status":"200"}"#,
            r#"{"request":"GET / HTTP/1.1","started_at":1,"client_ip":"192.0.2.1"}"#,
        ] {
            let reason = rejection(line);
            assert!(
                reason.starts_with("not a Kong log record"),
                "{line}: {reason}"
            );
        }
    }

    #[test]
    fn rejects_invalid_values() {
        assert_eq!(
            rejection(r#"{"request":{"method":"GET"},"started_at":"now","client_ip":"192.0.2.1"}"#),
            r#"invalid timestamp "now" in key started_at"#
        );
        assert_eq!(
            rejection(r#"{"request":{"method":"GET"},"started_at":1,"response":{"status":"OK"}}"#),
            r#"invalid number "OK" in key response.status"#
        );
        assert_eq!(
            rejection(r#"{"request":{"method":"GET"},"started_at":null,"client_ip":"192.0.2.1"}"#),
            "missing the request time: started_at is null or empty"
        );
    }
}
