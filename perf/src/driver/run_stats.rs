//! What a run measured on the client side, and the live counters the progress bar reads.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use hdrhistogram::Histogram;

use crate::workload::OpKind;

/// Counters a driver bumps as it goes; the main thread reads them for the progress bar.
#[derive(Debug, Default)]
pub struct Progress {
    pub ops_done: AtomicU64,
    pub errors: AtomicU64,
}

impl Progress {
    pub fn op_done(&self) {
        self.ops_done.fetch_add(1, Ordering::Relaxed);
    }

    pub fn error(&self) {
        self.errors.fetch_add(1, Ordering::Relaxed);
    }
}

/// Client-side results of one measured window.
#[derive(Debug)]
pub struct RunStats {
    /// Length of the measured window.
    pub elapsed: Duration,
    /// Latency of successful operations, microseconds, per kind (1 us .. 60 s, 3 digits).
    pub latency_us: BTreeMap<OpKind, Histogram<u64>>,
    /// Failed operations per error kind, with the first message of each kind.
    pub errors: BTreeMap<String, (u64, String)>,
    /// Open loop only: requests that were due while `inflight_max` were outstanding.
    pub late: u64,
}

impl RunStats {
    /// An empty histogram with the suite's bounds.
    pub fn new_histogram() -> Histogram<u64> {
        Histogram::new_with_bounds(1, 60_000_000, 3).expect("constant histogram bounds are valid")
    }

    /// All kinds merged.
    pub fn merged_latency_us(&self) -> Histogram<u64> {
        let mut merged = Self::new_histogram();
        for histogram in self.latency_us.values() {
            // Same bounds everywhere: add cannot fail.
            let _ = merged.add(histogram);
        }
        merged
    }

    pub fn ops_ok(&self) -> u64 {
        self.latency_us
            .values()
            .map(|histogram| histogram.len())
            .sum()
    }

    pub fn errors_total(&self) -> u64 {
        self.errors.values().map(|(count, _)| count).sum()
    }

    /// Counts one failure of kind `kind`.
    pub fn record_error(&mut self, kind: &str, message: impl FnOnce() -> String) {
        let entry = self
            .errors
            .entry(kind.to_string())
            .or_insert_with(|| (0, message()));
        entry.0 += 1;
    }
}
