//! Amazon CloudFront real-time logs (`aws_cloudfront_realtime`).
//!
//! CloudFront delivers real-time log records to Kinesis Data Streams as
//! tab-separated lines without a header. Each record contains the fields that the
//! real-time log configuration selects, always in the order of CloudFront's
//! documented field list, whose full form is:
//!
//! ```text
//! timestamp c-ip time-to-first-byte sc-status sc-bytes cs-method cs-protocol
//! cs-host cs-uri-stem cs-bytes x-edge-location x-edge-request-id x-host-header
//! time-taken cs-protocol-version c-ip-version cs-user-agent cs-referer cs-cookie
//! cs-uri-query x-edge-response-result-type x-forwarded-for ssl-protocol
//! ssl-cipher x-edge-result-type fle-encrypted-fields fle-status sc-content-type
//! sc-content-len sc-range-start sc-range-end c-port x-edge-detailed-result-type
//! c-country cs-accept-encoding cs-accept cache-behavior-path-pattern cs-headers
//! cs-header-names cs-headers-count origin-fbl origin-lbl asn
//! ```
//!
//! Without a header the parser expects all 43 fields in that order. A record
//! with another number of fields is rejected with the count it expected. For a
//! configuration that selects fewer fields, the operator prepends one line
//! `#Fields:` followed by the selected names in that order, separated by
//! spaces or tabs, as in CloudFront's standard logs. The parser keeps the list
//! of the last such line, and field names it does not know become attributes.
//! The other W3C directives, such as `#Version:`, are skipped, so W3C files
//! whose `#Fields:` line lists real-time field names are read too.
//!
//! | field | column |
//! |---|---|
//! | `timestamp` (epoch seconds, with milliseconds) | `time` |
//! | `c-ip` | `client_ip` |
//! | `c-port` | `client_port` |
//! | `cs-method` | `method` |
//! | `cs-protocol` | `scheme` |
//! | `cs-host`, else `x-host-header` | `host` |
//! | `cs-uri-stem` (path and query) | `path`, `query` |
//! | `cs-uri-query` | `query` |
//! | `cs-protocol-version` | `http_version` |
//! | `sc-status` | `status` |
//! | `time-taken` (seconds) | `duration_ms` |
//! | `cs-bytes` | `request_bytes` |
//! | `sc-bytes` | `response_bytes` |
//! | `x-edge-request-id` | `request_id` |
//! | `x-forwarded-for` | `forwarded_for` |
//! | `cs-user-agent` | `user_agent` |
//! | `cs-referer` | `referer` |
//!
//! `timestamp` is when the edge server finished responding, so the event time
//! is the END of the request. Unlike standard logs, `cs-host` is the `Host`
//! header of the viewer and `x-host-header` the distribution's domain name,
//! which is also kept as an attribute. `cs-uri-stem` carries the query string
//! too. Values are decoded, `000` statuses and other fields are kept exactly as
//! for standard logs (see [`super::cloudfront`]). `cs-cookie` and `cs-headers`
//! go to attributes of those names, which the driver redacts: it hashes cookie
//! values, and the credentials of `Authorization` and cookie lines in the
//! decoded header list.
//!
//! NOTE: no real-time record from CloudFront was available while writing this
//! parser. It follows the field list of the CloudFront developer guide and
//! assumes the same `%XX` encoding as standard logs.

use crate::format::Format;
use crate::formats::RecordParser;
use crate::formats::cloudfront::{
    Column, FieldSpec, OTHER_DIRECTIVES, build_event, count_fields, field_specs, fields_directive,
    trim_record,
};
use crate::parse::{LineOutcome, ParseContext};
use crate::text::quote_excerpt;

/// Every real-time log field, in the order CloudFront writes them.
pub(super) const ALL_FIELDS: [&str; 43] = [
    "timestamp",
    "c-ip",
    "time-to-first-byte",
    "sc-status",
    "sc-bytes",
    "cs-method",
    "cs-protocol",
    "cs-host",
    "cs-uri-stem",
    "cs-bytes",
    "x-edge-location",
    "x-edge-request-id",
    "x-host-header",
    "time-taken",
    "cs-protocol-version",
    "c-ip-version",
    "cs-user-agent",
    "cs-referer",
    "cs-cookie",
    "cs-uri-query",
    "x-edge-response-result-type",
    "x-forwarded-for",
    "ssl-protocol",
    "ssl-cipher",
    "x-edge-result-type",
    "fle-encrypted-fields",
    "fle-status",
    "sc-content-type",
    "sc-content-len",
    "sc-range-start",
    "sc-range-end",
    "c-port",
    "x-edge-detailed-result-type",
    "c-country",
    "cs-accept-encoding",
    "cs-accept",
    "cache-behavior-path-pattern",
    "cs-headers",
    "cs-header-names",
    "cs-headers-count",
    "origin-fbl",
    "origin-lbl",
    "asn",
];

/// Column of a real-time log field.
fn realtime_column(name: &str) -> Column {
    match name {
        "timestamp" => Column::EpochSeconds,
        "c-ip" => Column::ClientIp,
        "c-port" => Column::ClientPort,
        "cs-method" => Column::Method,
        "cs-protocol" => Column::Scheme,
        "cs-protocol-version" => Column::HttpVersion,
        "cs-host" => Column::ViewerHost,
        "x-host-header" => Column::DistributionHost,
        "cs-uri-stem" => Column::UriStemWithQuery,
        "cs-uri-query" => Column::UriQuery,
        "sc-status" => Column::Status,
        "cs-bytes" => Column::RequestBytes,
        "sc-bytes" => Column::ResponseBytes,
        "time-taken" => Column::TimeTaken,
        "x-edge-request-id" => Column::RequestId,
        "x-forwarded-for" => Column::ForwardedFor,
        "cs-user-agent" => Column::UserAgent,
        "cs-referer" => Column::Referer,
        "cs-cookie" => Column::Cookie,
        _ => Column::Attribute,
    }
}

/// Parser of one real-time log input, which remembers the last `#Fields:` line.
pub struct CloudFrontRealtimeParser {
    fields: Vec<FieldSpec>,
    /// Whether `fields` came from a `#Fields:` line rather than the full list.
    from_header: bool,
}

impl CloudFrontRealtimeParser {
    pub fn new() -> Self {
        CloudFrontRealtimeParser {
            fields: field_specs(ALL_FIELDS, realtime_column),
            from_header: false,
        }
    }

    /// Takes the field list of a `#Fields:` line, rejecting one that cannot give an event time.
    fn read_fields_directive(&mut self, names: &[&str]) -> LineOutcome {
        if names.contains(&"date") {
            return LineOutcome::Rejected(
                "this #Fields line lists standard log fields (date): use format aws_cloudfront"
                    .to_string(),
            );
        }
        if !names.contains(&"timestamp") {
            return LineOutcome::Rejected(format!(
                "the #Fields line {} lacks the timestamp field, which the event time comes from",
                quote_excerpt(&names.join(" "))
            ));
        }
        self.fields = field_specs(names.iter().copied(), realtime_column);
        self.from_header = true;
        LineOutcome::Skipped("header")
    }

    fn field_count_reason(&self, found: usize) -> String {
        let expected = self.fields.len();
        if self.from_header {
            format!(
                "expected {expected} tab-separated fields as the #Fields line lists, found {found}"
            )
        } else {
            format!(
                "expected {expected} tab-separated fields (every real-time log field, in CloudFront's order), \
                 found {found}. For a configuration that selects fewer fields, put a line \
                 \"#Fields: \" and their names before the records"
            )
        }
    }
}

impl Default for CloudFrontRealtimeParser {
    fn default() -> Self {
        CloudFrontRealtimeParser::new()
    }
}

impl RecordParser for CloudFrontRealtimeParser {
    fn parse(&mut self, record: &str, _ctx: &ParseContext<'_>) -> LineOutcome {
        let line = trim_record(record);
        if let Some(names) = fields_directive(line) {
            return self.read_fields_directive(&names);
        }
        if OTHER_DIRECTIVES
            .iter()
            .any(|directive| line.starts_with(directive))
        {
            return LineOutcome::Skipped("header");
        }
        let found = count_fields(line);
        if found != self.fields.len() {
            return LineOutcome::Rejected(self.field_count_reason(found));
        }
        match build_event(Format::AwsCloudFrontRealtime, &self.fields, line) {
            Ok(event) => LineOutcome::Event(Box::new(event)),
            Err(reason) => LineOutcome::Rejected(reason),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Event;
    use crate::formats::test_support::{expect_event, expect_rejection};
    use crate::redact::Redactor;

    /// Builds a full record, with a few fields replaced by name.
    fn record_with(replacements: &[(&str, &str)]) -> String {
        let mut values = [
            "1587402060.123",
            "2001:0db8::0001",
            "0.002",
            "200",
            "1302",
            "GET",
            "https",
            "api.example.com",
            "/v1/orders/42?expand=items",
            "412",
            "IAD89-C1",
            "tYqBcMRz3Smn0aIxRx7vmZYxaH2T6BdQ6Cqk7p0ukDRwNhJ7XPumPw==",
            "d111111abcdef8.cloudfront.net",
            "0.004",
            "HTTP/2.0",
            "IPv6",
            "curl/8.4.0",
            "-",
            "session=abc123;%20theme=dark",
            "expand=items",
            "Miss",
            "-",
            "TLSv1.3",
            "TLS_AES_128_GCM_SHA256",
            "Miss",
            "-",
            "-",
            "application/json",
            "1024",
            "-",
            "-",
            "49152",
            "Miss",
            "DE",
            "gzip",
            "application/json",
            "/v1/*",
            "Host:api.example.com%0AAuthorization:Bearer%20abcdefghij1234567890%0AX-Api-Key:k3yk3yk3y42%0ACookie:sid=s3cr3t%0A",
            "Host%0AAuthorization%0AX-Api-Key%0ACookie%0A",
            "4",
            "0.003",
            "0.003",
            "16509",
        ];
        for (name, value) in replacements {
            let index = ALL_FIELDS
                .iter()
                .position(|field| field == name)
                .expect("a real-time field name");
            values[index] = value;
        }
        values.join("\t")
    }

    fn parse_lines(lines: &[&str]) -> Vec<LineOutcome> {
        let redactor = Redactor::new(b"test".to_vec(), 1);
        let ctx = ParseContext::new(&redactor);
        let mut parser = CloudFrontRealtimeParser::new();
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
    fn full_record_maps_columns() {
        let event = parse_event(&record_with(&[]));
        assert_eq!(event.source, "aws_cloudfront_realtime");
        // 2020-04-20T17:01:00.123Z
        assert_eq!(event.time, 1_587_402_060_123_000);
        assert_eq!(event.client_ip.as_deref(), Some("2001:db8::1"));
        assert_eq!(event.client_port, Some(49152));
        assert_eq!(event.method.as_deref(), Some("GET"));
        assert_eq!(event.scheme.as_deref(), Some("https"));
        assert_eq!(event.host.as_deref(), Some("api.example.com"));
        assert_eq!(event.path.as_deref(), Some("/v1/orders/42"));
        assert_eq!(event.query.as_deref(), Some("expand=items"));
        assert_eq!(event.http_version.as_deref(), Some("HTTP/2.0"));
        assert_eq!(event.status, Some(200));
        assert_eq!(event.duration_ms, Some(4.0));
        assert_eq!(event.request_bytes, Some(412));
        assert_eq!(event.response_bytes, Some(1302));
        assert_eq!(
            event.request_id.as_deref(),
            Some("tYqBcMRz3Smn0aIxRx7vmZYxaH2T6BdQ6Cqk7p0ukDRwNhJ7XPumPw==")
        );
        assert_eq!(event.user_agent.as_deref(), Some("curl/8.4.0"));
        assert_eq!(event.referer, None);
        assert_eq!(event.forwarded_for, None);
    }

    #[test]
    fn full_record_keeps_other_fields() {
        let event = parse_event(&record_with(&[]));
        let expected = [
            ("time-to-first-byte", "0.002"),
            ("x-edge-location", "IAD89-C1"),
            ("x-host-header", "d111111abcdef8.cloudfront.net"),
            ("c-ip-version", "IPv6"),
            ("cs-cookie", "session=abc123; theme=dark"),
            ("x-edge-response-result-type", "Miss"),
            ("ssl-protocol", "TLSv1.3"),
            ("ssl-cipher", "TLS_AES_128_GCM_SHA256"),
            ("x-edge-result-type", "Miss"),
            ("sc-content-type", "application/json"),
            ("sc-content-len", "1024"),
            ("x-edge-detailed-result-type", "Miss"),
            ("c-country", "DE"),
            ("cs-accept-encoding", "gzip"),
            ("cs-accept", "application/json"),
            ("cache-behavior-path-pattern", "/v1/*"),
            (
                "cs-headers",
                "Host:api.example.com\nAuthorization:Bearer abcdefghij1234567890\n\
                 X-Api-Key:k3yk3yk3y42\nCookie:sid=s3cr3t\n",
            ),
            (
                "cs-header-names",
                "Host\nAuthorization\nX-Api-Key\nCookie\n",
            ),
            ("cs-headers-count", "4"),
            ("origin-fbl", "0.003"),
            ("origin-lbl", "0.003"),
            ("asn", "16509"),
        ];
        let actual: Vec<(&str, &str)> = event
            .attributes
            .iter()
            .map(|(key, value)| (key.as_str(), value.as_str()))
            .collect();
        assert_eq!(actual, expected);
    }

    #[test]
    fn headers_are_redacted_by_the_driver() {
        let redactor = Redactor::new(b"test".to_vec(), 1);
        let event = parse_event(&record_with(&[]));
        let headers =
            redactor.redact_attribute("cs-headers", event.attribute("cs-headers").unwrap());
        assert!(
            headers.starts_with("Host:api.example.com\nAuthorization:Bearer h1:"),
            "{headers}"
        );
        for secret in ["abcdefghij1234567890", "k3yk3yk3y42", "s3cr3t"] {
            assert!(!headers.contains(secret), "{headers}");
        }
        assert!(headers.contains("\nCookie:sid=h1:"), "{headers}");
        let cookie = redactor.redact_attribute("cs-cookie", event.attribute("cs-cookie").unwrap());
        assert!(!cookie.contains("abc123"), "{cookie}");
    }

    #[test]
    fn query_field_wins_over_stem() {
        let event = parse_event(&record_with(&[
            ("cs-uri-stem", "/search?q=a%2520b"),
            ("cs-uri-query", "q=a%2520b&page=2"),
        ]));
        assert_eq!(event.path.as_deref(), Some("/search"));
        assert_eq!(event.query.as_deref(), Some("q=a%20b&page=2"));
        assert_eq!(event.attribute("cs-uri-stem"), Some("/search?q=a%2520b"));
        assert_eq!(event.attribute("cs-uri-query"), Some("q=a%2520b&page=2"));
    }

    #[test]
    fn stem_without_query() {
        let event = parse_event(&record_with(&[
            ("cs-uri-stem", "/health"),
            ("cs-uri-query", "-"),
        ]));
        assert_eq!(event.path.as_deref(), Some("/health"));
        assert_eq!(event.query, None);
    }

    #[test]
    fn distribution_host_fills_missing_host() {
        let event = parse_event(&record_with(&[("cs-host", "-")]));
        assert_eq!(event.host.as_deref(), Some("d111111abcdef8.cloudfront.net"));
    }

    #[test]
    fn status_000_is_unknown() {
        let event = parse_event(&record_with(&[("sc-status", "000")]));
        assert_eq!(event.status, None);
        assert_eq!(event.attribute("sc-status"), Some("000"));
    }

    #[test]
    fn fields_line_selects_fields() {
        let outcomes = parse_lines(&[
            "#Fields: timestamp c-ip sc-status cs-uri-stem time-taken c-country",
            "1587402060.5\t192.0.2.10\t404\t/missing\t0.010\tFR",
            "1587402061\t192.0.2.11\t200\t/ok\t0.020\tDE",
        ]);
        let mut outcomes = outcomes.into_iter();
        assert!(matches!(
            outcomes.next(),
            Some(LineOutcome::Skipped("header"))
        ));
        let first = expect_event("first record", outcomes.next().unwrap());
        assert_eq!(first.time, 1_587_402_060_500_000);
        assert_eq!(first.status, Some(404));
        assert_eq!(first.path.as_deref(), Some("/missing"));
        assert_eq!(first.duration_ms, Some(10.0));
        assert_eq!(first.attribute("c-country"), Some("FR"));
        let second = expect_event("second record", outcomes.next().unwrap());
        assert_eq!(second.time, 1_587_402_061_000_000);
    }

    #[test]
    fn fields_line_with_tabs_and_new_fields() {
        let outcomes = parse_lines(&[
            "#Fields:\ttimestamp\tsc-status\tprimary-distribution-id",
            "1587402060.123\t200\tE1ABCDEF",
        ]);
        let event = expect_event("record", outcomes.into_iter().nth(1).unwrap());
        assert_eq!(event.status, Some(200));
        assert_eq!(event.attribute("primary-distribution-id"), Some("E1ABCDEF"));
    }

    #[test]
    fn w3c_file_with_realtime_fields() {
        let outcomes = parse_lines(&[
            "#Version: 1.0",
            "#Fields: timestamp cs-method cs-uri-stem sc-status",
            "1587402060.123\tPOST\t/v1/orders\t201",
        ]);
        let mut outcomes = outcomes.into_iter();
        for _ in 0..2 {
            assert!(matches!(
                outcomes.next(),
                Some(LineOutcome::Skipped("header"))
            ));
        }
        let event = expect_event("record", outcomes.next().unwrap());
        assert_eq!(event.method.as_deref(), Some("POST"));
        assert_eq!(event.status, Some(201));
    }

    #[test]
    fn wrong_field_count_names_expected_count() {
        let reason = rejection("1587402060.123\t192.0.2.10\t200");
        assert_eq!(
            reason,
            "expected 43 tab-separated fields (every real-time log field, in CloudFront's order), \
             found 3. For a configuration that selects fewer fields, put a line \"#Fields: \" \
             and their names before the records"
        );
        let outcomes = parse_lines(&["#Fields: timestamp sc-status", "1587402060.123"]);
        let reason = expect_rejection("short record", outcomes.into_iter().nth(1).unwrap());
        assert_eq!(
            reason,
            "expected 2 tab-separated fields as the #Fields line lists, found 1"
        );
    }

    #[test]
    fn invalid_values_are_rejected() {
        assert_eq!(
            rejection(&record_with(&[("timestamp", "2020-04-20T17:01:00Z")])),
            r#"invalid timestamp "2020-04-20T17:01:00Z" in field 1 (timestamp)"#
        );
        assert_eq!(
            rejection(&record_with(&[("sc-status", "2xx")])),
            r#"invalid status "2xx" in field 4 (sc-status)"#
        );
        assert_eq!(
            rejection(&record_with(&[("timestamp", "-")])),
            "missing the timestamp field"
        );
    }

    #[test]
    fn fields_lines_without_time_are_rejected() {
        let outcomes = parse_lines(&["#Fields: date time c-ip", "#Fields: c-ip sc-status"]);
        let reasons: Vec<String> = outcomes
            .into_iter()
            .map(|outcome| expect_rejection("header", outcome))
            .collect();
        assert_eq!(
            reasons[0],
            "this #Fields line lists standard log fields (date): use format aws_cloudfront"
        );
        assert_eq!(
            reasons[1],
            r#"the #Fields line "c-ip sc-status" lacks the timestamp field, which the event time comes from"#
        );
    }

    #[test]
    fn standard_log_line_is_rejected() {
        let mut standard = vec!["-"; 33];
        standard[0] = "2019-12-04";
        standard[1] = "21:02:31";
        let reason = rejection(&standard.join("\t"));
        assert!(
            reason.starts_with("expected 43 tab-separated fields"),
            "{reason}"
        );
        let mut same_count = vec!["-"; 43];
        same_count[0] = "2019-12-04";
        assert_eq!(
            rejection(&same_count.join("\t")),
            r#"invalid timestamp "2019-12-04" in field 1 (timestamp)"#
        );
    }

    #[test]
    fn detection_picks_realtime() {
        let full = format!(
            "{}\n{}\n",
            record_with(&[]),
            record_with(&[("sc-status", "404")])
        );
        assert_eq!(
            crate::detect::detect_format(full.as_bytes()),
            Some(Format::AwsCloudFrontRealtime)
        );
        let selected = "#Fields: timestamp c-ip sc-status cs-uri-stem\n\
                        1587402060.5\t192.0.2.10\t404\t/missing\n\
                        1587402061\t192.0.2.11\t200\t/ok\n";
        assert_eq!(
            crate::detect::detect_format(selected.as_bytes()),
            Some(Format::AwsCloudFrontRealtime)
        );
    }

    #[test]
    fn odd_input_does_not_panic() {
        for sample in ["", "#Fields:", "\t", "ü\tü", "#Fields: timestamp"] {
            let _ = parse_lines(&[sample, &record_with(&[])]);
        }
    }
}
