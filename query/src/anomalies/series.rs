//! Hourly series of each consumer, read from the hour rows of `view_partials`.
//!
//! The detectors and `consumer_profile` compare the hours of an analysis
//! window with the same consumer's hours before it. [`load`] reads the hour
//! rows of the whole range (baseline and window) once: the committed rows
//! through a Delta scan pruned to the range, and the partials still in
//! memory from the same store snapshot. It folds them per consumer and hour,
//! and per consumer, endpoint and hour.
//!
//! Endpoints are folded into the templater's current templates while
//! reading, as `consumer_activity` does, so an endpoint recorded before the
//! templater learned a position is the same endpoint as its later rows.
//! Calls without a consumer are left out, since they have no baseline to compare with.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use apitrail_storage::sketch::DistinctSketch;
use apitrail_storage::views::{GRAIN_COLUMN, GRAIN_HOUR, ViewPartials};
use apitrail_storage::{Store, StoreSnapshot};
use arrow::array::{Array, ArrayRef, AsArray, RecordBatch};
use arrow::datatypes::{Int64Type, TimestampMicrosecondType};
use datafusion::catalog::Session;
use datafusion::common::{DataFusionError, Result};
use datafusion::physical_plan::execute_stream;
use datafusion::prelude::{col, lit};
use futures::StreamExt;

use crate::baselines::{
    conformed_column, delta_scan, format_micros, spread_files, timestamp_literal,
};
use crate::inventory::Inventory;

pub(crate) const MICROS_PER_HOUR: i64 = 3_600_000_000;
pub(crate) const HOURS_PER_WEEK: i64 = 168;

/// Columns of `view_partials` that the series need, in the order `Folder::add_batch` reads them.
const COLUMNS: [&str; 16] = [
    "bucket",
    "consumer",
    "host",
    "method",
    "endpoint",
    "calls",
    "status_4xx",
    "status_5xx",
    "status_401",
    "status_403",
    "status_404",
    "status_429",
    "bytes_out",
    "user_agents",
    "object_ids",
    "networks",
];

/// Counts of the calls of one hour.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub(crate) struct Counts {
    pub calls: i64,
    pub status_4xx: i64,
    pub status_5xx: i64,
    pub status_401: i64,
    pub status_403: i64,
    pub status_404: i64,
    pub status_429: i64,
    pub bytes_out: i64,
}

impl Counts {
    fn add(&mut self, other: &Counts) {
        self.calls += other.calls;
        self.status_4xx += other.status_4xx;
        self.status_5xx += other.status_5xx;
        self.status_401 += other.status_401;
        self.status_403 += other.status_403;
        self.status_404 += other.status_404;
        self.status_429 += other.status_429;
        self.bytes_out += other.bytes_out;
    }

    /// 4xx responses other than 401 (counted as authentication failures) and 429 (rate limiting).
    pub(crate) fn client_errors(&self) -> i64 {
        (self.status_4xx - self.status_401 - self.status_429).max(0)
    }
}

/// One hour of a consumer: its counts, networks and user agents.
#[derive(Debug, Default, Clone)]
pub(crate) struct ConsumerHour {
    pub counts: Counts,
    pub networks: BTreeSet<String>,
    pub user_agents: DistinctSketch,
}

/// One hour of a consumer's endpoint: its counts and object ids.
#[derive(Debug, Default, Clone)]
pub(crate) struct EndpointHour {
    pub counts: Counts,
    pub object_ids: DistinctSketch,
}

/// Host, method and endpoint of an endpoint series.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct EndpointKey {
    pub host: Option<String>,
    pub method: Option<String>,
    pub endpoint: Option<String>,
}

/// Every hour of one consumer in the range, keyed by hour index.
#[derive(Debug, Default)]
pub(crate) struct ConsumerSeries {
    pub hours: BTreeMap<usize, ConsumerHour>,
    pub endpoints: BTreeMap<EndpointKey, BTreeMap<usize, EndpointHour>>,
}

impl ConsumerSeries {
    /// Index of the consumer's first hour with calls in the range.
    pub(crate) fn first_hour(&self) -> Option<usize> {
        self.hours.keys().next().copied()
    }
}

/// The range of hours read: a baseline and the analysis window after it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Range {
    /// Start of the first baseline hour, in microseconds.
    pub start: i64,
    /// Index of the first hour of the analysis window; the baseline is the hours before it.
    pub split: usize,
    /// Hours in the range, baseline and window.
    pub hours: usize,
}

impl Range {
    /// Hours of `baseline_hours` before `window_start` and the hours up to `window_end`.
    ///
    /// Both ends are floored to whole hours; a window end inside an hour includes that hour.
    pub(crate) fn new(window_start: i64, window_end: i64, baseline_hours: i64) -> Option<Range> {
        let first = window_start.div_euclid(MICROS_PER_HOUR);
        let last = (window_end - 1).div_euclid(MICROS_PER_HOUR);
        if last < first {
            return None;
        }
        let start_hour = first.checked_sub(baseline_hours)?;
        Some(Range {
            start: start_hour.checked_mul(MICROS_PER_HOUR)?,
            split: usize::try_from(baseline_hours).ok()?,
            hours: usize::try_from(last - start_hour + 1).ok()?,
        })
    }

    /// Microseconds one past the last hour.
    pub(crate) fn end(&self) -> i64 {
        self.start + self.hours as i64 * MICROS_PER_HOUR
    }

    /// Start of hour `index`, in microseconds.
    pub(crate) fn hour_start(&self, index: usize) -> i64 {
        self.start + index as i64 * MICROS_PER_HOUR
    }

    fn index(&self, bucket: i64) -> Option<usize> {
        if bucket < self.start || bucket >= self.end() {
            return None;
        }
        usize::try_from((bucket - self.start) / MICROS_PER_HOUR).ok()
    }
}

/// The series of every consumer with calls in the range.
#[derive(Debug)]
pub(crate) struct Activity {
    pub range: Range,
    pub consumers: BTreeMap<String, ConsumerSeries>,
}

/// Reads the hour rows of `range`, of `consumers` only when given.
pub(crate) async fn load(
    store: &Store,
    inventory: &Inventory,
    state: &dyn Session,
    range: Range,
    consumers: Option<&BTreeSet<String>>,
) -> Result<Activity> {
    let snapshot: StoreSnapshot = store.snapshot();
    let mut folder = Folder {
        range,
        consumers,
        inventory,
        templates: HashMap::new(),
        activity: Activity {
            range,
            consumers: BTreeMap::new(),
        },
    };
    if let Some(views) = &snapshot.views {
        let mut filters = vec![
            col(GRAIN_COLUMN).eq(lit(GRAIN_HOUR)),
            col("bucket").gt_eq(timestamp_literal(range.start)),
            col("bucket").lt(timestamp_literal(range.end())),
        ];
        if let Some(consumers) = consumers {
            let names: Vec<_> = consumers.iter().map(|c| lit(c.as_str())).collect();
            filters.push(col("consumer").in_list(names, false));
        }
        let plan = delta_scan(views, state, &COLUMNS, &filters).await?;
        let plan = spread_files(plan, state)?;
        let mut stream = execute_stream(plan, state.task_ctx())?;
        while let Some(batch) = stream.next().await {
            folder.add_batch(&batch?)?;
        }
    }
    for partials in &snapshot.pending_partials {
        folder.add_partials(partials);
    }
    Ok(folder.activity)
}

/// Folds hour rows into [`Activity`].
struct Folder<'a> {
    range: Range,
    consumers: Option<&'a BTreeSet<String>>,
    inventory: &'a Inventory,
    /// Current template of each recorded (host, endpoint), computed once per query.
    templates: HashMap<(Option<String>, String), String>,
    activity: Activity,
}

/// The values of one hour row, from the table or from memory.
struct Row<'a> {
    hour: usize,
    consumer: &'a str,
    key: EndpointKey,
    counts: Counts,
    user_agents: &'a DistinctSketch,
    object_ids: &'a DistinctSketch,
    networks: Vec<&'a str>,
}

impl Folder<'_> {
    fn accepted<'c>(
        &self,
        bucket: i64,
        consumer: Option<&'c str>,
        calls: i64,
    ) -> Option<(usize, &'c str)> {
        let hour = self.range.index(bucket)?;
        let consumer = consumer?;
        if calls <= 0
            || self
                .consumers
                .is_some_and(|wanted| !wanted.contains(consumer))
        {
            return None;
        }
        Some((hour, consumer))
    }

    fn add_batch(&mut self, batch: &RecordBatch) -> Result<()> {
        let columns: Vec<ArrayRef> = COLUMNS
            .iter()
            .map(|name| conformed_column(batch, name))
            .collect::<Result<_>>()?;
        let buckets = columns[0].as_primitive::<TimestampMicrosecondType>();
        let text = |index: usize, row: usize| {
            let array = columns[index].as_string::<i32>();
            array.is_valid(row).then(|| array.value(row))
        };
        let count =
            |index: usize, row: usize| columns[index].as_primitive::<Int64Type>().value(row);
        let user_agents = columns[13].as_binary::<i32>();
        let object_ids = columns[14].as_binary::<i32>();
        let networks = columns[15].as_list::<i32>();
        for row in 0..batch.num_rows() {
            if buckets.is_null(row) {
                continue;
            }
            let bucket = buckets.value(row);
            let Some((hour, consumer)) = self.accepted(bucket, text(1, row), count(5, row)) else {
                continue;
            };
            let decode = |array: &arrow::array::BinaryArray, what: &str| {
                DistinctSketch::from_bytes(array.value(row)).map_err(|e| {
                    DataFusionError::Execution(format!(
                        "anomalies: invalid {what} sketch in the views row of consumer \
                         {consumer:?} at {}: {e}",
                        format_micros(bucket)
                    ))
                })
            };
            let agents = decode(user_agents, "user_agents")?;
            let objects = decode(object_ids, "object_ids")?;
            let row_networks = networks.value(row);
            let row_networks = row_networks.as_string::<i32>();
            let key = self.endpoint_key(text(2, row), text(3, row), text(4, row));
            let row = Row {
                hour,
                consumer,
                key,
                counts: Counts {
                    calls: count(5, row),
                    status_4xx: count(6, row),
                    status_5xx: count(7, row),
                    status_401: count(8, row),
                    status_403: count(9, row),
                    status_404: count(10, row),
                    status_429: count(11, row),
                    bytes_out: count(12, row),
                },
                user_agents: &agents,
                object_ids: &objects,
                networks: row_networks.iter().flatten().collect(),
            };
            add_row(&mut self.activity, row);
        }
        Ok(())
    }

    fn add_partials(&mut self, partials: &ViewPartials) {
        for (key, partial) in partials.rows() {
            let Some(bucket) = key.bucket else {
                continue;
            };
            let Some((hour, consumer)) =
                self.accepted(bucket, key.consumer.as_deref(), partial.calls)
            else {
                continue;
            };
            let endpoint_key = self.endpoint_key(
                key.host.as_deref(),
                key.method.as_deref(),
                key.endpoint.as_deref(),
            );
            let row = Row {
                hour,
                consumer,
                key: endpoint_key,
                counts: Counts {
                    calls: partial.calls,
                    status_4xx: partial.status_classes[2],
                    status_5xx: partial.status_classes[3],
                    status_401: partial.status_watch[0],
                    status_403: partial.status_watch[1],
                    status_404: partial.status_watch[2],
                    status_429: partial.status_watch[3],
                    bytes_out: partial.bytes_out,
                },
                user_agents: &partial.user_agents,
                object_ids: &partial.object_ids,
                networks: partial.networks.iter().map(String::as_str).collect(),
            };
            add_row(&mut self.activity, row);
        }
    }

    /// Returns the key of a recorded endpoint, with the endpoint folded into its current template.
    fn endpoint_key(
        &mut self,
        host: Option<&str>,
        method: Option<&str>,
        endpoint: Option<&str>,
    ) -> EndpointKey {
        let endpoint = endpoint.map(|recorded| {
            let cache_key = (host.map(str::to_string), recorded.to_string());
            if let Some(template) = self.templates.get(&cache_key) {
                return template.clone();
            }
            let templater = self
                .inventory
                .templater
                .read()
                .unwrap_or_else(|e| e.into_inner());
            let template = templater
                .template(Some(host.unwrap_or("")), recorded)
                .endpoint;
            drop(templater);
            self.templates.insert(cache_key, template.clone());
            template
        });
        EndpointKey {
            host: host.map(str::to_string),
            method: method.map(str::to_string),
            endpoint,
        }
    }
}

fn add_row(activity: &mut Activity, row: Row<'_>) {
    let series = activity
        .consumers
        .entry(row.consumer.to_string())
        .or_default();
    let hour = series.hours.entry(row.hour).or_default();
    hour.counts.add(&row.counts);
    hour.user_agents.merge(row.user_agents);
    for network in row.networks {
        if !hour.networks.contains(network) {
            hour.networks.insert(network.to_string());
        }
    }
    let endpoint = series
        .endpoints
        .entry(row.key)
        .or_default()
        .entry(row.hour)
        .or_default();
    endpoint.counts.add(&row.counts);
    endpoint.object_ids.merge(row.object_ids);
}

/// Shared handles the table functions read from.
#[derive(Clone)]
pub(crate) struct Sources {
    pub store: Arc<Store>,
    pub inventory: Arc<Inventory>,
}

impl std::fmt::Debug for Sources {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sources").finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn range_covers_baseline_and_window() {
        let hour = MICROS_PER_HOUR;
        let range = Range::new(100 * hour, 124 * hour, 48).expect("range");
        assert_eq!(range.start, 52 * hour);
        assert_eq!(range.split, 48);
        assert_eq!(range.hours, 72);
        assert_eq!(range.index(100 * hour), Some(48));
        assert_eq!(range.index(124 * hour), None, "the window end is exclusive");
        assert_eq!(range.index(52 * hour - 1), None);
    }

    #[test]
    fn range_rounds_a_partial_last_hour_up() {
        let hour = MICROS_PER_HOUR;
        let range = Range::new(10 * hour, 10 * hour + 1, 0).expect("range");
        assert_eq!(range.hours, 1);
        assert!(
            Range::new(10 * hour, 10 * hour, 0).is_none(),
            "an empty window"
        );
    }

    #[test]
    fn client_errors_leave_out_auth_and_rate_limits() {
        let counts = Counts {
            status_4xx: 10,
            status_401: 3,
            status_429: 2,
            ..Counts::default()
        };
        assert_eq!(counts.client_errors(), 5);
    }
}
