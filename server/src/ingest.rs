//! The ingest pipeline shared by the HTTP endpoint and `apitrail import`.
//!
//! Input arrives as a byte stream (a request body or a file), plain, gzip or
//! zstd: the compression is recognised by its magic bytes. The stream is cut
//! into chunks of whole records of about 4 MiB, so memory stays
//! bounded whatever the input size. Each chunk is parsed on a blocking
//! thread by the input's one parser, which carries header state from chunk
//! to chunk; its rejected records are appended to the rejects file, and its
//! events go to a sink: the WAL (server) or a table writer (direct import).

use std::pin::Pin;
use std::sync::Arc;

use apitrail_ingest::detect::MAX_SAMPLE_BYTES;
use apitrail_ingest::{
    Chunk, Format, IngestReport, ParseContext, ParsedChunk, RecordChunker, RecordParser,
    detect_format, new_parser, parse_records,
};
use apitrail_storage::batches::BatchProgress;
use apitrail_storage::store::ImportWriter;
use apitrail_storage::{StorageError, Store};

use crate::pipeline::IngestPipeline;
use async_compression::tokio::bufread::{GzipDecoder, ZstdDecoder};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, BufReader};

/// Errors that stop an ingest before the end of its input.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    /// The `json` format has no usable mapping.
    #[error("{0}")]
    Mapping(String),
    /// The input's format was not given and could not be recognised.
    #[error(
        "could not detect the log format from the first lines; name it with the format parameter (HTTP) or --format (CLI): {}",
        Format::names()
    )]
    UnknownFormat,
    /// The input could not be read or decompressed.
    #[error("reading the input failed after {lines_read} lines: {source}")]
    Read {
        lines_read: u64,
        #[source]
        source: std::io::Error,
    },
    /// Storage failed. Lines before the failure may be stored, as the report counts them.
    #[error("storing events failed: {0}")]
    Storage(#[from] StorageError),
}

/// Destination of parsed events.
pub enum Sink<'a> {
    /// The server's store: WAL, then write buffer.
    Store(&'a Store),
    /// Data files of a direct import, committed by the caller.
    Table(&'a mut ImportWriter),
}

/// Parameters of one ingest.
#[derive(Debug, Clone)]
pub struct IngestOptions {
    pub format: Option<Format>,
    pub sensor: Option<String>,
    /// Label of the input in the rejects file: a file name or the HTTP peer.
    pub origin: String,
    /// Name of the mapping of the generic `json` format; giving one implies that format.
    pub mapping: Option<String>,
    /// The client's id for this input; a retry with the same id adds nothing
    /// that the first attempt stored (see `apitrail_storage::batches`).
    pub batch_id: Option<String>,
    /// Number of the input's first line after the context lines, in the file
    /// it continues; 1 for a whole file.
    pub first_line: u64,
    /// Lines at the start of the input that were stored before, such as a
    /// W3C or Zeek header: they set the parser's state but are neither
    /// stored nor counted. They are numbered just before `first_line`.
    pub context_lines: u64,
}

impl IngestOptions {
    /// Options for a whole input with no batch id, from line 1.
    pub fn new(origin: String) -> Self {
        IngestOptions {
            format: None,
            sensor: None,
            origin,
            mapping: None,
            batch_id: None,
            first_line: 1,
            context_lines: 0,
        }
    }
}

/// A report that may be partial, with the error that stopped the ingest.
#[derive(Debug)]
pub struct IngestOutcome {
    pub report: IngestReport,
    pub error: Option<IngestError>,
    /// The batch id was complete before: `report` is the first attempt's.
    pub replayed: bool,
}

/// Parses and stores everything `input` yields.
pub async fn ingest_reader<R>(
    input: R,
    options: &IngestOptions,
    pipeline: &Arc<IngestPipeline>,
    store: &Store,
    mut sink: Sink<'_>,
) -> IngestOutcome
where
    R: AsyncRead + Unpin + Send,
{
    let mut report = IngestReport::default();
    let mut format = match (options.format, &options.mapping) {
        (None, Some(_)) => Some(Format::Json),
        (format, _) => format,
    };
    if format == Some(Format::Json)
        && let Err(message) = pipeline.json_mapping(options.mapping.as_deref())
    {
        return IngestOutcome {
            report,
            error: Some(IngestError::Mapping(message)),
            replayed: false,
        };
    }
    let first_numbered_line = options
        .first_line
        .saturating_sub(options.context_lines)
        .max(1);
    let mut skip_through_line = options.first_line.saturating_sub(1);
    let _batch_guard = match (&options.batch_id, &sink) {
        (Some(id), Sink::Store(_)) => {
            let guard = store.batches().lock(id).await;
            if let Some(progress) = store.batches().get(id) {
                let earlier: IngestReport =
                    serde_json::from_value(progress.report).unwrap_or_default();
                if progress.complete {
                    return IngestOutcome {
                        report: earlier,
                        error: None,
                        replayed: true,
                    };
                }
                tracing::info!(
                    batch_id = %id,
                    through_line = progress.through_line,
                    "resuming a batch after the lines an earlier attempt stored"
                );
                skip_through_line = skip_through_line.max(progress.through_line);
                report = earlier;
            }
            Some(guard)
        }
        _ => None,
    };
    let mut reader = match decompress(input).await {
        Ok(reader) => reader,
        Err(source) => {
            return IngestOutcome {
                report,
                error: Some(IngestError::Read {
                    lines_read: 0,
                    source,
                }),
                replayed: false,
            };
        }
    };
    let mut parser: Option<Box<dyn RecordParser>> = format.map(new_parser);
    let mut chunker = RecordChunker::default().with_first_line(first_numbered_line);
    let mut buf = vec![0u8; 256 * 1024];
    // Chunk N is parsed while chunk N-1 is written, so parsing and the WAL's
    // fsync overlap.
    // The parsed chunk waiting to be written, with its last line number.
    let mut pending: Option<(Format, ParsedChunk, u64)> = None;

    loop {
        let read = match reader.read(&mut buf).await {
            Ok(read) => read,
            Err(source) => {
                let lines_read = chunker.next_line() - first_numbered_line;
                return IngestOutcome {
                    report,
                    error: Some(IngestError::Read { lines_read, source }),
                    replayed: false,
                };
            }
        };
        if format.is_none() && read > 0 && chunker.pending().len() + read < MAX_SAMPLE_BYTES {
            // Detection waits for a full sample (or the end of the input).
            chunker.push(&buf[..read]);
            continue;
        }
        if format.is_none() && read == 0 && chunker.pending().trim_ascii().is_empty() {
            break;
        }
        if format.is_none() {
            let mut sample = chunker.pending().to_vec();
            sample.extend_from_slice(&buf[..read]);
            match detect_format(&sample) {
                Some(detected) => {
                    format = Some(detected);
                    parser = Some(new_parser(detected));
                }
                None => {
                    return IngestOutcome {
                        report,
                        error: Some(IngestError::UnknownFormat),
                        replayed: false,
                    };
                }
            }
        }
        let chunks: Vec<Chunk> = if read == 0 {
            chunker.finish().into_iter().collect()
        } else {
            chunker.push(&buf[..read])
        };
        for chunk in chunks {
            let (Some(chunk_format), Some(chunk_parser)) = (format, parser.take()) else {
                unreachable!("the format is known before the first chunk");
            };
            let parse = parse_blocking(
                chunk_format,
                chunk_parser,
                chunk,
                options.sensor.clone(),
                options.mapping.clone(),
                skip_through_line,
                pipeline,
            );
            let write = write_parsed(pending.take(), options, store, &mut sink, &report, None);
            let ((chunk_parser, parsed, last_line), written) = tokio::join!(parse, write);
            let parsed = (parsed, last_line);
            parser = Some(chunk_parser);
            if let Err(e) = written.map(|r| report.merge(r)) {
                return IngestOutcome {
                    report,
                    error: Some(e),
                    replayed: false,
                };
            }
            pending = Some((chunk_format, parsed.0, parsed.1));
        }
        if read == 0 {
            break;
        }
    }
    let last = pending.as_ref().map(|p| p.2).unwrap_or(skip_through_line);
    let written = write_parsed(
        pending.take(),
        options,
        store,
        &mut sink,
        &report,
        Some(last),
    )
    .await;
    if let Err(e) = written.map(|r| report.merge(r)) {
        return IngestOutcome {
            report,
            error: Some(e),
            replayed: false,
        };
    }
    if report.format.is_none() {
        report.format = format.map(|f| f.name().to_string());
    }
    IngestOutcome {
        report,
        error: None,
        replayed: false,
    }
}

/// Stores one parsed chunk: rejects to the rejects file, events to the sink.
///
/// `earlier` is the report of the input's chunks before this one.
/// `final_line` is set for the input's last chunk, or, with no chunk left,
/// to the last line stored. With a batch id, the batch's progress is
/// recorded with the chunk's events, and marked complete after the last chunk.
///
/// Returns the chunk's report only once its events are durable in the sink.
async fn write_parsed(
    parsed: Option<(Format, ParsedChunk, u64)>,
    options: &IngestOptions,
    store: &Store,
    sink: &mut Sink<'_>,
    earlier: &IngestReport,
    final_line: Option<u64>,
) -> Result<IngestReport, IngestError> {
    let batch_progress = |report: &IngestReport, through_line: u64| {
        let id = options.batch_id.as_ref()?;
        let mut cumulative = earlier.clone();
        cumulative.merge(report.clone());
        Some(BatchProgress {
            id: id.clone(),
            through_line,
            report: serde_json::to_value(&cumulative).ok()?,
            complete: final_line.is_some(),
            updated_at: chrono::Utc::now().timestamp(),
        })
    };
    let Some((format, parsed, last_line)) = parsed else {
        if let (Some(line), Sink::Store(store)) = (final_line, &*sink)
            && let Some(progress) = batch_progress(&IngestReport::default(), line)
        {
            store.batches().record(progress);
        }
        return Ok(IngestReport::default());
    };
    let ParsedChunk {
        batch,
        mut report,
        rejects,
    } = parsed;
    // Events of a day that retention has removed are reported, not stored.
    let (batch, expired) = store.drop_expired_events(batch)?;
    apitrail_storage::retention::report_expired(&mut report, expired);

    let rejects_file = store.rejects().clone();
    let origin = options.origin.clone();
    tokio::task::spawn_blocking(move || rejects_file.append(&origin, format.name(), &rejects))
        .await
        .expect("rejects writer task panicked")?;

    let progress = batch_progress(&report, last_line);
    match sink {
        Sink::Store(store) if batch.num_rows() > 0 => {
            store.append_with_progress(batch, progress).await?;
            apitrail_storage::failpoint::hit("ingest_after_chunk");
        }
        // Parsing the chunk again adds no events, so its progress needs no WAL record.
        Sink::Store(store) => {
            if let Some(progress) = progress {
                store.batches().record(progress);
            }
        }
        Sink::Table(writer) if batch.num_rows() > 0 => writer.write(batch).await?,
        Sink::Table(_) => {}
    }
    metrics::counter!("apitrail_ingest_lines_total", "format" => format.name(), "outcome" => "accepted")
        .increment(report.accepted);
    metrics::counter!("apitrail_ingest_lines_total", "format" => format.name(), "outcome" => "rejected")
        .increment(report.rejected);
    metrics::counter!("apitrail_ingest_lines_total", "format" => format.name(), "outcome" => "skipped")
        .increment(report.skipped);
    Ok(report)
}

/// Parses one chunk on a blocking thread, handing the parser back for the
/// next chunk, with the number of the chunk's last line.
async fn parse_blocking(
    format: Format,
    mut parser: Box<dyn RecordParser>,
    chunk: Chunk,
    sensor: Option<String>,
    mapping: Option<String>,
    skip_through_line: u64,
    pipeline: &Arc<IngestPipeline>,
) -> (Box<dyn RecordParser>, ParsedChunk, u64) {
    let pipeline = Arc::clone(pipeline);
    tokio::task::spawn_blocking(move || {
        let json_mapping = match format {
            Format::Json => pipeline.json_mapping(mapping.as_deref()).ok(),
            _ => None,
        };
        let ctx = ParseContext {
            skip_through_line,
            json_mapping,
            ..pipeline.context(sensor.as_deref())
        };
        let parsed = parse_records(
            format,
            parser.as_mut(),
            &chunk.data,
            chunk.first_line,
            chunk.state,
            &ctx,
        );
        (parser, parsed, last_line(&chunk))
    })
    .await
    .expect("parse_records isolates parser panics per record")
}

/// Number of the last line in `chunk`.
fn last_line(chunk: &Chunk) -> u64 {
    let newlines = memchr::memchr_iter(b'\n', &chunk.data).count() as u64;
    let unterminated = u64::from(!chunk.data.is_empty() && !chunk.data.ends_with(b"\n"));
    (chunk.first_line + newlines + unterminated).saturating_sub(1)
}

/// Wraps `input` in a gzip or zstd decoder when its first bytes are that format's magic.
pub async fn decompress<'a, R>(input: R) -> std::io::Result<Pin<Box<dyn AsyncRead + Send + 'a>>>
where
    R: AsyncRead + Unpin + Send + 'a,
{
    let mut reader = BufReader::with_capacity(256 * 1024, input);
    let head = reader.fill_buf().await?;
    if head.starts_with(&[0x1f, 0x8b]) {
        let mut decoder = GzipDecoder::new(reader);
        decoder.multiple_members(true);
        Ok(Box::pin(decoder))
    } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        Ok(Box::pin(ZstdDecoder::new(reader)))
    } else {
        Ok(Box::pin(reader))
    }
}
