//! The Elasticsearch bulk API, for log shippers that can only send to Elasticsearch.
//!
//! Filebeat, Logstash, Fluent Bit's `es` output and Vector's `elasticsearch`
//! sink post newline-delimited pairs to `_bulk`: an action line
//! (`{"index":{"_index":"..."}}` or `{"create":{...}}`) and the document.
//! apitrail takes each document as one record of an access-log format. It is
//! either a structured record (an API Gateway or Cloudflare JSON object) or
//! the shipper's envelope around a raw line, under `message` or `log` (see
//! `apitrail_ingest::envelope`).
//!
//! The format is the `format` query parameter, else the index name when it
//! names a format (`clf`, or `clf-2024.05.01` as Logstash-style names add a
//! date), else detected from the documents of that index. The response has
//! the shape Elasticsearch gives, one item per action: `201` for a stored
//! or skipped document, `400` with a reason for one that could not be
//! parsed, and `400` for `update` and `delete`, which an append-only store
//! does not do. A storage failure fails the whole request with `503`, so the
//! shipper retries it.
//!
//! The cluster-information and health routes answer what shippers check
//! before they send.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Instant;

use apitrail_ingest::{
    Format, IngestReport, ParseContext, ParsedChunk, detect_format, parse_chunk,
};
use axum::Json;
use axum::body::Body;
use axum::extract::{ConnectInfo, Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::io::AsyncReadExt;

use crate::http::{ApiError, AppState};
use crate::ingest::decompress;

/// The Elasticsearch version announced to shippers that check it.
///
/// Shippers pick their request format from the major version; 8 gives
/// bulk requests without document types.
const ANNOUNCED_VERSION: &str = "8.11.0";

#[derive(Debug, Deserialize)]
pub struct BulkParams {
    format: Option<String>,
    sensor: Option<String>,
    /// Mapping of the generic `json` format.
    mapping: Option<String>,
}

/// `GET /api/v1/es`: the cluster information shippers read the version from.
pub async fn info() -> Json<Value> {
    Json(json!({
        "name": "apitrail",
        "cluster_name": "apitrail",
        "version": {
            "number": ANNOUNCED_VERSION,
            "build_flavor": "default",
            "lucene_version": "9.8.0",
            "minimum_wire_compatibility_version": "7.17.0",
            "minimum_index_compatibility_version": "7.0.0"
        },
        "tagline": "apitrail: the Elasticsearch bulk API, for ingest only"
    }))
}

/// `GET /api/v1/es/_cluster/health`: always green while the server runs.
pub async fn health() -> Json<Value> {
    Json(json!({
        "cluster_name": "apitrail",
        "status": "green",
        "timed_out": false,
        "number_of_nodes": 1,
        "number_of_data_nodes": 1
    }))
}

/// `POST /api/v1/es/_bulk`.
pub async fn bulk(
    state: State<AppState>,
    peer: ConnectInfo<SocketAddr>,
    params: Query<BulkParams>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    bulk_into(state, peer, None, params, headers, body).await
}

/// `POST /api/v1/es/{index}/_bulk`: `index` is the default index of the actions.
pub async fn bulk_index(
    state: State<AppState>,
    peer: ConnectInfo<SocketAddr>,
    Path(index): Path<String>,
    params: Query<BulkParams>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    bulk_into(state, peer, Some(index), params, headers, body).await
}

/// One action of a bulk request.
#[derive(Debug)]
struct Action {
    /// `index`, `create`, `update` or `delete`.
    op: String,
    index: Option<String>,
    id: Option<String>,
    /// Index into the documents of its group, for `index` and `create`.
    document: Option<(GroupKey, usize)>,
    /// The reason the action fails before any parsing.
    error: Option<(&'static str, String)>,
}

/// Documents that are parsed together: same format setting, same index.
type GroupKey = (Option<Format>, String);

async fn bulk_into(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    path_index: Option<String>,
    Query(params): Query<BulkParams>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let started = Instant::now();
    crate::http::check_content_encoding(&headers)?;
    let forced = match params.format.as_deref() {
        _ if params.mapping.is_some() => Some(Format::Json),
        None | Some("") | Some("auto") => None,
        Some(name) => Some(
            name.parse::<Format>()
                .map_err(|e| ApiError::bad_request(e.to_string()))?,
        ),
    };
    let text = read_body(body, state.max_body_bytes).await?;

    let mut actions = Vec::new();
    let mut groups: HashMap<GroupKey, Vec<(u64, String)>> = HashMap::new();
    // Groups in the order of their first document, so that ingest order follows the body.
    let mut group_order: Vec<GroupKey> = Vec::new();
    let mut lines = text
        .split('\n')
        .enumerate()
        .map(|(i, line)| (i as u64 + 1, line.trim_end_matches('\r')))
        .filter(|(_, line)| !line.trim().is_empty());
    while let Some((line_number, line)) = lines.next() {
        let mut action = parse_action(line, line_number, path_index.as_deref());
        if action.error.is_none() && matches!(action.op.as_str(), "index" | "create" | "update") {
            match lines.next() {
                None => {
                    action.error = Some((
                        "action_request_validation_exception",
                        format!(
                            "the {} action on line {line_number} has no document line after it",
                            action.op
                        ),
                    ));
                }
                Some(_) if action.op == "update" => {
                    action.error = Some(append_only(&action.op));
                }
                Some((doc_line, document)) => {
                    let index = action.index.clone().unwrap_or_default();
                    let format = forced.or_else(|| format_of_index(&index));
                    let key = (format, index.clone());
                    if !groups.contains_key(&key) {
                        group_order.push(key.clone());
                    }
                    let group = groups.entry(key).or_default();
                    action.document = Some(((format, index), group.len()));
                    group.push((doc_line, document.to_string()));
                }
            }
        } else if action.error.is_none() && action.op == "delete" {
            action.error = Some(append_only(&action.op));
        }
        actions.push(action);
    }

    let mut outcomes: HashMap<GroupKey, GroupOutcome> = HashMap::new();
    let origin = format!("http:{}:es_bulk", peer.ip());
    for key in group_order {
        let documents = groups.remove(&key).unwrap_or_default();
        let outcome = ingest_group(&state, key.0, &documents, &params, &origin).await?;
        outcomes.insert(key, outcome);
    }

    let mut errors = false;
    let items: Vec<Value> = actions
        .iter()
        .enumerate()
        .map(|(position, action)| {
            let id = action
                .id
                .clone()
                .unwrap_or_else(|| format!("{:x}-{position}", started_nanos()));
            let index = action.index.clone().unwrap_or_default();
            let error = action.error.clone().or_else(|| {
                let (key, slot) = action.document.as_ref()?;
                outcomes.get(key)?.errors.get(*slot).cloned().flatten()
            });
            let body = match error {
                Some((kind, reason)) => {
                    errors = true;
                    json!({
                        "_index": index,
                        "_id": id,
                        "status": 400,
                        "error": { "type": kind, "reason": reason }
                    })
                }
                None => json!({
                    "_index": index,
                    "_id": id,
                    "_version": 1,
                    "result": "created",
                    "_shards": { "total": 1, "successful": 1, "failed": 0 },
                    "_seq_no": position,
                    "_primary_term": 1,
                    "status": 201
                }),
            };
            json!({ action.op.clone(): body })
        })
        .collect();

    let mut report = IngestReport::default();
    for outcome in outcomes.into_values() {
        report.merge(outcome.report);
    }
    tracing::debug!(
        origin = %origin,
        actions = actions.len(),
        accepted = report.accepted,
        rejected = report.rejected,
        skipped = report.skipped,
        elapsed_ms = started.elapsed().as_millis() as u64,
        "bulk request finished"
    );
    Ok(Json(json!({
        "took": started.elapsed().as_millis() as u64,
        "errors": errors,
        "items": items
    }))
    .into_response())
}

/// Result of parsing one group of documents.
struct GroupOutcome {
    report: IngestReport,
    /// Per document of the group: the error that rejected it, if any.
    errors: Vec<Option<(&'static str, String)>>,
}

/// Parses and stores one group's documents, one per line.
async fn ingest_group(
    state: &AppState,
    format: Option<Format>,
    documents: &[(u64, String)],
    params: &BulkParams,
    origin: &str,
) -> Result<GroupOutcome, ApiError> {
    let mut data = String::with_capacity(documents.iter().map(|(_, d)| d.len() + 1).sum());
    for (_, document) in documents {
        data.push_str(document);
        data.push('\n');
    }
    let Some(format) = format.or_else(|| detect_format(data.as_bytes())) else {
        let reason = format!(
            "could not detect the log format of the documents; name it with ?format= or an index named after the format: {}",
            Format::names()
        );
        return Ok(GroupOutcome {
            report: IngestReport {
                rejected: documents.len() as u64,
                ..IngestReport::default()
            },
            errors: vec![Some(("mapper_parsing_exception", reason)); documents.len()],
        });
    };

    if format == Format::Json {
        state
            .pipeline
            .json_mapping(params.mapping.as_deref())
            .map_err(ApiError::bad_request)?;
    }
    let pipeline = std::sync::Arc::clone(&state.pipeline);
    let sensor = params.sensor.clone();
    let mapping = params.mapping.clone();
    let parsed: ParsedChunk = tokio::task::spawn_blocking(move || {
        let json_mapping = match format {
            Format::Json => pipeline.json_mapping(mapping.as_deref()).ok(),
            _ => None,
        };
        let ctx = ParseContext {
            json_mapping,
            ..pipeline.context(sensor.as_deref())
        };
        parse_chunk(format, data.as_bytes(), 1, &ctx)
    })
    .await
    .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;

    let mut errors = vec![None; documents.len()];
    // Line numbers of the parsed data are document positions, plus one.
    let mut rejects = parsed.rejects;
    for reject in &mut rejects {
        let slot = (reject.line as usize).saturating_sub(1);
        if let Some(error) = errors.get_mut(slot) {
            *error = Some(("mapper_parsing_exception", reject.reason.clone()));
        }
        if let Some((body_line, _)) = documents.get(slot) {
            reject.line = *body_line;
        }
    }
    let rejects_file = state.store.rejects().clone();
    let origin = origin.to_string();
    tokio::task::spawn_blocking(move || rejects_file.append(&origin, format.name(), &rejects))
        .await
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?
        .map_err(storage_unavailable)?;
    // Events of a day that retention has removed are reported as skipped, not stored.
    let (batch, expired) = state
        .store
        .drop_expired_events(parsed.batch)
        .map_err(storage_unavailable)?;
    if batch.num_rows() > 0 {
        state
            .store
            .append(batch)
            .await
            .map_err(storage_unavailable)?;
    }
    let mut report = parsed.report;
    apitrail_storage::retention::report_expired(&mut report, expired);
    // Errors in the report name lines of the request body, as the rejects file does.
    for error in &mut report.errors {
        if let Some((body_line, _)) = documents.get((error.line as usize).saturating_sub(1)) {
            error.line = *body_line;
        }
    }
    Ok(GroupOutcome { report, errors })
}

fn storage_unavailable(error: apitrail_storage::StorageError) -> ApiError {
    tracing::error!(error = %error, "bulk request could not store events");
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        format!("storing events failed: {error}"),
    )
}

/// Parses an action line such as `{"index":{"_index":"clf","_id":"1"}}`.
fn parse_action(line: &str, line_number: u64, default_index: Option<&str>) -> Action {
    let invalid = |reason: String| Action {
        op: "index".to_string(),
        index: default_index.map(str::to_string),
        id: None,
        document: None,
        error: Some(("action_request_validation_exception", reason)),
    };
    let value: Value = match serde_json::from_str(line) {
        Ok(value) => value,
        Err(e) => return invalid(format!("line {line_number} is not a bulk action: {e}")),
    };
    let Some((op, meta)) = value
        .as_object()
        .filter(|o| o.len() == 1)
        .and_then(|o| o.iter().next())
    else {
        return invalid(format!(
            "line {line_number} is not a bulk action: expected one of index, create, update or delete as its only key"
        ));
    };
    if !matches!(op.as_str(), "index" | "create" | "update" | "delete") {
        return invalid(format!(
            "line {line_number}: unknown bulk action {op:?}; expected index, create, update or delete"
        ));
    }
    let text = |key: &str| meta.get(key).and_then(Value::as_str).map(str::to_string);
    Action {
        op: op.clone(),
        index: text("_index").or_else(|| default_index.map(str::to_string)),
        id: text("_id"),
        document: None,
        error: None,
    }
}

fn append_only(op: &str) -> (&'static str, String) {
    (
        "action_request_validation_exception",
        format!("apitrail stores events append-only and does not {op} documents"),
    )
}

/// Returns the format an index name is for: `clf`, or `clf-<anything>`.
fn format_of_index(index: &str) -> Option<Format> {
    index.parse().ok().or_else(|| {
        let (head, _) = index.split_once('-')?;
        head.parse().ok()
    })
}

/// Reads the whole body, decompressed, up to `limit` bytes as sent.
async fn read_body(body: Body, limit: u64) -> Result<String, ApiError> {
    let too_large = || {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "request body is larger than the limit of {limit} bytes; lower the shipper's bulk size or raise max_body_bytes"
            ),
        )
    };
    let bytes = axum::body::to_bytes(body, limit as usize)
        .await
        .map_err(|_| too_large())?;
    let mut reader = decompress(&bytes[..])
        .await
        .map_err(|e| ApiError::bad_request(format!("reading the body failed: {e}")))?;
    let mut data = Vec::new();
    // A decompressed body may be larger than the limit by the compression
    // ratio; it is bounded at ten times the limit.
    (&mut reader)
        .take(limit.saturating_mul(10))
        .read_to_end(&mut data)
        .await
        .map_err(|e| ApiError::bad_request(format!("decompressing the body failed: {e}")))?;
    String::from_utf8(data).map_err(|e| {
        ApiError::bad_request(format!(
            "the bulk body is not UTF-8 (byte {})",
            e.utf8_error().valid_up_to()
        ))
    })
}

fn started_nanos() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_names_select_formats() {
        assert_eq!(format_of_index("clf"), Some(Format::Clf));
        assert_eq!(format_of_index("aws_alb-2024.05.01"), Some(Format::AwsAlb));
        assert_eq!(format_of_index("logstash-2024.05.01"), None);
        assert_eq!(format_of_index(""), None);
    }

    #[test]
    fn actions_are_read_with_their_index_and_id() {
        let action = parse_action(r#"{"create":{"_index":"clf","_id":"7"}}"#, 1, None);
        assert_eq!(
            (
                action.op.as_str(),
                action.index.as_deref(),
                action.id.as_deref()
            ),
            ("create", Some("clf"), Some("7"))
        );
        assert!(action.error.is_none());

        let action = parse_action(r#"{"index":{}}"#, 3, Some("aws_alb"));
        assert_eq!(action.index.as_deref(), Some("aws_alb"));

        let action = parse_action(r#"{"upsert":{}}"#, 5, None);
        let (_, reason) = action.error.expect("unknown actions fail");
        assert!(reason.contains("line 5"), "{reason}");
    }
}
