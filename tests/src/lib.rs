//! Harness of the whole-server tests in `tests/tests/`.
//!
//! [`TestServer`] runs the `apitrail` binary on a fresh temporary data
//! directory with an ephemeral port, talks to it over HTTP with
//! `reqwest::blocking`, and can stop it with SIGTERM, crash it with SIGKILL
//! and start it again on the same directory. [`run_cli`] runs the command-line
//! tools. The binary must be built first with `cargo build -p apitrail-server`.

use std::fs::{self, File, OpenOptions};
use std::io::{BufRead, BufReader, Read};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;
use tempfile::TempDir;

pub mod azure;
pub mod s3;
pub mod store;

/// How long a server may take to print its listening line.
const START_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a server may take to exit after SIGTERM or a crash point.
const EXIT_TIMEOUT: Duration = Duration::from_secs(30);
/// How long one HTTP request or one command-line run may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);
/// Size of a WAL segment header in bytes. A segment of this size contains no records.
pub const WAL_HEADER_BYTES: u64 = 28;
/// Prefix of the line the server prints on stdout, last, when it is ready,
/// followed by `http://ADDR`, or `https://ADDR` with TLS on.
const LISTENING_PREFIX: &str = "apitrail listening on ";
/// Prefix of the line with the Flight SQL address, printed before the HTTP one.
const FLIGHT_PREFIX: &str = "apitrail flight sql listening on ";
/// Prefix of the line with the PostgreSQL address, printed before the HTTP one.
const PG_PREFIX: &str = "apitrail postgres listening on ";
/// End of the PostgreSQL line when the listener offers TLS.
const PG_TLS_SUFFIX: &str = " (tls)";
/// Prefix of the line with the OTLP/gRPC endpoint URL, printed before the HTTP one.
const OTLP_GRPC_PREFIX: &str = "apitrail otlp grpc listening on ";
/// Prefix of the line with the OTLP/HTTP base URL, printed before the HTTP one.
const OTLP_HTTP_PREFIX: &str = "apitrail otlp http listening on ";

/// Environment variables that the binary reads. The harness clears them so
/// that a developer's shell cannot change what a test runs.
const APITRAIL_ENV: &[&str] = &[
    "APITRAIL_CONFIG",
    "APITRAIL_DATA_DIR",
    "APITRAIL_HTTP_ADDR",
    "APITRAIL_FLIGHT_ADDR",
    "APITRAIL_PG_ADDR",
    "APITRAIL_OTLP_GRPC_ADDR",
    "APITRAIL_OTLP_HTTP_ADDR",
    "APITRAIL_STORE",
    "APITRAIL_FLUSH_MAX_AGE_SECS",
    "APITRAIL_FLUSH_MAX_ROWS",
    "APITRAIL_MAX_BODY_BYTES",
    "APITRAIL_TLS_CERT",
    "APITRAIL_TLS_KEY",
    "APITRAIL_QUERY_MAX_MEMORY_BYTES",
    "APITRAIL_QUERY_MAX_ROWS",
    "APITRAIL_QUERY_MAX_SCAN_BYTES",
    "APITRAIL_LOG_JSON",
    "APITRAIL_SECRET_KEY",
    "APITRAIL_SERVER",
    "APITRAIL_TOKEN",
    "APITRAIL_CA_CERT",
    "APITRAIL_AUTH_REQUIRED",
    "APITRAIL_FAILPOINT",
];

/// Names of the crash points of a flush, in the order a flush reaches them.
pub const FAILPOINTS: [&str; 5] = [
    "flush_before_write",
    "flush_after_parquet",
    "flush_after_commit",
    "flush_before_views",
    "flush_before_truncate",
];

/// Returns the path of the `apitrail` binary under the Cargo target directory.
///
/// Panics with the build command when the binary is missing.
pub fn binary_path() -> PathBuf {
    let workspace = workspace_root();
    let target_dir = match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) => workspace.join(dir),
        None => workspace.join("target"),
    };
    let binary = target_dir.join("debug").join("apitrail");
    assert!(
        binary.is_file(),
        "the apitrail binary is missing at {}: run `cargo build -p apitrail-server` first",
        binary.display()
    );
    binary
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the tests package sits inside the workspace")
        .to_path_buf()
}

/// Returns the Python interpreter of `tests/.venv`, which has the client drivers.
///
/// Panics with the set-up command when the environment is missing.
pub fn python() -> PathBuf {
    let path = workspace_root().join("tests/.venv/bin/python");
    assert!(
        path.exists(),
        "{} is missing; run tests/setup.sh to install the Python client drivers",
        path.display()
    );
    path
}

/// Runs `tests/clients/<script>` with the test Python and `args`, and returns its stdout.
///
/// Panics with the script's stdout and stderr when it exits with a failure,
/// so an assertion inside the script explains the test failure.
pub fn run_python(script: &str, args: &[&str]) -> String {
    let path = workspace_root().join("tests/clients").join(script);
    let output = Command::new(python())
        .arg(&path)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("running {}: {e}", path.display()));
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "{script} {args:?} exited with {}\n--- stdout:\n{stdout}\n--- stderr:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

/// Returns the path of a real log sample, given relative to the sample directory.
///
/// The samples are read in place and never copied into the repository.
/// `APITRAIL_REALDATA` names the sample directory; by default it is
/// `shared/realdata` beside the checkout.
pub fn realdata(relative: &str) -> PathBuf {
    let dir = match std::env::var_os("APITRAIL_REALDATA") {
        Some(dir) => PathBuf::from(dir),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/realdata"),
    };
    let path = dir.join(relative);
    assert!(
        path.is_file(),
        "real log sample {} is missing",
        path.display()
    );
    path
}

/// Counts the lines of a file that contain something other than whitespace.
pub fn non_blank_lines(path: &Path) -> u64 {
    let bytes = fs::read(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    bytes
        .split(|&b| b == b'\n')
        .filter(|line| !line.iter().all(u8::is_ascii_whitespace))
        .count() as u64
}

/// Compresses `data` with gzip.
pub fn gzip(data: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder
        .write_all(data)
        .expect("writing to a Vec cannot fail");
    encoder
        .finish()
        .expect("finishing a gzip stream in memory cannot fail")
}

/// Builds one combined-format access log line with the given time, path and status.
///
/// `time` is in the CLF form, such as `10/Oct/2023:13:55:36 +0000`.
pub fn clf_line(time: &str, path: &str, status: u16) -> String {
    format!(
        "192.0.2.10 - - [{time}] \"GET {path} HTTP/1.1\" {status} 512 \"-\" \"apitrail-tests/1.0\"\n"
    )
}

/// Polls `check` until it returns `Some`, and panics with `what` after `timeout`.
pub fn poll_until<T>(timeout: Duration, what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = check() {
            return value;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        thread::sleep(Duration::from_millis(50));
    }
}

/// Settings of one server process.
#[derive(Debug, Clone, Default)]
pub struct ServerOptions {
    /// `--flush-max-age-secs`, or the server's default of 30 seconds when `None`.
    pub flush_max_age_secs: Option<f64>,
    /// `--flush-max-rows`.
    pub flush_max_rows: Option<usize>,
    /// `--max-body-bytes`.
    pub max_body_bytes: Option<u64>,
    /// Crash point set through `APITRAIL_FAILPOINT`.
    pub failpoint: Option<String>,
    /// `--tls-cert` and `--tls-key`. The harness's HTTP client trusts the
    /// certificate as its root.
    pub tls: Option<TlsFiles>,
    /// Further command-line arguments after the ones above.
    pub extra_args: Vec<String>,
    /// Environment variables of the server process, set after the harness
    /// has cleared the `APITRAIL_*` and cloud variables.
    pub env: Vec<(String, String)>,
}

impl ServerOptions {
    /// Returns options that flush the buffer a fraction of a second after an ingest.
    pub fn quick_flush() -> Self {
        ServerOptions {
            flush_max_age_secs: Some(0.2),
            ..ServerOptions::default()
        }
    }

    /// Returns options that keep events in the WAL and buffer for an hour,
    /// which in a test means until shutdown.
    pub fn no_flush() -> Self {
        ServerOptions {
            flush_max_age_secs: Some(3600.0),
            ..ServerOptions::default()
        }
    }

    /// Returns these options with a crash point.
    pub fn with_failpoint(mut self, name: &str) -> Self {
        self.failpoint = Some(name.to_string());
        self
    }

    /// Returns these options with a body size limit.
    pub fn with_max_body_bytes(mut self, limit: u64) -> Self {
        self.max_body_bytes = Some(limit);
        self
    }

    /// Returns these options with TLS on, from a self-signed certificate.
    pub fn with_tls(mut self, files: TlsFiles) -> Self {
        self.tls = Some(files);
        self
    }
}

/// PEM files of a server certificate and its private key.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    /// Certificate file; a self-signed certificate is also the client's root.
    pub cert: PathBuf,
    /// Private key file.
    pub key: PathBuf,
}

/// HTTP client of one server, cheap to clone into threads.
#[derive(Debug, Clone)]
pub struct Api {
    base_url: String,
    client: reqwest::blocking::Client,
}

impl Api {
    /// Builds a client of `base_url` that trusts `root_cert` (PEM) besides the
    /// system roots, for servers with a self-signed certificate.
    fn new(base_url: String, root_cert: Option<&Path>) -> Self {
        let mut builder = reqwest::blocking::Client::builder().timeout(REQUEST_TIMEOUT);
        if let Some(path) = root_cert {
            let certificate = reqwest::Certificate::from_pem(&read_file(path))
                .unwrap_or_else(|e| panic!("{} is not a PEM certificate: {e}", path.display()));
            builder = builder.add_root_certificate(certificate);
        }
        let client = builder.build().expect("the HTTP client builds");
        Api { base_url, client }
    }

    /// Base URL such as `http://127.0.0.1:40123`, or `https://...` with TLS on.
    pub fn url(&self) -> &str {
        &self.base_url
    }

    /// Sends `GET path` and returns the status and the body text.
    pub fn get(&self, path: &str) -> (u16, String) {
        let response = self
            .client
            .get(format!("{}{path}", self.base_url))
            .send()
            .unwrap_or_else(|e| panic!("GET {path} failed: {e}"));
        let status = response.status().as_u16();
        let text = response
            .text()
            .unwrap_or_else(|e| panic!("reading the body of GET {path}: {e}"));
        (status, text)
    }

    /// Posts a log body to the ingest endpoint. With `format` `None`, the server detects the format.
    pub fn ingest(&self, format: Option<&str>, body: impl Into<Vec<u8>>) -> (u16, Value) {
        let params: Vec<(&str, &str)> = format.map(|f| ("format", f)).into_iter().collect();
        self.ingest_request(&params, None, body.into())
    }

    /// Posts a log body with the given query parameters and `Content-Encoding`.
    pub fn ingest_request(
        &self,
        params: &[(&str, &str)],
        content_encoding: Option<&str>,
        body: Vec<u8>,
    ) -> (u16, Value) {
        self.try_ingest_request(params, content_encoding, body)
            .unwrap_or_else(|e| panic!("ingest request failed: {e}"))
    }

    /// Like [`Api::ingest_request`], but returns transport errors, such as a
    /// refused connection after the server was killed, instead of panicking.
    pub fn try_ingest_request(
        &self,
        params: &[(&str, &str)],
        content_encoding: Option<&str>,
        body: Vec<u8>,
    ) -> Result<(u16, Value), reqwest::Error> {
        let mut request = self
            .client
            .post(format!("{}/api/v1/ingest", self.base_url))
            .query(params)
            .body(body);
        if let Some(encoding) = content_encoding {
            request = request.header(reqwest::header::CONTENT_ENCODING, encoding);
        }
        let response = request.send()?;
        let status = response.status().as_u16();
        let text = response.text()?;
        let value = serde_json::from_str(&text).unwrap_or_else(|e| {
            panic!("ingest answered {status} with a body that is not JSON ({e}): {text}")
        });
        Ok((status, value))
    }

    /// Runs SQL and returns the rows, or panics with the server's message on any status but 200.
    pub fn query(&self, sql: &str) -> Vec<Value> {
        let (status, value) = self.query_status(sql);
        assert_eq!(status, 200, "query {sql:?} failed with {status}: {value}");
        match value {
            Value::Array(rows) => rows,
            other => panic!("query {sql:?} returned JSON that is not an array: {other}"),
        }
    }

    /// Runs SQL and returns the status and the parsed JSON body.
    pub fn query_status(&self, sql: &str) -> (u16, Value) {
        let (status, _content_type, body) = self.query_output(sql, None);
        let value = serde_json::from_slice(&body).unwrap_or_else(|e| {
            panic!(
                "query {sql:?} answered {status} with a body that is not JSON ({e}): {}",
                String::from_utf8_lossy(&body)
            )
        });
        (status, value)
    }

    /// Runs SQL with `?output=NAME` and returns the status, the content type and the raw body.
    pub fn query_output(&self, sql: &str, output: Option<&str>) -> (u16, String, Vec<u8>) {
        let mut request = self
            .client
            .post(format!("{}/api/v1/query", self.base_url))
            .json(&serde_json::json!({ "sql": sql }));
        if let Some(output) = output {
            request = request.query(&[("output", output)]);
        }
        let response = request
            .send()
            .unwrap_or_else(|e| panic!("query {sql:?} could not be sent: {e}"));
        let status = response.status().as_u16();
        let content_type = response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        let body = response.bytes().unwrap_or_else(|e| {
            panic!("reading the result of {sql:?} (output {output:?}) failed: {e}")
        });
        (status, content_type, body.to_vec())
    }

    /// Runs `SELECT count(*)` with an optional `WHERE` clause and returns the count.
    pub fn count(&self, filter: &str) -> i64 {
        let sql = if filter.is_empty() {
            "SELECT count(*) AS n FROM events".to_string()
        } else {
            format!("SELECT count(*) AS n FROM events WHERE {filter}")
        };
        let rows = self.query(&sql);
        rows[0]["n"]
            .as_i64()
            .unwrap_or_else(|| panic!("count of {sql:?} is not an integer: {rows:?}"))
    }

    /// Reads one unlabelled value of `/metrics`, `None` when the metric is absent.
    pub fn metric(&self, name: &str) -> Option<f64> {
        let (status, text) = self.get("/metrics");
        assert_eq!(status, 200, "GET /metrics failed with {status}: {text}");
        text.lines().find_map(|line| {
            let (key, value) = line.split_once(' ')?;
            (key == name).then(|| value.trim().parse().ok()).flatten()
        })
    }

    /// Waits until a flush has run and the write buffer is empty.
    ///
    /// Call it only when no ingest is running, or the buffer may fill again.
    pub fn wait_for_empty_buffer(&self) {
        poll_until(
            Duration::from_secs(30),
            "the write buffer to be flushed empty",
            || {
                let flushes = self.metric("apitrail_flushes_total").unwrap_or(0.0);
                let buffered = self.metric("apitrail_buffer_rows").unwrap_or(f64::NAN);
                (flushes >= 1.0 && buffered == 0.0).then_some(())
            },
        );
    }

    /// Waits until flushes have committed at least `rows` rows to the table.
    pub fn wait_for_flushed_rows(&self, rows: u64) {
        poll_until(
            Duration::from_secs(30),
            &format!("{rows} rows to be flushed to the table"),
            || {
                let flushed = self.metric("apitrail_flushed_rows_total").unwrap_or(0.0);
                (flushed >= rows as f64).then_some(())
            },
        );
    }
}

/// One `apitrail serve` process on a temporary data directory.
///
/// The process is killed when the value is dropped. When a test panics, the
/// end of the server's stderr is printed to help explain the failure.
#[derive(Debug)]
pub struct TestServer {
    options: ServerOptions,
    api: Api,
    addresses: Addresses,
    child: Option<Child>,
    data_dir: PathBuf,
    stderr_path: PathBuf,
    // Dropped last, so the directory outlives the process.
    dir: TempDir,
}

impl TestServer {
    /// Starts a server on a new temporary data directory and waits until it listens.
    pub fn start(options: ServerOptions) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("apitrail-test-")
            .tempdir()
            .expect("creating a temporary directory");
        let data_dir = dir.path().join("data");
        let stderr_path = dir.path().join("server.stderr");
        let (child, addresses) = spawn_server(&options, &data_dir, &stderr_path);
        TestServer {
            api: Api::new(addresses.http.clone(), root_cert(&options)),
            options,
            addresses,
            child: Some(child),
            data_dir,
            stderr_path,
            dir,
        }
    }

    /// Returns the HTTP client of the running process.
    pub fn api(&self) -> &Api {
        &self.api
    }

    pub fn url(&self) -> &str {
        self.api.url()
    }

    /// Returns the Flight SQL endpoint, as `grpc://127.0.0.1:PORT`, or
    /// `grpc+tls://127.0.0.1:PORT` with TLS on.
    pub fn flight_url(&self) -> &str {
        self.addresses
            .flight
            .as_deref()
            .expect("the server printed no Flight SQL address")
    }

    /// Returns the OTLP/gRPC endpoint, as `http://127.0.0.1:PORT`, or
    /// `https://...` with TLS on, the form OTLP exporters take.
    pub fn otlp_grpc_url(&self) -> &str {
        self.addresses
            .otlp_grpc
            .as_deref()
            .expect("the server printed no OTLP/gRPC address")
    }

    /// Returns the OTLP/HTTP base URL, as `http://127.0.0.1:PORT`, or
    /// `https://...` with TLS on; exports go to `/v1/traces` and `/v1/logs` under it.
    pub fn otlp_http_url(&self) -> &str {
        self.addresses
            .otlp_http
            .as_deref()
            .expect("the server printed no OTLP/HTTP address")
    }

    /// Returns the PostgreSQL address, as `127.0.0.1:PORT`.
    pub fn pg_addr(&self) -> &str {
        self.addresses
            .pg
            .as_deref()
            .expect("the server printed no PostgreSQL address")
    }

    /// Checks whether the server announced TLS on all its listeners; panics
    /// when only some of its start-up lines show TLS.
    pub fn tls_enabled(&self) -> bool {
        let Addresses {
            http,
            flight,
            pg_tls,
            otlp_grpc,
            otlp_http,
            ..
        } = &self.addresses;
        let http_tls = http.starts_with("https://");
        let flight_tls = flight
            .as_deref()
            .is_some_and(|url| url.starts_with("grpc+tls://"));
        let otlp_tls = [otlp_grpc, otlp_http].iter().all(|url| {
            url.as_deref()
                .is_some_and(|url| url.starts_with("https://"))
        });
        assert!(
            http_tls == flight_tls && http_tls == *pg_tls && http_tls == otlp_tls,
            "the start-up lines disagree on TLS: {:?}",
            self.addresses
        );
        http_tls
    }

    /// Returns the scheme of the HTTP API, `http` or `https`.
    pub fn http_scheme(&self) -> &str {
        self.url()
            .split_once("://")
            .map_or("", |(scheme, _)| scheme)
    }

    /// Returns the server's data directory.
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// Returns a scratch directory next to the data directory, removed with the server.
    pub fn scratch_dir(&self) -> &Path {
        self.dir.path()
    }

    /// Reads everything the server processes of this test wrote to stderr so far.
    pub fn stderr(&self) -> String {
        fs::read_to_string(&self.stderr_path).unwrap_or_default()
    }

    pub fn ingest(&self, format: Option<&str>, body: impl Into<Vec<u8>>) -> (u16, Value) {
        self.api.ingest(format, body)
    }

    pub fn query(&self, sql: &str) -> Vec<Value> {
        self.api.query(sql)
    }

    pub fn query_status(&self, sql: &str) -> (u16, Value) {
        self.api.query_status(sql)
    }

    pub fn count(&self, filter: &str) -> i64 {
        self.api.count(filter)
    }

    /// Returns the process id of the running server.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("the server is running").id()
    }

    /// Sends SIGTERM, waits for the process to exit and returns its exit status.
    pub fn sigterm_and_wait(&mut self) -> ExitStatus {
        send_signal(self.pid(), libc::SIGTERM);
        self.wait_for_exit(EXIT_TIMEOUT)
    }

    /// Sends SIGTERM, waits, and asserts that the server exited with status 0.
    pub fn stop(&mut self) {
        let status = self.sigterm_and_wait();
        assert!(
            status.success(),
            "the server exited with {status} after SIGTERM, expected 0; stderr:\n{}",
            tail(&self.stderr(), 40)
        );
    }

    /// Kills the process with SIGKILL, as a power cut would stop it, and reaps it.
    pub fn sigkill(&mut self) {
        send_signal(self.pid(), libc::SIGKILL);
        self.wait_for_exit(EXIT_TIMEOUT);
    }

    /// Waits for the process to exit on its own, such as at a crash point.
    ///
    /// Panics with the server's stderr if it is still running after `timeout`.
    pub fn wait_for_exit(&mut self, timeout: Duration) -> ExitStatus {
        let child = self.child.as_mut().expect("the server is running");
        let deadline = Instant::now() + timeout;
        loop {
            match child.try_wait() {
                Ok(Some(status)) => {
                    self.child = None;
                    return status;
                }
                Ok(None) => {}
                Err(e) => panic!("waiting for the server process failed: {e}"),
            }
            if Instant::now() >= deadline {
                panic!(
                    "the server was still running {timeout:?} after it was expected to exit; stderr:\n{}",
                    tail(&self.stderr(), 40)
                );
            }
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// Checks whether the process has exited, and reaps it if so.
    pub fn has_exited(&mut self) -> bool {
        match self.child.as_mut() {
            None => true,
            Some(child) => match child.try_wait() {
                Ok(Some(_)) => {
                    self.child = None;
                    true
                }
                Ok(None) => false,
                Err(e) => panic!("checking the server process failed: {e}"),
            },
        }
    }

    /// Starts the server again on the same data directory with the same options.
    pub fn restart(&mut self) {
        let options = self.options.clone();
        self.restart_with(options);
    }

    /// Starts the server again on the same data directory with new options.
    ///
    /// Panics if the previous process is still running.
    pub fn restart_with(&mut self, options: ServerOptions) {
        assert!(
            self.has_exited(),
            "restart requested while the server process {} is still running; stop or kill it first",
            self.pid()
        );
        let (child, addresses) = spawn_server(&options, &self.data_dir, &self.stderr_path);
        self.api = Api::new(addresses.http.clone(), root_cert(&options));
        self.options = options;
        self.addresses = addresses;
        self.child = Some(child);
    }

    /// Lists every regular file under the data directory, recursively.
    pub fn data_files(&self) -> Vec<PathBuf> {
        let mut files = Vec::new();
        collect_files(&self.data_dir, &mut files);
        files.sort();
        files
    }

    /// Lists the WAL segments (`wal/*.wal`), sorted by name and so by first LSN.
    pub fn wal_segments(&self) -> Vec<PathBuf> {
        let wal_dir = self.data_dir.join("wal");
        let mut segments: Vec<PathBuf> = fs::read_dir(&wal_dir)
            .unwrap_or_else(|e| panic!("listing {}: {e}", wal_dir.display()))
            .map(|entry| entry.expect("reading a WAL directory entry").path())
            .filter(|path| path.extension().is_some_and(|ext| ext == "wal"))
            .collect();
        segments.sort();
        segments
    }

    /// Sums the bytes of WAL records on disk: the segment sizes minus their headers.
    pub fn wal_record_bytes(&self) -> u64 {
        self.wal_segments()
            .iter()
            .map(|path| {
                let size = fs::metadata(path)
                    .unwrap_or_else(|e| panic!("reading the size of {}: {e}", path.display()))
                    .len();
                size.saturating_sub(WAL_HEADER_BYTES)
            })
            .sum()
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        if thread::panicking() {
            eprintln!(
                "--- end of the apitrail server's stderr ({}) ---\n{}",
                self.stderr_path.display(),
                tail(&self.stderr(), 60)
            );
        }
    }
}

fn collect_files(dir: &Path, files: &mut Vec<PathBuf>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries {
        let path = entry.expect("reading a directory entry").path();
        if path.is_dir() {
            collect_files(&path, files);
        } else if path.is_file() {
            files.push(path);
        }
    }
}

fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// Prefixes of the environment variables with which object_store and the
/// cloud SDKs find credentials and endpoints. object_store reads Azurite's
/// address from `AZURITE_BLOB_STORAGE_URL`.
const CLOUD_ENV_PREFIXES: &[&str] = &["AWS_", "GOOGLE_", "AZURE_", "AZURITE_"];

/// Clears the cloud variables of a developer's shell, so that a test never
/// reaches a real cloud with them.
pub fn clear_cloud_env(command: &mut Command) {
    for (name, _) in std::env::vars_os() {
        let text = name.to_string_lossy();
        if CLOUD_ENV_PREFIXES.iter().any(|p| text.starts_with(p)) {
            command.env_remove(&name);
        }
    }
}

/// Builds `apitrail serve --data-dir DIR` with every listener on
/// `127.0.0.1:0` and no `APITRAIL_*` or cloud variables set, for tests
/// that drive the process themselves.
pub fn serve_command(data_dir: &Path) -> Command {
    let mut command = Command::new(binary_path());
    command
        .arg("serve")
        .arg("--data-dir")
        .arg(data_dir)
        .args(["--http-addr", "127.0.0.1:0"])
        .args(["--flight-addr", "127.0.0.1:0"])
        .args(["--pg-addr", "127.0.0.1:0"])
        .args(["--otlp-grpc-addr", "127.0.0.1:0"])
        .args(["--otlp-http-addr", "127.0.0.1:0"]);
    for name in APITRAIL_ENV {
        command.env_remove(name);
    }
    clear_cloud_env(&mut command);
    command
}

/// Where one server process listens, as it printed on stdout.
#[derive(Debug, Clone)]
struct Addresses {
    /// Base URL of the HTTP API.
    http: String,
    /// Flight SQL endpoint URL.
    flight: Option<String>,
    /// PostgreSQL `host:port`.
    pg: Option<String>,
    /// Whether the PostgreSQL line ended with ` (tls)`.
    pg_tls: bool,
    /// OTLP/gRPC endpoint URL.
    otlp_grpc: Option<String>,
    /// OTLP/HTTP base URL.
    otlp_http: Option<String>,
}

/// Returns the certificate that the harness's HTTP client trusts for `options`.
fn root_cert(options: &ServerOptions) -> Option<&Path> {
    options.tls.as_ref().map(|files| files.cert.as_path())
}

/// Spawns `apitrail serve` and returns the child and its addresses.
fn spawn_server(
    options: &ServerOptions,
    data_dir: &Path,
    stderr_path: &Path,
) -> (Child, Addresses) {
    let stderr = OpenOptions::new()
        .create(true)
        .append(true)
        .open(stderr_path)
        .unwrap_or_else(|e| panic!("opening {}: {e}", stderr_path.display()));
    let mut command = serve_command(data_dir);
    if let Some(age) = options.flush_max_age_secs {
        command.args(["--flush-max-age-secs", &age.to_string()]);
    }
    if let Some(rows) = options.flush_max_rows {
        command.args(["--flush-max-rows", &rows.to_string()]);
    }
    if let Some(limit) = options.max_body_bytes {
        command.args(["--max-body-bytes", &limit.to_string()]);
    }
    if let Some(tls) = &options.tls {
        command.arg("--tls-cert").arg(&tls.cert);
        command.arg("--tls-key").arg(&tls.key);
    }
    command.args(&options.extra_args);
    if let Some(failpoint) = &options.failpoint {
        command.env("APITRAIL_FAILPOINT", failpoint);
    }
    command.envs(options.env.iter().map(|(name, value)| (name, value)));
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(stderr)
        .spawn()
        .unwrap_or_else(|e| panic!("starting {} failed: {e}", binary_path().display()));

    // A thread reads stdout to its end, so the server never writes to a closed pipe.
    let stdout = child.stdout.take().expect("stdout is piped");
    let (sender, receiver) = mpsc::channel();
    thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            let _ = sender.send(line);
        }
    });

    let read_stderr = || tail(&fs::read_to_string(stderr_path).unwrap_or_default(), 40);
    let deadline = Instant::now() + START_TIMEOUT;
    let (mut flight, mut pg, mut pg_tls) = (None, None, false);
    let (mut otlp_grpc, mut otlp_http) = (None, None);
    loop {
        let remaining = deadline.saturating_duration_since(Instant::now());
        match receiver.recv_timeout(remaining.max(Duration::from_millis(1))) {
            Ok(line) => {
                if let Some(url) = line.strip_prefix(FLIGHT_PREFIX) {
                    flight = Some(url.trim().to_string());
                } else if let Some(rest) = line.strip_prefix(PG_PREFIX) {
                    let rest = rest.trim();
                    let addr = rest.strip_suffix(PG_TLS_SUFFIX);
                    pg_tls = addr.is_some();
                    pg = Some(addr.unwrap_or(rest).to_string());
                } else if let Some(url) = line.strip_prefix(OTLP_GRPC_PREFIX) {
                    otlp_grpc = Some(url.trim().to_string());
                } else if let Some(url) = line.strip_prefix(OTLP_HTTP_PREFIX) {
                    otlp_http = Some(url.trim().to_string());
                } else if let Some(url) = line.strip_prefix(LISTENING_PREFIX) {
                    let http = url.trim().to_string();
                    let addresses = Addresses {
                        http,
                        flight,
                        pg,
                        pg_tls,
                        otlp_grpc,
                        otlp_http,
                    };
                    return (child, addresses);
                }
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                let status = child.wait().map(|s| s.to_string()).unwrap_or_default();
                panic!(
                    "the server exited ({status}) before printing its listening line; stderr:\n{}",
                    read_stderr()
                );
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "the server did not print `{LISTENING_PREFIX}...` within {START_TIMEOUT:?}; stderr:\n{}",
                    read_stderr()
                );
            }
        }
    }
}

/// Sends `signal`, such as `libc::SIGTERM`, to the process `pid`.
#[expect(
    unsafe_code,
    reason = "libc::kill is the only way to send SIGTERM from std"
)]
pub fn send_signal(pid: u32, signal: libc::c_int) {
    let pid = libc::pid_t::try_from(pid).expect("process ids fit in pid_t");
    // SAFETY: kill(2) takes plain integers and touches no memory of this process.
    let result = unsafe { libc::kill(pid, signal) };
    assert_eq!(
        result,
        0,
        "kill({pid}, {signal}) failed: {}",
        std::io::Error::last_os_error()
    );
}

/// Builds a command of the `apitrail` binary with no `APITRAIL_*` variables
/// set, for tests that run a command-line tool in the background or with
/// other variables.
pub fn cli_command() -> Command {
    let mut command = Command::new(binary_path());
    for name in APITRAIL_ENV {
        command.env_remove(name);
    }
    clear_cloud_env(&mut command);
    command
}

/// Runs the `apitrail` binary with `args`, with no `APITRAIL_*` variables set.
///
/// Panics if it runs longer than a minute.
pub fn run_cli<I, S>(args: I) -> Output
where
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
{
    let mut command = cli_command();
    command.args(args);
    run_command(command)
}

/// Runs `command` with its output captured and returns the output.
///
/// Panics if it runs longer than a minute.
pub fn run_command(mut command: Command) -> Output {
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("starting {} failed: {e}", binary_path().display()));
    let stdout = read_in_thread(child.stdout.take().expect("stdout is piped"));
    let stderr = read_in_thread(child.stderr.take().expect("stderr is piped"));

    let deadline = Instant::now() + REQUEST_TIMEOUT;
    let status = loop {
        if let Some(status) = child.try_wait().expect("waiting for the command") {
            break status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the apitrail command ran longer than {REQUEST_TIMEOUT:?}");
        }
        thread::sleep(Duration::from_millis(20));
    };
    Output {
        status,
        stdout: stdout.join().expect("the stdout reader does not panic"),
        stderr: stderr.join().expect("the stderr reader does not panic"),
    }
}

fn read_in_thread(mut pipe: impl Read + Send + 'static) -> thread::JoinHandle<Vec<u8>> {
    thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = pipe.read_to_end(&mut bytes);
        bytes
    })
}

/// Describes how a process ended, such as `signal 6` for an abort.
pub fn describe_exit(status: ExitStatus) -> String {
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exit code {code}"),
        (None, Some(signal)) => format!("signal {signal}"),
        _ => status.to_string(),
    }
}

/// Reads a whole file, with the path in the panic message when that fails.
pub fn read_file(path: &Path) -> Vec<u8> {
    let mut bytes = Vec::new();
    File::open(path)
        .and_then(|mut file| file.read_to_end(&mut bytes))
        .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    bytes
}

/// A token made by `apitrail token create`.
#[derive(Debug, Clone)]
pub struct Token {
    pub name: String,
    pub secret: String,
}

/// Creates a token with `roles` in `data_dir` through `apitrail token create --json`.
pub fn create_token(data_dir: &Path, name: &str, roles: &[&str]) -> Token {
    let mut args = vec!["token".to_owned(), "create".to_owned(), "--json".to_owned()];
    args.extend(["--data-dir".to_owned(), data_dir.display().to_string()]);
    for role in roles {
        args.extend(["--role".to_owned(), (*role).to_owned()]);
    }
    args.push(name.to_owned());
    let output = run_cli(&args);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "apitrail {args:?} failed with {}: {}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    let object: Value = serde_json::from_str(stdout.trim())
        .unwrap_or_else(|e| panic!("token create --json printed {stdout:?}: {e}"));
    Token {
        name: object["name"].as_str().expect("a token name").to_owned(),
        secret: object["secret"]
            .as_str()
            .expect("a token secret")
            .to_owned(),
    }
}
