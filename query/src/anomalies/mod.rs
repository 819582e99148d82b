//! The table functions `anomalies(start, end [, options])` and
//! `consumer_profile(consumer, start, end [, options])`.
//!
//! `anomalies` scores every consumer's hours in `[start, end)` against the
//! same consumer's hours in the `baseline_weeks` before `start`, and returns
//! one row per finding: consecutive flagged hours of one consumer, kind and
//! (for endpoint-level kinds) endpoint. [`detect`] contains the detectors and
//! [`options`] the kinds and thresholds. `consumer_profile` puts one
//! consumer's window next to the same window in each baseline week, metric
//! by metric, for the analyst who follows a finding up.
//!
//! Both read the hour rows of `view_partials` ([`series`]), so their cost
//! grows with consumers, endpoints and hours, not with events. The two
//! detectors that need facts the views do not keep (consecutive object ids,
//! user agent strings) read the `events` table of their candidates only.
//!
//! The arguments must be constants: timestamps, or text that parses as an
//! RFC 3339 time or a date. Expressions such as `now() - INTERVAL '1 day'`
//! are folded to a constant before they are read. The result is computed when the plan is
//! built.
//!
//! NOTE: computing at planning time means `EXPLAIN` runs the detectors too,
//! and the result is held in memory outside the session's memory pool. A
//! window of a week over every consumer yields at most a few thousand rows.

mod detect;
mod options;
mod profile;
mod series;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, LazyLock};

use apitrail_storage::Store;
use apitrail_storage::views::partial::object_ids;
use arrow::array::{
    Array, AsArray, Float64Builder, RecordBatch, StringBuilder, TimestampMicrosecondBuilder,
};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit, TimestampMicrosecondType};
use async_trait::async_trait;
use datafusion::catalog::{Session, TableFunctionArgs, TableFunctionImpl};
use datafusion::common::{DataFusionError, Result, ScalarValue, plan_err};
use datafusion::datasource::{TableProvider, TableType};
use datafusion::execution::context::SessionState;
use datafusion::logical_expr::Expr;
use datafusion::logical_expr::simplify::SimplifyContext;
use datafusion::optimizer::simplify_expressions::ExprSimplifier;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::prelude::{SessionContext, col, lit};

use crate::baselines::timestamp_literal;
use crate::inventory::Inventory;
use detect::{Answer, Detection, Finding, Lookup};
pub(crate) use options::Options;
use series::{MICROS_PER_HOUR, Range, Sources};

/// Maximum length of the analysis window of `anomalies`, in days.
const MAX_WINDOW_DAYS: i64 = 31;

static SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
    let timestamp = DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()));
    Arc::new(Schema::new(vec![
        Field::new("bucket_start", timestamp.clone(), false),
        Field::new("bucket_end", timestamp, false),
        Field::new("consumer", DataType::Utf8, false),
        Field::new("host", DataType::Utf8, true),
        Field::new("method", DataType::Utf8, true),
        Field::new("endpoint", DataType::Utf8, true),
        Field::new("kind", DataType::Utf8, false),
        Field::new("score", DataType::Float64, false),
        Field::new("observed", DataType::Float64, false),
        Field::new("expected", DataType::Float64, false),
        Field::new("explanation", DataType::Utf8, false),
    ]))
});

/// Arrow schema of the rows of `anomalies()`.
pub fn anomalies_schema() -> SchemaRef {
    SCHEMA.clone()
}

/// Registers `anomalies` and `consumer_profile` in `ctx`.
pub fn register_anomalies(ctx: &SessionContext, store: Arc<Store>, inventory: &Arc<Inventory>) {
    let sources = Sources {
        store,
        inventory: Arc::clone(inventory),
    };
    ctx.register_udtf(
        "anomalies",
        Arc::new(AnomaliesFunction {
            sources: sources.clone(),
        }),
    );
    ctx.register_udtf(
        "consumer_profile",
        Arc::new(profile::ProfileFunction { sources }),
    );
}

#[derive(Debug)]
struct AnomaliesFunction {
    sources: Sources,
}

impl TableFunctionImpl for AnomaliesFunction {
    fn call_with_args(&self, args: TableFunctionArgs) -> Result<Arc<dyn TableProvider>> {
        let exprs = args.exprs();
        if !(2..=3).contains(&exprs.len()) {
            return plan_err!(
                "anomalies takes (start, end) or (start, end, options), got {} arguments",
                exprs.len()
            );
        }
        let session = args.session();
        let start = time_argument("anomalies", "start", &exprs[0], session)?;
        let end = time_argument("anomalies", "end", &exprs[1], session)?;
        let options = match exprs.get(2) {
            Some(expr) => Options::parse(&text_argument("anomalies", "options", expr, session)?)?,
            None => Options::default(),
        };
        if end <= start {
            return plan_err!("anomalies: end must be after start");
        }
        if end - start > MAX_WINDOW_DAYS * 24 * MICROS_PER_HOUR {
            return plan_err!(
                "anomalies: the window is longer than {MAX_WINDOW_DAYS} days; split it into shorter ones"
            );
        }
        Ok(Arc::new(AnomaliesTable {
            sources: self.sources.clone(),
            start,
            end,
            options,
        }))
    }
}

/// The rows of one `anomalies(...)` call, computed when it is scanned.
#[derive(Debug)]
struct AnomaliesTable {
    sources: Sources,
    start: i64,
    end: i64,
    options: Options,
}

#[async_trait]
impl TableProvider for AnomaliesTable {
    fn schema(&self) -> SchemaRef {
        anomalies_schema()
    }

    fn table_type(&self) -> TableType {
        TableType::Temporary
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        _filters: &[Expr],
        _limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let baseline_hours = i64::from(self.options.baseline_weeks) * 168;
        let Some(range) = Range::new(self.start, self.end, baseline_hours) else {
            return plan_err!("anomalies: the window cannot be placed in time");
        };
        let activity = series::load(
            &self.sources.store,
            &self.sources.inventory,
            state,
            range,
            None,
        )
        .await?;
        let detection = Detection::run(&activity, &self.options);
        let mut answers = Vec::with_capacity(detection.lookups().len());
        for lookup in detection.lookups() {
            answers.push(answer(lookup, &activity.range, &self.sources.inventory, state).await?);
        }
        let findings = detection.finish(&answers);
        // Hours of the baseline that the window start did not fall on are not reported.
        let findings: Vec<Finding> = findings
            .into_iter()
            .filter(|finding| finding.bucket_end > self.start)
            .collect();
        let batch = findings_batch(&findings)?;
        memory_plan(batch, projection)
    }
}

/// Builds the plan that returns `batch`, projected.
pub(crate) fn memory_plan(
    batch: RecordBatch,
    projection: Option<&Vec<usize>>,
) -> Result<Arc<dyn ExecutionPlan>> {
    let schema = batch.schema();
    let source = datafusion::datasource::memory::MemorySourceConfig::try_new(
        &[vec![batch]],
        schema,
        projection.cloned(),
    )?;
    Ok(datafusion::datasource::source::DataSourceExec::from_data_source(source))
}

fn findings_batch(findings: &[Finding]) -> Result<RecordBatch> {
    let rows = findings.len();
    let mut starts = TimestampMicrosecondBuilder::with_capacity(rows).with_timezone("UTC");
    let mut ends = TimestampMicrosecondBuilder::with_capacity(rows).with_timezone("UTC");
    let mut consumers = StringBuilder::new();
    let mut hosts = StringBuilder::new();
    let mut methods = StringBuilder::new();
    let mut endpoints = StringBuilder::new();
    let mut kinds = StringBuilder::new();
    let mut scores = Float64Builder::with_capacity(rows);
    let mut observed = Float64Builder::with_capacity(rows);
    let mut expected = Float64Builder::with_capacity(rows);
    let mut explanations = StringBuilder::new();
    for finding in findings {
        starts.append_value(finding.bucket_start);
        ends.append_value(finding.bucket_end);
        consumers.append_value(&finding.consumer);
        let key = finding.key.as_ref();
        hosts.append_option(key.and_then(|k| k.host.as_deref()));
        methods.append_option(key.and_then(|k| k.method.as_deref()));
        endpoints.append_option(key.and_then(|k| k.endpoint.as_deref()));
        kinds.append_value(finding.kind.as_str());
        scores.append_value(round(finding.score));
        observed.append_value(round(finding.observed));
        expected.append_value(round(finding.expected));
        explanations.append_value(&finding.explanation);
    }
    Ok(RecordBatch::try_new(
        anomalies_schema(),
        vec![
            Arc::new(starts.finish()),
            Arc::new(ends.finish()),
            Arc::new(consumers.finish()),
            Arc::new(hosts.finish()),
            Arc::new(methods.finish()),
            Arc::new(endpoints.finish()),
            Arc::new(kinds.finish()),
            Arc::new(scores.finish()),
            Arc::new(observed.finish()),
            Arc::new(expected.finish()),
            Arc::new(explanations.finish()),
        ],
    )?)
}

/// Rounds to four decimals, so equal inputs print equal results on every platform.
pub(crate) fn round(value: f64) -> f64 {
    (value * 10_000.0).round() / 10_000.0
}

/// Runs one lookup against the `events` table of the session.
async fn answer(
    lookup: &Lookup,
    range: &Range,
    inventory: &Inventory,
    state: &dyn Session,
) -> Result<Answer> {
    let Some(state) = state.as_any().downcast_ref::<SessionState>() else {
        return plan_err!("anomalies: the session cannot read the events table");
    };
    let ctx = SessionContext::new_with_state(state.clone());
    let events = ctx.table("events").await?;
    match lookup {
        Lookup::Sequential {
            consumer,
            key,
            hour,
        } => {
            let start = range.hour_start(*hour);
            let mut filter = col("consumer")
                .eq(lit(consumer.as_str()))
                .and(col("time").gt_eq(timestamp_literal(start)))
                .and(col("time").lt(timestamp_literal(start + MICROS_PER_HOUR)));
            if let Some(method) = &key.method {
                filter = filter.and(col("method").eq(lit(method.as_str())));
            }
            let batches = events
                .filter(filter)?
                .select_columns(&["host", "path", "endpoint"])?
                .collect()
                .await?;
            let templater = inventory
                .templater
                .read()
                .unwrap_or_else(|e| e.into_inner());
            let mut templates: HashMap<(String, String), String> = HashMap::new();
            let mut ids: BTreeSet<i128> = BTreeSet::new();
            for batch in &batches {
                let host = batch.column(0).as_string_opt::<i32>();
                let (Some(path), Some(endpoint)) = (
                    batch.column(1).as_string_opt::<i32>(),
                    batch.column(2).as_string_opt::<i32>(),
                ) else {
                    return plan_err!(
                        "anomalies: unexpected types of host, path or endpoint in events"
                    );
                };
                for row in 0..batch.num_rows() {
                    if path.is_null(row) || endpoint.is_null(row) {
                        continue;
                    }
                    let host_text = host
                        .filter(|h| h.is_valid(row))
                        .map_or("", |h| h.value(row));
                    if key.host.as_deref().is_some_and(|h| h != host_text) {
                        continue;
                    }
                    let recorded = endpoint.value(row);
                    let folded = templates
                        .entry((host_text.to_string(), recorded.to_string()))
                        .or_insert_with(|| templater.template(Some(host_text), recorded).endpoint);
                    if key.endpoint.as_deref() != Some(folded.as_str()) {
                        continue;
                    }
                    for id in object_ids(path.value(row), recorded) {
                        let value = id.split_once(':').map_or(id.as_str(), |(_, v)| v);
                        if let Ok(number) = value.parse::<i128>() {
                            ids.insert(number);
                        }
                    }
                }
            }
            let ids: Vec<i128> = ids.into_iter().collect();
            let ratio = (ids.len() >= 2).then(|| {
                let consecutive = ids
                    .windows(2)
                    .filter(|pair| pair[0].checked_add(1) == Some(pair[1]))
                    .count();
                consecutive as f64 / (ids.len() - 1) as f64
            });
            Ok(Answer::Sequential {
                ratio,
                ids: ids.len(),
            })
        }
        Lookup::UserAgents { consumer } => {
            let filter = col("consumer")
                .eq(lit(consumer.as_str()))
                .and(col("time").gt_eq(timestamp_literal(range.start)))
                .and(col("time").lt(timestamp_literal(range.end())))
                .and(col("user_agent").is_not_null());
            let hour =
                datafusion::functions::datetime::expr_fn::date_trunc(lit("hour"), col("time"));
            let batches = events
                .filter(filter)?
                .aggregate(
                    vec![col("user_agent"), hour.alias("hour")],
                    vec![datafusion::functions_aggregate::count::count_all().alias("calls")],
                )?
                .collect()
                .await?;
            let mut baseline = BTreeSet::new();
            let mut window: BTreeMap<usize, BTreeMap<String, i64>> = BTreeMap::new();
            for batch in &batches {
                let agents = arrow::compute::cast(batch.column(0), &DataType::Utf8)?;
                let agents = agents.as_string::<i32>();
                let hours = arrow::compute::cast(
                    batch.column(1),
                    &DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
                )?;
                let hours = hours.as_primitive::<TimestampMicrosecondType>();
                let calls = arrow::compute::cast(batch.column(2), &DataType::Int64)?;
                let calls = calls.as_primitive::<arrow::datatypes::Int64Type>();
                for row in 0..batch.num_rows() {
                    if agents.is_null(row) || hours.is_null(row) {
                        continue;
                    }
                    let index = (hours.value(row) - range.start).div_euclid(MICROS_PER_HOUR);
                    let Ok(index) = usize::try_from(index) else {
                        continue;
                    };
                    let agent = agents.value(row).to_string();
                    if index < range.split {
                        baseline.insert(agent);
                    } else {
                        *window.entry(index).or_default().entry(agent).or_default() +=
                            calls.value(row);
                    }
                }
            }
            Ok(Answer::UserAgents { baseline, window })
        }
    }
}

/// Reads a constant time argument: a timestamp, a date, or RFC 3339 / date text.
fn time_argument(function: &str, name: &str, expr: &Expr, session: &dyn Session) -> Result<i64> {
    let value = constant(function, name, expr, session)?;
    let micros = match &value {
        ScalarValue::Utf8(Some(text))
        | ScalarValue::Utf8View(Some(text))
        | ScalarValue::LargeUtf8(Some(text)) => parse_time(text),
        ScalarValue::TimestampSecond(Some(v), _) => v.checked_mul(1_000_000),
        ScalarValue::TimestampMillisecond(Some(v), _) => v.checked_mul(1_000),
        ScalarValue::TimestampMicrosecond(Some(v), _) => Some(*v),
        ScalarValue::TimestampNanosecond(Some(v), _) => Some(v.div_euclid(1_000)),
        ScalarValue::Date32(Some(days)) => i64::from(*days).checked_mul(24 * MICROS_PER_HOUR),
        _ => None,
    };
    match micros {
        Some(micros) => Ok(micros),
        None => plan_err!(
            "{function}: {name} must be a timestamp or a time such as '2025-05-05T00:00:00Z', got {value}"
        ),
    }
}

/// Reads a constant text argument.
fn text_argument(function: &str, name: &str, expr: &Expr, session: &dyn Session) -> Result<String> {
    match constant(function, name, expr, session)? {
        ScalarValue::Utf8(Some(text))
        | ScalarValue::Utf8View(Some(text))
        | ScalarValue::LargeUtf8(Some(text)) => Ok(text),
        other => plan_err!("{function}: {name} must be text, got {other}"),
    }
}

/// Folds an argument to a constant value.
fn constant(function: &str, name: &str, expr: &Expr, session: &dyn Session) -> Result<ScalarValue> {
    let context = SimplifyContext::builder()
        .with_config_options(Arc::new(session.config_options().clone()))
        .with_query_execution_start_time(session.execution_props().query_execution_start_time)
        .build();
    let simplified = ExprSimplifier::new(context).simplify(expr.clone())?;
    match simplified {
        Expr::Literal(value, _) => Ok(value),
        other => Err(DataFusionError::Plan(format!(
            "{function}: {name} must be a constant, got {other}"
        ))),
    }
}

/// Parses RFC 3339 text or a `YYYY-MM-DD` date (midnight UTC) into microseconds.
fn parse_time(text: &str) -> Option<i64> {
    let text = text.trim();
    if let Ok(time) = chrono::DateTime::parse_from_rfc3339(text) {
        return Some(time.timestamp_micros());
    }
    if let Ok(time) = chrono::NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S") {
        return Some(time.and_utc().timestamp_micros());
    }
    chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .ok()
        .and_then(|date| date.and_hms_opt(0, 0, 0))
        .map(|time| time.and_utc().timestamp_micros())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_parse_in_three_forms() {
        let midnight = 1_746_403_200_000_000; // 2025-05-05T00:00:00Z
        assert_eq!(parse_time("2025-05-05"), Some(midnight));
        assert_eq!(parse_time("2025-05-05T00:00:00Z"), Some(midnight));
        assert_eq!(
            parse_time("2025-05-05 01:00:00"),
            Some(midnight + MICROS_PER_HOUR)
        );
        assert_eq!(
            parse_time("2025-05-05T02:00:00+01:00"),
            Some(midnight + MICROS_PER_HOUR)
        );
        assert_eq!(parse_time("yesterday"), None);
    }
}
