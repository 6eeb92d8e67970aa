//! Majority arithmetic, for one voter set and for joint consensus (Raft thesis 4.3): while a
//! change of voters is in progress, a decision needs a majority of the new voters *and* a
//! majority of the old ones, counted separately.

use super::types::{Membership, NodeId};

/// How many voters make a majority of `voter_count`.
pub(crate) fn majority(voter_count: usize) -> usize {
    voter_count / 2 + 1
}

/// The largest value that at least `quorum` of `values` reach: sort descending, take the
/// quorum-th.
pub(crate) fn quorum_value(values: &mut [u64], quorum: usize) -> u64 {
    values.sort_unstable_by(|a, b| b.cmp(a));
    quorum
        .checked_sub(1)
        .and_then(|position| values.get(position))
        .copied()
        .unwrap_or(0)
}

/// The largest value a majority of `voters` reaches, each voter's value given by `value_of`
/// (`scratch` is reused so counting allocates nothing). An empty set reaches nothing (0).
fn set_quorum_value(
    voters: &[NodeId],
    value_of: &impl Fn(NodeId) -> u64,
    scratch: &mut Vec<u64>,
) -> u64 {
    scratch.clear();
    scratch.extend(voters.iter().map(|voter| value_of(*voter)));
    quorum_value(scratch, majority(voters.len()))
}

/// The largest value reached by a majority of the voters and, during a joint membership, also
/// by a majority of the outgoing voters: the commit index (values: match indexes), the
/// confirmed read round, the lease start. A membership with no voters (a member still waiting
/// to learn its cluster) reaches nothing.
pub(crate) fn joint_quorum_value(
    membership: &Membership,
    value_of: impl Fn(NodeId) -> u64,
    scratch: &mut Vec<u64>,
) -> u64 {
    if membership.voters.is_empty() {
        return 0;
    }
    let incoming = set_quorum_value(&membership.voters, &value_of, scratch);
    if membership.voters_outgoing.is_empty() {
        return incoming;
    }
    incoming.min(set_quorum_value(
        &membership.voters_outgoing,
        &value_of,
        scratch,
    ))
}

/// True when a majority of the voters (and of the outgoing voters, when joint) satisfy
/// `holds`: an election won, a quorum recently active.
pub(crate) fn joint_majority(membership: &Membership, holds: impl Fn(NodeId) -> bool) -> bool {
    let set_holds = |voters: &[NodeId]| {
        voters.iter().filter(|voter| holds(**voter)).count() >= majority(voters.len())
    };
    !membership.voters.is_empty()
        && set_holds(&membership.voters)
        && (membership.voters_outgoing.is_empty() || set_holds(&membership.voters_outgoing))
}

/// The outcome of counting votes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum VoteResult {
    Won,
    /// A majority of some voter set refused: the campaign cannot succeed.
    Lost,
    Pending,
}

/// Counts votes (`vote_of`: granted, refused, or not yet answered) under joint consensus.
pub(crate) fn vote_result(
    membership: &Membership,
    vote_of: impl Fn(NodeId) -> Option<bool>,
) -> VoteResult {
    if joint_majority(membership, |voter| vote_of(voter) == Some(true)) {
        return VoteResult::Won;
    }
    let set_lost = |voters: &[NodeId]| {
        !voters.is_empty()
            && voters
                .iter()
                .filter(|voter| vote_of(**voter) == Some(false))
                .count()
                >= majority(voters.len())
    };
    if set_lost(&membership.voters) || set_lost(&membership.voters_outgoing) {
        return VoteResult::Lost;
    }
    VoteResult::Pending
}

#[cfg(test)]
mod tests {
    use super::*;

    fn joint(voters: &[NodeId], outgoing: &[NodeId]) -> Membership {
        Membership {
            voters: voters.to_vec(),
            voters_outgoing: outgoing.to_vec(),
            ..Membership::default()
        }
    }

    #[test]
    fn majority_and_quorum_value() {
        assert_eq!(majority(1), 1);
        assert_eq!(majority(3), 2);
        assert_eq!(majority(4), 3);
        assert_eq!(quorum_value(&mut [5, 9, 7], 2), 7);
        assert_eq!(quorum_value(&mut [5, 9, 7, 1, 2], 3), 5);
        assert_eq!(quorum_value(&mut [], 1), 0);
    }

    #[test]
    fn joint_quorum_needs_both_majorities() {
        // Reference: Raft thesis 4.3: in C_old,new, agreement needs separate majorities of
        // C_old and of C_new.
        let mut scratch = Vec::new();
        let matches = |id: NodeId| match id {
            1 => 10,
            2 => 10,
            3 => 2,
            4 => 3,
            5 => 3,
            _ => 0,
        };
        let old_only = joint(&[1, 2, 3], &[]);
        assert_eq!(joint_quorum_value(&old_only, matches, &mut scratch), 10);
        // New voters {3, 4, 5} reach only 3 by majority; the old set {1, 2, 3} reaches 10.
        let changing = joint(&[3, 4, 5], &[1, 2, 3]);
        assert_eq!(joint_quorum_value(&changing, matches, &mut scratch), 3);
        assert_eq!(
            joint_quorum_value(&Membership::default(), matches, &mut scratch),
            0
        );
    }

    #[test]
    fn joint_votes_are_won_only_with_both_majorities_and_lost_by_either() {
        let changing = joint(&[1, 4, 5], &[1, 2, 3]);
        let votes = |granted: &'static [NodeId], refused: &'static [NodeId]| {
            move |id: NodeId| {
                if granted.contains(&id) {
                    Some(true)
                } else if refused.contains(&id) {
                    Some(false)
                } else {
                    None
                }
            }
        };
        assert_eq!(
            vote_result(&changing, votes(&[1, 2, 3], &[])),
            VoteResult::Pending
        );
        assert_eq!(
            vote_result(&changing, votes(&[1, 2, 4], &[])),
            VoteResult::Won
        );
        assert_eq!(
            vote_result(&changing, votes(&[1, 2, 3], &[4, 5])),
            VoteResult::Lost
        );
        assert_eq!(
            vote_result(&Membership::default(), votes(&[1], &[])),
            VoteResult::Pending
        );
    }
}
