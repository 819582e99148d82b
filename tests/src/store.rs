//! Helpers of the tests that point servers at one shared store: tagged
//! Envoy records, configuration files and the query results compared
//! between processes and engines.

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::Api;

/// Days that [`envoy_line`] spreads its records over.
pub const DAYS: [&str; 3] = ["2024-03-04", "2024-03-05", "2024-03-06"];

/// Builds one Envoy JSON record with request id `<tag>-<i>` and path
/// `/t/<tag>/<i>`; day, status, size and method vary with `i`.
pub fn envoy_line(tag: &str, i: usize) -> String {
    let day = DAYS[i % DAYS.len()];
    let status = [200, 201, 302, 404, 500, 429][i % 6];
    let method = ["GET", "POST"][i % 2];
    let bytes = 100 + (i * 37) % 1000;
    let seconds = (i / DAYS.len()) % 86_400;
    let (hour, minute, second) = (seconds / 3600, (seconds / 60) % 60, seconds % 60);
    format!(
        concat!(
            r#"{{"start_time":"{day}T{hour:02}:{minute:02}:{second:02}.000Z","method":"{method}","#,
            r#""path":"/t/{tag}/{i}","protocol":"HTTP/1.1","response_code":{status},"#,
            r#""bytes_received":10,"bytes_sent":{bytes},"duration":{duration},"#,
            r#""request_id":"{tag}-{i}","authority":"api.example.com","#,
            r#""downstream_remote_address":"192.0.2.{ip}:5000","user_agent":"apitrail-tests/1.0"}}"#,
            "\n"
        ),
        day = day,
        hour = hour,
        minute = minute,
        second = second,
        method = method,
        tag = tag,
        i = i,
        status = status,
        bytes = bytes,
        duration = 1 + i % 50,
        ip = 1 + i % 200,
    )
}

/// Builds the records `range` of `tag`, one per line.
pub fn envoy_lines(tag: &str, range: std::ops::Range<usize>) -> String {
    range.map(|i| envoy_line(tag, i)).collect()
}

/// Writes a server configuration with `store` and `extra` TOML lines; returns its path.
pub fn write_config(dir: &Path, name: &str, store: &str, extra: &str) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap_or_else(|e| panic!("creating {}: {e}", dir.display()));
    let path = dir.join(name);
    // Top-level keys come before any section of `extra`.
    let text = format!("store = \"{store}\"\nrefresh_interval_secs = 0.2\n{extra}");
    std::fs::write(&path, text).unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
    path
}

/// Per-day counts and sums of the events, as the server returns them.
pub const DAY_SUMMARY_SQL: &str = "SELECT CAST(day AS VARCHAR) AS day, count(*) AS events, \
    sum(response_bytes) AS bytes_out, \
    sum(CASE WHEN status >= 200 AND status < 300 THEN 1 ELSE 0 END) AS status_2xx, \
    sum(CASE WHEN status >= 300 AND status < 400 THEN 1 ELSE 0 END) AS status_3xx, \
    sum(CASE WHEN status >= 400 AND status < 500 THEN 1 ELSE 0 END) AS status_4xx, \
    sum(CASE WHEN status >= 500 THEN 1 ELSE 0 END) AS status_5xx \
    FROM events GROUP BY day ORDER BY day";

/// The `endpoints` view's counts, in a fixed order.
pub const ENDPOINTS_SQL: &str = "SELECT host, method, endpoint, calls, status_4xx, status_5xx, bytes_out \
    FROM endpoints ORDER BY host, method, endpoint";

/// Per-day counts and sums, and the `endpoints` rows, of one server.
pub fn store_answers(api: &Api) -> (Vec<Value>, Vec<Value>) {
    (api.query(DAY_SUMMARY_SQL), api.query(ENDPOINTS_SQL))
}

/// Checks that the `endpoints` view adds up to the events, per host and method.
pub fn assert_endpoints_match_events(api: &Api) {
    let from_view = api.query(
        "SELECT host, method, sum(calls) AS calls, sum(bytes_out) AS bytes_out \
         FROM endpoints GROUP BY host, method ORDER BY host, method",
    );
    let from_events = api.query(
        "SELECT host, method, count(*) AS calls, sum(response_bytes) AS bytes_out \
         FROM events GROUP BY host, method ORDER BY host, method",
    );
    assert_eq!(
        from_view, from_events,
        "the endpoints view disagrees with the events"
    );
}
