//! OpenTelemetry receivers: HTTP server spans and HTTP log records sent
//! over OTLP become events.
//!
//! Two listeners take the same exports. [`grpc`] serves the `Export` calls
//! of OTLP/gRPC's `TraceService` and `LogsService`. [`http`] serves
//! OTLP/HTTP's `POST /v1/traces` and `POST /v1/logs`, with binary protobuf
//! or JSON bodies, plain or gzip. Both hand each export to
//! [`Receiver::receive`], which works in these steps:
//!
//! 1. On a blocking thread, an HTTP body is decompressed and decoded, then
//!    each span or log record is mapped on its own: [`convert`] for
//!    protobuf, the JSON decoder of `apitrail_ingest` for JSON. Only HTTP
//!    server spans and HTTP log records become events. The others are
//!    skipped, and invalid ones are rejected.
//! 2. Each event's `sensor` is the request's `sensor` parameter (OTLP/HTTP
//!    only), else its resource's `service.name`.
//! 3. The events get the normalisation, redaction, identity rules and
//!    templating of every other ingest ([`apitrail_ingest::events_to_batch`]).
//! 4. Rejected items go to the rejects file, as one-item OTLP/JSON exports
//!    that `apitrail import --format otlp` reads again once fixed. The
//!    events are appended to the WAL, and the response is sent once they
//!    are durable.
//!
//! The response counts the rejected items in `partial_success`, with the
//! first reasons in its `error_message`. A request that cannot be decoded
//! fails whole, with HTTP 400 or gRPC `INVALID_ARGUMENT`, which clients do
//! not retry. A store that cannot take writes fails it with a code that
//! clients retry: HTTP 503 with `Retry-After`, or gRPC `UNAVAILABLE` with
//! `RetryInfo`.

mod convert;
pub mod grpc;
pub mod http;
mod status;

use std::io::Read;
use std::sync::Arc;

use apitrail_ingest::formats::otlp::{ExportMapping, Signal, map_json_request};
use apitrail_ingest::{Event, RejectedLine, events_to_batch};
use apitrail_storage::{StorageError, Store};
use arrow::record_batch::RecordBatch;
use bytes::Bytes;
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use prost::Message;

use crate::pipeline::IngestPipeline;

/// Largest export accepted, in bytes, both as sent and after decompression.
/// The OTLP specification recommends 20 MiB for OTLP/HTTP; OTLP/gRPC takes
/// the same, so an export that one transport accepts the other accepts too.
pub const MAX_REQUEST_BYTES: usize = 20 * 1024 * 1024;

/// Seconds a client is asked to wait before it retries an export that the store could not take.
pub const RETRY_AFTER_SECS: u64 = 5;

/// Rejection reasons that the `error_message` of a partial success lists.
const MAX_LISTED_REASONS: usize = 3;

/// Resource attribute that names the service, and so the sensor.
const SERVICE_NAME: &str = "service.name";

/// Transport of an export, a metric label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    Grpc,
    Http,
}

impl Transport {
    fn label(self) -> &'static str {
        match self {
            Transport::Grpc => "grpc",
            Transport::Http => "http",
        }
    }
}

/// Encoding of an OTLP/HTTP body, which the response uses too.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    /// `application/x-protobuf`.
    Protobuf,
    /// `application/json`: protobuf's JSON mapping, with the OTLP changes (hex ids).
    Json,
}

/// One export as it arrived.
#[derive(Debug)]
pub enum ExportRequest {
    /// An OTLP/gRPC trace export, which tonic decoded.
    Traces(ExportTraceServiceRequest),
    /// An OTLP/gRPC log export, which tonic decoded.
    Logs(ExportLogsServiceRequest),
    /// An OTLP/HTTP body, still encoded and perhaps compressed.
    Body {
        signal: Signal,
        encoding: Encoding,
        gzip: bool,
        bytes: Bytes,
    },
}

impl ExportRequest {
    fn signal(&self) -> Signal {
        match self {
            ExportRequest::Traces(_) => Signal::Traces,
            ExportRequest::Logs(_) => Signal::Logs,
            ExportRequest::Body { signal, .. } => *signal,
        }
    }
}

/// The outcome of each item of one stored export.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Receipt {
    pub signal: Signal,
    /// Spans or log records in the request.
    pub items: u64,
    /// Items stored as events.
    pub accepted: u64,
    /// Items that describe no HTTP request, which OTLP counts as accepted.
    pub skipped: u64,
    pub rejected: u64,
    /// How many items were rejected and why, for `partial_success`; `None`
    /// when every item was accepted or skipped.
    pub error_message: Option<String>,
}

/// Failure of an export as a whole, of which nothing was stored.
#[derive(Debug, thiserror::Error)]
pub enum ReceiveError {
    /// The request cannot be decoded; the client must not send it again.
    #[error("{0}")]
    BadRequest(String),
    /// The request is over [`MAX_REQUEST_BYTES`], as sent or after decompression.
    #[error(
        "the request is larger than {MAX_REQUEST_BYTES} bytes {0}; send smaller batches \
         (the exporter's batch size)"
    )]
    TooLarge(&'static str),
    /// The store cannot take writes now; the client may retry later.
    #[error("storing the events failed: {0}; retry later")]
    Unavailable(StorageError),
    /// A bug: mapping the export panicked or its task failed.
    #[error("internal error while storing the export: {0}")]
    Internal(String),
}

impl ReceiveError {
    /// Label of the failure in metrics.
    fn label(&self) -> &'static str {
        match self {
            ReceiveError::BadRequest(_) => "bad_request",
            ReceiveError::TooLarge(_) => "too_large",
            ReceiveError::Unavailable(_) => "unavailable",
            ReceiveError::Internal(_) => "internal",
        }
    }
}

/// The events and rejects of one export, ready to store.
struct Mapped {
    batch: RecordBatch,
    items: u64,
    skipped: u64,
    rejects: Vec<RejectedLine>,
}

/// State of both receivers: where events go and how they are prepared.
#[derive(Clone)]
pub struct Receiver {
    store: Arc<Store>,
    pipeline: Arc<IngestPipeline>,
}

impl Receiver {
    pub fn new(store: Arc<Store>, pipeline: Arc<IngestPipeline>) -> Self {
        Receiver { store, pipeline }
    }

    /// Maps and stores one export, and returns once its events are durable.
    ///
    /// `sensor` overrides the `service.name` of the resources. `origin`
    /// names the client in the rejects file.
    pub async fn receive(
        &self,
        request: ExportRequest,
        transport: Transport,
        sensor: Option<String>,
        origin: String,
    ) -> Result<Receipt, ReceiveError> {
        let signal = request.signal();
        let result = self.map_and_store(request, sensor, origin).await;
        match &result {
            Ok(receipt) => count_items(transport, receipt),
            Err(error) => {
                metrics::counter!(
                    "apitrail_otlp_failed_requests_total",
                    "signal" => signal.name(),
                    "transport" => transport.label(),
                    "reason" => error.label()
                )
                .increment(1);
                match error {
                    ReceiveError::Unavailable(_) | ReceiveError::Internal(_) => {
                        tracing::error!(signal = signal.name(), transport = transport.label(), %error, "OTLP export failed")
                    }
                    _ => {
                        tracing::debug!(signal = signal.name(), transport = transport.label(), %error, "OTLP export rejected")
                    }
                }
            }
        }
        result
    }

    async fn map_and_store(
        &self,
        request: ExportRequest,
        sensor: Option<String>,
        origin: String,
    ) -> Result<Receipt, ReceiveError> {
        let signal = request.signal();
        let pipeline = Arc::clone(&self.pipeline);
        let mapped =
            tokio::task::spawn_blocking(move || map_request(request, sensor.as_deref(), &pipeline))
                .await
                .map_err(|error| {
                    ReceiveError::Internal(format!("the mapping task failed: {error}"))
                })??;

        let Mapped {
            batch,
            items,
            skipped,
            rejects,
        } = mapped;
        // Events of a day that retention has removed are counted as skipped, not stored.
        let (batch, expired) = self
            .store
            .drop_expired_events(batch)
            .map_err(ReceiveError::Unavailable)?;
        let skipped = skipped + expired as u64;
        let accepted = batch.num_rows() as u64;
        let error_message = partial_success_message(signal, items, &rejects);
        let rejected = rejects.len() as u64;
        if !rejects.is_empty() {
            let rejects_file = self.store.rejects().clone();
            tokio::task::spawn_blocking(move || rejects_file.append(&origin, "otlp", &rejects))
                .await
                .map_err(|error| {
                    ReceiveError::Internal(format!("the rejects writer task failed: {error}"))
                })?
                .map_err(ReceiveError::Unavailable)?;
        }
        if accepted > 0 {
            self.store
                .append(batch)
                .await
                .map_err(ReceiveError::Unavailable)?;
        }
        tracing::debug!(
            signal = signal.name(),
            items,
            accepted,
            skipped,
            rejected,
            "OTLP export stored"
        );
        Ok(Receipt {
            signal,
            items,
            accepted,
            skipped,
            rejected,
            error_message,
        })
    }
}

/// Decodes and maps one export and builds its batch; runs on a blocking thread.
fn map_request(
    request: ExportRequest,
    sensor: Option<&str>,
    pipeline: &IngestPipeline,
) -> Result<Mapped, ReceiveError> {
    let ctx = pipeline.context(None);
    let tolerance = ctx.future_tolerance;
    let mut mapping = match request {
        ExportRequest::Traces(request) => convert::map_traces(&request, tolerance),
        ExportRequest::Logs(request) => convert::map_logs(&request, tolerance),
        ExportRequest::Body {
            signal,
            encoding,
            gzip,
            bytes,
        } => {
            let bytes = if gzip { gunzip(&bytes)? } else { bytes };
            map_body(signal, encoding, &bytes, tolerance)?
        }
    };

    set_sensors(&mut mapping.events, sensor);
    let batch = events_to_batch(std::mem::take(&mut mapping.events), &ctx);
    let rejects = mapping
        .rejected
        .iter()
        .map(|item| RejectedLine {
            line: item.ordinal,
            reason: ctx.redactor.scrub_text(&item.message()),
            text: ctx.redactor.scrub_text(&item.text),
        })
        .collect();
    Ok(Mapped {
        batch,
        items: mapping.items,
        skipped: mapping.skipped,
        rejects,
    })
}

/// Decodes an OTLP/HTTP body and maps its items.
fn map_body(
    signal: Signal,
    encoding: Encoding,
    bytes: &[u8],
    tolerance: Option<apitrail_ingest::FutureTolerance>,
) -> Result<ExportMapping, ReceiveError> {
    match (encoding, signal) {
        (Encoding::Protobuf, Signal::Traces) => ExportTraceServiceRequest::decode(bytes)
            .map(|request| convert::map_traces(&request, tolerance))
            .map_err(|error| undecodable("ExportTraceServiceRequest", &error)),
        (Encoding::Protobuf, Signal::Logs) => ExportLogsServiceRequest::decode(bytes)
            .map(|request| convert::map_logs(&request, tolerance))
            .map_err(|error| undecodable("ExportLogsServiceRequest", &error)),
        (Encoding::Json, _) => {
            let text = std::str::from_utf8(bytes).map_err(|error| {
                ReceiveError::BadRequest(format!(
                    "the JSON body is not valid UTF-8 ({error}); send UTF-8 text"
                ))
            })?;
            map_json_request(text, signal, tolerance).map_err(|reason| {
                ReceiveError::BadRequest(format!(
                    "the body is not an OTLP/JSON export of {}: {reason}",
                    signal.items()
                ))
            })
        }
    }
}

fn undecodable(message: &str, error: &prost::DecodeError) -> ReceiveError {
    ReceiveError::BadRequest(format!(
        "the body is not a protobuf {message}: {error}; send the OTLP message, or JSON with \
         Content-Type: application/json"
    ))
}

/// Decompresses a gzip body of at most [`MAX_REQUEST_BYTES`] decompressed.
fn gunzip(bytes: &[u8]) -> Result<Bytes, ReceiveError> {
    let mut decoder = flate2::read::MultiGzDecoder::new(bytes).take(MAX_REQUEST_BYTES as u64 + 1);
    let mut out = Vec::with_capacity(bytes.len().saturating_mul(4).min(MAX_REQUEST_BYTES));
    decoder.read_to_end(&mut out).map_err(|error| {
        ReceiveError::BadRequest(format!(
            "the body is not valid gzip ({error}); send it plain or gzip-compressed"
        ))
    })?;
    if out.len() > MAX_REQUEST_BYTES {
        return Err(ReceiveError::TooLarge("after decompression"));
    }
    Ok(Bytes::from(out))
}

/// Sets each event's sensor: the request's `sensor`, else the `service.name`
/// of the span's resource (or of the span, when it has that attribute).
fn set_sensors(events: &mut [Event], sensor: Option<&str>) {
    for event in events {
        event.sensor = match sensor {
            Some(sensor) => Some(sensor.to_owned()),
            None => event.attribute(SERVICE_NAME).map(str::to_owned),
        };
    }
}

/// Words the `error_message` of a partial success: the count and the first reasons.
fn partial_success_message(signal: Signal, items: u64, rejects: &[RejectedLine]) -> Option<String> {
    let first = rejects.first()?;
    let mut reasons = vec![first.reason.as_str()];
    reasons.extend(
        rejects
            .iter()
            .skip(1)
            .take(MAX_LISTED_REASONS - 1)
            .map(|reject| reject.reason.as_str()),
    );
    let more = rejects.len().saturating_sub(MAX_LISTED_REASONS);
    let more = if more > 0 {
        format!("; and {more} more")
    } else {
        String::new()
    };
    Some(format!(
        "{} of {items} {} were rejected: {}{more}. The server's rejects file keeps them.",
        rejects.len(),
        signal.items(),
        reasons.join("; ")
    ))
}

fn count_items(transport: Transport, receipt: &Receipt) {
    for (outcome, count) in [
        ("received", receipt.items),
        ("accepted", receipt.accepted),
        ("skipped", receipt.skipped),
        ("rejected", receipt.rejected),
    ] {
        metrics::counter!(
            "apitrail_otlp_items_total",
            "signal" => receipt.signal.name(),
            "transport" => transport.label(),
            "outcome" => outcome
        )
        .increment(count);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reject(reason: &str) -> RejectedLine {
        RejectedLine {
            line: 1,
            reason: reason.to_owned(),
            text: String::new(),
        }
    }

    #[test]
    fn message_lists_first_reasons() {
        assert_eq!(partial_success_message(Signal::Traces, 3, &[]), None);
        let one = partial_success_message(Signal::Logs, 2, &[reject("a: bad")]);
        assert_eq!(
            one.as_deref(),
            Some("1 of 2 log records were rejected: a: bad. The server's rejects file keeps them.")
        );
        let rejects: Vec<RejectedLine> = (0..5).map(|i| reject(&format!("r{i}"))).collect();
        let many = partial_success_message(Signal::Traces, 9, &rejects);
        assert_eq!(
            many.as_deref(),
            Some(
                "5 of 9 spans were rejected: r0; r1; r2; and 2 more. The server's rejects file \
                 keeps them."
            )
        );
    }

    #[test]
    fn gunzip_limits_and_errors() {
        use std::io::Write;
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        encoder.write_all(b"{}").unwrap();
        let body = encoder.finish().unwrap();
        assert_eq!(gunzip(&body).unwrap(), Bytes::from_static(b"{}"));
        assert!(matches!(
            gunzip(b"not gzip"),
            Err(ReceiveError::BadRequest(message)) if message.contains("not valid gzip")
        ));

        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        encoder
            .write_all(&vec![b' '; MAX_REQUEST_BYTES + 1])
            .unwrap();
        let bomb = encoder.finish().unwrap();
        assert!(matches!(
            gunzip(&bomb),
            Err(ReceiveError::TooLarge("after decompression"))
        ));
    }

    #[test]
    fn sensor_parameter_wins_over_service_name() {
        let mut event = Event::new("otlp", 1);
        event
            .attributes
            .push((SERVICE_NAME.to_owned(), "checkout".to_owned()));
        let mut events = vec![event];
        set_sensors(&mut events, None);
        assert_eq!(events[0].sensor.as_deref(), Some("checkout"));
        set_sensors(&mut events, Some("edge-1"));
        assert_eq!(events[0].sensor.as_deref(), Some("edge-1"));
    }
}
