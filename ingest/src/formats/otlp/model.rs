//! A small model of OTLP spans and log records, independent of how they
//! were encoded.
//!
//! The types mirror the OTLP protobuf messages (`opentelemetry.proto.trace.v1.Span`,
//! `opentelemetry.proto.logs.v1.LogRecord`, `common.v1.AnyValue`) with only
//! the fields that [`super::span_to_event`] and [`super::log_record_to_event`]
//! read. Strings and bytes are `Cow`, so a producer can borrow them from
//! its input: the JSON decoder in this crate borrows from the record text,
//! and a gRPC or HTTP/protobuf receiver can borrow from the decoded
//! messages. Ids are fixed-size byte arrays, as on the wire in protobuf.

use std::borrow::Cow;

/// An attribute value (`AnyValue`).
#[derive(Debug, Clone, PartialEq)]
pub enum AnyValue<'a> {
    String(Cow<'a, str>),
    Bool(bool),
    Int(i64),
    Double(f64),
    Bytes(Cow<'a, [u8]>),
    Array(Vec<AnyValue<'a>>),
    KeyValueList(Vec<KeyValue<'a>>),
    /// A value with no field set, which OTLP allows and which means no value.
    Empty,
}

/// One attribute (`KeyValue`).
#[derive(Debug, Clone, PartialEq)]
pub struct KeyValue<'a> {
    pub key: Cow<'a, str>,
    pub value: AnyValue<'a>,
}

impl<'a> KeyValue<'a> {
    pub fn new(key: impl Into<Cow<'a, str>>, value: AnyValue<'a>) -> Self {
        KeyValue {
            key: key.into(),
            value,
        }
    }
}

/// The kind of a span (`Span.SpanKind`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum SpanKind {
    #[default]
    Unspecified,
    Internal,
    /// The span of a server handling a request: the only kind that becomes an event.
    Server,
    Client,
    Producer,
    Consumer,
}

impl SpanKind {
    /// Reads the enum number of the protobuf definition. Unknown numbers are `Unspecified`.
    pub fn from_number(number: i64) -> Self {
        match number {
            1 => SpanKind::Internal,
            2 => SpanKind::Server,
            3 => SpanKind::Client,
            4 => SpanKind::Producer,
            5 => SpanKind::Consumer,
            _ => SpanKind::Unspecified,
        }
    }

    /// Reads the enum name, such as `SPAN_KIND_SERVER`. Unknown names are `Unspecified`.
    pub fn from_name(name: &str) -> Self {
        match name {
            "SPAN_KIND_INTERNAL" => SpanKind::Internal,
            "SPAN_KIND_SERVER" => SpanKind::Server,
            "SPAN_KIND_CLIENT" => SpanKind::Client,
            "SPAN_KIND_PRODUCER" => SpanKind::Producer,
            "SPAN_KIND_CONSUMER" => SpanKind::Consumer,
            _ => SpanKind::Unspecified,
        }
    }
}

/// The status code of a span (`Status.StatusCode`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum StatusCode {
    #[default]
    Unset,
    Ok,
    Error,
}

impl StatusCode {
    /// Reads the enum number of the protobuf definition. Unknown numbers are `Unset`.
    pub fn from_number(number: i64) -> Self {
        match number {
            1 => StatusCode::Ok,
            2 => StatusCode::Error,
            _ => StatusCode::Unset,
        }
    }

    /// Reads the enum name, such as `STATUS_CODE_ERROR`. Unknown names are `Unset`.
    pub fn from_name(name: &str) -> Self {
        match name {
            "STATUS_CODE_OK" => StatusCode::Ok,
            "STATUS_CODE_ERROR" => StatusCode::Error,
            _ => StatusCode::Unset,
        }
    }

    /// Returns the name that OpenTelemetry's `otel.status_code` attribute
    /// uses, or `None` for `Unset`.
    pub fn attribute_value(self) -> Option<&'static str> {
        match self {
            StatusCode::Unset => None,
            StatusCode::Ok => Some("OK"),
            StatusCode::Error => Some("ERROR"),
        }
    }
}

/// The instrumentation scope of a group of spans or log records
/// (`InstrumentationScope`, formerly `InstrumentationLibrary`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Scope<'a> {
    pub name: Cow<'a, str>,
    pub version: Cow<'a, str>,
    pub attributes: Vec<KeyValue<'a>>,
}

/// The fields of a span (`Span`) that the event mapping reads.
///
/// An id that is absent, empty or all zero bytes is `None`, because OTLP
/// treats all-zero ids as invalid.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SpanView<'a> {
    pub trace_id: Option<[u8; 16]>,
    pub span_id: Option<[u8; 8]>,
    pub parent_span_id: Option<[u8; 8]>,
    pub trace_state: Cow<'a, str>,
    pub name: Cow<'a, str>,
    pub kind: SpanKind,
    /// Nanoseconds since the Unix epoch, or 0 when missing.
    pub start_time_unix_nano: u64,
    /// Nanoseconds since the Unix epoch, or 0 when missing.
    pub end_time_unix_nano: u64,
    pub attributes: Vec<KeyValue<'a>>,
    pub status_code: StatusCode,
    pub status_message: Cow<'a, str>,
}

/// The fields of a log record (`LogRecord`) that the event mapping reads.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LogRecordView<'a> {
    /// Time of the event, in nanoseconds since the Unix epoch, or 0 when missing.
    pub time_unix_nano: u64,
    /// Time the collecting agent read the record, in nanoseconds since the
    /// Unix epoch, or 0 when missing.
    pub observed_time_unix_nano: u64,
    pub severity_number: i32,
    pub severity_text: Cow<'a, str>,
    pub body: Option<AnyValue<'a>>,
    pub attributes: Vec<KeyValue<'a>>,
    pub trace_id: Option<[u8; 16]>,
    pub span_id: Option<[u8; 8]>,
    pub event_name: Cow<'a, str>,
}
