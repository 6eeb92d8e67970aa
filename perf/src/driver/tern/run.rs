//! A measured run on the driver's executor: the closed loop (`clients` tasks, one operation
//! in flight each) and the open loop (operations started on a schedule), all sharing one
//! pipelining `KvClient`, as the etcd driver shares one etcd client.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tern_net::runtime;
use tern_net::KvClient;

use super::ops::{perform, OpFailure};
use crate::driver::{Progress, RunStats};
use crate::workload::{key_name, InsertCounter, OpGenerator, OpKind, WorkloadSpec};

/// Operations the open loop's scheduler starts in a row before it lets the executor run the
/// others (when behind schedule it would otherwise start up to `inflight_max` without pause).
const SCHEDULER_OPS_BETWEEN_YIELDS: u64 = 64;

/// The measured window: ops that complete inside it are recorded.
#[derive(Clone, Copy, Debug)]
struct Window {
    start: Instant,
    end: Instant,
}

impl Window {
    /// Warm-up from now, then the measured `duration`.
    fn after_warmup(spec: &WorkloadSpec) -> Window {
        let start = Instant::now() + spec.warmup;
        Window {
            start,
            end: start + spec.duration,
        }
    }

    fn contains(&self, at: Instant) -> bool {
        at >= self.start && at < self.end
    }
}

/// The run's results so far, shared by its tasks (all on one thread).
struct Tally {
    stats: RunStats,
    progress: Arc<Progress>,
    window: Window,
}

impl Tally {
    fn new(window: Window, progress: Arc<Progress>) -> Rc<RefCell<Tally>> {
        Rc::new(RefCell::new(Tally {
            stats: RunStats {
                elapsed: window.end - window.start,
                latency_us: BTreeMap::new(),
                errors: BTreeMap::new(),
                late: 0,
            },
            progress,
            window,
        }))
    }

    /// Counts one finished operation; recorded when it finished inside the window. Latency is
    /// from `started` (the scheduled start in the open loop).
    fn finished(
        &mut self,
        kind: OpKind,
        started: Instant,
        finished: Instant,
        outcome: Result<(), OpFailure>,
    ) {
        let recorded = self.window.contains(finished);
        match outcome {
            Ok(()) => {
                self.progress.op_done();
                if recorded {
                    let micros = finished.saturating_duration_since(started).as_micros();
                    self.stats
                        .latency_us
                        .entry(kind)
                        .or_insert_with(RunStats::new_histogram)
                        .saturating_record(u64::try_from(micros).unwrap_or(u64::MAX).max(1));
                }
            }
            Err(failure) => {
                self.progress.error();
                if recorded {
                    self.stats.record_error(failure.kind, || failure.message);
                }
            }
        }
    }
}

/// The first key the load did not write.
fn loaded_end(spec: &WorkloadSpec) -> Rc<[u8]> {
    key_name(spec.key_space).into()
}

/// `clients` tasks, each one operation at a time until the window ends.
pub async fn closed_loop(
    client: Rc<KvClient>,
    spec: &WorkloadSpec,
    clients: usize,
    progress: Arc<Progress>,
) -> RunStats {
    let window = Window::after_warmup(spec);
    let tally = Tally::new(window, progress);
    let inserts = InsertCounter::new(spec.key_space);
    let loaded_end = loaded_end(spec);
    // Each task reports its end here; `clients` slots, so a send never waits.
    let (done_sender, done_receiver) = flume::bounded::<()>(clients);
    for client_index in 0..clients {
        let mut generator = OpGenerator::new(spec, client_index, inserts.clone());
        let client = client.clone();
        let tally = tally.clone();
        let loaded_end = loaded_end.clone();
        let done_sender = done_sender.clone();
        runtime::spawn(async move {
            // Bounded by the window: every operation ends within the client's operation
            // timeout, and none starts after the window.
            while Instant::now() < window.end {
                let op = generator.next_op();
                let kind = op.kind();
                let started = Instant::now();
                let outcome = perform(&client, op, &loaded_end).await;
                tally
                    .borrow_mut()
                    .finished(kind, started, Instant::now(), outcome);
            }
            let _ = done_sender.try_send(());
        });
    }
    drop(done_sender);
    // Ends once every task has sent (or dropped) its sender.
    while done_receiver.recv_async().await.is_ok() {}
    take_stats(tally)
}

/// Starts operations at `rate_ops_per_s` from the start of the warm-up, at most
/// `inflight_max` outstanding; an operation due while that many are outstanding is `late`
/// (counted when due inside the window) and starts when one ends. Latency runs from the
/// scheduled start, so a stall shows in full (no coordinated omission).
pub async fn open_loop(
    client: Rc<KvClient>,
    spec: &WorkloadSpec,
    rate_ops_per_s: u64,
    inflight_max: usize,
    progress: Arc<Progress>,
) -> RunStats {
    let schedule_start = Instant::now();
    let window = Window::after_warmup(spec);
    let tally = Tally::new(window, progress);
    let inserts = InsertCounter::new(spec.key_space);
    let loaded_end = loaded_end(spec);
    let mut generator = OpGenerator::new(spec, 0, inserts);
    // One token per outstanding operation: the channel holds at most `inflight_max`.
    let (slots, returned) = flume::bounded::<()>(inflight_max);
    let mut late = 0u64;
    // Bounded: operation `n` is due n / rate seconds in, and the loop stops at the window's end.
    for n in 0u64.. {
        let due = schedule_start + scheduled_offset(n, rate_ops_per_s);
        if due >= window.end {
            break;
        }
        let now = Instant::now();
        if due > now {
            runtime::sleep(due - now).await;
        } else if n % SCHEDULER_OPS_BETWEEN_YIELDS == 0 {
            runtime::yield_now().await;
        }
        if slots.try_send(()).is_err() {
            if window.contains(due) {
                late += 1;
            }
            // Waits for an outstanding operation to end (the receiver lives as long as this).
            if slots.send_async(()).await.is_err() {
                break;
            }
            // An operation started after the window could not be recorded.
            if Instant::now() >= window.end {
                let _ = returned.try_recv();
                break;
            }
        }
        let op = generator.next_op();
        let kind = op.kind();
        let client = client.clone();
        let tally = tally.clone();
        let loaded_end = loaded_end.clone();
        let returned = returned.clone();
        runtime::spawn(async move {
            let outcome = perform(&client, op, &loaded_end).await;
            tally
                .borrow_mut()
                .finished(kind, due, Instant::now(), outcome);
            let _ = returned.try_recv();
        });
    }
    // Waits for the outstanding operations: all slots free means none is left. Each ends
    // within the client's operation timeout.
    for _ in 0..inflight_max {
        if slots.send_async(()).await.is_err() {
            break;
        }
    }
    let mut stats = take_stats(tally);
    stats.late = late;
    stats
}

/// When operation `n` is due, from the schedule's start.
fn scheduled_offset(n: u64, rate_ops_per_s: u64) -> Duration {
    let nanos = u128::from(n) * 1_000_000_000 / u128::from(rate_ops_per_s.max(1));
    Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX))
}

/// The stats out of the shared tally (every task has ended, so this is the last holder; if
/// not, a copy of what was counted).
fn take_stats(tally: Rc<RefCell<Tally>>) -> RunStats {
    match Rc::try_unwrap(tally) {
        Ok(cell) => cell.into_inner().stats,
        Err(shared) => {
            let tally = shared.borrow();
            RunStats {
                elapsed: tally.stats.elapsed,
                latency_us: tally.stats.latency_us.clone(),
                errors: tally.stats.errors.clone(),
                late: tally.stats.late,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedule_spreads_operations_evenly() {
        assert_eq!(scheduled_offset(0, 1000), Duration::ZERO);
        assert_eq!(scheduled_offset(1, 1000), Duration::from_millis(1));
        assert_eq!(scheduled_offset(3, 3), Duration::from_secs(1));
        assert_eq!(scheduled_offset(1, 3), Duration::from_nanos(333_333_333));
    }
}
