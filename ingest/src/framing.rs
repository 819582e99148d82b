//! Cutting input into records: lines, and JSON values spread over lines.
//!
//! Most inputs have one record per line, JSON lines included. Some JSON
//! inputs are pretty-printed instead: a HAR capture, a Kong record copied
//! from a terminal, an OTLP export, a JSON array of log entries. The framer
//! reads them line by line and decides where each record ends:
//!
//! - A line that starts with `{` or `[` and ends with `{` or `[` opens a JSON
//!   value without closing it, so it starts a multi-line record. The record
//!   ends at the first line where every bracket it opened is closed again.
//!   Brackets inside strings do not count.
//! - A line that is only `[` opens a top-level array, and the line `]`
//!   closes it. Each element becomes a record of its own, without the comma
//!   that separates it from the next. A one-line array of objects (`[{...},{...}]`) is split
//!   into its elements the same way.
//! - Every other non-blank line is a record by itself. So a JSON line that
//!   is cut short or holds an unescaped quote stays one record, which its
//!   parser rejects, and never swallows the lines after it.
//!
//! A multi-line record is capped at [`MAX_RECORD_BYTES`]; a longer one is
//! ended there and handed to the parser, which rejects it.
//!
//! [`RecordChunker`] cuts a byte stream into chunks that end between
//! records, so that chunks can be parsed independently, each starting from
//! the [`FrameState`] the previous one ended in.

use std::ops::Range;

/// Largest multi-line record, in bytes; longer ones are cut off and rejected.
pub const MAX_RECORD_BYTES: usize = 256 * 1024 * 1024;

/// Default size of the chunks [`RecordChunker`] produces, in bytes.
pub const CHUNK_BYTES: usize = 4 * 1024 * 1024;

/// Framer state between two lines.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FrameState {
    /// Inside a top-level array opened by a line `[`.
    in_array: bool,
    /// Brackets opened and not yet closed by the current multi-line record.
    depth: u32,
    /// The current multi-line record ended its last line inside a string.
    in_string: bool,
    /// Bytes of the current multi-line record so far.
    record_bytes: usize,
}

impl FrameState {
    /// Returns whether the framer is between two records.
    pub fn at_boundary(&self) -> bool {
        self.depth == 0
    }
}

/// Role of one line in the framing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LineRole {
    /// Blank, or the `[` and `]` lines around a top-level array.
    Structure,
    /// A whole record.
    Record,
    /// The first line of a multi-line record.
    Start,
    /// A line inside a multi-line record.
    Inside,
    /// The last line of a multi-line record.
    End,
}

impl FrameState {
    /// Classifies `line` (without its newline) and moves past it.
    fn feed(&mut self, line: &[u8]) -> LineRole {
        if self.depth > 0 {
            self.record_bytes += line.len() + 1;
            self.scan(line);
            if self.depth == 0 || self.record_bytes >= MAX_RECORD_BYTES {
                self.end_record();
                return LineRole::End;
            }
            return LineRole::Inside;
        }
        let trimmed = trim_json(line);
        let Some((&first, &last)) = trimmed.first().zip(trimmed.last()) else {
            return LineRole::Structure;
        };
        if !self.in_array && trimmed == b"[" {
            self.in_array = true;
            return LineRole::Structure;
        }
        if self.in_array && (trimmed == b"]" || trimmed == b"],") {
            self.in_array = false;
            return LineRole::Structure;
        }
        if matches!(first, b'{' | b'[') && matches!(last, b'{' | b'[') {
            self.record_bytes = line.len() + 1;
            self.scan(line);
            if self.depth == 0 {
                self.end_record();
                return LineRole::Record;
            }
            return LineRole::Start;
        }
        LineRole::Record
    }

    /// Updates depth and string state over the bytes of one line.
    fn scan(&mut self, line: &[u8]) {
        let mut escaped = false;
        for &byte in line {
            if self.in_string {
                match byte {
                    _ if escaped => escaped = false,
                    b'\\' => escaped = true,
                    b'"' => self.in_string = false,
                    _ => {}
                }
                continue;
            }
            match byte {
                b'"' => self.in_string = true,
                b'{' | b'[' => self.depth += 1,
                b'}' | b']' => self.depth = self.depth.saturating_sub(1),
                _ => {}
            }
        }
    }

    fn end_record(&mut self) {
        self.depth = 0;
        self.in_string = false;
        self.record_bytes = 0;
    }
}

/// Trims ASCII whitespace, a byte-order mark and, for array elements, a trailing comma.
fn trim_json(line: &[u8]) -> &[u8] {
    let line = line.strip_prefix(b"\xef\xbb\xbf").unwrap_or(line);
    line.trim_ascii()
}

/// One record of a chunk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record<'a> {
    /// 1-based number of the record's first line.
    pub line: u64,
    /// The record's bytes, without the newline that ends it.
    pub bytes: &'a [u8],
    /// False when the data ended before the record did: its last line has
    /// no newline, or a multi-line record is still open.
    pub complete: bool,
}

/// Iterates over the records of `data`, whose first line is `first_line`
/// and which starts in framer state `state`.
pub fn records(data: &[u8], first_line: u64, state: FrameState) -> Records<'_> {
    Records {
        data,
        offset: 0,
        line: first_line,
        state,
        pending: Vec::new(),
    }
}

/// Iterator returned by [`records`].
#[derive(Debug)]
pub struct Records<'a> {
    data: &'a [u8],
    offset: usize,
    /// Number of the line at `offset`.
    line: u64,
    state: FrameState,
    /// Elements of a split one-line array still to be returned, last first.
    pending: Vec<Record<'a>>,
}

impl<'a> Records<'a> {
    /// Returns the framer state after the records returned so far.
    pub fn state(&self) -> FrameState {
        self.state
    }

    /// Returns the next line and whether a newline ended it.
    fn next_line(&mut self) -> Option<(Range<usize>, bool)> {
        if self.offset >= self.data.len() {
            return None;
        }
        let start = self.offset;
        let (end, complete) = match memchr::memchr(b'\n', &self.data[start..]) {
            Some(at) => (start + at, true),
            None => (self.data.len(), false),
        };
        self.offset = end + 1;
        self.line += 1;
        let content_end = if end > start && self.data[end - 1] == b'\r' {
            end - 1
        } else {
            end
        };
        Some((start..content_end, complete))
    }

    /// Turns a record into the records it stands for: array elements
    /// (queued in `pending`) or itself.
    fn emit(&mut self, record: Record<'a>) -> Record<'a> {
        let in_array = self.state.in_array;
        let mut bytes = trim_json(record.bytes);
        // Text lines reach their parser untouched: trailing tabs are empty
        // fields in tab-separated formats.
        if !in_array && !matches!(bytes.first(), Some(b'{' | b'[')) {
            return record;
        }
        if in_array {
            bytes = bytes.strip_suffix(b",").unwrap_or(bytes).trim_ascii_end();
        }
        if let Some(elements) = split_object_array(bytes) {
            let mut records: Vec<Record<'a>> =
                elements.map(|bytes| Record { bytes, ..record }).collect();
            records.reverse();
            if let Some(first) = records.pop() {
                self.pending = records;
                return first;
            }
        }
        Record { bytes, ..record }
    }
}

impl<'a> Iterator for Records<'a> {
    type Item = Record<'a>;

    fn next(&mut self) -> Option<Record<'a>> {
        if let Some(record) = self.pending.pop() {
            return Some(record);
        }
        loop {
            let first_line = self.line;
            let (range, complete) = self.next_line()?;
            let line = &self.data[range.clone()];
            match self.state.feed(line) {
                LineRole::Structure => continue,
                LineRole::Record => {
                    let record = Record {
                        line: first_line,
                        bytes: line,
                        complete,
                    };
                    return Some(self.emit(record));
                }
                LineRole::Start => {
                    let start = range.start;
                    let mut end = range.end;
                    let mut complete = false;
                    while let Some((range, line_complete)) = self.next_line() {
                        end = range.end;
                        let role = self.state.feed(&self.data[range]);
                        if role == LineRole::End {
                            complete = line_complete;
                            break;
                        }
                    }
                    let record = Record {
                        line: first_line,
                        bytes: &self.data[start..end],
                        complete,
                    };
                    return Some(self.emit(record));
                }
                // A chunk starts between records, so these only follow a Start.
                LineRole::Inside | LineRole::End => {
                    let record = Record {
                        line: first_line,
                        bytes: line,
                        complete,
                    };
                    return Some(self.emit(record));
                }
            }
        }
    }
}

/// Splits `[{...}, {...}]` into the bytes of its elements, or returns
/// `None` when `bytes` is not an array whose first element is an object.
fn split_object_array(bytes: &[u8]) -> Option<impl Iterator<Item = &[u8]>> {
    let inner = bytes.strip_prefix(b"[")?.strip_suffix(b"]")?;
    if inner.trim_ascii_start().first() != Some(&b'{') {
        return None;
    }
    let mut depth = 0u32;
    let mut in_string = false;
    let mut escaped = false;
    let mut cuts = Vec::new();
    for (at, &byte) in inner.iter().enumerate() {
        if in_string {
            match byte {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match byte {
            b'"' => in_string = true,
            b'{' | b'[' => depth += 1,
            b'}' | b']' => depth = depth.saturating_sub(1),
            b',' if depth == 0 => cuts.push(at),
            _ => {}
        }
    }
    let mut start = 0;
    let mut elements = Vec::with_capacity(cuts.len() + 1);
    for cut in cuts {
        elements.push(&inner[start..cut]);
        start = cut + 1;
    }
    elements.push(&inner[start..]);
    Some(
        elements
            .into_iter()
            .map(<[u8]>::trim_ascii)
            .filter(|element| !element.is_empty()),
    )
}

/// A chunk of whole records cut from a stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chunk {
    /// 1-based number of the chunk's first line.
    pub first_line: u64,
    /// The framer state at the start of the chunk.
    pub state: FrameState,
    pub data: Vec<u8>,
}

/// Cuts a byte stream into chunks that end between records.
#[derive(Debug)]
pub struct RecordChunker {
    pending: Vec<u8>,
    /// Number of the first line in `pending`.
    next_line: u64,
    /// Framer state at the start of `pending`.
    start_state: FrameState,
    /// Framer state after the scanned part of `pending`.
    state: FrameState,
    /// Bytes of `pending` already fed to the framer (whole lines).
    scanned: usize,
    /// End of the last record boundary within the scanned part, with the state there.
    boundary: Option<(usize, FrameState)>,
    chunk_bytes: usize,
}

impl Default for RecordChunker {
    fn default() -> Self {
        RecordChunker::with_chunk_bytes(CHUNK_BYTES)
    }
}

impl RecordChunker {
    pub fn with_chunk_bytes(chunk_bytes: usize) -> Self {
        RecordChunker {
            pending: Vec::new(),
            next_line: 1,
            start_state: FrameState::default(),
            state: FrameState::default(),
            scanned: 0,
            boundary: None,
            chunk_bytes,
        }
    }

    /// Returns this chunker with lines numbered from `line` instead of 1,
    /// for input that continues a file from that line.
    pub fn with_first_line(mut self, line: u64) -> Self {
        self.next_line = line;
        self
    }

    /// Number of the first line not yet returned in a chunk.
    pub fn next_line(&self) -> u64 {
        self.next_line
    }

    /// Bytes received and not yet returned in a chunk.
    pub fn pending(&self) -> &[u8] {
        &self.pending
    }

    /// Adds input; returns the chunks that are complete.
    ///
    /// A record longer than the chunk size is kept whole: the chunk grows
    /// until the record ends (at most [`MAX_RECORD_BYTES`]).
    pub fn push(&mut self, data: &[u8]) -> Vec<Chunk> {
        self.pending.extend_from_slice(data);
        let mut chunks = Vec::new();
        if self.pending.len() < self.chunk_bytes {
            return chunks;
        }
        self.scan_lines();
        while self.pending.len() >= self.chunk_bytes {
            let Some((cut, state)) = self.boundary.take() else {
                break;
            };
            chunks.push(self.take(cut, state));
            self.scan_lines();
        }
        chunks
    }

    /// Returns what is left at the end of the input, if anything.
    pub fn finish(&mut self) -> Option<Chunk> {
        if self.pending.is_empty() {
            return None;
        }
        let len = self.pending.len();
        Some(self.take(len, FrameState::default()))
    }

    /// Feeds the framer every complete line not yet scanned.
    fn scan_lines(&mut self) {
        while let Some(at) = memchr::memchr(b'\n', &self.pending[self.scanned..]) {
            let end = self.scanned + at;
            let line = &self.pending[self.scanned..end];
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            self.state.feed(line);
            self.scanned = end + 1;
            if self.state.at_boundary() {
                self.boundary = Some((self.scanned, self.state));
            }
        }
    }

    /// Returns `pending[..cut]` as a chunk; `state` is the framer state at `cut`.
    fn take(&mut self, cut: usize, state: FrameState) -> Chunk {
        let rest = self.pending.split_off(cut);
        let data = std::mem::replace(&mut self.pending, rest);
        let chunk = Chunk {
            first_line: self.next_line,
            state: self.start_state,
            data,
        };
        self.next_line += memchr::memchr_iter(b'\n', &chunk.data).count() as u64;
        self.start_state = state;
        self.scanned -= cut.min(self.scanned);
        self.boundary = None;
        chunk
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(data: &str) -> Vec<(u64, String, bool)> {
        records(data.as_bytes(), 1, FrameState::default())
            .map(|r| {
                (
                    r.line,
                    String::from_utf8(r.bytes.to_vec()).unwrap(),
                    r.complete,
                )
            })
            .collect()
    }

    #[test]
    fn lines_are_records_and_blank_lines_are_not() {
        assert_eq!(
            texts("a b c\n\n  \r\n{\"k\": 1}\r\nlast"),
            vec![
                (1, "a b c".to_string(), true),
                (4, "{\"k\": 1}".to_string(), true),
                (5, "last".to_string(), false),
            ]
        );
    }

    #[test]
    fn pretty_printed_objects_are_one_record_each() {
        let data = " {\n  \"a\": {\n    \"b\": \"}{\"\n  }\n}\n{\n\"c\": [1,\n2]\n}\n";
        let records = texts(data);
        assert_eq!(records.len(), 2, "{records:?}");
        assert_eq!(records[0].0, 1);
        assert_eq!(records[0].1, "{\n  \"a\": {\n    \"b\": \"}{\"\n  }\n}");
        assert_eq!(records[1], (6, "{\n\"c\": [1,\n2]\n}".to_string(), true));
    }

    #[test]
    fn cut_json_line_stays_alone() {
        let records = texts("{\"a\": \"unterminated\n{\"b\": 2}\n");
        assert_eq!(
            records,
            vec![
                (1, "{\"a\": \"unterminated".to_string(), true),
                (2, "{\"b\": 2}".to_string(), true),
            ]
        );
    }

    #[test]
    fn top_level_arrays_yield_their_elements() {
        let pretty = "[\n  {\"a\": 1},\n  {\n    \"b\": [2, 3]\n  },\n  {\"c\": \"],[\"}\n]\n";
        let records = texts(pretty);
        let bytes: Vec<&str> = records.iter().map(|r| r.1.as_str()).collect();
        assert_eq!(
            bytes,
            vec![
                "{\"a\": 1}",
                "{\n    \"b\": [2, 3]\n  }",
                "{\"c\": \"],[\"}"
            ]
        );
        assert_eq!(
            records.iter().map(|r| r.0).collect::<Vec<_>>(),
            vec![2, 3, 6]
        );

        let one_line = texts("[{\"a\": 1}, {\"b\": \"x,y\"}]\n");
        assert_eq!(
            one_line.iter().map(|r| r.1.as_str()).collect::<Vec<_>>(),
            vec!["{\"a\": 1}", "{\"b\": \"x,y\"}"]
        );
        assert!(one_line.iter().all(|r| r.0 == 1));
    }

    #[test]
    fn bracketed_text_lines_are_not_split() {
        let line = "[otel.javaagent 2023-05-10 12:00:00] INFO - {\"k\":1}";
        assert_eq!(texts(line)[0].1, line);
    }

    #[test]
    fn open_record_at_end_incomplete() {
        let records = texts("{\n\"a\": 1,\n");
        assert_eq!(records, vec![(1, "{\n\"a\": 1,".to_string(), false)]);
    }

    fn chunk_all(data: &[u8], chunk_bytes: usize, piece: usize) -> Vec<Chunk> {
        let mut chunker = RecordChunker::with_chunk_bytes(chunk_bytes);
        let mut chunks = Vec::new();
        for part in data.chunks(piece) {
            chunks.extend(chunker.push(part));
        }
        chunks.extend(chunker.finish());
        chunks
    }

    #[test]
    fn chunks_end_between_records_and_keep_every_byte() {
        let data = b"[\n{\n\"a\": 1\n},\n{\"b\": 2},\n{\n\"c\": 3\n}\n]\nx y\n{\n\"d\": 4\n}\n";
        for chunk_bytes in 1..data.len() {
            for piece in [1, 3, 7, data.len()] {
                let chunks = chunk_all(data, chunk_bytes, piece);
                let joined: Vec<u8> = chunks.iter().flat_map(|c| c.data.clone()).collect();
                assert_eq!(joined, data.to_vec(), "chunk_bytes {chunk_bytes}");
                let framed: Vec<(u64, Vec<u8>)> = chunks
                    .iter()
                    .flat_map(|c| {
                        records(&c.data, c.first_line, c.state)
                            .map(|r| (r.line, r.bytes.to_vec()))
                            .collect::<Vec<_>>()
                    })
                    .collect();
                let whole: Vec<(u64, Vec<u8>)> = records(data, 1, FrameState::default())
                    .map(|r| (r.line, r.bytes.to_vec()))
                    .collect();
                assert_eq!(
                    framed, whole,
                    "chunk_bytes {chunk_bytes}, piece {piece}: chunked framing differs"
                );
            }
        }
    }

    #[test]
    fn chunker_keeps_long_line_whole() {
        let mut chunker = RecordChunker::with_chunk_bytes(4);
        assert!(chunker.push(b"0123456789").is_empty());
        let chunks = chunker.push(b"\nab");
        assert_eq!(chunks.len(), 1);
        assert_eq!(chunks[0].data, b"0123456789\n".to_vec());
        let last = chunker.finish().unwrap();
        assert_eq!((last.first_line, last.data), (2, b"ab".to_vec()));
    }

    #[test]
    fn first_line_sets_the_numbering() {
        let mut chunker = RecordChunker::with_chunk_bytes(1).with_first_line(41);
        let chunks = chunker.push(b"a\nb\nc");
        assert_eq!(chunks.len(), 1);
        assert_eq!(chunks[0].first_line, 41);
        assert_eq!(chunks[0].data, b"a\nb\n".to_vec());
        assert_eq!(chunker.next_line(), 43, "the held-back line is line 43");
    }
}
