//! A tiny deterministic driver for the Raft core tests: a few `Raft` members, an in-memory
//! "disk" each, and a FIFO network with cuttable links. It carries out each `Ready` in the
//! documented order (send, persist, report persisted and send after-persist messages, apply,
//! collect reads), and can hold a member's persistence back to test what waits for it.
#![allow(dead_code)]

use std::collections::{HashSet, VecDeque};

use bytes::Bytes;
use tern_engine::raft::{
    Config, Entry, HardState, LogIndex, Message, NodeId, Raft, ReadConsistency, ReadOutcome, Ready,
    Recovered, Role, SnapshotMeta, Term,
};

/// Most deliveries one `settle` performs: a bound, so a livelock fails instead of hanging.
const DELIVERIES_MAX: usize = 100_000;

/// Small timeouts so tests tick little: election in [10, 20), heartbeat every 2 ticks,
/// lease 10 - 2 = 8 ticks.
pub fn config(id: NodeId, voter_count: u64) -> Config {
    let mut config = Config::new(id, (1..=voter_count).collect());
    config.election_timeout_ticks_min = 10;
    config.election_timeout_ticks_max = 20;
    config.heartbeat_interval_ticks = 2;
    config.clock_drift_margin_ticks = 2;
    config.seed = 7;
    config
}

/// What one member's driver made durable: the snapshot the log starts after, if any, and the
/// entries after it.
#[derive(Clone, Debug, Default)]
pub struct Disk {
    pub hard_state: HardState,
    pub snapshot: Option<SnapshotMeta>,
    pub entries: Vec<Entry>,
}

impl Disk {
    fn base(&self) -> LogIndex {
        self.snapshot.as_ref().map_or(0, |snapshot| snapshot.index)
    }

    fn persist(&mut self, ready: &Ready) {
        if let Some(snapshot) = &ready.snapshot {
            self.entries.clear();
            self.snapshot = Some(snapshot.clone());
        }
        if let Some(from) = ready.truncate_from {
            let keep = from.saturating_sub(1).saturating_sub(self.base());
            self.entries.truncate(keep as usize);
        }
        for entry in &ready.entries {
            assert_eq!(
                entry.index,
                self.base() + self.entries.len() as LogIndex + 1,
                "Ready entries must be contiguous"
            );
            self.entries.push(entry.clone());
        }
        if let Some(hard_state) = ready.hard_state {
            self.hard_state = hard_state;
        }
    }

    fn last(&self) -> (LogIndex, Term) {
        match (self.entries.last(), &self.snapshot) {
            (Some(entry), _) => (entry.index, entry.term),
            (None, Some(snapshot)) => (snapshot.index, snapshot.term),
            (None, None) => (0, 0),
        }
    }
}

/// The persist half of a Ready, held back while a member's disk is "slow".
struct HeldPersist {
    ready: Ready,
}

pub struct Cluster {
    pub nodes: Vec<Raft>,
    pub disks: Vec<Disk>,
    pub network: VecDeque<Message>,
    /// Directed links (from, to) that drop everything.
    pub cut: HashSet<(NodeId, NodeId)>,
    pub applied: Vec<Vec<Entry>>,
    pub reads: Vec<Vec<ReadOutcome>>,
    /// Every message ever sent, for tests that count what went out.
    pub sent: Vec<Message>,
    held: Vec<Option<VecDeque<HeldPersist>>>,
    pub apply_paused: HashSet<NodeId>,
}

impl Cluster {
    /// `voter_count` fresh members built from `configure(id)`.
    pub fn with(voter_count: u64, configure: impl Fn(NodeId) -> Config) -> Self {
        let recovered = (1..=voter_count).map(|_| Recovered::default()).collect();
        Self::recovered(voter_count, configure, recovered)
    }

    pub fn new(voter_count: u64) -> Self {
        Self::with(voter_count, |id| config(id, voter_count))
    }

    /// Members starting from the given durable states.
    pub fn recovered(
        voter_count: u64,
        configure: impl Fn(NodeId) -> Config,
        recovered: Vec<Recovered>,
    ) -> Self {
        let count = voter_count as usize;
        let disks = recovered
            .iter()
            .map(|state| Disk {
                hard_state: state.hard_state,
                snapshot: state.snapshot.clone(),
                entries: state.entries.clone(),
            })
            .collect();
        let nodes = recovered
            .into_iter()
            .enumerate()
            .map(|(position, state)| {
                Raft::new(configure(position as NodeId + 1), state).expect("valid config")
            })
            .collect();
        Self {
            nodes,
            disks,
            network: VecDeque::new(),
            cut: HashSet::new(),
            applied: vec![Vec::new(); count],
            reads: vec![Vec::new(); count],
            sent: Vec::new(),
            held: (0..count).map(|_| None).collect(),
            apply_paused: HashSet::new(),
        }
    }

    pub fn node(&mut self, id: NodeId) -> &mut Raft {
        &mut self.nodes[id as usize - 1]
    }

    pub fn ids(&self) -> Vec<NodeId> {
        (1..=self.nodes.len() as NodeId).collect()
    }

    pub fn role(&mut self, id: NodeId) -> Role {
        self.node(id).status().role
    }

    pub fn term(&mut self, id: NodeId) -> Term {
        self.node(id).status().term
    }

    pub fn commit(&mut self, id: NodeId) -> LogIndex {
        self.node(id).status().commit_index
    }

    /// The leader, if exactly one member of the highest term leads.
    pub fn leader(&mut self) -> Option<NodeId> {
        let leaders: Vec<NodeId> = self
            .ids()
            .into_iter()
            .filter(|id| self.role(*id) == Role::Leader)
            .collect();
        leaders
            .into_iter()
            .max_by_key(|id| self.nodes[*id as usize - 1].status().term)
    }

    pub fn isolate(&mut self, id: NodeId) {
        for other in self.ids() {
            if other != id {
                self.cut.insert((id, other));
                self.cut.insert((other, id));
            }
        }
    }

    pub fn heal(&mut self) {
        self.cut.clear();
    }

    /// Holds `id`'s persistence back (its disk is slow) until `release_persist`.
    pub fn hold_persist(&mut self, id: NodeId) {
        self.held[id as usize - 1].get_or_insert_with(VecDeque::new);
    }

    /// Completes every held persist of `id`, in order, and stops holding.
    pub fn release_persist(&mut self, id: NodeId) {
        let Some(held) = self.held[id as usize - 1].take() else {
            return;
        };
        for persist in held {
            self.finish_persist(id, persist.ready);
        }
    }

    /// Crashes `id` and starts it again from its disk: whatever was not persisted is lost,
    /// including held persists and their after-persist messages.
    pub fn restart(&mut self, id: NodeId, configure: impl Fn(NodeId) -> Config) {
        let position = id as usize - 1;
        self.held[position] = None;
        let disk = &self.disks[position];
        let recovered = Recovered {
            hard_state: disk.hard_state,
            snapshot: disk.snapshot.clone(),
            entries: disk.entries.clone(),
        };
        self.nodes[position] =
            Raft::new(configure(id), recovered).expect("recovered state is valid");
        self.applied[position].clear();
    }

    /// Carries out one Ready of `id`, if it has one.
    pub fn process(&mut self, id: NodeId) -> bool {
        if !self.node(id).has_ready() {
            return false;
        }
        let mut ready = self.node(id).ready();
        let messages = std::mem::take(&mut ready.messages);
        self.send_all(messages);
        let committed = std::mem::take(&mut ready.committed_entries);
        let reads = std::mem::take(&mut ready.reads);
        match self.held[id as usize - 1].as_mut() {
            Some(held) => held.push_back(HeldPersist { ready }),
            None => self.finish_persist(id, ready),
        }
        self.apply(id, committed);
        self.reads[id as usize - 1].extend(reads);
        true
    }

    fn finish_persist(&mut self, id: NodeId, mut ready: Ready) {
        let position = id as usize - 1;
        self.disks[position].persist(&ready);
        let (index, term) = self.disks[position].last();
        if !ready.entries.is_empty() || ready.truncate_from.is_some() || ready.snapshot.is_some() {
            self.nodes[position].on_persisted(index, term);
        }
        let after = std::mem::take(&mut ready.messages_after_persist);
        self.send_all(after);
    }

    fn apply(&mut self, id: NodeId, committed: Vec<Entry>) {
        if committed.is_empty() {
            return;
        }
        let position = id as usize - 1;
        let last = committed.last().map(|entry| entry.index).unwrap_or(0);
        self.applied[position].extend(committed);
        if !self.apply_paused.contains(&id) {
            self.nodes[position].on_applied(last);
        }
    }

    fn send_all(&mut self, messages: Vec<Message>) {
        for message in messages {
            self.sent.push(message.clone());
            if !self.cut.contains(&(message.from, message.to)) {
                self.network.push_back(message);
            }
        }
    }

    /// Delivers one message; returns false when the network is empty.
    pub fn deliver_one(&mut self) -> bool {
        let Some(message) = self.network.pop_front() else {
            return false;
        };
        // A message to a node outside the cluster (an answer to a garbage sender) has no
        // address to reach, as on a real network.
        let outside = message.to == 0 || message.to as usize > self.nodes.len();
        if outside || self.cut.contains(&(message.from, message.to)) {
            return true;
        }
        let to = message.to;
        let _ = self.node(to).step(message);
        true
    }

    /// Runs every Ready and delivers every message until nothing moves.
    pub fn settle(&mut self) {
        for _ in 0..DELIVERIES_MAX {
            let mut moved = false;
            for id in self.ids() {
                moved |= self.process(id);
            }
            moved |= self.deliver_one();
            if !moved {
                return;
            }
        }
        panic!("the cluster did not settle within {DELIVERIES_MAX} deliveries");
    }

    /// Like `settle`, but calls `check` after every delivery.
    pub fn settle_checking(&mut self, mut check: impl FnMut(&mut Cluster)) {
        for _ in 0..DELIVERIES_MAX {
            let mut moved = false;
            for id in self.ids() {
                moved |= self.process(id);
            }
            moved |= self.deliver_one();
            check(self);
            if !moved {
                return;
            }
        }
        panic!("the cluster did not settle within {DELIVERIES_MAX} deliveries");
    }

    /// Ticks every member `ticks` times, settling after each tick.
    pub fn tick_all(&mut self, ticks: u64) {
        for _ in 0..ticks {
            for id in self.ids() {
                self.node(id).tick();
            }
            self.settle();
        }
    }

    /// Ticks only `id` until its election timer fires, then settles: it becomes leader when it
    /// can win.
    pub fn elect(&mut self, id: NodeId) {
        let ticks = self.node(id).election_timeout_ticks();
        for _ in 0..ticks {
            self.node(id).tick();
        }
        self.settle();
    }

    pub fn propose(&mut self, id: NodeId, payloads: &[&str]) -> (LogIndex, LogIndex, Term) {
        let commands = payloads
            .iter()
            .map(|text| Bytes::copy_from_slice(text.as_bytes()))
            .collect();
        self.node(id).propose(commands).expect("proposal accepted")
    }

    /// The (index, term) pairs of `id`'s in-memory log.
    pub fn log_of(&mut self, id: NodeId) -> Vec<(LogIndex, Term)> {
        let status = self.node(id).status();
        (status.first_index..=status.last_index)
            .map(|index| {
                let entry = self.node(id).entry(index).expect("entry within the log");
                (entry.index, entry.term)
            })
            .collect()
    }
}

/// A durable state holding entries of the given terms (index 1 first).
pub fn recovered_with_terms(terms: &[Term], current_term: Term) -> Recovered {
    let entries = terms
        .iter()
        .enumerate()
        .map(|(position, term)| Entry {
            index: position as LogIndex + 1,
            term: *term,
            payload: tern_engine::raft::Payload::Command(Bytes::from_static(b"x")),
        })
        .collect();
    Recovered {
        hard_state: HardState {
            term: current_term,
            voted_for: None,
            commit: 0,
        },
        snapshot: None,
        entries,
    }
}

/// Figure 8: node 1 holds an entry of old term 2 at index 2 that nobody else has; it becomes
/// leader of term 4 and sends one entry per request (append_entries_max 1), so there is a
/// moment when the term-2 entry is on a majority (nodes 1 and 2) but its own Noop is not.
/// Returns whether commit ever covered index 2 while node 2 did not yet hold the term-4 entry,
/// and whether that moment (old entry on a majority) was observed at all.
pub fn figure_8_commits_old_entry_early(tweak: impl Fn(&mut Config) + Copy) -> (bool, bool) {
    let configure = move |id| {
        let mut config = config(id, 3);
        config.append_entries_max = 1;
        // Restarted members with check-quorum ignore a campaign for an election timeout.
        config.check_quorum = false;
        tweak(&mut config);
        config
    };
    let recovered = vec![
        recovered_with_terms(&[1, 2], 3),
        recovered_with_terms(&[1], 3),
        recovered_with_terms(&[1], 3),
    ];
    let mut cluster = Cluster::recovered(3, configure, recovered);
    // Node 3 takes no part, so only nodes 1 and 2 can form a majority.
    cluster.isolate(3);
    cluster.cut.remove(&(1, 3));
    cluster.cut.remove(&(3, 1));
    let timeout = cluster.node(1).election_timeout_ticks();
    for _ in 0..timeout {
        cluster.node(1).tick();
    }
    let mut early = false;
    let mut old_entry_on_majority = false;
    cluster.settle_checking(|cluster| {
        let node_2_has_new = cluster.node(2).entry(3).is_some_and(|e| e.term == 4);
        let node_2_has_old = cluster.node(2).entry(2).is_some_and(|e| e.term == 2);
        let node_3_has_new = cluster.node(3).entry(3).is_some_and(|e| e.term == 4);
        if node_2_has_old && !node_2_has_new && !node_3_has_new {
            old_entry_on_majority = true;
            if cluster.commit(1) >= 2 {
                early = true;
            }
        }
    });
    assert_eq!(cluster.role(1), Role::Leader);
    (early, old_entry_on_majority)
}

/// The lease-expiry scenario: node 1 of `cluster` is elected, both followers' messages to it are
/// cut, and 8 ticks pass on node 1 (the whole lease with `config`'s timings), so it is still
/// leader (check-quorum has not fired) but its lease has run out. Then it is asked for lease
/// read 4. Returns whether that read was served; the links stay cut.
pub fn lease_read_served_after_followers_went_silent(cluster: &mut Cluster) -> bool {
    cluster.elect(1);
    cluster.tick_all(2);
    cluster.cut.insert((2, 1));
    cluster.cut.insert((3, 1));
    for _ in 0..8 {
        cluster.node(1).tick();
    }
    cluster.settle();
    assert_eq!(
        cluster.role(1),
        Role::Leader,
        "check-quorum fired too early"
    );
    cluster
        .node(1)
        .request_read(4, ReadConsistency::Lease)
        .unwrap();
    cluster.settle();
    cluster.reads[0]
        .iter()
        .any(|read| matches!(read, ReadOutcome::Ready { id: 4, .. }))
}
