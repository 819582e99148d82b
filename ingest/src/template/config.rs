//! Settings of the learning templater and the errors it returns.

use serde::{Deserialize, Serialize};

/// Settings of a [`Templater`](super::Templater).
///
/// The defaults suit a store that receives the traffic of up to a few hundred API hosts.
/// `docs/inventory.md` explains each setting for operators.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TemplaterConfig {
    /// Minimum number of distinct literal values a position must receive
    /// before it turns into a parameter. It is also the maximum number of
    /// value hashes kept per position.
    ///
    /// The default of 50 is above the few dozen resource names that sit side by
    /// side at one position of most APIs (`/v1/users`, `/v1/orders`, ...), so
    /// those stay apart. Slug and name positions pass 50 values within minutes
    /// of real traffic.
    pub min_distinct_values: usize,
    /// Minimum number of distinct consumers that must have sent those values,
    /// and the maximum number of consumer hashes kept per position.
    ///
    /// The default of 2 stops one crawler, scanner or sync job that walks a
    /// list from turning a position into a parameter on its own.
    pub min_distinct_consumers: usize,
    /// Share of the calls at a position, from 0 to 1, that a literal value must
    /// have received when the position becomes a parameter to keep its own
    /// endpoint. A kept literal returns to the parameter when its share falls
    /// below half of this.
    ///
    /// The default of 0.1 is five times the share of an average value at
    /// the moment of learning (at most 1/50), so only values that stand out,
    /// such as `me` in `/v1/users/me`, stay literal.
    pub min_literal_share: f64,
    /// Templates that always apply to the paths they match, such as
    /// `/v1/files/{name}`. An entry that starts with a host name
    /// (`api.example.com/v1/files/{name}`) applies to that host only.
    pub pinned: Vec<String>,
    /// Path prefixes whose segments never turn into a parameter, such as
    /// `/v1/refunds`. A `*` segment matches any segment at that position, so
    /// `/v1/*` stops the position after `/v1` from being learned. An entry that
    /// starts with a host name applies to that host only.
    pub split: Vec<String>,
    /// Maximum number of hosts with a learned state. Paths of further hosts
    /// are templated by the fixed rules alone, apart from pinned templates.
    pub max_hosts: usize,
    /// Maximum number of path positions tracked per host. Past it, new paths
    /// of the host are templated by the fixed rules from the first untracked
    /// position on.
    pub max_nodes_per_host: usize,
}

impl Default for TemplaterConfig {
    fn default() -> Self {
        TemplaterConfig {
            min_distinct_values: 50,
            min_distinct_consumers: 2,
            min_literal_share: 0.1,
            pinned: Vec::new(),
            split: Vec::new(),
            max_hosts: 256,
            max_nodes_per_host: 4096,
        }
    }
}

/// Upper bound of `min_distinct_values`, because each tracked position keeps that many hashes.
pub(super) const MAX_MIN_DISTINCT_VALUES: usize = 1024;

/// Upper bound of `min_distinct_consumers`, because each tracked position keeps that many hashes.
pub(super) const MAX_MIN_DISTINCT_CONSUMERS: usize = 64;

impl TemplaterConfig {
    /// Checks the numeric settings. Pins and splits are checked when they are compiled.
    pub(super) fn validate_numbers(&self) -> Result<(), TemplaterError> {
        if !(2..=MAX_MIN_DISTINCT_VALUES).contains(&self.min_distinct_values) {
            return Err(TemplaterError::InvalidConfig {
                setting: "min_distinct_values",
                reason: format!(
                    "{} is outside 2 to {MAX_MIN_DISTINCT_VALUES}: one value cannot show that a \
                     position varies, and each position keeps this many hashes",
                    self.min_distinct_values
                ),
            });
        }
        if !(1..=MAX_MIN_DISTINCT_CONSUMERS).contains(&self.min_distinct_consumers) {
            return Err(TemplaterError::InvalidConfig {
                setting: "min_distinct_consumers",
                reason: format!(
                    "{} is outside 1 to {MAX_MIN_DISTINCT_CONSUMERS}",
                    self.min_distinct_consumers
                ),
            });
        }
        let share = self.min_literal_share;
        if !(share.is_finite() && share > 0.0 && share <= 1.0) {
            return Err(TemplaterError::InvalidConfig {
                setting: "min_literal_share",
                reason: format!(
                    "{share} is not a share above 0 and at most 1; use 0.1 to keep literals \
                     that receive a tenth of the calls at their position"
                ),
            });
        }
        Ok(())
    }
}

/// Errors of the learning templater.
#[derive(Debug, thiserror::Error)]
pub enum TemplaterError {
    /// A numeric setting is out of range.
    #[error("invalid templater setting {setting}: {reason}")]
    InvalidConfig {
        setting: &'static str,
        reason: String,
    },
    /// A pinned, split or documented template cannot be parsed.
    #[error("invalid {kind} template {template:?}: {reason}")]
    InvalidTemplate {
        /// `pinned`, `split` or `documented`.
        kind: &'static str,
        template: String,
        reason: String,
    },
    /// Saved state is not valid JSON or does not have the expected fields.
    #[error("invalid templater state: {0}; load a file written by Templater::to_json")]
    InvalidState(String),
    /// Saved state was written in a format this build does not read.
    #[error(
        "templater state has format version {found}, but this build reads only version \
         {supported}; discard the state to relearn from new traffic, or load it with the \
         apitrail release that wrote it"
    )]
    UnsupportedVersion { found: u64, supported: u32 },
}
