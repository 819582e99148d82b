//! nginx and Apache access logs in the common and combined formats (`clf`).
//!
//! The common format is `remote ident user [time] "request" status bytes`, and
//! the combined format adds `"referer" "user_agent"`. Variants that real
//! configurations produce are accepted too:
//!
//! - a virtual host before the remote address (`%v`, or `%v:%p` whose port goes
//!   to attribute `port`), which fills `host`;
//! - an X-Forwarded-For list in place of the remote address
//!   (`10.0.0.2, 10.0.0.1 - - [...]`), whose last address is the client;
//! - an X-Forwarded-For list, quoted or not, before the remote address;
//! - fields after the user agent, kept as attributes `extra_1`, `extra_2`, ...
//!
//! The `clf` section of `docs/sources.md` maps the fields to columns, states
//! whether `time` is the start or the end of the request for Apache and for
//! nginx, and describes how escapes and odd lines are handled.

use crate::event::Event;
use crate::format::Format;
use crate::parse::{LineOutcome, ParseContext};
use crate::text::{
    Delimiter, Field, Fields, dash_as_none, normalise_ip, parse_clf_time, quote_excerpt,
    set_client_address, set_request, split_host_port, unescape_text,
};

/// Field count of a combined line with a few extra fields, to size the field list once.
const TYPICAL_FIELD_COUNT: usize = 16;

/// Parses one line of a common or combined access log.
pub fn parse_line(line: &str, _ctx: &ParseContext<'_>) -> LineOutcome {
    parse_record(line)
}

/// Parses one line without the per-input settings, as format detection needs.
pub(crate) fn parse_record(line: &str) -> LineOutcome {
    let line = line.strip_prefix('\u{feff}').unwrap_or(line);
    let mut fields = Vec::with_capacity(TYPICAL_FIELD_COUNT);
    fields.extend(Fields::new(line));
    match build_event(line, &fields) {
        Ok(event) => LineOutcome::Event(Box::new(event)),
        Err(reason) => LineOutcome::Rejected(reason),
    }
}

fn build_event(line: &str, fields: &[Field<'_>]) -> Result<Event, String> {
    let (time_index, time) = find_time(fields)?;
    if time_index < 3 {
        return Err(format!(
            "expected the remote address, ident and user before the [time] field, found {time_index} fields"
        ));
    }

    let mut event = Event::new(Format::Clf.name(), time);
    set_remote(&mut event, line, &fields[..time_index - 2])?;
    set_identity(
        &mut event,
        fields[time_index - 2].text,
        fields[time_index - 1].text,
    );
    let after_response = set_response(&mut event, fields, time_index + 1)?;
    set_trailing_fields(&mut event, &fields[after_response..]);
    Ok(event)
}

/// Finds the `[time]` field: the first bracketed field that contains a CLF time.
fn find_time(fields: &[Field<'_>]) -> Result<(usize, i64), String> {
    let mut first_bracketed = None;
    for (index, field) in fields.iter().enumerate() {
        if field.delimiter != Delimiter::Bracketed {
            continue;
        }
        if let Some(time) = parse_clf_time(field.text) {
            return Ok((index, time));
        }
        first_bracketed.get_or_insert(index);
    }
    match first_bracketed {
        Some(index) => Err(format!(
            "invalid timestamp {} in field {} (time)",
            quote_excerpt(fields[index].text),
            index + 1
        )),
        None => Err("missing the [time] field of the common log format".to_string()),
    }
}

/// One remote field: a single token, a comma-separated list spread over
/// several tokens, or a quoted field.
struct RemoteItem<'a> {
    text: &'a str,
    quoted: bool,
}

impl RemoteItem<'_> {
    fn is_list(&self) -> bool {
        self.quoted || self.text.contains(',')
    }
}

/// Groups the fields before `ident` into items, joining `a, b, c` lists into one.
fn remote_items<'a>(line: &'a str, fields: &[Field<'a>]) -> Vec<RemoteItem<'a>> {
    let mut items = Vec::with_capacity(fields.len());
    let mut index = 0;
    while index < fields.len() {
        let first = fields[index];
        if first.delimiter == Delimiter::Quoted {
            items.push(RemoteItem {
                text: first.text,
                quoted: true,
            });
            index += 1;
            continue;
        }
        let mut last = index;
        while fields[last].text.ends_with(',')
            && fields
                .get(last + 1)
                .is_some_and(|next| next.delimiter != Delimiter::Quoted)
        {
            last += 1;
        }
        items.push(RemoteItem {
            text: &line[first.start..fields[last].end],
            quoted: false,
        });
        index = last + 1;
    }
    items
}

/// Fills client, X-Forwarded-For and virtual host from the fields before `ident`.
///
/// The last item is the remote address. A list there is an X-Forwarded-For
/// list whose last address is the client. An item before it is an
/// X-Forwarded-For list when it is quoted, a list or a bare IP address, and
/// a virtual host otherwise.
fn set_remote(event: &mut Event, line: &str, fields: &[Field<'_>]) -> Result<(), String> {
    if let [only] = fields
        && only.delimiter == Delimiter::Bare
        && !only.text.contains(',')
    {
        set_client_address(event, only.text);
        return Ok(());
    }
    let mut items = remote_items(line, fields);
    let Some(remote) = items.pop() else {
        return Err("missing the remote address before the ident field".to_string());
    };
    if items.len() > 2 {
        return Err(format!(
            "expected at most a virtual host and an X-Forwarded-For list before the remote address, found {} fields",
            items.len()
        ));
    }

    if remote.is_list() {
        let list = unescape_text(remote.text);
        let last_address = list.rsplit(',').next().unwrap_or_default().trim();
        set_client_address(event, last_address);
        event.forwarded_for = dash_as_none(&list).map(str::to_string);
    } else {
        set_client_address(event, remote.text);
    }

    for item in items {
        if item.is_list() || normalise_ip(item.text).is_some() {
            set_forwarded_for(event, &item)?;
        } else {
            set_virtual_host(event, item.text)?;
        }
    }
    Ok(())
}

fn set_forwarded_for(event: &mut Event, item: &RemoteItem<'_>) -> Result<(), String> {
    if event.forwarded_for.is_some() {
        return Err(format!(
            "found a second X-Forwarded-For list {} before the ident field",
            quote_excerpt(item.text)
        ));
    }
    event.forwarded_for = dash_as_none(&unescape_text(item.text)).map(str::to_string);
    Ok(())
}

fn set_virtual_host(event: &mut Event, text: &str) -> Result<(), String> {
    let Some(text) = dash_as_none(text) else {
        return Ok(());
    };
    if event.host.is_some() {
        return Err(format!(
            "found a second virtual host {} before the remote address",
            quote_excerpt(text)
        ));
    }
    let (host, port) = split_host_port(text);
    event.host = Some(host.to_string());
    if let Some(port) = port {
        event
            .attributes
            .push(("port".to_string(), port.to_string()));
    }
    Ok(())
}

/// Keeps a real ident as attribute `ident` and a real user as attribute `remote_user`.
fn set_identity(event: &mut Event, ident: &str, user: &str) {
    if let Some(ident) = dash_as_none(ident) {
        event
            .attributes
            .push(("ident".to_string(), ident.to_string()));
    }
    if let Some(user) = dash_as_none(user) {
        let user = unescape_text(user);
        event
            .attributes
            .push(("remote_user".to_string(), user.into_owned()));
    }
}

/// Fills request, status and bytes from the fields after the time, and
/// returns the index of the first field after them.
fn set_response(event: &mut Event, fields: &[Field<'_>], request: usize) -> Result<usize, String> {
    let Some(request_field) = fields.get(request) else {
        return Err("missing the request line after the [time] field".to_string());
    };
    if request_field.delimiter != Delimiter::Quoted {
        return Err(format!(
            "expected a quoted request line in field {}, found {}",
            request + 1,
            quote_excerpt(request_field.text)
        ));
    }
    set_request(event, request_field.text);

    let status = request + 1;
    let Some(status_field) = fields.get(status) else {
        return Err("missing the status after the request line".to_string());
    };
    event.status = parse_number(status_field.text)
        .map_err(|()| invalid_field("status", status_field, status))?
        .map(i32::try_from)
        .transpose()
        .map_err(|_| invalid_field("status", status_field, status))?;

    let bytes = request + 2;
    let Some(bytes_field) = fields.get(bytes) else {
        return Ok(bytes);
    };
    event.response_bytes = parse_number(bytes_field.text)
        .map_err(|()| invalid_field("byte count", bytes_field, bytes))?;
    Ok(bytes + 1)
}

/// Parses a non-negative integer, with `-` as unknown.
fn parse_number(text: &str) -> Result<Option<i64>, ()> {
    if text == "-" {
        return Ok(None);
    }
    if text.is_empty() || !text.bytes().all(|byte| byte.is_ascii_digit()) {
        return Err(());
    }
    text.parse().map(Some).map_err(|_| ())
}

fn invalid_field(value_kind: &str, field: &Field<'_>, index: usize) -> String {
    format!(
        "invalid {value_kind} {} in field {}",
        quote_excerpt(field.text),
        index + 1
    )
}

/// Takes the quoted referer and user agent of the combined format, then keeps
/// any other fields as `extra_N` attributes.
fn set_trailing_fields(event: &mut Event, fields: &[Field<'_>]) {
    let mut rest = fields;
    if let Some((referer, tail)) = rest
        .split_first()
        .filter(|(f, _)| f.delimiter == Delimiter::Quoted)
    {
        event.referer = dash_as_none(&unescape_text(referer.text)).map(str::to_string);
        rest = tail;
        if let Some((agent, tail)) = rest
            .split_first()
            .filter(|(f, _)| f.delimiter == Delimiter::Quoted)
        {
            event.user_agent = dash_as_none(&unescape_text(agent.text)).map(str::to_string);
            rest = tail;
        }
    }
    for (index, field) in rest.iter().enumerate() {
        let value = unescape_text(field.text);
        if let Some(value) = dash_as_none(&value) {
            event
                .attributes
                .push((format!("extra_{}", index + 1), value.to_string()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::formats::test_support::{expect_event, expect_rejection};

    /// 2016-12-07T10:05:07Z, the time of the `[07/Dec/2016:11:05:07 +0100]` test lines.
    const DEC_7_2016: i64 = 1_481_105_107_000_000;

    fn parse_event(line: &str) -> Event {
        expect_event(line, parse_record(line))
    }

    fn rejection(line: &str) -> String {
        expect_rejection(line, parse_record(line))
    }

    fn attribute<'a>(event: &'a Event, name: &str) -> Option<&'a str> {
        event.attribute(name)
    }

    #[test]
    fn common_line() {
        let event = parse_event(
            r#"::1 - - [26/Dec/2016:16:16:29 +0200] "GET /favicon.ico HTTP/1.1" 404 209"#,
        );
        assert_eq!(event.source, "clf");
        assert_eq!(event.time, 1_482_761_789_000_000);
        assert_eq!(event.client_ip.as_deref(), Some("::1"));
        assert_eq!(event.method.as_deref(), Some("GET"));
        assert_eq!(event.path.as_deref(), Some("/favicon.ico"));
        assert_eq!(event.http_version.as_deref(), Some("HTTP/1.1"));
        assert_eq!(event.status, Some(404));
        assert_eq!(event.response_bytes, Some(209));
        assert_eq!(event.referer, None);
        assert_eq!(event.user_agent, None);
        assert!(event.attributes.is_empty());
    }

    #[test]
    fn combined_line() {
        let event = parse_event(concat!(
            r#"77.179.66.156 - - [25/Oct/2016:14:49:34 +0200] "GET /favicon.ico?v=2 HTTP/1.1" 404 571 "#,
            r#""http://localhost:8080/" "Mozilla/5.0 (Macintosh) Chrome/54.0.2840.59""#
        ));
        assert_eq!(event.client_ip.as_deref(), Some("77.179.66.156"));
        assert_eq!(event.path.as_deref(), Some("/favicon.ico"));
        assert_eq!(event.query.as_deref(), Some("v=2"));
        assert_eq!(event.referer.as_deref(), Some("http://localhost:8080/"));
        assert_eq!(
            event.user_agent.as_deref(),
            Some("Mozilla/5.0 (Macintosh) Chrome/54.0.2840.59")
        );
    }

    #[test]
    fn virtual_host_prefix() {
        let event = parse_event(
            r#"lessons.example.com 192.168.0.1 - - [09/Jun/2020:12:10:39 -0700] "GET /A%20B.mp4 HTTP/1.1" 206 7648063 "-" "-""#,
        );
        assert_eq!(event.host.as_deref(), Some("lessons.example.com"));
        assert_eq!(event.client_ip.as_deref(), Some("192.168.0.1"));
        assert_eq!(event.path.as_deref(), Some("/A%20B.mp4"));
        assert!(event.attributes.is_empty());
    }

    #[test]
    fn virtual_host_with_port() {
        let event = parse_event(
            r#"api.example.com:8443 10.1.2.3 - - [09/Jun/2020:12:10:39 -0700] "GET / HTTP/1.1" 200 5"#,
        );
        assert_eq!(event.host.as_deref(), Some("api.example.com"));
        assert_eq!(attribute(&event, "port"), Some("8443"));
        assert_eq!(event.client_ip.as_deref(), Some("10.1.2.3"));
    }

    #[test]
    fn forwarded_for_list_as_remote() {
        let event = parse_event(
            r#"10.0.0.2, 10.0.0.1, 127.0.0.1 - - [07/Dec/2016:11:05:07 +0100] "GET /ocelot HTTP/1.1" 200 571 "-" "Firefox/49.0""#,
        );
        assert_eq!(event.time, DEC_7_2016);
        assert_eq!(
            event.forwarded_for.as_deref(),
            Some("10.0.0.2, 10.0.0.1, 127.0.0.1")
        );
        assert_eq!(event.client_ip.as_deref(), Some("127.0.0.1"));
        assert_eq!(event.host, None);
    }

    #[test]
    fn quoted_forwarded_for_before_remote() {
        let event = parse_event(
            r#""10.5.102.222, 199.96.1.1, 204.246.1.1" 10.2.1.185 - - [22/Jan/2016:13:18:29 +0000] "GET /assets/xxxx?q=100 HTTP/1.1" 200 25507 "-" "Amazon CloudFront""#,
        );
        assert_eq!(
            event.forwarded_for.as_deref(),
            Some("10.5.102.222, 199.96.1.1, 204.246.1.1")
        );
        assert_eq!(event.client_ip.as_deref(), Some("10.2.1.185"));
        assert_eq!(event.query.as_deref(), Some("q=100"));
    }

    #[test]
    fn unquoted_forwarded_for_before_remote() {
        let event = parse_event(
            r#"2a03:0000:10ff:f00f:0000:0000:0:8000, 10.225.192.17 10.2.2.121 - - [30/Dec/2016:06:47:09 +0000] "GET /test.html HTTP/1.1" 404 8571 "-" "Facebot""#,
        );
        assert_eq!(
            event.forwarded_for.as_deref(),
            Some("2a03:0000:10ff:f00f:0000:0000:0:8000, 10.225.192.17")
        );
        assert_eq!(event.client_ip.as_deref(), Some("10.2.2.121"));
    }

    #[test]
    fn single_forwarded_address_before_remote() {
        let event = parse_event(
            r#"203.0.113.9 10.2.2.121 - - [30/Dec/2016:06:47:09 +0000] "GET / HTTP/1.1" 200 1"#,
        );
        assert_eq!(event.forwarded_for.as_deref(), Some("203.0.113.9"));
        assert_eq!(event.client_ip.as_deref(), Some("10.2.2.121"));
        assert_eq!(event.host, None);
    }

    #[test]
    fn virtual_host_and_forwarded_for() {
        let event = parse_event(
            r#"shop.example.com "203.0.113.9, 10.0.0.1" 10.2.2.121 - - [30/Dec/2016:06:47:09 +0000] "GET / HTTP/1.1" 200 1"#,
        );
        assert_eq!(event.host.as_deref(), Some("shop.example.com"));
        assert_eq!(
            event.forwarded_for.as_deref(),
            Some("203.0.113.9, 10.0.0.1")
        );
        assert_eq!(event.client_ip.as_deref(), Some("10.2.2.121"));
    }

    #[test]
    fn host_name_as_remote() {
        let event = parse_event(
            r#"monitoring-server - - [29/May/2017:19:02:48 +0000] "GET /status HTTP/1.1" 200 612 "-" "Firefox/15.0a2" "-""#,
        );
        assert_eq!(event.client_ip, None);
        assert_eq!(attribute(&event, "remote_host"), Some("monitoring-server"));
        assert_eq!(event.consumer, None);
    }

    #[test]
    fn dash_request_is_malformed_row() {
        let event = parse_event(r#"::1 - - [26/Dec/2016:16:16:48 +0200] "-" 408 -"#);
        assert!(event.malformed);
        assert_eq!(event.status, Some(408));
        assert_eq!(event.response_bytes, None);
        assert_eq!(event.method, None);
        assert_eq!(event.path, None);
        assert_eq!(attribute(&event, "request"), Some("-"));
    }

    #[test]
    fn empty_request_is_malformed_row() {
        let event = parse_event(r#"127.0.0.1 - - [12/Apr/2018:09:48:40 +0200] "" 400 0 "-" "-""#);
        assert!(event.malformed);
        assert_eq!(event.status, Some(400));
        assert_eq!(event.response_bytes, Some(0));
        assert_eq!(attribute(&event, "request"), Some(""));
    }

    #[test]
    fn tls_handshake_request_is_malformed_row() {
        let event = parse_event(
            r#"45.1.2.3 - - [12/Apr/2018:09:48:40 +0200] "\x16\x03\x01\x00\xa5\x01\x00\x00\xa1" 400 157 "-" "-""#,
        );
        assert!(event.malformed);
        assert_eq!(event.method, None);
        assert_eq!(
            attribute(&event, "request"),
            Some(r"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1")
        );
    }

    #[test]
    fn spaces_inside_request_line() {
        let event =
            parse_event(r#"1.2.3.4 - - [12/Apr/2018:09:48:40 +0200] "GET /a b c HTTP/1.1" 404 1"#);
        assert_eq!(event.method.as_deref(), Some("GET"));
        assert_eq!(event.path.as_deref(), Some("/a b c"));
        assert_eq!(event.http_version.as_deref(), Some("HTTP/1.1"));
        assert!(event.malformed);
    }

    #[test]
    fn escaped_quotes_in_fields() {
        let event = parse_event(concat!(
            r#"1.2.3.4 - - [12/Apr/2018:09:48:40 +0200] "GET /q?a=\"b\" HTTP/1.1" 200 1 "-" "#,
            r#""\"nlpproject.info research\"""#
        ));
        assert_eq!(event.query.as_deref(), Some(r#"a="b""#));
        assert_eq!(
            event.user_agent.as_deref(),
            Some(r#""nlpproject.info research""#)
        );
    }

    #[test]
    fn nginx_hex_escapes() {
        let event = parse_event(concat!(
            r#"157.55.39.245 - - [22/Jan/2019:04:07:27 +0330] "GET /image/29201?name=\xD8\xB3\xD8\xAA-x.jpg HTTP/1.1" "#,
            r#"200 28140 "-" "\x22bot\x22""#
        ));
        assert_eq!(event.path.as_deref(), Some("/image/29201"));
        assert_eq!(event.query.as_deref(), Some("name=%D8%B3%D8%AA-x.jpg"));
        assert_eq!(event.user_agent.as_deref(), Some(r#""bot""#));
    }

    #[test]
    fn apache_escaped_quotes_in_user_agent() {
        let event = parse_event(concat!(
            r#"10.0.0.9 - - [12/Apr/2018:09:48:40 +0200] "GET / HTTP/1.1" 200 1 "#,
            r#""http://a.example/?q=\"x\"" "Mozilla/5.0 \"quoted\" \" \" end\\" "#,
            r#""after-agent""#
        ));
        assert_eq!(event.referer.as_deref(), Some(r#"http://a.example/?q="x""#));
        assert_eq!(
            event.user_agent.as_deref(),
            Some(r#"Mozilla/5.0 "quoted" " " end\"#)
        );
        assert_eq!(event.attribute("extra_1"), Some("after-agent"));
        assert_eq!(event.status, Some(200));
    }

    #[test]
    fn nginx_escaped_quotes_in_user_agent() {
        let event = parse_event(concat!(
            r#"10.0.0.9 - - [12/Apr/2018:09:48:40 +0200] "GET / HTTP/1.1" 200 1 "#,
            r#""http://a.example/?q=\x22x\x22" "Mozilla/5.0 \x22quoted\x22 \x22 \x22 C:\x5CTemp \xD0\x9F" "#,
            r#""after-agent""#
        ));
        assert_eq!(event.referer.as_deref(), Some(r#"http://a.example/?q="x""#));
        assert_eq!(
            event.user_agent.as_deref(),
            Some(r#"Mozilla/5.0 "quoted" " " C:\Temp П"#)
        );
        assert_eq!(event.attribute("extra_1"), Some("after-agent"));
    }

    #[test]
    fn escaped_quotes_in_request_line() {
        let apache = parse_event(
            r#"10.0.0.9 - - [12/Apr/2018:09:48:40 +0200] "GET /a?b=\"c d\" HTTP/1.1" 200 1"#,
        );
        assert_eq!(apache.query.as_deref(), Some(r#"b="c d""#));
        assert_eq!(apache.http_version.as_deref(), Some("HTTP/1.1"));
        let nginx = parse_event(
            r#"10.0.0.9 - - [12/Apr/2018:09:48:40 +0200] "GET /a?b=\x22c\x22 HTTP/1.1" 200 1"#,
        );
        assert_eq!(nginx.query.as_deref(), Some(r#"b="c""#));
    }

    #[test]
    fn absolute_uri_request() {
        let event = parse_event(
            r#"1.2.3.4 - - [12/Apr/2018:09:48:40 +0200] "GET http://proxy.example:8080/x?y HTTP/1.1" 200 1"#,
        );
        assert_eq!(event.scheme.as_deref(), Some("http"));
        assert_eq!(event.host.as_deref(), Some("proxy.example"));
        assert_eq!(attribute(&event, "port"), Some("8080"));
        assert_eq!(event.path.as_deref(), Some("/x"));
        assert_eq!(event.query.as_deref(), Some("y"));
    }

    #[test]
    fn options_asterisk_request() {
        let event =
            parse_event(r#"::1 - - [12/Apr/2018:09:48:40 +0200] "OPTIONS * HTTP/1.0" 200 -"#);
        assert_eq!(event.method.as_deref(), Some("OPTIONS"));
        assert_eq!(event.path.as_deref(), Some("*"));
        assert!(!event.malformed);
    }

    #[test]
    fn ident_and_user_become_attributes() {
        let event = parse_event(
            r#"1.2.3.4 identd frank [10/Oct/2000:13:55:36 -0700] "GET /a HTTP/1.0" 200 2326"#,
        );
        assert_eq!(attribute(&event, "ident"), Some("identd"));
        assert_eq!(attribute(&event, "remote_user"), Some("frank"));
        assert_eq!(event.consumer, None);
    }

    #[test]
    fn extra_fields_are_numbered() {
        let event = parse_event(
            r#"172.17.0.1 - - [29/May/2017:19:02:48 +0000] "GET /stringpatch HTTP/1.1" 404 612 "-" "Firefox" "-" 0.005 "up:80""#,
        );
        assert_eq!(event.user_agent.as_deref(), Some("Firefox"));
        assert_eq!(attribute(&event, "extra_1"), None);
        assert_eq!(attribute(&event, "extra_2"), Some("0.005"));
        assert_eq!(attribute(&event, "extra_3"), Some("up:80"));
    }

    #[test]
    fn truncated_user_agent_is_kept() {
        let event = parse_event(
            r#"46.118.127.106 - - [20/May/2015:12:05:17 +0000] "GET /x.py HTTP/1.1" 200 235 "-" "Mozilla/5.0 (compatible; Googlebot/2.1"#,
        );
        assert_eq!(event.status, Some(200));
        assert_eq!(
            event.user_agent.as_deref(),
            Some("Mozilla/5.0 (compatible; Googlebot/2.1")
        );
    }

    #[test]
    fn missing_bytes_is_unknown() {
        let event =
            parse_event(r#"1.2.3.4 - - [10/Oct/2000:13:55:36 -0700] "GET /a HTTP/1.0" 200"#);
        assert_eq!(event.status, Some(200));
        assert_eq!(event.response_bytes, None);
    }

    #[test]
    fn bracketed_ipv6_remote() {
        let event = parse_event(
            r#"[2001:db8::1]:443 - - [10/Oct/2000:13:55:36 -0700] "GET /a HTTP/1.0" 200 1"#,
        );
        assert_eq!(event.client_ip.as_deref(), Some("2001:db8::1"));
        assert_eq!(event.client_port, Some(443));
    }

    #[test]
    fn rejects_lines_without_time() {
        assert_eq!(
            rejection("just some text"),
            "missing the [time] field of the common log format"
        );
        assert_eq!(
            rejection(r#"1.2.3.4 - - [10/Oct/2000:25:55:36 -0700] "GET /a HTTP/1.0" 200 1"#),
            r#"invalid timestamp "10/Oct/2000:25:55:36 -0700" in field 4 (time)"#
        );
    }

    #[test]
    fn rejects_broken_layouts() {
        assert_eq!(
            rejection(r#"- [10/Oct/2000:13:55:36 -0700] "GET /a HTTP/1.0" 200 1"#),
            "expected the remote address, ident and user before the [time] field, found 1 fields"
        );
        assert_eq!(
            rejection(r#"1.2.3.4 - - [10/Oct/2000:13:55:36 -0700] GET /a HTTP/1.0 200 1"#),
            r#"expected a quoted request line in field 5, found "GET""#
        );
        assert_eq!(
            rejection(r#"1.2.3.4 - - [10/Oct/2000:13:55:36 -0700] "GET /a HTTP/1.0""#),
            "missing the status after the request line"
        );
        assert_eq!(
            rejection(r#"1.2.3.4 - - [10/Oct/2000:13:55:36 -0700] "GET /a HTTP/1.0" OK 1"#),
            r#"invalid status "OK" in field 6"#
        );
        assert_eq!(
            rejection(r#"1.2.3.4 - - [10/Oct/2000:13:55:36 -0700] "GET /a HTTP/1.0" 200 1k"#),
            r#"invalid byte count "1k" in field 7"#
        );
        assert_eq!(
            rejection(r#"1.2.3.4 - - [10/Oct/2000:13:55:36 -0700]"#),
            "missing the request line after the [time] field"
        );
    }

    #[test]
    fn rejects_too_many_remote_fields() {
        assert_eq!(
            rejection(r#"a b c d - - [10/Oct/2000:13:55:36 -0700] "GET /a HTTP/1.0" 200 1"#),
            "expected at most a virtual host and an X-Forwarded-For list before the remote address, found 3 fields"
        );
    }

    #[test]
    fn rejects_alb_and_json_lines() {
        let alb = r#"http 2018-07-02T22:23:00.186641Z app/lb/1 1.2.3.4:5 - 0 0 0 200 200 34 366 "GET http://a/ HTTP/1.1" "curl""#;
        assert_eq!(
            rejection(alb),
            "missing the [time] field of the common log format"
        );
        let json = r#"{"requestTime":"10/Jun/2023:15:36:28 +0000","status":"200"}"#;
        assert_eq!(
            rejection(json),
            "missing the [time] field of the common log format"
        );
    }

    #[test]
    fn odd_input_does_not_panic() {
        let samples = [
            "",
            "[",
            "]",
            "\"",
            "[10/Oct/2000:13:55:36 -0700]",
            "a b c [10/Oct/2000:13:55:36 -0700] \"",
            "a, b, - - [10/Oct/2000:13:55:36 -0700] \"x\" 1",
            ", - - [10/Oct/2000:13:55:36 -0700] \"GET / HTTP/1.1\" 200 1",
            "ü ü ü [10/Oct/2000:13:55:36 -0700] \"ü\" 200 ü",
        ];
        for sample in samples {
            let _ = parse_record(sample);
        }
    }
}
