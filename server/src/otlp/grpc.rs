//! The OTLP/gRPC receiver: `opentelemetry.proto.collector.trace.v1.TraceService/Export`
//! and `opentelemetry.proto.collector.logs.v1.LogsService/Export`.
//!
//! Requests may be gzip-compressed (`grpc-encoding: gzip`) and may be at
//! most [`MAX_REQUEST_BYTES`] decoded. A larger one fails with
//! `RESOURCE_EXHAUSTED`, which OTLP clients do not retry. tonic reports it
//! as `OUT_OF_RANGE`, which they do retry, so [`oversize_is_resource_exhausted`]
//! rewrites that status. Every call needs
//! a token with the `ingest` role where the listener requires tokens
//! ([`AuthInterceptor`]): `UNAUTHENTICATED` without a valid one,
//! `PERMISSION_DENIED` for a token without the role.

use std::net::SocketAddr;

use anyhow::Context;
use opentelemetry_proto::tonic::collector::logs::v1::logs_service_server::{
    LogsService, LogsServiceServer,
};
use opentelemetry_proto::tonic::collector::logs::v1::{
    ExportLogsPartialSuccess, ExportLogsServiceRequest, ExportLogsServiceResponse,
};
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTracePartialSuccess, ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tonic::codec::CompressionEncoding;
use tonic::service::interceptor::InterceptedService;
use tonic::{Request, Response, Status};

use super::status::RpcStatus;
use super::{
    ExportRequest, MAX_REQUEST_BYTES, RETRY_AFTER_SECS, Receipt, ReceiveError, Receiver, Transport,
};
use crate::auth::{Authenticator, Role};
use crate::flight::auth::AuthInterceptor;

/// Returns the gRPC server settings, with TLS when `tls` is set.
pub fn server_builder(
    tls: Option<tonic::transport::ServerTlsConfig>,
) -> anyhow::Result<tonic::transport::Server> {
    let server = tonic::transport::Server::builder();
    match tls {
        Some(tls) => server
            .tls_config(tls)
            .context("setting up TLS for the OTLP/gRPC receiver"),
        None => Ok(server),
    }
}

/// Serves both OTLP services with `server` on `listener` until `shutdown` fires.
pub async fn serve(
    server: tonic::transport::Server,
    listener: TcpListener,
    receiver: Receiver,
    auth: Authenticator,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let interceptor = AuthInterceptor::for_role(auth, Role::Ingest, "otlp_grpc");
    let traces = TraceServiceServer::new(TraceReceiver(receiver.clone()))
        .accept_compressed(CompressionEncoding::Gzip)
        .max_decoding_message_size(MAX_REQUEST_BYTES);
    let logs = LogsServiceServer::new(LogsReceiver(receiver))
        .accept_compressed(CompressionEncoding::Gzip)
        .max_decoding_message_size(MAX_REQUEST_BYTES);
    let incoming = crate::flight::accept_nodelay(listener);
    server
        .layer(tower::util::MapResponseLayer::new(
            oversize_is_resource_exhausted as fn(GrpcResponse) -> GrpcResponse,
        ))
        .add_service(InterceptedService::new(traces, interceptor.clone()))
        .add_service(InterceptedService::new(logs, interceptor))
        .serve_with_incoming_shutdown(incoming, shutdown.cancelled_owned())
        .await?;
    Ok(())
}

type GrpcResponse = axum::http::Response<tonic::body::Body>;

/// gRPC status code `OUT_OF_RANGE` in the `grpc-status` header.
const OUT_OF_RANGE: &str = "11";

/// Turns the `OUT_OF_RANGE` status of a request over tonic's decoding limit
/// into `RESOURCE_EXHAUSTED`, the code that OTLP specifies for it.
///
/// The export handlers never return `OUT_OF_RANGE` themselves, so the
/// status can only come from the limit. tonic sends an error before any
/// message as a response with only headers, so the header is all there is to change.
fn oversize_is_resource_exhausted(mut response: GrpcResponse) -> GrpcResponse {
    let headers = response.headers_mut();
    if headers
        .get("grpc-status")
        .is_some_and(|code| code == OUT_OF_RANGE)
    {
        let code = tonic::Code::ResourceExhausted as i32;
        headers.insert("grpc-status", axum::http::HeaderValue::from(code));
        let message = format!(
            "the request is larger than {MAX_REQUEST_BYTES} bytes decoded; send smaller \
             batches (the exporter's batch size)"
        );
        if let Ok(value) = axum::http::HeaderValue::from_str(&message) {
            headers.insert("grpc-message", value);
        }
    }
    response
}

/// `TraceService`: spans.
struct TraceReceiver(Receiver);

/// `LogsService`: log records.
struct LogsReceiver(Receiver);

#[tonic::async_trait]
impl TraceService for TraceReceiver {
    async fn export(
        &self,
        request: Request<ExportTraceServiceRequest>,
    ) -> Result<Response<ExportTraceServiceResponse>, Status> {
        let origin = origin(request.remote_addr());
        let receipt = self
            .0
            .receive(
                ExportRequest::Traces(request.into_inner()),
                Transport::Grpc,
                None,
                origin,
            )
            .await
            .map_err(grpc_status)?;
        Ok(Response::new(trace_response(&receipt)))
    }
}

#[tonic::async_trait]
impl LogsService for LogsReceiver {
    async fn export(
        &self,
        request: Request<ExportLogsServiceRequest>,
    ) -> Result<Response<ExportLogsServiceResponse>, Status> {
        let origin = origin(request.remote_addr());
        let receipt = self
            .0
            .receive(
                ExportRequest::Logs(request.into_inner()),
                Transport::Grpc,
                None,
                origin,
            )
            .await
            .map_err(grpc_status)?;
        Ok(Response::new(logs_response(&receipt)))
    }
}

/// Names the client in the rejects file.
fn origin(peer: Option<SocketAddr>) -> String {
    match peer {
        Some(peer) => format!("otlp-grpc:{}", peer.ip()),
        None => "otlp-grpc".to_owned(),
    }
}

/// Builds the response, with `partial_success` set only when items were rejected.
pub fn trace_response(receipt: &Receipt) -> ExportTraceServiceResponse {
    ExportTraceServiceResponse {
        partial_success: receipt
            .error_message
            .as_ref()
            .map(|message| ExportTracePartialSuccess {
                rejected_spans: i64::try_from(receipt.rejected).unwrap_or(i64::MAX),
                error_message: message.clone(),
            }),
    }
}

/// Builds the response, with `partial_success` set only when items were rejected.
pub fn logs_response(receipt: &Receipt) -> ExportLogsServiceResponse {
    ExportLogsServiceResponse {
        partial_success: receipt
            .error_message
            .as_ref()
            .map(|message| ExportLogsPartialSuccess {
                rejected_log_records: i64::try_from(receipt.rejected).unwrap_or(i64::MAX),
                error_message: message.clone(),
            }),
    }
}

/// Returns the `google.rpc.Status` of a failed export, with the code from
/// which an OTLP client decides whether to retry.
pub fn rpc_status(error: &ReceiveError) -> RpcStatus {
    match error {
        ReceiveError::BadRequest(_) => {
            RpcStatus::new(tonic::Code::InvalidArgument, error.to_string())
        }
        ReceiveError::TooLarge(_) => {
            RpcStatus::new(tonic::Code::ResourceExhausted, error.to_string())
        }
        ReceiveError::Unavailable(_) => RpcStatus::new(tonic::Code::Unavailable, error.to_string())
            .with_retry_delay(RETRY_AFTER_SECS),
        ReceiveError::Internal(_) => RpcStatus::new(tonic::Code::Internal, error.to_string()),
    }
}

fn grpc_status(error: ReceiveError) -> Status {
    rpc_status(&error).into_grpc()
}

#[cfg(test)]
mod tests {
    use apitrail_ingest::formats::otlp::Signal;
    use apitrail_storage::StorageError;

    use super::*;

    fn receipt(rejected: u64) -> Receipt {
        Receipt {
            signal: Signal::Traces,
            items: 3,
            accepted: 3 - rejected,
            skipped: 0,
            rejected,
            error_message: (rejected > 0).then(|| "1 of 3 spans were rejected".to_owned()),
        }
    }

    #[test]
    fn partial_success_only_with_rejections() {
        assert_eq!(trace_response(&receipt(0)).partial_success, None);
        let partial = trace_response(&receipt(1))
            .partial_success
            .expect("partial success is set");
        assert_eq!(partial.rejected_spans, 1);
        assert_eq!(partial.error_message, "1 of 3 spans were rejected");
        let logs = logs_response(&receipt(1))
            .partial_success
            .expect("partial success is set");
        assert_eq!(logs.rejected_log_records, 1);
    }

    #[test]
    fn oversize_becomes_resource_exhausted() {
        let oversize = tonic::Status::out_of_range("Error, decoded message length too large")
            .into_http::<tonic::body::Body>();
        let fixed = oversize_is_resource_exhausted(oversize);
        assert_eq!(
            fixed.headers().get("grpc-status").map(|v| v.as_bytes()),
            Some(&b"8"[..])
        );
        let unavailable = tonic::Status::unavailable("later").into_http::<tonic::body::Body>();
        let kept = oversize_is_resource_exhausted(unavailable);
        assert_eq!(
            kept.headers().get("grpc-status").map(|v| v.as_bytes()),
            Some(&b"14"[..]),
            "other codes stay"
        );
    }

    #[test]
    fn failure_codes_tell_retry_apart() {
        let bad = rpc_status(&ReceiveError::BadRequest("undecodable".into()));
        assert_eq!(bad.code, tonic::Code::InvalidArgument as i32);
        assert!(bad.details.is_empty());
        let unavailable = rpc_status(&ReceiveError::Unavailable(StorageError::ShuttingDown));
        assert_eq!(unavailable.code, tonic::Code::Unavailable as i32);
        assert_eq!(unavailable.details.len(), 1, "RetryInfo");
        assert_eq!(
            unavailable.message,
            "storing the events failed: the store is shutting down; retry later"
        );
    }
}
