//! The canonical event (schema version 1) as a Rust row and as an Arrow schema.
//!
//! Parsers fill [`Event`] values; [`EventBatchBuilder`] turns them into a
//! `RecordBatch` with [`event_schema`]. Every optional field maps to a
//! nullable column, and `None` always means "the source did not say", never 0.

use std::sync::{Arc, LazyLock};

use arrow::array::{
    ArrayRef, BooleanBuilder, Date32Builder, Float64Builder, Int32Builder, Int64Builder,
    MapBuilder, MapFieldNames, StringBuilder, TimestampMicrosecondBuilder,
};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use arrow::record_batch::RecordBatch;

/// Version of the canonical event layout; stored with every WAL record.
pub const SCHEMA_VERSION: u32 = 1;

/// Microseconds in one day, for deriving the `day` partition from `time`.
const MICROS_PER_DAY: i64 = 86_400_000_000;

/// One HTTP request as every source is normalised to.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Event {
    /// Microseconds since the Unix epoch, UTC.
    pub time: i64,
    /// Format name that produced the row (`aws_alb`, `clf`, ...).
    pub source: String,
    pub sensor: Option<String>,
    pub request_id: Option<String>,
    pub trace_id: Option<String>,
    pub method: Option<String>,
    pub scheme: Option<String>,
    pub host: Option<String>,
    pub http_version: Option<String>,
    pub path: Option<String>,
    pub query: Option<String>,
    pub endpoint: Option<String>,
    pub status: Option<i32>,
    pub duration_ms: Option<f64>,
    pub request_bytes: Option<i64>,
    pub response_bytes: Option<i64>,
    pub client_ip: Option<String>,
    pub client_port: Option<i32>,
    pub forwarded_for: Option<String>,
    pub user_agent: Option<String>,
    pub referer: Option<String>,
    pub consumer: Option<String>,
    pub consumer_kind: Option<String>,
    pub auth_scheme: Option<String>,
    pub upstream: Option<String>,
    pub upstream_status: Option<i32>,
    pub malformed: bool,
    /// Every other field of the source, in source order.
    pub attributes: Vec<(String, String)>,
}

impl Event {
    /// Creates an event with only the required fields set.
    pub fn new(source: &str, time: i64) -> Self {
        Event {
            time,
            source: source.to_string(),
            ..Event::default()
        }
    }

    /// Returns the value of the first attribute named `name`.
    pub fn attribute(&self, name: &str) -> Option<&str> {
        self.attributes
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }

    /// Days since the Unix epoch for `time`, rounding towards minus infinity.
    pub fn day(&self) -> i32 {
        day_of(self.time)
    }
}

/// Days since the Unix epoch of a timestamp in microseconds.
pub fn day_of(time_micros: i64) -> i32 {
    time_micros.div_euclid(MICROS_PER_DAY) as i32
}

static SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
    let utf8 = |name: &str| Field::new(name, DataType::Utf8, true);
    Arc::new(Schema::new(vec![
        Field::new(
            "time",
            DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            false,
        ),
        Field::new("day", DataType::Date32, false),
        Field::new("source", DataType::Utf8, false),
        utf8("sensor"),
        utf8("request_id"),
        utf8("trace_id"),
        utf8("method"),
        utf8("scheme"),
        utf8("host"),
        utf8("http_version"),
        utf8("path"),
        utf8("query"),
        utf8("endpoint"),
        Field::new("status", DataType::Int32, true),
        Field::new("duration_ms", DataType::Float64, true),
        Field::new("request_bytes", DataType::Int64, true),
        Field::new("response_bytes", DataType::Int64, true),
        utf8("client_ip"),
        Field::new("client_port", DataType::Int32, true),
        utf8("forwarded_for"),
        utf8("user_agent"),
        utf8("referer"),
        utf8("consumer"),
        utf8("consumer_kind"),
        utf8("auth_scheme"),
        utf8("upstream"),
        Field::new("upstream_status", DataType::Int32, true),
        Field::new("malformed", DataType::Boolean, true),
        Field::new("attributes", attributes_type(), true),
    ]))
});

/// Returns the Arrow schema of the canonical event.
pub fn event_schema() -> SchemaRef {
    SCHEMA.clone()
}

fn attributes_type() -> DataType {
    let entries = Field::new(
        "key_value",
        DataType::Struct(
            vec![
                Field::new("key", DataType::Utf8, false),
                Field::new("value", DataType::Utf8, true),
            ]
            .into(),
        ),
        false,
    );
    DataType::Map(Arc::new(entries), false)
}

/// Column builders for the canonical schema, filled one event at a time.
pub struct EventBatchBuilder {
    time: TimestampMicrosecondBuilder,
    day: Date32Builder,
    source: StringBuilder,
    strings: Vec<StringBuilder>,
    status: Int32Builder,
    duration_ms: Float64Builder,
    request_bytes: Int64Builder,
    response_bytes: Int64Builder,
    client_ip: StringBuilder,
    client_port: Int32Builder,
    tail_strings: Vec<StringBuilder>,
    upstream_status: Int32Builder,
    malformed: BooleanBuilder,
    attributes: MapBuilder<StringBuilder, StringBuilder>,
    len: usize,
}

impl Default for EventBatchBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl EventBatchBuilder {
    pub fn new() -> Self {
        let names = MapFieldNames {
            entry: "key_value".into(),
            key: "key".into(),
            value: "value".into(),
        };
        EventBatchBuilder {
            time: TimestampMicrosecondBuilder::new().with_timezone("UTC"),
            day: Date32Builder::new(),
            source: StringBuilder::new(),
            strings: (0..10).map(|_| StringBuilder::new()).collect(),
            status: Int32Builder::new(),
            duration_ms: Float64Builder::new(),
            request_bytes: Int64Builder::new(),
            response_bytes: Int64Builder::new(),
            client_ip: StringBuilder::new(),
            client_port: Int32Builder::new(),
            tail_strings: (0..7).map(|_| StringBuilder::new()).collect(),
            upstream_status: Int32Builder::new(),
            malformed: BooleanBuilder::new(),
            attributes: MapBuilder::new(Some(names), StringBuilder::new(), StringBuilder::new())
                .with_values_field(Field::new("value", DataType::Utf8, true)),
            len: 0,
        }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Appends one event as a row.
    pub fn push(&mut self, event: &Event) {
        self.time.append_value(event.time);
        self.day.append_value(event.day());
        self.source.append_value(&event.source);

        let strings = [
            &event.sensor,
            &event.request_id,
            &event.trace_id,
            &event.method,
            &event.scheme,
            &event.host,
            &event.http_version,
            &event.path,
            &event.query,
            &event.endpoint,
        ];
        for (builder, value) in self.strings.iter_mut().zip(strings) {
            builder.append_option(value.as_deref());
        }

        self.status.append_option(event.status);
        self.duration_ms.append_option(event.duration_ms);
        self.request_bytes.append_option(event.request_bytes);
        self.response_bytes.append_option(event.response_bytes);
        self.client_ip.append_option(event.client_ip.as_deref());
        self.client_port.append_option(event.client_port);

        let tail = [
            &event.forwarded_for,
            &event.user_agent,
            &event.referer,
            &event.consumer,
            &event.consumer_kind,
            &event.auth_scheme,
            &event.upstream,
        ];
        for (builder, value) in self.tail_strings.iter_mut().zip(tail) {
            builder.append_option(value.as_deref());
        }

        self.upstream_status.append_option(event.upstream_status);
        self.malformed.append_value(event.malformed);

        for (key, value) in &event.attributes {
            self.attributes.keys().append_value(key);
            self.attributes.values().append_value(value);
        }
        self.attributes
            .append(true)
            .expect("map keys and values are appended in pairs");
        self.len += 1;
    }

    /// Builds the batch and resets the builder for reuse.
    pub fn finish(&mut self) -> RecordBatch {
        let mut columns: Vec<ArrayRef> = vec![
            Arc::new(self.time.finish()),
            Arc::new(self.day.finish()),
            Arc::new(self.source.finish()),
        ];
        for builder in &mut self.strings {
            columns.push(Arc::new(builder.finish()));
        }
        columns.push(Arc::new(self.status.finish()));
        columns.push(Arc::new(self.duration_ms.finish()));
        columns.push(Arc::new(self.request_bytes.finish()));
        columns.push(Arc::new(self.response_bytes.finish()));
        columns.push(Arc::new(self.client_ip.finish()));
        columns.push(Arc::new(self.client_port.finish()));
        for builder in &mut self.tail_strings {
            columns.push(Arc::new(builder.finish()));
        }
        columns.push(Arc::new(self.upstream_status.finish()));
        columns.push(Arc::new(self.malformed.finish()));
        columns.push(Arc::new(self.attributes.finish()));
        self.len = 0;
        RecordBatch::try_new(event_schema(), columns)
            .expect("builders produce columns that match the event schema")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builder_matches_schema() {
        let mut builder = EventBatchBuilder::new();
        let mut event = Event::new("clf", 1_700_000_000_000_000);
        event.status = Some(200);
        event
            .attributes
            .push(("vhost".into(), "api.example.com".into()));
        builder.push(&event);
        builder.push(&Event::new("clf", -1));
        let batch = builder.finish();
        assert_eq!(batch.num_rows(), 2);
        assert_eq!(batch.schema(), event_schema());
    }

    #[test]
    fn day_rounds_down_before_epoch() {
        assert_eq!(day_of(0), 0);
        assert_eq!(day_of(-1), -1);
        assert_eq!(day_of(MICROS_PER_DAY), 1);
    }
}
