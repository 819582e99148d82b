//! The write buffer: acknowledged events not yet committed to the table.

use std::time::Instant;

use arrow::array::{Array, TimestampMicrosecondArray};
use arrow::compute::{max, min};
use arrow::record_batch::RecordBatch;

use crate::wal::Lsn;

/// One acknowledged WAL record's events, with its time range for pruning.
#[derive(Debug, Clone)]
pub struct BufferedBatch {
    pub lsn: Lsn,
    pub batch: RecordBatch,
    /// Smallest and largest `time` in the batch, in microseconds; `None` when empty.
    pub time_range: Option<(i64, i64)>,
    /// When the batch entered the buffer, for age-based flushes.
    pub arrived: Instant,
}

impl BufferedBatch {
    pub fn new(lsn: Lsn, batch: RecordBatch) -> Self {
        let time_range = batch
            .column(0)
            .as_any()
            .downcast_ref::<TimestampMicrosecondArray>()
            .and_then(|times| Some((min(times)?, max(times)?)));
        BufferedBatch {
            lsn,
            batch,
            time_range,
            arrived: Instant::now(),
        }
    }
}

/// Batches in LSN order, with running totals that drive flushes.
#[derive(Debug, Default)]
pub struct WriteBuffer {
    batches: Vec<BufferedBatch>,
    rows: usize,
    bytes: usize,
}

impl WriteBuffer {
    pub fn push(&mut self, batch: BufferedBatch) {
        self.rows += batch.batch.num_rows();
        self.bytes += batch.batch.get_array_memory_size();
        self.batches.push(batch);
    }

    pub fn rows(&self) -> usize {
        self.rows
    }

    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// When the oldest unflushed batch arrived.
    pub fn oldest(&self) -> Option<Instant> {
        self.batches.first().map(|b| b.arrived)
    }

    pub fn batches(&self) -> &[BufferedBatch] {
        &self.batches
    }

    pub fn last_lsn(&self) -> Option<Lsn> {
        self.batches.last().map(|b| b.lsn)
    }

    /// Drops every batch with an LSN at or below `lsn`, after they were committed.
    pub fn release_through(&mut self, lsn: Lsn) {
        self.batches.retain(|b| b.lsn > lsn);
        self.rows = self.batches.iter().map(|b| b.batch.num_rows()).sum();
        self.bytes = self
            .batches
            .iter()
            .map(|b| b.batch.get_array_memory_size())
            .sum();
    }
}
