//! Loading other writers' commits into a store's table snapshots.
//!
//! Several nodes can share one store, each with its own data directory and
//! application id. A node's snapshots advance by themselves only when that
//! node commits, so without a refresh a query node would never see what an
//! ingest node flushed. [`Store::refresh_tables`] reloads both tables to
//! their latest versions, and [`Store::spawn_refresher`] does so on a timer.
//!
//! A refresh runs under the flush lock, so it never lands between a flush's
//! commit and the swap that drops the committed rows from the write buffer;
//! a query therefore still sees each row once. If the reloaded table holds a
//! commit of this node's own application id above the LSN in memory (a flush
//! that was applied although the object store reported an error), the
//! buffer and the pending partials release those records, as a flush would.

use std::sync::Arc;
use std::time::Duration;

use super::{Store, committed_lsn};
use crate::error::Result;
use crate::table::AppendTable;

/// Versions of the two tables after a refresh.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RefreshOutcome {
    pub table_version: Option<u64>,
    pub views_version: Option<u64>,
}

impl Store {
    /// Reloads the events and views tables to their latest committed versions.
    ///
    /// A store opened read-only that found no table keeps none.
    /// NOTE: such a store does not look for a table created later; it has
    /// to be opened again.
    pub async fn refresh_tables(&self) -> Result<RefreshOutcome> {
        let _guard = self.flush_lock.lock().await;
        let (table, views) = {
            let state = self.state.read().expect("store state lock poisoned");
            (state.table.clone(), state.views.clone())
        };
        let table = self.reload(table).await?;
        let views = self.reload(views).await?;

        let mut state = self.state.write().expect("store state lock poisoned");
        let mut outcome = RefreshOutcome::default();
        if let Some((table, committed)) = table {
            outcome.table_version = table.version();
            if committed > state.committed_lsn {
                state.committed_lsn = committed;
                state.buffer.release_through(committed);
            }
            state.table = Some(table);
        }
        if let Some((views, committed)) = views {
            outcome.views_version = views.version();
            if committed > state.views_lsn {
                state.views_lsn = committed;
                state.pending = state.pending.split_off(&(committed + 1));
            }
            state.views = Some(views);
        }
        Ok(outcome)
    }

    /// Refreshes a copy of `table`; returns it with this node's committed LSN in it.
    ///
    /// The LSN is read only when the version moved, since reading an
    /// application transaction can replay the table's log.
    async fn reload(&self, table: Option<AppendTable>) -> Result<Option<(AppendTable, u64)>> {
        let Some(mut table) = table else {
            return Ok(None);
        };
        let before = table.version();
        table.refresh().await?;
        let committed = if self.app_id.is_empty() || table.version() == before {
            0
        } else {
            committed_lsn(&table, &self.app_id).await?
        };
        Ok(Some((table, committed)))
    }

    /// Runs [`Store::refresh_tables`] every `interval` until the returned task is aborted.
    pub fn spawn_refresher(self: &Arc<Self>, interval: Duration) -> tokio::task::JoinHandle<()> {
        let store = Arc::clone(self);
        tokio::spawn(async move {
            let mut failing = false;
            loop {
                tokio::time::sleep(interval).await;
                match store.refresh_tables().await {
                    Ok(_) => {
                        if failing {
                            tracing::info!("reloading the tables succeeded again");
                        }
                        failing = false;
                    }
                    Err(e) => {
                        metrics::counter!("apitrail_table_refresh_errors_total").increment(1);
                        // Logged once per run of failures, since it repeats every interval.
                        if !failing {
                            tracing::warn!(error = %e, "reloading the tables failed; queries read the last loaded versions until it succeeds");
                        }
                        failing = true;
                    }
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::StoreConfig;

    use apitrail_ingest::{Event, EventBatchBuilder};

    fn batch(paths: &[&str]) -> arrow::record_batch::RecordBatch {
        let mut builder = EventBatchBuilder::new();
        for (i, path) in paths.iter().enumerate() {
            let mut event = Event::new("clf", 1_700_000_000_000_000 + i as i64);
            event.method = Some("GET".to_string());
            event.path = Some(path.to_string());
            event.status = Some(200);
            builder.push(&event);
        }
        builder.finish()
    }

    fn config(data_dir: std::path::PathBuf, shared: &std::path::Path) -> StoreConfig {
        let mut config = StoreConfig::for_data_dir(data_dir).unwrap();
        config.table_url = url::Url::from_directory_path(shared.join("events")).unwrap();
        config.views_url = url::Url::from_directory_path(shared.join("views")).unwrap();
        config
    }

    fn rows(store: &Store) -> usize {
        let snapshot = store.snapshot();
        let buffered: usize = snapshot.buffered.iter().map(|b| b.batch.num_rows()).sum();
        let committed = snapshot
            .table
            .and_then(|t| t.snapshot().ok().map(|s| s.log_data().num_files()))
            .unwrap_or(0);
        buffered + committed
    }

    #[tokio::test]
    async fn refresh_shows_other_writers_commits() {
        let dir = tempfile::tempdir().unwrap();
        let shared = dir.path().join("store");
        let a = Store::open(config(dir.path().join("a"), &shared))
            .await
            .unwrap();
        let b = Store::open(config(dir.path().join("b"), &shared))
            .await
            .unwrap();

        a.append(batch(&["/a/1", "/a/2"])).await.unwrap();
        a.flush().await.unwrap();
        let before = b.snapshot().table.and_then(|t| t.version());
        let outcome = b.refresh_tables().await.unwrap();
        assert!(
            outcome.table_version > before,
            "b loads a's commit: {before:?} -> {outcome:?}"
        );
        assert_eq!(
            outcome.table_version,
            a.snapshot().table.and_then(|t| t.version()),
            "both nodes read the same version"
        );
        assert_eq!(rows(&b), 1, "b sees a's one data file");

        b.append(batch(&["/b/1"])).await.unwrap();
        b.refresh_tables().await.unwrap();
        assert_eq!(b.buffered_rows(), 1, "b's own rows stay buffered");
        b.flush().await.unwrap();
        a.refresh_tables().await.unwrap();
        assert_eq!(rows(&a), 2, "a sees both data files");
    }
}
