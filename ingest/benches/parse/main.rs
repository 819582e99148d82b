//! Parsing throughput per format, on one thread.
//!
//! For each format the bench generates an input (see [`generate`]), then
//! measures two things over it, each as the median of several passes after
//! one warm-up pass:
//!
//! - **parser**: the format's [`RecordParser`] alone, over records that
//!   the framer cut beforehand, one parser per pass so header-driven
//!   formats see their header. It includes building each [`Event`] and
//!   dropping it.
//! - **parse_chunk**: the driver, [`parse_records`] (which `parse_chunk`
//!   calls), over the input cut into chunks of about 4 MiB by
//!   [`RecordChunker`] as the server cuts a body, with one parser for all
//!   chunks. It adds framing, UTF-8 decoding, path decoding, redaction,
//!   endpoint templating by the fixed rules and the Arrow batch. Identity
//!   rules and the learning templater are not set.
//!
//! Rates are in MB/s (10^6 bytes of input) and events per second of CPU
//! time of that one thread, read from `/proc/thread-self/schedstat`. Other
//! processes that share the core slow them less than they slow wall-clock
//! rates. Without that file they are wall-clock rates. The last column is
//! the median ratio of wall-clock time to CPU time: well above 1, the thread
//! often waited for a core. Memory comes from jemalloc, as in the `apitrail`
//! binary. Every pass checks that each generated record is accepted;
//! nothing is asserted about timings. With the real samples of
//! `shared/realdata` (or `APITRAIL_REALDATA`), the bench also measures a few
//! real files, repeated in memory to a few megabytes.
//!
//! Settings, as environment variables:
//!
//! - `APITRAIL_BENCH_MB`: megabytes of input for `aws_alb` and `clf`
//!   (default 100); every other format gets a fifth of it.
//! - `APITRAIL_BENCH_PASSES`: timed passes per measurement (default 5).
//! - `APITRAIL_BENCH_FORMATS`: comma-separated format names to run (default all).
//!
//! [`Event`]: apitrail_ingest::Event

mod generate;

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Instant;

use apitrail_ingest::formats::generic_json::FieldConfig;
use apitrail_ingest::framing::{CHUNK_BYTES, records};
use apitrail_ingest::text::decode_line;
use apitrail_ingest::{
    Chunk, Format, FrameState, JsonMapping, JsonMappingConfig, LineOutcome, ParseContext,
    RecordChunker, RecordParser, Redactor, new_parser, parse_records,
};

/// The allocator of the `apitrail` binary, since parsing allocates for every field it keeps.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// Formats that get the full input size; the others get a fifth.
const LARGE_FORMATS: [Format; 2] = [Format::AwsAlb, Format::Clf];

/// Real samples measured after the generated inputs: file, format, and megabytes to repeat it to.
const REAL_SAMPLES: [(&str, Format); 3] = [
    (
        "throughput/elastic_examples_apache_logs_10k.log",
        Format::Clf,
    ),
    (
        "throughput/zanbil_ir_nginx_combined_10k_via_logsentinelai.log",
        Format::Clf,
    ),
    (
        "akamai_datastream2/greptimedb_bench_akamai_ds2_1000.ndjson",
        Format::AkamaiDs2,
    ),
];

/// Settings read from the environment.
struct Settings {
    megabytes: usize,
    passes: usize,
    formats: Vec<Format>,
}

impl Settings {
    fn from_env() -> Self {
        let number = |name: &str, default: usize| match std::env::var(name) {
            Ok(text) => text
                .parse()
                .unwrap_or_else(|_| panic!("{name} must be a whole number, found {text:?}")),
            Err(_) => default,
        };
        let formats = match std::env::var("APITRAIL_BENCH_FORMATS") {
            Ok(list) => list
                .split(',')
                .map(|name| {
                    name.trim()
                        .parse::<Format>()
                        .unwrap_or_else(|error| panic!("APITRAIL_BENCH_FORMATS: {error}"))
                })
                .collect(),
            Err(_) => Format::ALL.to_vec(),
        };
        Settings {
            megabytes: number("APITRAIL_BENCH_MB", 100).max(1),
            passes: number("APITRAIL_BENCH_PASSES", 5).max(1),
            formats,
        }
    }

    fn input_bytes(&self, format: Format) -> usize {
        let megabytes = if LARGE_FORMATS.contains(&format) {
            self.megabytes as f64
        } else {
            self.megabytes as f64 / 5.0
        };
        (megabytes * 1e6) as usize
    }
}

/// An input ready to measure: its bytes, its records and its chunks.
struct Prepared<'a> {
    label: String,
    format: Format,
    bytes: usize,
    records: Vec<Cow<'a, str>>,
    chunks: Vec<Chunk>,
    /// Events every pass must produce.
    events: u64,
}

impl<'a> Prepared<'a> {
    fn new(label: String, format: Format, data: &'a [u8]) -> Self {
        let records = records(data, 1, FrameState::default())
            .map(|record| decode_line(record.bytes))
            .collect();
        let mut chunker = RecordChunker::with_chunk_bytes(CHUNK_BYTES);
        let mut chunks = chunker.push(data);
        chunks.extend(chunker.finish());
        Prepared {
            label,
            format,
            bytes: data.len(),
            records,
            chunks,
            events: 0,
        }
    }
}

/// Median times of one input.
struct Figures {
    /// CPU seconds of a parser pass.
    parser_seconds: f64,
    /// CPU seconds of a parse_chunk pass.
    chunk_seconds: f64,
    /// Wall-clock time over CPU time, over all passes.
    wall_per_cpu: f64,
}

/// Wall-clock and CPU time of the calling thread since it started.
struct Stopwatch {
    wall: Instant,
    cpu: Option<f64>,
}

impl Stopwatch {
    fn start() -> Self {
        Stopwatch {
            wall: Instant::now(),
            cpu: thread_cpu_seconds(),
        }
    }

    /// Returns the CPU seconds since the start (wall-clock seconds without
    /// a CPU clock) and the wall-clock seconds.
    fn stop(&self) -> (f64, f64) {
        let wall = self.wall.elapsed().as_secs_f64();
        let cpu = match (self.cpu, thread_cpu_seconds()) {
            (Some(start), Some(end)) => end - start,
            _ => wall,
        };
        (cpu, wall)
    }
}

/// On-CPU time of the calling thread in seconds, from the scheduler's statistics.
fn thread_cpu_seconds() -> Option<f64> {
    let text = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    let nanos: u64 = text.split_whitespace().next()?.parse().ok()?;
    Some(nanos as f64 / 1e9)
}

fn main() {
    let settings = Settings::from_env();
    let redactor = Redactor::new(b"bench-key".to_vec(), 1);
    let mapping = json_mapping();
    let ctx = ParseContext {
        json_mapping: Some(&mapping),
        ..ParseContext::new(&redactor)
    };

    print_machine(&settings);
    print_table_head();
    for (index, &format) in settings.formats.iter().enumerate() {
        let input = generate::generate(format, settings.input_bytes(format), 0x5eed + index as u64);
        let mut prepared = Prepared::new(format.name().to_string(), format, &input.data);
        assert_eq!(
            prepared.records.len() as u64,
            input.records,
            "{format}: the framer found another number of records than were generated"
        );
        prepared.events = input.events;
        let figures = measure(&prepared, &ctx, settings.passes);
        print_row(&prepared, &figures);
    }

    let Some(dir) = realdata_dir() else {
        println!("\nNo real samples found: set APITRAIL_REALDATA to measure them.");
        return;
    };
    println!("\nReal samples, repeated in memory to at least 20 MB:\n");
    print_table_head();
    for (name, format) in REAL_SAMPLES {
        if !settings.formats.contains(&format) {
            continue;
        }
        let sample = std::fs::read(dir.join(name))
            .unwrap_or_else(|error| panic!("failed to read sample {name}: {error}"));
        let data = repeat_to(&sample, 20_000_000);
        let label = format!("{format}: {}", name.rsplit('/').next().unwrap_or(name));
        let mut prepared = Prepared::new(label, format, &data);
        prepared.events = count_events(&prepared, &ctx);
        let figures = measure(&prepared, &ctx, settings.passes);
        print_row(&prepared, &figures);
    }
}

/// Times both measurements after a warm-up pass of each; returns the medians.
fn measure(input: &Prepared<'_>, ctx: &ParseContext<'_>, passes: usize) -> Figures {
    time_parser(input, ctx);
    time_chunks(input, ctx);
    let mut parser = Vec::with_capacity(passes);
    let mut chunk = Vec::with_capacity(passes);
    let mut wall_per_cpu = Vec::with_capacity(2 * passes);
    for _ in 0..passes {
        for (times, (cpu, wall)) in [
            (&mut parser, time_parser(input, ctx)),
            (&mut chunk, time_chunks(input, ctx)),
        ] {
            times.push(cpu);
            wall_per_cpu.push(wall / cpu);
        }
    }
    Figures {
        parser_seconds: median(&mut parser),
        chunk_seconds: median(&mut chunk),
        wall_per_cpu: median(&mut wall_per_cpu),
    }
}

/// Runs the format's parser over every record; returns the CPU and wall-clock seconds it took.
fn time_parser(input: &Prepared<'_>, ctx: &ParseContext<'_>) -> (f64, f64) {
    let mut parser = new_parser(input.format);
    let stopwatch = Stopwatch::start();
    let events = parse_all(parser.as_mut(), &input.records, ctx);
    let seconds = stopwatch.stop();
    assert_eq!(events, input.events, "{}: parser events", input.label);
    seconds
}

/// Returns the number of events the parser gives for `records`.
fn parse_all(
    parser: &mut dyn RecordParser,
    records: &[Cow<'_, str>],
    ctx: &ParseContext<'_>,
) -> u64 {
    let mut events = 0;
    for record in records {
        match parser.parse(record, ctx) {
            LineOutcome::Event(_) => events += 1,
            LineOutcome::Events(list) => events += list.len() as u64,
            LineOutcome::Skipped(_) | LineOutcome::Rejected(_) => {}
        }
    }
    events
}

/// Runs the driver over every chunk; returns the CPU and wall-clock seconds it took.
fn time_chunks(input: &Prepared<'_>, ctx: &ParseContext<'_>) -> (f64, f64) {
    let mut parser = new_parser(input.format);
    let mut accepted = 0;
    let stopwatch = Stopwatch::start();
    for chunk in &input.chunks {
        let parsed = parse_records(
            input.format,
            parser.as_mut(),
            &chunk.data,
            chunk.first_line,
            chunk.state,
            ctx,
        );
        accepted += parsed.report.accepted;
        std::hint::black_box(parsed.batch);
    }
    let seconds = stopwatch.stop();
    assert_eq!(
        accepted, input.events,
        "{}: parse_chunk events",
        input.label
    );
    seconds
}

/// Counts the events of a real sample, which may hold records that are rejected.
fn count_events(input: &Prepared<'_>, ctx: &ParseContext<'_>) -> u64 {
    let mut parser = new_parser(input.format);
    parse_all(parser.as_mut(), &input.records, ctx)
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// The mapping that reads the generic `json` records of the generator.
fn json_mapping() -> JsonMapping {
    let mut fields = BTreeMap::new();
    let mut add = |column: &str, field: FieldConfig| {
        fields.insert(column.to_string(), field);
    };
    add(
        "time",
        FieldConfig {
            format: Some("rfc3339".to_string()),
            ..FieldConfig::path("content.timestamp")
        },
    );
    add("url", FieldConfig::path("content.attributes.http.url"));
    add(
        "method",
        FieldConfig::path("content.attributes.http.method"),
    );
    add(
        "status",
        FieldConfig::path("content.attributes.http.status_code"),
    );
    add(
        "user_agent",
        FieldConfig::path("content.attributes.http.useragent"),
    );
    add("request_id", FieldConfig::path("id"));
    add(
        "client_ip",
        FieldConfig::path("content.attributes.network.client.ip"),
    );
    add(
        "client_port",
        FieldConfig::path("content.attributes.network.client.port"),
    );
    add(
        "response_bytes",
        FieldConfig::path("content.attributes.network.bytes_written"),
    );
    add(
        "duration_ms",
        FieldConfig {
            unit: Some("ns".to_string()),
            ..FieldConfig::path("content.attributes.duration")
        },
    );
    JsonMapping::new(JsonMappingConfig {
        name: "bench".to_string(),
        fields,
        attributes: Default::default(),
        strip_prefix: Some("content.attributes.".to_string()),
        sensor: None,
    })
    .expect("the bench mapping is valid")
}

/// `APITRAIL_REALDATA`, or `shared/realdata` beside the checkout, if it exists.
fn realdata_dir() -> Option<PathBuf> {
    let dir = match std::env::var_os("APITRAIL_REALDATA") {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/realdata"),
    };
    dir.is_dir().then_some(dir)
}

/// Repeats `sample` until the result has at least `min_bytes`, ending each copy with a newline.
fn repeat_to(sample: &[u8], min_bytes: usize) -> Vec<u8> {
    let mut data = Vec::with_capacity(min_bytes + sample.len() + 1);
    while data.len() < min_bytes {
        data.extend_from_slice(sample);
        if !sample.ends_with(b"\n") {
            data.push(b'\n');
        }
    }
    data
}

fn print_machine(settings: &Settings) {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find(|line| line.starts_with("model name"))
                .and_then(|line| line.split(':').nth(1))
                .map(|name| name.trim().to_string())
        })
        .unwrap_or_else(|| "unknown".to_string());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    println!("CPU: {cpu}, {cores} cores available; the bench runs on one thread.");
    println!(
        "Input: {} MB for aws_alb and clf, {} MB for the other formats; median of {} passes after a warm-up.\n",
        settings.megabytes,
        settings.megabytes as f64 / 5.0,
        settings.passes
    );
}

fn print_table_head() {
    println!(
        "| input | MB | records | bytes/record | parser MB/s | parser events/s | parse_chunk MB/s | parse_chunk events/s | wall / CPU |"
    );
    println!("|---|--:|--:|--:|--:|--:|--:|--:|--:|");
}

fn print_row(input: &Prepared<'_>, figures: &Figures) {
    let megabytes = input.bytes as f64 / 1e6;
    let records = input.records.len();
    println!(
        "| {} | {:.1} | {} | {:.0} | {:.0} | {} | {:.0} | {} | {:.2} |",
        input.label,
        megabytes,
        group_digits(records as f64),
        input.bytes as f64 / records.max(1) as f64,
        megabytes / figures.parser_seconds,
        group_digits(input.events as f64 / figures.parser_seconds),
        megabytes / figures.chunk_seconds,
        group_digits(input.events as f64 / figures.chunk_seconds),
        figures.wall_per_cpu,
    );
}

/// Writes a rate rounded to a whole number with thousands separators.
fn group_digits(value: f64) -> String {
    let digits = format!("{:.0}", value);
    let mut grouped = String::new();
    for (index, digit) in digits.chars().enumerate() {
        if index > 0 && (digits.len() - index) % 3 == 0 {
            grouped.push(',');
        }
        grouped.push(digit);
    }
    grouped
}
