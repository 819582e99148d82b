//! The OTLP/HTTP receiver: `POST /v1/traces` and `POST /v1/logs`.
//!
//! A body is binary protobuf (`Content-Type: application/x-protobuf`) or
//! JSON (`application/json`), plain or gzip (`Content-Encoding: gzip`), of
//! at most [`MAX_REQUEST_BYTES`] as sent and after decompression. The
//! response is the `Export*ServiceResponse` in the request's encoding. A
//! failed request gets a `google.rpc.Status` body in that encoding. Its
//! status code tells an OTLP client whether to retry: 400 for a
//! body that cannot be decoded, 413 for one over the limit, 415 for an
//! unsupported `Content-Type` or `Content-Encoding`, and 503 with
//! `Retry-After` when the store cannot take writes.
//!
//! The optional query parameter `sensor` sets the `sensor` of every event
//! of the request, in place of its resource's `service.name`.
//!
//! A token with the `ingest` role is needed where the listener requires
//! tokens, as `Authorization: Bearer`, `Basic` or `ApiKey`, as on the
//! ingest endpoint: 401 with `WWW-Authenticate` without a valid one, 403
//! for a token without the role.

use std::net::SocketAddr;

use apitrail_ingest::formats::otlp::Signal;
use axum::body::Body;
use axum::extract::{ConnectInfo, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Extension, Router};
use bytes::Bytes;
use http_body_util::BodyExt;
use prost::Message;
use serde::Deserialize;

use super::grpc::{logs_response, rpc_status, trace_response};
use super::status::RpcStatus;
use super::{
    Encoding, ExportRequest, MAX_REQUEST_BYTES, RETRY_AFTER_SECS, Receipt, ReceiveError, Receiver,
    Transport,
};
use crate::auth::{AuthError, Authenticator, Role, Schemes, parse_authorization};

const PROTOBUF: &str = "application/x-protobuf";
const JSON: &str = "application/json";

/// Builds the router of the OTLP/HTTP listener; `auth` decides who may send.
pub fn router(receiver: Receiver, auth: Authenticator) -> Router {
    Router::new()
        .route("/v1/traces", post(traces))
        .route("/v1/logs", post(logs))
        .route_layer(axum::middleware::from_fn(require_ingest))
        .fallback(not_found)
        .with_state(receiver)
        .layer(Extension(auth))
}

#[derive(Debug, Deserialize)]
struct ExportParams {
    /// Sensor of every event of the request, in place of `service.name`.
    sensor: Option<String>,
}

async fn traces(
    State(receiver): State<Receiver>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Query(params): Query<ExportParams>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    export(Signal::Traces, receiver, peer, params, &headers, body).await
}

async fn logs(
    State(receiver): State<Receiver>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Query(params): Query<ExportParams>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    export(Signal::Logs, receiver, peer, params, &headers, body).await
}

async fn export(
    signal: Signal,
    receiver: Receiver,
    peer: SocketAddr,
    params: ExportParams,
    headers: &HeaderMap,
    body: Body,
) -> Response {
    let encoding = match body_encoding(headers) {
        Ok(encoding) => encoding,
        Err(message) => return unsupported(Encoding::Protobuf, message),
    };
    let gzip = match is_gzip(headers) {
        Ok(gzip) => gzip,
        Err(message) => return unsupported(encoding, message),
    };
    let bytes = match read_body(body).await {
        Ok(bytes) => bytes,
        Err(error) => return failure(encoding, &error),
    };

    let request = ExportRequest::Body {
        signal,
        encoding,
        gzip,
        bytes,
    };
    let sensor = params.sensor.filter(|sensor| !sensor.is_empty());
    let origin = format!("otlp-http:{}", peer.ip());
    match receiver
        .receive(request, Transport::Http, sensor, origin)
        .await
    {
        Ok(receipt) => success(encoding, &receipt),
        Err(error) => failure(encoding, &error),
    }
}

/// Reads the encoding from `Content-Type`, ignoring parameters such as `charset`.
fn body_encoding(headers: &HeaderMap) -> Result<Encoding, String> {
    let Some(value) = headers.get(header::CONTENT_TYPE) else {
        return Err(format!(
            "missing Content-Type; send {PROTOBUF} or {JSON} with the body"
        ));
    };
    let media_type = value
        .to_str()
        .unwrap_or("")
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    match media_type.as_str() {
        PROTOBUF | "application/protobuf" => Ok(Encoding::Protobuf),
        JSON => Ok(Encoding::Json),
        _ => Err(format!(
            "Content-Type {media_type:?} is not supported; send {PROTOBUF} or {JSON}"
        )),
    }
}

/// Reads `Content-Encoding`: `gzip`, or none.
fn is_gzip(headers: &HeaderMap) -> Result<bool, String> {
    let Some(value) = headers.get(header::CONTENT_ENCODING) else {
        return Ok(false);
    };
    let encoding = value.to_str().unwrap_or("").trim().to_ascii_lowercase();
    match encoding.as_str() {
        "" | "identity" => Ok(false),
        "gzip" | "x-gzip" => Ok(true),
        _ => Err(format!(
            "Content-Encoding {encoding:?} is not supported; send the body plain or gzip"
        )),
    }
}

/// Reads the body, failing once it passes [`MAX_REQUEST_BYTES`].
async fn read_body(body: Body) -> Result<Bytes, ReceiveError> {
    match http_body_util::Limited::new(body, MAX_REQUEST_BYTES)
        .collect()
        .await
    {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(error) if error.is::<http_body_util::LengthLimitError>() => {
            Err(ReceiveError::TooLarge("as sent"))
        }
        Err(error) => Err(ReceiveError::BadRequest(format!(
            "reading the request body failed: {error}"
        ))),
    }
}

/// Builds the `200 OK` response: the `Export*ServiceResponse`, with
/// `partial_success` when items were rejected.
fn success(encoding: Encoding, receipt: &Receipt) -> Response {
    let body = match encoding {
        Encoding::Protobuf => match receipt.signal {
            Signal::Traces => trace_response(receipt).encode_to_vec(),
            Signal::Logs => logs_response(receipt).encode_to_vec(),
        },
        Encoding::Json => response_json(receipt).into_bytes(),
    };
    (StatusCode::OK, content_type(encoding), body).into_response()
}

/// Writes the response in OTLP/JSON, where 64-bit integers are strings.
fn response_json(receipt: &Receipt) -> String {
    let Some(message) = &receipt.error_message else {
        return "{}".to_owned();
    };
    let count_key = match receipt.signal {
        Signal::Traces => "rejectedSpans",
        Signal::Logs => "rejectedLogRecords",
    };
    serde_json::json!({
        "partialSuccess": {
            count_key: receipt.rejected.to_string(),
            "errorMessage": message,
        }
    })
    .to_string()
}

/// Builds the response to a failed export.
fn failure(encoding: Encoding, error: &ReceiveError) -> Response {
    let status = match error {
        ReceiveError::BadRequest(_) => StatusCode::BAD_REQUEST,
        ReceiveError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
        ReceiveError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        ReceiveError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
    };
    let mut response = status_response(encoding, status, &rpc_status(error));
    if matches!(error, ReceiveError::Unavailable(_)) {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(RETRY_AFTER_SECS));
    }
    response
}

fn unsupported(encoding: Encoding, message: String) -> Response {
    let status = RpcStatus::new(tonic::Code::InvalidArgument, message);
    status_response(encoding, StatusCode::UNSUPPORTED_MEDIA_TYPE, &status)
}

/// Builds a response whose body is a `google.rpc.Status` in `encoding`.
fn status_response(encoding: Encoding, code: StatusCode, status: &RpcStatus) -> Response {
    let body = match encoding {
        Encoding::Protobuf => status.encode_to_vec(),
        Encoding::Json => status.to_json().into_bytes(),
    };
    (code, content_type(encoding), body).into_response()
}

fn content_type(encoding: Encoding) -> [(header::HeaderName, &'static str); 1] {
    let value = match encoding {
        Encoding::Protobuf => PROTOBUF,
        Encoding::Json => JSON,
    };
    [(header::CONTENT_TYPE, value)]
}

/// Checks the request's credentials for the `ingest` role, then runs the route.
async fn require_ingest(mut request: Request, next: Next) -> Response {
    let encoding = body_encoding(request.headers()).unwrap_or(Encoding::Protobuf);
    let Some(auth) = request.extensions().get::<Authenticator>().cloned() else {
        tracing::error!("the OTLP/HTTP router has no authenticator; refusing the request");
        let status = RpcStatus::new(tonic::Code::Internal, "authentication is not set up");
        return status_response(encoding, StatusCode::INTERNAL_SERVER_ERROR, &status);
    };
    let credentials = match request.headers().get(header::AUTHORIZATION) {
        None => Ok(None),
        Some(value) => value
            .to_str()
            .map_err(|_| AuthError::Malformed("not visible ASCII".into()))
            .and_then(|text| parse_authorization(text, Schemes::Shipper))
            .map(Some),
    };
    let authorized =
        credentials.and_then(|credentials| auth.authorize(credentials.as_ref(), Role::Ingest));
    match authorized {
        Ok(principal) => {
            request.extensions_mut().insert(principal);
            next.run(request).await
        }
        Err(error) => auth_failure(encoding, &error, request.uri().path()),
    }
}

/// Builds the response to a rejected request: 401 with a `WWW-Authenticate`
/// challenge when the client should authenticate, 403 when its token lacks the role.
fn auth_failure(encoding: Encoding, error: &AuthError, path: &str) -> Response {
    metrics::counter!("apitrail_auth_failures_total", "protocol" => "otlp_http").increment(1);
    tracing::info!(path, error = %error, "OTLP/HTTP request rejected");
    if !error.is_unauthenticated() {
        let status = RpcStatus::new(tonic::Code::PermissionDenied, error.to_string());
        return status_response(encoding, StatusCode::FORBIDDEN, &status);
    }
    let status = RpcStatus::new(tonic::Code::Unauthenticated, error.to_string());
    let mut response = status_response(encoding, StatusCode::UNAUTHORIZED, &status);
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static(crate::http::challenge(Schemes::Shipper)),
    );
    response
}

/// Returns 404 with the routes of the receiver.
async fn not_found(uri: axum::http::Uri, headers: HeaderMap) -> Response {
    let encoding = body_encoding(&headers).unwrap_or(Encoding::Protobuf);
    let mut message = format!(
        "no route {}; the OTLP/HTTP receiver serves POST /v1/traces and POST /v1/logs",
        uri.path()
    );
    if uri.path() == "/v1/metrics" {
        message.push_str(" (apitrail stores HTTP calls, not metrics)");
    }
    let status = RpcStatus::new(tonic::Code::NotFound, message);
    status_response(encoding, StatusCode::NOT_FOUND, &status)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(header::HeaderName, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(name.clone(), HeaderValue::from_str(value).unwrap());
        }
        map
    }

    #[test]
    fn content_types() {
        let cases = [
            ("application/x-protobuf", Some(Encoding::Protobuf)),
            ("application/protobuf", Some(Encoding::Protobuf)),
            ("application/json", Some(Encoding::Json)),
            ("Application/JSON; charset=utf-8", Some(Encoding::Json)),
            ("text/plain", None),
        ];
        for (value, expected) in cases {
            let found = body_encoding(&headers(&[(header::CONTENT_TYPE, value)])).ok();
            assert_eq!(found, expected, "{value}");
        }
        let missing = body_encoding(&HeaderMap::new()).unwrap_err();
        assert!(missing.starts_with("missing Content-Type"), "{missing}");
    }

    #[test]
    fn content_encodings() {
        assert_eq!(is_gzip(&HeaderMap::new()), Ok(false));
        assert_eq!(
            is_gzip(&headers(&[(header::CONTENT_ENCODING, "gzip")])),
            Ok(true)
        );
        assert_eq!(
            is_gzip(&headers(&[(header::CONTENT_ENCODING, "identity")])),
            Ok(false)
        );
        let error = is_gzip(&headers(&[(header::CONTENT_ENCODING, "br")])).unwrap_err();
        assert!(error.contains("\"br\" is not supported"), "{error}");
    }

    #[test]
    fn json_response_writes_counts_as_strings() {
        let mut receipt = Receipt {
            signal: Signal::Logs,
            items: 2,
            accepted: 1,
            skipped: 0,
            rejected: 1,
            error_message: Some("1 of 2 log records were rejected".to_owned()),
        };
        assert_eq!(
            response_json(&receipt),
            r#"{"partialSuccess":{"errorMessage":"1 of 2 log records were rejected","rejectedLogRecords":"1"}}"#
        );
        receipt.rejected = 0;
        receipt.error_message = None;
        assert_eq!(response_json(&receipt), "{}");
    }

    #[test]
    fn unavailable_asks_to_retry_later() {
        let error = ReceiveError::Unavailable(apitrail_storage::StorageError::ShuttingDown);
        let response = failure(Encoding::Json, &error);
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(
            response.headers().get(header::RETRY_AFTER),
            Some(&HeaderValue::from(RETRY_AFTER_SECS))
        );
        let too_large = failure(Encoding::Protobuf, &ReceiveError::TooLarge("as sent"));
        assert_eq!(too_large.status(), StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(too_large.headers().get(header::RETRY_AFTER), None);
    }
}
