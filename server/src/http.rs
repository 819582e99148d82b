//! The HTTP API: health, metrics, ingest, query, API descriptions and its own OpenAPI document.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use apitrail_ingest::Format;
use apitrail_query::{QueryEngine, QueryError};
use apitrail_storage::Store;
use arrow::record_batch::RecordBatch;
use axum::body::Body;
use axum::extract::Request;
use axum::extract::{ConnectInfo, Query, State};
use axum::handler::Handler;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodFilter, on};
use axum::{Extension, Json, Router};
use bytes::Bytes;
use futures::StreamExt;
use http_body::Frame;
use http_body_util::StreamBody;
use metrics_exporter_prometheus::PrometheusHandle;
use serde::Deserialize;
use serde_json::json;
use tokio_util::io::StreamReader;

use crate::auth::{AuthError, Authenticator, Role, Schemes, parse_authorization};
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

/// The OpenAPI 3.1 document of this API, served at `GET /api/v1/openapi.json`.
///
/// A unit test below checks that it lists exactly the operations of [`operations`].
pub const OPENAPI_DOCUMENT: &str = include_str!("../openapi.json");

/// Trailer field that carries the message of a query that failed after its
/// result began, when the client sent `TE: trailers`.
pub const ERROR_TRAILER: HeaderName = HeaderName::from_static("apitrail-error");

/// Access rule of a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone, without a token: health checks and the API description.
    Public,
    /// Holders of `role`, presenting a token in one of `schemes`.
    Role(Role, Schemes),
}

/// Only queries and reads: a Bearer token with the `read` role.
const READ: Access = Access::Role(Role::Read, Schemes::Bearer);
/// Event intake, where log shippers may also send Basic or ApiKey credentials.
const INGEST: Access = Access::Role(Role::Ingest, Schemes::Shipper);
const ADMIN: Access = Access::Role(Role::Admin, Schemes::Bearer);

/// Trailer field `apitrail-truncated: true`, sent after a result that was cut
/// at the row limit, when the client sent `TE: trailers`.
pub const TRUNCATED_TRAILER: HeaderName = HeaderName::from_static("apitrail-truncated");

/// Response header with the row limit that applies to a query result, sent
/// when there is one.
pub const ROW_LIMIT_HEADER: HeaderName = HeaderName::from_static("apitrail-row-limit");

/// The routes of the API and the list of its operations, built together so
/// that the list cannot miss a route.
struct RouteTable {
    router: Router<AppState>,
    operations: Vec<(Method, &'static str, Access)>,
}

impl RouteTable {
    fn new() -> Self {
        RouteTable {
            router: Router::new(),
            operations: Vec::new(),
        }
    }

    /// Adds `handler` for `method` on `path`, open to callers that `access`
    /// lets in. Methods of one path may be added one by one.
    fn add<H, T>(mut self, method: Method, path: &'static str, access: Access, handler: H) -> Self
    where
        H: Handler<T, AppState>,
        T: 'static,
    {
        let filter = MethodFilter::try_from(method.clone())
            .unwrap_or_else(|e| panic!("route {method} {path}: {e}"));
        let mut route = on(filter, handler);
        if let Access::Role(role, schemes) = access {
            route = route.route_layer(axum::middleware::from_fn(
                move |request: Request, next: Next| require_role(role, schemes, request, next),
            ));
        }
        self.router = self.router.route(path, route);
        self.operations.push((method, path, access));
        self
    }
}

fn route_table() -> RouteTable {
    RouteTable::new()
        .add(Method::GET, "/health", Access::Public, health)
        .add(Method::GET, "/metrics", READ, metrics)
        .add(Method::POST, "/api/v1/ingest", INGEST, ingest)
        .add(Method::GET, "/api/v1/es", INGEST, crate::es::info)
        .add(Method::GET, "/api/v1/es/", INGEST, crate::es::info)
        .add(
            Method::GET,
            "/api/v1/es/_cluster/health",
            INGEST,
            crate::es::health,
        )
        .add(Method::POST, "/api/v1/es/_bulk", INGEST, crate::es::bulk)
        .add(
            Method::POST,
            "/api/v1/es/{index}/_bulk",
            INGEST,
            crate::es::bulk_index,
        )
        .add(Method::POST, "/api/v1/query", READ, query)
        .add(Method::POST, "/api/v1/specs", ADMIN, load_spec)
        .add(Method::GET, "/api/v1/specs", READ, list_specs)
        .add(Method::GET, "/api/v1/openapi.json", Access::Public, openapi)
}

/// Lists the method and path of every route the router serves.
pub fn operations() -> Vec<(Method, &'static str)> {
    route_table()
        .operations
        .into_iter()
        .map(|(method, path, _)| (method, path))
        .collect()
}

/// Builds the router of the HTTP API; `auth` decides who may call it.
pub fn router(state: AppState, auth: Authenticator) -> Router {
    route_table()
        .router
        .fallback(not_found)
        .with_state(state)
        .layer(Extension(auth))
}

/// Checks the request's credentials for `role`, then runs the route.
///
/// The principal goes into the request's extensions for handlers and logs.
async fn require_role(role: Role, schemes: Schemes, mut request: Request, next: Next) -> Response {
    let Some(auth) = request.extensions().get::<Authenticator>().cloned() else {
        tracing::error!("the router has no authenticator; refusing the request");
        return ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "authentication is not set up",
        )
        .into_response();
    };
    let credentials = match request.headers().get(header::AUTHORIZATION) {
        None => None,
        Some(value) => {
            let parsed = value
                .to_str()
                .map_err(|_| AuthError::Malformed("not visible ASCII".into()))
                .and_then(|text| parse_authorization(text, schemes));
            match parsed {
                Ok(credentials) => Some(credentials),
                Err(error) => return auth_error_response(&error, schemes, request.uri().path()),
            }
        }
    };
    match auth.authorize(credentials.as_ref(), role) {
        Ok(principal) => {
            request.extensions_mut().insert(principal);
            next.run(request).await
        }
        Err(error) => auth_error_response(&error, schemes, request.uri().path()),
    }
}

/// Builds the response to a rejected request: 401 with a `WWW-Authenticate` challenge when
/// the client should authenticate, 403 when its token lacks the role.
fn auth_error_response(error: &AuthError, schemes: Schemes, path: &str) -> Response {
    metrics::counter!("apitrail_auth_failures_total", "protocol" => "http").increment(1);
    tracing::info!(path, error = %error, "request rejected");
    if !error.is_unauthenticated() {
        return ApiError::new(StatusCode::FORBIDDEN, error.to_string()).into_response();
    }
    let mut response = ApiError::new(StatusCode::UNAUTHORIZED, error.to_string()).into_response();
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static(challenge(schemes)),
    );
    response
}

/// Returns the `WWW-Authenticate` challenge of a 401 for routes that accept `schemes`.
pub(crate) fn challenge(schemes: Schemes) -> &'static str {
    match schemes {
        Schemes::Bearer => "Bearer realm=\"apitrail\"",
        Schemes::Shipper => "Bearer realm=\"apitrail\", Basic realm=\"apitrail\"",
    }
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

    pub(crate) fn bad_request(message: impl Into<String>) -> Self {
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

/// Returns 404 with the routes of the API, in the message and as the list `routes`.
async fn not_found(uri: axum::http::Uri) -> Response {
    let routes: Vec<String> = operations()
        .iter()
        .map(|(method, path)| format!("{method} {path}"))
        .collect();
    let message = format!("no route {}; the API has {}", uri.path(), routes.join(", "));
    (
        StatusCode::NOT_FOUND,
        Json(json!({ "error": message, "routes": routes })),
    )
        .into_response()
}

async fn openapi() -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        OPENAPI_DOCUMENT,
    )
        .into_response()
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
    /// The client's id for this body; a retry with the same id adds nothing.
    batch_id: Option<String>,
    /// Mapping of the generic `json` format.
    mapping: Option<String>,
    /// Number of the body's first line (after any context lines) in the file it continues.
    first_line: Option<u64>,
    /// Lines at the start of the body that were sent before, such as a W3C header.
    context_lines: Option<u64>,
}

/// Longest accepted `batch_id`, in bytes.
const MAX_BATCH_ID_BYTES: usize = 256;

/// Header set on the response to a batch that was complete before.
const BATCH_REPLAYED_HEADER: &str = "apitrail-batch-replayed";

async fn ingest(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Query(params): Query<IngestParams>,
    version: axum::http::Version,
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
    if let Some(id) = &params.batch_id
        && (id.is_empty() || id.len() > MAX_BATCH_ID_BYTES || id.chars().any(char::is_control))
    {
        return Err(ApiError::bad_request(format!(
            "batch_id must be 1 to {MAX_BATCH_ID_BYTES} bytes without control characters"
        )));
    }
    let first_line = params.first_line.unwrap_or(1);
    let context_lines = params.context_lines.unwrap_or(0);
    if first_line == 0 || context_lines >= first_line {
        return Err(ApiError::bad_request(format!(
            "first_line must be at least 1 and greater than context_lines, got first_line={first_line} and context_lines={context_lines}"
        )));
    }
    let options = IngestOptions {
        batch_id: params.batch_id,
        mapping: params.mapping,
        format,
        sensor: params.sensor,
        first_line,
        context_lines,
        ..IngestOptions::new(
            params
                .source
                .unwrap_or_else(|| format!("http:{}", peer.ip())),
        )
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
    let mut reader = StreamReader::new(Box::pin(stream));
    let outcome = ingest_reader(
        &mut reader,
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
        let mut response = Json(report).into_response();
        if outcome.replayed {
            response.headers_mut().insert(
                BATCH_REPLAYED_HEADER,
                axum::http::HeaderValue::from_static("true"),
            );
            // A replay is served from the batch log without parsing the body,
            // but the body is still read to its end. A server that responds
            // and closes while the client is still sending makes the client's
            // TCP stack reset the connection, so the client can lose the
            // response. Only when the body cannot be read does the
            // connection close after the answer.
            let drained = tokio::io::copy(&mut reader, &mut tokio::io::sink()).await;
            if let Err(error) = drained {
                tracing::debug!(%error, "the body of a replayed batch could not be read to its end");
                if version <= axum::http::Version::HTTP_11 {
                    response.headers_mut().insert(
                        axum::http::header::CONNECTION,
                        axum::http::HeaderValue::from_static("close"),
                    );
                }
            }
        }
        return Ok(response);
    };

    let (status, message) = match &error {
        IngestError::UnknownFormat | IngestError::Mapping(_) => {
            (StatusCode::BAD_REQUEST, error.to_string())
        }
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
    let mut response = (status, Json(body)).into_response();
    if matches!(
        error,
        IngestError::Storage(apitrail_storage::StorageError::StagingFull { .. })
    ) {
        // Staged files are committed at the next retry, at most 30 s away.
        response.headers_mut().insert(
            header::RETRY_AFTER,
            axum::http::HeaderValue::from_static("30"),
        );
    }
    Ok(response)
}

/// Accepts the encodings the ingest pipeline decodes itself.
///
/// gzip and zstd bodies are recognised by their magic bytes, with or without
/// the header, so the body limit applies to the bytes as sent.
pub(crate) fn check_content_encoding(headers: &HeaderMap) -> Result<(), ApiError> {
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
    /// Row limit of this request, which can lower the server's `query_max_rows` but never raise it.
    max_rows: Option<u64>,
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
    let row_limit = effective_row_limit(state.engine.limits().max_rows, params.max_rows)?;
    let started = Instant::now();
    let deadline = tokio::time::Instant::now() + state.query_timeout;

    let mut stream = tokio::time::timeout_at(deadline, state.engine.execute(&request.sql))
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
    // The first batch is awaited before the status is sent, so a query that
    // fails before its first row, as blocking operators over a memory limit
    // do, gets its error status instead of 200.
    let first = match tokio::time::timeout_at(deadline, stream.next()).await {
        Err(_) => return Err(query_timeout(state.query_timeout)),
        Ok(Some(Err(e))) => return Err(QueryError::from_datafusion(e).into()),
        Ok(Some(Ok(batch))) => Some(batch),
        Ok(None) => None,
    };
    let mut encoder = ResultEncoder::new(format, stream.schema()).with_row_limit(row_limit);
    let head = encoder
        .begin()
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    tracing::debug!(
        elapsed_ms = started.elapsed().as_millis() as u64,
        "query planned"
    );

    let progress = Progress {
        stream: Some(stream),
        first,
        encoder,
        head: Some(head),
        trailers: None,
        done: false,
        rows: 0,
        row_limit,
    };
    let body = Body::new(StreamBody::new(result_body(
        progress,
        deadline,
        state.query_timeout,
    )));
    let mut response = ([(header::CONTENT_TYPE, format.content_type())], body).into_response();
    let response_headers = response.headers_mut();
    match row_limit {
        Some(limit) => {
            response_headers.insert(
                header::TRAILER,
                HeaderValue::from_static("apitrail-error, apitrail-truncated"),
            );
            response_headers.insert(ROW_LIMIT_HEADER, HeaderValue::from(limit));
        }
        None => {
            response_headers.insert(header::TRAILER, HeaderValue::from_static("apitrail-error"));
        }
    }
    Ok(response)
}

/// Returns the row limit of one request: the server's `query_max_rows`
/// (0 for none), lowered by the request's `max_rows`.
fn effective_row_limit(server: u64, requested: Option<u64>) -> Result<Option<u64>, ApiError> {
    match (server, requested) {
        (_, Some(0)) => Err(ApiError::bad_request(
            "max_rows must be at least 1; leave it out for the server's row limit",
        )),
        (0, requested) => Ok(requested),
        (server, Some(requested)) => Ok(Some(requested.min(server))),
        (server, None) => Ok(Some(server)),
    }
}

/// State of one result body while it streams.
struct Progress {
    /// The query's batches; `None` once the result was cut at the row limit,
    /// which drops the stream and stops the query.
    stream: Option<datafusion::execution::SendableRecordBatchStream>,
    /// The batch read before the response started, sent before the others.
    first: Option<RecordBatch>,
    encoder: ResultEncoder,
    head: Option<Vec<u8>>,
    /// Trailers to send after the last data frame, once it has been sent.
    trailers: Option<HeaderMap>,
    done: bool,
    /// Rows sent so far.
    rows: u64,
    row_limit: Option<u64>,
}

impl Progress {
    /// Encodes one batch, or the part of it up to the row limit followed by
    /// the end of a cut result.
    fn encode(&mut self, batch: &RecordBatch) -> Result<Vec<u8>, String> {
        let count = batch.num_rows() as u64;
        let Some(limit) = self.row_limit else {
            return self.encode_rows(batch);
        };
        let remaining = limit.saturating_sub(self.rows);
        if count <= remaining {
            self.rows += count;
            return self.encode_rows(batch);
        }
        let mut out = self.encode_rows(&batch.slice(0, remaining as usize))?;
        out.extend(
            self.encoder
                .finish(true)
                .map_err(|e| format!("query failed: encoding the result failed: {e}"))?,
        );
        self.rows = limit;
        self.done = true;
        self.stream = None;
        self.trailers = Some(truncated_trailers());
        metrics::counter!("apitrail_query_truncations_total", "protocol" => "http").increment(1);
        tracing::debug!(row_limit = limit, "query result cut at the row limit");
        Ok(out)
    }

    fn encode_rows(&mut self, batch: &RecordBatch) -> Result<Vec<u8>, String> {
        self.encoder
            .batch(batch)
            .map_err(|e| format!("query failed: encoding the result failed: {e}"))
    }
}

/// Streams an encoded result, one batch at a time, until `deadline`.
///
/// An error after the first bytes were sent cannot change the status any
/// more. The body then ends with the format's error ending
/// ([`ResultEncoder::fail`]) followed by the trailer [`ERROR_TRAILER`]. A
/// result longer than the row limit ends after the rows up to the limit,
/// with the format's normal ending and the trailer [`TRUNCATED_TRAILER`].
/// Hyper sends trailers only to HTTP/1.1 clients that sent `TE: trailers`
/// and otherwise ends the chunked body without them.
fn result_body(
    start: Progress,
    deadline: tokio::time::Instant,
    timeout: Duration,
) -> impl futures::Stream<Item = Result<Frame<Bytes>, std::convert::Infallible>> + Send {
    futures::stream::unfold(start, move |mut progress| async move {
        if let Some(trailers) = progress.trailers.take() {
            return Some((Ok(Frame::trailers(trailers)), progress));
        }
        if progress.done {
            return None;
        }
        if let Some(head) = progress.head.take() {
            return Some((Ok(Frame::data(Bytes::from(head))), progress));
        }
        let next = match (progress.first.take(), progress.stream.as_mut()) {
            (Some(batch), _) => Ok(Some(Ok(batch))),
            (None, Some(stream)) => tokio::time::timeout_at(deadline, stream.next()).await,
            (None, None) => Ok(None),
        };
        let item = match next {
            Err(_) => Err(format!(
                "query exceeded a resource limit: sending its result took longer than the \
                 {timeout:?} time limit"
            )),
            Ok(Some(Ok(batch))) => progress.encode(&batch),
            Ok(Some(Err(e))) => Err(QueryError::from_datafusion(e).to_string()),
            Ok(None) => {
                progress.done = true;
                progress
                    .encoder
                    .end()
                    .map_err(|e| format!("query failed: encoding the result failed: {e}"))
            }
        };
        let bytes = match item {
            Ok(bytes) => bytes,
            Err(message) => {
                tracing::warn!(error = %message, "query failed while streaming its result");
                progress.done = true;
                progress.trailers = Some(error_trailers(&message));
                progress.encoder.fail(&message)
            }
        };
        Some((Ok(Frame::data(Bytes::from(bytes))), progress))
    })
}

/// Builds the trailer section `apitrail-truncated: true`.
fn truncated_trailers() -> HeaderMap {
    let mut trailers = HeaderMap::new();
    trailers.insert(TRUNCATED_TRAILER, HeaderValue::from_static("true"));
    trailers
}

/// Builds the trailer section `apitrail-error: <message>`.
///
/// Control characters, which a field value cannot contain, become spaces.
fn error_trailers(message: &str) -> HeaderMap {
    let clean: String = message
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let value = HeaderValue::from_bytes(clean.as_bytes())
        .unwrap_or_else(|_| HeaderValue::from_static("the query failed"));
    let mut trailers = HeaderMap::new();
    trailers.insert(ERROR_TRAILER, value);
    trailers
}

fn output_format(name: Option<&str>, headers: &HeaderMap) -> Result<OutputFormat, ApiError> {
    if let Some(name) = name {
        return OutputFormat::from_name(name).ok_or_else(|| {
            let known: Vec<&str> = OutputFormat::ALL.iter().map(|f| f.name()).collect();
            ApiError::bad_request(format!(
                "unknown output {name:?}; use one of {}",
                known.join(", ")
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

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    fn document() -> serde_json::Value {
        serde_json::from_str(OPENAPI_DOCUMENT).expect("server/openapi.json is valid JSON")
    }

    /// Lists `METHOD /path` for every operation of the OpenAPI document.
    fn documented_operations(document: &serde_json::Value) -> BTreeSet<String> {
        let paths = document["paths"]
            .as_object()
            .expect("the document has a paths object");
        let mut operations = BTreeSet::new();
        for (path, item) in paths {
            let item = item.as_object().expect("a path item is an object");
            for method in item.keys() {
                operations.insert(format!("{} {path}", method.to_uppercase()));
            }
        }
        operations
    }

    #[test]
    fn openapi_matches_routes() {
        let served: BTreeSet<String> = operations()
            .iter()
            .map(|(method, path)| format!("{method} {path}"))
            .collect();
        let documented = documented_operations(&document());
        let undocumented: Vec<&String> = served.difference(&documented).collect();
        assert!(
            undocumented.is_empty(),
            "routes missing from server/openapi.json: {undocumented:?}"
        );
        let unserved: Vec<&String> = documented.difference(&served).collect();
        assert!(
            unserved.is_empty(),
            "server/openapi.json documents operations the router does not serve: {unserved:?}"
        );
    }

    #[test]
    fn openapi_states_each_route_role() {
        let document = document();
        for (method, path, access) in route_table().operations {
            let operation = &document["paths"][path][method.as_str().to_lowercase()];
            let documented_role = operation["x-apitrail-role"].as_str();
            match access {
                Access::Public => {
                    assert_eq!(documented_role, None, "{method} {path} is public");
                    assert_eq!(
                        operation["security"],
                        json!([]),
                        "{method} {path} is public but documents a security requirement"
                    );
                }
                Access::Role(role, schemes) => {
                    assert_eq!(documented_role, Some(role.as_str()), "{method} {path}");
                    assert!(
                        operation["responses"]["401"].is_object(),
                        "{method} {path} documents no 401"
                    );
                    let schemes_count = operation["security"].as_array().map_or(1, Vec::len);
                    let expected = if schemes == Schemes::Shipper { 3 } else { 1 };
                    assert_eq!(schemes_count, expected, "{method} {path} security schemes");
                }
            }
        }
    }

    #[test]
    fn openapi_lists_output_formats() {
        let document = document();
        let operation = &document["paths"]["/api/v1/query"]["post"];
        let parameter = operation["parameters"]
            .as_array()
            .expect("the query operation has parameters")
            .iter()
            .find(|p| p["name"] == "output")
            .expect("the query operation documents `output`");
        let names: Vec<&str> = parameter["schema"]["enum"]
            .as_array()
            .expect("`output` has an enum")
            .iter()
            .map(|v| v.as_str().expect("output names are strings"))
            .collect();
        for name in &names {
            assert!(
                OutputFormat::from_name(name).is_some(),
                "documented output {name:?} is not accepted"
            );
        }
        let content = operation["responses"]["200"]["content"]
            .as_object()
            .expect("the 200 response lists its content types");
        for format in OutputFormat::ALL {
            assert!(
                names.contains(&format.name()),
                "output {:?} is not documented",
                format.name()
            );
            let media_type = format.content_type().split(';').next().unwrap_or("");
            assert!(
                content.contains_key(media_type),
                "content type {media_type:?} of output {:?} is not documented",
                format.name()
            );
        }
    }

    #[test]
    fn row_limit_is_lowered_never_raised() {
        let cases = [
            (0, None, None),
            (0, Some(5), Some(5)),
            (100, None, Some(100)),
            (100, Some(5), Some(5)),
            (100, Some(500), Some(100)),
        ];
        for (server, requested, expected) in cases {
            let limit = effective_row_limit(server, requested)
                .unwrap_or_else(|e| panic!("server {server}, max_rows {requested:?}: {e:?}"));
            assert_eq!(limit, expected, "server {server}, max_rows {requested:?}");
        }
        assert!(
            effective_row_limit(100, Some(0)).is_err(),
            "max_rows=0 is rejected"
        );
    }

    #[test]
    fn error_trailer_drops_controls() {
        let trailers = error_trailers("line one\nline two");
        assert_eq!(
            trailers.get(ERROR_TRAILER).map(HeaderValue::as_bytes),
            Some(&b"line one line two"[..]),
            "a line feed cannot be sent inside a field value"
        );
    }
}
