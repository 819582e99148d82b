//! The ingest pipeline shared by the HTTP endpoint and `apitrail import`.
//!
//! Input arrives as a byte stream (a request body or a file), plain, gzip or
//! zstd: the compression is recognised by its magic bytes. The stream is cut
//! into chunks of whole lines of about [`CHUNK_BYTES`], so memory stays
//! bounded whatever the input size. Each chunk is parsed on a blocking
//! thread, its rejected lines are appended to the rejects file, and its
//! events go to a sink: the WAL (server) or a table writer (direct import).

use std::pin::Pin;
use std::sync::Arc;

use apitrail_ingest::{Format, IngestReport, ParsedChunk, detect_format, parse_chunk};
use apitrail_storage::store::ImportWriter;
use apitrail_storage::{StorageError, Store};

use crate::pipeline::IngestPipeline;
use async_compression::tokio::bufread::{GzipDecoder, ZstdDecoder};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, BufReader};

/// Size of the line chunks the input is cut into, in bytes.
pub const CHUNK_BYTES: usize = 4 * 1024 * 1024;

/// Errors that stop an ingest before the end of its input.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    /// The input's format was not given and could not be recognised.
    #[error(
        "could not detect the log format from the first lines; name it with the format parameter (HTTP) or --format (CLI): aws_alb, clf or aws_apigateway"
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
}

/// A report that may be partial, with the error that stopped the ingest.
#[derive(Debug)]
pub struct IngestOutcome {
    pub report: IngestReport,
    pub error: Option<IngestError>,
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
    let mut reader = match decompress(input).await {
        Ok(reader) => reader,
        Err(source) => {
            return IngestOutcome {
                report,
                error: Some(IngestError::Read {
                    lines_read: 0,
                    source,
                }),
            };
        }
    };
    let mut format = options.format;
    let mut chunker = LineChunker::default();
    let mut buf = vec![0u8; 256 * 1024];
    // Chunk N is parsed while chunk N-1 is written, so parsing and the WAL's
    // fsync overlap.
    let mut pending: Option<(Format, ParsedChunk)> = None;

    loop {
        let read = match reader.read(&mut buf).await {
            Ok(read) => read,
            Err(source) => {
                let lines_read = chunker.next_line - 1;
                return IngestOutcome {
                    report,
                    error: Some(IngestError::Read { lines_read, source }),
                };
            }
        };
        let chunks = if read == 0 {
            chunker.finish().into_iter().collect()
        } else {
            chunker.push(&buf[..read])
        };
        for (first_line, chunk) in chunks {
            let chunk_format = match format {
                Some(f) => f,
                None => match detect_format(&chunk) {
                    Some(f) => *format.insert(f),
                    None => {
                        return IngestOutcome {
                            report,
                            error: Some(IngestError::UnknownFormat),
                        };
                    }
                },
            };
            let parse = parse_blocking(
                chunk_format,
                chunk,
                first_line,
                options.sensor.clone(),
                pipeline,
            );
            let write = write_parsed(pending.take(), options, store, &mut sink);
            let (parsed, written) = tokio::join!(parse, write);
            if let Err(e) = written.map(|r| report.merge(r)) {
                return IngestOutcome {
                    report,
                    error: Some(e),
                };
            }
            pending = Some((chunk_format, parsed));
        }
        if read == 0 {
            break;
        }
    }
    if let Err(e) = write_parsed(pending.take(), options, store, &mut sink)
        .await
        .map(|r| report.merge(r))
    {
        return IngestOutcome {
            report,
            error: Some(e),
        };
    }
    if report.format.is_none() {
        report.format = format.map(|f| f.name().to_string());
    }
    IngestOutcome {
        report,
        error: None,
    }
}

/// Stores one parsed chunk: rejects to the rejects file, events to the sink.
///
/// Returns the chunk's report only once its events are durable in the sink.
async fn write_parsed(
    parsed: Option<(Format, ParsedChunk)>,
    options: &IngestOptions,
    store: &Store,
    sink: &mut Sink<'_>,
) -> Result<IngestReport, IngestError> {
    let Some((format, parsed)) = parsed else {
        return Ok(IngestReport::default());
    };
    let ParsedChunk {
        batch,
        report,
        rejects,
    } = parsed;

    let rejects_file = store.rejects().clone();
    let origin = options.origin.clone();
    tokio::task::spawn_blocking(move || rejects_file.append(&origin, format.name(), &rejects))
        .await
        .expect("rejects writer task panicked")?;

    if batch.num_rows() > 0 {
        match sink {
            Sink::Store(store) => {
                store.append(batch).await?;
            }
            Sink::Table(writer) => writer.write(batch).await?,
        }
    }
    metrics::counter!("apitrail_ingest_lines_total", "format" => format.name(), "outcome" => "accepted")
        .increment(report.accepted);
    metrics::counter!("apitrail_ingest_lines_total", "format" => format.name(), "outcome" => "rejected")
        .increment(report.rejected);
    metrics::counter!("apitrail_ingest_lines_total", "format" => format.name(), "outcome" => "skipped")
        .increment(report.skipped);
    Ok(report)
}

async fn parse_blocking(
    format: Format,
    chunk: Vec<u8>,
    first_line: u64,
    sensor: Option<String>,
    pipeline: &Arc<IngestPipeline>,
) -> ParsedChunk {
    let pipeline = Arc::clone(pipeline);
    tokio::task::spawn_blocking(move || {
        let ctx = pipeline.context(sensor.as_deref());
        parse_chunk(format, &chunk, first_line, &ctx)
    })
    .await
    .expect("parse_chunk isolates parser panics per line")
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

/// Cuts a byte stream into chunks that end on a line break.
#[derive(Debug)]
pub struct LineChunker {
    pending: Vec<u8>,
    /// 1-based number of the first line in `pending`.
    next_line: u64,
    chunk_bytes: usize,
}

impl Default for LineChunker {
    fn default() -> Self {
        LineChunker::with_chunk_bytes(CHUNK_BYTES)
    }
}

impl LineChunker {
    pub fn with_chunk_bytes(chunk_bytes: usize) -> Self {
        LineChunker {
            pending: Vec::new(),
            next_line: 1,
            chunk_bytes,
        }
    }

    /// Adds input; returns the chunks that are complete, each with its first line number.
    ///
    /// A single line longer than the chunk size is kept whole: the chunk
    /// grows until its line break arrives.
    pub fn push(&mut self, data: &[u8]) -> Vec<(u64, Vec<u8>)> {
        self.pending.extend_from_slice(data);
        let mut chunks = Vec::new();
        while self.pending.len() >= self.chunk_bytes {
            let Some(cut) = memchr_last_newline(&self.pending) else {
                break;
            };
            let rest = self.pending.split_off(cut + 1);
            let chunk = std::mem::replace(&mut self.pending, rest);
            chunks.push(self.take_numbered(chunk));
        }
        chunks
    }

    /// Returns what is left at the end of the input, if anything.
    pub fn finish(&mut self) -> Option<(u64, Vec<u8>)> {
        if self.pending.is_empty() {
            return None;
        }
        let chunk = std::mem::take(&mut self.pending);
        Some(self.take_numbered(chunk))
    }

    fn take_numbered(&mut self, chunk: Vec<u8>) -> (u64, Vec<u8>) {
        let first_line = self.next_line;
        self.next_line += chunk.iter().filter(|&&b| b == b'\n').count() as u64;
        (first_line, chunk)
    }
}

fn memchr_last_newline(data: &[u8]) -> Option<usize> {
    data.iter().rposition(|&b| b == b'\n')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunker_numbers_lines_across_chunks() {
        let mut chunker = LineChunker::with_chunk_bytes(8);
        let mut chunks = chunker.push(b"a\nbb\nccc\ndddd\nee");
        chunks.extend(chunker.push(b"e\nf"));
        chunks.extend(chunker.finish());
        let joined: Vec<u8> = chunks.iter().flat_map(|(_, c)| c.clone()).collect();
        assert_eq!(
            joined,
            b"a\nbb\nccc\ndddd\neee\nf".to_vec(),
            "no byte may be lost or repeated"
        );
        for (first_line, chunk) in &chunks {
            let expected = joined[..joined.len()]
                .windows(chunk.len())
                .position(|w| w == chunk.as_slice())
                .map(|offset| joined[..offset].iter().filter(|&&b| b == b'\n').count() as u64 + 1)
                .unwrap();
            assert_eq!(
                *first_line, expected,
                "chunk {chunk:?} starts at the wrong line"
            );
        }
        assert!(
            chunks[..chunks.len() - 1]
                .iter()
                .all(|(_, c)| c.ends_with(b"\n"))
        );
    }

    #[test]
    fn chunker_keeps_long_line_whole() {
        let mut chunker = LineChunker::with_chunk_bytes(4);
        assert!(chunker.push(b"0123456789").is_empty());
        let chunks = chunker.push(b"\nab");
        assert_eq!(chunks, vec![(1, b"0123456789\n".to_vec())]);
        assert_eq!(chunker.finish(), Some((2, b"ab".to_vec())));
    }
}
