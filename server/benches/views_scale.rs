//! View query latency against the number of events under the views.
//!
//! The bench writes generated B2B API traffic straight into a store in a
//! temporary directory, through the same import path as
//! `apitrail import --data-dir` but without text parsing, and times the view
//! queries each time the store reaches the next event count of
//! `APITRAIL_BENCH_SCALE_EVENTS` (default `1000000,10000000,100000000`).
//! Every event count covers the same five weeks, consumers and endpoints, so
//! a larger count means denser traffic, as when a busier day of the same
//! partners is stored.
//!
//! At each step it prints the view rows and the views files. It times the
//! first `SELECT * FROM endpoints` of a new query engine, which reads and
//! merges the `all` grain. Then it prints the median time of
//! `SELECT * FROM endpoints`, `SELECT * FROM consumers`, one consumer's
//! baseline and one consumer's activity. It measures first as the imports
//! left the views table, then after the views compaction.
//!
//! Run it with `cargo bench -p apitrail-server --bench views_scale`; set
//! `APITRAIL_BENCH_EXPLAIN=1` to print each query's `EXPLAIN ANALYZE` once.
//! docs/benchmarks.md records the command, the machine and results. Nothing
//! here asserts on timings.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use apitrail_ingest::{Event, EventBatchBuilder};
use apitrail_storage::{Store, StoreConfig};
use common::{SplitMix64, first_text, group, query_count};

mod common;

/// The allocator of the `apitrail` binary.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

const DEFAULT_STEPS: [u64; 3] = [1_000_000, 10_000_000, 100_000_000];
const SEED: u64 = 0x5CA1_E0F0_2026_1204;
/// Monday 2026-01-05 00:00 UTC, in microseconds.
const START_MICROS: i64 = 1_767_571_200_000_000;
const SPAN_MICROS: i64 = 35 * 24 * 3_600_000_000;
const CONSUMERS: usize = 300;
const HOSTS: [&str; 3] = [
    "api.example.com",
    "partners.example.com",
    "files.example.com",
];
const RESOURCES: [&str; 40] = [
    "orders",
    "invoices",
    "customers",
    "products",
    "prices",
    "stock",
    "shipments",
    "returns",
    "payments",
    "refunds",
    "carts",
    "quotes",
    "contracts",
    "accounts",
    "users",
    "teams",
    "reports",
    "exports",
    "imports",
    "webhooks",
    "events",
    "tickets",
    "messages",
    "documents",
    "files",
    "images",
    "catalogs",
    "categories",
    "brands",
    "stores",
    "regions",
    "warehouses",
    "suppliers",
    "partners",
    "discounts",
    "coupons",
    "subscriptions",
    "plans",
    "usage",
    "audits",
];
const METHODS: [&str; 4] = ["GET", "GET", "POST", "DELETE"];
const AGENTS: [&str; 4] = [
    "partner-sync/2.4 (+https://partner.example)",
    "python-requests/2.32.3",
    "okhttp/4.12.0",
    "Go-http-client/2.0",
];
/// Events per generated batch and per import.
const BATCH_EVENTS: usize = 50_000;
const IMPORT_EVENTS: u64 = 5_000_000;
const QUERY_RUNS: usize = 9;

fn main() -> anyhow::Result<()> {
    let steps = steps_from_env()?;
    let work = tempfile::Builder::new()
        .prefix("apitrail-views-scale-")
        .tempdir()
        .context("creating the temporary directory")?;
    println!("# apitrail view latency against event count");
    println!();
    println!(
        "{CONSUMERS} consumers calling 5 to 24 endpoints each, over {} resources on {} hosts, \
         for 5 weeks; steps {steps:?}",
        RESOURCES.len(),
        HOSTS.len()
    );
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(run(work.path(), &steps))
}

fn steps_from_env() -> anyhow::Result<Vec<u64>> {
    let Ok(text) = std::env::var("APITRAIL_BENCH_SCALE_EVENTS") else {
        return Ok(DEFAULT_STEPS.to_vec());
    };
    let steps = text
        .split(',')
        .map(|step| {
            step.trim()
                .replace('_', "")
                .parse::<u64>()
                .with_context(|| format!("{step:?} in APITRAIL_BENCH_SCALE_EVENTS"))
        })
        .collect::<anyhow::Result<Vec<u64>>>()?;
    ensure!(
        steps.windows(2).all(|w| w[0] < w[1]) && steps.first().is_some_and(|&s| s > 0),
        "APITRAIL_BENCH_SCALE_EVENTS must list increasing event counts"
    );
    Ok(steps)
}

async fn run(data_dir: &Path, steps: &[u64]) -> anyhow::Result<()> {
    let mut config = StoreConfig::for_data_dir(data_dir.to_path_buf())?;
    // Compaction is run by hand between the two measurements of a step.
    config.views_compact_files = usize::MAX;
    let mut world = World::new();
    let mut written = 0u64;
    let mut import = 0u64;
    let mut rows = Vec::new();
    for &target in steps {
        let store = Store::open(config.clone()).await?;
        let started = Instant::now();
        let before = written;
        while written < target {
            let events = (target - written).min(IMPORT_EVENTS);
            let import_id = format!("bench-{import}");
            let mut writer = store
                .begin_import(&import_id)
                .await?
                .context("a fresh import id is not committed")?;
            let mut left = events;
            while left > 0 {
                let batch_events = left.min(BATCH_EVENTS as u64) as usize;
                writer.write(world.batch(batch_events)).await?;
                left -= batch_events as u64;
            }
            store.commit_import(&import_id, writer).await?;
            written += events;
            import += 1;
        }
        store.shutdown().await?;
        drop(store);
        let elapsed = started.elapsed();
        println!(
            "\n## {} events ({} generated and imported in {:.1} s, {:.0} events/s)",
            group(written),
            group(written - before),
            elapsed.as_secs_f64(),
            (written - before) as f64 / elapsed.as_secs_f64()
        );
        rows.extend(measure(&config, written, "as imported").await?);

        let compact_started = Instant::now();
        let compacting = Store::open(StoreConfig {
            views_compact_files: 2,
            ..config.clone()
        })
        .await?;
        compacting.compact_views().await?;
        compacting.shutdown().await?;
        drop(compacting);
        println!(
            "  views compaction: {:.1} s",
            compact_started.elapsed().as_secs_f64()
        );
        rows.extend(measure(&config, written, "compacted").await?);
    }

    println!("\n## Results\n");
    println!("| events | views table | view rows | files | query | median ms |");
    println!("|--:|---|--:|--:|---|--:|");
    for row in rows {
        println!("{row}");
    }
    Ok(())
}

/// Times the view queries on a read-only store over the data directory; returns table rows.
async fn measure(config: &StoreConfig, events: u64, state: &str) -> anyhow::Result<Vec<String>> {
    let store = Store::open_read_only(config.clone()).await?;
    let inventory = Arc::new(apitrail_query::Inventory::default());
    let engine = apitrail_query::QueryEngine::new(
        store,
        &Default::default(),
        &inventory,
        &Default::default(),
    )
    .await?;
    // The first query of a new engine reads the `all` grain from the table
    // and merges it; later ones find it merged in memory.
    let started = Instant::now();
    let stream = engine.execute("SELECT * FROM endpoints").await?;
    let batches: Vec<_> = futures::TryStreamExt::try_collect(stream).await?;
    std::hint::black_box(batches);
    let first_endpoints = started.elapsed();
    let view_rows = query_count(&engine, "SELECT count(*) FROM view_partials").await?;
    let files = count_files(&config.views_url)?;
    let consumer = first_text(
        &engine,
        "SELECT consumer FROM consumers ORDER BY calls DESC LIMIT 1",
    )
    .await?;
    let queries = [
        ("endpoints", "SELECT * FROM endpoints".to_string()),
        ("consumers", "SELECT * FROM consumers".to_string()),
        (
            "one consumer's baseline",
            format!("SELECT * FROM consumer_baselines WHERE consumer = '{consumer}'"),
        ),
        (
            "one consumer's activity",
            format!("SELECT * FROM consumer_activity WHERE consumer = '{consumer}'"),
        ),
    ];
    let mut rows = Vec::new();
    println!("  {state}: {} view rows in {files} files", group(view_rows));
    println!(
        "    endpoints, first query of the engine: {:.1} ms",
        first_endpoints.as_secs_f64() * 1e3
    );
    rows.push(format!(
        "| {} | {state} | {} | {files} | endpoints, first query | {:.1} |",
        group(events),
        group(view_rows),
        first_endpoints.as_secs_f64() * 1e3
    ));
    let explain = std::env::var_os("APITRAIL_BENCH_EXPLAIN").is_some();
    for (name, sql) in queries {
        if explain {
            let stream = engine.execute(&format!("EXPLAIN ANALYZE {sql}")).await?;
            let batches: Vec<_> = futures::TryStreamExt::try_collect(stream).await?;
            println!("{}", arrow::util::pretty::pretty_format_batches(&batches)?);
        }
        let mut times = Vec::with_capacity(QUERY_RUNS);
        for run in 0..=QUERY_RUNS {
            let started = Instant::now();
            let stream = engine.execute(&sql).await?;
            let batches: Vec<_> = futures::TryStreamExt::try_collect(stream).await?;
            std::hint::black_box(batches);
            if run > 0 {
                times.push(started.elapsed());
            }
        }
        times.sort();
        let median: Duration = times[times.len() / 2];
        println!("    {name}: {:.1} ms", median.as_secs_f64() * 1e3);
        rows.push(format!(
            "| {} | {state} | {} | {files} | {name} | {:.1} |",
            group(events),
            group(view_rows),
            median.as_secs_f64() * 1e3
        ));
    }
    Ok(rows)
}

/// Counts the Parquet files of the views table's current version, from its directory.
fn count_files(views_url: &url::Url) -> anyhow::Result<usize> {
    let Ok(path) = views_url.to_file_path() else {
        bail!("the views table {views_url} is not on local disk");
    };
    let table = deltalake_files(&path)?;
    Ok(table)
}

/// Number of data files that the Delta log of `table` lists as live.
fn deltalake_files(table: &Path) -> anyhow::Result<usize> {
    let log = table.join("_delta_log");
    let mut live = std::collections::HashSet::new();
    let mut entries: Vec<_> = std::fs::read_dir(&log)
        .with_context(|| format!("reading {}", log.display()))?
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "json"))
        .collect();
    entries.sort();
    for path in entries {
        let text = std::fs::read_to_string(&path)?;
        for line in text.lines() {
            let action: serde_json::Value = serde_json::from_str(line)?;
            if let Some(add) = action.get("add") {
                live.insert(add["path"].as_str().unwrap_or_default().to_string());
            } else if let Some(remove) = action.get("remove") {
                live.remove(remove["path"].as_str().unwrap_or_default());
            }
        }
    }
    Ok(live.len())
}

/// The generated consumers and the position in time.
struct World {
    rng: SplitMix64,
    consumers: Vec<Consumer>,
    /// Cumulative weights of `consumers`, for picking one by its size.
    weights: Vec<f64>,
}

struct Consumer {
    key: String,
    network: [u8; 3],
    agent: &'static str,
    /// Endpoints used: (host, method, resource).
    endpoints: Vec<(usize, usize, usize)>,
    /// Hours of the UTC day in which it calls, as a daily rhythm.
    first_hour: i64,
}

impl World {
    fn new() -> Self {
        let mut rng = SplitMix64(SEED);
        let mut consumers = Vec::with_capacity(CONSUMERS);
        let mut weights = Vec::with_capacity(CONSUMERS);
        let mut total = 0.0;
        for index in 0..CONSUMERS {
            let endpoints = (0..5 + rng.below(20))
                .map(|_| {
                    (
                        rng.below(HOSTS.len() as u64) as usize,
                        rng.below(METHODS.len() as u64) as usize,
                        rng.below(RESOURCES.len() as u64) as usize,
                    )
                })
                .collect();
            consumers.push(Consumer {
                key: format!(
                    "h1:{:032x}",
                    u128::from(rng.next_u64()) << 64 | u128::from(rng.next_u64())
                ),
                network: [198, (index / 256) as u8 + 18, (index % 256) as u8],
                agent: AGENTS[rng.below(AGENTS.len() as u64) as usize],
                endpoints,
                first_hour: rng.below(12) as i64,
            });
            // Partner sizes follow a Zipf-like law: a few large, many small.
            total += 1.0 / (index as f64 + 1.0);
            weights.push(total);
        }
        World {
            rng,
            consumers,
            weights,
        }
    }

    fn batch(&mut self, events: usize) -> arrow::record_batch::RecordBatch {
        let mut builder = EventBatchBuilder::new();
        for _ in 0..events {
            builder.push(&self.event());
        }
        builder.finish()
    }

    fn event(&mut self) -> Event {
        let rng = &mut self.rng;
        let pick = rng.unit() * self.weights[CONSUMERS - 1];
        let index = self
            .weights
            .partition_point(|&w| w < pick)
            .min(CONSUMERS - 1);
        let consumer = &self.consumers[index];

        let day = rng.below(35) as i64;
        let hour = (consumer.first_hour + rng.below(12) as i64) % 24;
        let time = START_MICROS
            + day * 24 * 3_600_000_000
            + hour * 3_600_000_000
            + rng.below(3_600_000_000) as i64;
        let time = time.min(START_MICROS + SPAN_MICROS - 1);

        let (host, method, resource) =
            consumer.endpoints[rng.below(consumer.endpoints.len() as u64) as usize];
        let id = 1 + rng.below(50_000);
        let by_id = rng.below(3) > 0;
        let (path, endpoint) = if by_id {
            (
                format!("/v1/{}/{id}", RESOURCES[resource]),
                format!("/v1/{}/{{id}}", RESOURCES[resource]),
            )
        } else {
            let list = format!("/v1/{}", RESOURCES[resource]);
            (list.clone(), list)
        };

        let status = match rng.below(1000) {
            0..=949 => 200,
            950..=979 => 404,
            980..=989 => 403,
            990..=995 => 429,
            _ => 500,
        };

        let mut event = Event::new("aws_apigateway", time);
        event.sensor = Some("gateway".to_string());
        event.request_id = Some(format!("{:016x}", rng.next_u64()));
        event.method = Some(METHODS[method].to_string());
        event.host = Some(HOSTS[host].to_string());
        event.path = Some(path);
        event.endpoint = Some(endpoint);
        event.status = Some(status);
        event.duration_ms = Some(5.0 + rng.below(400) as f64 / 4.0);
        event.request_bytes = Some(rng.below(2_000) as i64);
        event.response_bytes = Some(200 + rng.below(40_000) as i64);
        let [a, b, c] = consumer.network;
        event.client_ip = Some(format!("{a}.{b}.{c}.{}", 1 + rng.below(8)));
        event.user_agent = Some(consumer.agent.to_string());
        event.consumer = Some(consumer.key.clone());
        event.consumer_kind = Some("api_key".to_string());
        event.auth_scheme = Some("api_key".to_string());
        event
    }
}
