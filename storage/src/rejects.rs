//! The rejects file: every input line that could not be parsed, kept for inspection.
//!
//! `<data-dir>/rejects/rejects-YYYY-MM-DD.jsonl` (by the UTC day of ingest),
//! one JSON object per line with `received_at`, `source` (the file name or
//! the HTTP peer), `format`, `line`, `reason` and `text`. The text is scrubbed
//! of secrets by the parser before it gets here. Lines are written and
//! fsynced before the response to the ingest that produced them.

use std::io::Write;
use std::path::{Path, PathBuf};

use apitrail_ingest::RejectedLine;
use serde::Serialize;

use crate::error::{Result, StorageError};

#[derive(Serialize)]
struct RejectRecord<'a> {
    received_at: String,
    source: &'a str,
    format: &'a str,
    line: u64,
    reason: &'a str,
    text: &'a str,
}

/// Appends rejected lines under a data directory.
#[derive(Debug, Clone)]
pub struct RejectsFile {
    dir: PathBuf,
}

impl RejectsFile {
    pub fn new(data_dir: &Path) -> Self {
        RejectsFile {
            dir: data_dir.join("rejects"),
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Appends `lines` and fsyncs the file.
    pub fn append(&self, source: &str, format: &str, lines: &[RejectedLine]) -> Result<()> {
        if lines.is_empty() {
            return Ok(());
        }
        std::fs::create_dir_all(&self.dir)
            .map_err(|e| StorageError::io("creating rejects directory", &self.dir, e))?;
        let now = chrono::Utc::now();
        let path = self
            .dir
            .join(format!("rejects-{}.jsonl", now.format("%Y-%m-%d")));
        let received_at = now.to_rfc3339_opts(chrono::SecondsFormat::Micros, true);

        let mut out = Vec::new();
        for rejected in lines {
            let record = RejectRecord {
                received_at: received_at.clone(),
                source,
                format,
                line: rejected.line,
                reason: &rejected.reason,
                text: &rejected.text,
            };
            serde_json::to_writer(&mut out, &record).expect("serialising to a Vec cannot fail");
            out.push(b'\n');
        }

        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(|e| StorageError::io("opening rejects file", &path, e))?;
        file.write_all(&out)
            .and_then(|()| file.sync_data())
            .map_err(|e| StorageError::io("writing rejects file", &path, e))?;
        Ok(())
    }
}
