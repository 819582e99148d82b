//! Encodings of query results: JSON array, JSON lines, CSV, Arrow IPC stream and Parquet.
//!
//! Each encoder turns one batch at a time into bytes, so a result is sent
//! as it is produced and never held whole in memory. Parquet is the one
//! format that buffers rows: those of the open row group, at most
//! [`PARQUET_MAX_ROW_GROUP_BYTES`] of encoded data. In the text formats,
//! timestamps are written as RFC 3339 UTC strings with microseconds.
//!
//! A query can fail after the first bytes were sent. [`ResultEncoder::fail`]
//! then ends the body in a way each format's readers detect; the section
//! "HTTP" of `docs/protocols.md` describes the endings.
//!
//! When a row limit applies, JSON output is an object with the rows and the
//! fields `truncated` and `row_limit` after them, and Parquet output records
//! the same two facts in its footer's key-value metadata.

use arrow::datatypes::SchemaRef;
use arrow::error::ArrowError;
use arrow::record_batch::RecordBatch;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::metadata::KeyValue;
use parquet::file::properties::WriterProperties;

/// Estimated encoded size at which a Parquet row group is closed and sent.
pub const PARQUET_MAX_ROW_GROUP_BYTES: usize = 64 * 1024 * 1024;
/// Rows at which a Parquet row group is closed and sent, whatever its size.
pub const PARQUET_MAX_ROW_GROUP_ROWS: usize = 1024 * 1024;
/// Start of the text that carries an error message in a failed result body.
pub const ERROR_PREFIX: &str = "apitrail-error: ";
/// Parquet footer key whose value is `true` when the result was cut at the row limit.
pub const PARQUET_TRUNCATED_KEY: &str = "apitrail.truncated";
/// Parquet footer key whose value is the row limit that applied to the result.
pub const PARQUET_ROW_LIMIT_KEY: &str = "apitrail.row_limit";

/// Result encodings of `POST /api/v1/query`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputFormat {
    Json,
    JsonLines,
    Csv,
    Arrow,
    Parquet,
}

impl OutputFormat {
    /// Reads the `output` parameter.
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "json" => Some(OutputFormat::Json),
            "jsonl" | "ndjson" => Some(OutputFormat::JsonLines),
            "csv" => Some(OutputFormat::Csv),
            "arrow" => Some(OutputFormat::Arrow),
            "parquet" => Some(OutputFormat::Parquet),
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
                "application/vnd.apache.parquet" => Some(OutputFormat::Parquet),
                _ => None,
            })
    }

    pub fn content_type(self) -> &'static str {
        match self {
            OutputFormat::Json => "application/json",
            OutputFormat::JsonLines => "application/x-ndjson",
            OutputFormat::Csv => "text/csv; charset=utf-8",
            OutputFormat::Arrow => "application/vnd.apache.arrow.stream",
            OutputFormat::Parquet => "application/vnd.apache.parquet",
        }
    }

    /// Every format with its `output` name and content type, for the API description.
    pub const ALL: [OutputFormat; 5] = [
        OutputFormat::Json,
        OutputFormat::JsonLines,
        OutputFormat::Csv,
        OutputFormat::Arrow,
        OutputFormat::Parquet,
    ];

    /// Returns the `output` parameter value that selects this format.
    pub fn name(self) -> &'static str {
        match self {
            OutputFormat::Json => "json",
            OutputFormat::JsonLines => "jsonl",
            OutputFormat::Csv => "csv",
            OutputFormat::Arrow => "arrow",
            OutputFormat::Parquet => "parquet",
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
    /// Row limit that applies to the result, which JSON and Parquet output record.
    row_limit: Option<u64>,
    arrow: Option<arrow::ipc::writer::StreamWriter<Vec<u8>>>,
    parquet: Option<ArrowWriter<Vec<u8>>>,
}

impl ResultEncoder {
    pub fn new(format: OutputFormat, schema: SchemaRef) -> Self {
        ResultEncoder {
            format,
            schema,
            batches_written: 0,
            row_limit: None,
            arrow: None,
            parquet: None,
        }
    }

    /// Returns this encoder for a result that is cut at `row_limit` rows.
    ///
    /// JSON output becomes `{"rows":[...],"truncated":...,"row_limit":N}`,
    /// and Parquet output records [`PARQUET_TRUNCATED_KEY`] and
    /// [`PARQUET_ROW_LIMIT_KEY`] in its footer. The caller cuts the rows.
    pub fn with_row_limit(mut self, row_limit: Option<u64>) -> Self {
        self.row_limit = row_limit;
        self
    }

    /// Bytes that open the result (the CSV header, `[` of a JSON array).
    pub fn begin(&mut self) -> Result<Vec<u8>, ArrowError> {
        match self.format {
            OutputFormat::Json if self.row_limit.is_some() => Ok(b"{\"rows\":[".to_vec()),
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
            OutputFormat::Parquet => {
                let properties = WriterProperties::builder()
                    .set_compression(Compression::ZSTD(ZstdLevel::default()))
                    .set_max_row_group_row_count(Some(PARQUET_MAX_ROW_GROUP_ROWS))
                    .set_max_row_group_bytes(Some(PARQUET_MAX_ROW_GROUP_BYTES))
                    .build();
                let mut writer =
                    ArrowWriter::try_new(Vec::new(), self.schema.clone(), Some(properties))
                        .map_err(parquet_error)?;
                let head = take_parquet_bytes(&mut writer)?;
                self.parquet = Some(writer);
                Ok(head)
            }
        }
    }

    /// Encodes one batch.
    ///
    /// Parquet returns bytes only when the batch closes a row group, and
    /// otherwise an empty vector.
    pub fn batch(&mut self, batch: &RecordBatch) -> Result<Vec<u8>, ArrowError> {
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
            OutputFormat::Parquet => {
                let writer = self
                    .parquet
                    .as_mut()
                    .expect("begin() opens the Parquet file");
                // The writer closes a row group by itself at the row and byte limits.
                writer.write(batch).map_err(parquet_error)?;
                out = take_parquet_bytes(writer)?;
            }
        }
        self.batches_written += 1;
        Ok(out)
    }

    /// Bytes that close a complete result.
    pub fn end(&mut self) -> Result<Vec<u8>, ArrowError> {
        self.finish(false)
    }

    /// Bytes that close the result. `truncated` is true when the rows were
    /// cut at the row limit, which JSON and Parquet output record.
    pub fn finish(&mut self, truncated: bool) -> Result<Vec<u8>, ArrowError> {
        match self.format {
            OutputFormat::Json => Ok(match self.row_limit {
                Some(limit) => {
                    format!("],\"truncated\":{truncated},\"row_limit\":{limit}}}\n").into_bytes()
                }
                None => b"]\n".to_vec(),
            }),
            OutputFormat::JsonLines | OutputFormat::Csv => Ok(Vec::new()),
            OutputFormat::Arrow => {
                let mut writer = self.arrow.take().expect("begin() opens the Arrow stream");
                writer.finish()?;
                Ok(std::mem::take(writer.get_mut()))
            }
            OutputFormat::Parquet => {
                let mut writer = self.parquet.take().expect("begin() opens the Parquet file");
                if let Some(limit) = self.row_limit {
                    writer.append_key_value_metadata(KeyValue::new(
                        PARQUET_ROW_LIMIT_KEY.to_string(),
                        limit.to_string(),
                    ));
                    writer.append_key_value_metadata(KeyValue::new(
                        PARQUET_TRUNCATED_KEY.to_string(),
                        truncated.to_string(),
                    ));
                }
                // Writes the last row group and the footer.
                writer.into_inner().map_err(parquet_error)
            }
        }
    }

    /// Bytes that end a result whose query failed after [`ResultEncoder::begin`].
    ///
    /// Every batch before the failure was sent whole, so the body stops at a
    /// row boundary. What follows makes the body invalid for the format's
    /// readers and carries `message`:
    ///
    /// - JSON: the array is not closed; the last line is `{"error":"..."}`
    ///   with no line feed after it.
    /// - JSON lines: the last line is `{"error":"..."}` with no line feed.
    /// - CSV: the last line is one quoted field `"apitrail-error: ..."` with
    ///   no line feed.
    /// - Arrow IPC stream: no end-of-stream marker. Instead, a continuation
    ///   marker and a length frame the text `apitrail-error: ...`, which is
    ///   not a valid IPC message, so readers raise an error after the last
    ///   whole batch.
    /// - Parquet: no footer, so readers reject the file. The body ends with
    ///   a line feed, `apitrail-error: ...` and a line feed.
    ///
    /// Line breaks in `message` are replaced with spaces, so the message is
    /// one line.
    pub fn fail(&mut self, message: &str) -> Vec<u8> {
        let message = message.replace(['\r', '\n'], " ");
        match self.format {
            OutputFormat::Json => {
                let mut out = b"\n".to_vec();
                out.extend(error_object(&message));
                out
            }
            OutputFormat::JsonLines => error_object(&message),
            OutputFormat::Csv => csv_quote(&format!("{ERROR_PREFIX}{message}")).into_bytes(),
            OutputFormat::Arrow => {
                self.arrow = None;
                arrow_error_message(&message)
            }
            OutputFormat::Parquet => {
                // Dropping the writer discards the open row group without a footer.
                self.parquet = None;
                format!("\n{ERROR_PREFIX}{message}\n").into_bytes()
            }
        }
    }
}

/// Takes the bytes the Parquet writer has produced so far out of its buffer.
///
/// The writer counts the offsets of what it wrote itself, so emptying the
/// buffer does not change the file it writes.
fn take_parquet_bytes(writer: &mut ArrowWriter<Vec<u8>>) -> Result<Vec<u8>, ArrowError> {
    writer.sync()?;
    Ok(std::mem::take(writer.inner_mut()))
}

fn parquet_error(error: parquet::errors::ParquetError) -> ArrowError {
    ArrowError::ExternalError(Box::new(error))
}

/// `{"error":"message"}` with no line feed after it.
fn error_object(message: &str) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({ "error": message }))
        .expect("a JSON object of one string serialises")
}

/// A frame that looks like an IPC message to a stream reader: the
/// continuation marker `0xFFFFFFFF`, a little-endian length and that many
/// bytes of `apitrail-error: message`, padded with spaces to a multiple of 8.
///
/// Readers parse the text as a flatbuffer `Message`. Its first four bytes,
/// `apit`, read as a root table offset of 0x74697061, which points far past
/// the end of any frame, so flatbuffer verification fails.
fn arrow_error_message(message: &str) -> Vec<u8> {
    let mut text = format!("{ERROR_PREFIX}{message}").into_bytes();
    while text.len() % 8 != 0 {
        text.push(b' ');
    }
    let length = i32::try_from(text.len()).expect("an error message is shorter than 2 GiB");
    let mut out = Vec::with_capacity(text.len() + 8);
    out.extend_from_slice(&[0xFF, 0xFF, 0xFF, 0xFF]);
    out.extend_from_slice(&length.to_le_bytes());
    out.extend(text);
    out
}

fn json_builder() -> arrow::json::writer::WriterBuilder {
    arrow::json::writer::WriterBuilder::new()
        .with_explicit_nulls(true)
        .with_timestamp_tz_format(TIMESTAMP_TZ_FORMAT.to_string())
        .with_timestamp_format(TIMESTAMP_FORMAT.to_string())
}

fn csv_escape(value: &str) -> String {
    if value.contains([',', '"', '\n', '\r']) {
        csv_quote(value)
    } else {
        value.to_string()
    }
}

fn csv_quote(value: &str) -> String {
    format!("\"{}\"", value.replace('"', "\"\""))
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

    #[test]
    fn parquet_round_trip() {
        let mut encoder = ResultEncoder::new(OutputFormat::Parquet, sample().schema());
        let mut out = encoder.begin().unwrap();
        assert_eq!(out, b"PAR1", "a Parquet file starts with its magic");
        for _ in 0..3 {
            out.extend(encoder.batch(&sample()).unwrap());
        }
        out.extend(encoder.end().unwrap());

        let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReader::try_new(
            bytes::Bytes::from(out),
            1024,
        )
        .expect("the body is a Parquet file");
        let batches: Vec<RecordBatch> = reader.collect::<Result<_, _>>().unwrap();
        let rows: usize = batches.iter().map(RecordBatch::num_rows).sum();
        assert_eq!(rows, 3, "one row per encoded batch");
        assert_eq!(
            batches[0].schema().field(0).data_type(),
            sample().schema().field(0).data_type(),
            "the timestamp keeps its unit and time zone"
        );
    }

    #[test]
    fn json_with_row_limit_is_an_object() {
        let mut encoder =
            ResultEncoder::new(OutputFormat::Json, sample().schema()).with_row_limit(Some(2));
        let mut out = encoder.begin().unwrap();
        out.extend(encoder.batch(&sample()).unwrap());
        out.extend(encoder.batch(&sample()).unwrap());
        out.extend(encoder.finish(true).unwrap());
        let text = String::from_utf8(out).unwrap();
        assert!(
            text.ends_with('\n'),
            "the object ends with a line feed: {text:?}"
        );
        let value: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(
            value["rows"].as_array().map(Vec::len),
            Some(2),
            "rows: {value}"
        );
        assert_eq!(value["truncated"], true, "truncated: {value}");
        assert_eq!(value["row_limit"], 2, "row_limit: {value}");
    }

    #[test]
    fn parquet_footer_records_the_cut() {
        let mut encoder =
            ResultEncoder::new(OutputFormat::Parquet, sample().schema()).with_row_limit(Some(1));
        let mut out = encoder.begin().unwrap();
        out.extend(encoder.batch(&sample()).unwrap());
        out.extend(encoder.finish(true).unwrap());
        let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(
            bytes::Bytes::from(out),
        )
        .expect("the body is a Parquet file");
        let pairs: Vec<(String, Option<String>)> = reader
            .metadata()
            .file_metadata()
            .key_value_metadata()
            .map(|kv| {
                kv.iter()
                    .map(|kv| (kv.key.clone(), kv.value.clone()))
                    .collect()
            })
            .unwrap_or_default();
        for (key, expected) in [
            (PARQUET_TRUNCATED_KEY, "true"),
            (PARQUET_ROW_LIMIT_KEY, "1"),
        ] {
            let value = pairs
                .iter()
                .find(|(k, _)| k == key)
                .and_then(|(_, v)| v.as_deref());
            assert_eq!(value, Some(expected), "footer key {key} in {pairs:?}");
        }
    }

    #[test]
    fn failed_text_results_end_unterminated() {
        let cases = [
            (
                OutputFormat::Json,
                "[{\"time\":\"2023-11-14T22:13:20.123456Z\",\"status\":null}\n{\"error\":\"division by zero\"}",
            ),
            (
                OutputFormat::JsonLines,
                "{\"time\":\"2023-11-14T22:13:20.123456Z\",\"status\":null}\n{\"error\":\"division by zero\"}",
            ),
            (
                OutputFormat::Csv,
                "time,status\n2023-11-14T22:13:20.123456Z,\n\"apitrail-error: division by zero\"",
            ),
        ];
        for (format, expected) in cases {
            let mut encoder = ResultEncoder::new(format, sample().schema());
            let mut out = encoder.begin().unwrap();
            out.extend(encoder.batch(&sample()).unwrap());
            out.extend(encoder.fail("division\nby zero"));
            assert_eq!(
                String::from_utf8(out).unwrap(),
                expected,
                "failed {format:?} body"
            );
        }
    }

    #[test]
    fn failed_arrow_stream_raises() {
        let mut encoder = ResultEncoder::new(OutputFormat::Arrow, sample().schema());
        let mut out = encoder.begin().unwrap();
        out.extend(encoder.batch(&sample()).unwrap());
        out.extend(encoder.fail("division by zero"));

        let mut reader =
            arrow::ipc::reader::StreamReader::try_new(std::io::Cursor::new(out), None).unwrap();
        let first = reader.next().expect("the batch before the failure");
        assert_eq!(first.unwrap().num_rows(), 1, "the whole first batch");
        let last = reader.next().expect("the error frame reads as a message");
        assert!(
            last.is_err(),
            "a reader must raise on the error frame, got {last:?}"
        );
    }

    #[test]
    fn failed_parquet_has_no_footer() {
        let mut encoder = ResultEncoder::new(OutputFormat::Parquet, sample().schema());
        let mut out = encoder.begin().unwrap();
        out.extend(encoder.batch(&sample()).unwrap());
        out.extend(encoder.fail("division by zero"));
        assert!(
            out.ends_with(b"\napitrail-error: division by zero\n"),
            "the body ends with the message: {:?}",
            String::from_utf8_lossy(&out)
        );
        let read = parquet::arrow::arrow_reader::ParquetRecordBatchReader::try_new(
            bytes::Bytes::from(out),
            1024,
        );
        assert!(read.is_err(), "a file without footer must be rejected");
    }
}
