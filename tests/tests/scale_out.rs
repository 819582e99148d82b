//! Several apitrail servers on one store, each with its own data directory.
//! Two ingest at once while both flush and compact the views table. Every
//! server, including one started afterwards, must then return each event
//! exactly once and the same `endpoints` rows.

use std::thread;
use std::time::Duration;

use apitrail_tests::azure::AzureServer;
use apitrail_tests::s3::S3Server;
use apitrail_tests::store::{
    assert_endpoints_match_events, envoy_lines, store_answers, write_config,
};
use apitrail_tests::{Api, ServerOptions, TestServer, poll_until};

/// Batches each node ingests, and records per batch.
const BATCHES: usize = 12;
const BATCH_ROWS: usize = 25;

/// Sends the batches of `tag` to `api`, pausing so that flushes run in between.
fn ingest_tag(api: Api, tag: &'static str) {
    for batch in 0..BATCHES {
        let range = batch * BATCH_ROWS..(batch + 1) * BATCH_ROWS;
        let (status, report) = api.ingest(Some("envoy_json"), envoy_lines(tag, range));
        assert_eq!(status, 200, "{tag} batch {batch}: {report}");
        assert_eq!(
            report["accepted"], BATCH_ROWS,
            "{tag} batch {batch}: {report}"
        );
        thread::sleep(Duration::from_millis(150));
    }
}

/// Checks that `api` returns each event of both tags exactly once.
fn assert_each_event_once(api: &Api, node: &str) {
    let expected = (BATCHES * BATCH_ROWS) as i64;
    for tag in ["node-a", "node-b"] {
        assert_eq!(
            api.count(&format!("request_id LIKE '{tag}-%'")),
            expected,
            "{node}: events of {tag}"
        );
    }
    let rows = api.query("SELECT count(*) AS n, count(DISTINCT request_id) AS ids FROM events");
    assert_eq!(rows[0]["n"], 2 * expected, "{node}: all events");
    assert_eq!(
        rows[0]["ids"],
        2 * expected,
        "{node}: a request id appears twice"
    );
}

/// Waits until `api` returns every event of both tags, loaded from the store.
fn wait_for_all_events(api: &Api, node: &str) {
    let expected = 2 * (BATCHES * BATCH_ROWS) as i64;
    poll_until(
        Duration::from_secs(30),
        &format!("{node} to return {expected} events"),
        || (api.count("") >= expected).then_some(()),
    );
}

fn run_two_nodes(store: &str, extra: &str) {
    let scratch = tempfile::tempdir().unwrap();
    // Compacting after every few flushes makes the views overwrites of one
    // node race the appends of the other.
    let extra = format!("{extra}\n[views]\ncompact_files = 6\n");
    let config = write_config(scratch.path(), "apitrail.toml", store, &extra);
    let options = ServerOptions {
        extra_args: vec!["--config".into(), config.display().to_string()],
        ..ServerOptions::quick_flush()
    };
    let a = TestServer::start(options.clone());
    let b = TestServer::start(options.clone());

    let senders = [(a.api().clone(), "node-a"), (b.api().clone(), "node-b")]
        .map(|(api, tag)| thread::spawn(move || ingest_tag(api, tag)));
    for sender in senders {
        sender.join().expect("an ingest thread panicked");
    }
    for (server, node) in [(&a, "a"), (&b, "b")] {
        server
            .api()
            .wait_for_flushed_rows((BATCHES * BATCH_ROWS) as u64);
        wait_for_all_events(server.api(), node);
    }
    a.api().wait_for_empty_buffer();
    b.api().wait_for_empty_buffer();

    // The views commit follows the events commit, so wait until both
    // nodes agree before comparing.
    let answers = poll_until(
        Duration::from_secs(30),
        "both nodes to return the same view rows",
        || {
            let from_a = store_answers(a.api());
            (from_a == store_answers(b.api())).then_some(from_a)
        },
    );
    for (server, node) in [(&a, "a"), (&b, "b")] {
        assert_each_event_once(server.api(), node);
        assert_endpoints_match_events(server.api());
    }
    let compactions: f64 = [&a, &b]
        .iter()
        .map(|s| {
            s.api()
                .metric("apitrail_view_compactions_total")
                .unwrap_or(0.0)
        })
        .sum();
    assert!(
        compactions >= 1.0,
        "no views compaction ran during the test"
    );

    let c = TestServer::start(options);
    assert_each_event_once(c.api(), "a fresh node");
    assert_endpoints_match_events(c.api());
    assert_eq!(store_answers(c.api()), answers, "a fresh node disagrees");
}

#[test]
fn two_nodes_share_local_store() {
    let scratch = tempfile::tempdir().unwrap();
    let store = scratch.path().join("store/events");
    run_two_nodes(&store.display().to_string(), "");
}

#[test]
fn two_nodes_share_s3_store() {
    let scratch = tempfile::tempdir().unwrap();
    let s3 = S3Server::start(&scratch.path().join("moto.log"));
    s3.create_bucket("shared");
    run_two_nodes("s3://shared/apitrail/events/", &s3.storage_options_toml());
}

#[test]
fn two_nodes_share_azure_store() {
    let scratch = tempfile::tempdir().unwrap();
    let azure = AzureServer::start(&scratch.path().join("azurite.log"));
    azure.create_container("shared");
    run_two_nodes(
        "az://shared/apitrail/events/",
        &azure.storage_options_toml(),
    );
}
