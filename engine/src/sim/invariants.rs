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
//! - Durability: every committed index is durable (persisted, survives a crash) on a majority.

use crate::raft::{Entry, LogIndex, NodeId, Payload, Raft, Role, Status, Term};
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
    }
    hash
}

/// What the checks remember between steps.
#[derive(Default)]
pub struct SafetyChecker {
    /// The first property found broken, with what broke it.
    pub violation: Option<String>,
    leaders_by_term: BTreeMap<Term, NodeId>,
    /// (index, term) -> (payload digest, term of the entry before it).
    log_pairs: HashMap<(LogIndex, Term), (u64, Term)>,
    /// committed[i - 1] = (term, digest, the term of the node that first saw i committed).
    committed: Vec<(Term, u64, Term)>,
    /// Per node: the longest durable prefix known to match `committed`.
    durable_matching: BTreeMap<NodeId, LogIndex>,
}

impl SafetyChecker {
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
        for index in from..=self.committed_index() {
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
        for index in commit_seen_before + 1..=status.commit_index {
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
                self.committed.push((entry.term, digest, status.term));
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
        let mut previous_term = match from {
            0 | 1 => 0,
            _ => raft.entry(from - 1).map(|entry| entry.term).unwrap_or(0),
        };
        for index in from.max(1)..=to {
            let Some(entry) = raft.entry(index) else {
                self.fail(format!(
                    "n{node} reports last index {to} but holds no entry {index}"
                ));
                return;
            };
            let digest = payload_digest(&entry.payload);
            let seen = *self
                .log_pairs
                .entry((index, entry.term))
                .or_insert((digest, previous_term));
            if seen != (digest, previous_term) {
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
            self.committed.push((entry.term, digest, node_term));
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

    /// Durability: every committed index is in the durable log of a majority. `durable_logs`
    /// gives each node's durable log; `truncated` says which were cut at which index since the
    /// last call.
    pub fn check_durable_majority<'a>(
        &mut self,
        durable_logs: impl Iterator<Item = (NodeId, &'a [Entry])>,
        voters: usize,
    ) {
        let committed = self.committed_index();
        if committed == 0 {
            return;
        }
        let mut holders = 0;
        for (node, log) in durable_logs {
            let matching = self.durable_matching.entry(node).or_insert(0);
            *matching = (*matching).min(log.len() as LogIndex);
            while *matching < committed {
                let next = *matching as usize;
                let (term, digest, _) = self.committed[next];
                let entry = &log[next..].first();
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
                holders += 1;
            }
        }
        if holders < voters / 2 + 1 {
            self.fail(format!(
                "durability: committed index {committed} is durable on only {holders} of {voters} \
                 nodes (a crash of the others would lose it)"
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
