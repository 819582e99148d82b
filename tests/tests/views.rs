//! The continuous views `endpoints`, `consumers` and `consumer_activity`
//! compared with the same aggregations written as SQL over `events`.
//!
//! Each test ingests generated access logs, then reads every view and the
//! matching `GROUP BY` over the raw events and compares them key by key.
//! Counts, sums and first and last seen must be equal. Distinct counts must be
//! equal up to 128 values, the range in which the distinct sketch is exact,
//! and within 5 % beyond. Latency quantiles must be within the sketch's 1 %
//! relative accuracy of the duration at rank `floor(q * (n - 1))` of the
//! sorted durations. Columns that the views gain later are not read.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Output, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use apitrail_tests::{
    Api, ServerOptions, TestServer, binary_path, describe_exit, poll_until, run_cli,
};
use serde_json::Value;

/// Distinct counts up to this many values must be exact: the distinct sketch
/// keeps up to 128 hashes in a list before it switches to HyperLogLog registers.
const EXACT_DISTINCT_LIMIT: u64 = 128;
/// Relative error allowed for larger distinct counts, about three standard
/// errors of a HyperLogLog with 4,096 registers.
const DISTINCT_TOLERANCE: f64 = 0.05;
/// Relative accuracy of the latency quantile sketch.
const QUANTILE_TOLERANCE: f64 = 0.01;
/// Latency columns of the views and their quantiles.
const QUANTILES: [(&str, f64); 3] = [
    ("latency_p50_ms", 0.5),
    ("latency_p95_ms", 0.95),
    ("latency_p99_ms", 0.99),
];

/// Start of the generated logs, 2024-03-04T00:00:00Z, in seconds since the Unix epoch.
const STREAM_START: i64 = 1_709_510_400;
/// Length of the generated logs: three days.
const STREAM_SECONDS: i64 = 3 * 86_400;
/// Largest number of lines in one ingest request.
const MAX_BATCH_LINES: u64 = 800;
/// How long a server may take to abort at a crash point.
const CRASH_TIMEOUT: Duration = Duration::from_secs(30);

// ---------------------------------------------------------------------------
// Generated logs
// ---------------------------------------------------------------------------

/// xorshift64* generator, so that every run sends the same logs.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        // A zero state stays zero, so the seed is XORed with a constant to keep small seeds from it.
        Rng(seed ^ 0x9E37_79B9_7F4A_7C15)
    }

    fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Returns a number in `0..n`.
    fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }

    /// Returns a number in `[0, 1)`.
    fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    fn chance(&mut self, probability: f64) -> bool {
        self.unit() < probability
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }

    /// Picks an item with probability proportional to its weight.
    fn weighted<'a, T>(&mut self, items: &'a [(T, u32)]) -> &'a T {
        let total: u64 = items.iter().map(|(_, weight)| u64::from(*weight)).sum();
        let mut point = self.below(total);
        for (item, weight) in items {
            let weight = u64::from(*weight);
            if point < weight {
                return item;
            }
            point -= weight;
        }
        unreachable!("the point is below the sum of the weights")
    }

    fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            let j = self.below(i as u64 + 1) as usize;
            items.swap(i, j);
        }
    }
}

/// Log formats of the generated lines, by their ingest names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LogFormat {
    /// nginx combined, which logs no duration and no request size.
    Clf,
    /// AWS Application Load Balancer, with durations and both sizes.
    Alb,
}

impl LogFormat {
    fn name(self) -> &'static str {
        match self {
            LogFormat::Clf => "clf",
            LogFormat::Alb => "aws_alb",
        }
    }
}

#[derive(Debug, Clone)]
struct LogLine {
    format: LogFormat,
    /// Event time in microseconds since the Unix epoch.
    time: i64,
    text: String,
}

/// Request path pattern in which each `#` becomes a number below `ids`.
struct Route {
    method: &'static str,
    pattern: &'static str,
    ids: u64,
}

const fn route(method: &'static str, pattern: &'static str, ids: u64) -> Route {
    Route {
        method,
        pattern,
        ids,
    }
}

/// Routes of the API behind nginx, with their weights.
const NGINX_ROUTES: [(Route, u32); 10] = [
    (route("GET", "/api/v1/users/#", 400), 30),
    (route("GET", "/api/v1/users/#/orders", 400), 10),
    (route("GET", "/api/v1/users/#/orders/#", 2_000), 12),
    (route("POST", "/api/v1/orders", 1), 8),
    (route("GET", "/api/v1/products/#", 300), 15),
    (route("PUT", "/api/v1/products/#", 300), 3),
    (route("DELETE", "/api/v1/sessions/#", 100_000), 2),
    (route("GET", "/api/v1/search", 1), 6),
    (route("GET", "/api/v2/reports/#.json", 50), 4),
    (route("GET", "/healthz", 1), 10),
];

/// Routes of the API behind the load balancer, host `api.example.com`.
const ALB_ROUTES: [(Route, u32); 5] = [
    (route("GET", "/v2/accounts/#", 500), 30),
    (route("GET", "/v2/accounts/#/statements/#", 60), 10),
    (route("POST", "/v2/payments", 1), 15),
    (route("GET", "/v2/payments/#", 3_000), 25),
    (route("GET", "/v2/status", 1), 5),
];

/// Response statuses with their weights. The views count 101 as "other" and 499 as 4xx.
const STATUSES: [(u16, u32); 15] = [
    (200, 600),
    (201, 40),
    (204, 30),
    (101, 2),
    (301, 10),
    (304, 40),
    (400, 25),
    (401, 30),
    (403, 15),
    (404, 60),
    (429, 20),
    (499, 5),
    (500, 12),
    (502, 8),
    (503, 6),
];

/// Clients that make most calls, each with its own user agents.
const HEAVY_CLIENTS: [(&str, &[&str]); 8] = [
    ("192.0.2.10", &["okhttp/4.12.0"]),
    (
        "192.0.2.11",
        &["python-requests/2.31.0", "python-requests/2.32.3"],
    ),
    ("192.0.2.57", &["Go-http-client/1.1"]),
    ("203.0.113.5", &["curl/8.5.0", "curl/8.7.1"]),
    (
        "203.0.113.77",
        &[
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/122.0.0.0 Safari/537.36",
        ],
    ),
    ("198.51.100.250", &["axios/1.6.7"]),
    ("2001:db8:85a3::8a2e:370:7334", &["Dart/3.3 (dart:io)"]),
    ("2001:db8:4f2a::17", &["PostmanRuntime/7.36.3"]),
];

/// Number of mobile clients with few calls each, at `198.51.100.1` and up.
const MOBILE_CLIENTS: u64 = 180;

/// Client that scans product ids within one hour with a new user agent every few calls.
const SCANNER_IP: &str = "203.0.113.66";
/// Hour of the scan, counted from [`STREAM_START`].
const SCANNER_HOUR: i64 = 30;

/// How many lines of each kind a generated stream has, and over how long.
#[derive(Debug, Clone, Copy)]
struct StreamSize {
    /// Length of the stream from [`STREAM_START`], which must cover hour
    /// [`SCANNER_HOUR`] when `scanner` is not 0.
    seconds: i64,
    nginx: usize,
    alb: usize,
    /// Calls of the scanner, each for another product id, all in one hour.
    scanner: usize,
}

/// Generates a stream of calls, in no particular order.
fn generate_logs(rng: &mut Rng, size: StreamSize) -> Vec<LogLine> {
    let mut lines = Vec::with_capacity(size.nginx + size.alb + size.scanner);
    for _ in 0..size.nginx {
        lines.push(nginx_line(rng, size.seconds));
    }
    for _ in 0..size.alb {
        lines.push(alb_line(rng, size.seconds));
    }
    for call in 0..size.scanner {
        lines.push(scanner_line(rng, call));
    }
    lines
}

/// Picks a client address and one of its user agents.
fn pick_client(rng: &mut Rng, ipv4_only: bool) -> (String, String) {
    if rng.chance(0.75) {
        loop {
            let (ip, agents) = rng.pick(&HEAVY_CLIENTS);
            if ipv4_only && ip.contains(':') {
                continue;
            }
            return (ip.to_string(), rng.pick(agents).to_string());
        }
    }
    let host = 1 + rng.below(MOBILE_CLIENTS);
    let agent = format!(
        "ExampleApp/3.{} (iPhone; iOS 17.{}; Scale/3.00)",
        rng.below(4),
        rng.below(5)
    );
    (format!("198.51.100.{host}"), agent)
}

/// Fills the `#` of a route with random ids.
fn fill_route(rng: &mut Rng, route: &Route) -> String {
    let mut path = String::new();
    for (i, part) in route.pattern.split('#').enumerate() {
        if i > 0 {
            path.push_str(&(1 + rng.below(route.ids)).to_string());
        }
        path.push_str(part);
    }
    path
}

/// Returns the civil date `(year, month, day)` of a day count since 1970-01-01.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    // Howard Hinnant's algorithm for the proleptic Gregorian calendar.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1_460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = (day_of_year - (153 * month_index + 2) / 5 + 1) as u32;
    let month = if month_index < 10 {
        month_index + 3
    } else {
        month_index - 9
    } as u32;
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// Splits seconds since the epoch into a civil date and the time of day.
fn civil_time(seconds: i64) -> ((i64, u32, u32), (i64, i64, i64)) {
    let date = civil_from_days(seconds.div_euclid(86_400));
    let of_day = seconds.rem_euclid(86_400);
    (date, (of_day / 3_600, of_day / 60 % 60, of_day % 60))
}

/// Formats a time as nginx logs it, in a zone `offset_minutes` east of UTC.
fn clf_time(utc_seconds: i64, offset_minutes: i64) -> String {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let ((year, month, day), (hour, minute, second)) =
        civil_time(utc_seconds + offset_minutes * 60);
    let sign = if offset_minutes < 0 { '-' } else { '+' };
    let offset = offset_minutes.abs();
    format!(
        "{day:02}/{}/{year}:{hour:02}:{minute:02}:{second:02} {sign}{:02}{:02}",
        MONTHS[month as usize - 1],
        offset / 60,
        offset % 60
    )
}

/// Formats a time in microseconds as the load balancer logs it.
fn iso_time(utc_micros: i64) -> String {
    let ((year, month, day), (hour, minute, second)) = civil_time(utc_micros.div_euclid(1_000_000));
    let micros = utc_micros.rem_euclid(1_000_000);
    format!("{year}-{month:02}-{day:02}T{hour:02}:{minute:02}:{second:02}.{micros:06}Z")
}

fn response_size(rng: &mut Rng, status: u16) -> String {
    if matches!(status, 101 | 204 | 304) {
        return "0".to_string();
    }
    if rng.chance(0.03) {
        return "-".to_string();
    }
    (40 + rng.below(20_000)).to_string()
}

/// Generates one line of the nginx combined format, from one of three servers in different time zones.
fn nginx_line(rng: &mut Rng, seconds: i64) -> LogLine {
    let time = STREAM_START + rng.below(seconds as u64) as i64;
    let offset_minutes = *rng.weighted(&[(0, 6), (120, 3), (330, 1)]);
    let (ip, agent) = pick_client(rng, false);

    let route = rng.weighted(&NGINX_ROUTES);
    let mut target = fill_route(rng, route);
    if route.method == "GET" && rng.chance(0.1) {
        target.push_str(&format!("?page={}&limit=50", 1 + rng.below(9)));
    }

    let status = *rng.weighted(&STATUSES);
    let size = response_size(rng, status);
    let referer = if rng.chance(0.2) {
        "https://app.example.com/dashboard"
    } else {
        "-"
    };
    let version = if rng.chance(0.3) {
        "HTTP/2.0"
    } else {
        "HTTP/1.1"
    };

    let text = format!(
        "{ip} - - [{}] \"{} {target} {version}\" {status} {size} \"{referer}\" \"{agent}\"\n",
        clf_time(time, offset_minutes),
        route.method
    );
    LogLine {
        format: LogFormat::Clf,
        time: time * 1_000_000,
        text,
    }
}

/// Seconds with three decimals, as the load balancer logs processing times.
fn seconds_text(millis: u64) -> String {
    format!("{}.{:03}", millis / 1_000, millis % 1_000)
}

/// Generates one line of an Application Load Balancer log for host `api.example.com`.
fn alb_line(rng: &mut Rng, seconds: i64) -> LogLine {
    let time = (STREAM_START * 1_000_000) + rng.below(seconds as u64 * 1_000_000) as i64;
    let (ip, agent) = pick_client(rng, true);
    let port = 1_024 + rng.below(60_000);

    let route = rng.weighted(&ALB_ROUTES);
    let path = fill_route(rng, route);
    let received = 120 + rng.below(3_000);
    let sent = 200 + rng.below(50_000);

    // A call without a target logs -1 times, so its duration is unknown.
    let (status, target_status, times) = if rng.chance(0.03) {
        let status = *rng.pick(&[502u16, 503, 504]);
        (status, "-".to_string(), "-1 -1 -1".to_string())
    } else {
        let status = *rng.weighted(&STATUSES);
        // Mostly fast calls with a long tail, up to 3 s.
        let target_millis = 2 + (rng.unit().powi(4) * 3_000.0) as u64;
        let times = format!(
            "{} {} 0.000",
            seconds_text(rng.below(2)),
            seconds_text(target_millis)
        );
        (status, status.to_string(), times)
    };

    let trace = format!(
        "Root=1-{:08x}-{:08x}{:016x}",
        time / 1_000_000,
        rng.below(1 << 32),
        rng.next_u64()
    );
    let text = format!(
        "https {} app/api-lb/50dc6c495c0c9188 {ip}:{port} 192.0.2.250:8080 {times} {status} {target_status} {received} {sent} \
         \"{} https://api.example.com:443{path} HTTP/1.1\" \"{agent}\" ECDHE-RSA-AES128-GCM-SHA256 TLSv1.2 \
         arn:aws:elasticloadbalancing:us-east-2:123456789012:targetgroup/api/73e2d6bc24d8a067 \"{trace}\" \
         \"api.example.com\" \"arn:aws:acm:us-east-2:123456789012:certificate/12345678-1234-1234-1234-123456789012\" \
         0 {} \"forward\" \"-\" \"-\" \"192.0.2.250:8080\" \"{target_status}\" \"-\" \"-\"\n",
        iso_time(time),
        route.method,
        iso_time(time)
    );
    LogLine {
        format: LogFormat::Alb,
        time,
        text,
    }
}

/// Generates call `call` of the scanner, for product id `call + 1` with one of 300 user agents.
fn scanner_line(rng: &mut Rng, call: usize) -> LogLine {
    let time = STREAM_START + SCANNER_HOUR * 3_600 + rng.below(3_600) as i64;
    let agent = format!(
        "Mozilla/5.0 (compatible; ExampleScanner/{}.{})",
        call % 20,
        call / 20 % 15
    );
    let status = if rng.chance(0.8) { 404 } else { 200 };
    let text = format!(
        "{SCANNER_IP} - - [{}] \"GET /api/v1/products/{} HTTP/1.1\" {status} 153 \"-\" \"{agent}\"\n",
        clf_time(time, 0),
        call + 1
    );
    LogLine {
        format: LogFormat::Clf,
        time: time * 1_000_000,
        text,
    }
}

// ---------------------------------------------------------------------------
// Ingest
// ---------------------------------------------------------------------------

/// Lines of one format sent as one ingest request.
struct Batch {
    format: LogFormat,
    body: String,
    lines: usize,
}

/// Shuffles `lines` and cuts them into batches of 1 to [`MAX_BATCH_LINES`] lines of one format.
fn shuffled_batches(lines: &[LogLine], rng: &mut Rng) -> Vec<Batch> {
    let mut by_format: Vec<(LogFormat, Vec<&str>)> = [LogFormat::Clf, LogFormat::Alb]
        .into_iter()
        .map(|format| {
            let texts = lines
                .iter()
                .filter(|line| line.format == format)
                .map(|line| line.text.as_str())
                .collect();
            (format, texts)
        })
        .collect();
    for (_, texts) in &mut by_format {
        rng.shuffle(texts);
    }

    let mut batches = Vec::new();
    loop {
        let remaining: u64 = by_format.iter().map(|(_, t)| t.len() as u64).sum();
        if remaining == 0 {
            return batches;
        }
        // Choose the format in proportion to what is left, so both run out together.
        let mut point = rng.below(remaining);
        let index = by_format
            .iter()
            .position(|(_, texts)| {
                let len = texts.len() as u64;
                if point < len {
                    return true;
                }
                point -= len;
                false
            })
            .expect("the point is below the number of remaining lines");
        let (format, texts) = &mut by_format[index];
        let take = (1 + rng.below(MAX_BATCH_LINES) as usize).min(texts.len());
        let body: String = texts.drain(texts.len() - take..).collect();
        batches.push(Batch {
            format: *format,
            body,
            lines: take,
        });
    }
}

/// Sends one batch, with `sensor` as the ingest `sensor` parameter, and checks that every line was accepted.
fn send_batch(api: &Api, batch: &Batch, sensor: Option<&str>) {
    let mut params = vec![("format", batch.format.name())];
    if let Some(sensor) = sensor {
        params.push(("sensor", sensor));
    }
    let (status, report) = api.ingest_request(&params, None, batch.body.clone().into_bytes());
    assert_eq!(
        status,
        200,
        "ingest of {} {} lines failed: {report}",
        batch.lines,
        batch.format.name()
    );
    assert_eq!(
        report["accepted"],
        batch.lines,
        "ingest accepted fewer lines than the {} batch has: {report}",
        batch.format.name()
    );
}

/// Sends `lines` in random order and random batch sizes.
fn ingest_shuffled(api: &Api, lines: &[LogLine], rng: &mut Rng, sensor: Option<&str>) {
    for batch in shuffled_batches(lines, rng) {
        send_batch(api, &batch, sensor);
    }
}

fn metric_or_zero(api: &Api, name: &str) -> f64 {
    api.metric(name).unwrap_or(0.0)
}

// ---------------------------------------------------------------------------
// Views and the same aggregations over `events`
// ---------------------------------------------------------------------------

/// How a view column is compared with the value computed from `events`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Check {
    /// Equal JSON values.
    Exact,
    /// Lists with the same members in any order.
    Set,
    /// A distinct count: exact up to [`EXACT_DISTINCT_LIMIT`], else within [`DISTINCT_TOLERANCE`].
    Distinct,
    /// A quantile within [`QUANTILE_TOLERANCE`] of the exact one, or both null.
    Quantile,
}

/// Columns of a view that the tests read, and how each is compared.
struct ViewSpec {
    name: &'static str,
    /// Columns that identify a row.
    keys: &'static [&'static str],
    columns: &'static [(&'static str, Check)],
    /// Query that reads the view, selecting the keys and `columns` by name.
    sql: &'static str,
}

const ENDPOINTS: ViewSpec = ViewSpec {
    name: "endpoints",
    keys: &["host", "method", "endpoint"],
    columns: &[
        ("first_seen", Check::Exact),
        ("last_seen", Check::Exact),
        ("calls", Check::Exact),
        ("status_4xx", Check::Exact),
        ("status_5xx", Check::Exact),
        ("consumers", Check::Exact),
        ("auth_schemes", Check::Set),
        ("latency_p50_ms", Check::Quantile),
        ("latency_p95_ms", Check::Quantile),
        ("latency_p99_ms", Check::Quantile),
        ("bytes_out", Check::Exact),
    ],
    sql: "SELECT host, method, endpoint, first_seen, last_seen, calls, status_4xx, status_5xx,
        consumers, auth_schemes, latency_p50_ms, latency_p95_ms, latency_p99_ms, bytes_out
        FROM endpoints",
};

const CONSUMERS: ViewSpec = ViewSpec {
    name: "consumers",
    keys: &["consumer"],
    columns: &[
        ("kind", Check::Exact),
        ("first_seen", Check::Exact),
        ("last_seen", Check::Exact),
        ("calls", Check::Exact),
        ("endpoints", Check::Exact),
        ("client_ips", Check::Distinct),
        ("user_agents", Check::Distinct),
    ],
    sql: "SELECT consumer, kind, first_seen, last_seen, calls, endpoints, client_ips, user_agents
        FROM consumers",
};

/// `consumer_activity`, with its latency sketch read through `sketch_quantile`
/// and its object id sketch through `distinct_count`.
const ACTIVITY: ViewSpec = ViewSpec {
    name: "consumer_activity",
    keys: &["hour", "consumer", "host", "method", "endpoint"],
    columns: &[
        ("calls", Check::Exact),
        ("status_2xx", Check::Exact),
        ("status_3xx", Check::Exact),
        ("status_4xx", Check::Exact),
        ("status_5xx", Check::Exact),
        ("status_other", Check::Exact),
        ("status_401", Check::Exact),
        ("status_403", Check::Exact),
        ("status_404", Check::Exact),
        ("status_429", Check::Exact),
        ("bytes_in", Check::Exact),
        ("bytes_out", Check::Exact),
        ("latency_p50_ms", Check::Quantile),
        ("latency_p95_ms", Check::Quantile),
        ("latency_p99_ms", Check::Quantile),
        ("client_ips", Check::Distinct),
        ("object_ids", Check::Distinct),
        ("object_ids_sketch_count", Check::Distinct),
        ("user_agents", Check::Distinct),
    ],
    sql: "SELECT hour, consumer, host, method, endpoint, calls,
        status_2xx, status_3xx, status_4xx, status_5xx, status_other,
        status_401, status_403, status_404, status_429, bytes_in, bytes_out,
        sketch_quantile(latency_sketch, 0.5) AS latency_p50_ms,
        sketch_quantile(latency_sketch, 0.95) AS latency_p95_ms,
        sketch_quantile(latency_sketch, 0.99) AS latency_p99_ms,
        client_ips, object_ids,
        distinct_count(object_ids_sketch) AS object_ids_sketch_count,
        user_agents
        FROM consumer_activity",
};

const VIEWS: [&ViewSpec; 3] = [&ENDPOINTS, &CONSUMERS, &ACTIVITY];

/// Key of a row as its JSON key values, such as `(null, "GET", "/v1/x")`.
fn row_key(row: &Value, keys: &[&str]) -> String {
    let values: Vec<String> = keys.iter().map(|key| row[*key].to_string()).collect();
    format!("({})", values.join(", "))
}

/// Rows keyed by [`row_key`].
fn by_key(rows: &[Value], keys: &[&str]) -> BTreeMap<String, Value> {
    rows.iter()
        .map(|row| (row_key(row, keys), row.clone()))
        .collect()
}

fn sql_events(template: &str, filter: &str) -> String {
    template.replace("{filter}", filter)
}

/// `endpoints` over the events that match `filter`, without latency and auth schemes.
const EVENTS_ENDPOINTS_SQL: &str = "
SELECT host, method, endpoint,
    min(time) AS first_seen,
    max(time) AS last_seen,
    count(*) AS calls,
    sum(CASE WHEN status BETWEEN 400 AND 499 THEN 1 ELSE 0 END) AS status_4xx,
    sum(CASE WHEN status BETWEEN 500 AND 599 THEN 1 ELSE 0 END) AS status_5xx,
    count(DISTINCT consumer) AS consumers,
    coalesce(sum(response_bytes), 0) AS bytes_out
FROM events
WHERE {filter}
GROUP BY host, method, endpoint";

/// `consumers` over the events that match `filter`, without the endpoint count.
const EVENTS_CONSUMERS_SQL: &str = "
SELECT consumer,
    max(consumer_kind) AS kind,
    min(time) AS first_seen,
    max(time) AS last_seen,
    count(*) AS calls,
    count(DISTINCT client_ip) AS client_ips,
    count(DISTINCT user_agent) AS user_agents
FROM events
WHERE {filter}
GROUP BY consumer";

/// Distinct host, method and endpoint triples per consumer.
const EVENTS_CONSUMER_ENDPOINTS_SQL: &str = "
SELECT consumer, count(*) AS endpoints
FROM (SELECT DISTINCT consumer, host, method, endpoint FROM events WHERE {filter})
GROUP BY consumer";

/// `consumer_activity` over the events that match `filter`, without latency and object ids.
const EVENTS_ACTIVITY_SQL: &str = "
SELECT date_trunc('hour', time) AS hour, consumer, host, method, endpoint,
    count(*) AS calls,
    sum(CASE WHEN status BETWEEN 200 AND 299 THEN 1 ELSE 0 END) AS status_2xx,
    sum(CASE WHEN status BETWEEN 300 AND 399 THEN 1 ELSE 0 END) AS status_3xx,
    sum(CASE WHEN status BETWEEN 400 AND 499 THEN 1 ELSE 0 END) AS status_4xx,
    sum(CASE WHEN status BETWEEN 500 AND 599 THEN 1 ELSE 0 END) AS status_5xx,
    sum(CASE WHEN status BETWEEN 200 AND 599 THEN 0 ELSE 1 END) AS status_other,
    sum(CASE WHEN status = 401 THEN 1 ELSE 0 END) AS status_401,
    sum(CASE WHEN status = 403 THEN 1 ELSE 0 END) AS status_403,
    sum(CASE WHEN status = 404 THEN 1 ELSE 0 END) AS status_404,
    sum(CASE WHEN status = 429 THEN 1 ELSE 0 END) AS status_429,
    coalesce(sum(request_bytes), 0) AS bytes_in,
    coalesce(sum(response_bytes), 0) AS bytes_out,
    count(DISTINCT client_ip) AS client_ips,
    count(DISTINCT user_agent) AS user_agents
FROM events
WHERE {filter}
GROUP BY date_trunc('hour', time), consumer, host, method, endpoint";

const EVENTS_DURATIONS_SQL: &str = "
SELECT date_trunc('hour', time) AS hour, consumer, host, method, endpoint, duration_ms
FROM events
WHERE {filter} AND duration_ms IS NOT NULL";

const EVENTS_PATHS_SQL: &str = "
SELECT DISTINCT date_trunc('hour', time) AS hour, consumer, host, method, endpoint, path
FROM events
WHERE {filter} AND path IS NOT NULL AND endpoint IS NOT NULL";

const EVENTS_AUTH_SCHEMES_SQL: &str = "
SELECT DISTINCT host, method, endpoint, auth_scheme
FROM events
WHERE {filter} AND auth_scheme IS NOT NULL";

/// Returns the value at rank `floor(q * (n - 1))` of sorted `values`.
fn exact_quantile(sorted: &[f64], q: f64) -> Value {
    if sorted.is_empty() {
        return Value::Null;
    }
    let rank = (q * (sorted.len() - 1) as f64).floor() as usize;
    Value::from(sorted[rank])
}

/// Sets the latency columns of each row from the durations grouped under its key.
fn add_quantiles(rows: &mut [Value], keys: &[&str], durations: &[Value]) {
    let mut grouped: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    for row in durations {
        let duration = row["duration_ms"]
            .as_f64()
            .unwrap_or_else(|| panic!("duration_ms is not a number: {row}"));
        grouped
            .entry(row_key(row, keys))
            .or_default()
            .push(duration);
    }
    for values in grouped.values_mut() {
        values.sort_by(f64::total_cmp);
    }
    for row in rows {
        let sorted = grouped
            .get(&row_key(row, keys))
            .map(Vec::as_slice)
            .unwrap_or_default();
        for (column, q) in QUANTILES {
            row[column] = exact_quantile(sorted, q);
        }
    }
}

/// Returns the object ids of a path under its endpoint template: the path
/// segments at `{...}` placeholders, keyed by segment position, and without
/// the literal suffix that follows the placeholder (`{id}.json`). A path with
/// another number of segments than its template has none.
fn object_ids(path: &str, endpoint: &str) -> Vec<String> {
    let path_segments: Vec<&str> = path.split('/').collect();
    let template_segments: Vec<&str> = endpoint.split('/').collect();
    if path_segments.len() != template_segments.len() {
        return Vec::new();
    }
    let mut ids = Vec::new();
    for (position, (value, template)) in path_segments.iter().zip(&template_segments).enumerate() {
        let Some(close) = template.find('}') else {
            continue;
        };
        if !template.starts_with('{') {
            continue;
        }
        let suffix = &template[close + 1..];
        let stem = value.strip_suffix(suffix).unwrap_or(value);
        ids.push(format!("{position}:{stem}"));
    }
    ids
}

/// The three views computed from `events` rows that match `filter`, with the view's column names.
struct ExpectedViews {
    endpoints: Vec<Value>,
    consumers: Vec<Value>,
    activity: Vec<Value>,
}

fn expected_views(api: &Api, filter: &str) -> ExpectedViews {
    let durations = api.query(&sql_events(EVENTS_DURATIONS_SQL, filter));

    let mut endpoints = api.query(&sql_events(EVENTS_ENDPOINTS_SQL, filter));
    add_quantiles(&mut endpoints, ENDPOINTS.keys, &durations);
    let mut schemes: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for row in api.query(&sql_events(EVENTS_AUTH_SCHEMES_SQL, filter)) {
        schemes
            .entry(row_key(&row, ENDPOINTS.keys))
            .or_default()
            .push(row["auth_scheme"].clone());
    }
    for row in &mut endpoints {
        let list = schemes
            .get(&row_key(row, ENDPOINTS.keys))
            .cloned()
            .unwrap_or_default();
        row["auth_schemes"] = Value::Array(list);
    }

    let mut consumers = api.query(&sql_events(EVENTS_CONSUMERS_SQL, filter));
    let endpoint_counts = by_key(
        &api.query(&sql_events(EVENTS_CONSUMER_ENDPOINTS_SQL, filter)),
        CONSUMERS.keys,
    );
    for row in &mut consumers {
        let key = row_key(row, CONSUMERS.keys);
        row["endpoints"] = endpoint_counts
            .get(&key)
            .map(|counted| counted["endpoints"].clone())
            .unwrap_or_else(|| panic!("no endpoint count in events for consumer {key}"));
    }

    let mut activity = api.query(&sql_events(EVENTS_ACTIVITY_SQL, filter));
    add_quantiles(&mut activity, ACTIVITY.keys, &durations);
    let mut ids: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for row in api.query(&sql_events(EVENTS_PATHS_SQL, filter)) {
        let path = row["path"].as_str().expect("the query keeps paths");
        let endpoint = row["endpoint"].as_str().expect("the query keeps endpoints");
        ids.entry(row_key(&row, ACTIVITY.keys))
            .or_default()
            .extend(object_ids(path, endpoint));
    }
    for row in &mut activity {
        let count = ids
            .get(&row_key(row, ACTIVITY.keys))
            .map_or(0, BTreeSet::len);
        row["object_ids"] = Value::from(count);
        row["object_ids_sketch_count"] = Value::from(count);
    }

    ExpectedViews {
        endpoints,
        consumers,
        activity,
    }
}

/// Checks `view` against `expected` under `check`.
fn values_agree(check: Check, view: &Value, expected: &Value) -> bool {
    match check {
        Check::Exact => view == expected,
        Check::Set => {
            let members = |value: &Value| -> Option<BTreeSet<String>> {
                Some(value.as_array()?.iter().map(Value::to_string).collect())
            };
            members(view).is_some() && members(view) == members(expected)
        }
        Check::Distinct => {
            let (Some(view), Some(expected)) = (view.as_u64(), expected.as_u64()) else {
                return false;
            };
            if expected <= EXACT_DISTINCT_LIMIT {
                view == expected
            } else {
                view.abs_diff(expected) as f64 <= DISTINCT_TOLERANCE * expected as f64
            }
        }
        Check::Quantile => match (view.as_f64(), expected.as_f64()) {
            (Some(view), Some(expected)) => {
                (view - expected).abs() <= QUANTILE_TOLERANCE * expected.abs() + 1e-9
            }
            _ => view.is_null() && expected.is_null(),
        },
    }
}

/// Asserts that `actual` rows of a view have the keys of `expected` and agreeing column values.
///
/// With `exact`, every column must be equal, as when a view is compared with
/// an earlier reading of itself.
fn assert_rows_agree(
    spec: &ViewSpec,
    actual: &[Value],
    expected: &[Value],
    exact: bool,
    when: &str,
) {
    let view = spec.name;
    let actual_rows = by_key(actual, spec.keys);
    assert_eq!(
        actual_rows.len(),
        actual.len(),
        "{when}: {view} has several rows for one key"
    );
    let expected_rows = by_key(expected, spec.keys);

    let missing: Vec<&String> = expected_rows
        .keys()
        .filter(|key| !actual_rows.contains_key(*key))
        .collect();
    assert!(
        missing.is_empty(),
        "{when}: {view} lacks {} of {} keys {:?}, such as {:?}",
        missing.len(),
        expected_rows.len(),
        spec.keys,
        &missing[..missing.len().min(5)]
    );
    let extra: Vec<&String> = actual_rows
        .keys()
        .filter(|key| !expected_rows.contains_key(*key))
        .collect();
    assert!(
        extra.is_empty(),
        "{when}: {view} has {} keys {:?} that the expected rows lack, such as {:?}",
        extra.len(),
        spec.keys,
        &extra[..extra.len().min(5)]
    );

    for &(column, check) in spec.columns {
        let check = if exact && check != Check::Set {
            Check::Exact
        } else {
            check
        };
        let differing: Vec<String> = expected_rows
            .iter()
            .filter_map(|(key, expected_row)| {
                let view_value = &actual_rows[key][column];
                let expected_value = &expected_row[column];
                (!values_agree(check, view_value, expected_value))
                    .then(|| format!("{key}: view {view_value}, expected {expected_value}"))
            })
            .collect();
        assert!(
            differing.is_empty(),
            "{when}: {view}.{column} ({check:?}) differs for {} of {} keys {:?}:\n  {}",
            differing.len(),
            expected_rows.len(),
            spec.keys,
            differing[..differing.len().min(8)].join("\n  ")
        );
    }
}

/// Asserts that each view equals its aggregation over the events that match `filter`.
fn assert_views_match_filtered(api: &Api, filter: &str, when: &str) {
    let expected = expected_views(api, filter);
    let pairs = [
        (&ENDPOINTS, &expected.endpoints),
        (&CONSUMERS, &expected.consumers),
        (&ACTIVITY, &expected.activity),
    ];
    for (spec, expected_rows) in pairs {
        let actual = api.query(spec.sql);
        assert_rows_agree(spec, &actual, expected_rows, false, when);
    }
}

/// Asserts that each view equals its aggregation over all events.
fn assert_views_match_events(api: &Api, when: &str) {
    assert_views_match_filtered(api, "TRUE", when);
}

/// Reads the three views, in the order of [`VIEWS`].
fn read_views(api: &Api) -> Vec<Vec<Value>> {
    VIEWS.iter().map(|spec| api.query(spec.sql)).collect()
}

/// Asserts that the views still read as `before` did.
fn assert_views_unchanged(api: &Api, before: &[Vec<Value>], when: &str) {
    for (spec, before_rows) in VIEWS.iter().zip(before) {
        let now = api.query(spec.sql);
        assert_rows_agree(spec, &now, before_rows, true, when);
    }
}

// ---------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------

/// About 21,000 calls over three days from nginx and a load balancer, sent in
/// random order and batch sizes while the server flushes 0.2 s after each
/// ingest: the views match `events` right after the last ingest, with
/// partials both committed and in memory, and again once all are committed.
#[test]
fn stream_matches_events() {
    let server = TestServer::start(ServerOptions::quick_flush());
    let mut rng = Rng::new(1);
    let lines = generate_logs(
        &mut rng,
        StreamSize {
            seconds: STREAM_SECONDS,
            nginx: 15_000,
            alb: 5_500,
            scanner: 600,
        },
    );
    ingest_shuffled(server.api(), &lines, &mut rng, None);
    assert_eq!(
        server.count(""),
        lines.len() as i64,
        "events must hold every ingested line"
    );

    let flushes = metric_or_zero(server.api(), "apitrail_flushes_total");
    assert!(
        flushes >= 1.0,
        "no flush ran during the ingest, so no partial was committed"
    );
    assert_views_match_events(server.api(), "right after the last ingest");

    server.api().wait_for_empty_buffer();
    assert_views_match_events(server.api(), "after every partial was committed");
}

/// Returns options that flush when 1,500 rows are buffered and never by age,
/// so that the last rows of a stream stay in memory.
fn flush_by_rows() -> ServerOptions {
    ServerOptions {
        flush_max_rows: Some(1_500),
        ..ServerOptions::no_flush()
    }
}

/// Rows held back from a stream until the flushes by size have settled, so
/// that they are still in memory when the server stops.
const TAIL_LINES: usize = 100;

/// Ingests half a stream, stops the server with SIGTERM or SIGKILL while the
/// last partials are in memory, restarts it and ingests the other half,
/// checking the views after each step.
fn check_restart_mid_stream(kill: bool, seed: u64) {
    let signal_name = if kill { "SIGKILL" } else { "SIGTERM" };
    let mut server = TestServer::start(flush_by_rows());
    let mut rng = Rng::new(seed);
    let lines = generate_logs(
        &mut rng,
        StreamSize {
            seconds: STREAM_SECONDS,
            nginx: 6_000,
            alb: 2_000,
            scanner: 300,
        },
    );
    let (first_half, second_half) = lines.split_at(lines.len() / 2);
    let (before_tail, tail) = first_half.split_at(first_half.len() - TAIL_LINES);

    ingest_shuffled(server.api(), before_tail, &mut rng, None);
    poll_until(
        Duration::from_secs(30),
        "the flushes by size to finish",
        || (metric_or_zero(server.api(), "apitrail_buffer_rows") < 1_400.0).then_some(()),
    );
    ingest_shuffled(server.api(), tail, &mut rng, None);
    let buffered = metric_or_zero(server.api(), "apitrail_buffer_rows");
    assert!(
        buffered >= TAIL_LINES as f64,
        "before the {signal_name}, only {buffered} rows are buffered, expected at least the {TAIL_LINES} tail rows"
    );
    let flushes = metric_or_zero(server.api(), "apitrail_flushes_total");
    assert!(
        flushes >= 1.0,
        "before the {signal_name}, no flush has committed partials"
    );
    assert_views_match_events(server.api(), &format!("before the {signal_name}"));

    if kill {
        server.sigkill();
    } else {
        server.stop();
    }
    server.restart();
    assert_eq!(
        server.count(""),
        first_half.len() as i64,
        "events after the {signal_name} must hold the first half of the stream"
    );
    assert_views_match_events(
        server.api(),
        &format!("after the {signal_name} and restart"),
    );

    ingest_shuffled(server.api(), second_half, &mut rng, None);
    assert_eq!(
        server.count(""),
        lines.len() as i64,
        "events after the {signal_name} and the second half must hold the whole stream"
    );
    assert_views_match_events(
        server.api(),
        &format!("after the {signal_name} and the second half of the stream"),
    );

    server.stop();
    server.restart();
    assert_views_match_events(
        server.api(),
        &format!("after the {signal_name} and a later clean restart"),
    );
}

#[test]
fn sigterm_mid_stream() {
    check_restart_mid_stream(false, 2);
}

#[test]
fn sigkill_mid_stream() {
    check_restart_mid_stream(true, 3);
}

/// Ingests a stream into a server that aborts at `failpoint` during its first
/// flush, restarts it without the crash point and checks that the views
/// count every event once, before and after more ingest and a clean restart.
fn check_crash_between_commits(failpoint: &str, seed: u64) {
    let mut rng = Rng::new(seed);
    let lines = generate_logs(
        &mut rng,
        StreamSize {
            seconds: STREAM_SECONDS,
            nginx: 3_000,
            alb: 1_000,
            scanner: 0,
        },
    );
    // The batch that reaches this many buffered rows starts the first flush.
    let options = ServerOptions {
        flush_max_rows: Some(lines.len()),
        ..ServerOptions::no_flush()
    }
    .with_failpoint(failpoint);
    let mut server = TestServer::start(options);

    let mut batches = shuffled_batches(&lines, &mut rng);
    let last = batches.pop().expect("a stream has at least one batch");
    for batch in &batches {
        send_batch(server.api(), batch, None);
    }
    // The flush may abort the process before the response to the last batch
    // is written. Its lines are in the WAL by then, because the flush starts
    // only after they were appended.
    let _ = server.api().try_ingest_request(
        &[("format", last.format.name())],
        None,
        last.body.into_bytes(),
    );

    let exit = server.wait_for_exit(CRASH_TIMEOUT);
    assert_eq!(
        exit.signal(),
        Some(libc::SIGABRT),
        "the server must abort at {failpoint}, but ended with {}",
        describe_exit(exit)
    );
    let stderr = server.stderr();
    assert!(
        stderr.contains(&format!("aborting at failpoint {failpoint}")),
        "stderr does not show the crash point {failpoint}:\n{stderr}"
    );

    server.restart_with(ServerOptions::quick_flush());
    assert_eq!(
        server.count(""),
        lines.len() as i64,
        "events after the crash at {failpoint} must hold every line"
    );
    assert_views_match_events(
        server.api(),
        &format!("after the crash at {failpoint} and restart"),
    );

    let more = generate_logs(
        &mut rng,
        StreamSize {
            seconds: STREAM_SECONDS,
            nginx: 1_000,
            alb: 300,
            scanner: 0,
        },
    );
    ingest_shuffled(server.api(), &more, &mut rng, None);
    server.api().wait_for_empty_buffer();
    assert_views_match_events(
        server.api(),
        &format!("after the crash at {failpoint}, more ingest and a flush"),
    );

    server.stop();
    server.restart();
    assert_eq!(
        server.count(""),
        (lines.len() + more.len()) as i64,
        "events after the clean restart following {failpoint}"
    );
    assert_views_match_events(
        server.api(),
        &format!("after the crash at {failpoint} and a later clean restart"),
    );
}

#[test]
fn crash_before_views() {
    check_crash_between_commits("flush_before_views", 4);
}

#[test]
fn crash_before_truncate() {
    check_crash_between_commits("flush_before_truncate", 5);
}

/// Returns the client, method and path of an nginx line, the key by which
/// sightings of one call without a request id are matched across sensors.
fn call_key(line: &LogLine) -> (String, String, String) {
    let client = line.text.split(' ').next().unwrap_or_default();
    let request = line.text.split('"').nth(1).unwrap_or_default();
    let mut parts = request.split(' ');
    let method = parts.next().unwrap_or_default();
    let target = parts.next().unwrap_or_default();
    let path = target.split('?').next().unwrap_or_default();
    (client.to_string(), method.to_string(), path.to_string())
}

/// Returns about 1,200 nginx calls within ten minutes, sorted by time, as one sensor logs them.
///
/// Calls that repeat the client, method and path of a call at most 1 s
/// earlier are left out. By the matching rule, the second sensor's sighting
/// of the first call would also match the second call, so such a pair may
/// count once.
fn sensor_stream(seed: u64) -> Vec<LogLine> {
    let mut rng = Rng::new(seed);
    let mut lines = generate_logs(
        &mut rng,
        StreamSize {
            seconds: 600,
            nginx: 1_200,
            alb: 0,
            scanner: 0,
        },
    );
    lines.sort_by_key(|line| line.time);
    let mut last_time: BTreeMap<(String, String, String), i64> = BTreeMap::new();
    lines.retain(|line| {
        let key = call_key(line);
        let repeats = last_time
            .get(&key)
            .is_some_and(|&time| line.time - time <= 1_000_000);
        if !repeats {
            last_time.insert(key, line.time);
        }
        !repeats
    });
    lines
}

/// Returns consecutive nginx lines as one batch.
fn clf_batch(lines: &[LogLine]) -> Batch {
    Batch {
        format: LogFormat::Clf,
        body: lines.iter().map(|line| line.text.as_str()).collect(),
        lines: lines.len(),
    }
}

/// Checks events and views after sensors `cdn` and `lb` both reported each of `calls` calls.
fn assert_counted_once(api: &Api, calls: usize, when: &str) {
    let calls = calls as i64;
    assert_eq!(
        api.count("sensor = 'cdn'"),
        calls,
        "{when}: events from sensor cdn"
    );
    assert_eq!(
        api.count("sensor = 'lb'"),
        calls,
        "{when}: events from sensor lb"
    );
    assert_eq!(
        api.count(""),
        2 * calls,
        "{when}: events must keep both sightings of each call"
    );

    let rows = api.query(
        "SELECT sum(calls) AS calls, sum(duplicate_sightings) AS duplicates
         FROM view_partials WHERE grain = 'all'",
    );
    assert_eq!(
        rows[0]["calls"], calls,
        "{when}: calls in view_partials at grain all, expected one per call: {rows:?}"
    );
    assert_eq!(
        rows[0]["duplicates"], calls,
        "{when}: duplicate sightings in view_partials at grain all, expected one per call: {rows:?}"
    );
    // Both sensors logged the same values in the columns that the views read,
    // so the views must equal the aggregation of the cdn events alone.
    assert_views_match_filtered(api, "sensor = 'cdn'", when);
}

/// A CDN and a load balancer ship their logs of the same calls in turns of
/// 20 calls, about 10 s of traffic: the views count each call once, while
/// `events` keeps both sightings.
#[test]
fn sensors_streamed_count_once() {
    let server = TestServer::start(ServerOptions::quick_flush());
    let lines = sensor_stream(6);
    for chunk in lines.chunks(20) {
        send_batch(server.api(), &clf_batch(chunk), Some("cdn"));
        send_batch(server.api(), &clf_batch(chunk), Some("lb"));
    }
    assert_counted_once(
        server.api(),
        lines.len(),
        "with the cdn and lb logs sent in turns",
    );

    server.api().wait_for_empty_buffer();
    assert_counted_once(
        server.api(),
        lines.len(),
        "with the cdn and lb logs sent in turns, after the flush",
    );
}

/// The CDN's whole log of ten minutes, then the load balancer's log of the
/// same calls, each in time order, as a backfill of two log files sends them:
/// the views count each call once.
#[test]
fn sensors_whole_logs_count_once() {
    let server = TestServer::start(ServerOptions::quick_flush());
    let lines = sensor_stream(7);
    for sensor in ["cdn", "lb"] {
        for chunk in lines.chunks(200) {
            send_batch(server.api(), &clf_batch(chunk), Some(sensor));
        }
    }
    assert_counted_once(
        server.api(),
        lines.len(),
        "with the whole cdn log sent before the lb log",
    );
}

/// A client calls a health check every second for 12 s, and the cdn and then
/// the lb report the calls. The views must count 12 calls, because each lb
/// sighting has a cdn sighting of the same client, method and path at the same second.
#[test]
fn sensors_repeated_path_count_once() {
    const CHECKS: usize = 12;
    let server = TestServer::start(ServerOptions::no_flush());
    let body: String = (0..CHECKS)
        .map(|second| {
            format!(
                "192.0.2.10 - - [04/Mar/2024:00:00:{:02} +0000] \"GET /healthz HTTP/1.1\" 200 2 \"-\" \"kube-probe/1.29\"\n",
                10 + second
            )
        })
        .collect();
    for sensor in ["cdn", "lb"] {
        let (status, report) = server.api().ingest_request(
            &[("format", "clf"), ("sensor", sensor)],
            None,
            body.clone().into_bytes(),
        );
        assert_eq!(
            status, 200,
            "ingest of the {sensor} health checks failed: {report}"
        );
    }

    let rows = server.query("SELECT calls FROM endpoints WHERE endpoint = '/healthz'");
    assert_eq!(
        rows.first().map(|row| row["calls"].clone()),
        Some(Value::from(CHECKS)),
        "endpoints.calls of GET /healthz after {CHECKS} checks seen by the cdn and the lb: {rows:?}"
    );
    assert_counted_once(
        server.api(),
        CHECKS,
        "with a health check every second seen by the cdn and the lb",
    );
}

/// A client calls a health check twice, 65 s apart, and each call is reported
/// by the cdn and then by the lb before the next call. The views must count 2 calls.
#[test]
fn sensors_minute_apart_count_once() {
    let server = TestServer::start(ServerOptions::no_flush());
    for time in ["00:00:00", "00:01:05"] {
        let line = format!(
            "192.0.2.10 - - [04/Mar/2024:{time} +0000] \"GET /healthz HTTP/1.1\" 200 2 \"-\" \"kube-probe/1.29\"\n"
        );
        for sensor in ["cdn", "lb"] {
            let (status, report) = server.api().ingest_request(
                &[("format", "clf"), ("sensor", sensor)],
                None,
                line.clone().into_bytes(),
            );
            assert_eq!(
                status, 200,
                "ingest of the {sensor} line at {time} failed: {report}"
            );
        }
    }
    assert_counted_once(
        server.api(),
        2,
        "with two health checks 65 s apart, each seen by the cdn and the lb",
    );
}

/// Identical lines through one sensor, or through none, are separate calls.
#[test]
fn one_sensor_counts_twice() {
    let server = TestServer::start(ServerOptions::quick_flush());
    let line = |ip: &str| {
        format!(
            "{ip} - - [05/Mar/2024:10:15:00 +0000] \"POST /api/v1/orders HTTP/1.1\" 201 312 \"-\" \"okhttp/4.12.0\"\n"
        )
    };
    let cases: [(&str, Option<&str>); 2] = [("192.0.2.91", Some("gw")), ("192.0.2.92", None)];
    for (ip, sensor) in cases {
        let mut params = vec![("format", "clf")];
        if let Some(sensor) = sensor {
            params.push(("sensor", sensor));
        }
        let (status, report) =
            server
                .api()
                .ingest_request(&params, None, line(ip).repeat(2).into_bytes());
        assert_eq!(
            status, 200,
            "ingest of two identical lines failed: {report}"
        );
        let (status, report) = server
            .api()
            .ingest_request(&params, None, line(ip).into_bytes());
        assert_eq!(
            status, 200,
            "ingest of a third identical line failed: {report}"
        );
    }

    for (ip, sensor) in cases {
        let label = sensor.unwrap_or("no sensor");
        let rows = server.query(&format!(
            "SELECT calls FROM consumers WHERE consumer = '{ip}'"
        ));
        assert_eq!(
            rows.first().map(|row| row["calls"].clone()),
            Some(Value::from(3)),
            "consumers.calls of {ip} after three identical calls through {label}: {rows:?}"
        );
        let rows = server.query(&format!(
            "SELECT sum(calls) AS calls FROM consumer_activity WHERE consumer = '{ip}'"
        ));
        assert_eq!(
            rows[0]["calls"], 3,
            "consumer_activity calls of {ip} through {label}: {rows:?}"
        );
    }
    let rows = server
        .query("SELECT calls FROM endpoints WHERE method = 'POST' AND endpoint = '/api/v1/orders'");
    assert_eq!(
        rows.first().map(|row| row["calls"].clone()),
        Some(Value::from(6)),
        "endpoints.calls of POST /api/v1/orders after 3 + 3 identical calls: {rows:?}"
    );
    assert_views_match_events(server.api(), "after identical calls through one sensor");
}

/// The views return results from memory before any flush, and the same
/// results once the flush has committed the partials.
#[test]
fn views_before_flush() {
    let mut rng = Rng::new(7);
    let lines = generate_logs(
        &mut rng,
        StreamSize {
            seconds: STREAM_SECONDS,
            nginx: 2_500,
            alb: 800,
            scanner: 200,
        },
    );
    // One more row than the stream starts a flush by size.
    let server = TestServer::start(ServerOptions {
        flush_max_rows: Some(lines.len() + 1),
        ..ServerOptions::no_flush()
    });
    ingest_shuffled(server.api(), &lines, &mut rng, None);
    assert_eq!(
        metric_or_zero(server.api(), "apitrail_flushes_total"),
        0.0,
        "no flush may run before the row limit"
    );
    assert_views_match_events(server.api(), "before any flush");
    let before = read_views(server.api());

    // A call by a new consumer to a new endpoint reaches the row limit. It
    // adds one row to each view and changes no other row.
    const MARKER_IP: &str = "192.0.2.222";
    const MARKER_ENDPOINT: &str = "/internal/flush-marker";
    let marker = format!(
        "{MARKER_IP} - - [06/Mar/2024:23:59:59 +0000] \"GET {MARKER_ENDPOINT} HTTP/1.1\" 200 2 \"-\" \"curl/8.7.1\"\n"
    );
    let (status, report) = server.ingest(Some("clf"), marker);
    assert_eq!(status, 200, "ingest of the marker line failed: {report}");
    server.api().wait_for_empty_buffer();

    for (spec, before_rows) in VIEWS.iter().zip(&before) {
        let (marker_rows, rows): (Vec<Value>, Vec<Value>) = server
            .query(spec.sql)
            .into_iter()
            .partition(|row| row["consumer"] == MARKER_IP || row["endpoint"] == MARKER_ENDPOINT);
        assert_eq!(
            marker_rows.len(),
            1,
            "{} must have one row for the marker call: {marker_rows:?}",
            spec.name
        );
        assert_rows_agree(spec, &rows, before_rows, true, "after the flush");
    }
    assert_views_match_events(server.api(), "after the flush");
}

fn output_text(output: &Output) -> String {
    format!(
        "status {}\nstdout:\n{}\nstderr:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// Writes the lines of one format to `dir/name`.
fn write_log(dir: &Path, name: &str, lines: &[LogLine], format: LogFormat) -> PathBuf {
    let path = dir.join(name);
    let text: String = lines
        .iter()
        .filter(|line| line.format == format)
        .map(|line| line.text.as_str())
        .collect();
    std::fs::write(&path, text).unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
    path
}

fn import(data_dir: &Path, file: &Path) -> Output {
    run_cli([
        "import".as_ref(),
        "--data-dir".as_ref(),
        data_dir.as_os_str(),
        file.as_os_str(),
    ])
}

/// Runs `apitrail import --data-dir` with `APITRAIL_FAILPOINT` set, and
/// returns how it ended and its stderr.
fn import_with_failpoint(
    data_dir: &Path,
    file: &Path,
    failpoint: &str,
    stderr_path: &Path,
) -> (ExitStatus, String) {
    let stderr = File::create(stderr_path)
        .unwrap_or_else(|e| panic!("creating {}: {e}", stderr_path.display()));
    let mut child = Command::new(binary_path())
        .args([
            "import".as_ref(),
            "--data-dir".as_ref(),
            data_dir.as_os_str(),
        ])
        .arg(file)
        .env_clear()
        .env("APITRAIL_FAILPOINT", failpoint)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(stderr)
        .spawn()
        .unwrap_or_else(|e| panic!("starting {} failed: {e}", binary_path().display()));
    let deadline = Instant::now() + CRASH_TIMEOUT;
    let status = loop {
        if let Some(status) = child.try_wait().expect("waiting for the import") {
            break status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the import with failpoint {failpoint} ran longer than {CRASH_TIMEOUT:?}");
        }
        thread::sleep(Duration::from_millis(20));
    };
    let text = std::fs::read_to_string(stderr_path).unwrap_or_default();
    (status, text)
}

/// `apitrail import --data-dir` adds to the views what it adds to `events`,
/// and importing the same files again changes neither.
#[test]
fn import_fills_views() {
    let mut rng = Rng::new(8);
    let mut server = TestServer::start(ServerOptions::no_flush());
    let served = generate_logs(
        &mut rng,
        StreamSize {
            seconds: STREAM_SECONDS,
            nginx: 1_000,
            alb: 300,
            scanner: 0,
        },
    );
    ingest_shuffled(server.api(), &served, &mut rng, None);
    server.stop();

    let imported = generate_logs(
        &mut rng,
        StreamSize {
            seconds: STREAM_SECONDS,
            nginx: 2_500,
            alb: 800,
            scanner: 200,
        },
    );
    let files = [
        write_log(
            server.scratch_dir(),
            "access.log",
            &imported,
            LogFormat::Clf,
        ),
        write_log(server.scratch_dir(), "alb.log", &imported, LogFormat::Alb),
    ];
    for file in &files {
        let output = import(server.data_dir(), file);
        assert!(
            output.status.success(),
            "import of {} failed: {}",
            file.display(),
            output_text(&output)
        );
    }

    server.restart();
    let total = (served.len() + imported.len()) as i64;
    assert_eq!(
        server.count(""),
        total,
        "events after the import must hold the served and the imported lines"
    );
    assert_views_match_events(server.api(), "after the import");
    let before = read_views(server.api());
    server.stop();

    for file in &files {
        let output = import(server.data_dir(), file);
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success() && stdout.contains("already imported"),
            "the second import of {} must succeed and report the file as already imported: {}",
            file.display(),
            output_text(&output)
        );
    }
    server.restart();
    assert_eq!(
        server.count(""),
        total,
        "events after the second import must not change"
    );
    assert_views_unchanged(server.api(), &before, "after the second import");
}

/// An import that crashes between its events commit and its views commit
/// leaves the views to the next import of the same file, which adds them once.
#[test]
fn import_crash_before_views() {
    let mut rng = Rng::new(9);
    let mut server = TestServer::start(ServerOptions::no_flush());
    server.stop();
    let lines = generate_logs(
        &mut rng,
        StreamSize {
            seconds: STREAM_SECONDS,
            nginx: 2_000,
            alb: 0,
            scanner: 200,
        },
    );
    let file = write_log(server.scratch_dir(), "access.log", &lines, LogFormat::Clf);
    let stderr_path = server.scratch_dir().join("import.stderr");

    let (exit, stderr) = import_with_failpoint(
        server.data_dir(),
        &file,
        "import_before_views",
        &stderr_path,
    );
    assert_eq!(
        exit.signal(),
        Some(libc::SIGABRT),
        "the import must abort at import_before_views, but ended with {}; stderr:\n{stderr}",
        describe_exit(exit)
    );

    let output = import(server.data_dir(), &file);
    assert!(
        output.status.success(),
        "the import after the crash failed: {}",
        output_text(&output)
    );
    server.restart();
    assert_eq!(
        server.count(""),
        lines.len() as i64,
        "events after the crashed and the repeated import must hold each line once"
    );
    assert_views_match_events(server.api(), "after the crashed and the repeated import");
}
