//! Amazon CloudFront standard logs (`aws_cloudfront`), and the field handling
//! shared with the real-time logs in [`super::cloudfront_realtime`].
//!
//! A standard log file is W3C extended log format: directive lines that start
//! with `#`, then one tab-separated line per request. The `#Fields:` directive
//! names the columns, and the parser keeps the list of the last one it saw.
//! Lines before any `#Fields:` line use the 33 fields that CloudFront documents
//! for every standard log file, in this order:
//!
//! ```text
//! date time x-edge-location sc-bytes c-ip cs-method cs(Host) cs-uri-stem
//! sc-status cs(Referer) cs(User-Agent) cs-uri-query cs(Cookie)
//! x-edge-result-type x-edge-request-id x-host-header cs-protocol cs-bytes
//! time-taken x-forwarded-for ssl-protocol ssl-cipher x-edge-response-result-type
//! cs-protocol-version fle-status fle-encrypted-fields c-port time-to-first-byte
//! x-edge-detailed-result-type sc-content-type sc-content-len sc-range-start
//! sc-range-end
//! ```
//!
//! | field | column |
//! |---|---|
//! | `date` and `time` (UTC) | `time` |
//! | `c-ip` | `client_ip` |
//! | `c-port` | `client_port` |
//! | `cs-method` | `method` |
//! | `cs-protocol` (`http`, `https`, `ws`, `wss`) | `scheme` |
//! | `x-host-header`, else `cs(Host)` | `host` |
//! | `cs-uri-stem` | `path` |
//! | `cs-uri-query` | `query` |
//! | `cs-protocol-version` | `http_version` |
//! | `sc-status` | `status` |
//! | `time-taken` (seconds) | `duration_ms` |
//! | `cs-bytes` | `request_bytes` |
//! | `sc-bytes` | `response_bytes` |
//! | `x-edge-request-id` | `request_id` |
//! | `x-forwarded-for` | `forwarded_for` |
//! | `cs(User-Agent)` | `user_agent` |
//! | `cs(Referer)` | `referer` |
//!
//! `time` is when the edge server finished responding, so the event time is
//! the END of the request. `cs(Host)` is the distribution's own domain name and
//! is also kept as an attribute of that name. `cs(Cookie)` goes to attribute
//! `cs-cookie`, the name real-time logs use, so that the driver hashes every
//! cookie value. Every other field goes to an attribute under its W3C name,
//! and values `-` and empty are left out.
//!
//! CloudFront writes `%XX` for spaces, control characters, bytes above 127
//! and ``< > " # % { } | \ ^ ~ [ ] ` '``. Every value is decoded once to remove
//! that layer, except that `%2F` and escapes of bytes that are not UTF-8 stay
//! as they are. So `cs-uri-stem` `/a%2520b` (the client sent `/a%20b`) becomes
//! the path `/a%20b`, which the driver decodes once more to `/a b`. When the
//! decoding changes `cs-uri-stem` or `cs-uri-query`, the value as logged is
//! kept in an attribute of that name. A user agent that still reads `%20`
//! after one decoding, and has no space, was encoded twice and is decoded
//! again, keeping the value as logged in attribute `cs(User-Agent)`.
//!
//! `sc-status` `000` means the viewer closed the connection before CloudFront
//! responded: `status` is then unknown and attribute `sc-status` keeps `000`.
//! A line with fewer fields than the `#Fields:` line lists was cut short and is
//! rejected. Fields beyond the list are kept as `extra_1`, `extra_2`, ...
//! Directive lines (`#Version:`, `#Fields:` and the other W3C directives) are
//! skipped.

use std::borrow::Cow;

use crate::event::Event;
use crate::format::Format;
use crate::formats::RecordParser;
use crate::formats::alb::parse_digits;
use crate::parse::{LineOutcome, ParseContext};
use crate::text::{
    parse_iso8601, parse_seconds_as_micros, percent_decode_path, quote_excerpt, set_client_address,
};

/// The fields of a standard log file before any `#Fields:` line.
pub(super) const DEFAULT_FIELDS: [&str; 33] = [
    "date",
    "time",
    "x-edge-location",
    "sc-bytes",
    "c-ip",
    "cs-method",
    "cs(Host)",
    "cs-uri-stem",
    "sc-status",
    "cs(Referer)",
    "cs(User-Agent)",
    "cs-uri-query",
    "cs(Cookie)",
    "x-edge-result-type",
    "x-edge-request-id",
    "x-host-header",
    "cs-protocol",
    "cs-bytes",
    "time-taken",
    "x-forwarded-for",
    "ssl-protocol",
    "ssl-cipher",
    "x-edge-response-result-type",
    "cs-protocol-version",
    "fle-status",
    "fle-encrypted-fields",
    "c-port",
    "time-to-first-byte",
    "x-edge-detailed-result-type",
    "sc-content-type",
    "sc-content-len",
    "sc-range-start",
    "sc-range-end",
];

/// The W3C directives other than `#Fields:`, which carry no request.
pub(super) const OTHER_DIRECTIVES: [&str; 6] = [
    "#Version:",
    "#Software:",
    "#Date:",
    "#Start-Date:",
    "#End-Date:",
    "#Remark:",
];

/// Attribute name for the cookie header, which the driver recognises by its `cookie` suffix.
const COOKIE_ATTRIBUTE: &str = "cs-cookie";

/// Destination of one field's value: a column, or an attribute.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Column {
    /// `date`: `YYYY-MM-DD`, UTC.
    Date,
    /// `time`: `HH:MM:SS`, UTC.
    Time,
    /// `timestamp` of real-time logs: seconds since the epoch with milliseconds.
    EpochSeconds,
    ClientIp,
    ClientPort,
    Method,
    Scheme,
    HttpVersion,
    /// The `Host` header the viewer sent.
    ViewerHost,
    /// The distribution's domain name: an attribute, and `host` when the viewer's is missing.
    DistributionHost,
    /// A path without the query string.
    UriStem,
    /// A path that may end with `?` and the query string (real-time logs).
    UriStemWithQuery,
    UriQuery,
    Status,
    RequestBytes,
    ResponseBytes,
    /// Seconds, to the millisecond.
    TimeTaken,
    RequestId,
    ForwardedFor,
    UserAgent,
    Referer,
    Cookie,
    /// A field without a column, kept as an attribute under its name.
    Attribute,
}

/// One named field of a `#Fields:` list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct FieldSpec {
    pub name: Box<str>,
    pub column: Column,
}

/// Builds the field list for `names`, giving each the column that `column_of` names.
pub(super) fn field_specs<'a>(
    names: impl IntoIterator<Item = &'a str>,
    column_of: fn(&str) -> Column,
) -> Vec<FieldSpec> {
    names
        .into_iter()
        .map(|name| FieldSpec {
            name: name.into(),
            column: column_of(name),
        })
        .collect()
}

/// Returns the field names of a `#Fields:` line, or `None` for any other line.
pub(super) fn fields_directive(line: &str) -> Option<Vec<&str>> {
    let names = line.strip_prefix("#Fields:")?;
    Some(names.split_ascii_whitespace().collect())
}

/// Column of a standard log field.
fn standard_column(name: &str) -> Column {
    match name {
        "date" => Column::Date,
        "time" => Column::Time,
        "c-ip" => Column::ClientIp,
        "c-port" => Column::ClientPort,
        "cs-method" => Column::Method,
        "cs-protocol" => Column::Scheme,
        "cs-protocol-version" => Column::HttpVersion,
        "x-host-header" => Column::ViewerHost,
        "cs(Host)" => Column::DistributionHost,
        "cs-uri-stem" => Column::UriStem,
        "cs-uri-query" => Column::UriQuery,
        "sc-status" => Column::Status,
        "cs-bytes" => Column::RequestBytes,
        "sc-bytes" => Column::ResponseBytes,
        "time-taken" => Column::TimeTaken,
        "x-edge-request-id" => Column::RequestId,
        "x-forwarded-for" => Column::ForwardedFor,
        "cs(User-Agent)" => Column::UserAgent,
        "cs(Referer)" => Column::Referer,
        "cs(Cookie)" => Column::Cookie,
        _ => Column::Attribute,
    }
}

/// Parser of one standard log input, which remembers the last `#Fields:` line.
pub struct CloudFrontParser {
    fields: Vec<FieldSpec>,
    /// Whether `fields` came from a `#Fields:` line rather than the default list.
    from_header: bool,
}

impl CloudFrontParser {
    pub fn new() -> Self {
        CloudFrontParser {
            fields: field_specs(DEFAULT_FIELDS, standard_column),
            from_header: false,
        }
    }

    /// Takes the field list of a `#Fields:` line, rejecting one that cannot give an event time.
    fn read_fields_directive(&mut self, names: &[&str]) -> LineOutcome {
        if names.contains(&"timestamp") && !names.contains(&"date") {
            return LineOutcome::Rejected(
                "this #Fields line lists real-time log fields (timestamp, no date): use format aws_cloudfront_realtime"
                    .to_string(),
            );
        }
        if !names.contains(&"date") || !names.contains(&"time") {
            return LineOutcome::Rejected(format!(
                "the #Fields line {} lacks the date or time field, which the event time comes from",
                quote_excerpt(&names.join(" "))
            ));
        }
        self.fields = field_specs(names.iter().copied(), standard_column);
        self.from_header = true;
        LineOutcome::Skipped("header")
    }
}

impl Default for CloudFrontParser {
    fn default() -> Self {
        CloudFrontParser::new()
    }
}

impl RecordParser for CloudFrontParser {
    fn parse(&mut self, record: &str, _ctx: &ParseContext<'_>) -> LineOutcome {
        let line = trim_record(record);
        if line.starts_with('#') {
            if let Some(names) = fields_directive(line) {
                return self.read_fields_directive(&names);
            }
            if OTHER_DIRECTIVES
                .iter()
                .any(|directive| line.starts_with(directive))
            {
                return LineOutcome::Skipped("header");
            }
            return LineOutcome::Rejected(format!("unknown W3C directive {}", quote_excerpt(line)));
        }

        let found = count_fields(line);
        if found < self.fields.len() {
            let expected = self.fields.len();
            let reason = if self.from_header {
                format!(
                    "truncated record: expected {expected} tab-separated fields as the #Fields line lists, found {found}"
                )
            } else {
                format!(
                    "expected {expected} tab-separated fields (the default CloudFront standard log fields), found {found}"
                )
            };
            return LineOutcome::Rejected(reason);
        }
        match build_event(Format::AwsCloudFront, &self.fields, line) {
            Ok(event) => LineOutcome::Event(Box::new(event)),
            Err(reason) => LineOutcome::Rejected(reason),
        }
    }
}

/// Removes a byte order mark and a trailing carriage return.
pub(super) fn trim_record(record: &str) -> &str {
    let record = record.strip_prefix('\u{feff}').unwrap_or(record);
    record.strip_suffix('\r').unwrap_or(record)
}

/// Number of tab-separated fields in `line`.
pub(super) fn count_fields(line: &str) -> usize {
    memchr::memchr_iter(b'\t', line.as_bytes()).count() + 1
}

/// Builds the event of one data line whose fields `fields` names, in order.
///
/// Values beyond the list become attributes `extra_1`, `extra_2`, ...
pub(super) fn build_event(
    format: Format,
    fields: &[FieldSpec],
    line: &str,
) -> Result<Event, String> {
    let mut record = Record::new(format);
    let mut extras = 0;
    for (index, value) in line.split('\t').enumerate() {
        match fields.get(index) {
            Some(field) => record.apply(index, field, value)?,
            None => {
                extras += 1;
                if let Some(value) = present(value) {
                    let decoded = decode_layer(value);
                    record.push_attribute(&format!("extra_{extras}"), &decoded);
                }
            }
        }
    }
    record.finish()
}

/// Returns `None` for the `-` and empty values that mean "not logged".
fn present(value: &str) -> Option<&str> {
    match value {
        "" | "-" => None,
        value => Some(value),
    }
}

/// Removes CloudFront's own percent-encoding from a value.
///
/// `%2F` and escapes of bytes that do not form UTF-8 stay encoded, as the
/// driver's decoding of `path` keeps them.
pub(super) fn decode_layer(value: &str) -> Cow<'_, str> {
    if value.contains('%') {
        Cow::Owned(percent_decode_path(value))
    } else {
        Cow::Borrowed(value)
    }
}

/// The event being built, with the values that are only resolved after every field is seen.
struct Record<'a> {
    format: Format,
    event: Event,
    date: Option<(usize, &'a str)>,
    time_of_day: Option<(usize, &'a str)>,
    /// `date` and `time` as microseconds since the epoch.
    date_time: Option<i64>,
    epoch_seconds: Option<i64>,
    distribution_host: Option<String>,
}

impl<'a> Record<'a> {
    fn new(format: Format) -> Self {
        Record {
            format,
            event: Event::new(format.name(), 0),
            date: None,
            time_of_day: None,
            date_time: None,
            epoch_seconds: None,
            distribution_host: None,
        }
    }

    /// Stores the value of field number `index` in its column or as an attribute.
    fn apply(&mut self, index: usize, field: &FieldSpec, value: &'a str) -> Result<(), String> {
        let Some(value) = present(value) else {
            return Ok(());
        };
        let invalid = |kind: &str| {
            format!(
                "invalid {kind} {} in field {} ({})",
                quote_excerpt(value),
                index + 1,
                field.name
            )
        };
        let event = &mut self.event;
        match field.column {
            Column::Date => {
                self.date = Some((index, value));
                self.resolve_date_and_time()?;
            }
            Column::Time => {
                self.time_of_day = Some((index, value));
                self.resolve_date_and_time()?;
            }
            Column::EpochSeconds => {
                let micros = parse_seconds_as_micros(value).ok_or_else(|| invalid("timestamp"))?;
                self.epoch_seconds = Some(micros);
            }
            Column::ClientIp => set_client_address(event, value),
            Column::ClientPort => {
                let port = parse_digits(value)
                    .and_then(|port| u16::try_from(port).ok())
                    .ok_or_else(|| invalid("port"))?;
                event.client_port = Some(i32::from(port));
            }
            Column::Method => event.method = Some(decode_layer(value).into_owned()),
            Column::Scheme => event.scheme = Some(value.to_string()),
            Column::HttpVersion => event.http_version = Some(value.to_string()),
            Column::ViewerHost => event.host = Some(decode_layer(value).into_owned()),
            Column::DistributionHost => {
                let host = decode_layer(value).into_owned();
                self.push_attribute(&field.name, &host);
                self.distribution_host = Some(host);
            }
            Column::UriStem => self.set_path(field, value, false),
            Column::UriStemWithQuery => self.set_path(field, value, true),
            Column::UriQuery => {
                let query = decode_layer(value);
                if query != value {
                    self.push_attribute(&field.name, value);
                }
                self.event.query = Some(query.into_owned());
            }
            Column::Status => self
                .set_status(field, value)
                .map_err(|()| invalid("status"))?,
            Column::RequestBytes => {
                event.request_bytes =
                    Some(parse_digits(value).ok_or_else(|| invalid("byte count"))?);
            }
            Column::ResponseBytes => {
                event.response_bytes =
                    Some(parse_digits(value).ok_or_else(|| invalid("byte count"))?);
            }
            Column::TimeTaken => {
                let micros = parse_seconds_as_micros(value).ok_or_else(|| invalid("number"))?;
                event.duration_ms = Some(micros as f64 / 1000.0);
            }
            Column::RequestId => event.request_id = Some(value.to_string()),
            Column::ForwardedFor => event.forwarded_for = Some(decode_layer(value).into_owned()),
            Column::UserAgent => self.set_user_agent(field, value),
            Column::Referer => event.referer = Some(decode_layer(value).into_owned()),
            Column::Cookie => self.push_attribute(COOKIE_ATTRIBUTE, &decode_layer(value)),
            Column::Attribute => self.push_attribute(&field.name, &decode_layer(value)),
        }
        Ok(())
    }

    /// Parses `date` and `time` once both are seen, so a bad value is reported before later fields.
    fn resolve_date_and_time(&mut self) -> Result<(), String> {
        if let (Some(date), Some(time_of_day)) = (self.date, self.time_of_day) {
            self.date_time = Some(parse_date_and_time(date, time_of_day)?);
        }
        Ok(())
    }

    /// Sets `path` (and `query`, for a stem that carries it) with CloudFront's encoding removed.
    fn set_path(&mut self, field: &FieldSpec, value: &str, may_carry_query: bool) {
        let decoded = decode_layer(value);
        if decoded != value {
            self.push_attribute(&field.name, value);
        }
        let (path, query) = match decoded.split_once('?') {
            Some((path, query)) if may_carry_query => (path, Some(query)),
            _ => (decoded.as_ref(), None),
        };
        self.event.path = Some(path.to_string());
        if let Some(query) = query.filter(|query| !query.is_empty()) {
            self.event.query = Some(query.to_string());
        }
    }

    /// Sets `status`. A `000` (no response was sent) stays an attribute instead.
    fn set_status(&mut self, field: &FieldSpec, value: &str) -> Result<(), ()> {
        if value == "000" {
            self.push_attribute(&field.name, value);
            return Ok(());
        }
        let status = parse_digits(value)
            .and_then(|status| i32::try_from(status).ok())
            .ok_or(())?;
        self.event.status = Some(status);
        Ok(())
    }

    /// Sets `user_agent`, decoding a second time when CloudFront encoded it twice.
    fn set_user_agent(&mut self, field: &FieldSpec, value: &str) {
        let once = decode_layer(value);
        if once.contains("%20") && !once.contains(' ') {
            let twice = percent_decode_path(&once);
            self.push_attribute(&field.name, value);
            self.event.user_agent = Some(twice);
        } else {
            self.event.user_agent = Some(once.into_owned());
        }
    }

    fn push_attribute(&mut self, name: &str, value: &str) {
        self.event
            .attributes
            .push((name.to_string(), value.to_string()));
    }

    /// Resolves `time` and `host`, rejecting a record without a time.
    fn finish(mut self) -> Result<Event, String> {
        self.event.time = match self.epoch_seconds.or(self.date_time) {
            Some(micros) => micros,
            None if self.format == Format::AwsCloudFrontRealtime => {
                return Err("missing the timestamp field".to_string());
            }
            None => return Err("missing the date or time field".to_string()),
        };
        if self.event.host.is_none() {
            self.event.host = self.distribution_host;
        }
        Ok(self.event)
    }
}

/// Parses the `date` and `time` fields, both UTC, into microseconds since the epoch.
fn parse_date_and_time(
    (date_index, date): (usize, &str),
    (time_index, time_of_day): (usize, &str),
) -> Result<i64, String> {
    // Joined on the stack as `dateTtime`, the ISO 8601 form.
    let mut buffer = [0u8; 40];
    let length = date.len() + 1 + time_of_day.len();
    let joined = buffer.get_mut(..length).map(|joined| {
        joined[..date.len()].copy_from_slice(date.as_bytes());
        joined[date.len()] = b'T';
        joined[date.len() + 1..].copy_from_slice(time_of_day.as_bytes());
        &*joined
    });
    joined
        .and_then(|joined| std::str::from_utf8(joined).ok())
        .and_then(parse_iso8601)
        .ok_or_else(|| {
            format!(
                "invalid date and time {} {} in fields {} and {} (date, time)",
                quote_excerpt(date),
                quote_excerpt(time_of_day),
                date_index + 1,
                time_index + 1
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::formats::test_support::{expect_event, expect_rejection};
    use crate::redact::Redactor;

    const HEADER: &str = concat!(
        "#Fields: date time x-edge-location sc-bytes c-ip cs-method cs(Host) cs-uri-stem ",
        "sc-status cs(Referer) cs(User-Agent) cs-uri-query cs(Cookie) x-edge-result-type ",
        "x-edge-request-id x-host-header cs-protocol cs-bytes time-taken x-forwarded-for ",
        "ssl-protocol ssl-cipher x-edge-response-result-type cs-protocol-version fle-status ",
        "fle-encrypted-fields c-port time-to-first-byte x-edge-detailed-result-type ",
        "sc-content-type sc-content-len sc-range-start sc-range-end"
    );

    /// Builds a data line of the default layout, with a few fields replaced by name.
    fn line_with(replacements: &[(&str, &str)]) -> String {
        let mut values = [
            "2019-12-04",
            "21:02:31",
            "LAX1",
            "392",
            "192.0.2.10",
            "GET",
            "d111111abcdef8.cloudfront.net",
            "/index.html",
            "200",
            "-",
            "Mozilla/5.0%20(Windows%20NT%2010.0)",
            "-",
            "-",
            "Hit",
            "SOX4xwn4XV6Q4rgb7XiVGOHms_BGlTAC4KyHmureZmBNrjGdRLiNIQ==",
            "www.example.com",
            "https",
            "23",
            "0.001",
            "-",
            "TLSv1.2",
            "ECDHE-RSA-AES128-GCM-SHA256",
            "Hit",
            "HTTP/2.0",
            "-",
            "-",
            "11040",
            "0.001",
            "Hit",
            "text/html",
            "78",
            "-",
            "-",
        ];
        for (name, value) in replacements {
            let index = DEFAULT_FIELDS
                .iter()
                .position(|field| field == name)
                .expect("a default field name");
            values[index] = value;
        }
        values.join("\t")
    }

    fn parse_lines(lines: &[&str]) -> Vec<LineOutcome> {
        let redactor = Redactor::new(b"test".to_vec(), 1);
        let ctx = ParseContext::new(&redactor);
        let mut parser = CloudFrontParser::new();
        lines.iter().map(|line| parser.parse(line, &ctx)).collect()
    }

    fn parse_event(line: &str) -> Event {
        let outcome = parse_lines(&[line]).pop().expect("one outcome");
        expect_event(line, outcome)
    }

    fn rejection(line: &str) -> String {
        let outcome = parse_lines(&[line]).pop().expect("one outcome");
        expect_rejection(line, outcome)
    }

    #[test]
    fn default_layout_maps_columns() {
        let event = parse_event(&line_with(&[]));
        assert_eq!(event.source, "aws_cloudfront");
        // 2019-12-04T21:02:31Z
        assert_eq!(event.time, 1_575_493_351_000_000);
        assert_eq!(event.client_ip.as_deref(), Some("192.0.2.10"));
        assert_eq!(event.client_port, Some(11040));
        assert_eq!(event.method.as_deref(), Some("GET"));
        assert_eq!(event.scheme.as_deref(), Some("https"));
        assert_eq!(event.host.as_deref(), Some("www.example.com"));
        assert_eq!(event.path.as_deref(), Some("/index.html"));
        assert_eq!(event.query, None);
        assert_eq!(event.http_version.as_deref(), Some("HTTP/2.0"));
        assert_eq!(event.status, Some(200));
        assert_eq!(event.duration_ms, Some(1.0));
        assert_eq!(event.request_bytes, Some(23));
        assert_eq!(event.response_bytes, Some(392));
        assert_eq!(
            event.request_id.as_deref(),
            Some("SOX4xwn4XV6Q4rgb7XiVGOHms_BGlTAC4KyHmureZmBNrjGdRLiNIQ==")
        );
        assert_eq!(
            event.user_agent.as_deref(),
            Some("Mozilla/5.0 (Windows NT 10.0)")
        );
        assert_eq!(event.referer, None);
        assert!(!event.malformed);
    }

    #[test]
    fn default_layout_keeps_other_fields() {
        let event = parse_event(&line_with(&[]));
        let expected = [
            ("x-edge-location", "LAX1"),
            ("cs(Host)", "d111111abcdef8.cloudfront.net"),
            ("x-edge-result-type", "Hit"),
            ("ssl-protocol", "TLSv1.2"),
            ("ssl-cipher", "ECDHE-RSA-AES128-GCM-SHA256"),
            ("x-edge-response-result-type", "Hit"),
            ("time-to-first-byte", "0.001"),
            ("x-edge-detailed-result-type", "Hit"),
            ("sc-content-type", "text/html"),
            ("sc-content-len", "78"),
        ];
        let actual: Vec<(&str, &str)> = event
            .attributes
            .iter()
            .map(|(key, value)| (key.as_str(), value.as_str()))
            .collect();
        assert_eq!(actual, expected);
    }

    #[test]
    fn header_lines_are_skipped() {
        let outcomes = parse_lines(&["#Version: 1.0", HEADER, "#Remark: rotated"]);
        for outcome in outcomes {
            assert!(
                matches!(outcome, LineOutcome::Skipped("header")),
                "{outcome:?}"
            );
        }
    }

    #[test]
    fn header_sets_field_order() {
        let outcomes = parse_lines(&[
            "#Fields: time date cs-uri-stem sc-status c-ip",
            "21:02:31\t2019-12-04\t/a\t404\t2001:0db8::0001",
        ]);
        let event = expect_event("reordered line", outcomes.into_iter().nth(1).unwrap());
        assert_eq!(event.time, 1_575_493_351_000_000);
        assert_eq!(event.path.as_deref(), Some("/a"));
        assert_eq!(event.status, Some(404));
        assert_eq!(event.client_ip.as_deref(), Some("2001:db8::1"));
        assert_eq!(event.host, None);
    }

    #[test]
    fn later_header_replaces_earlier() {
        let outcomes = parse_lines(&[
            HEADER,
            "#Fields: date time cs-uri-stem",
            "2019-12-04\t21:02:31\t/b",
        ]);
        let event = expect_event("short layout", outcomes.into_iter().nth(2).unwrap());
        assert_eq!(event.path.as_deref(), Some("/b"));
    }

    #[test]
    fn truncated_line_is_rejected() {
        let full = line_with(&[]);
        let fields: Vec<&str> = full.split('\t').collect();
        let truncated = fields[..31].join("\t");
        let outcomes = parse_lines(&[HEADER, &truncated]);
        let reason = expect_rejection(&truncated, outcomes.into_iter().nth(1).unwrap());
        assert_eq!(
            reason,
            "truncated record: expected 33 tab-separated fields as the #Fields line lists, found 31"
        );
        assert_eq!(
            rejection(&truncated),
            "expected 33 tab-separated fields (the default CloudFront standard log fields), found 31"
        );
    }

    #[test]
    fn extra_fields_are_numbered() {
        let line = format!("{}\tnew\t-\tv%20w", line_with(&[]));
        let event = parse_event(&line);
        assert_eq!(event.attribute("extra_1"), Some("new"));
        assert_eq!(event.attribute("extra_2"), None);
        assert_eq!(event.attribute("extra_3"), Some("v w"));
    }

    #[test]
    fn double_encoded_path_and_query() {
        let event = parse_event(&line_with(&[
            ("cs-uri-stem", "/caf%25C3%25A9/a%2520b%252Fc"),
            ("cs-uri-query", "q=a%252Cb&x=%2520"),
        ]));
        assert_eq!(event.path.as_deref(), Some("/caf%C3%A9/a%20b%2Fc"));
        assert_eq!(event.query.as_deref(), Some("q=a%2Cb&x=%20"));
        assert_eq!(
            event.attribute("cs-uri-stem"),
            Some("/caf%25C3%25A9/a%2520b%252Fc")
        );
        assert_eq!(event.attribute("cs-uri-query"), Some("q=a%252Cb&x=%2520"));
    }

    #[test]
    fn one_endpoint_one_spelling() {
        // The same request path, sent raw and sent percent-encoded.
        let raw = parse_event(&line_with(&[("cs-uri-stem", "/caf%C3%A9/a%20b")]));
        let encoded = parse_event(&line_with(&[("cs-uri-stem", "/caf%25C3%25A9/a%2520b")]));
        let final_path = |event: &Event| percent_decode_path(event.path.as_deref().unwrap());
        assert_eq!(final_path(&raw), "/café/a b");
        assert_eq!(final_path(&encoded), "/café/a b");
    }

    #[test]
    fn plain_path_keeps_no_raw_copy() {
        let event = parse_event(&line_with(&[("cs-uri-query", "source=global")]));
        assert_eq!(event.query.as_deref(), Some("source=global"));
        assert_eq!(event.attribute("cs-uri-stem"), None);
        assert_eq!(event.attribute("cs-uri-query"), None);
    }

    #[test]
    fn twice_encoded_user_agent() {
        let event = parse_event(&line_with(&[(
            "cs(User-Agent)",
            "Mozilla/5.0%2520(X11;%2520Linux)",
        )]));
        assert_eq!(
            event.user_agent.as_deref(),
            Some("Mozilla/5.0 (X11; Linux)")
        );
        assert_eq!(
            event.attribute("cs(User-Agent)"),
            Some("Mozilla/5.0%2520(X11;%2520Linux)")
        );
    }

    #[test]
    fn status_000_is_unknown() {
        let event = parse_event(&line_with(&[("sc-status", "000")]));
        assert_eq!(event.status, None);
        assert_eq!(event.attribute("sc-status"), Some("000"));
    }

    #[test]
    fn forwarded_for_and_referer() {
        let event = parse_event(&line_with(&[
            ("x-forwarded-for", "203.0.113.9,%20198.51.100.2"),
            ("cs(Referer)", "https://example.com/search?q=a%2520b"),
        ]));
        assert_eq!(
            event.forwarded_for.as_deref(),
            Some("203.0.113.9, 198.51.100.2")
        );
        assert_eq!(
            event.referer.as_deref(),
            Some("https://example.com/search?q=a%20b")
        );
    }

    #[test]
    fn cookie_goes_to_cookie_attribute() {
        let event = parse_event(&line_with(&[(
            "cs(Cookie)",
            "session=abc123;%20theme=dark",
        )]));
        assert_eq!(
            event.attribute("cs-cookie"),
            Some("session=abc123; theme=dark")
        );
        assert_eq!(event.attribute("cs(Cookie)"), None);
    }

    #[test]
    fn distribution_host_fills_missing_host() {
        let event = parse_event(&line_with(&[("x-host-header", "-")]));
        assert_eq!(event.host.as_deref(), Some("d111111abcdef8.cloudfront.net"));
    }

    #[test]
    fn leap_second_time() {
        let event = parse_event(&line_with(&[("date", "2016-12-31"), ("time", "23:59:60")]));
        // 2016-12-31T23:59:59.999999Z
        assert_eq!(event.time, 1_483_228_799_999_999);
    }

    #[test]
    fn invalid_values_are_rejected() {
        assert_eq!(
            rejection(&line_with(&[("date", "2019-13-04")])),
            r#"invalid date and time "2019-13-04" "21:02:31" in fields 1 and 2 (date, time)"#
        );
        assert_eq!(
            rejection(&line_with(&[("sc-status", "OK")])),
            r#"invalid status "OK" in field 9 (sc-status)"#
        );
        assert_eq!(
            rejection(&line_with(&[("sc-bytes", "1k")])),
            r#"invalid byte count "1k" in field 4 (sc-bytes)"#
        );
        assert_eq!(
            rejection(&line_with(&[("time-taken", "fast")])),
            r#"invalid number "fast" in field 19 (time-taken)"#
        );
        assert_eq!(
            rejection(&line_with(&[("c-port", "70000")])),
            r#"invalid port "70000" in field 27 (c-port)"#
        );
        assert_eq!(
            rejection(&line_with(&[("date", "-")])),
            "missing the date or time field"
        );
    }

    #[test]
    fn headers_that_give_no_time_are_rejected() {
        let outcomes = parse_lines(&["#Fields: timestamp c-ip sc-status", "#Fields: c-ip"]);
        let reasons: Vec<String> = outcomes
            .into_iter()
            .map(|outcome| expect_rejection("header", outcome))
            .collect();
        assert_eq!(
            reasons[0],
            "this #Fields line lists real-time log fields (timestamp, no date): use format aws_cloudfront_realtime"
        );
        assert_eq!(
            reasons[1],
            r#"the #Fields line "c-ip" lacks the date or time field, which the event time comes from"#
        );
        assert_eq!(
            rejection("#fields\tts\tuid"),
            r##"unknown W3C directive "#fields\tts\tuid""##
        );
    }

    #[test]
    fn other_formats_are_rejected() {
        let clf =
            r#"127.0.0.1 - frank [10/Oct/2000:13:55:36 -0700] "GET /a.gif HTTP/1.0" 200 2326"#;
        assert_eq!(
            rejection(clf),
            "expected 33 tab-separated fields (the default CloudFront standard log fields), found 1"
        );
        let mut realtime = vec!["1587402060.123"; 43];
        realtime[1] = "192.0.2.10";
        assert_eq!(
            rejection(&realtime.join("\t")),
            r#"invalid date and time "1587402060.123" "192.0.2.10" in fields 1 and 2 (date, time)"#
        );
    }

    #[test]
    fn odd_input_does_not_panic() {
        for sample in [
            "",
            "#",
            "#Fields:",
            "\t\t\t",
            "ü\tü\tü",
            "2019-12-04\t21:02:31\t\u{0}",
        ] {
            let _ = parse_lines(&[sample, &line_with(&[])]);
        }
    }
}
