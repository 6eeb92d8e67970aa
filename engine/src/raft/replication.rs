//! The leader's side of log replication (section 5.3): sending entries to each follower in probe
//! or replicate state, reading their answers with fast backtracking, heartbeats, check-quorum,
//! and the commit rule (5.4.2, thesis 10.2.1).

use super::progress::{Progress, ProgressState};
use super::types::{Entry, LogIndex, MessageBody, NodeId, Payload, Role, Term};
use super::{quorum, Bug, Raft, StepError};

impl Raft {
    /// Appends one entry of the current term to the leader's log (persisted via the next Ready).
    pub(super) fn append_as_leader(&mut self, payload: Payload) {
        let index = self.log.last_index() + 1;
        self.log.append(Entry {
            index,
            term: self.term,
            payload,
        });
    }

    /// After appending: replicate at once; a single voter (or the planted bug) may commit now.
    pub(super) fn after_leader_append(&mut self) {
        self.broadcast_append();
        if self.bug(Bug::LeaderCountsSelfBeforePersist) {
            self.maybe_commit();
        }
    }

    pub(super) fn broadcast_append(&mut self) {
        self.sync_progress();
        let members: Vec<NodeId> = self.progress.keys().copied().collect();
        for member in members {
            self.send_append(member, false);
        }
    }

    /// Makes `progress` hold exactly the other members of the membership in effect (a leader's
    /// membership changes as it appends or loses membership entries): new members start in
    /// probe from the end of the log, removed ones are dropped.
    pub(super) fn sync_progress(&mut self) {
        let version = self.log.membership.version();
        if version == self.progress_membership_version && !self.progress.is_empty() {
            return;
        }
        self.progress_membership_version = version;
        let members = self.membership().members();
        self.progress
            .retain(|member, _| members.binary_search(member).is_ok());
        let next_index = self.log.last_index() + 1;
        for member in members {
            if member != self.id && !self.progress.contains_key(&member) {
                let progress = Progress::new(
                    next_index,
                    self.config.inflight_messages_max,
                    self.now_ticks,
                );
                self.progress.insert(member, progress);
            }
        }
        // Reads wait for a majority of the membership in effect; a smaller one (a voter
        // removed) may already have acknowledged them, and no answer may come to say so.
        self.confirm_reads();
    }

    /// Sends follower `to` its next entries if its state allows; returns whether a message
    /// left. A probe may be empty (it still checks consistency); a replicate send only goes
    /// with entries. A follower that needs compacted entries is sent the snapshot instead.
    pub(super) fn send_append(&mut self, to: NodeId, allow_empty: bool) -> bool {
        let last_index = self.log.last_index();
        let Some(progress) = self.progress.get(&to) else {
            return false;
        };
        if progress.is_paused() {
            return false;
        }
        let next_index = progress.next_index.clamp(1, last_index + 1);
        let state = progress.state;
        if state == ProgressState::Replicate && next_index > last_index && !allow_empty {
            return false;
        }
        let prev_log_index = next_index - 1;
        let Some(prev_log_term) = self.log.term(prev_log_index) else {
            // Compacted away: only the snapshot can bring this follower up to the log.
            self.send_snapshot(to);
            return true;
        };
        let entries = self.log.entries_from(
            next_index,
            self.config.append_entries_max,
            self.config.append_bytes_max,
        );
        let sent_last = prev_log_index + entries.len() as LogIndex;
        let Some(progress) = self.progress.get_mut(&to) else {
            return false;
        };
        match state {
            ProgressState::Replicate => {
                progress.next_index = sent_last + 1;
                progress.inflights.add(sent_last);
            }
            ProgressState::Probe => {
                progress.next_index = next_index;
                progress.probe_sent = true;
            }
            ProgressState::Snapshot { .. } => return false,
        }
        let leader_commit = self.log.committed;
        self.send(
            to,
            MessageBody::AppendRequest {
                prev_log_index,
                prev_log_term,
                entries,
                leader_commit,
            },
        );
        true
    }

    /// Keeps sending to one follower until its window is full or it has everything.
    fn send_append_while_open(&mut self, to: NodeId) {
        let window = self.config.inflight_messages_max;
        for _ in 0..window {
            if !self.send_append(to, false) {
                break;
            }
        }
    }

    pub(super) fn handle_append_response(
        &mut self,
        from: NodeId,
        success: bool,
        match_index: LogIndex,
        conflict_index: LogIndex,
        conflict_term: Option<Term>,
    ) -> Result<(), StepError> {
        if !self.progress.contains_key(&from) {
            // Not a member (any more): nothing to track.
            return Ok(());
        }
        if success {
            if match_index > self.log.last_index() {
                let reason = format!("match_index {match_index} beyond the leader's log");
                return Err(StepError::Malformed { from, reason });
            }
            self.on_append_accepted(from, match_index);
        } else {
            self.on_append_rejected(from, conflict_index, conflict_term);
        }
        Ok(())
    }

    fn on_append_accepted(&mut self, from: NodeId, match_index: LogIndex) {
        let Some(progress) = self.progress.get_mut(&from) else {
            return;
        };
        if progress.update_match(match_index) {
            progress.inflights.free_to(match_index);
            match progress.state {
                ProgressState::Probe => progress.become_replicate(),
                ProgressState::Snapshot { index } if match_index >= index => {
                    progress.become_replicate()
                }
                _ => {}
            }
            self.maybe_commit();
            self.maybe_finish_transfer(from);
        } else if progress.state == ProgressState::Probe {
            progress.probe_sent = false;
        }
        self.send_append_while_open(from);
    }

    /// Section 5.3 with the fast-backtracking hints: when the leader holds entries of the
    /// follower's conflicting term, retry after its last one; otherwise from the follower's first
    /// index of that term (or its log end when it is too short).
    fn on_append_rejected(
        &mut self,
        from: NodeId,
        conflict_index: LogIndex,
        conflict_term: Option<Term>,
    ) {
        let Some(progress) = self.progress.get(&from) else {
            return;
        };
        let stale = match progress.state {
            ProgressState::Replicate => conflict_index <= progress.match_index,
            ProgressState::Probe => !progress.probe_sent,
            // A rejection of an append sent before the snapshot: the snapshot decides.
            ProgressState::Snapshot { .. } => true,
        };
        if stale {
            return;
        }
        let hinted = match conflict_term.and_then(|term| self.log.last_index_of_term(term)) {
            Some(last_of_term) => last_of_term + 1,
            None => conflict_index,
        };
        let next_index = hinted.min(self.log.last_index() + 1);
        if let Some(progress) = self.progress.get_mut(&from) {
            progress.become_probe(next_index);
        }
        self.send_append(from, true);
    }

    /// Section 5.4.2 and thesis 10.2.1: commit the highest index a majority holds, counting the
    /// leader only through what it has persisted, and only when that entry is of this term.
    pub(super) fn maybe_commit(&mut self) {
        let own_match = if self.bug(Bug::LeaderCountsSelfBeforePersist) {
            self.log.last_index()
        } else {
            self.log.persisted
        };
        let mut scratch = std::mem::take(&mut self.scratch);
        let candidate = quorum::joint_quorum_value(
            self.log.membership.latest(),
            |voter| {
                if voter == self.id {
                    own_match
                } else {
                    self.progress.get(&voter).map_or(0, |p| p.match_index)
                }
            },
            &mut scratch,
        );
        self.scratch = scratch;
        if candidate <= self.log.committed {
            return;
        }
        let current_term = self.log.term(candidate) == Some(self.term);
        if current_term || self.bug(Bug::CommitPreviousTermByCount) {
            self.log.commit_to(candidate);
            self.on_leader_commit_advanced();
            self.after_membership_commit();
        }
    }

    pub(super) fn tick_leader(&mut self) {
        self.heartbeat_elapsed_ticks += 1;
        if self.heartbeat_elapsed_ticks >= self.config.heartbeat_interval_ticks {
            self.heartbeat_elapsed_ticks = 0;
            self.broadcast_heartbeat();
        }
        if self.config.check_quorum && !self.quorum_recently_active() {
            self.become_follower(self.term, None);
            return;
        }
        self.check_quorum_elapsed_ticks += 1;
        if self.check_quorum_elapsed_ticks >= self.config.election_timeout_ticks_min {
            self.check_quorum_elapsed_ticks = 0;
            self.restart_stalled_followers();
        }
        self.tick_transfer();
    }

    /// Thesis 6.2: did a majority (us included) answer within the last minimum election
    /// timeout? (Checked every tick: a few comparisons per voter.)
    fn quorum_recently_active(&self) -> bool {
        let window_ticks = self.config.election_timeout_ticks_min;
        quorum::joint_majority(self.membership(), |voter| {
            voter == self.id
                || self.progress.get(&voter).is_some_and(|progress| {
                    self.now_ticks.saturating_sub(progress.last_heard_tick) < window_ticks
                })
        })
    }

    /// A follower in replicate state whose match stayed below our last index for a whole
    /// interval lost requests (or their answers): go back to probing from its match point. The
    /// in-flight window cannot tell: a heartbeat answer frees its oldest slot, and after an
    /// optimistic send `next_index` is already past the lost entries.
    fn restart_stalled_followers(&mut self) {
        let last_index = self.log.last_index();
        let mut stalled_members = Vec::new();
        for (member, progress) in self.progress.iter_mut() {
            let stalled = progress.state == ProgressState::Replicate
                && progress.match_index < last_index
                && progress.match_index == progress.match_at_last_check;
            progress.match_at_last_check = progress.match_index;
            if stalled {
                let next_index = progress.match_index + 1;
                progress.become_probe(next_index);
                stalled_members.push(*member);
            }
        }
        for member in stalled_members {
            self.send_append(member, true);
        }
    }

    /// Starts a heartbeat round: liveness, commit propagation, and the confirmation ReadIndex
    /// and leases count on (thesis 6.4).
    pub(super) fn broadcast_heartbeat(&mut self) {
        self.sync_progress();
        let read_round = self.reads.start_round(self.now_ticks);
        let targets: Vec<(NodeId, LogIndex)> = self
            .progress
            .iter()
            .map(|(member, progress)| (*member, progress.match_index))
            .collect();
        for (to, match_index) in targets {
            // A follower may only learn a commit index its log is known to match.
            let leader_commit = self.log.committed.min(match_index);
            self.send(
                to,
                MessageBody::Heartbeat {
                    leader_commit,
                    read_round,
                },
            );
        }
    }

    pub(super) fn handle_heartbeat_response(&mut self, from: NodeId, read_round: u64) {
        let start_tick = self.reads.round_start_tick(read_round);
        let current_round = self.reads.current_round();
        let last_index = self.log.last_index();
        let Some(progress) = self.progress.get_mut(&from) else {
            return;
        };
        if read_round <= current_round && read_round > progress.acked_round {
            progress.acked_round = read_round;
            progress.acked_round_start_tick = start_tick;
        }
        // The follower is alive: resume a lost probe, and let one request through a full
        // window whose oldest request was probably lost.
        match progress.state {
            ProgressState::Probe => progress.probe_sent = false,
            ProgressState::Replicate if progress.inflights.is_full() => {
                progress.inflights.free_first()
            }
            ProgressState::Replicate | ProgressState::Snapshot { .. } => {}
        }
        // A follower behind the log: when every request the window sent was lost (a healed
        // partition), nothing would be resent; an empty request at the window's end draws a
        // rejection that puts the follower back in probe (etcd does the same).
        if progress.match_index < last_index {
            self.send_append(from, true);
        }
        self.confirm_reads();
    }

    fn tick_transfer(&mut self) {
        let Some(transfer) = self.transfer.as_mut() else {
            return;
        };
        transfer.elapsed_ticks += 1;
        if transfer.elapsed_ticks >= self.config.election_timeout_ticks_min {
            self.transfer = None;
        }
    }

    /// Thesis 3.10: once the transfer target holds our whole log, tell it to campaign now.
    fn maybe_finish_transfer(&mut self, from: NodeId) {
        let Some(transfer) = self.transfer else {
            return;
        };
        let caught_up = self
            .progress
            .get(&from)
            .is_some_and(|progress| progress.match_index == self.log.last_index());
        if transfer.target == from && caught_up {
            self.send_timeout_now(transfer.target);
        }
    }

    pub(super) fn send_timeout_now(&mut self, target: NodeId) {
        debug_assert_eq!(self.role, Role::Leader);
        self.timeout_now_sent = true;
        self.send(target, MessageBody::TimeoutNow);
    }
}
