//! The `events` table: committed Parquet data merged with the write buffer.
//!
//! At planning time the provider takes one [`StoreSnapshot`], so a scan reads
//! a committed table version plus exactly the buffered batches above it. A
//! flush that lands during the query changes neither side.
//!
//! Events that a flush staged on local disk, because the object store could
//! not take them, are a third input: Parquet files read from the data
//! directory until their commit.
//!
//! Pruning by time: filters are handed to the Delta scan, which skips files
//! by their `day` partition and their `time` statistics; buffered batches are
//! skipped when their time range cannot match. Every filter is reported as
//! inexact, so DataFusion still applies it row by row above the scan.

use std::sync::Arc;

use apitrail_ingest::event_schema;
use apitrail_storage::{Store, StoreSnapshot};
use arrow::datatypes::SchemaRef;
use async_trait::async_trait;
use datafusion::catalog::Session;
use datafusion::common::{Result, ScalarValue};
use datafusion::datasource::listing::PartitionedFile;
use datafusion::datasource::memory::MemorySourceConfig;
use datafusion::datasource::physical_plan::{FileGroup, FileScanConfigBuilder, ParquetSource};
use datafusion::datasource::source::DataSourceExec;
use datafusion::datasource::{TableProvider, TableType};
use datafusion::execution::object_store::ObjectStoreUrl;
use datafusion::logical_expr::{BinaryExpr, Expr, Operator, TableProviderFilterPushDown};
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_expr::expressions::{CastExpr, Column};
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::empty::EmptyExec;
use datafusion::physical_plan::projection::ProjectionExec;
use datafusion::physical_plan::union::UnionExec;

/// Table provider for `events`, reading one store.
#[derive(Debug)]
pub struct EventsTable {
    store: Arc<Store>,
}

impl EventsTable {
    pub fn new(store: Arc<Store>) -> Self {
        EventsTable { store }
    }
}

#[async_trait]
impl TableProvider for EventsTable {
    fn schema(&self) -> SchemaRef {
        event_schema()
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
        let bounds = TimeBounds::from_filters(filters);

        let mut inputs: Vec<Arc<dyn ExecutionPlan>> = Vec::new();
        if let Some(table) = &snapshot.table {
            let plan = committed_scan(table, "events", state, filters).await?;
            inputs.push(conform_to_schema(plan, &event_schema())?);
        }
        if let Some(plan) = staged_scan(&snapshot, &bounds)? {
            inputs.push(plan);
        }
        if let Some(plan) = buffered_scan(&snapshot, &bounds)? {
            inputs.push(plan);
        }
        let merged = match inputs.len() {
            0 => Arc::new(EmptyExec::new(event_schema())) as Arc<dyn ExecutionPlan>,
            _ => UnionExec::try_new(inputs)?,
        };
        project(merged, projection)
    }
}

/// Scans one committed version of a Delta table with the query's filters.
pub(crate) async fn committed_scan(
    table: &deltalake::DeltaTable,
    name: &str,
    state: &dyn Session,
    filters: &[Expr],
) -> Result<Arc<dyn ExecutionPlan>> {
    table
        .update_datafusion_session(state)
        .map_err(|e| datafusion::error::DataFusionError::External(Box::new(e)))?;
    let provider = table
        .table_provider()
        .await
        .map_err(|e| e.context(format!("opening the committed {name} table")))?;
    provider.scan(state, None, filters, None).await
}

/// Puts the columns of a table scan in the order and types of `target`.
///
/// The Delta scan returns the partition column last and may type nested
/// columns with other field names; a projection by name fixes both.
pub(crate) fn conform_to_schema(
    plan: Arc<dyn ExecutionPlan>,
    target: &SchemaRef,
) -> Result<Arc<dyn ExecutionPlan>> {
    let input_schema = plan.schema();
    let mut exprs: Vec<(Arc<dyn PhysicalExpr>, String)> = Vec::with_capacity(target.fields().len());
    for field in target.fields() {
        let index = input_schema.index_of(field.name())?;
        let column: Arc<dyn PhysicalExpr> = Arc::new(Column::new(field.name(), index));
        let expr = if input_schema.field(index).data_type() == field.data_type() {
            column
        } else {
            Arc::new(CastExpr::new(column, field.data_type().clone(), None))
        };
        exprs.push((expr, field.name().clone()));
    }
    Ok(Arc::new(ProjectionExec::try_new(exprs, plan)?))
}

/// Scans the local staging files whose time range can match the filters:
/// flushed events that the table could not take yet.
fn staged_scan(
    snapshot: &StoreSnapshot,
    bounds: &TimeBounds,
) -> Result<Option<Arc<dyn ExecutionPlan>>> {
    let files: Vec<PartitionedFile> = snapshot
        .staged
        .iter()
        .filter(|f| {
            f.time_range
                .is_some_and(|(min, max)| bounds.overlaps(min, max))
        })
        .map(|f| PartitionedFile::new(f.path.to_string_lossy(), f.bytes))
        .collect();
    if files.is_empty() {
        return Ok(None);
    }
    let source = Arc::new(ParquetSource::new(event_schema()));
    let config = FileScanConfigBuilder::new(ObjectStoreUrl::local_filesystem(), source)
        .with_file_group(FileGroup::new(files))
        .build();
    Ok(Some(DataSourceExec::from_data_source(config)))
}

/// Scans the buffered batches whose time range can match the filters.
fn buffered_scan(
    snapshot: &StoreSnapshot,
    bounds: &TimeBounds,
) -> Result<Option<Arc<dyn ExecutionPlan>>> {
    let batches: Vec<_> = snapshot
        .buffered
        .iter()
        .filter(|b| {
            b.time_range
                .is_some_and(|(min, max)| bounds.overlaps(min, max))
        })
        .map(|b| b.batch.clone())
        .collect();
    if batches.is_empty() {
        return Ok(None);
    }
    let plan = MemorySourceConfig::try_new_exec(&[batches], event_schema(), None)?;
    Ok(Some(plan))
}

pub(crate) fn project(
    plan: Arc<dyn ExecutionPlan>,
    projection: Option<&Vec<usize>>,
) -> Result<Arc<dyn ExecutionPlan>> {
    let Some(projection) = projection else {
        return Ok(plan);
    };
    let schema = plan.schema();
    let exprs: Vec<(Arc<dyn PhysicalExpr>, String)> = projection
        .iter()
        .map(|&index| {
            let name = schema.field(index).name().clone();
            (
                Arc::new(Column::new(&name, index)) as Arc<dyn PhysicalExpr>,
                name,
            )
        })
        .collect();
    Ok(Arc::new(ProjectionExec::try_new(exprs, plan)?))
}

/// Inclusive bounds on `time` in microseconds implied by a query's filters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeBounds {
    pub min: i64,
    pub max: i64,
}

impl TimeBounds {
    /// Collects `time <op> literal` comparisons that are ANDed at the top level.
    pub fn from_filters(filters: &[Expr]) -> Self {
        let mut bounds = TimeBounds {
            min: i64::MIN,
            max: i64::MAX,
        };
        for filter in filters {
            bounds.narrow(filter);
        }
        bounds
    }

    pub fn overlaps(&self, min: i64, max: i64) -> bool {
        min <= self.max && max >= self.min
    }

    fn narrow(&mut self, expr: &Expr) {
        match expr {
            Expr::BinaryExpr(BinaryExpr { left, op, right }) if *op == Operator::And => {
                self.narrow(left);
                self.narrow(right);
            }
            Expr::BinaryExpr(BinaryExpr { left, op, right }) => {
                if let Some((op, micros)) = time_comparison(left, *op, right) {
                    self.apply(op, micros);
                }
            }
            Expr::Between(between) if !between.negated && is_time_column(&between.expr) => {
                if let Some(low) = literal_micros(&between.low) {
                    self.apply(Operator::GtEq, low);
                }
                if let Some(high) = literal_micros(&between.high) {
                    self.apply(Operator::LtEq, high);
                }
            }
            _ => {}
        }
    }

    fn apply(&mut self, op: Operator, micros: i64) {
        match op {
            Operator::Gt => self.min = self.min.max(micros.saturating_add(1)),
            Operator::GtEq => self.min = self.min.max(micros),
            Operator::Lt => self.max = self.max.min(micros.saturating_sub(1)),
            Operator::LtEq => self.max = self.max.min(micros),
            Operator::Eq => {
                self.min = self.min.max(micros);
                self.max = self.max.min(micros);
            }
            _ => {}
        }
    }
}

/// Normalises `time op lit` and `lit op time` to `(op, micros)` with time on the left.
fn time_comparison(left: &Expr, op: Operator, right: &Expr) -> Option<(Operator, i64)> {
    if is_time_column(left) {
        return Some((op, literal_micros(right)?));
    }
    if is_time_column(right) {
        return Some((op.swap()?, literal_micros(left)?));
    }
    None
}

fn is_time_column(expr: &Expr) -> bool {
    matches!(expr, Expr::Column(column) if column.name == "time")
}

/// Converts a timestamp literal to microseconds, rounding sub-microsecond values down.
fn literal_micros(expr: &Expr) -> Option<i64> {
    let Expr::Literal(value, _) = expr else {
        return None;
    };
    match value {
        ScalarValue::TimestampSecond(Some(v), _) => v.checked_mul(1_000_000),
        ScalarValue::TimestampMillisecond(Some(v), _) => v.checked_mul(1_000),
        ScalarValue::TimestampMicrosecond(Some(v), _) => Some(*v),
        ScalarValue::TimestampNanosecond(Some(v), _) => Some(v.div_euclid(1_000)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::prelude::{col, lit};

    fn micros(v: i64) -> Expr {
        lit(ScalarValue::TimestampMicrosecond(
            Some(v),
            Some("UTC".into()),
        ))
    }

    #[test]
    fn bounds_from_range_filters() {
        let filter = col("time")
            .gt_eq(micros(100))
            .and(col("time").lt(micros(200)));
        let bounds = TimeBounds::from_filters(&[filter]);
        assert_eq!(bounds, TimeBounds { min: 100, max: 199 });
        assert!(bounds.overlaps(150, 400));
        assert!(!bounds.overlaps(200, 400));
    }

    #[test]
    fn bounds_literal_on_left() {
        let bounds = TimeBounds::from_filters(&[micros(500).lt(col("time"))]);
        assert_eq!(bounds.min, 501);
        assert_eq!(bounds.max, i64::MAX);
    }

    #[test]
    fn bounds_ignore_or_and_other_columns() {
        let filter = col("time").gt(micros(1)).or(col("status").eq(lit(500)));
        let bounds = TimeBounds::from_filters(&[filter, col("status").gt(lit(1))]);
        assert_eq!(
            bounds,
            TimeBounds {
                min: i64::MIN,
                max: i64::MAX
            }
        );
    }
}
