//! The checkpoint file of `apitrail import --follow`.
//!
//! One JSON document records each followed file: its identity (device,
//! inode, and the SHA-256 of its first bytes), and the byte offset and line
//! number up to which its lines were sent and acknowledged. It also records
//! the batch that was sent but not yet acknowledged, if any. For `s3://`
//! inputs it records the objects already imported, with their entity tags.
//!
//! The file is replaced atomically: the new content is written to a hidden
//! file beside it, synced, renamed over it, and the directory is synced. A
//! crash leaves either the old or the new checkpoint, never a mix. One
//! follower at a time may use a checkpoint: it holds an exclusive lock on a
//! hidden `.NAME.lock` file beside it while it runs.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};

/// Version of the checkpoint format this build reads and writes.
const FORMAT_VERSION: u32 = 1;

/// Content of the checkpoint file.
#[derive(Debug, Default, Serialize, Deserialize)]
pub(crate) struct Checkpoint {
    pub version: u32,
    /// Followed files by their key.
    pub files: BTreeMap<String, FileEntry>,
    /// Imported objects by URL.
    pub objects: BTreeMap<String, ObjectEntry>,
}

/// Position in one followed file.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct FileEntry {
    /// Random id of this file's content, part of its batch ids.
    pub key: String,
    /// Path at which the file was last found.
    pub path: PathBuf,
    pub device: u64,
    pub inode: u64,
    /// Number of leading bytes that `head_sha256` covers, at most
    /// [`super::follow::FINGERPRINT_BYTES`]; decompressed bytes for a
    /// compressed file.
    pub head_len: u64,
    pub head_sha256: String,
    /// Bytes of content sent and acknowledged: the end of the last complete
    /// record sent (in decompressed bytes for a compressed file).
    pub offset: u64,
    /// Lines in those bytes.
    pub line: u64,
    /// The last block of `#` directive lines that contains a `#Fields:` or
    /// `#fields` line, sent before each batch as context for the parser.
    #[serde(default)]
    pub header: Vec<String>,
    /// Format detected in the first batch, named in the later ones.
    pub format: Option<String>,
    /// A batch sent and not acknowledged, resent as it was after a restart.
    pub pending: Option<PendingBatch>,
    /// The content is gzip or zstd.
    pub compressed: bool,
    /// Bytes of the file as stored when it was last read whole (compressed files).
    pub stored_size: u64,
    /// Nothing more is expected: a compressed file read to its end, or a
    /// file moved away from the followed paths and idle since.
    pub finished: bool,
    /// Unix time in seconds when the file was last found.
    pub seen_at: i64,
}

/// A batch between its send and its acknowledgement: the bytes from the
/// entry's offset to `end`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct PendingBatch {
    pub end: u64,
    pub end_line: u64,
}

/// One imported object.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct ObjectEntry {
    pub e_tag: Option<String>,
    pub size: u64,
    /// Unix time in seconds when the object was last listed.
    pub seen_at: i64,
}

/// The checkpoint file, locked for this process.
pub(crate) struct CheckpointFile {
    path: PathBuf,
    temporary: PathBuf,
    _lock: File,
    pub data: Checkpoint,
}

impl CheckpointFile {
    /// Locks and reads the checkpoint at `path`; a missing file is an empty checkpoint.
    pub(crate) fn open(path: &Path) -> anyhow::Result<Self> {
        let name = path
            .file_name()
            .with_context(|| format!("the checkpoint path {} has no file name", path.display()))?
            .to_string_lossy()
            .into_owned();
        let dir = match path.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
            _ => PathBuf::from("."),
        };
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("creating the checkpoint directory {}", dir.display()))?;
        let lock_path = dir.join(format!(".{name}.lock"));
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .with_context(|| format!("opening {}", lock_path.display()))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => bail!(
                "another `apitrail import --follow` uses the checkpoint {}; give each follower its own with --checkpoint",
                path.display()
            ),
            Err(std::fs::TryLockError::Error(e)) => {
                return Err(e).with_context(|| format!("locking {}", lock_path.display()));
            }
        }
        let data = match std::fs::read(path) {
            Ok(bytes) => {
                let data: Checkpoint = serde_json::from_slice(&bytes).with_context(|| {
                    format!(
                        "the checkpoint {} is not valid JSON; move it away to start over from the beginning of every file",
                        path.display()
                    )
                })?;
                if data.version != FORMAT_VERSION {
                    bail!(
                        "the checkpoint {} has format version {}, this build reads version {FORMAT_VERSION}",
                        path.display(),
                        data.version
                    );
                }
                data
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Checkpoint {
                version: FORMAT_VERSION,
                ..Checkpoint::default()
            },
            Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
        };
        Ok(CheckpointFile {
            path: path.to_path_buf(),
            temporary: dir.join(format!(".{name}.tmp")),
            _lock: lock,
            data,
        })
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Replaces the file with the current content, durably.
    pub(crate) fn save(&self) -> anyhow::Result<()> {
        let bytes = serde_json::to_vec_pretty(&self.data).expect("checkpoints serialise");
        let write = || -> std::io::Result<()> {
            let mut file = File::create(&self.temporary)?;
            file.write_all(&bytes)?;
            file.sync_all()?;
            std::fs::rename(&self.temporary, &self.path)?;
            if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
                File::open(dir)?.sync_all()?;
            }
            Ok(())
        };
        write().with_context(|| format!("writing the checkpoint {}", self.path.display()))
    }

    /// Drops files and objects not found since `cutoff` (Unix seconds), except `keep`.
    pub(crate) fn prune(&mut self, cutoff: i64, keep: &dyn Fn(&str) -> bool) -> bool {
        let before = self.data.files.len() + self.data.objects.len();
        self.data
            .files
            .retain(|key, entry| entry.seen_at >= cutoff || keep(key));
        self.data
            .objects
            .retain(|_, object| object.seen_at >= cutoff);
        before != self.data.files.len() + self.data.objects.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(key: &str) -> FileEntry {
        FileEntry {
            key: key.to_string(),
            path: PathBuf::from("/var/log/a.log"),
            device: 1,
            inode: 2,
            head_len: 3,
            head_sha256: "00".to_string(),
            offset: 10,
            line: 2,
            header: vec!["#Fields: date".to_string()],
            format: Some("clf".to_string()),
            pending: Some(PendingBatch {
                end: 20,
                end_line: 4,
            }),
            compressed: false,
            stored_size: 0,
            finished: false,
            seen_at: 100,
        }
    }

    #[test]
    fn save_and_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state/follow.json");
        {
            let mut checkpoint = CheckpointFile::open(&path).unwrap();
            checkpoint.data.files.insert("k1".to_string(), entry("k1"));
            checkpoint.save().unwrap();
        }
        let checkpoint = CheckpointFile::open(&path).unwrap();
        let reopened = &checkpoint.data.files["k1"];
        assert_eq!(reopened.offset, 10);
        assert_eq!(
            reopened.pending,
            Some(PendingBatch {
                end: 20,
                end_line: 4
            })
        );
        assert_eq!(reopened.header, vec!["#Fields: date".to_string()]);
        assert!(
            !dir.path().join("state/.follow.json.tmp").exists(),
            "the temporary file is renamed away"
        );
    }

    #[test]
    fn second_follower_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("follow.json");
        let _first = CheckpointFile::open(&path).unwrap();
        let error = CheckpointFile::open(&path).err().expect("the lock is held");
        assert!(error.to_string().contains("--checkpoint"), "{error}");
    }

    #[test]
    fn prune_keeps_recent_and_kept_entries() {
        let dir = tempfile::tempdir().unwrap();
        let mut checkpoint = CheckpointFile::open(&dir.path().join("c.json")).unwrap();
        for (key, seen_at) in [("old", 10), ("kept", 10), ("new", 500)] {
            let mut e = entry(key);
            e.seen_at = seen_at;
            checkpoint.data.files.insert(key.to_string(), e);
        }
        assert!(checkpoint.prune(100, &|key| key == "kept"));
        let keys: Vec<&String> = checkpoint.data.files.keys().collect();
        assert_eq!(keys, vec!["kept", "new"]);
    }
}
