//! Checks shared by the fuzz targets of `apitrail-ingest`.
//!
//! Each target in `fuzz_targets/` hands its input to one of the `fuzz_*`
//! functions here. They parse the bytes through the ingest driver and
//! assert only that nothing panics and that the counts agree: every record
//! is accepted, rejected or skipped exactly once, and the batch has one row
//! per accepted event. When a record was accepted or skipped, parsing the
//! input in two chunks with one parser must give the same counts as parsing
//! it whole. libFuzzer's panic hook aborts on a panic even where the driver
//! catches it to reject a single line, so a parser panic is a crash here.
//!
//! Running a target needs cargo-fuzz (`cargo install cargo-fuzz`). On the
//! stable toolchain, build without a sanitizer, from the `ingest` folder:
//!
//! ```sh
//! cargo fuzz run --sanitizer none --release text_lb
//! ```
//!
//! `.ci/fuzz` runs every target for a bounded time. The unit test at the
//! end replays every file of `corpus/` through its target, so `cargo test`
//! in this folder checks the seeds without libFuzzer.

use std::collections::BTreeMap;
use std::sync::RwLock;

use apitrail_ingest::formats::generic_json::FieldConfig;
use apitrail_ingest::framing::records;
use apitrail_ingest::{Format, ParsedChunk};
use apitrail_ingest::{
    FrameState, IdentityConfig, JsonMapping, JsonMappingConfig, LineOutcome, ParseContext,
    RecordChunker, RecordParser, Redactor, Templater, TemplaterConfig, detect_format, new_parser,
    parse_records,
};

/// Text load balancer and proxy logs: space-separated fields, quoted and bracketed.
pub const TEXT_LOAD_BALANCERS: [Format; 7] = [
    Format::AwsAlb,
    Format::AwsElb,
    Format::Clf,
    Format::IngressNginx,
    Format::Haproxy,
    Format::Envoy,
    Format::Traefik,
];

/// Formats whose header line names the columns of the rows after it.
pub const HEADER_DRIVEN: [Format; 3] = [
    Format::AwsCloudFront,
    Format::AwsCloudFrontRealtime,
    Format::ZeekHttp,
];

/// JSON access logs of gateways, CDNs, cloud load balancers and IDS sensors.
pub const JSON_GATEWAYS: [Format; 11] = [
    Format::AwsApiGateway,
    Format::NginxJson,
    Format::EnvoyJson,
    Format::Kong,
    Format::Caddy,
    Format::Cloudflare,
    Format::AkamaiDs2,
    Format::GcpLb,
    Format::AzureAppGw,
    Format::AzureFrontDoor,
    Format::SuricataEve,
];

/// Documents that hold many requests each.
pub const DOCUMENTS: [Format; 2] = [Format::Har, Format::Otlp];

/// Formats whose parsers may return several events for one record.
const MULTI_EVENT: [Format; 4] = [
    Format::Har,
    Format::Otlp,
    Format::AzureAppGw,
    Format::AzureFrontDoor,
];

/// First line of a `generic_json` input that defines a mapping for the lines after it.
pub const MAPPING_PREFIX: &str = "#mapping ";

/// Parses `data` as each of `formats`, checks the counts, and runs detection on it.
pub fn fuzz_formats(formats: &[Format], data: &[u8]) {
    let settings = Settings::new();
    let ctx = settings.context(data, None);
    for &format in formats {
        check_parse(format, data, &ctx);
    }
    let _ = detect_format(data);
}

/// Parses `data` as the generic `json` format with fixed mappings, and with
/// a mapping that the input's first line defines when it starts with
/// [`MAPPING_PREFIX`].
pub fn fuzz_generic_json(data: &[u8]) {
    let settings = Settings::new();
    for mapping in fixed_mappings() {
        check_parse(Format::Json, data, &settings.context(data, Some(&mapping)));
    }
    let Some(rest) = data.strip_prefix(MAPPING_PREFIX.as_bytes()) else {
        return;
    };
    let (spec, body) = match rest.iter().position(|&byte| byte == b'\n') {
        Some(end) => (&rest[..end], &rest[end + 1..]),
        None => (rest, &[][..]),
    };
    let Ok(spec) = std::str::from_utf8(spec) else {
        return;
    };
    if let Ok(mapping) = JsonMapping::new(mapping_from_spec(spec)) {
        check_parse(Format::Json, body, &settings.context(body, Some(&mapping)));
    }
}

/// Checks the framer on `data` whole and cut into chunks, then detects its
/// format and parses it as that format.
pub fn fuzz_framing_and_detection(data: &[u8]) {
    let whole: Vec<(u64, &[u8])> = records(data, 1, FrameState::default())
        .map(|record| (record.line, record.bytes))
        .collect();
    let span = data.as_ptr_range();
    let mut previous_line = 0;
    for &(line, bytes) in &whole {
        assert!(line >= previous_line, "record lines go backwards");
        previous_line = line;
        let inside = bytes.is_empty()
            || (span.start <= bytes.as_ptr() && bytes.as_ptr_range().end <= span.end);
        assert!(inside, "a record's bytes lie outside the input");
    }

    let chunk_bytes = 1 + usize::from(data.first().copied().unwrap_or(0)) % 64;
    let piece = 1 + data.len() / 3;
    let mut chunker = RecordChunker::with_chunk_bytes(chunk_bytes);
    let mut chunks = Vec::new();
    for part in data.chunks(piece) {
        chunks.extend(chunker.push(part));
    }
    chunks.extend(chunker.finish());
    let joined: Vec<u8> = chunks.iter().flat_map(|c| c.data.iter().copied()).collect();
    assert_eq!(joined, data, "the chunks do not add up to the input");
    let mut chunked = Vec::new();
    for chunk in &chunks {
        chunked.extend(
            records(&chunk.data, chunk.first_line, chunk.state)
                .map(|record| (record.line, record.bytes.to_vec())),
        );
    }
    let whole_owned: Vec<(u64, Vec<u8>)> = whole
        .iter()
        .map(|&(line, bytes)| (line, bytes.to_vec()))
        .collect();
    assert_eq!(chunked, whole_owned, "chunked framing differs from whole");

    if let Some(format) = detect_format(data) {
        let settings = Settings::new();
        check_parse(format, data, &settings.context(data, None));
    }
}

/// Values that a parse context borrows, built once per input.
struct Settings {
    redactor: Redactor,
    identity: IdentityConfig,
    templater: RwLock<Templater>,
}

impl Settings {
    fn new() -> Self {
        // Low thresholds so that a few fuzzed paths already turn a position into a parameter.
        let config = TemplaterConfig {
            min_distinct_values: 2,
            min_distinct_consumers: 1,
            ..TemplaterConfig::default()
        };
        Settings {
            redactor: Redactor::new(b"fuzz-key".to_vec(), 1),
            identity: IdentityConfig::default(),
            templater: RwLock::new(Templater::new(config).unwrap_or_default()),
        }
    }

    /// Returns a plain context for inputs of odd length and one with a
    /// sensor, the identity rules and the learning templater for the others,
    /// so both paths of the driver are fuzzed.
    fn context<'a>(&'a self, data: &[u8], mapping: Option<&'a JsonMapping>) -> ParseContext<'a> {
        let plain = ParseContext {
            json_mapping: mapping,
            ..ParseContext::new(&self.redactor)
        };
        if data.len() % 2 == 1 {
            return plain;
        }
        ParseContext {
            sensor: Some("fuzz"),
            identity: Some(&self.identity),
            templater: Some(&self.templater),
            ..plain
        }
    }
}

/// A parser that checks and counts what the format's parser returns.
struct Checked {
    format: Format,
    inner: Box<dyn RecordParser>,
    /// Calls that returned one or more events.
    calls_with_events: u64,
    events: u64,
}

impl Checked {
    fn new(format: Format) -> Self {
        Checked {
            format,
            inner: new_parser(format),
            calls_with_events: 0,
            events: 0,
        }
    }
}

impl RecordParser for Checked {
    fn parse(&mut self, record: &str, ctx: &ParseContext<'_>) -> LineOutcome {
        let outcome = self.inner.parse(record, ctx);
        let events = match &outcome {
            LineOutcome::Event(event) => std::slice::from_ref(event.as_ref()),
            LineOutcome::Events(events) => {
                assert!(
                    !events.is_empty(),
                    "{}: an empty list of events leaves the record uncounted",
                    self.format
                );
                events.as_slice()
            }
            LineOutcome::Skipped(tag) => {
                assert!(!tag.is_empty(), "{}: empty skip tag", self.format);
                return outcome;
            }
            LineOutcome::Rejected(reason) => {
                assert!(!reason.is_empty(), "{}: empty reject reason", self.format);
                return outcome;
            }
        };
        for event in events {
            assert_eq!(event.source, self.format.name(), "event source");
        }
        self.calls_with_events += 1;
        self.events += events.len() as u64;
        outcome
    }
}

/// Totals of one parse, to compare a whole parse with a chunked one.
#[derive(Debug, PartialEq, Eq)]
struct Counts {
    accepted: u64,
    rejected: u64,
    skipped: u64,
}

/// Parses `data` as `format` whole and, when some record is accepted or
/// skipped, in two chunks with one parser, checking the counts of both.
fn check_parse(format: Format, data: &[u8], ctx: &ParseContext<'_>) {
    let record_count = records(data, 1, FrameState::default()).count() as u64;
    let mut parser = Checked::new(format);
    let chunk = parse_records(format, &mut parser, data, 1, FrameState::default(), ctx);
    check_counts(format, &chunk, &parser, record_count);
    let whole = Counts {
        accepted: chunk.report.accepted,
        rejected: chunk.report.rejected,
        skipped: chunk.report.skipped,
    };
    // When every record is rejected, a chunked parse can differ only by its
    // framing, which `fuzz_framing_and_detection` checks on its own.
    if whole.accepted == 0 && whole.skipped == 0 {
        return;
    }

    let mut chunker = RecordChunker::with_chunk_bytes(data.len() / 2 + 1);
    let mut chunks = chunker.push(data);
    chunks.extend(chunker.finish());
    let mut parser = Checked::new(format);
    let mut split = Counts {
        accepted: 0,
        rejected: 0,
        skipped: 0,
    };
    for part in &chunks {
        let chunk = parse_records(
            format,
            &mut parser,
            &part.data,
            part.first_line,
            part.state,
            ctx,
        );
        assert_eq!(chunk.batch.num_rows() as u64, chunk.report.accepted);
        split.accepted += chunk.report.accepted;
        split.rejected += chunk.report.rejected;
        split.skipped += chunk.report.skipped;
    }
    assert_eq!(
        split, whole,
        "{format}: counts differ when the input is cut in two chunks"
    );
}

/// Asserts that every record was counted once and the batch matches the report.
fn check_counts(format: Format, chunk: &ParsedChunk, parser: &Checked, record_count: u64) {
    let report = &chunk.report;
    assert_eq!(
        report.rejected + report.skipped + parser.calls_with_events,
        record_count,
        "{format}: records counted as rejected, skipped or with events"
    );
    assert_eq!(report.accepted, parser.events, "{format}: accepted events");
    if !MULTI_EVENT.contains(&format) {
        assert_eq!(
            report.accepted + report.rejected + report.skipped,
            record_count,
            "{format}: accepted + rejected + skipped"
        );
    }
    assert_eq!(
        chunk.batch.num_rows() as u64,
        report.accepted,
        "{format}: batch rows"
    );
    assert_eq!(
        chunk.rejects.len() as u64,
        report.rejected,
        "{format}: rejects"
    );
    assert_eq!(report.error_count, report.rejected, "{format}: error count");
    assert_eq!(
        report.skipped_reasons.values().sum::<u64>(),
        report.skipped,
        "{format}: skip reasons"
    );
    for error in &report.errors {
        assert!(
            !error.reason.starts_with("internal error"),
            "{format}: the parser panicked on line {}",
            error.line
        );
    }
}

/// Mappings that together read every column, with each time format.
fn fixed_mappings() -> Vec<JsonMapping> {
    let specs = [
        "time=ts|rfc3339 url=url status=status duration_ms=took|ms client_ip=ip consumer=user.id",
        "time=t|epoch_ms request=req request_bytes=in response_bytes=out user_agent=headers.ua[0] \
         upstream_status=up.status client_port=port http_version=proto",
        "time=time|clf method=m host=h path=p query=q referer=r forwarded_for=xff \
         consumer_kind=kind auth_scheme=auth upstream=up trace_id=trace request_id=id;rid",
        "time=when|%d.%m.%Y %H:%M:%S duration_ms=d|ns sensor=s scheme=sc",
    ];
    specs
        .iter()
        .map(|spec| JsonMapping::new(mapping_from_spec(spec)).expect("fixed mappings are valid"))
        .collect()
}

/// Builds a mapping from `column=path[;path...][|option]` entries separated by spaces.
///
/// The option is the `format` of `time` and the `unit` of `duration_ms`.
/// A pattern with spaces works only as the last entry, which is enough for
/// the fuzzer to reach the strftime formats.
fn mapping_from_spec(spec: &str) -> JsonMappingConfig {
    let mut fields = BTreeMap::new();
    let mut entries = spec.split(' ').peekable();
    while let Some(entry) = entries.next() {
        let Some((column, rest)) = entry.split_once('=') else {
            continue;
        };
        let rest = if column == "time" && entries.peek().is_some_and(|next| !next.contains('=')) {
            let tail: Vec<&str> = entries.by_ref().collect();
            format!("{rest} {}", tail.join(" "))
        } else {
            rest.to_string()
        };
        let (paths, option) = match rest.split_once('|') {
            Some((paths, option)) => (paths, Some(option.to_string())),
            None => (rest.as_str(), None),
        };
        let mut field = FieldConfig {
            paths: paths.split(';').map(str::to_string).collect(),
            ..FieldConfig::default()
        };
        match column {
            "time" => field.format = option,
            "duration_ms" => field.unit = option,
            _ => {}
        }
        fields.insert(column.to_string(), field);
    }
    JsonMappingConfig {
        name: "fuzz".to_string(),
        fields,
        attributes: Default::default(),
        strip_prefix: None,
        sensor: Some("fuzz-mapping".to_string()),
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    /// Runs every file of `corpus/<target>` through `check`.
    fn replay(target: &str, check: fn(&[u8])) {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("corpus")
            .join(target);
        let entries = std::fs::read_dir(&dir)
            .unwrap_or_else(|error| panic!("failed to read {}: {error}", dir.display()));
        let mut count = 0;
        for entry in entries {
            let path = entry.expect("corpus entry").path();
            let data = std::fs::read(&path).expect("corpus file");
            check(&data);
            count += 1;
        }
        assert!(count > 0, "no seeds in {}", dir.display());
    }

    #[test]
    fn text_load_balancer_seeds() {
        replay("text_lb", |data| fuzz_formats(&TEXT_LOAD_BALANCERS, data));
    }

    #[test]
    fn header_driven_seeds() {
        replay("header_tsv", |data| fuzz_formats(&HEADER_DRIVEN, data));
    }

    #[test]
    fn json_gateway_seeds() {
        replay("json_gateways", |data| fuzz_formats(&JSON_GATEWAYS, data));
    }

    #[test]
    fn document_seeds() {
        replay("documents", |data| fuzz_formats(&DOCUMENTS, data));
    }

    #[test]
    fn generic_json_seeds() {
        replay("generic_json", fuzz_generic_json);
    }

    #[test]
    fn framing_seeds() {
        replay("framing_detect", fuzz_framing_and_detection);
    }

    #[test]
    fn fixed_mappings_are_valid() {
        assert_eq!(fixed_mappings().len(), 4);
    }
}
