//! The Raft consensus algorithm as a pure, deterministic state machine: no I/O, no clock, no
//! threads, no unseeded randomness. Inputs are method calls (`tick`, `step`, `propose`,
//! `request_read`, `transfer_leadership`, `on_persisted`, `on_applied`); outputs are collected in
//! a `Ready` that the driver takes with `ready()` and carries out. See ARCHITECTURE.md.
//!
//! CONTRACT (the public API below is shared by the core, the simulator and the node; extend it,
//! but change a signature only together with every caller).

pub mod config;
pub mod ready;
pub mod rng;
pub mod types;

pub use config::{Config, ConfigError};
#[cfg(feature = "planted-bugs")]
pub use config::PlantedBug;
pub use ready::{ReadConsistency, ReadId, ReadOutcome, Ready};
pub use types::{Entry, HardState, LogIndex, Message, MessageBody, NodeId, Payload, Role, Term};

use bytes::Bytes;

/// The durable state a member restarts from: what its WAL holds.
#[derive(Clone, Debug, Default)]
pub struct Recovered {
    pub hard_state: HardState,
    /// The whole durable log, contiguous from index 1 (compaction comes later).
    pub entries: Vec<Entry>,
}

/// Why a proposal was refused. Nothing of a refused proposal enters the log.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ProposeError {
    #[error("not the leader; the leader is {leader_hint:?}")]
    NotLeader { leader_hint: Option<NodeId> },
    #[error("a leadership transfer is in progress; retry shortly")]
    TransferInProgress,
    #[error("{uncommitted} entries wait for commit (uncommitted_entries_max {max}); retry shortly")]
    Backpressure { uncommitted: u64, max: u64 },
    #[error("empty proposal: a proposal carries at least one command")]
    Empty,
}

/// Why a message was not accepted (it is dropped; the core's state is unchanged).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum StepError {
    #[error("message from {from} to {to}: this is node {me}")]
    WrongRecipient { from: NodeId, to: NodeId, me: NodeId },
    #[error("message from {from}, which is not a voter of this cluster")]
    UnknownSender { from: NodeId },
    #[error("malformed message from {from}: {reason}")]
    Malformed { from: NodeId, reason: String },
}

/// Why a read request was refused at once.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ReadError {
    #[error("lease reads are off in this configuration (set lease_reads)")]
    LeaseReadsDisabled,
    #[error("{pending} reads are already waiting (pending_reads_max {max}); retry shortly")]
    Backpressure { pending: usize, max: usize },
}

/// Why a leadership transfer was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TransferError {
    #[error("not the leader; the leader is {leader_hint:?}")]
    NotLeader { leader_hint: Option<NodeId> },
    #[error("node {0} is not a voter of this cluster")]
    UnknownTarget(NodeId),
}

/// A snapshot of the core's state, for status commands, logs and the simulator's checks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Status {
    pub id: NodeId,
    pub role: Role,
    pub term: Term,
    pub voted_for: Option<NodeId>,
    pub leader: Option<NodeId>,
    pub first_index: LogIndex,
    pub last_index: LogIndex,
    /// Highest index this member knows committed.
    pub commit_index: LogIndex,
    /// Highest index the driver reported applied.
    pub applied_index: LogIndex,
    /// Highest index the driver reported durable.
    pub persisted_index: LogIndex,
}

/// One member's Raft state machine.
pub struct Raft {
    // Filled in by the core implementation.
}

impl Raft {
    /// Starts a member from its durable state. Fails on an invalid config or an inconsistent
    /// recovered state (entries not contiguous from 1, commit beyond the log, ...).
    pub fn new(config: Config, recovered: Recovered) -> Result<Self, ConfigError> {
        let _ = (config, recovered);
        todo!("core implementation")
    }

    /// Advances logical time by one tick: election timeouts, heartbeats, check-quorum, leases.
    pub fn tick(&mut self) {
        todo!("core implementation")
    }

    /// Feeds one message from a peer.
    pub fn step(&mut self, message: Message) -> Result<(), StepError> {
        let _ = message;
        todo!("core implementation")
    }

    /// Appends a batch of commands, one entry each, as leader. Returns the (first, last) index
    /// assigned and the term: a command committed at that index with that term took effect; if
    /// another term's entry is committed there, it did not.
    pub fn propose(&mut self, commands: Vec<Bytes>) -> Result<(LogIndex, LogIndex, Term), ProposeError> {
        let _ = commands;
        todo!("core implementation")
    }

    /// Asks for a linearizable read. The answer comes later in `Ready::reads` (also the refusal
    /// when this member is not the leader).
    pub fn request_read(&mut self, id: ReadId, consistency: ReadConsistency) -> Result<(), ReadError> {
        let _ = (id, consistency);
        todo!("core implementation")
    }

    /// Hands leadership to `target` once its log is caught up (TimeoutNow, thesis 3.10).
    pub fn transfer_leadership(&mut self, target: NodeId) -> Result<(), TransferError> {
        let _ = target;
        todo!("core implementation")
    }

    /// The driver made everything through `index` (whose entry has `term`) durable.
    pub fn on_persisted(&mut self, index: LogIndex, term: Term) {
        let _ = (index, term);
        todo!("core implementation")
    }

    /// The driver applied every committed entry through `index`.
    pub fn on_applied(&mut self, index: LogIndex) {
        let _ = index;
        todo!("core implementation")
    }

    /// True when `ready()` would return something to do.
    pub fn has_ready(&self) -> bool {
        todo!("core implementation")
    }

    /// Takes the accumulated work. See `Ready` for the order to carry it out.
    pub fn ready(&mut self) -> Ready {
        todo!("core implementation")
    }

    pub fn status(&self) -> Status {
        todo!("core implementation")
    }

    /// The entry at `index`, if this member holds it (for checks and for catching up peers).
    pub fn entry(&self, index: LogIndex) -> Option<&Entry> {
        let _ = index;
        todo!("core implementation")
    }
}
