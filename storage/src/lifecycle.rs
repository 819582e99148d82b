//! The life cycle of the store's tables: retention, compaction and vacuum, run in the background.
//!
//! A maintenance task runs [`Store::maintain`] every
//! [`LifecycleConfig::interval`], in this order:
//!
//! 1. retention removes the events of expired days ([`crate::retention`]);
//! 2. compaction merges small files of closed days ([`crate::compaction`]);
//! 3. the views table is rewritten without hour rows past the views'
//!    retention, if it contains any;
//! 4. vacuum deletes, from both tables, the files that a commit removed
//!    more than [`LifecycleConfig::grace_period`] ago. Once per grace period
//!    it also lists the tables and deletes the Parquet files that no commit
//!    names and that are older than the grace period. A crash between
//!    writing and committing leaves such orphans, and so does a compaction
//!    whose commit failed.
//!
//! The grace period protects readers: a query plans on one table version
//! and reads its files afterwards, so a file removed by a later commit must
//! stay until every query planned before that commit has finished. A query
//! that runs longer than the grace period can fail with a missing file.
//! Vacuum is Delta's own `VacuumBuilder`, with the grace period as its
//! retention and the store's [`crate::clock::Clock`] as its time source.
//!
//! Every compaction and retention commit carries the application
//! transaction [`LIFECYCLE_APP_ID`], so two writers running them on one
//! table at once conflict instead of both rewriting the same files. They
//! leave the WAL transactions `(app_id, lsn)` in place: those are read from
//! the last commit that set them.

use std::sync::Arc;
use std::time::{Duration, Instant};

use deltalake::operations::vacuum::VacuumMode;

use crate::clock::VacuumClock;
use crate::error::{Result, StorageError};
use crate::store::Store;
use crate::table::AppendTable;

/// Application id of the commits that compaction and retention make.
pub const LIFECYCLE_APP_ID: &str = "apitrail-lifecycle";

/// Settings of compaction, retention and vacuum.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LifecycleConfig {
    /// Size in bytes that compaction writes data files up to. Files smaller
    /// than half of it count as small.
    pub compaction_target_bytes: u64,
    /// Small files a closed day needs before it is compacted.
    pub compaction_min_files: usize,
    /// Time a removed or orphaned data file stays on the object store before vacuum deletes it.
    pub grace_period: Duration,
    /// Days of events kept (see [`crate::retention`]); `None` keeps every day.
    pub retention_days: Option<u32>,
    /// Days of view hour buckets kept; `None` keeps every bucket. At least `retention_days`.
    pub views_retention_days: Option<u32>,
    /// Time between two maintenance runs.
    pub interval: Duration,
}

impl Default for LifecycleConfig {
    fn default() -> Self {
        LifecycleConfig {
            compaction_target_bytes: 128 * 1024 * 1024,
            compaction_min_files: 10,
            grace_period: Duration::from_secs(3600),
            retention_days: None,
            views_retention_days: None,
            interval: Duration::from_secs(300),
        }
    }
}

impl LifecycleConfig {
    /// Checks that the settings can work together; the error names the setting and the fix.
    pub fn validate(&self) -> Result<()> {
        let invalid = |message: String| Err(StorageError::Config(message));
        if self.compaction_target_bytes < 1024 * 1024 {
            return invalid(format!(
                "the compaction target size is {} bytes; it must be at least 1 MiB (1048576)",
                self.compaction_target_bytes
            ));
        }
        if self.compaction_min_files < 2 {
            return invalid(format!(
                "compaction needs at least 2 small files to merge, not {}",
                self.compaction_min_files
            ));
        }
        if self.interval.is_zero() {
            return invalid("the maintenance interval must be longer than zero".to_string());
        }
        if self.retention_days == Some(0) {
            return invalid(
                "a retention of 0 days would remove every closed day; set at least 1, or leave it unset to keep events forever".to_string(),
            );
        }
        match (self.retention_days, self.views_retention_days) {
            (_, None) => Ok(()),
            (None, Some(views)) => invalid(format!(
                "the views retention ({views} days) is shorter than the events retention (unset, so forever); the views must outlive the events, so set a longer views retention or none"
            )),
            (Some(events), Some(views)) if views < events => invalid(format!(
                "the views retention ({views} days) is shorter than the events retention ({events} days); set it to at least {events} days, or leave it unset to keep the views forever"
            )),
            _ => Ok(()),
        }
    }
}

/// Counts of one maintenance run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MaintenanceOutcome {
    pub retention: crate::retention::RetentionOutcome,
    pub compaction: crate::compaction::CompactionOutcome,
    /// The views table version written by the views' retention, if it rewrote the table.
    pub views_version: Option<u64>,
    /// Data files vacuum deleted from the events table.
    pub events_files_deleted: usize,
    /// Data files vacuum deleted from the views table.
    pub views_files_deleted: usize,
}

impl Store {
    /// Runs retention, compaction, the views' retention and vacuum once.
    /// A store opened read-only changes nothing.
    ///
    /// A failing step is logged and counted, and the later steps still run;
    /// the first error is returned after all of them.
    pub async fn maintain(&self) -> Result<MaintenanceOutcome> {
        self.run_maintenance(true).await
    }

    /// Runs the steps of [`Store::maintain`]; `scan_orphans` lets vacuum
    /// list the tables' files to find orphans, besides reading the log.
    async fn run_maintenance(&self, scan_orphans: bool) -> Result<MaintenanceOutcome> {
        let started = Instant::now();
        let mut outcome = MaintenanceOutcome::default();
        let mut first_error = None;
        let mut failed = |step: &'static str, e: StorageError| {
            metrics::counter!("apitrail_lifecycle_errors_total", "step" => step).increment(1);
            tracing::warn!(step, error = %e, error_source = ?std::error::Error::source(&e), "a life cycle step failed; the next run tries again");
            first_error.get_or_insert(e);
        };

        match self.expire_events().await {
            Ok(retention) => outcome.retention = retention,
            Err(e) => failed("retention", e),
        }
        match self.compact_events().await {
            Ok(compaction) => outcome.compaction = compaction,
            Err(e) => failed("compaction", e),
        }
        match self.expire_views().await {
            Ok(version) => outcome.views_version = version,
            Err(e) => failed("views_retention", e),
        }
        if let Some(table) = self.events_table() {
            match self.vacuum(table, true, scan_orphans).await {
                Ok(deleted) => outcome.events_files_deleted = deleted,
                Err(e) => failed("vacuum", e),
            }
        }
        if let Some(views) = self.views_table() {
            match self.vacuum(views, false, scan_orphans).await {
                Ok(deleted) => outcome.views_files_deleted = deleted,
                Err(e) => failed("vacuum", e),
            }
        }

        metrics::histogram!("apitrail_lifecycle_duration_seconds")
            .record(started.elapsed().as_secs_f64());
        tracing::debug!(
            days_removed = outcome.retention.days.len(),
            partitions_compacted = outcome.compaction.partitions,
            events_files_deleted = outcome.events_files_deleted,
            views_files_deleted = outcome.views_files_deleted,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "maintenance run finished"
        );
        match first_error {
            Some(e) => Err(e),
            None => Ok(outcome),
        }
    }

    /// Deletes the events files removed or orphaned more than the grace period ago; returns how many.
    pub async fn vacuum_events(&self) -> Result<usize> {
        let Some(table) = self.events_table() else {
            return Ok(0);
        };
        self.vacuum(table, true, true).await
    }

    /// Deletes the views files removed or orphaned more than the grace period ago; returns how many.
    pub async fn vacuum_views(&self) -> Result<usize> {
        let Some(views) = self.views_table() else {
            return Ok(0);
        };
        self.vacuum(views, false, true).await
    }

    /// Vacuums `table`, the events table when `events` is set; `scan_orphans`
    /// also lists its files for orphans, which costs one listing of the table.
    async fn vacuum(
        &self,
        mut table: AppendTable,
        events: bool,
        scan_orphans: bool,
    ) -> Result<usize> {
        if !self.is_writable() {
            return Ok(0);
        }
        let started = Instant::now();
        let grace = chrono::Duration::from_std(self.config().lifecycle.grace_period)
            .map_err(|e| StorageError::Config(format!("the grace period is too long: {e}")))?;
        // An import writes its files before it commits them, outside the
        // flush lock, so while one runs its files look like orphans.
        // NOTE: only imports of this process are seen. Another writer sharing
        // the table whose write takes longer than the grace period loses its
        // uncommitted files to the orphan check.
        let mode = if scan_orphans && self.imports_in_progress() == 0 {
            VacuumMode::Full
        } else {
            VacuumMode::Lite
        };
        let clock = Arc::new(VacuumClock(Arc::clone(&self.config().clock)));

        // Vacuum runs without the flush lock, since listing a large table
        // can take long. Its two commits (start and end) carry no file
        // actions, so a flush committing at the same time does not conflict.
        table.refresh().await?;
        let name = table.spec().name;
        let vacuum_error = |e| StorageError::Table {
            location: table.location().to_string(),
            action: "vacuuming",
            source: Box::new(e),
        };
        // A removed file stays in the log as a tombstone until Delta expires
        // it, so vacuum plans it again on every run once it is deleted. A
        // dry run first: when every candidate is a file this process has
        // deleted already, nothing is left to do, and the run commits nothing.
        let vacuum = |dry_run: bool| {
            table
                .delta()
                .clone()
                .vacuum()
                .with_retention_period(grace)
                .with_enforce_retention_duration(false)
                .with_mode(mode.clone())
                .with_clock(Arc::clone(&clock) as _)
                .with_dry_run(dry_run)
        };
        let (_, planned) = vacuum(true).await.map_err(vacuum_error)?;
        {
            let mut vacuumed = self.vacuumed.lock().expect("vacuumed paths lock poisoned");
            let done = vacuumed.entry(name).or_default();
            // Paths no longer planned have left the log, so the set stays
            // as small as the table's tombstones.
            done.retain(|path| planned.files_deleted.contains(path));
            if planned.files_deleted.iter().all(|path| done.contains(path)) {
                return Ok(0);
            }
        }
        let (_, metrics) = vacuum(false).await.map_err(vacuum_error)?;
        let deleted = {
            let mut vacuumed = self.vacuumed.lock().expect("vacuumed paths lock poisoned");
            let done = vacuumed.entry(name).or_default();
            metrics
                .files_deleted
                .iter()
                .filter(|path| done.insert((*path).clone()))
                .count()
        };
        if deleted == 0 {
            return Ok(0);
        }
        let _guard = self.lock_commits().await;
        table.refresh().await?;
        if events {
            self.install_events_table(table).await?;
        } else {
            self.install_views_table(table);
        }
        metrics::counter!("apitrail_vacuum_files_deleted_total", "table" => name)
            .increment(deleted as u64);
        tracing::info!(
            table = name,
            files_deleted = deleted,
            orphans_checked = mode == VacuumMode::Full,
            grace_period_secs = self.config().lifecycle.grace_period.as_secs(),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "vacuumed removed files"
        );
        Ok(deleted)
    }

    /// Runs [`Store::maintain`] every [`LifecycleConfig::interval`] until the returned task is aborted.
    ///
    /// A store opened read-only runs nothing.
    pub fn spawn_maintenance(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        let store = Arc::clone(self);
        tokio::spawn(async move {
            if !store.is_writable() {
                return;
            }
            let lifecycle = &store.config().lifecycle;
            let (interval, grace) = (lifecycle.interval, lifecycle.grace_period);
            // Orphans only become old enough once per grace period, so the
            // listing of the tables for them runs at most that often.
            let mut last_orphan_scan: Option<Instant> = None;
            loop {
                tokio::time::sleep(interval).await;
                let scan_orphans = last_orphan_scan.is_none_or(|at| at.elapsed() >= grace);
                if scan_orphans {
                    last_orphan_scan = Some(Instant::now());
                }
                // Each run is its own task, so aborting the loop never cuts a
                // commit and its table swap apart.
                let run = Arc::clone(&store);
                let _ = tokio::spawn(async move { run.run_maintenance(scan_orphans).await }).await;
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_config_is_valid() {
        assert!(LifecycleConfig::default().validate().is_ok());
    }

    #[test]
    fn views_retention_shorter_than_events_rejected() {
        let config = LifecycleConfig {
            retention_days: Some(30),
            views_retention_days: Some(7),
            ..LifecycleConfig::default()
        };
        let message = config.validate().expect_err("rejected").to_string();
        assert!(message.contains("at least 30 days"), "{message}");
    }

    #[test]
    fn views_retention_without_events_retention_rejected() {
        let config = LifecycleConfig {
            views_retention_days: Some(400),
            ..LifecycleConfig::default()
        };
        assert!(config.validate().is_err());
    }

    #[test]
    fn views_retention_equal_or_longer_accepted() {
        for views in [Some(30), Some(365), None] {
            let config = LifecycleConfig {
                retention_days: Some(30),
                views_retention_days: views,
                ..LifecycleConfig::default()
            };
            assert!(config.validate().is_ok(), "views {views:?}");
        }
    }

    #[test]
    fn zero_retention_rejected() {
        let config = LifecycleConfig {
            retention_days: Some(0),
            ..LifecycleConfig::default()
        };
        assert!(config.validate().is_err());
    }

    #[test]
    fn tiny_target_size_rejected() {
        let config = LifecycleConfig {
            compaction_target_bytes: 1000,
            ..LifecycleConfig::default()
        };
        assert!(config.validate().is_err());
    }
}
