//! Exclusive ownership of a data directory.

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};

use crate::error::{Result, StorageError};

/// An advisory `flock` on `<data-dir>/LOCK`, released when dropped or when the process dies.
#[derive(Debug)]
pub struct DirLock {
    _file: File,
}

impl DirLock {
    /// Takes the lock or fails at once if another process holds it.
    pub fn acquire(data_dir: &Path) -> Result<Self> {
        std::fs::create_dir_all(data_dir)
            .map_err(|e| StorageError::io("creating data directory", data_dir, e))?;
        let path: PathBuf = data_dir.join("LOCK");
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| StorageError::io("opening lock file", &path, e))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(StorageError::Locked {
                    path: data_dir.to_path_buf(),
                    lock: path,
                });
            }
            Err(std::fs::TryLockError::Error(e)) => {
                return Err(StorageError::io("locking", &path, e));
            }
        }
        Ok(DirLock { _file: file })
    }
}
