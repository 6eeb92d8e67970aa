//! The messages that cross the wire, as rkyv types.
//!
//! Raft messages mirror `tern_engine::raft::types` (the engine converts between the two), so this
//! crate does not depend on the engine. Client messages carry opaque command bytes until the
//! key-value crate defines commands. Receivers never deserialize these on the hot path: they read
//! the `Archived*` forms in place after validation (see [`crate::frame`]).

use rkyv::{Archive, Deserialize, Serialize};

/// A cluster member's identifier, as in the engine. 0 is invalid.
pub type NodeId = u64;

/// One Raft message between two members, with the fields every message carries.
#[derive(Archive, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[rkyv(derive(Debug))]
pub struct RaftMessage {
    pub from: NodeId,
    pub to: NodeId,
    /// The sender's term (for a pre-vote request: the term it would campaign in).
    pub term: u64,
    pub body: RaftBody,
}

/// What a Raft message says; mirrors the engine's `MessageBody` plus follower-forwarded reads.
#[derive(Archive, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[rkyv(derive(Debug))]
pub enum RaftBody {
    /// RequestVote or a pre-vote.
    VoteRequest {
        pre_vote: bool,
        last_log_index: u64,
        last_log_term: u64,
        leadership_transfer: bool,
    },
    VoteResponse {
        pre_vote: bool,
        granted: bool,
    },
    /// AppendEntries; empty `entries` is a consistency probe.
    AppendRequest {
        prev_log_index: u64,
        prev_log_term: u64,
        entries: Vec<Entry>,
        leader_commit: u64,
    },
    AppendResponse {
        success: bool,
        match_index: u64,
        conflict_index: u64,
        conflict_term: Option<u64>,
    },
    Heartbeat {
        leader_commit: u64,
        read_round: u64,
    },
    HeartbeatResponse {
        read_round: u64,
    },
    /// Leadership transfer: start an election now.
    TimeoutNow,
    /// A follower asks the leader for a read index on behalf of its clients (thesis 6.4).
    ReadIndexRequest {
        request_id: u64,
    },
    /// The leader's answer: the index to wait for, or `None` when it cannot serve reads now.
    ReadIndexResponse {
        request_id: u64,
        read_index: Option<u64>,
    },
    /// The leader's snapshot replaces the follower's log (paper section 7). Sent once every
    /// chunk of the snapshot's state arrived (`SnapshotChunk`), so the follower has it whole.
    InstallSnapshot {
        snapshot: SnapshotMeta,
    },
    /// One piece of a snapshot file, in order from `offset` 0; `last` marks the final piece.
    /// A transfer is named by the snapshot's (index, term); a piece at offset 0 starts it over.
    /// Flow control is the peer link's bounded send queue (the leader waits for room).
    SnapshotChunk {
        index: u64,
        term: u64,
        offset: u64,
        data: Vec<u8>,
        last: bool,
    },
}

/// A snapshot's metadata: the last entry it covers and the membership in effect there.
#[derive(Archive, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[rkyv(derive(Debug))]
pub struct SnapshotMeta {
    pub index: u64,
    pub term: u64,
    pub membership: Membership,
}

/// A cluster membership, as in the engine.
#[derive(Archive, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[rkyv(derive(Debug))]
pub struct Membership {
    pub voters: Vec<NodeId>,
    pub voters_outgoing: Vec<NodeId>,
    pub learners: Vec<NodeId>,
    /// Opaque driver data (the server keeps member addresses here).
    pub context: Vec<u8>,
}

/// One log slot.
#[derive(Archive, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[rkyv(derive(Debug))]
pub struct Entry {
    pub index: u64,
    pub term: u64,
    pub payload: EntryPayload,
}

/// What a log entry carries.
#[derive(Archive, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[rkyv(derive(Debug))]
pub enum EntryPayload {
    /// A new leader's first entry of its term.
    Noop,
    /// One client command, opaque to the transport.
    Command(Vec<u8>),
    /// A new cluster membership.
    Membership(Membership),
}

/// A batch of client requests on one client session.
#[derive(Archive, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[rkyv(derive(Debug))]
pub struct ClientRequestBatch {
    /// Identifies the client session; with `sequence` it makes retries exactly-once.
    pub client_id: u64,
    /// The client has received the answer to every sequence at or below this, so the server's
    /// session may forget those results (0: nothing answered yet).
    pub answered_through: u64,
    /// How the read-only requests of this batch are served.
    pub read_consistency: ReadConsistency,
    pub requests: Vec<ClientRequest>,
}

/// How a read-only request (`Get`, `Range`) is served.
#[derive(Archive, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[rkyv(derive(Debug))]
pub enum ReadConsistency {
    /// Whatever the server was configured with (`--read-mode`, linearizable by default).
    ServerDefault,
    /// Linearizable through ReadIndex: the leader confirms it still leads with a quorum round.
    Linearizable,
    /// Linearizable through the leader lease when the server has lease reads on (falls back to
    /// ReadIndex otherwise).
    Lease,
    /// Served by whichever node received it from its applied map: may be stale, never torn.
    Serializable,
}

/// One client request.
#[derive(Archive, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[rkyv(derive(Debug))]
pub struct ClientRequest {
    /// Increases by one per request of a client; a retry reuses it.
    pub sequence: u64,
    /// An encoded `tern_kv::Command`.
    pub command: Vec<u8>,
}

/// The answers to (some of) a client's requests.
#[derive(Archive, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[rkyv(derive(Debug))]
pub struct ClientResponseBatch {
    pub client_id: u64,
    pub responses: Vec<ClientResponse>,
}

/// The answer to one client request.
#[derive(Archive, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[rkyv(derive(Debug))]
pub struct ClientResponse {
    pub sequence: u64,
    pub outcome: ClientOutcome,
}

/// A request's result bytes, or why it failed.
#[derive(Archive, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[rkyv(derive(Debug))]
pub enum ClientOutcome {
    /// An encoded `tern_kv::CommandResult`.
    Ok(Vec<u8>),
    Error(ClientError),
}

/// Why a client request failed. Nothing was changed by a failed request.
#[derive(Archive, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[rkyv(derive(Debug))]
pub enum ClientError {
    /// The command bytes do not parse as a command.
    InvalidCommand { reason: String },
    /// The command is larger than the server accepts.
    TooLarge {
        command_bytes: u64,
        command_bytes_max: u64,
    },
    /// The cluster cannot serve the request now (no quorum, shutting down); retry later.
    Unavailable { reason: String },
    /// The client session is unknown or expired; start a new session.
    SessionExpired,
    /// This node is not the leader and the request needs the leader; the batch's `NotLeader`
    /// frame (sent alongside) says where to go.
    NotLeader { leader_id: Option<NodeId> },
}

/// "Not leader": the node that received a client batch cannot serve it.
#[derive(Archive, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[rkyv(derive(Debug))]
pub struct NotLeader {
    pub client_id: u64,
    /// The leader this node knows of, if any.
    pub leader_id: Option<NodeId>,
    /// Where clients reach that leader, e.g. `127.0.0.1:7001`.
    pub leader_addr: Option<String>,
}

/// A request for the answering node's view of the cluster (the `tern status` command).
#[derive(Archive, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[rkyv(derive(Debug))]
pub struct StatusRequest {
    /// Echoed in the response, to match answers to questions.
    pub request_id: u64,
}

/// One node's state as it sees it.
#[derive(Archive, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[rkyv(derive(Debug))]
pub struct NodeStatus {
    pub request_id: u64,
    pub node_id: NodeId,
    /// Where this node serves clients.
    pub client_addr: String,
    /// Where this node talks to its peers.
    pub peer_addr: String,
    /// "leader", "follower", "candidate" or "pre-candidate".
    pub role: String,
    pub term: u64,
    pub last_index: u64,
    pub commit_index: u64,
    pub applied_index: u64,
    /// The leader this node knows of, if any.
    pub leader_id: Option<NodeId>,
    /// Where clients reach that leader, when this node knows it.
    pub leader_client_addr: Option<String>,
}

/// An operator's request about the cluster itself (the `tern member` and `tern leader`
/// commands), answered with an [`AdminResponse`]. Changes go to the leader; any member lists.
#[derive(Archive, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[rkyv(derive(Debug))]
pub struct AdminRequest {
    /// Echoed in the response, to match answers to questions.
    pub request_id: u64,
    pub op: AdminOp,
}

/// One administrative operation.
#[derive(Archive, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[rkyv(derive(Debug))]
pub enum AdminOp {
    /// The membership as the answering node knows it.
    ListMembers,
    /// A new member that receives the log without voting, at these addresses.
    AddLearner {
        id: NodeId,
        peer_addr: String,
        client_addr: String,
    },
    /// A learner becomes a voter (through joint consensus).
    Promote { id: NodeId },
    /// A learner or voter leaves.
    Remove { id: NodeId },
    /// The leader hands leadership to this voter.
    TransferLeader { to: NodeId },
}

/// One member as the membership records it.
#[derive(Archive, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[rkyv(derive(Debug))]
pub struct MemberInfo {
    pub id: NodeId,
    /// "voter", "learner", or "leaving voter" (a voter of the outgoing set only).
    pub role: String,
    pub peer_addr: String,
    pub client_addr: String,
}

/// The answer to an [`AdminRequest`].
#[derive(Archive, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[rkyv(derive(Debug))]
pub struct AdminResponse {
    pub request_id: u64,
    /// The members after the operation (for a change: as soon as it is in the leader's log).
    pub members: Vec<MemberInfo>,
    /// The log index of the membership in effect, and whether the answering node knows it
    /// committed; a change is complete once it is committed and not joint.
    pub membership_index: u64,
    pub membership_committed: bool,
    pub joint: bool,
    /// Why the operation was refused (nothing changed), if it was.
    pub error: Option<String>,
    /// The leader the answering node knows of, to retry a change there.
    pub leader_id: Option<NodeId>,
    pub leader_client_addr: Option<String>,
}
