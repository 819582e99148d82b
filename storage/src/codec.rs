//! Encoding of event batches inside WAL records.
//!
//! A record payload is a little-endian u32 schema version (see
//! `apitrail_ingest::SCHEMA_VERSION`) followed by an Arrow IPC stream that
//! contains one batch of already-parsed, already-redacted events.

use std::io::Cursor;

use apitrail_ingest::{SCHEMA_VERSION, event_schema};
use arrow::ipc::reader::StreamReader;
use arrow::ipc::writer::StreamWriter;
use arrow::record_batch::RecordBatch;
use bytes::Bytes;

use crate::error::{Result, StorageError};

fn arrow_error(context: &str, source: arrow::error::ArrowError) -> StorageError {
    StorageError::Arrow {
        context: context.to_string(),
        source,
    }
}

/// Encodes a batch of canonical events as a WAL payload.
pub fn encode_batch(batch: &RecordBatch) -> Result<Bytes> {
    let mut out = Vec::with_capacity(batch.get_array_memory_size() / 2 + 64);
    out.extend_from_slice(&SCHEMA_VERSION.to_le_bytes());
    let mut writer = StreamWriter::try_new(&mut out, &batch.schema())
        .map_err(|e| arrow_error("encoding events for the WAL", e))?;
    writer
        .write(batch)
        .and_then(|()| writer.finish())
        .map_err(|e| arrow_error("encoding events for the WAL", e))?;
    drop(writer);
    Ok(Bytes::from(out))
}

/// Decodes a WAL payload back into batches with the canonical schema.
pub fn decode_batches(lsn: u64, payload: &[u8]) -> Result<Vec<RecordBatch>> {
    let corrupt = |reason: String| {
        StorageError::Config(format!(
            "WAL record {lsn} cannot be decoded: {reason}; move the WAL segment aside to start without it"
        ))
    };
    let (version, body) = payload
        .split_first_chunk::<4>()
        .ok_or_else(|| corrupt("shorter than its version header".to_string()))?;
    let version = u32::from_le_bytes(*version);
    if version != SCHEMA_VERSION {
        return Err(corrupt(format!(
            "event schema version {version}, this build reads version {SCHEMA_VERSION}"
        )));
    }
    let reader = StreamReader::try_new(Cursor::new(body), None)
        .map_err(|e| arrow_error(&format!("decoding WAL record {lsn}"), e))?;
    let mut batches = Vec::new();
    for batch in reader {
        let batch = batch.map_err(|e| arrow_error(&format!("decoding WAL record {lsn}"), e))?;
        if batch.schema() != event_schema() {
            return Err(corrupt(
                "the batch schema is not the event schema".to_string(),
            ));
        }
        batches.push(batch);
    }
    Ok(batches)
}
