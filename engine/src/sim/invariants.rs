//! Raft's safety properties (figure 3 of the paper, plus durability), checked after every step
//! of a simulation. Each check keeps a small registry so it costs O(new entries), not O(log).
//!
//! - Election safety: at most one leader per term, over the whole run.
//! - Leader append-only: a leader never truncates or overwrites its own log within its term.
//! - Log matching: every (index, term) pair ever seen in any log names one payload and one
//!   previous-entry term (by induction, two logs agreeing at (index, term) agree before it).
//! - Leader completeness: a leader of term T holds every entry committed in a term below T.
//! - The commitment rule (5.4.2): a leader moves its commit index only onto an entry of its
//!   own term (the precondition of figure 8's lost commit, caught even when no later leader
//!   happens to overwrite the entry).
//! - State machine safety: no two nodes apply different entries at one index.
//! - Durability: every committed index is durable (persisted, survives a crash, in the log or
//!   in a snapshot) on a majority of each voter set of the latest committed membership.
//! - Snapshots: a snapshot covers only committed entries, carries the term and membership of
//!   its index, and every snapshot at one index holds the same state; a node's commit index
//!   never moves back within one incarnation.

use super::kv::KvStateMachine;
use crate::raft::{
    Entry, LogIndex, Membership, NodeId, Payload, Raft, Role, SnapshotMeta, Status, Term,
};
use std::collections::{BTreeMap, HashMap};

/// A fingerprint of one entry's payload (FNV-1a), so registries hold 16 bytes per entry.
pub fn payload_digest(payload: &Payload) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let mut feed = |byte: u8| {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    };
    match payload {
        Payload::Noop => feed(0),
        Payload::Command(bytes) => {
            feed(1);
            bytes.iter().for_each(|&byte| feed(byte));
        }
        Payload::Membership(membership) => {
            feed(2);
            for (separator, list) in [
                (0xF0, &membership.voters),
                (0xF1, &membership.voters_outgoing),
                (0xF2, &membership.learners),
            ] {
                feed(separator);
                list.iter()
                    .for_each(|id| id.to_le_bytes().iter().for_each(|&byte| feed(byte)));
            }
            feed(0xF3);
            membership.context.iter().for_each(|&byte| feed(byte));
        }
    }
    hash
}

/// One durable state, as the durability check reads it: the snapshot's index (0 without one)
/// and the log after it.
pub struct DurableView<'a> {
    pub node: NodeId,
    pub base_index: LogIndex,
    pub log: &'a [Entry],
}

/// What the checks remember between steps.
pub struct SafetyChecker {
    /// The first property found broken, with what broke it.
    pub violation: Option<String>,
    leaders_by_term: BTreeMap<Term, NodeId>,
    /// (index, term) -> (payload digest, term of the entry before it, the node that held it
    /// first: for entries of a term, the leader that created them).
    log_pairs: HashMap<(LogIndex, Term), (u64, Term, NodeId)>,
    /// committed[i - 1] = (term, digest, the term of the node that first saw i committed).
    committed: Vec<(Term, u64, Term)>,
    /// Per node: the longest durable prefix known to match `committed`.
    durable_matching: BTreeMap<NodeId, LogIndex>,
    /// The committed memberships in index order, the bootstrap one (index 0) first.
    committed_memberships: Vec<(LogIndex, Membership)>,
    /// Every snapshot taken or installed: its index -> its state.
    snapshots: BTreeMap<LogIndex, KvStateMachine>,
}

impl SafetyChecker {
    /// A checker for a cluster that started with `bootstrap` as its membership.
    pub fn new(bootstrap: Membership) -> Self {
        SafetyChecker {
            violation: None,
            leaders_by_term: BTreeMap::new(),
            log_pairs: HashMap::new(),
            committed: Vec::new(),
            durable_matching: BTreeMap::new(),
            committed_memberships: vec![(0, bootstrap)],
            snapshots: BTreeMap::new(),
        }
    }

    /// The membership of the highest committed index (committed memberships only).
    pub fn committed_membership(&self) -> &Membership {
        // Never empty: it starts with the bootstrap membership.
        &self.committed_memberships[self.committed_memberships.len() - 1].1
    }

    /// Registers entry `index` (the next one) as committed.
    fn push_committed(&mut self, entry: &Entry, commit_term: Term) {
        self.committed
            .push((entry.term, payload_digest(&entry.payload), commit_term));
        if let Payload::Membership(membership) = &entry.payload {
            self.committed_memberships
                .push((entry.index, membership.clone()));
        }
    }

    /// The membership in effect at committed index `index`.
    fn committed_membership_at(&self, index: LogIndex) -> &Membership {
        let count = self
            .committed_memberships
            .partition_point(|(at, _)| *at <= index);
        &self.committed_memberships[count.max(1) - 1].1
    }

    /// A snapshot `node` took of its applied state, or installed: it covers committed entries
    /// only, with the term and membership of its index, and the same state as every other
    /// snapshot at that index.
    pub fn check_snapshot(&mut self, node: NodeId, meta: &SnapshotMeta, kv: &KvStateMachine) {
        if meta.index == 0 || meta.index > self.committed_index() {
            self.fail(format!(
                "snapshot: n{node} holds a snapshot at index {} but only {} is committed",
                meta.index,
                self.committed_index()
            ));
            return;
        }
        let (term, _, _) = self.committed[meta.index as usize - 1];
        if term != meta.term {
            self.fail(format!(
                "snapshot: n{node}'s snapshot at index {} says term {}, the committed entry \
                 there has term {term}",
                meta.index, meta.term
            ));
            return;
        }
        let membership = self.committed_membership_at(meta.index).clone();
        // The bootstrap membership is configuration, not a log entry: a node that joined later
        // and was sent the log from its start knows no membership before the first membership
        // entry, and says so with an empty one (it stays a non-voting joiner through it).
        let joiner_before_first_change = meta.membership.voters.is_empty()
            && meta.membership.learners.is_empty()
            && self.committed_membership_at(meta.index) == &self.committed_memberships[0].1
            && !self.committed_memberships[0].1.contains(node);
        if membership != meta.membership && !joiner_before_first_change {
            self.fail(format!(
                "snapshot: n{node}'s snapshot at index {} carries membership {:?}, the \
                 committed one there is {membership:?}",
                meta.index, meta.membership
            ));
            return;
        }
        match self.snapshots.get(&meta.index) {
            Some(known) if known != kv => self.fail(format!(
                "state machine safety: n{node}'s snapshot at index {} holds {kv:?}, another \
                 holds {known:?}",
                meta.index
            )),
            Some(_) => {}
            None => {
                self.snapshots.insert(meta.index, kv.clone());
            }
        }
    }

    /// The state of a checked snapshot at `index` (what an InstallSnapshot delivers).
    pub fn snapshot_state(&self, index: LogIndex) -> Option<&KvStateMachine> {
        self.snapshots.get(&index)
    }

    fn fail(&mut self, text: String) {
        if self.violation.is_none() {
            self.violation = Some(text);
        }
    }

    pub fn committed_index(&self) -> LogIndex {
        self.committed.len() as LogIndex
    }

    /// Election safety, commit registration and leader completeness, from one node's status.
    /// `commit_seen_before` is the commit index this node had at its previous check.
    pub fn observe(&mut self, raft: &Raft, status: &Status, commit_seen_before: LogIndex) {
        if status.commit_index < commit_seen_before {
            self.fail(format!(
                "commit index: n{} moved its commit index back from {commit_seen_before} to {}",
                status.id, status.commit_index
            ));
            return;
        }
        if status.role == Role::Leader {
            match self.leaders_by_term.get(&status.term) {
                Some(&other) if other != status.id => self.fail(format!(
                    "election safety: n{} and n{} are both leader of term {}",
                    other, status.id, status.term
                )),
                Some(_) => {}
                None => {
                    self.leaders_by_term.insert(status.term, status.id);
                    self.check_leader_holds_committed(raft, status, 1);
                }
            }
        }
        self.register_commits(raft, status, commit_seen_before);
    }

    /// Leader completeness: `raft`, leader of `status.term`, holds every entry from `from` on
    /// that was committed in an earlier term.
    fn check_leader_holds_committed(&mut self, raft: &Raft, status: &Status, from: LogIndex) {
        // Entries through the leader's snapshot are in it (checked when it was taken).
        let snapshot_index = raft.log_snapshot().index;
        for index in from.max(snapshot_index + 1)..=self.committed_index() {
            let (term, digest, commit_term) = self.committed[index as usize - 1];
            if commit_term >= status.term {
                continue;
            }
            let held = raft
                .entry(index)
                .map(|entry| (entry.term, payload_digest(&entry.payload)));
            if held != Some((term, digest)) {
                self.fail(format!(
                    "leader completeness: n{} leads term {} but lacks entry {index} (term {term}) \
                     committed in term {commit_term}; it holds {:?}",
                    status.id,
                    status.term,
                    held.map(|(term, _)| term)
                ));
                return;
            }
        }
    }

    fn register_commits(&mut self, raft: &Raft, status: &Status, commit_seen_before: LogIndex) {
        let snapshot_index = raft.log_snapshot().index;
        for index in commit_seen_before + 1..=status.commit_index {
            if index <= snapshot_index && index <= self.committed_index() {
                // In the node's snapshot, which was checked against the registry.
                continue;
            }
            let Some(entry) = raft.entry(index) else {
                self.fail(format!(
                    "n{} reports commit index {} but holds no entry {index}",
                    status.id, status.commit_index
                ));
                return;
            };
            let digest = payload_digest(&entry.payload);
            if index <= self.committed_index() {
                let (term, known, _) = self.committed[index as usize - 1];
                if (term, known) != (entry.term, digest) {
                    self.fail(format!(
                        "state machine safety: n{} committed entry {index} of term {}, but entry \
                         {index} of term {term} was committed before",
                        status.id, entry.term
                    ));
                    return;
                }
            } else {
                let entry = entry.clone();
                self.push_committed(&entry, status.term);
            }
        }
    }

    /// The commitment rule (5.4.2): a leader advances its commit index only to an entry of its
    /// own term; earlier entries commit with it, never by counting their replicas (figure 8).
    pub fn check_leader_commit(&mut self, raft: &Raft, status: &Status) {
        let term = raft.entry(status.commit_index).map(|entry| entry.term);
        if term != Some(status.term) {
            self.fail(format!(
                "commitment rule (5.4.2): n{}, leader of term {}, advanced its commit index to {} \
                 whose entry has term {term:?}, by counting replicas of an earlier term's entry",
                status.id, status.term, status.commit_index
            ));
        }
    }

    /// Leader completeness for commits registered after a leader was elected: called with
    /// every node that is currently leader.
    pub fn check_current_leader(&mut self, raft: &Raft, status: &Status, from: LogIndex) {
        self.check_leader_holds_committed(raft, status, from);
    }

    /// Log matching over `from..=to` of `raft`'s log (the region a Ready just changed).
    pub fn check_log_region(&mut self, raft: &Raft, node: NodeId, from: LogIndex, to: LogIndex) {
        let snapshot_index = raft.log_snapshot().index;
        let from = from.max(snapshot_index + 1);
        let mut previous_term = raft.term_at(from - 1).unwrap_or(0);
        for index in from..=to {
            let Some(entry) = raft.entry(index) else {
                self.fail(format!(
                    "n{node} reports last index {to} but holds no entry {index}"
                ));
                return;
            };
            let digest = payload_digest(&entry.payload);
            let seen =
                *self
                    .log_pairs
                    .entry((index, entry.term))
                    .or_insert((digest, previous_term, node));
            if (seen.0, seen.1) != (digest, previous_term) {
                self.fail(format!(
                    "log matching: n{node} holds entry {index} of term {} after an entry of term \
                     {previous_term}{}; another log has it after an entry of term {}{}",
                    entry.term,
                    if seen.0 == digest {
                        ""
                    } else {
                        " with a different payload"
                    },
                    seen.1,
                    if seen.0 == digest {
                        ""
                    } else {
                        " (payloads differ)"
                    },
                ));
                return;
            }
            previous_term = entry.term;
        }
    }

    /// `node` crashed with only `durable_term` durable. Nothing it did in a later term left
    /// it: every message sent while a term is not durable waits for the persist, and so do
    /// its own entries' acknowledgements. A leadership it held in such a term, and the entries
    /// it created as that leader, existed only in its lost memory; it may lead that term again
    /// with other entries without breaking election safety or log matching.
    pub fn forget_volatile_terms(&mut self, node: NodeId, durable_term: Term) {
        self.leaders_by_term
            .retain(|term, leader| *term <= durable_term || *leader != node);
        self.log_pairs
            .retain(|(_, term), (_, _, first)| *term <= durable_term || *first != node);
    }

    /// State machine safety: `node` applies `entry`.
    pub fn observe_apply(&mut self, node: NodeId, entry: &Entry, node_term: Term) {
        let digest = payload_digest(&entry.payload);
        let index = entry.index as usize;
        if index == 0 || index > self.committed.len() + 1 {
            // Applied before any node reported it committed: it must still match once it is.
            if index == 0 {
                self.fail(format!("n{node} applied an entry with index 0"));
            }
            return;
        }
        if index == self.committed.len() + 1 {
            self.push_committed(entry, node_term);
            return;
        }
        let (term, known, _) = self.committed[index - 1];
        if (term, known) != (entry.term, digest) {
            self.fail(format!(
                "state machine safety: n{node} applies entry {index} of term {}, but entry {index} \
                 of term {term} was committed/applied before",
                entry.term
            ));
        }
    }

    /// Leader append-only: a Ready from a node that led `term` before and after the input.
    pub fn check_leader_ready(
        &mut self,
        node: NodeId,
        term: Term,
        last_index_before: LogIndex,
        truncate_from: Option<LogIndex>,
        entries: &[Entry],
    ) {
        if let Some(from) = truncate_from {
            self.fail(format!(
                "leader append-only: n{node}, leader of term {term}, truncates its log from {from}"
            ));
        } else if let Some(first) = entries.first() {
            if first.index <= last_index_before {
                self.fail(format!(
                    "leader append-only: n{node}, leader of term {term}, rewrites entry {} \
                     (its last index was {last_index_before})",
                    first.index
                ));
            }
        }
    }

    /// Durability: every committed index is durable (in the log, or in the snapshot it
    /// starts after) on a majority of each voter set of the latest committed membership.
    pub fn check_durable_majority<'a>(&mut self, durable: impl Iterator<Item = DurableView<'a>>) {
        let committed = self.committed_index();
        if committed == 0 {
            return;
        }
        let mut holders: Vec<NodeId> = Vec::new();
        for view in durable {
            let matching = self.durable_matching.entry(view.node).or_insert(0);
            let last = view.base_index + view.log.len() as LogIndex;
            *matching = (*matching).min(last);
            // A snapshot holds only committed entries (checked when taken or installed).
            *matching = (*matching).max(view.base_index.min(committed));
            while *matching < committed {
                let next = *matching;
                let (term, digest, _) = self.committed[next as usize];
                let entry = view.log.get((next - view.base_index) as usize);
                match entry {
                    Some(entry)
                        if entry.term == term && payload_digest(&entry.payload) == digest =>
                    {
                        *matching += 1;
                    }
                    _ => break,
                }
            }
            if *matching >= committed {
                holders.push(view.node);
            }
        }
        // Once a joint membership is committed every future leader needs a majority of its
        // incoming voters (the joint and the final membership both require one), and the
        // leader rightly counts the final membership as soon as it appends it. So the
        // incoming voters decide; the outgoing ones only while the joint one is uncommitted,
        // when the latest committed membership is still the old, simple one.
        let voters = self.committed_membership().voters.clone();
        let held = voters
            .iter()
            .filter(|voter| holders.contains(voter))
            .count();
        if held < voters.len() / 2 + 1 {
            self.fail(format!(
                "durability: committed index {committed} is durable on only {held} of the \
                 voters {voters:?} (a crash of the others would lose it)"
            ));
        }
    }

    /// A node's durable log was cut from `from`: its matching prefix can be no longer.
    pub fn durable_truncated(&mut self, node: NodeId, from: LogIndex) {
        if let Some(matching) = self.durable_matching.get_mut(&node) {
            *matching = (*matching).min(from.saturating_sub(1));
        }
    }
}
