//! nginx access logs written as JSON by a `log_format` (`nginx_json`),
//! usually declared with `escape=json`.
//!
//! The operator chooses the keys, so the parser reads nginx's variable names
//! and the renamings that real configurations use. Every value may be a
//! string, and `-` or an empty string means unknown.
//!
//! | key | column |
//! |---|---|
//! | `msec`, `time_ms`, else `time_iso8601`, else `time_local`, else `time`, `timestamp`, `@timestamp` | `time` |
//! | `remote_addr`, `ip`, `client_ip`, `remote_ip`, `client` | `client_ip` |
//! | `remote_port` | `client_port` |
//! | `request` (the request line) | `method`, `path`, `query`, `http_version` |
//! | `request_method`, `method` | `method` |
//! | `request_uri`, else `uri`, `path` | `path` and `query` |
//! | `args`, `query_string`, `query` | `query` |
//! | `status` | `status` |
//! | `body_bytes_sent`, else `bytes_sent` | `response_bytes` |
//! | `request_length` | `request_bytes` |
//! | `request_time`, `nginx_time` (seconds) | `duration_ms` |
//! | `http_user_agent`, `user_agent`, `agent` | `user_agent` |
//! | `http_referer`, `http_referrer`, `referer`, `referrer`, `referrer_uri` | `referer` |
//! | `http_x_forwarded_for`, `x_forwarded_for`, `forwarded_for`, `xff` | `forwarded_for` |
//! | `host`, else `http_host` | `host` |
//! | `scheme` | `scheme` |
//! | `server_protocol`, `protocol` | `http_version` |
//! | `request_id` | `request_id` |
//! | `upstream_addr` | `upstream` |
//! | `upstream_status` | `upstream_status` |
//!
//! `time` is when nginx wrote the line, which is the END of the request:
//! `$msec`, `$time_iso8601` and `$time_local` are all read at log time. The
//! one with the finest resolution is used and the others are not kept.
//!
//! `request_uri` is the target as the client sent it. nginx's `$uri` is
//! already percent-decoded, so a `%` in it is written back as `%25` before
//! the path goes on. A key named `path` is taken as logged.
//!
//! `upstream_addr` and `upstream_status` list several values when nginx
//! retried the request on another upstream (`10.0.0.1:80, 10.0.0.2:80`).
//! The columns take the last value, from the upstream that sent the
//! response, and the whole list is kept as an attribute under its key.
//!
//! When `realip_remote_addr` is logged, it is the peer that connected to
//! nginx and fills `client_ip` (with `realip_remote_port`), while
//! `remote_addr`, the address the realip module took from a header, stays
//! an attribute.
//!
//! A `log_format` without `escape=json` writes quotes, backslashes and
//! non-ASCII bytes as `\xHH`, which is not valid JSON. Such a line is read
//! after turning each `\xHH` below 0x80 into its character and each run of
//! higher bytes into the UTF-8 text it forms, or into `%HH` when it forms
//! none.
//!
//! A record is taken for nginx only when at least [`MIN_NGINX_KEYS`] of its
//! keys are nginx variable names, so JSON logs of other servers with a
//! `status` or `host` key are rejected. Every key without a column goes to
//! an attribute under its own name.

use std::borrow::Cow;

use crate::event::Event;
use crate::format::Format;
use crate::formats::json::Json;
use crate::formats::json_log::{
    Member, flatten_object, invalid_timestamp, is_list, last_list_item, parse_epoch, parse_object,
    parse_port, parse_seconds_as_millis, parse_size, parse_status, parse_timestamp, push_attribute,
    set_authority, set_target, value_text,
};
use crate::parse::{LineOutcome, ParseContext};
use crate::text::{decode_line, parse_clf_time, parse_iso8601, set_client_address, set_request};

/// Minimum number of keys that must be nginx variable names.
pub(crate) const MIN_NGINX_KEYS: usize = 3;

/// nginx variables that access logs use, by their exact names.
const NGINX_VARIABLES: [&str; 45] = [
    "args",
    "binary_remote_addr",
    "body_bytes_sent",
    "bytes_sent",
    "connection",
    "connection_requests",
    "connection_time",
    "content_length",
    "content_type",
    "document_root",
    "document_uri",
    "gzip_ratio",
    "host",
    "hostname",
    "https",
    "is_args",
    "msec",
    "nginx_version",
    "pid",
    "pipe",
    "proxy_protocol_addr",
    "proxy_protocol_port",
    "query_string",
    "realip_remote_addr",
    "realip_remote_port",
    "remote_addr",
    "remote_port",
    "remote_user",
    "request",
    "request_completion",
    "request_filename",
    "request_id",
    "request_length",
    "request_method",
    "request_time",
    "request_uri",
    "scheme",
    "server_addr",
    "server_name",
    "server_port",
    "server_protocol",
    "status",
    "time_iso8601",
    "time_local",
    "uri",
];

/// Prefixes of nginx's variable families: request and response headers,
/// upstream and TLS details, cookies and query arguments.
const NGINX_VARIABLE_PREFIXES: [&str; 7] = [
    "http_",
    "sent_http_",
    "upstream_",
    "ssl_",
    "cookie_",
    "arg_",
    "geoip_",
];

/// Parses one record of an nginx JSON access log.
pub fn parse_line(line: &str, _ctx: &ParseContext<'_>) -> LineOutcome {
    match build_event(line) {
        Ok(event) => LineOutcome::Event(Box::new(event)),
        Err(reason) => LineOutcome::Rejected(reason),
    }
}

fn build_event(line: &str) -> Result<Event, String> {
    match parse_object(line) {
        Ok(members) => event_from_members(&members),
        Err(error) => {
            let Some(converted) = convert_default_escapes(line) else {
                return Err(error);
            };
            let members = parse_object(&converted).map_err(|_| error)?;
            event_from_members(&members)
        }
    }
}

fn event_from_members(members: &[Member<'_>]) -> Result<Event, String> {
    let nginx_keys = members
        .iter()
        .filter(|(key, _)| is_nginx_variable(key))
        .count();
    if nginx_keys < MIN_NGINX_KEYS {
        return Err(format!(
            "not an nginx JSON access log record: {nginx_keys} of its keys are nginx variable names \
             (such as remote_addr, request, status, time_iso8601) and at least {MIN_NGINX_KEYS} are needed; \
             read a log_format with renamed keys with the json format and a field mapping"
        ));
    }
    let leaves = flatten_object(members);
    let mut record = Record::default();
    for (key, value) in &leaves {
        record.apply(key, value)?;
    }
    record.finish()
}

fn is_nginx_variable(key: &str) -> bool {
    NGINX_VARIABLES.contains(&key)
        || NGINX_VARIABLE_PREFIXES
            .iter()
            .any(|prefix| key.len() > prefix.len() && key.starts_with(prefix))
}

/// Number of time sources, in order of precedence: `msec`, `time_iso8601`,
/// `time_local`, then the generic keys.
const TIME_KEYS: usize = 4;

/// The event being built, with the values that are only resolved after every key is seen.
#[derive(Default)]
struct Record {
    event: Event,
    times: [Option<i64>; TIME_KEYS],
    request_line: Option<String>,
    method: Option<String>,
    request_uri: Option<String>,
    /// `$uri` with `%` escaped, or a `path` key as logged.
    path: Option<String>,
    query: Option<String>,
    http_version: Option<String>,
    host: Option<String>,
    http_host: Option<String>,
    body_bytes_sent: Option<i64>,
    bytes_sent: Option<(String, i64)>,
    remote_addr: Option<String>,
    remote_port: Option<i32>,
    realip_remote_addr: Option<String>,
    realip_remote_port: Option<i32>,
}

impl Record {
    /// Stores one key in its column or as an attribute.
    fn apply(&mut self, key: &str, value: &Json<'_>) -> Result<(), String> {
        let Some(text) = value_text(value) else {
            return Ok(());
        };
        let event = &mut self.event;
        match key {
            "msec" | "time_ms" | "time_msec" => self.times[0] = Some(parse_msec(key, &text)?),
            "time_iso8601" => {
                self.times[1] =
                    Some(parse_iso8601(&text).ok_or_else(|| invalid_timestamp(key, &text))?);
            }
            "time_local" => {
                self.times[2] =
                    Some(parse_clf_time(&text).ok_or_else(|| invalid_timestamp(key, &text))?);
            }
            "time" | "timestamp" | "@timestamp" => {
                self.times[3] = Some(parse_timestamp(key, &text)?);
            }
            "remote_addr" | "ip" | "client_ip" | "remote_ip" | "client" => {
                self.remote_addr = Some(text.into_owned());
            }
            "remote_port" => self.remote_port = parse_port(key, &text)?,
            "realip_remote_addr" => self.realip_remote_addr = Some(text.into_owned()),
            "realip_remote_port" => self.realip_remote_port = parse_port(key, &text)?,
            "request" => self.request_line = Some(text.into_owned()),
            "request_method" | "method" => self.method = Some(text.into_owned()),
            "request_uri" => self.request_uri = Some(text.into_owned()),
            "uri" => self.path = Some(text.replace('%', "%25")),
            "path" => self.path = Some(text.into_owned()),
            "args" | "query_string" | "query" => self.query = Some(text.into_owned()),
            "status" => event.status = parse_status(key, &text)?,
            "body_bytes_sent" => self.body_bytes_sent = parse_size(key, &text)?,
            "bytes_sent" => {
                if let Some(size) = parse_size(key, &text)? {
                    self.bytes_sent = Some((text.into_owned(), size));
                }
            }
            "request_length" => event.request_bytes = parse_size(key, &text)?,
            "request_time" | "nginx_time" => {
                event.duration_ms = parse_seconds_as_millis(key, &text)?;
            }
            "http_user_agent" | "user_agent" | "agent" => {
                event.user_agent = Some(text.into_owned());
            }
            "http_referer" | "http_referrer" | "referer" | "referrer" | "referrer_uri" => {
                event.referer = Some(text.into_owned());
            }
            "http_x_forwarded_for" | "x_forwarded_for" | "forwarded_for" | "xff" => {
                event.forwarded_for = Some(text.into_owned());
            }
            "host" => self.host = Some(text.into_owned()),
            "http_host" => self.http_host = Some(text.into_owned()),
            "scheme" => event.scheme = Some(text.into_owned()),
            "server_protocol" | "protocol" => self.http_version = Some(text.into_owned()),
            "request_id" => event.request_id = Some(text.into_owned()),
            "upstream_addr" => {
                event.upstream = Some(last_list_item(&text).to_string());
                if is_list(&text) {
                    push_attribute(event, key, text);
                }
            }
            "upstream_status" => {
                event.upstream_status = parse_status(key, last_list_item(&text))?;
                if is_list(&text) {
                    push_attribute(event, key, text);
                }
            }
            _ => push_attribute(event, key, text),
        }
        Ok(())
    }

    /// Resolves the values that depend on several keys, rejecting a record without a time.
    fn finish(self) -> Result<Event, String> {
        let Record {
            mut event,
            times,
            request_line,
            method,
            request_uri,
            path,
            query,
            http_version,
            host,
            http_host,
            body_bytes_sent,
            bytes_sent,
            remote_addr,
            remote_port,
            realip_remote_addr,
            realip_remote_port,
        } = self;
        event.time = times.into_iter().flatten().next().ok_or(
            "missing the request time: add $time_iso8601 or $msec to the nginx log_format",
        )?;
        event.source = Format::NginxJson.name().to_string();

        set_peer(
            &mut event,
            remote_addr,
            remote_port,
            realip_remote_addr,
            realip_remote_port,
        );
        if let Some(line) = request_line {
            set_request(&mut event, &line);
        }
        if method.is_some() {
            event.method = method;
        }
        if let Some(target) = request_uri {
            set_target(&mut event, "request_uri", &target);
        } else if path.is_some() {
            event.path = path;
        }
        if query.is_some() {
            event.query = query;
        }
        if http_version.is_some() {
            event.http_version = http_version;
        }

        match (host, http_host) {
            (Some(host), http_host) => {
                event.host = Some(host);
                if let Some(http_host) = http_host {
                    push_attribute(&mut event, "http_host", Cow::Owned(http_host));
                }
            }
            (None, Some(http_host)) => set_authority(&mut event, &http_host),
            (None, None) => {}
        }

        match (body_bytes_sent, bytes_sent) {
            (Some(body), bytes_sent) => {
                event.response_bytes = Some(body);
                if let Some((text, _)) = bytes_sent {
                    push_attribute(&mut event, "bytes_sent", Cow::Owned(text));
                }
            }
            (None, Some((_, size))) => event.response_bytes = Some(size),
            (None, None) => {}
        }
        Ok(event)
    }
}

/// Fills the client from the peer address: `realip_remote_addr` when logged, else `remote_addr`.
fn set_peer(
    event: &mut Event,
    remote_addr: Option<String>,
    remote_port: Option<i32>,
    realip_remote_addr: Option<String>,
    realip_remote_port: Option<i32>,
) {
    match realip_remote_addr {
        Some(peer) => {
            set_client_address(event, &peer);
            event.client_port = realip_remote_port.or(event.client_port);
            if let Some(remote_addr) = remote_addr {
                push_attribute(event, "remote_addr", Cow::Owned(remote_addr));
            }
            if let Some(port) = remote_port {
                push_attribute(event, "remote_port", Cow::Owned(port.to_string()));
            }
        }
        None => {
            if let Some(remote_addr) = remote_addr {
                set_client_address(event, &remote_addr);
            }
            event.client_port = remote_port.or(event.client_port);
        }
    }
}

/// Parses `$msec`, seconds with a millisecond fraction; milliseconds are accepted too.
fn parse_msec(key: &str, text: &str) -> Result<i64, String> {
    parse_epoch(text)
        .map(|time| time.micros)
        .ok_or_else(|| invalid_timestamp(key, text))
}

/// Rewrites the `\xHH` escapes of nginx's default escaping as JSON, or
/// returns `None` when `line` has none.
///
/// Escapes of bytes below 0x80 become `\u00HH`. A run of escapes of higher
/// bytes becomes the UTF-8 text it forms; bytes that form none become `%HH`.
fn convert_default_escapes(line: &str) -> Option<String> {
    if !line.contains("\\x") {
        return None;
    }
    let bytes = line.as_bytes();
    let mut out = String::with_capacity(line.len() + 16);
    let mut high_bytes = Vec::new();
    let mut copied_up_to = 0;
    let mut at = 0;

    while let Some(found) = memchr::memchr(b'\\', &bytes[at..]) {
        let start = at + found;
        let Some(byte) = hex_escape(bytes, start) else {
            // A JSON escape such as `\"` or `\\`: keep both characters.
            at = (start + 2).min(bytes.len());
            continue;
        };
        out.push_str(&line[copied_up_to..start]);
        if byte < 0x80 {
            out.push_str(&format!("\\u{byte:04x}"));
            at = start + 4;
        } else {
            let mut end = start;
            high_bytes.clear();
            while let Some(byte) = hex_escape(bytes, end).filter(|byte| *byte >= 0x80) {
                high_bytes.push(byte);
                end += 4;
            }
            out.push_str(&decode_line(&high_bytes));
            at = end;
        }
        copied_up_to = at;
    }
    out.push_str(&line[copied_up_to..]);
    Some(out)
}

/// Decodes the `\xHH` escape at `start`, if there is one.
fn hex_escape(bytes: &[u8], start: usize) -> Option<u8> {
    let escape = bytes.get(start..start + 4)?;
    if escape[1] != b'x' {
        return None;
    }
    let text = std::str::from_utf8(&escape[2..]).ok()?;
    u8::from_str_radix(text, 16).ok()
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
    fn standard_variable_names() {
        let event = parse_event(concat!(
            r#"{"time_iso8601":"2024-03-01T10:00:00+01:00","remote_addr":"203.0.113.9","remote_port":"51234","#,
            r#""request":"POST /v1/orders?id=7 HTTP/1.1","status":"201","body_bytes_sent":"512","bytes_sent":"700","#,
            r#""request_length":"321","request_time":"0.042","http_user_agent":"curl/8.0","http_referer":"-","#,
            r#""http_x_forwarded_for":"198.51.100.1, 10.0.0.1","host":"api.example.com","http_host":"api.example.com:8443","#,
            r#""request_id":"a1b2","upstream_addr":"10.0.0.5:8080","upstream_status":"201","upstream_response_time":"0.040"}"#
        ));

        assert_eq!(event.source, "nginx_json");
        // 2024-03-01T09:00:00Z
        assert_eq!(event.time, 1_709_283_600_000_000);
        assert_eq!(event.client_ip.as_deref(), Some("203.0.113.9"));
        assert_eq!(event.client_port, Some(51234));
        assert_eq!(event.method.as_deref(), Some("POST"));
        assert_eq!(event.path.as_deref(), Some("/v1/orders"));
        assert_eq!(event.query.as_deref(), Some("id=7"));
        assert_eq!(event.http_version.as_deref(), Some("HTTP/1.1"));
        assert_eq!(event.status, Some(201));
        assert_eq!(event.response_bytes, Some(512));
        assert_eq!(event.request_bytes, Some(321));
        assert_eq!(event.duration_ms, Some(42.0));
        assert_eq!(event.user_agent.as_deref(), Some("curl/8.0"));
        assert_eq!(event.referer, None);
        assert_eq!(
            event.forwarded_for.as_deref(),
            Some("198.51.100.1, 10.0.0.1")
        );
        assert_eq!(event.host.as_deref(), Some("api.example.com"));
        assert_eq!(event.request_id.as_deref(), Some("a1b2"));
        assert_eq!(event.upstream.as_deref(), Some("10.0.0.5:8080"));
        assert_eq!(event.upstream_status, Some(201));
        assert!(!event.malformed);
        assert_eq!(
            event.attributes,
            vec![
                ("upstream_response_time".to_string(), "0.040".to_string()),
                ("http_host".to_string(), "api.example.com:8443".to_string()),
                ("bytes_sent".to_string(), "700".to_string()),
            ]
        );
    }

    #[test]
    fn renamed_keys_and_msec() {
        let event = parse_event(concat!(
            r#"{"time_ms":"1535473133.710","time_iso8601":"2018-08-28T19:18:53+03:00","ip":"-","status":"302","#,
            r#""method":"GET","scheme":"http","host":"local.example.com","path":"/logout.html","query":"","#,
            r#""referrer_uri":"http://local.example.com/overview.html","user_agent":"Mozilla/5.0","#,
            r#""remote_port":"59724","server_protocol":"HTTP/1.1","nginx_time":"0.109","#,
            r#""upstream_response_time":"0.000, 0.110"}"#
        ));
        assert_eq!(event.time, 1_535_473_133_710_000);
        assert_eq!(event.client_ip, None);
        assert_eq!(event.client_port, Some(59724));
        assert_eq!(event.method.as_deref(), Some("GET"));
        assert_eq!(event.scheme.as_deref(), Some("http"));
        assert_eq!(event.path.as_deref(), Some("/logout.html"));
        assert_eq!(event.query, None);
        assert_eq!(
            event.referer.as_deref(),
            Some("http://local.example.com/overview.html")
        );
        assert_eq!(event.duration_ms, Some(109.0));
        assert_eq!(
            event.attribute("upstream_response_time"),
            Some("0.000, 0.110")
        );
    }

    #[test]
    fn retried_upstreams_keep_the_list() {
        let event = parse_event(concat!(
            r#"{"msec":"1700000000.123","remote_addr":"192.0.2.1","request_uri":"/a","status":"200","#,
            r#""upstream_addr":"10.0.0.1:80, 10.0.0.2:80","upstream_status":"502, 200"}"#
        ));
        assert_eq!(event.upstream.as_deref(), Some("10.0.0.2:80"));
        assert_eq!(event.upstream_status, Some(200));
        assert_eq!(
            event.attribute("upstream_addr"),
            Some("10.0.0.1:80, 10.0.0.2:80")
        );
        assert_eq!(event.attribute("upstream_status"), Some("502, 200"));
    }

    #[test]
    fn time_precedence() {
        let local = parse_event(
            r#"{"time_local":"01/Mar/2024:10:00:00 +0100","remote_addr":"192.0.2.1","status":"200"}"#,
        );
        assert_eq!(local.time, 1_709_283_600_000_000);
        let msec = parse_event(
            r#"{"time_local":"01/Mar/2024:10:00:00 +0100","msec":"1709283600.250","remote_addr":"192.0.2.1","status":"200"}"#,
        );
        assert_eq!(msec.time, 1_709_283_600_250_000);
        assert!(msec.attributes.is_empty());
    }

    #[test]
    fn request_uri_wins_over_request_line() {
        let event = parse_event(concat!(
            r#"{"msec":"1700000000.000","request":"GET /a%20b?x=1 HTTP/2.0","request_uri":"/a%20b?x=1","#,
            r#""request_method":"GET","status":"200","uri":"/a b"}"#
        ));
        assert_eq!(event.path.as_deref(), Some("/a%20b"));
        assert_eq!(event.query.as_deref(), Some("x=1"));
        assert_eq!(event.http_version.as_deref(), Some("HTTP/2.0"));
    }

    #[test]
    fn decoded_uri_escapes_percent() {
        let event = parse_event(
            r#"{"msec":"1700000000","uri":"/100%/a b","args":"q=1","status":"200","remote_addr":"192.0.2.1"}"#,
        );
        assert_eq!(event.path.as_deref(), Some("/100%25/a b"));
        assert_eq!(event.query.as_deref(), Some("q=1"));
    }

    #[test]
    fn malformed_request_line() {
        let event = parse_event(
            r#"{"msec":"1700000000","request":"\u0016\u0003\u0001","status":"400","remote_addr":"192.0.2.1"}"#,
        );
        assert!(event.malformed);
        assert_eq!(event.method, None);
        assert_eq!(event.status, Some(400));
        assert_eq!(event.attribute("request"), Some("\u{16}\u{3}\u{1}"));
    }

    #[test]
    fn realip_peer_fills_client() {
        let event = parse_event(concat!(
            r#"{"msec":"1700000000","status":"200","remote_addr":"198.51.100.7","remote_port":"1234","#,
            r#""realip_remote_addr":"10.0.0.9","realip_remote_port":"40000"}"#
        ));
        assert_eq!(event.client_ip.as_deref(), Some("10.0.0.9"));
        assert_eq!(event.client_port, Some(40000));
        assert_eq!(event.attribute("remote_addr"), Some("198.51.100.7"));
        assert_eq!(event.attribute("remote_port"), Some("1234"));
    }

    #[test]
    fn http_host_fills_host_without_port() {
        let event = parse_event(
            r#"{"msec":"1700000000","status":"200","remote_addr":"192.0.2.1","http_host":"api.example.com:8443"}"#,
        );
        assert_eq!(event.host.as_deref(), Some("api.example.com"));
        assert_eq!(event.attribute("port"), Some("8443"));
    }

    #[test]
    fn default_escaping_is_read() {
        let line = concat!(
            r#"{"msec":"1700000000","remote_addr":"192.0.2.1","status":"200","#,
            r#""request":"GET /caf\xC3\xA9?q=\x22x\x22 HTTP/1.1","http_user_agent":"bot \x5Cx \xFF"}"#
        );
        let event = parse_event(line);
        assert_eq!(event.path.as_deref(), Some("/café"));
        assert_eq!(event.query.as_deref(), Some("q=\"x\""));
        assert_eq!(event.user_agent.as_deref(), Some("bot \\x %FF"));
    }

    #[test]
    fn numbers_may_be_json_numbers() {
        let event = parse_event(
            r#"{"msec":1700000000.5,"remote_addr":"192.0.2.1","status":200,"body_bytes_sent":0,"request_time":0.001}"#,
        );
        assert_eq!(event.time, 1_700_000_000_500_000);
        assert_eq!(event.status, Some(200));
        assert_eq!(event.response_bytes, Some(0));
        assert_eq!(event.duration_ms, Some(1.0));
    }

    #[test]
    fn rejects_missing_time() {
        assert_eq!(
            rejection(r#"{"remote_addr":"192.0.2.1","request":"GET / HTTP/1.1","status":"200"}"#),
            "missing the request time: add $time_iso8601 or $msec to the nginx log_format"
        );
    }

    #[test]
    fn rejects_invalid_values() {
        assert_eq!(
            rejection(r#"{"msec":"soon","remote_addr":"192.0.2.1","status":"200"}"#),
            r#"invalid timestamp "soon" in key msec"#
        );
        assert_eq!(
            rejection(r#"{"msec":"1700000000","remote_addr":"192.0.2.1","status":"OK"}"#),
            r#"invalid number "OK" in key status"#
        );
    }

    #[test]
    fn rejects_other_json_logs() {
        // Zeek http.log, Caddy, Envoy and API Gateway records share some key names.
        for line in [
            r#"{"ts":1547687130.172944,"uid":"C1","method":"GET","host":"example.com","uri":"/","status_code":200}"#,
            r#"{"level":"info","ts":1646861401.52,"logger":"http.log.access","request":{"method":"GET"},"status":200,"size":10}"#,
            r#"{"start_time":"2022-09-08T12:51:05.656Z","method":"GET","path":"/","response_code":200,"bytes_sent":1,"request_id":"r","upstream_host":"h"}"#,
            r#"{"requestId":"r1","ip":"192.0.2.1","requestTime":"10/Jun/2023:15:36:28 +0000","httpMethod":"GET","status":"200","protocol":"HTTP/1.1"}"#,
            r#"{"time":"2021-03-16T18:56:54Z","level":"info","msg":"","RequestMethod":"GET","DownstreamStatus":404}"#,
        ] {
            let reason = rejection(line);
            assert!(
                reason.starts_with("not an nginx JSON access log record")
                    || reason.starts_with("missing the request time"),
                "{line}: {reason}"
            );
        }
        assert!(
            rejection("127.0.0.1 - - [10/Oct/2000:13:55:36 -0700] \"GET / HTTP/1.0\" 200 1")
                .starts_with("expected a JSON object")
        );
    }

    #[test]
    fn odd_input_does_not_panic() {
        for sample in [
            "{",
            "{\"request\":\"\\x\"}",
            "\\x4",
            "{\"a\":\"\\xZZ\"}",
            "{\"msec\":\"1\\xC3\"}",
        ] {
            let _ = build_event(sample);
        }
    }

    #[test]
    fn default_escape_conversion() {
        assert_eq!(convert_default_escapes("no escapes"), None);
        assert_eq!(
            convert_default_escapes(r#"a\x22b\xE2\x82\xACc\xFFd\"e"#).as_deref(),
            Some(r#"a\u0022b€c%FFd\"e"#)
        );
        assert_eq!(convert_default_escapes(r"\x").as_deref(), Some(r"\x"));
    }
}
