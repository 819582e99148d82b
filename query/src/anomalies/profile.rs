//! `consumer_profile(consumer, start, end [, options])`: one consumer's window against its past.
//!
//! Each row is one metric of the consumer (scope `consumer`) or of one of
//! the endpoints it called in the window (scope `endpoint`). `observed` is
//! the metric over the window; the baseline is the same window shifted back
//! by one week, two weeks, ... up to `baseline_weeks` (from the options
//! string, default 4), each giving one value, of which the row shows the
//! median, the median absolute deviation and the largest. `score` is the
//! robust z-score of `observed` against them, as `anomalies()` computes it.
//! For the set metrics (`endpoints`, `methods`, `networks`), `new_values`
//! lists what the window has that the whole baseline does not.
//!
//! The window must lie within one week, so that its shifted copies do not
//! overlap it. Copies that end before the consumer's first call are left out.

use std::collections::BTreeSet;
use std::sync::{Arc, LazyLock};

use apitrail_storage::sketch::DistinctSketch;
use arrow::array::{Float64Builder, Int64Builder, ListBuilder, RecordBatch, StringBuilder};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use async_trait::async_trait;
use datafusion::catalog::{Session, TableFunctionArgs, TableFunctionImpl};
use datafusion::common::{Result, plan_err};
use datafusion::datasource::{TableProvider, TableType};
use datafusion::logical_expr::Expr;
use datafusion::physical_plan::ExecutionPlan;

use super::detect::Sample;
use super::series::{
    self, ConsumerSeries, Counts, EndpointKey, HOURS_PER_WEEK, MICROS_PER_HOUR, Range, Sources,
};
use super::{Options, memory_plan, round, text_argument, time_argument};

static SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
    Arc::new(Schema::new(vec![
        Field::new("consumer", DataType::Utf8, false),
        Field::new("scope", DataType::Utf8, false),
        Field::new("host", DataType::Utf8, true),
        Field::new("method", DataType::Utf8, true),
        Field::new("endpoint", DataType::Utf8, true),
        Field::new("metric", DataType::Utf8, false),
        Field::new("observed", DataType::Float64, false),
        Field::new("baseline_median", DataType::Float64, true),
        Field::new("baseline_mad", DataType::Float64, true),
        Field::new("baseline_max", DataType::Float64, true),
        Field::new("weeks", DataType::Int64, false),
        Field::new("score", DataType::Float64, true),
        Field::new(
            "new_values",
            DataType::List(Arc::new(Field::new("item", DataType::Utf8, true))),
            true,
        ),
    ]))
});

/// Arrow schema of the rows of `consumer_profile()`.
pub(crate) fn profile_schema() -> SchemaRef {
    SCHEMA.clone()
}

#[derive(Debug)]
pub(super) struct ProfileFunction {
    pub sources: Sources,
}

impl TableFunctionImpl for ProfileFunction {
    fn call_with_args(&self, args: TableFunctionArgs) -> Result<Arc<dyn TableProvider>> {
        let exprs = args.exprs();
        if !(3..=4).contains(&exprs.len()) {
            return plan_err!(
                "consumer_profile takes (consumer, start, end) or (consumer, start, end, options), \
                 got {} arguments",
                exprs.len()
            );
        }
        let session = args.session();
        let consumer = text_argument("consumer_profile", "consumer", &exprs[0], session)?;
        let start = time_argument("consumer_profile", "start", &exprs[1], session)?;
        let end = time_argument("consumer_profile", "end", &exprs[2], session)?;
        let options = match exprs.get(3) {
            Some(expr) => Options::parse(&text_argument(
                "consumer_profile",
                "options",
                expr,
                session,
            )?)?,
            None => Options::default(),
        };
        if end <= start {
            return plan_err!("consumer_profile: end must be after start");
        }
        if end - start > HOURS_PER_WEEK * MICROS_PER_HOUR {
            return plan_err!(
                "consumer_profile: the window must be at most 7 days, so that it can be \
                 compared with the same window in earlier weeks"
            );
        }
        Ok(Arc::new(ProfileTable {
            sources: self.sources.clone(),
            consumer,
            start,
            end,
            options,
        }))
    }
}

#[derive(Debug)]
struct ProfileTable {
    sources: Sources,
    consumer: String,
    start: i64,
    end: i64,
    options: Options,
}

#[async_trait]
impl TableProvider for ProfileTable {
    fn schema(&self) -> SchemaRef {
        profile_schema()
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
        let baseline_hours = i64::from(self.options.baseline_weeks) * HOURS_PER_WEEK;
        let Some(range) = Range::new(self.start, self.end, baseline_hours) else {
            return plan_err!("consumer_profile: the window cannot be placed in time");
        };
        let requested = BTreeSet::from([self.consumer.clone()]);
        let activity = series::load(
            &self.sources.store,
            &self.sources.inventory,
            state,
            range,
            Some(&requested),
        )
        .await?;
        let mut rows = Rows::default();
        if let Some(series) = activity.consumers.get(&self.consumer) {
            profile(&self.consumer, series, &range, &mut rows);
        }
        memory_plan(rows.finish()?, projection)
    }
}

/// The values of a set metric over some hours.
type SetOf<'a> = Box<dyn Fn(&[usize]) -> BTreeSet<String> + 'a>;
/// A metric of an endpoint from its counts and distinct objects over some hours.
type EndpointMetric = Box<dyn Fn(&(Counts, f64)) -> Option<f64>>;

/// Hours of the window and of each baseline week's copy of it.
struct Windows {
    window: Vec<usize>,
    weeks: Vec<Vec<usize>>,
}

impl Windows {
    fn new(range: &Range, first: usize) -> Windows {
        let window: Vec<usize> = (range.split..range.hours).collect();
        let week = HOURS_PER_WEEK as usize;
        let weeks = (1..)
            .map_while(|k: usize| range.split.checked_sub(k * week).map(|start| (k, start)))
            // A copy counts when the consumer had made its first call by the copy's end.
            .take_while(|(_, start)| start + window.len() > first)
            .map(|(k, _)| window.iter().map(|hour| hour - k * week).collect())
            .collect();
        Windows { window, weeks }
    }
}

fn profile(consumer: &str, series: &ConsumerSeries, range: &Range, rows: &mut Rows) {
    let Some(first) = series.first_hour() else {
        return;
    };
    let windows = Windows::new(range, first);
    let totals = |hours: &[usize]| -> Counts {
        let mut sum = Counts::default();
        for hour in hours {
            if let Some(cell) = series.hours.get(hour) {
                sum.calls += cell.counts.calls;
                sum.status_4xx += cell.counts.status_4xx;
                sum.status_5xx += cell.counts.status_5xx;
                sum.status_401 += cell.counts.status_401;
                sum.status_403 += cell.counts.status_403;
                sum.status_404 += cell.counts.status_404;
                sum.status_429 += cell.counts.status_429;
                sum.bytes_out += cell.counts.bytes_out;
            }
        }
        sum
    };
    type Metric = (&'static str, fn(&Counts) -> Option<f64>);
    let metrics: [Metric; 7] = [
        ("calls", |c| Some(c.calls as f64)),
        ("client_errors", |c| Some(c.client_errors() as f64)),
        ("server_errors", |c| Some(c.status_5xx as f64)),
        ("auth_failures", |c| Some(c.status_401 as f64)),
        ("rate_limited", |c| Some(c.status_429 as f64)),
        ("bytes_out", |c| Some(c.bytes_out as f64)),
        ("bytes_per_call", |c| {
            (c.calls > 0).then(|| c.bytes_out as f64 / c.calls as f64)
        }),
    ];
    let now = totals(&windows.window);
    let earlier: Vec<Counts> = windows.weeks.iter().map(|hours| totals(hours)).collect();
    for (name, value) in metrics {
        let Some(observed) = value(&now) else {
            continue;
        };
        let values: Vec<f64> = earlier.iter().filter_map(value).collect();
        rows.push(
            consumer,
            None,
            name,
            observed,
            &values,
            name == "bytes_per_call",
            None,
        );
    }

    let active = |hours: &[usize]| {
        hours
            .iter()
            .filter(|h| series.hours.contains_key(h))
            .count() as f64
    };
    let values: Vec<f64> = windows.weeks.iter().map(|hours| active(hours)).collect();
    rows.push(
        consumer,
        None,
        "active_hours",
        active(&windows.window),
        &values,
        false,
        None,
    );

    let agents = |hours: &[usize]| {
        let mut union = DistinctSketch::new();
        for hour in hours {
            if let Some(cell) = series.hours.get(hour) {
                union.merge(&cell.user_agents);
            }
        }
        union.estimate() as f64
    };
    let values: Vec<f64> = windows.weeks.iter().map(|hours| agents(hours)).collect();
    rows.push(
        consumer,
        None,
        "user_agents",
        agents(&windows.window),
        &values,
        false,
        None,
    );

    // Set metrics: what the window used, and what of it the whole baseline never did.
    let split = range.split;
    let networks = |hours: &[usize]| -> BTreeSet<String> {
        hours
            .iter()
            .filter_map(|hour| series.hours.get(hour))
            .flat_map(|cell| cell.networks.iter().cloned())
            .collect()
    };
    let baseline_hours: Vec<usize> = (first.min(split)..split).collect();
    let keys = |hours: &[usize], pick: fn(&EndpointKey) -> Option<String>| -> BTreeSet<String> {
        series
            .endpoints
            .iter()
            .filter(|(_, cells)| hours.iter().any(|hour| cells.contains_key(hour)))
            .filter_map(|(key, _)| pick(key))
            .collect()
    };
    let endpoint_name: fn(&EndpointKey) -> Option<String> = |key| {
        key.endpoint.as_ref().map(|endpoint| {
            format!(
                "{} {}{}",
                key.method.as_deref().unwrap_or("-"),
                key.host.as_deref().unwrap_or(""),
                endpoint
            )
        })
    };
    let method_name: fn(&EndpointKey) -> Option<String> = |key| key.method.clone();
    let sets: [(&str, SetOf<'_>); 3] = [
        ("endpoints", Box::new(|hours| keys(hours, endpoint_name))),
        ("methods", Box::new(|hours| keys(hours, method_name))),
        ("networks", Box::new(networks)),
    ];
    for (name, set) in sets {
        let now = set(&windows.window);
        let before = set(&baseline_hours);
        let values: Vec<f64> = windows
            .weeks
            .iter()
            .map(|hours| set(hours).len() as f64)
            .collect();
        let new: Vec<String> = now.difference(&before).cloned().collect();
        rows.push(
            consumer,
            None,
            name,
            now.len() as f64,
            &values,
            false,
            Some(new),
        );
    }

    // Endpoint rows, for the endpoints with calls in the window.
    for (key, cells) in &series.endpoints {
        if !windows.window.iter().any(|hour| cells.contains_key(hour)) {
            continue;
        }
        let sum = |hours: &[usize]| -> (Counts, f64) {
            let mut counts = Counts::default();
            let mut objects = DistinctSketch::new();
            for hour in hours {
                if let Some(cell) = cells.get(hour) {
                    counts.calls += cell.counts.calls;
                    counts.status_4xx += cell.counts.status_4xx;
                    counts.status_401 += cell.counts.status_401;
                    counts.status_429 += cell.counts.status_429;
                    counts.bytes_out += cell.counts.bytes_out;
                    objects.merge(&cell.object_ids);
                }
            }
            (counts, objects.estimate() as f64)
        };
        let (now, now_objects) = sum(&windows.window);
        let earlier: Vec<(Counts, f64)> = windows.weeks.iter().map(|hours| sum(hours)).collect();
        let endpoint_metrics: [(&str, EndpointMetric, bool); 4] = [
            ("calls", Box::new(|(c, _)| Some(c.calls as f64)), false),
            (
                "client_errors",
                Box::new(|(c, _)| Some(c.client_errors() as f64)),
                false,
            ),
            ("object_ids", Box::new(|(_, objects)| Some(*objects)), false),
            (
                "bytes_per_call",
                Box::new(|(c, _)| (c.calls > 0).then(|| c.bytes_out as f64 / c.calls as f64)),
                true,
            ),
        ];
        for (name, value, is_mean) in endpoint_metrics {
            let Some(observed) = value(&(now, now_objects)) else {
                continue;
            };
            let values: Vec<f64> = earlier.iter().filter_map(&value).collect();
            rows.push(consumer, Some(key), name, observed, &values, is_mean, None);
        }
    }
}

#[derive(Default)]
struct Rows {
    consumers: StringBuilder,
    scopes: StringBuilder,
    hosts: StringBuilder,
    methods: StringBuilder,
    endpoints: StringBuilder,
    metrics: StringBuilder,
    observed: Float64Builder,
    medians: Float64Builder,
    mads: Float64Builder,
    maxima: Float64Builder,
    weeks: Int64Builder,
    scores: Float64Builder,
    new_values: ListBuilder<StringBuilder>,
}

impl Rows {
    #[allow(clippy::too_many_arguments)]
    fn push(
        &mut self,
        consumer: &str,
        key: Option<&EndpointKey>,
        metric: &str,
        observed: f64,
        baseline: &[f64],
        is_mean: bool,
        new_values: Option<Vec<String>>,
    ) {
        self.consumers.append_value(consumer);
        self.scopes.append_value(if key.is_some() {
            "endpoint"
        } else {
            "consumer"
        });
        self.hosts
            .append_option(key.and_then(|k| k.host.as_deref()));
        self.methods
            .append_option(key.and_then(|k| k.method.as_deref()));
        self.endpoints
            .append_option(key.and_then(|k| k.endpoint.as_deref()));
        self.metrics.append_value(metric);
        self.observed.append_value(round(observed));
        let sample = Sample::of(baseline);
        self.medians.append_option(sample.map(|s| round(s.median)));
        self.mads.append_option(sample.map(|s| round(s.mad)));
        self.maxima.append_option(sample.map(|s| round(s.max)));
        self.weeks.append_value(baseline.len() as i64);
        let score = sample.map(|s| {
            if is_mean {
                s.mean_score(observed, 0.02)
            } else {
                s.count_score(observed)
            }
        });
        self.scores.append_option(score.map(round));
        match new_values {
            Some(values) => {
                for value in values {
                    self.new_values.values().append_value(value);
                }
                self.new_values.append(true);
            }
            None => self.new_values.append(false),
        }
    }

    fn finish(mut self) -> Result<RecordBatch> {
        Ok(RecordBatch::try_new(
            profile_schema(),
            vec![
                Arc::new(self.consumers.finish()),
                Arc::new(self.scopes.finish()),
                Arc::new(self.hosts.finish()),
                Arc::new(self.methods.finish()),
                Arc::new(self.endpoints.finish()),
                Arc::new(self.metrics.finish()),
                Arc::new(self.observed.finish()),
                Arc::new(self.medians.finish()),
                Arc::new(self.mads.finish()),
                Arc::new(self.maxima.finish()),
                Arc::new(self.weeks.finish()),
                Arc::new(self.scores.finish()),
                Arc::new(self.new_values.finish()),
            ],
        )?)
    }
}
