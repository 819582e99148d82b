//! `anomalies()` and `consumer_profile()` over simulated partner traffic.
//!
//! A server receives five weeks of a small simulated world with every abuse
//! scenario injected once (`apitrail simulate --server`). The test then runs
//! `anomalies()` over the last week and checks the findings against the
//! simulator's ground truth: every scenario is found on its consumer within
//! its window, and the findings outside every scenario stay below one per
//! partner. The quality benchmark (tests/bench/anomaly_quality.py) measures
//! the same thing on larger worlds and several seeds.

use std::collections::BTreeMap;
use std::path::Path;

use apitrail_tests::{ServerOptions, TestServer, read_file, run_cli};
use chrono::{DateTime, Duration, Utc};
use serde_json::Value;

const PARTNERS: usize = 8;
/// The last week of the default five weeks from 2025-04-07.
const ATTACK_START: &str = "2025-05-05T00:00:00Z";
const ATTACK_END: &str = "2025-05-12T00:00:00Z";

fn time(value: &Value) -> DateTime<Utc> {
    let text = value
        .as_str()
        .unwrap_or_else(|| panic!("{value} is not text"));
    DateTime::parse_from_rfc3339(text)
        .unwrap_or_else(|e| panic!("{text} is not RFC 3339: {e}"))
        .with_timezone(&Utc)
}

fn truth(path: &Path) -> Vec<Value> {
    let text = String::from_utf8(read_file(path)).expect("the truth is UTF-8");
    text.lines()
        .map(|line| serde_json::from_str(line).expect("each truth line is JSON"))
        .collect()
}

/// Starts a server with the simulated world and returns it with the truth of its scenarios.
fn simulated_server() -> (TestServer, Vec<Value>) {
    let server = TestServer::start(ServerOptions::no_flush());
    let truth_path = server.scratch_dir().join("truth.jsonl");
    let output = run_cli([
        "simulate",
        "--seed",
        "5",
        "--partners",
        &PARTNERS.to_string(),
        "--scale",
        "0.3",
        "--server",
        server.url(),
        "--truth",
        truth_path.to_str().expect("a UTF-8 path"),
    ]);
    assert!(
        output.status.success(),
        "simulate failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let truth = truth(&truth_path);
    assert_eq!(truth.len(), 9, "every scenario once");
    (server, truth)
}

/// Returns whether `finding` lies on the consumers and in the window of `scenario`.
///
/// The detectors of slow scenarios look at trailing 24 hours, so their
/// findings may go on for a day after the window.
fn matches(finding: &Value, scenario: &Value) -> bool {
    let consumer = finding["consumer"].as_str().unwrap_or_default();
    let on_consumer = scenario["consumers"]
        .as_array()
        .is_some_and(|all| all.iter().any(|c| c.as_str() == Some(consumer)));
    let slack = match scenario["scenario"].as_str() {
        Some("data_harvesting" | "low_and_slow_exfiltration") => Duration::hours(24),
        _ => Duration::hours(1),
    };
    on_consumer
        && time(&finding["bucket_start"]) < time(&scenario["end"]) + slack
        && time(&finding["bucket_end"]) > time(&scenario["start"])
}

#[test]
fn anomalies_find_every_simulated_scenario() {
    let (server, truth) = simulated_server();
    let findings = server.query(&format!(
        "SELECT * FROM anomalies(TIMESTAMP '{ATTACK_START}', TIMESTAMP '{ATTACK_END}') \
         ORDER BY bucket_start, consumer, kind"
    ));
    let listing = findings
        .iter()
        .map(|f| {
            format!(
                "{} {} {} {}: {}",
                f["bucket_start"], f["consumer"], f["kind"], f["endpoint"], f["explanation"]
            )
        })
        .collect::<Vec<_>>()
        .join("\n");

    for scenario in &truth {
        assert!(
            findings.iter().any(|finding| matches(finding, scenario)),
            "no finding for {scenario}\nfindings:\n{listing}"
        );
    }
    let false_findings: Vec<&Value> = findings
        .iter()
        .filter(|finding| !truth.iter().any(|scenario| matches(finding, scenario)))
        .collect();
    assert!(
        false_findings.len() <= PARTNERS,
        "{} findings outside every scenario, more than one per partner:\n{false_findings:#?}",
        false_findings.len()
    );

    for finding in &findings {
        let start = time(&finding["bucket_start"]);
        let end = time(&finding["bucket_end"]);
        assert!(start < end, "an empty finding: {finding}");
        assert_eq!(
            start.timestamp() % 3600,
            0,
            "findings cover whole hours: {finding}"
        );
        let explanation = finding["explanation"].as_str().unwrap_or_default();
        assert!(
            explanation.ends_with('.') && !explanation.contains("{sequential}"),
            "an unfinished explanation: {finding}"
        );
    }

    // Each scenario gives the kind its detector is named for.
    let expected_kinds: BTreeMap<&str, &[&str]> = BTreeMap::from([
        ("data_harvesting", &["data_harvesting"][..]),
        ("object_enumeration", &["object_enumeration"][..]),
        ("leaked_key", &["new_network", "new_user_agent"][..]),
        ("credential_stuffing", &["auth_failures"][..]),
        ("off_hours_export", &["off_hours"][..]),
        ("volume_spike", &["volume_spike"][..]),
        ("endpoint_probing", &["new_endpoint"][..]),
        ("unusual_method", &["unusual_method"][..]),
        ("low_and_slow_exfiltration", &["bytes_out"][..]),
    ]);
    for scenario in &truth {
        let name = scenario["scenario"].as_str().expect("a scenario name");
        let kinds = expected_kinds[name];
        assert!(
            findings.iter().any(|finding| matches(finding, scenario)
                && kinds.contains(&finding["kind"].as_str().unwrap_or_default())),
            "no {kinds:?} finding for {scenario}\nfindings:\n{listing}"
        );
    }
}

#[test]
fn consumer_profile_compares_the_window_with_earlier_weeks() {
    let (server, truth) = simulated_server();
    let spike = truth
        .iter()
        .find(|scenario| scenario["scenario"] == "volume_spike")
        .expect("a volume spike");
    let consumer = spike["consumer"].as_str().expect("a consumer");
    let start = time(&spike["start"]);
    let hour_start = start - Duration::seconds(start.timestamp() % 3600);
    let hour_end = hour_start + Duration::hours(1);
    let rows = server.query(&format!(
        "SELECT * FROM consumer_profile('{consumer}', TIMESTAMP '{}', TIMESTAMP '{}')",
        hour_start.to_rfc3339(),
        hour_end.to_rfc3339()
    ));
    let calls = rows
        .iter()
        .find(|row| row["scope"] == "consumer" && row["metric"] == "calls")
        .unwrap_or_else(|| panic!("no calls row in {rows:#?}"));
    let observed = calls["observed"].as_f64().expect("observed");
    let baseline_max = calls["baseline_max"].as_f64().expect("baseline_max");
    assert_eq!(calls["weeks"], 4, "four earlier weeks: {calls}");
    assert!(
        observed > 2.0 * baseline_max && calls["score"].as_f64().unwrap_or_default() > 5.0,
        "the spike hour stands out: {calls}"
    );
    assert!(
        rows.iter().any(|row| row["scope"] == "endpoint"),
        "endpoint rows: {rows:#?}"
    );
    let networks = rows
        .iter()
        .find(|row| row["metric"] == "networks")
        .expect("a networks row");
    assert_eq!(networks["new_values"], serde_json::json!([]), "{networks}");
}

#[test]
fn bad_arguments_are_explained() {
    let server = TestServer::start(ServerOptions::no_flush());
    for (sql, expected) in [
        (
            "SELECT * FROM anomalies('2025-05-05', '2025-05-04')",
            "end must be after start",
        ),
        (
            "SELECT * FROM anomalies('2025-05-05', '2025-05-06', 'z=high')",
            "z must be a number",
        ),
        (
            "SELECT * FROM anomalies('2025-05-05', '2025-05-06', 'kinds=spike')",
            "unknown kind",
        ),
        (
            "SELECT * FROM anomalies('2025-05-05')",
            "takes (start, end)",
        ),
        (
            "SELECT * FROM anomalies('soon', '2025-05-06')",
            "start must be a timestamp",
        ),
        (
            "SELECT * FROM anomalies('2025-01-01', '2025-03-01')",
            "longer than 31 days",
        ),
        (
            "SELECT * FROM consumer_profile('c', '2025-05-01', '2025-05-12')",
            "at most 7 days",
        ),
    ] {
        let (status, body) = server.query_status(sql);
        assert_eq!(status, 400, "{sql}: {body}");
        assert!(body.to_string().contains(expected), "{sql}: {body}");
    }
    // An empty store has no findings, and a relative window is accepted.
    let rows = server.query("SELECT count(*) AS n FROM anomalies(now() - INTERVAL '1 day', now())");
    assert_eq!(rows[0]["n"], 0);
}
