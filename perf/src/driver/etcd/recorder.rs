//! The measured window and what completed inside it.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use super::errors::OpError;
use crate::driver::RunStats;
use crate::workload::OpKind;

/// A run's timeline: warm-up from `start`, measured from `measured_start` to `end`.
#[derive(Clone, Copy, Debug)]
pub(super) struct Window {
    pub start: Instant,
    pub measured_start: Instant,
    pub end: Instant,
}

impl Window {
    /// Starts now: `warmup`, then `measured`.
    pub fn starting_now(warmup: Duration, measured: Duration) -> Window {
        let start = Instant::now();
        let measured_start = start + warmup;
        Window {
            start,
            measured_start,
            end: measured_start + measured,
        }
    }

    /// Whether something that completed at `at` counts.
    pub fn measures(&self, at: Instant) -> bool {
        self.measured_start <= at && at <= self.end
    }

    pub fn measured(&self) -> Duration {
        self.end - self.measured_start
    }
}

/// Latencies and failures of operations completing inside the window.
pub(super) struct Recorder {
    window: Window,
    stats: RunStats,
}

impl Recorder {
    pub fn new(window: Window) -> Recorder {
        Recorder {
            window,
            stats: RunStats {
                elapsed: window.measured(),
                latency_us: BTreeMap::new(),
                errors: BTreeMap::new(),
                late: 0,
            },
        }
    }

    /// An operation of `kind` that started (or was due, open loop) at `started` succeeded at
    /// `completed`.
    pub fn success(&mut self, kind: OpKind, started: Instant, completed: Instant) {
        if !self.window.measures(completed) {
            return;
        }
        let micros = u64::try_from(completed.saturating_duration_since(started).as_micros())
            .unwrap_or(u64::MAX)
            .max(1);
        self.stats
            .latency_us
            .entry(kind)
            .or_insert_with(RunStats::new_histogram)
            // Beyond the histogram's 60 s top a latency is clamped rather than lost.
            .saturating_record(micros);
    }

    /// An operation failed at `completed`.
    pub fn failure(&mut self, error: OpError, completed: Instant) {
        if self.window.measures(completed) {
            self.stats.record_error(&error.kind, || error.message);
        }
    }

    /// An open-loop request due at `due` found `inflight_max` requests outstanding.
    pub fn late(&mut self, due: Instant) {
        if self.window.measures(due) {
            self.stats.late += 1;
        }
    }

    pub fn into_stats(self) -> RunStats {
        self.stats
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_completions_inside_the_measured_window_count() {
        let window = Window::starting_now(Duration::from_secs(1), Duration::from_secs(2));
        let mut recorder = Recorder::new(window);
        let in_warmup = window.start + Duration::from_millis(500);
        let inside = window.measured_start + Duration::from_millis(10);
        let after = window.end + Duration::from_millis(1);
        recorder.success(OpKind::Read, window.start, in_warmup);
        recorder.success(OpKind::Read, in_warmup, inside);
        recorder.success(OpKind::Update, inside, after);
        recorder.failure(OpError::timeout(Duration::from_secs(1)), in_warmup);
        recorder.failure(OpError::timeout(Duration::from_secs(1)), inside);
        recorder.late(in_warmup);
        recorder.late(inside);
        let stats = recorder.into_stats();
        assert_eq!(stats.ops_ok(), 1);
        assert!(stats.latency_us[&OpKind::Read].min() >= 500_000);
        assert_eq!(stats.errors_total(), 1);
        assert_eq!(stats.late, 1);
        assert_eq!(stats.elapsed, Duration::from_secs(2));
    }
}
