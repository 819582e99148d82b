//! `apitrail import` as a user runs it: directories, glob patterns, gzip and
//! zstd members, re-imports, `s3://` prefixes on a local S3-compatible
//! server, and `--follow` through appends, rotations and restarts.

use std::ffi::OsString;
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use apitrail_tests::s3::{S3Server, with_s3_credentials};
use apitrail_tests::{
    ServerOptions, TestServer, clf_line, cli_command, describe_exit, gzip, poll_until, realdata,
    run_cli, run_command, send_signal,
};

/// How long a follower may take to send what a test wrote.
const FOLLOW_TIMEOUT: Duration = Duration::from_secs(30);
/// Poll interval of the followers in these tests, in seconds.
const POLL: &str = "0.1";

/// Builds one combined-format line whose path, `/t/<tag>/<i>`, is unique in a test.
fn line(tag: &str, i: usize) -> String {
    clf_line("10/Oct/2023:13:55:36 +0000", &format!("/t/{tag}/{i}"), 200)
}

fn lines(tag: &str, range: std::ops::Range<usize>) -> String {
    range.map(|i| line(tag, i)).collect()
}

fn append(path: &Path, text: &str) {
    let mut file = OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap_or_else(|e| panic!("opening {} to append: {e}", path.display()));
    file.write_all(text.as_bytes())
        .unwrap_or_else(|e| panic!("appending to {}: {e}", path.display()));
}

fn zstd(data: &[u8]) -> Vec<u8> {
    zstd::encode_all(data, 3).expect("compressing in memory")
}

fn stdout_text(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr_text(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn assert_success(output: &Output, command: &str) {
    assert!(
        output.status.success(),
        "{command} exited with {}\nstdout:\n{}\nstderr:\n{}",
        output.status,
        stdout_text(output),
        stderr_text(output)
    );
}

/// Returns the line of `stdout` that starts with `total:`.
fn total_line(stdout: &str) -> &str {
    stdout
        .lines()
        .find(|l| l.starts_with("total:"))
        .unwrap_or_else(|| panic!("no total line in:\n{stdout}"))
}

fn import_server(server: &TestServer, inputs: &[&Path]) -> Output {
    let mut args: Vec<OsString> = vec!["import".into(), "--server".into(), server.url().into()];
    args.extend(inputs.iter().map(|p| p.as_os_str().to_owned()));
    run_cli(args)
}

fn import_data_dir(data_dir: &Path, inputs: &[&Path]) -> Output {
    let mut args: Vec<OsString> = vec!["import".into(), "--data-dir".into(), data_dir.into()];
    args.extend(inputs.iter().map(|p| p.as_os_str().to_owned()));
    run_cli(args)
}

/// Counts the rows of a data directory with `apitrail query --data-dir`.
fn count_data_dir(data_dir: &Path, filter: &str) -> i64 {
    try_count_data_dir(data_dir, filter).unwrap_or_else(|output| {
        panic!(
            "query --data-dir failed\nstdout:\n{}\nstderr:\n{}",
            stdout_text(&output),
            stderr_text(&output)
        )
    })
}

/// Counts the rows of a data directory, or returns the output of the failed query.
fn try_count_data_dir(data_dir: &Path, filter: &str) -> Result<i64, Output> {
    let sql = format!("SELECT count(*) AS n FROM events {filter}");
    let output = run_cli([
        "query".as_ref(),
        "--data-dir".as_ref(),
        data_dir.as_os_str(),
        sql.as_ref(),
    ]);
    if !output.status.success() {
        return Err(output);
    }
    let stdout = stdout_text(&output);
    let count = stdout
        .lines()
        .filter(|l| l.starts_with('|'))
        .nth(1)
        .and_then(|row| row.trim_matches('|').trim().parse().ok());
    count.ok_or(output)
}

/// Waits until a data directory, which a follower may not have created yet, contains `n` rows.
fn wait_for_data_dir_rows(data_dir: &Path, filter: &str, n: i64) {
    poll_until(
        FOLLOW_TIMEOUT,
        &format!("{n} rows in {}", data_dir.display()),
        || {
            try_count_data_dir(data_dir, filter)
                .is_ok_and(|count| count >= n)
                .then_some(())
        },
    );
}

/// Asserts that the events carry exactly the paths `/t/<tag>/0` to `/t/<tag>/<n-1>`, once each.
fn assert_each_line_once(server: &TestServer, tag: &str, n: usize) {
    let filter = format!("path LIKE '/t/{tag}/%'");
    assert_eq!(server.count(&filter), n as i64, "rows of {tag}");
    let rows = server.query(&format!(
        "SELECT count(DISTINCT path) AS n FROM events WHERE {filter}"
    ));
    assert_eq!(rows[0]["n"], n as i64, "distinct lines of {tag}: {rows:?}");
}

/// Waits until the server contains `n` rows of `tag`, then a few polls more,
/// and checks that no row came twice.
fn wait_for_lines(server: &TestServer, tag: &str, n: usize) {
    let filter = format!("path LIKE '/t/{tag}/%'");
    poll_until(FOLLOW_TIMEOUT, &format!("{n} rows of {tag}"), || {
        (server.count(&filter) >= n as i64).then_some(())
    });
    thread::sleep(Duration::from_millis(500));
    assert_each_line_once(server, tag, n);
}

/// An `apitrail import --follow` process, with its output in files.
struct Follower {
    child: Option<Child>,
    stdout: PathBuf,
    stderr: PathBuf,
}

impl Follower {
    /// Starts a follower with `target` (`--server URL` or `--data-dir DIR`) and its checkpoint.
    fn start(target: &[OsString], checkpoint: &Path, inputs: &[&Path], logs: &Path) -> Self {
        let mut command = cli_command();
        command
            .arg("import")
            .args(target)
            .args(["--follow", "--poll-interval", POLL, "--checkpoint"])
            .arg(checkpoint)
            .args(inputs);
        Follower::spawn(command, logs)
    }

    /// Spawns `command`, appending its output to `<logs>.stdout` and `<logs>.stderr`.
    fn spawn(mut command: Command, logs: &Path) -> Self {
        let stdout = logs.with_extension("stdout");
        let stderr = logs.with_extension("stderr");
        let open = |path: &Path| {
            OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .unwrap_or_else(|e| panic!("opening {}: {e}", path.display()))
        };
        let child = command
            .stdin(Stdio::null())
            .stdout(open(&stdout))
            .stderr(open(&stderr))
            .spawn()
            .expect("starting apitrail import --follow");
        Follower {
            child: Some(child),
            stdout,
            stderr,
        }
    }

    fn stdout(&self) -> String {
        fs::read_to_string(&self.stdout).unwrap_or_default()
    }

    fn stderr(&self) -> String {
        fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    fn wait(&mut self) -> ExitStatus {
        let child = self.child.as_mut().expect("the follower runs");
        let deadline = Instant::now() + FOLLOW_TIMEOUT;
        loop {
            if let Some(status) = child.try_wait().expect("waiting for the follower") {
                self.child = None;
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "the follower did not exit; stderr:\n{}",
                self.stderr()
            );
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// Stops the follower with SIGTERM and asserts that it exited with 0.
    fn stop(&mut self) {
        let pid = self.child.as_ref().expect("the follower runs").id();
        send_signal(pid, libc::SIGTERM);
        let status = self.wait();
        assert!(
            status.success(),
            "the follower exited with {} after SIGTERM\nstdout:\n{}\nstderr:\n{}",
            describe_exit(status),
            self.stdout(),
            self.stderr()
        );
    }

    /// Kills the follower with SIGKILL, as a crash would stop it.
    fn kill(&mut self) {
        let pid = self.child.as_ref().expect("the follower runs").id();
        send_signal(pid, libc::SIGKILL);
        self.wait();
    }
}

impl Drop for Follower {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        if thread::panicking() {
            eprintln!(
                "--- follower stdout ---\n{}\n--- follower stderr ---\n{}",
                self.stdout(),
                self.stderr()
            );
        }
    }
}

fn server_target(server: &TestServer) -> Vec<OsString> {
    vec!["--server".into(), server.url().into()]
}

/// Writes the directory of the import tests: plain, gzip and zstd members,
/// one nested, and hidden files that must be left out. Returns the number of lines imported.
fn write_log_dir(dir: &Path, tag: &str) -> usize {
    fs::create_dir_all(dir.join("nested")).unwrap();
    fs::create_dir_all(dir.join(".cache")).unwrap();
    fs::write(dir.join("a.log"), lines(tag, 0..3)).unwrap();
    fs::write(dir.join("b.log.gz"), gzip(lines(tag, 3..5).as_bytes())).unwrap();
    fs::write(
        dir.join("nested/c.log.zst"),
        zstd(lines(tag, 5..9).as_bytes()),
    )
    .unwrap();
    fs::write(dir.join(".hidden.log"), lines("hidden", 0..2)).unwrap();
    fs::write(dir.join(".cache/d.log"), lines("hidden", 2..4)).unwrap();
    9
}

#[test]
fn directory_import_reads_members() {
    let server = TestServer::start(ServerOptions::no_flush());
    let dir = server.scratch_dir().join("logs");
    let expected = write_log_dir(&dir, "dir");

    let output = import_server(&server, &[&dir]);
    assert_success(&output, "import DIR");
    let stdout = stdout_text(&output);
    for (name, accepted) in [("a.log", 3), ("b.log.gz", 2), ("nested/c.log.zst", 4)] {
        let expected_line = format!(
            "{}: {accepted} accepted, 0 rejected, 0 skipped (format clf)",
            dir.join(name).display()
        );
        assert!(
            stdout.lines().any(|l| l == expected_line),
            "missing `{expected_line}` in:\n{stdout}"
        );
    }
    assert_eq!(
        total_line(&stdout),
        "total: 3 files imported, 0 already imported, 0 failed; 9 accepted, 0 rejected, 0 skipped"
    );
    assert_each_line_once(&server, "dir", expected);
    assert_eq!(
        server.count("path LIKE '/t/hidden/%'"),
        0,
        "hidden files and directories are left out"
    );
}

#[test]
fn glob_pattern_is_expanded() {
    let server = TestServer::start(ServerOptions::no_flush());
    let dir = server.scratch_dir().join("glob");
    fs::create_dir_all(&dir).unwrap();
    fs::write(dir.join("x1.log.gz"), gzip(lines("glob", 0..2).as_bytes())).unwrap();
    fs::write(dir.join("x2.log.gz"), gzip(lines("glob", 2..5).as_bytes())).unwrap();
    fs::write(dir.join("x3.log"), lines("other", 0..4)).unwrap();
    fs::write(
        dir.join(".x4.log.gz"),
        gzip(lines("other", 4..6).as_bytes()),
    )
    .unwrap();

    // run_cli starts no shell, so the pattern reaches apitrail as typed.
    let pattern = dir.join("*.gz");
    let output = import_server(&server, &[&pattern]);
    assert_success(&output, "import 'DIR/*.gz'");
    assert_eq!(
        total_line(&stdout_text(&output)),
        "total: 2 files imported, 0 already imported, 0 failed; 5 accepted, 0 rejected, 0 skipped"
    );
    assert_each_line_once(&server, "glob", 5);
    assert_eq!(server.count("path LIKE '/t/other/%'"), 0);

    let nothing = dir.join("*.csv");
    let output = import_server(&server, &[&nothing, &dir.join("x3.log")]);
    assert!(
        !output.status.success(),
        "a pattern without a match must fail the command:\n{}",
        stdout_text(&output)
    );
    let stderr = stderr_text(&output);
    assert!(
        stderr.contains("matches no regular"),
        "the error names the empty pattern:\n{stderr}"
    );
    assert_eq!(
        total_line(&stdout_text(&output)),
        "total: 1 files imported, 0 already imported, 1 failed; 4 accepted, 0 rejected, 0 skipped",
        "the other input is still imported"
    );
}

#[test]
fn reimport_via_server_adds_nothing() {
    let server = TestServer::start(ServerOptions::no_flush());
    let dir = server.scratch_dir().join("logs");
    let expected = write_log_dir(&dir, "again");
    assert_success(&import_server(&server, &[&dir]), "first import");

    let output = import_server(&server, &[&dir]);
    assert_success(&output, "second import");
    let stdout = stdout_text(&output);
    assert_eq!(
        stdout.matches("already imported (same content)").count(),
        3,
        "each member is recognised:\n{stdout}"
    );
    assert_eq!(
        total_line(&stdout),
        "total: 0 files imported, 3 already imported, 0 failed; 0 accepted, 0 rejected, 0 skipped"
    );

    // The same content, compressed differently and under another name.
    let copy = server.scratch_dir().join("a-copy.log.zst");
    fs::write(&copy, zstd(lines("again", 0..3).as_bytes())).unwrap();
    let stdout = stdout_text(&import_server(&server, &[&copy]));
    assert!(
        stdout.contains("already imported"),
        "a recompressed copy counts as imported:\n{stdout}"
    );
    assert_each_line_once(&server, "again", expected);
}

#[test]
fn reimport_into_data_dir_adds_nothing() {
    let scratch = tempfile::tempdir().expect("creating a temporary directory");
    let data_dir = scratch.path().join("data");
    let dir = scratch.path().join("logs");
    let expected = write_log_dir(&dir, "direct");

    let output = import_data_dir(&data_dir, &[&dir]);
    assert_success(&output, "first import --data-dir");
    assert_eq!(
        total_line(&stdout_text(&output)),
        "total: 3 files imported, 0 already imported, 0 failed; 9 accepted, 0 rejected, 0 skipped"
    );
    let output = import_data_dir(&data_dir, &[&dir, &dir.join("nested/c.log.zst")]);
    assert_success(&output, "second import --data-dir");
    assert_eq!(
        total_line(&stdout_text(&output)),
        "total: 0 files imported, 4 already imported, 0 failed; 0 accepted, 0 rejected, 0 skipped"
    );
    assert_eq!(count_data_dir(&data_dir, ""), expected as i64);
}

/// Follows one file through appends, a line written in two parts, and a
/// rename-and-create rotation during which the old file still grows.
#[test]
fn follow_appends_and_rename_rotation() {
    let server = TestServer::start(ServerOptions::no_flush());
    let scratch = server.scratch_dir();
    let log = scratch.join("access.log");
    append(&log, &lines("rename", 0..5));
    let mut follower = Follower::start(
        &server_target(&server),
        &scratch.join("follow.json"),
        &[&log],
        &scratch.join("follower"),
    );
    wait_for_lines(&server, "rename", 5);

    let split = line("rename", 8);
    let (first, second) = split.split_at(20);
    append(&log, &lines("rename", 5..8));
    append(&log, first);
    wait_for_lines(&server, "rename", 8);
    thread::sleep(Duration::from_millis(500));
    assert_eq!(
        server.count("path LIKE '/t/rename/%'"),
        8,
        "a line without its newline is held back"
    );
    append(&log, second);
    wait_for_lines(&server, "rename", 9);

    // The writer still has the old file open after the rename.
    let rotated = scratch.join("access.log.1");
    fs::rename(&log, &rotated).unwrap();
    append(&rotated, &lines("rename", 9..12));
    append(&log, &lines("rename", 12..15));
    wait_for_lines(&server, "rename", 15);

    follower.stop();
    let stdout = follower.stdout();
    assert!(
        total_line(&stdout).starts_with("total: 2 files followed"),
        "{stdout}"
    );
}

/// Follows a directory through a copytruncate rotation that happens
/// between two polls, so lines not yet read are only in the copy.
#[test]
fn follow_copytruncate_rotation() {
    let server = TestServer::start(ServerOptions::no_flush());
    let scratch = server.scratch_dir();
    let dir = scratch.join("logs");
    fs::create_dir_all(&dir).unwrap();
    let log = dir.join("access.log");
    append(&log, &lines("copy", 0..5));
    let mut command = cli_command();
    command
        .args(["import", "--server", server.url(), "--follow"])
        .args(["--poll-interval", "1", "--checkpoint"])
        .arg(scratch.join("follow.json"))
        .arg(&dir);
    let mut follower = Follower::spawn(command, &scratch.join("follower"));
    wait_for_lines(&server, "copy", 5);

    append(&log, &lines("copy", 5..10));
    fs::copy(&log, dir.join("access.log.1")).unwrap();
    File::options()
        .write(true)
        .open(&log)
        .and_then(|f| f.set_len(0))
        .unwrap();
    append(&log, &lines("copy", 10..13));
    wait_for_lines(&server, "copy", 13);
    thread::sleep(Duration::from_secs(2));
    assert_each_line_once(&server, "copy", 13);
    follower.stop();
}

/// Kills the follower between batches and starts it again from its
/// checkpoint: every line is stored exactly once.
#[test]
fn follow_restarts_from_checkpoint() {
    let server = TestServer::start(ServerOptions::no_flush());
    let scratch = server.scratch_dir();
    let log = scratch.join("access.log");
    let checkpoint = scratch.join("state/follow.json");
    let target = server_target(&server);
    let logs = scratch.join("follower");

    append(&log, &lines("restart", 0..4));
    let mut follower = Follower::start(&target, &checkpoint, &[&log], &logs);
    wait_for_lines(&server, "restart", 4);
    follower.kill();

    append(&log, &lines("restart", 4..9));
    let mut follower = Follower::start(&target, &checkpoint, &[&log], &logs);
    wait_for_lines(&server, "restart", 9);
    follower.kill();

    // Rotated while no follower runs: the renamed file is followed too.
    append(&log, &lines("restart", 9..11));
    let rotated = scratch.join("access.log.1");
    fs::rename(&log, &rotated).unwrap();
    append(&log, &lines("restart", 11..14));
    let mut follower = Follower::start(&target, &checkpoint, &[&log, &rotated], &logs);
    wait_for_lines(&server, "restart", 14);
    follower.stop();

    let saved: serde_json::Value =
        serde_json::from_slice(&fs::read(&checkpoint).expect("the checkpoint exists")).unwrap();
    let offsets: Vec<u64> = saved["files"]
        .as_object()
        .expect("files by key")
        .values()
        .map(|entry| entry["offset"].as_u64().expect("an offset"))
        .collect();
    let sizes = fs::metadata(&log).unwrap().len() + fs::metadata(&rotated).unwrap().len();
    assert_eq!(
        offsets.iter().sum::<u64>(),
        sizes,
        "the checkpoint ends at the end of both files: {saved}"
    );
}

/// The server crashes after storing a batch and before responding. The
/// follower stops while it waits to try again, and a new follower sends the
/// unacknowledged batch with the same bytes and id, so nothing is stored
/// twice even though the file grew meanwhile.
#[test]
fn follow_resends_unacknowledged_batch() {
    let mut server =
        TestServer::start(ServerOptions::no_flush().with_failpoint("ingest_after_chunk"));
    let scratch = server.scratch_dir().to_path_buf();
    let log = scratch.join("access.log");
    let checkpoint = scratch.join("follow.json");
    let logs = scratch.join("follower");
    append(&log, &lines("resend", 0..5));
    let mut follower = Follower::start(&server_target(&server), &checkpoint, &[&log], &logs);
    let status = server.wait_for_exit(FOLLOW_TIMEOUT);
    assert!(!status.success(), "the server aborts at the crash point");
    poll_until(FOLLOW_TIMEOUT, "the follower to retry", || {
        follower.stderr().contains("not stored yet").then_some(())
    });
    follower.stop();
    let saved: serde_json::Value =
        serde_json::from_slice(&fs::read(&checkpoint).expect("the checkpoint exists")).unwrap();
    let entry = saved["files"]
        .as_object()
        .and_then(|files| files.values().next())
        .cloned()
        .unwrap_or_else(|| panic!("one file in {saved}"));
    assert_eq!(entry["offset"], 0, "nothing acknowledged: {entry}");
    assert_eq!(
        entry["pending"]["end_line"], 5,
        "the unacknowledged batch is recorded: {entry}"
    );

    server.restart_with(ServerOptions::no_flush());
    append(&log, &lines("resend", 5..8));
    let mut follower = Follower::start(&server_target(&server), &checkpoint, &[&log], &logs);
    wait_for_lines(&server, "resend", 8);
    follower.stop();
    let stdout = follower.stdout();
    assert!(
        stdout.contains(&format!("{}: lines 1-5: 5 accepted", log.display())),
        "the first batch is sent again as it was:\n{stdout}"
    );
}

/// Follows into a data directory: each batch is one table commit, and a
/// restart after SIGKILL adds every line once.
#[test]
fn follow_into_data_dir() {
    let scratch = tempfile::tempdir().expect("creating a temporary directory");
    let data_dir = scratch.path().join("data");
    let log = scratch.path().join("access.log");
    let target: Vec<OsString> = vec!["--data-dir".into(), data_dir.clone().into()];
    let checkpoint = data_dir.join("follow-checkpoint.json");
    let logs = scratch.path().join("follower");
    let filter = "WHERE path LIKE '/t/direct/%'";

    append(&log, &lines("direct", 0..6));
    let mut follower = Follower::start(&target, &checkpoint, &[&log], &logs);
    wait_for_data_dir_rows(&data_dir, filter, 6);
    follower.kill();

    append(&log, &lines("direct", 6..10));
    let mut follower = Follower::start(&target, &checkpoint, &[&log], &logs);
    wait_for_data_dir_rows(&data_dir, filter, 10);
    follower.stop();
    assert_eq!(count_data_dir(&data_dir, filter), 10);
    assert_eq!(
        count_data_dir(&data_dir, "WHERE path = '/t/direct/7'"),
        1,
        "a line sent after the restart is stored once"
    );
}

/// A Zeek log's header describes its columns, so later batches need it:
/// the follower sends it again as context, and every record parses as in
/// a whole-file import.
#[test]
fn follow_keeps_zeek_header() {
    // The sample's times are masked; real ones make its records valid.
    let sample = fs::read_to_string(realdata("zeek/zeek_http_header_names_wikipedia.log"))
        .expect("reading the Zeek sample");
    let text: String = sample
        .split_inclusive('\n')
        .filter(|line| !line.starts_with("###"))
        .map(|line| line.replace("XXXXXXXXXX.XXXXXX", "1700000000.000001"))
        .collect();
    let scratch = tempfile::tempdir().expect("creating a temporary directory");
    let whole_file = scratch.path().join("whole-http.log");
    fs::write(&whole_file, &text).unwrap();

    let whole = TestServer::start(ServerOptions::no_flush());
    let output = import_server(&whole, &[&whole_file]);
    assert_success(&output, "whole import");
    let whole_stdout = stdout_text(&output);
    let (_, whole_counts) = total_line(&whole_stdout)
        .split_once("failed; ")
        .expect("the total line counts records");
    let expected = whole.count("");
    assert!(expected > 2, "the sample has more than two records");

    // The header and the first two records, then the rest.
    let mut cut = 0;
    let mut records = 0;
    for piece in text.split_inclusive('\n') {
        cut += piece.len();
        if !piece.starts_with('#') {
            records += 1;
            if records == 2 {
                break;
            }
        }
    }
    let server = TestServer::start(ServerOptions::no_flush());
    let scratch = server.scratch_dir();
    let log = scratch.join("http.log");
    append(&log, &text[..cut]);
    let mut follower = Follower::start(
        &server_target(&server),
        &scratch.join("follow.json"),
        &[&log],
        &scratch.join("follower"),
    );
    poll_until(FOLLOW_TIMEOUT, "the first two records", || {
        (server.count("") == 2).then_some(())
    });
    append(&log, &text[cut..]);
    poll_until(FOLLOW_TIMEOUT, "every record", || {
        (server.count("") >= expected).then_some(())
    });
    follower.stop();
    assert_eq!(server.count(""), expected);

    let stdout = follower.stdout();
    let second_batch = format!(
        "{}: lines {}-",
        log.display(),
        text[..cut].lines().count() + 1
    );
    assert!(
        stdout.contains(&second_batch),
        "the second batch is numbered with file lines:\n{stdout}"
    );
    let (_, follow_counts) = total_line(&stdout)
        .split_once("failed; ")
        .expect("the total line counts records");
    assert_eq!(
        follow_counts, whole_counts,
        "following counts the records as a whole import does"
    );
}

/// `first_line` numbers the body's lines as file lines, and `context_lines`
/// are parsed without being stored or counted.
#[test]
fn ingest_numbers_lines_from_first_line() {
    let server = TestServer::start(ServerOptions::no_flush());
    let body = format!(
        "{}not a log line\n{}",
        line("numbered", 0),
        line("numbered", 1)
    );
    let (status, report) = server.api().ingest_request(
        &[
            ("format", "clf"),
            ("first_line", "41"),
            ("context_lines", "1"),
        ],
        None,
        body.into_bytes(),
    );
    assert_eq!(status, 200, "{report}");
    assert_eq!(
        report["accepted"], 1,
        "the context line is not stored: {report}"
    );
    assert_eq!(report["rejected"], 1, "{report}");
    assert_eq!(
        report["errors"][0]["line"], 41,
        "the first line after the context is line 41: {report}"
    );
    assert_eq!(server.count("path = '/t/numbered/1'"), 1);
    assert_eq!(server.count("path = '/t/numbered/0'"), 0);

    for (first_line, context_lines) in [("0", "0"), ("3", "3")] {
        let (status, report) = server.api().ingest_request(
            &[("first_line", first_line), ("context_lines", context_lines)],
            None,
            line("numbered", 2).into_bytes(),
        );
        assert_eq!(
            status, 400,
            "first_line={first_line} context_lines={context_lines}: {report}"
        );
        assert!(
            report["error"]
                .as_str()
                .is_some_and(|e| e.contains("first_line")),
            "{report}"
        );
    }
}

/// Builds `apitrail import --s3-endpoint ...` with test credentials.
fn s3_import_command(s3: &S3Server, target: &[OsString]) -> Command {
    let mut command = with_s3_credentials(cli_command());
    command
        .arg("import")
        .args(target)
        .args(["--s3-endpoint", s3.endpoint()]);
    command
}

/// Imports `s3://` prefixes through a server and into a data directory,
/// again without adding anything, and follows a prefix for new objects.
#[test]
fn s3_prefix_import_and_follow() {
    let server = TestServer::start(ServerOptions::no_flush());
    let scratch = server.scratch_dir();
    let s3 = S3Server::start(&scratch.join("moto.log"));
    let files = scratch.join("objects");
    fs::create_dir_all(&files).unwrap();
    let plain = files.join("a.log");
    let gz = files.join("b.log.gz");
    let zst = files.join("c.log.zst");
    let hidden = files.join("hidden.log");
    fs::write(&plain, lines("s3", 0..3)).unwrap();
    fs::write(&gz, gzip(lines("s3", 3..5).as_bytes())).unwrap();
    fs::write(&zst, zstd(lines("s3", 5..6).as_bytes())).unwrap();
    fs::write(&hidden, lines("s3-hidden", 0..2)).unwrap();
    s3.put(
        "logs",
        &[
            ("alb/a.log", &plain),
            ("alb/2024/b.log.gz", &gz),
            ("alb/2024/c.log.zst", &zst),
            ("alb/.staging/d.log", &hidden),
            ("elb/e.log", &hidden),
        ],
    );

    let target = server_target(&server);
    let mut command = s3_import_command(&s3, &target);
    command.arg("s3://logs/alb/");
    let output = run_command(command);
    assert_success(&output, "import s3://logs/alb/");
    let stdout = stdout_text(&output);
    assert!(
        stdout.contains("s3://logs/alb/2024/b.log.gz: 2 accepted, 0 rejected, 0 skipped"),
        "{stdout}"
    );
    assert_eq!(
        total_line(&stdout),
        "total: 3 files imported, 0 already imported, 0 failed; 6 accepted, 0 rejected, 0 skipped"
    );
    assert_each_line_once(&server, "s3", 6);

    let mut command = s3_import_command(&s3, &target);
    command.arg("s3://logs/alb/").arg("s3://logs/alb/a.log");
    let output = run_command(command);
    assert_success(&output, "second import of s3://logs/alb/");
    assert_eq!(
        total_line(&stdout_text(&output)),
        "total: 0 files imported, 4 already imported, 0 failed; 0 accepted, 0 rejected, 0 skipped"
    );
    assert_each_line_once(&server, "s3", 6);

    let data_dir = scratch.join("direct");
    let direct: Vec<OsString> = vec!["--data-dir".into(), data_dir.clone().into()];
    for (round, expected_total) in [
        (
            1,
            "total: 3 files imported, 0 already imported, 0 failed; 6 accepted, 0 rejected, 0 skipped",
        ),
        (
            2,
            "total: 0 files imported, 3 already imported, 0 failed; 0 accepted, 0 rejected, 0 skipped",
        ),
    ] {
        let mut command = s3_import_command(&s3, &direct);
        command.arg("s3://logs/alb/");
        let output = run_command(command);
        assert_success(
            &output,
            &format!("import --data-dir s3://logs/alb/, round {round}"),
        );
        assert_eq!(
            total_line(&stdout_text(&output)),
            expected_total,
            "round {round}"
        );
    }
    assert_eq!(count_data_dir(&data_dir, ""), 6);

    // Follow a prefix: objects that appear are imported once, across a restart.
    let checkpoint = scratch.join("follow-s3.json");
    let follow = |s3: &S3Server| {
        let mut command = s3_import_command(s3, &target);
        command
            .args(["--follow", "--poll-interval", "0.2", "--checkpoint"])
            .arg(&checkpoint)
            .arg("s3://logs/new/");
        Follower::spawn(command, &scratch.join("s3-follower"))
    };
    let new_a = files.join("new-a.log");
    let new_b = files.join("new-b.log.gz");
    fs::write(&new_a, lines("s3-new", 0..2)).unwrap();
    fs::write(&new_b, gzip(lines("s3-new", 2..5).as_bytes())).unwrap();
    let mut follower = follow(&s3);
    s3.put("logs", &[("new/a.log", &new_a)]);
    wait_for_lines(&server, "s3-new", 2);
    s3.put("logs", &[("new/b.log.gz", &new_b)]);
    wait_for_lines(&server, "s3-new", 5);
    follower.stop();
    assert!(
        total_line(&follower.stdout()).contains("2 objects imported"),
        "{}",
        follower.stdout()
    );

    let mut follower = follow(&s3);
    thread::sleep(Duration::from_secs(1));
    follower.stop();
    let stdout = follower.stdout();
    let last_total = stdout
        .lines()
        .rfind(|l| l.starts_with("total:"))
        .expect("a total line");
    assert!(
        last_total.contains("0 objects imported, 0 already imported"),
        "the restarted follower skips what its checkpoint lists:\n{stdout}"
    );
    assert_each_line_once(&server, "s3-new", 5);
}
