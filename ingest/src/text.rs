//! Byte decoding, percent-decoding and the field helpers shared by the parsers.
//!
//! Access logs split a line on spaces, with two delimited field kinds:
//! `"quoted"` fields that use backslash escapes, and `[bracketed]` fields
//! such as the CLF time. [`Fields`] tokenizes a line that way without
//! allocating. The rest of this module unescapes field text, splits
//! `host:port`, splits request lines and parses the timestamp forms that
//! the formats use, so that every format treats them the same way.

use std::borrow::Cow;
use std::net::{IpAddr, Ipv4Addr};

use crate::event::Event;

const HEX_DIGITS: &[u8; 16] = b"0123456789ABCDEF";

/// Maximum number of characters of a value quoted in a reject reason.
const MAX_QUOTED_CHARS: usize = 64;

const MICROS_PER_SECOND: i64 = 1_000_000;

/// Decodes a line as UTF-8, writing each invalid byte as `%HH` so nothing is lost.
pub fn decode_line(raw: &[u8]) -> Cow<'_, str> {
    match std::str::from_utf8(raw) {
        Ok(text) => Cow::Borrowed(text),
        Err(_) => Cow::Owned(decode_with_percent_escapes(raw)),
    }
}

fn decode_with_percent_escapes(raw: &[u8]) -> String {
    let mut out = String::with_capacity(raw.len() + 8);
    for chunk in raw.utf8_chunks() {
        out.push_str(chunk.valid());
        for &byte in chunk.invalid() {
            push_hex_escape(&mut out, "%", byte);
        }
    }
    out
}

fn push_hex_escape(out: &mut String, prefix: &str, byte: u8) {
    out.push_str(prefix);
    out.push(char::from(HEX_DIGITS[usize::from(byte >> 4)]));
    out.push(char::from(HEX_DIGITS[usize::from(byte & 0x0f)]));
}

/// Returns the offset of the first `needle` in `bytes`.
///
/// It compares eight bytes at a time. Most fields and values it scans are
/// shorter than a few dozen bytes, where this costs less than the setup of
/// `memchr`'s vector search.
pub(crate) fn find_byte(needle: u8, bytes: &[u8]) -> Option<usize> {
    const ONES: u64 = u64::from_ne_bytes([0x01; 8]);
    const HIGH_BITS: u64 = u64::from_ne_bytes([0x80; 8]);
    let pattern = ONES * u64::from(needle);
    let mut words = bytes.chunks_exact(8);
    let mut offset = 0;
    for word in &mut words {
        let word = u64::from_le_bytes(word.try_into().expect("chunks of eight bytes")) ^ pattern;
        // A byte of `word` is zero where `bytes` contains the needle. The lowest
        // flagged byte is always a true zero: borrows only flag bytes above it.
        let zero_bytes = word.wrapping_sub(ONES) & !word & HIGH_BITS;
        if zero_bytes != 0 {
            return Some(offset + (zero_bytes.trailing_zeros() / 8) as usize);
        }
        offset += 8;
    }
    let tail = words.remainder();
    tail.iter()
        .position(|&byte| byte == needle)
        .map(|found| offset + found)
}

/// Percent-decodes a path once; `%2F` and sequences that would not form valid UTF-8 stay encoded.
///
/// Malformed escapes such as `%zz` or a trailing `%` are kept as they are.
pub fn percent_decode_path(path: &str) -> String {
    let bytes = path.as_bytes();
    let mut out = String::with_capacity(path.len());
    let mut copied_up_to = 0;
    let mut search_from = 0;

    while let Some(found) = memchr::memchr(b'%', &bytes[search_from..]) {
        let run_start = search_from + found;
        let run_end = escape_run_end(bytes, run_start);
        if run_end == run_start {
            search_from = run_start + 1;
            continue;
        }
        out.push_str(&path[copied_up_to..run_start]);
        push_decoded_run(&mut out, &path[run_start..run_end], 3, |escape| {
            percent_escaped_byte(escape, 0)
        });
        copied_up_to = run_end;
        search_from = run_end;
    }
    out.push_str(&path[copied_up_to..]);
    out
}

/// End of the run of decodable `%HH` escapes that starts at `start`, or `start` when there is none.
/// An encoded slash ends the run because it stays encoded.
fn escape_run_end(bytes: &[u8], start: usize) -> usize {
    let mut end = start;
    while let Some(byte) = percent_escaped_byte(bytes, end) {
        if byte == b'/' {
            break;
        }
        end += 3;
    }
    end
}

fn percent_escaped_byte(bytes: &[u8], at: usize) -> Option<u8> {
    if bytes.get(at) != Some(&b'%') {
        return None;
    }
    let high = hex_value(*bytes.get(at + 1)?)?;
    let low = hex_value(*bytes.get(at + 2)?)?;
    Some(high << 4 | low)
}

fn hex_value(byte: u8) -> Option<u8> {
    match byte {
        b'0'..=b'9' => Some(byte - b'0'),
        b'a'..=b'f' => Some(byte - b'a' + 10),
        b'A'..=b'F' => Some(byte - b'A' + 10),
        _ => None,
    }
}

/// Appends a run of escapes of `escape_length` characters each, decoded, keeping
/// the escapes of bytes that do not form valid UTF-8 as they are.
fn push_decoded_run(
    out: &mut String,
    run: &str,
    escape_length: usize,
    decode: impl Fn(&[u8]) -> Option<u8>,
) {
    let decoded: Vec<u8> = run
        .as_bytes()
        .chunks_exact(escape_length)
        .filter_map(decode)
        .collect();
    let mut decoded_length = 0;
    for chunk in decoded.utf8_chunks() {
        out.push_str(chunk.valid());
        decoded_length += chunk.valid().len();
        let invalid_length = chunk.invalid().len();
        out.push_str(
            &run[decoded_length * escape_length..(decoded_length + invalid_length) * escape_length],
        );
        decoded_length += invalid_length;
    }
}

/// Returns `None` for the `-` that access logs write for an unknown value.
pub(crate) fn dash_as_none(value: &str) -> Option<&str> {
    if value == "-" { None } else { Some(value) }
}

/// Quotes a value for a reject reason, shortened to [`MAX_QUOTED_CHARS`] characters.
pub(crate) fn quote_excerpt(value: &str) -> String {
    match value.char_indices().nth(MAX_QUOTED_CHARS) {
        Some((cut, _)) => format!("{:?}...", &value[..cut]),
        None => format!("{value:?}"),
    }
}

/// Delimiter kind of a field: bare, quoted or bracketed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Delimiter {
    Bare,
    Quoted,
    Bracketed,
}

/// One field of a space-separated line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Field<'a> {
    /// Field text without its quotes or brackets, with escapes still in place.
    pub text: &'a str,
    pub delimiter: Delimiter,
    /// Byte offset of the field in the line, including an opening quote or bracket.
    pub start: usize,
    /// Byte offset just past the field, including a closing quote or bracket.
    pub end: usize,
    /// False for a quoted field that the end of the line cut before its closing quote.
    pub closed: bool,
}

/// Iterator over the fields of a line.
///
/// Runs of spaces separate fields. A field that starts with `"` ends at the next
/// `"` that is not escaped by a backslash, even when no space follows, so
/// `"-"1` is two fields. A field that starts with `[` ends at the first `]`
/// when a space or the end of the line follows it, and is a bare field otherwise.
#[derive(Debug, Clone)]
pub(crate) struct Fields<'a> {
    line: &'a str,
    position: usize,
}

impl<'a> Fields<'a> {
    pub(crate) fn new(line: &'a str) -> Self {
        Fields { line, position: 0 }
    }

    fn quoted(&self, start: usize) -> Field<'a> {
        let bytes = self.line.as_bytes();
        let mut at = start + 1;
        while let Some(found) = memchr::memchr2(b'"', b'\\', &bytes[at.min(bytes.len())..]) {
            let index = at + found;
            if bytes[index] == b'\\' {
                at = index + 2;
                continue;
            }
            return Field {
                text: &self.line[start + 1..index],
                delimiter: Delimiter::Quoted,
                start,
                end: index + 1,
                closed: true,
            };
        }
        Field {
            text: &self.line[start + 1..],
            delimiter: Delimiter::Quoted,
            start,
            end: bytes.len(),
            closed: false,
        }
    }

    fn bracketed(&self, start: usize) -> Option<Field<'a>> {
        let bytes = self.line.as_bytes();
        let index = start + 1 + memchr::memchr(b']', &bytes[start + 1..])?;
        if !matches!(bytes.get(index + 1), None | Some(b' ')) {
            return None;
        }
        Some(Field {
            text: &self.line[start + 1..index],
            delimiter: Delimiter::Bracketed,
            start,
            end: index + 1,
            closed: true,
        })
    }

    fn bare(&self, start: usize) -> Field<'a> {
        let bytes = self.line.as_bytes();
        let end = find_byte(b' ', &bytes[start..]).map_or(bytes.len(), |found| start + found);
        Field {
            text: &self.line[start..end],
            delimiter: Delimiter::Bare,
            start,
            end,
            closed: true,
        }
    }
}

impl<'a> Iterator for Fields<'a> {
    type Item = Field<'a>;

    fn next(&mut self) -> Option<Field<'a>> {
        let bytes = self.line.as_bytes();
        while bytes.get(self.position) == Some(&b' ') {
            self.position += 1;
        }
        let start = self.position;
        let field = match bytes.get(start)? {
            b'"' => self.quoted(start),
            b'[' => self.bracketed(start).unwrap_or_else(|| self.bare(start)),
            _ => self.bare(start),
        };
        self.position = field.end;
        Some(field)
    }
}

/// Unescapes quoted field text as Apache and nginx write it.
///
/// `\"`, `\\`, and `\xHH` escapes of printable ASCII or of UTF-8 sequences are
/// decoded. Escapes of control characters, unknown escapes and `\xHH` runs that
/// do not form valid UTF-8 stay as logged, so nothing is lost.
pub(crate) fn unescape_text(raw: &str) -> Cow<'_, str> {
    if find_byte(b'\\', raw.as_bytes()).is_none() {
        return Cow::Borrowed(raw);
    }
    let bytes = raw.as_bytes();
    let mut out = String::with_capacity(raw.len());
    let mut copied_up_to = 0;
    let mut search_from = 0;

    while let Some(found) = memchr::memchr(b'\\', &bytes[search_from..]) {
        let start = search_from + found;
        let Some((byte, length)) = escape_at_start(&bytes[start..]) else {
            search_from = start + 1;
            continue;
        };
        if byte.is_ascii_control() {
            search_from = start + length;
            continue;
        }
        out.push_str(&raw[copied_up_to..start]);
        let end = if byte.is_ascii() {
            out.push(char::from(byte));
            start + length
        } else {
            let end = high_byte_run_end(bytes, start);
            push_decoded_run(&mut out, &raw[start..end], 4, |escape| {
                escape_at_start(escape).map(|(byte, _)| byte)
            });
            end
        };
        copied_up_to = end;
        search_from = end;
    }
    out.push_str(&raw[copied_up_to..]);
    Cow::Owned(out)
}

/// End of the run of `\xHH` escapes of bytes 0x80 to 0xFF that starts at `start`.
fn high_byte_run_end(bytes: &[u8], start: usize) -> usize {
    let mut end = start;
    while let Some((byte, 4)) = escape_at_start(&bytes[end..]) {
        if byte.is_ascii() {
            break;
        }
        end += 4;
    }
    end
}

/// Unescapes a logged request target: `\xHH`, `\n`, `\r` and `\t` become `%HH`,
/// `\"` and `\\` become the character.
pub(crate) fn unescape_uri(raw: &str) -> Cow<'_, str> {
    if find_byte(b'\\', raw.as_bytes()).is_none() {
        return Cow::Borrowed(raw);
    }
    let bytes = raw.as_bytes();
    let mut out = String::with_capacity(raw.len() + 8);
    let mut copied_up_to = 0;
    let mut search_from = 0;

    while let Some(found) = memchr::memchr(b'\\', &bytes[search_from..]) {
        let start = search_from + found;
        let Some((byte, length)) = escape_at_start(&bytes[start..]) else {
            search_from = start + 1;
            continue;
        };
        out.push_str(&raw[copied_up_to..start]);
        match byte {
            b'"' | b'\\' => out.push(char::from(byte)),
            _ => push_hex_escape(&mut out, "%", byte),
        }
        copied_up_to = start + length;
        search_from = copied_up_to;
    }
    out.push_str(&raw[copied_up_to..]);
    Cow::Owned(out)
}

/// Decodes the escape at the start of `bytes` into its byte and the escape's length.
fn escape_at_start(bytes: &[u8]) -> Option<(u8, usize)> {
    match *bytes.get(1)? {
        b'"' => Some((b'"', 2)),
        b'\\' => Some((b'\\', 2)),
        b'n' => Some((b'\n', 2)),
        b'r' => Some((b'\r', 2)),
        b't' => Some((b'\t', 2)),
        b'x' => {
            let high = hex_value(*bytes.get(2)?)?;
            let low = hex_value(*bytes.get(3)?)?;
            Some((high << 4 | low, 4))
        }
        _ => None,
    }
}

/// Splits `host:port` on the last colon, also accepting `[v6]:port`, `[v6]` and a bare IPv6 address.
///
/// The port is returned only when it is a number from 0 to 65535. A bare IPv6
/// address has no port unless what precedes its last colon is itself a valid
/// IPv6 address, so `2001:db8::1:443` splits into `2001:db8::1` and 443.
pub(crate) fn split_host_port(text: &str) -> (&str, Option<u16>) {
    if let Some(bracketed) = text.strip_prefix('[') {
        return split_bracketed_host(text, bracketed);
    }
    let Some(colon) = text.bytes().rposition(|byte| byte == b':') else {
        return (text, None);
    };
    let (host, port) = (&text[..colon], &text[colon + 1..]);
    let Some(port) = parse_port(port) else {
        return (text, None);
    };
    if !host.contains(':') || host.parse::<std::net::Ipv6Addr>().is_ok() {
        (host, Some(port))
    } else {
        (text, None)
    }
}

fn split_bracketed_host<'a>(text: &'a str, after_bracket: &'a str) -> (&'a str, Option<u16>) {
    let Some((host, rest)) = after_bracket.split_once(']') else {
        return (text, None);
    };
    if rest.is_empty() {
        return (host, None);
    }
    match rest.strip_prefix(':').and_then(parse_port) {
        Some(port) => (host, Some(port)),
        None => (text, None),
    }
}

fn parse_port(text: &str) -> Option<u16> {
    if text.is_empty() || text.len() > 5 || !text.bytes().all(|byte| byte.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

/// Returns an IP address in its normalised text form, or `None` if `text` is not one.
pub(crate) fn normalise_ip(text: &str) -> Option<String> {
    // The IPv4 parser accepts only the dotted-decimal form without leading
    // zeros, which is already the normalised form, so the text is copied
    // instead of formatted again: most logged addresses are IPv4.
    if text.parse::<Ipv4Addr>().is_ok() {
        return Some(text.to_string());
    }
    text.parse::<IpAddr>().ok().map(|ip| ip.to_string())
}

/// Fills the client from an address logged without a port, such as CLF's remote host.
///
/// An IP address goes to `client_ip`. Otherwise `ip:port` forms are tried, and a
/// host name goes to attribute `remote_host`.
pub(crate) fn set_client_address(event: &mut Event, address: &str) {
    let Some(address) = dash_as_none(address).filter(|text| !text.is_empty()) else {
        return;
    };
    match normalise_ip(address) {
        Some(ip) => event.client_ip = Some(ip),
        None => set_client_endpoint(event, address),
    }
}

/// Fills the client from an `ip:port` field, such as ALB's `client:port`.
///
/// The field is split on its last colon first. A host name goes to attribute `remote_host`.
pub(crate) fn set_client_endpoint(event: &mut Event, endpoint: &str) {
    let Some(endpoint) = dash_as_none(endpoint).filter(|text| !text.is_empty()) else {
        return;
    };
    let (host, port) = split_host_port(endpoint);
    if let Some(ip) = normalise_ip(host) {
        event.client_ip = Some(ip);
        event.client_port = port.map(i32::from);
    } else if let Some(ip) = normalise_ip(endpoint) {
        event.client_ip = Some(ip);
    } else {
        event
            .attributes
            .push(("remote_host".to_string(), endpoint.to_string()));
    }
}

/// The three parts of a well-formed HTTP request line, as logged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RequestLine<'a> {
    pub method: &'a str,
    /// Request target with log escapes still in place. It may contain spaces.
    pub target: &'a str,
    pub version: Option<&'a str>,
}

/// Splits `METHOD target HTTP/x.y` into its parts, or returns `None` for text that is no request line.
///
/// The method is the first space-separated token and must be an HTTP token
/// starting with a letter. The version is the last token when it looks like
/// `HTTP/x[.y]`. The target is everything in between, spaces included, and
/// must not be empty.
pub(crate) fn split_request_line(raw: &str) -> Option<RequestLine<'_>> {
    // The method and the version are a few bytes at either end, so plain
    // byte loops find their spaces faster than a `memchr` call would.
    let method_end = raw.bytes().position(|byte| byte == b' ')?;
    let method = &raw[..method_end];
    if !is_method(method) {
        return None;
    }
    let rest = raw[method_end + 1..].trim_matches(' ');
    let last_space = rest.bytes().rposition(|byte| byte == b' ');
    let (target, version) = match last_space.map(|at| (&rest[..at], &rest[at + 1..])) {
        Some((target, last)) if is_http_version(last) => (target.trim_end_matches(' '), Some(last)),
        _ if is_http_version(rest) => return None,
        _ => (rest, None),
    };
    if target.is_empty() {
        return None;
    }
    Some(RequestLine {
        method,
        target,
        version,
    })
}

fn is_method(token: &str) -> bool {
    let bytes = token.as_bytes();
    !bytes.is_empty() && bytes[0].is_ascii_alphabetic() && bytes.iter().all(|&b| is_token_byte(b))
}

/// Returns whether `byte` may appear in an HTTP token (RFC 9110, section 5.6.2).
fn is_token_byte(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&byte)
}

/// Returns whether `token` has the form `HTTP/x` or `HTTP/x.y` with digits x and y.
fn is_http_version(token: &str) -> bool {
    let Some(number) = token.strip_prefix("HTTP/") else {
        return false;
    };
    let (major, minor) = number.split_once('.').unwrap_or((number, "0"));
    let is_digits = |part: &str| !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit());
    is_digits(major) && is_digits(minor)
}

/// A request target split into URL parts, borrowed from the unescaped target.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Target<'a> {
    pub scheme: Option<&'a str>,
    pub host: Option<&'a str>,
    pub port: Option<u16>,
    pub path: Option<&'a str>,
    pub query: Option<&'a str>,
}

/// Splits a request target in origin form (`/p?q`), absolute form
/// (`https://host:443/p?q`), asterisk form (`*`) or, for CONNECT, authority
/// form (`host:443`). Returns `None` for anything else.
///
/// The userinfo of an absolute URI is dropped because it may carry a password.
pub(crate) fn split_target<'a>(method: &str, target: &'a str) -> Option<Target<'a>> {
    if target == "*" {
        return Some(Target {
            path: Some("*"),
            ..Target::default()
        });
    }
    if target.starts_with('/') {
        let (path, query) = split_query(target);
        return Some(Target {
            path: Some(path),
            query,
            ..Target::default()
        });
    }
    if let Some(colon) = find_scheme_separator(target.as_bytes()) {
        return split_absolute_target(&target[..colon], &target[colon + 3..]);
    }
    if method.eq_ignore_ascii_case("CONNECT") {
        return split_authority(target).map(|(host, port)| Target {
            host: Some(host),
            port,
            ..Target::default()
        });
    }
    None
}

/// Returns where the first `://` in `target` starts.
fn find_scheme_separator(target: &[u8]) -> Option<usize> {
    let mut from = 0;
    while let Some(found) = find_byte(b':', &target[from..]) {
        let colon = from + found;
        if target[colon + 1..].starts_with(b"//") {
            return Some(colon);
        }
        from = colon + 1;
    }
    None
}

fn split_query(target: &str) -> (&str, Option<&str>) {
    match target.split_once('?') {
        Some((path, query)) => (path, Some(query)),
        None => (target, None),
    }
}

fn split_absolute_target<'a>(scheme: &'a str, rest: &'a str) -> Option<Target<'a>> {
    if !is_scheme(scheme) {
        return None;
    }
    let authority_end = rest
        .bytes()
        .position(|byte| matches!(byte, b'/' | b'?' | b'#'))
        .unwrap_or(rest.len());
    let (host, port) = split_authority(&rest[..authority_end])?;
    let after_authority = &rest[authority_end..];
    let (path, query) = match after_authority.strip_prefix('?') {
        Some(query) => ("/", Some(query)),
        None if after_authority.is_empty() => ("/", None),
        None => split_query(after_authority),
    };
    Some(Target {
        scheme: Some(scheme),
        host: Some(host),
        port,
        path: Some(path),
        query,
    })
}

/// Returns whether `text` is a URI scheme (RFC 3986, section 3.1).
fn is_scheme(text: &str) -> bool {
    let bytes = text.as_bytes();
    !bytes.is_empty()
        && bytes[0].is_ascii_alphabetic()
        && bytes
            .iter()
            .all(|&b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'))
}

/// Splits `[userinfo@]host[:port]` into the host and port, or returns `None`
/// if the host is empty or the port invalid.
fn split_authority(authority: &str) -> Option<(&str, Option<u16>)> {
    let host_port = authority
        .rsplit_once('@')
        .map_or(authority, |(_, host)| host);
    let (host, port) = if let Some(bracketed) = host_port.strip_prefix('[') {
        let (host, rest) = bracketed.split_once(']')?;
        match rest {
            "" => (host, None),
            _ => (host, Some(parse_port(rest.strip_prefix(':')?)?)),
        }
    } else {
        match host_port.rsplit_once(':') {
            Some((host, port)) => (host, Some(parse_port(port)?)),
            None => (host_port, None),
        }
    };
    if host.is_empty() || host.contains(' ') {
        return None;
    }
    Some((host, port))
}

/// Fills method, version, scheme, host, path and query from a logged request line.
///
/// A request of only `*`, as some loggers write for `OPTIONS *`, gives path `*`.
/// Text that is no request line, or whose target has no known form, sets
/// `malformed` and goes to attribute `request` as logged (unescaped). A target
/// that contains spaces is split as well but also sets `malformed`. The host
/// and port of an absolute URI replace a host set before, and the port goes
/// to attribute `port`.
pub(crate) fn set_request(event: &mut Event, raw: &str) {
    if raw == "*" {
        event.path = Some("*".to_string());
        return;
    }
    let Some(line) = split_request_line(raw) else {
        set_malformed_request(event, raw);
        return;
    };
    let target = unescape_uri(line.target);
    let Some(parts) = split_target(line.method, &target) else {
        set_malformed_request(event, raw);
        return;
    };

    event.method = Some(line.method.to_string());
    event.http_version = line.version.map(str::to_string);
    if let Some(scheme) = parts.scheme {
        event.scheme = Some(scheme.to_string());
    }
    if let Some(host) = parts.host {
        event.host = Some(host.to_string());
    }
    event.path = parts.path.map(str::to_string);
    event.query = parts.query.map(str::to_string);
    if let Some(port) = parts.port {
        event
            .attributes
            .push(("port".to_string(), port.to_string()));
    }
    if line.target.contains(' ') {
        event.malformed = true;
    }
}

fn set_malformed_request(event: &mut Event, raw: &str) {
    event.malformed = true;
    event
        .attributes
        .push(("request".to_string(), unescape_text(raw).into_owned()));
}

/// Parses a CLF time such as `10/Oct/2000:13:55:36 -0700` into microseconds since the epoch, UTC.
///
/// Fractional seconds (`13:55:36.123`) are accepted. Without an offset the time is taken as UTC.
pub(crate) fn parse_clf_time(text: &str) -> Option<i64> {
    let mut cursor = Cursor::new(text);
    let day = cursor.digits(2)?;
    cursor.expect(b'/')?;
    let month = cursor.month_name()?;
    cursor.expect(b'/')?;
    let year = cursor.digits(4)?;
    cursor.expect(b':')?;
    let (hour, minute, second) = cursor.clock()?;
    let micros = cursor.fraction_micros();
    let offset = if cursor.at_end() {
        0
    } else {
        cursor.expect(b' ')?;
        cursor.utc_offset_seconds()?
    };
    if !cursor.at_end() {
        return None;
    }
    utc_micros(year, month, day, (hour, minute, second, micros), offset)
}

/// Parses an ISO 8601 timestamp such as `2018-07-02T22:23:00.186641Z` into
/// microseconds since the epoch, UTC.
///
/// The offset may be `Z`, `±HH:MM`, `±HHMM` or `±HH`. Without one the time is
/// taken as UTC, as NLB and ALB connection logs write it. Digits beyond
/// microseconds are truncated.
pub(crate) fn parse_iso8601(text: &str) -> Option<i64> {
    let mut cursor = Cursor::new(text);
    let year = cursor.digits(4)?;
    cursor.expect(b'-')?;
    let month = cursor.digits(2)?;
    cursor.expect(b'-')?;
    let day = cursor.digits(2)?;
    match cursor.next_byte()? {
        b'T' | b't' | b' ' => {}
        _ => return None,
    }
    let (hour, minute, second) = cursor.clock()?;
    let micros = cursor.fraction_micros();
    let offset = match cursor.peek() {
        None => 0,
        Some(b'Z' | b'z') => {
            cursor.next_byte();
            0
        }
        Some(_) => cursor.utc_offset_seconds()?,
    };
    if !cursor.at_end() {
        return None;
    }
    utc_micros(year, month, day, (hour, minute, second, micros), offset)
}

/// Converts a local date and time with its UTC offset to microseconds since the epoch.
///
/// A leap second (second 60, as in `23:59:60`) becomes the last microsecond of
/// the second before it, so the event keeps its minute and day and sorts
/// before the next minute. Returns `None` for a date or time that does not
/// exist, such as February 30 or hour 24.
///
/// The arithmetic replaces `chrono`'s date types, which cost a noticeable
/// share of parsing a log line; the tests compare both.
fn utc_micros(
    year: u32,
    month: u32,
    day: u32,
    (hour, minute, second, micros): (u32, u32, u32, u32),
    offset_seconds: i64,
) -> Option<i64> {
    let (second, micros) = if second == 60 {
        (59, 999_999)
    } else {
        (second, micros)
    };
    let valid = (1..=12).contains(&month)
        && day >= 1
        && day <= days_in_month(year, month)
        && hour < 24
        && minute < 60
        && second < 60
        && micros < 1_000_000;
    if !valid {
        return None;
    }
    let days = days_from_civil(i64::from(year), month, day);
    let seconds = days * 86_400 + i64::from(hour * 3600 + minute * 60 + second);
    Some((seconds - offset_seconds) * MICROS_PER_SECOND + i64::from(micros))
}

fn days_in_month(year: u32, month: u32) -> u32 {
    match month {
        2 if year.is_multiple_of(4) && (!year.is_multiple_of(100) || year.is_multiple_of(400)) => {
            29
        }
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days from 1970-01-01 to a date of the proleptic Gregorian calendar.
///
/// The year is shifted to start in March, so the leap day is the last day of
/// a year, and counted in 400-year eras of 146,097 days each.
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let month_from_march = i64::from((month + 9) % 12);
    let day_of_year = (153 * month_from_march + 2) / 5 + i64::from(day) - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// Parses a non-negative decimal number of seconds, such as `0.086`, into microseconds.
///
/// Digits beyond microseconds are truncated. Returns `None` for anything else, `-1` included.
pub(crate) fn parse_seconds_as_micros(text: &str) -> Option<i64> {
    let (whole, fraction) = match text.bytes().position(|byte| byte == b'.') {
        Some(dot) => (&text[..dot], &text[dot + 1..]),
        None => (text, ""),
    };
    if whole.is_empty() || whole.len() > 12 || !whole.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    if !fraction.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let mut micros: i64 = whole.parse().ok()?;
    let mut scale = 100_000;
    micros *= MICROS_PER_SECOND;
    for digit in fraction.bytes().take(6) {
        micros += i64::from(digit - b'0') * scale;
        scale /= 10;
    }
    Some(micros)
}

/// A byte cursor over a timestamp.
struct Cursor<'a> {
    bytes: &'a [u8],
    position: usize,
}

impl<'a> Cursor<'a> {
    fn new(text: &'a str) -> Self {
        Cursor {
            bytes: text.as_bytes(),
            position: 0,
        }
    }

    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.position).copied()
    }

    fn next_byte(&mut self) -> Option<u8> {
        let byte = self.peek()?;
        self.position += 1;
        Some(byte)
    }

    fn at_end(&self) -> bool {
        self.position >= self.bytes.len()
    }

    fn expect(&mut self, expected: u8) -> Option<()> {
        (self.next_byte()? == expected).then_some(())
    }

    /// Reads exactly `count` ASCII digits as a number.
    fn digits(&mut self, count: usize) -> Option<u32> {
        let mut value = 0;
        for _ in 0..count {
            let byte = self.next_byte()?;
            if !byte.is_ascii_digit() {
                return None;
            }
            value = value * 10 + u32::from(byte - b'0');
        }
        Some(value)
    }

    /// Reads `HH:MM:SS`.
    fn clock(&mut self) -> Option<(u32, u32, u32)> {
        let hour = self.digits(2)?;
        self.expect(b':')?;
        let minute = self.digits(2)?;
        self.expect(b':')?;
        let second = self.digits(2)?;
        Some((hour, minute, second))
    }

    /// Reads an optional `.fraction` of a second as microseconds, truncating extra digits.
    fn fraction_micros(&mut self) -> u32 {
        if !matches!(self.peek(), Some(b'.' | b',')) {
            return 0;
        }
        let mut lookahead = self.position + 1;
        let mut micros = 0;
        let mut scale = 100_000;
        while let Some(&byte) = self.bytes.get(lookahead).filter(|b| b.is_ascii_digit()) {
            micros += u32::from(byte - b'0') * scale;
            scale /= 10;
            lookahead += 1;
        }
        if lookahead > self.position + 1 {
            self.position = lookahead;
        }
        micros
    }

    /// Reads an English three-letter month abbreviation, in any letter case, as 1 to 12.
    fn month_name(&mut self) -> Option<u32> {
        const MONTHS: [&[u8; 3]; 12] = [
            b"jan", b"feb", b"mar", b"apr", b"may", b"jun", b"jul", b"aug", b"sep", b"oct", b"nov",
            b"dec",
        ];
        let name = self.bytes.get(self.position..self.position + 3)?;
        let index = MONTHS
            .iter()
            .position(|month| name.eq_ignore_ascii_case(&month[..]))?;
        self.position += 3;
        u32::try_from(index + 1).ok()
    }

    /// Reads `±HHMM`, `±HH:MM` or `±HH` as seconds east of UTC.
    fn utc_offset_seconds(&mut self) -> Option<i64> {
        let sign = match self.next_byte()? {
            b'+' => 1,
            b'-' => -1,
            _ => return None,
        };
        let hours = self.digits(2)?;
        let minutes = match self.peek() {
            None => 0,
            Some(b':') => {
                self.position += 1;
                self.digits(2)?
            }
            Some(_) => self.digits(2)?,
        };
        if hours > 23 || minutes > 59 {
            return None;
        }
        Some(sign * i64::from(hours * 3600 + minutes * 60))
    }
}

/// Writes microseconds since the epoch as RFC 3339 UTC text, with a fraction only when it is not zero.
pub(crate) fn format_time_micros(micros: i64) -> String {
    match chrono::DateTime::from_timestamp_micros(micros) {
        Some(time) => time.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true),
        None => format!("{micros} microseconds since the epoch"),
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use chrono::NaiveDate;

    use super::*;

    fn fields(line: &str) -> Vec<(&str, Delimiter)> {
        Fields::new(line)
            .map(|field| (field.text, field.delimiter))
            .collect()
    }

    #[test]
    fn decode_line_borrows_valid_utf8() {
        let decoded = decode_line("GET /ünïcode".as_bytes());
        assert!(matches!(decoded, Cow::Borrowed(_)));
        assert_eq!(decoded, "GET /ünïcode");
    }

    #[test]
    fn decode_line_escapes_invalid_bytes() {
        assert_eq!(decode_line(b"a\xffb\xe4\xb8"), "a%FFb%E4%B8");
        assert_eq!(decode_line(b"\x80"), "%80");
        assert_eq!(decode_line("é\u{0}".as_bytes()), "é\u{0}");
    }

    #[test]
    fn percent_decode_path_decodes_once() {
        assert_eq!(percent_decode_path("/a%20b"), "/a b");
        assert_eq!(percent_decode_path("/%2541"), "/%41");
        assert_eq!(percent_decode_path("/%D9%85%DA%AF"), "/مگ");
        assert_eq!(percent_decode_path("/plain"), "/plain");
    }

    #[test]
    fn percent_decode_path_keeps_encoded_slash() {
        assert_eq!(percent_decode_path("/a%2Fb%2fc"), "/a%2Fb%2fc");
        assert_eq!(percent_decode_path("/%C3%2F%A9"), "/%C3%2F%A9");
    }

    #[test]
    fn percent_decode_path_keeps_invalid_utf8() {
        assert_eq!(percent_decode_path("/%ff%41"), "/%ffA");
        assert_eq!(percent_decode_path("/%C3%A9%E4"), "/é%E4");
        assert_eq!(percent_decode_path("/%e4%e5x"), "/%e4%e5x");
    }

    #[test]
    fn percent_decode_path_keeps_malformed_escapes() {
        assert_eq!(percent_decode_path("/100%"), "/100%");
        assert_eq!(percent_decode_path("/%zz%4"), "/%zz%4");
        assert_eq!(percent_decode_path("/ü%%41"), "/ü%A");
    }

    #[test]
    fn fields_split_bare_quoted_bracketed() {
        let line = r#"1.2.3.4 - - [10/Oct/2000:13:55:36 -0700] "GET / HTTP/1.0" 200 -"#;
        assert_eq!(
            fields(line),
            vec![
                ("1.2.3.4", Delimiter::Bare),
                ("-", Delimiter::Bare),
                ("-", Delimiter::Bare),
                ("10/Oct/2000:13:55:36 -0700", Delimiter::Bracketed),
                ("GET / HTTP/1.0", Delimiter::Quoted),
                ("200", Delimiter::Bare),
                ("-", Delimiter::Bare),
            ]
        );
    }

    #[test]
    fn fields_keep_escaped_quotes() {
        let line = r#""a \"b\" c" "d\\" e"#;
        assert_eq!(
            fields(line),
            vec![
                (r#"a \"b\" c"#, Delimiter::Quoted),
                (r"d\\", Delimiter::Quoted),
                ("e", Delimiter::Bare),
            ]
        );
    }

    #[test]
    fn fields_end_quote_without_space() {
        assert_eq!(
            fields(r#""-" "-"1 x"#),
            vec![
                ("-", Delimiter::Quoted),
                ("-", Delimiter::Quoted),
                ("1", Delimiter::Bare),
                ("x", Delimiter::Bare),
            ]
        );
    }

    #[test]
    fn fields_unterminated_quote_takes_rest() {
        let all: Vec<Field<'_>> = Fields::new(r#"200 "Mozilla/5.0 (bot"#).collect();
        assert_eq!(all.len(), 2);
        assert_eq!(all[1].text, "Mozilla/5.0 (bot");
        assert!(!all[1].closed);
        assert_eq!(
            fields(r#"a "x\"#),
            vec![("a", Delimiter::Bare), (r"x\", Delimiter::Quoted)]
        );
    }

    #[test]
    fn fields_bracket_needs_space_after() {
        assert_eq!(
            fields("[2001:db8::1]:443 [x y] z"),
            vec![
                ("[2001:db8::1]:443", Delimiter::Bare),
                ("x y", Delimiter::Bracketed),
                ("z", Delimiter::Bare),
            ]
        );
        assert_eq!(
            fields("[a b"),
            vec![("[a", Delimiter::Bare), ("b", Delimiter::Bare)]
        );
    }

    #[test]
    fn fields_skip_space_runs() {
        assert_eq!(
            fields("  a   b "),
            vec![("a", Delimiter::Bare), ("b", Delimiter::Bare)]
        );
        assert!(fields("").is_empty());
        assert!(fields("   ").is_empty());
    }

    #[test]
    fn fields_record_offsets() {
        let all: Vec<Field<'_>> = Fields::new(r#"ab "c d" [e]"#).collect();
        assert_eq!((all[0].start, all[0].end), (0, 2));
        assert_eq!((all[1].start, all[1].end), (3, 8));
        assert_eq!((all[2].start, all[2].end), (9, 12));
    }

    #[test]
    fn unescape_text_decodes_escapes() {
        assert_eq!(unescape_text(r#"a \"b\" \\ c"#), r#"a "b" \ c"#);
        assert_eq!(unescape_text(r"\x22bot\x22\x09x"), r#""bot"\x09x"#);
        assert_eq!(unescape_text(r"a\nb"), r"a\nb");
        assert_eq!(unescape_text(r"\xD8\xB3"), "س");
        assert_eq!(unescape_text(r"a\qb\x4"), r"a\qb\x4");
        assert!(matches!(unescape_text("plain"), Cow::Borrowed("plain")));
    }

    #[test]
    fn unescape_text_keeps_invalid_utf8_escaped() {
        assert_eq!(
            unescape_text(r"http://\xe4\xe5-\xc3\xa9/"),
            r"http://\xe4\xe5-é/"
        );
        assert_eq!(unescape_text(r"\xc3\xa9\xff"), r"é\xff");
        assert_eq!(unescape_text("\\"), "\\");
        assert_eq!(unescape_text("ü\\ü"), "ü\\ü");
    }

    #[test]
    fn unescape_uri_writes_percent_escapes() {
        assert_eq!(unescape_uri(r"/a?n=\xD8\xB3-x"), "/a?n=%D8%B3-x");
        assert_eq!(unescape_uri(r#"/a\"b\\c"#), r#"/a"b\c"#);
        assert_eq!(unescape_uri(r"/\n\t"), "/%0A%09");
        assert_eq!(unescape_uri(r"/\q"), r"/\q");
    }

    #[test]
    fn split_host_port_ipv4_and_names() {
        assert_eq!(split_host_port("10.0.0.1:80"), ("10.0.0.1", Some(80)));
        assert_eq!(split_host_port("10.0.0.1"), ("10.0.0.1", None));
        assert_eq!(
            split_host_port("example.com:8443"),
            ("example.com", Some(8443))
        );
        assert_eq!(
            split_host_port("example.com:80-"),
            ("example.com:80-", None)
        );
        assert_eq!(
            split_host_port("example.com:99999"),
            ("example.com:99999", None)
        );
        assert_eq!(split_host_port("-"), ("-", None));
    }

    #[test]
    fn split_host_port_ipv6() {
        assert_eq!(
            split_host_port("2001:db8::1:443"),
            ("2001:db8::1", Some(443))
        );
        assert_eq!(
            split_host_port("[2001:db8::1]:443"),
            ("2001:db8::1", Some(443))
        );
        assert_eq!(split_host_port("[2001:db8::1]"), ("2001:db8::1", None));
        assert_eq!(split_host_port("::1"), ("::1", None));
        assert_eq!(split_host_port("fe80::1"), ("fe80::1", None));
        assert_eq!(
            split_host_port("2a03:0000:10ff:f00f:0000:0000:0:8000"),
            ("2a03:0000:10ff:f00f:0000:0000:0:8000", None)
        );
        assert_eq!(split_host_port("[::1]x"), ("[::1]x", None));
    }

    #[test]
    fn client_endpoint_splits_last_colon() {
        let mut event = Event::default();
        set_client_endpoint(&mut event, "2001:db8::1:443");
        assert_eq!(event.client_ip.as_deref(), Some("2001:db8::1"));
        assert_eq!(event.client_port, Some(443));

        let mut event = Event::default();
        set_client_endpoint(&mut event, "[2001:0db8:0:0::1]:8080");
        assert_eq!(event.client_ip.as_deref(), Some("2001:db8::1"));
        assert_eq!(event.client_port, Some(8080));

        let mut event = Event::default();
        set_client_endpoint(&mut event, "::1");
        assert_eq!(event.client_ip.as_deref(), Some("::1"));
        assert_eq!(event.client_port, None);
    }

    #[test]
    fn client_address_keeps_bare_ipv6() {
        let mut event = Event::default();
        set_client_address(&mut event, "2001:db8::a:1");
        assert_eq!(event.client_ip.as_deref(), Some("2001:db8::a:1"));
        assert_eq!(event.client_port, None);

        let mut event = Event::default();
        set_client_address(&mut event, "2a03:0000:10ff:f00f:0000:0000:0:8000");
        assert_eq!(event.client_ip.as_deref(), Some("2a03:0:10ff:f00f::8000"));
    }

    #[test]
    fn client_host_name_goes_to_attribute() {
        let mut event = Event::default();
        set_client_address(&mut event, "monitoring-server");
        assert_eq!(event.client_ip, None);
        assert_eq!(
            event.attributes,
            vec![("remote_host".to_string(), "monitoring-server".to_string())]
        );

        let mut event = Event::default();
        set_client_address(&mut event, "-");
        assert_eq!(event, Event::default());
    }

    #[test]
    fn request_line_basic_forms() {
        assert_eq!(
            split_request_line("GET /a?b=1 HTTP/1.1"),
            Some(RequestLine {
                method: "GET",
                target: "/a?b=1",
                version: Some("HTTP/1.1")
            })
        );
        assert_eq!(
            split_request_line("GET /a"),
            Some(RequestLine {
                method: "GET",
                target: "/a",
                version: None
            })
        );
        assert_eq!(
            split_request_line("PRI * HTTP/2"),
            Some(RequestLine {
                method: "PRI",
                target: "*",
                version: Some("HTTP/2")
            })
        );
    }

    #[test]
    fn request_line_spaces_in_target() {
        assert_eq!(
            split_request_line("GET /a b c HTTP/1.1"),
            Some(RequestLine {
                method: "GET",
                target: "/a b c",
                version: Some("HTTP/1.1")
            })
        );
        assert_eq!(
            split_request_line("GET /a b"),
            Some(RequestLine {
                method: "GET",
                target: "/a b",
                version: None
            })
        );
    }

    #[test]
    fn request_line_rejects_junk() {
        for junk in [
            "",
            "-",
            "- - -",
            "- http://www.example.com:80- -",
            r"\x16\x03\x01\x00\xa5",
            "GET",
            "GET ",
            "GET HTTP/1.1",
            "G\"T / HTTP/1.1",
        ] {
            assert_eq!(split_request_line(junk), None, "request line {junk:?}");
        }
    }

    #[test]
    fn http_version_forms() {
        assert!(is_http_version("HTTP/1.1"));
        assert!(is_http_version("HTTP/2"));
        assert!(is_http_version("HTTP/2.0"));
        assert!(!is_http_version("HTTP/"));
        assert!(!is_http_version("HTTP/1."));
        assert!(!is_http_version("http/1.1"));
    }

    #[test]
    fn target_absolute_uri() {
        let target = split_target("GET", "https://www.example.com:443/a/b?x=1&y").unwrap();
        assert_eq!(target.scheme, Some("https"));
        assert_eq!(target.host, Some("www.example.com"));
        assert_eq!(target.port, Some(443));
        assert_eq!(target.path, Some("/a/b"));
        assert_eq!(target.query, Some("x=1&y"));
    }

    #[test]
    fn target_absolute_uri_edge_forms() {
        let bare = split_target("GET", "http://host").unwrap();
        assert_eq!(
            (bare.host, bare.port, bare.path),
            (Some("host"), None, Some("/"))
        );

        let query_only = split_target("GET", "http://host?q").unwrap();
        assert_eq!((query_only.path, query_only.query), (Some("/"), Some("q")));

        let ipv6 = split_target("GET", "http://[::1]:8080/x").unwrap();
        assert_eq!((ipv6.host, ipv6.port), (Some("::1"), Some(8080)));

        let userinfo = split_target("GET", "http://user:secret@host/x").unwrap();
        assert_eq!(userinfo.host, Some("host"));

        assert_eq!(split_target("GET", "http://www.example.com:80-"), None);
        assert_eq!(split_target("GET", "http:///x"), None);
        assert_eq!(split_target("GET", "1http://x/"), None);
    }

    #[test]
    fn target_other_forms() {
        let star = split_target("OPTIONS", "*").unwrap();
        assert_eq!(star.path, Some("*"));

        let connect = split_target("CONNECT", "example.com:443").unwrap();
        assert_eq!(
            (connect.host, connect.port, connect.path),
            (Some("example.com"), Some(443), None)
        );

        assert_eq!(split_target("GET", "index.html"), None);
        let empty_query = split_target("GET", "/a?").unwrap();
        assert_eq!(empty_query.query, Some(""));
    }

    #[test]
    fn set_request_fills_event() {
        let mut event = Event::default();
        set_request(
            &mut event,
            "GET https://api.example.com:8443/v1/users?id=7 HTTP/2.0",
        );
        assert_eq!(event.method.as_deref(), Some("GET"));
        assert_eq!(event.scheme.as_deref(), Some("https"));
        assert_eq!(event.host.as_deref(), Some("api.example.com"));
        assert_eq!(event.path.as_deref(), Some("/v1/users"));
        assert_eq!(event.query.as_deref(), Some("id=7"));
        assert_eq!(event.http_version.as_deref(), Some("HTTP/2.0"));
        assert_eq!(
            event.attributes,
            vec![("port".to_string(), "8443".to_string())]
        );
        assert!(!event.malformed);
    }

    #[test]
    fn set_request_asterisk_forms() {
        let mut event = Event::default();
        set_request(&mut event, "*");
        assert_eq!(event.path.as_deref(), Some("*"));
        assert_eq!(event.method, None);
        assert!(!event.malformed);

        let mut event = Event::default();
        set_request(&mut event, "OPTIONS *");
        assert_eq!(event.path.as_deref(), Some("*"));
        assert_eq!(event.method.as_deref(), Some("OPTIONS"));
        assert_eq!(event.http_version, None);
        assert!(!event.malformed);
    }

    #[test]
    fn set_request_marks_space_in_target() {
        let mut event = Event::default();
        set_request(&mut event, "GET /a b c HTTP/1.1");
        assert_eq!(event.path.as_deref(), Some("/a b c"));
        assert_eq!(event.http_version.as_deref(), Some("HTTP/1.1"));
        assert!(event.malformed);
    }

    #[test]
    fn set_request_keeps_junk_as_attribute() {
        let mut event = Event::default();
        set_request(&mut event, r"\x16\x03\x01\x00\xa5");
        assert!(event.malformed);
        assert_eq!(event.method, None);
        assert_eq!(event.path, None);
        assert_eq!(
            event.attributes,
            vec![("request".to_string(), r"\x16\x03\x01\x00\xa5".to_string())]
        );

        let mut event = Event::default();
        set_request(&mut event, "GET index.html HTTP/1.0");
        assert!(event.malformed);
        assert_eq!(event.method, None);
    }

    #[test]
    fn set_request_converts_log_escapes() {
        let mut event = Event::default();
        set_request(&mut event, r"GET /image?name=\xD8\xB3-x HTTP/1.1");
        assert_eq!(event.path.as_deref(), Some("/image"));
        assert_eq!(event.query.as_deref(), Some("name=%D8%B3-x"));
    }

    #[test]
    fn clf_time_with_offsets() {
        // 2000-10-10T20:55:36Z
        assert_eq!(
            parse_clf_time("10/Oct/2000:13:55:36 -0700"),
            Some(971_211_336_000_000)
        );
        assert_eq!(
            parse_clf_time("10/Oct/2000:20:55:36 +0000"),
            Some(971_211_336_000_000)
        );
        assert_eq!(
            parse_clf_time("10/oct/2000:20:55:36"),
            Some(971_211_336_000_000)
        );
        // 2019-01-22T00:26:14Z
        assert_eq!(
            parse_clf_time("22/Jan/2019:03:56:14 +0330"),
            Some(1_548_116_774_000_000)
        );
        assert_eq!(
            parse_clf_time("10/Oct/2000:20:55:36.250 +00:00"),
            Some(971_211_336_250_000)
        );
    }

    #[test]
    fn clf_time_rejects_invalid() {
        for invalid in [
            "",
            "10/Foo/2000:13:55:36 -0700",
            "31/Feb/2000:13:55:36 -0700",
            "10/Oct/2000:24:55:36 -0700",
            "10/Oct/2000:13:55:36 0700",
            "10/Oct/2000:13:55:36 -0700 x",
            "1/Oct/2000:13:55:36 -0700",
            "10/Oct/2000 13:55:36",
        ] {
            assert_eq!(parse_clf_time(invalid), None, "time {invalid:?}");
        }
    }

    #[test]
    fn iso8601_forms() {
        assert_eq!(
            parse_iso8601("2018-07-02T22:23:00.186641Z"),
            Some(1_530_570_180_186_641)
        );
        assert_eq!(
            parse_iso8601("2018-07-02T22:23:00Z"),
            Some(1_530_570_180_000_000)
        );
        assert_eq!(
            parse_iso8601("2018-07-02T22:23:00"),
            Some(1_530_570_180_000_000)
        );
        assert_eq!(
            parse_iso8601("2018-07-03T00:23:00.186641999+02:00"),
            Some(1_530_570_180_186_641)
        );
        assert_eq!(
            parse_iso8601("2018-07-02T21:23:00-0100"),
            Some(1_530_570_180_000_000)
        );
        assert_eq!(
            parse_iso8601("2018-07-02 22:23:00+00"),
            Some(1_530_570_180_000_000)
        );
    }

    #[test]
    fn leap_second_is_last_microsecond() {
        // 2016-12-31T23:59:59.999999Z
        let last_micro = 1_483_228_799_999_999;
        assert_eq!(parse_iso8601("2016-12-31T23:59:60Z"), Some(last_micro));
        assert_eq!(parse_iso8601("2016-12-31T23:59:60.5Z"), Some(last_micro));
        assert_eq!(parse_iso8601("2017-01-01T00:59:60+01:00"), Some(last_micro));
        assert_eq!(
            parse_clf_time("31/Dec/2016:23:59:60 +0000"),
            Some(last_micro)
        );
        assert_eq!(parse_iso8601("2016-12-31T23:59:61Z"), None);
        assert_eq!(parse_clf_time("31/Dec/2016:23:59:61 +0000"), None);
    }

    #[test]
    fn iso8601_rejects_invalid() {
        for invalid in [
            "2018-13-45T22:23:00Z",
            "2018-07-02",
            "2018-07-02T22:23Z",
            "2018-07-02T22:23:00Q",
            "2018-07-02T22:23:00.Z",
            "18-07-02T22:23:00Z",
            "-",
        ] {
            assert_eq!(parse_iso8601(invalid), None, "timestamp {invalid:?}");
        }
    }

    #[test]
    fn seconds_as_micros() {
        assert_eq!(parse_seconds_as_micros("0.086"), Some(86_000));
        assert_eq!(parse_seconds_as_micros("12"), Some(12_000_000));
        assert_eq!(parse_seconds_as_micros("0.0000019"), Some(1));
        assert_eq!(parse_seconds_as_micros("-1"), None);
        assert_eq!(parse_seconds_as_micros("1e3"), None);
        assert_eq!(parse_seconds_as_micros(".5"), None);
    }

    #[test]
    fn quote_excerpt_shortens_long_values() {
        assert_eq!(quote_excerpt("abc"), "\"abc\"");
        let long = "é".repeat(100);
        let quoted = quote_excerpt(&long);
        assert!(quoted.ends_with("\"..."));
        assert_eq!(
            quoted.chars().filter(|&c| c == 'é').count(),
            MAX_QUOTED_CHARS
        );
    }

    /// Percent-encodes every byte of `text` except `/`.
    fn percent_encode_all(text: &str) -> String {
        let mut out = String::new();
        for byte in text.bytes() {
            if byte == b'/' {
                out.push('/');
            } else {
                push_hex_escape(&mut out, "%", byte);
            }
        }
        out
    }

    /// Escapes `text` as Apache writes a quoted field: `"` and `\` with a
    /// backslash, and bytes outside ASCII as `\xhh`.
    fn apache_escape(text: &str) -> String {
        let mut out = String::new();
        for byte in text.bytes() {
            match byte {
                b'"' => out.push_str("\\\""),
                b'\\' => out.push_str("\\\\"),
                byte if byte.is_ascii() => out.push(char::from(byte)),
                byte => out.push_str(&format!("\\x{byte:02x}")),
            }
        }
        out
    }

    proptest! {
        #[test]
        fn percent_decode_path_round_trips(text in "[^\\p{Cc}]{0,40}") {
            prop_assert_eq!(percent_decode_path(&percent_encode_all(&text)), text);
        }

        #[test]
        fn percent_decode_path_never_panics(path in "[%/a-fA-F0-9ü]{0,40}") {
            let _ = percent_decode_path(&path);
        }

        #[test]
        fn unescape_text_round_trips(text in "[^\\p{Cc}]{0,40}") {
            let escaped = apache_escape(&text);
            let unescaped = unescape_text(&escaped);
            prop_assert_eq!(unescaped.as_ref(), text.as_str());
        }

        #[test]
        fn decode_line_keeps_valid_text(text in "\\PC{0,60}") {
            let decoded = decode_line(text.as_bytes());
            prop_assert_eq!(decoded.as_ref(), text.as_str());
        }

        #[test]
        fn utc_micros_matches_chrono(
            year in 0u32..10_000,
            month in 0u32..14,
            day in 0u32..33,
            (hour, minute, second) in (0u32..26, 0u32..62, 0u32..62),
            micros in 0u32..1_000_000,
            offset in -86_399i64..86_400,
        ) {
            let (leap_second, leap_micros) = if second == 60 { (59, 999_999) } else { (second, micros) };
            let expected = NaiveDate::from_ymd_opt(i32::try_from(year).unwrap(), month, day)
                .and_then(|date| date.and_hms_micro_opt(hour, minute, leap_second, leap_micros))
                .map(|local| local.and_utc().timestamp_micros() - offset * MICROS_PER_SECOND);
            prop_assert_eq!(
                utc_micros(year, month, day, (hour, minute, second, micros), offset),
                expected
            );
        }

        #[test]
        fn find_byte_finds_first(bytes in prop::collection::vec(any::<u8>(), 0..40), needle in any::<u8>()) {
            let expected = bytes.iter().position(|&byte| byte == needle);
            prop_assert_eq!(find_byte(needle, &bytes), expected);
            let spaced: Vec<u8> = bytes.iter().map(|&byte| if byte % 7 == 0 { b' ' } else { byte }).collect();
            prop_assert_eq!(find_byte(b' ', &spaced), spaced.iter().position(|&byte| byte == b' '));
        }

        #[test]
        fn normalise_ip_matches_formatting(text in "[0-9.:a-fA-F]{0,20}", v4 in any::<u32>()) {
            let formatted = |text: &str| text.parse::<IpAddr>().ok().map(|ip| ip.to_string());
            prop_assert_eq!(normalise_ip(&text), formatted(&text));
            let dotted = Ipv4Addr::from(v4).to_string();
            prop_assert_eq!(normalise_ip(&dotted), Some(dotted.clone()));
        }

        #[test]
        fn fields_stay_inside_line(line in "[ \"\\\\\\[\\]aü]{0,40}") {
            for field in Fields::new(&line) {
                prop_assert!(field.start < field.end);
                prop_assert!(field.end <= line.len());
                prop_assert!(line[field.start..field.end].contains(field.text));
            }
        }
    }
}
