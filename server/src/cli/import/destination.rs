//! Destinations of imported lines: a running server, or a data directory opened here.
//!
//! A whole file is one ingest request (server) or one table commit (data
//! directory), named by the SHA-256 of its decompressed content: the batch
//! id or the Delta application transaction id `import-<sha256>`. So a file
//! imported again, under any name or compression, adds nothing. A server
//! remembers batch ids for 7 days; a data directory keeps transaction ids
//! in its table log.
//!
//! A batch of followed lines is one request with the batch id
//! `follow-<key>-<start>-<end>` (server), or one commit under the
//! application id `follow-<key>` at version `<end>` (data directory), where
//! `key` names the file's content and `start` and `end` are byte offsets.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use apitrail_ingest::{Format, IngestReport};
use apitrail_storage::Store;
use apitrail_storage::documents::DocumentStore;
use futures::StreamExt;
use indicatif::{ProgressBar, ProgressStyle};
use sha2::{Digest, Sha256};
use tokio::io::AsyncReadExt;

use super::inputs::Input;
use crate::Target;
use crate::config::ServerConfig;
use crate::ingest::{IngestError, IngestOptions, Sink, ingest_reader};
use crate::pipeline::IngestPipeline;

/// How long one request with a batch of followed lines may take before it is sent again.
const BATCH_REQUEST_TIMEOUT: Duration = Duration::from_secs(300);

/// Parameters of every ingest of one command.
#[derive(Debug, Clone)]
pub(crate) struct ImportSettings {
    pub format: Option<Format>,
    pub sensor: Option<String>,
    pub mapping: Option<String>,
}

/// Outcome of importing one whole file or object.
pub(crate) enum FileResult {
    Imported(IngestReport),
    AlreadyImported,
    /// The message, and the report of what is stored despite the failure.
    Failed(String, Option<IngestReport>),
}

/// One batch of a followed file.
pub(crate) struct BatchRequest {
    /// Context lines, then the batch's lines.
    pub body: Vec<u8>,
    /// Label of the file in the rejects file.
    pub source: String,
    /// `follow-<key>`.
    pub app_id: String,
    /// Byte offsets of the batch in the file's content.
    pub start: u64,
    pub end: u64,
    /// Number of the first line after the context lines.
    pub first_line: u64,
    pub context_lines: u64,
    pub format: Option<Format>,
}

impl BatchRequest {
    fn batch_id(&self) -> String {
        format!("{}-{}-{}", self.app_id, self.start, self.end)
    }
}

/// Reason a batch was not stored.
#[derive(Debug)]
pub(crate) enum SendError {
    /// The server or the storage failed; the same batch may succeed later.
    Retry(String),
    /// These bytes cannot be ingested as they are, such as an unknown format.
    Rejected(String),
    /// No batch can succeed, such as a missing token.
    Fatal(String),
}

pub(crate) enum Destination {
    Server {
        client: reqwest::Client,
        url: String,
    },
    Direct {
        store: Arc<Store>,
        pipeline: Arc<IngestPipeline>,
    },
}

impl Destination {
    /// Connects to the target's server, or opens (and locks) its data directory.
    pub(crate) async fn open(target: &Target) -> anyhow::Result<Self> {
        if let Some(url) = target.server_url() {
            return Ok(Destination::Server {
                client: target.http_client()?,
                url,
            });
        }
        let data_dir = target
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
        Ok(Destination::Direct { store, pipeline })
    }

    /// Returns whether a failed whole-file import through this destination still stored some lines.
    pub(crate) fn keeps_partial_imports(&self) -> bool {
        matches!(self, Destination::Server { .. })
    }

    /// Flushes and closes a data directory; nothing to do for a server.
    pub(crate) async fn close(self) -> anyhow::Result<()> {
        if let Destination::Direct { store, pipeline } = self {
            store.shutdown().await?;
            pipeline
                .save_learned()
                .await
                .context("saving the templater state")?;
        }
        Ok(())
    }

    /// Imports one whole file or object, unless its content was imported before.
    pub(crate) async fn import(&self, input: &Input, settings: &ImportSettings) -> FileResult {
        let import_id = match content_import_id(input).await {
            Ok(id) => id,
            Err(e) => return FileResult::Failed(format!("{e:#}"), None),
        };
        match self {
            Destination::Server { client, url } => {
                import_via_server(client, url, input, &import_id, settings).await
            }
            Destination::Direct { store, pipeline } => {
                import_direct(store, pipeline, input, &import_id, settings).await
            }
        }
    }

    /// Stores one batch of followed lines; `Ok(None)` when an earlier
    /// attempt stored it and its report is unknown here.
    pub(crate) async fn send_batch(
        &self,
        batch: &BatchRequest,
        settings: &ImportSettings,
    ) -> Result<Option<IngestReport>, SendError> {
        match self {
            Destination::Server { client, url } => {
                send_batch_to_server(client, url, batch, settings).await
            }
            Destination::Direct { store, pipeline } => {
                send_batch_direct(store, pipeline, batch, settings).await
            }
        }
    }
}

fn progress_bar(input: &Input) -> ProgressBar {
    let bar = ProgressBar::new(input.size());
    bar.set_style(
        ProgressStyle::with_template(
            "{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
        )
        .expect("the template is valid")
        .progress_chars("=> "),
    );
    bar.set_message(input.file_name());
    bar
}

/// Query parameters shared by whole files and batches; `--format` wins
/// over `format`, the format detected in an earlier batch.
fn settings_query(
    settings: &ImportSettings,
    format: Option<Format>,
) -> Vec<(&'static str, String)> {
    let mut query = Vec::new();
    if let Some(format) = settings.format.or(format) {
        query.push(("format", format.name().to_string()));
    }
    if let Some(sensor) = &settings.sensor {
        query.push(("sensor", sensor.clone()));
    }
    if let Some(mapping) = &settings.mapping {
        query.push(("mapping", mapping.clone()));
    }
    query
}

async fn import_via_server(
    client: &reqwest::Client,
    server: &str,
    input: &Input,
    import_id: &str,
    settings: &ImportSettings,
) -> FileResult {
    let reader = match input.open().await {
        Ok(reader) => reader,
        Err(e) => return FileResult::Failed(format!("{e:#}"), None),
    };
    let bar = progress_bar(input);
    let progress = bar.clone();
    let stream =
        tokio_util::io::ReaderStream::with_capacity(reader, 1024 * 1024).inspect(move |chunk| {
            if let Ok(chunk) = chunk {
                progress.inc(chunk.len() as u64);
            }
        });

    let mut query = vec![
        ("source", input.file_name()),
        ("batch_id", import_id.to_string()),
    ];
    query.extend(settings_query(settings, None));
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
            return FileResult::Failed(unreachable_server(server, &e), None);
        }
    };
    match read_answer(response).await {
        Ok((_, true)) => FileResult::AlreadyImported,
        Ok((report, false)) => FileResult::Imported(report),
        Err((message, report)) => FileResult::Failed(message, report),
    }
}

fn unreachable_server(server: &str, error: &reqwest::Error) -> String {
    Target::connect_error(server, error)
}

/// Reads an ingest response: the report and whether it was replayed, or the
/// error message with the report of what was stored.
async fn read_answer(
    response: reqwest::Response,
) -> Result<(IngestReport, bool), (String, Option<IngestReport>)> {
    let status = response.status();
    let replayed = response
        .headers()
        .get("apitrail-batch-replayed")
        .is_some_and(|value| value == "true");
    let body: serde_json::Value = match response.json().await {
        Ok(body) => body,
        Err(e) => {
            return Err((
                format!("the server answered {status} with an unreadable body: {e}"),
                None,
            ));
        }
    };
    let report: Option<IngestReport> = serde_json::from_value(body.clone()).ok();
    if status.is_success() {
        return match report {
            Some(report) => Ok((report, replayed)),
            None => Err((format!("unexpected answer from the server: {body}"), None)),
        };
    }
    let message = body["error"].as_str().unwrap_or("no error message");
    let hint = Target::auth_hint(status);
    Err((format!("server answered {status}: {message}{hint}"), report))
}

async fn import_direct(
    store: &Store,
    pipeline: &Arc<IngestPipeline>,
    input: &Input,
    import_id: &str,
    settings: &ImportSettings,
) -> FileResult {
    let mut writer = match store.begin_import(import_id).await {
        Ok(Some(writer)) => writer,
        Ok(None) => return FileResult::AlreadyImported,
        Err(e) => return FileResult::Failed(e.to_string(), None),
    };
    let reader = match input.open().await {
        Ok(reader) => reader,
        Err(e) => return FileResult::Failed(format!("{e:#}"), None),
    };
    let bar = progress_bar(input);
    let options = IngestOptions {
        format: settings.format,
        sensor: settings.sensor.clone(),
        mapping: settings.mapping.clone(),
        ..IngestOptions::new(input.name())
    };
    let reader = bar.wrap_async_read(reader);
    let outcome = ingest_reader(reader, &options, pipeline, store, Sink::Table(&mut writer)).await;
    bar.finish_and_clear();

    if let Some(error) = outcome.error {
        return FileResult::Failed(
            format!("{error}; nothing from this file was committed"),
            Some(outcome.report),
        );
    }
    match store.commit_import(import_id, writer).await {
        Ok(_) => FileResult::Imported(outcome.report),
        Err(e) => FileResult::Failed(
            format!("{e}; nothing from this file was committed"),
            Some(outcome.report),
        ),
    }
}

/// `import-<sha256 of the content>`, the batch id or application id of an import.
///
/// The hash covers the decompressed content, so a gzip or zstd copy of an
/// imported file is recognised as the same file.
async fn content_import_id(input: &Input) -> anyhow::Result<String> {
    let reader = input.open().await?;
    let name = input.name();
    let mut reader = crate::ingest::decompress(reader)
        .await
        .with_context(|| format!("cannot read {name}"))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1024 * 1024];
    loop {
        let read = reader
            .read(&mut buf)
            .await
            .with_context(|| format!("cannot read {name}"))?;
        if read == 0 {
            break;
        }
        hasher.update(&buf[..read]);
    }
    Ok(format!("import-{}", hex::encode(hasher.finalize())))
}

async fn send_batch_to_server(
    client: &reqwest::Client,
    server: &str,
    batch: &BatchRequest,
    settings: &ImportSettings,
) -> Result<Option<IngestReport>, SendError> {
    let mut query = vec![
        ("source", batch.source.clone()),
        ("batch_id", batch.batch_id()),
        ("first_line", batch.first_line.to_string()),
        ("context_lines", batch.context_lines.to_string()),
    ];
    query.extend(settings_query(settings, batch.format));
    let response = client
        .post(format!("{server}/api/v1/ingest"))
        .query(&query)
        .timeout(BATCH_REQUEST_TIMEOUT)
        .body(batch.body.clone())
        .send()
        .await
        .map_err(|e| SendError::Retry(unreachable_server(server, &e)))?;
    let status = response.status();
    match read_answer(response).await {
        Ok((report, _)) => Ok(Some(report)),
        Err((message, _)) if status.is_server_error() || status.is_success() => {
            Err(SendError::Retry(message))
        }
        Err((message, _))
            if status == reqwest::StatusCode::UNAUTHORIZED
                || status == reqwest::StatusCode::FORBIDDEN =>
        {
            Err(SendError::Fatal(message))
        }
        Err((message, _)) if status == reqwest::StatusCode::TOO_MANY_REQUESTS => {
            Err(SendError::Retry(message))
        }
        Err((message, _)) => Err(SendError::Rejected(message)),
    }
}

async fn send_batch_direct(
    store: &Store,
    pipeline: &Arc<IngestPipeline>,
    batch: &BatchRequest,
    settings: &ImportSettings,
) -> Result<Option<IngestReport>, SendError> {
    let version = i64::try_from(batch.end).unwrap_or(i64::MAX);
    let mut writer = match store.begin_import_version(&batch.app_id, version).await {
        Ok(Some(writer)) => writer,
        Ok(None) => return Ok(None),
        Err(e) => return Err(SendError::Retry(e.to_string())),
    };
    let options = IngestOptions {
        format: settings.format.or(batch.format),
        sensor: settings.sensor.clone(),
        mapping: settings.mapping.clone(),
        first_line: batch.first_line,
        context_lines: batch.context_lines,
        ..IngestOptions::new(batch.source.clone())
    };
    let outcome = ingest_reader(
        batch.body.as_slice(),
        &options,
        pipeline,
        store,
        Sink::Table(&mut writer),
    )
    .await;
    match outcome.error {
        None => {}
        Some(error @ IngestError::Storage(_)) => return Err(SendError::Retry(error.to_string())),
        Some(error) => return Err(SendError::Rejected(error.to_string())),
    }
    store
        .commit_import_version(&batch.app_id, version, writer)
        .await
        .map_err(|e| SendError::Retry(e.to_string()))?;
    Ok(Some(outcome.report))
}
