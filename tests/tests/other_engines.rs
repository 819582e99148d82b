//! Other engines read apitrail's tables: DuckDB's delta extension and the
//! deltalake Python package compute per-day counts and sums of `events`,
//! the `endpoints` rows of `views` and single events, and each must equal
//! what apitrail returns over HTTP. Runs on a local store, on an `s3://`
//! store on moto and on an `az://` store on Azurite.

use std::path::Path;
use std::process::Command;

use apitrail_tests::azure::{ACCOUNT_KEY, AzureServer};
use apitrail_tests::s3::{S3Server, with_s3_credentials};
use apitrail_tests::store::{
    DAY_SUMMARY_SQL, ENDPOINTS_SQL, assert_endpoints_match_events, envoy_lines, write_config,
};
use apitrail_tests::{Api, ServerOptions, TestServer, clear_cloud_env, python, run_command};
use serde_json::Value;

/// Request ids whose rows are compared one by one.
const REQUEST_IDS: [&str; 4] = ["ext-0", "ext-7", "ext-64", "ext-149"];

/// Ingests 150 tagged records in three batches and waits until they are flushed.
fn ingest_and_flush(server: &TestServer) {
    for batch in 0..3 {
        let range = batch * 50..batch * 50 + 50;
        let (status, report) = server.ingest(Some("envoy_json"), envoy_lines("ext", range));
        assert_eq!(status, 200, "{report}");
        assert_eq!(report["accepted"], 50, "{report}");
    }
    server.api().wait_for_flushed_rows(150);
    server.api().wait_for_empty_buffer();
}

/// What apitrail returns for the queries that `read_tables.py` runs.
fn apitrail_answers(api: &Api) -> Value {
    let ids = REQUEST_IDS
        .iter()
        .map(|id| format!("'{id}'"))
        .collect::<Vec<_>>()
        .join(", ");
    let rows = api.query(&format!(
        "SELECT request_id, method, path, status, response_bytes, \
         CAST(time AS BIGINT) AS time_us, CAST(day AS VARCHAR) AS day \
         FROM events WHERE request_id IN ({ids}) ORDER BY request_id"
    ));
    assert_eq!(rows.len(), REQUEST_IDS.len(), "{rows:?}");
    let endpoints = api.query(ENDPOINTS_SQL);
    assert!(!endpoints.is_empty(), "the endpoints view is empty");
    serde_json::json!({
        "days": api.query(DAY_SUMMARY_SQL),
        "endpoints": endpoints,
        "rows": rows,
    })
}

/// Runs `read_tables.py` and checks each engine's results against apitrail's.
fn assert_engines_agree(mut command: Command, events: &str, views: &str, expected: &Value) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("clients/read_tables.py");
    command.arg(script).arg(events).arg(views).args(REQUEST_IDS);
    let output = run_command(command);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "read_tables.py failed with {}:\n{stdout}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    let results: Value = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("read_tables.py printed no JSON ({e}): {stdout}"));
    for engine in ["duckdb", "deltalake"] {
        for part in ["days", "endpoints", "rows"] {
            assert_eq!(
                results[engine][part], expected[part],
                "{engine} disagrees with apitrail on {part}"
            );
        }
    }
}

#[test]
fn engines_read_local_store() {
    let scratch = tempfile::tempdir().unwrap();
    let store = scratch.path().join("store");
    let config = write_config(
        scratch.path(),
        "apitrail.toml",
        &store.join("events").display().to_string(),
        "",
    );
    let server = TestServer::start(ServerOptions {
        extra_args: vec!["--config".into(), config.display().to_string()],
        ..ServerOptions::quick_flush()
    });
    ingest_and_flush(&server);
    assert_endpoints_match_events(server.api());
    let expected = apitrail_answers(server.api());
    assert_eq!(expected["days"].as_array().map(Vec::len), Some(3));

    let mut command = Command::new(python());
    clear_cloud_env(&mut command);
    assert_engines_agree(
        command,
        &store.join("events").display().to_string(),
        &store.join("views").display().to_string(),
        &expected,
    );
}

#[test]
fn engines_read_s3_store() {
    let scratch = tempfile::tempdir().unwrap();
    let s3 = S3Server::start(&scratch.path().join("moto.log"));
    s3.create_bucket("lake");
    let config = write_config(
        scratch.path(),
        "apitrail.toml",
        "s3://lake/apitrail/events/",
        &s3.storage_options_toml(),
    );
    let server = TestServer::start(ServerOptions {
        extra_args: vec!["--config".into(), config.display().to_string()],
        ..ServerOptions::quick_flush()
    });
    ingest_and_flush(&server);
    let expected = apitrail_answers(server.api());

    let mut command = with_s3_credentials(Command::new(python()));
    command.env("S3_ENDPOINT", s3.endpoint());
    assert_engines_agree(
        command,
        "s3://lake/apitrail/events/",
        "s3://lake/apitrail/views/",
        &expected,
    );
}

#[test]
fn engines_read_azure_store() {
    let scratch = tempfile::tempdir().unwrap();
    let azure = AzureServer::start(&scratch.path().join("azurite.log"));
    azure.create_container("lake");
    let config = write_config(
        scratch.path(),
        "apitrail.toml",
        "az://lake/apitrail/events/",
        &azure.storage_options_toml(),
    );
    let server = TestServer::start(ServerOptions {
        extra_args: vec!["--config".into(), config.display().to_string()],
        ..ServerOptions::quick_flush()
    });
    ingest_and_flush(&server);
    let expected = apitrail_answers(server.api());

    let mut command = Command::new(python());
    clear_cloud_env(&mut command);
    command
        .env("AZURE_BLOB_ENDPOINT", azure.endpoint())
        .env("AZURE_STORAGE_ACCOUNT_KEY", ACCOUNT_KEY);
    assert_engines_agree(
        command,
        "az://lake/apitrail/events/",
        "az://lake/apitrail/views/",
        &expected,
    );
}
