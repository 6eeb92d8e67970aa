//! The values the Raft core reads and writes: identifiers, log entries, durable hard state and
//! the messages peers exchange. Plain data with no behaviour, so the node, the simulator and the
//! wire format (in `tern-net`) can all convert to and from them.

use bytes::Bytes;

/// A cluster member's identifier. Ids are chosen by the operator and never reused; 0 is invalid.
pub type NodeId = u64;
/// A Raft term (section 5.1). Starts at 0; the first election moves to term 1.
pub type Term = u64;
/// A position in the replicated log. The first entry has index 1; index 0 means "nothing".
pub type LogIndex = u64;

/// One slot of the replicated log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// Its position in the log.
    pub index: LogIndex,
    /// The term of the leader that created it.
    pub term: Term,
    /// What it carries.
    pub payload: Payload,
}

/// What a log entry carries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Payload {
    /// Appended by a new leader at the start of its term, so it can commit earlier entries and
    /// serve ReadIndex reads (Raft thesis 6.4).
    Noop,
    /// One client command: opaque bytes the state machine interprets.
    Command(Bytes),
    /// A new cluster membership (Raft thesis chapter 4). It takes effect on every member as
    /// soon as it is in that member's log, committed or not; a change of voters goes through a
    /// joint membership first (`voters_outgoing` non-empty).
    Membership(Membership),
}

/// Who is in the cluster: the voters (two sets while a change of voters is in progress) and
/// the learners, which receive the log but neither vote nor count toward any quorum.
///
/// Each list is sorted and holds an id once; a member is in at most one of `voters` and
/// `learners` (a voter being removed may still be in `voters_outgoing`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Membership {
    /// The voters of the new configuration (all voters when no change is in progress).
    pub voters: Vec<NodeId>,
    /// Joint consensus (thesis 4.3): while non-empty, elections and commitment need a majority
    /// of `voters` and, separately, a majority of these (the old configuration's voters).
    pub voters_outgoing: Vec<NodeId>,
    /// Non-voting members that are sent the log (thesis 4.2.1: new servers catch up first).
    pub learners: Vec<NodeId>,
    /// Opaque to the core: what the driver needs to know about the members (the server keeps
    /// their addresses here). It travels with the membership through the log and snapshots.
    pub context: Bytes,
}

impl Membership {
    /// A membership of `voters` only (sorted and deduplicated here), with no context.
    pub fn with_voters(voters: &[NodeId]) -> Membership {
        let mut voters = voters.to_vec();
        voters.sort_unstable();
        voters.dedup();
        Membership {
            voters,
            ..Membership::default()
        }
    }

    /// True while a change of voters is in progress (two voter sets).
    pub fn is_joint(&self) -> bool {
        !self.voters_outgoing.is_empty()
    }

    /// True when `id` votes in either voter set.
    pub fn is_voter(&self, id: NodeId) -> bool {
        self.voters.binary_search(&id).is_ok() || self.voters_outgoing.binary_search(&id).is_ok()
    }

    /// True when `id` is a learner.
    pub fn is_learner(&self, id: NodeId) -> bool {
        self.learners.binary_search(&id).is_ok()
    }

    /// True when `id` is a voter (of either set) or a learner.
    pub fn contains(&self, id: NodeId) -> bool {
        self.is_voter(id) || self.is_learner(id)
    }

    /// Every member (voters of both sets and learners), sorted, each once.
    pub fn members(&self) -> Vec<NodeId> {
        let mut all: Vec<NodeId> = self
            .voters
            .iter()
            .chain(&self.voters_outgoing)
            .chain(&self.learners)
            .copied()
            .collect();
        all.sort_unstable();
        all.dedup();
        all
    }

    /// Every voter of either set, sorted, each once.
    pub fn all_voters(&self) -> Vec<NodeId> {
        let mut all: Vec<NodeId> = self
            .voters
            .iter()
            .chain(&self.voters_outgoing)
            .copied()
            .collect();
        all.sort_unstable();
        all.dedup();
        all
    }

    /// Checks the shape rules (sorted, unique, a member not both voter and learner, no id 0);
    /// the text says what is wrong.
    pub fn validate(&self) -> Result<(), String> {
        for (name, list) in [
            ("voters", &self.voters),
            ("voters_outgoing", &self.voters_outgoing),
            ("learners", &self.learners),
        ] {
            if list.windows(2).any(|pair| pair[0] >= pair[1]) {
                return Err(format!("{name} {list:?} is not sorted with each id once"));
            }
            if list.contains(&0) {
                return Err(format!("{name} {list:?} contains id 0"));
            }
        }
        if let Some(both) = self.learners.iter().find(|id| self.is_voter(**id)) {
            return Err(format!("node {both} is both a voter and a learner"));
        }
        Ok(())
    }
}

/// What a snapshot stands for: the state machine after applying every entry through `index`,
/// which has `term`, with the membership in effect at `index`. The state itself is the
/// driver's business (the core never sees it); this is how the core refers to it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SnapshotMeta {
    /// The last log index the snapshot covers.
    pub index: LogIndex,
    /// The term of the entry at `index`.
    pub term: Term,
    /// The membership in effect at `index`.
    pub membership: Membership,
}

impl Entry {
    /// Bytes this entry counts against `append_bytes_max` (its payload only).
    pub fn payload_bytes(&self) -> usize {
        match &self.payload {
            Payload::Noop => 0,
            Payload::Command(bytes) => bytes.len(),
            Payload::Membership(membership) => membership.context.len(),
        }
    }
}

/// State that must be durable before any message that depends on it is sent (figure 2:
/// "persistent state on all servers"). Written atomically: old or new, never a mix.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HardState {
    /// The latest term this member has seen.
    pub term: Term,
    /// The candidate it voted for in `term`, if any.
    pub voted_for: Option<NodeId>,
    /// Highest index known committed. Not required for safety; lets a restarted node apply up
    /// to here before hearing from a leader.
    pub commit: LogIndex,
}

/// A message between two members.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    /// The sender.
    pub from: NodeId,
    /// The recipient.
    pub to: NodeId,
    /// The sender's current term, except in a pre-vote request, where it is the term the sender
    /// would campaign in (its term + 1) and the sender has not moved to it (thesis 9.6).
    pub term: Term,
    /// What kind of message it is, and its contents.
    pub body: MessageBody,
}

/// The kinds of message and what each carries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MessageBody {
    /// RequestVote (5.2, 5.4.1) or a pre-vote (thesis 9.6).
    VoteRequest {
        pre_vote: bool,
        last_log_index: LogIndex,
        last_log_term: Term,
        /// Set when the campaign was started by TimeoutNow (thesis 3.10): voters then ignore
        /// their "I heard from a leader recently" rule, which would otherwise refuse it.
        leadership_transfer: bool,
    },
    /// The answer to a VoteRequest (a granted pre-vote carries the requested term).
    VoteResponse { pre_vote: bool, granted: bool },
    /// AppendEntries (5.3). An empty `entries` is still a log-consistency probe.
    AppendRequest {
        prev_log_index: LogIndex,
        prev_log_term: Term,
        entries: Vec<Entry>,
        leader_commit: LogIndex,
    },
    /// Sent only once the entries it acknowledges are durable on the sender.
    AppendResponse {
        success: bool,
        /// On success: the last index the follower now holds that matches the leader's log.
        match_index: LogIndex,
        /// On rejection: where the leader should retry from (fast backtracking, 5.3): the first
        /// index of `conflict_term` in the follower's log, or the follower's last index + 1 when
        /// its log is too short (then `conflict_term` is None).
        conflict_index: LogIndex,
        conflict_term: Option<Term>,
    },
    /// Leader liveness and commit propagation without entries. `read_round` ties responses to
    /// the ReadIndex round that asked for them (thesis 6.4).
    Heartbeat {
        leader_commit: LogIndex,
        read_round: u64,
    },
    /// The answer to a Heartbeat, echoing its round.
    HeartbeatResponse { read_round: u64 },
    /// Leadership transfer: "start an election now, ignoring your timer" (thesis 3.10).
    TimeoutNow,
    /// The leader no longer holds the entries this follower needs (compacted into a snapshot):
    /// "replace your log with this snapshot" (paper section 7). Only the metadata travels
    /// through the core; the driver ships the state itself and steps this message into the
    /// follower's core once the state has arrived whole. The follower answers with an
    /// `AppendResponse` (success, `match_index` = the snapshot's index, or its own commit
    /// index when that is already beyond).
    InstallSnapshot { snapshot: SnapshotMeta },
}

/// The role a member plays in its current term.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// Follows the leader of its term (or waits for one).
    Follower,
    /// Pre-vote phase: asking whether an election could succeed, without changing term.
    PreCandidate,
    /// Campaigning in a new term for votes (5.2).
    Candidate,
    /// Leads its term: the only member that appends to the log.
    Leader,
}
