//! `apitrail import`: load log files through a server or straight into a data directory.
//!
//! Through a server, each file is streamed as one ingest request, so the
//! server's WAL makes it durable and line numbers in errors are file lines.
//! Straight into a data directory (no server may run on it), the file itself
//! is the redo log. Its events are written as Parquet and committed in one
//! table version tagged with the file's SHA-256. A crash mid-import leaves
//! nothing half-visible, and a second import of the same file adds nothing.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use apitrail_ingest::{Format, IngestReport};
use apitrail_storage::Store;
use futures::StreamExt;
use indicatif::{ProgressBar, ProgressStyle};
use sha2::{Digest, Sha256};
use tokio::io::AsyncReadExt;

use crate::Target;
use crate::config::ServerConfig;
use crate::ingest::{IngestOptions, Sink, ingest_reader};
use crate::pipeline::IngestPipeline;
use apitrail_storage::documents::DocumentStore;

#[derive(Debug, Clone, clap::Args)]
pub struct ImportArgs {
    #[command(flatten)]
    target: Target,
    /// Format of the files (see docs/sources.md); detected per file when absent.
    #[arg(long)]
    format: Option<String>,
    /// Mapping of the generic `json` format, from `[[ingest.json_mappings]]`; implies `--format json`.
    #[arg(long)]
    mapping: Option<String>,
    /// Label of the gateway or load balancer that wrote the files.
    #[arg(long)]
    sensor: Option<String>,
    /// Log files, plain or compressed with gzip or zstd.
    #[arg(required = true)]
    files: Vec<PathBuf>,
}

/// Outcome of importing one file.
enum FileResult {
    Imported(IngestReport),
    AlreadyImported,
    Failed(String, Option<IngestReport>),
}

pub async fn run(args: ImportArgs) -> anyhow::Result<ExitCode> {
    let format = match args.format.as_deref() {
        Some(name) => Some(name.parse::<Format>()?),
        None => None,
    };
    let mut failures = 0;
    match args.target.server_url() {
        Some(server) => {
            let client = args.target.http_client()?;
            for file in &args.files {
                let result = import_via_server(&client, &server, file, format, &args).await;
                failures += print_result(file, result);
            }
        }
        None => {
            let data_dir = args
                .target
                .data_dir
                .clone()
                .expect("no server URL means a data directory");
            let config = ServerConfig {
                data_dir,
                secret_key: std::env::var("APITRAIL_SECRET_KEY").ok(),
                ..ServerConfig::default()
            };
            let store_config = config.store_config()?;
            let documents =
                DocumentStore::open(&store_config.views_url, &store_config.storage_options)?;
            let store = Store::open(store_config).await?;
            let pipeline = Arc::new(IngestPipeline::load(&config, documents).await?);
            for file in &args.files {
                let result = import_direct(&store, &pipeline, file, format, &args).await;
                failures += print_result(file, result);
            }
            store.shutdown().await?;
            pipeline
                .save_learned()
                .await
                .context("saving the templater state")?;
        }
    }
    Ok(if failures == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn progress_bar(path: &Path) -> ProgressBar {
    let size = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
    let bar = ProgressBar::new(size);
    bar.set_style(
        ProgressStyle::with_template(
            "{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
        )
        .expect("the template is valid")
        .progress_chars("=> "),
    );
    bar.set_message(display_name(path));
    bar
}

fn display_name(path: &Path) -> String {
    path.file_name().map_or_else(
        || path.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    )
}

async fn import_via_server(
    client: &reqwest::Client,
    server: &str,
    path: &Path,
    format: Option<Format>,
    args: &ImportArgs,
) -> FileResult {
    // The content hash is the batch id, so the server stores a file once
    // however often it is imported (within the server's batch retention).
    let import_id = match file_import_id(path).await {
        Ok(id) => id,
        Err(e) => return FileResult::Failed(format!("{e:#}"), None),
    };
    let file = match tokio::fs::File::open(path).await {
        Ok(file) => file,
        Err(e) => return FileResult::Failed(format!("cannot open: {e}"), None),
    };
    let bar = progress_bar(path);
    let progress = bar.clone();
    let stream =
        tokio_util::io::ReaderStream::with_capacity(file, 1024 * 1024).inspect(move |chunk| {
            if let Ok(chunk) = chunk {
                progress.inc(chunk.len() as u64);
            }
        });

    let mut query: Vec<(&str, String)> =
        vec![("source", display_name(path)), ("batch_id", import_id)];
    if let Some(format) = format {
        query.push(("format", format.name().to_string()));
    }
    if let Some(sensor) = &args.sensor {
        query.push(("sensor", sensor.clone()));
    }
    if let Some(mapping) = &args.mapping {
        query.push(("mapping", mapping.clone()));
    }
    let response = client
        .post(format!("{server}/api/v1/ingest"))
        .query(&query)
        .body(reqwest::Body::wrap_stream(stream))
        .send()
        .await;
    bar.finish_and_clear();

    let response = match response {
        Ok(response) => response,
        Err(e) => {
            return FileResult::Failed(crate::Target::connect_error(server, &e), None);
        }
    };
    let status = response.status();
    let replayed = response
        .headers()
        .get("apitrail-batch-replayed")
        .is_some_and(|value| value == "true");
    let body: serde_json::Value = match response.json().await {
        Ok(body) => body,
        Err(e) => {
            return FileResult::Failed(
                format!("the server answered {status} with an unreadable body: {e}"),
                None,
            );
        }
    };
    let report: Option<IngestReport> = serde_json::from_value(body.clone()).ok();
    if status.is_success() && replayed {
        return FileResult::AlreadyImported;
    }
    if status.is_success() {
        match report {
            Some(report) => FileResult::Imported(report),
            None => FileResult::Failed(format!("unexpected answer from the server: {body}"), None),
        }
    } else {
        let message = body["error"]
            .as_str()
            .unwrap_or("no error message")
            .to_string();
        let hint = crate::Target::auth_hint(status);
        FileResult::Failed(format!("server answered {status}: {message}{hint}"), report)
    }
}

async fn import_direct(
    store: &Store,
    pipeline: &Arc<IngestPipeline>,
    path: &Path,
    format: Option<Format>,
    args: &ImportArgs,
) -> FileResult {
    let import_id = match file_import_id(path).await {
        Ok(id) => id,
        Err(e) => return FileResult::Failed(format!("{e:#}"), None),
    };
    let mut writer = match store.begin_import(&import_id).await {
        Ok(Some(writer)) => writer,
        Ok(None) => return FileResult::AlreadyImported,
        Err(e) => return FileResult::Failed(e.to_string(), None),
    };
    let file = match tokio::fs::File::open(path).await {
        Ok(file) => file,
        Err(e) => return FileResult::Failed(format!("cannot open: {e}"), None),
    };
    let bar = progress_bar(path);
    let options = IngestOptions {
        format,
        sensor: args.sensor.clone(),
        origin: path.display().to_string(),
        batch_id: None,
        mapping: args.mapping.clone(),
    };
    let reader = bar.wrap_async_read(file);
    let outcome = ingest_reader(reader, &options, pipeline, store, Sink::Table(&mut writer)).await;
    bar.finish_and_clear();

    if let Some(error) = outcome.error {
        return FileResult::Failed(
            format!("{error}; nothing from this file was committed"),
            Some(outcome.report),
        );
    }
    match store.commit_import(&import_id, writer).await {
        Ok(_) => FileResult::Imported(outcome.report),
        Err(e) => FileResult::Failed(
            format!("{e}; nothing from this file was committed"),
            Some(outcome.report),
        ),
    }
}

/// `import-<sha256 of the content>`, the application id of the file's commit.
///
/// The hash covers the decompressed content, so a gzip or zstd copy of an
/// imported file is recognised as the same file.
async fn file_import_id(path: &Path) -> anyhow::Result<String> {
    let file = tokio::fs::File::open(path)
        .await
        .with_context(|| format!("cannot open {}", path.display()))?;
    let mut file = crate::ingest::decompress(file)
        .await
        .with_context(|| format!("cannot read {}", path.display()))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1024 * 1024];
    loop {
        let read = file
            .read(&mut buf)
            .await
            .with_context(|| format!("cannot read {}", path.display()))?;
        if read == 0 {
            break;
        }
        hasher.update(&buf[..read]);
    }
    Ok(format!("import-{}", hex::encode(hasher.finalize())))
}

/// Prints one file's summary; returns 1 if it failed.
fn print_result(path: &Path, result: FileResult) -> usize {
    let name = path.display();
    match result {
        FileResult::Imported(report) => {
            println!("{name}: {}", summary(&report));
            print_errors(&report);
            0
        }
        FileResult::AlreadyImported => {
            println!("{name}: already imported (same content), skipped");
            0
        }
        FileResult::Failed(message, report) => {
            eprintln!("{name}: failed: {message}");
            if let Some(report) = report {
                eprintln!("{name}: before the failure: {}", summary(&report));
            }
            1
        }
    }
}

fn summary(report: &IngestReport) -> String {
    let mut text = format!(
        "{} accepted, {} rejected, {} skipped",
        report.accepted, report.rejected, report.skipped
    );
    if let Some(format) = &report.format {
        text.push_str(&format!(" (format {format})"));
    }
    for (reason, count) in &report.skipped_reasons {
        text.push_str(&format!("; skipped {count} {reason}"));
    }
    text
}

fn print_errors(report: &IngestReport) {
    const SHOWN: usize = 5;
    for error in report.errors.iter().take(SHOWN) {
        println!("  line {}: {}", error.line, error.reason);
    }
    if report.error_count > SHOWN as u64 {
        println!(
            "  ... {} more; every rejected line is in the rejects file of the data directory",
            report.error_count - SHOWN as u64
        );
    }
}
