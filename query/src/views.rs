//! The continuous views as SQL tables.
//!
//! `view_partials` reads the partial aggregates: the committed `views`
//! Delta table plus the partials of acknowledged events not yet committed,
//! taken from one store snapshot like `events`. The views proper are SQL
//! views over it that merge the partials of every key:
//!
//! - `endpoints`: one row per host, method and endpoint.
//! - `consumers`: one row per consumer.
//! - `consumer_activity`: one row per hour, consumer, host, method and endpoint.
//! - `consumer_baselines`: each consumer's normal behaviour by hour of week
//!   ([`crate::baselines`]).
//!
//! Merging happens at query time, so a view reads as many rows as the
//! partials table holds for its grain, never the events. The `all` grain,
//! which `endpoints` and `consumers` read, is held in memory already merged
//! by key ([`AllGrainCache`]), so those two views merge one row per key
//! instead of one per key and flush.

use std::sync::Arc;

use apitrail_storage::Store;
use apitrail_storage::views::{
    AllGrainCache, GRAIN_ALL, GRAIN_COLUMN, ViewPartials, partials_schema,
};
use arrow::datatypes::SchemaRef;
use async_trait::async_trait;
use datafusion::catalog::Session;
use datafusion::common::Result;
use datafusion::datasource::memory::MemorySourceConfig;
use datafusion::datasource::{TableProvider, TableType};
use datafusion::logical_expr::{BinaryExpr, Expr, Operator, TableProviderFilterPushDown};
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::empty::EmptyExec;
use datafusion::physical_plan::union::UnionExec;
use datafusion::prelude::SessionContext;

use crate::baselines::{ConsumerBaselinesOptions, ConsumerBaselinesTable};
use crate::events_table::{committed_scan, conform_to_schema, project};
use crate::inventory::Inventory;

/// Table provider for `view_partials`, reading one store.
#[derive(Debug)]
pub struct ViewPartialsTable {
    store: Arc<Store>,
    all_grain: AllGrainCache,
}

impl ViewPartialsTable {
    /// Reads `store`, holding up to `all_grain_bytes` of merged `all` rows in memory.
    pub fn new(store: Arc<Store>, all_grain_bytes: usize) -> Self {
        ViewPartialsTable {
            store,
            all_grain: AllGrainCache::new(all_grain_bytes),
        }
    }
}

/// True when one of `filters` is `grain = 'all'`, so the scan needs only that grain.
fn asks_for_all_grain(filters: &[Expr]) -> bool {
    filters.iter().any(|filter| match filter {
        Expr::BinaryExpr(BinaryExpr { left, op, right }) if *op == Operator::Eq => {
            let is_grain = |e: &Expr| matches!(e, Expr::Column(c) if c.name == GRAIN_COLUMN);
            let is_all = |e: &Expr| {
                matches!(e, Expr::Literal(value, _) if value.try_as_str().flatten() == Some(GRAIN_ALL))
            };
            (is_grain(left) && is_all(right)) || (is_all(left) && is_grain(right))
        }
        _ => false,
    })
}

#[async_trait]
impl TableProvider for ViewPartialsTable {
    fn schema(&self) -> SchemaRef {
        partials_schema()
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    fn supports_filters_pushdown(
        &self,
        filters: &[&Expr],
    ) -> Result<Vec<TableProviderFilterPushDown>> {
        Ok(vec![TableProviderFilterPushDown::Inexact; filters.len()])
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        _limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let snapshot = self.store.snapshot();
        let schema = partials_schema();
        let mut inputs: Vec<Arc<dyn ExecutionPlan>> = Vec::new();
        if let Some(views) = &snapshot.views {
            let merged = match asks_for_all_grain(filters) {
                true => self
                    .all_grain
                    .batch(views)
                    .await
                    .map_err(|e| datafusion::error::DataFusionError::External(Box::new(e)))?,
                false => None,
            };
            match merged {
                Some(batch) => inputs.push(MemorySourceConfig::try_new_exec(
                    &[vec![batch]],
                    schema.clone(),
                    None,
                )?),
                None => {
                    let plan = committed_scan(views, "views", state, filters).await?;
                    inputs.push(conform_to_schema(plan, &schema)?);
                }
            }
        }
        if !snapshot.pending_partials.is_empty() {
            // Merging first keeps one row per key however many flushes are pending.
            let mut merged = ViewPartials::default();
            for partials in &snapshot.pending_partials {
                merged.merge(partials);
            }
            let batch = merged.to_record_batch();
            inputs.push(MemorySourceConfig::try_new_exec(
                &[vec![batch]],
                schema.clone(),
                None,
            )?);
        }
        let merged = match inputs.len() {
            0 => Arc::new(EmptyExec::new(schema)) as Arc<dyn ExecutionPlan>,
            _ => UnionExec::try_new(inputs)?,
        };
        project(merged, projection)
    }
}

/// Traffic per endpoint in the current templates, with the spec status.
///
/// Rows recorded under an older template fold into the current one through
/// `path_template`. A documented endpoint whose last call is older than the
/// orphan window before the newest call is `orphan`, and every documented
/// operation that no traffic matches is listed with zero calls as `orphan`.
const ENDPOINTS_SQL: &str = "
WITH traffic AS (
    SELECT host, method, path_template(coalesce(host, ''), endpoint) AS endpoint,
        min(first_seen) AS first_seen,
        max(last_seen) AS last_seen,
        sum(calls) AS calls,
        sum(status_4xx) AS status_4xx,
        sum(status_5xx) AS status_5xx,
        count(DISTINCT CASE WHEN calls > 0 THEN consumer END) AS consumers,
        auth_scheme_names(bit_or(auth_schemes)) AS auth_schemes,
        sketch_quantile(quantile_merge(latency_ms), 0.5) AS latency_p50_ms,
        sketch_quantile(quantile_merge(latency_ms), 0.95) AS latency_p95_ms,
        sketch_quantile(quantile_merge(latency_ms), 0.99) AS latency_p99_ms,
        sum(bytes_out) AS bytes_out
    FROM view_partials
    WHERE grain = 'all'
    GROUP BY host, method, path_template(coalesce(host, ''), endpoint)
    HAVING sum(calls) > 0
),
matched AS (
    SELECT traffic.*,
        spec_status(host, method, endpoint) AS status,
        spec_operation(host, method, endpoint) AS operation
    FROM traffic
),
newest AS (SELECT max(last_seen) AS at FROM traffic)
SELECT host, method, endpoint, first_seen, last_seen, calls, status_4xx, status_5xx,
    consumers, auth_schemes, latency_p50_ms, latency_p95_ms, latency_p99_ms, bytes_out,
    CASE WHEN status = 'documented'
            AND last_seen < (SELECT at FROM newest) - INTERVAL '{ORPHAN_DAYS} days'
        THEN 'orphan' ELSE status END AS spec_status,
    operation AS spec_operation
FROM matched
UNION ALL
SELECT host, method, path AS endpoint,
    CAST(NULL AS TIMESTAMP) AS first_seen, CAST(NULL AS TIMESTAMP) AS last_seen,
    CAST(0 AS BIGINT) AS calls, CAST(0 AS BIGINT) AS status_4xx, CAST(0 AS BIGINT) AS status_5xx,
    CAST(0 AS BIGINT) AS consumers, make_array() AS auth_schemes,
    CAST(NULL AS DOUBLE) AS latency_p50_ms, CAST(NULL AS DOUBLE) AS latency_p95_ms,
    CAST(NULL AS DOUBLE) AS latency_p99_ms, CAST(0 AS BIGINT) AS bytes_out,
    'orphan' AS spec_status, operation AS spec_operation
FROM spec_operations
WHERE operation NOT IN (SELECT operation FROM matched WHERE operation IS NOT NULL)";

const CONSUMERS_SQL: &str = "
SELECT consumer,
    max(consumer_kind) AS kind,
    consumer_name(consumer) AS name,
    consumer_tier(consumer) AS tier,
    consumer_timezone(consumer) AS timezone,
    min(first_seen) AS first_seen,
    max(last_seen) AS last_seen,
    sum(calls) AS calls,
    count(DISTINCT CASE WHEN calls > 0
        THEN concat_ws(' ', coalesce(host, ''), coalesce(method, ''),
            path_template(coalesce(host, ''), endpoint)) END)
        AS endpoints,
    distinct_count(distinct_merge(client_ips)) AS client_ips,
    distinct_count(distinct_merge(user_agents)) AS user_agents
FROM view_partials
WHERE grain = 'all'
GROUP BY consumer
HAVING sum(calls) > 0";

const CONSUMER_ACTIVITY_SQL: &str = "
SELECT bucket AS hour, consumer, host, method,
    path_template(coalesce(host, ''), endpoint) AS endpoint,
    sum(calls) AS calls,
    sum(status_2xx) AS status_2xx,
    sum(status_3xx) AS status_3xx,
    sum(status_4xx) AS status_4xx,
    sum(status_5xx) AS status_5xx,
    sum(status_other) AS status_other,
    sum(status_401) AS status_401,
    sum(status_403) AS status_403,
    sum(status_404) AS status_404,
    sum(status_429) AS status_429,
    sum(bytes_in) AS bytes_in,
    sum(bytes_out) AS bytes_out,
    quantile_merge(latency_ms) AS latency_sketch,
    distinct_count(distinct_merge(client_ips)) AS client_ips,
    distinct_count(distinct_merge(object_ids)) AS object_ids,
    distinct_merge(object_ids) AS object_ids_sketch,
    distinct_count(distinct_merge(user_agents)) AS user_agents
FROM view_partials
WHERE grain = 'hour'
GROUP BY bucket, consumer, host, method, path_template(coalesce(host, ''), endpoint)
HAVING sum(calls) > 0";

/// Settings of the views.
#[derive(Debug, Clone)]
pub struct ViewOptions {
    /// A documented endpoint without calls in this many days before the newest call is an orphan.
    pub orphan_window_days: u32,
    /// Trailing window of `consumer_baselines`, in weeks.
    pub baseline_window_weeks: u32,
    /// Memory for the merged `all` grain of the views table; beyond it, the
    /// views that read that grain read the table on every query.
    pub all_grain_cache_bytes: usize,
}

impl Default for ViewOptions {
    fn default() -> Self {
        ViewOptions {
            orphan_window_days: 30,
            baseline_window_weeks: 4,
            all_grain_cache_bytes: 256 << 20,
        }
    }
}

/// Registers `view_partials` and the views over it in `ctx`.
///
/// The inventory functions (`path_template`, `spec_status`, ...) must be
/// registered first, since the views call them.
pub async fn register_views(
    ctx: &SessionContext,
    store: Arc<Store>,
    inventory: &Arc<Inventory>,
    options: &ViewOptions,
) -> Result<()> {
    ctx.register_table(
        "view_partials",
        Arc::new(ViewPartialsTable::new(
            Arc::clone(&store),
            options.all_grain_cache_bytes,
        )),
    )?;
    let timezones = Arc::clone(inventory);
    let baselines = ConsumerBaselinesTable::new(
        store,
        ConsumerBaselinesOptions {
            window_weeks: options.baseline_window_weeks,
            timezone_of: Arc::new(move |consumer| {
                timezones
                    .consumer_info(consumer)
                    .and_then(|info| info.timezone)
            }),
        },
    )?;
    ctx.register_table("consumer_baselines", Arc::new(baselines))?;
    let endpoints = ENDPOINTS_SQL.replace("{ORPHAN_DAYS}", &options.orphan_window_days.to_string());
    for (name, sql) in [
        ("endpoints", endpoints.as_str()),
        ("consumers", CONSUMERS_SQL),
        ("consumer_activity", CONSUMER_ACTIVITY_SQL),
    ] {
        let view = ctx.sql(sql).await?.into_view();
        ctx.register_table(name, view)?;
    }
    Ok(())
}
