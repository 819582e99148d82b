//! Turns raw access-log bytes into canonical API call events.
//!
//! This crate is pure: bytes in, Arrow `RecordBatch` out, with no I/O.
//!
//! - [`event`]: the canonical event row, its Arrow schema and the batch builder.
//! - [`format`]: the names of the input formats.
//! - [`formats`]: one parser per format (`aws_alb`, `clf`, `aws_apigateway`),
//!   each turning a line into a raw event, a skip or a rejection.
//! - [`detect`]: guesses the format of a body from its first lines.
//! - [`parse`]: the shared driver that numbers lines, isolates failures,
//!   normalises paths, redacts secrets and builds batches.
//! - [`redact`]: the keyed hash that replaces secrets before anything is stored.
//! - [`template`]: rule-based path templating for the `endpoint` column.
//! - [`report`]: accepted, rejected and skipped counts with line errors.
//! - [`text`]: byte decoding, percent-decoding and small field helpers.

pub mod detect;
pub mod event;
pub mod format;
pub mod formats;
pub mod parse;
pub mod redact;
pub mod report;
pub mod template;
pub mod text;

pub use detect::detect_format;
pub use event::{Event, EventBatchBuilder, SCHEMA_VERSION, event_schema};
pub use format::{Format, UnknownFormat};
pub use parse::{LineOutcome, ParseContext, ParsedChunk, parse_chunk};
pub use redact::Redactor;
pub use report::{IngestReport, LineError, MAX_REPORTED_ERRORS, RejectedLine};
