//! Replay of the segment files, with the damaged tail set aside.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use bytes::Bytes;
use tracing::{debug, info, warn};

use super::format::{
    self, Damage, FORMAT_VERSION, SEGMENT_HEADER_LEN, SegmentHeader, decode_record,
    decode_segment_header,
};
use super::{Lsn, ReplayReport, WalError, WalRecord};

/// Folder inside the WAL directory that receives damaged data.
pub(super) const CORRUPT_DIR_NAME: &str = "corrupt";

/// Whether replay may modify the directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum ReplayMode {
    /// Truncate the damaged segment and move damaged data to `corrupt/`.
    Repair,
    /// Stop reading at the damage and modify nothing.
    ReadOnly,
}

/// Result of a replay.
#[derive(Debug)]
pub(super) struct Replay {
    pub(super) records: Vec<WalRecord>,
    /// Segments left in the directory, in LSN order.
    pub(super) segments: Vec<ReplayedSegment>,
    /// LSN for the next record.
    pub(super) next_lsn: Lsn,
    pub(super) report: ReplayReport,
}

/// A segment that remains in the directory after replay.
#[derive(Debug, Clone)]
pub(super) struct ReplayedSegment {
    pub(super) path: PathBuf,
    pub(super) first_lsn: Lsn,
    /// Bytes of valid data, which is the file size after repair.
    pub(super) len: u64,
    pub(super) records: u64,
}

/// A file in the directory whose name is a segment name.
#[derive(Debug, Clone)]
struct ListedSegment {
    path: PathBuf,
    name: String,
    name_lsn: Lsn,
}

/// Result of scanning one segment file.
struct SegmentScan {
    bytes: Bytes,
    header: Option<SegmentHeader>,
    records: Vec<WalRecord>,
    damage: Option<DamageAt>,
}

#[derive(Debug, Clone, Copy)]
struct DamageAt {
    offset: u64,
    damage: Damage,
}

impl SegmentScan {
    fn damaged(bytes: Bytes, header: Option<SegmentHeader>, offset: usize, damage: Damage) -> Self {
        SegmentScan {
            bytes,
            header,
            records: Vec::new(),
            damage: Some(DamageAt {
                offset: offset as u64,
                damage,
            }),
        }
    }

    /// Returns the bytes that hold the header and the valid records.
    fn valid_len(&self) -> u64 {
        self.damage
            .map_or(self.bytes.len() as u64, |damage| damage.offset)
    }
}

/// Replays every segment of `dir` in LSN order and, in [`ReplayMode::Repair`],
/// sets aside the damaged tail.
pub(super) fn replay(dir: &Path, mode: ReplayMode) -> Result<Replay, WalError> {
    let listed = list_segments(dir)?;
    check_format_versions(&listed)?;

    let mut replay = Replay {
        records: Vec::new(),
        segments: Vec::new(),
        next_lsn: listed.first().map_or(1, |segment| segment.name_lsn.max(1)),
        report: ReplayReport::default(),
    };
    let mut set_aside = SetAside::new(dir, mode);

    for (index, segment) in listed.iter().enumerate() {
        let expected_first = (!replay.segments.is_empty()).then_some(replay.next_lsn);
        let Some(scan) = scan_segment(segment, expected_first, mode)? else {
            continue;
        };
        replay.accept(segment, &scan);

        if let Some(damage) = scan.damage {
            replay.report.corrupt_tails += 1;
            set_aside.damaged_segment(segment, &scan, damage)?;
            for later in &listed[index + 1..] {
                set_aside.later_segment(later)?;
            }
            break;
        }
    }

    set_aside.finish()?;
    replay.report.bytes_set_aside = set_aside.bytes;
    replay.report.set_aside_files = set_aside.files;
    replay.report.last_lsn = replay.next_lsn - 1;
    Ok(replay)
}

impl Replay {
    /// Adds the valid part of a scanned segment, unless its header is damaged.
    fn accept(&mut self, segment: &ListedSegment, scan: &SegmentScan) {
        let Some(header) = scan.header else {
            return;
        };
        let records = scan.records.len() as u64;
        self.segments.push(ReplayedSegment {
            path: segment.path.clone(),
            first_lsn: header.first_lsn,
            len: scan.valid_len(),
            records,
        });
        self.records.extend(scan.records.iter().cloned());
        self.next_lsn = header.first_lsn + records;
        self.report.records += records;
        self.report.segments += 1;
    }
}

/// Lists the files whose names are segment names, sorted by LSN.
fn list_segments(dir: &Path) -> Result<Vec<ListedSegment>, WalError> {
    let read_dir_error = |error| WalError::Io {
        action: "list WAL directory",
        path: dir.to_path_buf(),
        error,
    };
    let mut segments = Vec::new();
    for entry in fs::read_dir(dir).map_err(read_dir_error)? {
        let entry = entry.map_err(read_dir_error)?;
        let file_name = entry.file_name();
        let Some(name) = file_name.to_str() else {
            continue;
        };
        let Some(name_lsn) = format::parse_segment_file_name(name) else {
            continue;
        };
        segments.push(ListedSegment {
            path: entry.path(),
            name: name.to_owned(),
            name_lsn,
        });
    }
    segments.sort_by_key(|segment| segment.name_lsn);
    Ok(segments)
}

/// Rejects the directory before anything is modified if a segment has a
/// valid header of another format version.
fn check_format_versions(listed: &[ListedSegment]) -> Result<(), WalError> {
    for segment in listed {
        let Some(prefix) = read_header_bytes(&segment.path)? else {
            continue;
        };
        if let Ok(header) = decode_segment_header(&prefix)
            && header.version != FORMAT_VERSION
        {
            return Err(WalError::UnsupportedVersion {
                path: segment.path.clone(),
                version: header.version,
                supported: FORMAT_VERSION,
            });
        }
    }
    Ok(())
}

/// Reads up to one segment header from the start of a file. Returns `None`
/// if the file was removed since the directory was listed.
fn read_header_bytes(path: &Path) -> Result<Option<Vec<u8>>, WalError> {
    let read_error = |error| WalError::Io {
        action: "read WAL segment header of",
        path: path.to_path_buf(),
        error,
    };
    let file = match File::open(path) {
        Ok(file) => file,
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(error) => return Err(read_error(error)),
    };
    let mut prefix = Vec::with_capacity(SEGMENT_HEADER_LEN);
    file.take(SEGMENT_HEADER_LEN as u64)
        .read_to_end(&mut prefix)
        .map_err(read_error)?;
    Ok(Some(prefix))
}

/// Reads a segment and checks its header and records.
///
/// `expected_first` is the LSN that must start this segment, or `None` for
/// the first segment. Returns `None` when a read-only replay finds the file
/// gone, because a running writer may delete segments at any time.
fn scan_segment(
    segment: &ListedSegment,
    expected_first: Option<Lsn>,
    mode: ReplayMode,
) -> Result<Option<SegmentScan>, WalError> {
    let bytes = match fs::read(&segment.path) {
        Ok(bytes) => Bytes::from(bytes),
        Err(error) if error.kind() == io::ErrorKind::NotFound && mode == ReplayMode::ReadOnly => {
            debug!(file = %segment.path.display(), "WAL segment removed while reading; skipping it");
            return Ok(None);
        }
        Err(error) => {
            return Err(WalError::Io {
                action: "read WAL segment",
                path: segment.path.clone(),
                error,
            });
        }
    };

    let header = match decode_segment_header(&bytes) {
        Ok(header) => header,
        Err(damage) => return Ok(Some(SegmentScan::damaged(bytes, None, 0, damage))),
    };
    if header.first_lsn != segment.name_lsn {
        let damage = Damage::NameMismatch {
            name_lsn: segment.name_lsn,
            header_lsn: header.first_lsn,
        };
        return Ok(Some(SegmentScan::damaged(bytes, None, 0, damage)));
    }
    if let Some(expected) = expected_first
        && header.first_lsn != expected
    {
        let damage = Damage::SegmentOutOfSequence {
            expected,
            found: header.first_lsn,
        };
        return Ok(Some(SegmentScan::damaged(bytes, None, 0, damage)));
    }

    Ok(Some(scan_records(bytes, header)))
}

/// Decodes records after a valid header until the end of the file or the first damage.
fn scan_records(bytes: Bytes, header: SegmentHeader) -> SegmentScan {
    let mut records = Vec::new();
    let mut offset = SEGMENT_HEADER_LEN;
    let mut damage = None;
    while offset < bytes.len() {
        let expected_lsn = header.first_lsn + records.len() as u64;
        match decode_record(&bytes, offset, expected_lsn) {
            Ok((record, next_offset)) => {
                records.push(record);
                offset = next_offset;
            }
            Err(found) => {
                damage = Some(DamageAt {
                    offset: offset as u64,
                    damage: found,
                });
                break;
            }
        }
    }
    SegmentScan {
        bytes,
        header: Some(header),
        records,
        damage,
    }
}

/// Moves damaged data into `corrupt/` and keeps the totals for the report.
struct SetAside<'a> {
    dir: &'a Path,
    corrupt_dir: PathBuf,
    mode: ReplayMode,
    bytes: u64,
    files: Vec<PathBuf>,
    /// Whether a segment was truncated or moved, so the directories need an fsync.
    changed: bool,
}

impl<'a> SetAside<'a> {
    fn new(dir: &'a Path, mode: ReplayMode) -> Self {
        SetAside {
            dir,
            corrupt_dir: dir.join(CORRUPT_DIR_NAME),
            mode,
            bytes: 0,
            files: Vec::new(),
            changed: false,
        }
    }

    /// Sets aside everything from the damage to the end of the segment.
    fn damaged_segment(
        &mut self,
        segment: &ListedSegment,
        scan: &SegmentScan,
        at: DamageAt,
    ) -> Result<(), WalError> {
        let tail = &scan.bytes[at.offset as usize..];
        self.bytes += tail.len() as u64;
        if self.mode == ReplayMode::ReadOnly {
            log_read_only_stop(segment, at, tail.len());
            return Ok(());
        }

        let target = self.unused_target(&segment.name, at.offset)?;
        if at.offset == 0 {
            self.move_segment(segment, &target)?;
        } else {
            self.copy_tail(segment, at.offset, tail, &target)?;
            truncate_segment(segment, at.offset, &target)?;
        }
        warn_set_aside(segment, at, tail.len(), &target);
        self.files.push(target);
        self.changed = true;
        Ok(())
    }

    /// Sets aside a whole segment that follows the damaged one.
    fn later_segment(&mut self, segment: &ListedSegment) -> Result<(), WalError> {
        let at = DamageAt {
            offset: 0,
            damage: Damage::FollowsDamagedSegment,
        };
        let len = match fs::symlink_metadata(&segment.path) {
            Ok(metadata) => metadata.len(),
            Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(error) => {
                return Err(WalError::Io {
                    action: "read metadata of WAL segment",
                    path: segment.path.clone(),
                    error,
                });
            }
        };
        self.bytes += len;
        if self.mode == ReplayMode::ReadOnly {
            return Ok(());
        }

        let target = self.unused_target(&segment.name, 0)?;
        self.move_segment(segment, &target)?;
        warn_set_aside(segment, at, len as usize, &target);
        self.files.push(target);
        self.changed = true;
        Ok(())
    }

    /// Fsyncs both directories so that moves and truncations survive a crash.
    fn finish(&self) -> Result<(), WalError> {
        if !self.changed {
            return Ok(());
        }
        sync_dir(&self.corrupt_dir)?;
        sync_dir(self.dir)
    }

    /// Returns `corrupt/<name>.<offset>.tail`, with a numeric suffix if that name is taken.
    fn unused_target(&self, name: &str, offset: u64) -> Result<PathBuf, WalError> {
        fs::create_dir_all(&self.corrupt_dir).map_err(|error| WalError::Io {
            action: "create folder for damaged WAL data",
            path: self.corrupt_dir.clone(),
            error,
        })?;
        let file_name = format!("{name}.{offset}.tail");
        let mut target = self.corrupt_dir.join(&file_name);
        let mut suffix = 1u32;
        while fs::symlink_metadata(&target).is_ok() {
            target = self.corrupt_dir.join(format!("{file_name}.{suffix}"));
            suffix += 1;
        }
        Ok(target)
    }

    fn move_segment(&self, segment: &ListedSegment, target: &Path) -> Result<(), WalError> {
        fs::rename(&segment.path, target).map_err(|error| WalError::SetAside {
            path: segment.path.clone(),
            offset: 0,
            target: target.to_path_buf(),
            error,
        })
    }

    /// Writes the tail to `target` and makes it durable before the segment is truncated.
    fn copy_tail(
        &self,
        segment: &ListedSegment,
        offset: u64,
        tail: &[u8],
        target: &Path,
    ) -> Result<(), WalError> {
        let copy = || -> io::Result<()> {
            let mut file = OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(target)?;
            file.write_all(tail)?;
            file.sync_all()?;
            File::open(&self.corrupt_dir)?.sync_all()
        };
        copy().map_err(|error| WalError::SetAside {
            path: segment.path.clone(),
            offset,
            target: target.to_path_buf(),
            error,
        })
    }
}

fn truncate_segment(segment: &ListedSegment, offset: u64, target: &Path) -> Result<(), WalError> {
    let truncate = || -> io::Result<()> {
        let file = OpenOptions::new().write(true).open(&segment.path)?;
        file.set_len(offset)?;
        file.sync_all()
    };
    truncate().map_err(|error| WalError::SetAside {
        path: segment.path.clone(),
        offset,
        target: target.to_path_buf(),
        error,
    })
}

/// Fsyncs a directory so that created, renamed and removed entries are durable.
pub(super) fn sync_dir(dir: &Path) -> Result<(), WalError> {
    File::open(dir)
        .and_then(|file| file.sync_all())
        .map_err(|error| WalError::Io {
            action: "fsync directory",
            path: dir.to_path_buf(),
            error,
        })
}

fn warn_set_aside(segment: &ListedSegment, at: DamageAt, bytes: usize, target: &Path) {
    warn!(
        file = %segment.path.display(),
        offset = at.offset,
        reason = %at.damage,
        bytes,
        moved_to = %target.display(),
        "set aside damaged WAL data; records from this offset on are not replayed"
    );
}

fn log_read_only_stop(segment: &ListedSegment, at: DamageAt, bytes: usize) {
    info!(
        file = %segment.path.display(),
        offset = at.offset,
        reason = %at.damage,
        bytes,
        "stopped reading WAL at a damaged or incomplete record; a running writer may still be writing it"
    );
}
