//! Client batches whose progress is remembered, so that a retry adds nothing.
//!
//! A shipper that gets no response sends the same batch again with the same
//! `batch_id`. The ledger records how far the first attempt got:
//! the last input line whose events are durable, and the report for the
//! lines up to it. A complete batch is answered with its first report; a
//! batch cut short by a crash or an error resumes after that line.
//!
//! Exactness comes from where progress is written. The progress of a chunk
//! with events travels in the same WAL record as the events (as the
//! record's note), so the two are durable together, and the store's replay
//! rebuilds it. Before the WAL is truncated, the ledger is saved to
//! `<data-dir>/batches.json`. A chunk without events adds nothing when it is
//! parsed again, so its progress is kept in memory only.
//!
//! Entries expire [`RETENTION`] after their last update, and the file keeps
//! at most [`MAX_ENTRIES`], dropping the oldest.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};

use serde::{Deserialize, Serialize};

use crate::error::{Result, StorageError};

/// How long a batch id is remembered after its last update.
pub const RETENTION: std::time::Duration = std::time::Duration::from_secs(7 * 24 * 3600);

/// Most batch ids remembered at once.
pub const MAX_ENTRIES: usize = 100_000;

const FILE_NAME: &str = "batches.json";

/// How far one client batch got.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BatchProgress {
    pub id: String,
    /// Last input line whose events are durable; 0 when none is.
    pub through_line: u64,
    /// The ingest report for the lines up to `through_line`, as the server returns it.
    pub report: serde_json::Value,
    /// Every line was processed, and `report` is the batch's final report.
    pub complete: bool,
    /// Unix seconds of the last update.
    pub updated_at: i64,
}

impl BatchProgress {
    /// Returns whether `self` is at least as far as `other`.
    fn supersedes(&self, other: &BatchProgress) -> bool {
        (self.complete, self.through_line) >= (other.complete, other.through_line)
    }
}

/// The remembered batches of one data directory.
#[derive(Debug)]
pub struct BatchLedger {
    /// `None` for a read-only store, which never saves.
    path: Option<PathBuf>,
    entries: Mutex<HashMap<String, BatchProgress>>,
    /// Something changed since the last save.
    dirty: AtomicBool,
    locks: Mutex<HashMap<String, Weak<tokio::sync::Mutex<()>>>>,
}

impl BatchLedger {
    /// Loads the ledger of `data_dir`; a missing file is an empty ledger.
    pub fn load(data_dir: &Path) -> Result<Self> {
        let path = data_dir.join(FILE_NAME);
        let entries = match std::fs::read(&path) {
            Ok(bytes) => {
                let list: Vec<BatchProgress> = serde_json::from_slice(&bytes).map_err(|e| {
                    StorageError::Config(format!(
                        "{} is not a batch ledger ({e}); move it aside to start without the record of retried batches",
                        path.display()
                    ))
                })?;
                list.into_iter().map(|p| (p.id.clone(), p)).collect()
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => HashMap::new(),
            Err(source) => {
                return Err(StorageError::Io {
                    action: "reading",
                    path,
                    source,
                });
            }
        };
        Ok(BatchLedger {
            path: Some(path),
            entries: Mutex::new(entries),
            dirty: AtomicBool::new(false),
            locks: Mutex::new(HashMap::new()),
        })
    }

    /// Loads the ledger without ever writing it back.
    pub fn load_read_only(data_dir: &Path) -> Result<Self> {
        let mut ledger = BatchLedger::load(data_dir)?;
        ledger.path = None;
        Ok(ledger)
    }

    /// Returns the progress of batch `id`, if it is remembered.
    pub fn get(&self, id: &str) -> Option<BatchProgress> {
        self.entries().get(id).cloned()
    }

    /// Records progress; an older state of the same batch never replaces a newer one.
    pub fn record(&self, progress: BatchProgress) {
        let mut entries = self.entries();
        match entries.get(&progress.id) {
            Some(known) if !progress.supersedes(known) => {}
            _ => {
                entries.insert(progress.id.clone(), progress);
                self.dirty.store(true, Ordering::Release);
            }
        }
    }

    /// Number of remembered batches.
    pub fn len(&self) -> usize {
        self.entries().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Waits until no other request works on batch `id`, and holds it until the guard drops.
    pub async fn lock(&self, id: &str) -> tokio::sync::OwnedMutexGuard<()> {
        let mutex = {
            let mut locks = self.locks.lock().unwrap_or_else(|e| e.into_inner());
            locks.retain(|_, lock| lock.strong_count() > 0);
            match locks.get(id).and_then(Weak::upgrade) {
                Some(mutex) => mutex,
                None => {
                    let mutex = Arc::new(tokio::sync::Mutex::new(()));
                    locks.insert(id.to_string(), Arc::downgrade(&mutex));
                    mutex
                }
            }
        };
        mutex.lock_owned().await
    }

    /// Drops expired entries and writes the ledger atomically, if anything changed.
    pub fn save(&self, now_unix: i64) -> Result<()> {
        let Some(path) = &self.path else {
            return Ok(());
        };
        if !self.dirty.swap(false, Ordering::AcqRel) {
            return Ok(());
        }
        let list = {
            let mut entries = self.entries();
            let oldest = now_unix - RETENTION.as_secs() as i64;
            entries.retain(|_, p| p.updated_at >= oldest);
            if entries.len() > MAX_ENTRIES {
                let mut ages: Vec<(i64, String)> = entries
                    .values()
                    .map(|p| (p.updated_at, p.id.clone()))
                    .collect();
                ages.sort_unstable();
                for (_, id) in &ages[..entries.len() - MAX_ENTRIES] {
                    entries.remove(id);
                }
            }
            let mut list: Vec<BatchProgress> = entries.values().cloned().collect();
            list.sort_by(|a, b| a.id.cmp(&b.id));
            list
        };
        let bytes = serde_json::to_vec(&list)
            .map_err(|e| StorageError::Config(format!("cannot encode the batch ledger: {e}")))?;
        let tmp = path.with_extension("json.tmp");
        let io = |action: &'static str, path: &Path| {
            let path = path.to_path_buf();
            move |source| StorageError::Io {
                action,
                path,
                source,
            }
        };
        {
            use std::io::Write;
            let mut file = std::fs::File::create(&tmp).map_err(io("creating", &tmp))?;
            file.write_all(&bytes).map_err(io("writing", &tmp))?;
            file.sync_all().map_err(io("syncing", &tmp))?;
        }
        std::fs::rename(&tmp, path)
            .map_err(io("renaming into place", path))
            .inspect_err(|_| self.dirty.store(true, Ordering::Release))
    }

    fn entries(&self) -> std::sync::MutexGuard<'_, HashMap<String, BatchProgress>> {
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn progress(id: &str, through_line: u64, complete: bool, updated_at: i64) -> BatchProgress {
        BatchProgress {
            id: id.to_string(),
            through_line,
            report: serde_json::json!({ "accepted": through_line }),
            complete,
            updated_at,
        }
    }

    #[test]
    fn newer_progress_wins_and_survives_a_reload() {
        let dir = tempfile::tempdir().unwrap();
        let ledger = BatchLedger::load(dir.path()).unwrap();
        assert!(ledger.is_empty());
        ledger.record(progress("a", 10, false, 100));
        ledger.record(progress("a", 5, false, 101));
        assert_eq!(
            ledger.get("a").unwrap().through_line,
            10,
            "progress never goes back"
        );
        ledger.record(progress("a", 10, true, 102));
        ledger.save(200).unwrap();

        let reloaded = BatchLedger::load(dir.path()).unwrap();
        assert_eq!(reloaded.get("a"), Some(progress("a", 10, true, 102)));
    }

    #[test]
    fn old_entries_expire_on_save() {
        let dir = tempfile::tempdir().unwrap();
        let ledger = BatchLedger::load(dir.path()).unwrap();
        let day = 24 * 3600;
        ledger.record(progress("old", 1, true, 0));
        ledger.save(1).unwrap();
        ledger.record(progress("new", 1, true, 7 * day));
        ledger.save(7 * day + 1).unwrap();
        assert_eq!(ledger.get("old"), None);
        assert!(ledger.get("new").is_some());
    }

    #[test]
    fn corrupt_ledger_error_says_what_to_do() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(FILE_NAME), b"{not json").unwrap();
        let error = BatchLedger::load(dir.path()).unwrap_err().to_string();
        assert!(error.contains("move it aside"), "{error}");
    }

    #[tokio::test]
    async fn one_request_at_a_time_per_batch() {
        let ledger = Arc::new(BatchLedger::load(tempfile::tempdir().unwrap().path()).unwrap());
        let first = ledger.lock("b").await;
        let waiter = {
            let ledger = Arc::clone(&ledger);
            tokio::spawn(async move {
                let _guard = ledger.lock("b").await;
            })
        };
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        assert!(
            !waiter.is_finished(),
            "a second request on the same batch must wait"
        );
        let _other = ledger.lock("c").await;
        drop(first);
        waiter.await.unwrap();
    }
}
