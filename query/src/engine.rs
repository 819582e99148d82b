//! The SQL engine: one DataFusion context with the apitrail tables, read-only.

use std::sync::Arc;

use apitrail_storage::Store;
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::execution::runtime_env::RuntimeEnvBuilder;
use datafusion::execution::session_state::SessionStateBuilder;
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::logical_expr::LogicalPlan;
use datafusion::prelude::{SQLOptions, SessionConfig, SessionContext};

use crate::error::QueryError;
use crate::events_table::EventsTable;
use crate::inventory::Inventory;
use crate::limits::{ScanBytesLimit, query_runtime};
use crate::views::ViewOptions;

/// Limits applied to every query.
#[derive(Debug, Clone)]
pub struct QueryLimits {
    /// Memory that all running queries may use together, in bytes.
    pub memory_bytes: usize,
    /// Memory that one query may use, in bytes, within `memory_bytes`; 0 for no per-query limit.
    pub query_memory_bytes: usize,
    /// Rows a result may have before the protocols cut it; 0 for no limit.
    pub max_rows: u64,
    /// Bytes of data files the scans of one query may read; 0 for no limit.
    pub max_scan_bytes: u64,
    /// Rows per batch produced by operators.
    pub batch_size: usize,
}

impl Default for QueryLimits {
    fn default() -> Self {
        QueryLimits {
            memory_bytes: 2 * 1024 * 1024 * 1024,
            query_memory_bytes: 1024 * 1024 * 1024,
            max_rows: 0,
            max_scan_bytes: 0,
            batch_size: 8192,
        }
    }
}

/// Runs read-only SQL over one store.
#[derive(Clone)]
pub struct QueryEngine {
    ctx: SessionContext,
    limits: QueryLimits,
}

impl std::fmt::Debug for QueryEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QueryEngine").finish_non_exhaustive()
    }
}

impl QueryEngine {
    /// Builds a session with the `events` table, the views and the apitrail functions.
    pub async fn new(
        store: Arc<Store>,
        limits: &QueryLimits,
        inventory: &Arc<Inventory>,
        views: &ViewOptions,
    ) -> Result<Self, QueryError> {
        let runtime = RuntimeEnvBuilder::new()
            .with_memory_limit(limits.memory_bytes, 1.0)
            .build_arc()
            .map_err(QueryError::from_datafusion)?;
        let config = SessionConfig::new()
            .with_batch_size(limits.batch_size)
            .with_information_schema(true)
            .with_default_catalog_and_schema("apitrail", "public");
        // The scan rule runs last, so it counts the file groups that the
        // other rules left. Sessions built from this state inherit it.
        let state = SessionStateBuilder::new()
            .with_config(config)
            .with_runtime_env(runtime)
            .with_default_features()
            .with_physical_optimizer_rule(Arc::new(ScanBytesLimit::new(limits.max_scan_bytes)))
            .build();
        let ctx = SessionContext::new_with_state(state);
        crate::functions::register_all(&ctx);
        crate::inventory::register_inventory(&ctx, inventory)
            .map_err(QueryError::from_datafusion)?;
        ctx.register_table("events", Arc::new(EventsTable::new(Arc::clone(&store))))
            .map_err(QueryError::from_datafusion)?;
        crate::views::register_views(&ctx, Arc::clone(&store), inventory, views)
            .await
            .map_err(QueryError::from_datafusion)?;
        crate::anomalies::register_anomalies(&ctx, store, inventory);
        Ok(QueryEngine {
            ctx,
            limits: limits.clone(),
        })
    }

    /// Plans `sql`, rejecting anything that is not a query.
    pub async fn plan(&self, sql: &str) -> Result<LogicalPlan, QueryError> {
        let state = self.ctx.state();
        let plan = state
            .create_logical_plan(sql)
            .await
            .map_err(QueryError::from_datafusion)?;
        check_read_only(&plan)?;
        Ok(plan)
    }

    /// Runs `sql` and returns its result as a stream of batches.
    pub async fn execute(&self, sql: &str) -> Result<SendableRecordBatchStream, QueryError> {
        let plan = self.plan(sql).await?;
        self.execute_plan(plan).await
    }

    /// Runs a plan made by [`QueryEngine::plan`], after any placeholders in it were bound.
    ///
    /// The query runs with a memory pool of its own, limited to
    /// [`QueryLimits::query_memory_bytes`] within the shared pool.
    pub async fn execute_plan(
        &self,
        plan: LogicalPlan,
    ) -> Result<SendableRecordBatchStream, QueryError> {
        let state = self.ctx.state();
        let physical = state
            .create_physical_plan(&plan)
            .await
            .map_err(QueryError::from_datafusion)?;
        let runtime = query_runtime(state.runtime_env(), self.limits.query_memory_bytes)
            .map_err(QueryError::from_datafusion)?;
        let task = TaskContext::from(&state).with_runtime(runtime);
        datafusion::physical_plan::execute_stream(physical, Arc::new(task))
            .map_err(QueryError::from_datafusion)
    }

    pub fn context(&self) -> &SessionContext {
        &self.ctx
    }

    /// Returns the limits this engine was built with.
    pub fn limits(&self) -> &QueryLimits {
        &self.limits
    }
}

/// Rejects a plan that would change state: DDL, DML, COPY and statements
/// such as `SET`. [`QueryEngine::plan`] applies this rule, and so must every
/// protocol that plans SQL on its own session.
pub fn check_read_only(plan: &LogicalPlan) -> Result<(), QueryError> {
    reject_writes(plan)?;
    let options = SQLOptions::new()
        .with_allow_ddl(false)
        .with_allow_dml(false)
        .with_allow_statements(false);
    options
        .verify_plan(plan)
        .map_err(|e| QueryError::ReadOnly(e.strip_backtrace()))
}

/// Rejects a plan that would change state anywhere in its tree, naming the statement.
///
/// The whole tree is searched, subqueries included, because `EXPLAIN` and
/// `EXPLAIN ANALYZE` wrap the statement they describe, and `EXPLAIN ANALYZE`
/// runs it.
fn reject_writes(plan: &LogicalPlan) -> Result<(), QueryError> {
    let mut write = None;
    plan.apply_with_subqueries(|node| {
        write = write_kind(node);
        Ok(if write.is_some() {
            TreeNodeRecursion::Stop
        } else {
            TreeNodeRecursion::Continue
        })
    })
    .map_err(QueryError::from_datafusion)?;
    match write {
        Some(kind) => Err(QueryError::ReadOnly(kind)),
        None => Ok(()),
    }
}

/// Names the kind of statement of `node` if it would change state.
fn write_kind(node: &LogicalPlan) -> Option<String> {
    match node {
        LogicalPlan::Dml(dml) => Some(format!("{} (DML)", dml.op)),
        LogicalPlan::Ddl(ddl) => Some(ddl.name().to_string()),
        LogicalPlan::Copy(_) => Some("COPY".to_string()),
        LogicalPlan::Statement(statement) => Some(statement.name().to_string()),
        _ => None,
    }
}
