//! A local Azure Blob Storage service for the tests: Azurite's blob service
//! on a free port of 127.0.0.1, with its well-known development account.
//!
//! `tests/setup.sh` installs Azurite with npm into `tests/node/`. Each
//! server keeps its blobs in its own temporary directory and runs with
//! `--disableTelemetry`, because Azurite collects telemetry by default.
//!
//! [`AzureServer::storage_options`] point a store at it through the account
//! endpoint `http://127.0.0.1:<port>/devstoreaccount1`
//! (`azure_storage_endpoint`), path-style as Azurite expects, with the
//! account key set explicitly. object_store's emulator mode
//! (`azure_storage_use_emulator`) takes the port only from the
//! `AZURITE_BLOB_STORAGE_URL` environment variable, which
//! [`AzureServer::service_url`] gives.

use std::collections::HashMap;
use std::fs::File;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use tempfile::TempDir;

use crate::{clear_cloud_env, poll_until, python, run_command};

/// Azurite's development account, the same in every installation.
pub const ACCOUNT: &str = "devstoreaccount1";
/// Well-known key of [`ACCOUNT`], the same in Azurite and in object_store's
/// emulator mode. It opens nothing outside a local emulator.
pub const ACCOUNT_KEY: &str =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

/// An Azurite blob service, stopped when dropped.
pub struct AzureServer {
    child: Child,
    service_url: String,
    endpoint: String,
    // Azurite's blob data and metadata, removed after the process stops.
    _workspace: TempDir,
}

impl AzureServer {
    /// Starts `azurite-blob` from `tests/node/` and waits until it accepts connections.
    ///
    /// Its access log goes to the file `log`.
    pub fn start(log: &Path) -> Self {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("finding a free port")
            .port();
        let workspace = tempfile::tempdir().expect("creating Azurite's workspace");
        let azurite = azurite_path();
        let log = File::create(log).expect("creating the Azurite log");
        let child = Command::new(&azurite)
            .args(["--blobHost", "127.0.0.1", "--blobPort", &port.to_string()])
            .arg("--location")
            .arg(workspace.path())
            .arg("--disableTelemetry")
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("cloning the Azurite log handle"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e}", azurite.display()));
        poll_until(Duration::from_secs(30), "Azurite to listen", || {
            std::net::TcpStream::connect(("127.0.0.1", port))
                .ok()
                .map(|_| ())
        });
        AzureServer {
            child,
            service_url: format!("http://127.0.0.1:{port}"),
            endpoint: format!("http://127.0.0.1:{port}/{ACCOUNT}"),
            _workspace: workspace,
        }
    }

    /// URL of the blob service, such as `http://127.0.0.1:40123`: the value
    /// of `AZURITE_BLOB_STORAGE_URL` for object_store's emulator mode.
    pub fn service_url(&self) -> &str {
        &self.service_url
    }

    /// Account URL, such as `http://127.0.0.1:40123/devstoreaccount1`.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// Creates `container` if it does not exist.
    pub fn create_container(&self, container: &str) {
        self.tool(&["create", container]);
    }

    /// Lists the blob names under `prefix` in `container`, in name order.
    pub fn list(&self, container: &str, prefix: &str) -> Vec<String> {
        self.tool(&["list", container, prefix])
            .lines()
            .map(str::to_string)
            .collect()
    }

    /// Puts `text` at `blob` with `If-None-Match: *`; returns whether the
    /// service created it (`false` when it rejected the put because the blob exists).
    pub fn put_if_absent(&self, container: &str, blob: &str, text: &str) -> bool {
        match self.tool(&["put-if-absent", container, blob, text]).trim() {
            "created" => true,
            "exists" => false,
            other => panic!("azure_tool.py put-if-absent printed {other:?}"),
        }
    }

    /// object_store configuration keys that point a store at this service.
    pub fn storage_options(&self) -> HashMap<String, String> {
        [
            ("azure_storage_account_name", ACCOUNT),
            ("azure_storage_account_key", ACCOUNT_KEY),
            ("azure_storage_endpoint", self.endpoint.as_str()),
            ("azure_allow_http", "true"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
    }

    /// Builds the `[storage_options]` section of a server configuration for this service.
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
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("clients/azure_tool.py");
        let mut command = Command::new(python());
        clear_cloud_env(&mut command);
        command
            .arg(script)
            .arg(&self.endpoint)
            .args(args)
            .env("AZURE_STORAGE_ACCOUNT_KEY", ACCOUNT_KEY);
        let output = run_command(command);
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        assert!(
            output.status.success(),
            "azure_tool.py {args:?} failed with {}:\n{stdout}\n{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
        stdout
    }
}

impl Drop for AzureServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Returns the path of `azurite-blob` in `tests/node/`.
///
/// Panics with the set-up command when it is missing.
fn azurite_path() -> PathBuf {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("node/node_modules/.bin/azurite-blob");
    assert!(
        path.exists(),
        "{} is missing; run tests/setup.sh to install Azurite",
        path.display()
    );
    path
}
