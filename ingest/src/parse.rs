//! The line-by-line driver shared by every format.
//!
//! A format parser only turns one line into a raw [`Event`] (or a skip or a
//! rejection). This module does the rest, identically for every format:
//! numbering lines, decoding bytes, isolating a parser panic to its line,
//! resolving the consumer (before redaction, since it hashes API keys and
//! reads JWT claims), normalising the path, redacting secrets, templating
//! the endpoint, then building the Arrow batch.
//!
//! When the context sets a [`FutureTolerance`], a record with an event
//! later than the present plus the tolerance is rejected before any of
//! that: a clock error or a wrong time unit would otherwise put the event
//! in a partition of the future. A record that yields several events is
//! rejected whole when any one of them is too far ahead, so the reject
//! reason and the rejects file account for every event it held.
//!
//! Templating runs once per chunk: a learning [`Templater`] first observes
//! every path of the chunk under one write lock, then templates them under
//! one read lock, so parallel parsers do not contend per line.

use std::collections::HashMap;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Mutex, RwLock};
use std::time::Duration;

use arrow::record_batch::RecordBatch;

use crate::envelope;
use crate::event::{Event, EventBatchBuilder};
use crate::format::Format;
use crate::formats::generic_json::JsonMapping;
use crate::formats::{self, RecordParser};
use crate::framing::{self, FrameState};
use crate::identity::IdentityConfig;
use crate::redact::Redactor;
use crate::report::{IngestReport, RejectedLine};
use crate::template::{Templater, template_path};
use crate::text::{decode_line, format_time_micros, percent_decode_path};

/// Result of a format parser for one line.
#[derive(Debug)]
pub enum LineOutcome {
    /// A request, with `path` and `query` exactly as logged (query without `?`).
    Event(Box<Event>),
    /// A valid record that is not an HTTP request; the reason is a short snake_case tag.
    Skipped(&'static str),
    /// Several requests from one record (a HAR capture, an OTLP export).
    Events(Vec<Event>),
    /// The line is not a record of this format.
    Rejected(String),
}

/// Attribute that lists a consumer's hashes under previous key versions, comma-separated.
pub const CONSUMER_ALIASES_ATTRIBUTE: &str = "consumer_aliases";

/// Consumers seen with hashes under previous key versions: consumer → aliases.
pub type ConsumerAliases = Mutex<HashMap<String, Vec<String>>>;

/// Per-request settings shared by every line of an input.
#[derive(Debug, Clone, Copy)]
pub struct ParseContext<'a> {
    /// Label of the gateway, load balancer or mirror that produced the input.
    pub sensor: Option<&'a str>,
    pub redactor: &'a Redactor,
    /// Consumer identity rules; `None` keeps a parser's consumer, else the client IP.
    pub identity: Option<&'a IdentityConfig>,
    /// Learning templater for `endpoint`; `None` applies the fixed rules of [`template_path`].
    pub templater: Option<&'a RwLock<Templater>>,
    /// Record of consumers with aliases, so a consumer map written under an
    /// old key still names them.
    pub aliases: Option<&'a ConsumerAliases>,
    /// Records starting at or before this line are parsed (so headers still
    /// set the parser's state) but not counted: an earlier attempt at the
    /// same batch stored them.
    pub skip_through_line: u64,
    /// Field mapping of the generic `json` format, which rejects every record without one.
    pub json_mapping: Option<&'a JsonMapping>,
    /// Latest event time accepted; `None` accepts any time.
    pub future_tolerance: Option<FutureTolerance>,
}

impl<'a> ParseContext<'a> {
    /// Creates a context with only a redactor: no sensor, fixed templating
    /// rules, no identity rules, no json mapping and no future tolerance.
    pub fn new(redactor: &'a Redactor) -> Self {
        ParseContext {
            sensor: None,
            redactor,
            identity: None,
            templater: None,
            aliases: None,
            skip_through_line: 0,
            json_mapping: None,
            future_tolerance: None,
        }
    }
}

/// How far after a reference time an event may be before its record is rejected.
///
/// The reference is the time the input arrived, read from a clock that the
/// caller passes in, so tests can fix it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FutureTolerance {
    /// Reference time in microseconds since the Unix epoch, UTC.
    pub now: i64,
    /// How far after `now` an event's time may be.
    pub tolerance: Duration,
}

impl FutureTolerance {
    /// Creates a tolerance around `now`, in microseconds since the Unix epoch.
    pub fn new(now: i64, tolerance: Duration) -> Self {
        FutureTolerance { now, tolerance }
    }

    /// Creates a tolerance around the system clock's current time.
    pub fn from_system_clock(tolerance: Duration) -> Self {
        FutureTolerance::new(chrono::Utc::now().timestamp_micros(), tolerance)
    }

    /// Latest accepted event time, in microseconds since the Unix epoch.
    pub fn latest(&self) -> i64 {
        let tolerance = i64::try_from(self.tolerance.as_micros()).unwrap_or(i64::MAX);
        self.now.saturating_add(tolerance)
    }

    /// Checks that no event is later than [`Self::latest`], returning the reject reason otherwise.
    pub(crate) fn check(&self, events: &[Event]) -> Result<(), String> {
        let latest = self.latest();
        let mut too_late = events.iter().filter(|event| event.time > latest);
        let Some(first) = too_late.next() else {
            return Ok(());
        };
        let limit = format!(
            "{} (the current time {} plus the future tolerance of {})",
            format_time_micros(latest),
            format_time_micros(self.now),
            describe_duration(self.tolerance),
        );
        let first_time = format_time_micros(first.time);
        let problem = match events.len() {
            1 => format!("the event time {first_time} is later than {limit}"),
            total => format!(
                "{} of the record's {total} events are later than {limit}, the first at {first_time}",
                1 + too_late.count()
            ),
        };
        Err(format!(
            "{problem}; check the clock of the source and the time format"
        ))
    }
}

/// Writes a tolerance in seconds when it is whole seconds, else in milliseconds.
fn describe_duration(duration: Duration) -> String {
    if duration.subsec_nanos() == 0 {
        format!("{} s", duration.as_secs())
    } else {
        format!("{} ms", duration.as_millis())
    }
}

/// Events, counts and rejects of one chunk of input.
#[derive(Debug)]
pub struct ParsedChunk {
    pub batch: RecordBatch,
    pub report: IngestReport,
    pub rejects: Vec<RejectedLine>,
}

/// Parses the records in `data` with a new parser for `format`, numbering
/// lines from `first_line`.
///
/// Blank lines are ignored without being counted. A final line without a
/// trailing newline is parsed like the others, so callers that stream must
/// pass only whole records (see [`crate::framing::RecordChunker`]).
pub fn parse_chunk(
    format: Format,
    data: &[u8],
    first_line: u64,
    ctx: &ParseContext<'_>,
) -> ParsedChunk {
    let mut parser = formats::new_parser(format);
    parse_records(
        format,
        parser.as_mut(),
        data,
        first_line,
        FrameState::default(),
        ctx,
    )
}

/// Parses the records in `data` with `parser`, which carries the state that
/// earlier chunks of the same input set. `state` is the framer state at the
/// start of `data`.
pub fn parse_records(
    format: Format,
    parser: &mut dyn RecordParser,
    data: &[u8],
    first_line: u64,
    state: FrameState,
    ctx: &ParseContext<'_>,
) -> ParsedChunk {
    let mut accepted = AcceptedEvents::new(ctx);
    let mut report = IngestReport {
        format: Some(format.name().to_string()),
        ..IngestReport::default()
    };
    let mut rejects = Vec::new();

    for record in framing::records(data, first_line, state) {
        let line = decode_line(record.bytes);
        let outcome = parse_record_isolated(format, parser, &line, ctx);
        if record.line <= ctx.skip_through_line {
            continue;
        }
        let outcome = match ctx.future_tolerance {
            Some(tolerance) => reject_future(outcome, &tolerance),
            None => outcome,
        };
        match outcome {
            LineOutcome::Event(mut event) => {
                report.accepted += 1;
                normalise(&mut event, ctx);
                accepted.add_boxed(event);
            }
            LineOutcome::Events(many) => {
                report.accepted += many.len() as u64;
                for mut event in many {
                    normalise(&mut event, ctx);
                    accepted.add(event);
                }
            }
            LineOutcome::Skipped(reason) => report.record_skip(reason),
            LineOutcome::Rejected(reason) => {
                report.rejected += 1;
                report.record_error(record.line, reason.clone());
                rejects.push(RejectedLine {
                    line: record.line,
                    reason,
                    text: ctx.redactor.scrub_text(&line),
                });
            }
        }
    }

    ParsedChunk {
        batch: accepted.finish(ctx),
        report,
        rejects,
    }
}

/// Normalises, redacts and templates events that a producer other than a
/// record parser built, such as the server's OTLP receivers, and builds
/// their Arrow batch.
///
/// The events get the steps that [`parse_records`] applies to a parser's
/// events: the context's sensor where an event has none, identity rules,
/// path normalisation, redaction, then templating. The caller checks event
/// times against the future tolerance, since it reports each rejection.
pub fn events_to_batch(events: Vec<Event>, ctx: &ParseContext<'_>) -> RecordBatch {
    let mut accepted = AcceptedEvents::new(ctx);
    for mut event in events {
        normalise(&mut event, ctx);
        accepted.add(event);
    }
    accepted.finish(ctx)
}

/// The accepted events of a chunk, on their way into its batch.
///
/// Without a learning templater each event goes into the batch as soon as it
/// is normalised, while it is still in the cache. A learning templater must
/// observe every path of the chunk before it templates one, so then the
/// events are held until the end of the chunk.
struct AcceptedEvents {
    builder: EventBatchBuilder,
    awaiting_templater: Option<Vec<Event>>,
}

impl AcceptedEvents {
    fn new(ctx: &ParseContext<'_>) -> Self {
        AcceptedEvents {
            builder: EventBatchBuilder::new(),
            awaiting_templater: ctx.templater.map(|_| Vec::new()),
        }
    }

    fn add(&mut self, event: Event) {
        match &mut self.awaiting_templater {
            Some(events) => events.push(event),
            None => self.builder.push(&event),
        }
    }

    /// [`Self::add`] that moves the event out of its box only when it is held.
    fn add_boxed(&mut self, event: Box<Event>) {
        match &mut self.awaiting_templater {
            Some(events) => events.push(*event),
            None => self.builder.push(&event),
        }
    }

    fn finish(mut self, ctx: &ParseContext<'_>) -> RecordBatch {
        if let (Some(mut events), Some(templater)) = (self.awaiting_templater.take(), ctx.templater)
        {
            template_learned(&mut events, templater);
            for event in &events {
                self.builder.push(event);
            }
        }
        self.builder.finish()
    }
}

/// Lets the templater learn from the chunk's paths, then sets every endpoint.
fn template_learned(events: &mut [Event], templater: &RwLock<Templater>) {
    // A panic elsewhere while the lock was held leaves a usable state: the
    // templater's methods keep it consistent between calls.
    {
        let mut learner = templater.write().unwrap_or_else(|e| e.into_inner());
        for event in events.iter() {
            if let Some(path) = &event.path {
                learner.observe(event.host.as_deref(), path, event.consumer.as_deref());
            }
        }
    }
    let reader = templater.read().unwrap_or_else(|e| e.into_inner());
    for event in events.iter_mut() {
        if let Some(path) = &event.path {
            event.endpoint = Some(reader.template(event.host.as_deref(), path).endpoint);
        }
    }
}

/// Rejects a record whose events include one later than the tolerance allows.
fn reject_future(outcome: LineOutcome, tolerance: &FutureTolerance) -> LineOutcome {
    let checked = match &outcome {
        LineOutcome::Event(event) => tolerance.check(std::slice::from_ref(event.as_ref())),
        LineOutcome::Events(events) => tolerance.check(events),
        LineOutcome::Skipped(_) | LineOutcome::Rejected(_) => Ok(()),
    };
    match checked {
        Ok(()) => outcome,
        Err(reason) => LineOutcome::Rejected(reason),
    }
}

/// Runs the format parser, turning a panic into a rejection of that one
/// record. A record the parser rejects that is a shipper's envelope is
/// parsed again as the line it wraps.
fn parse_record_isolated(
    format: Format,
    parser: &mut dyn RecordParser,
    record: &str,
    ctx: &ParseContext<'_>,
) -> LineOutcome {
    let outcome = match catch_unwind(AssertUnwindSafe(|| parser.parse(record, ctx))) {
        Ok(outcome) => outcome,
        Err(_) => LineOutcome::Rejected(format!(
            "internal error in the {format} parser; the line is kept in the rejects file"
        )),
    };
    let LineOutcome::Rejected(record_reason) = outcome else {
        return outcome;
    };
    let Some(unwrapped) = envelope::unwrap(record) else {
        return LineOutcome::Rejected(record_reason);
    };
    match catch_unwind(AssertUnwindSafe(|| parser.parse(&unwrapped.line, ctx))) {
        Ok(LineOutcome::Event(mut event)) => {
            event.attributes.extend(unwrapped.fields);
            LineOutcome::Event(event)
        }
        Ok(LineOutcome::Events(mut events)) => {
            for event in &mut events {
                event.attributes.extend(unwrapped.fields.iter().cloned());
            }
            LineOutcome::Events(events)
        }
        Ok(LineOutcome::Skipped(reason)) => LineOutcome::Skipped(reason),
        Ok(LineOutcome::Rejected(reason)) if format == Format::Json => {
            LineOutcome::Rejected(json_envelope_rejection(record_reason, reason))
        }
        Ok(LineOutcome::Rejected(reason)) => {
            LineOutcome::Rejected(format!("in the shipper's envelope: {reason}"))
        }
        Err(_) => LineOutcome::Rejected(format!(
            "internal error in the {format} parser; the line is kept in the rejects file"
        )),
    }
}

/// Words the rejection of a `json` record whose `message` or `log` line was rejected too.
///
/// A `json` mapping reads the record's own fields, and many exports carry
/// a `message` field that is no envelope, so the record's reason comes first.
fn json_envelope_rejection(record_reason: String, line_reason: String) -> String {
    if record_reason == line_reason {
        return record_reason;
    }
    format!("{record_reason} (and as a shipper's envelope: {line_reason})")
}

/// Hashes JWT-shaped tokens in a value that has no credential-named field around them.
///
/// JWTs travel in paths (`/verify/<jwt>`), in query parameters of any name
/// and in user agents; each one starts with `eyJ`, the base64 of `{"`.
fn scrub_tokens(ctx: &ParseContext<'_>, mut value: String) -> String {
    if crate::redact::contains_jwt_start(value.as_bytes()) {
        ctx.redactor.scrub_in_place(&mut value);
    }
    value
}

/// Applies the steps every format shares after its own parsing.
fn normalise(event: &mut Event, ctx: &ParseContext<'_>) {
    if event.sensor.is_none() {
        event.sensor = ctx.sensor.map(str::to_string);
    }
    if let Some(identity) = ctx.identity {
        resolve_identity(event, identity, ctx);
    }
    if let Some(path) = event.path.take() {
        // Most paths have no escape, and keeping their string saves a copy.
        let decoded = if path.contains('%') {
            percent_decode_path(&path)
        } else {
            path
        };
        if ctx.templater.is_none() {
            event.endpoint = Some(template_path(&decoded));
        }
        event.path = Some(scrub_tokens(ctx, decoded));
    }
    if let Some(mut query) = event.query.take() {
        ctx.redactor.redact_query_in_place(&mut query);
        event.query = Some(scrub_tokens(ctx, query));
    }
    for field in [&mut event.user_agent, &mut event.forwarded_for] {
        if let Some(value) = field.take() {
            *field = Some(scrub_tokens(ctx, value));
        }
    }
    if let Some(referer) = &mut event.referer {
        // A referer is a URL whose query can carry an OAuth code or a token.
        ctx.redactor.redact_attribute_in_place("referer", referer);
    }
    for (key, value) in &mut event.attributes {
        ctx.redactor.redact_attribute_in_place(key, value);
    }
    if event.consumer.is_none()
        && let Some(ip) = &event.client_ip
    {
        event.consumer = Some(ip.clone());
        event.consumer_kind = Some("ip".to_string());
    }
}

/// Sets consumer, kind and auth scheme from the identity rules, before redaction.
fn resolve_identity(event: &mut Event, identity: &IdentityConfig, ctx: &ParseContext<'_>) {
    let Some(resolved) = identity.resolve(event, ctx.redactor) else {
        return;
    };
    if event.auth_scheme.is_none() {
        event.auth_scheme = resolved.auth_scheme.map(str::to_string);
    }
    if !resolved.aliases.is_empty() {
        event.attributes.push((
            CONSUMER_ALIASES_ATTRIBUTE.to_string(),
            resolved.aliases.join(","),
        ));
        if let Some(aliases) = ctx.aliases {
            let mut aliases = aliases.lock().unwrap_or_else(|e| e.into_inner());
            let known = aliases.entry(resolved.consumer.clone()).or_default();
            for alias in &resolved.aliases {
                if !known.contains(alias) {
                    known.push(alias.clone());
                }
            }
        }
    }
    event.consumer = Some(resolved.consumer);
    event.consumer_kind = Some(resolved.kind.to_string());
}

#[cfg(test)]
mod tests {
    use arrow::array::{Array, AsArray};

    use super::*;
    use crate::event::Event;

    /// Emits one event per comma-separated value of a record, after a
    /// `#count` header line that it remembers across chunks.
    struct Counting {
        header_seen: bool,
    }

    impl RecordParser for Counting {
        fn parse(&mut self, record: &str, _ctx: &ParseContext<'_>) -> LineOutcome {
            if record == "#count" {
                self.header_seen = true;
                return LineOutcome::Skipped("header");
            }
            if !self.header_seen {
                return LineOutcome::Rejected("no header before the data".to_string());
            }
            LineOutcome::Events(
                record
                    .split(',')
                    .map(|value| {
                        let mut event = Event::new("json", 0);
                        event.path = Some(format!("/{value}"));
                        event
                    })
                    .collect(),
            )
        }
    }

    /// Emits one event per comma-separated time in microseconds.
    struct Times;

    impl RecordParser for Times {
        fn parse(&mut self, record: &str, _ctx: &ParseContext<'_>) -> LineOutcome {
            let mut events: Vec<Event> = record
                .split(',')
                .map(|time| Event::new("json", time.parse().expect("a test time")))
                .collect();
            match events.len() {
                1 => LineOutcome::Event(Box::new(events.remove(0))),
                _ => LineOutcome::Events(events),
            }
        }
    }

    /// 2024-03-05T10:15:30Z in microseconds.
    const NOW: i64 = 1_709_633_730_000_000;
    const MINUTE: i64 = 60_000_000;

    fn parse_times(data: &str, tolerance: Option<FutureTolerance>) -> ParsedChunk {
        let redactor = Redactor::new(b"k".to_vec(), 1);
        let ctx = ParseContext {
            future_tolerance: tolerance,
            ..ParseContext::new(&redactor)
        };
        parse_records(
            Format::Json,
            &mut Times,
            data.as_bytes(),
            1,
            FrameState::default(),
            &ctx,
        )
    }

    #[test]
    fn future_tolerance_rejects_late_events() {
        let tolerance = FutureTolerance::new(NOW, Duration::from_secs(300));
        let data = format!(
            "{}\n{}\n{}\n",
            NOW - 60 * MINUTE,
            NOW + 5 * MINUTE,
            NOW + 5 * MINUTE + 1
        );
        let chunk = parse_times(&data, Some(tolerance));
        assert_eq!(chunk.report.accepted, 2, "{:?}", chunk.report.errors);
        assert_eq!(chunk.report.rejected, 1);
        assert_eq!(chunk.rejects[0].line, 3);
        assert_eq!(
            chunk.rejects[0].reason,
            "the event time 2024-03-05T10:20:30.000001Z is later than 2024-03-05T10:20:30Z \
             (the current time 2024-03-05T10:15:30Z plus the future tolerance of 300 s); \
             check the clock of the source and the time format"
        );
    }

    #[test]
    fn future_tolerance_rejects_whole_record() {
        let tolerance = FutureTolerance::new(NOW, Duration::from_millis(1500));
        let data = format!("{NOW},{},{}\n", NOW + MINUTE, NOW + 2 * MINUTE);
        let chunk = parse_times(&data, Some(tolerance));
        assert_eq!(
            (chunk.report.accepted, chunk.report.rejected),
            (0, 1),
            "the in-range event is not kept alone"
        );
        assert_eq!(
            chunk.rejects[0].reason,
            "2 of the record's 3 events are later than 2024-03-05T10:15:31.500Z (the current \
             time 2024-03-05T10:15:30Z plus the future tolerance of 1500 ms), the first at \
             2024-03-05T10:16:30Z; check the clock of the source and the time format"
        );
    }

    #[test]
    fn no_future_tolerance_accepts_any_time() {
        let chunk = parse_times(&format!("{}\n", i64::MAX), None);
        assert_eq!(chunk.report.accepted, 1);
    }

    #[test]
    fn future_tolerance_saturates() {
        let tolerance = FutureTolerance::new(NOW, Duration::MAX);
        assert_eq!(tolerance.latest(), i64::MAX);
        let chunk = parse_times(&format!("{}\n", i64::MAX), Some(tolerance));
        assert_eq!(chunk.report.accepted, 1);
    }

    #[test]
    fn parser_state_spans_chunks() {
        let redactor = Redactor::new(b"k".to_vec(), 1);
        let ctx = ParseContext::new(&redactor);
        let mut parser = Counting { header_seen: false };
        let first = parse_records(
            Format::Json,
            &mut parser,
            b"#count\na,b,c\n",
            1,
            FrameState::default(),
            &ctx,
        );
        assert_eq!(first.report.accepted, 3, "{:?}", first.report);
        assert_eq!(first.report.skipped, 1);
        assert_eq!(first.batch.num_rows(), 3);
        let second = parse_records(
            Format::Json,
            &mut parser,
            b"d\n",
            3,
            FrameState::default(),
            &ctx,
        );
        assert_eq!(
            (second.report.accepted, second.report.rejected),
            (1, 0),
            "the header of the first chunk should still hold: {:?}",
            second.report.errors
        );
    }

    #[test]
    fn envelope_record_parses_wrapped_line() {
        let redactor = Redactor::new(b"k".to_vec(), 1);
        let ctx = ParseContext::new(&redactor);
        let line =
            r#"10.1.2.3 - - [10/Oct/2000:13:55:36 -0700] "GET /v1/orders/7 HTTP/1.1" 200 12"#;
        let wrapped = serde_json::json!({ "message": line, "file": "/var/log/access.log" });
        let bad = serde_json::json!({ "message": "not an access log line" });
        let body = format!("{wrapped}\n{bad}\n");
        let parsed = parse_chunk(Format::Clf, body.as_bytes(), 1, &ctx);
        assert_eq!(
            (parsed.report.accepted, parsed.report.rejected),
            (1, 1),
            "{:?}",
            parsed.report.errors
        );
        assert!(
            parsed.report.errors[0]
                .reason
                .starts_with("in the shipper's envelope: "),
            "{:?}",
            parsed.report.errors
        );
        let attributes = parsed
            .batch
            .column_by_name("attributes")
            .expect("attributes column")
            .as_map()
            .value(0);
        let keys = attributes.column(0).as_string::<i32>();
        let values = attributes.column(1).as_string::<i32>();
        let file = (0..keys.len())
            .find(|&i| keys.value(i) == "shipper.file")
            .map(|i| values.value(i));
        assert_eq!(
            file,
            Some("/var/log/access.log"),
            "the envelope's fields become attributes"
        );
    }

    #[test]
    fn events_to_batch_normalises() {
        let redactor = Redactor::new(b"k".to_vec(), 1);
        let ctx = ParseContext {
            sensor: Some("edge"),
            ..ParseContext::new(&redactor)
        };
        let mut event = Event::new("otlp", 1);
        event.path = Some("/v1/orders/12345".to_string());
        event.query = Some("token=s3cret-value".to_string());
        event.client_ip = Some("192.0.2.1".to_string());
        let batch = events_to_batch(vec![event], &ctx);
        assert_eq!(batch.num_rows(), 1);
        let text = |name: &str| {
            let column = batch.column_by_name(name).expect("column exists");
            arrow::compute::cast(column, &arrow::datatypes::DataType::Utf8)
                .expect("castable to text")
                .as_string::<i32>()
                .value(0)
                .to_string()
        };
        assert_eq!(text("sensor"), "edge", "sensor from the context");
        assert_eq!(text("endpoint"), "/v1/orders/{id}", "templated path");
        assert_eq!(text("consumer"), "192.0.2.1", "client IP as consumer");
        assert!(
            !text("query").contains("s3cret-value"),
            "the query is redacted: {}",
            text("query")
        );
    }

    #[test]
    fn skip_through_line_feeds_parser_uncounted() {
        let redactor = Redactor::new(b"k".to_vec(), 1);
        let ctx = ParseContext {
            skip_through_line: 2,
            ..ParseContext::new(&redactor)
        };
        let mut parser = Counting { header_seen: false };
        let parsed = parse_records(
            Format::Json,
            &mut parser,
            b"#count\na,b\nc\n",
            1,
            FrameState::default(),
            &ctx,
        );
        assert_eq!(
            (
                parsed.report.accepted,
                parsed.report.skipped,
                parsed.report.rejected
            ),
            (1, 0, 0),
            "only line 3 counts, and the header on line 1 still applies: {:?}",
            parsed.report
        );
    }
}
