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
//!
//! Merging happens at query time, so a view reads as many rows as the
//! partials table holds for its grain, never the events.

use std::sync::Arc;

use apitrail_storage::Store;
use apitrail_storage::views::{ViewPartials, partials_schema};
use arrow::datatypes::SchemaRef;
use async_trait::async_trait;
use datafusion::catalog::Session;
use datafusion::common::Result;
use datafusion::datasource::memory::MemorySourceConfig;
use datafusion::datasource::{TableProvider, TableType};
use datafusion::logical_expr::{Expr, TableProviderFilterPushDown};
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::empty::EmptyExec;
use datafusion::physical_plan::union::UnionExec;
use datafusion::prelude::SessionContext;

use crate::events_table::{committed_scan, conform_to_schema, project};

/// Table provider for `view_partials`, reading one store.
#[derive(Debug)]
pub struct ViewPartialsTable {
    store: Arc<Store>,
}

impl ViewPartialsTable {
    pub fn new(store: Arc<Store>) -> Self {
        ViewPartialsTable { store }
    }
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
            let plan = committed_scan(views, "views", state, filters).await?;
            inputs.push(conform_to_schema(plan, &schema)?);
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

const ENDPOINTS_SQL: &str = "
SELECT host, method, endpoint,
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
GROUP BY host, method, endpoint
HAVING sum(calls) > 0";

const CONSUMERS_SQL: &str = "
SELECT consumer,
    max(consumer_kind) AS kind,
    min(first_seen) AS first_seen,
    max(last_seen) AS last_seen,
    sum(calls) AS calls,
    count(DISTINCT CASE WHEN calls > 0
        THEN concat_ws(' ', coalesce(host, ''), coalesce(method, ''), coalesce(endpoint, '')) END)
        AS endpoints,
    distinct_count(distinct_merge(client_ips)) AS client_ips,
    distinct_count(distinct_merge(user_agents)) AS user_agents
FROM view_partials
WHERE grain = 'all'
GROUP BY consumer
HAVING sum(calls) > 0";

const CONSUMER_ACTIVITY_SQL: &str = "
SELECT bucket AS hour, consumer, host, method, endpoint,
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
GROUP BY bucket, consumer, host, method, endpoint
HAVING sum(calls) > 0";

/// Registers `view_partials` and the views over it in `ctx`.
pub async fn register_views(ctx: &SessionContext, store: Arc<Store>) -> Result<()> {
    ctx.register_table("view_partials", Arc::new(ViewPartialsTable::new(store)))?;
    for (name, sql) in [
        ("endpoints", ENDPOINTS_SQL),
        ("consumers", CONSUMERS_SQL),
        ("consumer_activity", CONSUMER_ACTIVITY_SQL),
    ] {
        let view = ctx.sql(sql).await?.into_view();
        ctx.register_table(name, view)?;
    }
    Ok(())
}
