//! The HTTP API: health, metrics, ingest and query.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use apitrail_ingest::Format;
use apitrail_query::{QueryEngine, QueryError};
use apitrail_storage::Store;
use axum::body::Body;
use axum::extract::{ConnectInfo, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use futures::StreamExt;
use metrics_exporter_prometheus::PrometheusHandle;
use serde::Deserialize;
use serde_json::json;
use tokio_util::io::StreamReader;

use crate::ingest::{IngestError, IngestOptions, Sink, ingest_reader};
use crate::output::{OutputFormat, ResultEncoder};
use crate::pipeline::{IngestPipeline, load_outcome_json};

/// State shared by every handler.
#[derive(Clone)]
pub struct AppState {
    pub store: Arc<Store>,
    pub engine: QueryEngine,
    pub pipeline: Arc<IngestPipeline>,
    pub metrics: Option<PrometheusHandle>,
    pub max_body_bytes: u64,
    pub query_timeout: Duration,
}

/// Builds the router of the HTTP API.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/health", get(health))
        .route("/metrics", get(metrics))
        .route("/api/v1/ingest", post(ingest))
        .route("/api/v1/query", post(query))
        .route("/api/v1/specs", post(load_spec).get(list_specs))
        .fallback(not_found)
        .with_state(state)
}

/// An error response: a status and a JSON body `{"error": "..."}`.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        ApiError {
            status,
            message: message.into(),
        }
    }

    fn bad_request(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::BAD_REQUEST, message)
    }
}

impl From<QueryError> for ApiError {
    fn from(error: QueryError) -> Self {
        let status = crate::errors::error_codes(&error).http;
        if status.is_server_error() {
            tracing::error!(error = %error, "query failed");
        }
        ApiError::new(status, error.to_string())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, Json(json!({ "error": self.message }))).into_response()
    }
}

async fn not_found(uri: axum::http::Uri) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        format!(
            "no route {}; the API has /health, /metrics, /api/v1/ingest, /api/v1/query and /api/v1/specs",
            uri.path()
        ),
    )
}

async fn health() -> Json<serde_json::Value> {
    Json(json!({ "status": "ok" }))
}

async fn metrics(State(state): State<AppState>) -> Response {
    match &state.metrics {
        Some(handle) => (
            [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
            handle.render(),
        )
            .into_response(),
        None => ApiError::new(StatusCode::NOT_FOUND, "metrics are not enabled").into_response(),
    }
}

#[derive(Debug, Deserialize)]
struct IngestParams {
    format: Option<String>,
    sensor: Option<String>,
    /// Name of the input in the rejects file, such as the file it came from.
    source: Option<String>,
}

async fn ingest(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Query(params): Query<IngestParams>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let started = Instant::now();
    let format = match params.format.as_deref() {
        None | Some("") | Some("auto") => None,
        Some(name) => Some(
            name.parse::<Format>()
                .map_err(|e| ApiError::bad_request(e.to_string()))?,
        ),
    };
    check_content_encoding(&headers)?;
    if let Some(length) = content_length(&headers)
        && length > state.max_body_bytes
    {
        return Err(body_too_large(state.max_body_bytes));
    }
    let options = IngestOptions {
        format,
        sensor: params.sensor,
        origin: params
            .source
            .unwrap_or_else(|| format!("http:{}", peer.ip())),
    };

    let limit = state.max_body_bytes;
    let mut seen: u64 = 0;
    let stream = body.into_data_stream().map(move |chunk| {
        let chunk = chunk.map_err(std::io::Error::other)?;
        seen += chunk.len() as u64;
        if seen > limit {
            return Err(std::io::Error::new(
                std::io::ErrorKind::FileTooLarge,
                "body over limit",
            ));
        }
        Ok(chunk)
    });
    let reader = StreamReader::new(Box::pin(stream));
    let outcome = ingest_reader(
        reader,
        &options,
        &state.pipeline,
        &state.store,
        Sink::Store(&state.store),
    )
    .await;

    let report = outcome.report;
    tracing::debug!(
        origin = %options.origin,
        format = report.format.as_deref().unwrap_or("unknown"),
        accepted = report.accepted,
        rejected = report.rejected,
        skipped = report.skipped,
        elapsed_ms = started.elapsed().as_millis() as u64,
        "ingest finished"
    );
    let Some(error) = outcome.error else {
        return Ok(Json(report).into_response());
    };

    let (status, message) = match &error {
        IngestError::UnknownFormat => (StatusCode::BAD_REQUEST, error.to_string()),
        IngestError::Read { source, .. } if source.kind() == std::io::ErrorKind::FileTooLarge => (
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("request body is larger than the limit of {limit} bytes"),
        ),
        IngestError::Read { .. } => (StatusCode::BAD_REQUEST, error.to_string()),
        IngestError::Storage(_) => {
            tracing::error!(error = %error, "ingest could not store events");
            (StatusCode::SERVICE_UNAVAILABLE, error.to_string())
        }
    };
    // Lines before the failure are durable, and the report in the body counts them.
    let mut body = serde_json::to_value(&report).expect("reports serialise");
    body["error"] = json!(message);
    Ok((status, Json(body)).into_response())
}

/// Accepts the encodings the ingest pipeline decodes itself.
///
/// gzip and zstd bodies are recognised by their magic bytes, with or without
/// the header, so the body limit applies to the bytes as sent.
fn check_content_encoding(headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(value) = headers.get(header::CONTENT_ENCODING) else {
        return Ok(());
    };
    let encoding = value.to_str().unwrap_or("").trim().to_ascii_lowercase();
    match encoding.as_str() {
        "" | "identity" | "gzip" | "x-gzip" | "zstd" => Ok(()),
        _ => Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!(
                "Content-Encoding {encoding:?} is not supported; send the body plain, gzip or zstd"
            ),
        )),
    }
}

fn content_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .parse()
        .ok()
}

fn body_too_large(limit: u64) -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        format!(
            "request body is larger than the limit of {limit} bytes; split the input or raise max_body_bytes"
        ),
    )
}

#[derive(Debug, Deserialize)]
struct QueryParams {
    output: Option<String>,
}

#[derive(Debug, Deserialize)]
struct QueryRequest {
    sql: String,
}

async fn query(
    State(state): State<AppState>,
    Query(params): Query<QueryParams>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let request: QueryRequest = serde_json::from_slice(&body).map_err(|e| {
        ApiError::bad_request(format!(
            "request body must be JSON like {{\"sql\": \"SELECT ...\"}}: {e}"
        ))
    })?;
    let format = output_format(params.output.as_deref(), &headers)?;
    let started = Instant::now();

    let stream = tokio::time::timeout(state.query_timeout, state.engine.execute(&request.sql))
        .await
        .map_err(|_| query_timeout(state.query_timeout))??;
    metrics::counter!("apitrail_queries_total").increment(1);

    if format == OutputFormat::Csv
        && let Some(field) = stream
            .schema()
            .fields()
            .iter()
            .find(|f| f.data_type().is_nested())
    {
        return Err(ApiError::bad_request(format!(
            "column {:?} has the nested type {} that CSV cannot hold; select its parts \
             (such as attributes['key']) or use output=json",
            field.name(),
            field.data_type()
        )));
    }
    let mut encoder = ResultEncoder::new(format, stream.schema());
    let head = encoder
        .begin()
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    tracing::debug!(
        elapsed_ms = started.elapsed().as_millis() as u64,
        "query planned"
    );

    let deadline = tokio::time::Instant::now() + state.query_timeout;
    let body = Body::from_stream(result_body(stream, encoder, head, deadline));
    Ok(([(header::CONTENT_TYPE, format.content_type())], body).into_response())
}

/// Streams an encoded result, one batch at a time, until the deadline.
///
/// NOTE: an error after the first bytes were sent cannot change the status
/// any more. The body is cut off instead, so the client gets an incomplete
/// document and a broken chunked transfer.
fn result_body(
    stream: datafusion::execution::SendableRecordBatchStream,
    encoder: ResultEncoder,
    head: Vec<u8>,
    deadline: tokio::time::Instant,
) -> impl futures::Stream<Item = std::io::Result<Vec<u8>>> + Send {
    struct Progress {
        stream: datafusion::execution::SendableRecordBatchStream,
        encoder: ResultEncoder,
        head: Option<Vec<u8>>,
        done: bool,
    }
    let start = Progress {
        stream,
        encoder,
        head: Some(head),
        done: false,
    };
    futures::stream::unfold(start, move |mut progress| async move {
        if progress.done {
            return None;
        }
        if let Some(head) = progress.head.take() {
            return Some((Ok(head), progress));
        }
        let item = match tokio::time::timeout_at(deadline, progress.stream.next()).await {
            Err(_) => Err(std::io::Error::other(
                "query timed out while streaming its result",
            )),
            Ok(Some(Ok(batch))) => progress
                .encoder
                .batch(&batch)
                .map_err(std::io::Error::other),
            Ok(Some(Err(e))) => Err(std::io::Error::other(e.to_string())),
            Ok(None) => {
                progress.done = true;
                progress.encoder.end().map_err(std::io::Error::other)
            }
        };
        if let Err(e) = &item {
            tracing::warn!(error = %e, "query failed while streaming its result");
            progress.done = true;
        }
        Some((item, progress))
    })
}

fn output_format(name: Option<&str>, headers: &HeaderMap) -> Result<OutputFormat, ApiError> {
    if let Some(name) = name {
        return OutputFormat::from_name(name).ok_or_else(|| {
            ApiError::bad_request(format!(
                "unknown output {name:?}; use json, jsonl, csv or arrow"
            ))
        });
    }
    Ok(headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .and_then(OutputFormat::from_accept)
        .unwrap_or(OutputFormat::Json))
}

fn query_timeout(timeout: Duration) -> ApiError {
    QueryError::TimedOut(timeout).into()
}

#[derive(Debug, Deserialize)]
struct SpecParams {
    /// Name under which revisions of one API description are kept.
    name: Option<String>,
}

/// Largest API description accepted, in bytes.
const MAX_SPEC_BYTES: usize = 32 * 1024 * 1024;

/// `POST /api/v1/specs?name=NAME`: loads an OpenAPI 3 or Swagger 2 document as a new revision.
async fn load_spec(
    State(state): State<AppState>,
    Query(params): Query<SpecParams>,
    body: Body,
) -> Result<Response, ApiError> {
    let Some(name) = params.name.filter(|n| !n.is_empty()) else {
        return Err(ApiError::bad_request(
            "missing name parameter: POST /api/v1/specs?name=NAME, where NAME keeps the revisions of one API apart",
        ));
    };
    let bytes = axum::body::to_bytes(body, MAX_SPEC_BYTES)
        .await
        .map_err(|e| {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("reading the document failed (at most {MAX_SPEC_BYTES} bytes): {e}"),
            )
        })?;
    let loaded_at = chrono::Utc::now().timestamp_micros();
    let outcome = {
        let mut specs = state
            .pipeline
            .inventory
            .specs
            .write()
            .unwrap_or_else(|e| e.into_inner());
        specs
            .load_document(&name, &bytes, loaded_at)
            .map_err(|e| ApiError::bad_request(e.to_string()))?
    };
    state
        .pipeline
        .inventory
        .anchor_documented_paths()
        .map_err(|e| {
            ApiError::bad_request(format!("the document's paths cannot anchor endpoints: {e}"))
        })?;
    state.pipeline.save_specs().await.map_err(|e| {
        tracing::error!(error = format!("{e:#}"), spec = %name, "saving the spec catalog failed");
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("the spec was loaded but saving the catalog failed: {e:#}"),
        )
    })?;
    tracing::info!(
        spec = %name,
        outcome = outcome.kind.as_str(),
        revision = outcome.revision,
        operations = outcome.operations,
        "loaded API description"
    );
    Ok(Json(load_outcome_json(&name, &outcome)).into_response())
}

/// `GET /api/v1/specs`: the loaded API descriptions and their revisions.
async fn list_specs(State(state): State<AppState>) -> Json<serde_json::Value> {
    let specs = state
        .pipeline
        .inventory
        .specs
        .read()
        .unwrap_or_else(|e| e.into_inner());
    let list: Vec<serde_json::Value> = specs
        .spec_names()
        .map(|name| {
            let revisions = specs.revisions(name).unwrap_or_default();
            let latest = revisions.last();
            json!({
                "name": name,
                "revisions": revisions.len(),
                "title": latest.and_then(|r| r.spec.title.clone()),
                "version": latest.and_then(|r| r.spec.version.clone()),
                "operations": latest.map_or(0, |r| r.spec.operations.len()),
            })
        })
        .collect();
    Json(json!({ "specs": list }))
}
