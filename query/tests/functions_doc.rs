//! Every ```sql block of docs/functions.md, planned and run on a real engine.
//!
//! The session is a full [`QueryEngine`] with the `events` table, the views
//! (`endpoints`, `consumers`, `consumer_activity`, `consumer_baselines`,
//! `view_partials`) and every function registered, as the server builds it.
//! Its store holds two weeks of sample calls of two partners, so each example
//! runs over data, not only through the planner. The test checks that the
//! examples succeed, not what they return, and that each apitrail function
//! appears in at least one example.

use std::collections::BTreeSet;
use std::sync::Arc;

use apitrail_ingest::{Event, EventBatchBuilder};
use apitrail_query::{Inventory, QueryEngine, QueryLimits, ViewOptions};
use apitrail_storage::{Store, StoreConfig};
use arrow::record_batch::RecordBatch;
use datafusion::prelude::SessionContext;
use futures::TryStreamExt;

const DOC: &str = include_str!("../../docs/functions.md");

const HOUR: i64 = 3_600_000_000;
/// 2024-05-20T00:00:00Z, a Monday, two weeks before the day the examples query.
const START: i64 = 1_716_163_200_000_000;

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

/// Two weeks of hourly calls: `partner-acme` reads orders at random from a few
/// networks, `partner-globex` walks order ids one after another.
fn sample_calls() -> RecordBatch {
    let mut builder = EventBatchBuilder::new();
    for hour in 0..15 * 24 {
        let hour_start = START + hour * HOUR;
        for k in 0..2 + hour % 4 {
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

/// Whether `sql` calls `name(`, not merely a longer name that ends with it.
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn doc_examples_run() {
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

    let examples = blocks
        .iter()
        .map(|(_, sql)| sql.to_lowercase())
        .collect::<Vec<_>>()
        .join("\n");
    let missing: Vec<String> = apitrail_function_names(&engine)
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
    assert!(!calls_function("select approx_distinct_sketch(x)", "distinct_sketch"));
    assert!(!calls_function("select mad", "mad"));
}

#[test]
fn sql_blocks_found() {
    let markdown = "text\n```sql\nSELECT 1\n```\n```toml\na = 1\n```\n```sql\nSELECT 2\nFROM t\n```\n";
    assert_eq!(
        sql_blocks(markdown),
        vec![
            (2, "SELECT 1\n".to_string()),
            (8, "SELECT 2\nFROM t\n".to_string())
        ]
    );
}
