//! What the core asks its driver to do. The driver (the server's node, or the simulator) takes
//! a `Ready` after feeding inputs and carries it out in the order the fields' docs give.

use super::types::{Entry, HardState, LogIndex, Message, NodeId, SnapshotMeta};

/// Identifies a read request; chosen by the driver, echoed back in `ReadOutcome`.
pub type ReadId = u64;

/// How a read is confirmed before it is answered from the state machine.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReadConsistency {
    /// Confirm leadership with a round of heartbeats to a quorum (thesis 6.4).
    ReadIndex,
    /// Trust the leader lease when it holds (thesis 6.4.1); falls back to ReadIndex otherwise.
    /// Only allowed when the config has `lease_reads`.
    Lease,
}

/// The answer to a read request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ReadOutcome {
    /// The state machine, once applied through `index`, answers the read linearizably. The core
    /// emits this only when the driver has reported `on_applied(i)` with `i >= index`.
    Ready { id: ReadId, index: LogIndex },
    /// The read cannot be served here: retry at `leader_hint` if known.
    NotLeader {
        id: ReadId,
        leader_hint: Option<NodeId>,
    },
}

/// The work one `Raft::ready()` hands to the driver.
///
/// Order of execution:
/// 1. Send `messages` at once: they depend on nothing unpersisted (thesis 10.2.1: the leader
///    sends AppendRequests before its own write completes).
/// 2. Persist: if `snapshot` is set, first make the snapshot the durable base of the log
///    (the state the driver received for it, see `MessageBody::InstallSnapshot`) and discard
///    every durable entry; if `truncate_from` is set, delete every entry at or after it; then
///    append `entries` (contiguous, in order); write `hard_state` if set. All of one Ready
///    becomes durable together, before step 3.
/// 3. Once step 2 is durable, report `on_persisted(last index, its term)` and send
///    `messages_after_persist` (votes, acks and anything carrying a just-adopted term).
/// 4. If `snapshot` is set, restore the state machine from it first (the core already counts it
///    applied). Apply `committed_entries` in order (they may be applied before step 2
///    finishes: a committed entry is already durable on a majority), then report `on_applied`.
/// 5. Answer `reads`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Ready {
    /// Step 1: send at once.
    pub messages: Vec<Message>,
    /// Steps 2 and 4: the log was replaced by this snapshot from the leader: persist it as the
    /// log's base (dropping every entry), and restore the state machine from it.
    pub snapshot: Option<SnapshotMeta>,
    /// Step 2: delete every durable entry at or after this index first.
    pub truncate_from: Option<LogIndex>,
    /// Step 2: append these, contiguous, after the (truncated) durable log.
    pub entries: Vec<Entry>,
    /// Step 2: write this term, vote and commit index.
    pub hard_state: Option<HardState>,
    /// Step 3: send once step 2 (and every earlier Ready's step 2) is durable.
    pub messages_after_persist: Vec<Message>,
    /// Step 4: apply in order, then report `on_applied`.
    pub committed_entries: Vec<Entry>,
    /// Step 5: answer these reads.
    pub reads: Vec<ReadOutcome>,
}

impl Ready {
    /// True when there is nothing to do.
    pub fn is_empty(&self) -> bool {
        self.messages.is_empty()
            && self.snapshot.is_none()
            && self.truncate_from.is_none()
            && self.entries.is_empty()
            && self.hard_state.is_none()
            && self.messages_after_persist.is_empty()
            && self.committed_entries.is_empty()
            && self.reads.is_empty()
    }
}
