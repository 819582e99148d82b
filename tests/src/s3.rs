//! A local S3-compatible server for the tests: moto in server mode on a
//! free port of 127.0.0.1, with fixed fake credentials.
//!
//! Every request goes to that port. The credentials are set explicitly and
//! every other `AWS_*` variable is cleared, so neither apitrail nor boto3
//! looks for a profile, a real endpoint or an instance metadata service.

use std::collections::HashMap;
use std::fs::File;
use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::{poll_until, python, run_command};

/// Access key id that moto accepts; it opens nothing anywhere else.
pub const ACCESS_KEY: &str = "testing";
/// Secret access key that moto accepts, distinct enough to be searched for in logs.
pub const SECRET_KEY: &str = "apitrail-test-secret-7f3a";
/// Region of the test buckets.
pub const REGION: &str = "us-east-1";

/// A moto S3 server, stopped when dropped.
pub struct S3Server {
    child: Child,
    endpoint: String,
}

impl S3Server {
    /// Starts `moto_server` from `tests/.venv` and waits until it accepts connections.
    ///
    /// Its output goes to the file `log`.
    pub fn start(log: &Path) -> Self {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("finding a free port")
            .port();
        let moto = python().with_file_name("moto_server");
        let log = File::create(log).expect("creating the moto log");
        let child = Command::new(&moto)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("cloning the moto log handle"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e}", moto.display()));
        let endpoint = format!("http://127.0.0.1:{port}");
        poll_until(Duration::from_secs(30), "moto to listen", || {
            std::net::TcpStream::connect(("127.0.0.1", port))
                .ok()
                .map(|_| ())
        });
        S3Server { child, endpoint }
    }

    /// Base URL, such as `http://127.0.0.1:40123`.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// Creates `bucket` if it does not exist.
    pub fn create_bucket(&self, bucket: &str) {
        self.tool(&["create", bucket]);
    }

    /// Lists the keys under `prefix` in `bucket`, in key order.
    pub fn list(&self, bucket: &str, prefix: &str) -> Vec<String> {
        self.tool(&["list", bucket, prefix])
            .lines()
            .map(str::to_string)
            .collect()
    }

    /// Puts `text` at `key` with `If-None-Match: *`; returns whether the
    /// server created it (`false` when it rejected the put with 412 because the key exists).
    pub fn put_if_absent(&self, bucket: &str, key: &str, text: &str) -> bool {
        match self.tool(&["put-if-absent", bucket, key, text]).trim() {
            "created" => true,
            "exists" => false,
            other => panic!("s3_tool.py put-if-absent printed {other:?}"),
        }
    }

    /// Uploads `key=file` pairs into `bucket`, creating it first.
    pub fn put(&self, bucket: &str, objects: &[(&str, &Path)]) {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("clients/s3_put.py");
        let mut command = Command::new(python());
        command.arg(script).arg(&self.endpoint).arg(bucket);
        for (key, path) in objects {
            command.arg(format!("{key}={}", path.display()));
        }
        let output = run_command(with_s3_credentials(command));
        assert!(
            output.status.success(),
            "s3_put.py failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }

    /// object_store configuration keys that point a store at this server.
    pub fn storage_options(&self) -> HashMap<String, String> {
        [
            ("aws_endpoint", self.endpoint.as_str()),
            ("aws_region", REGION),
            ("aws_access_key_id", ACCESS_KEY),
            ("aws_secret_access_key", SECRET_KEY),
            ("aws_allow_http", "true"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
    }

    /// Returns the `[storage_options]` section of a server configuration for this server.
    pub fn storage_options_toml(&self) -> String {
        let mut options: Vec<_> = self.storage_options().into_iter().collect();
        options.sort();
        let mut text = String::from("[storage_options]\n");
        for (key, value) in options {
            text.push_str(&format!("{key} = \"{value}\"\n"));
        }
        text
    }

    fn tool(&self, args: &[&str]) -> String {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("clients/s3_tool.py");
        let mut command = Command::new(python());
        command.arg(script).arg(&self.endpoint).args(args);
        let output = run_command(with_s3_credentials(command));
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        assert!(
            output.status.success(),
            "s3_tool.py {args:?} failed with {}:\n{stdout}\n{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
        stdout
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Sets the fixed credentials that moto accepts, and clears every other AWS variable.
pub fn with_s3_credentials(mut command: Command) -> Command {
    crate::clear_cloud_env(&mut command);
    command
        .env("AWS_ACCESS_KEY_ID", ACCESS_KEY)
        .env("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
        .env("AWS_REGION", REGION);
    command
}
