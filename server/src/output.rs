//! Encodings of query results: JSON array, JSON lines, CSV and Arrow IPC stream.
//!
//! Each encoder turns one batch at a time into bytes, so a result is sent
//! as it is produced and never held whole in memory. Timestamps are written
//! as RFC 3339 UTC strings with microseconds.

use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;

/// Result encodings of `POST /api/v1/query`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputFormat {
    Json,
    JsonLines,
    Csv,
    Arrow,
}

impl OutputFormat {
    /// Reads the `output` parameter.
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "json" => Some(OutputFormat::Json),
            "jsonl" | "ndjson" => Some(OutputFormat::JsonLines),
            "csv" => Some(OutputFormat::Csv),
            "arrow" => Some(OutputFormat::Arrow),
            _ => None,
        }
    }

    /// Picks a format from an `Accept` header, if it names one.
    pub fn from_accept(accept: &str) -> Option<Self> {
        accept
            .split(',')
            .find_map(|part| match part.split(';').next().unwrap_or("").trim() {
                "application/json" => Some(OutputFormat::Json),
                "application/x-ndjson" | "application/jsonl" => Some(OutputFormat::JsonLines),
                "text/csv" => Some(OutputFormat::Csv),
                "application/vnd.apache.arrow.stream" => Some(OutputFormat::Arrow),
                _ => None,
            })
    }

    pub fn content_type(self) -> &'static str {
        match self {
            OutputFormat::Json => "application/json",
            OutputFormat::JsonLines => "application/x-ndjson",
            OutputFormat::Csv => "text/csv; charset=utf-8",
            OutputFormat::Arrow => "application/vnd.apache.arrow.stream",
        }
    }
}

const TIMESTAMP_TZ_FORMAT: &str = "%Y-%m-%dT%H:%M:%S%.6fZ";
const TIMESTAMP_FORMAT: &str = "%Y-%m-%dT%H:%M:%S%.6f";

/// Incremental encoder for one result.
pub struct ResultEncoder {
    format: OutputFormat,
    schema: SchemaRef,
    batches_written: usize,
    arrow: Option<arrow::ipc::writer::StreamWriter<Vec<u8>>>,
}

impl ResultEncoder {
    pub fn new(format: OutputFormat, schema: SchemaRef) -> Self {
        ResultEncoder {
            format,
            schema,
            batches_written: 0,
            arrow: None,
        }
    }

    /// Bytes that open the result (the CSV header, `[` of a JSON array).
    pub fn begin(&mut self) -> Result<Vec<u8>, arrow::error::ArrowError> {
        match self.format {
            OutputFormat::Json => Ok(b"[".to_vec()),
            OutputFormat::JsonLines => Ok(Vec::new()),
            OutputFormat::Csv => {
                let names: Vec<String> = self
                    .schema
                    .fields()
                    .iter()
                    .map(|f| csv_escape(f.name()))
                    .collect();
                Ok(format!("{}\n", names.join(",")).into_bytes())
            }
            OutputFormat::Arrow => {
                let mut writer =
                    arrow::ipc::writer::StreamWriter::try_new(Vec::new(), &self.schema)?;
                writer.flush()?;
                let head = std::mem::take(writer.get_mut());
                self.arrow = Some(writer);
                Ok(head)
            }
        }
    }

    /// Encodes one batch.
    pub fn batch(&mut self, batch: &RecordBatch) -> Result<Vec<u8>, arrow::error::ArrowError> {
        if batch.num_rows() == 0 {
            return Ok(Vec::new());
        }
        let mut out = Vec::new();
        match self.format {
            OutputFormat::Json => {
                let mut writer =
                    json_builder().build::<_, arrow::json::writer::JsonArray>(&mut out);
                writer.write(batch)?;
                writer.finish()?;
                drop(writer);
                // Strip the array brackets of this batch; the result's own open and close them.
                let inner = out[1..out.len() - 1].to_vec();
                let mut piece = Vec::with_capacity(inner.len() + 1);
                if self.batches_written > 0 && !inner.is_empty() {
                    piece.push(b',');
                }
                piece.extend_from_slice(&inner);
                out = piece;
            }
            OutputFormat::JsonLines => {
                let mut writer =
                    json_builder().build::<_, arrow::json::writer::LineDelimited>(&mut out);
                writer.write(batch)?;
                writer.finish()?;
            }
            OutputFormat::Csv => {
                let mut writer = arrow::csv::WriterBuilder::new()
                    .with_header(false)
                    .with_timestamp_tz_format(TIMESTAMP_TZ_FORMAT.to_string())
                    .with_timestamp_format(TIMESTAMP_FORMAT.to_string())
                    .build(&mut out);
                writer.write(batch)?;
            }
            OutputFormat::Arrow => {
                let writer = self.arrow.as_mut().expect("begin() opens the Arrow stream");
                writer.write(batch)?;
                writer.flush()?;
                out = std::mem::take(writer.get_mut());
            }
        }
        self.batches_written += 1;
        Ok(out)
    }

    /// Bytes that close the result.
    pub fn end(&mut self) -> Result<Vec<u8>, arrow::error::ArrowError> {
        match self.format {
            OutputFormat::Json => Ok(b"]\n".to_vec()),
            OutputFormat::JsonLines | OutputFormat::Csv => Ok(Vec::new()),
            OutputFormat::Arrow => {
                let mut writer = self.arrow.take().expect("begin() opens the Arrow stream");
                writer.finish()?;
                Ok(std::mem::take(writer.get_mut()))
            }
        }
    }
}

fn json_builder() -> arrow::json::writer::WriterBuilder {
    arrow::json::writer::WriterBuilder::new()
        .with_explicit_nulls(true)
        .with_timestamp_tz_format(TIMESTAMP_TZ_FORMAT.to_string())
        .with_timestamp_format(TIMESTAMP_FORMAT.to_string())
}

fn csv_escape(value: &str) -> String {
    if value.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", value.replace('"', "\"\""))
    } else {
        value.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    use arrow::array::{Int32Array, TimestampMicrosecondArray};
    use arrow::datatypes::{DataType, Field, Schema, TimeUnit};

    fn sample() -> RecordBatch {
        let schema = Arc::new(Schema::new(vec![
            Field::new(
                "time",
                DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
                false,
            ),
            Field::new("status", DataType::Int32, true),
        ]));
        RecordBatch::try_new(
            schema,
            vec![
                Arc::new(
                    TimestampMicrosecondArray::from(vec![1_700_000_000_123_456])
                        .with_timezone("UTC"),
                ),
                Arc::new(Int32Array::from(vec![None])),
            ],
        )
        .unwrap()
    }

    fn encode(format: OutputFormat, batches: &[RecordBatch]) -> String {
        let mut encoder = ResultEncoder::new(format, batches[0].schema());
        let mut out = encoder.begin().unwrap();
        for batch in batches {
            out.extend(encoder.batch(batch).unwrap());
        }
        out.extend(encoder.end().unwrap());
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn json_array_spans_batches() {
        let text = encode(OutputFormat::Json, &[sample(), sample()]);
        let value: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(value.as_array().unwrap().len(), 2);
        assert_eq!(value[0]["time"], "2023-11-14T22:13:20.123456Z");
        assert!(
            value[0]["status"].is_null(),
            "NULL must be written, not dropped"
        );
    }

    #[test]
    fn csv_has_header_once() {
        let text = encode(OutputFormat::Csv, &[sample(), sample()]);
        assert_eq!(
            text,
            "time,status\n2023-11-14T22:13:20.123456Z,\n2023-11-14T22:13:20.123456Z,\n"
        );
    }
}
