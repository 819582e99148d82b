//! Turns raw access-log bytes into canonical API call events.
//!
//! This crate is pure: bytes in, Arrow `RecordBatch` out, with no I/O.
//!
//! - [`event`]: the canonical event row, its Arrow schema and the batch builder.
//! - [`format`]: the names of the input formats.
//! - [`formats`]: one parser per format, each turning a record into raw
//!   events, a skip or a rejection.
//! - [`framing`]: cuts input into records (lines, or JSON values spread over
//!   lines) and into chunks that end between records.
//! - [`detect`]: guesses the format of a body from its first records.
//! - [`envelope`]: unwraps lines that log shippers send inside JSON objects.
//! - [`parse`]: the shared driver that numbers lines, isolates failures,
//!   normalises paths, redacts secrets and builds batches.
//! - [`redact`]: the keyed hash that replaces secrets before anything is stored,
//!   with the previous keys of a rotation.
//! - [`identity`]: configurable rules that name the consumer of an event from
//!   gateway fields, API keys, JWT claims, client certificates, basic auth or
//!   the client address.
//! - [`consumer_map`]: the TOML mapping file that gives consumers display
//!   names, tiers and time zones.
//! - [`template`]: path templating for the `endpoint` column, by fixed rules
//!   and by a templater that learns parameter positions per host.
//! - [`spec`]: OpenAPI 3 and Swagger 2.0 descriptions, their revisions, and
//!   whether an endpoint is documented, a shadow or a zombie.
//! - [`report`]: accepted, rejected and skipped counts with line errors.
//! - [`simulate`]: a seeded generator of partner traffic with injected abuse
//!   and its ground truth, written in formats these parsers read.
//! - [`text`]: byte decoding, percent-decoding and small field helpers.

pub mod consumer_map;
pub mod detect;
pub mod envelope;
pub mod event;
pub mod format;
pub mod formats;
pub mod framing;
pub mod identity;
pub mod parse;
pub mod redact;
pub mod report;
pub mod simulate;
pub mod spec;
pub mod template;
pub mod text;

pub use consumer_map::{ConsumerInfo, ConsumerMap, ConsumerMapError};
pub use detect::detect_format;
pub use event::{Event, EventBatchBuilder, SCHEMA_VERSION, event_schema};
pub use format::{Format, UnknownFormat};
pub use formats::generic_json::{JsonMapping, JsonMappingConfig, JsonMappingError};
pub use formats::{RecordParser, new_parser};
pub use framing::{Chunk, FrameState, RecordChunker};
pub use identity::{Identity, IdentityConfig, IdentityConfigError, IdentityRule};
pub use parse::{
    FutureTolerance, LineOutcome, ParseContext, ParsedChunk, events_to_batch, parse_chunk,
    parse_records,
};
pub use redact::{DuplicateKeyVersion, Redactor};
pub use report::{IngestReport, LineError, MAX_REPORTED_ERRORS, RejectedLine};
pub use spec::{ApiSpec, SpecCatalog, SpecError, SpecMatch, SpecStatus, parse_spec};
pub use template::{Templated, Templater, TemplaterConfig, TemplaterError};
