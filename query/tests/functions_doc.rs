//! Every ```sql block of docs/functions.md, planned and run on a real engine.
//!
//! The session is a full [`QueryEngine`] with the `events` table, the views
//! (`endpoints`, `consumers`, `consumer_activity`, `consumer_baselines`,
//! `view_partials`) and every function registered, as the server builds it.
//! Its store contains two weeks of sample calls of two partners, so each example
//! runs over data, not only through the planner. The test checks that every
//! example succeeds, that the scoring example ranks a planted burst first,
//! and that each apitrail function appears in at least one example.

use std::collections::BTreeSet;
use std::sync::Arc;

use apitrail_ingest::{Event, EventBatchBuilder};
use apitrail_query::{Inventory, QueryEngine, QueryError, QueryLimits, ViewOptions};
use apitrail_storage::{Store, StoreConfig};
use arrow::array::{Array, AsArray};
use arrow::datatypes::{Float64Type, TimestampMicrosecondType};
use arrow::record_batch::RecordBatch;
use datafusion::execution::FunctionRegistry;
use datafusion::prelude::SessionContext;
use futures::TryStreamExt;

const DOC: &str = include_str!("../../docs/functions.md");

const HOUR: i64 = 3_600_000_000;
/// 2024-05-20T00:00:00Z, a Monday, two weeks before the day the examples query.
const START: i64 = 1_716_163_200_000_000;
/// 2024-06-03T10:00:00Z, the hour in which `partner-acme` makes 40 calls.
const BURST_HOUR: i64 = START + (14 * 24 + 10) * HOUR;

/// Returns the ```sql blocks of `markdown`, each with the line it starts on.
fn sql_blocks(markdown: &str) -> Vec<(usize, String)> {
    let mut blocks = Vec::new();
    let mut current: Option<(usize, String)> = None;
    for (index, line) in markdown.lines().enumerate() {
        match current.as_mut() {
            None if line.trim() == "```sql" => current = Some((index + 1, String::new())),
            None => {}
            Some(_) if line.trim() == "```" => blocks.extend(current.take()),
            Some((_, sql)) => {
                sql.push_str(line);
                sql.push('\n');
            }
        }
    }
    assert!(current.is_none(), "a ```sql block is not closed");
    blocks
}

/// Two weeks and a day of hourly calls. `partner-acme` reads orders at random
/// from a few networks, with a burst of calls at [`BURST_HOUR`].
/// `partner-globex` walks order ids one after another in office hours.
fn sample_calls() -> RecordBatch {
    let mut builder = EventBatchBuilder::new();
    for hour in 0..15 * 24 {
        let hour_start = START + hour * HOUR;
        let acme_calls = if hour_start == BURST_HOUR {
            40
        } else {
            2 + hour % 4 + (hour / 24) % 3
        };
        for k in 0..acme_calls {
            let mut event = Event::new("clf", hour_start + k * 60_000_000);
            event.consumer = Some("partner-acme".to_string());
            event.consumer_kind = Some("api_key".to_string());
            event.host = Some("api.example.com".to_string());
            event.method = Some("GET".to_string());
            let id = (hour * 7919 + k * 104_729) % 50_000;
            event.path = Some(format!("/v1/orders/{id}"));
            event.endpoint = Some("/v1/orders/{id}".to_string());
            event.status = Some(if k == 3 { 404 } else { 200 });
            event.duration_ms = Some(20.0 + (k * 13 % 7) as f64);
            event.response_bytes = Some(800 + k * 40);
            event.client_ip = Some(match k {
                0 => "203.0.113.10".to_string(),
                1 => "2001:db8:abcd:12::1".to_string(),
                2 => "::ffff:198.51.100.7".to_string(),
                _ => "10.1.2.3".to_string(),
            });
            event.user_agent = Some(format!("acme-sync/{}", 1 + k % 2));
            event.auth_scheme = Some("api_key".to_string());
            builder.push(&event);
        }
        if hour % 24 >= 9 && hour % 24 < 17 {
            for k in 0..5 {
                let mut event = Event::new("clf", hour_start + k * 30_000_000);
                event.consumer = Some("partner-globex".to_string());
                event.consumer_kind = Some("api_key".to_string());
                event.host = Some("api.example.com".to_string());
                event.method = Some("GET".to_string());
                event.path = Some(format!("/v1/orders/{}", 10_000 + hour * 5 + k));
                event.endpoint = Some("/v1/orders/{id}".to_string());
                event.status = Some(200);
                event.duration_ms = Some(35.0);
                event.response_bytes = Some(1200);
                event.client_ip = Some("192.0.2.44".to_string());
                event.user_agent = Some("python-requests/2.32".to_string());
                event.auth_scheme = Some("bearer".to_string());
                builder.push(&event);
            }
        }
    }
    builder.finish()
}

/// Returns true when `sql` calls `name(`, not merely a longer name that ends with it.
fn calls_function(sql: &str, name: &str) -> bool {
    let call = format!("{name}(");
    sql.match_indices(&call).any(|(start, _)| {
        let before = sql[..start].chars().next_back();
        !before.is_some_and(|c| c.is_alphanumeric() || c == '_')
    })
}

/// Names of the functions that `engine` has beyond a plain DataFusion session.
fn apitrail_function_names(engine: &QueryEngine) -> BTreeSet<String> {
    let plain = SessionContext::new();
    let ctx = engine.context();
    let mut names = BTreeSet::new();
    names.extend(ctx.udfs().difference(&plain.udfs()).cloned());
    names.extend(ctx.udafs().difference(&plain.udafs()).cloned());
    names.extend(ctx.udwfs().difference(&plain.udwfs()).cloned());
    names
}

/// Builds an engine over a new store with the sample calls; the directory must outlive it.
async fn sample_engine() -> (tempfile::TempDir, QueryEngine) {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let config = StoreConfig::for_data_dir(dir.path().to_path_buf()).expect("a store config");
    let store = Store::open(config).await.expect("a new store opens");
    store
        .append(sample_calls())
        .await
        .expect("the sample calls are appended");
    let engine = QueryEngine::new(
        store,
        &QueryLimits::default(),
        &Arc::new(Inventory::default()),
        &ViewOptions::default(),
    )
    .await
    .expect("the engine starts");
    (dir, engine)
}

/// Runs `sql` to the end and returns the error it fails with.
async fn query_error(engine: &QueryEngine, sql: &str) -> QueryError {
    let result = match engine.execute(sql).await {
        Ok(stream) => stream
            .try_collect::<Vec<RecordBatch>>()
            .await
            .map(|_| ())
            .map_err(QueryError::from_datafusion),
        Err(error) => Err(error),
    };
    match result {
        Ok(()) => panic!("{sql} should fail"),
        Err(error) => error,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn query_mistakes_are_client_errors() {
    let (_dir, engine) = sample_engine().await;
    for (sql, bound) in [
        (
            "SELECT ip_network(client_ip, 33) FROM events WHERE client_ip = '203.0.113.10'",
            "beyond 32",
        ),
        ("SELECT ip_network(client_ip, -1) FROM events", "negative"),
        (
            "SELECT ewma(response_bytes, 2) OVER (ORDER BY time) FROM events",
            "at most 1",
        ),
        (
            "SELECT ewma(response_bytes, status) OVER (ORDER BY time) FROM events",
            "constant",
        ),
        (
            "SELECT sketch_quantile(quantile_sketch(duration_ms), 1.5) FROM events",
            "outside 0 to 1",
        ),
    ] {
        let error = query_error(&engine, sql).await;
        assert!(
            error.is_client_error(),
            "{sql} is the caller's mistake, got {error}"
        );
        assert!(
            error.to_string().contains(bound),
            "{sql} names the bound: {error}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn doc_examples_run() {
    let (_dir, engine) = sample_engine().await;

    let blocks = sql_blocks(DOC);
    assert!(
        blocks.len() >= 15,
        "docs/functions.md has {} sql blocks; expected one per function",
        blocks.len()
    );

    let mut failures = Vec::new();
    for (line, sql) in &blocks {
        let result = match engine.execute(sql).await {
            Ok(stream) => stream
                .try_collect::<Vec<RecordBatch>>()
                .await
                .map(|_| ())
                .map_err(|error| error.to_string()),
            Err(error) => Err(error.to_string()),
        };
        if let Err(error) = result {
            failures.push(format!("docs/functions.md line {line}: {error}\n{sql}"));
        }
    }
    assert!(
        failures.is_empty(),
        "{} examples failed:\n\n{}",
        failures.len(),
        failures.join("\n")
    );

    // The scoring example lists the most unusual hour first: the burst.
    let Some((line, scoring)) = blocks
        .iter()
        .find(|(_, sql)| sql.contains("AS calls_score"))
    else {
        panic!("docs/functions.md has no example that computes calls_score");
    };
    let batches: Vec<RecordBatch> = engine
        .execute(scoring)
        .await
        .expect("the scoring example plans")
        .try_collect()
        .await
        .expect("the scoring example runs");
    let first = batches
        .iter()
        .find(|batch| batch.num_rows() > 0)
        .unwrap_or_else(|| panic!("the scoring example at line {line} returns no rows"));
    let hour = first
        .column_by_name("hour")
        .expect("an hour column")
        .as_primitive::<TimestampMicrosecondType>()
        .value(0);
    assert_eq!(hour, BURST_HOUR, "the burst hour comes first");
    let score = first
        .column_by_name("calls_score")
        .expect("a calls_score column")
        .as_primitive::<Float64Type>();
    assert!(
        score.is_valid(0) && score.value(0) > 3.5,
        "the burst scores above 3.5, got {:?}",
        score.is_valid(0).then(|| score.value(0))
    );

    let examples = blocks
        .iter()
        .map(|(_, sql)| sql.to_lowercase())
        .collect::<Vec<_>>()
        .join("\n");
    let names = apitrail_function_names(&engine);
    for expected in [
        "robust_zscore",
        "entropy",
        "ewma",
        "approx_distinct_merge",
        "path_template",
    ] {
        assert!(
            names.contains(expected),
            "{expected} is among the functions found: {names:?}"
        );
    }
    let missing: Vec<String> = names
        .into_iter()
        .filter(|name| !calls_function(&examples, name))
        .collect();
    assert!(
        missing.is_empty(),
        "functions without an example in docs/functions.md: {missing:?}"
    );
}

#[test]
fn function_calls_found() {
    assert!(calls_function("select mad(x)", "mad"));
    assert!(calls_function("select\nmad(x)", "mad"));
    assert!(!calls_function("select nomad(x)", "mad"));
    assert!(!calls_function(
        "select approx_distinct_sketch(x)",
        "distinct_sketch"
    ));
    assert!(!calls_function("select mad", "mad"));
}

#[test]
fn sql_blocks_found() {
    let markdown =
        "text\n```sql\nSELECT 1\n```\n```toml\na = 1\n```\n```sql\nSELECT 2\nFROM t\n```\n";
    assert_eq!(
        sql_blocks(markdown),
        vec![
            (2, "SELECT 1\n".to_string()),
            (8, "SELECT 2\nFROM t\n".to_string())
        ]
    );
}
