//! The fault schedule: crashes and restarts, symmetric and one-way partitions and their
//! healing, leadership transfers; and the final heal before the liveness check.

use super::params::TICK_TIME;
use super::world::{Event, World};
use crate::raft::{MembershipChange, NodeId, Role};

impl World {
    /// One random fault action.
    pub(super) fn fault(&mut self) {
        let nodes = self.params.nodes;
        match self.rng.range(0, 19) {
            17 | 18 => self.change_membership(),
            16 => self.lease_trap(),
            14 | 15 => self.transfer_leadership(),
            12 | 13 => {
                // Isolate the leader: it keeps taking proposals in its term that nobody else
                // holds, the divergent suffixes that log repair must get right.
                let leader = (0..nodes).find(|&i| {
                    self.nodes[i]
                        .raft
                        .as_ref()
                        .is_some_and(|raft| raft.status().role == Role::Leader)
                });
                if let Some(leader) = leader {
                    let leader = leader as NodeId + 1;
                    self.network.heal();
                    for other in (1..=nodes as NodeId).filter(|&other| other != leader) {
                        self.network.block(leader, other);
                        self.network.block(other, leader);
                    }
                    self.trace_partition("isolate leader");
                }
            }
            10 | 11 => {
                // Crash the leader: leader changes with uncommitted entries left behind are what
                // the subtle bugs (figure 8, stale votes) need.
                let up = (0..nodes).filter(|&i| self.nodes[i].raft.is_some()).count();
                let leader = (0..nodes).find(|&i| {
                    self.nodes[i]
                        .raft
                        .as_ref()
                        .is_some_and(|raft| raft.status().role == Role::Leader)
                });
                if let Some(leader) = leader.filter(|_| nodes - up < self.params.crashed_max) {
                    self.crash(leader, false);
                }
            }
            0 | 1 => {
                let up: Vec<usize> = (0..nodes)
                    .filter(|&i| self.nodes[i].raft.is_some())
                    .collect();
                if nodes - up.len() < self.params.crashed_max && !up.is_empty() {
                    let victim = up[self.rng.range(0, up.len() as u64) as usize];
                    self.crash(victim, false);
                }
            }
            2 => {
                let down: Vec<usize> = (0..nodes)
                    .filter(|&i| self.nodes[i].raft.is_none())
                    .collect();
                if !down.is_empty() {
                    let node = down[self.rng.range(0, down.len() as u64) as usize];
                    self.start_node(node);
                }
            }
            3 | 4 => {
                // Symmetric partition into two sides, each side non-empty.
                let mut sides: Vec<bool> = (0..nodes).map(|_| self.rng.chance(1, 2)).collect();
                let lonely = self.rng.range(0, nodes as u64) as usize;
                sides[lonely] = !sides[(lonely + 1) % nodes];
                self.network.heal();
                for from in 0..nodes {
                    for to in 0..nodes {
                        if sides[from] != sides[to] {
                            self.network.block(from as NodeId + 1, to as NodeId + 1);
                        }
                    }
                }
                self.trace_partition("partition");
            }
            5 => {
                // One-way: a node can send but not receive, or receive but not send.
                let node = self.random_node_id();
                let outgoing = self.rng.chance(1, 2);
                for other in 1..=nodes as NodeId {
                    if other != node {
                        if outgoing {
                            self.network.block(node, other)
                        } else {
                            self.network.block(other, node)
                        }
                    }
                }
                self.trace_partition("one-way partition");
            }
            6 | 7 => {
                self.network.heal();
                self.trace.record(self.now, || "HEAL partitions".into());
            }
            8 => self.transfer_leadership(),
            _ => {
                // A few random one-way links fail.
                for _ in 0..self.rng.range(1, nodes as u64) {
                    let (from, to) = (self.random_node_id(), self.random_node_id());
                    if from != to {
                        self.network.block(from, to);
                    }
                }
                self.trace_partition("broken links");
            }
        }
    }

    /// Slows the leader's inbox, then (a few ticks later, `cut_outbox`) cuts every link out of
    /// it. Its followers stop hearing it and elect a new leader, while their last answers and
    /// the new leader's messages reach it late: check-quorum counts those late answers, so it
    /// keeps leading, and its clients keep reading there, for up to a minimum election timeout
    /// after the cut. Only a lease measured from the start of an acknowledged round and shorter
    /// than the followers' minimum election timeout by the drift margin keeps those reads fresh
    /// (thesis 6.4.1); an overlong lease answers them after the new leader committed.
    fn lease_trap(&mut self) {
        let Some(leader) = self.leader_index() else {
            return;
        };
        if self.ops_issued >= self.params.client_ops_max {
            // No client is left to read there.
            return;
        }
        let id = leader as NodeId + 1;
        let (min, max) = (
            self.params.raft.election_timeout_ticks_min,
            self.params.raft.election_timeout_ticks_max,
        );
        // Below the minimum election timeout, or the leader's check-quorum would step it down
        // while the slowed answers are on their way.
        let extra_time = self.rng.range(min / 2 * TICK_TIME, (min - 1) * TICK_TIME);
        self.network.heal();
        self.network.slow_down_inbox(id, extra_time);
        self.trace_partition("slow leader inbox");
        let cut_time = self.now + self.rng.range(TICK_TIME, 4 * TICK_TIME);
        self.schedule(cut_time, Event::CutOutbox { node: leader });
        // Let the scenario play out before the next fault heals it.
        self.fault_hold_until_time = cut_time + (min + max) * TICK_TIME;
    }

    /// Asks the leader for a random membership change: add a node that never was a member as
    /// a learner, promote a learner, or remove a learner or voter (the leader itself too).
    /// Removed nodes keep running with what they last knew, never to be added again.
    fn change_membership(&mut self) {
        let Some(leader) = self.leader_index() else {
            return;
        };
        let Some(membership) = self.nodes[leader]
            .raft
            .as_ref()
            .map(|raft| raft.membership().clone())
        else {
            return;
        };
        let mut choices = Vec::new();
        for id in 1..=self.params.nodes as NodeId {
            if self.removed.contains(&id) {
                continue;
            }
            if membership.is_learner(id) {
                choices.push(MembershipChange::Promote(id));
                choices.push(MembershipChange::Remove(id));
            } else if membership.is_voter(id) {
                // Keep at least two voters most of the time, so a run still tolerates a crash.
                if membership.voters.len() > 2 || self.rng.chance(1, 4) {
                    choices.push(MembershipChange::Remove(id));
                }
            } else {
                choices.push(MembershipChange::AddLearner(id));
                choices.push(MembershipChange::AddLearner(id));
            }
        }
        if choices.is_empty() {
            return;
        }
        let change = choices[self.rng.range(0, choices.len() as u64) as usize].clone();
        let mut outcome = None;
        self.input(leader, |raft| {
            outcome = Some(raft.propose_membership(change.clone(), bytes::Bytes::new()));
        });
        let Some(outcome) = outcome else { return };
        self.trace.record(self.now, || {
            format!("n{} MEMBERSHIP {change}: {outcome:?}", leader + 1)
        });
        if let (Ok(_), MembershipChange::Remove(id)) = (&outcome, &change) {
            self.removed.insert(*id);
        }
    }

    /// The second half of `lease_trap`, unless a heal came first.
    pub(super) fn cut_outbox(&mut self, index: usize) {
        let id = index as NodeId + 1;
        if !self.faulty || !self.network.is_inbox_slow(id) {
            return;
        }
        for other in (1..=self.params.nodes as NodeId).filter(|&other| other != id) {
            self.network.block(id, other);
        }
        self.trace_partition("cut leader outbox");
    }

    /// A crash right after a granted vote was sent: the moment a vote that was not durable yet
    /// would be forgotten, letting the voter vote again in the same term after a quick reboot.
    pub(super) fn crash_after_vote(&mut self, index: usize, incarnation: u64) {
        let nodes = self.params.nodes;
        let up = (0..nodes).filter(|&i| self.nodes[i].raft.is_some()).count();
        let node = &self.nodes[index];
        if !self.faulty
            || node.incarnation != incarnation
            || node.raft.is_none()
            || nodes - up >= self.params.crashed_max
        {
            return;
        }
        self.crash(index, true);
    }

    fn leader_index(&self) -> Option<usize> {
        (0..self.params.nodes).find(|&i| {
            self.nodes[i]
                .raft
                .as_ref()
                .is_some_and(|raft| raft.status().role == Role::Leader)
        })
    }

    fn trace_partition(&mut self, what: &str) {
        let blocked = self.network.describe_blocked();
        self.trace.record(self.now, || {
            format!("{} blocked: {blocked}", what.to_uppercase())
        });
    }

    fn transfer_leadership(&mut self) {
        let leader = (0..self.params.nodes).find(|&i| {
            self.nodes[i]
                .raft
                .as_ref()
                .is_some_and(|raft| raft.status().role == Role::Leader)
        });
        let Some(leader) = leader else { return };
        let target = self.random_node_id();
        if target == leader as NodeId + 1 {
            return;
        }
        self.trace.record(self.now, || {
            format!("n{} TRANSFER leadership to n{target}", leader + 1)
        });
        self.input(leader, |raft| {
            let _ = raft.transfer_leadership(target);
        });
    }

    /// The node stops: its pending disk writes and unsent after-persist messages are lost, and
    /// so is everything in memory (log beyond the durable one, applied state, pending requests).
    /// With `quick_restart` it is back within two ticks.
    pub(super) fn crash(&mut self, index: usize, quick_restart: bool) {
        let node = &mut self.nodes[index];
        let lost = node.disk.queue.len();
        node.raft = None;
        node.incarnation += 1;
        node.disk.queue.clear();
        node.disk.busy_until_time = 0;
        node.pending_writes.clear();
        node.pending_reads.clear();
        let (id, incarnation) = (node.id, node.incarnation);
        let durable_term = node.disk.durable.hard_state.term;
        self.checker.forget_volatile_terms(id, durable_term);
        self.trace.record(self.now, || {
            format!("n{id} CRASH ({lost} disk writes lost)")
        });
        // Sometimes a quick reboot (the node is back before anyone's election timeout), which
        // is when forgetting what it knew about the current leader matters most.
        let downtime = if quick_restart || self.rng.chance(1, 3) {
            self.rng.range(1, 2 * TICK_TIME)
        } else {
            TICK_TIME * self.rng.range(2, 40)
        };
        self.schedule(
            self.now + downtime,
            Event::Restart {
                node: index,
                incarnation,
            },
        );
    }

    /// Ends the faulty phase: no more faults or new client operations, a clean network, and
    /// every crashed node restarted.
    pub(super) fn heal_everything(&mut self) {
        self.faulty = false;
        self.network.heal();
        self.network.faults.drop_per_mille = 0;
        self.network.faults.duplicate_per_mille = 0;
        self.network.faults.late_per_mille = 0;
        self.trace.record(self.now, || {
            "HEAL everything: network clean, crashed nodes restart".into()
        });
        for index in 0..self.params.nodes {
            if self.nodes[index].raft.is_none() {
                self.start_node(index);
            }
        }
        // Every idle client invokes one more operation, so liveness means the healed cluster
        // really commits and serves reads again, not just that nobody was waiting.
        for client in 0..self.clients.len() {
            if self.clients[client].outstanding.is_none() {
                self.issue(client);
            }
        }
    }
}
