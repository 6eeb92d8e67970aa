//! What the leader knows about one follower's log, and how it sends to it (thesis 10.2.2):
//! in `Probe` one AppendRequest at a time until the match point is found, then in `Replicate`
//! a pipeline bounded by the in-flight window; in `Snapshot` nothing while the driver ships a
//! snapshot (the entries the follower needs were compacted).

use super::inflights::Inflights;
use super::types::LogIndex;

/// How the leader sends entries to a follower.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ProgressState {
    /// Searching for the match point: one request outstanding, no optimistic sends.
    Probe,
    /// The match point is known: stream entries, up to the in-flight window.
    Replicate,
    /// The follower needs entries the log no longer holds: a snapshot through `index` is on
    /// its way; send nothing until it is acknowledged or the driver reports how the transfer
    /// ended.
    Snapshot { index: LogIndex },
}

/// The leader's view of one follower.
#[derive(Clone, Debug)]
pub(crate) struct Progress {
    /// Highest index known to match the leader's log (and durable on the follower).
    pub(crate) match_index: LogIndex,
    /// Next index to send.
    pub(crate) next_index: LogIndex,
    pub(crate) state: ProgressState,
    /// In `Probe`: a probe is outstanding, so wait for its answer (or a heartbeat answer).
    pub(crate) probe_sent: bool,
    pub(crate) inflights: Inflights,
    /// Leader tick at which this follower was last heard from in the current term.
    pub(crate) last_heard_tick: u64,
    /// `match_index` at the previous stall check: unchanged with requests in flight means lost.
    pub(crate) match_at_last_check: LogIndex,
    /// Highest heartbeat round this follower answered.
    pub(crate) acked_round: u64,
    /// Leader tick at which `acked_round` started, if still remembered (for the lease).
    pub(crate) acked_round_start_tick: Option<u64>,
}

impl Progress {
    pub(crate) fn new(next_index: LogIndex, inflight_messages_max: usize, now_ticks: u64) -> Self {
        Self {
            match_index: 0,
            next_index,
            state: ProgressState::Probe,
            probe_sent: false,
            inflights: Inflights::new(inflight_messages_max),
            last_heard_tick: now_ticks,
            match_at_last_check: 0,
            acked_round: 0,
            acked_round_start_tick: None,
        }
    }

    /// Raises the match point; false when `index` is not news (a stale or duplicate answer).
    pub(crate) fn update_match(&mut self, index: LogIndex) -> bool {
        if index <= self.match_index {
            self.next_index = self.next_index.max(index + 1);
            return false;
        }
        self.match_index = index;
        self.next_index = self.next_index.max(index + 1);
        true
    }

    pub(crate) fn become_probe(&mut self, next_index: LogIndex) {
        self.state = ProgressState::Probe;
        self.next_index = next_index.max(self.match_index + 1);
        self.probe_sent = false;
        self.inflights.clear();
    }

    /// A snapshot through `index` is being sent: pause until it is answered.
    pub(crate) fn become_snapshot(&mut self, index: LogIndex) {
        self.state = ProgressState::Snapshot { index };
        self.probe_sent = false;
        self.inflights.clear();
    }

    pub(crate) fn become_replicate(&mut self) {
        self.state = ProgressState::Replicate;
        self.next_index = self.match_index + 1;
        self.probe_sent = false;
        self.inflights.clear();
    }

    /// True when nothing more may be sent until an answer arrives.
    pub(crate) fn is_paused(&self) -> bool {
        match self.state {
            ProgressState::Probe => self.probe_sent,
            ProgressState::Replicate => self.inflights.is_full(),
            ProgressState::Snapshot { .. } => true,
        }
    }
}
