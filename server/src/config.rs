//! Server configuration: defaults, then a TOML file, then environment variables, then flags.
//!
//! Every field has a default, so `apitrail serve` runs with no configuration
//! at all. Environment variables are read by the command-line parser (each
//! flag names its variable in `--help`), so their precedence sits between the
//! file and the flags.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use apitrail_storage::StoreConfig;
use serde::Deserialize;
use url::Url;

/// Settings of `apitrail serve`, as read from the TOML file.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    /// Local directory for the WAL, the rejects file, keys and the default table.
    pub data_dir: PathBuf,
    /// Address of the HTTP API.
    pub http_addr: SocketAddr,
    /// Address of the Arrow Flight SQL service (gRPC).
    pub flight_addr: SocketAddr,
    /// Address of the PostgreSQL wire protocol service.
    pub pg_addr: SocketAddr,
    /// Address of the OpenTelemetry OTLP/gRPC receiver.
    pub otlp_grpc_addr: SocketAddr,
    /// Address of the OpenTelemetry OTLP/HTTP receiver.
    pub otlp_http_addr: SocketAddr,
    /// URL of the events table; `None` means `<data_dir>/table` on local disk.
    pub store: Option<String>,
    /// object_store configuration keys of a cloud store, such as `aws_endpoint`;
    /// they take precedence over the cloud's environment variables.
    pub storage_options: StorageOptions,
    /// How often other writers' commits to the store are loaded, in seconds.
    pub refresh_interval_secs: f64,
    /// Largest accepted ingest body, in bytes as sent (before decompression).
    pub max_body_bytes: u64,
    /// Flush the write buffer at this many rows.
    pub flush_max_rows: usize,
    /// Flush the write buffer when its Arrow data reaches this many bytes.
    pub flush_max_bytes: usize,
    /// Flush the write buffer when its oldest event has waited this many seconds.
    pub flush_max_age_secs: f64,
    /// Disk budget, in bytes, of the local staging files that hold flushes
    /// while the object store cannot take them. Beyond it, ingest returns 503.
    pub staging_max_bytes: u64,
    /// Seconds one commit to the object store may take before its flush is staged.
    pub commit_timeout_secs: f64,
    /// Memory all running queries may use together, in bytes.
    pub query_memory_bytes: usize,
    /// Time limit of one query, in seconds.
    pub query_timeout_secs: u64,
    /// Memory one query may use, in bytes, within `query_memory_bytes`; 0 for no per-query limit.
    pub query_max_memory_bytes: usize,
    /// Rows a result may have; a longer result is cut at this many rows. 0 for no limit.
    pub query_max_rows: u64,
    /// Bytes of data files one query may scan; a query over it is rejected before it runs. 0 for no limit.
    pub query_max_scan_bytes: u64,
    /// Key of the hash that replaces secrets, as `v<version>:<hex>`; `None`
    /// means the key file in the data directory, created on first start.
    pub secret_key: Option<String>,
    /// Keys used before the current one, as `v<version>:<hex>`, so that API
    /// keys also hash under them and consumer names survive a rotation.
    pub previous_secret_keys: Vec<String>,
    /// TOML file naming consumers (partner name, tier, time zone).
    pub consumer_map: Option<PathBuf>,
    /// Rules that decide who called, in order.
    pub identity: apitrail_ingest::IdentityConfig,
    /// Thresholds, pins and splits of the learning path templater.
    pub templater: apitrail_ingest::TemplaterConfig,
    /// Settings of the continuous views.
    pub views: ViewsConfig,
    /// Token requirements and the PostgreSQL password method.
    pub auth: AuthConfig,
    /// Certificate and key of the listeners; without them all are plain text.
    pub tls: TlsConfig,
    /// Parsing settings shared by every format.
    pub ingest: IngestConfig,
    /// Compaction, grace period and retention of the tables.
    pub lifecycle: LifecycleSection,
}

/// The `[lifecycle]` section: compaction, vacuum's grace period and retention.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct LifecycleSection {
    /// Size in bytes that compaction writes data files up to; smaller than half of it is small.
    pub compaction_target_bytes: u64,
    /// Small files a closed day needs before it is compacted.
    pub compaction_min_files: usize,
    /// Seconds a removed or orphaned data file stays before vacuum deletes it.
    pub grace_period_secs: u64,
    /// Days of events kept; unset keeps every day.
    pub retention_days: Option<u32>,
    /// Days of view hour buckets kept, at least `retention_days`; unset keeps every bucket.
    pub views_retention_days: Option<u32>,
    /// Seconds between two maintenance runs.
    pub interval_secs: u64,
}

impl Default for LifecycleSection {
    fn default() -> Self {
        let defaults = apitrail_storage::LifecycleConfig::default();
        LifecycleSection {
            compaction_target_bytes: defaults.compaction_target_bytes,
            compaction_min_files: defaults.compaction_min_files,
            grace_period_secs: defaults.grace_period.as_secs(),
            retention_days: defaults.retention_days,
            views_retention_days: defaults.views_retention_days,
            interval_secs: defaults.interval.as_secs(),
        }
    }
}

impl LifecycleSection {
    /// Converts the section to the store's settings, checking them.
    pub fn to_config(&self) -> anyhow::Result<apitrail_storage::LifecycleConfig> {
        if self.grace_period_secs == 0 {
            bail!(
                "[lifecycle] grace_period_secs must be at least 1: vacuum would delete files that running queries still read"
            );
        }
        let config = apitrail_storage::LifecycleConfig {
            compaction_target_bytes: self.compaction_target_bytes,
            compaction_min_files: self.compaction_min_files,
            grace_period: Duration::from_secs(self.grace_period_secs),
            retention_days: self.retention_days,
            views_retention_days: self.views_retention_days,
            interval: Duration::from_secs(self.interval_secs),
        };
        config
            .validate()
            .map_err(|e| anyhow::anyhow!("[lifecycle] {e}"))?;
        Ok(config)
    }
}

/// The `[storage_options]` section: object_store configuration keys and values.
///
/// Values may be credentials, so `Debug` shows the keys only.
#[derive(Clone, Default, Deserialize, PartialEq)]
#[serde(transparent)]
pub struct StorageOptions(pub BTreeMap<String, String>);

impl std::fmt::Debug for StorageOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_set().entries(self.0.keys()).finish()
    }
}

/// The `[ingest]` section.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct IngestConfig {
    /// How far after the server's clock an event's time may be; a record
    /// with a later event is rejected.
    pub future_tolerance_secs: u64,
    /// Field mappings of the generic `json` format, chosen by name with
    /// `mapping=NAME` (HTTP) or `--mapping NAME` (CLI).
    pub json_mappings: Vec<apitrail_ingest::JsonMappingConfig>,
}

impl Default for IngestConfig {
    fn default() -> Self {
        IngestConfig {
            future_tolerance_secs: 24 * 3600,
            json_mappings: Vec::new(),
        }
    }
}

/// The `[auth]` section. Tokens themselves live in the data directory.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct AuthConfig {
    /// Require a token on loopback listeners too, even before any token
    /// exists; listeners beyond loopback always require one.
    pub required: bool,
    /// Password method of PostgreSQL clients on TLS connections.
    /// Connections without TLS always use SCRAM-SHA-256.
    pub pg_password_method: PgPasswordMethod,
}

/// PostgreSQL password methods, named as in `pg_hba.conf`.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
pub enum PgPasswordMethod {
    /// SCRAM-SHA-256: the password never crosses the wire.
    #[default]
    #[serde(rename = "scram-sha-256")]
    ScramSha256,
    /// The password in clear text, for clients without SCRAM; only on TLS connections.
    #[serde(rename = "password")]
    Password,
}

/// The `[tls]` section: PEM files that turn on TLS for HTTP, Flight SQL,
/// PostgreSQL and the OTLP receivers together. Set both files or neither.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct TlsConfig {
    /// PEM file with the server certificate first, then any intermediate certificates.
    pub cert_file: Option<PathBuf>,
    /// PEM file with the certificate's private key (PKCS#8, PKCS#1 or SEC1).
    pub key_file: Option<PathBuf>,
}

/// The `[views]` section.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct ViewsConfig {
    /// A documented endpoint without calls for this many days before the newest call is an orphan.
    pub orphan_window_days: u32,
    /// Trailing window of `consumer_baselines`, in weeks.
    pub baseline_window_weeks: u32,
    /// Sightings from two sensors with one request or trace id this many seconds apart are one call; 0 disables.
    pub dedupe_id_window_secs: f64,
    /// Sightings from two sensors with one client, method and path this many seconds apart are one call; 0 disables.
    pub dedupe_match_window_secs: f64,
    /// Merge the views table into one row per key once it has this many data files.
    pub compact_files: usize,
    /// Memory for the `all` grain of the views table, kept merged by key for
    /// `endpoints` and `consumers`. A larger grain is read from the table on every query.
    pub all_grain_cache_bytes: usize,
}

impl Default for ViewsConfig {
    fn default() -> Self {
        let dedupe = apitrail_storage::views::DedupeConfig::default();
        ViewsConfig {
            orphan_window_days: 30,
            baseline_window_weeks: 4,
            dedupe_id_window_secs: dedupe.id_window as f64 / 1e6,
            dedupe_match_window_secs: dedupe.match_window as f64 / 1e6,
            compact_files: 64,
            all_grain_cache_bytes: 256 << 20,
        }
    }
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            data_dir: PathBuf::from("apitrail-data"),
            http_addr: SocketAddr::from(([127, 0, 0, 1], 7070)),
            flight_addr: SocketAddr::from(([127, 0, 0, 1], 7071)),
            pg_addr: SocketAddr::from(([127, 0, 0, 1], 5433)),
            // The ports that OTLP specifies for gRPC and HTTP.
            otlp_grpc_addr: SocketAddr::from(([127, 0, 0, 1], 4317)),
            otlp_http_addr: SocketAddr::from(([127, 0, 0, 1], 4318)),
            store: None,
            storage_options: StorageOptions::default(),
            refresh_interval_secs: 5.0,
            max_body_bytes: 4 * 1024 * 1024 * 1024,
            flush_max_rows: 1_000_000,
            flush_max_bytes: 256 * 1024 * 1024,
            flush_max_age_secs: 30.0,
            staging_max_bytes: 10 * 1024 * 1024 * 1024,
            commit_timeout_secs: 60.0,
            query_memory_bytes: 2 * 1024 * 1024 * 1024,
            query_timeout_secs: 300,
            query_max_memory_bytes: 1024 * 1024 * 1024,
            query_max_rows: 0,
            query_max_scan_bytes: 0,
            secret_key: None,
            previous_secret_keys: Vec::new(),
            consumer_map: None,
            identity: apitrail_ingest::IdentityConfig::default(),
            templater: apitrail_ingest::TemplaterConfig::default(),
            views: ViewsConfig::default(),
            auth: AuthConfig::default(),
            tls: TlsConfig::default(),
            ingest: IngestConfig::default(),
            lifecycle: LifecycleSection::default(),
        }
    }
}

impl ServerConfig {
    /// Reads a TOML file over the defaults.
    pub fn from_file(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading configuration file {}", path.display()))?;
        toml::from_str(&text)
            .with_context(|| format!("invalid configuration file {}", path.display()))
    }

    /// Derives the query limits from this configuration.
    pub fn query_limits(&self) -> apitrail_query::QueryLimits {
        apitrail_query::QueryLimits {
            memory_bytes: self.query_memory_bytes,
            query_memory_bytes: self.query_max_memory_bytes,
            max_rows: self.query_max_rows,
            max_scan_bytes: self.query_max_scan_bytes,
            ..apitrail_query::QueryLimits::default()
        }
    }

    /// Derives the storage settings from this configuration.
    pub fn store_config(&self) -> anyhow::Result<StoreConfig> {
        let mut config = StoreConfig::for_data_dir(self.data_dir.clone())?;
        if let Some(store) = &self.store {
            config.table_url = parse_store_url(store)?;
            // The views table sits beside the events table: `<store>/../views/`.
            config.views_url = config
                .table_url
                .join("../views/")
                .with_context(|| format!("cannot place the views table beside {store}"))?;
        }
        config.storage_options = self.storage_options.0.clone().into_iter().collect();
        apitrail_storage::object_stores::check_options(&config.table_url, &config.storage_options)?;
        if !self.refresh_interval_secs.is_finite() || self.refresh_interval_secs <= 0.0 {
            bail!("refresh_interval_secs must be a positive number of seconds");
        }
        for (name, secs) in [
            ("dedupe_id_window_secs", self.views.dedupe_id_window_secs),
            (
                "dedupe_match_window_secs",
                self.views.dedupe_match_window_secs,
            ),
        ] {
            if !secs.is_finite() || secs < 0.0 {
                bail!("[views] {name} must be zero or a positive number of seconds");
            }
        }
        config.dedupe.id_window = (self.views.dedupe_id_window_secs * 1e6) as i64;
        config.dedupe.match_window = (self.views.dedupe_match_window_secs * 1e6) as i64;
        if !self.flush_max_age_secs.is_finite() || self.flush_max_age_secs <= 0.0 {
            bail!("flush_max_age_secs must be a positive number of seconds");
        }
        if self.views.compact_files < 2 {
            bail!("[views] compact_files must be 2 or more");
        }
        config.views_compact_files = self.views.compact_files;
        config.flush_max_rows = self.flush_max_rows;
        config.flush_max_bytes = self.flush_max_bytes;
        config.staging_max_bytes = self.staging_max_bytes;
        if !self.commit_timeout_secs.is_finite() || self.commit_timeout_secs <= 0.0 {
            bail!("commit_timeout_secs must be a positive number of seconds");
        }
        config.commit_timeout = Duration::from_secs_f64(self.commit_timeout_secs);
        config.flush_max_age = Duration::from_secs_f64(self.flush_max_age_secs);
        config.lifecycle = self.lifecycle.to_config()?;
        Ok(config)
    }
}

/// Accepts a URL (`file:///data/table`, `s3://bucket/prefix/events/`, `gs://`,
/// `az://`, `abfss://`) or a local path, and returns it as a directory URL.
///
/// The URL always ends with `/`, so that `../views/` resolves beside the
/// events table and not beside its parent. A cloud URL needs a path below
/// the bucket, since the views table sits one level up from it.
pub fn parse_store_url(text: &str) -> anyhow::Result<Url> {
    if text.contains("://") {
        let mut url = Url::parse(text).with_context(|| format!("invalid store URL {text:?}"))?;
        let scheme = url.scheme().to_string();
        if !apitrail_storage::object_stores::is_supported_scheme(&scheme) || scheme == "memory" {
            bail!(
                "store URL scheme {scheme:?} is not supported; use a local path, file://, s3://, s3a://, gs://, az://, abfs:// or abfss://"
            );
        }
        if !url.path().ends_with('/') {
            let path = format!("{}/", url.path());
            url.set_path(&path);
        }
        if scheme != "file" && url.path_segments().is_none_or(|s| s.count() < 2) {
            bail!(
                "store URL {} names a bucket without a path; write it as {scheme}://BUCKET/PREFIX/events/ so the views table fits beside it",
                apitrail_storage::object_stores::redact_url(&url)
            );
        }
        return Ok(url);
    }
    let path = std::path::absolute(text).with_context(|| format!("invalid store path {text:?}"))?;
    Url::from_directory_path(&path)
        .map_err(|()| anyhow::anyhow!("cannot make a file URL of {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_overrides_defaults() {
        let config: ServerConfig = toml::from_str(
            "data_dir = \"/var/lib/apitrail\"\nhttp_addr = \"0.0.0.0:8080\"\nflush_max_age_secs = 5\n",
        )
        .unwrap();
        assert_eq!(config.data_dir, PathBuf::from("/var/lib/apitrail"));
        assert_eq!(config.http_addr.port(), 8080);
        assert_eq!(config.flush_max_age_secs, 5.0);
        assert_eq!(
            config.query_timeout_secs,
            ServerConfig::default().query_timeout_secs
        );
    }

    #[test]
    fn query_limits_from_file() {
        let config: ServerConfig = toml::from_str(
            "query_memory_bytes = 1000000\nquery_max_memory_bytes = 250000\n\
             query_max_rows = 500\nquery_max_scan_bytes = 4096\n",
        )
        .unwrap();
        let limits = config.query_limits();
        assert_eq!(limits.memory_bytes, 1_000_000, "total query memory");
        assert_eq!(limits.query_memory_bytes, 250_000, "memory of one query");
        assert_eq!(limits.max_rows, 500, "row limit");
        assert_eq!(limits.max_scan_bytes, 4096, "scan limit");
        let defaults = ServerConfig::default().query_limits();
        assert_eq!(defaults.max_rows, 0, "no row limit by default");
        assert_eq!(defaults.max_scan_bytes, 0, "no scan limit by default");
        assert_eq!(
            defaults.query_memory_bytes,
            defaults.memory_bytes / 2,
            "one query may use half of the default total"
        );
    }

    #[test]
    fn otlp_addresses() {
        let defaults = ServerConfig::default();
        assert_eq!(defaults.otlp_grpc_addr.to_string(), "127.0.0.1:4317");
        assert_eq!(defaults.otlp_http_addr.to_string(), "127.0.0.1:4318");
        let config: ServerConfig = toml::from_str(
            "otlp_grpc_addr = \"0.0.0.0:14317\"\notlp_http_addr = \"[::1]:14318\"\n",
        )
        .unwrap();
        assert_eq!(config.otlp_grpc_addr.to_string(), "0.0.0.0:14317");
        assert_eq!(config.otlp_http_addr.to_string(), "[::1]:14318");
    }

    #[test]
    fn unknown_key_is_an_error() {
        let result: Result<ServerConfig, _> = toml::from_str("data_dri = \"x\"\n");
        assert!(result.is_err(), "a misspelt key must not be ignored");
    }

    #[test]
    fn tls_section_reads_both_files() {
        let config: ServerConfig = toml::from_str(
            "[tls]\ncert_file = \"/etc/apitrail/cert.pem\"\nkey_file = \"/etc/apitrail/key.pem\"\n",
        )
        .unwrap();
        assert_eq!(
            config.tls.cert_file,
            Some(PathBuf::from("/etc/apitrail/cert.pem"))
        );
        assert_eq!(
            config.tls.key_file,
            Some(PathBuf::from("/etc/apitrail/key.pem"))
        );
        assert_eq!(ServerConfig::default().tls, TlsConfig::default());
    }

    #[test]
    fn lifecycle_section_reaches_store() {
        let config: ServerConfig = toml::from_str(
            "data_dir = \"/tmp/apitrail-test\"\n[lifecycle]\nretention_days = 30\n\
             views_retention_days = 400\ngrace_period_secs = 600\n\
             compaction_target_bytes = 67108864\ncompaction_min_files = 4\ninterval_secs = 60\n",
        )
        .unwrap();
        let lifecycle = config.store_config().unwrap().lifecycle;
        assert_eq!(lifecycle.retention_days, Some(30));
        assert_eq!(lifecycle.views_retention_days, Some(400));
        assert_eq!(lifecycle.grace_period, Duration::from_secs(600));
        assert_eq!(lifecycle.compaction_target_bytes, 64 * 1024 * 1024);
        assert_eq!(lifecycle.compaction_min_files, 4);
        assert_eq!(lifecycle.interval, Duration::from_secs(60));
    }

    #[test]
    fn lifecycle_defaults_keep_everything() {
        let lifecycle = ServerConfig::default().lifecycle.to_config().unwrap();
        assert_eq!(lifecycle.retention_days, None);
        assert_eq!(lifecycle.views_retention_days, None);
        assert_eq!(lifecycle.grace_period, Duration::from_secs(3600));
        assert_eq!(lifecycle.compaction_target_bytes, 128 * 1024 * 1024);
    }

    #[test]
    fn lifecycle_rejects_short_views_retention() {
        let config: ServerConfig =
            toml::from_str("[lifecycle]\nretention_days = 30\nviews_retention_days = 7\n").unwrap();
        let message = format!("{:#}", config.store_config().unwrap_err());
        assert!(message.contains("[lifecycle]"), "{message}");
        assert!(message.contains("views retention (7 days)"), "{message}");
    }

    #[test]
    fn lifecycle_rejects_zero_grace_period() {
        let config: ServerConfig = toml::from_str("[lifecycle]\ngrace_period_secs = 0\n").unwrap();
        let message = format!("{:#}", config.store_config().unwrap_err());
        assert!(message.contains("grace_period_secs"), "{message}");
    }

    #[test]
    fn store_path_becomes_file_url() {
        let url = parse_store_url("/tmp/table").unwrap();
        assert_eq!(url.as_str(), "file:///tmp/table/");
        assert!(parse_store_url("ftp://host/x").is_err());
    }

    #[test]
    fn cloud_store_urls() {
        for (text, table, views) in [
            (
                "s3://bucket/prefix/events/",
                "s3://bucket/prefix/events/",
                "s3://bucket/prefix/views/",
            ),
            (
                "s3a://bucket/events",
                "s3a://bucket/events/",
                "s3a://bucket/views/",
            ),
            (
                "gs://bucket/apitrail/events/",
                "gs://bucket/apitrail/events/",
                "gs://bucket/apitrail/views/",
            ),
            (
                "az://container/events/",
                "az://container/events/",
                "az://container/views/",
            ),
            (
                "abfss://data@account.dfs.core.windows.net/apitrail/events/",
                "abfss://data@account.dfs.core.windows.net/apitrail/events/",
                "abfss://data@account.dfs.core.windows.net/apitrail/views/",
            ),
            (
                "file:///srv/apitrail/events",
                "file:///srv/apitrail/events/",
                "file:///srv/apitrail/views/",
            ),
        ] {
            let config = ServerConfig {
                store: Some(text.to_string()),
                ..ServerConfig::default()
            };
            let store = config.store_config().unwrap();
            assert_eq!(store.table_url.as_str(), table, "events table of {text}");
            assert_eq!(store.views_url.as_str(), views, "views table of {text}");
        }
        assert!(
            parse_store_url("s3://bucket").is_err(),
            "a bare bucket leaves no room for the views table"
        );
        assert!(parse_store_url("memory:///events/").is_err());
    }

    #[test]
    fn storage_options_section() {
        let config: ServerConfig = toml::from_str(
            "store = \"s3://bucket/apitrail/events/\"\n\
             [storage_options]\naws_endpoint = \"http://127.0.0.1:9000\"\n\
             aws_secret_access_key = \"hunter2\"\n",
        )
        .unwrap();
        let store = config.store_config().unwrap();
        assert_eq!(
            store
                .storage_options
                .get("aws_endpoint")
                .map(String::as_str),
            Some("http://127.0.0.1:9000")
        );
        let debug = format!("{config:?}");
        assert!(!debug.contains("hunter2"), "Debug shows a secret: {debug}");

        let typo: ServerConfig = toml::from_str(
            "store = \"s3://bucket/apitrail/events/\"\n[storage_options]\naws_endpiont = \"x\"\n",
        )
        .unwrap();
        assert!(
            typo.store_config().is_err(),
            "a misspelt option is an error"
        );
    }
}
