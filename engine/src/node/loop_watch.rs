//! Watches the Raft executor for stalls: a turn of the Ready loop that starts late (the thread
//! was busy elsewhere or blocked in a system call) or that takes long itself. Either one
//! delays ticks, heartbeats and vote answers, and a stall of an election timeout turns into a
//! leader change, so operators get a WARN saying how long and what ran instead (rate limited).

use std::cell::Cell;
use std::time::{Duration, Instant};

/// A stall of at least this long is reported: a third of the default election timeout's
/// lower bound (150 ms), well above the 1 ms tick.
pub(crate) const STALL_WARN_AFTER: Duration = Duration::from_millis(50);

/// At most one stall WARN per this interval; the others are counted and reported with it.
const STALL_WARN_INTERVAL: Duration = Duration::from_secs(1);

/// The longest synchronous step other code on the Raft executor took since the last turn, with
/// its name: tells "a task of ours was slow" apart from "the thread was blocked elsewhere".
#[derive(Default)]
pub(crate) struct StepRecord {
    longest: Cell<(Duration, &'static str)>,
}

impl StepRecord {
    /// Records that step `name` took `took`.
    pub(crate) fn record(&self, name: &'static str, took: Duration) {
        if took > self.longest.get().0 {
            self.longest.set((took, name));
        }
    }

    /// Times `step` as `name`.
    pub(crate) fn time<T>(&self, name: &'static str, step: impl FnOnce() -> T) -> T {
        let started = Instant::now();
        let result = step();
        self.record(name, started.elapsed());
        result
    }

    fn take(&self) -> (Duration, &'static str) {
        self.longest.replace((Duration::ZERO, "none"))
    }
}

/// The loop's side: phases of the current turn and when the next turn was due.
pub(crate) struct LoopWatch {
    node: u64,
    /// When the next turn should start at the latest (after a yield: at once; after a sleep:
    /// at the next tick).
    due: Instant,
    /// What the loop did before `due`: "yielded" or "slept until the next tick or a wake-up".
    waited: &'static str,
    turn_started: Instant,
    phase_started: Instant,
    slowest_phase: (Duration, &'static str),
    last_warn: Option<Instant>,
    suppressed: u64,
}

impl LoopWatch {
    pub(crate) fn new(node: u64) -> LoopWatch {
        let now = Instant::now();
        LoopWatch {
            node,
            due: now,
            waited: "started",
            turn_started: now,
            phase_started: now,
            slowest_phase: (Duration::ZERO, "none"),
            last_warn: None,
            suppressed: 0,
        }
    }

    /// A turn starts: reports how late it is against `due`, with what else ran meanwhile.
    pub(crate) fn turn_starts(&mut self, others: &StepRecord, ticks_behind: u64) {
        let now = Instant::now();
        let late = now.saturating_duration_since(self.due);
        let (other_took, other_step) = others.take();
        if late >= STALL_WARN_AFTER && self.may_warn(now) {
            tracing::warn!(
                node = self.node,
                late_ms = late.as_millis() as u64,
                ticks_behind,
                loop_was = self.waited,
                longest_other_step = other_step,
                longest_other_step_us = other_took.as_micros() as u64,
                suppressed_since_last = self.suppressed,
                "the Raft loop ran late: the executor thread was busy elsewhere or blocked in a \
                 system call (no ticks, heartbeats or vote answers meanwhile); if the longest \
                 other step is short, look for a blocking call (disk, WAL flusher, transport)"
            );
            self.suppressed = 0;
        }
        self.turn_started = now;
        self.phase_started = now;
        self.slowest_phase = (Duration::ZERO, "none");
    }

    /// The phase `name` of this turn just ended.
    pub(crate) fn phase_done(&mut self, name: &'static str) {
        let now = Instant::now();
        let took = now - self.phase_started;
        if took > self.slowest_phase.0 {
            self.slowest_phase = (took, name);
        }
        self.phase_started = now;
    }

    /// The turn ended; the next one is due at `due` after the loop `waited` so.
    pub(crate) fn turn_ends(&mut self, due: Instant, waited: &'static str) {
        let now = Instant::now();
        let took = now - self.turn_started;
        if took >= STALL_WARN_AFTER && self.may_warn(now) {
            tracing::warn!(
                node = self.node,
                turn_ms = took.as_millis() as u64,
                slowest_phase = self.slowest_phase.1,
                slowest_phase_ms = self.slowest_phase.0.as_millis() as u64,
                suppressed_since_last = self.suppressed,
                "one Raft loop turn took long (no ticks, heartbeats or vote answers meanwhile)"
            );
            self.suppressed = 0;
        }
        self.due = due.max(now);
        self.waited = waited;
    }

    fn may_warn(&mut self, now: Instant) -> bool {
        match self.last_warn {
            Some(last) if now - last < STALL_WARN_INTERVAL => {
                self.suppressed += 1;
                false
            }
            _ => {
                self.last_warn = Some(now);
                true
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn step_record_keeps_the_longest_step_until_taken() {
        let steps = StepRecord::default();
        steps.record("short", Duration::from_micros(5));
        steps.record("long", Duration::from_millis(3));
        steps.record("middle", Duration::from_millis(1));
        assert_eq!(steps.take(), (Duration::from_millis(3), "long"));
        assert_eq!(steps.take(), (Duration::ZERO, "none"));
        assert_eq!(steps.time("timed", || 7), 7);
        assert_eq!(steps.take().1, "timed");
    }

    #[test]
    fn warnings_are_rate_limited_and_the_rest_counted() {
        let mut watch = LoopWatch::new(1);
        let now = Instant::now();
        assert!(watch.may_warn(now));
        assert!(!watch.may_warn(now + Duration::from_millis(10)));
        assert!(!watch.may_warn(now + Duration::from_millis(20)));
        assert_eq!(watch.suppressed, 2);
        assert!(watch.may_warn(now + STALL_WARN_INTERVAL + Duration::from_millis(1)));
    }

    #[test]
    fn a_turn_is_due_no_earlier_than_it_ended() {
        let mut watch = LoopWatch::new(1);
        let before = Instant::now();
        watch.turn_ends(before - Duration::from_secs(1), "yielded to other tasks");
        assert!(watch.due >= before);
        let later = Instant::now() + Duration::from_secs(5);
        watch.turn_ends(later, "waited for the next tick or a wake-up");
        assert_eq!(watch.due, later);
        assert_eq!(watch.waited, "waited for the next tick or a wake-up");
    }
}
