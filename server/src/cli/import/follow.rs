//! `apitrail import --follow`: send the lines that files gain, as they are written.
//!
//! Each poll (every `--poll-interval`) lists the followed files: named
//! files, the files in followed directories and the matches of followed
//! patterns. A file is known by its identity, device and inode, and by its
//! fingerprint, the SHA-256 of its first [`FINGERPRINT_BYTES`] bytes
//! (decompressed for gzip and zstd files), so that:
//!
//! - **Appends** are read from the offset of the last complete record sent.
//!   A line without its newline yet, or a multi-line JSON record not yet
//!   closed, is held back until it is complete.
//! - **Rename-and-create rotation** keeps the renamed file open, by its
//!   inode, and reads it until it has been idle for [`ROTATED_IDLE`] after
//!   it left the followed paths. Then its last line is sent even without a
//!   newline. The new file at the old path is read from its start.
//! - **copytruncate rotation** is noticed when the file is shorter than the
//!   offset or its first bytes changed; it is then read again from its
//!   start. Lines written after the last poll and before the truncation are
//!   in the copy: when the copy is followed too (a followed directory, or a
//!   pattern such as `access.log*`), its fingerprint matches the old content
//!   and it is read from the offset where the original stopped.
//! - **A restart** finds each file's entry in the checkpoint by identity and
//!   fingerprint, and resumes at its offset. A file whose fingerprint
//!   matches a known file under another identity, such as a rotated or
//!   compressed copy, starts at that file's offset: content already sent is
//!   not sent again.
//! - **Compressed files** are decompressed from their start and read to
//!   their end; one that ends early, such as a file still being written, is
//!   read again from where it stopped once its size changes.
//!
//! A batch is the complete records after the offset, at most
//! [`BATCH_MAX_BYTES`] (more when one record is longer). Before a batch is
//! sent, its end is written to the checkpoint; after it is acknowledged, the
//! new offset. A restart sends an unacknowledged batch again with the same
//! bytes and id, which the server or the table log recognises, so a crash at
//! any point neither skips nor repeats lines.
//!
//! Formats whose header describes the records (`#Fields:` in CloudFront and
//! other W3C logs, `#fields` in Zeek logs) need it before every batch: the
//! last header block sent is sent again ahead of each batch, as context
//! lines that set the parser's state and are not counted.
//!
//! `s3://` prefixes are listed each poll; each new object, or an object
//! with a new entity tag, is imported whole, like a file without
//! `--follow`.

use std::collections::{HashMap, HashSet};
use std::io::SeekFrom;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use apitrail_ingest::{Format, IngestReport, RecordChunker};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncSeekExt};
use tokio::sync::watch;

use super::checkpoint::{CheckpointFile, FileEntry, ObjectEntry, PendingBatch};
use super::destination::{BatchRequest, Destination, FileResult, ImportSettings, SendError};
use super::inputs::{self, Input, InputSpec};
use super::s3::S3Client;
use super::{print_errors, summary};

/// Leading bytes of a file that its fingerprint covers.
pub(crate) const FINGERPRINT_BYTES: u64 = 1024;
/// Usual maximum size of a batch; a longer record makes a longer batch.
const BATCH_MAX_BYTES: usize = 4 * 1024 * 1024;
/// How long a file that left the followed paths is read after it last grew.
const ROTATED_IDLE: Duration = Duration::from_secs(5);
/// Checkpoint entries of files and objects not found for this long are dropped.
const FORGET_AFTER_SECS: i64 = 7 * 24 * 3600;
/// How often the "last found" time of an entry is written, at most.
const SEEN_AT_RESOLUTION_SECS: i64 = 3600;
/// Maximum number of lines of a header block kept as context.
const MAX_HEADER_LINES: usize = 64;
/// Maximum wait between two attempts at a batch that failed.
const MAX_RETRY_DELAY: Duration = Duration::from_secs(30);

/// Settings of follow mode.
pub(crate) struct FollowOptions {
    pub poll_interval: Duration,
    pub checkpoint: PathBuf,
}

/// Runs until Ctrl-C or SIGTERM; returns success after a requested stop.
pub(crate) async fn run(
    destination: &Destination,
    settings: &ImportSettings,
    s3: &S3Client,
    specs: Vec<InputSpec>,
    options: FollowOptions,
) -> anyhow::Result<ExitCode> {
    let stop = Stop::listen()?;
    let checkpoint = CheckpointFile::open(&options.checkpoint)?;
    eprintln!(
        "following {} input(s), checkpoint {}; Ctrl-C or SIGTERM stops after the current batch",
        specs.len(),
        checkpoint.path().display()
    );
    tracing::info!(checkpoint = %checkpoint.path().display(), inputs = specs.len(), "following");
    let mut follower = Follower::new(destination, settings, s3, specs, checkpoint, stop);
    let outcome = follower.follow(options.poll_interval).await;
    let saved = follower.checkpoint.save();
    println!("{}", follower.stats.line());
    outcome?;
    saved?;
    Ok(ExitCode::SUCCESS)
}

/// Ctrl-C or SIGTERM, as a flag that the follower checks between batches.
#[derive(Clone)]
struct Stop(watch::Receiver<bool>);

impl Stop {
    fn listen() -> anyhow::Result<Self> {
        use tokio::signal::unix::{SignalKind, signal};
        let (sender, receiver) = watch::channel(false);
        let mut terminate =
            signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
        let mut interrupt =
            signal(SignalKind::interrupt()).context("installing the SIGINT handler")?;
        tokio::spawn(async move {
            tokio::select! {
                _ = terminate.recv() => {}
                _ = interrupt.recv() => {}
            }
            tracing::info!("stop requested; finishing the current batch");
            let _ = sender.send(true);
        });
        Ok(Stop(receiver))
    }

    fn requested(&self) -> bool {
        *self.0.borrow()
    }

    /// Waits for `duration`, or less if a stop is requested.
    async fn sleep(&self, duration: Duration) {
        let mut receiver = self.0.clone();
        tokio::select! {
            _ = tokio::time::sleep(duration) => {}
            _ = receiver.wait_for(|stop| *stop) => {}
        }
    }
}

/// Device and inode.
type FileId = (u64, u64);

/// A followed file with an open handle, which stays readable after a rename or unlink.
struct OpenFile {
    file: std::fs::File,
    key: String,
    path: PathBuf,
    /// Found at a followed path in the latest poll.
    present: bool,
    compressed: bool,
    /// When the file last grew, or was found.
    last_growth: Instant,
    /// Size at the last look; `u64::MAX` before the first one.
    last_size: u64,
}

/// Relation of a newly found file to the files of the checkpoint.
enum Match {
    /// A known file, found again, such as after a restart.
    Same(String),
    /// A file with the first bytes of a file still being read: a copy, or
    /// the two halves of a copytruncate rotation seen between its steps.
    CopyOfLive(String),
    /// A file with the first bytes of a file no longer read, such as a
    /// rotated or compressed copy.
    Copy(String),
    New,
}

/// Counts shown when the follower stops.
#[derive(Debug, Default)]
struct FollowStats {
    files: HashSet<String>,
    batches: u64,
    objects_imported: u64,
    already_imported: u64,
    failed: u64,
    accepted: u64,
    rejected: u64,
    skipped: u64,
}

impl FollowStats {
    fn add_report(&mut self, report: &IngestReport) {
        self.accepted += report.accepted;
        self.rejected += report.rejected;
        self.skipped += report.skipped;
    }

    fn line(&self) -> String {
        format!(
            "total: {} files followed, {} batches sent, {} objects imported, {} already imported, {} failed; {} accepted, {} rejected, {} skipped",
            self.files.len(),
            self.batches,
            self.objects_imported,
            self.already_imported,
            self.failed,
            self.accepted,
            self.rejected,
            self.skipped
        )
    }
}

/// Lines of a file between two offsets, ready to send.
struct Batch {
    start: u64,
    end: u64,
    end_line: u64,
    data: Vec<u8>,
}

/// Outcome of sending one batch.
enum Delivery {
    Stored(Option<IngestReport>),
    /// A stop was requested while the batch waited for a retry.
    Stopped,
    /// The batch cannot be ingested as it is, for the reason in the message.
    Rejected(String),
}

struct Follower<'a> {
    destination: &'a Destination,
    settings: &'a ImportSettings,
    s3: &'a S3Client,
    specs: Vec<InputSpec>,
    checkpoint: CheckpointFile,
    open: HashMap<FileId, OpenFile>,
    /// Files read to their end, with their size then: they are read again if it changes.
    finished: HashMap<FileId, (String, u64)>,
    /// Files that look like a copy of a file still being read, since when.
    deferred: HashMap<FileId, Instant>,
    /// Files whose lines were rejected as a whole, not read again until a restart.
    paused: HashSet<String>,
    /// Objects that failed to import, by URL and entity tag, tried again after a restart.
    failed_objects: HashSet<(String, Option<String>)>,
    /// The last listing error of each prefix, so that a repeated one is printed once.
    listing_errors: HashMap<String, String>,
    stats: FollowStats,
    stop: Stop,
    /// The checkpoint changed since it was last written.
    dirty: bool,
}

impl<'a> Follower<'a> {
    fn new(
        destination: &'a Destination,
        settings: &'a ImportSettings,
        s3: &'a S3Client,
        specs: Vec<InputSpec>,
        checkpoint: CheckpointFile,
        stop: Stop,
    ) -> Self {
        Follower {
            destination,
            settings,
            s3,
            specs,
            checkpoint,
            open: HashMap::new(),
            finished: HashMap::new(),
            deferred: HashMap::new(),
            paused: HashSet::new(),
            failed_objects: HashSet::new(),
            listing_errors: HashMap::new(),
            stats: FollowStats::default(),
            stop,
            dirty: false,
        }
    }

    async fn follow(&mut self, poll_interval: Duration) -> anyhow::Result<()> {
        loop {
            self.poll().await?;
            if self.stop.requested() {
                return Ok(());
            }
            self.stop.sleep(poll_interval).await;
            if self.stop.requested() {
                return Ok(());
            }
        }
    }

    /// Looks once at every input and sends what is new.
    async fn poll(&mut self) -> anyhow::Result<()> {
        self.scan_files().await;
        let mut order: Vec<(PathBuf, FileId)> = self
            .open
            .iter()
            .map(|(id, file)| (file.path.clone(), *id))
            .collect();
        order.sort();
        for (_, id) in order {
            if self.stop.requested() {
                return Ok(());
            }
            self.advance(id).await?;
        }
        if !self.stop.requested() {
            self.poll_objects().await?;
        }
        self.forget_old_entries();
        if self.dirty {
            self.checkpoint.save()?;
            self.dirty = false;
        }
        Ok(())
    }

    /// Finds the followed files, and starts reading the new ones.
    async fn scan_files(&mut self) {
        for file in self.open.values_mut() {
            file.present = false;
        }
        let mut found = HashSet::new();
        for path in inputs::scan_local(&self.specs) {
            if self.is_checkpoint(&path) {
                continue;
            }
            let Ok(metadata) = std::fs::metadata(&path) else {
                continue;
            };
            let id = (metadata.dev(), metadata.ino());
            if !found.insert(id) {
                continue;
            }
            if let Some(file) = self.open.get_mut(&id) {
                file.present = true;
                if file.path != path {
                    tracing::info!(from = %file.path.display(), to = %path.display(), "a followed file was renamed");
                    file.path = path.clone();
                    if let Some(entry) = self.checkpoint.data.files.get_mut(&file.key) {
                        entry.path = path;
                        self.dirty = true;
                    }
                }
                continue;
            }
            if let Some((_, size)) = self.finished.get(&id) {
                if *size == metadata.len() {
                    continue;
                }
                self.finished.remove(&id);
            }
            self.discover(path, id, metadata.len()).await;
        }
        self.finished.retain(|id, _| found.contains(id));
        self.deferred.retain(|id, _| found.contains(id));
    }

    /// Returns whether `path` is the checkpoint file, which a followed directory may contain.
    fn is_checkpoint(&self, path: &Path) -> bool {
        let checkpoint = self.checkpoint.path();
        if path.file_name() != checkpoint.file_name() {
            return false;
        }
        match (path.canonicalize(), checkpoint.canonicalize()) {
            (Ok(a), Ok(b)) => a == b,
            _ => false,
        }
    }

    /// Opens a file found for the first time in this run, and finds where to read it from.
    async fn discover(&mut self, path: PathBuf, id: FileId, size: u64) {
        let file = match std::fs::File::open(&path) {
            Ok(file) => file,
            Err(e) => {
                tracing::debug!(path = %path.display(), error = %e, "cannot open a followed file yet");
                return;
            }
        };
        // The path may have been replaced between the listing and the open.
        match file.metadata() {
            Ok(metadata) if (metadata.dev(), metadata.ino()) == id => {}
            _ => return,
        }
        let compressed = match is_compressed(&file) {
            Ok(compressed) => compressed,
            Err(e) => {
                tracing::debug!(path = %path.display(), error = %e, "cannot read a followed file yet");
                return;
            }
        };
        let head = match read_head(&file, compressed).await {
            Ok(head) => head,
            Err(e) => {
                tracing::debug!(path = %path.display(), error = %e, "cannot read the start of a followed file yet");
                return;
            }
        };

        let key = match self.match_entry(id, &head) {
            Match::Same(key) => key,
            Match::CopyOfLive(from) => {
                let since = *self.deferred.entry(id).or_insert_with(Instant::now);
                if since.elapsed() < ROTATED_IDLE {
                    return;
                }
                self.clone_entry(&from, id, &path, &file, compressed, &head, size)
            }
            Match::Copy(from) => self.clone_entry(&from, id, &path, &file, compressed, &head, size),
            Match::New => {
                let entry = new_entry(id, &path, compressed, &head);
                let key = entry.key.clone();
                self.checkpoint.data.files.insert(key.clone(), entry);
                key
            }
        };
        self.deferred.remove(&id);

        let entry = self
            .checkpoint
            .data
            .files
            .get_mut(&key)
            .expect("the matched entry exists");
        entry.path = path.clone();
        entry.seen_at = chrono::Utc::now().timestamp();
        self.dirty = true;
        if entry.finished && entry.compressed && entry.stored_size == size {
            self.finished.insert(id, (key, size));
            return;
        }
        entry.finished = false;
        tracing::info!(path = %path.display(), offset = entry.offset, line = entry.line, compressed, "following a file");
        self.stats.files.insert(key.clone());
        self.open.insert(
            id,
            OpenFile {
                file,
                key,
                path,
                present: true,
                compressed,
                last_growth: Instant::now(),
                last_size: u64::MAX,
            },
        );
    }

    fn match_entry(&self, id: FileId, head: &[u8]) -> Match {
        let open_keys: HashSet<&str> = self.open.values().map(|f| f.key.as_str()).collect();
        let mut live = None;
        let mut copy: Option<&FileEntry> = None;
        for entry in self.checkpoint.data.files.values() {
            let same_id = (entry.device, entry.inode) == id;
            let is_open = open_keys.contains(entry.key.as_str());
            let matches = fingerprint_matches(entry, head) || (entry.head_len == 0 && same_id);
            if !matches {
                continue;
            }
            if same_id && !is_open {
                return Match::Same(entry.key.clone());
            }
            if is_open {
                live = Some(entry.key.clone());
            } else if copy.is_none_or(|best| entry.offset > best.offset) {
                copy = Some(entry);
            }
        }
        match (live, copy) {
            (Some(key), _) => Match::CopyOfLive(key),
            (None, Some(entry)) => Match::Copy(entry.key.clone()),
            (None, None) => Match::New,
        }
    }

    /// Adds an entry for a copy of the file `from`, starting at that file's offset.
    #[expect(clippy::too_many_arguments, reason = "the parts of a file just found")]
    fn clone_entry(
        &mut self,
        from: &str,
        id: FileId,
        path: &Path,
        file: &std::fs::File,
        compressed: bool,
        head: &[u8],
        size: u64,
    ) -> String {
        let original = self.checkpoint.data.files[from].clone();
        let mut entry = new_entry(id, path, compressed, head);
        entry.offset = original.offset;
        entry.line = original.line;
        entry.header = original.header;
        entry.format = original.format;
        if !compressed && size < original.offset {
            // The copy is shorter than what was read from the original: all of it was sent.
            entry.offset = size;
            entry.line = count_lines(file, size).unwrap_or(original.line);
        }
        tracing::info!(
            path = %path.display(),
            original = %original.path.display(),
            offset = entry.offset,
            "a new file starts like a known one, such as a rotated copy; reading it after the content already sent"
        );
        let key = entry.key.clone();
        self.checkpoint.data.files.insert(key.clone(), entry);
        key
    }

    async fn advance(&mut self, id: FileId) -> anyhow::Result<()> {
        let Some(file) = self.open.get(&id) else {
            return Ok(());
        };
        if self.paused.contains(&file.key) {
            return Ok(());
        }
        if file.compressed {
            self.advance_compressed(id).await
        } else {
            self.advance_plain(id).await
        }
    }

    /// Sends the complete records a plain file gained, batch by batch.
    async fn advance_plain(&mut self, id: FileId) -> anyhow::Result<()> {
        loop {
            if self.stop.requested() {
                return Ok(());
            }
            let file = self.open.get_mut(&id).expect("advanced files are open");
            let size = match file.file.metadata() {
                Ok(metadata) => metadata.len(),
                Err(e) => {
                    tracing::warn!(path = %file.path.display(), error = %e, "cannot read the size of a followed file");
                    return Ok(());
                }
            };
            let entry = &self.checkpoint.data.files[&file.key];
            if size != file.last_size {
                if size < entry.offset || !head_intact(&file.file, entry)? {
                    self.restart_truncated(id, size)?;
                    continue;
                }
                file.last_size = size;
                file.last_growth = Instant::now();
                self.extend_fingerprint(id, size)?;
            }
            let file = &self.open[&id];
            let flush_partial = !file.present && file.last_growth.elapsed() >= ROTATED_IDLE;
            match self.read_plain_batch(id, size, flush_partial)? {
                Some(batch) => {
                    if !self.send(id, batch).await? {
                        return Ok(());
                    }
                }
                None => {
                    if flush_partial {
                        self.finish_rotated(id);
                    }
                    return Ok(());
                }
            }
        }
    }

    /// Reads the next batch of a plain file: the batch that waits for its
    /// acknowledgement, else the complete records after the offset. With
    /// `flush_partial`, a last line without its newline counts as complete.
    fn read_plain_batch(
        &mut self,
        id: FileId,
        size: u64,
        flush_partial: bool,
    ) -> anyhow::Result<Option<Batch>> {
        let file = &self.open[&id];
        let entry = self
            .checkpoint
            .data
            .files
            .get_mut(&file.key)
            .expect("open files have an entry");
        let start = entry.offset;
        if let Some(pending) = entry.pending {
            if pending.end > start && pending.end <= size {
                let data = read_at(&file.file, start, pending.end - start)?;
                if data.len() as u64 == pending.end - start {
                    return Ok(Some(Batch {
                        start,
                        end: pending.end,
                        end_line: pending.end_line,
                        data,
                    }));
                }
            }
            tracing::warn!(
                path = %file.path.display(),
                start,
                end = pending.end,
                "the file no longer holds the batch sent before the restart; its lines may be stored twice"
            );
            entry.pending = None;
            self.dirty = true;
        }
        if size <= start {
            return Ok(None);
        }
        let available = size - start;
        let mut want = available.min(BATCH_MAX_BYTES as u64);
        loop {
            let mut data = read_at(&file.file, start, want)?;
            let complete = complete_records_len(&data);
            if complete > 0 {
                data.truncate(complete);
            } else if (data.len() as u64) < available && data.len() as u64 == want {
                // One record is longer than the batch size.
                want = (want * 2).min(available);
                continue;
            } else if data.is_empty() || !flush_partial {
                // A partial last line waits for its newline.
                return Ok(None);
            }
            let end = start + data.len() as u64;
            return Ok(Some(Batch {
                start,
                end,
                end_line: entry.line + line_count(&data),
                data,
            }));
        }
    }

    /// Starts a truncated or rewritten file again from its start. The old
    /// entry is kept, so a copy of the old content continues from it.
    fn restart_truncated(&mut self, id: FileId, size: u64) -> anyhow::Result<()> {
        let file = self.open.get_mut(&id).expect("truncated files are open");
        let old = self
            .checkpoint
            .data
            .files
            .get_mut(&file.key)
            .expect("open files have an entry");
        old.finished = true;
        old.pending = None;
        eprintln!(
            "{}: truncated or rewritten (such as by copytruncate rotation) after {} lines; reading it again from its start",
            file.path.display(),
            old.line
        );
        tracing::info!(path = %file.path.display(), offset = old.offset, size, "a followed file was truncated");
        let head = read_at(&file.file, 0, FINGERPRINT_BYTES.min(size))?;
        let entry = new_entry(id, &file.path, false, &head);
        file.key = entry.key.clone();
        file.last_size = size;
        file.last_growth = Instant::now();
        self.stats.files.insert(entry.key.clone());
        self.checkpoint.data.files.insert(entry.key.clone(), entry);
        self.dirty = true;
        Ok(())
    }

    /// Lengthens the fingerprint of a file shorter than [`FINGERPRINT_BYTES`] when it was last read.
    fn extend_fingerprint(&mut self, id: FileId, size: u64) -> anyhow::Result<()> {
        let file = &self.open[&id];
        let entry = self
            .checkpoint
            .data
            .files
            .get_mut(&file.key)
            .expect("open files have an entry");
        if entry.head_len >= FINGERPRINT_BYTES || size <= entry.head_len {
            return Ok(());
        }
        let head = read_at(&file.file, 0, FINGERPRINT_BYTES.min(size))?;
        entry.head_len = head.len() as u64;
        entry.head_sha256 = sha256_hex(&head);
        self.dirty = true;
        Ok(())
    }

    /// Stops reading a file that left the followed paths and stayed idle.
    fn finish_rotated(&mut self, id: FileId) {
        let Some(file) = self.open.remove(&id) else {
            return;
        };
        if let Some(entry) = self.checkpoint.data.files.get_mut(&file.key) {
            entry.finished = true;
            self.dirty = true;
            tracing::info!(path = %file.path.display(), lines = entry.line, "stopped reading a rotated file");
        }
    }

    /// Sends the records of a compressed file after the offset, to its end.
    async fn advance_compressed(&mut self, id: FileId) -> anyhow::Result<()> {
        let file = self.open.get_mut(&id).expect("advanced files are open");
        let size = file
            .file
            .metadata()
            .map(|m| m.len())
            .unwrap_or(file.last_size);
        if size == file.last_size {
            if !file.present && file.last_growth.elapsed() >= ROTATED_IDLE {
                // An incomplete compressed file that left the followed paths.
                self.open.remove(&id);
            }
            return Ok(());
        }
        file.last_size = size;
        file.last_growth = Instant::now();
        let key = file.key.clone();
        let mut stream = match ContentStream::open(&file.file).await {
            Ok(stream) => stream,
            Err(e) => {
                tracing::debug!(path = %file.path.display(), error = %e, "cannot decompress a followed file yet");
                return Ok(());
            }
        };

        let entry = self
            .checkpoint
            .data
            .files
            .get_mut(&key)
            .expect("open files have an entry");
        let (skipped, lines) = stream.skip(entry.offset).await;
        if skipped < entry.offset {
            if stream.end != Some(StreamEnd::Complete) {
                return Ok(());
            }
            // Shorter than the offset taken from the file it copies: all of it was sent.
            entry.offset = skipped;
            entry.line = lines;
            entry.pending = None;
            self.dirty = true;
        }

        loop {
            if self.stop.requested() {
                return Ok(());
            }
            let entry = &self.checkpoint.data.files[&key];
            let pending = entry.pending.map(|p| (p.end - entry.offset) as usize);
            let Some(data) = stream.next_batch(pending).await else {
                break;
            };
            let batch = Batch {
                start: entry.offset,
                end: entry.offset + data.len() as u64,
                end_line: entry.line + line_count(&data),
                data,
            };
            if !self.send(id, batch).await? {
                return Ok(());
            }
        }
        if stream.end == Some(StreamEnd::Complete) && stream.buffer.is_empty() {
            let file = self.open.remove(&id).expect("advanced files are open");
            let entry = self
                .checkpoint
                .data
                .files
                .get_mut(&key)
                .expect("open files have an entry");
            entry.finished = true;
            entry.stored_size = size;
            self.finished.insert(id, (key, size));
            tracing::info!(path = %file.path.display(), lines = entry.line, "read a compressed file to its end");
        }
        Ok(())
    }

    /// Sends one batch and records it; returns whether the file may go on.
    async fn send(&mut self, id: FileId, batch: Batch) -> anyhow::Result<bool> {
        let file = &self.open[&id];
        let key = file.key.clone();
        let path = file.path.clone();
        let entry = self
            .checkpoint
            .data
            .files
            .get_mut(&key)
            .expect("open files have an entry");
        let mut body = Vec::with_capacity(batch.data.len());
        for line in &entry.header {
            body.extend_from_slice(line.as_bytes());
            body.push(b'\n');
        }
        body.extend_from_slice(&batch.data);
        let request = BatchRequest {
            body,
            source: file_name(&path),
            app_id: format!("follow-{key}"),
            start: batch.start,
            end: batch.end,
            first_line: entry.line + 1,
            context_lines: entry.header.len() as u64,
            format: entry
                .format
                .as_deref()
                .and_then(|f| f.parse::<Format>().ok()),
        };

        // The intent: after a crash, this batch is sent again as it is.
        let pending = PendingBatch {
            end: batch.end,
            end_line: batch.end_line,
        };
        if entry.pending != Some(pending) {
            entry.pending = Some(pending);
            self.checkpoint.save()?;
        }

        let lines = format!("lines {}-{}", request.first_line, batch.end_line);
        let report = match self.deliver(&request, &path, &lines).await? {
            Delivery::Stored(report) => report,
            Delivery::Stopped => return Ok(false),
            Delivery::Rejected(message) => {
                eprintln!(
                    "{}: {lines} failed: {message}; this file is not read again until the follower restarts, from the same line",
                    path.display()
                );
                self.stats.failed += 1;
                self.paused.insert(key.clone());
                if let Some(entry) = self.checkpoint.data.files.get_mut(&key) {
                    entry.pending = None;
                }
                self.checkpoint.save()?;
                return Ok(false);
            }
        };

        let entry = self
            .checkpoint
            .data
            .files
            .get_mut(&key)
            .expect("open files have an entry");
        entry.offset = batch.end;
        entry.line = batch.end_line;
        entry.pending = None;
        if entry.format.is_none() {
            entry.format = report.as_ref().and_then(|r| r.format.clone());
        }
        update_header(&mut entry.header, &batch.data);
        self.checkpoint.save()?;
        self.dirty = false;
        if let Some(file) = self.open.get_mut(&id) {
            file.last_growth = Instant::now();
        }

        self.stats.batches += 1;
        match report {
            Some(report) => {
                println!("{}: {lines}: {}", path.display(), summary(&report));
                print_errors(&report);
                self.stats.add_report(&report);
            }
            None => println!("{}: {lines}: stored by an earlier attempt", path.display()),
        }
        Ok(true)
    }

    /// Sends a batch until it is stored, retrying failures of the server or the storage.
    async fn deliver(
        &self,
        request: &BatchRequest,
        path: &Path,
        lines: &str,
    ) -> anyhow::Result<Delivery> {
        let mut delay = Duration::from_secs(1);
        loop {
            match self.destination.send_batch(request, self.settings).await {
                Ok(report) => return Ok(Delivery::Stored(report)),
                Err(SendError::Rejected(message)) => return Ok(Delivery::Rejected(message)),
                Err(SendError::Fatal(message)) => {
                    bail!("{}: {lines}: {message}", path.display())
                }
                Err(SendError::Retry(message)) => {
                    eprintln!(
                        "{}: {lines} not stored yet: {message}; trying again in {} s",
                        path.display(),
                        delay.as_secs()
                    );
                    tracing::warn!(path = %path.display(), error = %message, "a batch failed; retrying");
                    if self.stop.requested() {
                        return Ok(Delivery::Stopped);
                    }
                    self.stop.sleep(delay).await;
                    if self.stop.requested() {
                        return Ok(Delivery::Stopped);
                    }
                    delay = (delay * 2).min(MAX_RETRY_DELAY);
                }
            }
        }
    }

    /// Imports the objects that appeared under the followed prefixes.
    async fn poll_objects(&mut self) -> anyhow::Result<()> {
        let urls: Vec<_> = self
            .specs
            .iter()
            .filter_map(|spec| match spec {
                InputSpec::S3(url) => Some(url.clone()),
                _ => None,
            })
            .collect();
        for url in urls {
            let objects = match self.s3.list(&url).await {
                Ok(objects) => {
                    self.listing_errors.remove(&url.to_string());
                    objects
                }
                Err(e) => {
                    let message = format!("{e:#}");
                    let previous = self.listing_errors.insert(url.to_string(), message.clone());
                    if previous.as_ref() != Some(&message) {
                        eprintln!("{url}: {message}; trying again at the next poll");
                    }
                    continue;
                }
            };
            let now = chrono::Utc::now().timestamp();
            for object in objects {
                if self.stop.requested() {
                    return Ok(());
                }
                let name = object.url();
                let e_tag = object.e_tag().map(str::to_string);
                let size = object.size();
                if let Some(known) = self.checkpoint.data.objects.get_mut(&name)
                    && known.e_tag == e_tag
                    && known.size == size
                {
                    if now - known.seen_at > SEEN_AT_RESOLUTION_SECS {
                        known.seen_at = now;
                        self.dirty = true;
                    }
                    continue;
                }
                if self.failed_objects.contains(&(name.clone(), e_tag.clone())) {
                    continue;
                }
                let result = self
                    .destination
                    .import(&Input::Object(object), self.settings)
                    .await;
                match result {
                    FileResult::Imported(report) => {
                        println!("{name}: {}", summary(&report));
                        print_errors(&report);
                        self.stats.objects_imported += 1;
                        self.stats.add_report(&report);
                    }
                    FileResult::AlreadyImported => {
                        println!("{name}: already imported (same content), skipped");
                        self.stats.already_imported += 1;
                    }
                    FileResult::Failed(message, _) => {
                        eprintln!(
                            "{name}: failed: {message}; it is tried again when the follower restarts"
                        );
                        self.stats.failed += 1;
                        self.failed_objects.insert((name, e_tag));
                        continue;
                    }
                }
                self.checkpoint.data.objects.insert(
                    name,
                    ObjectEntry {
                        e_tag,
                        size,
                        seen_at: now,
                    },
                );
                self.checkpoint.save()?;
            }
        }
        Ok(())
    }

    /// Drops entries of files and objects not found for [`FORGET_AFTER_SECS`].
    fn forget_old_entries(&mut self) {
        let now = chrono::Utc::now().timestamp();
        let mut active: HashSet<String> = self.open.values().map(|f| f.key.clone()).collect();
        active.extend(self.finished.values().map(|(key, _)| key.clone()));
        for key in &active {
            if let Some(entry) = self.checkpoint.data.files.get_mut(key)
                && now - entry.seen_at > SEEN_AT_RESOLUTION_SECS
            {
                entry.seen_at = now;
                self.dirty = true;
            }
        }
        let keep = |key: &str| active.contains(key);
        if self.checkpoint.prune(now - FORGET_AFTER_SECS, &keep) {
            self.dirty = true;
        }
    }
}

/// Decompressed content of a compressed file, read forward.
struct ContentStream {
    reader: Pin<Box<dyn AsyncRead + Send>>,
    /// Bytes read and not yet returned.
    buffer: Vec<u8>,
    end: Option<StreamEnd>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StreamEnd {
    /// The compressed data ended properly.
    Complete,
    /// The compressed data ended early or is invalid, as in a file still being written.
    Cut,
}

impl ContentStream {
    async fn open(file: &std::fs::File) -> std::io::Result<Self> {
        let mut file = tokio::fs::File::from_std(file.try_clone()?);
        file.seek(SeekFrom::Start(0)).await?;
        let reader = crate::ingest::decompress(file).await?;
        Ok(ContentStream {
            reader,
            buffer: Vec::new(),
            end: None,
        })
    }

    /// Reads until the buffer contains `len` bytes or the content ends.
    async fn fill(&mut self, len: usize) {
        let mut piece = vec![0u8; 256 * 1024];
        while self.buffer.len() < len && self.end.is_none() {
            match self.reader.read(&mut piece).await {
                Ok(0) => self.end = Some(StreamEnd::Complete),
                Ok(read) => self.buffer.extend_from_slice(&piece[..read]),
                Err(_) => self.end = Some(StreamEnd::Cut),
            }
        }
    }

    /// Drops the first `len` bytes; returns how many there were and the lines in them.
    async fn skip(&mut self, len: u64) -> (u64, u64) {
        let mut skipped = 0u64;
        let mut newlines = 0u64;
        while skipped < len {
            let want = (len - skipped).min(BATCH_MAX_BYTES as u64) as usize;
            self.fill(want).await;
            let take = want.min(self.buffer.len());
            if take == 0 {
                break;
            }
            newlines += memchr::memchr_iter(b'\n', &self.buffer[..take]).count() as u64;
            self.buffer.drain(..take);
            skipped += take as u64;
        }
        (skipped, newlines)
    }

    /// Returns the next batch: exactly `pending` bytes when given and
    /// available, else the complete records that follow. At the proper end
    /// of the content, its last line counts as complete.
    async fn next_batch(&mut self, pending: Option<usize>) -> Option<Vec<u8>> {
        if let Some(len) = pending {
            self.fill(len).await;
            if self.buffer.len() >= len {
                return Some(self.buffer.drain(..len).collect());
            }
        }
        let mut want = BATCH_MAX_BYTES;
        loop {
            self.fill(want).await;
            let complete = complete_records_len(&self.buffer);
            let take = match self.end {
                None if complete > 0 => complete,
                None => {
                    want *= 2;
                    continue;
                }
                Some(_) if complete > 0 => complete,
                Some(StreamEnd::Complete) if !self.buffer.is_empty() => self.buffer.len(),
                Some(_) => return None,
            };
            return Some(self.buffer.drain(..take).collect());
        }
    }
}

fn new_entry(id: FileId, path: &Path, compressed: bool, head: &[u8]) -> FileEntry {
    FileEntry {
        key: uuid::Uuid::new_v4().simple().to_string(),
        path: path.to_path_buf(),
        device: id.0,
        inode: id.1,
        head_len: head.len() as u64,
        head_sha256: sha256_hex(head),
        offset: 0,
        line: 0,
        header: Vec::new(),
        format: None,
        pending: None,
        compressed,
        stored_size: 0,
        finished: false,
        seen_at: chrono::Utc::now().timestamp(),
    }
}

fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

/// Returns whether the file's first bytes are those the entry was fingerprinted with.
fn fingerprint_matches(entry: &FileEntry, head: &[u8]) -> bool {
    let len = entry.head_len as usize;
    entry.head_len > 0 && head.len() >= len && sha256_hex(&head[..len]) == entry.head_sha256
}

/// Returns whether a plain file still starts with the bytes of its fingerprint.
fn head_intact(file: &std::fs::File, entry: &FileEntry) -> anyhow::Result<bool> {
    if entry.head_len == 0 {
        return Ok(true);
    }
    let head = read_at(file, 0, entry.head_len)?;
    Ok(fingerprint_matches(entry, &head))
}

/// Returns whether the file starts with the gzip or zstd magic bytes.
fn is_compressed(file: &std::fs::File) -> std::io::Result<bool> {
    let magic = read_at(file, 0, 4)?;
    Ok(magic.starts_with(&[0x1f, 0x8b]) || magic.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]))
}

/// Reads the first [`FINGERPRINT_BYTES`] bytes of the content, decompressed if need be.
async fn read_head(file: &std::fs::File, compressed: bool) -> std::io::Result<Vec<u8>> {
    if !compressed {
        return read_at(file, 0, FINGERPRINT_BYTES);
    }
    let mut stream = ContentStream::open(file).await?;
    stream.fill(FINGERPRINT_BYTES as usize).await;
    if stream.buffer.is_empty() && stream.end == Some(StreamEnd::Cut) {
        return Err(std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            "the compressed content ends before its first bytes",
        ));
    }
    stream.buffer.truncate(FINGERPRINT_BYTES as usize);
    Ok(stream.buffer)
}

/// Reads up to `len` bytes at `offset`; fewer at the end of the file.
fn read_at(file: &std::fs::File, offset: u64, len: u64) -> std::io::Result<Vec<u8>> {
    let mut data = vec![0u8; len as usize];
    let mut filled = 0;
    while filled < data.len() {
        match file.read_at(&mut data[filled..], offset + filled as u64) {
            Ok(0) => break,
            Ok(read) => filled += read,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    data.truncate(filled);
    Ok(data)
}

/// Counts the lines in the first `len` bytes of a file.
fn count_lines(file: &std::fs::File, len: u64) -> std::io::Result<u64> {
    let mut offset = 0;
    let mut lines = 0;
    let mut last = b'\n';
    while offset < len {
        let data = read_at(file, offset, (len - offset).min(1024 * 1024))?;
        if data.is_empty() {
            break;
        }
        lines += memchr::memchr_iter(b'\n', &data).count() as u64;
        last = *data.last().expect("not empty");
        offset += data.len() as u64;
    }
    Ok(lines + u64::from(last != b'\n'))
}

/// Counts the lines in `data`, with a last line that has no newline.
fn line_count(data: &[u8]) -> u64 {
    let newlines = memchr::memchr_iter(b'\n', data).count() as u64;
    newlines + u64::from(!data.is_empty() && !data.ends_with(b"\n"))
}

/// Returns the length of the complete records at the start of `data`, as
/// the ingest pipeline frames them: whole lines, and multi-line JSON records
/// that are closed.
///
/// NOTE: each batch is framed from the state between two records, so the
/// elements of a top-level JSON array (a line `[`) after the first batch
/// keep their separating commas and are rejected.
fn complete_records_len(data: &[u8]) -> usize {
    let mut chunker = RecordChunker::with_chunk_bytes(1);
    chunker
        .push(data)
        .first()
        .map_or(0, |chunk| chunk.data.len())
}

/// Keeps the last block of `#` lines in `data` that names the fields
/// (`#Fields:` in W3C logs, `#fields` in Zeek logs) as the file's header.
fn update_header(header: &mut Vec<String>, data: &[u8]) {
    let names_fields = |block: &[&[u8]]| {
        block
            .iter()
            .any(|line| line.len() >= 7 && line[..7].eq_ignore_ascii_case(b"#fields"))
    };
    let mut block: Vec<&[u8]> = Vec::new();
    let mut last: Option<Vec<&[u8]>> = None;
    for line in data.split(|&b| b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.starts_with(b"#") {
            block.push(line);
            continue;
        }
        if names_fields(&block) {
            last = Some(std::mem::take(&mut block));
        }
        block.clear();
    }
    if names_fields(&block) {
        last = Some(block);
    }
    let Some(lines) = last else {
        return;
    };
    if lines.len() > MAX_HEADER_LINES {
        return;
    }
    let text: Result<Vec<String>, _> = lines
        .iter()
        .map(|line| String::from_utf8(line.to_vec()))
        .collect();
    if let Ok(text) = text {
        *header = text;
    }
}

fn file_name(path: &Path) -> String {
    path.file_name().map_or_else(
        || path.display().to_string(),
        |name| name.to_string_lossy().into_owned(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn complete_records_hold_back_partial_lines() {
        assert_eq!(complete_records_len(b"a\nb\nc"), 4);
        assert_eq!(complete_records_len(b"partial"), 0);
        assert_eq!(
            complete_records_len(b"{\n\"a\": 1\n"),
            0,
            "an open JSON record"
        );
        assert_eq!(complete_records_len(b"{\n\"a\": 1\n}\nx"), 11);
    }

    #[test]
    fn line_count_counts_a_last_partial_line() {
        assert_eq!(line_count(b""), 0);
        assert_eq!(line_count(b"a\nb\n"), 2);
        assert_eq!(line_count(b"a\nb"), 2);
    }

    #[test]
    fn header_is_the_last_block_with_fields() {
        let mut header = Vec::new();
        update_header(&mut header, b"#Version: 1.0\n#Fields: date time\n2024 x\n");
        assert_eq!(header, vec!["#Version: 1.0", "#Fields: date time"]);
        update_header(&mut header, b"2024 y\n#close 2024\n");
        assert_eq!(
            header,
            vec!["#Version: 1.0", "#Fields: date time"],
            "a block without fields keeps the header"
        );
        update_header(&mut header, b"#separator \\x09\n#fields\tts\turi\n1\t/a\n");
        assert_eq!(header, vec!["#separator \\x09", "#fields\tts\turi"]);
        update_header(&mut header, b"#Fields: a b\r\n");
        assert_eq!(header, vec!["#Fields: a b"], "a block at the end counts");
    }

    #[test]
    fn fingerprints_match_prefixes() {
        let entry = new_entry((1, 2), Path::new("a.log"), false, b"first line\n");
        assert!(fingerprint_matches(&entry, b"first line\nsecond line\n"));
        assert!(!fingerprint_matches(&entry, b"first"));
        assert!(!fingerprint_matches(&entry, b"other line\n"));
        let empty = new_entry((1, 2), Path::new("a.log"), false, b"");
        assert!(!fingerprint_matches(&empty, b"anything"));
    }
}
