//! The Raft consensus algorithm as a pure, deterministic state machine: no I/O, no clock, no
//! threads, no unseeded randomness. Inputs are method calls (`tick`, `step`, `propose`,
//! `request_read`, `transfer_leadership`, `on_persisted`, `on_applied`); outputs are collected in
//! a `Ready` that the driver takes with `ready()` and carries out. See ARCHITECTURE.md.
//!
//! CONTRACT (the public API below is shared by the core, the simulator and the node; extend it,
//! but change a signature only together with every caller).
//!
//! # Where things are
//!
//! | file | concept |
//! |---|---|
//! | `step.rs` | receiving a message: validation (never panic, refuse before changing state), term rules |
//! | `election.rs` | timeouts, pre-vote, votes, role changes, the check-quorum vote guard |
//! | `replication.rs` | the leader: sending entries, answers, fast backtracking, heartbeats, commit rule |
//! | `follower.rs` | the follower: consistency check, conflict truncation, learning the commit index |
//! | `read_only.rs` | ReadIndex and lease reads |
//! | `log.rs` | the in-memory log above the snapshot and its persist/commit/apply cursors |
//! | `snapshot.rs` | compaction, sending a snapshot to a follower that needs compacted entries, installing one |
//! | `membership.rs` | the membership the log defines (latest entry wins), at any index |
//! | `membership_change.rs` | proposing changes: learners, promotion and removal through joint consensus |
//! | `progress.rs`, `inflights.rs` | per-member replication state and in-flight window |
//! | `quorum.rs` | majority arithmetic, single and joint |
//!
//! # Design notes (why, not what)
//!
//! - Durability ordering is enforced by where a message is queued, not by the driver's care:
//!   granted votes, successful AppendResponses, and any message queued while a new term or vote is
//!   not yet handed out go to `messages_after_persist`. The driver persists Readies in order,
//!   so an ack in Ready N also covers entries handed out in earlier Readies.
//! - `on_persisted(i, t)` is ignored unless our entry `i` still has term `t` (a report that
//!   predates a truncation); by log matching an equal (index, term) means an equal prefix.
//! - A follower never truncates at or below its commit index (refused as malformed), and skips
//!   the part of a request below it: committed entries match every later leader (5.4.3).
//! - Heartbeats carry `min(commit, match of that follower)`, so a follower never learns a commit
//!   index beyond what it is known to share with the leader.
//! - Lost messages: a probe is resent on the next heartbeat answer; a replicate-state follower
//!   whose match stays below the leader's last index for an election-timeout interval goes back
//!   to probe (the window alone cannot tell lost from slow).
//! - Leases: measured from the start tick of the newest heartbeat round a majority answered, for
//!   `lease_duration_ticks()`. Once a TimeoutNow was sent in this term, no lease read is served
//!   (voters grant a transfer campaign at any time). A member restarted with a durable term
//!   ignores vote requests for its first minimum election timeout, since it may have answered a
//!   round a lease counts on just before crashing.
//! - Check-quorum is evaluated every tick from the tick each follower was last heard from, so an
//!   isolated leader steps down exactly one minimum election timeout after losing its majority.
//! - Membership (thesis chapter 4): the latest membership entry in a member's log is in effect,
//!   committed or not. Voters change only through a joint membership (old and new voter sets,
//!   each needing its own majority for elections and commitment); the leader leaves it by itself
//!   once it is committed. One change at a time, and only once the leader has committed an entry
//!   of its term. A leader that is not a voter of a committed membership steps down. Learners
//!   get the log but never vote or count. Messages from members this node does not know are
//!   accepted (a lagging member's membership may predate the leader's own addition); answers
//!   from non-members are ignored.
//! - Snapshots (paper section 7): the driver snapshots its applied state and calls `compact`;
//!   the log then starts after that index. A follower that needs a compacted entry is sent an
//!   `InstallSnapshot` carrying only the snapshot's metadata; the driver ships the state and
//!   reports back with `report_snapshot`. A follower installs only a snapshot beyond its commit
//!   index, and keeps its log when it already holds the snapshot's last entry.

pub mod config;
pub mod ready;
pub mod rng;
pub mod types;

mod election;
mod follower;
mod inflights;
mod log;
mod membership;
mod membership_change;
mod progress;
mod quorum;
mod read_only;
mod replication;
mod snapshot;
mod step;

#[cfg(feature = "planted-bugs")]
pub use config::PlantedBug;
pub use config::{Config, ConfigError};
pub use membership_change::{MembershipChange, MembershipError};
pub use ready::{ReadConsistency, ReadId, ReadOutcome, Ready};
pub use snapshot::CompactError;
pub use types::{
    Entry, HardState, LogIndex, Membership, Message, MessageBody, NodeId, Payload, Role,
    SnapshotMeta, Term,
};

use std::collections::BTreeMap;

use bytes::Bytes;

/// The durable state a member restarts from: its newest snapshot and the log after it.
#[derive(Clone, Debug, Default)]
pub struct Recovered {
    /// The last durable term, vote and commit index.
    pub hard_state: HardState,
    /// The snapshot the durable log starts after (the driver has restored its state machine
    /// from it), if any. Without one the membership is the configuration's `voters`.
    pub snapshot: Option<SnapshotMeta>,
    /// The durable log after the snapshot: contiguous from the snapshot's index + 1 (from 1
    /// without a snapshot).
    pub entries: Vec<Entry>,
}

/// Why a proposal was refused. Nothing of a refused proposal enters the log.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ProposeError {
    /// Proposals go to the leader; `leader_hint` names it when known.
    #[error("not the leader; the leader is {leader_hint:?}")]
    NotLeader { leader_hint: Option<NodeId> },
    /// The leader is handing over leadership and accepts nothing meanwhile.
    #[error("a leadership transfer is in progress; retry shortly")]
    TransferInProgress,
    /// Too many entries wait for commit (`uncommitted_entries_max`).
    #[error(
        "{uncommitted} entries wait for commit (uncommitted_entries_max {max}); retry shortly"
    )]
    Backpressure { uncommitted: u64, max: u64 },
    /// A proposal without commands.
    #[error("empty proposal: a proposal carries at least one command")]
    Empty,
}

/// Why a message was not accepted (it is dropped; the core's state is unchanged).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum StepError {
    /// The message is addressed to another member.
    #[error("message from {from} to {to}: this is node {me}")]
    WrongRecipient {
        from: NodeId,
        to: NodeId,
        me: NodeId,
    },
    /// The sender is not a voter of this cluster.
    #[error("message from {from}, which is not a voter of this cluster")]
    UnknownSender { from: NodeId },
    /// The message breaks a rule no correct member breaks; `reason` says which.
    #[error("malformed message from {from}: {reason}")]
    Malformed { from: NodeId, reason: String },
}

/// Why a read request was refused at once.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ReadError {
    /// A lease read was asked of a member configured without `lease_reads`.
    #[error("lease reads are off in this configuration (set lease_reads)")]
    LeaseReadsDisabled,
    /// Too many reads wait already (`pending_reads_max`).
    #[error("{pending} reads are already waiting (pending_reads_max {max}); retry shortly")]
    Backpressure { pending: usize, max: usize },
}

/// Why a leadership transfer was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TransferError {
    /// Only the leader can hand leadership over; `leader_hint` names it when known.
    #[error("not the leader; the leader is {leader_hint:?}")]
    NotLeader { leader_hint: Option<NodeId> },
    /// The target is not a voter of this cluster (learners cannot lead).
    #[error("node {0} is not a voter of this cluster")]
    UnknownTarget(NodeId),
}

/// A snapshot of the core's state, for status commands, logs and the simulator's checks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Status {
    /// This member's id.
    pub id: NodeId,
    /// The role it plays in `term`.
    pub role: Role,
    /// Its current term.
    pub term: Term,
    /// Whom it voted for in `term`, if anyone.
    pub voted_for: Option<NodeId>,
    /// The leader of `term` it knows of (itself when leading).
    pub leader: Option<NodeId>,
    /// The first index whose entry its log holds (one past its snapshot's index).
    pub first_index: LogIndex,
    /// The last index its log holds (durable or not).
    pub last_index: LogIndex,
    /// Highest index this member knows committed.
    pub commit_index: LogIndex,
    /// Highest index the driver reported applied.
    pub applied_index: LogIndex,
    /// Highest index the driver reported durable.
    pub persisted_index: LogIndex,
}

/// A leadership transfer in progress (thesis 3.10).
#[derive(Clone, Copy, Debug)]
struct Transfer {
    target: NodeId,
    elapsed_ticks: u64,
}

/// The planted bugs, as a type that exists in every build so the checks compile everywhere;
/// without the `planted-bugs` feature `Raft::bug` is always false.
#[cfg(feature = "planted-bugs")]
use config::PlantedBug as Bug;
#[cfg(not(feature = "planted-bugs"))]
#[derive(Clone, Copy)]
enum Bug {
    VoteForStaleLog,
    CommitPreviousTermByCount,
    KeepConflictingSuffix,
    LeaderCountsSelfBeforePersist,
    LeaseIgnoresDriftMargin,
    VoteNotPersisted,
    InstallSnapshotBelowCommit,
}

/// One member's Raft state machine.
pub struct Raft {
    config: Config,
    id: NodeId,
    rng: rng::SeededRng,
    term: Term,
    voted_for: Option<NodeId>,
    role: Role,
    leader: Option<NodeId>,
    log: log::RaftLog,
    /// Logical time: ticks since this member started (leases are measured in it).
    now_ticks: u64,
    /// Ticks since a leader was last heard from (or since the last campaign).
    election_elapsed_ticks: u64,
    /// This term's randomized timeout, in `[election_timeout_ticks_min, _max)`.
    election_timeout_ticks: u64,
    heartbeat_elapsed_ticks: u64,
    check_quorum_elapsed_ticks: u64,
    /// The leader's view of every other member (voters of both sets and learners). Kept in
    /// step with the membership while leading; rebuilt when a term's leadership starts.
    progress: BTreeMap<NodeId, progress::Progress>,
    /// The membership version `progress` was last synced with.
    progress_membership_version: u64,
    /// Votes received in the current (pre-)campaign (our own included).
    votes: BTreeMap<NodeId, bool>,
    transfer: Option<Transfer>,
    /// A TimeoutNow went out this term: a voter may now vote at any time, so no more leases.
    timeout_now_sent: bool,
    reads: read_only::ReadQueue,
    /// Started from a durable term above 0: it may have followed a leader before a crash.
    restarted: bool,
    /// Messages and read answers gathered for the next `Ready` (its other fields stay empty).
    out: Ready,
    /// The hard state as last handed to the driver.
    hard_state_handed: HardState,
    /// A term or vote change was handed out in a Ready when the log had been handed out through
    /// this index; it is known durable once the persisted index passes it (Readies persist in
    /// order). Until then every message waits for persist, so none carries it early.
    term_vote_unconfirmed_after: Option<LogIndex>,
    /// Reused buffer for quorum computations (no allocation per acknowledgement).
    scratch: Vec<u64>,
}

impl Raft {
    /// Starts a member from its durable state. Fails on an invalid config or an inconsistent
    /// recovered state (entries not contiguous from 1, commit beyond the log, ...).
    pub fn new(config: Config, recovered: Recovered) -> Result<Self, ConfigError> {
        config.validate()?;
        validate_recovered(&recovered)?;
        let id = config.id;
        let mut rng = rng::SeededRng::for_stream(config.seed, id);
        let election_timeout_ticks = rng.range(
            config.election_timeout_ticks_min,
            config.election_timeout_ticks_max,
        );
        let hard_state = recovered.hard_state;
        let log = log::RaftLog::recovered(
            recovered.snapshot,
            Membership::with_voters(&config.voters),
            recovered.entries,
            hard_state.commit,
        );
        Ok(Self {
            rng,
            term: hard_state.term,
            voted_for: hard_state.voted_for,
            role: Role::Follower,
            leader: None,
            log,
            now_ticks: 0,
            election_elapsed_ticks: 0,
            election_timeout_ticks,
            heartbeat_elapsed_ticks: 0,
            check_quorum_elapsed_ticks: 0,
            progress: BTreeMap::new(),
            progress_membership_version: u64::MAX,
            votes: BTreeMap::new(),
            transfer: None,
            timeout_now_sent: false,
            reads: read_only::ReadQueue::default(),
            restarted: hard_state.term > 0,
            out: Ready::default(),
            hard_state_handed: hard_state,
            term_vote_unconfirmed_after: None,
            scratch: Vec::new(),
            id,
            config,
        })
    }

    /// Advances logical time by one tick: election timeouts, heartbeats, check-quorum, leases.
    pub fn tick(&mut self) {
        self.now_ticks += 1;
        if self.role == Role::Leader {
            self.tick_leader();
        } else {
            self.tick_election();
        }
    }

    /// Feeds one message from a peer.
    pub fn step(&mut self, message: Message) -> Result<(), StepError> {
        self.step_message(message)
    }

    /// Appends a batch of commands, one entry each, as leader. Returns the (first, last) index
    /// assigned and the term: a command committed at that index with that term took effect; if
    /// another term's entry is committed there, it did not.
    ///
    /// Backpressure: refused when entries already wait for commit and this batch would take
    /// their number past `uncommitted_entries_max` (a batch alone may exceed it, so a large
    /// batch is never stuck).
    pub fn propose(
        &mut self,
        commands: Vec<Bytes>,
    ) -> Result<(LogIndex, LogIndex, Term), ProposeError> {
        if self.role != Role::Leader {
            return Err(ProposeError::NotLeader {
                leader_hint: self.leader,
            });
        }
        if self.transfer.is_some() {
            return Err(ProposeError::TransferInProgress);
        }
        if commands.is_empty() {
            return Err(ProposeError::Empty);
        }
        let uncommitted = self.log.last_index() - self.log.committed;
        let max = self.config.uncommitted_entries_max;
        if uncommitted > 0 && uncommitted.saturating_add(commands.len() as u64) > max {
            return Err(ProposeError::Backpressure { uncommitted, max });
        }
        let first = self.log.last_index() + 1;
        for command in commands {
            self.append_as_leader(Payload::Command(command));
        }
        let last = self.log.last_index();
        self.after_leader_append();
        Ok((first, last, self.term))
    }

    /// Asks for a linearizable read. The answer comes later in `Ready::reads` (also the refusal
    /// when this member is not the leader).
    pub fn request_read(
        &mut self,
        id: ReadId,
        consistency: ReadConsistency,
    ) -> Result<(), ReadError> {
        self.start_read(id, consistency)
    }

    /// Hands leadership to `target` once its log is caught up (TimeoutNow, thesis 3.10).
    /// Proposals are refused until it completes; it is abandoned after an election timeout.
    pub fn transfer_leadership(&mut self, target: NodeId) -> Result<(), TransferError> {
        if self.role != Role::Leader {
            return Err(TransferError::NotLeader {
                leader_hint: self.leader,
            });
        }
        if self.membership().voters.binary_search(&target).is_err() {
            return Err(TransferError::UnknownTarget(target));
        }
        if target == self.id {
            return Ok(());
        }
        let Some(progress) = self.progress.get_mut(&target) else {
            return Err(TransferError::UnknownTarget(target));
        };
        self.transfer = Some(Transfer {
            target,
            elapsed_ticks: 0,
        });
        let match_index = progress.match_index;
        if match_index == self.log.last_index() {
            self.send_timeout_now(target);
        } else if !matches!(progress.state, progress::ProgressState::Snapshot { .. }) {
            // Catch the target up now rather than wait for lost requests to be noticed.
            progress.become_probe(match_index + 1);
            self.send_append(target, false);
        }
        Ok(())
    }

    /// The driver made everything through `index` (whose entry has `term`) durable.
    pub fn on_persisted(&mut self, index: LogIndex, term: Term) {
        self.log.persisted_to(index, term);
        if self
            .term_vote_unconfirmed_after
            .is_some_and(|handed| self.log.persisted > handed)
        {
            self.term_vote_unconfirmed_after = None;
        }
        if self.role == Role::Leader {
            self.maybe_commit();
        }
    }

    /// The driver applied every committed entry through `index`.
    pub fn on_applied(&mut self, index: LogIndex) {
        self.log.applied_to(index);
        self.release_applied_reads();
    }

    /// True when `ready()` would return something to do.
    pub fn has_ready(&self) -> bool {
        !self.out.messages.is_empty()
            || !self.out.messages_after_persist.is_empty()
            || !self.out.reads.is_empty()
            || self.log.has_unstable()
            || self.log.has_committed_to_apply()
            || self.hard_state() != self.hard_state_handed
    }

    /// Takes the accumulated work. See `Ready` for the order to carry it out.
    pub fn ready(&mut self) -> Ready {
        let mut ready = std::mem::take(&mut self.out);
        let handed_before = self.log.handed_to_persist();
        let (snapshot, truncate_from, entries) = self.log.take_unstable();
        ready.snapshot = snapshot;
        ready.truncate_from = truncate_from;
        ready.entries = entries;
        let hard_state = self.hard_state();
        if hard_state != self.hard_state_handed {
            let term_or_vote = (hard_state.term, hard_state.voted_for)
                != (
                    self.hard_state_handed.term,
                    self.hard_state_handed.voted_for,
                );
            if term_or_vote {
                self.term_vote_unconfirmed_after = Some(handed_before);
            }
            ready.hard_state = Some(hard_state);
            self.hard_state_handed = hard_state;
        }
        ready.committed_entries = self.log.take_committed();
        // The heartbeats of the current read round leave with this Ready: later reads need a
        // round whose heartbeats are sent after they arrived.
        self.reads.close_round();
        ready
    }

    /// A snapshot of the core's state, for status commands, logs and the simulator's checks.
    pub fn status(&self) -> Status {
        Status {
            id: self.id,
            role: self.role,
            term: self.term,
            voted_for: self.voted_for,
            leader: self.leader,
            first_index: self.log.first_index(),
            last_index: self.log.last_index(),
            commit_index: self.log.committed,
            applied_index: self.log.applied,
            persisted_index: self.log.persisted,
        }
    }

    /// The entry at `index`, if this member holds it (for checks and for catching up peers);
    /// `None` for entries compacted into the snapshot.
    pub fn entry(&self, index: LogIndex) -> Option<&Entry> {
        self.log.entry(index)
    }

    /// The term of the entry at `index`, known for the snapshot's index and every entry after
    /// it (index 0 has term 0).
    pub fn term_at(&self, index: LogIndex) -> Option<Term> {
        self.log.term(index)
    }

    /// The membership in effect: the latest in this member's log, committed or not.
    pub fn membership(&self) -> &Membership {
        self.log.membership.latest()
    }

    /// The index of the log entry that set the membership in effect (the snapshot's index, or
    /// 0 for the configuration's initial voters, when no entry above the snapshot did).
    pub fn membership_index(&self) -> LogIndex {
        self.log.membership.latest_index()
    }

    /// The randomized election timeout drawn for the current term, in ticks (for tests and
    /// status: it lies in `[election_timeout_ticks_min, election_timeout_ticks_max)`).
    pub fn election_timeout_ticks(&self) -> u64 {
        self.election_timeout_ticks
    }

    /// The configuration this member runs with.
    pub fn config(&self) -> &Config {
        &self.config
    }

    fn hard_state(&self) -> HardState {
        HardState {
            term: self.term,
            voted_for: self.voted_for,
            commit: self.log.committed,
        }
    }

    /// True when the planted bug `bug` is switched on (never, without the feature).
    fn bug(&self, bug: Bug) -> bool {
        #[cfg(feature = "planted-bugs")]
        {
            self.config.planted_bug == Some(bug)
        }
        #[cfg(not(feature = "planted-bugs"))]
        {
            let _ = bug;
            false
        }
    }

    /// True when this member votes (in either voter set of its membership).
    fn is_voter(&self) -> bool {
        self.membership().is_voter(self.id)
    }

    /// True when this member may start an election: it votes in its latest membership, or
    /// that membership is not known committed and it votes in the committed one. The second
    /// case is a voter whose removal it holds but has not seen committed (thesis 4.2.2: it
    /// may still lead, counting only the new voters, until the removal commits). Without it,
    /// a removed leader that lost its quorum before the removal reached the others would
    /// deadlock them: they still need its vote, and it refuses them for their shorter logs.
    fn may_campaign(&self) -> bool {
        if self.is_voter() {
            return true;
        }
        let committed = self.log.committed;
        self.membership_index() > committed && self.log.membership.at(committed).is_voter(self.id)
    }

    /// Queues a message carrying the current term.
    fn send(&mut self, to: NodeId, body: MessageBody) {
        self.send_with_term(to, self.term, body);
    }

    /// Queues a message. It waits for the next persist when it depends on durable state: a
    /// granted vote, an acknowledgement of entries (a rejection depends on nothing), or anything sent while a new term or vote
    /// is not yet known durable (not handed out, or handed out in a Ready not yet persisted).
    fn send_with_term(&mut self, to: NodeId, term: Term, body: MessageBody) {
        let depends_on_persist = matches!(
            body,
            MessageBody::AppendResponse { success: true, .. }
                | MessageBody::VoteResponse {
                    pre_vote: false,
                    granted: true
                }
        ) || self.term != self.hard_state_handed.term
            || self.voted_for != self.hard_state_handed.voted_for
            || self.term_vote_unconfirmed_after.is_some();
        let vote_sent_early = matches!(
            body,
            MessageBody::VoteResponse {
                pre_vote: false,
                granted: true
            }
        ) && self.bug(Bug::VoteNotPersisted);
        let message = Message {
            from: self.id,
            to,
            term,
            body,
        };
        if depends_on_persist && !vote_sent_early {
            self.out.messages_after_persist.push(message);
        } else {
            self.out.messages.push(message);
        }
    }
}

/// Checks the recovered state: entries contiguous after the snapshot (from 1 without one),
/// terms never decreasing nor below the snapshot's nor beyond the hard state's term, commit
/// within the log, and a well-formed membership everywhere.
fn validate_recovered(recovered: &Recovered) -> Result<(), ConfigError> {
    let fail = |text: String| Err(ConfigError::Invalid(format!("recovered state: {text}")));
    let hard_state = &recovered.hard_state;
    let (base_index, base_term) = recovered
        .snapshot
        .as_ref()
        .map_or((0, 0), |snapshot| (snapshot.index, snapshot.term));
    if let Some(snapshot) = &recovered.snapshot {
        if snapshot.term > hard_state.term {
            return fail(format!(
                "snapshot at index {} has term {}, beyond the hard state's term {}",
                snapshot.index, snapshot.term, hard_state.term
            ));
        }
        if let Err(reason) = snapshot.membership.validate() {
            return fail(format!("snapshot membership: {reason}"));
        }
    }
    let mut previous_term = base_term;
    for (position, entry) in recovered.entries.iter().enumerate() {
        let expected = base_index + position as LogIndex + 1;
        if entry.index != expected {
            return fail(format!(
                "entry at position {position} has index {}, expected {expected}",
                entry.index
            ));
        }
        if entry.term < previous_term || entry.term > hard_state.term {
            return fail(format!(
                "entry {} has term {}: terms must not decrease nor exceed the hard state's term {}",
                entry.index, entry.term, hard_state.term
            ));
        }
        if let Payload::Membership(membership) = &entry.payload {
            if let Err(reason) = membership.validate() {
                return fail(format!("membership entry {}: {reason}", entry.index));
            }
        }
        previous_term = entry.term;
    }
    let last_index = base_index + recovered.entries.len() as LogIndex;
    if hard_state.commit > last_index {
        return fail(format!(
            "commit {} is beyond the last entry {last_index}",
            hard_state.commit
        ));
    }
    Ok(())
}
