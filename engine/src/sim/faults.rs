//! The fault schedule: crashes and restarts, symmetric and one-way partitions and their
//! healing, leadership transfers; and the final heal before the liveness check.

use super::params::TICK_TIME;
use super::world::{Event, World};
use crate::raft::{NodeId, Role};

impl World {
    /// One random fault action.
    pub(super) fn fault(&mut self) {
        let nodes = self.params.nodes;
        match self.rng.range(0, 16) {
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
                    self.crash(leader);
                }
            }
            0 | 1 => {
                let up: Vec<usize> = (0..nodes)
                    .filter(|&i| self.nodes[i].raft.is_some())
                    .collect();
                if nodes - up.len() < self.params.crashed_max && !up.is_empty() {
                    let victim = up[self.rng.range(0, up.len() as u64) as usize];
                    self.crash(victim);
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
    pub(super) fn crash(&mut self, index: usize) {
        let node = &mut self.nodes[index];
        let lost = node.disk.queue.len();
        node.raft = None;
        node.incarnation += 1;
        node.disk.queue.clear();
        node.disk.busy_until_time = 0;
        node.pending_writes.clear();
        node.pending_reads.clear();
        let (id, incarnation) = (node.id, node.incarnation);
        self.trace.record(self.now, || {
            format!("n{id} CRASH ({lost} disk writes lost)")
        });
        // Sometimes a quick reboot (the node is back before anyone's election timeout), which
        // is when forgetting what it knew about the current leader matters most.
        let downtime = if self.rng.chance(1, 3) {
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
