//! Arrow Flight SQL as BI tools and detection products reach it: the ADBC
//! Flight SQL driver and pyarrow.flight, run from `tests/clients/flight_sql.py`
//! against a real server, with results compared to those of the HTTP API.

use apitrail_tests::{ServerOptions, TestServer, clf_line, run_python};
use serde_json::Value;

/// Ten calls on 1 March 2024: five 200s, three 404s and two 500s, eight of
/// them under `/v1/` and from 12:00 on, two on `/health` before noon.
fn ingest_known_calls(server: &TestServer) {
    let calls = [
        ("10:00:00", "/health", 200),
        ("11:00:00", "/health", 200),
        ("12:00:00", "/v1/orders/1", 200),
        ("12:05:00", "/v1/orders/2", 200),
        ("12:10:00", "/v1/orders/3", 200),
        ("12:15:00", "/v1/orders/4", 404),
        ("12:20:00", "/v1/orders/5", 404),
        ("13:00:00", "/v1/orders/6", 404),
        ("13:30:00", "/v1/orders/7", 500),
        ("14:00:00", "/v1/orders/8", 500),
    ];
    let body: String = calls
        .iter()
        .map(|(time, path, status)| clf_line(&format!("01/Mar/2024:{time} +0000"), path, *status))
        .collect();
    let (status, report) = server.ingest(Some("clf"), body);
    assert_eq!(status, 200, "ingest failed: {report}");
    assert_eq!(report["accepted"], 10, "ingest report: {report}");
}

fn run(scenario: &str, server: &TestServer) -> Value {
    let stdout = run_python("flight_sql.py", &[scenario, server.flight_url()]);
    serde_json::from_str(stdout.trim())
        .unwrap_or_else(|e| panic!("flight_sql.py {scenario} printed no JSON ({e}):\n{stdout}"))
}

#[test]
fn statement_query_matches_the_http_api() {
    let server = TestServer::start(ServerOptions::quick_flush());
    ingest_known_calls(&server);
    let result = run("query", &server);

    assert_eq!(result["total"], 10, "count(*) over Flight SQL: {result}");
    assert_eq!(
        result["columns"],
        serde_json::json!(["status", "calls", "first"]),
        "{result}"
    );
    let types: Vec<&str> = result["types"]
        .as_array()
        .expect("types is a list")
        .iter()
        .map(|t| t.as_str().unwrap_or_default())
        .collect();
    assert_eq!(types[1], "int64", "count(*) is a 64-bit integer: {result}");
    assert!(
        types[2].starts_with("timestamp[us"),
        "time keeps its Arrow timestamp type over Flight SQL, got {}",
        types[2]
    );

    let http = server.query(
        "SELECT status, count(*) AS calls, min(time) AS first FROM events GROUP BY status ORDER BY status",
    );
    let flight_rows = result["rows"].as_array().expect("rows is a list");
    assert_eq!(
        flight_rows.len(),
        http.len(),
        "row count, Flight {result} vs HTTP {http:?}"
    );
    for (flight, http) in flight_rows.iter().zip(&http) {
        assert_eq!(flight[0], http["status"], "status: {flight} vs {http}");
        assert_eq!(flight[1], http["calls"], "calls: {flight} vs {http}");
        let flight_time = flight[2].as_str().unwrap_or_default();
        let http_time = http["first"].as_str().unwrap_or_default();
        assert_eq!(
            &flight_time[..19],
            &http_time[..19],
            "first call time: Flight {flight_time} vs HTTP {http_time}"
        );
    }
}

#[test]
fn large_results_stream_in_many_batches() {
    let server = TestServer::start(ServerOptions::no_flush());
    let result = run("stream", &server);
    assert_eq!(result["rows"], 300_000, "{result}");
    assert_eq!(result["sum"], 300_000u64 * 300_001 / 2, "{result}");
    let batches = result["batches"].as_u64().unwrap_or_default();
    assert!(
        batches >= 10,
        "300,000 rows should arrive as batches of at most 8192 rows, got {batches} batches"
    );
}

#[test]
fn prepared_statements_bind_parameters_on_every_execution() {
    let server = TestServer::start(ServerOptions::quick_flush());
    ingest_known_calls(&server);
    let result = run("prepared", &server);

    assert_eq!(
        result["counts"],
        serde_json::json!([5, 3, 2, 5, 3, 2, 5, 3, 2, 5]),
        "count per status over ten executions of one prepared statement: {result}"
    );
    assert_eq!(
        result["null_param"],
        serde_json::json!([true, "text"]),
        "a NULL parameter binds as NULL: {result}"
    );
    assert_eq!(
        result["typed_params"], 8,
        "calls from 12:00 on under /v1/, with a timestamp and a text parameter: {result}"
    );
    assert_eq!(
        result["literal_question_mark"],
        serde_json::json!(["?", 7]),
        "a ? inside a string literal is not a placeholder: {result}"
    );
    assert_eq!(
        result["parameter_batch"],
        serde_json::json!([10, 20, 30]),
        "three bound rows run the statement three times: {result}"
    );
}

#[test]
fn metadata_lists_the_tables_with_their_columns() {
    let server = TestServer::start(ServerOptions::no_flush());
    let result = run("metadata", &server);

    let objects = result["objects"].as_object().expect("objects is a map");
    for table in [
        "events",
        "endpoints",
        "consumers",
        "consumer_activity",
        "consumer_baselines",
    ] {
        let key = format!("apitrail.public.{table}");
        let entry = objects
            .get(&key)
            .unwrap_or_else(|| panic!("GetObjects lacks {key}; it has {:?}", objects.keys()));
        assert!(
            !entry["columns"].as_array().expect("columns").is_empty(),
            "{key} has no columns in GetObjects: {entry}"
        );
    }
    let events_schema = &result["events_schema"];
    assert!(
        events_schema["time"]
            .as_str()
            .unwrap_or_default()
            .starts_with("timestamp[us"),
        "events.time type: {events_schema}"
    );
    assert_eq!(
        events_schema["status"], "int32",
        "events.status: {events_schema}"
    );
    assert_eq!(
        result["table_types"],
        serde_json::json!(["TABLE", "VIEW"]),
        "{result}"
    );

    let raw = &result["raw"];
    assert_eq!(
        raw["catalogs"],
        serde_json::json!([{"catalog_name": "apitrail"}]),
        "GetCatalogs: {raw}"
    );
    let schemas: Vec<&str> = raw["schemas"]
        .as_array()
        .expect("schemas")
        .iter()
        .filter_map(|s| s["db_schema_name"].as_str())
        .collect();
    assert!(
        schemas.contains(&"public") && schemas.contains(&"information_schema"),
        "GetDbSchemas: {schemas:?}"
    );
    let tables = raw["tables"].as_array().expect("tables");
    let names: Vec<&str> = tables.iter().filter_map(|t| t["name"].as_str()).collect();
    assert_eq!(
        names,
        vec!["endpoints", "events"],
        "GetTables with the patterns pub% and e%"
    );
    let events = &tables[1];
    assert_eq!(events["type"], "TABLE", "{events}");
    assert_eq!(
        events["columns"]["path"], "string",
        "GetTables include_schema carries events.path: {events}"
    );
    assert_eq!(
        raw["sql_info"]["0"], "apitrail",
        "GetSqlInfo server name: {raw}"
    );
    assert_eq!(raw["sql_info"]["3"], true, "GetSqlInfo read-only: {raw}");
    assert_eq!(raw["sql_info"]["504"], "\"", "GetSqlInfo quote: {raw}");
    assert!(
        raw["sql_info_all_rows"].as_u64().unwrap_or_default() > 50,
        "GetSqlInfo without ids lists every entry: {raw}"
    );
    let types: Vec<&str> = raw["xdbc_types"]
        .as_array()
        .expect("xdbc types")
        .iter()
        .filter_map(|t| t.as_str())
        .collect();
    for name in ["BIGINT", "VARCHAR", "TIMESTAMP", "DOUBLE"] {
        assert!(
            types.contains(&name),
            "GetXdbcTypeInfo lacks {name}: {types:?}"
        );
    }
    assert_eq!(
        raw["xdbc_timestamp"],
        serde_json::json!(["TIMESTAMP"]),
        "{raw}"
    );
    assert_eq!(
        raw["primary_keys"], 0,
        "apitrail tables have no keys: {raw}"
    );
    assert_eq!(raw["imported_keys"], 0, "{raw}");
}

#[test]
fn errors_are_clear_and_writes_are_refused() {
    let server = TestServer::start(ServerOptions::no_flush());
    let result = run("errors", &server);

    for name in ["syntax", "unknown_table"] {
        let entry = &result[name];
        assert_eq!(
            entry["error"], "ArrowInvalid",
            "{name} must fail as INVALID_ARGUMENT, which pyarrow raises as ArrowInvalid: {entry}"
        );
    }
    assert!(
        result["unknown_table"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("no_such_table"),
        "the error names the missing table: {result}"
    );
    for name in ["create", "insert", "copy", "external"] {
        let message = result[name]["message"].as_str().unwrap_or_default();
        assert!(
            message.contains("read-only"),
            "{name} must be refused as read-only, got {}",
            result[name]
        );
    }
    let drop = result["dbapi_drop"].as_str().unwrap_or_default();
    assert!(
        drop.contains("read-only"),
        "DROP TABLE through DB-API must raise a read-only error, got {drop:?}"
    );
    // Nothing was written: the table is still empty.
    assert_eq!(server.count("1 = 1"), 0);
}

#[test]
fn cancel_stops_running_queries() {
    let server = TestServer::start(ServerOptions::no_flush());
    let result = run("cancel", &server);

    assert_eq!(
        result["flight_reader_alive"], false,
        "DoGet still ran 60 s after CancelFlightInfo: {result}"
    );
    let outcome = result["flight_outcome"]["error"]
        .as_str()
        .unwrap_or_default();
    assert!(
        outcome.contains("FlightCancelledError") && outcome.contains("cancelled"),
        "the reader of a cancelled query gets CANCELLED from the server, got {outcome:?}"
    );
    assert!(
        result["flight_status"]
            .as_str()
            .unwrap_or_default()
            .contains("CANCELLED"),
        "CancelFlightInfo answers CANCELLED: {result}"
    );
    let early = result["cancelled_before_start"]
        .as_str()
        .unwrap_or_default();
    assert!(
        early.contains("FlightCancelledError"),
        "a ticket cancelled before DoGet does not run, got {early:?}"
    );
    assert_eq!(
        result["adbc_alive"], false,
        "ADBC's execute still ran 60 s after adbc_cancel: {result}"
    );
    assert!(
        result["adbc_outcome"]["error"].is_string(),
        "ADBC's cancelled execute raises: {result}"
    );
    assert_eq!(result["after_cancel"], 42, "{result}");
}
