//! Byte layout of segment names, segment headers and records.

use std::fmt;

use bytes::Bytes;

use super::{Lsn, WalRecord};

/// First 8 bytes of every segment file.
pub(super) const MAGIC: [u8; 8] = *b"APTWAL\0\0";

/// Format version written in new segment headers and the only one read.
pub(super) const FORMAT_VERSION: u32 = 1;

/// Bytes of a segment header: magic, version, flags, first LSN, CRC.
pub(super) const SEGMENT_HEADER_LEN: usize = 28;

/// Bytes of a record header: payload length, CRC, LSN.
pub(super) const RECORD_HEADER_LEN: usize = 16;

/// Maximum payload of one record, set by the 32-bit length field.
pub const MAX_PAYLOAD_BYTES: usize = u32::MAX as usize;

const SEGMENT_EXTENSION: &str = ".wal";
const SEGMENT_NAME_DIGITS: usize = 20;

/// Byte offsets of the segment header fields.
const VERSION_AT: usize = 8;
const FIRST_LSN_AT: usize = 16;
const HEADER_CRC_AT: usize = 24;

/// Smallest `segment_max_bytes` that fits a header and one empty record.
pub(super) fn min_segment_bytes() -> u64 {
    (SEGMENT_HEADER_LEN + RECORD_HEADER_LEN) as u64
}

/// Returns the file name of the segment whose first record has `first_lsn`.
pub(super) fn segment_file_name(first_lsn: Lsn) -> String {
    format!(
        "{first_lsn:0width$}{SEGMENT_EXTENSION}",
        width = SEGMENT_NAME_DIGITS
    )
}

/// Returns the first LSN encoded in a segment file name, or `None` for other names.
pub(super) fn parse_segment_file_name(name: &str) -> Option<Lsn> {
    let digits = name.strip_suffix(SEGMENT_EXTENSION)?;
    if digits.len() != SEGMENT_NAME_DIGITS || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// Fields of a segment header that passed its magic and CRC checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct SegmentHeader {
    pub(super) version: u32,
    pub(super) first_lsn: Lsn,
}

/// Encodes the header of a new segment.
pub(super) fn encode_segment_header(first_lsn: Lsn) -> [u8; SEGMENT_HEADER_LEN] {
    let mut header = [0u8; SEGMENT_HEADER_LEN];
    header[..VERSION_AT].copy_from_slice(&MAGIC);
    header[VERSION_AT..VERSION_AT + 4].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
    // Bytes 12..16 are the flags, which stay 0.
    header[FIRST_LSN_AT..HEADER_CRC_AT].copy_from_slice(&first_lsn.to_le_bytes());
    let crc = crc32fast::hash(&header[..HEADER_CRC_AT]);
    header[HEADER_CRC_AT..].copy_from_slice(&crc.to_le_bytes());
    header
}

/// Decodes a segment header from the start of `bytes`.
///
/// Does not check the version, so that the caller can tell an unsupported
/// version apart from damage.
pub(super) fn decode_segment_header(bytes: &[u8]) -> Result<SegmentHeader, Damage> {
    let Some(header) = bytes.get(..SEGMENT_HEADER_LEN) else {
        return Err(Damage::TruncatedSegmentHeader { len: bytes.len() });
    };
    if header[..VERSION_AT] != MAGIC {
        return Err(Damage::BadMagic);
    }
    if crc32fast::hash(&header[..HEADER_CRC_AT]) != read_u32(header, HEADER_CRC_AT) {
        return Err(Damage::HeaderChecksumMismatch);
    }
    let first_lsn = read_u64(header, FIRST_LSN_AT);
    if first_lsn == 0 {
        return Err(Damage::ZeroFirstLsn);
    }
    Ok(SegmentHeader {
        version: read_u32(header, VERSION_AT),
        first_lsn,
    })
}

/// Returns the encoded size of a record with a payload of `payload_len` bytes.
pub(super) fn record_len(payload_len: usize) -> u64 {
    (RECORD_HEADER_LEN + payload_len) as u64
}

/// Appends the encoded record to `buffer`.
pub(super) fn encode_record(buffer: &mut Vec<u8>, lsn: Lsn, payload: &[u8]) {
    // The caller has checked the length against MAX_PAYLOAD_BYTES.
    let length = payload.len() as u32;
    buffer.extend_from_slice(&length.to_le_bytes());
    buffer.extend_from_slice(&record_checksum(lsn, payload).to_le_bytes());
    buffer.extend_from_slice(&lsn.to_le_bytes());
    buffer.extend_from_slice(payload);
}

/// Decodes the record at `offset` of a segment's bytes and checks it.
///
/// Returns the record and the offset after it. The payload shares the memory of `segment`.
pub(super) fn decode_record(
    segment: &Bytes,
    offset: usize,
    expected_lsn: Lsn,
) -> Result<(WalRecord, usize), Damage> {
    let rest = &segment[offset..];
    if rest.len() < RECORD_HEADER_LEN {
        return Err(Damage::TruncatedRecordHeader {
            available: rest.len(),
        });
    }
    let length = read_u32(rest, 0);
    let checksum = read_u32(rest, 4);
    let lsn = read_u64(rest, 8);

    let available = rest.len() - RECORD_HEADER_LEN;
    let payload_len = usize::try_from(length).unwrap_or(usize::MAX);
    if payload_len > available {
        return Err(Damage::TruncatedPayload { length, available });
    }
    let start = offset + RECORD_HEADER_LEN;
    let end = start + payload_len;
    let payload = segment.slice(start..end);

    if record_checksum(lsn, &payload) != checksum {
        return Err(Damage::RecordChecksumMismatch);
    }
    if lsn != expected_lsn {
        return Err(Damage::RecordOutOfSequence {
            expected: expected_lsn,
            found: lsn,
        });
    }
    Ok((WalRecord { lsn, payload }, end))
}

fn record_checksum(lsn: Lsn, payload: &[u8]) -> u32 {
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(&lsn.to_le_bytes());
    hasher.update(payload);
    hasher.finalize()
}

fn read_u32(bytes: &[u8], at: usize) -> u32 {
    let mut word = [0u8; 4];
    word.copy_from_slice(&bytes[at..at + 4]);
    u32::from_le_bytes(word)
}

fn read_u64(bytes: &[u8], at: usize) -> u64 {
    let mut word = [0u8; 8];
    word.copy_from_slice(&bytes[at..at + 8]);
    u64::from_le_bytes(word)
}

/// Reason why replay stopped trusting a segment at some offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Damage {
    TruncatedSegmentHeader { len: usize },
    BadMagic,
    HeaderChecksumMismatch,
    ZeroFirstLsn,
    NameMismatch { name_lsn: Lsn, header_lsn: Lsn },
    SegmentOutOfSequence { expected: Lsn, found: Lsn },
    TruncatedRecordHeader { available: usize },
    TruncatedPayload { length: u32, available: usize },
    RecordChecksumMismatch,
    RecordOutOfSequence { expected: Lsn, found: Lsn },
    FollowsDamagedSegment,
}

impl fmt::Display for Damage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Damage::TruncatedSegmentHeader { len } => write!(
                f,
                "segment header is truncated ({len} of {SEGMENT_HEADER_LEN} bytes)"
            ),
            Damage::BadMagic => write!(f, "segment header has an unknown magic number"),
            Damage::HeaderChecksumMismatch => write!(f, "segment header checksum mismatch"),
            Damage::ZeroFirstLsn => write!(f, "segment header has first LSN 0"),
            Damage::NameMismatch {
                name_lsn,
                header_lsn,
            } => write!(
                f,
                "segment header has first LSN {header_lsn}, but the file name has {name_lsn}"
            ),
            Damage::SegmentOutOfSequence { expected, found } => write!(
                f,
                "segment starts at LSN {found}, but the previous segment ends before LSN {expected}"
            ),
            Damage::TruncatedRecordHeader { available } => write!(
                f,
                "record header is truncated ({available} of {RECORD_HEADER_LEN} bytes)"
            ),
            Damage::TruncatedPayload { length, available } => write!(
                f,
                "record length {length} runs past the end of the segment ({available} bytes left)"
            ),
            Damage::RecordChecksumMismatch => write!(f, "record checksum mismatch"),
            Damage::RecordOutOfSequence { expected, found } => {
                write!(f, "record has LSN {found}, but LSN {expected} was expected")
            }
            Damage::FollowsDamagedSegment => write!(
                f,
                "an earlier segment is damaged, so replaying this one would skip LSNs"
            ),
        }
    }
}
