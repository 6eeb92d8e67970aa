//! Progress counting for tasks that cannot borrow the caller's [`Progress`].
//!
//! Spawned tasks must own what they use ('static), and the progress counters are borrowed
//! for one call. The tasks count into a shared [`LocalCounts`] and the future that waits for
//! them relays the counts into the borrowed counters every [`RELAY_INTERVAL`] and at the end.

use std::cell::Cell;
use std::future::Future;
use std::time::Duration;

use crate::driver::Progress;

/// How stale the progress bar's counts may get: it redraws a few times a second.
const RELAY_INTERVAL: Duration = Duration::from_millis(50);

/// Counts made by this thread's tasks, not yet relayed.
#[derive(Debug, Default)]
pub(super) struct LocalCounts {
    ops_done: Cell<u64>,
    errors: Cell<u64>,
}

impl LocalCounts {
    pub fn op_done(&self) {
        self.ops_done.set(self.ops_done.get() + 1);
    }

    pub fn error(&self) {
        self.errors.set(self.errors.get() + 1);
    }

    fn relay(&self, progress: &Progress) {
        use std::sync::atomic::Ordering::Relaxed;
        progress.ops_done.fetch_add(self.ops_done.take(), Relaxed);
        progress.errors.fetch_add(self.errors.take(), Relaxed);
    }
}

/// Runs `work` to completion, relaying `counts` into `progress` as it goes and once at the end.
pub(super) async fn with_relay<F: Future>(
    work: F,
    counts: &LocalCounts,
    progress: &Progress,
) -> F::Output {
    let mut work = std::pin::pin!(work);
    let mut ticks = tokio::time::interval(RELAY_INTERVAL);
    // A tick missed while the thread was busy is not worth catching up on.
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            output = &mut work => {
                counts.relay(progress);
                return output;
            }
            _ = ticks.tick() => counts.relay(progress),
        }
    }
}
