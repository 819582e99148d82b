//! `consumer_baselines` over a real store, checked against a direct computation from the calls.
//!
//! The store contains five weeks of synthetic calls of four consumers, part of
//! them committed to the views table and the rest still in memory:
//!
//! - `acme` (UTC) calls three endpoints every hour, plus one endpoint only in
//!   the first week, which lies before the window;
//! - `tokyo` (Asia/Tokyo) calls only on weekdays from 09:00 to 17:59 local time;
//! - `newbie` appears 77 hours before the newest hour;
//! - `nightly` (UTC) is idle from 22:00 to 07:59.

use apitrail_query::baselines;

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::Arc;

use apitrail_ingest::{Event, EventBatchBuilder};
use apitrail_storage::views::object_ids;
use apitrail_storage::{Store, StoreConfig};
use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::{Float64Type, Int32Type, Int64Type, TimestampMicrosecondType};
use baselines::{ConsumerBaselinesOptions, ConsumerBaselinesTable};
use chrono::{DateTime, Datelike, Timelike};
use chrono_tz::Tz;
use datafusion::physical_plan::displayable;
use datafusion::prelude::{SessionConfig, SessionContext};

const MINUTE: i64 = 60_000_000;
const HOUR: i64 = 60 * MINUTE;
const DAY: i64 = 24 * HOUR;
const WEEK: i64 = 7 * DAY;
/// 2024-01-01T00:00:00Z, a Monday.
const START: i64 = 1_704_067_200_000_000;
/// Start of the newest hour with calls, 2024-02-05T10:00:00Z: the end of the window.
const NEWEST_HOUR: i64 = START + 5 * WEEK + 10 * HOUR;
/// Calls before this instant are flushed to the views table, the rest stay in memory.
/// It lies mid-hour, so the partials of that hour are split between both.
const FLUSH_SPLIT: i64 = START + 29 * DAY + 30 * MINUTE;
/// First hour of `newbie`.
const NEWBIE_FROM: i64 = NEWEST_HOUR - 3 * DAY - 5 * HOUR;

const HOST: &str = "api.example.com";
const SERIES: [&str; 4] = ["calls", "error_rate", "bytes_out", "object_ids"];
const STATISTICS: [&str; 4] = ["mean", "stddev", "median", "mad"];

/// One synthetic call, kept to compute the expected baselines.
#[derive(Debug, Clone)]
struct Call {
    consumer: &'static str,
    method: &'static str,
    endpoint: &'static str,
    path: String,
    time: i64,
    status: i32,
    bytes_out: i64,
    client_ip: String,
}

fn call(consumer: &'static str, method: &'static str, endpoint: &'static str, id: i64) -> Call {
    Call {
        consumer,
        method,
        endpoint,
        path: endpoint.replace("{id}", &id.to_string()),
        time: 0,
        status: 200,
        bytes_out: 0,
        client_ip: String::new(),
    }
}

fn utc_hour_of_day(time: i64) -> i64 {
    time.rem_euclid(DAY) / HOUR
}

/// Generates the calls of every consumer, sorted by time.
fn synthetic_calls() -> Vec<Call> {
    let mut calls = Vec::new();
    let hours = (NEWEST_HOUR - START) / HOUR;
    for h in 0..=hours {
        let hour_start = START + h * HOUR;
        let hour_of_day = utc_hour_of_day(hour_start);
        let week = h / 168;
        let weekday = (h / 24) % 7;

        let acme_calls = 1 + hour_of_day % 5 + (week % 2) * 2;
        for k in 0..acme_calls {
            let mut c = match k % 3 {
                0 => call("acme", "GET", "/v1/orders/{id}", (h * 3 + k) % 11),
                1 => call("acme", "GET", "/v1/items/{id}", (h + k) % 7),
                _ => call("acme", "POST", "/v1/orders", 0),
            };
            c.time = hour_start + k * 5 * MINUTE + 1_000_000;
            c.status = match (h + k) % 18 {
                0 => 500,
                6 | 12 => 404,
                3 => 302,
                _ => 200,
            };
            c.bytes_out = 100 + 10 * k + h % 13;
            // Items calls come over IPv6, the others over IPv4.
            c.client_ip = if k % 3 == 1 {
                format!("2001:db8:1::{k}")
            } else {
                format!("198.51.100.{k}")
            };
            calls.push(c);
        }
        if week == 0 && hour_of_day == 12 {
            let mut c = call("acme", "DELETE", "/v1/orders/{id}", h);
            c.time = hour_start + 30 * MINUTE;
            c.client_ip = "198.51.100.9".to_string();
            calls.push(c);
        }

        // Weekdays from 00:00 to 08:59 UTC are 09:00 to 17:59 in Tokyo.
        if weekday < 5 && hour_of_day <= 8 {
            for k in 0..2 + h % 3 {
                let mut c = call("tokyo", "GET", "/v1/reports/{id}", h % 5 + k);
                c.time = hour_start + k * 7 * MINUTE;
                c.status = if (h + k) % 4 == 0 { 429 } else { 200 };
                c.bytes_out = 2_000 + 100 * k;
                c.client_ip = format!("203.0.113.{}", k + 1);
                calls.push(c);
            }
        }

        if hour_start >= NEWBIE_FROM {
            for k in 0..2 {
                let mut c = call("newbie", "GET", "/v1/orders/{id}", k + h % 2);
                c.time = hour_start + k * 20 * MINUTE;
                c.bytes_out = 50;
                c.client_ip = "192.0.2.7".to_string();
                calls.push(c);
            }
        }

        if (8..22).contains(&hour_of_day) {
            for k in 0..3 {
                let mut c = call("nightly", "POST", "/v1/sync", 0);
                c.time = hour_start + k * 11 * MINUTE;
                c.status = if h % 10 == 0 && k == 0 { 503 } else { 200 };
                c.bytes_out = 10 + h % 7;
                c.client_ip = "198.51.100.200".to_string();
                calls.push(c);
            }
        }
    }
    calls.sort_by_key(|c| c.time);
    calls
}

fn to_batch(calls: &[Call]) -> RecordBatch {
    let mut builder = EventBatchBuilder::new();
    for c in calls {
        let mut event = Event::new("clf", c.time);
        event.consumer = Some(c.consumer.to_string());
        event.consumer_kind = Some("api_key".to_string());
        event.host = Some(HOST.to_string());
        event.method = Some(c.method.to_string());
        event.path = Some(c.path.clone());
        event.endpoint = Some(c.endpoint.to_string());
        event.status = Some(c.status);
        event.response_bytes = Some(c.bytes_out);
        event.client_ip = Some(c.client_ip.clone());
        builder.push(&event);
    }
    builder.finish()
}

fn timezone_of(consumer: &str) -> Option<Tz> {
    (consumer == "tokyo").then_some(Tz::Asia__Tokyo)
}

fn options(window_weeks: u32) -> ConsumerBaselinesOptions {
    ConsumerBaselinesOptions {
        window_weeks,
        timezone_of: Arc::new(timezone_of),
    }
}

/// A store with the calls, a session with `consumer_baselines` over it and the calls themselves.
struct Fixture {
    _dir: tempfile::TempDir,
    store: Arc<Store>,
    session: SessionContext,
    calls: Vec<Call>,
}

/// Opens a store in a temp dir and appends the calls: one batch per week, each flushed,
/// up to [`FLUSH_SPLIT`], and the rest unflushed.
async fn fixture(window_weeks: u32) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let config = StoreConfig::for_data_dir(dir.path().to_path_buf()).unwrap();
    let store = Store::open(config).await.unwrap();
    let calls = synthetic_calls();

    let (flushed, pending): (Vec<Call>, Vec<Call>) =
        calls.iter().cloned().partition(|c| c.time < FLUSH_SPLIT);
    for week in 0.. {
        let from = START + week * WEEK;
        if from >= FLUSH_SPLIT {
            break;
        }
        let batch: Vec<Call> = flushed
            .iter()
            .filter(|c| c.time >= from && c.time < from + WEEK)
            .cloned()
            .collect();
        store.append(to_batch(&batch)).await.unwrap();
        store.flush().await.unwrap();
    }
    store.append(to_batch(&pending)).await.unwrap();

    let session = session_with_baselines(&store, options(window_weeks)).await;
    Fixture {
        _dir: dir,
        store,
        session,
        calls,
    }
}

async fn session_with_baselines(
    store: &Arc<Store>,
    options: ConsumerBaselinesOptions,
) -> SessionContext {
    let ctx = SessionContext::new();
    let table = ConsumerBaselinesTable::new(Arc::clone(store), options).unwrap();
    ctx.register_table("consumer_baselines", Arc::new(table))
        .unwrap();
    ctx
}

/// One row of `consumer_baselines`.
#[derive(Debug, Clone, PartialEq)]
struct Row {
    consumer: Option<String>,
    scope: String,
    host: Option<String>,
    method: Option<String>,
    endpoint: Option<String>,
    hour_of_week: Option<i32>,
    timezone: String,
    window_start: i64,
    window_end: i64,
    weeks: i64,
    hours: i64,
    active_hours: i64,
    /// By series, then statistic, in the order of [`SERIES`] and [`STATISTICS`].
    statistics: [[Option<f64>; 4]; 4],
    usual_endpoints: Option<Vec<String>>,
    usual_methods: Option<Vec<String>>,
    usual_networks: Option<Vec<String>>,
}

fn text(batch: &RecordBatch, name: &str, row: usize) -> Option<String> {
    let array = batch.column_by_name(name).unwrap().as_string::<i32>();
    array.is_valid(row).then(|| array.value(row).to_string())
}

fn int64(batch: &RecordBatch, name: &str, row: usize) -> i64 {
    let array = batch.column_by_name(name).unwrap();
    array.as_primitive::<Int64Type>().value(row)
}

fn float(batch: &RecordBatch, name: &str, row: usize) -> Option<f64> {
    let array = batch.column_by_name(name).unwrap();
    let array = array.as_primitive::<Float64Type>();
    array.is_valid(row).then(|| array.value(row))
}

fn text_list(batch: &RecordBatch, name: &str, row: usize) -> Option<Vec<String>> {
    let array = batch.column_by_name(name).unwrap().as_list::<i32>();
    if array.is_null(row) {
        return None;
    }
    let values = array.value(row);
    let values = values.as_string::<i32>();
    Some(values.iter().map(|v| v.unwrap().to_string()).collect())
}

async fn query(session: &SessionContext, sql: &str) -> Vec<Row> {
    let batches: Vec<RecordBatch> = session.sql(sql).await.unwrap().collect().await.unwrap();
    let mut rows = Vec::new();
    for batch in &batches {
        for row in 0..batch.num_rows() {
            let hour_of_week = batch.column_by_name("hour_of_week").unwrap();
            let hour_of_week = hour_of_week.as_primitive::<Int32Type>();
            let timestamp = |name: &str| {
                let array = batch.column_by_name(name).unwrap();
                array.as_primitive::<TimestampMicrosecondType>().value(row)
            };
            let mut statistics = [[None; 4]; 4];
            for (s, series) in SERIES.iter().enumerate() {
                for (t, statistic) in STATISTICS.iter().enumerate() {
                    statistics[s][t] = float(batch, &format!("{series}_{statistic}"), row);
                }
            }
            rows.push(Row {
                consumer: text(batch, "consumer", row),
                scope: text(batch, "scope", row).unwrap(),
                host: text(batch, "host", row),
                method: text(batch, "method", row),
                endpoint: text(batch, "endpoint", row),
                hour_of_week: hour_of_week.is_valid(row).then(|| hour_of_week.value(row)),
                timezone: text(batch, "timezone", row).unwrap(),
                window_start: timestamp("window_start"),
                window_end: timestamp("window_end"),
                weeks: int64(batch, "weeks", row),
                hours: int64(batch, "hours", row),
                active_hours: int64(batch, "active_hours", row),
                statistics,
                usual_endpoints: text_list(batch, "usual_endpoints", row),
                usual_methods: text_list(batch, "usual_methods", row),
                usual_networks: text_list(batch, "usual_networks", row),
            });
        }
    }
    rows
}

async fn all_rows(session: &SessionContext) -> Vec<Row> {
    query(session, "SELECT * FROM consumer_baselines").await
}

/// Finds the consumer-wide row of `consumer` at `hour_of_week` (`None`: the whole window).
fn consumer_row<'a>(rows: &'a [Row], consumer: &str, hour_of_week: Option<i32>) -> &'a Row {
    rows.iter()
        .find(|r| {
            r.consumer.as_deref() == Some(consumer)
                && r.scope == "consumer"
                && r.hour_of_week == hour_of_week
        })
        .unwrap_or_else(|| panic!("no consumer row for {consumer} at {hour_of_week:?}"))
}

fn endpoint_row<'a>(
    rows: &'a [Row],
    consumer: &str,
    method: &str,
    endpoint: &str,
    hour_of_week: Option<i32>,
) -> &'a Row {
    rows.iter()
        .find(|r| {
            r.consumer.as_deref() == Some(consumer)
                && r.scope == "endpoint"
                && r.method.as_deref() == Some(method)
                && r.endpoint.as_deref() == Some(endpoint)
                && r.hour_of_week == hour_of_week
        })
        .unwrap_or_else(|| {
            panic!("no endpoint row for {consumer} {method} {endpoint} at {hour_of_week:?}")
        })
}

/// Statistics the test expects for one row, computed directly from the calls.
#[derive(Debug)]
struct Expected {
    weeks: i64,
    hours: i64,
    active_hours: i64,
    statistics: [[Option<f64>; 4]; 4],
}

fn mean(values: &[f64]) -> f64 {
    values.iter().sum::<f64>() / values.len() as f64
}

fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let n = sorted.len();
    if n % 2 == 1 {
        sorted[n / 2]
    } else {
        (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0
    }
}

fn describe(values: &[f64]) -> [Option<f64>; 4] {
    if values.is_empty() {
        return [None; 4];
    }
    let m = mean(values);
    let variance = values.iter().map(|v| (v - m) * (v - m)).sum::<f64>() / values.len() as f64;
    let mid = median(values);
    let deviations: Vec<f64> = values.iter().map(|v| (v - mid).abs()).collect();
    [
        Some(m),
        Some(variance.sqrt()),
        Some(mid),
        Some(median(&deviations)),
    ]
}

fn local_hour_of_week(hour_start: i64, timezone: Tz) -> i32 {
    let local = DateTime::from_timestamp_micros(hour_start)
        .unwrap()
        .with_timezone(&timezone);
    (local.weekday().num_days_from_monday() * 24 + local.hour()) as i32
}

/// Per-hour values of one consumer (or one of its endpoints) from its first hour in the window.
struct HourValues {
    hour_start: i64,
    calls: f64,
    error_rate: Option<f64>,
    bytes_out: f64,
    object_ids: f64,
}

fn hourly_values(
    calls: &[Call],
    consumer: &str,
    endpoint: Option<(&str, &str)>,
    window: (i64, i64),
) -> Vec<HourValues> {
    let (start, end) = window;
    let mine: Vec<&Call> = calls
        .iter()
        .filter(|c| c.consumer == consumer && c.time >= start && c.time < end)
        .collect();
    let first_hour = mine.iter().map(|c| c.time - c.time % HOUR).min().unwrap();
    let mut by_hour: HashMap<i64, Vec<&Call>> = HashMap::new();
    for c in &mine {
        if endpoint.is_some_and(|(method, path)| c.method != method || c.endpoint != path) {
            continue;
        }
        by_hour.entry(c.time - c.time % HOUR).or_default().push(c);
    }

    let mut values = Vec::new();
    let mut hour_start = first_hour;
    while hour_start < end {
        let in_hour = by_hour.get(&hour_start).cloned().unwrap_or_default();
        let count = in_hour.len() as f64;
        let errors = in_hour.iter().filter(|c| c.status >= 400).count() as f64;
        let ids: HashSet<String> = in_hour
            .iter()
            .flat_map(|c| object_ids(&c.path, c.endpoint).collect::<Vec<_>>())
            .collect();
        values.push(HourValues {
            hour_start,
            calls: count,
            error_rate: (count > 0.0).then(|| errors / count),
            bytes_out: in_hour.iter().map(|c| c.bytes_out as f64).sum(),
            object_ids: ids.len() as f64,
        });
        hour_start += HOUR;
    }
    values
}

fn expected_for(values: &[&HourValues]) -> ([[Option<f64>; 4]; 4], i64, i64) {
    let calls: Vec<f64> = values.iter().map(|v| v.calls).collect();
    let rates: Vec<f64> = values.iter().filter_map(|v| v.error_rate).collect();
    let bytes: Vec<f64> = values.iter().map(|v| v.bytes_out).collect();
    let ids: Vec<f64> = values.iter().map(|v| v.object_ids).collect();
    (
        [
            describe(&calls),
            describe(&rates),
            describe(&bytes),
            describe(&ids),
        ],
        calls.len() as i64,
        rates.len() as i64,
    )
}

/// Expected rows of one series by hour of week, `None` being the row over the whole window.
fn expected_rows(
    calls: &[Call],
    consumer: &str,
    endpoint: Option<(&str, &str)>,
    timezone: Tz,
    window: (i64, i64),
) -> BTreeMap<Option<i32>, Expected> {
    let values = hourly_values(calls, consumer, endpoint, window);
    let mut expected = BTreeMap::new();

    let all: Vec<&HourValues> = values.iter().collect();
    let (statistics, hours, active_hours) = expected_for(&all);
    expected.insert(
        None,
        Expected {
            weeks: (hours + 167) / 168,
            hours,
            active_hours,
            statistics,
        },
    );

    for hour_of_week in 0..168 {
        let at_hour: Vec<&HourValues> = values
            .iter()
            .filter(|v| local_hour_of_week(v.hour_start, timezone) == hour_of_week)
            .collect();
        let (statistics, hours, active_hours) = expected_for(&at_hour);
        expected.insert(
            Some(hour_of_week),
            Expected {
                weeks: hours,
                hours,
                active_hours,
                statistics,
            },
        );
    }
    expected
}

fn close(actual: Option<f64>, expected: Option<f64>) -> bool {
    match (actual, expected) {
        (Some(a), Some(e)) => (a - e).abs() <= 1e-9 * e.abs().max(1.0),
        (None, None) => true,
        _ => false,
    }
}

/// Compares the rows of one series with the direct computation, one assert per value.
fn assert_series_matches(rows: &[Row], label: &str, expected: &BTreeMap<Option<i32>, Expected>) {
    assert_eq!(
        rows.len(),
        169,
        "{label}: one row per hour of week and one for the whole window"
    );
    for row in rows {
        let want = &expected[&row.hour_of_week];
        let at = format!("{label} at hour_of_week {:?}", row.hour_of_week);
        assert_eq!(row.weeks, want.weeks, "{at}: weeks");
        assert_eq!(row.hours, want.hours, "{at}: hours");
        assert_eq!(row.active_hours, want.active_hours, "{at}: active_hours");
        for (s, series) in SERIES.iter().enumerate() {
            for (t, statistic) in STATISTICS.iter().enumerate() {
                let (actual, wanted) = (row.statistics[s][t], want.statistics[s][t]);
                assert!(
                    close(actual, wanted),
                    "{at}: {series}_{statistic} is {actual:?}, the calls give {wanted:?}"
                );
            }
        }
    }
}

const WINDOW: (i64, i64) = (NEWEST_HOUR - 4 * WEEK, NEWEST_HOUR);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn statistics_match_calls() {
    let fixture = fixture(4).await;
    let rows = all_rows(&fixture.session).await;

    for consumer in ["acme", "tokyo", "newbie", "nightly"] {
        let timezone = timezone_of(consumer).unwrap_or(Tz::UTC);
        let consumer_rows: Vec<Row> = rows
            .iter()
            .filter(|r| r.consumer.as_deref() == Some(consumer) && r.scope == "consumer")
            .cloned()
            .collect();
        let expected = expected_rows(&fixture.calls, consumer, None, timezone, WINDOW);
        assert_series_matches(&consumer_rows, consumer, &expected);

        let endpoints: BTreeSet<(&str, &str)> = fixture
            .calls
            .iter()
            .filter(|c| c.consumer == consumer && c.time >= WINDOW.0 && c.time < WINDOW.1)
            .map(|c| (c.method, c.endpoint))
            .collect();
        for (method, endpoint) in endpoints {
            let endpoint_rows: Vec<Row> = rows
                .iter()
                .filter(|r| {
                    r.consumer.as_deref() == Some(consumer)
                        && r.scope == "endpoint"
                        && r.method.as_deref() == Some(method)
                        && r.endpoint.as_deref() == Some(endpoint)
                })
                .cloned()
                .collect();
            let expected = expected_rows(
                &fixture.calls,
                consumer,
                Some((method, endpoint)),
                timezone,
                WINDOW,
            );
            let label = format!("{consumer} {method} {endpoint}");
            assert_series_matches(&endpoint_rows, &label, &expected);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_hours_count_as_zero() {
    let fixture = fixture(4).await;
    let rows = all_rows(&fixture.session).await;

    // Monday 03:00 UTC, in the idle period of `nightly`.
    let night = consumer_row(&rows, "nightly", Some(3));
    assert_eq!(
        night.weeks, 4,
        "the idle hour occurred in each of the 4 weeks"
    );
    assert_eq!(night.statistics[0][0], Some(0.0), "calls_mean at night");
    assert_eq!(night.statistics[0][2], Some(0.0), "calls_median at night");
    assert_eq!(night.statistics[0][1], Some(0.0), "calls_stddev at night");
    assert_eq!(
        night.statistics[1][0], None,
        "error_rate_mean has no hours with calls at night"
    );

    let day = consumer_row(&rows, "nightly", Some(12));
    assert_eq!(
        day.statistics[0][0],
        Some(3.0),
        "calls_mean at Monday 12:00, when nightly makes 3 calls"
    );

    let whole = consumer_row(&rows, "nightly", None);
    let calls_in_window = fixture
        .calls
        .iter()
        .filter(|c| c.consumer == "nightly" && c.time >= WINDOW.0 && c.time < WINDOW.1)
        .count() as f64;
    assert_eq!(
        whole.hours,
        4 * 168,
        "the whole-window row covers 672 hours"
    );
    assert_eq!(
        whole.statistics[0][0],
        Some(calls_in_window / 672.0),
        "calls_mean over the window divides by every hour, idle ones too"
    );
    assert_eq!(
        whole.active_hours,
        4 * 7 * 14,
        "nightly has calls in 14 hours a day"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hour_of_week_in_consumer_zone() {
    let fixture = fixture(4).await;
    let rows = all_rows(&fixture.session).await;

    let monday_9 = consumer_row(&rows, "tokyo", Some(9));
    assert_eq!(monday_9.timezone, "Asia/Tokyo", "timezone of tokyo");
    assert!(
        monday_9.statistics[0][0].is_some_and(|mean| mean >= 2.0),
        "tokyo calls from Monday 09:00 local (00:00 UTC): calls_mean {:?}",
        monday_9.statistics[0][0]
    );
    let monday_0 = consumer_row(&rows, "tokyo", Some(0));
    assert_eq!(
        monday_0.statistics[0][0],
        Some(0.0),
        "tokyo is idle at Monday 00:00 local (Sunday 15:00 UTC)"
    );
    let friday_17 = consumer_row(&rows, "tokyo", Some(4 * 24 + 17));
    assert!(
        friday_17.statistics[0][0].is_some_and(|mean| mean >= 2.0),
        "tokyo calls until Friday 17:59 local: calls_mean {:?}",
        friday_17.statistics[0][0]
    );
    let friday_18 = consumer_row(&rows, "tokyo", Some(4 * 24 + 18));
    assert_eq!(
        friday_18.statistics[0][0],
        Some(0.0),
        "tokyo is idle from Friday 18:00 local"
    );
    let acme = consumer_row(&rows, "acme", Some(0));
    assert_eq!(acme.timezone, "UTC", "a consumer without a zone is in UTC");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn weeks_from_first_hour() {
    let fixture = fixture(4).await;
    let rows = all_rows(&fixture.session).await;

    for hour_of_week in 0..168 {
        let acme = consumer_row(&rows, "acme", Some(hour_of_week));
        assert_eq!(
            acme.weeks, 4,
            "acme calls every hour, so hour_of_week {hour_of_week} occurs 4 times"
        );
    }

    let newbie_hours: BTreeSet<i32> = (0..77)
        .map(|i| local_hour_of_week(NEWBIE_FROM + i * HOUR, Tz::UTC))
        .collect();
    for hour_of_week in 0..168 {
        let newbie = consumer_row(&rows, "newbie", Some(hour_of_week));
        let seen = newbie_hours.contains(&hour_of_week);
        assert_eq!(
            newbie.weeks,
            i64::from(seen),
            "newbie appeared 77 hours before the window end; hour_of_week {hour_of_week}"
        );
        assert_eq!(
            newbie.statistics[0][0].is_some(),
            seen,
            "newbie has statistics only at hours of week it lived through ({hour_of_week})"
        );
    }
    let whole = consumer_row(&rows, "newbie", None);
    assert_eq!(whole.weeks, 1, "newbie is one started week old");
    assert_eq!(whole.hours, 77, "newbie's window row covers its 77 hours");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endpoint_rows_split_consumer() {
    let fixture = fixture(4).await;
    let rows = all_rows(&fixture.session).await;

    let acme_endpoints: BTreeSet<(String, String)> = rows
        .iter()
        .filter(|r| r.consumer.as_deref() == Some("acme") && r.scope == "endpoint")
        .map(|r| (r.method.clone().unwrap(), r.endpoint.clone().unwrap()))
        .collect();
    let expected: BTreeSet<(String, String)> = [
        ("GET", "/v1/items/{id}"),
        ("GET", "/v1/orders/{id}"),
        ("POST", "/v1/orders"),
    ]
    .iter()
    .map(|(m, e)| (m.to_string(), e.to_string()))
    .collect();
    assert_eq!(
        acme_endpoints, expected,
        "acme has endpoint rows for the endpoints it called in the window, not DELETE from week 1"
    );

    let orders = endpoint_row(&rows, "acme", "GET", "/v1/orders/{id}", Some(10));
    assert_eq!(
        orders.host.as_deref(),
        Some(HOST),
        "host of the endpoint row"
    );
    assert_eq!(
        orders.weeks, 4,
        "endpoint rows count weeks like their consumer"
    );

    for hour_of_week in [Some(0), Some(13), None] {
        let whole = consumer_row(&rows, "acme", hour_of_week);
        let sum: f64 = expected
            .iter()
            .map(|(m, e)| endpoint_row(&rows, "acme", m, e, hour_of_week).statistics[0][0].unwrap())
            .sum();
        let total = whole.statistics[0][0].unwrap();
        assert!(
            (sum - total).abs() < 1e-9,
            "acme calls_mean at {hour_of_week:?} is {total}, its endpoints add up to {sum}"
        );
    }

    let new_endpoint = endpoint_row(&rows, "newbie", "GET", "/v1/orders/{id}", None);
    assert_eq!(
        new_endpoint.scope, "endpoint",
        "scope of a consumer-endpoint row"
    );
    let consumer_wide = consumer_row(&rows, "newbie", None);
    assert_eq!(consumer_wide.host, None, "host is NULL on consumer rows");
    assert_eq!(
        consumer_wide.endpoint, None,
        "endpoint is NULL on consumer rows"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sets_of_the_window() {
    let fixture = fixture(4).await;
    let rows = all_rows(&fixture.session).await;

    let acme = consumer_row(&rows, "acme", None);
    assert_eq!(
        acme.usual_endpoints.as_deref(),
        Some(
            &[
                format!("{HOST} GET /v1/items/{{id}}"),
                format!("{HOST} GET /v1/orders/{{id}}"),
                format!("{HOST} POST /v1/orders"),
            ][..]
        ),
        "usual_endpoints of acme: the window's endpoints, without DELETE from before it"
    );
    assert_eq!(
        acme.usual_methods.as_deref(),
        Some(&["GET".to_string(), "POST".to_string()][..]),
        "usual_methods of acme"
    );
    assert_eq!(
        acme.usual_networks.as_deref(),
        Some(&["198.51.100.0/24".to_string(), "2001:db8:1::/48".to_string()][..]),
        "usual_networks of acme: its IPv4 /24 and IPv6 /48"
    );

    let items = endpoint_row(&rows, "acme", "GET", "/v1/items/{id}", None);
    assert_eq!(
        items.usual_endpoints.as_deref(),
        Some(&[format!("{HOST} GET /v1/items/{{id}}")][..]),
        "an endpoint row's set holds only its endpoint"
    );
    assert_eq!(
        items.usual_networks.as_deref(),
        Some(&["2001:db8:1::/48".to_string()][..]),
        "items calls come over IPv6 only"
    );

    let hourly = consumer_row(&rows, "acme", Some(5));
    assert_eq!(hourly.usual_endpoints, None, "sets are NULL on hourly rows");
    assert_eq!(hourly.usual_methods, None, "usual_methods on hourly rows");
    assert_eq!(hourly.usual_networks, None, "usual_networks on hourly rows");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn window_ends_at_newest_hour() {
    let fixture = fixture(4).await;
    let rows = all_rows(&fixture.session).await;

    let ends: BTreeSet<i64> = rows.iter().map(|r| r.window_end).collect();
    assert_eq!(
        ends,
        BTreeSet::from([NEWEST_HOUR]),
        "window_end is the start of the newest hour, 2024-02-05T10:00Z"
    );
    let starts: BTreeSet<i64> = rows.iter().map(|r| r.window_start).collect();
    assert_eq!(
        starts,
        BTreeSet::from([NEWEST_HOUR - 4 * WEEK]),
        "window_start is 4 weeks before window_end"
    );

    let consumers: BTreeSet<Option<String>> = rows.iter().map(|r| r.consumer.clone()).collect();
    let expected: BTreeSet<Option<String>> = ["acme", "newbie", "nightly", "tokyo"]
        .iter()
        .map(|c| Some(c.to_string()))
        .collect();
    assert_eq!(consumers, expected, "every consumer of the window has rows");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn window_weeks_option() {
    let fixture = fixture(2).await;
    let rows = all_rows(&fixture.session).await;

    let acme = consumer_row(&rows, "acme", None);
    assert_eq!(
        acme.window_start,
        NEWEST_HOUR - 2 * WEEK,
        "a 2-week window starts 2 weeks before the newest hour"
    );
    assert_eq!(acme.hours, 2 * 168, "a 2-week window has 336 hours");
    let expected = expected_rows(
        &fixture.calls,
        "acme",
        None,
        Tz::UTC,
        (NEWEST_HOUR - 2 * WEEK, NEWEST_HOUR),
    );
    let acme_rows: Vec<Row> = rows
        .iter()
        .filter(|r| r.consumer.as_deref() == Some("acme") && r.scope == "consumer")
        .cloned()
        .collect();
    assert_series_matches(&acme_rows, "acme over 2 weeks", &expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consumer_filter_returns_one() {
    let fixture = fixture(4).await;
    let all = all_rows(&fixture.session).await;
    let filtered = query(
        &fixture.session,
        "SELECT * FROM consumer_baselines WHERE consumer = 'tokyo'",
    )
    .await;

    let consumers: BTreeSet<Option<String>> = filtered.iter().map(|r| r.consumer.clone()).collect();
    assert_eq!(
        consumers,
        BTreeSet::from([Some("tokyo".to_string())]),
        "the filter keeps tokyo only"
    );
    let unfiltered: Vec<Row> = all
        .into_iter()
        .filter(|r| r.consumer.as_deref() == Some("tokyo"))
        .collect();
    assert_eq!(
        filtered, unfiltered,
        "tokyo's rows are the same with and without the filter"
    );

    let listed = query(
        &fixture.session,
        "SELECT * FROM consumer_baselines WHERE consumer IN ('tokyo', 'newbie', 'nobody')",
    )
    .await;
    let consumers: BTreeSet<Option<String>> = listed.iter().map(|r| r.consumer.clone()).collect();
    assert_eq!(
        consumers,
        BTreeSet::from([Some("newbie".to_string()), Some("tokyo".to_string())]),
        "an IN list keeps the named consumers that exist"
    );

    let none = query(
        &fixture.session,
        "SELECT * FROM consumer_baselines WHERE consumer = 'tokyo' AND consumer = 'acme'",
    )
    .await;
    assert!(
        none.is_empty(),
        "contradicting consumer filters give no rows"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consumer_filter_pushed_down() {
    let fixture = fixture(4).await;
    let sql = "SELECT hour_of_week, calls_mean FROM consumer_baselines WHERE consumer = 'tokyo'";
    let frame = fixture.session.sql(sql).await.unwrap();
    let physical = frame.create_physical_plan().await.unwrap();
    let text = displayable(physical.as_ref()).indent(true).to_string();

    assert!(
        text.contains(r#"consumers={"tokyo"}"#),
        "the table reads tokyo only:\n{text}"
    );
    assert!(
        !text.contains("FilterExec"),
        "the consumer filter is exact, so no filter runs above the table:\n{text}"
    );
    assert!(
        text.contains("grain=hour"),
        "the hour partition of the views table is read:\n{text}"
    );
    assert!(
        !text.contains("grain=all"),
        "the all partition of the views table is pruned:\n{text}"
    );
    // A file split into byte ranges for parallel reading is listed once per range.
    let hour_files: BTreeSet<&str> = text
        .split("grain=hour/")
        .skip(1)
        .filter_map(|rest| rest.split(".parquet").next())
        .collect();
    assert_eq!(
        hour_files.len(),
        4,
        "of the five weekly files, the first ends before the window and is pruned:\n{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flush_keeps_baselines() {
    let fixture = fixture(4).await;
    let before = all_rows(&fixture.session).await;
    fixture.store.flush().await.unwrap();
    let after = all_rows(&fixture.session).await;
    assert_eq!(
        before.len(),
        after.len(),
        "row count before and after the flush"
    );
    assert!(
        before == after,
        "committing the in-memory partials does not change the baselines"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn empty_store_no_rows() {
    let dir = tempfile::tempdir().unwrap();
    let config = StoreConfig::for_data_dir(dir.path().to_path_buf()).unwrap();
    let store = Store::open(config).await.unwrap();
    let session = session_with_baselines(&store, options(4)).await;
    let rows = all_rows(&session).await;
    assert!(rows.is_empty(), "a store without calls has no baselines");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zero_weeks_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let config = StoreConfig::for_data_dir(dir.path().to_path_buf()).unwrap();
    let store = Store::open(config).await.unwrap();
    let error = ConsumerBaselinesTable::new(store, options(0))
        .expect_err("a window of 0 weeks is rejected");
    assert!(
        error
            .to_string()
            .contains("window_weeks must be at least 1"),
        "the error names the option and its limit: {error}"
    );
}

/// Prints how long one consumer's baseline takes over a store of many consumers.
///
/// Run with `cargo test -p apitrail-query --test baselines -- --ignored --nocapture`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "timing only; prints its measurements"]
async fn one_consumer_latency() {
    const CONSUMERS: i64 = 300;
    let dir = tempfile::tempdir().unwrap();
    let config = StoreConfig::for_data_dir(dir.path().to_path_buf()).unwrap();
    let store = Store::open(config).await.unwrap();
    let names: Vec<&'static str> = (0..CONSUMERS)
        .map(|i| &*Box::leak(format!("consumer-{i:03}").into_boxed_str()))
        .collect();

    let mut events = 0;
    for day in 0..35 {
        let mut calls = Vec::new();
        for hour in 0..24 {
            let hour_start = START + day * DAY + hour * HOUR;
            for (i, name) in names.iter().enumerate() {
                let mut c = call(name, "GET", "/v1/orders/{id}", hour + i as i64);
                c.time = hour_start + i as i64 * 1_000_000;
                c.bytes_out = 100;
                c.client_ip = format!("198.51.100.{}", i % 250);
                calls.push(c);
            }
        }
        events += calls.len();
        store.append(to_batch(&calls)).await.unwrap();
        store.flush().await.unwrap();
    }
    let session = session_with_baselines(&store, options(4)).await;

    let sql = "SELECT * FROM consumer_baselines WHERE consumer = 'consumer-150'";
    let mut timings = Vec::new();
    for _ in 0..7 {
        let started = std::time::Instant::now();
        let rows = query(&session, sql).await;
        timings.push(started.elapsed().as_secs_f64() * 1000.0);
        assert_eq!(rows.len(), 2 * 169, "one consumer with one endpoint");
    }
    timings.sort_by(f64::total_cmp);
    let started = std::time::Instant::now();
    let all = all_rows(&session).await;
    let all_ms = started.elapsed().as_secs_f64() * 1000.0;
    println!(
        "{events} events, {CONSUMERS} consumers, 35 daily flushes: one consumer's baseline \
         median {:.1} ms (min {:.1}, max {:.1}); every consumer {all_ms:.1} ms ({} rows)",
        timings[3],
        timings[0],
        timings[6],
        all.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn count_without_columns() {
    let fixture = fixture(4).await;
    let batches = fixture
        .session
        .sql("SELECT count(*) AS n FROM consumer_baselines WHERE consumer = 'acme'")
        .await
        .unwrap()
        .collect()
        .await
        .unwrap();
    let count = batches[0].column(0).as_primitive::<Int64Type>().value(0);
    assert_eq!(
        count,
        4 * 169,
        "acme has a consumer series and 3 endpoint series of 169 rows each, \
         also when the query reads no column"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn small_batches_same_rows() {
    let fixture = fixture(4).await;
    let table = ConsumerBaselinesTable::new(Arc::clone(&fixture.store), options(4)).unwrap();
    let session = SessionContext::new_with_config(SessionConfig::new().with_batch_size(100));
    session
        .register_table("consumer_baselines", Arc::new(table))
        .unwrap();
    let batches = session
        .sql("SELECT * FROM consumer_baselines")
        .await
        .unwrap()
        .collect()
        .await
        .unwrap();
    let largest = batches.iter().map(RecordBatch::num_rows).max().unwrap_or(0);
    assert!(
        largest <= 100,
        "batches follow the session's batch size of 100, got one of {largest} rows"
    );
    assert_eq!(
        query(&session, "SELECT * FROM consumer_baselines").await,
        all_rows(&fixture.session).await,
        "splitting into batches changes no row"
    );
}
