//! The core's configuration: every bound is named with its unit, and `validate` rejects any
//! combination that would break safety or liveness with an error saying what to change.

use super::types::NodeId;

/// Settings of one member's Raft core. Times are in ticks: the node decides how long a tick is
/// (the server uses milliseconds), the simulator uses simulated ticks.
#[derive(Clone, Debug)]
pub struct Config {
    /// This member's id; must be in `voters` unless `voters` is empty.
    pub id: NodeId,
    /// The bootstrap membership: every voting member at the cluster's first start, this one
    /// included. No duplicates, no 0. Empty for a member that joins an existing cluster: it
    /// learns the membership from the leader's log or snapshot (and never campaigns before).
    /// Ignored once the log or a snapshot holds a membership.
    pub voters: Vec<NodeId>,
    /// A follower that hears from no leader for a random time in
    /// `[election_timeout_ticks_min, election_timeout_ticks_max)` starts an election (5.2).
    pub election_timeout_ticks_min: u64,
    /// The exclusive upper end of the election timeout range; see the minimum.
    pub election_timeout_ticks_max: u64,
    /// How often a leader sends heartbeats; must be well below the minimum election timeout.
    pub heartbeat_interval_ticks: u64,
    /// Ask a pre-vote round before disrupting the cluster with a new term (thesis 9.6).
    pub pre_vote: bool,
    /// A leader that has not heard from a quorum within an election timeout steps down, and a
    /// follower that heard from a leader within the minimum timeout refuses votes (thesis 6.2).
    pub check_quorum: bool,
    /// Serve lease reads without a round of heartbeats while the lease holds (thesis 6.4.1).
    /// Needs `check_quorum`.
    pub lease_reads: bool,
    /// How much faster than the leader's the fastest follower clock may run, in ticks per
    /// election timeout. The lease lasts `election_timeout_ticks_min - clock_drift_margin_ticks`.
    pub clock_drift_margin_ticks: u64,
    /// Most entries in one AppendRequest.
    pub append_entries_max: usize,
    /// Most payload bytes in one AppendRequest (one entry larger than this still goes alone).
    pub append_bytes_max: usize,
    /// Most AppendRequests in flight (sent, not yet answered) to one follower in replicate state.
    pub inflight_messages_max: usize,
    /// Most entries the leader holds beyond its commit index; proposals past it are refused
    /// (backpressure) until commits catch up.
    pub uncommitted_entries_max: u64,
    /// Most read requests waiting at the leader (for a heartbeat round or for apply).
    pub pending_reads_max: usize,
    /// Seeds the election-timeout randomness, so a run replays exactly.
    pub seed: u64,
    /// A deliberately broken rule, for proving the simulator catches it. Test builds only.
    #[cfg(feature = "planted-bugs")]
    pub planted_bug: Option<PlantedBug>,
}

/// Classic Raft bugs that can be switched on in a test build, each violating one safety rule.
#[cfg(feature = "planted-bugs")]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PlantedBug {
    /// Grant a vote to a candidate whose log is less up to date than ours (breaks 5.4.1).
    VoteForStaleLog,
    /// Commit an entry of a previous term by counting replicas (the figure 8 bug, 5.4.2).
    CommitPreviousTermByCount,
    /// A follower appends new entries but keeps a conflicting suffix beyond them (breaks 5.3).
    KeepConflictingSuffix,
    /// The leader counts itself toward a commit before its own persist covers the index
    /// (breaks thesis 10.2.1).
    LeaderCountsSelfBeforePersist,
    /// A lease lasts a full `election_timeout_ticks_max` from its heartbeat round, ignoring both
    /// the minimum election timeout and `clock_drift_margin_ticks` (breaks thesis 6.4.1).
    LeaseIgnoresDriftMargin,
    /// A granted vote is sent at once, before the hard state recording it is durable, so a
    /// voter that crashes can vote again in the same term (breaks figure 2's persistence rule).
    VoteNotPersisted,
    /// A follower installs a snapshot even when it is not beyond its commit index, replacing
    /// committed entries and moving its commit and applied index back (breaks section 7).
    InstallSnapshotBelowCommit,
}

#[cfg(feature = "planted-bugs")]
impl PlantedBug {
    /// Every planted bug, for tests that try each.
    pub const ALL: [PlantedBug; 7] = [
        PlantedBug::VoteForStaleLog,
        PlantedBug::CommitPreviousTermByCount,
        PlantedBug::KeepConflictingSuffix,
        PlantedBug::LeaderCountsSelfBeforePersist,
        PlantedBug::LeaseIgnoresDriftMargin,
        PlantedBug::VoteNotPersisted,
        PlantedBug::InstallSnapshotBelowCommit,
    ];
}

/// Why a configuration was refused; each message says what to change.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// The configuration breaks a rule; the text names the field and the fix.
    #[error("invalid Raft configuration: {0}")]
    Invalid(String),
}

impl Config {
    /// A configuration with the defaults the server uses (ticks of 1 ms).
    pub fn new(id: NodeId, voters: Vec<NodeId>) -> Self {
        Self {
            id,
            voters,
            election_timeout_ticks_min: 150,
            election_timeout_ticks_max: 300,
            heartbeat_interval_ticks: 30,
            pre_vote: true,
            check_quorum: true,
            lease_reads: false,
            clock_drift_margin_ticks: 30,
            append_entries_max: 4096,
            append_bytes_max: 1 << 20,
            inflight_messages_max: 64,
            uncommitted_entries_max: 1 << 20,
            pending_reads_max: 1 << 16,
            seed: 0,
            #[cfg(feature = "planted-bugs")]
            planted_bug: None,
        }
    }

    /// Ticks a lease read may rely on after the heartbeat round that confirmed leadership began.
    pub fn lease_duration_ticks(&self) -> u64 {
        self.election_timeout_ticks_min
            .saturating_sub(self.clock_drift_margin_ticks)
    }

    /// Checks every rule; the error names the field and the fix.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let fail = |text: String| Err(ConfigError::Invalid(text));
        if self.id == 0 {
            return fail("id must not be 0: choose a positive node id".into());
        }
        if self.voters.contains(&0) {
            return fail("voters contains 0: node ids must be positive".into());
        }
        let mut sorted = self.voters.clone();
        sorted.sort_unstable();
        if sorted.windows(2).any(|pair| pair[0] == pair[1]) {
            return fail(format!(
                "voters {:?} lists a node twice: list each once",
                self.voters
            ));
        }
        if !self.voters.is_empty() && !self.voters.contains(&self.id) {
            return fail(format!(
                "id {} is not in voters {:?}: add it, start this node with an id from the list, or give no voters to join an existing cluster",
                self.id, self.voters
            ));
        }
        if self.heartbeat_interval_ticks == 0 {
            return fail("heartbeat_interval_ticks must be at least 1".into());
        }
        if self.election_timeout_ticks_min <= 2 * self.heartbeat_interval_ticks {
            return fail(format!(
                "election_timeout_ticks_min ({}) must exceed twice heartbeat_interval_ticks ({}), \
                 or followers time out between heartbeats",
                self.election_timeout_ticks_min, self.heartbeat_interval_ticks
            ));
        }
        if self.election_timeout_ticks_max <= self.election_timeout_ticks_min {
            return fail(format!(
                "election_timeout_ticks_max ({}) must be greater than election_timeout_ticks_min \
                 ({}): the spread between them is what breaks split votes",
                self.election_timeout_ticks_max, self.election_timeout_ticks_min
            ));
        }
        if self.lease_reads && !self.check_quorum {
            return fail(
                "lease_reads needs check_quorum: without it a deposed leader could serve stale \
                 reads; turn check_quorum on or lease_reads off"
                    .into(),
            );
        }
        if self.lease_reads && self.clock_drift_margin_ticks >= self.election_timeout_ticks_min {
            return fail(format!(
                "clock_drift_margin_ticks ({}) must be below election_timeout_ticks_min ({}), \
                 or the lease is empty",
                self.clock_drift_margin_ticks, self.election_timeout_ticks_min
            ));
        }
        if self.append_entries_max == 0 {
            return fail("append_entries_max must be at least 1".into());
        }
        if self.append_bytes_max == 0 {
            return fail("append_bytes_max must be at least 1".into());
        }
        if self.inflight_messages_max == 0 {
            return fail("inflight_messages_max must be at least 1".into());
        }
        if self.uncommitted_entries_max == 0 {
            return fail("uncommitted_entries_max must be at least 1".into());
        }
        if self.pending_reads_max == 0 {
            return fail("pending_reads_max must be at least 1".into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn valid() -> Config {
        Config::new(1, vec![1, 2, 3])
    }

    #[test]
    fn defaults_are_valid() {
        assert_eq!(valid().validate(), Ok(()));
    }

    #[test]
    fn each_rule_rejects_with_a_message_naming_the_field() {
        type BreakIt = Box<dyn Fn(&mut Config)>;
        let cases: Vec<(&str, BreakIt)> = vec![
            ("id must not be 0", Box::new(|c| c.id = 0)),
            ("lists a node twice", Box::new(|c| c.voters = vec![1, 2, 2])),
            ("is not in voters", Box::new(|c| c.id = 9)),
            (
                "heartbeat_interval_ticks",
                Box::new(|c| c.heartbeat_interval_ticks = 0),
            ),
            (
                "must exceed twice",
                Box::new(|c| c.heartbeat_interval_ticks = 100),
            ),
            (
                "election_timeout_ticks_max",
                Box::new(|c| c.election_timeout_ticks_max = 150),
            ),
            (
                "lease_reads needs check_quorum",
                Box::new(|c| {
                    c.lease_reads = true;
                    c.check_quorum = false;
                }),
            ),
            (
                "clock_drift_margin_ticks",
                Box::new(|c| {
                    c.lease_reads = true;
                    c.clock_drift_margin_ticks = 150;
                }),
            ),
            ("append_entries_max", Box::new(|c| c.append_entries_max = 0)),
            ("append_bytes_max", Box::new(|c| c.append_bytes_max = 0)),
            (
                "inflight_messages_max",
                Box::new(|c| c.inflight_messages_max = 0),
            ),
            (
                "uncommitted_entries_max",
                Box::new(|c| c.uncommitted_entries_max = 0),
            ),
            ("pending_reads_max", Box::new(|c| c.pending_reads_max = 0)),
        ];
        for (expected, break_it) in cases {
            let mut config = valid();
            break_it(&mut config);
            let error = config.validate().expect_err(expected).to_string();
            assert!(
                error.contains(expected),
                "{error:?} should mention {expected:?}"
            );
        }
    }
}
