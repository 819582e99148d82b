//! Helpers shared by the real-data tests: reading samples, detecting and
//! parsing them, and reading values out of the resulting batch.
//!
//! Each test file uses a subset of these helpers.
#![allow(dead_code)]

use std::path::PathBuf;

use apitrail_ingest::{Format, ParseContext, ParsedChunk, Redactor, detect_format, parse_chunk};
use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::{Float64Type, Int32Type, Int64Type, TimestampMicrosecondType};
use chrono::NaiveDate;

/// Number of bytes from the start of a file that are passed to detection.
pub(crate) const DETECTION_SAMPLE_BYTES: usize = 16 * 1024;

/// `APITRAIL_REALDATA`, or by default `shared/realdata` beside the checkout.
pub(crate) fn realdata_dir() -> PathBuf {
    match std::env::var_os("APITRAIL_REALDATA") {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/realdata"),
    }
}

/// Reads a sample file; the `Option` lets callers use `?` in helpers.
pub(crate) fn read_sample(name: &str) -> Option<Vec<u8>> {
    let dir = realdata_dir();
    assert!(
        dir.is_dir(),
        "sample directory {} not found; set APITRAIL_REALDATA to the folder of real log samples",
        dir.display()
    );
    let path = dir.join(name);
    let data = std::fs::read(&path)
        .unwrap_or_else(|error| panic!("failed to read sample {}: {error}", path.display()));
    Some(data)
}

/// Checks detection on the start of the file, then parses the whole file as `format`.
pub(crate) fn detect_and_parse(name: &str, format: Format) -> Option<ParsedChunk> {
    let data = read_sample(name)?;
    let sample = &data[..data.len().min(DETECTION_SAMPLE_BYTES)];
    assert_eq!(
        detect_format(sample),
        Some(format),
        "detected format of {name}"
    );

    let redactor = Redactor::new(b"test-key".to_vec(), 1);
    let ctx = ParseContext::new(&redactor);
    Some(parse_chunk(format, &data, 1, &ctx))
}

pub(crate) fn assert_counts(chunk: &ParsedChunk, accepted: u64, rejected: u64, skipped: u64) {
    let report = &chunk.report;
    assert_eq!(
        report.accepted, accepted,
        "accepted, errors {:?}",
        report.errors
    );
    assert_eq!(
        report.rejected, rejected,
        "rejected, errors {:?}",
        report.errors
    );
    assert_eq!(
        report.skipped, skipped,
        "skipped, reasons {:?}",
        report.skipped_reasons
    );
    assert_eq!(chunk.batch.num_rows() as u64, accepted);
}

/// Microseconds since the epoch of a UTC date and time.
pub(crate) fn utc(date: (i32, u32, u32), time: (u32, u32, u32), micros: u32) -> i64 {
    NaiveDate::from_ymd_opt(date.0, date.1, date.2)
        .and_then(|day| day.and_hms_micro_opt(time.0, time.1, time.2, micros))
        .expect("valid date and time")
        .and_utc()
        .timestamp_micros()
}

pub(crate) fn time(batch: &RecordBatch, row: usize) -> i64 {
    column(batch, "time")
        .as_primitive::<TimestampMicrosecondType>()
        .value(row)
}

pub(crate) fn text(batch: &RecordBatch, name: &str, row: usize) -> Option<String> {
    let values = column(batch, name).as_string::<i32>();
    values.is_valid(row).then(|| values.value(row).to_string())
}

pub(crate) fn int32(batch: &RecordBatch, name: &str, row: usize) -> Option<i32> {
    let values = column(batch, name).as_primitive::<Int32Type>();
    values.is_valid(row).then(|| values.value(row))
}

pub(crate) fn int64(batch: &RecordBatch, name: &str, row: usize) -> Option<i64> {
    let values = column(batch, name).as_primitive::<Int64Type>();
    values.is_valid(row).then(|| values.value(row))
}

pub(crate) fn duration_ms(batch: &RecordBatch, row: usize) -> Option<f64> {
    let values = column(batch, "duration_ms").as_primitive::<Float64Type>();
    values.is_valid(row).then(|| values.value(row))
}

pub(crate) fn malformed(batch: &RecordBatch, row: usize) -> bool {
    column(batch, "malformed").as_boolean().value(row)
}

pub(crate) fn attribute(batch: &RecordBatch, row: usize, key: &str) -> Option<String> {
    let entries = column(batch, "attributes").as_map().value(row);
    let keys = entries.column(0).as_string::<i32>();
    let values = entries.column(1).as_string::<i32>();
    (0..entries.len())
        .find(|&index| keys.value(index) == key)
        .map(|index| values.value(index).to_string())
}

pub(crate) fn column<'a>(batch: &'a RecordBatch, name: &str) -> &'a dyn Array {
    batch
        .column_by_name(name)
        .unwrap_or_else(|| panic!("missing column {name}"))
        .as_ref()
}

pub(crate) fn some(value: &str) -> Option<String> {
    Some(value.to_string())
}
