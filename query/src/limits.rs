//! Per-query limits: a memory pool per query and a cap on the bytes of data
//! files one query may scan.
//!
//! [`QueryMemoryPool`] counts the reservations of one query against its own
//! limit and forwards every reservation to the pool that all queries share,
//! so both limits hold. [`ScanBytesLimit`] is a physical optimizer rule that
//! sums the sizes of the files every scan of a plan is planned to read and
//! rejects the plan before it runs when the sum is over the limit.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
use datafusion::config::ConfigOptions;
use datafusion::datasource::listing::PartitionedFile;
use datafusion::datasource::physical_plan::FileScanConfig;
use datafusion::datasource::source::DataSourceExec;
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::SessionState;
use datafusion::execution::memory_pool::{
    MemoryConsumer, MemoryLimit, MemoryPool, MemoryReservation,
};
use datafusion::execution::runtime_env::{RuntimeEnv, RuntimeEnvBuilder};
use datafusion::execution::session_state::SessionStateBuilder;
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::ExecutionPlan;

/// Name of the configuration key of the per-query memory limit, for messages.
const MEMORY_KEY: &str = "query_max_memory_bytes";
/// Name of the configuration key of the scan limit, for messages.
const SCAN_KEY: &str = "query_max_scan_bytes";

/// The memory pool of one query: at most `limit` bytes for this query, taken
/// from the pool that all running queries share.
///
/// A reservation first counts against this query's limit and then grows the
/// shared pool. When either is full, the reservation fails with
/// `ResourcesExhausted`, so an operator that can spill spills and any other
/// operator fails the query.
#[derive(Debug)]
pub struct QueryMemoryPool {
    shared: Arc<dyn MemoryPool>,
    limit: usize,
    reserved: AtomicUsize,
}

impl QueryMemoryPool {
    pub fn new(shared: Arc<dyn MemoryPool>, limit: usize) -> Self {
        QueryMemoryPool {
            shared,
            limit,
            reserved: AtomicUsize::new(0),
        }
    }

    fn limit_error(&self, reservation: &MemoryReservation, additional: usize) -> DataFusionError {
        DataFusionError::ResourcesExhausted(format!(
            "the query reached its memory limit of {} bytes ({MEMORY_KEY}): {} needed {additional} \
             more bytes with {} bytes already reserved by the query; filter or aggregate the data \
             further, or raise {MEMORY_KEY}",
            self.limit,
            reservation.consumer().name(),
            self.reserved.load(Ordering::Relaxed),
        ))
    }
}

impl fmt::Display for QueryMemoryPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "query pool (limit {} bytes, within {})",
            self.limit, self.shared
        )
    }
}

impl MemoryPool for QueryMemoryPool {
    fn name(&self) -> &str {
        "apitrail_query"
    }

    fn register(&self, consumer: &MemoryConsumer) {
        self.shared.register(consumer);
    }

    fn unregister(&self, consumer: &MemoryConsumer) {
        self.shared.unregister(consumer);
    }

    fn grow(&self, reservation: &MemoryReservation, additional: usize) {
        self.reserved.fetch_add(additional, Ordering::Relaxed);
        self.shared.grow(reservation, additional);
    }

    fn shrink(&self, reservation: &MemoryReservation, shrink: usize) {
        self.reserved.fetch_sub(shrink, Ordering::Relaxed);
        self.shared.shrink(reservation, shrink);
    }

    fn try_grow(&self, reservation: &MemoryReservation, additional: usize) -> Result<()> {
        self.reserved
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |used| {
                used.checked_add(additional)
                    .filter(|total| *total <= self.limit)
            })
            .map_err(|_| self.limit_error(reservation, additional))?;
        if let Err(error) = self.shared.try_grow(reservation, additional) {
            self.reserved.fetch_sub(additional, Ordering::Relaxed);
            return Err(error);
        }
        Ok(())
    }

    fn reserved(&self) -> usize {
        self.reserved.load(Ordering::Relaxed)
    }

    fn memory_limit(&self) -> MemoryLimit {
        match self.shared.memory_limit() {
            MemoryLimit::Finite(shared) => MemoryLimit::Finite(shared.min(self.limit)),
            MemoryLimit::Infinite | MemoryLimit::Unknown => MemoryLimit::Finite(self.limit),
        }
    }
}

/// Builds the runtime of one query: `shared` with a [`QueryMemoryPool`] of
/// `max_bytes` over its pool, and the same disk manager, caches and object
/// stores. With `max_bytes` 0 it returns `shared` itself.
pub fn query_runtime(shared: &Arc<RuntimeEnv>, max_bytes: usize) -> Result<Arc<RuntimeEnv>> {
    if max_bytes == 0 {
        return Ok(Arc::clone(shared));
    }
    let pool = QueryMemoryPool::new(Arc::clone(&shared.memory_pool), max_bytes);
    RuntimeEnvBuilder::from_runtime_env(shared)
        .with_memory_pool(Arc::new(pool))
        .build_arc()
}

/// Returns a copy of `state` (catalogs, functions, settings, optimizer
/// rules) whose runtime limits each query to `max_bytes`, for sessions that
/// execute through a `SessionContext` of their own.
pub fn query_state(state: &SessionState, max_bytes: usize) -> Result<SessionState> {
    let runtime = query_runtime(state.runtime_env(), max_bytes)?;
    Ok(SessionStateBuilder::new_from_existing(state.clone())
        .with_runtime_env(runtime)
        .build())
}

/// A query would read more bytes of data files than `query_max_scan_bytes` allows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScanLimitExceeded {
    /// Bytes of the data files the query's scans would read.
    pub scan_bytes: u64,
    /// The limit, in bytes.
    pub max_bytes: u64,
}

impl fmt::Display for ScanLimitExceeded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "the query would scan {} bytes of data files, more than the limit of {} bytes \
             ({SCAN_KEY}); narrow the time range, such as WHERE time > now() - INTERVAL '1 day', \
             or raise {SCAN_KEY}",
            self.scan_bytes, self.max_bytes
        )
    }
}

impl std::error::Error for ScanLimitExceeded {}

/// Physical optimizer rule that rejects a plan whose scans would read more
/// than `max_bytes` of data files. It changes no plan.
///
/// It runs after the rules that split and prune scans, so it counts the file
/// groups that the scans will read: files skipped by partition or statistics
/// pruning at planning time are not counted.
#[derive(Debug)]
pub struct ScanBytesLimit {
    max_bytes: u64,
}

impl ScanBytesLimit {
    pub fn new(max_bytes: u64) -> Self {
        ScanBytesLimit { max_bytes }
    }
}

impl PhysicalOptimizerRule for ScanBytesLimit {
    fn optimize(
        &self,
        plan: Arc<dyn ExecutionPlan>,
        _config: &ConfigOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        if self.max_bytes == 0 {
            return Ok(plan);
        }
        let scan_bytes = planned_scan_bytes(&plan)?;
        if scan_bytes > self.max_bytes {
            return Err(DataFusionError::External(Box::new(ScanLimitExceeded {
                scan_bytes,
                max_bytes: self.max_bytes,
            })));
        }
        Ok(plan)
    }

    fn name(&self) -> &str {
        "apitrail_scan_bytes_limit"
    }

    fn schema_check(&self) -> bool {
        true
    }
}

/// Sums the bytes of the data files that every file scan of `plan` is planned to read.
///
/// A file split into byte ranges counts each range once, which adds up to
/// the file's size. In-memory sources, such as the write buffer, are not
/// files and count nothing.
///
/// NOTE: a `LIMIT` may stop a scan before it has read all its files, but
/// the sum counts every planned file, so it is an upper bound.
pub fn planned_scan_bytes(plan: &Arc<dyn ExecutionPlan>) -> Result<u64> {
    let mut total: u64 = 0;
    plan.apply(|node| {
        if let Some(exec) = node.downcast_ref::<DataSourceExec>()
            && let Some(config) = exec.data_source().downcast_ref::<FileScanConfig>()
        {
            let bytes: u64 = config
                .file_groups
                .iter()
                .flat_map(|group| group.files())
                .map(file_bytes)
                .sum();
            total = total.saturating_add(bytes);
        }
        Ok(TreeNodeRecursion::Continue)
    })?;
    Ok(total)
}

/// Bytes one scan entry reads: its byte range, or else the whole file.
fn file_bytes(file: &PartitionedFile) -> u64 {
    match &file.range {
        Some(range) => u64::try_from(range.end.saturating_sub(range.start)).unwrap_or(0),
        None => file.object_meta.size,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use datafusion::execution::memory_pool::GreedyMemoryPool;

    fn pools(
        shared_bytes: usize,
        query_bytes: usize,
    ) -> (Arc<dyn MemoryPool>, Arc<dyn MemoryPool>) {
        let shared: Arc<dyn MemoryPool> = Arc::new(GreedyMemoryPool::new(shared_bytes));
        let query: Arc<dyn MemoryPool> =
            Arc::new(QueryMemoryPool::new(Arc::clone(&shared), query_bytes));
        (shared, query)
    }

    #[test]
    fn query_pool_rejects_over_its_own_limit() {
        let (shared, query) = pools(1000, 100);
        let reservation = MemoryConsumer::new("sort").register(&query);
        reservation.try_grow(60).expect("60 of 100 bytes fit");
        let error = reservation
            .try_grow(50)
            .expect_err("110 bytes exceed the query limit of 100");
        let message = error.to_string();
        assert!(
            matches!(error, DataFusionError::ResourcesExhausted(_)),
            "the error is ResourcesExhausted, got {error:?}"
        );
        assert!(
            message.contains("query_max_memory_bytes"),
            "the message names the setting: {message}"
        );
        assert_eq!(query.reserved(), 60, "the failed grow reserves nothing");
        assert_eq!(
            shared.reserved(),
            60,
            "the shared pool holds the same bytes"
        );
    }

    #[test]
    fn query_pool_respects_the_shared_limit() {
        let (shared, first) = pools(100, 80);
        let second: Arc<dyn MemoryPool> = Arc::new(QueryMemoryPool::new(Arc::clone(&shared), 80));
        let a = MemoryConsumer::new("a").register(&first);
        let b = MemoryConsumer::new("b").register(&second);
        a.try_grow(70).expect("70 bytes fit both limits");
        let error = b
            .try_grow(40)
            .expect_err("70 + 40 bytes exceed the shared 100 bytes");
        assert!(
            matches!(error, DataFusionError::ResourcesExhausted(_)),
            "the shared pool's error passes through, got {error:?}"
        );
        assert_eq!(
            second.reserved(),
            0,
            "a grow the shared pool rejected is taken back from the query"
        );
        b.try_grow(30).expect("70 + 30 bytes fit the shared pool");
        assert_eq!(shared.reserved(), 100, "shared pool after both grows");
    }

    #[test]
    fn query_pool_returns_memory_on_drop() {
        let (shared, query) = pools(1000, 100);
        {
            let reservation = MemoryConsumer::new("join").register(&query);
            reservation.try_grow(100).expect("the whole limit fits");
            reservation.shrink(40);
            assert_eq!(query.reserved(), 60, "after shrinking 40 of 100 bytes");
        }
        assert_eq!(query.reserved(), 0, "the query pool after the drop");
        assert_eq!(shared.reserved(), 0, "the shared pool after the drop");
    }

    #[test]
    fn query_pool_reports_the_smaller_limit() {
        let (_, query) = pools(1000, 100);
        let MemoryLimit::Finite(limit) = query.memory_limit() else {
            panic!("a query pool has a finite limit");
        };
        assert_eq!(limit, 100, "the query limit is below the shared one");
        let (_, wide) = pools(50, 100);
        let MemoryLimit::Finite(limit) = wide.memory_limit() else {
            panic!("a query pool has a finite limit");
        };
        assert_eq!(limit, 50, "the shared limit is below the query one");
    }

    #[test]
    fn scan_limit_message_states_both_numbers() {
        let message = ScanLimitExceeded {
            scan_bytes: 5000,
            max_bytes: 1000,
        }
        .to_string();
        assert!(message.contains("5000 bytes"), "the scan size: {message}");
        assert!(message.contains("1000 bytes"), "the limit: {message}");
        assert!(message.contains("time range"), "the advice: {message}");
    }
}

#[cfg(test)]
mod scan_tests {
    use super::*;

    use std::path::Path;

    use arrow::array::{Int64Array, RecordBatch};
    use arrow::datatypes::{DataType, Field, Schema};
    use datafusion::datasource::file_format::parquet::ParquetFormat;
    use datafusion::datasource::listing::{
        ListingOptions, ListingTable, ListingTableConfig, ListingTableUrl,
    };
    use datafusion::parquet::arrow::ArrowWriter;
    use datafusion::prelude::{SessionConfig, SessionContext};

    /// Writes one Parquet file of `rows` values and returns its size in bytes.
    fn write_file(path: &Path, rows: i64) -> u64 {
        std::fs::create_dir_all(path.parent().expect("a file has a folder"))
            .expect("creating the partition folder");
        let schema = Arc::new(Schema::new(vec![Field::new("v", DataType::Int64, false)]));
        let batch = RecordBatch::try_new(
            Arc::clone(&schema),
            vec![Arc::new(Int64Array::from_iter_values(0..rows))],
        )
        .expect("a batch of one column");
        let file = std::fs::File::create(path).expect("creating the Parquet file");
        let mut writer = ArrowWriter::try_new(file, schema, None).expect("a Parquet writer");
        writer.write(&batch).expect("writing the batch");
        writer.close().expect("closing the Parquet file");
        std::fs::metadata(path).expect("the file exists").len()
    }

    /// Builds a session with the scan rule at `max_bytes` and a table `t` partitioned by `day`.
    async fn session(dir: &Path, max_bytes: u64) -> SessionContext {
        let state = SessionStateBuilder::new()
            .with_config(SessionConfig::new())
            .with_default_features()
            .with_physical_optimizer_rule(Arc::new(ScanBytesLimit::new(max_bytes)))
            .build();
        let ctx = SessionContext::new_with_state(state);
        let url = ListingTableUrl::parse(dir.to_str().expect("a UTF-8 path")).expect("a table URL");
        let options = ListingOptions::new(Arc::new(ParquetFormat::default()))
            .with_file_extension(".parquet")
            .with_table_partition_cols(vec![("day".to_string(), DataType::Utf8)]);
        let config = ListingTableConfig::new(url)
            .with_listing_options(options)
            .infer_schema(&ctx.state())
            .await
            .expect("inferring the table schema");
        let table = ListingTable::try_new(config).expect("a listing table");
        ctx.register_table("t", Arc::new(table))
            .expect("registering the table");
        ctx
    }

    async fn plan_bytes(ctx: &SessionContext, sql: &str) -> Result<u64> {
        let plan = ctx.sql(sql).await?.create_physical_plan().await?;
        planned_scan_bytes(&plan)
    }

    #[tokio::test]
    async fn scan_rule_counts_pruned_partitions() {
        let dir = tempfile::tempdir().expect("a temporary folder");
        let first = write_file(&dir.path().join("day=2024-01-01/a.parquet"), 20_000);
        let second = write_file(&dir.path().join("day=2024-01-02/b.parquet"), 20_000);

        let unlimited = session(dir.path(), 0).await;
        let all = plan_bytes(&unlimited, "SELECT sum(v) FROM t")
            .await
            .expect("planning without a limit");
        assert_eq!(all, first + second, "a scan of both partitions");
        let one_day = plan_bytes(&unlimited, "SELECT sum(v) FROM t WHERE day = '2024-01-01'")
            .await
            .expect("planning one day");
        assert_eq!(one_day, first, "partition pruning leaves one file");

        let limited = session(dir.path(), first.max(second) + 1).await;
        let error = plan_bytes(&limited, "SELECT sum(v) FROM t")
            .await
            .expect_err("two files are over a limit of one file");
        let DataFusionError::External(inner) = error.find_root() else {
            panic!("the rule's error is external, got {error:?}");
        };
        let exceeded = inner
            .downcast_ref::<ScanLimitExceeded>()
            .unwrap_or_else(|| panic!("the root error is ScanLimitExceeded, got {inner}"));
        assert_eq!(exceeded.scan_bytes, first + second, "bytes in the error");
        assert_eq!(
            exceeded.max_bytes,
            first.max(second) + 1,
            "limit in the error"
        );

        let pruned = plan_bytes(&limited, "SELECT sum(v) FROM t WHERE day = '2024-01-02'").await;
        assert!(
            pruned.is_ok(),
            "one day is under the limit of one file: {pruned:?}"
        );
    }

    #[tokio::test]
    async fn query_runtime_shares_the_pool() {
        let shared = RuntimeEnvBuilder::new()
            .with_memory_limit(1000, 1.0)
            .build_arc()
            .expect("a runtime");
        let runtime = query_runtime(&shared, 100).expect("a query runtime");
        assert!(
            runtime.memory_pool.is::<QueryMemoryPool>(),
            "the query runtime has a query pool"
        );
        let reservation = MemoryConsumer::new("test").register(&runtime.memory_pool);
        reservation.try_grow(50).expect("50 bytes fit");
        assert_eq!(
            shared.memory_pool.reserved(),
            50,
            "the bytes of the query are in the shared pool"
        );
        let unlimited = query_runtime(&shared, 0).expect("a runtime without a query limit");
        assert!(
            Arc::ptr_eq(&unlimited, &shared),
            "without a limit the shared runtime is used"
        );
    }
}
