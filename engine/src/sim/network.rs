//! The simulated network between nodes: seeded drops, duplicates and delays (reordering follows
//! from independent delays), and partitions given as a set of blocked one-way links, so a
//! symmetric partition is just both directions blocked.

use crate::raft::rng::SeededRng;
use crate::raft::NodeId;
use std::collections::{BTreeMap, BTreeSet};

/// How one seed's network misbehaves. Rates are per mille; times in simulated time units.
#[derive(Clone, Debug)]
pub struct NetworkFaults {
    pub drop_per_mille: u64,
    pub duplicate_per_mille: u64,
    pub delay_time_min: u64,
    pub delay_time_max: u64,
    /// Messages held up far longer than the usual delay, up to `late_time_max`: they arrive
    /// terms later, testing that stale messages change nothing.
    pub late_per_mille: u64,
    pub late_time_max: u64,
}

/// Where one sent message goes: nowhere, or to the network with one or two delivery delays.
#[derive(Debug, PartialEq, Eq)]
pub enum Fate {
    Dropped,
    Partitioned,
    Delivered(Vec<u64>),
}

pub struct Network {
    pub faults: NetworkFaults,
    /// One-way links that lose everything sent over them: (from, to).
    blocked: BTreeSet<(NodeId, NodeId)>,
    /// Nodes whose incoming links are congested: extra delay in time units for every message
    /// sent to them (until the next heal).
    slow_inbox: BTreeMap<NodeId, u64>,
}

impl Network {
    pub fn new(faults: NetworkFaults) -> Self {
        Self {
            faults,
            blocked: BTreeSet::new(),
            slow_inbox: BTreeMap::new(),
        }
    }

    pub fn is_blocked(&self, from: NodeId, to: NodeId) -> bool {
        self.blocked.contains(&(from, to))
    }

    pub fn block(&mut self, from: NodeId, to: NodeId) {
        self.blocked.insert((from, to));
    }

    pub fn heal(&mut self) {
        self.blocked.clear();
        self.slow_inbox.clear();
    }

    /// Every message sent to `node` from now on takes `extra_time` longer (until a heal).
    pub fn slow_down_inbox(&mut self, node: NodeId, extra_time: u64) {
        self.slow_inbox.insert(node, extra_time);
    }

    pub fn is_inbox_slow(&self, node: NodeId) -> bool {
        self.slow_inbox.contains_key(&node)
    }

    /// Partitioned links as text, for the trace.
    pub fn describe_blocked(&self) -> String {
        let mut links: Vec<String> = self
            .blocked
            .iter()
            .map(|(from, to)| format!("{from}->{to}"))
            .collect();
        links.extend(
            self.slow_inbox
                .iter()
                .map(|(node, extra)| format!("(inbox of {node} slowed by {extra})")),
        );
        links.join(" ")
    }

    /// Decides what happens to one message sent now.
    pub fn route(&self, rng: &mut SeededRng, from: NodeId, to: NodeId) -> Fate {
        if self.is_blocked(from, to) {
            return Fate::Partitioned;
        }
        if rng.chance(self.faults.drop_per_mille, 1000) {
            return Fate::Dropped;
        }
        let extra = self.slow_inbox.get(&to).copied().unwrap_or(0);
        let mut delays = vec![self.delay(rng) + extra];
        if rng.chance(self.faults.duplicate_per_mille, 1000) {
            delays.push(self.delay(rng) + extra);
        }
        Fate::Delivered(delays)
    }

    pub fn delay(&self, rng: &mut SeededRng) -> u64 {
        if rng.chance(self.faults.late_per_mille, 1000) {
            return rng.range(self.faults.delay_time_max, self.faults.late_time_max + 1);
        }
        rng.range(self.faults.delay_time_min, self.faults.delay_time_max + 1)
    }
}
