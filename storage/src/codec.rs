//! Encoding of event batches inside WAL records.
//!
//! A record payload is a little-endian u32 schema version (see
//! `apitrail_ingest::SCHEMA_VERSION`) followed by an Arrow IPC stream that
//! contains one batch of already-parsed, already-redacted events.

use std::io::Cursor;
use std::sync::Arc;

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

/// Key of the schema metadata entry that carries a record's note.
const NOTE_KEY: &str = "apitrail.note";

/// Encodes a batch of canonical events as a WAL payload.
pub fn encode_batch(batch: &RecordBatch) -> Result<Bytes> {
    encode_batch_with_note(batch, None)
}

/// Encodes a batch with a note (a small UTF-8 document, such as the
/// progress of a client's batch) that is durable with the events.
pub fn encode_batch_with_note(batch: &RecordBatch, note: Option<&str>) -> Result<Bytes> {
    let mut out = Vec::with_capacity(batch.get_array_memory_size() / 2 + 64);
    out.extend_from_slice(&SCHEMA_VERSION.to_le_bytes());
    let schema = match note {
        Some(note) => Arc::new(batch.schema().as_ref().clone().with_metadata(
            std::collections::HashMap::from([(NOTE_KEY.to_string(), note.to_string())]),
        )),
        None => batch.schema(),
    };
    let mut writer = StreamWriter::try_new(&mut out, &schema)
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
    decode_record(lsn, payload).map(|(batches, _note)| batches)
}

/// Decodes a WAL payload into its batches and its note, if it has one.
pub fn decode_record(lsn: u64, payload: &[u8]) -> Result<(Vec<RecordBatch>, Option<String>)> {
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
    let note = reader.schema().metadata().get(NOTE_KEY).cloned();
    let mut batches = Vec::new();
    for batch in reader {
        let batch = batch.map_err(|e| arrow_error(&format!("decoding WAL record {lsn}"), e))?;
        let batch = if note.is_some() {
            RecordBatch::try_new(event_schema(), batch.columns().to_vec())
                .map_err(|e| arrow_error(&format!("decoding WAL record {lsn}"), e))?
        } else {
            batch
        };
        if batch.schema() != event_schema() {
            return Err(corrupt(
                "the batch schema is not the event schema".to_string(),
            ));
        }
        batches.push(batch);
    }
    Ok((batches, note))
}

#[cfg(test)]
mod tests {
    use apitrail_ingest::{Event, EventBatchBuilder};

    use super::*;

    fn batch() -> RecordBatch {
        let mut builder = EventBatchBuilder::new();
        builder.push(&Event::new("clf", 1_700_000_000_000_000));
        builder.finish()
    }

    #[test]
    fn note_round_trips_with_events() {
        let payload = encode_batch_with_note(&batch(), Some(r#"{"batch":"b-1"}"#)).unwrap();
        let (batches, note) = decode_record(7, &payload).unwrap();
        assert_eq!(note.as_deref(), Some(r#"{"batch":"b-1"}"#));
        assert_eq!(batches.len(), 1);
        assert_eq!(
            batches[0].schema(),
            event_schema(),
            "the note must not change the schema the buffer sees"
        );

        let (_, note) = decode_record(8, &encode_batch(&batch()).unwrap()).unwrap();
        assert_eq!(note, None);
    }
}
