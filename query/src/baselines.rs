//! The `consumer_baselines` table: what is normal for each consumer, by hour of week.
//!
//! For every consumer, and for every endpoint that consumer called, the table
//! describes the hourly series of a trailing window with four statistics
//! each: the mean, the population standard deviation, the median and the
//! median absolute deviation (unscaled, without the 1.4826 factor). Hours
//! without calls count as 0, so a partner idle at night has a baseline of 0
//! at night. The series are:
//!
//! | prefix | value per hour |
//! |---|---|
//! | `calls` | calls |
//! | `error_rate` | 4xx and 5xx responses over calls, over the hours with calls only |
//! | `bytes_out` | response bytes |
//! | `object_ids` | distinct object ids, from the merged `object_ids` sketches of the hour |
//!
//! Each series has 169 rows: one per hour of week, `hour_of_week` 0 (Monday
//! 00:00 to 01:00) to 167 (Sunday 23:00 to 24:00), and one with
//! `hour_of_week` NULL over every hour of the window. Columns:
//!
//! | column | content |
//! |---|---|
//! | `consumer` | the consumer; NULL for calls without one |
//! | `scope` | `consumer` for all calls of the consumer (host, method and endpoint NULL), `endpoint` for one of its endpoints |
//! | `host`, `method`, `endpoint` | the endpoint of an `endpoint` row |
//! | `hour_of_week` | 0 to 167, or NULL on the row over the whole window |
//! | `timezone` | IANA name of the zone the hours of week are counted in, `UTC` by default |
//! | `window_start`, `window_end` | the window, the same on every row |
//! | `weeks` | hours behind the statistics of an hour of week; on the whole-window row, the started weeks |
//! | `hours`, `active_hours` | hours behind the statistics, and those of them with calls (behind `error_rate_*`) |
//! | `calls_mean` ... `object_ids_mad` | the statistics, NULL where no hour is behind them |
//! | `usual_endpoints`, `usual_methods`, `usual_networks` | on whole-window rows, the sets seen in the window; NULL on hourly rows |
//!
//! `usual_endpoints` lists `host method endpoint` strings, and
//! `usual_networks` the `/24` and `/48` networks, at most [`MAX_NETWORKS`],
//! the first in text order.
//!
//! Hours of week are counted in the consumer's time zone when `timezone_of`
//! names one, and in UTC otherwise. A UTC hour belongs to the local hour in
//! which it starts, so under a half-hour offset it counts at the earlier
//! hour. `weeks` is one per week of the window, except that a
//! daylight-saving change adds or removes one.
//!
//! The window covers `window_weeks` whole weeks and ends at the start of the
//! newest hour in `view_partials`. That is data time, not wall-clock time, so
//! imported history gets a baseline, and the newest hour, still filling, is
//! left out. A consumer's series start at its first hour with calls in the
//! window. A consumer that appeared three days ago thus has `weeks` 1 at the
//! hours of week of those three days, and 0 with NULL statistics at the
//! others. Endpoint series start at the same hour as their consumer's, so a
//! newly called endpoint has zeros before its first call.
//!
//! NOTE: a consumer seen before the window but idle in its first days is
//! counted from its first hour with calls inside the window, like a new one.
//! Finding its true first hour would read history before the window, a scan
//! that grows with time.
//!
//! Speed: a filter `consumer = '...'` or `consumer IN (...)` is applied
//! exactly by the table and pushed into the read. The read takes the `hour`
//! partition of the committed views table, pruned to the window by `bucket`
//! and filtered by `consumer`, plus the matching partials still in memory.
//! The newest hour comes from the Delta log's file statistics and the
//! in-memory partials, so finding it reads no data file unless a file lacks
//! statistics. The statistics are computed in Rust when the plan runs.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::sync::{Arc, LazyLock};

use apitrail_storage::sketch::DistinctSketch;
use apitrail_storage::views::partial::MAX_NETWORKS;
use apitrail_storage::views::{GRAIN_COLUMN, GRAIN_HOUR, ViewPartials, partials_schema};
use apitrail_storage::{Store, StoreSnapshot};
use arrow::array::{
    Array, ArrayRef, AsArray, Float64Builder, Int32Builder, Int64Builder, ListBuilder, RecordBatch,
    StringBuilder, TimestampMicrosecondBuilder,
};
use arrow::compute::cast;
use arrow::datatypes::{
    DataType, Field, Int64Type, Schema, SchemaRef, TimeUnit, TimestampMicrosecondType,
};
use async_trait::async_trait;
use chrono::{DateTime, Datelike, Timelike};
use chrono_tz::Tz;
use datafusion::catalog::Session;
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::common::{DataFusionError, Result, ScalarValue, exec_err, plan_err};
use datafusion::datasource::{TableProvider, TableType};
use datafusion::execution::TaskContext;
use datafusion::logical_expr::{BinaryExpr, Expr, Operator, TableProviderFilterPushDown};
use datafusion::physical_expr::{EquivalenceProperties, PhysicalExpr};
use datafusion::physical_plan::empty::EmptyExec;
use datafusion::physical_plan::execution_plan::{Boundedness, EmissionType};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, ExecutionPlan, Partitioning, PlanProperties,
    SendableRecordBatchStream, execute_stream,
};
use datafusion::prelude::{col, lit};
use deltalake::DeltaTable;
use futures::StreamExt;

const MICROS_PER_HOUR: i64 = 3_600_000_000;
const HOURS_PER_WEEK: usize = 168;
const MICROS_PER_WEEK: i64 = HOURS_PER_WEEK as i64 * MICROS_PER_HOUR;

/// Value of `scope` on the rows that describe all calls of a consumer.
pub const SCOPE_CONSUMER: &str = "consumer";
/// Value of `scope` on the rows that describe one endpoint of a consumer.
pub const SCOPE_ENDPOINT: &str = "endpoint";

/// The four statistics of each series, in column order.
const STATISTICS: [&str; 4] = ["mean", "stddev", "median", "mad"];
/// The series, in column order.
const SERIES: [&str; 4] = ["calls", "error_rate", "bytes_out", "object_ids"];

static SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
    let timestamp = DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()));
    let text_list = DataType::List(Arc::new(Field::new("item", DataType::Utf8, true)));
    let mut fields = vec![
        Field::new("consumer", DataType::Utf8, true),
        Field::new("scope", DataType::Utf8, false),
        Field::new("host", DataType::Utf8, true),
        Field::new("method", DataType::Utf8, true),
        Field::new("endpoint", DataType::Utf8, true),
        Field::new("hour_of_week", DataType::Int32, true),
        Field::new("timezone", DataType::Utf8, false),
        Field::new("window_start", timestamp.clone(), false),
        Field::new("window_end", timestamp, false),
        Field::new("weeks", DataType::Int64, false),
        Field::new("hours", DataType::Int64, false),
        Field::new("active_hours", DataType::Int64, false),
    ];
    for series in SERIES {
        for statistic in STATISTICS {
            fields.push(Field::new(
                format!("{series}_{statistic}"),
                DataType::Float64,
                true,
            ));
        }
    }
    for name in ["usual_endpoints", "usual_methods", "usual_networks"] {
        fields.push(Field::new(name, text_list.clone(), true));
    }
    Arc::new(Schema::new(fields))
});

/// Arrow schema of `consumer_baselines`.
pub fn baselines_schema() -> SchemaRef {
    SCHEMA.clone()
}

/// Maps a consumer to its time zone, or `None` for UTC.
pub type TimezoneLookup = Arc<dyn Fn(&str) -> Option<Tz> + Send + Sync>;

/// Settings of [`ConsumerBaselinesTable`].
#[derive(Clone)]
pub struct ConsumerBaselinesOptions {
    /// Length of the trailing window in weeks, at least 1.
    pub window_weeks: u32,
    /// Time zone of a consumer, in which its hours of week are counted.
    pub timezone_of: TimezoneLookup,
}

impl Default for ConsumerBaselinesOptions {
    /// Four weeks, every consumer in UTC.
    fn default() -> Self {
        ConsumerBaselinesOptions {
            window_weeks: 4,
            timezone_of: Arc::new(|_| None),
        }
    }
}

impl fmt::Debug for ConsumerBaselinesOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConsumerBaselinesOptions")
            .field("window_weeks", &self.window_weeks)
            .finish_non_exhaustive()
    }
}

/// Table provider for `consumer_baselines`, reading the view partials of one store.
pub struct ConsumerBaselinesTable {
    store: Arc<Store>,
    options: ConsumerBaselinesOptions,
    window_micros: i64,
}

impl fmt::Debug for ConsumerBaselinesTable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConsumerBaselinesTable")
            .field("store", &self.store)
            .field("options", &self.options)
            .finish()
    }
}

impl ConsumerBaselinesTable {
    /// Creates the table; fails when `window_weeks` is 0 or too long to count in microseconds.
    pub fn new(store: Arc<Store>, options: ConsumerBaselinesOptions) -> Result<Self> {
        if options.window_weeks == 0 {
            return plan_err!("consumer_baselines: window_weeks must be at least 1, got 0");
        }
        let Some(window_micros) = i64::from(options.window_weeks).checked_mul(MICROS_PER_WEEK)
        else {
            return plan_err!(
                "consumer_baselines: window_weeks {} is too long; use at most {}",
                options.window_weeks,
                i64::MAX / MICROS_PER_WEEK
            );
        };
        Ok(ConsumerBaselinesTable {
            store,
            options,
            window_micros,
        })
    }

    pub fn options(&self) -> &ConsumerBaselinesOptions {
        &self.options
    }
}

#[async_trait]
impl TableProvider for ConsumerBaselinesTable {
    fn schema(&self) -> SchemaRef {
        baselines_schema()
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    /// Filters that name consumers are applied exactly; DataFusion applies the others.
    fn supports_filters_pushdown(
        &self,
        filters: &[&Expr],
    ) -> Result<Vec<TableProviderFilterPushDown>> {
        Ok(filters
            .iter()
            .map(|filter| match consumers_named_by(filter) {
                Some(_) => TableProviderFilterPushDown::Exact,
                None => TableProviderFilterPushDown::Unsupported,
            })
            .collect())
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        _limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let schema = match projection {
            Some(indices) => Arc::new(baselines_schema().project(indices)?),
            None => baselines_schema(),
        };
        let consumers = consumer_filter(filters);
        if consumers.as_ref().is_some_and(BTreeSet::is_empty) {
            return Ok(Arc::new(EmptyExec::new(schema)));
        }

        let snapshot = self.store.snapshot();
        let Some(end) = newest_hour(&snapshot, state).await? else {
            return Ok(Arc::new(EmptyExec::new(schema)));
        };
        let window = Window::ending_at(end, self.window_micros);
        let committed = match &snapshot.views {
            Some(views) => Some(scan_hours(views, state, &window, consumers.as_ref()).await?),
            None => None,
        };
        Ok(Arc::new(BaselinesExec {
            committed,
            pending: snapshot.pending_partials,
            window,
            consumers,
            timezone_of: Arc::clone(&self.options.timezone_of),
            projection: projection.cloned(),
            properties: Arc::new(PlanProperties::new(
                EquivalenceProperties::new(Arc::clone(&schema)),
                Partitioning::UnknownPartitioning(1),
                EmissionType::Final,
                Boundedness::Bounded,
            )),
        }))
    }
}

/// Intersects the consumer sets of the filters; `None` when no filter names consumers.
fn consumer_filter(filters: &[Expr]) -> Option<BTreeSet<String>> {
    let mut consumers: Option<BTreeSet<String>> = None;
    for named in filters.iter().filter_map(consumers_named_by) {
        consumers = Some(match consumers {
            None => named,
            Some(earlier) => earlier.intersection(&named).cloned().collect(),
        });
    }
    consumers
}

/// Returns the consumers that `filter` keeps when it is `consumer = 'x'` or `consumer IN ('x', ...)`.
fn consumers_named_by(filter: &Expr) -> Option<BTreeSet<String>> {
    match filter {
        Expr::BinaryExpr(BinaryExpr { left, op, right }) if *op == Operator::Eq => {
            let value = match (left.as_ref(), right.as_ref()) {
                (column, value) if is_consumer_column(column) => value,
                (value, column) if is_consumer_column(column) => value,
                _ => return None,
            };
            Some(BTreeSet::from([text_literal(value)?]))
        }
        Expr::InList(in_list) if !in_list.negated && is_consumer_column(&in_list.expr) => {
            in_list.list.iter().map(text_literal).collect()
        }
        _ => None,
    }
}

fn is_consumer_column(expr: &Expr) -> bool {
    matches!(expr, Expr::Column(column) if column.name == "consumer")
}

/// Returns the text of a non-NULL string literal.
fn text_literal(expr: &Expr) -> Option<String> {
    match expr {
        Expr::Literal(value, _) => value.try_as_str().flatten().map(str::to_string),
        _ => None,
    }
}

/// Hours `[start, end)` of the baselines, `end` being an hour start in microseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Window {
    start: i64,
    end: i64,
}

impl Window {
    fn ending_at(end: i64, length_micros: i64) -> Self {
        Window {
            start: end.saturating_sub(length_micros),
            end,
        }
    }

    fn hours(&self) -> usize {
        ((self.end - self.start) / MICROS_PER_HOUR) as usize
    }

    /// Index of the hour that starts at `bucket`, when it lies in the window.
    fn hour_index(&self, bucket: i64) -> Option<usize> {
        if bucket < self.start || bucket >= self.end {
            return None;
        }
        Some(((bucket - self.start) / MICROS_PER_HOUR) as usize)
    }
}

pub(crate) fn timestamp_literal(micros: i64) -> Expr {
    lit(ScalarValue::TimestampMicrosecond(
        Some(micros),
        Some("UTC".into()),
    ))
}

pub(crate) fn datafusion_error(error: deltalake::DeltaTableError) -> DataFusionError {
    DataFusionError::External(Box::new(error))
}

/// Returns the start of the newest hour in `view_partials`, or `None` when it has no hour rows.
async fn newest_hour(snapshot: &StoreSnapshot, state: &dyn Session) -> Result<Option<i64>> {
    let mut newest = snapshot
        .pending_partials
        .iter()
        .flat_map(|partials| partials.rows())
        .filter_map(|(key, _)| key.bucket)
        .max();
    if let Some(views) = &snapshot.views {
        let committed = match newest_bucket_in_log(views)? {
            LoggedBucket::Known(bucket) => bucket,
            LoggedBucket::StatisticsMissing => newest_bucket_by_scan(views, state).await?,
        };
        newest = newest.max(committed);
    }
    // Flooring again keeps the hour exact if a writer rounded the statistics up.
    Ok(newest.map(|bucket| bucket.div_euclid(MICROS_PER_HOUR) * MICROS_PER_HOUR))
}

/// The newest committed `bucket` according to the Delta log's file statistics.
enum LoggedBucket {
    /// The maximum over every file of the `hour` partition, `None` when it has no file.
    Known(Option<i64>),
    /// A file of the `hour` partition has no maximum of `bucket` in the log.
    StatisticsMissing,
}

fn newest_bucket_in_log(views: &DeltaTable) -> Result<LoggedBucket> {
    let files = views
        .snapshot()
        .and_then(|state| state.add_actions_table(true))
        .map_err(datafusion_error)?;
    if files.num_rows() == 0 {
        return Ok(LoggedBucket::Known(None));
    }
    let grain_column = format!("partition.{GRAIN_COLUMN}");
    let (Some(grains), Some(maxima)) = (
        files.column_by_name(&grain_column),
        files.column_by_name("max.bucket"),
    ) else {
        return Ok(LoggedBucket::StatisticsMissing);
    };
    let grains = cast(grains, &DataType::Utf8)?;
    let grains = grains.as_string::<i32>();
    let maxima = cast(
        maxima,
        &DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
    )?;
    let maxima = maxima.as_primitive::<TimestampMicrosecondType>();
    let mut newest = None;
    for row in 0..files.num_rows() {
        if !grains.is_valid(row) || grains.value(row) != GRAIN_HOUR {
            continue;
        }
        if maxima.is_null(row) {
            return Ok(LoggedBucket::StatisticsMissing);
        }
        newest = newest.max(Some(maxima.value(row)));
    }
    Ok(LoggedBucket::Known(newest))
}

/// Reads the newest committed `bucket` from the data files, for a log without statistics.
async fn newest_bucket_by_scan(views: &DeltaTable, state: &dyn Session) -> Result<Option<i64>> {
    let filters = [col(GRAIN_COLUMN).eq(lit(GRAIN_HOUR))];
    let plan = delta_scan(views, state, &["bucket"], &filters).await?;
    let mut stream = execute_stream(plan, state.task_ctx())?;
    let mut newest = None;
    while let Some(batch) = stream.next().await {
        let buckets = conformed_column(&batch?, "bucket")?;
        let buckets = buckets.as_primitive::<TimestampMicrosecondType>();
        newest = newest.max(arrow::compute::max(buckets));
    }
    Ok(newest)
}

/// Columns of `view_partials` that the baselines read.
const HOURLY_COLUMNS: [&str; 11] = [
    "bucket",
    "consumer",
    "host",
    "method",
    "endpoint",
    "calls",
    "status_4xx",
    "status_5xx",
    "bytes_out",
    "object_ids",
    "networks",
];

/// Plans the read of the committed hour rows of the window, of `consumers` only when given.
///
/// The filters prune partitions, files and rows. Rows that pass them without
/// matching are dropped again while folding.
///
/// NOTE: the read opens every `hour` file whose `bucket` range overlaps the
/// window. Each flush writes one until the store compacts the views table
/// (by default at 64 files), so the time grows with the flushes in between. The ignored test
/// `one_consumer_latency` measured about 1.5 ms per file for planning and
/// reading (45 ms for 29 files, release build, 2 cores).
async fn scan_hours(
    views: &DeltaTable,
    state: &dyn Session,
    window: &Window,
    consumers: Option<&BTreeSet<String>>,
) -> Result<Arc<dyn ExecutionPlan>> {
    let mut filters = vec![
        col(GRAIN_COLUMN).eq(lit(GRAIN_HOUR)),
        col("bucket").gt_eq(timestamp_literal(window.start)),
        col("bucket").lt(timestamp_literal(window.end)),
    ];
    if let Some(consumers) = consumers {
        let mut names: Vec<Expr> = consumers.iter().map(|c| lit(c.as_str())).collect();
        filters.push(match names.len() {
            1 => col("consumer").eq(names.remove(0)),
            _ => col("consumer").in_list(names, false),
        });
    }
    let plan = delta_scan(views, state, &HOURLY_COLUMNS, &filters).await?;
    spread_files(plan, state)
}

/// Spreads the files of a scan over the session's target partitions, to read them in parallel.
///
/// Each flush writes small files, below DataFusion's minimum size for
/// splitting a scan, so without this one partition reads them one by one.
pub(crate) fn spread_files(
    plan: Arc<dyn ExecutionPlan>,
    state: &dyn Session,
) -> Result<Arc<dyn ExecutionPlan>> {
    let mut options = state.config_options().clone();
    options.optimizer.repartition_file_min_size = 0;
    let partitions = state.config().target_partitions();
    Ok(plan.repartitioned(partitions, &options)?.unwrap_or(plan))
}

pub(crate) async fn delta_scan(
    views: &DeltaTable,
    state: &dyn Session,
    columns: &[&str],
    filters: &[Expr],
) -> Result<Arc<dyn ExecutionPlan>> {
    views
        .update_datafusion_session(state)
        .map_err(datafusion_error)?;
    let provider = views
        .table_provider()
        .await
        .map_err(|e| e.context("opening the committed views table"))?;
    let table_schema = provider.schema();
    let projection = columns
        .iter()
        .map(|name| table_schema.index_of(name))
        .collect::<std::result::Result<Vec<_>, _>>()?;
    provider.scan(state, Some(&projection), filters, None).await
}

/// Returns a column of a views-table batch with the type that `partials_schema` gives it.
///
/// The Delta scan may return strings and binaries as view types and lists
/// with other field names.
pub(crate) fn conformed_column(batch: &RecordBatch, name: &str) -> Result<ArrayRef> {
    let schema = partials_schema();
    let expected = schema.field_with_name(name)?.data_type();
    let Some(column) = batch.column_by_name(name) else {
        return exec_err!("consumer_baselines: the views scan returned no column {name}");
    };
    if column.data_type() == expected {
        return Ok(Arc::clone(column));
    }
    Ok(cast(column, expected)?)
}

/// Plan node that folds the hour rows into baselines.
///
/// Its child reads the committed hour rows, when the store has a views
/// table. The partials still in memory come from the same store snapshot.
///
/// NOTE: the series are held outside DataFusion's memory pool, so the
/// session's memory limit does not bound a query over every consumer.
struct BaselinesExec {
    committed: Option<Arc<dyn ExecutionPlan>>,
    pending: Vec<Arc<ViewPartials>>,
    window: Window,
    consumers: Option<BTreeSet<String>>,
    timezone_of: TimezoneLookup,
    projection: Option<Vec<usize>>,
    properties: Arc<PlanProperties>,
}

impl fmt::Debug for BaselinesExec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BaselinesExec")
            .field("window", &self.window)
            .field("consumers", &self.consumers)
            .field("pending_partials", &self.pending.len())
            .finish_non_exhaustive()
    }
}

pub(crate) fn format_micros(micros: i64) -> String {
    match DateTime::from_timestamp_micros(micros) {
        Some(time) => time.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
        None => format!("{micros} µs"),
    }
}

impl DisplayAs for BaselinesExec {
    fn fmt_as(&self, _format: DisplayFormatType, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "ConsumerBaselinesExec: window=[{}, {})",
            format_micros(self.window.start),
            format_micros(self.window.end)
        )?;
        match &self.consumers {
            Some(consumers) => write!(f, ", consumers={consumers:?}"),
            None => write!(f, ", consumers=all"),
        }
    }
}

impl ExecutionPlan for BaselinesExec {
    fn name(&self) -> &str {
        "ConsumerBaselinesExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.properties
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        self.committed.iter().collect()
    }

    fn benefits_from_input_partitioning(&self) -> Vec<bool> {
        vec![false; self.children().len()]
    }

    fn apply_expressions(
        &self,
        _f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> Result<TreeNodeRecursion>,
    ) -> Result<TreeNodeRecursion> {
        Ok(TreeNodeRecursion::Continue)
    }

    fn with_new_children(
        self: Arc<Self>,
        mut children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        if children.len() != self.children().len() {
            return exec_err!(
                "ConsumerBaselinesExec takes {} children, got {}",
                self.children().len(),
                children.len()
            );
        }
        Ok(Arc::new(BaselinesExec {
            committed: children.pop(),
            pending: self.pending.clone(),
            window: self.window,
            consumers: self.consumers.clone(),
            timezone_of: Arc::clone(&self.timezone_of),
            projection: self.projection.clone(),
            properties: Arc::clone(&self.properties),
        }))
    }

    fn execute(
        &self,
        partition: usize,
        context: Arc<TaskContext>,
    ) -> Result<SendableRecordBatchStream> {
        if partition != 0 {
            return exec_err!(
                "ConsumerBaselinesExec has one partition, got a request for {partition}"
            );
        }
        let committed = self.committed.clone();
        let pending = self.pending.clone();
        let mut collector = Collector::new(self.window, self.consumers.clone());
        let timezone_of = Arc::clone(&self.timezone_of);
        let projection = self.projection.clone();
        let batch_size = context.session_config().batch_size().max(1);
        let baselines = async move {
            if let Some(plan) = committed {
                let mut stream = execute_stream(plan, context)?;
                while let Some(batch) = stream.next().await {
                    collector.add_batch(&batch?)?;
                }
            }
            for partials in &pending {
                collector.add_partials(partials);
            }
            let batch = collector.into_baselines(timezone_of.as_ref())?;
            match projection {
                Some(indices) => Ok(batch.project(&indices)?),
                None => Ok(batch),
            }
        };
        let batches = futures::stream::once(baselines).flat_map(move |result| {
            let slices: Vec<Result<RecordBatch>> = match result {
                Ok(batch) => split_batch(&batch, batch_size)
                    .into_iter()
                    .map(Ok)
                    .collect(),
                Err(error) => vec![Err(error)],
            };
            futures::stream::iter(slices)
        });
        Ok(Box::pin(RecordBatchStreamAdapter::new(
            self.schema(),
            batches,
        )))
    }
}

/// Splits `batch` into slices of at most `batch_size` rows.
pub(crate) fn split_batch(batch: &RecordBatch, batch_size: usize) -> Vec<RecordBatch> {
    let rows = batch.num_rows();
    (0..rows)
        .step_by(batch_size)
        .map(|offset| batch.slice(offset, batch_size.min(rows - offset)))
        .collect()
}

/// Sums of the calls of one hour: of a consumer, or of a consumer and endpoint.
#[derive(Debug, Default, Clone)]
struct HourTotals {
    calls: i64,
    errors: i64,
    bytes_out: i64,
    object_ids: DistinctSketch,
}

/// The hours of one series in the window and the networks seen in them.
#[derive(Debug, Default)]
struct Series {
    /// Totals by hour index in the window; only hours with calls are present.
    hours: BTreeMap<usize, HourTotals>,
    networks: BTreeSet<String>,
}

/// Host, method and endpoint of a consumer's endpoint series.
type EndpointKey = (Option<String>, Option<String>, Option<String>);

/// The series of one consumer: all its calls, and per endpoint with calls in the window.
#[derive(Debug, Default)]
struct ConsumerSeries {
    whole: Series,
    endpoints: BTreeMap<EndpointKey, Series>,
}

/// The values of one hour row of `view_partials`, from either the table or memory.
struct HourRow<'a> {
    consumer: Option<&'a str>,
    host: Option<&'a str>,
    method: Option<&'a str>,
    endpoint: Option<&'a str>,
    calls: i64,
    errors: i64,
    bytes_out: i64,
    object_ids: &'a DistinctSketch,
    networks: Vec<&'a str>,
}

/// Folds hour rows of the window into series per consumer and endpoint.
struct Collector {
    window: Window,
    consumers: Option<BTreeSet<String>>,
    series: BTreeMap<Option<String>, ConsumerSeries>,
}

impl Collector {
    fn new(window: Window, consumers: Option<BTreeSet<String>>) -> Self {
        Collector {
            window,
            consumers,
            series: BTreeMap::new(),
        }
    }

    fn add_batch(&mut self, batch: &RecordBatch) -> Result<()> {
        let columns: Vec<ArrayRef> = HOURLY_COLUMNS
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
        let object_ids = columns[9].as_binary::<i32>();
        let networks = columns[10].as_list::<i32>();

        for row in 0..batch.num_rows() {
            if buckets.is_null(row) {
                continue;
            }
            let (bucket, consumer, calls) = (buckets.value(row), text(1, row), count(5, row));
            // Rows of other consumers and hours are skipped before their sketch is decoded.
            let Some(hour) = self.accepted_hour(bucket, consumer, calls) else {
                continue;
            };
            let sketch = DistinctSketch::from_bytes(object_ids.value(row)).map_err(|e| {
                DataFusionError::Execution(format!(
                    "consumer_baselines: invalid object_ids sketch in the views row of \
                     consumer {consumer:?} at {}: {e}",
                    format_micros(bucket)
                ))
            })?;
            let row_networks = networks.value(row);
            let row_networks = row_networks.as_string::<i32>();
            self.add(
                hour,
                HourRow {
                    consumer,
                    host: text(2, row),
                    method: text(3, row),
                    endpoint: text(4, row),
                    calls,
                    errors: count(6, row) + count(7, row),
                    bytes_out: count(8, row),
                    object_ids: &sketch,
                    networks: row_networks.iter().flatten().collect(),
                },
            );
        }
        Ok(())
    }

    fn add_partials(&mut self, partials: &ViewPartials) {
        for (key, partial) in partials.rows() {
            let Some(bucket) = key.bucket else {
                continue;
            };
            let consumer = key.consumer.as_deref();
            let Some(hour) = self.accepted_hour(bucket, consumer, partial.calls) else {
                continue;
            };
            self.add(
                hour,
                HourRow {
                    consumer,
                    host: key.host.as_deref(),
                    method: key.method.as_deref(),
                    endpoint: key.endpoint.as_deref(),
                    calls: partial.calls,
                    errors: partial.status_classes[2] + partial.status_classes[3],
                    bytes_out: partial.bytes_out,
                    object_ids: &partial.object_ids,
                    networks: partial.networks.iter().map(String::as_str).collect(),
                },
            );
        }
    }

    /// Returns the window hour of a row that belongs in the baselines, or `None`.
    ///
    /// A row belongs when its hour lies in the window, it has calls (rows
    /// with only duplicate sightings carry nothing) and its consumer passes
    /// the consumer filter.
    fn accepted_hour(&self, bucket: i64, consumer: Option<&str>, calls: i64) -> Option<usize> {
        let hour = self.window.hour_index(bucket)?;
        if calls <= 0 {
            return None;
        }
        if let Some(consumers) = &self.consumers
            && !consumer.is_some_and(|c| consumers.contains(c))
        {
            return None;
        }
        Some(hour)
    }

    /// Adds a row that [`Self::accepted_hour`] placed at window hour `hour`.
    fn add(&mut self, hour: usize, row: HourRow<'_>) {
        let consumer = self
            .series
            .entry(row.consumer.map(str::to_string))
            .or_default();
        let endpoint_key = (
            row.host.map(str::to_string),
            row.method.map(str::to_string),
            row.endpoint.map(str::to_string),
        );
        let endpoint = consumer.endpoints.entry(endpoint_key).or_default();
        for series in [&mut consumer.whole, endpoint] {
            let totals = series.hours.entry(hour).or_default();
            totals.calls += row.calls;
            totals.errors += row.errors;
            totals.bytes_out += row.bytes_out;
            totals.object_ids.merge(row.object_ids);
            for network in &row.networks {
                add_network(&mut series.networks, network);
            }
        }
    }

    fn into_baselines(
        self,
        timezone_of: &(dyn Fn(&str) -> Option<Tz> + Send + Sync),
    ) -> Result<RecordBatch> {
        let hours = self.window.hours();
        let mut calendars: HashMap<Tz, HourOfWeekCalendar> = HashMap::new();
        let mut output = BaselinesBuilder::new(self.window);
        for (consumer, series) in &self.series {
            let Some(first) = series.whole.hours.keys().next().copied() else {
                continue;
            };
            let timezone = consumer.as_deref().and_then(timezone_of).unwrap_or(Tz::UTC);
            let calendar = calendars
                .entry(timezone)
                .or_insert_with(|| HourOfWeekCalendar::new(&self.window, timezone));
            let rows = RowContext {
                consumer: consumer.as_deref(),
                timezone: timezone.name(),
                calendar,
                first,
                hours,
            };

            let keys: Vec<EndpointRef<'_>> = series
                .endpoints
                .keys()
                .map(|(host, method, endpoint)| {
                    (host.as_deref(), method.as_deref(), endpoint.as_deref())
                })
                .collect();
            let sets = WindowSets::of(&keys, &series.whole.networks);
            output.push_series(&rows, None, &series.whole, &sets);
            for (key, endpoint_series) in keys.iter().zip(series.endpoints.values()) {
                let sets = WindowSets::of(std::slice::from_ref(key), &endpoint_series.networks);
                output.push_series(&rows, Some(*key), endpoint_series, &sets);
            }
        }
        output.finish()
    }
}

/// Host, method and endpoint of an endpoint series, borrowed.
type EndpointRef<'a> = (Option<&'a str>, Option<&'a str>, Option<&'a str>);

/// The sets of the row over the whole window.
struct WindowSets<'a> {
    /// `host method endpoint` texts, as the `consumers` view counts endpoints.
    endpoints: BTreeSet<String>,
    methods: BTreeSet<&'a str>,
    networks: &'a BTreeSet<String>,
}

impl<'a> WindowSets<'a> {
    fn of(endpoints: &[EndpointRef<'a>], networks: &'a BTreeSet<String>) -> Self {
        WindowSets {
            endpoints: endpoints
                .iter()
                .map(|(host, method, endpoint)| {
                    format!(
                        "{} {} {}",
                        host.unwrap_or(""),
                        method.unwrap_or(""),
                        endpoint.unwrap_or("")
                    )
                })
                .collect(),
            methods: endpoints
                .iter()
                .filter_map(|(_, method, _)| *method)
                .collect(),
            networks,
        }
    }
}

/// Adds a network, keeping the first [`MAX_NETWORKS`] in text order as the partials do.
fn add_network(networks: &mut BTreeSet<String>, network: &str) {
    if networks.contains(network) {
        return;
    }
    networks.insert(network.to_string());
    if networks.len() > MAX_NETWORKS {
        networks.pop_last();
    }
}

/// The hour of week of every hour of the window in one time zone.
struct HourOfWeekCalendar {
    /// Hour indices of the window by hour of week, ascending.
    hours_by_hour_of_week: Vec<Vec<usize>>,
}

impl HourOfWeekCalendar {
    fn new(window: &Window, timezone: Tz) -> Self {
        let mut hours_by_hour_of_week = vec![Vec::new(); HOURS_PER_WEEK];
        for index in 0..window.hours() {
            let start = window.start + index as i64 * MICROS_PER_HOUR;
            if let Some(hour_of_week) = hour_of_week(start, timezone) {
                hours_by_hour_of_week[hour_of_week].push(index);
            }
        }
        HourOfWeekCalendar {
            hours_by_hour_of_week,
        }
    }
}

/// Returns the hour of week (0 = Monday 00:00) in `timezone` of the instant `micros`.
fn hour_of_week(micros: i64, timezone: Tz) -> Option<usize> {
    let local = DateTime::from_timestamp_micros(micros)?.with_timezone(&timezone);
    Some(local.weekday().num_days_from_monday() as usize * 24 + local.hour() as usize)
}

/// Mean, population standard deviation, median and median absolute deviation of some values.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Summary {
    mean: f64,
    stddev: f64,
    median: f64,
    mad: f64,
}

impl Summary {
    /// Summarizes `values`, or returns `None` when there are none.
    fn of(values: &[f64]) -> Option<Self> {
        if values.is_empty() {
            return None;
        }
        let n = values.len() as f64;
        let mean = values.iter().sum::<f64>() / n;
        let variance = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n;
        let mut sorted = values.to_vec();
        let median = median_in_place(&mut sorted);
        let mut deviations: Vec<f64> = values.iter().map(|v| (v - median).abs()).collect();
        let mad = median_in_place(&mut deviations);
        Some(Summary {
            mean,
            stddev: variance.sqrt(),
            median,
            mad,
        })
    }
}

/// Returns the median of non-empty `values`, the mean of the middle two for an even count.
pub(crate) fn median_in_place(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    let middle = values.len() / 2;
    if values.len() % 2 == 1 {
        values[middle]
    } else {
        (values[middle - 1] + values[middle]) / 2.0
    }
}

/// The values of one series from the consumer's first hour to the end of the window, zero-filled.
struct SeriesValues {
    first: usize,
    calls: Vec<f64>,
    /// `None` for hours without calls, which have no error rate.
    error_rate: Vec<Option<f64>>,
    bytes_out: Vec<f64>,
    object_ids: Vec<f64>,
}

impl SeriesValues {
    fn new(series: &Series, first: usize, hours: usize) -> Self {
        let length = hours - first;
        let mut values = SeriesValues {
            first,
            calls: vec![0.0; length],
            error_rate: vec![None; length],
            bytes_out: vec![0.0; length],
            object_ids: vec![0.0; length],
        };
        for (&hour, totals) in series.hours.range(first..) {
            let i = hour - first;
            values.calls[i] = totals.calls as f64;
            values.error_rate[i] = Some(totals.errors as f64 / totals.calls as f64);
            values.bytes_out[i] = totals.bytes_out as f64;
            values.object_ids[i] = totals.object_ids.estimate() as f64;
        }
        values
    }

    /// Summarizes the hours at `indices`, which are window hour indices at or after `first`.
    fn summarize(&self, indices: impl Iterator<Item = usize>) -> Summaries {
        let mut picked = Picked::default();
        for index in indices {
            let i = index - self.first;
            picked.calls.push(self.calls[i]);
            if let Some(rate) = self.error_rate[i] {
                picked.error_rate.push(rate);
            }
            picked.bytes_out.push(self.bytes_out[i]);
            picked.object_ids.push(self.object_ids[i]);
        }
        Summaries {
            hours: picked.calls.len(),
            active_hours: picked.error_rate.len(),
            series: [
                Summary::of(&picked.calls),
                Summary::of(&picked.error_rate),
                Summary::of(&picked.bytes_out),
                Summary::of(&picked.object_ids),
            ],
        }
    }
}

/// Values of the hours being summarized, one list per series.
#[derive(Default)]
struct Picked {
    calls: Vec<f64>,
    error_rate: Vec<f64>,
    bytes_out: Vec<f64>,
    object_ids: Vec<f64>,
}

/// The statistics of one output row, with the number of hours behind them.
struct Summaries {
    hours: usize,
    /// Hours with calls, the ones behind the error rate.
    active_hours: usize,
    /// In the order of [`SERIES`].
    series: [Option<Summary>; 4],
}

/// Values shared by the rows of one consumer.
struct RowContext<'a> {
    consumer: Option<&'a str>,
    timezone: &'static str,
    calendar: &'a HourOfWeekCalendar,
    first: usize,
    hours: usize,
}

/// Column builders of the output batch, in schema order.
struct BaselinesBuilder {
    window: Window,
    consumer: StringBuilder,
    scope: StringBuilder,
    host: StringBuilder,
    method: StringBuilder,
    endpoint: StringBuilder,
    hour_of_week: Int32Builder,
    timezone: StringBuilder,
    window_start: TimestampMicrosecondBuilder,
    window_end: TimestampMicrosecondBuilder,
    weeks: Int64Builder,
    hours: Int64Builder,
    active_hours: Int64Builder,
    /// Four per series, in the order of [`SERIES`] and [`STATISTICS`].
    statistics: Vec<Float64Builder>,
    usual_endpoints: ListBuilder<StringBuilder>,
    usual_methods: ListBuilder<StringBuilder>,
    usual_networks: ListBuilder<StringBuilder>,
}

impl BaselinesBuilder {
    fn new(window: Window) -> Self {
        BaselinesBuilder {
            window,
            consumer: StringBuilder::new(),
            scope: StringBuilder::new(),
            host: StringBuilder::new(),
            method: StringBuilder::new(),
            endpoint: StringBuilder::new(),
            hour_of_week: Int32Builder::new(),
            timezone: StringBuilder::new(),
            window_start: TimestampMicrosecondBuilder::new().with_timezone("UTC"),
            window_end: TimestampMicrosecondBuilder::new().with_timezone("UTC"),
            weeks: Int64Builder::new(),
            hours: Int64Builder::new(),
            active_hours: Int64Builder::new(),
            statistics: (0..SERIES.len() * STATISTICS.len())
                .map(|_| Float64Builder::new())
                .collect(),
            usual_endpoints: ListBuilder::new(StringBuilder::new()),
            usual_methods: ListBuilder::new(StringBuilder::new()),
            usual_networks: ListBuilder::new(StringBuilder::new()),
        }
    }

    /// Appends the row over the whole window and the 168 hour-of-week rows of one series.
    fn push_series(
        &mut self,
        rows: &RowContext<'_>,
        endpoint: Option<EndpointRef<'_>>,
        series: &Series,
        sets: &WindowSets<'_>,
    ) {
        let values = SeriesValues::new(series, rows.first, rows.hours);

        let whole = values.summarize(rows.first..rows.hours);
        let started_weeks = whole.hours.div_ceil(HOURS_PER_WEEK);
        self.push_row(rows, endpoint, None, started_weeks, &whole, Some(sets));

        for (hour_of_week, indices) in rows.calendar.hours_by_hour_of_week.iter().enumerate() {
            let start = indices.partition_point(|&index| index < rows.first);
            let summaries = values.summarize(indices[start..].iter().copied());
            let weeks = summaries.hours;
            self.push_row(rows, endpoint, Some(hour_of_week), weeks, &summaries, None);
        }
    }

    fn push_row(
        &mut self,
        rows: &RowContext<'_>,
        endpoint: Option<EndpointRef<'_>>,
        hour_of_week: Option<usize>,
        weeks: usize,
        summaries: &Summaries,
        sets: Option<&WindowSets<'_>>,
    ) {
        self.consumer.append_option(rows.consumer);
        match endpoint {
            Some((host, method, endpoint)) => {
                self.scope.append_value(SCOPE_ENDPOINT);
                self.host.append_option(host);
                self.method.append_option(method);
                self.endpoint.append_option(endpoint);
            }
            None => {
                self.scope.append_value(SCOPE_CONSUMER);
                self.host.append_null();
                self.method.append_null();
                self.endpoint.append_null();
            }
        }
        self.hour_of_week
            .append_option(hour_of_week.map(|hour| hour as i32));
        self.timezone.append_value(rows.timezone);
        self.window_start.append_value(self.window.start);
        self.window_end.append_value(self.window.end);
        self.weeks.append_value(weeks as i64);
        self.hours.append_value(summaries.hours as i64);
        self.active_hours
            .append_value(summaries.active_hours as i64);

        let mut statistics = self.statistics.iter_mut();
        for summary in &summaries.series {
            let values = summary.map(|s| [s.mean, s.stddev, s.median, s.mad]);
            for position in 0..STATISTICS.len() {
                let builder = statistics.next().expect("four builders per series");
                builder.append_option(values.map(|v| v[position]));
            }
        }

        match sets {
            Some(sets) => {
                append_list(&mut self.usual_endpoints, sets.endpoints.iter());
                append_list(&mut self.usual_methods, sets.methods.iter());
                append_list(&mut self.usual_networks, sets.networks.iter());
            }
            None => {
                self.usual_endpoints.append_null();
                self.usual_methods.append_null();
                self.usual_networks.append_null();
            }
        }
    }

    fn finish(mut self) -> Result<RecordBatch> {
        let mut columns: Vec<ArrayRef> = vec![
            Arc::new(self.consumer.finish()),
            Arc::new(self.scope.finish()),
            Arc::new(self.host.finish()),
            Arc::new(self.method.finish()),
            Arc::new(self.endpoint.finish()),
            Arc::new(self.hour_of_week.finish()),
            Arc::new(self.timezone.finish()),
            Arc::new(self.window_start.finish()),
            Arc::new(self.window_end.finish()),
            Arc::new(self.weeks.finish()),
            Arc::new(self.hours.finish()),
            Arc::new(self.active_hours.finish()),
        ];
        columns.extend(
            self.statistics
                .iter_mut()
                .map(|builder| Arc::new(builder.finish()) as ArrayRef),
        );
        columns.push(Arc::new(self.usual_endpoints.finish()));
        columns.push(Arc::new(self.usual_methods.finish()));
        columns.push(Arc::new(self.usual_networks.finish()));
        Ok(RecordBatch::try_new(baselines_schema(), columns)?)
    }
}

fn append_list<T: AsRef<str>>(
    builder: &mut ListBuilder<StringBuilder>,
    values: impl Iterator<Item = T>,
) {
    for value in values {
        builder.values().append_value(value);
    }
    builder.append(true);
}

#[cfg(test)]
mod tests {
    use super::*;

    const MONDAY: i64 = 1_704_067_200_000_000; // 2024-01-01T00:00:00Z, a Monday

    #[test]
    fn summary_of_known_values() {
        let summary = Summary::of(&[0.0, 0.0, 1.0, 3.0, 6.0]).expect("five values");
        assert_eq!(summary.mean, 2.0, "mean of 0, 0, 1, 3, 6");
        assert_eq!(summary.median, 1.0, "median of 0, 0, 1, 3, 6");
        assert_eq!(summary.mad, 1.0, "median of deviations 1, 1, 0, 2, 5");
        assert!(
            (summary.stddev - 2.280_350_850_198_276).abs() < 1e-12,
            "population stddev is sqrt(26 / 5), got {}",
            summary.stddev
        );
    }

    #[test]
    fn summary_even_count_median() {
        let summary = Summary::of(&[4.0, 1.0, 3.0, 2.0]).expect("four values");
        assert_eq!(summary.median, 2.5, "mean of the middle two");
        assert_eq!(summary.mad, 1.0, "deviations 1.5, 0.5, 0.5, 1.5");
    }

    #[test]
    fn summary_of_nothing() {
        assert_eq!(Summary::of(&[]), None, "no hours give no statistics");
    }

    #[test]
    fn hour_of_week_utc_and_zone() {
        assert_eq!(hour_of_week(MONDAY, Tz::UTC), Some(0), "Monday 00:00 UTC");
        assert_eq!(
            hour_of_week(MONDAY - MICROS_PER_HOUR, Tz::UTC),
            Some(167),
            "Sunday 23:00 UTC"
        );
        assert_eq!(
            hour_of_week(MONDAY, Tz::Asia__Tokyo),
            Some(9),
            "Monday 00:00 UTC is Monday 09:00 in Tokyo"
        );
        assert_eq!(
            hour_of_week(MONDAY, Tz::America__New_York),
            Some(6 * 24 + 19),
            "Monday 00:00 UTC is Sunday 19:00 in New York"
        );
        assert_eq!(
            hour_of_week(MONDAY, Tz::Asia__Kolkata),
            Some(5),
            "05:30 local counts at hour 5"
        );
    }

    #[test]
    fn calendar_daylight_saving_week() {
        // New York springs forward on Sunday 2024-03-10 at 02:00 local.
        let end = MONDAY + 10 * 7 * 24 * MICROS_PER_HOUR; // Monday 2024-03-11
        let window = Window::ending_at(end, MICROS_PER_WEEK);
        let calendar = HourOfWeekCalendar::new(&window, Tz::America__New_York);
        let sunday_2am = 6 * 24 + 2;
        let sunday_3am = 6 * 24 + 3;
        let total: usize = calendar.hours_by_hour_of_week.iter().map(Vec::len).sum();
        assert_eq!(total, 168, "every hour of the window has an hour of week");
        assert_eq!(
            calendar.hours_by_hour_of_week[sunday_2am].len(),
            0,
            "Sunday 02:00 does not exist on the day clocks spring forward"
        );
        assert_eq!(
            calendar.hours_by_hour_of_week[sunday_3am].len(),
            1,
            "Sunday 03:00 happens once"
        );
    }

    #[test]
    fn filter_names_consumers() {
        let equal = col("consumer").eq(lit("a"));
        assert_eq!(
            consumers_named_by(&equal),
            Some(BTreeSet::from(["a".to_string()])),
            "consumer = 'a'"
        );
        let reversed = lit("a").eq(col("consumer"));
        assert_eq!(
            consumers_named_by(&reversed),
            Some(BTreeSet::from(["a".to_string()])),
            "'a' = consumer"
        );
        let list = col("consumer").in_list(vec![lit("a"), lit("b")], false);
        assert_eq!(
            consumers_named_by(&list),
            Some(BTreeSet::from(["a".to_string(), "b".to_string()])),
            "consumer IN ('a', 'b')"
        );
    }

    #[test]
    fn filter_other_forms_ignored() {
        let negated = col("consumer").in_list(vec![lit("a")], true);
        assert_eq!(consumers_named_by(&negated), None, "NOT IN is not pushed");
        let other_column = col("host").eq(lit("a"));
        assert_eq!(consumers_named_by(&other_column), None, "host filter");
        let null = col("consumer").eq(lit(ScalarValue::Utf8(None)));
        assert_eq!(consumers_named_by(&null), None, "NULL literal");
        let range = col("consumer").gt(lit("a"));
        assert_eq!(consumers_named_by(&range), None, "range on consumer");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn newest_bucket_scan_matches_log() {
        use apitrail_ingest::{Event, EventBatchBuilder};
        use apitrail_storage::StoreConfig;

        let dir = tempfile::tempdir().unwrap();
        let config = StoreConfig::for_data_dir(dir.path().to_path_buf()).unwrap();
        let store = Store::open(config).await.unwrap();
        let mut builder = EventBatchBuilder::new();
        for hour in [0, 5, 49] {
            let mut event = Event::new("clf", MONDAY + hour * MICROS_PER_HOUR + 120_000_000);
            event.consumer = Some("a".to_string());
            builder.push(&event);
        }
        store.append(builder.finish()).await.unwrap();
        store.flush().await.unwrap();

        let snapshot = store.snapshot();
        let views = snapshot
            .views
            .as_ref()
            .expect("a writable store has a views table");
        let newest = MONDAY + 49 * MICROS_PER_HOUR;
        let session = datafusion::prelude::SessionContext::new();
        let scanned = newest_bucket_by_scan(views, &session.state())
            .await
            .unwrap();
        assert_eq!(
            scanned,
            Some(newest),
            "the scan finds the hour of the latest event, Wednesday 01:00"
        );
        let logged = newest_bucket_in_log(views).unwrap();
        assert!(
            matches!(logged, LoggedBucket::Known(Some(bucket)) if bucket == newest),
            "the log's statistics give the same hour as the scan"
        );
    }

    #[test]
    fn filters_intersect() {
        let filters = [
            col("consumer").in_list(vec![lit("a"), lit("b")], false),
            col("consumer").eq(lit("b")),
        ];
        assert_eq!(
            consumer_filter(&filters),
            Some(BTreeSet::from(["b".to_string()])),
            "both filters must hold"
        );
        let disjoint = [col("consumer").eq(lit("a")), col("consumer").eq(lit("b"))];
        assert_eq!(
            consumer_filter(&disjoint),
            Some(BTreeSet::new()),
            "no consumer is both a and b"
        );
    }
}
