//! The outcome an ingest returns to its caller: counts, the first errors, and the lines it rejected.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Number of line errors an [`IngestReport`] lists; the rest are only counted.
pub const MAX_REPORTED_ERRORS: usize = 100;

/// A line that could not be turned into an event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LineError {
    /// 1-based line number in the caller's input.
    pub line: u64,
    pub reason: String,
}

/// Outcome of ingesting one body or file.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct IngestReport {
    /// Format the input was parsed as (given or detected).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub format: Option<String>,
    pub accepted: u64,
    pub rejected: u64,
    pub skipped: u64,
    /// Skipped lines per reason, such as `"nlb_tls_record"`.
    #[serde(default)]
    pub skipped_reasons: BTreeMap<String, u64>,
    /// Total number of errors, of which `errors` lists the first [`MAX_REPORTED_ERRORS`].
    pub error_count: u64,
    pub errors: Vec<LineError>,
}

impl IngestReport {
    pub fn record_error(&mut self, line: u64, reason: impl Into<String>) {
        self.error_count += 1;
        if self.errors.len() < MAX_REPORTED_ERRORS {
            self.errors.push(LineError {
                line,
                reason: reason.into(),
            });
        }
    }

    pub fn record_skip(&mut self, reason: &str) {
        self.skipped += 1;
        *self.skipped_reasons.entry(reason.to_string()).or_default() += 1;
    }

    /// Adds the counts and errors of a later part of the same input.
    pub fn merge(&mut self, other: IngestReport) {
        if self.format.is_none() {
            self.format = other.format;
        }
        self.accepted += other.accepted;
        self.rejected += other.rejected;
        self.skipped += other.skipped;
        for (reason, count) in other.skipped_reasons {
            *self.skipped_reasons.entry(reason).or_default() += count;
        }
        self.error_count += other.error_count;
        let room = MAX_REPORTED_ERRORS.saturating_sub(self.errors.len());
        self.errors.extend(other.errors.into_iter().take(room));
    }
}

/// A rejected input line, already scrubbed of secrets, as kept in the rejects file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RejectedLine {
    pub line: u64,
    pub reason: String,
    pub text: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_caps_listed_errors() {
        let mut first = IngestReport::default();
        for line in 0..80 {
            first.record_error(line, "bad");
        }
        let mut second = IngestReport::default();
        for line in 80..160 {
            second.record_error(line, "bad");
        }
        first.merge(second);
        assert_eq!(first.error_count, 160);
        assert_eq!(first.errors.len(), MAX_REPORTED_ERRORS);
        assert_eq!(first.errors.last().map(|e| e.line), Some(99));
    }
}
