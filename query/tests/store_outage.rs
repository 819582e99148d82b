//! Ingest and queries while the object store fails: flushes go to local
//! staging, stay queryable, and are committed exactly once when the store
//! is back.
//!
//! The object store is a local directory behind a fault-injecting wrapper,
//! registered with deltalake under the `faulty://` scheme, so every table
//! operation (the Delta log's reads, lists and conditional puts, and the
//! Parquet reads and writes) passes through it. Faults are injected per
//! operation kind: errors, errors after the operation took effect (a lost
//! response), slow responses, and timeouts.

use std::collections::HashMap;
use std::fmt;
use std::ops::Range;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use apitrail_ingest::{Event, EventBatchBuilder};
use apitrail_query::{Inventory, QueryEngine, QueryLimits, ViewOptions};
use apitrail_storage::{StorageError, Store, StoreConfig};
use arrow::array::{Array, Int64Array};
use arrow::record_batch::RecordBatch;
use async_trait::async_trait;
use bytes::Bytes;
use deltalake::DeltaResult;
use deltalake::logstore::{
    LogStore, LogStoreFactory, ObjectStoreFactory, ObjectStoreRef, StorageConfig, default_logstore,
    logstore_factories, object_store_factories,
};
use futures::stream::BoxStream;
use futures::{StreamExt, TryStreamExt};
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::{
    CopyOptions, GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore,
    PutMultipartOptions, PutOptions, PutPayload, PutResult, RenameOptions,
};
use url::Url;

/// 2024-01-01T00:00:00Z in microseconds.
const JAN_1: i64 = 1_704_067_200_000_000;

/// What one kind of operation does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fault {
    /// Works normally.
    Healthy,
    /// Fails at once without taking effect.
    Fail,
    /// Takes effect, then reports a failure, like a response lost on the way back.
    FailAfter,
    /// Works after a delay.
    Slow(Duration),
    /// Fails after a delay without taking effect, like a client timeout.
    Timeout(Duration),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Op {
    Put,
    Get,
    List,
    Delete,
}

/// The faults of one test's object store, changed while the test runs.
#[derive(Debug, Default)]
struct Faults {
    by_op: Mutex<HashMap<Op, Fault>>,
    calls: Mutex<HashMap<Op, u64>>,
}

impl Faults {
    fn set(&self, op: Op, fault: Fault) {
        self.by_op.lock().unwrap().insert(op, fault);
    }

    fn set_all(&self, fault: Fault) {
        for op in [Op::Put, Op::Get, Op::List, Op::Delete] {
            self.set(op, fault);
        }
    }

    /// Returns how many calls of `op` the store has received.
    fn calls(&self, op: Op) -> u64 {
        self.calls.lock().unwrap().get(&op).copied().unwrap_or(0)
    }

    fn get(&self, op: Op) -> Fault {
        *self.calls.lock().unwrap().entry(op).or_default() += 1;
        self.by_op
            .lock()
            .unwrap()
            .get(&op)
            .copied()
            .unwrap_or(Fault::Healthy)
    }
}

fn injected(op: Op) -> object_store::Error {
    object_store::Error::Generic {
        store: "faulty",
        source: format!("injected fault on {op:?}").into(),
    }
}

/// Object store wrapper that applies [`Faults`] before or after each call.
#[derive(Debug)]
struct FaultyStore {
    inner: Arc<dyn ObjectStore>,
    faults: Arc<Faults>,
}

impl fmt::Display for FaultyStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "FaultyStore({})", self.inner)
    }
}

impl FaultyStore {
    /// Applies the fault before the call; `Ok(true)` means fail after it.
    async fn before(&self, op: Op) -> object_store::Result<bool> {
        match self.faults.get(op) {
            Fault::Healthy => Ok(false),
            Fault::Fail => Err(injected(op)),
            Fault::FailAfter => Ok(true),
            Fault::Slow(delay) => {
                tokio::time::sleep(delay).await;
                Ok(false)
            }
            Fault::Timeout(delay) => {
                tokio::time::sleep(delay).await;
                Err(injected(op))
            }
        }
    }

    async fn call<T>(
        &self,
        op: Op,
        operation: impl Future<Output = object_store::Result<T>>,
    ) -> object_store::Result<T> {
        let fail_after = self.before(op).await?;
        let result = operation.await?;
        if fail_after {
            return Err(injected(op));
        }
        Ok(result)
    }

    /// Applies the list fault to a listing, and returns it in key order, as
    /// S3 does; the Delta log reader relies on that order.
    fn list_stream(
        &self,
        inner: BoxStream<'static, object_store::Result<ObjectMeta>>,
    ) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
        let fault = self.faults.get(Op::List);
        let inner = futures::stream::once(async move {
            match inner.try_collect::<Vec<ObjectMeta>>().await {
                Ok(mut objects) => {
                    objects.sort_by(|a, b| a.location.cmp(&b.location));
                    futures::stream::iter(objects.into_iter().map(Ok)).boxed()
                }
                Err(e) => futures::stream::once(async { Err(e) }).boxed(),
            }
        })
        .flatten()
        .boxed();
        futures::stream::once(async move {
            match fault {
                Fault::Healthy => inner,
                Fault::Fail | Fault::FailAfter => {
                    futures::stream::once(async { Err(injected(Op::List)) }).boxed()
                }
                Fault::Slow(delay) => {
                    tokio::time::sleep(delay).await;
                    inner
                }
                Fault::Timeout(delay) => {
                    tokio::time::sleep(delay).await;
                    futures::stream::once(async { Err(injected(Op::List)) }).boxed()
                }
            }
        })
        .flatten()
        .boxed()
    }
}

#[async_trait]
impl ObjectStore for FaultyStore {
    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        opts: PutOptions,
    ) -> object_store::Result<PutResult> {
        self.call(Op::Put, self.inner.put_opts(location, payload, opts))
            .await
    }

    async fn put_multipart_opts(
        &self,
        location: &Path,
        opts: PutMultipartOptions,
    ) -> object_store::Result<Box<dyn MultipartUpload>> {
        self.call(Op::Put, self.inner.put_multipart_opts(location, opts))
            .await
    }

    async fn get_opts(
        &self,
        location: &Path,
        options: GetOptions,
    ) -> object_store::Result<GetResult> {
        self.call(Op::Get, self.inner.get_opts(location, options))
            .await
    }

    async fn get_ranges(
        &self,
        location: &Path,
        ranges: &[Range<u64>],
    ) -> object_store::Result<Vec<Bytes>> {
        self.call(Op::Get, self.inner.get_ranges(location, ranges))
            .await
    }

    fn delete_stream(
        &self,
        locations: BoxStream<'static, object_store::Result<Path>>,
    ) -> BoxStream<'static, object_store::Result<Path>> {
        match self.faults.get(Op::Delete) {
            Fault::Fail | Fault::FailAfter | Fault::Timeout(_) => {
                locations.map(|_| Err(injected(Op::Delete))).boxed()
            }
            Fault::Healthy | Fault::Slow(_) => self.inner.delete_stream(locations),
        }
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
        self.list_stream(self.inner.list(prefix))
    }

    fn list_with_offset(
        &self,
        prefix: Option<&Path>,
        offset: &Path,
    ) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
        self.list_stream(self.inner.list_with_offset(prefix, offset))
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> object_store::Result<ListResult> {
        self.call(Op::List, self.inner.list_with_delimiter(prefix))
            .await
    }

    async fn copy_opts(
        &self,
        from: &Path,
        to: &Path,
        options: CopyOptions,
    ) -> object_store::Result<()> {
        self.call(Op::Put, self.inner.copy_opts(from, to, options))
            .await
    }

    async fn rename_opts(
        &self,
        from: &Path,
        to: &Path,
        options: RenameOptions,
    ) -> object_store::Result<()> {
        self.call(Op::Put, self.inner.rename_opts(from, to, options))
            .await
    }
}

/// The test stores by name: the directory that contains the objects, and the faults.
type Registry = Mutex<HashMap<String, (PathBuf, Arc<Faults>)>>;

/// Returns the test stores by URL host: `faulty://NAME/...` is the
/// directory and faults registered under NAME.
fn registry() -> &'static Registry {
    static REGISTRY: OnceLock<Registry> = OnceLock::new();
    REGISTRY.get_or_init(|| {
        let scheme = Url::parse("faulty://").unwrap();
        object_store_factories().insert(scheme.clone(), Arc::new(FaultyFactory));
        logstore_factories().insert(scheme, Arc::new(FaultyFactory));
        Mutex::new(HashMap::new())
    })
}

struct FaultyFactory;

impl ObjectStoreFactory for FaultyFactory {
    fn parse_url_opts(
        &self,
        url: &Url,
        _config: &StorageConfig,
    ) -> DeltaResult<(ObjectStoreRef, Path)> {
        let host = url.host_str().unwrap_or_default().to_string();
        let (root, faults) = registry()
            .lock()
            .unwrap()
            .get(&host)
            .cloned()
            .unwrap_or_else(|| panic!("no faulty store is registered as {host}"));
        let local = LocalFileSystem::new_with_prefix(root)?;
        let store = FaultyStore {
            inner: Arc::new(local),
            faults,
        };
        Ok((Arc::new(store), Path::from(url.path())))
    }
}

impl LogStoreFactory for FaultyFactory {
    fn with_options(
        &self,
        prefixed_store: ObjectStoreRef,
        root_store: ObjectStoreRef,
        location: &Url,
        options: &StorageConfig,
    ) -> DeltaResult<Arc<dyn LogStore>> {
        Ok(default_logstore(
            prefixed_store,
            root_store,
            location,
            options,
        ))
    }
}

/// A data directory whose tables live on a faulty store.
struct Setup {
    _dir: tempfile::TempDir,
    config: StoreConfig,
    faults: Arc<Faults>,
}

fn setup(name: &str) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let bucket = dir.path().join("bucket");
    std::fs::create_dir_all(&bucket).unwrap();
    let faults = Arc::new(Faults::default());
    registry()
        .lock()
        .unwrap()
        .insert(name.to_string(), (bucket, Arc::clone(&faults)));
    let mut config = StoreConfig::for_data_dir(dir.path().join("data")).unwrap();
    config.table_url = Url::parse(&format!("faulty://{name}/events/")).unwrap();
    config.views_url = Url::parse(&format!("faulty://{name}/views/")).unwrap();
    Setup {
        _dir: dir,
        config,
        faults,
    }
}

impl Setup {
    fn staged_files(&self) -> Vec<String> {
        let dir = self.config.data_dir.join("staging");
        let mut names: Vec<String> = std::fs::read_dir(&dir)
            .map(|entries| {
                entries
                    .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        names.sort();
        names
    }
}

fn batch(tag: &str, first: i64, count: i64) -> RecordBatch {
    let mut builder = EventBatchBuilder::new();
    for i in first..first + count {
        let mut event = Event::new("clf", JAN_1 + i * 1_000_000);
        event.path = Some(format!("/{tag}/{i}"));
        event.method = Some("GET".to_string());
        event.status = Some(200);
        event.consumer = Some("partner-a".to_string());
        event.consumer_kind = Some("gateway".to_string());
        builder.push(&event);
    }
    builder.finish()
}

async fn engine_for(store: Arc<Store>) -> QueryEngine {
    QueryEngine::new(
        store,
        &QueryLimits::default(),
        &Arc::new(Inventory::default()),
        &ViewOptions::default(),
    )
    .await
    .unwrap()
}

async fn scalar(engine: &QueryEngine, sql: &str) -> i64 {
    let batches: Vec<RecordBatch> = engine
        .execute(sql)
        .await
        .unwrap_or_else(|e| panic!("{sql} failed: {e}"))
        .try_collect()
        .await
        .unwrap_or_else(|e| panic!("{sql} failed: {e}"));
    let column = batches[0]
        .column(0)
        .as_any()
        .downcast_ref::<Int64Array>()
        .unwrap_or_else(|| panic!("{sql} must return one BIGINT"));
    if column.is_null(0) {
        0
    } else {
        column.value(0)
    }
}

/// Events and distinct paths, which must be equal when no row is doubled.
async fn counts(engine: &QueryEngine) -> (i64, i64) {
    (
        scalar(engine, "SELECT count(*) FROM events").await,
        scalar(engine, "SELECT count(DISTINCT path) FROM events").await,
    )
}

/// Calls in the endpoint inventory, which counts each event once.
async fn view_calls(engine: &QueryEngine) -> i64 {
    scalar(engine, "SELECT CAST(sum(calls) AS BIGINT) FROM endpoints").await
}

/// Flushes until the commit back-off has passed and nothing is staged.
async fn flush_until_committed(store: &Arc<Store>) {
    for _ in 0..100 {
        let outcome = store.flush().await.unwrap();
        if outcome.commit_error.is_none() && store.snapshot().staged.is_empty() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the staged files were not committed within 10 s of the store's return");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outage_stages_then_commits_once() {
    let setup = setup("outage");
    let store = Store::open(setup.config.clone()).await.unwrap();
    let engine = engine_for(Arc::clone(&store)).await;

    store.append(batch("a", 0, 10)).await.unwrap();
    let first = store.flush().await.unwrap();
    assert_eq!((first.rows, first.staged_rows), (10, 0), "the store is up");

    setup.faults.set(Op::Put, Fault::Fail);
    for round in 0..3 {
        store.append(batch("b", round * 20, 20)).await.unwrap();
        let outcome = store.flush().await.unwrap();
        assert_eq!(
            (outcome.rows, outcome.staged_rows),
            (0, 20),
            "round {round}: a flush the table cannot take is staged"
        );
        assert!(outcome.commit_error.is_some(), "round {round}: {outcome:?}");
        assert_eq!(
            store.buffered_rows(),
            0,
            "round {round}: staged rows leave memory"
        );
    }
    assert_eq!(
        setup.staged_files().len(),
        6,
        "an events file and a views file per staged flush: {:?}",
        setup.staged_files()
    );
    assert_eq!(
        counts(&engine).await,
        (70, 70),
        "staged events are queryable, each once"
    );
    assert_eq!(view_calls(&engine).await, 70, "views count staged events");

    setup.faults.set(Op::Put, Fault::Healthy);
    flush_until_committed(&store).await;
    assert_eq!(
        counts(&engine).await,
        (70, 70),
        "after the commit, still once"
    );
    assert_eq!(view_calls(&engine).await, 70);

    // A new engine reads only committed data and the (empty) buffer.
    let fresh = Store::open_read_only(setup.config.clone()).await.unwrap();
    let fresh_engine = engine_for(fresh).await;
    assert_eq!(counts(&fresh_engine).await, (70, 70));
    assert_eq!(view_calls(&fresh_engine).await, 70);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fault_kinds_lose_nothing() {
    let cases = [
        ("put-fail", Op::Put, Fault::Fail),
        ("put-lost-answer", Op::Put, Fault::FailAfter),
        (
            "put-timeout",
            Op::Put,
            Fault::Timeout(Duration::from_millis(300)),
        ),
        ("get-fail", Op::Get, Fault::Fail),
        ("list-fail", Op::List, Fault::Fail),
        (
            "list-timeout",
            Op::List,
            Fault::Timeout(Duration::from_millis(300)),
        ),
        ("delete-fail", Op::Delete, Fault::Fail),
        ("all-slow", Op::Put, Fault::Slow(Duration::from_millis(200))),
    ];
    for (name, op, fault) in cases {
        let setup = setup(name);
        let store = Store::open(setup.config.clone()).await.unwrap();
        store.append(batch("a", 0, 5)).await.unwrap();
        store.flush().await.unwrap();

        setup.faults.set(op, fault);
        if name == "all-slow" {
            setup.faults.set_all(fault);
        }
        for round in 0..2 {
            store.append(batch("b", round * 7, 7)).await.unwrap();
            let outcome = store
                .flush()
                .await
                .unwrap_or_else(|e| panic!("{name}: a flush must stage, not fail: {e}"));
            assert_eq!(
                outcome.rows + outcome.staged_rows,
                7,
                "{name}, round {round}: every row is committed or staged: {outcome:?}"
            );
        }
        setup.faults.set_all(Fault::Healthy);
        flush_until_committed(&store).await;

        let engine = engine_for(Arc::clone(&store)).await;
        assert_eq!(
            counts(&engine).await,
            (19, 19),
            "{name}: nothing lost or doubled"
        );
        assert_eq!(
            view_calls(&engine).await,
            19,
            "{name}: views count each event once"
        );
        drop(engine);
        store.shutdown().await.unwrap();
        drop(store);

        let reopened = Store::open(setup.config.clone()).await.unwrap();
        let engine = engine_for(Arc::clone(&reopened)).await;
        assert_eq!(
            counts(&engine).await,
            (19, 19),
            "{name}: the same after a restart"
        );
        assert_eq!(
            view_calls(&engine).await,
            19,
            "{name}: views after a restart"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn staged_files_survive_crash() {
    let setup = setup("crash");
    let store = Store::open(setup.config.clone()).await.unwrap();
    store.append(batch("a", 0, 4)).await.unwrap();
    store.flush().await.unwrap();

    setup.faults.set(Op::Put, Fault::Fail);
    store.append(batch("b", 0, 6)).await.unwrap();
    assert_eq!(store.flush().await.unwrap().staged_rows, 6);
    store.append(batch("c", 0, 3)).await.unwrap();
    // A crash: no shutdown, the last append only in the WAL.
    drop(store);

    let reopened = Store::open(setup.config.clone()).await.unwrap();
    let engine = engine_for(Arc::clone(&reopened)).await;
    assert_eq!(
        counts(&engine).await,
        (13, 13),
        "committed, staged and WAL rows are all back, each once"
    );
    assert_eq!(view_calls(&engine).await, 13);

    setup.faults.set(Op::Put, Fault::Healthy);
    flush_until_committed(&reopened).await;
    assert_eq!(counts(&engine).await, (13, 13));
    assert_eq!(view_calls(&engine).await, 13);
    drop(engine);
    drop(reopened);

    let again = Store::open(setup.config.clone()).await.unwrap();
    let engine = engine_for(Arc::clone(&again)).await;
    assert_eq!(counts(&engine).await, (13, 13), "nothing replays twice");
    assert_eq!(view_calls(&engine).await, 13);
    assert!(
        setup.staged_files().is_empty(),
        "committed staged files are deleted at start: {:?}",
        setup.staged_files()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_staging_rejects_events() {
    let setup = setup("budget");
    let config = StoreConfig {
        staging_max_bytes: 1,
        ..setup.config.clone()
    };
    let store = Store::open(config).await.unwrap();
    let engine = engine_for(Arc::clone(&store)).await;

    setup.faults.set_all(Fault::Fail);
    store.append(batch("a", 0, 8)).await.unwrap();
    assert_eq!(store.flush().await.unwrap().staged_rows, 8);

    let refused = store.append(batch("b", 0, 1)).await;
    match refused {
        Err(StorageError::StagingFull { used, budget }) => {
            assert!(used >= budget, "{used} of {budget}");
            let message = StorageError::StagingFull { used, budget }.to_string();
            assert!(
                message.contains("staging_max_bytes"),
                "the message names the setting: {message}"
            );
        }
        other => panic!("a full staging area must reject events, got {other:?}"),
    }

    setup.faults.set_all(Fault::Healthy);
    flush_until_committed(&store).await;
    store
        .append(batch("c", 0, 2))
        .await
        .expect("once the staged files are committed, events are accepted again");
    assert_eq!(counts(&engine).await, (10, 10));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commits_back_off_on_failure() {
    let setup = setup("backoff");
    let store = Store::open(setup.config.clone()).await.unwrap();
    setup.faults.set(Op::Put, Fault::Fail);

    store.append(batch("a", 0, 3)).await.unwrap();
    let first = store.flush().await.unwrap();
    assert_eq!(first.staged_rows, 3, "the failed commit is staged");
    let puts = setup.faults.calls(Op::Put);
    assert!(puts > 0, "the first flush tries the store");

    store.append(batch("b", 0, 3)).await.unwrap();
    let second = store.flush().await.unwrap();
    assert_eq!(second.staged_rows, 3);
    assert_eq!(
        setup.faults.calls(Op::Put),
        puts,
        "within the back-off a flush stages without trying the store"
    );

    tokio::time::sleep(Duration::from_millis(600)).await;
    store.flush().await.unwrap();
    let retried = setup.faults.calls(Op::Put);
    assert!(
        retried > puts,
        "after the first back-off (0.5 s) the commit is tried again"
    );

    // The second failure doubles the back-off to 1 s.
    tokio::time::sleep(Duration::from_millis(600)).await;
    store.append(batch("c", 0, 3)).await.unwrap();
    assert_eq!(store.flush().await.unwrap().staged_rows, 3);
    assert_eq!(
        setup.faults.calls(Op::Put),
        retried,
        "the back-off doubles after each failed attempt"
    );

    setup.faults.set(Op::Put, Fault::Healthy);
    flush_until_committed(&store).await;
    let engine = engine_for(Arc::clone(&store)).await;
    assert_eq!(counts(&engine).await, (9, 9));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hung_store_stages_after_timeout() {
    let setup = setup("hung");
    let config = StoreConfig {
        commit_timeout: Duration::from_millis(500),
        ..setup.config.clone()
    };
    let store = Store::open(config).await.unwrap();
    // A store that responds after a minute, like one whose client retries.
    setup
        .faults
        .set(Op::Put, Fault::Slow(Duration::from_secs(60)));

    store.append(batch("a", 0, 4)).await.unwrap();
    let started = std::time::Instant::now();
    let outcome = store.flush().await.unwrap();
    let waited = started.elapsed();
    assert_eq!(outcome.staged_rows, 4, "the flush is staged: {outcome:?}");
    assert!(
        outcome
            .commit_error
            .as_deref()
            .is_some_and(|e| e.contains("commit timeout")),
        "the reason is the timeout: {outcome:?}"
    );
    assert!(
        waited < Duration::from_secs(20),
        "staging waited {waited:?}, not the store's minute"
    );

    setup.faults.set(Op::Put, Fault::Healthy);
    flush_until_committed(&store).await;
    let engine = engine_for(Arc::clone(&store)).await;
    assert_eq!(counts(&engine).await, (4, 4));
    assert_eq!(view_calls(&engine).await, 4);
}
