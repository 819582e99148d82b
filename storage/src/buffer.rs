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
    /// Inserts a batch in LSN order.
    ///
    /// Concurrent appends are acknowledged by the WAL in any order, so a batch
    /// may arrive after one with a higher LSN.
    pub fn push(&mut self, batch: BufferedBatch) {
        self.rows += batch.batch.num_rows();
        self.bytes += batch.batch.get_array_memory_size();
        let position = self.batches.partition_point(|b| b.lsn <= batch.lsn);
        self.batches.insert(position, batch);
    }

    /// Highest LSN up to which every record above `committed` is buffered.
    ///
    /// A flush may only cover such a gap-free run: a record whose append is
    /// durable but not yet buffered must not be skipped by a commit that
    /// names a higher LSN. Returns `None` when nothing can be flushed.
    pub fn contiguous_through(&self, committed: Lsn) -> Option<Lsn> {
        let mut through = committed;
        for batch in &self.batches {
            if batch.lsn == through + 1 {
                through = batch.lsn;
            } else if batch.lsn > through {
                break;
            }
        }
        (through > committed).then_some(through)
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

#[cfg(test)]
mod tests {
    use super::*;

    use apitrail_ingest::{Event, EventBatchBuilder};

    fn batch(lsn: Lsn) -> BufferedBatch {
        let mut builder = EventBatchBuilder::new();
        builder.push(&Event::new("clf", lsn as i64));
        BufferedBatch::new(lsn, builder.finish())
    }

    #[test]
    fn push_keeps_lsn_order() {
        let mut buffer = WriteBuffer::default();
        for lsn in [3, 1, 2, 5] {
            buffer.push(batch(lsn));
        }
        let lsns: Vec<Lsn> = buffer.batches().iter().map(|b| b.lsn).collect();
        assert_eq!(lsns, vec![1, 2, 3, 5]);
    }

    #[test]
    fn contiguous_stops_at_gap() {
        let mut buffer = WriteBuffer::default();
        for lsn in [5, 6, 8] {
            buffer.push(batch(lsn));
        }
        assert_eq!(
            buffer.contiguous_through(4),
            Some(6),
            "7 is missing, so 8 must wait"
        );
        assert_eq!(
            buffer.contiguous_through(3),
            None,
            "4 is missing, so nothing is flushable"
        );
        buffer.push(batch(7));
        assert_eq!(buffer.contiguous_through(4), Some(8));
    }

    #[test]
    fn release_keeps_later_batches() {
        let mut buffer = WriteBuffer::default();
        for lsn in [1, 2, 3] {
            buffer.push(batch(lsn));
        }
        buffer.release_through(2);
        assert_eq!(buffer.rows(), 1);
        assert_eq!(buffer.batches()[0].lsn, 3);
    }
}
