//! The source of wall-clock time for the table's life cycle.
//!
//! Retention cutoffs, the compaction rule for closed days and the grace
//! period before removed files are deleted all read the time here, so tests
//! can fix or advance it instead of sleeping. Tables, logs and the WAL keep
//! using the system clock directly.

use std::fmt::Debug;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};

/// A source of the current time in UTC.
pub trait Clock: Debug + Send + Sync {
    fn now(&self) -> DateTime<Utc>;
}

/// The system's wall clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// A clock that stays where it was set, for tests.
#[derive(Debug)]
pub struct ManualClock {
    now: Mutex<DateTime<Utc>>,
}

impl ManualClock {
    pub fn new(now: DateTime<Utc>) -> Arc<Self> {
        Arc::new(ManualClock {
            now: Mutex::new(now),
        })
    }

    pub fn set(&self, now: DateTime<Utc>) {
        *self.now.lock().expect("manual clock lock poisoned") = now;
    }

    pub fn advance(&self, by: chrono::Duration) {
        let mut now = self.now.lock().expect("manual clock lock poisoned");
        *now += by;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        *self.now.lock().expect("manual clock lock poisoned")
    }
}

/// Adapts a [`Clock`] to the clock trait of Delta's vacuum.
#[derive(Debug)]
pub(crate) struct VacuumClock(pub(crate) Arc<dyn Clock>);

impl deltalake::operations::vacuum::Clock for VacuumClock {
    fn current_timestamp_millis(&self) -> i64 {
        self.0.now().timestamp_millis()
    }
}
