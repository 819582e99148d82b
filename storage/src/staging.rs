//! Local staging: flushed events kept on local disk while the object store
//! cannot take them.
//!
//! When a flush cannot commit to the events table (the object store is
//! down, slow or rejecting writes), the store writes the buffered run of
//! events to a Parquet file here instead. The view partials of the same WAL
//! records go to a second file. Both are fsynced before the WAL records
//! they cover are deleted, so a staged file is as durable as the WAL was.
//! Memory then contains only what arrived since the last flush, however
//! long the store stays away, plus the merged view partials of the staged
//! records, which queries of the views read from memory as before. Those
//! are aggregates per consumer, endpoint and hour, far smaller than the
//! events.
//!
//! Queries read staged events files like committed ones. When the store is
//! back, each file is committed in LSN order, under the same application
//! transaction `(app_id, through)` as a direct flush would have used, so a
//! commit that landed although its request failed is recognised and not
//! repeated. A committed file is deleted only after [`RETIRE_AFTER`], since
//! a query planned before the commit may still be about to open it.
//!
//! Files are named by the WAL range they hold, `events-<from>-<through>.parquet`
//! and `views-<from>-<through>.parquet`, with both numbers zero-padded so
//! that name order is LSN order. A name ending in `.tmp` is a write that a
//! crash cut short; it is deleted at start-up, since its records are still
//! in the WAL.
//!
//! The disk budget (`staging_max_bytes`) bounds the files' total size. Once
//! it is reached, the store rejects new events with
//! [`StorageError::StagingFull`] instead of filling the disk. Events it has
//! already acknowledged stay safe.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow::record_batch::RecordBatch;
use deltalake::parquet::arrow::ArrowWriter;
use deltalake::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use deltalake::parquet::basic::{Compression, ZstdLevel};
use deltalake::parquet::file::properties::WriterProperties;

use crate::error::{Result, StorageError};
use crate::wal::Lsn;

/// How long a committed staged file stays on disk for queries that planned
/// before its commit.
pub const RETIRE_AFTER: Duration = Duration::from_secs(300);

/// The table a staged file is bound for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StagedKind {
    Events,
    Views,
}

impl StagedKind {
    fn prefix(self) -> &'static str {
        match self {
            StagedKind::Events => "events",
            StagedKind::Views => "views",
        }
    }
}

/// One staged Parquet file and the range of WAL records it contains.
#[derive(Debug, Clone)]
pub struct StagedFile {
    pub path: PathBuf,
    pub kind: StagedKind,
    /// First and last WAL LSN whose rows are in the file.
    pub from_lsn: Lsn,
    pub through_lsn: Lsn,
    pub bytes: u64,
    /// Smallest and largest `time` of an events file, in microseconds.
    pub time_range: Option<(i64, i64)>,
}

impl StagedFile {
    fn file_name(kind: StagedKind, from_lsn: Lsn, through_lsn: Lsn) -> String {
        format!("{}-{from_lsn:020}-{through_lsn:020}.parquet", kind.prefix())
    }

    /// Parses a staged file's name; `None` for any other file.
    fn parse_name(name: &str) -> Option<(StagedKind, Lsn, Lsn)> {
        let stem = name.strip_suffix(".parquet")?;
        let (prefix, range) = stem.split_once('-')?;
        let kind = match prefix {
            "events" => StagedKind::Events,
            "views" => StagedKind::Views,
            _ => return None,
        };
        let (from, through) = range.split_once('-')?;
        let from_lsn = from.parse().ok()?;
        let through_lsn = through.parse().ok()?;
        (from_lsn <= through_lsn).then_some((kind, from_lsn, through_lsn))
    }

    /// Reads the whole file back.
    pub fn read(&self) -> Result<Vec<RecordBatch>> {
        let file = File::open(&self.path)
            .map_err(|e| StorageError::io("opening staged file", &self.path, e))?;
        let reader = ParquetRecordBatchReaderBuilder::try_new(file)
            .and_then(|builder| builder.build())
            .map_err(|e| StorageError::Staging {
                path: self.path.clone(),
                reason: format!("cannot read it as Parquet: {e}"),
            })?;
        reader
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(|e| StorageError::Arrow {
                context: format!("reading staged file {}", self.path.display()),
                source: e,
            })
    }
}

/// The staged files of one data directory, and the ones waiting for deletion.
#[derive(Debug)]
pub struct StagingArea {
    dir: PathBuf,
    max_bytes: u64,
    /// Files not committed yet, each list in LSN order.
    events: Vec<Arc<StagedFile>>,
    views: Vec<Arc<StagedFile>>,
    /// Committed files with the time they were committed.
    retired: Vec<(Arc<StagedFile>, Instant)>,
}

impl StagingArea {
    /// Lists the staged files of `dir` (creating it when `writable`), and
    /// removes the leftovers of writes that a crash cut short.
    pub fn open(dir: PathBuf, max_bytes: u64, writable: bool) -> Result<Self> {
        let mut area = StagingArea {
            dir,
            max_bytes,
            events: Vec::new(),
            views: Vec::new(),
            retired: Vec::new(),
        };
        if writable {
            std::fs::create_dir_all(&area.dir)
                .map_err(|e| StorageError::io("creating staging directory", &area.dir, e))?;
        } else if !area.dir.exists() {
            return Ok(area);
        }
        let entries = std::fs::read_dir(&area.dir)
            .map_err(|e| StorageError::io("listing staging directory", &area.dir, e))?;
        for entry in entries {
            let entry =
                entry.map_err(|e| StorageError::io("listing staging directory", &area.dir, e))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let path = entry.path();
            if name.ends_with(".tmp") {
                if writable {
                    std::fs::remove_file(&path).map_err(|e| {
                        StorageError::io("removing unfinished staged file", &path, e)
                    })?;
                }
                continue;
            }
            let Some((kind, from_lsn, through_lsn)) = StagedFile::parse_name(&name) else {
                tracing::warn!(path = %path.display(), "ignoring a file of the staging directory that apitrail did not write");
                continue;
            };
            let bytes = entry
                .metadata()
                .map_err(|e| StorageError::io("reading staged file size", &path, e))?
                .len();
            let time_range = match kind {
                StagedKind::Events => time_range_of_file(&path)?,
                StagedKind::Views => None,
            };
            let file = Arc::new(StagedFile {
                path,
                kind,
                from_lsn,
                through_lsn,
                bytes,
                time_range,
            });
            match kind {
                StagedKind::Events => area.events.push(file),
                StagedKind::Views => area.views.push(file),
            }
        }
        area.events.sort_by_key(|f| f.from_lsn);
        area.views.sort_by_key(|f| f.from_lsn);
        Ok(area)
    }

    /// Staged events files not committed yet, in LSN order.
    pub fn events(&self) -> &[Arc<StagedFile>] {
        &self.events
    }

    /// Staged view partial files not committed yet, in LSN order.
    pub fn views(&self) -> &[Arc<StagedFile>] {
        &self.views
    }

    /// Highest LSN in a staged file not committed yet (0 when none).
    pub fn through_lsn(&self) -> Lsn {
        self.events
            .iter()
            .chain(&self.views)
            .map(|f| f.through_lsn)
            .max()
            .unwrap_or(0)
    }

    /// Bytes of all files on disk, retired ones included.
    pub fn bytes(&self) -> u64 {
        self.events
            .iter()
            .chain(&self.views)
            .chain(self.retired.iter().map(|(f, _)| f))
            .map(|f| f.bytes)
            .sum()
    }

    pub fn max_bytes(&self) -> u64 {
        self.max_bytes
    }

    /// Bytes of the files not committed yet, which the budget limits.
    /// Committed files waiting for deletion are not counted, because the
    /// flusher deletes them [`RETIRE_AFTER`] their commit.
    pub fn uncommitted_bytes(&self) -> u64 {
        self.events.iter().chain(&self.views).map(|f| f.bytes).sum()
    }

    /// Returns whether the files fill the disk budget, so new events are rejected.
    pub fn is_full(&self) -> bool {
        self.uncommitted_bytes() >= self.max_bytes
    }

    /// Adds a file written by [`write_staged`].
    pub fn add(&mut self, file: StagedFile) {
        let file = Arc::new(file);
        let list = match file.kind {
            StagedKind::Events => &mut self.events,
            StagedKind::Views => &mut self.views,
        };
        let position = list.partition_point(|f| f.from_lsn <= file.from_lsn);
        list.insert(position, file);
        self.publish_metrics();
    }

    /// Retires every file of `kind` whose records are all at or below `lsn`,
    /// which a commit now covers.
    pub fn retire_through(&mut self, kind: StagedKind, lsn: Lsn, now: Instant) {
        let list = match kind {
            StagedKind::Events => &mut self.events,
            StagedKind::Views => &mut self.views,
        };
        let (done, keep): (Vec<_>, Vec<_>) = list.drain(..).partition(|f| f.through_lsn <= lsn);
        *list = keep;
        self.retired.extend(done.into_iter().map(|f| (f, now)));
        self.publish_metrics();
    }

    /// Deletes retired files older than `after`, or all of them when no
    /// query can still read them (view files are never read by queries).
    pub fn delete_retired(&mut self, now: Instant, after: Duration) {
        let mut kept = Vec::with_capacity(self.retired.len());
        for (file, retired_at) in std::mem::take(&mut self.retired) {
            let due = file.kind == StagedKind::Views || now.duration_since(retired_at) >= after;
            if !due {
                kept.push((file, retired_at));
                continue;
            }
            match std::fs::remove_file(&file.path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => {
                    tracing::warn!(path = %file.path.display(), error = %e, "cannot delete a committed staged file; retrying later");
                    kept.push((file, retired_at));
                }
            }
        }
        self.retired = kept;
        self.publish_metrics();
    }

    /// Returns the path for a new file of `kind` with the WAL records `from..=through`.
    pub fn path_for(&self, kind: StagedKind, from_lsn: Lsn, through_lsn: Lsn) -> PathBuf {
        self.dir
            .join(StagedFile::file_name(kind, from_lsn, through_lsn))
    }

    fn publish_metrics(&self) {
        metrics::gauge!("apitrail_staged_files").set((self.events.len() + self.views.len()) as f64);
        metrics::gauge!("apitrail_staged_bytes").set(self.uncommitted_bytes() as f64);
    }
}

/// Writes `batches` to a new staged file at `path`, durably: the data goes
/// to a temporary name, is fsynced, renamed into place, and the directory
/// is fsynced, so after a crash the file is either whole or absent.
pub fn write_staged(
    path: &Path,
    kind: StagedKind,
    from_lsn: Lsn,
    through_lsn: Lsn,
    batches: &[RecordBatch],
    time_range: Option<(i64, i64)>,
) -> Result<StagedFile> {
    let Some(first) = batches.first() else {
        return Err(StorageError::Staging {
            path: path.to_path_buf(),
            reason: "nothing to stage".to_string(),
        });
    };
    let tmp = path.with_extension("parquet.tmp");
    let write = || -> std::result::Result<u64, String> {
        let file = File::create(&tmp).map_err(|e| format!("cannot create it: {e}"))?;
        let properties = WriterProperties::builder()
            .set_compression(Compression::ZSTD(
                ZstdLevel::try_new(1).map_err(|e| e.to_string())?,
            ))
            .build();
        let mut writer = ArrowWriter::try_new(file, first.schema(), Some(properties))
            .map_err(|e| format!("cannot start writing Parquet: {e}"))?;
        for batch in batches {
            writer
                .write(batch)
                .map_err(|e| format!("cannot write Parquet: {e}"))?;
        }
        let file = writer
            .into_inner()
            .map_err(|e| format!("cannot finish the Parquet file: {e}"))?;
        file.sync_all()
            .map_err(|e| format!("cannot fsync it: {e}"))?;
        let bytes = file.metadata().map_err(|e| e.to_string())?.len();
        std::fs::rename(&tmp, path).map_err(|e| format!("cannot rename it into place: {e}"))?;
        if let Some(dir) = path.parent() {
            File::open(dir)
                .and_then(|d| d.sync_all())
                .map_err(|e| format!("cannot fsync the staging directory: {e}"))?;
        }
        Ok(bytes)
    };
    match write() {
        Ok(bytes) => Ok(StagedFile {
            path: path.to_path_buf(),
            kind,
            from_lsn,
            through_lsn,
            bytes,
            time_range,
        }),
        Err(reason) => {
            let _ = std::fs::remove_file(&tmp);
            Err(StorageError::Staging {
                path: path.to_path_buf(),
                reason,
            })
        }
    }
}

/// Reads the smallest and largest `time` of a staged events file, by reading
/// the file; this happens only when a store opens with staged files.
fn time_range_of_file(path: &Path) -> Result<Option<(i64, i64)>> {
    let file = StagedFile {
        path: path.to_path_buf(),
        kind: StagedKind::Events,
        from_lsn: 0,
        through_lsn: 0,
        bytes: 0,
        time_range: None,
    };
    let mut range: Option<(i64, i64)> = None;
    for batch in file.read()? {
        let buffered = crate::buffer::BufferedBatch::new(0, batch);
        if let Some((min, max)) = buffered.time_range {
            range = Some(match range {
                Some((lo, hi)) => (lo.min(min), hi.max(max)),
                None => (min, max),
            });
        }
    }
    Ok(range)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_sort_by_lsn() {
        let name = StagedFile::file_name(StagedKind::Events, 7, 12);
        assert_eq!(
            name,
            "events-00000000000000000007-00000000000000000012.parquet"
        );
        assert_eq!(
            StagedFile::parse_name(&name),
            Some((StagedKind::Events, 7, 12))
        );
        let later = StagedFile::file_name(StagedKind::Events, 100, 120);
        assert!(name < later, "name order must be LSN order");
        assert_eq!(
            StagedFile::parse_name("views-00000000000000000003-00000000000000000004.parquet"),
            Some((StagedKind::Views, 3, 4))
        );
    }

    #[test]
    fn foreign_names_are_not_staged_files() {
        for name in [
            "events-1.parquet",
            "events-9-3.parquet",
            "other-1-2.parquet",
            "events-a-b.parquet",
            "events-1-2.parquet.tmp",
            "README",
        ] {
            assert_eq!(StagedFile::parse_name(name), None, "{name}");
        }
    }
}
