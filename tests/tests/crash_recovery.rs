//! Crashes at any moment keep every acknowledged event, exactly once.
//!
//! A 200 from the ingest endpoint promises that the events are durable. These
//! tests kill the server with SIGKILL, abort it at each crash point of a
//! flush, and damage the end of its WAL, then restart it on the same data
//! directory and check that each acknowledged event is there once.

use std::collections::BTreeSet;
use std::os::unix::process::ExitStatusExt;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::Duration;

use apitrail_tests::{FAILPOINTS, ServerOptions, TestServer, clf_line, describe_exit, poll_until};
use serde_json::Value;

const WRITER_THREADS: usize = 8;
const BODIES_PER_THREAD: usize = 100;
const LINES_PER_BODY: usize = 3;

/// Path of one marker line: `/k/<round>/<thread>/<body>/<line>`.
fn marker_path(round: usize, thread: usize, body: usize, line: usize) -> String {
    format!("/k/{round}/{thread}/{body}/{line}")
}

fn marker_body(round: usize, thread: usize, body: usize) -> String {
    (0..LINES_PER_BODY)
        .map(|line| {
            let second = (body * LINES_PER_BODY + line) % 60;
            let time = format!("1{round}/Oct/2023:14:{thread:02}:{second:02} +0000");
            clf_line(&time, &marker_path(round, thread, body, line), 200)
        })
        .collect()
}

fn numbered_lines(prefix: &str, count: usize) -> String {
    (0..count)
        .map(|i| {
            let time = format!("11/Oct/2023:08:{:02}:{:02} +0000", i / 60, i % 60);
            clf_line(&time, &format!("/{prefix}/{i}"), 200)
        })
        .collect()
}

fn stored_paths(server: &TestServer) -> Vec<String> {
    server
        .query("SELECT path FROM events")
        .iter()
        .map(|row| {
            row["path"]
                .as_str()
                .unwrap_or_else(|| panic!("row without a path: {row}"))
                .to_string()
        })
        .collect()
}

fn duplicate_paths(server: &TestServer) -> Vec<Value> {
    server.query(
        "SELECT path, count(*) AS n FROM events GROUP BY path HAVING count(*) > 1 ORDER BY path",
    )
}

fn assert_no_duplicates(server: &TestServer, when: &str) {
    let duplicates = duplicate_paths(server);
    assert!(
        duplicates.is_empty(),
        "{when}: rows stored more than once: {duplicates:?}"
    );
}

/// Starts the writer threads. Each returns the numbers of its acknowledged bodies.
fn spawn_writers(
    server: &TestServer,
    round: usize,
    acknowledged_bodies: &Arc<AtomicUsize>,
) -> Vec<thread::JoinHandle<Vec<usize>>> {
    (0..WRITER_THREADS)
        .map(|thread| {
            let api = server.api().clone();
            let counter = Arc::clone(acknowledged_bodies);
            thread::spawn(move || {
                let mut acknowledged = Vec::new();
                for body in 0..BODIES_PER_THREAD {
                    let request = api.try_ingest_request(
                        &[("format", "clf")],
                        None,
                        marker_body(round, thread, body).into_bytes(),
                    );
                    // A refused or cut-off request after a kill, or a
                    // non-200 status, leaves the lines unacknowledged.
                    if let Ok((200, report)) = request {
                        assert_eq!(
                            report["accepted"], LINES_PER_BODY,
                            "body {round}/{thread}/{body} was not fully accepted: {report}"
                        );
                        acknowledged.push(body);
                        counter.fetch_add(1, Ordering::SeqCst);
                    }
                }
                acknowledged
            })
        })
        .collect()
}

/// Joins the writer threads and returns the paths of every acknowledged line.
fn acknowledged_paths(
    round: usize,
    writers: Vec<thread::JoinHandle<Vec<usize>>>,
) -> BTreeSet<String> {
    let mut paths = BTreeSet::new();
    for (thread, writer) in writers.into_iter().enumerate() {
        let bodies = writer.join().expect("a writer thread panicked");
        for body in bodies {
            for line in 0..LINES_PER_BODY {
                paths.insert(marker_path(round, thread, body, line));
            }
        }
    }
    paths
}

/// Checks that every acknowledged path is stored and that nothing else is.
fn assert_acknowledged_stored(
    server: &TestServer,
    acknowledged: &BTreeSet<String>,
    when: &str,
) -> BTreeSet<String> {
    let stored: BTreeSet<String> = stored_paths(server).into_iter().collect();
    let lost: Vec<&String> = acknowledged.difference(&stored).collect();
    assert!(
        lost.is_empty(),
        "{when}: {} acknowledged lines are missing, such as {:?}",
        lost.len(),
        &lost[..lost.len().min(10)]
    );
    assert_no_duplicates(server, when);
    let unknown: Vec<&String> = stored
        .iter()
        .filter(|path| !path.starts_with("/k/"))
        .collect();
    assert!(
        unknown.is_empty(),
        "{when}: rows that no client sent: {unknown:?}"
    );
    stored
}

/// Eight clients ingest while the flusher runs every 0.05 s: every line is
/// stored once, in the live server and after a clean restart.
#[test]
fn concurrent_ingest_exact_once() {
    let mut server = TestServer::start(ServerOptions {
        flush_max_age_secs: Some(0.05),
        ..ServerOptions::default()
    });
    let acknowledged_bodies = Arc::new(AtomicUsize::new(0));
    let writers = spawn_writers(&server, 0, &acknowledged_bodies);
    let acknowledged = acknowledged_paths(0, writers);
    let total_lines = WRITER_THREADS * BODIES_PER_THREAD * LINES_PER_BODY;
    assert_eq!(
        acknowledged.len(),
        total_lines,
        "every body must be acknowledged when nothing crashes"
    );

    server.api().wait_for_empty_buffer();
    assert_acknowledged_stored(
        &server,
        &acknowledged,
        "in the live server after the flushes",
    );
    assert_eq!(
        server.count(""),
        total_lines as i64,
        "row count in the live server"
    );

    server.stop();
    server.restart();
    assert_acknowledged_stored(&server, &acknowledged, "after a clean restart");
    assert_eq!(
        server.count(""),
        total_lines as i64,
        "row count after a clean restart"
    );
}

/// SIGKILL while eight clients ingest and the flusher runs, three times at
/// different points: after each restart, every line acknowledged so far is
/// present once and nothing else appears.
#[test]
fn sigkill_concurrent_ingest() {
    let mut server = TestServer::start(ServerOptions {
        flush_max_age_secs: Some(0.05),
        ..ServerOptions::default()
    });
    let total_bodies = WRITER_THREADS * BODIES_PER_THREAD;
    let mut acknowledged = BTreeSet::new();

    for round in 1..=3 {
        let acknowledged_bodies = Arc::new(AtomicUsize::new(0));
        let writers = spawn_writers(&server, round, &acknowledged_bodies);
        let kill_after = total_bodies * round / 4;
        poll_until(
            Duration::from_secs(60),
            &format!("{kill_after} bodies of round {round} to be acknowledged"),
            || (acknowledged_bodies.load(Ordering::SeqCst) >= kill_after).then_some(()),
        );
        server.sigkill();
        let round_paths = acknowledged_paths(round, writers);
        assert!(
            round_paths.len() >= kill_after * LINES_PER_BODY,
            "round {round}: only {} lines were acknowledged before the kill",
            round_paths.len()
        );
        acknowledged.extend(round_paths);

        server.restart();
        assert_acknowledged_stored(
            &server,
            &acknowledged,
            &format!("after the SIGKILL of round {round}"),
        );
    }

    // A clean stop and start must neither lose nor repeat the recovered rows.
    let recovered = server.count("");
    server.stop();
    server.restart();
    assert_eq!(
        server.count(""),
        recovered,
        "row count after a clean restart of the recovered store"
    );
    assert_acknowledged_stored(&server, &acknowledged, "after the clean restart");
}

/// Crashes at `failpoint` during the first flush, then checks recovery and a clean restart.
fn check_failpoint(failpoint: &str) {
    assert!(
        FAILPOINTS.contains(&failpoint),
        "unknown crash point {failpoint}"
    );
    const ROWS: i64 = 25;
    let mut server = TestServer::start(ServerOptions::quick_flush().with_failpoint(failpoint));
    let (status, report) = server.ingest(Some("clf"), numbered_lines("fp", ROWS as usize));
    assert_eq!(status, 200, "ingest before the crash failed: {report}");
    assert_eq!(
        report["accepted"], ROWS,
        "accepted lines before the crash: {report}"
    );

    let exit = server.wait_for_exit(Duration::from_secs(30));
    assert_eq!(
        exit.signal(),
        Some(libc::SIGABRT),
        "the server must abort at {failpoint}, but ended with {}",
        describe_exit(exit)
    );
    let stderr = server.stderr();
    assert!(
        stderr.contains(&format!("aborting at failpoint {failpoint}")),
        "stderr does not show the crash point {failpoint}:\n{stderr}"
    );

    server.restart_with(ServerOptions::quick_flush());
    assert_eq!(
        server.count(""),
        ROWS,
        "row count after the crash at {failpoint}"
    );
    assert_no_duplicates(&server, &format!("after the crash at {failpoint}"));

    server.stop();
    let wal_bytes = server.wal_record_bytes();
    assert_eq!(
        wal_bytes, 0,
        "after a clean stop following {failpoint}, the WAL still contains {wal_bytes} bytes of records"
    );
    server.restart();
    assert_eq!(
        server.count(""),
        ROWS,
        "row count after the clean restart following {failpoint}"
    );
    assert_no_duplicates(
        &server,
        &format!("after the clean restart following {failpoint}"),
    );

    // The recovered store keeps taking writes.
    let (status, report) = server.ingest(Some("clf"), numbered_lines("after", 5));
    assert_eq!(
        status, 200,
        "ingest after recovery from {failpoint} failed: {report}"
    );
    assert_eq!(
        server.count(""),
        ROWS + 5,
        "row count after a new ingest following {failpoint}"
    );
}

#[test]
fn crash_before_write() {
    check_failpoint("flush_before_write");
}

#[test]
fn crash_after_parquet() {
    check_failpoint("flush_after_parquet");
}

#[test]
fn crash_after_commit() {
    check_failpoint("flush_after_commit");
}

#[test]
fn crash_before_views() {
    check_failpoint("flush_before_views");
}

#[test]
fn crash_before_truncate() {
    check_failpoint("flush_before_truncate");
}

/// Garbage after the last WAL record, as a torn write leaves it: the server
/// starts, keeps every acknowledged row and sets the garbage aside.
#[test]
fn torn_wal_tail() {
    const ROWS: i64 = 20;
    let mut server = TestServer::start(ServerOptions::no_flush());
    let (status, report) = server.ingest(Some("clf"), numbered_lines("torn", ROWS as usize));
    assert_eq!(status, 200, "ingest failed: {report}");
    server.sigkill();

    let segments = server.wal_segments();
    let last = segments
        .last()
        .unwrap_or_else(|| panic!("no WAL segment in {}", server.data_dir().display()));
    let mut bytes = std::fs::read(last).expect("reading the last WAL segment");
    let original_len = bytes.len();
    bytes.extend_from_slice(&[0x5a; 13]);
    bytes.extend_from_slice(b"\x10\x00\x00\x00torn-record");
    std::fs::write(last, &bytes).expect("appending garbage to the last WAL segment");

    server.restart();
    assert_eq!(
        server.count(""),
        ROWS,
        "acknowledged rows after the torn tail"
    );
    assert_no_duplicates(&server, "after the torn tail");

    let corrupt_dir = server.data_dir().join("wal").join("corrupt");
    let set_aside: Vec<_> = std::fs::read_dir(&corrupt_dir)
        .unwrap_or_else(|e| {
            panic!(
                "the torn tail must be set aside in {}: {e}",
                corrupt_dir.display()
            )
        })
        .map(|entry| entry.expect("reading wal/corrupt").path())
        .collect();
    assert!(!set_aside.is_empty(), "{} is empty", corrupt_dir.display());
    let truncated_len = std::fs::metadata(last)
        .map(|m| m.len() as usize)
        .unwrap_or(0);
    assert!(
        truncated_len <= original_len,
        "the damaged segment is {truncated_len} bytes, more than the {original_len} bytes it had before the garbage"
    );

    let (status, report) = server.ingest(Some("clf"), numbered_lines("later", 5));
    assert_eq!(status, 200, "ingest after the repair failed: {report}");
    server.stop();
    server.restart();
    assert_eq!(
        server.count(""),
        ROWS + 5,
        "row count after a clean restart"
    );
    assert_no_duplicates(&server, "after the clean restart");
}
