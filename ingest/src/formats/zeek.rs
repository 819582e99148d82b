//! Zeek `http.log` (`zeek_http`), in its tab-separated form with header
//! lines and in its JSON form.
//!
//! The tab-separated form starts with header lines that describe the lines
//! after them: `#separator \x09`, `#set_separator`, `#empty_field`,
//! `#unset_field`, `#path`, `#open`, `#fields` (the column names) and
//! `#types`, and it may end with `#close`. The parser keeps their settings
//! for the lines that follow, and skips them with the tag `header`. A
//! `#separator` line starts a new header, so concatenated logs read
//! correctly. A data line before any `#fields` line is rejected, and so is
//! every data line of a log whose `#path` is not `http`. The JSON form has
//! one object per line, with the same field names as keys. Nested `id`
//! objects are read as `id.orig_h` and so on.
//!
//! | field | column |
//! |---|---|
//! | `ts` (epoch seconds) | `time` (the START of the request) |
//! | `id.orig_h`, `id.orig_p` | `client_ip`, `client_port` |
//! | `method` | `method` |
//! | `host` (the `Host` header) | `host`; a port in it goes to attribute `port` |
//! | `uri` | `path` and `query`; an absolute URI also fills `scheme` and `host` |
//! | `referrer` | `referer` |
//! | `version` (`1.1`) | `http_version` (`HTTP/1.1`) |
//! | `user_agent` | `user_agent` |
//! | `request_body_len` | `request_bytes` |
//! | `response_body_len` | `response_bytes` |
//! | `status_code` | `status` (`0`, written when the response had no status line, is NULL) |
//! | `X-FORWARDED-FOR -> ...` item of `proxied` | `forwarded_for` |
//!
//! Every other field goes to an attribute under its Zeek name (`uid`,
//! `trans_depth`, `id.resp_h`, `id.resp_p`, `status_msg`, `tags`,
//! `resp_mime_types`, ...), and so does `proxied`. `password`, which Zeek
//! logs for basic authentication when configured to, is hashed by the
//! redactor like every attribute of that name. `ts` may also be an ISO 8601
//! string or integer milliseconds, as Zeek's JSON timestamp options write it.
//! Unset (`-`) and empty (`(empty)`) values are left out.
//!
//! Zeek writes bytes that are not printable as `\xHH`, in both forms, and a
//! backslash as `\\` in the tab-separated form. In `uri` each `\xHH` becomes
//! `%HH` before the URI is split, so the driver's single percent-decoding
//! turns valid UTF-8 back into text and keeps bytes that are not valid UTF-8
//! percent-encoded; the logged value is kept as attribute `uri`. In other
//! fields the bytes are decoded, and those that are not valid UTF-8 are
//! written as `%HH`. NOTE: the JSON form does not escape a backslash, so a
//! URI that literally contained the text `\x07` cannot be told apart from
//! one that contained the byte 0x07, and both read as the byte.
//!
//! A URI with a space in it, an empty URI and a URI in no known form set
//! `malformed`. Records without `method`, `host` and `uri` are transactions
//! of which Zeek saw only the response: they are kept, with NULL method and
//! path, because their status and size are still real traffic. A JSON
//! record whose `_path` is not `http` is skipped with the tag `not_http`.
//! Records whose `ts` is the masked `XXXXXXXXXX.XXXXXX` of Zeek's test
//! baselines are rejected, since they have no time.

use std::borrow::Cow;

use crate::event::Event;
use crate::format::Format;
use crate::formats::RecordParser;
use crate::formats::capture::{is_blank, prefix_http_version, push_attribute, set_url};
use crate::formats::json::{Json, flatten};
use crate::parse::{LineOutcome, ParseContext};
use crate::text::{
    decode_line, normalise_ip, parse_iso8601, parse_seconds_as_micros, quote_excerpt,
    split_host_port,
};

/// Epoch values at or above this, without a fraction, are milliseconds: as
/// seconds they would be past the year 5000.
const EPOCH_MILLIS_THRESHOLD: i64 = 100_000_000_000;

/// Keys of which a JSON record needs at least one to be an `http.log` record.
const HTTP_KEYS: [&str; 9] = [
    "method",
    "host",
    "uri",
    "status_code",
    "trans_depth",
    "version",
    "user_agent",
    "request_body_len",
    "response_body_len",
];

/// The `proxied` item that carries the X-Forwarded-For header.
const FORWARDED_FOR_ITEM: &str = "X-FORWARDED-FOR -> ";

/// Reads one Zeek `http.log`, remembering its header lines.
#[derive(Debug, Default)]
pub struct ZeekHttpParser {
    header: Header,
}

impl RecordParser for ZeekHttpParser {
    fn parse(&mut self, record: &str, _ctx: &ParseContext<'_>) -> LineOutcome {
        let record = record.strip_prefix('\u{feff}').unwrap_or(record);
        if record.starts_with('{') {
            parse_json_record(record)
        } else if record.starts_with('#') {
            self.header.apply_line(record)
        } else {
            self.parse_tsv_record(record)
        }
    }
}

impl ZeekHttpParser {
    fn parse_tsv_record(&self, line: &str) -> LineOutcome {
        match self.build_tsv_event(line) {
            Ok(event) => LineOutcome::Event(Box::new(event)),
            Err(reason) => LineOutcome::Rejected(reason),
        }
    }

    fn build_tsv_event(&self, line: &str) -> Result<Event, String> {
        let header = &self.header;
        if header.fields.is_empty() {
            return Err(
                "no #fields header line before this record: a Zeek tab-separated log \
                        starts with #separator and #fields lines, so send it from its first line"
                    .to_string(),
            );
        }
        if let Some(path) = header.path.as_deref().filter(|path| *path != "http") {
            return Err(format!(
                "this Zeek log is {path}.log (#path {path}); the zeek_http format reads http.log only"
            ));
        }
        let found = line.split(header.separator.as_str()).count();
        if found != header.fields.len() {
            return Err(format!(
                "expected {} fields separated by {} as the #fields line lists, found {found}",
                header.fields.len(),
                quote_excerpt(&header.separator)
            ));
        }

        let mut record = Record::new(Escaping::Tsv);
        for (name, value) in header
            .fields
            .iter()
            .zip(line.split(header.separator.as_str()))
        {
            if value == header.unset_field {
                continue;
            }
            if value == header.empty_field {
                record.empty_uri |= name == "uri";
                continue;
            }
            if name == "proxied" {
                record.apply_proxied(value.split(header.set_separator.as_str()));
            }
            record.apply(name, value)?;
        }
        record.finish()
    }
}

/// Settings from the header lines of a tab-separated log.
#[derive(Debug)]
struct Header {
    separator: String,
    set_separator: String,
    empty_field: String,
    unset_field: String,
    path: Option<String>,
    fields: Vec<String>,
}

impl Default for Header {
    fn default() -> Self {
        Header {
            separator: "\t".to_string(),
            set_separator: ",".to_string(),
            empty_field: "(empty)".to_string(),
            unset_field: "-".to_string(),
            path: None,
            fields: Vec::new(),
        }
    }
}

impl Header {
    /// Stores the setting of one `#` line.
    fn apply_line(&mut self, line: &str) -> LineOutcome {
        if let Some(value) = line.strip_prefix("#separator ") {
            let separator = unescape_text(value, Escaping::Tsv);
            if separator.is_empty() {
                return LineOutcome::Rejected(format!(
                    "invalid #separator {}: expected a character such as \\x09",
                    quote_excerpt(value)
                ));
            }
            *self = Header {
                separator: separator.into_owned(),
                ..Header::default()
            };
            return LineOutcome::Skipped("header");
        }

        let name_end = line
            .find(self.separator.as_str())
            .or_else(|| line.find(' '))
            .unwrap_or(line.len());
        let (directive, rest) = line.split_at(name_end);
        let value = rest
            .strip_prefix(self.separator.as_str())
            .or_else(|| rest.strip_prefix(' '))
            .unwrap_or(rest);
        match directive {
            "#set_separator" => {
                self.set_separator = unescape_text(value, Escaping::Tsv).into_owned();
            }
            "#empty_field" => self.empty_field = value.to_string(),
            "#unset_field" => self.unset_field = value.to_string(),
            "#path" => self.path = Some(value.to_string()),
            "#fields" => {
                self.fields = value
                    .split(self.separator.as_str())
                    .map(str::to_string)
                    .collect();
            }
            "#types" | "#open" | "#close" => {}
            _ => {
                return LineOutcome::Rejected(format!(
                    "unknown Zeek header line {}: expected #separator, #set_separator, \
                     #empty_field, #unset_field, #path, #open, #fields, #types or #close",
                    quote_excerpt(directive)
                ));
            }
        }
        LineOutcome::Skipped("header")
    }
}

fn parse_json_record(line: &str) -> LineOutcome {
    match build_json_event(line) {
        Ok(Some(event)) => LineOutcome::Event(Box::new(event)),
        Ok(None) => LineOutcome::Skipped("not_http"),
        Err(reason) => LineOutcome::Rejected(reason),
    }
}

/// Builds the event of a JSON record, or returns `None` for a record of another Zeek log.
fn build_json_event(line: &str) -> Result<Option<Event>, String> {
    let value: Json<'_> = serde_json::from_str(line.trim()).map_err(|error| {
        if memchr::memmem::find(line.as_bytes(), b"\"ts\":XXXXXXXXXX").is_some() {
            masked_time_reason()
        } else {
            format!("invalid JSON: {error}")
        }
    })?;
    let Json::Object(members) = &value else {
        return Err(format!("expected a JSON object, found {}", value.kind()));
    };
    let mut leaves = Vec::with_capacity(members.len());
    flatten(None, members, &mut leaves);
    let has_key = |wanted: &str| leaves.iter().any(|(key, _)| key == wanted);
    if !has_key("ts") || !(has_key("uid") || has_key("id.orig_h")) {
        return Err("not a Zeek log record: expected the keys ts and uid".to_string());
    }
    let log_path = leaves
        .iter()
        .find(|(key, _)| key == "_path")
        .and_then(|(_, value)| value.as_text());
    if log_path.is_some_and(|path| path != "http") {
        return Ok(None);
    }
    if !HTTP_KEYS.iter().any(|key| has_key(key)) {
        return Err(format!(
            "not a Zeek http.log record: expected at least one of the keys {}",
            HTTP_KEYS.join(", ")
        ));
    }

    let mut record = Record::new(Escaping::Json);
    for (key, value) in &leaves {
        if key == "_path" {
            continue;
        }
        if key == "proxied"
            && let Json::Array(items) = value
        {
            record.apply_proxied(items.iter().filter_map(|item| match item {
                Json::String(text) => Some(text.as_ref()),
                _ => None,
            }));
        }
        if let Some(text) = value.as_text() {
            record.apply(key, &text)?;
        }
    }
    record.finish().map(Some)
}

fn masked_time_reason() -> String {
    "field ts holds the masked time XXXXXXXXXX.XXXXXX of a Zeek test baseline, not a time; \
     only logs with real timestamps can be imported"
        .to_string()
}

/// Escaping rules of one form of the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Escaping {
    /// `\xHH` for bytes that are not printable and `\\` for a backslash.
    Tsv,
    /// `\xHH` only, inside strings that JSON escaping wraps again.
    Json,
}

/// The event being built, with the fields resolved after every field is seen.
struct Record {
    escaping: Escaping,
    event: Event,
    time: Option<i64>,
    /// The URI as logged, with Zeek's escapes.
    uri: Option<String>,
    /// The URI field held the empty-field marker.
    empty_uri: bool,
}

impl Record {
    fn new(escaping: Escaping) -> Self {
        Record {
            escaping,
            event: Event::new(Format::ZeekHttp.name(), 0),
            time: None,
            uri: None,
            empty_uri: false,
        }
    }

    /// Stores one field, still escaped, in its column or as an attribute.
    fn apply(&mut self, name: &str, value: &str) -> Result<(), String> {
        if is_blank(value) {
            return Ok(());
        }
        if name == "ts" {
            self.time = Some(parse_time(value)?);
            return Ok(());
        }
        if name == "uri" {
            self.uri = Some(value.to_string());
            return Ok(());
        }

        let text = unescape_text(value, self.escaping);
        let event = &mut self.event;
        match name {
            "id.orig_h" => match normalise_ip(&text) {
                Some(ip) => event.client_ip = Some(ip),
                None => push_attribute(event, name, &text),
            },
            "id.orig_p" => event.client_port = Some(parse_number(name, &text)?),
            "method" => event.method = Some(text.into_owned()),
            "host" => {
                let (host, port) = split_host_port(&text);
                event.host = Some(host.to_string());
                if let Some(port) = port {
                    push_attribute(event, "port", &port.to_string());
                }
            }
            "referrer" => event.referer = Some(text.into_owned()),
            "version" => event.http_version = Some(prefix_http_version(&text)),
            "user_agent" => event.user_agent = Some(text.into_owned()),
            "request_body_len" => event.request_bytes = Some(parse_number(name, &text)?),
            "response_body_len" => event.response_bytes = Some(parse_number(name, &text)?),
            "status_code" => {
                let status: i32 = parse_number(name, &text)?;
                event.status = (status > 0).then_some(status);
            }
            _ => push_attribute(event, name, &text),
        }
        Ok(())
    }

    /// Takes `forwarded_for` from the `X-FORWARDED-FOR -> value` item of `proxied`.
    fn apply_proxied<'v>(&mut self, items: impl Iterator<Item = &'v str>) {
        for item in items {
            let prefix_length = FORWARDED_FOR_ITEM.len();
            if item.len() > prefix_length
                && item.is_char_boundary(prefix_length)
                && item[..prefix_length].eq_ignore_ascii_case(FORWARDED_FOR_ITEM)
            {
                let chain = unescape_text(&item[prefix_length..], self.escaping);
                self.event.forwarded_for = Some(chain.into_owned());
            }
        }
    }

    /// Splits the URI and checks the time.
    fn finish(mut self) -> Result<Event, String> {
        self.event.time = self.time.ok_or("missing field ts")?;
        if let Some(raw) = self.uri.take() {
            self.set_uri(&raw);
        } else if self.empty_uri {
            self.event.malformed = true;
        }
        Ok(self.event)
    }

    fn set_uri(&mut self, raw: &str) {
        let uri = unescape_uri(raw, self.escaping);
        let event = &mut self.event;
        let method = event.method.clone().unwrap_or_default();
        let split = set_url(event, &method, &uri);
        if !split || uri.contains(' ') {
            event.malformed = true;
        }
        if !split || uri != raw {
            push_attribute(event, "uri", raw);
        }
    }
}

/// Parses `ts`: epoch seconds with a fraction, integer epoch milliseconds, or ISO 8601.
fn parse_time(text: &str) -> Result<i64, String> {
    if text.contains('X') && text.bytes().all(|b| b == b'X' || b == b'.') {
        return Err(masked_time_reason());
    }
    let invalid = || format!("invalid timestamp {} in field ts", quote_excerpt(text));
    if let Ok(whole) = text.parse::<i64>()
        && whole >= EPOCH_MILLIS_THRESHOLD
    {
        return whole.checked_mul(1_000).ok_or_else(invalid);
    }
    parse_seconds_as_micros(text)
        .or_else(|| parse_iso8601(text))
        .ok_or_else(invalid)
}

fn parse_number<T: std::str::FromStr>(name: &str, text: &str) -> Result<T, String> {
    text.parse()
        .map_err(|_| format!("invalid number {} in field {name}", quote_excerpt(text)))
}

/// Decodes Zeek's escapes into bytes, writing the bytes that are not valid UTF-8 as `%HH`.
fn unescape_text(raw: &str, escaping: Escaping) -> Cow<'_, str> {
    match unescape_bytes(raw, escaping) {
        Cow::Borrowed(bytes) => Cow::Borrowed(
            std::str::from_utf8(bytes).expect("a slice of a str without escapes is UTF-8"),
        ),
        Cow::Owned(bytes) => Cow::Owned(decode_line(&bytes).into_owned()),
    }
}

/// Decodes Zeek's escapes into bytes; borrows `raw` when it has none.
fn unescape_bytes(raw: &str, escaping: Escaping) -> Cow<'_, [u8]> {
    let bytes = raw.as_bytes();
    if memchr::memchr(b'\\', bytes).is_none() {
        return Cow::Borrowed(bytes);
    }
    let mut out = Vec::with_capacity(bytes.len());
    let mut position = 0;
    while position < bytes.len() {
        match escape_at(&bytes[position..], escaping) {
            Some((byte, length)) => {
                out.push(byte);
                position += length;
            }
            None => {
                out.push(bytes[position]);
                position += 1;
            }
        }
    }
    Cow::Owned(out)
}

/// Rewrites Zeek's escapes in a URI: `\xHH` becomes `%HH` and, in the
/// tab-separated form, `\\` becomes `\`.
fn unescape_uri(raw: &str, escaping: Escaping) -> Cow<'_, str> {
    if !raw.contains('\\') {
        return Cow::Borrowed(raw);
    }
    let bytes = raw.as_bytes();
    let mut out = String::with_capacity(raw.len() + 8);
    let mut copied_up_to = 0;
    let mut search_from = 0;
    while let Some(found) = memchr::memchr(b'\\', &bytes[search_from..]) {
        let start = search_from + found;
        let Some((byte, length)) = escape_at(&bytes[start..], escaping) else {
            search_from = start + 1;
            continue;
        };
        out.push_str(&raw[copied_up_to..start]);
        if length == 2 {
            out.push('\\');
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
        copied_up_to = start + length;
        search_from = copied_up_to;
    }
    out.push_str(&raw[copied_up_to..]);
    Cow::Owned(out)
}

/// Decodes the escape at the start of `bytes` into its byte and the escape's length.
fn escape_at(bytes: &[u8], escaping: Escaping) -> Option<(u8, usize)> {
    if bytes.first() != Some(&b'\\') {
        return None;
    }
    match *bytes.get(1)? {
        b'\\' if escaping == Escaping::Tsv => Some((b'\\', 2)),
        b'x' => {
            let high = hex_value(*bytes.get(2)?)?;
            let low = hex_value(*bytes.get(3)?)?;
            Some((high << 4 | low, 4))
        }
        _ => None,
    }
}

fn hex_value(byte: u8) -> Option<u8> {
    char::from(byte).to_digit(16).map(|digit| digit as u8)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::formats::capture::driver;
    use crate::formats::test_support::{expect_event, expect_rejection};
    use crate::redact::Redactor;

    const FIELDS: &str = "#fields\tts\tuid\tid.orig_h\tid.orig_p\tid.resp_h\tid.resp_p\ttrans_depth\tmethod\thost\turi\treferrer\tversion\tuser_agent\torigin\trequest_body_len\tresponse_body_len\tstatus_code\tstatus_msg\tinfo_code\tinfo_msg\ttags\tusername\tpassword\tproxied\torig_fuids\torig_filenames\torig_mime_types\tresp_fuids\tresp_filenames\tresp_mime_types";

    /// Header lines as Zeek writes them, before `FIELDS`.
    const PREAMBLE: [&str; 6] = [
        "#separator \\x09",
        "#set_separator\t,",
        "#empty_field\t(empty)",
        "#unset_field\t-",
        "#path\thttp",
        "#open\t2024-05-01-10-00-00",
    ];

    /// Joins the values of one data line for `FIELDS`.
    fn data_line(values: &[&str]) -> String {
        values.join("\t")
    }

    /// Builds a data line with made-up values, changed at the given columns.
    fn line_with(changes: &[(usize, &str)]) -> String {
        let mut values = vec![
            "1714557600.123456",
            "CHhAvVGS1DHFjwGM9",
            "10.0.1.104",
            "64216",
            "192.0.2.80",
            "80",
            "1",
            "GET",
            "api.example.com",
            "/v1/users/42?expand=1",
            "-",
            "1.1",
            "curl/8.5.0",
            "-",
            "0",
            "346",
            "200",
            "OK",
            "-",
            "-",
            "(empty)",
            "-",
            "-",
            "-",
            "-",
            "-",
            "-",
            "FfoGFn4kkphS7wMhbf",
            "-",
            "application/json",
        ];
        for &(index, value) in changes {
            values[index] = value;
        }
        data_line(&values)
    }

    /// Feeds the header lines to a new parser and returns it.
    fn parser_after_header() -> ZeekHttpParser {
        let mut parser = ZeekHttpParser::default();
        for line in PREAMBLE.iter().copied().chain([FIELDS]) {
            let outcome = parse(&mut parser, line);
            assert!(
                matches!(outcome, LineOutcome::Skipped("header")),
                "{line:?} gave {outcome:?}"
            );
        }
        parser
    }

    fn parse(parser: &mut ZeekHttpParser, line: &str) -> LineOutcome {
        let redactor = Redactor::new(b"k".to_vec(), 1);
        parser.parse(line, &ParseContext::new(&redactor))
    }

    fn tsv_event(line: &str) -> Event {
        let mut parser = parser_after_header();
        expect_event(line, parse(&mut parser, line))
    }

    fn json_outcome(line: &str) -> LineOutcome {
        parse(&mut ZeekHttpParser::default(), line)
    }

    fn json_event(line: &str) -> Event {
        expect_event(line, json_outcome(line))
    }

    #[test]
    fn tsv_fields_map_to_columns() {
        let event = tsv_event(&line_with(&[]));
        assert_eq!(event.source, "zeek_http");
        assert_eq!(event.time, 1_714_557_600_123_456);
        assert_eq!(event.client_ip.as_deref(), Some("10.0.1.104"));
        assert_eq!(event.client_port, Some(64216));
        assert_eq!(event.method.as_deref(), Some("GET"));
        assert_eq!(event.host.as_deref(), Some("api.example.com"));
        assert_eq!(event.path.as_deref(), Some("/v1/users/42"));
        assert_eq!(event.query.as_deref(), Some("expand=1"));
        assert_eq!(event.http_version.as_deref(), Some("HTTP/1.1"));
        assert_eq!(event.user_agent.as_deref(), Some("curl/8.5.0"));
        assert_eq!(event.request_bytes, Some(0));
        assert_eq!(event.response_bytes, Some(346));
        assert_eq!(event.status, Some(200));
        assert!(!event.malformed);
        let expected = [
            ("uid", "CHhAvVGS1DHFjwGM9"),
            ("id.resp_h", "192.0.2.80"),
            ("id.resp_p", "80"),
            ("trans_depth", "1"),
            ("status_msg", "OK"),
            ("resp_fuids", "FfoGFn4kkphS7wMhbf"),
            ("resp_mime_types", "application/json"),
        ];
        let actual: Vec<(&str, &str)> = event
            .attributes
            .iter()
            .map(|(key, value)| (key.as_str(), value.as_str()))
            .collect();
        assert_eq!(actual, expected);
    }

    #[test]
    fn hex_escapes_in_uri_stay_lossless() {
        let event = tsv_event(&line_with(&[(
            9,
            "/files/r\\xfchma seminar/caf\\xc3\\xa9.pdf",
        )]));
        assert_eq!(
            event.path.as_deref(),
            Some("/files/r%FChma seminar/caf%C3%A9.pdf"),
            "the parser hands percent-escapes to the driver"
        );
        assert!(event.malformed, "a space inside the URI");
        assert_eq!(
            event.attribute("uri"),
            Some("/files/r\\xfchma seminar/caf\\xc3\\xa9.pdf")
        );
    }

    #[test]
    fn driver_keeps_invalid_utf8_encoded() {
        let mut parser = parser_after_header();
        let data = format!(
            "{}\n{}\n",
            FIELDS,
            line_with(&[(9, "/r\\xfchma/caf\\xc3\\xa9?q=\\xff")])
        );
        let redactor = Redactor::new(b"k".to_vec(), 1);
        let chunk = crate::parse::parse_records(
            Format::ZeekHttp,
            &mut parser,
            data.as_bytes(),
            1,
            crate::framing::FrameState::default(),
            &ParseContext::new(&redactor),
        );
        assert_eq!(chunk.report.accepted, 1, "{:?}", chunk.report.errors);
        let paths = chunk
            .batch
            .column_by_name("path")
            .expect("path column")
            .as_any()
            .downcast_ref::<arrow::array::StringArray>()
            .expect("strings")
            .value(0)
            .to_string();
        assert_eq!(paths, "/r%FChma/café");
        assert!(!paths.contains('\u{fffd}'));
    }

    #[test]
    fn backslash_escape_in_tsv() {
        let event = tsv_event(&line_with(&[(9, "/a\\\\b"), (12, "agent\\x09with tab")]));
        assert_eq!(event.path.as_deref(), Some("/a\\b"));
        assert_eq!(event.user_agent.as_deref(), Some("agent\twith tab"));
    }

    #[test]
    fn invalid_utf8_outside_uri_is_percent_encoded() {
        let event = tsv_event(&line_with(&[(12, "bot\\xff/1")]));
        assert_eq!(event.user_agent.as_deref(), Some("bot%FF/1"));
    }

    #[test]
    fn host_port_is_split_off() {
        let event = tsv_event(&line_with(&[(8, "api.example.com:8080")]));
        assert_eq!(event.host.as_deref(), Some("api.example.com"));
        assert_eq!(event.attribute("port"), Some("8080"));
    }

    #[test]
    fn response_only_record_is_kept() {
        let event = tsv_event(&line_with(&[(7, "-"), (8, "-"), (9, "-"), (16, "400")]));
        assert_eq!(event.method, None);
        assert_eq!(event.host, None);
        assert_eq!(event.path, None);
        assert_eq!(event.status, Some(400));
        assert!(!event.malformed);
    }

    #[test]
    fn odd_uris() {
        let empty = tsv_event(&line_with(&[(7, "OPTIONS"), (9, "(empty)")]));
        assert!(empty.malformed);
        assert_eq!(empty.path, None);

        let star = tsv_event(&line_with(&[(7, "OPTIONS"), (9, "*")]));
        assert_eq!(star.path.as_deref(), Some("*"));
        assert!(!star.malformed);

        let proxy = tsv_event(&line_with(&[(9, "http://www.example.org:8080/a?b=c")]));
        assert_eq!(proxy.scheme.as_deref(), Some("http"));
        assert_eq!(proxy.host.as_deref(), Some("www.example.org"));
        assert_eq!(proxy.path.as_deref(), Some("/a"));
        assert_eq!(proxy.attribute("port"), Some("8080"));

        let connect = tsv_event(&line_with(&[(7, "CONNECT"), (9, "www.example.org:443")]));
        assert_eq!(connect.host.as_deref(), Some("www.example.org"));
        assert_eq!(connect.path, None);
        assert!(!connect.malformed);

        let relative = tsv_event(&line_with(&[(9, "index.html")]));
        assert!(relative.malformed);
        assert_eq!(relative.attribute("uri"), Some("index.html"));
    }

    #[test]
    fn status_zero_is_unknown() {
        let event = tsv_event(&line_with(&[(11, "0.9"), (16, "0"), (17, "<empty>")]));
        assert_eq!(event.status, None);
        assert_eq!(event.http_version.as_deref(), Some("HTTP/0.9"));
        assert_eq!(event.attribute("status_msg"), Some("<empty>"));
    }

    #[test]
    fn proxied_fills_forwarded_for() {
        let event = tsv_event(&line_with(&[(
            23,
            "VIA -> 1.1 proxy,X-FORWARDED-FOR -> 198.51.100.7",
        )]));
        assert_eq!(event.forwarded_for.as_deref(), Some("198.51.100.7"));
        assert_eq!(
            event.attribute("proxied"),
            Some("VIA -> 1.1 proxy,X-FORWARDED-FOR -> 198.51.100.7")
        );
    }

    #[test]
    fn password_goes_to_its_attribute() {
        let event = tsv_event(&line_with(&[(21, "alice"), (22, "s3cret")]));
        assert_eq!(event.attribute("username"), Some("alice"));
        assert_eq!(event.attribute("password"), Some("s3cret"));
    }

    #[test]
    fn driver_hashes_password() {
        let data = format!(
            "{}\n{FIELDS}\n{}\n",
            PREAMBLE.join("\n"),
            line_with(&[(21, "alice"), (22, "s3cret")])
        );
        let rows = driver::stored_attributes(Format::ZeekHttp, &data);
        assert_eq!(
            driver::value(&rows[0], "password"),
            Some(driver::redactor().hash("s3cret").as_str())
        );
    }

    #[test]
    fn masked_timestamps_are_rejected() {
        let mut parser = parser_after_header();
        let line = line_with(&[(0, "XXXXXXXXXX.XXXXXX")]);
        let reason = expect_rejection(&line, parse(&mut parser, &line));
        assert_eq!(reason, masked_time_reason());
        assert!(reason.contains("field ts"), "{reason}");

        let json = r#"{"ts":XXXXXXXXXX.XXXXXX,"uid":"C1","id.orig_h":"10.0.0.1","method":"GET"}"#;
        assert_eq!(
            expect_rejection(json, json_outcome(json)),
            masked_time_reason()
        );
    }

    #[test]
    fn header_lines_are_skipped() {
        let mut parser = ZeekHttpParser::default();
        for line in PREAMBLE.iter().copied().chain([
            FIELDS,
            "#types\ttime\tstring",
            "#close\t2024-05-01-11-00-00",
        ]) {
            assert!(matches!(
                parse(&mut parser, line),
                LineOutcome::Skipped("header")
            ));
        }
        assert_eq!(parser.header.fields.len(), 30);
        assert_eq!(parser.header.path.as_deref(), Some("http"));
        let comment = "### BTest baseline data generated by btest-diff.";
        let reason = expect_rejection(comment, parse(&mut parser, comment));
        assert!(
            reason.starts_with("unknown Zeek header line \"###\""),
            "{reason}"
        );
    }

    #[test]
    fn custom_separators_and_markers() {
        let mut parser = ZeekHttpParser::default();
        for line in [
            "#separator \\x7c",
            "#set_separator|;",
            "#empty_field|EMPTY",
            "#unset_field|NONE",
            "#fields|ts|method|uri|tags|user_agent",
        ] {
            assert!(matches!(
                parse(&mut parser, line),
                LineOutcome::Skipped("header")
            ));
        }
        let line = "1714557600.5|GET|/a\\x7cb|EMPTY|NONE";
        let event = expect_event(line, parse(&mut parser, line));
        assert_eq!(event.time, 1_714_557_600_500_000);
        assert_eq!(event.path.as_deref(), Some("/a%7Cb"));
        assert_eq!(event.user_agent, None);
        assert_eq!(event.attribute("tags"), None);
    }

    #[test]
    fn new_separator_line_resets_header() {
        let mut parser = parser_after_header();
        let _ = parse(&mut parser, "#separator \\x09");
        let line = line_with(&[]);
        let reason = expect_rejection(&line, parse(&mut parser, &line));
        assert!(reason.starts_with("no #fields header line"), "{reason}");
    }

    #[test]
    fn data_before_header_is_rejected() {
        let line = line_with(&[]);
        let reason = expect_rejection(&line, parse(&mut ZeekHttpParser::default(), &line));
        assert!(reason.starts_with("no #fields header line"), "{reason}");
    }

    #[test]
    fn other_zeek_logs_are_rejected() {
        let mut parser = ZeekHttpParser::default();
        for line in [
            "#separator \\x09",
            "#path\tconn",
            "#fields\tts\tuid\tid.orig_h",
        ] {
            let _ = parse(&mut parser, line);
        }
        let line = "1714557600.1\tC1\t10.0.0.1";
        assert_eq!(
            expect_rejection(line, parse(&mut parser, line)),
            "this Zeek log is conn.log (#path conn); the zeek_http format reads http.log only"
        );
    }

    #[test]
    fn wrong_field_count_is_rejected() {
        let mut parser = parser_after_header();
        let line = "1714557600.1\tC1\t10.0.0.1";
        assert_eq!(
            expect_rejection(line, parse(&mut parser, line)),
            "expected 30 fields separated by \"\\t\" as the #fields line lists, found 3"
        );
    }

    #[test]
    fn invalid_values_are_rejected() {
        let mut parser = parser_after_header();
        let line = line_with(&[(0, "yesterday")]);
        assert_eq!(
            expect_rejection(&line, parse(&mut parser, &line)),
            r#"invalid timestamp "yesterday" in field ts"#
        );
        let line = line_with(&[(3, "port")]);
        assert_eq!(
            expect_rejection(&line, parse(&mut parser, &line)),
            r#"invalid number "port" in field id.orig_p"#
        );
    }

    #[test]
    fn json_record() {
        let event = json_event(
            r#"{"ts":1547687130.172944,"uid":"CCNp8v1SNzY7v9d1Ih","id.orig_h":"10.178.98.102","id.orig_p":62995,"id.resp_h":"17.253.5.203","id.resp_p":80,"trans_depth":1,"method":"GET","host":"ocsp.example.com","uri":"/ocsp/ME4w?x=1","version":"1.1","user_agent":"trustd/2.0","request_body_len":0,"response_body_len":3735,"status_code":200,"status_msg":"OK","tags":[],"resp_fuids":["F5zuip1tSwASjNAHy7"],"resp_mime_types":["application/ocsp-response"]}"#,
        );
        assert_eq!(event.time, 1_547_687_130_172_944);
        assert_eq!(event.client_ip.as_deref(), Some("10.178.98.102"));
        assert_eq!(event.client_port, Some(62995));
        assert_eq!(event.path.as_deref(), Some("/ocsp/ME4w"));
        assert_eq!(event.query.as_deref(), Some("x=1"));
        assert_eq!(event.status, Some(200));
        assert_eq!(event.response_bytes, Some(3735));
        assert_eq!(event.attribute("tags"), None);
        assert_eq!(
            event.attribute("resp_fuids"),
            Some(r#"["F5zuip1tSwASjNAHy7"]"#)
        );
    }

    #[test]
    fn json_escapes() {
        let event = json_event(
            r#"{"ts":1700000000.5,"uid":"C1","id.orig_h":"172.24.0.2","method":"GET","uri":"/non_printable_\\x07/\\xfc/😄","user_agent":"a\\\\b"}"#,
        );
        assert_eq!(event.path.as_deref(), Some("/non_printable_%07/%FC/😄"));
        assert_eq!(
            event.user_agent.as_deref(),
            Some("a\\\\b"),
            "the JSON form leaves backslashes unescaped"
        );
        assert_eq!(
            event.attribute("uri"),
            Some("/non_printable_\\x07/\\xfc/😄")
        );
    }

    #[test]
    fn json_nested_id_and_time_forms() {
        let nested = json_event(
            r#"{"ts":"2024-05-01T10:00:00.250Z","uid":"C1","id":{"orig_h":"2001:db8::1","orig_p":5555},"method":"GET","uri":"/"}"#,
        );
        assert_eq!(nested.time, 1_714_557_600_250_000);
        assert_eq!(nested.client_ip.as_deref(), Some("2001:db8::1"));
        assert_eq!(nested.client_port, Some(5555));

        let millis =
            json_event(r#"{"ts":1714557600250,"uid":"C1","id.orig_h":"10.0.0.1","uri":"/"}"#);
        assert_eq!(millis.time, 1_714_557_600_250_000);
    }

    #[test]
    fn json_response_only_record() {
        let event = json_event(
            r#"{"ts":1617081354.277591,"uid":"Cd","id.orig_h":"10.156.0.2","id.orig_p":57896,"id.resp_h":"23.55.163.58","id.resp_p":80,"trans_depth":1,"version":"1.0","request_body_len":0,"response_body_len":503,"status_code":200,"status_msg":"OK","tags":[]}"#,
        );
        assert_eq!(event.method, None);
        assert_eq!(event.path, None);
        assert_eq!(event.status, Some(200));
        assert_eq!(event.http_version.as_deref(), Some("HTTP/1.0"));
    }

    #[test]
    fn json_other_log_paths_are_skipped() {
        let line =
            r#"{"_path":"conn","ts":1700000000.1,"uid":"C1","id.orig_h":"10.0.0.1","proto":"tcp"}"#;
        assert!(matches!(
            json_outcome(line),
            LineOutcome::Skipped("not_http")
        ));
        let http = json_event(
            r#"{"_path":"http","ts":1700000000.1,"uid":"C1","id.orig_h":"10.0.0.1","method":"GET","uri":"/x"}"#,
        );
        assert_eq!(http.attribute("_path"), None);
        assert_eq!(http.path.as_deref(), Some("/x"));
    }

    #[test]
    fn json_proxied_list() {
        let event = json_event(
            r#"{"ts":1700000000.1,"uid":"C1","id.orig_h":"10.0.0.1","uri":"/","proxied":["X-FORWARDED-FOR -> 203.0.113.9"]}"#,
        );
        assert_eq!(event.forwarded_for.as_deref(), Some("203.0.113.9"));
    }

    #[test]
    fn rejects_other_json() {
        let splunk = r#"{"preview":false,"offset":0,"result":{"_raw":"{\"ts\":1547707019.757479}","host":"laptop","source":"/usr/local/var/log/zeek/http.log"}}"#;
        assert_eq!(
            expect_rejection(splunk, json_outcome(splunk)),
            "not a Zeek log record: expected the keys ts and uid"
        );
        let suricata = r#"{"timestamp":"2018-07-05T15:43:47.690014-0400","flow_id":1,"event_type":"http","src_ip":"192.168.86.85","http":{"url":"/"}}"#;
        assert_eq!(
            expect_rejection(suricata, json_outcome(suricata)),
            "not a Zeek log record: expected the keys ts and uid"
        );
        let conn = r#"{"ts":1700000000.1,"uid":"C1","id.orig_h":"10.0.0.1","proto":"tcp"}"#;
        assert!(
            expect_rejection(conn, json_outcome(conn)).starts_with("not a Zeek http.log record")
        );
        let broken = r#"{"ts":1700000000.1,"uid""#;
        assert!(expect_rejection(broken, json_outcome(broken)).starts_with("invalid JSON: "));
    }

    #[test]
    fn odd_input_does_not_panic() {
        let mut parser = parser_after_header();
        for sample in [
            "",
            "#",
            "#separator ",
            "#separator \\x",
            "#fields",
            "\\x",
            "a\\xzz\\\\\\",
            "{\"ts\":1,\"uid\":\"u\",\"uri\":\"\\\\x\"}",
            "{\"ts\":99999999999999999999,\"uid\":\"u\",\"uri\":\"/\"}",
            "{\"ts\":1,\"uid\":\"u\",\"proxied\":[\"X-FORWARDED-FOR -> ü\"]}",
        ] {
            let _ = parse(&mut parser, sample);
        }
        let _ = parse(&mut parser, "#separator \\x09");
        let _ = parse(&mut parser, "#fields\tts\turi");
        for sample in ["1\t\\x", "1.5\t\\xc3", "1.5\t\\\\x41"] {
            let _ = parse(&mut parser, sample);
        }
    }
}
