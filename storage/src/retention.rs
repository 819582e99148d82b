//! Retention: whole days of events, and hour buckets of the views, dropped after a period.
//!
//! The rule for events, with `cutoff = now - retention_days` by the store's
//! clock: a `day` partition is removed only once the whole day is older than
//! the cutoff, that is when the day ends at or before the cutoff. The first
//! day kept is therefore the UTC date of the cutoff, and a 7-day retention
//! always keeps at least 7 full days. For example, with now at
//! 2026-03-08T00:00:00Z and 7 days, the cutoff is 2026-03-01T00:00:00Z:
//! 2026-02-28 goes and 2026-03-01 stays. A day that straddles the cutoff stays.
//!
//! Removal is one Delta `DELETE` commit of `remove` actions, with
//! `dataChange=true`, for every file of the expired days. Vacuum deletes the
//! files after the grace period. Ingest applies the same rule to arriving
//! events ([`Store::drop_expired_events`]): an event of an expired day is
//! reported as skipped instead of being stored and removed later.
//!
//! The views keep their own, longer period: hour rows whose `bucket` falls
//! on a day before the views' first kept day are dropped when the views
//! table is rewritten. The `all` grain rows (endpoint and consumer totals)
//! have no bucket and stay.

use std::time::Instant;

use arrow::array::{AsArray, Date32Array};
use arrow::compute::filter_record_batch;
use arrow::compute::kernels::cmp::gt_eq;
use arrow::datatypes::Date32Type;
use arrow::record_batch::RecordBatch;
use chrono::{DateTime, NaiveDate, Utc};
use deltalake::kernel::Transaction;
use deltalake::protocol::DeltaOperation;

use crate::compaction::files_by_day;
use crate::error::{Result, StorageError};
use crate::lifecycle::LIFECYCLE_APP_ID;
use crate::store::Store;
use crate::table::{AppendTable, PARTITION_COLUMN};

/// Reason recorded in an ingest report for an event of a day retention has removed.
pub const EXPIRED_REASON: &str = "older_than_retention";

/// Computes the first day a retention of `retention_days` keeps at `now`, which is the UTC date of the cutoff.
pub fn first_kept_day(now: DateTime<Utc>, retention_days: u32) -> NaiveDate {
    (now - chrono::Duration::days(i64::from(retention_days))).date_naive()
}

/// Days since the Unix epoch of `day`, as in a `Date32` column.
fn epoch_days(day: NaiveDate) -> i32 {
    (day - NaiveDate::default()).num_days() as i32
}

/// Microseconds since the epoch at the start of `day`, as in the views' `bucket`.
pub(crate) fn day_start_micros(day: NaiveDate) -> i64 {
    day.and_time(chrono::NaiveTime::MIN)
        .and_utc()
        .timestamp_micros()
}

/// Counts of one retention run on the events table.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RetentionOutcome {
    /// Expired days whose files were removed.
    pub days: Vec<NaiveDate>,
    pub files: usize,
    pub bytes: u64,
    pub table_version: Option<u64>,
}

impl Store {
    /// Returns the first day of events that retention keeps now; `None` keeps every day.
    pub fn events_first_kept_day(&self) -> Option<NaiveDate> {
        let config = self.config();
        let now = config.clock.now();
        config
            .lifecycle
            .retention_days
            .map(|days| first_kept_day(now, days))
    }

    /// Returns the first day of view hour buckets that retention keeps now; `None` keeps every bucket.
    pub fn views_first_kept_day(&self) -> Option<NaiveDate> {
        let config = self.config();
        let now = config.clock.now();
        config
            .lifecycle
            .views_retention_days
            .map(|days| first_kept_day(now, days))
    }

    /// Splits off the events of days that retention has removed; returns the
    /// rows to store and the number dropped.
    ///
    /// Ingest reports the dropped rows as skipped with [`EXPIRED_REASON`].
    pub fn drop_expired_events(&self, batch: RecordBatch) -> Result<(RecordBatch, usize)> {
        let Some(first_kept) = self.events_first_kept_day() else {
            return Ok((batch, 0));
        };
        drop_days_before(batch, first_kept)
    }

    /// Removes every file of the days that retention no longer keeps, in one commit.
    pub async fn expire_events(&self) -> Result<RetentionOutcome> {
        let table = self.events_table().filter(|_| self.is_writable());
        let (Some(first_kept), Some(table)) = (self.events_first_kept_day(), table) else {
            return Ok(RetentionOutcome::default());
        };
        self.remove_days_before(table, first_kept).await
    }

    /// Removes the files of `table`'s loaded version on days before `first_kept`.
    async fn remove_days_before(
        &self,
        mut table: AppendTable,
        first_kept: NaiveDate,
    ) -> Result<RetentionOutcome> {
        let mut outcome = RetentionOutcome::default();
        let started = Instant::now();
        let now_millis = self.config().clock.now().timestamp_millis();
        let mut actions = Vec::new();
        for (day, files) in files_by_day(&table)?.range(..first_kept) {
            outcome.days.push(*day);
            for file in files {
                outcome.files += 1;
                outcome.bytes += file.bytes;
                actions.push(file.remove_action(true, now_millis));
            }
        }
        if actions.is_empty() {
            return Ok(outcome);
        }
        let operation = DeltaOperation::Delete {
            predicate: Some(format!("{PARTITION_COLUMN} < '{first_kept}'")),
        };
        let txn = Transaction::new(LIFECYCLE_APP_ID, now_millis);

        let _guard = self.lock_commits().await;
        let version = table
            .commit_operation(actions, operation, Some(txn))
            .await?;
        self.install_events_table(table).await?;
        outcome.table_version = Some(version);

        metrics::counter!("apitrail_retention_days_removed_total")
            .increment(outcome.days.len() as u64);
        metrics::counter!("apitrail_retention_files_removed_total").increment(outcome.files as u64);
        metrics::counter!("apitrail_retention_bytes_removed_total").increment(outcome.bytes);
        tracing::info!(
            first_kept_day = %first_kept,
            oldest_day = ?outcome.days.first(),
            newest_day = ?outcome.days.last(),
            days = outcome.days.len(),
            files = outcome.files,
            bytes = outcome.bytes,
            table_version = version,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "removed the days of events past retention"
        );
        Ok(outcome)
    }

    /// Rewrites the views table without the hour rows past the views' retention,
    /// if its file statistics show any; returns the new version, if any.
    pub async fn expire_views(&self) -> Result<Option<u64>> {
        let views = self.views_table().filter(|_| self.is_writable());
        let (Some(first_kept), Some(views)) = (self.views_first_kept_day(), views) else {
            return Ok(None);
        };
        if !has_buckets_before(&views, day_start_micros(first_kept))? {
            return Ok(None);
        }
        self.rewrite_views(true).await
    }
}

/// Keeps the rows of `batch` whose `day` is on or after `first_kept`; returns them and the number dropped.
pub(crate) fn drop_days_before(
    batch: RecordBatch,
    first_kept: NaiveDate,
) -> Result<(RecordBatch, usize)> {
    let day = batch
        .column_by_name(PARTITION_COLUMN)
        .and_then(|c| c.as_primitive_opt::<Date32Type>())
        .ok_or_else(|| {
            StorageError::Config(format!(
                "an event batch has no Date32 column {PARTITION_COLUMN}"
            ))
        })?;
    let kept = Date32Array::new_scalar(epoch_days(first_kept));
    let arrow_error = |source| StorageError::Arrow {
        context: "filtering events past retention".to_string(),
        source,
    };
    let mask = gt_eq(day, &kept).map_err(arrow_error)?;
    let keep = mask.true_count();
    if keep == batch.num_rows() {
        return Ok((batch, 0));
    }
    let dropped = batch.num_rows() - keep;
    let filtered = filter_record_batch(&batch, &mask).map_err(arrow_error)?;
    Ok((filtered, dropped))
}

/// Checks the `bucket` minimum of each views file for a value before `first_micros`.
///
/// A file without statistics counts as having one, so retention errs
/// towards a rewrite that drops nothing rather than keeping expired rows.
fn has_buckets_before(views: &AppendTable, first_micros: i64) -> Result<bool> {
    let snapshot = views.delta().snapshot().map_err(|e| StorageError::Table {
        location: views.location().to_string(),
        action: "reading snapshot",
        source: Box::new(e),
    })?;
    for file in snapshot.log_data().iter() {
        let Some(stats) = file.stats() else {
            return Ok(true);
        };
        let min_bucket = serde_json::from_str::<serde_json::Value>(&stats)
            .ok()
            .and_then(|s| s["minValues"]["bucket"].as_str().map(str::to_string));
        match min_bucket {
            // Files of the `all` grain have only null buckets, so no minimum.
            None => {
                let null_count = serde_json::from_str::<serde_json::Value>(&stats)
                    .ok()
                    .and_then(|s| s["nullCount"]["bucket"].as_i64());
                let rows = file.num_records().map(|n| n as i64);
                if null_count.is_none() || null_count != rows {
                    return Ok(true);
                }
            }
            Some(text) => match DateTime::parse_from_rfc3339(&text) {
                Ok(min) if min.timestamp_micros() >= first_micros => {}
                _ => return Ok(true),
            },
        }
    }
    Ok(false)
}

/// Removes `count` skipped rows from an [`apitrail_ingest::IngestReport`]'s
/// accepted count and records them under [`EXPIRED_REASON`].
pub fn report_expired(report: &mut apitrail_ingest::IngestReport, count: usize) {
    if count == 0 {
        return;
    }
    report.accepted = report.accepted.saturating_sub(count as u64);
    report.skipped += count as u64;
    *report
        .skipped_reasons
        .entry(EXPIRED_REASON.to_string())
        .or_default() += count as u64;
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    use arrow::array::Int64Array;
    use arrow::datatypes::{DataType, Field, Schema};

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .expect("valid test time")
            .with_timezone(&Utc)
    }

    fn date(text: &str) -> NaiveDate {
        NaiveDate::parse_from_str(text, "%Y-%m-%d").expect("valid test date")
    }

    #[test]
    fn cutoff_at_midnight_keeps_cutoff_day() {
        let first = first_kept_day(at("2026-03-08T00:00:00Z"), 7);
        assert_eq!(first, date("2026-03-01"));
        assert!(date("2026-02-28") < first);
    }

    #[test]
    fn straddling_day_stays() {
        // The cutoff falls at noon of 2026-03-01: half of that day is older
        // than the cutoff, but the day is not over before it.
        let first = first_kept_day(at("2026-03-08T12:00:00Z"), 7);
        assert_eq!(first, date("2026-03-01"));
    }

    #[test]
    fn last_instant_before_midnight() {
        let first = first_kept_day(at("2026-03-07T23:59:59.999Z"), 7);
        assert_eq!(first, date("2026-02-28"));
    }

    #[test]
    fn drop_days_before_filters_rows() {
        let schema = Arc::new(Schema::new(vec![
            Field::new("n", DataType::Int64, false),
            Field::new(PARTITION_COLUMN, DataType::Date32, false),
        ]));
        let days = [date("2026-02-27"), date("2026-02-28"), date("2026-03-01")];
        let batch = RecordBatch::try_new(
            schema,
            vec![
                Arc::new(Int64Array::from(vec![1, 2, 3])),
                Arc::new(Date32Array::from(
                    days.iter().map(|d| epoch_days(*d)).collect::<Vec<_>>(),
                )),
            ],
        )
        .expect("valid test batch");
        let (kept, dropped) = drop_days_before(batch, date("2026-03-01")).expect("filter");
        assert_eq!(dropped, 2);
        assert_eq!(kept.num_rows(), 1);
        let n = kept.column(0).as_primitive::<arrow::datatypes::Int64Type>();
        assert_eq!(n.value(0), 3);
    }

    #[test]
    fn epoch_days_of_epoch_is_zero() {
        assert_eq!(epoch_days(date("1970-01-01")), 0);
        assert_eq!(epoch_days(date("1970-01-02")), 1);
        assert_eq!(day_start_micros(date("1970-01-02")), 86_400_000_000);
    }

    fn events(day: &str, count: i64) -> RecordBatch {
        let start = micros_at(&format!("{day}T00:00:00Z"));
        let mut builder = apitrail_ingest::EventBatchBuilder::new();
        for i in 0..count {
            builder.push(&apitrail_ingest::Event::new("clf", start + i * 60_000_000));
        }
        builder.finish()
    }

    fn micros_at(text: &str) -> i64 {
        at(text).timestamp_micros()
    }

    async fn flush(store: &Arc<Store>, batch: RecordBatch) {
        store.append(batch).await.expect("append");
        store.flush().await.expect("flush");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn removal_commits_over_concurrent_append() {
        let dir = tempfile::tempdir().expect("temp dir");
        let clock = crate::clock::ManualClock::new(at("2026-03-08T00:00:00Z"));
        let config = crate::StoreConfig {
            lifecycle: crate::LifecycleConfig {
                retention_days: Some(7),
                ..crate::LifecycleConfig::default()
            },
            clock: Arc::clone(&clock) as Arc<dyn crate::clock::Clock>,
            ..crate::StoreConfig::for_data_dir(dir.path().to_path_buf()).expect("test config")
        };
        let store = Store::open(config).await.expect("open store");
        flush(&store, events("2026-02-20", 4)).await;
        let planned = store.events_table().expect("events table");
        // Another commit lands between the version retention read and its commit.
        flush(&store, events("2026-03-05", 3)).await;

        let outcome = store
            .remove_days_before(planned, date("2026-03-01"))
            .await
            .expect("a blind append to a kept day does not conflict");

        assert_eq!(outcome.days, vec![date("2026-02-20")]);
        let table = store.events_table().expect("events table");
        let rows: usize = table
            .read_all()
            .await
            .expect("read")
            .iter()
            .map(RecordBatch::num_rows)
            .sum();
        assert_eq!(rows, 3, "the appended day stays, the expired one is gone");
    }

    #[test]
    fn report_expired_moves_accepted_to_skipped() {
        let mut report = apitrail_ingest::IngestReport {
            accepted: 5,
            ..Default::default()
        };
        report_expired(&mut report, 2);
        assert_eq!(report.accepted, 3);
        assert_eq!(report.skipped, 2);
        assert_eq!(report.skipped_reasons.get(EXPIRED_REASON), Some(&2));
    }
}
