//! Ingest benchmark: parsing, bulk import, HTTP ingest with fsync, and stored size.
//!
//! The bench generates a deterministic AWS ALB access log in a temporary
//! directory, then measures, in this order:
//!
//! 1. `parse_chunk` on one thread, over line-aligned chunks of about 4 MiB,
//!    once as events only (no identity rules, fixed path templating) and
//!    once with the identity rules and the learning templater the server
//!    uses, followed by the views step (sighting marks, then partial
//!    aggregates) timed apart; the difference is the CPU cost of view
//!    maintenance;
//! 2. `apitrail import --data-dir` of the whole file, wall clock, then the
//!    time to answer the views over that data directory, in this process;
//! 3. `apitrail serve` fed over HTTP in bodies of 10,000 lines, first by
//!    4 concurrent clients, then by 1, each response sent only after the WAL fsync;
//! 4. the Parquet bytes per event after each server is stopped with SIGTERM.
//!
//! Run it with `cargo bench -p apitrail-server --bench ingest`. Set
//! `APITRAIL_BENCH_LINES` to change the number of generated lines (default
//! 1,000,000), and `APITRAIL_BENCH_PARSE_ONLY=1` to stop after step 1, for
//! instance under a profiler. docs/benchmarks.md records the command, the machine and results.
//! Nothing here asserts on timings. Besides I/O errors and timeouts, the bench
//! fails when the product rejects a generated line, loses events or exits with an error.

use std::fmt::Write as _;
use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use apitrail_ingest::{Format, IdentityConfig, ParseContext, Redactor, Templater, parse_chunk};
use apitrail_storage::views::{SightingIndex, ViewPartials};
use bytes::Bytes;
use common::{SplitMix64, first_text, group, query_count};

mod common;

/// The allocator of the `apitrail` binary, so the in-process parse step
/// allocates the way the server does.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

const DEFAULT_LINES: u64 = 1_000_000;
/// Seed of the log generator; a fixed seed makes every run parse the same bytes.
const SEED: u64 = 0x5EED_0A1B_2025_0303;
/// Chunk size of the parse measurement, the same as the server's `CHUNK_BYTES`.
const PARSE_CHUNK_BYTES: usize = 4 * 1024 * 1024;
const PARSE_PASSES: usize = 3;
const LINES_PER_REQUEST: usize = 10_000;
const CONCURRENT_CLIENTS: usize = 4;
const SERVER_START_TIMEOUT: Duration = Duration::from_secs(60);
const REQUEST_TIMEOUT: Duration = Duration::from_secs(600);
const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(900);
/// Maximum wait for a flush that runs after the last HTTP response to finish.
const SETTLE_TIMEOUT: Duration = Duration::from_secs(120);

fn main() -> anyhow::Result<()> {
    let lines = lines_from_env()?;
    let binary = PathBuf::from(env!("CARGO_BIN_EXE_apitrail"));
    ensure!(
        binary.is_file(),
        "the apitrail binary {} is missing; build it with the same profile as this bench",
        binary.display()
    );
    let work = tempfile::Builder::new()
        .prefix("apitrail-bench-")
        .tempdir()
        .context("creating the temporary directory")?;

    print_machine(work.path());
    let log_path = work.path().join("alb-access.log");
    let generate_started = Instant::now();
    generate_log(&log_path, lines)?;
    let input = Bytes::from(
        std::fs::read(&log_path).with_context(|| format!("reading {}", log_path.display()))?,
    );
    print_parameters(
        lines,
        input.len(),
        &binary,
        generate_started.elapsed(),
        &log_path,
    );

    let mut results = Results::default();
    let input_bytes_per_event = input.len() as f64 / lines as f64;
    results.add(
        "input size",
        format!("{input_bytes_per_event:.1}"),
        "bytes/event",
        "generated ALB log, newline included",
    );

    println!("[1/4] parse_chunk, {PARSE_PASSES} passes of each setting ...");
    bench_parse(&input, lines, &mut results)?;
    if std::env::var_os("APITRAIL_BENCH_PARSE_ONLY").is_some() {
        results.print();
        return Ok(());
    }

    println!("[2/4] apitrail import --data-dir ...");
    bench_import(&binary, &log_path, work.path(), lines, &mut results)?;

    let bodies = split_lines(&input, LINES_PER_REQUEST);
    println!("[3/4] HTTP ingest, {CONCURRENT_CLIENTS} clients ...");
    bench_http(
        &binary,
        &bodies,
        work.path(),
        CONCURRENT_CLIENTS,
        lines,
        &mut results,
    )?;
    println!("[4/4] HTTP ingest, 1 client ...");
    bench_http(&binary, &bodies, work.path(), 1, lines, &mut results)?;

    results.print();
    Ok(())
}

fn lines_from_env() -> anyhow::Result<u64> {
    match std::env::var("APITRAIL_BENCH_LINES") {
        Ok(text) => {
            let lines: u64 = text.replace('_', "").parse().with_context(|| {
                format!("APITRAIL_BENCH_LINES={text:?} is not a whole number of lines")
            })?;
            ensure!(lines > 0, "APITRAIL_BENCH_LINES must be at least 1");
            Ok(lines)
        }
        Err(std::env::VarError::NotPresent) => Ok(DEFAULT_LINES),
        Err(e) => bail!("invalid APITRAIL_BENCH_LINES: {e}"),
    }
}

// ---------------------------------------------------------------------------
// Machine and parameters
// ---------------------------------------------------------------------------

fn print_machine(work: &Path) {
    let cores = thread::available_parallelism().map_or(0, usize::from);
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|line| line.strip_prefix("model name"))
        .and_then(|rest| rest.split_once(':'))
        .map_or("unknown", |(_, name)| name.trim());
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let memory_gib = meminfo
        .lines()
        .find_map(|line| line.strip_prefix("MemTotal:"))
        .and_then(|rest| {
            rest.trim()
                .trim_end_matches("kB")
                .trim()
                .parse::<f64>()
                .ok()
        })
        .map_or("unknown".to_string(), |kib| {
            format!("{:.1} GiB", kib / 1024.0 / 1024.0)
        });
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let build = if cfg!(debug_assertions) {
        "debug assertions ON: numbers are not representative of a release build"
    } else {
        "optimized, no debug assertions"
    };

    println!("# apitrail ingest benchmark");
    println!();
    println!("machine");
    println!("  nproc             {cores}");
    println!("  cpu               {model}");
    println!("  memory            {memory_gib}");
    println!("  kernel            {}", kernel.trim());
    println!("  temp filesystem   {}", filesystem_of(work));
    println!("  bench build       {build}");
}

/// Returns the device and type of the filesystem that contains `path`, from /proc/mounts.
fn filesystem_of(path: &Path) -> String {
    let mounts = std::fs::read_to_string("/proc/mounts").unwrap_or_default();
    let path = path.canonicalize().unwrap_or_else(|_| path.to_path_buf());
    mounts
        .lines()
        .filter_map(|line| {
            let mut fields = line.split_whitespace();
            let device = fields.next()?;
            let mount_point = fields.next()?;
            let fs_type = fields.next()?;
            Some((device, mount_point, fs_type))
        })
        .filter(|(_, mount_point, _)| path.starts_with(mount_point))
        .max_by_key(|(_, mount_point, _)| mount_point.len())
        .map_or("unknown".to_string(), |(device, mount_point, fs_type)| {
            format!("{fs_type} on {device}, mounted at {mount_point}")
        })
}

fn print_parameters(
    lines: u64,
    input_bytes: usize,
    binary: &Path,
    generate_time: Duration,
    log_path: &Path,
) {
    println!();
    println!("parameters");
    println!(
        "  lines             {} (APITRAIL_BENCH_LINES)",
        group(lines)
    );
    println!(
        "  input             {} bytes, {:.1} MB, {}",
        group(input_bytes as u64),
        input_bytes as f64 / 1e6,
        log_path.display()
    );
    println!(
        "  generation        {:.1} s, seed {SEED:#x}",
        generate_time.as_secs_f64()
    );
    println!(
        "  parse             {PARSE_PASSES} passes, chunks of {} MiB, 1 thread",
        PARSE_CHUNK_BYTES / (1024 * 1024)
    );
    println!(
        "  HTTP              {} lines per request, {CONCURRENT_CLIENTS} clients then 1",
        group(LINES_PER_REQUEST as u64)
    );
    println!("  binary            {}", binary.display());
    println!();
}

// ---------------------------------------------------------------------------
// Log generator
// ---------------------------------------------------------------------------

/// One API partner: its client addresses, its user agent and its open connection.
struct Partner {
    addresses: Vec<String>,
    user_agent: &'static str,
    /// `conn_trace_id` of the connection the partner currently reuses.
    connection: String,
}

/// Fixed pools the generated lines draw from, so values repeat as in real traffic.
struct LogWorld {
    partners: Vec<Partner>,
    /// Cumulative traffic weights of `partners`, where the first partners send the most.
    cumulative_weights: Vec<u64>,
    customers: Vec<String>,
    targets: Vec<String>,
}

const PARTNERS: usize = 50;
const CUSTOMERS: usize = 5_000;
/// First event time: 2025-03-03T00:00:00Z in microseconds since the epoch.
const START_MICROS: i64 = 1_740_960_000_000_000;
/// The generated events span three days whatever the line count.
const SPAN_MICROS: i64 = 3 * 86_400 * 1_000_000;
const HOST: &str = "api.example.com";
const ELB: &str = "app/partner-api-prod/5f2c0e6d8a4b1c93";
const TARGET_GROUP: &str =
    "arn:aws:elasticloadbalancing:eu-west-1:123456789012:targetgroup/partner-api/6d0ecf831eec9f09";
const CERTIFICATE: &str =
    "arn:aws:acm:eu-west-1:123456789012:certificate/3f6a9c1e-82b4-4d0e-9a57-c2e81f4b7d90";
const USER_AGENTS: [&str; 10] = [
    "python-requests/2.31.0",
    "okhttp/4.12.0",
    "Go-http-client/2.0",
    "axios/1.6.8",
    "Java-http-client/17.0.9",
    "curl/8.5.0",
    "PartnerSync/3.2 (+https://partner.example/bot)",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/122.0.0.0 Safari/537.36",
    "node-fetch/1.0 (+https://github.com/bitinn/node-fetch)",
    "aws-sdk-java/2.25.10 Linux/5.10 OpenJDK_64-Bit_Server_VM/17.0.9",
];
const SEARCH_WORDS: [&str; 8] = [
    "widget",
    "blue%20widget",
    "gear",
    "caf%C3%A9",
    "bolt+m8",
    "sensor",
    "cable",
    "adapter",
];

impl LogWorld {
    fn new(rng: &mut SplitMix64) -> Self {
        let mut partners = Vec::with_capacity(PARTNERS);
        let mut cumulative_weights = Vec::with_capacity(PARTNERS);
        let mut total = 0;
        for index in 0..PARTNERS {
            let address_count = rng.between(1, 3);
            let addresses = (0..address_count)
                .map(|_| client_address(rng, index))
                .collect();
            let user_agent = *rng.pick(&USER_AGENTS);
            partners.push(Partner {
                addresses,
                user_agent,
                connection: connection_id(rng),
            });
            // Traffic per partner falls off like 1/rank, as a few large partners dominate.
            total += 1_000_000 / (index as u64 + 1);
            cumulative_weights.push(total);
        }
        let customers = (0..CUSTOMERS).map(|_| rng.uuid()).collect();
        let targets = (0..6)
            .map(|index| format!("10.0.{}.{}:8080", 1 + index % 3, rng.between(10, 250)))
            .collect();
        LogWorld {
            partners,
            cumulative_weights,
            customers,
            targets,
        }
    }

    fn pick_partner(&self, rng: &mut SplitMix64) -> usize {
        let total = *self.cumulative_weights.last().expect("partners exist");
        let roll = rng.below(total);
        self.cumulative_weights
            .partition_point(|&weight| weight <= roll)
    }
}

/// Returns an address from the documentation ranges; every fifth partner uses IPv6.
fn client_address(rng: &mut SplitMix64, partner: usize) -> String {
    if partner % 5 == 4 {
        format!(
            "2001:db8:{:x}:{:x}::{:x}",
            0x1000 + partner,
            rng.below(0x10000),
            rng.between(1, 0xffff)
        )
    } else {
        let prefix = ["192.0.2", "198.51.100", "203.0.113"][partner % 3];
        format!("{prefix}.{}", rng.between(1, 254))
    }
}

fn connection_id(rng: &mut SplitMix64) -> String {
    format!("TID_{:016x}{:016x}", rng.next_u64(), rng.next_u64())
}

/// An API call as the client sent it.
struct Request {
    method: &'static str,
    /// Path and query as sent, percent-encoded.
    target: String,
    body_bytes: u64,
    success_status: u16,
}

fn choose_request(rng: &mut SplitMix64, world: &LogWorld) -> Request {
    let roll = rng.below(1000);
    let (method, mut target, body_bytes, success_status) = match roll {
        0..280 => (
            "GET",
            format!("/v1/orders/{}", rng.between(100_000, 2_999_999)),
            0,
            200,
        ),
        280..380 => {
            let status = *rng.pick(&["open", "shipped", "cancelled"]);
            let cursor = rng.next_u64();
            (
                "GET",
                format!("/v1/orders?status={status}&limit=50&cursor={cursor:016x}"),
                0,
                200,
            )
        }
        380..440 => (
            "POST",
            "/v1/orders".to_string(),
            rng.between(600, 2500),
            201,
        ),
        440..580 => {
            let customer = rng.pick(&world.customers);
            ("GET", format!("/v2/customers/{customer}"), 0, 200)
        }
        580..720 => {
            let customer = rng.pick(&world.customers);
            let query = if rng.below(2) == 0 {
                "?since=2025-01-01&limit=100"
            } else {
                ""
            };
            (
                "GET",
                format!("/v2/customers/{customer}/invoices{query}"),
                0,
                200,
            )
        }
        720..780 => {
            let customer = rng.pick(&world.customers);
            let invoice = rng.between(10_000, 999_999);
            (
                "GET",
                format!("/v2/customers/{customer}/invoices/{invoice}"),
                0,
                200,
            )
        }
        780..810 => {
            let customer = rng.pick(&world.customers);
            let body = rng.between(200, 900);
            ("PUT", format!("/v2/customers/{customer}"), body, 200)
        }
        810..890 => (
            "GET",
            format!("/v1/products/{}?include=pricing", rng.between(1, 20_000)),
            0,
            200,
        ),
        890..920 => {
            let cart = rng.uuid();
            let item = rng.between(1, 20_000);
            ("DELETE", format!("/v1/carts/{cart}/items/{item}"), 0, 204)
        }
        920..950 => (
            "POST",
            "/v1/payments".to_string(),
            rng.between(300, 1200),
            201,
        ),
        950..980 => (
            "GET",
            format!("/v1/shipments/{}/tracking", rng.between(100_000, 2_999_999)),
            0,
            200,
        ),
        _ => {
            let word = rng.pick(&SEARCH_WORDS);
            let page = rng.between(1, 20);
            ("GET", format!("/v1/search?q={word}&page={page}"), 0, 200)
        }
    };
    // About 1% of calls come from a legacy integration that puts its key in the query.
    if rng.below(100) == 0 {
        let separator = if target.contains('?') { '&' } else { '?' };
        let key = rng.next_u64();
        write!(target, "{separator}api_key={key:016x}{:016x}", !key).expect("writing to a String");
    }
    Request {
        method,
        target,
        body_bytes,
        success_status,
    }
}

/// Status codes returned by the load balancer and the target.
struct Outcome {
    elb_status: u16,
    /// `None` when the load balancer responded without reaching a target.
    target_status: Option<u16>,
}

fn choose_outcome(rng: &mut SplitMix64, request: &Request) -> Outcome {
    let roll = rng.below(10_000);
    match roll {
        0..50 => Outcome {
            elb_status: *rng.pick(&[460, 502, 503, 504]),
            target_status: None,
        },
        50..150 => {
            let status = *rng.pick(&[500, 500, 502, 503]);
            Outcome {
                elb_status: status,
                target_status: Some(status),
            }
        }
        150..1000 => {
            let status = *rng.pick(&[404, 404, 404, 404, 400, 400, 401, 403, 409, 422, 429, 429]);
            Outcome {
                elb_status: status,
                target_status: Some(status),
            }
        }
        _ => Outcome {
            elb_status: request.success_status,
            target_status: Some(request.success_status),
        },
    }
}

/// Formats microseconds since the epoch as ALB does: `2025-03-03T00:00:00.123456Z`.
fn iso_micros(micros: i64) -> String {
    chrono::DateTime::from_timestamp_micros(micros)
        .expect("generated times are in range")
        .format("%Y-%m-%dT%H:%M:%S%.6fZ")
        .to_string()
}

/// Appends one ALB access-log line, in the field order of the current log format, to `line`.
fn write_line(line: &mut String, rng: &mut SplitMix64, world: &mut LogWorld, time_micros: i64) {
    let partner_index = world.pick_partner(rng);
    let request = choose_request(rng, world);
    let outcome = choose_outcome(rng, &request);
    let partner = &mut world.partners[partner_index];
    // Clients reuse a connection for about 100 requests before opening a new one.
    if rng.below(100) == 0 {
        partner.connection = connection_id(rng);
    }
    let client = rng.pick(&partner.addresses);
    let client_port = rng.between(1024, 65535);

    let protocol = match rng.below(100) {
        0..2 => "http",
        2..20 => "h2",
        _ => "https",
    };
    let (scheme, port, http_version) = match protocol {
        "http" => ("http", 80, "HTTP/1.1"),
        "h2" => ("https", 443, "HTTP/2.0"),
        _ => ("https", 443, "HTTP/1.1"),
    };
    let (cipher, tls, domain, certificate) = if protocol == "http" {
        ("-", "-", "-", "-")
    } else if rng.below(4) == 0 {
        ("ECDHE-RSA-AES128-GCM-SHA256", "TLSv1.2", HOST, CERTIFICATE)
    } else {
        ("TLS_AES_128_GCM_SHA256", "TLSv1.3", HOST, CERTIFICATE)
    };

    let target = outcome
        .target_status
        .map(|_| rng.pick(&world.targets).as_str());
    let (timings, duration_micros) = match target {
        Some(_) => {
            let request_ms = rng.below(2);
            // Exponential target time around 40 ms, with a slow tail of 1 to 5 s.
            let target_ms = if rng.below(500) == 0 {
                rng.between(1000, 5000)
            } else {
                4 + (-40.0 * (1.0 - rng.unit()).ln()) as u64
            };
            let timings = format!(
                "{}.{:03} {}.{:03} 0.000",
                request_ms / 1000,
                request_ms % 1000,
                target_ms / 1000,
                target_ms % 1000
            );
            (timings, (request_ms + target_ms) as i64 * 1000)
        }
        None => ("-1 -1 -1".to_string(), rng.between(0, 30_000) as i64 * 1000),
    };
    let received_bytes = rng.between(180, 900) + request.body_bytes;
    let sent_bytes = match outcome.elb_status {
        200 if request.method == "GET" => rng.between(350, 8000),
        200 | 201 => rng.between(300, 900),
        204 => rng.between(150, 220),
        _ => rng.between(150, 450),
    };
    let target_text = target.unwrap_or("-");
    let target_status = outcome
        .target_status
        .map_or("-".to_string(), |status| status.to_string());
    let rule_priority = if request.target.starts_with("/v2/") {
        20
    } else {
        10
    };
    let created_millis = (time_micros - duration_micros) / 1000;
    let (classification, classification_reason) = if rng.below(1000) == 0 {
        ("Ambiguous", "UndefinedContentLengthSemantics")
    } else {
        ("-", "-")
    };

    writeln!(
        line,
        "{protocol} {time} {ELB} {client}:{client_port} {target_text} {timings} {elb_status} \
         {target_status} {received_bytes} {sent_bytes} \
         \"{method} {scheme}://{HOST}:{port}{path} {http_version}\" \"{user_agent}\" \
         {cipher} {tls} {TARGET_GROUP} \"Root=1-{epoch:08x}-{trace_high:08x}{trace_low:016x}\" \
         \"{domain}\" \"{certificate}\" {rule_priority} {created} \"forward\" \"-\" \"-\" \
         \"{target_text}\" \"{target_status}\" \"{classification}\" \"{classification_reason}\" \
         {connection}",
        time = iso_micros(time_micros),
        elb_status = outcome.elb_status,
        method = request.method,
        path = request.target,
        user_agent = partner.user_agent,
        epoch = time_micros / 1_000_000,
        trace_high = rng.below(1 << 32),
        trace_low = rng.next_u64(),
        created = iso_micros(created_millis * 1000),
        connection = partner.connection,
    )
    .expect("writing to a String");
}

/// Writes `lines` generated ALB log lines to `path`, with times increasing over three days.
fn generate_log(path: &Path, lines: u64) -> anyhow::Result<()> {
    let mut rng = SplitMix64(SEED);
    let mut world = LogWorld::new(&mut rng);
    let file = File::create(path).with_context(|| format!("creating {}", path.display()))?;
    let mut writer = BufWriter::with_capacity(1024 * 1024, file);
    let mean_step = (SPAN_MICROS / lines as i64).max(1);
    let mut time_micros = START_MICROS;
    let mut line = String::with_capacity(1024);
    for _ in 0..lines {
        time_micros += rng.below(2 * mean_step as u64 + 1) as i64;
        line.clear();
        write_line(&mut line, &mut rng, &mut world, time_micros);
        writer.write_all(line.as_bytes())?;
    }
    writer
        .flush()
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

// ---------------------------------------------------------------------------
// 1. Parse
// ---------------------------------------------------------------------------

/// Cuts `input` into chunks of at least `chunk_bytes` that end on a line break,
/// each with the 1-based number of its first line.
fn split_line_chunks(input: &[u8], chunk_bytes: usize) -> Vec<(u64, &[u8])> {
    let mut chunks = Vec::new();
    let mut start = 0;
    let mut next_line = 1;
    while start < input.len() {
        let tentative_end = (start + chunk_bytes).min(input.len());
        let end = match input[tentative_end..].iter().position(|&b| b == b'\n') {
            Some(offset) => tentative_end + offset + 1,
            None => input.len(),
        };
        let chunk = &input[start..end];
        chunks.push((next_line, chunk));
        next_line += chunk.iter().filter(|&&b| b == b'\n').count() as u64;
        start = end;
    }
    chunks
}

/// Times of one parse pass over the whole input.
#[derive(Debug, Clone, Copy, Default)]
struct PassTimes {
    parse: Duration,
    dedupe: Duration,
    partials: Duration,
}

/// Parses every chunk once with `ctx`; with `views`, also runs the views step
/// on each parsed batch, timed apart from the parse.
fn parse_pass(
    chunks: &[(u64, &[u8])],
    ctx: &ParseContext<'_>,
    lines: u64,
    views: bool,
) -> anyhow::Result<(PassTimes, usize)> {
    let (mut accepted, mut rejected, mut skipped) = (0, 0, 0);
    let mut arrow_bytes = 0;
    let mut times = PassTimes::default();
    let mut sightings = SightingIndex::new(Default::default());
    for &(first_line, chunk) in chunks {
        let started = Instant::now();
        let parsed = parse_chunk(Format::AwsAlb, chunk, first_line, ctx);
        times.parse += started.elapsed();
        accepted += parsed.report.accepted;
        rejected += parsed.report.rejected;
        skipped += parsed.report.skipped;
        arrow_bytes += parsed.batch.get_array_memory_size();
        if let Some(error) = parsed.report.errors.first() {
            bail!(
                "parse_chunk rejected generated line {}: {}",
                error.line,
                error.reason
            );
        }
        if views {
            // The store runs these two after the WAL append.
            let started = Instant::now();
            let duplicate = sightings.mark(&parsed.batch);
            times.dedupe += started.elapsed();
            let started = Instant::now();
            std::hint::black_box(ViewPartials::from_events(&parsed.batch, &duplicate));
            times.partials += started.elapsed();
        }
        std::hint::black_box(parsed);
    }
    ensure!(
        accepted == lines && rejected == 0 && skipped == 0,
        "{accepted} accepted, {rejected} rejected, {skipped} skipped of {lines} lines"
    );
    Ok((times, arrow_bytes))
}

fn median(mut times: Vec<Duration>) -> Duration {
    times.sort();
    times[times.len() / 2]
}

fn bench_parse(input: &[u8], lines: u64, results: &mut Results) -> anyhow::Result<()> {
    let redactor = Redactor::new(vec![0x42; 32], 1);
    let identity = IdentityConfig::default();
    let templater = std::sync::RwLock::new(Templater::default());
    let events_only = ParseContext::new(&redactor);
    let with_views = ParseContext {
        identity: Some(&identity),
        templater: Some(&templater),
        ..ParseContext::new(&redactor)
    };
    let chunks = split_line_chunks(input, PARSE_CHUNK_BYTES);

    // Passes alternate between the two settings, so that a change in the
    // machine's load during the run affects both alike.
    let mut base = Vec::with_capacity(PARSE_PASSES);
    let mut full = Vec::with_capacity(PARSE_PASSES);
    let mut arrow_bytes = 0;
    for pass in 0..PARSE_PASSES {
        let (times, _) = parse_pass(&chunks, &events_only, lines, false)
            .with_context(|| format!("events-only parse pass {}", pass + 1))?;
        base.push(times);
        let (times, bytes) = parse_pass(&chunks, &with_views, lines, true)
            .with_context(|| format!("parse pass {}", pass + 1))?;
        full.push(times);
        arrow_bytes = bytes;
        println!(
            "  pass {}: events only {:.3} s; with identity and templater {:.3} s, \
             dedupe {:.3} s, partials {:.3} s",
            pass + 1,
            base[pass].parse.as_secs_f64(),
            times.parse.as_secs_f64(),
            times.dedupe.as_secs_f64(),
            times.partials.as_secs_f64(),
        );
    }

    let base_parse = median(base.iter().map(|t| t.parse).collect());
    let parse = median(full.iter().map(|t| t.parse).collect());
    let dedupe = median(full.iter().map(|t| t.dedupe).collect());
    let partials = median(full.iter().map(|t| t.partials).collect());
    let chunk_note = format!(
        "parse_chunk, 1 thread, {} chunks of ~4 MiB in memory; median of {PARSE_PASSES} passes",
        chunks.len()
    );
    results.add(
        "parse, events only",
        group(per_second(lines, base_parse) as u64),
        "lines/s",
        &format!("{chunk_note}; no identity rules, fixed path templating, no views step"),
    );
    results.add(
        "parse",
        group(per_second(lines, parse) as u64),
        "lines/s",
        &format!("{chunk_note}; identity rules and the learning templater, as the server runs it"),
    );
    results.add(
        "parse",
        format!("{:.1}", per_second(input.len() as u64, parse) / 1e6),
        "MB/s",
        "same run; MB = 10^6 bytes of input",
    );
    results.add(
        "views step: dedupe",
        group(per_second(lines, dedupe) as u64),
        "events/s",
        "SightingIndex::mark per parsed batch, 1 thread",
    );
    results.add(
        "views step: partials",
        group(per_second(lines, partials) as u64),
        "events/s",
        "ViewPartials::from_events per parsed batch, 1 thread",
    );
    let with_views = parse + dedupe + partials;
    results.add(
        "view maintenance, CPU",
        format!(
            "{:.1}",
            (with_views.as_secs_f64() / base_parse.as_secs_f64() - 1.0) * 100.0
        ),
        "% over events only",
        &format!(
            "(parse + dedupe + partials) / events-only parse - 1: {:.2} us against {:.2} us per line",
            with_views.as_secs_f64() * 1e6 / lines as f64,
            base_parse.as_secs_f64() * 1e6 / lines as f64
        ),
    );
    results.add(
        "Arrow batch size",
        format!("{:.0}", arrow_bytes as f64 / lines as f64),
        "bytes/event",
        "get_array_memory_size of the parsed batches, as buffered in memory before a flush",
    );
    Ok(())
}

// ---------------------------------------------------------------------------
// 2. Bulk import
// ---------------------------------------------------------------------------

/// Returns a command for the apitrail binary with no `APITRAIL_*` variables
/// inherited, so the caller's environment cannot change the settings under test.
fn apitrail_command(binary: &Path) -> Command {
    let mut command = Command::new(binary);
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("APITRAIL_") {
            command.env_remove(name);
        }
    }
    command.stdin(Stdio::null());
    command
}

fn bench_import(
    binary: &Path,
    log_path: &Path,
    work: &Path,
    lines: u64,
    results: &mut Results,
) -> anyhow::Result<()> {
    let data_dir = work.join("import-data");
    let started = Instant::now();
    let output = apitrail_command(binary)
        .arg("import")
        .arg("--data-dir")
        .arg(&data_dir)
        .args(["--format", "aws_alb"])
        .arg(log_path)
        .output()
        .context("running apitrail import")?;
    let elapsed = started.elapsed();
    let stdout = String::from_utf8_lossy(&output.stdout);
    ensure!(
        output.status.success(),
        "apitrail import failed with {}:\n{stdout}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    let accepted = stdout
        .split_once(": ")
        .and_then(|(_, rest)| rest.split_once(" accepted"))
        .and_then(|(count, _)| count.parse::<u64>().ok())
        .with_context(|| format!("no accepted count in the import output: {stdout}"))?;
    ensure!(
        accepted == lines,
        "apitrail import accepted {accepted} of {lines} lines: {stdout}"
    );
    println!(
        "  {:.2} s, {}",
        elapsed.as_secs_f64(),
        stdout.lines().next().unwrap_or("").trim()
    );

    let table = TableSize::measure(&data_dir.join("table"))?;
    check_committed_rows(&table, lines, "apitrail import")?;
    bench_views(&data_dir, lines, results)?;
    results.add(
        "import",
        group(per_second(lines, elapsed) as u64),
        "events/s",
        "wall clock of `apitrail import --data-dir`: process start, SHA-256 of the file, \
         parse, Parquet write, Delta commit",
    );
    results.add(
        "import stored size",
        format!("{:.1}", table.parquet_bytes as f64 / lines as f64),
        "bytes/event",
        &format!(
            "Parquet bytes under table/day=*, {} files",
            table.parquet_files
        ),
    );
    std::fs::remove_dir_all(&data_dir)
        .with_context(|| format!("removing {}", data_dir.display()))?;
    Ok(())
}

/// Times the views over the imported data directory: median of [`VIEW_RUNS`] runs after a warm-up.
fn bench_views(data_dir: &Path, lines: u64, results: &mut Results) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let config = apitrail_storage::StoreConfig::for_data_dir(data_dir.to_path_buf())?;
        let documents = apitrail_storage::documents::DocumentStore::open(
            &config.views_url,
            &config.storage_options,
        )?;
        let mut inventory = apitrail_query::Inventory::default();
        if let Some(bytes) = documents.get("templater").await? {
            inventory.templater = std::sync::RwLock::new(Templater::from_json(
                std::str::from_utf8(&bytes)?,
            )?);
        }
        let inventory = std::sync::Arc::new(inventory);
        let store = apitrail_storage::Store::open_read_only(config).await?;
        let engine = apitrail_query::QueryEngine::new(
            store,
            &Default::default(),
            &inventory,
            &Default::default(),
        )
        .await?;

        let partial_rows = query_count(&engine, "SELECT count(*) FROM view_partials").await?;
        let views = TableSize::measure(&data_dir.join("views"))?;
        results.add(
            "view rows",
            group(partial_rows),
            "rows",
            &format!(
                "rows of view_partials (hour and all grains) for {} events, {:.0} bytes/row in Parquet",
                group(lines),
                views.parquet_bytes as f64 / partial_rows.max(1) as f64
            ),
        );
        let consumer = first_text(&engine, "SELECT consumer FROM consumers ORDER BY calls DESC LIMIT 1").await?;
        let queries = [
            ("endpoints", "SELECT * FROM endpoints".to_string()),
            ("consumers", "SELECT * FROM consumers".to_string()),
            (
                "one consumer's activity",
                format!("SELECT * FROM consumer_activity WHERE consumer = '{consumer}'"),
            ),
            (
                "one consumer's baseline",
                format!("SELECT * FROM consumer_baselines WHERE consumer = '{consumer}'"),
            ),
            (
                "same from raw events",
                "SELECT host, method, endpoint, count(*), min(time), max(time) FROM events \
                 GROUP BY host, method, endpoint"
                    .to_string(),
            ),
        ];
        for (name, sql) in queries {
            let mut times = Vec::with_capacity(VIEW_RUNS);
            for run in 0..=VIEW_RUNS {
                let started = Instant::now();
                let stream = engine.execute(&sql).await?;
                let batches: Vec<_> = futures::TryStreamExt::try_collect(stream).await?;
                std::hint::black_box(batches);
                if run > 0 {
                    times.push(started.elapsed());
                }
            }
            times.sort();
            let median = times[times.len() / 2];
            println!("  {name}: median {:.1} ms", median.as_secs_f64() * 1e3);
            results.add(
                &format!("query: {name}"),
                format!("{:.1}", median.as_secs_f64() * 1e3),
                "ms",
                &format!("median of {VIEW_RUNS} runs after one warm-up, `{sql}`"),
            );
        }
        anyhow::Ok(())
    })
}

/// Runs of each view query timed by [`bench_views`].
const VIEW_RUNS: usize = 15;

// ---------------------------------------------------------------------------
// 3 and 4. HTTP ingest and stored size
// ---------------------------------------------------------------------------

/// Splits `input` into bodies of `lines_per_body` whole lines without copying.
fn split_lines(input: &Bytes, lines_per_body: usize) -> Vec<Bytes> {
    let mut bodies = Vec::new();
    let mut start = 0;
    let mut lines_in_body = 0;
    for (index, &byte) in input.iter().enumerate() {
        if byte == b'\n' {
            lines_in_body += 1;
            if lines_in_body == lines_per_body {
                bodies.push(input.slice(start..index + 1));
                start = index + 1;
                lines_in_body = 0;
            }
        }
    }
    if start < input.len() {
        bodies.push(input.slice(start..));
    }
    bodies
}

/// A running `apitrail serve`, killed on drop unless [`Server::stop`] ran.
struct Server {
    child: Child,
    base_url: String,
    stopped: bool,
}

impl Server {
    fn start(binary: &Path, data_dir: &Path, log_path: &Path) -> anyhow::Result<Server> {
        let log = File::create(log_path)
            .with_context(|| format!("creating the server log {}", log_path.display()))?;
        let mut child = apitrail_command(binary)
            .arg("serve")
            .arg("--data-dir")
            .arg(data_dir)
            .args(["--http-addr", "127.0.0.1:0"])
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .context("starting apitrail serve")?;

        // A thread drains stdout until EOF, so a full pipe cannot block the server.
        let stdout = child.stdout.take().expect("stdout is piped");
        let (sender, receiver) = mpsc::channel();
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(url) = line.strip_prefix("apitrail listening on ") {
                    let _ = sender.send(url.trim().to_string());
                }
            }
        });
        let mut server = Server {
            child,
            base_url: String::new(),
            stopped: false,
        };
        server.base_url = receiver
            .recv_timeout(SERVER_START_TIMEOUT)
            .with_context(|| {
                format!(
                    "apitrail serve printed no listening address within {SERVER_START_TIMEOUT:?}; \
                 see {}",
                    log_path.display()
                )
            })?;
        Ok(server)
    }

    /// Returns the peak resident set size of the server so far, from /proc.
    fn peak_rss_bytes(&self) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).ok()?;
        let kib: u64 = status
            .lines()
            .find_map(|line| line.strip_prefix("VmHWM:"))?
            .trim()
            .trim_end_matches("kB")
            .trim()
            .parse()
            .ok()?;
        Some(kib * 1024)
    }

    /// Sends SIGTERM, waits for a clean exit and returns the time the shutdown took.
    fn stop(&mut self) -> anyhow::Result<Duration> {
        let started = Instant::now();
        send_sigterm(self.child.id())?;
        loop {
            if let Some(status) = self.child.try_wait()? {
                self.stopped = true;
                ensure!(status.success(), "apitrail serve exited with {status}");
                return Ok(started.elapsed());
            }
            if started.elapsed() > SHUTDOWN_TIMEOUT {
                bail!("apitrail serve did not exit within {SHUTDOWN_TIMEOUT:?} of SIGTERM");
            }
            thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if !self.stopped {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

#[expect(
    unsafe_code,
    reason = "the standard library can only send SIGKILL; the server flushes on SIGTERM"
)]
fn send_sigterm(pid: u32) -> anyhow::Result<()> {
    let pid = libc::pid_t::try_from(pid).context("process id out of range")?;
    // SAFETY: kill(2) has no memory-safety preconditions, and `pid` is our own child.
    let result = unsafe { libc::kill(pid, libc::SIGTERM) };
    if result != 0 {
        bail!(
            "sending SIGTERM to apitrail serve (pid {pid}) failed: {}",
            std::io::Error::last_os_error()
        );
    }
    Ok(())
}

/// Timings and accepted count of one HTTP client thread.
#[derive(Default)]
struct ClientRun {
    first_sent: Option<Instant>,
    last_received: Option<Instant>,
    accepted: u64,
    latencies: Vec<Duration>,
}

/// Posts bodies, taking the next unsent one each time, until none is left.
fn post_bodies(
    client: &reqwest::blocking::Client,
    url: &str,
    bodies: &[Bytes],
    next_body: &AtomicUsize,
) -> anyhow::Result<ClientRun> {
    let mut run = ClientRun::default();
    loop {
        let index = next_body.fetch_add(1, Ordering::Relaxed);
        let Some(body) = bodies.get(index) else {
            return Ok(run);
        };
        let sent = Instant::now();
        run.first_sent.get_or_insert(sent);
        let response = client
            .post(url)
            .body(body.clone())
            .send()
            .with_context(|| format!("sending ingest request {index}"))?;
        let status = response.status();
        let text = response
            .text()
            .with_context(|| format!("reading the response to ingest request {index}"))?;
        let received = Instant::now();
        ensure!(
            status.is_success(),
            "ingest request {index} failed with {status}: {text}"
        );
        let report: serde_json::Value = serde_json::from_str(&text)
            .with_context(|| format!("ingest request {index} returned invalid JSON: {text}"))?;
        let accepted = report["accepted"].as_u64().with_context(|| {
            format!("ingest request {index} returned no accepted count: {text}")
        })?;
        ensure!(
            report["rejected"].as_u64() == Some(0),
            "ingest request {index} rejected lines: {text}"
        );
        run.accepted += accepted;
        run.latencies.push(received - sent);
        run.last_received = Some(received);
    }
}

fn bench_http(
    binary: &Path,
    bodies: &[Bytes],
    work: &Path,
    clients: usize,
    lines: u64,
    results: &mut Results,
) -> anyhow::Result<()> {
    let data_dir = work.join(format!("http-{clients}-data"));
    let log_path = work.join(format!("http-{clients}-server.log"));
    let mut server = Server::start(binary, &data_dir, &log_path)?;
    let url = format!("{}/api/v1/ingest?format=aws_alb", server.base_url);
    let http_clients = (0..clients)
        .map(|_| {
            reqwest::blocking::Client::builder()
                .timeout(REQUEST_TIMEOUT)
                .build()
        })
        .collect::<Result<Vec<_>, _>>()
        .context("building the HTTP clients")?;

    let next_body = AtomicUsize::new(0);
    let runs: Vec<anyhow::Result<ClientRun>> = thread::scope(|scope| {
        let handles: Vec<_> = http_clients
            .iter()
            .map(|client| scope.spawn(|| post_bodies(client, &url, bodies, &next_body)))
            .collect();
        handles
            .into_iter()
            .map(|handle| handle.join().expect("client threads do not panic"))
            .collect()
    });
    let runs = runs.into_iter().collect::<anyhow::Result<Vec<_>>>()?;
    let first_sent = runs.iter().filter_map(|run| run.first_sent).min();
    let last_received = runs.iter().filter_map(|run| run.last_received).max();
    let (Some(first_sent), Some(last_received)) = (first_sent, last_received) else {
        bail!("no ingest request was sent");
    };
    let elapsed = last_received - first_sent;
    let accepted: u64 = runs.iter().map(|run| run.accepted).sum();
    ensure!(
        accepted == lines,
        "the server accepted {accepted} of {lines} lines"
    );
    let mut latencies: Vec<Duration> = runs.into_iter().flat_map(|run| run.latencies).collect();
    latencies.sort();

    let (wal_bytes, before_stop) = settled_sizes(&data_dir)?;
    let peak_rss = server.peak_rss_bytes();
    let shutdown = server.stop()?;
    let after_stop = TableSize::measure(&data_dir.join("table"))?;
    check_committed_rows(&after_stop, lines, "apitrail serve")?;

    println!(
        "  {:.2} s for {} requests, {} events/s; shutdown {:.2} s",
        elapsed.as_secs_f64(),
        latencies.len(),
        group(per_second(lines, elapsed) as u64),
        shutdown.as_secs_f64()
    );
    let label = if clients == 1 {
        "HTTP, 1 client".to_string()
    } else {
        format!("HTTP, {clients} clients")
    };
    results.add(
        &label,
        group(per_second(lines, elapsed) as u64),
        "events/s",
        &format!(
            "first request sent to last response received; {} requests of {} lines, each \
             response sent only after the WAL fsync",
            latencies.len(),
            group(LINES_PER_REQUEST as u64)
        ),
    );
    results.add(
        &label,
        format!(
            "{:.0} / {:.0} / {:.0}",
            percentile(&latencies, 50).as_secs_f64() * 1000.0,
            percentile(&latencies, 99).as_secs_f64() * 1000.0,
            latencies.last().map_or(0.0, Duration::as_secs_f64) * 1000.0
        ),
        "ms p50 / p99 / max",
        "latency of one request, body sent to report received",
    );
    add_wal_result(&label, wal_bytes, lines, &before_stop, results);
    results.add(
        &label,
        format!("{:.2}", shutdown.as_secs_f64()),
        "s",
        "SIGTERM to exit: flush of the rows still buffered to Parquet and Delta commit",
    );
    results.add(
        &label,
        format!("{:.1}", after_stop.parquet_bytes as f64 / lines as f64),
        "bytes/event",
        &format!(
            "stored: Parquet bytes under table/day=* after the shutdown flush, {} files",
            after_stop.parquet_files
        ),
    );
    if let Some(peak_rss) = peak_rss {
        results.add(
            &label,
            format!("{:.0}", peak_rss as f64 / (1024.0 * 1024.0)),
            "MiB",
            "peak RSS of the server before SIGTERM (VmHWM)",
        );
    }
    std::fs::remove_dir_all(&data_dir)
        .with_context(|| format!("removing {}", data_dir.display()))?;
    Ok(())
}

/// Returns the WAL bytes and the table size once a flush that is still running has finished.
///
/// A flush commits its rows and then deletes their WAL segments, so sizes read
/// while it runs can count the same events in both places. Two equal samples
/// 250 ms apart are taken as settled. After [`SETTLE_TIMEOUT`] the last sample is used.
fn settled_sizes(data_dir: &Path) -> anyhow::Result<(u64, TableSize)> {
    let sample = || -> anyhow::Result<(u64, TableSize)> {
        let table = TableSize::measure(&data_dir.join("table"))?;
        let wal_bytes = directory_bytes(&data_dir.join("wal"), "wal")?;
        Ok((wal_bytes, table))
    };
    let started = Instant::now();
    let mut previous = sample()?;
    loop {
        thread::sleep(Duration::from_millis(250));
        let current = sample()?;
        let settled = current.0 == previous.0
            && current.1.committed_rows == previous.1.committed_rows
            && current.1.parquet_bytes == previous.1.parquet_bytes;
        if settled {
            return Ok(current);
        }
        if started.elapsed() > SETTLE_TIMEOUT {
            println!("  note: WAL and table sizes still changed after {SETTLE_TIMEOUT:?}");
            return Ok(current);
        }
        previous = current;
    }
}

/// Adds the WAL size per event still in the WAL, which excludes events that flushes
/// during the run already committed and whose segments were deleted.
fn add_wal_result(
    label: &str,
    wal_bytes: u64,
    lines: u64,
    before_stop: &TableSize,
    results: &mut Results,
) {
    let flushed = before_stop.committed_rows.unwrap_or(0);
    let in_wal = lines.saturating_sub(flushed);
    let note = if flushed == 0 {
        format!(
            "WAL segment bytes after the last response and before SIGTERM. No flush had \
             committed, so all {} events were in the WAL",
            group(lines)
        )
    } else {
        format!(
            "WAL segment bytes after the last response and before SIGTERM, over the {} events \
             not yet flushed. Earlier flushes had committed {} events in {} files. This is an upper \
             bound, because a segment is deleted only when all its records are flushed",
            group(in_wal),
            group(flushed),
            before_stop.parquet_files
        )
    };
    let value = if in_wal == 0 {
        "n/a".to_string()
    } else {
        format!("{:.1}", wal_bytes as f64 / in_wal as f64)
    };
    results.add(label, value, "WAL bytes/event", &note);
}

// ---------------------------------------------------------------------------
// Sizes on disk
// ---------------------------------------------------------------------------

/// Parquet files and committed rows of an events table directory.
struct TableSize {
    parquet_files: u64,
    parquet_bytes: u64,
    /// Sum of `numRecords` over the `add` actions of the Delta log, or `None`
    /// when an action has no statistics.
    committed_rows: Option<u64>,
}

impl TableSize {
    fn measure(table: &Path) -> anyhow::Result<TableSize> {
        let mut size = TableSize {
            parquet_files: 0,
            parquet_bytes: 0,
            committed_rows: Some(0),
        };
        if !table.exists() {
            return Ok(size);
        }
        for entry in read_dir(table)? {
            let path = entry.path();
            let name = entry.file_name().to_string_lossy().into_owned();
            let is_partition = name.starts_with("day=") || name.starts_with("grain=");
            if is_partition && entry.file_type()?.is_dir() {
                size.add_parquet_files(&path)?;
            }
        }
        size.committed_rows = committed_rows(&table.join("_delta_log"))?;
        Ok(size)
    }

    fn add_parquet_files(&mut self, directory: &Path) -> anyhow::Result<()> {
        for entry in read_dir(directory)? {
            let path = entry.path();
            if entry.file_type()?.is_dir() {
                self.add_parquet_files(&path)?;
            } else if path.extension().is_some_and(|ext| ext == "parquet") {
                self.parquet_files += 1;
                self.parquet_bytes += entry.metadata()?.len();
            }
        }
        Ok(())
    }
}

fn read_dir(directory: &Path) -> anyhow::Result<Vec<std::fs::DirEntry>> {
    std::fs::read_dir(directory)
        .with_context(|| format!("listing {}", directory.display()))?
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| format!("listing {}", directory.display()))
}

/// Sums `numRecords` of the `add` actions in the JSON commits of a Delta log.
///
/// The sum is the table's row count only for an append-only table, so a
/// `remove` action is an error.
fn committed_rows(delta_log: &Path) -> anyhow::Result<Option<u64>> {
    if !delta_log.exists() {
        return Ok(Some(0));
    }
    let mut rows = 0;
    for entry in read_dir(delta_log)? {
        let path = entry.path();
        if path.extension().is_none_or(|ext| ext != "json") {
            continue;
        }
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("reading {}", path.display()))?;
        for line in text.lines().filter(|line| !line.trim().is_empty()) {
            let action: serde_json::Value = serde_json::from_str(line)
                .with_context(|| format!("invalid JSON action in {}", path.display()))?;
            ensure!(
                action.get("remove").is_none(),
                "{} removes files, so the sum of added rows is not the row count",
                path.display()
            );
            let Some(add) = action.get("add") else {
                continue;
            };
            let stats: Option<serde_json::Value> = add["stats"]
                .as_str()
                .and_then(|stats| serde_json::from_str(stats).ok());
            match stats.and_then(|stats| stats["numRecords"].as_u64()) {
                Some(count) => rows += count,
                None => return Ok(None),
            }
        }
    }
    Ok(Some(rows))
}

fn check_committed_rows(table: &TableSize, lines: u64, command: &str) -> anyhow::Result<()> {
    match table.committed_rows {
        Some(rows) => ensure!(
            rows == lines,
            "{command} committed {rows} rows to the table for {lines} lines"
        ),
        None => {
            println!("  note: the Delta log has no row counts, so committed rows are unchecked")
        }
    }
    Ok(())
}

/// Sums the sizes of the files ending in `.{extension}` directly inside `directory`.
fn directory_bytes(directory: &Path, extension: &str) -> anyhow::Result<u64> {
    let mut total = 0;
    for entry in read_dir(directory)? {
        let path = entry.path();
        if entry.file_type()?.is_file() && path.extension().is_some_and(|ext| ext == extension) {
            total += entry.metadata()?.len();
        }
    }
    Ok(total)
}

// ---------------------------------------------------------------------------
// Results
// ---------------------------------------------------------------------------

#[derive(Default)]
struct Results {
    rows: Vec<[String; 4]>,
}

impl Results {
    fn add(&mut self, measurement: &str, value: String, unit: &str, note: &str) {
        self.rows.push([
            measurement.to_string(),
            value,
            unit.to_string(),
            note.to_string(),
        ]);
    }

    /// Prints the rows as a Markdown table.
    fn print(&self) {
        println!();
        println!("## Results");
        println!();
        println!("| measurement | value | unit | includes |");
        println!("|---|--:|---|---|");
        for [measurement, value, unit, note] in &self.rows {
            println!("| {measurement} | {value} | {unit} | {note} |");
        }
    }
}

fn per_second(count: u64, elapsed: Duration) -> f64 {
    count as f64 / elapsed.as_secs_f64()
}

/// Returns the `percent`th percentile of sorted durations, by the nearest-rank method.
fn percentile(sorted: &[Duration], percent: usize) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = (sorted.len() * percent).div_ceil(100).max(1);
    sorted[rank.min(sorted.len()) - 1]
}
