//! Linearizable reads without writing to the log (thesis 6.4): ReadIndex confirms leadership
//! with a heartbeat round acknowledged by a majority; a lease read (thesis 6.4.1) skips the round
//! while the lease from the last acknowledged round holds. Either way the answer waits until the
//! state machine has applied the read index.

use std::collections::VecDeque;

use super::ready::{ReadConsistency, ReadId, ReadOutcome};
use super::types::{LogIndex, Role};
use super::{quorum, Bug, Raft, ReadError};

/// How many heartbeat rounds' start ticks are remembered for the lease; an answer to an older
/// round still confirms ReadIndex reads but no longer extends the lease.
const ROUND_HISTORY_MAX: usize = 1024;

/// A read waiting for a heartbeat round to be acknowledged by a majority.
#[derive(Clone, Copy, Debug)]
struct PendingRead {
    id: ReadId,
    index: LogIndex,
    round: u64,
}

/// The leader's waiting reads and heartbeat rounds.
#[derive(Debug, Default)]
pub(crate) struct ReadQueue {
    /// Reads that arrived before the leader committed an entry of its term.
    waiting_commit: VecDeque<ReadId>,
    /// Reads waiting for their round to be acknowledged (rounds never decrease along it).
    waiting_quorum: VecDeque<PendingRead>,
    /// Confirmed reads waiting for apply, sorted by index.
    waiting_apply: VecDeque<(LogIndex, ReadId)>,
    /// The latest heartbeat round started.
    round: u64,
    /// The latest round's heartbeats have not left yet (not handed out in a Ready), so a read
    /// arriving now may join it.
    round_open: bool,
    /// Start tick of rounds `round_base ..= round`.
    round_start_ticks: VecDeque<u64>,
    round_base: u64,
}

impl ReadQueue {
    pub(crate) fn len(&self) -> usize {
        self.waiting_commit.len() + self.waiting_quorum.len() + self.waiting_apply.len()
    }

    pub(crate) fn current_round(&self) -> u64 {
        self.round
    }

    /// Starts a new round at `now_ticks` and returns its number.
    pub(crate) fn start_round(&mut self, now_ticks: u64) -> u64 {
        self.round += 1;
        if self.round_start_ticks.is_empty() {
            self.round_base = self.round;
        }
        self.round_start_ticks.push_back(now_ticks);
        if self.round_start_ticks.len() > ROUND_HISTORY_MAX {
            self.round_start_ticks.pop_front();
            self.round_base += 1;
        }
        self.round_open = true;
        self.round
    }

    pub(crate) fn round_start_tick(&self, round: u64) -> Option<u64> {
        let offset = usize::try_from(round.checked_sub(self.round_base)?).ok()?;
        self.round_start_ticks.get(offset).copied()
    }

    pub(crate) fn close_round(&mut self) {
        self.round_open = false;
    }

    /// A new leadership: no round of an earlier one may confirm anything.
    pub(crate) fn reset_rounds(&mut self) {
        self.round_start_ticks.clear();
        self.round_open = false;
    }

    /// Every waiting read's id, emptying the queue.
    pub(crate) fn drain_all(&mut self) -> Vec<ReadId> {
        let mut ids: Vec<ReadId> = self.waiting_commit.drain(..).collect();
        ids.extend(self.waiting_quorum.drain(..).map(|read| read.id));
        ids.extend(self.waiting_apply.drain(..).map(|(_, id)| id));
        ids
    }

    fn push_confirmed(&mut self, index: LogIndex, id: ReadId) {
        let position = self
            .waiting_apply
            .partition_point(|(waiting, _)| *waiting <= index);
        self.waiting_apply.insert(position, (index, id));
    }
}

impl Raft {
    pub(super) fn start_read(
        &mut self,
        id: ReadId,
        consistency: ReadConsistency,
    ) -> Result<(), ReadError> {
        if consistency == ReadConsistency::Lease && !self.config.lease_reads {
            return Err(ReadError::LeaseReadsDisabled);
        }
        if self.role != Role::Leader {
            self.out.reads.push(ReadOutcome::NotLeader {
                id,
                leader_hint: self.leader,
            });
            return Ok(());
        }
        let pending = self.reads.len();
        let max = self.config.pending_reads_max;
        if pending >= max {
            return Err(ReadError::Backpressure { pending, max });
        }
        if !self.committed_in_current_term() {
            // Thesis 6.4: until an entry of its term commits, the leader's commit index may
            // lag entries earlier leaders committed.
            self.reads.waiting_commit.push_back(id);
            return Ok(());
        }
        if consistency == ReadConsistency::Lease && self.lease_holds() {
            self.reads.push_confirmed(self.log.committed, id);
            self.release_applied_reads();
            return Ok(());
        }
        self.start_read_index(id);
        Ok(())
    }

    fn committed_in_current_term(&self) -> bool {
        self.log.term(self.log.committed) == Some(self.term)
    }

    /// ReadIndex: remember the commit index, and confirm with a heartbeat round whose messages
    /// leave after the read arrived (joining a round whose heartbeats have not left yet).
    fn start_read_index(&mut self, id: ReadId) {
        let round = if self.reads.round_open {
            self.reads.round
        } else {
            self.begin_read_round()
        };
        let index = self.log.committed;
        self.reads
            .waiting_quorum
            .push_back(PendingRead { id, index, round });
        self.confirm_reads();
    }

    fn begin_read_round(&mut self) -> u64 {
        self.broadcast_heartbeat();
        self.reads.round
    }

    /// Moves reads whose round a majority acknowledged to the apply queue.
    pub(super) fn confirm_reads(&mut self) {
        if self.reads.waiting_quorum.is_empty() {
            return;
        }
        let mut scratch = std::mem::take(&mut self.scratch);
        let acknowledged = quorum::joint_quorum_value(
            self.log.membership.latest(),
            |voter| {
                if voter == self.id {
                    self.reads.round
                } else {
                    self.progress.get(&voter).map_or(0, |p| p.acked_round)
                }
            },
            &mut scratch,
        );
        self.scratch = scratch;
        while let Some(read) = self.reads.waiting_quorum.front().copied() {
            if read.round > acknowledged {
                break;
            }
            self.reads.waiting_quorum.pop_front();
            self.reads.push_confirmed(read.index, read.id);
        }
        self.release_applied_reads();
    }

    /// Answers confirmed reads whose index the state machine has applied.
    pub(super) fn release_applied_reads(&mut self) {
        while let Some((index, id)) = self.reads.waiting_apply.front().copied() {
            if index > self.log.applied {
                break;
            }
            self.reads.waiting_apply.pop_front();
            self.out.reads.push(ReadOutcome::Ready { id, index });
        }
    }

    /// The first commit of this term lets waiting reads start their rounds.
    pub(super) fn on_leader_commit_advanced(&mut self) {
        if self.reads.waiting_commit.is_empty() || !self.committed_in_current_term() {
            return;
        }
        let waiting: Vec<ReadId> = self.reads.waiting_commit.drain(..).collect();
        for id in waiting {
            self.start_read_index(id);
        }
    }

    /// Thesis 6.4.1: the lease runs from the start of the latest heartbeat round a majority
    /// acknowledged (a follower that answered will not vote for another leader until its own
    /// minimum election timeout passes), for `lease_duration_ticks`. A transfer voids it:
    /// voters grant a TimeoutNow campaign at any time.
    fn lease_holds(&mut self) -> bool {
        if !self.config.lease_reads || self.transfer.is_some() || self.timeout_now_sent {
            return false;
        }
        let mut scratch = std::mem::take(&mut self.scratch);
        // Shifted by one so that 0 means "no round remembered".
        let shifted_start = quorum::joint_quorum_value(
            self.log.membership.latest(),
            |voter| {
                if voter == self.id {
                    self.now_ticks.saturating_add(1)
                } else {
                    self.progress.get(&voter).map_or(0, |progress| {
                        progress
                            .acked_round_start_tick
                            .map_or(0, |tick| tick.saturating_add(1))
                    })
                }
            },
            &mut scratch,
        );
        self.scratch = scratch;
        let Some(lease_start) = shifted_start.checked_sub(1) else {
            return false;
        };
        let lease_ticks = if self.bug(Bug::LeaseIgnoresDriftMargin) {
            self.config.election_timeout_ticks_max
        } else {
            self.config.lease_duration_ticks()
        };
        self.now_ticks < lease_start.saturating_add(lease_ticks)
    }
}
