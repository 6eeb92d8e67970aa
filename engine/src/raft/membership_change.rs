//! Changing the membership (Raft thesis chapter 4), as leader: one change at a time, through
//! the log. A new member joins as a learner (it receives the log but does not vote, so a slow
//! newcomer never costs availability: thesis 4.2.1), then is promoted once caught up. A change
//! of voters goes through a joint membership (old and new voter sets, each needing its own
//! majority) that the leader leaves by itself once it is committed; that keeps every moment's
//! quorums overlapping without the single-server algorithm's pitfalls (thesis 4.3).

use bytes::Bytes;

use super::types::{LogIndex, Membership, NodeId, Payload, Role};
use super::Raft;

/// One change of the membership.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MembershipChange {
    /// A new member that receives the log without voting.
    AddLearner(NodeId),
    /// A learner becomes a voter (through a joint membership).
    Promote(NodeId),
    /// A learner or voter leaves (a voter through a joint membership). The leader may remove
    /// itself: it steps down once the membership without it is committed.
    Remove(NodeId),
}

impl std::fmt::Display for MembershipChange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            MembershipChange::AddLearner(id) => write!(f, "add learner {id}"),
            MembershipChange::Promote(id) => write!(f, "promote {id}"),
            MembershipChange::Remove(id) => write!(f, "remove {id}"),
        }
    }
}

/// Why a membership change was refused (nothing entered the log). Each says what to do.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum MembershipError {
    #[error("not the leader; the leader is {leader_hint:?}: send the change there")]
    NotLeader { leader_hint: Option<NodeId> },
    #[error("a leadership transfer is in progress; retry shortly")]
    TransferInProgress,
    #[error(
        "the membership change at index {index} is not finished (committed, and out of joint \
         consensus); retry once it is"
    )]
    ChangeInProgress { index: LogIndex },
    #[error("the leader has not yet committed an entry of its term; retry shortly")]
    NotReady,
    #[error("node id 0 is invalid: ids are positive")]
    ZeroId,
    #[error("node {0} is already a member")]
    AlreadyMember(NodeId),
    #[error("node {0} is already a voter")]
    AlreadyVoter(NodeId),
    #[error("node {0} is not a member: add it as a learner first")]
    NotAMember(NodeId),
    #[error("node {0} is the last voter: add and promote another member before removing it")]
    LastVoter(NodeId),
}

impl Raft {
    /// Proposes `change`, with `context` as the new membership's driver data (the server keeps
    /// member addresses there). Returns the index of the membership entry; it is in effect at
    /// once, and done when `Raft::membership()` is no longer joint and that index is committed.
    pub fn propose_membership(
        &mut self,
        change: MembershipChange,
        context: Bytes,
    ) -> Result<LogIndex, MembershipError> {
        if self.role != Role::Leader {
            return Err(MembershipError::NotLeader {
                leader_hint: self.leader,
            });
        }
        if self.transfer.is_some() {
            return Err(MembershipError::TransferInProgress);
        }
        let current = self.membership();
        let current_index = self.membership_index();
        if current.is_joint() || current_index > self.log.committed {
            return Err(MembershipError::ChangeInProgress {
                index: current_index,
            });
        }
        // Thesis 4.1 (the fix to the single-server bug): a new leader first commits an entry of
        // its term, so no uncommitted change of an earlier leader can surface beside ours.
        if self.log.term(self.log.committed) != Some(self.term) {
            return Err(MembershipError::NotReady);
        }
        let next = changed(current, &change, context)?;
        self.append_as_leader(Payload::Membership(next));
        let index = self.log.last_index();
        self.after_leader_append();
        Ok(index)
    }

    /// Called when the commit index advanced on the leader. A committed joint membership is
    /// left by appending the new voter set alone; a leader that is not a voter of its
    /// committed membership hands over (TimeoutNow to the most caught-up voter) and steps down.
    pub(super) fn after_membership_commit(&mut self) {
        if self.role != Role::Leader || self.membership_index() > self.log.committed {
            return;
        }
        let current = self.membership();
        if current.is_joint() {
            let left = Membership {
                voters: current.voters.clone(),
                voters_outgoing: Vec::new(),
                learners: current.learners.clone(),
                context: current.context.clone(),
            };
            self.append_as_leader(Payload::Membership(left));
            self.after_leader_append();
            return;
        }
        if current.is_voter(self.id) {
            return;
        }
        let successor = current
            .voters
            .iter()
            .filter_map(|voter| Some((self.progress.get(voter)?.match_index, *voter)))
            .max();
        if let Some((_, successor)) = successor {
            self.send_timeout_now(successor);
        }
        self.become_follower(self.term, None);
    }
}

/// `current` with `change` applied: a learner change directly, a voter change as a joint
/// membership (the new voters, with the current ones outgoing).
fn changed(
    current: &Membership,
    change: &MembershipChange,
    context: Bytes,
) -> Result<Membership, MembershipError> {
    let mut next = Membership {
        voters: current.voters.clone(),
        voters_outgoing: Vec::new(),
        learners: current.learners.clone(),
        context,
    };
    match *change {
        MembershipChange::AddLearner(id) => {
            if id == 0 {
                return Err(MembershipError::ZeroId);
            }
            if current.contains(id) {
                return Err(MembershipError::AlreadyMember(id));
            }
            insert_sorted(&mut next.learners, id);
        }
        MembershipChange::Promote(id) => {
            if current.is_voter(id) {
                return Err(MembershipError::AlreadyVoter(id));
            }
            if !current.is_learner(id) {
                return Err(MembershipError::NotAMember(id));
            }
            next.learners.retain(|learner| *learner != id);
            insert_sorted(&mut next.voters, id);
            next.voters_outgoing = current.voters.clone();
        }
        MembershipChange::Remove(id) => {
            if current.is_learner(id) {
                next.learners.retain(|learner| *learner != id);
            } else if current.is_voter(id) {
                next.voters.retain(|voter| *voter != id);
                if next.voters.is_empty() {
                    return Err(MembershipError::LastVoter(id));
                }
                next.voters_outgoing = current.voters.clone();
            } else {
                return Err(MembershipError::NotAMember(id));
            }
        }
    }
    Ok(next)
}

fn insert_sorted(list: &mut Vec<NodeId>, id: NodeId) {
    if let Err(position) = list.binary_search(&id) {
        list.insert(position, id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn voters(ids: &[NodeId]) -> Membership {
        Membership::with_voters(ids)
    }

    #[test]
    fn learner_changes_are_direct_and_voter_changes_are_joint() {
        let added = changed(
            &voters(&[1, 2, 3]),
            &MembershipChange::AddLearner(4),
            Bytes::new(),
        );
        let added = added.expect("add learner");
        assert_eq!(added.learners, vec![4]);
        assert!(!added.is_joint());
        let promoted = changed(&added, &MembershipChange::Promote(4), Bytes::new()).unwrap();
        assert_eq!(promoted.voters, vec![1, 2, 3, 4]);
        assert_eq!(promoted.voters_outgoing, vec![1, 2, 3]);
        assert!(promoted.learners.is_empty());
        let removed = changed(
            &voters(&[1, 2, 3]),
            &MembershipChange::Remove(2),
            Bytes::new(),
        );
        let removed = removed.unwrap();
        assert_eq!(removed.voters, vec![1, 3]);
        assert_eq!(removed.voters_outgoing, vec![1, 2, 3]);
        assert_eq!(removed.validate(), Ok(()));
    }

    #[test]
    fn impossible_changes_are_refused_with_the_reason() {
        let base = voters(&[1, 2]);
        let cases = [
            (MembershipChange::AddLearner(0), MembershipError::ZeroId),
            (
                MembershipChange::AddLearner(2),
                MembershipError::AlreadyMember(2),
            ),
            (
                MembershipChange::Promote(1),
                MembershipError::AlreadyVoter(1),
            ),
            (MembershipChange::Promote(7), MembershipError::NotAMember(7)),
            (MembershipChange::Remove(7), MembershipError::NotAMember(7)),
        ];
        for (change, expected) in cases {
            assert_eq!(changed(&base, &change, Bytes::new()), Err(expected));
        }
        let single = voters(&[5]);
        assert_eq!(
            changed(&single, &MembershipChange::Remove(5), Bytes::new()),
            Err(MembershipError::LastVoter(5))
        );
    }
}
